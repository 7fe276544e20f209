/**
 * ValkeyVectorStore.
 *
 * The local Redis-protocol server (Debian's redis-server 7.0 or valkey-server 8.0) has no vector
 * search: no valkey-search module is packaged, so `FT.CREATE` / `FT.SEARCH` cannot run here.
 * Those commands are therefore checked against a tiny fake RESP server in this file that records
 * the exact bytes iovalkey sends and answers with replies shaped like the documented ones
 * (ElastiCache FT.SEARCH: `[total, key, [field, value, ...], ...]`). Everything else the store
 * does (HSET + EXPIRE, the per-scope sorted set, eviction, scope deletion) runs on the real server.
 */
import * as net from 'node:net';
import Valkey from 'iovalkey';
import { ValkeyVectorStore, escapeTag, parseSearchReply } from '../../lambdas/adapters/valkey-vector-store';
import type { CachedAnswer } from '../../lambdas/core/ports';
import type { SemanticEntry } from '../../lambdas/core/semantic/ports';
import { normalize } from '../../lambdas/core/semantic/vectors';
import { RedisServer } from '../support/redis-server';

// ---------------------------------------------------------------------------------------------
// A fake RESP2 server: records commands, answers with scripted replies.

type Resp = number | string | Buffer | null | Resp[] | { readonly simple: string } | { readonly error: string };

function encode(value: Resp): Buffer {
  if (value === null) return Buffer.from('$-1\r\n');
  if (typeof value === 'number') return Buffer.from(`:${value}\r\n`);
  if (typeof value === 'string' || Buffer.isBuffer(value)) {
    const bytes = Buffer.isBuffer(value) ? value : Buffer.from(value, 'utf8');
    return Buffer.concat([Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from('\r\n')]);
  }
  if (Array.isArray(value)) return Buffer.concat([Buffer.from(`*${value.length}\r\n`), ...value.map(encode)]);
  if ('simple' in value) return Buffer.from(`+${value.simple}\r\n`);
  return Buffer.from(`-${value.error}\r\n`);
}

/** Parses complete `*<n>\r\n($<len>\r\n<bytes>\r\n)*` commands off the front of `buf`. */
function parseCommands(buf: Buffer): { commands: Buffer[][]; rest: Buffer } {
  const commands: Buffer[][] = [];
  let pos = 0;
  const line = (from: number): { text: string; next: number } | undefined => {
    const end = buf.indexOf('\r\n', from);
    return end < 0 ? undefined : { text: buf.subarray(from, end).toString('latin1'), next: end + 2 };
  };
  outer: while (pos < buf.length) {
    const head = line(pos);
    if (!head) break;
    if (!head.text.startsWith('*')) throw new Error(`fake RESP server: unexpected ${JSON.stringify(head.text)}`);
    const count = Number(head.text.slice(1));
    let at = head.next;
    const args: Buffer[] = [];
    for (let i = 0; i < count; i++) {
      const len = line(at);
      if (!len) break outer;
      const n = Number(len.text.slice(1));
      if (buf.length < len.next + n + 2) break outer;
      args.push(Buffer.from(buf.subarray(len.next, len.next + n)));
      at = len.next + n + 2;
    }
    commands.push(args);
    pos = at;
  }
  return { commands, rest: buf.subarray(pos) };
}

class FakeResp {
  static async start(): Promise<FakeResp> {
    const fake = new FakeResp();
    await new Promise<void>((resolve) => fake.server.listen(0, '127.0.0.1', () => resolve()));
    return fake;
  }

  /** Every command received except the connection handshake (INFO, CLIENT, SELECT). */
  readonly commands: Buffer[][] = [];
  /** Replies by upper-case command name; a function is called with the arguments. */
  readonly replies = new Map<string, Resp | ((args: Buffer[]) => Resp)>();
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();

