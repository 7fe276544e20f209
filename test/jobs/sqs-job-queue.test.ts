/**
 * SqsJobQueue with the real SQSClient against the local SQS server (AWS JSON 1.0 protocol):
 * chunking, retries of failed entries, and the error when messages remain unsent.
 */
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { EnqueueError, SqsJobQueue } from '../../lambdas/adapters/sqs-job-queue';
import type { JobMessage } from '../../lambdas/core/jobs/job-model';
import { EntryFailures, LocalSqsServer, SqsErrors } from '../support/sqs-protocol-server';

let sqs: LocalSqsServer;
let queueUrl: string;
let client: SQSClient;

beforeAll(async () => {
  sqs = await LocalSqsServer.start();
  queueUrl = sqs.createQueue('jobs');
  client = new SQSClient({
    region: 'us-east-1',
    endpoint: sqs.url,
    credentials: { accessKeyId: 'AKIDLOCALTEST', secretAccessKey: 'local-test-secret' },
    maxAttempts: 1,
  });
});

beforeEach(() => sqs.reset());

afterAll(async () => {
  client?.destroy();
  await sqs?.close();
});

function messages(n: number, jobId = 'job-1'): JobMessage[] {
  return Array.from({ length: n }, (_, index) => ({
    v: 1,
    jobId,
    tenantId: 'tenant-a',
    index,
    request: { messages: [{ role: 'user', content: `question ${index}` }] },
  }));
}

const queue = (options = {}): SqsJobQueue => new SqsJobQueue(queueUrl, client, { backoffMs: 1, ...options });

test('the SDK speaks AWS JSON 1.0 to the server, and checks the MD5 it answers', async () => {
  const out = await client.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: 'héllo' }));
  expect(out.MessageId).toEqual(expect.any(String));
  expect(out.MD5OfMessageBody).toBe(sqs.sent[0].md5OfBody);
  const call = sqs.calls[0];
  expect(call.headers['x-amz-target']).toBe('AmazonSQS.SendMessage');
  expect(call.headers['content-type']).toBe('application/x-amz-json-1.0');
  expect(call.headers['x-amzn-query-mode']).toBe('true');
  expect(call.headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDLOCALTEST\/\d{8}\/us-east-1\/sqs\/aws4_request/);
  expect(call.body).toEqual({ QueueUrl: queueUrl, MessageBody: 'héllo' });
});

test('errors reach the SDK as their modelled exceptions', async () => {
  const err = await client.send(new SendMessageCommand({ QueueUrl: `${sqs.url}/111122223333/nope`, MessageBody: 'x' })).catch((e: unknown) => e);
  expect(err).toMatchObject({ name: 'QueueDoesNotExist', $metadata: { httpStatusCode: 400 } });
});

test('23 messages go out in SendMessageBatch calls of 10, 10 and 3; each message once, as JSON', async () => {
  const sent = messages(23);
  await queue().enqueue(sent);
  const batches = sqs.calls.filter((c) => c.operation === 'SendMessageBatch');
  expect(batches.map((c) => (c.body as { Entries: unknown[] }).Entries.length).sort((a, b) => b - a)).toEqual([10, 10, 3]);
  const bodies = sqs.messages(queueUrl).map((m) => JSON.parse(m.body) as JobMessage);
  expect(bodies.map((m) => m.index).sort((a, b) => a - b)).toEqual(sent.map((m) => m.index));
  expect(bodies.find((m) => m.index === 7)).toEqual(sent[7]);
});

test('a request with any text goes out in the characters SQS accepts, and parses back the same', async () => {
  // Found by test/fuzz: U+FFFE and U+FFFF are valid in a request but not in an SQS body
  // (InvalidMessageContents): the job was refused with a 503.
  const text = 'a\uffff b\ufffe c\u0000 d\ud800 e\u001f f\ud83d\ude00 \\uffff';
  const sent: JobMessage[] = [{ v: 1, jobId: 'job-1', tenantId: 'tenant-a', index: 0, request: { messages: [{ role: 'user', content: text }] } }];
  await queue().enqueue(sent);
  const [message] = sqs.messages(queueUrl);
  expect(message.body).toMatch(/^[\t\n\r\u0020-\ud7ff\ue000-\ufffd\u{10000}-\u{10ffff}]*$/u);
  expect(JSON.parse(message.body)).toEqual(sent[0]);
});

test('entries SQS fails transiently are sent again, and only those', async () => {
  const failedOnce = new Set<string>();
  sqs.failEntries(({ id }) => {
    if (['m2', 'm5'].includes(id) && !failedOnce.has(id)) {
      failedOnce.add(id);
      return EntryFailures.internal();
    }
    return undefined;
  });
  await queue().enqueue(messages(8));
  expect(sqs.calls.filter((c) => c.operation === 'SendMessageBatch')).toHaveLength(2);
  const retry = sqs.calls[1].body as { Entries: Array<{ Id: string }> };
  expect(retry.Entries.map((e) => e.Id).sort()).toEqual(['m2', 'm5']);
  expect(sqs.sent.map((m) => (JSON.parse(m.body) as JobMessage).index).sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
});

test('an entry refused by the sender\'s fault is not retried; enqueue throws naming it', async () => {
  sqs.failEntries(({ id }) => (id === 'm4' ? EntryFailures.invalid() : undefined));
  const err = await queue().enqueue(messages(6)).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(EnqueueError);
  expect((err as EnqueueError).failedIndexes).toEqual([4]);
  expect((err as Error).message).toMatch(/InvalidMessageContents/);
  expect(sqs.calls.filter((c) => c.operation === 'SendMessageBatch')).toHaveLength(1);
});

test('entries that keep failing make enqueue throw after maxAttempts rounds', async () => {
  sqs.failEntries(({ id }) => (id === 'm1' ? EntryFailures.internal() : undefined));
  const err = await queue({ maxAttempts: 3 }).enqueue(messages(3)).catch((e: unknown) => e);
  expect((err as EnqueueError).failedIndexes).toEqual([1]);
  expect(sqs.calls.filter((c) => c.operation === 'SendMessageBatch')).toHaveLength(3);
  expect(sqs.sent).toHaveLength(2);
});

test('a failed call fails the enqueue with the indexes of its chunk', async () => {
  sqs.failNextCalls(SqsErrors.unavailable());
  const err = await queue({ concurrency: 1 }).enqueue(messages(12)).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(EnqueueError);
  // The first chunk (0-9) failed as a whole (this client makes 1 attempt); the second went out.
  expect((err as EnqueueError).failedIndexes).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  expect(sqs.sent.map((m) => (JSON.parse(m.body) as JobMessage).index)).toEqual([10, 11]);
});
