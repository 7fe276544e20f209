import { Arn, ArnFormat, Aws, Duration, Token } from 'aws-cdk-lib';
import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as iam from 'aws-cdk-lib/aws-iam';
import { BedrockServiceTier, ModelProvider, type IModelTier, type ModelTierBaseProps } from './model-tier';
import { bedrockMetric } from './tier-metrics';
import { DEFAULT_MAX_TOKENS, DEFAULT_TIER_TIMEOUT, validateBaseProps } from './tier-support';
import { acknowledgeOnOwnedGrantee } from '../internal/nag';
import { modelPricesOf } from '../planning/prices';

/** Properties of a Bedrock model tier. */
export interface BedrockTierProps extends ModelTierBaseProps {
  /**
   * The model to invoke, in one of these forms:
   * - a foundation model id, such as `amazon.nova-micro-v1:0`;
   * - a system-defined cross-region inference profile id, such as `us.amazon.nova-micro-v1:0`
   *   or `global.anthropic.claude-sonnet-4-5-20250929-v1:0`;
   * - the ARN of a foundation model, an inference profile or an application inference profile.
   */
  readonly modelId: string;
  /**
   * USD per 1,000 input tokens, from the Bedrock price list for the model and Region (which
   * quotes prices per million tokens: divide by 1,000). At least 0; a router warns at synth
   * above 0.2, more than any Bedrock model costs.
   */
  readonly inputPricePer1kTokens: number;
  /**
   * USD per 1,000 output tokens, from the Bedrock price list for the model and Region (which
   * quotes prices per million tokens: divide by 1,000). At least 0; a router warns at synth
   * above 0.2, more than any Bedrock model costs.
   */
  readonly outputPricePer1kTokens: number;
  /**
   * The foundation models behind an application inference profile (`modelId` is the ARN of an
   * `application-inference-profile`): the profile ARN alone cannot name them. Ignored otherwise.
   *
   * @default - derived from `modelId`
   */
  readonly profileModelIds?: string[];
  /**
   * Regions a cross-region inference profile may route requests to. Invocation through a
   * profile needs permission on the foundation model in every destination Region; the grant is
   * limited to requests that come through this tier's profile either way.
   *
   * @default - any Region (`*`), still limited to this model and this profile
   */
  readonly destinationRegions?: string[];
  /**
   * The Bedrock service tier every request to this tier asks for. `inputPricePer1kTokens` and
   * `outputPricePer1kTokens` stay the Standard prices; the router reports the cost of each request
   * at the service tier the response says served it. Whether the model offers Flex or Priority in
   * your Region cannot be checked at synth (see `BedrockServiceTier`): Bedrock refuses a request
   * for a tier the model lacks.
   *
   * @default BedrockServiceTier.STANDARD
   */
  readonly serviceTier?: BedrockServiceTier;
  /**
   * What Bedrock bills for a request served at Flex, as a multiple of the Standard prices (0.5
   * is half). Required for `serviceTier` FLEX when the price file has no Flex price for the model.
   *
   * @default - the price file's Flex factor for the model (0.5 for Nova Pro and Nova 2 Lite); none otherwise
   */
  readonly flexPriceFactor?: number;
  /**
   * What Bedrock bills for a request served at Priority, as a multiple of the Standard prices.
   * Required for `serviceTier` PRIORITY when the price file has no Priority price for the model.
   *
   * @default - the price file's Priority factor for the model (1.75 for Nova Pro); none otherwise
   */
  readonly priorityPriceFactor?: number;
}

// Geography prefixes of system-defined cross-region inference profiles.
const PROFILE_PREFIX = /^(us|us-gov|eu|apac|ap|jp|au|ca|global)\./;

const INVOKE_ACTIONS = ['bedrock:InvokeModel', 'bedrock:InvokeModelWithResponseStream'];

/**
 * A tier served by Amazon Bedrock through the Converse API. Create it with
 * `ModelTier.bedrock()`.
 */
export class BedrockModelTier implements IModelTier {
  public readonly tierId: string;
  public readonly provider = ModelProvider.BEDROCK;
  public readonly modelIdentifier: string;
  public readonly inputPricePer1kTokens: number;
  public readonly outputPricePer1kTokens: number;
  public readonly maxTokens: number;
  public readonly timeout: Duration;
  /** Whether `modelIdentifier` names an inference profile rather than a foundation model. */
  public readonly usesInferenceProfile: boolean;
  public readonly serviceTier?: BedrockServiceTier;
  public readonly flexPriceFactor?: number;
  public readonly priorityPriceFactor?: number;
  private readonly foundationModelIds: string[];
  /** The foundation model ARN given as `modelId`, granted as is. */
  private readonly foundationModelArn?: string;
  private readonly profileArn?: string;
  private readonly destinationRegions?: string[];

