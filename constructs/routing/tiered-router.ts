import { Duration, Stack } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import * as integrations from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { RouterAuthorization } from './router-authorization';
import type { EmbeddingModel } from '../cache/embedding-model';
import type { ResponseCache } from '../cache/response-cache';
import type { SemanticCacheOptions } from '../cache/semantic-cache';
import type { StaticAnswers } from '../cache/static-answers';
import { UserContextBackend, type UserContextStore } from '../cache/user-context-store';
import type { VectorStore } from '../cache/vector-store';
import { AiMetricNames } from '../contract/metrics';
import { ROUTER_CONFIG_ENV, type RouterRuntimeConfig } from '../contract/runtime-config';
import { cacheConnectionConfig } from '../internal/cache-connection';
import { newLogGroup } from '../internal/encryption';
import { HandlerFunction } from '../internal/handler-function';
import { bindSemanticCache } from '../internal/semantic-cache-binding';
import { defaultPrivateSubnets } from '../internal/subnets';
import type { IModelTier } from '../models/model-tier';
import { tierRuntimeConfig } from '../models/tier-support';

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
   * Steady-state request rate limit of the API (requests per second).
   * @default 100
   */
  readonly throttlingRateLimit?: number;
  /**
   * Burst limit of the API.
   * @default 200
   */
  readonly throttlingBurstLimit?: number;
  /**
   * Concurrent executions reserved for (and capping) the router function.
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
}

/** Properties of a {@link TieredRouter}. */
export interface TieredRouterProps extends TieredRouterOptions {
  /** The model tiers, cheapest and least capable first. */
  readonly tiers: IModelTier[];
  /**
   * The response cache to answer repeated requests from.
   * @default - no cache
   */
  readonly cache?: ResponseCache;
  /**
   * VPC of the router function. Required with a cache; it needs a route to Bedrock, SageMaker
   * Runtime and Secrets Manager (VPC endpoints or NAT).
   * @default - the function runs outside any VPC
   */
  readonly vpc?: ec2.IVpc;
  /**
   * Subnets of the router function.
   * @default - the VPC's isolated subnets if it has any, otherwise its private subnets with egress
   */
  readonly vpcSubnets?: ec2.SubnetSelection;
  /**
   * Static answers to serve before any other cache level, and at `GET /v1/static-answers?q=...`.
   * They publish into `cache`, which must be the router's cache.
   * @default - no static answers
   */
  readonly staticAnswers?: StaticAnswers;
  /**
   * Where the router keeps user context (recent turns of a session, preferences), served at
   * `PUT /v1/context/preferences` and `DELETE /v1/context` (which also forgets the caller's cached
   * personal answers). The `VALKEY` backend needs `cache`.
   * @default - no user context
   */
  readonly userContext?: UserContextStore;
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
export class TieredRouter extends Construct {
  /** The router function. */
  public readonly function: lambda.Function;
  /** The HTTP API. */
  public readonly api: apigwv2.HttpApi;
  /** The `$default` stage of the API. */
  public readonly stage: apigwv2.HttpStage;
  /** Base URL of the API. */
  public readonly url: string;
  /** Log group of the router function. */
  public readonly logGroup: logs.ILogGroup;
  /** Log group of the API's access logs. */
  public readonly accessLogGroup: logs.ILogGroup;
  /** The tiers, cheapest first. */
  public readonly tiers: IModelTier[];
  /** The `service` dimension of the router's metrics. */
  public readonly serviceName: string;
  /** The semantic cache's vector store, when the semantic cache is on. */
  public readonly vectorStore?: VectorStore;
  /** The semantic cache's embedding model, when the semantic cache is on. */
  public readonly embeddingModel?: EmbeddingModel;
  /** The static answers the router serves, if any. */
  public readonly staticAnswers?: StaticAnswers;
  /** The user context store of the router, if any. */
  public readonly userContext?: UserContextStore;
  private readonly routes: Array<[apigwv2.HttpMethod, string]> = [];
  private readonly cache?: ResponseCache;
  private readonly vpc?: ec2.IVpc;
  private readonly vpcSubnets?: ec2.SubnetSelection;
  private readonly runtimeConfigJson: string;

  constructor(scope: Construct, id: string, props: TieredRouterProps) {
    super(scope, id);
    validateRouterProps(props);
    this.tiers = props.tiers;
    this.serviceName = props.serviceName ?? 'scalable-ai';
    const authorization = props.authorization ?? RouterAuthorization.iam();
    const logRetention = props.logRetention ?? logs.RetentionDays.ONE_MONTH;
    const cacheTimeout = props.cacheTimeout ?? Duration.millis(200);

    const vpc = props.vpc;
    const vpcSubnets = vpc ? (props.vpcSubnets ?? defaultPrivateSubnets(vpc)) : undefined;
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
    });
    this.function = handler.function;
    this.logGroup = handler.logGroup;

