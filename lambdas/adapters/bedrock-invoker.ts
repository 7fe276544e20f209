import { ConverseCommand, type BedrockRuntimeClient, type Message } from '@aws-sdk/client-bedrock-runtime';
import { bedrockRuntimeClient } from './connections';
import type { TierRuntimeConfig } from '../../constructs/contract/runtime-config';
import type { ModelInvoker, ModelRequest, ModelResponse } from '../core/ports';

/**
 * Invokes Bedrock tiers through the Converse API. The endpoint comes from the SDK's standard
 * configuration (`AWS_ENDPOINT_URL_BEDROCK_RUNTIME` overrides it, as the tests do). The default
 * client is the container's, on one multiplexed HTTP/2 connection.
 */
export class BedrockConverseInvoker implements ModelInvoker {
  constructor(private readonly client: BedrockRuntimeClient = bedrockRuntimeClient()) {}

  async invoke(tier: TierRuntimeConfig, request: ModelRequest, signal: AbortSignal): Promise<ModelResponse> {
    const messages: Message[] = request.messages.map((m) => ({ role: m.role, content: [{ text: m.text }] }));
    const out = await this.client.send(
      new ConverseCommand({
        modelId: tier.modelId,
        messages,
        system: request.system ? [{ text: request.system }] : undefined,
        inferenceConfig: { maxTokens: request.maxTokens, temperature: request.temperature },
        // Absent: Bedrock serves at Standard. A model without the tier is refused (ValidationException).
        serviceTier: tier.serviceTier ? { type: tier.serviceTier } : undefined,
      }),
      { abortSignal: signal },
    );
    const text = (out.output?.message?.content ?? []).map((block) => block.text ?? '').join('');
    return {
      text,
      usage: { inputTokens: out.usage?.inputTokens ?? 0, outputTokens: out.usage?.outputTokens ?? 0 },
      stopReason: out.stopReason,
      serviceTier: out.serviceTier?.type,
    };
  }
}
