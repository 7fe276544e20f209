/**
 * What users already run, passed to the constructs: a cache imported by its attributes, a cache
 * or HTTP API of another stack, existing queues, an existing user context table. Each is taken
 * through the construct's interface, wired without dependency cycles, and checked at synth as far
 * as it can be.
 */
import { App, Duration, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import {
  functionConfigs, isolatedVpc, logicalIdOf, newGrantee, newStack, onlyResource, resourcesAllowing, routerConfig,
} from './helpers';
import {
  BatchPipeline, ModelTier, ResponseCache, RouterAuthorization, StaticAnswers, TieredRouter, UserContextStore,
  type IModelTier, type ResponseCacheAttributes,
} from '../../constructs';

const SECRET_ARN = 'arn:aws:secretsmanager:us-east-1:111122223333:secret:org/cache-auth-AbCdEf';

function tier(): IModelTier {
  return ModelTier.bedrock({ tierId: 'small', modelId: 'amazon.nova-micro-v1:0', inputPricePer1kTokens: 0.000035, outputPricePer1kTokens: 0.00014, timeout: Duration.seconds(8) });
}

function importedCache(stack: Stack, attrs: Partial<ResponseCacheAttributes> = {}) {
  return ResponseCache.fromResponseCacheAttributes(stack, 'OrgCache', {
    endpointAddress: 'master.org-cache.abc123.use1.cache.amazonaws.com',
    securityGroup: ec2.SecurityGroup.fromSecurityGroupId(stack, 'OrgCacheSg', 'sg-0cac4e0000000000a'),
    authSecret: secretsmanager.Secret.fromSecretCompleteArn(stack, 'OrgCacheAuth', SECRET_ARN),
    ...attrs,
  });
}

/** The ingress rules of a template on the security group `groupId`. */
function ingressOn(template: Template, groupId: unknown): Array<Record<string, any>> {
  return Object.values(template.findResources('AWS::EC2::SecurityGroupIngress'))
    .map((r) => r.Properties)
    .filter((p) => JSON.stringify(p.GroupId) === JSON.stringify(groupId));
}

describe('ResponseCache.fromResponseCacheAttributes: a Valkey group the organization already runs', () => {
  let stack: Stack;
  let template: Template;
  let router: TieredRouter;
  let answers: StaticAnswers;

  beforeAll(() => {
    stack = newStack();
    const vpc = isolatedVpc(stack);
    const cache = importedCache(stack, { port: 6380, keyPrefix: 'shop:', exactCacheTtl: Duration.hours(6), engineVersion: '8.2' });
    answers = new StaticAnswers(stack, 'Answers', { cache, vpc });
    router = new TieredRouter(stack, 'Router', { tiers: [tier()], cache, vpc, staticAnswers: answers });
    template = Template.fromStack(stack);
  });

  test('creates no cache: no replication group, no AUTH secret, no cache security group', () => {
    template.resourceCountIs('AWS::ElastiCache::ReplicationGroup', 0);
    template.resourceCountIs('AWS::SecretsManager::Secret', 0);
    const groups = Object.values(template.findResources('AWS::EC2::SecurityGroup')).map((g) => g.Properties.GroupDescription);
    expect(groups.some((d: string) => d.includes('response cache'))).toBe(false);
  });

  test('the router and the loader connect to the given endpoint, port, prefix and TTL over TLS with the given secret', () => {
    const config = routerConfig(template);
    expect(config.cache).toMatchObject({
      host: 'master.org-cache.abc123.use1.cache.amazonaws.com', port: 6380, tls: true, authSecretArn: SECRET_ARN, keyPrefix: 'shop:',
    });
    expect(config.exactCache).toEqual({ ttlSeconds: 6 * 3600 });
    expect(config.staticAnswers.vectorIndex.indexName).toBe('shop:static');
    const loader = Object.values(functionConfigs(template, 'SCALABLE_AI_STATIC_LOADER_CONFIG'))[0];
    expect(loader.cache).toMatchObject({ host: 'master.org-cache.abc123.use1.cache.amazonaws.com', port: 6380, authSecretArn: SECRET_ARN });
  });

  test('each function gets an ingress rule on the cache\'s security group and read access to the secret', () => {
    const rules = ingressOn(template, 'sg-0cac4e0000000000a');
    const sources = rules.map((r) => stack.resolve(r.SourceSecurityGroupId));
    expect(sources).toEqual(expect.arrayContaining([
      stack.resolve(router.function.connections.securityGroups[0].securityGroupId),
      stack.resolve((answers.loaderFunction as any).connections.securityGroups[0].securityGroupId),
    ]));
    expect(rules).toHaveLength(2);
    expect(rules.every((r) => r.FromPort === 6380 && r.ToPort === 6380)).toBe(true);
    expect(resourcesAllowing(template, 'secretsmanager:GetSecretValue')).toEqual([SECRET_ARN, SECRET_ARN]);
  });

  test('static answers must still publish into the router\'s cache', () => {
    const s = newStack();
    const vpc = isolatedVpc(s);
    const other = new StaticAnswers(s, 'Answers', { cache: importedCache(s), vpc });
    const cache = ResponseCache.fromResponseCacheAttributes(s, 'Another', {
      endpointAddress: 'another.example.internal',
      securityGroup: ec2.SecurityGroup.fromSecurityGroupId(s, 'Sg2', 'sg-2'),
      authSecret: secretsmanager.Secret.fromSecretNameV2(s, 'Secret2', 'another'),
    });
    expect(() => new TieredRouter(s, 'Router', { tiers: [tier()], cache, vpc, staticAnswers: other }))
      .toThrow('TieredRouter: staticAnswers publish into another ResponseCache than the router\'s cache; give both the same cache');
  });

  test.each([
    [{ endpointAddress: 'rediss://master.org-cache:6379' }, 'ResponseCache.fromResponseCacheAttributes: endpointAddress must be the host name of the primary endpoint, without scheme or port; got "rediss://master.org-cache:6379"'],
    [{ engineVersion: '7.2' }, 'ResponseCache.fromResponseCacheAttributes: engineVersion must be Valkey 8.2 or later (vector search for the semantic cache); got "7.2"'],
    [{ port: 80 }, 'ResponseCache.fromResponseCacheAttributes: port must be an integer from 1024 to 65535; got 80'],
    [{ keyPrefix: 'has space' }, 'ResponseCache.fromResponseCacheAttributes: keyPrefix must be at most 32 characters'],
    [{ exactCacheTtl: Duration.seconds(0) }, 'ResponseCache.fromResponseCacheAttributes: exactCacheTtl must be at least 1 second'],
  ] as Array<[Partial<ResponseCacheAttributes>, string]>)('invalid attributes fail at synth: %o', (attrs, message) => {
    expect(() => importedCache(newStack(), attrs)).toThrow(message);
  });
});

describe('a cache of another stack', () => {
  test('a ResponseCache of the network stack used by a router in the service stack: the ingress rule lands in the service stack, no cycle', () => {
    const app = new App();
    const network = new Stack(app, 'Network');
    const vpc = isolatedVpc(network);
    const cache = new ResponseCache(network, 'Cache', { vpc });
    const service = new Stack(app, 'Service');
    const router = new TieredRouter(service, 'Router', { tiers: [tier()], cache, vpc });
    expect(() => app.synth()).not.toThrow();
    const serviceTemplate = Template.fromStack(service);
    const rules = Object.values(serviceTemplate.findResources('AWS::EC2::SecurityGroupIngress')).map((r) => r.Properties);
    expect(rules).toEqual([expect.objectContaining({
      FromPort: 6379,
      SourceSecurityGroupId: service.resolve(router.function.connections.securityGroups[0].securityGroupId),
    })]);
    expect(JSON.stringify(rules[0].GroupId)).toContain('Fn::ImportValue');
    expect(Template.fromStack(network).findResources('AWS::EC2::SecurityGroupIngress')).toEqual({});
  });

  test('an import whose security group is the other stack\'s own synthesizes without a cycle too', () => {
    const app = new App();
    const network = new Stack(app, 'Network');
    const vpc = isolatedVpc(network);
    const real = new ResponseCache(network, 'Cache', { vpc });
    const service = new Stack(app, 'Service');
    const cache = ResponseCache.fromResponseCacheAttributes(service, 'Cache', {
      endpointAddress: real.endpointAddress, securityGroup: real.securityGroup, authSecret: real.authSecret,
    });
    new TieredRouter(service, 'Router', { tiers: [tier()], cache, vpc });
    expect(() => app.synth()).not.toThrow();
    expect(Object.keys(Template.fromStack(service).findResources('AWS::EC2::SecurityGroupIngress'))).toHaveLength(1);
  });
});

describe('UserContextStore.fromTable: an existing DynamoDB table', () => {
  test('the router keeps user context in it, granted item access on it and its key', () => {
    const stack = newStack();
    const key = kms.Key.fromKeyArn(stack, 'Key', 'arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab');
    const table = dynamodb.Table.fromTableAttributes(stack, 'Table', { tableName: 'org-user-context', encryptionKey: key });
    const userContext = UserContextStore.fromTable(stack, 'UserContext', table, { maxTurns: 4 });
    new TieredRouter(stack, 'Router', { tiers: [tier()], userContext });
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::DynamoDB::Table', 0);
    expect(routerConfig(template).userContext).toEqual({ kind: 'dynamodb', tableName: 'org-user-context', maxTurns: 4, ttlSeconds: 7 * 86_400 });
    expect(resourcesAllowing(template, 'dynamodb:PutItem')).toEqual([
      'arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/org-user-context',
    ]);
    expect(resourcesAllowing(template, 'kms:Decrypt')).toEqual([key.keyArn]);
  });

  test('its options are validated like the store\'s', () => {
    const stack = newStack();
    const table = dynamodb.Table.fromTableName(stack, 'Table', 't');
    expect(() => UserContextStore.fromTable(stack, 'UserContext', table, { maxTurns: 0 })).toThrow('UserContextStore: maxTurns must be an integer from 1 to 100; got 0');
  });
});

describe('BatchPipeline with existing queues', () => {
  function routerIn(stack: Stack): TieredRouter {
    return new TieredRouter(stack, 'Router', { tiers: [tier()] });
  }

  test('a queue of the app with its own dead-letter queue: used as is, its receive count taken', () => {
    const stack = newStack();
    const deadLetterQueue = new sqs.Queue(stack, 'OrgDlq', { retentionPeriod: Duration.days(14) });
    const queue = new sqs.Queue(stack, 'OrgQueue', {
      visibilityTimeout: Duration.minutes(31), deadLetterQueue: { queue: deadLetterQueue, maxReceiveCount: 3 },
    });
    const pipeline = new BatchPipeline(stack, 'Pipeline', { router: routerIn(stack), queue });
    const template = Template.fromStack(stack);
    expect(pipeline.queue).toBe(queue);
    expect(pipeline.deadLetterQueue).toBe(deadLetterQueue);
    template.resourceCountIs('AWS::SQS::Queue', 2);
    expect(onlyResource(template, 'AWS::Lambda::EventSourceMapping')[1].Properties.EventSourceArn).toEqual({ 'Fn::GetAtt': [logicalIdOf(stack, queue), 'Arn'] });
    const jobs = Object.values(functionConfigs(template, 'SCALABLE_AI_JOBS_CONFIG'));
    expect(jobs).toHaveLength(2);
    for (const config of jobs) expect(config).toMatchObject({ queueUrl: `\${Ref:${logicalIdOf(stack, queue)}}`, maxReceiveCount: 3 });
    expect(resourcesAllowing(template, 'sqs:SendMessage')).toEqual([`\${GetAtt:${logicalIdOf(stack, queue)}.Arn}`]);
  });

  test('an imported queue with a customer managed key: the given dead-letter queue and receive count, the key granted', () => {
    const stack = newStack();
    const keyArn = 'arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';
    const queue = sqs.Queue.fromQueueAttributes(stack, 'OrgQueue', { queueArn: 'arn:aws:sqs:us-east-1:111122223333:org-jobs', keyArn });
    const deadLetterQueue = sqs.Queue.fromQueueArn(stack, 'OrgDlq', 'arn:aws:sqs:us-east-1:111122223333:org-jobs-dlq');
    new BatchPipeline(stack, 'Pipeline', { router: routerIn(stack), queue, deadLetterQueue, maxReceiveCount: 4 });
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::SQS::Queue', 0);
    for (const config of Object.values(functionConfigs(template, 'SCALABLE_AI_JOBS_CONFIG'))) expect(config.maxReceiveCount).toBe(4);
    expect(resourcesAllowing(template, 'sqs:SendMessage')).toEqual(['arn:aws:sqs:us-east-1:111122223333:org-jobs']);
    expect(resourcesAllowing(template, 'kms:GenerateDataKey')).toContain(keyArn);
    expect(resourcesAllowing(template, 'sqs:ReceiveMessage')).toEqual(['arn:aws:sqs:us-east-1:111122223333:org-jobs']);
  });

  test('an existing dead-letter queue for the new queue', () => {
    const stack = newStack();
    const deadLetterQueue = sqs.Queue.fromQueueArn(stack, 'OrgDlq', 'arn:aws:sqs:us-east-1:111122223333:org-dlq');
    const pipeline = new BatchPipeline(stack, 'Pipeline', { router: routerIn(stack), deadLetterQueue });
    const template = Template.fromStack(stack);
    const [, queue] = onlyResource(template, 'AWS::SQS::Queue');
    expect(queue.Properties.RedrivePolicy).toEqual({ deadLetterTargetArn: 'arn:aws:sqs:us-east-1:111122223333:org-dlq', maxReceiveCount: 5 });
    expect(pipeline.deadLetterQueue).toBe(deadLetterQueue);
  });

  const cases: Array<[string, (stack: Stack) => Partial<ConstructorParameters<typeof BatchPipeline>[2]>, string]> = [
    ['an imported queue without its dead-letter queue', (s) => ({ queue: sqs.Queue.fromQueueArn(s, 'Q', 'arn:aws:sqs:us-east-1:111122223333:q'), maxReceiveCount: 3 }),
      'BatchPipeline: an imported queue needs deadLetterQueue and maxReceiveCount, those of its redrive policy'],
    ['an imported queue without maxReceiveCount', (s) => ({
      queue: sqs.Queue.fromQueueArn(s, 'Q', 'arn:aws:sqs:us-east-1:111122223333:q'), deadLetterQueue: sqs.Queue.fromQueueArn(s, 'D', 'arn:aws:sqs:us-east-1:111122223333:d'),
    }), 'BatchPipeline: an imported queue needs deadLetterQueue and maxReceiveCount'],
    ['a queue without a dead-letter queue', (s) => ({ queue: new sqs.Queue(s, 'Q', { visibilityTimeout: Duration.hours(1) }) }),
      'BatchPipeline: queue TestStack/Q has no dead-letter queue'],
    ['a visibility timeout shorter than 6 x workerTimeout + window', (s) => ({
      queue: new sqs.Queue(s, 'Q', { deadLetterQueue: { queue: new sqs.Queue(s, 'D'), maxReceiveCount: 5 } }),
    }), 'BatchPipeline: the visibility timeout of queue TestStack/Q (30 s) must be at least six times workerTimeout plus maxBatchingWindow (1805 s)'],
    ['another maxReceiveCount than the queue\'s', (s) => ({
      queue: new sqs.Queue(s, 'Q', { visibilityTimeout: Duration.hours(1), deadLetterQueue: { queue: new sqs.Queue(s, 'D'), maxReceiveCount: 5 } }), maxReceiveCount: 2,
    }), 'BatchPipeline: maxReceiveCount (2) differs from the maxReceiveCount of the redrive policy of queue TestStack/Q (5)'],
    ['another deadLetterQueue than the queue\'s', (s) => ({
      queue: new sqs.Queue(s, 'Q', { visibilityTimeout: Duration.hours(1), deadLetterQueue: { queue: new sqs.Queue(s, 'D'), maxReceiveCount: 5 } }),
      deadLetterQueue: new sqs.Queue(s, 'Other'),
    }), 'BatchPipeline: deadLetterQueue is not the dead-letter queue of queue TestStack/Q'],
    ['an unencrypted queue', (s) => ({
      queue: new sqs.Queue(s, 'Q', { encryption: sqs.QueueEncryption.UNENCRYPTED, visibilityTimeout: Duration.hours(1), deadLetterQueue: { queue: new sqs.Queue(s, 'D'), maxReceiveCount: 5 } }),
    }), 'BatchPipeline: queue must be encrypted at rest'],
    ['a FIFO queue', (s) => ({
      queue: new sqs.Queue(s, 'Q', { fifo: true, visibilityTimeout: Duration.hours(1), deadLetterQueue: { queue: new sqs.Queue(s, 'D', { fifo: true }), maxReceiveCount: 5 } }),
    }), 'BatchPipeline: queue must be a standard queue; TestStack/Q is a FIFO queue'],
    ['queueEncryption with a queue', (s) => ({
      queue: new sqs.Queue(s, 'Q', { visibilityTimeout: Duration.hours(1), deadLetterQueue: { queue: new sqs.Queue(s, 'D'), maxReceiveCount: 5 } }),
      queueEncryption: sqs.QueueEncryption.SQS_MANAGED,
    }), 'BatchPipeline: queueEncryption configures the queue this construct creates; it cannot be combined with queue'],
    ['a queue retaining messages longer than resultTtl', (s) => ({
      queue: new sqs.Queue(s, 'Q', { retentionPeriod: Duration.days(14), visibilityTimeout: Duration.hours(1), deadLetterQueue: { queue: new sqs.Queue(s, 'D'), maxReceiveCount: 5 } }),
    }), 'BatchPipeline: resultTtl (7 days) must be at least the retention period of queue TestStack/Q (1209600 s)'],
  ];
  test.each(cases)('%s fails at synth', (_name, props, message) => {
    const stack = newStack();
    expect(() => new BatchPipeline(stack, 'Pipeline', { router: routerIn(stack), ...props(stack) })).toThrow(message);
  });
});

describe('TieredRouter on an existing HTTP API', () => {
  test('the routes join the organization\'s API with the router\'s authorization; no API, stage or access logs of its own', () => {
    const stack = newStack();
    const api = new apigwv2.HttpApi(stack, 'OrgApi');
    const router = new TieredRouter(stack, 'Router', { tiers: [tier()], httpApi: api });
    new BatchPipeline(stack, 'Pipeline', { router });
    const caller = newGrantee(stack, 'Caller');
    router.grantInvoke(caller);
    const template = Template.fromStack(stack);
    const apiId = { Ref: logicalIdOf(stack, api) };
    template.resourceCountIs('AWS::ApiGatewayV2::Api', 1);
    template.resourceCountIs('AWS::ApiGatewayV2::Stage', 1);
    template.resourceCountIs('AWS::Logs::LogGroup', 3); // the three functions' logs only
    const routes = Object.values(template.findResources('AWS::ApiGatewayV2::Route')).map((r) => r.Properties);
    expect(routes.map((r) => r.RouteKey).sort()).toEqual(['GET /v1/jobs/{id}', 'POST /v1/chat', 'POST /v1/jobs']);
    for (const route of routes) expect(route).toMatchObject({ ApiId: apiId, AuthorizationType: 'AWS_IAM' });
    expect(router.api).toBe(api);
    expect(router.stage).toBeUndefined();
    expect(router.accessLogGroup).toBeUndefined();
    expect(stack.resolve(router.url)).toEqual({ 'Fn::Join': ['', ['https://', apiId, '.execute-api.', { Ref: 'AWS::Region' }, '.', { Ref: 'AWS::URLSuffix' }, '/']] });
    expect(resourcesAllowing(template, 'execute-api:Invoke')).toEqual([
      `arn:\${AWS::Partition}:execute-api:\${AWS::Region}:\${AWS::AccountId}:\${Ref:${apiId.Ref}}/$default/POST/v1/chat`,
    ]);
  });

  test('an imported API and a named stage: grantInvoke and url name that stage', () => {
    const stack = newStack();
    const api = apigwv2.HttpApi.fromHttpApiAttributes(stack, 'OrgApi', { httpApiId: 'a1b2c3' });
    const router = new TieredRouter(stack, 'Router', { tiers: [tier()], httpApi: api, httpApiStageName: 'prod' });
    const pipeline = new BatchPipeline(stack, 'Pipeline', { router });
    const caller = newGrantee(stack, 'Caller');
    router.grantInvoke(caller);
    pipeline.grantSubmit(caller);
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::ApiGatewayV2::Api', 0);
    template.resourceCountIs('AWS::ApiGatewayV2::Stage', 0);
    expect(resourcesAllowing(template, 'execute-api:Invoke').sort()).toEqual([
      'arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:a1b2c3/prod/GET/v1/jobs/*',
      'arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:a1b2c3/prod/POST/v1/chat',
      'arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:a1b2c3/prod/POST/v1/jobs',
    ]);
    expect(stack.resolve(router.url)).toEqual({ 'Fn::Join': ['', ['https://a1b2c3.execute-api.', { Ref: 'AWS::Region' }, '.', { Ref: 'AWS::URLSuffix' }, '/prod']] });
  });

  test('JWT authorization: one authorizer on the existing API, used by every route (the batch pipeline\'s too)', () => {
    const stack = newStack();
    const api = apigwv2.HttpApi.fromHttpApiAttributes(stack, 'OrgApi', { httpApiId: 'a1b2c3' });
    const authorization = RouterAuthorization.jwt({ issuer: 'https://issuer.example.com', audience: ['shop'] });
    const router = new TieredRouter(stack, 'Router', { tiers: [tier()], httpApi: api, authorization });
    new BatchPipeline(stack, 'Pipeline', { router });
    const template = Template.fromStack(stack);
    const [authorizerId, authorizer] = onlyResource(template, 'AWS::ApiGatewayV2::Authorizer');
    expect(authorizer.Properties).toMatchObject({ ApiId: 'a1b2c3', AuthorizerType: 'JWT' });
    const routes = Object.values(template.findResources('AWS::ApiGatewayV2::Route')).map((r) => r.Properties);
    expect(routes).toHaveLength(3);
    for (const route of routes) expect(route).toMatchObject({ ApiId: 'a1b2c3', AuthorizationType: 'JWT', AuthorizerId: { Ref: authorizerId } });
  });

  test('an API of another stack: the routes live in the router\'s stack, no cycle', () => {
    const app = new App();
    const edge = new Stack(app, 'Edge');
    const api = new apigwv2.HttpApi(edge, 'OrgApi');
    const service = new Stack(app, 'Service');
    new TieredRouter(service, 'Router', { tiers: [tier()], httpApi: api });
    expect(() => app.synth()).not.toThrow();
    Template.fromStack(service).resourceCountIs('AWS::ApiGatewayV2::Route', 1);
    Template.fromStack(edge).resourceCountIs('AWS::ApiGatewayV2::Route', 0);
  });

  test.each([
    [{ throttlingRateLimit: 50 }, 'TieredRouter: throttlingRateLimit configures the stage of the API the router creates; with httpApi the stages are the API\'s own'],
    [{ throttlingBurstLimit: 50 }, 'TieredRouter: throttlingBurstLimit configures the stage of the API the router creates'],
    [{ httpApiStageName: 'prod/v1' }, 'TieredRouter: httpApiStageName must be "$default" or 1-128 letters, digits, "-" or "_"; got "prod/v1"'],
  ])('%o with httpApi fails at synth', (props, message) => {
    const stack = newStack();
    const api = apigwv2.HttpApi.fromHttpApiAttributes(stack, 'OrgApi', { httpApiId: 'a1b2c3' });
    expect(() => new TieredRouter(stack, 'Router', { tiers: [tier()], httpApi: api, ...props })).toThrow(message);
  });

  test('httpApiStageName without httpApi fails at synth', () => {
    const stack = newStack();
    expect(() => new TieredRouter(stack, 'Router', { tiers: [tier()], httpApiStageName: 'prod' }))
      .toThrow('TieredRouter: httpApiStageName names a stage of httpApi; set httpApi too, or leave it out');
  });
});
