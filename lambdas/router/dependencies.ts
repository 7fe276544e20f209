import type { Logger } from '@aws-lambda-powertools/logger';
import type Valkey from 'iovalkey';
import { AiMetricNames as M } from '../../constructs/contract/metrics';
import type { RouterRuntimeConfig, SemanticCacheRuntimeConfig, VectorStoreRuntimeConfig } from '../../constructs/contract/runtime-config';
import { createEmbedder, DEFAULT_SECRET_TIMEOUT_MS, openCacheConnection, readSecret } from '../adapters/connections';
import { createUserProfileDependencies, type UserProfileDependencies } from '../adapters/user-profile-store';
import { ValkeyAnswerCache } from '../adapters/valkey-answer-cache';
import { ValkeyLeaseStore } from '../adapters/valkey-lease';
import { quotaGates } from '../adapters/valkey-quota-store';
import { ValkeyServingRecords } from '../adapters/valkey-serving-records';
import { ValkeyStaticAnswers } from '../adapters/valkey-static-answers';
import { ValkeyUserContextStore } from '../adapters/valkey-user-context-store';
import { ValkeyVectorStore } from '../adapters/valkey-vector-store';
import { abortable, withDeadline } from '../core/abortable';
import type { StaticAnswersDeps } from '../core/answer-caches';
import type { ChatMessage } from '../core/chat-request';
import { CircuitBreaker, CircuitOpenError, type CircuitBreakerOptions } from '../core/circuit-breaker';
import type { LeaseStore } from '../core/coalescing';
import type { ServingRecordStore } from '../core/feedback';
import type { AnswerCache, MetricsRecorder } from '../core/ports';
import type { QuotaGate } from '../core/quota';
import type { Embedder, SemanticEntry, StoreOptions, VectorMatch, VectorStore } from '../core/semantic/ports';
import type { PairGuard } from '../core/semantic/question-guard';
import { SemanticCache } from '../core/semantic/semantic-cache';
import type { UserContext, UserContextLimits, UserContextStore } from '../core/user-context';

/** The stores and clients a router container keeps between invocations. */
export interface RouterDependencies {
  readonly exactCache?: AnswerCache;
  /** Leases of request coalescing (on the cache connection, under the exact level's breaker); absent without coalescing. */
  readonly leases?: LeaseStore;
  readonly semanticCache?: SemanticCache;
  readonly staticAnswers?: StaticAnswersDeps;
  readonly userContext?: UserContextStore;
  /** Serving records for `POST /v1/feedback`; absent without feedback or without the cache connection. */
  readonly servingRecords?: ServingRecordStore;
  /** User profiles (reads on the reader endpoint, writes on the writer); absent when not configured. */
  readonly userProfiles?: UserProfileDependencies;
  /** The per-tenant quotas of `POST /v1/chat`; absent without quotas (or without a cache). */
  readonly quotas?: QuotaGate;
}

/**
 * Milliseconds a store build (a credential read, a connection, the index ensured) may take before
 * it counts as failed. Requests wait for it at most their level's own time limit; the build goes
 * on in the background until this limit.
 */
export const DEFAULT_BUILD_TIMEOUT_MS = 10_000;
/** Milliseconds a user context read or write may take before the request goes on without it. */
export const DEFAULT_USER_CONTEXT_TIMEOUT_MS = 1_000;

export interface DependencyBuilderOptions {
  /** Breaker settings of every dependency (tests inject a clock). */
  readonly breaker?: CircuitBreakerOptions;
  /** @default DEFAULT_BUILD_TIMEOUT_MS */
  readonly buildTimeoutMs?: number;
  /** @default DEFAULT_USER_CONTEXT_TIMEOUT_MS */
  readonly userContextTimeoutMs?: number;
}

/**
 * Builds the router's dependencies from its configuration, once per container, and keeps every
 * one of them from costing a request more than a bounded time:
 *
 * - Each build (the cache connection with its AUTH token, a vector store with its index) has a
 *   time limit; a build that fails or times out is dropped (never handed to a later request) and
 *   tried again by a later one, behind a circuit breaker of its own.
 * - A request waits for the cache connection at most its build limit (the secret read's
 *   deadline, at least 1 s); it waits for a vector store only inside the level that uses it, so
 *   the semantic level including its store build costs at most `semanticCache.timeoutMs`. The
 *   static answers' vector index is built in the background and used once it is there.
 * - Each level (exact, semantic, static, user context) has a circuit breaker: after repeated
 *   failures it is skipped for a cool-down, then probed again (see AnswerCaches.guarded).
 *
 * Whatever is unavailable is left out of the request, counted (`CacheErrors{CacheLevel=connection}`
 * for a failed build, `BreakerSkips{Dependency}` for a skipped one, `CircuitOpened{Dependency}`
 * when a breaker opens) and, for a failed build, logged: the router always answers, from a model
 * if need be. Modules of stores a deployment does not configure (pg, the OpenSearch client, the
 * DynamoDB SDK) are loaded on first use only.
 */
