import { randomUUID } from 'node:crypto';
import type { SemanticCacheRuntimeConfig } from '../../../constructs/contract/runtime-config';
import type { CircuitBreaker } from '../circuit-breaker';
import type { CachedAnswer } from '../ports';
import type { Embedder, SemanticEntry, VectorMatch, VectorStore } from './ports';
import type { GuardVerdict, PairGuard } from './question-guard';
import { cosine } from './vectors';
import { sha256Hex } from '../hashing';

/** The decision settings of the router's semantic cache configuration (the store and embedder are wired apart). */
export type SemanticCacheOptions = Omit<SemanticCacheRuntimeConfig, 'embedder' | 'store' | 'timeoutMs'>;

/** What a lookup found, and why it did or did not answer. */
export interface SemanticLookup {
  /** The entry that answers, if any. */
  readonly hit?: VectorMatch;
  /** Embedding of the question, to store it after a miss without embedding it again. */
  readonly vector: Float32Array;
  /** The neighbours the store returned, most similar first (they give a new entry its answer key). */
  readonly neighbours: readonly VectorMatch[];
  /** `hit`, `empty`, `below-threshold`, `guard:<reason>` or `ambiguous`. */
  readonly outcome: string;
  /** Similarity of the nearest entry (0 when the scope is empty). */
  readonly nearestSimilarity: number;
}

/**
 * The semantic cache: answers a question with the answer of an earlier question of the same
 * scope when the two embed close enough, the lexical guard finds no difference that changes the
 * answer, and no rival answer sits about as close.
 *
 * Answers are grouped by an answer key. A new entry inherits the key of the neighbour whose
 * answer embeds within `answerEquivalence` of its own (so paraphrased questions answered in
 * different words share a key), or starts a key of its own. Callers that know which answers are
 * equivalent (eval-cache, where a label stands for the answer) pass the key instead.
 */
export class SemanticCache {
  constructor(
    readonly embedder: Embedder,
    /** Where the entries are kept (`DELETE /v1/context` deletes a user's personal scopes there). */
    readonly store: VectorStore,
    private readonly guard: PairGuard,
    readonly options: SemanticCacheOptions,
    /** The router's breaker of the semantic level (see AnswerCaches); local tools pass none. */
    readonly breaker?: CircuitBreaker,
  ) {}

  get embedderId(): string {
    return `${this.embedder.modelId}/${this.embedder.dimensions}`;
  }

  /**
   * Looks a question up; pass `vector` when the question is already embedded (one embedding per
   * request). `signal` reaches the embedder and the store: the caller aborts it when it gives up.
   */
  async lookup(scope: string, question: string, vector?: Float32Array, signal?: AbortSignal): Promise<SemanticLookup> {
    vector ??= (await this.embedder.embed([question], signal))[0];
    const neighbours = await this.store.search(scope, vector, this.options.neighbours, signal);
    return { vector, neighbours, ...decide(question, neighbours, this.guard, this.options) };
  }

  /** Stores a question and the answer a model gave it, after a lookup that missed. */
  async put(
    scope: string,
    question: string,
    lookup: Pick<SemanticLookup, 'vector' | 'neighbours'>,
    answer: CachedAnswer,
    answerKey?: string,
    signal?: AbortSignal,
  ): Promise<SemanticEntry> {
    // A model's answer cached by the router has an id (its copies name this entry by it).
    const id = answer.id ?? randomUUID();
    let key = answerKey;
    let answerVector: Float32Array | undefined;
    if (key === undefined) {
      [answerVector] = await this.embedder.embed([answer.text], signal);
      key = lookup.neighbours.find((n) => n.entry.answerVector
        && cosine(n.entry.answerVector, answerVector!) >= this.options.answerEquivalence)?.entry.answerKey ?? id;
    }
    const entry: SemanticEntry = { id, scope, question, vector: lookup.vector, answer, answerVector, answerKey: key, createdAt: Date.now() };
    await this.store.put(entry, { ttlSeconds: this.options.ttlSeconds, maxEntriesPerScope: this.options.maxEntriesPerScope }, signal);
    return entry;
  }
}

/**
 * The decision of a lookup, given the neighbours the store returned (most similar first). Pure:
 * eval-cache sweeps thresholds with it.
 *
 * Candidates at or above the threshold are tried in order; the first the guard allows answers,
 * unless a rival answer (one held by at least `rivalSupport` neighbours) has a neighbour within
 * `margin` of it.
 */
export function decide(
  question: string,
  matches: readonly VectorMatch[],
  guard: PairGuard,
  options: Pick<SemanticCacheOptions, 'threshold' | 'margin' | 'rivalSupport'>,
): Pick<SemanticLookup, 'hit' | 'outcome' | 'nearestSimilarity'> {
  const nearestSimilarity = matches[0]?.similarity ?? 0;
  if (matches.length === 0) return { outcome: 'empty', nearestSimilarity };
  let veto: GuardVerdict | undefined;
  for (const match of matches) {
    if (match.similarity < options.threshold) break;
    const verdict = guard.compare(question, match.entry.question);
    if (!verdict.allowed) {
      veto ??= verdict;
      continue;
    }
    if (hasRival(match, matches, options)) return { outcome: 'ambiguous', nearestSimilarity };
    return { hit: match, outcome: 'hit', nearestSimilarity };
  }
  return { outcome: veto ? `guard:${veto.reason}` : 'below-threshold', nearestSimilarity };
}

function hasRival(candidate: VectorMatch, matches: readonly VectorMatch[], options: Pick<SemanticCacheOptions, 'margin' | 'rivalSupport'>): boolean {
  const support = new Map<string, number>();
  for (const m of matches) {
    const key = m.entry.answerKey;
    if (key !== candidate.entry.answerKey) support.set(key, (support.get(key) ?? 0) + 1);
  }
  return matches.some((m) => m.entry.answerKey !== candidate.entry.answerKey
    && m.similarity > candidate.similarity - options.margin
    && (support.get(m.entry.answerKey) ?? 0) >= options.rivalSupport);
}

/**
 * The scope of a semantic lookup, as an opaque, fixed-length string safe for TAG fields and SQL:
 * everything that changes an answer besides the question itself. `history` (the earlier turns
 * of a personal conversation) keeps a follow-up question from matching the same words asked in
 * another conversation.
 */
export function semanticScope(parts: {
  tenantId: string;
  userId?: string;
  history?: string;
  system?: string;
  maxTokens?: number;
  temperature?: number;
  tierId?: string;
  embedderId: string;
}): string {
  const canonical = JSON.stringify([
    parts.tenantId, parts.userId ?? null, parts.history ?? null, parts.system ?? null, parts.maxTokens ?? null,
    parts.temperature ?? null, parts.tierId ?? null, parts.embedderId,
  ]);
  return sha256Hex(canonical).slice(0, 32);
}
