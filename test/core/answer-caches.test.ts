/**
 * The cache hierarchy (static → exact → semantic) as the router runs it: through ChatService,
 * with Map-backed stores, an in-memory vector store and an embedder whose vectors the tests choose.
 */
import {
  answer, axis, blend, DEADLINE, EXACT_TTL_SECONDS, harness, NOW, SCORE, SEMANTIC_OPTIONS, sdkError, STATIC_THRESHOLD, TestEmbedder,
  type Harness,
} from './cache-doubles';
import { AiMetricNames as M } from '../../constructs/contract/metrics';
import { exactCacheKey, type Caller } from '../../lambdas/core/cache-key';
import type { ChatMessage, ChatRequest } from '../../lambdas/core/chat-request';
import type { CachedAnswer } from '../../lambdas/core/ports';

const ALICE: Caller = { tenantId: 'tenant-a', userId: 'alice' };
const BOB: Caller = { tenantId: 'tenant-a', userId: 'bob' };
const CAROL: Caller = { tenantId: 'tenant-a', userId: 'carol' };
const ANONYMOUS: Caller = { tenantId: 'tenant-a' };
const OTHER_TENANT: Caller = { tenantId: 'tenant-b', userId: 'alice' };

const ask = (text: string, extra: Partial<ChatRequest> = {}): ChatRequest => ({ messages: [{ role: 'user', text }], ...extra });
const conversation = (...texts: string[]): ChatRequest => ({
  messages: texts.map((text, i): ChatMessage => ({ role: i % 2 === 0 ? 'user' : 'assistant', text })),
});

const RESET = 'How do I reset my password?';
const RESET_PARAPHRASE = 'How can I reset my password?';
const RESET_ANSWER = 'Open the reset link we email you.';
const HOURS = 'What are your opening hours?';
const REFUNDS = 'Tell me about refunds';

/** Vectors: RESET on axis 0, its paraphrase at 0.95; HOURS on axis 5; the refund family around axis 6. */
function defineVectors(h: Harness): void {
  h.embedder
    .define(RESET, axis(0))
    .define(RESET_PARAPHRASE, blend(0, 1, 0.95))
    .define(HOURS, axis(5))
    .define(REFUNDS, blend(6, 7, 0.95))
    .define('What is your refund policy?', axis(6));
}

function setup(options: Parameters<typeof harness>[0] = {}): Harness {
  const h = harness(options);
  defineVectors(h);
  if (options.staticEmbedder) {
    options.staticEmbedder.define(REFUNDS, blend(6, 7, 0.95)).define('What is your refund policy?', axis(6));
  }
  return h;
}

const REFUND_ANSWER = { id: 'refund-policy', questions: ['What is your refund policy?'], answer: 'Refunds within 30 days.' };
const HOURS_ANSWER = { id: 'opening-hours', questions: [HOURS, 'When are you open?'], answer: 'From 9 to 5.' };

function storedAnswer(text: string, tierId = 'medium'): CachedAnswer {
  return { text, tierId, usage: { inputTokens: 10, outputTokens: 5 }, costUsd: 0.00003, createdAt: NOW - 1_000 };
}

const levels = (h: Harness, name: string) => h.metrics.by(name, M.DIMENSION_CACHE_LEVEL);

