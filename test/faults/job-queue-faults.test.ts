/**
 * Faults of the batch pipeline, with the queue doing what SQS does: jobs are submitted through
 * the jobs API handler (DynamoDB: dynalite behind the transactional proxy; SQS: the local server,
 * which holds the messages), and the batch worker is fed by an event source mapping that receives
 * from the queue, deletes what the worker did not report failed, and leaves the rest to come back
 * after the visibility timeout; the queue's redrive policy moves a message to its dead-letter
 * queue after maxReceiveCount receives.
 * - the results table write failing: the messages are reported, stay on the queue, come back, and
 *   complete once the table accepts writes again (each result written once, no second model call);
 * - a poison message: reported on each receive, moved to the DLQ after maxReceiveCount receives,
 *   while the rest of its batch succeeds at the first receive.
 * Each scenario counts job items in and results out: none lost, none written twice.
 */
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import Valkey from 'iovalkey';
import { EventSourceMapping, type PollResult } from './event-source-mapping';
import { AiMetricNames as M } from '../../constructs/contract/metrics';
import { DynamoDbJobStore } from '../../lambdas/adapters/dynamodb-job-store';
import type * as Worker from '../../lambdas/batch-worker/handler';
import type { JobMessage } from '../../lambdas/core/jobs/job-model';
import type * as JobsApi from '../../lambdas/jobs-api/handler';
import {
  callApi, getEvent, jobsConfig, JOBS_TABLES, question, routerConfig, submitEvent, TENANT_A, TENANT_A_USER_1, useEnvironment,
  type JobBody, type SubmitBody,
} from '../jobs/harness';
import { LocalAwsServer, type ModelCallRequest } from '../support/aws-protocol-server';
import { DynamoErrors, TransactionalDynalite } from '../support/dynamodb-transactions';
import { lambdaContext, metricSum, parseEmf, type EmfMetric } from '../support/lambda-harness';
import { RedisServer } from '../support/redis-server';
import { LocalSqsServer } from '../support/sqs-protocol-server';

const MAX_RECEIVE_COUNT = 3;

let dynamo: TransactionalDynalite;
let sqs: LocalSqsServer;
let aws: LocalAwsServer;
let redis: RedisServer;
let queueUrl: string;
let dlqUrl: string;
let api: typeof JobsApi.handler;
let worker: typeof Worker.handler;
let env: ReturnType<typeof useEnvironment>;
let mapping: EventSourceMapping;
/** The EMF metrics of every worker invocation of the current test. */
let workerMetrics: EmfMetric[] = [];
const valkeyClients = new Set<Valkey>();

beforeAll(async () => {
  [dynamo, sqs, aws, redis] = await Promise.all([
    TransactionalDynalite.start(JOBS_TABLES),
    LocalSqsServer.start(),
    LocalAwsServer.start(),
    RedisServer.start(),
  ]);
  dlqUrl = sqs.createQueue('jobs-dlq');
  queueUrl = sqs.createQueue('jobs', { redrive: { deadLetterQueueUrl: dlqUrl, maxReceiveCount: MAX_RECEIVE_COUNT } });
  const router = routerConfig({
    cache: { host: redis.host, port: redis.port, tls: false, keyPrefix: 'sai:', timeoutMs: 1_000 },
    exactCache: { ttlSeconds: 3_600 },
  });
  env = useEnvironment(
    { ...aws.env(), ...dynamo.env(), ...sqs.env() },
    { router, jobs: jobsConfig(queueUrl, { maxReceiveCount: MAX_RECEIVE_COUNT }) },
  );
  const connect = Valkey.prototype.connect;
  jest.spyOn(Valkey.prototype, 'connect').mockImplementation(function (this: Valkey, ...args: Parameters<Valkey['connect']>) {
    valkeyClients.add(this);
    return connect.apply(this, args);
  });
  ({ handler: api } = jest.requireActual<typeof JobsApi>('../../lambdas/jobs-api/handler'));
  ({ handler: worker } = jest.requireActual<typeof Worker>('../../lambdas/batch-worker/handler'));
  mapping = new EventSourceMapping(sqs.url, queueUrl, async (event, context) => {
    env.captured.splice(0);
    const response = await worker(event, context);
    workerMetrics.push(...parseEmf(env.captured.splice(0)));
    return response;
  }, () => lambdaContext('batch-worker'));
});

let answers = 0;
beforeEach(() => {
  aws.reset();
  sqs.reset();
  workerMetrics = [];
  // Every answer is numbered: a second model call for one item would show.
  aws.setDefault({ reply: (r: ModelCallRequest) => `answer #${++answers} to: ${r.messages[r.messages.length - 1].text}` });
});

afterAll(async () => {
  mapping?.close();
  await Promise.all([...valkeyClients].map(async (client) => {
    if (client.status === 'end') return;
    const ended = new Promise<void>((resolve) => client.once('end', () => resolve()));
    client.disconnect();
    await ended;
  }));
  env?.restore();
  await Promise.all([dynamo?.stop(), sqs?.close(), aws?.close(), redis?.dispose()]);
});

async function submit(texts: string[]): Promise<string> {
  const event = submitEvent({ body: { requests: texts.map((t) => question(t)) }, userArn: TENANT_A_USER_1 });
  const r = await callApi<SubmitBody>(api, env.captured, event);
  expect(r.status).toBe(202);
  return r.body.jobId;
}

async function status(jobId: string): Promise<JobBody> {
  const r = await callApi<JobBody>(api, env.captured, getEvent(jobId, { userArn: TENANT_A_USER_1, query: { limit: '100' } }));
  expect(r.status).toBe(200);
  return r.body;
}

