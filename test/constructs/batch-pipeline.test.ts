import { App, Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { AwsSolutionsChecks } from 'cdk-nag';
import {
  acknowledgements, actionsOf, flatten, functionConfigs, newApp, newGrantee, newStack, onlyResource, parseJsonValue, resourcesAllowing,
  resourcesOf, roleStatements, routerConfig, statementsAllowing, wildcardActions, type PolicyStatementJson, logicalIdOf,
} from './helpers';
import {
  AiMetricNames, BatchPipeline, BedrockServiceTier, ModelTier, ResponseCache, RouterAuthorization, ScalableAiService, TieredRouter,
  UserContextBackend, UserContextStore, VectorStore, type BatchPipelineProps, type IModelTier,
} from '../../constructs';
import { BULK_JOB_NAME_PREFIX } from '../../constructs/contract/runtime-config';

const JOBS_CONFIG = 'SCALABLE_AI_JOBS_CONFIG';
const ROUTER_CONFIG = 'SCALABLE_AI_ROUTER_CONFIG';

function smallTier(): IModelTier {
  return ModelTier.bedrock({ tierId: 'small', modelId: 'amazon.nova-micro-v1:0', inputPricePer1kTokens: 0.000035, outputPricePer1kTokens: 0.00014, timeout: Duration.seconds(8) });
}
/** Through a cross-region inference profile, any destination Region. */
function largeTier(): IModelTier {
  return ModelTier.bedrock({
    tierId: 'large', modelId: 'us.anthropic.claude-sonnet-4-5-20250929-v1:0', inputPricePer1kTokens: 0.003, outputPricePer1kTokens: 0.015, timeout: Duration.seconds(20),
  });
}

function isolatedVpc(stack: Stack): ec2.Vpc {
  const vpc = new ec2.Vpc(stack, 'Vpc', {
    maxAzs: 2,
    natGateways: 0,
    subnetConfiguration: [{ name: 'isolated', subnetType: ec2.SubnetType.PRIVATE_ISOLATED }],
  });
  Validations.of(vpc).acknowledge({ id: 'AwsSolutions-VPC7', reason: 'test fixture: a VPC without flow logs' });
  return vpc;
}

/** The statements of the identity policies of a function's role. */
function fnStatements(stack: Stack, template: Template, fn: lambda.IFunction): PolicyStatementJson[] {
  return roleStatements(template, logicalIdOf(stack, fn.role as iam.Role));
}

/** Resources a set of statements allows `action` on. */
function granted(statements: PolicyStatementJson[], action: string): string[] {
  return statements.filter((s) => s.Effect === 'Allow' && actionsOf(s).includes(action)).flatMap(resourcesOf);
}

function jobsConfigOf(template: Template, stack: Stack, fn: lambda.IFunction): any {
  return functionConfigs(template, JOBS_CONFIG)[logicalIdOf(stack, fn)];
}

describe('BatchPipeline: defaults (IAM authorization, router outside a VPC, no bulk mode)', () => {
  let stack: Stack;
  let template: Template;
  let router: TieredRouter;
  let pipeline: BatchPipeline;
  let caller: iam.Role;

  beforeAll(() => {
    stack = newStack();
    router = new TieredRouter(stack, 'Router', { tiers: [smallTier(), largeTier()], serviceName: 'shop' });
    pipeline = new BatchPipeline(stack, 'Pipeline', { router });
    caller = newGrantee(stack, 'Caller');
    pipeline.grantSubmit(caller);
    template = Template.fromStack(stack);
  });

  test('an SQS-encrypted, TLS-only queue with a redrive policy to an encrypted dead-letter queue (5 receives)', () => {
    const queueId = logicalIdOf(stack, pipeline.queue);
    const dlqId = logicalIdOf(stack, pipeline.deadLetterQueue);
    const resources = template.toJSON().Resources;
    expect(resources[queueId].Properties).toMatchObject({
      SqsManagedSseEnabled: true,
      RedrivePolicy: { deadLetterTargetArn: { 'Fn::GetAtt': [dlqId, 'Arn'] }, maxReceiveCount: 5 },
      MessageRetentionPeriod: 4 * 86_400,
      VisibilityTimeout: 6 * 300 + 5,
    });
    expect(resources[dlqId].Properties).toMatchObject({ SqsManagedSseEnabled: true, MessageRetentionPeriod: 14 * 86_400 });
    expect(resources[dlqId].Properties.RedrivePolicy).toBeUndefined();
    template.resourceCountIs('AWS::SQS::Queue', 2);
  });

  test('both queues deny any request that is not over TLS', () => {
    for (const queue of [pipeline.queue, pipeline.deadLetterQueue]) {
      const id = logicalIdOf(stack, queue);
      const policies = Object.values(template.findResources('AWS::SQS::QueuePolicy'))
        .filter((p) => JSON.stringify(p.Properties.Queues) === JSON.stringify([{ Ref: id }]));
      expect(policies).toHaveLength(1);
      expect(policies[0].Properties.PolicyDocument.Statement).toContainEqual(expect.objectContaining({
        Effect: 'Deny', Action: 'sqs:*', Condition: { Bool: { 'aws:SecureTransport': 'false' } },
      }));
    }
  });

  test('the worker reads the queue in batches of 10 gathered for 5 seconds, at most 10 at a time, reporting failed items', () => {
    const [, mapping] = onlyResource(template, 'AWS::Lambda::EventSourceMapping');
    expect(mapping.Properties).toMatchObject({
      EventSourceArn: { 'Fn::GetAtt': [logicalIdOf(stack, pipeline.queue), 'Arn'] },
      FunctionName: { Ref: logicalIdOf(stack, pipeline.workerFunction) },
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      BatchSize: 10,
      MaximumBatchingWindowInSeconds: 5,
      ScalingConfig: { MaximumConcurrency: 10 },
    });
    expect(mapping.Properties.MaximumBatchingWindowInSeconds).toBeGreaterThan(0);
  });

  test('the results table: pk/sk strings, TTL expiresAt, on-demand, point-in-time recovery, encrypted, retained', () => {
    const table = template.toJSON().Resources[logicalIdOf(stack, pipeline.resultsTable)];
    expect(table.Properties).toMatchObject({
      KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }, { AttributeName: 'sk', KeyType: 'RANGE' }],
      AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }, { AttributeName: 'sk', AttributeType: 'S' }],
      TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
      BillingMode: 'PAY_PER_REQUEST',
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      SSESpecification: { SSEEnabled: true },
    });
    expect(table.DeletionPolicy).toBe('Retain');
  });

  test('the idempotency table: id string, TTL expiration, on-demand, point-in-time recovery, encrypted', () => {
    const table = template.toJSON().Resources[logicalIdOf(stack, pipeline.idempotencyTable)];
    expect(table.Properties).toMatchObject({
      KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
      AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
      TimeToLiveSpecification: { AttributeName: 'expiration', Enabled: true },
      BillingMode: 'PAY_PER_REQUEST',
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      SSESpecification: { SSEEnabled: true },
    });
    template.resourceCountIs('AWS::DynamoDB::Table', 2);
  });

  test('POST /v1/jobs and GET /v1/jobs/{id} on the router\'s API, with its IAM authorization, integrated with the jobs API', () => {
    const apiRef = stack.resolve(router.api.apiId);
    const routes = Object.values(template.findResources('AWS::ApiGatewayV2::Route')).map((r) => r.Properties);
    expect(routes.map((r) => r.RouteKey).sort()).toEqual(['GET /v1/jobs/{id}', 'POST /v1/chat', 'POST /v1/jobs']);
    const integrations = template.toJSON().Resources;
    for (const route of routes.filter((r) => r.RouteKey.includes('/v1/jobs'))) {
      expect(route).toMatchObject({ ApiId: apiRef, AuthorizationType: 'AWS_IAM' });
      const integrationId = flatten(route.Target).replace('integrations/${Ref:', '').replace('}', '');
      expect(integrations[integrationId].Properties).toMatchObject({
        IntegrationType: 'AWS_PROXY',
        IntegrationUri: stack.resolve(pipeline.jobsApiFunction.functionArn),
        PayloadFormatVersion: '2.0',
      });
    }
    const permissions = Object.values(template.findResources('AWS::Lambda::Permission'))
      .filter((p) => JSON.stringify(p.Properties.FunctionName).includes(logicalIdOf(stack, pipeline.jobsApiFunction)))
      .map((p) => flatten(p.Properties.SourceArn));
    expect(permissions.sort()).toEqual([
      `arn:\${AWS::Partition}:execute-api:\${AWS::Region}:\${AWS::AccountId}:\${Ref:${logicalIdOf(stack, router.api)}}/*/*/v1/jobs`,
      `arn:\${AWS::Partition}:execute-api:\${AWS::Region}:\${AWS::AccountId}:\${Ref:${logicalIdOf(stack, router.api)}}/*/*/v1/jobs/{id}`,
    ]);
  });

  test('the handlers carry the jobs configuration and the router\'s configuration', () => {
    const configs = functionConfigs(template, JOBS_CONFIG);
    expect(Object.keys(configs).sort()).toEqual([logicalIdOf(stack, pipeline.jobsApiFunction), logicalIdOf(stack, pipeline.workerFunction)].sort());
    for (const config of Object.values(configs)) {
      expect(config).toEqual({
        resultsTable: `\${Ref:${logicalIdOf(stack, pipeline.resultsTable)}}`,
        idempotencyTable: `\${Ref:${logicalIdOf(stack, pipeline.idempotencyTable)}}`,
        queueUrl: `\${Ref:${logicalIdOf(stack, pipeline.queue)}}`,
        resultTtlSeconds: 7 * 86_400,
        idempotencyTtlSeconds: 3600,
        maxItemsPerJob: 100,
        maxReceiveCount: 5,
        tierConcurrency: 4,
      });
    }
    const routerJson = template.toJSON().Resources[logicalIdOf(stack, router.function)].Properties.Environment.Variables[ROUTER_CONFIG];
    for (const fn of [pipeline.jobsApiFunction, pipeline.workerFunction]) {
      const variables = template.toJSON().Resources[logicalIdOf(stack, fn)].Properties.Environment.Variables;
      expect(variables[ROUTER_CONFIG]).toEqual(routerJson);
      expect(variables.POWERTOOLS_SERVICE_NAME).toBe('shop');
    }
    expect(routerConfig(template).tiers.map((t: { id: string }) => t.id)).toEqual(['small', 'large']);
  });

  test('the functions: Node.js 22+ on arm64 outside any VPC (as the router), the worker with a 5-minute timeout', () => {
    for (const fn of [pipeline.jobsApiFunction, pipeline.workerFunction]) {
      const props = template.toJSON().Resources[logicalIdOf(stack, fn)].Properties;
      expect(Number(/^nodejs(\d+)\.x$/.exec(props.Runtime)![1])).toBeGreaterThanOrEqual(22);
      expect(props.Architectures).toEqual(['arm64']);
      expect(props.VpcConfig).toBeUndefined();
    }
    expect(template.toJSON().Resources[logicalIdOf(stack, pipeline.workerFunction)].Properties).toMatchObject({ Timeout: 300, MemorySize: 512 });
    expect(template.toJSON().Resources[logicalIdOf(stack, pipeline.jobsApiFunction)].Properties.Timeout).toBeLessThanOrEqual(29);
  });

  test('the jobs API: the results and idempotency item actions it needs, and sqs:SendMessage on the queue; nothing of the models', () => {
    const statements = fnStatements(stack, template, pipeline.jobsApiFunction);
    const results = `\${GetAtt:${logicalIdOf(stack, pipeline.resultsTable)}.Arn}`;
    const idempotency = `\${GetAtt:${logicalIdOf(stack, pipeline.idempotencyTable)}.Arn}`;
    const byResource = (arn: string) => statements.filter((s) => resourcesOf(s).includes(arn)).flatMap(actionsOf).sort();
    expect(byResource(results)).toEqual(['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query', 'dynamodb:UpdateItem']);
    expect(byResource(idempotency)).toEqual(['dynamodb:DeleteItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem']);
    expect(granted(statements, 'sqs:SendMessage')).toEqual([`\${GetAtt:${logicalIdOf(stack, pipeline.queue)}.Arn}`]);
    expect(granted(statements, 'bedrock:InvokeModel')).toEqual([]);
    expect(granted(statements, 'bedrock:CreateModelInvocationJob')).toEqual([]);
  });

  test('the worker: result writes, queue consumption, and exactly the router\'s tier grants', () => {
    const statements = fnStatements(stack, template, pipeline.workerFunction);
    const results = `\${GetAtt:${logicalIdOf(stack, pipeline.resultsTable)}.Arn}`;
    expect(statements.filter((s) => resourcesOf(s).includes(results)).flatMap(actionsOf).sort())
      .toEqual(['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query', 'dynamodb:UpdateItem']);
    const queueArn = `\${GetAtt:${logicalIdOf(stack, pipeline.queue)}.Arn}`;
    expect(granted(statements, 'sqs:ReceiveMessage')).toEqual([queueArn]);
    expect(granted(statements, 'sqs:DeleteMessage')).toEqual([queueArn]);
    expect(granted(statements, 'sqs:SendMessage')).toEqual([]);
    const routerStatements = fnStatements(stack, template, router.function);
    for (const action of ['bedrock:InvokeModel', 'bedrock:InvokeModelWithResponseStream']) {
      expect(granted(statements, action)).toEqual(granted(routerStatements, action));
      expect(granted(statements, action).length).toBeGreaterThan(0);
    }
    // Query on the results table only: a job's header and counter shards are read together.
    expect(granted(statements, 'dynamodb:Query')).toEqual([results]);
  });

  test('grantSubmit: execute-api:Invoke on the two job routes of the $default stage only', () => {
    const apiId = logicalIdOf(stack, router.api);
    const grants = statementsAllowing(template, 'execute-api:Invoke');
    expect(grants).toHaveLength(1);
    expect(resourcesOf(grants[0].statement)).toEqual([
      `arn:\${AWS::Partition}:execute-api:\${AWS::Region}:\${AWS::AccountId}:\${Ref:${apiId}}/$default/GET/v1/jobs/*`,
      `arn:\${AWS::Partition}:execute-api:\${AWS::Region}:\${AWS::AccountId}:\${Ref:${apiId}}/$default/POST/v1/jobs`,
    ]);
    // The caller's role is yours: its finding is left to your review, not acknowledged by the library.
    expect(acknowledgements(caller)).toEqual([]);
  });

  test('no bulk resources', () => {
    expect(pipeline.completionFunction).toBeUndefined();
    expect(pipeline.bulkBucket).toBeUndefined();
    expect(pipeline.bulkRole).toBeUndefined();
    expect(pipeline.bulkRule).toBeUndefined();
    template.resourceCountIs('AWS::Events::Rule', 0);
    template.resourceCountIs('AWS::S3::Bucket', 0);
    expect(resourcesAllowing(template, 'iam:PassRole')).toEqual([]);
  });

  test('no IAM statement has a wildcard action', () => {
    expect(wildcardActions(template)).toEqual([]);
  });

  test.each<[string, (p: BatchPipeline) => any, string, string, Record<string, string>]>([
    ['metricQueueDepth', (p) => p.metricQueueDepth(), 'AWS/SQS', 'ApproximateNumberOfMessagesVisible', {}],
    ['metricOldestMessageAge', (p) => p.metricOldestMessageAge(), 'AWS/SQS', 'ApproximateAgeOfOldestMessage', {}],
    ['metricDeadLetterDepth', (p) => p.metricDeadLetterDepth(), 'AWS/SQS', 'ApproximateNumberOfMessagesVisible', {}],
    ['metricBatchSize', (p) => p.metricBatchSize(), AiMetricNames.NAMESPACE, AiMetricNames.BATCH_SIZE, { service: 'shop' }],
    ['metricDeduplicatedRequests', (p) => p.metricDeduplicatedRequests(), AiMetricNames.NAMESPACE, AiMetricNames.DEDUPLICATED_REQUESTS, { service: 'shop' }],
    ['metricResultsWritten', (p) => p.metricResultsWritten(), AiMetricNames.NAMESPACE, AiMetricNames.RESULTS_WRITTEN, { service: 'shop' }],
    ['metricBatchFailures', (p) => p.metricBatchFailures('model'), AiMetricNames.NAMESPACE, AiMetricNames.BATCH_FAILURES, { service: 'shop', FailureKind: 'model' }],
    ['metricJobsSubmitted', (p) => p.metricJobsSubmitted(), AiMetricNames.NAMESPACE, AiMetricNames.JOBS_SUBMITTED, { service: 'shop' }],
    ['metricBulkJobsCompleted', (p) => p.metricBulkJobsCompleted('partial'), AiMetricNames.NAMESPACE, AiMetricNames.BULK_JOBS_COMPLETED, { service: 'shop', Reason: 'partial' }],
  ])('%s', (_name, make, namespace, metricName, dimensions) => {
    const metric = make(pipeline);
    expect(metric.namespace).toBe(namespace);
    expect(metric.metricName).toBe(metricName);
    if (namespace === 'AWS/SQS') {
      const queue = _name === 'metricDeadLetterDepth' ? pipeline.deadLetterQueue : pipeline.queue;
      expect(stack.resolve(metric.dimensions)).toEqual({ QueueName: stack.resolve(queue.queueName) });
    } else {
      expect(metric.dimensions).toEqual(dimensions);
    }
  });

  test('the batch size metric averages by default; options override statistic and period', () => {
    expect(pipeline.metricBatchSize().statistic).toBe('Average');
    expect(pipeline.metricResultsWritten().statistic).toBe('Sum');
    const metric = pipeline.metricBatchFailures('poison', { statistic: 'Maximum', period: Duration.minutes(5) });
    expect(metric.statistic).toBe('Maximum');
    expect(metric.period.toSeconds()).toBe(300);
  });
});

