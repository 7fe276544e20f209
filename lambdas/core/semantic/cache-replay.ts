/**
 * The replay behind `eval-cache`: how often would the semantic cache answer, and how often
 * wrongly, on a stream of labelled questions?
 *
 * Protocol. The rows are replayed in order through an empty cache of one scope, with the
 * production logic ({@link SemanticCache}, {@link decide}, {@link QuestionGuard}) over an
 * {@link InMemoryVectorStore}. Each row is first looked up, then stored with its label standing
 * for its answer (answer key = label, answer text = label), hit or miss. A hit answered by an
 * entry of another label is a wrong answer.
 *
 * Because every row is stored whatever the lookup decided, the entries a row sees do not depend
 * on the threshold: one k-NN search per row serves every threshold of the sweep, and only
 * {@link decide} runs per threshold. The texts are embedded up front, in batches.
 *
 * Questions that carry personal data ({@link containsPersonalData}: "my name is Alice...") are
 * treated as the router treats them: cached for their asker only, in a scope no other row shares.
 * Such a row is neither looked up nor stored in the shared scope; it counts as a miss (outcome
 * `personal`) at every threshold, and `personal` reports how many there were.
 *
 * Each threshold is measured twice: with the full cache logic (guard and rival-answer margin),
 * and without it (plain nearest neighbour at or above the threshold: a guard that allows
 * everything, no rival can veto).
 */
import { InMemoryVectorStore } from './memory-vector-store';
import { containsPersonalData } from '../personal-data';
import type { Embedder } from './ports';
import { type GuardVerdict, type PairGuard, QuestionGuard } from './question-guard';
import { SEMANTIC_DEFAULTS } from '../../../constructs/contract/semantic-defaults';
import type { CachedAnswer } from '../ports';
import { SemanticCache, decide, semanticScope } from './semantic-cache';

/** One question of the replayed traffic and its label (questions of one label share one answer). */
export interface LabelledRow {
  readonly text: string;
  readonly label: string;
  /** Where the row came from (a file name); the report breaks the chosen thresholds down by it. */
  readonly source?: string;
}

export interface ReplayOptions {
  /** Thresholds to sweep. @default {@link DEFAULT_SWEEP} (0.70 to 0.98, step 0.01) */
  readonly thresholds?: readonly number[];
  /** The chosen threshold. @default - the recommended one */
  readonly threshold?: number;
  /** Largest acceptable wrongHitRate for the recommendation. @default 0.01 */
  readonly target?: number;
  /** @default SEMANTIC_DEFAULTS.margin */
  readonly margin?: number;
  /** @default SEMANTIC_DEFAULTS.rivalSupport */
  readonly rivalSupport?: number;
  /** @default SEMANTIC_DEFAULTS.neighbours */
  readonly neighbours?: number;
  /** @default new QuestionGuard() (the production default) */
  readonly guard?: PairGuard;
  /** Texts per call to the embedder. @default 256 */
  readonly embedBatchSize?: number;
  /** Called as texts are embedded and rows replayed. */
  readonly onProgress?: (phase: 'embed' | 'replay', done: number, total: number) => void;
}

export interface ReplayRates {
  readonly hits: number;
  /** Hits answered by an entry of another label. */
  readonly wrongHits: number;
  /** hits / rows */
  readonly hitRate: number;
  /** wrongHits / rows */
  readonly wrongHitRate: number;
}

export interface SweepPoint extends ReplayRates {
  readonly threshold: number;
  readonly withoutGuard: ReplayRates;
}

/** Rates of the rows of one source at the chosen thresholds. */
export interface SourceReport extends ReplayRates {
  readonly source: string;
  readonly rows: number;
  readonly withoutGuard: ReplayRates;
}

