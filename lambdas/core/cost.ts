import type { TierPricesRuntimeConfig, TierRuntimeConfig } from '../../constructs/contract/runtime-config';

export interface TokenUsage {
  readonly inputTokens: number;
  readonly outputTokens: number;
}

type PricedTier = Pick<TierRuntimeConfig, 'inputPricePer1k' | 'outputPricePer1k' | 'serviceTier' | 'serviceTierPrices'>;

/**
 * The prices a request to `tier` is billed at: those of the Bedrock service tier that served it
 * (`servedTier`, from the response), else of the one the tier asked for. Standard (`default`),
 * Reserved (billed per reserved capacity, not per token) and a service tier the configuration has
 * no price for are charged at the tier's Standard prices.
 */
export function servedTierPrices(tier: PricedTier, servedTier?: string): TierPricesRuntimeConfig {
  const served = servedTier ?? tier.serviceTier;
  const prices = served === 'flex' || served === 'priority' ? tier.serviceTierPrices?.[served] : undefined;
  return prices ?? { inputPricePer1k: tier.inputPricePer1k, outputPricePer1k: tier.outputPricePer1k };
}

/**
 * USD cost of one invocation from the usage the model reported and the tier's prices, at the
 * service tier that served it (see {@link servedTierPrices}).
 */
export function invocationCostUsd(tier: PricedTier, usage: TokenUsage, servedTier?: string): number {
  const prices = servedTierPrices(tier, servedTier);
  const cost = (usage.inputTokens / 1000) * prices.inputPricePer1k + (usage.outputTokens / 1000) * prices.outputPricePer1k;
  // Round to a micro-dollar: enough for per-request accounting, free of float noise in headers.
  return Math.round(cost * 1e6) / 1e6;
}
