/**
 * The configuration the constructs hand to the handlers (as JSON in an environment variable).
 *
 * Both sides import these types, so a construct cannot write a shape the handler cannot read.
 * Internal: not exported from the package root. No aws-cdk-lib imports (handlers bundle this file).
 */

/** Environment variable that carries the JSON-serialized {@link RouterRuntimeConfig}. */
export const ROUTER_CONFIG_ENV = 'SCALABLE_AI_ROUTER_CONFIG';
/**
 * Environment variable that carries, instead of ROUTER_CONFIG_ENV, the name of the SSM parameter
 * (String) that holds the JSON-serialized {@link RouterRuntimeConfig}: for configurations that
 * would push a function's environment past Lambda's 4 KB. Read once per container, at cold start.
 */
export const ROUTER_CONFIG_PARAMETER_ENV = 'SCALABLE_AI_ROUTER_CONFIG_PARAMETER';
/** Environment variable that carries the JSON-serialized {@link StaticAnswersLoaderRuntimeConfig}. */
export const STATIC_LOADER_CONFIG_ENV = 'SCALABLE_AI_STATIC_LOADER_CONFIG';

/** Providers a tier can be served by. */
export type TierProvider = 'bedrock' | 'sagemaker';

/** Request/response formats a SageMaker container can speak. */
export type SageMakerApiFormat = 'openai-chat';

export interface TierRuntimeConfig {
  /** Tier id, unique within a router (`small`, `medium`, `large`, ...). */
  readonly id: string;
  readonly provider: TierProvider;
  /** Bedrock model id or inference profile id/ARN (provider `bedrock`). */
  readonly modelId?: string;
  /** SageMaker endpoint name (provider `sagemaker`). */
  readonly endpointName?: string;
  /** Container API format (provider `sagemaker`). */
  readonly apiFormat?: SageMakerApiFormat;
  /** Inference component to invoke on the endpoint (provider `sagemaker`, endpoints of inference components). */
  readonly inferenceComponentName?: string;
  /** USD per 1,000 input tokens. */
  readonly inputPricePer1k: number;
  /** USD per 1,000 output tokens. */
  readonly outputPricePer1k: number;
  /** Upper bound of output tokens requested from this tier. */
  readonly maxTokens: number;
  /** Per-invocation timeout in milliseconds. */
  readonly timeoutMs: number;
  /**
   * Bedrock service tier to ask for (Converse `serviceTier.type`; provider `bedrock`). Absent:
   * none is sent and Bedrock serves at Standard (`default`).
   */
  readonly serviceTier?: BedrockServiceTierName;
  /**
   * Prices of a request Bedrock served at Flex or Priority (provider `bedrock`). The router prices
   * a response at the service tier the response says served it (else the one it asked for);
   * `inputPricePer1k` / `outputPricePer1k` are the Standard prices, and also price a served tier
   * absent here.
   */
  readonly serviceTierPrices?: ServiceTierPricesRuntimeConfig;
}

/** Bedrock service tiers a request can ask for: Standard (`default`), Flex and Priority. */
export type BedrockServiceTierName = 'default' | 'flex' | 'priority';

/** USD per 1,000 tokens of a request served at one Bedrock service tier. */
export interface TierPricesRuntimeConfig {
  readonly inputPricePer1k: number;
  readonly outputPricePer1k: number;
}

/** Prices per Bedrock service tier other than Standard (absent: not priced, so not asked for). */
export interface ServiceTierPricesRuntimeConfig {
  readonly flex?: TierPricesRuntimeConfig;
  readonly priority?: TierPricesRuntimeConfig;
}

/** How to reach the Valkey replication group of `ResponseCache`. */
export interface CacheConnectionRuntimeConfig {
  readonly host: string;
  readonly port: number;
  readonly tls: boolean;
  /** Secrets Manager secret holding the AUTH token (absent: no AUTH). */
  readonly authSecretArn?: string;
  /** Prefix of every key the library writes. */
  readonly keyPrefix: string;
  /** Milliseconds to wait for the cache before failing open. */
  readonly timeoutMs: number;
}

export interface ExactCacheRuntimeConfig {
  readonly ttlSeconds: number;
}

