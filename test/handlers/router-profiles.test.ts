/**
 * User profiles end to end through the router handler: `PUT`/`GET /v1/profile` on PostgreSQL 18
 * (PGlite over the wire protocol; the password from the local Secrets Manager), and a chat of a
 * user with a profile: the profile reaches the model (the local Bedrock server) and the answer,
 * cached in Redis (exact) and pgvector (semantic), is never served to another user of the same tenant.
 */
import { cacheHierarchyConfig, MODEL, REDIS_PASSWORD } from './cache-hierarchy-config';
import { startRouterHandler, type RouterHandlerHarness, type RouterReply } from './router-harness';
import { AiMetricNames as M } from '../../constructs/contract/metrics';
import type { RouterRuntimeConfig } from '../../constructs/contract/runtime-config';
import { LocalAwsServer } from '../support/aws-protocol-server';
import { ACCOUNT, metricSum, type EventOptions } from '../support/lambda-harness';
import { PgliteServer } from '../support/pglite-server';
import { RedisServer } from '../support/redis-server';

const TENANT_A_USER_1 = `arn:aws:sts::${ACCOUNT}:assumed-role/TenantA/user-1`;
const TENANT_A_USER_2 = `arn:aws:sts::${ACCOUNT}:assumed-role/TenantA/user-2`;
const TABLE = 'user_profiles';

let redis: RedisServer;
let pglite: PgliteServer;
let aws: LocalAwsServer;
let db: ReturnType<PgliteServer['pool']>;
let router: RouterHandlerHarness;

const call = (body: unknown, options: EventOptions = {}): Promise<RouterReply> => router.call(body, TENANT_A_USER_1, options);
const ask = (text: string) => ({ messages: [{ role: 'user', content: text }] });
const putProfile = (profile: unknown, userArn = TENANT_A_USER_1) => call(profile, { routeKey: 'PUT /v1/profile', userArn });
const getProfile = (userArn = TENANT_A_USER_1) => call(undefined, { routeKey: 'GET /v1/profile', userArn });
const modelCalls = () => aws.callsOf().filter((c) => c.request.target === MODEL);
const profileReads = (r: RouterReply, outcome: string) => metricSum(r.metrics, M.USER_PROFILE_READS, { [M.DIMENSION_OUTCOME]: outcome });

beforeAll(async () => {
  [redis, pglite, aws] = await Promise.all([RedisServer.start({ password: REDIS_PASSWORD }), PgliteServer.start(), LocalAwsServer.start()]);
  const cacheSecret = aws.putSecret('scalable-ai/cache-auth', REDIS_PASSWORD);
  // One database user for the semantic cache and the profiles, as on one Aurora cluster.
  const dbSecret = aws.putSecret('scalable-ai/postgres', JSON.stringify({ username: 'postgres', password: 'postgres' }));
  db = pglite.pool({ max: 1 });
  const endpoint = { host: pglite.host, port: pglite.port };
  const config: RouterRuntimeConfig = {
    ...cacheHierarchyConfig(redis, pglite, cacheSecret, dbSecret),
    // One local server is both endpoints here (the adapter test splits them over two servers).
    userProfiles: { writer: endpoint, reader: endpoint, database: 'postgres', username: 'postgres', auth: 'secret', secretArn: dbSecret, table: TABLE, timeoutMs: 2_000 },
  };
  router = startRouterHandler(aws, config, 'router-profiles-test');
  // Cold start once, by a user without a profile: secrets, connections, the pgvector table and index.
  aws.setModel(MODEL, { reply: () => 'warm' });
  expect((await call(ask('warm-up'), { userArn: `arn:aws:sts::${ACCOUNT}:assumed-role/TenantA/warm-up` })).status).toBe(200);
});

beforeEach(() => {
  aws.reset();
  aws.setModel(MODEL, { reply: (r) => `answer to: ${r.messages[r.messages.length - 1].text}` });
});

