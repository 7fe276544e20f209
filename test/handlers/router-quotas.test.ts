/**
 * Per-tenant quotas through the router handler, against the real redis-server (the counters, with
 * the production Lua script and iovalkey client) and the local AWS protocol server (Bedrock for the
 * model, SSM GetParameter for the overrides parameter, read with the real SSM client). The clock
 * (Date.now) is set per test, so that no window ends during one.
 */
import Valkey from 'iovalkey';
import { startRouterHandler, type RouterHandlerHarness, type RouterReply } from './router-harness';
import { AiMetricNames as M } from '../../constructs/contract/metrics';
import { ROUTER_CONFIG_ENV, type RouterRuntimeConfig } from '../../constructs/contract/runtime-config';
import { idHash } from '../../lambdas/core/hashing';
import type * as RouterHandler from '../../lambdas/router/handler';
import { LocalAwsServer } from '../support/aws-protocol-server';
import { ACCOUNT, httpApiEvent, lambdaContext, metricSum, type EventOptions } from '../support/lambda-harness';
import { RedisServer } from '../support/redis-server';

const MODEL = 'us.amazon.nova-micro-v1:0';
const PARAMETER = 'CFN-QuotaOverrides-AbCdEf123456';
const KEY_PREFIX = 'sai:';
const role = (name: string) => `arn:aws:iam::${ACCOUNT}:role/${name}`;
const session = (name: string, user: string) => `arn:aws:sts::${ACCOUNT}:assumed-role/${name}/${user}`;

let redis: RedisServer;
let aws: LocalAwsServer;
let admin: Valkey;
let router: RouterHandlerHarness;
/** The clock of the handler (and of the test): set to 10 s into a minute at each test. */
let now = 0;

function config(quotas: Partial<NonNullable<RouterRuntimeConfig['quotas']>> = {}, port = redis.port): RouterRuntimeConfig {
  return {
    // 500 input and 500 output tokens at 0.1 USD per 1,000: each model answer costs 0.1 USD.
    tiers: [{ id: 'small', provider: 'bedrock', modelId: MODEL, inputPricePer1k: 0.1, outputPricePer1k: 0.1, maxTokens: 512, timeoutMs: 5_000 }],
    tierHintPolicy: 'any',
    maxRequestBytes: 8_192,
    maxMessages: 10,
    tenant: { source: 'iam' },
    personalCaching: 'user',
    cache: { host: '127.0.0.1', port, tls: false, keyPrefix: KEY_PREFIX, timeoutMs: 500 },
    exactCache: { ttlSeconds: 300 },
    quotas: {
      defaults: { requestsPerMinute: 100, costPerDayUsd: 0.25, userRequestsPerMinute: 5 },
      failMode: 'open',
      overridesParameter: PARAMETER,
      overridesTtlSeconds: 60,
      ...quotas,
    },
  };
}

const ask = (text: string) => ({ messages: [{ role: 'user', content: text }] });
const call = (text: string, userArn: string, options: EventOptions = {}): Promise<RouterReply> =>
  router.call(ask(text), userArn, { userArn, ...options });
const modelCalls = () => aws.callsOf(MODEL).length;

beforeAll(async () => {
  [redis, aws] = await Promise.all([RedisServer.start(), LocalAwsServer.start()]);
  admin = new Valkey({ host: redis.host, port: redis.port, maxRetriesPerRequest: 5 });
  admin.on('error', () => undefined);
  aws.putParameter(PARAMETER, JSON.stringify({ tenants: { [role('Limited')]: { requestsPerMinute: 3, costPerDayUsd: null } } }));
  router = startRouterHandler(aws, config(), 'router-quotas-test');
});

beforeEach(async () => {
  now = Math.floor(Date.now() / 60_000) * 60_000 + 10_000;
  jest.spyOn(Date, 'now').mockImplementation(() => now);
  aws.reset();
  aws.setModel(MODEL, { reply: (r) => `answer to: ${r.messages[r.messages.length - 1].text}`, usage: { inputTokens: 500, outputTokens: 500 } });
  await admin.flushall();
});

afterEach(() => {
  (Date.now as jest.Mock).mockRestore();
});

afterAll(async () => {
  await router?.stop();
  admin?.disconnect();
  await Promise.all([redis?.dispose(), aws?.close()]);
});

