/**
 * The Lambda@Edge JWT verifier (viewer request): a request with a valid token goes on with
 * `x-edge-tenant` set to the token's tenant claim, which is part of the static answers cache key;
 * any other request is answered 401 at the edge. No Lambda handler types: the handler adapts.
 */
import { JwtRsaVerifier } from 'aws-jwt-verify';
import { FetchError, JwksNotAvailableInCacheError } from 'aws-jwt-verify/error';
import { fetch, SimpleFetcher } from 'aws-jwt-verify/https';
import { SimpleJwksCache } from 'aws-jwt-verify/jwk';
import type { JwtPayload } from 'aws-jwt-verify/jwt-model';
import { edgeTenantHeaderValue } from './edge-tenant';
import { isWellFormedUnicode } from './hashing';
import { EDGE_TENANT_HEADER, type EdgeAuthRuntimeConfig } from '../../constructs/contract/edge';

/** Milliseconds a JWKS download may take (a viewer-request function has 5 s in all). */
export const JWKS_TIMEOUT_MS = 1_500;

/** A CloudFront request header, as Lambda@Edge events carry them (keyed by lower-case name). */
export type CloudFrontHeaders = Record<string, Array<{ key?: string; value: string }>>;

/** The part of a CloudFront viewer request the verifier reads and changes (the rest passes through). */
export interface CloudFrontRequest {
  readonly headers: CloudFrontHeaders;
}

/** A response generated at the edge. */
export interface CloudFrontResponse {
  readonly status: string;
  readonly statusDescription: string;
  readonly headers: CloudFrontHeaders;
  readonly body: string;
}

export interface EdgeVerifier {
  /** The request to forward (with `x-edge-tenant`), or the response to answer instead. */
  verify<R extends CloudFrontRequest>(request: R): Promise<R | CloudFrontResponse>;
}

/**
 * A verifier for one configuration: RS256/RS384/RS512 (and PS*) signatures against the issuer's
 * JWKS (fetched with a time limit, cached per container), `iss`, `exp`/`nbf`, and the audience as
 * API Gateway's JWT authorizer checks it (`aud`, or `client_id` when the token has no `aud`, such
 * as Cognito access tokens), then the tenant claim as the router reads it.
 */
export function edgeVerifier(config: EdgeAuthRuntimeConfig): EdgeVerifier {
  const audiences = new Set(config.audience);
  const jwksCache = new SimpleJwksCache({
    // No retry (the library retries once by default): at most one JWKS_TIMEOUT_MS per request.
    fetcher: new SingleAttemptFetcher({ defaultRequestOptions: { responseTimeout: JWKS_TIMEOUT_MS, timeout: JWKS_TIMEOUT_MS } }),
  });
  const verifier = JwtRsaVerifier.create({
    issuer: config.issuer,
    jwksUri: config.jwksUri ?? `${config.issuer.replace(/\/+$/, '')}/.well-known/jwks.json`,
    // Checked below: `aud`, or `client_id` without `aud`.
    audience: null,
    customJwtCheck: ({ payload }) => {
      if (!audienceMatches(payload, audiences)) throw new Error('the token is not for this audience');
    },
  }, { jwksCache });

  return {
    async verify(request) {
      const headers = { ...request.headers };
      // Whatever the viewer sent under this name is never forwarded.
      delete headers[EDGE_TENANT_HEADER];
      const token = bearerToken(headers.authorization);
      if (!token) return unauthorized('A bearer token is required');
      let payload: JwtPayload;
      try {
        payload = await verifier.verify(token);
      } catch (err) {
        if (isJwksUnavailable(err)) return errorResponse('503', 'Service Unavailable', 'The token cannot be verified right now; retry shortly', { 'retry-after': '5' });
        return unauthorized('The token is not valid');
      }
      const tenant = tenantOf(payload[config.tenantClaim]);
      if (tenant === undefined) return unauthorized(`The token has no ${config.tenantClaim} claim`);
      headers[EDGE_TENANT_HEADER] = [{ key: EDGE_TENANT_HEADER, value: edgeTenantHeaderValue(tenant) }];
      return { ...request, headers };
    },
  };
}

/** A fetcher without the library's immediate retry, so that a hanging JWKS costs one timeout. */
class SingleAttemptFetcher extends SimpleFetcher {
  override async fetch(uri: string, requestOptions?: Record<string, unknown>, data?: ArrayBuffer): Promise<ArrayBuffer> {
    return fetch(uri, { ...this.defaultRequestOptions, ...requestOptions }, data);
  }
}

/**
 * The tenant as the router reads it (lambdas/core/caller.ts): a non-empty, well-formed string.
 * API Gateway's JWT authorizer hands the router every claim as a string, so a numeric claim is
 * its decimal string there: the edge does the same, for integers a JSON number holds exactly
 * (a larger one would round, and two tenants could share its string). Anything else is no tenant.
 */
function tenantOf(claim: unknown): string | undefined {
  if (typeof claim === 'number') return Number.isSafeInteger(claim) ? String(claim) : undefined;
  return typeof claim === 'string' && claim.length > 0 && isWellFormedUnicode(claim) ? claim : undefined;
}

function audienceMatches(payload: JwtPayload, audiences: ReadonlySet<string>): boolean {
  const aud = payload.aud;
  if (aud !== undefined) return (Array.isArray(aud) ? aud : [aud]).some((a) => audiences.has(a));
  const clientId = payload.client_id;
  return typeof clientId === 'string' && audiences.has(clientId);
}

function bearerToken(values: CloudFrontHeaders[string] | undefined): string | undefined {
  if (!values || values.length !== 1) return undefined;
  const match = /^Bearer\s+([A-Za-z0-9_\-.]+)\s*$/i.exec(values[0].value);
  return match?.[1];
}

/** The signing keys could not be fetched (network, time-out, non-200): not the token's fault. */
function isJwksUnavailable(err: unknown): boolean {
  // FetchError covers NonRetryableFetchError (a non-200 answer).
  return err instanceof FetchError || err instanceof JwksNotAvailableInCacheError;
}

function unauthorized(message: string): CloudFrontResponse {
  return errorResponse('401', 'Unauthorized', message, { 'www-authenticate': 'Bearer' });
}

function errorResponse(status: string, description: string, message: string, extra: Record<string, string>): CloudFrontResponse {
  const headers: CloudFrontHeaders = {
    'content-type': [{ key: 'Content-Type', value: 'application/json' }],
    'cache-control': [{ key: 'Cache-Control', value: 'no-store' }],
  };
  for (const [name, value] of Object.entries(extra)) headers[name] = [{ key: name, value }];
  return { status, statusDescription: description, headers, body: JSON.stringify({ error: { code: description === 'Unauthorized' ? 'unauthenticated' : 'unavailable', message } }) };
}
