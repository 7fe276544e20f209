/**
 * SageMakerChatInvoker with the real AWS SDK v3 client against the local SageMaker Runtime
 * protocol server: the inference component a tier names goes in the
 * `X-Amzn-SageMaker-Inference-Component` header, and a component scaled to zero fails in a way
 * the router falls back from.
 */
import { SageMakerRuntimeClient } from '@aws-sdk/client-sagemaker-runtime';
import type { TierRuntimeConfig } from '../../constructs/contract/runtime-config';
import { SageMakerChatInvoker } from '../../lambdas/adapters/sagemaker-invoker';
import { classifyAwsError } from '../../lambdas/core/errors';
import { Failures, LocalAwsServer } from '../support/aws-protocol-server';

const ENDPOINT = 'chat-endpoint';
const TIER: TierRuntimeConfig = {
  id: 'sm',
  provider: 'sagemaker',
  endpointName: ENDPOINT,
  apiFormat: 'openai-chat',
  inputPricePer1k: 0,
  outputPricePer1k: 0,
  maxTokens: 256,
  timeoutMs: 5_000,
};
const REQUEST = { messages: [{ role: 'user' as const, text: 'Where is my parcel?' }], maxTokens: 64, temperature: 0 };

let aws: LocalAwsServer;
let client: SageMakerRuntimeClient;
const savedEnv = { ...process.env };

beforeAll(async () => {
  aws = await LocalAwsServer.start();
  Object.assign(process.env, aws.env());
  delete process.env.AWS_PROFILE;
  client = new SageMakerRuntimeClient({ maxAttempts: 1 });
});

beforeEach(() => aws.reset());

afterAll(async () => {
  client?.destroy();
  await aws?.close();
  for (const key of Object.keys(process.env)) if (!(key in savedEnv)) delete process.env[key];
  Object.assign(process.env, savedEnv);
});

describe('SageMakerChatInvoker', () => {
  test('names the tier\'s inference component in the X-Amzn-SageMaker-Inference-Component header', async () => {
    aws.setModel(ENDPOINT, { reply: 'It left the warehouse today.' });
    const out = await new SageMakerChatInvoker(client).invoke({ ...TIER, inferenceComponentName: 'chat-endpoint-ic' }, REQUEST, new AbortController().signal);
    expect(out.text).toBe('It left the warehouse today.');
    expect(aws.calls).toHaveLength(1);
    expect(aws.calls[0].headers['x-amzn-sagemaker-inference-component']).toBe('chat-endpoint-ic');
  });

  test('sends no inference component header for a plain endpoint', async () => {
    aws.setModel(ENDPOINT, { reply: 'ok' });
    await new SageMakerChatInvoker(client).invoke(TIER, REQUEST, new AbortController().signal);
    expect(aws.calls[0].headers).not.toHaveProperty('x-amzn-sagemaker-inference-component');
  });

  test('a component scaled to zero fails as throttled, so the router moves on to the next tier', async () => {
    aws.failNext(ENDPOINT, Failures.sageMakerNoCapacity());
    const err = await new SageMakerChatInvoker(client)
      .invoke({ ...TIER, inferenceComponentName: 'chat-endpoint-ic' }, REQUEST, new AbortController().signal)
      .catch((e: unknown) => e);
    const classified = classifyAwsError('sm', err, false);
    expect(classified.kind).toBe('throttled');
    expect(classified.retryable).toBe(true);
    expect(classified.statusCode).toBe(400);
  });
});
