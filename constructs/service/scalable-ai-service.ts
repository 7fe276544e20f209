import { Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { BatchPipeline, type BatchPipelineOptions } from '../batching/batch-pipeline';
import type { IBatchPipeline } from '../batching/pipeline-interface';
import { ResponseCache, type IResponseCache, type ResponseCacheOptions } from '../cache/response-cache';
import type { SemanticCacheOptions } from '../cache/semantic-cache';
import { StaticAnswers, type IStaticAnswers, type StaticAnswersOptions } from '../cache/static-answers';
import { UserContextBackend, UserContextStore, type IUserContextStore, type UserContextStoreOptions } from '../cache/user-context-store';
import { VectorStoreKind } from '../cache/vector-store';
import { newLogGroup } from '../internal/encryption';
import type { IModelTier } from '../models/model-tier';
import { AiMonitoring, type AiMonitoringOptions } from '../monitoring/ai-monitoring';
import type { IAiMonitoring } from '../monitoring/monitoring-interface';
import type { ITieredRouter } from '../routing/router-interface';
import { TieredRouter, type TieredRouterOptions } from '../routing/tiered-router';
import type { HandlerTracing } from '../tracing/handler-tracing';

/** Properties of a {@link ScalableAiService}. */
export interface ScalableAiServiceProps {
  /** The model tiers, cheapest and least capable first. */
  readonly tiers: IModelTier[];
  /**
   * The VPC to run in. Bring your own to share it; it needs private subnets and a route to
   * Bedrock Runtime, SageMaker Runtime, Secrets Manager, and (for static answers and a DynamoDB
   * user context) S3 and DynamoDB: VPC endpoints or NAT.
   * @default - a new VPC over two Availability Zones with isolated subnets only, interface
   * endpoints for Bedrock Runtime, SageMaker Runtime and Secrets Manager (with `batchPipeline`
   * also SQS, with bulk mode the Bedrock control plane, and SSM when the router's configuration
   * is too large for the functions' environment), gateway endpoints for S3 and
   * DynamoDB, and flow logs
   */
  readonly vpc?: ec2.IVpc;
  /**
   * Subnets of everything the service places in the VPC: the cache, the router function, the
   * static answers loader and the batch pipeline's functions (which follow the router), unless
   * `staticAnswers.vpcSubnets` or `semanticCache.vectorStore` choose others. Public subnets are
   * refused. In isolated subnets, a synth warning names the VPC endpoints each function lacks.
   * @default - the VPC's private subnets with egress if it has any, otherwise its isolated subnets
   */
  readonly vpcSubnets?: ec2.SubnetSelection;
  /**
   * Whether to create the response cache (ElastiCache for Valkey).
   * @default true
   */
  readonly enableCache?: boolean;
  /**
   * Options of the response cache.
   * @default - see `ResponseCacheOptions`
   */
  readonly cacheOptions?: ResponseCacheOptions;
  /**
   * Whether the router has a semantic cache.
   * @default - true, unless `enableCache` is false and `semanticCache` is not given (the default
   * vector store lives in the response cache)
   */
  readonly enableSemanticCache?: boolean;
  /**
   * Options of the semantic cache (also accepted as `routerOptions.semanticCache`; give one of the two).
   * @default - vectors in the response cache (`VectorStore.valkey()`), Titan Text Embeddings V2
   * (1024 dimensions), the thresholds of `SemanticCacheOptions`
   */
  readonly semanticCache?: SemanticCacheOptions;
  /**
   * Static answers (FAQ, policies) from S3, published into the response cache daily. Given, a
   * `StaticAnswers` is created; it needs the response cache. Its embedding model defaults to the
   * semantic cache's.
   * @default - no static answers
   */
  readonly staticAnswers?: StaticAnswersOptions;
  /**
   * Whether the router keeps user context (recent turns, preferences).
   * @default - true, unless `enableCache` is false and `userContext` does not choose the DYNAMODB backend
   */
  readonly enableUserContext?: boolean;
  /**
   * Options of the user context store.
   * @default - in the response cache (`UserContextBackend.VALKEY`), 10 turns, 7 days
   */
  readonly userContext?: UserContextStoreOptions;
  /**
   * Options of the router.
   * @default - see `TieredRouterOptions`
   */
  readonly routerOptions?: TieredRouterOptions;
  /**
   * The asynchronous path: given, a `BatchPipeline` serves `POST /v1/jobs` and `GET /v1/jobs/{id}`
   * on the router's API. With your own `vpc`, its functions need SQS (and, in bulk mode, the
   * Bedrock control plane and S3) reachable from the VPC.
   * @default - no batch pipeline
   */
  readonly batchPipeline?: BatchPipelineOptions;
  /**
   * Tracing of every Lambda function of the service (router, static answers loader, batch pipeline).
   * @default HandlerTracing.disabled()
   */
  readonly tracing?: HandlerTracing;
  /**
   * Customer-managed KMS key of every store and log group the service creates: the cache (at
   * rest) and its AUTH token secret, the static answers bucket (when it creates it), the DynamoDB
   * user context table, the batch pipeline's tables, queues and bulk bucket, and the log groups
   * of every function, the API's access logs and the new VPC's flow logs. The options of a part
   * (`cacheOptions.encryptionKey`, ...) override it. A key of this app gets the key policy
   * statement CloudWatch Logs needs; an imported key's policy must already allow
   * `logs.<region>.amazonaws.com` (see the README).
   * @default - AWS managed keys (and CloudWatch Logs' own encryption)
   */
  readonly encryptionKey?: kms.IKey;
  /**
   * Whether to create `AiMonitoring` (dashboard, alarms, alarm topic, daily budget).
   * @default true
   */
  readonly enableMonitoring?: boolean;
  /**
   * Options of the monitoring. Its alarm topic is encrypted with a key of its own (the service's
   * `encryptionKey` is not shared with CloudWatch and AWS Budgets) unless `encryptionKey` here names one.
   * @default - see `AiMonitoringOptions`; the concurrency limit is `routerOptions.reservedConcurrentExecutions` when set
   */
  readonly monitoring?: AiMonitoringOptions;
}

/**
 * The whole request path in one construct: a VPC (or yours), the response cache, the semantic
 * cache, static answers (optional), user context, and the tiered router in front of the model
 * tiers. Each part is also usable on its own.
 */
export class ScalableAiService extends Construct {
  /** The VPC the service runs in. */
  public readonly vpc: ec2.IVpc;
  /** The response cache, unless disabled. */
  public readonly cache?: IResponseCache;
  /** The static answers, when `staticAnswers` is given. */
  public readonly staticAnswers?: IStaticAnswers;
  /** The user context store, unless disabled. */
  public readonly userContext?: IUserContextStore;
  /** The router. */
  public readonly router: ITieredRouter;
  /** The batch pipeline, when `batchPipeline` is given. */
  public readonly batchPipeline?: IBatchPipeline;
  /** The dashboard, alarms and budget, unless `enableMonitoring` is false. */
  public readonly monitoring?: IAiMonitoring;
  /** Interface endpoints of the VPC this construct created (none with your own VPC). */
  public readonly vpcEndpoints: ec2.InterfaceVpcEndpoint[] = [];
  /** Gateway endpoints (S3, DynamoDB) of the VPC this construct created (none with your own VPC). */
  public readonly gatewayEndpoints: ec2.GatewayVpcEndpoint[] = [];
  private bedrockEndpoint?: ec2.InterfaceVpcEndpoint;
  private sageMakerEndpoint?: ec2.InterfaceVpcEndpoint;
  private secretsManagerEndpoint?: ec2.InterfaceVpcEndpoint;
  private sqsEndpoint?: ec2.InterfaceVpcEndpoint;
  private bedrockControlEndpoint?: ec2.InterfaceVpcEndpoint;

  constructor(scope: Construct, id: string, props: ScalableAiServiceProps) {
    super(scope, id);
    const cacheEnabled = props.enableCache ?? true;
    const semanticCache = semanticCacheOptions(props, cacheEnabled);
    const userContextOptions = userContextStoreOptions(props, cacheEnabled);
    if (props.batchPipeline && props.routerOptions?.originVerification) {
      // Its routes share the router's API, so they would be reachable around the edge and its WAF.
      throw new Error('ScalableAiService: batchPipeline cannot be combined with routerOptions.originVerification: the jobs API does not check the origin secret, so POST /v1/jobs and GET /v1/jobs/{id} could be called around the EdgeDistribution and its WAF');
    }
    if (props.staticAnswers && !cacheEnabled) {
      throw new Error('ScalableAiService: staticAnswers are published into the response cache; they cannot be combined with enableCache: false');
    }

    const key = props.encryptionKey;
    this.vpc = props.vpc ?? this.createVpc(props.batchPipeline, key);
    if (cacheEnabled) {
      this.cache = new ResponseCache(this, 'Cache', { vpc: this.vpc, vpcSubnets: props.vpcSubnets, encryptionKey: key, ...props.cacheOptions });
    }
    const serviceName = props.routerOptions?.serviceName;
    if (props.staticAnswers) {
      this.staticAnswers = new StaticAnswers(this, 'StaticAnswers', {
        serviceName,
        // One embedding model for both levels unless told otherwise.
        embeddingModel: props.staticAnswers.semanticMatching === false ? undefined : semanticCache?.embeddingModel,
        vpcSubnets: props.vpcSubnets,
        // The key goes to a bucket the construct creates; an existing bucket keeps its own.
        encryptionKey: props.staticAnswers.bucket ? undefined : key,
        logEncryptionKey: key,
        ...props.staticAnswers,
        cache: this.cache!,
        vpc: this.vpc,
        tracing: props.tracing,
      });
    }
    if (userContextOptions) {
      // The VALKEY backend lives in the cache, which has the key.
      const inDynamoDb = userContextOptions.backend === UserContextBackend.DYNAMODB;
      this.userContext = new UserContextStore(this, 'UserContext', { encryptionKey: inDynamoDb ? key : undefined, ...userContextOptions });
    }
    // The members are typed by their interfaces; the wiring below needs the concrete constructs.
    const router = new TieredRouter(this, 'Router', {
      encryptionKey: key,
      ...props.routerOptions,
      semanticCache,
      tiers: props.tiers,
      cache: this.cache,
      vpc: this.vpc,
      vpcSubnets: props.vpcSubnets,
      staticAnswers: this.staticAnswers,
      userContext: this.userContext,
      tracing: props.tracing,
    });
    this.router = router;
    const batchPipeline = props.batchPipeline
      ? new BatchPipeline(this, 'BatchPipeline', { encryptionKey: key, ...props.batchPipeline, router, tracing: props.tracing })
      : undefined;
    this.batchPipeline = batchPipeline;
    if (props.enableMonitoring ?? true) {
      // The alarm topic gets a key of its own (unless `monitoring.encryptionKey`): its key policy
      // admits CloudWatch and AWS Budgets, which have no business with the data key.
      this.monitoring = new AiMonitoring(this, 'Monitoring', {
        concurrencyLimit: props.routerOptions?.reservedConcurrentExecutions,
        ...props.monitoring,
        router,
        batchPipeline,
        cache: this.cache,
        staticAnswers: this.staticAnswers,
      });
    } else if (props.monitoring) {
      throw new Error('ScalableAiService: monitoring options are given but enableMonitoring is false');
    }
    // The endpoints admit only the functions that use them.
    const routingEndpoints = [this.bedrockEndpoint, this.sageMakerEndpoint, this.secretsManagerEndpoint];
    const allow = (endpoints: Array<ec2.InterfaceVpcEndpoint | undefined>, fn: ec2.IConnectable) => {
      for (const endpoint of endpoints) endpoint?.connections.allowDefaultPortFrom(fn);
    };
    allow(routingEndpoints, router.function);
    if (this.staticAnswers) allow([this.secretsManagerEndpoint, this.bedrockEndpoint], this.staticAnswers.loaderFunction);
    if (batchPipeline) {
      allow(routingEndpoints, batchPipeline.workerFunction);
      allow([this.sqsEndpoint, this.bedrockControlEndpoint], batchPipeline.jobsApiFunction);
    }
    // A router configuration too large for the functions' environment is read from SSM Parameter
    // Store at cold start: known only now that every function that carries it exists.
    const ssmReaders = router._runtimeConfigReaders;
    if (!props.vpc && ssmReaders.length > 0) {
      const ssmEndpoint = this.vpc.addInterfaceEndpoint('Ssm', { service: ec2.InterfaceVpcEndpointAwsService.SSM, privateDnsEnabled: true, open: false });
      this.vpcEndpoints.push(ssmEndpoint);
      for (const fn of ssmReaders) allow([ssmEndpoint], fn);
    }
  }

  /**
   * No internet route at all: the functions reach AWS services through VPC endpoints, which
   * also costs less than a NAT gateway per Availability Zone at low traffic. The S3 and DynamoDB
   * gateway endpoints are free.
   */
  private createVpc(batchPipeline: BatchPipelineOptions | undefined, encryptionKey: kms.IKey | undefined): ec2.Vpc {
    const vpc = new ec2.Vpc(this, 'Vpc', {
      maxAzs: 2,
      natGateways: 0,
      subnetConfiguration: [{ name: 'private', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 22 }],
      // The default security group admits nothing, whatever the app's feature flags
      // (@aws-cdk/aws-ec2:restrictDefaultSecurityGroup): every resource here has its own.
      restrictDefaultSecurityGroup: true,
    });
    const flowLogs = newLogGroup(this, 'FlowLogs', { retention: logs.RetentionDays.ONE_MONTH, encryptionKey, keyProp: 'ScalableAiService encryptionKey' });
    const flowLog = vpc.addFlowLog('FlowLog', { destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogs) });
    Validations.of(flowLog).acknowledge({
      id: 'NIST.800.53.R5-IAMNoInlinePolicy',
      reason: 'aws-cdk-lib writes the flow log role\'s logs:PutLogEvents on this one log group into the role\'s own policy; it belongs to that role alone.',
    });
    const endpoint = (name: string, service: ec2.InterfaceVpcEndpointAwsService) => {
      const created = vpc.addInterfaceEndpoint(name, { service, privateDnsEnabled: true, open: false });
      this.vpcEndpoints.push(created);
      return created;
    };
    this.bedrockEndpoint = endpoint('BedrockRuntime', ec2.InterfaceVpcEndpointAwsService.BEDROCK_RUNTIME);
    this.sageMakerEndpoint = endpoint('SageMakerRuntime', ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_RUNTIME);
    this.secretsManagerEndpoint = endpoint('SecretsManager', ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER);
    if (batchPipeline) {
      // The jobs API queues requests; in bulk mode it also submits Bedrock batch inference jobs.
      this.sqsEndpoint = endpoint('Sqs', ec2.InterfaceVpcEndpointAwsService.SQS);
      if (batchPipeline.bulk) this.bedrockControlEndpoint = endpoint('Bedrock', ec2.InterfaceVpcEndpointAwsService.BEDROCK);
    }
    for (const [name, service] of [
      ['S3', ec2.GatewayVpcEndpointAwsService.S3],
      ['DynamoDb', ec2.GatewayVpcEndpointAwsService.DYNAMODB],
    ] as const) {
      this.gatewayEndpoints.push(vpc.addGatewayEndpoint(name, { service }));
    }
    return vpc;
  }
}

