/**
 * The asynchronous path: a job is one or more chat requests submitted to `POST /v1/jobs`,
 * answered later by the batch worker (through SQS) or by Bedrock batch inference (bulk mode),
 * and read with `GET /v1/jobs/{id}`. Types and ports shared by the jobs API, the batch worker and
 * the bulk completion handler.
 */
import type { TokenUsage } from '../cost';

export type JobStatus = 'queued' | 'running' | 'succeeded' | 'failed';

/** `queue`: answered by the batch worker through SQS. `bulk`: Bedrock batch inference. */
export type JobMode = 'queue' | 'bulk';

/** The summary of a job, as stored. Its status is derived from the counters (see {@link jobStatus}). */
export interface JobHeader {
  readonly jobId: string;
  readonly tenantId: string;
  readonly userId?: string;
  readonly mode: JobMode;
  /** Requests in the job. */
  readonly items: number;
  /** Items answered. */
  readonly succeeded: number;
  /** Items that failed for good. */
  readonly failed: number;
  /** Epoch milliseconds. */
  readonly createdAt: number;
  /** Epoch milliseconds when a worker (or Bedrock) started on the job. */
  readonly startedAt?: number;
  /** ARN of the Bedrock batch inference job (bulk mode). */
  readonly bulkJobArn?: string;
  /** Why a bulk job failed as a whole. */
  readonly failureMessage?: string;
}

/** The outcome of one request of a job. */
export interface ItemResult {
  readonly index: number;
  readonly status: 'succeeded' | 'failed';
  readonly output?: { readonly text: string };
  /** Tier that answered; undefined when a cache did. */
  readonly tier?: string;
  /** `static`, `exact`, `semantic`, `miss` (a model answered) or `bulk`. */
  readonly cache?: string;
  readonly usage?: TokenUsage;
  readonly costUsd?: number;
  readonly error?: { readonly code: string; readonly message: string };
  /** Epoch milliseconds. */
  readonly completedAt: number;
}

/** A job's status: derived from its counters, so it can never disagree with them. */
export function jobStatus(header: Pick<JobHeader, 'items' | 'succeeded' | 'failed' | 'startedAt'>): JobStatus {
  if (header.succeeded + header.failed >= header.items) return header.failed > 0 ? 'failed' : 'succeeded';
  if (header.startedAt !== undefined || header.succeeded + header.failed > 0) return 'running';
  return 'queued';
}

/** The SQS message of one request of a queued job. */
export interface JobMessage {
  readonly v: 1;
  readonly jobId: string;
  readonly tenantId: string;
  readonly userId?: string;
  readonly index: number;
  /** The request body as submitted (already validated by the jobs API). */
  readonly request: unknown;
}

/** Where jobs and their results live (the DynamoDB results table in production). */
export interface JobStore {
  /** Stores a new job; fails if the id exists. */
  createJob(header: JobHeader, ttlSeconds: number): Promise<void>;
  /** The job of this tenant with this id, or undefined (another tenant's job is undefined too). */
  getJob(tenantId: string, jobId: string): Promise<JobHeader | undefined>;
  /** A page of the job's item results, in index order. */
  listResults(tenantId: string, jobId: string, limit: number, cursor?: string): Promise<{ results: ItemResult[]; nextCursor?: string }>;
  /** Records that work on the job started (idempotent). */
  markStarted(tenantId: string, jobId: string, at: number): Promise<void>;
  /**
   * Whether the item already has a result (read consistently, so a result written by an earlier
   * receive of the same message is seen). Lets the worker skip a redelivered message without
   * answering it again.
   */
  hasResult(tenantId: string, jobId: string, index: number): Promise<boolean>;
  /**
   * Writes one item's result and counts it in the job, atomically and at most once: a result
   * already written for that item is left as is (`duplicate`).
   */
  writeResult(tenantId: string, jobId: string, result: ItemResult, ttlSeconds: number): Promise<'written' | 'duplicate'>;
  /** Records the Bedrock batch job of a bulk job, so its completion event finds the job. */
  recordBulkJob(tenantId: string, jobId: string, bulkJobArn: string, ttlSeconds: number): Promise<void>;
  /** The job a Bedrock batch job belongs to. */
  findBulkJob(bulkJobArn: string): Promise<{ tenantId: string; jobId: string } | undefined>;
  /** Marks a bulk job failed as a whole: every item without a result fails with `message`. */
  failBulkJob(tenantId: string, jobId: string, message: string, ttlSeconds: number): Promise<void>;
}

/** Where queued jobs wait for the worker (SQS in production). */
export interface JobQueue {
  enqueue(messages: JobMessage[]): Promise<void>;
}

/** Submits a bulk job to Bedrock batch inference (S3 JSONL + CreateModelInvocationJob). */
export interface BulkSubmitter {
  submit(job: { tenantId: string; jobId: string; requests: unknown[] }): Promise<{ bulkJobArn: string }>;
}