export class DependencyBuilder {
  private readonly breakerOptions: CircuitBreakerOptions;
  private readonly buildTimeoutMs: number;
  private readonly userContextTimeoutMs: number;
  private readonly connection?: Build<Valkey>;
  private readonly embedders = new Map<string, Embedder>();
  private readonly stores = new Map<string, Build<BuiltStore>>();
  private readonly builds: Array<Build<unknown>> = [];
  private readonly breakers = {} as Record<'exact' | 'semantic' | 'static' | 'context' | 'feedback', CircuitBreaker>;
  private readonly userProfiles?: UserProfileDependencies;
  private readonly quotaGate?: (valkey: Valkey | undefined) => QuotaGate;
  private withCache?: ContainerDependencies;
  private withoutCache?: ContainerDependencies;

  constructor(
    private readonly config: RouterRuntimeConfig,
    private readonly guard: PairGuard,
    private readonly logger: Logger,
    options: DependencyBuilderOptions = {},
  ) {
    this.breakerOptions = options.breaker ?? {};
    this.buildTimeoutMs = options.buildTimeoutMs ?? DEFAULT_BUILD_TIMEOUT_MS;
    this.userContextTimeoutMs = options.userContextTimeoutMs ?? DEFAULT_USER_CONTEXT_TIMEOUT_MS;
    for (const level of ['exact', 'semantic', 'static', 'context', 'feedback'] as const) this.breakers[level] = this.breaker(level);
    // Pools connect on first use: no build to bound here; each read and write is bounded.
    if (config.userProfiles) this.userProfiles = createUserProfileDependencies(config.userProfiles);
    this.quotaGate = quotaGates(config, this.breaker('quota'), { error: (message, attributes) => logger.error(message, attributes) });
    const cache = config.cache;
    if (cache) {
      // The connection object exists at once (iovalkey connects in the background and its
      // commands time out): the build is the AUTH token's read, bounded by its deadline.
      const limitMs = Math.max(cache.timeoutMs, DEFAULT_SECRET_TIMEOUT_MS);
      this.connection = this.build('cache-connection', limitMs, () => openCacheConnection(cache), (late) => late.disconnect());
    }
  }

  /** The dependencies of one request. Never waits longer than the cache connection's build limit. */
  async get(metrics: MetricsRecorder): Promise<RouterDependencies> {
    for (const b of this.builds) {
      if (b.takeOpened()) metrics.add(M.CIRCUIT_OPENED, 'Count', 1, { [M.DIMENSION_DEPENDENCY]: b.name });
    }
    let valkey: Valkey | undefined;
    if (this.connection) {
      try {
        valkey = await this.connection.get();
      } catch (err) {
        this.unavailable(this.connection.name, err, metrics);
      }
    }
    const base = valkey
      ? (this.withCache ??= this.containerDependencies(valkey))
      : (this.withoutCache ??= this.containerDependencies(undefined));

    let staticAnswers = base.staticAnswers;
    if (staticAnswers && base.staticIndex) {
      // Used once built; until then (and while it fails) static answers match exactly only.
      const index = base.staticIndex.built;
      if (index) staticAnswers = { ...staticAnswers, vectors: { embedder: base.staticIndex.embedder, store: index.store } };
      else base.staticIndex.prefetch();
    }
    const userContext = base.userContext
      ? new GuardedUserContextStore(base.userContext, this.breakers.context, this.userContextTimeoutMs, metrics)
      : undefined;
    return {
      exactCache: base.exactCache,
      leases: base.leases,
      semanticCache: base.semanticCache,
      staticAnswers,
      userContext,
      servingRecords: base.servingRecords,
      userProfiles: this.userProfiles,
      quotas: base.quotas,
    };
  }

