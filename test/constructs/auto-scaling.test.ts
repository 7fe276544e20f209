/**
 * Every scaling policy and scheduled action the library creates: SageMaker variants (invocations
 * and GPU target tracking, schedules from a traffic profile), inference components (copies down to
 * zero, the step policy that scales out from zero), and the router's provisioned concurrency.
 */
import { Duration, TimeZone } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { newStack, newGrantee, onlyResource, resourcesAllowing, routerConfig } from './helpers';
import {
  CapacityPlan, DayOfWeek, ModelTier, ScalableAiService, ScalingPhase, TieredRouter,
  type IModelTier, type SageMakerTierProps, type WeeklyTrafficProfile,
} from '../../constructs';

const IMAGE = '123456789012.dkr.ecr.us-west-2.amazonaws.com/my/tgi-repo:2.4.0';
const WEEKDAYS = [DayOfWeek.MONDAY, DayOfWeek.TUESDAY, DayOfWeek.WEDNESDAY, DayOfWeek.THURSDAY, DayOfWeek.FRIDAY];
const PROFILE: WeeklyTrafficProfile = {
  peaks: [{ days: WEEKDAYS, startHour: 9, endHour: 18, minCapacity: 3 }],
  timeZone: TimeZone.EUROPE_BERLIN,
};

function sageMaker(props: Partial<SageMakerTierProps> = {}) {
  const stack = newStack();
  const tier = ModelTier.sageMaker(stack, 'Tier', { tierId: 'sm', imageUri: IMAGE, endpointName: 'sm-endpoint', ...props });
  return { stack, tier, template: () => Template.fromStack(stack) };
}

function bedrock(): IModelTier {
  return ModelTier.bedrock({ tierId: 'small', modelId: 'amazon.nova-micro-v1:0', inputPricePer1kTokens: 0.000035, outputPricePer1kTokens: 0.00014 });
}

function scheduledActions(template: Template): Array<{ Schedule: string; ScalableTargetAction: Record<string, number>; Timezone?: string }> {
  const [, target] = onlyResource(template, 'AWS::ApplicationAutoScaling::ScalableTarget');
  return target.Properties.ScheduledActions ?? [];
}

