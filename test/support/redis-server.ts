/**
 * A real Redis-protocol server for handler tests.
 *
 * The binary is found, in this order:
 * 1. `valkey-server` or `redis-server` on the PATH;
 * 2. a copy cached in `<repo>/.cache/redis/` (git-ignored);
 * 3. fetched from Debian's mirrors: `apt-get download redis-tools libjemalloc2 liblzf1`, each
 *    package unpacked with `dpkg-deb -x` into the cache. Debian ships the server inside
 *    redis-tools as `redis-check-rdb` (the binary chooses its mode from argv[0]), so a
 *    `redis-server` symlink to it is created, and the server runs with `LD_LIBRARY_PATH` pointing
 *    at the unpacked libraries. Nothing is installed system-wide; as root with empty apt lists,
 *    `apt-get update` is run first.
 *
 * `test/support/global-setup.ts` calls {@link ensureRedisBinary} once per jest run so that test
 * workers find the cached copy and never fetch concurrently (the cache is also filled by an
 * atomic rename, so a race would be harmless).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

/** A runnable Redis-protocol server binary. */
export interface RedisBinary {
  /** Path of the executable (for the Debian copy: the `redis-server` symlink). */
  readonly path: string;
  /** Extra environment the binary needs (`LD_LIBRARY_PATH` for the unpacked Debian copy). */
  readonly env: Record<string, string>;
  /** Where it came from. */
  readonly source: 'path' | 'cache' | 'download';
  /** First line of `--version`, e.g. `Redis server v=7.0.15 ...`. */
  readonly version: string;
}

/** Set by the global setup when no binary could be had, so workers fail fast with the reason instead of fetching again. */
export const REDIS_UNAVAILABLE_ENV = 'SCALABLE_AI_TEST_REDIS_UNAVAILABLE';
/** Set by the global setup to the resolved binary (JSON of {@link RedisBinary}). */
export const REDIS_BINARY_ENV = 'SCALABLE_AI_TEST_REDIS_BINARY';

const REPO_ROOT = path.resolve(__dirname, '..', '..');
const DEFAULT_CACHE_DIR = path.join(REPO_ROOT, '.cache', 'redis');
const DEBIAN_PACKAGES = ['redis-tools', 'libjemalloc2', 'liblzf1'];

let resolved: Promise<RedisBinary> | undefined;

/**
 * Finds a Redis-protocol server binary, fetching Debian's into the cache when there is none.
 * Memoized per process.
 */
export function ensureRedisBinary(options: { cacheDir?: string } = {}): Promise<RedisBinary> {
  resolved ??= resolveBinary(options.cacheDir ?? DEFAULT_CACHE_DIR).catch((err: unknown) => {
    resolved = undefined;
    throw err;
  });
  return resolved;
}

async function resolveBinary(cacheDir: string): Promise<RedisBinary> {
  const unavailable = process.env[REDIS_UNAVAILABLE_ENV];
  if (unavailable) throw new Error(`No Redis-protocol server for the tests (found by the jest global setup): ${unavailable}`);
  const fromSetup = process.env[REDIS_BINARY_ENV];
  if (fromSetup) {
    const bin = JSON.parse(fromSetup) as RedisBinary;
    if (fs.existsSync(bin.path)) return bin;
  }
  for (const name of ['valkey-server', 'redis-server']) {
    const found = whichSync(name);
    if (found) {
      const version = probeVersion(found, {});
      if (version) return { path: found, env: {}, source: 'path', version };
    }
  }
  const cached = cachedBinary(cacheDir);
  if (cached) return { ...cached, source: 'cache' };
  await fetchDebianRedis(cacheDir);
  const fetched = cachedBinary(cacheDir);
  if (!fetched) throw new Error(`Fetched ${DEBIAN_PACKAGES.join(', ')} into ${cacheDir}, but the redis-server there does not run`);
  return { ...fetched, source: 'download' };
}

function whichSync(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      if (fs.statSync(candidate).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** `--version` of a binary, or undefined when it does not run (missing libraries, wrong arch). */
function probeVersion(binary: string, env: Record<string, string>): string | undefined {
  const out = spawnSync(binary, ['--version'], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 10_000 });
  if (out.status !== 0 || !/server/i.test(out.stdout)) return undefined;
  return out.stdout.split('\n')[0].trim();
}

function cachedBinary(cacheDir: string): Omit<RedisBinary, 'source'> | undefined {
  const binary = path.join(cacheDir, 'usr', 'bin', 'redis-server');
  if (!fs.existsSync(binary)) return undefined;
  const env = { LD_LIBRARY_PATH: [...libraryDirs(cacheDir), process.env.LD_LIBRARY_PATH].filter(Boolean).join(path.delimiter) };
  const version = probeVersion(binary, env);
  return version ? { path: binary, env, version } : undefined;
}

/** Directories under the unpacked tree that hold shared libraries (e.g. `usr/lib/x86_64-linux-gnu`). */
function libraryDirs(root: string): string[] {
  const dirs: string[] = [];
  const walk = (dir: string, depth: number): void => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    if (entries.some((e) => !e.isDirectory() && /\.so(\.|$)/.test(e.name))) dirs.push(dir);
    if (depth > 0) for (const e of entries) if (e.isDirectory()) walk(path.join(dir, e.name), depth - 1);
  };
  for (const base of ['lib', path.join('usr', 'lib')]) walk(path.join(root, base), 2);
  return dirs;
}

function run(command: string, args: string[], cwd: string): { ok: boolean; output: string } {
  const out = spawnSync(command, args, { cwd, encoding: 'utf8', timeout: 180_000 });
  const output = `${out.stdout ?? ''}${out.stderr ?? ''}${out.error ? String(out.error) : ''}`.trim();
  return { ok: out.status === 0, output };
}

