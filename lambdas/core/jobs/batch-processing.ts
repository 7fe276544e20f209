/**
 * What the batch worker does with one SQS batch of job messages, over ports: parse each message,
 * answer it with the router's ChatService (caches, routing, fallback, cache writes), sharing one
 * answer among identical requests of the batch, and store each result before the message is
 * acknowledged.
 *
 * Every record ends in one of two ways:
 * - it resolves: its result is stored (or was already, or its job needs nothing more), and the
 *   message may be deleted;
 * - it throws a {@link BatchRecordFailure}: the message stays in the queue and comes back after
 *   its visibility timeout (and, after the queue's maxReceiveCount, goes to the DLQ).
 *
 * | what happened                                   | outcome                                      |
 * |-------------------------------------------------|----------------------------------------------|
 * | body not a job message, job unknown (poison)    | fails (`poison`): retried, then the DLQ      |
 * | the item already has a result (a redelivery)    | `duplicate`: not answered, not counted again |
 * | the job store cannot be read or written         | fails (`store`): retried; nothing counted    |
 * | request invalid, or a model rejected it (4xx)   | a failed result is stored; no retry          |
 * | every tier failed (503), receives < max         | fails (`model`): retried later               |
 * | every tier failed (503), receives >= max        | a failed result is stored (the job ends)     |
 * | answered (cache or model)                       | a succeeded result is stored                 |
 *
 * On the last receive (receives >= maxReceiveCount), a record that fails for any other reason
 * than the write of its result (the job could not be read or marked started, an unexpected
 * error) gets a failed result written best-effort before it is reported, so that its job ends;
 * the message still goes to the DLQ (redriving it later is harmless: its item has a result). No
 * result can be written for a body that is not a job message, for a job that does not exist (or
 * an item beyond it), when the write itself fails (or the best-effort write fails too), nor when
 * the worker crashes or is timed out during the last receive: those messages reach the DLQ with
 * their items unanswered, and their jobs stay `running` until the cause is fixed and the DLQ is
 * redriven.
 */
import { AiMetricNames as M } from '../../../constructs/contract/metrics';
import { exactCacheKey, isPersonal, type Caller } from '../cache-key';
import { validateChatRequest, type ChatRequest, type RequestLimits } from '../chat-request';
import type { ChatResult, ChatService } from '../chat-service';
import { HttpError } from '../errors';
import { jsonDepth, MAX_JSON_DEPTH } from '../json-body';
import type { MetricsRecorder } from '../ports';
import { jobStatus, type ItemResult, type JobHeader, type JobMessage, type JobStore } from './job-model';

/** One SQS record, as the worker needs it. */
export interface BatchRecord {
  readonly messageId: string;
  readonly body: string;
  /** `ApproximateReceiveCount`: 1 on the first delivery. */
  readonly receiveCount: number;
}

/** Why a record is left in the queue (the `FailureKind` dimension of BatchFailures). */
export type FailureKind = 'poison' | 'store' | 'model';

/** A record to be reported failed (and so retried); `kind` says why. */
export class BatchRecordFailure extends Error {
  constructor(
    readonly kind: FailureKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'BatchRecordFailure';
  }
}

/**
 * `written`: the result was stored now. `duplicate`: it had been stored before (the message was
 * not answered again). `skipped`: the job needed nothing more.
 */
export type RecordOutcome = 'written' | 'duplicate' | 'skipped';

export interface JobBatchDeps {
  readonly store: JobStore;
  /** The router's ChatService (caches → classify → invoke with fallback → cache writes). */
  readonly chat: Pick<ChatService, 'chat'>;
  readonly metrics: MetricsRecorder;
  /** The router's request limits: a request is validated again before it is answered. */
  readonly limits: Omit<RequestLimits, 'maxRequestBytes'>;
  /** Receives after which a request no tier could answer gets a failed result instead of another retry. */
  readonly maxReceiveCount: number;
  readonly resultTtlSeconds: number;
  /** Epoch milliseconds by which model answers must be ready (the invocation's end, less the time to store them). */
  readonly deadline: number;
  readonly now?: () => number;
  readonly logger?: { warn(message: string, ...extra: unknown[]): void };
  /**
   * Why the routing core could not be built (the router's configuration could not be read), if
   * so: every request then fails like one no tier could answer (`chat` and `limits` are not
   * used), is retried, and gets a failed result on its last receive, so that its job still ends.
   */
  readonly unavailable?: string;
}

