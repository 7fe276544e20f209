/**
 * Props that synthesized but failed later or behaved wrongly: a JWT issuer that is not an https
 * URL, reserved concurrency 0, tiers not ordered cheapest first, prices per million tokens, and a
 * router configuration too large for Lambda's 4 KB of environment (kept in SSM instead).
 */
import { Duration, Lazy, type Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import { flatten, isolatedVpc, newStack, parseJsonValue, routerConfig, statementsAllowing } from './helpers';
import { BatchPipeline, ModelTier, ResponseCache, RouterAuthorization, ScalableAiService, TieredRouter, type IModelTier, type TieredRouterProps } from '../../constructs';

const ROUTER_CONFIG = 'SCALABLE_AI_ROUTER_CONFIG';
const ROUTER_CONFIG_PARAMETER = 'SCALABLE_AI_ROUTER_CONFIG_PARAMETER';

function tier(tierId: string, inputPrice: number, outputPrice: number): IModelTier {
  return ModelTier.bedrock({ tierId, modelId: 'amazon.nova-micro-v1:0', inputPricePer1kTokens: inputPrice, outputPricePer1kTokens: outputPrice, timeout: Duration.seconds(10) });
}

/** A tier on an application inference profile: the longest model ids a configuration carries. */
function profileTier(i: number): IModelTier {
  return ModelTier.bedrock({
    tierId: `tier-${String(i).padStart(2, '0')}`,
    modelId: 'arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abcdefghij12',
    profileModelIds: ['anthropic.claude-3-5-haiku-20241022-v1:0'],
    inputPricePer1kTokens: 0.0008 * (i + 1),
    outputPricePer1kTokens: 0.004 * (i + 1),
    timeout: Duration.seconds(10),
  });
}

function router(props: Partial<TieredRouterProps> = {}, stack: Stack = newStack()): TieredRouter {
  return new TieredRouter(stack, 'Router', { tiers: [tier('small', 0.000035, 0.00014), tier('large', 0.003, 0.015)], ...props });
}

/** The environment variables of `fn` in the template. */
function variablesOf(stack: Stack, template: Template, fn: lambda.IFunction): Record<string, unknown> {
  const id = stack.getLogicalId(fn.node.defaultChild as lambda.CfnFunction);
  return template.toJSON().Resources[id].Properties.Environment.Variables;
}

describe('RouterAuthorization.jwt: issuer', () => {
  test.each([
    ['an http URL', 'http://issuer.example.com'],
    ['a bare host name', 'issuer.example.com'],
    ['a URL with a query', 'https://issuer.example.com/pool?x=1'],
    ['a URL with a fragment', 'https://issuer.example.com/pool#keys'],
    ['an empty string', ''],
  ])('rejects %s, naming the prop and why', (_name, issuer) => {
    expect(() => RouterAuthorization.jwt({ issuer, audience: ['web'] }))
      .toThrow(new RegExp(`RouterAuthorization.jwt: issuer must be an https:// URL without query or fragment \\(API Gateway fetches the issuer's signing keys from it.*got "${issuer.replace(/[?.]/g, '\\$&')}"`));
  });

  test('accepts an https issuer, with or without a path or trailing slash, and a token unchecked', () => {
    for (const issuer of ['https://cognito-idp.us-east-1.amazonaws.com/us-east-1_AbCdEf123', 'https://tenant.eu.auth0.com/', 'https://login.example.com']) {
      expect(() => RouterAuthorization.jwt({ issuer, audience: ['web'] })).not.toThrow();
    }
    const token = Lazy.string({ produce: () => 'https://issuer.example.com' });
    expect(() => RouterAuthorization.jwt({ issuer: token, audience: ['web'] })).not.toThrow();
  });
});

describe('TieredRouter: reservedConcurrentExecutions', () => {
  test.each([0, -1, 2.5])('rejects %p: 0 throttles every request', (reserved) => {
    expect(() => router({ reservedConcurrentExecutions: reserved }))
      .toThrow(`TieredRouter: reservedConcurrentExecutions must be an integer of at least 1 (0 reserves no capacity and throttles every request; leave it unset for unreserved concurrency); got ${reserved}`);
  });

  test('accepts 1 and reserves it', () => {
    const stack = newStack();
    router({ reservedConcurrentExecutions: 1 }, stack);
    Template.fromStack(stack).hasResourceProperties('AWS::Lambda::Function', { ReservedConcurrentExecutions: 1 });
  });
});

describe('TieredRouter: tier order and prices (warnings)', () => {
  function warningsOf(tiers: IModelTier[]): string[] {
    const stack = newStack();
    router({ tiers }, stack);
    return Annotations.fromStack(stack).findWarning('/TestStack/Router', Match.anyValue()).map((w) => String(w.entry.data));
  }

  test('tiers ordered cheapest first, and tiers without prices, draw no warning', () => {
    expect(warningsOf([tier('small', 0.000035, 0.00014), tier('medium', 0.0008, 0.004), tier('large', 0.015, 0.075)])).toEqual([]);
    // Unpriced (SageMaker tiers whose cost is not accounted) and crossing prices are left alone.
    expect(warningsOf([tier('small', 0.0008, 0.004), tier('free', 0, 0), tier('long-input', 0.0001, 0.01)])).toEqual([]);
  });

  test('a tier listed after a dearer one is named in a warning with a stable id', () => {
    const warnings = warningsOf([tier('small', 0.000035, 0.00014), tier('large', 0.003, 0.015), tier('medium', 0.0008, 0.004)]);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^TieredRouter: tiers are not ordered cheapest first \("medium" is cheaper than "large" before it\)\. .*fallback tries the later tiers first, and answers of an earlier tier standing in for a later one are not cached/);
    expect(warnings[0]).toMatch(/\[ack: cdk-scalable-ai:tierOrder\]$/);
  });

  test('every tier out of order is named, with every dearer tier before it', () => {
    const [warning] = warningsOf([tier('c', 0.003, 0.015), tier('b', 0.0008, 0.004), tier('a', 0.0001, 0.0004)]);
    expect(warning).toContain('"b" is cheaper than "c" before it; "a" is cheaper than "c", "b" before it');
  });

  test('a price above 0.2 USD per 1,000 tokens is taken for a price per million tokens', () => {
    const warnings = warningsOf([tier('small', 0.000035, 0.00014), tier('opus', 15, 75)]);
    expect(warnings).toEqual([
      expect.stringMatching(/^TieredRouter: tier "opus" has inputPricePer1kTokens 15 USD, above 0\.2 USD per 1,000 tokens.*: this looks like a price per million tokens; prices are per 1,000 tokens \(divide by 1,000\) \[ack: cdk-scalable-ai:pricePerMillion\]$/),
      expect.stringMatching(/^TieredRouter: tier "opus" has outputPricePer1kTokens 75 USD/),
    ]);
  });

  test('the dearest Bedrock price per 1,000 tokens (Claude Opus 4 output, 0.075) draws no warning', () => {
    expect(warningsOf([tier('small', 0.000035, 0.00014), tier('opus', 0.015, 0.075)])).toEqual([]);
  });
});

