import { Aws, Duration } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { Construct } from 'constructs';
import { flatten, newApp, routerConfig } from './helpers';
import { CrossRegionInference, ModelTier, RegionalDeployment, type IRegionalServiceFactory, type RegionalDeploymentProps, type ScalableAiServiceProps } from '../../constructs';

const JWT = { issuer: 'https://issuer.example.com', audience: ['assistant'] };

const factory: IRegionalServiceFactory = {
  serviceProps(_scope: Construct, region: string): ScalableAiServiceProps {
    return {
      tiers: [ModelTier.bedrock({
        tierId: 'small',
        modelId: CrossRegionInference.geographicProfileId('amazon.nova-micro-v1:0', region),
        inputPricePer1kTokens: 0.000035,
        outputPricePer1kTokens: 0.00014,
        timeout: Duration.seconds(8),
      })],
      enableMonitoring: false,
    };
  },
};

function deploy(props: Partial<RegionalDeploymentProps> & { regions: string[] }) {
  const app = newApp();
  const deployment = new RegionalDeployment(app, 'Global', { service: factory, ...props });
  return { app, deployment };
}

function withDomain(regions: string[], edge = true) {
  const app = newApp();
  const deployment = new RegionalDeployment(app, 'Global', {
    regions, service: factory, domain: { hostedZoneId: 'Z0123456789ABCDEFGHIJ', zoneName: 'example.com', apiDomainName: 'api.example.com' }, edge: edge ? { jwt: JWT } : undefined,
  });
  const templates = deployment.regionalServices.map((r) => Template.fromStack(r.stack));
  return { app, deployment, templates };
}