/**
 * One batch. Records may be processed concurrently (the Powertools BatchProcessor runs them in
 * parallel): identical requests share one answer through a per-batch memo, keyed like the exact
 * cache (tenant, request normalized as the exact cache does, tier hint; the user too for personal
 * requests: conversations and questions that carry personal data), so no answer ever crosses
 * tenants, nor a personal answer users. Requests that name a session are never shared (each
 * merges and extends its user's context), nor personal requests without a user id. The first
 * request of a key is answered (caches, then a model); the others get its answer with the same
 * tier and cache level, and usage and costUsd 0: the call was paid once.
 */
export class JobBatch {
  /** Starts a batch of `size` records (emits BatchSize). */
  static start(deps: JobBatchDeps, size: number): JobBatch {
    deps.metrics.add(M.BATCH_SIZE, 'Count', size);
    return new JobBatch(deps);
  }

  private readonly answers = new Map<string, Promise<ChatResult>>();
  private readonly jobs = new Map<string, Promise<JobHeader | undefined>>();
  private readonly started = new Map<string, Promise<void>>();
  private readonly now: () => number;
  private deduplicated = 0;
  private duplicates = 0;

  private constructor(private readonly deps: JobBatchDeps) {
    this.now = deps.now ?? Date.now;
  }

  /**
   * Requests of this batch answered by another identical request's answer (cache lookup or
   * model call): the requests that reached the answer step, less the distinct keys among them.
   */
  get deduplicatedRequests(): number {
    return this.deduplicated;
  }

  /**
   * Processes one record: resolves once its result is stored (or needs no storing).
   * @throws BatchRecordFailure when the record must be retried
   */
  async process(record: BatchRecord): Promise<RecordOutcome> {
    let message: JobMessage | undefined;
    let writing = false;
    try {
      message = parseJobMessage(record.body);
      const job = await this.job(message);
      // Every item already has a result (e.g. the job failed as a whole): nothing left to answer.
      const status = jobStatus(job);
      if (status === 'succeeded' || status === 'failed') return 'skipped';
      // A redelivery of a message whose result is stored (e.g. its batch outlived the worker's
      // timeout after the write): answering it again would pay a model call, and extend a session, twice.
      if (await this.hasResult(message)) {
        this.duplicates++;
        return 'duplicate';
      }
      await this.markStarted(job);
      const result = await this.answer(message, record.receiveCount);
      writing = true;
      const outcome = await this.write(message, result);
      if (outcome === 'duplicate') this.duplicates++;
      return outcome;
    } catch (err) {
      const failure = err instanceof BatchRecordFailure ? err : new BatchRecordFailure('model', `unexpected error: ${(err as Error)?.message ?? String(err)}`, { cause: err });
      this.deps.metrics.add(M.BATCH_FAILURES, 'Count', 1, { [M.DIMENSION_FAILURE_KIND]: failure.kind });
      const last = record.receiveCount >= this.deps.maxReceiveCount;
      let giveUp: string | undefined;
      // The last receive: the message goes to the DLQ next; a failed result lets its job end. Not
      // when the write itself failed (it was just tried), nor for poison (no job, or no such item,
      // to write into).
      if (last && message && !writing && failure.kind !== 'poison') giveUp = await this.writeGiveUp(message, record.receiveCount, failure);
      this.deps.logger?.warn(last ? 'record failed on its last receive: it goes to the dead-letter queue' : 'record left for a retry', {
        messageId: record.messageId,
        receiveCount: record.receiveCount,
        kind: failure.kind,
        reason: failure.message,
        ...(message ? { jobId: message.jobId, index: message.index } : {}),
        ...(giveUp ? { failedResult: giveUp } : {}),
      });
      throw failure;
    }
  }

