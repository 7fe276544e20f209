/**
 * The router handler when its dependencies misbehave, and what its hot path costs, against the
 * local protocol servers (the real SDK clients, iovalkey and pg):
 * - a Secrets Manager that accepts connections and never answers (cold start);
 * - a pgvector host that accepts connections and stays silent;
 * - a cache server that goes down (its levels are skipped after repeated failures, and probed);
 * - the connections the Bedrock and SageMaker clients open over many requests;
 * - the lines an invocation writes to stdout (metrics and its log line).
 * Each scenario loads the handler module afresh (its configuration is read at module load).
 */
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import type Valkey from 'iovalkey';
import { AiMetricNames as M } from '../../constructs/contract/metrics';
import { ROUTER_CONFIG_ENV, type RouterRuntimeConfig, type TierRuntimeConfig } from '../../constructs/contract/runtime-config';
import type * as RouterHandler from '../../lambdas/router/handler';
import { Failures, LocalAwsServer } from '../support/aws-protocol-server';
import { ACCOUNT, captureJsonStdout, enableEmf, httpApiEvent, lambdaContext, metricSum, parseEmf, type EmfMetric } from '../support/lambda-harness';
import { RedisServer } from '../support/redis-server';
import { silentServer } from '../support/silent-server';

const USER = `arn:aws:sts::${ACCOUNT}:assumed-role/TenantA/user-1`;
const MODEL = 'us.amazon.nova-micro-v1:0';
const ENDPOINT = 'llama-3-70b-chat';
const TIERS: TierRuntimeConfig[] = [
  { id: 'small', provider: 'bedrock', modelId: MODEL, inputPricePer1k: 0.000035, outputPricePer1k: 0.00014, maxTokens: 512, timeoutMs: 5_000 },
  { id: 'large', provider: 'sagemaker', endpointName: ENDPOINT, apiFormat: 'openai-chat', inputPricePer1k: 0.002, outputPricePer1k: 0.006, maxTokens: 512, timeoutMs: 5_000 },
];
const HNSW = { m: 16, efConstruction: 64, efSearch: 40 };

let aws: LocalAwsServer;
let captured: string[];
const savedEnv = { ...process.env };

function baseConfig(overrides: Partial<RouterRuntimeConfig> = {}): RouterRuntimeConfig {
  return {
    tiers: TIERS,
    tierHintPolicy: 'any',
    maxRequestBytes: 8_192,
    maxMessages: 10,
    tenant: { source: 'iam' },
    personalCaching: 'user',
    ...overrides,
  };
}

/** The Valkey clients the containers opened (each container has its own copy of iovalkey), closed after each test. */
const containerClients = new Set<Valkey>();

/** A fresh handler module (a new container) with this configuration. */
function loadHandler(config: RouterRuntimeConfig): typeof RouterHandler.handler {
  process.env[ROUTER_CONFIG_ENV] = JSON.stringify(config);
  let handler!: typeof RouterHandler.handler;
  jest.isolateModules(() => {
    const { default: ContainerValkey } = jest.requireActual<{ default: typeof Valkey }>('iovalkey');
    const connect = ContainerValkey.prototype.connect;
    jest.spyOn(ContainerValkey.prototype, 'connect').mockImplementation(function (this: Valkey, ...args: Parameters<Valkey['connect']>) {
      containerClients.add(this);
      return connect.apply(this, args);
    });
    ({ handler } = jest.requireActual<typeof RouterHandler>('../../lambdas/router/handler'));
  });
  return handler;
}

interface Reply {
  readonly res: APIGatewayProxyStructuredResultV2;
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly metrics: EmfMetric[];
  readonly lines: string[];
  readonly ms: number;
}

async function call(handler: typeof RouterHandler.handler, text: string, extra: Record<string, unknown> = {}): Promise<Reply> {
  captured.splice(0);
  const started = Date.now();
  const res = await handler(httpApiEvent({ messages: [{ role: 'user', content: text }], ...extra }, USER), lambdaContext());
  const ms = Date.now() - started;
  const lines = captured.splice(0).join('').split('\n').filter((l) => l.trim().startsWith('{'));
  return {
    res,
    status: res.statusCode ?? 0,
    headers: Object.fromEntries(Object.entries(res.headers ?? {}).map(([k, v]) => [k.toLowerCase(), String(v)])),
    metrics: parseEmf(lines.map((l) => `${l}\n`)),
    lines,
    ms,
  };
}

