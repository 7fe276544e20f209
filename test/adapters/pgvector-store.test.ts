/**
 * PgVectorStore against real PostgreSQL + pgvector: PGlite (Postgres in WASM) with its pgvector
 * extension, served over the wire protocol, reached through the production `pg` Pool.
 */
import type { Pool, PoolClient, QueryConfig } from 'pg';
import { PgVectorStore } from '../../lambdas/adapters/pgvector-store';
import type { SemanticEntry } from '../../lambdas/core/semantic/ports';
import { normalize } from '../../lambdas/core/semantic/vectors';
import { PgliteServer } from '../support/pglite-server';

const HNSW = { m: 12, efConstruction: 48, efSearch: 77 };
const DIM = 8;
const SCOPE_A = '0'.repeat(31) + 'a';
const SCOPE_B = '0'.repeat(31) + 'b';

let server: PgliteServer;
let pool: Pool;
let tableSeq = 0;

/** A fresh table per test, so tests do not see each other's rows. */
function newStore(overrides: { iterativeScan?: 'auto' | 'off' } = {}): { store: PgVectorStore; table: string } {
  const table = `semantic_t${++tableSeq}`;
  return { store: new PgVectorStore(pool, { table, hnsw: HNSW, ...overrides }), table };
}

/** A unit vector pointing mostly along axis `axis`, tilted by `tilt` towards the next axis. */
function direction(axis: number, tilt = 0): Float32Array {
  const v = new Float32Array(DIM);
  v[axis % DIM] = 1;
  v[(axis + 1) % DIM] = tilt;
  return normalize(v);
}

function entry(id: string, scope: string, vector: Float32Array, createdAt: number, extra: Partial<SemanticEntry> = {}): SemanticEntry {
  return {
    id,
    scope,
    question: `question ${id}`,
    vector,
    answer: { text: `answer ${id}`, tierId: 'medium', usage: { inputTokens: 3, outputTokens: 5 }, costUsd: 0.0004, createdAt },
    answerKey: `key-${id}`,
    createdAt,
    ...extra,
  };
}

/** `n` rows of `scope` near axis 0 (like direction(0, i / n)), written directly: filler for the search tests. */
async function fillScope(table: string, scope: string, n: number): Promise<void> {
  await pool.query(
    `INSERT INTO ${table} (id, scope, question, embedding, answer, answer_key, created_at, expires_at)
     SELECT 'fill' || i, $1, 'filler', ('[1,' || (i::float8 / $2) || ',0,0,0,0,0,0]')::vector, '{"text":"filler"}'::jsonb,
            'fill' || i, to_timestamp(i), now() + interval '1 hour'
       FROM generate_series(0, $2 - 1) AS i`,
    [scope, n],
  );
}

const OPTS = { ttlSeconds: 3_600, maxEntriesPerScope: 100 };

beforeAll(async () => {
  server = await PgliteServer.start();
  pool = server.pool();
});

afterAll(async () => {
  await server?.stop();
});

test('ensureIndex creates the table, the HNSW index with its parameters and the (scope, created_at) btree; twice is fine', async () => {
  const { store, table } = newStore();
  await store.ensureIndex(DIM);
  await store.ensureIndex(DIM);
  const indexes = await pool.query<{ indexname: string; indexdef: string }>('SELECT indexname, indexdef FROM pg_indexes WHERE tablename = $1 ORDER BY indexname', [table]);
  const defs = indexes.rows.map((r) => r.indexdef);
  expect(defs).toHaveLength(3);
  expect(defs.find((d) => / USING hnsw /.test(d))).toMatch(/\(embedding vector_cosine_ops\) WITH \(m='?12'?, ef_construction='?48'?\)/);
  expect(defs.find((d) => / USING btree \(scope, created_at\)/.test(d))).toBeDefined();
  expect(defs.find((d) => /UNIQUE INDEX .* \(id\)/.test(d))).toBeDefined();
  const columns = await pool.query<{ column_name: string; type: string; is_nullable: string }>(
    `SELECT column_name, format_type(atttypid, atttypmod) AS type, is_nullable
       FROM information_schema.columns c JOIN pg_attribute a ON a.attrelid = $1::regclass AND a.attname = c.column_name
      WHERE c.table_name = $2 ORDER BY c.ordinal_position`,
    [table, table],
  );
  expect(columns.rows.map((c) => `${c.column_name} ${c.type} ${c.is_nullable}`)).toEqual([
    'id text NO',
    'scope text NO',
    'question text NO',
    `embedding vector(${DIM}) NO`,
    'answer jsonb NO',
    `answer_embedding vector(${DIM}) YES`,
    'answer_key text YES',
    'created_at timestamp with time zone NO',
    'expires_at timestamp with time zone NO',
  ]);
});

