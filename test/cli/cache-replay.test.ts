import { SEMANTIC_DEFAULTS } from '../../constructs/contract/semantic-defaults';
import { DEFAULT_SWEEP, type LabelledRow, type ReplayReport, type SweepPoint, recommend, replayCache } from '../../lambdas/core/semantic/cache-replay';
import type { Embedder } from '../../lambdas/core/semantic/ports';
import { QuestionGuard } from '../../lambdas/core/semantic/question-guard';

const DIMS = 16;

/** Unit vector along axis `i`. */
function axis(i: number): Float32Array {
  const v = new Float32Array(DIMS);
  v[i] = 1;
  return v;
}

/** A unit vector whose cosine with axis `i` is `cos` (the rest along axis `j`). */
function near(i: number, j: number, cos: number): Float32Array {
  const v = new Float32Array(DIMS);
  v[i] = cos;
  v[j] = Math.sqrt(1 - cos * cos);
  return v;
}

/** An embedder that knows the vector of every text of the test, and counts its calls. */
class TableEmbedder implements Embedder {
  readonly modelId = 'test/table';
  readonly dimensions = DIMS;
  readonly calls: string[][] = [];
  constructor(private readonly table: ReadonlyMap<string, Float32Array>) {}

  async embed(texts: string[]): Promise<Float32Array[]> {
    this.calls.push(texts);
    return texts.map((t) => {
      const v = this.table.get(t);
      if (!v) throw new Error(`no vector for "${t}"`);
      return v;
    });
  }
}

interface Row extends LabelledRow {
  readonly vector: Float32Array;
}

function setup(rows: Row[]): { rows: LabelledRow[]; embedder: TableEmbedder } {
  return {
    rows: rows.map(({ text, label, source }) => ({ text, label, source })),
    embedder: new TableEmbedder(new Map(rows.map((r) => [r.text, r.vector]))),
  };
}

function at(report: ReplayReport, threshold: number): SweepPoint {
  const point = report.sweep.find((p) => p.threshold === threshold);
  if (!point) throw new Error(`threshold ${threshold} not swept`);
  return point;
}

