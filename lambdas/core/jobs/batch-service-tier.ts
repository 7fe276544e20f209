import type { BedrockServiceTierName, RouterRuntimeConfig } from '../../../constructs/contract/runtime-config';

/**
 * The router's configuration as the batch worker uses it: its Bedrock tiers ask for the pipeline's
 * service tier (`JobsRuntimeConfig.serviceTier`) instead of their own. Flex and Priority go only
 * to tiers priced at them (`serviceTierPrices`), since Bedrock refuses a service tier a model lacks.
 * Under Flex the others run at Standard: work that can wait must not pay a tier's own Priority
 * premium. Under Priority they keep their own. Standard goes to every Bedrock tier.
 */
export function withBatchServiceTier(config: RouterRuntimeConfig, serviceTier: BedrockServiceTierName | undefined): RouterRuntimeConfig {
  if (serviceTier === undefined) return config;
  return {
    ...config,
    tiers: config.tiers.map((tier) => {
      if (tier.provider !== 'bedrock') return tier;
      if (serviceTier === 'default') return { ...tier, serviceTier: undefined };
      if (tier.serviceTierPrices?.[serviceTier]) return { ...tier, serviceTier };
      return serviceTier === 'priority' ? tier : { ...tier, serviceTier: undefined };
    }),
  };
}
