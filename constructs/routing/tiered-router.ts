import { Annotations, Arn, ArnFormat, Duration, Names, Stack, Token, Validations } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import * as integrations from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import { Construct } from 'constructs';
import { coalescingRuntimeConfig, type RequestCoalescingOptions } from './coalescing-options';
import type { OriginVerificationOptions } from './origin-verification-options';
import { bindQuotas, type QuotaOptions } from './quota-options';
import { RouterAuthorization } from './router-authorization';
import type { ITieredRouter } from './router-interface';
import { provisionedRouterAlias, type RouterProvisionedConcurrency } from './router-scaling';
import { bindUserProfiles, type UserProfilesOptions } from './user-profiles-options';
import type { EmbeddingModel } from '../cache/embedding-model';
import type { IResponseCache } from '../cache/response-cache';
import type { SemanticCacheOptions } from '../cache/semantic-cache';
import type { IStaticAnswers } from '../cache/static-answers';
import { UserContextBackend, type IUserContextStore } from '../cache/user-context-store';
import type { VectorStore } from '../cache/vector-store';
import { HEALTH_PATH } from '../contract/edge';
import { AiMetricNames } from '../contract/metrics';
import { ROUTER_CONFIG_ENV, ROUTER_CONFIG_PARAMETER_ENV, type RouterRuntimeConfig } from '../contract/runtime-config';
import { cacheConnectionConfig } from '../internal/cache-connection';
import { newLogGroup } from '../internal/encryption';
import { estimatedEnvironmentBytes, estimatedValueBytes, LAMBDA_ENVIRONMENT_LIMIT_BYTES } from '../internal/environment-size';
import { HandlerFunction } from '../internal/handler-function';
import { bindSemanticCache } from '../internal/semantic-cache-binding';
import { AwsServiceEndpoint, modelServices, requireAwsServices } from '../internal/service-endpoints';
import { staticAnswersRuntimeConfig, userContextRuntimeConfig } from '../internal/store-runtime-config';
import { defaultPrivateSubnets, selectPrivateSubnets } from '../internal/subnets';
import type { IModelTier } from '../models/model-tier';
import { tierRuntimeConfig, tierWarnings } from '../models/tier-support';
import type { HandlerTracing } from '../tracing/handler-tracing';

/** Whether the router honours the `tier` a request asks for. */
export enum TierHintPolicy {
  /** Always route by the classifier. */
  IGNORE = 'ignore',
  /** Honour a hint for the classified tier or a cheaper one; refuse a more expensive one. */
  CHEAPER_ONLY = 'cheaper-only',
  /** Honour any hint. */
  ANY = 'any',
}

/** Where answers produced for one user (a conversation, an answer with user context) may be cached. */
export enum PersonalCaching {
  /** In entries scoped to the user (and tenant): only that user is ever served them. */
  USER = 'user',
  /** Not at all: only answers to stand-alone questions without user context are cached. */
  NONE = 'none',
}

/** Options of a {@link TieredRouter} that do not name its tiers, cache or network. */
export interface TieredRouterOptions {
  /**
   * How callers authenticate; the tenant of each request comes from the authorizer.
   * @default RouterAuthorization.iam()
   */
  readonly authorization?: RouterAuthorization;
  /**
   * Tier ids to try, in order, after the selected tier fails (throttling, 5xx, timeout).
   * @default - every more capable tier in ascending order, then the cheaper ones
   */
  readonly fallbackOrder?: string[];
  /**
   * Whether a request's `tier` hint is honoured.
   * @default TierHintPolicy.CHEAPER_ONLY
   */
  readonly tierHintPolicy?: TierHintPolicy;
  /**
   * Complexity-score thresholds between consecutive tiers (one fewer than the tiers, ascending,
   * within 0..1). The default classifier and its score are documented in the README.
   * @default - evenly spread between 0.15 and 0.35 ([0.15, 0.35] for three tiers)
   */
  readonly classifierThresholds?: number[];
  /**
   * Requests with a larger body are answered 413.
   * @default 32768
   */
  readonly maxRequestBytes?: number;
  /**
   * Most messages one conversation may carry.
   * @default 50
   */
  readonly maxMessages?: number;
  /**
   * Timeout of the router function; the tiers' fallbacks share it. At most 30 seconds, the
   * integration timeout of an HTTP API.
   * @default Duration.seconds(29)
   */
  readonly timeout?: Duration;
  /**
   * Memory of the router function in MB.
   * @default 512
   */
  readonly memorySize?: number;
  /**
   * How long the router waits for the cache before answering from a model instead.
   * @default Duration.millis(200)
   */
  readonly cacheTimeout?: Duration;
  /**
   * Value of the `service` dimension of every metric (tells several services apart).
   * @default 'scalable-ai'
   */
  readonly serviceName?: string;
  /**
   * Retention of the router's logs and the API's access logs.
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * Customer-managed KMS key of the router's log groups (function logs and API access logs). A
   * key of this app gets the key policy statement CloudWatch Logs needs; an imported key's
   * policy must already allow it.
   * @default - CloudWatch Logs' own encryption
   */
  readonly encryptionKey?: kms.IKey;
  /**
   * Steady-state request rate limit of the API (requests per second). Not with `httpApi`: that
   * API's stages keep their own throttling.
   * @default 100
   */
  readonly throttlingRateLimit?: number;
  /**
   * Burst limit of the API. Not with `httpApi`.
   * @default 200
   */
  readonly throttlingBurstLimit?: number;
  /**
   * Concurrent executions reserved for (and capping) the router function: an integer of at least
   * 1 (0 would throttle every request).
   * @default - unreserved
   */
  readonly reservedConcurrentExecutions?: number;
  /**
   * The semantic cache (level 1, after the static answers and the exact cache): given, the
   * router embeds each question and answers it from a similar enough earlier one of the same
   * scope. `{}` takes every default: vectors in the response cache (`VectorStore.valkey()`,
   * which needs `cache`), Titan Text Embeddings V2.
   * @default - no semantic cache
   */
  readonly semanticCache?: SemanticCacheOptions;
  /**
   * Whether answers produced for one user (multi-turn conversations, answers with user context,
   * questions that carry the asker's personal data) are cached in entries of that user, or not at
   * all. Never shared with other users either way. With `USER` and a cache, the router serves
   * `DELETE /v1/context`, which forgets the caller's cached personal answers (and user context).
   * @default PersonalCaching.USER
   */
  readonly personalCaching?: PersonalCaching;
  /**
   * How long the router remembers how it served each answer (a serving record of about 600 bytes
   * in the response cache), so that its caller can judge it at `POST /v1/feedback`: a verdict
   * after that gets a 404. Between 5 minutes and 7 days; needs `cache` (the route exists only with one).
   * @default Duration.hours(24)
   */
  readonly feedbackWindow?: Duration;
  /**
   * Name of the HTTP API (what the API Gateway console lists).
   * @default - generated from the stack name and the construct path, unique per stack and router
   */
  readonly apiName?: string;
  /**
   * Provisioned concurrency of the router function, on an alias `live` that the API then invokes,
   * with target tracking on its utilization and scheduled actions from a weekly traffic profile.
   * @default - none: every execution environment starts on demand
   */
  readonly provisionedConcurrency?: RouterProvisionedConcurrency;
  /**
   * The router is behind an `EdgeDistribution`: every route answers 403 to a request without the
   * distribution's origin secret (so the API cannot be called around the distribution and its
   * WAF), and `GET /v1/health` is served without authorization for Route 53 health checks
   * (it answers 200 `{"status":"ok"}` and nothing else). Needs JWT `authorization`: a SigV4
   * signature does not survive CloudFront's change of the Host header.
   * @default - no origin verification and no health route: the API is called directly
   */
  readonly originVerification?: OriginVerificationOptions;
  /**
   * User profiles in an Aurora database with read replicas, served at `GET /v1/profile` and
   * `PUT /v1/profile` and added to each chat of their user (reads on the reader endpoint, writes
   * on the writer). Needs `vpc` (a `ScalableAiService` gives its router its VPC).
   * @default - no user profiles
   */
  readonly userProfiles?: UserProfilesOptions;
  /**
   * Per-tenant (and per-user) quotas of `POST /v1/chat`, counted in `cache` (which they need):
   * requests per minute and model cost per day, with overrides per tenant in an SSM parameter
   * that can be changed without a deploy. Over a limit: 429 with `retry-after`. Off unless set,
   * so that no existing caller is refused; `{}` limits each tenant to 600 requests per minute.
   * @default - no quotas
   */
  readonly quotas?: QuotaOptions;
  /**
   * Request coalescing: identical cacheable requests in flight share one model call (the others
   * wait for its answer, bounded by `maxWait`, and are answered `x-cache: coalesced`).
   * @default - on with a cache (maxWait 3 seconds), off without one
   */
  readonly coalescing?: RequestCoalescingOptions;
}

