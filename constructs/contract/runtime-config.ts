/**
 * The configuration the constructs hand to the handlers (as JSON in an environment variable).
 *
 * Both sides import these types, so a construct cannot write a shape the handler cannot read.
 * Internal: not exported from the package root. No aws-cdk-lib imports (handlers bundle this file).
 */

/** Environment variable that carries the JSON-serialized {@link RouterRuntimeConfig}. */
export const ROUTER_CONFIG_ENV = 'SCALABLE_AI_ROUTER_CONFIG';

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
  /** USD per 1,000 input tokens. */
  readonly inputPricePer1k: number;
  /** USD per 1,000 output tokens. */
  readonly outputPricePer1k: number;
  /** Upper bound of output tokens requested from this tier. */
  readonly maxTokens: number;
  /** Per-invocation timeout in milliseconds. */
  readonly timeoutMs: number;
}

export interface ExactCacheRuntimeConfig {
  readonly host: string;
  readonly port: number;
  readonly tls: boolean;
  /** Secrets Manager secret holding the AUTH token (absent: no AUTH). */
  readonly authSecretArn?: string;
  readonly ttlSeconds: number;
  /** Prefix of every key the library writes. */
  readonly keyPrefix: string;
  /** Milliseconds to wait for the cache before failing open. */
  readonly timeoutMs: number;
}

export type TierHintPolicy = 'ignore' | 'cheaper-only' | 'any';

export type TenantSource = 'iam' | 'jwt';

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
  readonly exactCache?: ExactCacheRuntimeConfig;
}