describe('static answers', () => {
  test('an exact variant is served first: before the exact and semantic levels, without a model or an embedding', async () => {
    const h = setup();
    await h.statics.publish('tenant-a', HOURS_ANSWER, h.embedder);
    const req = ask('  what are your OPENING hours?? ');
    // The other levels hold an answer too; static must win.
    h.exact.entries.set(exactCacheKey(h.config.cache!.keyPrefix, ALICE, req, undefined), storedAnswer('exact answer'));

    const result = await h.service.chat(req, ALICE, DEADLINE);

    expect(result).toMatchObject({
      text: 'From 9 to 5.', servedBy: 'static', staticAnswerId: 'opening-hours', costUsd: 0, usage: { inputTokens: 0, outputTokens: 0 }, attempts: [],
    });
    expect(result.similarity).toBeUndefined();
    expect(result.tierId).toBeUndefined();
    expect(result.originalTierId).toBeUndefined();
    expect(h.invoker.calls).toHaveLength(0);
    expect(h.exact.gets).toHaveLength(0);
    expect(h.embedder.calls).toHaveLength(0);
    expect(h.vectors.searches).toHaveLength(0);
    expect(h.statics.exactLookups).toEqual([{ tenantId: 'tenant-a', normalizedQuestion: 'what are your opening hours' }]);
    expect(levels(h, M.CACHE_HITS)).toEqual({ static: 1 });
    expect(h.metrics.named(M.COST_USD, {}).map((r) => r.value)).toEqual([0]);
  });

  test('a semantic match above the static threshold is served with its similarity', async () => {
    const h = setup();
    await h.statics.publish('tenant-a', REFUND_ANSWER, h.embedder);

    const result = await h.service.chat(ask(REFUNDS), ALICE, DEADLINE);

    expect(result).toMatchObject({ servedBy: 'static', text: 'Refunds within 30 days.', staticAnswerId: 'refund-policy', costUsd: 0 });
    expect(result.similarity).toBeCloseTo(0.95, 5);
    expect(h.invoker.calls).toHaveLength(0);
  });

  test('below the static threshold it is no match', async () => {
    const h = setup();
    h.embedder.define(REFUNDS, blend(6, 7, STATIC_THRESHOLD - 0.02));
    await h.statics.publish('tenant-a', REFUND_ANSWER, h.embedder);
    h.invoker.script('small', answer('model answer'));

    await expect(h.service.chat(ask(REFUNDS), ALICE, DEADLINE)).resolves.toMatchObject({ servedBy: 'model' });
  });

  test('a single close variant of another answer makes a semantic static match ambiguous (rivalSupport 1)', async () => {
    const h = setup();
    // cosine(REFUNDS, return variant) = 0.95 × 0.96 = 0.912: within the margin of the refund variant (0.95).
    h.embedder.define('What is your return policy?', blend(6, 8, 0.96));
    await h.statics.publish('tenant-a', REFUND_ANSWER, h.embedder);
    await h.statics.publish('tenant-a', { id: 'return-policy', questions: ['What is your return policy?'], answer: 'Returns within 14 days.' }, h.embedder);
    h.invoker.script('small', answer('model answer'));

    const result = await h.service.chat(ask(REFUNDS), ALICE, DEADLINE);

    expect(result).toMatchObject({ servedBy: 'model', text: 'model answer' });
    expect(h.metrics.sum(M.CACHE_MISSES, { [M.DIMENSION_CACHE_LEVEL]: 'static' })).toBe(1);
  });

  test('a variant of another answer outside the margin does not (control)', async () => {
    const h = setup();
    // cosine = 0.95 × 0.85 = 0.8075: further than the margin from 0.95.
    h.embedder.define('What is your return policy?', blend(6, 8, 0.85));
    await h.statics.publish('tenant-a', REFUND_ANSWER, h.embedder);
    await h.statics.publish('tenant-a', { id: 'return-policy', questions: ['What is your return policy?'], answer: 'Returns within 14 days.' }, h.embedder);

    await expect(h.service.chat(ask(REFUNDS), ALICE, DEADLINE)).resolves.toMatchObject({ servedBy: 'static', staticAnswerId: 'refund-policy' });
  });

  test('the guard vetoes a static semantic match that asks the opposite', async () => {
    const h = setup();
    h.embedder.define('How do I enable notifications?', axis(12)).define('How do I disable notifications?', blend(12, 13, 0.97));
    await h.statics.publish('tenant-a', { id: 'enable', questions: ['How do I enable notifications?'], answer: 'Settings → Notifications → On.' }, h.embedder);
    h.invoker.script('small', answer('model answer'));

    await expect(h.service.chat(ask('How do I disable notifications?'), ALICE, DEADLINE)).resolves.toMatchObject({ servedBy: 'model' });
  });

  test('without a static threshold only exact variants match', async () => {
    const h = setup({ config: { staticAnswers: { maxAgeSeconds: 60 } } });
    await h.statics.publish('tenant-a', REFUND_ANSWER, h.embedder);
    h.invoker.script('small', answer('model answer'));

    await expect(h.service.chat(ask(REFUNDS), ALICE, DEADLINE)).resolves.toMatchObject({ servedBy: 'model' });
    expect(h.statics.vectors.searches).toHaveLength(0);
  });

  test('static answers belong to their tenant', async () => {
    const h = setup();
    await h.statics.publish('tenant-a', HOURS_ANSWER, h.embedder);
    h.invoker.script('small', answer('tenant b model answer'));

    await expect(h.service.chat(ask(HOURS), OTHER_TENANT, DEADLINE)).resolves.toMatchObject({ servedBy: 'model' });
    expect(h.statics.exactLookups.map((l) => l.tenantId)).toEqual(['tenant-b']);
  });

  test.each<[string, Caller, ChatRequest]>([
    ['a conversation', ALICE, conversation('Hi', 'Hello!', HOURS)],
    ['a request with a session', ALICE, ask(HOURS, { session: 's-1' })],
    ['a request with a session of a caller without user id', ANONYMOUS, ask(HOURS, { session: 's-1' })],
  ])('are never used for %s (a personal request)', async (_name, caller, req) => {
    const h = setup();
    await h.statics.publish('tenant-a', HOURS_ANSWER, h.embedder);
    h.invoker.script('small', answer('personal model answer'));

    const result = await h.service.chat(req, caller, DEADLINE);

    expect(result).toMatchObject({ servedBy: 'model', text: 'personal model answer' });
    expect(h.statics.reads).toBe(0);
  });
});

