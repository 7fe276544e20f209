/**
 * The router handler with tracing on (HandlerTracing.xRay(): POWERTOOLS_TRACE_ENABLED=true in a
 * Lambda environment) against the real local servers, with a UDP listener as the X-Ray daemon:
 * the real X-Ray SDK (in its Lambda mode, under the trace id Lambda sets) streams one document per
 * closed subsegment, and those name each cache level and tier attempt. Tracing off: nothing sent.
 */
import * as dgram from 'node:dgram';
import type { AddressInfo } from 'node:net';
import type Valkey from 'iovalkey';
import { ROUTER_CONFIG_ENV, type RouterRuntimeConfig, type TierRuntimeConfig } from '../../constructs/contract/runtime-config';
import type * as RouterHandler from '../../lambdas/router/handler';
import { Failures, LocalAwsServer } from '../support/aws-protocol-server';
import { ACCOUNT, captureJsonStdout, enableEmf, httpApiEvent, lambdaContext } from '../support/lambda-harness';
import { RedisServer } from '../support/redis-server';

const USER = `arn:aws:sts::${ACCOUNT}:assumed-role/TenantA/user-1`;
const PASSWORD = 'local-cache-auth-token-0123456789';
const SMALL = 'us.amazon.nova-micro-v1:0';
const MEDIUM = 'us.amazon.nova-lite-v1:0';
const TIERS: TierRuntimeConfig[] = [
  { id: 'small', provider: 'bedrock', modelId: SMALL, inputPricePer1k: 0.000035, outputPricePer1k: 0.00014, maxTokens: 512, timeoutMs: 2_000 },
  { id: 'medium', provider: 'bedrock', modelId: MEDIUM, inputPricePer1k: 0.00006, outputPricePer1k: 0.00024, maxTokens: 512, timeoutMs: 2_000 },
];
const TRACE_ID = '1-5759e988-bd862e3fe1be46a994272793';

interface Subsegment {
  name: string;
  type?: string;
  trace_id?: string;
  annotations?: Record<string, unknown>;
  fault?: boolean;
  error?: boolean;
}

let redis: RedisServer;
let aws: LocalAwsServer;
let daemon: dgram.Socket;
const received: Subsegment[] = [];
const savedEnv = { ...process.env };
const clients = new Set<Valkey>();

beforeAll(async () => {
  [redis, aws] = await Promise.all([RedisServer.start({ password: PASSWORD }), LocalAwsServer.start()]);
  const authSecretArn = aws.putSecret('scalable-ai/cache-auth', PASSWORD);
  daemon = dgram.createSocket('udp4');
  // A daemon datagram is a header line and one segment document.
  daemon.on('message', (msg) => received.push(JSON.parse(msg.toString('utf8').split('\n')[1]) as Subsegment));
  await new Promise<void>((resolve) => daemon.bind(0, '127.0.0.1', () => resolve()));
  const config: RouterRuntimeConfig = {
    tiers: TIERS,
    tierHintPolicy: 'any',
    maxRequestBytes: 8_192,
    maxMessages: 10,
    tenant: { source: 'iam' },
    personalCaching: 'user',
    cache: { host: redis.host, port: redis.port, tls: false, authSecretArn, keyPrefix: 'sai:', timeoutMs: 500 },
    exactCache: { ttlSeconds: 600 },
  };
  Object.assign(process.env, aws.env(), { [ROUTER_CONFIG_ENV]: JSON.stringify(config), POWERTOOLS_SERVICE_NAME: 'router-test' });
  enableEmf();
  captureJsonStdout();
});

afterAll(async () => {
  await Promise.all([...clients].map(async (c) => c.disconnect()));
  jest.restoreAllMocks();
  daemon?.close();
  await Promise.all([redis?.dispose(), aws?.close()]);
  for (const key of Object.keys(process.env)) if (!(key in savedEnv)) delete process.env[key];
  Object.assign(process.env, savedEnv);
});

