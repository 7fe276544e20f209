/**
 * Request coalescing in the core: the Coalescer's lease and wait (on a Map-backed lease store and
 * exact cache, with a clock the test moves), and the ChatService's use of it: which requests
 * coalesce, what the waiters are answered, the lease's lifetime and the bound of the wait.
 */
import { MapAnswerCache, RecordingMetrics, ScriptedInvoker, answer } from './cache-doubles';
import { AiMetricNames as M } from '../../constructs/contract/metrics';
import type { RouterRuntimeConfig, TierRuntimeConfig } from '../../constructs/contract/runtime-config';
import { exactCacheKey, type Caller } from '../../lambdas/core/cache-key';
import type { ChatRequest } from '../../lambdas/core/chat-request';
import { ChatService } from '../../lambdas/core/chat-service';
import { CircuitBreaker } from '../../lambdas/core/circuit-breaker';
import type { ComplexityClassifier } from '../../lambdas/core/classifier';
import { Coalescer, leaseKeyOf, MAX_POLL_MS, type Claim, type LeaseState, type LeaseStore } from '../../lambdas/core/coalescing';
import type { CachedAnswer, ModelInvoker, ModelRequest, ModelResponse } from '../../lambdas/core/ports';

const PREFIX = 'test:';
const NOT_CACHED = '!not-cached';

/** Leases on a Map, expiring on the test's clock; every call recorded. */
class MapLeaseStore implements LeaseStore {
  breaker?: CircuitBreaker;
  readonly leases = new Map<string, { token: string; expiresAt: number }>();
  readonly acquires: Array<{ key: string; token: string; ttlMs: number }> = [];
  readonly releases: Array<{ key: string; token: string }> = [];
  failing = false;

  constructor(private readonly now: () => number) {}

  async acquire(key: string, token: string, ttlMs: number): Promise<LeaseState> {
    this.acquires.push({ key, token, ttlMs });
    if (this.failing) throw new Error('connect ECONNREFUSED 10.0.0.1:6379');
    const held = this.leases.get(key);
    if (held && held.expiresAt > this.now()) return held.token === NOT_CACHED ? 'uncached' : 'held';
    this.leases.set(key, { token, expiresAt: this.now() + ttlMs });
    return 'taken';
  }

  async release(key: string, token: string, uncachedForMs?: number): Promise<boolean> {
    this.releases.push({ key, token });
    if (this.failing) throw new Error('connect ECONNREFUSED 10.0.0.1:6379');
    if (this.leases.get(key)?.token !== token) return false;
    if (uncachedForMs) {
      this.leases.set(key, { token: NOT_CACHED, expiresAt: this.now() + uncachedForMs });
      return true;
    }
    return this.leases.delete(key);
  }
}

/** A clock that moves only when a waiter sleeps; `onSleep` runs at each sleep (the world moving on). */
class TestClock {
  time = 1_750_000_000_000;
  readonly sleeps: number[] = [];
  onSleep: () => void = () => undefined;
  readonly now = (): number => this.time;
  readonly sleep = async (ms: number): Promise<void> => {
    this.sleeps.push(ms);
    this.time += ms;
    this.onSleep();
    await Promise.resolve();
  };
}

const CACHED: CachedAnswer = { id: 'a-1', text: 'Yes, we ship to Canada.', tierId: 'small', usage: { inputTokens: 10, outputTokens: 5 }, costUsd: 0.001, createdAt: 0 };
const KEY = `${PREFIX}exact:tenanthash:0123abcd`;

function coalescer(): { coalescer: Coalescer; leases: MapLeaseStore; exact: MapAnswerCache; metrics: RecordingMetrics; clock: TestClock } {
  const clock = new TestClock();
  const leases = new MapLeaseStore(clock.now);
  const exact = new MapAnswerCache();
  const metrics = new RecordingMetrics();
  let n = 0;
  const c = new Coalescer({ leases, exact, metrics, now: clock.now, sleep: clock.sleep, random: () => 0.5, token: () => `token-${++n}` });
  return { coalescer: c, leases, exact, metrics, clock };
}

