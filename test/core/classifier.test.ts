import type { ChatMessage, ChatRequest } from '../../lambdas/core/chat-request';
import { HEURISTIC_WEIGHTS, HeuristicClassifier, defaultThresholds, tierIndexForScore } from '../../lambdas/core/classifier';

const classifier = new HeuristicClassifier();

function ask(text: string, system?: string): ChatRequest {
  return { messages: [{ role: 'user', text }], system };
}

/** A conversation of `turns` messages (user first, alternating) whose last user turn is `last`. */
function conversation(turns: number, last: string, filler = 'ok'): ChatRequest {
  const messages: ChatMessage[] = [];
  for (let i = 0; i < turns - 1; i++) messages.push({ role: i % 2 === 0 ? 'user' : 'assistant', text: filler });
  messages.push({ role: 'user', text: last });
  return { messages };
}

/** Neutral prose: no code, math or reasoning markers. */
function prose(chars: number): string {
  const words = 'the blue shirt comes in many sizes and colours for every season ';
  return words.repeat(Math.ceil(chars / words.length)).slice(0, chars);
}

const THREE_TIERS = defaultThresholds(3);

describe('HeuristicClassifier', () => {
  test('a short FAQ question scores low and goes to tier 0 of three', () => {
    const c = classifier.classify(ask('What are your opening hours?'));
    // Only the length feature: 0.2 × 28 / 2,000 = 0.0028, rounded to 0.003.
    expect(c.score).toBe(0.003);
    expect(c.reasons).toEqual([]);
    expect(tierIndexForScore(c.score, THREE_TIERS)).toBe(0);
  });

  test('a long multi-turn code + reasoning request goes to the last tier of three', () => {
    const last = [
      'Explain why this TypeScript function throws an exception, and compare two ways to fix it:',
      '```ts',
      'function total(items) {',
      '  return items.reduce((sum, i) => sum + i.price, 0);',
      '}',
      '```',
      prose(1_800),
    ].join('\n');
    const req = conversation(7, last, prose(100));
    const c = classifier.classify(req);
    expect(c.reasons).toEqual(expect.arrayContaining(['code', 'reasoning']));
    expect(c.reasons.some((r) => r.startsWith('length'))).toBe(true);
    expect(c.reasons.some((r) => r.startsWith('turns'))).toBe(true);
    expect(tierIndexForScore(c.score, THREE_TIERS)).toBe(THREE_TIERS.length);
    expect(c.score).toBeLessThanOrEqual(1);
  });

  test('every feature at its maximum scores 1 (the weights sum to 1)', () => {
    const last = `Explain step by step how to solve the integral of x^2 in python: \`\`\`def f(x): return x ** 2\`\`\` ${prose(2_000)}`;
    const c = classifier.classify(conversation(7, last));
    expect(c.score).toBeCloseTo(1, 3);
  });

  describe('each marker contributes its documented weight', () => {
    // Same length for every variant, so only the marker differs.
    const base = 'tell me about the blue shirt please';
    const variants: Array<[string, string, number]> = [
      ['code', 'tell me about the `x => x` function', 0.25],
      ['math', 'tell me about 12 + 30 for the shirt', 0.2],
      ['reasoning', 'explain the blue shirt to me please', 0.2],
    ];

    test.each(variants)('%s', (reason, text, weight) => {
      expect(text).toHaveLength(base.length);
      const without = classifier.classify(ask(base));
      const withMarker = classifier.classify(ask(text));
      expect(without.reasons).not.toContain(reason);
      expect(withMarker.reasons).toContain(reason);
      expect(withMarker.score - without.score).toBeCloseTo(weight, 2);
    });

    test('markers add up', () => {
      const one = classifier.classify(ask('explain this'));
      const two = classifier.classify(ask('explain this sql'));
      const three = classifier.classify(ask('explain this sql, compute 2 + 2'));
      expect(two.score).toBeGreaterThan(one.score);
      expect(three.score).toBeGreaterThan(two.score);
      expect(three.reasons).toEqual(expect.arrayContaining(['reasoning', 'code', 'math']));
    });

    test('turns count fully from the first earlier exchange (3 messages)', () => {
      const scores = [1, 3, 5, 7].map((n) => classifier.classify(conversation(n, 'hello', '')).score);
      // (3 - 1) / 2 saturates the turns feature: 0.15 in all.
      expect(scores[1] - scores[0]).toBeCloseTo(0.15, 2);
      expect(scores[2]).toBeCloseTo(scores[1], 2);
      expect(scores[3]).toBeCloseTo(scores[1], 2);
      expect(classifier.classify(conversation(3, 'hello', '')).reasons.some((r) => r.startsWith('turns'))).toBe(true);
      expect(classifier.classify(ask('hello')).reasons.some((r) => r.startsWith('turns'))).toBe(false);
    });

    test('length counts up to 2,000 characters for 0.2', () => {
      const short = classifier.classify(ask(prose(20)));
      const long = classifier.classify(ask(prose(2_000)));
      const longer = classifier.classify(ask(prose(6_000)));
      expect(long.score - short.score).toBeCloseTo(0.2 * (1 - 20 / 2_000), 2);
      expect(longer.score).toBe(long.score);
      expect(long.reasons.some((r) => r.startsWith('length'))).toBe(true);
      expect(short.reasons.some((r) => r.startsWith('length'))).toBe(false);
    });

    test('only the last user turn is searched for markers', () => {
      const earlier: ChatRequest = {
        messages: [
          { role: 'user', text: 'explain why my python code fails: 2 + 2' },
          { role: 'assistant', text: 'ok' },
          { role: 'user', text: 'thanks' },
        ],
      };
      const c = classifier.classify(earlier);
      expect(c.reasons).not.toContain('code');
      expect(c.reasons).not.toContain('math');
      expect(c.reasons).not.toContain('reasoning');
    });

    // The doc comment: the system prompt is not searched for markers (it is the same for every request).
    test('code in the system prompt does not count as code', () => {
      const system = 'You review code. Reply with a patch:\n```ts\nfunction f() {\n  return 1;\n}\n```';
      const c = classifier.classify(ask('is this fine', system));
      expect(c.reasons).not.toContain('code');
    });

    test('a bare "why" is not a reasoning marker (FAQs ask why too)', () => {
      expect(classifier.classify(ask('Why was my card declined?')).reasons).not.toContain('reasoning');
    });

    test('the documented weights sum to 1', () => {
      const sum = Object.values(HEURISTIC_WEIGHTS).reduce((a, b) => a + b, 0);
      expect(sum).toBeCloseTo(1, 9);
    });
  });

  test('is deterministic: the same request always gets the same score and reasons', () => {
    const req = conversation(4, 'Compare SQL and NoSQL for an order table, step by step.', prose(300));
    const first = classifier.classify(req);
    for (let i = 0; i < 5; i++) expect(classifier.classify(req)).toEqual(first);
    expect(new HeuristicClassifier().classify(req)).toEqual(first);
    // A classifier must not keep state between requests (the global regexes have no `g` flag).
    classifier.classify(ask('```js\nconst a = 1;\n```'));
    expect(classifier.classify(req)).toEqual(first);
  });

  // The examples of HeuristicClassifier's doc comment, with the default thresholds for three tiers.
  describe('routes the examples of its doc comment (default thresholds, three tiers)', () => {
    const examples: Array<[string, ChatRequest, number]> = [
      ['a short FAQ-like question → small', ask('Do you ship to Canada?'), 0],
      ['a "why" FAQ → small', ask('Why is my order late?'), 0],
      ['a long question (1,500 characters) → medium', ask(prose(1_500)), 1],
      ['one reasoning marker → medium', ask('Can you compare the two jackets?'), 1],
      ['one code marker → medium', ask('My SQL query returns nothing'), 1],
      ['a multi-turn conversation → medium', conversation(3, 'and in blue?'), 1],
      ['code plus reasoning → large', ask('Explain why this python function fails: def f(): return x'), 2],
      ['long math → large', ask(`Solve the equation 3x + 2 = 11 for x. ${prose(2_000)}`), 2],
      ['a marker in a multi-turn conversation → large', conversation(3, 'Now compare it with the red one'), 2],
      ['a long multi-turn chat of short turns → medium', conversation(9, 'and in blue?', prose(400)), 1],
    ];
    test.each(examples)('%s', (_name, req, tier) => {
      const c = classifier.classify(req);
      expect({ score: c.score, reasons: c.reasons, tier: tierIndexForScore(c.score, THREE_TIERS) }).toEqual(
        expect.objectContaining({ tier }),
      );
    });
  });
});