test('a tenant over its requests per minute (an override) gets 429 with retry-after and the limit named; another tenant is unaffected', async () => {
  for (let i = 0; i < 3; i++) expect((await call(`question ${i}`, role('Limited'))).status).toBe(200);
  const refused = await call('question 3', role('Limited'));
  expect(refused.status).toBe(429);
  expect(refused.headers['retry-after']).toBe('50');
  expect(refused.body.error).toEqual({ code: 'quota-exceeded', message: `Quota exceeded: 3 requests per minute for tenant "${role('Limited')}". Retry after 50 seconds.` });
  expect(metricSum(refused.metrics, M.QUOTA_REFUSALS, { [M.DIMENSION_TENANT]: role('Limited'), [M.DIMENSION_LIMIT]: 'requests-per-minute' })).toBe(1);
  expect(metricSum(refused.metrics, M.REJECTED_REQUESTS, { [M.DIMENSION_REASON]: 'quota-exceeded' })).toBe(1);
  expect(modelCalls()).toBe(3);
  // Another tenant (default: 100 per minute) is answered.
  expect((await call('question 3', role('Other'))).status).toBe(200);
  // The next minute admits the tenant again.
  now += 50_000;
  expect((await call('question 4', role('Limited'))).status).toBe(200);
});

test('a burst at the limit: of 10 concurrent requests of a tenant limited to 3 a minute, exactly 3 are admitted', async () => {
  const replies = await Promise.all(Array.from({ length: 10 }, (_, i) => call(`burst ${i}`, role('Limited'))));
  expect(replies.filter((r) => r.status === 200)).toHaveLength(3);
  expect(replies.filter((r) => r.status === 429)).toHaveLength(7);
  expect(modelCalls()).toBe(3);
});

test('the tenant is the verified caller: a tenant named in the body or in headers is ignored', async () => {
  for (let i = 0; i < 3; i++) expect((await call(`q${i}`, role('Limited'))).status).toBe(200);
  // The body has no tenant field: one is refused as invalid, and counted against no one.
  expect((await router.call({ ...ask('q3'), tenantId: role('Other') }, role('Limited'))).status).toBe(400);
  const event = httpApiEvent(ask('q3'), role('Limited'));
  const res = await router.handler({ ...event, headers: { ...event.headers, 'x-tenant-id': role('Other'), 'x-edge-tenant': role('Other') } }, lambdaContext());
  expect(res.statusCode).toBe(429);
});

test('cost per day: a tenant is admitted while its spend is under the limit, cache hits cost nothing, then 429 until UTC midnight', async () => {
  const tenant = role('Spender');
  const costs: string[] = [];
  for (const q of ['first', 'first', 'second', 'third']) {
    const reply = await call(q, tenant);
    expect(reply.status).toBe(200);
    costs.push(reply.headers['x-cost-usd']);
  }
  // The repeated question was an exact cache hit: 0.
  expect(costs).toEqual(['0.100000', '0.000000', '0.100000', '0.100000']);
  const day = Math.floor(now / 86_400_000);
  expect(await admin.get(`${KEY_PREFIX}quota:${idHash(tenant)}:usd:${day}`)).toBe('300000');
  const refused = await call('fourth', tenant);
  expect(refused.status).toBe(429);
  expect(refused.body.error.message).toMatch(/^Quota exceeded: cost per day of 0\.25 USD for tenant ".*Spender" \(UTC day\)\. Retry after \d+ seconds \(UTC midnight\)\.$/);
  expect(Number(refused.headers['retry-after'])).toBe(Math.ceil(((day + 1) * 86_400_000 - now) / 1000));
  expect(metricSum(refused.metrics, M.QUOTA_REFUSALS, { [M.DIMENSION_LIMIT]: 'cost-per-day' })).toBe(1);
  expect(modelCalls()).toBe(3);
  expect((await call('fourth', role('Thrifty'))).status).toBe(200);
});

test('a user over the per-user limit is refused; the other users of the tenant are not', async () => {
  const tenant = 'Team';
  // The same question: one model call, then exact hits (which count as requests and cost nothing).
  for (let i = 0; i < 5; i++) expect((await call('the same question', session(tenant, 'user-1'))).status).toBe(200);
  const refused = await call('the same question', session(tenant, 'user-1'));
  expect(refused.status).toBe(429);
  expect(refused.body.error.message).toBe(`Quota exceeded: 5 requests per minute for this user of tenant "${role(tenant)}". Retry after 50 seconds.`);
  expect((await call('the same question', session(tenant, 'user-2'))).status).toBe(200);
  expect(modelCalls()).toBe(1);
});

