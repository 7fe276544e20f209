import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as kms from 'aws-cdk-lib/aws-kms';
import { newStack } from './helpers';
import { fullService } from './monitoring-fixture';
import { AiMetricNames as M, AiMonitoring, ScalableAiService, TieredRouter, ModelTier } from '../../constructs';

const { service, template } = fullService();
const monitoring = service.monitoring!;
const stackOf = service.node.scope as any;
const topicRef = () => ({ Ref: stackOf.getLogicalId((monitoring.alarmTopic as any).node.defaultChild) });

function alarmOf(alarm: { node: { defaultChild?: unknown } }): any {
  const id = (service.node.scope as any).getLogicalId(alarm.node.defaultChild);
  return template.toJSON().Resources[id].Properties;
}

function dashboardBody(): string {
  const dashboards = template.findResources('AWS::CloudWatch::Dashboard');
  return JSON.stringify(Object.values(dashboards)[0].Properties.DashboardBody);
}

describe('AiMonitoring dashboard', () => {
  test('charts p50, p95 and p99 of Latency overall, by ServedBy and by Tier', () => {
    const body = dashboardBody();
    for (const p of ['p50', 'p95', 'p99']) {
      expect(body).toContain(`[\\"ScalableAI\\",\\"Latency\\",\\"service\\",\\"shop\\",{\\"label\\":\\"${p}\\",\\"period\\":60,\\"stat\\":\\"${p}\\"}]`);
    }
    expect(body).toContain('\\"ServedBy\\",\\"semantic\\",\\"service\\",\\"shop\\",{\\"label\\":\\"semantic p95\\"');
    expect(body).toContain('\\"Tier\\",\\"large\\",\\"service\\",\\"shop\\",{\\"label\\":\\"large p99\\"');
  });

  test('has cost per request, daily projection, hit rate, error rate math and provider metrics', () => {
    const body = dashboardBody();
    expect(body).toContain('cost / requests');
    expect(body).toContain('hourly * 24');
    expect(body).toContain('FILL(hits_exact, 0)');
    expect(body).toContain('100 * FILL(errors_large, 0) / invocations_large');
    expect(body).toContain('\\"AWS/Bedrock\\",\\"InvocationThrottles\\",\\"ModelId\\",\\"us.amazon.nova-micro-v1:0\\"');
    expect(body).toContain('\\"/aws/sagemaker/Endpoints\\",\\"GPUUtilization\\"');
    expect(body).toContain('\\"AWS/Lambda\\",\\"ConcurrentExecutions\\"');
    expect(body).toContain('ApproximateAgeOfOldestMessage');
  });
});