test('ensureIndex refuses a table made for another dimension', async () => {
  const { store } = newStore();
  await store.ensureIndex(DIM);
  await expect(store.ensureIndex(DIM * 2)).rejects.toThrow(/holds vectors of 8 dimensions, not 16/);
});

test('search returns the scope entries most similar first, with similarity = 1 - cosine distance, and the stored entry intact', async () => {
  const { store } = newStore();
  await store.ensureIndex(DIM);
  const query = direction(0);
  const near = entry('near', SCOPE_A, direction(0, 0.2), 1_790_000_000_001, { answerVector: direction(5) });
  const mid = entry('mid', SCOPE_A, direction(0, 1), 1_790_000_000_002);
  const far = entry('far', SCOPE_A, direction(3), 1_790_000_000_003);
  for (const e of [far, near, mid]) await store.put(e, OPTS);

  const matches = await store.search(SCOPE_A, query, 2);
  expect(matches.map((m) => m.entry.id)).toEqual(['near', 'mid']);
  const cos = (v: Float32Array): number => v.reduce((n, x, i) => n + x * query[i], 0);
  expect(matches[0].similarity).toBeCloseTo(cos(near.vector), 5);
  expect(matches[1].similarity).toBeCloseTo(Math.SQRT1_2, 5);
  expect(matches[0].entry).toEqual(near);
  expect(matches[1].entry.answerVector).toBeUndefined();

  const all = await store.search(SCOPE_A, query, 10);
  expect(all.map((m) => m.entry.id)).toEqual(['near', 'mid', 'far']);
  expect(all[2].similarity).toBeCloseTo(0, 5);
});

test('scopes are isolated: identical vectors in two scopes never see each other', async () => {
  const { store } = newStore();
  await store.ensureIndex(DIM);
  const v = direction(2, 0.3);
  await store.put(entry('in-a', SCOPE_A, v, 1), OPTS);
  await store.put(entry('in-b', SCOPE_B, v, 2), OPTS);
  expect((await store.search(SCOPE_A, v, 5)).map((m) => m.entry.id)).toEqual(['in-a']);
  expect((await store.search(SCOPE_B, v, 5)).map((m) => m.entry.id)).toEqual(['in-b']);
  expect(await store.search('f'.repeat(32), v, 5)).toEqual([]);
});

test('an entry PostgreSQL cannot hold (NUL, a lone surrogate) is left out without an error; the others are written', async () => {
  // Found by test/fuzz: each such write failed, and 3 failures opened the semantic level's breaker for every caller.
  const { store } = newStore();
  await store.ensureIndex(DIM);
  const v = direction(3, 0.2);
  const answer = (text: string) => ({ text, tierId: 'small', usage: { inputTokens: 1, outputTokens: 1 }, costUsd: 0, createdAt: 1 });
  await store.put(entry('nul-question', SCOPE_A, v, 1, { question: 'x\u0000' }), OPTS);
  await store.put(entry('nul-answer', SCOPE_A, v, 2, { answer: answer('answer to: x\u0000') }), OPTS);
  await store.put(entry('lone-surrogate', SCOPE_A, v, 3, { answer: answer('answer to: \ud800') }), OPTS);
  await store.put(entry('plain', SCOPE_A, v, 4, { question: 'x \ud83d\ude00', answer: answer('ok \ud83d\ude00') }), OPTS);
  expect((await store.search(SCOPE_A, v, 5)).map((m) => [m.entry.id, m.entry.answer.text])).toEqual([['plain', 'ok \ud83d\ude00']]);
});

