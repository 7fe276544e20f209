/**
 * Test doubles for the ports of the cache levels and the user context: a deterministic embedder
 * whose vectors the test chooses, Map-backed stores, a recording metrics recorder and a scripted
 * model invoker. Shared by the test files of test/core that exercise the caches.
 */
import type { RouterRuntimeConfig, TierRuntimeConfig } from '../../constructs/contract/runtime-config';
import { normalizeText } from '../../lambdas/core/cache-key';
import type { ChatMessage } from '../../lambdas/core/chat-request';
import { ChatService } from '../../lambdas/core/chat-service';
import type { CircuitBreaker } from '../../lambdas/core/circuit-breaker';
import type { ComplexityClassifier } from '../../lambdas/core/classifier';
import type { AnswerCache, CachedAnswer, MetricsRecorder, MetricUnit, ModelInvoker, ModelRequest, ModelResponse } from '../../lambdas/core/ports';
import { InMemoryVectorStore } from '../../lambdas/core/semantic/memory-vector-store';
import type { Embedder, SemanticEntry, StoreOptions, VectorMatch, VectorStore } from '../../lambdas/core/semantic/ports';
import { QuestionGuard } from '../../lambdas/core/semantic/question-guard';
import { SemanticCache, type SemanticCacheOptions } from '../../lambdas/core/semantic/semantic-cache';
import type { StaticAnswer, StaticAnswerStore } from '../../lambdas/core/static-answers';
import type { Spans } from '../../lambdas/core/tracing';
import type { UserContext, UserContextLimits, UserContextStore } from '../../lambdas/core/user-context';

// ---------------------------------------------------------------------------------------------
// Vectors
// ---------------------------------------------------------------------------------------------

export const DIMENSIONS = 64;

/** The unit vector along axis `i`. */
export function axis(i: number): Float32Array {
  const v = new Float32Array(DIMENSIONS);
  v[i] = 1;
  return v;
}

/**
 * A unit vector whose cosine similarity with `axis(i)` is `s`, leaning towards `axis(j)`.
 * Two blends of the same `i` towards different `j` have similarity `s1 * s2`.
 */
export function blend(i: number, j: number, s: number): Float32Array {
  const v = new Float32Array(DIMENSIONS);
  v[i] = s;
  v[j] = Math.sqrt(1 - s * s);
  return v;
}

// ---------------------------------------------------------------------------------------------
// Embedder
// ---------------------------------------------------------------------------------------------

