/** ReadReplicaDatabase and GlobalSecondaryDatabase: the synthesized cluster, proxy, grants, nag, and what is refused at synth. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Duration, Stack, Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as rds from 'aws-cdk-lib/aws-rds';
import { AwsSolutionsChecks, NIST80053R5Checks } from 'cdk-nag';
import { isolatedVpc, newApp, newGrantee, newStack, onlyResource, orgVpc, readReport, resourcesAllowing, routerConfig, trySynth } from './helpers';
import { GlobalSecondaryDatabase, ModelTier, ReadReplicaDatabase, TieredRouter, VectorStore, type ReadReplicaDatabaseProps } from '../../constructs';

function database(props: Partial<ReadReplicaDatabaseProps> = {}, stack: Stack = newStack()): { stack: Stack; db: ReadReplicaDatabase; vpc: ec2.Vpc } {
  const vpc = orgVpc(stack);
  return { stack, vpc, db: new ReadReplicaDatabase(stack, 'Db', { vpc, ...props }) };
}

function fn(stack: Stack, vpc: ec2.IVpc): lambda.Function {
  return new lambda.Function(stack, 'Fn', { runtime: lambda.Runtime.NODEJS_22_X, handler: 'index.handler', code: lambda.Code.fromInline('exports.handler=async()=>1'), vpc });
}

describe('defaults', () => {
  const { stack, db } = database();
  const template = Template.fromStack(stack);
  const [, cluster] = onlyResource(template, 'AWS::RDS::DBCluster');

  test('an encrypted Aurora PostgreSQL 16 Serverless v2 cluster at 0 ACU minimum, IAM auth, backups, deletion protection, Performance Insights, log export', () => {
    expect(cluster.Properties).toMatchObject({
      Engine: 'aurora-postgresql',
      EngineVersion: '16.11',
      ServerlessV2ScalingConfiguration: { MinCapacity: 0, MaxCapacity: 4 },
      StorageEncrypted: true,
      KmsKeyId: { 'Fn::GetAtt': [expect.stringMatching(/^DbKey/), 'Arn'] },
      DeletionProtection: true,
      BackupRetentionPeriod: 7,
      PerformanceInsightsEnabled: true,
      PerformanceInsightsRetentionPeriod: 7,
      DatabaseInsightsMode: 'standard',
      EnableIAMDatabaseAuthentication: true,
      EnableCloudwatchLogsExports: ['postgresql'],
      DatabaseName: 'app',
      MasterUsername: 'app',
    });
    expect(cluster.DeletionPolicy).toBe('Snapshot');
    template.hasResourceProperties('AWS::RDS::DBClusterParameterGroup', { Parameters: { 'rds.force_ssl': '1' } });
  });

  test('one writer and one reader, both Serverless v2, the reader in promotion tier 1 (scales and pauses with the writer)', () => {
    const instances = Object.values(template.findResources('AWS::RDS::DBInstance')).map((i) => i.Properties);
    expect(instances.map((i) => [i.DBInstanceClass, i.PromotionTier, i.PubliclyAccessible]).sort()).toEqual([['db.serverless', 0, false], ['db.serverless', 1, false]]);
  });

  test('the proxy requires TLS and IAM authentication; the reader endpoint is a READ_ONLY proxy endpoint', () => {
    template.hasResourceProperties('AWS::RDS::DBProxy', { RequireTLS: true, EngineFamily: 'POSTGRESQL', Auth: [{ AuthScheme: 'SECRETS', IAMAuth: 'REQUIRED' }] });
    const [endpointId, endpoint] = onlyResource(template, 'AWS::RDS::DBProxyEndpoint');
    expect(endpoint.Properties.TargetRole).toBe('READ_ONLY');
    expect(stack.resolve(db.readerEndpoint.hostname)).toEqual({ 'Fn::GetAtt': [endpointId, 'Endpoint'] });
    expect(stack.resolve(db.writerEndpoint.hostname)).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/^DbProxy/), 'Endpoint'] });
    expect(db.iamAuthentication).toBe(true);
  });

  test('the secret is encrypted with the key and rotated every 30 days', () => {
    const [, secret] = onlyResource(template, 'AWS::SecretsManager::Secret');
    expect(secret.Properties.KmsKeyId).toEqual(cluster.Properties.KmsKeyId);
    template.hasResourceProperties('AWS::SecretsManager::RotationSchedule', { RotationRules: { ScheduleExpression: 'rate(30 days)' } });
  });
});

test('grantConnect with the proxy: rds-db:connect on the proxy user; the proxy admits only the granted function', () => {
  const { stack, db, vpc } = database();
  const f = fn(stack, vpc);
  db.grantConnect(f);
  db.connections.allowDefaultPortFrom(f);
  const template = Template.fromStack(stack);
  expect(resourcesAllowing(template, 'rds-db:connect')).toEqual([expect.stringMatching(/^arn:\$\{AWS::Partition\}:rds-db:\$\{AWS::Region\}:\$\{AWS::AccountId\}:dbuser:.*\/app$/)]);
  const proxySg = stack.resolve(db.connections.securityGroups[0].securityGroupId);
  const ingress = Object.values(template.findResources('AWS::EC2::SecurityGroupIngress')).map((r) => r.Properties)
    .filter((p) => JSON.stringify(p.GroupId) === JSON.stringify(proxySg));
  const fnSg = stack.resolve(f.connections.securityGroups[0].securityGroupId);
  expect(ingress).toEqual([expect.objectContaining({ FromPort: 5432, ToPort: 5432, SourceSecurityGroupId: fnSg })]);
  for (const sg of Object.values(template.findResources('AWS::EC2::SecurityGroup'))) {
    expect(JSON.stringify(sg.Properties.SecurityGroupIngress ?? [])).not.toContain('0.0.0.0/0');
  }
});

test('without the proxy: cluster endpoints, password authentication, grantConnect reads the secret', () => {
  const { stack, db } = database({ proxy: false });
  db.grantConnect(newGrantee(stack));
  const template = Template.fromStack(stack);
  template.resourceCountIs('AWS::RDS::DBProxy', 0);
  expect(db.iamAuthentication).toBe(false);
  expect(stack.resolve(db.readerEndpoint.hostname)).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/^DbCluster/), 'ReadEndpoint.Address'] });
  expect(resourcesAllowing(template, 'secretsmanager:GetSecretValue')).toHaveLength(1);
});

test('provisioned instances with instanceType, and N readers', () => {
  const { stack } = database({ instanceType: ec2.InstanceType.of(ec2.InstanceClass.R6G, ec2.InstanceSize.LARGE), readers: 2 });
  const template = Template.fromStack(stack);
  const classes = Object.values(template.findResources('AWS::RDS::DBInstance')).map((i) => i.Properties.DBInstanceClass);
  expect(classes).toEqual(['db.r6g.large', 'db.r6g.large', 'db.r6g.large']);
  expect(onlyResource(template, 'AWS::RDS::DBCluster')[1].Properties.ServerlessV2ScalingConfiguration).toBeUndefined();
});

test('autoPauseAfter sets SecondsUntilAutoPause', () => {
  const { stack } = database({ autoPauseAfter: Duration.minutes(30), proxy: false });
  Template.fromStack(stack).hasResourceProperties('AWS::RDS::DBCluster', { ServerlessV2ScalingConfiguration: { MinCapacity: 0, SecondsUntilAutoPause: 1800 } });
});

test.each<[string, Partial<ReadReplicaDatabaseProps>, RegExp]>([
  ['readers', { readers: 16 }, /readers must be an integer from 0 to 15/],
  ['minCapacity', { minCapacity: 0.3 }, /minCapacity must be 0 \(auto-pause\) or from 0.5/],
  ['maxCapacity', { maxCapacity: 0.5 }, /maxCapacity must be from 1 to 256/],
  ['autoPauseAfter', { minCapacity: 1, autoPauseAfter: Duration.minutes(10) }, /autoPauseAfter applies only with minCapacity: 0/],
  ['instanceType', { instanceType: ec2.InstanceType.of(ec2.InstanceClass.R6G, ec2.InstanceSize.LARGE), maxCapacity: 8 }, /maxCapacity applies to Aurora Serverless v2 only/],
  ['globalDatabase', { globalDatabase: true }, /globalDatabase needs minCapacity of at least 0.5/],
  ['backupRetention', { backupRetention: Duration.days(40) }, /backupRetention must be a whole number of days from 1 to 35/],
  ['username', { username: 'postgres' }, /username must be/],
  ['vpcSubnets', { vpcSubnets: { subnetType: ec2.SubnetType.PUBLIC } }, /vpcSubnets selects public subnets/],
])('refused at synth: %s', (_prop, props, message) => {
  expect(() => database(props)).toThrow(message);
});

test('isolated subnets without a Secrets Manager endpoint are refused (the rotation function could not reach the API)', () => {
  const stack = newStack();
  const vpc = isolatedVpc(stack);
  expect(() => new ReadReplicaDatabase(stack, 'Db', { vpc })).toThrow(/set secretsManagerEndpoint/);
  const endpoint = vpc.addInterfaceEndpoint('Sm', { service: ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER });
  expect(() => new ReadReplicaDatabase(stack, 'Db2', { vpc, secretsManagerEndpoint: endpoint })).not.toThrow();
});

test('hosts the pgvector semantic cache: a router on it synthesizes under AwsSolutions and NIST 800-53 R5 with no finding on the database', () => {
  const app = newApp();
  const stack = new Stack(app, 'PgStack');
  const vpc = orgVpc(stack);
  const db = new ReadReplicaDatabase(stack, 'Db', { vpc });
  new TieredRouter(stack, 'Router', {
    tiers: [ModelTier.bedrock({ tierId: 'small', modelId: 'amazon.nova-micro-v1:0', inputPricePer1kTokens: 0.000035, outputPricePer1kTokens: 0.00014 })],
    vpc,
    semanticCache: { vectorStore: VectorStore.auroraPgvector({ cluster: db.cluster, secret: db.secret, databaseName: db.databaseName }) },
  });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app), new NIST80053R5Checks(app));
  const synth = trySynth(app);
  // The VPC of this test is not nag-clean (its public subnets): only the database's findings count.
  const report = synth.assembly ? path.join(synth.assembly.directory, 'validation-report.json') : /(\S+validation-report\.json)/.exec(synth.error?.message ?? '')?.[1];
  const violations = readReport(report!).pluginReports.flatMap((r) => r.violations)
    .filter((v) => v.violatingConstructs.some((c) => c.constructPath.startsWith('PgStack/Db/')));
  expect(violations.map((v) => `${v.ruleName} ${v.violatingConstructs.map((c) => c.constructPath).join(',')}`)).toEqual([]);
  // The router reaches the cluster's own security group on its port.
  const template = Template.fromJSON(JSON.parse(fs.readFileSync(path.join(path.dirname(report!), 'PgStack.template.json'), 'utf8')));
  const ingress = Object.values(template.findResources('AWS::EC2::SecurityGroupIngress')).map((r) => r.Properties)
    .filter((p) => JSON.stringify(p.GroupId) === JSON.stringify(stack.resolve(db.securityGroup.securityGroupId)));
  expect(ingress.map((p) => p.Description)).toEqual(expect.arrayContaining([expect.stringMatching(/cdk-scalable-ai router/)]));
});

/** A primary in us-east-1 and its secondary in us-west-2, in stacks of one account. */
function globalPair() {
  const app = newApp();
  const east = new Stack(app, 'East', { env: { account: '111122223333', region: 'us-east-1' } });
  const west = new Stack(app, 'West', { env: { account: '111122223333', region: 'us-west-2' } });
  const primary = new ReadReplicaDatabase(east, 'Db', { vpc: orgVpc(east), globalDatabase: true, minCapacity: 0.5 });
  const westVpc = orgVpc(west);
  const secondary = new GlobalSecondaryDatabase(west, 'Db', { primary, vpc: westVpc });
  return { app, east, west, primary, westVpc, secondary };
}

