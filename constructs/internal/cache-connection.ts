import type { Duration } from 'aws-cdk-lib';
import type { IResponseCache } from '../cache/response-cache';
import type { CacheConnectionRuntimeConfig } from '../contract/runtime-config';

/** How a handler reaches the Valkey replication group of `cache`. */
export function cacheConnectionConfig(cache: IResponseCache, timeout: Duration): CacheConnectionRuntimeConfig {
  return {
    host: cache.endpointAddress,
    port: cache.port,
    tls: true,
    authSecretArn: cache.authSecret.secretArn,
    keyPrefix: cache.keyPrefix,
    timeoutMs: timeout.toMilliseconds(),
  };
}
