import type Valkey from 'iovalkey';
import { deleteKeysByPrefix } from './valkey-answer-cache';
import type { HnswRuntimeConfig } from '../../constructs/contract/runtime-config';
import type { CachedAnswer } from '../core/ports';
import type { SemanticEntry, StoreOptions, VectorMatch, VectorStore } from '../core/semantic/ports';
import { fromFloat32Bytes, toFloat32Bytes } from '../core/semantic/vectors';

export interface ValkeyVectorStoreOptions {
  /** Prefix of every key the library writes (`CacheConnectionRuntimeConfig.keyPrefix`, e.g. `sai:`). */
  readonly keyPrefix: string;
  /** Name of the FT index (`VectorStoreRuntimeConfig.indexName`). */
  readonly indexName: string;
  readonly hnsw: HnswRuntimeConfig;
}

/** Name the KNN clause gives the distance field of each result (`... AS dist`). */
const DISTANCE_FIELD = 'dist';

/**
 * The semantic cache on ElastiCache for Valkey 8.2+ vector search (`FT.*`), one index for all
 * tenants, scoped with a TAG filter (8.2 allows at most 10 indexes; an index per tenant is out).
 *
 * Layout:
 * - one HASH per entry at `<keyPrefix>sem:<index>:<scope>:<id>` with the fields `scope` (TAG),
 *   `vector` (FLOAT32 little-endian bytes, the indexed VECTOR field), `question`, `answer` (JSON),
 *   `answerVector` (FLOAT32 bytes, optional), `answerKey`, `createdAt` (epoch ms) and
 *   `id`, with the entry's TTL;
 * - one sorted set per scope at `<keyPrefix>semz:<index>:<scope>` (outside the index prefix),
 *   members the entry ids scored by `createdAt`, for the per-scope bound: each put drops the ids
 *   older than the TTL and evicts the oldest entries beyond `maxEntriesPerScope` (DEL of their
 *   hashes, ZREMRANGEBYRANK of their ids).
 *
 * Commands (ElastiCache for Valkey 8.2 indexes only VECTOR, TAG and NUMERIC fields, so the other
 * fields are stored in the hash without being declared in the schema):
 * ```
 * FT.CREATE <index> ON HASH PREFIX 1 <keyPrefix>sem:<index>:
 *   SCHEMA scope TAG CASESENSITIVE
 *          vector VECTOR HNSW 12 TYPE FLOAT32 DIM <dim> DISTANCE_METRIC COSINE
 *                                M <m> EF_CONSTRUCTION <efConstruction> EF_RUNTIME <efSearch>
 * FT.SEARCH <index> "@scope:{<scope>}=>[KNN <k> @vector $vec EF_RUNTIME <efSearch> AS dist]"
 *   PARAMS 2 vec <FLOAT32 LE bytes> LIMIT 0 <k> DIALECT 2
 * ```
 * - `CASESENSITIVE`: TAG matching is case-insensitive by default; a scope is an opaque tenant
 *   boundary, so two scopes that differ only in case must never match each other.
 * - No `RETURN`: every field of the entry is needed, and without `RETURN` a HASH index returns
 *   all fields of each key plus the distance field (8.2 documents `RETURN` for declared fields).
 * - No `SORTBY`: it is not in the 8.2 `FT.SEARCH` syntax; KNN results come in distance order and
 *   are sorted here again by the returned distance.
 * - `LIMIT 0 <k>`: the default `LIMIT 0 10` would cut results when `k > 10`.
 * - The reply is `[total, key, [field, value, ...], key, [...], ...]`; with `DISTANCE_METRIC
 *   COSINE` the distance is `1 - cosine`, so `similarity = 1 - dist`.
 *
 * Sources: ElastiCache `FT.CREATE`, `FT.SEARCH` and "Vector search features and limits"
 * (docs.aws.amazon.com/AmazonElastiCache/latest/dg/vector-search-commands-ft.create.html,
 * .../vector-search-commands-ft.search.html, .../vector-search-features-limits.html) and the
 * valkey-search query language (github.com/valkey-io/valkey-search docs/topics/search-query.md).
 *
 * The replication group of `ResponseCache` is not cluster-mode enabled, so the multi-key
 * transactions below need no hash tags.
 */
export class ValkeyVectorStore implements VectorStore {
  private readonly entryPrefix: string;
  private readonly scopePrefix: string;

  constructor(
    private readonly client: Valkey,
    private readonly options: ValkeyVectorStoreOptions,
  ) {
    if (!/^[A-Za-z0-9_.:-]+$/.test(options.indexName)) {
      throw new Error(`invalid index name ${JSON.stringify(options.indexName)}: letters, digits, '_', '.', ':' and '-' only`);
    }
    for (const [name, value] of Object.entries(options.hnsw)) {
      if (!Number.isInteger(value) || value < 1) throw new Error(`hnsw.${name} must be a positive integer, got ${value}`);
    }
    this.entryPrefix = `${options.keyPrefix}sem:${options.indexName}:`;
    this.scopePrefix = `${options.keyPrefix}semz:${options.indexName}:`;
  }

