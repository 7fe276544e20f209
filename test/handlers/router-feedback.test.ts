/**
 * Request ids and `POST /v1/feedback`, end to end against real local servers: the router handler
 * with Redis (requirepass, AUTH token from the local Secrets Manager) for the exact cache and
 * the serving records, PostgreSQL 18 + pgvector (PGlite over the wire protocol) for the semantic
 * cache, and the local Bedrock server for the model and the Titan embeddings.
 */
import Valkey from 'iovalkey';
import { cacheHierarchyConfig, KEY_PREFIX, MODEL, REDIS_PASSWORD } from './cache-hierarchy-config';
import { startRouterHandler, type RouterHandlerHarness, type RouterReply } from './router-harness';
import { AiMetricNames as M } from '../../constructs/contract/metrics';
import type { RouterRuntimeConfig } from '../../constructs/contract/runtime-config';
import { LocalAwsServer } from '../support/aws-protocol-server';
import { ACCOUNT, metricSum, type EmfMetric, type EventOptions } from '../support/lambda-harness';
import { PgliteServer } from '../support/pglite-server';
import { RedisServer } from '../support/redis-server';

const TENANT_A_USER_1 = `arn:aws:sts::${ACCOUNT}:assumed-role/TenantA/user-1`;
const TENANT_A_USER_2 = `arn:aws:sts::${ACCOUNT}:assumed-role/TenantA/user-2`;
const TENANT_B_USER_1 = `arn:aws:sts::${ACCOUNT}:assumed-role/TenantB/user-1`;
const WINDOW_SECONDS = 3_600;
const QUESTION = 'How do I reset my online banking password?';
const PARAPHRASE = 'how can I reset my online banking password please';

let redis: RedisServer;
let pglite: PgliteServer;
let aws: LocalAwsServer;
let admin: Valkey;
/** One pool for the test's own queries (each `pglite.pool()` opens another). */
let db: ReturnType<PgliteServer['pool']>;
let router: RouterHandlerHarness;

interface Reply extends RouterReply {
  /** The invocation's log line (the first EMF document carries it). */
  readonly log: Record<string, unknown>;
}

async function call(body: unknown, options: EventOptions = {}): Promise<Reply> {
  const reply = await router.call(body, TENANT_A_USER_1, options);
  const log = reply.lines.join('').split('\n').filter((l) => l.includes('"message":"request"')).map((l) => JSON.parse(l) as Record<string, unknown>)[0];
  return { ...reply, log };
}

const ask = (text: string) => ({ messages: [{ role: 'user', content: text }] });
const feedback = (requestId: string, verdict: string, userArn = TENANT_A_USER_1) =>
  call({ requestId, verdict }, { routeKey: 'POST /v1/feedback', userArn });
const modelCalls = () => aws.callsOf().filter((c) => c.request.target === MODEL);
const semanticRows = async () => (await db.query('SELECT id FROM semantic_cache')).rows.length;
const feedbackKeys = () => admin.keys(`${KEY_PREFIX}fb:*`);

beforeAll(async () => {
  [redis, pglite, aws] = await Promise.all([RedisServer.start({ password: REDIS_PASSWORD }), PgliteServer.start(), LocalAwsServer.start()]);
  const cacheSecret = aws.putSecret('scalable-ai/cache-auth', REDIS_PASSWORD);
  const dbSecret = aws.putSecret('scalable-ai/pgvector', JSON.stringify({ username: 'postgres', password: 'postgres' }));
  admin = new Valkey({ host: redis.host, port: redis.port, password: REDIS_PASSWORD, maxRetriesPerRequest: 5 });
  admin.on('error', () => undefined);
  db = pglite.pool({ max: 1 });

  const config: RouterRuntimeConfig = {
    ...cacheHierarchyConfig(redis, pglite, cacheSecret, dbSecret),
    feedback: { windowSeconds: WINDOW_SECONDS },
  };
  router = startRouterHandler(aws, config, 'router-feedback-test');
  // Cold start once: secrets, connections, the pgvector table and index.
  expect((await call(ask('warm-up'))).status).toBe(200);
});

beforeEach(async () => {
  aws.reset();
  aws.setModel(MODEL, { reply: (r) => `answer to: ${r.messages[r.messages.length - 1].text}` });
  await admin.flushall();
  await db.query('DELETE FROM semantic_cache');
});

