import { MapAnswerCache, RecordingMetrics } from './cache-doubles';
import { AiMetricNames as M } from '../../constructs/contract/metrics';
import type { RouterRuntimeConfig, TierRuntimeConfig } from '../../constructs/contract/runtime-config';
import { exactCacheKey, type Caller } from '../../lambdas/core/cache-key';
import type { ChatMessage, ChatRequest } from '../../lambdas/core/chat-request';
import { ChatService, INPUT_TOKEN_OVERHEAD, OUTPUT_TOKEN_SLACK } from '../../lambdas/core/chat-service';
import type { ComplexityClassifier } from '../../lambdas/core/classifier';
import { HttpError } from '../../lambdas/core/errors';
import type { AnswerCache, CachedAnswer, ModelInvoker, ModelRequest, ModelResponse } from '../../lambdas/core/ports';

// ---------------------------------------------------------------------------------------------
// Test doubles for the ports
// ---------------------------------------------------------------------------------------------

/** What a scripted tier does when invoked. */
type Step =
  | { readonly respond: ModelResponse }
  | { readonly fail: unknown }
  /** Never answers; rejects with an AbortError once the signal aborts (as the AWS SDK does). */
  | { readonly hangUntilAborted: true }
  /** Never settles, whatever the signal says. */
  | { readonly hangForever: true };

interface InvokerCall {
  readonly tierId: string;
  readonly request: ModelRequest;
  readonly signal: AbortSignal;
}

/** A ModelInvoker that plays a script per tier; the last step of a script repeats. */
class ScriptedInvoker implements ModelInvoker {
  readonly calls: InvokerCall[] = [];
  private readonly scripts = new Map<string, Step[]>();

  script(tierId: string, ...steps: Step[]): this {
    this.scripts.set(tierId, steps);
    return this;
  }

  get tiersCalled(): string[] {
    return this.calls.map((c) => c.tierId);
  }

  async invoke(tier: TierRuntimeConfig, request: ModelRequest, signal: AbortSignal): Promise<ModelResponse> {
    this.calls.push({ tierId: tier.id, request, signal });
    const steps = this.scripts.get(tier.id) ?? [];
    const step = steps.length > 1 ? steps.shift()! : steps[0];
    if (!step) throw new Error(`test bug: tier ${tier.id} has no script`);
    if ('respond' in step) return step.respond;
    if ('fail' in step) throw step.fail;
    if ('hangUntilAborted' in step) {
      return new Promise<ModelResponse>((_resolve, reject) => {
        const abort = () => reject(Object.assign(new Error('The operation was aborted'), { name: 'AbortError' }));
        if (signal.aborted) abort();
        else signal.addEventListener('abort', abort, { once: true });
      });
    }
    return new Promise<ModelResponse>(() => undefined);
  }
}

/** An AnswerCache on a Map, with switches that make it fail. */
class MapCache implements AnswerCache {
  readonly entries = new Map<string, CachedAnswer>();
  readonly sets: Array<{ key: string; answer: CachedAnswer; ttlSeconds: number }> = [];
  gets = 0;
  failGet = false;
  failSet = false;

  async get(key: string): Promise<CachedAnswer | undefined> {
    this.gets++;
    if (this.failGet) throw new Error('connect ECONNREFUSED 10.0.0.1:6379');
    return this.entries.get(key);
  }

  async set(key: string, entry: CachedAnswer, ttlSeconds: number): Promise<void> {
    if (this.failSet) throw new Error('Command timed out');
    this.sets.push({ key, answer: entry, ttlSeconds });
    this.entries.set(key, entry);
  }
}

/** A classifier that always gives the same score. */
function fixedScore(score: number): ComplexityClassifier {
  return { classify: () => ({ score, reasons: ['fixed'] }) };
}

/** An error shaped like one thrown by an AWS SDK v3 client. */
function sdkError(name: string, status?: number): Error {
  return Object.assign(new Error(`${name} from the service`), { name, $metadata: { httpStatusCode: status } });
}

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

const SMALL: TierRuntimeConfig = {
  id: 'small', provider: 'bedrock', modelId: 'm-small', inputPricePer1k: 0.0001, outputPricePer1k: 0.0004, maxTokens: 512, timeoutMs: 10_000,
};
const MEDIUM: TierRuntimeConfig = {
  id: 'medium', provider: 'bedrock', modelId: 'm-medium', inputPricePer1k: 0.001, outputPricePer1k: 0.004, maxTokens: 2_048, timeoutMs: 10_000,
};
const LARGE: TierRuntimeConfig = {
  id: 'large', provider: 'sagemaker', endpointName: 'e-large', apiFormat: 'openai-chat', inputPricePer1k: 0.01, outputPricePer1k: 0.04, maxTokens: 4_096, timeoutMs: 10_000,
};

/** With thresholds [0.3, 0.6]: these scores select small, medium, large. */
const SCORE = { small: 0.1, medium: 0.45, large: 0.9 };
const TTL_SECONDS = 1_234;
const NOW = 1_750_000_000_000;

function routerConfig(overrides: Partial<RouterRuntimeConfig> = {}): RouterRuntimeConfig {
  return {
    tiers: [SMALL, MEDIUM, LARGE],
    tierHintPolicy: 'cheaper-only',
    maxRequestBytes: 32_768,
    maxMessages: 20,
    classifierThresholds: [0.3, 0.6],
    tenant: { source: 'iam' },
    personalCaching: 'user',
    cache: { host: 'cache.internal', port: 6379, tls: true, keyPrefix: 'test:', timeoutMs: 50 },
    exactCache: { ttlSeconds: TTL_SECONDS },
    ...overrides,
  };
}