/** Settles only when `signal` aborts (rejecting with its reason); never without a signal. */
export function untilAborted(signal: AbortSignal | undefined): Promise<never> {
  return new Promise<never>((_, reject) => {
    signal?.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}

/**
 * An embedder whose vectors the test defines per (normalized) text. A text it was not told about
 * gets an axis of its own from the top of the space (orthogonal to every other text), in the order
 * of first sight, so the outcome never depends on chance.
 */
export class TestEmbedder implements Embedder {
  readonly dimensions = DIMENSIONS;
  /** Every `embed` call, with the texts it was given. */
  readonly calls: string[][] = [];
  /** Makes every `embed` call throw. */
  failing = false;
  /** Makes every `embed` call wait until its signal aborts (forever without one). */
  hanging = false;
  /** The signal of every `embed` call (undefined: none given). */
  readonly signals: Array<AbortSignal | undefined> = [];
  private readonly vectors = new Map<string, Float32Array>();
  private nextFreeAxis = DIMENSIONS - 1;

  constructor(readonly modelId = 'test-embedder') {}

  define(text: string, vector: Float32Array): this {
    this.vectors.set(normalizeText(text), vector);
    return this;
  }

  /** The vector of a text, without counting a call (for seeding stores). */
  vectorOf(text: string): Float32Array {
    const key = normalizeText(text);
    let v = this.vectors.get(key);
    if (!v) {
      if (this.nextFreeAxis < 32) throw new Error('test bug: TestEmbedder ran out of free axes');
      v = axis(this.nextFreeAxis--);
      this.vectors.set(key, v);
    }
    return v;
  }

  async embed(texts: string[], signal?: AbortSignal): Promise<Float32Array[]> {
    this.calls.push([...texts]);
    this.signals.push(signal);
    signal?.throwIfAborted();
    if (this.hanging) await untilAborted(signal);
    if (this.failing) throw Object.assign(new Error('ThrottlingException: Rate exceeded'), { name: 'ThrottlingException' });
    return texts.map((t) => Float32Array.from(this.vectorOf(t)));
  }

  /** The texts embedded, flattened, in call order. */
  get embeddedTexts(): string[] {
    return this.calls.flat();
  }
}

// ---------------------------------------------------------------------------------------------
// Vector store
// ---------------------------------------------------------------------------------------------

/** An InMemoryVectorStore that counts its operations and can be made to fail. */
export class SpyVectorStore implements VectorStore {
  readonly inner = new InMemoryVectorStore();
  readonly searches: Array<{ scope: string; k: number }> = [];
  readonly puts: Array<{ entry: SemanticEntry; options: StoreOptions }> = [];
  failSearch = false;
  failPut = false;
  /** Makes every search wait until its signal aborts (forever without one). */
  hangSearch = false;
  /** The signal of every search and put (undefined: none given). */
  readonly signals: Array<AbortSignal | undefined> = [];
  /** Ids deleted one by one (`deleteEntry`); searches no longer find them. */
  readonly deleted: Array<{ scope: string; id: string }> = [];

  async ensureIndex(): Promise<void> {}

  async search(scope: string, vector: Float32Array, k: number, signal?: AbortSignal): Promise<VectorMatch[]> {
    this.searches.push({ scope, k });
    this.signals.push(signal);
    signal?.throwIfAborted();
    if (this.hangSearch) await untilAborted(signal);
    if (this.failSearch) throw new Error('FT.SEARCH: connection reset');
    const found = await this.inner.search(scope, vector, k + this.deleted.length);
    return found.filter((m) => !this.deleted.some((d) => d.scope === m.entry.scope && d.id === m.entry.id)).slice(0, k);
  }

  async put(entry: SemanticEntry, options: StoreOptions, signal?: AbortSignal): Promise<void> {
    this.signals.push(signal);
    signal?.throwIfAborted();
    if (this.failPut) throw new Error('HSET: connection reset');
    this.puts.push({ entry, options });
    return this.inner.put(entry, options);
  }

  async deleteScope(scope: string): Promise<void> {
    return this.inner.deleteScope(scope);
  }

  async deleteEntry(scope: string, id: string): Promise<boolean> {
    const live = this.puts.some((p) => p.entry.scope === scope && p.entry.id === id) && !this.deleted.some((d) => d.scope === scope && d.id === id);
    if (live) this.deleted.push({ scope, id });
    return live;
  }

  /** Scopes that received entries. */
  get scopes(): string[] {
    return [...new Set(this.puts.map((p) => p.entry.scope))];
  }
}

// ---------------------------------------------------------------------------------------------
// Exact cache
// ---------------------------------------------------------------------------------------------

export class MapAnswerCache implements AnswerCache {
  /** A breaker for the exact level, as the router attaches one. */
  breaker?: CircuitBreaker;
  readonly entries = new Map<string, CachedAnswer>();
  readonly gets: string[] = [];
  readonly sets: Array<{ key: string; answer: CachedAnswer; ttlSeconds: number }> = [];
  failGet = false;
  failSet = false;
  /** Every `evict` call. */
  readonly evicts: Array<{ key: string; answerId: string }> = [];

  async get(key: string): Promise<CachedAnswer | undefined> {
    this.gets.push(key);
    if (this.failGet) throw new Error('connect ECONNREFUSED 10.0.0.1:6379');
    return this.entries.get(key);
  }

  async set(key: string, value: CachedAnswer, ttlSeconds: number): Promise<void> {
    if (this.failSet) throw new Error('Command timed out');
    this.sets.push({ key, answer: value, ttlSeconds });
    this.entries.set(key, value);
  }

  async deleteByPrefix(prefix: string): Promise<void> {
    for (const key of [...this.entries.keys()]) if (key.startsWith(prefix)) this.entries.delete(key);
  }

  async evict(key: string, answerId: string): Promise<boolean> {
    this.evicts.push({ key, answerId });
    if (this.entries.get(key)?.id !== answerId) return false;
    return this.entries.delete(key);
  }
}

// ---------------------------------------------------------------------------------------------
// Static answers
// ---------------------------------------------------------------------------------------------

/**
 * Static answers of tenants: exact variants on a Map, and (with an embedder) the variants as
 * entries of a vector store, the way the loader publishes them (answer key = answer id).
 */
export class MapStaticAnswerStore implements StaticAnswerStore {
  readonly vectors = new SpyVectorStore();
  readonly exactLookups: Array<{ tenantId: string; normalizedQuestion: string }> = [];
  readonly scopeLookups: string[] = [];
  failExact = false;
  failScope = false;
  private readonly exact = new Map<string, StaticAnswer>();
  private readonly vectorScopes = new Map<string, string>();

  /** Publishes an answer with its question variants; with `embedder`, for semantic matching too. */
  async publish(tenantId: string, published: { id: string; questions: string[]; answer: string }, embedder?: TestEmbedder): Promise<void> {
    for (const q of published.questions) this.exact.set(`${tenantId}\u0000${normalizeText(q)}`, { id: published.id, answer: published.answer });
    if (!embedder) return;
    const scope = `static/${tenantId}`;
    this.vectorScopes.set(tenantId, scope);
    for (const q of published.questions) {
      await this.vectors.inner.put({
        id: `${published.id}/${q}`,
        scope,
        question: q,
        vector: embedder.vectorOf(q),
        answer: { text: published.answer, tierId: 'static', usage: { inputTokens: 0, outputTokens: 0 }, costUsd: 0, createdAt: 0 },
        answerKey: published.id,
        createdAt: 0,
      }, { ttlSeconds: 86_400, maxEntriesPerScope: 10_000 });
    }
  }

  async findExact(tenantId: string, normalizedQuestion: string): Promise<StaticAnswer | undefined> {
    this.exactLookups.push({ tenantId, normalizedQuestion });
    if (this.failExact) throw new Error('GET: connection reset');
    return this.exact.get(`${tenantId}\u0000${normalizedQuestion}`);
  }

  async vectorScope(tenantId: string): Promise<string | undefined> {
    this.scopeLookups.push(tenantId);
    if (this.failScope) throw new Error('GET: connection reset');
    return this.vectorScopes.get(tenantId);
  }

  /** Reads of the store of any kind (exact, scope, vector search). */
  get reads(): number {
    return this.exactLookups.length + this.scopeLookups.length + this.vectors.searches.length;
  }
}

// ---------------------------------------------------------------------------------------------
// User context
// ---------------------------------------------------------------------------------------------

export class MapUserContextStore implements UserContextStore {
  readonly loads: Array<{ tenantId: string; userId: string; sessionId: string; maxTurns: number }> = [];
  readonly appends: Array<{ tenantId: string; userId: string; sessionId: string; turns: ChatMessage[]; limits: UserContextLimits }> = [];
  readonly preferenceWrites: Array<{ tenantId: string; userId: string; preferences: Record<string, string>; ttlSeconds: number }> = [];
  readonly clears: Array<{ tenantId: string; userId: string }> = [];
  failLoad = false;
  failAppend = false;
  failPreferences = false;
  failClear = false;
  private readonly sessions = new Map<string, ChatMessage[]>();
  private readonly preferences = new Map<string, Record<string, string>>();

  /** Seeds the turns of a session. */
  setTurns(tenantId: string, userId: string, sessionId: string, turns: ChatMessage[]): this {
    this.sessions.set(sessionKey(tenantId, userId, sessionId), [...turns]);
    return this;
  }

  turnsOf(tenantId: string, userId: string, sessionId: string): ChatMessage[] {
    return [...(this.sessions.get(sessionKey(tenantId, userId, sessionId)) ?? [])];
  }

  preferencesOf(tenantId: string, userId: string): Record<string, string> | undefined {
    return this.preferences.get(userKey(tenantId, userId));
  }

  seedPreferences(tenantId: string, userId: string, preferences: Record<string, string>): this {
    this.preferences.set(userKey(tenantId, userId), { ...preferences });
    return this;
  }

  async load(tenantId: string, userId: string, sessionId: string, maxTurns: number): Promise<UserContext> {
    this.loads.push({ tenantId, userId, sessionId, maxTurns });
    if (this.failLoad) throw Object.assign(new Error('ProvisionedThroughputExceededException'), { name: 'ProvisionedThroughputExceededException' });
    const turns = this.turnsOf(tenantId, userId, sessionId);
    return { turns: turns.slice(Math.max(0, turns.length - maxTurns)), preferences: { ...this.preferencesOf(tenantId, userId) } };
  }

  async appendTurns(tenantId: string, userId: string, sessionId: string, turns: ChatMessage[], limits: UserContextLimits): Promise<void> {
    if (this.failAppend) throw Object.assign(new Error('ConditionalCheckFailedException'), { name: 'ConditionalCheckFailedException' });
    this.appends.push({ tenantId, userId, sessionId, turns: [...turns], limits });
    const all = [...this.turnsOf(tenantId, userId, sessionId), ...turns];
    this.sessions.set(sessionKey(tenantId, userId, sessionId), all.slice(Math.max(0, all.length - limits.maxTurns)));
  }

  async setPreferences(tenantId: string, userId: string, preferences: Record<string, string>, ttlSeconds: number): Promise<void> {
    if (this.failPreferences) throw Object.assign(new Error('socket hang up'), { name: 'NetworkingError' });
    this.preferenceWrites.push({ tenantId, userId, preferences: { ...preferences }, ttlSeconds });
    this.preferences.set(userKey(tenantId, userId), { ...preferences });
  }

  async clear(tenantId: string, userId: string): Promise<void> {
    if (this.failClear) throw Object.assign(new Error('socket hang up'), { name: 'NetworkingError' });
    this.clears.push({ tenantId, userId });
    this.preferences.delete(userKey(tenantId, userId));
    const prefix = `${userKey(tenantId, userId)}\u0000`;
    for (const key of [...this.sessions.keys()]) if (key.startsWith(prefix)) this.sessions.delete(key);
  }
}

function userKey(tenantId: string, userId: string): string {
  return `${tenantId}\u0000${userId}`;
}

function sessionKey(tenantId: string, userId: string, sessionId: string): string {
  return `${userKey(tenantId, userId)}\u0000${sessionId}`;
}

// ---------------------------------------------------------------------------------------------
// Metrics
// ---------------------------------------------------------------------------------------------

export interface MetricRecord {
  readonly name: string;
  readonly unit: MetricUnit;
  readonly value: number;
  readonly dimensions: Record<string, string>;
}

export class RecordingMetrics implements MetricsRecorder {
  readonly records: MetricRecord[] = [];

  add(name: string, unit: MetricUnit, value: number, dimensions: Record<string, string> = {}): void {
    this.records.push({ name, unit, value, dimensions: { ...dimensions } });
  }

  /** Records of `name`; with `dimensions`, only those with exactly these dimensions. */
  named(name: string, dimensions?: Record<string, string>): MetricRecord[] {
    return this.records.filter((r) => r.name === name && (dimensions === undefined || sameDimensions(r.dimensions, dimensions)));
  }

  sum(name: string, dimensions?: Record<string, string>): number {
    return this.named(name, dimensions).reduce((n, r) => n + r.value, 0);
  }

  /** Sum of `name` per value of dimension `dimension`. */
  by(name: string, dimension: string): Record<string, number> {
    const out: Record<string, number> = {};
    for (const r of this.named(name)) {
      const k = r.dimensions[dimension] ?? '(none)';
      out[k] = (out[k] ?? 0) + r.value;
    }
    return out;
  }
}

function sameDimensions(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a).sort();
  const kb = Object.keys(b).sort();
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && a[k] === b[k]);
}