function semanticCacheOptions(props: ScalableAiServiceProps, cacheEnabled: boolean): SemanticCacheOptions | undefined {
  const fromRouter = props.routerOptions?.semanticCache;
  if (props.semanticCache && fromRouter) {
    throw new Error('ScalableAiService: give the semantic cache options once, as semanticCache or as routerOptions.semanticCache');
  }
  const options = props.semanticCache ?? fromRouter;
  const enabled = props.enableSemanticCache ?? (cacheEnabled || options !== undefined);
  if (!enabled) {
    if (options) throw new Error('ScalableAiService: semanticCache options are given but enableSemanticCache is false');
    return undefined;
  }
  if (!cacheEnabled && (options?.vectorStore === undefined || options.vectorStore.kind === VectorStoreKind.VALKEY)) {
    throw new Error('ScalableAiService: the semantic cache keeps its vectors in the response cache by default; with enableCache: false set semanticCache.vectorStore to another store, or enableSemanticCache: false');
  }
  return options ?? {};
}

function userContextStoreOptions(props: ScalableAiServiceProps, cacheEnabled: boolean): UserContextStoreOptions | undefined {
  const options = props.userContext;
  const inDynamoDb = options?.backend === UserContextBackend.DYNAMODB;
  const enabled = props.enableUserContext ?? (cacheEnabled || inDynamoDb);
  if (!enabled) {
    if (options) throw new Error('ScalableAiService: userContext options are given but enableUserContext is false');
    return undefined;
  }
  if (!cacheEnabled && !inDynamoDb) {
    throw new Error('ScalableAiService: user context lives in the response cache by default; with enableCache: false set userContext.backend to UserContextBackend.DYNAMODB, or enableUserContext: false');
  }
  return options ?? {};
}