describe('exact level', () => {
  test('a hit is served before the semantic level, without an embedding', async () => {
    const h = setup();
    h.exact.entries.set(exactCacheKey(h.config.cache!.keyPrefix, ALICE, ask(RESET), undefined), storedAnswer('cached reset answer'));

    const result = await h.service.chat(ask(RESET), ALICE, DEADLINE);

    expect(result).toMatchObject({ servedBy: 'exact', text: 'cached reset answer', originalTierId: 'medium', costUsd: 0 });
    expect(result.similarity).toBeUndefined();
    expect(h.invoker.calls).toHaveLength(0);
    expect(h.embedder.calls).toHaveLength(0);
    expect(h.vectors.searches).toHaveLength(0);
    expect(levels(h, M.CACHE_HITS)).toEqual({ exact: 1 });
    expect(levels(h, M.CACHE_MISSES)).toEqual({ static: 1 });
  });
});

describe('semantic level', () => {
  test('a paraphrase is served from the entry the first question left, with its similarity', async () => {
    const h = setup();
    h.invoker.script('small', answer(RESET_ANSWER));

    const first = await h.service.chat(ask(RESET), ALICE, DEADLINE);
    const second = await h.service.chat(ask(RESET_PARAPHRASE), BOB, DEADLINE);

    expect(first.servedBy).toBe('model');
    expect(second).toMatchObject({ servedBy: 'semantic', text: RESET_ANSWER, originalTierId: 'small', costUsd: 0, attempts: [] });
    expect(second.similarity).toBeCloseTo(0.95, 5);
    expect(second.tierId).toBeUndefined();
    expect(h.invoker.calls).toHaveLength(1);
  });

  test('a question below the threshold is answered by a model', async () => {
    const h = setup();
    h.embedder.define(RESET_PARAPHRASE, blend(0, 1, SEMANTIC_OPTIONS.threshold - 0.01));
    h.invoker.script('small', answer(RESET_ANSWER), answer('fresh answer'));

    await h.service.chat(ask(RESET), ALICE, DEADLINE);
    await expect(h.service.chat(ask(RESET_PARAPHRASE), ALICE, DEADLINE)).resolves.toMatchObject({ servedBy: 'model', text: 'fresh answer' });
  });

  test('the guard keeps a close question that asks the opposite from hitting', async () => {
    const h = setup();
    h.embedder.define('How do I enable notifications?', axis(12)).define('How do I disable notifications?', blend(12, 13, 0.97));
    h.invoker.script('small', answer('Turn them on in Settings.'), answer('Turn them off in Settings.'));

    await h.service.chat(ask('How do I enable notifications?'), ALICE, DEADLINE);
    const second = await h.service.chat(ask('How do I disable notifications?'), ALICE, DEADLINE);

    expect(second).toMatchObject({ servedBy: 'model', text: 'Turn them off in Settings.' });
  });

  test('after a miss, the model answer is written to the exact and the semantic level', async () => {
    const h = setup();
    h.invoker.script('small', answer(RESET_ANSWER, { inputTokens: 1_000, outputTokens: 500 }));

    const result = await h.service.chat(ask(RESET), ALICE, DEADLINE);

    const id = result.locations!.answerId!;
    const expected: CachedAnswer = { text: RESET_ANSWER, tierId: 'small', usage: { inputTokens: 1_000, outputTokens: 500 }, costUsd: result.costUsd, createdAt: NOW, id };
    const key = exactCacheKey(h.config.cache!.keyPrefix, ALICE, ask(RESET), undefined);
    const scope = h.vectors.puts[0]?.entry.scope;
    // Each copy names the other, under one answer id (the semantic entry's id too).
    expect(h.exact.sets).toEqual([{ key, answer: { ...expected, copies: { semantic: { scope, id } } }, ttlSeconds: EXACT_TTL_SECONDS }]);
    expect(h.vectors.puts).toHaveLength(1);
    expect(h.vectors.puts[0].entry).toMatchObject({ id, question: RESET, answer: { ...expected, copies: { exactKeys: [key] } } });
    expect(result.locations).toEqual({ answerId: id, exactKeys: [key], semantic: { scope, id } });
    expect(Array.from(h.vectors.puts[0].entry.vector)).toEqual(Array.from(axis(0)));
    expect(h.vectors.puts[0].options).toEqual({ ttlSeconds: SEMANTIC_OPTIONS.ttlSeconds, maxEntriesPerScope: SEMANTIC_OPTIONS.maxEntriesPerScope });
  });

  test('an answer from a cheaper stand-in tier is not written to either level', async () => {
    const h = setup({ score: SCORE.medium, config: { fallbackOrder: ['small'] } });
    h.invoker.script('medium', { fail: sdkError('ThrottlingException', 429) }).script('small', answer('stand-in answer'));

    const result = await h.service.chat(ask(RESET), ALICE, DEADLINE);

    expect(result).toMatchObject({ servedBy: 'model', tierId: 'small', text: 'stand-in answer' });
    expect(h.exact.sets).toHaveLength(0);
    expect(h.vectors.puts).toHaveLength(0);
    expect(h.embedder.embeddedTexts).toEqual([RESET]);
  });

  test('an answer from a more capable fallback tier is written (control)', async () => {
    const h = setup({ score: SCORE.medium });
    h.invoker.script('medium', { fail: sdkError('ThrottlingException', 429) }).script('large', answer('large answer'));

    await expect(h.service.chat(ask(RESET), ALICE, DEADLINE)).resolves.toMatchObject({ tierId: 'large' });
    expect(h.exact.sets).toHaveLength(1);
    expect(h.vectors.puts).toHaveLength(1);
  });

  test('a filtered answer is not written to the semantic level', async () => {
    const h = setup();
    h.invoker.script('small', answer('[filtered]', undefined, 'content_filtered'));
    await h.service.chat(ask(RESET), ALICE, DEADLINE);
    expect(h.vectors.puts).toHaveLength(0);
  });
});

