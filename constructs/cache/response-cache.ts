import { Duration, RemovalPolicy, Token, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as elasticache from 'aws-cdk-lib/aws-elasticache';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct, type IConstruct } from 'constructs';
import { acknowledgeWithoutKey } from '../internal/encryption';
import { grantSecretRead } from '../internal/secret-grant';
import { selectPrivateSubnets } from '../internal/subnets';

/**
 * A response cache: an ElastiCache for Valkey replication group that the library's handlers
 * reach over TLS with an AUTH token. Implemented by {@link ResponseCache} and by the caches that
 * {@link ResponseCache.fromResponseCacheAttributes} imports.
 *
 * An implementation must be a cluster-mode-disabled group with transit encryption on (the
 * handlers connect with TLS to its primary endpoint), keep its AUTH token as the plain-string
 * value of `authSecret`, and, for the semantic cache and semantic static answers, run Valkey 8.2
 * or later (vector search).
 */
export interface IResponseCache extends IConstruct, ec2.IConnectable {
  /**
   * Host name of the primary endpoint.
   * @attribute
   */
  readonly endpointAddress: string;
  /**
   * Port of the cache.
   * @attribute
   */
  readonly port: number;
  /** The secret whose value is the AUTH token (a plain string, not JSON). */
  readonly authSecret: secretsmanager.ISecret;
  /** Prefix of every key the library writes. */
  readonly keyPrefix: string;
  /** Lifetime of exact-cache entries. */
  readonly exactCacheTtl: Duration;
  /** The Valkey engine version, when known (always 8.2 or later when given). */
  readonly engineVersion?: string;
  /**
   * Lets a handler use the cache: opens the cache port to its security group and grants it
   * read access to the AUTH token.
   */
  grantConnect(grantee: ec2.IConnectable & iam.IGrantable): iam.Grant;
}

/**
 * Attributes of an existing ElastiCache for Valkey replication group, for
 * {@link ResponseCache.fromResponseCacheAttributes}.
 *
 * The group must have cluster mode disabled, transit encryption on (the handlers connect with
 * TLS) and an AUTH token; for the semantic cache and semantic static answers it must run Valkey
 * 8.2 or later on nodes with vector search (not data tiering).
 */
export interface ResponseCacheAttributes {
  /** Host name of the group's primary endpoint (no scheme, no port), such as `master.my-cache.abc123.use1.cache.amazonaws.com`. */
  readonly endpointAddress: string;
  /**
   * Port of the group.
   * @default 6379
   */
  readonly port?: number;
  /**
   * The security group of the cache nodes. `grantConnect()` adds an ingress rule on the cache
   * port to it for each handler; the rule is created in the handler's stack, so a cache of
   * another stack (or a security group imported by id) causes no dependency cycle. Import it
   * mutable (the default of `SecurityGroup.fromSecurityGroupId`), or no rule is added and the
   * handlers cannot reach the cache.
   */
  readonly securityGroup: ec2.ISecurityGroup;
  /**
   * The secret holding the AUTH token: its value is the token itself, as a plain string (not a
   * JSON document). The handlers read it with `secretsmanager:GetSecretValue`; with a customer
   * managed key, the key must allow them to decrypt (imported secrets carry no key grant).
   */
  readonly authSecret: secretsmanager.ISecret;
  /**
   * Prefix of every key the library writes, so the group can be shared with other data.
   * @default 'sai:'
   */
  readonly keyPrefix?: string;
  /**
   * How long an exact-cache entry lives.
   * @default Duration.days(1)
   */
  readonly exactCacheTtl?: Duration;
  /**
   * The group's Valkey engine version, such as `8.2`. Given, it must be 8.2 or later.
   * @default - not checked: the group is taken to run Valkey 8.2 or later, which the semantic
   * cache and semantic static answers need
   */
  readonly engineVersion?: string;
}

/**
 * What a {@link ResponseCache} and an imported cache share: granting a handler access.
 */
export abstract class ResponseCacheBase extends Construct implements IResponseCache {
  public abstract readonly endpointAddress: string;
  public abstract readonly port: number;
  public abstract readonly authSecret: secretsmanager.ISecret;
  public abstract readonly keyPrefix: string;
  public abstract readonly exactCacheTtl: Duration;
  public abstract readonly engineVersion?: string;
  public abstract readonly connections: ec2.Connections;

