import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type { JwtAuthorizationOptions } from '../routing/router-authorization';

/** One Region's API as CloudFront reaches it. */
export interface RegionalOrigin {
  /** The Region of the API. */
  readonly region: string;
  /**
   * A custom domain name of the Region's HTTP API that names this Region alone (such as
   * `us-east-1.api.example.com`): an origin of the GET origin group and the target of the
   * Region's Route 53 health check.
   */
  readonly domainName: string;
}

/**
 * What an `EdgeDistribution` puts in front of: two Regions' APIs, the Route 53 failover name both
 * answer to, the origin secret the routers check and the JWT issuer the edge verifies.
 * `RegionalDeployment.edgeOrigins` builds one.
 */
export interface EdgeOrigins {
  /** The Region that serves while it is healthy. */
  readonly primary: RegionalOrigin;
  /** The Region that serves when the primary fails. */
  readonly secondary: RegionalOrigin;
  /**
   * A custom domain name both Regions' APIs answer to, resolved by Route 53 failover records
   * (primary while its health check passes, else secondary): the origin of the POST routes, which
   * an origin group cannot fail over.
   */
  readonly failoverDomainName: string;
  /**
   * The secret CloudFront sends in the origin secret header and the routers check (a plain
   * SecretString). The distribution's rotation function rotates it.
   */
  readonly originSecret: secretsmanager.ISecret;
  /**
   * The JWT authorization of the regional routers: a SigV4 signature made for the distribution's
   * host does not survive CloudFront's host change, so IAM callers call a Region's API directly.
   */
  readonly jwt: JwtAuthorizationOptions;
}
