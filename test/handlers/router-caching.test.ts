/**
 * The router handler with the whole cache hierarchy, end to end against real local servers:
 * - Redis (requirepass; AUTH token from the local Secrets Manager): exact cache, static answers
 *   and user context, through the handler's iovalkey client;
 * - PostgreSQL 18 + pgvector (PGlite over the wire protocol): the semantic cache's vector store,
 *   through the production `pg` client (credentials from the local Secrets Manager);
 * - the local Bedrock server: Converse for the model, InvokeModel for Titan embeddings (a
 *   deterministic character-trigram embedding, so similar texts embed close together).
 * Valkey's vector search (FT.*) cannot run here, so semantic static matching is covered by the
 * core tests; exact static matching runs for real.
 */
import Valkey from 'iovalkey';
import { cacheHierarchyConfig, EMBEDDING_MODEL, KEY_PREFIX, MODEL, REDIS_PASSWORD } from './cache-hierarchy-config';
import { startRouterHandler, type RouterHandlerHarness, type RouterReply } from './router-harness';
import { AiMetricNames as M } from '../../constructs/contract/metrics';
import type { RouterRuntimeConfig } from '../../constructs/contract/runtime-config';
import { ValkeyStaticAnswers } from '../../lambdas/adapters/valkey-static-answers';
import { LocalAwsServer } from '../support/aws-protocol-server';
import { ACCOUNT, metricSum, type EventOptions } from '../support/lambda-harness';
import { PgliteServer } from '../support/pglite-server';
import { RedisServer } from '../support/redis-server';

const TENANT_A = `arn:aws:iam::${ACCOUNT}:role/TenantA`;
const TENANT_A_USER_1 = `arn:aws:sts::${ACCOUNT}:assumed-role/TenantA/user-1`;
const TENANT_A_USER_2 = `arn:aws:sts::${ACCOUNT}:assumed-role/TenantA/user-2`;
const TENANT_B_USER_1 = `arn:aws:sts::${ACCOUNT}:assumed-role/TenantB/user-1`;

let redis: RedisServer;
let pglite: PgliteServer;
let aws: LocalAwsServer;
let admin: Valkey;
let router: RouterHandlerHarness;

const call = (body: unknown, options: EventOptions = {}): Promise<RouterReply> => router.call(body, TENANT_A_USER_1, options);

const ask = (text: string, extra: Record<string, unknown> = {}) => ({ messages: [{ role: 'user', content: text }], ...extra });
const modelCalls = () => aws.callsOf().filter((c) => c.request.target === MODEL);

beforeAll(async () => {
  [redis, pglite, aws] = await Promise.all([RedisServer.start({ password: REDIS_PASSWORD }), PgliteServer.start(), LocalAwsServer.start()]);
  const cacheSecret = aws.putSecret('scalable-ai/cache-auth', REDIS_PASSWORD);
  const dbSecret = aws.putSecret('scalable-ai/pgvector', JSON.stringify({ username: 'postgres', password: 'postgres' }));
  admin = new Valkey({ host: redis.host, port: redis.port, password: REDIS_PASSWORD, maxRetriesPerRequest: 5 });
  admin.on('error', () => undefined);

  const config: RouterRuntimeConfig = {
    ...cacheHierarchyConfig(redis, pglite, cacheSecret, dbSecret),
    staticAnswers: { maxAgeSeconds: 900 },
    userContext: { kind: 'valkey', maxTurns: 10, ttlSeconds: 3_600 },
  };
  router = startRouterHandler(aws, config, 'router-caching-test');
  // Cold start once: secrets, connections, the pgvector table and index.
  expect((await call(ask('warm-up'))).status).toBe(200);
});

beforeEach(async () => {
  aws.reset();
  aws.setModel(MODEL, { reply: (r) => `answer to: ${r.messages[r.messages.length - 1].text}` });
  await admin.flushall();
  const pool = pglite.pool();
  await pool.query('DELETE FROM semantic_cache');
});

