import type { Pool, PoolConfig } from 'pg';
import { createPgPool } from './pgvector-store';
import type { PostgresEndpointRuntimeConfig, UserProfilesRuntimeConfig } from '../../constructs/contract/runtime-config';
import { abortable } from '../core/abortable';
import type { UserProfile, UserProfileReader, UserProfileWriter } from '../core/user-profiles';

/** A plain (unquoted) Postgres identifier, as pgvector-store accepts: no table name can inject SQL. */
const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * User profiles in PostgreSQL (Aurora through RDS Proxy) with reads and writes split by pool:
 * `read` queries only the reader pool (the reader endpoint), `write` only the writer pool.
 *
 * Key design: primary key `(tenant, user_id)`. Postgres has no partitions by key to run hot:
 * a large tenant's rows are spread over the btree like any other's, and every lookup is one
 * index probe. If one tenant dominates the table's size, partition it by hash of tenant
 * (`CREATE TABLE ... PARTITION BY HASH (tenant)` with `FOR VALUES WITH (MODULUS n, REMAINDER r)`
 * partitions), which keeps the same key and queries.
 *
 * The table is created (`CREATE TABLE IF NOT EXISTS`) on the writer at the first write: the
 * reader is read-only, and a read of a table that does not exist yet means no profile. With
 * `writeForwarding` (the writer is an Aurora global secondary, which forwards DML but no DDL)
 * the table is left to the primary Region's first write.
 */
export class PgUserProfiles implements UserProfileReader, UserProfileWriter {
  private readonly table: string;
  private schemaReady?: Promise<void>;

  constructor(
    private readonly reader: Pool,
    private readonly writer: Pool,
    table: string,
    private readonly writeForwarding = false,
    /** Called when the database refuses the password (28P01), so the next connection fetches it again. */
    private readonly onPasswordRefused?: () => void,
  ) {
    const parts = table.split('.');
    if (parts.length > 2 || !parts.every((p) => IDENTIFIER.test(p))) {
      throw new Error(`invalid table name ${JSON.stringify(table)}: expected a lower-case identifier ([a-z_][a-z0-9_]*), optionally schema-qualified`);
    }
    this.table = parts.map((p) => `"${p}"`).join('.');
  }

  async read(tenant: string, user: string, signal?: AbortSignal): Promise<UserProfile | undefined> {
    try {
      const result = await abortable(
        this.reader.query<{ profile: UserProfile }>(`SELECT profile FROM ${this.table} WHERE tenant = $1 AND user_id = $2`, [tenant, user]),
        signal,
      );
      return result.rows[0]?.profile;
    } catch (err) {
      // 42P01 undefined_table: no profile was ever written.
      if ((err as { code?: string }).code === '42P01') return undefined;
      this.noteRefusedPassword(err);
      throw err;
    }
  }

  async write(tenant: string, user: string, profile: UserProfile, signal?: AbortSignal): Promise<void> {
    try {
      if (!this.writeForwarding) await abortable(this.ensureSchema(), signal);
      await abortable(
        this.writer.query(
          `INSERT INTO ${this.table} (tenant, user_id, profile, updated_at) VALUES ($1, $2, $3::jsonb, now())
           ON CONFLICT (tenant, user_id) DO UPDATE SET profile = EXCLUDED.profile, updated_at = EXCLUDED.updated_at`,
          [tenant, user, JSON.stringify(profile)],
        ),
        signal,
      );
    } catch (err) {
      if (this.writeForwarding && (err as { code?: string }).code === '42P01') {
        throw new Error(`the profile table ${this.table} does not exist yet: writes here are forwarded to the global database's primary, which forwards no CREATE TABLE; the first profile write in the primary Region creates it`, { cause: err });
      }
      this.noteRefusedPassword(err);
      throw err;
    }
  }

  /** 28P01 invalid_password: the secret was rotated since the password was cached. */
  private noteRefusedPassword(err: unknown): void {
    if ((err as { code?: string }).code === '28P01') this.onPasswordRefused?.();
  }

  private ensureSchema(): Promise<void> {
    this.schemaReady ??= this.writer
      .query(`CREATE TABLE IF NOT EXISTS ${this.table} (
        tenant text NOT NULL,
        user_id text NOT NULL,
        profile jsonb NOT NULL,
        updated_at timestamptz NOT NULL,
        PRIMARY KEY (tenant, user_id)
      )`)
      .then(() => undefined, (err: unknown) => {
        this.schemaReady = undefined;
        throw err;
      });
    return this.schemaReady;
  }
}

/**
 * Supplies the password of a new connection to `endpoint`: an RDS IAM auth token (valid 15
 * minutes, signed for that host and port) or the secret's password.
 */
export type PasswordProvider = (endpoint: PostgresEndpointRuntimeConfig) => Promise<string>;

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

/**
 * The reader and writer pools of {@link UserProfilesRuntimeConfig}: TLS with the server
 * certificate verified (except to a loopback host), a connect timeout and a server-side statement timeout of `timeoutMs`.
 * `password` is called per new connection (pg accepts an async password), so IAM tokens are
 * always fresh.
 */
export function createUserProfilePools(
  config: UserProfilesRuntimeConfig,
  password: PasswordProvider,
  extra: PoolConfig = {},
): { reader: Pool; writer: Pool } {
  const pool = (endpoint: PostgresEndpointRuntimeConfig): Pool => createPgPool({
    host: endpoint.host,
    port: endpoint.port,
    database: config.database,
    user: config.username,
    password: () => password(endpoint),
    // TLS to any real endpoint; a loopback host (a local test database) has no network to protect.
    ssl: LOOPBACK.has(endpoint.host) ? false : { rejectUnauthorized: true },
    max: 2,
    connectionTimeoutMillis: config.timeoutMs,
    statement_timeout: config.timeoutMs,
    query_timeout: config.timeoutMs,
    ...extra,
  });
  return { reader: pool(config.reader), writer: pool(config.writer) };
}
