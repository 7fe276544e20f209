/** VectorStore.auroraPgvector(): wiring that cannot go wrong (cross-stack, imported clusters) and what is refused at synth. */
import { App, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as rds from 'aws-cdk-lib/aws-rds';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { isolatedVpc, newApp, newStack } from './helpers';
import { ModelTier, TieredRouter, VectorStore, type IModelTier } from '../../constructs';

function tier(): IModelTier {
  return ModelTier.bedrock({ tierId: 'small', modelId: 'amazon.nova-micro-v1:0', inputPricePer1kTokens: 0.000035, outputPricePer1kTokens: 0.00014 });
}

const POSTGRES_16 = rds.DatabaseClusterEngine.auroraPostgres({ version: rds.AuroraPostgresEngineVersion.VER_16_6 });

function cluster(stack: Stack, vpc: ec2.IVpc, engine: rds.IClusterEngine = POSTGRES_16): rds.DatabaseCluster {
  return new rds.DatabaseCluster(stack, 'Db', {
    engine,
    writer: rds.ClusterInstance.serverlessV2('Writer'),
    vpc,
    vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
  });
}

function routerOn(stack: Stack, vpc: ec2.IVpc, db: rds.IDatabaseCluster, secret: secretsmanager.ISecret): TieredRouter {
  return new TieredRouter(stack, 'Router', { tiers: [tier()], vpc, semanticCache: { vectorStore: VectorStore.auroraPgvector({ cluster: db, secret }) } });
}

/** Ingress rules on port 5432 (or the cluster's port attribute) of a template. */
function ingressRules(template: Template): Array<Record<string, any>> {
  return Object.values(template.findResources('AWS::EC2::SecurityGroupIngress')).map((r) => r.Properties);
}

describe('a cluster in another stack', () => {
  test('synthesizes without a cycle; the rule admitting the router is in the router\'s stack', () => {
    const app = new App();
    const data = new Stack(app, 'ImpCData');
    const vpc = isolatedVpc(data);
    const db = cluster(data, vpc);
    const svc = new Stack(app, 'ImpCSvc');
    const router = routerOn(svc, vpc, db, db.secret!);
    expect(() => app.synth()).not.toThrow();

    const routerSg = svc.resolve(router.function.connections.securityGroups[0].securityGroupId);
    const rules = ingressRules(Template.fromStack(svc));
    expect(rules).toEqual([expect.objectContaining({ SourceSecurityGroupId: routerSg, GroupId: { 'Fn::ImportValue': expect.stringMatching(/^ImpCData:ExportsOutputFnGetAttDbSecurityGroup/) } })]);
    expect(ingressRules(Template.fromStack(data))).toEqual([]);
  });

  test('with the generated secret under a customer-managed key of the data stack: no cycle, the key is used through the router\'s own policy', () => {
    const app = newApp();
    const data = new Stack(app, 'KeyData');
    const vpc = isolatedVpc(data);
    const key = new kms.Key(data, 'Key', { enableKeyRotation: true });
    const db = new rds.DatabaseCluster(data, 'Db', {
      engine: POSTGRES_16,
      writer: rds.ClusterInstance.serverlessV2('Writer'),
      vpc,
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
      credentials: rds.Credentials.fromGeneratedSecret('postgres', { encryptionKey: key }),
    });
    const svc = new Stack(app, 'KeySvc');
    routerOn(svc, vpc, db, db.secret!);
    // Secret.grantRead() would name the router's role in the key policy of the data stack.
    expect(() => app.synth()).not.toThrow();
    expect(JSON.stringify(Template.fromStack(data).findResources('AWS::KMS::Key'))).not.toContain('KeySvc');
    const decrypt = JSON.stringify(Template.fromStack(svc).findResources('AWS::IAM::Policy'));
    expect(decrypt).toContain('"kms:ViaService"');
    expect(decrypt).toMatch(/OutputFnGetAttKey[0-9A-F]+Arn/);
  });
});

test('in isolated subnets, the router is told it needs Secrets Manager for the database secret', () => {
  const stack = newStack();
  const vpc = isolatedVpc(stack);
  vpc.addInterfaceEndpoint('Bedrock', { service: ec2.InterfaceVpcEndpointAwsService.BEDROCK_RUNTIME });
  const db = cluster(stack, vpc);
  routerOn(stack, vpc, db, db.secret!);
  Annotations.fromStack(stack).hasWarning('/TestStack/Router/Handler/Function',
    Match.stringLikeRegexp('lacks the endpoints it calls: com\\.amazonaws\\.<region>\\.secretsmanager \\(interface\\)\\. Add them'));
});

describe('an imported cluster', () => {
  const attrs = { clusterIdentifier: 'shop-db', clusterEndpointAddress: 'shop-db.cluster-abc.eu-west-1.rds.amazonaws.com', port: 5432 };

  test('with securityGroups: the router is admitted on the port of the import', () => {
    const stack = newStack();
    const vpc = isolatedVpc(stack);
    const db = rds.DatabaseCluster.fromDatabaseClusterAttributes(stack, 'Db', {
      ...attrs,
      securityGroups: [ec2.SecurityGroup.fromSecurityGroupId(stack, 'DbSg', 'sg-0123456789abcdef0')],
      engine: rds.DatabaseClusterEngine.auroraPostgres({ version: rds.AuroraPostgresEngineVersion.VER_15_4 }),
    });
    const router = routerOn(stack, vpc, db, secretsmanager.Secret.fromSecretNameV2(stack, 'Secret', 'shop-db'));
    expect(ingressRules(Template.fromStack(stack))).toEqual([expect.objectContaining({
      GroupId: 'sg-0123456789abcdef0', FromPort: 5432, ToPort: 5432, SourceSecurityGroupId: stack.resolve(router.function.connections.securityGroups[0].securityGroupId),
    })]);
  });

  test('without securityGroups: refused, naming the prop', () => {
    const stack = newStack();
    const vpc = isolatedVpc(stack);
    const db = rds.DatabaseCluster.fromDatabaseClusterAttributes(stack, 'Db', attrs);
    expect(() => routerOn(stack, vpc, db, secretsmanager.Secret.fromSecretNameV2(stack, 'Secret', 'shop-db')))
      .toThrow(/the Aurora cluster has no security groups.*import it with securityGroups/);
  });

  test('with an Aurora MySQL engine given: refused', () => {
    const stack = newStack();
    const vpc = isolatedVpc(stack);
    const db = rds.DatabaseCluster.fromDatabaseClusterAttributes(stack, 'Db', {
      ...attrs,
      securityGroups: [ec2.SecurityGroup.fromSecurityGroupId(stack, 'DbSg', 'sg-0123456789abcdef0')],
      engine: rds.DatabaseClusterEngine.auroraMysql({ version: rds.AuroraMysqlEngineVersion.VER_3_08_0 }),
    });
    expect(() => routerOn(stack, vpc, db, secretsmanager.Secret.fromSecretNameV2(stack, 'Secret', 'shop-db'))).toThrow(/runs aurora-mysql; pgvector needs Aurora PostgreSQL/);
  });
});

describe('clusters that cannot serve the semantic cache', () => {
  test('Aurora MySQL', () => {
    const stack = newStack();
    const vpc = isolatedVpc(stack);
    const db = cluster(stack, vpc, rds.DatabaseClusterEngine.auroraMysql({ version: rds.AuroraMysqlEngineVersion.VER_3_08_0 }));
    expect(() => routerOn(stack, vpc, db, db.secret!)).toThrow(/TieredRouter: semanticCache.vectorStore: the cluster runs aurora-mysql; pgvector needs Aurora PostgreSQL/);
  });

  test.each([
    ['15.3', rds.AuroraPostgresEngineVersion.VER_15_3],
    ['14.8', rds.AuroraPostgresEngineVersion.VER_14_8],
    ['13.11', rds.AuroraPostgresEngineVersion.VER_13_11],
    ['11.21', rds.AuroraPostgresEngineVersion.VER_11_21],
  ])('Aurora PostgreSQL %s (pgvector older than 0.5.0, no HNSW)', (version, engineVersion) => {
    const stack = newStack();
    const vpc = isolatedVpc(stack);
    const db = cluster(stack, vpc, rds.DatabaseClusterEngine.auroraPostgres({ version: engineVersion }));
    expect(() => routerOn(stack, vpc, db, db.secret!)).toThrow(new RegExp(`Aurora PostgreSQL ${version.replace('.', '\\.')} has no pgvector HNSW indexes`));
  });

  test.each([
    ['15.4', rds.AuroraPostgresEngineVersion.VER_15_4],
    ['14.9', rds.AuroraPostgresEngineVersion.VER_14_9],
    ['13.12', rds.AuroraPostgresEngineVersion.VER_13_12],
    ['12.16', rds.AuroraPostgresEngineVersion.VER_12_16],
  ])('Aurora PostgreSQL %s is accepted', (_version, engineVersion) => {
    const stack = newStack();
    const vpc = isolatedVpc(stack);
    const db = cluster(stack, vpc, rds.DatabaseClusterEngine.auroraPostgres({ version: engineVersion }));
    expect(() => routerOn(stack, vpc, db, db.secret!)).not.toThrow();
  });

  test('a cluster in another VPC', () => {
    const stack = newStack();
    const routerVpc = isolatedVpc(stack);
    const dbVpc = new ec2.Vpc(stack, 'DbVpc', { maxAzs: 2, natGateways: 0, subnetConfiguration: [{ name: 'data', subnetType: ec2.SubnetType.PRIVATE_ISOLATED }] });
    const db = cluster(stack, dbVpc);
    expect(() => routerOn(stack, routerVpc, db, db.secret!)).toThrow(/the Aurora cluster is in another VPC \(TestStack\/DbVpc\) than the router \(TestStack\/Vpc\)/);
  });
});