// ---------------------------------------------------------------------------------------------
// Model invoker
// ---------------------------------------------------------------------------------------------

export type Step = { readonly respond: ModelResponse } | { readonly fail: unknown };

/** A ModelInvoker that plays a script per tier; the last step of a script repeats. */
export class ScriptedInvoker implements ModelInvoker {
  readonly calls: Array<{ tierId: string; request: ModelRequest }> = [];
  private readonly scripts = new Map<string, Step[]>();

  script(tierId: string, ...steps: Step[]): this {
    this.scripts.set(tierId, steps);
    return this;
  }

  async invoke(tier: TierRuntimeConfig, request: ModelRequest): Promise<ModelResponse> {
    this.calls.push({ tierId: tier.id, request });
    const steps = this.scripts.get(tier.id) ?? [];
    const step = steps.length > 1 ? steps.shift()! : steps[0];
    if (!step) throw new Error(`test bug: tier ${tier.id} has no script`);
    if ('respond' in step) return step.respond;
    throw step.fail;
  }
}

export function answer(text: string, usage = { inputTokens: 100, outputTokens: 50 }, stopReason = 'end_turn'): Step {
  return { respond: { text, usage, stopReason } };
}

/** An error shaped like one thrown by an AWS SDK v3 client. */
export function sdkError(name: string, status?: number): Error {
  return Object.assign(new Error(`${name} from the service`), { name, $metadata: { httpStatusCode: status } });
}

