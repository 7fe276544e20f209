/**
 * The bulk completion logic (lambdas/core/jobs/bulk-completion.ts) on Bedrock "Batch Inference Job
 * State Change" events of the documented shape, reading a recorded job output of the documented
 * format (test/bulk/fixtures/) from the local S3 protocol server through the real S3 client
 * (S3BulkOutputReader), writing into a JobStore that enforces writeResult's once-only contract.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { MemoryJobStore } from './memory-job-store';
import { AiMetricNames as M } from '../../constructs/contract/metrics';
import type { TierRuntimeConfig } from '../../constructs/contract/runtime-config';
import { S3BulkOutputReader } from '../../lambdas/adapters/s3-bulk-output-reader';
import {
  handleBulkJobStateChange,
  type BatchJobStateChangeEvent,
  type BulkCompletionDeps,
  type BulkCompletionSummary,
} from '../../lambdas/core/jobs/bulk-completion';
import { bulkOutputPrefix, recordIdOf } from '../../lambdas/core/jobs/bulk-layout';
import type { ItemResult } from '../../lambdas/core/jobs/job-model';
import type { MetricUnit } from '../../lambdas/core/ports';
import { LocalS3Server } from '../support/s3-protocol-server';

const BUCKET = 'bulk-jobs-bucket';
const OUTPUT_PREFIX = 'bulk/output/';
const TENANT = 'acme';
const JOB_ID = '5f0c9a3e-8d1b-4c7e-9f2a-0b6d4e8c1a7f';
const BEDROCK_JOB_ID = 'k3x9q2w7e1r5';
const ARN = `arn:aws:bedrock:us-east-1:111122223333:model-invocation-job/${BEDROCK_JOB_ID}`;
const TTL = 7 * 24 * 3600;
const NOW = 1_795_800_000_000;
const FIXTURE = join(__dirname, 'fixtures', 'converse-partial');

const tier: TierRuntimeConfig = {
  id: 'small',
  provider: 'bedrock',
  modelId: 'us.anthropic.claude-3-5-haiku-20241022-v1:0',
  inputPricePer1k: 0.0008,
  outputPricePer1k: 0.004,
  maxTokens: 1024,
  timeoutMs: 10_000,
};

class RecordedMetrics {
  readonly entries: Array<{ name: string; unit: MetricUnit; value: number; dimensions: Record<string, string> }> = [];
  add(name: string, unit: MetricUnit, value: number, dimensions: Record<string, string> = {}): void {
    this.entries.push({ name, unit, value, dimensions });
  }
  sum(name: string, dimensions: Record<string, string> = {}): number | undefined {
    const matching = this.entries.filter((e) => e.name === name && JSON.stringify(e.dimensions) === JSON.stringify(dimensions));
    return matching.length === 0 ? undefined : matching.reduce((n, e) => n + e.value, 0);
  }
}

class RecordedLogger {
  readonly lines: Array<{ level: string; message: string; attributes: Record<string, unknown> }> = [];
  info(message: string, attributes: Record<string, unknown> = {}): void {
    this.lines.push({ level: 'INFO', message, attributes });
  }
  warn(message: string, attributes: Record<string, unknown> = {}): void {
    this.lines.push({ level: 'WARN', message, attributes });
  }
  error(message: string, attributes: Record<string, unknown> = {}): void {
    this.lines.push({ level: 'ERROR', message, attributes });
  }
}

let s3: LocalS3Server;
let client: S3Client;
let store: MemoryJobStore;
let metrics: RecordedMetrics;
let logger: RecordedLogger;

/** The documented sample event, with this job's ARN and the given status. */
function stateChange(status: string, failureMessage = '', arn = ARN): BatchJobStateChangeEvent {
  return {
    'id': 'a1b2c3d4-5e6f-7a8b-9c0d-e1f2a3b4c5d6',
    'detail-type': 'Batch Inference Job State Change',
    'source': 'aws.bedrock',
    'time': '2026-11-27T08:15:30Z',
    'resources': [arn],
    'detail': {
      version: '0.0',
      accountId: '111122223333',
      batchJobName: 'sai-bulk-5f0c9a3e8d1b4c7e9f2a0b6d-0123456789ab',
      batchJobArn: arn,
      batchModelId: 'arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-5-haiku-20241022-v1:0',
      status,
      failureMessage,
      creationTime: 'Nov 27, 2026, 7:02:11 AM',
    },
  };
}

