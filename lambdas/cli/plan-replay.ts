/**
 * The replay behind `plan`: a trace goes through the library's own cache hierarchy and router
 * decision, the modules the router Lambda runs (AnswerCaches: static answers → exact cache →
 * semantic cache with its question guard; then the HeuristicClassifier and planTiers choose the
 * tier), over embedded in-memory stores instead of Valkey (an in-memory exact cache, the
 * InMemoryVectorStore, an in-memory static answer store) and the local embedder. No AWS, no network.
 *
 * Protocol. The rows are shuffled (seeded) and replayed once, in that order, through empty caches;
 * each row is looked up and, on a miss, the answer is stored the way the router stores a model's
 * answer. The answer text stands in for a model's: the row's label when it has one (questions of
 * one label get one answer, so their answers embed alike), else the question itself.
 *
 * Phases. A phase of R requests per day is R draws, uniformly with replacement, from the T rows
 * of the trace, starting the day with empty caches (conservative: the caches' TTLs, a day for the
 * exact cache, would carry answers over from the day before). Repeats arise from the sampling:
 * the first draw of a row meets the caches as they were after the rows drawn before it, and every
 * later draw of it is answered where its first one was cached. Because the first draws of a random
 * sample come in random order, they are the first D rows of the shuffled replay, where
 * D = T(1 − (1 − 1/T)^R) is the expected number of distinct rows drawn; so one replay serves
 * every phase:
 * - a repeat of a row the first time answered by static answers is a static hit again;
 * - a repeat of any other cacheable row is an exact hit (the first answer, or the semantic hit's
 *   copy, is in the exact cache);
 * - a repeat of a personal row (personal data: cached for its asker only, and the repeat comes
 *   from another user) goes to the same tier again.
 *
 * Tokens are estimated from text: ceil(characters / 4), the usual rule of thumb for English
 * (one token is about four characters).
 */
import { createHash } from 'node:crypto';
import type { TraceRow } from './plan-trace';
import type { RouterRuntimeConfig, TierRuntimeConfig } from '../../constructs/contract/runtime-config';
import {
  DEFAULT_HNSW_EF_CONSTRUCTION, DEFAULT_HNSW_EF_SEARCH, DEFAULT_HNSW_M, DEFAULT_MAX_ENTRIES_PER_SCOPE,
  DEFAULT_SEMANTIC_TTL_SECONDS, DEFAULT_STATIC_THRESHOLD, SEMANTIC_DEFAULTS,
} from '../../constructs/contract/semantic-defaults';
import type { TrafficMeasurement } from '../../constructs/planning/cost-planner';
import { AnswerCaches, type CacheLevel } from '../core/answer-caches';
import { isPersonal } from '../core/cache-key';
import type { ChatRequest } from '../core/chat-request';
import { HeuristicClassifier, defaultThresholds, tierIndexForScore } from '../core/classifier';
import type { AnswerCache, CachedAnswer, MetricsRecorder } from '../core/ports';
import { InMemoryVectorStore } from '../core/semantic/memory-vector-store';
import type { Embedder } from '../core/semantic/ports';
import { QuestionGuard } from '../core/semantic/question-guard';
import { SemanticCache } from '../core/semantic/semantic-cache';
import { normalizeQuestion, type StaticAnswer, type StaticAnswerFile, type StaticAnswerStore } from '../core/static-answers';
import { planTiers } from '../core/tier-plan';

export const CACHE_LEVELS: readonly CacheLevel[] = ['static', 'exact', 'semantic'];

/** Estimated tokens of a text: one per four characters, rounded up. */
export function estimateTokens(text: string): number {
  return Math.ceil(text.length / 4);
}

export interface ReplayTier {
  readonly id: string;
  /** Upper bound of output tokens (the router caps a request's maxTokens to it). @default 1024 */
  readonly maxTokens?: number;
}

