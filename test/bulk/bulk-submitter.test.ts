/**
 * BedrockBulkSubmitter against real local servers with the real SDK clients: the S3 protocol
 * server (PutObject, path-style) and the Bedrock control-plane server (CreateModelInvocationJob,
 * restJson1, validated as the API reference documents it).
 */
import { BedrockClient } from '@aws-sdk/client-bedrock';
import { S3Client } from '@aws-sdk/client-s3';
import type { BulkRuntimeConfig, RouterRuntimeConfig } from '../../constructs/contract/runtime-config';
import { BedrockBulkSubmitter, bulkClientRequestToken, bulkJobName } from '../../lambdas/adapters/bedrock-bulk-submitter';
import { HttpError } from '../../lambdas/core/errors';
import { idHash } from '../../lambdas/core/hashing';
import { itemIndexOfRecordId, recordIdOf } from '../../lambdas/core/jobs/bulk-layout';
import { ControlPlaneFailures, LocalBedrockControlServer } from '../support/bedrock-control-server';
import { LocalS3Server } from '../support/s3-protocol-server';

const BUCKET = 'bulk-jobs-bucket';
const ROLE_ARN = 'arn:aws:iam::111122223333:role/scalable-ai-bulk-batch-role';
const MODEL_ID = 'us.anthropic.claude-3-5-haiku-20241022-v1:0';
const TENANT = 'acme';
const JOB_ID = '5f0c9a3e-8d1b-4c7e-9f2a-0b6d4e8c1a7f';

const bulkConfig: BulkRuntimeConfig = {
  bucketName: BUCKET,
  inputPrefix: 'bulk/input/',
  outputPrefix: 'bulk/output/',
  roleArn: ROLE_ARN,
  tierId: 'small',
  minItems: 3,
  maxItems: 5,
  timeoutHours: 72,
};

const routerConfig: RouterRuntimeConfig = {
  tiers: [
    { id: 'small', provider: 'bedrock', modelId: MODEL_ID, inputPricePer1k: 0.0008, outputPricePer1k: 0.004, maxTokens: 1024, timeoutMs: 10_000 },
    { id: 'large', provider: 'sagemaker', endpointName: 'llama-large', apiFormat: 'openai-chat', inputPricePer1k: 0.002, outputPricePer1k: 0.006, maxTokens: 4096, timeoutMs: 30_000 },
  ],
  tierHintPolicy: 'ignore',
  maxRequestBytes: 32_768,
  maxMessages: 20,
  tenant: { source: 'iam' },
  personalCaching: 'none',
};

const REQUESTS: unknown[] = [
  { messages: [{ role: 'user', content: 'Where is my order 1234?' }], system: 'You are the Acme support assistant.', maxTokens: 5000, temperature: 0.2 },
  { messages: [{ role: 'user', content: [{ text: 'Summarize:' }, { text: 'the parcel arrived damaged.' }] }] },
  {
    messages: [
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Hello! How can I help?' },
      { role: 'user', content: 'Cancel my subscription.' },
    ],
    maxTokens: 100,
    tier: 'large',
  },
];

let s3: LocalS3Server;
let bedrock: LocalBedrockControlServer;
let s3Client: S3Client;
let bedrockClient: BedrockClient;
const savedEnv = { ...process.env };

function clients(): { s3: S3Client; bedrock: BedrockClient } {
  return { s3: s3Client, bedrock: bedrockClient };
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
  [s3, bedrock] = await Promise.all([LocalS3Server.start({ host: 'localhost' }), LocalBedrockControlServer.start()]);
  const credentials = { accessKeyId: 'AKIDLOCALTEST', secretAccessKey: 'local-test-secret' };
  s3Client = new S3Client({ endpoint: s3.url, region: 'us-east-1', forcePathStyle: true, credentials, maxAttempts: 1 });
  bedrockClient = new BedrockClient({ endpoint: bedrock.url, region: 'us-east-1', credentials, maxAttempts: 1 });
});

beforeEach(() => {
  s3.reset();
  s3.createBucket(BUCKET);
  bedrock.reset();
});

afterAll(async () => {
  s3Client?.destroy();
  bedrockClient?.destroy();
  await Promise.all([s3?.close(), bedrock?.close()]);
  for (const key of Object.keys(process.env)) if (!(key in savedEnv)) delete process.env[key];
  Object.assign(process.env, savedEnv);
});

