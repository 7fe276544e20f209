import { Pool, type PoolClient, type PoolConfig } from 'pg';
import type { HnswRuntimeConfig } from '../../constructs/contract/runtime-config';
import { abortable } from '../core/abortable';
import { isWellFormedUnicode } from '../core/hashing';
import type { CachedAnswer } from '../core/ports';
import type { SemanticEntry, StoreOptions, VectorMatch, VectorStore } from '../core/semantic/ports';

export interface PgVectorStoreOptions {
  /** Table of the entries: `name` or `schema.name`, lower-case identifiers only. */
  readonly table: string;
  readonly hnsw: HnswRuntimeConfig;
  /**
   * pgvector 0.8+ iterative index scans (`hnsw.iterative_scan`). Without them, HNSW filters by
   * scope only after collecting `ef_search` candidates from all scopes, so a small scope in a
   * large table can come back empty. `auto` turns them on when the extension is 0.8 or newer.
   * @default 'auto'
   */
  readonly iterativeScan?: 'auto' | 'strict_order' | 'relaxed_order' | 'off';
}

/**
 * Whether PostgreSQL can store a string, or the JSON text of a value (JSON.stringify writes a NUL
 * as the escape \u0000 and a lone surrogate as \udXXX, which jsonb refuses): no NUL, no lone
 * surrogate, no such escape. Text that merely spells an escape (a backslash, then "u0000") is
 * left out too: rare, and only a cache entry is lost.
 */
function storable(text: string): boolean {
  return isWellFormedUnicode(text) && !text.includes('\u0000') && !/\\u0000|\\ud[89a-f][0-9a-f]{2}/i.test(text);
}

/** A plain (unquoted) Postgres identifier: the only table names accepted, so none can inject SQL. */
const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;
/** pgvector's HNSW index takes `vector` columns of at most 2,000 dimensions. */
const MAX_HNSW_DIMENSIONS = 2_000;

interface Row {
  id: string;
  scope: string;
  question: string;
  embedding: string;
  answer: CachedAnswer;
  answer_embedding: string | null;
  answer_key: string | null;
  created_ms: string;
  similarity: number;
}

/**
 * The semantic cache in PostgreSQL with pgvector (Aurora PostgreSQL), through a `pg` pool:
 *
 * - `ensureIndex` creates the extension, the table, an HNSW index on the question embedding
 *   (`vector_cosine_ops`, `m`, `ef_construction`) and a btree on `(scope, created_at)`, under a
 *   transaction-scoped advisory lock so that concurrent cold starts do not race;
 * - `search` runs in a transaction that sets `hnsw.ef_search` (and, on pgvector 0.8+, iterative
 *   scans) with `SET LOCAL`, and orders by cosine distance `<=>` within the scope, skipping
 *   expired rows (`similarity = 1 - distance`);
 * - `put` inserts the entry and, in the same transaction, deletes the scope's expired rows and
 *   its oldest rows beyond `maxEntriesPerScope`.
 *
 * Expired rows are invisible to `search` right away and deleted when their scope is next written.
 * The table name is checked against a plain identifier pattern and quoted; every value is a
 * bound parameter. DDL cannot take parameters, so the dimensions and HNSW settings are checked
 * to be integers before they are written into it.
 */
export class PgVectorStore implements VectorStore {
  private readonly table: string;
  private readonly indexPrefix: string;
  private iterative?: Promise<'strict_order' | 'relaxed_order' | undefined>;

  constructor(
    private readonly pool: Pool,
    private readonly options: PgVectorStoreOptions,
  ) {
    const parts = options.table.split('.');
    if (parts.length > 2 || !parts.every((p) => IDENTIFIER.test(p))) {
      throw new Error(`invalid table name ${JSON.stringify(options.table)}: expected a lower-case identifier ([a-z_][a-z0-9_]*), optionally schema-qualified`);
    }
    for (const [name, value] of Object.entries(options.hnsw)) {
      if (!Number.isInteger(value) || value < 1 || value > 10_000) throw new Error(`hnsw.${name} must be an integer from 1 to 10000, got ${value}`);
    }
    this.table = parts.map((p) => `"${p}"`).join('.');
    this.indexPrefix = parts[parts.length - 1];
  }

