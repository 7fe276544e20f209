import { Duration, type Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import {
  actionsOf, iamPolicyStatements, newGrantee, newStack, onlyFunction, onlyResource, resourcesAllowing, resourcesOf,
  routerConfig, statementsAllowing, wildcardActions, isolatedVpc,
} from './helpers';
import {
  AiMetricNames, EmbeddingModel, ModelTier, PersonalCaching, ResponseCache, RouterAuthorization, StaticAnswers, TierHintPolicy,
  TieredRouter, UserContextBackend, UserContextStore, VectorStoreKind,
  type IModelTier, type SemanticCacheOptions, type TieredRouterProps,
} from '../../constructs';
import { SEMANTIC_DEFAULTS } from '../../constructs/contract/semantic-defaults';


function smallTier(): IModelTier {
  return ModelTier.bedrock({ tierId: 'small', modelId: 'amazon.nova-micro-v1:0', inputPricePer1kTokens: 0.000035, outputPricePer1kTokens: 0.00014, maxTokens: 512, timeout: Duration.seconds(8) });
}
function mediumTier(): IModelTier {
  return ModelTier.bedrock({ tierId: 'medium', modelId: 'us.amazon.nova-lite-v1:0', inputPricePer1kTokens: 0.00006, outputPricePer1kTokens: 0.00024, destinationRegions: ['us-east-1', 'us-west-2'] });
}
function largeTier(stack: Stack): IModelTier {
  return ModelTier.sageMaker(stack, 'LargeTier', { tierId: 'large', existingEndpointName: 'Large-Endpoint', inputPricePer1kTokens: 0.001, outputPricePer1kTokens: 0.002, timeout: Duration.seconds(20) });
}

/** The function's role and every statement of the policies attached to it. */
function functionRoleStatements(stack: Stack, template: Template, fn: lambda.IFunction) {
  const roleId = stack.getLogicalId(fn.role!.node.defaultChild as iam.CfnRole);
  const resources = template.toJSON().Resources;
  return iamPolicyStatements(template)
    .filter(({ logicalId, type }) => type === 'AWS::IAM::Policy' && JSON.stringify(resources[logicalId].Properties.Roles).includes(`"${roleId}"`))
    .map(({ statement }) => statement);
}

describe('TieredRouter: defaults (IAM authorization, no cache, no VPC)', () => {
  let stack: Stack;
  let template: Template;
  let router: TieredRouter;
  let caller: iam.Role;

  beforeAll(() => {
    stack = newStack();
    router = new TieredRouter(stack, 'Router', { tiers: [smallTier(), mediumTier(), largeTier(stack)] });
    caller = newGrantee(stack, 'Caller');
    router.grantInvoke(caller);
    template = Template.fromStack(stack);
  });

  test('the router runs on Node.js 22 or newer, on arm64, outside any VPC', () => {
    const [, fn] = onlyFunction(template);
    const runtime = /^nodejs(\d+)\.x$/.exec(fn.Properties.Runtime);
    expect(runtime).not.toBeNull();
    expect(Number(runtime![1])).toBeGreaterThanOrEqual(22);
    expect(fn.Properties.Architectures).toEqual(['arm64']);
    expect(fn.Properties).toMatchObject({ Handler: 'index.handler', Timeout: 29, MemorySize: 512 });
    expect(fn.Properties.VpcConfig).toBeUndefined();
    expect(fn.Properties.Environment.Variables.POWERTOOLS_SERVICE_NAME).toBe('scalable-ai');
  });

  test('its role has no managed policies', () => {
    const roleId = stack.getLogicalId(router.function.role!.node.defaultChild as iam.CfnRole);
    expect(template.toJSON().Resources[roleId].Properties.ManagedPolicyArns).toBeUndefined();
  });

  test('an HTTP API with exactly one route, POST /v1/chat, authorized with AWS_IAM and integrated with the function', () => {
    template.resourceCountIs('AWS::ApiGatewayV2::Api', 1);
    template.hasResourceProperties('AWS::ApiGatewayV2::Api', { ProtocolType: 'HTTP' });
    const [, route] = onlyResource(template, 'AWS::ApiGatewayV2::Route');
    expect(route.Properties).toMatchObject({ RouteKey: 'POST /v1/chat', AuthorizationType: 'AWS_IAM' });
    const [integrationId, integration] = onlyResource(template, 'AWS::ApiGatewayV2::Integration');
    expect(JSON.stringify(route.Properties.Target)).toContain(integrationId);
    expect(integration.Properties).toMatchObject({
      IntegrationType: 'AWS_PROXY',
      IntegrationUri: stack.resolve(router.function.functionArn),
      PayloadFormatVersion: '2.0',
    });
    template.resourceCountIs('AWS::ApiGatewayV2::Authorizer', 0);
  });

  test('the $default stage auto-deploys, logs access to its own log group and throttles', () => {
    const [, stage] = onlyResource(template, 'AWS::ApiGatewayV2::Stage');
    const accessLogsId = stack.getLogicalId(router.accessLogGroup!.node.defaultChild as logs.CfnLogGroup);
    expect(stage.Properties).toMatchObject({
      StageName: '$default',
      AutoDeploy: true,
      AccessLogSettings: { DestinationArn: { 'Fn::GetAtt': [accessLogsId, 'Arn'] } },
      DefaultRouteSettings: { ThrottlingRateLimit: 100, ThrottlingBurstLimit: 200 },
    });
    expect(stage.Properties.AccessLogSettings.Format).toContain('$context.requestId');
    template.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 30 });
  });

  test('the router configuration lists the tiers in order, with their models, prices and limits', () => {
    const config = routerConfig(template);
    expect(config.tiers).toEqual([
      { id: 'small', provider: 'bedrock', modelId: 'amazon.nova-micro-v1:0', inputPricePer1k: 0.000035, outputPricePer1k: 0.00014, maxTokens: 512, timeoutMs: 8000 },
      { id: 'medium', provider: 'bedrock', modelId: 'us.amazon.nova-lite-v1:0', inputPricePer1k: 0.00006, outputPricePer1k: 0.00024, maxTokens: 1024, timeoutMs: 15000 },
      { id: 'large', provider: 'sagemaker', endpointName: 'Large-Endpoint', apiFormat: 'openai-chat', inputPricePer1k: 0.001, outputPricePer1k: 0.002, maxTokens: 1024, timeoutMs: 20000 },
    ]);
    expect(config.tierHintPolicy).toBe('cheaper-only');
    expect(config.tenant).toEqual({ source: 'iam' });
    expect(config.maxRequestBytes).toBe(32_768);
    expect(config.maxMessages).toBe(50);
    expect(config.fallbackOrder).toBeUndefined();
    expect(config.classifierThresholds).toBeUndefined();
    expect(config.exactCache).toBeUndefined();
    expect(config.cache).toBeUndefined();
  });

  test('the tiers\' invoke permissions are attached to the function\'s role', () => {
    const statements = functionRoleStatements(stack, template, router.function);
    const granted = (action: string) => statements.filter((s) => actionsOf(s).includes(action)).flatMap(resourcesOf);
    expect(granted('bedrock:InvokeModel')).toEqual([
      'arn:${AWS::Partition}:bedrock:${AWS::Region}:${AWS::AccountId}:inference-profile/us.amazon.nova-lite-v1:0',
      'arn:${AWS::Partition}:bedrock:${AWS::Region}::foundation-model/amazon.nova-micro-v1:0',
      'arn:${AWS::Partition}:bedrock:us-east-1::foundation-model/amazon.nova-lite-v1:0',
      'arn:${AWS::Partition}:bedrock:us-west-2::foundation-model/amazon.nova-lite-v1:0',
    ]);
    expect(granted('bedrock:InvokeModelWithResponseStream')).toEqual(granted('bedrock:InvokeModel'));
    expect(granted('sagemaker:InvokeEndpoint')).toEqual(['arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:endpoint/large-endpoint']);
    // Nothing else may invoke a model.
    expect(resourcesAllowing(template, 'bedrock:InvokeModel')).toHaveLength(4);
    expect(resourcesAllowing(template, 'sagemaker:InvokeEndpoint')).toHaveLength(1);
  });

  test('API Gateway may invoke the function only for the chat route', () => {
    const [, permission] = onlyResource(template, 'AWS::Lambda::Permission');
    expect(permission.Properties).toMatchObject({ Action: 'lambda:InvokeFunction', Principal: 'apigateway.amazonaws.com' });
    expect(JSON.stringify(permission.Properties.SourceArn)).toContain('/v1/chat');
  });

  test('grantInvoke: execute-api:Invoke on the chat route of the $default stage only', () => {
    const [apiId] = onlyResource(template, 'AWS::ApiGatewayV2::Api');
    const grants = statementsAllowing(template, 'execute-api:Invoke');
    expect(grants).toHaveLength(1);
    expect(actionsOf(grants[0].statement)).toEqual(['execute-api:Invoke']);
    expect(resourcesOf(grants[0].statement)).toEqual([
      `arn:\${AWS::Partition}:execute-api:\${AWS::Region}:\${AWS::AccountId}:\${Ref:${apiId}}/$default/POST/v1/chat`,
    ]);
    expect(grants[0].logicalId).toBe(stack.getLogicalId(caller.node.findChild('DefaultPolicy').node.defaultChild as iam.CfnPolicy));
  });

  test('no IAM statement has a wildcard action', () => {
    expect(wildcardActions(template)).toEqual([]);
  });

  test('exposes the function, API, stage, URL and tiers', () => {
    expect(router.tiers.map((t) => t.tierId)).toEqual(['small', 'medium', 'large']);
    expect(router.serviceName).toBe('scalable-ai');
    expect(JSON.stringify(stack.resolve(router.url))).toContain('execute-api');
    expect(router.stage!.stageName).toBe('$default');
    expect(stack.resolve(router.logGroup.logGroupName)).toEqual(stack.resolve((router.function as lambda.Function).logGroup.logGroupName));
  });
});

