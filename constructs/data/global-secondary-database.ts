import { RemovalPolicy, Stack, Token, Validations } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as rds from 'aws-cdk-lib/aws-rds';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import type { IReadReplicaDatabase } from './database-interface';
import { generatedIdentifier } from './identifiers';
import { grantSecretRead } from '../internal/secret-grant';
import { selectPrivateSubnets } from '../internal/subnets';

const POSTGRES_PORT = 5432;

/** The Regions each primary's secret is already replicated to (a Region may hold one replica only). */
const replicatedRegions = new WeakMap<secretsmanager.ISecret, Set<string>>();

/** Properties of a {@link GlobalSecondaryDatabase}. */
export interface GlobalSecondaryDatabaseProps {
  /**
   * The primary: a `ReadReplicaDatabase` with `globalDatabase: true`, in a stack of another
   * Region of the same app. Its stack is deployed first (the secondary's stack depends on it).
   */
  readonly primary: IReadReplicaDatabase;
  /** The VPC of the secondary cluster, in this stack's Region. */
  readonly vpc: ec2.IVpc;
  /**
   * Subnets of the cluster (at least two Availability Zones). Public subnets are refused.
   * @default - the VPC's private subnets with egress if it has any, otherwise its isolated subnets
   */
  readonly vpcSubnets?: ec2.SubnetSelection;
  /**
   * Number of read-only instances of the secondary cluster (1 to 16).
   * @default 1
   */
  readonly instances?: number;
  /**
   * Provisioned instances of this type instead of Aurora Serverless v2.
   * @default - Aurora Serverless v2 (`db.serverless`)
   */
  readonly instanceType?: ec2.InstanceType;
  /**
   * Minimum ACUs of each Serverless v2 instance (0.5 to 256 in steps of 0.5): Aurora does not
   * pause the instances of a global database, so 0 is refused.
   * @default 0.5
   */
  readonly minCapacity?: number;
  /**
   * Maximum ACUs of each Serverless v2 instance (1 to 256 in steps of 0.5).
   * @default 4
   */
  readonly maxCapacity?: number;
  /**
   * The KMS key of this Region that encrypts the replicated storage, Performance Insights and
   * the exported log (a key of your own must let CloudWatch Logs of the Region use it).
   * @default - a new customer-managed key with yearly rotation
   */
  readonly encryptionKey?: kms.IKey;
  /**
   * Whether the cluster can be deleted only after turning this off.
   * @default true
   */
  readonly deletionProtection?: boolean;
  /**
   * What happens to the cluster and its instances when they leave the stack.
   * @default RemovalPolicy.SNAPSHOT
   */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * A secondary cluster of an Aurora Global Database, in another Region than its primary
 * `ReadReplicaDatabase` (`globalDatabase: true`): Aurora replicates the primary's storage into
 * it (typically within a second) and it serves reads in its Region; it can be promoted if the
 * primary's Region fails. It has its own KMS key, requires TLS, and sits in private subnets
 * behind a security group that admits only what is allowed through `connections`.
 *
 * It is an `IReadReplicaDatabase` for the handlers of its Region (`userProfiles.database`):
 * - reads go to its reader endpoint;
 * - writes go to its cluster endpoint, which forwards them to the primary's writer (Aurora
 *   global write forwarding, turned on here: DML only, no DDL; a forwarded write waits for the
 *   round trip to the primary's Region). Its sessions keep Aurora's default consistency
 *   (`apg_write_forward.consistency_mode` SESSION): a session sees its own forwarded writes;
 *   the profile store reads on other sessions, which see a write once it has replicated back;
 * - handlers sign in as the primary's master user with the password of the primary's secret,
 *   which this construct replicates into its Region (a Secrets Manager replica, encrypted with
 *   the Region's `aws/secretsmanager` key; rotation on the primary updates it). There is no RDS
 *   Proxy: a proxy on a secondary cluster serves reads only, and IAM authentication of the master
 *   user would turn off its password, which the primary's proxy and rotation use.
 *
 * The global database's identifier, the engine version and the secret's name are literals
 * generated at synth, so no cross-Region reference is needed; the secondary's stack is made to
 * depend on the primary's.
 */
export class GlobalSecondaryDatabase extends Construct implements IReadReplicaDatabase {
  /** The secondary cluster, as an `IDatabaseCluster` (for its metrics and attributes). */
  public readonly cluster: rds.IDatabaseCluster;
  /** The secondary cluster's CloudFormation resource. */
  public readonly cfnCluster: rds.CfnDBCluster;
  /** No RDS Proxy: handlers connect to the cluster's endpoints. */
  public readonly proxy?: rds.IDatabaseProxy;
  /** The cluster's reader endpoint (load-balanced over its instances). */
  public readonly readerEndpoint: rds.Endpoint;
  /** The cluster endpoint: reads, and writes that Aurora forwards to the primary's writer. */
  public readonly clusterEndpoint: rds.Endpoint;
  /** Where writes go from this Region: the cluster endpoint, with write forwarding. */
  public readonly writerEndpoint: rds.Endpoint;
  /** The primary's database, which handlers use here too. */
  public readonly databaseName: string;
  /** The primary's master user, whose password is in `secret`. */
  public readonly username: string;
  /** False: handlers sign in with the password of `secret`. */
  public readonly iamAuthentication: boolean;
  /** The replica, in this Region, of the primary's master secret. */
  public readonly secret: secretsmanager.ISecret;
  /** True: writes through `writerEndpoint` are forwarded to the primary's writer (DML only). */
  public readonly writeForwarding?: boolean;
  /** The security group of the cluster. */
  public readonly securityGroup: ec2.SecurityGroup;
  /** Who may connect: `connections.allowDefaultPortFrom(fn)` admits a function. */
  public readonly connections: ec2.Connections;
  /** The key of this Region that encrypts the cluster. */
  public readonly encryptionKey: kms.IKey;
  /** The global database the cluster belongs to. */
  public readonly globalClusterIdentifier?: string;

  constructor(scope: Construct, id: string, props: GlobalSecondaryDatabaseProps) {
    super(scope, id);
    const where = `GlobalSecondaryDatabase ${this.node.path}`;
    const { primary, vpc } = props;
    if (primary.globalClusterIdentifier === undefined || primary instanceof GlobalSecondaryDatabase) {
      throw new Error(`${where}: primary ${primary.node.path} is not the primary of a global database; create it with globalDatabase: true`);
    }
    const secretName = primary.globalSecretName;
    if (secretName === undefined || Token.isUnresolved(secretName) || !secretsmanager.Secret.isSecret(primary.secret)) {
      throw new Error(`${where}: the secret of primary ${primary.node.path} must be a Secrets Manager secret of the app with a literal name (globalSecretName), so that it can be replicated into this Region for the handlers to sign in`);
    }
    const globalClusterIdentifier = primary.globalClusterIdentifier;
    this.globalClusterIdentifier = globalClusterIdentifier;
    const stack = Stack.of(this);
    const primaryStack = Stack.of(primary);
    if (Token.isUnresolved(stack.region)) {
      throw new Error(`${where}: the stack needs an explicit Region (env: { region }): a global secondary lives in another Region than its primary`);
    }
    if (stack.region === primaryStack.region) {
      throw new Error(`${where}: the secondary is in ${stack.region}, the Region of its primary; an Aurora global database replicates into another Region`);
    }
    if (replicatedRegions.get(primary.secret)?.has(stack.region)) {
      throw new Error(`${where}: primary already has a secondary in ${stack.region}; an Aurora global database holds at most one cluster per Region`);
    }
    const version = primary.cluster.engine?.engineVersion?.fullVersion;
    if (version === undefined || Token.isUnresolved(version)) {
      throw new Error(`${where}: the primary's engine version is unknown at synth; the secondary must run the same version`);
    }
    if (!supportsGlobalWriteForwarding(version)) {
      throw new Error(`${where}: the primary runs Aurora PostgreSQL ${version}, but global write forwarding (how this Region's handlers write) needs 14.9, 15.4, 16 or later; upgrade the primary's engineVersion`);
    }
    const instances = props.instances ?? 1;
    if (!Number.isInteger(instances) || instances < 1 || instances > 16) {
      throw new Error(`${where}: instances must be an integer from 1 to 16; got ${instances}`);
    }
    const serverless = props.instanceType === undefined;
    if (!serverless && (props.minCapacity !== undefined || props.maxCapacity !== undefined)) {
      throw new Error(`${where}: minCapacity and maxCapacity apply to Aurora Serverless v2 only; remove them or instanceType`);
    }
    const min = props.minCapacity ?? 0.5;
    const max = props.maxCapacity ?? 4;
    if (min === 0) {
      throw new Error(`${where}: minCapacity 0 (auto-pause) is refused: Aurora does not pause the instances of a global database; use at least 0.5`);
    }
    if (!Number.isInteger(min * 2) || min < 0.5 || min > 256) throw new Error(`${where}: minCapacity must be from 0.5 to 256 in steps of 0.5; got ${min}`);
    if (!Number.isInteger(max * 2) || max < 1 || max > 256) throw new Error(`${where}: maxCapacity must be from 1 to 256 in steps of 0.5; got ${max}`);
    if (max < min) throw new Error(`${where}: maxCapacity (${max}) must be at least minCapacity (${min})`);

    if (primaryStack !== stack) {
      stack.addStackDependency(primaryStack, 'the global database exists before its secondary cluster joins it');
    }
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.SNAPSHOT;
    const selected = selectPrivateSubnets(vpc, props.vpcSubnets, 'GlobalSecondaryDatabase');

    this.encryptionKey = props.encryptionKey ?? new kms.Key(this, 'Key', {
      description: `cdk-scalable-ai ${this.node.path}: Aurora global secondary storage, Performance Insights and log`,
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.encryptionKey.grantEncryptDecrypt(new iam.ServicePrincipal(`logs.${stack.region}.${stack.urlSuffix}`));

    this.securityGroup = new ec2.SecurityGroup(this, 'SecurityGroup', {
      vpc,
      description: `cdk-scalable-ai ${this.node.path}: Aurora global secondary, admits only what is granted`,
      allowAllOutbound: false,
    });
    this.connections = new ec2.Connections({ securityGroups: [this.securityGroup], defaultPort: ec2.Port.tcp(POSTGRES_PORT) });

    const subnetGroup = new rds.SubnetGroup(this, 'Subnets', {
      vpc,
      vpcSubnets: { subnets: selected.subnets },
      description: `cdk-scalable-ai ${this.node.path}: subnets of the Aurora global secondary`,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const engine = rds.DatabaseClusterEngine.auroraPostgres({ version: rds.AuroraPostgresEngineVersion.of(version, version.split('.')[0]) });
    const parameterGroup = new rds.ParameterGroup(this, 'ParameterGroup', { engine, parameters: { 'rds.force_ssl': '1' } });

    const clusterIdentifier = generatedIdentifier(this, 'db');
    const logGroup = new logs.LogGroup(this, 'PostgresLog', {
      logGroupName: `/aws/rds/cluster/${clusterIdentifier}/postgresql`,
      encryptionKey: this.encryptionKey,
      retention: logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.RETAIN,
    });

    this.cfnCluster = new rds.CfnDBCluster(this, 'Cluster', {
      dbClusterIdentifier: clusterIdentifier,
      globalClusterIdentifier,
      engine: 'aurora-postgresql',
      engineVersion: version,
      dbSubnetGroupName: subnetGroup.subnetGroupName,
      vpcSecurityGroupIds: [this.securityGroup.securityGroupId],
      dbClusterParameterGroupName: parameterGroup.bindToCluster({}).parameterGroupName,
      port: POSTGRES_PORT,
      storageEncrypted: true,
      kmsKeyId: this.encryptionKey.keyArn,
      enableIamDatabaseAuthentication: true,
      // Writes of this Region's handlers go to the primary's writer through the secondary.
      enableGlobalWriteForwarding: true,
      deletionProtection: props.deletionProtection ?? true,
      enableCloudwatchLogsExports: ['postgresql'],
      copyTagsToSnapshot: true,
      ...(serverless ? { serverlessV2ScalingConfiguration: { minCapacity: min, maxCapacity: max } } : {}),
    });
    this.cfnCluster.applyRemovalPolicy(removalPolicy);
    this.cfnCluster.node.addDependency(logGroup);

    for (let i = 1; i <= instances; i++) {
      const instance = new rds.CfnDBInstance(this, `Instance${i}`, {
        dbClusterIdentifier: this.cfnCluster.ref,
        dbInstanceClass: serverless ? 'db.serverless' : `db.${props.instanceType!.toString()}`,
        engine: 'aurora-postgresql',
        publiclyAccessible: false,
        promotionTier: 1,
        enablePerformanceInsights: true,
        performanceInsightsKmsKeyId: this.encryptionKey.keyArn,
        performanceInsightsRetentionPeriod: 7,
      });
      instance.applyRemovalPolicy(removalPolicy === RemovalPolicy.SNAPSHOT ? RemovalPolicy.DESTROY : removalPolicy);
    }

    this.clusterEndpoint = new rds.Endpoint(this.cfnCluster.attrEndpointAddress, POSTGRES_PORT);
    this.readerEndpoint = new rds.Endpoint(this.cfnCluster.attrReadEndpointAddress, POSTGRES_PORT);
    this.writerEndpoint = this.clusterEndpoint;
    this.writeForwarding = true;
    this.cluster = rds.DatabaseCluster.fromDatabaseClusterAttributes(this, 'ClusterAttributes', {
      clusterIdentifier: this.cfnCluster.ref,
      clusterResourceIdentifier: this.cfnCluster.attrDbClusterResourceId,
      clusterEndpointAddress: this.cfnCluster.attrEndpointAddress,
      readerEndpointAddress: this.cfnCluster.attrReadEndpointAddress,
      port: POSTGRES_PORT,
      securityGroups: [this.securityGroup],
      engine,
    });

    this.databaseName = primary.databaseName;
    this.username = primary.username;
    this.iamAuthentication = false;
    replicateSecret(primary.secret as secretsmanager.Secret, stack.region);
    // A replica keeps the primary's name (and random suffix) in its own Region.
    this.secret = secretsmanager.Secret.fromSecretNameV2(this, 'Secret', secretName);

    Validations.of(this).acknowledge(
      { id: 'AwsSolutions-RDS11', reason: 'The cluster listens on the PostgreSQL port 5432 like its primary; a non-default port hides nothing, the security group admits only what is granted.' },
      { id: 'NIST.800.53.R5-RDSInBackupPlan', reason: 'A global secondary replicates the primary, whose automated backups and snapshots protect the data; an AWS Backup plan is the account\'s choice.' },
      { id: 'NIST.800.53.R5-RDSEnhancedMonitoringEnabled', reason: 'Performance Insights and the CloudWatch metrics watch the instances; Enhanced Monitoring would bill CloudWatch Logs for every instance around the clock.' },
    );
  }

  /**
   * Grants `grantee` read access to the replica of the primary's secret in this Region, whose
   * password signs it in as `username`. Network access is separate:
   * `database.connections.allowDefaultPortFrom(fn)`.
   */
  public grantConnect(grantee: iam.IGrantable): iam.Grant {
    return grantSecretRead(this.secret, grantee);
  }

  /** How far the secondary lags behind the primary, in milliseconds (`AuroraGlobalDBReplicationLag`, maximum). */
  public metricReplicationLag(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: 'AWS/RDS',
      metricName: 'AuroraGlobalDBReplicationLag',
      dimensionsMap: { DBClusterIdentifier: this.cfnCluster.ref },
      statistic: 'Maximum',
      ...props,
    });
  }
}

/** Whether Aurora PostgreSQL `version` supports global write forwarding: 14.9+, 15.4+, 16 and later. */
function supportsGlobalWriteForwarding(version: string): boolean {
  const [major, minor] = version.split('.').map((part) => Number.parseInt(part, 10));
  if (major >= 16) return true;
  if (major === 15) return minor >= 4;
  if (major === 14) return minor >= 9;
  return false;
}

/** Adds `region` to the replica Regions of `secret` (the constructor refused a second secondary in it). */
function replicateSecret(secret: secretsmanager.Secret, region: string): void {
  const regions = replicatedRegions.get(secret) ?? new Set<string>();
  secret.addReplicaRegion(region);
  regions.add(region);
  replicatedRegions.set(secret, regions);
}