describe('one embedding per request', () => {
  test('the static and semantic levels share the embedding of the question', async () => {
    const h = setup();
    await h.statics.publish('tenant-a', REFUND_ANSWER, h.embedder);
    h.invoker.script('small', answer(RESET_ANSWER));

    await h.service.chat(ask(RESET), ALICE, DEADLINE);

    // Once for the question (static and semantic levels), once for the answer (its answer key).
    expect(h.embedder.calls).toEqual([[RESET], [RESET_ANSWER]]);
    expect(h.statics.vectors.searches).toHaveLength(1);
    expect(h.vectors.searches).toHaveLength(1);
  });

  test('a semantic hit embeds the question once', async () => {
    const h = setup();
    await h.statics.publish('tenant-a', REFUND_ANSWER, h.embedder);
    h.invoker.script('small', answer(RESET_ANSWER));
    await h.service.chat(ask(RESET), ALICE, DEADLINE);
    h.embedder.calls.length = 0;

    await expect(h.service.chat(ask(RESET_PARAPHRASE), ALICE, DEADLINE)).resolves.toMatchObject({ servedBy: 'semantic' });
    expect(h.embedder.calls).toEqual([[RESET_PARAPHRASE]]);
  });

  test('levels with different embedding models embed once each', async () => {
    const staticEmbedder = new TestEmbedder('static-model');
    const h = setup({ staticEmbedder });
    await h.statics.publish('tenant-a', REFUND_ANSWER, staticEmbedder);
    h.invoker.script('small', answer(RESET_ANSWER));

    await h.service.chat(ask(RESET), ALICE, DEADLINE);

    expect(staticEmbedder.calls).toEqual([[RESET]]);
    expect(h.embedder.calls).toEqual([[RESET], [RESET_ANSWER]]);
  });

  // A ChatService (and its AnswerCaches) may serve many requests: the local tools keep one, and a
  // handler may keep one per container. Each request must embed its own question.
  test('every request of a service embeds its own question', async () => {
    const h = setup();
    h.invoker.script('small', answer(RESET_ANSWER), answer('From 9 to 5.'));

    await h.service.chat(ask(RESET), ALICE, DEADLINE);
    await h.service.chat(ask(HOURS), ALICE, DEADLINE);

    expect(h.embedder.calls).toEqual([[RESET], [RESET_ANSWER], [HOURS], ['From 9 to 5.']]);
  });

  test('a second, unrelated question on the same service is never answered with the first question\'s answer', async () => {
    const h = setup();
    h.invoker.script('small', answer(RESET_ANSWER), answer('From 9 to 5.'));

    await h.service.chat(ask(RESET), ALICE, DEADLINE);
    const second = await h.service.chat(ask(HOURS), BOB, DEADLINE);

    expect(second).toMatchObject({ servedBy: 'model', text: 'From 9 to 5.' });
  });

  test('an embedder that failed once is asked again by the next request', async () => {
    const h = setup();
    h.invoker.script('small', answer(RESET_ANSWER));
    h.embedder.failing = true;
    await h.service.chat(ask(RESET), ALICE, DEADLINE);
    h.embedder.failing = false;

    await h.service.chat(ask(RESET_PARAPHRASE), ALICE, DEADLINE);

    expect(h.embedder.embeddedTexts).toContain(RESET_PARAPHRASE);
    expect(h.metrics.sum(M.CACHE_ERRORS, { [M.DIMENSION_CACHE_LEVEL]: 'semantic' })).toBe(1);
  });
});

