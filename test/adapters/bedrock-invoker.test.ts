/**
 * BedrockConverseInvoker with the real AWS SDK v3 client against the local Bedrock Runtime
 * protocol server: the tier's service tier goes in the Converse request, and the service tier the
 * response says served it comes back, so the router prices the request at the tier actually served.
 */
import { BedrockRuntimeClient } from '@aws-sdk/client-bedrock-runtime';
import type { TierRuntimeConfig } from '../../constructs/contract/runtime-config';
import { BedrockConverseInvoker } from '../../lambdas/adapters/bedrock-invoker';
import { invocationCostUsd } from '../../lambdas/core/cost';
import { LocalAwsServer } from '../support/aws-protocol-server';

const MODEL = 'us.amazon.nova-pro-v1:0';
// Nova Pro: Standard $0.0008 / $0.0032 per 1K tokens, Flex 0.5x, Priority 1.75x.
const TIER: TierRuntimeConfig = {
  id: 'large',
  provider: 'bedrock',
  modelId: MODEL,
  inputPricePer1k: 0.0008,
  outputPricePer1k: 0.0032,
  maxTokens: 256,
  timeoutMs: 5_000,
  serviceTierPrices: { flex: { inputPricePer1k: 0.0004, outputPricePer1k: 0.0016 }, priority: { inputPricePer1k: 0.0014, outputPricePer1k: 0.0056 } },
};
const REQUEST = { messages: [{ role: 'user' as const, text: 'Summarize my statement' }], maxTokens: 64, temperature: 0 };
const USAGE = { inputTokens: 1_000, outputTokens: 1_000 };

let aws: LocalAwsServer;
let client: BedrockRuntimeClient;
const savedEnv = { ...process.env };

beforeAll(async () => {
  aws = await LocalAwsServer.start();
  Object.assign(process.env, aws.env());
  delete process.env.AWS_PROFILE;
  client = new BedrockRuntimeClient({ maxAttempts: 1 });
});

beforeEach(() => aws.reset());

afterAll(async () => {
  client?.destroy();
  await aws?.close();
  for (const key of Object.keys(process.env)) if (!(key in savedEnv)) delete process.env[key];
  Object.assign(process.env, savedEnv);
});

describe('BedrockConverseInvoker service tiers', () => {
  test('asks for the tier\'s service tier and reports the one that served the request', async () => {
    aws.setModel(MODEL, { reply: 'Your statement, in short.', usage: USAGE });
    const out = await new BedrockConverseInvoker(client).invoke({ ...TIER, serviceTier: 'flex' }, REQUEST, new AbortController().signal);
    expect((aws.calls[0].body as { serviceTier?: unknown }).serviceTier).toEqual({ type: 'flex' });
    expect(out.serviceTier).toBe('flex');
    expect(invocationCostUsd({ ...TIER, serviceTier: 'flex' }, out.usage, out.serviceTier)).toBe(0.002);
  });

  test('a request asked at Priority and served at Standard is priced at Standard', async () => {
    aws.setModel(MODEL, { reply: 'Your statement, in short.', usage: USAGE, servedTier: 'default' });
    const tier: TierRuntimeConfig = { ...TIER, serviceTier: 'priority' };
    const out = await new BedrockConverseInvoker(client).invoke(tier, REQUEST, new AbortController().signal);
    expect((aws.calls[0].body as { serviceTier?: unknown }).serviceTier).toEqual({ type: 'priority' });
    expect(out.serviceTier).toBe('default');
    expect(invocationCostUsd(tier, out.usage, out.serviceTier)).toBe(0.004);
  });

  test('sends no service tier for a Standard tier, and reports none when the response names none', async () => {
    aws.setModel(MODEL, { reply: 'ok', usage: USAGE });
    const out = await new BedrockConverseInvoker(client).invoke(TIER, REQUEST, new AbortController().signal);
    expect(aws.calls[0].body).not.toHaveProperty('serviceTier');
    expect(out.serviceTier).toBeUndefined();
    expect(invocationCostUsd(TIER, out.usage, out.serviceTier)).toBe(0.004);
  });
});
