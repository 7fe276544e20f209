/**
 * `POST /v1/jobs` with `"mode": "bulk"`, through the jobs API handler and its real wiring: the
 * BedrockBulkSubmitter (S3 PutObject + Bedrock CreateModelInvocationJob on the local S3 and
 * Bedrock control-plane servers), the DynamoDB job store (dynalite behind the transactional
 * proxy) and the SQS queue (which bulk jobs must not touch).
 */
import {
  callApi, getEvent, jobsConfig, JOBS_TABLES, question, RESULTS_TABLE, routerConfig, submitEvent, TENANT_A, useEnvironment,
  type ApiCall, type ApiResponse, type JobBody, type SubmitBody,
} from './harness';
import { AiMetricNames as M } from '../../constructs/contract/metrics';
import type { BulkRuntimeConfig } from '../../constructs/contract/runtime-config';
import { DynamoDbJobStore } from '../../lambdas/adapters/dynamodb-job-store';
import { bulkInputKey } from '../../lambdas/core/jobs/bulk-layout';
import type * as JobsApi from '../../lambdas/jobs-api/handler';
import { ControlPlaneFailures, LocalBedrockControlServer } from '../support/bedrock-control-server';
import { DynamoErrors, TransactionalDynalite } from '../support/dynamodb-transactions';
import { metricSum } from '../support/lambda-harness';
import { LocalS3Server } from '../support/s3-protocol-server';
import { LocalSqsServer } from '../support/sqs-protocol-server';

const BUCKET = 'bulk-jobs-bucket';
const BULK: BulkRuntimeConfig = {
  bucketName: BUCKET,
  inputPrefix: 'bulk/input/',
  outputPrefix: 'bulk/output/',
  roleArn: 'arn:aws:iam::111122223333:role/scalable-ai-bulk-batch-role',
  tierId: 'small',
  minItems: 3,
  maxItems: 12,
  timeoutHours: 48,
};

let dynamo: TransactionalDynalite;
let sqs: LocalSqsServer;
let s3: LocalS3Server;
let bedrock: LocalBedrockControlServer;
let store: DynamoDbJobStore;
let handler: typeof JobsApi.handler;
let env: ReturnType<typeof useEnvironment>;

beforeAll(async () => {
  [dynamo, sqs, s3, bedrock] = await Promise.all([
    TransactionalDynalite.start(JOBS_TABLES),
    LocalSqsServer.start(),
    LocalS3Server.start(),
    LocalBedrockControlServer.start(),
  ]);
  const queueUrl = sqs.createQueue('jobs');
  s3.createBucket(BUCKET);
  store = new DynamoDbJobStore(RESULTS_TABLE, dynamo.client());
  env = useEnvironment(
    { ...dynamo.env(), ...sqs.env(), ...s3.env(), ...bedrock.env() },
    { router: routerConfig(), jobs: jobsConfig(queueUrl, { maxItemsPerJob: 4, bulk: BULK }) },
  );
  ({ handler } = jest.requireActual<typeof JobsApi>('../../lambdas/jobs-api/handler'));
});

beforeEach(() => {
  sqs.reset();
  bedrock.reset();
});

afterAll(async () => {
  env?.restore();
  await Promise.all([dynamo?.stop(), sqs?.close(), s3?.close(), bedrock?.close()]);
});

const submit = (call: ApiCall): Promise<ApiResponse<SubmitBody>> => callApi<SubmitBody>(handler, env.captured, submitEvent(call));
const get = (jobId: string): Promise<ApiResponse<JobBody>> => callApi<JobBody>(handler, env.captured, getEvent(jobId));
const requests = (n: number): unknown[] => Array.from({ length: n }, (_, i) => question(`bulk question ${i}`));

test('a bulk job goes to Bedrock batch inference, is recorded with its Bedrock job, and enqueues nothing', async () => {
  // More than maxItemsPerJob (4): the bulk limit applies.
  const r = await submit({ body: { mode: 'bulk', requests: requests(6) } });
  expect(r.status).toBe(202);
  expect(r.body).toMatchObject({ mode: 'bulk', items: 6, status: 'queued' });
  expect(metricSum(r.metrics, M.JOBS_SUBMITTED)).toBe(1);
  expect(sqs.calls).toHaveLength(0);

  expect(bedrock.jobs).toHaveLength(1);
  const arn = bedrock.jobs[0].jobArn;
  const input = s3.getObject(BUCKET, bulkInputKey(BULK, TENANT_A, r.body.jobId));
  expect(input?.body.toString('utf8').trim().split('\n')).toHaveLength(6);
  await expect(store.findBulkJob(arn)).resolves.toEqual({ tenantId: TENANT_A, jobId: r.body.jobId });
  expect((await store.getJob(TENANT_A, r.body.jobId))?.bulkJobArn).toBe(arn);
  expect((await get(r.body.jobId)).body).toMatchObject({ status: 'queued', mode: 'bulk', items: 6 });
});

