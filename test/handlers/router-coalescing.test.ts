/**
 * Request coalescing end to end: bursts of concurrent requests through several router
 * "containers" (handler modules loaded apart, each with its own Valkey client) against a real
 * redis-server and the local Bedrock server, which counts the model calls. Each model call is held
 * for a moment, so that the burst is in flight together, as a stampede on a cold cache is.
 */
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import Valkey from 'iovalkey';
import { AiMetricNames as M } from '../../constructs/contract/metrics';
import { ROUTER_CONFIG_ENV, type RouterRuntimeConfig } from '../../constructs/contract/runtime-config';
import { leaseKeyOf } from '../../lambdas/core/coalescing';
import type * as RouterHandler from '../../lambdas/router/handler';
import { Failures, LocalAwsServer } from '../support/aws-protocol-server';
import { trackIsolatedValkeyClients } from '../support/isolated-valkey';
import { ACCOUNT, captureJsonStdout, enableEmf, httpApiEvent, lambdaContext, metricSum, parseEmf } from '../support/lambda-harness';
import { RedisServer } from '../support/redis-server';

const TENANT_A = `arn:aws:sts::${ACCOUNT}:assumed-role/TenantA/user-1`;
const TENANT_B = `arn:aws:sts::${ACCOUNT}:assumed-role/TenantB/user-1`;
const MODEL = 'us.amazon.nova-micro-v1:0';
const PREFIX = 'sai:';
/** How long the local model holds each call: the burst is in flight together. */
const MODEL_DELAY_MS = 300;
const CONTAINERS = 4;

let redis: RedisServer;
let aws: LocalAwsServer;
let admin: Valkey;
let captured: string[];
const clients = new Set<Valkey>();
const savedEnv = { ...process.env };

function config(overrides: Partial<RouterRuntimeConfig> = {}, server = redis): RouterRuntimeConfig {
  return {
    tiers: [{ id: 'small', provider: 'bedrock', modelId: MODEL, inputPricePer1k: 0.000035, outputPricePer1k: 0.00014, maxTokens: 512, timeoutMs: 5_000 }],
    tierHintPolicy: 'cheaper-only',
    maxRequestBytes: 8_192,
    maxMessages: 10,
    tenant: { source: 'iam' },
    personalCaching: 'user',
    cache: { host: server.host, port: server.port, tls: false, keyPrefix: PREFIX, timeoutMs: 500 },
    exactCache: { ttlSeconds: 600 },
    coalescing: { maxWaitMs: 3_000 },
    ...overrides,
  };
}

/** `n` router containers: the handler module loaded afresh with `c`, each with its own clients. */
function containers(c: RouterRuntimeConfig, n = CONTAINERS): Array<typeof RouterHandler.handler> {
  process.env[ROUTER_CONFIG_ENV] = JSON.stringify(c);
  return Array.from({ length: n }, () => {
    let handler!: typeof RouterHandler.handler;
    jest.isolateModules(() => {
      trackIsolatedValkeyClients(clients);
      ({ handler } = jest.requireActual<typeof RouterHandler>('../../lambdas/router/handler'));
    });
    return handler;
  });
}

interface Reply {
  readonly status: number;
  readonly cache: string;
  readonly text: string;
}

interface Burst {
  readonly replies: Reply[];
  readonly modelCalls: number;
  /** Sum of a metric over the burst's EMF documents. */
  metric(name: string, dimensions?: Record<string, string>): number;
}

/** Sends every request at once, spread over the containers; counts the model calls they made. */
async function burst(handlers: Array<typeof RouterHandler.handler>, requests: Array<{ text: string; user?: string }>): Promise<Burst> {
  captured.splice(0);
  const before = aws.callsOf(MODEL).length;
  const results: APIGatewayProxyStructuredResultV2[] = await Promise.all(requests.map((r, i) =>
    handlers[i % handlers.length](httpApiEvent({ messages: [{ role: 'user', content: r.text }] }, r.user ?? TENANT_A), lambdaContext())));
  const metrics = parseEmf(captured.splice(0));
  return {
    replies: results.map((res) => {
      const body = JSON.parse(String(res.body ?? '{}'));
      return { status: res.statusCode ?? 0, cache: body.cache, text: body.output?.text };
    }),
    modelCalls: aws.callsOf(MODEL).length - before,
    metric: (name, dimensions) => metricSum(metrics, name, dimensions),
  };
}

