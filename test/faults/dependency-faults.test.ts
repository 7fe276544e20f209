/**
 * Faults of the router's other dependencies, against the real local servers and the real handler:
 * - a model tier that throttles, fails with 5xx, answers empty or malformed, or hangs past its
 *   timeout: the next tier answers; every tier failing: 503 with `retry-after`, nothing cached;
 * - Postgres (the pgvector semantic cache, user profiles) with its port closed, and silent
 *   (accepting, never answering): each request bounded, answered by a model, the level skipped
 *   after repeated failures; the explicit profile route answers 503 with `retry-after`;
 * - Secrets Manager silent at cold start (the cache AUTH token read hangs): requests answered
 *   without the Valkey levels within the read's deadline; once Secrets Manager answers again, the
 *   probe after the cool-down builds the connection and cache hits return.
 * Each scenario counts requests in and answers out: none lost, none answered twice.
 */
import { closedPort, Ledger, MovableClock, startRouter, type Reply, type RouterContainer } from './fault-kit';
import { AiMetricNames as M } from '../../constructs/contract/metrics';
import type { RouterRuntimeConfig, SemanticCacheRuntimeConfig, TierRuntimeConfig } from '../../constructs/contract/runtime-config';
import { DEFAULT_BREAKER_COOL_DOWN_MS } from '../../lambdas/core/circuit-breaker';
import { Failures, LocalAwsServer, type ModelScript } from '../support/aws-protocol-server';
import { ACCOUNT, metricSum } from '../support/lambda-harness';
import { RedisServer } from '../support/redis-server';
import { silentServer } from '../support/silent-server';

const USER = `arn:aws:sts::${ACCOUNT}:assumed-role/TenantA/user-1`;
const SMALL = 'us.amazon.nova-micro-v1:0';
const LARGE = 'llama-3-70b-chat';
/** The small tier's timeout (the one that hangs); the large one has 5 s (its client is loaded on first use). */
const TIER_TIMEOUT_MS = 1_000;
const TIERS: TierRuntimeConfig[] = [
  { id: 'small', provider: 'bedrock', modelId: SMALL, inputPricePer1k: 0.000035, outputPricePer1k: 0.00014, maxTokens: 512, timeoutMs: TIER_TIMEOUT_MS },
  { id: 'large', provider: 'sagemaker', endpointName: LARGE, apiFormat: 'openai-chat', inputPricePer1k: 0.002, outputPricePer1k: 0.006, maxTokens: 512, timeoutMs: 5_000 },
];

let aws: LocalAwsServer;

function baseConfig(overrides: Partial<RouterRuntimeConfig> = {}): RouterRuntimeConfig {
  return {
    tiers: TIERS,
    tierHintPolicy: 'any',
    maxRequestBytes: 8_192,
    maxMessages: 10,
    tenant: { source: 'iam' },
    personalCaching: 'user',
    ...overrides,
  };
}

/** The local models echo the question: an answer is a request's own when it ends with it. */
const ownAnswer = (q: string, text: string): boolean => text.endsWith(`] ${q}`);

beforeAll(async () => {
  aws = await LocalAwsServer.start();
});

afterAll(async () => {
  jest.restoreAllMocks();
  await aws?.close();
});

beforeEach(() => aws.reset());

