import type { RouterRuntimeConfig, TierRuntimeConfig } from '../../constructs/contract/runtime-config';
import { withBatchServiceTier } from '../../lambdas/core/jobs/batch-service-tier';

const PRICES = { inputPricePer1k: 0.0004, outputPricePer1k: 0.0016 };
const STANDARD_ONLY: TierRuntimeConfig = {
  id: 'small', provider: 'bedrock', modelId: 'amazon.nova-micro-v1:0', inputPricePer1k: 0.000035, outputPricePer1k: 0.00014, maxTokens: 512, timeoutMs: 8_000,
};
const FLEXIBLE: TierRuntimeConfig = {
  id: 'medium',
  provider: 'bedrock',
  modelId: 'us.amazon.nova-pro-v1:0',
  inputPricePer1k: 0.0008,
  outputPricePer1k: 0.0032,
  maxTokens: 1_024,
  timeoutMs: 10_000,
  serviceTier: 'priority',
  serviceTierPrices: { flex: PRICES, priority: { inputPricePer1k: 0.0014, outputPricePer1k: 0.0056 } },
};
const SAGEMAKER: TierRuntimeConfig = {
  id: 'large', provider: 'sagemaker', endpointName: 'e', apiFormat: 'openai-chat', inputPricePer1k: 0, outputPricePer1k: 0, maxTokens: 1_024, timeoutMs: 10_000,
};
const CONFIG = { tiers: [STANDARD_ONLY, FLEXIBLE, SAGEMAKER] } as unknown as RouterRuntimeConfig;

describe('withBatchServiceTier', () => {
  test('absent: the router\'s configuration as it is', () => {
    expect(withBatchServiceTier(CONFIG, undefined)).toBe(CONFIG);
  });

  test('flex goes only to the Bedrock tiers priced at Flex', () => {
    const tiers = withBatchServiceTier(CONFIG, 'flex').tiers;
    expect(tiers.map((t) => t.serviceTier)).toEqual([undefined, 'flex', undefined]);
    expect(tiers[1].serviceTierPrices?.flex).toEqual(PRICES);
    expect(CONFIG.tiers[1].serviceTier).toBe('priority');
  });

  test('flex takes a Priority tier without a Flex price to Standard, not to its Priority premium', () => {
    const priorityOnly: TierRuntimeConfig = { ...FLEXIBLE, id: 'priority-only', serviceTierPrices: { priority: PRICES } };
    const config = { tiers: [priorityOnly] } as unknown as RouterRuntimeConfig;
    expect(withBatchServiceTier(config, 'flex').tiers[0].serviceTier).toBeUndefined();
    expect(withBatchServiceTier(config, 'priority').tiers[0].serviceTier).toBe('priority');
  });

  test('default takes every Bedrock tier to Standard', () => {
    expect(withBatchServiceTier(CONFIG, 'default').tiers.map((t) => t.serviceTier)).toEqual([undefined, undefined, undefined]);
  });
});
