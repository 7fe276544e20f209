import { Fn, Stack, Token, Validations } from 'aws-cdk-lib';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import * as acm from 'aws-cdk-lib/aws-certificatemanager';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as route53 from 'aws-cdk-lib/aws-route53';
import * as targets from 'aws-cdk-lib/aws-route53-targets';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { HEALTH_PATH } from '../contract/edge';
import type { EdgeOrigins } from '../edge/edge-origins';
import { RouterAuthorization, type JwtAuthorizationOptions } from '../routing/router-authorization';
import type { ITieredRouter } from '../routing/router-interface';
import { ScalableAiService, type ScalableAiServiceProps } from '../service/scalable-ai-service';

/**
 * Builds the service of each Region (jsii has no function-typed props). Called once per Region
 * with that Region's stack, so SageMaker tiers are created there and Bedrock tiers can name the
 * Region's cross-region inference profile (see `CrossRegionInference.profileId`).
 */
export interface IRegionalServiceFactory {
  /** The props of the `ScalableAiService` of `region`, whose constructs go in `scope` (the Region's stack). */
  serviceProps(scope: Construct, region: string): ScalableAiServiceProps;
}

/** Custom domains of the regional APIs and the Route 53 failover name in front of them. */
export interface RegionalDomainOptions {
  /**
   * Id of the public hosted zone of `apiDomainName`. Each Region's stack imports the zone from its
   * id and name (no lookups, so synth stays offline, and no reference to another stack).
   */
  readonly hostedZoneId: string;
  /** Name of the hosted zone, such as `example.com`. */
  readonly zoneName: string;
  /** The name every Region answers to, resolved by Route 53 failover records, such as `api.example.com`. */
  readonly apiDomainName: string;
}

/** The CloudFront edge in front of the Regions. */
export interface RegionalEdgeOptions {
  /** JWT authorization of every Region's router (SigV4 does not survive CloudFront's host change). */
  readonly jwt: JwtAuthorizationOptions;
}

/** Properties of a {@link RegionalDeployment}. */
export interface RegionalDeploymentProps {
  /** The Regions, primary first (resolved names, unique, at least one). */
  readonly regions: string[];
  /**
   * The account of every Region's stack.
   * @default - account-agnostic stacks
   */
  readonly account?: string;
  /** The service of each Region. */
  readonly service: IRegionalServiceFactory;
  /**
   * Custom domains: per Region `<region>.<apiDomainName>` and `apiDomainName`, a Route 53 HTTPS
   * health check on `<region>.<apiDomainName>` + `/v1/health`, and failover records for
   * `apiDomainName` (PRIMARY: the first Region, SECONDARY: the second). With more than two
   * Regions the later ones get their Region's name only (they are not in the failover pair).
   * @default - no custom domains: each Region's API is reached at its execute-api URL
   */
  readonly domain?: RegionalDomainOptions;
  /**
   * The CloudFront edge: an origin secret (Secrets Manager, in the first Region with replicas in
   * the others) and JWT authorization on every router. Needs `domain` and at least two Regions.
   * @default - no edge
   */
  readonly edge?: RegionalEdgeOptions;
  /**
   * Prefix of the stacks' ids (the stack of `us-east-1` is `<prefix>-us-east-1`).
   * @default - the construct id
   */
  readonly stackIdPrefix?: string;
}

/** What a {@link RegionalDeployment} made in one Region. */
export interface RegionalService {
  /** The Region. */
  readonly region: string;
  /** The Region's stack. */
  readonly stack: Stack;
  /** The Region's router (the whole service: `RegionalDeployment.serviceOf(region)`). */
  readonly router: ITieredRouter;
  /** The VPC of the Region's service. */
  readonly vpc: ec2.IVpc;
  /** The interface endpoints the Region's service created in its VPC (none with your own VPC). */
  readonly vpcEndpoints: ec2.InterfaceVpcEndpoint[];
  /** `<region>.<apiDomainName>` and `apiDomainName` as API Gateway custom domains (with `domain`). */
  readonly domainNames: apigwv2.DomainName[];
  /** The Route 53 health check of `<region>.<apiDomainName>` (with `domain`). */
  readonly healthCheck?: route53.HealthCheck;
  /** The domain name of this Region alone, `<region>.<apiDomainName>` (with `domain`). */
  readonly regionalDomainName?: string;
}

