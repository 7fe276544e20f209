import { SEMANTIC_DEFAULTS } from '../../constructs/contract/semantic-defaults';
import { CliError } from '../../lambdas/cli/errors';
import { formatReport, parseEvalCacheArgs } from '../../lambdas/cli/eval-cache';
import { replayCache } from '../../lambdas/core/semantic/cache-replay';

describe('parseEvalCacheArgs', () => {
  test('defaults: minilm, the production cache settings, target 1%, sweep 0.70..0.98', () => {
    const args = parseEvalCacheArgs(['--queries', 'a.csv', '--queries', 'b.csv']);
    expect(args).toMatchObject({
      queries: ['a.csv', 'b.csv'],
      embedder: 'minilm',
      threshold: undefined,
      target: 0.01,
      margin: SEMANTIC_DEFAULTS.margin,
      rivalSupport: SEMANTIC_DEFAULTS.rivalSupport,
      neighbours: SEMANTIC_DEFAULTS.neighbours,
      json: false,
    });
    expect(args.sweep).toHaveLength(29);
    expect(args.sweep[0]).toBe(0.7);
    expect(args.sweep[28]).toBe(0.98);
  });

  test('flags override', () => {
    const args = parseEvalCacheArgs(['--queries=a.csv', '--threshold', '0.85', '--target', '0.02', '--margin', '0.1',
      '--rival-support', '3', '--neighbours', '10', '--embedder', 'titan', '--dimensions', '512', '--region', 'eu-west-1', '--json']);
    expect(args).toMatchObject({ threshold: 0.85, target: 0.02, margin: 0.1, rivalSupport: 3, neighbours: 10, embedder: 'titan', dimensions: 512, region: 'eu-west-1', json: true });
  });

  test('--sweep FROM:TO:STEP gives exact two-decimal thresholds', () => {
    const sweep = parseEvalCacheArgs(['--queries', 'a.csv', '--sweep', '0.7:0.9:0.05']).sweep;
    expect(sweep).toEqual([0.7, 0.75, 0.8, 0.85, 0.9]);
    expect(parseEvalCacheArgs(['--queries', 'a.csv', '--sweep', '0.70:0.98:0.01']).sweep).toContain(0.82);
  });

  test.each([
    [['--threshold', '0.8'], '--queries FILE.csv is required'],
    [['--queries', 'a.csv', '--embedder', 'openai'], 'unknown embedder "openai": use minilm or titan'],
    [['--queries', 'a.csv', '--threshold', 'high'], '--threshold must be a number from 0 to 1; got "high"'],
    [['--queries', 'a.csv', '--threshold', '1.2'], '--threshold must be a number from 0 to 1; got "1.2"'],
    [['--queries', 'a.csv', '--threshold', ''], '--threshold must be a number from 0 to 1; got ""'],
    [['--queries', 'a.csv', '--target=-0.1'], '--target must be a number from 0 to 1'],
    [['--queries', 'a.csv', '--target', '-0.1'], "Option '--target' argument is ambiguous"],
    [['--queries', 'a.csv', '--neighbours', '2.5'], '--neighbours must be an integer >= 1'],
    [['--queries', 'a.csv', '--rival-support', '0'], '--rival-support must be an integer >= 1'],
    [['--queries', 'a.csv', '--sweep', '0.9:0.7:0.01'], '--sweep needs FROM <= TO'],
    [['--queries', 'a.csv', '--sweep', '0.7-0.9'], '--sweep must be FROM:TO:STEP'],
    [['--queries', 'a.csv', '--embedder', 'titan', '--dimensions', '384'], '--dimensions must be 256, 512, 1024'],
    [['--queries', 'a.csv', '--dimensions', '512'], '--dimensions applies to --embedder titan only'],
    [['--queries', 'a.csv', '--frobnicate'], "Unknown option '--frobnicate'"],
    [['--queries', 'a.csv', 'extra'], 'Unexpected argument'],
  ])('%j is rejected', (argv, message) => {
    expect(() => parseEvalCacheArgs(argv)).toThrow(CliError);
    expect(() => parseEvalCacheArgs(argv)).toThrow(message);
  });

  test('--help needs no --queries', () => {
    expect(parseEvalCacheArgs(['--help']).help).toBe(true);
    expect(parseEvalCacheArgs(['-h']).help).toBe(true);
  });
});

describe('formatReport', () => {
  test('prints the sweep, marks the chosen thresholds and the numbers at them', async () => {
    const v = (x: number, y: number) => Float32Array.of(x, y);
    const table = new Map([['where is my parcel', v(1, 0)], ['my parcel has not come', v(0.95, Math.sqrt(1 - 0.95 ** 2))]]);
    const report = await replayCache(
      [{ text: 'where is my parcel', label: 'a' }, { text: 'my parcel has not come', label: 'a' }],
      { modelId: 'm', dimensions: 2, embed: async (texts) => texts.map((t) => table.get(t)!) },
      { thresholds: [0.9, 0.97] },
    );
    const { model, ...rest } = report;
    const text = formatReport({ embedder: 'minilm', model, files: ['x.csv'], skipped: 0, ...rest });
    expect(text).toContain('0.90       50.00%   0.00%    50.00%   0.00%  < chosen with guard, < chosen without guard');
    expect(text).toContain('recommended threshold: 0.90');
    expect(text).toContain('with the guard at 0.90:    hitRate 50.00%, wrongHitRate 0.00% (1 hits, 0 wrong)');
  });
});
