import { axis, blend, DIMENSIONS, SpyVectorStore, TestEmbedder } from './cache-doubles';
import type { CachedAnswer } from '../../lambdas/core/ports';
import { InMemoryVectorStore } from '../../lambdas/core/semantic/memory-vector-store';
import type { SemanticEntry, VectorMatch } from '../../lambdas/core/semantic/ports';
import { QuestionGuard } from '../../lambdas/core/semantic/question-guard';
import { decide, semanticScope, SemanticCache, type SemanticCacheOptions } from '../../lambdas/core/semantic/semantic-cache';
import { cosine, fromFloat32Bytes, normalize, toFloat32Bytes } from '../../lambdas/core/semantic/vectors';

const guard = new QuestionGuard();

function cached(text: string): CachedAnswer {
  return { text, tierId: 'small', usage: { inputTokens: 10, outputTokens: 5 }, costUsd: 0.0001, createdAt: 1 };
}

let nextId = 0;
function entry(question: string, answerKey: string, extra: Partial<SemanticEntry> = {}): SemanticEntry {
  return {
    id: `e${nextId++}`, scope: 's', question, vector: axis(0), answer: cached(`answer ${answerKey}`), answerKey, createdAt: 0, ...extra,
  };
}

function match(question: string, answerKey: string, similarity: number): VectorMatch {
  return { entry: entry(question, answerKey), similarity };
}

const OPTIONS = { threshold: 0.85, margin: 0.05, rivalSupport: 2 };

describe('decide', () => {
  const q = 'How do I reset my password?';

  test('no neighbours: empty', () => {
    expect(decide(q, [], guard, OPTIONS)).toEqual({ outcome: 'empty', nearestSimilarity: 0 });
  });

  test('the nearest neighbour below the threshold: below-threshold, with its similarity', () => {
    const d = decide(q, [match('How can I reset my password?', 'k1', 0.84), match('x', 'k2', 0.5)], guard, OPTIONS);
    expect(d).toEqual({ outcome: 'below-threshold', nearestSimilarity: 0.84 });
  });

  test('a neighbour at exactly the threshold answers', () => {
    const m = match('How can I reset my password?', 'k1', 0.85);
    expect(decide(q, [m], guard, OPTIONS)).toEqual({ hit: m, outcome: 'hit', nearestSimilarity: 0.85 });
  });

  test('a vetoed neighbour: guard:<reason>', () => {
    const d = decide('How do I enable my card?', [match('How do I disable my card?', 'k1', 0.97)], guard, OPTIONS);
    expect(d).toEqual({ outcome: 'guard:contrast:on-off', nearestSimilarity: 0.97 });
  });

  test('after a veto the next candidate is tried', () => {
    const allowed = match('How can I enable my card?', 'k2', 0.9);
    const d = decide('How do I enable my card?', [match('How do I disable my card?', 'k1', 0.97), allowed], guard, OPTIONS);
    expect(d.outcome).toBe('hit');
    expect(d.hit).toBe(allowed);
    expect(d.nearestSimilarity).toBe(0.97);
  });

  test('the first veto gives the reason when no candidate is allowed', () => {
    const d = decide('Can I send 50 euros?', [
      match('Can I receive 50 euros?', 'k1', 0.96),
      match('Can I send 500 euros?', 'k2', 0.95),
    ], guard, OPTIONS);
    expect(d.outcome).toBe('guard:contrast:send-receive');
    expect(d.hit).toBeUndefined();
  });

  test('candidates below the threshold are never tried, even when the guard would allow them', () => {
    const d = decide('How do I enable my card?', [
      match('How do I disable my card?', 'k1', 0.9),
      match('How can I enable my card?', 'k2', 0.8),
    ], guard, OPTIONS);
    expect(d.outcome).toBe('guard:contrast:on-off');
    expect(d.hit).toBeUndefined();
  });

  test('the hit is the first allowed candidate, not a later one of the same answer', () => {
    const first = match('How can I reset my password?', 'k1', 0.95);
    const second = match('Password reset, how?', 'k1', 0.93);
    expect(decide(q, [first, second], guard, OPTIONS).hit).toBe(first);
  });

  describe('rival answers', () => {
    const candidate = match('How can I reset my password?', 'reset', 0.95);

    test('a rival answer held by rivalSupport neighbours within the margin: ambiguous', () => {
      const d = decide(q, [candidate, match('How do I change my password?', 'change', 0.93), match('Changing my password?', 'change', 0.92)], guard, OPTIONS);
      expect(d).toEqual({ outcome: 'ambiguous', nearestSimilarity: 0.95 });
    });

    test('a rival with less support than rivalSupport is ignored', () => {
      const d = decide(q, [candidate, match('How do I change my password?', 'change', 0.94)], guard, OPTIONS);
      expect(d.hit).toBe(candidate);
    });

    test('support counts every neighbour of the rival answer, only one of them needs to be within the margin', () => {
      const d = decide(q, [candidate, match('How do I change my password?', 'change', 0.93), match('Email change?', 'change', 0.4)], guard, OPTIONS);
      expect(d.outcome).toBe('ambiguous');
    });

    test('a rival outside the margin is ignored', () => {
      const d = decide(q, [candidate, match('How do I change my password?', 'change', 0.89), match('Changing my password?', 'change', 0.88)], guard, OPTIONS);
      expect(d.hit).toBe(candidate);
    });

    test('neighbours of the same answer are never rivals', () => {
      const same = [candidate, match('Reset password?', 'reset', 0.94), match('Forgot my password', 'reset', 0.93), match('Password reset', 'reset', 0.92)];
      expect(decide(q, same, guard, { ...OPTIONS, rivalSupport: 1 }).hit).toBe(candidate);
    });

    test('rivalSupport 1: a single close neighbour of another answer makes it ambiguous', () => {
      const d = decide(q, [candidate, match('How do I change my password?', 'change', 0.94)], guard, { ...OPTIONS, rivalSupport: 1 });
      expect(d.outcome).toBe('ambiguous');
    });

    test('margin 0 is never ambiguous, however many rivals tie with the answering entry', () => {
      const tied = [candidate, ...['a', 'b', 'c'].map((s) => match(`Change my password ${s}?`, 'change', 0.95))];
      expect(decide(q, tied, guard, { ...OPTIONS, margin: 0, rivalSupport: 1 }).hit).toBe(candidate);
    });
  });
});

