import { AiMetricNames as M } from '../../constructs/contract/metrics';
import type { QuotasRuntimeConfig, RouterRuntimeConfig, TierRuntimeConfig } from '../../constructs/contract/runtime-config';
import type { Caller } from '../../lambdas/core/cache-key';
import { handleChat } from '../../lambdas/core/chat-endpoint';
import { ChatService } from '../../lambdas/core/chat-service';
import { CircuitBreaker } from '../../lambdas/core/circuit-breaker';
import { HttpError } from '../../lambdas/core/errors';
import type { AnswerCache, CachedAnswer, MetricsRecorder, MetricUnit, ModelInvoker, ModelResponse } from '../../lambdas/core/ports';
import {
  DAY_MS, limitsOf, parseQuotaOverrides, QuotaGate, quotaKey, tenantDimension,
  type QuotaCounter, type QuotaOverrides, type QuotaStore,
} from '../../lambdas/core/quota';

class RecordingMetrics implements MetricsRecorder {
  readonly records: Array<{ name: string; unit: MetricUnit; value: number; dimensions: Record<string, string> }> = [];
  add(name: string, unit: MetricUnit, value: number, dimensions: Record<string, string> = {}): void {
    this.records.push({ name, unit, value, dimensions: { ...dimensions } });
  }
  named(name: string) {
    return this.records.filter((r) => r.name === name);
  }
}

/** The semantics of the Valkey script, in memory (TTLs are not modelled: windows are in the keys). */
class MemoryQuotaStore implements QuotaStore {
  readonly values = new Map<string, number>();
  failing = false;
  async admit(counters: readonly QuotaCounter[]): Promise<number> {
    if (this.failing) throw new Error('connection is closed');
    const refused = counters.findIndex((c) => (this.values.get(c.key) ?? 0) + c.increment >= c.refuseAt);
    if (refused >= 0) return refused;
    for (const c of counters) if (c.increment > 0) this.values.set(c.key, (this.values.get(c.key) ?? 0) + c.increment);
    return -1;
  }
  async charge(counters: ReadonlyArray<Pick<QuotaCounter, 'key'>>, amount: number): Promise<void> {
    if (this.failing) throw new Error('connection is closed');
    for (const c of counters) this.values.set(c.key, (this.values.get(c.key) ?? 0) + amount);
  }
}

// 2025-06-15T15:06:40Z: 40 s into a minute.
const NOW = 1_750_000_000_000;
const A: Caller = { tenantId: 'tenant-a', userId: 'alice' };
const B: Caller = { tenantId: 'tenant-b', userId: 'bob' };

function gate(quotas: Partial<QuotasRuntimeConfig> = {}, options: { overrides?: QuotaOverrides; now?: () => number; breaker?: CircuitBreaker } = {}) {
  const store = new MemoryQuotaStore();
  const metrics = new RecordingMetrics();
  let now = options.now ?? (() => NOW);
  const clock = { set: (ms: number) => (now = () => ms) };
  const overrides = options.overrides;
  const g = new QuotaGate(store, {
    defaults: { requestsPerMinute: 3 },
    failMode: 'open',
    overridesTtlSeconds: 60,
    ...quotas,
    keyPrefix: 'sai:',
    timeoutMs: 50,
  }, { overrides: overrides ? { current: async () => overrides } : undefined, now: () => now(), breaker: options.breaker });
  return { g, store, metrics, clock };
}

async function refusal(p: Promise<unknown>): Promise<HttpError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(HttpError);
  return err as HttpError;
}