describe('RegionalDeployment', () => {
  test('one stack per Region, with its Region and cross-region references, each with the Region\'s inference profile', () => {
    const { deployment } = deploy({ regions: ['us-east-1', 'us-west-2', 'eu-west-1'] });
    expect(deployment.regionalServices.map((r) => r.stack.region)).toEqual(['us-east-1', 'us-west-2', 'eu-west-1']);
    expect(deployment.regionalServices.map((r) => r.stack.node.id)).toEqual(['Global-us-east-1', 'Global-us-west-2', 'Global-eu-west-1']);
    const profiles = deployment.regionalServices.map((r) => routerConfig(Template.fromStack(r.stack)).tiers[0].modelId);
    expect(profiles).toEqual(['us.amazon.nova-micro-v1:0', 'us.amazon.nova-micro-v1:0', 'eu.amazon.nova-micro-v1:0']);
  });

  test('custom domains, a health check on /v1/health, and failover records PRIMARY (with the health check) / SECONDARY', () => {
    const { templates } = withDomain(['us-east-1', 'us-west-2']);
    for (const [i, region] of ['us-east-1', 'us-west-2'].entries()) {
      const t = templates[i];
      const names = Object.values(t.findResources('AWS::ApiGatewayV2::DomainName')).map((d) => d.Properties);
      expect(names.map((n) => n.DomainName).sort()).toEqual(['api.example.com', `${region}.api.example.com`].sort());
      for (const n of names) expect(n.DomainNameConfigurations[0]).toMatchObject({ EndpointType: 'REGIONAL', SecurityPolicy: 'TLS_1_2' });
      t.resourceCountIs('AWS::ApiGatewayV2::ApiMapping', 2);
      t.hasResourceProperties('AWS::CertificateManager::Certificate', { DomainName: 'api.example.com', SubjectAlternativeNames: [`${region}.api.example.com`], ValidationMethod: 'DNS' });
      t.hasResourceProperties('AWS::Route53::HealthCheck', { HealthCheckConfig: { Type: 'HTTPS', FullyQualifiedDomainName: `${region}.api.example.com`, ResourcePath: '/v1/health', Port: 443 } });
    }
    const failover = templates.map((t) => Object.entries(t.findResources('AWS::Route53::RecordSet')).find(([, r]) => r.Properties.Failover)!);
    expect(failover.map(([, r]) => [r.Properties.Name, r.Properties.Failover])).toEqual([['api.example.com.', 'PRIMARY'], ['api.example.com.', 'SECONDARY']]);
    const [healthCheckId] = Object.keys(templates[0].findResources('AWS::Route53::HealthCheck'));
    expect(failover[0][1].Properties.HealthCheckId).toEqual({ Ref: healthCheckId });
    expect(failover[1][1].Properties.HealthCheckId).toBeUndefined();
  });

  test('POST failover (Route 53 half): with the primary unhealthy, api.example.com resolves to the us-west-2 API serving POST /v1/chat; healthy, to us-east-1', () => {
    const { deployment, templates } = withDomain(['us-east-1', 'us-west-2']);
    const failoverName = `${deployment.edgeOrigins!.failoverDomainName}.`;
    const resolve = (primaryHealthy: boolean): string => {
      const records = templates.flatMap((t, i) => Object.values(t.findResources('AWS::Route53::RecordSet'))
        .filter((r) => r.Properties.Name === failoverName && r.Properties.Type === 'A')
        .map((r) => ({ record: r.Properties, stack: i })));
      const healthy = (record: any) => record.HealthCheckId === undefined || primaryHealthy;
      const primary = records.find((r) => r.record.Failover === 'PRIMARY')!;
      const chosen = healthy(primary.record) ? primary : records.find((r) => r.record.Failover === 'SECONDARY')!;
      const t = templates[chosen.stack];
      const resources = t.toJSON().Resources;
      // Alias target → the custom domain → its API mapping → the API with POST /v1/chat.
      const domainId = chosen.record.AliasTarget.DNSName['Fn::GetAtt'][0];
      expect(resources[domainId].Type).toBe('AWS::ApiGatewayV2::DomainName');
      const mapping = Object.values(t.findResources('AWS::ApiGatewayV2::ApiMapping')).find((m) => m.Properties.DomainName.Ref === domainId)!;
      const apiId = mapping.Properties.ApiId.Ref;
      const chat = Object.values(t.findResources('AWS::ApiGatewayV2::Route')).filter((r) => r.Properties.ApiId.Ref === apiId && r.Properties.RouteKey === 'POST /v1/chat');
      expect(chat).toHaveLength(1);
      return deployment.regionalServices[chosen.stack].stack.region;
    };
    expect(resolve(false)).toBe('us-west-2');
    expect(resolve(true)).toBe('us-east-1');
  });

  test('edge: an origin secret (48 characters, no punctuation) replicated to the other Region, JWT on every router, the replica ARN built for us-west-2', () => {
    const { deployment, templates } = withDomain(['us-east-1', 'us-west-2']);
    templates[0].hasResourceProperties('AWS::SecretsManager::Secret', {
      GenerateSecretString: { PasswordLength: 48, ExcludePunctuation: true },
      ReplicaRegions: [{ Region: 'us-west-2' }],
    });
    // us-west-2 has the cache's own AUTH token secret only, no second origin secret.
    expect(Object.values(templates[1].findResources('AWS::SecretsManager::Secret')).filter((r) => r.Properties.GenerateSecretString?.PasswordLength === 48)).toEqual([]);
    for (const t of templates) t.hasResourceProperties('AWS::ApiGatewayV2::Authorizer', { AuthorizerType: 'JWT', JwtConfiguration: { Issuer: JWT.issuer, Audience: JWT.audience } });
    const resolved = flatten(deployment.regionalServices[1].stack.resolve(deployment.regionalSecrets[1].secretArn));
    expect(resolved).toContain('us-west-2');
    expect(resolved).toMatch(/Fn::Select|\$\{Select/i);
    expect(deployment.edgeOrigins).toMatchObject({
      primary: { region: 'us-east-1', domainName: 'us-east-1.api.example.com' },
      secondary: { region: 'us-west-2', domainName: 'us-west-2.api.example.com' },
      failoverDomainName: 'api.example.com',
      jwt: JWT,
    });
  });

  test('synth errors: no Region, a duplicate, a token, edge without domain or with one Region; a Region without a geography', () => {
    expect(() => deploy({ regions: [] })).toThrow(/regions must name at least one Region/);
    expect(() => deploy({ regions: ['us-east-1', 'us-east-1'] })).toThrow(/regions must be unique; us-east-1/);
    expect(() => deploy({ regions: [Aws.REGION] })).toThrow(/resolved Region names/);
    expect(() => deploy({ regions: ['us-east-1', 'us-west-2'], edge: { jwt: JWT } })).toThrow(/edge needs domain/);
    expect(() => withDomain(['us-east-1'])).toThrow(/edge needs at least two regions/);
    expect(() => withDomain(['us-west-2', 'us-east-1'])).toThrow(/regions must start with us-east-1.*got us-west-2/);
    expect(() => deploy({ regions: ['me-south-1'] })).toThrow(/Region me-south-1 has no geographic inference profile/);
    expect(CrossRegionInference.geographicProfileId('amazon.nova-micro-v1:0', 'ap-northeast-1')).toBe('apac.amazon.nova-micro-v1:0');
  });
});
