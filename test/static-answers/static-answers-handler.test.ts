/**
 * The static answers loader Lambda handler end to end, against real local servers:
 * - the local S3 protocol server on `localhost` (a host name, so the S3 client must address it
 *   path-style), found through `AWS_ENDPOINT_URL_S3`, with two keys per ListObjectsV2 page;
 * - a Redis-protocol server with `requirepass`; the AUTH token comes from the local Secrets
 *   Manager (`aws-protocol-server.ts`) through Powertools `getSecret`.
 * Metrics are read from the EMF lines Powertools writes to stdout, log lines likewise.
 */
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import type { Context, ScheduledEvent } from 'aws-lambda';
import Valkey from 'iovalkey';
import { AiMetricNames as M } from '../../constructs/contract/metrics';
import { STATIC_LOADER_CONFIG_ENV, type StaticAnswersLoaderRuntimeConfig } from '../../constructs/contract/runtime-config';
import { s3ClientConfig } from '../../lambdas/adapters/s3-client';
import { ValkeyStaticAnswers } from '../../lambdas/adapters/valkey-static-answers';
import { normalizeQuestion } from '../../lambdas/core/static-answers';
import type { LoadSummary } from '../../lambdas/core/static-answers-loader';
import type * as LoaderHandler from '../../lambdas/static-answers-loader/handler';
import { LocalAwsServer } from '../support/aws-protocol-server';
import { RedisServer } from '../support/redis-server';
import { LocalS3Server } from '../support/s3-protocol-server';

const ACCOUNT = '111122223333';
const BUCKET = 'tenant-answers';
const PREFIX = 'static/';
const KEY_PREFIX = 'sai:';
const REDIS_PASSWORD = 'local-cache-auth-token-0123456789';
const SERVICE = 'static-loader-test';

// ---------------------------------------------------------------------------------------------
// EMF and log parsing (as in router-handler.test.ts)

interface EmfMetric {
  readonly namespace: string;
  readonly name: string;
  readonly unit: string;
  readonly values: number[];
  readonly dimensions: Record<string, string>;
}

