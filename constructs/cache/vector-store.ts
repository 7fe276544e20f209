import { Lazy, Names, RemovalPolicy, Stack, Token, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as aoss from 'aws-cdk-lib/aws-opensearchserverless';
import type * as rds from 'aws-cdk-lib/aws-rds';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import type { HnswRuntimeConfig, VectorStoreRuntimeConfig } from '../contract/runtime-config';
import { DEFAULT_HNSW_EF_CONSTRUCTION, DEFAULT_HNSW_EF_SEARCH, DEFAULT_HNSW_M } from '../contract/semantic-defaults';
import { grantSecretRead } from '../internal/secret-grant';
import { AwsServiceEndpoint, requireAwsServices } from '../internal/service-endpoints';
import { selectPrivateSubnets } from '../internal/subnets';
import type { VectorStoreBinding } from '../internal/vector-store-binding';

/**
 * HNSW parameters of a vector index. Larger values find nearer neighbours more reliably and cost
 * memory (`m`), build time (`efConstruction`) or query latency (`efSearch`).
 */
export interface HnswOptions {
  /**
   * Links per node of the graph (2 to 100).
   * @default 16 (DEFAULT_HNSW_M)
   */
  readonly m?: number;
  /**
   * Size of the candidate list while building the graph (1 to 4096, at least `m`).
   * @default 128 (DEFAULT_HNSW_EF_CONSTRUCTION)
   */
  readonly efConstruction?: number;
  /**
   * Size of the candidate list while searching (1 to 4096); at least the semantic cache's
   * `neighbours` is sensible.
   * @default 64 (DEFAULT_HNSW_EF_SEARCH)
   */
  readonly efSearch?: number;
}

/** Options of the Valkey vector store. */
export interface ValkeyVectorStoreOptions extends HnswOptions {
  /**
   * Name of the FT index in the response cache (ElastiCache for Valkey 8.2 allows at most 10
   * indexes per cluster; the library uses two: the semantic cache and the static answers).
   * @default - the cache's key prefix followed by `semantic` (`sai:semantic`)
   */
  readonly indexName?: string;
}

/** Options of the OpenSearch Serverless vector store. */
export interface OpenSearchServerlessVectorStoreOptions extends HnswOptions {
  /**
   * Name of the collection: 3-28 lower-case letters, digits and hyphens, starting with a letter,
   * unique in the account and Region. The security policies, the data access policy and the VPC
   * endpoint take the same name.
   * @default - generated from the router's construct path
   */
  readonly collectionName?: string;
  /**
   * Name of the vector index in the collection (the router creates it on first use).
   * @default 'semantic-cache'
   */
  readonly indexName?: string;
  /**
   * Whether the collection keeps standby replicas in another Availability Zone. Off by default
   * for cost: a collection is billed for a minimum of OCUs while idle, and standby replicas
   * double that minimum.
   * @default false
   */
  readonly standbyReplicas?: boolean;
  /**
   * Customer managed KMS key of the collection's encryption policy. The principal that deploys
   * the stack needs permission to use it (the router's role does not).
   * @default - an AWS owned key
   */
  readonly encryptionKey?: kms.IKey;
  /**
   * Subnets of the collection's VPC endpoint (public subnets are refused).
   * @default - the router's subnets
   */
  readonly vpcSubnets?: ec2.SubnetSelection;
  /**
   * What happens to the collection when it leaves the stack.
   * @default RemovalPolicy.DESTROY (a cache holds nothing that cannot be recomputed)
   */
  readonly removalPolicy?: RemovalPolicy;
}

/** Options of the Aurora PostgreSQL (pgvector) vector store. */
export interface AuroraPgvectorVectorStoreOptions extends HnswOptions {
  /**
   * The Aurora PostgreSQL cluster, with pgvector 0.5.0 or later (HNSW indexes): Aurora
   * PostgreSQL 12.16, 13.12, 14.9, 15.4 or a later minor version, or 16 and later. The router
   * connects to its writer endpoint over TLS; the cluster must be in the router's VPC.
   *
   * A `DatabaseCluster` may live in another stack of the app: the rule that admits the router on
   * the cluster's port is created in the router's stack, so the stacks do not reference each
   * other both ways. An imported cluster (`DatabaseCluster.fromDatabaseClusterAttributes()`)
   * needs `securityGroups` (the rule is added to them), `clusterEndpointAddress` and `port`; give
   * it `engine` too, so that the engine and version are checked at synth (unknown, they are not).
   */
  readonly cluster: rds.IDatabaseCluster;
  /** Secret with the `username` and `password` of a database user (the RDS secret format). */
  readonly secret: secretsmanager.ISecret;
  /**
   * Database that holds the table.
   * @default 'postgres'
   */
  readonly databaseName?: string;
  /**
   * Table of the semantic cache (created with its HNSW index on first use): a PostgreSQL
   * identifier of lower-case letters, digits and underscores.
   * @default 'scalable_ai_semantic_cache'
   */
  readonly tableName?: string;
}

/** Where a vector store keeps its vectors. */
export enum VectorStoreKind {
  /** An FT index in the ElastiCache for Valkey response cache. */
  VALKEY = 'valkey',
  /** An Amazon OpenSearch Serverless vector search collection. */
  OPENSEARCH_SERVERLESS = 'opensearch',
  /** A table with a pgvector HNSW index in Aurora PostgreSQL. */
  AURORA_PGVECTOR = 'pgvector',
}

const MAX_PGVECTOR_DIMENSIONS = 2000;

/**
 * Where the semantic cache keeps its vectors.
 *
 * - `VectorStore.valkey()` (default): an FT index in the `ResponseCache` (Valkey 8.2+ vector
 *   search). Nothing more to run or pay for; entries of all tenants share one index and are
 *   scoped by a TAG filter.
 * - `VectorStore.openSearchServerless()`: a vector search collection reachable only through a
 *   VPC endpoint. The large-scale option: a collection is billed for a minimum of OCUs even
 *   while idle (users report over $20/day), so it pays off only at high volume.
 * - `VectorStore.auroraPgvector()`: a table with an HNSW index on an Aurora PostgreSQL cluster
 *   you already run (the `ReadReplicaDatabase` construct plugs in here once it exists).
 */
export abstract class VectorStore {
  /** An FT index in the router's `ResponseCache` (requires the router to have a cache). */
  public static valkey(options: ValkeyVectorStoreOptions = {}): VectorStore {
    return new ValkeyVectorStore(options);
  }

  /**
   * An Amazon OpenSearch Serverless collection of type `VECTORSEARCH`, created below the router
   * that uses it: an encryption policy, a network policy that admits only a VPC endpoint in the
   * router's VPC (whose security group admits only the router, on 443), a data access policy
   * that grants only the router's role the index and document permissions on this collection's
   * index, and `aoss:APIAccessAll` on the collection in the role's policy. One store serves one
   * router.
   */
  public static openSearchServerless(options: OpenSearchServerlessVectorStoreOptions = {}): VectorStore {
    return new OpenSearchServerlessVectorStore(options);
  }

  /**
   * A table with a pgvector HNSW index on an Aurora PostgreSQL cluster you pass: the router may
   * read the secret and reach the cluster's port.
   */
  public static auroraPgvector(options: AuroraPgvectorVectorStoreOptions): VectorStore {
    return new AuroraPgvectorVectorStore(options);
  }

  /** Where the vectors are kept. */
  public abstract readonly kind: VectorStoreKind;
  /** The HNSW parameters, with defaults applied. */
  public abstract readonly hnsw: HnswOptions;

  /**
   * Binds the store to a router: validates the binding, creates the store's resources below the
   * router where it has any, and returns the router's configuration. Grants nothing: see
   * `_grantClient`.
   * @internal
   */
  public abstract _bind(binding: VectorStoreBinding): VectorStoreRuntimeConfig;

  /**
   * Lets `client` (the router function, or another function that runs the routing core with the
   * router's configuration) search and write the store: grants and network access. Call after
   * `_bind`.
   * @internal
   */
  public abstract _grantClient(client: lambda.Function): void;
}

function hnswConfig(hnsw: HnswOptions): HnswRuntimeConfig {
  return { m: hnsw.m!, efConstruction: hnsw.efConstruction!, efSearch: hnsw.efSearch! };
}

function validateHnsw(where: string, options: HnswOptions): HnswOptions {
  const m = options.m ?? DEFAULT_HNSW_M;
  const efConstruction = options.efConstruction ?? DEFAULT_HNSW_EF_CONSTRUCTION;
  const efSearch = options.efSearch ?? DEFAULT_HNSW_EF_SEARCH;
  const ranges: Array<[string, number, number, number]> = [
    ['m', m, 2, 100],
    ['efConstruction', efConstruction, 1, 4096],
    ['efSearch', efSearch, 1, 4096],
  ];
  for (const [name, value, min, max] of ranges) {
    if (!Number.isInteger(value) || value < min || value > max) {
      throw new Error(`${where}: ${name} must be an integer from ${min} to ${max}; got ${value}`);
    }
  }
  if (efConstruction < m) {
    throw new Error(`${where}: efConstruction (${efConstruction}) must be at least m (${m})`);
  }
  return { m, efConstruction, efSearch };
}

function requireVpc(binding: VectorStoreBinding, store: string): ec2.IVpc {
  if (!binding.vpc) {
    throw new Error(`${binding.where}: ${store} is reachable only inside a VPC; set vpc on the router`);
  }
  return binding.vpc;
}

class ValkeyVectorStore extends VectorStore {
  public readonly kind = VectorStoreKind.VALKEY;
  public readonly hnsw: HnswOptions;
  private readonly indexName?: string;

  constructor(options: ValkeyVectorStoreOptions) {
    super();
    this.hnsw = validateHnsw('VectorStore.valkey', options);
    if (options.indexName !== undefined && !/^[A-Za-z0-9:._-]{1,64}$/.test(options.indexName)) {
      throw new Error(`VectorStore.valkey: indexName must be 1-64 letters, digits, ":", ".", "_" or "-"; got "${options.indexName}"`);
    }
    this.indexName = options.indexName;
  }

  /** @internal */
  public _bind(binding: VectorStoreBinding): VectorStoreRuntimeConfig {
    if (!binding.cache) {
      throw new Error(`${binding.where}: VectorStore.valkey() keeps its index in the ResponseCache; set cache (or choose another vector store)`);
    }
    return { kind: 'valkey', hnsw: hnswConfig(this.hnsw), indexName: this.indexName ?? `${binding.cache.keyPrefix}semantic` };
  }

  /** @internal */
  public _grantClient(_client: lambda.Function): void {
    // The index lives in the response cache: access comes with ResponseCache.grantConnect().
  }
}

/** Index and document permissions the router needs on its index, named one by one. */
const AOSS_INDEX_PERMISSIONS = ['aoss:CreateIndex', 'aoss:DescribeIndex', 'aoss:UpdateIndex', 'aoss:ReadDocument', 'aoss:WriteDocument'];

class OpenSearchServerlessVectorStore extends VectorStore {
  public readonly kind = VectorStoreKind.OPENSEARCH_SERVERLESS;
  public readonly hnsw: HnswOptions;
  private readonly options: OpenSearchServerlessVectorStoreOptions;
  private readonly indexName: string;
  private boundTo?: Construct;
  /** What `_bind` created that clients are granted access to. */
  private bound?: { readonly endpointSecurityGroup: ec2.SecurityGroup; readonly collectionArn: string; readonly principals: string[] };

  constructor(options: OpenSearchServerlessVectorStoreOptions) {
    const where = 'VectorStore.openSearchServerless';
    super();
    this.hnsw = validateHnsw(where, options);
    this.options = options;
    if (options.collectionName !== undefined && !Token.isUnresolved(options.collectionName) && !/^[a-z][a-z0-9-]{2,27}$/.test(options.collectionName)) {
      throw new Error(`${where}: collectionName must be 3-28 lower-case letters, digits or hyphens, starting with a letter; got "${options.collectionName}"`);
    }
    this.indexName = options.indexName ?? 'semantic-cache';
    if (!/^[a-z0-9][a-z0-9._-]{0,254}$/.test(this.indexName)) {
      throw new Error(`${where}: indexName must be 1-255 lower-case letters, digits, ".", "_" or "-", starting with a letter or digit; got "${this.indexName}"`);
    }
  }

  /** @internal */
  public _bind(binding: VectorStoreBinding): VectorStoreRuntimeConfig {
    if (this.boundTo) {
      throw new Error(`${binding.where}: this VectorStore.openSearchServerless() already serves ${this.boundTo.node.path}; create one store per router`);
    }
    const vpc = requireVpc(binding, 'VectorStore.openSearchServerless()');
    this.boundTo = binding.scope;
    const scope = new Construct(binding.scope, 'VectorStore');
    const stack = Stack.of(scope);
    const name = this.options.collectionName ?? generatedName(scope);
    const collectionResource = `collection/${name}`;

    const encryptionPolicy = new aoss.CfnSecurityPolicy(scope, 'EncryptionPolicy', {
      name,
      type: 'encryption',
      description: 'cdk-scalable-ai semantic cache: encryption at rest',
      policy: stack.toJsonString({
        Rules: [{ ResourceType: 'collection', Resource: [collectionResource] }],
        ...(this.options.encryptionKey ? { KmsARN: this.options.encryptionKey.keyArn } : { AWSOwnedKey: true }),
      }),
    });

    const endpointSecurityGroup = new ec2.SecurityGroup(scope, 'EndpointSecurityGroup', {
      vpc,
      description: 'cdk-scalable-ai semantic cache: OpenSearch Serverless VPC endpoint, admits only the router',
      allowAllOutbound: false,
    });
    const vpcEndpoint = new aoss.CfnVpcEndpoint(scope, 'VpcEndpoint', {
      name,
      vpcId: vpc.vpcId,
      subnetIds: selectPrivateSubnets(vpc, this.options.vpcSubnets ?? binding.vpcSubnets, 'VectorStore.openSearchServerless').subnetIds,
      securityGroupIds: [endpointSecurityGroup.securityGroupId],
    });

    const networkPolicy = new aoss.CfnSecurityPolicy(scope, 'NetworkPolicy', {
      name,
      type: 'network',
      description: 'cdk-scalable-ai semantic cache: reachable only through its VPC endpoint',
      policy: stack.toJsonString([{
        Rules: [{ ResourceType: 'collection', Resource: [collectionResource] }],
        AllowFromPublic: false,
        SourceVPCEs: [vpcEndpoint.ref],
      }]),
    });

    const collection = new aoss.CfnCollection(scope, 'Collection', {
      name,
      type: 'VECTORSEARCH',
      description: 'cdk-scalable-ai semantic cache',
      standbyReplicas: this.options.standbyReplicas ? 'ENABLED' : 'DISABLED',
    });
    // A collection cannot be created before an encryption policy covers it.
    collection.node.addDependency(encryptionPolicy, networkPolicy);
    collection.applyRemovalPolicy(this.options.removalPolicy ?? RemovalPolicy.DESTROY);

    // The roles of the store's clients (see _grantClient), known once the app is complete.
    const principals: string[] = [];
    new aoss.CfnAccessPolicy(scope, 'DataAccessPolicy', {
      name,
      type: 'data',
      description: 'cdk-scalable-ai semantic cache: the router (and functions sharing its configuration) may use its index',
      policy: stack.toJsonString([{
        Rules: [{ ResourceType: 'index', Resource: [`index/${name}/${this.indexName}`], Permission: AOSS_INDEX_PERMISSIONS }],
        Principal: Lazy.any({ produce: () => principals }),
      }]),
    });
    this.bound = { endpointSecurityGroup, collectionArn: collection.attrArn, principals };

    return {
      kind: 'opensearch',
      hnsw: hnswConfig(this.hnsw),
      opensearch: { endpoint: collection.attrCollectionEndpoint, index: this.indexName },
    };
  }

  /** @internal */
  public _grantClient(client: lambda.Function): void {
    if (!this.bound) throw new Error('VectorStore.openSearchServerless: the store must be bound to a router before a function is granted access');
    this.bound.endpointSecurityGroup.connections.allowFrom(client, ec2.Port.tcp(443), 'HTTPS from a cdk-scalable-ai function of the router');
    this.bound.principals.push(client.role!.roleArn);
    iam.Grant.addToPrincipal({ grantee: client, actions: ['aoss:APIAccessAll'], resourceArns: [this.bound.collectionArn] });
  }
}

/** A collection name (3-28 lower-case letters, digits, hyphens) unique to the construct path. */
function generatedName(scope: Construct): string {
  return `sai-${Names.uniqueResourceName(scope, { maxLength: 24, separator: '-' }).toLowerCase().replace(/[^a-z0-9-]/g, '-')}`;
}

class AuroraPgvectorVectorStore extends VectorStore {
  public readonly kind = VectorStoreKind.AURORA_PGVECTOR;
  public readonly hnsw: HnswOptions;
  private readonly options: AuroraPgvectorVectorStoreOptions;
  private readonly databaseName: string;
  private readonly tableName: string;

  constructor(options: AuroraPgvectorVectorStoreOptions) {
    const where = 'VectorStore.auroraPgvector';
    super();
    this.hnsw = validateHnsw(where, options);
    this.options = options;
    this.databaseName = options.databaseName ?? 'postgres';
    this.tableName = options.tableName ?? 'scalable_ai_semantic_cache';
    if (!/^[A-Za-z_][A-Za-z0-9_$]{0,62}$/.test(this.databaseName)) {
      throw new Error(`${where}: databaseName must be a PostgreSQL identifier (1-63 letters, digits, "_" or "$", not starting with a digit); got "${this.databaseName}"`);
    }
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(this.tableName)) {
      throw new Error(`${where}: tableName must be 1-63 lower-case letters, digits or "_", not starting with a digit; got "${this.tableName}"`);
    }
    // pgvector's own limits on HNSW indexes.
    const { m, efConstruction, efSearch } = this.hnsw;
    if (efConstruction! < 2 * m! || efConstruction! > 1000) {
      throw new Error(`${where}: efConstruction must be from 2 × m (${2 * m!}) to 1000 for a pgvector HNSW index; got ${efConstruction}`);
    }
    if (efSearch! > 1000) {
      throw new Error(`${where}: efSearch must be at most 1000 for pgvector (hnsw.ef_search); got ${efSearch}`);
    }
  }

  /** @internal */
  public _bind(binding: VectorStoreBinding): VectorStoreRuntimeConfig {
    const vpc = requireVpc(binding, 'VectorStore.auroraPgvector()');
    validateCluster(binding.where, this.options.cluster, vpc);
    if (binding.dimensions > MAX_PGVECTOR_DIMENSIONS) {
      throw new Error(`${binding.where}: pgvector indexes at most ${MAX_PGVECTOR_DIMENSIONS} dimensions with HNSW; the embedding model has ${binding.dimensions}`);
    }
    const { cluster, secret } = this.options;
    return {
      kind: 'pgvector',
      hnsw: hnswConfig(this.hnsw),
      pgvector: {
        host: cluster.clusterEndpoint.hostname,
        port: cluster.clusterEndpoint.port,
        database: this.databaseName,
        secretArn: secret.secretArn,
        table: this.tableName,
        ssl: true,
      },
    };
  }

  /** @internal */
  public _grantClient(client: lambda.Function): void {
    const { cluster } = this.options;
    // From the client's side: with the cluster in another stack, aws-cdk-lib then puts both rules
    // (the client's egress, the cluster's ingress) in the client's stack, which already references
    // the cluster's endpoint; from the cluster's side they would land in the cluster's stack and
    // make the two stacks reference each other (a cycle).
    const port = cluster.connections.defaultPort ?? ec2.Port.tcp(cluster.clusterEndpoint.port);
    client.connections.allowTo(cluster, port, 'from the cdk-scalable-ai router (semantic cache) to Aurora PostgreSQL');
    if (port.toString().includes('{IndirectPort}') || Token.isUnresolved(cluster.clusterEndpoint.port)) {
      // The rules land under the client's security group (the library's own), whose port is then
      // the cluster's port attribute: a value cdk-nag cannot read, so its port rules cannot pass.
      for (const group of client.connections.securityGroups) {
        const reason = 'The rule opens the Aurora cluster\'s own port (its Endpoint.Port attribute, which cdk-nag cannot resolve) to this one security group, never SSH or another service to the world.';
        Validations.of(group).acknowledge(
          { id: 'NIST.800.53.R5-EC2RestrictedSSH', reason },
          { id: 'NIST.800.53.R5-EC2RestrictedCommonPorts', reason },
        );
      }
    }
    grantSecretRead(this.options.secret, client);
    requireAwsServices(client, AwsServiceEndpoint.SECRETS_MANAGER);
    // The client verifies the cluster's TLS certificate; since Node.js 20, Lambda loads the
    // Amazon RDS certificate authorities only when asked to.
    client.addEnvironment('NODE_EXTRA_CA_CERTS', '/var/runtime/ca-cert.pem');
  }
}