  constructor(props: BedrockTierProps) {
    const where = `ModelTier.bedrock(${props.tierId})`;
    validateBaseProps(where, props);
    if (props.inputPricePer1kTokens === undefined || props.outputPricePer1kTokens === undefined) {
      throw new Error(`${where}: inputPricePer1kTokens and outputPricePer1kTokens are required (USD per 1,000 tokens)`);
    }
    if (Token.isUnresolved(props.modelId)) {
      throw new Error(`${where}: modelId must be a literal model id, profile id or ARN, not a token`);
    }
    if (props.modelId.trim() === '') throw new Error(`${where}: modelId must not be empty`);
    if (props.destinationRegions !== undefined && props.destinationRegions.length === 0) {
      throw new Error(`${where}: destinationRegions must name at least one Region when given`);
    }

    this.tierId = props.tierId;
    this.modelIdentifier = props.modelId;
    this.inputPricePer1kTokens = props.inputPricePer1kTokens;
    this.outputPricePer1kTokens = props.outputPricePer1kTokens;
    this.maxTokens = props.maxTokens ?? DEFAULT_MAX_TOKENS;
    this.timeout = props.timeout ?? DEFAULT_TIER_TIMEOUT;
    this.destinationRegions = props.destinationRegions;
    this.serviceTier = props.serviceTier ?? BedrockServiceTier.STANDARD;
    const listed = modelPricesOf(props.modelId)?.prices;
    this.flexPriceFactor = priceFactor(where, 'flexPriceFactor', props.flexPriceFactor) ?? listed?.flex?.factor;
    this.priorityPriceFactor = priceFactor(where, 'priorityPriceFactor', props.priorityPriceFactor) ?? listed?.priority?.factor;
    if (this.serviceTier === BedrockServiceTier.FLEX && this.flexPriceFactor === undefined) {
      throw new Error(`${where}: serviceTier FLEX needs the Flex price of ${props.modelId}, which the price file does not have: `
        + 'set flexPriceFactor (Flex prices as a multiple of the Standard ones, from the Bedrock pricing page), after checking the model offers Flex in your Region');
    }
    if (this.serviceTier === BedrockServiceTier.PRIORITY && this.priorityPriceFactor === undefined) {
      throw new Error(`${where}: serviceTier PRIORITY needs the Priority price of ${props.modelId}, which the price file does not have: `
        + 'set priorityPriceFactor (Priority prices as a multiple of the Standard ones, from the Bedrock pricing page), after checking the model offers Priority in your Region');
    }

    const parsed = parseModelId(where, props.modelId, props.profileModelIds);
    this.usesInferenceProfile = parsed.profileArn !== undefined;
    this.foundationModelIds = parsed.foundationModelIds;
    this.foundationModelArn = parsed.foundationModelArn;
    this.profileArn = parsed.profileArn;
  }

  public grantInvoke(grantee: iam.IGrantable): iam.Grant {
    if (!this.profileArn) {
      return iam.Grant.addToPrincipal({ grantee, actions: INVOKE_ACTIONS, resourceArns: this.foundationModelArns() });
    }
    const profileGrant = iam.Grant.addToPrincipal({ grantee, actions: INVOKE_ACTIONS, resourceArns: [this.profileArn] });
    // Acknowledged on the library's own roles only; a grant to your role leaves the finding to your review.
    if (!this.destinationRegions) {
      for (const id of this.foundationModelIds) {
        acknowledgeOnOwnedGrantee(grantee, {
          id: `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:bedrock:*::foundation-model/${id}]`,
          reason: `Cross-region inference profile ${this.modelIdentifier} may serve a request from any of its destination Regions; the grant names one model and is conditioned on bedrock:InferenceProfileArn being this profile. Set destinationRegions to list the Regions instead.`,
        });
      }
    }
    const modelGrant = iam.Grant.addToPrincipal({
      grantee,
      actions: INVOKE_ACTIONS,
      resourceArns: this.foundationModelArns(),
      // The foundation models are reachable only through this tier's profile.
      conditions: { StringEquals: { 'bedrock:InferenceProfileArn': this.profileArn } },
    });
    return profileGrant.combine(modelGrant);
  }