test('a small scope is found among many rows of other scopes', async () => {
  const { store, table } = newStore();
  await store.ensureIndex(DIM);
  await fillScope(table, SCOPE_B, 150);
  const lonely = normalize(Float32Array.from([0.3, 0, 0, 0, 1, 0, 0, 0]));
  await store.put(entry('lonely', SCOPE_A, lonely, 1_000), OPTS);
  expect((await store.search(SCOPE_A, direction(0), 3)).map((m) => m.entry.id)).toEqual(['lonely']);
});

test('on the HNSW path, iterative scans keep a small scope from coming back empty', async () => {
  // Postgres picks the (scope, created_at) btree for a selective scope (exact search, as above).
  // Without it, the plan is the HNSW index scan, which filters by scope only after collecting
  // ef_search candidates: all 150 nearest rows belong to scope B.
  const lonely = normalize(Float32Array.from([0.3, 0, 0, 0, 1, 0, 0, 0]));
  const results: Record<string, string[]> = {};
  for (const mode of ['off', 'auto'] as const) {
    const { store, table } = newStore({ iterativeScan: mode });
    await store.ensureIndex(DIM);
    await pool.query(`DROP INDEX ${table}_scope_created`);
    await fillScope(table, SCOPE_B, 150);
    await store.put(entry('lonely', SCOPE_A, lonely, 1_000), OPTS);
    // PGlite serves every client from one backend session, so this SET reaches the store's queries.
    await pool.query('SET enable_seqscan = off');
    try {
      const plan = await pool.query<Record<string, string>>(
        `EXPLAIN SELECT id FROM ${table} WHERE scope = $1 AND expires_at > now() ORDER BY embedding <=> $2::vector LIMIT 3`,
        [SCOPE_A, `[${Array.from(direction(0)).join(',')}]`],
      );
      expect(plan.rows.map((r) => r['QUERY PLAN']).join('\n')).toMatch(new RegExp(`Index Scan using ${table}_embedding_hnsw`));
      results[mode] = (await store.search(SCOPE_A, direction(0), 3)).map((m) => m.entry.id);
    } finally {
      await pool.query('RESET enable_seqscan');
    }
  }
  expect(results).toEqual({ off: [], auto: ['lonely'] });
});

test('expired rows are not returned, and the next put of their scope deletes them', async () => {
  const { store, table } = newStore();
  await store.ensureIndex(DIM);
  await store.put(entry('old', SCOPE_A, direction(1), 1), OPTS);
  await store.put(entry('fresh', SCOPE_A, direction(1, 0.1), 2), OPTS);
  await store.put(entry('other-scope', SCOPE_B, direction(1), 3), OPTS);
  await pool.query(`UPDATE ${table} SET expires_at = now() - interval '1 second' WHERE id IN ('old', 'other-scope')`);

  expect((await store.search(SCOPE_A, direction(1), 5)).map((m) => m.entry.id)).toEqual(['fresh']);
  expect(await store.search(SCOPE_B, direction(1), 5)).toEqual([]);

  await store.put(entry('new', SCOPE_A, direction(6), 4), OPTS);
  const ids = await pool.query<{ id: string }>(`SELECT id FROM ${table} ORDER BY id`);
  // The expired row of scope A is gone; scope B's waits for its own next write.
  expect(ids.rows.map((r) => r.id)).toEqual(['fresh', 'new', 'other-scope']);
});

test('expires_at is now + ttlSeconds', async () => {
  const { store, table } = newStore();
  await store.ensureIndex(DIM);
  await store.put(entry('t', SCOPE_A, direction(1), Date.now()), { ttlSeconds: 90, maxEntriesPerScope: 5 });
  const { rows } = await pool.query<{ secs: number }>(`SELECT extract(epoch FROM expires_at - now())::float8 AS secs FROM ${table}`);
  expect(rows[0].secs).toBeGreaterThan(80);
  expect(rows[0].secs).toBeLessThanOrEqual(90);
});

test('beyond maxEntriesPerScope the oldest rows of the scope are deleted, other scopes untouched', async () => {
  const { store, table } = newStore();
  await store.ensureIndex(DIM);
  await store.put(entry('b', SCOPE_B, direction(0), 1), { ttlSeconds: 600, maxEntriesPerScope: 2 });
  for (const [id, at] of [['a3', 3_000], ['a1', 1_000], ['a4', 4_000], ['a2', 2_000]] as const) {
    await store.put(entry(id, SCOPE_A, direction(0), at), { ttlSeconds: 600, maxEntriesPerScope: 2 });
  }
  const ids = await pool.query<{ id: string }>(`SELECT id FROM ${table} ORDER BY id`);
  expect(ids.rows.map((r) => r.id)).toEqual(['a3', 'a4', 'b']);
});