/**
 * Request coalescing: of identical cacheable requests that miss the caches at the same time, one
 * asks a model and the others wait for its answer in the exact cache (see lambdas/core/coalescing.ts).
 * The lease lives as long as its holder's model calls may take (derived from the tiers' timeouts).
 */
export interface CoalescingRuntimeConfig {
  /** Milliseconds a request waits for an identical request's answer before it calls a model itself. */
  readonly maxWaitMs: number;
}

/** Embedding model of the semantic cache and the static answers. */
export interface EmbedderRuntimeConfig {
  /** `bedrock` (Titan Text Embeddings V2 or another Bedrock embedding model) or `sagemaker`. */
  readonly provider: 'bedrock' | 'sagemaker';
  /** Bedrock model id (provider `bedrock`). */
  readonly modelId?: string;
  /** SageMaker endpoint name (provider `sagemaker`). */
  readonly endpointName?: string;
  /** Vector dimensions. */
  readonly dimensions: number;
}

/** HNSW parameters of a vector index. */
export interface HnswRuntimeConfig {
  readonly m: number;
  readonly efConstruction: number;
  readonly efSearch: number;
}

/** Where the semantic cache keeps its vectors. */
export interface VectorStoreRuntimeConfig {
  readonly kind: 'valkey' | 'opensearch' | 'pgvector';
  readonly hnsw: HnswRuntimeConfig;
  /** Valkey: FT index name (on the cache connection). */
  readonly indexName?: string;
  /** OpenSearch Serverless: collection endpoint (https://...aoss.amazonaws.com) and index. */
  readonly opensearch?: { readonly endpoint: string; readonly index: string };
  /** Aurora PostgreSQL with pgvector: where to connect and which table to use. */
  readonly pgvector?: {
    readonly host: string;
    readonly port: number;
    readonly database: string;
    /** Secrets Manager secret with `username` and `password` (the RDS secret format). */
    readonly secretArn: string;
    readonly table: string;
    readonly ssl: boolean;
  };
}

export interface SemanticCacheRuntimeConfig {
  readonly embedder: EmbedderRuntimeConfig;
  readonly store: VectorStoreRuntimeConfig;
  /** Cosine similarity at or above which a cached question may answer. */
  readonly threshold: number;
  /**
   * How much closer the answering entry must be than a rival: an entry with a different answer
   * that `rivalSupport` neighbours hold. Between two answers the cache cannot tell which one is
   * meant, so it asks a model instead.
   */
  readonly margin: number;
  /** Neighbours that must hold a different answer before it counts as a rival. */
  readonly rivalSupport: number;
  /** Cosine similarity of two answers' embeddings at or above which they count as the same answer. */
  readonly answerEquivalence: number;
  /** Neighbours fetched per lookup (the candidates for the guard and the margin test). */
  readonly neighbours: number;
  readonly ttlSeconds: number;
  readonly maxEntriesPerScope: number;
  /**
   * Milliseconds a semantic lookup or write (embedding + vector search) may take before the
   * router gives up on it and fails open (absent: DEFAULT_SEMANTIC_TIMEOUT_MS).
   */
  readonly timeoutMs?: number;
}

export interface StaticAnswersRuntimeConfig {
  /** Cosine similarity at or above which a static answer matches semantically (absent: exact matches only). */
  readonly threshold?: number;
  /** `Cache-Control` max-age of `GET /v1/static-answers`, in seconds. */
  readonly maxAgeSeconds: number;
  /** The embedder the loader used for the question variants (with `threshold`). */
  readonly embedder?: EmbedderRuntimeConfig;
  /** The Valkey vector index the loader wrote the variants to (with `threshold`). */
  readonly vectorIndex?: { readonly indexName: string; readonly hnsw: HnswRuntimeConfig };
}

export interface UserContextRuntimeConfig {
  /** `valkey` (on the cache connection) or `dynamodb`. */
  readonly kind: 'valkey' | 'dynamodb';
  /** DynamoDB table name (kind `dynamodb`). */
  readonly tableName?: string;
  /** Most recent turns kept per session. */
  readonly maxTurns: number;
  readonly ttlSeconds: number;
}

export type TierHintPolicy = 'ignore' | 'cheaper-only' | 'any';

export type TenantSource = 'iam' | 'jwt';

/** Where answers produced for one user (a conversation, merged user context) may be cached. */
export type PersonalCaching = 'user' | 'none';

