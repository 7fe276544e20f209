/**
 * The router configuration of the handler tests that run the whole cache hierarchy against real
 * local servers: one Bedrock tier, the exact cache in Redis, the semantic cache in pgvector
 * (PGlite) with the local Titan embedding.
 */
import type { RouterRuntimeConfig } from '../../constructs/contract/runtime-config';
import type { PgliteServer } from '../support/pglite-server';
import type { RedisServer } from '../support/redis-server';

export const REDIS_PASSWORD = 'local-cache-auth-token-0123456789';
export const KEY_PREFIX = 'sai:';
export const MODEL = 'us.amazon.nova-micro-v1:0';
export const EMBEDDING_MODEL = 'amazon.titan-embed-text-v2:0';

/** The shared part of the configuration; each test adds the levels and options it exercises. */
export function cacheHierarchyConfig(redis: RedisServer, pglite: PgliteServer, cacheSecret: string, dbSecret: string): RouterRuntimeConfig {
  return {
    tiers: [{ id: 'small', provider: 'bedrock', modelId: MODEL, inputPricePer1k: 0.000035, outputPricePer1k: 0.00014, maxTokens: 512, timeoutMs: 5_000 }],
    tierHintPolicy: 'cheaper-only',
    maxRequestBytes: 8_192,
    maxMessages: 20,
    tenant: { source: 'iam' },
    personalCaching: 'user',
    cache: { host: redis.host, port: redis.port, tls: false, authSecretArn: cacheSecret, keyPrefix: KEY_PREFIX, timeoutMs: 1_000 },
    exactCache: { ttlSeconds: 3_600 },
    semanticCache: {
      embedder: { provider: 'bedrock', modelId: EMBEDDING_MODEL, dimensions: 256 },
      store: {
        kind: 'pgvector',
        hnsw: { m: 16, efConstruction: 64, efSearch: 40 },
        pgvector: { host: pglite.host, port: pglite.port, database: 'postgres', secretArn: dbSecret, table: 'semantic_cache', ssl: false },
      },
      // The test embedding (character trigrams) is coarser than a sentence model: a lower threshold.
      threshold: 0.75,
      margin: 0.12,
      rivalSupport: 2,
      answerEquivalence: 0.9,
      neighbours: 20,
      ttlSeconds: 3_600,
      maxEntriesPerScope: 1_000,
    },
  };
}