/** Properties of a {@link TieredRouter}. */
export interface TieredRouterProps extends TieredRouterOptions {
  /**
   * The model tiers, cheapest and least capable first: fallback tries the later tiers first, and
   * answers of an earlier tier standing in for a later one are not cached. A tier listed after
   * one it is cheaper than (both prices no higher, one lower) is reported as a warning at synth,
   * and so is a price above 0.2 USD per 1,000 tokens (likely a price per million tokens).
   */
  readonly tiers: IModelTier[];
  /**
   * The response cache to answer repeated requests from.
   * @default - no cache
   */
  readonly cache?: IResponseCache;
  /**
   * VPC of the router function. Required with a cache; it needs a route to Bedrock, SageMaker
   * Runtime and Secrets Manager (VPC endpoints or NAT).
   * @default - the function runs outside any VPC
   */
  readonly vpc?: ec2.IVpc;
  /**
   * Subnets of the router function, which the batch pipeline's functions and the OpenSearch
   * Serverless store's VPC endpoint follow. Public subnets are refused. In isolated
   * subnets the VPC needs interface endpoints for Bedrock Runtime, SageMaker Runtime (with
   * SageMaker tiers or embedder) and Secrets Manager (with a cache or Aurora): a synth warning
   * names those it lacks.
   * @default - the VPC's private subnets with egress if it has any, otherwise its isolated subnets
   */
  readonly vpcSubnets?: ec2.SubnetSelection;
  /**
   * Static answers to serve before any other cache level, and at `GET /v1/static-answers?q=...`.
   * They publish into `cache`, which must be the router's cache.
   * @default - no static answers
   */
  readonly staticAnswers?: IStaticAnswers;
  /**
   * Where the router keeps user context (recent turns of a session, preferences), served at
   * `PUT /v1/context/preferences` and `DELETE /v1/context` (which also forgets the caller's cached
   * personal answers). The `VALKEY` backend needs `cache`.
   * @default - no user context
   */
  readonly userContext?: IUserContextStore;
  /**
   * An existing HTTP API to serve the router's routes on, instead of a new one. The router adds
   * its routes (with its `authorization` on each) and their Lambda integrations to it, and
   * creates no stage, no access logs and no throttling settings: those stay the API's own. The
   * API must not already have the router's routes (`POST /v1/chat`, `GET /v1/static-answers`,
   * `PUT /v1/context/preferences`, `DELETE /v1/context`, `POST /v1/feedback`, and a batch pipeline's `/v1/jobs`
   * routes), and `httpApiStageName` must deploy new routes automatically (`autoDeploy`), or the
   * routes reach callers only with the API's next deployment.
   * @default - a new HTTP API with a `$default` stage, access logs and throttling
   */
  readonly httpApi?: apigwv2.IHttpApi;
  /**
   * The stage of `httpApi` that callers use: `url` and `grantInvoke()` name it. Only with `httpApi`.
   * @default '$default'
   */
  readonly httpApiStageName?: string;
  /**
   * Tracing of the construct's Lambda functions (X-Ray with Powertools Tracer, or the ADOT layer).
   * @default HandlerTracing.disabled()
   */
  readonly tracing?: HandlerTracing;
}

/** Access log fields of an HTTP API (its own `$context` variables, not a REST API's). */
const HTTP_API_ACCESS_LOG_FIELDS = {
  requestId: '$context.requestId',
  requestTime: '$context.requestTime',
  routeKey: '$context.routeKey',
  path: '$context.path',
  status: '$context.status',
  responseLength: '$context.responseLength',
  responseLatency: '$context.responseLatency',
  integrationLatency: '$context.integrationLatency',
  integrationError: '$context.integrationErrorMessage',
  authorizerError: '$context.authorizer.error',
  sourceIp: '$context.identity.sourceIp',
  userArn: '$context.identity.userArn',
};

