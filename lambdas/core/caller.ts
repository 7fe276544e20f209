import type { Caller } from './cache-key';
import { isWellFormedUnicode } from './hashing';
import type { TenantSource } from '../../constructs/contract/runtime-config';

/** The part of an HTTP API (payload 2.0) request context that carries the authorizer's verdict. */
export interface AuthorizerContext {
  readonly iam?: {
    readonly userArn?: string;
    readonly accountId?: string;
    readonly userId?: string;
    /** Set when the caller signed with Cognito identity pool credentials. */
    readonly cognitoIdentity?: { readonly identityId?: string; readonly identityPoolId?: string } | null;
  };
  readonly jwt?: { readonly claims?: Record<string, string | number | boolean | string[]> };
}

/**
 * The caller of a request, from the authorizer context only (never from the body).
 *
 * - `iam`: the tenant is the calling IAM principal, with an assumed role reduced to its role ARN
 *   (every session of one role is one tenant). The user id is the Cognito identity when the
 *   caller signed with identity pool credentials (their session names are all
 *   `CognitoIdentityCredentials`), otherwise the role session name, which whoever assumes the
 *   role chooses: give each end user a session of their own.
 * - `jwt`: the tenant is the `claim` claim of the token; the user id is `sub`.
 *
 * @returns undefined (a 401) when the context carries no tenant, or a tenant or user id that is
 * not well-formed Unicode (a lone surrogate): such an id would be stored and hashed as if its lone
 * surrogate were U+FFFD, and so receive the turns, preferences and cached answers of another id;
 * or one that holds NUL, which no PostgreSQL text (the user profiles' key) can hold.
 */
export function callerFromAuthorizer(authorizer: AuthorizerContext | undefined, source: TenantSource, claim = 'tenant_id'): Caller | undefined {
  const caller = fromAuthorizer(authorizer, source, claim);
  if (!caller) return undefined;
  if (!isValidId(caller.tenantId) || (caller.userId !== undefined && !isValidId(caller.userId))) return undefined;
  return caller;
}

function isValidId(id: string): boolean {
  return isWellFormedUnicode(id) && !id.includes('\u0000');
}

function fromAuthorizer(authorizer: AuthorizerContext | undefined, source: TenantSource, claim: string): Caller | undefined {
  if (source === 'jwt') {
    const claims = authorizer?.jwt?.claims;
    const tenant = claims?.[claim];
    if (typeof tenant !== 'string' || tenant.length === 0) return undefined;
    const sub = claims?.sub;
    return { tenantId: tenant, userId: typeof sub === 'string' ? sub : undefined };
  }
  const arn = authorizer?.iam?.userArn;
  if (!arn) return undefined;
  const assumed = /^arn:(aws[\w-]*):sts::(\d{12}):assumed-role\/([^/]+)\/(.+)$/.exec(arn);
  if (assumed) {
    const [, partition, account, role, session] = assumed;
    const identityId = authorizer?.iam?.cognitoIdentity?.identityId;
    return { tenantId: `arn:${partition}:iam::${account}:role/${role}`, userId: identityId ? `cognito:${identityId}` : session };
  }
  return { tenantId: arn };
}