/**
 * Runs `work` while recording the SQL of every pooled connection it takes, and the values of
 * `hnsw.ef_search` and `hnsw.iterative_scan` on that connection just before each search SELECT.
 */
async function recordingQueries(work: () => Promise<unknown>): Promise<{ sql: string[]; atSelect: Array<Record<string, string>> }> {
  const sql: string[] = [];
  const atSelect: Array<Record<string, string>> = [];
  const connect = pool.connect.bind(pool) as (callback?: unknown) => Promise<PoolClient>;
  const spy = jest.spyOn(pool, 'connect').mockImplementation((async (callback?: unknown) => {
    // pool.query() connects with a callback: let it through unrecorded.
    if (callback) return connect(callback);
    const client = await connect();
    const query = client.query.bind(client) as (q: string | QueryConfig, v?: unknown[]) => Promise<{ rows: Array<Record<string, string>> }>;
    const target = client as unknown as { query: unknown };
    target.query = async (q: string | QueryConfig, values?: unknown[]) => {
      const text = typeof q === 'string' ? q : q.text;
      sql.push(text.replace(/\s+/g, ' ').trim());
      if (/^\s*SELECT id, scope/.test(text)) {
        const ef = await query('SHOW hnsw.ef_search');
        const it = await query('SHOW hnsw.iterative_scan');
        atSelect.push({ ...ef.rows[0], ...it.rows[0] });
      }
      return query(q, values);
    };
    const release = client.release.bind(client);
    client.release = (err?: Error | boolean) => {
      target.query = query;
      return release(err);
    };
    return client;
  }) as never);
  try {
    await work();
  } finally {
    spy.mockRestore();
  }
  return { sql, atSelect };
}

test('search sets hnsw.ef_search and iterative scans with SET LOCAL inside its transaction', async () => {
  const { store } = newStore();
  await store.ensureIndex(DIM);
  await store.put(entry('x', SCOPE_A, direction(0), 1), OPTS);

  const { sql, atSelect } = await recordingQueries(() => store.search(SCOPE_A, direction(0), 1));
  expect(sql.slice(0, 3)).toEqual(['BEGIN', 'SET LOCAL hnsw.ef_search = 77', 'SET LOCAL hnsw.iterative_scan = strict_order']);
  expect(sql[3]).toMatch(/^SELECT id, scope, .* WHERE scope = \$2 AND expires_at > now\(\) ORDER BY embedding <=> \$1::vector LIMIT \$3$/);
  expect(sql[sql.length - 1]).toBe('COMMIT');
  expect(atSelect).toEqual([{ 'hnsw.ef_search': '77', 'hnsw.iterative_scan': 'strict_order' }]);
  // SET LOCAL ends with the transaction: the pooled connections are back to the defaults.
  const after = await pool.query<Record<string, string>>('SHOW hnsw.ef_search');
  expect(after.rows[0]['hnsw.ef_search']).toBe('40');
});

test('iterativeScan off: only ef_search is set', async () => {
  const { store } = newStore({ iterativeScan: 'off' });
  await store.ensureIndex(DIM);
  const { sql, atSelect } = await recordingQueries(() => store.search(SCOPE_A, direction(0), 1));
  expect(sql.filter((q) => q.startsWith('SET'))).toEqual(['SET LOCAL hnsw.ef_search = 77']);
  expect(atSelect).toEqual([{ 'hnsw.ef_search': '77', 'hnsw.iterative_scan': 'off' }]);
});

test('table names that are not plain identifiers are rejected before any SQL runs', () => {
  for (const table of ['semantic; DROP TABLE users; --', 'Semantic', 'a"b', 'x y', 'a.b.c', '1abc', '', 'public.bad-name']) {
    expect(() => new PgVectorStore(pool, { table, hnsw: HNSW })).toThrow(/invalid table name/);
  }
  expect(() => new PgVectorStore(pool, { table: 'public.semantic_cache', hnsw: HNSW })).not.toThrow();
  expect(() => new PgVectorStore(pool, { table: 'ok', hnsw: { ...HNSW, efSearch: 1.5 } })).toThrow(/hnsw.efSearch/);
});