describe('SemanticCache', () => {
  const OPTS: SemanticCacheOptions = {
    threshold: 0.85, margin: 0.05, rivalSupport: 2, answerEquivalence: 0.9, neighbours: 3, ttlSeconds: 600, maxEntriesPerScope: 100,
  };
  const SCOPE = 'scope-1';

  function setup(options: Partial<SemanticCacheOptions> = {}) {
    const embedder = new TestEmbedder()
      .define('How do I reset my password?', axis(0))
      .define('How can I reset my password?', blend(0, 1, 0.95))
      .define('Open the reset link we email you.', axis(10))
      .define('We email you a reset link; open it.', blend(10, 11, 0.95))
      .define('Call support.', axis(20));
    const store = new SpyVectorStore();
    const cache = new SemanticCache(embedder, store, guard, { ...OPTS, ...options });
    return { embedder, store, cache };
  }

  test('embedderId names the model and its dimensions', () => {
    expect(setup().cache.embedderId).toBe(`test-embedder/${DIMENSIONS}`);
  });

  test('lookup without a vector embeds the question once', async () => {
    const { embedder, cache } = setup();
    const lookup = await cache.lookup(SCOPE, 'How do I reset my password?');
    expect(embedder.calls).toEqual([['How do I reset my password?']]);
    expect(lookup).toMatchObject({ outcome: 'empty', nearestSimilarity: 0, neighbours: [] });
    expect(Array.from(lookup.vector)).toEqual(Array.from(axis(0)));
  });

  test('lookup with a precomputed vector embeds nothing and searches with that vector', async () => {
    const { embedder, store, cache } = setup();
    await cache.put(SCOPE, 'How do I reset my password?', { vector: axis(0), neighbours: [] }, cached('Open the reset link we email you.'), 'reset');
    embedder.calls.length = 0;

    const vector = blend(0, 1, 0.95);
    const lookup = await cache.lookup(SCOPE, 'How can I reset my password?', vector);

    expect(embedder.calls).toEqual([]);
    expect(lookup.vector).toBe(vector);
    expect(lookup.outcome).toBe('hit');
    expect(lookup.hit?.similarity).toBeCloseTo(0.95, 5);
    expect(store.searches).toEqual([{ scope: SCOPE, k: OPTS.neighbours }]);
  });

  test('a miss then a put then a paraphrase: the paraphrase hits', async () => {
    const { embedder, cache } = setup();
    const miss = await cache.lookup(SCOPE, 'How do I reset my password?');
    await cache.put(SCOPE, 'How do I reset my password?', miss, cached('Open the reset link we email you.'));
    const hit = await cache.lookup(SCOPE, 'How can I reset my password?');

    expect(hit.outcome).toBe('hit');
    expect(hit.hit?.entry.answer.text).toBe('Open the reset link we email you.');
    // question, answer (for the answer key), paraphrase
    expect(embedder.embeddedTexts).toEqual(['How do I reset my password?', 'Open the reset link we email you.', 'How can I reset my password?']);
  });

  test('lookups never see entries of another scope', async () => {
    const { cache } = setup();
    const miss = await cache.lookup(SCOPE, 'How do I reset my password?');
    await cache.put(SCOPE, 'How do I reset my password?', miss, cached('x'));
    expect((await cache.lookup('scope-2', 'How do I reset my password?')).outcome).toBe('empty');
  });

  test('put stores the question vector of the lookup, the answer, and the TTL and bound of the options', async () => {
    const { store, cache } = setup();
    const miss = await cache.lookup(SCOPE, 'How do I reset my password?');
    const answer = cached('Open the reset link we email you.');
    const stored = await cache.put(SCOPE, 'How do I reset my password?', miss, answer);

    expect(store.puts).toHaveLength(1);
    expect(store.puts[0].options).toEqual({ ttlSeconds: OPTS.ttlSeconds, maxEntriesPerScope: OPTS.maxEntriesPerScope });
    expect(store.puts[0].entry).toBe(stored);
    expect(stored).toMatchObject({ scope: SCOPE, question: 'How do I reset my password?', answer });
    expect(stored.vector).toBe(miss.vector);
    expect(Array.from(stored.answerVector!)).toEqual(Array.from(axis(10)));
  });

  test('put inherits the answer key of a neighbour whose answer embeds within answerEquivalence', async () => {
    const { cache } = setup();
    const first = await cache.put(SCOPE, 'How do I reset my password?', await cache.lookup(SCOPE, 'How do I reset my password?'), cached('Open the reset link we email you.'));
    const lookup = await cache.lookup(SCOPE, 'How can I reset my password?');
    // cosine(axis 10, blend(10, 11, 0.95)) = 0.95 >= 0.9
    const second = await cache.put(SCOPE, 'How can I reset my password?', lookup, cached('We email you a reset link; open it.'));

    expect(first.answerKey).toBe(first.id);
    expect(second.answerKey).toBe(first.answerKey);
    expect(second.id).not.toBe(first.id);
  });

  test('put starts a fresh answer key when no neighbour holds an equivalent answer', async () => {
    const { cache } = setup();
    const first = await cache.put(SCOPE, 'How do I reset my password?', await cache.lookup(SCOPE, 'How do I reset my password?'), cached('Open the reset link we email you.'));
    const second = await cache.put(SCOPE, 'How can I reset my password?', await cache.lookup(SCOPE, 'How can I reset my password?'), cached('Call support.'));
    expect(second.answerKey).toBe(second.id);
    expect(second.answerKey).not.toBe(first.answerKey);
  });

  test('answerEquivalence is a threshold: just above the answers\' similarity, the key is fresh', async () => {
    const { cache } = setup({ answerEquivalence: 0.96 });
    const first = await cache.put(SCOPE, 'How do I reset my password?', await cache.lookup(SCOPE, 'How do I reset my password?'), cached('Open the reset link we email you.'));
    const second = await cache.put(SCOPE, 'How can I reset my password?', await cache.lookup(SCOPE, 'How can I reset my password?'), cached('We email you a reset link; open it.'));
    expect(second.answerKey).not.toBe(first.answerKey);
  });

  test('only neighbours of the lookup are candidates for the answer key', async () => {
    const { cache } = setup();
    await cache.put(SCOPE, 'How do I reset my password?', await cache.lookup(SCOPE, 'How do I reset my password?'), cached('Open the reset link we email you.'));
    const second = await cache.put(SCOPE, 'How can I reset my password?', { vector: blend(0, 1, 0.95), neighbours: [] }, cached('We email you a reset link; open it.'));
    expect(second.answerKey).toBe(second.id);
  });

  test('an explicit answer key skips the answer embedding', async () => {
    const { embedder, cache } = setup();
    const lookup = await cache.lookup(SCOPE, 'How do I reset my password?');
    embedder.calls.length = 0;
    const stored = await cache.put(SCOPE, 'How do I reset my password?', lookup, cached('Open the reset link we email you.'), 'label-7');
    expect(embedder.calls).toEqual([]);
    expect(stored.answerKey).toBe('label-7');
    expect(stored.answerVector).toBeUndefined();
  });

  test('neighbours without an answer vector (explicit keys) give no key', async () => {
    const { cache } = setup();
    await cache.put(SCOPE, 'How do I reset my password?', await cache.lookup(SCOPE, 'How do I reset my password?'), cached('Open the reset link we email you.'), 'label-7');
    const second = await cache.put(SCOPE, 'How can I reset my password?', await cache.lookup(SCOPE, 'How can I reset my password?'), cached('Open the reset link we email you.'));
    expect(second.answerKey).toBe(second.id);
  });

  test('lookup asks the store for options.neighbours neighbours', async () => {
    const { cache } = setup({ neighbours: 2 });
    for (const i of [1, 2, 3, 4]) {
      await cache.put(SCOPE, `Question number ${i}`, { vector: blend(0, i, 0.5), neighbours: [] }, cached(`a${i}`), `k${i}`);
    }
    const lookup = await cache.lookup(SCOPE, 'How do I reset my password?');
    expect(lookup.neighbours).toHaveLength(2);
  });
});