describe('BatchPipeline: bulk mode, JWT authorization, VPC, cache, semantic cache, customer managed key, options', () => {
  let app: App;
  let stack: Stack;
  let template: Template;
  let vpc: ec2.Vpc;
  let cache: ResponseCache;
  let key: kms.Key;
  let router: TieredRouter;
  let large: IModelTier;
  let pipeline: BatchPipeline;

  beforeAll(() => {
    // Checked by cdk-nag's AWS Solutions pack: synthesis fails on any unacknowledged finding.
    app = newApp();
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    stack = new Stack(app, 'BulkStack');
    vpc = isolatedVpc(stack);
    cache = new ResponseCache(stack, 'Cache', { vpc });
    key = new kms.Key(stack, 'Key', { enableKeyRotation: true });
    large = largeTier();
    router = new TieredRouter(stack, 'Router', {
      tiers: [smallTier(), large],
      cache,
      vpc,
      semanticCache: {},
      authorization: RouterAuthorization.jwt({ issuer: 'https://issuer.example.com/pool', audience: ['web'] }),
      serviceName: 'shop',
    });
    pipeline = new BatchPipeline(stack, 'Pipeline', {
      router,
      encryptionKey: key,
      maxReceiveCount: 3,
      retentionPeriod: Duration.days(2),
      batchSize: 50,
      maxBatchingWindow: Duration.seconds(20),
      workerTimeout: Duration.minutes(2),
      workerMemorySize: 1024,
      tierConcurrency: 8,
      maxConcurrency: 5,
      resultTtl: Duration.days(3),
      idempotencyTtl: Duration.hours(6),
      maxItemsPerJob: 250,
      removalPolicy: RemovalPolicy.DESTROY,
      bulk: { tier: large, minItems: 200, maxItems: 20_000, timeout: Duration.hours(48), prefix: 'batch/' },
    });
    template = Template.fromStack(stack);
  });

  test('synthesizes clean under cdk-nag AwsSolutions', () => {
    // Template.fromStack ran the validation plugins: any finding would have thrown.
    expect(template.toJSON().Resources).toBeDefined();
  });

  test('the queues and tables use the customer managed key', () => {
    const keyArn = { 'Fn::GetAtt': [logicalIdOf(stack, key), 'Arn'] };
    const resources = template.toJSON().Resources;
    for (const queue of [pipeline.queue, pipeline.deadLetterQueue]) {
      expect(resources[logicalIdOf(stack, queue)].Properties.KmsMasterKeyId).toEqual(keyArn);
    }
    for (const table of [pipeline.resultsTable, pipeline.idempotencyTable]) {
      expect(resources[logicalIdOf(stack, table)].Properties.SSESpecification).toEqual({ SSEEnabled: true, SSEType: 'KMS', KMSMasterKeyId: keyArn });
      expect(resources[logicalIdOf(stack, table)].DeletionPolicy).toBe('Delete');
    }
    const jobsApi = fnStatements(stack, template, pipeline.jobsApiFunction);
    expect(granted(jobsApi, 'kms:GenerateDataKey')).toContain(`\${GetAtt:${logicalIdOf(stack, key)}.Arn}`);
    expect(granted(fnStatements(stack, template, pipeline.workerFunction), 'kms:Decrypt')).toContain(`\${GetAtt:${logicalIdOf(stack, key)}.Arn}`);
  });

  test('the options reach the queue and the event source: visibility 6 × 2 min + 20 s, 2 days, 3 receives, batches of 50, 5 concurrent', () => {
    expect(template.toJSON().Resources[logicalIdOf(stack, pipeline.queue)].Properties).toMatchObject({
      VisibilityTimeout: 6 * 120 + 20,
      MessageRetentionPeriod: 2 * 86_400,
      RedrivePolicy: { maxReceiveCount: 3 },
    });
    const [, mapping] = onlyResource(template, 'AWS::Lambda::EventSourceMapping');
    expect(mapping.Properties).toMatchObject({
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      BatchSize: 50,
      MaximumBatchingWindowInSeconds: 20,
      ScalingConfig: { MaximumConcurrency: 5 },
    });
    expect(template.toJSON().Resources[logicalIdOf(stack, pipeline.workerFunction)].Properties).toMatchObject({ Timeout: 120, MemorySize: 1024 });
  });

  test('the job routes use the router\'s JWT authorizer', () => {
    const [authorizerId] = onlyResource(template, 'AWS::ApiGatewayV2::Authorizer');
    const routes = Object.values(template.findResources('AWS::ApiGatewayV2::Route')).map((r) => r.Properties);
    expect(routes.map((r) => r.RouteKey).sort()).toEqual(['DELETE /v1/context', 'GET /v1/jobs/{id}', 'POST /v1/chat', 'POST /v1/feedback', 'POST /v1/jobs']);
    for (const route of routes) expect(route).toMatchObject({ AuthorizationType: 'JWT', AuthorizerId: { Ref: authorizerId } });
  });

  test('the worker runs in the router\'s subnets and reaches the cache; every function runs in the VPC', () => {
    const resources = template.toJSON().Resources;
    const routerSubnets = resources[logicalIdOf(stack, router.function)].Properties.VpcConfig.SubnetIds;
    for (const fn of [pipeline.jobsApiFunction, pipeline.workerFunction, pipeline.completionFunction!]) {
      expect(resources[logicalIdOf(stack, fn)].Properties.VpcConfig.SubnetIds).toEqual(routerSubnets);
    }
    template.hasResourceProperties('AWS::EC2::SecurityGroupIngress', {
      GroupId: stack.resolve(cache.securityGroup.securityGroupId),
      SourceSecurityGroupId: stack.resolve(pipeline.workerFunction.connections.securityGroups[0].securityGroupId),
      FromPort: 6379,
    });
    // Only the worker (and the router) reach the cache.
    const cacheIngress = Object.values(template.findResources('AWS::EC2::SecurityGroupIngress'))
      .filter((r) => JSON.stringify(r.Properties.GroupId) === JSON.stringify(stack.resolve(cache.securityGroup.securityGroupId)));
    expect(cacheIngress).toHaveLength(2);
  });

  test('the worker holds every permission the router function holds for its tiers and caches', () => {
    const routing = (statements: PolicyStatementJson[]) => statements
      .filter((s) => !actionsOf(s).some((a) => /^(logs|ec2|dynamodb|sqs|kms):/.test(a)))
      .map((s) => JSON.stringify({ a: actionsOf(s), r: resourcesOf(s), c: s.Condition }))
      .sort();
    const routerRouting = routing(fnStatements(stack, template, router.function));
    expect(routerRouting.length).toBeGreaterThanOrEqual(4);
    expect(routing(fnStatements(stack, template, pipeline.workerFunction))).toEqual(routerRouting);
    // The jobs API and the completion function invoke no model.
    expect(granted(fnStatements(stack, template, pipeline.jobsApiFunction), 'bedrock:InvokeModel')).toEqual([]);
    expect(granted(fnStatements(stack, template, pipeline.completionFunction!), 'bedrock:InvokeModel')).toEqual([]);
  });

  test('the jobs configuration carries the options and the bulk settings', () => {
    const bucketId = logicalIdOf(stack, pipeline.bulkBucket!);
    const expected = {
      resultsTable: `\${Ref:${logicalIdOf(stack, pipeline.resultsTable)}}`,
      idempotencyTable: `\${Ref:${logicalIdOf(stack, pipeline.idempotencyTable)}}`,
      queueUrl: `\${Ref:${logicalIdOf(stack, pipeline.queue)}}`,
      resultTtlSeconds: 3 * 86_400,
      idempotencyTtlSeconds: 6 * 3600,
      maxItemsPerJob: 250,
      maxReceiveCount: 3,
      tierConcurrency: 8,
      bulk: {
        bucketName: `\${Ref:${bucketId}}`,
        inputPrefix: 'batch/input/',
        outputPrefix: 'batch/output/',
        roleArn: `\${GetAtt:${logicalIdOf(stack, pipeline.bulkRole as iam.Role)}.Arn}`,
        tierId: 'large',
        minItems: 200,
        maxItems: 20_000,
        timeoutHours: 48,
      },
    };
    const configs = functionConfigs(template, JOBS_CONFIG);
    expect(Object.keys(configs)).toHaveLength(3);
    for (const fn of [pipeline.jobsApiFunction, pipeline.workerFunction, pipeline.completionFunction!]) {
      expect(jobsConfigOf(template, stack, fn)).toEqual(expected);
      const variables = template.toJSON().Resources[logicalIdOf(stack, fn)].Properties.Environment.Variables;
      expect(parseJsonValue(variables[ROUTER_CONFIG])).toEqual(routerConfig(template));
    }
    expect(routerConfig(template).tenant).toEqual({ source: 'jwt', claim: 'tenant_id' });
  });

  test('a role that only bedrock.amazonaws.com can assume, for batch inference jobs of this account and Region', () => {
    const role = template.toJSON().Resources[logicalIdOf(stack, pipeline.bulkRole as iam.Role)];
    const statements = role.Properties.AssumeRolePolicyDocument.Statement;
    expect(statements).toHaveLength(1);
    expect(statements[0]).toMatchObject({ Effect: 'Allow', Action: 'sts:AssumeRole', Principal: { Service: 'bedrock.amazonaws.com' } });
    expect(statements[0].Condition.StringEquals).toEqual({ 'aws:SourceAccount': { Ref: 'AWS::AccountId' } });
    expect(flatten(statements[0].Condition.ArnLike['aws:SourceArn']))
      .toBe('arn:${AWS::Partition}:bedrock:${AWS::Region}:${AWS::AccountId}:model-invocation-job/*');
    expect(role.Properties.ManagedPolicyArns).toBeUndefined();
  });

  test('the service role reads the input, writes the output and invokes the bulk tier\'s model: nothing else', () => {
    const statements = roleStatements(template, logicalIdOf(stack, pipeline.bulkRole as iam.Role));
    const bucket = `\${GetAtt:${logicalIdOf(stack, pipeline.bulkBucket!)}.Arn}`;
    expect(granted(statements, 's3:GetObject')).toEqual([`${bucket}/batch/input/*`]);
    expect(granted(statements, 's3:PutObject')).toEqual([`${bucket}/batch/output/*`]);
    const list = statements.find((s) => actionsOf(s).includes('s3:ListBucket'))!;
    expect(resourcesOf(list)).toEqual([bucket]);
    expect(list.Condition).toEqual({ StringLike: { 's3:prefix': ['batch/input/*', 'batch/output/*'] } });
    expect(granted(statements, 'bedrock:InvokeModel')).toEqual([
      'arn:${AWS::Partition}:bedrock:${AWS::Region}:${AWS::AccountId}:inference-profile/us.anthropic.claude-sonnet-4-5-20250929-v1:0',
      'arn:${AWS::Partition}:bedrock:*::foundation-model/anthropic.claude-sonnet-4-5-20250929-v1:0',
    ]);
    const actions = new Set(statements.flatMap(actionsOf));
    expect([...actions].sort()).toEqual([
      'bedrock:InvokeModel', 'bedrock:InvokeModelWithResponseStream', 'kms:Decrypt', 'kms:GenerateDataKey', 's3:GetObject', 's3:ListBucket', 's3:PutObject',
    ]);
  });

  test('the jobs API may create batch inference jobs on the bulk tier\'s model and pass exactly the service role to Bedrock', () => {
    const statements = fnStatements(stack, template, pipeline.jobsApiFunction);
    expect(granted(statements, 'bedrock:CreateModelInvocationJob')).toEqual([
      'arn:${AWS::Partition}:bedrock:${AWS::Region}:${AWS::AccountId}:inference-profile/us.anthropic.claude-sonnet-4-5-20250929-v1:0',
      'arn:${AWS::Partition}:bedrock:${AWS::Region}:${AWS::AccountId}:model-invocation-job/*',
      'arn:${AWS::Partition}:bedrock:*::foundation-model/anthropic.claude-sonnet-4-5-20250929-v1:0',
    ]);
    const passRole = statementsAllowing(template, 'iam:PassRole');
    expect(passRole).toHaveLength(1);
    expect(actionsOf(passRole[0].statement)).toEqual(['iam:PassRole']);
    expect(resourcesOf(passRole[0].statement)).toEqual([`\${GetAtt:${logicalIdOf(stack, pipeline.bulkRole as iam.Role)}.Arn}`]);
    expect(passRole[0].statement.Condition).toEqual({ StringEquals: { 'iam:PassedToService': 'bedrock.amazonaws.com' } });
    expect(granted(statements, 'iam:PassRole')).toHaveLength(1);
    expect(granted(statements, 's3:PutObject')).toEqual([`\${GetAtt:${logicalIdOf(stack, pipeline.bulkBucket!)}.Arn}/batch/input/*`]);
    expect(granted(statements, 's3:GetObject')).toEqual([]);
  });

  test('the completion function reads the output and writes results', () => {
    const statements = fnStatements(stack, template, pipeline.completionFunction!);
    const bucket = `\${GetAtt:${logicalIdOf(stack, pipeline.bulkBucket!)}.Arn}`;
    expect(granted(statements, 's3:GetObject')).toEqual([`${bucket}/batch/output/*`]);
    expect(statements.find((s) => actionsOf(s).includes('s3:ListBucket'))!.Condition).toEqual({ StringLike: { 's3:prefix': ['batch/output/*'] } });
    expect(granted(statements, 's3:PutObject')).toEqual([]);
    const results = `\${GetAtt:${logicalIdOf(stack, pipeline.resultsTable)}.Arn}`;
    expect(statements.filter((s) => resourcesOf(s).includes(results)).flatMap(actionsOf).sort())
      .toEqual(['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query', 'dynamodb:UpdateItem']);
    expect(template.toJSON().Resources[logicalIdOf(stack, pipeline.completionFunction!)].Properties).toMatchObject({ Timeout: 900 });
  });

  test('an EventBridge rule hands Bedrock batch inference job state changes to the completion function, with retries and a dead-letter queue', () => {
    const [, rule] = onlyResource(template, 'AWS::Events::Rule');
    expect(rule.Properties.EventPattern).toEqual({
      'source': ['aws.bedrock'],
      'detail-type': ['Batch Inference Job State Change'],
      // Only this pipeline's jobs (named by the submitter) and the states the completion acts on.
      'detail': {
        batchJobName: [{ prefix: BULK_JOB_NAME_PREFIX }],
        status: ['InProgress', 'Completed', 'PartiallyCompleted', 'Failed', 'Stopped', 'Expired'],
      },
    });
    expect(rule.Properties.Targets).toHaveLength(1);
    const dlqId = logicalIdOf(stack, pipeline.bulkDeadLetterQueue!);
    expect(rule.Properties.Targets[0]).toMatchObject({
      Arn: { 'Fn::GetAtt': [logicalIdOf(stack, pipeline.completionFunction!), 'Arn'] },
      DeadLetterConfig: { Arn: { 'Fn::GetAtt': [dlqId, 'Arn'] } },
      RetryPolicy: { MaximumRetryAttempts: 185, MaximumEventAgeInSeconds: 86_400 },
    });
    const dlq = template.toJSON().Resources[dlqId];
    expect(dlq.Properties.SqsManagedSseEnabled).toBe(true);
    // Failed asynchronous invocations land in the same queue after Lambda's retries.
    const [, invokeConfig] = onlyResource(template, 'AWS::Lambda::EventInvokeConfig');
    expect(invokeConfig.Properties).toMatchObject({
      MaximumRetryAttempts: 2,
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [dlqId, 'Arn'] } } },
    });
    template.hasResourceProperties('AWS::Lambda::Permission', {
      Action: 'lambda:InvokeFunction',
      Principal: 'events.amazonaws.com',
      SourceArn: { 'Fn::GetAtt': [logicalIdOf(stack, pipeline.bulkRule as any), 'Arn'] },
    });
  });

  test('the bulk bucket: KMS with the key, TLS only, private, logged, files expiring after resultTtl', () => {
    const bucket = template.toJSON().Resources[logicalIdOf(stack, pipeline.bulkBucket!)];
    expect(bucket.Properties).toMatchObject({
      BucketEncryption: { ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: { 'Fn::GetAtt': [logicalIdOf(stack, key), 'Arn'] } } }] },
      PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
      LoggingConfiguration: { DestinationBucketName: { Ref: logicalIdOf(stack, pipeline.bulkAccessLogsBucket!) }, LogFilePrefix: 'bulk/' },
    });
    expect(bucket.Properties.LifecycleConfiguration.Rules).toEqual(expect.arrayContaining([
      expect.objectContaining({ Prefix: 'batch/input/', ExpirationInDays: 3, Status: 'Enabled' }),
      expect.objectContaining({ Prefix: 'batch/output/', ExpirationInDays: 3, Status: 'Enabled' }),
    ]));
    const policies = Object.values(template.findResources('AWS::S3::BucketPolicy'))
      .filter((p) => p.Properties.Bucket.Ref === logicalIdOf(stack, pipeline.bulkBucket!));
    expect(policies[0].Properties.PolicyDocument.Statement).toContainEqual(expect.objectContaining({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }));
  });

  test('acknowledgements: each names its finding, carries a reason and sits on the role or queue concerned', () => {
    const acks = acknowledgements(pipeline).filter((a) => a.id.includes('AwsSolutions-'));
    const on = (construct: { node: { path: string } }) => acks
      .filter((a) => a.path === construct.node.path)
      .map((a) => a.id.replace(/^.*?(AwsSolutions-)/, '$1'))
      .sort();
    const bucketArn = `<${logicalIdOf(stack, pipeline.bulkBucket!)}.Arn>`;
    expect(on(pipeline.jobsApiFunction.role as iam.Role)).toEqual(expect.arrayContaining([
      `AwsSolutions-IAM5[Resource::${bucketArn}/batch/input/*]`,
      'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:bedrock:<AWS::Region>:<AWS::AccountId>:model-invocation-job/*]',
      'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:bedrock:*::foundation-model/anthropic.claude-sonnet-4-5-20250929-v1:0]',
    ]));
    expect(on(pipeline.completionFunction!.role as iam.Role)).toEqual(expect.arrayContaining([`AwsSolutions-IAM5[Resource::${bucketArn}/batch/output/*]`]));
    expect(on(pipeline.bulkRole as iam.Role)).toEqual(expect.arrayContaining([
      `AwsSolutions-IAM5[Resource::${bucketArn}/batch/input/*]`,
      `AwsSolutions-IAM5[Resource::${bucketArn}/batch/output/*]`,
    ]));
    expect(on(pipeline.bulkDeadLetterQueue!)).toEqual(['AwsSolutions-SQS3']);
    for (const ack of acks) expect((ack.reason as string).length).toBeGreaterThanOrEqual(20);
  });

  test('no IAM statement has a wildcard action', () => {
    expect(wildcardActions(template)).toEqual([]);
  });
});