describe('defaultThresholds', () => {
  test.each([1, 2, 3, 4, 5])('%i tiers: n - 1 ascending thresholds inside (0, 1)', (n) => {
    const t = defaultThresholds(n);
    expect(t).toHaveLength(n - 1);
    for (let i = 1; i < t.length; i++) expect(t[i]).toBeGreaterThan(t[i - 1]);
    for (const v of t) {
      expect(v).toBeGreaterThan(0);
      expect(v).toBeLessThan(1);
    }
  });

  test('three tiers: [0.15, 0.35], as documented', () => {
    expect(defaultThresholds(3)).toEqual([0.15, 0.35]);
  });

  test('one tier: no thresholds, every score goes to tier 0', () => {
    expect(defaultThresholds(1)).toEqual([]);
    expect(tierIndexForScore(1, defaultThresholds(1))).toBe(0);
  });

  test('two tiers: the cheap tier keeps the band of the three-tier small tier', () => {
    expect(defaultThresholds(2)).toEqual([0.15]);
  });

  test.each([4, 5])('%i tiers: evenly spread from 0.15 to 0.35', (n) => {
    const t = defaultThresholds(n);
    expect(t[0]).toBeCloseTo(0.15, 6);
    expect(t[t.length - 1]).toBeCloseTo(0.35, 6);
    const step = (0.35 - 0.15) / (n - 2);
    t.forEach((v, i) => expect(v).toBeCloseTo(0.15 + i * step, 3));
  });
});

