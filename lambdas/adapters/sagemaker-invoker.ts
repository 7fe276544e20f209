import { InvokeEndpointCommand, type SageMakerRuntimeClient } from '@aws-sdk/client-sagemaker-runtime';
import { sageMakerRuntimeClient } from './connections';
import type { TierRuntimeConfig } from '../../constructs/contract/runtime-config';
import { ModelInvocationError } from '../core/errors';
import type { ModelInvoker, ModelRequest, ModelResponse } from '../core/ports';

interface OpenAiChatResponse {
  choices?: Array<{ message?: { content?: string | null }; finish_reason?: string | null }>;
  usage?: { prompt_tokens?: number; completion_tokens?: number };
}

/** OpenAI `finish_reason` values in the Converse vocabulary the router reasons in. */
const CONVERSE_STOP_REASONS: Record<string, string> = {
  stop: 'end_turn',
  length: 'max_tokens',
  content_filter: 'content_filtered',
  tool_calls: 'tool_use',
};

/**
 * Invokes SageMaker endpoints that speak the OpenAI-compatible chat completions API (the
 * Messages API of TGI and vLLM containers: `{ messages, max_tokens, temperature }` in,
 * `{ choices[0].message.content, usage }` out).
 */
export class SageMakerChatInvoker implements ModelInvoker {
  constructor(private readonly client: SageMakerRuntimeClient = sageMakerRuntimeClient()) {}

  async invoke(tier: TierRuntimeConfig, request: ModelRequest, signal: AbortSignal): Promise<ModelResponse> {
    const messages = [
      ...(request.system ? [{ role: 'system', content: request.system }] : []),
      ...request.messages.map((m) => ({ role: m.role, content: m.text })),
    ];
    const out = await this.client.send(
      new InvokeEndpointCommand({
        EndpointName: tier.endpointName,
        InferenceComponentName: tier.inferenceComponentName,
        ContentType: 'application/json',
        Accept: 'application/json',
        Body: new TextEncoder().encode(
          JSON.stringify({ messages, max_tokens: request.maxTokens, temperature: request.temperature }),
        ),
      }),
      { abortSignal: signal },
    );
    let parsed: OpenAiChatResponse;
    try {
      parsed = JSON.parse(new TextDecoder().decode(out.Body)) as OpenAiChatResponse;
    } catch {
      throw new ModelInvocationError('server', tier.id, 'the endpoint returned a body that is not JSON');
    }
    const choice = parsed.choices?.[0];
    if (typeof choice?.message?.content !== 'string') {
      throw new ModelInvocationError('server', tier.id, 'the endpoint response has no choices[0].message.content (is the container speaking the OpenAI chat format?)');
    }
    return {
      text: choice.message.content,
      usage: { inputTokens: parsed.usage?.prompt_tokens ?? 0, outputTokens: parsed.usage?.completion_tokens ?? 0 },
      stopReason: choice.finish_reason ? (CONVERSE_STOP_REASONS[choice.finish_reason] ?? choice.finish_reason) : undefined,
    };
  }
}