describe('leaseKeyOf', () => {
  test('holds the whole exact key, outside the exact namespace', () => {
    const lease = leaseKeyOf(PREFIX, KEY);
    expect(lease).toBe(`${PREFIX}lease:exact:tenanthash:0123abcd`);
    expect(lease.startsWith(`${PREFIX}exact:`)).toBe(false);
  });

  test('differs for every tenant, every user of a personal entry and every request', () => {
    const a: Caller = { tenantId: 'tenant-a', userId: 'u1' };
    const b: Caller = { tenantId: 'tenant-b', userId: 'u1' };
    const q: ChatRequest = { messages: [{ role: 'user', text: 'Do you ship to Canada?' }] };
    const keys = [
      exactCacheKey(PREFIX, a, q, undefined, false),
      exactCacheKey(PREFIX, b, q, undefined, false),
      exactCacheKey(PREFIX, a, q, undefined, true),
      exactCacheKey(PREFIX, { tenantId: 'tenant-a', userId: 'u2' }, q, undefined, true),
      exactCacheKey(PREFIX, a, { ...q, maxTokens: 10 }, undefined, false),
    ].map((k) => leaseKeyOf(PREFIX, k));
    expect(new Set(keys).size).toBe(keys.length);
  });
});

describe('Coalescer', () => {
  test('the first request takes the lease; the next waits and gets its answer once stored', async () => {
    const { coalescer: c, exact, metrics, clock, leases } = coalescer();
    const first = await c.claim(PREFIX, KEY, 10_000, clock.time + 3_000);
    expect(first.kind).toBe('holder');
    expect(leases.acquires[0]).toMatchObject({ key: leaseKeyOf(PREFIX, KEY), ttlMs: 10_000 });

    let polls = 0;
    clock.onSleep = () => {
      if (++polls === 3) void exact.set(KEY, CACHED, 60);
    };
    const second = await c.claim(PREFIX, KEY, 10_000, clock.time + 3_000);
    expect(second).toEqual({ kind: 'answer', answer: CACHED });
    expect(metrics.sum(M.COALESCED_REQUESTS)).toBe(1);
    expect(metrics.named(M.COALESCING_FALL_THROUGHS)).toEqual([]);
  });

  test('a request that takes the lease just after a holder stored its answer uses that answer and gives the lease back', async () => {
    const { coalescer: c, leases, exact, metrics, clock } = coalescer();
    // The previous holder stored, then released, between this request's cache miss and its lease.
    await exact.set(KEY, CACHED, 60);
    expect(await c.claim(PREFIX, KEY, 10_000, clock.time + 3_000)).toEqual({ kind: 'answer', answer: CACHED });
    expect(leases.releases).toHaveLength(1);
    expect(leases.leases.size).toBe(0);
    expect(metrics.sum(M.COALESCED_REQUESTS)).toBe(1);
  });

  test('the holder releases its own lease only, once', async () => {
    const { coalescer: c, leases, clock } = coalescer();
    const first = (await c.claim(PREFIX, KEY, 100, clock.time + 3_000)) as Extract<Claim, { kind: 'holder' }>;
    // Its lease expired and another request took it: the late release leaves that one alone.
    clock.time += 200;
    expect((await c.claim(PREFIX, KEY, 100, clock.time)).kind).toBe('holder');
    await first.release();
    await first.release();
    expect(leases.releases).toHaveLength(1);
    expect(leases.leases.get(leaseKeyOf(PREFIX, KEY))?.token).toBe('token-2');
  });

  test('a holder that gives its lease back without an answer is replaced by exactly one waiter', async () => {
    const { coalescer: c, leases, exact, metrics, clock } = coalescer();
    const holder = (await c.claim(PREFIX, KEY, 10_000, clock.time + 3_000)) as Extract<Claim, { kind: 'holder' }>;
    let sleeps = 0;
    clock.onSleep = () => {
      sleeps++;
      if (sleeps === 2) void holder.release();
      if (sleeps === 8) void exact.set(KEY, CACHED, 60);
    };
    const waiters = await Promise.all([1, 2, 3].map(() => c.claim(PREFIX, KEY, 10_000, clock.time + 3_000)));
    expect(waiters.map((w) => w.kind).sort()).toEqual(['answer', 'answer', 'holder']);
    expect(metrics.sum(M.COALESCING_FALL_THROUGHS, { [M.DIMENSION_REASON]: 'holder-failed' })).toBe(1);
    expect(metrics.sum(M.COALESCED_REQUESTS)).toBe(2);
    expect(leases.leases.get(leaseKeyOf(PREFIX, KEY))).toBeDefined();
  });

  test('a lease that expired (its holder died) is taken over the same way', async () => {
    const { coalescer: c, metrics, clock } = coalescer();
    await c.claim(PREFIX, KEY, 500, clock.time + 3_000);
    const waiter = await c.claim(PREFIX, KEY, 500, clock.time + 3_000);
    expect(waiter.kind).toBe('holder');
    expect(clock.time - 1_750_000_000_000).toBeGreaterThanOrEqual(500);
    expect(metrics.sum(M.COALESCING_FALL_THROUGHS, { [M.DIMENSION_REASON]: 'holder-failed' })).toBe(1);
  });

  test('the wait ends at waitUntil: the request goes on alone, counted as a timeout', async () => {
    const { coalescer: c, metrics, clock } = coalescer();
    await c.claim(PREFIX, KEY, 60_000, clock.time + 3_000);
    const start = clock.time;
    const waiter = await c.claim(PREFIX, KEY, 60_000, start + 1_000);
    expect(waiter).toEqual({ kind: 'alone' });
    expect(clock.time - start).toBe(1_000);
    // Backoff: growing pauses, none longer than MAX_POLL_MS.
    expect(clock.sleeps[1]).toBeGreaterThan(clock.sleeps[0]);
    expect(Math.max(...clock.sleeps)).toBeLessThanOrEqual(MAX_POLL_MS);
    expect(metrics.sum(M.COALESCING_FALL_THROUGHS, { [M.DIMENSION_REASON]: 'timeout' })).toBe(1);
  });

  test('a lease store that fails leaves the request alone at once (fail open), counted as a cache error', async () => {
    const { coalescer: c, leases, metrics, clock } = coalescer();
    leases.failing = true;
    expect(await c.claim(PREFIX, KEY, 10_000, clock.time + 3_000)).toEqual({ kind: 'alone' });
    expect(clock.sleeps).toEqual([]);
    expect(metrics.sum(M.CACHE_ERRORS, { [M.DIMENSION_CACHE_LEVEL]: 'exact' })).toBe(1);
  });

  test('a cache that fails during the wait ends it: the request goes on alone', async () => {
    const { coalescer: c, exact, metrics, clock } = coalescer();
    await c.claim(PREFIX, KEY, 10_000, clock.time + 3_000);
    exact.failGet = true;
    expect(await c.claim(PREFIX, KEY, 10_000, clock.time + 3_000)).toEqual({ kind: 'alone' });
    expect(clock.sleeps).toHaveLength(1);
    expect(metrics.sum(M.COALESCING_FALL_THROUGHS, { [M.DIMENSION_REASON]: 'unavailable' })).toBe(1);
  });

  test('with the exact level\'s breaker open, no lease is asked for', async () => {
    const { coalescer: c, leases, metrics, clock } = coalescer();
    leases.breaker = new CircuitBreaker('exact', { failureThreshold: 1, now: clock.now });
    leases.breaker.failure();
    expect(await c.claim(PREFIX, KEY, 10_000, clock.time + 3_000)).toEqual({ kind: 'alone' });
    expect(leases.acquires).toEqual([]);
    expect(metrics.sum(M.BREAKER_SKIPS, { [M.DIMENSION_DEPENDENCY]: 'exact' })).toBe(1);
  });
});