const ALICE: Caller = { tenantId: 'arn:aws:iam::111111111111:role/shop', userId: 'alice' };
const BOB: Caller = { tenantId: 'arn:aws:iam::111111111111:role/shop', userId: 'bob' };
const OTHER_TENANT: Caller = { tenantId: 'arn:aws:iam::222222222222:role/shop', userId: 'alice' };

const ask = (text: string, extra: Partial<ChatRequest> = {}): ChatRequest => ({ messages: [{ role: 'user', text }], ...extra });
const conversation = (...texts: string[]): ChatRequest => ({
  messages: texts.map((text, i): ChatMessage => ({ role: i % 2 === 0 ? 'user' : 'assistant', text })),
});

function answer(text: string, usage = { inputTokens: 100, outputTokens: 50 }, stopReason = 'end_turn'): Step {
  return { respond: { text, usage, stopReason } };
}

interface Setup {
  readonly service: ChatService;
  readonly invoker: ScriptedInvoker;
  readonly cache: MapCache;
  readonly metrics: RecordingMetrics;
  readonly config: RouterRuntimeConfig;
}

function setup(options: { score?: number; config?: Partial<RouterRuntimeConfig>; withCache?: boolean; now?: () => number } = {}): Setup {
  const invoker = new ScriptedInvoker();
  const cache = new MapCache();
  const metrics = new RecordingMetrics();
  const config = routerConfig(options.config);
  const service = new ChatService({
    config,
    invoker,
    classifier: fixedScore(options.score ?? SCORE.small),
    metrics,
    exactCache: options.withCache === false ? undefined : cache,
    now: options.now ?? (() => NOW),
  });
  return { service, invoker, cache, metrics, config };
}

const DEADLINE = NOW + 60_000;

