/** The helpers the construct tests rely on find what they claim to find. */
import { Template } from 'aws-cdk-lib/assertions';
import { flatten, iamPolicyStatements, parseJsonValue, resourcesAllowing, wildcardActions } from './helpers';

const template = Template.fromJSON({
  Resources: {
    Policy: {
      Type: 'AWS::IAM::Policy',
      Properties: {
        PolicyDocument: {
          Statement: [
            { Effect: 'Allow', Action: ['s3:GetObject', 's3:Put*'], Resource: { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':s3:::b/*']] } },
            { Effect: 'Allow', Action: 'bedrock:InvokeModel', Resource: [{ Ref: 'Profile' }, { 'Fn::GetAtt': ['Model', 'Arn'] }] },
          ],
        },
      },
    },
    Role: {
      Type: 'AWS::IAM::Role',
      Properties: {
        AssumeRolePolicyDocument: { Statement: { Effect: 'Allow', Action: 'sts:AssumeRole', Principal: { Service: 'lambda.amazonaws.com' } } },
        Policies: [{ PolicyName: 'inline', PolicyDocument: { Statement: { Effect: 'Allow', NotAction: 'iam:PassRole', Resource: '*' } } }],
      },
    },
    Managed: {
      Type: 'AWS::IAM::ManagedPolicy',
      Properties: { PolicyDocument: { Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }] } },
    },
    Key: {
      Type: 'AWS::KMS::Key',
      Properties: { KeyPolicy: { Statement: [{ Effect: 'Allow', Action: 'kms:*', Resource: '*' }] } },
    },
  },
});

test('iamPolicyStatements reads policies, managed policies and inline role policies, not trust or key policies', () => {
  expect(iamPolicyStatements(template).map((s) => s.logicalId)).toEqual(['Policy', 'Policy', 'Role', 'Managed']);
});

test('wildcardActions finds "*" in actions and NotAction statements', () => {
  expect(wildcardActions(template)).toEqual(['Policy: s3:Put*', 'Role: NotAction:iam:PassRole', 'Managed: *']);
});

test('flatten renders joins, pseudo parameters, Refs and GetAtts', () => {
  expect(resourcesAllowing(template, 'bedrock:InvokeModel')).toEqual(['${Ref:Profile}', '${GetAtt:Model.Arn}']);
  expect(resourcesAllowing(template, 's3:GetObject')).toEqual(['arn:${AWS::Partition}:s3:::b/*']);
  expect(flatten({ 'Fn::Select': [0, ['a']] })).toBe('${Fn::Select}');
  expect(() => flatten({ a: 1, b: 2 })).toThrow();
});

test('parseJsonValue parses a literal and a joined JSON document with tokens inside strings', () => {
  expect(parseJsonValue('{"a":1}')).toEqual({ a: 1 });
  expect(parseJsonValue({ 'Fn::Join': ['', ['{"host":"', { 'Fn::GetAtt': ['Cache', 'PrimaryEndPoint.Address'] }, '","port":6379}']] }))
    .toEqual({ host: '${GetAtt:Cache.PrimaryEndPoint.Address}', port: 6379 });
});

test('parseJsonValue reads a token in the place of a number as its placeholder string', () => {
  expect(parseJsonValue({ 'Fn::Join': ['', ['{"port":', { 'Fn::GetAtt': ['Db', 'Endpoint.Port'] }, ',"ports":[', { Ref: 'P' }, '],"s":"a${x}b"}']] }))
    .toEqual({ port: '${GetAtt:Db.Endpoint.Port}', ports: ['${Ref:P}'], s: 'a${x}b' });
});
