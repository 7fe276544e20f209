/**
 * Property-based tests of every route of the router handler, in-process against the real local
 * servers: Redis (exact cache, static answers, user context, serving records), PostgreSQL +
 * pgvector (PGlite: the semantic cache and the user profiles) and the local Bedrock server (the
 * model and the embeddings).
 *
 * Properties, for random and adversarial input (any JSON, the right shape with one field wrong,
 * huge and deep bodies, control characters, NUL, lone surrogates, polluting keys, hostile
 * headers, authorizer contexts and ids):
 * - every answer is 2xx, or 4xx with `{ "error": { "code", "message" } }`: never a crash, never a 5xx;
 * - a refused request (4xx) writes nothing (no Redis key, no pgvector or profile row changes)
 *   and calls no model and no embedding model;
 * - an answered chat writes only under its own tenant's key prefix, and tenants whose ids differ
 *   (even only by Unicode normalisation, case, a lone surrogate or a key separator) never share an answer.
 */
import { randomUUID } from 'node:crypto';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import fc from 'fast-check';
import Valkey from 'iovalkey';
import { fcParams, hostileId, hostileQuestion, hostileText, KEY_FRAGMENTS, NASTY_CHARS, oneWrongField, POLLUTING_KEYS, prototypeIsClean, rawBodies, validChat, withValueAt, wrongValue } from './hostile';
import { AiMetricNames as M } from '../../constructs/contract/metrics';
import type { RouterRuntimeConfig } from '../../constructs/contract/runtime-config';
import { ValkeyStaticAnswers } from '../../lambdas/adapters/valkey-static-answers';
import { idHash } from '../../lambdas/core/hashing';
import { ROUTER_ROUTES } from '../../lambdas/core/router-dispatch';
import { cacheHierarchyConfig, KEY_PREFIX, MODEL, REDIS_PASSWORD } from '../handlers/cache-hierarchy-config';
import { startRouterHandler, type RouterHandlerHarness, type RouterReply } from '../handlers/router-harness';
import { LocalAwsServer } from '../support/aws-protocol-server';
import { ACCOUNT, httpApiEvent } from '../support/lambda-harness';
import { PgliteServer } from '../support/pglite-server';
import { RedisServer } from '../support/redis-server';

const TENANT_A = `arn:aws:iam::${ACCOUNT}:role/TenantA`;
const TENANT_A_USER_1 = `arn:aws:sts::${ACCOUNT}:assumed-role/TenantA/user-1`;
const PROFILES = 'user_profiles';
const MAX_REQUEST_BYTES = 8_192;

let redis: RedisServer;
let pglite: PgliteServer;
let aws: LocalAwsServer;
let admin: Valkey;
let db: ReturnType<PgliteServer['pool']>;
let router: RouterHandlerHarness;
/** Request ids of answers served in this run: feedback bodies may name one. */
const answeredIds: string[] = [];

interface Reply extends RouterReply {
  readonly text: string;
}

async function invoke(event: APIGatewayProxyEventV2): Promise<Reply> {
  const reply = await router.invoke(event);
  if (reply.status === 200 && reply.body?.requestId) answeredIds.push(reply.body.requestId);
  return { ...reply, text: String(reply.res.body ?? '') };
}