describe('InMemoryVectorStore', () => {
  const opts = (maxEntriesPerScope: number) => ({ ttlSeconds: 60, maxEntriesPerScope });
  const at = (scope: string, question: string, vector: Float32Array) => entry(question, question, { scope, vector });

  test('search returns the k nearest of the scope, most similar first', async () => {
    const store = new InMemoryVectorStore();
    await store.put(at('s', 'far', axis(5)), opts(10));
    await store.put(at('s', 'near', blend(0, 1, 0.9)), opts(10));
    await store.put(at('s', 'nearest', blend(0, 2, 0.99)), opts(10));
    await store.put(at('s', 'middle', blend(0, 3, 0.5)), opts(10));

    const found = await store.search('s', axis(0), 3);

    expect(found.map((m) => m.entry.question)).toEqual(['nearest', 'near', 'middle']);
    expect(found[0].similarity).toBeCloseTo(0.99, 5);
  });

  test('scopes are isolated', async () => {
    const store = new InMemoryVectorStore();
    await store.put(at('a', 'q', axis(0)), opts(10));
    expect(await store.search('b', axis(0), 5)).toEqual([]);
  });

  test('the per-scope bound evicts the oldest entries of that scope only', async () => {
    const store = new InMemoryVectorStore();
    await store.put(at('other', 'kept', axis(0)), opts(2));
    for (const q of ['q1', 'q2', 'q3']) await store.put(at('s', q, axis(0)), opts(2));

    expect(store.size('s')).toBe(2);
    expect(store.size('other')).toBe(1);
    expect((await store.search('s', axis(0), 10)).map((m) => m.entry.question).sort()).toEqual(['q2', 'q3']);
  });

  /** Distinct unit vectors on a circle of axes 0 and 1, 0.01 rad apart. */
  const onCircle = (i: number) => {
    const v = new Float32Array(DIMENSIONS);
    v[0] = Math.cos(i / 100);
    v[1] = Math.sin(i / 100);
    return v;
  };

  test('after growing and evicting, every entry is still found by its own vector', async () => {
    const store = new InMemoryVectorStore();
    for (let i = 0; i < 150; i++) await store.put(at('s', `q${i}`, onCircle(i)), opts(100));

    expect(store.size('s')).toBe(100);
    for (const i of [50, 63, 64, 65, 99, 100, 127, 128, 149]) {
      const [best] = await store.search('s', onCircle(i), 1);
      expect({ i, question: best.entry.question }).toEqual({ i, question: `q${i}` });
      expect(best.similarity).toBeCloseTo(1, 5);
    }
    // An evicted entry's vector finds the nearest survivor.
    expect((await store.search('s', onCircle(10), 1))[0].entry.question).toBe('q50');
  });

  test('similarities equal cosine() of the stored vectors', async () => {
    const store = new InMemoryVectorStore();
    const vectors = [blend(0, 1, 0.3), blend(0, 2, 0.7), blend(3, 0, 0.2), axis(4), blend(0, 5, 0.95)];
    for (const [i, v] of vectors.entries()) await store.put(at('s', `q${i}`, v), opts(10));
    const query = blend(0, 5, 0.8);

    const found = await store.search('s', query, 10);

    // q4: 0.8 × 0.95 + 0.6 × 0.31 = 0.95; q2: 0.8 × 0.98 = 0.78; q1: 0.56; q0: 0.24; q3: 0.
    expect(found.map((m) => m.entry.question)).toEqual(['q4', 'q2', 'q1', 'q0', 'q3']);
    for (const m of found) expect(m.similarity).toBeCloseTo(cosine(query, m.entry.vector), 6);
  });

  test('on a tie the earlier entry comes first', async () => {
    const store = new InMemoryVectorStore();
    for (const q of ['first', 'second', 'third']) await store.put(at('s', q, axis(0)), opts(10));
    expect((await store.search('s', axis(0), 2)).map((m) => m.entry.question)).toEqual(['first', 'second']);
  });

  test('k 0 finds nothing', async () => {
    const store = new InMemoryVectorStore();
    await store.put(at('s', 'q', axis(0)), opts(10));
    expect(await store.search('s', axis(0), 0)).toEqual([]);
  });

  test('vectors of other dimensions are refused', async () => {
    const store = new InMemoryVectorStore();
    await store.put(at('s', 'q', axis(0)), opts(10));
    await expect(store.search('s', new Float32Array(3), 1)).rejects.toThrow(/dimensions differ/);
    await expect(store.put(at('s', 'q2', new Float32Array(3)), opts(10))).rejects.toThrow(/dimensions differ/);
    expect(store.size('s')).toBe(1);
  });

  test('deleteScope drops one scope only', async () => {
    const store = new InMemoryVectorStore();
    await store.put(at('a', 'qa', axis(0)), opts(10));
    await store.put(at('b', 'qb', axis(0)), opts(10));

    await store.deleteScope('a');

    expect(store.size('a')).toBe(0);
    expect(await store.search('a', axis(0), 5)).toEqual([]);
    expect((await store.search('b', axis(0), 5)).map((m) => m.entry.question)).toEqual(['qb']);
  });
});

