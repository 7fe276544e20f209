import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DynamoDBDocumentClient,
  GetCommand,
  QueryCommand,
  TransactWriteCommand,
  UpdateCommand,
  type QueryCommandOutput,
  type TransactWriteCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { traced } from './powertools-tracing';
import { HttpError } from '../core/errors';
import { idHash, sha256Hex } from '../core/hashing';
import { type ItemResult, type JobHeader, type JobMode, type JobStore } from '../core/jobs/job-model';

const HEADER_SK = 'job';
/**
 * Sort-key prefix of a job's counter shards (`job#count#<k>`): after the header's `job`, so one
 * Query of `begins_with(sk, 'job')` reads the header and its shards together.
 */
const COUNTER_SK_PREFIX = 'job#count#';
/**
 * Counter shards of a job, by default. Every result adds 1 to a counter in the same transaction
 * as its item; on the header alone, all concurrent writers of a job would transact on that one
 * item, and DynamoDB cancels a transaction that touches an item another transaction holds
 * (TransactionConflict), besides capping one item at 1,000 WCU/s (500 transactional updates/s).
 * Item `i` counts on shard `i mod counterShards`, so writers of neighbouring items (the worker's
 * batches, the bulk completion's 16 concurrent writes) meet on different items.
 */
export const DEFAULT_COUNTER_SHARDS = 16;
const ITEM_SK_PREFIX = 'item#';
const BULK_SK = 'bulk';
/** Digits of an item index in its sort key: indexes below 1,000,000 sort as numbers. */
const INDEX_DIGITS = 6;
/** A transaction holds at most 100 actions: 99 item puts and the header update. */
const ITEMS_PER_TRANSACTION = 99;

export interface DynamoDbJobStoreOptions {
  /** Rounds of `failBulkJob` that lose items to concurrent writers before it gives up. @default 5 */
  readonly maxAttempts?: number;
  /** Epoch milliseconds (tests). @default Date.now */
  readonly now?: () => number;
  /**
   * Counter shards a new job gets (1 to 99: the header and its shards are written in one
   * transaction of at most 100 actions): `min(counterShards, items)` items `job#count#<k>` beside
   * the header. Jobs keep the shards they were created with; a result whose shard does
   * not exist (a job created before sharding, or with fewer shards) counts on the header.
   * @default DEFAULT_COUNTER_SHARDS (16)
   */
  readonly counterShards?: number;
}

interface HeaderItem {
  pk: string;
  sk: string;
  jobId: string;
  tenantId: string;
  userId?: string;
  mode: JobMode;
  items: number;
  succeeded?: number;
  failed?: number;
  createdAt: number;
  startedAt?: number;
  bulkJobArn?: string;
  failureMessage?: string;
  expiresAt?: number;
}

type ResultItem = { pk: string; sk: string; expiresAt?: number } & ItemResult;

/** A counter shard: the header's tenant and item count (for the write's condition) and its share of the counts. */
interface CounterItem {
  pk: string;
  sk: string;
  tenantId: string;
  items: number;
  succeeded?: number;
  failed?: number;
  expiresAt?: number;
}

/**
 * Jobs and their results in one DynamoDB table: partition key `pk` (S), sort key `sk` (S), TTL
 * attribute `expiresAt` (epoch seconds, on every item).
 *
 * | item        | pk                                | sk                   | attributes                                        |
 * |-------------|-----------------------------------|----------------------|---------------------------------------------------|
 * | job header  | `job#<tenantHash>#<jobId>`        | `job`                | jobId, tenantId, userId, mode, items, succeeded,  |
 * |             |                                   |                      | failed, createdAt, startedAt, bulkJobArn,         |
 * |             |                                   |                      | failureMessage, expiresAt                         |
 * | counter     | `job#<tenantHash>#<jobId>`        | `job#count#<k:00>`   | tenantId, items, succeeded, failed, expiresAt     |
 * | item result | `job#<tenantHash>#<jobId>`        | `item#<index:000000>`| index, status, output, tier, cache, usage,        |
 * |             |                                   |                      | costUsd, error, completedAt, expiresAt            |
 * | bulk lookup | `bulk#<sha256(bulkJobArn)>`       | `bulk`               | bulkJobArn, tenantId, jobId, expiresAt            |
 *
 * A job and its results share a partition, so one Query pages through the results in index
 * order. The tenant id is stored on the header and compared on every read and update: a job id
 * of another tenant reads as absent. DynamoDB deletes expired items lazily (within days), so
 * reads treat an item whose `expiresAt` has passed as absent.
 *
 * Counting is exact under retries and races: a result is written by one transaction that puts the
 * item only if absent (`attribute_not_exists(pk)`) and adds 1 to `succeeded` or `failed` of its
 * counter shard (`index mod shards`; the header itself when the shard does not exist); a second
 * write of the same item cancels the transaction and counts nothing (`duplicate`). A job's counts
 * are the sums over its header and its shards, read in one consistent Query. The shards spread a
 * job's counting over up to 16 items, so concurrent writers of one large job do not all
 * transact on one item (see {@link DEFAULT_COUNTER_SHARDS}).
 */