const same = (n: number, text: string) => Array.from({ length: n }, () => ({ text }));
const count = (replies: Reply[], cache: string) => replies.filter((r) => r.cache === cache).length;

beforeAll(async () => {
  [redis, aws] = await Promise.all([RedisServer.start(), LocalAwsServer.start()]);
  admin = new Valkey({ host: redis.host, port: redis.port, maxRetriesPerRequest: 5 });
  admin.on('error', () => undefined);
  Object.assign(process.env, aws.env(), { POWERTOOLS_SERVICE_NAME: 'router-coalescing-test' });
  enableEmf();
  captured = captureJsonStdout();
  const connect = Valkey.prototype.connect;
  jest.spyOn(Valkey.prototype, 'connect').mockImplementation(function (this: Valkey, ...args: Parameters<Valkey['connect']>) {
    if (this !== admin) clients.add(this);
    return connect.apply(this, args);
  });
});

beforeEach(async () => {
  aws.reset();
  let n = 0;
  aws.setModel(MODEL, { reply: (r) => `answer #${++n} to: ${r.messages[r.messages.length - 1].text}` });
  // Every call is held a moment (more than any burst needs to be sent).
  aws.failNext(MODEL, Failures.hang(MODEL_DELAY_MS), 1_000);
  await admin.flushall();
});

afterAll(async () => {
  jest.restoreAllMocks();
  for (const c of clients) c.disconnect();
  admin?.disconnect();
  await Promise.all([redis?.dispose(), aws?.close()]);
  for (const key of Object.keys(process.env)) if (!(key in savedEnv)) delete process.env[key];
  Object.assign(process.env, savedEnv);
});

describe('a burst of identical requests on a cold cache', () => {
  test('200 concurrent identical requests over 4 containers: a handful of model calls, 200 answers of the same text', async () => {
    const b = await burst(containers(config()), same(200, 'Do you ship to Canada?'));
    expect(b.replies.every((r) => r.status === 200)).toBe(true);
    expect(new Set(b.replies.map((r) => r.text)).size).toBe(1);
    expect(b.modelCalls).toBeLessThanOrEqual(3);
    expect(count(b.replies, 'miss')).toBe(b.modelCalls);
    expect(count(b.replies, 'coalesced')).toBe(200 - b.modelCalls);
    expect(b.metric(M.COALESCED_REQUESTS)).toBe(200 - b.modelCalls);
    expect(b.metric(M.LATENCY, { [M.DIMENSION_SERVED_BY]: 'coalesced' })).toBeGreaterThan(0);
    // The holder gave its lease back.
    expect(await admin.keys(`${PREFIX}lease:*`)).toEqual([]);
  }, 60_000);

  test('without coalescing the same burst pays for (nearly) every request', async () => {
    const b = await burst(containers(config({ coalescing: undefined })), same(200, 'Do you ship to Canada?'));
    expect(b.replies.every((r) => r.status === 200)).toBe(true);
    expect(b.modelCalls).toBeGreaterThan(150);
    expect(count(b.replies, 'coalesced')).toBe(0);
  }, 60_000);

  test('20 distinct questions x 10 identical each: one call per question with coalescing, about 200 without', async () => {
    const requests = Array.from({ length: 200 }, (_, i) => ({ text: `What is the delivery time to region ${i % 20}?` }));
    const on = await burst(containers(config()), requests);
    expect(on.replies.every((r) => r.status === 200)).toBe(true);
    // Every request got the answer to its own question.
    on.replies.forEach((r, i) => expect(r.text).toMatch(new RegExp(`to: What is the delivery time to region ${i % 20}\\?$`)));
    expect(on.modelCalls).toBeLessThanOrEqual(25);
    expect(on.modelCalls).toBeGreaterThanOrEqual(20);

    await admin.flushall();
    const off = await burst(containers(config({ coalescing: undefined })), requests);
    expect(off.modelCalls).toBeGreaterThan(150);
  }, 60_000);
});