// ---------------------------------------------------------------------------------------------
// A ChatService wired to the doubles
// ---------------------------------------------------------------------------------------------

export const SMALL: TierRuntimeConfig = {
  id: 'small', provider: 'bedrock', modelId: 'm-small', inputPricePer1k: 0.0001, outputPricePer1k: 0.0004, maxTokens: 512, timeoutMs: 10_000,
};
export const MEDIUM: TierRuntimeConfig = {
  id: 'medium', provider: 'bedrock', modelId: 'm-medium', inputPricePer1k: 0.001, outputPricePer1k: 0.004, maxTokens: 2_048, timeoutMs: 10_000,
};
export const LARGE: TierRuntimeConfig = {
  id: 'large', provider: 'bedrock', modelId: 'm-large', inputPricePer1k: 0.01, outputPricePer1k: 0.04, maxTokens: 4_096, timeoutMs: 10_000,
};

/** With thresholds [0.3, 0.6]: these scores select small, medium, large. */
export const SCORE = { small: 0.1, medium: 0.45, large: 0.9 };
export const NOW = 1_750_000_000_000;
export const DEADLINE = NOW + 60_000;
export const EXACT_TTL_SECONDS = 1_234;

export const SEMANTIC_OPTIONS: SemanticCacheOptions = {
  threshold: 0.85,
  margin: 0.05,
  rivalSupport: 2,
  answerEquivalence: 0.9,
  neighbours: 10,
  ttlSeconds: 600,
  maxEntriesPerScope: 1_000,
};
export const STATIC_THRESHOLD = 0.9;
export const STATIC_MAX_AGE_SECONDS = 300;
export const USER_CONTEXT = { kind: 'valkey' as const, maxTurns: 6, ttlSeconds: 3_600 };

