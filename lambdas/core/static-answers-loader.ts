/**
 * The static answers loader: reads every answer file (`*.json` under a prefix), validates them,
 * and publishes each tenant's answers as one new version (see `ValkeyStaticAnswers`).
 *
 * Rules, in the words of the operator who uploads the files:
 * - A tenant's answers are the union of all its files (a file names its tenant in `tenantId`).
 * - A tenant is published all or nothing. If ANY of its files cannot be read, is not JSON,
 *   fails the schema, or the files together define an answer id twice or give two answers the
 *   same question variant (after `normalizeQuestion`), the tenant keeps the answers that are
 *   published now, untouched; the error is logged with the object key and the reason and counted
 *   (`StaticAnswerErrors`, dimension `Reason`). Other tenants are published regardless.
 *   The same variant twice within ONE answer is harmless and stored once.
 * - A file that cannot be parsed names no tenant: it is attributed to the tenant(s) whose
 *   published answers came from the same object key last time, and, if it is JSON with a string
 *   `tenantId`, to that tenant too. A broken file nobody published from before cannot be
 *   attributed; it blocks no tenant, but no tenant is removed in that run (the broken file might
 *   be where a tenant's answers moved to).
 * - A published tenant that has no files any more (none of the objects names it) is removed:
 *   its answers stop answering. An empty prefix therefore removes every tenant.
 * - When an embedder is configured, every variant is embedded (in batches) and published with
 *   the version, so the router can match questions semantically; an embedding failure skips the
 *   tenant like an invalid file.
 *
 * The loader throws only when it cannot work at all: the object listing fails, every object
 * fails to be read, or the published tenants cannot be listed (the cache is unreachable). Then
 * the schedule's retry policy and dead-letter queue see the failure. Everything per tenant is a
 * metric and a log line.
 */
import { z } from 'zod';
import { mapLimit } from './map-limit';
import type { MetricsRecorder } from './ports';
import type { Embedder } from './semantic/ports';
import { normalizeQuestion, staticAnswerFileSchema, type StaticAnswerFile } from './static-answers';
import { AiMetricNames as M } from '../../constructs/contract/metrics';

// ---------------------------------------------------------------------------------------------
// Ports

/** One object of the listing. */
export interface SourceObject {
  readonly key: string;
  /** Bytes, when the listing tells. */
  readonly size?: number;
}

/** Where the answer files are (an S3 bucket and prefix in the Lambda). */
export interface AnswerObjectSource {
  /** Every object under the configured prefix. Throws when the listing fails. */
  list(): Promise<SourceObject[]>;
  /** The object's content as UTF-8 text. Throws when it cannot be read. */
  get(key: string): Promise<string>;
}

/** One answer as it is published: its id, its text and its question variants as written. */
export interface StaticAnswerRecord {
  readonly id: string;
  readonly answer: string;
  readonly questions: readonly string[];
}

/** Embeddings of a tenant's question variants, keyed by the normalized variant. */
export interface StaticAnswerVectors {
  /** The embedding model (`Embedder.modelId`): the router must embed queries with the same one. */
  readonly modelId: string;
  readonly dimensions: number;
  readonly byQuestion: ReadonlyMap<string, Float32Array>;
}

export interface PublishOptions {
  /** Embeddings of the variants (absent: exact matches only). */
  readonly vectors?: StaticAnswerVectors;
  /** Object keys the answers came from (remembered to attribute an unreadable file next time). */
  readonly sources?: readonly string[];
}

/** How a publish ended for the version it replaced. */
export interface PublishResult {
  readonly version: string;
  /** The version replaced, if any. */
  readonly previousVersion?: string;
  /**
   * What happened to the replaced version: `deleted`, `expiring` (deletion failed; its keys got a
   * short TTL instead), `failed` (neither worked: its keys stay until removed by hand), or `none`.
   */
  readonly cleanup: 'deleted' | 'expiring' | 'failed' | 'none';
  /** Why the cleanup did not delete, when it did not. */
  readonly cleanupError?: string;
}