describe('TieredRouter: JWT authorization, options, cache and VPC', () => {
  let stack: Stack;
  let template: Template;
  let router: TieredRouter;
  let cache: ResponseCache;
  let vpc: ec2.Vpc;

  beforeAll(() => {
    stack = newStack();
    vpc = isolatedVpc(stack);
    cache = new ResponseCache(stack, 'Cache', { vpc, exactCacheTtl: Duration.hours(2), keyPrefix: 'shop:' });
    router = new TieredRouter(stack, 'Router', {
      tiers: [smallTier(), mediumTier(), largeTier(stack)],
      authorization: RouterAuthorization.jwt({ issuer: 'https://issuer.example.com/pool', audience: ['web', 'mobile'], tenantClaim: 'org_id' }),
      tierHintPolicy: TierHintPolicy.ANY,
      fallbackOrder: ['large', 'small'],
      classifierThresholds: [0.3, 0.6],
      maxRequestBytes: 65_536,
      maxMessages: 20,
      timeout: Duration.seconds(25),
      memorySize: 1024,
      cacheTimeout: Duration.millis(150),
      serviceName: 'shop-assistant',
      logRetention: logs.RetentionDays.ONE_WEEK,
      throttlingRateLimit: 50,
      throttlingBurstLimit: 80,
      reservedConcurrentExecutions: 40,
      cache,
      vpc,
    });
    template = Template.fromStack(stack);
  });

  test('the chat route uses a JWT authorizer with the issuer and audiences', () => {
    const [authorizerId, authorizer] = onlyResource(template, 'AWS::ApiGatewayV2::Authorizer');
    expect(authorizer.Properties).toMatchObject({
      AuthorizerType: 'JWT',
      IdentitySource: ['$request.header.Authorization'],
      JwtConfiguration: { Issuer: 'https://issuer.example.com/pool', Audience: ['web', 'mobile'] },
    });
    template.hasResourceProperties('AWS::ApiGatewayV2::Route', { RouteKey: 'POST /v1/chat', AuthorizationType: 'JWT', AuthorizerId: { Ref: authorizerId } });
  });

  test('the configuration carries the options and the tenant claim', () => {
    const config = routerConfig(template);
    expect(config.tiers.map((t: { id: string }) => t.id)).toEqual(['small', 'medium', 'large']);
    expect(config).toMatchObject({
      tierHintPolicy: 'any',
      fallbackOrder: ['large', 'small'],
      classifierThresholds: [0.3, 0.6],
      maxRequestBytes: 65_536,
      maxMessages: 20,
      tenant: { source: 'jwt', claim: 'org_id' },
    });
  });

  test('the exact cache: the primary endpoint over TLS, the AUTH secret and the cache TTL', () => {
    const [groupId] = onlyResource(template, 'AWS::ElastiCache::ReplicationGroup');
    const [secretId] = onlyResource(template, 'AWS::SecretsManager::Secret');
    expect(routerConfig(template).cache).toEqual({
      host: `\${GetAtt:${groupId}.PrimaryEndPoint.Address}`,
      port: 6379,
      tls: true,
      authSecretArn: `\${Ref:${secretId}}`,
      keyPrefix: 'shop:',
      timeoutMs: 150,
    });
    expect(routerConfig(template).exactCache).toEqual({ ttlSeconds: 7200 });
  });

  test('the function runs in the isolated subnets and reaches the cache through its security group', () => {
    const [, fn] = onlyFunction(template);
    expect(fn.Properties.VpcConfig.SubnetIds).toEqual(stack.resolve(vpc.isolatedSubnets.map((s) => s.subnetId)));
    expect(fn.Properties).toMatchObject({ Timeout: 25, MemorySize: 1024, ReservedConcurrentExecutions: 40 });
    expect(fn.Properties.Environment.Variables.POWERTOOLS_SERVICE_NAME).toBe('shop-assistant');
    const functionSg = router.function.connections.securityGroups[0];
    template.hasResourceProperties('AWS::EC2::SecurityGroupIngress', {
      GroupId: stack.resolve(cache.securityGroup.securityGroupId),
      SourceSecurityGroupId: stack.resolve(functionSg.securityGroupId),
      FromPort: 6379,
      ToPort: 6379,
    });
  });

  test('the function\'s security group allows out only HTTPS, plus the cache port to the cache', () => {
    const functionSg = router.function.connections.securityGroups[0];
    const [, sg] = Object.entries(template.findResources('AWS::EC2::SecurityGroup'))
      .find(([id]) => stack.resolve(functionSg.securityGroupId)['Fn::GetAtt'][0] === id)!;
    expect(sg.Properties.SecurityGroupEgress).toEqual([
      expect.objectContaining({ CidrIp: '0.0.0.0/0', IpProtocol: 'tcp', FromPort: 443, ToPort: 443 }),
    ]);
    template.hasResourceProperties('AWS::EC2::SecurityGroupEgress', {
      GroupId: stack.resolve(functionSg.securityGroupId),
      DestinationSecurityGroupId: stack.resolve(cache.securityGroup.securityGroupId),
      FromPort: 6379,
    });
  });

  test('both log groups are removed with the stack', () => {
    const policies = Object.values(template.findResources('AWS::Logs::LogGroup')).map((g) => g.DeletionPolicy);
    expect(policies).toEqual(['Delete', 'Delete']);
  });

  test('access logs use HTTP API context variables', () => {
    const [, stage] = onlyResource(template, 'AWS::ApiGatewayV2::Stage');
    const format = JSON.parse(stage.Properties.AccessLogSettings.Format);
    expect(format).toMatchObject({ requestId: '$context.requestId', routeKey: '$context.routeKey', status: '$context.status' });
    expect(JSON.stringify(format)).not.toContain('resourcePath');
  });

  test('the function may read the AUTH secret and manage its ENIs; nothing has a wildcard action', () => {
    const statements = functionRoleStatements(stack, template, router.function);
    const [secretId] = onlyResource(template, 'AWS::SecretsManager::Secret');
    expect(statements.filter((s) => actionsOf(s).includes('secretsmanager:GetSecretValue')).flatMap(resourcesOf)).toEqual([`\${Ref:${secretId}}`]);
    expect(statements.some((s) => actionsOf(s).includes('ec2:CreateNetworkInterface'))).toBe(true);
    expect(wildcardActions(template)).toEqual([]);
  });

  test('stage throttling and log retention follow the options', () => {
    template.hasResourceProperties('AWS::ApiGatewayV2::Stage', { DefaultRouteSettings: { ThrottlingRateLimit: 50, ThrottlingBurstLimit: 80 } });
    const retentions = Object.values(template.findResources('AWS::Logs::LogGroup')).map((g) => g.Properties.RetentionInDays);
    expect(retentions).toEqual([7, 7]);
  });
});