export interface PlanReplayOptions {
  readonly tiers: readonly ReplayTier[];
  /** Score thresholds between tiers. @default defaultThresholds(tiers.length) (the router's default) */
  readonly classifierThresholds?: readonly number[];
  /** Whether the exact cache runs (it lives in the response cache). @default true */
  readonly exactCache?: boolean;
  /** The semantic cache's embedder; absent: no semantic cache (and static answers match exactly only). */
  readonly embedder?: Embedder;
  /** Semantic threshold. @default SEMANTIC_DEFAULTS.threshold (measured with all-MiniLM-L6-v2 on banking77) */
  readonly semanticThreshold?: number;
  /** Published static answer files (the static answers loader's format). @default - no static answers */
  readonly staticAnswers?: readonly StaticAnswerFile[];
  /** Seed of the shuffle. @default 1 */
  readonly seed?: number;
  readonly onProgress?: (done: number, total: number) => void;
}

/** How the first draw of one row was answered. */
export interface RowOutcome {
  /** The cache level that answered, if one did. */
  readonly level?: CacheLevel;
  /** The tier that answered a miss. */
  readonly tier?: string;
  /** A personal question (cached for its asker only). */
  readonly personal: boolean;
  /** Estimated tokens of the question. */
  readonly inputTokens: number;
}

export interface PlanReplay {
  /** One outcome per row, in the shuffled replay order. */
  readonly outcomes: readonly RowOutcome[];
  readonly exactCache: boolean;
  readonly semanticCache: boolean;
  readonly staticAnswers: boolean;
}

/** The answer a miss stores: the row's label, else the question itself (see the module comment). */
function answerText(row: TraceRow): string {
  return row.label ?? row.text;
}

/** Every text a replay of `rows` embeds (distinct): the questions, the answers it stores, the static answers' questions. */
export function textsToEmbed(rows: readonly TraceRow[], staticAnswers: readonly StaticAnswerFile[] = []): string[] {
  return [...new Set([
    ...rows.map((r) => r.text), ...rows.map(answerText), ...staticAnswers.flatMap((f) => f.answers.flatMap((a) => a.questions)),
  ])];
}