/**
 * Lowest Aurora PostgreSQL minor version with pgvector 0.5.0 (the first with HNSW) per major
 * version; every version of later majors has it.
 */
const PGVECTOR_HNSW_MINOR: Record<number, number> = { 12: 16, 13: 12, 14: 9, 15: 4 };

/**
 * What can be checked of the cluster at synth: security groups to admit the router through, the
 * engine and version where known, and the VPC where known.
 */
function validateCluster(where: string, cluster: rds.IDatabaseCluster, vpc: ec2.IVpc): void {
  if (cluster.connections.securityGroups.length === 0) {
    throw new Error(`${where}: the Aurora cluster has no security groups, so the router could not be admitted on its port; `
      + 'import it with securityGroups (DatabaseCluster.fromDatabaseClusterAttributes({ ..., securityGroups: [SecurityGroup.fromSecurityGroupId(...)] }))');
  }
  const engine = cluster.engine;
  if (engine && engine.engineType !== 'aurora-postgresql') {
    throw new Error(`${where}: the cluster runs ${engine.engineType}; pgvector needs Aurora PostgreSQL (DatabaseClusterEngine.auroraPostgres())`);
  }
  const version = engine?.engineVersion?.fullVersion;
  const parsed = version === undefined || Token.isUnresolved(version) ? undefined : /^(\d+)\.(\d+)/.exec(version);
  if (parsed) {
    const major = Number(parsed[1]);
    const minor = Number(parsed[2]);
    const lowest = PGVECTOR_HNSW_MINOR[major];
    if (major < 12 || (lowest !== undefined && minor < lowest)) {
      throw new Error(`${where}: Aurora PostgreSQL ${version} has no pgvector HNSW indexes (pgvector 0.5.0 arrived in 12.16, 13.12, 14.9, 15.4 and 16); `
        + 'upgrade the cluster\'s engine version');
    }
  }
  // A DatabaseCluster of the app knows its VPC; an imported one does not.
  const clusterVpc = (cluster as { readonly vpc?: ec2.IVpc }).vpc;
  if (clusterVpc && clusterVpc !== vpc && Token.isUnresolved(clusterVpc.vpcId) === Token.isUnresolved(vpc.vpcId) && clusterVpc.vpcId !== vpc.vpcId) {
    throw new Error(`${where}: the Aurora cluster is in another VPC (${clusterVpc.node.path}) than the router (${vpc.node.path}); `
      + 'the router reaches the cluster only inside its own VPC: give the router the cluster\'s VPC');
  }
}
