/**
 * The numeric defaults of the similarity-based cache levels (semantic cache, static answers,
 * vector indexes), in one place: the constructs' `@default` docs name these constants, and the
 * router and `eval-cache` import them, so what the CLI measures is what the service runs.
 *
 * Internal: not exported from the package root. No aws-cdk-lib imports.
 *
 * Measured on banking77 (13,083 labelled support queries, all-MiniLM-L6-v2, the replay protocol of
 * `eval-cache`): a rival answer held by at least 2 of the 20 nearest neighbours and lying within
 * 0.12 of the answering entry makes the cache ask a model instead; that lets the threshold drop
 * from ~0.92 to ~0.82 at the same 1% of wrong answers, for ~1.5x the hits. Cosine similarities
 * of different embedding models are not comparable: calibrate the threshold for Titan with
 * `npx cdk-scalable-ai eval-cache --embedder titan` on your own labelled traffic.
 */

/** Cosine similarity at or above which a cached question may answer a new one (measured, see above). */
export const DEFAULT_SEMANTIC_THRESHOLD = 0.82;
/** How much closer the answering entry must be than a rival entry with a different answer. */
export const DEFAULT_SEMANTIC_MARGIN = 0.12;
/** Cosine similarity of two answers' embeddings at or above which they count as the same answer. */
export const DEFAULT_ANSWER_EQUIVALENCE = 0.9;
/** Neighbours that must hold a different answer before it counts as a rival. */
export const DEFAULT_SEMANTIC_RIVAL_SUPPORT = 2;
/** Neighbours fetched per semantic lookup. */
export const DEFAULT_SEMANTIC_NEIGHBOURS = 20;
/** Lifetime of a semantic cache entry, in seconds (7 days). */
export const DEFAULT_SEMANTIC_TTL_SECONDS = 7 * 24 * 60 * 60;
/** Most entries one scope (tenant + system prompt + parameters) keeps. */
export const DEFAULT_MAX_ENTRIES_PER_SCOPE = 10_000;

/** Cosine similarity at or above which a question matches a static answer's variant. */
export const DEFAULT_STATIC_THRESHOLD = 0.9;

/** HNSW: links per node. */
export const DEFAULT_HNSW_M = 16;
/** HNSW: candidate list size while building the graph. */
export const DEFAULT_HNSW_EF_CONSTRUCTION = 128;
/** HNSW: candidate list size while searching. */
export const DEFAULT_HNSW_EF_SEARCH = 64;

/** Bedrock model id of Amazon Titan Text Embeddings V2. */
export const TITAN_TEXT_V2_MODEL_ID = 'amazon.titan-embed-text-v2:0';
/** Vector dimensions of the default embedding model. */
export const DEFAULT_EMBEDDING_DIMENSIONS = 1024;

/**
 * Milliseconds a semantic lookup or write may take (an embedding call plus a k-NN search) before
 * the router fails open and asks a model: the cache must never cost more time than it saves.
 */
export const DEFAULT_SEMANTIC_TIMEOUT_MS = 1_500;

/** The semantic cache's decision parameters as one object, for the handlers and the CLI. */
export const SEMANTIC_DEFAULTS = {
  threshold: DEFAULT_SEMANTIC_THRESHOLD,
  margin: DEFAULT_SEMANTIC_MARGIN,
  rivalSupport: DEFAULT_SEMANTIC_RIVAL_SUPPORT,
  neighbours: DEFAULT_SEMANTIC_NEIGHBOURS,
  answerEquivalence: DEFAULT_ANSWER_EQUIVALENCE,
} as const;