describe('parseQuotaOverrides', () => {
  test('reads the limits per tenant; null lifts a limit, a limit left out keeps the default', () => {
    const tenants = { big: { requestsPerMinute: 1000, costPerDayUsd: null }, small: { costPerDayUsd: 0.5 } };
    const overrides = parseQuotaOverrides(JSON.stringify({ tenants }));
    const defaults = { requestsPerMinute: 10, costPerDayUsd: 2 };
    expect(limitsOf(defaults, overrides, 'big')).toEqual({ requestsPerMinute: 1000, costPerDayUsd: null, userRequestsPerMinute: undefined, userCostPerDayUsd: undefined });
    expect(limitsOf(defaults, overrides, 'small')).toMatchObject({ requestsPerMinute: 10, costPerDayUsd: 0.5 });
    expect(limitsOf(defaults, overrides, 'other')).toBe(defaults);
  });

  test('a tenant named like an Object property is a tenant like another, and no tenant inherits one', () => {
    const overrides = parseQuotaOverrides('{"tenants":{"__proto__":{"requestsPerMinute":1},"constructor":{"requestsPerMinute":2}}}');
    expect(limitsOf({ requestsPerMinute: 10 }, overrides, '__proto__').requestsPerMinute).toBe(1);
    expect(limitsOf({ requestsPerMinute: 10 }, overrides, 'constructor').requestsPerMinute).toBe(2);
    expect(limitsOf({ requestsPerMinute: 10 }, parseQuotaOverrides('{"tenants":{}}'), 'toString').requestsPerMinute).toBe(10);
  });

  test.each([
    ['not JSON', '{"tenants":', /not JSON/],
    ['no tenants', '{"tenant":{}}', /must be an object/],
    ['an array of tenants', '{"tenants":[]}', /must be an object/],
    ['an unknown top-level field', '{"tenants":{},"x":1}', /unknown fields: x/],
    ['a misspelt limit', '{"tenants":{"a":{"requestPerMinute":5}}}', /unknown field "requestPerMinute"/],
    ['a negative limit', '{"tenants":{"a":{"costPerDayUsd":-1}}}', /costPerDayUsd must be a number of at least 0/],
    ['a fractional request limit', '{"tenants":{"a":{"requestsPerMinute":1.5}}}', /requestsPerMinute must be a whole number/],
    ['a string limit', '{"tenants":{"a":{"requestsPerMinute":"5"}}}', /requestsPerMinute must be a whole number/],
    ['limits that are not an object', '{"tenants":{"a":5}}', /tenant "a" must be an object/],
  ])('refuses %s', (_what, text, message) => {
    expect(() => parseQuotaOverrides(text)).toThrow(message);
  });
});

describe('quotaKey', () => {
  test('hashes tenant and user into fixed-length parts: no id reaches past its part of the key or makes two tenants one', () => {
    const hostile = { tenantId: 'a:u:b:rpm:1', userId: 'x' };
    const keys = [
      quotaKey('sai:', { tenantId: 'a' }, 'tenant', 'rpm', 7),
      quotaKey('sai:', hostile, 'tenant', 'rpm', 7),
      quotaKey('sai:', { tenantId: 'a', userId: 'b' }, 'user', 'rpm', 7),
      quotaKey('sai:', { tenantId: 'a\uD800' }, 'tenant', 'rpm', 7),
      quotaKey('sai:', { tenantId: 'a\uFFFD' }, 'tenant', 'rpm', 7),
    ];
    expect(new Set(keys).size).toBe(keys.length);
    for (const key of keys) expect(key).toMatch(/^sai:quota:[0-9a-f]{16}(:u:[0-9a-f]{16})?:rpm:7$/);
  });
});