describe('Aurora Global Database', () => {
  test('a primary in us-east-1 and a secondary in us-west-2 with its own key and no master user of its own', () => {
    const app = newApp();
    const east = new Stack(app, 'East', { env: { account: '111122223333', region: 'us-east-1' } });
    const west = new Stack(app, 'West', { env: { account: '111122223333', region: 'us-west-2' } });
    const primary = new ReadReplicaDatabase(east, 'Db', { vpc: orgVpc(east), globalDatabase: true, minCapacity: 0.5 });
    const secondary = new GlobalSecondaryDatabase(west, 'Db', { primary, vpc: orgVpc(west) });
    const eastT = Template.fromStack(east);
    const [, global] = onlyResource(eastT, 'AWS::RDS::GlobalCluster');
    expect(global.Properties).toMatchObject({ GlobalClusterIdentifier: primary.globalClusterIdentifier, DeletionProtection: true });
    const westT = Template.fromStack(west);
    const [, cluster] = onlyResource(westT, 'AWS::RDS::DBCluster');
    expect(cluster.Properties).toMatchObject({
      GlobalClusterIdentifier: primary.globalClusterIdentifier,
      Engine: 'aurora-postgresql',
      EngineVersion: '16.11',
      StorageEncrypted: true,
      KmsKeyId: { 'Fn::GetAtt': [expect.stringMatching(/^DbKey/), 'Arn'] },
      ServerlessV2ScalingConfiguration: { MinCapacity: 0.5, MaxCapacity: 4 },
    });
    expect(cluster.Properties.MasterUsername).toBeUndefined();
    expect(cluster.Properties.MasterUserPassword).toBeUndefined();
    westT.resourceCountIs('AWS::RDS::DBInstance', 1);
    expect(west.dependencies).toContain(east);
    expect(secondary.globalClusterIdentifier).toBe(primary.globalClusterIdentifier);
  });

  describe('the secondary Region\'s logins: a router in us-west-2 reads and writes profiles through the secondary', () => {
    const { east, west, primary, westVpc, secondary } = globalPair();
    const router = new TieredRouter(west, 'Router', {
      tiers: [ModelTier.bedrock({ tierId: 'small', modelId: 'amazon.nova-micro-v1:0', inputPricePer1kTokens: 0.000035, outputPricePer1kTokens: 0.00014 })],
      vpc: westVpc,
      userProfiles: { database: secondary },
    });
    const eastT = Template.fromStack(east);
    const westT = Template.fromStack(west);
    const [clusterId, cluster] = onlyResource(westT, 'AWS::RDS::DBCluster');

    test('the secondary forwards writes to the primary; reads go to its reader endpoint, writes to its cluster endpoint', () => {
      expect(cluster.Properties.EnableGlobalWriteForwarding).toBe(true);
      expect(secondary.writeForwarding).toBe(true);
      expect(west.resolve(secondary.readerEndpoint.hostname)).toEqual({ 'Fn::GetAtt': [clusterId, 'ReadEndpoint.Address'] });
      expect(west.resolve(secondary.writerEndpoint.hostname)).toEqual({ 'Fn::GetAtt': [clusterId, 'Endpoint.Address'] });
      expect([secondary.databaseName, secondary.username, secondary.iamAuthentication, secondary.proxy]).toEqual(['app', 'app', false, undefined]);
      expect(west.resolve(secondary.cluster.clusterIdentifier)).toEqual({ Ref: clusterId });
    });

    test('the primary\'s master secret has a literal name and a replica in us-west-2', () => {
      const [, secret] = onlyResource(eastT, 'AWS::SecretsManager::Secret');
      expect(primary.globalSecretName).toMatch(/^sai-.*-credentials$/);
      // A name ending in "-" and six characters would be read as a partial ARN's random suffix.
      expect(primary.globalSecretName).not.toMatch(/-[A-Za-z0-9]{6}$/);
      expect(secret.Properties.Name).toBe(primary.globalSecretName);
      expect(secret.Properties.ReplicaRegions).toEqual([{ Region: 'us-west-2' }]);
    });

    test('the router reads the replica in its own Region (no rds-db:connect, no cross-Region reference) and the secondary admits it on 5432', () => {
      const template = westT;
      expect(resourcesAllowing(template, 'secretsmanager:GetSecretValue'))
        .toEqual([`arn:aws:secretsmanager:us-west-2:111122223333:secret:${primary.globalSecretName}-??????`]);
      expect(resourcesAllowing(template, 'rds-db:connect')).toEqual([]);
      const ingress = Object.values(template.findResources('AWS::EC2::SecurityGroupIngress')).map((r) => r.Properties)
        .filter((p) => JSON.stringify(p.GroupId) === JSON.stringify(west.resolve(secondary.securityGroup.securityGroupId)));
      const fnSg = west.resolve(router.function.connections.securityGroups[0].securityGroupId);
      expect(ingress).toEqual([expect.objectContaining({ FromPort: 5432, ToPort: 5432, SourceSecurityGroupId: fnSg })]);
      expect(JSON.stringify(template.toJSON())).not.toMatch(/Fn::ImportValue|ExportsReader/);
    });

    test('the router\'s configuration: the secondary\'s endpoints, the secret\'s password, write forwarding', () => {
      expect(routerConfig(westT).userProfiles).toMatchObject({
        writer: { host: `\${GetAtt:${clusterId}.Endpoint.Address}`, port: 5432 },
        reader: { host: `\${GetAtt:${clusterId}.ReadEndpoint.Address}`, port: 5432 },
        database: 'app',
        username: 'app',
        auth: 'secret',
        secretArn: expect.stringContaining(`:secretsmanager:us-west-2:111122223333:secret:${primary.globalSecretName}`),
        writeForwarding: true,
      });
    });

  });

  test('each secondary Region gets its own replica of the secret; a second secondary in one Region is refused', () => {
    const app = newApp();
    const east = new Stack(app, 'East', { env: { region: 'us-east-1' } });
    const west = new Stack(app, 'West', { env: { region: 'us-west-2' } });
    const europe = new Stack(app, 'Europe', { env: { region: 'eu-west-1' } });
    const primary = new ReadReplicaDatabase(east, 'Db', { vpc: orgVpc(east), globalDatabase: true, minCapacity: 0.5 });
    const westVpc = orgVpc(west);
    new GlobalSecondaryDatabase(west, 'A', { primary, vpc: westVpc });
    // Aurora: a global database has at most one cluster per Region.
    expect(() => new GlobalSecondaryDatabase(west, 'B', { primary, vpc: westVpc })).toThrow(/already has a secondary in us-west-2/);
    new GlobalSecondaryDatabase(europe, 'C', { primary, vpc: orgVpc(europe) });
    expect(onlyResource(Template.fromStack(east), 'AWS::SecretsManager::Secret')[1].Properties.ReplicaRegions).toEqual([{ Region: 'us-west-2' }, { Region: 'eu-west-1' }]);
  });

  test('a primary without globalDatabase keeps its generated secret name and no replica', () => {
    const { stack, db } = database();
    const [, secret] = onlyResource(Template.fromStack(stack), 'AWS::SecretsManager::Secret');
    expect(db.globalSecretName).toBeUndefined();
    expect(secret.Properties.Name).toBeUndefined();
    expect(secret.Properties.ReplicaRegions).toBeUndefined();
  });

  test('the whole pair is clean under AwsSolutions and NIST 800-53 R5 (only the databases\' findings count)', () => {
    const { app, west, westVpc, secondary } = globalPair();
    const f = fn(west, westVpc);
    secondary.grantConnect(f);
    secondary.connections.allowDefaultPortFrom(f);
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app), new NIST80053R5Checks(app));
    const synth = trySynth(app);
    const report = synth.assembly ? path.join(synth.assembly.directory, 'validation-report.json') : /(\S+validation-report\.json)/.exec(synth.error?.message ?? '')?.[1];
    const violations = readReport(report!).pluginReports.flatMap((r) => r.violations)
      .filter((v) => v.violatingConstructs.some((c) => /^(East|West)\/Db\//.test(c.constructPath)));
    expect(violations.map((v) => `${v.ruleName} ${v.violatingConstructs.map((c) => c.constructPath).join(',')}`)).toEqual([]);
  });

  test('refused: a primary without globalDatabase, the same Region, minCapacity 0', () => {
    const app = newApp();
    const east = new Stack(app, 'East', { env: { region: 'us-east-1' } });
    const west = new Stack(app, 'West', { env: { region: 'us-west-2' } });
    const eastVpc = orgVpc(east);
    const plain = new ReadReplicaDatabase(east, 'Plain', { vpc: eastVpc });
    const global = new ReadReplicaDatabase(east, 'Global', { vpc: eastVpc, globalDatabase: true, minCapacity: 0.5 });
    const vpc = orgVpc(west);
    expect(() => new GlobalSecondaryDatabase(west, 'A', { primary: plain, vpc })).toThrow(/create it with globalDatabase: true/);
    expect(() => new GlobalSecondaryDatabase(east, 'B', { primary: global, vpc: eastVpc })).toThrow(/the Region of its primary/);
    expect(() => new GlobalSecondaryDatabase(west, 'C', { primary: global, vpc, minCapacity: 0 })).toThrow(/minCapacity 0 \(auto-pause\) is refused/);
    const secondary = new GlobalSecondaryDatabase(west, 'D', { primary: global, vpc });
    const third = new Stack(app, 'Third', { env: { region: 'eu-west-1' } });
    expect(() => new GlobalSecondaryDatabase(third, 'E', { primary: secondary, vpc: orgVpc(third) })).toThrow(/is not the primary of a global database/);
    const old = new ReadReplicaDatabase(east, 'Old', { vpc: eastVpc, globalDatabase: true, minCapacity: 0.5, engineVersion: rds.AuroraPostgresEngineVersion.VER_15_3 });
    expect(() => new GlobalSecondaryDatabase(west, 'F', { primary: old, vpc })).toThrow(/global write forwarding .* needs 14.9, 15.4, 16 or later/);
  });
});
