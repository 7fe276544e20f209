/**
 * TieredRouter with userProfiles: the router connects to an IReadReplicaDatabase (here a
 * test-local one: an Aurora cluster behind an RDS Proxy with IAM authentication), reads through
 * its reader endpoint and writes through its writer endpoint, and serves the profile routes.
 */
import { Duration, type Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as iam from 'aws-cdk-lib/aws-iam';
import * as rds from 'aws-cdk-lib/aws-rds';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { isolatedVpc, newStack, resourcesAllowing, routerConfig, statementsAllowing } from './helpers';
import { ModelTier, TieredRouter, type IModelTier } from '../../constructs';
import type { IReadReplicaDatabase } from '../../constructs/data/database-interface';

const USER = 'router';

/** The shape of ReadReplicaDatabase (built elsewhere), for the router's side of the contract. */
class TestDatabase extends Construct implements IReadReplicaDatabase {
  readonly cluster: rds.DatabaseCluster;
  readonly proxy: rds.DatabaseProxy;
  readonly writerEndpoint: rds.Endpoint;
  readonly readerEndpoint: rds.Endpoint;
  readonly databaseName = 'app';
  readonly username = USER;
  readonly iamAuthentication: boolean;
  readonly secret: secretsmanager.ISecret;
  readonly connections: ec2.Connections;

  constructor(scope: Construct, id: string, vpc: ec2.IVpc, iamAuth: boolean) {
    super(scope, id);
    this.cluster = new rds.DatabaseCluster(this, 'Cluster', {
      engine: rds.DatabaseClusterEngine.auroraPostgres({ version: rds.AuroraPostgresEngineVersion.VER_16_4 }),
      writer: rds.ClusterInstance.serverlessV2('Writer'),
      readers: [rds.ClusterInstance.serverlessV2('Reader', { scaleWithWriter: true })],
      vpc,
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
      defaultDatabaseName: this.databaseName,
      storageEncrypted: true,
    });
    this.secret = this.cluster.secret!;
    this.proxy = this.cluster.addProxy('Proxy', { secrets: [this.secret], vpc, vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED }, iamAuth, requireTLS: true });
    const reader = new rds.CfnDBProxyEndpoint(this, 'ReaderEndpoint', {
      dbProxyEndpointName: 'test-reader',
      dbProxyName: this.proxy.dbProxyName,
      vpcSubnetIds: vpc.selectSubnets({ subnetType: ec2.SubnetType.PRIVATE_ISOLATED }).subnetIds,
      targetRole: 'READ_ONLY',
    });
    this.writerEndpoint = new rds.Endpoint(this.proxy.endpoint, 5432);
    this.readerEndpoint = new rds.Endpoint(reader.attrEndpoint, 5432);
    this.iamAuthentication = iamAuth;
    // A proxy's own Connections have no default port; the interface promises one.
    this.connections = new ec2.Connections({ securityGroups: this.proxy.connections.securityGroups, defaultPort: ec2.Port.tcp(5432) });
  }

  grantConnect(grantee: iam.IGrantable): iam.Grant {
    return this.iamAuthentication ? this.proxy.grantConnect(grantee, USER) : this.secret.grantRead(grantee);
  }
}

function smallTier(): IModelTier {
  return ModelTier.bedrock({ tierId: 'small', modelId: 'amazon.nova-micro-v1:0', inputPricePer1kTokens: 0.000035, outputPricePer1kTokens: 0.00014 });
}