/** Replays the rows; see the module comment. */
export async function replayTrace(rows: readonly TraceRow[], options: PlanReplayOptions): Promise<PlanReplay> {
  if (rows.length === 0) throw new Error('nothing to replay: no rows');
  if (options.tiers.length === 0) throw new Error('no tiers to route to');
  const thresholds = options.classifierThresholds ?? defaultThresholds(options.tiers.length);
  if (thresholds.length !== options.tiers.length - 1) {
    throw new Error(`classifierThresholds needs ${options.tiers.length - 1} value(s) for ${options.tiers.length} tiers; got ${thresholds.length}`);
  }
  const tiers: TierRuntimeConfig[] = options.tiers.map((t) => ({
    id: t.id, provider: 'bedrock', inputPricePer1k: 0, outputPricePer1k: 0, maxTokens: t.maxTokens ?? 1024, timeoutMs: 10_000,
  }));
  const exact = options.exactCache ?? true;
  const order = shuffle(rows, options.seed ?? 1);

  const embedder = options.embedder ? await precompute(options.embedder, textsToEmbed(order, options.staticAnswers)) : undefined;
  const guard = new QuestionGuard();
  const config: RouterRuntimeConfig = {
    tiers,
    tierHintPolicy: 'ignore',
    maxRequestBytes: 1_048_576,
    maxMessages: 50,
    tenant: { source: 'iam' },
    personalCaching: 'user',
    ...(exact ? { cache: { host: 'in-memory', port: 0, tls: false, keyPrefix: 'plan:', timeoutMs: 1_000 }, exactCache: { ttlSeconds: 86_400 } } : {}),
    ...(embedder ? {
      semanticCache: {
        embedder: { provider: 'bedrock' as const, modelId: embedder.modelId, dimensions: embedder.dimensions },
        store: { kind: 'valkey' as const, hnsw: { m: DEFAULT_HNSW_M, efConstruction: DEFAULT_HNSW_EF_CONSTRUCTION, efSearch: DEFAULT_HNSW_EF_SEARCH } },
        ...SEMANTIC_DEFAULTS,
        threshold: options.semanticThreshold ?? SEMANTIC_DEFAULTS.threshold,
        ttlSeconds: DEFAULT_SEMANTIC_TTL_SECONDS,
        maxEntriesPerScope: DEFAULT_MAX_ENTRIES_PER_SCOPE,
        // In-process: a lookup is never abandoned for time (a slow machine must not count misses).
        timeoutMs: 600_000,
      },
    } : {}),
    ...(options.staticAnswers?.length
      ? { staticAnswers: { maxAgeSeconds: 3600, ...(embedder ? { threshold: DEFAULT_STATIC_THRESHOLD } : {}) } }
      : {}),
  };
  const staticStore = options.staticAnswers?.length ? await staticAnswerStore(options.staticAnswers, embedder) : undefined;
  const caches = new AnswerCaches({
    config,
    metrics: NO_METRICS,
    guard,
    exact: exact ? new MemoryAnswerCache() : undefined,
    semantic: embedder ? new SemanticCache(embedder, new InMemoryVectorStore(), guard, config.semanticCache!) : undefined,
    staticAnswers: staticStore,
  });
  const classifier = new HeuristicClassifier();

  const outcomes: RowOutcome[] = [];
  for (let i = 0; i < order.length; i++) {
    const row = order[i];
    const request: ChatRequest = { messages: [{ role: 'user', text: row.text }] };
    const personal = isPersonal(request);
    const inputTokens = estimateTokens(row.text);
    const { hit, pending } = await caches.lookup({ caller: { tenantId: row.tenant ?? 'default', userId: row.user }, request, personal });
    if (hit) {
      outcomes.push({ level: hit.level, personal, inputTokens });
    } else {
      const classified = tierIndexForScore(classifier.classify(request).score, thresholds);
      const tier = planTiers(tiers, classified, undefined, 'ignore').attempts[0];
      const answer: CachedAnswer = {
        text: answerText(row), tierId: tier.id, usage: { inputTokens, outputTokens: 0 }, costUsd: 0, createdAt: Date.now(),
      };
      await caches.store(pending, answer);
      outcomes.push({ tier: tier.id, personal, inputTokens });
    }
    if ((i + 1) % 500 === 0 || i + 1 === order.length) options.onProgress?.(i + 1, order.length);
  }
  return { outcomes, exactCache: exact, semanticCache: embedder !== undefined, staticAnswers: staticStore !== undefined };
}

/**
 * The measurement of a phase of `requests` per day from the replay (see the module comment).
 * The hit rates always name the three levels; the tier shares name every tier.
 */
export function measurePhase(replay: PlanReplay, tierIds: readonly string[], usersPerDay: number, requests: number): TrafficMeasurement {
  const rows = replay.outcomes.length;
  if (!(requests > 0)) throw new Error(`a phase needs requests > 0; got ${requests}`);
  // Expected distinct rows among `requests` draws from `rows` rows.
  const expected = rows * (1 - Math.pow(1 - 1 / rows, requests));
  const distinct = Math.max(1, Math.min(rows, Math.round(expected), Math.floor(requests)));
  const repeats = (requests - distinct) / distinct;
  const hits: Record<string, number> = Object.fromEntries(CACHE_LEVELS.map((l) => [l, 0]));
  const served: Record<string, number> = Object.fromEntries(tierIds.map((t) => [t, 0]));
  let modelCalls = 0;
  let modelTokens = 0;
  const repeatAt = repeatLevel(replay);
  for (const o of replay.outcomes.slice(0, distinct)) {
    if (o.level) {
      hits[o.level] += 1;
      hits[o.level === 'static' || repeatAt === 'miss' ? o.level : repeatAt] += repeats;
      continue;
    }
    // A personal question is cached for its asker only: its repeats (other users) reach the tier again.
    const calls = o.personal || repeatAt === 'miss' ? 1 + repeats : 1;
    if (calls === 1) hits[repeatAt] += repeats;
    served[o.tier!] += calls;
    modelCalls += calls;
    modelTokens += calls * o.inputTokens;
  }
  const total = distinct * (1 + repeats);
  return {
    usersPerDay,
    hitRate: Object.fromEntries(Object.entries(hits).map(([k, v]) => [k, v / total])),
    tierShare: Object.fromEntries(Object.entries(served).map(([k, v]) => [k, v / total])),
    meanInputTokens: modelCalls > 0 ? modelTokens / modelCalls : 0,
  };
}

