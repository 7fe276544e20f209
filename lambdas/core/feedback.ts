/**
 * Answer quality you can watch: the router remembers for a bounded time how it served each
 * answer (a serving record, under the request id it returned), and `POST /v1/feedback` lets the
 * caller who received an answer say whether it was right. Verdicts are counted by how the answer
 * was served; a wrong verdict on a cached answer (or on a model's answer that was cached) evicts
 * that answer from the exact and semantic levels, so the next asker gets a fresh one.
 */
import { z } from 'zod';
import { withDeadline } from './abortable';
import type { AnswerLocations } from './answer-caches';
import { personalExactKeyPrefix, personalScopePrefix, type Caller } from './cache-key';
import { errorResponse, JSON_HEADERS, type HttpResponse } from './chat-endpoint';
import type { ChatResult, ServedBy } from './chat-service';
import type { CircuitBreaker } from './circuit-breaker';
import { HttpError } from './errors';
import { idHash, sha256Hex } from './hashing';
import { parseJsonBody } from './json-body';
import type { AnswerCache, MetricsRecorder } from './ports';
import type { VectorStore } from './semantic/ports';
import { AiMetricNames as M } from '../../constructs/contract/metrics';
import type { RouterRuntimeConfig } from '../../constructs/contract/runtime-config';

export type Verdict = 'right' | 'wrong';

/** How one answer was served, kept under its request id for the feedback window. */
export interface ServingRecord {
  readonly servedBy: ServedBy;
  /** The tier that produced the answer: the one that answered, or the one a cached answer came from. */
  readonly tierId?: string;
  /** Where the answer is cached: what a wrong verdict evicts. */
  readonly locations?: AnswerLocations;
}

/** Where serving records are kept (the response cache). Failures are thrown. */
export interface ServingRecordStore {
  /** The router's breaker of the feedback level; absent: never skipped. */
  readonly breaker?: CircuitBreaker;
  /** Keeps `record` at `key` for `ttlSeconds`. */
  put(key: string, record: ServingRecord, ttlSeconds: number): Promise<void>;
  /**
   * Atomically: reads the record at `key` and, if it has no verdict yet, records `verdict` on it.
   * @returns undefined when there is no record (never made, expired); else the record and the
   *          verdict it already had (undefined: `verdict` was recorded now)
   */
  claim(key: string, verdict: Verdict): Promise<{ record: ServingRecord; previous?: Verdict } | undefined>;
}

/** Largest `POST /v1/feedback` body, in bytes: `{"requestId":"<uuid>","verdict":"wrong"}` is 60. */
export const FEEDBACK_MAX_BYTES = 1_024;
/** Milliseconds the serving record's write may take at most (less when the request's deadline is nearer). */
export const RECORD_WRITE_TIMEOUT_MS = 1_000;
/** Milliseconds each eviction of a wrong verdict may take. */
export const EVICTION_TIMEOUT_MS = 3_000;

/** The request ids the router issues: Lambda request ids, UUIDs. */
const REQUEST_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const feedbackSchema = z.object({
  requestId: z.string().regex(REQUEST_ID, 'must be the request id of an answer (its x-request-id header, a lower-case UUID)'),
  verdict: z.enum(['right', 'wrong']),
}).strict();

/**
 * The key of a serving record: `<prefix>fb:<tenant hash>:<hash of tenant, user and request id>`.
 * Only the caller who made the request computes it: another tenant's or user's request id, or
 * this caller's id with another caller's, is another key. The request id is hashed, so no text
 * of a request reaches the key.
 */
export function servingRecordKey(keyPrefix: string, caller: Caller, requestId: string): string {
  const scoped = sha256Hex(JSON.stringify([caller.tenantId, caller.userId ?? null, requestId])).slice(0, 40);
  return `${keyPrefix}fb:${idHash(caller.tenantId)}:${scoped}`;
}

/** What the serving record of a chat answer needs. */
export interface RecordServingInput {
  readonly requestId: string;
  readonly caller: Caller;
  readonly result: Pick<ChatResult, 'servedBy' | 'tierId' | 'originalTierId' | 'locations'>;
  /** Epoch milliseconds by which the request must be answered. */
  readonly deadline: number;
}

/**
 * Writes the serving record of an answer, within the request's deadline. Fails open: a failed or
 * timed-out write is counted (`CacheErrors{CacheLevel=feedback}`) and the answer goes out
 * regardless (a verdict on it then gets a 404); an open breaker skips it (`BreakerSkips`).
 */
