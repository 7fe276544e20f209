/**
 * Integration tests of the router Lambda handler against real local servers:
 * - a Redis-protocol server (Debian's redis-server 7.0, or one on the PATH) with `requirepass`,
 *   reached through the handler's real iovalkey client;
 * - a local server speaking Bedrock Runtime Converse (HTTP/2), SageMaker Runtime InvokeEndpoint
 *   and Secrets Manager GetSecretValue (HTTP/1.1), reached through the real AWS SDK v3 clients
 *   (pointed at it with `AWS_ENDPOINT_URL_<SERVICE>`).
 * Metrics are read from the EMF lines Powertools writes to stdout.
 */
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import Valkey from 'iovalkey';
import { AiMetricNames as M } from '../../constructs/contract/metrics';
import { ROUTER_CONFIG_ENV, type RouterRuntimeConfig, type TierRuntimeConfig } from '../../constructs/contract/runtime-config';
import type * as RouterHandler from '../../lambdas/router/handler';
import { Failures, LocalAwsServer, type InjectedFailure, type TokenUsage } from '../support/aws-protocol-server';
import {
  ACCOUNT, captureJsonStdout, enableEmf, httpApiEvent, lambdaContext, metricSum, metricsNamed, parseEmf,
  type EmfMetric, type EventOptions,
} from '../support/lambda-harness';
import { RedisServer } from '../support/redis-server';

const TENANT_A_USER_1 = `arn:aws:sts::${ACCOUNT}:assumed-role/TenantA/user-1`;
const TENANT_A_USER_2 = `arn:aws:sts::${ACCOUNT}:assumed-role/TenantA/user-2`;
const TENANT_B_USER_1 = `arn:aws:sts::${ACCOUNT}:assumed-role/TenantB/user-1`;
const REDIS_PASSWORD = 'local-cache-auth-token-0123456789';
const KEY_PREFIX = 'sai:';
const TTL_SECONDS = 3_600;

const SMALL_MODEL = 'us.amazon.nova-micro-v1:0';
const MEDIUM_MODEL = `arn:aws:bedrock:us-east-1:${ACCOUNT}:inference-profile/us.anthropic.claude-3-5-haiku-20241022-v1:0`;
const LARGE_ENDPOINT = 'llama-3-70b-chat';

const TIERS: TierRuntimeConfig[] = [
  { id: 'small', provider: 'bedrock', modelId: SMALL_MODEL, inputPricePer1k: 0.000035, outputPricePer1k: 0.00014, maxTokens: 512, timeoutMs: 2_000 },
  { id: 'medium', provider: 'bedrock', modelId: MEDIUM_MODEL, inputPricePer1k: 0.0008, outputPricePer1k: 0.004, maxTokens: 1_024, timeoutMs: 10_000 },
  {
    id: 'large',
    provider: 'sagemaker',
    endpointName: LARGE_ENDPOINT,
    apiFormat: 'openai-chat',
    inputPricePer1k: 0.002,
    outputPricePer1k: 0.006,
    maxTokens: 2_048,
    timeoutMs: 10_000,
  },
];
const tier = (id: string): TierRuntimeConfig => TIERS.find((t) => t.id === id)!;

/** The same formula as the router's cost accounting, written out: tokens / 1000 × price, rounded to 1e-6. */
function expectedCost(tierId: string, usage: TokenUsage): number {
  const t = tier(tierId);
  return Math.round(((usage.inputTokens / 1000) * t.inputPricePer1k + (usage.outputTokens / 1000) * t.outputPricePer1k) * 1e6) / 1e6;
}

// ---------------------------------------------------------------------------------------------
// Invocation

interface ChatBody {
  output: { text: string };
  tier: string | null;
  cache: string;
  usage: TokenUsage;
  costUsd: number;
  stopReason?: string;
  routing: {
    complexity: number;
    classifiedTier: string;
    reasons: string[];
    tierHintHonoured: boolean;
    attempts: Array<{ tierId: string; outcome: string; errorKind?: string }>;
    cachedFromTier?: string;
  };
  error?: { code: string; message: string };
}

interface Invocation {
  readonly res: APIGatewayProxyStructuredResultV2;
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: ChatBody;
  readonly metrics: EmfMetric[];
}

function chatEvent(body: unknown, options: EventOptions = {}): APIGatewayProxyEventV2 {
  return httpApiEvent(body, TENANT_A_USER_1, options);
}

function userQuestion(text: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { messages: [{ role: 'user', content: text }], ...extra };
}

// ---------------------------------------------------------------------------------------------
// Servers and the handler