test('values travel as parameters: a question full of SQL is stored and returned verbatim', async () => {
  const { store } = newStore();
  await store.ensureIndex(DIM);
  const question = '\'); DROP TABLE semantic_t1; -- $1 \\ "quoted"';
  await store.put(entry('sql', SCOPE_A, direction(3), 5, { question, answerKey: 'k\'"' }), OPTS);
  const [match] = await store.search(SCOPE_A, direction(3), 1);
  expect(match.entry.question).toBe(question);
  expect(match.entry.answerKey).toBe('k\'"');
  await expect(pool.query('SELECT count(*) FROM semantic_t1')).resolves.toBeDefined();
});

test('deleteScope deletes every row of the scope and nothing else', async () => {
  const { store, table } = newStore();
  await store.ensureIndex(DIM);
  for (const id of ['a1', 'a2']) await store.put(entry(id, SCOPE_A, direction(1), 1), OPTS);
  await store.put(entry('b1', SCOPE_B, direction(1), 1), OPTS);
  await store.deleteScope(SCOPE_A);
  const ids = await pool.query<{ id: string }>(`SELECT id FROM ${table} ORDER BY id`);
  expect(ids.rows.map((r) => r.id)).toEqual(['b1']);
});

test('deleteScopePrefix deletes the rows of every scope with the prefix and nothing else', async () => {
  const { store, table } = newStore();
  await store.ensureIndex(DIM);
  const user = `u${'1'.repeat(32)}`;
  await store.put(entry('p1', `${user}${SCOPE_A}`, direction(1), 1), OPTS);
  await store.put(entry('p2', `${user}${SCOPE_B}`, direction(1), 1), OPTS);
  await store.put(entry('other', `u${'2'.repeat(32)}${SCOPE_A}`, direction(1), 1), OPTS);
  await store.put(entry('shared', SCOPE_A, direction(1), 1), OPTS);
  await store.deleteScopePrefix(user);
  const ids = await pool.query<{ id: string }>(`SELECT id FROM ${table} ORDER BY id`);
  expect(ids.rows.map((r) => r.id)).toEqual(['other', 'shared']);
});

test('ensureIndex rejects dimensions pgvector HNSW cannot index', async () => {
  const { store } = newStore();
  await expect(store.ensureIndex(2_001)).rejects.toThrow(/dimensions/);
  await expect(store.ensureIndex(0)).rejects.toThrow(/dimensions/);
});

test('a failing statement rolls the transaction back and leaves the pool usable', async () => {
  const { store, table } = newStore();
  await store.ensureIndex(DIM);
  // Wrong dimension: the INSERT fails inside put's transaction.
  await expect(store.put(entry('bad', SCOPE_A, new Float32Array(DIM + 1).fill(0.1), 1), OPTS)).rejects.toThrow(/dimensions/);
  const { rows } = await pool.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`);
  expect(rows[0].n).toBe('0');
  await store.put(entry('good', SCOPE_A, direction(1), 1), OPTS);
  expect((await store.search(SCOPE_A, direction(1), 1))[0].entry.id).toBe('good');
});

test('a search abandoned while it waits for a pooled connection rejects at once, and the connection it gets later goes back to the pool', async () => {
  const { store: shared } = newStore();
  await shared.ensureIndex(DIM);
  const small = server.pool({ max: 1 });
  try {
    const store = new PgVectorStore(small, { table: `semantic_t${tableSeq}`, hnsw: HNSW, iterativeScan: 'off' });
    const held = await small.connect();
    const bound = new Promise<string>((resolve) => setTimeout(() => resolve('still waiting after 2 s'), 2_000));
    const outcome = await Promise.race([
      store.search(SCOPE_A, direction(0), 3, AbortSignal.timeout(50)).then(() => 'resolved', (err: Error) => err.name),
      bound,
    ]);
    expect(outcome).toBe('TimeoutError');
    held.release();
    // The pool's one connection was handed to the abandoned search and given back: a new search gets it.
    await expect(store.search(SCOPE_A, direction(0), 3)).resolves.toEqual([]);
    expect(small.totalCount).toBe(1);
  } finally {
    await small.end();
  }
});
