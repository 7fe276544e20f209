import { randomUUID } from 'node:crypto';
import { withDeadline } from './abortable';
import { exactCacheKey, isCacheable, personalScopePrefix, type Caller } from './cache-key';
import { lastUserText, type ChatRequest } from './chat-request';
import { CircuitOpenError, type CircuitBreaker } from './circuit-breaker';
import type { AnswerCache, CachedAnswer, MetricsRecorder } from './ports';
import type { Embedder, VectorStore } from './semantic/ports';
import type { PairGuard } from './semantic/question-guard';
import { decide, semanticScope, type SemanticCache, type SemanticLookup } from './semantic/semantic-cache';
import { normalizeQuestion, type StaticAnswerStore } from './static-answers';
import { NO_SPANS, type Spans } from './tracing';
import { AiMetricNames as M } from '../../constructs/contract/metrics';
import type { RouterRuntimeConfig } from '../../constructs/contract/runtime-config';
import { DEFAULT_SEMANTIC_TIMEOUT_MS, SEMANTIC_DEFAULTS } from '../../constructs/contract/semantic-defaults';

export type CacheLevel = 'static' | 'exact' | 'semantic';

/** An answer found in a cache level. */
export interface CacheHit {
  readonly level: CacheLevel;
  readonly answer: CachedAnswer;
  /** Cosine similarity of the matching question (semantic matches). */
  readonly similarity?: number;
  /** Id of the static answer (static hits). */
  readonly staticAnswerId?: string;
  /** Where the answer is cached (exact and semantic hits): what a wrong verdict evicts. */
  readonly locations?: AnswerLocations;
}

/**
 * Where one answer is cached: what `POST /v1/feedback` evicts on a wrong verdict. Every location
 * comes from the caller's own lookup or from the copies the router recorded with the answer.
 */
export interface AnswerLocations {
  /**
   * Id of the answer: an exact key is evicted only while it still holds this answer (a key is
   * reused by the next answer to the same request). Absent for answers cached before ids existed.
   */
  readonly answerId?: string;
  readonly exactKeys: readonly string[];
  readonly semantic?: { readonly scope: string; readonly id: string };
}

/** A request as the caches see it. */
export interface CacheQuery {
  readonly caller: Caller;
  /** The request the model would see (user context merged). */
  readonly request: ChatRequest;
  /** Whether the answer is personal (conversation or session): cached for the user only. */
  readonly personal: boolean;
  /** The tier a honoured hint selected (it changes the answer). */
  readonly hintedTier?: string;
}

/** Static answers with their optional semantic matching. */
export interface StaticAnswersDeps {
  readonly store: StaticAnswerStore;
  /** Embedder and vector store of the published question variants (semantic matching). */
  readonly vectors?: { readonly embedder: Embedder; readonly store: VectorStore };
  /** The router's breaker of the static level (see AnswerCaches.guarded); absent: never skipped. */
  readonly breaker?: CircuitBreaker;
}

export interface AnswerCachesDeps {
  readonly config: RouterRuntimeConfig;
  readonly metrics: MetricsRecorder;
  readonly guard: PairGuard;
  readonly exact?: AnswerCache;
  readonly semantic?: SemanticCache;
  readonly staticAnswers?: StaticAnswersDeps;
  /** Trace spans of each level's lookup and store (and embeddings). @default NO_SPANS */
  readonly spans?: Spans;
}

/** What a miss leaves behind for writing the model's answer into the caches. */
export interface PendingWrites {
  readonly exactKey?: string;
  readonly semantic?: { readonly scope: string; readonly question: string; readonly lookup: SemanticLookup };
}

/**
 * Embeddings of one request's question, per embedding model: shared by the static and semantic
 * levels. Each remembers the signal of the level that asked for it: one abandoned with that level
 * is computed again for the next.
 */
type Embeddings = Map<string, { readonly vector: Promise<Float32Array>; readonly signal?: AbortSignal }>;