describe('BatchPipeline: the worker shares the router\'s OpenSearch Serverless store and DynamoDB user context', () => {
  let stack: Stack;
  let template: Template;
  let router: TieredRouter;
  let pipeline: BatchPipeline;
  let userContext: UserContextStore;

  beforeAll(() => {
    stack = newStack();
    const vpc = isolatedVpc(stack);
    userContext = new UserContextStore(stack, 'UserContext', { backend: UserContextBackend.DYNAMODB });
    router = new TieredRouter(stack, 'Router', {
      tiers: [smallTier()],
      vpc,
      semanticCache: { vectorStore: VectorStore.openSearchServerless({ collectionName: 'shop-semantic' }) },
      userContext,
    });
    pipeline = new BatchPipeline(stack, 'Pipeline', { router, bulk: { tier: router.tiers[0] } });
    template = Template.fromStack(stack);
  });

  test('the data access policy names both the router\'s and the worker\'s roles', () => {
    const [, access] = onlyResource(template, 'AWS::OpenSearchServerless::AccessPolicy');
    expect(parseJsonValue(access.Properties.Policy)[0].Principal).toEqual([
      `\${GetAtt:${logicalIdOf(stack, router.function.role as iam.Role)}.Arn}`,
      `\${GetAtt:${logicalIdOf(stack, pipeline.workerFunction.role as iam.Role)}.Arn}`,
    ]);
  });

  test('the worker reaches the collection endpoint and holds aoss:APIAccessAll and the user context table', () => {
    const [collectionId] = onlyResource(template, 'AWS::OpenSearchServerless::Collection');
    const worker = fnStatements(stack, template, pipeline.workerFunction);
    expect(granted(worker, 'aoss:APIAccessAll')).toEqual([`\${GetAtt:${collectionId}.Arn}`]);
    expect(granted(worker, 'dynamodb:Query').sort()).toEqual([
      `\${GetAtt:${logicalIdOf(stack, userContext.table!)}.Arn}`,
      `\${GetAtt:${logicalIdOf(stack, pipeline.resultsTable)}.Arn}`,
    ].sort());
    const workerSg = stack.resolve(pipeline.workerFunction.connections.securityGroups[0].securityGroupId);
    const ingress = Object.values(template.findResources('AWS::EC2::SecurityGroupIngress'))
      .filter((r) => JSON.stringify(r.Properties.SourceSecurityGroupId) === JSON.stringify(workerSg));
    expect(ingress).toEqual([expect.objectContaining({ Properties: expect.objectContaining({ FromPort: 443, ToPort: 443 }) })]);
    // The jobs API reaches neither the store nor the user context.
    const jobsApi = fnStatements(stack, template, pipeline.jobsApiFunction);
    expect(granted(jobsApi, 'aoss:APIAccessAll')).toEqual([]);
    expect(granted(jobsApi, 'dynamodb:Query')).toEqual([`\${GetAtt:${logicalIdOf(stack, pipeline.resultsTable)}.Arn}`]);
  });

  test('bulk mode on a foundation model tier: CreateModelInvocationJob on that model ARN and the jobs; a new SSE-S3 bucket', () => {
    expect(granted(fnStatements(stack, template, pipeline.jobsApiFunction), 'bedrock:CreateModelInvocationJob')).toEqual([
      'arn:${AWS::Partition}:bedrock:${AWS::Region}:${AWS::AccountId}:model-invocation-job/*',
      'arn:${AWS::Partition}:bedrock:${AWS::Region}::foundation-model/amazon.nova-micro-v1:0',
    ]);
    const bucket = template.toJSON().Resources[logicalIdOf(stack, pipeline.bulkBucket!)];
    expect(bucket.Properties.BucketEncryption.ServerSideEncryptionConfiguration[0].ServerSideEncryptionByDefault).toEqual({ SSEAlgorithm: 'AES256' });
    expect(bucket.DeletionPolicy).toBe('Retain');
    expect(jobsConfigOf(template, stack, pipeline.workerFunction).bulk).toMatchObject({
      inputPrefix: 'bulk/input/', outputPrefix: 'bulk/output/', tierId: 'small', minItems: 100, maxItems: 50_000, timeoutHours: 24,
    });
  });
});