  /**
   * The ARNs a permission on this tier's model names: its inference profile (if it has one) and
   * its foundation models; through a cross-region profile, in each of its destination Regions
   * (`*` unless `destinationRegions` lists them).
   * @internal
   */
  public _modelArns(): string[] {
    return this.profileArn ? [this.profileArn, ...this.foundationModelArns()] : this.foundationModelArns();
  }

  /** `AWS/Bedrock` `Invocations` of this tier's model (under the id the router invokes it by). */
  public metricProviderInvocations(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return bedrockMetric(this.modelIdentifier, 'Invocations', props);
  }

  /** `AWS/Bedrock` `InvocationLatency` of this tier's model in milliseconds; p99 by default. */
  public metricProviderLatency(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return bedrockMetric(this.modelIdentifier, 'InvocationLatency', { statistic: 'p99', ...props });
  }

  /** `AWS/Bedrock` `InvocationThrottles` of this tier's model. */
  public metricProviderThrottles(props?: cloudwatch.MetricOptions): cloudwatch.Metric | undefined {
    return bedrockMetric(this.modelIdentifier, 'InvocationThrottles', props);
  }

  /** Undefined: Bedrock is serverless. */
  public metricInstanceCount(_props?: cloudwatch.MathExpressionOptions): cloudwatch.IMetric | undefined {
    return undefined;
  }

  /** The foundation model ARNs: in this Region, or in each destination Region of the profile. */
  private foundationModelArns(): string[] {
    if (this.foundationModelArn) return [this.foundationModelArn];
    const regions = this.profileArn ? (this.destinationRegions ?? ['*']) : [Aws.REGION];
    return this.foundationModelIds.flatMap((id) => regions.map((region) => foundationModelArn(region, id)));
  }
}

function priceFactor(where: string, key: string, factor: number | undefined): number | undefined {
  if (factor !== undefined && (!Number.isFinite(factor) || factor <= 0 || factor > 10)) {
    throw new Error(`${where}: ${key} must be a multiple of the Standard prices above 0 and at most 10; got ${factor}`);
  }
  return factor;
}

function foundationModelArn(region: string, modelId: string): string {
  return `arn:${Aws.PARTITION}:bedrock:${region}::foundation-model/${modelId}`;
}

interface ParsedModelId {
  readonly profileArn?: string;
  readonly foundationModelArn?: string;
  readonly foundationModelIds: string[];
}

function parseModelId(where: string, modelId: string, profileModelIds?: string[]): ParsedModelId {
  if (modelId.startsWith('arn:')) {
    const arn = Arn.split(modelId, ArnFormat.SLASH_RESOURCE_NAME);
    if (arn.service !== 'bedrock' || !arn.resourceName) {
      throw new Error(`${where}: modelId "${modelId}" is not a Bedrock model or inference profile ARN`);
    }
    switch (arn.resource) {
      case 'foundation-model':
        return { foundationModelArn: modelId, foundationModelIds: [arn.resourceName] };
      case 'inference-profile':
        return { profileArn: modelId, foundationModelIds: [arn.resourceName.replace(PROFILE_PREFIX, '')] };
      case 'application-inference-profile':
        if (!profileModelIds || profileModelIds.length === 0) {
          throw new Error(`${where}: profileModelIds is required when modelId is an application inference profile ARN (the foundation models behind it cannot be derived from the ARN)`);
        }
        return { profileArn: modelId, foundationModelIds: profileModelIds };
      default:
        throw new Error(`${where}: modelId ARN names a "${arn.resource}"; expected foundation-model, inference-profile or application-inference-profile`);
    }
  }
  if (!/^[a-z0-9-]+\.[A-Za-z0-9.:_-]+$/.test(modelId)) {
    throw new Error(`${where}: modelId "${modelId}" is not a Bedrock model id (provider.model, such as amazon.nova-micro-v1:0) or profile id (us.amazon.nova-micro-v1:0)`);
  }
  if (PROFILE_PREFIX.test(modelId)) {
    return {
      profileArn: `arn:${Aws.PARTITION}:bedrock:${Aws.REGION}:${Aws.ACCOUNT_ID}:inference-profile/${modelId}`,
      foundationModelIds: [modelId.replace(PROFILE_PREFIX, '')],
    };
  }
  return { foundationModelIds: [modelId] };
}