/** The chat route. */
const CHAT_PATH = '/v1/chat';
/** Static answer lookup (with `staticAnswers`). */
const STATIC_ANSWERS_PATH = '/v1/static-answers';
/** The calling user's preferences (with `userContext`). */
const CONTEXT_PREFERENCES_PATH = '/v1/context/preferences';
/** Everything kept for the calling user (with `userContext`). */
const CONTEXT_PATH = '/v1/context';
/** A verdict on an answer, by its request id. */
const FEEDBACK_PATH = '/v1/feedback';
/** The calling user's profile (with `userProfiles`). */
const PROFILE_PATH = '/v1/profile';
/** Bounds of `feedbackWindow`: long enough to judge an answer, short enough to bound the records kept. */
const FEEDBACK_WINDOW_MIN = Duration.minutes(5);
const FEEDBACK_WINDOW_MAX = Duration.days(7);

/**
 * The router: an HTTP API (API Gateway v2, IAM authorization by default) in front of a Lambda
 * function that validates each request, answers it from the cache when it can, and otherwise
 * classifies it and invokes the cheapest tier that can answer, falling back to other tiers on
 * throttling, 5xx and timeouts.
 *
 * `POST /v1/chat` returns the answer, the tier, how it was served and its cost, with the
 * headers `x-cache`, `x-tier` and `x-cost-usd`. With `staticAnswers` the router also serves
 * `GET /v1/static-answers?q=...`; with `userContext`, `PUT /v1/context/preferences`; and
 * `DELETE /v1/context` wherever it keeps anything of one user (user context, or personal answers
 * in a cache). Every route uses the same authorization.
 */
export class TieredRouter extends Construct implements ITieredRouter {
  /** The router function. */
  public readonly function: lambda.IFunction;
  /** The alias `live` the API invokes, with `provisionedConcurrency`. */
  public readonly alias?: lambda.Alias;
  /** The HTTP API: the new one, or `httpApi`. */
  public readonly api: apigwv2.IHttpApi;
  /** The `$default` stage of the new API (none with `httpApi`). */
  public readonly stage?: apigwv2.HttpStage;
  /** The stage callers use: `$default`, or `httpApiStageName` with `httpApi`. */
  public readonly stageName: string;
  /**
   * Base URL of the API's stage.
   * @attribute
   */
  public readonly url: string;
  /** The authorizer of every route the router serves (from `authorization`). */
  public readonly authorizer: apigwv2.IHttpRouteAuthorizer;
  /** Log group of the router function. */
  public readonly logGroup: logs.ILogGroup;
  /** Log group of the new API's access logs (none with `httpApi`). */
  public readonly accessLogGroup?: logs.ILogGroup;
  /** The tiers, cheapest first. */
  public readonly tiers: IModelTier[];
  /** The `service` dimension of the router's metrics. */
  public readonly serviceName: string;
  /** The semantic cache's vector store, when the semantic cache is on. */
  public readonly vectorStore?: VectorStore;
  /** The semantic cache's embedding model, when the semantic cache is on. */
  public readonly embeddingModel?: EmbeddingModel;
  /** The static answers the router serves, if any. */
  public readonly staticAnswers?: IStaticAnswers;
  /** The user context store of the router, if any. */
  public readonly userContext?: IUserContextStore;
  /** The VPC the router function runs in, if any. */
  public readonly vpc?: ec2.IVpc;
  /** The subnets of the router function (with `vpc`). */
  public readonly vpcSubnets?: ec2.SubnetSelection;
  /** The environment variables from which the library's handlers read this router's configuration. */
  private readonly routes: Array<[apigwv2.HttpMethod, string]> = [];
  private readonly cache?: IResponseCache;
  /** The API this router created (none with `httpApi`). */
  private readonly createdApi?: apigwv2.HttpApi;
  private readonly runtimeConfigJson: string;
  private runtimeConfigParameter?: ssm.StringParameter;
  private readonly runtimeConfigReaders: lambda.Function[] = [];
  /** What the API's integrations invoke: the alias with provisioned concurrency, else the function. */
  private readonly integrationTarget: lambda.IFunction;