/** A tenant as currently published. */
export interface PublishedTenant {
  readonly tenantId: string;
  readonly version: string;
  /** Object keys its answers came from. */
  readonly sources: readonly string[];
}

/** Where the loader publishes (the writer side of `ValkeyStaticAnswers`). */
export interface StaticAnswersPublisher {
  listPublishedTenants(): Promise<PublishedTenant[]>;
  /**
   * Writes a new version of the tenant's answers and switches to it atomically; readers see the
   * old version or the new one, never a mix. Throws (leaving the old version current) on failure.
   */
  publishTenant(tenantId: string, answers: readonly StaticAnswerRecord[], options?: PublishOptions): Promise<PublishResult>;
  /** Removes the tenant's published answers. */
  removeTenant(tenantId: string): Promise<void>;
}

/** Structured log lines (Powertools Logger fits). */
export interface LoaderLogger {
  info(message: string, attributes?: Record<string, unknown>): void;
  warn(message: string, attributes?: Record<string, unknown>): void;
  error(message: string, attributes?: Record<string, unknown>): void;
}

// ---------------------------------------------------------------------------------------------
// Result

/** Why a file or a tenant was not published. Also the `Reason` dimension of `StaticAnswerErrors`. */
export type StaticAnswerErrorReason =
  | 'read' | 'too-large' | 'json' | 'schema' | 'duplicate' | 'embedding' | 'publish' | 'remove' | 'cleanup'
  /** The run failed as a whole (emitted by the handler when the loader throws). */
  | 'unavailable';

export interface StaticAnswerError {
  readonly reason: StaticAnswerErrorReason;
  readonly message: string;
  /** The object key, for file errors. */
  readonly key?: string;
  readonly tenantId?: string;
}

export interface SkippedTenant {
  readonly tenantId: string;
  /** The errors that kept it from being published (its published answers stay as they were). */
  readonly errors: readonly StaticAnswerError[];
}

export interface LoadSummary {
  /** Objects listed under the prefix, and how many of them were answer files (`.json`). */
  readonly objects: number;
  readonly files: number;
  readonly published: ReadonlyArray<{ tenantId: string; version: string; answers: number; variants: number; files: number }>;
  readonly skipped: readonly SkippedTenant[];
  /** Tenants removed because none of the files names them any more. */
  readonly removed: readonly string[];
  /** Set when removals were suspended in this run, and why. */
  readonly removalsSuspended?: string;
  /** Answers and distinct variants published in this run. */
  readonly answers: number;
  readonly variants: number;
  /** Every error, file- and tenant-level. */
  readonly errors: readonly StaticAnswerError[];
}

export interface LoaderOptions {
  /** Texts per `Embedder.embed` call. Default 64. */
  readonly embedBatchSize?: number;
  /** Larger files are an error (reason `too-large`) without being read. Default 16 MiB. */
  readonly maxFileBytes?: number;
  /** Objects read at the same time. Default 8. */
  readonly readConcurrency?: number;
}

export interface LoaderDependencies {
  readonly source: AnswerObjectSource;
  readonly publisher: StaticAnswersPublisher;
  readonly metrics: MetricsRecorder;
  readonly embedder?: Embedder;
  readonly logger?: LoaderLogger;
  readonly options?: LoaderOptions;
}

/** Thrown when nothing could be loaded at all (the caller should fail, so the schedule retries). */
export class StaticAnswersLoadError extends Error {
  constructor(text: string, options?: { cause?: unknown }) {
    super(text, options);
    this.name = 'StaticAnswersLoadError';
  }
}

// ---------------------------------------------------------------------------------------------
// The loader

interface FileOutcome {
  readonly key: string;
  readonly file?: StaticAnswerFile;
  readonly error?: StaticAnswerError;
  /** `tenantId` of a file that is JSON but fails the schema, when it is a string. */
  readonly claimedTenant?: string;
}

interface PreparedTenant {
  readonly records: StaticAnswerRecord[];
  /** Normalized variant → the variant as first written. */
  readonly variants: Map<string, string>;
}