/** Runs `promise` and returns the HttpError it rejects with. */
async function httpErrorOf(promise: Promise<unknown>): Promise<HttpError> {
  const outcome = await promise.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
  if (!('error' in outcome)) throw new Error(`expected an HttpError, got a result: ${JSON.stringify(outcome.value)}`);
  expect(outcome.error).toBeInstanceOf(HttpError);
  return outcome.error as HttpError;
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

describe('ChatService: exact cache', () => {
  test('a hit is served without calling any model', async () => {
    const { service, invoker, cache, metrics, config } = setup();
    const req = ask('What are your opening hours?');
    const stored: CachedAnswer = { text: 'From 9 to 5.', tierId: 'medium', usage: { inputTokens: 10, outputTokens: 5 }, costUsd: 0.00003, createdAt: NOW - 1_000 };
    cache.entries.set(exactCacheKey(config.cache!.keyPrefix, ALICE, req, undefined), stored);

    const result = await service.chat(req, ALICE, DEADLINE);

    expect(invoker.calls).toHaveLength(0);
    expect(result).toMatchObject({
      text: 'From 9 to 5.',
      servedBy: 'exact',
      originalTierId: 'medium',
      costUsd: 0,
      usage: { inputTokens: 0, outputTokens: 0 },
      attempts: [],
    });
    expect(result.tierId).toBeUndefined();
    expect(metrics.sum(M.CACHE_HITS, { [M.DIMENSION_CACHE_LEVEL]: 'exact' })).toBe(1);
    expect(metrics.named(M.CACHE_MISSES)).toHaveLength(0);
    expect(metrics.named(M.MODEL_INVOCATIONS)).toHaveLength(0);
    // "Model cost in USD of answered requests (0 for cache hits)"
    expect(metrics.named(M.COST_USD, {}).map((r) => r.value)).toEqual([0]);
  });

  test('a miss asks the model and stores its answer with the configured TTL', async () => {
    const { service, invoker, cache, metrics } = setup();
    invoker.script('small', answer('From 9 to 5.', { inputTokens: 1_000, outputTokens: 500 }));

    const result = await service.chat(ask('What are your opening hours?'), ALICE, DEADLINE);

    expect(result).toMatchObject({ text: 'From 9 to 5.', servedBy: 'model', tierId: 'small' });
    expect(metrics.sum(M.CACHE_MISSES, { [M.DIMENSION_CACHE_LEVEL]: 'exact' })).toBe(1);
    expect(cache.sets).toHaveLength(1);
    expect(cache.sets[0].ttlSeconds).toBe(TTL_SECONDS);
    expect(cache.sets[0].answer).toEqual({
      text: 'From 9 to 5.',
      tierId: 'small',
      usage: { inputTokens: 1_000, outputTokens: 500 },
      costUsd: result.costUsd,
      createdAt: NOW,
      // The answer's id: a wrong verdict evicts the key only while it holds this answer.
      id: result.locations?.answerId,
    });
    expect(result.locations).toEqual({ answerId: expect.any(String), exactKeys: [cache.sets[0].key], semantic: undefined });
  });

  test('the stored answer serves the next equivalent question of another user of the tenant', async () => {
    const { service, invoker } = setup();
    invoker.script('small', answer('From 9 to 5.'));

    await service.chat(ask('What are your opening hours?'), ALICE, DEADLINE);
    const second = await service.chat(ask('  what are your OPENING hours '), BOB, DEADLINE);

    expect(invoker.calls).toHaveLength(1);
    expect(second).toMatchObject({ servedBy: 'exact', text: 'From 9 to 5.', originalTierId: 'small', costUsd: 0 });
  });

  test('answers never cross tenants', async () => {
    const { service, invoker } = setup();
    invoker.script('small', answer('tenant A answer'), answer('tenant B answer'));

    await service.chat(ask('What is my discount?'), ALICE, DEADLINE);
    const other = await service.chat(ask('What is my discount?'), OTHER_TENANT, DEADLINE);

    expect(invoker.calls).toHaveLength(2);
    expect(other).toMatchObject({ servedBy: 'model', text: 'tenant B answer' });
  });

  test('a conversation is served from the cache to its own user only', async () => {
    const { service, invoker } = setup();
    invoker.script('small', answer("alice's answer"), answer("bob's answer"));
    const talk = conversation('I live at 1 Main St', 'Noted.', 'When does my parcel arrive?');

    await service.chat(talk, ALICE, DEADLINE);
    const bob = await service.chat(talk, BOB, DEADLINE);
    const aliceAgain = await service.chat(talk, ALICE, DEADLINE);

    expect(bob).toMatchObject({ servedBy: 'model', text: "bob's answer" });
    expect(aliceAgain).toMatchObject({ servedBy: 'exact', text: "alice's answer" });
    expect(invoker.calls).toHaveLength(2);
  });

  test('a conversation of a caller without a user id bypasses the cache', async () => {
    const { service, invoker, cache } = setup();
    invoker.script('small', answer('ok'));
    const anonymous: Caller = { tenantId: 'arn:aws:iam::111111111111:user/ci' };

    await service.chat(conversation('hi', 'hello', 'my order?'), anonymous, DEADLINE);
    await service.chat(conversation('hi', 'hello', 'my order?'), anonymous, DEADLINE);

    expect(cache.gets).toBe(0);
    expect(cache.sets).toHaveLength(0);
    expect(invoker.calls).toHaveLength(2);
  });

  test('a tier hint that was honoured is part of the key', async () => {
    const { service, invoker } = setup({ score: SCORE.small, config: { tierHintPolicy: 'any' } });
    invoker.script('small', answer('small answer')).script('large', answer('large answer'));

    await service.chat(ask('Summarize our return policy'), ALICE, DEADLINE);
    const hinted = await service.chat(ask('Summarize our return policy', { tierHint: 'large' }), ALICE, DEADLINE);

    expect(hinted).toMatchObject({ servedBy: 'model', tierId: 'large', text: 'large answer', hintHonoured: true });
  });

  describe('fails open', () => {
    test('a cache whose get throws still yields a model answer and counts a CacheError', async () => {
      const { service, invoker, cache, metrics } = setup();
      cache.failGet = true;
      invoker.script('small', answer('From 9 to 5.'));

      const result = await service.chat(ask('Opening hours?'), ALICE, DEADLINE);

      expect(result).toMatchObject({ servedBy: 'model', text: 'From 9 to 5.' });
      expect(metrics.sum(M.CACHE_ERRORS, { [M.DIMENSION_CACHE_LEVEL]: 'exact' })).toBe(1);
    });

    test('a cache whose set throws still yields the model answer and counts a CacheError', async () => {
      const { service, invoker, cache, metrics } = setup();
      cache.failSet = true;
      invoker.script('small', answer('From 9 to 5.'));

      const result = await service.chat(ask('Opening hours?'), ALICE, DEADLINE);

      expect(result).toMatchObject({ servedBy: 'model', text: 'From 9 to 5.' });
      expect(metrics.sum(M.CACHE_ERRORS, { [M.DIMENSION_CACHE_LEVEL]: 'exact' })).toBe(1);
    });

    test('a cache that is down for both counts two CacheErrors', async () => {
      const { service, invoker, cache, metrics } = setup();
      cache.failGet = true;
      cache.failSet = true;
      invoker.script('small', answer('ok'));

      await expect(service.chat(ask('Opening hours?'), ALICE, DEADLINE)).resolves.toMatchObject({ servedBy: 'model' });
      expect(metrics.sum(M.CACHE_ERRORS, { [M.DIMENSION_CACHE_LEVEL]: 'exact' })).toBe(2);
    });
  });

  test('without an exact cache in the config, the cache port is never used', async () => {
    const { service, invoker, cache } = setup({ config: { exactCache: undefined } });
    invoker.script('small', answer('ok'));

    await service.chat(ask('Opening hours?'), ALICE, DEADLINE);
    await service.chat(ask('Opening hours?'), ALICE, DEADLINE);

    expect(cache.gets).toBe(0);
    expect(cache.sets).toHaveLength(0);
    expect(invoker.calls).toHaveLength(2);
  });

  test('without a cache port, requests go to the model', async () => {
    const { service, invoker } = setup({ withCache: false });
    invoker.script('small', answer('ok'));
    await expect(service.chat(ask('Opening hours?'), ALICE, DEADLINE)).resolves.toMatchObject({ servedBy: 'model', tierId: 'small' });
  });

  test.each(['content_filtered', 'guardrail_intervened', 'max_tokens'])('an answer that stopped with %s is not cached', async (stopReason) => {
    const { service, invoker, cache } = setup();
    invoker.script('small', answer('[filtered]', undefined, stopReason), answer('second', undefined, stopReason));

    const first = await service.chat(ask('Tell me something'), ALICE, DEADLINE);
    const second = await service.chat(ask('Tell me something'), ALICE, DEADLINE);

    expect(first.stopReason).toBe(stopReason);
    expect(cache.sets).toHaveLength(0);
    expect(second.servedBy).toBe('model');
    expect(invoker.calls).toHaveLength(2);
  });

  test('an answer that ended normally is cached (control for the test above)', async () => {
    const { service, invoker, cache } = setup();
    invoker.script('small', answer('fine', undefined, 'end_turn'));
    await service.chat(ask('Tell me something'), ALICE, DEADLINE);
    expect(cache.sets).toHaveLength(1);
  });
});

describe('ChatService: invoker capacity (the batch worker\'s per-tier limit)', () => {
  /** A scripted invoker whose capacity for each tier is held until the test releases it. */
  class GatedInvoker extends ScriptedInvoker {
    readonly waiting: Array<() => void> = [];
    acquire(_tier: TierRuntimeConfig, signal: AbortSignal): Promise<() => void> {
      return new Promise((resolve, reject) => {
        this.waiting.push(() => resolve(() => undefined));
        signal.addEventListener('abort', () => reject(new Error('deadline')), { once: true });
      });
    }
  }

  function gated(): { service: ChatService; invoker: GatedInvoker; metrics: RecordingMetrics } {
    const invoker = new GatedInvoker();
    const metrics = new RecordingMetrics();
    // Real clock, short tier timeout: the timeout must not run while the request waits.
    const config = routerConfig({ tiers: [{ ...SMALL, timeoutMs: 100 }, MEDIUM, LARGE] });
    const service = new ChatService({ config, invoker, classifier: fixedScore(SCORE.small), metrics });
    return { service, invoker, metrics };
  }

  test('waiting for a slot longer than the tier timeout is no timeout: the selected tier answers, no fallback', async () => {
    const { service, invoker, metrics } = gated();
    invoker.script('small', answer('small answer'));
    const pending = service.chat(ask('Where is my order?'), ALICE, Date.now() + 60_000);
    await new Promise((r) => setTimeout(r, 250));
    expect(invoker.calls).toHaveLength(0);
    invoker.waiting.shift()!();
    const result = await pending;
    expect(result).toMatchObject({ tierId: 'small', text: 'small answer' });
    expect(metrics.named(M.FALLBACKS)).toEqual([]);
    expect(metrics.named(M.MODEL_ERRORS)).toEqual([]);
  });

  test('a deadline that passes while waiting is a 503 (retry later), not a fallback to a dearer tier', async () => {
    const { service, invoker, metrics } = gated();
    invoker.script('small', answer('never')).script('medium', answer('never'));
    const error = await httpErrorOf(service.chat(ask('Where is my order?'), ALICE, Date.now() + 300));
    expect(error.statusCode).toBe(503);
    expect(invoker.calls).toHaveLength(0);
    expect(metrics.named(M.FALLBACKS)).toEqual([]);
  });
});

describe('ChatService: routing and fallback', () => {
  test('the classifier score selects the tier', async () => {
    for (const [tierId, score] of Object.entries(SCORE)) {
      const { service, invoker } = setup({ score, withCache: false });
      invoker.script(tierId, answer(`from ${tierId}`));
      const result = await service.chat(ask('q'), ALICE, DEADLINE);
      expect(invoker.tiersCalled).toEqual([tierId]);
      expect(result).toMatchObject({ tierId, complexity: { score, tierId } });
    }
  });

  test.each<[string, unknown, string]>([
    ['throttled', sdkError('ThrottlingException', 429), 'throttled'],
    ['a server error', sdkError('InternalServerException', 500), 'server'],
    ['a SageMaker model error', sdkError('ModelError', 424), 'server'],
    ['a network error', Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }), 'network'],
    ['a missing endpoint', sdkError('ResourceNotFoundException', 404), 'config'],
  ])('falls back to the next tier when the first is %s', async (_name, error, kind) => {
    const { service, invoker, cache, metrics } = setup({ score: SCORE.small });
    invoker.script('small', { fail: error }).script('medium', answer('medium answer'));

    const result = await service.chat(ask('Where is my order?'), ALICE, DEADLINE);

    expect(invoker.tiersCalled).toEqual(['small', 'medium']);
    expect(result).toMatchObject({ servedBy: 'model', tierId: 'medium', text: 'medium answer' });
    expect(result.attempts).toEqual([
      expect.objectContaining({ tierId: 'small', outcome: 'failed', errorKind: kind }),
      expect.objectContaining({ tierId: 'medium', outcome: 'ok' }),
    ]);
    expect(metrics.named(M.FALLBACKS).map((r) => r.dimensions)).toEqual([{ [M.DIMENSION_TIER]: 'small' }]);
    expect(metrics.sum(M.MODEL_ERRORS, { [M.DIMENSION_TIER]: 'small', [M.DIMENSION_ERROR_KIND]: kind })).toBe(1);
    expect(cache.sets.map((s) => s.answer.tierId)).toEqual(['medium']);
  });

  test('the default fallback order goes up first, then down', async () => {
    const { service, invoker } = setup({ score: SCORE.medium, withCache: false });
    invoker
      .script('medium', { fail: sdkError('ThrottlingException', 429) })
      .script('large', { fail: sdkError('ServiceUnavailableException', 503) })
      .script('small', answer('small answer'));

    const result = await service.chat(ask('q'), ALICE, DEADLINE);

    expect(invoker.tiersCalled).toEqual(['medium', 'large', 'small']);
    expect(result.tierId).toBe('small');
  });

  test('an explicit fallbackOrder is followed', async () => {
    const { service, invoker } = setup({ score: SCORE.large, withCache: false, config: { fallbackOrder: ['small'] } });
    invoker.script('large', { fail: sdkError('ThrottlingException', 429) }).script('small', answer('small answer'));

    await expect(service.chat(ask('q'), ALICE, DEADLINE)).resolves.toMatchObject({ tierId: 'small' });
    expect(invoker.tiersCalled).toEqual(['large', 'small']);
  });

  test('a tier that exceeds its timeoutMs is aborted through the AbortSignal and the next tier answers', async () => {
    const slowSmall = { ...SMALL, timeoutMs: 5 };
    const { service, invoker } = setup({ score: SCORE.small, withCache: false, config: { tiers: [slowSmall, MEDIUM, LARGE] } });
    invoker.script('small', { hangUntilAborted: true }).script('medium', answer('medium answer'));

    const result = await service.chat(ask('q'), ALICE, DEADLINE);

    expect(invoker.calls[0].signal.aborted).toBe(true);
    expect(result).toMatchObject({ tierId: 'medium', text: 'medium answer' });
    expect(result.attempts[0]).toMatchObject({ tierId: 'small', outcome: 'failed', errorKind: 'timeout' });
    // The tier that answered in time was not aborted.
    expect(invoker.calls[1].signal.aborted).toBe(false);
  });

  describe('with fake timers', () => {
    beforeEach(() => jest.useFakeTimers({ now: NOW }));
    afterEach(() => jest.useRealTimers());

    test('leaves no timer behind once a tier has answered', async () => {
      const { service, invoker } = setup({ score: SCORE.small, withCache: false, now: () => Date.now() });
      invoker.script('small', answer('ok'));

      await service.chat(ask('q'), ALICE, Date.now() + 60_000);

      expect(jest.getTimerCount()).toBe(0);
      await jest.advanceTimersByTimeAsync(SMALL.timeoutMs * 2);
      expect(invoker.calls[0].signal.aborted).toBe(false);
    });

    // A tier's timeout must hold even when an invoker does not honour the AbortSignal (an adapter
    // bug, or an SDK call stuck where the signal is not checked): otherwise the request hangs until
    // the Lambda timeout, and no fallback ever happens.
    test('a tier that ignores the AbortSignal still times out and falls back', async () => {
      const slowSmall = { ...SMALL, timeoutMs: 5 };
      const { service, invoker } = setup({
        score: SCORE.small, withCache: false, now: () => Date.now(), config: { tiers: [slowSmall, MEDIUM, LARGE] },
      });
      invoker.script('small', { hangForever: true }).script('medium', answer('medium answer'));

      let outcome: string = 'pending';
      const pending = service.chat(ask('q'), ALICE, Date.now() + 60_000);
      void pending.then(() => (outcome = 'resolved'), () => (outcome = 'rejected'));
      await jest.advanceTimersByTimeAsync(1_000);

      expect(invoker.calls[0].signal.aborted).toBe(true);
      expect({ outcome, tiersCalled: invoker.tiersCalled }).toEqual({ outcome: 'resolved', tiersCalled: ['small', 'medium'] });
      await expect(pending).resolves.toMatchObject({ tierId: 'medium' });
    });
  });

  test('a request the model rejects as invalid is a 400 without fallback', async () => {
    const { service, invoker, metrics } = setup({ score: SCORE.small, withCache: false });
    invoker.script('small', { fail: sdkError('ValidationException', 400) }).script('medium', answer('should not be asked'));

    const err = await httpErrorOf(service.chat(ask('q'), ALICE, DEADLINE));

    expect(err.statusCode).toBe(400);
    expect(invoker.tiersCalled).toEqual(['small']);
    expect(metrics.named(M.FALLBACKS)).toHaveLength(0);
    expect(metrics.sum(M.MODEL_ERRORS, { [M.DIMENSION_TIER]: 'small', [M.DIMENSION_ERROR_KIND]: 'invalid' })).toBe(1);
    // Not the tier's fault: left out of the per-tier count that the error-rate alarms divide.
    expect(metrics.named(M.MODEL_ERRORS, { [M.DIMENSION_TIER]: 'small' })).toHaveLength(0);
    expect(metrics.named(M.UNAVAILABLE)).toHaveLength(0);
  });

  test('when every tier fails: 503 with retry-after, after trying each tier once', async () => {
    const { service, invoker, cache, metrics } = setup({ score: SCORE.small });
    invoker
      .script('small', { fail: sdkError('ThrottlingException', 429) })
      .script('medium', { fail: sdkError('InternalServerException', 500) })
      .script('large', { fail: sdkError('ServiceUnavailableException', 503) });

    const err = await httpErrorOf(service.chat(ask('q'), ALICE, DEADLINE));

    expect(err.statusCode).toBe(503);
    expect(err.headers['retry-after']).toMatch(/^[1-9]\d*$/);
    expect(invoker.tiersCalled).toEqual(['small', 'medium', 'large']);
    for (const id of ['small', 'medium', 'large']) expect(err.message).toContain(id);
    expect(metrics.sum(M.UNAVAILABLE)).toBe(1);
    expect(metrics.named(M.FALLBACKS).map((r) => r.dimensions[M.DIMENSION_TIER])).toEqual(['small', 'medium']);
    expect(cache.sets).toHaveLength(0);
  });

  test('a deadline already in the past: 503 without calling any tier', async () => {
    const { service, invoker, metrics } = setup({ score: SCORE.small, withCache: false });
    invoker.script('small', answer('too late'));

    const err = await httpErrorOf(service.chat(ask('q'), ALICE, NOW - 1));

    expect(err.statusCode).toBe(503);
    expect(err.headers['retry-after']).toMatch(/^[1-9]\d*$/);
    expect(invoker.calls).toHaveLength(0);
    expect(metrics.sum(M.UNAVAILABLE)).toBe(1);
  });

  test.each<[number | undefined, number]>([
    [100_000, SMALL.maxTokens],
    [SMALL.maxTokens, SMALL.maxTokens],
    [100, 100],
    [undefined, SMALL.maxTokens],
  ])('maxTokens %p is sent as %p to a tier with maxTokens 512', async (requested, sent) => {
    const { service, invoker } = setup({ score: SCORE.small, withCache: false });
    invoker.script('small', answer('ok'));
    await service.chat(ask('q', { maxTokens: requested }), ALICE, DEADLINE);
    expect(invoker.calls[0].request.maxTokens).toBe(sent);
  });

  test("maxTokens is capped to each tier's own limit along the fallback", async () => {
    const { service, invoker } = setup({ score: SCORE.small, withCache: false });
    invoker.script('small', { fail: sdkError('ThrottlingException', 429) }).script('medium', answer('ok'));
    await service.chat(ask('q', { maxTokens: 100_000 }), ALICE, DEADLINE);
    expect(invoker.calls.map((c) => c.request.maxTokens)).toEqual([SMALL.maxTokens, MEDIUM.maxTokens]);
  });

  test('the tier gets the messages, system prompt and temperature of the request', async () => {
    const { service, invoker } = setup({ score: SCORE.small, withCache: false });
    invoker.script('small', answer('ok'));
    const req = conversation('hi', 'hello', 'which size?');
    await service.chat({ ...req, system: 'Be brief.', temperature: 0.3 }, ALICE, DEADLINE);
    expect(invoker.calls[0].request).toEqual({ messages: req.messages, system: 'Be brief.', temperature: 0.3, maxTokens: SMALL.maxTokens });
  });

  test('a cheaper tier hint is honoured; complexity still reports the classifier\'s tier', async () => {
    const { service, invoker } = setup({ score: SCORE.large, withCache: false, config: { tierHintPolicy: 'cheaper-only' } });
    invoker.script('small', answer('small answer'));

    const result = await service.chat(ask('q', { tierHint: 'small' }), ALICE, DEADLINE);

    expect(result).toMatchObject({ tierId: 'small', hintHonoured: true });
    // `complexity.tierId` becomes `routing.classifiedTier` in the response: what the classifier chose.
    expect(result.complexity.tierId).toBe('large');
  });

  test('a more expensive tier hint is refused under cheaper-only', async () => {
    const { service, invoker } = setup({ score: SCORE.small, withCache: false, config: { tierHintPolicy: 'cheaper-only' } });
    invoker.script('small', answer('small answer'));
    const result = await service.chat(ask('q', { tierHint: 'large' }), ALICE, DEADLINE);
    expect(result).toMatchObject({ tierId: 'small', hintHonoured: false });
    expect(invoker.tiersCalled).toEqual(['small']);
  });
});

