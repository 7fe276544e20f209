/** The two-Region example: what it provisions, and how a POST reaches the second Region when the first is down. */
import { Template } from 'aws-cdk-lib/assertions';
import { flatten, newApp, onlyResource, parseJsonValue, resourcesAllowing, routerConfig, trySynth } from './helpers';
import { addCompliancePacks } from '../../examples/compliance';
import { addGlobalAssistant } from '../../examples/global-assistant';

const app = newApp();
const deployment = addGlobalAssistant(app);
const regional = deployment.regionalServices.map((r) => Template.fromStack(r.stack));
const edge = Template.fromStack(app.node.findChild('GlobalAssistantEdge') as never);
const distribution = Object.values(edge.findResources('AWS::CloudFront::Distribution'))[0].Properties.DistributionConfig;
const originDomain = (id: string): string => distribution.Origins.find((o: { Id: string }) => o.Id === id).DomainName;
/** A router's configuration: in its environment, or in the SSM parameter it reads when that is too large. */
const configOf = (t: Template): any => {
  const parameter = Object.values(t.findResources('AWS::SSM::Parameter')).find((p) => flatten(p.Properties.Value).includes('"tiers"'));
  return parameter ? parseJsonValue(parameter.Properties.Value) : routerConfig(t);
};

describe('the two-Region example', () => {
  test('Aurora PostgreSQL, encrypted, one writer and one reader, behind an RDS Proxy that requires TLS', () => {
    const [primary] = regional;
    primary.hasResourceProperties('AWS::RDS::DBCluster', { Engine: 'aurora-postgresql', StorageEncrypted: true });
    expect(Object.keys(primary.findResources('AWS::RDS::DBInstance'))).toHaveLength(2);
    primary.hasResourceProperties('AWS::RDS::DBProxy', { RequireTLS: true, EngineFamily: 'POSTGRESQL' });
    primary.hasResourceProperties('AWS::RDS::DBProxyEndpoint', { TargetRole: 'READ_ONLY' });
  });

  test('both routers read profiles in their own Region: us-east-1 through the RDS Proxy, us-west-2 through the Global Database secondary', () => {
    const [east, west] = regional;
    const eastProfiles = configOf(east).userProfiles;
    const [proxyId] = Object.keys(east.findResources('AWS::RDS::DBProxy'));
    const [readerId] = Object.keys(east.findResources('AWS::RDS::DBProxyEndpoint'));
    expect(eastProfiles).toMatchObject({
      auth: 'iam',
      writer: { host: `\${GetAtt:${proxyId}.Endpoint}` },
      reader: { host: `\${GetAtt:${readerId}.Endpoint}` },
    });
    expect(eastProfiles.writeForwarding).toBeUndefined();
    expect(resourcesAllowing(east, 'rds-db:connect')).toHaveLength(1);

    const [, global] = onlyResource(east, 'AWS::RDS::GlobalCluster');
    const [clusterId, secondary] = onlyResource(west, 'AWS::RDS::DBCluster');
    expect(secondary.Properties).toMatchObject({
      GlobalClusterIdentifier: global.Properties.GlobalClusterIdentifier,
      EnableGlobalWriteForwarding: true,
    });
    const [, secret] = Object.entries(east.findResources('AWS::SecretsManager::Secret')).find(([id]) => id.startsWith('DatabaseSecret'))!;
    expect(secret.Properties.ReplicaRegions).toEqual(expect.arrayContaining([{ Region: 'us-west-2' }]));
    expect(configOf(west).userProfiles).toMatchObject({
      auth: 'secret',
      writeForwarding: true,
      writer: { host: `\${GetAtt:${clusterId}.Endpoint.Address}` },
      reader: { host: `\${GetAtt:${clusterId}.ReadEndpoint.Address}` },
    });
    expect(resourcesAllowing(west, 'secretsmanager:GetSecretValue')).toEqual(expect.arrayContaining([expect.stringMatching(new RegExp(`:secretsmanager:us-west-2:.*:secret:${secret.Properties.Name}-\\?{6}$`))]));
    // The secondary's security group admits the router on 5432, and nothing else.
    const [sgId] = Object.entries(west.findResources('AWS::EC2::SecurityGroup')).find(([id]) => id.startsWith('DatabaseSecurityGroup'))!;
    const ingress = Object.values(west.findResources('AWS::EC2::SecurityGroupIngress')).map((r) => r.Properties).filter((p) => p.GroupId['Fn::GetAtt']?.[0] === sgId);
    expect(ingress).toEqual([expect.objectContaining({ FromPort: 5432, ToPort: 5432, SourceSecurityGroupId: { 'Fn::GetAtt': [expect.stringMatching(/^ServiceRouterHandler/), 'GroupId'] } })]);
    // No proxy in us-west-2: the router verifies the cluster's Amazon RDS certificate, whose CAs Lambda loads only when asked.
    const [, westRouter] = Object.entries(west.findResources('AWS::Lambda::Function')).find(([id]) => id.startsWith('ServiceRouterHandler'))!;
    expect(westRouter.Properties.Environment.Variables.NODE_EXTRA_CA_CERTS).toBe('/var/runtime/ca-cert.pem');
  });

  test('one distribution in us-east-1 with a WAF web ACL attached and a GET origin group over both Regions', () => {
    expect(deployment.regionalServices.map((r) => r.stack.region)).toEqual(['us-east-1', 'us-west-2']);
    const [aclId] = Object.keys(edge.findResources('AWS::WAFv2::WebACL'));
    expect(distribution.WebACLId).toEqual({ 'Fn::GetAtt': [aclId, 'Arn'] });
    const [group] = distribution.OriginGroups.Items;
    const members = group.Members.Items.map((m: { OriginId: string }) => originDomain(m.OriginId));
    expect(members).toEqual(['us-east-1.api.assistant.example.com', 'us-west-2.api.assistant.example.com']);
    // Each member name is an alias record of its own Region's stack.
    members.forEach((name: string, i: number) => {
      const records = Object.values(regional[i].findResources('AWS::Route53::RecordSet')).filter((r) => r.Properties.Name === `${name}.`);
      expect(records).toHaveLength(1);
    });
  });

  test('a POST reaches us-west-2 when us-east-1 fails its health check, and us-east-1 while it passes', () => {
    // POST /v1/chat is served by the default behaviour; its origin is the Route 53 failover name.
    const failoverName = `${originDomain(distribution.DefaultCacheBehavior.TargetOriginId)}.`;
    expect(distribution.DefaultCacheBehavior.AllowedMethods).toContain('POST');
    const records = regional.flatMap((t, stack) => Object.entries(t.findResources('AWS::Route53::RecordSet'))
      .filter(([, r]) => r.Properties.Name === failoverName && r.Properties.Type === 'A')
      .map(([, r]) => ({ record: r.Properties, stack })));
    expect(records.map((r) => r.record.Failover).sort()).toEqual(['PRIMARY', 'SECONDARY']);
    const regionOf = (primaryHealthy: boolean): string => {
      const primary = records.find((r) => r.record.Failover === 'PRIMARY')!;
      // The primary record answers only while its health check (GET /v1/health in its Region) passes.
      const check = regional[primary.stack].toJSON().Resources[primary.record.HealthCheckId.Ref];
      expect(check.Properties.HealthCheckConfig).toMatchObject({ ResourcePath: '/v1/health', FullyQualifiedDomainName: 'us-east-1.api.assistant.example.com' });
      const chosen = primaryHealthy ? primary : records.find((r) => r.record.Failover === 'SECONDARY')!;
      const t = regional[chosen.stack];
      const domainId = chosen.record.AliasTarget.DNSName['Fn::GetAtt'][0];
      const mapping = Object.values(t.findResources('AWS::ApiGatewayV2::ApiMapping')).find((m) => m.Properties.DomainName.Ref === domainId)!;
      const chat = Object.values(t.findResources('AWS::ApiGatewayV2::Route'))
        .filter((r) => r.Properties.ApiId.Ref === mapping.Properties.ApiId.Ref && r.Properties.RouteKey === 'POST /v1/chat');
      expect(chat).toHaveLength(1);
      return deployment.regionalServices[chosen.stack].stack.region;
    };
    expect(regionOf(false)).toBe('us-west-2');
    expect(regionOf(true)).toBe('us-east-1');
  });
});

test('the two-Region example synthesizes with no unacknowledged cdk-nag finding (AwsSolutions and NIST 800-53 R5)', () => {
  const checked = newApp();
  addCompliancePacks(checked, 'all');
  addGlobalAssistant(checked);
  const synth = trySynth(checked);
  // On failure, `printed` holds cdk-nag's findings.
  expect({ error: synth.error?.message, printed: synth.error ? synth.printed : '' }).toEqual({ error: undefined, printed: '' });
});
