import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Duration, RemovalPolicy, Stack, Token, Validations } from 'aws-cdk-lib';
import type * as acm from 'aws-cdk-lib/aws-certificatemanager';
import * as cloudfront from 'aws-cdk-lib/aws-cloudfront';
import * as origins from 'aws-cdk-lib/aws-cloudfront-origins';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as wafv2 from 'aws-cdk-lib/aws-wafv2';
import { Construct } from 'constructs';
import type { EdgeOrigins } from './edge-origins';
import {
  EDGE_AUTH_CONFIG_FILE, EDGE_TENANT_HEADER, ORIGIN_ROTATION_CONFIG_ENV, ORIGIN_SECRET_HEADER,
  type EdgeAuthRuntimeConfig, type OriginSecretRotationRuntimeConfig,
} from '../contract/edge';
import { HandlerFunction, handlerAssetPath } from '../internal/handler-function';

/** AWS WAF limits of a rate-based rule (requests per evaluation window per IP). */
const MIN_RATE_LIMIT = 10;
const MAX_RATE_LIMIT = 2_000_000_000;

/** Properties of {@link EdgeDistribution}. */
export interface EdgeDistributionProps {
  /** The two Regions' APIs, their failover name, the origin secret and the JWT issuer (`RegionalDeployment.edgeOrigins`). */
  readonly origins: EdgeOrigins;
  /**
   * Requests per 5 minutes a single client IP may make before the WAF blocks it (AWS WAF accepts 10 to 2,000,000,000).
   * @default 2000
   */
  readonly rateLimitPerFiveMinutes?: number;
  /**
   * A custom domain name of the distribution (viewer alias). Requires `certificate`.
   * @default - the distribution's cloudfront.net name and CloudFront's default certificate
   */
  readonly domainName?: string;
  /**
   * Certificate of `domainName`, in us-east-1. With it, viewers must use TLS 1.2 (TLSv1.2_2021).
   * @default - none
   */
  readonly certificate?: acm.ICertificate;
  /**
   * Longest time CloudFront keeps a static answer (the max TTL of its cache policy; the origin's
   * `Cache-Control: s-maxage` decides within it).
   * @default Duration.hours(1)
   */
  readonly staticAnswersCacheTtl?: Duration;
  /**
   * How often the origin secret is rotated.
   * @default Duration.days(30)
   */
  readonly originSecretRotation?: Duration;
  /**
   * Days after which access logs expire.
   * @default Duration.days(365)
   */
  readonly accessLogRetention?: Duration;
  /**
   * Log retention of the rotation function.
   * @default logs.RetentionDays.ONE_YEAR
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * Edge locations that serve the distribution.
   * @default cloudfront.PriceClass.PRICE_CLASS_100 (North America and Europe, the cheapest)
   */
  readonly priceClass?: cloudfront.PriceClass;
  /**
   * What happens to the access log buckets when the stack is deleted.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * CloudFront in front of two Regions' APIs: POST routes go to the Route 53 failover name, GET
 * routes to an origin group (primary, then secondary on 5xx or connection errors); static
 * answers are cached per verified tenant (a Lambda@Edge JWT verifier sets the tenant header);
 * an AWS WAF web ACL (common rule set, per-IP rate limit) guards it; every origin request
 * carries the origin secret, rotated on a schedule. Must be in a us-east-1 stack.
 */
export class EdgeDistribution extends Construct {
  /** The CloudFront distribution. */
  public readonly distribution: cloudfront.Distribution;
  /** The WAF web ACL attached to the distribution. */
  public readonly webAcl: wafv2.CfnWebACL;
  /** Bucket of the distribution's standard access logs. */
  public readonly accessLogBucket: s3.IBucket;
  /** The Lambda@Edge viewer-request JWT verifier of the static answers route. */
  public readonly edgeAuthFunction: lambda.IVersion;
  /** The function that rotates the origin secret. */
  public readonly rotationFunction: lambda.IFunction;
  /** Domain name of the distribution (`xxxx.cloudfront.net`). */
  public readonly domainName: string;

