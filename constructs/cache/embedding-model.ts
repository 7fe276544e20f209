import { Arn, ArnFormat, Aws, Token } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type { EmbedderRuntimeConfig } from '../contract/runtime-config';
import { DEFAULT_EMBEDDING_DIMENSIONS, TITAN_TEXT_V2_MODEL_ID } from '../contract/semantic-defaults';
import { ModelProvider } from '../models/model-tier';

/** Options of Amazon Titan Text Embeddings V2. */
export interface TitanTextV2Options {
  /**
   * Vector dimensions: 256, 512 or 1024. Fewer dimensions take less memory in the vector index
   * and search faster, at some cost in retrieval accuracy.
   * @default 1024 (DEFAULT_EMBEDDING_DIMENSIONS)
   */
  readonly dimensions?: number;
}

const TITAN_V2_DIMENSIONS = [256, 512, 1024];
/** Largest dimension count any of the vector stores indexes (OpenSearch: 16,000). */
const MAX_DIMENSIONS = 16_000;
// Geography prefixes of system-defined cross-region inference profiles.
const PROFILE_PREFIX = /^(us|us-gov|eu|apac|ap|jp|au|ca|global)\./;
const SAGEMAKER_ENDPOINT_NAME = /^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$/;

/**
 * The model that turns questions into vectors for the semantic cache and the static answers.
 *
 * `EmbeddingModel.titanTextV2()` (Amazon Titan Text Embeddings V2 on Bedrock, 1024 dimensions)
 * is the default everywhere. Entries embedded by one model cannot be compared with another's, so
 * changing the model (or its dimensions) starts the semantic cache afresh.
 */
export abstract class EmbeddingModel {
  /**
   * Amazon Titan Text Embeddings V2 (`amazon.titan-embed-text-v2:0`) on Bedrock.
   */
  public static titanTextV2(options: TitanTextV2Options = {}): EmbeddingModel {
    const dimensions = options.dimensions ?? DEFAULT_EMBEDDING_DIMENSIONS;
    if (!TITAN_V2_DIMENSIONS.includes(dimensions)) {
      throw new Error(`EmbeddingModel.titanTextV2: dimensions must be 256, 512 or 1024; got ${dimensions}`);
    }
    return new BedrockEmbeddingModel(TITAN_TEXT_V2_MODEL_ID, dimensions);
  }

  /**
   * Another Bedrock embedding model (InvokeModel), by foundation model id (such as
   * `cohere.embed-english-v3`) or foundation model ARN, with the dimensions of its vectors.
   */
  public static bedrock(modelId: string, dimensions: number): EmbeddingModel {
    const where = 'EmbeddingModel.bedrock';
    if (Token.isUnresolved(modelId)) throw new Error(`${where}: modelId must be a literal model id or ARN, not a token`);
    if (modelId.startsWith('arn:')) {
      const arn = Arn.split(modelId, ArnFormat.SLASH_RESOURCE_NAME);
      if (arn.service !== 'bedrock' || arn.resource !== 'foundation-model' || !arn.resourceName) {
        throw new Error(`${where}: modelId "${modelId}" is not a Bedrock foundation model ARN`);
      }
    } else if (PROFILE_PREFIX.test(modelId)) {
      throw new Error(`${where}: modelId "${modelId}" is an inference profile; give the foundation model id (such as ${modelId.replace(PROFILE_PREFIX, '')})`);
    } else if (!/^[a-z0-9-]+\.[A-Za-z0-9.:_-]+$/.test(modelId)) {
      throw new Error(`${where}: modelId "${modelId}" is not a Bedrock model id (provider.model, such as amazon.titan-embed-text-v2:0)`);
    }
    validateDimensions(where, dimensions);
    return new BedrockEmbeddingModel(modelId, dimensions);
  }

  /**
   * An embedding model served by a SageMaker real-time endpoint, with the dimensions of its
   * vectors. The endpoint must speak the Hugging Face Text Embeddings Inference (TEI) /
   * feature-extraction format: `{ "inputs": ["text", ...] }` in, one pooled vector per text
   * (`[[...], ...]`) out.
   */
  public static sageMakerEndpoint(endpointName: string, dimensions: number): EmbeddingModel {
    const where = 'EmbeddingModel.sageMakerEndpoint';
    if (!Token.isUnresolved(endpointName) && !SAGEMAKER_ENDPOINT_NAME.test(endpointName)) {
      throw new Error(`${where}: endpointName must be 1-63 letters, digits and dashes, starting and ending with a letter or digit; got "${endpointName}"`);
    }
    validateDimensions(where, dimensions);
    return new SageMakerEmbeddingModel(endpointName, dimensions);
  }

  /** Who serves the model. */
  public abstract readonly provider: ModelProvider;
  /** The Bedrock model id (or foundation model ARN), or the SageMaker endpoint name. */
  public abstract readonly modelId: string;
  /** Dimensions of the vectors the model returns. */
  public abstract readonly dimensions: number;

  /**
   * Grants `grantee` permission to invoke exactly this model (`bedrock:InvokeModel` on its
   * foundation model ARN) or endpoint (`sagemaker:InvokeEndpoint` on its ARN).
   */
  public abstract grantInvoke(grantee: iam.IGrantable): iam.Grant;

  /** @internal */
  public abstract _runtimeConfig(): EmbedderRuntimeConfig;
}

function validateDimensions(where: string, dimensions: number): void {
  if (!Number.isInteger(dimensions) || dimensions < 1 || dimensions > MAX_DIMENSIONS) {
    throw new Error(`${where}: dimensions must be an integer from 1 to ${MAX_DIMENSIONS}; got ${dimensions}`);
  }
}

class BedrockEmbeddingModel extends EmbeddingModel {
  public readonly provider = ModelProvider.BEDROCK;
  constructor(public readonly modelId: string, public readonly dimensions: number) {
    super();
  }

  public grantInvoke(grantee: iam.IGrantable): iam.Grant {
    const arn = this.modelId.startsWith('arn:') ? this.modelId : `arn:${Aws.PARTITION}:bedrock:${Aws.REGION}::foundation-model/${this.modelId}`;
    return iam.Grant.addToPrincipal({ grantee, actions: ['bedrock:InvokeModel'], resourceArns: [arn] });
  }

  /** @internal */
  public _runtimeConfig(): EmbedderRuntimeConfig {
    return { provider: 'bedrock', modelId: this.modelId, dimensions: this.dimensions };
  }
}

class SageMakerEmbeddingModel extends EmbeddingModel {
  public readonly provider = ModelProvider.SAGEMAKER;
  constructor(public readonly modelId: string, public readonly dimensions: number) {
    super();
  }

  public grantInvoke(grantee: iam.IGrantable): iam.Grant {
    // SageMaker ARNs carry the endpoint name in lower case.
    const name = Token.isUnresolved(this.modelId) ? this.modelId : this.modelId.toLowerCase();
    return iam.Grant.addToPrincipal({
      grantee,
      actions: ['sagemaker:InvokeEndpoint'],
      resourceArns: [`arn:${Aws.PARTITION}:sagemaker:${Aws.REGION}:${Aws.ACCOUNT_ID}:endpoint/${name}`],
    });
  }

  /** @internal */
  public _runtimeConfig(): EmbedderRuntimeConfig {
    return { provider: 'sagemaker', endpointName: this.modelId, dimensions: this.dimensions };
  }
}