afterAll(async () => {
  await router?.stop();
  admin?.disconnect();
  await Promise.all([redis?.dispose(), pglite?.stop(), aws?.close()]);
});

describe('static answers', () => {
  beforeEach(async () => {
    const publisher = new ValkeyStaticAnswers(admin, { keyPrefix: KEY_PREFIX });
    await publisher.publishTenant(TENANT_A, [
      { id: 'returns', questions: ['What is your return policy?', 'How do I return an item?'], answer: 'Returns are free within 30 days.' },
    ]);
  });

  test('a question variant is answered from the static answers, before any cache or model', async () => {
    const reply = await call(ask('  how do I RETURN an item  '));
    expect(reply.status).toBe(200);
    expect(reply.headers['x-cache']).toBe('static');
    expect(reply.headers['x-tier']).toBe('none');
    expect(reply.body.output.text).toBe('Returns are free within 30 days.');
    expect(reply.body.routing.staticAnswerId).toBe('returns');
    expect(modelCalls()).toHaveLength(0);
    expect(aws.embeddingCalls).toHaveLength(0);
    expect(metricSum(reply.metrics, M.CACHE_HITS, { [M.DIMENSION_CACHE_LEVEL]: 'static' })).toBe(1);
  });

  test('another tenant asking the same question is not answered from tenant A\'s static answers', async () => {
    const reply = await call(ask('What is your return policy?'), { userArn: TENANT_B_USER_1 });
    expect(reply.headers['x-cache']).toBe('miss');
    expect(modelCalls()).toHaveLength(1);
  });

  test('GET /v1/static-answers serves the answer with cache headers, and 404 when none matches', async () => {
    const found = await call(undefined, { routeKey: 'GET /v1/static-answers', query: { q: 'What is your return policy' } });
    expect(found.status).toBe(200);
    expect(found.headers['cache-control']).toBe('private, max-age=900');
    expect(found.body).toMatchObject({ id: 'returns', output: { text: 'Returns are free within 30 days.' }, match: 'exact' });
    const missing = await call(undefined, { routeKey: 'GET /v1/static-answers', query: { q: 'Do you sell gift cards?' } });
    expect(missing.status).toBe(404);
    const noQuestion = await call(undefined, { routeKey: 'GET /v1/static-answers' });
    expect(noQuestion.status).toBe(400);
    expect(modelCalls()).toHaveLength(0);
  });
});

