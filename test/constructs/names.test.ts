/** Physical names: set only where CloudFormation needs one, unique per stack and construct path, overridable. */
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { newStack, onlyResource } from './helpers';
import { ModelTier, TieredRouter, VectorStore, type IModelTier } from '../../constructs';

const IMAGE = '763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-pytorch-tgi-inference:2.4.0-tgi2.4.0-gpu-py311-cu124-ubuntu22.04';

function bedrockTier(): IModelTier {
  return ModelTier.bedrock({ tierId: 'small', modelId: 'amazon.nova-micro-v1:0', inputPricePer1kTokens: 0.000035, outputPricePer1kTokens: 0.00014 });
}

function apiName(stack: Stack): string {
  return onlyResource(Template.fromStack(stack), 'AWS::ApiGatewayV2::Api')[1].Properties.Name;
}

describe('the router\'s HTTP API name', () => {
  test('two routers in two stacks have different names, carrying the stack and the construct path', () => {
    const app = new App();
    const stacks = ['ShopStack', 'SupportStack'].map((id) => new Stack(app, id));
    for (const stack of stacks) new TieredRouter(stack, 'Router', { tiers: [bedrockTier()] });
    const names = stacks.map(apiName);
    expect(names[0]).not.toEqual(names[1]);
    expect(names[0]).toMatch(/^ShopStack-Router-[A-F0-9]{8}$/);
    expect(names[1]).toMatch(/^SupportStack-Router-[A-F0-9]{8}$/);
  });

  test('two routers in one stack have different names', () => {
    const stack = newStack();
    new TieredRouter(stack, 'A', { tiers: [bedrockTier()] });
    new TieredRouter(stack, 'B', { tiers: [bedrockTier()] });
    const names = Object.values(Template.fromStack(stack).findResources('AWS::ApiGatewayV2::Api')).map((r) => r.Properties.Name);
    expect(new Set(names).size).toBe(2);
  });

  test('apiName overrides it', () => {
    const stack = newStack();
    new TieredRouter(stack, 'Router', { tiers: [bedrockTier()], apiName: 'shop-assistant' });
    expect(apiName(stack)).toBe('shop-assistant');
  });
});

describe('SageMaker endpoint names', () => {
  function endpointNames(stack: Stack): string[] {
    return Object.values(Template.fromStack(stack).findResources('AWS::SageMaker::Endpoint')).map((r) => r.Properties.EndpointName);
  }

  test('two tiers in one stack, and the same tier in two stacks, get different names; models and configurations get none', () => {
    const app = new App();
    const a = new Stack(app, 'StackA');
    ModelTier.sageMaker(a, 'Large', { tierId: 'large', imageUri: IMAGE });
    ModelTier.sageMaker(a, 'Medium', { tierId: 'medium', imageUri: IMAGE });
    const b = new Stack(app, 'StackB');
    ModelTier.sageMaker(b, 'Large', { tierId: 'large', imageUri: IMAGE });
    const names = [...endpointNames(a), ...endpointNames(b)];
    expect(new Set(names).size).toBe(3);
    for (const name of names) expect(name).toMatch(/^Stack[AB]-(Large|Medium)-[A-F0-9]{8}$/);
    const template = Template.fromStack(a);
    for (const type of ['AWS::SageMaker::Model', 'AWS::SageMaker::EndpointConfig']) {
      for (const resource of Object.values(template.findResources(type))) {
        expect(resource.Properties.ModelName ?? resource.Properties.EndpointConfigName).toBeUndefined();
      }
    }
  });

  test('endpointName overrides it', () => {
    const stack = newStack();
    ModelTier.sageMaker(stack, 'Large', { tierId: 'large', imageUri: IMAGE, endpointName: 'shop-large' });
    expect(endpointNames(stack)).toEqual(['shop-large']);
  });
});

describe('OpenSearch Serverless collection names', () => {
  test('generated per stack and construct path; the VPC endpoint shares the name', () => {
    const app = new App();
    const stacks = ['StackA', 'StackB'].map((id) => new Stack(app, id));
    for (const stack of stacks) {
      const vpc = new ec2.Vpc(stack, 'Vpc', { maxAzs: 2, natGateways: 0, subnetConfiguration: [{ name: 'data', subnetType: ec2.SubnetType.PRIVATE_ISOLATED }] });
      new TieredRouter(stack, 'Router', { tiers: [bedrockTier()], vpc, semanticCache: { vectorStore: VectorStore.openSearchServerless() } });
    }
    const names = stacks.map((stack) => {
      const template = Template.fromStack(stack);
      const name = onlyResource(template, 'AWS::OpenSearchServerless::Collection')[1].Properties.Name;
      expect(onlyResource(template, 'AWS::OpenSearchServerless::VpcEndpoint')[1].Properties.Name).toBe(name);
      return name;
    });
    expect(names[0]).not.toEqual(names[1]);
    for (const name of names) expect(name).toMatch(/^sai-[a-z0-9-]{3,24}$/);
  });
});
