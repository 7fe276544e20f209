import { SendMessageBatchCommand, SQSClient, type BatchResultErrorEntry, type SendMessageBatchRequestEntry } from '@aws-sdk/client-sqs';
import { traced } from './powertools-tracing';
import type { JobMessage, JobQueue } from '../core/jobs/job-model';
import { mapLimit } from '../core/map-limit';

/** Entries per SendMessageBatch (the SQS maximum). */
const ENTRIES_PER_BATCH = 10;
/**
 * Bytes of message bodies per SendMessageBatch. SQS accepts 1 MiB per batch on queues that allow
 * 1 MiB messages; 256 KiB also fits queues that keep the former default maximum.
 */
const BYTES_PER_BATCH = 256 * 1024;

export interface SqsJobQueueOptions {
  /** Rounds of SendMessageBatch per chunk (entries SQS reports failed, not by the sender's fault, are sent again). @default 4 */
  readonly maxAttempts?: number;
  /** Chunks sent at once. @default 8 */
  readonly concurrency?: number;
  /** Base of the exponential backoff between rounds, in milliseconds. @default 50 */
  readonly backoffMs?: number;
}

/** A failed enqueue: which messages (by item index) did not reach the queue, and why. */
export class EnqueueError extends Error {
  constructor(
    message: string,
    readonly failedIndexes: number[],
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'EnqueueError';
  }
}

/**
 * Enqueues job messages with SendMessageBatch, in chunks of at most 10 entries (and 256 KiB).
 * Entries that SQS reports failed are sent again (with backoff) unless SQS says the sender is at
 * fault (a retry would fail the same way); the SDK itself retries calls that fail as a whole.
 * Throws {@link EnqueueError} if any message is left unsent: the caller marks the job failed.
 */
export class SqsJobQueue implements JobQueue {
  private readonly maxAttempts: number;
  private readonly concurrency: number;
  private readonly backoffMs: number;

  constructor(
    private readonly queueUrl: string,
    private readonly client: SQSClient = traced(new SQSClient({})),
    options: SqsJobQueueOptions = {},
  ) {
    this.maxAttempts = Math.max(1, options.maxAttempts ?? 4);
    this.concurrency = Math.max(1, options.concurrency ?? 8);
    this.backoffMs = Math.max(0, options.backoffMs ?? 50);
  }

  async enqueue(messages: JobMessage[]): Promise<void> {
    const chunks = chunk(messages.map((m) => ({ Id: `m${m.index}`, MessageBody: messageBody(m), index: m.index })));
    const failures: Array<{ indexes: number[]; error: unknown }> = [];
    await mapLimit(chunks, this.concurrency, async (entries) => {
      try {
        await this.sendChunk(entries);
      } catch (error) {
        failures.push({ indexes: error instanceof EnqueueError ? error.failedIndexes : entries.map((e) => e.index), error });
      }
    });
    if (failures.length > 0) {
      const failed = failures.flatMap((f) => f.indexes).sort((a, b) => a - b);
      const reason = failures[0].error instanceof Error ? failures[0].error.message : String(failures[0].error);
      throw new EnqueueError(`${failed.length} of ${messages.length} job messages could not be sent to the queue: ${reason}`, failed, { cause: failures[0].error });
    }
  }

  private async sendChunk(entries: Array<SendMessageBatchRequestEntry & { index: number }>): Promise<void> {
    let pending = entries;
    let lastFailures: BatchResultErrorEntry[] = [];
    for (let attempt = 1; pending.length > 0; attempt++) {
      if (attempt > 1) await new Promise((r) => setTimeout(r, this.backoffMs * 2 ** (attempt - 2) * (0.5 + Math.random())));
      const out = await this.client.send(
        new SendMessageBatchCommand({ QueueUrl: this.queueUrl, Entries: pending.map(({ Id, MessageBody }) => ({ Id, MessageBody })) }),
      );
      lastFailures = out.Failed ?? [];
      const failedIds = new Set(lastFailures.map((f) => f.Id));
      const senderFault = lastFailures.filter((f) => f.SenderFault);
      if (senderFault.length > 0) {
        const ids = new Set(senderFault.map((f) => f.Id));
        throw new EnqueueError(
          `SQS refused ${senderFault.length} message(s): ${senderFault[0].Code}: ${senderFault[0].Message ?? ''}`.trim(),
          // Whatever else failed in this round is unsent too.
          pending.filter((e) => ids.has(e.Id) || failedIds.has(e.Id)).map((e) => e.index),
        );
      }
      pending = pending.filter((e) => failedIds.has(e.Id));
      if (pending.length > 0 && attempt >= this.maxAttempts) {
        const f = lastFailures[0];
        throw new EnqueueError(`SQS failed ${pending.length} message(s) ${attempt} times: ${f?.Code}: ${f?.Message ?? ''}`.trim(), pending.map((e) => e.index));
      }
    }
  }
}

/**
 * The JSON of a message in the characters SQS accepts in a body (#x9, #xA, #xD, #x20-#xD7FF,
 * #xE000-#xFFFD, #x10000-#x10FFFF; it refuses a body with any other as InvalidMessageContents).
 * JSON.stringify already escapes the control characters and lone surrogates; the non-characters
 * U+FFFE and U+FFFF, valid in a request, are escaped here too, so the body parses back the same.
 */
function messageBody(message: JobMessage): string {
  return JSON.stringify(message).replace(/[\ufffe\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16)}`);
}

function chunk<T extends { MessageBody?: string }>(entries: T[]): T[][] {
  const chunks: T[][] = [];
  let current: T[] = [];
  let bytes = 0;
  for (const entry of entries) {
    const size = Buffer.byteLength(entry.MessageBody ?? '', 'utf8');
    if (current.length > 0 && (current.length >= ENTRIES_PER_BATCH || bytes + size > BYTES_PER_BATCH)) {
      chunks.push(current);
      current = [];
      bytes = 0;
    }
    current.push(entry);
    bytes += size;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}
