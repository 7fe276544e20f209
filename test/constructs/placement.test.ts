/**
 * Where the library places things in a VPC (private subnets with egress first, never public ones,
 * `vpcSubnets` on every construct and the facade) and the synth warning about the VPC endpoints a
 * function in isolated subnets lacks.
 */
import { App, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import { isolatedVpc, logicalIdOf, newStack, onlyResource, orgVpc } from './helpers';
import {
  BatchPipeline, ModelTier, ResponseCache, ScalableAiService, StaticAnswers, TieredRouter, UserContextBackend, UserContextStore, VectorStore,
  type IModelTier,
} from '../../constructs';

const IMAGE = '763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-pytorch-tgi-inference:2.4.0-tgi2.4.0-gpu-py311-cu124-ubuntu22.04';
const MISSING = 'cdk-scalable-ai:missingVpcEndpoints';
const UNVERIFIED = 'cdk-scalable-ai:unverifiedVpcEndpoints';

function bedrockTier(): IModelTier {
  return ModelTier.bedrock({ tierId: 'small', modelId: 'amazon.nova-micro-v1:0', inputPricePer1kTokens: 0.000035, outputPricePer1kTokens: 0.00014 });
}

function subnetIdsOf(stack: Stack, fn: lambda.IFunction): unknown {
  return Template.fromStack(stack).toJSON().Resources[logicalIdOf(stack, fn)].Properties.VpcConfig.SubnetIds;
}

/** The warnings of one id on the construct at `path` (every construct: `*`). */
function warnings(stack: Stack, id: string, path = '*'): string[] {
  return Annotations.fromStack(stack).findWarning(path, Match.stringLikeRegexp(id)).map((w) => String(w.entry.data));
}

describe('in an organization\'s VPC (public, private with egress, isolated subnets)', () => {
  let stack: Stack;
  let vpc: ec2.Vpc;
  let service: ScalableAiService;

  beforeAll(() => {
    stack = newStack();
    vpc = orgVpc(stack);
    service = new ScalableAiService(stack, 'Service', {
      tiers: [bedrockTier()],
      vpc,
      staticAnswers: {},
      semanticCache: { vectorStore: VectorStore.openSearchServerless() },
      batchPipeline: {},
    });
  });

  test('every function runs in the private subnets with egress', () => {
    const egress = stack.resolve(vpc.privateSubnets.map((s) => s.subnetId));
    const pipeline = service.batchPipeline!;
    const functions = [service.router.function, service.staticAnswers!.loaderFunction, pipeline.jobsApiFunction, pipeline.workerFunction];
    for (const fn of functions) expect(subnetIdsOf(stack, fn)).toEqual(egress);
  });

  test('the cache and the OpenSearch Serverless endpoint sit in the private subnets with egress', () => {
    const template = Template.fromStack(stack);
    const egress = stack.resolve(vpc.privateSubnets.map((s) => s.subnetId));
    expect(onlyResource(template, 'AWS::ElastiCache::SubnetGroup')[1].Properties.SubnetIds).toEqual(egress);
    expect(onlyResource(template, 'AWS::OpenSearchServerless::VpcEndpoint')[1].Properties.SubnetIds).toEqual(egress);
  });

  test('no endpoint warning: the subnets reach AWS APIs through NAT', () => {
    expect(warnings(stack, MISSING)).toEqual([]);
    expect(warnings(stack, UNVERIFIED)).toEqual([]);
  });
});

describe('vpcSubnets', () => {
  test('the facade passes its vpcSubnets to the cache, the router, the static answers and the pipeline', () => {
    const stack = newStack();
    const vpc = orgVpc(stack);
    // One Availability Zone's subnet with egress: what no default would pick.
    const service = new ScalableAiService(stack, 'Service', {
      tiers: [bedrockTier()],
      vpc,
      staticAnswers: {},
      batchPipeline: {},
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, availabilityZones: [vpc.availabilityZones[0]] },
    });
    const chosen = [stack.resolve(vpc.privateSubnets[0].subnetId)];
    for (const fn of [service.router.function, service.staticAnswers!.loaderFunction, service.batchPipeline!.workerFunction]) {
      expect(subnetIdsOf(stack, fn)).toEqual(chosen);
    }
    expect(onlyResource(Template.fromStack(stack), 'AWS::ElastiCache::SubnetGroup')[1].Properties.SubnetIds).toEqual(chosen);
  });

  test('each construct honours its own vpcSubnets', () => {
    const stack = newStack();
    const vpc = orgVpc(stack);
    const data = { subnetType: ec2.SubnetType.PRIVATE_ISOLATED };
    const cache = new ResponseCache(stack, 'Cache', { vpc, vpcSubnets: data });
    const answers = new StaticAnswers(stack, 'Answers', { vpc, cache, vpcSubnets: data });
    const router = new TieredRouter(stack, 'Router', {
      tiers: [bedrockTier()],
      vpc,
      cache,
      staticAnswers: answers,
      vpcSubnets: { availabilityZones: [vpc.availabilityZones[0]] },
      semanticCache: { vectorStore: VectorStore.openSearchServerless({ vpcSubnets: data }) },
    });
    const tier = ModelTier.sageMaker(stack, 'Tier', { tierId: 'sm', imageUri: IMAGE, vpc, vpcSubnets: data });
    const template = Template.fromStack(stack);
    const isolated = stack.resolve(vpc.isolatedSubnets.map((s) => s.subnetId));
    expect(subnetIdsOf(stack, answers.loaderFunction)).toEqual(isolated);
    expect(subnetIdsOf(stack, router.function)).toEqual([stack.resolve(vpc.privateSubnets[0].subnetId)]);
    expect(onlyResource(template, 'AWS::OpenSearchServerless::VpcEndpoint')[1].Properties.SubnetIds).toEqual(isolated);
    expect(onlyResource(template, 'AWS::SageMaker::Model')[1].Properties.VpcConfig.Subnets).toEqual(isolated);
    expect(tier.tierId).toBe('sm');
  });

  const publicSubnets = { subnetType: ec2.SubnetType.PUBLIC };
  test.each<[string, (stack: Stack, vpc: ec2.Vpc) => unknown, RegExp]>([
    ['the router', (stack, vpc) => new TieredRouter(stack, 'Router', { tiers: [bedrockTier()], vpc, vpcSubnets: publicSubnets }), /TieredRouter: vpcSubnets selects public subnets/],
    ['the static answers loader', (stack, vpc) => new StaticAnswers(stack, 'Answers', { vpc, cache: new ResponseCache(stack, 'Cache', { vpc }), vpcSubnets: publicSubnets }),
      /StaticAnswers: vpcSubnets selects public subnets/],
    ['the OpenSearch Serverless endpoint', (stack, vpc) => new TieredRouter(stack, 'Router', {
      tiers: [bedrockTier()], vpc, semanticCache: { vectorStore: VectorStore.openSearchServerless({ vpcSubnets: publicSubnets }) },
    }), /VectorStore.openSearchServerless: vpcSubnets selects public subnets/],
    ['a SageMaker model', (stack, vpc) => ModelTier.sageMaker(stack, 'Tier', { tierId: 'sm', imageUri: IMAGE, vpc, vpcSubnets: publicSubnets }),
      /ModelTier.sageMaker\(sm\): vpcSubnets selects public subnets/],
    ['the facade', (stack, vpc) => new ScalableAiService(stack, 'Service', { tiers: [bedrockTier()], vpc, vpcSubnets: { subnetGroupName: 'public' } }),
      /ResponseCache: vpcSubnets selects public subnets/],
  ])('public subnets are refused for %s', (_name, build, message) => {
    const stack = newStack();
    expect(() => build(stack, orgVpc(stack))).toThrow(message);
  });
});

