import type { Duration } from 'aws-cdk-lib';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';

/**
 * A router behind an `EdgeDistribution`: it answers only requests that carry the distribution's
 * origin secret (header `x-origin-verify`), so its API cannot be called around the distribution
 * and its WAF, and it serves `GET /v1/health` without authorization for Route 53 health checks.
 */
export interface OriginVerificationOptions {
  /**
   * The origin secret: a plain-string secret (SecretString is the value itself) whose ARN is in
   * the router's Region, either the secret itself or its replica in this Region (import a
   * replica with `Secret.fromSecretCompleteArn` and the replica's ARN). The router accepts its
   * AWSCURRENT, AWSPENDING and AWSPREVIOUS values, so requests pass while a rotation deploys.
   */
  readonly originSecret: secretsmanager.ISecret;
  /**
   * How long the router keeps the secret's values before reading them again. A value it does not
   * know yet (a rotation it has not seen) makes it read them again at once, at most every 30 seconds.
   * Between 30 seconds and 1 hour.
   * @default Duration.minutes(5)
   */
  readonly refreshInterval?: Duration;
  /**
   * How long CloudFront may keep a static answer to a request whose tenant the edge verified
   * (`s-maxage`; the verified tenant is in the distribution's cache key). Between 1 second and 1 day.
   * @default Duration.hours(1)
   */
  readonly edgeCacheTtl?: Duration;
}