function deps(extra: Partial<BulkCompletionDeps> = {}): BulkCompletionDeps {
  return {
    store,
    output: new S3BulkOutputReader(client, BUCKET),
    metrics,
    logger,
    bulk: { outputPrefix: OUTPUT_PREFIX },
    tier,
    resultTtlSeconds: TTL,
    writeConcurrency: 3,
    now: () => NOW,
    ...extra,
  };
}

async function createBulkJob(items: number, jobId = JOB_ID, arn = ARN): Promise<void> {
  await store.createJob({ jobId, tenantId: TENANT, mode: 'bulk', items, succeeded: 0, failed: 0, createdAt: NOW - 3_600_000 }, TTL);
  await store.recordBulkJob(TENANT, jobId, arn, TTL);
}

/** Where Bedrock writes the job's output files: `<output prefix>/<Bedrock job id>/<file>`. */
function outputKey(file: string): string {
  return `${bulkOutputPrefix({ outputPrefix: OUTPUT_PREFIX }, TENANT, JOB_ID)}${BEDROCK_JOB_ID}/${file}`;
}

function putRecordedOutput(): void {
  for (const file of ['input.jsonl.out', 'manifest.json.out']) {
    s3.putObject(BUCKET, outputKey(file), readFileSync(join(FIXTURE, file)), 'application/octet-stream');
  }
}

function converseLine(index: number, text: string, inputTokens: number, outputTokens: number): string {
  return JSON.stringify({
    recordId: recordIdOf(index),
    modelInput: { messages: [{ role: 'user', content: [{ text: `question ${index}` }] }], inferenceConfig: { maxTokens: 1024 } },
    modelOutput: {
      output: { message: { role: 'assistant', content: [{ text }] } },
      stopReason: 'end_turn',
      usage: { inputTokens, outputTokens, totalTokens: inputTokens + outputTokens },
      metrics: { latencyMs: 300 },
    },
  });
}

function results(): ItemResult[] {
  return [...store.results(TENANT, JOB_ID).values()].sort((a, b) => a.index - b.index);
}

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

beforeAll(async () => {
  s3 = await LocalS3Server.start({ maxKeysPerPage: 1 });
  client = new S3Client({
    endpoint: s3.url,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'AKIDLOCALTEST', secretAccessKey: 'local-test-secret' },
    maxAttempts: 1,
  });
});

beforeEach(() => {
  s3.reset();
  s3.createBucket(BUCKET);
  store = new MemoryJobStore();
  metrics = new RecordedMetrics();
  logger = new RecordedLogger();
});

afterAll(async () => {
  client?.destroy();
  await s3?.close();
});

test('PartiallyCompleted: every item gets its result from the recorded output, at half the on-demand price', async () => {
  await createBulkJob(5);
  putRecordedOutput();
  const summary = await handleBulkJobStateChange(stateChange('PartiallyCompleted'), deps());

  const common = { tier: 'small', cache: 'bulk', completedAt: NOW };
  expect(results()).toEqual([
    {
      index: 0,
      status: 'succeeded',
      ...common,
      output: { text: 'Order 1234 shipped yesterday and should arrive within two business days.' },
      usage: { inputTokens: 42, outputTokens: 57 },
      // (42 × 0.0008 + 57 × 0.004) / 1000 / 2 = 0.0001308, to the micro-dollar.
      costUsd: 0.000131,
    },
    {
      index: 1,
      status: 'succeeded',
      ...common,
      output: { text: 'The customer reports that the parcel arrived damaged.' },
      usage: { inputTokens: 18, outputTokens: 12 },
      costUsd: 0.000031,
    },
    {
      index: 2,
      status: 'failed',
      ...common,
      error: { code: '400', message: 'Malformed input request: #: extraneous key [foo] is not permitted, please reformat your input and try again.' },
    },
    {
      index: 3,
      status: 'succeeded',
      ...common,
      // Text blocks of the Converse message are joined.
      output: { text: 'Dear customer,\n\nWe are sorry you were charged twice. We have refunded the duplicate charge; it will reach your account within 5 business days.' },
      usage: { inputTokens: 1200, outputTokens: 350 },
      // On demand this answer costs 0.00236.
      costUsd: 0.00118,
    },
    { index: 4, status: 'failed', ...common, error: { code: 'missing', message: 'missing from the batch output' } },
  ]);
  expect(await store.getJob(TENANT, JOB_ID)).toMatchObject({ items: 5, succeeded: 3, failed: 2 });
  expect(summary).toEqual<BulkCompletionSummary>({
    outcome: 'loaded',
    status: 'PartiallyCompleted',
    bulkJobArn: ARN,
    tenantId: TENANT,
    jobId: JOB_ID,
    written: 5,
    duplicates: 0,
    succeededRecords: 3,
    errorRecords: 1,
    missing: 1,
    skippedLines: 0,
  });
  // Every write carried the results' TTL.
  expect(store.calls.filter((c) => c.method === 'writeResult').map((c) => c.args[3])).toEqual([TTL, TTL, TTL, TTL, TTL]);

  expect(metrics.sum(M.RESULTS_WRITTEN)).toBe(5);
  expect(metrics.sum(M.BULK_JOBS_COMPLETED, { [M.DIMENSION_REASON]: 'partial' })).toBe(1);
  expect(metrics.entries.filter((e) => e.name === M.BULK_JOBS_COMPLETED)).toHaveLength(1);
  // The manifest agrees with the output: logged, no warning.
  expect(logger.lines).toContainEqual(expect.objectContaining({
    level: 'INFO',
    message: 'bulk job manifest',
    attributes: expect.objectContaining({
      totalRecordCount: 5, successRecordCount: 3, errorRecordCount: 1, inputTokenCount: 1260, outputTokenCount: 419,
    }),
  }));
  expect(logger.lines.filter((l) => l.level !== 'INFO')).toEqual([]);
});