describe('functions in isolated subnets: the VPC endpoints they need', () => {
  test('without endpoints, the router is warned of each one it calls', () => {
    const stack = newStack('Svc', { env: { account: '111111111111', region: 'eu-west-1' } });
    const vpc = isolatedVpc(stack);
    const cache = new ResponseCache(stack, 'Cache', { vpc });
    const sageMaker = ModelTier.sageMaker(stack, 'Large', { tierId: 'large', existingEndpointName: 'large' });
    new TieredRouter(stack, 'Router', { tiers: [bedrockTier(), sageMaker], vpc, cache });
    const found = warnings(stack, MISSING, '/Svc/Router/Handler/Function');
    expect(found).toHaveLength(1);
    expect(found[0]).toContain('com.amazonaws.eu-west-1.bedrock-runtime (interface), com.amazonaws.eu-west-1.sagemaker.runtime (interface), '
      + 'com.amazonaws.eu-west-1.secretsmanager (interface)');
  });

  test('only the missing endpoints are named; a gateway endpoint counts', () => {
    const stack = newStack();
    const vpc = isolatedVpc(stack);
    vpc.addInterfaceEndpoint('Bedrock', { service: ec2.InterfaceVpcEndpointAwsService.BEDROCK_RUNTIME });
    vpc.addGatewayEndpoint('S3', { service: ec2.GatewayVpcEndpointAwsService.S3 });
    const cache = new ResponseCache(stack, 'Cache', { vpc });
    new StaticAnswers(stack, 'Answers', { vpc, cache });
    const found = warnings(stack, MISSING, '/TestStack/Answers/Loader/Function');
    expect(found).toHaveLength(1);
    expect(found[0]).toMatch(/lacks the endpoints it calls: com\.amazonaws\.<region>\.secretsmanager \(interface\)\. Add them/);
  });

  test('the batch pipeline\'s functions name theirs (bulk mode: S3 and the Bedrock control plane too)', () => {
    const stack = newStack();
    const vpc = isolatedVpc(stack);
    const tier = bedrockTier();
    const router = new TieredRouter(stack, 'Router', { tiers: [tier], vpc });
    new BatchPipeline(stack, 'Jobs', { router, bulk: { tier } });
    expect(warnings(stack, MISSING, '/TestStack/Jobs/JobsApi/Function')[0])
      .toMatch(/<region>\.bedrock \(interface\), .*<region>\.dynamodb \(gateway or interface\), .*<region>\.s3 \(gateway or interface\), .*<region>\.sqs \(interface\)\./);
    expect(warnings(stack, MISSING, '/TestStack/Jobs/Worker/Function')[0]).toMatch(/bedrock-runtime \(interface\), .*dynamodb/);
    expect(warnings(stack, MISSING, '/TestStack/Jobs/BulkCompletion/Function')[0]).toMatch(/dynamodb \(gateway or interface\), .*s3 \(gateway or interface\)\./);
  });

  test('the DynamoDB user context is a need too', () => {
    const stack = newStack();
    const vpc = isolatedVpc(stack);
    vpc.addInterfaceEndpoint('Bedrock', { service: ec2.InterfaceVpcEndpointAwsService.BEDROCK_RUNTIME });
    new TieredRouter(stack, 'Router', {
      tiers: [bedrockTier()],
      vpc,
      userContext: new UserContextStore(stack, 'Context', { backend: UserContextBackend.DYNAMODB }),
    });
    expect(warnings(stack, MISSING, '/TestStack/Router/Handler/Function')[0]).toMatch(/endpoints it calls: com\.amazonaws\.<region>\.dynamodb \(gateway or interface\)\./);
  });

  test('in the VPC the facade creates (isolated subnets and the endpoints), nothing is missing', () => {
    const stack = newStack();
    const tier = bedrockTier();
    new ScalableAiService(stack, 'Service', {
      tiers: [tier, ModelTier.sageMaker(stack, 'Large', { tierId: 'large', existingEndpointName: 'large' })],
      staticAnswers: {},
      userContext: { backend: UserContextBackend.DYNAMODB },
      batchPipeline: { bulk: { tier } },
    });
    expect(warnings(stack, MISSING)).toEqual([]);
    expect(warnings(stack, UNVERIFIED)).toEqual([]);
  });

  test('an imported VPC: the endpoints cannot be verified, and the warning says so', () => {
    const stack = newStack();
    const vpc = ec2.Vpc.fromVpcAttributes(stack, 'Vpc', {
      vpcId: 'vpc-0123456789abcdef0',
      availabilityZones: ['eu-west-1a', 'eu-west-1b'],
      isolatedSubnetIds: ['subnet-0aaaaaaaaaaaaaaaa', 'subnet-0bbbbbbbbbbbbbbbb'],
    });
    new TieredRouter(stack, 'Router', { tiers: [bedrockTier()], vpc });
    expect(warnings(stack, MISSING)).toEqual([]);
    const found = warnings(stack, UNVERIFIED, '/TestStack/Router/Handler/Function');
    expect(found).toHaveLength(1);
    expect(found[0]).toMatch(/imported VPC, whose VPC endpoints cannot be verified at synth; it calls: com\.amazonaws\.<region>\.bedrock-runtime \(interface\)\./);
  });

  test('an imported VPC with private subnets: no warning (they have egress)', () => {
    const stack = newStack();
    const vpc = ec2.Vpc.fromVpcAttributes(stack, 'Vpc', {
      vpcId: 'vpc-0123456789abcdef0',
      availabilityZones: ['eu-west-1a', 'eu-west-1b'],
      privateSubnetIds: ['subnet-0aaaaaaaaaaaaaaaa', 'subnet-0bbbbbbbbbbbbbbbb'],
    });
    new TieredRouter(stack, 'Router', { tiers: [bedrockTier()], vpc });
    expect(warnings(stack, MISSING)).toEqual([]);
    expect(warnings(stack, UNVERIFIED)).toEqual([]);
  });

  test('endpoints of a VPC in another stack are found', () => {
    const app = new App();
    const network = new Stack(app, 'Network');
    const vpc = isolatedVpc(network);
    vpc.addInterfaceEndpoint('Bedrock', { service: ec2.InterfaceVpcEndpointAwsService.BEDROCK_RUNTIME });
    const svc = new Stack(app, 'Svc');
    const sageMaker = ModelTier.sageMaker(svc, 'Large', { tierId: 'large', existingEndpointName: 'large' });
    new TieredRouter(svc, 'Router', { tiers: [bedrockTier(), sageMaker], vpc });
    const found = warnings(svc, MISSING);
    expect(found).toHaveLength(1);
    expect(found[0]).toMatch(/endpoints it calls: com\.amazonaws\.<region>\.sagemaker\.runtime \(interface\)\. Add them/);
  });
});