afterAll(async () => {
  await router?.stop();
  await db?.end();
  await Promise.all([redis?.dispose(), pglite?.stop(), aws?.close()]);
});

describe('GET and PUT /v1/profile', () => {
  test('PUT stores the profile (the table is created on the first write), GET answers it; another user has none', async () => {
    const profile = { displayName: 'Ada', locale: 'en-GB', segment: 'premium', attributes: { shoeSize: '38' } };
    expect((await getProfile()).status).toBe(404);
    expect((await putProfile(profile)).status).toBe(204);
    const got = await getProfile();
    expect(got.status).toBe(200);
    expect(got.body).toEqual(profile);
    expect(got.headers['cache-control']).toContain('no-store');
    const rows = await db.query(`SELECT tenant, user_id FROM ${TABLE}`);
    expect(rows.rows).toEqual([{ tenant: `arn:aws:iam::${ACCOUNT}:role/TenantA`, user_id: 'user-1' }]);
    expect((await getProfile(TENANT_A_USER_2)).status).toBe(404);
  });

  test('an invalid profile is a 400 naming the problem; nothing is written', async () => {
    const bad = await putProfile({ displayName: 'Grace', favouriteColour: 'blue' }, TENANT_A_USER_2);
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toContain('favouriteColour');
    expect((await getProfile(TENANT_A_USER_2)).status).toBe(404);
  });

  test('a profile PostgreSQL cannot store (NUL, a lone surrogate) is a 400, not a 503; nothing is written', async () => {
    for (const profile of [{ segment: ':\udfffo' }, { displayName: 'Ada\u0000' }, { attributes: { note: '\ud800' } }]) {
      const bad = await putProfile(profile, TENANT_A_USER_2);
      expect(bad.status).toBe(400);
      expect(bad.body.error.message).toMatch(/well-formed Unicode/);
    }
    expect((await getProfile(TENANT_A_USER_2)).status).toBe(404);
  });

  test('a caller without a user id gets 403', async () => {
    const noUser = `arn:aws:iam::${ACCOUNT}:role/TenantA`;
    expect((await getProfile(noUser)).status).toBe(403);
    expect((await putProfile({ displayName: 'x' }, noUser)).status).toBe(403);
  });
});

describe('chat with a profile', () => {
  test('the profile is in the model\'s system prompt, and the answer is cached for its user only', async () => {
    // The same profile for two users of one tenant: the same prompt, which only the personal scope keeps apart.
    const profile = { locale: 'en-GB', segment: 'premium-gold', attributes: {} };
    expect((await putProfile(profile)).status).toBe(204);
    expect((await putProfile(profile, TENANT_A_USER_2)).status).toBe(204);
    const question = 'Which delivery options do I have?';
    const first = await call(ask(question));
    expect(first.status).toBe(200);
    expect(profileReads(first, 'used')).toBe(1);
    const seen = modelCalls();
    expect(seen).toHaveLength(1);
    expect(seen[0].request.system).toContain('"segment":"premium-gold"');
    expect(seen[0].request.system).toContain('"locale":"en-GB"');

    // The same user again: the personal cache entry answers.
    const again = await call(ask(question));
    expect(again.headers['x-cache']).toBe('exact');
    expect(modelCalls()).toHaveLength(1);

    // Another user of the same tenant: never the first user's answer.
    const other = await call(ask(question), { userArn: TENANT_A_USER_2 });
    expect(other.status).toBe(200);
    expect(other.headers['x-cache']).toBe('miss');
    expect(profileReads(other, 'used')).toBe(1);
    expect(modelCalls()).toHaveLength(2);
  });

  test('a user without a profile: no profile in the prompt, counted as none', async () => {
    const noProfile = `arn:aws:sts::${ACCOUNT}:assumed-role/TenantA/user-3`;
    const reply = await call(ask('What are your opening hours?'), { userArn: noProfile });
    expect(reply.status).toBe(200);
    expect(profileReads(reply, 'none')).toBe(1);
    expect(modelCalls()[0].request.system ?? '').not.toContain('profile');
  });
});
