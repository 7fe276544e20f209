/**
 * A local server speaking the Amazon SQS JSON protocol (AWS JSON 1.0, as AWS SDK v3 clients
 * speak it since 2023), so tests run the real `SQSClient` (serialization, signing, the MD5
 * checks of `@aws-sdk/middleware-sdk-sqs`, error parsing) against it.
 *
 * Wire format (what the SDK sends and expects):
 * - `POST /` with `X-Amz-Target: AmazonSQS.<Operation>`, `Content-Type: application/x-amz-json-1.0`
 *   and `x-amzn-query-mode: true`; the body is the operation's input as JSON
 *   (`{ "QueueUrl", "Entries": [{ "Id", "MessageBody", ... }] }` for SendMessageBatch).
 * - Success: 200 with the output as JSON: SendMessage `{ MessageId, MD5OfMessageBody }`,
 *   SendMessageBatch `{ Successful: [{ Id, MessageId, MD5OfMessageBody }], Failed: [{ Id,
 *   SenderFault, Code, Message }] }`. The MD5 is the hex MD5 of the body: the SDK checks it.
 * - Errors: an HTTP status, a `{ "__type": "com.amazonaws.sqs#<Name>", "message" }` body and the
 *   `x-amzn-query-error: <QueryCode>;<Sender|Receiver>` header that query-compatible clients read.
 *
 * Implemented: SendMessage and SendMessageBatch (with the service's validation of batch
 * requests: 1-10 entries, distinct well-formed ids, the 1 MiB size limits), on queues created with
 * {@link LocalSqsServer.createQueue}; everything is recorded. Failures can be injected: whole calls
 * ({@link LocalSqsServer.failNextCalls}) or single batch entries ({@link LocalSqsServer.failEntries}).
 * {@link LocalSqsServer.lambdaEvent} turns sent messages into the SQS event Lambda would deliver.
 *
 * The queues also hold their messages, for tests that run a consumer the way Lambda's event
 * source mapping does: ReceiveMessage (`{ Messages: [{ MessageId, ReceiptHandle, MD5OfBody, Body,
 * Attributes }] }`; a received message is invisible until its visibility timeout passes, and its
 * `ApproximateReceiveCount` grows with each receive), DeleteMessage and DeleteMessageBatch (by
 * receipt handle; a stale handle of a message received again is ignored, as SQS does once the
 * handle's receive is over). A queue created with a redrive policy moves a message to its
 * dead-letter queue instead of receiving it a `maxReceiveCount + 1`-th time, as SQS does. Time is
 * the test's: {@link LocalSqsServer.elapseVisibilityTimeout} makes the received messages visible again.
 */
import { createHash, randomUUID } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { SQSEvent, SQSRecord } from 'aws-lambda';

const ACCOUNT = '111122223333';
/** Largest message, and largest batch (sum of bodies), SQS accepts. */
const MAX_BYTES = 1024 * 1024;

export interface SentMessage {
  readonly queueUrl: string;
  readonly messageId: string;
  readonly body: string;
  readonly md5OfBody: string;
  /** Epoch milliseconds. */
  readonly sentAt: number;
  /** The operation that sent it. */
  readonly via: 'SendMessage' | 'SendMessageBatch';
}

/** A queue's redrive policy: after `maxReceiveCount` receives a message goes to the dead-letter queue. */
export interface RedrivePolicy {
  readonly deadLetterQueueUrl: string;
  readonly maxReceiveCount: number;
}

/** A message a queue holds (sent and not yet deleted). */
interface StoredMessage {
  readonly message: SentMessage;
  receiveCount: number;
  firstReceivedAt?: number;
  /** Receipt handle of the latest receive; undefined until received. */
  receiptHandle?: string;
  /** Invisible (in flight) until it is made visible again. */
  inFlight: boolean;
}

export interface RecordedSqsCall {
  readonly operation: string;
  readonly body: unknown;
  readonly headers: Record<string, string>;
  /** How it was answered: `ok`, or the error name. */
  outcome: string;
}

/** An error of a whole call. */
export interface SqsCallError {
  readonly status: number;
  /** Shape name (`__type` after `com.amazonaws.sqs#`), e.g. `InternalError`, `QueueDoesNotExist`. */
  readonly name: string;
  /** The query-compatible code of `x-amzn-query-error` (defaults to `name`). */
  readonly queryCode?: string;
  readonly message?: string;
}