/**
 * The cache hierarchy of the router: static answers → exact → semantic. Every level fails open:
 * an error is counted (`CacheErrors` with its `CacheLevel`) and the request goes on to the next
 * level or to a model.
 */
export class AnswerCaches {
  private readonly spans: Spans;

  constructor(private readonly deps: AnswerCachesDeps) {
    this.spans = deps.spans ?? NO_SPANS;
  }

  async lookup(query: CacheQuery): Promise<{ hit?: CacheHit; pending: PendingWrites }> {
    const { config } = this.deps;
    const cacheable = isCacheable(query.caller, query.request, query.personal) && !(query.personal && config.personalCaching === 'none');
    if (!cacheable) return { pending: {} };
    const embeddings: Embeddings = new Map();

    if (!query.personal) {
      const hit = await this.lookupStatic(query.caller.tenantId, lastUserText(query.request), embeddings);
      if (hit) return { hit, pending: {} };
    }

    let exactKey: string | undefined;
    if (this.deps.exact && config.exactCache && config.cache) {
      exactKey = exactCacheKey(config.cache.keyPrefix, query.caller, query.request, query.hintedTier, query.personal);
      const answer = await this.guarded('exact', () => this.deps.exact!.get(exactKey!), 'lookup');
      if (answer) {
        return this.hitOf({
          level: 'exact',
          answer,
          locations: { answerId: answer.id, exactKeys: unique([exactKey, ...(answer.copies?.exactKeys ?? [])]), semantic: answer.copies?.semantic },
        });
      }
      if (answer === undefined) this.miss('exact');
    }

    let semantic: PendingWrites['semantic'];
    if (this.deps.semantic) {
      const cache = this.deps.semantic;
      const question = lastUserText(query.request);
      // A personal scope starts with the user's prefix, so that DELETE /v1/context finds it.
      const userPrefix = query.personal && query.caller.userId !== undefined ? personalScopePrefix(query.caller.tenantId, query.caller.userId) : '';
      const scope = userPrefix + semanticScope({
        tenantId: query.caller.tenantId,
        userId: query.personal ? query.caller.userId : undefined,
        history: query.personal ? JSON.stringify(query.request.messages.slice(0, -1).map((m) => [m.role, m.text])) : undefined,
        system: query.request.system,
        maxTokens: query.request.maxTokens,
        temperature: query.request.temperature,
        tierId: query.hintedTier,
        embedderId: cache.embedderId,
      });
      const lookup = await this.guarded('semantic', async (signal) =>
        cache.lookup(scope, question, await this.embed(embeddings, cache.embedder, question, signal), signal), 'lookup');
      if (lookup?.hit) {
        const entry = lookup.hit.entry;
        const answer = entry.answer;
        // The copy names the entry it came from (and that entry's exact keys): a wrong verdict on
        // either evicts both.
        const ref = { scope: entry.scope, id: entry.id };
        const copy: CachedAnswer = { ...answer, id: answer.id ?? entry.id, copies: { exactKeys: answer.copies?.exactKeys, semantic: ref } };
        // The next identical request is then an exact hit, without an embedding or a vector search.
        // The copy never outlives the entry it came from: it expires when the semantic entry does.
        const ttlSeconds = Math.min(config.exactCache?.ttlSeconds ?? 0,
          Math.floor((lookup.hit.entry.createdAt + cache.options.ttlSeconds * 1000 - Date.now()) / 1000));
        const copied = exactKey !== undefined && ttlSeconds >= 1;
        if (copied) await this.guarded('exact', () => this.deps.exact!.set(exactKey!, copy, ttlSeconds), 'store');
        const exactKeys = unique([...(copied ? [exactKey!] : []), ...(answer.copies?.exactKeys ?? [])]);
        return this.hitOf({ level: 'semantic', answer, similarity: lookup.hit.similarity, locations: { answerId: copy.id, exactKeys, semantic: ref } });
      }
      if (lookup) {
        this.miss('semantic');
        semantic = { scope, question, lookup };
      }
    }
    return { pending: { exactKey, semantic } };
  }