  constructor(scope: Construct, id: string, props: TieredRouterProps) {
    super(scope, id);
    validateRouterProps(props);
    if (props.originVerification) validateOriginVerification(props.originVerification, props.authorization, Stack.of(this));
    for (const warning of tierWarnings('TieredRouter', props.tiers)) Annotations.of(this).addWarningV2(warning.id, warning.message);
    validateApiAttachment(props);
    this.tiers = props.tiers;
    this.serviceName = props.serviceName ?? 'scalable-ai';
    const authorization = props.authorization ?? RouterAuthorization.iam();
    const logRetention = props.logRetention ?? logs.RetentionDays.ONE_MONTH;
    const cacheTimeout = props.cacheTimeout ?? Duration.millis(200);

    const vpc = props.vpc;
    const vpcSubnets = vpc ? (props.vpcSubnets ?? defaultPrivateSubnets(vpc)) : undefined;
    if (vpc) selectPrivateSubnets(vpc, vpcSubnets, 'TieredRouter');
    this.vpc = vpc;
    this.vpcSubnets = vpcSubnets;
    this.cache = props.cache;
    const handler = new HandlerFunction(this, 'Handler', {
      handlerName: 'router',
      description: 'cdk-scalable-ai router: cache, classify, invoke a model tier with fallback',
      serviceName: this.serviceName,
      timeout: props.timeout ?? Duration.seconds(29),
      memorySize: props.memorySize ?? 512,
      logRetention,
      vpc,
      vpcSubnets,
      reservedConcurrentExecutions: props.reservedConcurrentExecutions,
      environment: {},
      logEncryptionKey: props.encryptionKey,
      keyProp: 'TieredRouter encryptionKey',
      noDeadLetterQueueReason: 'API Gateway invokes the router synchronously and receives its errors; a dead-letter queue applies to asynchronous invocations only.',
      unreservedConcurrencyReason: 'The API\'s throttling (throttlingRateLimit, throttlingBurstLimit) caps the router\'s load; set reservedConcurrentExecutions to also reserve and cap its concurrency.',
      tracing: props.tracing,
    });
    this.function = handler.function;
    const routerFunction = handler.function;
    this.logGroup = handler.logGroup;

    const semantic = props.semanticCache ? bindSemanticCache(props.semanticCache, { scope: this, vpc, vpcSubnets, cache: props.cache }) : undefined;
    this.vectorStore = semantic?.vectorStore;
    this.embeddingModel = semantic?.embeddingModel;
    this.staticAnswers = props.staticAnswers;
    this.userContext = props.userContext;
    this.grantRouting(routerFunction);
    const userProfiles = props.userProfiles ? bindUserProfiles(props.userProfiles, routerFunction) : undefined;

    const config: RouterRuntimeConfig = {
      tiers: props.tiers.map(tierRuntimeConfig),
      fallbackOrder: props.fallbackOrder,
      tierHintPolicy: props.tierHintPolicy ?? TierHintPolicy.CHEAPER_ONLY,
      maxRequestBytes: props.maxRequestBytes ?? 32_768,
      maxMessages: props.maxMessages ?? 50,
      classifierThresholds: props.classifierThresholds,
      tenant: { source: authorization.tenantSource as RouterRuntimeConfig['tenant']['source'], claim: authorization.tenantClaim },
      personalCaching: props.personalCaching ?? PersonalCaching.USER,
      cache: props.cache ? cacheConnectionConfig(props.cache, cacheTimeout) : undefined,
      exactCache: props.cache ? { ttlSeconds: props.cache.exactCacheTtl.toSeconds() } : undefined,
      coalescing: coalescingRuntimeConfig(props.coalescing, props.cache !== undefined, props.timeout ?? Duration.seconds(29), props.tiers),
      semanticCache: semantic?.config,
      staticAnswers: props.staticAnswers ? staticAnswersRuntimeConfig(props.staticAnswers) : undefined,
      userContext: props.userContext ? userContextRuntimeConfig(props.userContext) : undefined,
      feedback: props.cache ? { windowSeconds: (props.feedbackWindow ?? Duration.hours(24)).toSeconds() } : undefined,
      originVerification: props.originVerification ? {
        secretArn: props.originVerification.originSecret.secretArn,
        refreshSeconds: (props.originVerification.refreshInterval ?? ORIGIN_REFRESH_DEFAULT).toSeconds(),
        edgeCacheSeconds: (props.originVerification.edgeCacheTtl ?? EDGE_CACHE_TTL_DEFAULT).toSeconds(),
      } : undefined,
      userProfiles,
      quotas: props.quotas ? bindQuotas(this, props.quotas, routerFunction, props.cache !== undefined) : undefined,
    };
    if (props.originVerification) {
      // GetSecretValue of the AWSCURRENT, AWSPENDING and AWSPREVIOUS versions (and kms:Decrypt with a key).
      props.originVerification.originSecret.grantRead(routerFunction);
      requireAwsServices(routerFunction, AwsServiceEndpoint.SECRETS_MANAGER);
    }
    // The quota overrides are read from SSM Parameter Store: the function needs its endpoint too.
    if (config.quotas) this.runtimeConfigReaders.push(routerFunction);
    this.runtimeConfigJson = Stack.of(this).toJsonString(config);
    this.attachRoutingConfiguration(routerFunction);
    if (props.provisionedConcurrency) this.alias = provisionedRouterAlias(this, routerFunction, props.provisionedConcurrency);
    this.integrationTarget = this.alias ?? routerFunction;

    // One authorizer for every route, the batch pipeline's too: a JWT authorizer is one resource per API.
    this.authorizer = authorization.authorizer();
    if (props.httpApi) {
      this.api = props.httpApi;
      this.stageName = props.httpApiStageName ?? '$default';
      // The URL HttpStage.url gives, from the id alone (an imported API may not know its endpoint).
      const stack = Stack.of(this);
      this.url = `https://${this.api.apiId}.execute-api.${stack.region}.${stack.urlSuffix}/${this.stageName === '$default' ? '' : this.stageName}`;
    } else {
      this.accessLogGroup = newLogGroup(this, 'AccessLogs', { retention: logRetention, encryptionKey: props.encryptionKey, keyProp: 'TieredRouter encryptionKey' });
      this.createdApi = new apigwv2.HttpApi(this, 'Api', {
        // Not the construct id ("Api"), which every router would share in the console.
        apiName: props.apiName ?? Names.uniqueResourceName(this, { maxLength: 128, separator: '-' }),
        description: 'cdk-scalable-ai router',
        createDefaultStage: false,
        defaultAuthorizer: this.authorizer,
      });
      this.api = this.createdApi;
      const stage = this.createdApi.addStage('DefaultStage', {
        stageName: '$default',
        autoDeploy: true,
        throttle: {
          rateLimit: props.throttlingRateLimit ?? 100,
          burstLimit: props.throttlingBurstLimit ?? 200,
        },
        accessLogSettings: {
          destination: new apigwv2.LogGroupLogDestination(this.accessLogGroup),
          format: apigw.AccessLogFormat.custom(JSON.stringify(HTTP_API_ACCESS_LOG_FIELDS)),
        },
      });
      this.stage = stage;
      this.stageName = stage.stageName;
      this.url = stage.url;
    }
    this.addRoute('Chat', apigwv2.HttpMethod.POST, CHAT_PATH);
    // Behind the edge, CloudFront forwards a GET's Authorization header only when it is in the
    // cache key, which holds the verified tenant instead: the edge verifier checked the JWT, and
    // the router admits the request only with the origin secret.
    if (props.staticAnswers) {
      this.addRoute('StaticAnswers', apigwv2.HttpMethod.GET, STATIC_ANSWERS_PATH, props.originVerification
        ? 'Static answers behind the edge: the Lambda@Edge verifier checked the caller\'s JWT and set the tenant header, and the router answers only requests that carry the origin secret (403 otherwise).'
        : undefined);
    }
    if (props.userContext) this.addRoute('ContextPreferences', apigwv2.HttpMethod.PUT, CONTEXT_PREFERENCES_PATH);
    // A user must be able to have whatever the router keeps of them forgotten, cached personal
    // answers included, not only their user context.
    const cachesPersonalAnswers = (props.personalCaching ?? PersonalCaching.USER) !== PersonalCaching.NONE
      && (props.cache !== undefined || props.semanticCache !== undefined);
    if (props.userContext || cachesPersonalAnswers) this.addRoute('Context', apigwv2.HttpMethod.DELETE, CONTEXT_PATH);
    // Serving records live in the response cache: without one there is nothing to judge by.
    if (props.cache) this.addRoute('Feedback', apigwv2.HttpMethod.POST, FEEDBACK_PATH);
    // Behind the edge only: Route 53 health checks send no token and no origin secret. The
    // route answers 200 and nothing else; it is not among the routes grantInvoke() names.
    if (props.originVerification) {
      this.addRoute('Health', apigwv2.HttpMethod.GET, HEALTH_PATH,
        'The health route of a router behind the edge: Route 53 health checks send no credentials; it answers 200 {"status":"ok"} and nothing else.');
    }
    if (props.userProfiles) {
      this.addRoute('ProfileRead', apigwv2.HttpMethod.GET, PROFILE_PATH);
      this.addRoute('ProfileWrite', apigwv2.HttpMethod.PUT, PROFILE_PATH);
    }
  }

