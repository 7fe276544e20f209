/**
 * The bulk completion Lambda handler end to end, configured through its environment
 * (JOBS_CONFIG_ENV, ROUTER_CONFIG_ENV) and against real local servers:
 * - the local S3 protocol server on `localhost` (reachable path-style only) found through
 *   `AWS_ENDPOINT_URL_S3`, holding a recorded Bedrock batch output (test/bulk/fixtures/);
 * - DynamoDB: dynalite behind the TransactWriteItems proxy (test/support/dynamodb-transactions.ts)
 *   through `AWS_ENDPOINT_URL_DYNAMODB`, with the production `DynamoDbJobStore` (transactions,
 *   conditional writes) on a `pk`/`sk` results table.
 * Metrics and logs are read from the EMF and JSON lines Powertools writes.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Context, EventBridgeEvent } from 'aws-lambda';
import { AiMetricNames as M } from '../../constructs/contract/metrics';
import { JOBS_CONFIG_ENV, ROUTER_CONFIG_ENV, type JobsRuntimeConfig, type RouterRuntimeConfig } from '../../constructs/contract/runtime-config';
import { DynamoDbJobStore } from '../../lambdas/adapters/dynamodb-job-store';
import type * as CompletionHandler from '../../lambdas/bulk-completion/handler';
import type { BatchJobStateChangeDetail, BulkCompletionSummary } from '../../lambdas/core/jobs/bulk-completion';
import { bulkOutputPrefix } from '../../lambdas/core/jobs/bulk-layout';
import type { ItemResult } from '../../lambdas/core/jobs/job-model';
import { DynaliteServer } from '../support/dynalite-server';
import { DynamoErrors, TransactionalDynalite } from '../support/dynamodb-transactions';
import { lambdaContext, metricSum, parseEmf, type EmfMetric } from '../support/lambda-harness';
import { LocalS3Server } from '../support/s3-protocol-server';

const TABLE = 'scalable-ai-results';
const BUCKET = 'bulk-jobs-bucket';
const SERVICE = 'bulk-completion-test';
const TENANT = 'acme';
const TTL = 7 * 24 * 3600;
const FIXTURE = join(__dirname, 'fixtures', 'converse-partial');

const routerConfig: RouterRuntimeConfig = {
  tiers: [
    { id: 'small', provider: 'bedrock', modelId: 'us.anthropic.claude-3-5-haiku-20241022-v1:0', inputPricePer1k: 0.0008, outputPricePer1k: 0.004, maxTokens: 1024, timeoutMs: 10_000 },
    { id: 'large', provider: 'bedrock', modelId: 'us.anthropic.claude-sonnet-4-20250514-v1:0', inputPricePer1k: 0.003, outputPricePer1k: 0.015, maxTokens: 4096, timeoutMs: 30_000 },
  ],
  tierHintPolicy: 'ignore',
  maxRequestBytes: 32_768,
  maxMessages: 20,
  tenant: { source: 'iam' },
  personalCaching: 'none',
};

const jobsConfig: JobsRuntimeConfig = {
  resultsTable: TABLE,
  idempotencyTable: 'scalable-ai-idempotency',
  queueUrl: 'https://sqs.us-east-1.amazonaws.com/111122223333/scalable-ai-jobs',
  resultTtlSeconds: TTL,
  idempotencyTtlSeconds: 3600,
  maxItemsPerJob: 100,
  maxReceiveCount: 3,
  tierConcurrency: 4,
  bulk: {
    bucketName: BUCKET,
    inputPrefix: 'bulk/input/',
    outputPrefix: 'bulk/output/',
    roleArn: 'arn:aws:iam::111122223333:role/scalable-ai-bulk-batch-role',
    tierId: 'small',
    minItems: 100,
    maxItems: 50_000,
    timeoutHours: 72,
  },
};

let dynamo: TransactionalDynalite;
let s3: LocalS3Server;
let store: DynamoDbJobStore;
let handler: typeof CompletionHandler.handler;
let captured: string[] = [];
let jobSeq = 0;
const savedEnv = { ...process.env };

function arnOf(bedrockJobId: string): string {
  return `arn:aws:bedrock:us-east-1:111122223333:model-invocation-job/${bedrockJobId}`;
}

function stateChange(arn: string, status: string, failureMessage = ''): EventBridgeEvent<string, BatchJobStateChangeDetail> {
  return {
    'version': '0',
    'id': `evt-${Math.random().toString(36).slice(2)}`,
    'detail-type': 'Batch Inference Job State Change',
    'source': 'aws.bedrock',
    'account': '111122223333',
    'time': '2026-11-27T08:15:30Z',
    'region': 'us-east-1',
    'resources': [arn],
    'detail': {
      version: '0.0',
      accountId: '111122223333',
      batchJobName: 'sai-bulk-job',
      batchJobArn: arn,
      batchModelId: 'arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-5-haiku-20241022-v1:0',
      status,
      failureMessage,
      creationTime: 'Nov 27, 2026, 7:02:11 AM',
    },
  };
}

/** A bulk job of `items` items recorded with its Bedrock job, as the jobs API leaves it. */
async function bulkJob(items: number): Promise<{ jobId: string; arn: string; bedrockJobId: string }> {
  jobSeq++;
  const jobId = `0b7e${String(jobSeq).padStart(4, '0')}-1c2d-4e5f-8a9b-0c1d2e3f4a5b`;
  const bedrockJobId = `job${String(jobSeq).padStart(9, '0')}`;
  const arn = arnOf(bedrockJobId);
  await store.createJob({ jobId, tenantId: TENANT, mode: 'bulk', items, succeeded: 0, failed: 0, createdAt: Date.now() }, TTL);
  await store.recordBulkJob(TENANT, jobId, arn, TTL);
  return { jobId, arn, bedrockJobId };
}