  /** The `FT.CREATE` arguments (after the command name) for vectors of `dimensions`. */
  createIndexArgs(dimensions: number): string[] {
    if (!Number.isInteger(dimensions) || dimensions < 1) throw new Error(`dimensions must be a positive integer, got ${dimensions}`);
    const { m, efConstruction, efSearch } = this.options.hnsw;
    return [
      this.options.indexName,
      'ON', 'HASH',
      'PREFIX', '1', this.entryPrefix,
      'SCHEMA',
      'scope', 'TAG', 'CASESENSITIVE',
      'vector', 'VECTOR', 'HNSW', '12',
      'TYPE', 'FLOAT32',
      'DIM', String(dimensions),
      'DISTANCE_METRIC', 'COSINE',
      'M', String(m),
      'EF_CONSTRUCTION', String(efConstruction),
      'EF_RUNTIME', String(efSearch),
    ];
  }

  /** The `FT.SEARCH` arguments (after the command name). */
  searchArgs(scope: string, vector: Float32Array, k: number): Array<string | Buffer> {
    if (!Number.isInteger(k) || k < 1) throw new Error(`k must be a positive integer, got ${k}`);
    const query = `@scope:{${escapeTag(scope)}}=>[KNN ${k} @vector $vec EF_RUNTIME ${this.options.hnsw.efSearch} AS ${DISTANCE_FIELD}]`;
    return [
      this.options.indexName,
      query,
      'PARAMS', '2', 'vec', toFloat32Bytes(vector),
      'LIMIT', '0', String(k),
      'DIALECT', '2',
    ];
  }

  /** Key of an entry's hash. */
  entryKey(scope: string, id: string): string {
    return `${this.entryPrefix}${scope}:${id}`;
  }

  /** Key of the sorted set of a scope's entry ids. */
  scopeKey(scope: string): string {
    return `${this.scopePrefix}${scope}`;
  }

  /**
   * iovalkey commands take no abort signal: the client's command timeout bounds each of them, and
   * `signal` stops a call before its next command.
   */
  async ensureIndex(dimensions: number, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    try {
      await this.client.call('FT.CREATE', ...this.createIndexArgs(dimensions));
    } catch (err) {
      // valkey-search answers "Index <name> in database <n> already exists." (RediSearch: "Index already exists").
      if (err instanceof Error && /already exists/i.test(err.message)) return;
      throw err;
    }
  }

  async search(scope: string, vector: Float32Array, k: number, signal?: AbortSignal): Promise<VectorMatch[]> {
    signal?.throwIfAborted();
    const reply = await this.client.callBuffer('FT.SEARCH', ...this.searchArgs(scope, vector, k));
    return parseSearchReply(reply)
      .map((hit) => toMatch(hit.fields))
      // Defence in depth: the TAG filter already selects the scope.
      .filter((m): m is VectorMatch => m !== undefined && m.entry.scope === scope)
      .sort((a, b) => b.similarity - a.similarity)
      .slice(0, k);
  }

  async put(entry: SemanticEntry, options: StoreOptions, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    const ttl = Math.max(1, Math.ceil(options.ttlSeconds));
    const max = Math.max(0, Math.floor(options.maxEntriesPerScope));
    const key = this.entryKey(entry.scope, entry.id);
    const zkey = this.scopeKey(entry.scope);
    const fields: Array<string | Buffer> = [
      'id', entry.id,
      'scope', entry.scope,
      'vector', toFloat32Bytes(entry.vector),
      'question', entry.question,
      'answer', JSON.stringify(entry.answer),
      'answerKey', entry.answerKey,
      'createdAt', String(entry.createdAt),
    ];
    if (entry.answerVector) fields.push('answerVector', toFloat32Bytes(entry.answerVector));

    // One transaction writes the entry, drops the ids of entries older than the TTL (their
    // hashes have expired), and takes the ids beyond the bound out of the scope's set: ZRANGE and
    // ZREMRANGEBYRANK over the same ranks inside it name exactly what is removed.
    const expiredBefore = Math.min(Date.now(), entry.createdAt) - ttl * 1000;
    const evictTo = -(max + 1);
    const results = await this.client
      .multi()
      .hset(key, ...fields)
      .expire(key, ttl)
      .zadd(zkey, entry.createdAt, entry.id)
      // The set lives as long as its newest entry.
      .expire(zkey, ttl)
      .zremrangebyscore(zkey, '-inf', `(${expiredBefore}`)
      .zrange(zkey, 0, evictTo)
      .zremrangebyrank(zkey, 0, evictTo)
      .exec();
    if (!results) throw new Error('the put transaction was aborted');
    for (const [err] of results) if (err) throw err;
    const evicted = results[5][1] as string[];
    if (evicted.length > 0 && !signal?.aborted) await this.client.del(...evicted.map((id) => this.entryKey(entry.scope, id)));
  }

