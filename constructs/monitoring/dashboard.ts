import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type { IBatchPipeline } from '../batching/pipeline-interface';
import { AiMetricNames as M } from '../contract/metrics';
import { ModelProvider } from '../models/model-tier';
import { SageMakerModelTier } from '../models/sagemaker-tier';
import type { ITieredRouter } from '../routing/router-interface';

/** How requests are served (the `ServedBy` values a dashboard and the feedback rates show). */
export const SERVED_BY = ['static', 'exact', 'semantic', 'coalesced', 'model'];
const PERCENTILES = ['p50', 'p95', 'p99'];

export interface DashboardSources {
  readonly router: ITieredRouter;
  readonly batchPipeline?: IBatchPipeline;
  /** Cache levels whose hit rate is charted. */
  readonly cacheLevels: string[];
  readonly alarms: cloudwatch.IAlarm[];
}

function graph(title: string, left: cloudwatch.IMetric[], props: Partial<cloudwatch.GraphWidgetProps> = {}): cloudwatch.GraphWidget {
  return new cloudwatch.GraphWidget({ title, left, width: 8, height: 6, ...props });
}

/** The dashboard's rows, top to bottom: what a person on call reads first comes first. */
export function dashboardRows(s: DashboardSources): cloudwatch.IWidget[][] {
  const r = s.router;
  const tiers = r.tiers;
  const rows: cloudwatch.IWidget[][] = [];
  rows.push([new cloudwatch.AlarmStatusWidget({ title: 'Alarms', alarms: s.alarms, width: 24, height: 3 })]);

  // Latency: percentiles cannot be combined across series, so each view has its own.
  rows.push([
    graph('Latency (ms), all requests', PERCENTILES.map((p) => r.metricLatency({ statistic: p, label: p }))),
    graph('Latency (ms) by how served', SERVED_BY.flatMap((by) => PERCENTILES.map((p) => r.metricServedLatency(by, { statistic: p, label: `${by} ${p}` })))),
    graph('Latency (ms) by tier', tiers.flatMap((t) => PERCENTILES.map((p) => r.metricTierLatency(t.tierId, { statistic: p, label: `${t.tierId} ${p}` })))),
  ]);

  // Cost: per request, per hour with its daily projection, and by tier.
  const hourly = r.metricCostUsd({ period: Duration.hours(1), label: 'USD per hour' });
  rows.push([
    graph('Cost per request (USD)', [r.metricCostPerRequest()], { width: 6 }),
    graph('Cost per hour and projected per day (USD)', [
      hourly,
      new cloudwatch.MathExpression({ expression: 'hourly * 24', usingMetrics: { hourly }, label: 'USD per day (projected)', period: Duration.hours(1) }),
    ], { width: 6 }),
    graph('Cost by tier (USD per hour)', tiers.map((t) => r.metricTierCostUsd(t.tierId, { period: Duration.hours(1), label: t.tierId })), { width: 6, stacked: true }),
    graph('Cache hit rate (%)', s.cacheLevels.map((level) => r.metricCacheHitRate(level, { label: level })), { width: 6, leftYAxis: { min: 0, max: 100 } }),
  ]);

  // Errors and resilience.
  rows.push([
    graph('Error rate by tier (%)', tiers.map((t) => r.metricTierErrorRate(t.tierId, { label: t.tierId }))),
    graph('Fallbacks and unavailable (503)', [
      ...tiers.map((t) => r.metricFallbacks(t.tierId, { label: `fallback from ${t.tierId}` })),
      r.metricUnavailable({ label: 'unavailable' }),
    ]),
    graph('Circuit breakers', BREAKER_DEPENDENCIES.flatMap((d) => [
      r.metric(M.CIRCUIT_OPENED, { [M.DIMENSION_DEPENDENCY]: d }, { label: `${d} opened` }),
      r.metricBreakerSkips(d, { label: `${d} skips` }),
    ])),
  ]);

  // Model utilization.
  const bedrock = tiers.filter((t) => t.provider === ModelProvider.BEDROCK);
  const utilization: cloudwatch.IWidget[] = [
    graph('Router Lambda concurrency', [r.metricConcurrentExecutions({ label: 'concurrent executions' })], { width: 6 }),
  ];
  if (bedrock.length > 0) {
    utilization.push(
      graph('Bedrock invocations and throttles', bedrock.flatMap((t) => [
        t.metricProviderInvocations({ label: `${t.tierId} invocations` }),
        ...optional(t.metricProviderThrottles({ label: `${t.tierId} throttles` })),
      ]), { width: 9 }),
      graph('Bedrock invocation latency p99 (ms)', bedrock.map((t) => t.metricProviderLatency({ label: t.tierId })), { width: 9 }),
    );
  }
  rows.push(utilization);
  const sageMaker = tiers.filter((t): t is SageMakerModelTier => t instanceof SageMakerModelTier);
  if (sageMaker.length > 0) {
    rows.push([
      graph('SageMaker invocations per instance and instances', sageMaker.flatMap((t) => [
        t.metricInvocationsPerInstance({ label: `${t.tierId} per instance` }),
        ...optional(t.metricInstanceCount({ label: `${t.tierId} instances` })),
      ])),
      graph('SageMaker CPU and GPU utilization (%)', sageMaker.flatMap((t) => [
        t.metricCpuUtilization({ label: `${t.tierId} CPU` }),
        t.metricGpuUtilization({ label: `${t.tierId} GPU` }),
      ])),
      graph('SageMaker invocations and model latency p99 (µs)', sageMaker.map((t) => t.metricProviderInvocations({ label: `${t.tierId} invocations` })), {
        right: sageMaker.map((t) => t.metricProviderLatency({ label: `${t.tierId} latency` })),
      }),
    ]);
  }

  if (s.batchPipeline) {
    const p = s.batchPipeline;
    rows.push([
      graph('Batch queue depth', [p.metricQueueDepth({ label: 'waiting' })], { width: 8 }),
      graph('Age of the oldest request (s)', [p.metricOldestMessageAge({ label: 'oldest' })], { width: 8 }),
      graph('Dead-letter queue depth', [p.metricDeadLetterDepth({ label: 'dead letters' })], { width: 8 }),
    ]);
  }

  // Answer quality, from POST /v1/feedback.
  rows.push([
    graph('Reported wrong-answer rate (%) by how served', SERVED_BY.map((by) => r.metricWrongAnswerRate(by, { label: by })), { width: 12 }),
    graph('Cache entries evicted by feedback', s.cacheLevels.map((level) => r.metric(M.FEEDBACK_EVICTIONS, { [M.DIMENSION_CACHE_LEVEL]: level }, { label: level, period: Duration.hours(1) })), { width: 12 }),
  ]);
  return rows;
}

function optional<T>(value: T | undefined): T[] {
  return value === undefined ? [] : [value];
}

/**
 * The values of the `Dependency` dimension (`AiMetricNames.DIMENSION_DEPENDENCY`): the cache levels
 * and the builds of the router's connections and stores.
 */
export const BREAKER_DEPENDENCIES = ['static', 'exact', 'semantic', 'context', 'cache-connection', 'semantic-store', 'static-index', 'feedback'];
