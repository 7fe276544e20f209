/**
 * The jobs API Lambda handler (`POST /v1/jobs`, `GET /v1/jobs/{id}`) against real local servers,
 * through the real AWS SDK v3 clients:
 * - DynamoDB: dynalite behind the transactional proxy (results table + the Powertools
 *   idempotency table, used by the real DynamoDBPersistenceLayer);
 * - SQS: the local AWS JSON 1.0 server, which records the messages and fails calls on demand.
 * Metrics are read from the EMF lines Powertools writes to stdout.
 */
import { randomUUID } from 'node:crypto';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import {
  callApi, getEvent, jobsConfig, JOBS_TABLES, question, RESULTS_TABLE, routerConfig, submitEvent, TENANT_A, TENANT_A_USER_1, TENANT_A_USER_2,
  TENANT_B_USER_1, useEnvironment, type ApiCall, type ApiResponse, type JobBody, type SubmitBody,
} from './harness';
import { AiMetricNames as M } from '../../constructs/contract/metrics';
import { DynamoDbJobStore } from '../../lambdas/adapters/dynamodb-job-store';
import type { JobMessage } from '../../lambdas/core/jobs/job-model';
import type * as JobsApi from '../../lambdas/jobs-api/handler';
import { DynamoErrors, TransactionalDynalite } from '../support/dynamodb-transactions';
import { metricSum } from '../support/lambda-harness';
import { SqsErrors, LocalSqsServer } from '../support/sqs-protocol-server';

const MAX_ITEMS = 8;

let dynamo: TransactionalDynalite;
let sqs: LocalSqsServer;
let queueUrl: string;
let store: DynamoDbJobStore;
let handler: typeof JobsApi.handler;
let env: ReturnType<typeof useEnvironment>;

beforeAll(async () => {
  [dynamo, sqs] = await Promise.all([TransactionalDynalite.start(JOBS_TABLES), LocalSqsServer.start()]);
  queueUrl = sqs.createQueue('jobs');
  store = new DynamoDbJobStore(RESULTS_TABLE, dynamo.client());
  env = useEnvironment({ ...dynamo.env(), ...sqs.env() }, { router: routerConfig(), jobs: jobsConfig(queueUrl, { maxItemsPerJob: MAX_ITEMS }) });
  // The handler reads its configuration at module load: load it only now.
  ({ handler } = jest.requireActual<typeof JobsApi>('../../lambdas/jobs-api/handler'));
});

beforeEach(() => sqs.reset());

afterAll(async () => {
  env?.restore();
  await Promise.all([dynamo?.stop(), sqs?.close()]);
});

const submit = (call: ApiCall): Promise<ApiResponse<SubmitBody>> => callApi<SubmitBody>(handler, env.captured, submitEvent(call));
const get = (jobId: string, call: ApiCall = {}): Promise<ApiResponse<JobBody>> => callApi<JobBody>(handler, env.captured, getEvent(jobId, call));
const sentMessages = (): JobMessage[] => sqs.messages(queueUrl).map((m) => JSON.parse(m.body) as JobMessage);

