import { Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as rds from 'aws-cdk-lib/aws-rds';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import type { IReadReplicaDatabase } from './database-interface';
import { generatedIdentifier } from './identifiers';
import { grantSecretRead } from '../internal/secret-grant';
import { selectPrivateSubnets, withoutEgress } from '../internal/subnets';

/** The engine version of a new database: a 16.x with Serverless v2 auto-pause and pgvector HNSW indexes. */
const DEFAULT_AURORA_POSTGRES_VERSION = rds.AuroraPostgresEngineVersion.VER_16_11;

/** The port of Aurora PostgreSQL and of RDS Proxy for PostgreSQL. */
const POSTGRES_PORT = 5432;

/** Properties of a {@link ReadReplicaDatabase}. */
export interface ReadReplicaDatabaseProps {
  /** The VPC of the cluster and the proxy (the handlers that connect must be in it). */
  readonly vpc: ec2.IVpc;
  /**
   * Subnets of the cluster, the proxy and the rotation function; at least two Availability
   * Zones. Public subnets are refused.
   * @default - the VPC's private subnets with egress if it has any, otherwise its isolated subnets
   */
  readonly vpcSubnets?: ec2.SubnetSelection;
  /**
   * The Aurora PostgreSQL version. Auto-pause (`minCapacity: 0`) needs 13.15, 14.12, 15.7, 16.3
   * or later; the pgvector store needs HNSW indexes (16 has them).
   * @default AuroraPostgresEngineVersion.VER_16_11
   */
  readonly engineVersion?: rds.AuroraPostgresEngineVersion;
  /**
   * The database created in the cluster, which the handlers use.
   * @default 'app'
   */
  readonly databaseName?: string;
  /**
   * The cluster's master user, whose generated password is kept in `secret`. The handlers
   * connect as this user: through the proxy the proxy signs them in with the secret's password
   * after checking their IAM token; without the proxy they read the secret. For a user with
   * fewer rights, create one in the database and give it a secret of its own.
   * @default 'app'
   */
  readonly username?: string;
  /**
   * Number of reader instances besides the writer (0 to 15). They are in promotion tier 1: they
   * scale with the writer (Serverless v2), pause and resume with it, and one of them becomes
   * the writer on failover. With 0, `readerEndpoint` is the writer's.
   * @default 1
   */
  readonly readers?: number;
  /**
   * Provisioned instances of this type for the writer and every reader instead of Aurora
   * Serverless v2 (`minCapacity`, `maxCapacity` and `autoPauseAfter` then do not apply).
   * @default - Aurora Serverless v2 (`db.serverless`)
   */
  readonly instanceType?: ec2.InstanceType;
  /**
   * Minimum Aurora capacity units of each Serverless v2 instance: 0 (auto-pause) or 0.5 to 256
   * in steps of 0.5. At 0 the instances pause after `autoPauseAfter` without connections and
   * cost nothing but storage while paused; the first connection after a pause waits while they
   * resume (about 15 seconds, longer after a pause of more than a day). An RDS Proxy (`proxy`,
   * on by default) keeps connections open to the instances, so with the proxy they never pause:
   * they idle at 0.5 ACU each. Set `proxy: false` to let a small phase pause.
   * @default 0
   */
  readonly minCapacity?: number;
  /**
   * Maximum Aurora capacity units of each Serverless v2 instance (1 to 256, in steps of 0.5).
   * @default 4
   */
  readonly maxCapacity?: number;
  /**
   * How long an instance must be without connections before it pauses (5 minutes to 1 day);
   * only with `minCapacity: 0`.
   * @default Duration.minutes(5) (the Aurora default)
   */
  readonly autoPauseAfter?: Duration;
  /**
   * Whether handlers connect through an RDS Proxy (IAM authentication required, TLS required):
   * it pools connections, so a burst of Lambda functions does not exhaust the database's
   * connections, and it keeps them open through a failover. It bills a minimum of 8 ACUs for
   * Aurora Serverless v2 (about $88 a month in us-east-1) and keeps the instances from pausing.
   * Without it, handlers connect to the cluster endpoints with the secret's password.
   * @default true
   */
  readonly proxy?: boolean;
  /**
   * The KMS key that encrypts the storage, the secret, Performance Insights and the exported
   * PostgreSQL log. A key of your own must let CloudWatch Logs of the Region use it
   * (`logs.<region>.amazonaws.com`), as the key created by default does.
   * @default - a new customer-managed key with yearly rotation
   */
  readonly encryptionKey?: kms.IKey;
  /**
   * How long automated backups are kept (1 to 35 days).
   * @default Duration.days(7)
   */
  readonly backupRetention?: Duration;
  /**
   * Whether the cluster (and the global database) can be deleted only after turning this off.
   * @default true
   */
  readonly deletionProtection?: boolean;
  /**
   * What happens to the cluster and its instances when they leave the stack.
   * @default RemovalPolicy.SNAPSHOT
   */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * How often the master password is rotated (1 to 1000 days). The rotation function runs in
   * `vpcSubnets` and calls the Secrets Manager API: through NAT, or, in isolated subnets,
   * through `secretsManagerEndpoint`.
   * @default Duration.days(30)
   */
  readonly rotationInterval?: Duration;
  /**
   * The Secrets Manager interface endpoint of the VPC (with private DNS), for the rotation
   * function; required when `vpcSubnets` are isolated (no route to the API otherwise). The
   * endpoint's security group is opened to the rotation function.
   * @default - the API is reached through the subnets' NAT
   */
  readonly secretsManagerEndpoint?: ec2.IInterfaceVpcEndpoint;
  /**
   * Whether the cluster is the primary of an Aurora Global Database, so that a
   * `GlobalSecondaryDatabase` in another Region can replicate it. Aurora does not pause the
   * instances of a global database: `minCapacity` must then be at least 0.5.
   * @default false
   */
  readonly globalDatabase?: boolean;
}

/**
 * An Aurora PostgreSQL cluster with one writer and `readers` readers (Aurora Serverless v2 by
 * default, provisioned instances with `instanceType`), behind an RDS Proxy that requires IAM
 * authentication and TLS: writes go to `writerEndpoint` (the proxy's default endpoint), reads
 * to `readerEndpoint` (a read-only proxy endpoint). The storage, the generated master secret
 * (rotated), Performance Insights and the PostgreSQL log are encrypted with one KMS key; the
 * cluster requires TLS (`rds.force_ssl`), keeps backups, has deletion protection and snapshots
 * on removal, and sits in private subnets behind security groups that admit only what is
 * allowed through `connections`.
 *
 * It can host the semantic cache's pgvector table:
 * `VectorStore.auroraPgvector({ cluster: db.cluster, secret: db.secret, databaseName: db.databaseName })`.
 */
export class ReadReplicaDatabase extends Construct implements IReadReplicaDatabase {
  public readonly cluster: rds.IDatabaseCluster;
  public readonly proxy?: rds.IDatabaseProxy;
  /** The cluster as created (for its Serverless v2 metrics). */
  private readonly databaseCluster: rds.DatabaseCluster;
  public readonly writerEndpoint: rds.Endpoint;
  public readonly readerEndpoint: rds.Endpoint;
  public readonly databaseName: string;
  public readonly username: string;
  public readonly iamAuthentication: boolean;
  public readonly secret: secretsmanager.ISecret;
  /** What handlers connect to: the proxy's security group, or the cluster's without a proxy. */
  public readonly connections: ec2.Connections;
  /** The security group of the cluster (admits the proxy and the rotation function). */
  public readonly securityGroup: ec2.SecurityGroup;
  /** The key that encrypts the storage, the secret, Performance Insights and the log. */
  public readonly encryptionKey: kms.IKey;
  /** The engine version, for a `GlobalSecondaryDatabase`. */
  public readonly engineVersion: rds.AuroraPostgresEngineVersion;
  /** The identifier of the Aurora Global Database (with `globalDatabase`). */
  public readonly globalClusterIdentifier?: string;
  /** The global cluster (with `globalDatabase`). */
  public readonly globalCluster?: rds.CfnGlobalCluster;
  /** The literal name of `secret` (with `globalDatabase`), which a `GlobalSecondaryDatabase` replicates into its Region. */
  public readonly globalSecretName?: string;

  constructor(scope: Construct, id: string, props: ReadReplicaDatabaseProps) {
    super(scope, id);
    const where = `ReadReplicaDatabase ${this.node.path}`;
    const serverless = props.instanceType === undefined;
    const readers = props.readers ?? 1;
    if (!Number.isInteger(readers) || readers < 0 || readers > 15) {
      throw new Error(`${where}: readers must be an integer from 0 to 15; got ${readers}`);
    }
    const capacity = validateCapacity(where, props, serverless);
    if (props.globalDatabase && capacity.min === 0) {
      throw new Error(`${where}: Aurora does not pause the instances of a global database, so globalDatabase needs minCapacity of at least 0.5 (got 0)`);
    }
    const backupDays = (props.backupRetention ?? Duration.days(7)).toDays();
    if (!Number.isInteger(backupDays) || backupDays < 1 || backupDays > 35) {
      throw new Error(`${where}: backupRetention must be a whole number of days from 1 to 35; got ${backupDays}`);
    }
    const rotationDays = (props.rotationInterval ?? Duration.days(30)).toDays();
    if (rotationDays < 1 || rotationDays > 1000) {
      throw new Error(`${where}: rotationInterval must be from 1 to 1000 days; got ${rotationDays}`);
    }
    this.databaseName = props.databaseName ?? 'app';
    this.username = props.username ?? 'app';
    if (!/^[A-Za-z][A-Za-z0-9_]{0,62}$/.test(this.databaseName)) {
      throw new Error(`${where}: databaseName must be 1-63 letters, digits or "_", starting with a letter; got "${this.databaseName}"`);
    }
    if (!/^[A-Za-z][A-Za-z0-9_]{0,62}$/.test(this.username) || ['postgres', 'rdsadmin', 'admin'].includes(this.username.toLowerCase())) {
      throw new Error(`${where}: username must be 1-63 letters, digits or "_", starting with a letter, and not a reserved name (postgres, rdsadmin, admin); got "${this.username}"`);
    }

    const { vpc } = props;
    const selected = selectPrivateSubnets(vpc, props.vpcSubnets, 'ReadReplicaDatabase');
    if (withoutEgress(vpc, selected) && !props.secretsManagerEndpoint) {
      throw new Error(`${where}: vpcSubnets are isolated, so the password rotation function reaches Secrets Manager only through an interface endpoint: `
        + 'set secretsManagerEndpoint (vpc.addInterfaceEndpoint(\'SecretsManager\', { service: InterfaceVpcEndpointAwsService.SECRETS_MANAGER })) or choose private subnets with egress');
    }
    const subnets: ec2.SubnetSelection = { subnets: selected.subnets };
    const useProxy = props.proxy ?? true;
    this.iamAuthentication = useProxy;
    this.engineVersion = props.engineVersion ?? DEFAULT_AURORA_POSTGRES_VERSION;
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.SNAPSHOT;
    const deletionProtection = props.deletionProtection ?? true;

    const stack = Stack.of(this);
    if (props.encryptionKey) {
      this.encryptionKey = props.encryptionKey;
    } else {
      const key = new kms.Key(this, 'Key', {
        description: `cdk-scalable-ai ${this.node.path}: Aurora storage, secret, Performance Insights and log`,
        enableKeyRotation: true,
        removalPolicy: RemovalPolicy.RETAIN,
      });
      this.encryptionKey = key;
    }
    // The exported log group is encrypted with the key: CloudWatch Logs of the Region must be able to use it.
    this.encryptionKey.grantEncryptDecrypt(new iam.ServicePrincipal(`logs.${stack.region}.${stack.urlSuffix}`));

    this.securityGroup = new ec2.SecurityGroup(this, 'SecurityGroup', {
      vpc,
      description: `cdk-scalable-ai ${this.node.path}: Aurora cluster, admits only its proxy, its rotation function and what is granted`,
      allowAllOutbound: false,
    });

    // A literal identifier, so that the log group exists (encrypted, with a retention) before
    // Aurora would create one of its own, and so a global secondary can name the cluster's
    // global database without a cross-Region reference.
    const clusterIdentifier = generatedIdentifier(this, 'db');
    // With globalDatabase the master secret is created here, under a literal name, and `secret`
    // is that secret itself (not its attachment to the cluster): a GlobalSecondaryDatabase adds a
    // replica in its Region (Secret.addReplicaRegion) and names the replica there.
    // Not "-secret": a name ending in a hyphen and six characters reads as a partial ARN with
    // Secrets Manager's random suffix, so GetSecretValue by the replica's partial ARN would miss.
    this.globalSecretName = props.globalDatabase ? generatedIdentifier(this, 'credentials') : undefined;
    const globalSecret = this.globalSecretName
      ? new rds.DatabaseSecret(this, 'Secret', { username: this.username, encryptionKey: this.encryptionKey, secretName: this.globalSecretName })
      : undefined;
    const logGroup = new logs.LogGroup(this, 'PostgresLog', {
      logGroupName: `/aws/rds/cluster/${clusterIdentifier}/postgresql`,
      encryptionKey: this.encryptionKey,
      retention: logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.RETAIN,
    });

    // Performance Insights at the free tier's 7 days, under the key, on the cluster and each instance.
    const insights = {
      enablePerformanceInsights: true,
      performanceInsightRetention: rds.PerformanceInsightRetention.DEFAULT,
      performanceInsightEncryptionKey: this.encryptionKey,
    };
    const instance = { publiclyAccessible: false, ...insights };
    const writer = serverless
      ? rds.ClusterInstance.serverlessV2('Writer', instance)
      : rds.ClusterInstance.provisioned('Writer', { instanceType: props.instanceType, ...instance });
    const readerInstances = Array.from({ length: readers }, (_, i) => serverless
      ? rds.ClusterInstance.serverlessV2(`Reader${i + 1}`, { scaleWithWriter: true, ...instance })
      : rds.ClusterInstance.provisioned(`Reader${i + 1}`, { instanceType: props.instanceType, promotionTier: 1, ...instance }));

    const cluster = new rds.DatabaseCluster(this, 'Cluster', {
      engine: rds.DatabaseClusterEngine.auroraPostgres({ version: this.engineVersion }),
      clusterIdentifier,
      writer,
      readers: readerInstances,
      vpc,
      vpcSubnets: subnets,
      securityGroups: [this.securityGroup],
      credentials: globalSecret
        ? rds.Credentials.fromSecret(globalSecret)
        : rds.Credentials.fromGeneratedSecret(this.username, { encryptionKey: this.encryptionKey }),
      defaultDatabaseName: this.databaseName,
      storageEncrypted: true,
      storageEncryptionKey: this.encryptionKey,
      iamAuthentication: true,
      deletionProtection,
      removalPolicy,
      backup: { retention: Duration.days(backupDays) },
      ...insights,
      databaseInsightsMode: rds.DatabaseInsightsMode.STANDARD,
      cloudwatchLogsExports: ['postgresql'],
      parameters: { 'rds.force_ssl': '1' },
      copyTagsToSnapshot: true,
      ...(serverless ? {
        serverlessV2MinCapacity: capacity.min,
        serverlessV2MaxCapacity: capacity.max,
        serverlessV2AutoPauseDuration: capacity.autoPauseAfter,
      } : {}),
    });
    this.cluster = cluster;
    this.databaseCluster = cluster;
    cluster.node.addDependency(logGroup);
    this.secret = globalSecret ?? cluster.secret!;

    cluster.addRotationSingleUser({
      automaticallyAfter: Duration.days(rotationDays),
      vpcSubnets: subnets,
      endpoint: props.secretsManagerEndpoint,
    });

    if (useProxy) {
      const proxySecurityGroup = new ec2.SecurityGroup(this, 'ProxySecurityGroup', {
        vpc,
        description: `cdk-scalable-ai ${this.node.path}: RDS Proxy, admits only what is granted`,
        allowAllOutbound: false,
      });
      // DatabaseProxy admits its security group on the cluster's port (and opens its egress there).
      const proxy = new rds.DatabaseProxy(this, 'Proxy', {
        proxyTarget: rds.ProxyTarget.fromCluster(this.cluster),
        secrets: [this.secret],
        vpc,
        vpcSubnets: subnets,
        securityGroups: [proxySecurityGroup],
        iamAuth: true,
        requireTLS: true,
      });
      this.proxy = proxy;
      this.connections = new ec2.Connections({ securityGroups: [proxySecurityGroup], defaultPort: ec2.Port.tcp(POSTGRES_PORT) });
      this.writerEndpoint = new rds.Endpoint(proxy.endpoint, POSTGRES_PORT);
      if (readers > 0) {
        const readOnly = new rds.CfnDBProxyEndpoint(this, 'ProxyReaderEndpoint', {
          dbProxyName: proxy.dbProxyName,
          dbProxyEndpointName: generatedIdentifier(this, 'ro'),
          vpcSubnetIds: selected.subnetIds,
          vpcSecurityGroupIds: [proxySecurityGroup.securityGroupId],
          targetRole: 'READ_ONLY',
        });
        this.readerEndpoint = new rds.Endpoint(readOnly.attrEndpoint, POSTGRES_PORT);
      } else {
        // A read-only proxy endpoint without a reader has no target.
        this.readerEndpoint = this.writerEndpoint;
      }
    } else {
      this.connections = cluster.connections;
      this.writerEndpoint = cluster.clusterEndpoint;
      this.readerEndpoint = readers > 0 ? cluster.clusterReadEndpoint : cluster.clusterEndpoint;
    }

    if (props.globalDatabase) {
      this.globalClusterIdentifier = generatedIdentifier(this, 'global');
      this.globalCluster = new rds.CfnGlobalCluster(this, 'GlobalCluster', {
        globalClusterIdentifier: this.globalClusterIdentifier,
        sourceDbClusterIdentifier: cluster.clusterArn,
        deletionProtection,
      });
      this.globalCluster.applyRemovalPolicy(removalPolicy === RemovalPolicy.SNAPSHOT ? RemovalPolicy.RETAIN : removalPolicy);
    }

    acknowledgeFindings(this);
  }

  /**
   * Grants `grantee` permission to connect as `username`: `rds-db:connect` on the proxy's
   * database user with the proxy, otherwise read access to the secret. Network access is
   * separate: `database.connections.allowDefaultPortFrom(fn)`.
   */
  public grantConnect(grantee: iam.IGrantable): iam.Grant {
    if (this.proxy) return this.proxy.grantConnect(grantee, this.username);
    return grantSecretRead(this.secret, grantee);
  }

  /** The capacity of the writer in ACUs (Serverless v2; 0 while paused). */
  public metricServerlessDatabaseCapacity(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.databaseCluster.metricServerlessDatabaseCapacity(props);
  }

  /** How far the readers lag behind the writer, in milliseconds (`AuroraReplicaLag`, maximum). */
  public metricReplicaLag(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.cluster.metric('AuroraReplicaLag', { statistic: 'Maximum', ...props });
  }

  /** Connections to the cluster's instances (`DatabaseConnections`). */
  public metricDatabaseConnections(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.databaseCluster.metricDatabaseConnections(props);
  }
}

interface Capacity {
  readonly min?: number;
  readonly max?: number;
  readonly autoPauseAfter?: Duration;
}

function validateCapacity(where: string, props: ReadReplicaDatabaseProps, serverless: boolean): Capacity {
  if (!serverless) {
    for (const name of ['minCapacity', 'maxCapacity', 'autoPauseAfter'] as const) {
      if (props[name] !== undefined) {
        throw new Error(`${where}: ${name} applies to Aurora Serverless v2 only; remove it or instanceType (which makes the instances provisioned)`);
      }
    }
    return {};
  }
  const min = props.minCapacity ?? 0;
  const max = props.maxCapacity ?? 4;
  const halfStep = (v: number) => Number.isInteger(v * 2);
  if (!halfStep(min) || min < 0 || min > 256 || min === 0.25) {
    throw new Error(`${where}: minCapacity must be 0 (auto-pause) or from 0.5 to 256 in steps of 0.5; got ${min}`);
  }
  if (!halfStep(max) || max < 1 || max > 256) {
    throw new Error(`${where}: maxCapacity must be from 1 to 256 in steps of 0.5; got ${max}`);
  }
  if (max < min) throw new Error(`${where}: maxCapacity (${max}) must be at least minCapacity (${min})`);
  const autoPauseAfter = props.autoPauseAfter;
  if (autoPauseAfter !== undefined) {
    if (min !== 0) throw new Error(`${where}: autoPauseAfter applies only with minCapacity: 0 (auto-pause); got minCapacity ${min}`);
    const seconds = autoPauseAfter.toSeconds();
    if (seconds < 300 || seconds > 86400) {
      throw new Error(`${where}: autoPauseAfter must be from 5 minutes to 1 day; got ${seconds} seconds`);
    }
  }
  return { min, max, autoPauseAfter };
}

/** The findings of cdk-nag on a database that are by design, with the reason. */
function acknowledgeFindings(db: ReadReplicaDatabase): void {
  Validations.of(db.cluster).acknowledge(
    { id: 'AwsSolutions-RDS11', reason: 'The cluster listens on the PostgreSQL port 5432, which its clients (pg, the pgvector store, RDS Proxy) expect; a non-default port hides nothing, the security group admits only the proxy, the rotation function and granted functions.' },
    { id: 'NIST.800.53.R5-RDSInBackupPlan', reason: 'Aurora keeps automated backups (backupRetention, 7 days by default) and snapshots on removal; an AWS Backup plan is the account\'s choice, not the construct\'s.' },
    { id: 'NIST.800.53.R5-RDSEnhancedMonitoringEnabled', reason: 'Performance Insights (Database Insights standard mode) and the cluster\'s CloudWatch metrics watch the instances; Enhanced Monitoring would bill CloudWatch Logs for every instance around the clock, also in a small phase.' },
  );
  if (db.proxy) {
    Validations.of(db.proxy).acknowledge({
      id: 'NIST.800.53.R5-IAMNoInlinePolicy',
      reason: 'DatabaseProxy grants its role read access to the one database secret (and its key) in the role\'s own policy; it belongs to this role alone.',
    });
  }
  // The rules on the cluster's security group open its port attribute, which cdk-nag cannot read.
  Validations.of(db.securityGroup).acknowledge(
    { id: 'NIST.800.53.R5-EC2RestrictedCommonPorts', reason: 'The rules open only the Aurora cluster\'s own port (its Endpoint.Port attribute, which cdk-nag cannot resolve) to the proxy and the rotation function\'s security groups, never to an address range.' },
    { id: 'NIST.800.53.R5-EC2RestrictedSSH', reason: 'The rules open only the Aurora cluster\'s own port (its Endpoint.Port attribute) to security groups of the construct; never SSH, never an address range.' },
  );
}
