/**
 * Stored embeddings of `plan`: the file format, the on-disk cache, the stored-first embedder, and
 * the shipped vectors of the default trace.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { MINILM_DIMENSIONS, MINILM_VECTORS_ID } from '../../lambdas/adapters/minilm-embedder';
import {
  decodeEmbeddings, defaultEmbeddingCacheDir, EmbeddingDiskCache, embeddingKey, encodeEmbeddings, readEmbeddingsFile,
  SHIPPED_EMBEDDINGS_FILE, StoredEmbeddings, StoredFirstEmbedder, unstoredTexts,
} from '../../lambdas/cli/plan-embeddings';
import { textsToEmbed } from '../../lambdas/cli/plan-replay';
import { readTrace } from '../../lambdas/cli/plan-trace';
import type { Embedder } from '../../lambdas/core/semantic/ports';
import { normalize } from '../../lambdas/core/semantic/vectors';

const ROOT = resolve(__dirname, '../..');
const MODEL = 'test-model (weights@1)';
const D = 16;

/** A deterministic unit vector per text. */
function vectorOf(text: string): Float32Array {
  const v = new Float32Array(D);
  for (let i = 0; i < D; i++) v[i] = Math.sin((i + 1) * (text.length + 1) + text.charCodeAt(i % text.length));
  return normalize(v);
}

function vectorsOf(texts: string[]): Map<string, Float32Array> {
  return new Map(texts.map((t) => [embeddingKey(MODEL, t), vectorOf(t)]));
}

function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  for (let i = 0; i < a.length; i++) dot += a[i] * b[i];
  return dot;
}

/** An embedder that counts the texts it is asked for. */
function countingEmbedder(): Embedder & { asked: string[] } {
  const asked: string[] = [];
  return { modelId: 'test', dimensions: D, asked, embed: async (texts) => (asked.push(...texts), texts.map(vectorOf)) };
}

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'plan-embeddings-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('the embeddings file', () => {
  const texts = ['How do I reset my PIN?', 'Where is my card?', 'card_arrival', 'é ünïcode ✓'];

  test('float32 round-trips exactly; int8 keeps each vector within a cosine of 0.999', () => {
    const exact = decodeEmbeddings(encodeEmbeddings(MODEL, D, 'float32', vectorsOf(texts)));
    expect(exact.header).toEqual({ model: MODEL, dimensions: D, count: 4, encoding: 'float32' });
    for (const t of texts) expect(Array.from(exact.embeddings.get(t)!)).toEqual(Array.from(vectorOf(t)));

    const int8 = encodeEmbeddings(MODEL, D, 'int8', vectorsOf(texts));
    const quantised = decodeEmbeddings(int8).embeddings;
    for (const t of texts) {
      expect(cosine(quantised.get(t)!, vectorOf(t))).toBeGreaterThan(0.999);
      expect(cosine(quantised.get(t)!, quantised.get(t)!)).toBeCloseTo(1, 6);
    }
    // Per vector: an 8-byte key, then a float32 scale and one byte a dimension, or 4 bytes a dimension.
    const growth = (encoding: 'int8' | 'float32') =>
      encodeEmbeddings(MODEL, D, encoding, vectorsOf(texts)).length - encodeEmbeddings(MODEL, D, encoding, vectorsOf(texts.slice(1))).length;
    expect([growth('int8'), growth('float32')]).toEqual([8 + 4 + D, 8 + 4 * D]);
  });

  test('entries are keyed by model and text: another model or text finds nothing', () => {
    const stored = decodeEmbeddings(encodeEmbeddings(MODEL, D, 'int8', vectorsOf(texts))).embeddings;
    expect(stored.get('Where is my card?')).toBeDefined();
    expect(stored.get('where is my card?')).toBeUndefined();
    expect(new StoredEmbeddings('other-model', D, stored.vectors).get('Where is my card?')).toBeUndefined();
    expect(embeddingKey(MODEL, 'a')).toMatch(/^[0-9a-f]{16}$/);
    expect(embeddingKey(MODEL, 'a')).not.toBe(embeddingKey('other-model', 'a'));
  });

  test('a truncated, padded or foreign file is refused; readEmbeddingsFile gives undefined for it and for another model', () => {
    const file = encodeEmbeddings(MODEL, D, 'int8', vectorsOf(texts));
    expect(() => decodeEmbeddings(file.subarray(0, file.length - 1))).toThrow(/bytes, expected/);
    expect(() => decodeEmbeddings(Buffer.concat([file, Buffer.alloc(1)]))).toThrow(/bytes, expected/);
    expect(() => decodeEmbeddings(Buffer.from('text,label\n'))).toThrow(/not an embeddings file/);
    const path = join(dir, 'e.bin');
    writeFileSync(path, file);
    expect(readEmbeddingsFile(path, MODEL, D)?.size).toBe(4);
    expect(readEmbeddingsFile(path, 'other-model', D)).toBeUndefined();
    expect(readEmbeddingsFile(path, MODEL, D + 1)).toBeUndefined();
    expect(readEmbeddingsFile(join(dir, 'missing.bin'), MODEL, D)).toBeUndefined();
  });
});

