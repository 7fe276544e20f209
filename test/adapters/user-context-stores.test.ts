/**
 * The two UserContextStore adapters, each on a real local server: ValkeyUserContextStore on the
 * Redis-protocol server (redis-server / valkey-server), DynamoDbUserContextStore on dynalite
 * through the real AWS SDK v3 DynamoDB client. Both run the same behavioural contract; each then
 * has checks of its own storage layout (TTLs, keys, concurrency).
 */
import { GetItemCommand, PutItemCommand, ScanCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import Valkey from 'iovalkey';
import { DynamoDbUserContextStore } from '../../lambdas/adapters/dynamodb-user-context-store';
import { ValkeyUserContextStore } from '../../lambdas/adapters/valkey-user-context-store';
import type { ChatMessage } from '../../lambdas/core/chat-request';
import type { UserContextStore } from '../../lambdas/core/user-context';
import { DynaliteServer } from '../support/dynalite-server';
import { RedisServer } from '../support/redis-server';

const TABLE = 'user-context';
const LIMITS = { maxTurns: 4, ttlSeconds: 3_600 };

let redis: RedisServer;
let valkey: Valkey;
let dynalite: DynaliteServer;
let dynamo: DynamoDBClient;
let tableSeq = 0;

const turn = (role: 'user' | 'assistant', text: string): ChatMessage => ({ role, text });
const exchange = (n: number): ChatMessage[] => [turn('user', `question ${n}`), turn('assistant', `answer ${n}`)];

beforeAll(async () => {
  [redis, dynalite] = await Promise.all([RedisServer.start(), DynaliteServer.start([DynaliteServer.userContextTable(TABLE)])]);
  valkey = new Valkey({ host: redis.host, port: redis.port, maxRetriesPerRequest: 1 });
  valkey.on('error', () => undefined);
  dynamo = dynalite.client();
});

afterAll(async () => {
  if (valkey && valkey.status !== 'end') {
    const ended = new Promise<void>((resolve) => valkey.once('end', () => resolve()));
    valkey.disconnect();
    await ended;
  }
  await Promise.all([redis?.dispose(), dynalite?.stop()]);
});

const implementations: Array<[string, () => Promise<UserContextStore>]> = [
  ['ValkeyUserContextStore', async () => {
    await valkey.flushall();
    return new ValkeyUserContextStore(valkey, 'sai:');
  }],
  ['DynamoDbUserContextStore', async () => {
    // A fresh partition space per test: a new tenant prefix keeps tests apart in one table.
    tableSeq++;
    return new DynamoDbUserContextStore(TABLE, dynamo);
  }],
];

describe.each(implementations)('%s', (_, make) => {
  let store: UserContextStore;
  let tenant: string;

  beforeEach(async () => {
    store = await make();
    tenant = `tenant-${tableSeq}-${Math.random().toString(36).slice(2)}`;
  });

  test('an unknown user has an empty context', async () => {
    await expect(store.load(tenant, 'nobody', 's1', 10)).resolves.toEqual({ turns: [], preferences: {} });
  });

  test('appended turns come back oldest first; only the newest maxTurns are kept', async () => {
    await store.appendTurns(tenant, 'u1', 's1', exchange(1), LIMITS);
    await store.appendTurns(tenant, 'u1', 's1', exchange(2), LIMITS);
    expect((await store.load(tenant, 'u1', 's1', 10)).turns).toEqual([...exchange(1), ...exchange(2)]);

    await store.appendTurns(tenant, 'u1', 's1', exchange(3), LIMITS);
    // maxTurns 4: exchange 1 is gone from storage, not just from the answer.
    expect((await store.load(tenant, 'u1', 's1', 10)).turns).toEqual([...exchange(2), ...exchange(3)]);
    // load's own maxTurns takes the newest of what is kept.
    expect((await store.load(tenant, 'u1', 's1', 1)).turns).toEqual([turn('assistant', 'answer 3')]);
    expect((await store.load(tenant, 'u1', 's1', 0)).turns).toEqual([]);
  });

  test('one append larger than maxTurns keeps its newest turns', async () => {
    await store.appendTurns(tenant, 'u1', 's1', [...exchange(1), ...exchange(2), ...exchange(3)], { maxTurns: 3, ttlSeconds: 60 });
    expect((await store.load(tenant, 'u1', 's1', 10)).turns).toEqual([turn('assistant', 'answer 2'), ...exchange(3)]);
  });

  test('sessions of a user are separate', async () => {
    await store.appendTurns(tenant, 'u1', 's1', exchange(1), LIMITS);
    await store.appendTurns(tenant, 'u1', 's2', exchange(2), LIMITS);
    expect((await store.load(tenant, 'u1', 's1', 10)).turns).toEqual(exchange(1));
    expect((await store.load(tenant, 'u1', 's2', 10)).turns).toEqual(exchange(2));
  });

  test('preferences are replaced, not merged', async () => {
    await store.setPreferences(tenant, 'u1', { language: 'de', tone: 'brief' }, 600);
    expect((await store.load(tenant, 'u1', 's1', 10)).preferences).toEqual({ language: 'de', tone: 'brief' });
    await store.setPreferences(tenant, 'u1', { language: 'fr' }, 600);
    expect((await store.load(tenant, 'u1', 's1', 10)).preferences).toEqual({ language: 'fr' });
    await store.setPreferences(tenant, 'u1', {}, 600);
    expect((await store.load(tenant, 'u1', 's1', 10)).preferences).toEqual({});
  });

  test('the same user id under two tenants (and the same session id) never mixes', async () => {
    const other = `${tenant}-other`;
    await store.appendTurns(tenant, 'alice', 's1', exchange(1), LIMITS);
    await store.setPreferences(tenant, 'alice', { language: 'de' }, 600);
    await store.appendTurns(other, 'alice', 's1', exchange(2), LIMITS);
    await store.setPreferences(other, 'alice', { language: 'en' }, 600);
    expect(await store.load(tenant, 'alice', 's1', 10)).toEqual({ turns: exchange(1), preferences: { language: 'de' } });
    expect(await store.load(other, 'alice', 's1', 10)).toEqual({ turns: exchange(2), preferences: { language: 'en' } });
    // Nor do ids that only differ by where a separator falls.
    await store.appendTurns('a#b', 'c', 's', exchange(7), LIMITS);
    expect((await store.load('a', 'b#c', 's', 10)).turns).toEqual([]);
    await store.appendTurns('x:y', 'z', 's', exchange(8), LIMITS);
    expect((await store.load('x', 'y:z', 's', 10)).turns).toEqual([]);
  });

  test('clear removes every session and the preferences of that user only', async () => {
    await store.appendTurns(tenant, 'u1', 's1', exchange(1), LIMITS);
    await store.appendTurns(tenant, 'u1', 's2', exchange(2), LIMITS);
    await store.setPreferences(tenant, 'u1', { language: 'de' }, 600);
    await store.appendTurns(tenant, 'u2', 's1', exchange(3), LIMITS);
    await store.appendTurns(`${tenant}-x`, 'u1', 's1', exchange(4), LIMITS);

    await store.clear(tenant, 'u1');
    await expect(store.load(tenant, 'u1', 's1', 10)).resolves.toEqual({ turns: [], preferences: {} });
    await expect(store.load(tenant, 'u1', 's2', 10)).resolves.toEqual({ turns: [], preferences: {} });
    expect((await store.load(tenant, 'u2', 's1', 10)).turns).toEqual(exchange(3));
    expect((await store.load(`${tenant}-x`, 'u1', 's1', 10)).turns).toEqual(exchange(4));
    // Clearing again, or a user with nothing, is fine.
    await expect(store.clear(tenant, 'u1')).resolves.toBeUndefined();
  });

  test('turn text survives as written (unicode, quotes, newlines)', async () => {
    const text = 'Grüße "quoted" \n second line — 日本語 🙂';
    await store.appendTurns(tenant, 'u1', 's1', [turn('user', text)], LIMITS);
    expect((await store.load(tenant, 'u1', 's1', 10)).turns).toEqual([turn('user', text)]);
  });
});

describe('ValkeyUserContextStore layout', () => {
  let store: ValkeyUserContextStore;

  beforeEach(async () => {
    await valkey.flushall();
    store = new ValkeyUserContextStore(valkey, 'sai:');
  });

  test('keys hash the ids under <prefix>ctx:<sha256(tenant)[:16]>:<sha256(user)[:16]>: and every key has a TTL', async () => {
    await store.appendTurns('acme', 'alice', 'sess-1', exchange(1), { maxTurns: 10, ttlSeconds: 900 });
    await store.setPreferences('acme', 'alice', { tone: 'brief' }, 300);
    const keys = (await valkey.keys('*')).sort();
    // sha256('acme')[:16] and sha256('alice')[:16]
    const prefix = 'sai:ctx:822b33ad87c148a0:2bd806c97f0e00af:';
    expect(store.userPrefix('acme', 'alice')).toBe(prefix);
    expect(keys).toEqual([`${prefix}prefs`, `${prefix}s:${store.sessionKey('acme', 'alice', 'sess-1').split(':s:')[1]}`, `${prefix}sessions`].sort());
    expect(keys.join(' ')).not.toMatch(/acme|alice|sess-1/);
    for (const key of keys) {
      const ttl = await valkey.ttl(key);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(key.endsWith('prefs') ? 300 : 900);
    }
    expect(await valkey.type(store.sessionKey('acme', 'alice', 'sess-1'))).toBe('list');
    expect(await valkey.type(store.preferencesKey('acme', 'alice'))).toBe('hash');
    expect(await valkey.smembers(store.sessionsKey('acme', 'alice'))).toEqual([store.sessionKey('acme', 'alice', 'sess-1')]);
  });

  test('appending renews the TTL', async () => {
    const key = store.sessionKey('t', 'u', 's');
    await store.appendTurns('t', 'u', 's', exchange(1), { maxTurns: 10, ttlSeconds: 100 });
    await valkey.expire(key, 5);
    await store.appendTurns('t', 'u', 's', exchange(2), { maxTurns: 10, ttlSeconds: 100 });
    expect(await valkey.ttl(key)).toBeGreaterThan(5);
  });

  test('a corrupt stored turn is skipped, not fatal', async () => {
    await store.appendTurns('t', 'u', 's', exchange(1), LIMITS);
    await valkey.rpush(store.sessionKey('t', 'u', 's'), '{not json', JSON.stringify({ role: 'system', text: 'x' }));
    expect((await store.load('t', 'u', 's', 10)).turns).toEqual(exchange(1));
  });

  test('concurrent appends lose no turn and keep the bound', async () => {
    await Promise.all(Array.from({ length: 10 }, (_, i) => store.appendTurns('t', 'u', 's', [turn('user', `m${i}`)], { maxTurns: 50, ttlSeconds: 60 })));
    expect((await store.load('t', 'u', 's', 50)).turns.map((t) => t.text).sort()).toEqual(Array.from({ length: 10 }, (_, i) => `m${i}`).sort());
  });
});

describe('DynamoDbUserContextStore layout', () => {
  let store: DynamoDbUserContextStore;

  beforeEach(() => {
    store = new DynamoDbUserContextStore(TABLE, dynamo);
  });

  test('items: pk <tenant>#<user>, sk session#<id> with turns and version, sk preferences with a map; expiresAt in the future', async () => {
    const before = Math.floor(Date.now() / 1000);
    await store.appendTurns('layout-t', 'bob', 'sess/1', exchange(1), { maxTurns: 10, ttlSeconds: 900 });
    await store.appendTurns('layout-t', 'bob', 'sess/1', exchange(2), { maxTurns: 10, ttlSeconds: 900 });
    await store.setPreferences('layout-t', 'bob', { language: 'de' }, 300);
    const session = await dynamo.send(new GetItemCommand({ TableName: TABLE, Key: { pk: { S: 'layout-t#bob' }, sk: { S: 'session#sess%2F1' } } }));
    expect(session.Item?.turns.L?.map((t) => t.M?.text.S)).toEqual(['question 1', 'answer 1', 'question 2', 'answer 2']);
    expect(session.Item?.turns.L?.[0].M?.role.S).toBe('user');
    expect(session.Item?.version.N).toBe('2');
    const sessionExpiry = Number(session.Item?.expiresAt.N);
    expect(sessionExpiry).toBeGreaterThanOrEqual(before + 900);
    expect(sessionExpiry).toBeLessThanOrEqual(Math.floor(Date.now() / 1000) + 900);

    const prefs = await dynamo.send(new GetItemCommand({ TableName: TABLE, Key: { pk: { S: 'layout-t#bob' }, sk: { S: 'preferences' } } }));
    expect(prefs.Item?.preferences.M).toEqual({ language: { S: 'de' } });
    expect(Number(prefs.Item?.expiresAt.N)).toBeGreaterThan(Date.now() / 1000);
    expect(DynamoDbUserContextStore.partitionKey('a#b', 'c')).not.toBe(DynamoDbUserContextStore.partitionKey('a', 'b#c'));
  });

  test('expired items read as absent (TTL deletion is lazy), and an append starts the session afresh', async () => {
    const pk = { S: 'expiry-t#u' };
    const past = String(Math.floor(Date.now() / 1000) - 10);
    await dynamo.send(new PutItemCommand({
      TableName: TABLE,
      Item: { pk, sk: { S: 'session#s' }, version: { N: '3' }, expiresAt: { N: past }, turns: { L: [{ M: { role: { S: 'user' }, text: { S: 'stale' } } }] } },
    }));
    await dynamo.send(new PutItemCommand({ TableName: TABLE, Item: { pk, sk: { S: 'preferences' }, expiresAt: { N: past }, preferences: { M: { tone: { S: 'old' } } } } }));
    await expect(store.load('expiry-t', 'u', 's', 10)).resolves.toEqual({ turns: [], preferences: {} });

    await store.appendTurns('expiry-t', 'u', 's', exchange(1), LIMITS);
    expect((await store.load('expiry-t', 'u', 's', 10)).turns).toEqual(exchange(1));
  });

  test('concurrent appends to one session lose no turn and never exceed maxTurns', async () => {
    const appends = Array.from({ length: 8 }, (_, i) => store.appendTurns('race-t', 'u', 's', [turn('user', `m${i}`)], { maxTurns: 100, ttlSeconds: 60 }));
    await Promise.all(appends);
    const texts = (await store.load('race-t', 'u', 's', 100)).turns.map((t) => t.text);
    expect(texts.sort()).toEqual(Array.from({ length: 8 }, (_, i) => `m${i}`).sort());

    await Promise.all(Array.from({ length: 6 }, (_, i) => store.appendTurns('race-t', 'u', 's2', [turn('user', `n${i}`)], { maxTurns: 3, ttlSeconds: 60 })));
    const item = await dynamo.send(new GetItemCommand({ TableName: TABLE, Key: { pk: { S: 'race-t#u' }, sk: { S: 'session#s2' } } }));
    expect(item.Item?.turns.L).toHaveLength(3);
    expect(item.Item?.version.N).toBe('6');
  });

  test('a session over the byte budget drops its oldest turns', async () => {
    const small = new DynamoDbUserContextStore(TABLE, dynamo, { maxSessionBytes: 25 });
    await small.appendTurns('bytes-t', 'u', 's', [turn('user', 'x'.repeat(10)), turn('assistant', 'y'.repeat(10)), turn('user', 'z'.repeat(10))], LIMITS);
    expect((await small.load('bytes-t', 'u', 's', 10)).turns.map((t) => t.text)).toEqual(['y'.repeat(10), 'z'.repeat(10)]);
  });

  test('clear pages through many items and deletes them all (BatchWrite in 25s)', async () => {
    for (let i = 0; i < 30; i++) await store.appendTurns('many-t', 'u', `s${i}`, [turn('user', `q${i}`)], LIMITS);
    await store.setPreferences('many-t', 'u', { a: 'b' }, 60);
    await store.appendTurns('many-t', 'other', 's0', [turn('user', 'keep me')], LIMITS);
    await store.clear('many-t', 'u');
    const left = await dynamo.send(new ScanCommand({ TableName: TABLE, FilterExpression: 'begins_with(pk, :p)', ExpressionAttributeValues: { ':p': { S: 'many-t#' } } }));
    expect(left.Items?.map((i) => i.pk.S)).toEqual(['many-t#other']);
  });
});