describe('a tier that fails', () => {
  let router: RouterContainer;
  let redis: RedisServer;

  beforeAll(async () => {
    redis = await RedisServer.start();
    router = startRouter(aws, baseConfig({
      cache: { host: redis.host, port: redis.port, tls: false, keyPrefix: 'sai:', timeoutMs: 500 },
      exactCache: { ttlSeconds: 600 },
    }), USER);
    // Warm: the clients and connections exist, so a tier's timeout measures the tier, not a cold start.
    expect((await router.ask('warm-up', { extra: { tier: 'large' } })).status).toBe(200);
    expect((await router.ask('warm-up')).status).toBe(200);
  });

  afterAll(async () => {
    await router?.stop();
    await redis?.dispose();
  });

  // An answer that is not JSON (an HTML error page from a proxy), and a JSON answer of the wrong shape.
  const notJson: ModelScript = { rawBody: '<html><body>502 Bad Gateway</body></html>' };
  const wrongShape: ModelScript = { body: '<html><body>502 Bad Gateway</body></html>' };
  const empty: ModelScript = { body: { output: { message: { role: 'assistant', content: [] } }, stopReason: 'end_turn', usage: { inputTokens: 3, outputTokens: 0 } } };
  const faults: Array<[string, (q: string) => void, string]> = [
    ['throttling', () => aws.failNext(SMALL, Failures.throttling()), 'throttled'],
    ['a 5xx', () => aws.failNext(SMALL, Failures.internal()), 'server'],
    ['an empty answer', () => aws.setModel(SMALL, empty), 'empty'],
    ['an answer that is not JSON', () => aws.setModel(SMALL, notJson), 'server'],
    ['an answer of the wrong shape', () => aws.setModel(SMALL, wrongShape), 'empty'],
    ['a hang past the tier timeout', () => aws.failNext(SMALL, Failures.hang(30_000)), 'timeout'],
  ];

  test('throttling, 5xx, empty, not JSON, wrong shape, timeout: each falls back to the next tier; all tiers failing: 503 with retry-after; nothing lost or cached', async () => {
    const ledger = new Ledger();
    const fellBack: Reply[] = [];
    for (const [name, inject] of faults) {
      aws.reset();
      const q = `Which tier answers after ${name}?`;
      inject(q);
      const r = await ledger.ask((text) => router.ask(text), q);
      fellBack.push(r);
      expect({ name, status: r.status, tier: r.headers['x-tier'] }).toEqual({ name, status: 200, tier: 'large' });
      expect(r.body.routing.attempts).toEqual([
        expect.objectContaining({ tierId: 'small', outcome: 'failed' }),
        expect.objectContaining({ tierId: 'large', outcome: 'ok' }),
      ]);
      expect(metricSum(r.metrics, M.MODEL_ERRORS, { [M.DIMENSION_TIER]: 'small', [M.DIMENSION_ERROR_KIND]: r.body.routing.attempts[0].errorKind })).toBe(1);
      // A hang costs the tier's timeout, not the hang.
      expect(r.ms).toBeLessThan(TIER_TIMEOUT_MS + 5_000);
      expect(aws.callsOf(SMALL)).toHaveLength(1);
      expect(aws.callsOf(LARGE)).toHaveLength(1);
    }
    expect(fellBack.map((r) => r.body.routing.attempts[0].errorKind)).toEqual(faults.map(([, , kind]) => kind));
    expect(ledger.check(200, ownAnswer)).toEqual({ in: faults.length, out: faults.length });

    // Every tier failing, one way each: 503 with retry-after, naming what was tried; nothing cached.
    aws.reset();
    aws.failNext(SMALL, Failures.hang(30_000));
    aws.failNext(LARGE, Failures.throttling());
    const down = await router.ask('Is anybody answering?');
    expect(down.status).toBe(503);
    expect(down.headers['retry-after']).toMatch(/^[1-9]\d*$/);
    expect(down.body.error).toMatchObject({ code: 'unavailable', message: expect.stringMatching(/small \(timeout\), large \(throttled\)/) });
    expect(metricSum(down.metrics, M.UNAVAILABLE)).toBe(1);
    // Asked again once the tiers are back: a model answers (the 503 left no cache entry behind).
    aws.reset();
    const again = await router.ask('Is anybody answering?');
    expect(again).toMatchObject({ status: 200, headers: expect.objectContaining({ 'x-cache': 'miss', 'x-tier': 'small' }) });
  }, 60_000);
});