describe('replayCache', () => {
  // q0 (alpha) is first: a miss. q1 (alpha) sits at 0.95 of q0: a right hit up to 0.95.
  // q2 (beta) sits at 0.90 of q0 and 0.855 of q1: a wrong hit (answered with alpha) up to 0.90.
  // q3 (gamma) is orthogonal to all: a miss.
  const basic = setup([
    { text: 'where is my parcel', label: 'alpha', vector: axis(0) },
    { text: 'my parcel has not come', label: 'alpha', vector: near(0, 1, 0.95) },
    { text: 'the parcel is broken', label: 'beta', vector: near(0, 2, 0.9) },
    { text: 'what are your hours', label: 'gamma', vector: axis(3) },
  ]);

  test('counts hits and wrong hits per threshold over all rows', async () => {
    const report = await replayCache(basic.rows, basic.embedder, { thresholds: [0.8, 0.92, 0.97] });

    expect(report.rows).toBe(4);
    expect(report.labels).toBe(3);
    expect(at(report, 0.8)).toMatchObject({ hits: 2, wrongHits: 1, hitRate: 0.5, wrongHitRate: 0.25 });
    expect(at(report, 0.92)).toMatchObject({ hits: 1, wrongHits: 0, hitRate: 0.25, wrongHitRate: 0 });
    expect(at(report, 0.97)).toMatchObject({ hits: 0, wrongHits: 0, hitRate: 0, wrongHitRate: 0 });
    // With one entry per label there is no rival and no contrast: both paths agree.
    for (const p of report.sweep) {
      expect(p.withoutGuard).toEqual({ hits: p.hits, wrongHits: p.wrongHits, hitRate: p.hitRate, wrongHitRate: p.wrongHitRate });
    }
    // q1 is the only row whose label occurred before.
    expect(report.ceiling).toBe(0.25);
  });

  test('recommends the highest hitRate within the target and reports it as the chosen threshold', async () => {
    const strict = await replayCache(basic.rows, basic.embedder, { thresholds: [0.8, 0.92, 0.97] });
    expect(strict.target).toBe(0.01);
    expect(strict.recommendedThreshold).toBe(0.92);
    expect(strict).toMatchObject({ threshold: 0.92, hits: 1, wrongHits: 0, hitRate: 0.25, wrongHitRate: 0 });
    expect(strict.withoutGuard).toMatchObject({ threshold: 0.92, recommendedThreshold: 0.92, hitRate: 0.25 });

    const lenient = await replayCache(basic.rows, basic.embedder, { thresholds: [0.8, 0.92, 0.97], target: 0.25 });
    expect(lenient.recommendedThreshold).toBe(0.8);
    expect(lenient).toMatchObject({ threshold: 0.8, hitRate: 0.5, wrongHitRate: 0.25 });
  });

  test('--threshold makes X the chosen threshold; the sweep and the recommendation stay', async () => {
    const report = await replayCache(basic.rows, basic.embedder, { thresholds: [0.8, 0.92, 0.97], threshold: 0.85 });

    expect(report.threshold).toBe(0.85);
    expect(report).toMatchObject({ hits: 2, wrongHits: 1 }); // 0.85 is below q2's 0.90: it is a wrong hit
    expect(report.recommendedThreshold).toBe(0.92);
    expect(report.sweep.map((p) => p.threshold)).toEqual([0.8, 0.92, 0.97]);
    expect(report.withoutGuard.threshold).toBe(0.85);
    expect(report.withoutGuard).toMatchObject({ hits: 2, wrongHits: 1 });
  });

  test('no threshold within the target: no recommendation, the highest swept threshold is reported', async () => {
    const report = await replayCache(basic.rows, basic.embedder, { thresholds: [0.8, 0.85], target: 0.1 });
    expect(report.recommendedThreshold).toBeNull();
    expect(report.threshold).toBe(0.85);
    expect(report.wrongHitRate).toBe(0.25);
  });

  test('a label answers only its own questions: identical questions under two labels are a wrong hit', async () => {
    // Two labels in orthogonal subspaces, five paraphrases each, interleaved; then a question
    // asked again under another label.
    const rows: Row[] = [];
    for (let k = 0; k < 5; k++) {
      rows.push({ text: `how do i order a pizza ${'please '.repeat(k)}`.trim(), label: 'pizza', vector: near(0, 1 + k, 0.97) });
      rows.push({ text: `how do i book a taxi ${'please '.repeat(k)}`.trim(), label: 'taxi', vector: near(8, 9 + k, 0.97) });
    }
    rows.push({ text: 'how do i book a cab', label: 'pizza', vector: near(8, 9, 0.97) });
    const { rows: replayed, embedder } = setup(rows);

    const report = await replayCache(replayed, embedder, { thresholds: [0.9] });

    // Paraphrases of one label are ~0.94 apart: 4 right hits per label; the last row is wrong.
    expect(at(report, 0.9)).toMatchObject({ hits: 9, wrongHits: 1 });
    expect(report.labels).toBe(2);
  });

  test('the guard vetoes "enable" / "disable" that embed identically; without the guard it is a wrong hit', async () => {
    const same = axis(5);
    const { rows, embedder } = setup([
      { text: 'how do i enable my card', label: 'enable_card', vector: same },
      { text: 'how do i disable my card', label: 'disable_card', vector: same },
    ]);

    const report = await replayCache(rows, embedder, { thresholds: [0.8] });

    expect(report).toMatchObject({ threshold: 0.8, hits: 0, wrongHits: 0 });
    expect(report.outcomes).toEqual({ 'empty': 1, 'guard:contrast:on-off': 1 });
    expect(report.withoutGuard).toMatchObject({ hits: 1, wrongHits: 1, hitRate: 0.5, wrongHitRate: 0.5 });
  });

  test('a rival answer within the margin makes the cache ask the model; without the guard the nearest answers', async () => {
    // The last question sits at 0.93 of an alpha entry and at 0.90 / 0.89 of two beta entries
    // (a rival held by 2 neighbours, within 0.12). The stored entries are < 0.85 apart.
    const { rows, embedder } = setup([
      { text: 'the fee was charged twice', label: 'beta', vector: near(0, 1, 0.9) },
      { text: 'i paid the fee two times', label: 'beta', vector: near(0, 2, 0.89) },
      { text: 'why is there a fee', label: 'alpha', vector: near(0, 3, 0.93) },
      { text: 'what is this fee', label: 'alpha', vector: axis(0) },
    ]);

    const guarded = await replayCache(rows, embedder, { thresholds: [0.85] });
    expect(guarded).toMatchObject({ hits: 0, wrongHits: 0 });
    expect(guarded.outcomes.ambiguous).toBe(1);
    expect(guarded.withoutGuard).toMatchObject({ hits: 1, wrongHits: 0 });

    // One beta neighbour too few for a rival, or a margin too small to reach it: the hit stands.
    expect(await replayCache(rows, embedder, { thresholds: [0.85], rivalSupport: 3 })).toMatchObject({ hits: 1, wrongHits: 0, rivalSupport: 3 });
    expect(await replayCache(rows, embedder, { thresholds: [0.85], margin: 0.02 })).toMatchObject({ hits: 1, wrongHits: 0, margin: 0.02 });
  });

  test('uses the production defaults unless told otherwise', async () => {
    const report = await replayCache(basic.rows, basic.embedder);
    expect(report).toMatchObject({ margin: 0.12, rivalSupport: 2, neighbours: 20 });
    expect(SEMANTIC_DEFAULTS).toMatchObject({ margin: 0.12, rivalSupport: 2, neighbours: 20 });
    expect(report.sweep.map((p) => p.threshold)).toEqual(DEFAULT_SWEEP);
    expect(DEFAULT_SWEEP).toHaveLength(29);
    expect(DEFAULT_SWEEP[0]).toBe(0.7);
    expect(DEFAULT_SWEEP[12]).toBe(0.82);
    expect(DEFAULT_SWEEP[28]).toBe(0.98);
    expect(report).toMatchObject({ model: 'test/table', dimensions: DIMS });
  });

  test('takes the guard it is given', async () => {
    const { rows, embedder } = setup([
      { text: 'pay with my iphone', label: 'apple', vector: axis(6) },
      { text: 'pay with my android', label: 'android', vector: axis(6) },
    ]);
    const vetoed = await replayCache(rows, embedder, { thresholds: [0.9] });
    expect(vetoed.outcomes['guard:contrast:platform']).toBe(1);

    const custom = new QuestionGuard({ extraContrastFamilies: [{ name: 'colour', poles: [['red'], ['blue']] }] });
    const colours = setup([
      { text: 'the red plan', label: 'red', vector: axis(7) },
      { text: 'the blue plan', label: 'blue', vector: axis(7) },
    ]);
    expect((await replayCache(colours.rows, colours.embedder, { thresholds: [0.9] })).wrongHits).toBe(1);
    expect((await replayCache(colours.rows, colours.embedder, { thresholds: [0.9], guard: custom })).outcomes['guard:contrast:colour']).toBe(1);
  });

  test('embeds each distinct text once, in batches, before the replay', async () => {
    const rows: Row[] = Array.from({ length: 10 }, (_, i) => ({ text: `question number ${'x'.repeat(i)}`, label: `l${i % 3}`, vector: axis(i) }));
    rows.push(rows[0], rows[1]); // asked again
    const { rows: replayed, embedder } = setup(rows);
    const progress: string[] = [];

    const report = await replayCache(replayed, embedder, { thresholds: [0.9], embedBatchSize: 4, onProgress: (phase, done, total) => progress.push(`${phase} ${done}/${total}`) });

    expect(embedder.calls.map((c) => c.length)).toEqual([4, 4, 2]);
    expect(progress).toEqual(['embed 4/10', 'embed 8/10', 'embed 10/10', 'replay 12/12']);
    // The repeated questions hit their own earlier copy (similarity 1).
    expect(report).toMatchObject({ rows: 12, hits: 2, wrongHits: 0 });
  });

  test('breaks the chosen thresholds down by source', async () => {
    const { rows, embedder } = setup([
      { text: 'where is my parcel', label: 'alpha', vector: axis(0), source: 'train.csv' },
      { text: 'the parcel is broken', label: 'beta', vector: near(0, 2, 0.9), source: 'train.csv' },
      { text: 'my parcel has not come', label: 'alpha', vector: near(0, 1, 0.95), source: 'test.csv' },
    ]);
    const report = await replayCache(rows, embedder, { thresholds: [0.85], target: 1 });
    expect(report.sources).toEqual([
      { source: 'train.csv', rows: 2, hits: 1, wrongHits: 1, hitRate: 0.5, wrongHitRate: 0.5, withoutGuard: { hits: 1, wrongHits: 1, hitRate: 0.5, wrongHitRate: 0.5 } },
      { source: 'test.csv', rows: 1, hits: 1, wrongHits: 0, hitRate: 1, wrongHitRate: 0, withoutGuard: { hits: 1, wrongHits: 0, hitRate: 1, wrongHitRate: 0 } },
    ]);
  });

  test('applies the router\'s personal-data rule: such a question is neither answered from nor stored in the shared scope', async () => {
    const { rows, embedder } = setup([
      { text: 'where is my parcel', label: 'alpha', vector: axis(0) },
      { text: 'my name is alice, where is my parcel', label: 'alpha', vector: near(0, 1, 0.97) },
      { text: 'my parcel has not come', label: 'alpha', vector: near(0, 2, 0.95) },
      { text: 'my name is alice and my parcel has not come', label: 'beta', vector: near(0, 3, 0.99) },
      { text: 'has my parcel not come', label: 'beta', vector: near(0, 3, 0.99) },
    ]);
    const report = await replayCache(rows, embedder, { thresholds: [0.9] });

    expect(report.personal).toBe(2);
    expect(report.outcomes).toEqual({ empty: 1, personal: 2, hit: 2 });
    // Row 2 hits row 0; row 4 hits row 0 too (wrongly: it never saw the personal row 3 of its label).
    expect(at(report, 0.9)).toMatchObject({ hits: 2, wrongHits: 1 });
  });

  test('rejects what it cannot replay', async () => {
    await expect(replayCache([], basic.embedder)).rejects.toThrow(/no rows/);
    await expect(replayCache(basic.rows, basic.embedder, { threshold: 1.5 })).rejects.toThrow(/threshold 1.5/);
    await expect(replayCache(basic.rows, basic.embedder, { neighbours: 0 })).rejects.toThrow(/neighbours/);
    const wrongSize: Embedder = { modelId: 'x', dimensions: 3, embed: async (texts) => texts.map(() => new Float32Array(4)) };
    await expect(replayCache(basic.rows, wrongSize)).rejects.toThrow(/4 dimensions, expected 3/);
  });
});

describe('recommend', () => {
  const p = (threshold: number, hitRate: number, wrongHitRate: number) => ({ threshold, hitRate, wrongHitRate });

  test('the highest hitRate within the target; the higher threshold on a tie', () => {
    expect(recommend([p(0.7, 0.8, 0.05), p(0.8, 0.6, 0.01), p(0.85, 0.6, 0.005), p(0.9, 0.4, 0)], 0.01)).toBe(0.85);
    expect(recommend([p(0.7, 0.8, 0.05), p(0.8, 0.6, 0.011)], 0.01)).toBeNull();
    expect(recommend([p(0.7, 0.8, 0.01)], 0.01)).toBe(0.7);
  });
});
