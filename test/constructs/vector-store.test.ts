import { RemovalPolicy, type Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as rds from 'aws-cdk-lib/aws-rds';
import {
  actionsOf, newStack, onlyResource, parseJsonValue, resourcesAllowing, resourcesOf, roleStatements, routerConfig, wildcardActions, isolatedVpc,
} from './helpers';
import {
  EmbeddingModel, ModelTier, ResponseCache, TieredRouter, VectorStore, VectorStoreKind,
  type HnswOptions, type IModelTier, type SemanticCacheOptions,
} from '../../constructs';

function tier(): IModelTier {
  return ModelTier.bedrock({ tierId: 'small', modelId: 'amazon.nova-micro-v1:0', inputPricePer1kTokens: 0.000035, outputPricePer1kTokens: 0.00014 });
}

interface Fixture {
  stack: Stack;
  vpc: ec2.Vpc;
  router: TieredRouter;
  template: Template;
}

/** A router in a VPC with the given semantic cache (and a response cache unless `withCache` is false). */
function routerWith(semanticCache: SemanticCacheOptions, options: { withCache?: boolean; keyPrefix?: string } = {}): Fixture {
  const stack = newStack();
  const vpc = isolatedVpc(stack);
  const cache = options.withCache === false ? undefined : new ResponseCache(stack, 'Cache', { vpc, keyPrefix: options.keyPrefix });
  const router = new TieredRouter(stack, 'Router', { tiers: [tier()], cache, vpc, semanticCache });
  return { stack, vpc, router, template: Template.fromStack(stack) };
}

function routerRoleId(f: Fixture): string {
  return f.stack.getLogicalId(f.router.function.role!.node.defaultChild as iam.CfnRole);
}

describe('VectorStore.valkey', () => {
  test('the default store: an FT index named after the cache key prefix, default HNSW parameters', () => {
    const f = routerWith({}, { keyPrefix: 'shop:' });
    expect(routerConfig(f.template).semanticCache.store).toEqual({
      kind: 'valkey',
      hnsw: { m: 16, efConstruction: 128, efSearch: 64 },
      indexName: 'shop:semantic',
    });
    expect(f.router.vectorStore?.kind).toBe(VectorStoreKind.VALKEY);
    // Nothing is created for it: the index lives in the cache the router already reaches.
    for (const type of ['AWS::OpenSearchServerless::Collection', 'AWS::RDS::DBCluster']) f.template.resourceCountIs(type, 0);
  });

  test('index name and HNSW parameters are configurable', () => {
    const f = routerWith({ vectorStore: VectorStore.valkey({ indexName: 'shop-semantic', m: 32, efConstruction: 200, efSearch: 100 }) });
    expect(routerConfig(f.template).semanticCache.store).toEqual({
      kind: 'valkey',
      hnsw: { m: 32, efConstruction: 200, efSearch: 100 },
      indexName: 'shop-semantic',
    });
  });

  test('requires the router to have a cache, naming the prop', () => {
    expect(() => routerWith({}, { withCache: false })).toThrow(/semanticCache\.vectorStore: VectorStore\.valkey\(\) keeps its index in the ResponseCache; set cache/);
  });

  test('rejects an index name with spaces', () => {
    expect(() => VectorStore.valkey({ indexName: 'my index' })).toThrow(/VectorStore\.valkey: indexName must be 1-64/);
  });
});

describe('HNSW parameters', () => {
  const factories: Array<[string, (o: HnswOptions) => VectorStore]> = [
    ['valkey', (o) => VectorStore.valkey(o)],
    ['openSearchServerless', (o) => VectorStore.openSearchServerless(o)],
    ['auroraPgvector', (o) => {
      const stack = newStack();
      const vpc = isolatedVpc(stack);
      const cluster = auroraCluster(stack, vpc);
      return VectorStore.auroraPgvector({ cluster, secret: cluster.secret!, ...o });
    }],
  ];

  describe.each(factories)('VectorStore.%s', (name, make) => {
    test('defaults: m 16, efConstruction 128, efSearch 64', () => {
      expect(make({}).hnsw).toEqual({ m: 16, efConstruction: 128, efSearch: 64 });
    });

    test.each<[string, HnswOptions, RegExp]>([
      ['m 1', { m: 1 }, /m must be an integer from 2 to 100; got 1/],
      ['m 101', { m: 101 }, /m must be an integer from 2 to 100/],
      ['fractional m', { m: 2.5 }, /m must be an integer/],
      ['efConstruction 0', { efConstruction: 0 }, /efConstruction must be an integer from 1 to 4096; got 0/],
      ['efConstruction 4097', { efConstruction: 4097 }, /efConstruction must be an integer from 1 to 4096/],
      ['efSearch 0', { efSearch: 0 }, /efSearch must be an integer from 1 to 4096; got 0/],
      ['efSearch 5000', { efSearch: 5000 }, /efSearch must be an integer from 1 to 4096/],
      ['efConstruction below m', { m: 48, efConstruction: 32 }, /efConstruction \(32\) must be at least m \(48\)/],
    ])('rejects %s', (_case, options, message) => {
      expect(() => make(options)).toThrow(message);
      expect(() => make(options)).toThrow(`VectorStore.${name}`);
    });
  });

  test.each<[string, HnswOptions, RegExp]>([
    ['efConstruction below 2 × m', { m: 32, efConstruction: 48 }, /efConstruction must be from 2 × m \(64\) to 1000 for a pgvector HNSW index; got 48/],
    ['efConstruction above 1000', { efConstruction: 1001 }, /efConstruction must be from 2 × m \(32\) to 1000/],
    ['efSearch above 1000', { efSearch: 1001 }, /efSearch must be at most 1000 for pgvector/],
  ])('VectorStore.auroraPgvector rejects %s (pgvector\'s own limits)', (_case, options, message) => {
    expect(() => factories[2][1](options)).toThrow(message);
  });
});

describe('VectorStore.openSearchServerless', () => {
  let f: Fixture;

  beforeAll(() => {
    f = routerWith({ vectorStore: VectorStore.openSearchServerless({ collectionName: 'shop-semantic', indexName: 'answers', efSearch: 100 }) });
  });

  test('a VECTORSEARCH collection without standby replicas, created after its encryption and network policies', () => {
    const [, collection] = onlyResource(f.template, 'AWS::OpenSearchServerless::Collection');
    expect(collection.Properties).toMatchObject({ Name: 'shop-semantic', Type: 'VECTORSEARCH', StandbyReplicas: 'DISABLED' });
    const policies = f.template.findResources('AWS::OpenSearchServerless::SecurityPolicy');
    expect(Object.keys(policies)).toHaveLength(2);
    expect([...collection.DependsOn].sort()).toEqual(Object.keys(policies).sort());
    expect(collection.DeletionPolicy).toBe('Delete');
  });

  test('the encryption policy covers the collection with an AWS owned key', () => {
    const policy = onlySecurityPolicy(f.template, 'encryption');
    expect(policy.Name).toBe('shop-semantic');
    expect(JSON.parse(policy.Policy)).toEqual({
      Rules: [{ ResourceType: 'collection', Resource: ['collection/shop-semantic'] }],
      AWSOwnedKey: true,
    });
  });

  test('the network policy admits only the collection\'s VPC endpoint, never the public', () => {
    const [endpointId] = onlyResource(f.template, 'AWS::OpenSearchServerless::VpcEndpoint');
    const policy = onlySecurityPolicy(f.template, 'network');
    expect(policy.Name).toBe('shop-semantic');
    expect(parseWithRefs(policy.Policy)).toEqual([{
      Rules: [{ ResourceType: 'collection', Resource: ['collection/shop-semantic'] }],
      AllowFromPublic: false,
      SourceVPCEs: [`\${Ref:${endpointId}}`],
    }]);
  });

  test('the VPC endpoint sits in the router\'s subnets behind a security group that admits only the router on 443', () => {
    const [, endpoint] = onlyResource(f.template, 'AWS::OpenSearchServerless::VpcEndpoint');
    expect(endpoint.Properties.VpcId).toEqual(f.stack.resolve(f.vpc.vpcId));
    expect(endpoint.Properties.SubnetIds).toEqual(f.stack.resolve(f.vpc.isolatedSubnets.map((s) => s.subnetId)));
    expect(endpoint.Properties.SecurityGroupIds).toHaveLength(1);
    const sgId = endpoint.Properties.SecurityGroupIds[0]['Fn::GetAtt'][0];
    const routerSg = f.stack.resolve(f.router.function.connections.securityGroups[0].securityGroupId);
    const ingress = Object.values(f.template.findResources('AWS::EC2::SecurityGroupIngress'))
      .map((r) => r.Properties)
      .filter((p) => JSON.stringify(p.GroupId) === JSON.stringify({ 'Fn::GetAtt': [sgId, 'GroupId'] }));
    expect(ingress).toEqual([expect.objectContaining({ IpProtocol: 'tcp', FromPort: 443, ToPort: 443, SourceSecurityGroupId: routerSg })]);
    expect(f.template.toJSON().Resources[sgId].Properties.SecurityGroupIngress).toBeUndefined();
  });

  test('the data access policy grants only the router\'s role the five index permissions on its index', () => {
    const [, access] = onlyResource(f.template, 'AWS::OpenSearchServerless::AccessPolicy');
    expect(access.Properties).toMatchObject({ Name: 'shop-semantic', Type: 'data' });
    expect(parseWithRefs(access.Properties.Policy)).toEqual([{
      Rules: [{
        ResourceType: 'index',
        Resource: ['index/shop-semantic/answers'],
        Permission: ['aoss:CreateIndex', 'aoss:DescribeIndex', 'aoss:UpdateIndex', 'aoss:ReadDocument', 'aoss:WriteDocument'],
      }],
      Principal: [`\${GetAtt:${routerRoleId(f)}.Arn}`],
    }]);
  });

  test('the router\'s role may call aoss:APIAccessAll on this collection only; no wildcard actions', () => {
    const [collectionId] = onlyResource(f.template, 'AWS::OpenSearchServerless::Collection');
    expect(resourcesAllowing(f.template, 'aoss:APIAccessAll')).toEqual([`\${GetAtt:${collectionId}.Arn}`]);
    const statement = roleStatements(f.template, routerRoleId(f)).find((s) => actionsOf(s).includes('aoss:APIAccessAll'))!;
    expect(actionsOf(statement)).toEqual(['aoss:APIAccessAll']);
    expect(wildcardActions(f.template)).toEqual([]);
  });

  test('the router configuration names the collection endpoint and the index', () => {
    const [collectionId] = onlyResource(f.template, 'AWS::OpenSearchServerless::Collection');
    expect(routerConfig(f.template).semanticCache.store).toEqual({
      kind: 'opensearch',
      hnsw: { m: 16, efConstruction: 128, efSearch: 100 },
      opensearch: { endpoint: `\${GetAtt:${collectionId}.CollectionEndpoint}`, index: 'answers' },
    });
  });

  test('standby replicas, a KMS key, a removal policy and a generated name', () => {
    const stack = newStack();
    const vpc = isolatedVpc(stack);
    const key = new kms.Key(stack, 'Key', { enableKeyRotation: true });
    const router = new TieredRouter(stack, 'Router', {
      tiers: [tier()],
      vpc,
      semanticCache: {
        vectorStore: VectorStore.openSearchServerless({ standbyReplicas: true, encryptionKey: key, removalPolicy: RemovalPolicy.RETAIN }),
      },
    });
    const template = Template.fromStack(stack);
    const [, collection] = onlyResource(template, 'AWS::OpenSearchServerless::Collection');
    expect(collection.Properties.StandbyReplicas).toBe('ENABLED');
    expect(collection.DeletionPolicy).toBe('Retain');
    const name = collection.Properties.Name;
    expect(name).toMatch(/^[a-z][a-z0-9-]{2,27}$/);
    const encryption = onlySecurityPolicy(template, 'encryption');
    const keyId = stack.getLogicalId(key.node.defaultChild as kms.CfnKey);
    expect(parseWithRefs(encryption.Policy)).toEqual({
      Rules: [{ ResourceType: 'collection', Resource: [`collection/${name}`] }],
      KmsARN: `\${GetAtt:${keyId}.Arn}`,
    });
    expect(onlyResource(template, 'AWS::OpenSearchServerless::VpcEndpoint')[1].Properties.Name).toBe(name);
    expect(router.vectorStore?.kind).toBe(VectorStoreKind.OPENSEARCH_SERVERLESS);
  });

  test('the default index is semantic-cache', () => {
    const g = routerWith({ vectorStore: VectorStore.openSearchServerless({ collectionName: 'abc' }) }, { withCache: false });
    expect(routerConfig(g.template).semanticCache.store.opensearch.index).toBe('semantic-cache');
  });

  test.each<[string, () => unknown, RegExp]>([
    ['a collection name with upper case', () => VectorStore.openSearchServerless({ collectionName: 'Shop' }), /collectionName must be 3-28 lower-case letters/],
    ['a collection name of 2 characters', () => VectorStore.openSearchServerless({ collectionName: 'ab' }), /collectionName must be 3-28/],
    ['a collection name of 29 characters', () => VectorStore.openSearchServerless({ collectionName: 'a'.repeat(29) }), /collectionName must be 3-28/],
    ['a collection name starting with a digit', () => VectorStore.openSearchServerless({ collectionName: '1shop' }), /collectionName/],
    ['an index name with upper case', () => VectorStore.openSearchServerless({ indexName: 'Answers' }), /indexName must be 1-255 lower-case/],
  ])('rejects %s', (_name, make, message) => {
    expect(make).toThrow(message);
  });

  test('requires the router to run in a VPC', () => {
    const stack = newStack();
    expect(() => new TieredRouter(stack, 'Router', { tiers: [tier()], semanticCache: { vectorStore: VectorStore.openSearchServerless() } }))
      .toThrow(/semanticCache\.vectorStore: VectorStore\.openSearchServerless\(\) is reachable only inside a VPC; set vpc/);
  });

  test('one store serves one router', () => {
    const stack = newStack();
    const vpc = isolatedVpc(stack);
    const vectorStore = VectorStore.openSearchServerless();
    new TieredRouter(stack, 'A', { tiers: [tier()], vpc, semanticCache: { vectorStore } });
    expect(() => new TieredRouter(stack, 'B', { tiers: [tier()], vpc, semanticCache: { vectorStore } }))
      .toThrow(/already serves TestStack\/A; create one store per router/);
  });
});

describe('VectorStore.auroraPgvector', () => {
  let f: Fixture;
  let cluster: rds.DatabaseCluster;

  beforeAll(() => {
    const stack = newStack();
    const vpc = isolatedVpc(stack);
    cluster = auroraCluster(stack, vpc);
    const router = new TieredRouter(stack, 'Router', {
      tiers: [tier()],
      vpc,
      semanticCache: { vectorStore: VectorStore.auroraPgvector({ cluster, secret: cluster.secret!, tableName: 'shop_cache', m: 24, efConstruction: 96 }) },
    });
    f = { stack, vpc, router, template: Template.fromStack(stack) };
  });

  test('the router configuration names the writer endpoint, database, secret and table, over TLS', () => {
    const [clusterId] = onlyResource(f.template, 'AWS::RDS::DBCluster');
    const secretId = f.stack.getLogicalId(cluster.secret!.node.defaultChild as any);
    expect(routerConfig(f.template).semanticCache.store).toEqual({
      kind: 'pgvector',
      hnsw: { m: 24, efConstruction: 96, efSearch: 64 },
      pgvector: {
        host: `\${GetAtt:${clusterId}.Endpoint.Address}`,
        port: `\${GetAtt:${clusterId}.Endpoint.Port}`,
        database: 'postgres',
        secretArn: `\${Ref:${secretId}}`,
        table: 'shop_cache',
        ssl: true,
      },
    });
    // ...and the router trusts the RDS certificate authorities (Lambda loads them only on request).
    const routerFn = f.stack.resolve((f.router.function.node.defaultChild as any).logicalId);
    const env = f.template.toJSON().Resources[routerFn].Properties.Environment.Variables;
    expect(env.NODE_EXTRA_CA_CERTS).toBe('/var/runtime/ca-cert.pem');
  });

  test('the cluster admits the router on its port; the router may read the secret; no wildcard actions', () => {
    const routerSg = f.stack.resolve(f.router.function.connections.securityGroups[0].securityGroupId);
    const clusterSg = f.stack.resolve(cluster.connections.securityGroups[0].securityGroupId);
    f.template.hasResourceProperties('AWS::EC2::SecurityGroupIngress', {
      GroupId: clusterSg,
      SourceSecurityGroupId: routerSg,
      FromPort: { 'Fn::GetAtt': [onlyResource(f.template, 'AWS::RDS::DBCluster')[0], 'Endpoint.Port'] },
    });
    const secretId = f.stack.getLogicalId(cluster.secret!.node.defaultChild as any);
    const statements = roleStatements(f.template, routerRoleId(f));
    expect(statements.filter((s) => actionsOf(s).includes('secretsmanager:GetSecretValue')).flatMap(resourcesOf)).toEqual([`\${Ref:${secretId}}`]);
    expect(wildcardActions(f.template)).toEqual([]);
  });

  test('a database name can be given', () => {
    const stack = newStack();
    const vpc = isolatedVpc(stack);
    const db = auroraCluster(stack, vpc);
    new TieredRouter(stack, 'Router', { tiers: [tier()], vpc, semanticCache: { vectorStore: VectorStore.auroraPgvector({ cluster: db, secret: db.secret!, databaseName: 'shop' }) } });
    const store = routerConfig(Template.fromStack(stack)).semanticCache.store;
    expect(store.pgvector).toMatchObject({ database: 'shop', table: 'scalable_ai_semantic_cache' });
  });

  test.each<[string, Record<string, unknown>, RegExp]>([
    ['a table name with upper case', { tableName: 'SemanticCache' }, /tableName must be 1-63 lower-case letters, digits or "_"/],
    ['a table name with a dash', { tableName: 'semantic-cache' }, /tableName/],
    ['a database name with a space', { databaseName: 'my db' }, /databaseName must be a PostgreSQL identifier/],
  ])('rejects %s', (_name, options, message) => {
    const stack = newStack();
    const db = auroraCluster(stack, isolatedVpc(stack));
    expect(() => VectorStore.auroraPgvector({ cluster: db, secret: db.secret!, ...options })).toThrow(message);
  });

  test('rejects an embedding model with more dimensions than pgvector indexes', () => {
    const stack = newStack();
    const vpc = isolatedVpc(stack);
    const db = auroraCluster(stack, vpc);
    expect(() => new TieredRouter(stack, 'Router', {
      tiers: [tier()],
      vpc,
      semanticCache: { vectorStore: VectorStore.auroraPgvector({ cluster: db, secret: db.secret! }), embeddingModel: EmbeddingModel.bedrock('cohere.embed-v4:0', 2048) },
    })).toThrow(/pgvector indexes at most 2000 dimensions with HNSW; the embedding model has 2048/);
  });

  test('requires the router to run in a VPC', () => {
    const stack = newStack();
    const db = auroraCluster(stack, isolatedVpc(stack));
    expect(() => new TieredRouter(stack, 'Router', { tiers: [tier()], semanticCache: { vectorStore: VectorStore.auroraPgvector({ cluster: db, secret: db.secret! }) } }))
      .toThrow(/VectorStore\.auroraPgvector\(\) is reachable only inside a VPC; set vpc/);
  });
});

function auroraCluster(stack: Stack, vpc: ec2.IVpc): rds.DatabaseCluster {
  return new rds.DatabaseCluster(stack, 'Db', {
    engine: rds.DatabaseClusterEngine.auroraPostgres({ version: rds.AuroraPostgresEngineVersion.VER_16_6 }),
    writer: rds.ClusterInstance.serverlessV2('Writer'),
    vpc,
    vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
  });
}

function onlySecurityPolicy(template: Template, type: string): Record<string, any> {
  const found = Object.values(template.findResources('AWS::OpenSearchServerless::SecurityPolicy', { Properties: { Type: type } }));
  expect(found).toHaveLength(1);
  return found[0].Properties;
}

/** A policy document that is a literal JSON string or an `Fn::Join` with references. */
function parseWithRefs(value: unknown): any {
  return parseJsonValue(value);
}
