import { Duration, RemovalPolicy, type Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import {
  acknowledgements, actionsOf, flatten, iamPolicyStatements, loaderConfig, newStack, onlyFunction, onlyResource, resourcesAllowing,
  resourcesOf, roleStatements, wildcardActions, isolatedVpc, logicalIdOf,
} from './helpers';
import {
  AiMetricNames, EmbeddingModel, ResponseCache, StaticAnswers, type StaticAnswersProps,
} from '../../constructs';
import { staticAnswersRuntimeConfig } from '../../constructs/internal/store-runtime-config';

interface Fixture {
  stack: Stack;
  vpc: ec2.Vpc;
  cache: ResponseCache;
  answers: StaticAnswers;
  template: Template;
}

function staticAnswers(props: Partial<StaticAnswersProps> = {}, prepare?: (stack: Stack) => Partial<StaticAnswersProps>): Fixture {
  const stack = newStack();
  const vpc = isolatedVpc(stack);
  const cache = new ResponseCache(stack, 'Cache', { vpc });
  const answers = new StaticAnswers(stack, 'StaticAnswers', { cache, vpc, ...prepare?.(stack), ...props });
  return { stack, vpc, cache, answers, template: Template.fromStack(stack) };
}

describe('StaticAnswers: defaults', () => {
  let f: Fixture;
  let bucketId: string;
  let logsId: string;

  beforeAll(() => {
    f = staticAnswers();
    bucketId = logicalIdOf(f.stack, f.answers.bucket);
    logsId = logicalIdOf(f.stack, f.answers.accessLogsBucket!);
  });

  test('two buckets: the answers and their access logs', () => {
    f.template.resourceCountIs('AWS::S3::Bucket', 2);
  });

  test('the answers bucket: encrypted, no public access, versioned, access logs to the log bucket, retained', () => {
    const bucket = f.template.toJSON().Resources[bucketId];
    expect(bucket.Properties).toMatchObject({
      BucketEncryption: { ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] },
      PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
      VersioningConfiguration: { Status: 'Enabled' },
      LoggingConfiguration: { DestinationBucketName: { Ref: logsId }, LogFilePrefix: 'static-answers/' },
      OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] },
    });
    expect(bucket.Properties.AccessControl).toBeUndefined();
    expect(bucket.DeletionPolicy).toBe('Retain');
  });

  test('the log bucket: encrypted with SSE-S3, no public access, logs expire; the logging service may write only the answers bucket\'s logs', () => {
    const logs = f.template.toJSON().Resources[logsId];
    expect(logs.Properties).toMatchObject({
      BucketEncryption: { ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] },
      PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
      LifecycleConfiguration: { Rules: [expect.objectContaining({ ExpirationInDays: 365, Status: 'Enabled' })] },
    });
    expect(logs.Properties.AccessControl).toBeUndefined();
    const policy = bucketPolicy(f.template, logsId);
    const logging = policy.find((s: any) => s.Principal?.Service === 'logging.s3.amazonaws.com');
    expect(logging).toMatchObject({ Effect: 'Allow', Action: 's3:PutObject' });
    expect(flatten(logging.Resource)).toBe(`\${GetAtt:${logsId}.Arn}/static-answers/*`);
    expect(flatten(logging.Condition.ArnLike['aws:SourceArn'])).toBe(`\${GetAtt:${bucketId}.Arn}`);
    expect(logging.Condition.StringEquals['aws:SourceAccount']).toEqual({ Ref: 'AWS::AccountId' });
  });

  test.each(['answers', 'log'])('the %s bucket denies requests without TLS', (which) => {
    const policy = bucketPolicy(f.template, which === 'answers' ? bucketId : logsId);
    expect(policy).toContainEqual(expect.objectContaining({
      Effect: 'Deny',
      Action: 's3:*',
      Principal: { AWS: '*' },
      Condition: { Bool: { 'aws:SecureTransport': 'false' } },
    }));
  });

  test('the loader: a Node.js function in the isolated subnets with a 5-minute timeout', () => {
    const [, fn] = onlyFunction(f.template);
    expect(fn.Properties).toMatchObject({ Handler: 'index.handler', Timeout: 300, Architectures: ['arm64'] });
    expect(Number(/^nodejs(\d+)\.x$/.exec(fn.Properties.Runtime)![1])).toBeGreaterThanOrEqual(22);
    expect(fn.Properties.VpcConfig.SubnetIds).toEqual(f.stack.resolve(f.vpc.isolatedSubnets.map((s) => s.subnetId)));
    expect(fn.Properties.Environment.Variables.POWERTOOLS_SERVICE_NAME).toBe('scalable-ai');
  });

  test('the loader configuration: bucket, prefix, cache connection, Titan V2 embedder and the static vector index', () => {
    const [groupId] = onlyResource(f.template, 'AWS::ElastiCache::ReplicationGroup');
    const [secretId] = onlyResource(f.template, 'AWS::SecretsManager::Secret');
    expect(loaderConfig(f.template)).toEqual({
      bucketName: `\${Ref:${bucketId}}`,
      prefix: 'answers/',
      cache: {
        host: `\${GetAtt:${groupId}.PrimaryEndPoint.Address}`,
        port: 6379,
        tls: true,
        authSecretArn: `\${Ref:${secretId}}`,
        keyPrefix: 'sai:',
        timeoutMs: 5000,
      },
      embedder: { provider: 'bedrock', modelId: 'amazon.titan-embed-text-v2:0', dimensions: 1024 },
      vectorIndex: { indexName: 'sai:static', hnsw: { m: 16, efConstruction: 128, efSearch: 64 } },
    });
  });

  test('the schedule runs the loader daily, with a retry policy and a dead-letter queue', () => {
    const [, schedule] = onlyResource(f.template, 'AWS::Scheduler::Schedule');
    const fnId = logicalIdOf(f.stack, f.answers.loaderFunction);
    const [queueId] = onlyResource(f.template, 'AWS::SQS::Queue');
    expect(schedule.Properties).toMatchObject({
      ScheduleExpression: 'rate(1 day)',
      State: 'ENABLED',
      FlexibleTimeWindow: { Mode: 'OFF' },
      Target: {
        Arn: { 'Fn::GetAtt': [fnId, 'Arn'] },
        RoleArn: { 'Fn::GetAtt': [logicalIdOf(f.stack, f.answers.node.findChild('ScheduleRole')), 'Arn'] },
        RetryPolicy: { MaximumRetryAttempts: 3, MaximumEventAgeInSeconds: 3600 },
        DeadLetterConfig: { Arn: { 'Fn::GetAtt': [queueId, 'Arn'] } },
      },
    });
  });

  test('a run that fails on every attempt lands in the same dead-letter queue (the schedule invokes asynchronously)', () => {
    const fnId = logicalIdOf(f.stack, f.answers.loaderFunction);
    const [queueId] = onlyResource(f.template, 'AWS::SQS::Queue');
    f.template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: fnId },
      MaximumRetryAttempts: 2,
      MaximumEventAgeInSeconds: 3600,
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [queueId, 'Arn'] } } },
    });
    const roleId = logicalIdOf(f.stack, f.answers.loaderFunction.role!);
    const sends = Object.values(f.template.findResources('AWS::IAM::Policy'))
      .filter((p: any) => p.Properties.Roles.some((r: any) => r.Ref === roleId))
      .flatMap((p: any) => p.Properties.PolicyDocument.Statement)
      .filter((st: any) => [st.Action].flat().includes('sqs:SendMessage'));
    expect(sends.flatMap((st: any) => [st.Resource].flat())).toEqual([{ 'Fn::GetAtt': [queueId, 'Arn'] }]);
  });

  test('the dead-letter queue is encrypted, TLS only, and keeps messages 14 days', () => {
    const [queueId, queue] = onlyResource(f.template, 'AWS::SQS::Queue');
    expect(queue.Properties).toMatchObject({ SqsManagedSseEnabled: true, MessageRetentionPeriod: 1_209_600 });
    const [, policy] = onlyResource(f.template, 'AWS::SQS::QueuePolicy');
    expect(policy.Properties.Queues).toEqual([{ Ref: queueId }]);
    expect(policy.Properties.PolicyDocument.Statement).toContainEqual(expect.objectContaining({
      Effect: 'Deny',
      Condition: { Bool: { 'aws:SecureTransport': 'false' } },
    }));
  });

  test('the schedule role: assumed by EventBridge Scheduler of this account; may invoke the loader and send to the queue only', () => {
    const roleId = logicalIdOf(f.stack, f.answers.node.findChild('ScheduleRole'));
    const role = f.template.toJSON().Resources[roleId];
    expect(role.Properties.AssumeRolePolicyDocument.Statement).toEqual([{
      Effect: 'Allow',
      Action: 'sts:AssumeRole',
      Principal: { Service: 'scheduler.amazonaws.com' },
      Condition: { StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } } },
    }]);
    const statements = roleStatements(f.template, roleId);
    const fnId = logicalIdOf(f.stack, f.answers.loaderFunction);
    const [queueId] = onlyResource(f.template, 'AWS::SQS::Queue');
    expect(statements.map((s) => [actionsOf(s), resourcesOf(s)])).toEqual(expect.arrayContaining([
      [['lambda:InvokeFunction'], [`\${GetAtt:${fnId}.Arn}`, `\${GetAtt:${fnId}.Arn}:*`]],
      [['sqs:SendMessage'], [`\${GetAtt:${queueId}.Arn}`]],
    ]));
    expect(statements).toHaveLength(2);
  });

  test('the loader may read only the answer files, the cache secret and the embedding model', () => {
    const roleId = logicalIdOf(f.stack, f.answers.loaderFunction.role!);
    const statements = roleStatements(f.template, roleId);
    const granted = (action: string) => statements.filter((s) => actionsOf(s).includes(action)).flatMap(resourcesOf);
    expect(granted('s3:GetObject')).toEqual([`\${GetAtt:${bucketId}.Arn}/answers/*`]);
    const list = statements.find((s) => actionsOf(s).includes('s3:ListBucket'))!;
    expect(actionsOf(list)).toEqual(['s3:ListBucket']);
    expect(resourcesOf(list)).toEqual([`\${GetAtt:${bucketId}.Arn}`]);
    expect(list.Condition).toEqual({ StringLike: { 's3:prefix': ['answers/*'] } });
    const [secretId] = onlyResource(f.template, 'AWS::SecretsManager::Secret');
    expect(granted('secretsmanager:GetSecretValue')).toEqual([`\${Ref:${secretId}}`]);
    expect(granted('bedrock:InvokeModel')).toEqual(['arn:${AWS::Partition}:bedrock:${AWS::Region}::foundation-model/amazon.titan-embed-text-v2:0']);
    expect(resourcesAllowing(f.template, 's3:PutObject')).toEqual([]);
    expect(wildcardActions(f.template)).toEqual([]);
  });

  test('the cache admits the loader on its port', () => {
    const loaderSg = f.stack.resolve(f.answers.loaderFunction.connections.securityGroups[0].securityGroupId);
    f.template.hasResourceProperties('AWS::EC2::SecurityGroupIngress', {
      GroupId: f.stack.resolve(f.cache.securityGroup.securityGroupId),
      SourceSecurityGroupId: loaderSg,
      FromPort: 6379,
    });
  });

  test('the router configuration: threshold, max-age, embedder and index', () => {
    expect(staticAnswersRuntimeConfig(f.answers)).toEqual({
      threshold: 0.9,
      maxAgeSeconds: 3600,
      embedder: { provider: 'bedrock', modelId: 'amazon.titan-embed-text-v2:0', dimensions: 1024 },
      vectorIndex: { indexName: 'sai:static', hnsw: { m: 16, efConstruction: 128, efSearch: 64 } },
    });
    expect(f.answers.refreshInterval.toDays()).toBe(1);
    expect(f.answers.maxAge.toHours()).toBe(1);
    expect(f.answers.semanticMatching).toBe(true);
    expect(f.answers.prefix).toBe('answers/');
  });

  test('acknowledgements: each on its construct, with a reason, naming the exact finding', () => {
    const acks = acknowledgements(f.answers).map((a) => [a.path, a.id.replace(/^Annotation::/, '')]);
    const fnId = logicalIdOf(f.stack, f.answers.loaderFunction);
    expect(acks).toEqual(expect.arrayContaining([
      ['TestStack/StaticAnswers/AccessLogs', 'AwsSolutions-S1'],
      ['TestStack/StaticAnswers/DeadLetterQueue', 'AwsSolutions-SQS3'],
      ['TestStack/StaticAnswers/ScheduleRole', `AwsSolutions-IAM5[Resource::<${fnId}.Arn>:*]`],
      ['TestStack/StaticAnswers/Loader/Role', `AwsSolutions-IAM5[Resource::<${bucketId}.Arn>/answers/*]`],
    ]));
    for (const ack of acknowledgements(f.answers)) expect(String(ack.reason).length).toBeGreaterThan(20);
  });

  test('metrics: load errors (total or by reason) and answers published, with the service dimension', () => {
    const errors = f.answers.metricLoadErrors();
    expect(errors.namespace).toBe(AiMetricNames.NAMESPACE);
    expect(errors.metricName).toBe(AiMetricNames.STATIC_ANSWER_ERRORS);
    expect(errors.metricName).toBe('StaticAnswerErrors');
    expect(errors.dimensions).toEqual({ service: 'scalable-ai' });
    expect(errors.statistic).toBe('Sum');
    expect(errors.period.toHours()).toBe(1);
    expect(f.answers.metricLoadErrors('schema').dimensions).toEqual({ service: 'scalable-ai', Reason: 'schema' });
    const published = f.answers.metricAnswersPublished({ period: Duration.days(1) });
    expect(published.metricName).toBe(AiMetricNames.STATIC_ANSWERS_PUBLISHED);
    expect(published.period.toDays()).toBe(1);
  });
});