describe('QuotaGate', () => {
  test('a tenant over its requests per minute gets 429 with retry-after to the next minute and the limit named; another tenant is unaffected', async () => {
    const { g, metrics } = gate();
    for (let i = 0; i < 3; i++) await g.admit(A, metrics);
    const err = await refusal(g.admit(A, metrics));
    expect(err.statusCode).toBe(429);
    expect(err.reason).toBe('quota-exceeded');
    expect(err.headers['retry-after']).toBe('20');
    expect(err.message).toBe('Quota exceeded: 3 requests per minute for tenant "tenant-a". Retry after 20 seconds.');
    await expect(g.admit(B, metrics)).resolves.toBeDefined();
    expect(metrics.named(M.QUOTA_REFUSALS).map((r) => r.dimensions)).toEqual([
      { [M.DIMENSION_LIMIT]: 'requests-per-minute' },
      { [M.DIMENSION_TENANT]: 'tenant-a', [M.DIMENSION_LIMIT]: 'requests-per-minute' },
    ]);
  });

  test('a refused request uses none of the window, and the next minute admits again', async () => {
    const { g, metrics, clock, store } = gate();
    for (let i = 0; i < 3; i++) await g.admit(A, metrics);
    await refusal(g.admit(A, metrics));
    await refusal(g.admit(A, metrics));
    expect([...store.values.values()]).toEqual([3]);
    clock.set(NOW + 20_000);
    await expect(g.admit(A, metrics)).resolves.toBeDefined();
  });

  test('a user over its own limit is refused while the other users of the tenant are not', async () => {
    const { g, metrics } = gate({ defaults: { requestsPerMinute: 100, userRequestsPerMinute: 2 } });
    await g.admit(A, metrics);
    await g.admit(A, metrics);
    const err = await refusal(g.admit(A, metrics));
    expect(err.message).toMatch(/^Quota exceeded: 2 requests per minute for this user of tenant "tenant-a"/);
    await expect(g.admit({ tenantId: 'tenant-a', userId: 'carol' }, metrics)).resolves.toBeDefined();
    // A caller without a user id is held to the tenant's limits only.
    await expect(g.admit({ tenantId: 'tenant-a' }, metrics)).resolves.toBeDefined();
  });

  test('cost per day: admitted while the spend is under the limit, refused once it is reached, until UTC midnight', async () => {
    const { g, metrics, clock } = gate({ defaults: { costPerDayUsd: 0.01 } });
    const first = await g.admit(A, metrics);
    await g.charge(first, 0.006, metrics);
    // 0.006 < 0.01: admitted, and this one takes the day over the limit.
    const second = await g.admit(A, metrics);
    await g.charge(second, 0.006, metrics);
    const err = await refusal(g.admit(A, metrics));
    const midnight = (Math.floor(NOW / DAY_MS) + 1) * DAY_MS;
    expect(err.headers['retry-after']).toBe(String(Math.ceil((midnight - NOW) / 1000)));
    expect(err.message).toMatch(/^Quota exceeded: cost per day of 0.01 USD for tenant "tenant-a" \(UTC day\)\. Retry after \d+ seconds \(UTC midnight\)\.$/);
    await expect(g.admit(B, metrics)).resolves.toBeDefined();
    clock.set(midnight);
    await expect(g.admit(A, metrics)).resolves.toBeDefined();
  });

  test('a positive cost limit under one micro-dollar admits until a charge reaches it; 0 refuses at once', async () => {
    const tiny = gate({ defaults: { costPerDayUsd: 1e-7 } });
    const first = await tiny.g.admit(A, tiny.metrics);
    await tiny.g.charge(first, 1e-9, tiny.metrics);
    await refusal(tiny.g.admit(A, tiny.metrics));
    const zero = gate({ defaults: { costPerDayUsd: 0 } });
    await refusal(zero.g.admit(A, zero.metrics));
  });

  test('costs are counted in whole micro-dollars, a cache hit (0) charges nothing, and a tiny cost counts one', async () => {
    const { g, metrics, store } = gate({ defaults: { costPerDayUsd: 1 } });
    const admission = await g.admit(A, metrics);
    await g.charge(admission, 0.1, metrics);
    await g.charge(admission, 0.2, metrics);
    await g.charge(admission, 0, metrics);
    await g.charge(admission, 1e-9, metrics);
    expect([...store.values.values()]).toEqual([300_001]);
  });

  test('overrides replace the defaults of their tenant only', async () => {
    const { g, metrics } = gate({}, { overrides: { tenants: { 'tenant-a': { requestsPerMinute: 1 } } } });
    await g.admit(A, metrics);
    await refusal(g.admit(A, metrics));
    for (let i = 0; i < 3; i++) await g.admit(B, metrics);
  });

  test('no limit for the tenant: nothing is counted', async () => {
    const { g, metrics, store } = gate({}, { overrides: { tenants: { 'tenant-a': { requestsPerMinute: null } } } });
    for (let i = 0; i < 10; i++) await expect(g.admit(A, metrics)).resolves.toBeUndefined();
    expect(store.values.size).toBe(0);
  });

  test('quota state that cannot be read: fail open admits and counts the error; fail closed answers 503 with retry-after', async () => {
    const open = gate();
    open.store.failing = true;
    await expect(open.g.admit(A, open.metrics)).resolves.toBeDefined();
    expect(open.metrics.named(M.QUOTA_ERRORS)).toHaveLength(1);

    const closed = gate({ failMode: 'closed' });
    closed.store.failing = true;
    const err = await refusal(closed.g.admit(A, closed.metrics));
    expect(err.statusCode).toBe(503);
    expect(err.headers['retry-after']).toBe('5');
  });

  test('a store that never answers is given up at the timeout, and after repeated failures the breaker skips it', async () => {
    const now = NOW;
    const breaker = new CircuitBreaker('quota', { now: () => now });
    const store: QuotaStore = { admit: () => new Promise(() => undefined), charge: async () => undefined };
    const metrics = new RecordingMetrics();
    const g = new QuotaGate(store, { defaults: { requestsPerMinute: 5 }, failMode: 'open', overridesTtlSeconds: 60, keyPrefix: '', timeoutMs: 20 }, { breaker, now: () => now });
    for (let i = 0; i < 3; i++) await g.admit(A, metrics);
    expect(metrics.named(M.CIRCUIT_OPENED)).toEqual([expect.objectContaining({ dimensions: { [M.DIMENSION_DEPENDENCY]: 'quota' } })]);
    await g.admit(A, metrics);
    expect(metrics.named(M.BREAKER_SKIPS)).toHaveLength(1);
    expect(metrics.named(M.QUOTA_ERRORS)).toHaveLength(4);
  });

  test('a charge that fails is counted and never fails the request', async () => {
    const { g, metrics, store } = gate({ defaults: { costPerDayUsd: 1 } });
    const admission = await g.admit(A, metrics);
    store.failing = true;
    await expect(g.charge(admission, 0.5, metrics)).resolves.toBeUndefined();
    expect(metrics.named(M.QUOTA_ERRORS)).toHaveLength(1);
  });
});