describe('VectorStore: clients are granted after binding', () => {
  test('an OpenSearch Serverless store refuses a client before it is bound to a router', () => {
    const stack = newStack();
    const router = new TieredRouter(stack, 'Router', { tiers: [smallTier()] });
    expect(() => VectorStore.openSearchServerless()._grantClient(router.function as lambda.Function)).toThrow(/must be bound to a router before a function is granted access/);
  });
});

describe('BatchPipeline: bring your own bulk bucket', () => {
  test('no bucket is created; the grants name yours, and its key', () => {
    const stack = newStack();
    const tier = smallTier();
    const router = new TieredRouter(stack, 'Router', { tiers: [tier] });
    const key = new kms.Key(stack, 'BucketKey', { enableKeyRotation: true });
    const bucket = new s3.Bucket(stack, 'Mine', { encryption: s3.BucketEncryption.KMS, encryptionKey: key, enforceSSL: true });
    const pipeline = new BatchPipeline(stack, 'Pipeline', { router, bulk: { tier, bucket } });
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::S3::Bucket', 1);
    expect(pipeline.bulkBucket).toBe(bucket);
    expect(pipeline.bulkAccessLogsBucket).toBeUndefined();
    const role = roleStatements(template, logicalIdOf(stack, pipeline.bulkRole as iam.Role));
    expect(granted(role, 's3:GetObject')).toEqual([`\${GetAtt:${logicalIdOf(stack, bucket)}.Arn}/bulk/input/*`]);
    expect(granted(role, 'kms:GenerateDataKey')).toEqual([`\${GetAtt:${logicalIdOf(stack, key)}.Arn}`]);
    expect(granted(fnStatements(stack, template, pipeline.completionFunction!), 'kms:Decrypt')).toEqual([`\${GetAtt:${logicalIdOf(stack, key)}.Arn}`]);
    // The tables keep AWS managed encryption: no key was given to the pipeline.
    expect(template.toJSON().Resources[logicalIdOf(stack, pipeline.resultsTable)].Properties.SSESpecification).toEqual({ SSEEnabled: true });
  });
});