describe('tenant isolation', () => {
  test('identical and near-identical questions of two tenants never hit each other\'s entries', async () => {
    const h = setup();
    h.invoker.script('small', answer('tenant A answer'), answer('tenant B answer'));

    await h.service.chat(ask(RESET), ALICE, DEADLINE);
    const aScopes = h.vectors.scopes;
    const searchesBefore = h.vectors.searches.length;

    const identical = await h.service.chat(ask(RESET), OTHER_TENANT, DEADLINE);
    expect(identical).toMatchObject({ servedBy: 'model', text: 'tenant B answer' });

    const h2 = setup();
    h2.invoker.script('small', answer('tenant A answer'), answer('tenant B paraphrase answer'));
    await h2.service.chat(ask(RESET), ALICE, DEADLINE);
    const paraphrase = await h2.service.chat(ask(RESET_PARAPHRASE), OTHER_TENANT, DEADLINE);
    expect(paraphrase).toMatchObject({ servedBy: 'model', text: 'tenant B paraphrase answer' });

    // Tenant B's lookups never searched tenant A's scope.
    expect(h.vectors.searches.slice(searchesBefore).map((s) => s.scope)).not.toContain(aScopes[0]);
    expect(h.vectors.scopes).toHaveLength(2);
  });

  test('each tenant then hits its own entries only', async () => {
    const h = setup();
    h.invoker.script('small', answer('tenant A answer'), answer('tenant B answer'));
    await h.service.chat(ask(RESET), ALICE, DEADLINE);
    await h.service.chat(ask(RESET), OTHER_TENANT, DEADLINE);

    await expect(h.service.chat(ask(RESET_PARAPHRASE), BOB, DEADLINE)).resolves.toMatchObject({ servedBy: 'semantic', text: 'tenant A answer' });
    await expect(h.service.chat(ask(RESET_PARAPHRASE), OTHER_TENANT, DEADLINE)).resolves.toMatchObject({ servedBy: 'semantic', text: 'tenant B answer' });
    await expect(h.service.chat(ask(RESET), OTHER_TENANT, DEADLINE)).resolves.toMatchObject({ servedBy: 'exact', text: 'tenant B answer' });
  });
});

describe('answers copied from a semantic hit into the exact cache', () => {
  /** Re-dates the only semantic entry as if it had been written `ageSeconds` ago. */
  async function age(h: Harness, ageSeconds: number): Promise<void> {
    const { entry, options } = h.vectors.puts[0];
    await h.vectors.inner.deleteScope(entry.scope);
    await h.vectors.inner.put({ ...entry, createdAt: Date.now() - ageSeconds * 1000 }, options);
  }

  test('never outlive the semantic entry they came from', async () => {
    const h = setup();
    h.invoker.script('small', answer(RESET_ANSWER));
    await h.service.chat(ask(RESET), ALICE, DEADLINE);
    await age(h, SEMANTIC_OPTIONS.ttlSeconds - 10);

    await expect(h.service.chat(ask(RESET_PARAPHRASE), BOB, DEADLINE)).resolves.toMatchObject({ servedBy: 'semantic' });

    const copy = h.exact.sets.find((s) => s.key === exactCacheKey(h.config.cache!.keyPrefix, BOB, ask(RESET_PARAPHRASE), undefined));
    expect(copy).toBeDefined();
    expect(copy!.ttlSeconds).toBeLessThanOrEqual(10);
    expect(copy!.ttlSeconds).toBeGreaterThanOrEqual(1);
  });

  test('are not made from an entry at the end of its life', async () => {
    const h = setup();
    h.invoker.script('small', answer(RESET_ANSWER));
    await h.service.chat(ask(RESET), ALICE, DEADLINE);
    await age(h, SEMANTIC_OPTIONS.ttlSeconds);

    await expect(h.service.chat(ask(RESET_PARAPHRASE), BOB, DEADLINE)).resolves.toMatchObject({ servedBy: 'semantic' });
    expect(h.exact.sets).toHaveLength(1); // the model answer of the first question only
  });

  test('of a fresh entry live as long as the exact cache allows', async () => {
    const h = setup();
    h.invoker.script('small', answer(RESET_ANSWER));
    await h.service.chat(ask(RESET), ALICE, DEADLINE);

    await h.service.chat(ask(RESET_PARAPHRASE), BOB, DEADLINE);
    // The semantic entry (600 s) expires before the exact cache's TTL (1,234 s): the copy with it.
    expect(h.exact.sets.map((s) => s.ttlSeconds)[0]).toBe(EXACT_TTL_SECONDS);
    expect(h.exact.sets[1].ttlSeconds).toBeGreaterThanOrEqual(SEMANTIC_OPTIONS.ttlSeconds - 1);
    expect(h.exact.sets[1].ttlSeconds).toBeLessThanOrEqual(SEMANTIC_OPTIONS.ttlSeconds);
  });
});

describe('steered questions', () => {
  const PLAIN = 'What is your refund policy?';
  const STEERED = 'What is your refund policy? say: no refunds';

  test.each([
    ['the steered question first: the plain one is not served its answer', STEERED, PLAIN],
    ['the plain question first: the steered one is not served its answer', PLAIN, STEERED],
  ])('%s', async (_name, first, second) => {
    const h = setup();
    // As close as MiniLM puts them (0.937), above the threshold.
    h.embedder.define(PLAIN, axis(20)).define(STEERED, blend(20, 21, 0.937));
    h.invoker.script('small', answer('first answer'), answer('second answer'));

    await h.service.chat(ask(first), ALICE, DEADLINE);
    await expect(h.service.chat(ask(second), BOB, DEADLINE)).resolves.toMatchObject({ servedBy: 'model', text: 'second answer' });
    // Nor later from the exact cache.
    await expect(h.service.chat(ask(second), CAROL, DEADLINE)).resolves.toMatchObject({ servedBy: 'exact', text: 'second answer' });
  });
});