test('tenantDimension keeps printable ASCII ids of up to 64 characters and hashes any other', () => {
  expect(tenantDimension('arn:aws:iam::111111111111:role/shop')).toBe('arn:aws:iam::111111111111:role/shop');
  for (const hostile of ['', ' x', 'x'.repeat(65), 'caf\u00e9', 'a\nb', 'a\uD800']) expect(tenantDimension(hostile)).toMatch(/^h-[0-9a-f]{16}$/);
});

describe('handleChat with quotas', () => {
  const TIER: TierRuntimeConfig = { id: 'small', provider: 'bedrock', modelId: 'm-s', inputPricePer1k: 1, outputPricePer1k: 1, maxTokens: 512, timeoutMs: 10_000 };
  const CONFIG: RouterRuntimeConfig = {
    tiers: [TIER],
    tierHintPolicy: 'any',
    maxRequestBytes: 1_024,
    maxMessages: 10,
    tenant: { source: 'iam' },
    personalCaching: 'user',
    cache: { host: 'cache.internal', port: 6379, tls: true, keyPrefix: 't:', timeoutMs: 50 },
    exactCache: { ttlSeconds: 60 },
  };

  function setup() {
    const calls: string[] = [];
    const invoker: ModelInvoker = {
      invoke: async (_tier, request): Promise<ModelResponse> => {
        calls.push(request.messages[0].text);
        return { text: 'ok', usage: { inputTokens: 500, outputTokens: 500 }, stopReason: 'end_turn' };
      },
    };
    const entries = new Map<string, CachedAnswer>();
    const cache: AnswerCache = { get: async (k) => entries.get(k), set: async (k, v) => void entries.set(k, v) };
    const metrics = new RecordingMetrics();
    const classifier = { classify: () => ({ score: 0.1, reasons: [] }) };
    const service = new ChatService({ config: CONFIG, invoker, classifier, metrics, exactCache: cache, now: () => NOW });
    const { g: quotas, store } = gate({ defaults: { requestsPerMinute: 100, costPerDayUsd: 2.5 } });
    const ask = (text: string, body?: string) => handleChat(service, CONFIG, metrics, {
      body: body ?? JSON.stringify({ messages: [{ role: 'user', content: text }] }), caller: A, deadline: NOW + 30_000, now: () => NOW, requestId: 'r', quotas,
    });
    return { ask, calls, store, metrics };
  }

  test('the model cost is charged after the answer, a cache hit is free, and a refused request reaches no model', async () => {
    const { ask, calls, store } = setup();
    // Each model answer costs 1 USD (1,000 tokens at 1 USD per 1,000).
    expect((await ask('one')).statusCode).toBe(200);
    expect((await ask('one')).headers['x-cache']).toBe('exact');
    expect((await ask('two')).statusCode).toBe(200);
    expect((await ask('three')).statusCode).toBe(200);
    const costKey = [...store.values.keys()].find((k) => k.includes(':usd:'))!;
    expect(store.values.get(costKey)).toBe(3_000_000);
    const refused = await ask('four');
    expect(refused.statusCode).toBe(429);
    expect(JSON.parse(refused.body).error).toMatchObject({ code: 'quota-exceeded', message: expect.stringContaining('cost per day of 2.5 USD') });
    expect(refused.headers['retry-after']).toMatch(/^\d+$/);
    expect(calls).toEqual(['one', 'two', 'three']);
  });

  test('a request refused for its content is not counted', async () => {
    const { ask, store } = setup();
    expect((await ask('', '{"messages":[]}')).statusCode).toBe(400);
    expect(store.values.size).toBe(0);
  });
});
