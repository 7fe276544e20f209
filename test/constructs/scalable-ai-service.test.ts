import type { Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { flatten, newStack, onlyResource, resourcesAllowing, routerConfig, wildcardActions } from './helpers';
import * as root from '../../constructs';
import { ModelTier, ResponseCache, ScalableAiService, TieredRouter, type IModelTier } from '../../constructs';

function tiers(stack: Stack): IModelTier[] {
  return [
    ModelTier.bedrock({ tierId: 'small', modelId: 'us.amazon.nova-micro-v1:0', inputPricePer1kTokens: 0.000035, outputPricePer1kTokens: 0.00014 }),
    ModelTier.sageMaker(stack, 'LargeTier', { tierId: 'large', existingEndpointName: 'large-endpoint' }),
  ];
}

/** The ingress rules (inline and standalone) of a security group, by its logical id. */
function ingressOf(template: Template, sgLogicalId: string): Array<Record<string, any>> {
  const resources = template.toJSON().Resources;
  const inline = resources[sgLogicalId].Properties.SecurityGroupIngress ?? [];
  const standalone = Object.values(template.findResources('AWS::EC2::SecurityGroupIngress'))
    .map((r) => r.Properties)
    .filter((p) => JSON.stringify(p.GroupId) === JSON.stringify({ 'Fn::GetAtt': [sgLogicalId, 'GroupId'] }));
  return [...inline, ...standalone];
}

describe('ScalableAiService: defaults (its own VPC)', () => {
  let stack: Stack;
  let template: Template;
  let service: ScalableAiService;

  beforeAll(() => {
    stack = newStack();
    service = new ScalableAiService(stack, 'Service', { tiers: tiers(stack) });
    template = Template.fromStack(stack);
  });

  test('a VPC over two AZs with isolated subnets only: no internet gateway, no NAT gateway', () => {
    template.resourceCountIs('AWS::EC2::VPC', 1);
    const subnets = Object.values(template.findResources('AWS::EC2::Subnet'));
    expect(subnets).toHaveLength(2);
    for (const subnet of subnets) {
      expect(subnet.Properties.MapPublicIpOnLaunch).toBe(false);
      expect(subnet.Properties.Tags).toContainEqual({ Key: 'aws-cdk:subnet-type', Value: 'Isolated' });
    }
    for (const type of ['AWS::EC2::InternetGateway', 'AWS::EC2::NatGateway', 'AWS::EC2::EIP', 'AWS::EC2::EgressOnlyInternetGateway']) {
      template.resourceCountIs(type, 0);
    }
    const routes = Object.values(template.findResources('AWS::EC2::Route'));
    expect(routes).toEqual([]);
    expect(service.vpc.isolatedSubnets).toHaveLength(2);
    expect(service.vpc.publicSubnets).toHaveLength(0);
    expect(service.vpc.privateSubnets).toHaveLength(0);
  });

  test('a flow log of all the VPC\'s traffic to a log group with a retention', () => {
    const [vpcId] = onlyResource(template, 'AWS::EC2::VPC');
    const [, flowLog] = onlyResource(template, 'AWS::EC2::FlowLog');
    expect(flowLog.Properties).toMatchObject({ ResourceType: 'VPC', ResourceId: { Ref: vpcId }, TrafficType: 'ALL', LogDestinationType: 'cloud-watch-logs' });
    const logGroupId = flowLog.Properties.LogGroupName.Ref;
    expect(template.toJSON().Resources[logGroupId].Properties.RetentionInDays).toBeGreaterThan(0);
  });

  test('three interface endpoints (Bedrock Runtime, SageMaker Runtime, Secrets Manager) in the isolated subnets', () => {
    const endpoints = Object.values(template.findResources('AWS::EC2::VPCEndpoint')).map((e) => e.Properties);
    expect(endpoints.map((e) => flatten(e.ServiceName)).sort()).toEqual([
      'com.amazonaws.${AWS::Region}.bedrock-runtime',
      'com.amazonaws.${AWS::Region}.sagemaker.runtime',
      'com.amazonaws.${AWS::Region}.secretsmanager',
    ]);
    const isolated = stack.resolve(service.vpc.isolatedSubnets.map((s) => s.subnetId));
    for (const endpoint of endpoints) {
      expect(endpoint).toMatchObject({ VpcEndpointType: 'Interface', PrivateDnsEnabled: true });
      expect(endpoint.SubnetIds).toEqual(isolated);
    }
    expect(service.vpcEndpoints).toHaveLength(3);
  });

  test('each endpoint admits only the router function\'s security group, on 443', () => {
    const routerSg = stack.resolve(service.router.function.connections.securityGroups[0].securityGroupId);
    for (const endpoint of Object.values(template.findResources('AWS::EC2::VPCEndpoint'))) {
      const sgIds = endpoint.Properties.SecurityGroupIds;
      expect(sgIds).toHaveLength(1);
      const sgLogicalId = sgIds[0]['Fn::GetAtt'][0];
      const rules = ingressOf(template, sgLogicalId);
      expect(rules).toHaveLength(1);
      expect(rules[0]).toMatchObject({ IpProtocol: 'tcp', FromPort: 443, ToPort: 443, SourceSecurityGroupId: routerSg });
      expect(rules[0].CidrIp).toBeUndefined();
      expect(rules[0].CidrIpv6).toBeUndefined();
    }
  });

  test('the cache sits in the isolated subnets and admits only the router; the router uses it', () => {
    expect(service.cache).toBeInstanceOf(ResponseCache);
    const [, subnetGroup] = onlyResource(template, 'AWS::ElastiCache::SubnetGroup');
    expect(subnetGroup.Properties.SubnetIds).toEqual(stack.resolve(service.vpc.isolatedSubnets.map((s) => s.subnetId)));
    const cacheSgId = stack.getLogicalId(service.cache!.securityGroup.node.defaultChild as ec2.CfnSecurityGroup);
    const rules = ingressOf(template, cacheSgId);
    expect(rules).toEqual([expect.objectContaining({
      FromPort: 6379,
      SourceSecurityGroupId: stack.resolve(service.router.function.connections.securityGroups[0].securityGroupId),
    })]);
    const config = routerConfig(template);
    expect(config.exactCache).toMatchObject({ tls: true, port: 6379 });
  });

  test('the router function runs in the isolated subnets', () => {
    const [, fn] = onlyResource(template, 'AWS::Lambda::Function');
    expect(fn.Properties.VpcConfig.SubnetIds).toEqual(stack.resolve(service.vpc.isolatedSubnets.map((s) => s.subnetId)));
    expect(service.router).toBeInstanceOf(TieredRouter);
    expect(routerConfig(template).tiers.map((t: { id: string }) => t.id)).toEqual(['small', 'large']);
  });

  test('no wildcard actions; Bedrock invocation only on model and profile ARNs', () => {
    expect(wildcardActions(template)).toEqual([]);
    const bedrock = resourcesAllowing(template, 'bedrock:InvokeModel');
    expect(bedrock.length).toBeGreaterThan(0);
    for (const arn of bedrock) expect(arn).toMatch(/:foundation-model\/|:inference-profile\//);
  });
});

describe('ScalableAiService: options', () => {
  test('with a given vpc, it creates no VPC, no flow log and no endpoints, and runs in that VPC', () => {
    const stack = newStack();
    const vpc = new ec2.Vpc(stack, 'MyVpc', { maxAzs: 2, natGateways: 1 });
    const service = new ScalableAiService(stack, 'Service', { tiers: tiers(stack), vpc });
    const template = Template.fromStack(stack);
    expect(service.vpc).toBe(vpc);
    template.resourceCountIs('AWS::EC2::VPC', 1);
    template.resourceCountIs('AWS::EC2::VPCEndpoint', 0);
    template.resourceCountIs('AWS::EC2::FlowLog', 0);
    expect(service.vpcEndpoints).toEqual([]);
    expect(service.node.tryFindChild('Vpc')).toBeUndefined();
    const [, fn] = onlyResource(template, 'AWS::Lambda::Function');
    expect(fn.Properties.VpcConfig.SubnetIds).toEqual(stack.resolve(vpc.privateSubnets.map((s) => s.subnetId)));
  });

  test('enableCache: false creates no ElastiCache resources and no exact cache in the router configuration', () => {
    const stack = newStack();
    const service = new ScalableAiService(stack, 'Service', { tiers: tiers(stack), enableCache: false });
    const template = Template.fromStack(stack);
    for (const type of ['AWS::ElastiCache::ReplicationGroup', 'AWS::ElastiCache::SubnetGroup', 'AWS::ElastiCache::ParameterGroup', 'AWS::SecretsManager::Secret']) {
      template.resourceCountIs(type, 0);
    }
    expect(service.cache).toBeUndefined();
    const config = routerConfig(template);
    expect(config).not.toHaveProperty('exactCache');
    expect(resourcesAllowing(template, 'secretsmanager:GetSecretValue')).toEqual([]);
  });

  test('cache and router options are passed through', () => {
    const stack = newStack();
    new ScalableAiService(stack, 'Service', {
      tiers: tiers(stack),
      cacheOptions: { replicas: 0, cacheNodeType: 'cache.t4g.small' },
      routerOptions: { serviceName: 'shop', maxMessages: 10 },
    });
    const template = Template.fromStack(stack);
    template.hasResourceProperties('AWS::ElastiCache::ReplicationGroup', { NumCacheClusters: 1, CacheNodeType: 'cache.t4g.small' });
    template.hasResourceProperties('AWS::ElastiCache::ParameterGroup', { Properties: { 'reserved-memory-percent': '30' } });
    const [, fn] = onlyResource(template, 'AWS::Lambda::Function');
    expect(fn.Properties.Environment.Variables.POWERTOOLS_SERVICE_NAME).toBe('shop');
    expect(routerConfig(template).maxMessages).toBe(10);
  });
});

describe('package root exports', () => {
  test('the public constructs are exported from the package root', () => {
    const { ScalableAiService: S, ModelTier: M, TieredRouter: T, ResponseCache: R } = root;
    for (const exported of [S, M, T, R]) expect(exported).toBeDefined();
    expect(typeof S).toBe('function');
    expect(typeof M.bedrock).toBe('function');
    expect(typeof M.sageMaker).toBe('function');
    for (const name of ['AiMetricNames', 'RouterAuthorization', 'TierHintPolicy', 'BedrockModelTier', 'SageMakerModelTier', 'ModelProvider', 'SageMakerApiFormat']) {
      expect(root).toHaveProperty(name);
    }
  });

  test('internals are not exported from the package root', () => {
    for (const name of ['HandlerFunction', 'handlerAssetPath', 'ROUTER_CONFIG_ENV', 'tierRuntimeConfig', 'validateBaseProps']) {
      expect(root).not.toHaveProperty(name);
    }
  });
});