export function routerConfig(overrides: Partial<RouterRuntimeConfig> = {}): RouterRuntimeConfig {
  const hnsw = { m: 16, efConstruction: 200, efSearch: 64 };
  return {
    tiers: [SMALL, MEDIUM, LARGE],
    tierHintPolicy: 'cheaper-only',
    maxRequestBytes: 32_768,
    maxMessages: 20,
    classifierThresholds: [0.3, 0.6],
    tenant: { source: 'iam' },
    personalCaching: 'user',
    cache: { host: 'cache.internal', port: 6379, tls: true, keyPrefix: 'test:', timeoutMs: 50 },
    exactCache: { ttlSeconds: EXACT_TTL_SECONDS },
    semanticCache: {
      embedder: { provider: 'bedrock', modelId: 'test-embedder', dimensions: DIMENSIONS },
      store: { kind: 'valkey', hnsw, indexName: 'sem' },
      ...SEMANTIC_OPTIONS,
    },
    staticAnswers: { threshold: STATIC_THRESHOLD, maxAgeSeconds: STATIC_MAX_AGE_SECONDS },
    userContext: USER_CONTEXT,
    ...overrides,
  };
}

export function fixedScore(score: number): ComplexityClassifier {
  return { classify: () => ({ score, reasons: ['fixed'] }) };
}

export interface HarnessOptions {
  readonly config?: Partial<RouterRuntimeConfig>;
  readonly score?: number;
  /** Which ports are wired (all by default). */
  readonly exact?: boolean;
  readonly semantic?: boolean;
  /** Static answers: with semantic matching (true), exact variants only, or none. */
  readonly staticAnswers?: boolean | 'exact-only';
  /** The embedder of the static variants (default: the semantic cache's). */
  readonly staticEmbedder?: TestEmbedder;
  readonly userContext?: boolean;
  readonly guard?: QuestionGuard;
  /** Trace spans given to the service (default: none). */
  readonly spans?: Spans;
}

export interface Harness {
  readonly service: ChatService;
  readonly invoker: ScriptedInvoker;
  readonly exact: MapAnswerCache;
  readonly embedder: TestEmbedder;
  readonly staticEmbedder: TestEmbedder;
  readonly vectors: SpyVectorStore;
  readonly statics: MapStaticAnswerStore;
  readonly context: MapUserContextStore;
  readonly metrics: RecordingMetrics;
  readonly config: RouterRuntimeConfig;
}

export function harness(options: HarnessOptions = {}): Harness {
  const invoker = new ScriptedInvoker();
  const exact = new MapAnswerCache();
  const embedder = new TestEmbedder();
  const staticEmbedder = options.staticEmbedder ?? embedder;
  const vectors = new SpyVectorStore();
  const statics = new MapStaticAnswerStore();
  const context = new MapUserContextStore();
  const metrics = new RecordingMetrics();
  const config = routerConfig(options.config);
  const guard = options.guard ?? new QuestionGuard();
  const staticMode = options.staticAnswers ?? true;
  const service = new ChatService({
    config,
    invoker,
    classifier: fixedScore(options.score ?? SCORE.small),
    metrics,
    guard,
    exactCache: options.exact === false ? undefined : exact,
    semanticCache: options.semantic === false ? undefined : new SemanticCache(embedder, vectors, guard, SEMANTIC_OPTIONS),
    staticAnswers: staticMode === false ? undefined : {
      store: statics,
      vectors: staticMode === true ? { embedder: staticEmbedder, store: statics.vectors } : undefined,
    },
    userContext: options.userContext === false ? undefined : context,
    spans: options.spans,
    now: () => NOW,
  });
  return { service, invoker, exact, embedder, staticEmbedder, vectors, statics, context, metrics, config };
}
