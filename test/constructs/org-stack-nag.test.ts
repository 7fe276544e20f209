/**
 * The "org stack" (./org-stack.ts: every construct and option, in an org VPC from another stack,
 * with a customer-managed key, an org-wide permissions boundary and the recommended feature
 * flags) synthesizes under cdk-nag AwsSolutions and NIST 800-53 R5 with no unacknowledged
 * finding, and the key, the boundary and the backups reach every resource they should.
 */
import * as path from 'node:path';
import { App, Stack, Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { AwsSolutionsChecks, NIST80053R5Checks } from 'cdk-nag';
import { acknowledgements, flatten, newStack, onlyResource, readReport, trySynth } from './helpers';
import { ORG_BOUNDARY_NAME, orgApp, type OrgServiceStack } from './org-stack';
import { ModelTier, ScalableAiService, TieredRouter } from '../../constructs';

describe('org stack under AwsSolutions and NIST 800-53 R5', () => {
  let app: App;
  let service: OrgServiceStack;
  let synth: ReturnType<typeof trySynth>;
  let templates: Template[];
  let serviceTemplate: Template;

  beforeAll(() => {
    ({ app, service } = orgApp());
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app), new NIST80053R5Checks(app));
    synth = trySynth(app);
    if (synth.assembly) {
      templates = synth.assembly.stacks.map((s) => Template.fromJSON(s.template));
      serviceTemplate = Template.fromJSON(synth.assembly.getStackArtifact(service.artifactId).template);
    }
  });

  test('synthesizes with no unacknowledged finding of either pack', () => {
    // On failure, `printed` holds cdk-nag's findings.
    expect({ error: synth.error?.message, printed: synth.error ? synth.printed : '' }).toEqual({ error: undefined, printed: '' });
    const report = readReport(path.join(synth.assembly!.directory, 'validation-report.json'));
    expect(report.pluginReports.flatMap((r) => r.violations)).toEqual([]);
  });

  test('every acknowledgement carries a non-empty reason and sits on a construct, never on the app or a stack', () => {
    const acks = acknowledgements(app).filter((a) => a.id.includes('AwsSolutions-') || a.id.includes('NIST.800.53.R5-'));
    expect(acks.length).toBeGreaterThan(0);
    for (const ack of acks) {
      const hasReason = typeof ack.reason === 'string' && ack.reason.trim() !== '';
      expect({ id: ack.id, path: ack.path, hasReason }).toEqual({ id: ack.id, path: ack.path, hasReason: true });
      const wide = ack.construct === app || Stack.isStack(ack.construct);
      expect({ id: ack.id, path: ack.path, wide }).toEqual({ id: ack.id, path: ack.path, wide: false });
    }
  });

  test('every IAM role has the org-wide permissions boundary', () => {
    const roles = templates.flatMap((t) => Object.entries(t.findResources('AWS::IAM::Role')));
    expect(roles.length).toBeGreaterThan(5);
    for (const [id, role] of roles) {
      expect({ id, boundary: role.Properties.PermissionsBoundary }).toEqual({ id, boundary: `arn:aws:iam::111122223333:policy/${ORG_BOUNDARY_NAME}` });
    }
  });

  test('the customer-managed key encrypts every log group, the cache, its secret, the buckets the library creates and the tables', () => {
    const keyRef = { 'Fn::GetAtt': [service.getLogicalId(service.key.node.defaultChild as any), 'Arn'] };
    const logGroups = Object.entries(serviceTemplate.findResources('AWS::Logs::LogGroup'));
    expect(logGroups.length).toBeGreaterThanOrEqual(10);
    for (const [id, group] of logGroups) expect({ id, key: group.Properties.KmsKeyId }).toEqual({ id, key: keyRef });
    const [, cache] = Object.entries(serviceTemplate.findResources('AWS::ElastiCache::ReplicationGroup'))[0];
    expect(cache.Properties.KmsKeyId).toEqual(keyRef);
    for (const secret of Object.values(serviceTemplate.findResources('AWS::SecretsManager::Secret'))) {
      expect(secret.Properties.KmsKeyId).toEqual(keyRef);
    }
    for (const table of Object.values(serviceTemplate.findResources('AWS::DynamoDB::Table'))) {
      expect(table.Properties.SSESpecification).toMatchObject({ SSEEnabled: true, SSEType: 'KMS', KMSMasterKeyId: keyRef });
    }
    // The answers and bulk buckets use the key; their access log buckets must stay on SSE-S3.
    const buckets = Object.entries(serviceTemplate.findResources('AWS::S3::Bucket'));
    const encryption = (b: any) => b.Properties.BucketEncryption.ServerSideEncryptionConfiguration[0].ServerSideEncryptionByDefault;
    const logged = buckets.filter(([, b]) => b.Properties.LoggingConfiguration);
    expect(logged).toHaveLength(2);
    for (const [, bucket] of logged) expect(encryption(bucket)).toEqual({ SSEAlgorithm: 'aws:kms', KMSMasterKeyID: keyRef });
    for (const [, bucket] of buckets.filter(([, b]) => !b.Properties.LoggingConfiguration)) expect(encryption(bucket)).toEqual({ SSEAlgorithm: 'AES256' });
  });

  test('the key policy lets CloudWatch Logs of this account and Region use the key, limited by the encryption context', () => {
    const [, key] = Object.entries(serviceTemplate.findResources('AWS::KMS::Key'))
      .find(([id]) => id === service.getLogicalId(service.key.node.defaultChild as any))!;
    const statements = key.Properties.KeyPolicy.Statement.filter((s: any) => s.Principal?.Service === 'logs.us-east-1.amazonaws.com');
    expect(statements).toHaveLength(1);
    expect(statements[0]).toMatchObject({
      Effect: 'Allow',
      Resource: '*',
      Condition: { ArnLike: { 'kms:EncryptionContext:aws:logs:arn': 'arn:aws:logs:us-east-1:111122223333:log-group:*' } },
    });
    expect(statements[0].Action).toEqual(expect.arrayContaining(['kms:Encrypt', 'kms:Decrypt', 'kms:GenerateDataKey']));
    expect(statements[0].Action.every((a: string) => !a.includes('*'))).toBe(true);
  });

  test('the Valkey cache keeps automatic snapshots (1 day by default)', () => {
    serviceTemplate.hasResourceProperties('AWS::ElastiCache::ReplicationGroup', { SnapshotRetentionLimit: 1 });
  });
});

