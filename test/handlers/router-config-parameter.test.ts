/**
 * The router handler with its configuration in an SSM parameter (ROUTER_CONFIG_PARAMETER_ENV, as
 * TieredRouter deploys a configuration too large for Lambda's 4 KB of environment): read once per
 * container, at the first request, through the real SSM client from the local protocol server;
 * a failed read answers 500 and is tried again on the next request.
 */
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { ROUTER_CONFIG_ENV, ROUTER_CONFIG_PARAMETER_ENV, type RouterRuntimeConfig } from '../../constructs/contract/runtime-config';
import type * as RouterHandler from '../../lambdas/router/handler';
import { Failures, LocalAwsServer } from '../support/aws-protocol-server';
import { ACCOUNT, captureJsonStdout, enableEmf, httpApiEvent, lambdaContext } from '../support/lambda-harness';

const USER = `arn:aws:sts::${ACCOUNT}:assumed-role/TenantA/user-1`;
const MODEL = 'arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abcdefghij12';
const PARAMETER = 'CFN-RouterRuntimeConfigEB5BCEA7-AbCdEf123456';
const CONFIG: RouterRuntimeConfig = {
  tiers: [{ id: 'small', provider: 'bedrock', modelId: MODEL, inputPricePer1k: 0.0008, outputPricePer1k: 0.004, maxTokens: 512, timeoutMs: 5_000 }],
  tierHintPolicy: 'any',
  maxRequestBytes: 8_192,
  maxMessages: 10,
  tenant: { source: 'iam' },
  personalCaching: 'user',
};

let aws: LocalAwsServer;
const savedEnv = { ...process.env };

/** A fresh handler module: a new container. */
function loadHandler(): typeof RouterHandler.handler {
  let handler!: typeof RouterHandler.handler;
  jest.isolateModules(() => {
    ({ handler } = jest.requireActual<typeof RouterHandler>('../../lambdas/router/handler'));
  });
  return handler;
}

async function ask(handler: typeof RouterHandler.handler, text: string): Promise<APIGatewayProxyStructuredResultV2> {
  return handler(httpApiEvent({ messages: [{ role: 'user', content: text }] }, USER), lambdaContext());
}

beforeAll(async () => {
  aws = await LocalAwsServer.start();
  Object.assign(process.env, aws.env(), { POWERTOOLS_SERVICE_NAME: 'router-config-parameter-test', [ROUTER_CONFIG_PARAMETER_ENV]: PARAMETER });
  delete process.env[ROUTER_CONFIG_ENV];
  aws.putParameter(PARAMETER, JSON.stringify(CONFIG));
  enableEmf();
  captureJsonStdout();
});

beforeEach(() => {
  aws.reset();
  aws.parameterCalls.length = 0;
});

afterAll(async () => {
  jest.restoreAllMocks();
  await aws?.close();
  for (const key of Object.keys(process.env)) if (!(key in savedEnv)) delete process.env[key];
  Object.assign(process.env, savedEnv);
});

test('the router reads its configuration from the SSM parameter once per container and answers with the tiers it names', async () => {
  const handler = loadHandler();
  // Nothing is read at module load: the first request reads it.
  expect(aws.parameterCalls).toEqual([]);
  for (const question of ['What is the return policy?', 'Do you ship to Canada?']) {
    const res = await ask(handler, question);
    expect(res.statusCode).toBe(200);
    expect(JSON.parse(String(res.body))).toMatchObject({ tier: 'small', output: { text: `[${MODEL}] ${question}` } });
  }
  expect(aws.parameterCalls).toEqual([{ name: PARAMETER, found: true }]);
  expect(aws.callsOf(MODEL)).toHaveLength(2);
});

test('a parameter that cannot be read answers 500, and the next request reads it again', async () => {
  aws.failNextParameter(Failures.internal(), 2);
  const handler = loadHandler();
  const failed = await ask(handler, 'What is the return policy?');
  expect(failed.statusCode).toBe(500);
  expect(aws.callsOf(MODEL)).toHaveLength(0);
  const answered = await ask(handler, 'What is the return policy?');
  expect(answered.statusCode).toBe(200);
  expect(aws.parameterCalls).toEqual([{ name: PARAMETER, found: true }]);
});
