/** Clients built from the runtime configuration, shared by the router and the loader. */
import * as http from 'node:http';
import * as https from 'node:https';
import { SecretsProvider } from '@aws-lambda-powertools/parameters/secrets';
import { BedrockRuntimeClient } from '@aws-sdk/client-bedrock-runtime';
import type { SageMakerRuntimeClient } from '@aws-sdk/client-sagemaker-runtime';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { NodeHttp2Handler, NodeHttpHandler } from '@smithy/node-http-handler';
import type Valkey from 'iovalkey';
import { traced } from './powertools-tracing';
import { PerCallSignalHandler, withPerCallSignals } from './sdk-handler-cache';
import { BedrockEmbedder } from './titan-embedder';
import { connectValkey } from './valkey-answer-cache';
import type { CacheConnectionRuntimeConfig, EmbedderRuntimeConfig } from '../../constructs/contract/runtime-config';
import { withDeadline } from '../core/abortable';
import type { Embedder } from '../core/semantic/ports';

/**
 * Milliseconds a Secrets Manager read may take (connecting, then waiting for the answer) before
 * it fails: a credential that cannot be read leaves its dependency out, it never holds a request.
 */
export const DEFAULT_SECRET_TIMEOUT_MS = 1_000;

/** Keep-alive agents: every AWS client of a container reuses its connections between invocations. */
function keepAliveHandler(options: { connectionTimeout?: number; requestTimeout?: number; throwOnRequestTimeout?: boolean } = {}): NodeHttpHandler {
  return new NodeHttpHandler({
    httpAgent: new http.Agent({ keepAlive: true, maxSockets: 50 }),
    httpsAgent: new https.Agent({ keepAlive: true, maxSockets: 50 }),
    ...options,
  });
}

const bedrockClients = new Map<number, BedrockRuntimeClient>();
const sageMakerClients = new Map<number, SageMakerRuntimeClient>();

/**
 * The container's Bedrock Runtime client (one per `maxAttempts`). The SDK's default HTTP/2 handler
 * sets `disableConcurrentStreams`, which opens a new connection (TCP + TLS + HTTP/2 handshake) for
 * every call; this one keeps one HTTP/2 session per endpoint and multiplexes the calls on it. Its
 * middleware stack is composed once, not per call (sdk-handler-cache.ts).
 */
export function bedrockRuntimeClient(maxAttempts = 1): BedrockRuntimeClient {
  let client = bedrockClients.get(maxAttempts);
  if (!client) {
    client = withPerCallSignals(traced(new BedrockRuntimeClient({
      maxAttempts,
      cacheMiddleware: true,
      requestHandler: new PerCallSignalHandler(new NodeHttp2Handler({ disableConcurrentStreams: false })),
    })));
    bedrockClients.set(maxAttempts, client);
  }
  return client;
}

/** The container's SageMaker Runtime client (one per `maxAttempts`), on keep-alive connections, its middleware composed once. */
export function sageMakerRuntimeClient(maxAttempts = 1): SageMakerRuntimeClient {
  let client = sageMakerClients.get(maxAttempts);
  if (!client) {
    // Loaded on first use: a router without SageMaker tiers or embedders never loads this client.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const sdk = require('@aws-sdk/client-sagemaker-runtime') as typeof import('@aws-sdk/client-sagemaker-runtime');
    client = withPerCallSignals(traced(new sdk.SageMakerRuntimeClient({
      maxAttempts,
      cacheMiddleware: true,
      requestHandler: new PerCallSignalHandler(keepAliveHandler()),
    })));
    sageMakerClients.set(maxAttempts, client);
  }
  return client;
}

let secretsClient: SecretsManagerClient | undefined;
/**
 * One provider per version stage: Powertools caches by secret name and transform only, so a
 * provider that read two stages of one secret would answer one stage with the other's value.
 */
const secretProviders = new Map<string, SecretsProvider>();

