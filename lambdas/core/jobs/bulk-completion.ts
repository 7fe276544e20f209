/**
 * Completion of bulk jobs: what to do with one Amazon Bedrock "Batch Inference Job State Change"
 * event (EventBridge, source `aws.bedrock`).
 *
 * - `Completed`, `PartiallyCompleted`: the output objects under the job's output prefix are read
 *   (`<...>.jsonl.out`, one line per record: `{ recordId, modelInput, modelOutput }`, or `error`
 *   in place of `modelOutput`; for Converse jobs `modelOutput` is the Converse response body), each
 *   record becomes the result of the item its `recordId` names, at the bulk tier's prices halved
 *   (batch inference is billed at 50% of on-demand), cache `bulk`. A line with `error` is a failed
 *   item; an item with no line is failed `missing from the batch output`. `manifest.json.out` is
 *   read for the log and checked against what was found.
 * - `Failed`, `Stopped`, `Expired`: whatever output exists is loaded the same way (records Bedrock
 *   processed before it stopped were paid for), then the job fails as a whole
 *   (`JobStore.failBulkJob`) with the event's failure message.
 * - `InProgress`: the job is marked started. Other statuses (`Submitted`, `Validating`,
 *   `Scheduled`, `Stopping`) change nothing.
 *
 * Results are written with `JobStore.writeResult`, which counts each item once: a redelivered
 * event (EventBridge delivers at least once; Bedrock emits on a best-effort basis) writes nothing
 * twice. A failure to read the output or to write a result is thrown, so that EventBridge retries
 * the event (and sends it to the dead-letter queue in the end); an event that names no known job
 * is logged and ignored.
 *
 * Metrics: `ResultsWritten` (results this event wrote) and, when this event finished the job,
 * `BulkJobsCompleted` with `Reason` `completed` (every item succeeded), `partial` (some failed)
 * or `failed` (none succeeded).
 */
import { AiMetricNames as M } from '../../../constructs/contract/metrics';
import type { BulkRuntimeConfig, TierRuntimeConfig } from '../../../constructs/contract/runtime-config';
import { invocationCostUsd, type TokenUsage } from '../cost';
import type { MetricsRecorder } from '../ports';
import { bulkOutputPrefix, itemIndexOfRecordId } from './bulk-layout';
import type { ItemResult, JobHeader, JobStore } from './job-model';
import { mapLimit } from '../map-limit';

/** The EventBridge `source` of Bedrock's events. */
export const BULK_EVENT_SOURCE = 'aws.bedrock';
/** The EventBridge `detail-type` of batch inference job state changes. */
export const BULK_EVENT_DETAIL_TYPE = 'Batch Inference Job State Change';
/** Batch inference is billed at half the on-demand price of the model. */
export const BULK_PRICE_FACTOR = 0.5;
/** `ItemResult.cache` of results produced by Bedrock batch inference. */
export const BULK_CACHE = 'bulk';
/** Message of items that have no record in the output. */
export const MISSING_MESSAGE = 'missing from the batch output';

/** Statuses that end a batch inference job with its output written. */
export const COMPLETED_STATUSES = ['Completed', 'PartiallyCompleted'] as const;
/** Statuses that end a batch inference job without (full) output. */
export const FAILED_STATUSES = ['Failed', 'Stopped', 'Expired'] as const;
/** The statuses the EventBridge rule should match: the completion handler acts on these. */
export const ACTIONABLE_STATUSES = [...COMPLETED_STATUSES, ...FAILED_STATUSES, 'InProgress'] as const;

/** The `detail` of a "Batch Inference Job State Change" event (Amazon Bedrock user guide sample). */
export interface BatchJobStateChangeDetail {
  readonly version?: string;
  readonly accountId?: string;
  readonly batchJobName?: string;
  readonly batchJobArn?: string;
  readonly batchModelId?: string;
  /** `Submitted`, `Validating`, `Scheduled`, `InProgress`, `Completed`, `PartiallyCompleted`, `Failed`, `Stopping`, `Stopped`, `Expired`. */
  readonly status?: string;
  /** Empty unless the job failed. */
  readonly failureMessage?: string;
  readonly creationTime?: string;
}

/** The EventBridge event, as much of it as is read. */
export interface BatchJobStateChangeEvent {
  readonly 'id'?: string;
  readonly 'source'?: string;
  readonly 'detail-type'?: string;
  readonly 'time'?: string;
  readonly 'resources'?: string[];
  readonly 'detail'?: BatchJobStateChangeDetail;
}

/** Reads the output objects of bulk jobs (S3 in production). Failures are thrown. */
export interface BulkOutputReader {
  /** Keys of every object under `prefix`. */
  list(prefix: string): Promise<string[]>;
  /** The lines of one object, in order (without line terminators). */
  lines(key: string): AsyncIterable<string>;
}