test('a redelivered event writes nothing twice and does not count the job again', async () => {
  await createBulkJob(5);
  putRecordedOutput();
  await handleBulkJobStateChange(stateChange('PartiallyCompleted'), deps());
  const first = results();
  metrics.entries.length = 0;

  const again = await handleBulkJobStateChange(stateChange('PartiallyCompleted'), deps({ now: () => NOW + 60_000 }));
  expect(again).toMatchObject({ outcome: 'loaded', written: 0, duplicates: 5 });
  expect(results()).toEqual(first);
  expect(await store.getJob(TENANT, JOB_ID)).toMatchObject({ succeeded: 3, failed: 2 });
  expect(metrics.sum(M.RESULTS_WRITTEN)).toBe(0);
  expect(metrics.sum(M.BULK_JOBS_COMPLETED, { [M.DIMENSION_REASON]: 'partial' })).toBeUndefined();
});

test('Completed with every record answered: reason `completed`; a manifest that disagrees is a warning', async () => {
  await createBulkJob(3);
  s3.putObject(BUCKET, outputKey('input.jsonl.out'), [
    converseLine(2, 'two', 10, 5),
    converseLine(0, 'zero', 10, 5),
    converseLine(1, 'one', 10, 5),
  ].join('\n') + '\n', 'application/octet-stream');
  s3.putObject(BUCKET, outputKey('manifest.json.out'), { totalRecordCount: 3, processedRecordCount: 3, successRecordCount: 2, errorRecordCount: 1 });

  const summary = await handleBulkJobStateChange(stateChange('Completed'), deps());
  expect(summary).toMatchObject({ outcome: 'loaded', written: 3, succeededRecords: 3, missing: 0 });
  expect(results().map((r) => [r.index, r.status, r.output?.text])).toEqual([[0, 'succeeded', 'zero'], [1, 'succeeded', 'one'], [2, 'succeeded', 'two']]);
  expect(metrics.sum(M.BULK_JOBS_COMPLETED, { [M.DIMENSION_REASON]: 'completed' })).toBe(1);
  expect(logger.lines).toContainEqual(expect.objectContaining({
    level: 'WARN',
    message: 'bulk completion: the manifest counts other successes than the output holds',
    attributes: expect.objectContaining({ successRecordCount: 2, succeededRecords: 3 }),
  }));
});