  /**
   * Grants `grantee` permission to call every route of the router (with IAM authorization):
   * `POST /v1/chat`, and `POST /v1/feedback`, `GET /v1/static-answers`, `PUT /v1/context/preferences`
   * and `DELETE /v1/context` where the router serves them.
   */
  public grantInvoke(grantee: iam.IGrantable): iam.Grant {
    return iam.Grant.addToPrincipal({
      grantee,
      actions: ['execute-api:Invoke'],
      resourceArns: this.routes.map(([method, path]) => this.api.arnForExecuteApi(method, path, this.stageName)),
    });
  }

  /**
   * Gives `fn` the router's configuration (a JSON string with tokens), as every function that
   * validates requests or runs the routing core needs it. Call it once `fn` has the rest of its
   * environment. The configuration goes in the environment (`ROUTER_CONFIG_ENV`) when the
   * environment then stays within Lambda's 4 KB (estimated as deployed, see
   * `estimatedEnvironmentBytes`); otherwise in an SSM parameter, one per router, whose name goes
   * in `ROUTER_CONFIG_PARAMETER_ENV`, with `ssm:GetParameter` on that parameter only. At synth, a
   * validation checks the final environment of `fn` against the limit.
   *
   * When the configuration is in an SSM parameter, `fn` needs a route to SSM: in a VPC without
   * internet access, an `ssm` interface endpoint (`ScalableAiService` adds one to the VPC it creates).
   */
  public attachRoutingConfiguration(fn: lambda.Function): void {
    if (estimatedEnvironmentBytes(fn, { [ROUTER_CONFIG_ENV]: this.runtimeConfigJson }) <= LAMBDA_ENVIRONMENT_LIMIT_BYTES) {
      fn.addEnvironment(ROUTER_CONFIG_ENV, this.runtimeConfigJson);
    } else {
      const parameter = this.configParameter();
      fn.addEnvironment(ROUTER_CONFIG_PARAMETER_ENV, parameter.parameterName);
      iam.Grant.addToPrincipal({ grantee: fn, actions: ['ssm:GetParameter'], resourceArns: [parameter.parameterArn] });
      requireAwsServices(fn, AwsServiceEndpoint.SSM);
      this.runtimeConfigReaders.push(fn);
    }
    fn.node.addValidation({ validate: () => environmentSizeErrors(fn) });
  }

  /**
   * The functions that read the router's configuration from SSM Parameter Store at cold start
   * (none while it fits their environment), and the router function with quotas (it reads their
   * overrides). They need a route to SSM: in a VPC without internet access, an `ssm` interface endpoint.
   * @internal
   */
  public get _runtimeConfigReaders(): lambda.Function[] {
    return [...new Set(this.runtimeConfigReaders)];
  }

  /**
   * Grants `fn` everything the routing core needs with this router's configuration, exactly what
   * the router function itself is granted: invoking each tier, connecting to the response cache,
   * the semantic cache's vector store and embedding model, the static answers' embedding model,
   * and the user context store. `fn` must run in the router's VPC when the router has one.
   */
  public grantRouting(fn: lambda.Function): void {
    requireAwsServices(fn, ...this.routingServices());
    for (const tier of this.tiers) tier.grantInvoke(fn);
    this.cache?.grantConnect(fn);
    this.vectorStore?._grantClient(fn);
    this.embeddingModel?.grantInvoke(fn);
    // With semantic matching the router embeds questions with the model of the static answers.
    this.staticAnswers?.embeddingModel?.grantInvoke(fn);
    this.userContext?.grantReadWrite(fn);
  }