  /** Records whose item already had a result (redeliveries): not answered again, not counted again. */
  get duplicateRecords(): number {
    return this.duplicates;
  }

  /** Emits the batch's DeduplicatedRequests (call once, after every record). */
  finish(): void {
    this.deps.metrics.add(M.DEDUPLICATED_REQUESTS, 'Count', this.deduplicated);
  }

  /** The job of a message (read once per batch); a message of an unknown job is poison. */
  private async job(message: JobMessage): Promise<JobHeader> {
    const key = `${message.tenantId}\u0000${message.jobId}`;
    let pending = this.jobs.get(key);
    if (!pending) {
      pending = this.deps.store.getJob(message.tenantId, message.jobId);
      this.jobs.set(key, pending);
      // A failed read is not remembered: the next record of the job tries again.
      pending.catch(() => this.jobs.delete(key));
    }
    let job: JobHeader | undefined;
    try {
      job = await pending;
    } catch (err) {
      throw new BatchRecordFailure('store', `the job could not be read: ${(err as Error).message}`, { cause: err });
    }
    if (!job) throw new BatchRecordFailure('poison', `job ${message.jobId} of this tenant does not exist (or has expired)`);
    if (message.index >= job.items) throw new BatchRecordFailure('poison', `item ${message.index} is beyond the job's ${job.items} items`);
    return job;
  }

  private async hasResult(message: JobMessage): Promise<boolean> {
    try {
      return await this.deps.store.hasResult(message.tenantId, message.jobId, message.index);
    } catch (err) {
      throw new BatchRecordFailure('store', `the item's result could not be looked up: ${(err as Error).message}`, { cause: err });
    }
  }

  /**
   * Best-effort failed result of a record that failed on its last receive; never throws.
   * @returns what became of it: `written`, `duplicate` (a result was there), or why it was not written
   */
  private async writeGiveUp(message: JobMessage, receiveCount: number, failure: BatchRecordFailure): Promise<string> {
    const result: ItemResult = {
      index: message.index,
      status: 'failed',
      error: {
        code: failure.kind === 'store' ? 'unavailable' : 'internal',
        message: `The request could not be processed: ${failure.message}. Gave up after ${receiveCount} attempts.`,
      },
      completedAt: this.now(),
    };
    try {
      const outcome = await this.deps.store.writeResult(message.tenantId, message.jobId, result, this.deps.resultTtlSeconds);
      if (outcome === 'written') this.deps.metrics.add(M.RESULTS_WRITTEN, 'Count', 1);
      return outcome;
    } catch (err) {
      return `not written: ${(err as Error)?.message ?? String(err)}`;
    }
  }

  private async markStarted(job: JobHeader): Promise<void> {
    if (job.startedAt !== undefined) return;
    const key = `${job.tenantId}\u0000${job.jobId}`;
    let pending = this.started.get(key);
    if (!pending) {
      pending = this.deps.store.markStarted(job.tenantId, job.jobId, this.now());
      this.started.set(key, pending);
      pending.catch(() => this.started.delete(key));
    }
    try {
      await pending;
    } catch (err) {
      throw new BatchRecordFailure('store', `the job could not be marked started: ${(err as Error).message}`, { cause: err });
    }
  }