describe('POST /v1/jobs', () => {
  test('a single request: 202 with a job id, the job stored as queued, one message enqueued', async () => {
    const r = await submit({ body: { request: question('What are your opening hours?') } });
    expect(r.status).toBe(202);
    expect(r.body).toEqual({
      jobId: expect.stringMatching(/^[0-9a-f-]{36}$/),
      status: 'queued',
      mode: 'queue',
      items: 1,
      createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      links: { self: `/v1/jobs/${r.body.jobId}` },
    });
    expect(r.headers.location).toBe(`/v1/jobs/${r.body.jobId}`);
    expect(sentMessages()).toEqual([
      { v: 1, jobId: r.body.jobId, tenantId: TENANT_A, userId: 'user-1', index: 0, request: question('What are your opening hours?') },
    ]);
    expect(metricSum(r.metrics, M.JOBS_SUBMITTED)).toBe(1);
    // `Requests` counts chat requests (cost per request, error rate): a submission is not one.
    expect(metricSum(r.metrics, M.REQUESTS)).toBe(0);

    const status = await get(r.body.jobId);
    expect(status.status).toBe(200);
    // Nor is a poll.
    expect(metricSum(status.metrics, M.REQUESTS)).toBe(0);
    expect(status.body).toMatchObject({ jobId: r.body.jobId, status: 'queued', items: 1, succeeded: 0, failed: 0, mode: 'queue' });
    expect(status.body.result).toBeUndefined();
    expect(status.body.startedAt).toBeUndefined();
  });

  test('a list: one message per request, in one SendMessageBatch', async () => {
    const requests = [question('one'), question('two', { tier: 'large' }), question('three', { maxTokens: 20 })];
    const r = await submit({ body: { requests } });
    expect(r.status).toBe(202);
    expect(r.body.items).toBe(3);
    const messages = sentMessages().sort((a, b) => a.index - b.index);
    expect(messages.map((m) => [m.jobId, m.index, m.request])).toEqual(requests.map((req, i) => [r.body.jobId, i, req]));
    expect(sqs.calls.filter((c) => c.operation === 'SendMessageBatch')).toHaveLength(1);
  });

  const rejections: Array<[string, ApiCall, number, string, RegExp]> = [
    ['no body', { raw: '' }, 400, 'invalid', /body is required/],
    ['not JSON', { raw: '{"requests": [' }, 400, 'invalid', /not valid JSON/],
    ['a bare list', { body: [question('hi')] }, 400, 'invalid', /must be an object/],
    ['a bare chat request', { body: question('hi') }, 400, 'invalid', /a job wraps its chat request: \{ "request"/],
    ['an unknown field', { body: { requests: [question('hi')], priority: 'high' } }, 400, 'invalid', /unknown field "priority"/],
    ['both request and requests', { body: { request: question('a'), requests: [question('b')] } }, 400, 'invalid', /exactly one of "request" and "requests"/],
    ['an empty list', { body: { requests: [] } }, 400, 'invalid', /requests: must not be empty/],
    ['requests not a list', { body: { requests: question('a') } }, 400, 'invalid', /requests: must be an array/],
    ['an unknown mode', { body: { mode: 'later', request: question('a') } }, 400, 'invalid', /mode: must be "queue" or "bulk"/],
    ['bulk mode where it is not enabled', { body: { mode: 'bulk', requests: [question('a')] } }, 400, 'invalid', /bulk mode is not enabled/],
    [
      'an invalid fourth request',
      { body: { requests: [question('a'), question('b'), question('c'), { messages: [{ role: 'assistant', content: 'x' }] }] } },
      400, 'invalid', /^Invalid request: requests\.3\.messages\.0\.role: must be "user"/,
    ],
    ['a request with an unknown field', { body: { requests: [question('a'), { ...question('b'), stream: true }] } }, 400, 'invalid', /^Invalid request: requests\.1: Unrecognized key.*stream/],
    ['an invalid single request', { body: { request: { messages: [] } } }, 400, 'invalid', /^Invalid request: request\.messages: messages must not be empty/],
    ['an unknown tier', { body: { requests: [question('a', { tier: 'huge' })] } }, 400, 'invalid', /requests\.0\.tier: unknown tier "huge"/],
    ['more requests than maxItemsPerJob', { body: { requests: Array.from({ length: MAX_ITEMS + 1 }, (_, i) => question(`q${i}`)) } }, 413, 'too-large', new RegExp(`at most ${MAX_ITEMS} requests are accepted per job, got ${MAX_ITEMS + 1}`)],
    ['a request over maxRequestBytes', { body: { requests: [question('a'), question('x'.repeat(3_000))] } }, 413, 'too-large', /requests\.1: the request is \d+ bytes; the limit is 2048 bytes/],
    ['an invalid Idempotency-Key', { body: { request: question('a') }, headers: { 'idempotency-key': '\u00e9t\u00e9' } }, 400, 'invalid', /Idempotency-Key/],
    ['no tenant in the authorizer context', { body: { request: question('a') }, userArn: null }, 401, 'unauthenticated', /No tenant/],
    [
      'a request nested 8,000 levels deep (a 16 KB body)',
      { raw: `{"request": {"messages": [{"role": "user", "content": "hi"}], "x": ${'['.repeat(8_000)}${']'.repeat(8_000)}}}` },
      400, 'invalid', /more than 32 levels deep; the limit is 32/,
    ],
    ['a deeply nested envelope', { raw: `{"requests": ${'[{"a": '.repeat(1_500)}1${'}]'.repeat(1_500)}}` }, 400, 'invalid', /the limit is 32/],
  ];
  test.each(rejections.map(([name, call, status, reason, message]) => [name, status, reason, call, message] as const))('%s → %i %s; nothing stored or enqueued', async (_, status, reason, call, message) => {
    const puts = dynamo.callsOf('PutItem').length;
    const r = await submit(call);
    expect(r.status).toBe(status);
    expect(r.body.error?.code).toBe(reason);
    expect(r.body.error?.message).toMatch(message);
    expect(sqs.sent).toHaveLength(0);
    expect(dynamo.callsOf('PutItem').length).toBe(puts);
    expect(metricSum(r.metrics, M.REJECTED_REQUESTS, { [M.DIMENSION_REASON]: reason })).toBe(1);
    expect(metricSum(r.metrics, M.JOBS_SUBMITTED)).toBe(0);
  });

  test.each<[string, (event: APIGatewayProxyEventV2) => void]>([
    ['no requestContext', (event) => delete (event as { requestContext?: unknown }).requestContext],
    ['a userArn that is a number', (event) => ((event.requestContext as unknown as { authorizer: { iam: Record<string, unknown> } }).authorizer.iam.userArn = 42)],
  ])('%s → 401, nothing stored or enqueued', async (_, spoil) => {
    const event = submitEvent({ body: { request: question('a') } });
    spoil(event);
    const r = await callApi<SubmitBody>(handler, env.captured, event);
    expect(r.status).toBe(401);
    expect(r.body.error?.code).toBe('unauthenticated');
    expect(sqs.sent).toHaveLength(0);
  });

  test('the job is stored before anything is enqueued: a store failure answers 503 and enqueues nothing', async () => {
    // The job is created by one transaction (its header and counter shards).
    const stop = dynamo.failWhen((operation, body) => {
      const items = (body.TransactItems ?? []) as Array<{ Put?: { TableName?: string } }>;
      return operation === 'TransactWriteItems' && items.some((i) => i.Put?.TableName === RESULTS_TABLE) ? DynamoErrors.internal() : undefined;
    });
    try {
      const r = await submit({ body: { request: question('stored first?') } });
      expect(r.status).toBe(503);
      expect(r.headers['retry-after']).toBe('2');
      expect(r.body.error?.message).toMatch(/could not be stored; nothing was queued/);
    } finally {
      stop();
    }
    expect(sqs.calls).toHaveLength(0);
  });

  test('SQS failing: 503, and the job reads failed (nothing silently lost)', async () => {
    // The SDK makes 3 attempts: every one fails.
    sqs.failNextCalls(SqsErrors.unavailable(), 3);
    const r = await submit({ body: { requests: [question('a'), question('b')] } });
    expect(r.status).toBe(503);
    expect(r.body.error?.code).toBe('unavailable');
    expect(r.headers['retry-after']).toBe('2');
    const jobId = /job ([0-9a-f-]{36}) was recorded as failed/.exec(r.body.error?.message ?? '')?.[1];
    expect(jobId).toBeDefined();
    expect(sqs.calls.filter((c) => c.operation === 'SendMessageBatch')).toHaveLength(3);
    expect(metricSum(r.metrics, M.JOBS_SUBMITTED)).toBe(0);

    const status = await get(jobId!);
    expect(status.body).toMatchObject({ status: 'failed', items: 2, succeeded: 0, failed: 2 });
    expect(status.body.error).toEqual({ code: 'job-failed', message: expect.stringMatching(/could not be queued/) });
    expect(status.body.results?.map((x) => [x.index, x.status, x.error?.code])).toEqual([[0, 'failed', 'job-failed'], [1, 'failed', 'job-failed']]);
  });
});

describe('Idempotency-Key', () => {
  test('a retried submission returns the same job and enqueues nothing new', async () => {
    const key = `order-${randomUUID()}`;
    const body = { requests: [question('one'), question('two')] };
    const first = await submit({ body, headers: { 'idempotency-key': key } });
    const second = await submit({ body, headers: { 'Idempotency-Key': key } });
    expect(first.status).toBe(202);
    expect(second.status).toBe(202);
    expect(second.body).toEqual(first.body);
    expect(second.headers['idempotent-replayed']).toBe('true');
    expect(first.headers['idempotent-replayed']).toBeUndefined();
    // Two calls, one set of messages.
    expect(sentMessages().map((m) => [m.jobId, m.index]).sort()).toEqual([[first.body.jobId, 0], [first.body.jobId, 1]]);
    expect(metricSum(first.metrics, M.JOBS_SUBMITTED)).toBe(1);
    expect(metricSum(second.metrics, M.JOBS_SUBMITTED)).toBe(0);
    // The same body with its keys in another order and other spacing is the same payload.
    const reordered = await submit({ raw: `{ "requests": [ ${JSON.stringify(question('one'))}, {"messages":[{"content":"two","role":"user"}]} ] }`, headers: { 'idempotency-key': key } });
    expect(reordered.body.jobId).toBe(first.body.jobId);
  });

  test('the key is scoped to the tenant and the user: another tenant, or another user, with the same key gets its own job', async () => {
    const key = `shared-${randomUUID()}`;
    const body = { request: question('same words', { session: 'support-1' }) };
    const a = await submit({ body, headers: { 'idempotency-key': key }, userArn: TENANT_A_USER_1 });
    const b = await submit({ body, headers: { 'idempotency-key': key }, userArn: TENANT_B_USER_1 });
    // Another user of tenant A replaying A's key and body: a job of their own, never user-1's
    // (whose answer may come from user-1's session context).
    const a2 = await submit({ body, headers: { 'idempotency-key': key }, userArn: TENANT_A_USER_2 });
    expect([a.status, b.status, a2.status]).toEqual([202, 202, 202]);
    expect(b.body.jobId).not.toBe(a.body.jobId);
    expect(a2.body.jobId).not.toBe(a.body.jobId);
    expect(a2.headers['idempotent-replayed']).toBeUndefined();
    expect(metricSum(a2.metrics, M.JOBS_SUBMITTED)).toBe(1);
    expect(new Set(sentMessages().map((m) => m.jobId))).toEqual(new Set([a.body.jobId, b.body.jobId, a2.body.jobId]));
    expect(sentMessages().find((m) => m.jobId === a2.body.jobId)?.userId).toBe('user-2');
    // The same user replaying still gets the same job.
    const again = await submit({ body, headers: { 'idempotency-key': key }, userArn: TENANT_A_USER_2 });
    expect(again.body.jobId).toBe(a2.body.jobId);
    expect(again.headers['idempotent-replayed']).toBe('true');
  });

  test('the same key with a different body: 422, and no new job', async () => {
    const key = `k-${randomUUID()}`;
    const first = await submit({ body: { request: question('first body') }, headers: { 'idempotency-key': key } });
    const other = await submit({ body: { request: question('another body') }, headers: { 'idempotency-key': key } });
    expect(other.status).toBe(422);
    expect(other.body.error?.code).toBe('idempotency-key-reused');
    expect(sentMessages().map((m) => m.jobId)).toEqual([first.body.jobId]);
    expect(metricSum(other.metrics, M.REJECTED_REQUESTS, { [M.DIMENSION_REASON]: 'idempotency-key-reused' })).toBe(1);
  });

  test('a submission that failed frees its key: the retry creates the job', async () => {
    const key = `retry-${randomUUID()}`;
    sqs.failNextCalls(SqsErrors.unavailable(), 3);
    const failed = await submit({ body: { request: question('try again') }, headers: { 'idempotency-key': key } });
    expect(failed.status).toBe(503);
    const retried = await submit({ body: { request: question('try again') }, headers: { 'idempotency-key': key } });
    expect(retried.status).toBe(202);
    expect(retried.headers['idempotent-replayed']).toBeUndefined();
    expect(sentMessages().map((m) => m.jobId)).toEqual([retried.body.jobId]);
    expect(failed.body.error?.message).not.toContain(retried.body.jobId);
  });
});

describe('GET /v1/jobs/{id}', () => {
  test('another tenant\'s job is 404, exactly like a job that does not exist', async () => {
    const r = await submit({ body: { request: question('mine') } });
    const other = await get(r.body.jobId, { userArn: TENANT_B_USER_1 });
    const missing = await get(randomUUID(), { userArn: TENANT_B_USER_1 });
    expect(other.status).toBe(404);
    expect(missing.status).toBe(404);
    expect(other.body.error?.code).toBe('not-found');
    expect(Object.keys(other.body)).toEqual(['error']);
    expect((await get('not-a-job-id')).status).toBe(404);
    expect(metricSum(other.metrics, M.REJECTED_REQUESTS, { [M.DIMENSION_REASON]: 'not-found' })).toBe(1);
  });

  test('a job submitted by a user is that user\'s alone: another user of the tenant gets 404, like a missing job', async () => {
    const r = await submit({ body: { request: question('what did I ask you yesterday?', { session: 'mine' }) }, userArn: TENANT_A_USER_1 });
    await store.writeResult(TENANT_A, r.body.jobId, { index: 0, status: 'succeeded', output: { text: 'from user-1\'s context' }, completedAt: Date.now() }, 3_600);
    expect((await get(r.body.jobId, { userArn: TENANT_A_USER_1 })).body.result?.output?.text).toBe('from user-1\'s context');

    const other = await get(r.body.jobId, { userArn: TENANT_A_USER_2 });
    expect(other.status).toBe(404);
    expect(other.body).toEqual({ error: { code: 'not-found', message: `No job with id "${r.body.jobId}"` } });
    // The tenant's role itself (a caller without a user id) cannot read it either.
    expect((await get(r.body.jobId, { userArn: TENANT_A })).status).toBe(404);
  });

  test('a job that is not personal belongs to the tenant: any user (any host of a backend role) may poll it or replay its key', async () => {
    const key = `tenant-wide-${randomUUID()}`;
    const body = { requests: [question('Do you ship to Canada?'), question('What are your opening hours?')] };
    const r = await submit({ body, headers: { 'idempotency-key': key }, userArn: TENANT_A_USER_1 });
    expect(r.status).toBe(202);
    // The worker still answers as user-1 (the caller), but the job is the tenant's.
    expect(sentMessages().map((m) => m.userId)).toEqual(['user-1', 'user-1']);
    expect((await get(r.body.jobId, { userArn: TENANT_A_USER_2 })).status).toBe(200);
    const replay = await submit({ body, headers: { 'idempotency-key': key }, userArn: TENANT_A_USER_2 });
    expect(replay.body.jobId).toBe(r.body.jobId);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect((await get(r.body.jobId, { userArn: TENANT_B_USER_1 })).status).toBe(404);
  });

  test('one personal request (a conversation) makes the whole job its user\'s', async () => {
    const conversation = {
      messages: [
        { role: 'user', content: 'My order number is 4411.' },
        { role: 'assistant', content: 'Thanks, I have it.' },
        { role: 'user', content: 'When will it arrive?' },
      ],
    };
    const r = await submit({ body: { requests: [question('Do you ship to Canada?'), conversation] }, userArn: TENANT_A_USER_1 });
    expect(r.status).toBe(202);
    expect((await get(r.body.jobId, { userArn: TENANT_A_USER_1 })).status).toBe(200);
    expect((await get(r.body.jobId, { userArn: TENANT_A_USER_2 })).status).toBe(404);
  });

  test('a job submitted without a user id is readable by every user of its tenant', async () => {
    const r = await submit({ body: { request: question('tenant-wide question') }, userArn: TENANT_A });
    expect(r.status).toBe(202);
    expect(sentMessages()[0].userId).toBeUndefined();
    for (const userArn of [TENANT_A, TENANT_A_USER_1, TENANT_A_USER_2]) {
      expect((await get(r.body.jobId, { userArn })).status).toBe(200);
    }
    expect((await get(r.body.jobId, { userArn: TENANT_B_USER_1 })).status).toBe(404);
  });

  test('the job store failing: 503 with retry-after, not a bare 500', async () => {
    const r = await submit({ body: { requests: [question('a'), question('b')] } });
    await store.writeResult(TENANT_A, r.body.jobId, { index: 0, status: 'succeeded', output: { text: 'x' }, completedAt: Date.now() }, 3_600);
    await store.writeResult(TENANT_A, r.body.jobId, { index: 1, status: 'succeeded', output: { text: 'y' }, completedAt: Date.now() }, 3_600);
    // Both reads are Queries: the job (its header and counter shards, `begins_with`) and its results (`BETWEEN`).
    for (const operation of ['begins_with', 'BETWEEN']) {
      const stop = dynamo.failWhen((op, body) => (op === 'Query' && body.TableName === RESULTS_TABLE && String(body.KeyConditionExpression).includes(operation)
        ? DynamoErrors.internal()
        : undefined));
      let r503: ApiResponse<JobBody>;
      try {
        r503 = await get(r.body.jobId);
      } finally {
        stop();
      }
      expect([operation, r503.status]).toEqual([operation, 503]);
      expect(r503.headers['retry-after']).toBe('2');
      expect(r503.body.error).toEqual({ code: 'unavailable', message: expect.stringMatching(/could not be read/) });
    }
    expect((await get(r.body.jobId)).status).toBe(200);
  });

  test('results are paginated with a cursor; a single-request job shows its single result', async () => {
    const r = await submit({ body: { requests: Array.from({ length: 5 }, (_, i) => question(`question ${i}`)) } });
    const jobId = r.body.jobId;
    for (const i of [4, 2, 0, 1]) {
      await store.writeResult(TENANT_A, jobId, { index: i, status: 'succeeded', output: { text: `answer ${i}` }, tier: 'small', cache: 'miss', usage: { inputTokens: 2, outputTokens: 2 }, costUsd: 0.000001, completedAt: Date.now() }, 3_600);
    }
    const running = await get(jobId);
    expect(running.body).toMatchObject({ status: 'running', succeeded: 4, failed: 0 });
    expect(running.body.results).toBeUndefined();
    await store.writeResult(TENANT_A, jobId, { index: 3, status: 'failed', error: { code: 'model-rejected', message: 'no' }, completedAt: Date.now() }, 3_600);

    const pages: JobBody[] = [];
    let cursor: string | undefined;
    do {
      const page = await get(jobId, { query: { limit: '2', ...(cursor ? { cursor } : {}) } });
      expect(page.status).toBe(200);
      pages.push(page.body);
      cursor = page.body.nextCursor;
    } while (cursor && pages.length < 10);
    expect(pages.map((p) => p.results?.map((x) => x.index))).toEqual([[0, 1], [2, 3], [4]]);
    expect(pages[0]).toMatchObject({ status: 'failed', succeeded: 4, failed: 1, error: { code: 'items-failed', message: '1 of 5 requests failed; see the error of each result' } });
    expect(pages[1].results?.[1]).toEqual({ index: 3, status: 'failed', error: { code: 'model-rejected', message: 'no' }, completedAt: expect.any(String) });
    expect(pages[0].results?.[0]).toMatchObject({ index: 0, status: 'succeeded', output: { text: 'answer 0' }, tier: 'small', cache: 'miss' });

    expect((await get(jobId, { query: { limit: '0' } })).status).toBe(400);
    expect((await get(jobId, { query: { limit: '1000' } })).status).toBe(400);
    expect((await get(jobId, { query: { cursor: 'bm9wZQ' } })).status).toBe(400);

    const single = await submit({ body: { request: question('only one') } });
    await store.writeResult(TENANT_A, single.body.jobId, { index: 0, status: 'succeeded', output: { text: 'the one answer' }, completedAt: Date.now() }, 3_600);
    const done = await get(single.body.jobId);
    expect(done.body.status).toBe('succeeded');
    expect(done.body.result).toMatchObject({ index: 0, status: 'succeeded', output: { text: 'the one answer' } });
    expect(done.body.results).toBeUndefined();
    expect(done.body.error).toBeUndefined();
  });
});