describe('TieredRouter: one JWT authorization shared by two routers', () => {
  test('each route is authorized by an authorizer of its own API', () => {
    const stack = newStack();
    const authorization = RouterAuthorization.jwt({ issuer: 'https://issuer.example.com', audience: ['web'] });
    const a = new TieredRouter(stack, 'RouterA', { tiers: [smallTier()], authorization });
    const b = new TieredRouter(stack, 'RouterB', { tiers: [smallTier()], authorization });
    const template = Template.fromStack(stack);
    for (const router of [a, b]) {
      const apiRef = stack.resolve(router.api.apiId);
      const route = Object.values(template.findResources('AWS::ApiGatewayV2::Route', { Properties: { ApiId: apiRef } }));
      expect(route).toHaveLength(1);
      const authorizerId = route[0].Properties.AuthorizerId.Ref;
      expect(template.toJSON().Resources[authorizerId]?.Properties.ApiId).toEqual(apiRef);
    }
  });
});

describe('TieredRouter: metrics', () => {
  let router: TieredRouter;

  beforeAll(() => {
    const stack = newStack();
    router = new TieredRouter(stack, 'Router', { tiers: [smallTier()], serviceName: 'shop-assistant' });
  });

  test.each<[string, (r: TieredRouter) => any, string, Record<string, string>, string]>([
    ['metricRequests', (r) => r.metricRequests(), AiMetricNames.REQUESTS, {}, 'Sum'],
    ['metricLatency', (r) => r.metricLatency(), AiMetricNames.LATENCY, {}, 'p99'],
    ['metricServedLatency', (r) => r.metricServedLatency('model'), AiMetricNames.LATENCY, { [AiMetricNames.DIMENSION_SERVED_BY]: 'model' }, 'p99'],
    ['metricTierLatency', (r) => r.metricTierLatency('small'), AiMetricNames.LATENCY, { [AiMetricNames.DIMENSION_TIER]: 'small' }, 'p99'],
    ['metricBreakerSkips', (r) => r.metricBreakerSkips('semantic'), AiMetricNames.BREAKER_SKIPS, { [AiMetricNames.DIMENSION_DEPENDENCY]: 'semantic' }, 'Sum'],
    ['metricCacheHits', (r) => r.metricCacheHits('exact'), AiMetricNames.CACHE_HITS, { [AiMetricNames.DIMENSION_CACHE_LEVEL]: 'exact' }, 'Sum'],
    ['metricCacheMisses', (r) => r.metricCacheMisses('static'), AiMetricNames.CACHE_MISSES, { [AiMetricNames.DIMENSION_CACHE_LEVEL]: 'static' }, 'Sum'],
    ['metricCacheErrors', (r) => r.metricCacheErrors('exact'), AiMetricNames.CACHE_ERRORS, { [AiMetricNames.DIMENSION_CACHE_LEVEL]: 'exact' }, 'Sum'],
    ['metricCostUsd', (r) => r.metricCostUsd(), AiMetricNames.COST_USD, {}, 'Sum'],
    ['metricTierCostUsd', (r) => r.metricTierCostUsd('small'), AiMetricNames.COST_USD, { [AiMetricNames.DIMENSION_TIER]: 'small' }, 'Sum'],
    ['metricModelInvocations', (r) => r.metricModelInvocations('small'), AiMetricNames.MODEL_INVOCATIONS, { [AiMetricNames.DIMENSION_TIER]: 'small' }, 'Sum'],
    ['metricModelErrors', (r) => r.metricModelErrors('small', 'throttled'), AiMetricNames.MODEL_ERRORS, { [AiMetricNames.DIMENSION_TIER]: 'small', [AiMetricNames.DIMENSION_ERROR_KIND]: 'throttled' }, 'Sum'],
    ['metricFallbacks', (r) => r.metricFallbacks('small'), AiMetricNames.FALLBACKS, { [AiMetricNames.DIMENSION_TIER]: 'small' }, 'Sum'],
    ['metricUnavailable', (r) => r.metricUnavailable(), AiMetricNames.UNAVAILABLE, {}, 'Sum'],
  ])('%s', (_name, make, metricName, extraDimensions, statistic) => {
    const metric = make(router);
    expect(metric.namespace).toBe(AiMetricNames.NAMESPACE);
    expect(metric.namespace).toBe('ScalableAI');
    expect(metric.metricName).toBe(metricName);
    expect(metric.dimensions).toEqual({ [AiMetricNames.DIMENSION_SERVICE]: 'shop-assistant', ...extraDimensions });
    expect(metric.statistic).toBe(statistic);
    expect(metric.period.toSeconds()).toBe(60);
  });

  test('options override the statistic and period but keep the service dimension', () => {
    const metric = router.metricServedLatency('exact', { statistic: 'p50', period: Duration.minutes(5) });
    expect(metric.statistic).toBe('p50');
    expect(metric.period.toSeconds()).toBe(300);
    expect(metric.dimensions).toEqual({ service: 'shop-assistant', ServedBy: 'exact' });
  });

  /** The metrics of a math expression, by id: name, dimensions and statistic. */
  function parts(expression: cloudwatch.IMetric): Record<string, [string, Record<string, string> | undefined, string]> {
    const math = expression as cloudwatch.MathExpression;
    return Object.fromEntries(Object.entries(math.usingMetrics).map(([id, m]) => {
      const metric = m as cloudwatch.Metric;
      return [id, [metric.metricName, metric.dimensions, metric.statistic]];
    }));
  }

  test.each<[string, (r: TieredRouter) => cloudwatch.IMetric, string, ReturnType<typeof parts>, number]>([
    ['metricCostPerRequest', (r) => r.metricCostPerRequest(), 'cost / requests', {
      cost: ['CostUsd', { service: 'shop-assistant' }, 'Sum'],
      requests: ['Requests', { service: 'shop-assistant' }, 'Sum'],
    }, 300],
    ['metricCacheHitRate', (r) => r.metricCacheHitRate('semantic'), '100 * FILL(hits_semantic, 0) / (FILL(hits_semantic, 0) + FILL(misses_semantic, 0))', {
      hits_semantic: ['CacheHits', { service: 'shop-assistant', CacheLevel: 'semantic' }, 'Sum'],
      misses_semantic: ['CacheMisses', { service: 'shop-assistant', CacheLevel: 'semantic' }, 'Sum'],
    }, 300],
    ['metricTierErrorRate', (r) => r.metricTierErrorRate('small'), '100 * FILL(errors_small, 0) / invocations_small', {
      errors_small: ['ModelErrors', { service: 'shop-assistant', Tier: 'small' }, 'Sum'],
      invocations_small: ['ModelInvocations', { service: 'shop-assistant', Tier: 'small' }, 'Sum'],
    }, 300],
    ['metricWrongAnswerRate', (r) => r.metricWrongAnswerRate('semantic'), '100 * FILL(wrong_semantic, 0) / answers_semantic', {
      wrong_semantic: ['Feedback', { service: 'shop-assistant', ServedBy: 'semantic', Verdict: 'wrong' }, 'Sum'],
      answers_semantic: ['Latency', { service: 'shop-assistant', ServedBy: 'semantic' }, 'SampleCount'],
    }, 3600],
  ])('%s is metric math over the contract\'s metrics', (_name, make, expression, expected, periodSeconds) => {
    const math = make(router) as cloudwatch.MathExpression;
    expect(math.expression).toBe(expression);
    expect(parts(math)).toEqual(expected);
    expect(math.period.toSeconds()).toBe(periodSeconds);
  });

  test('metricConcurrentExecutions reads AWS/Lambda for the router function', () => {
    const metric = router.metricConcurrentExecutions();
    expect(metric.namespace).toBe('AWS/Lambda');
    expect(metric.metricName).toBe('ConcurrentExecutions');
    expect(metric.statistic).toBe('Maximum');
    expect(Object.keys(metric.dimensions ?? {})).toEqual(['FunctionName']);
  });
});