describe('StaticAnswers: options', () => {
  test('refresh interval, max-age, threshold, prefix, service name and a SageMaker embedding model', () => {
    const f = staticAnswers({
      refreshInterval: Duration.hours(6),
      maxAge: Duration.minutes(10),
      threshold: 0.95,
      prefix: 'faq/',
      serviceName: 'shop',
      embeddingModel: EmbeddingModel.sageMakerEndpoint('embedder', 768),
    });
    expect(onlyResource(f.template, 'AWS::Scheduler::Schedule')[1].Properties.ScheduleExpression).toBe('rate(6 hours)');
    const config = loaderConfig(f.template);
    expect(config.prefix).toBe('faq/');
    expect(config.embedder).toEqual({ provider: 'sagemaker', endpointName: 'embedder', dimensions: 768 });
    expect(staticAnswersRuntimeConfig(f.answers)).toMatchObject({ threshold: 0.95, maxAgeSeconds: 600 });
    expect(resourcesAllowing(f.template, 'sagemaker:InvokeEndpoint')).toEqual(['arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:endpoint/embedder']);
    expect(resourcesAllowing(f.template, 'bedrock:InvokeModel')).toEqual([]);
    const bucketId = logicalIdOf(f.stack, f.answers.bucket);
    expect(resourcesAllowing(f.template, 's3:GetObject')).toEqual([`\${GetAtt:${bucketId}.Arn}/faq/*`]);
    const [, fn] = onlyFunction(f.template);
    expect(fn.Properties.Environment.Variables.POWERTOOLS_SERVICE_NAME).toBe('shop');
    expect(f.answers.metricLoadErrors().dimensions).toEqual({ service: 'shop' });
    expect(f.answers.metricLoadErrors().period.toMinutes()).toBe(60);
  });

  test('semanticMatching: false publishes exact matches only: no embedder, no index, no threshold, no model grant', () => {
    const f = staticAnswers({ semanticMatching: false, refreshInterval: Duration.minutes(30) });
    const config = loaderConfig(f.template);
    expect(config).not.toHaveProperty('embedder');
    expect(config).not.toHaveProperty('vectorIndex');
    expect(staticAnswersRuntimeConfig(f.answers)).toEqual({ maxAgeSeconds: 3600 });
    expect(f.answers.embeddingModel).toBeUndefined();
    expect(resourcesAllowing(f.template, 'bedrock:InvokeModel')).toEqual([]);
    expect(f.answers.metricLoadErrors().period.toMinutes()).toBe(5);
  });

  test('a KMS key encrypts the answers bucket (with a bucket key); a removal policy applies to both buckets', () => {
    let key: kms.Key;
    const f = staticAnswers({ removalPolicy: RemovalPolicy.DESTROY }, (stack) => {
      key = new kms.Key(stack, 'Key', { enableKeyRotation: true });
      return { encryptionKey: key };
    });
    const bucket = f.template.toJSON().Resources[logicalIdOf(f.stack, f.answers.bucket)];
    expect(bucket.Properties.BucketEncryption.ServerSideEncryptionConfiguration).toEqual([{
      ServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: { 'Fn::GetAtt': [logicalIdOf(f.stack, key!), 'Arn'] } },
      BucketKeyEnabled: true,
    }]);
    for (const b of Object.values(f.template.findResources('AWS::S3::Bucket'))) expect(b.DeletionPolicy).toBe('Delete');
    const decrypt = iamPolicyStatements(f.template).filter(({ statement }) => actionsOf(statement).includes('kms:Decrypt'));
    expect(decrypt.flatMap(({ statement }) => resourcesOf(statement))).toEqual([`\${GetAtt:${logicalIdOf(f.stack, key!)}.Arn}`]);
  });

  test('bring your own bucket: no bucket is created; the loader reads that bucket\'s prefix', () => {
    const f = staticAnswers({ prefix: '' }, (stack) => ({ bucket: s3.Bucket.fromBucketName(stack, 'Existing', 'my-answers') }));
    f.template.resourceCountIs('AWS::S3::Bucket', 0);
    expect(f.answers.accessLogsBucket).toBeUndefined();
    expect(loaderConfig(f.template)).toMatchObject({ bucketName: 'my-answers', prefix: '' });
    expect(resourcesAllowing(f.template, 's3:GetObject')).toEqual(['arn:${AWS::Partition}:s3:::my-answers/*']);
    const list = iamPolicyStatements(f.template).find(({ statement }) => actionsOf(statement).includes('s3:ListBucket'))!;
    expect(list.statement.Condition).toBeUndefined();
    const acks = acknowledgements(f.answers).filter((a) => a.path.endsWith('Loader/Role') && a.id.includes(':s3:'));
    expect(acks.map((a) => a.id.replace(/^Annotation::/, ''))).toEqual(['AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::my-answers/*]']);
  });

  test('bring your own KMS-encrypted bucket: the loader may decrypt with its key', () => {
    const f = staticAnswers({}, (stack) => {
      const key = new kms.Key(stack, 'Key', { enableKeyRotation: true });
      return { bucket: s3.Bucket.fromBucketAttributes(stack, 'Existing', { bucketName: 'my-answers', encryptionKey: key }) };
    });
    const decrypt = iamPolicyStatements(f.template).filter(({ statement }) => actionsOf(statement).includes('kms:Decrypt'));
    expect(decrypt).toHaveLength(1);
    expect(wildcardActions(f.template)).toEqual([]);
  });

  test('an explicit subnet selection places the loader', () => {
    const stack = newStack();
    const vpc = new ec2.Vpc(stack, 'Vpc', { maxAzs: 2, natGateways: 1 });
    const cache = new ResponseCache(stack, 'Cache', { vpc });
    const answers = new StaticAnswers(stack, 'StaticAnswers', { cache, vpc, vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS } });
    const [, fn] = onlyFunction(Template.fromStack(stack));
    expect(fn.Properties.VpcConfig.SubnetIds).toEqual(stack.resolve(vpc.privateSubnets.map((s) => s.subnetId)));
    expect(answers.loaderFunction.role).toBeInstanceOf(iam.Role);
  });
});

