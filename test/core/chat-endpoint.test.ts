import { AiMetricNames as M } from '../../constructs/contract/metrics';
import type { RouterRuntimeConfig, TierRuntimeConfig } from '../../constructs/contract/runtime-config';
import type { Caller } from '../../lambdas/core/cache-key';
import { handleChat, type ChatResponseBody, type HttpResponse } from '../../lambdas/core/chat-endpoint';
import { ChatService } from '../../lambdas/core/chat-service';
import type { AnswerCache, CachedAnswer, MetricsRecorder, MetricUnit, ModelInvoker, ModelRequest, ModelResponse } from '../../lambdas/core/ports';

class RecordingMetrics implements MetricsRecorder {
  readonly records: Array<{ name: string; unit: MetricUnit; value: number; dimensions: Record<string, string> }> = [];
  add(name: string, unit: MetricUnit, value: number, dimensions: Record<string, string> = {}): void {
    this.records.push({ name, unit, value, dimensions: { ...dimensions } });
  }
  named(name: string) {
    return this.records.filter((r) => r.name === name);
  }
}

/** Answers every tier with the same response, or fails every call with `error`. */
class FixedInvoker implements ModelInvoker {
  readonly calls: Array<{ tierId: string; request: ModelRequest }> = [];
  constructor(private readonly outcome: ModelResponse | { error: unknown }) {}
  async invoke(tier: TierRuntimeConfig, request: ModelRequest): Promise<ModelResponse> {
    this.calls.push({ tierId: tier.id, request });
    if ('error' in this.outcome) throw this.outcome.error;
    return this.outcome;
  }
}

class MapCache implements AnswerCache {
  private readonly entries = new Map<string, CachedAnswer>();
  async get(key: string) {
    return this.entries.get(key);
  }
  async set(key: string, answer: CachedAnswer) {
    this.entries.set(key, answer);
  }
}

const TIERS: TierRuntimeConfig[] = [
  { id: 'small', provider: 'bedrock', modelId: 'm-s', inputPricePer1k: 0.003, outputPricePer1k: 0.015, maxTokens: 512, timeoutMs: 10_000 },
  { id: 'large', provider: 'bedrock', modelId: 'm-l', inputPricePer1k: 0.03, outputPricePer1k: 0.15, maxTokens: 4_096, timeoutMs: 10_000 },
];

const CONFIG: RouterRuntimeConfig = {
  tiers: TIERS,
  tierHintPolicy: 'cheaper-only',
  maxRequestBytes: 1_024,
  maxMessages: 10,
  classifierThresholds: [0.5],
  tenant: { source: 'iam' },
  personalCaching: 'user',
  cache: { host: 'cache.internal', port: 6379, tls: true, keyPrefix: 't:', timeoutMs: 50 },
  exactCache: { ttlSeconds: 60 },
};

const CALLER: Caller = { tenantId: 'arn:aws:iam::111111111111:role/shop', userId: 'alice' };
const NOW = 1_750_000_000_000;
const REQUEST_ID = '0f8fad5b-d9cb-469f-a165-70867728950e';

function setup(outcome: ModelResponse | { error: unknown } = { text: 'Hello!', usage: { inputTokens: 1_000, outputTokens: 500 }, stopReason: 'end_turn' }) {
  const invoker = new FixedInvoker(outcome);
  const metrics = new RecordingMetrics();
  const service = new ChatService({
    config: CONFIG,
    invoker,
    classifier: { classify: () => ({ score: 0.1, reasons: ['short'] }) },
    metrics,
    exactCache: new MapCache(),
    now: () => NOW,
  });
  // `anonymous` rather than an optional caller: an explicit `undefined` would pick up a default.
  const call = (body: string | undefined, who: Caller | 'anonymous' = CALLER) =>
    handleChat(service, CONFIG, metrics, { body, caller: who === 'anonymous' ? undefined : who, deadline: NOW + 30_000, now: () => NOW, requestId: REQUEST_ID });
  return { invoker, metrics, call };
}

