import { Duration, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as kms from 'aws-cdk-lib/aws-kms';
import {
  acknowledgements, actionsOf, flatten, iamPolicyStatements, newGrantee, newStack, onlyResource,
  resourcesAllowing, resourcesOf, routerConfig, statementsAllowing, wildcardActions,
} from './helpers';
import { BedrockModelTier, BedrockServiceTier, ModelProvider, ModelTier, SageMakerApiFormat, SageMakerModelTier, TieredRouter, type BedrockTierProps, type IModelTier, type SageMakerTierProps } from '../../constructs';

const INVOKE = ['bedrock:InvokeModel', 'bedrock:InvokeModelWithResponseStream'];
const PROFILE_CONDITION_KEY = 'bedrock:InferenceProfileArn';

function bedrock(props: Partial<BedrockTierProps> = {}): IModelTier {
  return ModelTier.bedrock({
    tierId: 'small',
    modelId: 'amazon.nova-micro-v1:0',
    inputPricePer1kTokens: 0.000035,
    outputPricePer1kTokens: 0.00014,
    ...props,
  });
}

/** Grants `tier` to a fresh role and returns the template with the role's statements. */
function granted(tier: IModelTier): { template: Template; stack: Stack } {
  const stack = newStack();
  tier.grantInvoke(newGrantee(stack));
  return { template: Template.fromStack(stack), stack };
}

/** The statements allowing Bedrock invocation, with their actions sorted and resources flattened. */
function bedrockStatements(template: Template) {
  return statementsAllowing(template, 'bedrock:InvokeModel').map(({ statement }) => ({
    actions: [...actionsOf(statement)].sort(),
    resources: resourcesOf(statement),
    condition: statement.Condition,
  }));
}

const PROFILE_ARN = (profileId: string) => `arn:\${AWS::Partition}:bedrock:\${AWS::Region}:\${AWS::AccountId}:inference-profile/${profileId}`;
const MODEL_ARN = (region: string, modelId: string) => `arn:\${AWS::Partition}:bedrock:${region}::foundation-model/${modelId}`;

describe('ModelTier.bedrock: invoke permissions', () => {
  test('a foundation model id grants both invoke actions on exactly that model in the stack Region', () => {
    const tier = bedrock();
    const { template } = granted(tier);
    expect(bedrockStatements(template)).toEqual([{
      actions: INVOKE,
      resources: [MODEL_ARN('${AWS::Region}', 'amazon.nova-micro-v1:0')],
      condition: undefined,
    }]);
    expect(tier.provider).toBe(ModelProvider.BEDROCK);
    expect(tier.modelIdentifier).toBe('amazon.nova-micro-v1:0');
    expect((tier as BedrockModelTier).usesInferenceProfile).toBe(false);
    expect(wildcardActions(template)).toEqual([]);
  });

  test.each([
    ['us.amazon.nova-micro-v1:0', 'amazon.nova-micro-v1:0'],
    ['global.anthropic.claude-sonnet-4-5-20250929-v1:0', 'anthropic.claude-sonnet-4-5-20250929-v1:0'],
    ['eu.amazon.nova-lite-v1:0', 'amazon.nova-lite-v1:0'],
    ['apac.amazon.nova-pro-v1:0', 'amazon.nova-pro-v1:0'],
  ])('system profile %s: the profile ARN, and the foundation model %s in any Region only through that profile', (profileId, modelId) => {
    const tier = bedrock({ modelId: profileId });
    const { template } = granted(tier);
    const statements = bedrockStatements(template);
    expect(statements).toHaveLength(2);
    expect(statements).toContainEqual({ actions: INVOKE, resources: [PROFILE_ARN(profileId)], condition: undefined });
    const modelStatement = statements.find((s) => s.condition !== undefined)!;
    expect(modelStatement.actions).toEqual(INVOKE);
    expect(modelStatement.resources).toEqual([MODEL_ARN('*', modelId)]);
    expect(Object.keys(modelStatement.condition!)).toEqual(['StringEquals']);
    expect(Object.keys(modelStatement.condition!.StringEquals)).toEqual([PROFILE_CONDITION_KEY]);
    expect(flatten(modelStatement.condition!.StringEquals[PROFILE_CONDITION_KEY])).toBe(PROFILE_ARN(profileId));
    expect((tier as BedrockModelTier).usesInferenceProfile).toBe(true);
    expect(tier.modelIdentifier).toBe(profileId);
    expect(wildcardActions(template)).toEqual([]);
  });

  test('a grant in any Region is acknowledged for cdk-nag on the library\'s own roles, naming the one model, with a reason; never on yours', () => {
    const stack = newStack();
    const role = newGrantee(stack);
    const tier = bedrock({ modelId: 'us.amazon.nova-micro-v1:0' });
    tier.grantInvoke(role);
    expect(acknowledgements(role)).toEqual([]);
    // A role the library created: the router's.
    const router = new TieredRouter(stack, 'Router', { tiers: [tier] });
    const acks = acknowledgements(router.function.role!).filter((a) => a.id.includes(':bedrock:'));
    expect(acks.map((a) => a.id)).toEqual([
      'Annotation::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:bedrock:*::foundation-model/amazon.nova-micro-v1:0]',
    ]);
    expect(String(acks[0].reason).length).toBeGreaterThan(20);
  });

  test('destinationRegions lists the Regions instead of "*" and needs no acknowledgement', () => {
    const stack = newStack();
    const role = newGrantee(stack);
    bedrock({ modelId: 'us.amazon.nova-micro-v1:0', destinationRegions: ['us-east-1', 'us-east-2', 'us-west-2'] }).grantInvoke(role);
    const template = Template.fromStack(stack);
    const modelStatement = bedrockStatements(template).find((s) => s.condition !== undefined)!;
    expect(modelStatement.resources).toEqual(['us-east-1', 'us-east-2', 'us-west-2'].map((r) => MODEL_ARN(r, 'amazon.nova-micro-v1:0')));
    expect(flatten(modelStatement.condition!.StringEquals[PROFILE_CONDITION_KEY])).toBe(PROFILE_ARN('us.amazon.nova-micro-v1:0'));
    expect(resourcesAllowing(template, 'bedrock:InvokeModel').some((r) => r.includes(':bedrock:*:'))).toBe(false);
    expect(acknowledgements(stack)).toEqual([]);
  });

  test('an inference-profile ARN is granted as given, with its foundation model behind the condition', () => {
    const arn = 'arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.amazon.nova-lite-v1:0';
    const { template } = granted(bedrock({ modelId: arn }));
    const statements = bedrockStatements(template);
    expect(statements).toHaveLength(2);
    expect(statements).toContainEqual({ actions: INVOKE, resources: [arn], condition: undefined });
    expect(statements).toContainEqual({
      actions: INVOKE,
      resources: [MODEL_ARN('*', 'amazon.nova-lite-v1:0')],
      condition: { StringEquals: { [PROFILE_CONDITION_KEY]: arn } },
    });
  });

  test('an application-inference-profile ARN requires profileModelIds, and grants exactly those models through it', () => {
    const arn = 'arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3d4e5f6';
    expect(() => bedrock({ modelId: arn })).toThrow(/profileModelIds/);
    expect(() => bedrock({ modelId: arn, profileModelIds: [] })).toThrow(/profileModelIds/);
    const { template } = granted(bedrock({ modelId: arn, profileModelIds: ['amazon.nova-micro-v1:0', 'amazon.nova-lite-v1:0'], destinationRegions: ['us-east-1'] }));
    const statements = bedrockStatements(template);
    expect(statements).toContainEqual({ actions: INVOKE, resources: [arn], condition: undefined });
    expect(statements).toContainEqual({
      actions: INVOKE,
      resources: [MODEL_ARN('us-east-1', 'amazon.nova-lite-v1:0'), MODEL_ARN('us-east-1', 'amazon.nova-micro-v1:0')],
      condition: { StringEquals: { [PROFILE_CONDITION_KEY]: arn } },
    });
    expect(statements).toHaveLength(2);
  });

  test('a foundation-model ARN grants that model only, without any profile statement', () => {
    const { template } = granted(bedrock({ modelId: 'arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-micro-v1:0' }));
    const statements = bedrockStatements(template);
    expect(statements).toHaveLength(1);
    expect(statements[0].condition).toBeUndefined();
    expect(statements[0].resources).toHaveLength(1);
    // Granted exactly as given, not rebuilt with the stack's Region and partition.
    expect(statements[0].resources[0]).toBe('arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-micro-v1:0');
  });

  test('defaults: maxTokens 1024 and a 15 s timeout; given values are kept', () => {
    const defaults = bedrock();
    expect(defaults.maxTokens).toBe(1024);
    expect(defaults.timeout.toSeconds()).toBe(15);
    const custom = bedrock({ maxTokens: 2048, timeout: Duration.seconds(20) });
    expect(custom.maxTokens).toBe(2048);
    expect(custom.timeout.toSeconds()).toBe(20);
    expect(custom.inputPricePer1kTokens).toBe(0.000035);
    expect(custom.outputPricePer1kTokens).toBe(0.00014);
  });
});

describe('ModelTier.bedrock: validation names the offending prop', () => {
  test.each<[string, Partial<BedrockTierProps>, RegExp]>([
    ['upper-case tierId', { tierId: 'Small' }, /tierId/],
    ['empty tierId', { tierId: '' }, /tierId/],
    ['tierId with a space', { tierId: 'sm all' }, /tierId/],
    ['tierId starting with a dash', { tierId: '-small' }, /tierId/],
    ['tierId of 33 characters', { tierId: 'a'.repeat(33) }, /tierId/],
    ['negative input price', { inputPricePer1kTokens: -0.001 }, /inputPricePer1kTokens/],
    ['NaN output price', { outputPricePer1kTokens: NaN }, /outputPricePer1kTokens/],
    ['infinite input price', { inputPricePer1kTokens: Infinity }, /inputPricePer1kTokens/],
    ['maxTokens 0', { maxTokens: 0 }, /maxTokens/],
    ['non-integer maxTokens', { maxTokens: 10.5 }, /maxTokens/],
    ['maxTokens too big', { maxTokens: 200_001 }, /maxTokens/],
    ['timeout under 1 s', { timeout: Duration.millis(500) }, /timeout/],
    ['timeout over 29 s', { timeout: Duration.seconds(30) }, /timeout/],
    ['empty modelId', { modelId: '' }, /modelId/],
    ['modelId without a provider', { modelId: 'nova-micro' }, /modelId/],
    ['modelId with spaces', { modelId: 'amazon. nova micro' }, /modelId/],
    ['non-Bedrock ARN', { modelId: 'arn:aws:s3:::my-bucket/model' }, /modelId.*not a Bedrock/],
    ['Bedrock ARN of another resource type', { modelId: 'arn:aws:bedrock:us-east-1:123456789012:provisioned-model/abc' }, /modelId/],
    ['empty destinationRegions', { modelId: 'us.amazon.nova-micro-v1:0', destinationRegions: [] }, /destinationRegions/],
  ])('%s', (_name, props, message) => {
    expect(() => bedrock(props)).toThrow(message);
  });

  test.each<[string, Partial<BedrockTierProps>]>([
    ['tierId of 32 characters', { tierId: 'a'.repeat(32) }],
    ['tierId with digits and dashes', { tierId: 'tier-2' }],
    ['free model (prices 0)', { inputPricePer1kTokens: 0, outputPricePer1kTokens: 0 }],
    ['maxTokens 1', { maxTokens: 1 }],
    ['maxTokens 200000', { maxTokens: 200_000 }],
    ['timeout 1 s', { timeout: Duration.seconds(1) }],
    ['timeout 29 s', { timeout: Duration.seconds(29) }],
  ])('accepts %s', (_name, props) => {
    expect(() => bedrock(props)).not.toThrow();
  });
});

describe('ModelTier.bedrock: service tiers', () => {
  const novaPro = (props: Partial<BedrockTierProps> = {}) => bedrock({
    tierId: 'large', modelId: 'us.amazon.nova-pro-v1:0', inputPricePer1kTokens: 0.0008, outputPricePer1kTokens: 0.0032, ...props,
  });

  /** The tier's runtime configuration, as a router writes it into its function. */
  function runtimeTier(tier: IModelTier): any {
    const stack = newStack();
    new TieredRouter(stack, 'Router', { tiers: [tier] });
    return routerConfig(Template.fromStack(stack)).tiers[0];
  }

  test('Standard by default: no service tier is sent, and the price file\'s Flex and Priority prices ride along', () => {
    const tier = novaPro();
    expect(tier.serviceTier).toBe(BedrockServiceTier.STANDARD);
    const config = runtimeTier(tier);
    expect(config).not.toHaveProperty('serviceTier');
    // Nova Pro in the price file: Flex 0.5x and Priority 1.75x of Standard.
    expect(config.serviceTierPrices).toEqual({
      flex: { inputPricePer1k: 0.0004, outputPricePer1k: 0.0016 },
      priority: { inputPricePer1k: 0.0014, outputPricePer1k: 0.0056 },
    });
    expect(config.inputPricePer1k).toBe(0.0008);
  });

  test('a tier at Priority asks for it; its prices stay Standard', () => {
    const config = runtimeTier(novaPro({ serviceTier: BedrockServiceTier.PRIORITY }));
    expect(config).toMatchObject({ serviceTier: 'priority', inputPricePer1k: 0.0008, outputPricePer1k: 0.0032 });
  });

  test('a model the price file has no Flex price for needs flexPriceFactor for FLEX', () => {
    expect(() => bedrock({ serviceTier: BedrockServiceTier.FLEX })).toThrow(/serviceTier FLEX.*flexPriceFactor/);
    expect(() => bedrock({ serviceTier: BedrockServiceTier.PRIORITY })).toThrow(/serviceTier PRIORITY.*priorityPriceFactor/);
    const config = runtimeTier(bedrock({ serviceTier: BedrockServiceTier.FLEX, flexPriceFactor: 0.5 }));
    expect(config).toMatchObject({ serviceTier: 'flex', serviceTierPrices: { flex: { inputPricePer1k: 0.0000175, outputPricePer1k: 0.00007 } } });
    expect(config.serviceTierPrices).not.toHaveProperty('priority');
  });

  test('a model without Flex or Priority prices has none in its configuration', () => {
    expect(runtimeTier(bedrock())).not.toHaveProperty('serviceTierPrices');
  });

  test('a given factor overrides the price file\'s', () => {
    const priority = runtimeTier(novaPro({ priorityPriceFactor: 2 })).serviceTierPrices.priority;
    expect(priority).toEqual({ inputPricePer1k: 0.0016, outputPricePer1k: 0.0064 });
  });

  test.each([0, -0.5, NaN, 11])('price factor %p is refused, naming the prop', (factor) => {
    expect(() => bedrock({ flexPriceFactor: factor })).toThrow(/flexPriceFactor/);
    expect(() => bedrock({ priorityPriceFactor: factor })).toThrow(/priorityPriceFactor/);
  });
});

const IMAGE = '123456789012.dkr.ecr.us-west-2.amazonaws.com/my/tgi-repo:2.4.0';

function sageMakerProps(props: Partial<SageMakerTierProps> = {}): SageMakerTierProps {
  return { tierId: 'sm', imageUri: IMAGE, ...props };
}

describe('ModelTier.sageMaker: an existing endpoint', () => {
  test('grants sagemaker:InvokeEndpoint on the lower-cased endpoint ARN and creates no SageMaker resources', () => {
    const stack = newStack();
    const tier = ModelTier.sageMaker(stack, 'Tier', { tierId: 'sm', existingEndpointName: 'My-Endpoint' });
    tier.grantInvoke(newGrantee(stack));
    const template = Template.fromStack(stack);
    expect(resourcesAllowing(template, 'sagemaker:InvokeEndpoint')).toEqual([
      'arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:endpoint/my-endpoint',
    ]);
    for (const type of ['AWS::SageMaker::Model', 'AWS::SageMaker::EndpointConfig', 'AWS::SageMaker::Endpoint', 'AWS::KMS::Key', 'AWS::ApplicationAutoScaling::ScalableTarget']) {
      template.resourceCountIs(type, 0);
    }
    // Only the grantee role: no execution role of its own.
    template.resourceCountIs('AWS::IAM::Role', 1);
    expect(tier.modelIdentifier).toBe('My-Endpoint');
    expect(tier.provider).toBe(ModelProvider.SAGEMAKER);
    expect(tier.apiFormat).toBe(SageMakerApiFormat.OPENAI_CHAT);
    expect(tier.inputPricePer1kTokens).toBe(0);
    expect(tier.outputPricePer1kTokens).toBe(0);
    expect(wildcardActions(template)).toEqual([]);
  });

  test.each<[Partial<SageMakerTierProps>, RegExp]>([
    [{ imageUri: IMAGE }, /imageUri.*existingEndpointName/],
    [{ instanceType: 'ml.g5.xlarge', instanceCount: 2 }, /instanceType, instanceCount.*existingEndpointName/],
    [{ autoScaling: { minCapacity: 1, maxCapacity: 2 } }, /autoScaling.*existingEndpointName/],
    [{ modelDataUrl: 's3://bucket/model.tar.gz' }, /modelDataUrl.*existingEndpointName/],
    [{ networkIsolation: true }, /networkIsolation.*existingEndpointName/],
    [{ endpointName: 'other' }, /endpointName.*existingEndpointName/],
  ])('existingEndpointName with new-endpoint props %p is an error naming them', (props, message) => {
    const stack = newStack();
    expect(() => ModelTier.sageMaker(stack, 'Tier', { tierId: 'sm', existingEndpointName: 'ep', ...props })).toThrow(message);
  });
});

describe('ModelTier.sageMaker: a new endpoint', () => {
  let stack: Stack;
  let template: Template;
  let tier: SageMakerModelTier;
  let endpointId: string;

  beforeAll(() => {
    stack = newStack();
    tier = new SageMakerModelTier(stack, 'Tier', sageMakerProps({
      modelDataUrl: 's3://my-model-bucket/models/qwen/model.tar.gz',
      environment: { HF_MODEL_ID: '/opt/ml/model', SM_NUM_GPUS: '1' },
      instanceType: 'ml.g5.2xlarge',
      instanceCount: 2,
      startupTimeout: Duration.minutes(20),
      autoScaling: {
        minCapacity: 1,
        maxCapacity: 4,
        targetInvocationsPerInstance: 120,
        scaleInCooldown: Duration.minutes(3),
        scaleOutCooldown: Duration.minutes(1),
      },
      inputPricePer1kTokens: 0.00005,
      outputPricePer1kTokens: 0.0001,
    }));
    tier.grantInvoke(newGrantee(stack));
    template = Template.fromStack(stack);
    [endpointId] = onlyResource(template, 'AWS::SageMaker::Endpoint');
  });

  test('a model with the image, the model data and the environment, run by its own execution role', () => {
    const [roleId] = Object.entries(template.findResources('AWS::IAM::Role', {
      Properties: { AssumeRolePolicyDocument: { Statement: [Match.objectLike({ Principal: { Service: 'sagemaker.amazonaws.com' } })] } },
    }))[0];
    template.hasResourceProperties('AWS::SageMaker::Model', {
      ExecutionRoleArn: { 'Fn::GetAtt': [roleId, 'Arn'] },
      PrimaryContainer: {
        Image: IMAGE,
        ModelDataUrl: 's3://my-model-bucket/models/qwen/model.tar.gz',
        Environment: { HF_MODEL_ID: '/opt/ml/model', SM_NUM_GPUS: '1' },
      },
      // With model data, the container needs no network of its own.
      EnableNetworkIsolation: true,
    });
    template.resourceCountIs('AWS::SageMaker::Model', 1);
  });

  test.each([
    ['a container that downloads its model (no modelDataUrl): off by default', {}, false],
    ['with model data but a Hub id in HF_MODEL_ID (the container still downloads): off by default', { modelDataUrl: 's3://my-model-bucket/m.tar.gz' }, false],
    ['model data and no HF_MODEL_ID: on', { modelDataUrl: 's3://my-model-bucket/m.tar.gz', environment: {} }, true],
    ['turned off with model data', { modelDataUrl: 's3://my-model-bucket/m.tar.gz', environment: {}, networkIsolation: false }, false],
    ['turned on without model data', { networkIsolation: true }, true],
  ])('network isolation: %s', (_case, props, expected) => {
    const own = newStack();
    new SageMakerModelTier(own, 'Tier', sageMakerProps({ environment: { HF_MODEL_ID: 'Qwen/Qwen2.5-7B-Instruct' }, ...props }));
    expect(onlyResource(Template.fromStack(own), 'AWS::SageMaker::Model')[1].Properties.EnableNetworkIsolation).toBe(expected);
  });

  test('an endpoint configuration with the instances and the startup timeouts; no volume key on a g5 (local NVMe storage)', () => {
    const [modelId] = onlyResource(template, 'AWS::SageMaker::Model');
    template.hasResourceProperties('AWS::SageMaker::EndpointConfig', {
      KmsKeyId: Match.absent(),
      ProductionVariants: [{
        VariantName: 'AllTraffic',
        ModelName: { 'Fn::GetAtt': [modelId, 'ModelName'] },
        InstanceType: 'ml.g5.2xlarge',
        InitialInstanceCount: 2,
        InitialVariantWeight: 1,
        ContainerStartupHealthCheckTimeoutInSeconds: 1200,
        ModelDataDownloadTimeoutInSeconds: 1200,
      }],
    });
    // The only key of the stack is not a volume key.
    expect(JSON.stringify(template.findResources('AWS::KMS::Key'))).not.toContain('storage volume');
  });

  test('an instance type without local storage gets a KMS-encrypted volume (rotating key)', () => {
    const own = newStack();
    new SageMakerModelTier(own, 'Tier', sageMakerProps({ instanceType: 'ml.m5.xlarge' }));
    const t = Template.fromStack(own);
    const [keyId] = onlyResource(t, 'AWS::KMS::Key');
    t.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true });
    t.hasResourceProperties('AWS::SageMaker::EndpointConfig', { KmsKeyId: { 'Fn::GetAtt': [keyId, 'Arn'] } });
  });

  test.each(['ml.g5.xlarge', 'ml.g4dn.xlarge', 'ml.p4d.24xlarge', 'ml.m5d.large'])('encryptionKey with %s (local NVMe storage) fails at synth naming the prop', (instanceType) => {
    const own = newStack();
    const key = new kms.Key(own, 'MyKey', { enableKeyRotation: true });
    expect(() => new SageMakerModelTier(own, 'Tier', sageMakerProps({ instanceType, encryptionKey: key })))
      .toThrow(new RegExp(`encryptionKey cannot be used with ${instanceType.replace(/\./g, '\\.')}`));
  });

  test('an endpoint named after the construct, on that configuration', () => {
    const [configId] = onlyResource(template, 'AWS::SageMaker::EndpointConfig');
    const [, endpoint] = onlyResource(template, 'AWS::SageMaker::Endpoint');
    expect(endpoint.Properties.EndpointConfigName).toEqual({ 'Fn::GetAtt': [configId, 'EndpointConfigName'] });
    expect(endpoint.Properties.EndpointName).toBe(tier.endpointName);
    expect(tier.endpointName).toMatch(/^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$/);
    expect(tier.modelIdentifier).toBe(tier.endpointName);
    expect(stack.resolve(tier.endpointArn)).toEqual({ Ref: endpointId });
  });

  test('the execution role pulls only the image\'s ECR repository and reads only the model data object', () => {
    const role = tier.executionRole!;
    const roleId = stack.getLogicalId(role.node.defaultChild as any);
    const statements = iamPolicyStatements(template)
      .filter(({ type, logicalId }) => type === 'AWS::IAM::Policy' && JSON.stringify(template.toJSON().Resources[logicalId].Properties.Roles).includes(roleId))
      .map(({ statement }) => statement);
    const ecrPull = statements.find((s) => actionsOf(s).includes('ecr:BatchGetImage'))!;
    expect(resourcesOf(ecrPull)).toEqual(['arn:${AWS::Partition}:ecr:us-west-2:123456789012:repository/my/tgi-repo']);
    const s3Read = statements.filter((s) => actionsOf(s).some((a) => a.startsWith('s3:')));
    expect(s3Read).toHaveLength(1);
    expect(actionsOf(s3Read[0])).toEqual(['s3:GetObject']);
    expect(resourcesOf(s3Read[0])).toEqual(['arn:${AWS::Partition}:s3:::my-model-bucket/models/qwen/model.tar.gz']);
    // Resource "*" only for actions that support no resource-level scoping.
    const unscoped = statements.filter((s) => resourcesOf(s).includes('*')).flatMap(actionsOf).sort();
    expect(unscoped).toEqual(['cloudwatch:PutMetricData', 'ecr:GetAuthorizationToken']);
    const putMetric = statements.find((s) => actionsOf(s).includes('cloudwatch:PutMetricData'))!;
    // Only into SageMaker's own namespaces.
    expect(putMetric.Condition).toEqual({ StringLike: { 'cloudwatch:namespace': ['/aws/sagemaker/*', 'AWS/SageMaker'] } });
  });

  test('auto scaling: a scalable target on the variant and target tracking of invocations per instance', () => {
    const [targetId, target] = onlyResource(template, 'AWS::ApplicationAutoScaling::ScalableTarget');
    expect(target.Properties).toMatchObject({
      MinCapacity: 1,
      MaxCapacity: 4,
      ServiceNamespace: 'sagemaker',
      ScalableDimension: 'sagemaker:variant:DesiredInstanceCount',
    });
    expect(flatten(target.Properties.ResourceId)).toBe(`endpoint/\${GetAtt:${endpointId}.EndpointName}/variant/AllTraffic`);
    template.hasResourceProperties('AWS::ApplicationAutoScaling::ScalingPolicy', {
      PolicyType: 'TargetTrackingScaling',
      ScalingTargetId: { Ref: targetId },
      TargetTrackingScalingPolicyConfiguration: {
        PredefinedMetricSpecification: { PredefinedMetricType: 'SageMakerVariantInvocationsPerInstance' },
        TargetValue: 120,
        ScaleInCooldown: 180,
        ScaleOutCooldown: 60,
      },
    });
    expect(tier.scalableTarget).toBeDefined();
  });

  test('grantInvoke: sagemaker:InvokeEndpoint on exactly this endpoint (Ref of the endpoint is its ARN)', () => {
    expect(statementsAllowing(template, 'sagemaker:InvokeEndpoint').map(({ statement }) => [actionsOf(statement), resourcesOf(statement)])).toEqual([
      [['sagemaker:InvokeEndpoint'], [`\${Ref:${endpointId}}`]],
    ]);
  });

  test('prices are passed through; no wildcard actions', () => {
    expect(tier.inputPricePer1kTokens).toBe(0.00005);
    expect(tier.outputPricePer1kTokens).toBe(0.0001);
    expect(wildcardActions(template)).toEqual([]);
  });
});

