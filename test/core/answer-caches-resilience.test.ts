/**
 * The cache levels under failure, as the router wires them: each level has a circuit breaker
 * (skipped for a cool-down after repeated failures, then probed), and a lookup abandoned at its
 * time limit has its signal aborted so the embedder and store stop working on it.
 */
import {
  answer, DEADLINE, fixedScore, MapAnswerCache, NOW, RecordingMetrics, routerConfig, SCORE, ScriptedInvoker, SEMANTIC_OPTIONS, SpyVectorStore,
  TestEmbedder,
} from './cache-doubles';
import { AiMetricNames as M } from '../../constructs/contract/metrics';
import type { RouterRuntimeConfig } from '../../constructs/contract/runtime-config';
import type { Caller } from '../../lambdas/core/cache-key';
import { ChatService } from '../../lambdas/core/chat-service';
import { CircuitBreaker, CircuitOpenError } from '../../lambdas/core/circuit-breaker';
import type { VectorStore } from '../../lambdas/core/semantic/ports';
import { QuestionGuard } from '../../lambdas/core/semantic/question-guard';
import { SemanticCache } from '../../lambdas/core/semantic/semantic-cache';

const ALICE: Caller = { tenantId: 'tenant-a', userId: 'alice' };
const COOL_DOWN_MS = 10_000;

/** The router's wiring: breakers on a clock the test moves, shared by every request of the "container". */
function container(config: Partial<RouterRuntimeConfig> = {}, store?: VectorStore) {
  let now = NOW;
  const breakerOptions = { failureThreshold: 3, coolDownMs: COOL_DOWN_MS, now: () => now };
  const exact = new MapAnswerCache();
  exact.breaker = new CircuitBreaker('exact', breakerOptions);
  const embedder = new TestEmbedder();
  const vectors = new SpyVectorStore();
  const guard = new QuestionGuard();
  const semanticBreaker = new CircuitBreaker('semantic', breakerOptions);
  const semantic = new SemanticCache(embedder, store ?? vectors, guard, SEMANTIC_OPTIONS, semanticBreaker);
  const invoker = new ScriptedInvoker().script('small', answer('from the model'));
  const cfg = routerConfig({ staticAnswers: undefined, userContext: undefined, ...config });
  /** One request, with its own metrics. */
  const request = async (question = 'How do I reset my password?') => {
    const metrics = new RecordingMetrics();
    const service = new ChatService({
      config: cfg,
      invoker,
      classifier: fixedScore(SCORE.small),
      metrics,
      guard,
      exactCache: cfg.exactCache ? exact : undefined,
      semanticCache: cfg.semanticCache ? semantic : undefined,
      now: () => now,
    });
    const result = await service.chat({ messages: [{ role: 'user', text: question }] }, ALICE, DEADLINE);
    return { result, metrics };
  };
  return { exact, embedder, vectors, invoker, semanticBreaker, request, advance: (ms: number) => (now += ms) };
}

