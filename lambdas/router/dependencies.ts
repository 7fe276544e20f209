import type { Logger } from '@aws-lambda-powertools/logger';
import { getSecret } from '@aws-lambda-powertools/parameters/secrets';
import type Valkey from 'iovalkey';
import { Pool } from 'pg';
import { AiMetricNames as M } from '../../constructs/contract/metrics';
import type { RouterRuntimeConfig, SemanticCacheRuntimeConfig, VectorStoreRuntimeConfig } from '../../constructs/contract/runtime-config';
import { createEmbedder, openCacheConnection } from '../adapters/connections';
import { DynamoDbUserContextStore } from '../adapters/dynamodb-user-context-store';
import { OpenSearchVectorStore } from '../adapters/opensearch-vector-store';
import { PgVectorStore } from '../adapters/pgvector-store';
import { ValkeyAnswerCache } from '../adapters/valkey-answer-cache';
import { ValkeyStaticAnswers } from '../adapters/valkey-static-answers';
import { ValkeyUserContextStore } from '../adapters/valkey-user-context-store';
import { ValkeyVectorStore } from '../adapters/valkey-vector-store';
import type { StaticAnswersDeps } from '../core/answer-caches';
import type { AnswerCache, MetricsRecorder } from '../core/ports';
import type { Embedder, VectorStore } from '../core/semantic/ports';
import type { PairGuard } from '../core/semantic/question-guard';
import { SemanticCache } from '../core/semantic/semantic-cache';
import type { UserContextStore } from '../core/user-context';

/** The stores and clients a router container keeps between invocations. */
export interface RouterDependencies {
  readonly exactCache?: AnswerCache;
  readonly semanticCache?: SemanticCache;
  readonly staticAnswers?: StaticAnswersDeps;
  readonly userContext?: UserContextStore;
}

/**
 * Builds the router's dependencies from its configuration. Whatever cannot be built (the cache
 * credential unreadable, an index not creatable) is left out of this invocation, counted as
 * `CacheErrors{CacheLevel=connection}` and logged, and tried again on the next invocation: the
 * router always answers, from a model if need be.
 */
export class DependencyBuilder {
  private valkey?: Promise<Valkey>;
  private readonly embedders = new Map<string, Embedder>();
  private readonly stores = new Map<string, Promise<VectorStore>>();
  private built?: RouterDependencies;

  constructor(
    private readonly config: RouterRuntimeConfig,
    private readonly guard: PairGuard,
    private readonly logger: Logger,
  ) {}

  /** The dependencies, built once; partial results are rebuilt until everything is in place. */
  async get(metrics: MetricsRecorder): Promise<RouterDependencies> {
    if (this.built) return this.built;
    const c = this.config;
    let complete = true;
    const attempt = async <T>(what: string, build: () => Promise<T>): Promise<T | undefined> => {
      try {
        return await build();
      } catch (err) {
        complete = false;
        this.logger.error(`${what} unavailable for this invocation`, err as Error);
        metrics.add(M.CACHE_ERRORS, 'Count', 1, { [M.DIMENSION_CACHE_LEVEL]: 'connection' });
        return undefined;
      }
    };
    const valkey = c.cache ? await attempt('cache connection', () => this.connectValkey()) : undefined;
    const prefix = c.cache?.keyPrefix ?? '';

    const exactCache = valkey && c.exactCache ? new ValkeyAnswerCache(valkey) : undefined;

    let semanticCache: SemanticCache | undefined;
    if (c.semanticCache) {
      const semantic = c.semanticCache;
      const store = await attempt('semantic cache store', () => this.vectorStore(semantic.store, semantic.embedder.dimensions, valkey, prefix));
      if (store) semanticCache = new SemanticCache(this.embedder(semantic), store, this.guard, semanticOptions(semantic));
    }

    let staticAnswers: StaticAnswersDeps | undefined;
    if (c.staticAnswers && valkey) {
      const s = c.staticAnswers;
      const embedder = s.threshold !== undefined && s.embedder ? this.embedder({ embedder: s.embedder }) : undefined;
      const vectors = embedder && s.vectorIndex
        ? await attempt('static answers index', () =>
          this.vectorStore({ kind: 'valkey', indexName: s.vectorIndex!.indexName, hnsw: s.vectorIndex!.hnsw }, embedder.dimensions, valkey, prefix))
        : undefined;
      staticAnswers = {
        store: new ValkeyStaticAnswers(valkey, { keyPrefix: prefix, expectedModelId: embedder?.modelId }),
        vectors: embedder && vectors ? { embedder, store: vectors } : undefined,
      };
    }

    let userContext: UserContextStore | undefined;
    if (c.userContext?.kind === 'dynamodb' && c.userContext.tableName) {
      userContext = new DynamoDbUserContextStore(c.userContext.tableName);
    } else if (c.userContext?.kind === 'valkey' && valkey) {
      userContext = new ValkeyUserContextStore(valkey, prefix);
    }

    const deps = { exactCache, semanticCache, staticAnswers, userContext };
    if (complete) this.built = deps;
    return deps;
  }

