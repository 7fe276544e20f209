import { Duration, Stack, type App } from 'aws-cdk-lib';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import type { Construct } from 'constructs';
import {
  CrossRegionInference, EdgeDistribution, ModelTier, ReadReplicaDatabase, RegionalDeployment,
  type IRegionalServiceFactory, type ScalableAiServiceProps,
} from '../constructs';

/**
 * The e-commerce assistant at the 1M users/day phase, in us-east-1 and us-west-2 behind one
 * CloudFront distribution: each Region runs the whole request path with its Bedrock tiers through
 * the US cross-region inference profiles. The primary Region also has Aurora PostgreSQL (writer and
 * reader behind RDS Proxy) for data that outgrows the caches; a router reads it through
 * `routerOptions.userProfiles`, which needs the database before the router, so in your own VPC
 * (`ScalableAiServiceProps.vpc`). Prices are on-demand USD per 1,000 tokens.
 */
class GlobalAssistantServices implements IRegionalServiceFactory {
  public serviceProps(_scope: Construct, region: string): ScalableAiServiceProps {
    const bedrock = (tierId: string, modelId: string, input: number, output: number, maxTokens: number, seconds: number) => ModelTier.bedrock({
      tierId,
      modelId: CrossRegionInference.geographicProfileId(modelId, region),
      inputPricePer1kTokens: input,
      outputPricePer1kTokens: output,
      maxTokens,
      timeout: Duration.seconds(seconds),
    });
    return {
      tiers: [
        bedrock('small', 'amazon.nova-micro-v1:0', 0.000035, 0.00014, 512, 8),
        bedrock('medium', 'amazon.nova-lite-v1:0', 0.00006, 0.00024, 1024, 10),
        bedrock('large', 'anthropic.claude-sonnet-4-5-20250929-v1:0', 0.003, 0.015, 2048, 20),
      ],
      staticAnswers: { refreshInterval: Duration.days(1), maxAge: Duration.hours(1) },
      routerOptions: { serviceName: 'ecommerce-assistant-global' },
    };
  }
}

/** Adds the two Regions' stacks and the edge stack (us-east-1) to `app`. */
export function addGlobalAssistant(app: App): RegionalDeployment {
  const deployment = new RegionalDeployment(app, 'GlobalAssistant', {
    regions: ['us-east-1', 'us-west-2'],
    service: new GlobalAssistantServices(),
    domain: { hostedZoneId: 'Z0EXAMPLE1234567890AB', zoneName: 'example.com', apiDomainName: 'api.assistant.example.com' },
    edge: { jwt: { issuer: 'https://cognito-idp.us-east-1.amazonaws.com/us-east-1_EXAMPLE', audience: ['assistant-web'] } },
  });

  const primary = deployment.regionalServices[0];
  const secretsManagerEndpoint = primary.vpcEndpoints.find((endpoint) => endpoint.node.id === 'SecretsManager') as ec2.IInterfaceVpcEndpoint;
  new ReadReplicaDatabase(primary.stack, 'Database', { vpc: primary.vpc, secretsManagerEndpoint });

  const edgeStack = new Stack(app, 'GlobalAssistantEdge', { env: { region: 'us-east-1' }, crossRegionReferences: true });
  new EdgeDistribution(edgeStack, 'Edge', { origins: deployment.edgeOrigins! });
  return deployment;
}
