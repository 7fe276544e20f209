/**
 * The router handler of the property-based route tests (router-chat, router-user-routes), started
 * in-process on every level and route against the real local servers: Redis (exact cache, static
 * answers, user context, serving records), PostgreSQL + pgvector (PGlite: the semantic cache and
 * the user profiles) and the local Bedrock server (the model and the embeddings); and the checks
 * the properties share: an answer is 2xx or a 4xx with an error message, and a refusal writes
 * nothing and calls no model.
 */
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import Valkey from 'iovalkey';
import { prototypeIsClean } from './hostile';
import { AiMetricNames as M } from '../../constructs/contract/metrics';
import type { RouterRuntimeConfig } from '../../constructs/contract/runtime-config';
import { ValkeyStaticAnswers } from '../../lambdas/adapters/valkey-static-answers';
import { cacheHierarchyConfig, KEY_PREFIX, MODEL, REDIS_PASSWORD } from '../handlers/cache-hierarchy-config';
import { startRouterHandler, type RouterHandlerHarness, type RouterReply } from '../handlers/router-harness';
import { LocalAwsServer } from '../support/aws-protocol-server';
import { ACCOUNT, httpApiEvent } from '../support/lambda-harness';
import { PgliteServer } from '../support/pglite-server';
import { RedisServer } from '../support/redis-server';

export const TENANT_A = `arn:aws:iam::${ACCOUNT}:role/TenantA`;
export const TENANT_A_USER_1 = `arn:aws:sts::${ACCOUNT}:assumed-role/TenantA/user-1`;
const PROFILES = 'user_profiles';
export const MAX_REQUEST_BYTES = 8_192;

let redis: RedisServer;
let pglite: PgliteServer;
let aws: LocalAwsServer;
/** A client of the test's own (live binding: set in beforeAll). */
export let admin: Valkey;
let db: ReturnType<PgliteServer['pool']>;
let router: RouterHandlerHarness;
/** Request ids of answers served in this run: feedback bodies may name one. */
export const answeredIds: string[] = [];

export interface Reply extends RouterReply {
  readonly text: string;
}

export async function invoke(event: APIGatewayProxyEventV2): Promise<Reply> {
  const reply = await router.invoke(event);
  if (reply.status === 200 && reply.body?.requestId) answeredIds.push(reply.body.requestId);
  return { ...reply, text: String(reply.res.body ?? '') };
}

export const event = (routeKey: string, raw: string | undefined, userArn: string | null = TENANT_A_USER_1): APIGatewayProxyEventV2 =>
  httpApiEvent(undefined, TENANT_A_USER_1, { routeKey, raw, userArn });

/** Everything a request could write or call: every Redis key, the pgvector and profile rows, the model and embedding calls. */
interface Snapshot {
  readonly keys: string[];
  readonly semanticRows: number;
  readonly profiles: string;
  readonly modelCalls: number;
  readonly embeddingCalls: number;
}

/**
 * Every key with a digest of its value (DUMP) and TTL state, in one round trip: a refused
 * request must neither add, change nor remove an entry.
 */
const DIGEST_KEYS = `
local keys = redis.call('KEYS', '*')
table.sort(keys)
local out = {}
for i, k in ipairs(keys) do
  local ttl = redis.call('PTTL', k)
  out[i] = k .. '=' .. redis.sha1hex(redis.call('DUMP', k)) .. (ttl < 0 and ':persistent' or ':expiring')
end
return out`;

async function snapshot(): Promise<Snapshot> {
  const [keys, semantic, profiles] = await Promise.all([
    admin.eval(DIGEST_KEYS, 0) as Promise<string[]>,
    db.query('SELECT count(*)::int AS n FROM semantic_cache'),
    db.query(`SELECT tenant, user_id, profile::text FROM ${PROFILES} ORDER BY tenant, user_id`),
  ]);
  return {
    keys,
    semanticRows: semantic.rows[0].n as number,
    profiles: JSON.stringify(profiles.rows),
    modelCalls: aws.callsOf(MODEL).length,
    embeddingCalls: aws.embeddingCalls.length,
  };
}

