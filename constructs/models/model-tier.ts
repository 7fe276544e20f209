import { Duration } from 'aws-cdk-lib';
import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as iam from 'aws-cdk-lib/aws-iam';

/** Who serves a model tier. */
export enum ModelProvider {
  /** Amazon Bedrock, through the Converse API. */
  BEDROCK = 'bedrock',
  /** An Amazon SageMaker real-time endpoint. */
  SAGEMAKER = 'sagemaker',
}

/**
 * The Amazon Bedrock service tier a request asks for: Bedrock bills, queues and throttles each
 * differently, and chooses per request (the Converse `serviceTier` field).
 *
 * Which models and Regions offer Flex and Priority is listed in the Bedrock User Guide ("Service
 * tiers for optimizing performance and cost") and changes over time: it cannot be checked at
 * synth. A model or Region without the tier refuses the request (`ValidationException`), which the
 * router answers 400 without falling back, so name a tier only for a model that has it.
 */
export enum BedrockServiceTier {
  /** Standard: the on-demand price, for everyday traffic (Bedrock's default when none is named). */
  STANDARD = 'default',
  /**
   * Flex: about half the Standard price, for work that can wait (the batch worker's queue,
   * evaluations, summaries). Under high demand Flex requests are served after the other tiers,
   * so expect higher and more variable latency, and throttling.
   */
  FLEX = 'flex',
  /**
   * Priority: about 1.75x the Standard price; served ahead of Standard and Flex under high demand,
   * with up to 25% faster output for most models, for latency-critical, customer-facing tiers.
   */
  PRIORITY = 'priority',
}

/** The request/response format a SageMaker inference container speaks. */
export enum SageMakerApiFormat {
  /**
   * OpenAI-compatible chat completions (`{ messages, max_tokens, temperature }` →
   * `{ choices[0].message.content, usage }`): the Messages API of the Hugging Face TGI and
   * vLLM containers.
   */
  OPENAI_CHAT = 'openai-chat',
}

/**
 * A model tier: one model the router can send a request to, with its prices and limits.
 *
 * Create one with `ModelTier.bedrock()` or `ModelTier.sageMaker()`.
 */
export interface IModelTier {
  /** Tier id, unique within a router, such as `small`, `medium` or `large`. */
  readonly tierId: string;
  /** Who serves the tier. */
  readonly provider: ModelProvider;
  /** The Bedrock model or inference profile id, or the SageMaker endpoint name. */
  readonly modelIdentifier: string;
  /** USD per 1,000 input tokens. */
  readonly inputPricePer1kTokens: number;
  /** USD per 1,000 output tokens. */
  readonly outputPricePer1kTokens: number;
  /** Most output tokens a request to this tier may ask for. */
  readonly maxTokens: number;
  /** How long one invocation may take before the router moves on to the next tier. */
  readonly timeout: Duration;
  /** The container format, for SageMaker tiers. */
  readonly apiFormat?: SageMakerApiFormat;
  /** The inference component to invoke on the endpoint, for SageMaker tiers served by one. */
  readonly inferenceComponentName?: string;
  /** Most instances auto scaling may run (SageMaker tiers with auto scaling); undefined otherwise. */
  readonly maxInstanceCount?: number;
  /** The Bedrock service tier requests to this tier ask for (Bedrock tiers); undefined otherwise. */
  readonly serviceTier?: BedrockServiceTier;
  /**
   * What Bedrock bills for a request served at Flex, as a multiple of this tier's (Standard)
   * prices; undefined when unknown (the tier is then never called at Flex).
   */
  readonly flexPriceFactor?: number;
  /**
   * What Bedrock bills for a request served at Priority, as a multiple of this tier's (Standard)
   * prices; undefined when unknown.
   */
  readonly priorityPriceFactor?: number;

  /** Grants `grantee` permission to invoke exactly this tier's model, profile or endpoint. */
  grantInvoke(grantee: iam.IGrantable): iam.Grant;

  /**
   * Invocations as the provider counts them: `AWS/Bedrock` `Invocations` of the model, or
   * `AWS/SageMaker` `Invocations` of the endpoint variant.
   */
  metricProviderInvocations(props?: cloudwatch.MetricOptions): cloudwatch.Metric;
  /**
   * Latency as the provider measures it: Bedrock `InvocationLatency` (milliseconds), SageMaker
   * `ModelLatency` (microseconds); p99 by default.
   */
  metricProviderLatency(props?: cloudwatch.MetricOptions): cloudwatch.Metric;
  /**
   * Invocations the provider throttled: Bedrock `InvocationThrottles`; undefined for SageMaker,
   * which publishes no throttle metric (a saturated endpoint shows in its latency and instance count).
   */
  metricProviderThrottles(props?: cloudwatch.MetricOptions): cloudwatch.Metric | undefined;
  /**
   * Instances serving the tier (SageMaker); undefined for Bedrock, which is serverless.
   */
  metricInstanceCount(props?: cloudwatch.MathExpressionOptions): cloudwatch.IMetric | undefined;
}

/** Properties every tier shares. */
export interface ModelTierBaseProps {
  /**
   * Tier id: lower-case letters, digits and dashes, at most 32 characters. It names the tier in
   * requests (`tier` hint), headers (`x-tier`) and metrics (`Tier` dimension).
   */
  readonly tierId: string;
  /**
   * Most output tokens a request to this tier may ask for; requests asking for more are capped.
   * @default 1024
   */
  readonly maxTokens?: number;
  /**
   * How long one invocation may take before the router treats it as failed and falls back.
   * Must be between 1 and 29 seconds (an HTTP API integration times out at 30 seconds).
   * @default Duration.seconds(15)
   */
  readonly timeout?: Duration;
}
