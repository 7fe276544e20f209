import { Duration, Token } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import type { Construct } from 'constructs';
import type { QuotasRuntimeConfig } from '../contract/runtime-config';
import { AwsServiceEndpoint, requireAwsServices } from '../internal/service-endpoints';

/** What the router does with a request whose quota state it cannot read (the cache down or slow). */
export enum QuotaFailMode {
  /** Admit the request: an outage of the cache never stops the service (quotas are not enforced meanwhile). */
  OPEN = 'open',
  /** Answer 503 with `retry-after`: no request goes uncounted, at the price of the service while the cache is out. */
  CLOSED = 'closed',
}

/**
 * Per-tenant quotas of a `TieredRouter`'s `POST /v1/chat`, counted in its response cache: requests
 * per UTC minute and model cost (USD) per UTC day, per tenant and optionally per user. A request
 * over a limit is answered 429 with `retry-after` (seconds to the next minute, or to UTC
 * midnight) and a message naming the limit. Limits per tenant can be overridden in an SSM
 * parameter that the router reads again every `overridesRefresh`, without a deploy.
 */
export interface QuotaOptions {
  /**
   * Requests per UTC minute of each tenant (0 refuses every request of a tenant without an override).
   * @default 600
   */
  readonly requestsPerMinute?: number;
  /**
   * Model cost in USD per UTC day of each tenant: a request is admitted while the day's spend is
   * under it (the last one admitted can take it over by its own cost). Cache hits cost nothing.
   * @default - no daily cost limit
   */
  readonly costPerDayUsd?: number;
  /**
   * Requests per UTC minute of each user of a tenant (callers with a user id).
   * @default - no limit per user
   */
  readonly userRequestsPerMinute?: number;
  /**
   * Model cost in USD per UTC day of each user of a tenant.
   * @default - no daily cost limit per user
   */
  readonly userCostPerDayUsd?: number;
  /**
   * SSM parameter (String) with per-tenant overrides of these limits, as JSON:
   * `{ "tenants": { "<tenant id>": { "requestsPerMinute": 100, "costPerDayUsd": 5, "userRequestsPerMinute": null } } }`
   * (a limit left out keeps the default; null lifts it). The router function is granted
   * `ssm:GetParameter` on it. Invalid JSON is counted (`QuotaOverridesErrors`) and the last good
   * overrides stay in use.
   * @default - a new parameter holding `{"tenants":{}}`, to be edited in place
   */
  readonly overridesParameter?: ssm.IStringParameter;
  /**
   * How long the router uses the overrides it read before reading them again (per Lambda
   * container). Between 10 seconds and 1 hour.
   * @default Duration.seconds(60)
   */
  readonly overridesRefresh?: Duration;
  /**
   * What a request gets when its quota state cannot be read within the cache timeout.
   * @default QuotaFailMode.OPEN
   */
  readonly failMode?: QuotaFailMode;
}

const DEFAULT_REQUESTS_PER_MINUTE = 600;
const REFRESH_DEFAULT = Duration.seconds(60);
const REFRESH_MIN = Duration.seconds(10);
const REFRESH_MAX = Duration.hours(1);

/**
 * Validates `options`, gives `fn` read access to the overrides parameter (created in `scope` when
 * not given) and answers the quotas' runtime configuration.
 * @internal
 */
export function bindQuotas(scope: Construct, options: QuotaOptions, fn: lambda.Function, hasCache: boolean): QuotasRuntimeConfig {
  if (!hasCache) throw new Error('TieredRouter: quotas need cache (the quota counters are kept in the response cache); set cache, or leave quotas out');
  const limits: Array<[keyof QuotaOptions, number | undefined, boolean]> = [
    ['requestsPerMinute', options.requestsPerMinute, true],
    ['userRequestsPerMinute', options.userRequestsPerMinute, true],
    ['costPerDayUsd', options.costPerDayUsd, false],
    ['userCostPerDayUsd', options.userCostPerDayUsd, false],
  ];
  for (const [name, value, whole] of limits) {
    if (value === undefined || Token.isUnresolved(value)) continue;
    if (!Number.isFinite(value) || value < 0 || (whole && !Number.isInteger(value))) {
      throw new Error(`TieredRouter: quotas.${name} must be ${whole ? 'a whole number' : 'a number'} of at least 0 (0 refuses every request); got ${value}`);
    }
  }
  const refresh = options.overridesRefresh ?? REFRESH_DEFAULT;
  const seconds = refresh.toSeconds({ integral: false });
  if (!Number.isInteger(seconds) || seconds < REFRESH_MIN.toSeconds() || seconds > REFRESH_MAX.toSeconds()) {
    throw new Error(`TieredRouter: quotas.overridesRefresh must be whole seconds between ${REFRESH_MIN.toHumanString()} and ${REFRESH_MAX.toHumanString()}; got ${refresh.toHumanString()}`);
  }
  const parameter = options.overridesParameter ?? new ssm.StringParameter(scope, 'QuotaOverrides', {
    description: 'cdk-scalable-ai per-tenant quota overrides (JSON), read by the router every few minutes: edit to change a tenant\'s limits without a deploy',
    stringValue: JSON.stringify({ tenants: {} }),
  });
  iam.Grant.addToPrincipal({ grantee: fn, actions: ['ssm:GetParameter'], resourceArns: [parameter.parameterArn] });
  requireAwsServices(fn, AwsServiceEndpoint.SSM);
  return {
    defaults: {
      requestsPerMinute: options.requestsPerMinute ?? DEFAULT_REQUESTS_PER_MINUTE,
      costPerDayUsd: options.costPerDayUsd,
      userRequestsPerMinute: options.userRequestsPerMinute,
      userCostPerDayUsd: options.userCostPerDayUsd,
    },
    failMode: (options.failMode ?? QuotaFailMode.OPEN) as QuotasRuntimeConfig['failMode'],
    overridesParameter: parameter.parameterName,
    overridesTtlSeconds: seconds,
  };
}