describe('tierIndexForScore', () => {
  const thresholds = [0.25, 0.55];

  test.each([
    [0, 0],
    [0.249, 0],
    [0.25, 1], // equal to a threshold: the upper band
    [0.4, 1],
    [0.549, 1],
    [0.55, 2],
    [1, 2],
  ])('score %p → tier %i', (score, index) => {
    expect(tierIndexForScore(score, thresholds)).toBe(index);
  });

  test('every index in 0..n-1 is reachable for five tiers', () => {
    const t = defaultThresholds(5);
    const reached = new Set([0, ...t].map((s) => tierIndexForScore(s, t)));
    expect([...reached].sort()).toEqual([0, 1, 2, 3, 4]);
  });
});

describe('HeuristicClassifier: hostile text', () => {
  /** The arithmetic marker as it was first written (quadratic on a run of digits): the oracle. */
  const REFERENCE_ARITHMETIC = /\d+\s*[+\-*/^=<>]\s*\d+/;
  const mathOf = (text: string): boolean => classifier.classify(ask(text)).reasons.includes('math');

  test('the arithmetic marker matches exactly where the reference pattern does (every short text over its alphabet)', () => {
    // Deterministic pseudo-random texts over digits, spaces, operators and other characters.
    const alphabet = ['1', '7', ' ', '\n', '\t', '+', '-', '*', '/', '^', '=', '<', '>', 'x', '.', 'a'];
    let seed = 12_345;
    const next = (n: number): number => {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
      return seed % n;
    };
    const disagreements: string[] = [];
    let matched = 0;
    for (let i = 0; i < 20_000; i++) {
      const text = `q ${Array.from({ length: 1 + next(10) }, () => alphabet[next(alphabet.length)]).join('')}`;
      const expected = REFERENCE_ARITHMETIC.test(text);
      if (expected) matched++;
      if (mathOf(text) !== expected) disagreements.push(text);
    }
    expect(disagreements).toEqual([]);
    // The sample holds both outcomes in quantity.
    expect(matched).toBeGreaterThan(1_000);
    expect(20_000 - matched).toBeGreaterThan(2_000);
  });

  const N = 32_000;
  test.each<[string, () => string, boolean]>([
    ['a run of digits', () => '1'.repeat(N), false],
    ['a run of digits, then an operator and a digit', () => `${'1'.repeat(N)}+1`, true],
    ['digits, a run of spaces, no operator', () => `1${' '.repeat(N)}x`, false],
    ['digits, an operator, a run of spaces, no digit', () => `1+${' '.repeat(N)}x`, false],
    ['1+1+1…', () => '1+'.repeat(N / 2), true],
    ['digits separated by single spaces', () => '1 '.repeat(N / 2), false],
    ['dots then x', () => `${'.'.repeat(N)}x`, false],
    ['nested brackets', () => `${'('.repeat(N / 2)}${')'.repeat(N / 2)}`, false],
  ])('%s (32,000 characters): classified correctly', (_, text, math) => {
    expect(mathOf(text())).toBe(math);
  });
});