describe('TieredRouter: userProfiles on a database behind RDS Proxy with IAM authentication', () => {
  let stack: Stack;
  let template: Template;
  let router: TieredRouter;
  let database: TestDatabase;

  beforeAll(() => {
    stack = newStack();
    const vpc = isolatedVpc(stack);
    database = new TestDatabase(stack, 'Db', vpc, true);
    router = new TieredRouter(stack, 'Router', { tiers: [smallTier()], vpc, userProfiles: { database, timeout: Duration.millis(300) } });
    template = Template.fromStack(stack);
  });

  test('the router function may connect as the database user (rds-db:connect on the proxy)', () => {
    const resources = JSON.stringify(resourcesAllowing(template, 'rds-db:connect'));
    expect(resources).toContain(':dbuser:');
    expect(resources).toContain(`/${USER}`);
    // The proxy's resource id (Fn::Select of its ARN): the grant names this proxy.
    expect(JSON.stringify(statementsAllowing(template, 'rds-db:connect'))).toContain(stack.getLogicalId(database.proxy.node.defaultChild as rds.CfnDBProxy));
  });

  test('the proxy\'s security group admits the router function on the proxy port, and nothing else was opened for it', () => {
    const fnSg = stack.getLogicalId(router.function.connections.securityGroups[0].node.defaultChild as ec2.CfnSecurityGroup);
    const proxySg = stack.getLogicalId(database.proxy.connections.securityGroups[0].node.defaultChild as ec2.CfnSecurityGroup);
    template.hasResourceProperties('AWS::EC2::SecurityGroupIngress', {
      GroupId: { 'Fn::GetAtt': [proxySg, 'GroupId'] },
      SourceSecurityGroupId: { 'Fn::GetAtt': [fnSg, 'GroupId'] },
      IpProtocol: 'tcp',
      FromPort: 5432,
      ToPort: 5432,
    });
  });

  test('the runtime configuration names the writer and reader endpoints, the database, the user and IAM auth', () => {
    const config = routerConfig(template).userProfiles;
    const proxy = stack.getLogicalId(database.proxy.node.defaultChild as rds.CfnDBProxy);
    expect(config).toMatchObject({
      writer: { host: `\${GetAtt:${proxy}.Endpoint}`, port: 5432 },
      reader: { host: `\${GetAtt:${stack.getLogicalId(database.node.findChild('ReaderEndpoint') as rds.CfnDBProxyEndpoint)}.Endpoint}`, port: 5432 },
      database: 'app',
      username: USER,
      auth: 'iam',
      table: 'user_profiles',
      timeoutMs: 300,
    });
    expect(config.secretArn).toBeUndefined();
  });

  test('GET and PUT /v1/profile are routes of the API, with the router\'s authorizer', () => {
    for (const routeKey of ['GET /v1/profile', 'PUT /v1/profile']) {
      template.hasResourceProperties('AWS::ApiGatewayV2::Route', { RouteKey: routeKey, AuthorizationType: 'AWS_IAM' });
    }
  });
});

describe('TieredRouter: userProfiles with the secret\'s password', () => {
  test('auth "secret" with the secret ARN, and read access to the secret', () => {
    const stack = newStack();
    const vpc = isolatedVpc(stack);
    const database = new TestDatabase(stack, 'Db', vpc, false);
    new TieredRouter(stack, 'Router', { tiers: [smallTier()], vpc, userProfiles: { database, tableName: 'profiles.users' } });
    const template = Template.fromStack(stack);
    const config = routerConfig(template).userProfiles;
    // The cluster's secret as attached to the cluster.
    expect(config).toMatchObject({ auth: 'secret', secretArn: expect.stringMatching(/^\$\{Ref:DbClusterSecretAttachment[0-9A-F]{8}\}$/), table: 'profiles.users', timeoutMs: 500 });
    expect(JSON.stringify(statementsAllowing(template, 'secretsmanager:GetSecretValue'))).toContain('DbClusterSecretAttachment');
  });
});

describe('TieredRouter: userProfiles synth errors', () => {
  test('without a vpc, naming the prop', () => {
    const stack = newStack();
    const database = new TestDatabase(stack, 'Db', isolatedVpc(stack), true);
    expect(() => new TieredRouter(stack, 'Router', { tiers: [smallTier()], userProfiles: { database } }))
      .toThrow(/vpc is required with userProfiles/);
  });

  test.each([
    [{ tableName: 'User-Profiles' }, /userProfiles.tableName/],
    [{ timeout: Duration.millis(10) }, /userProfiles.timeout/],
    [{ timeout: Duration.seconds(6) }, /userProfiles.timeout/],
  ])('invalid %j', (options, error) => {
    const stack = newStack();
    const vpc = isolatedVpc(stack);
    const database = new TestDatabase(stack, 'Db', vpc, true);
    expect(() => new TieredRouter(stack, 'Router', { tiers: [smallTier()], vpc, userProfiles: { database, ...options } })).toThrow(error);
  });
});
