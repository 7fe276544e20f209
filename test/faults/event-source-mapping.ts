/**
 * What Lambda's SQS event source mapping does with `ReportBatchItemFailures`, over the real SQS
 * client against the local SQS server: receive a batch, invoke the function with it, delete the
 * records it did not report as failed; the reported ones (or all, when the invocation throws or
 * answers something that is not a batch response) stay on the queue and come back once their
 * visibility timeout has passed.
 */
import { DeleteMessageBatchCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';

const ACCOUNT = '111122223333';

export interface PollResult {
  /** Message ids delivered in the batch. */
  readonly delivered: string[];
  /** Message ids the function reported failed (left on the queue). */
  readonly failed: string[];
  /** ApproximateReceiveCount of each delivered message, by id. */
  readonly receiveCounts: Record<string, number>;
}

export class EventSourceMapping {
  private readonly sqs: SQSClient;

  constructor(
    endpoint: string,
    private readonly queueUrl: string,
    private readonly invoke: (event: SQSEvent, context: Context) => Promise<SQSBatchResponse>,
    private readonly context: () => Context,
    private readonly batchSize = 10,
  ) {
    this.sqs = new SQSClient({
      endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'AKIDLOCALTEST', secretAccessKey: 'local-test-secret' },
      maxAttempts: 1,
    });
  }

  /** One receive and invocation; undefined when the queue had nothing visible. */
  async pollOnce(): Promise<PollResult | undefined> {
    const received = await this.sqs.send(new ReceiveMessageCommand({
      QueueUrl: this.queueUrl,
      MaxNumberOfMessages: this.batchSize,
      MessageSystemAttributeNames: ['All'],
    }));
    const messages = received.Messages ?? [];
    if (messages.length === 0) return undefined;
    const name = this.queueUrl.split('/').pop() ?? 'queue';
    const records: SQSRecord[] = messages.map((m) => ({
      messageId: m.MessageId!,
      receiptHandle: m.ReceiptHandle!,
      body: m.Body ?? '',
      attributes: m.Attributes as unknown as SQSRecord['attributes'],
      messageAttributes: {},
      md5OfBody: m.MD5OfBody ?? '',
      eventSource: 'aws:sqs',
      eventSourceARN: `arn:aws:sqs:us-east-1:${ACCOUNT}:${name}`,
      awsRegion: 'us-east-1',
    }));
    let failed: Set<string>;
    try {
      const response = await this.invoke({ Records: records }, this.context());
      failed = new Set((response?.batchItemFailures ?? []).map((f) => f.itemIdentifier));
    } catch {
      // A failed invocation: the whole batch is retried.
      failed = new Set(records.map((r) => r.messageId));
    }
    const done = records.filter((r) => !failed.has(r.messageId));
    for (let i = 0; i < done.length; i += 10) {
      await this.sqs.send(new DeleteMessageBatchCommand({
        QueueUrl: this.queueUrl,
        Entries: done.slice(i, i + 10).map((r, j) => ({ Id: String(j), ReceiptHandle: r.receiptHandle })),
      }));
    }
    return {
      delivered: records.map((r) => r.messageId),
      failed: [...failed],
      receiveCounts: Object.fromEntries(records.map((r) => [r.messageId, Number(r.attributes.ApproximateReceiveCount)])),
    };
  }

  close(): void {
    this.sqs.destroy();
  }
}