describe('ModelTier.sageMaker: options of a new endpoint', () => {
  test('defaults: ml.g5.xlarge, one instance, 15 minute startup, no scaling, no model data', () => {
    const stack = newStack();
    const tier = new SageMakerModelTier(stack, 'Tier', sageMakerProps());
    const template = Template.fromStack(stack);
    template.hasResourceProperties('AWS::SageMaker::EndpointConfig', {
      ProductionVariants: [Match.objectLike({
        InstanceType: 'ml.g5.xlarge',
        InitialInstanceCount: 1,
        ContainerStartupHealthCheckTimeoutInSeconds: 900,
        ModelDataDownloadTimeoutInSeconds: 900,
      })],
    });
    template.hasResourceProperties('AWS::SageMaker::Model', { PrimaryContainer: { Image: IMAGE, ModelDataUrl: Match.absent() } });
    template.resourceCountIs('AWS::ApplicationAutoScaling::ScalableTarget', 0);
    expect(resourcesAllowing(template, 's3:GetObject')).toEqual([]);
    expect(tier.scalableTarget).toBeUndefined();
  });

  test('model data under a prefix: s3:GetObject on prefix/* and s3:ListBucket limited to the prefix', () => {
    const stack = newStack();
    new SageMakerModelTier(stack, 'Tier', sageMakerProps({ modelDataUrl: 's3://my-model-bucket/models/qwen/' }));
    const template = Template.fromStack(stack);
    expect(resourcesAllowing(template, 's3:GetObject')).toEqual(['arn:${AWS::Partition}:s3:::my-model-bucket/models/qwen/*']);
    const [list] = statementsAllowing(template, 's3:ListBucket');
    expect(resourcesOf(list.statement)).toEqual(['arn:${AWS::Partition}:s3:::my-model-bucket']);
    expect(list.statement.Condition).toEqual({ StringLike: { 's3:prefix': ['models/qwen/*'] } });
  });

  test('a given KMS key encrypts the volume and no key is created', () => {
    const stack = newStack();
    const key = new kms.Key(stack, 'MyKey', { enableKeyRotation: true });
    new SageMakerModelTier(stack, 'Tier', sageMakerProps({ encryptionKey: key, endpointName: 'my-endpoint', instanceType: 'ml.m5.xlarge' }));
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::KMS::Key', 1);
    template.hasResourceProperties('AWS::SageMaker::EndpointConfig', { KmsKeyId: stack.resolve(key.keyArn) });
    template.hasResourceProperties('AWS::SageMaker::Endpoint', { EndpointName: 'my-endpoint' });
  });

  test('in a VPC with private subnets: the model runs in them behind its own security group', () => {
    const stack = newStack();
    const vpc = new ec2.Vpc(stack, 'Vpc', { maxAzs: 2, natGateways: 1 });
    const tier = new SageMakerModelTier(stack, 'Tier', sageMakerProps({ vpc }));
    const template = Template.fromStack(stack);
    const [, model] = onlyResource(template, 'AWS::SageMaker::Model');
    expect(model.Properties.VpcConfig.Subnets).toEqual(stack.resolve(vpc.privateSubnets.map((s) => s.subnetId)));
    const sg = tier.node.findChild('SecurityGroup') as ec2.SecurityGroup;
    expect(model.Properties.VpcConfig.SecurityGroupIds).toEqual([stack.resolve(sg.securityGroupId)]);
  });

  test('in a VPC with isolated subnets only (as ScalableAiService creates), the model runs in the isolated subnets', () => {
    // Model data comes from S3 through a gateway endpoint: isolated subnets are the natural home.
    const stack = newStack();
    const vpc = new ec2.Vpc(stack, 'Vpc', {
      maxAzs: 2,
      natGateways: 0,
      subnetConfiguration: [{ name: 'isolated', subnetType: ec2.SubnetType.PRIVATE_ISOLATED }],
    });
    let tier: SageMakerModelTier | undefined;
    expect(() => { tier = new SageMakerModelTier(stack, 'Tier', sageMakerProps({ vpc, modelDataUrl: 's3://bucket/model.tar.gz' })); }).not.toThrow();
    const [, model] = onlyResource(Template.fromStack(stack), 'AWS::SageMaker::Model');
    expect(tier).toBeDefined();
    expect(model.Properties.VpcConfig.Subnets).toEqual(stack.resolve(vpc.isolatedSubnets.map((s) => s.subnetId)));
  });
});

