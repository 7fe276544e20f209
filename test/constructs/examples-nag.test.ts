/**
 * The example apps synthesize cleanly under cdk-nag's AWS Solutions pack (cdk-nag 3: a CDK policy
 * validation plugin; an unacknowledged finding makes `app.synth()` throw), their acknowledgements
 * carry reasons and sit on constructs, and their templates hold the security properties of
 * DESIGN.md §7.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { App, Stack, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { AwsSolutionsChecks } from 'cdk-nag';
import {
  RECOMMENDED_FLAGS, acknowledgements, flatten, loaderConfig, newApp, onlyResource, parseJsonValue, readReport, resourcesAllowing, resourcesOf,
  routerConfig, statementsAllowing, trySynth, wildcardActions,
} from './helpers';
import { addCompliancePacks } from '../../examples/compliance';
import { EcommerceAssistantOpenSearchStack, EcommerceAssistantSageMakerStack, EcommerceAssistantStack } from '../../examples/ecommerce-assistant';

const TITAN_V2_ARN = 'arn:${AWS::Partition}:bedrock:${AWS::Region}::foundation-model/amazon.titan-embed-text-v2:0';

function nagApp(): App {
  const app = newApp();
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return app;
}

describe('cdk-nag itself: the check can fail', () => {
  test('an S3 bucket without SSL enforcement fails synthesis with AwsSolutions-S10', () => {
    const app = nagApp();
    new s3.Bucket(new Stack(app, 'Bad'), 'Bucket');
    const { error, printed } = trySynth(app);
    expect(error).toBeDefined();
    // The findings are printed or carried by the error, depending on the environment.
    expect(`${error!.message}\n${printed}`).toContain('AwsSolutions-S10');
    const reportFile = /found in: (\S+)/.exec(error!.message)?.[1];
    expect(reportFile).toBeDefined();
    const violations = readReport(reportFile!).pluginReports.flatMap((r) => r.violations);
    expect(violations).toContainEqual(expect.objectContaining({
      ruleName: 'AwsSolutions-S10',
      violatingConstructs: [expect.objectContaining({ constructPath: 'Bad/Bucket/Resource' })],
    }));
  });

  test('with nag=all, a log group without a KMS key fails synthesis with NIST.800.53.R5-CloudWatchLogGroupEncrypted', () => {
    const app = newApp();
    addCompliancePacks(app, 'all');
    new logs.LogGroup(new Stack(app, 'Bad'), 'Logs', { retention: logs.RetentionDays.ONE_YEAR });
    const { error } = trySynth(app);
    const reportFile = /found in: (\S+)/.exec(error?.message ?? '')?.[1];
    expect(reportFile).toBeDefined();
    const rules = readReport(reportFile!).pluginReports.flatMap((r) => r.violations.map((v) => v.ruleName));
    expect(rules).toContain('NIST.800.53.R5-CloudWatchLogGroupEncrypted');
  });

  test('the same bucket with its findings acknowledged on the bucket synthesizes', () => {
    const app = nagApp();
    const bucket = new s3.Bucket(new Stack(app, 'Acknowledged'), 'Bucket');
    Validations.of(bucket).acknowledge(
      { id: 'AwsSolutions-S1', reason: 'test fixture: no access logs' },
      { id: 'AwsSolutions-S10', reason: 'test fixture: no SSL policy' },
    );
    const { error } = trySynth(app);
    expect(error).toBeUndefined();
  });
});

describe('examples/compliance.ts: the packs of `cdk synth` and `cdk synth -c nag=all`', () => {
  test('AwsSolutions by default; AwsSolutions and NIST 800-53 R5 with nag=all; anything else is refused', () => {
    expect(addCompliancePacks(newApp()).map((p) => p.name)).toEqual(['AwsSolutions']);
    const all = new App({ context: { nag: 'all' } });
    expect(addCompliancePacks(all).map((p) => p.name)).toEqual(['AwsSolutions', 'NIST.800.53.R5']);
    expect(() => addCompliancePacks(newApp(), 'nist')).toThrow(/-c nag=nist: give "all"/);
  });
});

describe('examples/ecommerce-assistant.ts under the recommended feature flags, cdk-nag AwsSolutions and NIST 800-53 R5 (nag=all)', () => {
  let app: App;
  let bedrockStack: EcommerceAssistantStack;
  let sageMakerStack: EcommerceAssistantSageMakerStack;
  let openSearchStack: EcommerceAssistantOpenSearchStack;
  let synth: ReturnType<typeof trySynth>;
  const templates: Record<string, Template> = {};

  beforeAll(() => {
    app = newApp();
    addCompliancePacks(app, 'all');
    bedrockStack = new EcommerceAssistantStack(app, 'EcommerceAssistant');
    sageMakerStack = new EcommerceAssistantSageMakerStack(app, 'EcommerceAssistantSageMaker', { env: { region: 'us-east-1' } });
    openSearchStack = new EcommerceAssistantOpenSearchStack(app, 'EcommerceAssistantOpenSearch');
    synth = trySynth(app);
    if (synth.assembly) {
      for (const stack of [bedrockStack, sageMakerStack, openSearchStack]) {
        templates[stack.stackName] = Template.fromJSON(synth.assembly.getStackArtifact(stack.artifactId).template);
      }
    }
  });

  test('all three stacks synthesize with no unacknowledged finding', () => {
    // On failure, `printed` holds cdk-nag's findings.
    expect({ error: synth.error?.message, printed: synth.error ? synth.printed : '' }).toEqual({ error: undefined, printed: '' });
    const report = readReport(path.join(synth.assembly!.directory, 'validation-report.json'));
    const failures = report.pluginReports.filter((r) => r.conclusion !== 'success' && r.violations.length > 0);
    expect(failures).toEqual([]);
  });

  test('every acknowledgement carries a reason', () => {
    const acks = acknowledgements(app);
    expect(acks.length).toBeGreaterThan(0);
    for (const ack of acks) {
      expect({ id: ack.id, path: ack.path, reasonType: typeof ack.reason }).toEqual({ id: ack.id, path: ack.path, reasonType: 'string' });
      expect((ack.reason as string).trim().length).toBeGreaterThanOrEqual(20);
    }
  });

  test('no cdk-nag acknowledgement is stack-wide or app-wide: each sits on the construct it concerns', () => {
    const nagAcks = acknowledgements(app).filter((a) => a.id.includes('AwsSolutions-') || a.id.includes('NIST.800.53.R5-'));
    expect(nagAcks.length).toBeGreaterThan(0);
    const wide = nagAcks.filter((a) => a.construct === app || Stack.isStack(a.construct)).map((a) => `${a.path}: ${a.id}`);
    expect(wide).toEqual([]);
    // The only stack-level acknowledgements are aws-cdk-lib's own (its built-in template validation).
    const stackLevel = acknowledgements(app).filter((a) => a.construct === app || Stack.isStack(a.construct));
    for (const ack of stackLevel) expect(ack.id).toMatch(/^CloudFormation-Validate::/);
  });

  test('IAM5 acknowledgements name the exact finding (resource), never the whole rule', () => {
    const iam5 = acknowledgements(app).filter((a) => a.id.includes('AwsSolutions-IAM5'));
    expect(iam5.length).toBeGreaterThan(0);
    for (const ack of iam5) expect(ack.id).toMatch(/AwsSolutions-IAM5\[Resource::[^\]]+\]$/);
  });

  describe.each(['EcommerceAssistant', 'EcommerceAssistantSageMaker', 'EcommerceAssistantOpenSearch'])('%s template', (stackName) => {
    const template = () => {
      const t = templates[stackName];
      if (!t) throw new Error(`${stackName} did not synthesize: ${synth.error?.message}`);
      return t;
    };

    test('Node.js 22+ functions on arm64, in the VPC', () => {
      // The library's functions; aws-cdk-lib's own custom resource providers (such as the one that
      // @aws-cdk/aws-ec2:restrictDefaultSecurityGroup adds to the VPC) are not the library's.
      const functions = Object.values(template().findResources('AWS::Lambda::Function')).filter((f) => f.Properties.Handler !== '__entrypoint__.handler');
      expect(functions.length).toBeGreaterThan(0);
      for (const fn of functions) {
        const version = /^nodejs(\d+)\.x$/.exec(fn.Properties.Runtime);
        expect(version).not.toBeNull();
        expect(Number(version![1])).toBeGreaterThanOrEqual(22);
        expect(fn.Properties.Architectures).toEqual(['arm64']);
        expect(fn.Properties.VpcConfig).toBeDefined();
      }
    });

    test('the semantic cache is on, with Titan Text Embeddings V2 granted (bedrock:InvokeModel on its foundation model ARN)', () => {
      expect(routerConfig(template()).semanticCache.embedder).toEqual({ provider: 'bedrock', modelId: 'amazon.titan-embed-text-v2:0', dimensions: 1024 });
      const titan = statementsAllowing(template(), 'bedrock:InvokeModel').filter(({ statement }) => resourcesOf(statement).includes(TITAN_V2_ARN));
      expect(titan.length).toBeGreaterThan(0);
      for (const { statement } of titan) expect(resourcesOf(statement)).toEqual([TITAN_V2_ARN]);
    });

    test('an HTTP API with the chat route', () => {
      template().hasResourceProperties('AWS::ApiGatewayV2::Api', { ProtocolType: 'HTTP' });
      template().hasResourceProperties('AWS::ApiGatewayV2::Route', { RouteKey: 'POST /v1/chat', AuthorizationType: 'AWS_IAM' });
    });

    test('a Valkey >= 8.2 replication group encrypted in transit and at rest', () => {
      const [, group] = onlyResource(template(), 'AWS::ElastiCache::ReplicationGroup');
      expect(group.Properties).toMatchObject({
        Engine: 'valkey',
        TransitEncryptionEnabled: true,
        TransitEncryptionMode: 'required',
        AtRestEncryptionEnabled: true,
      });
      const [major, minor] = String(group.Properties.EngineVersion).split('.').map(Number);
      expect(major > 8 || (major === 8 && minor >= 2)).toBe(true);
      template().resourceCountIs('AWS::ElastiCache::CacheCluster', 0);
    });

    test('bedrock:InvokeModel only on foundation-model and inference-profile ARNs', () => {
      const resources = resourcesAllowing(template(), 'bedrock:InvokeModel');
      expect(resources.length).toBeGreaterThan(0);
      for (const arn of resources) {
        expect(arn).not.toBe('*');
        expect(arn).toMatch(/:foundation-model\/|:inference-profile\//);
      }
      // A grant on a model in any Region is tied to one of the tiers' profiles.
      for (const { statement } of statementsAllowing(template(), 'bedrock:InvokeModel')) {
        if (resourcesOf(statement).some((r) => r.includes(':bedrock:*:'))) {
          expect(Object.keys(statement.Condition?.StringEquals ?? {})).toEqual(['bedrock:InferenceProfileArn']);
        }
      }
    });

    test('no IAM statement has a wildcard action', () => {
      expect(wildcardActions(template())).toEqual([]);
    });
  });

  test('the SageMaker example has an endpoint, and sagemaker:InvokeEndpoint is scoped to it', () => {
    const template = templates.EcommerceAssistantSageMaker;
    expect(template).toBeDefined();
    const [endpointId] = onlyResource(template, 'AWS::SageMaker::Endpoint');
    expect(resourcesAllowing(template, 'sagemaker:InvokeEndpoint')).toEqual([`\${Ref:${endpointId}}`]);
    template.hasResourceProperties('AWS::ApplicationAutoScaling::ScalableTarget', { MinCapacity: 1, MaxCapacity: 3, ServiceNamespace: 'sagemaker' });
    // A g5 has local NVMe storage, encrypted by the instance: SageMaker refuses a volume key for it.
    template.hasResourceProperties('AWS::SageMaker::EndpointConfig', { KmsKeyId: Match.absent() });
  });

  test('the SageMaker example scales its variant on a schedule and by target tracking, and its router on provisioned concurrency', () => {
    const template = templates.EcommerceAssistantSageMaker;
    const targets = template.findResources('AWS::ApplicationAutoScaling::ScalableTarget', { Properties: { ServiceNamespace: 'sagemaker' } });
    const [targetId, target] = Object.entries(targets)[0] as [string, any];
    expect(target.Properties.ScheduledActions).toEqual(expect.arrayContaining([
      expect.objectContaining({ Schedule: 'cron(45 7 ? * MON,TUE,WED,THU,FRI *)', ScalableTargetAction: { MinCapacity: 2 }, Timezone: 'America/New_York' }),
      expect.objectContaining({ Schedule: 'cron(0 20 ? * MON,TUE,WED,THU,FRI *)', ScalableTargetAction: { MinCapacity: 1 } }),
    ]));
    const policies = Object.values(template.findResources('AWS::ApplicationAutoScaling::ScalingPolicy', { Properties: { ScalingTargetId: { Ref: targetId } } })) as any[];
    expect(policies.map((p) => p.Properties.PolicyType)).toEqual(['TargetTrackingScaling', 'TargetTrackingScaling']);
    template.hasResourceProperties('AWS::ApplicationAutoScaling::ScalableTarget', { ServiceNamespace: 'lambda', ScalableDimension: 'lambda:function:ProvisionedConcurrency' });
  });

  describe.each(['EcommerceAssistant', 'EcommerceAssistantOpenSearch'])('%s static answers', (stackName) => {
    const template = () => {
      const t = templates[stackName];
      if (!t) throw new Error(`${stackName} did not synthesize: ${synth.error?.message}`);
      return t;
    };

    test('a daily schedule runs the loader, with retries and an encrypted dead-letter queue', () => {
      const [, schedule] = onlyResource(template(), 'AWS::Scheduler::Schedule');
      expect(schedule.Properties.ScheduleExpression).toBe('rate(1 day)');
      const loaderId = Object.entries(template().findResources('AWS::Lambda::Function'))
        .find(([, f]) => f.Properties.Environment.Variables.SCALABLE_AI_STATIC_LOADER_CONFIG)![0];
      expect(schedule.Properties.Target.Arn).toEqual({ 'Fn::GetAtt': [loaderId, 'Arn'] });
      expect(schedule.Properties.Target.RetryPolicy.MaximumRetryAttempts).toBeGreaterThan(0);
      const queueId = schedule.Properties.Target.DeadLetterConfig.Arn['Fn::GetAtt'][0];
      expect(schedule.Properties.Target.DeadLetterConfig).toEqual({ Arn: { 'Fn::GetAtt': [queueId, 'Arn'] } });
      const queue = template().toJSON().Resources[queueId];
      expect(queue.Type).toBe('AWS::SQS::Queue');
      expect(queue.Properties.SqsManagedSseEnabled).toBe(true);
    });

    test('the answers bucket is encrypted, versioned, logged, private and TLS only', () => {
      const bucketRef = loaderConfig(template()).bucketName;
      const bucketId = /^\$\{Ref:(.+)\}$/.exec(bucketRef)![1];
      const bucket = template().toJSON().Resources[bucketId];
      expect(bucket.Properties.BucketEncryption.ServerSideEncryptionConfiguration[0].ServerSideEncryptionByDefault.SSEAlgorithm).toBeDefined();
      expect(bucket.Properties).toMatchObject({
        VersioningConfiguration: { Status: 'Enabled' },
        PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
        LoggingConfiguration: { DestinationBucketName: expect.anything() },
      });
      const policies = Object.values(template().findResources('AWS::S3::BucketPolicy')).filter((p) => p.Properties.Bucket.Ref === bucketId);
      expect(policies[0].Properties.PolicyDocument.Statement).toContainEqual(expect.objectContaining({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }));
    });

    test('the router serves GET /v1/static-answers and matches semantically', () => {
      template().hasResourceProperties('AWS::ApiGatewayV2::Route', { RouteKey: 'GET /v1/static-answers', AuthorizationType: 'AWS_IAM' });
      expect(routerConfig(template()).staticAnswers).toMatchObject({ threshold: 0.9, maxAgeSeconds: 3600 });
    });
  });

  describe('EcommerceAssistant batch pipeline', () => {
    const template = () => {
      const t = templates.EcommerceAssistant;
      if (!t) throw new Error(`EcommerceAssistant did not synthesize: ${synth.error?.message}`);
      return t;
    };

    test('an encrypted queue with a redrive policy to a dead-letter queue', () => {
      const queues = template().findResources('AWS::SQS::Queue');
      const withRedrive = Object.values(queues).filter((q) => q.Properties.RedrivePolicy);
      expect(withRedrive).toHaveLength(1);
      const queue = withRedrive[0].Properties;
      expect(queue.SqsManagedSseEnabled === true || queue.KmsMasterKeyId !== undefined).toBe(true);
      const dlqId = queue.RedrivePolicy.deadLetterTargetArn['Fn::GetAtt'][0];
      expect(queue.RedrivePolicy.maxReceiveCount).toBeGreaterThan(0);
      const dlq = queues[dlqId];
      expect(dlq).toBeDefined();
      expect(dlq.Properties.SqsManagedSseEnabled === true || dlq.Properties.KmsMasterKeyId !== undefined).toBe(true);
    });

    test('an SQS event source mapping reporting batch item failures, with a batching window above zero', () => {
      const [, mapping] = onlyResource(template(), 'AWS::Lambda::EventSourceMapping');
      expect(mapping.Properties.FunctionResponseTypes).toEqual(['ReportBatchItemFailures']);
      expect(mapping.Properties.MaximumBatchingWindowInSeconds).toBeGreaterThan(0);
      const queueId = mapping.Properties.EventSourceArn['Fn::GetAtt'][0];
      expect(template().toJSON().Resources[queueId].Type).toBe('AWS::SQS::Queue');
    });

    test('a results table with TTL', () => {
      const tables = Object.values(template().findResources('AWS::DynamoDB::Table')).map((t) => t.Properties);
      expect(tables).toContainEqual(expect.objectContaining({
        KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }, { AttributeName: 'sk', KeyType: 'RANGE' }],
        TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
      }));
    });

    test('bedrock:CreateModelInvocationJob granted', () => {
      const resources = resourcesAllowing(template(), 'bedrock:CreateModelInvocationJob');
      expect(resources.length).toBeGreaterThan(0);
      expect(resources).toContain('arn:${AWS::Partition}:bedrock:${AWS::Region}:${AWS::AccountId}:model-invocation-job/*');
      expect(resources).not.toContain('*');
    });

    test('a role that bedrock.amazonaws.com can assume for batch jobs', () => {
      const roles = Object.values(template().findResources('AWS::IAM::Role'))
        .filter((r) => JSON.stringify(r.Properties.AssumeRolePolicyDocument).includes('"bedrock.amazonaws.com"'));
      expect(roles).toHaveLength(1);
      const [statement] = roles[0].Properties.AssumeRolePolicyDocument.Statement;
      expect(statement).toMatchObject({ Effect: 'Allow', Action: 'sts:AssumeRole', Principal: { Service: 'bedrock.amazonaws.com' } });
      expect(flatten(statement.Condition.ArnLike['aws:SourceArn'])).toMatch(/:model-invocation-job\/\*$/);
      expect(statement.Condition.StringEquals['aws:SourceAccount']).toEqual({ Ref: 'AWS::AccountId' });
    });

    test('every function environment stays under the 4 KB Lambda limit (each token counted as 160 characters)', () => {
      for (const [id, fn] of Object.entries(template().findResources('AWS::Lambda::Function'))) {
        const variables: Record<string, unknown> = fn.Properties.Environment?.Variables ?? {};
        const size = Object.entries(variables)
          .reduce((sum, [name, value]) => sum + name.length + flatten(value).replace(/\$\{[^}]*\}/g, 'x'.repeat(160)).length, 0);
        expect({ id, withinLimit: size < 4096 }).toEqual({ id, withinLimit: true });
      }
    });
  });

  test('the OpenSearch example keeps vectors in a VECTORSEARCH collection behind its encryption, network and data access policies', () => {
    const template = templates.EcommerceAssistantOpenSearch;
    expect(template).toBeDefined();
    const [collectionId, collection] = onlyResource(template, 'AWS::OpenSearchServerless::Collection');
    expect(collection.Properties).toMatchObject({ Name: 'ecommerce-semantic', Type: 'VECTORSEARCH', StandbyReplicas: 'DISABLED' });
    const policies = Object.values(template.findResources('AWS::OpenSearchServerless::SecurityPolicy')).map((p) => p.Properties);
    expect(policies.map((p) => p.Type).sort()).toEqual(['encryption', 'network']);
    const encryption = JSON.parse(policies.find((p) => p.Type === 'encryption')!.Policy);
    expect(encryption).toMatchObject({ AWSOwnedKey: true, Rules: [{ ResourceType: 'collection', Resource: ['collection/ecommerce-semantic'] }] });
    const [endpointId] = onlyResource(template, 'AWS::OpenSearchServerless::VpcEndpoint');
    const network = parseJsonValue(policies.find((p) => p.Type === 'network')!.Policy);
    expect(network).toEqual([expect.objectContaining({ AllowFromPublic: false, SourceVPCEs: [`\${Ref:${endpointId}}`] })]);
    const [, access] = onlyResource(template, 'AWS::OpenSearchServerless::AccessPolicy');
    const rules = parseJsonValue(access.Properties.Policy)[0].Rules;
    expect(rules.flatMap((r: { Permission: string[] }) => r.Permission).every((p: string) => !p.includes('*'))).toBe(true);
    expect(resourcesAllowing(template, 'aoss:APIAccessAll')).toEqual([`\${GetAtt:${collectionId}.Arn}`]);
    expect(routerConfig(template).semanticCache.store).toMatchObject({ kind: 'opensearch', opensearch: { index: 'semantic-cache' } });
    expect(flatten(routerConfig(template).semanticCache.store.opensearch.endpoint)).toBe(`\${GetAtt:${collectionId}.CollectionEndpoint}`);
  });

  test('the SageMaker example has no static answers and no OpenSearch collection', () => {
    const template = templates.EcommerceAssistantSageMaker;
    expect(template).toBeDefined();
    template.resourceCountIs('AWS::Scheduler::Schedule', 0);
    template.resourceCountIs('AWS::OpenSearchServerless::Collection', 0);
  });

  test('the Bedrock example has no SageMaker resources and no sagemaker:InvokeEndpoint grant', () => {
    const template = templates.EcommerceAssistant;
    expect(template).toBeDefined();
    template.resourceCountIs('AWS::SageMaker::Endpoint', 0);
    expect(resourcesAllowing(template, 'sagemaker:InvokeEndpoint')).toEqual([]);
  });
});

describe('cdk.json', () => {
  test('carries every feature flag `cdk init` writes at our aws-cdk-lib version, with its value', () => {
    const context = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'cdk.json'), 'utf8')).context;
    const differing = Object.entries(RECOMMENDED_FLAGS)
      .filter(([flag, value]) => JSON.stringify(context[flag]) !== JSON.stringify(value))
      .map(([flag, value]) => `${flag}: expected ${JSON.stringify(value)}, cdk.json has ${JSON.stringify(context[flag])}`);
    expect(differing).toEqual([]);
    expect(Object.keys(RECOMMENDED_FLAGS).length).toBeGreaterThan(50);
  });
});
