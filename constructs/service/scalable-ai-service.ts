import { RemovalPolicy } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { ResponseCache, type ResponseCacheOptions } from '../cache/response-cache';
import type { IModelTier } from '../models/model-tier';
import { TieredRouter, type TieredRouterOptions } from '../routing/tiered-router';

/** Properties of a {@link ScalableAiService}. */
export interface ScalableAiServiceProps {
  /** The model tiers, cheapest and least capable first. */
  readonly tiers: IModelTier[];
  /**
   * The VPC to run in. Bring your own to share it; it needs private subnets and a route to
   * Bedrock Runtime, SageMaker Runtime and Secrets Manager (VPC endpoints or NAT).
   * @default - a new VPC over two Availability Zones with isolated subnets only, interface
   * endpoints for Bedrock Runtime, SageMaker Runtime and Secrets Manager, and flow logs
   */
  readonly vpc?: ec2.IVpc;
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
   * Options of the router.
   * @default - see `TieredRouterOptions`
   */
  readonly routerOptions?: TieredRouterOptions;
}

/**
 * The whole request path in one construct: a VPC (or yours), the response cache, and the
 * tiered router in front of the model tiers. Each part is also usable on its own.
 */
export class ScalableAiService extends Construct {
  /** The VPC the service runs in. */
  public readonly vpc: ec2.IVpc;
  /** The response cache, unless disabled. */
  public readonly cache?: ResponseCache;
  /** The router. */
  public readonly router: TieredRouter;
  /** Interface endpoints of the VPC this construct created (none with your own VPC). */
  public readonly vpcEndpoints: ec2.InterfaceVpcEndpoint[] = [];

  constructor(scope: Construct, id: string, props: ScalableAiServiceProps) {
    super(scope, id);
    this.vpc = props.vpc ?? this.createVpc();
    if (props.enableCache ?? true) {
      this.cache = new ResponseCache(this, 'Cache', { vpc: this.vpc, ...props.cacheOptions });
    }
    this.router = new TieredRouter(this, 'Router', {
      ...props.routerOptions,
      tiers: props.tiers,
      cache: this.cache,
      vpc: this.vpc,
    });
    // The endpoints admit only the router.
    for (const endpoint of this.vpcEndpoints) endpoint.connections.allowDefaultPortFrom(this.router.function);
  }

  /**
   * No internet route at all: the functions reach AWS services through interface endpoints,
   * which also costs less than a NAT gateway per Availability Zone at low traffic.
   */
  private createVpc(): ec2.Vpc {
    const vpc = new ec2.Vpc(this, 'Vpc', {
      maxAzs: 2,
      natGateways: 0,
      subnetConfiguration: [{ name: 'private', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 22 }],
    });
    const flowLogs = new logs.LogGroup(this, 'FlowLogs', {
      retention: logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    vpc.addFlowLog('FlowLog', { destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogs) });
    for (const [name, service] of [
      ['BedrockRuntime', ec2.InterfaceVpcEndpointAwsService.BEDROCK_RUNTIME],
      ['SageMakerRuntime', ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_RUNTIME],
      ['SecretsManager', ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER],
    ] as const) {
      this.vpcEndpoints.push(vpc.addInterfaceEndpoint(name, { service, privateDnsEnabled: true, open: false }));
    }
    return vpc;
  }
}
