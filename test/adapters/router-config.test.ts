/**
 * How the handlers get the router's configuration: from ROUTER_CONFIG_ENV, or from the SSM
 * parameter named by ROUTER_CONFIG_PARAMETER_ENV, read by the real SSM client from a local server
 * speaking the SSM JSON protocol (`X-Amz-Target: AmazonSSM.GetParameter`), within a deadline.
 */
import { ROUTER_CONFIG_ENV, ROUTER_CONFIG_PARAMETER_ENV, type RouterRuntimeConfig } from '../../constructs/contract/runtime-config';
import { onFirstUse, readRouterConfig } from '../../lambdas/adapters/router-config';
import { Failures, LocalAwsServer } from '../support/aws-protocol-server';

const CONFIG: RouterRuntimeConfig = {
  tiers: [{ id: 'small', provider: 'bedrock', modelId: 'amazon.nova-micro-v1:0', inputPricePer1k: 0.000035, outputPricePer1k: 0.00014, maxTokens: 512, timeoutMs: 5_000 }],
  tierHintPolicy: 'cheaper-only',
  maxRequestBytes: 8_192,
  maxMessages: 10,
  tenant: { source: 'iam' },
  personalCaching: 'user',
};
const PARAMETER = 'CFN-RouterRuntimeConfigEB5BCEA7-AbCdEf123456';

let aws: LocalAwsServer;
const savedEnv = { ...process.env };

beforeAll(async () => {
  aws = await LocalAwsServer.start();
  Object.assign(process.env, aws.env());
});

beforeEach(() => {
  aws.reset();
  aws.parameterCalls.length = 0;
  delete process.env[ROUTER_CONFIG_ENV];
  delete process.env[ROUTER_CONFIG_PARAMETER_ENV];
});

afterAll(async () => {
  await aws?.close();
  for (const key of Object.keys(process.env)) if (!(key in savedEnv)) delete process.env[key];
  Object.assign(process.env, savedEnv);
});

describe('readRouterConfig', () => {
  test('reads the configuration from the environment, without calling SSM', async () => {
    process.env[ROUTER_CONFIG_ENV] = JSON.stringify(CONFIG);
    await expect(readRouterConfig()).resolves.toEqual(CONFIG);
    expect(aws.parameterCalls).toEqual([]);
  });

  test('reads the configuration from the SSM parameter the environment names', async () => {
    aws.putParameter(PARAMETER, JSON.stringify(CONFIG));
    process.env[ROUTER_CONFIG_PARAMETER_ENV] = PARAMETER;
    await expect(readRouterConfig()).resolves.toEqual(CONFIG);
    expect(aws.parameterCalls).toEqual([{ name: PARAMETER, found: true }]);
  });

  test('a missing parameter fails with SSM\'s error', async () => {
    process.env[ROUTER_CONFIG_PARAMETER_ENV] = 'no-such-parameter';
    await expect(readRouterConfig()).rejects.toMatchObject({ name: 'ParameterNotFound' });
  });

  test('an SSM that accepts and never answers fails within the deadline (two attempts of 1 s)', async () => {
    aws.putParameter(PARAMETER, JSON.stringify(CONFIG));
    aws.failNextParameter(Failures.hang(30_000), 5);
    process.env[ROUTER_CONFIG_PARAMETER_ENV] = PARAMETER;
    const started = Date.now();
    await expect(readRouterConfig()).rejects.toThrow();
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(900);
    expect(elapsed).toBeLessThan(3_000);
  });

  test('one failed attempt is retried', async () => {
    aws.putParameter(PARAMETER, JSON.stringify(CONFIG));
    aws.failNextParameter(Failures.internal());
    process.env[ROUTER_CONFIG_PARAMETER_ENV] = PARAMETER;
    await expect(readRouterConfig()).resolves.toEqual(CONFIG);
    expect(aws.parameterCalls).toEqual([{ name: PARAMETER, found: true }]);
  });

  test('without either variable, the error names both', async () => {
    await expect(readRouterConfig()).rejects.toThrow(`Neither ${ROUTER_CONFIG_ENV} nor ${ROUTER_CONFIG_PARAMETER_ENV} is set`);
  });
});

describe('onFirstUse', () => {
  test('loads once per container, and a failed load is tried again on the next use', async () => {
    let calls = 0;
    const load = onFirstUse(async () => {
      calls++;
      if (calls === 1) throw new Error('SSM unavailable');
      return calls;
    });
    await expect(load()).rejects.toThrow('SSM unavailable');
    await expect(load()).resolves.toBe(2);
    await expect(load()).resolves.toBe(2);
    expect(calls).toBe(2);
  });
});
