/**
 * The key design of the per-user stores, for one large tenant (README "Partitioning"), on real
 * local servers: the Valkey adapters on redis-server, DynamoDbUserContextStore on dynalite.
 *
 * - Valkey: every key a tenant's requests write (user context, personal and shared exact-cache
 *   entries, serving records) hashes whole, with no hash tag, so a large tenant's keys spread over
 *   the 16,384 hash slots of cluster mode instead of all landing on the slot of its tenant hash.
 *   (The library's ResponseCache is cluster-mode disabled, one shard; the slots are what a cluster
 *   would shard by.) The slot is computed as Valkey does: CRC16/XMODEM of the key, or of its hash
 *   tag, mod 16384 (checked against the values of the Redis cluster specification).
 * - DynamoDB: the user-context partition key is `<tenant>#<user>`, one partition key per user.
 *
 * In both, every item reads back for its user, and another tenant with the same user ids reads
 * none of them.
 */
import { ScanCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import Valkey from 'iovalkey';
import { DynamoDbUserContextStore } from '../../lambdas/adapters/dynamodb-user-context-store';
import { ValkeyAnswerCache } from '../../lambdas/adapters/valkey-answer-cache';
import { ValkeyServingRecords } from '../../lambdas/adapters/valkey-serving-records';
import { ValkeyUserContextStore } from '../../lambdas/adapters/valkey-user-context-store';
import { exactCacheKey, type Caller } from '../../lambdas/core/cache-key';
import type { ChatRequest } from '../../lambdas/core/chat-request';
import { servingRecordKey } from '../../lambdas/core/feedback';
import type { CachedAnswer } from '../../lambdas/core/ports';
import { DynaliteServer } from '../support/dynalite-server';
import { RedisServer } from '../support/redis-server';

const PREFIX = 'sai:';
const TENANT = 'tenant-with-a-million-users';
const OTHER = 'a-small-tenant';
const LIMITS = { maxTurns: 4, ttlSeconds: 3_600 };
const SLOTS = 16_384;

/** CRC16/XMODEM (polynomial 0x1021, initial 0): the checksum of Valkey's (and Redis's) cluster key slots. */
/* eslint-disable no-bitwise -- a CRC is defined by shifts and XORs */
function crc16(data: Buffer): number {
  let crc = 0;
  for (const byte of data) {
    crc ^= byte << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}
/* eslint-enable no-bitwise */

/** The cluster hash slot of a key: of its hash tag (`{...}`, non-empty) when it has one, else of the whole key. */
function keySlot(key: string): number {
  const open = key.indexOf('{');
  if (open !== -1) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) return crc16(Buffer.from(key.slice(open + 1, close), 'utf8')) % SLOTS;
  }
  return crc16(Buffer.from(key, 'utf8')) % SLOTS;
}

const answer = (text: string): CachedAnswer => ({ id: text, text, tierId: 'small', usage: { inputTokens: 1, outputTokens: 1 }, costUsd: 0, createdAt: Date.now() });
const users = (n: number): string[] => Array.from({ length: n }, (_, i) => `user-${i}`);

test('keySlot computes the slots of the Redis cluster specification', () => {
  expect(crc16(Buffer.from('123456789'))).toBe(0x31c3);
  // The examples of CLUSTER KEYSLOT and of the specification's hash tags.
  expect(keySlot('somekey')).toBe(11_058);
  expect(keySlot('foo{hash_tag}')).toBe(2_515);
  expect(keySlot('{user1000}.following')).toBe(keySlot('{user1000}.followers'));
  expect(keySlot('foo{bar}{zap}')).toBe(keySlot('bar'));
  expect(keySlot('foo{{bar}}zap')).toBe(keySlot('{bar'));
  expect(keySlot('foo{}{bar}')).toBe(crc16(Buffer.from('foo{}{bar}')) % SLOTS);
});

