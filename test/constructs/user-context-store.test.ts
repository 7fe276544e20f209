import { Duration, RemovalPolicy, type Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as kms from 'aws-cdk-lib/aws-kms';
import {
  actionsOf, iamPolicyStatements, newGrantee, newStack, onlyResource, resourcesOf, wildcardActions,
} from './helpers';
import { UserContextBackend, UserContextStore, type UserContextStoreProps } from '../../constructs';
import { userContextRuntimeConfig } from '../../constructs/internal/store-runtime-config';

describe('UserContextStore: VALKEY backend (default)', () => {
  test('creates nothing and grants nothing: the context lives in the response cache', () => {
    const stack = newStack();
    const store = new UserContextStore(stack, 'UserContext');
    store.grantReadWrite(newGrantee(stack));
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::DynamoDB::Table', 0);
    template.resourceCountIs('AWS::DynamoDB::GlobalTable', 0);
    expect(iamPolicyStatements(template)).toEqual([]);
    expect(store.table).toBeUndefined();
    expect(store.backend).toBe(UserContextBackend.VALKEY);
    expect(store.maxTurns).toBe(10);
    expect(store.ttl.toDays()).toBe(7);
    expect(userContextRuntimeConfig(store)).toEqual({ kind: 'valkey', maxTurns: 10, ttlSeconds: 604_800 });
  });
});

describe('UserContextStore: DYNAMODB backend', () => {
  let stack: Stack;
  let store: UserContextStore;
  let template: Template;

  beforeAll(() => {
    stack = newStack();
    store = new UserContextStore(stack, 'UserContext', { backend: UserContextBackend.DYNAMODB, maxTurns: 20, ttl: Duration.days(30) });
    store.grantReadWrite(newGrantee(stack));
    template = Template.fromStack(stack);
  });

  test('a table keyed by pk (S) and sk (S), on-demand, with a TTL attribute expiresAt', () => {
    const [, table] = onlyResource(template, 'AWS::DynamoDB::Table');
    expect(table.Properties).toMatchObject({
      KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }, { AttributeName: 'sk', KeyType: 'RANGE' }],
      AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }, { AttributeName: 'sk', AttributeType: 'S' }],
      BillingMode: 'PAY_PER_REQUEST',
      TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
    });
    expect(table.Properties.ProvisionedThroughput).toBeUndefined();
  });

  test('point-in-time recovery on, encrypted with the AWS managed key, retained by default', () => {
    const [, table] = onlyResource(template, 'AWS::DynamoDB::Table');
    expect(table.Properties.PointInTimeRecoverySpecification).toEqual({ PointInTimeRecoveryEnabled: true });
    expect(table.Properties.SSESpecification).toEqual({ SSEEnabled: true });
    expect(table.DeletionPolicy).toBe('Retain');
    expect(table.UpdateReplacePolicy).toBe('Retain');
  });

  test('grantReadWrite: the six item actions, named one by one, on the table only', () => {
    const [tableId] = onlyResource(template, 'AWS::DynamoDB::Table');
    const statements = iamPolicyStatements(template).map(({ statement }) => statement);
    expect(statements).toHaveLength(1);
    expect(actionsOf(statements[0]).sort()).toEqual([
      'dynamodb:BatchWriteItem', 'dynamodb:DeleteItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query', 'dynamodb:UpdateItem',
    ]);
    expect(resourcesOf(statements[0])).toEqual([`\${GetAtt:${tableId}.Arn}`]);
    expect(wildcardActions(template)).toEqual([]);
  });

  test('the runtime configuration names the table, turns and TTL', () => {
    const [tableId] = onlyResource(template, 'AWS::DynamoDB::Table');
    expect(stack.resolve(userContextRuntimeConfig(store))).toEqual({ kind: 'dynamodb', tableName: { Ref: tableId }, maxTurns: 20, ttlSeconds: 2_592_000 });
  });

  test('a KMS key encrypts the table and is granted with grantReadWrite; a removal policy applies', () => {
    const s = newStack();
    const key = new kms.Key(s, 'Key', { enableKeyRotation: true });
    const kmsStore = new UserContextStore(s, 'UserContext', { backend: UserContextBackend.DYNAMODB, encryptionKey: key, removalPolicy: RemovalPolicy.DESTROY });
    kmsStore.grantReadWrite(newGrantee(s));
    const t = Template.fromStack(s);
    const [, table] = onlyResource(t, 'AWS::DynamoDB::Table');
    const keyId = s.getLogicalId(key.node.defaultChild as kms.CfnKey);
    expect(table.Properties.SSESpecification).toEqual({ SSEEnabled: true, SSEType: 'KMS', KMSMasterKeyId: { 'Fn::GetAtt': [keyId, 'Arn'] } });
    expect(table.DeletionPolicy).toBe('Delete');
    const kmsStatements = iamPolicyStatements(t).filter(({ statement }) => actionsOf(statement).some((a) => a.startsWith('kms:')));
    expect(kmsStatements.map(({ statement }) => [actionsOf(statement).sort(), resourcesOf(statement)])).toEqual([
      [['kms:Decrypt', 'kms:DescribeKey', 'kms:Encrypt', 'kms:GenerateDataKey'], [`\${GetAtt:${keyId}.Arn}`]],
    ]);
    expect(wildcardActions(t)).toEqual([]);
  });
});

describe('UserContextStore: validation', () => {
  test.each<[string, UserContextStoreProps, RegExp]>([
    ['maxTurns 0', { maxTurns: 0 }, /UserContextStore: maxTurns must be an integer from 1 to 100; got 0/],
    ['maxTurns 101', { maxTurns: 101 }, /maxTurns/],
    ['fractional maxTurns', { maxTurns: 2.5 }, /maxTurns/],
    ['ttl 30 seconds', { ttl: Duration.seconds(30) }, /UserContextStore: ttl must be between 1 minute and 365 days; got 30 seconds/],
    ['ttl 400 days', { ttl: Duration.days(400) }, /ttl must be between 1 minute and 365 days/],
    ['an encryption key with the VALKEY backend', { encryptionKey: {} as kms.IKey }, /encryptionKey applies to the DYNAMODB backend only/],
    ['a removal policy with the VALKEY backend', { backend: UserContextBackend.VALKEY, removalPolicy: RemovalPolicy.DESTROY }, /removalPolicy applies to the DYNAMODB backend only/],
  ])('rejects %s', (_name, props, message) => {
    expect(() => new UserContextStore(newStack(), 'UserContext', props)).toThrow(message);
  });

  test('accepts the bounds', () => {
    expect(() => new UserContextStore(newStack(), 'A', { maxTurns: 1, ttl: Duration.minutes(1) })).not.toThrow();
    expect(() => new UserContextStore(newStack(), 'B', { maxTurns: 100, ttl: Duration.days(365) })).not.toThrow();
  });
});