describe('BatchPipeline: validation', () => {
  function attempt(props: Partial<BatchPipelineProps> | ((router: TieredRouter, stack: Stack) => Partial<BatchPipelineProps>)): () => BatchPipeline {
    return () => {
      const stack = newStack();
      const router = new TieredRouter(stack, 'Router', {
        tiers: [smallTier(), largeTier(), ModelTier.sageMaker(stack, 'Custom', { tierId: 'custom', existingEndpointName: 'custom-endpoint' })],
      });
      const extra = typeof props === 'function' ? props(router, stack) : props;
      return new BatchPipeline(stack, 'Pipeline', { router, ...extra });
    };
  }

  test.each<[string, Partial<BatchPipelineProps> | ((router: TieredRouter, stack: Stack) => Partial<BatchPipelineProps>), RegExp]>([
    ['maxBatchingWindow 0', { maxBatchingWindow: Duration.seconds(0) }, /maxBatchingWindow must be more than 0/],
    ['maxBatchingWindow above 300 s', { maxBatchingWindow: Duration.seconds(301) }, /maxBatchingWindow must be more than 0 .* at most 300 seconds/],
    ['maxBatchingWindow of a fraction of a second', { maxBatchingWindow: Duration.millis(1500) }, /maxBatchingWindow must be whole seconds/],
    ['retentionPeriod under 1 day', { retentionPeriod: Duration.hours(23) }, /retentionPeriod must be from 1 day .* to 14 days; got 23 hours/],
    ['retentionPeriod over 14 days', { retentionPeriod: Duration.days(15) }, /retentionPeriod must be from 1 day/],
    ['maxReceiveCount 0', { maxReceiveCount: 0 }, /maxReceiveCount must be an integer from 1 to 1000; got 0/],
    ['a fractional maxReceiveCount', { maxReceiveCount: 2.5 }, /maxReceiveCount must be an integer/],
    ['batchSize 0', { batchSize: 0 }, /batchSize must be an integer from 1 to 10000/],
    ['batchSize above 10000', { batchSize: 10_001 }, /batchSize must be an integer from 1 to 10000/],
    ['workerTimeout above 15 minutes', { workerTimeout: Duration.minutes(16) }, /workerTimeout must be longer than .* at most 15 minutes/],
    ['workerTimeout no longer than the slowest tier', { workerTimeout: Duration.seconds(20) }, /workerTimeout must be longer than the timeout of tier "large" \(20 seconds\)/],
    ['workerMemorySize 64', { workerMemorySize: 64 }, /workerMemorySize must be an integer from 128 to 10240/],
    ['tierConcurrency 0', { tierConcurrency: 0 }, /tierConcurrency must be an integer from 1 to 100/],
    ['maxConcurrency 1', { maxConcurrency: 1 }, /maxConcurrency must be an integer from 2 to 1000/],
    ['maxItemsPerJob 0', { maxItemsPerJob: 0 }, /maxItemsPerJob must be an integer from 1 to 1000/],
    ['an unencrypted queue', { queueEncryption: sqs.QueueEncryption.UNENCRYPTED }, /queueEncryption must not be UNENCRYPTED/],
    ['KMS queue encryption without a key', { queueEncryption: sqs.QueueEncryption.KMS }, /queueEncryption KMS needs encryptionKey/],
    ['resultTtl shorter than the retention', { resultTtl: Duration.days(3) }, /resultTtl \(3 days\) must be at least retentionPeriod \(4 days\)/],
    ['idempotencyTtl under a minute', { idempotencyTtl: Duration.seconds(30) }, /idempotencyTtl must be from 1 minute to resultTtl/],
    ['idempotencyTtl over resultTtl', { idempotencyTtl: Duration.days(8) }, /idempotencyTtl must be from 1 minute to resultTtl \(7 days\)/],
    ['a bulk tier that is not one of the router\'s', { bulk: { tier: largeTier() } }, /bulk.tier "large" is not one of the router's tiers \(small, large, custom\)/],
    ['a bulk tier that is not served by Bedrock', (r) => ({ bulk: { tier: r.tiers[2] } }), /bulk.tier "custom" is served by sagemaker; bulk mode runs on Bedrock batch inference/],
    ['bulk.minItems 0', (r) => ({ bulk: { tier: r.tiers[1], minItems: 0 } }), /bulk.minItems must be an integer of at least 100/],
    [
      'bulk.minItems below Bedrock\'s minimum records per job',
      (r) => ({ bulk: { tier: r.tiers[1], minItems: 99 } }),
      /bulk.minItems must be an integer of at least 100, Bedrock's quota "Minimum number of records per batch inference job" \(Bedrock refuses smaller jobs\); got 99\. If AWS lowered that quota for your account, set bulk.minRecordsPerJobQuota/,
    ],
    ['bulk.minItems below a lowered quota', (r) => ({ bulk: { tier: r.tiers[1], minItems: 9, minRecordsPerJobQuota: 10 } }), /bulk.minItems must be an integer of at least 10,/],
    ['a fractional bulk.minItems', (r) => ({ bulk: { tier: r.tiers[1], minItems: 150.5 } }), /bulk.minItems must be an integer of at least 100/],
    ['bulk.minRecordsPerJobQuota 0', (r) => ({ bulk: { tier: r.tiers[1], minRecordsPerJobQuota: 0 } }), /bulk.minRecordsPerJobQuota must be an integer from 1/],
    ['bulk.maxItems below minItems', (r) => ({ bulk: { tier: r.tiers[1], minItems: 500, maxItems: 400 } }), /bulk.maxItems must be an integer from 500/],
    ['bulk.timeout under 24 hours', (r) => ({ bulk: { tier: r.tiers[1], timeout: Duration.hours(23) } }), /bulk.timeout must be whole hours from 24 to 168/],
    ['bulk.timeout over 168 hours', (r) => ({ bulk: { tier: r.tiers[1], timeout: Duration.hours(169) } }), /bulk.timeout must be whole hours from 24 to 168/],
    ['bulk.timeout not in whole hours', (r) => ({ bulk: { tier: r.tiers[1], timeout: Duration.minutes(24 * 60 + 30) } }), /bulk.timeout must be whole hours/],
    ['a resultTtl shorter than the bulk timeout', (r) => ({ resultTtl: Duration.days(6), bulk: { tier: r.tiers[1], timeout: Duration.hours(168) } }), /resultTtl \(6 days\) must be at least retentionPeriod and bulk.timeout \(7 days\)/],
    ['bulk.prefix without a trailing slash', (r) => ({ bulk: { tier: r.tiers[1], prefix: 'bulk' } }), /bulk.prefix must be a key prefix ending with "\/"/],
    ['bulk.prefix with a leading slash', (r) => ({ bulk: { tier: r.tiers[1], prefix: '/bulk/' } }), /bulk.prefix must be a key prefix/],
  ])('rejects %s', (_name, props, message) => {
    expect(attempt(props)).toThrow(message);
  });

  test('accepts batches above 10 (the batching window is always above zero), the limits, and a resultTtl equal to the bulk timeout', () => {
    const limits = { batchSize: 10_000, maxBatchingWindow: Duration.seconds(300), maxReceiveCount: 1000, retentionPeriod: Duration.days(1) };
    expect(attempt(limits)).not.toThrow();
    expect(attempt((r) => ({ resultTtl: Duration.hours(168), bulk: { tier: r.tiers[1], timeout: Duration.hours(168) } }))).not.toThrow();
    expect(attempt({ queueEncryption: sqs.QueueEncryption.KMS_MANAGED })).not.toThrow();
  });

  test('bulk.minItems may go below 100 only with the quota AWS set for the account (minRecordsPerJobQuota), which is then the default', () => {
    expect(attempt((r) => ({ bulk: { tier: r.tiers[1], minItems: 100 } }))).not.toThrow();
    expect(attempt((r) => ({ bulk: { tier: r.tiers[1], minItems: 10, minRecordsPerJobQuota: 10 } }))).not.toThrow();
    const stack = newStack();
    const router = new TieredRouter(stack, 'Router', { tiers: [smallTier()] });
    new BatchPipeline(stack, 'Pipeline', { router, bulk: { tier: router.tiers[0], minRecordsPerJobQuota: 25 } });
    const configs = Object.values(functionConfigs(Template.fromStack(stack), JOBS_CONFIG));
    expect(configs.length).toBeGreaterThan(0);
    for (const config of configs) expect(config.bulk.minItems).toBe(25);
  });

  test('KMS_MANAGED encrypts the queues with the AWS managed key of SQS', () => {
    const stack = newStack();
    const router = new TieredRouter(stack, 'Router', { tiers: [smallTier()] });
    const pipeline = new BatchPipeline(stack, 'Pipeline', { router, queueEncryption: sqs.QueueEncryption.KMS_MANAGED });
    const resources = Template.fromStack(stack).toJSON().Resources;
    for (const queue of [pipeline.queue, pipeline.deadLetterQueue]) expect(resources[logicalIdOf(stack, queue)].Properties.KmsMasterKeyId).toBe('alias/aws/sqs');
  });
});

describe('ScalableAiService: batchPipeline', () => {
  let stack: Stack;
  let template: Template;
  let service: ScalableAiService;

  beforeAll(() => {
    stack = newStack();
    const large = largeTier();
    service = new ScalableAiService(stack, 'Service', {
      tiers: [smallTier(), large],
      routerOptions: { serviceName: 'shop' },
      batchPipeline: { bulk: { tier: large }, maxItemsPerJob: 50 },
    });
    template = Template.fromStack(stack);
  });

  test('creates the pipeline on the service\'s router', () => {
    expect(service.batchPipeline).toBeDefined();
    expect(service.batchPipeline!.router).toBe(service.router);
    expect(jobsConfigOf(template, stack, (service.batchPipeline as BatchPipeline).workerFunction).maxItemsPerJob).toBe(50);
    template.hasResourceProperties('AWS::ApiGatewayV2::Route', { RouteKey: 'POST /v1/jobs', AuthorizationType: 'AWS_IAM' });
  });

  test('adds SQS and Bedrock (control plane) endpoints that admit only the jobs API; the worker reaches the runtime endpoints', () => {
    const endpoints = Object.entries(template.findResources('AWS::EC2::VPCEndpoint', { Properties: { VpcEndpointType: 'Interface' } }));
    const byService = Object.fromEntries(endpoints.map(([id, e]) => [flatten(e.Properties.ServiceName).replace('com.amazonaws.${AWS::Region}.', ''), id]));
    expect(Object.keys(byService).sort()).toEqual(['bedrock', 'bedrock-runtime', 'sagemaker.runtime', 'secretsmanager', 'sqs']);
    const sources = (endpointId: string) => {
      const sg = template.toJSON().Resources[endpointId].Properties.SecurityGroupIds[0];
      return Object.values(template.findResources('AWS::EC2::SecurityGroupIngress'))
        .filter((r) => JSON.stringify(r.Properties.GroupId) === JSON.stringify(sg))
        .map((r) => r.Properties.SourceSecurityGroupId)
        .sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
    };
    const sg = (fn: lambda.IFunction) => stack.resolve(fn.connections.securityGroups[0].securityGroupId);
    const pipeline = service.batchPipeline as BatchPipeline;
    expect(sources(byService.sqs)).toEqual([sg(pipeline.jobsApiFunction)]);
    expect(sources(byService.bedrock)).toEqual([sg(pipeline.jobsApiFunction)]);
    for (const runtime of ['bedrock-runtime', 'sagemaker.runtime', 'secretsmanager']) {
      const router = service.router as TieredRouter;
      expect(sources(byService[runtime])).toEqual(expect.arrayContaining([sg(router.function), sg(pipeline.workerFunction)]));
      expect(sources(byService[runtime])).not.toContainEqual(sg(pipeline.jobsApiFunction));
    }
  });

  test('without bulk mode, no Bedrock control plane endpoint', () => {
    const s = newStack();
    new ScalableAiService(s, 'Service', { tiers: [smallTier()], batchPipeline: {} });
    const names = Object.values(Template.fromStack(s).findResources('AWS::EC2::VPCEndpoint', { Properties: { VpcEndpointType: 'Interface' } }))
      .map((e) => flatten(e.Properties.ServiceName));
    expect(names).toContain('com.amazonaws.${AWS::Region}.sqs');
    expect(names).not.toContain('com.amazonaws.${AWS::Region}.bedrock');
  });

  test('no IAM statement has a wildcard action', () => {
    expect(wildcardActions(template)).toEqual([]);
  });
});

describe('BatchPipeline: the service tier of the queue', () => {
  /** Nova Pro: the price file has its Flex (0.5x) and Priority (1.75x) prices. */
  const novaPro = (): IModelTier => ModelTier.bedrock({
    tierId: 'medium', modelId: 'us.amazon.nova-pro-v1:0', inputPricePer1kTokens: 0.0008, outputPricePer1kTokens: 0.0032,
  });

  function worker(tiers: IModelTier[], serviceTier?: BedrockServiceTier): { jobs: any; router: any } {
    const stack = newStack();
    const router = new TieredRouter(stack, 'Router', { tiers });
    const pipeline = new BatchPipeline(stack, 'Pipeline', { router, serviceTier });
    const template = Template.fromStack(stack);
    return { jobs: jobsConfigOf(template, stack, pipeline.workerFunction), router: routerConfig(template) };
  }

  test('by default the worker calls each tier at its own service tier', () => {
    expect(worker([smallTier(), novaPro()]).jobs).not.toHaveProperty('serviceTier');
  });

  test('FLEX: the worker is told to call its tiers priced at Flex at Flex; the router\'s own tiers are unchanged', () => {
    const { jobs, router } = worker([smallTier(), novaPro()], BedrockServiceTier.FLEX);
    expect(jobs.serviceTier).toBe('flex');
    expect(router.tiers.map((t: { serviceTier?: string }) => t.serviceTier)).toEqual([undefined, undefined]);
  });

  test('FLEX with no tier priced at Flex is refused, naming the prop to set', () => {
    expect(() => worker([smallTier(), largeTier()], BedrockServiceTier.FLEX)).toThrow(/serviceTier flex .*none is \(tiers: small, large\): set flexPriceFactor/);
  });

  test('STANDARD needs no price', () => {
    expect(worker([smallTier()], BedrockServiceTier.STANDARD).jobs.serviceTier).toBe('default');
  });
});
