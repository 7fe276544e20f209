/**
 * Write sharding of a job's counters (DynamoDbJobStore on dynalite behind the transactional
 * proxy of test/support, real AWS SDK v3 clients): the results of one large job are counted on
 * up to 16 counter items, never all on the header, and every count and every result still reads
 * back exactly; jobs without shards (created before sharding, or with fewer) still count.
 *
 * DynamoDB cancels a transaction that touches an item another transaction holds
 * (TransactionConflict); dynalite does not emulate that, so the tests assert what causes it: how
 * many transactions name the same item.
 */
import { randomUUID } from 'node:crypto';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { DEFAULT_COUNTER_SHARDS, DynamoDbJobStore } from '../../lambdas/adapters/dynamodb-job-store';
import { jobStatus, type ItemResult, type JobHeader } from '../../lambdas/core/jobs/job-model';
import { mapLimit } from '../../lambdas/core/map-limit';
import { DynaliteServer } from '../support/dynalite-server';
import { TransactionalDynalite } from '../support/dynamodb-transactions';

const TABLE = 'jobs-partitioning';
const TTL = 3_600;
const TENANT = 'tenant-with-a-very-large-job';
const OTHER = 'another-tenant';

let dynamo: TransactionalDynalite;
let client: DynamoDBClient;
let store: DynamoDbJobStore;

beforeAll(async () => {
  dynamo = await TransactionalDynalite.start([DynaliteServer.userContextTable(TABLE)]);
  client = dynamo.client();
  store = new DynamoDbJobStore(TABLE, client);
});

afterAll(async () => {
  await dynamo?.stop();
});

function header(items: number, tenantId = TENANT): JobHeader {
  return { jobId: randomUUID(), tenantId, userId: 'u', mode: 'bulk', items, succeeded: 0, failed: 0, createdAt: Date.now() };
}

function result(index: number): ItemResult {
  return index % 3 === 0
    ? { index, status: 'failed', error: { code: 'unavailable', message: 'no tier' }, completedAt: Date.now() }
    : { index, status: 'succeeded', output: { text: `answer ${index}` }, tier: 'small', cache: 'miss', completedAt: Date.now() };
}

/** The keys (`pk|sk`) that the Update actions of the transactions since call number `from` name. */
function updatedItems(from: number): string[] {
  return dynamo.callsOf('TransactWriteItems').slice(from).flatMap((call) => {
    const actions = call.body.TransactItems as Array<{ Update?: { Key: { pk: { S: string }; sk: { S: string } } } }>;
    return actions.filter((a) => a.Update).map((a) => `${a.Update!.Key.pk.S}|${a.Update!.Key.sk.S}`);
  });
}

function countBy(values: string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  return counts;
}

test(`160 results of one job, 16 at a time, spread over ${DEFAULT_COUNTER_SHARDS} counter items and never the header; counts and results read back exactly`, async () => {
  const job = header(160);
  await store.createJob(job, TTL);
  const pk = DynamoDbJobStore.partitionKey(TENANT, job.jobId);
  const from = dynamo.callsOf('TransactWriteItems').length;
  // As the bulk completion writes (16 concurrent writes), in index order.
  const outcomes = await mapLimit(Array.from({ length: 160 }, (_, i) => i), 16, (i) => store.writeResult(TENANT, job.jobId, result(i), TTL));
  expect(new Set(outcomes)).toEqual(new Set(['written']));

  const perItem = countBy(updatedItems(from));
  // Without sharding every one of the 160 transactions updates `job`.
  expect(perItem.has(`${pk}|job`)).toBe(false);
  expect([...perItem.keys()].sort()).toEqual(Array.from({ length: 16 }, (_, k) => `${pk}|${DynamoDbJobStore.counterSortKey(k)}`));
  expect(Math.max(...perItem.values())).toBe(Math.ceil(160 / 16));

  const failed = Array.from({ length: 160 }, (_, i) => i).filter((i) => i % 3 === 0).length;
  const head = await store.getJob(TENANT, job.jobId);
  expect(head).toMatchObject({ items: 160, succeeded: 160 - failed, failed });
  expect(jobStatus(head!)).toBe('failed');
  // A redelivery of any item counts nothing.
  await expect(store.writeResult(TENANT, job.jobId, result(117), TTL)).resolves.toBe('duplicate');
  expect(await store.getJob(TENANT, job.jobId)).toMatchObject({ succeeded: 160 - failed, failed });

  const seen: number[] = [];
  let cursor: string | undefined;
  do {
    const page = await store.listResults(TENANT, job.jobId, 50, cursor);
    seen.push(...page.results.map((r) => r.index));
    cursor = page.nextCursor;
  } while (cursor);
  // Every result, once, in order: the counter shards (sk `job#count#..`) are not results.
  expect(seen).toEqual(Array.from({ length: 160 }, (_, i) => i));
});