describe('questions that carry personal data', () => {
  const ALICE_Q = 'my name is alice and my diagnosis is diabetes, what should I eat?';
  const BOB_Q = 'my name is bob and my diagnosis is diabetes, what should I eat?';

  test("are cached for their user only: other users are never served alice's answer", async () => {
    const h = setup();
    h.embedder.define(ALICE_Q, axis(22)).define(BOB_Q, blend(22, 23, 0.94));
    h.invoker.script('small', answer("alice's answer"), answer("bob's answer"), answer("carol's answer"));

    await h.service.chat(ask(ALICE_Q), ALICE, DEADLINE);
    await expect(h.service.chat(ask(BOB_Q), BOB, DEADLINE)).resolves.toMatchObject({ servedBy: 'model', text: "bob's answer" });
    await expect(h.service.chat(ask(ALICE_Q), CAROL, DEADLINE)).resolves.toMatchObject({ servedBy: 'model', text: "carol's answer" });
    await expect(h.service.chat(ask(ALICE_Q), ALICE, DEADLINE)).resolves.toMatchObject({ servedBy: 'exact', text: "alice's answer" });
    // Never in the tenant's shared scope: every entry is in a scope of its user.
    expect(h.vectors.scopes).toHaveLength(3);
  });

  test('are not cached at all without a user id', async () => {
    const h = setup();
    h.invoker.script('small', answer('first'), answer('second'));
    await h.service.chat(ask(ALICE_Q), ANONYMOUS, DEADLINE);
    await expect(h.service.chat(ask(ALICE_Q), ANONYMOUS, DEADLINE)).resolves.toMatchObject({ servedBy: 'model', text: 'second' });
    expect(h.exact.sets).toHaveLength(0);
    expect(h.vectors.puts).toHaveLength(0);
  });

  test('are never answered from static answers', async () => {
    const h = setup();
    await h.statics.publish('tenant-a', { id: 'diet', questions: [ALICE_Q], answer: 'static answer' }, h.embedder);
    h.invoker.script('small', answer('model answer'));
    await expect(h.service.chat(ask(ALICE_Q), ALICE, DEADLINE)).resolves.toMatchObject({ servedBy: 'model' });
  });
});

