import * as fs from 'node:fs';
import * as path from 'node:path';
import { Duration, Stack, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as acm from 'aws-cdk-lib/aws-certificatemanager';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { AwsSolutionsChecks, NIST80053R5Checks } from 'cdk-nag';
import { newApp, newStack, readReport, trySynth } from './helpers';
import { EdgeDistribution, type EdgeDistributionProps, type EdgeOrigins } from '../../constructs';
import { EDGE_AUTH_CONFIG_FILE, EDGE_TENANT_HEADER, ORIGIN_SECRET_HEADER } from '../../constructs/contract/edge';

const CACHING_DISABLED = '4135ea2d-6df8-44a3-9df3-4b5a84be39ad';

function edgeOrigins(stack: Stack): EdgeOrigins {
  return {
    primary: { region: 'us-east-1', domainName: 'us-east-1.api.example.com' },
    secondary: { region: 'eu-west-1', domainName: 'eu-west-1.api.example.com' },
    failoverDomainName: 'api.example.com',
    originSecret: new secretsmanager.Secret(stack, 'OriginSecret'),
    jwt: { issuer: 'https://issuer.example.com', audience: ['app'], tenantClaim: 'org' },
  };
}

function synth(props: Partial<EdgeDistributionProps> = {}) {
  const stack = newStack('Edge', { env: { region: 'us-east-1', account: '111111111111' } });
  const edge = new EdgeDistribution(stack, 'Edge', { origins: edgeOrigins(stack), ...props });
  return { stack, edge, template: Template.fromStack(stack) };
}

function distributionConfig(template: Template): any {
  return Object.values(template.findResources('AWS::CloudFront::Distribution'))[0]!.Properties.DistributionConfig;
}

function behavior(config: any, pattern: string): any {
  return config.CacheBehaviors.find((b: any) => b.PathPattern === pattern);
}

function cachePolicy(template: Template, ref: any): any {
  return template.toJSON().Resources[ref.Ref].Properties.CachePolicyConfig;
}

describe('EdgeDistribution', () => {
  const { template } = synth();
  const config = distributionConfig(template);

  test('GET routes go to an origin group of primary and secondary that fails over on 5xx', () => {
    expect(config.OriginGroups.Quantity).toBe(1);
    const group = config.OriginGroups.Items[0];
    expect(group.Members.Items).toHaveLength(2);
    expect(group.FailoverCriteria.StatusCodes.Items.sort()).toEqual([500, 502, 503, 504]);
    const byId = Object.fromEntries(config.Origins.map((o: any) => [o.Id, o.DomainName]));
    expect(group.Members.Items.map((m: any) => byId[m.OriginId])).toEqual(['us-east-1.api.example.com', 'eu-west-1.api.example.com']);
    expect(behavior(config, '/v1/jobs/*').TargetOriginId).toBe(group.Id);
    expect(behavior(config, '/v1/static-answers*').TargetOriginId).toBe(group.Id);
  });

  test('POST routes (the default behaviour) go to the failover name, never cached, all viewer headers but Host and the edge tenant', () => {
    const def = config.DefaultCacheBehavior;
    const byId = Object.fromEntries(config.Origins.map((o: any) => [o.Id, o.DomainName]));
    expect(byId[def.TargetOriginId]).toBe('api.example.com');
    expect(def.AllowedMethods).toEqual(expect.arrayContaining(['POST', 'PUT', 'DELETE']));
    expect(def.CachePolicyId).toBe(CACHING_DISABLED);
    // A viewer's own x-edge-tenant never reaches a router, on any behaviour.
    for (const b of [def, ...config.CacheBehaviors]) {
      const [, policy] = Object.entries(template.findResources('AWS::CloudFront::OriginRequestPolicy'))
        .find(([id]) => JSON.stringify(b.OriginRequestPolicyId).includes(id))!;
      const headers = (policy as any).Properties.OriginRequestPolicyConfig.HeadersConfig;
      expect(headers.HeaderBehavior).toBe('allExcept');
      expect(headers.Headers).toEqual(expect.arrayContaining(['host', EDGE_TENANT_HEADER]));
    }
  });

  test('job status is keyed by Authorization with TTLs of 0 (never shared between callers)', () => {
    const policy = cachePolicy(template, behavior(config, '/v1/jobs/*').CachePolicyId);
    expect(policy.DefaultTTL).toBe(0);
    expect(policy.ParametersInCacheKeyAndForwardedToOrigin.HeadersConfig.Headers).toEqual(['Authorization']);
  });

  test('static answers are keyed by the verified tenant and the query string, not Authorization', () => {
    const policy = cachePolicy(template, behavior(config, '/v1/static-answers*').CachePolicyId);
    const key = policy.ParametersInCacheKeyAndForwardedToOrigin;
    expect(key.HeadersConfig.Headers).toEqual([EDGE_TENANT_HEADER]);
    expect(key.QueryStringsConfig.QueryStringBehavior).toBe('all');
    expect(policy.MinTTL).toBe(0);
    expect(policy.MaxTTL).toBe(3600);
    const { template: t } = synth({ staticAnswersCacheTtl: Duration.minutes(10) });
    t.hasResourceProperties('AWS::CloudFront::CachePolicy', { CachePolicyConfig: Match.objectLike({ MaxTTL: 600 }) });
  });

  test('the viewer-request verifier is on static answers only, with its staged configuration', () => {
    const assoc = behavior(config, '/v1/static-answers*').LambdaFunctionAssociations;
    expect(assoc).toHaveLength(1);
    expect(assoc[0].EventType).toBe('viewer-request');
    expect(behavior(config, '/v1/jobs/*').LambdaFunctionAssociations).toBeUndefined();
    const { stack } = synth();
    const asm = (stack.node.root as any).synth();
    const fn = Object.values(Template.fromStack(stack).findResources('AWS::Lambda::Function'))
      .find((r: any) => r.Properties.Handler === 'index.handler' && r.Properties.Runtime === 'nodejs22.x') as any;
    expect(fn).toBeDefined();
    const assetDirs = fs.readdirSync(asm.directory).filter((d: string) => d.startsWith('asset.'));
    const staged = assetDirs.map((d: string) => path.join(asm.directory, d, EDGE_AUTH_CONFIG_FILE)).filter((f: string) => fs.existsSync(f));
    expect(staged).toHaveLength(1);
    expect(JSON.parse(fs.readFileSync(staged[0]!, 'utf8'))).toEqual({ issuer: 'https://issuer.example.com', audience: ['app'], tenantClaim: 'org' });
  });

  test('every origin carries the origin secret header, HTTPS only with TLS 1.2', () => {
    expect(config.Origins).toHaveLength(3);
    for (const origin of config.Origins) {
      expect(origin.OriginCustomHeaders.map((h: any) => h.HeaderName)).toEqual([ORIGIN_SECRET_HEADER]);
      expect(JSON.stringify(origin.OriginCustomHeaders[0].HeaderValue)).toContain('resolve:secretsmanager');
      expect(origin.CustomOriginConfig.OriginProtocolPolicy).toBe('https-only');
      expect(origin.CustomOriginConfig.OriginSSLProtocols).toEqual(['TLSv1.2']);
    }
  });

  test('viewers: HTTPS only on every behaviour; TLSv1.2_2021 with a domain', () => {
    for (const b of [config.DefaultCacheBehavior, ...config.CacheBehaviors]) expect(b.ViewerProtocolPolicy).toBe('https-only');
    const stack = newStack('EdgeDomain', { env: { region: 'us-east-1' } });
    new EdgeDistribution(stack, 'Edge', {
      origins: edgeOrigins(stack),
      domainName: 'edge.example.com',
      certificate: acm.Certificate.fromCertificateArn(stack, 'Cert', 'arn:aws:acm:us-east-1:111111111111:certificate/abc'),
    });
    const withDomain = distributionConfig(Template.fromStack(stack));
    expect(withDomain.Aliases).toEqual(['edge.example.com']);
    expect(withDomain.ViewerCertificate.MinimumProtocolVersion).toBe('TLSv1.2_2021');
  });

  test('the WAF web ACL is attached with the common rule set and the rate rule at the prop limit', () => {
    const { template: t } = synth({ rateLimitPerFiveMinutes: 500 });
    const aclId = Object.keys(t.findResources('AWS::WAFv2::WebACL'))[0]!;
    expect(distributionConfig(t).WebACLId).toEqual({ 'Fn::GetAtt': [aclId, 'Arn'] });
    t.hasResourceProperties('AWS::WAFv2::WebACL', {
      Scope: 'CLOUDFRONT',
      Rules: Match.arrayWith([
        Match.objectLike({ Statement: { RateBasedStatement: Match.objectLike({ Limit: 500, AggregateKeyType: 'IP' }) } }),
        Match.objectLike({ Statement: { ManagedRuleGroupStatement: Match.objectLike({ Name: 'AWSManagedRulesCommonRuleSet' }) } }),
      ]),
    });
  });

  test('access logs go to an encrypted, TLS-only bucket', () => {
    const bucketId = distributionConfig(template).Logging.Bucket['Fn::GetAtt'][0];
    const bucket = template.toJSON().Resources[bucketId].Properties;
    expect(bucket.BucketEncryption.ServerSideEncryptionConfiguration[0].ServerSideEncryptionByDefault.SSEAlgorithm).toBe('AES256');
    expect(bucket.PublicAccessBlockConfiguration.BlockPublicPolicy).toBe(true);
  });

  test('the rotation schedule names the secret; the rotation role may update only this distribution', () => {
    template.hasResourceProperties('AWS::SecretsManager::RotationSchedule', {
      RotationRules: { ScheduleExpression: 'rate(30 days)' },
    });
    const json = JSON.stringify(template.findResources('AWS::IAM::Policy'));
    expect(json).toContain('cloudfront:UpdateDistribution');
    const policies = Object.values(template.findResources('AWS::IAM::Policy')) as any[];
    const stmt = policies.flatMap((p) => p.Properties.PolicyDocument.Statement)
      .find((s: any) => JSON.stringify(s.Action).includes('cloudfront:UpdateDistribution'));
    expect(JSON.stringify(stmt.Resource)).toContain('distribution/');
    expect(stmt.Resource).not.toBe('*');
    // UpdateDistribution re-submits the Lambda@Edge association: the role may read and replicate that one
    // version, with the action name CloudFront documents (the trailing asterisk is required).
    const edge = policies.flatMap((p) => p.Properties.PolicyDocument.Statement)
      .find((s: any) => JSON.stringify(s.Action).includes('lambda:EnableReplication'));
    expect([...edge.Action].sort()).toEqual(['lambda:EnableReplication*', 'lambda:GetFunction']);
    expect(JSON.stringify(edge.Resource)).toMatch(/EdgeAuth.*CurrentVersion/);
    // One invoke permission for Secrets Manager: the rotation schedule's.
    expect(Object.values(template.findResources('AWS::Lambda::Permission')).filter((p: any) => p.Properties.Principal === 'secretsmanager.amazonaws.com')).toHaveLength(1);
  });

  test('refuses a stack outside us-east-1, an env-agnostic stack and an invalid rate', () => {
    const eu = newStack('Eu', { env: { region: 'eu-west-1' } });
    expect(() => new EdgeDistribution(eu, 'Edge', { origins: edgeOrigins(eu) })).toThrow(/us-east-1/);
    const agnostic = newStack('Agnostic');
    expect(() => new EdgeDistribution(agnostic, 'Edge', { origins: edgeOrigins(agnostic) })).toThrow(/environment-agnostic/);
    const us = newStack('Us', { env: { region: 'us-east-1' } });
    expect(() => new EdgeDistribution(us, 'Edge', { origins: edgeOrigins(us), rateLimitPerFiveMinutes: 5 })).toThrow(/rateLimitPerFiveMinutes/);
    const us2 = newStack('Us2', { env: { region: 'us-east-1' } });
    expect(() => new EdgeDistribution(us2, 'Edge', { origins: edgeOrigins(us2), domainName: 'x.example.com' })).toThrow(/certificate/);
  });

  test('synthesizes with no unacknowledged AwsSolutions or NIST 800-53 R5 finding, the secret in another stack', () => {
    const app = newApp();
    const env = { account: '111122223333', region: 'us-east-1' };
    const regional = new Stack(app, 'Regional', { env });
    const edgeStack = new Stack(app, 'EdgeStack', { env, crossRegionReferences: true });
    const origins = edgeOrigins(regional);
    // The fixture's secret: the regional stack (RegionalDeployment) owns the real one and its key.
    Validations.of(origins.originSecret).acknowledge(
      { id: 'AwsSolutions-SMG4', reason: 'Test fixture: the rotation schedule is in the edge stack.' },
      { id: 'NIST.800.53.R5-SecretsManagerRotationEnabled', reason: 'Test fixture: the rotation schedule is in the edge stack.' },
      { id: 'NIST.800.53.R5-SecretsManagerUsingKMSKey', reason: 'Test fixture.' },
    );
    new EdgeDistribution(edgeStack, 'Edge', { origins });
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app), new NIST80053R5Checks(app));
    const result = trySynth(app);
    expect({ error: result.error?.message, printed: result.error ? result.printed : '' }).toEqual({ error: undefined, printed: '' });
    const report = readReport(path.join(result.assembly!.directory, 'validation-report.json'));
    expect(report.pluginReports.flatMap((r) => r.violations)).toEqual([]);
  });
});
