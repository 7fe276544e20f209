/**
 * The batch worker Lambda end to end, against real local servers through the real clients:
 * jobs are submitted with the jobs API handler (DynamoDB: dynalite behind the transactional proxy;
 * SQS: the local JSON-protocol server, which records the messages), the recorded messages are
 * delivered to the worker as the SQS event Lambda would deliver them, the worker answers them with
 * the router's ChatService (exact cache on a real Redis-protocol server; tiers on the local
 * Bedrock Converse server, HTTP/2), and the results are read back with `GET /v1/jobs/{id}`.
 * Metrics are read from the EMF lines Powertools writes to stdout.
 */
import { createHash, randomUUID } from 'node:crypto';
import Valkey from 'iovalkey';
import {
  callApi, callWorker, getEvent, jobsConfig, JOBS_TABLES, LARGE_MODEL, question, RESULTS_TABLE, routerConfig, SMALL_MODEL, submitEvent,
  TENANT_A, TENANT_A_USER_1, TENANT_A_USER_2, TENANT_B_USER_1, TIERS, useEnvironment, type JobBody, type SubmitBody,
} from './harness';
import { AiMetricNames as M } from '../../constructs/contract/metrics';
import { ROUTER_CONFIG_ENV, ROUTER_CONFIG_PARAMETER_ENV } from '../../constructs/contract/runtime-config';
import { DynamoDbJobStore } from '../../lambdas/adapters/dynamodb-job-store';
import type * as Worker from '../../lambdas/batch-worker/handler';
import type { JobMessage } from '../../lambdas/core/jobs/job-model';
import type * as JobsApi from '../../lambdas/jobs-api/handler';
import { Failures, LocalAwsServer, type ModelCallRequest, type RecordedCall } from '../support/aws-protocol-server';
import { DynamoErrors, TransactionalDynalite } from '../support/dynamodb-transactions';
import { metricSum, type EmfMetric } from '../support/lambda-harness';
import { RedisServer } from '../support/redis-server';
import { LocalSqsServer, type SentMessage } from '../support/sqs-protocol-server';

const MAX_RECEIVE_COUNT = 3;
const TIER_CONCURRENCY = 2;
const LARGE_FLEX_PRICES = { inputPricePer1k: 0.0004, outputPricePer1k: 0.002 };

let dynamo: TransactionalDynalite;
let sqs: LocalSqsServer;
let aws: LocalAwsServer;
let redis: RedisServer;
let admin: Valkey;
let queueUrl: string;
let store: DynamoDbJobStore;
let api: typeof JobsApi.handler;
let worker: typeof Worker.handler;
let env: ReturnType<typeof useEnvironment>;
/** The iovalkey clients the worker opened, so afterAll can close them. */
const valkeyClients = new Set<Valkey>();

beforeAll(async () => {
  [dynamo, sqs, aws, redis] = await Promise.all([
    TransactionalDynalite.start(JOBS_TABLES),
    LocalSqsServer.start(),
    LocalAwsServer.start(),
    RedisServer.start(),
  ]);
  queueUrl = sqs.createQueue('jobs');
  store = new DynamoDbJobStore(RESULTS_TABLE, dynamo.client());
  admin = new Valkey({ host: redis.host, port: redis.port, maxRetriesPerRequest: 2 });
  admin.on('error', () => undefined);
  const router = routerConfig({
    // The large tier is priced at Flex, so the pipeline's serviceTier 'flex' takes it there; the small one stays Standard.
    tiers: [TIERS[0], { ...TIERS[1], serviceTierPrices: { flex: LARGE_FLEX_PRICES } }],
    cache: { host: redis.host, port: redis.port, tls: false, keyPrefix: 'sai:', timeoutMs: 1_000 },
    exactCache: { ttlSeconds: 3_600 },
  });
  env = useEnvironment(
    { ...aws.env(), ...dynamo.env(), ...sqs.env() },
    { router, jobs: jobsConfig(queueUrl, { maxReceiveCount: MAX_RECEIVE_COUNT, tierConcurrency: TIER_CONCURRENCY, serviceTier: 'flex' }) },
  );
  // Not a mock: every connection goes through; it only remembers the clients to close them.
  const connect = Valkey.prototype.connect;
  jest.spyOn(Valkey.prototype, 'connect').mockImplementation(function (this: Valkey, ...args: Parameters<Valkey['connect']>) {
    valkeyClients.add(this);
    return connect.apply(this, args);
  });
  // The handlers read their configuration at module load: load them only now.
  ({ handler: api } = jest.requireActual<typeof JobsApi>('../../lambdas/jobs-api/handler'));
  ({ handler: worker } = jest.requireActual<typeof Worker>('../../lambdas/batch-worker/handler'));
});

