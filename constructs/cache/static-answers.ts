import { Aws, Duration, RemovalPolicy, Stack, Token, Validations } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as destinations from 'aws-cdk-lib/aws-lambda-destinations';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as targets from 'aws-cdk-lib/aws-scheduler-targets';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct, type IConstruct } from 'constructs';
import { EmbeddingModel } from './embedding-model';
import type { IResponseCache } from './response-cache';
import { AiMetricNames } from '../contract/metrics';
import { STATIC_LOADER_CONFIG_ENV, type StaticAnswersLoaderRuntimeConfig } from '../contract/runtime-config';
import { DEFAULT_STATIC_THRESHOLD } from '../contract/semantic-defaults';
import { cacheConnectionConfig } from '../internal/cache-connection';
import { HandlerFunction } from '../internal/handler-function';
import { createLoggedBucket } from '../internal/logged-bucket';
import { nagResourceId } from '../internal/nag';
import { AwsServiceEndpoint, modelServices, requireAwsServices } from '../internal/service-endpoints';
import { staticAnswersIndex } from '../internal/store-runtime-config';
import { defaultPrivateSubnets, selectPrivateSubnets } from '../internal/subnets';
import type { HandlerTracing } from '../tracing/handler-tracing';

/**
 * Static answers a router serves. Implemented by {@link StaticAnswers}. An implementation
 * publishes the answers into `cache` as the library's loader does (under the cache's
 * `keyPrefix`, and with semantic matching into the Valkey vector index `vectorIndexName`,
 * embedded with `embeddingModel`); the router reads `threshold`, `maxAge`, `embeddingModel` and
 * `vectorIndexName` into its configuration and grants its functions the embedding model.
 */