test('the shards keep tenant isolation: another tenant can neither read the counts nor count on the shards', async () => {
  const job = header(40);
  await store.createJob(job, TTL);
  await expect(store.writeResult(OTHER, job.jobId, result(1), TTL)).rejects.toThrow(/does not exist/);
  await expect(store.getJob(OTHER, job.jobId)).resolves.toBeUndefined();
  // An index beyond the job is refused by the shard (which carries `items`) and by the header.
  await expect(store.writeResult(TENANT, job.jobId, result(40), TTL)).rejects.toThrow(/no item 40/);
  expect(await store.getJob(TENANT, job.jobId)).toMatchObject({ succeeded: 0, failed: 0 });
});

test('a job created without shards (before sharding) counts on its header, and its old counts are kept', async () => {
  const job = header(5);
  const pk = DynamoDbJobStore.partitionKey(TENANT, job.jobId);
  // The layout before sharding: the header alone, with two results already counted on it.
  const doc = DynamoDBDocumentClient.from(client);
  await doc.send(new PutCommand({
    TableName: TABLE,
    Item: { pk, sk: 'job', jobId: job.jobId, tenantId: TENANT, mode: 'queue', items: 5, succeeded: 2, failed: 0, createdAt: job.createdAt, expiresAt: Math.floor(Date.now() / 1000) + TTL },
  }));
  const from = dynamo.callsOf('TransactWriteItems').length;
  await expect(store.writeResult(TENANT, job.jobId, result(2), TTL)).resolves.toBe('written');
  await expect(store.writeResult(TENANT, job.jobId, result(3), TTL)).resolves.toBe('written');
  expect(await store.getJob(TENANT, job.jobId)).toMatchObject({ succeeded: 3, failed: 1 });
  expect(updatedItems(from).filter((k) => k === `${pk}|job`)).toHaveLength(2);
});

test('a job created with fewer shards than the writer uses counts the items of missing shards on its header', async () => {
  const job = header(10);
  await new DynamoDbJobStore(TABLE, client, { counterShards: 4 }).createJob(job, TTL);
  const pk = DynamoDbJobStore.partitionKey(TENANT, job.jobId);
  const sks = (await DynamoDBDocumentClient.from(client).send(new QueryCommand({
    TableName: TABLE, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': pk }, ConsistentRead: true,
  }))).Items!.map((i) => i.sk as string).sort();
  expect(sks).toEqual(['job', 'job#count#00', 'job#count#01', 'job#count#02', 'job#count#03']);
  for (let i = 0; i < 10; i++) await store.writeResult(TENANT, job.jobId, result(i), TTL);
  expect(await store.getJob(TENANT, job.jobId)).toMatchObject({ succeeded: 6, failed: 4 });
});

test('counterShards is an integer from 1 to 99', () => {
  for (const counterShards of [0, 100, 2.5]) expect(() => new DynamoDbJobStore(TABLE, client, { counterShards })).toThrow(/counterShards/);
  expect(() => new DynamoDbJobStore(TABLE, client, { counterShards: 99 })).not.toThrow();
});