describe('ChatService: cost and usage', () => {
  test('cost = tokens × tier prices; per-tier invocation, token and cost metrics', async () => {
    const { service, invoker, metrics } = setup({ score: SCORE.medium, withCache: false });
    invoker.script('medium', answer('ok', { inputTokens: 1_000, outputTokens: 2_000 }));

    const result = await service.chat(ask('q'), ALICE, DEADLINE);

    // 1,000 × 0.001 / 1,000 + 2,000 × 0.004 / 1,000 = 0.001 + 0.008
    expect(result.costUsd).toBe(0.009);
    expect(result.usage).toEqual({ inputTokens: 1_000, outputTokens: 2_000 });
    const byTier = { [M.DIMENSION_TIER]: 'medium' };
    expect(metrics.sum(M.MODEL_INVOCATIONS, byTier)).toBe(1);
    expect(metrics.sum(M.INPUT_TOKENS, byTier)).toBe(1_000);
    expect(metrics.sum(M.OUTPUT_TOKENS, byTier)).toBe(2_000);
    expect(metrics.named(M.COST_USD, byTier).map((r) => r.value)).toEqual([0.009]);
    expect(metrics.named(M.COST_USD, {}).map((r) => r.value)).toEqual([0.009]);
    expect(metrics.named(M.MODEL_LATENCY, byTier)).toHaveLength(1);
  });

  test('cost is priced at the Bedrock service tier the response says served it', async () => {
    // Medium asks for Priority (1.75x); Bedrock answers it at Flex (0.5x).
    const medium: TierRuntimeConfig = {
      ...MEDIUM,
      serviceTier: 'priority',
      serviceTierPrices: {
        flex: { inputPricePer1k: 0.0005, outputPricePer1k: 0.002 },
        priority: { inputPricePer1k: 0.00175, outputPricePer1k: 0.007 },
      },
    };
    const { service, invoker, metrics } = setup({ score: SCORE.medium, withCache: false, config: { tiers: [SMALL, medium, LARGE] } });
    invoker.script('medium', { respond: { text: 'ok', usage: { inputTokens: 1_000, outputTokens: 2_000 }, serviceTier: 'flex' } });

    const result = await service.chat(ask('q'), ALICE, DEADLINE);

    // 1,000 × 0.0005 / 1,000 + 2,000 × 0.002 / 1,000 = 0.0005 + 0.004 (at Priority it would be 0.01575)
    expect(result.costUsd).toBe(0.0045);
    expect(metrics.named(M.COST_USD, { [M.DIMENSION_TIER]: 'medium' }).map((r) => r.value)).toEqual([0.0045]);
  });

  test('after a fallback: the failed tier counts an invocation and an error, no tokens or cost', async () => {
    const { service, invoker, metrics } = setup({ score: SCORE.small, withCache: false });
    invoker.script('small', { fail: sdkError('ThrottlingException', 429) }).script('medium', answer('ok', { inputTokens: 10, outputTokens: 20 }));

    const result = await service.chat(ask('q'), ALICE, DEADLINE);

    // Priced at the tier that answered: 10 × 0.001 / 1,000 + 20 × 0.004 / 1,000 = 0.00009
    expect(result.costUsd).toBe(0.00009);
    const small = { [M.DIMENSION_TIER]: 'small' };
    expect(metrics.sum(M.MODEL_INVOCATIONS, small)).toBe(1);
    expect(metrics.sum(M.MODEL_INVOCATIONS, { [M.DIMENSION_TIER]: 'medium' })).toBe(1);
    for (const name of [M.INPUT_TOKENS, M.OUTPUT_TOKENS, M.COST_USD]) expect(metrics.named(name, small)).toHaveLength(0);
    expect(metrics.named(M.INPUT_TOKENS).map((r) => r.dimensions[M.DIMENSION_TIER])).toEqual(['medium']);
  });
});