export interface BulkCompletionLogger {
  info(message: string, attributes?: Record<string, unknown>): void;
  warn(message: string, attributes?: Record<string, unknown>): void;
  error(message: string, attributes?: Record<string, unknown>): void;
}

export interface BulkCompletionDeps {
  readonly store: JobStore;
  readonly output: BulkOutputReader;
  readonly metrics: MetricsRecorder;
  readonly logger: BulkCompletionLogger;
  readonly bulk: Pick<BulkRuntimeConfig, 'outputPrefix'>;
  /** The bulk tier (its prices, halved, are the cost). */
  readonly tier: TierRuntimeConfig;
  /** Seconds job results are kept (`JobsRuntimeConfig.resultTtlSeconds`). */
  readonly resultTtlSeconds: number;
  /** Concurrent result writes (default 16). */
  readonly writeConcurrency?: number;
  /** Epoch milliseconds (default `Date.now`). */
  readonly now?: () => number;
}

export type BulkCompletionOutcome =
  /** Not a batch inference state change, or no usable job ARN/status. */
  | 'ignored'
  /** No job of this library has this Bedrock job (another application's, or expired). */
  | 'unknown-job'
  /** `InProgress`: the job was marked started. */
  | 'started'
  /** A status that changes nothing (`Submitted`, `Scheduled`, ...). */
  | 'pending'
  /** `Completed` / `PartiallyCompleted`: results loaded. */
  | 'loaded'
  /** `Failed` / `Stopped` / `Expired`: the job failed as a whole (after loading any output). */
  | 'failed';

export interface BulkCompletionSummary {
  readonly outcome: BulkCompletionOutcome;
  readonly status?: string;
  readonly bulkJobArn?: string;
  readonly tenantId?: string;
  readonly jobId?: string;
  /** Results this event wrote (succeeded or failed, including the items `failBulkJob` failed). */
  readonly written: number;
  /** Results already written by an earlier delivery. */
  readonly duplicates: number;
  /** Output records that answered their item. */
  readonly succeededRecords: number;
  /** Output records with an `error`. */
  readonly errorRecords: number;
  /** Items without a record in the output (failed as missing, or by `failBulkJob`). */
  readonly missing: number;
  /** Output lines that could not be used (not JSON, unknown record id, repeated record). */
  readonly skippedLines: number;
}

interface OutputTally {
  written: number;
  duplicates: number;
  succeededRecords: number;
  errorRecords: number;
  skippedLines: number;
  seen: Set<number>;
  files: number;
}