afterAll(async () => {
  await router?.stop();
  admin?.disconnect();
  await Promise.all([redis?.dispose(), pglite?.stop(), aws?.close()]);
});

describe('request ids', () => {
  test('every answer carries x-request-id, unique per invocation, also in the chat body and the log line', async () => {
    const replies = [
      await call(ask(QUESTION)),
      await call(ask(QUESTION)),
      await call({ messages: [] }),
      await call(undefined, { routeKey: 'GET /v1/nothing' }),
      await call(ask(QUESTION), { userArn: null }),
      await feedback('0f8fad5b-d9cb-469f-a165-70867728950e', 'right'),
    ];
    expect(replies.map((r) => r.status)).toEqual([200, 200, 400, 404, 401, 404]);
    const ids = replies.map((r) => r.headers['x-request-id']);
    for (const [i, id] of ids.entries()) {
      expect(id).toMatch(/^[0-9a-f-]{36}$/);
      expect(replies[i].log.requestId).toBe(id);
    }
    expect(new Set(ids).size).toBe(ids.length);
    expect(replies[0].body.requestId).toBe(ids[0]);
    expect(replies[1].body.requestId).toBe(ids[1]);
  });

  test('the serving record is kept under the router\'s prefix for the feedback window, and holds no text of the request', async () => {
    const reply = await call(ask(QUESTION));
    const keys = await feedbackKeys();
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatch(/^sai:fb:[0-9a-f]{16}:[0-9a-f]{40}$/);
    const ttl = await admin.ttl(keys[0]);
    expect(ttl).toBeGreaterThan(WINDOW_SECONDS - 60);
    expect(ttl).toBeLessThanOrEqual(WINDOW_SECONDS);
    const stored = JSON.stringify(await admin.hgetall(keys[0]));
    expect(stored).not.toContain('reset');
    expect(stored).not.toContain(reply.headers['x-request-id']);
  });
});

