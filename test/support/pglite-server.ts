/**
 * PostgreSQL with pgvector for tests: PGlite (Postgres 18 compiled to WASM) with its pgvector
 * extension (`@electric-sql/pglite-pgvector`), served over the Postgres wire protocol by
 * `@electric-sql/pglite-socket` on a free port of 127.0.0.1, so the production `pg` client
 * connects to it unchanged (user `postgres`, database `postgres`, no password, no TLS).
 *
 * PGlite runs in a child Node process: its CommonJS build loads parts of itself with dynamic
 * `import()`, which jest's module sandbox cannot run without `--experimental-vm-modules`. The
 * child prints its port, stops on SIGTERM, and exits by itself when the parent goes away (its
 * stdin closes).
 *
 * PGlite is a single connection underneath: the socket server queues the clients' queries and,
 * while one client is inside a transaction, runs only that client's queries, so transactions
 * of several pool connections are serialized, never interleaved.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { Pool, type PoolConfig } from 'pg';

const REPO_ROOT = path.resolve(__dirname, '..', '..');

const CHILD_SCRIPT = `
const { PGlite } = require('@electric-sql/pglite');
const { vector } = require('@electric-sql/pglite-pgvector');
const { PGLiteSocketServer } = require('@electric-sql/pglite-socket');
(async () => {
  const db = await PGlite.create({ extensions: { vector } });
  const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0, maxConnections: Number(process.env.PGLITE_MAX_CONNECTIONS) });
  await server.start();
  let stopping = false;
  const shutdown = async () => {
    if (stopping) return;
    stopping = true;
    try { await server.stop(); await db.close(); } finally { process.exit(0); }
  };
  process.on('SIGTERM', shutdown);
  process.stdin.on('end', shutdown);
  process.stdin.on('error', shutdown);
  process.stdin.resume();
  process.stdout.write(JSON.stringify({ port: Number(server.getServerConn().split(':').pop()) }) + '\\n');
})().catch((err) => {
  process.stderr.write(String((err && err.stack) || err));
  process.exit(1);
});
`;

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

export class PgliteServer {
  /** Starts the database (with pgvector available) and waits until it listens. */
  static async start(options: { maxConnections?: number } = {}): Promise<PgliteServer> {
    const child = spawn(process.execPath, ['-e', CHILD_SCRIPT], {
      cwd: REPO_ROOT,
      env: { ...process.env, PGLITE_MAX_CONNECTIONS: String(options.maxConnections ?? 16) },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    live.add(child);
    child.once('exit', () => live.delete(child));
    let output = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      output = (output + chunk.toString('utf8')).slice(-4_000);
    });
    const port = await new Promise<number>((resolve, reject) => {
      let stdout = '';
      const timer = setTimeout(() => fail(new Error('PGlite did not start within 60 s')), 60_000);
      const fail = (err: Error): void => {
        clearTimeout(timer);
        child.kill('SIGKILL');
        reject(new Error(`${err.message}\n${output}`));
      };
      child.once('exit', (code) => fail(new Error(`PGlite exited with ${code} before listening`)));
      child.stdout?.on('data', (chunk: Buffer) => {
        stdout += chunk.toString('utf8');
        const line = stdout.split('\n')[0];
        if (stdout.includes('\n')) {
          clearTimeout(timer);
          child.removeAllListeners('exit');
          child.once('exit', () => live.delete(child));
          resolve((JSON.parse(line) as { port: number }).port);
        }
      });
    });
    return new PgliteServer(child, port);
  }

  readonly host = '127.0.0.1';
  private readonly pools = new Set<Pool>();

  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
  ) {}

  /** `pg` connection settings for this server. */
  connectionConfig(): PoolConfig {
    return { host: this.host, port: this.port, user: 'postgres', database: 'postgres', ssl: false };
  }

  /** A `pg` pool on this server; {@link stop} ends it. */
  pool(extra: PoolConfig = {}): Pool {
    const pool = new Pool({ ...this.connectionConfig(), max: 4, ...extra });
    // An idle client whose server goes away emits 'error' on the pool; tests see failures on their queries.
    pool.on('error', () => undefined);
    this.pools.add(pool);
    return pool;
  }

  /** Ends the pools handed out and stops the database process. */
  async stop(): Promise<void> {
    await Promise.all([...this.pools].map((p) => p.end().catch(() => undefined)));
    this.pools.clear();
    const child = this.child;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }
}