  async ensureIndex(dimensions: number, signal?: AbortSignal): Promise<void> {
    if (!Number.isInteger(dimensions) || dimensions < 1 || dimensions > MAX_HNSW_DIMENSIONS) {
      throw new Error(`dimensions must be an integer from 1 to ${MAX_HNSW_DIMENSIONS} (pgvector HNSW), got ${dimensions}`);
    }
    const { m, efConstruction } = this.options.hnsw;
    await this.transaction(async (db) => {
      await db.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`cdk-scalable-ai:${this.options.table}`]);
      await db.query('CREATE EXTENSION IF NOT EXISTS vector');
      await db.query(`CREATE TABLE IF NOT EXISTS ${this.table} (
        id text PRIMARY KEY,
        scope text NOT NULL,
        question text NOT NULL,
        embedding vector(${dimensions}) NOT NULL,
        answer jsonb NOT NULL,
        answer_embedding vector(${dimensions}),
        answer_key text,
        created_at timestamptz NOT NULL,
        expires_at timestamptz NOT NULL
      )`);
      const existing = await db.query<{ dims: number }>(
        'SELECT atttypmod AS dims FROM pg_attribute WHERE attrelid = $1::regclass AND attname = \'embedding\'',
        [this.table],
      );
      const dims = existing.rows[0]?.dims;
      if (dims !== dimensions) {
        throw new Error(`table ${this.options.table} holds vectors of ${dims} dimensions, not ${dimensions}: use another table for another embedding model`);
      }
      await db.query(
        `CREATE INDEX IF NOT EXISTS "${this.indexPrefix}_embedding_hnsw" ON ${this.table}
         USING hnsw (embedding vector_cosine_ops) WITH (m = ${m}, ef_construction = ${efConstruction})`,
      );
      await db.query(`CREATE INDEX IF NOT EXISTS "${this.indexPrefix}_scope_created" ON ${this.table} (scope, created_at)`);
    }, signal);
  }

  async search(scope: string, vector: Float32Array, k: number, signal?: AbortSignal): Promise<VectorMatch[]> {
    if (!Number.isInteger(k) || k < 1) throw new Error(`k must be a positive integer, got ${k}`);
    const iterative = await abortable(this.iterativeScan(), signal);
    const rows = await this.transaction(async (db) => {
      // SET takes no bound parameters: efSearch is a checked integer, `iterative` one of two keywords.
      await db.query(`SET LOCAL hnsw.ef_search = ${this.options.hnsw.efSearch}`);
      if (iterative) await db.query(`SET LOCAL hnsw.iterative_scan = ${iterative}`);
      const result = await db.query<Row>(
        `SELECT id, scope, question, embedding::text AS embedding, answer,
                answer_embedding::text AS answer_embedding, answer_key,
                (extract(epoch FROM created_at) * 1000)::bigint::text AS created_ms,
                1 - (embedding <=> $1::vector) AS similarity
           FROM ${this.table}
          WHERE scope = $2 AND expires_at > now()
          ORDER BY embedding <=> $1::vector
          LIMIT $3`,
        [toVectorLiteral(vector), scope, k],
      );
      return result.rows;
    }, signal);
    return rows.map((row) => ({
      similarity: Number(row.similarity),
      entry: {
        id: row.id,
        scope: row.scope,
        question: row.question,
        vector: fromVectorLiteral(row.embedding),
        answer: row.answer,
        answerVector: row.answer_embedding === null ? undefined : fromVectorLiteral(row.answer_embedding),
        // Always written; an entry without one shares its answer with no other (as SemanticCache's own default).
        answerKey: row.answer_key ?? row.id,
        createdAt: Number(row.created_ms),
      },
    }));
  }

  /**
   * Writes an entry, except one PostgreSQL cannot hold: text with NUL (no `text` or `jsonb` value
   * can hold it) or a lone surrogate (`jsonb` refuses its escape). That entry is left out of this
   * level (the exact cache keeps it): a failed write would count against the level's circuit
   * breaker, so that a few such requests of one caller would switch the level off for every caller.
   */
  async put(entry: SemanticEntry, options: StoreOptions, signal?: AbortSignal): Promise<void> {
    const answer = JSON.stringify(entry.answer);
    if (!storable(entry.question) || !storable(answer)) return;
    const ttl = Math.max(1, Math.ceil(options.ttlSeconds));
    const max = Math.max(0, Math.floor(options.maxEntriesPerScope));
    await this.transaction(async (db) => {
      await db.query(
        `INSERT INTO ${this.table} (id, scope, question, embedding, answer, answer_embedding, answer_key, created_at, expires_at)
         VALUES ($1, $2, $3, $4::vector, $5::jsonb, $6::vector, $7, to_timestamp($8::double precision / 1000), now() + make_interval(secs => $9))
         ON CONFLICT (id) DO UPDATE SET
           scope = EXCLUDED.scope, question = EXCLUDED.question, embedding = EXCLUDED.embedding,
           answer = EXCLUDED.answer, answer_embedding = EXCLUDED.answer_embedding,
           answer_key = EXCLUDED.answer_key, created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at`,
        [
          entry.id,
          entry.scope,
          entry.question,
          toVectorLiteral(entry.vector),
          answer,
          entry.answerVector ? toVectorLiteral(entry.answerVector) : null,
          entry.answerKey,
          entry.createdAt,
          ttl,
        ],
      );
      // The scope's expired rows, and its rows beyond the newest `max` (the btree on
      // (scope, created_at) serves both).
      await db.query(
        `DELETE FROM ${this.table}
          WHERE scope = $1
            AND (expires_at <= now()
                 OR id IN (SELECT id FROM ${this.table} WHERE scope = $1 ORDER BY created_at DESC, id DESC OFFSET $2))`,
        [entry.scope, max],
      );
    }, signal);
  }

  /** Deletes every entry of a scope. */
  async deleteScope(scope: string, signal?: AbortSignal): Promise<void> {
    await this.transaction((db) => db.query(`DELETE FROM ${this.table} WHERE scope = $1`, [scope]), signal);
  }

  /** Deletes one entry. */
  async deleteEntry(scope: string, id: string, signal?: AbortSignal): Promise<boolean> {
    const result = await this.transaction((db) => db.query(`DELETE FROM ${this.table} WHERE scope = $1 AND id = $2`, [scope, id]), signal);
    return (result.rowCount ?? 0) > 0;
  }

  /** Deletes the rows of every scope that starts with `scopePrefix` (a scan of the table: for rare requests). */
  async deleteScopePrefix(scopePrefix: string): Promise<void> {
    await this.pool.query(`DELETE FROM ${this.table} WHERE starts_with(scope, $1)`, [scopePrefix]);
  }

  /** The `hnsw.iterative_scan` mode to set, if any (auto: on pgvector 0.8+). */
  private iterativeScan(): Promise<'strict_order' | 'relaxed_order' | undefined> {
    const mode = this.options.iterativeScan ?? 'auto';
    if (mode === 'off') return Promise.resolve(undefined);
    if (mode !== 'auto') return Promise.resolve(mode);
    this.iterative ??= this.pool
      .query<{ extversion: string }>('SELECT extversion FROM pg_extension WHERE extname = \'vector\'')
      .then((r) => {
        const [major, minor] = (r.rows[0]?.extversion ?? '0.0').split('.').map(Number);
        return major > 0 || minor >= 8 ? 'strict_order' : undefined;
      })
      .catch((err: unknown) => {
        this.iterative = undefined;
        throw err;
      });
    return this.iterative;
  }

  /**
   * Runs `work` in a transaction on a pooled connection. When `signal` aborts, the call rejects at
   * once: a connection still being acquired goes back to the pool when it arrives, and one in use
   * is destroyed (released with an error), which ends its query on the client side and frees the
   * pool slot; the server ends a query it still runs at `statement_timeout` at the latest.
   */
  private async transaction<T>(work: (db: PoolClient) => Promise<T>, signal?: AbortSignal): Promise<T> {
    const db = await abortable(this.pool.connect(), signal, (late) => late.release());
    let released = false;
    const release = (err?: Error): void => {
      if (released) return;
      released = true;
      db.release(err);
    };
    const run = async (): Promise<T> => {
      try {
        await db.query('BEGIN');
        const result = await work(db);
        await db.query('COMMIT');
        release();
        return result;
      } catch (err) {
        // A connection whose ROLLBACK fails is broken: destroy it instead of returning it to the pool.
        if (!released) {
          try {
            await db.query('ROLLBACK');
            release();
          } catch (rollbackErr) {
            release(rollbackErr as Error);
          }
        }
        throw err;
      }
    };
    const onAbort = (): void => release(new Error('the query was abandoned (aborted)'));
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      return await abortable(run(), signal);
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }
}

/**
 * A `pg` pool whose idle clients may lose their server without ending the process: an idle
 * client's error is emitted on the pool, and the next query reconnects (a failing query fails its
 * level open).
 */
export function createPgPool(config: PoolConfig): Pool {
  const pool = new Pool(config);
  pool.on('error', () => undefined);
  return pool;
}

/** pgvector's text form: `[1,2,3]`. */
export function toVectorLiteral(v: Float32Array): string {
  for (let i = 0; i < v.length; i++) if (!Number.isFinite(v[i])) throw new Error('vector has a non-finite component');
  return `[${Array.from(v).join(',')}]`;
}

export function fromVectorLiteral(text: string): Float32Array {
  return Float32Array.from(JSON.parse(text) as number[]);
}