const event = (routeKey: string, raw: string | undefined, userArn: string | null = TENANT_A_USER_1): APIGatewayProxyEventV2 =>
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
async function refusedWritesNothing(what: string, send: () => Promise<Reply>): Promise<Reply> {
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
  router = startRouterHandler(aws, config, 'router-fuzz-test');
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

describe('POST /v1/chat', () => {
  test('any body: an answer or a 4xx with a message; a refused one writes nothing and calls no model', async () => {
    const bodies = fc.oneof(rawBodies(validChat), validChat.map((b) => JSON.stringify(b)));
    await fc.assert(
      fc.asyncProperty(bodies, fc.boolean(), async (raw, base64) => {
        const e = event('POST /v1/chat', raw);
        const sent = base64 ? { ...e, body: Buffer.from(raw, 'utf8').toString('base64'), isBase64Encoded: true } : e;
        const reply = await refusedWritesNothing(`chat ${JSON.stringify(raw.slice(0, 200))}`, () => invoke(sent));
        if (reply.status === 200) expect(typeof reply.body.output.text).toBe('string');
      }),
      fcParams(150),
    );
  });

  test('bodies near, at and over maxRequestBytes: 413 over it, with nothing written', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('a', 'é', '€', '\ud83d\ude00', '\u0000', '\ud800'), fc.integer({ min: -40, max: 40 }), async (ch, delta) => {
        const envelope = (s: string): string => JSON.stringify({ messages: [{ role: 'user', content: s }] });
        const per = Buffer.byteLength(envelope(ch), 'utf8') - Buffer.byteLength(envelope(''), 'utf8');
        const raw = envelope(ch.repeat(Math.max(1, Math.floor((MAX_REQUEST_BYTES - Buffer.byteLength(envelope(''), 'utf8') + delta) / per))));
        const reply = await refusedWritesNothing('near the limit', () => invoke(event('POST /v1/chat', raw)));
        if (Buffer.byteLength(raw, 'utf8') > MAX_REQUEST_BYTES) expect(reply.status).toBe(413);
        else expect(reply.status).not.toBe(413);
      }),
      fcParams(30),
    );
  });

  test('a chat from any tenant id writes only under that tenant\'s key prefix; ids that differ never share an answer', async () => {
    // Role names cannot hold "/" (the ARN's separator); everything else may be hostile.
    const role = hostileId.filter((r) => r.length > 0 && !r.includes('/'));
    const variant = (r: string): fc.Arbitrary<string> => fc.constantFrom(
      r.normalize('NFD'), r.normalize('NFKC'), r.toUpperCase(), r.toLowerCase(), `${r} `, `${r}:`, `${r}\u0000`, r.replace(/[\ud800-\udfff]/g, '\ufffd'), `${r}x`,
    ).filter((v) => v !== r && !v.includes('/'));
    await fc.assert(
      fc.asyncProperty(role.chain((r) => fc.tuple(fc.constant(r), variant(r))), fc.constantFrom('alice', 'u:1', 'exact:', '\u0000'), async ([r1, r2], session) => {
        const question = `Which plans do you offer? ${randomUUID()}`;
        const body = JSON.stringify({ messages: [{ role: 'user', content: question }] });
        const tenants = [r1, r2].map((r) => `arn:aws:iam::${ACCOUNT}:role/${r}`);
        const replies: Reply[] = [];
        for (const [i, r] of [r1, r2].entries()) {
          const before = new Set(await admin.keys(`${KEY_PREFIX}exact:*`));
          const reply = await refusedWritesNothing(`tenant ${JSON.stringify(r)}`, () => invoke(event('POST /v1/chat', body, `arn:aws:sts::${ACCOUNT}:assumed-role/${r}/${session}`)));
          replies.push(reply);
          const added = (await admin.keys(`${KEY_PREFIX}exact:*`)).filter((k) => !before.has(k));
          const wellFormed = !/[\ud800-\udfff]/.test(r.replace(/[\ud800-\udbff][\udc00-\udfff]/g, ''));
          if (!wellFormed) {
            // A tenant id that is not well-formed Unicode would hash like its U+FFFD twin: no caller.
            expect(reply.status).toBe(401);
            continue;
          }
          expect(reply.status).toBe(200);
          for (const k of added) expect(k.startsWith(`${KEY_PREFIX}exact:${idHash(tenants[i])}:`)).toBe(true);
        }
        // The second tenant asked the same question: never answered from the first one's entry.
        if (replies.length === 2 && replies[1].status === 200) expect(replies[1].headers['x-cache']).toBe('miss');
      }),
      fcParams(40),
    );
  });
});