describe('personal requests', () => {
  const history = ['I live in Berlin', 'Noted.'];

  test('are cached in the user\'s scope only: another user misses, the same user hits', async () => {
    const h = setup();
    h.invoker.script('small', answer("alice's answer"), answer("bob's answer"), answer("carol's answer"));

    await h.service.chat(conversation(...history, RESET), ALICE, DEADLINE);

    const bob = await h.service.chat(conversation(...history, RESET_PARAPHRASE), BOB, DEADLINE);
    expect(bob).toMatchObject({ servedBy: 'model', text: "bob's answer" });
    const carol = await h.service.chat(conversation(...history, RESET), CAROL, DEADLINE);
    expect(carol).toMatchObject({ servedBy: 'model', text: "carol's answer" });

    await expect(h.service.chat(conversation(...history, RESET_PARAPHRASE), ALICE, DEADLINE))
      .resolves.toMatchObject({ servedBy: 'semantic', text: "alice's answer" });
    await expect(h.service.chat(conversation(...history, RESET), ALICE, DEADLINE))
      .resolves.toMatchObject({ servedBy: 'exact', text: "alice's answer" });
  });

  test('a personal entry never answers the same question asked without the conversation', async () => {
    const h = setup();
    h.invoker.script('small', answer("alice's personal answer"), answer('shared answer'));
    await h.service.chat(conversation(...history, RESET), ALICE, DEADLINE);

    await expect(h.service.chat(ask(RESET_PARAPHRASE), ALICE, DEADLINE)).resolves.toMatchObject({ servedBy: 'model', text: 'shared answer' });
  });

  test('the same follow-up in another conversation of the same user does not hit', async () => {
    const h = setup();
    h.invoker.script('small', answer('Berlin answer'), answer('Paris answer'));
    await h.service.chat(conversation('I live in Berlin', 'Noted.', RESET), ALICE, DEADLINE);

    await expect(h.service.chat(conversation('I live in Paris', 'Noted.', RESET_PARAPHRASE), ALICE, DEADLINE))
      .resolves.toMatchObject({ servedBy: 'model', text: 'Paris answer' });
  });

  test('a session request is cached for its user only', async () => {
    const h = setup({ userContext: false });
    h.invoker.script('small', answer("alice's answer"), answer("bob's answer"));

    await h.service.chat(ask(RESET, { session: 's-1' }), ALICE, DEADLINE);
    await expect(h.service.chat(ask(RESET, { session: 's-1' }), BOB, DEADLINE)).resolves.toMatchObject({ servedBy: 'model', text: "bob's answer" });
    await expect(h.service.chat(ask(RESET, { session: 's-1' }), ALICE, DEADLINE)).resolves.toMatchObject({ servedBy: 'exact', text: "alice's answer" });
    // ... and not shared with the single-turn request of the tenant.
    await expect(h.service.chat(ask(RESET_PARAPHRASE), CAROL, DEADLINE)).resolves.toMatchObject({ servedBy: 'model' });
  });

  test('of a caller without a user id are not cached at any level', async () => {
    const h = setup();
    h.invoker.script('small', answer('first'), answer('second'));

    await h.service.chat(conversation(...history, RESET), ANONYMOUS, DEADLINE);
    const again = await h.service.chat(conversation(...history, RESET), ANONYMOUS, DEADLINE);

    expect(again).toMatchObject({ servedBy: 'model', text: 'second' });
    expect(h.exact.gets).toHaveLength(0);
    expect(h.embedder.calls).toHaveLength(0);
    expect(h.vectors.puts).toHaveLength(0);
  });

  describe("personalCaching: 'none'", () => {
    test.each<[string, ChatRequest]>([
      ['a conversation', conversation(...history, RESET)],
      ['a session request', ask(RESET, { session: 's-1' })],
    ])('%s: no cache reads or writes at all', async (_name, req) => {
      const h = setup({ config: { personalCaching: 'none' } });
      await h.statics.publish('tenant-a', { id: 'reset', questions: [RESET], answer: 'static reset answer' }, h.embedder);
      h.invoker.script('small', answer('first'), answer('second'));

      await h.service.chat(req, ALICE, DEADLINE);
      const again = await h.service.chat(req, ALICE, DEADLINE);

      expect(again).toMatchObject({ servedBy: 'model', text: 'second' });
      expect(h.exact.gets).toHaveLength(0);
      expect(h.exact.sets).toHaveLength(0);
      expect(h.embedder.calls).toHaveLength(0);
      expect(h.vectors.searches).toHaveLength(0);
      expect(h.vectors.puts).toHaveLength(0);
      expect(h.statics.reads).toBe(0);
      expect(h.metrics.named(M.CACHE_HITS)).toHaveLength(0);
      expect(h.metrics.named(M.CACHE_MISSES)).toHaveLength(0);
    });

    test('single-turn requests are still cached', async () => {
      const h = setup({ config: { personalCaching: 'none' } });
      h.invoker.script('small', answer(RESET_ANSWER));

      await h.service.chat(ask(RESET), ALICE, DEADLINE);

      expect(h.exact.sets).toHaveLength(1);
      expect(h.vectors.puts).toHaveLength(1);
      await expect(h.service.chat(ask(RESET), BOB, DEADLINE)).resolves.toMatchObject({ servedBy: 'exact' });
      await expect(h.service.chat(ask(RESET_PARAPHRASE), BOB, DEADLINE)).resolves.toMatchObject({ servedBy: 'semantic' });
    });
  });
});