describe('SageMaker variant auto scaling', () => {
  test('target tracking on invocations per instance with scale-in quicker than scale-out by default', () => {
    const { template } = sageMaker({ autoScaling: { minCapacity: 1, maxCapacity: 4 } });
    template().hasResourceProperties('AWS::ApplicationAutoScaling::ScalingPolicy', {
      PolicyType: 'TargetTrackingScaling',
      TargetTrackingScalingPolicyConfiguration: {
        PredefinedMetricSpecification: { PredefinedMetricType: 'SageMakerVariantInvocationsPerInstance' },
        TargetValue: 60,
        ScaleInCooldown: 120,
        ScaleOutCooldown: 300,
      },
    });
    template().resourceCountIs('AWS::ApplicationAutoScaling::ScalingPolicy', 1);
  });

  test('targetGpuUtilization adds a second policy on GPUUtilization of the endpoint variant', () => {
    const { template } = sageMaker({ instanceType: 'ml.g5.xlarge', autoScaling: { minCapacity: 1, maxCapacity: 4, targetGpuUtilization: 70 } });
    template().resourceCountIs('AWS::ApplicationAutoScaling::ScalingPolicy', 2);
    template().hasResourceProperties('AWS::ApplicationAutoScaling::ScalingPolicy', {
      PolicyType: 'TargetTrackingScaling',
      TargetTrackingScalingPolicyConfiguration: {
        CustomizedMetricSpecification: {
          Namespace: '/aws/sagemaker/Endpoints',
          MetricName: 'GPUUtilization',
          Statistic: 'Average',
          Dimensions: Match.arrayWith([{ Name: 'EndpointName', Value: 'sm-endpoint' }, { Name: 'VariantName', Value: 'AllTraffic' }]),
        },
        TargetValue: 70,
        ScaleInCooldown: 120,
        ScaleOutCooldown: 300,
      },
    });
  });

  test.each([
    ['a CPU instance type', { instanceType: 'ml.c5.xlarge', autoScaling: { minCapacity: 1, maxCapacity: 2, targetGpuUtilization: 70 } }, /autoScaling\.targetGpuUtilization needs a GPU instance type.*ml\.c5\.xlarge/],
    ['an Inferentia instance type', { instanceType: 'ml.inf2.xlarge', autoScaling: { minCapacity: 1, maxCapacity: 2, targetGpuUtilization: 70 } }, /targetGpuUtilization needs a GPU instance type/],
    ['a utilization of 0', { autoScaling: { minCapacity: 1, maxCapacity: 2, targetGpuUtilization: 0 } }, /autoScaling\.targetGpuUtilization must be a percentage above 0/],
  ] as Array<[string, Partial<SageMakerTierProps>, RegExp]>)('targetGpuUtilization with %s is refused', (_name, props, error) => {
    expect(() => sageMaker(props)).toThrow(error);
  });

  test('a scale-in cooldown longer than the scale-out one is a warning', () => {
    const slow = { minCapacity: 1, maxCapacity: 2, scaleInCooldown: Duration.minutes(10), scaleOutCooldown: Duration.minutes(5) };
    const { stack } = sageMaker({ autoScaling: slow });
    Annotations.fromStack(stack).hasWarning('/TestStack/Tier', Match.stringLikeRegexp('autoScaling.scaleInCooldown \\(10 minutes\\) is longer than scaleOutCooldown'));
    const quiet = sageMaker({ autoScaling: { minCapacity: 1, maxCapacity: 2 } });
    expect(Annotations.fromStack(quiet.stack).findWarning('*', Match.stringLikeRegexp('scaleInCooldown'))).toHaveLength(0);
  });

  test('a traffic profile raises the minimum ahead of the peak and restores it, in the profile\'s time zone', () => {
    const { template } = sageMaker({ instanceCount: 1, autoScaling: { minCapacity: 1, maxCapacity: 4, trafficProfile: PROFILE } });
    expect(scheduledActions(template())).toEqual([
      expect.objectContaining({ Schedule: 'cron(45 8 ? * MON,TUE,WED,THU,FRI *)', ScalableTargetAction: { MinCapacity: 3 }, Timezone: 'Europe/Berlin' }),
      expect.objectContaining({ Schedule: 'cron(0 18 ? * MON,TUE,WED,THU,FRI *)', ScalableTargetAction: { MinCapacity: 1 }, Timezone: 'Europe/Berlin' }),
    ]);
  });

  test('a peak above maxCapacity is refused, naming the prop', () => {
    expect(() => sageMaker({ autoScaling: { minCapacity: 1, maxCapacity: 2, trafficProfile: PROFILE } }))
      .toThrow(/ModelTier\.sageMaker\(sm\): autoScaling\.trafficProfile\.peaks\[0\]\.minCapacity must be an integer above the minimum capacity \(1\) and at most the maximum \(2\)/);
  });
});