describe('StaticAnswers: validation', () => {
  test.each<[string, Partial<StaticAnswersProps>, RegExp]>([
    ['threshold 0', { threshold: 0 }, /StaticAnswers: threshold must be a cosine similarity in \(0, 1\]; got 0/],
    ['threshold above 1', { threshold: 1.01 }, /threshold must be a cosine similarity/],
    ['threshold without semantic matching', { semanticMatching: false, threshold: 0.9 }, /threshold applies to semantic matching only/],
    ['an embedding model without semantic matching', { semanticMatching: false, embeddingModel: EmbeddingModel.titanTextV2() }, /embeddingModel applies to semantic matching only/],
    ['refreshInterval 1 minute', { refreshInterval: Duration.minutes(1) }, /refreshInterval must be a whole number of minutes, at least 5 minutes/],
    ['refreshInterval of fractional minutes', { refreshInterval: Duration.seconds(330) }, /refreshInterval must be a whole number of minutes/],
    ['maxAge over 365 days', { maxAge: Duration.days(366) }, /maxAge must be whole seconds from 0 to 365 days/],
    ['maxAge of fractional seconds', { maxAge: Duration.millis(1500) }, /maxAge must be whole seconds/],
    ['a prefix starting with /', { prefix: '/answers/' }, /prefix must be at most 1024 characters and must not start with "\/"/],
    ['a prefix too long', { prefix: 'a'.repeat(1025) }, /prefix must be at most 1024 characters/],
  ])('rejects %s', (_name, props, message) => {
    expect(() => staticAnswers(props)).toThrow(message);
  });

  test.each(['encryptionKey', 'removalPolicy'] as const)('rejects %s with a bucket of your own', (name) => {
    expect(() => staticAnswers({}, (stack) => ({
      bucket: s3.Bucket.fromBucketName(stack, 'Existing', 'my-answers'),
      [name]: name === 'removalPolicy' ? RemovalPolicy.DESTROY : new kms.Key(stack, 'Key', { enableKeyRotation: true }),
    }))).toThrow(new RegExp(`${name} applies to the bucket this construct creates; it cannot be combined with bucket`));
  });

  test('accepts the bounds', () => {
    expect(() => staticAnswers({ threshold: 1, refreshInterval: Duration.minutes(5), maxAge: Duration.seconds(0) })).not.toThrow();
  });
});

function bucketPolicy(template: Template, bucketId: string): any[] {
  const policies = Object.values(template.findResources('AWS::S3::BucketPolicy'))
    .filter((p) => JSON.stringify(p.Properties.Bucket) === JSON.stringify({ Ref: bucketId }));
  expect(policies).toHaveLength(1);
  return policies[0].Properties.PolicyDocument.Statement;
}