  /** A metric of the router (see `AiMetricNames` for names), with its `service` dimension. */
  public metric(metricName: string, dimensions?: { [name: string]: string }, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: AiMetricNames.NAMESPACE,
      metricName,
      statistic: 'Sum',
      period: Duration.minutes(1),
      ...props,
      dimensionsMap: { [AiMetricNames.DIMENSION_SERVICE]: this.serviceName, ...dimensions, ...props?.dimensionsMap },
    });
  }

  /** Chat requests received. */
  public metricRequests(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric(AiMetricNames.REQUESTS, undefined, props);
  }

  /** End-to-end latency of every request (`Latency{service}`); p99 by default. */
  public metricLatency(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric(AiMetricNames.LATENCY, undefined, { statistic: 'p99', ...props });
  }

  /** End-to-end latency of requests served one way (`static`, `exact`, `semantic`, `model`); p99 by default. */
  public metricServedLatency(servedBy: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric(AiMetricNames.LATENCY, { [AiMetricNames.DIMENSION_SERVED_BY]: servedBy }, { statistic: 'p99', ...props });
  }

  /** End-to-end latency of requests one tier answered; p99 by default. */
  public metricTierLatency(tierId: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric(AiMetricNames.LATENCY, { [AiMetricNames.DIMENSION_TIER]: tierId }, { statistic: 'p99', ...props });
  }

  /** Answers served from a cache level (`static`, `exact`, `semantic`). */
  public metricCacheHits(cacheLevel: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric(AiMetricNames.CACHE_HITS, { [AiMetricNames.DIMENSION_CACHE_LEVEL]: cacheLevel }, props);
  }

  /** Lookups of a cache level (`static`, `exact`, `semantic`) that found nothing. */
  public metricCacheMisses(cacheLevel: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric(AiMetricNames.CACHE_MISSES, { [AiMetricNames.DIMENSION_CACHE_LEVEL]: cacheLevel }, props);
  }

  /** Failed cache operations of a level (`static`, `exact`, `semantic`, `context`); the requests were still answered. */
  public metricCacheErrors(cacheLevel: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric(AiMetricNames.CACHE_ERRORS, { [AiMetricNames.DIMENSION_CACHE_LEVEL]: cacheLevel }, props);
  }

  /** Model cost in USD of all requests. */
  public metricCostUsd(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric(AiMetricNames.COST_USD, undefined, props);
  }

  /** Model cost in USD of one tier. */
  public metricTierCostUsd(tierId: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric(AiMetricNames.COST_USD, { [AiMetricNames.DIMENSION_TIER]: tierId }, props);
  }

  /** Invocations of one tier. */
  public metricModelInvocations(tierId: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric(AiMetricNames.MODEL_INVOCATIONS, { [AiMetricNames.DIMENSION_TIER]: tierId }, props);
  }

  /** Failed invocations of one tier of one kind (`throttled`, `timeout`, `server`, `network`, `config`, `invalid`). */
  public metricModelErrors(tierId: string, errorKind: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    const dimensions = { [AiMetricNames.DIMENSION_TIER]: tierId, [AiMetricNames.DIMENSION_ERROR_KIND]: errorKind };
    return this.metric(AiMetricNames.MODEL_ERRORS, dimensions, props);
  }

  /** Requests that moved on from a failed tier to another. */
  public metricFallbacks(tierId: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric(AiMetricNames.FALLBACKS, { [AiMetricNames.DIMENSION_TIER]: tierId }, props);
  }

  /** Requests answered 503 because every tier failed. */
  public metricUnavailable(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric(AiMetricNames.UNAVAILABLE, undefined, props);
  }

  /** Model cost in USD per request (metric math: `CostUsd` sum ÷ `Requests` sum); 5 minutes by default. */
  public metricCostPerRequest(props?: cloudwatch.MathExpressionOptions): cloudwatch.IMetric {
    return ratio('cost / requests', {
      cost: this.metricCostUsd(),
      requests: this.metricRequests(),
    }, { label: 'Cost per request (USD)', ...props });
  }

  /** Hit rate in percent of a cache level (`static`, `exact`, `semantic`): hits ÷ (hits + misses); 5 minutes by default. */
  public metricCacheHitRate(cacheLevel: string, props?: cloudwatch.MathExpressionOptions): cloudwatch.IMetric {
    // A period with lookups but no hit (or no miss) lacks that datapoint: FILL keeps the rate defined.
    const k = mathId(cacheLevel);
    return ratio(`100 * FILL(hits_${k}, 0) / (FILL(hits_${k}, 0) + FILL(misses_${k}, 0))`, {
      [`hits_${k}`]: this.metricCacheHits(cacheLevel),
      [`misses_${k}`]: this.metricCacheMisses(cacheLevel),
    }, { label: `${cacheLevel} hit rate (%)`, ...props });
  }

  /** Failed invocations of one tier in percent of its invocations (all error kinds); 5 minutes by default. */
  public metricTierErrorRate(tierId: string, props?: cloudwatch.MathExpressionOptions): cloudwatch.IMetric {
    const k = mathId(tierId);
    return ratio(`100 * FILL(errors_${k}, 0) / invocations_${k}`, {
      [`errors_${k}`]: this.metric(AiMetricNames.MODEL_ERRORS, { [AiMetricNames.DIMENSION_TIER]: tierId }),
      [`invocations_${k}`]: this.metricModelInvocations(tierId),
    }, { label: `${tierId} error rate (%)`, ...props });
  }

  /**
   * Answers reported wrong through `POST /v1/feedback`, in percent of the answers served one way
   * (`static`, `exact`, `semantic`, `model`); 1 hour by default (feedback is sparse).
   */
  public metricWrongAnswerRate(servedBy: string, props?: cloudwatch.MathExpressionOptions): cloudwatch.IMetric {
    const served = { [AiMetricNames.DIMENSION_SERVED_BY]: servedBy };
    const k = mathId(servedBy);
    return ratio(`100 * FILL(wrong_${k}, 0) / answers_${k}`, {
      [`wrong_${k}`]: this.metric(AiMetricNames.FEEDBACK, { ...served, [AiMetricNames.DIMENSION_VERDICT]: 'wrong' }),
      // Every answer records one Latency sample per ServedBy: its sample count is the answers served that way.
      [`answers_${k}`]: this.metric(AiMetricNames.LATENCY, served, { statistic: 'SampleCount' }),
    }, { label: `${servedBy} wrong-answer rate (%)`, period: Duration.hours(1), ...props });
  }

  /** Calls skipped because a dependency's circuit breaker was open (see `AiMetricNames.DIMENSION_DEPENDENCY`). */
  public metricBreakerSkips(dependency: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric(AiMetricNames.BREAKER_SKIPS, { [AiMetricNames.DIMENSION_DEPENDENCY]: dependency }, props);
  }

  /** Concurrent executions of the router function (`AWS/Lambda`); maximum per minute by default. */
  public metricConcurrentExecutions(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.function.metric('ConcurrentExecutions', { statistic: 'Maximum', period: Duration.minutes(1), ...props });
  }

  /** The SSM parameter that holds the router's configuration, created on first need. */
  private configParameter(): ssm.StringParameter {
    if (!this.runtimeConfigParameter) {
      const bytes = estimatedValueBytes(Stack.of(this), this.runtimeConfigJson);
      if (bytes > SSM_PARAMETER_LIMIT_BYTES) {
        throw new Error(`TieredRouter: the router's configuration comes to about ${bytes} bytes once deployed, more than an SSM parameter holds `
          + `(${SSM_PARAMETER_LIMIT_BYTES} bytes, advanced tier): give fewer tiers, or shorter modelIds `
          + '(an inference profile id rather than an application inference profile ARN)');
      }
      this.runtimeConfigParameter = new ssm.StringParameter(this, 'RuntimeConfig', {
        description: 'cdk-scalable-ai router configuration, read by its functions at cold start (too large for their environment)',
        stringValue: this.runtimeConfigJson,
        // Parameter Store picks the tier from the deployed value: standard (free, up to 4 KB)
        // unless it needs advanced (up to 8 KB, billed per parameter and month).
        tier: ssm.ParameterTier.INTELLIGENT_TIERING,
      });
    }
    return this.runtimeConfigParameter;
  }

  /** The AWS APIs the routing core calls with this configuration (besides the vector store's own). */
  private routingServices(): string[] {
    const services = modelServices(...this.tiers.map((t) => t.provider), this.embeddingModel?.provider, this.staticAnswers?.embeddingModel?.provider);
    // The cache's AUTH token.
    if (this.cache) services.push(AwsServiceEndpoint.SECRETS_MANAGER);
    if (this.userContext?.backend === UserContextBackend.DYNAMODB) services.push(AwsServiceEndpoint.DYNAMODB);
    return services;
  }

  /** `unauthenticatedReason`: the route has no authorizer, for that reason (cdk-nag's acknowledgement). */
  private addRoute(id: string, method: apigwv2.HttpMethod, path: string, unauthenticatedReason?: string): void {
    const unauthenticated = unauthenticatedReason === undefined ? undefined : new apigwv2.HttpNoneAuthorizer();
    const integration = new integrations.HttpLambdaIntegration(id, this.integrationTarget);
    let route: apigwv2.HttpRoute;
    if (this.createdApi) {
      [route] = this.createdApi.addRoutes({ path, methods: [method], integration, authorizer: unauthenticated });
    } else {
      // In this construct (and so this stack), not under an API that may live in another stack.
      route = new apigwv2.HttpRoute(this, `${id}Route`, {
        httpApi: this.api,
        routeKey: apigwv2.HttpRouteKey.with(path, method),
        integration,
        authorizer: unauthenticated ?? this.authorizer,
      });
    }
    if (unauthenticatedReason !== undefined) {
      Validations.of(route).acknowledge({ id: 'AwsSolutions-APIG4', reason: unauthenticatedReason });
      return;
    }
    this.routes.push([method, path]);
  }
}

