import type { IStaticAnswers } from '../cache/static-answers';
import { UserContextBackend, type IUserContextStore } from '../cache/user-context-store';
import type { HnswRuntimeConfig, StaticAnswersRuntimeConfig, UserContextRuntimeConfig } from '../contract/runtime-config';
import { DEFAULT_HNSW_EF_CONSTRUCTION, DEFAULT_HNSW_EF_SEARCH, DEFAULT_HNSW_M } from '../contract/semantic-defaults';

/**
 * The Valkey vector index of static answers' question variants: the loader builds it and the
 * router searches it with the same parameters. Internal (not part of the jsii API).
 */
export function staticAnswersIndex(indexName: string): { readonly indexName: string; readonly hnsw: HnswRuntimeConfig } {
  return { indexName, hnsw: { m: DEFAULT_HNSW_M, efConstruction: DEFAULT_HNSW_EF_CONSTRUCTION, efSearch: DEFAULT_HNSW_EF_SEARCH } };
}

/** What the router's handlers read of static answers, from their public members. */
export function staticAnswersRuntimeConfig(answers: IStaticAnswers): StaticAnswersRuntimeConfig {
  return {
    threshold: answers.threshold,
    maxAgeSeconds: Math.floor(answers.maxAge.toMilliseconds() / 1000),
    embedder: answers.embeddingModel?._runtimeConfig(),
    vectorIndex: answers.vectorIndexName === undefined ? undefined : staticAnswersIndex(answers.vectorIndexName),
  };
}

/** What the router's handlers read of a user context store, from its public members. */
export function userContextRuntimeConfig(store: IUserContextStore): UserContextRuntimeConfig {
  return {
    kind: store.backend === UserContextBackend.DYNAMODB ? 'dynamodb' : 'valkey',
    tableName: store.tableName,
    maxTurns: store.maxTurns,
    ttlSeconds: Math.floor(store.ttl.toMilliseconds() / 1000),
  };
}