test('overrides changed in the SSM parameter apply after the TTL, without a deploy; invalid JSON keeps the last good overrides', async () => {
  const tenant = role('Growing');
  try {
    aws.putParameter(PARAMETER, JSON.stringify({ tenants: { [tenant]: { requestsPerMinute: 1 } } }));
    // The copy read at the first test is still in use (60 s TTL): the tenant has the default.
    expect((await call('a', tenant)).status).toBe(200);
    expect((await call('a', tenant)).status).toBe(200);
    aws.parameterCalls.length = 0;
    now += 60_000;
    expect((await call('b', tenant)).status).toBe(200);
    expect(aws.parameterCalls).toEqual([{ name: PARAMETER, found: true }]);
    const limited = await call('b', tenant);
    expect(limited.status).toBe(429);
    expect(limited.body.error.message).toMatch(/^Quota exceeded: 1 requests per minute/);

    aws.putParameter(PARAMETER, '{"tenants": {"oops": {"requestPerMinute": 5}}}');
    now += 60_000;
    const first = await call('c', tenant);
    expect(metricSum(first.metrics, M.QUOTA_OVERRIDES_ERRORS, { [M.DIMENSION_REASON]: 'invalid' })).toBe(1);
    expect(first.status).toBe(200);
    expect((await call('c', tenant)).status).toBe(429);
  } finally {
    aws.putParameter(PARAMETER, JSON.stringify({ tenants: { [role('Limited')]: { requestsPerMinute: 3, costPerDayUsd: null } } }));
  }
});

test('hostile tenant ids: every counter key is the prefix and fixed-length hashes, and two ids never share a counter', async () => {
  const hostile = ['sai:quota:*', `${role('Limited')}:u:x`, 'x\r\nSET k v', '{"tenants":1}', 'caf\u00e9 \u202e'];
  const replies: RouterReply[] = [];
  for (const id of hostile) replies.push(await call('hello', id, { userArn: id }));
  for (const r of replies) expect(r.status).toBe(200);
  const keys = await admin.keys(`${KEY_PREFIX}quota:*`);
  // One request counter per tenant (no user: not assumed-role sessions) and one cost counter per tenant that paid.
  expect(keys.filter((k) => k.includes(':rpm:'))).toHaveLength(hostile.length);
  for (const key of keys) expect(key).toMatch(/^sai:quota:[0-9a-f]{16}(:u:[0-9a-f]{16})?:(rpm|usd):\d+$/);
  // A dimension value CloudWatch cannot take is replaced by its hash.
  // 'hello' cost 0.1 USD; two more answers take the day to 0.3, over the 0.25 limit.
  for (let i = 0; i < 2; i++) expect((await call(`more ${i}`, 'caf\u00e9 \u202e', { userArn: 'caf\u00e9 \u202e' })).status).toBe(200);
  const over = await call('more 2', 'caf\u00e9 \u202e', { userArn: 'caf\u00e9 \u202e' });
  expect(over.status).toBe(429);
  expect(metricSum(over.metrics, M.QUOTA_REFUSALS, { [M.DIMENSION_TENANT]: `h-${idHash('caf\u00e9 \u202e')}`, [M.DIMENSION_LIMIT]: 'cost-per-day' })).toBe(1);
});

describe('quota state that cannot be read (the cache server down)', () => {
  const saved = process.env[ROUTER_CONFIG_ENV];
  /** The Valkey clients of the fresh modules (which reconnect for ever unless closed). */
  const clients = new Set<Valkey>();
  afterEach(() => {
    process.env[ROUTER_CONFIG_ENV] = saved;
    for (const c of clients) c.disconnect();
    clients.clear();
  });

  /** A fresh handler module (a new container) on a cache port where nothing listens (read at its first request). */
  function loadHandler(failMode: 'open' | 'closed'): typeof RouterHandler.handler {
    process.env[ROUTER_CONFIG_ENV] = JSON.stringify(config({ failMode, overridesParameter: undefined }, 1));
    let handler!: typeof RouterHandler.handler;
    jest.isolateModules(() => {
      // The module registry's own iovalkey: the one the handler loaded here uses.
      const isolated = jest.requireActual<{ default: typeof Valkey }>('iovalkey').default;
      const connect = isolated.prototype.connect;
      jest.spyOn(isolated.prototype, 'connect').mockImplementation(function (this: Valkey, ...args: Parameters<Valkey['connect']>) {
        clients.add(this);
        return connect.apply(this, args);
      });
      ({ handler } = jest.requireActual<typeof RouterHandler>('../../lambdas/router/handler'));
    });
    return handler;
  }

  test('fail open: the request is answered by the model', async () => {
    const handler = loadHandler('open');
    const res = await handler(httpApiEvent(ask('while the cache is down'), role('Limited')), lambdaContext());
    expect(res.statusCode).toBe(200);
    expect(modelCalls()).toBe(1);
  });

  test('fail closed: 503 with retry-after, and no model call', async () => {
    const handler = loadHandler('closed');
    const res = await handler(httpApiEvent(ask('while the cache is down'), role('Limited')), lambdaContext());
    expect(res.statusCode).toBe(503);
    expect(res.headers?.['retry-after']).toBe('5');
    expect(JSON.parse(String(res.body)).error.code).toBe('quota-unavailable');
    expect(modelCalls()).toBe(0);
  });
});