test.each<[string, unknown, number, RegExp]>([
  ['fewer than minItems', { mode: 'bulk', requests: requests(2) }, 400, /bulk mode needs at least 3 requests per job, got 2/],
  ['more than the bulk maxItems', { mode: 'bulk', requests: requests(13) }, 413, /at most 12 requests are accepted per bulk job, got 13/],
  ['a session in bulk mode', { mode: 'bulk', requests: [...requests(2), question('hi', { session: 's-1' })] }, 400, /requests\.2\.session: not supported in bulk mode/],
])('%s: refused before anything is created', async (_, body, status, message) => {
  const r = await submit({ body });
  expect(r.status).toBe(status);
  expect(r.body.error?.message).toMatch(message);
  expect(bedrock.requests).toHaveLength(0);
  expect(sqs.calls).toHaveLength(0);
});

test('Bedrock throttling: 503 with its Retry-After, and the job reads failed', async () => {
  bedrock.failNext(ControlPlaneFailures.throttling(), 3);
  const r = await submit({ body: { mode: 'bulk', requests: requests(3) } });
  expect(r.status).toBe(503);
  expect(r.headers['retry-after']).toBe('60');
  const jobId = /job ([0-9a-f-]{36}) was recorded as failed/.exec(r.body.error?.message ?? '')?.[1];
  expect(jobId).toBeDefined();
  const status = await get(jobId!);
  expect(status.body).toMatchObject({ status: 'failed', mode: 'bulk', failed: 3, error: { code: 'job-failed', message: expect.stringMatching(/could not be submitted to bulk mode/) } });
});

describe('recording the Bedrock job once Bedrock accepted it', () => {
  /** Fails the transactions that record a bulk job, `times` times (every time when omitted). */
  function failRecording(times = Infinity): { stop: () => void; failures: () => number } {
    let failures = 0;
    const stop = dynamo.failWhen((operation, body) => {
      const items = (body.TransactItems ?? []) as Array<{ Put?: { Item?: { bulkJobArn?: unknown } } }>;
      if (operation !== 'TransactWriteItems' || !items.some((i) => i.Put?.Item?.bulkJobArn) || failures >= times) return undefined;
      failures++;
      return DynamoErrors.internal();
    });
    return { stop, failures: () => failures };
  }

  test('a failed write is tried again: the job is recorded and accepted, one Bedrock job only', async () => {
    // More than the SDK's own attempts (3): the second attempt of the endpoint succeeds.
    const failing = failRecording(4);
    let r: ApiResponse<SubmitBody>;
    try {
      r = await submit({ body: { mode: 'bulk', requests: requests(3) } });
    } finally {
      failing.stop();
    }
    expect(failing.failures()).toBe(4);
    expect(r.status).toBe(202);
    expect(bedrock.jobs).toHaveLength(1);
    const status = await get(r.body.jobId);
    expect(status.body).toMatchObject({ status: 'queued', mode: 'bulk', items: 3 });
  });

  test('a write that keeps failing: 503 after a few attempts, and the job reads failed', async () => {
    const failing = failRecording();
    let r: ApiResponse<SubmitBody>;
    try {
      r = await submit({ body: { mode: 'bulk', requests: requests(3) } });
    } finally {
      failing.stop();
    }
    expect(r.status).toBe(503);
    // More writes than the SDK's own 3 attempts: the endpoint tried again (3 times, each retried by the SDK).
    expect(failing.failures()).toBeGreaterThan(3);
    expect(bedrock.jobs).toHaveLength(1);
    const jobId = /job ([0-9a-f-]{36}) was recorded as failed/.exec(r.body.error?.message ?? '')?.[1];
    expect((await get(jobId!)).body).toMatchObject({ status: 'failed', mode: 'bulk' });
  });
});