const chatBody = (content: string, extra: Record<string, unknown> = {}) => JSON.stringify({ messages: [{ role: 'user', content }], ...extra });

function errorBody(res: HttpResponse): { code: string; message: string } {
  const parsed = JSON.parse(res.body) as { error?: { code?: unknown; message?: unknown } };
  expect(Object.keys(parsed)).toEqual(['error']);
  expect(typeof parsed.error?.code).toBe('string');
  expect(typeof parsed.error?.message).toBe('string');
  expect((parsed.error!.message as string).length).toBeGreaterThan(0);
  return parsed.error as { code: string; message: string };
}

describe('handleChat: rejections', () => {
  test('401 without a caller, before anything else is looked at', async () => {
    const { call, invoker, metrics } = setup();
    const res = await call(chatBody('hi'), 'anonymous');

    expect(res.statusCode).toBe(401);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(errorBody(res).code).toBe('unauthenticated');
    expect(invoker.calls).toHaveLength(0);
    expect(metrics.named(M.REJECTED_REQUESTS).map((r) => r.dimensions)).toEqual([{ [M.DIMENSION_REASON]: 'unauthenticated' }]);
  });

  test('401 wins over a bad body', async () => {
    const { call } = setup();
    expect((await call('not json', 'anonymous')).statusCode).toBe(401);
  });

  test.each([
    ['an invalid JSON body', 'not json', /JSON/],
    ['a missing body', undefined, /body/i],
    ['an unknown field', chatBody('hi', { stream: true }), /stream/],
    ['an unknown tier', chatBody('hi', { tier: 'huge' }), /tier/],
  ])('400 for %s, as { error: { code, message } }', async (_name, body, message) => {
    const { call, invoker, metrics } = setup();
    const res = await call(body);

    expect(res.statusCode).toBe(400);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    const error = errorBody(res);
    expect(error.code).toBe('invalid');
    expect(error.message).toMatch(message);
    expect(invoker.calls).toHaveLength(0);
    expect(metrics.named(M.REJECTED_REQUESTS).map((r) => [r.value, r.dimensions])).toEqual([[1, { [M.DIMENSION_REASON]: 'invalid' }]]);
  });

  test('413 for a body over maxRequestBytes, as { error: { code, message } }', async () => {
    const { call, metrics } = setup();
    const res = await call(chatBody('é'.repeat(CONFIG.maxRequestBytes)));

    expect(res.statusCode).toBe(413);
    expect(errorBody(res).code).toBe('too-large');
    expect(metrics.named(M.REJECTED_REQUESTS).map((r) => r.dimensions)).toEqual([{ [M.DIMENSION_REASON]: 'too-large' }]);
  });

  test('a body nested deeper than 32 levels: 400 naming the limit, no model call', async () => {
    const { call, invoker } = setup();
    const res = await call(`{"messages": [{"role": "user", "content": "hi"}], "x": ${'['.repeat(400)}${']'.repeat(400)}}`);
    expect(res.statusCode).toBe(400);
    expect(errorBody(res)).toEqual({ code: 'invalid', message: expect.stringMatching(/the limit is 32$/) });
    expect(invoker.calls).toHaveLength(0);
  });

  test('the limits of the config are applied (maxMessages)', async () => {
    const { call } = setup();
    const turns = Array.from({ length: CONFIG.maxMessages + 1 }, (_, i) => ({ role: i % 2 === 0 ? 'user' : 'assistant', content: `m${i}` }));
    expect((await call(JSON.stringify({ messages: turns }))).statusCode).toBe(400);
  });

  test('503 when every tier fails: retry-after passes through, not counted as a rejection', async () => {
    const throttled = Object.assign(new Error('slow down'), { name: 'ThrottlingException', $metadata: { httpStatusCode: 429 } });
    const { call, metrics, invoker } = setup({ error: throttled });
    const res = await call(chatBody('hi'));

    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toMatch(/^[1-9]\d*$/);
    expect(errorBody(res).code).toBe('unavailable');
    expect(invoker.calls.map((c) => c.tierId)).toEqual(['small', 'large']);
    expect(metrics.named(M.REJECTED_REQUESTS)).toHaveLength(0);
    expect(metrics.named(M.UNAVAILABLE)).toHaveLength(1);
  });

  test('every request is counted, valid or not', async () => {
    const { call, metrics } = setup();
    await call(chatBody('hi'));
    await call('bad');
    await call(chatBody('hi'), 'anonymous');
    expect(metrics.named(M.REQUESTS).reduce((n, r) => n + r.value, 0)).toBe(3);
  });
});

