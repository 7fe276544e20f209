import type { TierRuntimeConfig } from '../../constructs/contract/runtime-config';

export interface TokenUsage {
  readonly inputTokens: number;
  readonly outputTokens: number;
}

/** USD cost of one invocation from the usage the model reported and the tier's prices. */
export function invocationCostUsd(tier: Pick<TierRuntimeConfig, 'inputPricePer1k' | 'outputPricePer1k'>, usage: TokenUsage): number {
  const cost = (usage.inputTokens / 1000) * tier.inputPricePer1k + (usage.outputTokens / 1000) * tier.outputPricePer1k;
  // Round to a micro-dollar: enough for per-request accounting, free of float noise in headers.
  return Math.round(cost * 1e6) / 1e6;
}