/** Polls until the queue has nothing visible; returns each batch. */
async function drain(): Promise<PollResult[]> {
  const batches: PollResult[] = [];
  for (let r = await mapping.pollOnce(); r; r = await mapping.pollOnce()) batches.push(r);
  return batches;
}

const jobItems = (jobId: string) => sqs.queueContents(queueUrl).filter((m) => (JSON.parse(m.body) as JobMessage).jobId === jobId);

describe('the results table write failing', () => {
  test('the messages are reported and stay on the queue; redelivered, they complete once the table is back: each result written once', async () => {
    const texts = ['Where is my parcel?', 'Can I change the address?', 'Do you ship on Sundays?'];
    const jobId = await submit(texts);
    expect(jobItems(jobId)).toHaveLength(3);
    const pk = DynamoDbJobStore.partitionKey(TENANT_A, jobId);
    // Every result write of this job fails (a results table refusing writes).
    const stop = dynamo.failWhen((operation, body) => {
      const items = (body.TransactItems ?? []) as Array<{ Put?: { Item?: { pk?: { S?: string } } } }>;
      return operation === 'TransactWriteItems' && items.some((i) => i.Put?.Item?.pk?.S === pk) ? DynamoErrors.internal() : undefined;
    });
    try {
      for (let receive = 1; receive < MAX_RECEIVE_COUNT; receive++) {
        const batches = await drain();
        expect(batches).toHaveLength(1);
        expect(batches[0].failed.sort()).toEqual(batches[0].delivered.sort());
        expect(Object.values(batches[0].receiveCounts)).toEqual([receive, receive, receive]);
        // Not dropped: all three are still on the queue (in flight until their visibility timeout).
        expect(jobItems(jobId).map((m) => m.receiveCount)).toEqual([receive, receive, receive]);
        expect(await status(jobId)).toMatchObject({ status: 'running', succeeded: 0, failed: 0 });
        sqs.elapseVisibilityTimeout(queueUrl);
      }
    } finally {
      stop();
    }
    expect(metricSum(workerMetrics, M.BATCH_FAILURES, { [M.DIMENSION_FAILURE_KIND]: 'store' })).toBe(3 * (MAX_RECEIVE_COUNT - 1));
    expect(metricSum(workerMetrics, M.RESULTS_WRITTEN)).toBe(0);

    // The table accepts writes again: the last receive completes every item.
    const last = await drain();
    expect(last).toHaveLength(1);
    expect(last[0].failed).toEqual([]);
    expect(Object.values(last[0].receiveCounts)).toEqual([MAX_RECEIVE_COUNT, MAX_RECEIVE_COUNT, MAX_RECEIVE_COUNT]);
    expect(jobItems(jobId)).toEqual([]);
    expect(sqs.queueContents(dlqUrl)).toEqual([]);

    // 3 items in, 3 results out, each written once; the model was paid once per item (the retries
    // were answered from the exact cache the first attempt filled).
    expect(metricSum(workerMetrics, M.RESULTS_WRITTEN)).toBe(3);
    const done = await status(jobId);
    expect(done).toMatchObject({ status: 'succeeded', succeeded: 3, failed: 0 });
    expect((done.results ?? []).map((r) => r.output?.text)).toEqual(texts.map((t) => expect.stringContaining(`to: ${t}`)));
    expect(aws.callsOf()).toHaveLength(3);
  }, 60_000);
});

describe('a poison message', () => {
  test('goes to the dead-letter queue after maxReceiveCount receives; the rest of its batch succeeds at once', async () => {
    const jobId = await submit(['Is there a student discount?', 'Can I pay by invoice?']);
    const poison = (await sqsSend('{"v":1,"jobId":')).messageId;

    const receives: PollResult[] = [];
    for (let receive = 1; receive <= MAX_RECEIVE_COUNT; receive++) {
      const batches = await drain();
      expect(batches).toHaveLength(1);
      receives.push(batches[0]);
      expect(batches[0].failed).toEqual([poison]);
      expect(batches[0].receiveCounts[poison]).toBe(receive);
      sqs.elapseVisibilityTimeout(queueUrl);
    }
    // The good items were in the first batch only: answered and deleted there.
    expect(receives[0].delivered).toHaveLength(3);
    expect(receives.slice(1).map((r) => r.delivered)).toEqual([[poison], [poison]]);

    // The next receive finds it over maxReceiveCount: moved to the DLQ, not delivered again.
    expect(await drain()).toEqual([]);
    expect(sqs.queueContents(queueUrl)).toEqual([]);
    expect(sqs.queueContents(dlqUrl)).toEqual([expect.objectContaining({ messageId: poison, body: '{"v":1,"jobId":' })]);

    expect(metricSum(workerMetrics, M.BATCH_FAILURES, { [M.DIMENSION_FAILURE_KIND]: 'poison' })).toBe(MAX_RECEIVE_COUNT);
    expect(metricSum(workerMetrics, M.RESULTS_WRITTEN)).toBe(2);
    expect(await status(jobId)).toMatchObject({ status: 'succeeded', succeeded: 2, failed: 0 });
    expect(aws.callsOf()).toHaveLength(2);
  }, 60_000);
});

/** Sends a raw message to the jobs queue with the real SQS client (as a misbehaving producer would). */
async function sqsSend(body: string): Promise<{ messageId: string }> {
  const client = new SQSClient({ endpoint: sqs.url, region: 'us-east-1', credentials: { accessKeyId: 'AKIDLOCALTEST', secretAccessKey: 'local-test-secret' }, maxAttempts: 1 });
  try {
    const r = await client.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: body }));
    return { messageId: r.MessageId! };
  } finally {
    client.destroy();
  }
}
