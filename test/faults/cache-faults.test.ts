/**
 * Faults of the cache (Valkey), against a real Redis-protocol server and the real router handler:
 * - the server killed while requests flow, then started again on the same port: every request is
 *   answered by a model meanwhile, the breakers open, and once the server is back the probe after
 *   the cool-down closes them and cache hits return;
 * - a server that accepts connections and never answers: each request costs at most about
 *   `cache.timeoutMs` per level, then the breakers skip the levels at no cost.
 * Each scenario counts requests in and answers out: none lost, none answered twice, each its own.
 */
import { Ledger, MovableClock, startRouter, until, type Reply, type RouterContainer } from './fault-kit';
import { AiMetricNames as M } from '../../constructs/contract/metrics';
import type { RouterRuntimeConfig, TierRuntimeConfig } from '../../constructs/contract/runtime-config';
import { DEFAULT_BREAKER_COOL_DOWN_MS } from '../../lambdas/core/circuit-breaker';
import { LocalAwsServer } from '../support/aws-protocol-server';
import { ACCOUNT, metricSum, type EmfMetric } from '../support/lambda-harness';
import { RedisServer } from '../support/redis-server';
import { silentServer } from '../support/silent-server';

const USER = `arn:aws:sts::${ACCOUNT}:assumed-role/TenantA/user-1`;
const MODEL = 'us.amazon.nova-micro-v1:0';
const TIERS: TierRuntimeConfig[] = [
  { id: 'small', provider: 'bedrock', modelId: MODEL, inputPricePer1k: 0.000035, outputPricePer1k: 0.00014, maxTokens: 512, timeoutMs: 5_000 },
];
const CACHE_TIMEOUT_MS = 200;

let aws: LocalAwsServer;

function config(port: number, overrides: Partial<RouterRuntimeConfig> = {}): RouterRuntimeConfig {
  return {
    tiers: TIERS,
    tierHintPolicy: 'any',
    maxRequestBytes: 8_192,
    maxMessages: 10,
    tenant: { source: 'iam' },
    personalCaching: 'user',
    cache: { host: '127.0.0.1', port, tls: false, keyPrefix: 'sai:', timeoutMs: CACHE_TIMEOUT_MS },
    exactCache: { ttlSeconds: 600 },
    ...overrides,
  };
}

/** The model echoes the question: an answer is a request's own when it carries its question. */
const ownAnswer = (q: string, text: string): boolean => text === `[${MODEL}] ${q}`;
const all = (replies: Reply[]): EmfMetric[] => replies.flatMap((r) => r.metrics);
const sum = (replies: Reply[], name: string, dims: Record<string, string>): number => metricSum(all(replies), name, dims);

beforeAll(async () => {
  aws = await LocalAwsServer.start();
});

afterAll(async () => {
  jest.restoreAllMocks();
  await aws?.close();
});

beforeEach(() => aws.reset());