describe('Valkey: 1,000 users of one tenant', () => {
  let redis: RedisServer;
  let valkey: Valkey;

  beforeAll(async () => {
    redis = await RedisServer.start();
    valkey = new Valkey({ host: redis.host, port: redis.port, maxRetriesPerRequest: 1 });
    valkey.on('error', () => undefined);
  });

  afterAll(async () => {
    if (valkey && valkey.status !== 'end') {
      const ended = new Promise<void>((resolve) => valkey.once('end', () => resolve()));
      valkey.disconnect();
      await ended;
    }
    await redis?.dispose();
  });

  test('their keys carry no hash tag and spread over the hash slots; each user reads back its own data, another tenant none', async () => {
    const context = new ValkeyUserContextStore(valkey, PREFIX);
    const exact = new ValkeyAnswerCache(valkey);
    const records = new ValkeyServingRecords(valkey);
    const personal = (userId: string): ChatRequest => ({ messages: [{ role: 'user', text: `where is order ${userId}?` }], session: 's1' });
    const shared = (i: number): ChatRequest => ({ messages: [{ role: 'user', text: `shared question ${i}` }] });

    for (const userId of users(1_000)) {
      const caller: Caller = { tenantId: TENANT, userId };
      await context.appendTurns(TENANT, userId, 's1', [{ role: 'user', text: `hi from ${userId}` }], LIMITS);
      await context.setPreferences(TENANT, userId, { name: userId }, LIMITS.ttlSeconds);
      await exact.set(exactCacheKey(PREFIX, caller, personal(userId), undefined), answer(`personal ${userId}`), 3_600);
      await exact.set(exactCacheKey(PREFIX, caller, shared(Number(userId.slice(5))), undefined), answer(`shared ${userId}`), 3_600);
      await records.put(servingRecordKey(PREFIX, caller, `request-of-${userId}`), { servedBy: 'model', tierId: 'small' }, 3_600);
    }

    const keys = await valkey.keys(`${PREFIX}*`);
    // Per user: a session list, the sessions set, preferences, a personal exact entry, a serving
    // record; and one shared exact entry per question.
    expect(keys).toHaveLength(6_000);
    expect(keys.filter((k) => k.includes('{'))).toEqual([]);
    const perSlot = new Map<number, number>();
    for (const key of keys) perSlot.set(keySlot(key), (perSlot.get(keySlot(key)) ?? 0) + 1);
    // 6,000 keys hashed uniformly fill about 16,384 x (1 - e^(-6000/16384)) = 5,000 slots, at most
    // a handful each. With a hash tag of the tenant alone they would all share one slot.
    expect(perSlot.size).toBeGreaterThan(4_500);
    expect(Math.max(...perSlot.values())).toBeLessThanOrEqual(8);

    for (const userId of users(1_000)) {
      const caller: Caller = { tenantId: TENANT, userId };
      await expect(context.load(TENANT, userId, 's1', 4)).resolves.toEqual({ turns: [{ role: 'user', text: `hi from ${userId}` }], preferences: { name: userId } });
      expect((await exact.get(exactCacheKey(PREFIX, caller, personal(userId), undefined)))?.text).toBe(`personal ${userId}`);
      expect((await exact.get(exactCacheKey(PREFIX, caller, shared(Number(userId.slice(5))), undefined)))?.text).toBe(`shared ${userId}`);
      expect((await records.claim(servingRecordKey(PREFIX, caller, `request-of-${userId}`), 'right'))?.record).toEqual({ servedBy: 'model', tierId: 'small' });
    }
    for (const userId of users(1_000).filter((_, i) => i % 50 === 0)) {
      const caller: Caller = { tenantId: OTHER, userId };
      await expect(context.load(OTHER, userId, 's1', 4)).resolves.toEqual({ turns: [], preferences: {} });
      await expect(exact.get(exactCacheKey(PREFIX, caller, personal(userId), undefined))).resolves.toBeUndefined();
      await expect(exact.get(exactCacheKey(PREFIX, caller, shared(Number(userId.slice(5))), undefined))).resolves.toBeUndefined();
      await expect(records.claim(servingRecordKey(PREFIX, caller, `request-of-${userId}`), 'right')).resolves.toBeUndefined();
    }
  });
});

describe('DynamoDB user context: 100 users of one tenant', () => {
  const TABLE = 'user-context-partitioning';
  let dynalite: DynaliteServer;
  let dynamo: DynamoDBClient;

  beforeAll(async () => {
    dynalite = await DynaliteServer.start([DynaliteServer.userContextTable(TABLE)]);
    dynamo = dynalite.client();
  });

  afterAll(async () => {
    await dynalite?.stop();
  });

  test('one partition key per user (no partition per tenant); each user reads back its own context, another tenant none', async () => {
    const store = new DynamoDbUserContextStore(TABLE, dynamo);
    for (const userId of users(100)) {
      await store.appendTurns(TENANT, userId, 's1', [{ role: 'user', text: `hi from ${userId}` }], LIMITS);
      await store.setPreferences(TENANT, userId, { name: userId }, LIMITS.ttlSeconds);
    }
    const pks = new Set<string>();
    let start: Record<string, never> | undefined;
    do {
      const page = await dynamo.send(new ScanCommand({ TableName: TABLE, ProjectionExpression: 'pk', ExclusiveStartKey: start }));
      for (const item of page.Items ?? []) pks.add(item.pk.S!);
      start = page.LastEvaluatedKey as Record<string, never> | undefined;
    } while (start);
    expect(pks).toEqual(new Set(users(100).map((u) => DynamoDbUserContextStore.partitionKey(TENANT, u))));

    for (const userId of users(100)) {
      await expect(store.load(TENANT, userId, 's1', 4)).resolves.toEqual({ turns: [{ role: 'user', text: `hi from ${userId}` }], preferences: { name: userId } });
    }
    for (const userId of users(100).filter((_, i) => i % 10 === 0)) {
      await expect(store.load(OTHER, userId, 's1', 4)).resolves.toEqual({ turns: [], preferences: {} });
    }
  });
});