/** The failure of one batch entry, as SendMessageBatch reports it in `Failed`. */
export interface EntryFailure {
  readonly code: string;
  readonly senderFault: boolean;
  readonly message?: string;
}

export const SqsErrors = {
  /** A server-side error of the whole call (the SDK retries it). */
  internal: (): SqsCallError => ({ status: 500, name: 'InternalError', queryCode: 'InternalError', message: 'We encountered an internal error. Please try again.' }),
  /** The service is unavailable (the SDK retries it). */
  unavailable: (): SqsCallError => ({ status: 503, name: 'ServiceUnavailable', queryCode: 'ServiceUnavailable', message: 'Service is unavailable.' }),
  /** Access denied (not retried). */
  accessDenied: (): SqsCallError => ({ status: 400, name: 'AccessDeniedException', queryCode: 'AccessDenied', message: 'User is not authorized to perform sqs:SendMessage' }),
};

export const EntryFailures = {
  /** A transient failure of one entry: worth sending again. */
  internal: (): EntryFailure => ({ code: 'InternalError', senderFault: false, message: 'We encountered an internal error. Please try again.' }),
  /** A refusal of one entry: the sender's fault, a retry fails the same way. */
  invalid: (): EntryFailure => ({ code: 'InvalidMessageContents', senderFault: true, message: 'Invalid characters found.' }),
};

export class LocalSqsServer {
  static async start(options: { region?: string } = {}): Promise<LocalSqsServer> {
    const server = new LocalSqsServer(options.region ?? 'us-east-1');
    await new Promise<void>((resolve, reject) => {
      server.http.once('error', reject);
      server.http.listen(0, '127.0.0.1', () => resolve());
    });
    return server;
  }

  /** Every call, in arrival order. */
  readonly calls: RecordedSqsCall[] = [];
  /** Every message accepted, in order. */
  readonly sent: SentMessage[] = [];

  private readonly http: http.Server;
  private readonly queues = new Set<string>();
  /** What each queue holds, in order of arrival. */
  private readonly held = new Map<string, StoredMessage[]>();
  private readonly redrive = new Map<string, RedrivePolicy>();
  private readonly callFailures: SqsCallError[] = [];
  private entryFailure?: (entry: { id: string; body: string }) => EntryFailure | undefined;

