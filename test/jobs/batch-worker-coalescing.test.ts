/**
 * Request coalescing in the batch worker: identical job requests in batches that run at the same
 * time in different worker containers (handler modules loaded apart, each with its own Valkey
 * client) share one model call through the lease in the cache, and every job still gets its own
 * stored result. Real local servers: dynalite (jobs and results), the local SQS server, a
 * redis-server (exact cache and leases), and the local Bedrock server, which holds each call a
 * moment so that the batches overlap.
 */
import Valkey from 'iovalkey';
import {
  callApi, callWorker, getEvent, jobsConfig, JOBS_TABLES, question, routerConfig, SMALL_MODEL, submitEvent,
  TENANT_A_USER_1, useEnvironment, type JobBody, type SubmitBody,
} from './harness';
import { ROUTER_CONFIG_ENV, type RouterRuntimeConfig } from '../../constructs/contract/runtime-config';
import type * as Worker from '../../lambdas/batch-worker/handler';
import type { JobMessage } from '../../lambdas/core/jobs/job-model';
import type * as JobsApi from '../../lambdas/jobs-api/handler';
import { Failures, LocalAwsServer, type ModelCallRequest } from '../support/aws-protocol-server';
import { TransactionalDynalite } from '../support/dynamodb-transactions';
import { trackIsolatedValkeyClients } from '../support/isolated-valkey';
import { RedisServer } from '../support/redis-server';
import { LocalSqsServer, type SentMessage } from '../support/sqs-protocol-server';

const WORKERS = 3;

let dynamo: TransactionalDynalite;
let sqs: LocalSqsServer;
let aws: LocalAwsServer;
let redis: RedisServer;
let admin: Valkey;
let queueUrl: string;
let api: typeof JobsApi.handler;
let env: ReturnType<typeof useEnvironment>;
let router: RouterRuntimeConfig;
const valkeyClients = new Set<Valkey>();

beforeAll(async () => {
  [dynamo, sqs, aws, redis] = await Promise.all([
    TransactionalDynalite.start(JOBS_TABLES), LocalSqsServer.start(), LocalAwsServer.start(), RedisServer.start(),
  ]);
  queueUrl = sqs.createQueue('jobs');
  admin = new Valkey({ host: redis.host, port: redis.port, maxRetriesPerRequest: 2 });
  admin.on('error', () => undefined);
  router = routerConfig({
    cache: { host: redis.host, port: redis.port, tls: false, keyPrefix: 'sai:', timeoutMs: 1_000 },
    exactCache: { ttlSeconds: 3_600 },
  });
  env = useEnvironment({ ...aws.env(), ...dynamo.env(), ...sqs.env() }, { router, jobs: jobsConfig(queueUrl) });
  const connect = Valkey.prototype.connect;
  jest.spyOn(Valkey.prototype, 'connect').mockImplementation(function (this: Valkey, ...args: Parameters<Valkey['connect']>) {
    if (this !== admin) valkeyClients.add(this);
    return connect.apply(this, args);
  });
  ({ handler: api } = jest.requireActual<typeof JobsApi>('../../lambdas/jobs-api/handler'));
});

let answers = 0;
beforeEach(async () => {
  aws.reset();
  sqs.reset();
  await admin.flushall();
  aws.setDefault({ reply: (r: ModelCallRequest) => `answer #${++answers} to: ${r.messages[r.messages.length - 1].text}` });
  aws.failNext(SMALL_MODEL, Failures.hang(300), 100);
});

afterAll(async () => {
  for (const c of valkeyClients) c.disconnect();
  admin?.disconnect();
  env?.restore();
  await Promise.all([dynamo?.stop(), sqs?.close(), aws?.close(), redis?.dispose()]);
});

/** `n` worker containers with this router configuration. */
function workers(c: RouterRuntimeConfig, n = WORKERS): Array<typeof Worker.handler> {
  process.env[ROUTER_CONFIG_ENV] = JSON.stringify(c);
  return Array.from({ length: n }, () => {
    let handler!: typeof Worker.handler;
    jest.isolateModules(() => {
      trackIsolatedValkeyClients(valkeyClients);
      ({ handler } = jest.requireActual<typeof Worker>('../../lambdas/batch-worker/handler'));
    });
    return handler;
  });
}

async function submit(requests: unknown[]): Promise<{ jobId: string; messages: SentMessage[] }> {
  const r = await callApi<SubmitBody>(api, env.captured, submitEvent({ body: { requests }, userArn: TENANT_A_USER_1 }));
  expect(r.status).toBe(202);
  const messages = sqs.messages(queueUrl).filter((m) => (JSON.parse(m.body) as JobMessage).jobId === r.body.jobId);
  return { jobId: r.body.jobId, messages };
}

async function status(jobId: string): Promise<JobBody> {
  const r = await callApi<JobBody>(api, env.captured, getEvent(jobId, { userArn: TENANT_A_USER_1, query: { limit: '100' } }));
  expect(r.status).toBe(200);
  return r.body;
}

/** Three jobs asking the same question, each delivered to its own worker container at the same time. */
async function concurrentBatches(handlers: Array<typeof Worker.handler>): Promise<{ jobs: JobBody[]; failed: number }> {
  const jobs = [];
  for (let i = 0; i < handlers.length; i++) jobs.push(await submit([question('What is your refund policy?')]));
  const responses = await Promise.all(jobs.map((job, i) => callWorker(handlers[i], env.captured, sqs.lambdaEvent(job.messages, 1))));
  return {
    jobs: await Promise.all(jobs.map((job) => status(job.jobId))),
    failed: responses.reduce((n, r) => n + r.response.batchItemFailures.length, 0),
  };
}

describe('the batch worker coalesces across containers', () => {
  test('3 batches in 3 containers with the same question: one model call, a stored result for every job', async () => {
    const { jobs, failed } = await concurrentBatches(workers({ ...router, coalescing: { maxWaitMs: 5_000 } }));
    expect(failed).toBe(0);
    expect(aws.callsOf(SMALL_MODEL)).toHaveLength(1);
    expect(jobs.map((j) => j.status)).toEqual(['succeeded', 'succeeded', 'succeeded']);
    const results = jobs.map((j) => j.result!);
    expect(new Set(results.map((r) => r.output?.text)).size).toBe(1);
    // Paid once: the coalesced results cost nothing.
    expect(results.map((r) => r.cache).sort()).toEqual(['coalesced', 'coalesced', 'miss']);
    expect(results.filter((r) => (r.costUsd ?? 0) > 0)).toHaveLength(1);
  }, 60_000);

  test('without coalescing, each container pays its own call', async () => {
    const { jobs, failed } = await concurrentBatches(workers(router));
    expect(failed).toBe(0);
    expect(aws.callsOf(SMALL_MODEL)).toHaveLength(3);
    expect(jobs.every((j) => j.status === 'succeeded')).toBe(true);
  }, 60_000);
});