describe('circuit breakers of the cache levels', () => {
  test('the exact level failing 3 times in a row is skipped (BreakerSkips), then probed after the cool-down; a success closes it', async () => {
    const c = container({ semanticCache: undefined });
    c.exact.failGet = true;
    c.exact.failSet = true;
    // Each request tries get and set: the third failure (the second request's get) opens the breaker.
    const first = await c.request();
    expect(first.metrics.sum(M.CACHE_ERRORS, { [M.DIMENSION_CACHE_LEVEL]: 'exact' })).toBe(2);
    const second = await c.request();
    expect(second.metrics.sum(M.CIRCUIT_OPENED, { [M.DIMENSION_DEPENDENCY]: 'exact' })).toBe(1);
    expect(c.exact.gets).toHaveLength(2);

    // Open: the level is not called at all, the request is answered by the model, the skips are counted.
    const skipped = await c.request();
    expect(skipped.result.servedBy).toBe('model');
    expect(c.exact.gets).toHaveLength(2);
    expect(c.exact.sets).toHaveLength(0);
    expect(skipped.metrics.sum(M.BREAKER_SKIPS, { [M.DIMENSION_DEPENDENCY]: 'exact' })).toBe(2);
    expect(skipped.metrics.sum(M.CACHE_ERRORS, { [M.DIMENSION_CACHE_LEVEL]: 'exact' })).toBe(0);

    // After the cool-down, one probe; the cache is back, so the breaker closes and the answer is cached.
    c.exact.failGet = false;
    c.exact.failSet = false;
    c.advance(COOL_DOWN_MS);
    const probe = await c.request();
    expect(c.exact.gets).toHaveLength(3);
    expect(probe.metrics.sum(M.BREAKER_SKIPS, { [M.DIMENSION_DEPENDENCY]: 'exact' })).toBe(0);
    expect(c.exact.sets).toHaveLength(1);
    expect((await c.request()).result.servedBy).toBe('exact');
  });

  test('a probe that fails keeps the level skipped for another cool-down', async () => {
    const c = container({ semanticCache: undefined });
    c.exact.failGet = true;
    c.exact.failSet = true;
    await c.request();
    await c.request();
    c.advance(COOL_DOWN_MS);
    const probe = await c.request();
    expect(probe.metrics.sum(M.CIRCUIT_OPENED, { [M.DIMENSION_DEPENDENCY]: 'exact' })).toBe(1);
    const gets = c.exact.gets.length;
    await c.request();
    expect(c.exact.gets).toHaveLength(gets);
  });

  test('the semantic level timing out 3 times is skipped: no embedding, no search, no time spent on it', async () => {
    const base = routerConfig().semanticCache!;
    const c = container({ exactCache: undefined, semanticCache: { ...base, timeoutMs: 20 } });
    c.vectors.hangSearch = true;
    for (let i = 0; i < 2; i++) expect((await c.request()).metrics.sum(M.CACHE_ERRORS, { [M.DIMENSION_CACHE_LEVEL]: 'semantic' })).toBe(1);
    // The third timeout (a lookup) opens it; the write after it is already skipped.
    const third = await c.request();
    expect(third.metrics.sum(M.CIRCUIT_OPENED, { [M.DIMENSION_DEPENDENCY]: 'semantic' })).toBe(1);
    expect(c.semanticBreaker.state).toBe('open');
    const embeddings = c.embedder.calls.length;
    const searches = c.vectors.searches.length;
    const skipped = await c.request();
    expect(skipped.result.servedBy).toBe('model');
    expect(c.embedder.calls).toHaveLength(embeddings);
    expect(c.vectors.searches).toHaveLength(searches);
    expect(skipped.metrics.sum(M.BREAKER_SKIPS, { [M.DIMENSION_DEPENDENCY]: 'semantic' })).toBe(1);
  });

  test('a dependency of a level whose own breaker is open (a store build) counts as a skip of that dependency, not a level failure', async () => {
    const refusing: VectorStore = {
      ensureIndex: async () => undefined,
      search: async () => Promise.reject(new CircuitOpenError('semantic-store')),
      put: async () => Promise.reject(new CircuitOpenError('semantic-store')),
      deleteScope: async () => undefined,
    };
    const c = container({ exactCache: undefined }, refusing);
    for (let i = 0; i < 4; i++) {
      const r = await c.request();
      expect(r.metrics.sum(M.BREAKER_SKIPS, { [M.DIMENSION_DEPENDENCY]: 'semantic-store' })).toBe(1);
      expect(r.metrics.sum(M.CACHE_ERRORS, { [M.DIMENSION_CACHE_LEVEL]: 'semantic' })).toBe(0);
    }
    expect(c.semanticBreaker.state).toBe('closed');
  });
});

describe('a lookup abandoned at its time limit is cancelled', () => {
  test('the vector store\'s signal is aborted when the semantic level gives up on it', async () => {
    const base = routerConfig().semanticCache!;
    const c = container({ exactCache: undefined, semanticCache: { ...base, timeoutMs: 20 } });
    c.vectors.hangSearch = true;
    const { result, metrics } = await c.request();
    expect(result.servedBy).toBe('model');
    expect(metrics.sum(M.CACHE_ERRORS, { [M.DIMENSION_CACHE_LEVEL]: 'semantic' })).toBe(1);
    const [searchSignal] = c.vectors.signals;
    expect(searchSignal).toBeDefined();
    expect(searchSignal!.aborted).toBe(true);
    expect((searchSignal!.reason as Error).name).toBe('TimeoutError');
  });

  test('the embedder\'s signal is aborted when the semantic level gives up on it', async () => {
    const base = routerConfig().semanticCache!;
    const c = container({ exactCache: undefined, semanticCache: { ...base, timeoutMs: 20 } });
    c.embedder.hanging = true;
    const { result } = await c.request();
    expect(result.servedBy).toBe('model');
    expect(c.embedder.signals).toHaveLength(1);
    expect(c.embedder.signals[0]?.aborted).toBe(true);
  });
});
