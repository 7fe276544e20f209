import { Construct } from 'constructs';
import { BedrockModelTier, type BedrockTierProps } from './bedrock-tier';
import type { IModelTier } from './model-tier';
import { SageMakerModelTier, type SageMakerTierProps } from './sagemaker-tier';

/** Factories for the model tiers a router can route to. */
export abstract class ModelTier {
  /**
   * A tier served by Amazon Bedrock (Converse API): a foundation model or an inference profile.
   * Invoke permission is scoped to exactly that model and profile.
   */
  public static bedrock(props: BedrockTierProps): IModelTier {
    return new BedrockModelTier(props);
  }

  /**
   * A tier served by an Amazon SageMaker endpoint: an existing one (`existingEndpointName`) or
   * a new one created in `scope` from a container image, with optional auto scaling.
   */
  public static sageMaker(scope: Construct, id: string, props: SageMakerTierProps): IModelTier {
    return new SageMakerModelTier(scope, id, props);
  }
}