/** Defaults and bounds of `originVerification`. */
const ORIGIN_REFRESH_DEFAULT = Duration.minutes(5);
const ORIGIN_REFRESH_MIN = Duration.seconds(30);
const ORIGIN_REFRESH_MAX = Duration.hours(1);
const EDGE_CACHE_TTL_DEFAULT = Duration.hours(1);
const EDGE_CACHE_TTL_MIN = Duration.seconds(1);
const EDGE_CACHE_TTL_MAX = Duration.days(1);

/** The largest value of an SSM parameter (advanced tier): 8 KB. */
const SSM_PARAMETER_LIMIT_BYTES = 8192;

/** An error when the environment of `fn` will be larger than Lambda allows. */
function environmentSizeErrors(fn: lambda.Function): string[] {
  const bytes = estimatedEnvironmentBytes(fn);
  if (bytes <= LAMBDA_ENVIRONMENT_LIMIT_BYTES) return [];
  return [`The environment variables of ${fn.node.path} come to about ${bytes} bytes once deployed (references counted at their longest), `
    + `over Lambda's limit of ${LAMBDA_ENVIRONMENT_LIMIT_BYTES} bytes for all of a function's environment variables together; remove variables added to it`];
}

/** Props that configure the API the router creates cannot be combined with an existing one. */
function validateApiAttachment(props: TieredRouterProps): void {
  if (!props.httpApi) {
    if (props.httpApiStageName !== undefined) throw new Error('TieredRouter: httpApiStageName names a stage of httpApi; set httpApi too, or leave it out');
    return;
  }
  if (props.apiName !== undefined) throw new Error('TieredRouter: apiName names the API the router creates; with httpApi the API keeps its own name');
  for (const name of ['throttlingRateLimit', 'throttlingBurstLimit'] as const) {
    if (props[name] !== undefined) {
      throw new Error(`TieredRouter: ${name} configures the stage of the API the router creates; with httpApi the stages are the API's own: set throttling on them instead`);
    }
  }
  const stageName = props.httpApiStageName;
  if (stageName !== undefined && !Token.isUnresolved(stageName) && stageName !== '$default' && !/^[A-Za-z0-9_-]{1,128}$/.test(stageName)) {
    throw new Error(`TieredRouter: httpApiStageName must be "$default" or 1-128 letters, digits, "-" or "_"; got "${stageName}"`);
  }
}