describe('SageMaker inference component (scale to zero)', () => {
  test('endpoint config with managed instance scaling from 0 and the execution role; a component with one copy at creation', () => {
    const { template, tier } = sageMaker({ inferenceComponent: { maxCopies: 2 } });
    const roleId = Object.keys(template().findResources('AWS::IAM::Role', { Properties: { Description: 'SageMaker execution role of model tier sm' } }))[0];
    template().hasResourceProperties('AWS::SageMaker::EndpointConfig', {
      ExecutionRoleArn: { 'Fn::GetAtt': [roleId, 'Arn'] },
      ProductionVariants: [Match.objectLike({
        VariantName: 'AllTraffic',
        InstanceType: 'ml.g5.xlarge',
        ManagedInstanceScaling: { Status: 'ENABLED', MinInstanceCount: 0, MaxInstanceCount: 2 },
        RoutingConfig: { RoutingStrategy: 'LEAST_OUTSTANDING_REQUESTS' },
        ModelName: Match.absent(),
      })],
    });
    template().hasResourceProperties('AWS::SageMaker::InferenceComponent', {
      InferenceComponentName: 'sm-endpoint-ic',
      VariantName: 'AllTraffic',
      RuntimeConfig: { CopyCount: 1 },
      Specification: Match.objectLike({ ComputeResourceRequirements: { MinMemoryRequiredInMb: 4096, NumberOfAcceleratorDevicesRequired: 1 } }),
    });
    expect(tier.inferenceComponentName).toBe('sm-endpoint-ic');
  });

  test('copies scale 0..max on invocations per copy, and a step policy adds a copy when a request finds none', () => {
    const { template } = sageMaker({ inferenceComponent: { maxCopies: 3 } });
    template().hasResourceProperties('AWS::ApplicationAutoScaling::ScalableTarget', {
      ResourceId: 'inference-component/sm-endpoint-ic',
      ScalableDimension: 'sagemaker:inference-component:DesiredCopyCount',
      MinCapacity: 0,
      MaxCapacity: 3,
    });
    template().hasResourceProperties('AWS::ApplicationAutoScaling::ScalingPolicy', {
      PolicyType: 'TargetTrackingScaling',
      TargetTrackingScalingPolicyConfiguration: {
        PredefinedMetricSpecification: { PredefinedMetricType: 'SageMakerInferenceComponentInvocationsPerCopy' },
        TargetValue: 60,
        ScaleInCooldown: 120,
        ScaleOutCooldown: 300,
      },
    });
    const step = template().findResources('AWS::ApplicationAutoScaling::ScalingPolicy', { Properties: { PolicyType: 'StepScaling' } });
    expect(Object.values(step)).toHaveLength(1);
    const [stepId, stepPolicy] = Object.entries(step)[0] as [string, any];
    expect(stepPolicy.Properties.StepScalingPolicyConfiguration).toEqual({
      AdjustmentType: 'ChangeInCapacity',
      Cooldown: 60,
      MetricAggregationType: 'Maximum',
      StepAdjustments: [{ MetricIntervalLowerBound: 0, ScalingAdjustment: 1 }],
    });
    template().hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/SageMaker',
      MetricName: 'NoCapacityInvocationFailures',
      Dimensions: [{ Name: 'InferenceComponentName', Value: 'sm-endpoint-ic' }],
      Statistic: 'Sum',
      Period: 60,
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      EvaluationPeriods: 1,
      AlarmActions: [{ Ref: stepId }],
    });
  });

  test('minCopies above 0 keeps a warm copy and needs no scale-out-from-zero policy', () => {
    const { template } = sageMaker({ inferenceComponent: { minCopies: 1, maxCopies: 2 } });
    template().resourceCountIs('AWS::CloudWatch::Alarm', 0);
    template().hasResourceProperties('AWS::SageMaker::EndpointConfig', {
      ProductionVariants: [Match.objectLike({ ManagedInstanceScaling: { Status: 'ENABLED', MinInstanceCount: 1, MaxInstanceCount: 2 } })],
    });
  });

  test('a traffic profile schedules the minimum copy count', () => {
    const trafficProfile = { peaks: [{ startHour: 8, endHour: 20, minCapacity: 1 }] };
    const { template } = sageMaker({ inferenceComponent: { maxCopies: 4, trafficProfile } });
    expect(scheduledActions(template()).map((a) => [a.Schedule, a.ScalableTargetAction])).toEqual([
      ['cron(45 7 ? * * *)', { MinCapacity: 1 }],
      ['cron(0 20 ? * * *)', { MinCapacity: 0 }],
    ]);
  });

  test('grantInvoke allows InvokeEndpoint on the endpoint and on the component, nothing wider', () => {
    const { stack, tier, template } = sageMaker({ inferenceComponent: { maxCopies: 2 } });
    tier.grantInvoke(newGrantee(stack));
    const [icId] = onlyResource(template(), 'AWS::SageMaker::InferenceComponent');
    const [endpointId] = onlyResource(template(), 'AWS::SageMaker::Endpoint');
    expect(resourcesAllowing(template(), 'sagemaker:InvokeEndpoint').sort()).toEqual([`\${GetAtt:${icId}.InferenceComponentArn}`, `\${Ref:${endpointId}}`]);
  });

  test('the router is told the component name', () => {
    const stack = newStack();
    const tier = ModelTier.sageMaker(stack, 'Tier', { tierId: 'sm', imageUri: IMAGE, endpointName: 'sm-endpoint', inferenceComponent: { maxCopies: 2 } });
    new TieredRouter(stack, 'Router', { tiers: [bedrock(), tier] });
    const config = routerConfig(Template.fromStack(stack));
    expect(config.tiers[1]).toEqual(expect.objectContaining({ endpointName: 'sm-endpoint', inferenceComponentName: 'sm-endpoint-ic' }));
    expect(config.tiers[0].inferenceComponentName).toBeUndefined();
  });

  test.each([
    ['with autoScaling', { autoScaling: { minCapacity: 1, maxCapacity: 2 }, inferenceComponent: { maxCopies: 2 } }, /autoScaling scales the instances.*inferenceComponent the copies.*set one of them/],
    ['maxCopies 0', { inferenceComponent: { maxCopies: 0 } }, /inferenceComponent needs integers 0 <= minCopies <= maxCopies and maxCopies >= 1; got 0\.\.0/],
    ['minCopies above maxCopies', { inferenceComponent: { minCopies: 3, maxCopies: 2 } }, /inferenceComponent needs integers.*got 3\.\.2/],
    ['memoryPerCopyMb 64', { inferenceComponent: { maxCopies: 2, memoryPerCopyMb: 64 } }, /inferenceComponent\.memoryPerCopyMb must be an integer of at least 128/],
    ['with an existing endpoint', { imageUri: undefined, endpointName: undefined, existingEndpointName: 'e', inferenceComponent: { maxCopies: 2 } }, /inferenceComponent.*existingEndpointName/],
  ] as Array<[string, Partial<SageMakerTierProps>, RegExp]>)('%s is refused', (_name, props, error) => {
    expect(() => sageMaker(props)).toThrow(error);
  });
});