function jsonLines(lines: string[]): Array<Record<string, unknown>> {
  return lines.join('').split('\n').filter((l) => l.trim().startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
}

function parseEmf(lines: string[]): EmfMetric[] {
  const metrics: EmfMetric[] = [];
  for (const doc of jsonLines(lines)) {
    type Directive = { Namespace: string; Dimensions: string[][]; Metrics: Array<{ Name: string; Unit: string }> };
    const aws = doc._aws as { CloudWatchMetrics: Directive[] } | undefined;
    if (!aws) continue;
    // Each metric of a directive is published once per dimension set of the directive.
    for (const directive of aws.CloudWatchMetrics) {
      for (const set of directive.Dimensions.length > 0 ? directive.Dimensions : [[]]) {
        const dimensions: Record<string, string> = {};
        for (const key of set) dimensions[key] = String(doc[key]);
        for (const m of directive.Metrics) {
          const value = doc[m.Name] as number | number[];
          metrics.push({ namespace: directive.Namespace, name: m.Name, unit: m.Unit, values: Array.isArray(value) ? value : [value], dimensions });
        }
      }
    }
  }
  return metrics;
}

/** Sum of `name` whose dimensions are exactly `service` plus `dimensions` (undefined when absent). */
function metricSum(metrics: EmfMetric[], name: string, dimensions: Record<string, string> = {}): number | undefined {
  const wanted = [M.DIMENSION_SERVICE, ...Object.keys(dimensions)].sort();
  const matching = metrics.filter(
    (m) =>
      m.name === name &&
      m.namespace === M.NAMESPACE &&
      m.dimensions[M.DIMENSION_SERVICE] === SERVICE &&
      JSON.stringify(Object.keys(m.dimensions).sort()) === JSON.stringify(wanted) &&
      Object.entries(dimensions).every(([k, v]) => m.dimensions[k] === v),
  );
  return matching.length === 0 ? undefined : matching.reduce((n, m) => n + m.values.reduce((a, b) => a + b, 0), 0);
}

// ---------------------------------------------------------------------------------------------
// Servers and the handler

let redis: RedisServer;
let aws: LocalAwsServer;
let s3: LocalS3Server;
let admin: Valkey;
let reader: ValkeyStaticAnswers;
let authSecretArn: string;
let handler: typeof LoaderHandler.handler;
let captured: string[] = [];
const savedEnv = { ...process.env };

function scheduledEvent(): ScheduledEvent {
  return {
    'version': '0',
    'id': '53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa',
    'detail-type': 'Scheduled Event',
    'source': 'aws.scheduler',
    'account': ACCOUNT,
    'time': '2026-11-27T03:00:00Z',
    'region': 'us-east-1',
    'resources': [`arn:aws:scheduler:us-east-1:${ACCOUNT}:schedule/default/static-answers-daily`],
    'detail': {},
  };
}

function lambdaContext(): Context {
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName: 'static-answers-loader',
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:us-east-1:${ACCOUNT}:function:static-answers-loader`,
    memoryLimitInMB: '512',
    awsRequestId: 'a1b2c3d4-7b61-11e6-9a41-93e8deadbeef',
    logGroupName: '/aws/lambda/static-answers-loader',
    logStreamName: '2026/11/27/[$LATEST]abcdef',
    getRemainingTimeInMillis: () => 300_000,
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

function config(extra: Partial<StaticAnswersLoaderRuntimeConfig> = {}): StaticAnswersLoaderRuntimeConfig {
  return {
    bucketName: BUCKET,
    prefix: PREFIX,
    cache: { host: redis.host, port: redis.port, tls: false, authSecretArn, keyPrefix: KEY_PREFIX, timeoutMs: 500 },
    ...extra,
  };
}

interface Run {
  readonly summary?: LoadSummary;
  readonly error?: Error;
  readonly metrics: EmfMetric[];
  readonly logs: Array<Record<string, unknown>>;
}

async function run(): Promise<Run> {
  captured = [];
  try {
    const summary = await handler(scheduledEvent(), lambdaContext());
    return { summary, metrics: parseEmf(captured), logs: jsonLines(captured).filter((d) => !d._aws) };
  } catch (err) {
    return { error: err as Error, metrics: parseEmf(captured), logs: jsonLines(captured).filter((d) => !d._aws) };
  } finally {
    captured = [];
  }
}

function putFile(key: string, tenantId: string, answers: Array<[string, string[], string]>): void {
  s3.putObject(BUCKET, `${PREFIX}${key}`, { tenantId, answers: answers.map(([id, questions, answer]) => ({ id, questions, answer })) });
}

function putDefaults(): void {
  putFile('acme/faq.json', 'acme', [
    ['hours', ['What are your opening hours?', 'When are you open?'], 'Acme: 9 to 5.'],
    ['returns', ['How do I return an item?'], 'Acme: free returns for 30 days.'],
  ]);
  putFile('acme/policies.json', 'acme', [['privacy', ['Do you sell my data?'], 'Acme: never.']]);
  putFile('globex/faq.json', 'globex', [['returns', ['How do I return an item?'], 'Globex: within 14 days.']]);
}

async function ask(tenantId: string, question: string): Promise<string | undefined> {
  return (await reader.findExact(tenantId, normalizeQuestion(question)))?.answer;
}

beforeAll(async () => {
  [redis, aws, s3] = await Promise.all([
    RedisServer.start({ password: REDIS_PASSWORD }),
    LocalAwsServer.start(),
    LocalS3Server.start({ host: 'localhost', maxKeysPerPage: 2 }),
  ]);
  s3.createBucket(BUCKET);
  authSecretArn = aws.putSecret('scalable-ai/cache-auth', REDIS_PASSWORD);
  admin = new Valkey({ host: redis.host, port: redis.port, password: REDIS_PASSWORD, maxRetriesPerRequest: 1 });
  admin.on('error', () => undefined);
  reader = new ValkeyStaticAnswers(admin, { keyPrefix: KEY_PREFIX });

  Object.assign(process.env, aws.env(), s3.env(), {
    [STATIC_LOADER_CONFIG_ENV]: JSON.stringify(config()),
    POWERTOOLS_SERVICE_NAME: SERVICE,
  });
  delete process.env.POWERTOOLS_METRICS_NAMESPACE;
  delete process.env.POWERTOOLS_DEV;
  delete process.env.POWERTOOLS_METRICS_DISABLED;
  delete process.env.AWS_PROFILE;

  // Capture stdout (EMF, INFO logs) and stderr (WARN and ERROR logs): JSON lines are kept for the
  // assertions, anything else passes through.
  for (const stream of [process.stdout, process.stderr]) {
    const write = stream.write.bind(stream);
    jest.spyOn(stream, 'write').mockImplementation(((chunk: string | Uint8Array, ...rest: never[]) => {
      const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
      if (text.trimStart().startsWith('{')) {
        captured.push(text);
        return true;
      }
      return write(chunk, ...rest);
    }) as typeof stream.write);
  }

  ({ handler } = jest.requireActual<typeof LoaderHandler>('../../lambdas/static-answers-loader/handler'));
});

beforeEach(async () => {
  s3.reset();
  aws.reset();
  await admin.flushall();
  process.env[STATIC_LOADER_CONFIG_ENV] = JSON.stringify(config());
});

afterAll(async () => {
  admin?.disconnect();
  jest.restoreAllMocks();
  await Promise.all([redis?.dispose(), aws?.close(), s3?.close()]);
  for (const key of Object.keys(process.env)) if (!(key in savedEnv)) delete process.env[key];
  Object.assign(process.env, savedEnv);
});

// ---------------------------------------------------------------------------------------------

test('a scheduled run publishes every tenant through the S3 API (path-style) into the AUTH-protected cache', async () => {
  putDefaults();
  const r = await run();
  expect(r.error).toBeUndefined();
  expect(r.summary?.published.map((p) => [p.tenantId, p.answers, p.variants])).toEqual([['acme', 3, 4], ['globex', 1, 1]]);

  expect(await ask('acme', 'when ARE you open??')).toBe('Acme: 9 to 5.');
  expect(await ask('acme', 'Do you sell my data')).toBe('Acme: never.');
  expect(await ask('globex', 'How do I return an item?')).toBe('Globex: within 14 days.');
  expect(await ask('globex', 'When are you open?')).toBeUndefined();

  expect(metricSum(r.metrics, M.STATIC_ANSWERS_PUBLISHED)).toBe(4);
  expect(metricSum(r.metrics, M.STATIC_ANSWER_ERRORS)).toBe(0);
  expect(r.metrics.filter((m) => m.dimensions[M.DIMENSION_REASON] !== undefined)).toEqual([]);
  expect(r.logs).toContainEqual(expect.objectContaining({ level: 'INFO', message: 'static answers loaded', answers: 4, published: ['acme', 'globex'] }));

  // The token came from Secrets Manager; the cache refuses clients without it.
  expect(aws.secretCalls).toContainEqual({ secretId: authSecretArn, found: true });
  // Path-style: the host is the endpoint's, the bucket is the first path segment; the listing paged.
  const calls = s3.calls;
  expect(calls.length).toBeGreaterThan(3);
  expect(calls.every((c) => c.host === new URL(s3.url).host && c.path.startsWith(`/${BUCKET}/`) && c.status === 200)).toBe(true);
  expect(s3.callsOf('ListObjectsV2').length).toBeGreaterThanOrEqual(2);
});

test('a broken file: the run succeeds, its tenant keeps its answers, the error is a metric and a log line with the object key', async () => {
  putDefaults();
  expect((await run()).error).toBeUndefined();

  putFile('acme/faq.json', 'acme', [['hours', ['What are your opening hours?'], 'Acme: NEW hours.']]);
  s3.putObject(BUCKET, `${PREFIX}acme/policies.json`, { tenantId: 'acme', answers: [{ id: 'privacy', questions: ['Do you sell my data?'] }] });
  putFile('globex/faq.json', 'globex', [['returns', ['How do I return an item?'], 'Globex: NEW returns.']]);
  const r = await run();

  expect(r.error).toBeUndefined();
  expect(await ask('acme', 'What are your opening hours?')).toBe('Acme: 9 to 5.');
  expect(await ask('acme', 'Do you sell my data?')).toBe('Acme: never.');
  expect(await ask('globex', 'How do I return an item?')).toBe('Globex: NEW returns.');
  expect(metricSum(r.metrics, M.STATIC_ANSWER_ERRORS, { [M.DIMENSION_REASON]: 'schema' })).toBe(1);
  expect(metricSum(r.metrics, M.STATIC_ANSWER_ERRORS)).toBe(1);
  expect(metricSum(r.metrics, M.STATIC_ANSWERS_PUBLISHED)).toBe(1);
  expect(r.logs).toContainEqual(expect.objectContaining({
    level: 'ERROR',
    reason: 'schema',
    key: `${PREFIX}acme/policies.json`,
    tenantId: 'acme',
    detail: expect.stringMatching(/answers\.0\.answer/),
  }));
});

test('a tenant whose files are gone is removed by the next run', async () => {
  putDefaults();
  await run();
  s3.deleteObject(BUCKET, `${PREFIX}globex/faq.json`);
  const r = await run();
  expect(r.summary?.removed).toEqual(['globex']);
  expect(await ask('globex', 'How do I return an item?')).toBeUndefined();
  expect(await ask('acme', 'How do I return an item?')).toBe('Acme: free returns for 30 days.');
});

test('S3 down: the handler throws (the schedule retries), the published answers stay, the failure is counted', async () => {
  putDefaults();
  await run();
  const before = (await admin.keys(`${KEY_PREFIX}static:*`)).sort();
  s3.failList(BUCKET, { status: 500, code: 'InternalError', message: 'We encountered an internal error. Please try again.' });

  const r = await run();
  expect(r.error?.message).toMatch(/could not list the answer files: InternalError/);
  // The SDK retried before giving up.
  expect(s3.callsOf('ListObjectsV2').filter((c) => c.status === 500).length).toBeGreaterThan(1);
  expect(metricSum(r.metrics, M.STATIC_ANSWER_ERRORS, { [M.DIMENSION_REASON]: 'unavailable' })).toBe(1);
  expect(r.logs).toContainEqual(expect.objectContaining({ level: 'ERROR', message: 'static answers: the load failed' }));
  expect((await admin.keys(`${KEY_PREFIX}static:*`)).sort()).toEqual(before);
  expect(await ask('acme', 'When are you open?')).toBe('Acme: 9 to 5.');
});

test('a configuration error fails the run: an embedder without a vector index', async () => {
  process.env[STATIC_LOADER_CONFIG_ENV] = JSON.stringify(config({ embedder: { provider: 'bedrock', modelId: 'amazon.titan-embed-text-v2:0', dimensions: 256 } }));
  const r = await run();
  expect(r.error?.message).toMatch(/an embedder needs a vectorIndex/);
  expect(metricSum(r.metrics, M.STATIC_ANSWER_ERRORS, { [M.DIMENSION_REASON]: 'unavailable' })).toBe(1);
});

describe('path-style addressing', () => {
  test('is forced when an endpoint override is configured, and only then', () => {
    expect(s3ClientConfig({ AWS_ENDPOINT_URL_S3: 'http://localhost:9000' }).forcePathStyle).toBe(true);
    expect(s3ClientConfig({ AWS_ENDPOINT_URL: 'http://minio.internal:9000' }).forcePathStyle).toBe(true);
    expect(s3ClientConfig({}).forcePathStyle).toBeUndefined();
    expect(s3ClientConfig({ AWS_ENDPOINT_URL_S3: 'http://localhost:9000', AWS_IGNORE_CONFIGURED_ENDPOINT_URLS: 'true' }).forcePathStyle).toBeUndefined();
  });

  test('is needed: without it the client puts the bucket into the host name and the local server cannot be reached', async () => {
    const virtualHosted = new S3Client({ endpoint: s3.url, region: 'us-east-1', credentials: { accessKeyId: 'AKIDLOCALTEST', secretAccessKey: 'local-test-secret' }, maxAttempts: 1 });
    const pathStyle = new S3Client({ ...s3ClientConfig(), maxAttempts: 1 });
    try {
      s3.putObject(BUCKET, `${PREFIX}x.json`, '{}');
      await expect(virtualHosted.send(new ListObjectsV2Command({ Bucket: BUCKET }))).rejects.toThrow();
      const ok = await pathStyle.send(new ListObjectsV2Command({ Bucket: BUCKET }));
      expect(ok.Contents?.map((o) => o.Key)).toEqual([`${PREFIX}x.json`]);
    } finally {
      virtualHosted.destroy();
      pathStyle.destroy();
    }
  });
});
