/** TieredRouter: the `quotas` prop (its overrides parameter, the grant, validation), and JWT authorization with Cognito and a generic OIDC issuer. */
import { Duration } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as cognito from 'aws-cdk-lib/aws-cognito';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import { flatten, isolatedVpc, newStack, onlyResource, resourcesAllowing, routerConfig } from './helpers';
import { ModelTier, QuotaFailMode, ResponseCache, RouterAuthorization, ScalableAiService, TieredRouter, type TieredRouterProps } from '../../constructs';

const tier = () => ModelTier.bedrock({ tierId: 'small', modelId: 'amazon.nova-micro-v1:0', inputPricePer1kTokens: 0.000035, outputPricePer1kTokens: 0.00014 });

function router(props: Partial<TieredRouterProps> = {}, withCache = true) {
  const stack = newStack();
  const vpc = withCache ? isolatedVpc(stack) : undefined;
  const cache = vpc ? new ResponseCache(stack, 'Cache', { vpc }) : undefined;
  const built = new TieredRouter(stack, 'Router', { tiers: [tier()], cache, vpc, ...props });
  return { stack, router: built, template: Template.fromStack(stack) };
}

describe('TieredRouter: quotas', () => {
  test('none unless set: no quotas in the configuration and no overrides parameter', () => {
    const { template } = router();
    expect(routerConfig(template).quotas).toBeUndefined();
    expect(template.findResources('AWS::SSM::Parameter')).toEqual({});
  });

  test('`{}`: 600 requests per minute per tenant, fail open, and a new overrides parameter read every 60 s with ssm:GetParameter on it only', () => {
    const { template } = router({ quotas: {} });
    const [parameterId, parameter] = onlyResource(template, 'AWS::SSM::Parameter');
    expect(parameter.Properties).toMatchObject({ Type: 'String', Value: '{"tenants":{}}' });
    expect(routerConfig(template).quotas).toEqual({
      defaults: { requestsPerMinute: 600 },
      failMode: 'open',
      overridesParameter: `\${Ref:${parameterId}}`,
      overridesTtlSeconds: 60,
    });
    expect(resourcesAllowing(template, 'ssm:GetParameter')).toEqual([
      `arn:\${AWS::Partition}:ssm:\${AWS::Region}:\${AWS::AccountId}:parameter/\${Ref:${parameterId}}`,
    ]);
  });

  test('limits, fail mode and refresh as given; an existing parameter is read, none created', () => {
    const stack = newStack();
    const vpc = isolatedVpc(stack);
    const cache = new ResponseCache(stack, 'Cache', { vpc });
    const overridesParameter = ssm.StringParameter.fromStringParameterName(stack, 'Overrides', '/platform/ai/quota-overrides');
    new TieredRouter(stack, 'Router', {
      tiers: [tier()],
      cache,
      vpc,
      quotas: {
        requestsPerMinute: 120,
        costPerDayUsd: 25.5,
        userRequestsPerMinute: 20,
        userCostPerDayUsd: 2,
        failMode: QuotaFailMode.CLOSED,
        overridesParameter,
        overridesRefresh: Duration.minutes(5),
      },
    });
    const template = Template.fromStack(stack);
    expect(template.findResources('AWS::SSM::Parameter')).toEqual({});
    expect(routerConfig(template).quotas).toEqual({
      defaults: { requestsPerMinute: 120, costPerDayUsd: 25.5, userRequestsPerMinute: 20, userCostPerDayUsd: 2 },
      failMode: 'closed',
      overridesParameter: '/platform/ai/quota-overrides',
      overridesTtlSeconds: 300,
    });
    expect(resourcesAllowing(template, 'ssm:GetParameter')).toEqual(['arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/platform/ai/quota-overrides']);
  });

  test('ScalableAiService passes routerOptions.quotas to its router, and gives it the SSM endpoint the overrides are read through', () => {
    const stack = newStack();
    new ScalableAiService(stack, 'Service', { tiers: [tier()], enableMonitoring: false, routerOptions: { quotas: { costPerDayUsd: 10 } } });
    const template = Template.fromStack(stack);
    expect(routerConfig(template).quotas.defaults).toEqual({ requestsPerMinute: 600, costPerDayUsd: 10 });
    const endpoints = Object.values(template.findResources('AWS::EC2::VPCEndpoint')).map((e) => flatten(e.Properties.ServiceName));
    expect(endpoints).toContain('com.amazonaws.${AWS::Region}.ssm');
  });

  test('without a cache: refused, naming the prop', () => {
    expect(() => router({ quotas: {} }, false)).toThrow('TieredRouter: quotas need cache (the quota counters are kept in the response cache); set cache, or leave quotas out');
  });

  test.each<[string, Partial<TieredRouterProps['quotas']>, RegExp]>([
    ['a negative request limit', { requestsPerMinute: -1 }, /quotas\.requestsPerMinute must be a whole number of at least 0 .*; got -1/],
    ['a fractional user request limit', { userRequestsPerMinute: 1.5 }, /quotas\.userRequestsPerMinute must be a whole number of at least 0 .*; got 1.5/],
    ['a cost that is not a number', { costPerDayUsd: Number.NaN }, /quotas\.costPerDayUsd must be a number of at least 0 .*; got NaN/],
    ['a negative user cost', { userCostPerDayUsd: -0.01 }, /quotas\.userCostPerDayUsd must be a number of at least 0/],
    ['a refresh under 10 seconds', { overridesRefresh: Duration.seconds(5) }, /quotas\.overridesRefresh must be whole seconds between 10 seconds and 1 hour; got 5 seconds/],
    ['a refresh over an hour', { overridesRefresh: Duration.hours(2) }, /quotas\.overridesRefresh must be whole seconds between 10 seconds and 1 hour; got 2 hours/],
  ])('refuses %s', (_what, quotas, message) => {
    expect(() => router({ quotas })).toThrow(message);
  });

  test('0 is a limit (every request of a tenant without an override is refused)', () => {
    const { template } = router({ quotas: { requestsPerMinute: 0, costPerDayUsd: 0 } });
    expect(routerConfig(template).quotas.defaults).toEqual({ requestsPerMinute: 0, costPerDayUsd: 0 });
  });
});