describe('handleChat: 200', () => {
  test('a model answer: x-cache miss, x-tier, x-cost-usd with six decimals, and the body', async () => {
    const { call } = setup();
    const res = await call(chatBody('What are your opening hours?'));

    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.headers['x-cache']).toBe('miss');
    expect(res.headers['x-tier']).toBe('small');
    // 1,000 × 0.003 / 1,000 + 500 × 0.015 / 1,000 = 0.0105, written with six decimals
    expect(res.headers['x-cost-usd']).toBe('0.010500');

    const body = JSON.parse(res.body) as ChatResponseBody;
    expect(body).toMatchObject({
      output: { text: 'Hello!' },
      tier: 'small',
      cache: 'miss',
      usage: { inputTokens: 1_000, outputTokens: 500 },
      costUsd: 0.0105,
      stopReason: 'end_turn',
      routing: { complexity: 0.1, classifiedTier: 'small', reasons: ['short'], tierHintHonoured: false },
    });
    expect(body.routing.attempts).toEqual([expect.objectContaining({ tierId: 'small', outcome: 'ok' })]);
  });

  test('x-cost-usd of a micro-dollar is not written in exponent notation', async () => {
    const { call } = setup({ text: 'ok', usage: { inputTokens: 1, outputTokens: 0 } }); // 1 × 0.003 / 1,000 = 0.000003
    const res = await call(chatBody('hi'));
    expect(res.headers['x-cost-usd']).toBe('0.000003');
  });

  test('a cache hit: x-cache exact, zero cost, the answering tier in the body', async () => {
    const { call, invoker } = setup();
    await call(chatBody('What are your opening hours?'));
    const res = await call(chatBody('what are your opening hours'));

    expect(invoker.calls).toHaveLength(1);
    expect(res.statusCode).toBe(200);
    expect(res.headers['x-cache']).toBe('exact');
    expect(res.headers['x-cost-usd']).toBe('0.000000');
    // A cache hit was answered by no tier (the body names the tier that made the answer).
    expect(res.headers['x-tier']).toBe('none');
    const body = JSON.parse(res.body) as ChatResponseBody;
    expect(body).toMatchObject({ output: { text: 'Hello!' }, cache: 'exact', tier: null, costUsd: 0, routing: { cachedFromTier: 'small' } });
  });

  test('latency is recorded overall, by ServedBy, and by the tier that answered', async () => {
    const { call, metrics } = setup();
    await call(chatBody('q'));
    await call(chatBody('q'));
    await call('{');
    expect(metrics.named(M.LATENCY).filter((r) => Object.keys(r.dimensions).length === 0)).toHaveLength(3);
    expect(metrics.named(M.LATENCY).map((r) => r.dimensions[M.DIMENSION_SERVED_BY]).filter(Boolean)).toEqual(['model', 'exact', 'error']);
    // Only the model's answer has a tier; a cache hit and an error have none.
    expect(metrics.named(M.LATENCY).filter((r) => r.dimensions[M.DIMENSION_TIER]).map((r) => r.dimensions)).toEqual([{ [M.DIMENSION_TIER]: 'small' }]);
    expect(metrics.named(M.REJECTED_REQUESTS)).toHaveLength(1);
  });
});