describe('POST /v1/feedback', () => {
  test('a wrong verdict on an exact hit evicts it: the next identical request goes to the model', async () => {
    await call(ask(QUESTION));
    const hit = await call(ask(QUESTION), { userArn: TENANT_A_USER_2 });
    expect(hit.headers['x-cache']).toBe('exact');
    const keysBefore = new Set(await admin.keys('*'));

    const verdict = await feedback(hit.body.requestId, 'wrong', TENANT_A_USER_2);
    expect(verdict.status).toBe(200);
    expect(verdict.body).toEqual({ requestId: hit.body.requestId, verdict: 'wrong', servedBy: 'exact', evicted: { exact: 1, semantic: 1 }, evictionFailed: [] });
    expect(metricSum(verdict.metrics, M.FEEDBACK, { [M.DIMENSION_SERVED_BY]: 'exact', [M.DIMENSION_VERDICT]: 'wrong' })).toBe(1);
    expect(metricSum(verdict.metrics, M.FEEDBACK, { [M.DIMENSION_TIER]: 'small', [M.DIMENSION_VERDICT]: 'wrong' })).toBe(1);
    expect(metricSum(verdict.metrics, M.FEEDBACK_EVICTIONS, { [M.DIMENSION_CACHE_LEVEL]: 'exact' })).toBe(1);
    expect(metricSum(verdict.metrics, M.FEEDBACK_EVICTIONS, { [M.DIMENSION_CACHE_LEVEL]: 'semantic' })).toBe(1);
    // Feedback only deletes: no key appeared (the record's verdict field is written into its own hash).
    for (const key of await admin.keys('*')) expect(keysBefore.has(key)).toBe(true);
    expect(await semanticRows()).toBe(0);

    const calls = modelCalls().length;
    const next = await call(ask(QUESTION));
    expect(next.headers['x-cache']).toBe('miss');
    expect(modelCalls()).toHaveLength(calls + 1);
  });

  test('a wrong verdict on a semantic hit evicts the entry and its exact copies: the next asker gets a fresh model answer', async () => {
    await call(ask(QUESTION));
    const hit = await call(ask(PARAPHRASE), { userArn: TENANT_A_USER_2 });
    expect(hit.headers['x-cache']).toBe('semantic');
    expect(await semanticRows()).toBe(1);

    const verdict = await feedback(hit.body.requestId, 'wrong', TENANT_A_USER_2);
    expect(verdict.body).toMatchObject({ servedBy: 'semantic', evicted: { exact: 2, semantic: 1 } });
    expect(metricSum(verdict.metrics, M.FEEDBACK, { [M.DIMENSION_SERVED_BY]: 'semantic', [M.DIMENSION_VERDICT]: 'wrong' })).toBe(1);
    expect(await semanticRows()).toBe(0);

    const calls = modelCalls().length;
    // The original question's exact entry is gone, and so is the copy the hit made for the paraphrase:
    // the paraphrase is answered from the fresh entry, not from its old copy.
    expect((await call(ask(QUESTION))).headers['x-cache']).toBe('miss');
    expect(await semanticRows()).toBe(1);
    expect((await call(ask(PARAPHRASE), { userArn: TENANT_A_USER_2 })).headers['x-cache']).toBe('semantic');
    expect(modelCalls()).toHaveLength(calls + 1);
  });

  test('another tenant\'s or another user\'s request id gets 404 and evicts nothing; the caller\'s own still works', async () => {
    const answered = await call(ask(QUESTION));
    const requestId = answered.body.requestId as string;
    for (const userArn of [TENANT_B_USER_1, TENANT_A_USER_2]) {
      const reply = await feedback(requestId, 'wrong', userArn);
      expect(reply.status).toBe(404);
      expect(reply.body.error.code).toBe('not-found');
      expect(metricSum(reply.metrics, M.FEEDBACK, { [M.DIMENSION_SERVED_BY]: 'model', [M.DIMENSION_VERDICT]: 'wrong' })).toBe(0);
    }
    expect((await call(ask(QUESTION), { userArn: TENANT_A_USER_2 })).headers['x-cache']).toBe('exact');
    expect((await feedback(requestId, 'right')).status).toBe(200);
  });

  test('an expired record gets 404', async () => {
    const answered = await call(ask(QUESTION));
    const [key] = await feedbackKeys();
    await admin.pexpire(key, 1);
    while (await admin.exists(key)) await new Promise((r) => setTimeout(r, 5));
    expect((await feedback(answered.body.requestId, 'wrong')).status).toBe(404);
  });

  test('one verdict per answer: a second is 409, not counted', async () => {
    const answered = await call(ask(QUESTION));
    const first = await feedback(answered.body.requestId, 'wrong');
    expect(first.body).toMatchObject({ servedBy: 'model', evicted: { exact: 1, semantic: 1 } });
    expect(metricSum(first.metrics, M.FEEDBACK, { [M.DIMENSION_SERVED_BY]: 'model', [M.DIMENSION_VERDICT]: 'wrong' })).toBe(1);
    const second = await feedback(answered.body.requestId, 'wrong');
    expect(second.status).toBe(409);
    expect(metricsNamedFeedback(second.metrics)).toBe(0);
  });

  test.each([
    ['*'],
    ['sai:fb:*'],
    ['{0f8fad5b-d9cb-469f-a165-70867728950e}'],
    ['0f8fad5b-d9cb-469f-a165-70867728950e\n'],
    ['0f8fad5b-d9cb-469f-a165-70867728950e:x'],
    ['\\'],
  ])('a request id that tries to break the key prefix (%j) is 400, never a match', async (requestId) => {
    await call(ask(QUESTION));
    const reply = await feedback(requestId, 'wrong');
    expect(reply.status).toBe(400);
    expect(reply.body.error.message).toMatch(/^Invalid request: requestId/);
    expect(await feedbackKeys()).toHaveLength(1);
  });

  test('huge and malformed bodies: 413 and 400', async () => {
    const huge = await call(undefined, { routeKey: 'POST /v1/feedback', raw: JSON.stringify({ requestId: 'x'.repeat(100_000), verdict: 'wrong' }) });
    expect(huge.status).toBe(413);
    const deep = await call(undefined, { routeKey: 'POST /v1/feedback', raw: '['.repeat(500) });
    expect(deep.status).toBe(400);
    const base64 = await call({ requestId: 'nope', verdict: 'wrong' }, { routeKey: 'POST /v1/feedback', base64: true });
    expect(base64.status).toBe(400);
  });
});

function metricsNamedFeedback(metrics: EmfMetric[]): number {
  return metrics.filter((m) => m.name === M.FEEDBACK).length;
}