describe('router provisioned concurrency', () => {
  test('off by default: no alias, no provisioned concurrency, the API invokes the function', () => {
    const stack = newStack();
    const router = new TieredRouter(stack, 'Router', { tiers: [bedrock()] });
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::Lambda::Alias', 0);
    template.resourceCountIs('AWS::ApplicationAutoScaling::ScalableTarget', 0);
    expect(router.alias).toBeUndefined();
  });

  test('an alias with provisioned concurrency that tracks 70% utilization; the API invokes the alias', () => {
    const stack = newStack();
    const router = new TieredRouter(stack, 'Router', { tiers: [bedrock()], provisionedConcurrency: { minCapacity: 2, maxCapacity: 20 } });
    const template = Template.fromStack(stack);
    const [aliasId] = onlyResource(template, 'AWS::Lambda::Alias');
    template.hasResourceProperties('AWS::Lambda::Alias', { Name: 'live', ProvisionedConcurrencyConfig: { ProvisionedConcurrentExecutions: 2 } });
    template.hasResourceProperties('AWS::ApplicationAutoScaling::ScalableTarget', {
      ServiceNamespace: 'lambda',
      ScalableDimension: 'lambda:function:ProvisionedConcurrency',
      MinCapacity: 2,
      MaxCapacity: 20,
    });
    template.hasResourceProperties('AWS::ApplicationAutoScaling::ScalingPolicy', {
      PolicyType: 'TargetTrackingScaling',
      TargetTrackingScalingPolicyConfiguration: Match.objectLike({
        PredefinedMetricSpecification: { PredefinedMetricType: 'LambdaProvisionedConcurrencyUtilization' },
        TargetValue: 0.7,
        ScaleInCooldown: 120,
        ScaleOutCooldown: 60,
      }),
    });
    // Every integration and its invoke permission target the alias, not $LATEST.
    const integrations = Object.values(template.findResources('AWS::ApiGatewayV2::Integration')) as any[];
    expect(integrations.length).toBeGreaterThan(0);
    for (const integration of integrations) expect(integration.Properties.IntegrationUri).toEqual({ Ref: aliasId });
    const permissions = Object.values(template.findResources('AWS::Lambda::Permission')) as any[];
    expect(permissions.length).toBeGreaterThan(0);
    for (const permission of permissions) expect(permission.Properties.FunctionName).toEqual({ Ref: aliasId });
    expect(router.alias).toBeDefined();
    expect(router.function).not.toBe(router.alias);
  });

  test('a traffic profile schedules the provisioned concurrency', () => {
    const stack = newStack();
    new TieredRouter(stack, 'Router', {
      tiers: [bedrock()],
      provisionedConcurrency: {
        minCapacity: 2,
        maxCapacity: 20,
        targetUtilization: 0.5,
        trafficProfile: { peaks: [{ days: [DayOfWeek.SATURDAY], startHour: 10, endHour: 14, minCapacity: 10 }], leadTime: Duration.minutes(5) },
      },
    });
    const template = Template.fromStack(stack);
    expect(scheduledActions(template).map((a) => [a.Schedule, a.ScalableTargetAction])).toEqual([
      ['cron(55 9 ? * SAT *)', { MinCapacity: 10 }],
      ['cron(0 14 ? * SAT *)', { MinCapacity: 2 }],
    ]);
    template.hasResourceProperties('AWS::ApplicationAutoScaling::ScalingPolicy', { TargetTrackingScalingPolicyConfiguration: Match.objectLike({ TargetValue: 0.5 }) });
  });

  test('ScalableAiService passes routerOptions.provisionedConcurrency through', () => {
    const stack = newStack();
    new ScalableAiService(stack, 'Service', { tiers: [bedrock()], routerOptions: { provisionedConcurrency: { minCapacity: 1, maxCapacity: 5 } } });
    Template.fromStack(stack).hasResourceProperties('AWS::Lambda::Alias', { ProvisionedConcurrencyConfig: { ProvisionedConcurrentExecutions: 1 } });
  });

  test.each([
    [{ minCapacity: 0, maxCapacity: 5 }, /TieredRouter: provisionedConcurrency needs integers 1 <= minCapacity <= maxCapacity; got 0\.\.5/],
    [{ minCapacity: 5, maxCapacity: 2 }, /provisionedConcurrency needs integers.*got 5\.\.2/],
    [{ minCapacity: 1, maxCapacity: 2, targetUtilization: 1 }, /provisionedConcurrency\.targetUtilization must be between 0\.1 and 0\.9; got 1/],
  ])('%j is refused', (provisionedConcurrency, error) => {
    expect(() => new TieredRouter(newStack(), 'Router', { tiers: [bedrock()], provisionedConcurrency })).toThrow(error);
  });
});

