/**
 * Property-based tests of the router handler behind a JWT authorizer (the tenant from a claim,
 * the user from `sub`), in-process against the real local servers (Redis, PostgreSQL with the
 * profiles, the local Bedrock server): whatever the claims hold (NUL, controls, lone surrogates,
 * key separators, very long or polluting values, wrong types), every route answers 2xx or 4xx
 * with an error message, never a 5xx; a refusal writes nothing; and what an answer writes is
 * filed under its own tenant and user only.
 */
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import fc from 'fast-check';
import Valkey from 'iovalkey';
import { fcParams, hostileId, POLLUTING_KEYS, prototypeIsClean, wrongValue } from './hostile';
import type { RouterRuntimeConfig } from '../../constructs/contract/runtime-config';
import { idHash } from '../../lambdas/core/hashing';
import { KEY_PREFIX, MODEL, REDIS_PASSWORD } from '../handlers/cache-hierarchy-config';
import { startRouterHandler, type RouterHandlerHarness, type RouterReply } from '../handlers/router-harness';
import { LocalAwsServer } from '../support/aws-protocol-server';
import { httpApiEvent } from '../support/lambda-harness';
import { PgliteServer } from '../support/pglite-server';
import { RedisServer } from '../support/redis-server';

const PROFILES = 'user_profiles';
const CLAIM = 'custom:tenant';

let redis: RedisServer;
let pglite: PgliteServer;
let aws: LocalAwsServer;
let admin: Valkey;
let db: ReturnType<PgliteServer['pool']>;
let router: RouterHandlerHarness;

/** An HTTP API event with a JWT authorizer context holding `claims`. */
function jwtEvent(routeKey: string, body: unknown, claims: unknown): APIGatewayProxyEventV2 {
  const base = httpApiEvent(body, 'unused', { routeKey, userArn: null });
  return { ...base, requestContext: { ...base.requestContext, authorizer: { jwt: { claims, scopes: null } } } } as unknown as APIGatewayProxyEventV2;
}

async function state(): Promise<{ keys: string[]; profiles: string; modelCalls: number }> {
  const [keys, profiles] = await Promise.all([admin.keys('*'), db.query(`SELECT tenant, user_id, profile::text FROM ${PROFILES} ORDER BY tenant, user_id`)]);
  return { keys: keys.sort(), profiles: JSON.stringify(profiles.rows), modelCalls: aws.callsOf(MODEL).length };
}

function expectAnswerOrRefusal(reply: RouterReply, what: string): void {
  if (reply.status >= 500 || reply.status < 200) throw new Error(`${what}: answered ${reply.status} ${String(reply.res.body).slice(0, 300)}`);
  if (reply.status >= 400) expect(reply.body).toEqual({ error: { code: expect.any(String), message: expect.any(String) } });
  expect(prototypeIsClean()).toBe(true);
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
    tiers: [{ id: 'small', provider: 'bedrock', modelId: MODEL, inputPricePer1k: 0.000035, outputPricePer1k: 0.00014, maxTokens: 512, timeoutMs: 5_000 }],
    tierHintPolicy: 'cheaper-only',
    maxRequestBytes: 8_192,
    maxMessages: 20,
    tenant: { source: 'jwt', claim: CLAIM },
    personalCaching: 'user',
    cache: { host: redis.host, port: redis.port, tls: false, authSecretArn: cacheSecret, keyPrefix: KEY_PREFIX, timeoutMs: 1_000 },
    exactCache: { ttlSeconds: 3_600 },
    userContext: { kind: 'valkey', maxTurns: 10, ttlSeconds: 3_600 },
    userProfiles: { writer: endpoint, reader: endpoint, database: 'postgres', username: 'postgres', auth: 'secret', secretArn: dbSecret, table: PROFILES, timeoutMs: 5_000 },
  };
  router = startRouterHandler(aws, config, 'router-jwt-fuzz-test');
  aws.setModel(MODEL, { reply: (r) => `answer to: ${r.messages[r.messages.length - 1].text}` });
  const warm = { [CLAIM]: 'warm-tenant', sub: 'warm-user' };
  expect((await router.invoke(jwtEvent('PUT /v1/profile', { displayName: 'Warm' }, warm))).status).toBe(204);
  expect((await router.invoke(jwtEvent('POST /v1/chat', { messages: [{ role: 'user', content: 'warm-up' }] }, warm))).status).toBe(200);
}, 120_000);

afterAll(async () => {
  await router?.stop();
  await db?.end();
  admin?.disconnect();
  await Promise.all([redis?.dispose(), pglite?.stop(), aws?.close()]);
});

const claimValue = fc.oneof(hostileId, wrongValue, fc.array(hostileId, { maxLength: 2 }));
const claims = fc.oneof(
  fc.record({ [CLAIM]: claimValue, sub: claimValue }, { requiredKeys: [] }),
  fc.record({ [CLAIM]: hostileId, sub: hostileId }),
  fc.dictionary(fc.constantFrom(CLAIM, 'sub', 'tenant_id', ...POLLUTING_KEYS), claimValue),
  wrongValue,
);
const requests: Array<{ route: string; body: unknown }> = [
  { route: 'PUT /v1/profile', body: { displayName: 'Ada', locale: 'en-GB', attributes: { plan: 'gold' } } },
  { route: 'GET /v1/profile', body: undefined },
  { route: 'PUT /v1/context/preferences', body: { preferences: { language: 'de' } } },
  { route: 'DELETE /v1/context', body: undefined },
  { route: 'POST /v1/chat', body: { messages: [{ role: 'user', content: 'What are your opening hours?' }] } },
  { route: 'POST /v1/chat', body: { messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'hello' }, { role: 'user', content: 'and my order?' }] } },
];

test('any claims, on every route: 2xx or 4xx, never a 5xx; a refusal writes nothing; a chat writes under its own tenant only', async () => {
  await fc.assert(
    fc.asyncProperty(claims, fc.constantFrom(...requests), async (c, { route, body }) => {
      const before = await state();
      const reply = await router.invoke(jwtEvent(route, body, c));
      const what = `${route} with claims ${JSON.stringify(c)?.slice(0, 300)}`;
      expectAnswerOrRefusal(reply, what);
      const after = await state();
      if (reply.status >= 400) {
        expect({ what, ...after }).toEqual({ what, ...before });
        return;
      }
      const tenant = (c as Record<string, unknown>)[CLAIM] as string;
      const added = after.keys.filter((k) => !before.keys.includes(k));
      if (route === 'POST /v1/chat') for (const k of added) expect(k.startsWith(`${KEY_PREFIX}exact:${idHash(tenant)}:`)).toBe(true);
    }),
    fcParams(200),
  );
});
