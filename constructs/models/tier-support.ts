import { Duration, Token } from 'aws-cdk-lib';
import { ModelProvider, type IModelTier, type ModelTierBaseProps } from './model-tier';
import type { TierRuntimeConfig } from '../contract/runtime-config';

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
    inputPricePer1k: tier.inputPricePer1kTokens,
    outputPricePer1k: tier.outputPricePer1kTokens,
    maxTokens: tier.maxTokens,
    timeoutMs: tier.timeout.toMilliseconds(),
  };
}

export const DEFAULT_MAX_TOKENS = 1024;
export const DEFAULT_TIER_TIMEOUT = Duration.seconds(15);
