import { Token } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { actionsOf, iamPolicyStatements, newGrantee, newStack, resourcesAllowing, resourcesOf, wildcardActions } from './helpers';
import { EmbeddingModel, ModelProvider } from '../../constructs';

/** Every statement `model.grantInvoke()` adds to a fresh role, as `[actions, resources]`. */
function grantOf(model: EmbeddingModel): { template: Template; statements: Array<[string[], string[]]> } {
  const stack = newStack();
  model.grantInvoke(newGrantee(stack));
  const template = Template.fromStack(stack);
  const statements = iamPolicyStatements(template).map(({ statement }) => [actionsOf(statement), resourcesOf(statement)] as [string[], string[]]);
  return { template, statements };
}

describe('EmbeddingModel.titanTextV2', () => {
  test('defaults to amazon.titan-embed-text-v2:0 with 1024 dimensions on Bedrock', () => {
    const model = EmbeddingModel.titanTextV2();
    expect(model.provider).toBe(ModelProvider.BEDROCK);
    expect(model.modelId).toBe('amazon.titan-embed-text-v2:0');
    expect(model.dimensions).toBe(1024);
    expect(model._runtimeConfig()).toEqual({ provider: 'bedrock', modelId: 'amazon.titan-embed-text-v2:0', dimensions: 1024 });
  });

  test.each([256, 512, 1024])('accepts %i dimensions', (dimensions) => {
    expect(EmbeddingModel.titanTextV2({ dimensions }).dimensions).toBe(dimensions);
  });

  test.each([0, 384, 768, 1536, 1024.5])('rejects %d dimensions, naming the prop', (dimensions) => {
    expect(() => EmbeddingModel.titanTextV2({ dimensions })).toThrow(/titanTextV2: dimensions must be 256, 512 or 1024/);
  });

  test('grantInvoke: bedrock:InvokeModel only, on exactly the Titan V2 foundation model ARN', () => {
    const { template, statements } = grantOf(EmbeddingModel.titanTextV2());
    expect(statements).toEqual([[
      ['bedrock:InvokeModel'],
      ['arn:${AWS::Partition}:bedrock:${AWS::Region}::foundation-model/amazon.titan-embed-text-v2:0'],
    ]]);
    expect(resourcesAllowing(template, 'bedrock:InvokeModelWithResponseStream')).toEqual([]);
    expect(wildcardActions(template)).toEqual([]);
  });
});

describe('EmbeddingModel.bedrock', () => {
  test('another foundation model by id: its ARN in the stack\'s Region', () => {
    const model = EmbeddingModel.bedrock('cohere.embed-english-v3', 1024);
    expect(model.modelId).toBe('cohere.embed-english-v3');
    expect(grantOf(model).statements).toEqual([[
      ['bedrock:InvokeModel'],
      ['arn:${AWS::Partition}:bedrock:${AWS::Region}::foundation-model/cohere.embed-english-v3'],
    ]]);
  });

  test('a foundation model ARN is granted as given', () => {
    const arn = 'arn:aws:bedrock:eu-west-1::foundation-model/amazon.titan-embed-text-v2:0';
    const model = EmbeddingModel.bedrock(arn, 512);
    expect(grantOf(model).statements).toEqual([[['bedrock:InvokeModel'], [arn]]]);
    expect(model._runtimeConfig()).toEqual({ provider: 'bedrock', modelId: arn, dimensions: 512 });
  });

  test.each<[string, string, number, RegExp]>([
    ['an inference profile id', 'us.cohere.embed-v4:0', 1024, /inference profile; give the foundation model id \(such as cohere\.embed-v4:0\)/],
    ['a malformed id', 'titan embeddings', 1024, /modelId "titan embeddings" is not a Bedrock model id/],
    ['a non-model ARN', 'arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.cohere.embed-v4:0', 1024, /not a Bedrock foundation model ARN/],
    ['an S3 ARN', 'arn:aws:s3:::bucket/key', 1024, /not a Bedrock foundation model ARN/],
    ['0 dimensions', 'cohere.embed-english-v3', 0, /dimensions must be an integer from 1 to 16000; got 0/],
    ['fractional dimensions', 'cohere.embed-english-v3', 10.5, /dimensions must be an integer/],
    ['too many dimensions', 'cohere.embed-english-v3', 16_001, /dimensions must be an integer from 1 to 16000/],
  ])('rejects %s', (_name, modelId, dimensions, message) => {
    expect(() => EmbeddingModel.bedrock(modelId, dimensions)).toThrow(message);
  });

  test('rejects a token as model id', () => {
    expect(() => EmbeddingModel.bedrock(Token.asString({ Ref: 'Model' }), 1024)).toThrow(/modelId must be a literal/);
  });
});

describe('EmbeddingModel.sageMakerEndpoint', () => {
  test('sagemaker:InvokeEndpoint only, on the endpoint ARN (name in lower case)', () => {
    const model = EmbeddingModel.sageMakerEndpoint('My-Embedder', 768);
    expect(model.provider).toBe(ModelProvider.SAGEMAKER);
    expect(model.modelId).toBe('My-Embedder');
    expect(model._runtimeConfig()).toEqual({ provider: 'sagemaker', endpointName: 'My-Embedder', dimensions: 768 });
    const { template, statements } = grantOf(model);
    expect(statements).toEqual([[
      ['sagemaker:InvokeEndpoint'],
      ['arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:endpoint/my-embedder'],
    ]]);
    expect(resourcesAllowing(template, 'bedrock:InvokeModel')).toEqual([]);
  });

  test.each<[string, string, number, RegExp]>([
    ['an endpoint name with underscores', 'my_embedder', 768, /endpointName must be 1-63 letters, digits and dashes/],
    ['an endpoint name too long', 'e'.repeat(64), 768, /endpointName/],
    ['negative dimensions', 'embedder', -1, /dimensions must be an integer/],
  ])('rejects %s', (_name, endpointName, dimensions, message) => {
    expect(() => EmbeddingModel.sageMakerEndpoint(endpointName, dimensions)).toThrow(message);
  });
});