let redis: RedisServer;
let aws: LocalAwsServer;
let admin: Valkey;
let authSecretArn: string;
let handler: typeof RouterHandler.handler;
let captured: string[] = [];
const take = (): string[] => captured.splice(0, captured.length);
const savedEnv = { ...process.env };
/** The iovalkey clients the handler opened, so afterAll can close them (their reconnect loop would keep jest alive). */
const valkeyClients = new Set<Valkey>();

async function invoke(body: unknown, options: EventOptions = {}): Promise<Invocation> {
  take();
  const res = await handler(chatEvent(body, options), lambdaContext());
  const metrics = parseEmf(take());
  return {
    res,
    status: res.statusCode ?? 0,
    headers: Object.fromEntries(Object.entries(res.headers ?? {}).map(([k, v]) => [k.toLowerCase(), String(v)])),
    body: JSON.parse(String(res.body)) as ChatBody,
    metrics,
  };
}

async function exactKeys(): Promise<string[]> {
  return (await admin.keys(`${KEY_PREFIX}exact:*`)).sort();
}

async function waitFor(condition: () => boolean | Promise<boolean>, what: string, attempts = 100): Promise<void> {
  for (let i = 0; i < attempts; i++) {
    if (await condition()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`gave up waiting for ${what}`);
}

beforeAll(async () => {
  [redis, aws] = await Promise.all([RedisServer.start({ password: REDIS_PASSWORD }), LocalAwsServer.start()]);
  authSecretArn = aws.putSecret('scalable-ai/cache-auth', REDIS_PASSWORD);
  admin = new Valkey({ host: redis.host, port: redis.port, password: REDIS_PASSWORD, retryStrategy: () => 100, maxRetriesPerRequest: 5 });
  admin.on('error', () => undefined);

  const config: RouterRuntimeConfig = {
    tiers: TIERS,
    tierHintPolicy: 'any',
    maxRequestBytes: 8_192,
    maxMessages: 10,
    tenant: { source: 'iam' },
    personalCaching: 'user',
    cache: { host: redis.host, port: redis.port, tls: false, authSecretArn, keyPrefix: KEY_PREFIX, timeoutMs: 500 },
    exactCache: { ttlSeconds: TTL_SECONDS },
  };
  Object.assign(process.env, aws.env(), {
    [ROUTER_CONFIG_ENV]: JSON.stringify(config),
    POWERTOOLS_SERVICE_NAME: 'router-test',
  });
  // The namespace must come from the code (AiMetricNames), not from the environment.
  enableEmf();
  // Capture stdout: EMF and log lines are kept for the assertions, anything else passes through.
  captured = captureJsonStdout();

  // Not a mock: every call goes through. It only remembers the clients to disconnect them at the end.
  const connect = Valkey.prototype.connect;
  jest.spyOn(Valkey.prototype, 'connect').mockImplementation(function (this: Valkey, ...args: Parameters<Valkey['connect']>) {
    valkeyClients.add(this);
    return connect.apply(this, args);
  });

  // The handler reads its configuration at module load: load it only now. (A dynamic import()
  // is left as a native import by TypeScript's node16 module setting, which jest cannot run
  // without --experimental-vm-modules; jest's own loader goes through ts-jest.)
  ({ handler } = jest.requireActual<typeof RouterHandler>('../../lambdas/router/handler'));

  // Warm up once (client creation, secret read, cache connection) so that no test depends on
  // how long a cold start takes here.
  const warm = await invoke(userQuestion('warm-up'));
  expect(warm.status).toBe(200);
});

beforeEach(async () => {
  if (!redis.running) await redis.start();
  aws.reset();
  await admin.flushall();
});

/** Disconnects a client (no reconnect) and waits until its socket is closed. */
async function closeClient(client: Valkey | undefined): Promise<void> {
  if (!client || client.status === 'end') return;
  const ended = new Promise<void>((resolve) => client.once('end', () => resolve()));
  client.disconnect();
  await ended;
}

afterAll(async () => {
  // The handler's client (and the admin client, once it reconnected) went through the spy.
  await Promise.all([...new Set([...valkeyClients, admin])].map(closeClient));
  jest.restoreAllMocks();
  await Promise.all([redis?.dispose(), aws?.close()]);
  for (const key of Object.keys(process.env)) if (!(key in savedEnv)) delete process.env[key];
  Object.assign(process.env, savedEnv);
});

// ---------------------------------------------------------------------------------------------

describe('exact cache', () => {
  test('a miss is answered by the classified tier and cached; the same question is then served from the cache', async () => {
    const usage = { inputTokens: 1_200, outputTokens: 300 };
    aws.setModel(SMALL_MODEL, { reply: 'The store opens at 9am, Monday to Saturday.', usage });
    const question = userQuestion('What time does the store open?', { maxTokens: 5_000 });

    const first = await invoke(question);
    expect(first.status).toBe(200);
    expect(first.headers['x-cache']).toBe('miss');
    expect(first.headers['x-tier']).toBe('small');
    expect(first.headers['x-cost-usd']).toBe(expectedCost('small', usage).toFixed(6));
    expect(first.body.output.text).toBe('The store opens at 9am, Monday to Saturday.');
    expect(first.body.usage).toEqual(usage);
    expect(first.body.costUsd).toBeCloseTo(expectedCost('small', usage), 9);
    expect(first.body.routing.attempts).toEqual([expect.objectContaining({ tierId: 'small', outcome: 'ok' })]);

    // The model saw one Converse call over HTTP/2, with maxTokens capped to the tier's limit.
    const calls = aws.callsOf();
    expect(calls).toHaveLength(1);
    expect(calls[0].request).toMatchObject({ service: 'bedrock', target: SMALL_MODEL, maxTokens: tier('small').maxTokens });
    expect(calls[0].request.messages).toEqual([{ role: 'user', text: 'What time does the store open?' }]);
    expect(calls[0].httpVersion).toBe('2.0');
    expect(calls[0].headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDLOCALTEST\/\d{8}\/us-east-1\/bedrock\//);

    expect(metricSum(first.metrics, M.REQUESTS)).toBe(1);
    expect(metricSum(first.metrics, M.CACHE_MISSES, { [M.DIMENSION_CACHE_LEVEL]: 'exact' })).toBe(1);
    expect(metricSum(first.metrics, M.MODEL_INVOCATIONS, { [M.DIMENSION_TIER]: 'small' })).toBe(1);
    expect(metricSum(first.metrics, M.INPUT_TOKENS, { [M.DIMENSION_TIER]: 'small' })).toBe(usage.inputTokens);
    expect(metricSum(first.metrics, M.OUTPUT_TOKENS, { [M.DIMENSION_TIER]: 'small' })).toBe(usage.outputTokens);
    expect(metricSum(first.metrics, M.COST_USD, { [M.DIMENSION_TIER]: 'small' })).toBeCloseTo(expectedCost('small', usage), 9);
    expect(metricsNamed(first.metrics, M.LATENCY, { [M.DIMENSION_SERVED_BY]: 'model' })).toHaveLength(1);
    expect(first.metrics.every((m) => m.namespace === M.NAMESPACE && m.dimensions[M.DIMENSION_SERVICE] === 'router-test')).toBe(true);

    // The answer is in the cache, with a TTL.
    const keys = await exactKeys();
    expect(keys).toHaveLength(1);
    const ttl = await admin.ttl(keys[0]);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(TTL_SECONDS);
    expect(JSON.parse((await admin.get(keys[0]))!)).toMatchObject({ text: 'The store opens at 9am, Monday to Saturday.', tierId: 'small', usage });

    const second = await invoke(question);
    expect(second.status).toBe(200);
    expect(second.headers['x-cache']).toBe('exact');
    expect(second.headers['x-cost-usd']).toBe('0.000000');
    expect(second.body.output.text).toBe(first.body.output.text);
    expect(second.body.routing.cachedFromTier).toBe('small');
    expect(metricSum(second.metrics, M.CACHE_HITS, { [M.DIMENSION_CACHE_LEVEL]: 'exact' })).toBe(1);
    expect(metricsNamed(second.metrics, M.MODEL_INVOCATIONS, { [M.DIMENSION_TIER]: 'small' })).toHaveLength(0);

    // Case, spacing and a trailing "?" do not change the key.
    const third = await invoke(userQuestion('  what TIME does the store   open', { maxTokens: 5_000 }));
    expect(third.headers['x-cache']).toBe('exact');

    expect(aws.callsOf()).toHaveLength(1);
  });

  test('the cache AUTH token is read from Secrets Manager (the cache requires it)', async () => {
    expect(aws.secretCalls).toContainEqual({ secretId: authSecretArn, found: true });
    // Without the token the cache refuses every command: the warm-up answer was cached only because the handler authenticated.
    const anonymous = new Valkey({ host: redis.host, port: redis.port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    anonymous.on('error', () => undefined);
    try {
      await expect(anonymous.get('anything')).rejects.toThrow(/NOAUTH/);
    } finally {
      anonymous.disconnect();
    }
    await invoke(userQuestion('Do you ship to Canada?'));
    const hit = await invoke(userQuestion('Do you ship to Canada?'));
    expect(hit.headers['x-cache']).toBe('exact');
  });

  test('tenants never share an entry; users of one tenant share single questions', async () => {
    const question = userQuestion('How do I reset my password?');

    const a1 = await invoke(question, { userArn: TENANT_A_USER_1 });
    const b1 = await invoke(question, { userArn: TENANT_B_USER_1 });
    expect(a1.headers['x-cache']).toBe('miss');
    expect(b1.headers['x-cache']).toBe('miss');
    expect(aws.callsOf(SMALL_MODEL)).toHaveLength(2);

    const keys = await exactKeys();
    expect(keys).toHaveLength(2);
    // The second segment is the tenant hash: one per tenant.
    expect(new Set(keys.map((k) => k.split(':')[2])).size).toBe(2);

    // Each tenant now hits its own entry; another user of tenant A shares A's.
    const a2 = await invoke(question, { userArn: TENANT_A_USER_2 });
    const b2 = await invoke(question, { userArn: TENANT_B_USER_1 });
    expect(a2.headers['x-cache']).toBe('exact');
    expect(b2.headers['x-cache']).toBe('exact');
    expect(aws.callsOf(SMALL_MODEL)).toHaveLength(2);
  });

  test('a multi-turn conversation is scoped to its user', async () => {
    const conversation = {
      messages: [
        { role: 'user', content: 'My order number is 4411.' },
        { role: 'assistant', content: 'Thanks, I found order 4411.' },
        { role: 'user', content: 'When will it arrive?' },
      ],
    };
    const user1 = await invoke(conversation, { userArn: TENANT_A_USER_1 });
    const user2 = await invoke(conversation, { userArn: TENANT_A_USER_2 });
    const user1Again = await invoke(conversation, { userArn: TENANT_A_USER_1 });
    expect([user1, user2, user1Again].map((r) => r.headers['x-cache'])).toEqual(['miss', 'miss', 'exact']);
  });
});

describe('fallback', () => {
  test.each<[string, InjectedFailure, string]>([
    ['ThrottlingException', Failures.throttling(), 'throttled'],
    ['InternalServerException (500)', Failures.internal(), 'server'],
    ['ServiceUnavailableException (503)', Failures.serviceUnavailable(), 'server'],
  ])('the small tier fails with %s once: the medium tier answers', async (_, failure, errorKind) => {
    aws.failNext(SMALL_MODEL, failure);
    aws.setModel(MEDIUM_MODEL, { reply: 'from medium', usage: { inputTokens: 100, outputTokens: 50 } });

    const r = await invoke(userQuestion('Where is my parcel?'));
    expect(r.status).toBe(200);
    expect(r.headers['x-cache']).toBe('miss');
    expect(r.headers['x-tier']).toBe('medium');
    expect(r.headers['x-cost-usd']).toBe(expectedCost('medium', { inputTokens: 100, outputTokens: 50 }).toFixed(6));
    expect(r.body.output.text).toBe('from medium');
    expect(r.body.routing.classifiedTier).toBe('small');
    expect(r.body.routing.attempts).toEqual([
      expect.objectContaining({ tierId: 'small', outcome: 'failed', errorKind }),
      expect.objectContaining({ tierId: 'medium', outcome: 'ok' }),
    ]);
    expect(aws.callsOf(SMALL_MODEL)).toHaveLength(1);
    expect(aws.callsOf(MEDIUM_MODEL)).toHaveLength(1);

    expect(metricSum(r.metrics, M.FALLBACKS, { [M.DIMENSION_TIER]: 'small' })).toBe(1);
    expect(metricSum(r.metrics, M.MODEL_ERRORS, { [M.DIMENSION_TIER]: 'small', [M.DIMENSION_ERROR_KIND]: errorKind })).toBe(1);
    expect(metricSum(r.metrics, M.MODEL_INVOCATIONS, { [M.DIMENSION_TIER]: 'medium' })).toBe(1);
    expect(metricsNamed(r.metrics, M.UNAVAILABLE)).toHaveLength(0);
  });

  test('the SageMaker tier fails with a ModelError: the fallback goes down to medium', async () => {
    aws.failNext(LARGE_ENDPOINT, Failures.sageMakerModelError());
    const r = await invoke(userQuestion('Summarize our return policy.', { tier: 'large' }));
    expect(r.status).toBe(200);
    expect(r.headers['x-tier']).toBe('medium');
    expect(r.body.routing.attempts).toEqual([
      expect.objectContaining({ tierId: 'large', outcome: 'failed', errorKind: 'server' }),
      expect.objectContaining({ tierId: 'medium', outcome: 'ok' }),
    ]);
    expect(metricSum(r.metrics, M.FALLBACKS, { [M.DIMENSION_TIER]: 'large' })).toBe(1);
    expect(metricSum(r.metrics, M.MODEL_ERRORS, { [M.DIMENSION_TIER]: 'large', [M.DIMENSION_ERROR_KIND]: 'server' })).toBe(1);
  });

  test('a tier that hangs past its timeoutMs is abandoned as a timeout; the next tier answers', async () => {
    aws.failNext(SMALL_MODEL, Failures.hang(20_000));
    const r = await invoke(userQuestion('Is the sale still on?'));
    expect(r.status).toBe(200);
    expect(r.headers['x-tier']).toBe('medium');
    expect(r.body.routing.attempts).toEqual([
      expect.objectContaining({ tierId: 'small', outcome: 'failed', errorKind: 'timeout' }),
      expect.objectContaining({ tierId: 'medium', outcome: 'ok' }),
    ]);
    expect(metricSum(r.metrics, M.MODEL_ERRORS, { [M.DIMENSION_TIER]: 'small', [M.DIMENSION_ERROR_KIND]: 'timeout' })).toBe(1);
    expect(metricSum(r.metrics, M.FALLBACKS, { [M.DIMENSION_TIER]: 'small' })).toBe(1);
    // The router cancelled the hanging request instead of leaving it open.
    const [hung] = aws.callsOf(SMALL_MODEL);
    await waitFor(() => hung.outcome === 'aborted', 'the hanging call to be cancelled');
  });

  test('a model that rejects the request itself (ValidationException) is not retried on other tiers: 400', async () => {
    aws.failNext(SMALL_MODEL, Failures.validation('The model does not support this input.'));
    const r = await invoke(userQuestion('Tell me about gift cards.'));
    expect(r.status).toBe(400);
    expect(r.body.error?.code).toBe('model-rejected');
    expect(r.body.error?.message).toMatch(/does not support this input/);
    expect(aws.callsOf()).toHaveLength(1);
    expect(metricSum(r.metrics, M.MODEL_ERRORS, { [M.DIMENSION_TIER]: 'small', [M.DIMENSION_ERROR_KIND]: 'invalid' })).toBe(1);
    expect(await exactKeys()).toHaveLength(0);
  });

  test('every tier failing answers 503 with retry-after, naming the tiers tried, and caches nothing', async () => {
    aws.failNext(SMALL_MODEL, Failures.throttling());
    aws.failNext(MEDIUM_MODEL, Failures.internal());
    aws.failNext(LARGE_ENDPOINT, Failures.sageMakerModelError());

    const r = await invoke(userQuestion('Can I change my delivery address?'));
    expect(r.status).toBe(503);
    expect(r.headers['retry-after']).toMatch(/^\d+$/);
    expect(r.body.error?.code).toBe('unavailable');
    expect(r.body.error?.message).toContain('small (throttled)');
    expect(r.body.error?.message).toContain('medium (server)');
    expect(r.body.error?.message).toContain('large (server)');
    expect([aws.callsOf(SMALL_MODEL), aws.callsOf(MEDIUM_MODEL), aws.callsOf(LARGE_ENDPOINT)].map((c) => c.length)).toEqual([1, 1, 1]);

    expect(metricSum(r.metrics, M.UNAVAILABLE)).toBe(1);
    expect(metricSum(r.metrics, M.FALLBACKS, { [M.DIMENSION_TIER]: 'small' })).toBe(1);
    expect(metricSum(r.metrics, M.FALLBACKS, { [M.DIMENSION_TIER]: 'medium' })).toBe(1);
    expect(metricSum(r.metrics, M.MODEL_ERRORS, { [M.DIMENSION_TIER]: 'large', [M.DIMENSION_ERROR_KIND]: 'server' })).toBe(1);
    expect(await exactKeys()).toHaveLength(0);

    // The failures were transient: the next request is answered (and only now cached).
    const again = await invoke(userQuestion('Can I change my delivery address?'));
    expect(again.status).toBe(200);
    expect(again.headers['x-tier']).toBe('small');
    expect(await exactKeys()).toHaveLength(1);
  });
});

describe('bad requests are rejected before any model call', () => {
  test.each<[string, EventOptions & { body?: unknown }, RegExp]>([
    ['invalid JSON', { raw: '{"messages": [' }, /not valid JSON/],
    ['no body', { body: undefined }, /body is required/],
    ['empty messages', { body: { messages: [] } }, /messages: messages must not be empty/],
    ['a bad role', { body: { messages: [{ role: 'system', content: 'hi' }] } }, /messages\.0\.role/],
    ['an empty content', { body: { messages: [{ role: 'user', content: '   ' }] } }, /messages\.0\.content/],
    ['an unknown tier hint', { body: userQuestion('hi', { tier: 'huge' }) }, /tier: unknown tier "huge"/],
    [
      'turns that do not alternate',
      { body: { messages: [{ role: 'user', content: 'a' }, { role: 'user', content: 'b' }] } },
      /messages\.1\.role/,
    ],
    ['an unknown field', { body: userQuestion('hi', { model: 'gpt' }) }, /model/],
    ['a temperature out of range', { body: userQuestion('hi', { temperature: 3 }) }, /temperature/],
  ])('%s → 400 naming the field', async (_, { body, ...options }, message) => {
    const r = await invoke(body, options);
    expect(r.status).toBe(400);
    expect(r.body.error?.code).toBe('invalid');
    expect(r.body.error?.message).toMatch(message);
    expect(metricSum(r.metrics, M.REJECTED_REQUESTS, { [M.DIMENSION_REASON]: 'invalid' })).toBe(1);
    expect(aws.callsOf()).toHaveLength(0);
  });

  test('a base64-encoded body is decoded', async () => {
    const r = await invoke(userQuestion('Are returns free?'), { base64: true });
    expect(r.status).toBe(200);
    expect(aws.callsOf(SMALL_MODEL)[0].request.messages).toEqual([{ role: 'user', text: 'Are returns free?' }]);
  });

  test('a body larger than maxRequestBytes → 413', async () => {
    const r = await invoke(userQuestion('x'.repeat(10_000)));
    expect(r.status).toBe(413);
    expect(r.body.error?.code).toBe('too-large');
    expect(r.body.error?.message).toMatch(/limit is 8192 bytes/);
    expect(metricSum(r.metrics, M.REJECTED_REQUESTS, { [M.DIMENSION_REASON]: 'too-large' })).toBe(1);
    expect(aws.callsOf()).toHaveLength(0);
  });

  test('no authorizer context → 401', async () => {
    const r = await invoke(userQuestion('hello'), { userArn: null });
    expect(r.status).toBe(401);
    expect(r.body.error?.code).toBe('unauthenticated');
    expect(metricSum(r.metrics, M.REJECTED_REQUESTS, { [M.DIMENSION_REASON]: 'unauthenticated' })).toBe(1);
    expect(aws.callsOf()).toHaveLength(0);
  });
});

describe('cache outage', () => {
  test('with the cache server down, requests are answered by a model; when it is back, caching resumes', async () => {
    const question = userQuestion('Which payment methods do you accept?');
    const first = await invoke(question);
    expect(first.headers['x-cache']).toBe('miss');
    expect(await exactKeys()).toHaveLength(1);

    await redis.stop('SIGKILL');
    const during = await invoke(question);
    expect(during.status).toBe(200);
    expect(during.headers['x-cache']).toBe('miss');
    expect(during.headers['x-tier']).toBe('small');
    expect(metricSum(during.metrics, M.CACHE_ERRORS, { [M.DIMENSION_CACHE_LEVEL]: 'exact' })).toBeGreaterThanOrEqual(1);
    expect(aws.callsOf(SMALL_MODEL)).toHaveLength(2);

    // Same port, empty data (no persistence): the handler's client reconnects by itself.
    await redis.start();
    const afterRestart = userQuestion('Do you price match?');
    await waitFor(async () => {
      const r = await invoke(afterRestart);
      expect(r.status).toBe(200);
      return metricsNamed(r.metrics, M.CACHE_ERRORS, { [M.DIMENSION_CACHE_LEVEL]: 'exact' }).length === 0;
    }, 'the handler to reconnect to the cache', 40);
    const hit = await invoke(afterRestart);
    expect(hit.headers['x-cache']).toBe('exact');
  });
});

describe('SageMaker tier', () => {
  const SYSTEM = 'You are the support assistant of an online shop. Answer precisely.';

  test('a long, complex prompt is classified to the large tier and sent in OpenAI chat format, system prompt first', async () => {
    const prompt =
      'Explain step by step why this Python function is slow and compare two ways to fix it: ' +
      '```python\ndef total(orders):\n    return sum(o.price for o in orders if o in orders)\n```\n' +
      'Then calculate the expected speed-up for 10000 orders, assuming 3 * 4 = 12 operations per lookup, ' +
      'and prove that the fixed version is linear. Also evaluate the trade-offs of caching the result.';
    const usage = { inputTokens: 900, outputTokens: 700 };
    aws.setModel(LARGE_ENDPOINT, { reply: 'A detailed answer.', usage });

    const r = await invoke({ system: SYSTEM, messages: [{ role: 'user', content: prompt }], temperature: 0.2 });
    expect(r.status).toBe(200);
    expect(r.headers['x-tier']).toBe('large');
    expect(r.body.routing.classifiedTier).toBe('large');
    expect(r.body.routing.tierHintHonoured).toBe(false);
    expect(r.body.output.text).toBe('A detailed answer.');
    // The container's OpenAI finish_reason, in the Converse vocabulary the router uses.
    expect(r.body.stopReason).toBe('end_turn');
    expect(r.headers['x-cost-usd']).toBe(expectedCost('large', usage).toFixed(6));

    const [call] = aws.callsOf(LARGE_ENDPOINT);
    expect(call.httpVersion).toBe('1.1');
    expect(call.body).toEqual({
      messages: [
        { role: 'system', content: SYSTEM },
        { role: 'user', content: prompt },
      ],
      max_tokens: tier('large').maxTokens,
      temperature: 0.2,
    });
    expect(aws.callsOf()).toHaveLength(1);
    expect(metricSum(r.metrics, M.MODEL_INVOCATIONS, { [M.DIMENSION_TIER]: 'large' })).toBe(1);
  });

  test('an answer the container cut short with content_filter is reported and never cached', async () => {
    aws.setModel(LARGE_ENDPOINT, { reply: 'I cannot help with that.', stopReason: 'content_filter' });
    const r = await invoke(userQuestion('Tell me something filtered.', { tier: 'large' }));
    expect(r.status).toBe(200);
    expect(r.body.stopReason).toBe('content_filtered');
    expect(await exactKeys()).toEqual([]);
  });

  test('a tier hint (policy "any") sends a short conversation to the large tier, turns in order', async () => {
    const r = await invoke({
      system: SYSTEM,
      tier: 'large',
      maxTokens: 64,
      messages: [
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: 'Hello! How can I help?' },
        { role: 'user', content: [{ text: 'Where is my order?' }] },
      ],
    });
    expect(r.status).toBe(200);
    expect(r.headers['x-tier']).toBe('large');
    expect(r.body.routing.tierHintHonoured).toBe(true);
    expect(r.body.output.text).toBe(`[${LARGE_ENDPOINT}] Where is my order?`);
    const [call] = aws.callsOf(LARGE_ENDPOINT);
    expect((call.body as { messages: unknown }).messages).toEqual([
      { role: 'system', content: SYSTEM },
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Hello! How can I help?' },
      { role: 'user', content: 'Where is my order?' },
    ]);
    expect((call.body as { max_tokens: number }).max_tokens).toBe(64);
  });
});

describe('odd model answers are failures of their tier', () => {
  const converse = (content: unknown[], usage = { inputTokens: 10, outputTokens: 5 }, stopReason = 'end_turn'): unknown => ({
    output: { message: { role: 'assistant', content } },
    stopReason,
    usage: { ...usage, totalTokens: usage.inputTokens + usage.outputTokens },
    metrics: { latencyMs: 1 },
  });

  test.each<[string, unknown]>([
    ['an empty Converse body {}', {}],
    ['content []', converse([])],
    ['a tool-use-only answer', converse([{ toolUse: { toolUseId: 'tooluse_1', name: 'lookup_order', input: { id: 42 } } }], undefined, 'tool_use')],
  ])('Bedrock answers %s: the next tier answers, nothing empty is billed or cached', async (_, body) => {
    aws.setModel(SMALL_MODEL, { body });
    aws.setModel(MEDIUM_MODEL, { reply: 'from medium', usage: { inputTokens: 100, outputTokens: 50 } });

    const r = await invoke(userQuestion('Where is my parcel?'));

    expect(r.status).toBe(200);
    expect(r.headers['x-tier']).toBe('medium');
    expect(r.headers['x-cost-usd']).toBe(expectedCost('medium', { inputTokens: 100, outputTokens: 50 }).toFixed(6));
    expect(r.body.output.text).toBe('from medium');
    expect(r.body.routing.attempts).toEqual([
      expect.objectContaining({ tierId: 'small', outcome: 'failed', errorKind: 'empty' }),
      expect.objectContaining({ tierId: 'medium', outcome: 'ok' }),
    ]);
    expect(metricSum(r.metrics, M.MODEL_ERRORS, { [M.DIMENSION_TIER]: 'small', [M.DIMENSION_ERROR_KIND]: 'empty' })).toBe(1);
    expect(metricsNamed(r.metrics, M.COST_USD, { [M.DIMENSION_TIER]: 'small' })).toHaveLength(0);
    const keys = await exactKeys();
    expect(keys).toHaveLength(1);
    expect(JSON.parse((await admin.get(keys[0]))!)).toMatchObject({ text: 'from medium', tierId: 'medium' });
  });

  test('a SageMaker answer with content "" falls back down to medium', async () => {
    aws.setModel(LARGE_ENDPOINT, {
      body: { id: 'c1', object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content: '' }, finish_reason: 'stop' }], usage: { prompt_tokens: 9, completion_tokens: 0 } },
    });
    const r = await invoke(userQuestion('Summarize our return policy.', { tier: 'large' }));
    expect(r.status).toBe(200);
    expect(r.headers['x-tier']).toBe('medium');
    expect(r.body.routing.attempts[0]).toMatchObject({ tierId: 'large', outcome: 'failed', errorKind: 'empty' });
  });

  test.each<[string, { inputTokens: number; outputTokens: number }]>([
    ['negative token counts', { inputTokens: -100_000, outputTokens: -5_000 }],
    ['1e15 tokens', { inputTokens: 1e15, outputTokens: 1e15 }],
  ])('a usage with %s is never billed nor cached: the next tier answers', async (_, usage) => {
    aws.setModel(SMALL_MODEL, { reply: 'A suspicious answer.', usage });
    aws.setModel(MEDIUM_MODEL, { reply: 'from medium', usage: { inputTokens: 100, outputTokens: 50 } });

    const r = await invoke(userQuestion('Do you ship abroad?'));

    expect(r.status).toBe(200);
    expect(r.headers['x-tier']).toBe('medium');
    expect(r.headers['x-cost-usd']).toBe(expectedCost('medium', { inputTokens: 100, outputTokens: 50 }).toFixed(6));
    expect(r.body.routing.attempts[0]).toMatchObject({ tierId: 'small', outcome: 'failed', errorKind: 'invalid-usage' });
    expect(metricsNamed(r.metrics, M.COST_USD).every((m) => m.values.every((v) => v === expectedCost('medium', { inputTokens: 100, outputTokens: 50 })))).toBe(true);
    expect(metricsNamed(r.metrics, M.COST_USD, { [M.DIMENSION_TIER]: 'small' })).toHaveLength(0);
    const keys = await exactKeys();
    expect(keys).toHaveLength(1);
    expect(JSON.parse((await admin.get(keys[0]))!)).toMatchObject({ text: 'from medium' });
  });

  test('every tier answering empty: 503 with retry-after, nothing cached', async () => {
    aws.setDefault({ body: {} });
    aws.setModel(LARGE_ENDPOINT, {
      body: { id: 'c1', object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content: '' }, finish_reason: 'stop' }] },
    });
    const r = await invoke(userQuestion('Is there anybody out there?'));
    expect(r.status).toBe(503);
    expect(r.headers['retry-after']).toMatch(/^\d+$/);
    expect(r.body.error?.message).toContain('small (empty)');
    expect(await exactKeys()).toEqual([]);
  });
});

