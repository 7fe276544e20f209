/**
 * BedrockEmbedder and SageMakerEmbedder with the real AWS SDK v3 clients against the local AWS
 * protocol server (Bedrock Runtime InvokeModel over HTTP/2, SageMaker Runtime InvokeEndpoint over
 * HTTP/1.1), pointed at it with the `AWS_ENDPOINT_URL_<SERVICE>` variables as the router tests do.
 * The server embeds deterministically (hashed character trigrams).
 */
import { BedrockRuntimeClient } from '@aws-sdk/client-bedrock-runtime';
import { SageMakerRuntimeClient } from '@aws-sdk/client-sagemaker-runtime';
import type { EmbedderRuntimeConfig } from '../../constructs/contract/runtime-config';
import { SageMakerEmbedder } from '../../lambdas/adapters/sagemaker-embedder';
import { BedrockEmbedder, TITAN_EMBED_TEXT_V2 } from '../../lambdas/adapters/titan-embedder';
import { mapLimit } from '../../lambdas/core/map-limit';
import { cosine } from '../../lambdas/core/semantic/vectors';
import { Failures, LocalAwsServer, hashedTrigramEmbedding } from '../support/aws-protocol-server';

let aws: LocalAwsServer;
const savedEnv = { ...process.env };
const clients: Array<{ destroy(): void }> = [];

function norm(v: Float32Array): number {
  return Math.sqrt(v.reduce((n, x) => n + x * x, 0));
}

function bedrockClient(): BedrockRuntimeClient {
  const client = new BedrockRuntimeClient({ maxAttempts: 1 });
  clients.push(client);
  return client;
}

function sageMakerClient(): SageMakerRuntimeClient {
  const client = new SageMakerRuntimeClient({ maxAttempts: 1 });
  clients.push(client);
  return client;
}

beforeAll(async () => {
  aws = await LocalAwsServer.start();
  Object.assign(process.env, aws.env());
  delete process.env.AWS_PROFILE;
});

beforeEach(() => aws.reset());

afterAll(async () => {
  for (const c of clients) c.destroy();
  await aws?.close();
  for (const key of Object.keys(process.env)) if (!(key in savedEnv)) delete process.env[key];
  Object.assign(process.env, savedEnv);
});