export class DynamoDbJobStore implements JobStore {
  static partitionKey(tenantId: string, jobId: string): string {
    return `job#${idHash(tenantId)}#${jobId}`;
  }

  static itemSortKey(index: number): string {
    return `${ITEM_SK_PREFIX}${String(index).padStart(INDEX_DIGITS, '0')}`;
  }

  static bulkPartitionKey(bulkJobArn: string): string {
    return `bulk#${sha256Hex(bulkJobArn)}`;
  }

  /** Sort key of counter shard `shard` of a job. */
  static counterSortKey(shard: number): string {
    return `${COUNTER_SK_PREFIX}${String(shard).padStart(2, '0')}`;
  }

  private readonly doc: DynamoDBDocumentClient;
  private readonly maxAttempts: number;
  private readonly now: () => number;
  private readonly counterShards: number;

  constructor(
    private readonly tableName: string,
    client: DynamoDBClient = traced(new DynamoDBClient({})),
    options: DynamoDbJobStoreOptions = {},
  ) {
    this.doc = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
    this.maxAttempts = Math.max(1, options.maxAttempts ?? 5);
    this.now = options.now ?? Date.now;
    this.counterShards = options.counterShards ?? DEFAULT_COUNTER_SHARDS;
    if (!Number.isInteger(this.counterShards) || this.counterShards < 1 || this.counterShards > 99) {
      throw new RangeError(`counterShards must be an integer from 1 to 99, got ${this.counterShards}`);
    }
  }

  async createJob(header: JobHeader, ttlSeconds: number): Promise<void> {
    if (!Number.isInteger(header.items) || header.items < 1 || header.items >= 10 ** INDEX_DIGITS) {
      throw new RangeError(`a job holds 1 to ${10 ** INDEX_DIGITS - 1} items, got ${header.items}`);
    }
    const item: HeaderItem = {
      pk: DynamoDbJobStore.partitionKey(header.tenantId, header.jobId),
      sk: HEADER_SK,
      jobId: header.jobId,
      tenantId: header.tenantId,
      userId: header.userId,
      mode: header.mode,
      items: header.items,
      succeeded: header.succeeded,
      failed: header.failed,
      createdAt: header.createdAt,
      startedAt: header.startedAt,
      bulkJobArn: header.bulkJobArn,
      failureMessage: header.failureMessage,
      expiresAt: this.expiry(ttlSeconds),
    };
    // The header and its counter shards, all or nothing. Item i counts on shard i mod N, and
    // i < items, so min(N, items) shards serve every item.
    const shards: CounterItem[] = [];
    for (let k = 0; k < Math.min(this.counterShards, header.items); k++) {
      shards.push({ pk: item.pk, sk: DynamoDbJobStore.counterSortKey(k), tenantId: header.tenantId, items: header.items, expiresAt: item.expiresAt });
    }
    try {
      await this.doc.send(
        new TransactWriteCommand({
          TransactItems: [item, ...shards].map((Item) => ({ Put: { TableName: this.tableName, Item, ConditionExpression: 'attribute_not_exists(pk)' } })),
        }),
      );
    } catch (err) {
      if (cancellationReasons(err)?.includes('ConditionalCheckFailed')) {
        const exists = new Error(`job ${header.jobId} exists already`);
        exists.name = 'ConditionalCheckFailedException';
        throw exists;
      }
      throw err;
    }
  }