test.each([
  ['Failed', 'Amazon Bedrock could not validate GetObject permissions for your Amazon S3 bucket', 'Bedrock batch inference job Failed: Amazon Bedrock could not validate GetObject permissions for your Amazon S3 bucket'],
  ['Expired', '', 'Bedrock batch inference job Expired'],
])('%s: every item fails with the failure message', async (status, failureMessage, message) => {
  await createBulkJob(4);
  const summary = await handleBulkJobStateChange(stateChange(status, failureMessage), deps());
  expect(summary).toMatchObject({ outcome: 'failed', status, written: 4, duplicates: 0, missing: 4 });
  expect(store.calls.filter((c) => c.method === 'failBulkJob').map((c) => c.args)).toEqual([[TENANT, JOB_ID, message, TTL]]);
  expect(results().map((r) => [r.index, r.status, r.error?.message])).toEqual([0, 1, 2, 3].map((i) => [i, 'failed', message]));
  expect(await store.getJob(TENANT, JOB_ID)).toMatchObject({ succeeded: 0, failed: 4, failureMessage: message });
  expect(metrics.sum(M.RESULTS_WRITTEN)).toBe(4);
  expect(metrics.sum(M.BULK_JOBS_COMPLETED, { [M.DIMENSION_REASON]: 'failed' })).toBe(1);

  // Redelivered: nothing changes, nothing is counted.
  metrics.entries.length = 0;
  expect(await handleBulkJobStateChange(stateChange(status, failureMessage), deps())).toMatchObject({ written: 0 });
  expect(metrics.sum(M.BULK_JOBS_COMPLETED, { [M.DIMENSION_REASON]: 'failed' })).toBeUndefined();
});

test('Stopped: the records Bedrock processed before the stop are kept, the rest fail', async () => {
  await createBulkJob(4);
  s3.putObject(BUCKET, outputKey('input.jsonl.out'), `${converseLine(3, 'three', 100, 20)}\n${converseLine(0, 'zero', 100, 20)}\n`, 'application/octet-stream');
  const summary = await handleBulkJobStateChange(stateChange('Stopped', 'Stopped by the user'), deps());
  expect(summary).toMatchObject({ outcome: 'failed', written: 4, succeededRecords: 2, missing: 2 });
  expect(results().map((r) => [r.index, r.status])).toEqual([[0, 'succeeded'], [1, 'failed'], [2, 'failed'], [3, 'succeeded']]);
  expect(results()[1].error?.message).toBe('Bedrock batch inference job Stopped: Stopped by the user');
  expect(results()[0].costUsd).toBe(0.00008); // (100 × 0.0008 + 20 × 0.004) / 1000 / 2
  expect(metrics.sum(M.BULK_JOBS_COMPLETED, { [M.DIMENSION_REASON]: 'partial' })).toBe(1);
});

test('an event of an unknown batch job, or not a batch inference state change, is logged and ignored', async () => {
  await createBulkJob(5);
  putRecordedOutput();
  const unknownArn = 'arn:aws:bedrock:us-east-1:111122223333:model-invocation-job/zzzzzzzzzzzz';
  expect(await handleBulkJobStateChange(stateChange('Completed', '', unknownArn), deps())).toMatchObject({ outcome: 'unknown-job', written: 0 });
  expect(logger.lines).toContainEqual(expect.objectContaining({ level: 'WARN', message: 'bulk completion: no job has this batch inference job; ignored' }));

  const customization = { ...stateChange('Completed'), 'detail-type': 'Model Customization Job State Change' };
  expect(await handleBulkJobStateChange(customization, deps())).toMatchObject({ outcome: 'ignored' });
  expect(await handleBulkJobStateChange({ ...stateChange('Completed'), detail: {} }, deps())).toMatchObject({ outcome: 'ignored' });

  expect(store.calls.filter((c) => c.method === 'writeResult' || c.method === 'failBulkJob')).toEqual([]);
  expect(s3.callsOf('GetObject')).toEqual([]);
  expect(metrics.entries).toEqual([]);
});

test('InProgress marks the job started; Submitted, Validating, Scheduled and Stopping change nothing', async () => {
  await createBulkJob(5);
  for (const status of ['Submitted', 'Validating', 'Scheduled']) {
    expect(await handleBulkJobStateChange(stateChange(status), deps())).toMatchObject({ outcome: 'pending', written: 0 });
  }
  expect((await store.getJob(TENANT, JOB_ID))?.startedAt).toBeUndefined();
  expect(await handleBulkJobStateChange(stateChange('InProgress'), deps())).toMatchObject({ outcome: 'started' });
  expect((await store.getJob(TENANT, JOB_ID))?.startedAt).toBe(NOW);
  expect(await handleBulkJobStateChange(stateChange('Stopping'), deps())).toMatchObject({ outcome: 'pending' });
  expect(s3.calls).toEqual([]);
  expect(metrics.entries).toEqual([]);
});