  private constructor() {
    this.server = net.createServer((socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
      let pending = Buffer.alloc(0);
      socket.on('data', (chunk) => {
        const { commands, rest } = parseCommands(Buffer.concat([pending, chunk]));
        pending = Buffer.from(rest);
        for (const args of commands) socket.write(encode(this.answer(args)));
      });
    });
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  /** The recorded commands named `name`, arguments as strings (binary ones as latin1). */
  named(name: string): Buffer[][] {
    return this.commands.filter((c) => c[0].toString().toUpperCase() === name);
  }

  private answer(args: Buffer[]): Resp {
    const name = args[0].toString().toUpperCase();
    if (name === 'INFO') return '# Server\r\nredis_version:8.1.0\r\nloading:0\r\n';
    if (name === 'CLIENT' || name === 'SELECT') return { simple: 'OK' };
    this.commands.push(args);
    const reply = this.replies.get(name);
    if (reply === undefined) return { simple: 'OK' };
    return typeof reply === 'function' ? reply(args) : reply;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

// ---------------------------------------------------------------------------------------------

const HNSW = { m: 16, efConstruction: 200, efSearch: 40 };
const KEY_PREFIX = 'sai:';
const INDEX = 'semantic-v1';
const SCOPE_A = 'a'.repeat(32);
const SCOPE_B = 'b'.repeat(32);

function answer(text: string): CachedAnswer {
  return { text, tierId: 'small', usage: { inputTokens: 12, outputTokens: 7 }, costUsd: 0.000123, createdAt: 1_790_000_000_000 };
}

/** Float32 little-endian bytes, written independently of the store's helper. */
function le(values: number[]): Buffer {
  const view = new DataView(new ArrayBuffer(values.length * 4));
  values.forEach((x, i) => view.setFloat32(i * 4, x, true));
  return Buffer.from(view.buffer);
}

function unit(values: number[]): Float32Array {
  return normalize(Float32Array.from(values));
}

function entry(id: string, scope: string, createdAt: number, overrides: Partial<SemanticEntry> = {}): SemanticEntry {
  return {
    id,
    scope,
    question: `question ${id}`,
    vector: unit([1, 2, 3, 4]),
    answer: answer(`answer ${id}`),
    answerVector: unit([4, 3, 2, 1]),
    answerKey: `key-${id}`,
    createdAt,
    ...overrides,
  };
}

function newClient(port: number): Valkey {
  const client = new Valkey({ host: '127.0.0.1', port, maxRetriesPerRequest: 1, retryStrategy: () => null });
  client.on('error', () => undefined);
  return client;
}

async function closeClient(client: Valkey | undefined): Promise<void> {
  if (!client || client.status === 'end') return;
  const ended = new Promise<void>((resolve) => client.once('end', () => resolve()));
  client.disconnect();
  await ended;
}

describe('FT commands (fake RESP server: no vector search module runs here)', () => {
  let fake: FakeResp;
  let client: Valkey;
  let store: ValkeyVectorStore;

  beforeAll(async () => {
    fake = await FakeResp.start();
    client = newClient(fake.port);
    store = new ValkeyVectorStore(client, { keyPrefix: KEY_PREFIX, indexName: INDEX, hnsw: HNSW });
  });

  beforeEach(() => {
    fake.commands.length = 0;
    fake.replies.clear();
  });

  afterAll(async () => {
    await closeClient(client);
    await fake?.stop();
  });

  test('ensureIndex sends FT.CREATE with the TAG scope and the HNSW vector field', async () => {
    await store.ensureIndex(1024);
    const [cmd] = fake.named('FT.CREATE');
    expect(cmd.map(String)).toEqual([
      'FT.CREATE', INDEX,
      'ON', 'HASH',
      'PREFIX', '1', 'sai:sem:semantic-v1:',
      'SCHEMA',
      'scope', 'TAG', 'CASESENSITIVE',
      'vector', 'VECTOR', 'HNSW', '12',
      'TYPE', 'FLOAT32', 'DIM', '1024', 'DISTANCE_METRIC', 'COSINE',
      'M', '16', 'EF_CONSTRUCTION', '200', 'EF_RUNTIME', '40',
    ]);
    expect(fake.commands).toHaveLength(1);
  });

  test.each([
    ['valkey-search', `Index ${INDEX} in database 0 already exists.`],
    ['RediSearch', 'Index already exists'],
  ])('ensureIndex treats "already exists" (%s wording) as success', async (_, message) => {
    fake.replies.set('FT.CREATE', { error: message });
    await expect(store.ensureIndex(256)).resolves.toBeUndefined();
    expect(fake.named('FT.CREATE')).toHaveLength(1);
  });

  test('ensureIndex propagates every other error', async () => {
    fake.replies.set('FT.CREATE', { error: 'Maximum number of indexes reached (10). Cannot create additional indexes.' });
    await expect(store.ensureIndex(256)).rejects.toThrow(/Maximum number of indexes/);
  });

  test('search sends a hybrid KNN query with the scope TAG filter, the vector as FLOAT32 LE bytes, LIMIT k and DIALECT 2', async () => {
    fake.replies.set('FT.SEARCH', [0]);
    // Components whose bytes include \r, \n, 0x80 and 0xbf: the vector must travel as raw bytes.
    const values = [1, -1, 0.5, Number.MIN_VALUE, 1.5e-38, -0.25];
    const vector = Float32Array.from(values);
    await expect(store.search(SCOPE_A, vector, 12)).resolves.toEqual([]);
    const [cmd] = fake.named('FT.SEARCH');
    expect(cmd.slice(0, 6).map(String)).toEqual([
      'FT.SEARCH', INDEX,
      `@scope:{${SCOPE_A}}=>[KNN 12 @vector $vec EF_RUNTIME 40 AS dist]`,
      'PARAMS', '2', 'vec',
    ]);
    expect(cmd[6].equals(le(Array.from(vector)))).toBe(true);
    expect(cmd[6]).toHaveLength(values.length * 4);
    expect(cmd.slice(7).map(String)).toEqual(['LIMIT', '0', '12', 'DIALECT', '2']);
  });

  test('a scope with TAG syntax characters is escaped into one literal value', async () => {
    fake.replies.set('FT.SEARCH', [0]);
    await store.search('t|x}{ -*', unit([1, 0, 0, 0]), 3);
    const [cmd] = fake.named('FT.SEARCH');
    expect(String(cmd[2])).toBe('@scope:{t\\|x\\}\\{\\ \\-\\*}=>[KNN 3 @vector $vec EF_RUNTIME 40 AS dist]');
    expect(escapeTag('0123abcdef')).toBe('0123abcdef');
  });

  test('search parses the documented reply shape into matches, most similar first, similarity = 1 - cosine distance', async () => {
    const near = entry('near', SCOPE_A, 1_790_000_000_001);
    const far = entry('far', SCOPE_A, 1_790_000_000_002, { vector: Float32Array.from([0, 0, -1, 0]), answerVector: undefined });
    const fields = (e: SemanticEntry, dist: string): Resp[] => [
      'id', e.id,
      'scope', e.scope,
      'vector', le(Array.from(e.vector)),
      'question', e.question,
      'answer', JSON.stringify(e.answer),
      'answerKey', e.answerKey,
      'createdAt', String(e.createdAt),
      ...(e.answerVector ? ['answerVector', le(Array.from(e.answerVector))] : []),
      'dist', dist,
    ];
    // Deliberately out of order, plus a key whose hash expired between match and fetch (no fields)
    // and one of another scope (cannot happen with the TAG filter; the store drops it anyway).
    fake.replies.set('FT.SEARCH', [
      4,
      `sai:sem:${INDEX}:${SCOPE_A}:far`, fields(far, '0.75'),
      `sai:sem:${INDEX}:${SCOPE_A}:gone`, ['dist', '0.01'],
      `sai:sem:${INDEX}:${SCOPE_A}:near`, fields(near, '0.0500000119209'),
      `sai:sem:${INDEX}:${SCOPE_B}:other`, fields(entry('other', SCOPE_B, 1), '0'),
    ]);
    const matches = await store.search(SCOPE_A, unit([1, 2, 3, 4]), 5);
    expect(matches.map((m) => m.entry.id)).toEqual(['near', 'far']);
    expect(matches[0].similarity).toBeCloseTo(0.95, 6);
    expect(matches[1].similarity).toBeCloseTo(0.25, 6);
    expect(matches[0].entry).toEqual(near);
    expect(Array.from(matches[0].entry.vector)).toEqual(Array.from(near.vector));
    expect(Array.from(matches[0].entry.answerVector!)).toEqual(Array.from(near.answerVector!));
    expect(matches[1].entry.answerVector).toBeUndefined();
    expect(matches[1].entry.answer).toEqual(far.answer);
  });

  test('parseSearchReply reads the ElastiCache FT.SEARCH example reply', () => {
    // FT.SEARCH hash_idx1 "*=>[KNN 2 @VEC $query_vec]" PARAMS 2 query_vec "\x00..." DIALECT 2
    const hits = parseSearchReply([
      2,
      Buffer.from('hash:0'), [Buffer.from('__VEC_score'), Buffer.from('0'), Buffer.from('vec'), Buffer.alloc(8)],
      Buffer.from('hash:1'), [Buffer.from('__VEC_score'), Buffer.from('1'), Buffer.from('vec'), Buffer.from([0, 0, 0, 0, 0, 0, 0x80, 0xbf])],
    ]);
    expect(hits.map((h) => h.key)).toEqual(['hash:0', 'hash:1']);
    expect(hits[1].fields.get('__VEC_score')!.toString()).toBe('1');
    expect(hits[1].fields.get('vec')!.readFloatLE(4)).toBe(-1);
    expect(parseSearchReply([0])).toEqual([]);
    expect(() => parseSearchReply('OK')).toThrow(/unexpected reply/);
  });
});

describe('on a real Redis-protocol server', () => {
  let redis: RedisServer;
  let client: Valkey;
  let store: ValkeyVectorStore;

  beforeAll(async () => {
    redis = await RedisServer.start();
    client = newClient(redis.port);
    store = new ValkeyVectorStore(client, { keyPrefix: KEY_PREFIX, indexName: INDEX, hnsw: HNSW });
  });

  beforeEach(async () => {
    await client.flushall();
  });

  afterAll(async () => {
    await closeClient(client);
    await redis?.dispose();
  });

  test('put writes the entry hash with its TTL and records the id in the scope set', async () => {
    const e = entry('e1', SCOPE_A, 1_790_000_000_123);
    await store.put(e, { ttlSeconds: 600, maxEntriesPerScope: 10 });

    const key = `sai:sem:${INDEX}:${SCOPE_A}:e1`;
    expect(store.entryKey(SCOPE_A, 'e1')).toBe(key);
    const hash = await client.hgetallBuffer(key);
    expect(Object.keys(hash).sort()).toEqual(['answer', 'answerKey', 'answerVector', 'createdAt', 'id', 'question', 'scope', 'vector']);
    expect(hash.scope.toString()).toBe(SCOPE_A);
    expect(hash.question.toString()).toBe('question e1');
    expect(JSON.parse(hash.answer.toString())).toEqual(e.answer);
    expect(hash.answerKey.toString()).toBe('key-e1');
    expect(hash.createdAt.toString()).toBe('1790000000123');
    expect(hash.vector.equals(le(Array.from(e.vector)))).toBe(true);
    expect(hash.answerVector.equals(le(Array.from(e.answerVector!)))).toBe(true);
    const ttl = await client.ttl(key);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(600);

    const zkey = `sai:semz:${INDEX}:${SCOPE_A}`;
    expect(await client.zrange(zkey, 0, -1, 'WITHSCORES')).toEqual(['e1', '1790000000123']);
    expect(await client.ttl(zkey)).toBeGreaterThan(0);
    // The set lies outside the index prefix: FT.CREATE ... PREFIX 1 sai:sem:<index>: never sees it.
    expect(zkey.startsWith(`sai:sem:${INDEX}:`)).toBe(false);
  });

  test('an entry without an answer vector stores no answerVector field', async () => {
    await store.put(entry('e2', SCOPE_A, 1, { answerVector: undefined }), { ttlSeconds: 60, maxEntriesPerScope: 10 });
    expect(await client.hexists(store.entryKey(SCOPE_A, 'e2'), 'answerVector')).toBe(0);
  });

  test('beyond maxEntriesPerScope the oldest entries are evicted: hashes deleted, ids removed; other scopes untouched', async () => {
    await store.put(entry('b1', SCOPE_B, 50), { ttlSeconds: 600, maxEntriesPerScope: 3 });
    // Out of creation order, to show that age is createdAt, not arrival.
    for (const [id, at] of [['a3', 300], ['a1', 100], ['a5', 500], ['a2', 200], ['a4', 400]] as const) {
      await store.put(entry(id, SCOPE_A, at), { ttlSeconds: 600, maxEntriesPerScope: 3 });
    }
    expect(await client.zrange(store.scopeKey(SCOPE_A), 0, -1)).toEqual(['a3', 'a4', 'a5']);
    const exists = async (id: string): Promise<number> => client.exists(store.entryKey(SCOPE_A, id));
    expect(await Promise.all(['a1', 'a2', 'a3', 'a4', 'a5'].map(exists))).toEqual([0, 0, 1, 1, 1]);
    expect(await client.keys(`sai:sem:${INDEX}:${SCOPE_A}:*`)).toHaveLength(3);
    expect(await client.exists(store.entryKey(SCOPE_B, 'b1'))).toBe(1);
    expect(await client.zrange(store.scopeKey(SCOPE_B), 0, -1)).toEqual(['b1']);
  });

  test('ids of entries older than the TTL leave the scope set, so the bound counts live entries', async () => {
    const now = Date.now();
    await store.put(entry('stale', SCOPE_A, now - 60_000), { ttlSeconds: 30, maxEntriesPerScope: 2 });
    await store.put(entry('live1', SCOPE_A, now - 1_000), { ttlSeconds: 30, maxEntriesPerScope: 2 });
    await store.put(entry('live2', SCOPE_A, now), { ttlSeconds: 30, maxEntriesPerScope: 2 });
    // 'stale' was pruned as expired before the bound was applied: both live entries stay.
    expect(await client.zrange(store.scopeKey(SCOPE_A), 0, -1)).toEqual(['live1', 'live2']);
    expect(await client.exists(store.entryKey(SCOPE_A, 'live1'))).toBe(1);
  });

  test('what put writes, search reads back (the stored hash served as an FT.SEARCH reply)', async () => {
    const e = entry('rt', SCOPE_A, 1_790_000_000_999, { vector: Float32Array.from([0.6, -0.8, 0, 0]) });
    await store.put(e, { ttlSeconds: 60, maxEntriesPerScope: 10 });
    const stored = await client.hgetallBuffer(store.entryKey(SCOPE_A, 'rt'));

    const fake = await FakeResp.start();
    const fakeClient = newClient(fake.port);
    try {
      fake.replies.set('FT.SEARCH', [1, store.entryKey(SCOPE_A, 'rt'), [...Object.entries(stored).flat(), 'dist', '0.1']]);
      const reader = new ValkeyVectorStore(fakeClient, { keyPrefix: KEY_PREFIX, indexName: INDEX, hnsw: HNSW });
      const [match] = await reader.search(SCOPE_A, e.vector, 1);
      expect(match.entry).toEqual(e);
      expect(match.similarity).toBeCloseTo(0.9, 9);
    } finally {
      await closeClient(fakeClient);
      await fake.stop();
    }
  });

  test('deleteScope removes every entry of the scope and its set, nothing else', async () => {
    for (const id of ['x1', 'x2', 'x3']) await store.put(entry(id, SCOPE_A, 1), { ttlSeconds: 60, maxEntriesPerScope: 10 });
    await store.put(entry('y1', SCOPE_B, 1), { ttlSeconds: 60, maxEntriesPerScope: 10 });
    await store.deleteScope(SCOPE_A);
    expect(await client.keys(`sai:*${SCOPE_A}*`)).toEqual([]);
    expect(await client.exists(store.entryKey(SCOPE_B, 'y1'))).toBe(1);
  });

  test('deleteEntry removes one entry\'s hash and its id in the scope set, nothing else', async () => {
    for (const id of ['x1', 'x2']) await store.put(entry(id, SCOPE_A, 1), { ttlSeconds: 60, maxEntriesPerScope: 10 });
    await store.put(entry('x1', SCOPE_B, 1), { ttlSeconds: 60, maxEntriesPerScope: 10 });
    await expect(store.deleteEntry(SCOPE_A, 'x1')).resolves.toBe(true);
    expect(await client.exists(store.entryKey(SCOPE_A, 'x1'))).toBe(0);
    expect(await client.zrange(store.scopeKey(SCOPE_A), 0, -1)).toEqual(['x2']);
    expect(await client.exists(store.entryKey(SCOPE_B, 'x1'))).toBe(1);
    await expect(store.deleteEntry(SCOPE_A, 'x1')).resolves.toBe(false);
  });

  test('without the search module FT.CREATE fails, and ensureIndex does not hide it', async () => {
    await expect(store.ensureIndex(4)).rejects.toThrow(/unknown command/i);
  });

  test('invalid configuration is rejected up front', () => {
    expect(() => new ValkeyVectorStore(client, { keyPrefix: KEY_PREFIX, indexName: 'a b', hnsw: HNSW })).toThrow(/invalid index name/);
    expect(() => new ValkeyVectorStore(client, { keyPrefix: KEY_PREFIX, indexName: INDEX, hnsw: { ...HNSW, m: 0 } })).toThrow(/hnsw.m/);
    expect(() => store.createIndexArgs(0)).toThrow(/dimensions/);
  });
});