  /** The header and its counter shards (one consistent Query); the counts are their sums. */
  async getJob(tenantId: string, jobId: string): Promise<JobHeader | undefined> {
    const out = await this.doc.send(
      new QueryCommand({
        TableName: this.tableName,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :job)',
        ExpressionAttributeValues: { ':pk': DynamoDbJobStore.partitionKey(tenantId, jobId), ':job': HEADER_SK },
        // Status must follow writes at once: a client polls right after its job was answered.
        ConsistentRead: true,
      }),
    );
    // At most 100 small items: one page.
    const found = (out.Items ?? []) as Array<HeaderItem | CounterItem>;
    const item = found.find((i) => i.sk === HEADER_SK) as HeaderItem | undefined;
    if (!item || item.tenantId !== tenantId || this.expired(item)) return undefined;
    let succeeded = item.succeeded ?? 0;
    let failed = item.failed ?? 0;
    for (const shard of found) {
      if (shard === item || shard.tenantId !== tenantId) continue;
      succeeded += shard.succeeded ?? 0;
      failed += shard.failed ?? 0;
    }
    return {
      jobId: item.jobId,
      tenantId: item.tenantId,
      userId: item.userId,
      mode: item.mode,
      items: item.items,
      succeeded,
      failed,
      createdAt: item.createdAt,
      startedAt: item.startedAt,
      bulkJobArn: item.bulkJobArn,
      failureMessage: item.failureMessage,
    };
  }

  /**
   * A page of results. The cursor is the index of the page's last result (base64url JSON): it
   * carries no key of the table, and a cursor of one job means nothing for another.
   */
  async listResults(tenantId: string, jobId: string, limit: number, cursor?: string): Promise<{ results: ItemResult[]; nextCursor?: string }> {
    const after = cursor === undefined ? -1 : decodeCursor(cursor);
    const wanted = Math.max(1, Math.floor(limit));
    const results: ItemResult[] = [];
    let from = DynamoDbJobStore.itemSortKey(after + 1);
    let more = false;
    // One result beyond the page tells whether another page follows (no empty last page).
    while (results.length <= wanted) {
      const out: QueryCommandOutput = await this.doc.send(
        new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression: 'pk = :pk AND sk BETWEEN :from AND :to',
          ExpressionAttributeValues: {
            ':pk': DynamoDbJobStore.partitionKey(tenantId, jobId),
            ':from': from,
            ':to': `${ITEM_SK_PREFIX}${'9'.repeat(INDEX_DIGITS)}`,
          },
          Limit: wanted + 1 - results.length,
          ConsistentRead: true,
        }),
      );
      for (const item of (out.Items ?? []) as ResultItem[]) results.push(toResult(item));
      const last = out.LastEvaluatedKey?.sk;
      if (!last || results.length > wanted) {
        more = results.length > wanted;
        break;
      }
      // A 1 MB page ended early: continue after its last item.
      from = DynamoDbJobStore.itemSortKey(Number(String(last).slice(ITEM_SK_PREFIX.length)) + 1);
    }
    const page = results.slice(0, wanted);
    return { results: page, nextCursor: more ? encodeCursor(page[page.length - 1].index) : undefined };
  }

  async markStarted(tenantId: string, jobId: string, at: number): Promise<void> {
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { pk: DynamoDbJobStore.partitionKey(tenantId, jobId), sk: HEADER_SK },
          UpdateExpression: 'SET startedAt = if_not_exists(startedAt, :at)',
          ConditionExpression: 'attribute_exists(pk) AND tenantId = :tenant',
          ExpressionAttributeValues: { ':at': at, ':tenant': tenantId },
        }),
      );
    } catch (err) {
      if ((err as Error).name === 'ConditionalCheckFailedException') throw jobNotFound(jobId);
      throw err;
    }
  }

  /** A consistent GetItem of the item's result, projecting only the key (nothing else is read). */
  async hasResult(tenantId: string, jobId: string, index: number): Promise<boolean> {
    if (!Number.isInteger(index) || index < 0) throw new RangeError(`invalid item index ${index}`);
    const out = await this.doc.send(
      new GetCommand({
        TableName: this.tableName,
        Key: { pk: DynamoDbJobStore.partitionKey(tenantId, jobId), sk: DynamoDbJobStore.itemSortKey(index) },
        ProjectionExpression: 'pk, sk',
        ConsistentRead: true,
      }),
    );
    return out.Item !== undefined;
  }

  async writeResult(tenantId: string, jobId: string, result: ItemResult, ttlSeconds: number): Promise<'written' | 'duplicate'> {
    if (!Number.isInteger(result.index) || result.index < 0) throw new RangeError(`invalid item index ${result.index}`);
    const pk = DynamoDbJobStore.partitionKey(tenantId, jobId);
    const item: ResultItem = { ...result, pk, sk: DynamoDbJobStore.itemSortKey(result.index), expiresAt: this.expiry(ttlSeconds) };
    // The item's counter shard first; the header when that shard does not exist (a job created
    // with fewer shards, or before sharding), whose condition then tells an unknown job apart.
    for (const counterSk of [DynamoDbJobStore.counterSortKey(result.index % this.counterShards), HEADER_SK]) {
      try {
        await this.doc.send(
          new TransactWriteCommand({
            TransactItems: [
              { Put: { TableName: this.tableName, Item: item, ConditionExpression: 'attribute_not_exists(pk)' } },
              {
                Update: {
                  TableName: this.tableName,
                  Key: { pk, sk: counterSk },
                  UpdateExpression: 'ADD #counter :one',
                  // The job exists, is this tenant's, and has this item (shards carry the header's tenant and items).
                  ConditionExpression: 'attribute_exists(pk) AND tenantId = :tenant AND #items > :index',
                  ExpressionAttributeNames: { '#counter': result.status === 'succeeded' ? 'succeeded' : 'failed', '#items': 'items' },
                  ExpressionAttributeValues: { ':one': 1, ':tenant': tenantId, ':index': result.index },
                },
              },
            ],
          }),
        );
        return 'written';
      } catch (err) {
        const reasons = cancellationReasons(err);
        if (reasons?.[0] === 'ConditionalCheckFailed') return 'duplicate';
        if (reasons?.[1] !== 'ConditionalCheckFailed') throw err;
      }
    }
    throw jobNotFound(jobId, result.index);
  }

  async recordBulkJob(tenantId: string, jobId: string, bulkJobArn: string, ttlSeconds: number): Promise<void> {
    const pk = DynamoDbJobStore.partitionKey(tenantId, jobId);
    try {
      await this.doc.send(
        new TransactWriteCommand({
          TransactItems: [
            {
              Put: {
                TableName: this.tableName,
                Item: {
                  pk: DynamoDbJobStore.bulkPartitionKey(bulkJobArn),
                  sk: BULK_SK,
                  bulkJobArn,
                  tenantId,
                  jobId,
                  expiresAt: this.expiry(ttlSeconds),
                },
              },
            },
            {
              Update: {
                TableName: this.tableName,
                Key: { pk, sk: HEADER_SK },
                UpdateExpression: 'SET bulkJobArn = :arn',
                ConditionExpression: 'attribute_exists(pk) AND tenantId = :tenant',
                ExpressionAttributeValues: { ':arn': bulkJobArn, ':tenant': tenantId },
              },
            },
          ],
        }),
      );
    } catch (err) {
      if (cancellationReasons(err)?.[1] === 'ConditionalCheckFailed') throw jobNotFound(jobId);
      throw err;
    }
  }

  async findBulkJob(bulkJobArn: string): Promise<{ tenantId: string; jobId: string } | undefined> {
    const out = await this.doc.send(
      new GetCommand({ TableName: this.tableName, Key: { pk: DynamoDbJobStore.bulkPartitionKey(bulkJobArn), sk: BULK_SK }, ConsistentRead: true }),
    );
    const item = out.Item as { bulkJobArn?: string; tenantId?: string; jobId?: string; expiresAt?: number } | undefined;
    if (!item || item.bulkJobArn !== bulkJobArn || typeof item.tenantId !== 'string' || typeof item.jobId !== 'string' || this.expired(item)) {
      return undefined;
    }
    return { tenantId: item.tenantId, jobId: item.jobId };
  }

  /**
   * Fails every item without a result. The missing items are found with a consistent Query, then
   * written in transactions of up to 99 conditional puts (`attribute_not_exists(pk)`) plus one
   * header update that adds their number to `failed` and sets `failureMessage` (if not set yet).
   * A result written concurrently (by the worker, or by another run of this method) cancels its
   * transaction, which counts nothing; the method then looks again. So each item is written, and
   * counted, exactly once, however often this runs. (BatchWriteItem cannot be conditional, which
   * is why it is not used here.) An unknown job is left alone.
   */
  async failBulkJob(tenantId: string, jobId: string, message: string, ttlSeconds: number): Promise<void> {
    const job = await this.getJob(tenantId, jobId);
    if (!job) return;
    const pk = DynamoDbJobStore.partitionKey(tenantId, jobId);
    for (let attempt = 1; ; attempt++) {
      const present = await this.resultIndexes(pk);
      const missing: number[] = [];
      for (let i = 0; i < job.items; i++) if (!present.has(i)) missing.push(i);
      if (missing.length === 0) return;
      let raced = false;
      for (let start = 0; start < missing.length; start += ITEMS_PER_TRANSACTION) {
        const chunk = missing.slice(start, start + ITEMS_PER_TRANSACTION);
        const completedAt = this.now();
        const expiresAt = this.expiry(ttlSeconds);
        const puts: NonNullable<TransactWriteCommandInput['TransactItems']> = chunk.map((index) => ({
          Put: {
            TableName: this.tableName,
            Item: {
              pk,
              sk: DynamoDbJobStore.itemSortKey(index),
              index,
              status: 'failed',
              error: { code: 'job-failed', message },
              completedAt,
              expiresAt,
            } satisfies ResultItem,
            ConditionExpression: 'attribute_not_exists(pk)',
          },
        }));
        try {
          await this.doc.send(
            new TransactWriteCommand({
              TransactItems: [
                ...puts,
                {
                  Update: {
                    TableName: this.tableName,
                    Key: { pk, sk: HEADER_SK },
                    UpdateExpression: 'ADD failed :n SET failureMessage = if_not_exists(failureMessage, :message)',
                    ConditionExpression: 'attribute_exists(pk) AND tenantId = :tenant',
                    ExpressionAttributeValues: { ':n': chunk.length, ':message': message, ':tenant': tenantId },
                  },
                },
              ],
            }),
          );
        } catch (err) {
          const reasons = cancellationReasons(err);
          if (reasons?.[chunk.length] === 'ConditionalCheckFailed') return; // the job is gone
          if (!reasons?.slice(0, chunk.length).includes('ConditionalCheckFailed')) throw err;
          raced = true;
        }
      }
      if (!raced) return;
      if (attempt >= this.maxAttempts) throw new Error(`failBulkJob: results of job ${jobId} kept changing; ${missing.length} items may remain`);
    }
  }

  private async resultIndexes(pk: string): Promise<Set<number>> {
    const indexes = new Set<number>();
    let startKey: Record<string, unknown> | undefined;
    do {
      const out: QueryCommandOutput = await this.doc.send(
        new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
          ExpressionAttributeValues: { ':pk': pk, ':prefix': ITEM_SK_PREFIX },
          ProjectionExpression: 'sk',
          ConsistentRead: true,
          ExclusiveStartKey: startKey,
        }),
      );
      for (const item of out.Items ?? []) indexes.add(Number(String(item.sk).slice(ITEM_SK_PREFIX.length)));
      startKey = out.LastEvaluatedKey;
    } while (startKey);
    return indexes;
  }

  private expiry(ttlSeconds: number): number {
    return Math.floor(this.now() / 1000) + Math.max(1, Math.ceil(ttlSeconds));
  }

  private expired(item: { expiresAt?: number }): boolean {
    return typeof item.expiresAt === 'number' && item.expiresAt <= Math.floor(this.now() / 1000);
  }
}