describe('TieredRouter: configuration size', () => {
  test('a small configuration stays in the environment: no parameter, no SSM permission', () => {
    const stack = newStack();
    const r = router({}, stack);
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::SSM::Parameter', 0);
    expect(statementsAllowing(template, 'ssm:GetParameter')).toEqual([]);
    expect(routerConfig(template).tiers).toHaveLength(2);
    expect(variablesOf(stack, template, r.function)[ROUTER_CONFIG_PARAMETER]).toBeUndefined();
    expect(r._runtimeConfigReaders).toEqual([]);
  });

  test('twelve tiers on application inference profile ARNs, with a cache, go to an SSM parameter; the environment carries only its name', () => {
    const stack = newStack();
    const vpc = isolatedVpc(stack);
    const cache = new ResponseCache(stack, 'Cache', { vpc });
    const tiers = Array.from({ length: 12 }, (_, i) => profileTier(i));
    const r = router({ tiers, cache, vpc, semanticCache: {} }, stack);
    const template = Template.fromStack(stack);

    const parameters = template.findResources('AWS::SSM::Parameter');
    expect(Object.keys(parameters)).toHaveLength(1);
    const [parameterId, parameter] = Object.entries(parameters)[0];
    // Standard (free) when the deployed value fits 4 KB, advanced otherwise.
    expect(parameter.Properties).toMatchObject({ Type: 'String', Tier: 'Intelligent-Tiering' });
    const config = parseJsonValue(parameter.Properties.Value);
    expect(config.tiers.map((t: { id: string }) => t.id)).toEqual(tiers.map((t) => t.tierId));

    const variables = variablesOf(stack, template, r.function);
    expect(variables[ROUTER_CONFIG]).toBeUndefined();
    expect(variables[ROUTER_CONFIG_PARAMETER]).toEqual({ Ref: parameterId });
    expect(JSON.stringify(variables).length).toBeLessThan(1024);

    // Read access to that one parameter, nothing else of SSM.
    const statements = statementsAllowing(template, 'ssm:GetParameter');
    expect(statements).toHaveLength(1);
    expect(statements[0].statement.Action).toBe('ssm:GetParameter');
    expect(flatten(statements[0].statement.Resource)).toBe(`arn:\${AWS::Partition}:ssm:\${AWS::Region}:\${AWS::AccountId}:parameter/\${Ref:${parameterId}}`);
    expect(r._runtimeConfigReaders).toEqual([r.function]);
  });

  test('each function decides for itself: the batch pipeline\'s functions, which also carry their own configuration, may read it from SSM while the router keeps it inline', () => {
    const stack = newStack();
    const tiers = Array.from({ length: 12 }, (_, i) => profileTier(i));
    const r = router({ tiers }, stack);
    const pipeline = new BatchPipeline(stack, 'Pipeline', { router: r, bulk: { tier: tiers[0] } });
    const template = Template.fromStack(stack);
    expect(variablesOf(stack, template, r.function)[ROUTER_CONFIG]).toBeDefined();
    for (const fn of [pipeline.workerFunction, pipeline.jobsApiFunction, pipeline.completionFunction!]) {
      const variables = variablesOf(stack, template, fn);
      expect(variables[ROUTER_CONFIG]).toBeUndefined();
      expect(variables[ROUTER_CONFIG_PARAMETER]).toBeDefined();
    }
    expect(r._runtimeConfigReaders).toEqual([pipeline.jobsApiFunction, pipeline.workerFunction, pipeline.completionFunction]);
    template.resourceCountIs('AWS::SSM::Parameter', 1);
  });

  test('a configuration that not even an SSM parameter holds fails at synth, saying what to shorten', () => {
    const tiers = Array.from({ length: 40 }, (_, i) => profileTier(i));
    expect(() => router({ tiers, classifierThresholds: Array.from({ length: 39 }, (_, i) => (i + 1) / 40) }))
      .toThrow(/TieredRouter: the router's configuration comes to about \d+ bytes once deployed, more than an SSM parameter holds \(8192 bytes, advanced tier\).*give fewer tiers, or shorter modelIds/);
  });

  test('an environment pushed over 4 KB after the router configured the function fails validation at synth', () => {
    const stack = newStack();
    const r = router({}, stack);
    (r.function as lambda.Function).addEnvironment('LARGE', 'x'.repeat(4_000));
    expect(() => Template.fromStack(stack)).toThrow(/The environment variables of TestStack\/Router\/Handler\/Function come to about \d+ bytes once deployed .* over Lambda's limit of 4096 bytes/);
  });

  test('ScalableAiService adds an SSM endpoint to the VPC it creates, admitting only the functions that read the configuration from SSM', () => {
    const endpointsOf = (tiers: IModelTier[]) => {
      const stack = newStack();
      const service = new ScalableAiService(stack, 'Service', { tiers });
      const template = Template.fromStack(stack);
      const ssmEndpoints = Object.entries(template.findResources('AWS::EC2::VPCEndpoint'))
        .filter(([, e]) => flatten(e.Properties.ServiceName).endsWith('.ssm'));
      return { stack, service, template, ssmEndpoints };
    };
    expect(endpointsOf([tier('small', 0.000035, 0.00014)]).ssmEndpoints).toEqual([]);

    const { stack, service, template, ssmEndpoints } = endpointsOf(Array.from({ length: 12 }, (_, i) => profileTier(i)));
    expect(ssmEndpoints).toHaveLength(1);
    const endpointSg = JSON.stringify(ssmEndpoints[0][1].Properties.SecurityGroupIds[0]);
    const ingress = Object.values(template.findResources('AWS::EC2::SecurityGroupIngress'))
      .filter((rule) => JSON.stringify(rule.Properties.GroupId) === endpointSg);
    const routerSg = stack.resolve(service.router.function.connections.securityGroups[0].securityGroupId);
    expect(ingress.map((rule) => [rule.Properties.SourceSecurityGroupId, rule.Properties.FromPort])).toEqual([[routerSg, 443]]);
    expect(service.vpcEndpoints.map((e) => e.node.id)).toContain('Ssm');
  });
});
