/**
 * OpenSearchVectorStore.
 *
 * No OpenSearch (let alone OpenSearch Serverless) can be run here, so the adapter is tested
 * against the documented request and response formats: a local HTTP server records every
 * request (method, path, headers, body) and answers with the response shapes of the OpenSearch
 * documentation (create index, index document, search with k-NN, bulk, and the error body of an
 * index that already exists). To answer searches it keeps the indexed documents and evaluates the
 * small part of the query DSL the adapter uses (term, range, sort, size, knn with a filter,
 * `cosinesimil` scores as `(2 - d) / 2` with `d = 1 - cos`). The requests are also checked for a
 * valid SigV4 signature for the service `aoss`.
 */
import { createHash, createHmac } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { OpenSearchVectorStore } from '../../lambdas/adapters/opensearch-vector-store';
import type { SemanticEntry } from '../../lambdas/core/semantic/ports';
import { normalize } from '../../lambdas/core/semantic/vectors';

const ACCESS_KEY = 'AKIDAOSSTEST';
const SECRET_KEY = 'aoss-test-secret';
const SESSION_TOKEN = 'aoss-session-token';
const REGION = 'eu-west-1';
const INDEX = 'semantic-cache';
const HNSW = { m: 16, efConstruction: 128, efSearch: 64 };
const SCOPE_A = 'a'.repeat(32);
const SCOPE_B = 'b'.repeat(32);

interface Recorded {
  readonly method: string;
  readonly path: string;
  readonly query: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly raw: string;
  /** Parsed JSON body (NDJSON: one element per line). */
  readonly body: unknown;
}

interface Doc {
  readonly _id: string;
  readonly _source: Record<string, unknown>;
}

type Responder = (req: Recorded) => { status: number; body: unknown } | undefined;

/** A stand-in for an AOSS collection endpoint speaking the documented formats. */
class DocumentedOpenSearch {
  static async start(): Promise<DocumentedOpenSearch> {
    const fake = new DocumentedOpenSearch();
    await new Promise<void>((resolve) => fake.server.listen(0, '127.0.0.1', () => resolve()));
    return fake;
  }

  readonly requests: Recorded[] = [];
  readonly docs = new Map<string, Doc>();
  readonly indexes = new Map<string, unknown>();
  /** Answers before the built-in behaviour (to inject failures). */
  override?: Responder;
  /** Holds every request without answering (a collection that hangs). */
  hang = false;
  /** Held requests whose client went away. */
  abandoned = 0;
  private nextId = 0;
  private readonly server: http.Server;