describe('TieredRouter: validation', () => {
  function attempt(props: Partial<TieredRouterProps>, withCache = false): () => TieredRouter {
    return () => {
      const stack = newStack();
      const vpc = withCache ? isolatedVpc(stack) : undefined;
      const cache = vpc ? new ResponseCache(stack, 'Cache', { vpc }) : undefined;
      return new TieredRouter(stack, 'Router', { tiers: [smallTier(), mediumTier()], cache, ...props });
    };
  }

  test.each<[string, Partial<TieredRouterProps>, RegExp]>([
    ['no tiers', { tiers: [] }, /tiers must name at least one/],
    ['duplicate tier ids', { tiers: [smallTier(), smallTier()] }, /unique tierIds.*"small"/],
    ['fallbackOrder naming an unknown tier', { fallbackOrder: ['medium', 'huge'] }, /fallbackOrder.*"huge"/],
    ['too many thresholds', { classifierThresholds: [0.2, 0.5] }, /classifierThresholds needs 1 values? for 2 tiers/],
    ['too few thresholds', { classifierThresholds: [] }, /classifierThresholds/],
    ['descending thresholds', { tiers: [smallTier(), mediumTier(), ModelTier.bedrock({ tierId: 'x', modelId: 'amazon.nova-pro-v1:0', inputPricePer1kTokens: 0, outputPricePer1kTokens: 0 })], classifierThresholds: [0.6, 0.3] }, /classifierThresholds must be ascending/],
    ['a threshold above 1', { classifierThresholds: [1.2] }, /classifierThresholds/],
    ['a NaN threshold', { classifierThresholds: [NaN] }, /classifierThresholds/],
    ['timeout 31 s', { timeout: Duration.seconds(31) }, /timeout/],
    ['timeout 2 s', { timeout: Duration.seconds(2) }, /timeout/],
    ['maxRequestBytes 0', { maxRequestBytes: 0 }, /maxRequestBytes/],
    ['maxRequestBytes over the Lambda payload limit', { maxRequestBytes: 6_000_001 }, /maxRequestBytes/],
    ['maxMessages 0', { maxMessages: 0 }, /maxMessages/],
    ['fractional throttlingRateLimit', { throttlingRateLimit: 1.5 }, /throttlingRateLimit/],
    ['throttlingBurstLimit 0', { throttlingBurstLimit: 0 }, /throttlingBurstLimit/],
    ['a router timeout no longer than a tier timeout', { timeout: Duration.seconds(15) }, /timeout \(15 seconds\) must be longer than the timeout of tier "medium" \(15 seconds\)/],
  ])('rejects %s', (_name, props, message) => {
    expect(attempt(props)).toThrow(message);
  });

  test('rejects a cache without a vpc', () => {
    expect(attempt({}, true)).toThrow(/vpc is required with a cache/);
  });

  test('rejects a JWT authorization without audiences', () => {
    expect(() => RouterAuthorization.jwt({ issuer: 'https://issuer.example.com', audience: [] })).toThrow(/audience/);
  });

  test('accepts the 30 s limit and a single tier', () => {
    expect(attempt({ timeout: Duration.seconds(30), tiers: [smallTier()], classifierThresholds: [] })).not.toThrow();
  });
});

