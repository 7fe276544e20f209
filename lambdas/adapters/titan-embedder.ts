import { BedrockRuntimeClient, InvokeModelCommand } from '@aws-sdk/client-bedrock-runtime';
import type { EmbedderRuntimeConfig } from '../../constructs/contract/runtime-config';
import { mapLimit } from '../core/map-limit';
import type { Embedder } from '../core/semantic/ports';
import { normalize } from '../core/semantic/vectors';

/** Amazon Titan Text Embeddings V2. */
export const TITAN_EMBED_TEXT_V2 = 'amazon.titan-embed-text-v2:0';
/** The output sizes Titan Text Embeddings V2 offers. */
export const TITAN_V2_DIMENSIONS: readonly number[] = [256, 512, 1024];

export interface BedrockEmbedderOptions {
  /** Most `InvokeModel` calls in flight at once (one call per text). @default 8 */
  readonly concurrency?: number;
}

interface TitanEmbeddingResponse {
  embedding?: unknown;
  inputTextTokenCount?: number;
}

/**
 * Embeds texts with a Bedrock embedding model through `InvokeModel` (default: Titan Text
 * Embeddings V2): one call per text with the body `{ inputText, dimensions, normalize: true }`,
 * answered with `{ embedding, inputTextTokenCount }`; at most `concurrency` calls at a time. The
 * vectors are normalized again here, so the stores may rely on unit length. Errors (throttling,
 * validation) propagate: the semantic cache fails open.
 */
export class BedrockEmbedder implements Embedder {
  readonly modelId: string;
  readonly dimensions: number;
  /** Input tokens the model reported, summed over this embedder's calls. */
  inputTokens = 0;
  private readonly concurrency: number;

  constructor(
    config: EmbedderRuntimeConfig,
    private readonly client: BedrockRuntimeClient = new BedrockRuntimeClient({ maxAttempts: 1 }),
    options: BedrockEmbedderOptions = {},
  ) {
    if (config.provider !== 'bedrock') throw new Error(`BedrockEmbedder needs provider 'bedrock', got '${config.provider}'`);
    this.modelId = config.modelId ?? TITAN_EMBED_TEXT_V2;
    this.dimensions = config.dimensions;
    if (this.modelId.includes('titan-embed-text-v2') && !TITAN_V2_DIMENSIONS.includes(this.dimensions)) {
      throw new Error(`Titan Text Embeddings V2 produces ${TITAN_V2_DIMENSIONS.join(', ')} dimensions, not ${this.dimensions}`);
    }
    this.concurrency = Math.max(1, Math.floor(options.concurrency ?? 8));
  }

  /** `signal` cancels the calls in flight (the SDK's `abortSignal`) and those not yet made. */
  embed(texts: string[], signal?: AbortSignal): Promise<Float32Array[]> {
    return mapLimit(texts, this.concurrency, (text) => this.embedOne(text, signal));
  }

  private async embedOne(inputText: string, signal?: AbortSignal): Promise<Float32Array> {
    signal?.throwIfAborted();
    const out = await this.client.send(
      new InvokeModelCommand({
        modelId: this.modelId,
        contentType: 'application/json',
        accept: 'application/json',
        body: new TextEncoder().encode(JSON.stringify({ inputText, dimensions: this.dimensions, normalize: true })),
      }),
      { abortSignal: signal },
    );
    const parsed = JSON.parse(new TextDecoder().decode(out.body)) as TitanEmbeddingResponse;
    this.inputTokens += parsed.inputTextTokenCount ?? 0;
    return toUnitVector(parsed.embedding, this.dimensions, this.modelId);
  }
}

/** Checks that `value` is a finite number array of `dimensions` and returns it normalized. */
export function toUnitVector(value: unknown, dimensions: number, source: string): Float32Array {
  if (!Array.isArray(value) || !value.every((x) => typeof x === 'number' && Number.isFinite(x))) {
    throw new Error(`${source} returned no embedding (expected an array of numbers)`);
  }
  if (value.length !== dimensions) throw new Error(`${source} returned ${value.length} dimensions, expected ${dimensions}`);
  return normalize(Float32Array.from(value as number[]));
}