test('Completed without any output is thrown (for EventBridge to retry), and a retry once it is there loads it', async () => {
  await createBulkJob(5);
  const err = await rejection(handleBulkJobStateChange(stateChange('Completed'), deps()));
  expect(err.message).toContain(`nothing ends in .jsonl.out under ${bulkOutputPrefix({ outputPrefix: OUTPUT_PREFIX }, TENANT, JOB_ID)}`);
  expect(results()).toEqual([]);

  putRecordedOutput();
  expect(await handleBulkJobStateChange(stateChange('Completed'), deps())).toMatchObject({ written: 5 });
});

test('S3 or the store failing midway is thrown; the redelivered event completes the job without counting anything twice', async () => {
  await createBulkJob(5);
  putRecordedOutput();
  s3.failGet(BUCKET, outputKey('input.jsonl.out'), { status: 500, code: 'InternalError', message: 'We encountered an internal error.' });
  expect((await rejection(handleBulkJobStateChange(stateChange('PartiallyCompleted'), deps()))).name).toBe('InternalError');
  s3.clearFailures();

  store.writeFailure = Object.assign(new Error('Throughput exceeds the current capacity of your table'), { name: 'ProvisionedThroughputExceededException' });
  store.writesBeforeFailure = 2;
  expect((await rejection(handleBulkJobStateChange(stateChange('PartiallyCompleted'), deps()))).name).toBe('ProvisionedThroughputExceededException');
  expect(results().length).toBeGreaterThan(0);
  expect(results().length).toBeLessThan(5);
  expect(metrics.entries).toEqual([]);

  store.writeFailure = undefined;
  const retried = await handleBulkJobStateChange(stateChange('PartiallyCompleted'), deps());
  expect(retried.written + retried.duplicates).toBe(5);
  expect(retried.duplicates).toBeGreaterThan(0);
  expect(await store.getJob(TENANT, JOB_ID)).toMatchObject({ succeeded: 3, failed: 2 });
  expect(metrics.sum(M.BULK_JOBS_COMPLETED, { [M.DIMENSION_REASON]: 'partial' })).toBe(1);
});

test('unusable output lines are skipped with a warning: not JSON, foreign or out-of-range record ids, repeated records', async () => {
  await createBulkJob(2);
  s3.putObject(BUCKET, outputKey('input.jsonl.out'), [
    '{"recordId": "R00000',
    JSON.stringify({ recordId: '3223593EFGH', modelOutput: {} }),
    converseLine(7, 'beyond the job', 1, 1),
    converseLine(1, 'one', 1, 1),
    converseLine(1, 'one again', 1, 1),
    JSON.stringify({ recordId: recordIdOf(0), modelOutput: { stopReason: 'end_turn' } }),
  ].join('\n'), 'application/octet-stream');
  const summary = await handleBulkJobStateChange(stateChange('Completed'), deps());
  expect(summary).toMatchObject({ written: 2, skippedLines: 4, succeededRecords: 1, errorRecords: 1 });
  expect(results().map((r) => [r.index, r.status, r.output?.text ?? r.error?.code])).toEqual([[0, 'failed', 'invalid-output'], [1, 'succeeded', 'one']]);
  expect(logger.lines.filter((l) => l.message === 'bulk completion: output line skipped').map((l) => l.attributes.reason)).toEqual([
    'not JSON',
    'unknown recordId "3223593EFGH"',
    "recordId R0000000007 is beyond the job's 2 items",
    'record of item 1 repeated',
  ]);
});

test('an event whose job is gone, or now records another batch job, is ignored', async () => {
  await createBulkJob(3);
  const later = 'arn:aws:bedrock:us-east-1:111122223333:model-invocation-job/n3wj0b000001';
  await store.recordBulkJob(TENANT, JOB_ID, later, TTL);
  putRecordedOutput();
  expect(await handleBulkJobStateChange(stateChange('Completed'), deps())).toMatchObject({ outcome: 'unknown-job', jobId: JOB_ID, written: 0 });
  expect(logger.lines).toContainEqual(expect.objectContaining({ level: 'WARN', message: 'bulk completion: the job records another batch inference job; ignored' }));

  const gone = Object.assign(Object.create(store) as MemoryJobStore, { getJob: async () => undefined });
  expect(await handleBulkJobStateChange(stateChange('Completed', '', later), deps({ store: gone }))).toMatchObject({ outcome: 'unknown-job', written: 0 });
  expect(logger.lines).toContainEqual(expect.objectContaining({ level: 'WARN', message: 'bulk completion: the job of this batch inference job no longer exists; ignored' }));
  expect(results()).toEqual([]);
  expect(s3.callsOf('GetObject')).toEqual([]);
});
