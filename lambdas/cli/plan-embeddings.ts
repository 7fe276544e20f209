/**
 * Stored embeddings for `plan`: the MiniLM vectors of texts embedded before, so that a replay
 * embeds only what it has never seen.
 *
 * - The package ships the vectors of the default trace's texts (data/banking77, every question and
 *   every answer the replay stores), int8-quantised: `npm run embeddings` regenerates them with the
 *   live model (scripts/embed-banking77.ts). The first `plan` of a fresh install embeds nothing.
 * - An on-disk cache under `$XDG_CACHE_HOME/cdk-scalable-ai/embeddings/` (default `~/.cache/...`)
 *   keeps, as float32, every vector a run had to embed live, so a later run of the same trace
 *   embeds nothing either. Each run that embedded something writes one new shard file, to a
 *   temporary name then renamed: a crash leaves no partial shard under a shard's name (its temporary
 *   file is removed by a later save after an hour), and a shard that does not parse is skipped (and
 *   its texts embedded again).
 *
 * Entries are keyed by a hash of the model and the text (SHA-256 of `model NUL text`, first 8
 * bytes): another model, another weights package or another text never finds them. The cache holds
 * hashes and vectors, not the texts.
 *
 * File format (little-endian): the magic `CSAIEMB1`, a uint32 byte length and a JSON header
 * `{"model", "dimensions", "count", "encoding"}`, zero padding to a multiple of 8, then `count`
 * keys of 8 bytes, then for `int8` `count` float32 scales and `count × dimensions` int8 values
 * (value × scale, then normalised to unit length), for `float32` the `count × dimensions` values.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { endianness, homedir } from 'node:os';
import { join } from 'node:path';
import type { Embedder } from '../core/semantic/ports';
import { normalize } from '../core/semantic/vectors';

/**
 * The shipped MiniLM vectors of the default trace's texts, in data/banking77 (`npm run embeddings`
 * writes them: scripts/embed-banking77.ts).
 */
export const SHIPPED_EMBEDDINGS_FILE = 'all-MiniLM-L6-v2.int8.bin';

const MAGIC = Buffer.from('CSAIEMB1', 'latin1');
/** Shards the disk cache keeps before it merges them into one. */
const MAX_SHARDS = 8;
/** A temporary file older than this was left by a run that died before its rename. */
const STALE_TMP_MS = 3_600_000;

export type EmbeddingEncoding = 'int8' | 'float32';

export interface EmbeddingFileHeader {
  /** The embedding model and the exact weights that computed the vectors. */
  readonly model: string;
  readonly dimensions: number;
  readonly count: number;
  readonly encoding: EmbeddingEncoding;
}

/** The key of a text's vector under a model: 16 hex digits. */
export function embeddingKey(model: string, text: string): string {
  return createHash('sha256').update(model).update('\u0000').update(text).digest('hex').slice(0, 16);
}

/** Vectors by key, of one model. */
export class StoredEmbeddings {
  constructor(
    readonly model: string,
    readonly dimensions: number,
    readonly vectors: ReadonlyMap<string, Float32Array> = new Map(),
  ) {}

  get size(): number {
    return this.vectors.size;
  }

  get(text: string): Float32Array | undefined {
    return this.vectors.get(embeddingKey(this.model, text));
  }
}

/** Encodes vectors (unit length) keyed by {@link embeddingKey}. */
export function encodeEmbeddings(model: string, dimensions: number, encoding: EmbeddingEncoding, vectors: ReadonlyMap<string, Float32Array>): Buffer {
  const entries = [...vectors].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const header = Buffer.from(JSON.stringify({ model, dimensions, count: entries.length, encoding } satisfies EmbeddingFileHeader), 'utf8');
  const start = pad8(MAGIC.length + 4 + header.length);
  const body = entries.length * (8 + (encoding === 'int8' ? 4 + dimensions : 4 * dimensions));
  const out = Buffer.alloc(start + body);
  MAGIC.copy(out, 0);
  out.writeUInt32LE(header.length, MAGIC.length);
  header.copy(out, MAGIC.length + 4);
  let at = start;
  for (const [key] of entries) at += out.write(key, at, 'hex');
  if (encoding === 'float32') {
    for (const [key, v] of entries) {
      if (v.length !== dimensions) throw new Error(`vector ${key} has ${v.length} dimensions, expected ${dimensions}`);
      for (let i = 0; i < dimensions; i++) at = out.writeFloatLE(v[i], at);
    }
    return out;
  }
  // int8: per vector, its largest magnitude maps to 127.
  const scales: number[] = [];
  for (const [key, v] of entries) {
    if (v.length !== dimensions) throw new Error(`vector ${key} has ${v.length} dimensions, expected ${dimensions}`);
    let max = 0;
    for (let i = 0; i < dimensions; i++) max = Math.max(max, Math.abs(v[i]));
    const scale = max > 0 ? max / 127 : 1;
    scales.push(scale);
    at = out.writeFloatLE(scale, at);
  }
  entries.forEach(([, v], e) => {
    for (let i = 0; i < dimensions; i++) at = out.writeInt8(Math.max(-127, Math.min(127, Math.round(v[i] / scales[e]))), at);
  });
  return out;
}