  private constructor() {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const url = new URL(req.url ?? '/', 'http://local');
        const body = raw === '' ? undefined
          : url.pathname.endsWith('/_bulk') ? raw.trim().split('\n').map((l) => JSON.parse(l) as unknown)
            : JSON.parse(raw) as unknown;
        const rec: Recorded = { method: req.method ?? '', path: url.pathname, query: url.search, headers: req.headers, raw, body };
        this.requests.push(rec);
        if (this.hang) {
          res.on('close', () => this.abandoned++);
          return;
        }
        const out = this.override?.(rec) ?? this.answer(rec);
        res.statusCode = out.status;
        res.setHeader('content-type', 'application/json; charset=UTF-8');
        res.end(JSON.stringify(out.body));
      });
    });
  }

  get endpoint(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  reset(): void {
    this.requests.length = 0;
    this.docs.clear();
    this.indexes.clear();
    this.override = undefined;
    this.hang = false;
    this.abandoned = 0;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private answer(req: Recorded): { status: number; body: unknown } {
    const index = INDEX;
    if (req.method === 'PUT' && req.path === `/${index}`) {
      if (this.indexes.has(index)) {
        const reason = `index [${index}/3uNnQx1cR5yTqE1rS0H2Hg] already exists`;
        const cause = { type: 'resource_already_exists_exception', reason, index_uuid: '3uNnQx1cR5yTqE1rS0H2Hg', index };
        return { status: 400, body: { error: { root_cause: [cause], ...cause }, status: 400 } };
      }
      this.indexes.set(index, req.body);
      return { status: 200, body: { acknowledged: true, shards_acknowledged: true, index } };
    }
    if (req.method === 'POST' && req.path === `/${index}/_doc`) {
      const _id = `1%3A0%3AxT${(this.nextId++).toString().padStart(6, '0')}`;
      this.docs.set(_id, { _id, _source: req.body as Record<string, unknown> });
      return {
        status: 201,
        body: { _index: index, _id, _version: 1, result: 'created', _shards: { total: 0, successful: 0, failed: 0 }, _seq_no: 0, _primary_term: 0 },
      };
    }
    if (req.method === 'POST' && req.path === `/${index}/_search`) return { status: 200, body: this.search(req.body as SearchBody) };
    if (req.method === 'POST' && req.path === '/_bulk') {
      const items = (req.body as Array<{ delete?: { _index: string; _id: string } }>).map((line) => {
        const found = this.docs.delete(line.delete!._id);
        return { delete: { _index: line.delete!._index, _id: line.delete!._id, _version: 2, result: found ? 'deleted' : 'not_found', status: found ? 200 : 404 } };
      });
      return { status: 200, body: { took: 3, errors: false, items } };
    }
    return { status: 404, body: { error: { type: 'no_handler', reason: `${req.method} ${req.path}` }, status: 404 } };
  }

  /** The subset of the query DSL the adapter uses. */
  private search(body: SearchBody): unknown {
    const matchesFilter = (src: Record<string, unknown>, filter: Clause[]): boolean => filter.every((c) => {
      if (c.term) return Object.entries(c.term).every(([f, v]) => src[f] === v);
      if (c.prefix) return Object.entries(c.prefix).every(([f, v]) => typeof src[f] === 'string' && (src[f] as string).startsWith(v));
      if (c.range) {
        return Object.entries(c.range).every(([f, r]) => {
          const x = src[f] as number;
          return (r.gt === undefined || x > r.gt) && (r.gte === undefined || x >= r.gte)
            && (r.lt === undefined || x < r.lt) && (r.lte === undefined || x <= r.lte);
        });
      }
      throw new Error(`unsupported clause ${JSON.stringify(c)}`);
    });
    let hits: Array<{ doc: Doc; score: number | null }>;
    const knn = body.query.knn?.embedding;
    if (knn) {
      const q = knn.vector;
      hits = [...this.docs.values()]
        .filter((d) => matchesFilter(d._source, knn.filter?.bool.filter ?? []))
        .map((d) => {
          const v = d._source.embedding as number[];
          const cos = v.reduce((n, x, i) => n + x * q[i], 0) / Math.hypot(...v) / Math.hypot(...q);
          return { doc: d, score: (2 - (1 - cos)) / 2 };
        })
        .sort((a, b) => b.score! - a.score!)
        .slice(0, knn.k);
    } else {
      const fields = (body.sort ?? []).map((s) => Object.entries(s)[0]);
      const key = (d: Doc): Array<string | number> => fields.map(([f]) => d._source[f] as string | number);
      const compare = (a: Array<string | number>, b: Array<string | number>): number => {
        for (let i = 0; i < fields.length; i++) {
          const c = a[i] < b[i] ? -1 : a[i] > b[i] ? 1 : 0;
          if (c !== 0) return fields[i][1].order === 'desc' ? -c : c;
        }
        return 0;
      };
      hits = [...this.docs.values()]
        .filter((d) => matchesFilter(d._source, body.query.bool!.filter))
        .filter((d) => !body.search_after || compare(key(d), body.search_after) > 0)
        .sort((a, b) => compare(key(a), key(b)))
        .map((doc) => ({ doc, score: null }));
    }
    const total = hits.length;
    const page = hits.slice(0, body.size ?? 10);
    const pick = (src: Record<string, unknown>): Record<string, unknown> | undefined =>
      body._source === false ? undefined : Array.isArray(body._source) ? Object.fromEntries(body._source.map((f) => [f, src[f]])) : src;
    const sortValues = (d: Doc): unknown[] => (body.sort ?? []).map((s) => d._source[Object.keys(s)[0]]);
    return {
      took: 4,
      timed_out: false,
      _shards: { total: 0, successful: 0, skipped: 0, failed: 0 },
      hits: {
        total: { value: total, relation: 'eq' },
        max_score: page[0]?.score ?? null,
        hits: page.map((h) => ({
          _index: INDEX,
          _id: h.doc._id,
          _score: h.score,
          ...(pick(h.doc._source) ? { _source: pick(h.doc._source) } : {}),
          ...(h.score === null ? { sort: sortValues(h.doc) } : {}),
        })),
      },
    };
  }
}

interface Clause {
  term?: Record<string, unknown>;
  prefix?: Record<string, string>;
  range?: Record<string, { gt?: number; gte?: number; lt?: number; lte?: number }>;
}
interface SearchBody {
  size?: number;
  _source?: string[] | false;
  track_total_hits?: boolean;
  search_after?: Array<string | number>;
  sort?: Array<Record<string, { order: string }>>;
  query: {
    knn?: { embedding: { vector: number[]; k: number; filter?: { bool: { filter: Clause[] } } } };
    bool?: { filter: Clause[] };
  };
}

/** Verifies a SigV4 signature the way the service does, from what arrived. */
function verifySigV4(req: Recorded): { service: string; region: string; valid: boolean } {
  const auth = String(req.headers.authorization);
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$/.exec(auth);
  if (!m) throw new Error(`not a SigV4 authorization header: ${auth}`);
  const [, accessKey, date, region, service, signedHeaders, signature] = m;
  const amzDate = String(req.headers['x-amz-date']);
  const canonicalHeaders = signedHeaders.split(';').map((h) => `${h}:${String(req.headers[h]).trim().replace(/\s+/g, ' ')}\n`).join('');
  const query = new URLSearchParams(req.query);
  const canonicalQuery = [...query.entries()].sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
  const canonicalRequest = [req.method, req.path, canonicalQuery, canonicalHeaders, signedHeaders, String(req.headers['x-amz-content-sha256'])].join('\n');
  const scope = `${date}/${region}/${service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, createHash('sha256').update(canonicalRequest).digest('hex')].join('\n');
  const hmac = (key: string | Buffer, data: string): Buffer => createHmac('sha256', key).update(data).digest();
  const signingKey = hmac(hmac(hmac(hmac(`AWS4${SECRET_KEY}`, date), region), service), 'aws4_request');
  const expected = createHmac('sha256', signingKey).update(stringToSign).digest('hex');
  return { service, region, valid: accessKey === ACCESS_KEY && expected === signature };
}

function unit(values: number[]): Float32Array {
  return normalize(Float32Array.from(values));
}

function entry(id: string, scope: string, vector: Float32Array, createdAt: number): SemanticEntry {
  return {
    id,
    scope,
    question: `question ${id}`,
    vector,
    answer: { text: `answer ${id}`, tierId: 'large', usage: { inputTokens: 9, outputTokens: 4 }, costUsd: 0.0021, createdAt },
    answerVector: unit([0, 1, 0, 1]),
    answerKey: `key-${id}`,
    createdAt,
  };
}

let fake: DocumentedOpenSearch;
let store: OpenSearchVectorStore;

beforeAll(async () => {
  fake = await DocumentedOpenSearch.start();
  store = new OpenSearchVectorStore({
    endpoint: fake.endpoint,
    index: INDEX,
    hnsw: HNSW,
    region: REGION,
    getCredentials: async () => ({ accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY, sessionToken: SESSION_TOKEN }),
  });
});

beforeEach(() => fake.reset());

afterAll(async () => {
  await store?.client.close();
  await fake?.stop();
});

test('ensureIndex: PUT /<index> with knn enabled and a Faiss HNSW cosinesimil knn_vector field; "already exists" is success', async () => {
  await store.ensureIndex(1024);
  await store.ensureIndex(1024);
  expect(fake.requests.map((r) => `${r.method} ${r.path}`)).toEqual([`PUT /${INDEX}`, `PUT /${INDEX}`]);
  expect(fake.requests[0].body).toEqual({
    settings: { index: { knn: true } },
    mappings: {
      properties: {
        embedding: {
          type: 'knn_vector',
          dimension: 1024,
          method: { name: 'hnsw', space_type: 'cosinesimil', engine: 'faiss', parameters: { m: 16, ef_construction: 128, ef_search: 64 } },
        },
        scope: { type: 'keyword' },
        entry_id: { type: 'keyword' },
        created_at: { type: 'date', format: 'epoch_millis' },
        expires_at: { type: 'date', format: 'epoch_millis' },
        payload: { type: 'object', enabled: false },
      },
    },
  });
});

test('ensureIndex propagates other errors', async () => {
  fake.override = () => ({ status: 403, body: { status: 403, request: 'PUT /semantic-cache', error: 'Forbidden' } });
  await expect(store.ensureIndex(256)).rejects.toThrow();
});

test('every request is SigV4-signed for the service aoss, with the payload hash and session token', async () => {
  await store.ensureIndex(4);
  await store.put(entry('e1', SCOPE_A, unit([1, 0, 0, 0]), Date.now()), { ttlSeconds: 60, maxEntriesPerScope: 10 });
  await store.search(SCOPE_A, unit([1, 0, 0, 0]), 3);
  expect(fake.requests.length).toBeGreaterThanOrEqual(4);
  for (const req of fake.requests) {
    expect(req.headers['x-amz-content-sha256']).toBe(createHash('sha256').update(req.raw).digest('hex'));
    expect(req.headers['x-amz-security-token']).toBe(SESSION_TOKEN);
    expect(req.headers['x-amz-date']).toMatch(/^\d{8}T\d{6}Z$/);
    expect(verifySigV4(req)).toEqual({ service: 'aoss', region: REGION, valid: true });
  }
});

test('put: POST /<index>/_doc without a custom id; the entry travels in searchable fields and a payload', async () => {
  const createdAt = Date.now();
  const e = entry('e1', SCOPE_A, unit([1, 2, 3, 4]), createdAt);
  await store.put(e, { ttlSeconds: 600, maxEntriesPerScope: 10 });
  const [index] = fake.requests;
  expect(`${index.method} ${index.path}`).toBe(`POST /${INDEX}/_doc`);
  expect(index.body).toEqual({
    embedding: Array.from(e.vector),
    scope: SCOPE_A,
    entry_id: 'e1',
    created_at: createdAt,
    expires_at: createdAt + 600_000,
    payload: { question: 'question e1', answer: e.answer, answerVector: Array.from(e.answerVector!), answerKey: 'key-e1' },
  });
  // Then the eviction query of the scope: oldest first, with the total.
  const [, evict] = fake.requests;
  expect(`${evict.method} ${evict.path}`).toBe(`POST /${INDEX}/_search`);
  expect(evict.body).toEqual({
    size: 50,
    track_total_hits: true,
    _source: ['expires_at'],
    query: { bool: { filter: [{ term: { scope: SCOPE_A } }] } },
    sort: [{ created_at: { order: 'asc' } }],
  });
  // Nothing beyond the bound and nothing expired: no bulk delete.
  expect(fake.requests).toHaveLength(2);
});

test('search: a knn query on embedding with k and an efficient filter on scope and expiry; similarity = 2 * _score - 1', async () => {
  const now = Date.now();
  const query = unit([1, 0, 0, 0]);
  const near = entry('near', SCOPE_A, unit([1, 0.2, 0, 0]), now);
  const far = entry('far', SCOPE_A, unit([0, 1, 0, 0]), now + 1);
  for (const e of [far, near, entry('other', SCOPE_B, query, now)]) await store.put(e, { ttlSeconds: 600, maxEntriesPerScope: 10 });
  fake.requests.length = 0;

  const matches = await store.search(SCOPE_A, query, 5);
  const [req] = fake.requests;
  expect(`${req.method} ${req.path}`).toBe(`POST /${INDEX}/_search`);
  const body = req.body as SearchBody;
  expect(body).toEqual({
    size: 5,
    query: {
      knn: {
        embedding: {
          vector: Array.from(query),
          k: 5,
          filter: { bool: { filter: [{ term: { scope: SCOPE_A } }, { range: { expires_at: { gt: expect.any(Number) } } }] } },
        },
      },
    },
  });
  const gt = body.query.knn!.embedding.filter!.bool.filter[1].range!.expires_at.gt!;
  expect(Math.abs(gt - Date.now())).toBeLessThan(60_000);

  expect(matches.map((m) => m.entry.id)).toEqual(['near', 'far']);
  expect(matches[0].similarity).toBeCloseTo(near.vector[0], 5);
  expect(matches[1].similarity).toBeCloseTo(0, 5);
  expect(matches[0].entry).toEqual(near);
});

test('search parses the documented response and drops hits of another scope or without a score', async () => {
  const e = entry('doc', SCOPE_A, unit([0, 0, 1, 0]), 1_790_000_000_000);
  const source = (scope: string) => ({
    embedding: Array.from(e.vector),
    scope,
    entry_id: e.id,
    created_at: e.createdAt,
    expires_at: e.createdAt + 1_000,
    payload: { question: e.question, answer: e.answer, answerKey: e.answerKey },
  });
  fake.override = () => ({
    status: 200,
    body: {
      took: 2,
      timed_out: false,
      _shards: { total: 0, successful: 0, skipped: 0, failed: 0 },
      hits: {
        total: { value: 3, relation: 'eq' },
        max_score: 0.8620689,
        hits: [
          { _index: INDEX, _id: '1%3A0%3Ab', _score: 0.6, _source: source(SCOPE_B) },
          { _index: INDEX, _id: '1%3A0%3Aa', _score: 0.8620689, _source: source(SCOPE_A) },
          { _index: INDEX, _id: '1%3A0%3Ac', _score: null, _source: source(SCOPE_A) },
        ],
      },
    },
  });
  const matches = await store.search(SCOPE_A, unit([0, 0, 1, 0]), 3);
  expect(matches).toHaveLength(1);
  expect(matches[0].similarity).toBeCloseTo(0.7241378, 6);
  expect(matches[0].entry).toEqual({ ...e, answerVector: undefined });
});

test('put enforces maxEntriesPerScope: the oldest beyond the bound are deleted with one _bulk request', async () => {
  const now = Date.now();
  for (let i = 1; i <= 3; i++) await store.put(entry(`a${i}`, SCOPE_A, unit([1, i, 0, 0]), now + i), { ttlSeconds: 600, maxEntriesPerScope: 3 });
  await store.put(entry('b1', SCOPE_B, unit([1, 0, 0, 0]), now), { ttlSeconds: 600, maxEntriesPerScope: 3 });
  expect(fake.requests.some((r) => r.path === '/_bulk')).toBe(false);
  fake.requests.length = 0;

  await store.put(entry('a4', SCOPE_A, unit([1, 4, 0, 0]), now + 4), { ttlSeconds: 600, maxEntriesPerScope: 2 });
  expect(fake.requests.map((r) => `${r.method} ${r.path}`)).toEqual([`POST /${INDEX}/_doc`, `POST /${INDEX}/_search`, 'POST /_bulk']);
  const bulk = fake.requests[2];
  expect(bulk.raw.endsWith('\n')).toBe(true);
  expect((bulk.body as Array<{ delete: { _index: string; _id: string } }>).map((l) => l.delete._index)).toEqual([INDEX, INDEX]);
  const left = [...fake.docs.values()].map((d) => d._source.entry_id as string).sort();
  expect(left).toEqual(['a3', 'a4', 'b1']);
});

test('put deletes the scope\'s expired documents too (AOSS has no TTL)', async () => {
  const now = Date.now();
  await store.put(entry('old', SCOPE_A, unit([1, 0, 0, 0]), now - 120_000), { ttlSeconds: 600, maxEntriesPerScope: 10 });
  await store.put(entry('old-b', SCOPE_B, unit([1, 0, 0, 0]), now - 120_000), { ttlSeconds: 600, maxEntriesPerScope: 10 });
  expect((await store.search(SCOPE_A, unit([1, 0, 0, 0]), 5)).map((m) => m.entry.id)).toEqual(['old']);
  // Time passes: both expire.
  for (const doc of fake.docs.values()) doc._source.expires_at = now - 1;
  // Expired: invisible to search...
  expect(await store.search(SCOPE_A, unit([1, 0, 0, 0]), 5)).toEqual([]);
  // ...and deleted by the next put of its scope; scope B's waits for its own.
  await store.put(entry('new', SCOPE_A, unit([1, 0, 0, 0]), now), { ttlSeconds: 60, maxEntriesPerScope: 10 });
  const left = [...fake.docs.values()].map((d) => d._source.entry_id as string).sort();
  expect(left).toEqual(['new', 'old-b']);
});

test('deleteScope pages through the scope with search_after and deletes each page with _bulk', async () => {
  const now = Date.now();
  // Two entries with the same created_at: the entry_id tiebreaker keeps the cursor exact.
  for (const [id, at] of [['d1', now], ['d2', now], ['d3', now + 1]] as const) {
    await store.put(entry(id, SCOPE_A, unit([1, 0, 0, 0]), at), { ttlSeconds: 600, maxEntriesPerScope: 10 });
  }
  await store.put(entry('keep', SCOPE_B, unit([1, 0, 0, 0]), now), { ttlSeconds: 600, maxEntriesPerScope: 10 });
  fake.requests.length = 0;

  await store.deleteScope(SCOPE_A);
  expect(fake.requests.map((r) => `${r.method} ${r.path}`)).toEqual([`POST /${INDEX}/_search`, 'POST /_bulk', `POST /${INDEX}/_search`]);
  expect(fake.requests[0].body).toEqual({
    size: 500,
    _source: false,
    query: { bool: { filter: [{ term: { scope: SCOPE_A } }] } },
    sort: [{ created_at: { order: 'asc' } }, { entry_id: { order: 'asc' } }],
  });
  expect((fake.requests[1].body as unknown[])).toHaveLength(3);
  expect((fake.requests[2].body as SearchBody).search_after).toEqual([now + 1, 'd3']);
  expect([...fake.docs.values()].map((d) => d._source.entry_id)).toEqual(['keep']);
});

test('deleteEntry finds the entry by scope and entry_id and deletes it with _bulk; false when there is none', async () => {
  const now = Date.now();
  await store.put(entry('e1', SCOPE_A, unit([1, 0, 0, 0]), now), { ttlSeconds: 600, maxEntriesPerScope: 10 });
  await store.put(entry('e2', SCOPE_A, unit([1, 0, 0, 0]), now), { ttlSeconds: 600, maxEntriesPerScope: 10 });
  await store.put(entry('e1', SCOPE_B, unit([1, 0, 0, 0]), now), { ttlSeconds: 600, maxEntriesPerScope: 10 });
  fake.requests.length = 0;

  await expect(store.deleteEntry(SCOPE_A, 'e1')).resolves.toBe(true);
  expect(fake.requests.map((r) => `${r.method} ${r.path}`)).toEqual([`POST /${INDEX}/_search`, 'POST /_bulk']);
  expect(fake.requests[0].body).toMatchObject({ query: { bool: { filter: [{ term: { scope: SCOPE_A } }, { term: { entry_id: 'e1' } }] } } });
  expect([...fake.docs.values()].map((d) => `${d._source.scope as string}/${d._source.entry_id as string}`).sort()).toEqual([`${SCOPE_A}/e2`, `${SCOPE_B}/e1`].sort());
  await expect(store.deleteEntry(SCOPE_A, 'e1')).resolves.toBe(false);
});

test('deleteScopePrefix deletes the documents of every scope with the prefix (a prefix query), page by page', async () => {
  const now = Date.now();
  const user = `u${'1'.repeat(32)}`;
  await store.put(entry('p1', `${user}${SCOPE_A}`, unit([1, 0, 0, 0]), now), { ttlSeconds: 600, maxEntriesPerScope: 10 });
  await store.put(entry('p2', `${user}${SCOPE_B}`, unit([1, 0, 0, 0]), now + 1), { ttlSeconds: 600, maxEntriesPerScope: 10 });
  await store.put(entry('other', `u${'2'.repeat(32)}${SCOPE_A}`, unit([1, 0, 0, 0]), now), { ttlSeconds: 600, maxEntriesPerScope: 10 });
  await store.put(entry('shared', SCOPE_A, unit([1, 0, 0, 0]), now), { ttlSeconds: 600, maxEntriesPerScope: 10 });
  fake.requests.length = 0;

  await store.deleteScopePrefix(user);
  expect(fake.requests.map((r) => `${r.method} ${r.path}`)).toEqual([`POST /${INDEX}/_search`, 'POST /_bulk', `POST /${INDEX}/_search`]);
  expect(fake.requests[0].body).toEqual({
    size: 500,
    _source: false,
    query: { bool: { filter: [{ prefix: { scope: user } }] } },
    sort: [{ created_at: { order: 'asc' } }, { entry_id: { order: 'asc' } }],
  });
  expect([...fake.docs.values()].map((d) => d._source.entry_id).sort()).toEqual(['other', 'shared']);
});

test('a bulk delete that reports errors fails the put', async () => {
  const now = Date.now();
  await store.put(entry('x1', SCOPE_A, unit([1, 0, 0, 0]), now), { ttlSeconds: 600, maxEntriesPerScope: 1 });
  fake.override = (req) => req.path === '/_bulk'
    ? { status: 200, body: { took: 1, errors: true, items: [{ delete: { _index: INDEX, _id: 'x', status: 429, error: { type: 'too_many_requests', reason: 'slow down' } } }] } }
    : undefined;
  await expect(store.put(entry('x2', SCOPE_A, unit([1, 0, 0, 0]), now + 1), { ttlSeconds: 600, maxEntriesPerScope: 1 })).rejects.toThrow(/too_many_requests: slow down/);
});

test('invalid configuration is rejected up front', () => {
  const base = { endpoint: 'https://x.us-east-1.aoss.amazonaws.com', hnsw: HNSW, region: REGION };
  expect(() => new OpenSearchVectorStore({ ...base, index: 'Bad Index' })).toThrow(/invalid index name/);
  expect(() => new OpenSearchVectorStore({ ...base, index: 'ok', hnsw: { ...HNSW, m: -1 } })).toThrow(/hnsw.m/);
});

test('a search abandoned by its signal is aborted: it rejects at once and the request is closed', async () => {
  fake.hang = true;
  const controller = new AbortController();
  const pending = store.search(SCOPE_A, normalize(Float32Array.from([1, 0, 0, 0])), 3, controller.signal);
  for (let i = 0; i < 100 && fake.requests.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
  expect(fake.requests).toHaveLength(1);
  controller.abort();
  const outcome = await Promise.race([pending.then(() => 'resolved', () => 'rejected'), new Promise((r) => setTimeout(() => r('still waiting'), 1_000))]);
  expect(outcome).toBe('rejected');
  for (let i = 0; i < 100 && fake.abandoned === 0; i++) await new Promise((r) => setTimeout(r, 10));
  expect(fake.abandoned).toBe(1);
});
