import { Arn, ArnFormat, Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';

/**
 * The `ModelId` dimension Bedrock reports a model's runtime metrics under: the id the request
 * named (a foundation model id, or a cross-region inference profile id such as
 * `us.amazon.nova-micro-v1:0`); the ARN of an application inference profile stays an ARN.
 */
export function bedrockMetricModelId(modelId: string): string {
  if (!modelId.startsWith('arn:')) return modelId;
  const arn = Arn.split(modelId, ArnFormat.SLASH_RESOURCE_NAME);
  return arn.resource === 'application-inference-profile' ? modelId : arn.resourceName ?? modelId;
}

/** A metric of `AWS/Bedrock` for one model (`ModelId`), summed per minute unless `props` say otherwise. */
export function bedrockMetric(modelId: string, metricName: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
  return new cloudwatch.Metric({
    namespace: 'AWS/Bedrock',
    metricName,
    statistic: 'Sum',
    period: Duration.minutes(1),
    ...props,
    dimensionsMap: { ModelId: bedrockMetricModelId(modelId), ...props?.dimensionsMap },
  });
}

/**
 * A metric of one SageMaker endpoint variant: `AWS/SageMaker` (invocations, latency) or
 * `/aws/sagemaker/Endpoints` (instance utilization), dimensions `EndpointName` + `VariantName`.
 */
export function sageMakerVariantMetric(
  namespace: string, endpointName: string, variantName: string, metricName: string, statistic: string, props?: cloudwatch.MetricOptions,
): cloudwatch.Metric {
  return new cloudwatch.Metric({
    namespace,
    metricName,
    statistic,
    period: Duration.minutes(1),
    ...props,
    dimensionsMap: { EndpointName: endpointName, VariantName: variantName, ...props?.dimensionsMap },
  });
}

/**
 * Instances in service of a SageMaker variant: SageMaker publishes no instance-count metric for a
 * variant, but `InvocationsPerInstance` is `Invocations` divided by it, so their ratio is the count
 * (undefined in a minute without invocations).
 */
export function sageMakerInstanceCount(
  endpointName: string, variantName: string, props?: cloudwatch.MathExpressionOptions,
): cloudwatch.MathExpression {
  const period = props?.period ?? Duration.minutes(1);
  return new cloudwatch.MathExpression({
    expression: 'invocations / perInstance',
    label: `${endpointName} instances`,
    ...props,
    usingMetrics: {
      invocations: sageMakerVariantMetric('AWS/SageMaker', endpointName, variantName, 'Invocations', 'Sum', { period }),
      perInstance: sageMakerVariantMetric('AWS/SageMaker', endpointName, variantName, 'InvocationsPerInstance', 'Sum', { period }),
    },
    period,
  });
}