export async function recordServing(
  store: ServingRecordStore,
  config: RouterRuntimeConfig,
  metrics: MetricsRecorder,
  input: RecordServingInput,
  now: () => number = Date.now,
): Promise<void> {
  if (!config.feedback || !config.cache) return;
  const limitMs = Math.min(RECORD_WRITE_TIMEOUT_MS, input.deadline - now());
  if (limitMs <= 0) return;
  const { result } = input;
  const record: ServingRecord = {
    servedBy: result.servedBy,
    tierId: result.tierId ?? result.originalTierId,
    locations: result.servedBy === 'static' || !result.locations ? undefined : result.locations,
  };
  const breaker = store.breaker;
  if (breaker && !breaker.tryAcquire()) {
    metrics.add(M.BREAKER_SKIPS, 'Count', 1, { [M.DIMENSION_DEPENDENCY]: 'feedback' });
    return;
  }
  const key = servingRecordKey(config.cache.keyPrefix, input.caller, input.requestId);
  try {
    await withDeadline(limitMs, 'the serving record', () => store.put(key, record, config.feedback!.windowSeconds));
    breaker?.success();
  } catch {
    metrics.add(M.CACHE_ERRORS, 'Count', 1, { [M.DIMENSION_CACHE_LEVEL]: 'feedback' });
    if (breaker?.failure()) metrics.add(M.CIRCUIT_OPENED, 'Count', 1, { [M.DIMENSION_DEPENDENCY]: 'feedback' });
  }
}

/** The stores a wrong verdict evicts from. */
export interface FeedbackStores {
  /** The serving records; absent when the cache is not reachable in this invocation. */
  readonly records?: ServingRecordStore;
  readonly exact?: AnswerCache;
  readonly vectors?: VectorStore;
}

/** The JSON body of an accepted `POST /v1/feedback`. */
export interface FeedbackResponseBody {
  readonly requestId: string;
  readonly verdict: Verdict;
  /** How the judged answer was served: `static`, `exact`, `semantic` or `model`. */
  readonly servedBy: ServedBy;
  /** Entries evicted per cache level (a wrong verdict on a cached answer). */
  readonly evicted: { readonly exact: number; readonly semantic: number };
  /** Cache levels an eviction failed in (the entries then expire with their TTL). */
  readonly evictionFailed: string[];
}

/**
 * `POST /v1/feedback` (`{ "requestId": "<x-request-id>", "verdict": "wrong" | "right" }`):
 * 200 with what happened; 400 for a body that is not that; 404 for a request id the caller did
 * not receive within the feedback window (another tenant's or user's, expired, unknown: the same
 * answer, so ids cannot be probed); 409 for a second verdict on one request id (one answer
 * counts once, and evicts at most once).
 *
 * A wrong verdict on an exact or semantic hit, or on a model's answer that was cached, evicts the
 * answer's entries: the exact keys while they still hold that answer, and its semantic entry.
 * Static answers are curated by the operator: a wrong verdict on one is counted, never deleted.
 * Feedback only deletes: it never writes anything into a cache.
 */
export async function handleFeedback(
  stores: FeedbackStores,
  config: RouterRuntimeConfig,
  metrics: MetricsRecorder,
  input: { body: string | undefined; caller: Caller | undefined },
): Promise<HttpResponse> {
  try {
    if (!input.caller) throw new HttpError(401, 'No tenant in the authorizer context', 'unauthenticated');
    if (!config.feedback || !config.cache) {
      throw new HttpError(404, 'This router keeps no serving records: feedback needs the response cache (TieredRouter cache)', 'not-found');
    }
    const bytes = Buffer.byteLength(input.body ?? '', 'utf8');
    if (bytes > FEEDBACK_MAX_BYTES) {
      throw new HttpError(413, `Request body is ${bytes} bytes; the limit is ${FEEDBACK_MAX_BYTES} bytes`, 'too-large');
    }
    const parsed = feedbackSchema.safeParse(parseJsonBody(input.body ?? ''));
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new HttpError(400, `Invalid request: ${issue.path.join('.') || 'body'}: ${issue.message}`, 'invalid');
    }
    const { requestId, verdict } = parsed.data;
    if (!stores.records) throw unavailable();
    const key = servingRecordKey(config.cache.keyPrefix, input.caller, requestId);
    let claimed: Awaited<ReturnType<ServingRecordStore['claim']>>;
    try {
      claimed = await withDeadline(EVICTION_TIMEOUT_MS, 'the serving record', () => stores.records!.claim(key, verdict));
    } catch {
      metrics.add(M.CACHE_ERRORS, 'Count', 1, { [M.DIMENSION_CACHE_LEVEL]: 'feedback' });
      throw unavailable();
    }
    if (!claimed) {
      throw new HttpError(404, `No answer with request id ${requestId} was given to this caller within the feedback window`, 'not-found');
    }
    if (claimed.previous) {
      throw new HttpError(409, `A verdict (${claimed.previous}) was already given for request ${requestId}; each answer takes one`, 'conflict');
    }
    const { record } = claimed;
    metrics.add(M.FEEDBACK, 'Count', 1, { [M.DIMENSION_SERVED_BY]: record.servedBy, [M.DIMENSION_VERDICT]: verdict });
    if (record.tierId) metrics.add(M.FEEDBACK, 'Count', 1, { [M.DIMENSION_TIER]: record.tierId, [M.DIMENSION_VERDICT]: verdict });
    const outcome = verdict === 'wrong' && record.servedBy !== 'static' && record.locations
      ? await evict(record.locations, stores, config.cache.keyPrefix, input.caller, metrics)
      : { evicted: { exact: 0, semantic: 0 }, evictionFailed: [] };
    const body: FeedbackResponseBody = { requestId, verdict, servedBy: record.servedBy, ...outcome };
    return { statusCode: 200, headers: { ...JSON_HEADERS }, body: JSON.stringify(body) };
  } catch (err) {
    if (err instanceof HttpError) return errorResponse(err, metrics);
    throw err;
  }
}