  /** The result of one request: answered (shared with identical requests of the batch) or failed for good. */
  private async answer(message: JobMessage, receiveCount: number): Promise<ItemResult> {
    const failed = (code: string, text: string): ItemResult => ({
      index: message.index,
      status: 'failed',
      error: { code, message: text },
      completedAt: this.now(),
    });
    if (this.deps.unavailable !== undefined) {
      if (receiveCount >= this.deps.maxReceiveCount) {
        return failed('unavailable', `${this.deps.unavailable} Gave up after ${receiveCount} attempts.`);
      }
      throw new BatchRecordFailure('model', this.deps.unavailable);
    }
    let req: ChatRequest;
    try {
      req = validateChatRequest(message.request, this.deps.limits, 'request');
    } catch (err) {
      if (err instanceof HttpError) return failed(err.reason, err.message);
      throw err;
    }
    const caller: Caller = { tenantId: message.tenantId, userId: message.userId };
    // A personal request (a conversation, or a question with personal data: isPersonal, as in the
    // router) shares an answer with its own user's identical requests only, and with none when
    // there is no user id to tell users apart.
    const unshared = req.session !== undefined || (caller.userId === undefined && isPersonal(req));
    const key = unshared ? `unshared:${message.jobId}:${message.index}` : exactCacheKey('batch:', caller, req, req.tierHint);
    let pending = this.answers.get(key);
    const follower = pending !== undefined;
    if (pending) {
      this.deduplicated++;
    } else {
      pending = this.deps.chat.chat(req, caller, this.deps.deadline);
      // Awaited below by every record that shares it; this keeps an early rejection handled.
      pending.catch(() => undefined);
      this.answers.set(key, pending);
    }
    try {
      const r = await pending;
      return {
        index: message.index,
        status: 'succeeded',
        output: { text: r.text },
        tier: r.tierId,
        cache: r.servedBy === 'model' ? 'miss' : r.servedBy,
        // The answer was paid for once, by the first of the identical requests: summing costUsd
        // over results gives what the batch cost.
        usage: follower ? { inputTokens: 0, outputTokens: 0 } : r.usage,
        costUsd: follower ? 0 : r.costUsd,
        completedAt: this.now(),
      };
    } catch (err) {
      // The request itself was refused (a model rejected it): another try would be refused too.
      if (err instanceof HttpError && err.statusCode < 500) return failed(err.reason, err.message);
      const reason = err instanceof Error ? err.message : String(err);
      if (receiveCount >= this.deps.maxReceiveCount) {
        return failed('unavailable', `${reason} Gave up after ${receiveCount} attempts.`);
      }
      throw new BatchRecordFailure('model', reason, { cause: err });
    }
  }

  private async write(message: JobMessage, result: ItemResult): Promise<'written' | 'duplicate'> {
    let outcome: 'written' | 'duplicate';
    try {
      outcome = await this.deps.store.writeResult(message.tenantId, message.jobId, result, this.deps.resultTtlSeconds);
    } catch (err) {
      throw new BatchRecordFailure('store', `the result could not be stored: ${(err as Error).message}`, { cause: err });
    }
    if (outcome === 'written') this.deps.metrics.add(M.RESULTS_WRITTEN, 'Count', 1);
    return outcome;
  }
}

/** Parses an SQS message body into a {@link JobMessage}. @throws BatchRecordFailure `poison` */
export function parseJobMessage(body: string): JobMessage {
  // The jobs API refuses deeper requests; a message that nests deeper was not sent by it.
  if (jsonDepth(body) > MAX_JSON_DEPTH) throw new BatchRecordFailure('poison', `the message body nests deeper than ${MAX_JSON_DEPTH} levels`);
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch (err) {
    throw new BatchRecordFailure('poison', `the message body is not JSON: ${(err as Error).message}`);
  }
  const m = json as Partial<JobMessage> | null;
  const problem =
    typeof m !== 'object' || m === null || Array.isArray(m) ? 'not an object'
      : m.v !== 1 ? `unknown version ${JSON.stringify(m.v)}`
        : typeof m.jobId !== 'string' || m.jobId.length === 0 ? 'no jobId'
          : typeof m.tenantId !== 'string' || m.tenantId.length === 0 ? 'no tenantId'
            : m.userId !== undefined && typeof m.userId !== 'string' ? 'userId is not a string'
              : typeof m.index !== 'number' || !Number.isInteger(m.index) || m.index < 0 ? 'no item index'
                : !('request' in m) ? 'no request'
                  : undefined;
  if (problem) throw new BatchRecordFailure('poison', `not a job message: ${problem}`);
  return m as JobMessage;
}
