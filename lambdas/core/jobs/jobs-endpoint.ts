/**
 * The jobs API: `POST /v1/jobs` (submit) and `GET /v1/jobs/{id}` (status and results), from
 * body to response over the ports of job-model.ts. Knows nothing of Lambda, API Gateway, SQS or
 * DynamoDB; the handler adapts the event and wires the adapters.
 *
 * Submission body (validated strictly; unknown fields are refused):
 * - `{ "request": { ...chat request... } }`: a single-request job; or
 * - `{ "requests": [ { ...chat request... }, ... ] }`: a job of 1..maxItemsPerJob requests;
 * - either with `"mode": "queue"` (the default: the batch worker answers it through SQS) or
 *   `"mode": "bulk"` (Bedrock batch inference, when the deployment has bulk mode).
 * A bare chat request (`{ "messages": [...] }`) is refused with a message that shows the
 * wrapping: a job body and a chat body are never confused.
 *
 * Every request is validated exactly as `POST /v1/chat` validates its body; errors name the
 * request (`requests.3.messages.0.role: ...`, or `request.messages...` for a single one).
 */
import { randomUUID } from 'node:crypto';
import { AiMetricNames as M } from '../../../constructs/contract/metrics';
import type { BulkRuntimeConfig, JobsRuntimeConfig, RouterRuntimeConfig } from '../../../constructs/contract/runtime-config';
import { isPersonal, type Caller } from '../cache-key';
import { errorResponse, JSON_HEADERS, type HttpResponse } from '../chat-endpoint';
import { validateChatRequest } from '../chat-request';
import { HttpError } from '../errors';
import { parseJsonBody } from '../json-body';
import type { MetricsRecorder } from '../ports';
import { jobStatus, type BulkSubmitter, type ItemResult, type JobHeader, type JobMessage, type JobMode, type JobQueue, type JobStore } from './job-model';

/** What a successful submission answers (and what an Idempotency-Key replays). */
export interface SubmittedJob {
  readonly jobId: string;
  readonly mode: JobMode;
  readonly items: number;
  /** Epoch milliseconds. */
  readonly createdAt: number;
}

/** Whose Idempotency-Key it is: the caller's tenant, and the user who would own the job (`''`: the whole tenant). */
export interface IdempotencyScope {
  readonly tenantId: string;
  readonly userId: string;
  readonly key: string;
}

/**
 * Makes a submission idempotent per (tenant, owner, Idempotency-Key); the owner is the user of a
 * personal job, and nobody (`''`) for a job of the whole tenant.
 *
 * - The first call with a key runs `submit` and remembers its result for the key's lifetime.
 * - A later call with the same scope and the same payload gets that result again
 *   (`replayed: true`) without running `submit`. Another user of the same tenant with the same
 *   key and a personal payload gets a job of their own: a replay never hands out a job its
 *   caller could not read.
 * - The same key with a different payload: HttpError 422 (`idempotency-key-reused`).
 * - The same key while the first call still runs: HttpError 409 (`idempotency-key-in-progress`).
 * - A `submit` that throws leaves nothing behind: the key may be used again.
 * - The store unreachable: HttpError 503.
 */
export interface IdempotencyGuard {
  once(
    scope: IdempotencyScope,
    payload: unknown,
    submit: () => Promise<SubmittedJob>,
  ): Promise<{ job: SubmittedJob; replayed: boolean }>;
}

export interface JobsEndpointDeps {
  readonly router: Pick<RouterRuntimeConfig, 'maxRequestBytes' | 'maxMessages' | 'tiers'>;
  readonly jobs: Pick<JobsRuntimeConfig, 'maxItemsPerJob' | 'resultTtlSeconds' | 'bulk'>;
  readonly store: JobStore;
  readonly queue: JobQueue;
  /** Bulk mode; absent when the deployment has none (`"mode": "bulk"` is then refused). */
  readonly bulk?: BulkSubmitter;
  /** Idempotency-Key support; absent: the header is refused. */
  readonly idempotency?: IdempotencyGuard;
  readonly metrics: MetricsRecorder;
  readonly logger?: { error(message: string, ...extra: unknown[]): void };
  readonly newJobId?: () => string;
  readonly now?: () => number;
  /** Waits between attempts to record a bulk job (tests). @default setTimeout */
  readonly sleep?: (ms: number) => Promise<void>;
}

/** Results per page of `GET /v1/jobs/{id}` by default, and at most. */
export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 100;
/** Seconds a client should wait before retrying a submission that could not be stored or queued, or a read that failed. */
const RETRY_AFTER_SECONDS = 2;
/**
 * Attempts to record a bulk job once Bedrock accepted it (each one already retried by the SDK),
 * and the wait before the second; it doubles for each further attempt.
 */
