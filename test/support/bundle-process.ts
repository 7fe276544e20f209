/**
 * A bundled handler (assets/lambdas/<name>/handler/index.js, what users deploy) loaded in a child
 * Node process of its own: one process is one Lambda container (module state such as caches and
 * clients lives as long as it does), and its environment is fixed at start, as Lambda's is. That
 * is what environment-only settings need, such as NODE_EXTRA_CA_CERTS (read once at start-up) or
 * the AWS_ENDPOINT_URL_* variables the handler's module-level clients read when they load.
 */
import { fork, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export const ASSETS = path.join(__dirname, '..', '..', 'assets', 'lambdas');

/** The child: loads the bundle on its first message, then answers each event with the handler's result. */
const DRIVER = `
let mod;
process.on('message', async ({ id, bundle, event }) => {
  try {
    mod ??= require(bundle);
    const result = await mod.handler(event, { functionName: 'bundle-process', getRemainingTimeInMillis: () => 5000 });
    process.send({ id, ok: true, result: result === undefined ? null : result });
  } catch (err) {
    process.send({ id, ok: false, error: { name: err && err.name, message: err && err.message } });
  }
});
`;

/** What a handler threw, as the child saw it. */
export class BundleInvocationError extends Error {
  constructor(readonly errorName: string | undefined, message: string | undefined) {
    super(`${errorName ?? 'Error'}: ${message ?? ''}`);
  }
}

export class BundleProcess {
  /**
   * Starts a process for the bundle of handler `name`. With `files`, the bundle is copied into a
   * temporary directory with these files beside it (e.g. Lambda@Edge's configuration file).
   */
  static start(name: string, options: { env?: Record<string, string>; files?: Record<string, string> } = {}): BundleProcess {
    let bundle = path.join(ASSETS, name, 'handler', 'index.js');
    if (!fs.existsSync(bundle)) throw new Error(`${bundle} is missing: run \`npx projen bundle\` first`);
    let dir: string | undefined;
    if (options.files) {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), `bundle-${name}-`));
      fs.copyFileSync(bundle, path.join(dir, 'index.js'));
      for (const [file, content] of Object.entries(options.files)) fs.writeFileSync(path.join(dir, file), content);
      bundle = path.join(dir, 'index.js');
    }
    const driver = path.join(dir ?? fs.mkdtempSync(path.join(os.tmpdir(), `bundle-${name}-`)), 'driver.cjs');
    fs.writeFileSync(driver, DRIVER);
    // Only what a Lambda container would have: PATH, plus the given variables.
    const child = fork(driver, [], { env: { PATH: process.env.PATH ?? '', ...options.env }, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
    return new BundleProcess(child, bundle, path.dirname(driver));
  }

  /** What the handler wrote to stdout and stderr (its logs). */
  output = '';
  private nextId = 0;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  private constructor(private readonly child: ChildProcess, private readonly bundle: string, private readonly dir: string) {
    child.stdout?.on('data', (d: Buffer) => (this.output += d.toString('utf8')));
    child.stderr?.on('data', (d: Buffer) => (this.output += d.toString('utf8')));
    child.on('message', (m: { id: number; ok: boolean; result?: unknown; error?: { name?: string; message?: string } }) => {
      const w = this.waiting.get(m.id);
      this.waiting.delete(m.id);
      if (m.ok) w?.resolve(m.result);
      else w?.reject(new BundleInvocationError(m.error?.name, m.error?.message));
    });
    child.on('exit', (code) => {
      for (const w of this.waiting.values()) w.reject(new Error(`the bundle process exited (${code}): ${this.output}`));
      this.waiting.clear();
    });
  }

  /** Calls the handler with `event`; resolves to what it returned, rejects with what it threw. */
  invoke<T = unknown>(event: unknown): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.child.send({ id, bundle: this.bundle, event });
    });
  }

  async close(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
      this.child.kill();
      await exited;
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