/**
 * Evicts an answer from where its serving record says it is cached, each level bounded in time
 * and failing alone. Every location is checked to belong to the caller's scope before it is
 * touched (defence in depth: the router wrote them, from the caller's own lookups).
 */
async function evict(
  locations: AnswerLocations,
  stores: FeedbackStores,
  keyPrefix: string,
  caller: Caller,
  metrics: MetricsRecorder,
): Promise<Pick<FeedbackResponseBody, 'evicted' | 'evictionFailed'>> {
  const evicted = { exact: 0, semantic: 0 };
  const failed = new Set<string>();
  const answerId = locations.answerId;
  const exactKeys = locations.exactKeys.filter((k) => exactKeyInScope(k, keyPrefix, caller));
  // Without an answer id an exact key cannot be told from a newer answer under it: left to expire.
  if (answerId && exactKeys.length > 0) {
    const exact = stores.exact;
    for (const key of exactKeys) {
      try {
        if (!exact?.evict) throw new Error('the exact cache is not reachable');
        if (await withDeadline(EVICTION_TIMEOUT_MS, 'the exact cache', () => exact.evict!(key, answerId))) evicted.exact++;
      } catch {
        failed.add('exact');
      }
    }
  }
  const semantic = locations.semantic;
  if (semantic && semanticScopeInScope(semantic.scope, caller)) {
    const vectors = stores.vectors;
    try {
      if (!vectors?.deleteEntry) throw new Error('the vector store cannot delete an entry');
      if (await withDeadline(EVICTION_TIMEOUT_MS, 'the semantic cache', (signal) => vectors.deleteEntry!(semantic.scope, semantic.id, signal))) evicted.semantic++;
    } catch {
      failed.add('semantic');
    }
  }
  if (evicted.exact > 0) metrics.add(M.FEEDBACK_EVICTIONS, 'Count', evicted.exact, { [M.DIMENSION_CACHE_LEVEL]: 'exact' });
  if (evicted.semantic > 0) metrics.add(M.FEEDBACK_EVICTIONS, 'Count', evicted.semantic, { [M.DIMENSION_CACHE_LEVEL]: 'semantic' });
  if (failed.size > 0) metrics.add(M.CACHE_ERRORS, 'Count', failed.size, { [M.DIMENSION_CACHE_LEVEL]: 'feedback' });
  return { evicted, evictionFailed: [...failed] };
}

/**
 * Whether an exact key is one the caller could be served from: a shared key of the caller's
 * tenant (`<prefix>exact:<tenant hash>:<sha>`), or a personal key of the caller
 * (`<prefix>exact:<tenant hash>:u:<user hash>:<sha>`).
 */
export function exactKeyInScope(key: string, keyPrefix: string, caller: Caller): boolean {
  const tenantPrefix = `${keyPrefix}exact:${idHash(caller.tenantId)}:`;
  if (!key.startsWith(tenantPrefix)) return false;
  const rest = key.slice(tenantPrefix.length);
  if (/^[0-9a-f]{64}$/.test(rest)) return true;
  return caller.userId !== undefined && key.startsWith(personalExactKeyPrefix(keyPrefix, caller.tenantId, caller.userId));
}

/**
 * Whether a semantic scope may be the caller's: a shared scope (a hash: its tenant cannot be read
 * back from it, so any shared scope passes here) or one of the caller's personal scopes (they start
 * with the caller's prefix); never another user's personal scope. Defence in depth only: the
 * locations come from a serving record the router wrote for this caller's own request.
 */
export function semanticScopeInScope(scope: string, caller: Caller): boolean {
  if (/^[0-9a-f]{32}$/.test(scope)) return true;
  return caller.userId !== undefined && scope.startsWith(personalScopePrefix(caller.tenantId, caller.userId));
}

function unavailable(): HttpError {
  return new HttpError(503, 'The response cache is unavailable; retry later', 'unavailable', { 'retry-after': '2' });
}