  /**
   * Lets a handler use the cache: opens the cache port to its security group and grants it
   * read access to the AUTH token.
   */
  public grantConnect(grantee: ec2.IConnectable & iam.IGrantable): iam.Grant {
    // Opened from the handler's side: the ingress rule then lands in the handler's stack when the
    // cache is in another one (as aws-cdk-lib does for remote rules), which keeps stacks acyclic.
    grantee.connections.allowToDefaultPort(this, 'from a cdk-scalable-ai handler');
    return grantSecretRead(this.authSecret, grantee);
  }
}

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
   * Subnets of the cache nodes: private ones (public subnets are refused).
   * @default - the VPC's private subnets with egress if it has any, otherwise its isolated subnets
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
export class ResponseCache extends ResponseCacheBase {
  /**
   * An existing ElastiCache for Valkey replication group, to pass wherever a cache is taken. The
   * library creates nothing for it; each handler given access gets an ingress rule on
   * `securityGroup` and read access to `authSecret`.
   */
  public static fromResponseCacheAttributes(scope: Construct, id: string, attrs: ResponseCacheAttributes): IResponseCache {
    const where = 'ResponseCache.fromResponseCacheAttributes';
    const port = attrs.port ?? 6379;
    const exactCacheTtl = attrs.exactCacheTtl ?? Duration.days(1);
    const keyPrefix = attrs.keyPrefix ?? 'sai:';
    if (!Token.isUnresolved(attrs.endpointAddress) && !/^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/.test(attrs.endpointAddress)) {
      throw new Error(`${where}: endpointAddress must be the host name of the primary endpoint, without scheme or port; got "${attrs.endpointAddress}"`);
    }
    if (attrs.engineVersion !== undefined) validateEngineVersion(where, attrs.engineVersion);
    validateConnection(where, port, exactCacheTtl, keyPrefix);

    class Import extends ResponseCacheBase {
      public readonly endpointAddress = attrs.endpointAddress;
      public readonly port = port;
      public readonly authSecret = attrs.authSecret;
      public readonly keyPrefix = keyPrefix;
      public readonly exactCacheTtl = exactCacheTtl;
      public readonly engineVersion = attrs.engineVersion;
      public readonly securityGroup = attrs.securityGroup;
      public readonly connections = new ec2.Connections({ securityGroups: [attrs.securityGroup], defaultPort: ec2.Port.tcp(port) });
    }
    return new Import(scope, id);
  }

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
  /** The engine version (always set: 8.2 or later). */
  public readonly engineVersion?: string;

  constructor(scope: Construct, id: string, props: ResponseCacheProps) {
    super(scope, id);
    const nodeType = props.cacheNodeType ?? 'cache.t4g.medium';
    const engineVersion = props.engineVersion ?? DEFAULT_ENGINE_VERSION;
    this.engineVersion = engineVersion;
    const replicas = props.replicas ?? 1;
    this.port = props.port ?? 6379;
    this.exactCacheTtl = props.exactCacheTtl ?? Duration.days(1);
    this.keyPrefix = props.keyPrefix ?? 'sai:';
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.DESTROY;
    const snapshotRetentionLimit = props.snapshotRetentionLimit ?? 1;
    validate(props, nodeType, engineVersion, replicas, this.port, this.exactCacheTtl, this.keyPrefix);

    const subnets = selectPrivateSubnets(props.vpc, props.vpcSubnets, 'ResponseCache');

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

    const parameterGroup = searchParameterGroup(this, nodeType, engineVersion);

    this.replicationGroup = new elasticache.CfnReplicationGroup(this, 'ReplicationGroup', {
      replicationGroupDescription: 'cdk-scalable-ai response cache (exact, semantic, static answers, user context)',
      engine: 'valkey',
      engineVersion,
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
  validateEngineVersion('ResponseCache', engineVersion);
  if (!Number.isInteger(replicas) || replicas < 0 || replicas > 5) {
    throw new Error(`ResponseCache: replicas must be an integer from 0 to 5; got ${replicas}`);
  }
  validateConnection('ResponseCache', port, ttl, keyPrefix);
  const snapshots = props.snapshotRetentionLimit;
  if (snapshots !== undefined && (!Number.isInteger(snapshots) || snapshots < 0 || snapshots > 35)) {
    throw new Error(`ResponseCache: snapshotRetentionLimit must be an integer from 0 to 35; got ${snapshots}`);
  }
}

function validateEngineVersion(where: string, engineVersion: string): void {
  const version = /^(\d+)\.(\d+)/.exec(engineVersion);
  if (!version || Number(version[1]) < 8 || (Number(version[1]) === 8 && Number(version[2]) < 2)) {
    throw new Error(`${where}: engineVersion must be Valkey 8.2 or later (vector search for the semantic cache); got "${engineVersion}"`);
  }
}

/** What the handlers need to reach a cache, whether created or imported. */
function validateConnection(where: string, port: number, ttl: Duration, keyPrefix: string): void {
  if (!Number.isInteger(port) || port < 1024 || port > 65535) {
    throw new Error(`${where}: port must be an integer from 1024 to 65535; got ${port}`);
  }
  if (ttl.toSeconds() < 1) {
    throw new Error(`${where}: exactCacheTtl must be at least 1 second; got ${ttl.toHumanString()}`);
  }
  if (!/^[A-Za-z0-9:_-]{0,32}$/.test(keyPrefix)) {
    throw new Error(`${where}: keyPrefix must be at most 32 characters of letters, digits, ":", "_" or "-"; got "${keyPrefix}"`);
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