  /** The built objects of a container, with or without the cache connection. */
  private containerDependencies(valkey: Valkey | undefined): ContainerDependencies {
    const c = this.config;
    const prefix = c.cache?.keyPrefix ?? '';
    const exactCache = valkey && c.exactCache ? new ValkeyAnswerCache(valkey, this.breakers.exact) : undefined;
    const leases = exactCache && c.coalescing ? new ValkeyLeaseStore(valkey!, this.breakers.exact) : undefined;

    let semanticCache: SemanticCache | undefined;
    if (c.semanticCache) {
      const semantic = c.semanticCache;
      const build = this.vectorStore('semantic-store', semantic.store, semantic.embedder.dimensions, prefix);
      build.prefetch();
      const store = new LazyVectorStore(build);
      semanticCache = new SemanticCache(this.embedder(semantic), store, this.guard, semanticOptions(semantic), this.breakers.semantic);
    }

    let staticAnswers: StaticAnswersDeps | undefined;
    let staticIndex: ContainerDependencies['staticIndex'];
    if (c.staticAnswers && valkey) {
      const s = c.staticAnswers;
      const embedder = s.threshold !== undefined && s.embedder ? this.embedder({ embedder: s.embedder }) : undefined;
      if (embedder && s.vectorIndex) {
        const build = this.vectorStore('static-index', { kind: 'valkey', indexName: s.vectorIndex.indexName, hnsw: s.vectorIndex.hnsw }, embedder.dimensions, prefix);
        staticIndex = { embedder, prefetch: () => build.prefetch(), get built() { return build.built; } };
      }
      staticAnswers = {
        store: new ValkeyStaticAnswers(valkey, { keyPrefix: prefix, expectedModelId: embedder?.modelId }),
        breaker: this.breakers.static,
      };
    }

    let userContext: UserContextStore | undefined;
    if (c.userContext?.kind === 'dynamodb' && c.userContext.tableName) {
      const { DynamoDbUserContextStore } = loadDynamoDbUserContextStore();
      userContext = new DynamoDbUserContextStore(c.userContext.tableName);
    } else if (c.userContext?.kind === 'valkey' && valkey) {
      userContext = new ValkeyUserContextStore(valkey, prefix);
    }
    const servingRecords = valkey && c.feedback ? new ValkeyServingRecords(valkey, this.breakers.feedback) : undefined;
    const quotas = this.quotaGate?.(valkey);
    return { exactCache, leases, semanticCache, staticAnswers, staticIndex, userContext, servingRecords, quotas };
  }

  private unavailable(what: string, err: unknown, metrics: MetricsRecorder): void {
    if (err instanceof CircuitOpenError) {
      metrics.add(M.BREAKER_SKIPS, 'Count', 1, { [M.DIMENSION_DEPENDENCY]: err.dependency });
      return;
    }
    this.logger.error(`${what} unavailable for this invocation`, err as Error);
    metrics.add(M.CACHE_ERRORS, 'Count', 1, { [M.DIMENSION_CACHE_LEVEL]: 'connection' });
  }

  private breaker(name: string): CircuitBreaker {
    return new CircuitBreaker(name, this.breakerOptions);
  }

  private build<T>(name: string, limitMs: number, make: (signal: AbortSignal) => Promise<T>, dispose?: (late: T) => void): Build<T> {
    const build = new Build(name, this.breaker(name), limitMs, make, dispose);
    this.builds.push(build as Build<unknown>);
    return build;
  }

  private embedder(c: Pick<SemanticCacheRuntimeConfig, 'embedder'>): Embedder {
    const key = JSON.stringify(c.embedder);
    let embedder = this.embedders.get(key);
    if (!embedder) this.embedders.set(key, (embedder = createEmbedder(c.embedder)));
    return embedder;
  }

  /** The build of a vector store with its index ensured; one per index, reused by both levels. */
  private vectorStore(name: string, c: VectorStoreRuntimeConfig, dimensions: number, keyPrefix: string): Build<BuiltStore> {
    const key = JSON.stringify(c);
    let build = this.stores.get(key);
    if (!build) {
      build = this.build(name, this.buildTimeoutMs, async (signal) => {
        const built = await this.createVectorStore(c, keyPrefix, signal);
        try {
          await built.store.ensureIndex(dimensions, signal);
        } catch (err) {
          built.close?.();
          throw err;
        }
        return built;
      }, (late) => late.close?.());
      this.stores.set(key, build);
    }
    return build;
  }