describe('ChatService: the deadline (fake clock)', () => {
  beforeEach(() => jest.useFakeTimers({ now: NOW }));
  afterEach(() => jest.useRealTimers());

  /** A scripted invoker whose slots are granted `waitMs` (fake) milliseconds after they are asked for. */
  class SlowSlotInvoker extends ScriptedInvoker {
    released = 0;
    constructor(private readonly waitMs: number) {
      super();
    }
    acquire(): Promise<() => void> {
      return new Promise((resolve) => setTimeout(() => resolve(() => this.released++), this.waitMs));
    }
  }

  /** Starts `promise` and tracks whether it has settled, and how. */
  function track<T>(promise: Promise<T>): { readonly state: () => string; readonly promise: Promise<T> } {
    let state = 'pending';
    promise.then(() => (state = 'resolved'), () => (state = 'rejected'));
    return { state: () => state, promise };
  }

  function serviceWith(invoker: ModelInvoker, tiers: TierRuntimeConfig[] = [SMALL, MEDIUM, LARGE]): ChatService {
    return new ChatService({
      config: routerConfig({ tiers, exactCache: undefined }),
      invoker,
      classifier: fixedScore(SCORE.small),
      metrics: new RecordingMetrics(),
      now: () => Date.now(),
    });
  }

  test('the cache and context writes after an answer are given up at the deadline: a hanging store never holds the answer back', async () => {
    class HangingCache extends MapAnswerCache {
      async set(): Promise<void> {
        return new Promise(() => undefined);
      }
    }
    const service = new ChatService({
      config: routerConfig({ tiers: [SMALL, MEDIUM, LARGE] }),
      invoker: new ScriptedInvoker().script('small', answer('From 9am.')),
      classifier: fixedScore(SCORE.small),
      metrics: new RecordingMetrics(),
      exactCache: new HangingCache(),
      now: () => Date.now(),
    });
    const run = track(service.chat(ask('When do you open?'), ALICE, Date.now() + 2_000));

    await jest.advanceTimersByTimeAsync(2_000);

    expect(run.state()).toBe('resolved');
    expect((await run.promise).servedBy).toBe('model');
  });

  test("a tier's timeout is capped at the time left before the deadline, less a margin", async () => {
    // Tier timeouts of 10 s, 2 s left: the hanging tier must be given up before the deadline.
    const invoker = new ScriptedInvoker().script('small', { hangUntilAborted: true }).script('medium', { hangUntilAborted: true });
    const deadline = Date.now() + 2_000;
    const run = track(serviceWith(invoker).chat(ask('q'), ALICE, deadline));

    await jest.advanceTimersByTimeAsync(2_000 - 1);

    expect(invoker.calls[0].signal.aborted).toBe(true);
    expect(run.state()).toBe('rejected');
    const err = await httpErrorOf(run.promise);
    expect(err.statusCode).toBe(503);
    // The deadline was spent on the first tier: no time was left to start another one.
    expect(invoker.tiersCalled).toEqual(['small']);
  });

  test('with less time left than the margin kept for the response, no tier is called: 503', async () => {
    const invoker = new ScriptedInvoker().script('small', answer('too late to be useful'));
    const err = await httpErrorOf(serviceWith(invoker).chat(ask('q'), ALICE, Date.now() + 100));
    expect(err.statusCode).toBe(503);
    expect(err.message).toContain('none (deadline reached)');
    expect(invoker.calls).toHaveLength(0);
  });

  test('the wait for a concurrency slot is taken off the time the tier gets', async () => {
    // 1.5 s of the 2 s left go to the wait for the slot; the tier (timeout 10 s) hangs.
    const invoker = new SlowSlotInvoker(1_500);
    invoker.script('small', { hangUntilAborted: true }).script('medium', { hangUntilAborted: true });
    const deadline = Date.now() + 2_000;
    const run = track(serviceWith(invoker).chat(ask('q'), ALICE, deadline));

    await jest.advanceTimersByTimeAsync(2_000 - 1);

    expect(invoker.tiersCalled).toEqual(['small']);
    expect(invoker.calls[0].signal.aborted).toBe(true);
    expect(run.state()).toBe('rejected');
    expect((await httpErrorOf(run.promise)).statusCode).toBe(503);
    expect(invoker.released).toBe(1);
  });

  test('a slot granted with no time left is given back without calling the tier', async () => {
    const invoker = new SlowSlotInvoker(1_900);
    invoker.script('small', answer('too late'));
    const run = track(serviceWith(invoker).chat(ask('q'), ALICE, Date.now() + 2_000));

    await jest.advanceTimersByTimeAsync(1_900);

    expect(run.state()).toBe('rejected');
    expect((await httpErrorOf(run.promise)).statusCode).toBe(503);
    expect(invoker.calls).toHaveLength(0);
    expect(invoker.released).toBe(1);
  });
});