export interface ReplayReport extends ReplayRates {
  readonly rows: number;
  readonly labels: number;
  /** Rows whose label occurred earlier: the highest hitRate any cache can reach on this traffic. */
  readonly ceiling: number;
  /** Rows whose question carries personal data: cached for their asker only, so never a hit here. */
  readonly personal: number;
  readonly model: string;
  readonly dimensions: number;
  readonly margin: number;
  readonly rivalSupport: number;
  readonly neighbours: number;
  readonly target: number;
  /** The chosen threshold (with the guard): `options.threshold`, else the recommended one, else the highest swept. */
  readonly threshold: number;
  /** Highest-hitRate swept threshold whose wrongHitRate is within `target`; null if none is. */
  readonly recommendedThreshold: number | null;
  /** How the lookups ended at the chosen threshold: `hit`, `below-threshold`, `ambiguous`, `guard:<reason>`, `empty`. */
  readonly outcomes: Readonly<Record<string, number>>;
  /** Plain nearest neighbour, at its own chosen threshold (`options.threshold`, else its own recommendation). */
  readonly withoutGuard: ReplayRates & {
    readonly threshold: number;
    readonly recommendedThreshold: number | null;
    /** Without the guard at the threshold chosen with it. */
    readonly atGuardThreshold: ReplayRates;
  };
  /** One entry per distinct `source` of the rows, in order of appearance. */
  readonly sources: readonly SourceReport[];
  readonly sweep: readonly SweepPoint[];
  readonly timings: { readonly embedSeconds: number; readonly replaySeconds: number };
}

/** 0.70, 0.71, ..., 0.98. */
export const DEFAULT_SWEEP: readonly number[] = Array.from({ length: 29 }, (_, i) => (70 + i) / 100);

/**
 * Replays `rows` through an empty semantic cache and reports hit and wrong-hit rates per
 * threshold, with and without the guard. See the module comment for the protocol.
 */