export interface RouterRuntimeConfig {
  /** Tiers in ascending order of capability and price. */
  readonly tiers: TierRuntimeConfig[];
  /** Tier ids to try, in order, after the selected tier fails (absent: upward, then downward). */
  readonly fallbackOrder?: string[];
  readonly tierHintPolicy: TierHintPolicy;
  /** Requests with a larger body are answered 413. */
  readonly maxRequestBytes: number;
  /** Most messages a conversation may carry. */
  readonly maxMessages: number;
  /** Complexity score thresholds between consecutive tiers (length = tiers - 1). */
  readonly classifierThresholds?: number[];
  readonly tenant: {
    readonly source: TenantSource;
    /** JWT claim that carries the tenant id (source `jwt`). */
    readonly claim?: string;
  };
  /** Personal answers: cached per user, or not at all. */
  readonly personalCaching: PersonalCaching;
  /** The Valkey connection shared by the cache levels that live in Valkey. */
  readonly cache?: CacheConnectionRuntimeConfig;
  readonly exactCache?: ExactCacheRuntimeConfig;
  /** Request coalescing of identical requests in flight (needs `exactCache`); absent: off. */
  readonly coalescing?: CoalescingRuntimeConfig;
  readonly semanticCache?: SemanticCacheRuntimeConfig;
  readonly staticAnswers?: StaticAnswersRuntimeConfig;
  readonly userContext?: UserContextRuntimeConfig;
  /** Serving records for `POST /v1/feedback` (in the response cache); absent without a cache. */
  readonly feedback?: FeedbackRuntimeConfig;
  /** Requests must come through the edge (CloudFront) with the origin secret; absent: no check. */
  readonly originVerification?: OriginVerificationRuntimeConfig;
  /** User profiles in Aurora PostgreSQL: read through the reader endpoint, written through the writer. */
  readonly userProfiles?: UserProfilesRuntimeConfig;
  /** Per-tenant (and per-user) quotas, counted on the cache connection; absent: none. */
  readonly quotas?: QuotasRuntimeConfig;
}

/**
 * Limits of one tenant (and of each of its users). A limit that is absent or null is not
 * enforced; 0 refuses every request.
 */
export interface QuotaLimitsRuntimeConfig {
  /** Requests per UTC minute of the tenant. */
  readonly requestsPerMinute?: number | null;
  /** Model cost in USD per UTC day of the tenant. */
  readonly costPerDayUsd?: number | null;
  /** Requests per UTC minute of one user of the tenant. */
  readonly userRequestsPerMinute?: number | null;
  /** Model cost in USD per UTC day of one user of the tenant. */
  readonly userCostPerDayUsd?: number | null;
}

/** Per-tenant quotas of the router. */
export interface QuotasRuntimeConfig {
  /** The limits of every tenant without an override. */
  readonly defaults: QuotaLimitsRuntimeConfig;
  /** Quota state that cannot be read: admit the request (`open`) or answer 503 (`closed`). */
  readonly failMode: 'open' | 'closed';
  /** SSM parameter (String) with the overrides JSON `{ "tenants": { "<tenant>": limits } }`; absent: none. */
  readonly overridesParameter?: string;
  /** Seconds the router keeps the overrides before reading them again. */
  readonly overridesTtlSeconds: number;
}

/** The origin secret a request through the edge carries (see constructs/contract/edge.ts). */
export interface OriginVerificationRuntimeConfig {
  /** Secrets Manager secret (plain SecretString) in the router's own Region (a replica is fine). */
  readonly secretArn: string;
  /** Seconds the router keeps the secret's versions before reading them again. */
  readonly refreshSeconds: number;
  /**
   * `s-maxage` of static answers to a request whose tenant the edge verified (the tenant is in
   * CloudFront's cache key); other requests keep `private`.
   */
  readonly edgeCacheSeconds: number;
}

/** One Postgres endpoint (an RDS Proxy endpoint or an Aurora cluster endpoint). */
export interface PostgresEndpointRuntimeConfig {
  readonly host: string;
  readonly port: number;
}

