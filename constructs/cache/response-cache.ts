import { Duration, RemovalPolicy, Token, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as elasticache from 'aws-cdk-lib/aws-elasticache';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { acknowledgeWithoutKey } from '../internal/encryption';
import { defaultPrivateSubnets } from '../internal/subnets';

/** Options of a {@link ResponseCache} that do not depend on where it is placed. */
export interface ResponseCacheOptions {
  /**
   * Node type of the replication group. Vector search (the semantic cache) is not available on
   * data-tiering (`r6gd`) nodes; on `t4g`/`t3` nodes the construct reserves the memory search
   * needs (30% on small, 50% on micro).
   * @default 'cache.t4g.medium'
   */
  readonly cacheNodeType?: string;
  /**
   * Valkey engine version. At least 8.2: the semantic cache needs its vector search.
   * @default '8.2'
   */
  readonly engineVersion?: string;
  /**
   * Read replicas besides the primary. With at least one, the group is Multi-AZ with
   * automatic failover.
   * @default 1
   */
  readonly replicas?: number;
  /**
   * How long an exact-cache entry lives.
   * @default Duration.days(1)
   */
  readonly exactCacheTtl?: Duration;
  /**
   * TCP port of the cache.
   * @default 6379
   */
  readonly port?: number;
  /**
   * KMS key for encryption at rest and for the AUTH token secret.
   * @default - AWS managed keys
   */
  readonly encryptionKey?: kms.IKey;
  /**
   * Days of automatic daily snapshots to keep (0 turns them off). The cache rebuilds itself from
   * traffic, but a snapshot restores a warm cache, and its static answers and user context,
   * after the group is lost or replaced. 15 or more satisfies NIST 800-53 R5's backup rule.
   * @default 1
   */
  readonly snapshotRetentionLimit?: number;
  /**
   * Daily time range (UTC, `hh24:mi-hh24:mi`, at least 60 minutes) of the automatic snapshot.
   * @default - chosen by ElastiCache
   */
  readonly snapshotWindow?: string;
  /**
   * Prefix of every key the library writes, so the cache can be shared with other data.
   * @default 'sai:'
   */
  readonly keyPrefix?: string;
  /**
   * What happens to the replication group and its secret when they leave the stack.
   * @default RemovalPolicy.DESTROY (a cache holds nothing that cannot be recomputed)
   */
  readonly removalPolicy?: RemovalPolicy;
}

/** Properties of a {@link ResponseCache}. */
export interface ResponseCacheProps extends ResponseCacheOptions {
  /** The VPC to place the cache in. */
  readonly vpc: ec2.IVpc;
  /**
   * Subnets of the cache nodes: private ones.
   * @default - the VPC's isolated subnets if it has any, otherwise its private subnets with egress
   */
  readonly vpcSubnets?: ec2.SubnetSelection;
}

const DEFAULT_ENGINE_VERSION = '8.2';

/**
 * The response cache: an ElastiCache for Valkey replication group (node-based, so that vector
 * search is available) encrypted in transit and at rest, with an AUTH token kept in Secrets
 * Manager, in private subnets behind a security group that admits only the handlers granted
 * access with {@link grantConnect}.
 *
 * The router uses it as the exact cache (a key per tenant + normalized request); the caches of
 * later levels (semantic, static answers, user context) live in the same group.
 */
export class ResponseCache extends Construct implements ec2.IConnectable {
  /** The replication group. */
  public readonly replicationGroup: elasticache.CfnReplicationGroup;
  /** The security group of the cache nodes. */
  public readonly securityGroup: ec2.ISecurityGroup;
  /** Connections of the cache nodes (ingress is opened per handler by {@link grantConnect}). */
  public readonly connections: ec2.Connections;
  /** The secret holding the AUTH token. */
  public readonly authSecret: secretsmanager.ISecret;
  /** Host name of the primary endpoint. */
  public readonly endpointAddress: string;
  /** Port of the cache. */
  public readonly port: number;
  /** Lifetime of exact-cache entries. */
  public readonly exactCacheTtl: Duration;
  /** Prefix of the library's keys. */
  public readonly keyPrefix: string;
  /** The engine version. */
  public readonly engineVersion: string;

  constructor(scope: Construct, id: string, props: ResponseCacheProps) {
    super(scope, id);
    const nodeType = props.cacheNodeType ?? 'cache.t4g.medium';
    this.engineVersion = props.engineVersion ?? DEFAULT_ENGINE_VERSION;
    const replicas = props.replicas ?? 1;
    this.port = props.port ?? 6379;
    this.exactCacheTtl = props.exactCacheTtl ?? Duration.days(1);
    this.keyPrefix = props.keyPrefix ?? 'sai:';
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.DESTROY;
    const snapshotRetentionLimit = props.snapshotRetentionLimit ?? 1;
    validate(props, nodeType, this.engineVersion, replicas, this.port, this.exactCacheTtl, this.keyPrefix);

    const subnets = props.vpc.selectSubnets(props.vpcSubnets ?? defaultPrivateSubnets(props.vpc));
    if (subnets.subnets.some((s) => props.vpc.publicSubnets.includes(s))) {
      throw new Error('ResponseCache: vpcSubnets must select private subnets; a cache never sits in a public subnet');
    }

    const subnetGroup = new elasticache.CfnSubnetGroup(this, 'SubnetGroup', {
      description: 'Private subnets of the cdk-scalable-ai response cache',
      subnetIds: subnets.subnetIds,
    });
    this.securityGroup = new ec2.SecurityGroup(this, 'SecurityGroup', {
      vpc: props.vpc,
      description: 'cdk-scalable-ai response cache: admits only the handlers granted access',
      allowAllOutbound: false,
    });
    this.connections = new ec2.Connections({
      securityGroups: [this.securityGroup],
      defaultPort: ec2.Port.tcp(this.port),
    });

    this.authSecret = new secretsmanager.Secret(this, 'AuthToken', {
      description: 'AUTH token of the cdk-scalable-ai response cache',
      encryptionKey: props.encryptionKey,
      removalPolicy,
      // ElastiCache AUTH tokens: 16-128 printable characters without / " @ or spaces.
      generateSecretString: { passwordLength: 64, excludePunctuation: true },
    });
    const rotation = 'An ElastiCache AUTH token is rotated with ModifyReplicationGroup (AuthTokenUpdateStrategy ROTATE then SET), not by a Secrets Manager rotation function; rotate it with that two-step procedure.';
    Validations.of(this.authSecret).acknowledge({ id: 'NIST.800.53.R5-SecretsManagerRotationEnabled', reason: rotation });
    if (!props.encryptionKey) {
      acknowledgeWithoutKey(this.authSecret, 'NIST.800.53.R5-SecretsManagerUsingKMSKey', 'Secrets Manager encrypts the AUTH token with its AWS managed key', 'ResponseCache encryptionKey');
    }
    Validations.of(this.authSecret).acknowledge({ id: 'AwsSolutions-SMG4', reason: rotation });

    const parameterGroup = searchParameterGroup(this, nodeType, this.engineVersion);

    this.replicationGroup = new elasticache.CfnReplicationGroup(this, 'ReplicationGroup', {
      replicationGroupDescription: 'cdk-scalable-ai response cache (exact, semantic, static answers, user context)',
      engine: 'valkey',
      engineVersion: this.engineVersion,
      cacheNodeType: nodeType,
      numCacheClusters: 1 + replicas,
      automaticFailoverEnabled: replicas > 0,
      multiAzEnabled: replicas > 0,
      port: this.port,
      cacheSubnetGroupName: subnetGroup.ref,
      securityGroupIds: [this.securityGroup.securityGroupId],
      cacheParameterGroupName: parameterGroup?.ref,
      atRestEncryptionEnabled: true,
      kmsKeyId: props.encryptionKey?.keyArn,
      transitEncryptionEnabled: true,
      transitEncryptionMode: 'required',
      authToken: this.authSecret.secretValue.unsafeUnwrap(),
      snapshotRetentionLimit,
      snapshotWindow: props.snapshotWindow,
      autoMinorVersionUpgrade: true,
    });
    this.replicationGroup.applyRemovalPolicy(removalPolicy);
    if (snapshotRetentionLimit < 15) {
      Validations.of(this.replicationGroup).acknowledge({
        id: 'NIST.800.53.R5-ElastiCacheRedisClusterAutomaticBackup',
        reason: snapshotRetentionLimit === 0
          ? 'snapshotRetentionLimit was set to 0: no snapshots; the cache holds nothing that cannot be recomputed, and rebuilds itself from traffic.'
          : `Snapshots are kept ${snapshotRetentionLimit} day(s) (snapshotRetentionLimit): enough to restore a warm cache, whose entries expire anyway; set 15 or more to keep them longer.`,
      });
    }
    if (replicas === 0) {
      Validations.of(this.replicationGroup).acknowledge({
        id: 'AwsSolutions-AEC4',
        reason: 'replicas was set to 0: a single-node cache, chosen for cost; the router fails open to the models if it is lost.',
      });
    }
    this.endpointAddress = this.replicationGroup.attrPrimaryEndPointAddress;
  }

  /**
   * Lets a handler use the cache: opens the cache port to its security group and grants it
   * read access to the AUTH token.
   */
  public grantConnect(grantee: ec2.IConnectable & iam.IGrantable): iam.Grant {
    this.connections.allowDefaultPortFrom(grantee, 'from a cdk-scalable-ai handler');
    return this.authSecret.grantRead(grantee);
  }
}

function validate(
  props: ResponseCacheProps, nodeType: string, engineVersion: string, replicas: number, port: number, ttl: Duration, keyPrefix: string,
): void {
  if (!Token.isUnresolved(nodeType)) {
    if (!/^cache\.[a-z0-9]+\.[a-z0-9]+$/.test(nodeType)) {
      throw new Error(`ResponseCache: cacheNodeType must look like cache.t4g.medium; got "${nodeType}"`);
    }
    if (/^cache\.[a-z0-9]*gd\./.test(nodeType)) {
      throw new Error(`ResponseCache: cacheNodeType ${nodeType} uses data tiering, which has no vector search; pick a node without the "d" suffix`);
    }
  }
  const version = /^(\d+)\.(\d+)/.exec(engineVersion);
  if (!version || Number(version[1]) < 8 || (Number(version[1]) === 8 && Number(version[2]) < 2)) {
    throw new Error(`ResponseCache: engineVersion must be Valkey 8.2 or later (vector search for the semantic cache); got "${engineVersion}"`);
  }
  if (!Number.isInteger(replicas) || replicas < 0 || replicas > 5) {
    throw new Error(`ResponseCache: replicas must be an integer from 0 to 5; got ${replicas}`);
  }
  if (!Number.isInteger(port) || port < 1024 || port > 65535) {
    throw new Error(`ResponseCache: port must be an integer from 1024 to 65535; got ${port}`);
  }
  if (ttl.toSeconds() < 1) {
    throw new Error(`ResponseCache: exactCacheTtl must be at least 1 second; got ${ttl.toHumanString()}`);
  }
  const snapshots = props.snapshotRetentionLimit;
  if (snapshots !== undefined && (!Number.isInteger(snapshots) || snapshots < 0 || snapshots > 35)) {
    throw new Error(`ResponseCache: snapshotRetentionLimit must be an integer from 0 to 35; got ${snapshots}`);
  }
  if (!/^[A-Za-z0-9:_-]{0,32}$/.test(keyPrefix)) {
    throw new Error(`ResponseCache: keyPrefix must be at most 32 characters of letters, digits, ":", "_" or "-"; got "${keyPrefix}"`);
  }
}

/**
 * Vector search on burstable nodes needs memory reserved for it: 30% on small, 50% on micro
 * nodes. Other node types keep the default parameter group.
 */
function searchParameterGroup(scope: Construct, nodeType: string, engineVersion: string): elasticache.CfnParameterGroup | undefined {
  const match = /^cache\.t\d+g?\.(micro|small)$/.exec(nodeType);
  if (!match) return undefined;
  return new elasticache.CfnParameterGroup(scope, 'ParameterGroup', {
    description: `Reserves memory for vector search on ${nodeType} nodes`,
    cacheParameterGroupFamily: `valkey${engineVersion.split('.')[0]}`,
    properties: { 'reserved-memory-percent': match[1] === 'micro' ? '50' : '30' },
  });
}