/** Handles one EventBridge event; see the module documentation. */
export async function handleBulkJobStateChange(event: BatchJobStateChangeEvent, deps: BulkCompletionDeps): Promise<BulkCompletionSummary> {
  const { logger } = deps;
  const none = { written: 0, duplicates: 0, succeededRecords: 0, errorRecords: 0, missing: 0, skippedLines: 0 };
  const detail = event.detail;
  const arn = detail?.batchJobArn;
  const status = detail?.status;
  if (event.source !== BULK_EVENT_SOURCE || event['detail-type'] !== BULK_EVENT_DETAIL_TYPE || typeof arn !== 'string' || !arn || typeof status !== 'string') {
    logger.warn('bulk completion: not a batch inference job state change; ignored', { source: event.source, detailType: event['detail-type'], eventId: event.id });
    return { outcome: 'ignored', ...none };
  }
  const base = { status, bulkJobArn: arn };

  const owner = await deps.store.findBulkJob(arn);
  if (!owner) {
    logger.warn('bulk completion: no job has this batch inference job; ignored', { bulkJobArn: arn, status, batchJobName: detail?.batchJobName });
    return { outcome: 'unknown-job', ...base, ...none };
  }
  const { tenantId, jobId } = owner;
  const ids = { ...base, tenantId, jobId };
  const before = await deps.store.getJob(tenantId, jobId);
  if (!before) {
    logger.warn('bulk completion: the job of this batch inference job no longer exists; ignored', { bulkJobArn: arn, status, jobId });
    return { outcome: 'unknown-job', ...ids, ...none };
  }
  if (before.bulkJobArn !== undefined && before.bulkJobArn !== arn) {
    logger.warn('bulk completion: the job records another batch inference job; ignored', { bulkJobArn: arn, recorded: before.bulkJobArn, jobId });
    return { outcome: 'unknown-job', ...ids, ...none };
  }
  const now = deps.now ?? Date.now;

  const completed = (COMPLETED_STATUSES as readonly string[]).includes(status);
  const failed = (FAILED_STATUSES as readonly string[]).includes(status);
  if (!completed && !failed) {
    if (status === 'InProgress') {
      await deps.store.markStarted(tenantId, jobId, now());
      logger.info('bulk job started', { ...ids });
      return { outcome: 'started', ...ids, ...none };
    }
    return { outcome: 'pending', ...ids, ...none };
  }

  const prefix = bulkOutputPrefix(deps.bulk, tenantId, jobId);
  const keys = await deps.output.list(prefix);
  const outputKeys = keys.filter((k) => k.endsWith('.jsonl.out')).sort();
  const manifestKey = keys.find((k) => k.endsWith('manifest.json.out'));
  if (completed && outputKeys.length === 0) {
    // Bedrock writes the output before it reports the job complete, and S3 reads are strongly
    // consistent: no output means it is not where it should be. Retry rather than fail every item.
    throw new Error(`bulk completion: batch job ${arn} is ${status} but nothing ends in .jsonl.out under ${prefix}`);
  }

  const tally = await loadOutputs(outputKeys, before, deps, now);
  let written = tally.written;
  let duplicates = tally.duplicates;
  let missing = 0;

  if (completed) {
    const results: ItemResult[] = [];
    for (let index = 0; index < before.items; index++) {
      if (tally.seen.has(index)) continue;
      missing++;
      results.push({ index, status: 'failed', tier: deps.tier.id, cache: BULK_CACHE, error: { code: 'missing', message: MISSING_MESSAGE }, completedAt: now() });
    }
    const counts = await writeAll(results, before, deps);
    written += counts.written;
    duplicates += counts.duplicates;
  } else {
    const message = `Bedrock batch inference job ${status}${detail?.failureMessage ? `: ${detail.failureMessage}` : ''}`;
    await deps.store.failBulkJob(tenantId, jobId, message, deps.resultTtlSeconds);
    missing = before.items - tally.seen.size;
  }

  const after = await deps.store.getJob(tenantId, jobId);
  if (failed && after) {
    // failBulkJob reports nothing: this event's writes are the change of the counters (the
    // records loaded above plus the items failBulkJob failed).
    const changed = after.succeeded + after.failed - (before.succeeded + before.failed);
    written = Math.max(written, changed);
  }
  deps.metrics.add(M.RESULTS_WRITTEN, 'Count', written);
  const wasDone = before.succeeded + before.failed >= before.items;
  const isDone = after !== undefined && after.succeeded + after.failed >= after.items;
  if (!wasDone && isDone) {
    const reason = after.failed === 0 ? 'completed' : after.succeeded === 0 ? 'failed' : 'partial';
    deps.metrics.add(M.BULK_JOBS_COMPLETED, 'Count', 1, { [M.DIMENSION_REASON]: reason });
  }

  const summary: BulkCompletionSummary = {
    outcome: completed ? 'loaded' : 'failed',
    ...ids,
    written,
    duplicates,
    succeededRecords: tally.succeededRecords,
    errorRecords: tally.errorRecords,
    missing,
    skippedLines: tally.skippedLines,
  };
  if (manifestKey) await checkManifest(manifestKey, summary, deps);
  logger.info(completed ? 'bulk job results loaded' : 'bulk job failed', {
    ...summary,
    outputFiles: tally.files,
    items: before.items,
    jobSucceeded: after?.succeeded,
    jobFailed: after?.failed,
    redelivered: wasDone,
  });
  return summary;
}

/** Reads every output file and writes the result of each record (bounded concurrency). */
async function loadOutputs(keys: string[], job: JobHeader, deps: BulkCompletionDeps, now: () => number): Promise<OutputTally> {
  const tally: OutputTally = {
    written: 0, duplicates: 0, succeededRecords: 0, errorRecords: 0, skippedLines: 0, seen: new Set(), files: keys.length,
  };
  const batchSize = Math.max(1, deps.writeConcurrency ?? 16) * 8;
  let pending: ItemResult[] = [];
  const flush = async (): Promise<void> => {
    const counts = await writeAll(pending, job, deps);
    tally.written += counts.written;
    tally.duplicates += counts.duplicates;
    pending = [];
  };
  for (const key of keys) {
    let lineNo = 0;
    for await (const line of deps.output.lines(key)) {
      lineNo++;
      if (line.trim() === '') continue;
      const result = toResult(line, job, deps.tier, now);
      if ('skip' in result) {
        tally.skippedLines++;
        deps.logger.warn('bulk completion: output line skipped', { key, line: lineNo, reason: result.skip, jobId: job.jobId });
        continue;
      }
      if (tally.seen.has(result.index)) {
        tally.skippedLines++;
        deps.logger.warn('bulk completion: output line skipped', { key, line: lineNo, reason: `record of item ${result.index} repeated`, jobId: job.jobId });
        continue;
      }
      tally.seen.add(result.index);
      if (result.status === 'succeeded') tally.succeededRecords++;
      else tally.errorRecords++;
      pending.push(result);
      if (pending.length >= batchSize) await flush();
    }
  }
  await flush();
  return tally;
}