describe('hostile events get a 4xx, never a 500 or a chat answer', () => {
  async function invokeEvent(event: APIGatewayProxyEventV2): Promise<{ status: number; code?: string; metrics: EmfMetric[] }> {
    take();
    const res = await handler(event, lambdaContext());
    const metrics = parseEmf(take());
    return { status: res.statusCode ?? 0, code: (JSON.parse(String(res.body)) as ChatBody).error?.code, metrics };
  }

  test.each(['GET /v1/chat', 'POST /v1/unknown', '$default'])('an unknown route key (%s) is 404, and no model is called', async (routeKey) => {
    const r = await invokeEvent(chatEvent(userQuestion('hello'), { routeKey }));
    expect(r).toMatchObject({ status: 404, code: 'not-found' });
    expect(aws.callsOf()).toHaveLength(0);
  });

  test('no requestContext at all → 401', async () => {
    const event = chatEvent(userQuestion('hello'));
    delete (event as { requestContext?: unknown }).requestContext;
    expect(await invokeEvent(event)).toMatchObject({ status: 401, code: 'unauthenticated' });
    expect(aws.callsOf()).toHaveLength(0);
  });

  test.each<[string, unknown]>([['a number', 42], ['an object', { arn: TENANT_A_USER_1 }], ['a list', [TENANT_A_USER_1]]])('a userArn that is %s → 401', async (_, userArn) => {
    const event = chatEvent(userQuestion('hello'));
    (event.requestContext as unknown as { authorizer: { iam: Record<string, unknown> } }).authorizer.iam.userArn = userArn;
    expect(await invokeEvent(event)).toMatchObject({ status: 401, code: 'unauthenticated' });
    expect(aws.callsOf()).toHaveLength(0);
  });

  test('a body nested 3,000 levels deep → 400 naming the limit', async () => {
    const r = await invoke(undefined, { raw: `{"messages": ${'['.repeat(3_000)}${']'.repeat(3_000)}}` });
    expect(r.status).toBe(400);
    expect(r.body.error).toEqual({ code: 'invalid', message: expect.stringMatching(/the limit is 32$/) });
  });
});
