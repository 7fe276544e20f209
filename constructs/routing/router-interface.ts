import type * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type { IConstruct } from 'constructs';
import type { IModelTier } from '../models/model-tier';

/**
 * A tiered router, as the constructs that build on one (`BatchPipeline`, `ScalableAiService`)
 * use it. Implemented by {@link TieredRouter}.
 *
 * An implementation serves its routes on `api` with `authorizer` (routes others add to the API
 * for this router use it too), runs the library's router handler with its configuration, gives
 * that configuration to other functions with `attachRoutingConfiguration()`, and grants with
 * `grantRouting()` everything that configuration needs, so that other functions can run the same
 * routing core. Both carry the library's own configuration format and stores (see
 * `TieredRouter`): the interface is what the library's constructs take, so that a router made
 * elsewhere in your app (another stack, a construct of yours that wraps a `TieredRouter`) can be
 * passed; it is not meant to be implemented from scratch.
 */
export interface ITieredRouter extends IConstruct {
  /** The router function (alarm on its errors, throttles and concurrency). */
  readonly function: lambda.IFunction;
  /** Log group of the router function. */
  readonly logGroup: logs.ILogGroup;
  /** The HTTP API that serves the router's routes. */
  readonly api: apigwv2.IHttpApi;
  /** The stage of `api` that callers use (`grantInvoke()` and `url` name it). */
  readonly stageName: string;
  /**
   * Base URL of the API's stage.
   * @attribute
   */
  readonly url: string;
  /** The authorizer of every route the router serves. */
  readonly authorizer: apigwv2.IHttpRouteAuthorizer;
  /** The tiers, cheapest first. */
  readonly tiers: IModelTier[];
  /** The `service` dimension of the router's metrics. */
  readonly serviceName: string;
  /** The VPC the router function runs in, if any: functions running the routing core run there too. */
  readonly vpc?: ec2.IVpc;
  /** The subnets of the router function (with `vpc`). */
  readonly vpcSubnets?: ec2.SubnetSelection;

  /**
   * Grants `fn` everything the routing core needs with this router's configuration, exactly what
   * the router function itself is granted: invoking each tier, connecting to the response cache,
   * the semantic cache's vector store and embedding model, the static answers' embedding model,
   * and the user context store. `fn` must run in `vpc` and `vpcSubnets` when the router has a VPC.
   */
  grantRouting(fn: lambda.Function): void;
  /**
   * Gives `fn` the router's configuration (request limits, tenant derivation, tiers, caches), from
   * which the library's handlers validate requests as the router does: in its environment while
   * that stays within Lambda's 4 KB, otherwise as the name of an SSM parameter `fn` may read.
   * Call it once `fn` has the rest of its environment.
   */
  attachRoutingConfiguration(fn: lambda.Function): void;
  /** Grants `grantee` permission to call every route of the router (with IAM authorization). */
  grantInvoke(grantee: iam.IGrantable): iam.Grant;

  /** A metric of the router (see `AiMetricNames` for names), with its `service` dimension. */
  metric(metricName: string, dimensions?: { [name: string]: string }, props?: cloudwatch.MetricOptions): cloudwatch.Metric;
  /** Chat requests received. */
  metricRequests(props?: cloudwatch.MetricOptions): cloudwatch.Metric;
  /** End-to-end latency of every request (`Latency{service}`); p99 by default. */
  metricLatency(props?: cloudwatch.MetricOptions): cloudwatch.Metric;
  /** End-to-end latency of requests served one way (`static`, `exact`, `semantic`, `model`); p99 by default. */
  metricServedLatency(servedBy: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric;
  /** End-to-end latency of requests one tier answered; p99 by default. */
  metricTierLatency(tierId: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric;
  /** Answers served from a cache level (`static`, `exact`, `semantic`). */
  metricCacheHits(cacheLevel: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric;
  /** Lookups of a cache level (`static`, `exact`, `semantic`) that found nothing. */
  metricCacheMisses(cacheLevel: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric;
  /** Failed cache operations of a level (`static`, `exact`, `semantic`, `context`). */
  metricCacheErrors(cacheLevel: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric;
  /** Model cost in USD of all requests. */
  metricCostUsd(props?: cloudwatch.MetricOptions): cloudwatch.Metric;
  /** Model cost in USD of one tier. */
  metricTierCostUsd(tierId: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric;
  /** Invocations of one tier. */
  metricModelInvocations(tierId: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric;
  /** Failed invocations of one tier of one kind. */
  metricModelErrors(tierId: string, errorKind: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric;
  /** Requests that moved on from a failed tier to another. */
  metricFallbacks(tierId: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric;
  /** Requests answered 503 because every tier failed. */
  metricUnavailable(props?: cloudwatch.MetricOptions): cloudwatch.Metric;
  /** Model cost in USD per request (metric math: `CostUsd` sum ÷ `Requests` sum); 5 minutes by default. */
  metricCostPerRequest(props?: cloudwatch.MathExpressionOptions): cloudwatch.IMetric;
  /** Hit rate in percent of a cache level (`static`, `exact`, `semantic`): hits ÷ (hits + misses); 5 minutes by default. */
  metricCacheHitRate(cacheLevel: string, props?: cloudwatch.MathExpressionOptions): cloudwatch.IMetric;
  /** Failed invocations of one tier in percent of its invocations (all error kinds); 5 minutes by default. */
  metricTierErrorRate(tierId: string, props?: cloudwatch.MathExpressionOptions): cloudwatch.IMetric;
  /**
   * Answers reported wrong through `POST /v1/feedback`, in percent of the answers served one way
   * (`static`, `exact`, `semantic`, `model`); 1 hour by default (feedback is sparse).
   */
  metricWrongAnswerRate(servedBy: string, props?: cloudwatch.MathExpressionOptions): cloudwatch.IMetric;
  /** Calls skipped because a dependency's circuit breaker was open (see `AiMetricNames.DIMENSION_DEPENDENCY`). */
  metricBreakerSkips(dependency: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric;
  /** Concurrent executions of the router function (`AWS/Lambda`); maximum per minute by default. */
  metricConcurrentExecutions(props?: cloudwatch.MetricOptions): cloudwatch.Metric;
}