describe('AiMonitoring alarms', () => {
  test('p99 latency alarm: threshold, comparison, feeds the composite', () => {
    const p = alarmOf(monitoring.latencyAlarm);
    expect(p).toMatchObject({ MetricName: 'Latency', Namespace: 'ScalableAI', ExtendedStatistic: 'p99', Threshold: 3000, ComparisonOperator: 'GreaterThanThreshold', EvaluationPeriods: 5, DatapointsToAlarm: 3, TreatMissingData: 'notBreaching' });
    expect(p.Dimensions).toEqual([{ Name: 'service', Value: 'shop' }]);
    expect(p.AlarmActions).toBeUndefined();
  });

  test('anomaly detection on p99 latency and on cost per hour, notifying the topic', () => {
    for (const alarm of [monitoring.latencyAnomalyAlarm, monitoring.costAnomalyAlarm]) {
      const p = alarmOf(alarm);
      expect(p.ComparisonOperator).toBe('GreaterThanUpperThreshold');
      expect(JSON.stringify(p.Metrics)).toContain('ANOMALY_DETECTION_BAND(m0, 2)');
      expect(p.AlarmActions).toEqual([topicRef()]);
      expect(p.OKActions).toEqual([topicRef()]);
    }
    expect(JSON.stringify(alarmOf(monitoring.costAnomalyAlarm).Metrics)).toContain('"MetricName":"CostUsd"');
  });

  test('error rate per tier is metric math over ModelErrors and ModelInvocations', () => {
    expect(monitoring.tierErrorRateAlarms).toHaveLength(2);
    const p = alarmOf(monitoring.tierErrorRateAlarms[1]);
    expect(p.Threshold).toBe(5);
    const metrics = JSON.stringify(p.Metrics);
    expect(metrics).toContain('100 * FILL(errors_large, 0) / invocations_large');
    expect(metrics).toContain(`"MetricName":"${M.MODEL_ERRORS}"`);
    expect(metrics).toContain(`"MetricName":"${M.MODEL_INVOCATIONS}"`);
  });

  test('capacity: concurrency at 80% of reserved, SageMaker at max instances, Bedrock throttles, queue age, DLQ', () => {
    expect(alarmOf(monitoring.concurrencyAlarm)).toMatchObject({ MetricName: 'ConcurrentExecutions', Namespace: 'AWS/Lambda', Threshold: 160, AlarmActions: [topicRef()] });
    expect(monitoring.sageMakerMaxCapacityAlarms).toHaveLength(1);
    const atMax = alarmOf(monitoring.sageMakerMaxCapacityAlarms[0]);
    expect(atMax).toMatchObject({ Threshold: 3.5, ComparisonOperator: 'GreaterThanOrEqualToThreshold' });
    expect(JSON.stringify(atMax.Metrics)).toContain('InvocationsPerInstance');
    expect(monitoring.bedrockThrottleAlarms).toHaveLength(1);
    expect(alarmOf(monitoring.bedrockThrottleAlarms[0])).toMatchObject({ MetricName: 'InvocationThrottles', Namespace: 'AWS/Bedrock' });
    expect(alarmOf(monitoring.oldestMessageAlarm!)).toMatchObject({ MetricName: 'ApproximateAgeOfOldestMessage', Threshold: 900 });
    expect(alarmOf(monitoring.deadLetterAlarm!)).toMatchObject({ MetricName: 'ApproximateNumberOfMessagesVisible', Threshold: 1 });
  });

  test('breakers, hit rates and semantic wrong answers are watched', () => {
    expect(monitoring.breakerOpenAlarms.map((a) => alarmOf(a).Dimensions.find((d: any) => d.Name === 'Dependency').Value).sort())
      .toEqual(['cache-connection', 'context', 'exact', 'feedback', 'semantic', 'semantic-store', 'static', 'static-index']);
    expect(alarmOf(monitoring.breakerOpenAlarms[0])).toMatchObject({ MetricName: 'BreakerSkips', Threshold: 0, EvaluationPeriods: 5 });
    expect(monitoring.cacheHitRateAlarms.map((a) => alarmOf(a).ComparisonOperator)).toEqual(Array(3).fill('LessThanLowerThreshold'));
    const wrong = JSON.stringify(alarmOf(monitoring.semanticWrongAnswerAlarm!).Metrics);
    expect(wrong).toContain('"MetricName":"Feedback"');
    // A few verdicts (one caller's) in a quiet hour do not page: the rate counts only with volume.
    expect(wrong).toContain('IF(FILL(answers, 0) >= 100 AND FILL(wrong, 0) >= 5, rate, 0)');
  });

  test('composite alarm: (latency OR unavailable OR error rates) AND traffic, notifying the topic', () => {
    const composite = Object.values(template.findResources('AWS::CloudWatch::CompositeAlarm'))[0].Properties;
    const rule = JSON.stringify(composite.AlarmRule);
    expect(rule).toMatch(/^"?\{?.*\(\(ALARM/);
    expect(rule).toContain('LatencyP99');
    expect(rule).toContain('Traffic');
    // Failed or throttled invocations page without the traffic condition: they emit no Requests.
    expect(rule).toMatch(/\) OR ALARM\(.*RouterFailures/);
    const failures = alarmOf(monitoring.routerFailureAlarm);
    expect(JSON.stringify(failures.Metrics)).toContain('"MetricName":"Errors"');
    expect(JSON.stringify(failures.Metrics)).toContain('"MetricName":"Throttles"');
    expect(failures).toMatchObject({ Threshold: 1, EvaluationPeriods: 5, DatapointsToAlarm: 3 });
    expect(composite.AlarmActions).toEqual([topicRef()]);
  });

  test('every paging alarm notifies the topic on alarm and OK', () => {
    const members = [
      monitoring.latencyAlarm, monitoring.unavailableAlarm, monitoring.trafficAlarm, monitoring.routerFailureAlarm, ...monitoring.tierErrorRateAlarms,
    ];
    const paging = monitoring.alarms.filter((a) => !members.includes(a));
    expect(paging.length).toBeGreaterThan(10);
    for (const alarm of paging) {
      expect(alarmOf(alarm).AlarmActions).toEqual([topicRef()]);
      expect(alarmOf(alarm).OKActions).toEqual([topicRef()]);
      expect(alarmOf(alarm).AlarmDescription).toMatch(/\. /);
    }
  });
});

describe('AiMonitoring topic and budget', () => {
  test('the topic is KMS-encrypted, SSL only, and CloudWatch and Budgets may publish and use the key', () => {
    template.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: Match.anyValue() });
    const policy = JSON.stringify(template.findResources('AWS::SNS::TopicPolicy'));
    expect(policy).toContain('aws:SecureTransport');
    expect(policy).toContain('budgets.amazonaws.com');
    expect(policy).toContain('cloudwatch.amazonaws.com');
    const keys = JSON.stringify(template.findResources('AWS::KMS::Key'));
    expect(keys).toContain('budgets.amazonaws.com');
  });

  test('a daily cost budget notifies the topic', () => {
    template.hasResourceProperties('AWS::Budgets::Budget', {
      Budget: { BudgetType: 'COST', TimeUnit: 'DAILY', BudgetLimit: { Amount: 50, Unit: 'USD' } },
      NotificationsWithSubscribers: Match.arrayWith([Match.objectLike({
        Notification: Match.objectLike({ NotificationType: 'ACTUAL', Threshold: 100 }),
        Subscribers: [{ SubscriptionType: 'SNS', Address: topicRef() }],
      })]),
    });
  });

  test('usable alone on a hand-built router; bad thresholds fail naming the prop', () => {
    const stack = newStack();
    const router = new TieredRouter(stack, 'Router', { tiers: [ModelTier.bedrock({ tierId: 'small', modelId: 'amazon.nova-micro-v1:0', inputPricePer1kTokens: 0.00004, outputPricePer1kTokens: 0.00014 })] });
    new AiMonitoring(stack, 'Monitoring', { router, enableBudget: false });
    Template.fromStack(stack).resourceCountIs('AWS::Budgets::Budget', 0);
    expect(() => new AiMonitoring(stack, 'Bad', { router, latencyP99ThresholdMs: 0 })).toThrow(/latencyP99ThresholdMs must be above 0/);
  });

  test('the facade gives the alarm topic a key of its own; an imported key gets a warning', () => {
    const own = newStack();
    const dataKey = new kms.Key(own, 'DataKey', { enableKeyRotation: true });
    new ScalableAiService(own, 'Service', { tiers: [ModelTier.bedrock({ tierId: 'small', modelId: 'amazon.nova-micro-v1:0', inputPricePer1kTokens: 0.00004, outputPricePer1kTokens: 0.00014 })], encryptionKey: dataKey });
    const t = Template.fromStack(own);
    const dataKeyId = own.getLogicalId(dataKey.node.defaultChild as kms.CfnKey);
    // The data key never admits CloudWatch or AWS Budgets; the topic's own key does.
    expect(JSON.stringify(t.toJSON().Resources[dataKeyId])).not.toContain('budgets.amazonaws.com');
    const topicKey = JSON.stringify(Object.values(t.findResources('AWS::SNS::Topic'))[0].Properties.KmsMasterKeyId);
    expect(topicKey).not.toContain(dataKeyId);
    expect(topicKey).toMatch(/AlarmTopicKey/);

    const stack = newStack();
    const router = new TieredRouter(stack, 'Router', { tiers: [ModelTier.bedrock({ tierId: 'small', modelId: 'amazon.nova-micro-v1:0', inputPricePer1kTokens: 0.00004, outputPricePer1kTokens: 0.00014 })] });
    const imported = kms.Key.fromKeyArn(stack, 'Imported', 'arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab');
    new AiMonitoring(stack, 'Monitoring', { router, enableBudget: false, encryptionKey: imported });
    Annotations.fromStack(stack).hasWarning('/TestStack/Monitoring', Match.stringLikeRegexp('encryptionKey is imported'));
  });
});