describe('TieredRouter: semantic cache, static answers, user context and personal caching', () => {
  let stack: Stack;
  let template: Template;
  let router: TieredRouter;
  let cache: ResponseCache;
  let answers: StaticAnswers;
  let userContext: UserContextStore;
  let caller: iam.Role;

  beforeAll(() => {
    stack = newStack();
    const vpc = isolatedVpc(stack);
    cache = new ResponseCache(stack, 'Cache', { vpc });
    answers = new StaticAnswers(stack, 'StaticAnswers', { cache, vpc, threshold: 0.93, maxAge: Duration.minutes(15) });
    userContext = new UserContextStore(stack, 'UserContext', { backend: UserContextBackend.DYNAMODB, maxTurns: 6, ttl: Duration.days(2) });
    router = new TieredRouter(stack, 'Router', {
      tiers: [smallTier(), mediumTier()],
      cache,
      vpc,
      semanticCache: {
        embeddingModel: EmbeddingModel.titanTextV2({ dimensions: 512 }),
        threshold: 0.85,
        margin: 0.05,
        rivalSupport: 3,
        answerEquivalence: 0.95,
        neighbours: 20,
        ttl: Duration.days(3),
        maxEntriesPerScope: 500,
        timeout: Duration.millis(800),
      },
      staticAnswers: answers,
      userContext,
      personalCaching: PersonalCaching.NONE,
    });
    caller = newGrantee(stack, 'Caller');
    router.grantInvoke(caller);
    template = Template.fromStack(stack);
  });

  test('the semantic cache configuration: embedder, Valkey store, thresholds and limits', () => {
    expect(routerConfig(template).semanticCache).toEqual({
      embedder: { provider: 'bedrock', modelId: 'amazon.titan-embed-text-v2:0', dimensions: 512 },
      store: { kind: 'valkey', hnsw: { m: 16, efConstruction: 128, efSearch: 64 }, indexName: 'sai:semantic' },
      threshold: 0.85,
      margin: 0.05,
      rivalSupport: 3,
      answerEquivalence: 0.95,
      neighbours: 20,
      ttlSeconds: 259_200,
      maxEntriesPerScope: 500,
      timeoutMs: 800,
    });
    expect(router.embeddingModel?.dimensions).toBe(512);
    expect(router.vectorStore?.kind).toBe(VectorStoreKind.VALKEY);
  });

  test('the static answers configuration: threshold, max-age, the loader\'s embedder and index', () => {
    expect(routerConfig(template).staticAnswers).toEqual({
      threshold: 0.93,
      maxAgeSeconds: 900,
      embedder: { provider: 'bedrock', modelId: 'amazon.titan-embed-text-v2:0', dimensions: 1024 },
      vectorIndex: { indexName: 'sai:static', hnsw: { m: 16, efConstruction: 128, efSearch: 64 } },
    });
    expect(router.staticAnswers).toBe(answers);
  });

  test('the user context configuration names the table; personal answers are not cached', () => {
    const tableId = stack.getLogicalId(userContext.table!.node.defaultChild as dynamodb.CfnTable);
    const config = routerConfig(template);
    expect(config.userContext).toEqual({ kind: 'dynamodb', tableName: `\${Ref:${tableId}}`, maxTurns: 6, ttlSeconds: 172_800 });
    expect(config.personalCaching).toBe('none');
    expect(router.userContext).toBe(userContext);
  });

  test('routes: chat, static answers lookup, preferences, context deletion and feedback, all with IAM authorization, all to the router', () => {
    const routes = Object.values(template.findResources('AWS::ApiGatewayV2::Route')).map((r) => r.Properties);
    expect(routes.map((r) => r.RouteKey).sort()).toEqual(['DELETE /v1/context', 'GET /v1/static-answers', 'POST /v1/chat', 'POST /v1/feedback', 'PUT /v1/context/preferences']);
    for (const route of routes) expect(route.AuthorizationType).toBe('AWS_IAM');
    const integrations = Object.values(template.findResources('AWS::ApiGatewayV2::Integration')).map((i) => i.Properties.IntegrationUri);
    expect(integrations).toHaveLength(5);
    for (const uri of integrations) expect(uri).toEqual(stack.resolve(router.function.functionArn));
  });

  test('grantInvoke covers every route of the router', () => {
    const [apiId] = onlyResource(template, 'AWS::ApiGatewayV2::Api');
    const arn = (method: string, path: string) => `arn:\${AWS::Partition}:execute-api:\${AWS::Region}:\${AWS::AccountId}:\${Ref:${apiId}}/$default/${method}${path}`;
    expect(resourcesAllowing(template, 'execute-api:Invoke')).toEqual([
      arn('DELETE', '/v1/context'), arn('GET', '/v1/static-answers'), arn('POST', '/v1/chat'), arn('POST', '/v1/feedback'), arn('PUT', '/v1/context/preferences'),
    ]);
  });

  test('the router may invoke both embedding models, use the user context table, and nothing with a wildcard action', () => {
    const statements = functionRoleStatements(stack, template, router.function);
    const granted = (action: string) => statements.filter((s) => actionsOf(s).includes(action)).flatMap(resourcesOf);
    expect(granted('bedrock:InvokeModel')).toEqual(expect.arrayContaining([
      'arn:${AWS::Partition}:bedrock:${AWS::Region}::foundation-model/amazon.titan-embed-text-v2:0',
    ]));
    const tableId = stack.getLogicalId(userContext.table!.node.defaultChild as dynamodb.CfnTable);
    expect(granted('dynamodb:Query')).toEqual([`\${GetAtt:${tableId}.Arn}`]);
    expect(granted('dynamodb:BatchWriteItem')).toEqual([`\${GetAtt:${tableId}.Arn}`]);
    expect(wildcardActions(template)).toEqual([]);
  });

  test('metrics of the new cache levels', () => {
    expect(router.metricCacheHits('semantic').dimensions).toEqual({ service: 'scalable-ai', CacheLevel: 'semantic' });
    expect(router.metricCacheHits('static').dimensions).toEqual({ service: 'scalable-ai', CacheLevel: 'static' });
    const misses = router.metricCacheMisses('semantic');
    expect(misses.metricName).toBe(AiMetricNames.CACHE_MISSES);
    expect(misses.dimensions).toEqual({ service: 'scalable-ai', CacheLevel: 'semantic' });
  });
});

