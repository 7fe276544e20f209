import type { BedrockServiceTierName } from '../contract/runtime-config';
import { BedrockServiceTier, ModelProvider, type IModelTier } from '../models/model-tier';

/**
 * The service tier of `BatchPipelineProps.serviceTier` for the worker's configuration. Flex or
 * Priority needs a Bedrock tier priced at it: the worker calls only those at it (Bedrock refuses
 * a tier a model lacks, and the router could not price it), so with none the prop would do nothing.
 */
export function batchServiceTier(serviceTier: BedrockServiceTier | undefined, tiers: readonly IModelTier[]): BedrockServiceTierName | undefined {
  if (serviceTier === undefined || serviceTier === BedrockServiceTier.STANDARD) return serviceTier;
  const factor = (t: IModelTier) => serviceTier === BedrockServiceTier.FLEX ? t.flexPriceFactor : t.priorityPriceFactor;
  const priced = tiers.filter((t) => t.provider === ModelProvider.BEDROCK && factor(t) !== undefined);
  if (priced.length === 0) {
    const prop = serviceTier === BedrockServiceTier.FLEX ? 'flexPriceFactor' : 'priorityPriceFactor';
    throw new Error(`BatchPipeline: serviceTier ${serviceTier} applies to the router's Bedrock tiers priced at it, and none is `
      + `(tiers: ${tiers.map((t) => t.tierId).join(', ')}): set ${prop} on the ModelTier.bedrock() tiers whose models offer it, or leave serviceTier unset`);
  }
  return serviceTier;
}
