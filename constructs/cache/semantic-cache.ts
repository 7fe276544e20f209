import type { Duration } from 'aws-cdk-lib';
import type { EmbeddingModel } from './embedding-model';
import type { VectorStore } from './vector-store';

/**
 * Options of the semantic cache: a question is answered with the answer of an earlier question
 * of the same scope (tenant, system prompt, parameters; and user, for personal answers) when the
 * two embed close enough, a lexical guard finds no difference that changes the answer (a number,
 * a negation, a named entity), and no rival answer sits about as close.
 */
export interface SemanticCacheOptions {
  /**
   * Where the vectors are kept.
   * @default VectorStore.valkey() (an index in the response cache)
   */
  readonly vectorStore?: VectorStore;
  /**
   * The model that embeds questions and answers.
   * @default EmbeddingModel.titanTextV2() (1024 dimensions)
   */
  readonly embeddingModel?: EmbeddingModel;
  /**
   * Cosine similarity at or above which a cached question may answer, in (0, 1]. Lower answers
   * more often and more often wrongly; `cdk-scalable-ai eval-cache` measures both on your traffic.
   * The default was measured with a local MiniLM embedder on banking77 (1% wrong answers at 60%
   * hits); Titan's similarities differ, so calibrate with `eval-cache --embedder titan`.
   * @default 0.82 (DEFAULT_SEMANTIC_THRESHOLD)
   */
  readonly threshold?: number;
  /**
   * How much closer the answering entry must be than an entry holding a different answer, in
   * [0, 1). Between two answers about as close, the cache asks a model instead.
   * @default 0.12 (DEFAULT_SEMANTIC_MARGIN)
   */
  readonly margin?: number;
  /**
   * Neighbours that must hold a different answer before it counts as a rival (1 to `neighbours`).
   * @default 2 (DEFAULT_SEMANTIC_RIVAL_SUPPORT)
   */
  readonly rivalSupport?: number;
  /**
   * Cosine similarity of two answers' embeddings at or above which they count as the same
   * answer, in (0, 1].
   * @default 0.9 (DEFAULT_ANSWER_EQUIVALENCE)
   */
  readonly answerEquivalence?: number;
  /**
   * Neighbours fetched per lookup (1 to 100).
   * @default 20 (DEFAULT_SEMANTIC_NEIGHBOURS)
   */
  readonly neighbours?: number;
  /**
   * How long an entry lives (at least 1 minute).
   * @default Duration.days(7) (DEFAULT_SEMANTIC_TTL_SECONDS)
   */
  readonly ttl?: Duration;
  /**
   * Most entries one scope keeps; the oldest are evicted beyond it.
   * @default 10000 (DEFAULT_MAX_ENTRIES_PER_SCOPE)
   */
  readonly maxEntriesPerScope?: number;
  /**
   * How long a semantic lookup or write (embedding the question, then the vector search or
   * write) may take before the router gives up on it and goes on without it, as if it missed
   * (100 ms to 10 s). Lookups sit on the path of every request the exact cache misses: keep it
   * well below the router's timeout. The same limit bounds the static answers' lookups (1.5 s
   * when the router has no semantic cache).
   * @default Duration.millis(1500) (DEFAULT_SEMANTIC_TIMEOUT_MS)
   */
  readonly timeout?: Duration;
}