  /**
   * The static answer to a question of a tenant, if one matches. Used by `GET /v1/static-answers` too.
   * @returns the hit; undefined when none matches; null when the static answers could not be read
   *          (counted as a `CacheErrors`; the chat path takes it as a miss and fails open)
   */
  async lookupStatic(tenantId: string, question: string, embeddings: Embeddings = new Map()): Promise<CacheHit | undefined | null> {
    const deps = this.deps.staticAnswers;
    if (!deps) return undefined;
    const found = await this.guarded('static', async (signal) => {
      const exact = await deps.store.findExact(tenantId, normalizeQuestion(question));
      if (exact) return { id: exact.id, text: exact.answer, similarity: undefined as number | undefined };
      const threshold = this.deps.config.staticAnswers?.threshold;
      if (!deps.vectors || threshold === undefined) return undefined;
      const scope = await deps.store.vectorScope(tenantId);
      if (!scope) return undefined;
      const vector = await this.embed(embeddings, deps.vectors.embedder, question, signal);
      const neighbours = await deps.vectors.store.search(scope, vector, 10, signal);
      // Curated variants: a single variant of another answer close by already makes it ambiguous.
      const margin = this.deps.config.semanticCache?.margin ?? SEMANTIC_DEFAULTS.margin;
      const decision = decide(question, neighbours, this.deps.guard, { threshold, margin, rivalSupport: 1 });
      const hit = decision.hit;
      return hit ? { id: hit.entry.answerKey, text: hit.entry.answer.text, similarity: hit.similarity } : undefined;
    }, 'lookup');
    if (!found) {
      if (found === undefined) this.miss('static');
      return found === null ? null : undefined;
    }
    this.deps.metrics.add(M.CACHE_HITS, 'Count', 1, { [M.DIMENSION_CACHE_LEVEL]: 'static' });
    return {
      level: 'static',
      staticAnswerId: found.id,
      similarity: found.similarity,
      answer: { text: found.text, tierId: 'static', usage: { inputTokens: 0, outputTokens: 0 }, costUsd: 0, createdAt: 0 },
    };
  }

  /**
   * Writes a model's answer into the levels that missed. Failures are counted, never thrown.
   * Each copy names the others, under one answer id (also the semantic entry's id).
   * @returns where the answer was written (or tried to be: a write that timed out may have landed)
   */
  async store(pending: PendingWrites, answer: CachedAnswer): Promise<AnswerLocations> {
    const { config } = this.deps;
    const id = answer.id ?? randomUUID();
    const exactKey = pending.exactKey && this.deps.exact && config.exactCache ? pending.exactKey : undefined;
    const semantic = pending.semantic && this.deps.semantic ? pending.semantic : undefined;
    const writes: Array<Promise<unknown>> = [];
    if (exactKey) {
      const copy: CachedAnswer = { ...answer, id, ...(semantic ? { copies: { semantic: { scope: semantic.scope, id } } } : {}) };
      writes.push(this.guarded('exact', () => this.deps.exact!.set(exactKey, copy, config.exactCache!.ttlSeconds), 'store'));
    }
    if (semantic) {
      const { scope, question, lookup } = semantic;
      const copy: CachedAnswer = { ...answer, id, ...(exactKey ? { copies: { exactKeys: [exactKey] } } : {}) };
      writes.push(this.guarded('semantic', (signal) => this.deps.semantic!.put(scope, question, lookup, copy, undefined, signal), 'store'));
    }
    await Promise.all(writes);
    return { answerId: id, exactKeys: exactKey ? [exactKey] : [], semantic: semantic ? { scope: semantic.scope, id } : undefined };
  }

