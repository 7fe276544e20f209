/**
 * A Map-backed {@link JobStore} for the bulk tests, with the contract of job-model.ts enforced:
 * `writeResult` writes an item at most once (a second write is `duplicate` and changes nothing),
 * counts it in the job, and refuses indexes outside the job; `failBulkJob` fails every item without
 * a result. Every call is recorded, and failures can be injected.
 */
import type { ItemResult, JobHeader, JobStore } from '../../lambdas/core/jobs/job-model';

interface StoredJob {
  header: JobHeader;
  results: Map<number, ItemResult>;
  ttlSeconds: number;
}

export class MemoryJobStore implements JobStore {
  readonly calls: Array<{ method: string; args: unknown[] }> = [];
  private readonly jobs = new Map<string, StoredJob>();
  private readonly bulk = new Map<string, { tenantId: string; jobId: string }>();
  /** When set, every writeResult throws it (DynamoDB unavailable). */
  writeFailure: Error | undefined;
  /** writeResult calls that succeed before {@link writeFailure} applies (default 0). */
  writesBeforeFailure = 0;

  private key(tenantId: string, jobId: string): string {
    return `${tenantId}\u0000${jobId}`;
  }

  private job(tenantId: string, jobId: string): StoredJob {
    const job = this.jobs.get(this.key(tenantId, jobId));
    if (!job) throw new Error(`no job ${tenantId}/${jobId}`);
    return job;
  }

  async createJob(header: JobHeader, ttlSeconds: number): Promise<void> {
    this.calls.push({ method: 'createJob', args: [header, ttlSeconds] });
    const key = this.key(header.tenantId, header.jobId);
    if (this.jobs.has(key)) throw new Error(`job ${header.jobId} exists`);
    this.jobs.set(key, { header: { ...header }, results: new Map(), ttlSeconds });
  }

  async getJob(tenantId: string, jobId: string): Promise<JobHeader | undefined> {
    const job = this.jobs.get(this.key(tenantId, jobId));
    return job && { ...job.header };
  }

  async listResults(tenantId: string, jobId: string, limit: number, cursor?: string): Promise<{ results: ItemResult[]; nextCursor?: string }> {
    const job = this.jobs.get(this.key(tenantId, jobId));
    if (!job) return { results: [] };
    const all = [...job.results.values()].sort((a, b) => a.index - b.index);
    const start = cursor === undefined ? 0 : Number(cursor);
    const page = all.slice(start, start + limit);
    return { results: page, nextCursor: start + limit < all.length ? String(start + limit) : undefined };
  }

  async markStarted(tenantId: string, jobId: string, at: number): Promise<void> {
    this.calls.push({ method: 'markStarted', args: [tenantId, jobId, at] });
    const job = this.job(tenantId, jobId);
    if (job.header.startedAt === undefined) job.header = { ...job.header, startedAt: at };
  }

  async hasResult(tenantId: string, jobId: string, index: number): Promise<boolean> {
    this.calls.push({ method: 'hasResult', args: [tenantId, jobId, index] });
    return this.jobs.get(this.key(tenantId, jobId))?.results.has(index) ?? false;
  }

  async writeResult(tenantId: string, jobId: string, result: ItemResult, ttlSeconds: number): Promise<'written' | 'duplicate'> {
    this.calls.push({ method: 'writeResult', args: [tenantId, jobId, result, ttlSeconds] });
    if (this.writeFailure) {
      if (this.writesBeforeFailure <= 0) throw this.writeFailure;
      this.writesBeforeFailure--;
    }
    const job = this.job(tenantId, jobId);
    if (!Number.isInteger(result.index) || result.index < 0 || result.index >= job.header.items) {
      throw new Error(`item ${result.index} is outside job ${jobId} of ${job.header.items} items`);
    }
    if (job.results.has(result.index)) return 'duplicate';
    job.results.set(result.index, result);
    job.header = {
      ...job.header,
      succeeded: job.header.succeeded + (result.status === 'succeeded' ? 1 : 0),
      failed: job.header.failed + (result.status === 'failed' ? 1 : 0),
    };
    return 'written';
  }

  async recordBulkJob(tenantId: string, jobId: string, bulkJobArn: string, ttlSeconds: number): Promise<void> {
    this.calls.push({ method: 'recordBulkJob', args: [tenantId, jobId, bulkJobArn, ttlSeconds] });
    const job = this.job(tenantId, jobId);
    job.header = { ...job.header, bulkJobArn };
    this.bulk.set(bulkJobArn, { tenantId, jobId });
  }

  async findBulkJob(bulkJobArn: string): Promise<{ tenantId: string; jobId: string } | undefined> {
    this.calls.push({ method: 'findBulkJob', args: [bulkJobArn] });
    const found = this.bulk.get(bulkJobArn);
    return found && { ...found };
  }

  async failBulkJob(tenantId: string, jobId: string, message: string, ttlSeconds: number): Promise<void> {
    this.calls.push({ method: 'failBulkJob', args: [tenantId, jobId, message, ttlSeconds] });
    const job = this.job(tenantId, jobId);
    let failed = 0;
    for (let index = 0; index < job.header.items; index++) {
      if (job.results.has(index)) continue;
      job.results.set(index, { index, status: 'failed', error: { code: 'bulk-failed', message }, completedAt: Date.now() });
      failed++;
    }
    job.header = { ...job.header, failed: job.header.failed + failed, failureMessage: job.header.failureMessage ?? message };
  }

  /** Every result of a job, by index. */
  results(tenantId: string, jobId: string): Map<number, ItemResult> {
    return new Map(this.job(tenantId, jobId).results);
  }
}