export async function replayCache(rows: readonly LabelledRow[], embedder: Embedder, options: ReplayOptions = {}): Promise<ReplayReport> {
  const sweep = [...(options.thresholds ?? DEFAULT_SWEEP)];
  const target = options.target ?? 0.01;
  const margin = options.margin ?? SEMANTIC_DEFAULTS.margin;
  const rivalSupport = options.rivalSupport ?? SEMANTIC_DEFAULTS.rivalSupport;
  const neighbours = options.neighbours ?? SEMANTIC_DEFAULTS.neighbours;
  if (rows.length === 0) throw new Error('nothing to replay: no rows');
  if (sweep.length === 0) throw new Error('no thresholds to sweep');
  for (const t of [...sweep, ...(options.threshold === undefined ? [] : [options.threshold])]) {
    if (!(t >= -1 && t <= 1)) throw new Error(`threshold ${t} is not a cosine similarity in [-1, 1]`);
  }
  if (!(target >= 0 && target <= 1)) throw new Error(`target ${target} is not a rate in [0, 1]`);
  if (!(margin >= 0)) throw new Error(`margin ${margin} must be >= 0`);
  if (!(rivalSupport >= 1)) throw new Error(`rivalSupport ${rivalSupport} must be >= 1`);
  if (!(Number.isInteger(neighbours) && neighbours >= 1)) throw new Error(`neighbours ${neighbours} must be a positive integer`);

  // Every threshold evaluated: the sweep, then the chosen one if it is not part of it.
  const thresholds = sweep.includes(options.threshold ?? sweep[0]) ? sweep : [...sweep, options.threshold!];

  const embedStart = performance.now();
  const vectors = await embedAll(rows.map((r) => r.text), embedder, options);
  const embedSeconds = (performance.now() - embedStart) / 1000;

  const replayStart = performance.now();
  const guard = new MemoizedGuard(options.guard ?? new QuestionGuard());
  const allowAll = new AllowAllGuard();
  const store = new InMemoryVectorStore();
  const cache = new SemanticCache(embedder, store, guard, {
    threshold: options.threshold ?? sweep[0],
    margin,
    rivalSupport,
    answerEquivalence: 1,
    neighbours,
    ttlSeconds: 0,
    maxEntriesPerScope: Number.MAX_SAFE_INTEGER,
  });
  const scope = semanticScope({ tenantId: 'eval-cache', embedderId: cache.embedderId });
  const guarded = { threshold: 0, margin, rivalSupport };
  const plain = { threshold: 0, margin: 0, rivalSupport: Number.POSITIVE_INFINITY };

  const sourceNames = [...new Set(rows.map((r) => r.source ?? ''))];
  const sourceIndex = new Map(sourceNames.map((s, i) => [s, i]));
  // counts[threshold][source] for the guarded and the plain cache
  const withGuard = thresholds.map(() => sourceNames.map(() => ({ hits: 0, wrongHits: 0 })));
  const withoutGuard = thresholds.map(() => sourceNames.map(() => ({ hits: 0, wrongHits: 0 })));
  const outcomes = thresholds.map(() => new Map<string, number>());
  const seenLabels = new Set<string>();
  let ceiling = 0;
  let personal = 0;

  for (let i = 0; i < rows.length; i++) {
    const row = rows[i];
    const s = sourceIndex.get(row.source ?? '')!;
    if (seenLabels.has(row.label)) ceiling++;
    seenLabels.add(row.label);
    if (containsPersonalData(row.text)) {
      // The router scopes it to its asker: a miss, and an entry no other row can see.
      personal++;
      for (const o of outcomes) o.set('personal', (o.get('personal') ?? 0) + 1);
    } else {
      const lookup = await cache.lookup(scope, row.text, vectors[i]);
      for (let j = 0; j < thresholds.length; j++) {
        const g = decide(row.text, lookup.neighbours, guard, { ...guarded, threshold: thresholds[j] });
        outcomes[j].set(g.outcome, (outcomes[j].get(g.outcome) ?? 0) + 1);
        count(withGuard[j][s], g.hit?.entry.answerKey, row.label);
        const p = decide(row.text, lookup.neighbours, allowAll, { ...plain, threshold: thresholds[j] });
        count(withoutGuard[j][s], p.hit?.entry.answerKey, row.label);
      }
      await cache.put(scope, row.text, lookup, answerFor(row.label), row.label);
    }
    if ((i + 1) % 500 === 0 || i + 1 === rows.length) options.onProgress?.('replay', i + 1, rows.length);
  }
  const replaySeconds = (performance.now() - replayStart) / 1000;

  const total = (perSource: Array<{ hits: number; wrongHits: number }>): ReplayRates =>
    rates(perSource.reduce((a, b) => ({ hits: a.hits + b.hits, wrongHits: a.wrongHits + b.wrongHits }), { hits: 0, wrongHits: 0 }), rows.length);
  const points: SweepPoint[] = sweep.map((threshold, j) => ({ threshold, ...total(withGuard[j]), withoutGuard: total(withoutGuard[j]) }));
  const recommendedThreshold = recommend(points, target);
  const recommendedWithoutGuard = recommend(points.map((p) => ({ threshold: p.threshold, ...p.withoutGuard })), target);
  const highest = Math.max(...sweep);
  const chosen = options.threshold ?? recommendedThreshold ?? highest;
  const chosenWithoutGuard = options.threshold ?? recommendedWithoutGuard ?? highest;
  const jg = thresholds.indexOf(chosen);
  const jp = thresholds.indexOf(chosenWithoutGuard);
  const rowsPerSource = sourceNames.map((name) => rows.filter((r) => (r.source ?? '') === name).length);

  return {
    rows: rows.length,
    labels: seenLabels.size,
    ceiling: ceiling / rows.length,
    personal,
    model: embedder.modelId,
    dimensions: embedder.dimensions,
    margin,
    rivalSupport,
    neighbours,
    target,
    threshold: chosen,
    ...total(withGuard[jg]),
    recommendedThreshold,
    outcomes: Object.fromEntries([...outcomes[jg]].sort((a, b) => b[1] - a[1])),
    withoutGuard: {
      threshold: chosenWithoutGuard,
      ...total(withoutGuard[jp]),
      recommendedThreshold: recommendedWithoutGuard,
      atGuardThreshold: total(withoutGuard[jg]),
    },
    sources: sourceNames.map((source, s) => ({
      source,
      rows: rowsPerSource[s],
      ...rates(withGuard[jg][s], rowsPerSource[s]),
      withoutGuard: rates(withoutGuard[jp][s], rowsPerSource[s]),
    })),
    sweep: points,
    timings: { embedSeconds, replaySeconds },
  };
}

