import { randomBytes } from 'node:crypto';
import type Valkey from 'iovalkey';
import { idHash, sha256Hex } from '../core/hashing';
import { mapLimit } from '../core/map-limit';
import type { CachedAnswer } from '../core/ports';
import type { SemanticEntry, VectorStore } from '../core/semantic/ports';
import { normalizeQuestion, type StaticAnswer, type StaticAnswerStore } from '../core/static-answers';
import type {
  PublishOptions, PublishResult, PublishedTenant, StaticAnswerRecord, StaticAnswersPublisher,
} from '../core/static-answers-loader';

export interface ValkeyStaticAnswersOptions {
  /** Prefix of every key the library writes (`CacheConnectionRuntimeConfig.keyPrefix`, e.g. `sai:`). */
  readonly keyPrefix: string;
  /**
   * Where the writer stores the question variants' embeddings (the static answers' own index).
   * Required to publish with vectors; the reader does not need it.
   */
  readonly vectorStore?: VectorStore;
  /**
   * Seconds the vector entries of a version live. The version's hashes never expire; its vectors
   * do, so that the vectors of a replaced version whose `deleteScope` failed do not stay forever:
   * a tenant that is not republished for this long (its files stay invalid) keeps exact matching
   * but loses semantic matching. Default 8 days (a week of daily runs).
   */
  readonly vectorTtlSeconds?: number;
  /**
   * Seconds a version being written lives until it is made current (its TTL is removed just
   * before the switch): the keys of a writer that crashes midway expire by themselves. Default 1 hour.
   */
  readonly pendingTtlSeconds?: number;
  /** Seconds a replaced version lives when deleting it fails. Default 5 minutes. */
  readonly staleTtlSeconds?: number;
  /** Fields per HSET command. Default 500. */
  readonly batchSize?: number;
  /** Vector entries written at the same time. Default 16. */
  readonly vectorConcurrency?: number;
  /**
   * Reader: the embedding model the router embeds questions with (`Embedder.modelId`).
   * `vectorScope()` answers undefined for a version published with another model, whose vectors
   * cannot be compared. Absent: not checked.
   */
  readonly expectedModelId?: string;
}

/** The tenant's current version: the value of its pointer key (small: the router reads it per request). */
interface Pointer {
  /** Layout version of this record. */
  readonly v: 1;
  readonly tenantId: string;
  readonly version: string;
  readonly vectorScope?: string;
  readonly modelId?: string;
}

/** What the loader remembers of a version (read by the loader only). */
interface VersionMeta {
  readonly tenantId: string;
  readonly version: string;
  readonly publishedAt: number;
  readonly answers: number;
  readonly variants: number;
  readonly sources: readonly string[];
  readonly vectors?: { readonly scope: string; readonly modelId: string; readonly dimensions: number };
}

const DEFAULT_VECTOR_TTL_SECONDS = 8 * 24 * 3600;

/**
 * The static answers in Valkey: one module writes them (the loader) and reads them (the router),
 * so the two agree on the layout by construction.
 *
 * Layout (`<p>` = key prefix, `<t>` = first 16 hex digits of sha256(tenant id), `<ver>` = version id):
 * - `<p>static:<t>:current`: STRING, JSON `{v, tenantId, version, vectorScope?, modelId?}`: the
 *   pointer to the tenant's current version. Switching it is one `SET ... GET`, so readers see
 *   the old version or the new one, never a mix.
 * - `<p>static:<t>:v:<ver>:q`: HASH, sha256(normalized question) → answer id.
 * - `<p>static:<t>:v:<ver>:a`: HASH, answer id → JSON `{id, answer}`.
 * - `<p>static:<t>:v:<ver>:m`: STRING, JSON metadata of the version (tenant id, object keys it
 *   came from, counts, vector scope), read by the loader.
 * - `<p>static:tenants`: SET of the tenant hashes that have a pointer (the loader lists it to
 *   remove tenants whose files are gone).
 * - With vectors: one `VectorStore` entry per question variant in a scope of its own per version
 *   (opaque: sha256 of tenant, version and model), `answerKey` = answer id, `answer.text` = the
 *   answer, `answer.tierId` = `static`.
 *
 * Every command names one key, so the layout works with cluster mode too.
 *
 * Publishing writes the new version's keys with a pending TTL, removes the TTL, switches the
 * pointer, and only then deletes the replaced version (and its vector scope); if the deletion fails the old keys get a short TTL instead. A reader that read
 * the old pointer just before a switch checks the pointer again in the same pipeline as its hash
 * read and retries on the new version, so it never misses because a version disappeared under it.
 *
 * The tenant id is in the pointer and checked on read: even two tenants whose 64-bit hashes
 * collided would not see each other's answers.
 */