const RECORD_BULK_ATTEMPTS = 3;
const RECORD_BULK_BACKOFF_MS = 100;
const JOB_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** Printable ASCII, as an Idempotency-Key header value (at most 255 characters). */
const IDEMPOTENCY_KEY = /^[\x20-\x7e]{1,255}$/;
const ENVELOPE_FIELDS = ['request', 'requests', 'mode'];

/** The body of a `202` submission answer. */
export interface SubmitResponseBody {
  readonly jobId: string;
  readonly status: 'queued';
  readonly mode: JobMode;
  readonly items: number;
  /** ISO 8601. */
  readonly createdAt: string;
  readonly links: { readonly self: string };
}

/** One item result as `GET /v1/jobs/{id}` shows it. */
export interface ItemResultBody {
  readonly index: number;
  readonly status: 'succeeded' | 'failed';
  readonly output?: { readonly text: string };
  readonly tier?: string;
  readonly cache?: string;
  readonly usage?: { readonly inputTokens: number; readonly outputTokens: number };
  readonly costUsd?: number;
  readonly error?: { readonly code: string; readonly message: string };
  /** ISO 8601. */
  readonly completedAt: string;
}

/** The body of `GET /v1/jobs/{id}`. */
export interface JobResponseBody {
  readonly jobId: string;
  readonly status: 'queued' | 'running' | 'succeeded' | 'failed';
  readonly mode: JobMode;
  readonly items: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly createdAt: string;
  readonly startedAt?: string;
  /** A single-request job (one item), once done. */
  readonly result?: ItemResultBody;
  /** A job of several requests, once done: one page, in index order. */
  readonly results?: ItemResultBody[];
  /** Pass as `?cursor=` for the next page; absent on the last page. */
  readonly nextCursor?: string;
  /** Why the job failed (status `failed`). */
  readonly error?: { readonly code: string; readonly message: string };
}

interface ParsedSubmission {
  readonly mode: JobMode;
  readonly requests: unknown[];
  /**
   * Whether any request is personal (a conversation, or one that names a session: see
   * `isPersonal`): the job then belongs to its user, not to the whole tenant.
   */
  readonly personal: boolean;
  /** The parsed body: what an Idempotency-Key's payload is compared on. */
  readonly payload: unknown;
}

/** `POST /v1/jobs`: validate, store the job, enqueue it (or hand it to bulk mode), answer 202. */
export async function submitJob(
  deps: JobsEndpointDeps,
  input: { body: string | undefined; caller: Caller | undefined; idempotencyKey?: string },
): Promise<HttpResponse> {
  // No `Requests` here: that metric counts chat requests (cost per request, error rate); a
  // submission is counted by JobsSubmitted, its requests by the worker's metrics.
  const { metrics } = deps;
  try {
    const caller = requireCaller(input.caller);
    const key = input.idempotencyKey?.trim();
    if (input.idempotencyKey !== undefined && (!key || !IDEMPOTENCY_KEY.test(key))) {
      throw new HttpError(400, 'Invalid Idempotency-Key header: 1-255 printable ASCII characters', 'invalid');
    }
    if (key && !deps.idempotency) throw new HttpError(400, 'Idempotency-Key is not supported by this deployment', 'invalid');
    const submission = parseSubmission(deps, input.body);
    const submit = (): Promise<SubmittedJob> => createJob(deps, caller, submission);
    const { job, replayed } = key
      ? await deps.idempotency!.once({ tenantId: caller.tenantId, userId: owner(caller, submission) ?? '', key }, submission.payload, submit)
      : { job: await submit(), replayed: false };
    if (!replayed) metrics.add(M.JOBS_SUBMITTED, 'Count', 1);
    const self = `/v1/jobs/${job.jobId}`;
    const body: SubmitResponseBody = {
      jobId: job.jobId,
      status: 'queued',
      mode: job.mode,
      items: job.items,
      createdAt: new Date(job.createdAt).toISOString(),
      links: { self },
    };
    return {
      statusCode: 202,
      headers: { ...JSON_HEADERS, location: self, ...(replayed ? { 'idempotent-replayed': 'true' } : {}) },
      body: JSON.stringify(body),
    };
  } catch (err) {
    if (err instanceof HttpError) return errorResponse(err, metrics);
    throw err;
  }
}

