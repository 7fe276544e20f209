/**
 * The router's DependencyBuilder, without servers: what it wires from the runtime configuration.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { AiMetricNames as M } from '../../constructs/contract/metrics';
import type { RouterRuntimeConfig, SemanticCacheRuntimeConfig } from '../../constructs/contract/runtime-config';
import { CircuitBreaker } from '../../lambdas/core/circuit-breaker';
import { QuestionGuard } from '../../lambdas/core/semantic/question-guard';
import { Build, DependencyBuilder, GuardedUserContextStore } from '../../lambdas/router/dependencies';
import { MapUserContextStore, RecordingMetrics } from '../core/cache-doubles';

const logger = new Logger({ logLevel: 'SILENT' });

/** Values no default has, so a setting that is not wired cannot match by chance. */
const SEMANTIC: SemanticCacheRuntimeConfig = {
  embedder: { provider: 'bedrock', modelId: 'amazon.titan-embed-text-v2:0', dimensions: 256 },
  store: { kind: 'valkey', indexName: 'sem', hnsw: { m: 16, efConstruction: 64, efSearch: 40 } },
  threshold: 0.613,
  margin: 0.0421,
  rivalSupport: 5,
  answerEquivalence: 0.777,
  neighbours: 13,
  ttlSeconds: 4_321,
  maxEntriesPerScope: 987,
  timeoutMs: 345,
};

function config(semanticCache: SemanticCacheRuntimeConfig): RouterRuntimeConfig {
  return {
    tiers: [{ id: 'small', provider: 'bedrock', modelId: 'm', inputPricePer1k: 0, outputPricePer1k: 0, maxTokens: 100, timeoutMs: 1_000 }],
    tierHintPolicy: 'ignore',
    maxRequestBytes: 1_000,
    maxMessages: 4,
    tenant: { source: 'iam' },
    personalCaching: 'user',
    semanticCache,
  };
}

test('the semantic cache the router builds decides and stores with the configured threshold, margin, ttl and the other settings', async () => {
  const deps = await new DependencyBuilder(config(SEMANTIC), new QuestionGuard(), logger).get(new RecordingMetrics());
  expect(deps.semanticCache).toBeDefined();
  expect(deps.semanticCache!.options).toEqual({
    threshold: 0.613,
    margin: 0.0421,
    rivalSupport: 5,
    answerEquivalence: 0.777,
    neighbours: 13,
    ttlSeconds: 4_321,
    maxEntriesPerScope: 987,
  });
  expect(deps.semanticCache!.embedderId).toBe('amazon.titan-embed-text-v2:0/256');
  // The level has the router's breaker.
  expect(deps.semanticCache!.breaker).toBeInstanceOf(CircuitBreaker);
});

describe('Build', () => {
  let now = 0;
  const breaker = (): CircuitBreaker => new CircuitBreaker('b', { failureThreshold: 2, coolDownMs: 1_000, now: () => now });

  test('an attempt that outlasts its limit is dropped: the next caller starts a new one, and a late value is disposed of', async () => {
    const attempts: Array<(v: string) => void> = [];
    const disposed: string[] = [];
    const build = new Build<string>('store', breaker(), 30, () => new Promise((resolve) => attempts.push(resolve)), (late) => disposed.push(late));
    await expect(build.get()).rejects.toThrow(/store took longer than 30 ms/);
    const second = build.get();
    expect(attempts).toHaveLength(2);
    attempts[0]('late');
    attempts[1]('on time');
    await expect(second).resolves.toBe('on time');
    await new Promise((r) => setImmediate(r));
    expect(disposed).toEqual(['late']);
    // Kept once built.
    await expect(build.get()).resolves.toBe('on time');
    expect(attempts).toHaveLength(2);
  });

  test('a caller waits for an attempt in flight only until its own signal aborts', async () => {
    const build = new Build<string>('store', breaker(), 10_000, () => new Promise(() => undefined));
    await expect(build.get(AbortSignal.timeout(20))).rejects.toMatchObject({ name: 'TimeoutError' });
  });

  test('failed attempts open the breaker: callers are refused at once until the cool-down, and the opening is reported once', async () => {
    now = 0;
    let calls = 0;
    const build = new Build<string>('store', breaker(), 1_000, async () => {
      calls++;
      throw new Error('refused');
    });
    await expect(build.get()).rejects.toThrow('refused');
    await expect(build.get()).rejects.toThrow('refused');
    await new Promise((r) => setImmediate(r));
    expect(build.takeOpened()).toBe(true);
    expect(build.takeOpened()).toBe(false);
    await expect(build.get()).rejects.toMatchObject({ name: 'CircuitOpenError', dependency: 'store' });
    expect(calls).toBe(2);
    now = 1_000;
    await expect(build.get()).rejects.toThrow('refused');
    expect(calls).toBe(3);
  });
});