test('writes one JSONL record per request (Converse bodies) and creates the batch inference job', async () => {
  const submitter = new BedrockBulkSubmitter(bulkConfig, routerConfig, clients());
  const { bulkJobArn } = await submitter.submit({ tenantId: TENANT, jobId: JOB_ID, requests: REQUESTS });

  // The input object: path-style PutObject, no SSE header (the bucket's default encryption applies).
  const key = `bulk/input/${idHash(TENANT)}/${JOB_ID}/input.jsonl`;
  expect(s3.keys(BUCKET)).toEqual([key]);
  const [put] = s3.callsOf('PutObject');
  expect(put).toMatchObject({ status: 200, path: `/${BUCKET}/${key}`, host: new URL(s3.url).host });
  expect(put.headers['x-amz-server-side-encryption']).toBeUndefined();
  const stored = s3.getObject(BUCKET, key)!;
  expect(stored.contentType).toBe('application/jsonl');
  const text = stored.body.toString('utf8');
  expect(text.endsWith('\n')).toBe(true);
  const records = text.trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);

  expect(records).toEqual([
    {
      recordId: 'R0000000000',
      modelInput: {
        messages: [{ role: 'user', content: [{ text: 'Where is my order 1234?' }] }],
        system: [{ text: 'You are the Acme support assistant.' }],
        // maxTokens is capped to the tier's limit.
        inferenceConfig: { maxTokens: 1024, temperature: 0.2 },
      },
    },
    {
      recordId: 'R0000000001',
      // Content blocks are joined, as the router does; no maxTokens asked: the tier's limit.
      modelInput: { messages: [{ role: 'user', content: [{ text: 'Summarize:\nthe parcel arrived damaged.' }] }], inferenceConfig: { maxTokens: 1024 } },
    },
    {
      recordId: 'R0000000002',
      modelInput: {
        messages: [
          { role: 'user', content: [{ text: 'Hi' }] },
          { role: 'assistant', content: [{ text: 'Hello! How can I help?' }] },
          { role: 'user', content: [{ text: 'Cancel my subscription.' }] },
        ],
        inferenceConfig: { maxTokens: 100 },
      },
    },
  ]);
  // Record ids: 11+ alphanumerics, derived from the item index and back.
  for (const [i, r] of records.entries()) {
    expect(r.recordId).toMatch(/^[A-Za-z0-9]{11,}$/);
    expect(itemIndexOfRecordId(r.recordId)).toBe(i);
  }

  // The CreateModelInvocationJob request.
  expect(bedrock.requests).toHaveLength(1);
  const [req] = bedrock.requests;
  expect(req).toMatchObject({ method: 'POST', path: '/model-invocation-job', outcome: 'ok', status: 200 });
  expect(req.headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDLOCALTEST\/\d{8}\/us-east-1\/bedrock\//);
  expect(req.body).toEqual({
    jobName: bulkJobName(TENANT, JOB_ID),
    clientRequestToken: JOB_ID,
    roleArn: ROLE_ARN,
    modelId: MODEL_ID,
    modelInvocationType: 'Converse',
    inputDataConfig: { s3InputDataConfig: { s3Uri: `s3://${BUCKET}/${key}`, s3InputFormat: 'JSONL' } },
    outputDataConfig: { s3OutputDataConfig: { s3Uri: `s3://${BUCKET}/bulk/output/${idHash(TENANT)}/${JOB_ID}/` } },
    timeoutDurationInHours: 72,
  });
  expect(req.body.jobName).toMatch(/^sai-bulk-5f0c9a3e8d1b4c7e9f2a0b6d-[0-9a-f]{12}$/);
  expect(bulkJobArn).toBe(bedrock.jobs[0].jobArn);
  expect(bulkJobArn).toMatch(/^arn:aws:bedrock:us-east-1:111122223333:model-invocation-job\/[a-z0-9]{12}$/);
});