  constructor(scope: Construct, id: string, props: EdgeDistributionProps) {
    super(scope, id);
    const region = Stack.of(this).region;
    if (Token.isUnresolved(region) || region !== 'us-east-1') {
      throw new Error(`EdgeDistribution: its stack must have env.region 'us-east-1' (CloudFront-scope WAF web ACLs and Lambda@Edge functions live there); got ${Token.isUnresolved(region) ? 'an environment-agnostic stack' : `'${region}'`}`);
    }
    const rate = props.rateLimitPerFiveMinutes ?? 2000;
    if (!Number.isInteger(rate) || rate < MIN_RATE_LIMIT || rate > MAX_RATE_LIMIT) {
      throw new Error(`EdgeDistribution: rateLimitPerFiveMinutes must be an integer from ${MIN_RATE_LIMIT} to ${MAX_RATE_LIMIT} (AWS WAF rate-based rule limits); got ${rate}`);
    }
    if ((props.domainName === undefined) !== (props.certificate === undefined)) {
      throw new Error('EdgeDistribution: domainName and certificate go together (a viewer alias needs a us-east-1 certificate that covers it)');
    }
    const o = props.origins;
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;

    // CloudFront puts the header value into its configuration, so the secret must be resolved
    // there (a dynamic reference); the rotation function updates the distribution after each rotation.
    const secretValue = o.originSecret.secretValue.unsafeUnwrap();
    const httpOrigin = (domainName: string) => new origins.HttpOrigin(domainName, {
      protocolPolicy: cloudfront.OriginProtocolPolicy.HTTPS_ONLY,
      originSslProtocols: [cloudfront.OriginSslPolicy.TLS_V1_2],
      customHeaders: { [ORIGIN_SECRET_HEADER]: secretValue },
      // Fail over quickly: 2 attempts of 5 s each before the origin group tries the secondary.
      connectionAttempts: 2,
      connectionTimeout: Duration.seconds(5),
    });
    const failoverOrigin = httpOrigin(o.failoverDomainName);
    const originGroup = new origins.OriginGroup({
      primaryOrigin: httpOrigin(o.primary.domainName),
      fallbackOrigin: httpOrigin(o.secondary.domainName),
      fallbackStatusCodes: [500, 502, 503, 504],
    });

    // GET /v1/jobs/*: API Gateway's JWT authorizer needs Authorization, which CloudFront forwards
    // on GET only when it is in the cache key; TTLs 0 unless the origin says otherwise, and the
    // key holds the caller's token, so nothing is shared between callers.
    const jobsCachePolicy = new cloudfront.CachePolicy(this, 'JobsCachePolicy', {
      comment: 'Job status: keyed by the caller\'s Authorization, not cached unless the origin allows it',
      minTtl: Duration.seconds(0),
      defaultTtl: Duration.seconds(0),
      maxTtl: Duration.seconds(1),
      headerBehavior: cloudfront.CacheHeaderBehavior.allowList('Authorization'),
      queryStringBehavior: cloudfront.CacheQueryStringBehavior.all(),
      cookieBehavior: cloudfront.CacheCookieBehavior.none(),
      enableAcceptEncodingGzip: true,
      enableAcceptEncodingBrotli: true,
    });
    // Static answers: keyed by the verified tenant and the query, NOT Authorization, so callers
    // of one tenant share answers; min TTL 0 so the origin's Cache-Control decides (`private`
    // unless the edge verified the tenant).
    const staticAnswersCachePolicy = new cloudfront.CachePolicy(this, 'StaticAnswersCachePolicy', {
      comment: 'Static answers: keyed by the edge-verified tenant and the query string',
      minTtl: Duration.seconds(0),
      defaultTtl: Duration.seconds(0),
      maxTtl: props.staticAnswersCacheTtl ?? Duration.hours(1),
      headerBehavior: cloudfront.CacheHeaderBehavior.allowList(EDGE_TENANT_HEADER),
      queryStringBehavior: cloudfront.CacheQueryStringBehavior.all(),
      cookieBehavior: cloudfront.CacheCookieBehavior.none(),
      enableAcceptEncodingGzip: true,
      enableAcceptEncodingBrotli: true,
    });

    const edgeAuth = new cloudfront.experimental.EdgeFunction(this, 'EdgeAuth', {
      description: 'Verifies the caller\'s JWT at the edge and sets the verified tenant header',
      runtime: lambda.Runtime.NODEJS_22_X,
      handler: 'index.handler',
      code: lambda.Code.fromAsset(stageEdgeAuthCode({
        issuer: o.jwt.issuer,
        audience: o.jwt.audience,
        tenantClaim: o.jwt.tenantClaim ?? 'tenant_id',
      })),
      memorySize: 128,
      timeout: Duration.seconds(5),
    });
    this.edgeAuthFunction = edgeAuth.currentVersion;
    Validations.of(edgeAuth).acknowledge({
      id: 'AwsSolutions-L1',
      reason: 'Lambda@Edge supports fewer Node.js runtimes than Lambda; nodejs22.x is the newest it runs.',
    }, {
      id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
      reason: 'Lambda@Edge writes logs to /aws/lambda/us-east-1.<name> log groups in every Region it runs in, whose names are not known in advance; the managed policy grants only log writes.',
    }, {
      id: 'NIST.800.53.R5-LambdaConcurrency',
      reason: 'Lambda@Edge functions cannot have reserved concurrency; the WAF rate rule bounds the callers.',
    }, {
      id: 'NIST.800.53.R5-LambdaDLQ',
      reason: 'A viewer-request function is invoked synchronously by CloudFront; a failure is answered to the viewer, there is nothing to retry.',
    }, {
      id: 'NIST.800.53.R5-LambdaInsideVPC',
      reason: 'Lambda@Edge functions cannot run in a VPC.',
    }, {
      id: 'NIST.800.53.R5-CloudWatchLogGroupEncrypted',
      reason: 'Lambda@Edge creates its log groups itself in each Region it runs in; this us-east-1 group receives only test invocations.',
    });

    const accessLogBucket = new s3.Bucket(this, 'AccessLogs', {
      // Standard (legacy) logging writes with the awslogsdelivery account's ACL: SSE-S3 and ACLs on.
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
      lifecycleRules: [{ expiration: props.accessLogRetention ?? Duration.days(365) }],
      removalPolicy,
    });
    Validations.of(accessLogBucket).acknowledge({
      id: 'AwsSolutions-S1',
      reason: 'This bucket receives the CloudFront access logs; logging the log bucket itself would recurse.',
    }, {
      id: 'NIST.800.53.R5-S3DefaultEncryptionKMS',
      reason: 'CloudFront standard logging delivers to SSE-S3 buckets; a KMS default key would need the log delivery account in its key policy.',
    }, {
      id: 'NIST.800.53.R5-S3BucketVersioningEnabled',
      reason: 'CloudFront writes each log object once under a new key; the lifecycle rule expires it.',
    }, {
      id: 'NIST.800.53.R5-S3BucketReplicationEnabled',
      reason: 'Access logs of the distribution; replicate them with your organization\'s log archive if it requires copies elsewhere.',
    }, {
      id: 'NIST.800.53.R5-S3BucketLoggingEnabled',
      reason: 'This bucket receives the CloudFront access logs; logging the log bucket itself would recurse.',
    });
    this.accessLogBucket = accessLogBucket;

    this.webAcl = new wafv2.CfnWebACL(this, 'WebAcl', {
      scope: 'CLOUDFRONT',
      defaultAction: { allow: {} },
      visibilityConfig: { cloudWatchMetricsEnabled: true, sampledRequestsEnabled: true, metricName: 'EdgeWebAcl' },
      rules: [
        {
          name: 'RatePerIp',
          priority: 0,
          action: { block: {} },
          statement: { rateBasedStatement: { limit: rate, aggregateKeyType: 'IP', evaluationWindowSec: 300 } },
          visibilityConfig: { cloudWatchMetricsEnabled: true, sampledRequestsEnabled: true, metricName: 'RatePerIp' },
        },
        {
          name: 'AWSManagedRulesCommonRuleSet',
          priority: 1,
          overrideAction: { none: {} },
          statement: {
            managedRuleGroupStatement: {
              vendorName: 'AWS',
              name: 'AWSManagedRulesCommonRuleSet',
              // SizeRestrictions_BODY blocks bodies over 8 KB: a long chat conversation is a
              // legitimate POST body, so that one rule only counts.
              ruleActionOverrides: [{ name: 'SizeRestrictions_BODY', actionToUse: { count: {} } }],
            },
          },
          visibilityConfig: { cloudWatchMetricsEnabled: true, sampledRequestsEnabled: true, metricName: 'CommonRuleSet' },
        },
        {
          name: 'AWSManagedRulesKnownBadInputsRuleSet',
          priority: 2,
          overrideAction: { none: {} },
          statement: { managedRuleGroupStatement: { vendorName: 'AWS', name: 'AWSManagedRulesKnownBadInputsRuleSet' } },
          visibilityConfig: { cloudWatchMetricsEnabled: true, sampledRequestsEnabled: true, metricName: 'KnownBadInputs' },
        },
      ],
    });

    Validations.of(this.webAcl).acknowledge({
      id: 'NIST.800.53.R5-WAFv2LoggingEnabled',
      reason: 'The web ACL publishes metrics and sampled requests for every rule; full WAF logs (CloudWatch Logs, S3 or Firehose, charged per GB) are an organization choice: add an AWS::WAFv2::LoggingConfiguration for webAcl.',
    });

    // Every viewer header but Host (API Gateway routes by the origin's name) and the edge tenant
    // header: only the edge verifier sets that one, on the static answers behaviour, whose cache
    // key forwards it. A viewer's own value never reaches a router.
    const originRequestPolicy = new cloudfront.OriginRequestPolicy(this, 'OriginRequestPolicy', {
      comment: 'cdk-scalable-ai: viewer headers except Host and the edge tenant header',
      headerBehavior: cloudfront.OriginRequestHeaderBehavior.denyList('host', EDGE_TENANT_HEADER),
      queryStringBehavior: cloudfront.OriginRequestQueryStringBehavior.all(),
      cookieBehavior: cloudfront.OriginRequestCookieBehavior.none(),
    });
    const getBehavior = (cachePolicy: cloudfront.ICachePolicy): cloudfront.BehaviorOptions => ({
      origin: originGroup,
      // Origin groups accept only GET/HEAD/OPTIONS behaviours (CloudFront fails over only those).
      allowedMethods: cloudfront.AllowedMethods.ALLOW_GET_HEAD_OPTIONS,
      viewerProtocolPolicy: cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
      cachePolicy,
      originRequestPolicy,
    });
    this.distribution = new cloudfront.Distribution(this, 'Distribution', {
      comment: 'cdk-scalable-ai edge',
      defaultBehavior: {
        // POST /v1/chat, /v1/jobs, context, feedback: Route 53 failover resolves the name to the healthy Region.
        origin: failoverOrigin,
        allowedMethods: cloudfront.AllowedMethods.ALLOW_ALL,
        viewerProtocolPolicy: cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
        cachePolicy: cloudfront.CachePolicy.CACHING_DISABLED,
        originRequestPolicy,
      },
      additionalBehaviors: {
        '/v1/jobs/*': getBehavior(jobsCachePolicy),
        '/v1/static-answers*': {
          ...getBehavior(staticAnswersCachePolicy),
          edgeLambdas: [{ functionVersion: this.edgeAuthFunction, eventType: cloudfront.LambdaEdgeEventType.VIEWER_REQUEST }],
        },
      },
      domainNames: props.domainName ? [props.domainName] : undefined,
      certificate: props.certificate,
      minimumProtocolVersion: props.certificate ? cloudfront.SecurityPolicyProtocol.TLS_V1_2_2021 : undefined,
      httpVersion: cloudfront.HttpVersion.HTTP2_AND_3,
      enableIpv6: true,
      priceClass: props.priceClass ?? cloudfront.PriceClass.PRICE_CLASS_100,
      webAclId: this.webAcl.attrArn,
      enableLogging: true,
      logBucket: accessLogBucket,
      logFilePrefix: 'cloudfront/',
    });
    this.domainName = this.distribution.distributionDomainName;
    Validations.of(this.distribution).acknowledge({
      id: 'AwsSolutions-CFR1',
      reason: 'An API for the callers of the tenants, wherever they are; restrict countries with the WAF or a geo restriction if your terms require it.',
    });
    if (!props.certificate) {
      Validations.of(this.distribution).acknowledge({
        id: 'AwsSolutions-CFR4',
        reason: 'No domainName/certificate given: the cloudfront.net default certificate, whose viewer TLS policy CloudFront fixes (TLSv1). Give domainName and certificate for TLSv1.2_2021.',
      });
    }

    const rotation = new HandlerFunction(this, 'Rotation', {
      handlerName: 'origin-secret-rotation',
      description: 'Rotates the origin secret of the edge distribution and updates its origin headers',
      environment: {
        [ORIGIN_ROTATION_CONFIG_ENV]: JSON.stringify({
          distributionId: this.distribution.distributionId,
        } satisfies OriginSecretRotationRuntimeConfig),
      },
      timeout: Duration.minutes(1),
      memorySize: 256,
      logRetention: props.logRetention ?? logs.RetentionDays.ONE_YEAR,
      serviceName: 'origin-secret-rotation',
      keyProp: 'EdgeDistribution (no key prop)',
      noDeadLetterQueueReason: 'Secrets Manager invokes the rotation synchronously and retries a failed rotation itself; the failure is visible on the secret.',
      unreservedConcurrencyReason: 'Runs once per rotation of one secret.',
    });
    this.rotationFunction = rotation.function;
    o.originSecret.grantRead(rotation.role);
    o.originSecret.grantWrite(rotation.role);
    rotation.role.addToPolicy(new iam.PolicyStatement({
      actions: ['secretsmanager:DescribeSecret', 'secretsmanager:UpdateSecretVersionStage'],
      resources: [o.originSecret.secretArn],
    }));
    rotation.role.addToPolicy(new iam.PolicyStatement({ actions: ['secretsmanager:GetRandomPassword'], resources: ['*'] }));
    rotation.role.addToPolicy(new iam.PolicyStatement({
      actions: ['cloudfront:GetDistributionConfig', 'cloudfront:UpdateDistribution'],
      resources: [this.distribution.distributionArn],
    }));
    // UpdateDistribution re-submits the Lambda@Edge association, which CloudFront checks as the
    // caller: the CloudFront Developer Guide ("Set up IAM permissions and roles for Lambda@Edge")
    // asks for lambda:GetFunction and lambda:EnableReplication* (the asterisk is required) on the version.
    rotation.role.addToPolicy(new iam.PolicyStatement({
      actions: ['lambda:GetFunction', 'lambda:EnableReplication*'],
      resources: [this.edgeAuthFunction.functionArn],
    }));
    Validations.of(rotation.role).acknowledge({
      id: 'AwsSolutions-IAM5[Action::lambda:EnableReplication*]',
      reason: 'CloudFront requires lambda:EnableReplication* with the asterisk to associate a Lambda@Edge version (CloudFront Developer Guide, lambda-edge-permissions); it is scoped to the one edge function version.',
    }, {
      id: 'AwsSolutions-IAM5[Action::secretsmanager:GetRandomPassword]',
      reason: 'secretsmanager:GetRandomPassword has no resource type: IAM requires Resource * for it.',
    }, {
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason: 'secretsmanager:GetRandomPassword has no resource type: IAM requires Resource * for it.',
    });
    new secretsmanager.RotationSchedule(this, 'RotationSchedule', {
      secret: o.originSecret,
      rotationLambda: rotation.function,
      automaticallyAfter: props.originSecretRotation ?? Duration.days(30),
    });
  }

  /** Percentage of viewer requests answered with a 5xx status. */
  public metric5xxErrorRate(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.distribution.metric5xxErrorRate(props);
  }
}

/**
 * A directory with the bundled verifier and its configuration file beside it (Lambda@Edge has no
 * environment variables), named by the hash of its content so the asset hash is stable.
 */
function stageEdgeAuthCode(config: EdgeAuthRuntimeConfig): string {
  const code = fs.readFileSync(path.join(handlerAssetPath('edge-auth'), 'index.js'));
  const json = JSON.stringify(config, null, 2);
  const hash = crypto.createHash('sha256').update(code).update(json).digest('hex').slice(0, 16);
  const dir = path.join(os.tmpdir(), 'cdk-scalable-ai-edge-auth', hash);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'index.js'), code);
  fs.writeFileSync(path.join(dir, EDGE_AUTH_CONFIG_FILE), json);
  return dir;
}