const SILENT: LoaderLogger = { info: () => undefined, warn: () => undefined, error: () => undefined };

/** Runs one load: reads and validates every file, publishes the valid tenants, removes the gone ones. */
export async function loadStaticAnswers(deps: LoaderDependencies): Promise<LoadSummary> {
  const { source, publisher, metrics, embedder } = deps;
  const logger = deps.logger ?? SILENT;
  const embedBatchSize = deps.options?.embedBatchSize ?? 64;
  const maxFileBytes = deps.options?.maxFileBytes ?? 16 * 1024 * 1024;
  const readConcurrency = deps.options?.readConcurrency ?? 8;
  const errors: StaticAnswerError[] = [];
  const fail = (error: StaticAnswerError): StaticAnswerError => {
    errors.push(error);
    // `message` is a reserved key of structured loggers (Powertools drops it): the reason's text goes into `detail`.
    logger.error(`static answers: ${error.reason} error`, { reason: error.reason, key: error.key, tenantId: error.tenantId, detail: error.message });
    return error;
  };

  let objects: SourceObject[];
  try {
    objects = await source.list();
  } catch (err) {
    throw new StaticAnswersLoadError(`could not list the answer files: ${message(err)}`, { cause: err });
  }
  const answerFiles = objects.filter((o) => o.key.toLowerCase().endsWith('.json')).sort((a, b) => compare(a.key, b.key));

  let published: PublishedTenant[];
  try {
    published = await publisher.listPublishedTenants();
  } catch (err) {
    throw new StaticAnswersLoadError(`could not list the published tenants: ${message(err)}`, { cause: err });
  }
  const ownersOfKey = new Map<string, Set<string>>();
  for (const tenant of published) {
    for (const key of tenant.sources) {
      const owners = ownersOfKey.get(key) ?? new Set<string>();
      owners.add(tenant.tenantId);
      ownersOfKey.set(key, owners);
    }
  }

  // 1. Read, parse and validate every file.
  const outcomes = await mapLimit(answerFiles, readConcurrency, (object) => readFile(source, object, maxFileBytes));
  const readErrors = outcomes.filter((o) => o.error?.reason === 'read');
  if (answerFiles.length > 0 && readErrors.length === answerFiles.length) {
    throw new StaticAnswersLoadError(`could not read any of the ${answerFiles.length} answer files: ${readErrors[0].error!.message}`);
  }

  // 2. Group by tenant; attribute the invalid files.
  const filesOf = new Map<string, Array<{ key: string; file: StaticAnswerFile }>>();
  const blockedBy = new Map<string, StaticAnswerError[]>();
  const unattributed: string[] = [];
  for (const outcome of outcomes) {
    if (outcome.file) {
      const list = filesOf.get(outcome.file.tenantId) ?? [];
      list.push({ key: outcome.key, file: outcome.file });
      filesOf.set(outcome.file.tenantId, list);
      continue;
    }
    const tenants = new Set(ownersOfKey.get(outcome.key) ?? []);
    if (outcome.claimedTenant !== undefined) tenants.add(outcome.claimedTenant);
    const error = fail({ ...outcome.error!, tenantId: tenants.size === 1 ? [...tenants][0] : undefined });
    if (tenants.size === 0) unattributed.push(outcome.key);
    for (const tenantId of tenants) blockedBy.set(tenantId, [...(blockedBy.get(tenantId) ?? []), error]);
  }

  // 3. Publish every tenant that has files and no invalid one.
  const publishedNow: Array<LoadSummary['published'][number]> = [];
  const skipped: SkippedTenant[] = [];
  let answerCount = 0;
  let variantCount = 0;
  const tenants = [...new Set([...filesOf.keys(), ...blockedBy.keys()])].sort(compare);
  for (const tenantId of tenants) {
    const blocking = blockedBy.get(tenantId);
    if (blocking) {
      skipped.push({ tenantId, errors: blocking });
      logger.warn('static answers: tenant not published, its current answers stay', { tenantId, keys: blocking.map((e) => e.key) });
      continue;
    }
    const files = filesOf.get(tenantId)!;
    const prepared = prepareTenant(tenantId, files);
    if ('errors' in prepared) {
      skipped.push({ tenantId, errors: prepared.errors.map(fail) });
      continue;
    }
    let vectors: StaticAnswerVectors | undefined;
    if (embedder) {
      try {
        vectors = await embedVariants(embedder, prepared.variants, embedBatchSize);
      } catch (err) {
        skipped.push({ tenantId, errors: [fail({ reason: 'embedding', tenantId, message: message(err) })] });
        continue;
      }
    }
    const sources = files.map((f) => f.key);
    let result: PublishResult;
    try {
      result = await publisher.publishTenant(tenantId, prepared.records, { vectors, sources });
    } catch (err) {
      skipped.push({ tenantId, errors: [fail({ reason: 'publish', tenantId, message: message(err) })] });
      continue;
    }
    if (result.cleanup === 'expiring' || result.cleanup === 'failed') {
      fail({
        reason: 'cleanup',
        tenantId,
        message: `version ${result.previousVersion} could not be deleted (${result.cleanup}): ${result.cleanupError ?? 'unknown error'}`,
      });
    }
    answerCount += prepared.records.length;
    variantCount += prepared.variants.size;
    publishedNow.push({ tenantId, version: result.version, answers: prepared.records.length, variants: prepared.variants.size, files: files.length });
    logger.info('static answers: tenant published', {
      tenantId,
      version: result.version,
      previousVersion: result.previousVersion,
      answers: prepared.records.length,
      variants: prepared.variants.size,
      files: sources,
      vectors: vectors !== undefined,
    });
  }

  // 4. Remove the tenants no file names any more.
  const removed: string[] = [];
  const present = new Set(tenants);
  const gone = published.filter((t) => !present.has(t.tenantId)).map((t) => t.tenantId);
  const removalsSuspended = unattributed.length > 0 && gone.length > 0
    ? `files that cannot be attributed to a tenant: ${unattributed.join(', ')}`
    : undefined;
  if (removalsSuspended) {
    logger.warn('static answers: tenants without files are kept this time', { tenants: gone, reason: removalsSuspended });
  } else {
    for (const tenantId of gone) {
      try {
        await publisher.removeTenant(tenantId);
        removed.push(tenantId);
        logger.info('static answers: tenant removed (no files name it any more)', { tenantId });
      } catch (err) {
        fail({ reason: 'remove', tenantId, message: message(err) });
      }
    }
  }

  // 5. Metrics: the run's totals always (0 too, so an alarm sees every run), errors per reason.
  metrics.add(M.STATIC_ANSWERS_PUBLISHED, 'Count', answerCount);
  metrics.add(M.STATIC_ANSWER_ERRORS, 'Count', errors.length);
  const byReason = new Map<string, number>();
  for (const e of errors) byReason.set(e.reason, (byReason.get(e.reason) ?? 0) + 1);
  for (const [reason, count] of byReason) metrics.add(M.STATIC_ANSWER_ERRORS, 'Count', count, { [M.DIMENSION_REASON]: reason });

  return {
    objects: objects.length,
    files: answerFiles.length,
    published: publishedNow,
    skipped,
    removed,
    removalsSuspended,
    answers: answerCount,
    variants: variantCount,
    errors,
  };
}