function putRecordedOutput(jobId: string, bedrockJobId: string): void {
  const prefix = `${bulkOutputPrefix(jobsConfig.bulk!, TENANT, jobId)}${bedrockJobId}/`;
  for (const file of ['input.jsonl.out', 'manifest.json.out']) {
    s3.putObject(BUCKET, `${prefix}${file}`, readFileSync(join(FIXTURE, file)), 'application/octet-stream');
  }
}

async function allResults(jobId: string): Promise<ItemResult[]> {
  return (await store.listResults(TENANT, jobId, 100)).results;
}

interface Run {
  readonly summary?: BulkCompletionSummary;
  readonly error?: Error;
  readonly metrics: EmfMetric[];
  readonly logs: Array<Record<string, unknown>>;
}

async function run(event: EventBridgeEvent<string, BatchJobStateChangeDetail>, fn = handler): Promise<Run> {
  captured = [];
  const context: Context = lambdaContext('bulk-completion');
  let summary: BulkCompletionSummary | undefined;
  let error: Error | undefined;
  try {
    summary = await fn(event, context);
  } catch (err) {
    error = err as Error;
  }
  const lines = captured;
  captured = [];
  const logs = lines.join('').split('\n').filter((l) => l.trim().startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>).filter((d) => !d._aws);
  return { summary, error, metrics: parseEmf(lines).filter((m) => m.dimensions[M.DIMENSION_SERVICE] === SERVICE), logs };
}

beforeAll(async () => {
  [dynamo, s3] = await Promise.all([TransactionalDynalite.start([DynaliteServer.userContextTable(TABLE)]), LocalS3Server.start({ host: 'localhost', maxKeysPerPage: 1 })]);
  s3.createBucket(BUCKET);
  store = new DynamoDbJobStore(TABLE, dynamo.client());

  Object.assign(process.env, s3.env(), {
    ...dynamo.env(),
    [JOBS_CONFIG_ENV]: JSON.stringify(jobsConfig),
    [ROUTER_CONFIG_ENV]: JSON.stringify(routerConfig),
    POWERTOOLS_SERVICE_NAME: SERVICE,
  });
  for (const name of ['POWERTOOLS_METRICS_NAMESPACE', 'POWERTOOLS_DEV', 'POWERTOOLS_METRICS_DISABLED', 'AWS_PROFILE']) delete process.env[name];

  // Capture stdout (EMF, INFO logs) and stderr (WARN, ERROR logs): JSON lines are kept.
  for (const stream of [process.stdout, process.stderr]) {
    const write = stream.write.bind(stream);
    jest.spyOn(stream, 'write').mockImplementation(((chunk: string | Uint8Array, ...rest: never[]) => {
      const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
      if (text.trimStart().startsWith('{')) {
        captured.push(text);
        return true;
      }
      return write(chunk, ...rest);
    }) as typeof stream.write);
  }
  ({ handler } = jest.requireActual<typeof CompletionHandler>('../../lambdas/bulk-completion/handler'));
});