export class ValkeyStaticAnswers implements StaticAnswerStore, StaticAnswersPublisher {
  /** First 16 hex digits of sha256(tenant id), as in the exact cache's keys. */
  static tenantHash(tenantId: string): string {
    return idHash(tenantId);
  }

  private readonly prefix: string;
  private readonly indexed = new Set<number>();

  constructor(
    private readonly client: Valkey,
    private readonly options: ValkeyStaticAnswersOptions,
  ) {
    this.prefix = `${options.keyPrefix}static:`;
  }

  // -------------------------------------------------------------------------------------------
  // Keys

  /** The pointer key of a tenant. */
  pointerKey(tenantId: string): string {
    return this.pointerKeyOf(ValkeyStaticAnswers.tenantHash(tenantId));
  }

  /** The keys of one version of a tenant. */
  versionKeys(tenantId: string, version: string): { questions: string; answers: string; meta: string } {
    return this.versionKeysOf(ValkeyStaticAnswers.tenantHash(tenantId), version);
  }

  /** The SET of published tenant hashes. */
  get registryKey(): string {
    return `${this.prefix}tenants`;
  }

  private pointerKeyOf(hash: string): string {
    return `${this.prefix}${hash}:current`;
  }

  private versionKeysOf(hash: string, version: string): { questions: string; answers: string; meta: string } {
    const base = `${this.prefix}${hash}:v:${version}`;
    return { questions: `${base}:q`, answers: `${base}:a`, meta: `${base}:m` };
  }

  // -------------------------------------------------------------------------------------------
  // Reader (the router)

  async findExact(tenantId: string, normalizedQuestion: string): Promise<StaticAnswer | undefined> {
    const pointerKey = this.pointerKey(tenantId);
    const field = questionField(normalizedQuestion);
    // A publish that switches the pointer and deletes the old version between our reads makes
    // us retry on the new version; more than a few switches within one lookup do not happen.
    for (let attempt = 0; attempt < 3; attempt++) {
      const raw = await this.client.get(pointerKey);
      const pointer = parsePointer(raw, tenantId);
      if (!pointer) return undefined;
      const keys = this.versionKeys(tenantId, pointer.version);
      const [id, again] = await execPipeline(this.client.pipeline().hget(keys.questions, field).get(pointerKey)) as [string | null, string | null];
      // Version ids are never reused: an unchanged pointer after the HGET means the version was
      // current (so complete, not yet deleted) while HGET ran.
      if (again !== raw) continue;
      if (id === null) return undefined;
      const [json, still] = await execPipeline(this.client.pipeline().hget(keys.answers, id).get(pointerKey)) as [string | null, string | null];
      if (still !== raw) continue;
      if (json === null) throw new Error(`static answers of version ${pointer.version}: answer "${id}" is missing`);
      const stored = JSON.parse(json) as StaticAnswer;
      return { id: stored.id, answer: stored.answer };
    }
    return undefined;
  }

  async vectorScope(tenantId: string): Promise<string | undefined> {
    const pointer = parsePointer(await this.client.get(this.pointerKey(tenantId)), tenantId);
    const expected = this.options.expectedModelId;
    if (!pointer?.vectorScope || (expected !== undefined && pointer.modelId !== expected)) return undefined;
    return pointer.vectorScope;
  }

  /** The tenant's current version id, if any. */
  async currentVersion(tenantId: string): Promise<string | undefined> {
    return parsePointer(await this.client.get(this.pointerKey(tenantId)), tenantId)?.version;
  }

  // -------------------------------------------------------------------------------------------
  // Writer (the loader)

  async listPublishedTenants(): Promise<PublishedTenant[]> {
    const hashes = (await this.client.smembers(this.registryKey)).sort();
    const tenants: PublishedTenant[] = [];
    for (const hash of hashes) {
      const raw = await this.client.get(this.pointerKeyOf(hash));
      const pointer = parsePointer(raw);
      // Registered but no (valid) pointer: a removal that stopped midway, or a publish that is
      // about to switch. Nothing is published for it.
      if (!pointer || ValkeyStaticAnswers.tenantHash(pointer.tenantId) !== hash) continue;
      const metaRaw = await this.client.get(this.versionKeysOf(hash, pointer.version).meta);
      const meta = metaRaw === null ? undefined : (JSON.parse(metaRaw) as VersionMeta);
      tenants.push({ tenantId: pointer.tenantId, version: pointer.version, sources: meta?.sources ?? [] });
    }
    return tenants;
  }