  private hitOf(hit: CacheHit): { hit: CacheHit; pending: PendingWrites } {
    this.deps.metrics.add(M.CACHE_HITS, 'Count', 1, { [M.DIMENSION_CACHE_LEVEL]: hit.level });
    return { hit, pending: {} };
  }

  private miss(level: CacheLevel): void {
    this.deps.metrics.add(M.CACHE_MISSES, 'Count', 1, { [M.DIMENSION_CACHE_LEVEL]: level });
  }

  /** The embedding of `text` by `embedder`, computed once per request (`embeddings` lives as long as one lookup). */
  private embed(embeddings: Embeddings, embedder: Embedder, text: string, signal?: AbortSignal): Promise<Float32Array> {
    const key = `${embedder.modelId}/${embedder.dimensions}`;
    let embedding = embeddings.get(key);
    if (!embedding || embedding.signal?.aborted) {
      const vector = this.spans.span('embed', () => embedder.embed([text], signal), { model: embedder.modelId }).then(([v]) => v);
      embedding = { vector, signal };
      embeddings.set(key, embedding);
    }
    return embedding.vector;
  }

  /**
   * Runs a cache operation; on failure, or when it outlasts the level's time limit, counts a
   * `CacheErrors` of the level and returns null (distinct from undefined, "nothing found"). The
   * exact level relies on the cache client's command timeout; the levels that embed and search
   * vectors get `semanticCache.timeoutMs`, so a slow embedder or vector store never costs a
   * request more time than the cache could save it. At the time limit the operation's signal is
   * aborted, so the embedder and store stop working on it (and release their connections).
   *
   * A level with a circuit breaker (the router's) is skipped while the breaker is open: the call
   * is not made, `BreakerSkips` is counted instead, and the request goes on at no cost in time.
   * Failures and timeouts are reported to the breaker, successes close it. An operation that
   * finds a dependency's own breaker open (a store build) counts as a skip of that dependency.
   *
   * The operation runs in the trace span `<level>.<action>` (`exact.lookup`, `semantic.store`...).
   */
  private async guarded<T>(level: CacheLevel, op: (signal: AbortSignal) => Promise<T>, action = 'lookup'): Promise<T | null> {
    const { metrics } = this.deps;
    const breaker = this.breakerOf(level);
    if (breaker && !breaker.tryAcquire()) {
      metrics.add(M.BREAKER_SKIPS, 'Count', 1, { [M.DIMENSION_DEPENDENCY]: level });
      return null;
    }
    const limitMs = level === 'exact' ? undefined : (this.deps.config.semanticCache?.timeoutMs ?? DEFAULT_SEMANTIC_TIMEOUT_MS);
    try {
      // At its limit an operation is aborted (its signal) and abandoned; its late failure is expected.
      const traced = (signal: AbortSignal): Promise<T> => this.spans.span(`${level}.${action}`, () => op(signal), { cacheLevel: level });
      const result = limitMs === undefined
        ? await traced(new AbortController().signal)
        : await withDeadline(limitMs, `the ${level} cache`, traced);
      breaker?.success();
      return result;
    } catch (err) {
      if (err instanceof CircuitOpenError) {
        metrics.add(M.BREAKER_SKIPS, 'Count', 1, { [M.DIMENSION_DEPENDENCY]: err.dependency });
        return null;
      }
      metrics.add(M.CACHE_ERRORS, 'Count', 1, { [M.DIMENSION_CACHE_LEVEL]: level });
      if (breaker?.failure()) metrics.add(M.CIRCUIT_OPENED, 'Count', 1, { [M.DIMENSION_DEPENDENCY]: level });
      return null;
    }
  }

  private breakerOf(level: CacheLevel): CircuitBreaker | undefined {
    if (level === 'exact') return this.deps.exact?.breaker;
    if (level === 'semantic') return this.deps.semantic?.breaker;
    return this.deps.staticAnswers?.breaker;
  }
}

function unique(keys: string[]): string[] {
  return [...new Set(keys)];
}
