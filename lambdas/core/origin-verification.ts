/**
 * The origin secret check of the router: a request through the edge carries, in
 * `x-origin-verify`, a value CloudFront adds to every origin request. Pure: the accepted values
 * come from the caller (the Secrets Manager adapter).
 */
import { timingSafeEqual } from 'node:crypto';

/** What a router decides about a request's origin secret. */
export type OriginVerdict = 'valid' | 'invalid' | 'unavailable';

/** Where the accepted origin secret values come from (see adapters/secrets-manager-origin-secrets.ts). */
export interface OriginSecretVerifier {
  /**
   * `valid` when `presented` equals one of the accepted values, `invalid` when it is missing or
   * equals none, `unavailable` when no accepted value could be read (the router then fails closed).
   */
  verify(presented: string | undefined, signal?: AbortSignal): Promise<OriginVerdict>;
}

/**
 * Whether `presented` equals one of `accepted`, in time that does not depend on where the strings
 * differ: every accepted value is compared (no early exit), each with `timingSafeEqual` on
 * buffers of equal length (a value of another length is compared with itself, and fails).
 */
export function matchesOriginSecret(accepted: readonly string[], presented: string | undefined): boolean {
  if (presented === undefined || presented.length === 0) return false;
  const given = Buffer.from(presented, 'utf8');
  let match = false;
  for (const value of accepted) {
    const expected = Buffer.from(value, 'utf8');
    const sameLength = expected.length === given.length;
    // Compare something of the same length either way, so a length mismatch costs the same time.
    const equal = timingSafeEqual(expected, sameLength ? given : expected) && sameLength;
    match = equal || match;
  }
  return match;
}