/**
 * The request path (router, caches, tiers) in each listed Region: one stack per Region (cross-region
 * references on), each with a `ScalableAiService`. With `domain`, custom domains, health checks and
 * Route 53 failover; with `edge`, the origin secret and `edgeOrigins` for an `EdgeDistribution`.
 */
export class RegionalDeployment extends Construct {
  /** One entry per Region, in the order of `regions`. */
  public readonly regionalServices: RegionalService[];
  /** What an `EdgeDistribution` puts in front of (with `edge`). */
  public readonly edgeOrigins?: EdgeOrigins;
  /** The origin secret in the first Region (with `edge`). */
  public readonly originSecret?: secretsmanager.Secret;
  /** The origin secret as each Region's router reads it (the primary, then the replicas), with `edge`. */
  public readonly regionalSecrets: secretsmanager.ISecret[] = [];

  private readonly services = new Map<string, ScalableAiService>();

  constructor(scope: Construct, id: string, props: RegionalDeploymentProps) {
    super(scope, id);
    validate(props);
    const prefix = props.stackIdPrefix ?? id;
    const otherRegions = props.regions.slice(1);
    const stacks = props.regions.map((region) => new Stack(scope, `${prefix}-${region}`, {
      env: { region, account: props.account },
      crossRegionReferences: true,
    }));

    let originSecret: secretsmanager.Secret | undefined;
    if (props.edge) {
      // Replicated so that each Region's router reads the secret in its own Region.
      originSecret = new secretsmanager.Secret(stacks[0], 'OriginSecret', {
        description: 'Origin secret: CloudFront sends it, the regional routers check it',
        generateSecretString: { passwordLength: 48, excludePunctuation: true },
        replicaRegions: otherRegions.map((region) => ({ region })),
      });
      this.originSecret = originSecret;
      for (const nagId of ['AwsSolutions-SMG4', 'NIST.800.53.R5-SecretsManagerRotationEnabled']) {
        Validations.of(originSecret).acknowledge({
          id: nagId,
          reason: 'The origin secret is rotated by the EdgeDistribution put in front of these Regions (its rotation schedule and function live in the edge stack, which cdk-nag checks separately).',
        });
      }
      Validations.of(originSecret).acknowledge({
        id: 'NIST.800.53.R5-SecretsManagerUsingKMSKey',
        reason: 'The origin secret only proves a request came through CloudFront, whose distribution config holds the value anyway; the AWS managed key encrypts it and each replica at rest, without a customer-managed key per replica Region.',
      });
    }

    this.regionalServices = props.regions.map((region, i) => {
      const stack = stacks[i];
      const serviceProps = props.service.serviceProps(stack, region);
      let routerOptions = serviceProps.routerOptions;
      if (props.edge && originSecret) {
        // The replica of this Region: the primary's ARN with the Region replaced.
        const regionalSecret = i === 0
          ? originSecret
          : secretsmanager.Secret.fromSecretCompleteArn(stack, 'OriginSecretReplica', replicaArn(originSecret.secretArn, region));
        routerOptions = {
          ...routerOptions,
          authorization: RouterAuthorization.jwt(props.edge.jwt),
          originVerification: { ...routerOptions?.originVerification, originSecret: regionalSecret },
        };
        this.regionalSecrets.push(regionalSecret);
      }
      const service = new ScalableAiService(stack, 'Service', { ...serviceProps, routerOptions });
      this.services.set(region, service);
      const parts = { region, stack, router: service.router, vpc: service.vpc, vpcEndpoints: service.vpcEndpoints };
      if (!props.domain) return { ...parts, domainNames: [] };
      return { ...parts, ...regionalDomain(stack, service, region, props.domain, i) };
    });

    if (props.edge && props.domain && originSecret) {
      const [primary, secondary] = this.regionalServices;
      this.edgeOrigins = {
        primary: { region: primary.region, domainName: primary.regionalDomainName! },
        secondary: { region: secondary.region, domainName: secondary.regionalDomainName! },
        failoverDomainName: props.domain.apiDomainName,
        originSecret,
        jwt: props.edge.jwt,
      };
    }
  }

  /** The `ScalableAiService` of `region`, one of `regions`. */
  public serviceOf(region: string): ScalableAiService {
    const service = this.services.get(region);
    if (!service) throw new Error(`RegionalDeployment.serviceOf: ${region} is not one of the deployment's regions (${[...this.services.keys()].join(', ')})`);
    return service;
  }
}

/**
 * `arn:<partition>:secretsmanager:<region>:<account>:secret:<name-suffix>` of the replica in
 * `region`: a replica keeps the primary's name and random suffix.
 */
