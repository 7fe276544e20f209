import { AiMetricNames as M } from '../../constructs/contract/metrics';
import { EmfWriter } from '../../lambdas/adapters/emf-metrics';
import type { MetricUnit } from '../../lambdas/core/ports';
import { parseEmf, type EmfMetric } from '../support/lambda-harness';

function writer(): { w: EmfWriter; out: string[] } {
  const out: string[] = [];
  return { w: new EmfWriter({ serviceName: 'svc', write: (t) => out.push(t), now: () => 1_800_000_000_000 }), out };
}

const lines = (out: string[]): string[] => out.join('').split('\n').filter(Boolean).map((l) => `${l}\n`);

/** Sum of every published series, keyed by name and dimensions. */
function series(metrics: EmfMetric[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of metrics) {
    const key = `${m.name} ${JSON.stringify(Object.entries(m.dimensions).sort())}`;
    out[key] = (out[key] ?? 0) + m.values.reduce((a, b) => a + b, 0);
  }
  return out;
}

type Rec = [string, MetricUnit, number, Record<string, string>?];

function expected(records: Rec[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, , value, dims = {}] of records) {
    const key = `${name} ${JSON.stringify(Object.entries({ service: 'svc', ...dims }).sort())}`;
    out[key] = (out[key] ?? 0) + value;
  }
  return out;
}

function emit(records: Rec[], properties?: Record<string, unknown>): string[] {
  const { w, out } = writer();
  const r = w.recorder();
  for (const [name, unit, value, dims] of records) r.add(name, unit, value, dims);
  r.flush(properties);
  // One write per flush.
  expect(out.length).toBeLessThanOrEqual(1);
  return lines(out);
}

const TIER = { [M.DIMENSION_TIER]: 'small' };
const A_MODEL_ANSWER: Rec[] = [
  [M.REQUESTS, 'Count', 1],
  [M.CACHE_MISSES, 'Count', 1, { [M.DIMENSION_CACHE_LEVEL]: 'exact' }],
  [M.MODEL_INVOCATIONS, 'Count', 1, TIER],
  [M.MODEL_LATENCY, 'Milliseconds', 412, TIER],
  [M.INPUT_TOKENS, 'Count', 1_200, TIER],
  [M.OUTPUT_TOKENS, 'Count', 300, TIER],
  [M.COST_USD, 'None', 0.000084, TIER],
  [M.COST_USD, 'None', 0.000084],
  [M.LATENCY, 'Milliseconds', 430, { [M.DIMENSION_SERVED_BY]: 'model' }],
];

test('a request answered by a model is one EMF document with one directive per dimension set list', () => {
  const docs = emit(A_MODEL_ANSWER, { message: 'request', status: 200 });
  expect(docs).toHaveLength(1);
  const doc = JSON.parse(docs[0]);
  expect(doc).toMatchObject({ message: 'request', status: 200, service: 'svc', Tier: 'small', CacheLevel: 'exact', ServedBy: 'model', CostUsd: 0.000084 });
  expect(doc._aws.Timestamp).toBe(1_800_000_000_000);
  expect(doc._aws.CloudWatchMetrics.every((d: { Namespace: string }) => d.Namespace === M.NAMESPACE)).toBe(true);
  // CostUsd: one value, published per service and per tier.
  const cost = doc._aws.CloudWatchMetrics.find((d: { Metrics: Array<{ Name: string }> }) => d.Metrics.some((m) => m.Name === M.COST_USD));
  expect(cost.Dimensions).toEqual([['service', 'Tier'], ['service']]);
  expect(series(parseEmf(docs))).toEqual(expected(A_MODEL_ANSWER));
});

test('one dimension with two values (two levels missed, a fallback) needs a document per value; every series keeps its value', () => {
  const records: Rec[] = [
    [M.REQUESTS, 'Count', 1],
    [M.CACHE_MISSES, 'Count', 1, { [M.DIMENSION_CACHE_LEVEL]: 'static' }],
    [M.CACHE_MISSES, 'Count', 1, { [M.DIMENSION_CACHE_LEVEL]: 'exact' }],
    [M.CACHE_MISSES, 'Count', 1, { [M.DIMENSION_CACHE_LEVEL]: 'semantic' }],
    [M.MODEL_INVOCATIONS, 'Count', 1, { [M.DIMENSION_TIER]: 'small' }],
    [M.MODEL_ERRORS, 'Count', 1, { [M.DIMENSION_TIER]: 'small', [M.DIMENSION_ERROR_KIND]: 'throttled' }],
    [M.FALLBACKS, 'Count', 1, { [M.DIMENSION_TIER]: 'small' }],
    [M.MODEL_INVOCATIONS, 'Count', 1, { [M.DIMENSION_TIER]: 'medium' }],
    [M.COST_USD, 'None', 0.002, { [M.DIMENSION_TIER]: 'medium' }],
    [M.COST_USD, 'None', 0.002],
  ];
  const docs = emit(records);
  expect(docs).toHaveLength(3);
  expect(series(parseEmf(docs))).toEqual(expected(records));
});