  private connectValkey(): Promise<Valkey> {
    this.valkey ??= openCacheConnection(this.config.cache!).catch((err) => {
      this.valkey = undefined;
      throw err;
    });
    return this.valkey;
  }

  private embedder(c: Pick<SemanticCacheRuntimeConfig, 'embedder'>): Embedder {
    const key = JSON.stringify(c.embedder);
    let embedder = this.embedders.get(key);
    if (!embedder) this.embedders.set(key, (embedder = createEmbedder(c.embedder)));
    return embedder;
  }

  /** A vector store with its index ensured; one per index, reused by both levels. */
  private vectorStore(c: VectorStoreRuntimeConfig, dimensions: number, valkey: Valkey | undefined, keyPrefix: string): Promise<VectorStore> {
    const key = JSON.stringify(c);
    let store = this.stores.get(key);
    if (!store) {
      store = createVectorStore(c, valkey, keyPrefix).then(async (s) => {
        await s.ensureIndex(dimensions);
        return s;
      });
      store.catch(() => this.stores.delete(key));
      this.stores.set(key, store);
    }
    return store;
  }
}

async function createVectorStore(c: VectorStoreRuntimeConfig, valkey: Valkey | undefined, keyPrefix: string): Promise<VectorStore> {
  switch (c.kind) {
    case 'valkey':
      if (!valkey) throw new Error('the Valkey vector store needs the cache connection');
      return new ValkeyVectorStore(valkey, { keyPrefix, indexName: c.indexName ?? 'sai-semantic', hnsw: c.hnsw });
    case 'opensearch':
      return new OpenSearchVectorStore({
        endpoint: c.opensearch!.endpoint,
        index: c.opensearch!.index,
        hnsw: c.hnsw,
        region: process.env.AWS_REGION,
      });
    case 'pgvector': {
      const pg = c.pgvector!;
      const secret = (await getSecret(pg.secretArn, { transform: 'json', maxAge: 3600 })) as { username: string; password: string };
      const pool = new Pool({
        host: pg.host,
        port: pg.port,
        database: pg.database,
        user: secret.username,
        password: secret.password,
        ssl: pg.ssl ? { rejectUnauthorized: true } : undefined,
        max: 2,
        connectionTimeoutMillis: 2_000,
        // The router gives up on the semantic level after semanticCache.timeoutMs anyway; the
        // server-side limit keeps an abandoned query from holding a connection.
        statement_timeout: 5_000,
      });
      // An idle client losing its server emits 'error' on the pool; unhandled, it would end the
      // process. The next query reconnects, and a failing query fails that level open.
      pool.on('error', () => undefined);
      return new PgVectorStore(pool, { table: pg.table, hnsw: c.hnsw });
    }
  }
}

function semanticOptions(c: SemanticCacheRuntimeConfig): SemanticCache['options'] {
  return {
    threshold: c.threshold,
    margin: c.margin,
    rivalSupport: c.rivalSupport,
    answerEquivalence: c.answerEquivalence,
    neighbours: c.neighbours,
    ttlSeconds: c.ttlSeconds,
    maxEntriesPerScope: c.maxEntriesPerScope,
  };
}