    const semantic = props.semanticCache ? bindSemanticCache(props.semanticCache, { scope: this, vpc, vpcSubnets, cache: props.cache }) : undefined;
    this.vectorStore = semantic?.vectorStore;
    this.embeddingModel = semantic?.embeddingModel;
    this.staticAnswers = props.staticAnswers;
    this.userContext = props.userContext;
    this._grantRoutingTo(this.function);

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
      semanticCache: semantic?.config,
      staticAnswers: props.staticAnswers?._runtimeConfig(),
      userContext: props.userContext?._runtimeConfig(),
    };
    this.runtimeConfigJson = Stack.of(this).toJsonString(config);
    this.function.addEnvironment(ROUTER_CONFIG_ENV, this.runtimeConfigJson);

    this.accessLogGroup = newLogGroup(this, 'AccessLogs', { retention: logRetention, encryptionKey: props.encryptionKey, keyProp: 'TieredRouter encryptionKey' });
    this.api = new apigwv2.HttpApi(this, 'Api', {
      description: 'cdk-scalable-ai router',
      createDefaultStage: false,
      defaultAuthorizer: authorization.authorizer(),
    });
    this.stage = this.api.addStage('DefaultStage', {
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
    this.url = this.stage.url;
    this.addRoute('Chat', apigwv2.HttpMethod.POST, CHAT_PATH);
    if (props.staticAnswers) this.addRoute('StaticAnswers', apigwv2.HttpMethod.GET, STATIC_ANSWERS_PATH);
    if (props.userContext) this.addRoute('ContextPreferences', apigwv2.HttpMethod.PUT, CONTEXT_PREFERENCES_PATH);
    // A user must be able to have whatever the router keeps of them forgotten, cached personal
    // answers included, not only their user context.
    const cachesPersonalAnswers = (props.personalCaching ?? PersonalCaching.USER) !== PersonalCaching.NONE
      && (props.cache !== undefined || props.semanticCache !== undefined);
    if (props.userContext || cachesPersonalAnswers) this.addRoute('Context', apigwv2.HttpMethod.DELETE, CONTEXT_PATH);
  }

  /**
   * Grants `grantee` permission to call every route of the router (with IAM authorization):
   * `POST /v1/chat`, and `GET /v1/static-answers`, `PUT /v1/context/preferences` and
   * `DELETE /v1/context` where the router serves them.
   */
  public grantInvoke(grantee: iam.IGrantable): iam.Grant {
    return iam.Grant.addToPrincipal({
      grantee,
      actions: ['execute-api:Invoke'],
      resourceArns: this.routes.map(([method, path]) => this.api.arnForExecuteApi(method, path, '$default')),
    });
  }

  /**
   * The router's configuration as the handlers read it (`ROUTER_CONFIG_ENV`): a JSON string with
   * tokens. Functions that run the routing core (the batch worker) carry the same configuration.
   * @internal
   */
  public get _runtimeConfigJson(): string {
    return this.runtimeConfigJson;
  }

  /**
   * Where the router function runs: its VPC and subnets (none outside a VPC). Functions that run
   * the routing core run there too, to reach the same caches.
   * @internal
   */
  public get _placement(): { readonly vpc?: ec2.IVpc; readonly vpcSubnets?: ec2.SubnetSelection } {
    return { vpc: this.vpc, vpcSubnets: this.vpcSubnets };
  }

  /**
   * Grants `fn` everything the routing core needs with this router's configuration, exactly what
   * the router function itself is granted: invoking each tier, connecting to the response cache,
   * the semantic cache's vector store and embedding model, the static answers' embedding model,
   * and the user context store. `fn` must run in the router's VPC when the router has one.
   * @internal
   */
  public _grantRoutingTo(fn: lambda.Function): void {
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

  /**
   * End-to-end latency of requests served one way (`exact` cache or `model`); p99 by default.
   */
  public metricLatency(servedBy: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric(AiMetricNames.LATENCY, { [AiMetricNames.DIMENSION_SERVED_BY]: servedBy }, { statistic: 'p99', ...props });
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

  private addRoute(id: string, method: apigwv2.HttpMethod, path: string): void {
    this.api.addRoutes({ path, methods: [method], integration: new integrations.HttpLambdaIntegration(id, this.function) });
    this.routes.push([method, path]);
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
  if (props.maxRequestBytes !== undefined && props.maxRequestBytes > 6_000_000) {
    throw new Error(`TieredRouter: maxRequestBytes must be at most 6000000 (the Lambda payload limit); got ${props.maxRequestBytes}`);
  }
}