describe('BedrockEmbedder (Titan Text Embeddings V2 through InvokeModel)', () => {
  const config: EmbedderRuntimeConfig = { provider: 'bedrock', modelId: TITAN_EMBED_TEXT_V2, dimensions: 512 };

  test('one InvokeModel call per text with { inputText, dimensions, normalize: true }; unit vectors in input order', async () => {
    const embedder = new BedrockEmbedder(config, bedrockClient());
    const texts = ['How do I reset my card PIN?', 'how can I reset the PIN of my card', 'What are your opening hours?'];
    const vectors = await embedder.embed(texts);

    const calls = aws.embeddingCalls;
    expect(calls).toHaveLength(3);
    for (const call of calls) {
      expect(call.target).toBe(TITAN_EMBED_TEXT_V2);
      expect(call.httpVersion).toBe('2.0');
      expect(call.headers['content-type']).toBe('application/json');
      expect(call.headers.authorization).toMatch(/\/bedrock\/aws4_request/);
    }
    const byText = (a: unknown, b: unknown): number => JSON.stringify(a).localeCompare(JSON.stringify(b));
    expect(calls.map((c) => c.body).sort(byText)).toEqual(texts.map((inputText) => ({ inputText, dimensions: 512, normalize: true })).sort(byText));

    expect(vectors).toHaveLength(3);
    vectors.forEach((v, i) => {
      expect(v).toBeInstanceOf(Float32Array);
      expect(v).toHaveLength(512);
      expect(norm(v)).toBeCloseTo(1, 5);
      expect(cosine(v, Float32Array.from(hashedTrigramEmbedding(texts[i], 512)))).toBeCloseTo(1, 5);
    });
    expect(cosine(vectors[0], vectors[1])).toBeGreaterThan(cosine(vectors[0], vectors[2]) + 0.2);
    expect(embedder.modelId).toBe(TITAN_EMBED_TEXT_V2);
    expect(embedder.dimensions).toBe(512);
    expect(embedder.inputTokens).toBe(7 + 9 + 5);
  });

  test('vectors the model returns unnormalized are normalized', async () => {
    aws.setEmbeddingModel(TITAN_EMBED_TEXT_V2, { embed: (_, d) => Array.from({ length: d }, (_x, i) => (i % 3) * 2.5) });
    const [v] = await new BedrockEmbedder(config, bedrockClient()).embed(['anything']);
    expect(norm(v)).toBeCloseTo(1, 5);
    expect(v[1] / v[2]).toBeCloseTo(0.5, 5);
  });

  test.each([256, 1024])('dimensions %i are requested and returned', async (dimensions) => {
    const [v] = await new BedrockEmbedder({ ...config, dimensions }, bedrockClient()).embed(['refund policy']);
    expect(v).toHaveLength(dimensions);
    expect((aws.embeddingCalls[0].body as { dimensions: number }).dimensions).toBe(dimensions);
  });

  test('dimensions Titan V2 does not offer are refused up front; a wrong-sized answer is an error', async () => {
    expect(() => new BedrockEmbedder({ ...config, dimensions: 300 })).toThrow(/256, 512, 1024/);
    expect(() => new BedrockEmbedder({ provider: 'sagemaker', endpointName: 'x', dimensions: 512 })).toThrow(/provider 'bedrock'/);
    aws.setEmbeddingModel(TITAN_EMBED_TEXT_V2, { embed: () => [0.5, 0.5] });
    await expect(new BedrockEmbedder(config, bedrockClient()).embed(['x'])).rejects.toThrow(/returned 2 dimensions, expected 512/);
  });

  test('service errors propagate with their type', async () => {
    aws.failNext(TITAN_EMBED_TEXT_V2, Failures.throttling());
    const embedder = new BedrockEmbedder(config, bedrockClient());
    await expect(embedder.embed(['a question'])).rejects.toMatchObject({ name: 'ThrottlingException' });
    // Titan rejects empty input.
    await expect(embedder.embed([''])).rejects.toMatchObject({ name: 'ValidationException' });
  });

  test('at most `concurrency` calls are in flight, and results keep the input order', async () => {
    const client = bedrockClient();
    const send = client.send.bind(client) as (...args: unknown[]) => Promise<unknown>;
    let inFlight = 0;
    let peak = 0;
    jest.spyOn(client, 'send').mockImplementation((async (...args: unknown[]) => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      try {
        return await send(...args);
      } finally {
        inFlight--;
      }
    }) as never);
    const texts = Array.from({ length: 20 }, (_, i) => `question number ${i} about ${'x'.repeat(i)}`);
    const vectors = await new BedrockEmbedder(config, client, { concurrency: 3 }).embed(texts);
    expect(aws.embeddingCalls).toHaveLength(20);
    expect(peak).toBe(3);
    vectors.forEach((v, i) => expect(cosine(v, Float32Array.from(hashedTrigramEmbedding(texts[i], 512)))).toBeCloseTo(1, 5));
  });

  test('the default client finds the endpoint in the environment', async () => {
    const embedder = new BedrockEmbedder(config);
    await expect(embedder.embed(['hello world'])).resolves.toHaveLength(1);
    expect(aws.embeddingCalls).toHaveLength(1);
  });
});

