import { BedrockConverseInvoker } from './bedrock-invoker';
import { SageMakerChatInvoker } from './sagemaker-invoker';
import type { TierRuntimeConfig } from '../../constructs/contract/runtime-config';
import type { ModelInvoker, ModelRequest, ModelResponse } from '../core/ports';

/** Dispatches to the invoker of each tier's provider; clients are created on first use. */
export class ProviderInvoker implements ModelInvoker {
  private bedrock?: ModelInvoker;
  private sagemaker?: ModelInvoker;

  invoke(tier: TierRuntimeConfig, request: ModelRequest, signal: AbortSignal): Promise<ModelResponse> {
    if (tier.provider === 'bedrock') {
      this.bedrock ??= new BedrockConverseInvoker();
      return this.bedrock.invoke(tier, request, signal);
    }
    this.sagemaker ??= new SageMakerChatInvoker();
    return this.sagemaker.invoke(tier, request, signal);
  }
}