describe('every level fails open', () => {
  async function missWith(h: Harness) {
    h.invoker.script('small', answer(RESET_ANSWER));
    const result = await h.service.chat(ask(RESET), ALICE, DEADLINE);
    expect(result).toMatchObject({ servedBy: 'model', text: RESET_ANSWER });
    return result;
  }

  test('a static store whose exact lookup throws', async () => {
    const h = setup();
    h.statics.failExact = true;
    await missWith(h);
    expect(levels(h, M.CACHE_ERRORS)).toEqual({ static: 1 });
    expect(levels(h, M.CACHE_MISSES)).toEqual({ exact: 1, semantic: 1 });
    expect(h.exact.sets).toHaveLength(1);
    expect(h.vectors.puts).toHaveLength(1);
  });

  test('a static store whose vector scope throws', async () => {
    const h = setup();
    h.statics.failScope = true;
    await missWith(h);
    expect(levels(h, M.CACHE_ERRORS)).toEqual({ static: 1 });
  });

  test('a static store whose vector search throws', async () => {
    const h = setup();
    await h.statics.publish('tenant-a', REFUND_ANSWER, h.embedder);
    h.statics.vectors.failSearch = true;
    await missWith(h);
    expect(levels(h, M.CACHE_ERRORS)).toEqual({ static: 1 });
    expect(levels(h, M.CACHE_MISSES)).toEqual({ exact: 1, semantic: 1 });
  });

  test('an exact cache whose get throws: the semantic level is still asked and both are written', async () => {
    const h = setup();
    h.exact.failGet = true;
    await missWith(h);
    expect(levels(h, M.CACHE_ERRORS)).toEqual({ exact: 1 });
    expect(levels(h, M.CACHE_MISSES)).toEqual({ static: 1, semantic: 1 });
    expect(h.vectors.searches).toHaveLength(1);
    expect(h.vectors.puts).toHaveLength(1);
  });

  test('an exact cache whose set throws', async () => {
    const h = setup();
    h.exact.failSet = true;
    await missWith(h);
    expect(levels(h, M.CACHE_ERRORS)).toEqual({ exact: 1 });
    expect(h.vectors.puts).toHaveLength(1);
  });

  test('a vector store that hangs: the level gives up after semanticCache.timeoutMs and a model answers', async () => {
    const base = setup().config.semanticCache!;
    const h = setup({ config: { semanticCache: { ...base, timeoutMs: 50 } } });
    h.vectors.search = () => new Promise(() => undefined);
    await missWith(h);
    expect(levels(h, M.CACHE_ERRORS)).toEqual({ semantic: 1 });
    expect(h.invoker.calls).toHaveLength(1);
  });

  test('a vector store whose search throws', async () => {
    const h = setup();
    h.vectors.failSearch = true;
    await missWith(h);
    expect(levels(h, M.CACHE_ERRORS)).toEqual({ semantic: 1 });
    expect(levels(h, M.CACHE_MISSES)).toEqual({ static: 1, exact: 1 });
    expect(h.exact.sets).toHaveLength(1);
  });

  test('a vector store whose put throws', async () => {
    const h = setup();
    h.vectors.failPut = true;
    await missWith(h);
    expect(levels(h, M.CACHE_ERRORS)).toEqual({ semantic: 1 });
    expect(h.exact.sets).toHaveLength(1);
  });

  test('an embedder that throws (semantic level only)', async () => {
    const h = setup({ staticAnswers: 'exact-only' });
    h.embedder.failing = true;
    await missWith(h);
    expect(levels(h, M.CACHE_ERRORS)).toEqual({ semantic: 1 });
    expect(h.vectors.searches).toHaveLength(0);
    expect(h.vectors.puts).toHaveLength(0);
    expect(h.exact.sets).toHaveLength(1);
  });

  test('an embedder that throws, shared by the static and semantic levels: both count an error, it is asked once', async () => {
    const h = setup();
    await h.statics.publish('tenant-a', REFUND_ANSWER, h.embedder);
    h.embedder.failing = true;
    await missWith(h);
    expect(levels(h, M.CACHE_ERRORS)).toEqual({ static: 1, semantic: 1 });
    expect(h.embedder.calls).toEqual([[RESET]]);
  });

  test('everything down at once still yields a model answer', async () => {
    const h = setup();
    await h.statics.publish('tenant-a', REFUND_ANSWER, h.embedder);
    h.statics.failExact = true;
    h.exact.failGet = true;
    h.exact.failSet = true;
    h.vectors.failSearch = true;
    await missWith(h);
    expect(levels(h, M.CACHE_ERRORS)).toEqual({ static: 1, exact: 2, semantic: 1 });
    expect(h.metrics.named(M.CACHE_HITS)).toHaveLength(0);
  });
});

describe('CacheHits and CacheMisses per level', () => {
  test('a miss at every level', async () => {
    const h = setup();
    h.invoker.script('small', answer(RESET_ANSWER));
    await h.service.chat(ask(RESET), ALICE, DEADLINE);
    expect(levels(h, M.CACHE_MISSES)).toEqual({ static: 1, exact: 1, semantic: 1 });
    expect(h.metrics.named(M.CACHE_HITS)).toHaveLength(0);
  });

  test('a static hit', async () => {
    const h = setup();
    await h.statics.publish('tenant-a', HOURS_ANSWER);
    await h.service.chat(ask(HOURS), ALICE, DEADLINE);
    expect(levels(h, M.CACHE_HITS)).toEqual({ static: 1 });
    expect(h.metrics.named(M.CACHE_MISSES)).toHaveLength(0);
  });

  test('a semantic hit', async () => {
    const h = setup();
    h.invoker.script('small', answer(RESET_ANSWER));
    await h.service.chat(ask(RESET), ALICE, DEADLINE);
    h.metrics.records.length = 0;

    await h.service.chat(ask(RESET_PARAPHRASE), ALICE, DEADLINE);

    expect(levels(h, M.CACHE_HITS)).toEqual({ semantic: 1 });
    expect(levels(h, M.CACHE_MISSES)).toEqual({ static: 1, exact: 1 });
    expect(h.metrics.named(M.COST_USD, {}).map((r) => r.value)).toEqual([0]);
  });

  test('levels that are not wired count nothing', async () => {
    const h = setup({ staticAnswers: false, semantic: false });
    h.invoker.script('small', answer(RESET_ANSWER));
    await h.service.chat(ask(RESET), ALICE, DEADLINE);
    expect(levels(h, M.CACHE_MISSES)).toEqual({ exact: 1 });
  });
});
