import type { S3ClientConfig } from '@aws-sdk/client-s3';

/**
 * The S3 client's configuration. With an endpoint override (`AWS_ENDPOINT_URL_S3` or
 * `AWS_ENDPOINT_URL`: a local or S3-compatible server) requests use path-style addressing
 * (`<endpoint>/<bucket>/<key>`): the SDK has no environment variable for it, and virtual-hosted
 * style would put the bucket into the endpoint's host name (`bucket.localhost`), which such
 * servers do not resolve. Without an override nothing changes (virtual-hosted style on AWS).
 */
export function s3ClientConfig(env: NodeJS.ProcessEnv = process.env, maxAttempts = 4): S3ClientConfig {
  const ignored = env.AWS_IGNORE_CONFIGURED_ENDPOINT_URLS?.toLowerCase() === 'true';
  const override = !ignored && Boolean(env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL);
  return { maxAttempts, ...(override ? { forcePathStyle: true } : {}) };
}