  async publishTenant(tenantId: string, answers: readonly StaticAnswerRecord[], options: PublishOptions = {}): Promise<PublishResult> {
    const hash = ValkeyStaticAnswers.tenantHash(tenantId);
    const version = newVersion();
    const keys = this.versionKeysOf(hash, version);
    const publishedAt = Date.now();

    // The version's content, checked again here so that no caller can publish an ambiguous one.
    const questionFields = new Map<string, string>();
    const answerFields = new Map<string, string>();
    const variants: Array<{ question: string; normalized: string; id: string; answer: string }> = [];
    for (const record of answers) {
      if (answerFields.has(record.id)) throw new Error(`answer id "${record.id}" is given twice`);
      answerFields.set(record.id, JSON.stringify({ id: record.id, answer: record.answer }));
      for (const question of record.questions) {
        const normalized = normalizeQuestion(question);
        const field = questionField(normalized);
        const owner = questionFields.get(field);
        if (owner !== undefined && owner !== record.id) throw new Error(`question "${question}" belongs to answers "${owner}" and "${record.id}"`);
        if (owner !== undefined) continue;
        questionFields.set(field, record.id);
        variants.push({ question, normalized, id: record.id, answer: record.answer });
      }
    }
    const vectors = options.vectors;
    if (vectors && !this.options.vectorStore) throw new Error('publishing with vectors needs a vectorStore');
    const vectorScope = vectors ? staticVectorScope(tenantId, version, vectors.modelId) : undefined;
    const meta: VersionMeta = {
      tenantId,
      version,
      publishedAt,
      answers: answers.length,
      variants: variants.length,
      sources: [...(options.sources ?? [])],
      vectors: vectors && vectorScope ? { scope: vectorScope, modelId: vectors.modelId, dimensions: vectors.dimensions } : undefined,
    };

    try {
      // 1. The new version, under keys no reader knows yet, with a pending TTL.
      const pendingTtl = this.options.pendingTtlSeconds ?? 3_600;
      const batch = this.options.batchSize ?? 500;
      const write = this.client.pipeline();
      for (const chunk of chunks([...questionFields], batch)) write.hset(keys.questions, ...chunk.flat());
      for (const chunk of chunks([...answerFields], batch)) write.hset(keys.answers, ...chunk.flat());
      write.set(keys.meta, JSON.stringify(meta), 'EX', pendingTtl);
      if (questionFields.size > 0) write.expire(keys.questions, pendingTtl);
      if (answerFields.size > 0) write.expire(keys.answers, pendingTtl);
      await execPipeline(write);

      // 2. Its vectors, in a scope of its own.
      if (vectors && vectorScope) {
        const store = this.options.vectorStore!;
        if (!this.indexed.has(vectors.dimensions)) {
          await store.ensureIndex(vectors.dimensions);
          this.indexed.add(vectors.dimensions);
        }
        const storeOptions = {
          ttlSeconds: this.options.vectorTtlSeconds ?? DEFAULT_VECTOR_TTL_SECONDS,
          maxEntriesPerScope: Math.max(1, variants.length),
        };
        await mapLimit(variants, this.options.vectorConcurrency ?? 16, async (variant, i) => {
          const vector = vectors.byQuestion.get(variant.normalized);
          if (!vector) throw new Error(`no vector for the question "${variant.question}"`);
          if (vector.length !== vectors.dimensions) throw new Error(`the vector of "${variant.question}" has ${vector.length} dimensions, not ${vectors.dimensions}`);
          const answer: CachedAnswer = { text: variant.answer, tierId: 'static', usage: { inputTokens: 0, outputTokens: 0 }, costUsd: 0, createdAt: publishedAt };
          const entry: SemanticEntry = {
            id: `${version}-${i}`,
            scope: vectorScope,
            question: variant.question,
            vector,
            answer,
            answerKey: variant.id,
            createdAt: publishedAt,
          };
          await store.put(entry, storeOptions);
        });
      }

      // 3. Make it permanent, then check it is all there (a write slower than the pending TTL would show here).
      const persist = this.client.pipeline().persist(keys.meta).exists(keys.meta).hlen(keys.questions).hlen(keys.answers);
      const [, metaExists, qLen, aLen] = await execPipeline(persist) as [number, number, number, number];
      if (metaExists !== 1 || qLen !== questionFields.size || aLen !== answerFields.size) {
        throw new Error(`version ${version} is incomplete after writing (meta ${metaExists}, ${qLen}/${questionFields.size} questions, ${aLen}/${answerFields.size} answers)`);
      }
      await execPipeline(this.client.pipeline().persist(keys.questions).persist(keys.answers));
    } catch (err) {
      await this.deleteVersion(hash, version, vectorScope).catch(() => undefined);
      throw err;
    }

    // 4. Switch: one command, which also tells which version it replaced.
    const pointer: Pointer = { v: 1, tenantId, version, vectorScope, modelId: vectors?.modelId };
    let previousRaw: string | null;
    try {
      await this.client.sadd(this.registryKey, hash);
      previousRaw = await this.client.set(this.pointerKeyOf(hash), JSON.stringify(pointer), 'GET');
    } catch (err) {
      // The pointer may or may not have been switched: delete the new version only when the
      // pointer can be read and does not name it (otherwise the next run replaces it).
      const current = await this.client.get(this.pointerKeyOf(hash)).catch(() => undefined);
      if (current !== undefined && parsePointer(current ?? null)?.version !== version) {
        await this.deleteVersion(hash, version, vectorScope).catch(() => undefined);
      }
      throw err;
    }

    // 5. Delete what it replaced.
    const previous = parsePointer(previousRaw);
    if (!previous || previous.version === version) return { version, cleanup: 'none' };
    try {
      await this.deleteVersion(hash, previous.version, previous.vectorScope);
      return { version, previousVersion: previous.version, cleanup: 'deleted' };
    } catch (err) {
      const cleanupError = err instanceof Error ? err.message : String(err);
      const expired = await this.expireVersion(hash, previous.version).then(() => true, () => false);
      return { version, previousVersion: previous.version, cleanup: expired ? 'expiring' : 'failed', cleanupError };
    }
  }