describe('TieredRouter: semantic cache defaults and optional levels', () => {
  test('semanticCache: {} takes every default', () => {
    const stack = newStack();
    const vpc = isolatedVpc(stack);
    const cache = new ResponseCache(stack, 'Cache', { vpc });
    new TieredRouter(stack, 'Router', { tiers: [smallTier()], cache, vpc, semanticCache: {} });
    const template = Template.fromStack(stack);
    expect(routerConfig(template).semanticCache).toEqual({
      embedder: { provider: 'bedrock', modelId: 'amazon.titan-embed-text-v2:0', dimensions: 1024 },
      store: { kind: 'valkey', hnsw: { m: 16, efConstruction: 128, efSearch: 64 }, indexName: 'sai:semantic' },
      threshold: SEMANTIC_DEFAULTS.threshold,
      margin: SEMANTIC_DEFAULTS.margin,
      rivalSupport: SEMANTIC_DEFAULTS.rivalSupport,
      answerEquivalence: SEMANTIC_DEFAULTS.answerEquivalence,
      neighbours: SEMANTIC_DEFAULTS.neighbours,
      ttlSeconds: 604_800,
      maxEntriesPerScope: 10_000,
      timeoutMs: 1_500,
    });
    expect(resourcesAllowing(template, 'bedrock:InvokeModel')).toContain('arn:${AWS::Partition}:bedrock:${AWS::Region}::foundation-model/amazon.titan-embed-text-v2:0');
  });

  test('without them: no semantic cache, static answers or user context; personal answers cached per user, and forgotten at DELETE /v1/context', () => {
    const stack = newStack();
    const vpc = isolatedVpc(stack);
    const cache = new ResponseCache(stack, 'Cache', { vpc });
    const router = new TieredRouter(stack, 'Router', { tiers: [smallTier()], cache, vpc });
    const template = Template.fromStack(stack);
    const config = routerConfig(template);
    for (const key of ['semanticCache', 'staticAnswers', 'userContext']) expect(config).not.toHaveProperty(key);
    expect(config.personalCaching).toBe('user');
    const routes = Object.values(template.findResources('AWS::ApiGatewayV2::Route')).map((r) => r.Properties.RouteKey);
    expect(routes.sort()).toEqual(['DELETE /v1/context', 'POST /v1/chat', 'POST /v1/feedback']);
    expect(router.vectorStore).toBeUndefined();
    expect(router.embeddingModel).toBeUndefined();
    expect(resourcesAllowing(template, 'bedrock:InvokeModel').some((arn) => arn.includes('titan'))).toBe(false);
  });

  test('no DELETE /v1/context where nothing of one user is kept: personal answers not cached, or no cache', () => {
    const stack = newStack();
    const vpc = isolatedVpc(stack);
    const cache = new ResponseCache(stack, 'Cache', { vpc });
    new TieredRouter(stack, 'NotPersonal', { tiers: [smallTier()], cache, vpc, personalCaching: PersonalCaching.NONE });
    new TieredRouter(stack, 'NoCache', { tiers: [smallTier()] });
    const routes = Object.values(Template.fromStack(stack).findResources('AWS::ApiGatewayV2::Route')).map((r) => r.Properties.RouteKey);
    // Feedback only where serving records can be kept: with the cache.
    expect(routes).toEqual(['POST /v1/chat', 'POST /v1/feedback', 'POST /v1/chat']);
  });

  test('a Valkey user context and static answers without semantic matching', () => {
    const stack = newStack();
    const vpc = isolatedVpc(stack);
    const cache = new ResponseCache(stack, 'Cache', { vpc });
    const answers = new StaticAnswers(stack, 'StaticAnswers', { cache, vpc, semanticMatching: false });
    new TieredRouter(stack, 'Router', {
      tiers: [smallTier()],
      cache,
      vpc,
      staticAnswers: answers,
      userContext: new UserContextStore(stack, 'UserContext'),
      authorization: RouterAuthorization.jwt({ issuer: 'https://issuer.example.com', audience: ['web'] }),
    });
    const template = Template.fromStack(stack);
    const config = routerConfig(template);
    expect(config.staticAnswers).toEqual({ maxAgeSeconds: 3600 });
    expect(config.userContext).toEqual({ kind: 'valkey', maxTurns: 10, ttlSeconds: 604_800 });
    const routes = Object.values(template.findResources('AWS::ApiGatewayV2::Route')).map((r) => r.Properties);
    expect(routes).toHaveLength(5);
    for (const route of routes) expect(route.AuthorizationType).toBe('JWT');
    expect(resourcesAllowing(template, 'bedrock:InvokeModel').some((arn) => arn.includes('titan'))).toBe(false);
    template.resourceCountIs('AWS::DynamoDB::Table', 0);
  });
});

