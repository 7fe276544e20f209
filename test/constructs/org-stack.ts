/**
 * The "org stack" of the compliance tests: what an adopter builds in an organization's account.
 * An org network stack (public, private-with-egress and isolated subnets, NAT) hands its VPC to a
 * data stack (an Aurora PostgreSQL cluster) and to a service stack that uses every construct and
 * option of the library, with resources the org already runs (a cache, an HTTP API, queues),
 * under all of aws-cdk-lib's recommended feature flags and an org-wide permissions boundary.
 */
import { App, Duration, RemovalPolicy, Stack, Validations, type StackProps } from 'aws-cdk-lib';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as rds from 'aws-cdk-lib/aws-rds';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import { orgVpc, RECOMMENDED_FLAGS } from './helpers';
import {
  BatchPipeline, ModelTier, ResponseCache, RouterAuthorization, ScalableAiService, TieredRouter, UserContextBackend, VectorStore,
} from '../../constructs';

/** The name of the organization's permissions boundary (a managed policy that exists in the account). */
export const ORG_BOUNDARY_NAME = 'OrgPermissionsBoundary';

/** The organization's network: a VPC with NAT egress, its flow logs encrypted with the org's key. */
export class OrgNetworkStack extends Stack {
  public readonly vpc: ec2.Vpc;

  constructor(scope: Construct, id: string, props?: StackProps) {
    super(scope, id, props);
    this.vpc = orgVpc(this);
    const key = new kms.Key(this, 'FlowLogsKey', { enableKeyRotation: true, description: 'Org VPC flow logs' });
    key.addToResourcePolicy(new iam.PolicyStatement({
      principals: [new iam.ServicePrincipal(`logs.${this.region}.amazonaws.com`)],
      actions: ['kms:Encrypt*', 'kms:Decrypt*', 'kms:ReEncrypt*', 'kms:GenerateDataKey*', 'kms:Describe*'],
      resources: ['*'],
      conditions: { ArnLike: { 'kms:EncryptionContext:aws:logs:arn': `arn:${this.partition}:logs:${this.region}:${this.account}:log-group:*` } },
    }));
    const flowLogs = new logs.LogGroup(this, 'FlowLogs', { retention: logs.RetentionDays.ONE_YEAR, encryptionKey: key, removalPolicy: RemovalPolicy.DESTROY });
    const flowLog = this.vpc.addFlowLog('FlowLog', { destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogs) });
    // The org's own acknowledgements, on its own resources.
    Validations.of(flowLog).acknowledge({ id: 'NIST.800.53.R5-IAMNoInlinePolicy', reason: 'org fixture: the flow log role\'s own policy, written by aws-cdk-lib' });
    for (const subnet of this.vpc.publicSubnets) {
      Validations.of(subnet).acknowledge(
        { id: 'NIST.800.53.R5-VPCNoUnrestrictedRouteToIGW', reason: 'org fixture: public subnets hold the NAT gateways and route to the internet gateway' },
        { id: 'NIST.800.53.R5-VPCSubnetAutoAssignPublicIpDisabled', reason: 'org fixture: public subnets of the NAT gateways, as aws-cdk-lib creates them' },
      );
    }
  }
}

/** The organization's data: an Aurora PostgreSQL cluster in the org VPC, in a stack of its own. */
export class OrgDataStack extends Stack {
  public readonly database: rds.DatabaseCluster;

