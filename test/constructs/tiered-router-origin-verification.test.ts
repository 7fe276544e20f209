import { Duration } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { newStack, routerConfig } from './helpers';
import { ModelTier, RouterAuthorization, ScalableAiService, TieredRouter } from '../../constructs';

const tier = () => ModelTier.bedrock({ tierId: 'small', modelId: 'amazon.nova-micro-v1:0', inputPricePer1kTokens: 0.000035, outputPricePer1kTokens: 0.00014, maxTokens: 512, timeout: Duration.seconds(8) });
const jwt = RouterAuthorization.jwt({ issuer: 'https://issuer.example.com', audience: ['app'] });

describe('TieredRouter originVerification', () => {
  test('health route without authorizer, secret read granted, config carries the secret', () => {
    const stack = newStack('Edge', { env: { account: '111122223333', region: 'eu-west-1' } });
    const originSecret = new secretsmanager.Secret(stack, 'Origin');
    new TieredRouter(stack, 'Router', { tiers: [tier()], authorization: jwt, originVerification: { originSecret, edgeCacheTtl: Duration.minutes(10) } });
    const t = Template.fromStack(stack);
    t.hasResourceProperties('AWS::ApiGatewayV2::Route', { RouteKey: 'GET /v1/health', AuthorizationType: 'NONE' });
    t.hasResourceProperties('AWS::ApiGatewayV2::Route', { RouteKey: 'POST /v1/chat', AuthorizationType: 'JWT' });
    t.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Action: Match.arrayWith(['secretsmanager:GetSecretValue']) })]) },
    });
    const config = routerConfig(t) as { originVerification: { refreshSeconds: number; edgeCacheSeconds: number } };
    expect(config.originVerification).toMatchObject({ refreshSeconds: 300, edgeCacheSeconds: 600 });
  });

  test('behind the edge, static answers have no API Gateway authorizer (CloudFront forwards no Authorization on a cached GET)', () => {
    const stack = newStack('Edge', { env: { account: '111122223333', region: 'eu-west-1' } });
    const originSecret = new secretsmanager.Secret(stack, 'Origin');
    new ScalableAiService(stack, 'Service', { tiers: [tier()], staticAnswers: {}, enableMonitoring: false, routerOptions: { authorization: jwt, originVerification: { originSecret } } });
    const t = Template.fromStack(stack);
    t.hasResourceProperties('AWS::ApiGatewayV2::Route', { RouteKey: 'GET /v1/static-answers', AuthorizationType: 'NONE' });
    t.hasResourceProperties('AWS::ApiGatewayV2::Route', { RouteKey: 'PUT /v1/context/preferences', AuthorizationType: 'JWT' });
    const plain = newStack();
    new ScalableAiService(plain, 'Service', { tiers: [tier()], staticAnswers: {}, enableMonitoring: false, routerOptions: { authorization: jwt } });
    Template.fromStack(plain).hasResourceProperties('AWS::ApiGatewayV2::Route', { RouteKey: 'GET /v1/static-answers', AuthorizationType: 'JWT' });
  });

  test('a batch pipeline (whose jobs API does not check the origin secret) is refused behind the edge', () => {
    const stack = newStack('Edge', { env: { account: '111122223333', region: 'eu-west-1' } });
    const originSecret = new secretsmanager.Secret(stack, 'Origin');
    expect(() => new ScalableAiService(stack, 'Service', { tiers: [tier()], batchPipeline: {}, routerOptions: { authorization: jwt, originVerification: { originSecret } } }))
      .toThrow(/batchPipeline cannot be combined with routerOptions.originVerification/);
  });

  test('no health route without originVerification', () => {
    const stack = newStack();
    new TieredRouter(stack, 'Router', { tiers: [tier()], authorization: jwt });
    expect(JSON.stringify(Template.fromStack(stack).findResources('AWS::ApiGatewayV2::Route'))).not.toContain('/v1/health');
  });

  test('IAM authorization is refused, and a secret of another Region', () => {
    const stack = newStack('E', { env: { account: '111122223333', region: 'eu-west-1' } });
    const originSecret = secretsmanager.Secret.fromSecretCompleteArn(stack, 'S', 'arn:aws:secretsmanager:us-east-1:111122223333:secret:origin-AbCdEf');
    expect(() => new TieredRouter(stack, 'A', { tiers: [tier()], originVerification: { originSecret } })).toThrow(/authorization: RouterAuthorization.jwt.*SigV4/);
    expect(() => new TieredRouter(stack, 'B', { tiers: [tier()], authorization: jwt, originVerification: { originSecret } })).toThrow(/Region \(eu-west-1\).*us-east-1/);
  });
});