describe('ChatService: answers that are not answers', () => {
  test.each<[string, ModelResponse]>([
    ['no text at all (Converse {} or content [], tool use only)', { text: '', usage: { inputTokens: 10, outputTokens: 0 }, stopReason: 'end_turn' }],
    ['only whitespace', { text: ' \n\t ', usage: { inputTokens: 10, outputTokens: 2 }, stopReason: 'end_turn' }],
    ['a tool-use stop without text', { text: '', usage: { inputTokens: 10, outputTokens: 30 }, stopReason: 'tool_use' }],
  ])('%s is a failure of the tier (empty): the next tier answers, nothing empty is billed or cached', async (_, empty) => {
    const { service, invoker, cache, metrics } = setup({ score: SCORE.small });
    invoker.script('small', { respond: empty }).script('medium', answer('A real answer.', { inputTokens: 10, outputTokens: 20 }));

    const result = await service.chat(ask('Where is my order?'), ALICE, DEADLINE);

    expect(result).toMatchObject({ servedBy: 'model', tierId: 'medium', text: 'A real answer.', costUsd: 0.00009 });
    expect(result.attempts).toEqual([
      expect.objectContaining({ tierId: 'small', outcome: 'failed', errorKind: 'empty' }),
      expect.objectContaining({ tierId: 'medium', outcome: 'ok' }),
    ]);
    expect(metrics.sum(M.MODEL_ERRORS, { [M.DIMENSION_TIER]: 'small', [M.DIMENSION_ERROR_KIND]: 'empty' })).toBe(1);
    expect(metrics.sum(M.FALLBACKS, { [M.DIMENSION_TIER]: 'small' })).toBe(1);
    expect(metrics.named(M.COST_USD, { [M.DIMENSION_TIER]: 'small' })).toHaveLength(0);
    expect(cache.sets.map((s) => s.answer.text)).toEqual(['A real answer.']);
  });

  test('when every tier answers empty: 503, nothing cached, nothing billed', async () => {
    const { service, invoker, cache, metrics } = setup({ score: SCORE.small });
    const empty: Step = { respond: { text: '', usage: { inputTokens: 10, outputTokens: 0 } } };
    invoker.script('small', empty).script('medium', empty).script('large', empty);

    const err = await httpErrorOf(service.chat(ask('Where is my order?'), ALICE, DEADLINE));

    expect(err.statusCode).toBe(503);
    expect(err.message).toContain('small (empty)');
    expect(invoker.tiersCalled).toEqual(['small', 'medium', 'large']);
    expect(cache.sets).toHaveLength(0);
    expect(metrics.named(M.COST_USD)).toHaveLength(0);
  });

  // maxTokens 100 is sent to the small tier; the question is 18 bytes.
  test.each<[string, unknown, unknown]>([
    ['negative input tokens', -5_000, 10],
    ['negative output tokens', 10, -5_000],
    ['1e15 input tokens', 1e15, 10],
    ['1e15 output tokens', 10, 1e15],
    ['fractional tokens', 10.5, 10],
    ['NaN', Number.NaN, 10],
    ['Infinity', 10, Number.POSITIVE_INFINITY],
    ['a string', '10', 10],
    ['no usage at all', undefined, undefined],
    ['more output tokens than maxTokens allows', 10, 100 + OUTPUT_TOKEN_SLACK + 1],
    ['more input tokens than the prompt can make', 18 + INPUT_TOKEN_OVERHEAD + 1, 10],
  ])('a usage with %s is a failure of the tier (invalid-usage): never billed, never cached', async (_, inputTokens, outputTokens) => {
    const { service, invoker, cache, metrics } = setup({ score: SCORE.small });
    const usage = (inputTokens === undefined ? undefined : { inputTokens, outputTokens }) as ModelResponse['usage'];
    invoker.script('small', { respond: { text: 'A suspicious answer.', usage, stopReason: 'end_turn' } })
      .script('medium', answer('A real answer.', { inputTokens: 10, outputTokens: 20 }));

    const result = await service.chat(ask('Where is my order?', { maxTokens: 100 }), ALICE, DEADLINE);

    expect(result).toMatchObject({ tierId: 'medium', text: 'A real answer.', costUsd: 0.00009, usage: { inputTokens: 10, outputTokens: 20 } });
    expect(result.attempts[0]).toMatchObject({ tierId: 'small', outcome: 'failed', errorKind: 'invalid-usage' });
    expect(metrics.sum(M.MODEL_ERRORS, { [M.DIMENSION_TIER]: 'small', [M.DIMENSION_ERROR_KIND]: 'invalid-usage' })).toBe(1);
    expect(metrics.sum(M.MODEL_ERRORS, { [M.DIMENSION_TIER]: 'small' })).toBe(1);
    expect(metrics.named(M.COST_USD).map((r) => r.value)).toEqual([0.00009, 0.00009]);
    expect(metrics.named(M.INPUT_TOKENS, { [M.DIMENSION_TIER]: 'small' })).toHaveLength(0);
    expect(cache.sets.map((s) => s.answer.text)).toEqual(['A real answer.']);
  });

  test('the largest possible usage is accepted (control for the test above)', async () => {
    const { service, invoker } = setup({ score: SCORE.small, withCache: false });
    const usage = { inputTokens: 18 + INPUT_TOKEN_OVERHEAD, outputTokens: 100 + OUTPUT_TOKEN_SLACK };
    invoker.script('small', answer('A long answer.', usage));

    const result = await service.chat(ask('Where is my order?', { maxTokens: 100 }), ALICE, DEADLINE);

    expect(result).toMatchObject({ tierId: 'small', usage });
  });
});