/** Downloads the Debian packages and unpacks them into `cacheDir` (atomically: unpack beside it, then rename). */
async function fetchDebianRedis(cacheDir: string): Promise<void> {
  if (process.platform !== 'linux') {
    throw new Error('No valkey-server or redis-server on the PATH; install one (fetching Debian packages only works on Debian/Ubuntu Linux)');
  }
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'redis-deb-'));
  try {
    let download = run('apt-get', ['download', ...DEBIAN_PACKAGES], work);
    if (!download.ok && process.getuid?.() === 0) {
      // A fresh container often has empty apt lists; as root we may refresh them (this installs nothing).
      const update = run('apt-get', ['update'], work);
      if (!update.ok) throw new Error(`apt-get update failed:\n${update.output}`);
      download = run('apt-get', ['download', ...DEBIAN_PACKAGES], work);
    }
    if (!download.ok) {
      throw new Error(
        `No valkey-server or redis-server on the PATH, and \`apt-get download ${DEBIAN_PACKAGES.join(' ')}\` failed ` +
          `(run \`apt-get update\` as root, or install redis-server / valkey-server):\n${download.output}`,
      );
    }
    const debs = fs.readdirSync(work).filter((f) => f.endsWith('.deb'));
    fs.mkdirSync(path.dirname(cacheDir), { recursive: true });
    const staging = fs.mkdtempSync(path.join(path.dirname(cacheDir), `${path.basename(cacheDir)}.tmp-`));
    try {
      for (const deb of debs) {
        const unpack = run('dpkg-deb', ['-x', path.join(work, deb), staging], work);
        if (!unpack.ok) throw new Error(`dpkg-deb -x ${deb} failed:\n${unpack.output}`);
      }
      const bin = path.join(staging, 'usr', 'bin');
      if (!fs.existsSync(path.join(bin, 'redis-check-rdb'))) throw new Error(`redis-tools did not contain usr/bin/redis-check-rdb (got ${debs.join(', ')})`);
      fs.symlinkSync('redis-check-rdb', path.join(bin, 'redis-server'));
      fs.rmSync(cacheDir, { recursive: true, force: true });
      try {
        fs.renameSync(staging, cacheDir);
      } catch (err) {
        // Another process filled the cache first: use its copy.
        if (!cachedBinary(cacheDir)) throw err;
      }
    } finally {
      fs.rmSync(staging, { recursive: true, force: true });
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/** A port that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

/** Whether a Redis-protocol server answers PING on the port (a NOAUTH error counts: the server is up). */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let data = '';
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      data += chunk.toString('utf8');
      if (data.includes('\r\n')) done(/^(\+PONG|-NOAUTH)/.test(data));
    });
  });
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  // Never leave a server behind when a worker exits without afterAll (crash, --bail).
  for (const child of live) child.kill('SIGKILL');
});

export interface RedisServerOptions {
  /** `requirepass`: clients must AUTH with it. */
  readonly password?: string;
  /** Port to listen on (default: a free one). */
  readonly port?: number;
}

/** One Redis-protocol server process on 127.0.0.1, with no persistence. */
export class RedisServer {
  /** Starts a server and waits until it answers PING. */
  static async start(options: RedisServerOptions = {}): Promise<RedisServer> {
    const binary = await ensureRedisBinary();
    for (let attempt = 1; ; attempt++) {
      const server = new RedisServer(binary, options.port ?? (await freePort()), options.password);
      try {
        await server.start();
        return server;
      } catch (err) {
        // A port picked by freePort() may be taken in between: pick another one.
        if (options.port !== undefined || attempt >= 3) throw err;
      }
    }
  }

  readonly host = '127.0.0.1';
  private child?: ChildProcess;
  private output = '';
  private readonly dir: string;

  private constructor(readonly binary: RedisBinary, readonly port: number, readonly password: string | undefined) {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'redis-data-'));
  }

  /** Whether the process is running. */
  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** `redis://` URL (with the password) of the server. */
  get url(): string {
    const auth = this.password ? `:${encodeURIComponent(this.password)}@` : '';
    return `redis://${auth}${this.host}:${this.port}`;
  }

  /** (Re)starts the process on the same port and waits until it answers PING. */
  async start(): Promise<void> {
    if (this.running) return;
    const args = [
      '--port', String(this.port),
      '--bind', this.host,
      '--save', '',
      '--appendonly', 'no',
      '--daemonize', 'no',
      '--dir', this.dir,
      ...(this.password ? ['--requirepass', this.password] : []),
    ];
    this.output = '';
    const child = spawn(this.binary.path, args, { env: { ...process.env, ...this.binary.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (chunk: Buffer): void => {
      this.output = (this.output + chunk.toString('utf8')).slice(-4_000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    this.child = child;
    live.add(child);
    child.once('exit', () => live.delete(child));
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const giveUp = Date.now() + 15_000;
    while (!(await ping(this.port))) {
      if (!this.running || Date.now() > giveUp) {
        child.kill('SIGKILL');
        await exited;
        throw new Error(`${this.binary.path} did not start on port ${this.port}:\n${this.output}`);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    if (!this.running) throw new Error(`Port ${this.port} answers, but not our ${this.binary.path}:\n${this.output}`);
  }

  /**
   * Stops the process and waits for it to exit. `SIGTERM` shuts down cleanly; `SIGKILL`
   * simulates a crash. Connected clients see their connections drop either way.
   */
  async stop(signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
    const child = this.child;
    if (!child || !this.running) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }

  /** Stops the process and removes its working directory. */
  async dispose(): Promise<void> {
    await this.stop();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