describe('hostile events', () => {
  const authorizer = fc.oneof(
    fc.constant(undefined),
    fc.jsonValue({ maxDepth: 3 }),
    fc.record({ iam: fc.record({ userArn: fc.oneof(hostileText, wrongValue, hostileId.map((id) => `arn:aws:sts::${ACCOUNT}:assumed-role/${id}`)), cognitoIdentity: fc.oneof(wrongValue, fc.record({ identityId: fc.oneof(hostileId, wrongValue) })) }, { requiredKeys: [] }) }),
    fc.record({ jwt: fc.record({ claims: fc.oneof(wrongValue, fc.dictionary(fc.oneof(fc.constantFrom('sub', 'tenant_id', ...POLLUTING_KEYS), hostileText), fc.oneof(hostileId, wrongValue))) }) }),
    fc.dictionary(fc.constantFrom(...POLLUTING_KEYS, 'iam', 'jwt', 'lambda'), wrongValue),
  );
  const headers = fc.oneof(
    fc.constant(undefined),
    wrongValue,
    fc.dictionary(fc.oneof(fc.constantFrom('x-origin-verify', 'x-edge-tenant', 'content-type', 'idempotency-key', 'authorization', ...POLLUTING_KEYS), hostileText), fc.oneof(hostileText, wrongValue)),
  );
  const routeKey = fc.oneof(fc.constantFrom(...ROUTER_ROUTES, 'GET /v1/health'), hostileText, wrongValue, fc.constantFrom(...KEY_FRAGMENTS, 'POST /v1/chat ', 'post /v1/chat', 'POST /v1/chat/'));
  const body = fc.oneof(rawBodies(validChat), wrongValue);

  test('any route key, headers, authorizer context, body and query: never a 5xx; a refusal writes nothing', async () => {
    await fc.assert(
      fc.asyncProperty(routeKey, headers, authorizer, body, fc.oneof(wrongValue, fc.dictionary(fc.oneof(fc.constant('q'), hostileText), hostileText)), fc.oneof(fc.boolean(), wrongValue), async (key, hdrs, auth, b, query, base64) => {
        const base = httpApiEvent(undefined, TENANT_A_USER_1, {});
        const hostile = {
          ...base,
          routeKey: key,
          headers: hdrs,
          body: b,
          isBase64Encoded: base64,
          queryStringParameters: query,
          requestContext: { ...base.requestContext, authorizer: auth },
        } as unknown as APIGatewayProxyEventV2;
        await refusedWritesNothing(`event ${JSON.stringify({ key, auth })?.slice(0, 300)}`, () => invoke(hostile));
      }),
      fcParams(150),
    );
  });
});

describe('GET /v1/static-answers', () => {
  test('any question: 200, 404 or 400; nothing written, no model called', async () => {
    const question = fc.oneof(hostileText, hostileQuestion, fc.constantFrom('What is your return policy?', ' how do I return an item ', 'x'.repeat(1_025), '\u0000'), fc.string({ minLength: 1_000, maxLength: 1_100 }));
    await fc.assert(
      fc.asyncProperty(question, async (q) => {
        const e = { ...event('GET /v1/static-answers', undefined), queryStringParameters: { q } };
        const reply = await refusedWritesNothing(`static ${JSON.stringify(q.slice(0, 100))}`, () => invoke(e));
        expect([200, 400, 404]).toContain(reply.status);
        if (reply.status === 200) expect(reply.body.output.text).toBe('Returns are free within 30 days.');
      }),
      fcParams(150),
    );
  });
});

