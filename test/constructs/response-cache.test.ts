import { Duration, RemovalPolicy, type Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { acknowledgements, flatten, newGrantee, newStack, onlyResource, orgVpc, resourcesAllowing, statementsAllowing, wildcardActions } from './helpers';
import { ResponseCache, type ResponseCacheProps } from '../../constructs';

/** A VPC with public and private-with-egress subnets only. */
function twoTierVpc(stack: Stack): ec2.Vpc {
  return new ec2.Vpc(stack, 'Vpc', { maxAzs: 2, natGateways: 1 });
}

function cacheTemplate(props: Partial<ResponseCacheProps> = {}): { template: Template; cache: ResponseCache; stack: Stack } {
  const stack = newStack();
  const cache = new ResponseCache(stack, 'Cache', { vpc: props.vpc ?? twoTierVpc(stack), ...props });
  return { template: Template.fromStack(stack), cache, stack };
}

function replicationGroup(template: Template): Record<string, any> {
  return onlyResource(template, 'AWS::ElastiCache::ReplicationGroup')[1].Properties;
}

describe('ResponseCache: defaults', () => {
  let stack: Stack;
  let vpc: ec2.Vpc;
  let cache: ResponseCache;
  let template: Template;

  beforeAll(() => {
    stack = newStack();
    vpc = orgVpc(stack);
    cache = new ResponseCache(stack, 'Cache', { vpc });
    template = Template.fromStack(stack);
  });

  test('a node-based Valkey 8.2 replication group on cache.t4g.medium', () => {
    expect(replicationGroup(template)).toMatchObject({
      Engine: 'valkey',
      EngineVersion: '8.2',
      CacheNodeType: 'cache.t4g.medium',
      Port: 6379,
      SnapshotRetentionLimit: 1,
    });
    template.resourceCountIs('AWS::ElastiCache::ServerlessCache', 0);
    expect(cache.engineVersion).toBe('8.2');
  });

  test('encrypted in transit (required) and at rest', () => {
    expect(replicationGroup(template)).toMatchObject({
      TransitEncryptionEnabled: true,
      TransitEncryptionMode: 'required',
      AtRestEncryptionEnabled: true,
    });
  });

  test('the AUTH token is a dynamic reference to the generated secret, never a literal', () => {
    const [secretId, secret] = onlyResource(template, 'AWS::SecretsManager::Secret');
    const authToken = replicationGroup(template).AuthToken;
    expect(typeof authToken).not.toBe('string');
    expect(flatten(authToken)).toBe(`{{resolve:secretsmanager:\${Ref:${secretId}}:SecretString:::}}`);
    // ElastiCache AUTH tokens: 16-128 printable characters without / " @.
    expect(secret.Properties.GenerateSecretString).toMatchObject({ ExcludePunctuation: true });
    const length = secret.Properties.GenerateSecretString.PasswordLength;
    expect(length).toBeGreaterThanOrEqual(16);
    expect(length).toBeLessThanOrEqual(128);
    expect(stack.resolve(cache.authSecret.secretArn)).toEqual({ Ref: secretId });
  });

  test('Multi-AZ with automatic failover on two nodes (one replica)', () => {
    expect(replicationGroup(template)).toMatchObject({ NumCacheClusters: 2, MultiAZEnabled: true, AutomaticFailoverEnabled: true });
  });

  test('the subnet group uses the private subnets with egress of a VPC that also has isolated ones', () => {
    const [groupId, group] = onlyResource(template, 'AWS::ElastiCache::SubnetGroup');
    expect(group.Properties.SubnetIds).toEqual(stack.resolve(vpc.privateSubnets.map((s) => s.subnetId)));
    expect(replicationGroup(template).CacheSubnetGroupName).toEqual({ Ref: groupId });
  });

  test('its security group allows no egress and, before any grantConnect, no ingress', () => {
    const sgId = stack.getLogicalId(cache.securityGroup.node.defaultChild as ec2.CfnSecurityGroup);
    const sg = template.toJSON().Resources[sgId];
    expect(sg.Properties.SecurityGroupIngress).toBeUndefined();
    // CDK's marker rule for "no outbound traffic": nothing can match it.
    expect(sg.Properties.SecurityGroupEgress).toEqual([expect.objectContaining({ CidrIp: '255.255.255.255/32', IpProtocol: 'icmp', FromPort: 252, ToPort: 86 })]);
    const ingresses = Object.values(template.findResources('AWS::EC2::SecurityGroupIngress'))
      .filter((r) => JSON.stringify(r.Properties.GroupId).includes(sgId));
    expect(ingresses).toEqual([]);
    expect(replicationGroup(template).SecurityGroupIds).toEqual([{ 'Fn::GetAtt': [sgId, 'GroupId'] }]);
  });

  test('no parameter group on medium nodes', () => {
    template.resourceCountIs('AWS::ElastiCache::ParameterGroup', 0);
    expect(replicationGroup(template).CacheParameterGroupName).toBeUndefined();
  });

  test('exposes the primary endpoint address, port, TTL (one day) and key prefix', () => {
    const [groupId] = onlyResource(template, 'AWS::ElastiCache::ReplicationGroup');
    expect(stack.resolve(cache.endpointAddress)).toEqual({ 'Fn::GetAtt': [groupId, 'PrimaryEndPoint.Address'] });
    expect(cache.port).toBe(6379);
    expect(cache.exactCacheTtl.toSeconds()).toBe(86_400);
    expect(cache.keyPrefix).toBe('sai:');
  });

  test('the cache and its secret are destroyed with the stack by default (a cache can be recomputed)', () => {
    template.hasResource('AWS::ElastiCache::ReplicationGroup', { DeletionPolicy: 'Delete' });
    template.hasResource('AWS::SecretsManager::Secret', { DeletionPolicy: 'Delete' });
  });

  test('the non-rotated AUTH token secret is acknowledged for cdk-nag on the secret, with a reason', () => {
    const acks = acknowledgements(cache);
    const onSecret = acks.filter((a) => a.path === cache.authSecret.node.path && /SMG4|RotationEnabled/.test(a.id));
    expect(onSecret.map((a) => a.id).sort()).toEqual(['Annotation::AwsSolutions-SMG4', 'Annotation::NIST.800.53.R5-SecretsManagerRotationEnabled']);
    for (const ack of onSecret) expect(String(ack.reason)).toMatch(/rotat/i);
  });
});

describe('ResponseCache: grantConnect', () => {
  let stack: Stack;
  let template: Template;
  let cache: ResponseCache;
  let handlerSg: ec2.SecurityGroup;
  let key: kms.Key;
  let grant: iam.Grant;
  let role: iam.Role;

  beforeAll(() => {
    stack = newStack();
    const vpc = twoTierVpc(stack);
    key = new kms.Key(stack, 'Key', { enableKeyRotation: true });
    cache = new ResponseCache(stack, 'Cache', { vpc, port: 6380, encryptionKey: key });
    handlerSg = new ec2.SecurityGroup(stack, 'HandlerSg', { vpc });
    role = newGrantee(stack, 'HandlerRole');
    const grantee: ec2.IConnectable & iam.IGrantable = {
      connections: new ec2.Connections({ securityGroups: [handlerSg] }),
      grantPrincipal: role,
    };
    grant = cache.grantConnect(grantee);
    template = Template.fromStack(stack);
  });

  test('opens the cache port to the grantee\'s security group only', () => {
    const cacheSgId = stack.getLogicalId(cache.securityGroup.node.defaultChild as ec2.CfnSecurityGroup);
    const ingresses = Object.values(template.findResources('AWS::EC2::SecurityGroupIngress'))
      .filter((r) => JSON.stringify(r.Properties.GroupId).includes(cacheSgId))
      .map((r) => r.Properties);
    expect(ingresses).toEqual([expect.objectContaining({
      IpProtocol: 'tcp',
      FromPort: 6380,
      ToPort: 6380,
      SourceSecurityGroupId: stack.resolve(handlerSg.securityGroupId),
    })]);
    expect(ingresses[0].CidrIp).toBeUndefined();
  });

  test('lets the grantee read the AUTH token (and decrypt it with the customer key)', () => {
    const [secretId] = onlyResource(template, 'AWS::SecretsManager::Secret');
    expect(resourcesAllowing(template, 'secretsmanager:GetSecretValue')).toEqual([`\${Ref:${secretId}}`]);
    // Decryption through Secrets Manager only, in the grantee's own policy (kms:ViaService): the key
    // policy names no grantee, so a cache in another stack adds no reference back to this one.
    const [keyId, keyResource] = onlyResource(template, 'AWS::KMS::Key');
    const roleId = stack.getLogicalId(role.node.defaultChild as iam.CfnRole);
    expect(JSON.stringify(keyResource.Properties.KeyPolicy)).not.toContain(roleId);
    const decrypt = statementsAllowing(template, 'kms:Decrypt').map(({ statement }) => statement);
    expect(decrypt.map((s) => flatten(s.Resource))).toEqual([`\${GetAtt:${keyId}.Arn}`]);
    expect(flatten(decrypt[0].Condition!.StringEquals['kms:ViaService'])).toBe('secretsmanager.${AWS::Region}.${AWS::URLSuffix}');
    expect(grant.success).toBe(true);
    expect(wildcardActions(template)).toEqual([]);
  });

  test('the customer key encrypts the replication group and the secret', () => {
    const keyArn = stack.resolve(key.keyArn);
    expect(replicationGroup(template).KmsKeyId).toEqual(keyArn);
    template.hasResourceProperties('AWS::SecretsManager::Secret', { KmsKeyId: keyArn });
    expect(replicationGroup(template).Port).toBe(6380);
  });
});

describe('ResponseCache: options', () => {
  test('replicas 0: a single node, neither Multi-AZ nor automatic failover, and the finding is acknowledged', () => {
    const { template, cache } = cacheTemplate({ replicas: 0 });
    expect(replicationGroup(template)).toMatchObject({ NumCacheClusters: 1, MultiAZEnabled: false, AutomaticFailoverEnabled: false });
    const acks = acknowledgements(cache).filter((a) => a.id.includes('AwsSolutions-AEC4'));
    expect(acks).toHaveLength(1);
    expect(acks[0].path).toBe(cache.replicationGroup.node.path);
  });

  test('replicas 2: three nodes across AZs', () => {
    const { template, cache } = cacheTemplate({ replicas: 2 });
    expect(replicationGroup(template)).toMatchObject({ NumCacheClusters: 3, MultiAZEnabled: true, AutomaticFailoverEnabled: true });
    expect(acknowledgements(cache).filter((a) => a.id.includes('AwsSolutions-AEC4'))).toEqual([]);
  });

  test('with isolated subnets only the cache goes to them', () => {
    const stack = newStack();
    const vpc = new ec2.Vpc(stack, 'Vpc', { maxAzs: 2, natGateways: 0, subnetConfiguration: [{ name: 'data', subnetType: ec2.SubnetType.PRIVATE_ISOLATED }] });
    new ResponseCache(stack, 'Cache', { vpc });
    const [, group] = onlyResource(Template.fromStack(stack), 'AWS::ElastiCache::SubnetGroup');
    expect(group.Properties.SubnetIds).toEqual(stack.resolve(vpc.isolatedSubnets.map((s) => s.subnetId)));
  });

  test('an explicit selection is honoured (the isolated subnets of a VPC that also has private ones with egress)', () => {
    const stack = newStack();
    const vpc = orgVpc(stack);
    new ResponseCache(stack, 'Cache', { vpc, vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED } });
    const [, group] = onlyResource(Template.fromStack(stack), 'AWS::ElastiCache::SubnetGroup');
    expect(group.Properties.SubnetIds).toEqual(stack.resolve(vpc.isolatedSubnets.map((s) => s.subnetId)));
  });

  test('without isolated subnets the cache goes to the private subnets with egress', () => {
    const stack = newStack();
    const vpc = twoTierVpc(stack);
    new ResponseCache(stack, 'Cache', { vpc });
    const [, group] = onlyResource(Template.fromStack(stack), 'AWS::ElastiCache::SubnetGroup');
    expect(group.Properties.SubnetIds).toEqual(stack.resolve(vpc.privateSubnets.map((s) => s.subnetId)));
  });

  test.each([
    ['cache.t4g.small', '30'],
    ['cache.t4g.micro', '50'],
    ['cache.t3.small', '30'],
    ['cache.t3.micro', '50'],
  ])('%s reserves %s%% of memory for vector search in its own parameter group', (nodeType, percent) => {
    const { template } = cacheTemplate({ cacheNodeType: nodeType });
    const [groupId, group] = onlyResource(template, 'AWS::ElastiCache::ParameterGroup');
    expect(group.Properties).toMatchObject({
      CacheParameterGroupFamily: 'valkey8',
      Properties: { 'reserved-memory-percent': percent },
    });
    expect(replicationGroup(template)).toMatchObject({ CacheNodeType: nodeType, CacheParameterGroupName: { Ref: groupId } });
  });

  test.each(['cache.t4g.medium', 'cache.r7g.large', 'cache.m7g.xlarge'])('%s keeps the default parameter group', (nodeType) => {
    const { template } = cacheTemplate({ cacheNodeType: nodeType });
    template.resourceCountIs('AWS::ElastiCache::ParameterGroup', 0);
  });

  test('Valkey 9.0 on a small node uses the valkey9 parameter group family', () => {
    const { template } = cacheTemplate({ engineVersion: '9.0', cacheNodeType: 'cache.t4g.small' });
    template.hasResourceProperties('AWS::ElastiCache::ParameterGroup', { CacheParameterGroupFamily: 'valkey9' });
    expect(replicationGroup(template).EngineVersion).toBe('9.0');
  });

  test('TTL, key prefix, snapshots and removal policy are honoured', () => {
    const { template, cache } = cacheTemplate({
      exactCacheTtl: Duration.hours(6),
      keyPrefix: 'shop:v2:',
      snapshotRetentionLimit: 3,
      snapshotWindow: '03:00-04:00',
      removalPolicy: RemovalPolicy.RETAIN,
    });
    expect(replicationGroup(template).SnapshotWindow).toBe('03:00-04:00');
    expect(cache.exactCacheTtl.toSeconds()).toBe(21_600);
    expect(cache.keyPrefix).toBe('shop:v2:');
    expect(replicationGroup(template).SnapshotRetentionLimit).toBe(3);
    template.hasResource('AWS::ElastiCache::ReplicationGroup', { DeletionPolicy: 'Retain' });
    template.hasResource('AWS::SecretsManager::Secret', { DeletionPolicy: 'Retain' });
  });

  test.each([
    [0, /set to 0: no snapshots/],
    [1, /kept 1 day\(s\) \(snapshotRetentionLimit\).*15 or more/],
    [15, undefined],
  ])('snapshotRetentionLimit %d: the NIST backup finding is acknowledged below 15 days, with the reason', (days, reason) => {
    const { cache } = cacheTemplate({ snapshotRetentionLimit: days });
    const acks = acknowledgements(cache).filter((a) => a.id.endsWith('NIST.800.53.R5-ElastiCacheRedisClusterAutomaticBackup'));
    if (!reason) {
      expect(acks).toEqual([]);
    } else {
      expect(acks.map((a) => a.path)).toEqual([cache.replicationGroup.node.path]);
      expect(String(acks[0].reason)).toMatch(reason);
    }
  });
});