  /** Deletes every entry of a scope (the static answers loader drops a replaced version with it). */
  async deleteScope(scope: string, signal?: AbortSignal): Promise<void> {
    const zkey = this.scopeKey(scope);
    const ids = await this.client.zrange(zkey, 0, -1);
    for (let i = 0; i < ids.length; i += 500) {
      signal?.throwIfAborted();
      await this.client.del(...ids.slice(i, i + 500).map((id) => this.entryKey(scope, id)));
    }
    await this.client.del(zkey);
  }

  /** Deletes one entry: its hash and its id in the scope's sorted set. */
  async deleteEntry(scope: string, id: string, signal?: AbortSignal): Promise<boolean> {
    signal?.throwIfAborted();
    const results = await this.client.multi().del(this.entryKey(scope, id)).zrem(this.scopeKey(scope), id).exec();
    if (!results) throw new Error('the delete transaction was aborted');
    for (const [err] of results) if (err) throw err;
    return (results[0][1] as number) > 0;
  }

  /**
   * Deletes every entry of the scopes that start with `scopePrefix`: the entry hashes
   * (`<keyPrefix>sem:<index>:<scopePrefix>*`) and the scopes' sorted sets, found with SCAN MATCH.
   */
  async deleteScopePrefix(scopePrefix: string): Promise<void> {
    await deleteKeysByPrefix(this.client, `${this.entryPrefix}${scopePrefix}`);
    await deleteKeysByPrefix(this.client, `${this.scopePrefix}${scopePrefix}`);
  }
}

/** Escapes every character that is not a letter or digit, so a scope is one literal TAG value. */
export function escapeTag(value: string): string {
  return value.replace(/[^A-Za-z0-9]/g, (c) => `\\${c}`);
}

/** One result of `FT.SEARCH`: the key and its fields (raw bytes). */
export interface SearchHit {
  readonly key: string;
  readonly fields: Map<string, Buffer>;
}

/**
 * Parses an `FT.SEARCH` reply read with `callBuffer`: `[total, key, [name, value, ...], ...]`.
 * (`NOCONTENT` replies, keys without field lists, are not produced by this store.)
 */
export function parseSearchReply(reply: unknown): SearchHit[] {
  if (!Array.isArray(reply) || reply.length === 0) throw new Error('FT.SEARCH: unexpected reply (not an array)');
  const hits: SearchHit[] = [];
  for (let i = 1; i + 1 < reply.length; i += 2) {
    const key = reply[i] as unknown;
    const list = reply[i + 1] as unknown;
    if (!Buffer.isBuffer(key) && typeof key !== 'string') throw new Error(`FT.SEARCH: unexpected key at ${i}`);
    if (!Array.isArray(list)) throw new Error(`FT.SEARCH: expected a field list after key ${String(key)}`);
    const fields = new Map<string, Buffer>();
    for (let j = 0; j + 1 < list.length; j += 2) {
      const value = list[j + 1] as unknown;
      fields.set(String(list[j]), Buffer.isBuffer(value) ? value : Buffer.from(String(value)));
    }
    hits.push({ key: String(key), fields });
  }
  return hits;
}

/** The entry and similarity of one hit; undefined when the hash lacks a required field (e.g. it expired meanwhile). */
function toMatch(fields: Map<string, Buffer>): VectorMatch | undefined {
  const text = (name: string): string | undefined => fields.get(name)?.toString('utf8');
  const id = text('id');
  const scope = text('scope');
  const question = text('question');
  const answer = text('answer');
  const createdAt = Number(text('createdAt'));
  const vector = fields.get('vector');
  const distance = Number(text(DISTANCE_FIELD));
  if (id === undefined || scope === undefined || question === undefined || answer === undefined) return undefined;
  if (!vector || vector.length % 4 !== 0) return undefined;
  if (!Number.isFinite(createdAt) || !Number.isFinite(distance)) return undefined;
  const answerVector = fields.get('answerVector');
  const entry: SemanticEntry = {
    id,
    scope,
    question,
    vector: fromFloat32Bytes(vector),
    answer: JSON.parse(answer) as CachedAnswer,
    answerVector: answerVector ? fromFloat32Bytes(answerVector) : undefined,
    // Always written; an entry without one shares its answer with no other (SemanticCache's default).
    answerKey: text('answerKey') ?? id,
    createdAt,
  };
  return { entry, similarity: 1 - distance };
}