function toResult(item: ResultItem): ItemResult {
  return {
    index: item.index,
    status: item.status,
    output: item.output,
    tier: item.tier,
    cache: item.cache,
    usage: item.usage,
    costUsd: item.costUsd,
    error: item.error,
    completedAt: item.completedAt,
  };
}

function jobNotFound(jobId: string, index?: number): Error {
  const err = new Error(index === undefined ? `job ${jobId} does not exist for this tenant` : `job ${jobId} does not exist for this tenant, or has no item ${index}`);
  err.name = 'JobNotFoundError';
  return err;
}

/** The cancellation reason codes of a TransactionCanceledException, in action order. */
function cancellationReasons(err: unknown): Array<string | undefined> | undefined {
  const e = err as { name?: string; CancellationReasons?: Array<{ Code?: string }> };
  if (e?.name !== 'TransactionCanceledException') return undefined;
  return (e.CancellationReasons ?? []).map((r) => r?.Code);
}

function encodeCursor(index: number): string {
  return Buffer.from(JSON.stringify({ after: index }), 'utf8').toString('base64url');
}

function decodeCursor(cursor: string): number {
  let after: unknown;
  try {
    after = (JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { after?: unknown }).after;
  } catch {
    after = undefined;
  }
  if (typeof after !== 'number' || !Number.isInteger(after) || after < 0 || after >= 10 ** INDEX_DIGITS) {
    throw new HttpError(400, 'Invalid request: cursor: pass the nextCursor of the previous page unchanged', 'invalid');
  }
  return after;
}