describe('the cache server killed while requests flow', () => {
  let redis: RedisServer;
  let clock: MovableClock;
  let router: RouterContainer;

  beforeAll(async () => {
    redis = await RedisServer.start();
  });

  afterAll(async () => {
    await router?.stop();
    clock?.restore();
    await redis?.dispose();
  });

  test('answers keep coming from the model; the breakers open; back on the same port, the probe closes them and hits return', async () => {
    clock = new MovableClock();
    router = startRouter(aws, config(redis.port, { userContext: { kind: 'valkey', maxTurns: 4, ttlSeconds: 60 } }), USER);
    const ledger = new Ledger();
    // In a session: the exact level (a per-user key) and the user context level both run.
    const ask = (q: string) => ledger.ask((text) => router.ask(text, { extra: { session: 's1' } }), q);
    // Without a session, a repeated single question is an exact hit.
    const askTwice = async (q: string): Promise<[Reply, Reply]> => [await ledger.ask((text) => router.ask(text), q), await router.ask(q)];

    // Healthy: a miss, then the same question is a hit.
    const before = [await ask('Before the outage, question 1?'), await ask('Before the outage, question 2?')];
    expect(before.map((r) => r.headers['x-cache'])).toEqual(['miss', 'miss']);
    expect((await askTwice('Before the outage, a repeated question?')).map((r) => r.headers['x-cache'])).toEqual(['miss', 'exact']);

    // Killed in the middle of a request: it and the ones after it are answered by the model.
    const during: Reply[] = [];
    for (let i = 0; i < 8; i++) {
      const pending = ask(`During the outage, question ${i}?`);
      if (i === 0) await redis.stop('SIGKILL');
      during.push(await pending);
    }
    for (const r of during) {
      expect(r.status).toBe(200);
      expect(r.headers['x-cache']).toBe('miss');
      expect(r.headers['x-tier']).toBe('small');
      // Each failing level costs at most about its timeout (a request has two Valkey levels, read and write).
      expect(r.ms).toBeLessThan(6 * CACHE_TIMEOUT_MS + 2_000);
    }
    expect(sum(during, M.CIRCUIT_OPENED, { [M.DIMENSION_DEPENDENCY]: 'exact' })).toBe(1);
    expect(sum(during, M.CIRCUIT_OPENED, { [M.DIMENSION_DEPENDENCY]: 'context' })).toBe(1);
    // Once open, the later requests skip the exact level (its read and its write) without trying it.
    const exactSkips = during.map((r) => metricSum(r.metrics, M.BREAKER_SKIPS, { [M.DIMENSION_DEPENDENCY]: 'exact' }));
    expect(exactSkips.slice(-4)).toEqual([2, 2, 2, 2]);
    expect(during.slice(-4).map((r) => metricSum(r.metrics, M.CACHE_ERRORS, { [M.DIMENSION_CACHE_LEVEL]: 'exact' }))).toEqual([0, 0, 0, 0]);

    // Back on the same port (empty: no persistence); the container's client reconnects by itself.
    await redis.start();
    expect(router.valkeyClients.size).toBe(1);
    await until('the router\'s Valkey client to reconnect', () => [...router.valkeyClients].every((c) => c.status === 'ready'));
    // Still inside the cool-down: skipped, not tried.
    const stillOpen = await ask('Right after the restart?');
    expect(metricSum(stillOpen.metrics, M.BREAKER_SKIPS, { [M.DIMENSION_DEPENDENCY]: 'exact' })).toBe(2);

    // After the cool-down, one request probes each level; the probes succeed and close the breakers.
    clock.advance(DEFAULT_BREAKER_COOL_DOWN_MS);
    const probe = await ask('After the cool-down, the probe?');
    expect(probe.headers['x-cache']).toBe('miss');
    expect(metricSum(probe.metrics, M.BREAKER_SKIPS, { [M.DIMENSION_DEPENDENCY]: 'exact' })).toBe(0);
    expect(metricSum(probe.metrics, M.CACHE_ERRORS, { [M.DIMENSION_CACHE_LEVEL]: 'exact' })).toBe(0);
    expect(metricSum(probe.metrics, M.BREAKER_SKIPS, { [M.DIMENSION_DEPENDENCY]: 'context' })).toBe(0);
    const [miss, hit] = await askTwice('After the recovery, a repeated question?');
    expect([miss.headers['x-cache'], hit.headers['x-cache']]).toEqual(['miss', 'exact']);
    expect(hit.body.output.text).toBe(`[${MODEL}] After the recovery, a repeated question?`);
    expect(metricSum(hit.metrics, M.BREAKER_SKIPS)).toBe(0);

    // Requests in = answers out, each its own; one model call per question, none for the two hits.
    expect(ledger.check(200, ownAnswer)).toEqual({ in: 14, out: 14 });
    expect(aws.callsOf(MODEL)).toHaveLength(14);
    expect(new Set(aws.callsOf(MODEL).map((c) => c.request.messages.at(-1)?.text)).size).toBe(14);
  }, 60_000);
});

describe('a cache server that accepts connections and never answers', () => {
  test('each request is bounded by cache.timeoutMs per level; after 3 failures the levels are skipped; the probe fails and reopens', async () => {
    const silent = await silentServer();
    const clock = new MovableClock();
    const router = startRouter(aws, config(silent.port), USER);
    try {
      const ledger = new Ledger();
      const replies: Reply[] = [];
      for (let i = 0; i < 6; i++) replies.push(await ledger.ask((q) => router.ask(q), `Is the cache silent, question ${i}?`));
      for (const r of replies) {
        expect(r.status).toBe(200);
        expect(r.headers['x-cache']).toBe('miss');
        // A read and a write of the exact level, each given up at the timeout; far below a hang.
        expect(r.ms).toBeLessThan(2 * CACHE_TIMEOUT_MS + 2_000);
      }
      const errors = replies.map((r) => metricSum(r.metrics, M.CACHE_ERRORS, { [M.DIMENSION_CACHE_LEVEL]: 'exact' }));
      const skips = replies.map((r) => metricSum(r.metrics, M.BREAKER_SKIPS, { [M.DIMENSION_DEPENDENCY]: 'exact' }));
      // get and set time out on the first request, get on the second (the third failure opens it); then skipped.
      expect(errors).toEqual([2, 1, 0, 0, 0, 0]);
      expect(skips).toEqual([0, 1, 2, 2, 2, 2]);
      expect(sum(replies, M.CIRCUIT_OPENED, { [M.DIMENSION_DEPENDENCY]: 'exact' })).toBe(1);

      // The probe after the cool-down times out too: the breaker opens again at once.
      clock.advance(DEFAULT_BREAKER_COOL_DOWN_MS);
      const probe = await ledger.ask((q) => router.ask(q), 'Is the cache still silent?');
      expect(probe.status).toBe(200);
      expect(metricSum(probe.metrics, M.CACHE_ERRORS, { [M.DIMENSION_CACHE_LEVEL]: 'exact' })).toBe(1);
      expect(metricSum(probe.metrics, M.CIRCUIT_OPENED, { [M.DIMENSION_DEPENDENCY]: 'exact' })).toBe(1);
      expect(metricSum(probe.metrics, M.BREAKER_SKIPS, { [M.DIMENSION_DEPENDENCY]: 'exact' })).toBe(1);

      expect(ledger.check(200, ownAnswer)).toEqual({ in: 7, out: 7 });
      expect(aws.callsOf(MODEL)).toHaveLength(7);
      // One connection: the client waits on it; it does not open one per request.
      expect(silent.accepted()).toBeLessThanOrEqual(2);
    } finally {
      await router.stop();
      clock.restore();
      await silent.close();
    }
  }, 60_000);
});
