import { Duration, Token } from 'aws-cdk-lib';
import { BedrockServiceTier, ModelProvider, type IModelTier, type ModelTierBaseProps } from './model-tier';
import type { ServiceTierPricesRuntimeConfig, TierPricesRuntimeConfig, TierRuntimeConfig } from '../contract/runtime-config';

// Internal helpers shared by the tier implementations; not part of the public API.

type PricedTierProps = ModelTierBaseProps & { readonly inputPricePer1kTokens?: number; readonly outputPricePer1kTokens?: number };

export function validateBaseProps(where: string, props: PricedTierProps): void {
  if (!Token.isUnresolved(props.tierId) && !/^[a-z0-9][a-z0-9-]{0,31}$/.test(props.tierId)) {
    throw new Error(`${where}: tierId must be 1-32 lower-case letters, digits or dashes, starting with a letter or digit; got "${props.tierId}"`);
  }
  for (const key of ['inputPricePer1kTokens', 'outputPricePer1kTokens'] as const) {
    const price = props[key];
    if (price !== undefined && (!Number.isFinite(price) || price < 0)) {
      throw new Error(`${where}: ${key} must be a finite number >= 0 (USD per 1,000 tokens); got ${price}`);
    }
  }
  if (props.maxTokens !== undefined && (!Number.isInteger(props.maxTokens) || props.maxTokens < 1 || props.maxTokens > 200_000)) {
    throw new Error(`${where}: maxTokens must be an integer between 1 and 200000; got ${props.maxTokens}`);
  }
  if (props.timeout !== undefined) {
    const ms = props.timeout.toMilliseconds();
    if (ms < 1_000 || ms > 29_000) {
      throw new Error(`${where}: timeout must be between 1 and 29 seconds (HTTP APIs time out at 30 s); got ${props.timeout.toHumanString()}`);
    }
  }
}

/** The JSON the router handler reads for a tier. */
export function tierRuntimeConfig(tier: IModelTier): TierRuntimeConfig {
  return {
    id: tier.tierId,
    provider: tier.provider,
    modelId: tier.provider === ModelProvider.BEDROCK ? tier.modelIdentifier : undefined,
    endpointName: tier.provider === ModelProvider.SAGEMAKER ? tier.modelIdentifier : undefined,
    apiFormat: tier.apiFormat,
    inferenceComponentName: tier.provider === ModelProvider.SAGEMAKER ? tier.inferenceComponentName : undefined,
    inputPricePer1k: tier.inputPricePer1kTokens,
    outputPricePer1k: tier.outputPricePer1kTokens,
    maxTokens: tier.maxTokens,
    timeoutMs: tier.timeout.toMilliseconds(),
    // Standard is Bedrock's default: the field is left out (and older handlers read the same config).
    serviceTier: tier.serviceTier === BedrockServiceTier.STANDARD ? undefined : tier.serviceTier,
    serviceTierPrices: serviceTierPrices(tier),
  };
}

/** The Flex and Priority prices of a tier, from its price factors (absent: none known). */
function serviceTierPrices(tier: IModelTier): ServiceTierPricesRuntimeConfig | undefined {
  const at = (factor: number | undefined): TierPricesRuntimeConfig | undefined => factor === undefined ? undefined : {
    // 12 significant digits: 0.0008 x 1.75 is 0.0014, not 0.0013999999999999998.
    inputPricePer1k: Number((tier.inputPricePer1kTokens * factor).toPrecision(12)),
    outputPricePer1k: Number((tier.outputPricePer1kTokens * factor).toPrecision(12)),
  };
  const flex = at(tier.flexPriceFactor);
  const priority = at(tier.priorityPriceFactor);
  return flex || priority ? { flex, priority } : undefined;
}

/**
 * USD per 1,000 tokens above which a price is taken for a price per million tokens. The most
 * expensive on-demand Bedrock models cost about $0.075 per 1,000 output tokens (Claude Opus 4 and
 * 4.1 at $75 per million); the ceiling leaves room for dearer models and Regions.
 */
export const PLAUSIBLE_PRICE_PER_1K_CEILING = 0.2;

/** A synth-time warning about tiers: a stable id and its message. */
export interface TierWarning {
  readonly id: string;
  readonly message: string;
}

/**
 * What looks wrong in a list of tiers without being invalid: prices that look like prices per
 * million tokens, and tiers not ordered cheapest first.
 *
 * The runtime takes the order of the tiers for their order of price and capability (it never
 * compares prices): fallback goes to the later tiers first, and an answer of an earlier tier
 * standing in for a failed later one is not cached. A tier is cheaper than another, as the
 * runtime's cost accounting (`invocationCostUsd`) prices a request, when it costs less for every
 * request: neither of its prices is higher and one is lower. Tiers with both prices 0 (unpriced,
 * such as SageMaker tiers whose cost is not accounted) are left out of the comparison.
 */
export function tierWarnings(where: string, tiers: readonly IModelTier[]): TierWarning[] {
  const warnings: TierWarning[] = [];
  for (const tier of tiers) {
    for (const [key, price] of [['inputPricePer1kTokens', tier.inputPricePer1kTokens], ['outputPricePer1kTokens', tier.outputPricePer1kTokens]] as const) {
      if (price > PLAUSIBLE_PRICE_PER_1K_CEILING) {
        warnings.push({
          id: 'cdk-scalable-ai:pricePerMillion',
          message: `${where}: tier "${tier.tierId}" has ${key} ${price} USD, above ${PLAUSIBLE_PRICE_PER_1K_CEILING} USD per 1,000 tokens, more than any Bedrock model costs: `
            + 'this looks like a price per million tokens; prices are per 1,000 tokens (divide by 1,000)',
        });
      }
    }
  }
  const priced = tiers.filter((t) => t.inputPricePer1kTokens > 0 || t.outputPricePer1kTokens > 0);
  const cheaper = (a: IModelTier, b: IModelTier): boolean =>
    a.inputPricePer1kTokens <= b.inputPricePer1kTokens && a.outputPricePer1kTokens <= b.outputPricePer1kTokens
    && (a.inputPricePer1kTokens < b.inputPricePer1kTokens || a.outputPricePer1kTokens < b.outputPricePer1kTokens);
  const outOfOrder: string[] = [];
  priced.forEach((later, j) => {
    const dearer = priced.slice(0, j).filter((earlier) => cheaper(later, earlier));
    if (dearer.length > 0) outOfOrder.push(`"${later.tierId}" is cheaper than ${dearer.map((t) => `"${t.tierId}"`).join(', ')} before it`);
  });
  if (outOfOrder.length > 0) {
    warnings.push({
      id: 'cdk-scalable-ai:tierOrder',
      message: `${where}: tiers are not ordered cheapest first (${outOfOrder.join('; ')}). The order of the tiers is their order of price and capability: `
        + 'fallback tries the later tiers first, and answers of an earlier tier standing in for a later one are not cached. List the tiers cheapest first.',
    });
  }
  return warnings;
}

export const DEFAULT_MAX_TOKENS = 1024;
export const DEFAULT_TIER_TIMEOUT = Duration.seconds(15);
