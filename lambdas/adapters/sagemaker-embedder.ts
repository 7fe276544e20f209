import { InvokeEndpointCommand, SageMakerRuntimeClient } from '@aws-sdk/client-sagemaker-runtime';
import { toUnitVector } from './titan-embedder';
import type { EmbedderRuntimeConfig } from '../../constructs/contract/runtime-config';
import { mapLimit } from '../core/map-limit';
import type { Embedder } from '../core/semantic/ports';

export interface SageMakerEmbedderOptions {
  /** Texts per `InvokeEndpoint` call (TEI's default `max_client_batch_size` is 32). @default 32 */
  readonly batchSize?: number;
  /** Calls in flight at once. @default 4 */
  readonly concurrency?: number;
}

/**
 * Embeds texts with a SageMaker endpoint that speaks the Hugging Face Text Embeddings Inference
 * (TEI) / feature-extraction format: `{ "inputs": [texts] }` in, `[[...], ...]` out (one pooled
 * vector per text; `{ "embeddings": [[...], ...] }` is accepted too). Texts are sent in batches;
 * the vectors are checked against the configured dimensions and normalized.
 */
export class SageMakerEmbedder implements Embedder {
  readonly modelId: string;
  readonly dimensions: number;
  private readonly endpointName: string;
  private readonly batchSize: number;
  private readonly concurrency: number;

  constructor(
    config: EmbedderRuntimeConfig,
    private readonly client: SageMakerRuntimeClient = new SageMakerRuntimeClient({ maxAttempts: 1 }),
    options: SageMakerEmbedderOptions = {},
  ) {
    if (config.provider !== 'sagemaker' || !config.endpointName) {
      throw new Error('SageMakerEmbedder needs provider \'sagemaker\' and an endpointName');
    }
    this.endpointName = config.endpointName;
    this.modelId = `sagemaker:${config.endpointName}`;
    this.dimensions = config.dimensions;
    this.batchSize = Math.max(1, Math.floor(options.batchSize ?? 32));
    this.concurrency = Math.max(1, Math.floor(options.concurrency ?? 4));
  }

  /** `signal` cancels the calls in flight (the SDK's `abortSignal`) and those not yet made. */
  async embed(texts: string[], signal?: AbortSignal): Promise<Float32Array[]> {
    const batches: string[][] = [];
    for (let i = 0; i < texts.length; i += this.batchSize) batches.push(texts.slice(i, i + this.batchSize));
    const results = await mapLimit(batches, this.concurrency, (batch) => this.embedBatch(batch, signal));
    return results.flat();
  }

  private async embedBatch(inputs: string[], signal?: AbortSignal): Promise<Float32Array[]> {
    signal?.throwIfAborted();
    const out = await this.client.send(
      new InvokeEndpointCommand({
        EndpointName: this.endpointName,
        ContentType: 'application/json',
        Accept: 'application/json',
        Body: new TextEncoder().encode(JSON.stringify({ inputs })),
      }),
      { abortSignal: signal },
    );
    const source = `endpoint ${this.endpointName}`;
    let parsed: unknown;
    try {
      parsed = JSON.parse(new TextDecoder().decode(out.Body));
    } catch {
      throw new Error(`${source} returned a body that is not JSON`);
    }
    const vectors = Array.isArray(parsed) ? parsed : (parsed as { embeddings?: unknown } | null)?.embeddings;
    if (!Array.isArray(vectors) || vectors.length !== inputs.length) {
      throw new Error(`${source} returned ${Array.isArray(vectors) ? vectors.length : 'no'} embeddings for ${inputs.length} inputs (expected [[...], ...] or { embeddings: [[...], ...] })`);
    }
    return vectors.map((v) => toUnitVector(v, this.dimensions, source));
  }
}