describe('ModelTier.sageMaker: validation names the offending prop', () => {
  test.each<[string, Partial<SageMakerTierProps>, RegExp]>([
    ['missing imageUri', { imageUri: undefined }, /imageUri is required/],
    ['Docker Hub image', { imageUri: 'docker.io/library/nginx:latest' }, /imageUri must be an ECR image URI/],
    ['public ECR image', { imageUri: 'public.ecr.aws/nginx/nginx:latest' }, /imageUri/],
    ['ECR image without a tag or digest', { imageUri: '123456789012.dkr.ecr.us-east-1.amazonaws.com/repo' }, /imageUri/],
    ['https model data', { modelDataUrl: 'https://bucket.s3.amazonaws.com/model.tar.gz' }, /modelDataUrl/],
    ['model data without a key', { modelDataUrl: 's3://bucket' }, /modelDataUrl/],
    ['model data in an upper-case bucket', { modelDataUrl: 's3://My_Bucket/model.tar.gz' }, /modelDataUrl/],
    ['instanceCount 0', { instanceCount: 0 }, /instanceCount/],
    ['fractional instanceCount', { instanceCount: 1.5 }, /instanceCount/],
    ['instanceCount above autoScaling.maxCapacity', { instanceCount: 5, autoScaling: { minCapacity: 1, maxCapacity: 3 } }, /instanceCount.*autoScaling/],
    ['instanceCount below autoScaling.minCapacity', { instanceCount: 1, autoScaling: { minCapacity: 2, maxCapacity: 3 } }, /instanceCount.*autoScaling/],
    ['autoScaling.minCapacity 0', { autoScaling: { minCapacity: 0, maxCapacity: 3 } }, /autoScaling/],
    ['autoScaling max below min', { instanceCount: 3, autoScaling: { minCapacity: 3, maxCapacity: 2 } }, /autoScaling/],
    ['instanceType without the ml. prefix', { instanceType: 'g5.xlarge' }, /instanceType/],
    ['upper-case instanceType', { instanceType: 'ml.G5.xlarge' }, /instanceType/],
    ['an endpointName with an underscore', { endpointName: 'my_endpoint' }, /endpointName must be 1-63 letters/],
    ['an endpointName starting with a dash', { endpointName: '-endpoint' }, /endpointName/],
    ['startupTimeout under a minute', { startupTimeout: Duration.seconds(30) }, /startupTimeout/],
    ['startupTimeout over an hour', { startupTimeout: Duration.minutes(61) }, /startupTimeout/],
    ['bad tierId', { tierId: 'SM' }, /tierId/],
    ['negative price', { inputPricePer1kTokens: -1 }, /inputPricePer1kTokens/],
    ['timeout 30 s', { timeout: Duration.seconds(30) }, /timeout/],
  ])('%s', (_name, props, message) => {
    const stack = newStack();
    expect(() => new SageMakerModelTier(stack, 'Tier', sageMakerProps(props))).toThrow(message);
  });

  test('accepts an image by digest and a China-Region ECR host', () => {
    const stack = newStack();
    expect(() => new SageMakerModelTier(stack, 'A', sageMakerProps({ tierId: 'a', imageUri: `123456789012.dkr.ecr.us-east-1.amazonaws.com/repo@sha256:${'a'.repeat(64)}` }))).not.toThrow();
    expect(() => new SageMakerModelTier(stack, 'B', sageMakerProps({ tierId: 'b', imageUri: '123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/repo:1' }))).not.toThrow();
  });
});
