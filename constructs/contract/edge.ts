/**
 * What the edge (CloudFront, its Lambda@Edge verifier, the origin secret rotation) and the
 * regional router agree on. Internal: not exported from the package root. No aws-cdk-lib imports
 * (handlers bundle this file).
 */

/**
 * Header CloudFront adds to every origin request: the current origin secret. A router with origin
 * verification answers 403 to a request without a valid one, so its API cannot be called around
 * the distribution (and its WAF).
 */
export const ORIGIN_SECRET_HEADER = 'x-origin-verify';

/**
 * Header the edge verifier (Lambda@Edge, viewer request) sets to the tenant claim of a JWT it
 * verified, after removing any value the viewer sent. It is part of the static answers cache key,
 * so a cached answer is only ever served to callers of the tenant it was made for.
 */
export const EDGE_TENANT_HEADER = 'x-edge-tenant';

/** Unauthenticated route that Route 53 health checks call; it answers 200 and nothing else. */
export const HEALTH_PATH = '/v1/health';

/**
 * File beside the Lambda@Edge verifier's code that holds its {@link EdgeAuthRuntimeConfig}
 * (Lambda@Edge functions have no environment variables).
 */
export const EDGE_AUTH_CONFIG_FILE = 'edge-auth-config.json';

/** Configuration of the Lambda@Edge JWT verifier. */
export interface EdgeAuthRuntimeConfig {
  /** Issuer URL; the token's `iss` claim must equal it. */
  readonly issuer: string;
  /** Accepted audiences (`aud`, or `client_id` of Cognito access tokens). */
  readonly audience: string[];
  /** Claim that names the tenant. */
  readonly tenantClaim: string;
  /** Where the signing keys are (absent: `<issuer>/.well-known/jwks.json`). */
  readonly jwksUri?: string;
}

/** Environment variable that carries the JSON-serialized {@link OriginSecretRotationRuntimeConfig}. */
export const ORIGIN_ROTATION_CONFIG_ENV = 'SCALABLE_AI_ORIGIN_ROTATION_CONFIG';

/** Configuration of the origin secret rotation function. */
export interface OriginSecretRotationRuntimeConfig {
  /** The distribution whose origins carry the secret in {@link ORIGIN_SECRET_HEADER}. */
  readonly distributionId: string;
}