test('a retried submission of the same job rewrites the same input and gets the same Bedrock job (clientRequestToken)', async () => {
  const submitter = new BedrockBulkSubmitter(bulkConfig, routerConfig, clients());
  const first = await submitter.submit({ tenantId: TENANT, jobId: JOB_ID, requests: REQUESTS });
  const second = await submitter.submit({ tenantId: TENANT, jobId: JOB_ID, requests: REQUESTS });
  expect(second.bulkJobArn).toBe(first.bulkJobArn);
  expect(bedrock.jobs).toHaveLength(1);
  expect(bedrock.requests.map((r) => r.outcome)).toEqual(['ok', 'idempotent-replay']);
  expect(s3.keys(BUCKET)).toHaveLength(1);

  // Another job of the same tenant is another Bedrock job with another name.
  const other = await submitter.submit({ tenantId: TENANT, jobId: 'f1e2d3c4-0000-4000-8000-000000000001', requests: REQUESTS });
  expect(other.bulkJobArn).not.toBe(first.bulkJobArn);
  expect(bedrock.requests[2].body.jobName).not.toBe(bedrock.requests[0].body.jobName);
});

test.each([
  [2, 'A bulk job needs from 3 to 5 requests (Bedrock batch inference runs jobs of at least 3 records); got 2. Submit fewer requests without bulk mode'],
  [6, 'A bulk job needs from 3 to 5 requests (Bedrock batch inference runs jobs of at least 3 records); got 6. Split the requests into several jobs.'],
])('%d requests (outside [minItems, maxItems]) are refused with a 400; nothing is written or submitted', async (n, message) => {
  const submitter = new BedrockBulkSubmitter(bulkConfig, routerConfig, clients());
  const requests = Array.from({ length: n }, (_, i) => ({ messages: [{ role: 'user', content: `question ${i}` }] }));
  const err = await rejection(submitter.submit({ tenantId: TENANT, jobId: JOB_ID, requests }));
  expect(err).toBeInstanceOf(HttpError);
  expect((err as HttpError).statusCode).toBe(400);
  expect((err as HttpError).reason).toBe('invalid');
  expect(err.message).toContain(message);
  expect(s3.calls).toEqual([]);
  expect(bedrock.requests).toEqual([]);
});

test('an invalid request is refused with a 400 that names it; a session (user context) is refused in bulk mode', async () => {
  const submitter = new BedrockBulkSubmitter(bulkConfig, routerConfig, clients());
  const bad = [REQUESTS[0], { messages: [{ role: 'assistant', content: 'hi' }] }, REQUESTS[2]];
  let err = await rejection(submitter.submit({ tenantId: TENANT, jobId: JOB_ID, requests: bad }));
  expect(err).toBeInstanceOf(HttpError);
  expect((err as HttpError).statusCode).toBe(400);
  expect(err.message).toBe('requests.1: Invalid request: messages.0.role: must be "user" (turns alternate, starting with "user")');

  const huge = [REQUESTS[0], REQUESTS[1], { messages: [{ role: 'user', content: 'x'.repeat(40_000) }] }];
  err = await rejection(submitter.submit({ tenantId: TENANT, jobId: JOB_ID, requests: huge }));
  expect((err as HttpError).statusCode).toBe(413);
  expect(err.message).toMatch(/^requests\.2: Request body is \d+ bytes; the limit is 32768 bytes$/);

  const session = [REQUESTS[0], { messages: [{ role: 'user', content: 'hi' }], session: 'chat-42' }, REQUESTS[2]];
  err = await rejection(submitter.submit({ tenantId: TENANT, jobId: JOB_ID, requests: session }));
  expect((err as HttpError).statusCode).toBe(400);
  expect(err.message).toBe('requests.1: session is not supported in bulk mode; send the conversation in messages');
  expect(s3.calls).toEqual([]);
  expect(bedrock.requests).toEqual([]);
});

test('the bulk tier must be a Bedrock tier of the router; the timeout must be within Bedrock\'s 24-168 hours', () => {
  expect(() => new BedrockBulkSubmitter({ ...bulkConfig, tierId: 'large' }, routerConfig, clients())).toThrow(
    'Bulk mode: tier "large" is a sagemaker tier; Bedrock batch inference needs a Bedrock tier with a modelId',
  );
  expect(() => new BedrockBulkSubmitter({ ...bulkConfig, tierId: 'medium' }, routerConfig, clients())).toThrow(
    'Bulk mode: tier "medium" is not a tier of the router (tiers: small, large)',
  );
  expect(() => new BedrockBulkSubmitter({ ...bulkConfig, timeoutHours: 12 }, routerConfig, clients())).toThrow(/timeoutHours must be an integer from 24 to 168; got 12/);
  expect(() => new BedrockBulkSubmitter({ ...bulkConfig, minItems: 10, maxItems: 5 }, routerConfig, clients())).toThrow(/minItems <= maxItems/);
});