beforeAll(async () => {
  aws = await LocalAwsServer.start();
  Object.assign(process.env, aws.env(), { POWERTOOLS_SERVICE_NAME: 'router-resilience-test' });
  enableEmf();
  captured = captureJsonStdout();
});

beforeEach(() => {
  aws.reset();
  aws.resetConnectionCounts();
});

afterEach(() => {
  // A client left open would reconnect forever to a stopped server and keep jest from exiting.
  for (const c of containerClients) c.disconnect();
  containerClients.clear();
});

afterAll(async () => {
  jest.restoreAllMocks();
  await aws?.close();
  for (const key of Object.keys(process.env)) if (!(key in savedEnv)) delete process.env[key];
  Object.assign(process.env, savedEnv);
});

describe('a dependency that hangs never hangs the router', () => {
  test('Secrets Manager accepting and never answering at cold start: every request is answered by a model within a bound; after 3 failed builds the connection is skipped', async () => {
    aws.failNextSecret(Failures.hang(60_000), 20);
    const secret = aws.putSecret('scalable-ai/cache-auth', 'token');
    // No cache server is needed: the connection is never opened without its AUTH token.
    const handler = loadHandler(baseConfig({
      cache: { host: '127.0.0.1', port: 1, tls: false, authSecretArn: secret, keyPrefix: 'sai:', timeoutMs: 200 },
      exactCache: { ttlSeconds: 60 },
    }));

    const replies: Reply[] = [];
    for (let i = 0; i < 4; i++) replies.push(await call(handler, `Where is my parcel ${i}?`));
    for (const r of replies) {
      expect(r.status).toBe(200);
      expect(r.headers['x-tier']).toBe('small');
      // The secret read's deadline is 1 s; the bound is generous for a loaded machine, far below the 60 s hang.
      expect(r.ms).toBeLessThan(6_000);
    }
    // Each of the first three requests tried a build of its own (a timed-out build is never handed on) and counted it.
    expect(replies.slice(0, 3).map((r) => metricSum(r.metrics, M.CACHE_ERRORS, { [M.DIMENSION_CACHE_LEVEL]: 'connection' }))).toEqual([1, 1, 1]);
    // The third failure opened the build's breaker: the fourth request does not try (and says so).
    expect(metricSum(replies[3].metrics, M.CIRCUIT_OPENED, { [M.DIMENSION_DEPENDENCY]: 'cache-connection' })).toBe(1);
    expect(metricSum(replies[3].metrics, M.BREAKER_SKIPS, { [M.DIMENSION_DEPENDENCY]: 'cache-connection' })).toBe(1);
    expect(metricSum(replies[3].metrics, M.CACHE_ERRORS, { [M.DIMENSION_CACHE_LEVEL]: 'connection' })).toBe(0);
  }, 30_000);

  test('a pgvector host that accepts and stays silent costs a request at most about semanticCache.timeoutMs, and is skipped after repeated failures', async () => {
    const silent = await silentServer();
    try {
      const secret = aws.putSecret('scalable-ai/pgvector', JSON.stringify({ username: 'postgres', password: 'postgres' }));
      const handler = loadHandler(baseConfig({
        semanticCache: {
          embedder: { provider: 'bedrock', modelId: 'amazon.titan-embed-text-v2:0', dimensions: 256 },
          store: {
            kind: 'pgvector',
            hnsw: HNSW,
            pgvector: { host: '127.0.0.1', port: silent.port, database: 'postgres', secretArn: secret, table: 'semantic_cache', ssl: false },
          },
          threshold: 0.8,
          margin: 0.1,
          rivalSupport: 2,
          answerEquivalence: 0.9,
          neighbours: 10,
          ttlSeconds: 600,
          maxEntriesPerScope: 100,
          timeoutMs: 200,
        },
      }));
      const replies: Reply[] = [];
      for (let i = 0; i < 5; i++) replies.push(await call(handler, `Do you ship to country number ${i}?`));
      for (const r of replies) {
        expect(r.status).toBe(200);
        expect(r.headers['x-cache']).toBe('miss');
        // Lookup and write, 200 ms each at most; the pool's 2 s connection timeout is never waited for.
        expect(r.ms).toBeLessThan(1_500);
      }
      expect(metricSum(replies[0].metrics, M.CACHE_ERRORS, { [M.DIMENSION_CACHE_LEVEL]: 'semantic' })).toBeGreaterThanOrEqual(1);
      // After 3 failures of the level it is skipped: the later requests do not touch the host.
      const skips = replies.map((r) => metricSum(r.metrics, M.BREAKER_SKIPS, { [M.DIMENSION_DEPENDENCY]: 'semantic' }));
      expect(skips.slice(3).every((n) => n >= 1)).toBe(true);
      expect(silent.accepted()).toBeLessThanOrEqual(2);
    } finally {
      await silent.close();
    }
  }, 30_000);
});