let answers = 0;
beforeEach(async () => {
  aws.reset();
  sqs.reset();
  await admin.flushall();
  // Every answer is numbered: two calls never give the same text, so a shared answer shows.
  aws.setDefault({ reply: (r: ModelCallRequest) => `answer #${++answers} to: ${r.messages[r.messages.length - 1].text}` });
});

afterAll(async () => {
  await Promise.all([...new Set([...valkeyClients, admin])].map(async (client) => {
    if (!client || client.status === 'end') return;
    const ended = new Promise<void>((resolve) => client.once('end', () => resolve()));
    client.disconnect();
    await ended;
  }));
  env?.restore();
  await Promise.all([dynamo?.stop(), sqs?.close(), aws?.close(), redis?.dispose()]);
});

/** Submits a job through the jobs API; returns its id and its messages as SQS recorded them (by index). */
async function submit(requests: unknown[], userArn = TENANT_A_USER_1): Promise<{ jobId: string; messages: SentMessage[] }> {
  const r = await callApi<SubmitBody>(api, env.captured, submitEvent({ body: { requests }, userArn }));
  expect(r.status).toBe(202);
  const messages = sqs.messages(queueUrl)
    .filter((m) => (JSON.parse(m.body) as JobMessage).jobId === r.body.jobId)
    .sort((a, b) => (JSON.parse(a.body) as JobMessage).index - (JSON.parse(b.body) as JobMessage).index);
  expect(messages).toHaveLength(requests.length);
  return { jobId: r.body.jobId, messages };
}

async function status(jobId: string, userArn = TENANT_A_USER_1): Promise<JobBody> {
  const r = await callApi<JobBody>(api, env.captured, getEvent(jobId, { userArn, query: { limit: '100' } }));
  expect(r.status).toBe(200);
  return r.body;
}

/** Delivers messages to the worker as one batch with this ApproximateReceiveCount. */
async function deliver(messages: SentMessage[], receiveCount = 1): Promise<{ failed: string[]; metrics: EmfMetric[] }> {
  const { response, metrics } = await callWorker(worker, env.captured, sqs.lambdaEvent(messages, receiveCount));
  return { failed: response.batchItemFailures.map((f) => f.itemIdentifier).sort(), metrics };
}

/** A message as if SQS had received it (for bodies the jobs API would never send). */
function rawMessage(body: string): SentMessage {
  return { queueUrl, messageId: randomUUID(), body, md5OfBody: createHash('md5').update(body).digest('hex'), sentAt: Date.now(), via: 'SendMessage' };
}

const texts = (job: JobBody): Array<string | undefined> => (job.results ?? []).map((r) => r.output?.text);

describe('the service tier of the queue (serviceTier flex)', () => {
  test('a tier priced at Flex is called at Flex and its result costs the Flex price; the others at their own tier', async () => {
    aws.setModel(LARGE_MODEL, { reply: 'a long considered answer', usage: { inputTokens: 1_000, outputTokens: 1_000 } });
    const job = await submit([question('Compare your two savings accounts', { tier: 'large' }), question('Open hours?', { tier: 'small' })]);
    expect((await deliver(job.messages)).failed).toEqual([]);

    expect((aws.callsOf(LARGE_MODEL)[0].body as { serviceTier?: unknown }).serviceTier).toEqual({ type: 'flex' });
    expect(aws.callsOf(SMALL_MODEL)[0].body).not.toHaveProperty('serviceTier');
    const [large] = (await status(job.jobId)).results!;
    // 1,000 × 0.0004 / 1,000 + 1,000 × 0.002 / 1,000, where Standard would be 0.0048.
    expect(large).toMatchObject({ tier: 'large', costUsd: 0.0024 });
  });
});

