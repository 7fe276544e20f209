import { CfnOutput, Duration, Stack, TimeZone, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { CapacityPlan, DayOfWeek, ModelTier, ScalableAiService, ScalingPhase, VectorStore, type IModelTier, type WeeklyTrafficProfile } from '../constructs';

/**
 * Bedrock tiers of the e-commerce assistant in SEED.md, through US cross-region inference
 * profiles. Prices are the on-demand list prices in USD per 1,000 tokens (late 2026).
 */
export function novaMicroTier(): IModelTier {
  return ModelTier.bedrock({
    tierId: 'small',
    modelId: 'us.amazon.nova-micro-v1:0',
    inputPricePer1kTokens: 0.000035,
    outputPricePer1kTokens: 0.00014,
    maxTokens: 512,
    timeout: Duration.seconds(8),
  });
}

export function novaLiteTier(): IModelTier {
  return ModelTier.bedrock({
    tierId: 'medium',
    modelId: 'us.amazon.nova-lite-v1:0',
    inputPricePer1kTokens: 0.00006,
    outputPricePer1kTokens: 0.00024,
    maxTokens: 1024,
    timeout: Duration.seconds(10),
  });
}

export function claudeSonnetTier(): IModelTier {
  return ModelTier.bedrock({
    tierId: 'large',
    modelId: 'us.anthropic.claude-sonnet-4-5-20250929-v1:0',
    inputPricePer1kTokens: 0.003,
    outputPricePer1kTokens: 0.015,
    maxTokens: 2048,
    timeout: Duration.seconds(20),
  });
}

/**
 * The e-commerce assistant on Bedrock: Nova Micro → Nova Lite → Claude Sonnet, behind static
 * answers (shipping, returns, payment FAQs refreshed daily from S3), the exact cache and the
 * semantic cache (vectors in Valkey, Titan Text Embeddings V2), with user context in Valkey.
 * Work that can wait (catalogue enrichment, review summaries) goes through the batch pipeline:
 * `POST /v1/jobs` queues it for the batch worker, and jobs of 100+ requests run as Bedrock batch
 * inference on the large tier at about half the on-demand price.
 */
export class EcommerceAssistantStack extends Stack {
  public readonly service: ScalableAiService;

  constructor(scope: Construct, id: string, props?: StackProps) {
    super(scope, id, props);
    const large = claudeSonnetTier();
    this.service = new ScalableAiService(this, 'Assistant', {
      tiers: [novaMicroTier(), novaLiteTier(), large],
      staticAnswers: { refreshInterval: Duration.days(1), maxAge: Duration.hours(1) },
      routerOptions: { serviceName: 'ecommerce-assistant' },
      batchPipeline: { bulk: { tier: large } },
    });
    new CfnOutput(this, 'ApiUrl', { value: this.service.router.url });
    new CfnOutput(this, 'StaticAnswersBucket', { value: this.service.staticAnswers!.bucket.bucketName });
    new CfnOutput(this, 'JobsResultsTable', { value: this.service.batchPipeline!.resultsTable.tableName });
  }
}

/**
 * The assistant at the 1M users/day phase: the semantic cache keeps its vectors in an OpenSearch
 * Serverless collection instead of Valkey. A collection bills a minimum of OCUs even while idle
 * (more than $20/day), so this pays off only at that scale.
 */
export class EcommerceAssistantOpenSearchStack extends Stack {
  public readonly service: ScalableAiService;

  constructor(scope: Construct, id: string, props?: StackProps) {
    super(scope, id, props);
    this.service = new ScalableAiService(this, 'Assistant', {
      tiers: [novaMicroTier(), novaLiteTier(), claudeSonnetTier()],
      semanticCache: {
        vectorStore: VectorStore.openSearchServerless({ collectionName: 'ecommerce-semantic', standbyReplicas: false }),
      },
      staticAnswers: {},
      routerOptions: { serviceName: 'ecommerce-assistant-opensearch' },
    });
    new CfnOutput(this, 'ApiUrl', { value: this.service.router.url });
  }
}

/**
 * The shop's week (US Eastern time): weekday business hours and longer weekend evenings. Each peak
 * raises the minimum capacity 15 minutes ahead, so a new GPU instance is serving when the load
 * arrives, and restores it when the peak ends.
 */
const SHOPPING_WEEK: WeeklyTrafficProfile = {
  peaks: [
    {
      days: [DayOfWeek.MONDAY, DayOfWeek.TUESDAY, DayOfWeek.WEDNESDAY, DayOfWeek.THURSDAY, DayOfWeek.FRIDAY],
      startHour: 8,
      endHour: 20,
      minCapacity: 2,
    },
    { days: [DayOfWeek.SATURDAY, DayOfWeek.SUNDAY], startHour: 10, endHour: 23, minCapacity: 2 },
  ],
  timeZone: TimeZone.AMERICA_NEW_YORK,
};

/**
 * The same assistant with its small tier on a fine-tuned open model served by SageMaker (the
 * "fine-tuned small model" of SEED.md): a Hugging Face TGI container on one GPU instance,
 * scaling out to three under load (on invocations per instance or GPU utilization, whichever
 * asks for more), with two instances held through the shop's peak hours. At the 100K users/day
 * phase the router also keeps provisioned concurrency, raised for the same peaks.
 */
export class EcommerceAssistantSageMakerStack extends Stack {
  public readonly service: ScalableAiService;

  constructor(scope: Construct, id: string, props?: StackProps) {
    super(scope, id, props);
    const plan = CapacityPlan.forPhase(ScalingPhase.USERS_100K);
    const small = ModelTier.sageMaker(this, 'SmallTier', {
      tierId: 'small',
      // Hugging Face TGI Deep Learning Container (speaks the OpenAI chat completions API).
      imageUri: '763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-pytorch-tgi-inference:2.4.0-tgi3.0.1-gpu-py311-cu124-ubuntu22.04',
      environment: {
        HF_MODEL_ID: 'Qwen/Qwen2.5-7B-Instruct',
        SM_NUM_GPUS: '1',
        MAX_INPUT_TOKENS: '4096',
        MAX_TOTAL_TOKENS: '6144',
      },
      instanceType: 'ml.g5.2xlarge',
      instanceCount: 1,
      autoScaling: { minCapacity: 1, maxCapacity: 3, targetInvocationsPerInstance: 120, targetGpuUtilization: 70, trafficProfile: SHOPPING_WEEK },
      maxTokens: 512,
      timeout: Duration.seconds(10),
      // ml.g5.2xlarge on demand is about $1.52/hour; amortized over ~150k requests/day.
      inputPricePer1kTokens: 0.00005,
      outputPricePer1kTokens: 0.00005,
    });
    this.service = new ScalableAiService(this, 'Assistant', {
      tiers: [small, novaLiteTier(), claudeSonnetTier()],
      routerOptions: {
        serviceName: 'ecommerce-assistant-sagemaker',
        provisionedConcurrency: {
          minCapacity: plan.routerProvisionedConcurrencyMin,
          maxCapacity: plan.routerProvisionedConcurrencyMax,
          trafficProfile: { ...SHOPPING_WEEK, peaks: SHOPPING_WEEK.peaks.map((peak) => ({ ...peak, minCapacity: 20 })) },
        },
      },
    });
    new CfnOutput(this, 'ApiUrl', { value: this.service.router.url });
  }
}