/** Where the router reads and writes user profiles. */
export interface UserProfilesRuntimeConfig {
  /** Writes go here only. */
  readonly writer: PostgresEndpointRuntimeConfig;
  /** Reads go here only. */
  readonly reader: PostgresEndpointRuntimeConfig;
  readonly database: string;
  /** Database user; with IAM authentication the password is an RDS auth token for this user. */
  readonly username: string;
  /** `iam`: RDS IAM auth tokens (RDS Proxy); `secret`: the password from `secretArn`. */
  readonly auth: 'iam' | 'secret';
  /** Secrets Manager secret with `password` (auth `secret`). */
  readonly secretArn?: string;
  readonly table: string;
  /** Milliseconds a profile read or write may take before the router gives up on it. */
  readonly timeoutMs: number;
  /**
   * The writer is an Aurora global secondary that forwards writes to the primary Region: DML
   * only, so the router does not create the table (a writer of the primary Region does).
   */
  readonly writeForwarding?: boolean;
}

/** How long the router remembers how it served an answer, for a verdict on it. */
export interface FeedbackRuntimeConfig {
  /** Seconds a serving record lives: a verdict after that gets a 404. */
  readonly windowSeconds: number;
}

/** Configuration of the static answers loader. */
export interface StaticAnswersLoaderRuntimeConfig {
  readonly bucketName: string;
  /** Key prefix of the answer files. */
  readonly prefix: string;
  readonly cache: CacheConnectionRuntimeConfig;
  /** Embedder for semantic matching (absent: exact matches only). */
  readonly embedder?: EmbedderRuntimeConfig;
  /** Vector index of the static answers in Valkey (with `embedder`). */
  readonly vectorIndex?: { readonly indexName: string; readonly hnsw: HnswRuntimeConfig };
}

/** Environment variable that carries the JSON-serialized {@link JobsRuntimeConfig}. */
export const JOBS_CONFIG_ENV = 'SCALABLE_AI_JOBS_CONFIG';

/** Bedrock batch inference ("bulk mode") of the batch pipeline. */
export interface BulkRuntimeConfig {
  /** Bucket of the JSONL input and output files. */
  readonly bucketName: string;
  readonly inputPrefix: string;
  readonly outputPrefix: string;
  /** Role Bedrock assumes to read the input and write the output. */
  readonly roleArn: string;
  /** Tier of the router whose Bedrock model runs bulk jobs (its prices, halved, are the cost). */
  readonly tierId: string;
  /** Bedrock's minimum number of records per batch inference job; smaller lists are refused. */
  readonly minItems: number;
  /** Most records per bulk job. */
  readonly maxItems: number;
  /** Hours before Bedrock times the job out. */
  readonly timeoutHours: number;
}

/**
 * Configuration of the batch pipeline's handlers (jobs API, batch worker, bulk completion). The
 * worker also reads the router's configuration (ROUTER_CONFIG_ENV or ROUTER_CONFIG_PARAMETER_ENV):
 * the same tiers and caches.
 */
export interface JobsRuntimeConfig {
  /** DynamoDB table of jobs and their results (partition key `pk`, sort key `sk`, TTL `expiresAt`). */
  readonly resultsTable: string;
  /** DynamoDB table of Powertools idempotency records (partition key `id`, TTL `expiration`). */
  readonly idempotencyTable: string;
  /** URL of the jobs queue. */
  readonly queueUrl: string;
  /** Seconds a job and its results are kept. */
  readonly resultTtlSeconds: number;
  /** Seconds an Idempotency-Key is remembered. */
  readonly idempotencyTtlSeconds: number;
  /** Most requests in one queued (non-bulk) job. */
  readonly maxItemsPerJob: number;
  /** Receives after which the worker records a failed result instead of leaving the message to the DLQ. */
  readonly maxReceiveCount: number;
  /** Concurrent model invocations per tier within one worker batch. */
  readonly tierConcurrency: number;
  /**
   * Service tier the worker asks the router's Bedrock tiers for, instead of each tier's own; only
   * tiers priced at it (`serviceTierPrices`) take it. Absent: each tier's own.
   */
  readonly serviceTier?: BedrockServiceTierName;
  readonly bulk?: BulkRuntimeConfig;
}

/** Prefix of the Bedrock batch inference job names of bulk jobs (the completion rule filters on it). */
export const BULK_JOB_NAME_PREFIX = 'sai-bulk-';
