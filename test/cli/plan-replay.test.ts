import { CliError } from '../../lambdas/cli/errors';
import { measurePhase, replayTrace, estimateTokens, type PlanReplay } from '../../lambdas/cli/plan-replay';
import { parseCsvTrace, parseJsonlTrace } from '../../lambdas/cli/plan-trace';
import type { Embedder } from '../../lambdas/core/semantic/ports';

const TIERS = [{ id: 'small' }, { id: 'medium' }, { id: 'large' }];

const CSV = [
  'text,label,user',
  'How do I reset my PIN?,pin,u1',
  'how do I reset my PIN,pin,u2',
  'Do you ship to Canada?,shipping,u3',
  'Explain and compare the trade-offs of fixed versus variable rates,rates,u4',
  'What is the exchange rate today?,rates,u5',
  '"My name is Alice Smith, my email is alice@example.com, where is my card?",card,u6',
].join('\n');

const STATIC = [{ tenantId: 'default', answers: [{ id: 'ship', questions: ['Do you ship to Canada?'], answer: 'Yes, in 5 days.' }] }];

describe('plan traces', () => {
  test('CSV: the text column and the optional ones, empty texts skipped', () => {
    const trace = parseCsvTrace('Query,Tenant,Category\nhello,t1,greet\n,t1,x\nbye,,\n', 'f.csv');
    expect(trace).toEqual({ rows: [{ text: 'hello', tenant: 't1', label: 'greet' }, { text: 'bye' }], skipped: 1 });
  });

  test('JSONL: one object a line', () => {
    const trace = parseJsonlTrace('{"text":"hi","user":"u"}\n\n{"query":"yo","label":3}\n{"other":1}\n', 'f.jsonl');
    expect(trace).toEqual({ rows: [{ text: 'hi', user: 'u' }, { text: 'yo', label: '3' }], skipped: 1 });
  });

  test.each([
    ['a CSV without a text column', () => parseCsvTrace('a,b\n1,2\n', 'f.csv'), /header row must name a "text"/],
    ['a CSV without rows', () => parseCsvTrace('text\n', 'f.csv'), /no rows with a text/],
    ['a JSONL line that is not JSON', () => parseJsonlTrace('{"text":"a"}\nnope\n', 'f.jsonl'), /f.jsonl line 2 is not JSON/],
  ])('rejects %s', (_name, read, error) => {
    expect(read).toThrow(CliError);
    expect(read).toThrow(error);
  });
});

describe('replayTrace', () => {
  test('counts static and exact hits, routes misses with the classifier, flags personal questions', async () => {
    const { rows } = parseCsvTrace(CSV, 'fixture.csv');
    const replay = await replayTrace(rows, { tiers: TIERS, staticAnswers: STATIC });
    expect(replay.outcomes).toHaveLength(6);
    const levels = replay.outcomes.map((o) => o.level ?? `tier:${o.tier}`).sort();
    // The two PIN questions normalize alike: whichever comes second is an exact hit.
    expect(levels).toEqual(['exact', 'static', 'tier:medium', 'tier:small', 'tier:small', 'tier:small']);
    expect(replay.outcomes.filter((o) => o.personal)).toHaveLength(1);
    expect(replay).toMatchObject({ exactCache: true, semanticCache: false, staticAnswers: true });
  });

  test('without the exact cache the repeat goes to a model', async () => {
    const { rows } = parseCsvTrace(CSV, 'fixture.csv');
    const replay = await replayTrace(rows, { tiers: TIERS, exactCache: false });
    expect(replay.outcomes.filter((o) => o.level)).toHaveLength(0);
  });

  test('the semantic cache answers a paraphrase with the embedder given', async () => {
    // Two questions that embed alike (same vector), one apart.
    const embedder: Embedder = {
      modelId: 'test',
      dimensions: 2,
      embed: async (texts) => texts.map((t) => new Float32Array(/card/.test(t) ? [1, 0] : [0, 1])),
    };
    const rows = [{ text: 'How can I activate my card?', label: 'a' }, { text: 'How do I activate the card?', label: 'a' }, { text: 'Bye', label: 'b' }];
    const replay = await replayTrace(rows, { tiers: TIERS, embedder, seed: 3 });
    expect(replay.outcomes.map((o) => o.level ?? 'miss').sort()).toEqual(['miss', 'miss', 'semantic']);
  });

  test('the same seed replays in the same order', async () => {
    const { rows } = parseCsvTrace(CSV, 'fixture.csv');
    const a = await replayTrace(rows, { tiers: TIERS, seed: 7 });
    const b = await replayTrace(rows, { tiers: TIERS, seed: 7 });
    expect(a.outcomes).toEqual(b.outcomes);
  });

  test('rejects thresholds that do not fit the tiers', async () => {
    await expect(replayTrace([{ text: 'x' }], { tiers: TIERS, classifierThresholds: [0.2] })).rejects.toThrow(/needs 2 value\(s\) for 3 tiers/);
  });
});

describe('measurePhase', () => {
  const replay: PlanReplay = {
    exactCache: true,
    semanticCache: true,
    staticAnswers: true,
    outcomes: [
      { tier: 'small', personal: false, inputTokens: 10 },
      { level: 'static', personal: false, inputTokens: 5 },
      { tier: 'small', personal: true, inputTokens: 30 },
      { level: 'semantic', personal: false, inputTokens: 7 },
    ],
  };

  test('repeats of a sampled row: static stays static, others become exact hits, personal ones reach the tier again', () => {
    const R = 1_000_000;
    const m = measurePhase(replay, ['small', 'large'], 100_000, R);
    const rep = (R - 4) / 4;
    expect(m.hitRate.static).toBeCloseTo((1 + rep) / R, 12);
    expect(m.hitRate.exact).toBeCloseTo((2 * rep) / R, 12);
    expect(m.hitRate.semantic).toBeCloseTo(1 / R, 12);
    expect(m.tierShare).toEqual({ small: expect.closeTo((2 + rep) / R, 12), large: 0 });
    expect(Object.values(m.hitRate).concat(Object.values(m.tierShare)).reduce((a, b) => a + b)).toBeCloseTo(1, 12);
    // Mean question tokens of the model calls: 1 × 10 and (1 + rep) × 30
    expect(m.meanInputTokens).toBeCloseTo((10 + (1 + rep) * 30) / (2 + rep), 10);
  });

  test('a phase smaller than the trace sees only the first rows drawn', () => {
    // 2 draws from 4 rows: 1.75 distinct expected, rounded to 2: the first two outcomes, no repeats.
    const m = measurePhase(replay, ['small'], 1, 2);
    expect(m.hitRate).toEqual({ static: 0.5, exact: 0, semantic: 0 });
    expect(m.tierShare).toEqual({ small: 0.5 });
  });

  test('tokens are a quarter of the characters, rounded up', () => {
    expect(estimateTokens('abcd')).toBe(1);
    expect(estimateTokens('abcde')).toBe(2);
  });
});