describe('scope', () => {
  test('two tenants with the same question each pay their own call and never get the other\'s answer', async () => {
    const requests = Array.from({ length: 100 }, (_, i) => ({ text: 'Do you ship to Canada?', user: i % 2 === 0 ? TENANT_A : TENANT_B }));
    const b = await burst(containers(config()), requests);
    expect(b.replies.every((r) => r.status === 200)).toBe(true);
    const textsOf = (user: string) => new Set(b.replies.filter((_, i) => requests[i].user === user).map((r) => r.text));
    const a = textsOf(TENANT_A);
    const other = textsOf(TENANT_B);
    // Each tenant's 50 requests got one answer (its own model call's), and the two never mix.
    expect(a.size).toBe(1);
    expect(other.size).toBe(1);
    expect([...a][0]).not.toBe([...other][0]);
    expect(b.modelCalls).toBeGreaterThanOrEqual(2);
    expect(b.modelCalls).toBeLessThanOrEqual(4);
  }, 60_000);
});

describe('a holder that fails', () => {
  test('its tier answering 5xx: it gives the lease back, one waiter takes over and answers the rest', async () => {
    aws.reset();
    aws.setModel(MODEL, { reply: 'the answer' });
    aws.failNext(MODEL, Failures.internal(), 1);
    aws.failNext(MODEL, Failures.hang(MODEL_DELAY_MS), 1_000);
    const b = await burst(containers(config()), same(50, 'Do you ship to Canada?'));
    // The holder's single tier failed: it answers 503 (with retry-after), as without coalescing.
    expect(b.replies.filter((r) => r.status === 503)).toHaveLength(1);
    const answered = b.replies.filter((r) => r.status === 200);
    expect(answered).toHaveLength(49);
    expect(answered.every((r) => r.text === 'the answer')).toBe(true);
    // The failed call and the one that answered (a waiter that took the lease over, or came after
    // the release), give or take a request that missed the lease in between: not one call each.
    expect(b.modelCalls).toBeLessThanOrEqual(4);
  }, 60_000);

  test('dead (its lease taken and never released): the waiters call the model themselves when maxWait runs out', async () => {
    // Learn the question's exact key, then leave a lease behind as a holder that died would.
    const handlers = containers(config({ coalescing: { maxWaitMs: 400 } }));
    await burst(handlers, same(1, 'Do you ship to Canada?'));
    const [exactKey] = await admin.keys(`${PREFIX}exact:*`);
    await admin.del(exactKey);
    await admin.set(leaseKeyOf(PREFIX, exactKey), 'dead-holder', 'PX', 60_000);

    const b = await burst(handlers, same(10, 'Do you ship to Canada?'));
    expect(b.replies.every((r) => r.status === 200 && r.cache === 'miss')).toBe(true);
    expect(b.modelCalls).toBe(10);
    expect(b.metric(M.COALESCING_FALL_THROUGHS, { [M.DIMENSION_REASON]: 'timeout' })).toBe(10);
    // The dead holder's lease is left to expire: nobody else may delete it.
    expect(await admin.get(leaseKeyOf(PREFIX, exactKey))).toBe('dead-holder');
  }, 60_000);
});

describe('a cache that is down', () => {
  test('no coalescing: every request is answered by a model', async () => {
    const down = await RedisServer.start();
    try {
      const handlers = containers(config({}, down), 2);
      await down.stop('SIGKILL');
      const b = await burst(handlers, same(20, 'Do you ship to Canada?'));
      expect(b.replies.every((r) => r.status === 200 && r.cache === 'miss')).toBe(true);
      expect(b.modelCalls).toBe(20);
      expect(b.metric(M.COALESCED_REQUESTS)).toBe(0);
      expect(b.metric(M.CACHE_ERRORS, { [M.DIMENSION_CACHE_LEVEL]: 'exact' })).toBeGreaterThan(0);
    } finally {
      await down.dispose();
    }
  }, 60_000);
});