/**
 * `GET /v1/jobs/{id}`: the caller's job, its status, and its results once done (paginated).
 *
 * A personal job (see `owner`) is its user's alone; any other job is readable by its whole
 * tenant. Anything else reads as a job that does not exist: 404. The job store unreachable: 503 with
 * `retry-after`.
 */
export async function getJob(
  deps: Pick<JobsEndpointDeps, 'store' | 'metrics' | 'logger'>,
  input: { caller: Caller | undefined; jobId: string | undefined; cursor?: string; limit?: string },
): Promise<HttpResponse> {
  // No `Requests` here either: a poll is not a chat request.
  const { metrics } = deps;
  try {
    const caller = requireCaller(input.caller);
    const jobId = input.jobId ?? '';
    const store = readable(deps, jobId);
    // Another tenant's (or user's) job and a job that does not exist read the same: 404, never 403.
    const found = JOB_ID.test(jobId) ? await store.getJob(caller.tenantId, jobId) : undefined;
    const header = found && ownedBy(found, caller) ? found : undefined;
    if (!header) throw new HttpError(404, `No job with id "${jobId}"`, 'not-found');
    const limit = pageSize(input.limit);
    if (input.cursor !== undefined && !/^[A-Za-z0-9_-]{1,512}$/.test(input.cursor)) {
      throw new HttpError(400, 'Invalid request: cursor: pass the nextCursor of the previous page unchanged', 'invalid');
    }
    const status = jobStatus(header);
    let body: JobResponseBody = {
      jobId: header.jobId,
      status,
      mode: header.mode,
      items: header.items,
      succeeded: header.succeeded,
      failed: header.failed,
      createdAt: new Date(header.createdAt).toISOString(),
      startedAt: header.startedAt === undefined ? undefined : new Date(header.startedAt).toISOString(),
    };
    if (status === 'succeeded' || status === 'failed') {
      if (header.items === 1) {
        const { results } = await store.listResults(caller.tenantId, jobId, 1);
        body = { ...body, result: results[0] && resultBody(results[0]) };
      } else {
        const page = await store.listResults(caller.tenantId, jobId, limit, input.cursor);
        body = { ...body, results: page.results.map(resultBody), nextCursor: page.nextCursor };
      }
    }
    if (status === 'failed') body = { ...body, error: jobError(header) };
    return { statusCode: 200, headers: { ...JSON_HEADERS }, body: JSON.stringify(body) };
  } catch (err) {
    if (err instanceof HttpError) return errorResponse(err, metrics);
    throw err;
  }
}

/**
 * The user a job belongs to: its caller's, when a request of the job is personal (its answer may
 * draw on that user's context or conversation). Any other job belongs to the whole tenant: with
 * IAM authorization the user id is the role session name, which differs from one host of a
 * backend to the next, and any of them may poll the job or retry its submission.
 */
function owner(caller: Caller, submission: ParsedSubmission): string | undefined {
  return submission.personal ? caller.userId : undefined;
}

/** A job with a user id belongs to that user; one without to its tenant. */
function ownedBy(header: JobHeader, caller: Caller): boolean {
  return !header.userId || header.userId === caller.userId;
}

/** The reads of `GET`, with a failure of the store turned into 503 + `retry-after` (a 4xx of the store passes). */
function readable(deps: Pick<JobsEndpointDeps, 'store' | 'logger'>, jobId: string): Pick<JobStore, 'getJob' | 'listResults'> {
  const guard = async <T>(read: () => Promise<T>): Promise<T> => {
    try {
      return await read();
    } catch (err) {
      if (err instanceof HttpError) throw err;
      deps.logger?.error('the job could not be read', { jobId, error: err as Error });
      throw new HttpError(503, `The job could not be read. Retry after ${RETRY_AFTER_SECONDS} seconds.`, 'unavailable', {
        'retry-after': String(RETRY_AFTER_SECONDS),
      });
    }
  };
  return {
    getJob: (tenantId, id) => guard(() => deps.store.getJob(tenantId, id)),
    listResults: (tenantId, id, limit, cursor) => guard(() => deps.store.listResults(tenantId, id, limit, cursor)),
  };
}

function requireCaller(caller: Caller | undefined): Caller {
  if (!caller) {
    throw new HttpError(401, 'No tenant in the authorizer context: the route must sit behind the IAM or JWT authorizer', 'unauthenticated');
  }
  return caller;
}

function pageSize(raw: string | undefined): number {
  if (raw === undefined) return DEFAULT_PAGE_SIZE;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < 1 || n > MAX_PAGE_SIZE) {
    throw new HttpError(400, `Invalid request: limit: must be an integer from 1 to ${MAX_PAGE_SIZE}`, 'invalid');
  }
  return n;
}

