/** The full facade the monitoring tests read: batch pipeline, static answers, a scaling SageMaker tier, Bedrock tiers. */
import { Template } from 'aws-cdk-lib/assertions';
import { newStack } from './helpers';
import { ModelTier, ScalableAiService } from '../../constructs';

export function fullService(): { service: ScalableAiService; template: Template } {
  const stack = newStack();
  const service = new ScalableAiService(stack, 'Service', {
    tiers: [
      ModelTier.bedrock({ tierId: 'small', modelId: 'us.amazon.nova-micro-v1:0', inputPricePer1kTokens: 0.000035, outputPricePer1kTokens: 0.00014 }),
      ModelTier.sageMaker(stack, 'LargeTier', {
        tierId: 'large',
        imageUri: '763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-pytorch-tgi-inference:2.4.0-tgi3.0.1-gpu-py311-cu124-ubuntu22.04',
        environment: { HF_MODEL_ID: 'Qwen/Qwen2.5-7B-Instruct' },
        autoScaling: { minCapacity: 1, maxCapacity: 4 },
      }),
    ],
    staticAnswers: {},
    batchPipeline: {},
    routerOptions: { serviceName: 'shop', reservedConcurrentExecutions: 200 },
  });
  return { service, template: Template.fromStack(stack) };
}