function validateRouterProps(props: TieredRouterProps): void {
  if (props.tiers.length === 0) throw new Error('TieredRouter: tiers must name at least one model tier');
  const ids = props.tiers.map((t) => t.tierId);
  const duplicate = ids.find((id, i) => ids.indexOf(id) !== i);
  if (duplicate) throw new Error(`TieredRouter: tiers must have unique tierIds; "${duplicate}" appears twice`);
  for (const id of props.fallbackOrder ?? []) {
    if (!ids.includes(id)) throw new Error(`TieredRouter: fallbackOrder names "${id}", which is not a tier (tiers: ${ids.join(', ')})`);
  }
  const thresholds = props.classifierThresholds;
  if (thresholds) {
    if (thresholds.length !== ids.length - 1) {
      throw new Error(`TieredRouter: classifierThresholds needs ${ids.length - 1} values for ${ids.length} tiers; got ${thresholds.length}`);
    }
    if (thresholds.some((t, i) => !(t >= 0 && t <= 1) || (i > 0 && t < thresholds[i - 1]))) {
      throw new Error(`TieredRouter: classifierThresholds must be ascending values within 0..1; got [${thresholds.join(', ')}]`);
    }
  }
  if (props.userProfiles && !props.vpc) {
    throw new Error('TieredRouter: vpc is required with userProfiles (the function must reach the database inside its VPC)');
  }
  if (props.cache && !props.vpc) {
    throw new Error('TieredRouter: vpc is required with a cache (the function must reach the cache inside the VPC)');
  }
  if (props.staticAnswers && props.staticAnswers.cache !== props.cache) {
    throw new Error(props.cache
      ? 'TieredRouter: staticAnswers publish into another ResponseCache than the router\'s cache; give both the same cache'
      : 'TieredRouter: staticAnswers need the router\'s cache; set cache to the ResponseCache the static answers publish into');
  }
  if (props.userContext && props.userContext.backend === UserContextBackend.VALKEY && !props.cache) {
    throw new Error('TieredRouter: userContext with the VALKEY backend keeps user context in the ResponseCache; set cache (or use UserContextBackend.DYNAMODB)');
  }
  const timeout = props.timeout ?? Duration.seconds(29);
  if (timeout.toSeconds() < 3 || timeout.toSeconds() > 30) {
    throw new Error(`TieredRouter: timeout must be between 3 and 30 seconds (HTTP API integrations time out at 30 s); got ${timeout.toHumanString()}`);
  }
  const slowest = props.tiers.reduce((a, b) => (b.timeout.toMilliseconds() > a.timeout.toMilliseconds() ? b : a));
  if (slowest.timeout.toMilliseconds() >= timeout.toMilliseconds()) {
    throw new Error(`TieredRouter: timeout (${timeout.toHumanString()}) must be longer than the timeout of tier "${slowest.tierId}" `
      + `(${slowest.timeout.toHumanString()}), or that tier could never fall back`);
  }
  const positive: Array<[string, number | undefined]> = [
    ['maxRequestBytes', props.maxRequestBytes],
    ['maxMessages', props.maxMessages],
    ['throttlingRateLimit', props.throttlingRateLimit],
    ['throttlingBurstLimit', props.throttlingBurstLimit],
  ];
  for (const [name, value] of positive) {
    if (value !== undefined && (!Number.isInteger(value) || value < 1)) {
      throw new Error(`TieredRouter: ${name} must be a positive integer; got ${value}`);
    }
  }
  const reserved = props.reservedConcurrentExecutions;
  if (reserved !== undefined && (!Number.isInteger(reserved) || reserved < 1)) {
    throw new Error(`TieredRouter: reservedConcurrentExecutions must be an integer of at least 1 (0 reserves no capacity and throttles every request; leave it unset for unreserved concurrency); got ${reserved}`);
  }
  if (props.feedbackWindow !== undefined) {
    if (!props.cache) throw new Error('TieredRouter: feedbackWindow needs cache (serving records are kept in the response cache)');
    const seconds = props.feedbackWindow.toSeconds({ integral: false });
    if (!Number.isInteger(seconds) || seconds < FEEDBACK_WINDOW_MIN.toSeconds() || seconds > FEEDBACK_WINDOW_MAX.toSeconds()) {
      throw new Error(`TieredRouter: feedbackWindow must be whole seconds between ${FEEDBACK_WINDOW_MIN.toHumanString()} and ${FEEDBACK_WINDOW_MAX.toHumanString()}; got ${props.feedbackWindow.toHumanString()}`);
    }
  }
  if (props.maxRequestBytes !== undefined && props.maxRequestBytes > 6_000_000) {
    throw new Error(`TieredRouter: maxRequestBytes must be at most 6000000 (the Lambda payload limit); got ${props.maxRequestBytes}`);
  }
}

function validateOriginVerification(o: OriginVerificationOptions, authorization: RouterAuthorization | undefined, stack: Stack): void {
  if ((authorization ?? RouterAuthorization.iam()).tenantSource !== 'jwt') {
    throw new Error('TieredRouter: originVerification needs authorization: RouterAuthorization.jwt(...). With IAM authorization (the default) '
      + 'callers sign requests (SigV4) for the API\'s own host, and CloudFront forwards them with another Host header, so the signature '
      + 'never verifies through the edge. Let IAM callers call a Region\'s API directly, through a router without originVerification');
  }
  const arn = o.originSecret.secretArn;
  if (!Token.isUnresolved(arn) && !Token.isUnresolved(stack.region)) {
    const region = Arn.split(arn, ArnFormat.COLON_RESOURCE_NAME).region;
    if (region !== stack.region) {
      throw new Error(`TieredRouter: originVerification.originSecret must be in the router's Region (${stack.region}): give the secret's replica `
        + `in this Region (Secret.fromSecretCompleteArn with the replica's ARN); got a secret in ${region}`);
    }
  }
  const bounded: Array<[string, Duration | undefined, Duration, Duration]> = [
    ['refreshInterval', o.refreshInterval, ORIGIN_REFRESH_MIN, ORIGIN_REFRESH_MAX],
    ['edgeCacheTtl', o.edgeCacheTtl, EDGE_CACHE_TTL_MIN, EDGE_CACHE_TTL_MAX],
  ];
  for (const [name, value, min, max] of bounded) {
    if (value === undefined) continue;
    const seconds = value.toSeconds({ integral: false });
    if (!Number.isInteger(seconds) || seconds < min.toSeconds() || seconds > max.toSeconds()) {
      throw new Error(`TieredRouter: originVerification.${name} must be whole seconds between ${min.toHumanString()} and ${max.toHumanString()}; got ${value.toHumanString()}`);
    }
  }
}

/** A metric-math ratio of the router's metrics, 5 minutes by default (a rate over 1 minute is noisy). */
function ratio(
  expression: string, usingMetrics: { [id: string]: cloudwatch.Metric }, props: cloudwatch.MathExpressionOptions,
): cloudwatch.MathExpression {
  // The metrics get the expression's period (CloudWatch would override theirs anyway, with a synth warning).
  const period = props.period ?? Duration.minutes(5);
  const metrics = Object.fromEntries(Object.entries(usingMetrics).map(([id, m]) => [id, m.with({ period })]));
  return new cloudwatch.MathExpression({ expression, ...props, usingMetrics: metrics, period });
}

/** A metric-math id part from a dimension value: ids of one graph or alarm must differ per value. */
function mathId(value: string): string {
  return value.replace(/[^A-Za-z0-9]/g, '_');
}