/** Validates the envelope and every request in it. */
function parseSubmission(deps: JobsEndpointDeps, body: string | undefined): ParsedSubmission {
  const { router, jobs } = deps;
  const example = '{ "request": { "messages": [{ "role": "user", "content": "..." }] } } or { "requests": [ ... ] }';
  if (body === undefined || body.length === 0) throw new HttpError(400, `Request body is required: ${example}`, 'invalid');
  const bulkLimits = deps.bulk ? jobs.bulk : undefined;
  const mostItems = Math.max(jobs.maxItemsPerJob, bulkLimits?.maxItems ?? 0);
  // Every request within its own limit, plus room for the envelope.
  const maxBytes = router.maxRequestBytes * mostItems + 1_024;
  const bytes = Buffer.byteLength(body, 'utf8');
  if (bytes > maxBytes) throw new HttpError(413, `Request body is ${bytes} bytes; the limit is ${maxBytes} bytes`, 'too-large');
  const json = parseJsonBody(body);
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new HttpError(400, `Invalid request: the body must be an object: ${example}`, 'invalid');
  }
  const envelope = json as Record<string, unknown>;
  if ('messages' in envelope) {
    throw new HttpError(400, `Invalid request: a job wraps its chat request: ${example}`, 'invalid');
  }
  const unknown = Object.keys(envelope).filter((k) => !ENVELOPE_FIELDS.includes(k));
  if (unknown.length > 0) {
    throw new HttpError(400, `Invalid request: unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `"${k}"`).join(', ')}; a job is ${example}, with an optional "mode"`, 'invalid');
  }
  const mode = envelope.mode ?? 'queue';
  if (mode !== 'queue' && mode !== 'bulk') throw new HttpError(400, 'Invalid request: mode: must be "queue" or "bulk"', 'invalid');
  const hasOne = 'request' in envelope;
  const hasList = 'requests' in envelope;
  if (hasOne === hasList) throw new HttpError(400, `Invalid request: give exactly one of "request" and "requests": ${example}`, 'invalid');

  let requests: unknown[];
  let at: (i: number) => string;
  if (hasOne) {
    requests = [envelope.request];
    at = () => 'request';
  } else {
    if (!Array.isArray(envelope.requests)) throw new HttpError(400, 'Invalid request: requests: must be an array of chat requests', 'invalid');
    if (envelope.requests.length === 0) throw new HttpError(400, 'Invalid request: requests: must not be empty', 'invalid');
    requests = envelope.requests;
    at = (i) => `requests.${i}`;
  }

  let bulk: BulkRuntimeConfig | undefined;
  if (mode === 'bulk') {
    bulk = bulkLimits;
    if (!bulk) throw new HttpError(400, 'Invalid request: mode: bulk mode is not enabled for this deployment; omit "mode" to queue the job', 'invalid');
    if (requests.length < bulk.minItems) {
      throw new HttpError(400, `Invalid request: requests: bulk mode needs at least ${bulk.minItems} requests per job, got ${requests.length}; omit "mode" to queue the job`, 'invalid');
    }
  }
  const maxItems = bulk ? bulk.maxItems : jobs.maxItemsPerJob;
  if (requests.length > maxItems) {
    throw new HttpError(413, `Invalid request: requests: at most ${maxItems} requests are accepted per ${bulk ? 'bulk ' : ''}job, got ${requests.length}`, 'too-large');
  }
  const limits = { maxMessages: router.maxMessages, tierIds: router.tiers.map((t) => t.id) };
  let personal = false;
  requests.forEach((request, i) => {
    const size = Buffer.byteLength(JSON.stringify(request) ?? '', 'utf8');
    if (size > router.maxRequestBytes) {
      throw new HttpError(413, `Invalid request: ${at(i)}: the request is ${size} bytes; the limit is ${router.maxRequestBytes} bytes`, 'too-large');
    }
    const req = validateChatRequest(request, limits, at(i));
    personal ||= isPersonal(req);
    if (bulk && req.session !== undefined) {
      // Bulk records are answered by Bedrock alone: the user's context could not be merged.
      throw new HttpError(400, `Invalid request: ${at(i)}.session: not supported in bulk mode; send the conversation in messages`, 'invalid');
    }
  });
  return { mode, requests, personal, payload: json };
}