  private constructor(readonly region: string) {
    this.http = http.createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        if (!res.writableEnded) this.sendError(res, { status: 500, name: 'InternalError', message: `local server error: ${String(err)}` });
      });
    });
  }

  get url(): string {
    return `http://127.0.0.1:${(this.http.address() as AddressInfo).port}`;
  }

  /** Creates a queue; returns its URL (`<url>/<account>/<name>`, as SQS's own URLs are shaped). */
  createQueue(name: string, options: { redrive?: RedrivePolicy } = {}): string {
    const queueUrl = `${this.url}/${ACCOUNT}/${name}`;
    this.queues.add(queueUrl);
    this.held.set(queueUrl, []);
    if (options.redrive) this.redrive.set(queueUrl, options.redrive);
    return queueUrl;
  }

  /** The messages a queue holds (visible or in flight), with how often each was received. */
  queueContents(queueUrl: string): Array<{ body: string; messageId: string; receiveCount: number; inFlight: boolean }> {
    return (this.held.get(queueUrl) ?? []).map((m) => ({
      body: m.message.body,
      messageId: m.message.messageId,
      receiveCount: m.receiveCount,
      inFlight: m.inFlight,
    }));
  }

  /** Makes every message received from the queue and not deleted visible again (its visibility timeout passed). */
  elapseVisibilityTimeout(queueUrl: string): void {
    for (const m of this.held.get(queueUrl) ?? []) m.inFlight = false;
  }

  /** Environment that points SDK clients at this server (the SQS endpoint variable). */
  env(): Record<string, string> {
    return { AWS_ENDPOINT_URL_SQS: this.url };
  }

  /** Makes the next `times` calls (any operation) fail as a whole. */
  failNextCalls(error: SqsCallError, times = 1): void {
    for (let i = 0; i < times; i++) this.callFailures.push(error);
  }

  /** Fails the batch entries for which `decide` returns a failure (until reset). */
  failEntries(decide: (entry: { id: string; body: string }) => EntryFailure | undefined): void {
    this.entryFailure = decide;
  }

  /** Messages sent to one queue (all queues when absent). */
  messages(queueUrl?: string): SentMessage[] {
    return this.sent.filter((m) => queueUrl === undefined || m.queueUrl === queueUrl);
  }

  /** Forgets calls, messages and injected failures (queues stay). */
  reset(): void {
    this.calls.length = 0;
    this.sent.length = 0;
    for (const messages of this.held.values()) messages.length = 0;
    this.callFailures.length = 0;
    this.entryFailure = undefined;
  }

  /** The SQS event the Lambda event source mapping would deliver for these messages. */
  lambdaEvent(messages: SentMessage[], receiveCount = 1): SQSEvent {
    return { Records: messages.map((m) => this.lambdaRecord(m, receiveCount)) };
  }

  /** One record of an SQS event (`ApproximateReceiveCount` = `receiveCount`). */
  lambdaRecord(m: SentMessage, receiveCount = 1): SQSRecord {
    const name = m.queueUrl.split('/').pop() ?? 'queue';
    return {
      messageId: m.messageId,
      receiptHandle: Buffer.from(`${m.messageId}:${receiveCount}`).toString('base64'),
      body: m.body,
      attributes: {
        ApproximateReceiveCount: String(receiveCount),
        SentTimestamp: String(m.sentAt),
        SenderId: 'AROALOCALTEST:jobs-api',
        ApproximateFirstReceiveTimestamp: String(m.sentAt + 1),
      },
      messageAttributes: {},
      md5OfBody: m.md5OfBody,
      eventSource: 'aws:sqs',
      eventSourceARN: `arn:aws:sqs:${this.region}:${ACCOUNT}:${name}`,
      awsRegion: this.region,
    };
  }

  async close(): Promise<void> {
    this.http.closeAllConnections();
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    const target = String(req.headers['x-amz-target'] ?? '');
    const operation = target.startsWith('AmazonSQS.') ? target.slice('AmazonSQS.'.length) : target;
    let body: unknown;
    try {
      body = JSON.parse(raw || '{}');
    } catch {
      body = undefined;
    }
    const call: RecordedSqsCall = {
      operation,
      body,
      headers: Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)])),
      outcome: 'ok',
    };
    this.calls.push(call);
    const fail = (error: SqsCallError): void => {
      call.outcome = error.name;
      this.sendError(res, error);
    };

    if (req.method !== 'POST' || !target.startsWith('AmazonSQS.')) {
      return fail({ status: 400, name: 'UnknownOperationException', message: `no such operation: ${req.method} ${req.url} (${target || 'no X-Amz-Target'})` });
    }
    if (!String(req.headers['content-type'] ?? '').startsWith('application/x-amz-json-1.0')) {
      return fail({ status: 400, name: 'InvalidParameterValue', message: 'Content-Type must be application/x-amz-json-1.0' });
    }
    if (body === undefined || typeof body !== 'object' || body === null) {
      return fail({ status: 400, name: 'InvalidParameterValue', message: 'the request body is not a JSON object' });
    }
    const injected = this.callFailures.shift();
    if (injected) return fail(injected);

    const input = body as { QueueUrl?: unknown; MessageBody?: unknown; Entries?: unknown };
    if (typeof input.QueueUrl !== 'string' || !this.queues.has(input.QueueUrl)) {
      return fail({ status: 400, name: 'QueueDoesNotExist', queryCode: 'AWS.SimpleQueueService.NonExistentQueue', message: 'The specified queue does not exist.' });
    }
    switch (operation) {
      case 'SendMessage': {
        if (typeof input.MessageBody !== 'string' || input.MessageBody.length === 0) {
          return fail({ status: 400, name: 'MissingParameter', message: 'The request must contain the parameter MessageBody.' });
        }
        if (Buffer.byteLength(input.MessageBody, 'utf8') > MAX_BYTES) {
          return fail({ status: 400, name: 'InvalidParameterValue', message: `One or more parameters are invalid. Reason: Message must be shorter than ${MAX_BYTES} bytes.` });
        }
        const m = this.accept(input.QueueUrl, input.MessageBody, 'SendMessage');
        return this.send(res, { MessageId: m.messageId, MD5OfMessageBody: m.md5OfBody });
      }
      case 'SendMessageBatch':
        return this.sendMessageBatch(res, input.QueueUrl, input.Entries, fail);
      case 'ReceiveMessage':
        return this.receiveMessage(res, input.QueueUrl, body as { MaxNumberOfMessages?: unknown });
      case 'DeleteMessage': {
        const handle = (body as { ReceiptHandle?: unknown }).ReceiptHandle;
        if (typeof handle !== 'string' || handle === '') {
          return fail({ status: 400, name: 'MissingParameter', message: 'The request must contain the parameter ReceiptHandle.' });
        }
        this.deleteByHandle(input.QueueUrl, handle);
        return this.send(res, {});
      }
      case 'DeleteMessageBatch': {
        const entries = (body as { Entries?: unknown }).Entries;
        if (!Array.isArray(entries) || entries.length === 0 || entries.length > 10) {
          return fail({ status: 400, name: 'EmptyBatchRequest', queryCode: 'AWS.SimpleQueueService.EmptyBatchRequest', message: 'There should be 1 to 10 DeleteMessageBatchRequestEntry in the request.' });
        }
        const Successful: Array<{ Id: string }> = [];
        for (const e of entries as Array<{ Id?: unknown; ReceiptHandle?: unknown }>) {
          if (typeof e.ReceiptHandle === 'string') this.deleteByHandle(input.QueueUrl, e.ReceiptHandle);
          Successful.push({ Id: String(e.Id) });
        }
        return this.send(res, { Successful, Failed: [] });
      }
      default:
        return fail({ status: 400, name: 'UnknownOperationException', message: `operation ${operation} is not implemented by the local server` });
    }
  }

  private sendMessageBatch(res: http.ServerResponse, queueUrl: string, raw: unknown, fail: (e: SqsCallError) => void): void {
    if (!Array.isArray(raw) || raw.length === 0) {
      return fail({ status: 400, name: 'EmptyBatchRequest', queryCode: 'AWS.SimpleQueueService.EmptyBatchRequest', message: 'There should be at least one SendMessageBatchRequestEntry in the request.' });
    }
    if (raw.length > 10) {
      return fail({ status: 400, name: 'TooManyEntriesInBatchRequest', queryCode: 'AWS.SimpleQueueService.TooManyEntriesInBatchRequest', message: `Maximum number of entries per request are 10. You have sent ${raw.length}.` });
    }
    const entries = raw as Array<{ Id?: unknown; MessageBody?: unknown }>;
    const ids = new Set<string>();
    let total = 0;
    for (const e of entries) {
      if (typeof e.Id !== 'string' || !/^[A-Za-z0-9_-]{1,80}$/.test(e.Id)) {
        return fail({ status: 400, name: 'InvalidBatchEntryId', queryCode: 'AWS.SimpleQueueService.InvalidBatchEntryId', message: 'A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long.' });
      }
      if (ids.has(e.Id)) {
        return fail({ status: 400, name: 'BatchEntryIdsNotDistinct', queryCode: 'AWS.SimpleQueueService.BatchEntryIdsNotDistinct', message: `Id ${e.Id} repeated.` });
      }
      ids.add(e.Id);
      total += Buffer.byteLength(typeof e.MessageBody === 'string' ? e.MessageBody : '', 'utf8');
    }
    if (total > MAX_BYTES) {
      return fail({ status: 400, name: 'BatchRequestTooLong', queryCode: 'AWS.SimpleQueueService.BatchRequestTooLong', message: `Batch requests cannot be longer than ${MAX_BYTES} bytes. You have sent ${total} bytes.` });
    }
    const Successful: Array<{ Id: string; MessageId: string; MD5OfMessageBody: string }> = [];
    const Failed: Array<{ Id: string; SenderFault: boolean; Code: string; Message?: string }> = [];
    for (const e of entries) {
      const id = e.Id as string;
      if (typeof e.MessageBody !== 'string' || e.MessageBody.length === 0) {
        Failed.push({ Id: id, SenderFault: true, Code: 'MissingParameter', Message: 'The request must contain the parameter MessageBody.' });
        continue;
      }
      const injected = this.entryFailure?.({ id, body: e.MessageBody });
      if (injected) {
        Failed.push({ Id: id, SenderFault: injected.senderFault, Code: injected.code, Message: injected.message });
        continue;
      }
      const m = this.accept(queueUrl, e.MessageBody, 'SendMessageBatch');
      Successful.push({ Id: id, MessageId: m.messageId, MD5OfMessageBody: m.md5OfBody });
    }
    this.send(res, { Successful, Failed });
  }

  private accept(queueUrl: string, body: string, via: SentMessage['via']): SentMessage {
    const m: SentMessage = { queueUrl, messageId: randomUUID(), body, md5OfBody: createHash('md5').update(body, 'utf8').digest('hex'), sentAt: Date.now(), via };
    this.sent.push(m);
    this.held.get(queueUrl)?.push({ message: m, receiveCount: 0, inFlight: false });
    return m;
  }

  /**
   * Up to `MaxNumberOfMessages` (1-10, default 1) visible messages, oldest first, each made
   * invisible. A message already received `maxReceiveCount` times is moved to the dead-letter
   * queue instead (SQS's redrive), keeping its id and body.
   */
  private receiveMessage(res: http.ServerResponse, queueUrl: string, input: { MaxNumberOfMessages?: unknown }): void {
    const max = Math.min(10, Math.max(1, typeof input.MaxNumberOfMessages === 'number' ? input.MaxNumberOfMessages : 1));
    const messages = this.held.get(queueUrl) ?? [];
    const policy = this.redrive.get(queueUrl);
    const out: Array<Record<string, unknown>> = [];
    for (const stored of [...messages]) {
      if (out.length >= max) break;
      if (stored.inFlight) continue;
      if (policy && stored.receiveCount >= policy.maxReceiveCount) {
        messages.splice(messages.indexOf(stored), 1);
        const moved: SentMessage = { ...stored.message, queueUrl: policy.deadLetterQueueUrl };
        this.held.get(policy.deadLetterQueueUrl)?.push({ message: moved, receiveCount: 0, inFlight: false });
        continue;
      }
      const now = Date.now();
      stored.receiveCount++;
      stored.firstReceivedAt ??= now;
      stored.inFlight = true;
      stored.receiptHandle = Buffer.from(`${stored.message.messageId}:${stored.receiveCount}:${randomUUID()}`).toString('base64');
      out.push({
        MessageId: stored.message.messageId,
        ReceiptHandle: stored.receiptHandle,
        MD5OfBody: stored.message.md5OfBody,
        Body: stored.message.body,
        Attributes: {
          ApproximateReceiveCount: String(stored.receiveCount),
          SentTimestamp: String(stored.message.sentAt),
          ApproximateFirstReceiveTimestamp: String(stored.firstReceivedAt),
          SenderId: 'AROALOCALTEST:jobs-api',
        },
      });
    }
    this.send(res, out.length > 0 ? { Messages: out } : {});
  }

  /** Deletes the message whose latest receive gave `handle` (a stale or unknown handle deletes nothing). */
  private deleteByHandle(queueUrl: string, handle: string): void {
    const messages = this.held.get(queueUrl) ?? [];
    const i = messages.findIndex((m) => m.receiptHandle === handle);
    if (i >= 0) messages.splice(i, 1);
  }

  private send(res: http.ServerResponse, body: unknown): void {
    if (res.writableEnded) return;
    res.statusCode = 200;
    res.setHeader('content-type', 'application/x-amz-json-1.0');
    res.setHeader('x-amzn-requestid', randomUUID());
    res.end(JSON.stringify(body));
  }

  private sendError(res: http.ServerResponse, error: SqsCallError): void {
    if (res.writableEnded) return;
    res.statusCode = error.status;
    res.setHeader('content-type', 'application/x-amz-json-1.0');
    res.setHeader('x-amzn-requestid', randomUUID());
    res.setHeader('x-amzn-query-error', `${error.queryCode ?? error.name};${error.status >= 500 ? 'Receiver' : 'Sender'}`);
    res.end(JSON.stringify({ __type: `com.amazonaws.sqs#${error.name}`, message: error.message ?? error.name }));
  }
}