// ---------------------------------------------------------------------------------------------
// ChatService
// ---------------------------------------------------------------------------------------------

const SMALL: TierRuntimeConfig = { id: 'small', provider: 'bedrock', modelId: 'm-small', inputPricePer1k: 0.0001, outputPricePer1k: 0.0004, maxTokens: 512, timeoutMs: 4_000 };
const LARGE: TierRuntimeConfig = { id: 'large', provider: 'bedrock', modelId: 'm-large', inputPricePer1k: 0.01, outputPricePer1k: 0.04, maxTokens: 512, timeoutMs: 6_000 };
const TENANT_A: Caller = { tenantId: 'tenant-a', userId: 'alice' };
const TENANT_B: Caller = { tenantId: 'tenant-b', userId: 'alice' };
const ask = (text: string, extra: Partial<ChatRequest> = {}): ChatRequest => ({ messages: [{ role: 'user', text }], ...extra });
const classifier = (score: number): ComplexityClassifier => ({ classify: () => ({ score, reasons: ['fixed'] }) });

/** Holds every invocation until `open()`; then answers (or fails) as scripted. */
class GatedInvoker implements ModelInvoker {
  readonly calls: Array<{ tierId: string; request: ModelRequest }> = [];
  private gate!: () => void;
  private readonly opened = new Promise<void>((resolve) => (this.gate = resolve));
  constructor(private readonly inner: ScriptedInvoker) {}
  open(): void {
    this.gate();
  }
  async invoke(tier: TierRuntimeConfig, request: ModelRequest): Promise<ModelResponse> {
    this.calls.push({ tierId: tier.id, request });
    await this.opened;
    return this.inner.invoke(tier, request);
  }
}

