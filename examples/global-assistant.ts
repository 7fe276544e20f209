import { Duration, RemovalPolicy, Stack, Validations, type App } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import {
  CrossRegionInference, EdgeDistribution, GlobalSecondaryDatabase, ModelTier, ReadReplicaDatabase, RegionalDeployment,
  type IReadReplicaDatabase, type IRegionalServiceFactory, type ScalableAiService, type ScalableAiServiceProps,
} from '../constructs';

/**
 * A Region's network, made before its service because the profile database must exist before the
 * router (`routerOptions.userProfiles`): isolated subnets in two Availability Zones (no NAT), the
 * interface endpoints the service's functions call (Bedrock Runtime, Secrets Manager, and SSM:
 * a router configuration larger than Lambda's 4 KB environment is read from Parameter Store),
 * gateway endpoints for S3 and DynamoDB, and flow logs. The interface endpoints admit only the functions
 * that {@link admit} names.
 */
class RegionalNetwork extends Construct {
  public readonly vpc: ec2.Vpc;
  public readonly bedrockRuntime: ec2.InterfaceVpcEndpoint;
  public readonly secretsManager: ec2.InterfaceVpcEndpoint;
  public readonly ssm: ec2.InterfaceVpcEndpoint;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    this.vpc = new ec2.Vpc(this, 'Vpc', {
      maxAzs: 2,
      natGateways: 0,
      subnetConfiguration: [{ name: 'private', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 22 }],
      restrictDefaultSecurityGroup: true,
    });
    const key = new kms.Key(this, 'FlowLogKey', { description: 'Flow logs of the assistant VPC', enableKeyRotation: true, removalPolicy: RemovalPolicy.RETAIN });
    key.grantEncryptDecrypt(new iam.ServicePrincipal(`logs.${Stack.of(this).region}.amazonaws.com`));
    const flowLogs = new logs.LogGroup(this, 'FlowLogs', { retention: logs.RetentionDays.ONE_MONTH, encryptionKey: key });
    const flowLog = this.vpc.addFlowLog('FlowLog', { destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogs) });
    Validations.of(flowLog).acknowledge({
      id: 'NIST.800.53.R5-IAMNoInlinePolicy',
      reason: 'aws-cdk-lib writes the flow log role\'s logs:PutLogEvents on this one log group into the role\'s own policy; it belongs to that role alone.',
    });
    const endpoint = (name: string, service: ec2.InterfaceVpcEndpointAwsService) =>
      this.vpc.addInterfaceEndpoint(name, { service, privateDnsEnabled: true, open: false });
    this.bedrockRuntime = endpoint('BedrockRuntime', ec2.InterfaceVpcEndpointAwsService.BEDROCK_RUNTIME);
    this.secretsManager = endpoint('SecretsManager', ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER);
    this.ssm = endpoint('Ssm', ec2.InterfaceVpcEndpointAwsService.SSM);
    this.vpc.addGatewayEndpoint('S3', { service: ec2.GatewayVpcEndpointAwsService.S3 });
    this.vpc.addGatewayEndpoint('DynamoDb', { service: ec2.GatewayVpcEndpointAwsService.DYNAMODB });
  }

  /** Opens the interface endpoints to the functions of `service` that call them. */
  public admit(service: ScalableAiService): void {
    this.ssm.connections.allowDefaultPortFrom(service.router.function);
    const functions = [service.router.function, service.staticAnswers?.loaderFunction];
    for (const fn of functions) {
      if (!fn) continue;
      this.bedrockRuntime.connections.allowDefaultPortFrom(fn);
      this.secretsManager.connections.allowDefaultPortFrom(fn);
    }
  }
}

/**
 * The e-commerce assistant at the 1M users/day phase, in us-east-1 and us-west-2 behind one
 * CloudFront distribution: each Region runs the whole request path with its Bedrock tiers through
 * the US cross-region inference profiles, and its router reads user profiles in its own Region.
 * The primary Region has Aurora PostgreSQL (writer and reader behind RDS Proxy), the primary of an
 * Aurora Global Database; the second Region has its secondary cluster, which serves that Region's
 * profile reads and forwards its profile writes to the primary. Prices are on-demand USD per
 * 1,000 tokens.
 */
class GlobalAssistantServices implements IRegionalServiceFactory {
  /** Each Region's network, by Region. */
  public readonly networks = new Map<string, RegionalNetwork>();
  private primary?: ReadReplicaDatabase;

  public serviceProps(scope: Construct, region: string): ScalableAiServiceProps {
    const network = new RegionalNetwork(scope, 'Network');
    this.networks.set(region, network);
    // The first Region (RegionalDeployment creates them in order) holds the primary.
    const database: IReadReplicaDatabase = this.primary
      ? new GlobalSecondaryDatabase(scope, 'Database', { primary: this.primary, vpc: network.vpc })
      : this.primary = new ReadReplicaDatabase(scope, 'Database', {
        vpc: network.vpc,
        secretsManagerEndpoint: network.secretsManager,
        // Aurora does not pause the instances of a global database.
        globalDatabase: true,
        minCapacity: 0.5,
      });

    const bedrock = (tierId: string, modelId: string, input: number, output: number, maxTokens: number, seconds: number) => ModelTier.bedrock({
      tierId,
      modelId: CrossRegionInference.geographicProfileId(modelId, region),
      inputPricePer1kTokens: input,
      outputPricePer1kTokens: output,
      maxTokens,
      timeout: Duration.seconds(seconds),
    });
    return {
      vpc: network.vpc,
      tiers: [
        bedrock('small', 'amazon.nova-micro-v1:0', 0.000035, 0.00014, 512, 8),
        bedrock('medium', 'amazon.nova-lite-v1:0', 0.00006, 0.00024, 1024, 10),
        bedrock('large', 'anthropic.claude-sonnet-4-5-20250929-v1:0', 0.003, 0.015, 2048, 20),
      ],
      staticAnswers: { refreshInterval: Duration.days(1), maxAge: Duration.hours(1) },
      routerOptions: { serviceName: 'ecommerce-assistant-global', userProfiles: { database } },
    };
  }
}

/** Adds the two Regions' stacks and the edge stack (us-east-1) to `app`. */
export function addGlobalAssistant(app: App): RegionalDeployment {
  const services = new GlobalAssistantServices();
  const deployment = new RegionalDeployment(app, 'GlobalAssistant', {
    regions: ['us-east-1', 'us-west-2'],
    service: services,
    domain: { hostedZoneId: 'Z0EXAMPLE1234567890AB', zoneName: 'example.com', apiDomainName: 'api.assistant.example.com' },
    edge: { jwt: { issuer: 'https://cognito-idp.us-east-1.amazonaws.com/us-east-1_EXAMPLE', audience: ['assistant-web'] } },
  });
  for (const { region } of deployment.regionalServices) services.networks.get(region)!.admit(deployment.serviceOf(region));

  const edgeStack = new Stack(app, 'GlobalAssistantEdge', { env: { region: 'us-east-1' }, crossRegionReferences: true });
  new EdgeDistribution(edgeStack, 'Edge', { origins: deployment.edgeOrigins! });
  return deployment;
}