describe('semantic cache on pgvector', () => {
  const QUESTION = 'How do I reset my online banking password?';
  const PARAPHRASE = 'how can I reset my online banking password please';

  test('a paraphrase is answered from the semantic cache of its tenant; the repeat is then an exact hit', async () => {
    const first = await call(ask(QUESTION));
    expect(first.headers['x-cache']).toBe('miss');
    const stored = await pglite.pool().query('SELECT question, answer_key FROM semantic_cache');
    expect(stored.rows).toEqual([expect.objectContaining({ question: QUESTION })]);

    const second = await call(ask(PARAPHRASE));
    expect(second.status).toBe(200);
    expect(second.headers['x-cache']).toBe('semantic');
    expect(second.headers['x-cost-usd']).toBe('0.000000');
    expect(second.body.output.text).toBe(`answer to: ${QUESTION}`);
    expect(second.body.routing.similarity).toBeGreaterThanOrEqual(0.75);
    expect(modelCalls()).toHaveLength(1);
    expect(metricSum(second.metrics, M.CACHE_HITS, { [M.DIMENSION_CACHE_LEVEL]: 'semantic' })).toBe(1);

    // The semantic hit filled the exact level: the same words again need no embedding.
    const embeddingsBefore = aws.embeddingCalls.length;
    const third = await call(ask(PARAPHRASE));
    expect(third.headers['x-cache']).toBe('exact');
    expect(aws.embeddingCalls.length).toBe(embeddingsBefore);
  });

  test('another tenant never gets tenant A\'s entry, however close the question', async () => {
    await call(ask(QUESTION));
    const other = await call(ask(PARAPHRASE), { userArn: TENANT_B_USER_1 });
    expect(other.headers['x-cache']).toBe('miss');
    expect(modelCalls()).toHaveLength(2);
    // Tenant B's own entry (its paraphrase) may answer tenant B; tenant A's answer never does.
    const identical = await call(ask(QUESTION), { userArn: TENANT_B_USER_1 });
    expect(identical.body.output.text).not.toBe(`answer to: ${QUESTION}`);
    const scopes = await pglite.pool().query('SELECT DISTINCT scope FROM semantic_cache');
    expect(scopes.rows).toHaveLength(2);
  });

  test('the guard keeps "disable" from being answered with "enable", though they embed close', async () => {
    await call(ask('How do I enable notifications in the app?'));
    const opposite = await call(ask('How do I disable notifications in the app?'));
    expect(opposite.headers['x-cache']).toBe('miss');
    expect(opposite.body.output.text).toBe('answer to: How do I disable notifications in the app?');
  });

  test('the embedder failing fails open: a model answers and CacheErrors{semantic} is counted', async () => {
    aws.setEmbeddingModel(EMBEDDING_MODEL, { embed: () => { throw new Error('embedding outage'); } });
    const reply = await call(ask('Is there a fee for international transfers?'));
    expect(reply.status).toBe(200);
    expect(reply.headers['x-cache']).toBe('miss');
    expect(metricSum(reply.metrics, M.CACHE_ERRORS, { [M.DIMENSION_CACHE_LEVEL]: 'semantic' })).toBeGreaterThanOrEqual(1);
  });
});

describe('user context', () => {
  test('a session carries the user\'s recent turns and preferences into the model request, for that user only', async () => {
    await call(ask('My order number is 4411.', { session: 'chat-1' }));
    const prefs = await call({ preferences: { language: 'pt' } }, { routeKey: 'PUT /v1/context/preferences' });
    expect(prefs.status).toBe(204);

    const followUp = await call(ask('When will it arrive?', { session: 'chat-1' }));
    expect(followUp.status).toBe(200);
    expect(followUp.body.routing.contextTurns).toBe(2);
    const seen = modelCalls().at(-1)!.request;
    expect(seen.messages.map((m: { text: string }) => m.text)).toEqual(['My order number is 4411.', 'answer to: My order number is 4411.', 'When will it arrive?']);
    expect(seen.system).toContain('{"language":"pt"}');

    // Another user of the same tenant, same session name: none of user-1's context.
    const other = await call(ask('When will it arrive?', { session: 'chat-1' }), { userArn: TENANT_A_USER_2 });
    expect(other.body.routing.contextTurns).toBe(0);
    expect(modelCalls().at(-1)!.request.system ?? '').not.toContain('"language"');
  });

  test('DELETE /v1/context forgets the user\'s sessions and preferences', async () => {
    await call(ask('My order number is 4411.', { session: 'chat-2' }));
    await call({ preferences: { tone: 'brief' } }, { routeKey: 'PUT /v1/context/preferences' });
    expect((await call(undefined, { routeKey: 'DELETE /v1/context' })).status).toBe(204);
    const after = await call(ask('When will it arrive?', { session: 'chat-2' }));
    expect(after.body.routing.contextTurns).toBe(0);
    expect(modelCalls().at(-1)!.request.system ?? '').not.toContain('tone');
  });

  test('invalid preferences are rejected with a message naming the problem', async () => {
    const reply = await call({ preferences: { '1bad': 'x' } }, { routeKey: 'PUT /v1/context/preferences' });
    expect(reply.status).toBe(400);
    expect(reply.body.error.message).toMatch(/preference names/);
  });
});