beforeEach(() => {
  s3.clearFailures();
  s3.calls.length = 0;
});

afterAll(async () => {
  jest.restoreAllMocks();
  await Promise.all([dynamo?.stop(), s3?.close()]);
  for (const key of Object.keys(process.env)) if (!(key in savedEnv)) delete process.env[key];
  Object.assign(process.env, savedEnv);
});

test('PartiallyCompleted: the recorded output lands in the results table; EMF metrics; a redelivery counts nothing twice', async () => {
  const { jobId, arn, bedrockJobId } = await bulkJob(5);
  putRecordedOutput(jobId, bedrockJobId);

  const r = await run(stateChange(arn, 'PartiallyCompleted'));
  expect(r.error).toBeUndefined();
  expect(r.summary).toMatchObject({ outcome: 'loaded', jobId, tenantId: TENANT, written: 5, duplicates: 0, succeededRecords: 3, errorRecords: 1, missing: 1 });

  const results = await allResults(jobId);
  expect(results.map((x) => [x.index, x.status, x.cache, x.tier, x.costUsd, x.usage?.outputTokens, x.error?.code])).toEqual([
    [0, 'succeeded', 'bulk', 'small', 0.000131, 57, undefined],
    [1, 'succeeded', 'bulk', 'small', 0.000031, 12, undefined],
    [2, 'failed', 'bulk', 'small', undefined, undefined, '400'],
    [3, 'succeeded', 'bulk', 'small', 0.00118, 350, undefined],
    [4, 'failed', 'bulk', 'small', undefined, undefined, 'missing'],
  ]);
  expect(results[0].output?.text).toBe('Order 1234 shipped yesterday and should arrive within two business days.');
  expect(results[4].error?.message).toBe('missing from the batch output');
  expect(await store.getJob(TENANT, jobId)).toMatchObject({ items: 5, succeeded: 3, failed: 2 });

  expect(metricSum(r.metrics, M.RESULTS_WRITTEN)).toBe(5);
  expect(metricSum(r.metrics, M.BULK_JOBS_COMPLETED, { [M.DIMENSION_REASON]: 'partial' })).toBe(1);
  expect(r.logs).toContainEqual(expect.objectContaining({ level: 'INFO', message: 'bulk job results loaded', jobId, written: 5, service: SERVICE }));
  // The output was listed and read path-style from the endpoint of AWS_ENDPOINT_URL_S3.
  expect(s3.callsOf('GetObject').length).toBeGreaterThanOrEqual(2);
  expect(s3.calls.every((c) => c.host === new URL(s3.url).host && c.path.startsWith(`/${BUCKET}`) && c.status === 200)).toBe(true);

  // EventBridge delivers at least once: the same event again.
  const again = await run(stateChange(arn, 'PartiallyCompleted'));
  expect(again.error).toBeUndefined();
  expect(again.summary).toMatchObject({ written: 0, duplicates: 5 });
  expect(await store.getJob(TENANT, jobId)).toMatchObject({ succeeded: 3, failed: 2 });
  expect(metricSum(again.metrics, M.RESULTS_WRITTEN)).toBe(0);
  expect(metricSum(again.metrics, M.BULK_JOBS_COMPLETED, { [M.DIMENSION_REASON]: 'partial' })).toBe(0);
});

test('Failed: every item of the job fails with Bedrock\'s failure message', async () => {
  const { jobId, arn } = await bulkJob(3);
  const r = await run(stateChange(arn, 'Failed', 'The provided IAM role does not have permission to access the S3 bucket'));
  expect(r.error).toBeUndefined();
  expect(r.summary).toMatchObject({ outcome: 'failed', written: 3 });
  const message = 'Bedrock batch inference job Failed: The provided IAM role does not have permission to access the S3 bucket';
  expect((await allResults(jobId)).map((x) => [x.index, x.status, x.error?.message])).toEqual([0, 1, 2].map((i) => [i, 'failed', message]));
  expect(await store.getJob(TENANT, jobId)).toMatchObject({ succeeded: 0, failed: 3, failureMessage: message });
  expect(metricSum(r.metrics, M.BULK_JOBS_COMPLETED, { [M.DIMENSION_REASON]: 'failed' })).toBe(1);
  expect(metricSum(r.metrics, M.RESULTS_WRITTEN)).toBe(3);
});

