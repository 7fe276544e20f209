/** Clients built from the runtime configuration, shared by the router and the loader. */
import { getSecret } from '@aws-lambda-powertools/parameters/secrets';
import { BedrockRuntimeClient } from '@aws-sdk/client-bedrock-runtime';
import { SageMakerRuntimeClient } from '@aws-sdk/client-sagemaker-runtime';
import type Valkey from 'iovalkey';
import { SageMakerEmbedder } from './sagemaker-embedder';
import { BedrockEmbedder } from './titan-embedder';
import { connectValkey } from './valkey-answer-cache';
import type { CacheConnectionRuntimeConfig, EmbedderRuntimeConfig } from '../../constructs/contract/runtime-config';
import type { Embedder } from '../core/semantic/ports';

/**
 * Connects to the cache with its AUTH token from Secrets Manager (cached by Powertools for an
 * hour). `minTimeoutMs` lets batch jobs wait longer than the router, which fails open fast.
 */
export async function openCacheConnection(c: CacheConnectionRuntimeConfig, minTimeoutMs = 0): Promise<Valkey> {
  const password = c.authSecretArn ? ((await getSecret(c.authSecretArn, { maxAge: 3600 })) as string | undefined) : undefined;
  return connectValkey({ host: c.host, port: c.port, tls: c.tls, password, timeoutMs: Math.max(c.timeoutMs, minTimeoutMs) });
}

/** The embedder a configuration names. `maxAttempts` 1 in the request path, more in batch jobs. */
export function createEmbedder(c: EmbedderRuntimeConfig, maxAttempts = 1): Embedder {
  return c.provider === 'bedrock'
    ? new BedrockEmbedder(c, new BedrockRuntimeClient({ maxAttempts }))
    : new SageMakerEmbedder(c, new SageMakerRuntimeClient({ maxAttempts }));
}