/** Stores the job, then enqueues it (or submits it to bulk mode); a failure after the store marks it failed. */
async function createJob(deps: JobsEndpointDeps, caller: Caller, submission: ParsedSubmission): Promise<SubmittedJob> {
  const now = (deps.now ?? Date.now)();
  const jobId = (deps.newJobId ?? randomUUID)();
  const header: JobHeader = {
    jobId,
    tenantId: caller.tenantId,
    userId: owner(caller, submission),
    mode: submission.mode,
    items: submission.requests.length,
    succeeded: 0,
    failed: 0,
    createdAt: now,
  };
  const ttl = deps.jobs.resultTtlSeconds;
  const retry = { 'retry-after': String(RETRY_AFTER_SECONDS) };
  try {
    await deps.store.createJob(header, ttl);
  } catch (err) {
    deps.logger?.error('the job could not be stored', { jobId, error: err as Error });
    throw new HttpError(503, `The job could not be stored; nothing was queued. Retry after ${RETRY_AFTER_SECONDS} seconds.`, 'unavailable', retry);
  }
  try {
    if (submission.mode === 'queue') {
      const messages: JobMessage[] = submission.requests.map((request, index) => ({
        v: 1,
        jobId,
        tenantId: caller.tenantId,
        userId: caller.userId,
        index,
        request,
      }));
      await deps.queue.enqueue(messages);
    } else {
      const { bulkJobArn } = await deps.bulk!.submit({ tenantId: caller.tenantId, jobId, requests: submission.requests });
      await recordBulkJob(deps, caller.tenantId, jobId, bulkJobArn);
    }
  } catch (err) {
    const what = submission.mode === 'queue' ? 'queued' : 'submitted to bulk mode';
    deps.logger?.error(`the job could not be ${what}`, { jobId, error: err as Error });
    // GET must tell the truth: the job is failed, not queued forever. Items a partial enqueue
    // did send are answered by the worker if it gets there first; the others fail here.
    let recorded = 'was recorded as failed';
    try {
      await deps.store.failBulkJob(caller.tenantId, jobId, `The job could not be ${what}; submit it again.`, ttl);
    } catch (markErr) {
      recorded = 'could not be marked failed either';
      deps.logger?.error('the job could not be marked failed', { jobId, error: markErr as Error });
    }
    // A refusal of the bulk submitter (4xx) is the client's to read; anything else is ours: 503.
    if (err instanceof HttpError && err.statusCode < 500) throw err;
    const headers = err instanceof HttpError && err.headers['retry-after'] ? err.headers : retry;
    throw new HttpError(
      503,
      `The job could not be ${what}; job ${jobId} ${recorded}. Retry the submission after ${headers['retry-after']} seconds.`,
      'unavailable',
      headers,
    );
  }
  return { jobId, mode: submission.mode, items: header.items, createdAt: now };
}

/**
 * Records the Bedrock job of a bulk job. Bedrock already runs (and bills) it: a failure here
 * would leave its results with no job to load them into, so the write is tried a few times
 * (with a short, doubling wait) before giving up. Giving up logs the Bedrock job's ARN at error
 * level, for an operator to stop it or reconcile, and throws (the job is then marked failed).
 */
async function recordBulkJob(deps: JobsEndpointDeps, tenantId: string, jobId: string, bulkJobArn: string): Promise<void> {
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  for (let attempt = 1; ; attempt++) {
    try {
      await deps.store.recordBulkJob(tenantId, jobId, bulkJobArn, deps.jobs.resultTtlSeconds);
      return;
    } catch (err) {
      if (attempt >= RECORD_BULK_ATTEMPTS) {
        deps.logger?.error(
          `the bulk job could not be recorded after ${attempt} attempts: Bedrock batch inference job ${bulkJobArn} runs without a job to load its results into; stop it or reconcile it with job ${jobId}`,
          { jobId, tenantId, bulkJobArn, error: err as Error },
        );
        throw err;
      }
      await sleep(RECORD_BULK_BACKOFF_MS * 2 ** (attempt - 1));
    }
  }
}

function resultBody(r: ItemResult): ItemResultBody {
  return {
    index: r.index,
    status: r.status,
    output: r.output,
    tier: r.tier,
    cache: r.cache,
    usage: r.usage,
    costUsd: r.costUsd,
    error: r.error,
    completedAt: new Date(r.completedAt).toISOString(),
  };
}

function jobError(header: JobHeader): { code: string; message: string } {
  if (header.failureMessage) return { code: 'job-failed', message: header.failureMessage };
  return {
    code: 'items-failed',
    message: header.items === 1 ? 'The request failed; see result.error' : `${header.failed} of ${header.items} requests failed; see the error of each result`,
  };
}
