import { Duration, type Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { flatten, loaderConfig, newStack, onlyFunction, onlyResource, resourcesAllowing, routerConfig, wildcardActions } from './helpers';
import * as root from '../../constructs';
import {
  EmbeddingModel, ModelTier, PersonalCaching, ResponseCache, ScalableAiService, StaticAnswers, TieredRouter, UserContextBackend,
  UserContextStore, VectorStore, type IModelTier, type ScalableAiServiceProps,
} from '../../constructs';

function tiers(stack: Stack): IModelTier[] {
  return [
    ModelTier.bedrock({ tierId: 'small', modelId: 'us.amazon.nova-micro-v1:0', inputPricePer1kTokens: 0.000035, outputPricePer1kTokens: 0.00014 }),
    ModelTier.sageMaker(stack, 'LargeTier', { tierId: 'large', existingEndpointName: 'large-endpoint' }),
  ];
}

/** The properties of the interface endpoints of a template. */
function interfaceEndpoints(template: Template): Array<Record<string, any>> {
  return Object.values(template.findResources('AWS::EC2::VPCEndpoint', { Properties: { VpcEndpointType: 'Interface' } })).map((e) => e.Properties);
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
    const endpoints = interfaceEndpoints(template);
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

  test('free gateway endpoints for S3 and DynamoDB on the isolated subnets\' route tables', () => {
    const gateways = Object.values(template.findResources('AWS::EC2::VPCEndpoint', { Properties: { VpcEndpointType: 'Gateway' } })).map((e) => e.Properties);
    expect(gateways.map((e) => flatten(e.ServiceName)).sort()).toEqual(['com.amazonaws.${AWS::Region}.dynamodb', 'com.amazonaws.${AWS::Region}.s3']);
    const routeTables = stack.resolve(service.vpc.isolatedSubnets.map((s) => s.routeTable.routeTableId));
    for (const gateway of gateways) expect(gateway.RouteTableIds).toEqual(routeTables);
    expect(service.gatewayEndpoints).toHaveLength(2);
  });

  test('each interface endpoint admits only the router function\'s security group, on 443', () => {
    const routerSg = stack.resolve(service.router.function.connections.securityGroups[0].securityGroupId);
    for (const endpoint of interfaceEndpoints(template)) {
      const sgIds = endpoint.SecurityGroupIds;
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
    const cacheSgId = stack.getLogicalId((service.cache as ResponseCache).securityGroup.node.defaultChild as ec2.CfnSecurityGroup);
    const rules = ingressOf(template, cacheSgId);
    expect(rules).toEqual([expect.objectContaining({
      FromPort: 6379,
      SourceSecurityGroupId: stack.resolve(service.router.function.connections.securityGroups[0].securityGroupId),
    })]);
    const config = routerConfig(template);
    expect(config.cache).toMatchObject({ tls: true, port: 6379 });
    expect(config.exactCache).toEqual({ ttlSeconds: 86_400 });
  });

  test('the router function runs in the isolated subnets', () => {
    const [, fn] = onlyFunction(template);
    expect(fn.Properties.VpcConfig.SubnetIds).toEqual(stack.resolve(service.vpc.isolatedSubnets.map((s) => s.subnetId)));
    expect(service.router).toBeInstanceOf(TieredRouter);
    expect(routerConfig(template).tiers.map((t: { id: string }) => t.id)).toEqual(['small', 'large']);
  });

  test('the semantic cache is on by default: vectors in Valkey, Titan Text Embeddings V2', () => {
    const config = routerConfig(template);
    expect(config.semanticCache).toMatchObject({
      embedder: { provider: 'bedrock', modelId: 'amazon.titan-embed-text-v2:0', dimensions: 1024 },
      store: { kind: 'valkey', indexName: 'sai:semantic' },
    });
    expect(resourcesAllowing(template, 'bedrock:InvokeModel')).toContain('arn:${AWS::Partition}:bedrock:${AWS::Region}::foundation-model/amazon.titan-embed-text-v2:0');
  });

  test('user context is on by default, in Valkey; no static answers unless asked for', () => {
    const config = routerConfig(template);
    expect(config.userContext).toEqual({ kind: 'valkey', maxTurns: 10, ttlSeconds: 604_800 });
    expect(config.personalCaching).toBe('user');
    expect(config).not.toHaveProperty('staticAnswers');
    expect(service.userContext).toBeInstanceOf(UserContextStore);
    expect(service.staticAnswers).toBeUndefined();
    template.resourceCountIs('AWS::DynamoDB::Table', 0);
    template.resourceCountIs('AWS::S3::Bucket', 0);
    const routes = Object.values(template.findResources('AWS::ApiGatewayV2::Route')).map((r) => r.Properties.RouteKey).sort();
    expect(routes).toEqual(['DELETE /v1/context', 'POST /v1/chat', 'POST /v1/feedback', 'PUT /v1/context/preferences']);
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
    const [, fn] = onlyFunction(template);
    expect(fn.Properties.VpcConfig.SubnetIds).toEqual(stack.resolve(vpc.privateSubnets.map((s) => s.subnetId)));
    expect(service.gatewayEndpoints).toEqual([]);
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
    // The default semantic cache and user context live in the cache: off with it.
    expect(config).not.toHaveProperty('semanticCache');
    expect(config).not.toHaveProperty('userContext');
    expect(service.userContext).toBeUndefined();
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
    const [, fn] = onlyFunction(template);
    expect(fn.Properties.Environment.Variables.POWERTOOLS_SERVICE_NAME).toBe('shop');
    expect(routerConfig(template).maxMessages).toBe(10);
  });
});

describe('ScalableAiService: static answers, semantic cache and user context options', () => {
  function service(props: Partial<ScalableAiServiceProps>): { stack: Stack; service: ScalableAiService; template: Template } {
    const stack = newStack();
    const s = new ScalableAiService(stack, 'Service', { tiers: tiers(stack), ...props });
    return { stack, service: s, template: Template.fromStack(stack) };
  }

  test('staticAnswers: a StaticAnswers in the service\'s VPC, publishing into its cache, served by the router', () => {
    const { stack, service: s, template } = service({ staticAnswers: { refreshInterval: Duration.hours(12) }, routerOptions: { serviceName: 'shop' } });
    expect(s.staticAnswers).toBeInstanceOf(StaticAnswers);
    expect(s.staticAnswers!.cache).toBe(s.cache);
    expect((s.staticAnswers as StaticAnswers).serviceName).toBe('shop');
    expect(onlyResource(template, 'AWS::Scheduler::Schedule')[1].Properties.ScheduleExpression).toBe('rate(12 hours)');
    expect(routerConfig(template).staticAnswers).toMatchObject({ threshold: 0.9, maxAgeSeconds: 3600 });
    template.hasResourceProperties('AWS::ApiGatewayV2::Route', { RouteKey: 'GET /v1/static-answers' });
    const loader = Object.values(template.findResources('AWS::Lambda::Function')).find((f) => f.Properties.Environment.Variables.SCALABLE_AI_STATIC_LOADER_CONFIG)!;
    expect(loader.Properties.VpcConfig.SubnetIds).toEqual(stack.resolve(s.vpc.isolatedSubnets.map((x) => x.subnetId)));
    expect(wildcardActions(template)).toEqual([]);
  });

  test('the loader reaches the Secrets Manager and Bedrock Runtime endpoints, not SageMaker Runtime', () => {
    const { stack, service: s, template } = service({ staticAnswers: {} });
    const loaderSg = stack.resolve(s.staticAnswers!.loaderFunction.connections.securityGroups[0].securityGroupId);
    const routerSg = stack.resolve(s.router.function.connections.securityGroups[0].securityGroupId);
    const admitted: Record<string, unknown[]> = {};
    for (const endpoint of interfaceEndpoints(template)) {
      const rules = ingressOf(template, endpoint.SecurityGroupIds[0]['Fn::GetAtt'][0]);
      for (const rule of rules) expect(rule).toMatchObject({ FromPort: 443, ToPort: 443 });
      admitted[flatten(endpoint.ServiceName).split('.').slice(3).join('.')] = rules.map((r) => r.SourceSecurityGroupId);
    }
    expect(admitted).toEqual({
      'bedrock-runtime': [routerSg, loaderSg],
      'sagemaker.runtime': [routerSg],
      'secretsmanager': [routerSg, loaderSg],
    });
  });

  test('the static answers take the semantic cache\'s embedding model unless given their own', () => {
    const semanticCache = { embeddingModel: EmbeddingModel.titanTextV2({ dimensions: 512 }) };
    const shared = service({ semanticCache, staticAnswers: {} });
    expect(loaderConfig(shared.template).embedder).toEqual({ provider: 'bedrock', modelId: 'amazon.titan-embed-text-v2:0', dimensions: 512 });
    const own = service({ semanticCache, staticAnswers: { embeddingModel: EmbeddingModel.titanTextV2({ dimensions: 256 }) } });
    expect(loaderConfig(own.template).embedder.dimensions).toBe(256);
    const exact = service({ semanticCache, staticAnswers: { semanticMatching: false } });
    expect(loaderConfig(exact.template)).not.toHaveProperty('embedder');
  });

  test('semantic cache options: at the top level or in routerOptions', () => {
    const top = service({ semanticCache: { threshold: 0.9 } });
    expect(routerConfig(top.template).semanticCache.threshold).toBe(0.9);
    const nested = service({ routerOptions: { semanticCache: { threshold: 0.95 }, personalCaching: PersonalCaching.NONE } });
    expect(routerConfig(nested.template).semanticCache.threshold).toBe(0.95);
    expect(routerConfig(nested.template).personalCaching).toBe('none');
  });

  test('enableSemanticCache: false turns the semantic cache off', () => {
    const { template } = service({ enableSemanticCache: false });
    expect(routerConfig(template)).not.toHaveProperty('semanticCache');
    expect(resourcesAllowing(template, 'bedrock:InvokeModel').some((arn) => arn.includes('titan'))).toBe(false);
  });

  test('an OpenSearch Serverless store works without the response cache', () => {
    const { template } = service({ enableCache: false, semanticCache: { vectorStore: VectorStore.openSearchServerless() } });
    template.resourceCountIs('AWS::ElastiCache::ReplicationGroup', 0);
    template.hasResourceProperties('AWS::OpenSearchServerless::Collection', { Type: 'VECTORSEARCH' });
    expect(routerConfig(template).semanticCache.store.kind).toBe('opensearch');
  });

  test('userContext: the DYNAMODB backend creates a table the router uses, also without the response cache', () => {
    const { service: s, template } = service({ enableCache: false, userContext: { backend: UserContextBackend.DYNAMODB, maxTurns: 4 } });
    expect(s.userContext?.tableName).toBeDefined();
    template.resourceCountIs('AWS::DynamoDB::Table', 1);
    expect(routerConfig(template).userContext).toMatchObject({ kind: 'dynamodb', maxTurns: 4 });
    expect(wildcardActions(template)).toEqual([]);
  });

  test('enableUserContext: false turns user context off', () => {
    const { service: s, template } = service({ enableUserContext: false });
    expect(s.userContext).toBeUndefined();
    expect(routerConfig(template)).not.toHaveProperty('userContext');
    // The caches still keep personal answers per user: DELETE /v1/context forgets them.
    const routes = Object.values(template.findResources('AWS::ApiGatewayV2::Route')).map((r) => r.Properties.RouteKey);
    expect(routes.sort()).toEqual(['DELETE /v1/context', 'POST /v1/chat', 'POST /v1/feedback']);
  });

  test.each<[string, Partial<ScalableAiServiceProps>, RegExp]>([
    ['semantic cache options twice', { semanticCache: {}, routerOptions: { semanticCache: {} } }, /give the semantic cache options once/],
    ['semantic cache options with enableSemanticCache: false', { semanticCache: {}, enableSemanticCache: false }, /semanticCache options are given but enableSemanticCache is false/],
    ['a Valkey semantic cache without the response cache', { enableCache: false, enableSemanticCache: true, enableUserContext: false }, /semantic cache keeps its vectors in the response cache by default; with enableCache: false/],
    ['static answers without the response cache', { enableCache: false, staticAnswers: {} }, /staticAnswers are published into the response cache; they cannot be combined with enableCache: false/],
    ['user context options with enableUserContext: false', { userContext: {}, enableUserContext: false }, /userContext options are given but enableUserContext is false/],
    ['a Valkey user context without the response cache', { enableCache: false, enableUserContext: true }, /user context lives in the response cache by default; with enableCache: false/],
  ])('rejects %s', (_name, props, message) => {
    expect(() => service(props)).toThrow(message);
  });
});

describe('package root exports', () => {
  test('the public constructs are exported from the package root', () => {
    const { ScalableAiService: S, ModelTier: M, TieredRouter: T, ResponseCache: R } = root;
    for (const exported of [S, M, T, R]) expect(exported).toBeDefined();
    expect(typeof S).toBe('function');
    expect(typeof M.bedrock).toBe('function');
    expect(typeof M.sageMaker).toBe('function');
    for (const name of [
      'AiMetricNames', 'RouterAuthorization', 'TierHintPolicy', 'BedrockModelTier', 'SageMakerModelTier', 'ModelProvider', 'SageMakerApiFormat',
      'EmbeddingModel', 'VectorStore', 'VectorStoreKind', 'StaticAnswers', 'UserContextStore', 'UserContextBackend', 'PersonalCaching',
    ]) {
      expect(root).toHaveProperty(name);
    }
  });

  test('internals are not exported from the package root', () => {
    for (const name of [
      'HandlerFunction', 'handlerAssetPath', 'ROUTER_CONFIG_ENV', 'STATIC_LOADER_CONFIG_ENV', 'tierRuntimeConfig', 'validateBaseProps',
      'bindSemanticCache', 'cacheConnectionConfig', 'nagResourceId', 'DEFAULT_SEMANTIC_THRESHOLD',
    ]) {
      expect(root).not.toHaveProperty(name);
    }
  });
});