describe('CapacityPlan', () => {
  test('the small phase pauses Aurora and scales SageMaker to zero; bounds grow with the phase', () => {
    const small = CapacityPlan.forPhase(ScalingPhase.USERS_1K);
    expect(small).toEqual(expect.objectContaining({
      phase: ScalingPhase.USERS_1K, auroraMinAcu: 0, sageMakerMinInstances: 0, routerProvisionedConcurrencyMax: 0,
    }));
    const phases = [ScalingPhase.USERS_1K, ScalingPhase.USERS_10K, ScalingPhase.USERS_100K, ScalingPhase.USERS_1M]
      .map((p) => CapacityPlan.forPhase(p));
    for (let i = 1; i < phases.length; i++) {
      expect(phases[i].auroraMaxAcu).toBeGreaterThan(phases[i - 1].auroraMaxAcu);
      expect(phases[i].sageMakerMaxInstances).toBeGreaterThanOrEqual(phases[i - 1].sageMakerMaxInstances);
    }
    for (const p of phases) {
      expect(p.auroraMinAcu).toBeLessThanOrEqual(p.auroraMaxAcu);
      // Aurora Serverless v2 bounds: 0-256 ACU in 0.5 steps.
      expect(p.auroraMaxAcu).toBeLessThanOrEqual(256);
      expect((p.auroraMinAcu * 2) % 1).toBe(0);
    }
  });
});