test('Bedrock throttling becomes a 503 with Retry-After; a ValidationException (a deployment error) is thrown as it is', async () => {
  const submitter = new BedrockBulkSubmitter(bulkConfig, routerConfig, clients());
  bedrock.failNext(ControlPlaneFailures.throttling());
  let err = await rejection(submitter.submit({ tenantId: TENANT, jobId: JOB_ID, requests: REQUESTS }));
  expect(err).toBeInstanceOf(HttpError);
  expect((err as HttpError).statusCode).toBe(503);
  expect((err as HttpError).headers).toEqual({ 'retry-after': '60' });
  expect(err.message).toContain('Bedrock CreateModelInvocationJob failed (ThrottlingException: Too many requests');

  bedrock.failNext(ControlPlaneFailures.quota());
  err = await rejection(submitter.submit({ tenantId: TENANT, jobId: JOB_ID, requests: REQUESTS }));
  expect((err as HttpError).statusCode).toBe(503);

  bedrock.failNext(ControlPlaneFailures.validation('The model does not support batch inference with Converse'));
  err = await rejection(submitter.submit({ tenantId: TENANT, jobId: JOB_ID, requests: REQUESTS }));
  expect(err).not.toBeInstanceOf(HttpError);
  expect(err.name).toBe('ValidationException');
  expect(err.message).toBe('The model does not support batch inference with Converse');
  expect(bedrock.jobs).toEqual([]);
});

test('an S3 failure writing the input becomes a 503 and no Bedrock job is created', async () => {
  const submitter = new BedrockBulkSubmitter(bulkConfig, routerConfig, clients());
  s3.failPut(BUCKET, { status: 503, code: 'SlowDown', message: 'Please reduce your request rate.' });
  const err = await rejection(submitter.submit({ tenantId: TENANT, jobId: JOB_ID, requests: REQUESTS }));
  expect((err as HttpError).statusCode).toBe(503);
  expect(err.message).toContain('S3 PutObject of the bulk input failed (SlowDown');
  expect(bedrock.requests).toEqual([]);
});

test('default clients: endpoints from AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL_BEDROCK, S3 path-style, SDK retries a throttled create', async () => {
  Object.assign(process.env, s3.env(), bedrock.env());
  const submitter = new BedrockBulkSubmitter(bulkConfig, routerConfig);
  bedrock.failNext(ControlPlaneFailures.throttling());
  const { bulkJobArn } = await submitter.submit({ tenantId: TENANT, jobId: JOB_ID, requests: REQUESTS });
  expect(bulkJobArn).toBe(bedrock.jobs[0].jobArn);
  expect(bedrock.requests.map((r) => r.outcome)).toEqual(['ThrottlingException', 'ok']);
  // localhost is only reachable path-style: the bucket is the first path segment.
  expect(s3.callsOf('PutObject').map((c) => [c.host, c.path.split('/')[1], c.status])).toEqual([[new URL(s3.url).host, BUCKET, 200]]);
});

test('job names and idempotency tokens stay within the API patterns whatever the job id', () => {
  for (const jobId of [JOB_ID, 'job_2026-11-27:01', 'x'.repeat(300), '---', 'ÄÖÜ']) {
    const name = bulkJobName('tenant with spaces', jobId);
    expect(name.length).toBeLessThanOrEqual(63);
    expect(name).toMatch(/^[a-zA-Z0-9]{1,63}(-*[a-zA-Z0-9+\-.]){0,63}$/);
    const token = bulkClientRequestToken(jobId);
    expect(token.length).toBeLessThanOrEqual(256);
    expect(token).toMatch(/^[a-zA-Z0-9]{1,256}(-*[a-zA-Z0-9]){0,256}$/);
    expect(bulkClientRequestToken(jobId)).toBe(token);
  }
  expect(bulkClientRequestToken(JOB_ID)).toBe(JOB_ID);
  expect(bulkJobName('acme', JOB_ID)).not.toBe(bulkJobName('globex', JOB_ID));
  expect(recordIdOf(0)).toBe('R0000000000');
  expect(recordIdOf(49_999)).toBe('R0000049999');
  expect(itemIndexOfRecordId('R0000049999')).toBe(49_999);
  expect(itemIndexOfRecordId('3223593EFGH')).toBeUndefined();
});