  private async createVectorStore(c: VectorStoreRuntimeConfig, keyPrefix: string, signal: AbortSignal): Promise<BuiltStore> {
    switch (c.kind) {
      case 'valkey': {
        if (!this.connection) throw new Error('the Valkey vector store needs the cache connection');
        const valkey = await abortable(this.connection.get(), signal);
        return { store: new ValkeyVectorStore(valkey, { keyPrefix, indexName: c.indexName ?? 'sai-semantic', hnsw: c.hnsw }) };
      }
      case 'opensearch': {
        const { OpenSearchVectorStore } = loadOpenSearchVectorStore();
        return {
          store: new OpenSearchVectorStore({
            endpoint: c.opensearch!.endpoint,
            index: c.opensearch!.index,
            hnsw: c.hnsw,
            region: process.env.AWS_REGION,
          }),
        };
      }
      case 'pgvector': {
        const pg = c.pgvector!;
        const secret = (await abortable(readSecret(pg.secretArn, { transform: 'json' }), signal)) as { username: string; password: string };
        const { PgVectorStore, createPgPool } = loadPgVectorStore();
        const pool = createPgPool({
          host: pg.host,
          port: pg.port,
          database: pg.database,
          user: secret.username,
          password: secret.password,
          ssl: pg.ssl ? { rejectUnauthorized: true } : undefined,
          max: 2,
          connectionTimeoutMillis: 2_000,
          // The router gives up on the semantic level after semanticCache.timeoutMs and aborts the
          // query's connection; the server-side limit ends a query the server still runs.
          statement_timeout: 5_000,
        });
        return { store: new PgVectorStore(pool, { table: pg.table, hnsw: c.hnsw }), close: () => void pool.end().catch(() => undefined) };
      }
    }
  }
}

/** What a container builds once: with the cache connection, or without it. */
interface ContainerDependencies {
  readonly exactCache?: AnswerCache;
  readonly leases?: LeaseStore;
  readonly semanticCache?: SemanticCache;
  readonly staticAnswers?: StaticAnswersDeps;
  readonly staticIndex?: { readonly embedder: Embedder; readonly built: BuiltStore | undefined; prefetch(): void };
  readonly userContext?: UserContextStore;
  readonly servingRecords?: ServingRecordStore;
  readonly quotas?: QuotaGate;
}

interface BuiltStore {
  readonly store: VectorStore;
  /** Releases the store's connections (a build abandoned at its limit). */
  readonly close?: () => void;
}

/**
 * A container-lifetime build: made once, kept once it succeeds. An attempt has a time limit; one
 * that fails or times out is dropped, so the next caller starts a new one (unless the breaker
 * is open: then callers are told so at once, until the cool-down lets a probe attempt through).
 * Callers share an attempt in flight, each waiting at most until its own signal aborts. A value
 * an abandoned attempt produces late is disposed of.
 */
export class Build<T> {
  private value?: T;
  private pending?: Promise<T>;
  private opened = false;

  constructor(
    readonly name: string,
    private readonly breaker: CircuitBreaker,
    private readonly limitMs: number,
    private readonly make: (signal: AbortSignal) => Promise<T>,
    private readonly dispose?: (late: T) => void,
  ) {}

  /** The value, if built. */
  get built(): T | undefined {
    return this.value;
  }

  /** The value; waits for it at most until `signal` aborts (and the attempt's limit). */
  get(signal?: AbortSignal): Promise<T> {
    if (this.value !== undefined) return Promise.resolve(this.value);
    if (!this.pending) {
      if (!this.breaker.tryAcquire()) return Promise.reject(new CircuitOpenError(this.name));
      const attempt = withDeadline(this.limitMs, this.name, this.make, undefined, this.dispose);
      this.pending = attempt;
      attempt.then(
        (value) => {
          this.value = value;
          this.pending = undefined;
          this.breaker.success();
        },
        () => {
          this.pending = undefined;
          if (this.breaker.failure()) this.opened = true;
        },
      );
    }
    return abortable(this.pending, signal);
  }

  /** Starts the build if it is not built or in flight (and the breaker allows it); never throws. */
  prefetch(): void {
    if (this.value === undefined && !this.pending) this.get().catch(() => undefined);
  }

  /** Whether the breaker opened since the last call (reported with the next request's metrics). */
  takeOpened(): boolean {
    const opened = this.opened;
    this.opened = false;
    return opened;
  }
}

/** A vector store that is built on first use, within the caller's time limit (its signal). */
class LazyVectorStore implements VectorStore {
  constructor(private readonly build: Build<BuiltStore>) {}

  async ensureIndex(): Promise<void> {
    // The build ensures the index.
  }