describe('grant methods acknowledge findings only on roles the library created', () => {
  test('ModelTier.grantInvoke and BatchPipeline.grantSubmit on your role add no acknowledgement to it; on the library\'s roles they do', () => {
    const { service } = orgApp();
    const yours = new iam.Role(service, 'YourRole', { assumedBy: new iam.AccountRootPrincipal() });
    ModelTier.bedrock({ tierId: 'x', modelId: 'us.amazon.nova-micro-v1:0', inputPricePer1kTokens: 0.000035, outputPricePer1kTokens: 0.00014 }).grantInvoke(yours);
    service.service.batchPipeline!.grantSubmit(yours);
    expect(acknowledgements(yours)).toEqual([]);
    // The router's own role holds the acknowledgement of its cross-region inference profile grant.
    const routerRole = service.service.router.function.role!;
    expect(acknowledgements(routerRole).map((a) => a.id)).toEqual(expect.arrayContaining([
      expect.stringMatching(/AwsSolutions-IAM5\[Resource::arn:<AWS::Partition>:bedrock:\*::foundation-model\/amazon\.nova-lite-v1:0\]$/),
    ]));
  });
});

describe('a customer-managed key on the log groups', () => {
  const tier = () => ModelTier.bedrock({ tierId: 'small', modelId: 'amazon.nova-micro-v1:0', inputPricePer1kTokens: 0.000035, outputPricePer1kTokens: 0.00014 });

  test('a key of the app gets the CloudWatch Logs statement once, however many log groups use it', () => {
    const stack = newStack();
    const key = new kms.Key(stack, 'Key', { enableKeyRotation: true });
    new TieredRouter(stack, 'A', { tiers: [tier()], encryptionKey: key });
    new TieredRouter(stack, 'B', { tiers: [tier()], encryptionKey: key });
    const template = Template.fromStack(stack);
    const [, keyResource] = onlyResource(template, 'AWS::KMS::Key');
    const logsStatements = keyResource.Properties.KeyPolicy.Statement.filter((s: any) => flatten(s.Principal?.Service ?? '').startsWith('logs.'));
    expect(logsStatements).toHaveLength(1);
    expect(flatten(logsStatements[0].Principal.Service)).toBe('logs.${AWS::Region}.amazonaws.com');
    expect(flatten(logsStatements[0].Condition.ArnLike['kms:EncryptionContext:aws:logs:arn'])).toBe('arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:*');
    const groups = Object.values(template.findResources('AWS::Logs::LogGroup'));
    expect(groups).toHaveLength(4);
    const [keyId] = onlyResource(template, 'AWS::KMS::Key');
    for (const group of groups) expect(group.Properties.KmsKeyId).toEqual({ 'Fn::GetAtt': [keyId, 'Arn'] });
  });

  test('the facade\'s own VPC writes its flow logs under the facade\'s key', () => {
    const stack = newStack();
    const key = new kms.Key(stack, 'Key', { enableKeyRotation: true });
    const service = new ScalableAiService(stack, 'Service', { tiers: [tier()], encryptionKey: key });
    const template = Template.fromStack(stack);
    const flowLogs = template.toJSON().Resources[stack.getLogicalId(service.node.findChild('FlowLogs').node.defaultChild as any)];
    expect(flowLogs.Properties.KmsKeyId).toEqual({ 'Fn::GetAtt': [stack.getLogicalId(key.node.defaultChild as any), 'Arn'] });
  });

  test('an imported key encrypts the log groups and its policy is left alone', () => {
    const stack = newStack();
    const arn = 'arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';
    const router = new TieredRouter(stack, 'Router', { tiers: [tier()], encryptionKey: kms.Key.fromKeyArn(stack, 'Imported', arn) });
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::KMS::Key', 0);
    for (const group of Object.values(template.findResources('AWS::Logs::LogGroup'))) expect(group.Properties.KmsKeyId).toBe(arn);
    expect(acknowledgements(router).filter((a) => a.id.includes('CloudWatchLogGroupEncrypted'))).toEqual([]);
  });

  test('without a key, the log groups keep CloudWatch Logs\' encryption and the finding is acknowledged naming the prop', () => {
    const stack = newStack();
    const router = new TieredRouter(stack, 'Router', { tiers: [tier()] });
    const acks = acknowledgements(router).filter((a) => a.id.endsWith('NIST.800.53.R5-CloudWatchLogGroupEncrypted'));
    expect(acks.map((a) => a.path).sort()).toEqual([router.accessLogGroup!.node.path, router.logGroup.node.path].sort());
    for (const ack of acks) expect(String(ack.reason)).toMatch(/TieredRouter encryptionKey/);
  });
});

describe('without the recommended feature flags', () => {
  test('the facade\'s own VPC still closes its default security group (NIST.800.53.R5-VPCDefaultSecurityGroupClosed)', () => {
    const stack = new Stack(new App(), 'NoFlags');
    new ScalableAiService(stack, 'Service', {
      tiers: [ModelTier.bedrock({ tierId: 'small', modelId: 'amazon.nova-micro-v1:0', inputPricePer1kTokens: 0.000035, outputPricePer1kTokens: 0.00014 })],
    });
    Template.fromStack(stack).resourceCountIs('Custom::VpcRestrictDefaultSG', 1);
  });
});