describe('RouterAuthorization.jwt', () => {
  test('with a Cognito user pool: issuer the pool\'s provider URL, audience the app client id', () => {
    const stack = newStack();
    const pool = new cognito.UserPool(stack, 'Users', { customAttributes: { tenant_id: new cognito.StringAttribute({ mutable: false }) } });
    const client = pool.addClient('Web');
    new TieredRouter(stack, 'Router', {
      tiers: [tier()],
      authorization: RouterAuthorization.jwt({ issuer: pool.userPoolProviderUrl, audience: [client.userPoolClientId], tenantClaim: 'custom:tenant_id' }),
    });
    const template = Template.fromStack(stack);
    const [, authorizer] = onlyResource(template, 'AWS::ApiGatewayV2::Authorizer');
    expect(authorizer.Properties).toMatchObject({
      AuthorizerType: 'JWT',
      IdentitySource: ['$request.header.Authorization'],
      JwtConfiguration: {
        Audience: [{ Ref: stack.getLogicalId(client.node.defaultChild as cognito.CfnUserPoolClient) }],
        Issuer: { 'Fn::GetAtt': [stack.getLogicalId(pool.node.defaultChild as cognito.CfnUserPool), 'ProviderURL'] },
      },
    });
    expect(routerConfig(template).tenant).toEqual({ source: 'jwt', claim: 'custom:tenant_id' });
  });

  test('with any OIDC issuer (a Keycloak realm) and a custom tenant claim', () => {
    const { template } = router({
      authorization: RouterAuthorization.jwt({ issuer: 'https://login.example.com/realms/x', audience: ['assistant-api'], tenantClaim: 'org' }),
    }, false);
    template.hasResourceProperties('AWS::ApiGatewayV2::Authorizer', {
      AuthorizerType: 'JWT',
      JwtConfiguration: { Issuer: 'https://login.example.com/realms/x', Audience: ['assistant-api'] },
    });
    for (const routeKey of ['POST /v1/chat']) template.hasResourceProperties('AWS::ApiGatewayV2::Route', { RouteKey: routeKey, AuthorizationType: 'JWT' });
    expect(routerConfig(template).tenant).toEqual({ source: 'jwt', claim: 'org' });
  });

  test.each([
    ['an http issuer', 'http://login.example.com/realms/x'],
    ['an issuer with a query', 'https://login.example.com/realms/x?tenant=a'],
    ['not a URL', 'login.example.com'],
  ])('refuses %s, naming the issuer', (_what, issuer) => {
    expect(() => RouterAuthorization.jwt({ issuer, audience: ['a'] })).toThrow('RouterAuthorization.jwt: issuer must be an https:// URL without query or fragment');
  });

  test('refuses an empty audience', () => {
    expect(() => RouterAuthorization.jwt({ issuer: 'https://login.example.com/realms/x', audience: [] })).toThrow('audience must name at least one audience');
  });
});
