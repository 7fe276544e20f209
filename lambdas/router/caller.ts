import type { TenantSource } from '../../constructs/contract/runtime-config';
import type { Caller } from '../core/cache-key';

/** The part of an HTTP API (payload 2.0) request context that carries the authorizer's verdict. */
export interface AuthorizerContext {
  readonly iam?: { readonly userArn?: string; readonly accountId?: string; readonly userId?: string };
  readonly jwt?: { readonly claims?: Record<string, string | number | boolean | string[]> };
}

/**
 * The caller of a request, from the authorizer context only (never from the body).
 *
 * - `iam`: the tenant is the calling IAM principal, with an assumed role reduced to its role ARN
 *   (every session of one role is one tenant); the role session name is the user id.
 * - `jwt`: the tenant is the `claim` claim of the token; the user id is `sub`.
 *
 * @returns undefined when the context carries no tenant.
 */
export function callerFromAuthorizer(authorizer: AuthorizerContext | undefined, source: TenantSource, claim = 'tenant_id'): Caller | undefined {
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
    return { tenantId: `arn:${partition}:iam::${account}:role/${role}`, userId: session };
  }
  return { tenantId: arn };
}