describe('SageMakerEmbedder (TEI / feature-extraction format)', () => {
  const ENDPOINT = 'bge-small-en-v15';
  const config: EmbedderRuntimeConfig = { provider: 'sagemaker', endpointName: ENDPOINT, dimensions: 384 };

  test('texts go in batches as { inputs: [...] }; one unit vector per text, in order', async () => {
    aws.setEmbeddingEndpoint(ENDPOINT, { dimensions: 384 });
    const texts = ['card arrived?', 'my card has not arrived', 'exchange rate', 'top up failed', 'cancel transfer'];
    const vectors = await new SageMakerEmbedder(config, sageMakerClient(), { batchSize: 2, concurrency: 1 }).embed(texts);
    expect(aws.embeddingCalls.map((c) => c.body)).toEqual([{ inputs: texts.slice(0, 2) }, { inputs: texts.slice(2, 4) }, { inputs: texts.slice(4) }]);
    expect(aws.embeddingCalls.every((c) => c.httpVersion === '1.1' && c.headers['content-type'] === 'application/json')).toBe(true);
    expect(vectors).toHaveLength(5);
    vectors.forEach((v, i) => {
      expect(v).toHaveLength(384);
      expect(norm(v)).toBeCloseTo(1, 5);
      expect(cosine(v, Float32Array.from(hashedTrigramEmbedding(texts[i], 384)))).toBeCloseTo(1, 5);
    });
    // The chat calls of the router tests are not mixed with embedding calls.
    expect(aws.calls).toHaveLength(0);
  });

  test('{ embeddings: [...] } answers and unnormalized vectors are accepted', async () => {
    aws.setEmbeddingEndpoint(ENDPOINT, { dimensions: 384, format: 'embeddings', embed: (_, d) => Array.from({ length: d }, () => 3) });
    const vectors = await new SageMakerEmbedder(config, sageMakerClient()).embed(['a', 'b']);
    expect(vectors).toHaveLength(2);
    expect(norm(vectors[1])).toBeCloseTo(1, 5);
    expect(vectors[1][0]).toBeCloseTo(1 / Math.sqrt(384), 6);
  });

  test('dimensions are checked; a wrong number of vectors is an error', async () => {
    aws.setEmbeddingEndpoint(ENDPOINT, { dimensions: 768 });
    await expect(new SageMakerEmbedder(config, sageMakerClient()).embed(['x'])).rejects.toThrow(/returned 768 dimensions, expected 384/);
    aws.setEmbeddingEndpoint(ENDPOINT, { dimensions: 384, format: 'embeddings' });
    const client = sageMakerClient();
    jest.spyOn(client, 'send').mockResolvedValueOnce({ Body: new TextEncoder().encode(JSON.stringify([[1, 2]])) } as never);
    await expect(new SageMakerEmbedder(config, client).embed(['x', 'y'])).rejects.toThrow(/returned 1 embeddings for 2 inputs/);
    expect(() => new SageMakerEmbedder({ provider: 'sagemaker', dimensions: 384 })).toThrow(/endpointName/);
  });

  test('endpoint errors propagate with their type', async () => {
    aws.setEmbeddingEndpoint(ENDPOINT, { dimensions: 384 });
    aws.failNext(ENDPOINT, Failures.sageMakerModelError());
    await expect(new SageMakerEmbedder(config, sageMakerClient()).embed(['x'])).rejects.toMatchObject({ name: 'ModelError' });
  });
});

test('mapLimit keeps order and stops at the first failure', async () => {
  await expect(mapLimit([3, 1, 2], 2, async (x) => x * 10)).resolves.toEqual([30, 10, 20]);
  await expect(mapLimit([1, 2, 3], 2, async (x) => {
    if (x === 2) throw new Error('boom');
    return x;
  })).rejects.toThrow('boom');
  await expect(mapLimit([], 4, async (x: number) => x)).resolves.toEqual([]);
});

describe('an abandoned embedding is cancelled', () => {
  async function waitForOutcome(calls: () => Array<{ outcome: string }>, outcome: string): Promise<void> {
    for (let i = 0; i < 100 && !(calls().length > 0 && calls().every((c) => c.outcome === outcome)); i++) await new Promise((r) => setTimeout(r, 20));
  }

  test('BedrockEmbedder: aborting the signal cancels the InvokeModel call in flight (the server sees the client go away)', async () => {
    aws.failNext(TITAN_EMBED_TEXT_V2, Failures.hang(20_000));
    const embedder = new BedrockEmbedder({ provider: 'bedrock', modelId: TITAN_EMBED_TEXT_V2, dimensions: 256 }, bedrockClient());
    const controller = new AbortController();
    const pending = embedder.embed(['How do I reset my PIN?'], controller.signal);
    await waitForOutcome(() => aws.embeddingCalls, 'ok');
    expect(aws.embeddingCalls).toHaveLength(1);
    controller.abort();
    await expect(pending).rejects.toThrow();
    await waitForOutcome(() => aws.embeddingCalls, 'aborted');
    expect(aws.embeddingCalls[0].outcome).toBe('aborted');
  });

  test('SageMakerEmbedder: aborting the signal cancels the InvokeEndpoint call in flight', async () => {
    aws.setEmbeddingEndpoint('tei', { dimensions: 8 });
    aws.failNext('tei', Failures.hang(20_000));
    const embedder = new SageMakerEmbedder({ provider: 'sagemaker', endpointName: 'tei', dimensions: 8 }, sageMakerClient());
    const controller = new AbortController();
    const pending = embedder.embed(['a', 'b'], controller.signal);
    await waitForOutcome(() => aws.embeddingCalls, 'ok');
    controller.abort();
    await expect(pending).rejects.toThrow();
    await waitForOutcome(() => aws.embeddingCalls, 'aborted');
    expect(aws.embeddingCalls.map((c) => c.outcome)).toEqual(['aborted']);
  });

  test('an already aborted signal makes no call', async () => {
    const embedder = new BedrockEmbedder({ provider: 'bedrock', modelId: TITAN_EMBED_TEXT_V2, dimensions: 256 }, bedrockClient());
    await expect(embedder.embed(['x'], AbortSignal.abort())).rejects.toThrow();
    expect(aws.embeddingCalls).toHaveLength(0);
  });
});