test('InProgress marks the job started; an unknown batch job is ignored without an error', async () => {
  const { jobId, arn } = await bulkJob(2);
  expect((await run(stateChange(arn, 'InProgress'))).summary).toMatchObject({ outcome: 'started' });
  expect((await store.getJob(TENANT, jobId))?.startedAt).toEqual(expect.any(Number));

  const r = await run(stateChange(arnOf('notourjob123'), 'Completed'));
  expect(r.error).toBeUndefined();
  expect(r.summary).toMatchObject({ outcome: 'unknown-job', written: 0 });
  expect(r.logs).toContainEqual(expect.objectContaining({ level: 'WARN', message: 'bulk completion: no job has this batch inference job; ignored' }));
});

test('S3 unavailable: the handler throws (EventBridge retries), and the retry loads the job', async () => {
  const { jobId, arn, bedrockJobId } = await bulkJob(5);
  putRecordedOutput(jobId, bedrockJobId);
  s3.failList(BUCKET, { status: 503, code: 'ServiceUnavailable', message: 'Service is unable to handle request.' });
  const r = await run(stateChange(arn, 'Completed'));
  expect(r.error?.name).toBe('ServiceUnavailable');
  expect(r.logs).toContainEqual(expect.objectContaining({ level: 'ERROR', message: 'bulk completion failed; the event is retried', bulkJobArn: arn, status: 'Completed' }));
  // The S3 client retried before giving up.
  expect(s3.callsOf('ListObjectsV2').length).toBeGreaterThan(1);
  expect(await allResults(jobId)).toEqual([]);

  s3.clearFailures();
  expect((await run(stateChange(arn, 'Completed'))).summary).toMatchObject({ written: 5 });
});

test('DynamoDB failing: the handler throws after the SDK\'s retries; the redelivery completes the job, counting each item once', async () => {
  const { jobId, arn, bedrockJobId } = await bulkJob(5);
  putRecordedOutput(jobId, bedrockJobId);
  let transactions = 0;
  // The first two result writes go through, then the table fails every write.
  const heal = dynamo.failWhen((operation) => (operation === 'TransactWriteItems' && ++transactions > 2 ? DynamoErrors.internal() : undefined));
  let r: Run;
  try {
    r = await run(stateChange(arn, 'PartiallyCompleted'));
  } finally {
    heal();
  }
  expect(r.error?.name).toBe('InternalServerError');
  expect(r.summary).toBeUndefined();
  const partial = await store.getJob(TENANT, jobId);
  expect(partial!.succeeded + partial!.failed).toBe(2);
  expect(metricSum(r.metrics, M.BULK_JOBS_COMPLETED, { [M.DIMENSION_REASON]: 'partial' })).toBe(0);

  const retried = await run(stateChange(arn, 'PartiallyCompleted'));
  expect(retried.error).toBeUndefined();
  expect(retried.summary).toMatchObject({ written: 3, duplicates: 2 });
  expect(await store.getJob(TENANT, jobId)).toMatchObject({ succeeded: 3, failed: 2 });
  expect(metricSum(retried.metrics, M.BULK_JOBS_COMPLETED, { [M.DIMENSION_REASON]: 'partial' })).toBe(1);
});

test('missing configuration is an error of every invocation', async () => {
  delete process.env[JOBS_CONFIG_ENV];
  try {
    let isolated: typeof CompletionHandler.handler | undefined;
    jest.isolateModules(() => {
      isolated = jest.requireActual<typeof CompletionHandler>('../../lambdas/bulk-completion/handler').handler;
    });
    const r = await run(stateChange(arnOf('whatever1234'), 'Completed'), isolated);
    expect(r.error?.message).toBe(`${JOBS_CONFIG_ENV} is not set`);
  } finally {
    process.env[JOBS_CONFIG_ENV] = JSON.stringify(jobsConfig);
  }
});