describe('TieredRouter: validation of the cache levels', () => {
  type Extra = (stack: Stack, vpc: ec2.Vpc, cache: ResponseCache) => Partial<TieredRouterProps>;
  function withCache(extra: Extra, withRouterCache = true): () => TieredRouter {
    return () => {
      const stack = newStack();
      const vpc = isolatedVpc(stack);
      const cache = new ResponseCache(stack, 'Cache', { vpc });
      return new TieredRouter(stack, 'Router', { tiers: [smallTier()], vpc, cache: withRouterCache ? cache : undefined, ...extra(stack, vpc, cache) });
    };
  }

  test.each<[string, SemanticCacheOptions, RegExp]>([
    ['threshold 0', { threshold: 0 }, /TieredRouter: semanticCache\.threshold must be a cosine similarity in \(0, 1\]; got 0/],
    ['threshold above 1', { threshold: 1.1 }, /semanticCache\.threshold/],
    ['a NaN threshold', { threshold: NaN }, /semanticCache\.threshold/],
    ['answerEquivalence 0', { answerEquivalence: 0 }, /semanticCache\.answerEquivalence must be a cosine similarity in \(0, 1\]/],
    ['margin 1', { margin: 1 }, /semanticCache\.margin must be in \[0, 1\); got 1/],
    ['a negative margin', { margin: -0.1 }, /semanticCache\.margin/],
    ['neighbours 0', { neighbours: 0 }, /semanticCache\.neighbours must be an integer from 1 to 100; got 0/],
    ['neighbours 101', { neighbours: 101 }, /semanticCache\.neighbours/],
    ['fractional neighbours', { neighbours: 2.5 }, /semanticCache\.neighbours/],
    ['rivalSupport 0', { rivalSupport: 0 }, /semanticCache\.rivalSupport must be an integer from 1 to neighbours \(20\); got 0/],
    ['rivalSupport above neighbours', { neighbours: 5, rivalSupport: 6 }, /semanticCache\.rivalSupport must be an integer from 1 to neighbours \(5\)/],
    ['ttl 30 seconds', { ttl: Duration.seconds(30) }, /semanticCache\.ttl must be at least 1 minute; got 30 seconds/],
    ['maxEntriesPerScope 0', { maxEntriesPerScope: 0 }, /semanticCache\.maxEntriesPerScope must be a positive integer; got 0/],
    ['fractional maxEntriesPerScope', { maxEntriesPerScope: 1.5 }, /semanticCache\.maxEntriesPerScope/],
    ['timeout 50 ms', { timeout: Duration.millis(50) }, /semanticCache\.timeout must be from 100 milliseconds to 10 seconds; got 50 millis/],
    ['timeout 11 seconds', { timeout: Duration.seconds(11) }, /semanticCache\.timeout must be from 100 milliseconds to 10 seconds; got 11 seconds/],
  ])('rejects a semantic cache with %s', (_name, semanticCache, message) => {
    expect(withCache(() => ({ semanticCache }))).toThrow(message);
  });

  test('accepts the bounds of the semantic cache options', () => {
    const bounds: SemanticCacheOptions = {
      threshold: 1, answerEquivalence: 1, margin: 0, neighbours: 100, rivalSupport: 100, ttl: Duration.minutes(1), maxEntriesPerScope: 1,
    };
    const upper: SemanticCacheOptions = { timeout: Duration.seconds(10) };
    expect(withCache(() => ({ semanticCache: { timeout: Duration.millis(100) } }))).not.toThrow();
    expect(withCache(() => ({ semanticCache: upper }))).not.toThrow();
    expect(withCache(() => ({ semanticCache: bounds }))).not.toThrow();
  });

  test('rejects static answers without a router cache', () => {
    expect(withCache((stack, vpc, cache) => ({ staticAnswers: new StaticAnswers(stack, 'StaticAnswers', { cache, vpc }) }), false))
      .toThrow(/TieredRouter: staticAnswers need the router's cache; set cache/);
  });

  test('rejects static answers that publish into another cache', () => {
    expect(withCache((stack, vpc) => ({ staticAnswers: new StaticAnswers(stack, 'StaticAnswers', { cache: new ResponseCache(stack, 'Other', { vpc }), vpc }) })))
      .toThrow(/TieredRouter: staticAnswers publish into another ResponseCache than the router's cache/);
  });

  test('rejects a VALKEY user context without a cache', () => {
    expect(withCache((stack) => ({ userContext: new UserContextStore(stack, 'UserContext') }), false))
      .toThrow(/TieredRouter: userContext with the VALKEY backend keeps user context in the ResponseCache; set cache/);
  });

  test('accepts a DYNAMODB user context without a cache', () => {
    expect(withCache((stack) => ({ userContext: new UserContextStore(stack, 'UserContext', { backend: UserContextBackend.DYNAMODB }) }), false)).not.toThrow();
  });
});