/** Where a repeat of a cached question is answered: the exact cache, else the semantic one (similarity 1). */
function repeatLevel(replay: PlanReplay): 'exact' | 'semantic' | 'miss' {
  return replay.exactCache ? 'exact' : replay.semanticCache ? 'semantic' : 'miss';
}

/** A deterministic Fisher-Yates shuffle: the i-th draw comes from the SHA-256 of the seed and i. */
function shuffle<T>(items: readonly T[], seed: number): T[] {
  const random = (i: number) => parseInt(createHash('sha256').update(`${seed}:${i}`).digest('hex').slice(0, 12), 16) / 2 ** 48;
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random(i) * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/** Embeds every distinct text up front, in batches; the router's one-text calls are then lookups. */
async function precompute(inner: Embedder, texts: readonly string[]): Promise<Embedder> {
  const distinct = [...new Set(texts)];
  const vectors = new Map<string, Float32Array>();
  for (let start = 0; start < distinct.length; start += 256) {
    const slice = distinct.slice(start, start + 256);
    const out = await inner.embed(slice);
    slice.forEach((t, k) => vectors.set(t, out[k]));
  }
  return {
    modelId: inner.modelId,
    dimensions: inner.dimensions,
    embed: async (batch, signal) => {
      const missing = batch.filter((t) => !vectors.has(t));
      if (missing.length) (await inner.embed(missing, signal)).forEach((v, k) => vectors.set(missing[k], v));
      return batch.map((t) => vectors.get(t)!);
    },
  };
}

/** The published static answers, as the loader publishes them: exact variants, and their vectors with an embedder. */
async function staticAnswerStore(files: readonly StaticAnswerFile[], embedder: Embedder | undefined) {
  const exact = new Map<string, StaticAnswer>();
  const vectors = new InMemoryVectorStore();
  const scopes = new Map<string, string>();
  for (const file of files) {
    const scope = `static:${file.tenantId}`;
    for (const answer of file.answers) {
      for (const [k, question] of answer.questions.entries()) {
        exact.set(`${file.tenantId}\u0000${normalizeQuestion(question)}`, { id: answer.id, answer: answer.answer });
        if (!embedder) continue;
        const [vector] = await embedder.embed([question]);
        await vectors.put({
          id: `${answer.id}#${k}`,
          scope,
          question,
          vector,
          answerKey: answer.id,
          createdAt: 0,
          answer: { text: answer.answer, tierId: 'static', usage: { inputTokens: 0, outputTokens: 0 }, costUsd: 0, createdAt: 0 },
        }, { ttlSeconds: 0, maxEntriesPerScope: Number.MAX_SAFE_INTEGER });
        scopes.set(file.tenantId, scope);
      }
    }
  }
  const store: StaticAnswerStore = {
    findExact: async (tenantId, normalized) => exact.get(`${tenantId}\u0000${normalized}`),
    vectorScope: async (tenantId) => scopes.get(tenantId),
  };
  return { store, ...(embedder ? { vectors: { embedder, store: vectors } } : {}) };
}

/** The exact cache in memory (a replay day is shorter than its TTL, so entries never expire here). */
class MemoryAnswerCache implements AnswerCache {
  private readonly entries = new Map<string, CachedAnswer>();

  async get(key: string): Promise<CachedAnswer | undefined> {
    return this.entries.get(key);
  }

  async set(key: string, answer: CachedAnswer): Promise<void> {
    this.entries.set(key, answer);
  }
}

const NO_METRICS: MetricsRecorder = { add: () => undefined };
