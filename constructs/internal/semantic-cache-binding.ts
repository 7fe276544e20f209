import type { VectorStoreBinding } from './vector-store-binding';
import { EmbeddingModel } from '../cache/embedding-model';
import type { SemanticCacheOptions } from '../cache/semantic-cache';
import { VectorStore } from '../cache/vector-store';
import type { SemanticCacheRuntimeConfig } from '../contract/runtime-config';
import {
  DEFAULT_ANSWER_EQUIVALENCE, DEFAULT_MAX_ENTRIES_PER_SCOPE, DEFAULT_SEMANTIC_MARGIN, DEFAULT_SEMANTIC_NEIGHBOURS,
  DEFAULT_SEMANTIC_RIVAL_SUPPORT, DEFAULT_SEMANTIC_THRESHOLD, DEFAULT_SEMANTIC_TIMEOUT_MS, DEFAULT_SEMANTIC_TTL_SECONDS,
} from '../contract/semantic-defaults';

/** The semantic cache's model, store and configuration, once bound to a router. */
export interface BoundSemanticCache {
  readonly embeddingModel: EmbeddingModel;
  readonly vectorStore: VectorStore;
  readonly config: SemanticCacheRuntimeConfig;
}

/**
 * Validates `options` and binds the vector store to the router (creating the store's resources).
 * Access to the store and the embedding model is granted per function by the router.
 * Internal: used by TieredRouter.
 */
export function bindSemanticCache(options: SemanticCacheOptions, binding: Omit<VectorStoreBinding, 'dimensions' | 'where'>): BoundSemanticCache {
  const where = 'TieredRouter: semanticCache';
  const threshold = options.threshold ?? DEFAULT_SEMANTIC_THRESHOLD;
  const margin = options.margin ?? DEFAULT_SEMANTIC_MARGIN;
  const answerEquivalence = options.answerEquivalence ?? DEFAULT_ANSWER_EQUIVALENCE;
  const neighbours = options.neighbours ?? DEFAULT_SEMANTIC_NEIGHBOURS;
  const rivalSupport = options.rivalSupport ?? DEFAULT_SEMANTIC_RIVAL_SUPPORT;
  const ttlMs = options.ttl?.toMilliseconds() ?? DEFAULT_SEMANTIC_TTL_SECONDS * 1000;
  const maxEntriesPerScope = options.maxEntriesPerScope ?? DEFAULT_MAX_ENTRIES_PER_SCOPE;
  const timeoutMs = options.timeout?.toMilliseconds() ?? DEFAULT_SEMANTIC_TIMEOUT_MS;

  for (const [name, value] of [['threshold', threshold], ['answerEquivalence', answerEquivalence]] as const) {
    if (!(value > 0 && value <= 1)) throw new Error(`${where}.${name} must be a cosine similarity in (0, 1]; got ${value}`);
  }
  if (!(margin >= 0 && margin < 1)) throw new Error(`${where}.margin must be in [0, 1); got ${margin}`);
  if (!Number.isInteger(neighbours) || neighbours < 1 || neighbours > 100) {
    throw new Error(`${where}.neighbours must be an integer from 1 to 100; got ${neighbours}`);
  }
  if (!Number.isInteger(rivalSupport) || rivalSupport < 1 || rivalSupport > neighbours) {
    throw new Error(`${where}.rivalSupport must be an integer from 1 to neighbours (${neighbours}); got ${rivalSupport}`);
  }
  if (ttlMs < 60_000) throw new Error(`${where}.ttl must be at least 1 minute; got ${options.ttl!.toHumanString()}`);
  if (!Number.isInteger(maxEntriesPerScope) || maxEntriesPerScope < 1) {
    throw new Error(`${where}.maxEntriesPerScope must be a positive integer; got ${maxEntriesPerScope}`);
  }
  if (!(timeoutMs >= 100 && timeoutMs <= 10_000)) {
    throw new Error(`${where}.timeout must be from 100 milliseconds to 10 seconds; got ${options.timeout!.toHumanString()}`);
  }

  const embeddingModel = options.embeddingModel ?? EmbeddingModel.titanTextV2();
  const vectorStore = options.vectorStore ?? VectorStore.valkey();
  const store = vectorStore._bind({ ...binding, dimensions: embeddingModel.dimensions, where: `${where}.vectorStore` });
  return {
    embeddingModel,
    vectorStore,
    config: {
      embedder: embeddingModel._runtimeConfig(),
      store,
      threshold,
      margin,
      rivalSupport,
      answerEquivalence,
      neighbours,
      ttlSeconds: Math.floor(ttlMs / 1000),
      maxEntriesPerScope,
      timeoutMs,
    },
  };
}