  async removeTenant(tenantId: string): Promise<void> {
    const hash = ValkeyStaticAnswers.tenantHash(tenantId);
    // The pointer goes first: from then on no reader finds the tenant's answers.
    const raw = await this.client.getdel(this.pointerKeyOf(hash));
    const previous = parsePointer(raw);
    if (previous) {
      try {
        await this.deleteVersion(hash, previous.version, previous.vectorScope);
      } catch {
        await this.expireVersion(hash, previous.version).catch(() => undefined);
      }
    }
    await this.client.srem(this.registryKey, hash);
  }

  /** Deletes a version's keys and its vector scope. */
  private async deleteVersion(hash: string, version: string, vectorScope: string | undefined): Promise<void> {
    const keys = this.versionKeysOf(hash, version);
    // UNLINK frees large hashes in the background.
    await execPipeline(this.client.pipeline().unlink(keys.questions).unlink(keys.answers).unlink(keys.meta));
    const store = this.options.vectorStore;
    if (vectorScope && store) await store.deleteScope(vectorScope);
  }

  private async expireVersion(hash: string, version: string): Promise<void> {
    const keys = this.versionKeysOf(hash, version);
    const ttl = this.options.staleTtlSeconds ?? 300;
    await execPipeline(this.client.pipeline().expire(keys.questions, ttl).expire(keys.answers, ttl).expire(keys.meta, ttl));
  }
}

/** The vector-store scope of one version of a tenant's static answers (opaque, 32 hex digits). */
export function staticVectorScope(tenantId: string, version: string, modelId: string): string {
  return sha256Hex(JSON.stringify(['static', tenantId, version, modelId])).slice(0, 32);
}

function questionField(normalizedQuestion: string): string {
  return sha256Hex(normalizedQuestion);
}


/** Sortable by time, unique: `<ms since epoch, base 36, 9 digits><8 random hex digits>`. */
function newVersion(): string {
  return `${Date.now().toString(36).padStart(9, '0')}${randomBytes(4).toString('hex')}`;
}

function parsePointer(raw: string | null, tenantId?: string): Pointer | undefined {
  if (raw === null) return undefined;
  let pointer: Pointer;
  try {
    pointer = JSON.parse(raw) as Pointer;
  } catch {
    return undefined;
  }
  if (pointer?.v !== 1 || typeof pointer.version !== 'string' || typeof pointer.tenantId !== 'string') return undefined;
  if (tenantId !== undefined && pointer.tenantId !== tenantId) return undefined;
  return pointer;
}

/** Runs a pipeline; throws the first command error; returns the results. */
async function execPipeline(pipeline: ReturnType<Valkey['pipeline']>): Promise<unknown[]> {
  const results = await pipeline.exec();
  if (!results) throw new Error('the pipeline was not executed');
  for (const [err] of results) if (err) throw err;
  return results.map(([, value]) => value);
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