describe('PUT /v1/context/preferences and DELETE /v1/context', () => {
  const validPreferences = fc.record({
    preferences: fc.dictionary(fc.stringMatching(/^[A-Za-z][A-Za-z0-9_.-]{0,63}$/), fc.oneof(hostileText, fc.string({ maxLength: 256 })), { maxKeys: 32 }),
  });
  test('any body: 204 or a 4xx; a refused one writes nothing', async () => {
    const anyNames = fc.dictionary(fc.oneof(hostileText, fc.constantFrom(...POLLUTING_KEYS)), hostileText)
      .map((p) => JSON.stringify({ preferences: p }));
    const bodies = fc.oneof(rawBodies(validPreferences), anyNames);
    await fc.assert(
      fc.asyncProperty(bodies, fc.constantFrom('PUT /v1/context/preferences', 'DELETE /v1/context'), async (raw, route) => {
        const reply = await refusedWritesNothing(`${route} ${JSON.stringify(raw.slice(0, 200))}`, () => invoke(event(route, raw)));
        if (route === 'DELETE /v1/context') expect(reply.status).toBe(204);
      }),
      fcParams(120),
    );
  });
});

describe('GET and PUT /v1/profile', () => {
  const validProfile = fc.record(
    {
      displayName: fc.oneof(hostileText, fc.string({ minLength: 1, maxLength: 100 })).filter((s) => s.length > 0 && s.length <= 100),
      locale: fc.constantFrom('en-GB', 'de', 'zh-Hant-TW'),
      segment: fc.oneof(hostileText, fc.constantFrom('premium', ':u:', '\u0000')).filter((s) => s.length > 0 && s.length <= 100),
      attributes: fc.dictionary(fc.stringMatching(/^[A-Za-z0-9_.-]{1,40}$/), fc.oneof(hostileText, fc.string({ maxLength: 200 })), { maxKeys: 20 }),
    },
    { requiredKeys: [] },
  );
  test('any body from any user: 200/204/404 or a 4xx; a refused one writes nothing', async () => {
    const user = fc.oneof(fc.constantFrom('user-1', 'user-2'), hostileId.filter((s) => s.length > 0));
    await fc.assert(
      fc.asyncProperty(fc.oneof(rawBodies(validProfile), oneWrongField(validProfile).map((b) => JSON.stringify(b) ?? 'null')), user, fc.constantFrom('PUT /v1/profile', 'GET /v1/profile'), async (raw, u, route) => {
        const reply = await refusedWritesNothing(`${route} ${JSON.stringify(raw.slice(0, 200))} by ${JSON.stringify(u.slice(0, 50))}`, () =>
          invoke(event(route, route === 'GET /v1/profile' ? undefined : raw, `arn:aws:sts::${ACCOUNT}:assumed-role/TenantA/${u}`)));
        if (reply.status === 200) expect(reply.headers['cache-control']).toContain('no-store');
      }),
      fcParams(120),
    );
  });
});

describe('POST /v1/feedback', () => {
  test('any body: 2xx or a 4xx; a refused one writes (and evicts) nothing', async () => {
    // Some answers to give feedback on.
    for (const q of ['What are your opening hours?', 'Do you ship to Canada?']) {
      expect((await invoke(event('POST /v1/chat', JSON.stringify({ messages: [{ role: 'user', content: q }] })))).status).toBe(200);
    }
    const answered = fc.constantFrom(...answeredIds);
    const requestId = fc.oneof(answered, fc.uuid(), hostileId, wrongValue, answered.map((id) => id.toUpperCase()));
    const verdict = fc.oneof(fc.constantFrom('right', 'wrong', 'WRONG', 'wrong '), wrongValue);
    const valid = fc.record({ requestId, verdict });
    const bodies = fc.oneof(valid.map((b) => JSON.stringify(b)), rawBodies(valid), fc.constantFrom(...NASTY_CHARS));
    await fc.assert(
      fc.asyncProperty(bodies, async (raw) => {
        await refusedWritesNothing(`feedback ${JSON.stringify(raw.slice(0, 200))}`, () => invoke(event('POST /v1/feedback', raw)));
      }),
      fcParams(120),
    );
  });
});

test('the properties\' shapes', () => {
  // withValueAt keeps "__proto__" an own key, as JSON.parse does: the polluting cases reach the handler.
  expect(JSON.stringify(withValueAt({ a: 1 }, ['__proto__'], { x: 1 }))).toBe('{"a":1,"__proto__":{"x":1}}');
});