/** Decodes a file written by {@link encodeEmbeddings}; throws on anything malformed or truncated. */
export function decodeEmbeddings(buf: Buffer): { header: EmbeddingFileHeader; embeddings: StoredEmbeddings } {
  if (buf.length < MAGIC.length + 4 || !buf.subarray(0, MAGIC.length).equals(MAGIC)) throw new Error('not an embeddings file');
  const headerLength = buf.readUInt32LE(MAGIC.length);
  if (MAGIC.length + 4 + headerLength > buf.length) throw new Error('truncated header');
  const header = JSON.parse(buf.toString('utf8', MAGIC.length + 4, MAGIC.length + 4 + headerLength)) as EmbeddingFileHeader;
  const { model, dimensions: d, count, encoding } = header;
  if (typeof model !== 'string' || !Number.isInteger(d) || d <= 0 || !Number.isInteger(count) || count < 0 || (encoding !== 'int8' && encoding !== 'float32')) {
    throw new Error('bad header');
  }
  const start = pad8(MAGIC.length + 4 + headerLength);
  const expected = start + count * (8 + (encoding === 'int8' ? 4 + d : 4 * d));
  if (buf.length !== expected) throw new Error(`${buf.length} bytes, expected ${expected}`);
  const keysAt = start;
  const valuesAt = keysAt + 8 * count;
  // One aligned copy of all the values; each vector is a view into it.
  const values = new Float32Array(count * d);
  if (encoding === 'float32') {
    new Uint8Array(values.buffer).set(buf.subarray(valuesAt, valuesAt + 4 * count * d));
  } else {
    const ints = new Int8Array(buf.buffer, buf.byteOffset + valuesAt + 4 * count, count * d);
    for (let e = 0; e < count; e++) {
      const scale = buf.readFloatLE(valuesAt + 4 * e);
      for (let i = 0; i < d; i++) values[e * d + i] = ints[e * d + i] * scale;
    }
  }
  const vectors = new Map<string, Float32Array>();
  for (let e = 0; e < count; e++) {
    const v = values.subarray(e * d, (e + 1) * d);
    vectors.set(buf.toString('hex', keysAt + 8 * e, keysAt + 8 * (e + 1)), encoding === 'int8' ? normalize(v) : v);
  }
  return { header, embeddings: new StoredEmbeddings(model, d, vectors) };
}

/** Reads an embeddings file of `model`; undefined when it is missing, unreadable or of another model. */
export function readEmbeddingsFile(path: string, model: string, dimensions: number): StoredEmbeddings | undefined {
  // The encoding is little-endian and decoded with typed arrays, which use the machine's order.
  if (endianness() !== 'LE') return undefined;
  try {
    const { embeddings } = decodeEmbeddings(readFileSync(path));
    return embeddings.model === model && embeddings.dimensions === dimensions ? embeddings : undefined;
  } catch {
    return undefined;
  }
}

/** `$XDG_CACHE_HOME/cdk-scalable-ai/embeddings`, `~/.cache/...` without it. */
export function defaultEmbeddingCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CACHE_HOME && env.XDG_CACHE_HOME.startsWith('/') ? env.XDG_CACHE_HOME : join(homedir(), '.cache');
  return join(base, 'cdk-scalable-ai', 'embeddings');
}

/** The on-disk cache of one model: a folder of shard files (see the module comment). */
export class EmbeddingDiskCache {
  readonly dir: string;

  constructor(root: string, readonly model: string, readonly dimensions: number) {
    this.dir = join(root, createHash('sha256').update(model).digest('hex').slice(0, 16));
  }

