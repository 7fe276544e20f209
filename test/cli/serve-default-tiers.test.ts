import { PRICE_FILE } from '../../constructs/planning/prices';
import { TITAN_V2_USD_PER_1K_TOKENS } from '../../lambdas/cli/eval-cache';
import { DEFAULT_TIERS } from '../../lambdas/cli/serve';

test('serve\'s default tiers are priced from the price file, a US profile at its geographic price', () => {
  const nova = PRICE_FILE.models['amazon.nova-micro-v1:0'];
  const sonnet = PRICE_FILE.models['anthropic.claude-sonnet-4-5-20250929-v1:0'];
  const prices = Object.fromEntries(DEFAULT_TIERS.map((t) => [t.id, [t.inputPricePer1k, t.outputPricePer1k]]));
  expect(prices.small).toEqual([nova.input.usd, nova.output.usd]);
  // us.anthropic...: the global price (the file's) plus the 10% of geographic profiles.
  expect(prices.large).toEqual([0.0033, 0.0165]);
  expect(sonnet.geographicPremium?.factor).toBe(1.1);
});

test('eval-cache prices Titan Text Embeddings V2 from the price file', () => {
  expect(TITAN_V2_USD_PER_1K_TOKENS).toBe(PRICE_FILE.embeddings['amazon.titan-embed-text-v2:0'].usd);
});
