import type { BedrockServiceTierName, RouterRuntimeConfig } from '../../../constructs/contract/runtime-config';

/**
 * The router's configuration as the batch worker uses it: its Bedrock tiers ask for the pipeline's
 * service tier (`JobsRuntimeConfig.serviceTier`) instead of their own. Flex and Priority go only
 * to tiers priced at them (`serviceTierPrices`); the others keep their own, since Bedrock refuses
 * a service tier a model lacks. Standard goes to every Bedrock tier.
 */
export function withBatchServiceTier(config: RouterRuntimeConfig, serviceTier: BedrockServiceTierName | undefined): RouterRuntimeConfig {
  if (serviceTier === undefined) return config;
  return {
    ...config,
    tiers: config.tiers.map((tier) => {
      if (tier.provider !== 'bedrock') return tier;
      if (serviceTier === 'default') return { ...tier, serviceTier: undefined };
      return tier.serviceTierPrices?.[serviceTier] ? { ...tier, serviceTier } : tier;
    }),
  };
}