  /** Every readable shard's vectors; `skipped` counts the shards that did not parse. */
  load(): { embeddings: StoredEmbeddings; shards: number; skipped: number } {
    const vectors = new Map<string, Float32Array>();
    let shards = 0;
    let skipped = 0;
    for (const name of this.shardNames()) {
      const shard = readEmbeddingsFile(join(this.dir, name), this.model, this.dimensions);
      if (!shard) {
        skipped++;
        continue;
      }
      shards++;
      for (const [k, v] of shard.vectors) vectors.set(k, v);
    }
    return { embeddings: new StoredEmbeddings(this.model, this.dimensions, vectors), shards, skipped };
  }

  /**
   * Writes `vectors` as a new shard (nothing when empty); past {@link MAX_SHARDS} shards, merges
   * them all into one. Returns the shard's path.
   */
  save(vectors: ReadonlyMap<string, Float32Array>): string | undefined {
    if (vectors.size === 0) return undefined;
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    this.removeStaleTemporaries();
    const path = this.write(vectors);
    const names = this.shardNames();
    if (names.length > MAX_SHARDS) {
      const { embeddings } = this.load();
      const merged = this.write(embeddings.vectors);
      // Only what was merged is removed; a shard another run wrote meanwhile stays.
      for (const name of names) if (join(this.dir, name) !== merged) rmSync(join(this.dir, name), { force: true });
      return merged;
    }
    return path;
  }

  private write(vectors: ReadonlyMap<string, Float32Array>): string {
    const id = `${Date.now().toString(36)}-${randomBytes(6).toString('hex')}`;
    const tmp = join(this.dir, `.${id}.tmp`);
    const path = join(this.dir, `${id}.bin`);
    writeFileSync(tmp, encodeEmbeddings(this.model, this.dimensions, 'float32', vectors), { mode: 0o600 });
    renameSync(tmp, path);
    return path;
  }

  private removeStaleTemporaries(): void {
    for (const name of readdirSync(this.dir).filter((n) => n.endsWith('.tmp'))) {
      const path = join(this.dir, name);
      try {
        if (Date.now() - statSync(path).mtimeMs > STALE_TMP_MS) rmSync(path, { force: true });
      } catch {
        // Renamed or removed by its run meanwhile.
      }
    }
  }

  private shardNames(): string[] {
    try {
      return readdirSync(this.dir).filter((n) => n.endsWith('.bin')).sort();
    } catch {
      return [];
    }
  }
}

/**
 * An embedder that answers from stored vectors first and embeds the rest with `live`, keeping
 * what it embedded in {@link fresh} (for the disk cache). Without `live`, a text that is not
 * stored is an error.
 */
export class StoredFirstEmbedder implements Embedder {
  /** Vectors embedded live by this embedder, by key. */
  readonly fresh = new Map<string, Float32Array>();
  /** Texts answered from the stored vectors. */
  stored = 0;

  constructor(
    readonly modelId: string,
    readonly dimensions: number,
    private readonly model: string,
    private readonly sources: readonly StoredEmbeddings[],
    private readonly live?: Embedder,
    /** Called after each live batch with the count embedded live so far. */
    private readonly onLive?: (embedded: number) => void,
  ) {}

  async embed(texts: string[], signal?: AbortSignal): Promise<Float32Array[]> {
    const out: Array<Float32Array | undefined> = texts.map((t) => this.lookup(t));
    const missing = texts.flatMap((_, i) => (out[i] ? [] : [i]));
    this.stored += texts.length - missing.length;
    if (missing.length > 0) {
      if (!this.live) throw new Error(`${missing.length} text(s) have no stored embedding and no live embedder was given`);
      const vectors = await this.live.embed(missing.map((i) => texts[i]), signal);
      missing.forEach((i, k) => {
        out[i] = vectors[k];
        this.fresh.set(embeddingKey(this.model, texts[i]), vectors[k]);
      });
      this.onLive?.(this.fresh.size);
    }
    return out as Float32Array[];
  }

  private lookup(text: string): Float32Array | undefined {
    const key = embeddingKey(this.model, text);
    const fresh = this.fresh.get(key);
    if (fresh) return fresh;
    for (const source of this.sources) {
      const v = source.vectors.get(key);
      if (v) return v;
    }
    return undefined;
  }
}

/** Which of `texts` none of `sources` holds (distinct). */
export function unstoredTexts(texts: Iterable<string>, sources: readonly StoredEmbeddings[]): string[] {
  return [...new Set(texts)].filter((t) => !sources.some((s) => s.get(t)));
}

function pad8(n: number): number {
  return Math.ceil(n / 8) * 8;
}