/** One output line as an item result, or why it cannot be used. */
function toResult(line: string, job: JobHeader, tier: TierRuntimeConfig, now: () => number): ItemResult | { skip: string } {
  let record: { recordId?: unknown; modelOutput?: unknown; error?: unknown };
  try {
    record = JSON.parse(line) as typeof record;
  } catch {
    return { skip: 'not JSON' };
  }
  if (record === null || typeof record !== 'object') return { skip: 'not a JSON object' };
  const index = itemIndexOfRecordId(record.recordId);
  if (index === undefined) return { skip: `unknown recordId ${JSON.stringify(record.recordId)}` };
  if (index >= job.items) return { skip: `recordId ${String(record.recordId)} is beyond the job's ${job.items} items` };
  const base = { index, tier: tier.id, cache: BULK_CACHE, completedAt: now() };

  if (record.error !== undefined && record.error !== null) {
    const e = record.error as { errorCode?: unknown; errorMessage?: unknown };
    const code = e?.errorCode === undefined || e?.errorCode === null ? 'error' : String(e.errorCode);
    const message = typeof e?.errorMessage === 'string' && e.errorMessage ? e.errorMessage : 'the batch record failed';
    return { ...base, status: 'failed', error: { code, message } };
  }
  const out = record.modelOutput as {
    output?: { message?: { content?: Array<{ text?: unknown }> } };
    usage?: { inputTokens?: unknown; outputTokens?: unknown };
  } | undefined;
  const content = out?.output?.message?.content;
  if (!Array.isArray(content)) {
    return { ...base, status: 'failed', error: { code: 'invalid-output', message: 'the batch output of this record holds no Converse message' } };
  }
  const text = content.map((b) => (typeof b?.text === 'string' ? b.text : '')).join('');
  const usage: TokenUsage = { inputTokens: count(out?.usage?.inputTokens), outputTokens: count(out?.usage?.outputTokens) };
  const costUsd = invocationCostUsd(
    { inputPricePer1k: tier.inputPricePer1k * BULK_PRICE_FACTOR, outputPricePer1k: tier.outputPricePer1k * BULK_PRICE_FACTOR },
    usage,
  );
  return { ...base, status: 'succeeded', output: { text }, usage, costUsd };
}

function count(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : 0;
}

/** Writes results with bounded concurrency; the first failure is thrown once all settled. */
async function writeAll(results: ItemResult[], job: JobHeader, deps: BulkCompletionDeps): Promise<{ written: number; duplicates: number }> {
  let written = 0;
  let duplicates = 0;
  let failure: unknown;
  await mapLimit(results, deps.writeConcurrency ?? 16, async (result) => {
    // After a failure, the writes not started yet are left for the retry of the whole event.
    if (failure !== undefined) return;
    try {
      const outcome = await deps.store.writeResult(job.tenantId, job.jobId, result, deps.resultTtlSeconds);
      if (outcome === 'written') written++;
      else duplicates++;
    } catch (err) {
      failure ??= err;
    }
  });
  if (failure !== undefined) throw failure;
  return { written, duplicates };
}

/** Logs the manifest and warns when its counts disagree with the output that was read. */
async function checkManifest(key: string, summary: BulkCompletionSummary, deps: BulkCompletionDeps): Promise<void> {
  try {
    let text = '';
    for await (const line of deps.output.lines(key)) text += `${line}\n`;
    const manifest = JSON.parse(text) as Record<string, unknown>;
    const attributes = {
      jobId: summary.jobId,
      totalRecordCount: manifest.totalRecordCount,
      processedRecordCount: manifest.processedRecordCount,
      successRecordCount: manifest.successRecordCount,
      errorRecordCount: manifest.errorRecordCount,
      inputTokenCount: manifest.inputTokenCount,
      outputTokenCount: manifest.outputTokenCount,
    };
    if (manifest.successRecordCount !== undefined && manifest.successRecordCount !== summary.succeededRecords) {
      deps.logger.warn('bulk completion: the manifest counts other successes than the output holds', { ...attributes, succeededRecords: summary.succeededRecords });
    } else {
      deps.logger.info('bulk job manifest', attributes);
    }
  } catch (err) {
    deps.logger.warn('bulk completion: manifest.json.out could not be read', { key, error: (err as Error).message });
  }
}