  constructor(scope: Construct, id: string, props: StackProps & { readonly vpc: ec2.IVpc }) {
    super(scope, id, props);
    const key = new kms.Key(this, 'DataKey', { enableKeyRotation: true, description: 'Org data' });
    this.database = new rds.DatabaseCluster(this, 'VectorDb', {
      engine: rds.DatabaseClusterEngine.auroraPostgres({ version: rds.AuroraPostgresEngineVersion.VER_16_6 }),
      writer: rds.ClusterInstance.serverlessV2('Writer'),
      vpc: props.vpc,
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
      storageEncryptionKey: key,
      credentials: rds.Credentials.fromGeneratedSecret('postgres', { encryptionKey: key }),
      iamAuthentication: true,
      deletionProtection: true,
      cloudwatchLogsExports: ['postgresql'],
      removalPolicy: RemovalPolicy.SNAPSHOT,
      backup: { retention: Duration.days(7) },
    });
    Validations.of(this.database).acknowledge(
      { id: 'AwsSolutions-SMG4', reason: 'org fixture: the database secret is rotated by the organization\'s own rotation stack' },
      { id: 'NIST.800.53.R5-SecretsManagerRotationEnabled', reason: 'org fixture: the database secret is rotated by the organization\'s own rotation stack' },
      { id: 'NIST.800.53.R5-RDSEnhancedMonitoringEnabled', reason: 'org fixture: Performance Insights and CloudWatch metrics suffice for this test cluster' },
      { id: 'NIST.800.53.R5-RDSInBackupPlan', reason: 'org fixture: automated backups kept 7 days; the org backup plan is outside this app' },
    );
  }
}

export interface OrgServiceStackProps extends StackProps {
  readonly vpc: ec2.IVpc;
  /** The org's Aurora PostgreSQL cluster, from the data stack. */
  readonly database: rds.DatabaseCluster;
}

/** Every construct and option of the library, in the org's VPC, with a customer-managed key. */
export class OrgServiceStack extends Stack {
  public readonly key: kms.Key;
  public readonly service: ScalableAiService;
  public readonly pgvectorRouter: TieredRouter;
  public readonly openSearchRouter: TieredRouter;
  public readonly importedCacheRouter: TieredRouter;
  public readonly existingQueuePipeline: BatchPipeline;