export interface IStaticAnswers extends IConstruct {
  /** The response cache the answers are published into (the router's). */
  readonly cache: IResponseCache;
  /** Whether questions match semantically too. */
  readonly semanticMatching: boolean;
  /** The embedding model of the question variants (with semantic matching). */
  readonly embeddingModel?: EmbeddingModel;
  /** The semantic match threshold (with semantic matching). */
  readonly threshold?: number;
  /** Name of the Valkey vector index of the question variants (with semantic matching). */
  readonly vectorIndexName?: string;
  /** `Cache-Control` max-age of `GET /v1/static-answers`. */
  readonly maxAge: Duration;
  /** The bucket of answer files. */
  readonly bucket: s3.IBucket;
  /** Key prefix of the answer files. */
  readonly prefix: string;
  /** The function that publishes the answers into the cache. */
  readonly loaderFunction: lambda.IFunction;
  /** Errors of the loader's runs: their total, or those of one `reason`. */
  metricLoadErrors(reason?: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric;
  /** Static answers published per run of the loader. */
  metricAnswersPublished(props?: cloudwatch.MetricOptions): cloudwatch.Metric;
}

/** Options of {@link StaticAnswers} that do not name its cache or network. */
export interface StaticAnswersOptions {
  /**
   * Subnets of the loader function (public subnets are refused). In isolated subnets the VPC
   * needs endpoints for S3 (gateway), Secrets Manager and, with semantic matching on Bedrock,
   * Bedrock Runtime: a synth warning names those it lacks.
   * @default - the VPC's private subnets with egress if it has any, otherwise its isolated subnets
   */
  readonly vpcSubnets?: ec2.SubnetSelection;
  /**
   * Whether questions also match a static answer semantically (by embedding), not only exactly
   * after normalization. The router embeds a question with this `embeddingModel` to match it.
   * @default true
   */
  readonly semanticMatching?: boolean;
  /**
   * The model that embeds the question variants (with `semanticMatching`).
   * @default EmbeddingModel.titanTextV2() (1024 dimensions)
   */
  readonly embeddingModel?: EmbeddingModel;
  /**
   * Cosine similarity at or above which a question matches a variant semantically, in (0, 1].
   * Higher than the semantic cache's: a static answer is served to every user of the tenant.
   * @default 0.9 (DEFAULT_STATIC_THRESHOLD)
   */
  readonly threshold?: number;
  /**
   * How often the loader publishes the answers from S3 into the cache: whole minutes, at least
   * 5 minutes (the loader's timeout).
   * @default Duration.days(1)
   */
  readonly refreshInterval?: Duration;
  /**
   * `Cache-Control` max-age of `GET /v1/static-answers` (at most 365 days).
   * @default Duration.hours(1)
   */
  readonly maxAge?: Duration;
  /**
   * Bring your own bucket of answer files. The loader reads `prefix` of it.
   * @default - a new encrypted, versioned bucket with server access logs
   */
  readonly bucket?: s3.IBucket;
  /**
   * Key prefix of the answer files in the bucket (empty: the whole bucket).
   * @default 'answers/'
   */
  readonly prefix?: string;
  /**
   * KMS key of the new bucket (not with `bucket`).
   * @default - S3 managed keys (SSE-S3)
   */
  readonly encryptionKey?: kms.IKey;
  /**
   * KMS key of the loader's log group (a key of this app gets the key policy statement
   * CloudWatch Logs needs; an imported key's policy must already allow it).
   * @default - `encryptionKey`, or CloudWatch Logs' own encryption without one
   */
  readonly logEncryptionKey?: kms.IKey;
  /**
   * What happens to the new buckets when they leave the stack (not with `bucket`).
   * @default RemovalPolicy.RETAIN (the answers are your content)
   */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * Value of the `service` dimension of the loader's metrics (the router's, to chart them together).
   * @default 'scalable-ai'
   */
  readonly serviceName?: string;
  /**
   * Retention of the loader's logs.
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;
}

/** Properties of {@link StaticAnswers}. */
export interface StaticAnswersProps extends StaticAnswersOptions {
  /** The response cache the answers are published into (the router's). */
  readonly cache: IResponseCache;
  /** The cache's VPC: the loader runs in it. */
  readonly vpc: ec2.IVpc;
  /**
   * Tracing of the construct's Lambda functions (X-Ray with Powertools Tracer, or the ADOT layer).
   * @default HandlerTracing.disabled()
   */
  readonly tracing?: HandlerTracing;
}

const LOADER_TIMEOUT = Duration.minutes(5);
/** The loader runs for minutes, not a request's milliseconds. */
const LOADER_CACHE_TIMEOUT = Duration.seconds(5);

/**
 * Static answers: FAQ, product and policy answers that a tenant publishes as JSON files in S3.
 * A loader function publishes them into the response cache on a schedule (daily by default);
 * the router answers a question from them before any other cache level when it matches a
 * question variant exactly (after normalization) or, with `semanticMatching`, by embedding
 * similarity at or above `threshold`. `GET /v1/static-answers?q=...` looks one up directly and
 * may be cached by browsers and CDNs for `maxAge`.
 *
 * One file per tenant (any name ending in `.json` under `prefix`):
 *
 * ```json
 * {
 *   "tenantId": "<the tenant as the router derives it from the authorizer>",
 *   "answers": [
 *     {
 *       "id": "shipping-canada",
 *       "questions": ["Do you ship to Canada?", "Can I order from Canada?"],
 *       "answer": "Yes, we ship to Canada in 5-8 business days."
 *     }
 *   ]
 * }
 * ```
 *
 * `id`: 1-128 letters, digits, `.`, `_` or `-`; `questions`: at least one variant of at most
 * 1,024 characters; `answer`: at most 32,768 characters; at most 10,000 answers per file.
 * A file that does not match is skipped and counted in `StaticAnswerErrors` (see
 * {@link metricLoadErrors}); the tenant keeps the answers published before.
 *
 * Resources: the answers bucket (unless you bring one: encrypted, SSL only, no public access,
 * versioned, server access logs to a second bucket), the loader function (in the cache's VPC; it
 * needs S3, Secrets Manager and, with semantic matching, Bedrock Runtime endpoints or NAT), an
 * EventBridge Scheduler schedule with a retry policy and an encrypted dead-letter queue. The
 * first load happens one `refreshInterval` after deployment; invoke `loaderFunction` to publish
 * at once.
 *
 * Pass it to a router as `staticAnswers`.
 */
export class StaticAnswers extends Construct implements IStaticAnswers {
  /** The bucket of answer files. */
  public readonly bucket: s3.IBucket;
  /** The bucket of the answer bucket's server access logs (when this construct created the bucket). */
  public readonly accessLogsBucket?: s3.IBucket;
  /** Key prefix of the answer files. */
  public readonly prefix: string;
  /** The loader function. */
  public readonly loaderFunction: lambda.IFunction;
  /** The schedule that runs the loader. */
  public readonly schedule: scheduler.Schedule;
  /**
   * The dead-letter queue of loader runs that did not happen: invocations the schedule could not
   * deliver, and runs that failed (an error or a timeout) on every attempt.
   */
  public readonly deadLetterQueue: sqs.IQueue;
  /** The response cache the answers are published into. */
  public readonly cache: IResponseCache;
  /** Whether questions match semantically too. */
  public readonly semanticMatching: boolean;
  /** The embedding model of the question variants (with semantic matching). */
  public readonly embeddingModel?: EmbeddingModel;
  /** The semantic match threshold (with semantic matching). */
  public readonly threshold?: number;
  /** How often the loader runs. */
  public readonly refreshInterval: Duration;
  /** `Cache-Control` max-age of `GET /v1/static-answers`. */
  public readonly maxAge: Duration;
  /** The `service` dimension of the loader's metrics. */
  public readonly serviceName: string;
  /** Name of the Valkey vector index of the question variants (with semantic matching). */
  public readonly vectorIndexName?: string;

