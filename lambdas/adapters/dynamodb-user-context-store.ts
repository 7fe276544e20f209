import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  BatchWriteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  type BatchWriteCommandInput,
  type BatchWriteCommandOutput,
} from '@aws-sdk/lib-dynamodb';
import { traced } from './powertools-tracing';
import type { ChatMessage } from '../core/chat-request';
import type { UserContext, UserContextLimits, UserContextStore } from '../core/user-context';

export interface DynamoDbUserContextStoreOptions {
  /** Attempts of an append that loses its conditional write to a concurrent one. @default 8 */
  readonly maxAttempts?: number;
  /**
   * Most bytes of turn text one session item keeps (DynamoDB items are limited to 400 KB); the
   * oldest turns beyond it are dropped as if beyond `maxTurns`. @default 300_000
   */
  readonly maxSessionBytes?: number;
}

const PREFERENCES_SK = 'preferences';
const SESSION_SK_PREFIX = 'session#';

interface SessionItem {
  pk: string;
  sk: string;
  turns?: Array<{ role?: unknown; text?: unknown }>;
  version?: number;
  expiresAt?: number;
}

interface PreferencesItem {
  pk: string;
  sk: string;
  preferences?: Record<string, unknown>;
  expiresAt?: number;
}

/**
 * User context in a DynamoDB table with partition key `pk` (S), sort key `sk` (S) and the TTL
 * attribute `expiresAt` (epoch seconds):
 * - `pk = <tenant>#<user>`, `sk = session#<sessionId>`: `turns` (a list of `{ role, text }`,
 *   oldest first, at most `maxTurns`), `version` and `expiresAt`;
 * - `pk = <tenant>#<user>`, `sk = preferences`: `preferences` (a map) and `expiresAt`.
 * The ids are URI-encoded inside the keys, so a `#` in a tenant or user id cannot make two
 * tenants' keys equal.
 *
 * Appends are a read-modify-write guarded by the `version` attribute: read the session, append
 * and trim to `maxTurns`, then write only if the version is still the one read (or the item
 * still absent); a concurrent append makes the write fail, and it is retried on fresh data. So
 * no turn is lost and the list never exceeds `maxTurns`. DynamoDB deletes expired items lazily
 * (within days), so reads, and appends, treat an item whose `expiresAt` has passed as absent.
 */
export class DynamoDbUserContextStore implements UserContextStore {
  /** Partition key of a user of a tenant. */
  static partitionKey(tenantId: string, userId: string): string {
    return `${encodeURIComponent(tenantId)}#${encodeURIComponent(userId)}`;
  }

  static sessionSortKey(sessionId: string): string {
    return `${SESSION_SK_PREFIX}${encodeURIComponent(sessionId)}`;
  }

  private readonly doc: DynamoDBDocumentClient;
  private readonly maxAttempts: number;
  private readonly maxSessionBytes: number;

  constructor(
    private readonly tableName: string,
    client: DynamoDBClient = traced(new DynamoDBClient({})),
    options: DynamoDbUserContextStoreOptions = {},
  ) {
    this.doc = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
    this.maxAttempts = Math.max(1, options.maxAttempts ?? 8);
    this.maxSessionBytes = options.maxSessionBytes ?? 300_000;
  }

  async load(tenantId: string, userId: string, sessionId: string, maxTurns: number): Promise<UserContext> {
    const pk = DynamoDbUserContextStore.partitionKey(tenantId, userId);
    const now = nowSeconds();
    const [session, prefs] = await Promise.all([
      // Strongly consistent: the next turn of a conversation often follows its append closely.
      this.doc.send(new GetCommand({
        TableName: this.tableName,
        Key: { pk, sk: DynamoDbUserContextStore.sessionSortKey(sessionId) },
        ConsistentRead: true,
      })),
      this.doc.send(new GetCommand({ TableName: this.tableName, Key: { pk, sk: PREFERENCES_SK } })),
    ]);
    const s = live(session.Item as SessionItem | undefined, now);
    const p = live(prefs.Item as PreferencesItem | undefined, now);
    const n = Math.max(0, Math.floor(maxTurns));
    const turns = toTurns(s?.turns);
    const preferences: Record<string, string> = {};
    for (const [k, v] of Object.entries(p?.preferences ?? {})) if (typeof v === 'string') preferences[k] = v;
    return { turns: n === 0 ? [] : turns.slice(-n), preferences };
  }

