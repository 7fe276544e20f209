import { Duration } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import type { Construct } from 'constructs';
import { scheduleTrafficProfile } from '../scaling/scheduled-scaling';
import type { WeeklyTrafficProfile } from '../scaling/traffic-profile';

/**
 * Provisioned concurrency of the router function: execution environments kept initialized, so
 * requests skip the cold start (loading the handler, the SDK clients and the router
 * configuration). Billed per GB-second whether used or not, so off by default; worth it when
 * steady traffic keeps most of them busy, or for peaks the traffic profile knows of.
 */
export interface RouterProvisionedConcurrency {
  /** Fewest provisioned concurrent executions (at least 1). */
  readonly minCapacity: number;
  /** Most provisioned concurrent executions. */
  readonly maxCapacity: number;
  /**
   * Share of the provisioned executions in use to hold (`LambdaProvisionedConcurrencyUtilization`),
   * between 0.1 and 0.9; requests beyond the provisioned executions still run, on demand (with a
   * cold start).
   * @default 0.7
   */
  readonly targetUtilization?: number;
  /**
   * Peak hours of the week: scheduled actions raise `minCapacity` ahead of each peak and restore
   * it after.
   * @default - no scheduled scaling
   */
  readonly trafficProfile?: WeeklyTrafficProfile;
}

/**
 * An alias `live` of a new version of `fn` with provisioned concurrency that tracks utilization
 * and follows the traffic profile. Callers must invoke the alias: provisioned concurrency
 * belongs to it, not to `$LATEST`.
 */
export function provisionedRouterAlias(scope: Construct, fn: lambda.Function, options: RouterProvisionedConcurrency): lambda.Alias {
  const where = 'TieredRouter: provisionedConcurrency';
  const { minCapacity, maxCapacity } = options;
  if (!Number.isInteger(minCapacity) || minCapacity < 1 || !Number.isInteger(maxCapacity) || maxCapacity < minCapacity) {
    throw new Error(`${where} needs integers 1 <= minCapacity <= maxCapacity; got ${minCapacity}..${maxCapacity}`);
  }
  const utilization = options.targetUtilization ?? 0.7;
  if (!(utilization >= 0.1 && utilization <= 0.9)) {
    throw new Error(`${where}.targetUtilization must be between 0.1 and 0.9; got ${utilization}`);
  }
  const alias = new lambda.Alias(scope, 'LiveAlias', {
    aliasName: 'live',
    version: fn.currentVersion,
    provisionedConcurrentExecutions: minCapacity,
    description: 'The router version the API invokes, with provisioned concurrency',
  });
  const target = alias.addAutoScaling({ minCapacity, maxCapacity });
  target.scaleOnUtilization({
    utilizationTarget: utilization,
    // Releasing idle provisioned executions quickly is what keeps them cheap.
    scaleInCooldown: Duration.minutes(2),
    scaleOutCooldown: Duration.minutes(1),
  });
  if (options.trafficProfile) scheduleTrafficProfile(target, `${where}.trafficProfile`, options.trafficProfile, minCapacity, maxCapacity);
  return alias;
}