  constructor(scope: Construct, id: string, props: StaticAnswersProps) {
    super(scope, id);
    this.cache = props.cache;
    this.semanticMatching = props.semanticMatching ?? true;
    this.prefix = props.prefix ?? 'answers/';
    this.refreshInterval = props.refreshInterval ?? Duration.days(1);
    this.maxAge = props.maxAge ?? Duration.hours(1);
    this.serviceName = props.serviceName ?? 'scalable-ai';
    validate(props, this.semanticMatching, this.prefix, this.refreshInterval, this.maxAge);
    if (this.semanticMatching) {
      this.embeddingModel = props.embeddingModel ?? EmbeddingModel.titanTextV2();
      this.threshold = props.threshold ?? DEFAULT_STATIC_THRESHOLD;
      this.vectorIndexName = `${props.cache.keyPrefix}static`;
    }

    if (props.bucket) {
      this.bucket = props.bucket;
    } else {
      const { bucket, accessLogs } = createLoggedBucket(this, {
        encryptionKey: props.encryptionKey,
        removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
        versioned: true,
        lifecycleRules: [{ noncurrentVersionExpiration: Duration.days(90) }],
        logPrefix: 'static-answers/',
        description: 'the static answers bucket',
        keyProp: 'StaticAnswers encryptionKey',
      });
      this.accessLogsBucket = accessLogs;
      this.bucket = bucket;
    }

    const config: StaticAnswersLoaderRuntimeConfig = {
      bucketName: this.bucket.bucketName,
      prefix: this.prefix,
      cache: cacheConnectionConfig(props.cache, LOADER_CACHE_TIMEOUT),
      embedder: this.embeddingModel?._runtimeConfig(),
      vectorIndex: this.vectorIndexName === undefined ? undefined : staticAnswersIndex(this.vectorIndexName),
    };
    const loaderSubnets = props.vpcSubnets ?? defaultPrivateSubnets(props.vpc);
    selectPrivateSubnets(props.vpc, loaderSubnets, 'StaticAnswers');
    const loader = new HandlerFunction(this, 'Loader', {
      handlerName: 'static-answers-loader',
      description: 'cdk-scalable-ai static answers loader: publishes answer files from S3 into the cache',
      serviceName: this.serviceName,
      timeout: LOADER_TIMEOUT,
      memorySize: 512,
      logRetention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      vpc: props.vpc,
      vpcSubnets: loaderSubnets,
      environment: { [STATIC_LOADER_CONFIG_ENV]: Stack.of(this).toJsonString(config) },
      logEncryptionKey: props.logEncryptionKey ?? props.encryptionKey,
      keyProp: 'StaticAnswers logEncryptionKey',
      noDeadLetterQueueReason: 'The loader is invoked asynchronously by its schedule; a failed run goes to the on-failure destination (the DeadLetterQueue of this construct, configureAsyncInvoke), which replaces a function dead-letter queue.',
      unreservedConcurrencyReason: 'One schedule invokes the loader once per refreshInterval; nothing else can invoke it, so its concurrency stays at one run at a time.',
      tracing: props.tracing,
    });
    this.loaderFunction = loader.function;

    this.grantReadAnswers(loader.function, loader.role);
    props.cache.grantConnect(loader.function);
    requireAwsServices(loader.function, AwsServiceEndpoint.S3, AwsServiceEndpoint.SECRETS_MANAGER, ...modelServices(this.embeddingModel?.provider));
    this.embeddingModel?.grantInvoke(loader.function);

    const deadLetterQueue = new sqs.Queue(this, 'DeadLetterQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    Validations.of(deadLetterQueue).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason: 'This queue is itself a dead-letter queue: that of the EventBridge Scheduler schedule (its DeadLetterConfig) and the on-failure destination of the loader, which cdk-nag does not recognise as one.',
    });
    this.deadLetterQueue = deadLetterQueue;
    // The scheduler invokes the loader asynchronously: its DLQ receives only invocations it could
    // not deliver. A run that fails (an error, a timeout) after Lambda's own retries lands here too.
    loader.function.configureAsyncInvoke({
      retryAttempts: 2,
      maxEventAge: Duration.hours(1),
      onFailure: new destinations.SqsDestination(deadLetterQueue),
    });

