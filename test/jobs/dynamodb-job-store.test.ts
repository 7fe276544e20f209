/**
 * DynamoDbJobStore on dynalite (through the transactional proxy of test/support, which adds
 * TransactWriteItems) with the real AWS SDK v3 clients: the item layout, tenant isolation,
 * exactly-once counting of results, pagination, bulk lookups and failBulkJob under retries and a
 * concurrent writer.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { DynamoDbJobStore } from '../../lambdas/adapters/dynamodb-job-store';
import { HttpError } from '../../lambdas/core/errors';
import { idHash } from '../../lambdas/core/hashing';
import { jobStatus, type ItemResult, type JobHeader } from '../../lambdas/core/jobs/job-model';
import { DynaliteServer } from '../support/dynalite-server';
import { TransactionalDynalite } from '../support/dynamodb-transactions';

const TABLE = 'jobs-results';
const TTL = 3_600;
const TENANT_A = 'arn:aws:iam::111122223333:role/TenantA';
const TENANT_B = 'arn:aws:iam::111122223333:role/TenantB';

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

function header(items: number, tenantId = TENANT_A, extra: Partial<JobHeader> = {}): JobHeader {
  return { jobId: randomUUID(), tenantId, userId: 'user-1', mode: 'queue', items, succeeded: 0, failed: 0, createdAt: Date.now(), ...extra };
}

function ok(index: number, text = `answer ${index}`): ItemResult {
  return { index, status: 'succeeded', output: { text }, tier: 'small', cache: 'miss', usage: { inputTokens: 3, outputTokens: 2 }, costUsd: 0.000001, completedAt: Date.now() };
}

function failed(index: number): ItemResult {
  return { index, status: 'failed', error: { code: 'unavailable', message: 'no tier' }, completedAt: Date.now() };
}

async function raw(pk: string, sk: string): Promise<Record<string, unknown> | undefined> {
  const out = await DynamoDBDocumentClient.from(client).send(new GetCommand({ TableName: TABLE, Key: { pk, sk }, ConsistentRead: true }));
  return out.Item;
}

async function partition(pk: string): Promise<Array<Record<string, unknown>>> {
  const out = await DynamoDBDocumentClient.from(client).send(
    new QueryCommand({ TableName: TABLE, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': pk }, ConsistentRead: true }),
  );
  return out.Items ?? [];
}

describe('layout and tenancy', () => {
  test('the header, its counter shards and the results share a partition keyed by tenant hash and job id; every item has expiresAt', async () => {
    const job = header(2);
    await store.createJob(job, TTL);
    await store.writeResult(TENANT_A, job.jobId, ok(1), TTL);
    const pk = `job#${idHash(TENANT_A)}#${job.jobId}`;
    expect(DynamoDbJobStore.partitionKey(TENANT_A, job.jobId)).toBe(pk);
    const items = await partition(pk);
    // A job of 2 items gets 2 shards (min(16, items)).
    expect(items.map((i) => i.sk).sort()).toEqual(['item#000001', 'job', 'job#count#00', 'job#count#01']);
    const now = Math.floor(Date.now() / 1000);
    for (const item of items) {
      expect(item.expiresAt).toBeGreaterThanOrEqual(now + TTL - 5);
      expect(item.expiresAt).toBeLessThanOrEqual(now + TTL + 5);
    }
    const head = items.find((i) => i.sk === 'job')!;
    expect(head).toMatchObject({ tenantId: TENANT_A, jobId: job.jobId, items: 2, succeeded: 0, failed: 0, mode: 'queue' });
    // Item 1 counted on shard 1 mod 16.
    expect(items.find((i) => i.sk === 'job#count#01')).toMatchObject({ tenantId: TENANT_A, items: 2, succeeded: 1 });
    expect(items.find((i) => i.sk === 'job#count#00')).toEqual(expect.not.objectContaining({ succeeded: expect.anything() }));
    expect(await store.getJob(TENANT_A, job.jobId)).toMatchObject({ succeeded: 1, failed: 0 });
    expect(items.find((i) => i.sk === 'item#000001')).toMatchObject({ index: 1, status: 'succeeded', output: { text: 'answer 1' } });
  });

  test('another tenant cannot read, start or write a job, even with its id', async () => {
    const job = header(1);
    await store.createJob(job, TTL);
    await expect(store.getJob(TENANT_B, job.jobId)).resolves.toBeUndefined();
    await expect(store.markStarted(TENANT_B, job.jobId, Date.now())).rejects.toThrow(/does not exist/);
    await expect(store.writeResult(TENANT_B, job.jobId, ok(0), TTL)).rejects.toThrow(/does not exist/);
    // Nothing was written under the other tenant's partition, and A's job is untouched.
    expect(await partition(DynamoDbJobStore.partitionKey(TENANT_B, job.jobId))).toEqual([]);
    expect(await store.getJob(TENANT_A, job.jobId)).toMatchObject({ succeeded: 0, failed: 0 });
    await expect(store.listResults(TENANT_B, job.jobId, 10)).resolves.toEqual({ results: [], nextCursor: undefined });
  });

  test('a job id cannot be created twice', async () => {
    const job = header(1);
    await store.createJob(job, TTL);
    await expect(store.createJob({ ...job, items: 5 }, TTL)).rejects.toMatchObject({ name: 'ConditionalCheckFailedException' });
    expect((await store.getJob(TENANT_A, job.jobId))?.items).toBe(1);
  });

  test('an expired job reads as absent (DynamoDB deletes expired items lazily)', async () => {
    const job = header(1);
    await store.createJob(job, TTL);
    const later = new DynamoDbJobStore(TABLE, client, { now: () => Date.now() + (TTL + 10) * 1000 });
    await expect(later.getJob(TENANT_A, job.jobId)).resolves.toBeUndefined();
    await expect(store.getJob(TENANT_A, job.jobId)).resolves.toMatchObject({ jobId: job.jobId, tenantId: TENANT_A, items: 1 });
  });
});

describe('hasResult', () => {
  test('true once the item has a result, read consistently with a GetItem of the key alone; false for other items and tenants', async () => {
    const job = header(3);
    await store.createJob(job, TTL);
    await expect(store.hasResult(TENANT_A, job.jobId, 1)).resolves.toBe(false);
    await store.writeResult(TENANT_A, job.jobId, ok(1), TTL);
    const before = dynamo.callsOf('GetItem').length;
    await expect(store.hasResult(TENANT_A, job.jobId, 1)).resolves.toBe(true);
    const [call] = dynamo.callsOf('GetItem').slice(before);
    expect(call.body).toMatchObject({
      TableName: TABLE,
      Key: { pk: { S: DynamoDbJobStore.partitionKey(TENANT_A, job.jobId) }, sk: { S: 'item#000001' } },
      ConsistentRead: true,
      ProjectionExpression: 'pk, sk',
    });
    await expect(store.hasResult(TENANT_A, job.jobId, 0)).resolves.toBe(false);
    await expect(store.hasResult(TENANT_B, job.jobId, 1)).resolves.toBe(false);
    // An unknown job has no results.
    await expect(store.hasResult(TENANT_A, randomUUID(), 0)).resolves.toBe(false);
    await expect(store.hasResult(TENANT_A, job.jobId, -1)).rejects.toThrow(RangeError);
  });
});

describe('writeResult', () => {
  test('one TransactWriteItems per result; a second write of the same item is a duplicate and counts nothing', async () => {
    const job = header(3);
    await store.createJob(job, TTL);
    const before = dynamo.callsOf('TransactWriteItems').length;
    await expect(store.writeResult(TENANT_A, job.jobId, ok(0), TTL)).resolves.toBe('written');
    await expect(store.writeResult(TENANT_A, job.jobId, ok(0, 'another answer'), TTL)).resolves.toBe('duplicate');
    await expect(store.writeResult(TENANT_A, job.jobId, failed(0), TTL)).resolves.toBe('duplicate');
    await expect(store.writeResult(TENANT_A, job.jobId, failed(2), TTL)).resolves.toBe('written');
    expect(dynamo.callsOf('TransactWriteItems').length - before).toBe(4);
    const head = await store.getJob(TENANT_A, job.jobId);
    expect(head).toMatchObject({ succeeded: 1, failed: 1 });
    expect(jobStatus(head!)).toBe('running');
    // The first answer stays.
    expect((await raw(DynamoDbJobStore.partitionKey(TENANT_A, job.jobId), 'item#000000'))?.output).toEqual({ text: 'answer 0' });
    await store.writeResult(TENANT_A, job.jobId, ok(1), TTL);
    expect(jobStatus((await store.getJob(TENANT_A, job.jobId))!)).toBe('failed');
  });

  test('an index beyond the job, or an unknown job, writes nothing (the transaction is atomic)', async () => {
    const job = header(2);
    await store.createJob(job, TTL);
    await expect(store.writeResult(TENANT_A, job.jobId, ok(2), TTL)).rejects.toThrow(/no item 2/);
    expect(await raw(DynamoDbJobStore.partitionKey(TENANT_A, job.jobId), 'item#000002')).toBeUndefined();
    const ghost = randomUUID();
    await expect(store.writeResult(TENANT_A, ghost, ok(0), TTL)).rejects.toThrow(/does not exist/);
    expect(await partition(DynamoDbJobStore.partitionKey(TENANT_A, ghost))).toEqual([]);
  });

  test('markStarted keeps the first timestamp', async () => {
    const job = header(1);
    await store.createJob(job, TTL);
    await store.markStarted(TENANT_A, job.jobId, 1_000);
    await store.markStarted(TENANT_A, job.jobId, 2_000);
    expect((await store.getJob(TENANT_A, job.jobId))?.startedAt).toBe(1_000);
    await expect(store.markStarted(TENANT_A, randomUUID(), 1)).rejects.toThrow(/does not exist/);
  });
});

describe('listResults', () => {
  test('pages in index order with an opaque cursor and no empty last page', async () => {
    const job = header(7);
    await store.createJob(job, TTL);
    // Written out of order.
    for (const i of [6, 0, 3, 1, 5, 2, 4]) await store.writeResult(TENANT_A, job.jobId, i === 3 ? failed(i) : ok(i), TTL);
    const seen: number[] = [];
    const cursors: Array<string | undefined> = [];
    let cursor: string | undefined;
    do {
      const page = await store.listResults(TENANT_A, job.jobId, 3, cursor);
      seen.push(...page.results.map((r) => r.index));
      cursor = page.nextCursor;
      cursors.push(cursor);
    } while (cursor);
    expect(seen).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(cursors).toHaveLength(3);
    expect(cursors[0]).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(cursors[0]).not.toContain(idHash(TENANT_A));

    const exact = await store.listResults(TENANT_A, job.jobId, 7);
    expect(exact.results).toHaveLength(7);
    expect(exact.nextCursor).toBeUndefined();
    const last = await store.listResults(TENANT_A, job.jobId, 3, cursors[1]);
    expect(last.results.map((r) => r.index)).toEqual([6]);
    expect(last.nextCursor).toBeUndefined();
  });

  test('a cursor that was not issued is refused with a 400', async () => {
    const job = header(1);
    await store.createJob(job, TTL);
    const err = await store.listResults(TENANT_A, job.jobId, 3, 'bm90LWEtY3Vyc29y').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HttpError);
    expect((err as HttpError).statusCode).toBe(400);
  });
});

describe('bulk jobs', () => {
  test('recordBulkJob writes the lookup item bulk#<sha256(arn)>; findBulkJob finds the job', async () => {
    const job = header(3, TENANT_A, { mode: 'bulk' });
    await store.createJob(job, TTL);
    const arn = `arn:aws:bedrock:us-east-1:111122223333:model-invocation-job/${randomUUID().slice(0, 12)}`;
    await store.recordBulkJob(TENANT_A, job.jobId, arn, TTL);
    const pk = `bulk#${createHash('sha256').update(arn).digest('hex')}`;
    expect(await raw(pk, 'bulk')).toMatchObject({ bulkJobArn: arn, tenantId: TENANT_A, jobId: job.jobId });
    expect((await raw(pk, 'bulk'))?.expiresAt).toEqual(expect.any(Number));
    await expect(store.findBulkJob(arn)).resolves.toEqual({ tenantId: TENANT_A, jobId: job.jobId });
    expect((await store.getJob(TENANT_A, job.jobId))?.bulkJobArn).toBe(arn);
    await expect(store.findBulkJob(`${arn}-other`)).resolves.toBeUndefined();
    await expect(store.recordBulkJob(TENANT_B, job.jobId, `${arn}-b`, TTL)).rejects.toThrow(/does not exist/);
    await expect(store.findBulkJob(`${arn}-b`)).resolves.toBeUndefined();
  });

  test('failBulkJob fails exactly the items without a result, once, however often it runs', async () => {
    const job = header(5, TENANT_A, { mode: 'bulk' });
    await store.createJob(job, TTL);
    await store.writeResult(TENANT_A, job.jobId, ok(0), TTL);
    await store.writeResult(TENANT_A, job.jobId, ok(3), TTL);
    await store.failBulkJob(TENANT_A, job.jobId, 'Bedrock job failed: model timeout', TTL);
    await store.failBulkJob(TENANT_A, job.jobId, 'a second message is not kept', TTL);
    const head = await store.getJob(TENANT_A, job.jobId);
    expect(head).toMatchObject({ succeeded: 2, failed: 3, failureMessage: 'Bedrock job failed: model timeout' });
    expect(jobStatus(head!)).toBe('failed');
    const { results } = await store.listResults(TENANT_A, job.jobId, 10);
    expect(results.map((r) => [r.index, r.status])).toEqual([[0, 'succeeded'], [1, 'failed'], [2, 'failed'], [3, 'succeeded'], [4, 'failed']]);
    expect(results[1].error).toEqual({ code: 'job-failed', message: 'Bedrock job failed: model timeout' });
    // A worker arriving late finds its item taken: nothing is counted twice.
    await expect(store.writeResult(TENANT_A, job.jobId, ok(1), TTL)).resolves.toBe('duplicate');
    expect(await store.getJob(TENANT_A, job.jobId)).toMatchObject({ succeeded: 2, failed: 3 });
  });

  test('failBulkJob stays exact when a result is written between its query and its write', async () => {
    const job = header(4, TENANT_A, { mode: 'bulk' });
    await store.createJob(job, TTL);
    let raced = false;
    const remove = dynamo.beforeRequest(async (operation, body) => {
      // The first transaction of failBulkJob (more than one item put): the worker writes item 2 just before it.
      if (raced || operation !== 'TransactWriteItems' || (body.TransactItems as unknown[]).length <= 2) return;
      raced = true;
      await store.writeResult(TENANT_A, job.jobId, ok(2, 'the worker was first'), TTL);
    });
    try {
      await store.failBulkJob(TENANT_A, job.jobId, 'gave up', TTL);
    } finally {
      remove();
    }
    expect(raced).toBe(true);
    const head = await store.getJob(TENANT_A, job.jobId);
    expect(head).toMatchObject({ succeeded: 1, failed: 3 });
    const { results } = await store.listResults(TENANT_A, job.jobId, 10);
    expect(results.map((r) => r.status)).toEqual(['failed', 'failed', 'succeeded', 'failed']);
    expect(results[2].output?.text).toBe('the worker was first');
    // The cancelled transaction counted nothing: the counters equal the items.
    expect(head!.succeeded + head!.failed).toBe(head!.items);
  });
});