/**
 * 2xx, or 4xx with the error body; never a 5xx. And with every server up, no input makes a
 * cache fail: a failure would count against the level's circuit breaker (3 open it, for every
 * tenant of the container) and page the operator through the cache error alarm.
 */
function expectAnswerOrRefusal(reply: Reply, what: string): void {
  if (reply.status >= 500 || reply.status < 200) {
    throw new Error(`${what}: answered ${reply.status} ${reply.text.slice(0, 300)}`);
  }
  const failed = reply.metrics.filter((m) => m.name === M.CACHE_ERRORS || m.name === M.CIRCUIT_OPENED).map((m) => `${m.name} ${JSON.stringify(m.dimensions)}`);
  expect({ what, failed }).toEqual({ what, failed: [] });
  if (reply.status >= 400) {
    expect(reply.headers['content-type']).toBe('application/json');
    expect(reply.body).toEqual({ error: { code: expect.any(String), message: expect.any(String) } });
    expect(reply.body.error.code.length).toBeGreaterThan(0);
    expect(reply.body.error.message.length).toBeGreaterThan(0);
  }
}

/** Runs `send`; a refusal must leave every store and the models untouched. */
export async function refusedWritesNothing(what: string, send: () => Promise<Reply>): Promise<Reply> {
  const before = await snapshot();
  const reply = await send();
  expectAnswerOrRefusal(reply, what);
  if (reply.status >= 400) {
    const after = await snapshot();
    expect({ what, ...after }).toEqual({ what, ...before });
  }
  expect(prototypeIsClean()).toBe(true);
  return reply;
}

/** Starts the servers and the handler before the file's tests, and stops them after. */
export function useRouterFixture(serviceName: string): void {
  beforeAll(async () => {
    [redis, pglite, aws] = await Promise.all([RedisServer.start({ password: REDIS_PASSWORD }), PgliteServer.start(), LocalAwsServer.start()]);
    const cacheSecret = aws.putSecret('scalable-ai/cache-auth', REDIS_PASSWORD);
    const dbSecret = aws.putSecret('scalable-ai/postgres', JSON.stringify({ username: 'postgres', password: 'postgres' }));
    admin = new Valkey({ host: redis.host, port: redis.port, password: REDIS_PASSWORD, maxRetriesPerRequest: 5 });
    admin.on('error', () => undefined);
    db = pglite.pool({ max: 1 });
    const endpoint = { host: pglite.host, port: pglite.port };
    const config: RouterRuntimeConfig = {
      ...cacheHierarchyConfig(redis, pglite, cacheSecret, dbSecret),
      maxRequestBytes: MAX_REQUEST_BYTES,
      staticAnswers: { maxAgeSeconds: 900 },
      userContext: { kind: 'valkey', maxTurns: 10, ttlSeconds: 3_600 },
      feedback: { windowSeconds: 3_600 },
      userProfiles: { writer: endpoint, reader: endpoint, database: 'postgres', username: 'postgres', auth: 'secret', secretArn: dbSecret, table: PROFILES, timeoutMs: 5_000 },
    };
    router = startRouterHandler(aws, config, serviceName);
    aws.setModel(MODEL, { reply: (r) => `answer to: ${r.messages[r.messages.length - 1].text}` });
    // Cold start once (secrets, connections, the pgvector table) and create the profiles table.
    expect((await invoke(event('POST /v1/chat', JSON.stringify({ messages: [{ role: 'user', content: 'warm-up' }] })))).status).toBe(200);
    expect((await invoke(event('PUT /v1/profile', JSON.stringify({ displayName: 'Warm' }), `arn:aws:sts::${ACCOUNT}:assumed-role/TenantA/warm`))).status).toBe(204);
    await new ValkeyStaticAnswers(admin, { keyPrefix: KEY_PREFIX }).publishTenant(TENANT_A, [
      { id: 'returns', questions: ['What is your return policy?', 'How do I return an item?'], answer: 'Returns are free within 30 days.' },
    ]);
  }, 120_000);

  afterAll(async () => {
    await router?.stop();
    await db?.end();
    admin?.disconnect();
    await Promise.all([redis?.dispose(), pglite?.stop(), aws?.close()]);
  });
}