/**
 * The threshold with the highest hitRate whose wrongHitRate is within `target` (the higher
 * threshold on a tie); null if there is none.
 */
export function recommend(points: ReadonlyArray<{ threshold: number; hitRate: number; wrongHitRate: number }>, target: number): number | null {
  let best: { threshold: number; hitRate: number } | undefined;
  for (const p of points) {
    if (p.wrongHitRate > target) continue;
    if (!best || p.hitRate > best.hitRate || (p.hitRate === best.hitRate && p.threshold > best.threshold)) best = p;
  }
  return best?.threshold ?? null;
}

/** Embeds the distinct texts in batches; returns one vector per text, in order. */
async function embedAll(texts: readonly string[], embedder: Embedder, options: ReplayOptions): Promise<Float32Array[]> {
  const distinct = [...new Set(texts)];
  const batch = Math.max(1, options.embedBatchSize ?? 256);
  const byText = new Map<string, Float32Array>();
  for (let start = 0; start < distinct.length; start += batch) {
    const slice = distinct.slice(start, start + batch);
    const vectors = await embedder.embed(slice);
    if (vectors.length !== slice.length) throw new Error(`embedder returned ${vectors.length} vectors for ${slice.length} texts`);
    vectors.forEach((v, k) => {
      if (v.length !== embedder.dimensions) throw new Error(`embedder returned ${v.length} dimensions, expected ${embedder.dimensions}`);
      byText.set(slice[k], v);
    });
    options.onProgress?.('embed', Math.min(start + batch, distinct.length), distinct.length);
  }
  return texts.map((t) => byText.get(t)!);
}

function count(into: { hits: number; wrongHits: number }, answerKey: string | undefined, label: string): void {
  if (answerKey === undefined) return;
  into.hits++;
  if (answerKey !== label) into.wrongHits++;
}

function rates(c: { hits: number; wrongHits: number }, rows: number): ReplayRates {
  return { hits: c.hits, wrongHits: c.wrongHits, hitRate: rows ? c.hits / rows : 0, wrongHitRate: rows ? c.wrongHits / rows : 0 };
}

/** The label stands for the answer. */
function answerFor(label: string): CachedAnswer {
  return { text: label, tierId: 'eval-cache', usage: { inputTokens: 0, outputTokens: 0 }, costUsd: 0, createdAt: 0 };
}

/**
 * The production guard, remembering its verdicts for the current query: the sweep asks it about
 * the same pairs once per threshold.
 */
class MemoizedGuard implements PairGuard {
  private query?: string;
  private readonly verdicts = new Map<string, GuardVerdict>();

  constructor(private readonly inner: PairGuard) {}

  compare(query: string, cached: string): GuardVerdict {
    if (query !== this.query) {
      this.query = query;
      this.verdicts.clear();
    }
    let verdict = this.verdicts.get(cached);
    if (!verdict) this.verdicts.set(cached, (verdict = this.inner.compare(query, cached)));
    return verdict;
  }
}

/** "Without the guard": every pair is allowed. */
class AllowAllGuard implements PairGuard {
  compare(): GuardVerdict {
    return { allowed: true };
  }
}
