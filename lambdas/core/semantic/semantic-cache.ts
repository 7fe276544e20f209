import { createHash, randomUUID } from 'node:crypto';
import type { CachedAnswer } from '../ports';
import type { GuardVerdict, QuestionGuard } from './question-guard';
import type { Embedder, SemanticEntry, VectorMatch, VectorStore } from './ports';
import { cosine } from './vectors';

export interface SemanticCacheOptions {
  /** Cosine similarity at or above which a cached question may answer. */
  readonly threshold: number;
  /**
   * How much closer the answering entry must be than the nearest entry holding a different
   * answer. Near two different answers the cache cannot tell which one is meant, so it asks a
   * model instead.
   */
  readonly margin: number;
  /** Cosine similarity of two answers' embeddings at or above which they count as the same answer. */
  readonly answerEquivalence: number;
  /** Neighbours fetched per lookup (the candidates for the guard and the margin test). */
  readonly neighbours: number;
  readonly ttlSeconds: number;
  readonly maxEntriesPerScope: number;
  /**
   * Embed each stored answer so the margin test can compare answers. Off when the caller
   * supplies an `answerKey` instead (eval-cache, where a label stands for the answer).
   */
  readonly embedAnswers: boolean;
}

/** What a lookup found, and why it did or did not answer. */
export interface SemanticLookup {
  /** The entry that answers, if any. */
  readonly hit?: VectorMatch;
  /** Embedding of the question, to store it after a miss without embedding it again. */
  readonly vector: Float32Array;
  /** `hit`, `empty`, `below-threshold`, `guard:<reason>` or `ambiguous`. */
  readonly outcome: string;
  /** Similarity of the nearest entry (0 when the scope is empty). */
  readonly nearestSimilarity: number;
}

/**
 * The semantic cache: answers a question with the answer of an earlier question of the same
 * scope when the two embed close enough, the lexical guard finds no difference that changes
 * the answer, and no entry with a different answer sits about as close.
 */
export class SemanticCache {
  constructor(
    private readonly embedder: Embedder,
    private readonly store: VectorStore,
    private readonly guard: QuestionGuard,
    readonly options: SemanticCacheOptions,
  ) {}

  async lookup(scope: string, question: string): Promise<SemanticLookup> {
    const [vector] = await this.embedder.embed([question]);
    const matches = await this.store.search(scope, vector, this.options.neighbours);
    return { vector, ...decide(question, matches, this.guard, this.options) };
  }

  /** Stores a question and the answer a model gave it. */
  async put(scope: string, question: string, vector: Float32Array, answer: CachedAnswer, answerKey?: string): Promise<SemanticEntry> {
    const answerVector = this.options.embedAnswers && answerKey === undefined
      ? (await this.embedder.embed([answer.text]))[0]
      : undefined;
    const entry: SemanticEntry = { id: randomUUID(), scope, question, vector, answer, answerVector, answerKey, createdAt: Date.now() };
    await this.store.put(entry, { ttlSeconds: this.options.ttlSeconds, maxEntriesPerScope: this.options.maxEntriesPerScope });
    return entry;
  }
}

/**
 * The decision of a lookup, given the neighbours the store returned (most similar first). Pure:
 * eval-cache sweeps thresholds with it.
 */
export function decide(
  question: string,
  matches: readonly VectorMatch[],
  guard: QuestionGuard,
  options: Pick<SemanticCacheOptions, 'threshold' | 'margin' | 'answerEquivalence'>,
): Omit<SemanticLookup, 'vector'> {
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
    const rival = matches.find((other) => other !== match
      && other.similarity > match.similarity - options.margin
      && !sameAnswer(match.entry, other.entry, options.answerEquivalence));
    if (rival) return { outcome: 'ambiguous', nearestSimilarity };
    return { hit: match, outcome: 'hit', nearestSimilarity };
  }
  return { outcome: veto ? `guard:${veto.reason}` : 'below-threshold', nearestSimilarity };
}

/**
 * Whether two entries hold the same answer: equal answer keys when both have one (eval-cache's
 * labels), else answer embeddings at least `equivalence` apart, else identical normalized text.
 */
export function sameAnswer(a: SemanticEntry, b: SemanticEntry, equivalence: number): boolean {
  if (a.answerKey !== undefined && b.answerKey !== undefined) return a.answerKey === b.answerKey;
  if (a.answerVector && b.answerVector) return cosine(a.answerVector, b.answerVector) >= equivalence;
  return normalizeAnswer(a.answer.text) === normalizeAnswer(b.answer.text);
}

function normalizeAnswer(text: string): string {
  return text.normalize('NFKC').toLowerCase().replace(/\s+/g, ' ').trim();
}

/** The scope of a semantic lookup, as an opaque, fixed-length string safe for TAG fields and SQL. */
export function semanticScope(parts: {
  tenantId: string;
  userId?: string;
  system?: string;
  maxTokens?: number;
  temperature?: number;
  tierId?: string;
  embedderId: string;
}): string {
  const canonical = JSON.stringify([
    parts.tenantId, parts.userId ?? null, parts.system ?? null, parts.maxTokens ?? null,
    parts.temperature ?? null, parts.tierId ?? null, parts.embedderId,
  ]);
  return createHash('sha256').update(canonical).digest('hex').slice(0, 32);
}