  constructor(scope: Construct, id: string, props: OrgServiceStackProps) {
    super(scope, id, props);
    const vpc = props.vpc;
    this.key = new kms.Key(this, 'Key', { enableKeyRotation: true, description: 'cdk-scalable-ai stores and logs' });
    const small = ModelTier.sageMaker(this, 'SmallTier', {
      tierId: 'small',
      imageUri: '763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-pytorch-tgi-inference:2.4.0-tgi3.0.1-gpu-py311-cu124-ubuntu22.04',
      // Uncompressed artifacts under a prefix.
      modelDataUrl: 's3://org-models/qwen2.5-7b-instruct/',
      environment: { HF_MODEL_ID: '/opt/ml/model', SM_NUM_GPUS: '1' },
      instanceType: 'ml.g5.2xlarge',
      autoScaling: { minCapacity: 1, maxCapacity: 3 },
      // No encryptionKey: a g5's local NVMe storage is encrypted by the instance, and SageMaker
      // refuses a volume key for it.
      inputPricePer1kTokens: 0.00003,
      outputPricePer1kTokens: 0.00003,
    });
    const medium = ModelTier.bedrock({
      tierId: 'medium', modelId: 'us.amazon.nova-lite-v1:0', inputPricePer1kTokens: 0.00006, outputPricePer1kTokens: 0.00024,
    });
    const large = ModelTier.bedrock({
      tierId: 'large', modelId: 'us.amazon.nova-pro-v1:0', inputPricePer1kTokens: 0.0008, outputPricePer1kTokens: 0.0032,
    });
    const xlarge = ModelTier.bedrock({
      tierId: 'xlarge', modelId: 'us.anthropic.claude-sonnet-4-5-20250929-v1:0', inputPricePer1kTokens: 0.003, outputPricePer1kTokens: 0.015,
    });
    const authorization = RouterAuthorization.jwt({
      issuer: 'https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Example',
      audience: ['org-assistant'],
    });
    this.service = new ScalableAiService(this, 'Assistant', {
      tiers: [small, medium, large, xlarge],
      vpc,
      // The org's application subnets (NAT egress), not its data subnets.
      vpcSubnets: { subnetGroupName: 'app' },
      encryptionKey: this.key,
      routerOptions: { authorization, serviceName: 'org-assistant' },
      staticAnswers: {},
      userContext: { backend: UserContextBackend.DYNAMODB },
      batchPipeline: { bulk: { tier: xlarge } },
    });

    this.pgvectorRouter = new TieredRouter(this, 'PgvectorRouter', {
      tiers: [medium, large],
      vpc,
      encryptionKey: this.key,
      authorization,
      semanticCache: { vectorStore: VectorStore.auroraPgvector({ cluster: props.database, secret: props.database.secret! }) },
    });
    this.openSearchRouter = new TieredRouter(this, 'OpenSearchRouter', {
      tiers: [medium, large],
      vpc,
      encryptionKey: this.key,
      authorization,
      semanticCache: { vectorStore: VectorStore.openSearchServerless({ collectionName: 'org-semantic', encryptionKey: this.key }) },
    });

    // What the org already runs: a Valkey replication group, an HTTP API and the job queues.
    const orgCache = ResponseCache.fromResponseCacheAttributes(this, 'OrgCache', {
      endpointAddress: 'master.org-cache.abc123.use1.cache.amazonaws.com',
      securityGroup: ec2.SecurityGroup.fromSecurityGroupId(this, 'OrgCacheSg', 'sg-0123456789abcdef0'),
      authSecret: secretsmanager.Secret.fromSecretNameV2(this, 'OrgCacheAuth', 'org/cache-auth-token'),
      keyPrefix: 'org:',
      engineVersion: '8.2',
    });
    this.importedCacheRouter = new TieredRouter(this, 'ImportedCacheRouter', {
      tiers: [medium, large],
      vpc,
      encryptionKey: this.key,
      authorization,
      cache: orgCache,
      semanticCache: {},
      httpApi: apigwv2.HttpApi.fromHttpApiAttributes(this, 'OrgApi', { httpApiId: 'a1b2c3d4e5' }),
      httpApiStageName: 'prod',
    });
    const jobsDeadLetters = new sqs.Queue(this, 'OrgJobsDlq', {
      encryption: sqs.QueueEncryption.KMS, encryptionMasterKey: this.key, enforceSSL: true, retentionPeriod: Duration.days(14),
    });
    Validations.of(jobsDeadLetters).acknowledge({ id: 'AwsSolutions-SQS3', reason: 'org fixture: this queue is the dead-letter queue of OrgJobs' });
    const jobs = new sqs.Queue(this, 'OrgJobs', {
      encryption: sqs.QueueEncryption.KMS,
      encryptionMasterKey: this.key,
      enforceSSL: true,
      visibilityTimeout: Duration.minutes(31),
      deadLetterQueue: { queue: jobsDeadLetters, maxReceiveCount: 3 },
    });
    this.existingQueuePipeline = new BatchPipeline(this, 'ExistingQueuePipeline', {
      router: this.importedCacheRouter, queue: jobs, encryptionKey: this.key,
    });
  }
}

/** The org app: recommended flags, the org network and service stacks, and the org-wide boundary. */
export function orgApp(): { app: App; network: OrgNetworkStack; data: OrgDataStack; service: OrgServiceStack } {
  const app = new App({ context: RECOMMENDED_FLAGS });
  const env = { account: '111122223333', region: 'us-east-1' };
  const network = new OrgNetworkStack(app, 'OrgNetwork', { env });
  const data = new OrgDataStack(app, 'OrgData', { env, vpc: network.vpc });
  const service = new OrgServiceStack(app, 'OrgService', { env, vpc: network.vpc, database: data.database });
  iam.PermissionsBoundary.of(app).apply(iam.ManagedPolicy.fromManagedPolicyArn(network, 'OrgBoundary', `arn:aws:iam::${env.account}:policy/${ORG_BOUNDARY_NAME}`));
  return { app, network, data, service };
}