test('every cache level the builder wires has its breaker: exact, semantic, static; user context goes through a guarded store', async () => {
  const cfg: RouterRuntimeConfig = {
    ...config(SEMANTIC),
    // No server behind it: iovalkey connects in the background and nothing is sent.
    cache: { host: '127.0.0.1', port: 1, tls: false, keyPrefix: 'sai:', timeoutMs: 50 },
    exactCache: { ttlSeconds: 60 },
    staticAnswers: { maxAgeSeconds: 60 },
    userContext: { kind: 'valkey', maxTurns: 4, ttlSeconds: 60 },
  };
  const builder = new DependencyBuilder(cfg, new QuestionGuard(), logger);
  const deps = await builder.get(new RecordingMetrics());
  try {
    expect(deps.exactCache?.breaker).toBeInstanceOf(CircuitBreaker);
    expect(deps.semanticCache?.breaker).toBeInstanceOf(CircuitBreaker);
    expect(deps.staticAnswers?.breaker).toBeInstanceOf(CircuitBreaker);
    expect(deps.userContext).toBeInstanceOf(GuardedUserContextStore);
    // One breaker per level, kept by the container: the next request gets the same ones.
    const again = await builder.get(new RecordingMetrics());
    expect(again.exactCache?.breaker).toBe(deps.exactCache?.breaker);
    expect(new Set([deps.exactCache?.breaker, deps.semanticCache?.breaker, deps.staticAnswers?.breaker]).size).toBe(3);
  } finally {
    (deps.exactCache as unknown as { client: { disconnect(): void } }).client.disconnect();
  }
});

describe('GuardedUserContextStore', () => {
  test('failing reads open the breaker: the context is then skipped (empty, nothing appended), and explicit writes are still tried', async () => {
    let now = 0;
    const store = new MapUserContextStore();
    store.failLoad = true;
    const breaker = new CircuitBreaker('context', { failureThreshold: 2, coolDownMs: 1_000, now: () => now });
    const metrics = new RecordingMetrics();
    const guarded = new GuardedUserContextStore(store, breaker, 1_000, metrics);
    await expect(guarded.load('t', 'u', 's', 4)).rejects.toThrow();
    await expect(guarded.load('t', 'u', 's', 4)).rejects.toThrow();
    expect(metrics.sum(M.CIRCUIT_OPENED, { [M.DIMENSION_DEPENDENCY]: 'context' })).toBe(1);
    store.failLoad = false;
    await expect(guarded.load('t', 'u', 's', 4)).resolves.toEqual({ turns: [], preferences: {} });
    await guarded.appendTurns('t', 'u', 's', [{ role: 'user', text: 'hi' }], { maxTurns: 4, ttlSeconds: 60 });
    expect(store.appends).toHaveLength(0);
    expect(metrics.sum(M.BREAKER_SKIPS, { [M.DIMENSION_DEPENDENCY]: 'context' })).toBe(2);
    await guarded.setPreferences('t', 'u', { tone: 'brief' }, 60);
    expect(store.preferenceWrites).toHaveLength(1);
    now = 1_000;
    await guarded.appendTurns('t', 'u', 's', [{ role: 'user', text: 'hi' }], { maxTurns: 4, ttlSeconds: 60 });
    expect(store.appends).toHaveLength(1);
  });

  test('a store that hangs costs a request at most the time limit', async () => {
    const hanging = new MapUserContextStore();
    hanging.load = () => new Promise(() => undefined);
    const guarded = new GuardedUserContextStore(hanging, new CircuitBreaker('context'), 30, new RecordingMetrics());
    await expect(guarded.load('t', 'u', 's', 4)).rejects.toMatchObject({ name: 'TimeoutError' });
  });
});