describe('deduplication within a batch', () => {
  test('5 identical requests from 2 jobs of one tenant + 2 distinct: 3 model calls, every item answered', async () => {
    // "Identical" after the exact cache's normalization: case, spacing, a trailing "?".
    const job1 = await submit(
      [question('What is your refund policy?'), question('  what is your REFUND policy'), question('Do you ship to Canada?'), question('What is your refund policy?')],
      TENANT_A_USER_1,
    );
    const job2 = await submit([question('What is your refund policy?'), question('what is your refund policy?'), question('Can I pay by invoice?')], TENANT_A_USER_2);
    const batch = [job2.messages[2], job1.messages[0], job2.messages[0], job1.messages[1], job1.messages[2], job2.messages[1], job1.messages[3]];

    const { failed, metrics } = await deliver(batch);
    expect(failed).toEqual([]);
    // 7 requests, 3 distinct: 3 model calls (the exact cache was empty).
    expect(aws.callsOf()).toHaveLength(3);
    expect(aws.callsOf().map((c) => c.request.messages[0].text).sort()).toEqual(['Can I pay by invoice?', 'Do you ship to Canada?', expect.stringMatching(/refund policy/i)]);
    expect(metricSum(metrics, M.BATCH_SIZE)).toBe(7);
    expect(metricSum(metrics, M.DEDUPLICATED_REQUESTS)).toBe(4);
    expect(metricSum(metrics, M.RESULTS_WRITTEN)).toBe(7);
    expect(metricSum(metrics, M.MODEL_INVOCATIONS, { [M.DIMENSION_TIER]: 'small' })).toBe(3);

    const [r1, r2] = [await status(job1.jobId), await status(job2.jobId, TENANT_A_USER_2)];
    expect([r1.status, r2.status]).toEqual(['succeeded', 'succeeded']);
    const policy = aws.callsOf().find((c) => /refund policy/i.test(c.request.messages[0].text))!.response!.text;
    expect(texts(r1)).toEqual([policy, policy, expect.stringMatching(/Canada/), policy]);
    expect(texts(r2)).toEqual([policy, policy, expect.stringMatching(/invoice/)]);
    // The call is paid once: one of the five carries its cost, the others 0.
    const policyResults = [...r1.results!.filter((_, i) => i !== 2), ...r2.results!.filter((_, i) => i !== 2)];
    expect(policyResults.filter((r) => (r.costUsd ?? 0) > 0)).toHaveLength(1);
    expect(policyResults.every((r) => r.cache === 'miss' && r.tier === 'small')).toBe(true);
  });

  test('identical requests of two tenants are never shared: separate calls, then each tenant\'s own cache entry', async () => {
    const a = await submit([question('How do I reset my password?')], TENANT_A_USER_1);
    const b = await submit([question('How do I reset my password?')], TENANT_B_USER_1);
    const first = await deliver([a.messages[0], b.messages[0]]);
    expect(first.failed).toEqual([]);
    expect(aws.callsOf(SMALL_MODEL)).toHaveLength(2);
    expect(metricSum(first.metrics, M.DEDUPLICATED_REQUESTS)).toBe(0);
    const [textA, textB] = [(await status(a.jobId)).result?.output?.text, (await status(b.jobId, TENANT_B_USER_1)).result?.output?.text];
    expect(textA).toMatch(/^answer #\d+/);
    expect(textB).toMatch(/^answer #\d+/);
    expect(textA).not.toBe(textB);

    // The worker wrote the exact cache: each tenant now gets its own answer back, without a call.
    const a2 = await submit([question('how do I reset my password')], TENANT_A_USER_2);
    const b2 = await submit([question('How do I reset my password?')], TENANT_B_USER_1);
    const second = await deliver([b2.messages[0], a2.messages[0]]);
    expect(second.failed).toEqual([]);
    expect(aws.callsOf(SMALL_MODEL)).toHaveLength(2);
    const [resA, resB] = [(await status(a2.jobId, TENANT_A_USER_2)).result, (await status(b2.jobId, TENANT_B_USER_1)).result];
    expect(resA).toMatchObject({ cache: 'exact', output: { text: textA }, costUsd: 0 });
    expect(resB).toMatchObject({ cache: 'exact', output: { text: textB }, costUsd: 0 });
  });
});

describe('deduplication keeps apart what deserves different answers', () => {
  test('code questions that differ only in case or indentation are two requests', async () => {
    const py = (indent: string) => `What does this print?\n${'`'.repeat(3)}\nfor x in [1, 2]:\n${indent}y = x\nprint(y)\n${'`'.repeat(3)}`;
    const job = await submit([
      question('Why does `const Foo = 1; console.log(foo)` throw?'),
      question('Why does `const foo = 1; console.log(foo)` throw?'),
      question(py('    ')),
      question(py('  ')),
    ]);
    const { failed, metrics } = await deliver(job.messages);
    expect(failed).toEqual([]);
    expect(aws.callsOf()).toHaveLength(4);
    expect(metricSum(metrics, M.DEDUPLICATED_REQUESTS)).toBe(0);
    expect(new Set(texts(await status(job.jobId))).size).toBe(4);
  });

  test("a question that carries personal data is shared with its own user's requests only", async () => {
    const q = 'my name is alice and my diagnosis is diabetes, what should I eat?';
    const alice = await submit([question(q), question(q)], TENANT_A_USER_1);
    const bob = await submit([question(q)], TENANT_A_USER_2);
    const { failed, metrics } = await deliver([...alice.messages, ...bob.messages]);
    expect(failed).toEqual([]);
    expect(aws.callsOf()).toHaveLength(2);
    expect(metricSum(metrics, M.DEDUPLICATED_REQUESTS)).toBe(1);
    const [a, b] = [texts(await status(alice.jobId)), texts(await status(bob.jobId, TENANT_A_USER_2))];
    expect(a[0]).toBe(a[1]);
    expect(b[0]).not.toBe(a[0]);

    // Nor later from the exact cache the worker wrote: carol asks the same and gets her own answer.
    const carol = await submit([question(q)], `arn:aws:sts::${TENANT_A.split(':')[4]}:assumed-role/TenantA/user-3`);
    await deliver(carol.messages);
    expect(aws.callsOf()).toHaveLength(3);
  });

  test('identical questions with personal data from a caller without a user id are not shared', async () => {
    const q = 'my name is alice and my diagnosis is diabetes, what should I eat?';
    const iamUser = `arn:aws:iam::${TENANT_A.split(':')[4]}:user/ci-bot`;
    const job = await submit([question(q), question(q)], iamUser);
    const { failed, metrics } = await deliver(job.messages);
    expect(failed).toEqual([]);
    expect(aws.callsOf()).toHaveLength(2);
    expect(metricSum(metrics, M.DEDUPLICATED_REQUESTS)).toBe(0);
  });
});

describe('failures', () => {
  test('poison messages are reported in batchItemFailures; their neighbours are answered and stored', async () => {
    const job = await submit([question('first good one'), question('second good one')]);
    const notJson = rawMessage('{"v":1,"jobId":');
    const unknownVersion = rawMessage(JSON.stringify({ v: 2, jobId: job.jobId, tenantId: TENANT_A, index: 0, request: question('x') }));
    const unknownJob = rawMessage(JSON.stringify({ v: 1, jobId: randomUUID(), tenantId: TENANT_A, index: 0, request: question('orphan') }));
    const otherTenant = rawMessage(JSON.stringify({ v: 1, jobId: job.jobId, tenantId: 'someone-else', index: 1, request: question('x') }));
    const deep = rawMessage(`{"v": ${'['.repeat(5_000)}${']'.repeat(5_000)}}`);

    const { failed, metrics } = await deliver([notJson, job.messages[0], unknownVersion, unknownJob, job.messages[1], otherTenant, deep]);
    expect(failed).toEqual([notJson, unknownVersion, unknownJob, otherTenant, deep].map((m) => m.messageId).sort());
    expect(metricSum(metrics, M.BATCH_FAILURES, { [M.DIMENSION_FAILURE_KIND]: 'poison' })).toBe(5);
    expect(metricSum(metrics, M.RESULTS_WRITTEN)).toBe(2);
    expect(aws.callsOf()).toHaveLength(2);
    const done = await status(job.jobId);
    expect(done.status).toBe('succeeded');
    expect(texts(done)).toEqual([expect.stringMatching(/first good one/), expect.stringMatching(/second good one/)]);
  });

  test('a result is stored before its message is acknowledged: a failed write leaves the record to a retry, counted once', async () => {
    const x = await submit([question('Where is my parcel?'), question('Can I change the address?')]);
    const y = await submit([question('Is there a student discount?')]);
    const pkX = DynamoDbJobStore.partitionKey(TENANT_A, x.jobId);
    const stop = dynamo.failWhen((operation, body) => {
      const items = (body.TransactItems ?? []) as Array<{ Put?: { Item?: { pk?: { S?: string } } } }>;
      return operation === 'TransactWriteItems' && items.some((i) => i.Put?.Item?.pk?.S === pkX) ? DynamoErrors.internal() : undefined;
    });
    let first: Awaited<ReturnType<typeof deliver>>;
    try {
      first = await deliver([x.messages[0], y.messages[0]]);
    } finally {
      stop();
    }
    expect(first.failed).toEqual([x.messages[0].messageId]);
    expect(metricSum(first.metrics, M.BATCH_FAILURES, { [M.DIMENSION_FAILURE_KIND]: 'store' })).toBe(1);
    expect(metricSum(first.metrics, M.RESULTS_WRITTEN)).toBe(1);
    // Nothing of x was counted; it is running (started), its neighbour's job is done.
    expect(await status(x.jobId)).toMatchObject({ status: 'running', succeeded: 0, failed: 0, startedAt: expect.any(String) });
    expect((await status(y.jobId)).status).toBe('succeeded');
    expect(aws.callsOf()).toHaveLength(2);

    // Redelivered: written once, from the exact cache the first attempt filled (no second model call).
    const second = await deliver([x.messages[0]], 2);
    expect(second.failed).toEqual([]);
    expect(metricSum(second.metrics, M.RESULTS_WRITTEN)).toBe(1);
    expect(aws.callsOf()).toHaveLength(2);
    // Delivered once more (SQS is at-least-once): a duplicate, not counted again.
    const third = await deliver([x.messages[0]], 3);
    expect(third.failed).toEqual([]);
    expect(metricSum(third.metrics, M.RESULTS_WRITTEN)).toBe(0);
    expect(await status(x.jobId)).toMatchObject({ status: 'running', succeeded: 1, failed: 0 });

    await deliver([x.messages[1]]);
    const done = await status(x.jobId);
    expect(done).toMatchObject({ status: 'succeeded', succeeded: 2, failed: 0 });
    expect(done.results?.[0]).toMatchObject({ cache: 'exact', output: { text: expect.stringMatching(/Where is my parcel/) } });
  });

  test('every tier failing: retried until the receive count reaches maxReceiveCount, then a failed result', async () => {
    const job = await submit([question('Why was my card declined?')]);
    aws.failNext(SMALL_MODEL, Failures.internal(), MAX_RECEIVE_COUNT);
    aws.failNext(LARGE_MODEL, Failures.serviceUnavailable(), MAX_RECEIVE_COUNT);
    expect((await status(job.jobId)).status).toBe('queued');

    for (let receive = 1; receive < MAX_RECEIVE_COUNT; receive++) {
      const r = await deliver(job.messages, receive);
      expect(r.failed).toEqual([job.messages[0].messageId]);
      expect(metricSum(r.metrics, M.BATCH_FAILURES, { [M.DIMENSION_FAILURE_KIND]: 'model' })).toBe(1);
      expect(metricSum(r.metrics, M.RESULTS_WRITTEN)).toBe(0);
      expect(await status(job.jobId)).toMatchObject({ status: 'running', succeeded: 0, failed: 0 });
    }
    const last = await deliver(job.messages, MAX_RECEIVE_COUNT);
    expect(last.failed).toEqual([]);
    expect(metricSum(last.metrics, M.RESULTS_WRITTEN)).toBe(1);
    // Each attempt tried both tiers (fallback): 2 calls per receive.
    expect(aws.callsOf(SMALL_MODEL)).toHaveLength(MAX_RECEIVE_COUNT);
    expect(aws.callsOf(LARGE_MODEL)).toHaveLength(MAX_RECEIVE_COUNT);
    const done = await status(job.jobId);
    expect(done).toMatchObject({ status: 'failed', succeeded: 0, failed: 1, error: { code: 'items-failed' } });
    expect(done.result).toMatchObject({ index: 0, status: 'failed', error: { code: 'unavailable', message: expect.stringMatching(/No model tier could answer.*Gave up after 3 attempts/) } });
  });

  test('the router configuration unreadable (its SSM parameter missing): retried, then a failed result, so the job still ends', async () => {
    const job = await submit([question('Can I change my PIN?'), question('Where is my card?')]);
    const inline = process.env[ROUTER_CONFIG_ENV];
    delete process.env[ROUTER_CONFIG_ENV];
    process.env[ROUTER_CONFIG_PARAMETER_ENV] = 'CFN-RouterRuntimeConfig-Missing';
    try {
      // A new container: the configuration is read at its first batch.
      let unconfigured!: typeof Worker.handler;
      jest.isolateModules(() => {
        ({ handler: unconfigured } = jest.requireActual<typeof Worker>('../../lambdas/batch-worker/handler'));
      });
      const deliverTo = async (receiveCount: number) => {
        const { response } = await callWorker(unconfigured, env.captured, sqs.lambdaEvent(job.messages, receiveCount));
        return response.batchItemFailures.map((f) => f.itemIdentifier).sort();
      };
      const ids = job.messages.map((m) => m.messageId).sort();
      for (let receive = 1; receive < MAX_RECEIVE_COUNT; receive++) {
        expect(await deliverTo(receive)).toEqual(ids);
        expect(await status(job.jobId)).toMatchObject({ status: 'running', succeeded: 0, failed: 0 });
      }
      expect(await deliverTo(MAX_RECEIVE_COUNT)).toEqual([]);
      expect(aws.callsOf(SMALL_MODEL)).toHaveLength(0);
      const done = await status(job.jobId);
      expect(done).toMatchObject({ status: 'failed', succeeded: 0, failed: 2 });
      for (const result of done.results ?? []) {
        expect(result).toMatchObject({ status: 'failed', error: { code: 'unavailable', message: expect.stringMatching(/router's configuration could not be read.*Gave up after 3 attempts/) } });
      }
    } finally {
      delete process.env[ROUTER_CONFIG_PARAMETER_ENV];
      process.env[ROUTER_CONFIG_ENV] = inline;
    }
  });

  test('a request a model rejects, or one no longer valid, fails at once without a retry', async () => {
    const job = await submit([question('Please rephrase this exactly')]);
    aws.failNext(SMALL_MODEL, Failures.validation('The text field in the ContentBlock object at messages.0.content.0 is blank.'));
    // A message whose request the current configuration refuses (a tier that no longer exists).
    const staleJobId = randomUUID();
    await store.createJob({ jobId: staleJobId, tenantId: TENANT_A, mode: 'queue', items: 1, succeeded: 0, failed: 0, createdAt: Date.now() }, 3_600);
    const staleMessage = rawMessage(JSON.stringify({ v: 1, jobId: staleJobId, tenantId: TENANT_A, index: 0, request: question('hello', { tier: 'retired' }) } satisfies JobMessage));

    const r = await deliver([job.messages[0], staleMessage]);
    expect(r.failed).toEqual([]);
    expect(aws.callsOf()).toHaveLength(1);
    expect((await status(job.jobId)).result).toMatchObject({ status: 'failed', error: { code: 'model-rejected', message: expect.stringMatching(/ContentBlock object at messages\.0\.content\.0 is blank/) } });
    expect((await status(staleJobId)).result).toMatchObject({ status: 'failed', error: { code: 'invalid', message: expect.stringMatching(/request\.tier: unknown tier "retired"/) } });
  });
});

describe('redeliveries', () => {
  test('a message whose item already has a result is not answered again while its job runs: no model call, nothing counted twice', async () => {
    const job = await submit([question('What does the premium plan include?', { session: 'plans' }), question('Is there a free trial?')]);
    const first = await deliver([job.messages[0]]);
    expect(first.failed).toEqual([]);
    expect(aws.callsOf()).toHaveLength(1);
    const partial = await status(job.jobId);
    expect(partial).toMatchObject({ status: 'running', succeeded: 1, failed: 0 });
    // The cache is gone (say, evicted): without the check, each redelivery would be a model call.
    await admin.flushall();

    // The answered message comes back (its batch outlived the worker's timeout after the write),
    // twice in one batch, while the job still waits for its other item.
    const again = await deliver([job.messages[0], job.messages[0]], 2);
    expect(again.failed).toEqual([]);
    expect(metricSum(again.metrics, M.RESULTS_WRITTEN)).toBe(0);
    expect(metricSum(again.metrics, M.MODEL_INVOCATIONS, { [M.DIMENSION_TIER]: 'small' })).toBe(0);
    expect(aws.callsOf()).toHaveLength(1);
    expect(await status(job.jobId)).toMatchObject({ status: 'running', succeeded: 1, failed: 0 });

    // The other item is answered as usual, once.
    const rest = await deliver([job.messages[1]]);
    expect(metricSum(rest.metrics, M.RESULTS_WRITTEN)).toBe(1);
    expect(aws.callsOf()).toHaveLength(2);
    expect(await status(job.jobId)).toMatchObject({ status: 'succeeded', succeeded: 2, failed: 0 });
  });

  test('messages of a job that has ended are skipped', async () => {
    const job = await submit([question('Can I change my delivery address?')]);
    await deliver(job.messages);
    const answered = await status(job.jobId);
    expect(answered).toMatchObject({ status: 'succeeded', succeeded: 1 });
    await admin.flushall();
    const again = await deliver(job.messages, 2);
    expect(again.failed).toEqual([]);
    expect(metricSum(again.metrics, M.RESULTS_WRITTEN)).toBe(0);
    expect(aws.callsOf()).toHaveLength(1);
    expect(texts(await status(job.jobId))).toEqual(texts(answered));
  });
});

describe('the last receive (the dead-letter queue comes next)', () => {
  test('the job store failing before the answer: retried; on the last receive a failed result is written best-effort, and the message is still reported', async () => {
    const job = await submit([question('Where is my refund?')]);
    const pk = DynamoDbJobStore.partitionKey(TENANT_A, job.jobId);
    // Marking the job started fails (UpdateItem); the result's transaction goes through.
    const stop = dynamo.failWhen((operation, body) => {
      const key = body.Key as { pk?: { S?: string } } | undefined;
      return operation === 'UpdateItem' && key?.pk?.S === pk ? DynamoErrors.internal() : undefined;
    });
    let early: Awaited<ReturnType<typeof deliver>>;
    let last: Awaited<ReturnType<typeof deliver>>;
    try {
      early = await deliver(job.messages, MAX_RECEIVE_COUNT - 1);
      expect(await status(job.jobId)).toMatchObject({ status: 'queued', succeeded: 0, failed: 0 });
      last = await deliver(job.messages, MAX_RECEIVE_COUNT);
    } finally {
      stop();
    }
    expect(early.failed).toEqual([job.messages[0].messageId]);
    expect(metricSum(early.metrics, M.RESULTS_WRITTEN)).toBe(0);
    // Reported (so it lands in the DLQ, where the alarm sees it), and the job ends.
    expect(last.failed).toEqual([job.messages[0].messageId]);
    expect(metricSum(last.metrics, M.BATCH_FAILURES, { [M.DIMENSION_FAILURE_KIND]: 'store' })).toBe(1);
    expect(metricSum(last.metrics, M.RESULTS_WRITTEN)).toBe(1);
    expect(aws.callsOf()).toHaveLength(0);
    const done = await status(job.jobId);
    expect(done).toMatchObject({ status: 'failed', succeeded: 0, failed: 1 });
    expect(done.result).toMatchObject({
      index: 0,
      status: 'failed',
      error: { code: 'unavailable', message: expect.stringMatching(/could not be marked started.*Gave up after 3 attempts/) },
    });

    // Redriven from the DLQ later: nothing to do, nothing counted again.
    const redriven = await deliver(job.messages, 1);
    expect(redriven.failed).toEqual([]);
    expect(aws.callsOf()).toHaveLength(0);
    expect(await status(job.jobId)).toMatchObject({ status: 'failed', succeeded: 0, failed: 1 });
  });

  test('no second write when the result write itself failed, and none for poison', async () => {
    const job = await submit([question('Can I pause my subscription?')]);
    const pk = DynamoDbJobStore.partitionKey(TENANT_A, job.jobId);
    const puts: string[] = [];
    const stop = dynamo.failWhen((operation, body) => {
      const items = (body.TransactItems ?? []) as Array<{ Put?: { Item?: { pk?: { S?: string }; status?: { S?: string } } } }>;
      const put = items.find((i) => i.Put?.Item?.pk?.S === pk)?.Put?.Item;
      if (operation !== 'TransactWriteItems' || !put) return undefined;
      puts.push(put.status?.S ?? '');
      return DynamoErrors.internal();
    });
    const unknownJob = rawMessage(JSON.stringify({ v: 1, jobId: randomUUID(), tenantId: TENANT_A, index: 0, request: question('orphan') } satisfies JobMessage));
    let last: Awaited<ReturnType<typeof deliver>>;
    const writes = dynamo.callsOf('TransactWriteItems').length;
    try {
      last = await deliver([job.messages[0], unknownJob], MAX_RECEIVE_COUNT);
    } finally {
      stop();
    }
    expect(last.failed).toEqual([job.messages[0].messageId, unknownJob.messageId].sort());
    // Only the answer's own write (with the SDK's retries): no failed result written after it.
    expect(puts.length).toBeGreaterThan(0);
    expect(new Set(puts)).toEqual(new Set(['succeeded']));
    // The poison message wrote nothing either.
    expect(dynamo.callsOf('TransactWriteItems').length - writes).toBe(puts.length);
    expect(await status(job.jobId)).toMatchObject({ status: 'running', succeeded: 0, failed: 0 });
  });
});

describe('concurrency and status', () => {
  test(`a tier never has more than tierConcurrency (${TIER_CONCURRENCY}) calls in flight`, async () => {
    const job = await submit(Array.from({ length: 6 }, (_, i) => question(`distinct question number ${i}`)));
    // Each call is held a while by the server, so calls overlap if they can.
    aws.failNext(SMALL_MODEL, Failures.hang(150), 6);
    // Counted where the calls arrive: a call is in flight from its arrival until the server answers it.
    let peak = 0;
    const calls = aws.calls;
    const push = calls.push.bind(calls);
    const spy = jest.spyOn(calls, 'push').mockImplementation((...items: RecordedCall[]) => {
      const inFlight = calls.filter((c) => c.status === undefined && c.outcome === 'ok').length + items.length;
      peak = Math.max(peak, inFlight);
      return push(...items);
    });
    let r: Awaited<ReturnType<typeof deliver>>;
    try {
      r = await deliver(job.messages);
    } finally {
      spy.mockRestore();
    }
    expect(r.failed).toEqual([]);
    expect(aws.callsOf(SMALL_MODEL)).toHaveLength(6);
    expect(peak).toBe(TIER_CONCURRENCY);
    expect((await status(job.jobId)).status).toBe('succeeded');
  });

  test('status goes queued → running → succeeded through GET', async () => {
    const job = await submit([question('Do you have gift cards?'), question('Can I exchange a gift?')]);
    const queued = await status(job.jobId);
    expect(queued).toMatchObject({ status: 'queued', succeeded: 0 });
    expect(queued.startedAt).toBeUndefined();

    await deliver([job.messages[1]]);
    const running = await status(job.jobId);
    expect(running).toMatchObject({ status: 'running', succeeded: 1, failed: 0, startedAt: expect.any(String) });
    expect(running.results).toBeUndefined();

    await deliver([job.messages[0]]);
    const done = await status(job.jobId);
    expect(done).toMatchObject({ status: 'succeeded', succeeded: 2, failed: 0 });
    expect(done.startedAt).toBe(running.startedAt);
    expect(done.results?.map((x) => [x.index, x.status, x.tier, x.cache])).toEqual([[0, 'succeeded', 'small', 'miss'], [1, 'succeeded', 'small', 'miss']]);
    expect(done.error).toBeUndefined();
  });
});