describe('EmbeddingDiskCache', () => {
  test('keeps what is saved across instances, one folder per model', () => {
    new EmbeddingDiskCache(dir, MODEL, D).save(vectorsOf(['a', 'b']));
    new EmbeddingDiskCache(dir, MODEL, D).save(vectorsOf(['c']));
    const { embeddings, shards, skipped } = new EmbeddingDiskCache(dir, MODEL, D).load();
    expect({ size: embeddings.size, shards, skipped }).toEqual({ size: 3, shards: 2, skipped: 0 });
    expect(Array.from(embeddings.get('c')!)).toEqual(Array.from(vectorOf('c')));
    expect(new EmbeddingDiskCache(dir, 'other-model', D).load().embeddings.size).toBe(0);
    expect(new EmbeddingDiskCache(dir, MODEL, D).save(new Map())).toBeUndefined();
  });

  test('a partial shard (a crash mid-write) is skipped and counted; temporary files are ignored', () => {
    const cache = new EmbeddingDiskCache(dir, MODEL, D);
    const good = cache.save(vectorsOf(['a']))!;
    const bytes = encodeEmbeddings(MODEL, D, 'float32', vectorsOf(['b', 'c']));
    writeFileSync(join(cache.dir, 'zz-partial.bin'), bytes.subarray(0, bytes.length - 10));
    writeFileSync(join(cache.dir, '.x.tmp'), bytes);
    const { embeddings, shards, skipped } = cache.load();
    expect({ size: embeddings.size, shards, skipped }).toEqual({ size: 1, shards: 1, skipped: 1 });
    expect(embeddings.get('a')).toBeDefined();
    // Owner-only: the cache is the user's, not the machine's.
    expect((statSync(good).mode % 0o1000).toString(8)).toBe('600');
  });

  test('a save removes temporary files a dead run left over an hour ago, not those of a running one', () => {
    const cache = new EmbeddingDiskCache(dir, MODEL, D);
    cache.save(vectorsOf(['a']));
    const stale = join(cache.dir, '.stale.tmp');
    const recent = join(cache.dir, '.recent.tmp');
    writeFileSync(stale, 'x');
    writeFileSync(recent, 'x');
    const twoHoursAgo = new Date(Date.now() - 7_200_000);
    utimesSync(stale, twoHoursAgo, twoHoursAgo);
    cache.save(vectorsOf(['b']));
    expect(readdirSync(cache.dir).filter((n) => n.endsWith('.tmp'))).toEqual(['.recent.tmp']);
  });

  test('past 8 shards it merges them into one, losing nothing', () => {
    const cache = new EmbeddingDiskCache(dir, MODEL, D);
    const texts = Array.from({ length: 9 }, (_, i) => `question ${i}`);
    for (const t of texts) cache.save(vectorsOf([t]));
    expect(readdirSync(cache.dir).filter((n) => n.endsWith('.bin'))).toHaveLength(1);
    const { embeddings } = cache.load();
    expect(unstoredTexts(texts, [embeddings])).toEqual([]);
  });

  test('lives under $XDG_CACHE_HOME, else ~/.cache', () => {
    expect(defaultEmbeddingCacheDir({ XDG_CACHE_HOME: '/var/cache/me' })).toBe('/var/cache/me/cdk-scalable-ai/embeddings');
    expect(defaultEmbeddingCacheDir({})).toMatch(/\/\.cache\/cdk-scalable-ai\/embeddings$/);
    // A relative XDG_CACHE_HOME is invalid by the spec and ignored.
    expect(defaultEmbeddingCacheDir({ XDG_CACHE_HOME: 'rel' })).toMatch(/\/\.cache\/cdk-scalable-ai\/embeddings$/);
  });
});

describe('StoredFirstEmbedder', () => {
  test('answers stored texts from the store and embeds only the others, once, keeping them', async () => {
    const stored = new StoredEmbeddings(MODEL, D, vectorsOf(['a', 'b']));
    const live = countingEmbedder();
    const progress: number[] = [];
    const embedder = new StoredFirstEmbedder('test', D, MODEL, [stored], live, (n) => progress.push(n));
    const out = await embedder.embed(['a', 'x', 'b', 'y']);
    expect(out.map((v) => Array.from(v))).toEqual(['a', 'x', 'b', 'y'].map((t) => Array.from(vectorOf(t))));
    expect(live.asked).toEqual(['x', 'y']);
    await embedder.embed(['x', 'a']);
    expect(live.asked).toEqual(['x', 'y']);
    expect([...embedder.fresh.keys()].sort()).toEqual([embeddingKey(MODEL, 'x'), embeddingKey(MODEL, 'y')].sort());
    expect({ stored: embedder.stored, progress }).toEqual({ stored: 4, progress: [2] });
  });

  test('without a live embedder a text with no stored vector is an error', async () => {
    const embedder = new StoredFirstEmbedder('test', D, MODEL, [new StoredEmbeddings(MODEL, D, vectorsOf(['a']))]);
    await expect(embedder.embed(['a'])).resolves.toHaveLength(1);
    await expect(embedder.embed(['a', 'b'])).rejects.toThrow(/1 text\(s\) have no stored embedding/);
  });
});

describe('the shipped vectors of the default trace', () => {
  const path = join(ROOT, 'data/banking77', SHIPPED_EMBEDDINGS_FILE);

  test('hold every text a replay of banking77 embeds, from the MiniLM weights the adapter loads', () => {
    const { header, embeddings } = decodeEmbeddings(readFileSync(path));
    expect(header).toMatchObject({ model: MINILM_VECTORS_ID, dimensions: MINILM_DIMENSIONS, encoding: 'int8' });
    const rows = ['train.csv', 'test.csv'].flatMap((f) => readTrace(join(ROOT, 'data/banking77', f)).rows);
    const texts = textsToEmbed(rows);
    // When this fails, banking77 or the replay's texts changed: run `npm run embeddings`.
    expect(unstoredTexts(texts, [embeddings])).toEqual([]);
    expect(embeddings.size).toBe(texts.length);
  });
});