  async search(scope: string, vector: Float32Array, k: number, signal?: AbortSignal): Promise<VectorMatch[]> {
    return (await this.build.get(signal)).store.search(scope, vector, k, signal);
  }

  async put(entry: SemanticEntry, options: StoreOptions, signal?: AbortSignal): Promise<void> {
    return (await this.build.get(signal)).store.put(entry, options, signal);
  }

  async deleteScope(scope: string, signal?: AbortSignal): Promise<void> {
    return (await this.build.get(signal)).store.deleteScope(scope, signal);
  }

  async deleteEntry(scope: string, id: string, signal?: AbortSignal): Promise<boolean> {
    const { store } = await this.build.get(signal);
    if (!store.deleteEntry) throw new Error('this vector store cannot delete an entry');
    return store.deleteEntry(scope, id, signal);
  }

  async deleteScopePrefix(scopePrefix: string): Promise<void> {
    const { store } = await this.build.get();
    // Every store of the library can; a store that cannot must not let DELETE /v1/context succeed.
    if (!store.deleteScopePrefix) throw new Error('this vector store cannot delete a user\'s personal entries');
    return store.deleteScopePrefix(scopePrefix);
  }
}

/**
 * The user context level of one request: reads and appends are bounded in time and go through
 * the level's breaker (an open breaker: no context read, nothing appended, `BreakerSkips`
 * counted); the explicit writes of the context endpoints are bounded in time and always tried.
 */
export class GuardedUserContextStore implements UserContextStore {
  constructor(
    private readonly store: UserContextStore,
    private readonly breaker: CircuitBreaker,
    private readonly timeoutMs: number,
    private readonly metrics: MetricsRecorder,
  ) {}

  load(tenantId: string, userId: string, sessionId: string, maxTurns: number): Promise<UserContext> {
    return this.guarded(() => this.store.load(tenantId, userId, sessionId, maxTurns), { turns: [], preferences: {} });
  }

  appendTurns(tenantId: string, userId: string, sessionId: string, turns: ChatMessage[], limits: UserContextLimits): Promise<void> {
    return this.guarded(() => this.store.appendTurns(tenantId, userId, sessionId, turns, limits), undefined);
  }

  setPreferences(tenantId: string, userId: string, preferences: Record<string, string>, ttlSeconds: number): Promise<void> {
    return withDeadline(this.timeoutMs, 'the user context', () => this.store.setPreferences(tenantId, userId, preferences, ttlSeconds));
  }

  clear(tenantId: string, userId: string): Promise<void> {
    return withDeadline(this.timeoutMs, 'the user context', () => this.store.clear(tenantId, userId));
  }

  private async guarded<T>(op: () => Promise<T>, skipped: T): Promise<T> {
    if (!this.breaker.tryAcquire()) {
      this.metrics.add(M.BREAKER_SKIPS, 'Count', 1, { [M.DIMENSION_DEPENDENCY]: 'context' });
      return skipped;
    }
    try {
      const result = await withDeadline(this.timeoutMs, 'the user context', () => op());
      this.breaker.success();
      return result;
    } catch (err) {
      if (this.breaker.failure()) this.metrics.add(M.CIRCUIT_OPENED, 'Count', 1, { [M.DIMENSION_DEPENDENCY]: 'context' });
      throw err;
    }
  }
}

// Stores a deployment may not configure are loaded on first use (esbuild turns these require()
// calls into lazily evaluated module wrappers): a router on Valkey never loads pg, the OpenSearch
// client or the DynamoDB SDK, which would add to every cold start.
/* eslint-disable @typescript-eslint/no-require-imports */
function loadPgVectorStore(): typeof import('../adapters/pgvector-store') {
  return require('../adapters/pgvector-store') as typeof import('../adapters/pgvector-store');
}
function loadOpenSearchVectorStore(): typeof import('../adapters/opensearch-vector-store') {
  return require('../adapters/opensearch-vector-store') as typeof import('../adapters/opensearch-vector-store');
}
function loadDynamoDbUserContextStore(): typeof import('../adapters/dynamodb-user-context-store') {
  return require('../adapters/dynamodb-user-context-store') as typeof import('../adapters/dynamodb-user-context-store');
}
/* eslint-enable @typescript-eslint/no-require-imports */

/** The decision and storage settings of the semantic cache, as configured. */
export function semanticOptions(c: SemanticCacheRuntimeConfig): SemanticCache['options'] {
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