    const scheduleRole = new iam.Role(this, 'ScheduleRole', {
      assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID } },
      }),
      description: 'Lets EventBridge Scheduler invoke the cdk-scalable-ai static answers loader',
    });
    this.schedule = new scheduler.Schedule(this, 'Schedule', {
      schedule: scheduler.ScheduleExpression.rate(this.refreshInterval),
      description: 'Publishes the cdk-scalable-ai static answers from S3 into the cache',
      target: new targets.LambdaInvoke(loader.function, {
        role: scheduleRole,
        deadLetterQueue,
        retryAttempts: 3,
        maxEventAge: Duration.hours(1),
      }),
    });
    Validations.of(scheduleRole).acknowledge({
      id: 'NIST.800.53.R5-IAMNoInlinePolicy',
      reason: 'The schedule target grants lambda:InvokeFunction on the loader into this role\'s own policy; it belongs to this role alone.',
    }, {
      id: `AwsSolutions-IAM5[Resource::${nagResourceId(this, `${loader.function.functionArn}:*`)}]`,
      reason: 'Function.grantInvoke (called by the scheduler target) also covers the versions and aliases of this one loader function.',
    });
  }

  /**
   * Errors of the loader's runs (files unreadable, invalid or duplicated; tenants not embedded,
   * published or removed; runs that could not reach the files or the cache): their total, or
   * those of one `reason` (see `AiMetricNames.STATIC_ANSWER_ERRORS`). Alarm on a sum above 0.
   */
  public metricLoadErrors(reason?: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric(AiMetricNames.STATIC_ANSWER_ERRORS, reason === undefined ? {} : { [AiMetricNames.DIMENSION_REASON]: reason }, props);
  }

  /** Static answers published per run of the loader. */
  public metricAnswersPublished(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric(AiMetricNames.STATIC_ANSWERS_PUBLISHED, {}, props);
  }

  private metric(metricName: string, dimensions: { [name: string]: string }, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: AiMetricNames.NAMESPACE,
      metricName,
      statistic: 'Sum',
      period: this.refreshInterval.toMinutes() >= 60 ? Duration.hours(1) : Duration.minutes(5),
      ...props,
      dimensionsMap: { [AiMetricNames.DIMENSION_SERVICE]: this.serviceName, ...dimensions, ...props?.dimensionsMap },
    });
  }

  /** Read access to the answer files only: GetObject under the prefix, ListBucket limited to it. */
  private grantReadAnswers(fn: lambda.IFunction, role: iam.IRole): void {
    const objects = this.bucket.arnForObjects(`${this.prefix}*`);
    iam.Grant.addToPrincipal({ grantee: fn, actions: ['s3:GetObject'], resourceArns: [objects] });
    iam.Grant.addToPrincipal({
      grantee: fn,
      actions: ['s3:ListBucket'],
      resourceArns: [this.bucket.bucketArn],
      conditions: this.prefix ? { StringLike: { 's3:prefix': [`${this.prefix}*`] } } : undefined,
    });
    this.bucket.encryptionKey?.grantDecrypt(fn);
    Validations.of(role).acknowledge({
      id: `AwsSolutions-IAM5[Resource::${nagResourceId(this, objects)}]`,
      reason: 'The loader reads every answer file under the prefix of the answers bucket, whatever its name; it may read nothing else.',
    });
  }
}

function validate(props: StaticAnswersProps, semanticMatching: boolean, prefix: string, refreshInterval: Duration, maxAge: Duration): void {
  const where = 'StaticAnswers';
  if (!semanticMatching) {
    for (const name of ['threshold', 'embeddingModel'] as const) {
      if (props[name] !== undefined) throw new Error(`${where}: ${name} applies to semantic matching only, which semanticMatching: false turns off`);
    }
  }
  const threshold = props.threshold;
  if (threshold !== undefined && !(threshold > 0 && threshold <= 1)) {
    throw new Error(`${where}: threshold must be a cosine similarity in (0, 1]; got ${threshold}`);
  }
  const refreshMs = refreshInterval.toMilliseconds();
  if (refreshMs < LOADER_TIMEOUT.toMilliseconds() || refreshMs % 60_000 !== 0) {
    throw new Error(`${where}: refreshInterval must be a whole number of minutes, at least 5 minutes (the loader's timeout); got ${refreshInterval.toHumanString()}`);
  }
  const maxAgeMs = maxAge.toMilliseconds();
  if (maxAgeMs < 0 || maxAgeMs > Duration.days(365).toMilliseconds() || maxAgeMs % 1000 !== 0) {
    throw new Error(`${where}: maxAge must be whole seconds from 0 to 365 days; got ${maxAge.toHumanString()}`);
  }
  if (!Token.isUnresolved(prefix) && (prefix.length > 1024 || prefix.startsWith('/'))) {
    throw new Error(`${where}: prefix must be at most 1024 characters and must not start with "/"; got "${prefix}"`);
  }
  if (props.bucket) {
    for (const name of ['encryptionKey', 'removalPolicy'] as const) {
      if (props[name] !== undefined) throw new Error(`${where}: ${name} applies to the bucket this construct creates; it cannot be combined with bucket`);
    }
  }
}