function replicaArn(primaryArn: string, region: string): string {
  const parts = Fn.split(':', primaryArn, 7);
  return Fn.join(':', [Fn.select(0, parts), Fn.select(1, parts), Fn.select(2, parts), region, Fn.select(4, parts), Fn.select(5, parts), Fn.select(6, parts)]);

}

function regionalDomain(stack: Stack, service: ScalableAiService, region: string, domain: RegionalDomainOptions, index: number) {
  const zone = route53.HostedZone.fromHostedZoneAttributes(stack, 'HostedZone', { hostedZoneId: domain.hostedZoneId, zoneName: domain.zoneName });
  const regionalName = `${region}.${domain.apiDomainName}`;
  const certificate = new acm.Certificate(stack, 'ApiCertificate', {
    domainName: domain.apiDomainName,
    subjectAlternativeNames: [regionalName],
    validation: acm.CertificateValidation.fromDns(zone),
  });
  const stage = apigwv2.HttpStage.fromHttpStageAttributes(stack, 'RouterStage', { api: service.router.api, stageName: service.router.stageName });
  const domainNames = [regionalName, domain.apiDomainName].map((name, n) => {
    const domainName = new apigwv2.DomainName(stack, n === 0 ? 'RegionalDomain' : 'FailoverDomain', {
      domainName: name,
      certificate,
      endpointType: apigwv2.EndpointType.REGIONAL,
      securityPolicy: apigwv2.SecurityPolicy.TLS_1_2,
    });
    const mapping = new apigwv2.ApiMapping(stack, n === 0 ? 'RegionalMapping' : 'FailoverMapping', { api: service.router.api, domainName, stage });
    // The $default stage is the router's: the mapping needs it deployed.
    mapping.node.addDependency(service.router);
    return domainName;
  });
  const [regionalDomainName, failoverDomain] = domainNames;
  new route53.ARecord(stack, 'RegionalRecord', {
    zone,
    recordName: regionalName,
    target: route53.RecordTarget.fromAlias(
      new targets.ApiGatewayv2DomainProperties(regionalDomainName.regionalDomainName, regionalDomainName.regionalHostedZoneId),
    ),
  });
  const healthCheck = new route53.HealthCheck(stack, 'HealthCheck', {
    type: route53.HealthCheckType.HTTPS,
    fqdn: regionalName,
    resourcePath: HEALTH_PATH,
    port: 443,
    enableSNI: true,
    failureThreshold: 3,
  });
  // Two Regions make the failover pair; a third and later have their own name only.
  if (index < 2) {
    new route53.ARecord(stack, 'FailoverRecord', {
      zone,
      recordName: domain.apiDomainName,
      // Route 53 requires a failover alias to evaluate its target's health (API Gateway's is always healthy).
      target: route53.RecordTarget.fromAlias({
        bind: () => ({
          dnsName: failoverDomain.regionalDomainName,
          hostedZoneId: failoverDomain.regionalHostedZoneId,
          evaluateTargetHealth: true,
        }),
      }),
      failover: index === 0 ? route53.Failover.PRIMARY : route53.Failover.SECONDARY,
      setIdentifier: region,
      healthCheck: index === 0 ? healthCheck : undefined,
    });
  }
  return { domainNames, healthCheck, regionalDomainName: regionalName };
}

function validate(props: RegionalDeploymentProps): void {
  const where = 'RegionalDeployment';
  if (props.regions.length === 0) throw new Error(`${where}: regions must name at least one Region`);
  for (const region of props.regions) {
    if (Token.isUnresolved(region)) throw new Error(`${where}: regions must be resolved Region names (cross-region references need them); got a token`);
  }
  const duplicates = props.regions.filter((r, i) => props.regions.indexOf(r) !== i);
  if (duplicates.length > 0) throw new Error(`${where}: regions must be unique; ${duplicates.join(', ')} is listed more than once`);
  if (props.edge) {
    if (!props.domain) throw new Error(`${where}: edge needs domain (the failover name and the regional names are the distribution's origins)`);
    if (props.regions.length < 2) throw new Error(`${where}: edge needs at least two regions (the primary and secondary origins)`);
    if (props.regions[0] !== 'us-east-1') {
      throw new Error(`${where}: with edge, regions must start with us-east-1: the origin secret is created in the first Region, and the EdgeDistribution (in us-east-1) reads it through a dynamic reference and rotates it, which both need it in its own Region; got ${props.regions[0]}`);
    }
  }
}