describe('a cache outage', () => {
  test('the exact and user context levels are skipped after 3 failures each (BreakerSkips), instead of every request paying their timeouts', async () => {
    const redis = await RedisServer.start();
    try {
      const handler = loadHandler(baseConfig({
        cache: { host: redis.host, port: redis.port, tls: false, keyPrefix: 'sai:', timeoutMs: 200 },
        exactCache: { ttlSeconds: 60 },
        userContext: { kind: 'valkey', maxTurns: 4, ttlSeconds: 60 },
      }));
      expect((await call(handler, 'warm-up')).status).toBe(200);
      await redis.stop('SIGKILL');
      const replies: Reply[] = [];
      for (let i = 0; i < 5; i++) replies.push(await call(handler, `During the outage ${i}?`, { session: 's1' }));
      for (const r of replies) expect(r.status).toBe(200);
      const exactErrors = replies.map((r) => metricSum(r.metrics, M.CACHE_ERRORS, { [M.DIMENSION_CACHE_LEVEL]: 'exact' }));
      const exactSkips = replies.map((r) => metricSum(r.metrics, M.BREAKER_SKIPS, { [M.DIMENSION_DEPENDENCY]: 'exact' }));
      const contextSkips = replies.map((r) => metricSum(r.metrics, M.BREAKER_SKIPS, { [M.DIMENSION_DEPENDENCY]: 'context' }));
      // get and set fail on the first request, get on the second (the third failure opens it); then skipped.
      expect(exactErrors).toEqual([2, 1, 0, 0, 0]);
      expect(exactSkips).toEqual([0, 1, 2, 2, 2]);
      expect(contextSkips.slice(2)).toEqual([2, 2, 2]);
      // A skipped level makes no call, so it waits for no command timeout (the skips above count them).
      expect(exactErrors.slice(2).every((n) => n === 0)).toBe(true);
    } finally {
      for (const c of containerClients) c.disconnect();
      await redis.dispose();
    }
  }, 30_000);
});

describe('the hot path reuses its connections', () => {
  test('50 Bedrock requests share one HTTP/2 connection; 20 SageMaker requests keep their connection alive', async () => {
    const handler = loadHandler(baseConfig());
    for (let i = 0; i < 50; i++) expect((await call(handler, `Question number ${i}?`)).headers['x-tier']).toBe('small');
    expect(aws.callsOf(MODEL)).toHaveLength(50);
    expect(aws.connections.http2).toBeLessThanOrEqual(2);

    for (let i = 0; i < 20; i++) expect((await call(handler, `Question number ${i}?`, { tier: 'large' })).headers['x-tier']).toBe('large');
    expect(aws.callsOf(ENDPOINT)).toHaveLength(20);
    expect(aws.connections.http1).toBeLessThanOrEqual(2);
  }, 30_000);
});

describe('what an invocation writes', () => {
  test('one line: the EMF document of its metrics carries its log fields', async () => {
    const handler = loadHandler(baseConfig());
    aws.setModel(MODEL, { reply: 'From 9am.', usage: { inputTokens: 200, outputTokens: 100 } });
    const r = await call(handler, 'What time do you open?');
    expect(r.status).toBe(200);
    expect(r.lines).toHaveLength(1);
    const doc = JSON.parse(r.lines[0]) as Record<string, unknown>;
    expect(doc).toMatchObject({ level: 'INFO', message: 'request', route: 'POST /v1/chat', status: 200, cache: 'miss', tier: 'small' });
    expect(doc._aws).toBeDefined();
    // Every metric of the request is in it.
    expect(metricSum(r.metrics, M.REQUESTS)).toBe(1);
    expect(metricSum(r.metrics, M.MODEL_INVOCATIONS, { [M.DIMENSION_TIER]: 'small' })).toBe(1);
    // 200 input and 100 output tokens at the small tier's prices.
    expect(metricSum(r.metrics, M.COST_USD)).toBeCloseTo(0.2 * 0.000035 + 0.1 * 0.00014, 9);
    expect(metricSum(r.metrics, M.COST_USD, { [M.DIMENSION_TIER]: 'small' })).toBe(metricSum(r.metrics, M.COST_USD));
  });
});