test('samples of one series are one array of values; different values of a name under different dimensions are kept apart', () => {
  const records: Rec[] = [
    [M.MODEL_LATENCY, 'Milliseconds', 10, TIER],
    [M.MODEL_LATENCY, 'Milliseconds', 20, TIER],
    [M.COST_USD, 'None', 0.5, TIER],
    [M.COST_USD, 'None', 0.7],
  ];
  const docs = emit(records);
  const parsed = parseEmf(docs);
  expect(parsed.filter((m) => m.name === M.MODEL_LATENCY)).toEqual([expect.objectContaining({ values: [10, 20] })]);
  expect(series(parsed)).toEqual(expected(records));
});

test('any mix of records reads back as exactly the recorded series', () => {
  let seed = 7;
  const rand = (n: number): number => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) % n);
  const names = [M.CACHE_MISSES, M.CACHE_ERRORS, M.COST_USD, M.MODEL_INVOCATIONS];
  const dims: Array<Record<string, string>> = [{}, { CacheLevel: 'exact' }, { CacheLevel: 'semantic' }, { Tier: 'small' }, { Tier: 'large' }, { Tier: 'small', ErrorKind: 'timeout' }];
  for (let round = 0; round < 50; round++) {
    const records: Rec[] = Array.from({ length: 1 + rand(25) }, () => [names[rand(names.length)], 'Count', rand(3), dims[rand(dims.length)]]);
    expect(series(parseEmf(emit(records)))).toEqual(expected(records));
  }
});

test('nothing recorded: only the log fields, if any, as a plain line', () => {
  expect(emit([])).toEqual([]);
  expect(emit([], { message: 'request' }).map((l) => JSON.parse(l) as unknown)).toEqual([{ message: 'request' }]);
});

test('disabled (POWERTOOLS_METRICS_DISABLED=true) writes nothing', () => {
  const out: string[] = [];
  const w = EmfWriter.fromEnvironment('svc', { POWERTOOLS_METRICS_DISABLED: 'true' });
  (w as unknown as { write: (t: string) => void }).write = (t) => out.push(t);
  const r = w.recorder();
  r.add(M.REQUESTS, 'Count', 1);
  r.flush();
  expect(out).toEqual([]);
});

test('disabled, a recorder keeps and serializes nothing (serve runs the router so unless --emf)', () => {
  const w = EmfWriter.fromEnvironment('svc', { POWERTOOLS_METRICS_DISABLED: 'true' });
  const serialize = jest.spyOn(w, 'serialize');
  const r = w.recorder();
  r.add(M.REQUESTS, 'Count', 1);
  r.flush({ message: 'request' });
  expect(serialize).not.toHaveBeenCalled();
});

test('the same dimensions in another key order are one series', () => {
  const metrics = parseEmf(emit([['Tokens', 'Count', 1, { Tier: 'a', CacheLevel: 'exact' }], ['Tokens', 'Count', 2, { CacheLevel: 'exact', Tier: 'a' }]]));
  expect(metrics.filter((m) => m.name === 'Tokens').map((m) => m.values)).toEqual([[1, 2]]);
});

test('a series of more than 100 samples (a batch of 10,000 items) keeps every value, 100 to a document at most', () => {
  const records: Rec[] = [
    ...Array.from({ length: 250 }, (): Rec => ['Tokens', 'Count', 1, { Tier: 'a' }]),
    ...Array.from({ length: 1_000 }, (_, i): Rec => [M.MODEL_LATENCY, 'Milliseconds', i, TIER]),
  ];
  const out = emit(records);
  const metrics = parseEmf(out);
  expect(series(metrics)).toEqual(expected(records));
  expect(metrics.filter((m) => m.name === 'Tokens').reduce((n, m) => n + m.values.length, 0)).toBe(250);
  // 3 chunks of tokens (Tier a) and 10 of latencies (Tier small): a document per chunk, not per value.
  expect(out).toHaveLength(13);
});