describe('ResponseCache: validation', () => {
  test.each(['8.2', '9.0', '8.2.1'])('accepts engineVersion %s', (engineVersion) => {
    const stack = newStack();
    expect(() => new ResponseCache(stack, 'Cache', { vpc: twoTierVpc(stack), engineVersion })).not.toThrow();
  });

  test.each<[string, Partial<ResponseCacheProps>, RegExp]>([
    ['Valkey 7.2 (no vector search)', { engineVersion: '7.2' }, /engineVersion/],
    ['Valkey 8.0', { engineVersion: '8.0' }, /engineVersion/],
    ['Valkey 8.1', { engineVersion: '8.1' }, /engineVersion/],
    ['a non-version engineVersion', { engineVersion: 'latest' }, /engineVersion/],
    ['a data-tiering node type', { cacheNodeType: 'cache.r6gd.xlarge' }, /cacheNodeType.*data tiering/],
    ['a malformed node type', { cacheNodeType: 't4g.medium' }, /cacheNodeType/],
    ['6 replicas', { replicas: 6 }, /replicas/],
    ['negative replicas', { replicas: -1 }, /replicas/],
    ['fractional replicas', { replicas: 1.5 }, /replicas/],
    ['port 80', { port: 80 }, /port/],
    ['port 65536', { port: 65_536 }, /port/],
    ['a key prefix with spaces', { keyPrefix: 'my app:' }, /keyPrefix/],
    ['a key prefix of 33 characters', { keyPrefix: 'a'.repeat(33) }, /keyPrefix/],
    ['TTL 0', { exactCacheTtl: Duration.seconds(0) }, /exactCacheTtl/],
    ['36 days of snapshots', { snapshotRetentionLimit: 36 }, /snapshotRetentionLimit/],
  ])('rejects %s', (_name, props, message) => {
    const stack = newStack();
    expect(() => new ResponseCache(stack, 'Cache', { vpc: twoTierVpc(stack), ...props })).toThrow(message);
  });

  test('rejects public subnets', () => {
    const stack = newStack();
    const vpc = twoTierVpc(stack);
    expect(() => new ResponseCache(stack, 'Cache', { vpc, vpcSubnets: { subnetType: ec2.SubnetType.PUBLIC } }))
      .toThrow(/ResponseCache: vpcSubnets selects public subnets; select private ones/);
  });
});
