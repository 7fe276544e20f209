import type * as budgets from 'aws-cdk-lib/aws-budgets';
import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type { IConstruct } from 'constructs';

/**
 * The monitoring of an AI service, as `ScalableAiService` exposes it: what an operator subscribes
 * to, adds widgets to, or composes further alarms from. Implemented by {@link AiMonitoring}.
 */
export interface IAiMonitoring extends IConstruct {
  /** The dashboard (add your own widgets with `addWidgets()`). */
  readonly dashboard: cloudwatch.Dashboard;
  /** The topic the alarms notify (subscribe your pager to it). */
  readonly alarmTopic: sns.ITopic;
  /** Every metric alarm created, in creation order. */
  readonly alarms: cloudwatch.Alarm[];
  /** p99 latency over `latencyP99ThresholdMs` (a condition of `compositeAlarm`). */
  readonly latencyAlarm: cloudwatch.Alarm;
  /** p99 latency above its anomaly-detection band. */
  readonly latencyAnomalyAlarm: cloudwatch.Alarm;
  /** Model cost per hour above its anomaly-detection band. */
  readonly costAnomalyAlarm: cloudwatch.Alarm;
  /** Model cost per hour over `costPerHourCeilingUsd`. */
  readonly costCeilingAlarm: cloudwatch.Alarm;
  /** Router concurrency near its limit. */
  readonly concurrencyAlarm: cloudwatch.Alarm;
  /** Requests answered 503 because no tier could answer (a condition of `compositeAlarm`). */
  readonly unavailableAlarm: cloudwatch.Alarm;
  /** Requests arrive (no action: a condition of `compositeAlarm`). */
  readonly trafficAlarm: cloudwatch.Alarm;
  /** Router invocations that crashed, timed out or were throttled (a condition of `compositeAlarm`). */
  readonly routerFailureAlarm: cloudwatch.Alarm;
  /** Error rate of each tier (metric math; conditions of `compositeAlarm`). */
  readonly tierErrorRateAlarms: cloudwatch.Alarm[];
  /** Bedrock throttles of each Bedrock tier. */
  readonly bedrockThrottleAlarms: cloudwatch.Alarm[];
  /** SageMaker tiers running at their maximum instance count. */
  readonly sageMakerMaxCapacityAlarms: cloudwatch.Alarm[];
  /** Hit rate of each cache level below its anomaly-detection band. */
  readonly cacheHitRateAlarms: cloudwatch.Alarm[];
  /** A dependency's circuit breaker staying open, one per dependency. */
  readonly breakerOpenAlarms: cloudwatch.Alarm[];
  /** Reported wrong answers of the semantic level above the threshold (with a semantic cache). */
  readonly semanticWrongAnswerAlarm?: cloudwatch.Alarm;
  /** Age of the oldest queued job (with a batch pipeline). */
  readonly oldestMessageAlarm?: cloudwatch.Alarm;
  /** Jobs in the dead-letter queue (with a batch pipeline). */
  readonly deadLetterAlarm?: cloudwatch.Alarm;
  /** Pages when user-visible health is at risk: (latency OR any tier error rate OR unavailable) AND traffic. */
  readonly compositeAlarm: cloudwatch.CompositeAlarm;
  /** The daily AWS Budgets cost budget, unless `enableBudget` is false. */
  readonly budget?: budgets.CfnBudget;
}