  async appendTurns(tenantId: string, userId: string, sessionId: string, turns: ChatMessage[], limits: UserContextLimits): Promise<void> {
    if (turns.length === 0) return;
    const key = { pk: DynamoDbUserContextStore.partitionKey(tenantId, userId), sk: DynamoDbUserContextStore.sessionSortKey(sessionId) };
    const max = Math.max(1, Math.floor(limits.maxTurns));
    const ttl = Math.max(1, Math.ceil(limits.ttlSeconds));
    for (let attempt = 1; ; attempt++) {
      const current = await this.doc.send(new GetCommand({ TableName: this.tableName, Key: key, ConsistentRead: true }));
      const item = current.Item as SessionItem | undefined;
      const now = nowSeconds();
      const existing = live(item, now) ? toTurns(item?.turns) : [];
      const next = this.trim([...existing, ...turns.map((t) => ({ role: t.role, text: t.text }))], max);
      const version = typeof item?.version === 'number' ? item.version : undefined;
      try {
        await this.doc.send(
          new PutCommand({
            TableName: this.tableName,
            Item: { ...key, turns: next, version: (version ?? 0) + 1, expiresAt: now + ttl },
            // An item written without a version (or none at all) is replaced only if still so.
            ConditionExpression: version === undefined ? 'attribute_not_exists(version)' : 'version = :v',
            ExpressionAttributeValues: version === undefined ? undefined : { ':v': version },
          }),
        );
        return;
      } catch (err) {
        if ((err as Error).name !== 'ConditionalCheckFailedException' || attempt >= this.maxAttempts) throw err;
        // Lost to a concurrent append: back off a little and redo it on fresh data.
        await new Promise((r) => setTimeout(r, Math.random() * 20 * attempt));
      }
    }
  }

  async setPreferences(tenantId: string, userId: string, preferences: Record<string, string>, ttlSeconds: number): Promise<void> {
    await this.doc.send(
      new PutCommand({
        TableName: this.tableName,
        Item: {
          pk: DynamoDbUserContextStore.partitionKey(tenantId, userId),
          sk: PREFERENCES_SK,
          preferences: { ...preferences },
          expiresAt: nowSeconds() + Math.max(1, Math.ceil(ttlSeconds)),
        },
      }),
    );
  }

  async clear(tenantId: string, userId: string): Promise<void> {
    const pk = DynamoDbUserContextStore.partitionKey(tenantId, userId);
    const keys: Array<{ pk: string; sk: string }> = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await this.doc.send(
        new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression: 'pk = :pk',
          ExpressionAttributeValues: { ':pk': pk },
          ProjectionExpression: 'pk, sk',
          ConsistentRead: true,
          ExclusiveStartKey: startKey,
        }),
      );
      for (const item of page.Items ?? []) keys.push({ pk: String(item.pk), sk: String(item.sk) });
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    for (let i = 0; i < keys.length; i += 25) {
      await this.batchDelete(keys.slice(i, i + 25));
    }
  }

  /** Deletes up to 25 keys, retrying what DynamoDB leaves unprocessed. */
  private async batchDelete(keys: Array<{ pk: string; sk: string }>): Promise<void> {
    let requests: BatchWriteCommandInput['RequestItems'] = {
      [this.tableName]: keys.map((Key) => ({ DeleteRequest: { Key } })),
    };
    for (let attempt = 1; requests && Object.keys(requests).length > 0; attempt++) {
      if (attempt > this.maxAttempts) throw new Error(`clear: ${requests[this.tableName]?.length ?? 0} deletes left unprocessed`);
      if (attempt > 1) await new Promise((r) => setTimeout(r, 25 * 2 ** attempt));
      const out: BatchWriteCommandOutput = await this.doc.send(new BatchWriteCommand({ RequestItems: requests }));
      requests = out.UnprocessedItems;
    }
  }

  /** The newest turns within `max` and the byte budget. */
  private trim(turns: ChatMessage[], max: number): ChatMessage[] {
    const kept = turns.slice(-max);
    let bytes = kept.reduce((n, t) => n + Buffer.byteLength(t.text, 'utf8'), 0);
    while (kept.length > 1 && bytes > this.maxSessionBytes) bytes -= Buffer.byteLength(kept.shift()!.text, 'utf8');
    return kept;
  }
}

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/** The item, unless its TTL has passed (DynamoDB's TTL deletion is lazy). */
function live<T extends { expiresAt?: number }>(item: T | undefined, now: number): T | undefined {
  if (!item) return undefined;
  return typeof item.expiresAt === 'number' && item.expiresAt <= now ? undefined : item;
}

function toTurns(raw: SessionItem['turns']): ChatMessage[] {
  const turns: ChatMessage[] = [];
  for (const t of raw ?? []) {
    if ((t.role === 'user' || t.role === 'assistant') && typeof t.text === 'string') turns.push({ role: t.role, text: t.text });
  }
  return turns;
}