describe('Postgres unavailable', () => {
  const HNSW = { m: 16, efConstruction: 64, efSearch: 40 };

  function semantic(port: number, secretArn: string): SemanticCacheRuntimeConfig {
    return {
      embedder: { provider: 'bedrock', modelId: 'amazon.titan-embed-text-v2:0', dimensions: 256 },
      store: { kind: 'pgvector', hnsw: HNSW, pgvector: { host: '127.0.0.1', port, database: 'postgres', secretArn, table: 'semantic_cache', ssl: false } },
      threshold: 0.8,
      margin: 0.1,
      rivalSupport: 2,
      answerEquivalence: 0.9,
      neighbours: 10,
      ttlSeconds: 600,
      maxEntriesPerScope: 100,
      timeoutMs: 300,
    };
  }

  function profiles(port: number, secretArn: string): RouterRuntimeConfig['userProfiles'] {
    const endpoint = { host: '127.0.0.1', port };
    return { writer: endpoint, reader: endpoint, database: 'postgres', username: 'postgres', auth: 'secret', secretArn, table: 'user_profiles', timeoutMs: 300 };
  }

  test.each(['closed', 'silent'] as const)('the port %s: the semantic cache and profile reads are skipped after 3 failures; chats answered; the profile route 503', async (mode) => {
    const silent = mode === 'silent' ? await silentServer() : undefined;
    const port = silent?.port ?? (await closedPort());
    const secret = aws.putSecret(`scalable-ai/pg-${mode}`, JSON.stringify({ username: 'postgres', password: 'postgres' }));
    const router = startRouter(aws, baseConfig({ semanticCache: semantic(port, secret), userProfiles: profiles(port, secret) }), USER);
    try {
      const ledger = new Ledger();
      const replies: Reply[] = [];
      for (let i = 0; i < 5; i++) replies.push(await ledger.ask((q) => router.ask(q), `Do you ship to country number ${i}?`));
      for (const r of replies) {
        expect(r.status).toBe(200);
        expect(r.headers['x-cache']).toBe('miss');
        // A profile read, a semantic lookup and a write: 300 ms each at most.
        expect(r.ms).toBeLessThan(3 * 300 + 2_000);
      }
      const outcomes = replies.map((r) => ['failed', 'skipped'].find((o) => metricSum(r.metrics, M.USER_PROFILE_READS, { [M.DIMENSION_OUTCOME]: o }) === 1));
      expect(outcomes).toEqual(['failed', 'failed', 'failed', 'skipped', 'skipped']);
      expect(metricSum(replies[0].metrics, M.CACHE_ERRORS, { [M.DIMENSION_CACHE_LEVEL]: 'semantic' })).toBeGreaterThanOrEqual(1);
      expect(replies.slice(3).every((r) => metricSum(r.metrics, M.BREAKER_SKIPS, { [M.DIMENSION_DEPENDENCY]: 'semantic' }) >= 1)).toBe(true);
      expect(ledger.check(200, ownAnswer)).toEqual({ in: 5, out: 5 });
      expect(aws.callsOf(SMALL)).toHaveLength(5);

      // The explicit profile route does not pretend: 503 with retry-after, within its timeout.
      const get = await router.ask('', { routeKey: 'GET /v1/profile' });
      expect(get.status).toBe(503);
      expect(get.headers['retry-after']).toMatch(/^[1-9]\d*$/);
      expect(get.ms).toBeLessThan(300 + 2_000);
    } finally {
      await router.stop();
      await silent?.close();
    }
  }, 60_000);
});

describe('Secrets Manager silent at cold start', () => {
  const PASSWORD = 'cache-auth-token';
  let redis: RedisServer;

  beforeAll(async () => {
    redis = await RedisServer.start({ password: PASSWORD });
  });

  afterAll(async () => {
    await redis?.dispose();
  });

  test('requests are answered without the Valkey levels within the read deadline; when it answers again, the probe connects and hits return', async () => {
    const secret = aws.putSecret('scalable-ai/cache-auth-cold', PASSWORD);
    aws.failNextSecret(Failures.hang(60_000), 3);
    const clock = new MovableClock();
    const router = startRouter(aws, baseConfig({
      cache: { host: redis.host, port: redis.port, tls: false, authSecretArn: secret, keyPrefix: 'sai:', timeoutMs: 200 },
      exactCache: { ttlSeconds: 600 },
    }), USER);
    try {
      const ledger = new Ledger();
      const cold: Reply[] = [];
      for (let i = 0; i < 5; i++) cold.push(await ledger.ask((q) => router.ask(q), `Cold start question ${i}?`));
      for (const r of cold) {
        expect(r.status).toBe(200);
        expect(r.headers['x-cache']).toBe('miss');
        // The read's deadline is 1 s; far below the 60 s hang.
        expect(r.ms).toBeLessThan(1_000 + 3_000);
      }
      const built = cold.map((r) => metricSum(r.metrics, M.CACHE_ERRORS, { [M.DIMENSION_CACHE_LEVEL]: 'connection' }));
      const skipped = cold.map((r) => metricSum(r.metrics, M.BREAKER_SKIPS, { [M.DIMENSION_DEPENDENCY]: 'cache-connection' }));
      expect(built).toEqual([1, 1, 1, 0, 0]);
      expect(skipped).toEqual([0, 0, 0, 1, 1]);
      expect(router.valkeyClients.size).toBe(0);

      // Secrets Manager answers again; after the cool-down the probe reads the token and connects.
      clock.advance(DEFAULT_BREAKER_COOL_DOWN_MS);
      const probe = await ledger.ask((q) => router.ask(q), 'After Secrets Manager is back?');
      expect(probe.status).toBe(200);
      expect(metricSum(probe.metrics, M.BREAKER_SKIPS, { [M.DIMENSION_DEPENDENCY]: 'cache-connection' })).toBe(0);
      expect(metricSum(probe.metrics, M.CACHE_ERRORS)).toBe(0);
      const hit = await router.ask('After Secrets Manager is back?');
      expect(hit.headers['x-cache']).toBe('exact');

      expect(ledger.check(200, ownAnswer)).toEqual({ in: 6, out: 6 });
      expect(aws.callsOf(SMALL)).toHaveLength(6);
    } finally {
      await router.stop();
      clock.restore();
    }
  }, 60_000);
});