async function readFile(source: AnswerObjectSource, object: SourceObject, maxFileBytes: number): Promise<FileOutcome> {
  const key = object.key;
  if (object.size !== undefined && object.size > maxFileBytes) {
    return { key, error: { reason: 'too-large', key, message: `${object.size} bytes; the limit is ${maxFileBytes}` } };
  }
  let text: string;
  try {
    text = await source.get(key);
  } catch (err) {
    return { key, error: { reason: 'read', key, message: message(err) } };
  }
  if (Buffer.byteLength(text, 'utf8') > maxFileBytes) {
    return { key, error: { reason: 'too-large', key, message: `more than ${maxFileBytes} bytes` } };
  }
  let json: unknown;
  try {
    json = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (err) {
    return { key, error: { reason: 'json', key, message: `not valid JSON: ${message(err)}` } };
  }
  const claimedTenant = typeof json === 'object' && json !== null && typeof (json as { tenantId?: unknown }).tenantId === 'string'
    ? (json as { tenantId: string }).tenantId
    : undefined;
  const parsed = staticAnswerFileSchema.safeParse(json);
  if (!parsed.success) return { key, claimedTenant, error: { reason: 'schema', key, message: describeIssues(parsed.error) } };
  const empty = findEmptyVariant(parsed.data);
  if (empty) return { key, claimedTenant, error: { reason: 'schema', key, message: empty } };
  return { key, file: parsed.data };
}

/** `answers.3.questions.0: Too small ...; tenantId: ...` (at most five issues). */
function describeIssues(error: z.ZodError): string {
  const issues = error.issues.slice(0, 5).map((i) => `${i.path.length > 0 ? i.path.join('.') : '(file)'}: ${i.message}`);
  if (error.issues.length > 5) issues.push(`and ${error.issues.length - 5} more`);
  return issues.join('; ');
}

function findEmptyVariant(file: StaticAnswerFile): string | undefined {
  for (const [a, answer] of file.answers.entries()) {
    for (const [q, question] of answer.questions.entries()) {
      if (normalizeQuestion(question) === '') return `answers.${a}.questions.${q}: "${question}" is empty once normalized`;
    }
  }
  return undefined;
}

/** Merges a tenant's files; duplicate ids and variants shared by two answers are errors. */
function prepareTenant(
  tenantId: string,
  files: ReadonlyArray<{ key: string; file: StaticAnswerFile }>,
): PreparedTenant | { errors: StaticAnswerError[] } {
  const errors: StaticAnswerError[] = [];
  const idFrom = new Map<string, string>();
  const variantOwner = new Map<string, { id: string; key: string }>();
  const variants = new Map<string, string>();
  const records: StaticAnswerRecord[] = [];
  for (const { key, file } of files) {
    for (const answer of file.answers) {
      const firstKey = idFrom.get(answer.id);
      if (firstKey !== undefined) {
        errors.push({ reason: 'duplicate', key, tenantId, message: `answer id "${answer.id}" is defined twice (in ${firstKey} and ${key})` });
        continue;
      }
      idFrom.set(answer.id, key);
      const questions: string[] = [];
      for (const question of answer.questions) {
        const normalized = normalizeQuestion(question);
        const owner = variantOwner.get(normalized);
        if (owner && owner.id !== answer.id) {
          errors.push({
            reason: 'duplicate',
            key,
            tenantId,
            message: `question "${question}" (normalized "${normalized}") belongs to answers "${owner.id}" (${owner.key}) and "${answer.id}" (${key})`,
          });
          continue;
        }
        if (owner) continue; // the same variant twice in one answer: kept once
        variantOwner.set(normalized, { id: answer.id, key });
        variants.set(normalized, question);
        questions.push(question);
      }
      records.push({ id: answer.id, answer: answer.answer, questions });
    }
  }
  return errors.length > 0 ? { errors } : { records, variants };
}

async function embedVariants(embedder: Embedder, variants: ReadonlyMap<string, string>, batchSize: number): Promise<StaticAnswerVectors> {
  const entries = [...variants.entries()];
  const byQuestion = new Map<string, Float32Array>();
  for (let i = 0; i < entries.length; i += batchSize) {
    const batch = entries.slice(i, i + batchSize);
    const vectors = await embedder.embed(batch.map(([, question]) => question));
    if (vectors.length !== batch.length) throw new Error(`the embedder returned ${vectors.length} vectors for ${batch.length} texts`);
    vectors.forEach((v, j) => {
      if (v.length !== embedder.dimensions) throw new Error(`the embedder returned ${v.length} dimensions, not ${embedder.dimensions}`);
      byQuestion.set(batch[j][0], v);
    });
  }
  return { modelId: embedder.modelId, dimensions: embedder.dimensions, byQuestion };
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function message(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}