describe('semanticScope', () => {
  type Parts = Parameters<typeof semanticScope>[0];
  const base: Parts = { tenantId: 'tenant-a', system: 'be brief', maxTokens: 100, temperature: 0.2, embedderId: 'm/64' };
  const scope = semanticScope(base);

  test('is a 32-hex string, stable for equal parts', () => {
    expect(scope).toMatch(/^[0-9a-f]{32}$/);
    expect(semanticScope({ ...base })).toBe(scope);
  });

  test.each<[string, Partial<Parts>]>([
    ['tenant', { tenantId: 'tenant-b' }],
    ['user', { userId: 'alice' }],
    ['history', { history: '[["user","hi"],["assistant","hello"]]' }],
    ['system', { system: 'be verbose' }],
    ['no system', { system: undefined }],
    ['maxTokens', { maxTokens: 101 }],
    ['temperature', { temperature: 0.3 }],
    ['temperature 0 vs 0.2', { temperature: 0 }],
    ['tier', { tierId: 'large' }],
    ['embedder', { embedderId: 'm/1024' }],
  ])('differs by %s', (_name, change) => {
    const other = semanticScope({ ...base, ...change });
    expect(other).toMatch(/^[0-9a-f]{32}$/);
    expect(other).not.toBe(scope);
  });

  test('two users of a tenant get different scopes, and a user id cannot pose as a tenant id', () => {
    expect(semanticScope({ ...base, userId: 'alice' })).not.toBe(semanticScope({ ...base, userId: 'bob' }));
    expect(semanticScope({ ...base, tenantId: 'a', userId: 'b' })).not.toBe(semanticScope({ ...base, tenantId: 'b', userId: 'a' }));
  });

  test('temperature 0 and no temperature differ', () => {
    expect(semanticScope({ ...base, temperature: 0 })).not.toBe(semanticScope({ ...base, temperature: undefined }));
  });
});

describe('vectors', () => {
  test('cosine of unit vectors is their dot product; dimensions must agree', () => {
    expect(cosine(axis(0), axis(0))).toBe(1);
    expect(cosine(axis(0), axis(1))).toBe(0);
    expect(cosine(axis(0), blend(0, 1, 0.6))).toBeCloseTo(0.6, 6);
    expect(() => cosine(axis(0), new Float32Array(3))).toThrow(/dimensions differ/);
  });

  test('normalize scales to unit length; a zero vector stays zero', () => {
    const v = normalize(Float32Array.from([3, 4]));
    expect(Array.from(v)).toEqual([Math.fround(0.6), Math.fround(0.8)]);
    expect(Array.from(normalize(new Float32Array(3)))).toEqual([0, 0, 0]);
  });

  test('float32 bytes round-trip, little-endian', () => {
    const v = Float32Array.from([1, -2.5, 0.1]);
    const bytes = toFloat32Bytes(v);
    expect(bytes).toHaveLength(12);
    expect(bytes.readFloatLE(4)).toBe(-2.5);
    expect(Array.from(fromFloat32Bytes(bytes))).toEqual(Array.from(v));
  });
});
