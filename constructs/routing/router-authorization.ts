import { Token } from 'aws-cdk-lib';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import * as authorizers from 'aws-cdk-lib/aws-apigatewayv2-authorizers';

/** Options of JWT authorization. */
export interface JwtAuthorizationOptions {
  /**
   * Issuer URL of the tokens, exactly as their `iss` claim has it, such as
   * `https://cognito-idp.<region>.amazonaws.com/<user-pool-id>`. It must be an `https://` URL
   * without query or fragment: API Gateway fetches the issuer's signing keys from it (OpenID
   * Connect discovery), so any other issuer fails every request with 401. A token (such as
   * `userPool.userPoolProviderUrl`) is accepted unchecked.
   */
  readonly issuer: string;
  /** Accepted audiences (`aud` claim, or `client_id` for Cognito access tokens). */
  readonly audience: string[];
  /**
   * Claim that carries the tenant id. Requests whose token lacks it are answered 401.
   * @default 'tenant_id'
   */
  readonly tenantClaim?: string;
}

/**
 * How callers of the router authenticate, and where the tenant of a request comes from. The
 * tenant is always taken from the authorizer's verdict, never from the request body.
 */
export abstract class RouterAuthorization {
  /**
   * AWS IAM (SigV4) authorization. The tenant is the calling IAM principal; an assumed role is
   * one tenant whatever its session, and the role session name identifies the user.
   */
  public static iam(): RouterAuthorization {
    return new IamAuthorization();
  }

  /** JWT authorization (Cognito or any OIDC issuer). The tenant is the `tenantClaim` claim. */
  public static jwt(options: JwtAuthorizationOptions): RouterAuthorization {
    if (options.audience.length === 0) throw new Error('RouterAuthorization.jwt: audience must name at least one audience');
    if (!Token.isUnresolved(options.issuer) && !isHttpsIssuer(options.issuer)) {
      throw new Error(`RouterAuthorization.jwt: issuer must be an https:// URL without query or fragment (API Gateway fetches the issuer's signing keys from it, and the token's iss claim must equal it); got "${options.issuer}"`);
    }
    return new JwtAuthorization(options);
  }

  /** `iam` or `jwt`. */
  public abstract readonly tenantSource: string;
  /** The claim that names the tenant (JWT only). */
  public abstract readonly tenantClaim?: string;
  /** A new HTTP API authorizer (each router needs its own). */
  public abstract authorizer(): apigwv2.IHttpRouteAuthorizer;
}

class IamAuthorization extends RouterAuthorization {
  public readonly tenantSource = 'iam';
  public readonly tenantClaim = undefined;
  public authorizer(): apigwv2.IHttpRouteAuthorizer {
    return new authorizers.HttpIamAuthorizer();
  }
}

class JwtAuthorization extends RouterAuthorization {
  public readonly tenantSource = 'jwt';
  public readonly tenantClaim: string;
  constructor(private readonly options: JwtAuthorizationOptions) {
    super();
    this.tenantClaim = options.tenantClaim ?? 'tenant_id';
  }
  // A new authorizer per call: an authorizer is bound to the first API it is used with.
  public authorizer(): apigwv2.IHttpRouteAuthorizer {
    return new authorizers.HttpJwtAuthorizer('JwtAuthorizer', this.options.issuer, { jwtAudience: this.options.audience });
  }
}

/** An OpenID Connect issuer identifier: an https URL with a host and no query or fragment. */
function isHttpsIssuer(issuer: string): boolean {
  let url: URL;
  try {
    url = new URL(issuer);
  } catch {
    return false;
  }
  return url.protocol === 'https:' && url.hostname !== '' && !/[?#]/.test(issuer);
}