/** A fresh copy of the handler (and of the X-Ray SDK, which reads the Lambda environment at load). */
function loadHandler(env: Record<string, string | undefined>): typeof RouterHandler.handler {
  for (const [key, value] of Object.entries(env)) {
    if (value === undefined) delete process.env[key];
    else process.env[key] = value;
  }
  let handler: typeof RouterHandler.handler | undefined;
  jest.isolateModules(() => {
    // The copy's own iovalkey: its clients are remembered so that afterAll can close them.
    const isolated = jest.requireActual<{ default: typeof Valkey }>('iovalkey').default;
    const connect = isolated.prototype.connect;
    jest.spyOn(isolated.prototype, 'connect').mockImplementation(function (this: Valkey, ...args: Parameters<Valkey['connect']>) {
      clients.add(this);
      return connect.apply(this, args);
    });
    ({ handler } = jest.requireActual<typeof RouterHandler>('../../lambdas/router/handler'));
  });
  return handler!;
}

/** What Lambda sets in every function's environment (the X-Ray SDK's Lambda mode and Powertools read them). */
function lambdaEnvironment(daemonPort: number, traced: boolean): Record<string, string | undefined> {
  return {
    AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs24.x',
    LAMBDA_TASK_ROOT: '/var/task',
    AWS_XRAY_DAEMON_ADDRESS: `127.0.0.1:${daemonPort}`,
    _X_AMZN_TRACE_ID: `Root=${TRACE_ID};Parent=53995c3f42cd8ad8;Sampled=1`,
    POWERTOOLS_TRACE_ENABLED: traced ? 'true' : undefined,
  };
}

async function ask(handler: typeof RouterHandler.handler, text: string): Promise<Record<string, unknown>> {
  const res = await handler(httpApiEvent({ messages: [{ role: 'user', content: text }] }, USER), lambdaContext());
  expect(res.statusCode).toBe(200);
  return res.headers ?? {};
}

async function settle(): Promise<void> {
  // Datagrams on the loopback arrive within a few event-loop turns.
  for (let i = 0; i < 20; i++) await new Promise((r) => setTimeout(r, 10));
}

test('tracing off (the default): no datagram reaches the daemon', async () => {
  const handler = loadHandler(lambdaEnvironment((daemon.address() as AddressInfo).port, false));
  aws.setModel(SMALL, { reply: 'Untraced answer.' });
  await ask(handler, 'an untraced question');
  await ask(handler, 'an untraced question');
  await settle();
  expect(received).toEqual([]);
});

test('tracing on: a subsegment per cache level and per tier attempt, with the fallback and the AWS SDK calls', async () => {
  const handler = loadHandler(lambdaEnvironment((daemon.address() as AddressInfo).port, true));
  aws.setModel(MEDIUM, { reply: 'Traced answer.' });
  aws.failNext(SMALL, Failures.throttling());

  const miss = await ask(handler, 'a traced question');
  expect(miss['x-tier']).toBe('medium');
  await settle();
  const first = received.splice(0);
  const names = first.map((s) => s.name);
  expect(names).toEqual(expect.arrayContaining(['exact.lookup', 'tier.small', 'tier.medium', 'exact.store', '## router']));
  expect(first.every((s) => s.type === 'subsegment' && s.trace_id === TRACE_ID)).toBe(true);
  const small = first.find((s) => s.name === 'tier.small')!;
  expect(small.annotations).toMatchObject({ tier: 'small', attempt: 1, outcome: 'failed', errorKind: 'throttled' });
  expect(small.fault || small.error).toBe(true);
  expect(first.find((s) => s.name === 'tier.medium')!.annotations).toMatchObject({ tier: 'medium', attempt: 2, outcome: 'ok' });
  expect(first.find((s) => s.name === 'exact.lookup')!.annotations).toMatchObject({ cacheLevel: 'exact' });
  expect(first.find((s) => s.name === '## router')!.annotations).toMatchObject({ ColdStart: expect.any(Boolean), servedBy: 'miss', tier: 'medium' });

  const hit = await ask(handler, 'a traced question');
  expect(hit['x-cache']).toBe('exact');
  await settle();
  const second = received.splice(0);
  expect(second.map((s) => s.name).sort()).toEqual(['## router', 'exact.lookup']);
  expect(second.find((s) => s.name === '## router')!.annotations).toMatchObject({ ColdStart: false, servedBy: 'exact' });
});