export interface ReadSecretOptions {
  readonly transform?: 'json';
  /** @default DEFAULT_SECRET_TIMEOUT_MS */
  readonly timeoutMs?: number;
  /**
   * The version stage to read (AWSCURRENT, AWSPENDING, AWSPREVIOUS, or a label of your own).
   * @default the AWSCURRENT version (GetSecretValue without VersionStage)
   */
  readonly stage?: string;
  /** Read from Secrets Manager even when a value is cached (for callers that keep their own). @default false */
  readonly fresh?: boolean;
  /**
   * Resolve to undefined, instead of failing, when Secrets Manager answers ResourceNotFoundException:
   * no version carries `stage` (or there is no such secret).
   * @default false
   */
  readonly undefinedIfNotFound?: boolean;
}

/**
 * Reads a secret (cached by Powertools for an hour, per stage) within `timeoutMs`: the Secrets
 * Manager client gives up on a connection or an answer that does not come, and the read is
 * abandoned at the deadline whatever the client does.
 */
export function readSecret(secretArn: string, options: ReadSecretOptions = {}): Promise<unknown> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_SECRET_TIMEOUT_MS;
  const provider = secretProvider(options.stage ?? '', timeoutMs);
  const get = { maxAge: 3600, forceFetch: options.fresh === true, ...(options.stage ? { sdkOptions: { VersionStage: options.stage } } : {}) };
  return withDeadline<unknown>(timeoutMs, `reading the secret ${secretArn}`, async () => {
    try {
      return await (options.transform === 'json' ? provider.get(secretArn, { ...get, transform: 'json' }) : provider.get(secretArn, get));
    } catch (err) {
      if (options.undefinedIfNotFound && isNotFound(err)) return undefined;
      throw err;
    }
  });
}

function secretProvider(stage: string, timeoutMs: number): SecretsProvider {
  secretsClient ??= traced(new SecretsManagerClient({
    maxAttempts: 1,
    requestHandler: keepAliveHandler({ connectionTimeout: timeoutMs, requestTimeout: timeoutMs, throwOnRequestTimeout: true }),
  }));
  let provider = secretProviders.get(stage);
  if (!provider) {
    provider = new SecretsProvider({ awsSdkV3Client: secretsClient });
    secretProviders.set(stage, provider);
  }
  return provider;
}

/** Secrets Manager's ResourceNotFoundException, which Powertools wraps (as `cause`). */
function isNotFound(err: unknown): boolean {
  const e = err as { name?: string; cause?: { name?: string } };
  return (e.cause?.name ?? e.name) === 'ResourceNotFoundException';
}

/**
 * Connects to the cache with its AUTH token from Secrets Manager (cached by Powertools for an
 * hour). `minTimeoutMs` lets batch jobs wait longer than the router, which fails open fast.
 */
export async function openCacheConnection(c: CacheConnectionRuntimeConfig, minTimeoutMs = 0): Promise<Valkey> {
  const timeoutMs = Math.max(c.timeoutMs, minTimeoutMs);
  const password = c.authSecretArn
    ? ((await readSecret(c.authSecretArn, { timeoutMs: Math.max(timeoutMs, DEFAULT_SECRET_TIMEOUT_MS) })) as string | undefined)
    : undefined;
  return connectValkey({ host: c.host, port: c.port, tls: c.tls, password, timeoutMs });
}

/** The embedder a configuration names. `maxAttempts` 1 in the request path, more in batch jobs. */
export function createEmbedder(c: EmbedderRuntimeConfig, maxAttempts = 1): Embedder {
  if (c.provider === 'bedrock') return new BedrockEmbedder(c, bedrockRuntimeClient(maxAttempts));
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { SageMakerEmbedder } = require('./sagemaker-embedder') as typeof import('./sagemaker-embedder');
  return new SageMakerEmbedder(c, sageMakerRuntimeClient(maxAttempts));
}
