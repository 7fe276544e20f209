import { BedrockConverseInvoker } from './bedrock-invoker';
import type { TierRuntimeConfig } from '../../constructs/contract/runtime-config';
import type { ModelInvoker, ModelRequest, ModelResponse } from '../core/ports';

/**
 * Dispatches to the invoker of each tier's provider; clients are created on first use, and the
 * SageMaker invoker (with its SDK client) is loaded only by a router with a SageMaker tier.
 */
export class ProviderInvoker implements ModelInvoker {
  private bedrock?: ModelInvoker;
  private sagemaker?: ModelInvoker;

  invoke(tier: TierRuntimeConfig, request: ModelRequest, signal: AbortSignal): Promise<ModelResponse> {
    if (tier.provider === 'bedrock') {
      this.bedrock ??= new BedrockConverseInvoker();
      return this.bedrock.invoke(tier, request, signal);
    }
    if (!this.sagemaker) {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { SageMakerChatInvoker } = require('./sagemaker-invoker') as typeof import('./sagemaker-invoker');
      this.sagemaker = new SageMakerChatInvoker();
    }
    return this.sagemaker.invoke(tier, request, signal);
  }
}