function service(options: { coalescing?: RouterRuntimeConfig['coalescing'] | null; score?: number; now?: () => number } = {}) {
  const scripted = new ScriptedInvoker()
    .script('small', answer('small answer'))
    .script('large', answer('large answer'));
  const invoker = new GatedInvoker(scripted);
  const exact = new MapAnswerCache();
  const now = options.now ?? Date.now;
  const leases = new MapLeaseStore(now);
  const metrics = new RecordingMetrics();
  const config: RouterRuntimeConfig = {
    tiers: [SMALL, LARGE],
    tierHintPolicy: 'any',
    maxRequestBytes: 32_768,
    maxMessages: 20,
    classifierThresholds: [0.5],
    tenant: { source: 'iam' },
    personalCaching: 'user',
    cache: { host: 'cache.internal', port: 6379, tls: true, keyPrefix: PREFIX, timeoutMs: 50 },
    exactCache: { ttlSeconds: 600 },
    coalescing: options.coalescing === null ? undefined : (options.coalescing ?? { maxWaitMs: 2_000 }),
  };
  const chat = new ChatService({ config, invoker, classifier: classifier(options.score ?? 0.1), metrics, exactCache: exact, leases, now });
  return { chat, invoker, scripted, exact, leases, metrics };
}

/** Lets the holder reach its model call, then opens the gate. */
async function settle<T>(invoker: GatedInvoker, work: Array<Promise<T>>): Promise<T[]> {
  while (invoker.calls.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
  await new Promise((resolve) => setTimeout(resolve, 30));
  invoker.open();
  return Promise.all(work);
}

describe('ChatService with coalescing', () => {
  test('of 10 identical requests in flight, one calls the model; the others are answered "coalesced" at no cost', async () => {
    const { chat, invoker, metrics } = service();
    const results = await settle(invoker, Array.from({ length: 10 }, () => chat.chat(ask('Do you ship to Canada?'), TENANT_A, Date.now() + 20_000)));
    expect(invoker.calls).toHaveLength(1);
    expect(results.map((r) => r.text)).toEqual(Array(10).fill('small answer'));
    const coalesced = results.filter((r) => r.servedBy === 'coalesced');
    expect(coalesced).toHaveLength(9);
    for (const r of coalesced) {
      expect(r).toMatchObject({ costUsd: 0, usage: { inputTokens: 0, outputTokens: 0 }, originalTierId: 'small', attempts: [] });
      expect(r.locations?.exactKeys).toHaveLength(1);
    }
    expect(metrics.sum(M.COALESCED_REQUESTS)).toBe(9);
  });

  test('without the coalescing config, every request calls the model (and no lease is asked for)', async () => {
    const { chat, invoker, leases } = service({ coalescing: null });
    await settle(invoker, Array.from({ length: 5 }, () => chat.chat(ask('Do you ship to Canada?'), TENANT_A, Date.now() + 20_000)));
    expect(invoker.calls).toHaveLength(5);
    expect(leases.acquires).toEqual([]);
  });

  test('two tenants asking the same question each pay their own call and get their own answer', async () => {
    const { chat, invoker, scripted } = service();
    scripted.script('small', answer('answer one'), answer('answer two'));
    const results = await settle(invoker, [TENANT_A, TENANT_B, TENANT_A, TENANT_B].map((who) => chat.chat(ask('Do you ship to Canada?'), who, Date.now() + 20_000)));
    expect(invoker.calls).toHaveLength(2);
    // Each tenant's second request got its own tenant's answer.
    expect(results[2].text).toBe(results[0].text);
    expect(results[3].text).toBe(results[1].text);
    expect(results[0].text).not.toBe(results[1].text);
  });

  test('a personal request without a user is never cached, so never coalesces', async () => {
    const { chat, invoker, leases } = service();
    const noUser: Caller = { tenantId: 'tenant-a' };
    const personal = ask('My email is jane@example.com, where is my order?');
    await settle(invoker, [1, 2, 3].map(() => chat.chat(personal, noUser, Date.now() + 20_000)));
    expect(invoker.calls).toHaveLength(3);
    expect(leases.acquires).toEqual([]);
  });

  test('the lease lives for the plan\'s tier timeouts (capped by the deadline), and the holder releases it after storing', async () => {
    const { chat, invoker, leases, exact } = service();
    const deadline = Date.now() + 20_000;
    await settle(invoker, [chat.chat(ask('Do you ship to Canada?'), TENANT_A, deadline)]);
    // small then large (fallback) at most: 4 s + 6 s, plus the margin kept for the writes.
    expect(leases.acquires[0].ttlMs).toBe(SMALL.timeoutMs + LARGE.timeoutMs + 250);
    expect(leases.releases).toHaveLength(1);
    expect(exact.sets).toHaveLength(1);
    expect(leases.leases.size).toBe(0);

    const { chat: short, invoker: shortInvoker, leases: shortLeases } = service();
    await settle(shortInvoker, [short.chat(ask('Do you ship to Canada?'), TENANT_A, Date.now() + 5_000)]);
    expect(shortLeases.acquires[0].ttlMs).toBeLessThanOrEqual(5_000);
  });

  test('a holder whose tiers all fail gives the lease back, and a waiter takes over within the wait', async () => {
    const { chat, invoker, scripted, leases, metrics } = service();
    const unavailable = Object.assign(new Error('InternalServerException'), { name: 'InternalServerException', $metadata: { httpStatusCode: 500 } });
    scripted.script('small', { fail: unavailable }, answer('small answer'));
    scripted.script('large', { fail: unavailable }, answer('large answer'));
    const outcomes = await settle(invoker, [1, 2].map(() => chat.chat(ask('Do you ship to Canada?'), TENANT_A, Date.now() + 20_000).then(
      (r) => r.text, (e: Error) => `error: ${e.message.slice(0, 30)}`)));
    expect(outcomes[0]).toMatch(/^error: No model tier could answer/);
    expect(outcomes[1]).toBe('small answer');
    expect(leases.releases.length).toBeGreaterThanOrEqual(2);
    expect(metrics.sum(M.COALESCING_FALL_THROUGHS, { [M.DIMENSION_REASON]: 'holder-failed' })).toBe(1);
  });

  test('an answer of a stand-in tier is not cached: the waiters do not get it, one of them asks again', async () => {
    // Classified to large; large fails, small stands in (its answer is not cached).
    const { chat, invoker, scripted, metrics } = service({ score: 0.9 });
    const unavailable = Object.assign(new Error('InternalServerException'), { name: 'InternalServerException', $metadata: { httpStatusCode: 500 } });
    scripted.script('large', { fail: unavailable }, answer('large answer'));
    const results = await settle(invoker, [1, 2].map(() => chat.chat(ask('Explain the trade-offs of our pricing tiers'), TENANT_A, Date.now() + 20_000)));
    expect(results.map((r) => [r.servedBy, r.text])).toEqual([['model', 'small answer'], ['model', 'large answer']]);
    expect(metrics.sum(M.COALESCED_REQUESTS)).toBe(0);
  });

  test('a holder answer cut off at max_tokens is not cached: every waiter asks a model at once, none waits for another', async () => {
    const { chat, invoker, scripted, leases, metrics } = service();
    scripted.script('small', ...Array.from({ length: 5 }, (_, i) => answer(`cut off ${i}`, undefined, 'max_tokens')));
    const results = await settle(invoker, Array.from({ length: 5 }, () => chat.chat(ask('Do you ship to Canada?'), TENANT_A, Date.now() + 20_000)));
    expect(results.map((r) => r.servedBy)).toEqual(Array(5).fill('model'));
    expect(invoker.calls).toHaveLength(5);
    // The four waiters learned it from the marker; without it they take the lease over one by one.
    expect(metrics.sum(M.COALESCING_FALL_THROUGHS, { [M.DIMENSION_REASON]: 'not-cached' })).toBe(4);
    expect(metrics.sum(M.COALESCING_FALL_THROUGHS, { [M.DIMENSION_REASON]: 'holder-failed' })).toBe(0);
    // Only the first request held a lease; the marker it left expires on its own.
    expect(leases.releases).toHaveLength(1);
  });

  test('a waiter whose deadline leaves no more than the selected tier\'s timeout does not wait at all', async () => {
    const { chat, invoker, leases, metrics } = service({ coalescing: { maxWaitMs: 60_000 } });
    holdLease(leases, ask('Do you ship to Canada?'));
    invoker.open();
    // 4 s of the small tier + the 250 ms margin do not leave any time to wait.
    const result = await chat.chat(ask('Do you ship to Canada?'), TENANT_A, Date.now() + SMALL.timeoutMs + 200);
    expect(result.servedBy).toBe('model');
    expect(leases.acquires).toHaveLength(1);
    expect(metrics.sum(M.COALESCING_FALL_THROUGHS, { [M.DIMENSION_REASON]: 'timeout' })).toBe(1);
  });

  test('a waiter whose holder never answers calls the model itself after maxWait', async () => {
    const { chat, invoker, leases, metrics } = service({ coalescing: { maxWaitMs: 50 } });
    holdLease(leases, ask('Do you ship to Canada?'));
    invoker.open();
    const result = await chat.chat(ask('Do you ship to Canada?'), TENANT_A, Date.now() + 20_000);
    expect(result).toMatchObject({ servedBy: 'model', text: 'small answer' });
    expect(invoker.calls).toHaveLength(1);
    // It polled (the lease was asked for again) before it gave up.
    expect(leases.acquires.length).toBeGreaterThan(1);
    expect(metrics.sum(M.COALESCING_FALL_THROUGHS, { [M.DIMENSION_REASON]: 'timeout' })).toBe(1);
  });
});

/** Another request holds the lease of `req` (tenant A's shared entry) for a minute and never answers. */
function holdLease(leases: MapLeaseStore, req: ChatRequest): void {
  const key = exactCacheKey(PREFIX, TENANT_A, req, undefined, false);
  leases.leases.set(leaseKeyOf(PREFIX, key), { token: 'someone-else', expiresAt: Date.now() + 60_000 });
}
