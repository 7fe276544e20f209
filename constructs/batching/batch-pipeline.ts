import { Aws, Duration, RemovalPolicy, Stack, Token, Validations } from 'aws-cdk-lib';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import * as integrations from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as eventsTargets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as destinations from 'aws-cdk-lib/aws-lambda-destinations';
import * as eventSources from 'aws-cdk-lib/aws-lambda-event-sources';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { batchServiceTier } from './batch-service-tier';
import type { IBatchPipeline } from './pipeline-interface';
import { AiMetricNames } from '../contract/metrics';
import { BULK_JOB_NAME_PREFIX, JOBS_CONFIG_ENV, type BulkRuntimeConfig, type JobsRuntimeConfig } from '../contract/runtime-config';
import { HandlerFunction, type HandlerFunctionProps } from '../internal/handler-function';
import { createLoggedBucket } from '../internal/logged-bucket';
import { acknowledgeOnOwnedGrantee, markOwned, nagResourceId } from '../internal/nag';
import { AwsServiceEndpoint, requireAwsServices } from '../internal/service-endpoints';
import { BedrockModelTier } from '../models/bedrock-tier';
import type { BedrockServiceTier, IModelTier } from '../models/model-tier';
import type { ITieredRouter } from '../routing/router-interface';
import type { HandlerTracing } from '../tracing/handler-tracing';

/**
 * Bulk mode: large jobs run as Amazon Bedrock batch inference jobs (JSONL in S3, about half the
 * on-demand price) instead of through the queue and the batch worker.
 */
export interface BulkModeOptions {
  /**
   * The tier whose model answers bulk jobs: one of the router's tiers, served by Bedrock (created
   * with `ModelTier.bedrock()`), with a model that supports batch inference.
   */
  readonly tier: IModelTier;
  /**
   * Fewest requests in a bulk job; smaller jobs go through the queue. Bedrock refuses batch
   * inference jobs with fewer records than its quota "Minimum number of records per batch
   * inference job", so this must be at least `minRecordsPerJobQuota`.
   * @default - `minRecordsPerJobQuota` (100)
   */
  readonly minItems?: number;
  /**
   * The value of the Amazon Bedrock quota "Minimum number of records per batch inference job" for
   * the bulk tier's model in your account and Region: 100 for most models (see the Amazon Bedrock
   * service quotas). Set it only when AWS changed that quota for your account; `minItems` may then
   * go down to it.
   * @default 100
   */
  readonly minRecordsPerJobQuota?: number;
  /**
   * Most requests in a bulk job (Bedrock's quota "Records per batch inference job" is 50,000 for
   * most models).
   * @default 50000
   */
  readonly maxItems?: number;
  /**
   * How long Bedrock may take before it stops a job (`timeoutDurationInHours` of
   * CreateModelInvocationJob): whole hours from 24 to 168.
   * @default Duration.hours(24)
   */
  readonly timeout?: Duration;
  /**
   * Bring your own bucket for the JSONL input and output files.
   * @default - a new bucket: encrypted (SSE-S3, or KMS with `encryptionKey`), TLS only, no public
   * access, server access logs to a second bucket, files expiring after `resultTtl`
   */
  readonly bucket?: s3.IBucket;
  /**
   * Key prefix of the bulk files: input under `<prefix>input/`, output under `<prefix>output/`.
   * @default 'bulk/'
   */
  readonly prefix?: string;
}

/** Options of a {@link BatchPipeline} that do not name its router. */
export interface BatchPipelineOptions {
  /**
   * How the queue and its dead-letter queue are encrypted at rest. `UNENCRYPTED` is refused;
   * `KMS` needs `encryptionKey`.
   * @default - `QueueEncryption.KMS` with `encryptionKey`, otherwise `QueueEncryption.SQS_MANAGED`
   */
  readonly queueEncryption?: sqs.QueueEncryption;
  /**
   * Customer managed KMS key of the pipeline's data at rest: the queues (with `QueueEncryption.KMS`),
   * the results and idempotency tables, and the new bulk bucket.
   * @default - AWS managed encryption: SQS-managed SSE, the AWS managed key of DynamoDB, SSE-S3
   */
  readonly encryptionKey?: kms.IKey;
  /**
   * Receives of a message before SQS moves it to the dead-letter queue (1 to 1000). On the last
   * receive the worker records a failed result when it can (always when the models failed;
   * best-effort when the job store did), so the request's job still ends.
   * @default 5
   */
  readonly maxReceiveCount?: number;
  /**
   * How long a queued request waits for the worker: at least 1 day (a day-long model outage
   * loses nothing), at most 14 days.
   * @default Duration.days(4)
   */
  readonly retentionPeriod?: Duration;
  /**
   * Requests the worker receives per invocation (1 to 10000).
   * @default 10
   */
  readonly batchSize?: number;
  /**
   * How long the event source gathers requests before invoking the worker: whole seconds, more
   * than 0 (so that identical requests meet in one batch and are answered once), at most 300.
   * @default Duration.seconds(5)
   */
  readonly maxBatchingWindow?: Duration;
  /**
   * Timeout of the worker function: longer than the slowest tier's timeout, at most 15 minutes.
   * The queue's visibility timeout is six times this plus `maxBatchingWindow` (AWS's
   * recommendation for SQS event sources).
   * @default Duration.minutes(5)
   */
  readonly workerTimeout?: Duration;
  /**
   * Memory of the worker function in MB.
   * @default 512
   */
  readonly workerMemorySize?: number;
  /**
   * Concurrent model invocations per tier within one worker batch (1 to 100).
   * @default 4
   */
  readonly tierConcurrency?: number;
  /**
   * The Bedrock service tier the worker calls the router's Bedrock tiers with, instead of each
   * tier's own: the queue's requests can wait, so FLEX (about half the Standard price, slower and
   * throttled first under high demand) suits them, and STANDARD keeps a router's PRIORITY tiers
   * from paying the premium for them. FLEX and PRIORITY go only to the tiers priced at them
   * (`flexPriceFactor` / `priorityPriceFactor`, or the price file); the others keep their own.
   * Bulk jobs are Bedrock batch inference, priced apart.
   * @default - each tier's own `serviceTier`
   */
  readonly serviceTier?: BedrockServiceTier;
  /**
   * Most concurrent worker invocations the event source starts (2 to 1000): the cap on the
   * load the queue puts on the tiers.
   * @default 10
   */
  readonly maxConcurrency?: number;
  /**
   * How long a job and its results are kept (DynamoDB TTL): at least `retentionPeriod` and the
   * bulk `timeout`, so that a job outlives its queued requests.
   * @default Duration.days(7)
   */
  readonly resultTtl?: Duration;
  /**
   * How long an `Idempotency-Key` of `POST /v1/jobs` is remembered: at least 1 minute, at most
   * `resultTtl`.
   * @default Duration.hours(1)
   */
  readonly idempotencyTtl?: Duration;
  /**
   * Most requests in one queued job (1 to 1000).
   * @default 100
   */
  readonly maxItemsPerJob?: number;
  /**
   * What happens to the tables and the new bulk buckets when they leave the stack.
   * @default RemovalPolicy.RETAIN (job results are your users' data)
   */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * Retention of the pipeline functions' logs.
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * Bulk mode on Bedrock batch inference.
   * @default - no bulk mode: every job goes through the queue
   */
  readonly bulk?: BulkModeOptions;
  /**
   * An existing standard queue for the requests, instead of a new one. The library can no
   * longer set it up, so it must have:
   * - a redrive policy to a dead-letter queue; a `sqs.Queue` of this app brings its own (its
   *   `deadLetterQueue` is used and its `maxReceiveCount` taken); an imported queue needs
   *   `deadLetterQueue` and `maxReceiveCount` set to what its redrive policy says (the worker
   *   writes a failed result on that receive, so that the job still ends);
   * - a visibility timeout of at least six times `workerTimeout` plus `maxBatchingWindow`;
   * - encryption at rest, a policy that denies requests without TLS, and a retention period of
   *   at most `resultTtl`;
   * - with a customer managed key, the key given on import (`Queue.fromQueueAttributes({ keyArn })`)
   *   and a key policy that lets the account's IAM policies grant its use.
   * These are checked at synth for a `sqs.Queue` of this app where CloudFormation values are
   * known; for an imported queue they are yours to keep. Not with `queueEncryption` or
   * `retentionPeriod`, which configure the queues this construct creates.
   * @default - a new queue: encrypted, TLS only, visibility timeout and redrive policy as above
   */
  readonly queue?: sqs.IQueue;
  /**
   * An existing standard queue as the dead-letter queue: of the new queue, or, with `queue`, the
   * dead-letter queue of its redrive policy. Keep its retention at least that of the queue
   * (a message keeps its first enqueue time when it moves).
   * @default - `queue`'s own dead-letter queue, or a new one (encrypted, TLS only, 14 days)
   */
  readonly deadLetterQueue?: sqs.IQueue;
}

/** Properties of a {@link BatchPipeline}. */
export interface BatchPipelineProps extends BatchPipelineOptions {
  /**
   * The router: the pipeline serves its routes on the router's API (with the router's
   * authorization), and its worker answers with the router's tiers, caches and configuration.
   */
  readonly router: ITieredRouter;
  /**
   * Tracing of the construct's Lambda functions (X-Ray with Powertools Tracer, or the ADOT layer).
   * @default HandlerTracing.disabled()
   */
  readonly tracing?: HandlerTracing;
}

const JOBS_PATH = '/v1/jobs';
const JOB_PATH = '/v1/jobs/{id}';

/**
 * Item actions of the results table, per function, named one by one (a TransactWriteItems call
 * is authorized by the PutItem/UpdateItem actions of its items).
 */
const JOBS_API_TABLE_ACTIONS = ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:Query'];
// Query: a job's header and counter shards are read together (DynamoDbJobStore.getJob).
const WORKER_TABLE_ACTIONS = ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:Query'];
const COMPLETION_TABLE_ACTIONS = ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:Query'];
/** What the Powertools idempotency utility does with its table. */
const IDEMPOTENCY_TABLE_ACTIONS = ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem'];
/** KMS actions on a table's customer managed key. */
const TABLE_KEY_ACTIONS = ['kms:Decrypt', 'kms:DescribeKey', 'kms:Encrypt', 'kms:GenerateDataKey'];

/**
 * The asynchronous path of SEED.md ("User → Queue → Batch Processing → Optimized Response"):
 * `POST /v1/jobs` on the router's API accepts one or more chat requests and answers `202` with a
 * job id; the requests wait in an SQS queue; the batch worker receives them in batches, answers
 * identical requests once, runs each through the router's caches and tiers (the same routing
 * core and configuration as the router), and writes each result to a DynamoDB results table;
 * `GET /v1/jobs/{id}` reads the job and its results. A request is acknowledged only once its
 * result is stored. A request whose tiers keep failing gets a failed result on its
 * `maxReceiveCount`-th receive; one that cannot be processed at all (not a job message, or the
 * job store failing) moves to the dead-letter queue then, with a failed result written when the
 * store allows.
 *
 * With `bulk`, jobs of at least `bulk.minItems` requests run as Amazon Bedrock batch inference
 * jobs on `bulk.tier` instead: the jobs API writes the requests as JSONL to S3 and submits the
 * job with a service role that Bedrock assumes; an EventBridge rule hands Bedrock's "Batch
 * Inference Job State Change" events to a completion function, which reads the output and
 * writes the results.
 *
 * Resources: the queue and its dead-letter queue (encrypted, TLS only; or yours, see `queue`), the results table
 * (`pk`/`sk`, TTL `expiresAt`) and the idempotency table (`id`, TTL `expiration`), both on-demand
 * with point-in-time recovery and encryption; the jobs API and worker functions (in the router's
 * VPC when it has one: it then needs a route to SQS, DynamoDB and, in bulk mode, S3 and the
 * Bedrock control plane); with `bulk`, the bulk bucket, the Bedrock service role, the completion
 * function, the EventBridge rule and a dead-letter queue for the events that could not be handled.
 */
export class BatchPipeline extends Construct implements IBatchPipeline {
  /** The router whose API, tiers and caches the pipeline uses. */
  public readonly router: ITieredRouter;
  /** The queue of requests waiting for the worker. */
  public readonly queue: sqs.IQueue;
  /** Requests the worker failed to handle `maxReceiveCount` times. */
  public readonly deadLetterQueue: sqs.IQueue;
  /** Jobs and their results (partition key `pk`, sort key `sk`, TTL attribute `expiresAt`). */
  public readonly resultsTable: dynamodb.ITable;
  /** Idempotency records of `POST /v1/jobs` (partition key `id`, TTL attribute `expiration`). */
  public readonly idempotencyTable: dynamodb.ITable;
  /** The function behind `POST /v1/jobs` and `GET /v1/jobs/{id}`. */
  public readonly jobsApiFunction: lambda.IFunction;
  /** The batch worker. */
  public readonly workerFunction: lambda.IFunction;
  /** The bulk completion function (bulk mode). */
  public readonly completionFunction?: lambda.Function;
  /** The bucket of the bulk JSONL files (bulk mode). */
  public readonly bulkBucket?: s3.IBucket;
  /** The bucket of the new bulk bucket's server access logs (bulk mode, without your own bucket). */
  public readonly bulkAccessLogsBucket?: s3.IBucket;
  /** The role Bedrock assumes to run bulk jobs (bulk mode). */
  public readonly bulkRole?: iam.IRole;
  /** The rule that hands Bedrock's batch job events to the completion function (bulk mode). */
  public readonly bulkRule?: events.IRule;
  /** Bedrock job events that could not be delivered to, or handled by, the completion function (bulk mode). */
  public readonly bulkDeadLetterQueue?: sqs.IQueue;
  /** Key prefix of the bulk input files (bulk mode). */
  public readonly bulkInputPrefix?: string;
  /** Key prefix of the bulk output files (bulk mode). */
  public readonly bulkOutputPrefix?: string;
  /** The customer managed key of the pipeline's data, if any. */
  public readonly encryptionKey?: kms.IKey;

  constructor(scope: Construct, id: string, props: BatchPipelineProps) {
    super(scope, id);
    const router = props.router;
    this.router = router;
    this.encryptionKey = props.encryptionKey;
    const settings = resolveSettings(props);
    const { vpc, vpcSubnets } = router;
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    const logRetention = props.logRetention ?? logs.RetentionDays.ONE_MONTH;

    // The queue and its dead-letter queue.
    const queueEncryption = {
      encryption: settings.queueEncryption,
      encryptionMasterKey: settings.queueEncryption === sqs.QueueEncryption.KMS ? props.encryptionKey : undefined,
    };
    const existing = existingQueues(props, settings);
    const maxReceiveCount = existing.maxReceiveCount;
    const deadLetterQueue = existing.deadLetterQueue ?? new sqs.Queue(this, 'DeadLetterQueue', {
      ...queueEncryption,
      enforceSSL: true,
      // At least any queue's retention: a message keeps its first enqueue time when it moves here.
      retentionPeriod: Duration.days(14),
    });
    this.deadLetterQueue = deadLetterQueue;
    const queue = existing.queue ?? new sqs.Queue(this, 'Queue', {
      ...queueEncryption,
      enforceSSL: true,
      retentionPeriod: settings.retentionPeriod,
      visibilityTimeout: Duration.seconds(visibilityTimeoutSeconds(settings)),
      deadLetterQueue: { queue: deadLetterQueue, maxReceiveCount },
    });
    this.queue = queue;

    // The tables.
    const tableEncryption = {
      encryption: props.encryptionKey ? dynamodb.TableEncryption.CUSTOMER_MANAGED : dynamodb.TableEncryption.AWS_MANAGED,
      encryptionKey: props.encryptionKey,
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      removalPolicy,
    };
    this.resultsTable = new dynamodb.Table(this, 'ResultsTable', {
      partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'sk', type: dynamodb.AttributeType.STRING },
      timeToLiveAttribute: 'expiresAt',
      ...tableEncryption,
    });
    this.idempotencyTable = new dynamodb.Table(this, 'IdempotencyTable', {
      partitionKey: { name: 'id', type: dynamodb.AttributeType.STRING },
      timeToLiveAttribute: 'expiration',
      ...tableEncryption,
    });
    for (const table of [this.resultsTable, this.idempotencyTable]) {
      Validations.of(table).acknowledge({
        id: 'NIST.800.53.R5-DynamoDBInBackupPlan',
        reason: 'Point-in-time recovery is on (35 days of restores); items expire with their TTL. Add the table to your organization\'s AWS Backup plan if it requires one.',
      });
    }

    // Bulk mode: the bucket and the role Bedrock assumes.
    let bulkConfig: BulkRuntimeConfig | undefined;
    let bulk: BulkResources | undefined;
    if (props.bulk && settings.bulk) {
      const bulkScope = new Construct(this, 'Bulk');
      const { tier, prefix } = settings.bulk;
      const inputPrefix = `${prefix}input/`;
      const outputPrefix = `${prefix}output/`;
      let bucket = props.bulk.bucket;
      if (!bucket) {
        const expiration = Duration.days(Math.ceil(settings.resultTtl.toSeconds() / 86_400));
        const created = createLoggedBucket(bulkScope, {
          encryptionKey: props.encryptionKey,
          removalPolicy,
          // The files are transient copies of requests and results: no versions to keep.
          versioned: false,
          lifecycleRules: [
            { prefix: inputPrefix, expiration },
            { prefix: outputPrefix, expiration },
            { abortIncompleteMultipartUploadAfter: Duration.days(1) },
          ],
          logPrefix: 'bulk/',
          description: 'the bulk inference bucket',
          keyProp: 'BatchPipeline encryptionKey',
          unversionedReason: 'The bulk files are transient copies of requests and results, written once per job and expired with the results; versions would keep deleted copies of users\' prompts.',
        });
        bucket = created.bucket;
        this.bulkAccessLogsBucket = created.accessLogs;
      }
      const role = new iam.Role(bulkScope, 'ServiceRole', {
        assumedBy: new iam.ServicePrincipal('bedrock.amazonaws.com', {
          conditions: {
            StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID },
            ArnLike: { 'aws:SourceArn': `arn:${Aws.PARTITION}:bedrock:${Aws.REGION}:${Aws.ACCOUNT_ID}:model-invocation-job/*` },
          },
        }),
        description: 'Lets Amazon Bedrock batch inference read the input and write the output of cdk-scalable-ai bulk jobs',
      });
      markOwned(role);
      Validations.of(role).acknowledge({
        id: 'NIST.800.53.R5-IAMNoInlinePolicy',
        reason: 'The grants of this role (the bulk bucket prefixes, the bulk tier\'s model) are written into its own policy; it belongs to this role alone and lives and dies with it.',
      });
      // Read the input, write the output, invoke the bulk tier's model: nothing else.
      this.grantObjects(role, role, bucket, inputPrefix, ['s3:GetObject'], 'Bedrock reads the input files of any bulk job under the input prefix of the bulk bucket; their names are chosen per job at run time.');
      this.grantObjects(role, role, bucket, outputPrefix, ['s3:PutObject'], 'Bedrock writes the output files of any bulk job under the output prefix of the bulk bucket; it names them per job at run time.');
      this.grantList(role, bucket, [inputPrefix, outputPrefix]);
      bucket.encryptionKey?.grant(role, 'kms:Decrypt', 'kms:GenerateDataKey');
      tier.grantInvoke(role);

      this.bulkBucket = bucket;
      this.bulkRole = role;
      this.bulkInputPrefix = inputPrefix;
      this.bulkOutputPrefix = outputPrefix;
      bulk = { tier, bucket, inputPrefix, outputPrefix, role, scope: bulkScope };
      bulkConfig = {
        bucketName: bucket.bucketName,
        inputPrefix,
        outputPrefix,
        roleArn: role.roleArn,
        tierId: tier.tierId,
        minItems: settings.bulk.minItems,
        maxItems: settings.bulk.maxItems,
        timeoutHours: settings.bulk.timeoutHours,
      };
    }

    const config: JobsRuntimeConfig = {
      resultsTable: this.resultsTable.tableName,
      idempotencyTable: this.idempotencyTable.tableName,
      queueUrl: queue.queueUrl,
      resultTtlSeconds: settings.resultTtl.toSeconds(),
      idempotencyTtlSeconds: settings.idempotencyTtl.toSeconds(),
      maxItemsPerJob: settings.maxItemsPerJob,
      maxReceiveCount,
      tierConcurrency: settings.tierConcurrency,
      serviceTier: batchServiceTier(props.serviceTier, router.tiers),
      bulk: bulkConfig,
    };
    // Every handler also gets the router's configuration (router.attachRoutingConfiguration): it
    // validates requests and derives tenants exactly as the router does.
    const environment = { [JOBS_CONFIG_ENV]: Stack.of(this).toJsonString(config) };
    const functionDefaults: FunctionDefaults = {
      serviceName: router.serviceName,
      logRetention,
      vpc,
      vpcSubnets,
      environment,
      logEncryptionKey: props.encryptionKey,
      keyProp: 'BatchPipeline encryptionKey',
      tracing: props.tracing,
    };

    // The jobs API.
    const jobsApi = new HandlerFunction(this, 'JobsApi', {
      ...functionDefaults,
      handlerName: 'jobs-api',
      description: 'cdk-scalable-ai jobs API: accepts jobs (POST /v1/jobs) and serves their results (GET /v1/jobs/{id})',
      // An HTTP API integration times out at 30 seconds.
      timeout: Duration.seconds(29),
      memorySize: 512,
      noDeadLetterQueueReason: 'API Gateway invokes the jobs API synchronously and receives its errors; a dead-letter queue applies to asynchronous invocations only.',
      unreservedConcurrencyReason: 'The router API\'s throttling (throttlingRateLimit, throttlingBurstLimit) caps the jobs API\'s load as it caps the router\'s.',
    });
    this.jobsApiFunction = jobsApi.function;
    router.attachRoutingConfiguration(jobsApi.function);
    this.grantTable(jobsApi.function, this.resultsTable, JOBS_API_TABLE_ACTIONS);
    this.grantTable(jobsApi.function, this.idempotencyTable, IDEMPOTENCY_TABLE_ACTIONS);
    iam.Grant.addToPrincipal({ grantee: jobsApi.function, actions: ['sqs:SendMessage'], resourceArns: [queue.queueArn] });
    queue.encryptionMasterKey?.grant(jobsApi.function, 'kms:GenerateDataKey', 'kms:Decrypt');
    requireAwsServices(jobsApi.function, AwsServiceEndpoint.SQS, AwsServiceEndpoint.DYNAMODB);

    // The worker.
    const worker = new HandlerFunction(this, 'Worker', {
      ...functionDefaults,
      handlerName: 'batch-worker',
      description: 'cdk-scalable-ai batch worker: answers queued requests through the caches and tiers of the router',
      timeout: settings.workerTimeout,
      memorySize: props.workerMemorySize ?? 512,
      noDeadLetterQueueReason: 'The worker reads its queue through an event source mapping (not an asynchronous invocation): a request that keeps failing moves to the queue\'s dead-letter queue after maxReceiveCount receives.',
      unreservedConcurrencyReason: 'The event source mapping caps the worker\'s concurrency (maxConcurrency, 10 by default) without reserving any of the account\'s.',
    });
    this.workerFunction = worker.function;
    router.attachRoutingConfiguration(worker.function);
    this.grantTable(worker.function, this.resultsTable, WORKER_TABLE_ACTIONS);
    router.grantRouting(worker.function);
    requireAwsServices(worker.function, AwsServiceEndpoint.DYNAMODB);
    worker.function.addEventSource(new eventSources.SqsEventSource(queue, {
      batchSize: settings.batchSize,
      maxBatchingWindow: settings.maxBatchingWindow,
      maxConcurrency: settings.maxConcurrency,
      reportBatchItemFailures: true,
    }));

    // The routes, on the router's API with the router's authorization.
    const integration = new integrations.HttpLambdaIntegration('JobsIntegration', jobsApi.function);
    for (const [routeId, method, path] of [['SubmitRoute', apigwv2.HttpMethod.POST, JOBS_PATH], ['GetRoute', apigwv2.HttpMethod.GET, JOB_PATH]] as const) {
      new apigwv2.HttpRoute(this, routeId, {
        httpApi: router.api,
        routeKey: apigwv2.HttpRouteKey.with(path, method),
        integration,
        authorizer: router.authorizer,
      });
    }

    if (bulk) {
      const wired = this.wireBulk(bulk, jobsApi, functionDefaults);
      this.completionFunction = wired.completion.function;
      this.bulkRule = wired.rule;
      this.bulkDeadLetterQueue = wired.deadLetterQueue;
    }
  }

  /**
   * Grants `grantee` permission to submit jobs and read their results (with IAM authorization):
   * `execute-api:Invoke` on `POST /v1/jobs` and `GET /v1/jobs/{id}` of the router's stage.
   */
  public grantSubmit(grantee: iam.IGrantable): iam.Grant {
    const stage = this.router.stageName;
    const jobArn = this.router.api.arnForExecuteApi(apigwv2.HttpMethod.GET, '/v1/jobs/*', stage);
    const grant = iam.Grant.addToPrincipal({
      grantee,
      actions: ['execute-api:Invoke'],
      resourceArns: [this.router.api.arnForExecuteApi(apigwv2.HttpMethod.POST, JOBS_PATH, stage), jobArn],
    });
    // Acknowledged on the library's own roles only; a grant to your role leaves the finding to your review.
    acknowledgeOnOwnedGrantee(grantee, {
      id: `AwsSolutions-IAM5[Resource::${nagResourceId(this, jobArn)}]`,
      reason: 'GET /v1/jobs/{id} reads any job by its id; the handler serves only jobs of the caller\'s tenant.',
    });
    return grant;
  }

  /** A metric of the pipeline (see `AiMetricNames` for names), with the router's `service` dimension. */
  public metric(metricName: string, dimensions?: { [name: string]: string }, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.router.metric(metricName, dimensions, props);
  }

  /** Requests waiting in the queue (SQS `ApproximateNumberOfMessagesVisible`, maximum). */
  public metricQueueDepth(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.queue.metricApproximateNumberOfMessagesVisible(props);
  }

  /** Age in seconds of the oldest request in the queue (SQS `ApproximateAgeOfOldestMessage`, maximum). */
  public metricOldestMessageAge(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.queue.metricApproximateAgeOfOldestMessage(props);
  }

  /** Requests in the dead-letter queue (alarm on any). */
  public metricDeadLetterDepth(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.deadLetterQueue.metricApproximateNumberOfMessagesVisible(props);
  }

  /** Requests per batch the worker received (average by default). */
  public metricBatchSize(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric(AiMetricNames.BATCH_SIZE, undefined, { statistic: 'Average', ...props });
  }

  /** Requests answered by another identical request's model call in the same batch. */
  public metricDeduplicatedRequests(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric(AiMetricNames.DEDUPLICATED_REQUESTS, undefined, props);
  }

  /** Job results written (succeeded or failed). */
  public metricResultsWritten(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric(AiMetricNames.RESULTS_WRITTEN, undefined, props);
  }

  /** Batch records reported failed (to be retried), of one kind: `poison`, `store` or `model`. */
  public metricBatchFailures(kind: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric(AiMetricNames.BATCH_FAILURES, { [AiMetricNames.DIMENSION_FAILURE_KIND]: kind }, props);
  }

  /** Jobs accepted by `POST /v1/jobs`. */
  public metricJobsSubmitted(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric(AiMetricNames.JOBS_SUBMITTED, undefined, props);
  }

  /** Bulk jobs that ended with an outcome: `completed`, `partial` or `failed`. */
  public metricBulkJobsCompleted(outcome: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric(AiMetricNames.BULK_JOBS_COMPLETED, { [AiMetricNames.DIMENSION_REASON]: outcome }, props);
  }

  /** The jobs API's bulk permissions, the completion function and the EventBridge rule. */
  private wireBulk(bulk: BulkResources, jobsApi: HandlerFunction, functionDefaults: FunctionDefaults): {
    completion: HandlerFunction; rule: events.Rule; deadLetterQueue: sqs.Queue;
  } {
    const { tier, bucket, inputPrefix, outputPrefix, role } = bulk;

    // The jobs API writes the input and submits the job with the service role.
    this.grantObjects(jobsApi.function, jobsApi.role, bucket, inputPrefix, ['s3:PutObject'],
      'The jobs API writes the input file of each bulk job under the input prefix of the bulk bucket, named by the job id.');
    bucket.encryptionKey?.grant(jobsApi.function, 'kms:GenerateDataKey', 'kms:Decrypt');
    requireAwsServices(jobsApi.function, AwsServiceEndpoint.S3, AwsServiceEndpoint.BEDROCK);
    const jobsArn = `arn:${Aws.PARTITION}:bedrock:${Aws.REGION}:${Aws.ACCOUNT_ID}:model-invocation-job/*`;
    const modelArns = tier._modelArns();
    iam.Grant.addToPrincipal({ grantee: jobsApi.function, actions: ['bedrock:CreateModelInvocationJob'], resourceArns: [...modelArns, jobsArn] });
    Validations.of(jobsApi.role).acknowledge({
      id: `AwsSolutions-IAM5[Resource::${nagResourceId(this, jobsArn)}]`,
      reason: 'CreateModelInvocationJob names the new batch inference job, whose id Bedrock assigns; the statement also limits it to the bulk tier\'s model.',
    });
    for (const arn of modelArns.filter((a) => nagResourceId(this, a).includes('*'))) {
      Validations.of(jobsApi.role).acknowledge({
        id: `AwsSolutions-IAM5[Resource::${nagResourceId(this, arn)}]`,
        reason: `Bulk jobs run on cross-region inference profile ${tier.modelIdentifier}, which may serve them from any of its destination Regions; the grant names one model. Set destinationRegions on the tier to list the Regions instead.`,
      });
    }
    iam.Grant.addToPrincipal({
      grantee: jobsApi.function,
      actions: ['iam:PassRole'],
      resourceArns: [role.roleArn],
      conditions: { StringEquals: { 'iam:PassedToService': 'bedrock.amazonaws.com' } },
    });

    // The completion function reads the output and writes the results.
    const completion = new HandlerFunction(this, 'BulkCompletion', {
      ...functionDefaults,
      handlerName: 'bulk-completion',
      description: 'cdk-scalable-ai bulk completion: writes the results of finished Bedrock batch inference jobs',
      timeout: Duration.minutes(15),
      memorySize: 1024,
      noDeadLetterQueueReason: 'EventBridge invokes the completion function asynchronously; events it fails to handle go to the on-failure destination (EventsDeadLetterQueue, configureAsyncInvoke), which replaces a function dead-letter queue.',
      unreservedConcurrencyReason: 'It runs once per state change of this pipeline\'s Bedrock batch inference jobs, a handful per job; nothing else can invoke it.',
    });
    this.router.attachRoutingConfiguration(completion.function);
    this.grantTable(completion.function, this.resultsTable, COMPLETION_TABLE_ACTIONS);
    this.grantObjects(completion.function, completion.role, bucket, outputPrefix, ['s3:GetObject'],
      'The completion function reads the output files of any bulk job under the output prefix of the bulk bucket; Bedrock names them per job.');
    this.grantList(completion.function, bucket, [outputPrefix]);
    bucket.encryptionKey?.grant(completion.function, 'kms:Decrypt');
    requireAwsServices(completion.function, AwsServiceEndpoint.S3, AwsServiceEndpoint.DYNAMODB);

    // Events that could not be delivered, or whose handling failed after Lambda's retries.
    const deadLetterQueue = new sqs.Queue(bulk.scope, 'EventsDeadLetterQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    Validations.of(deadLetterQueue).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason: 'This queue is itself a dead-letter queue: that of the EventBridge target and of the asynchronous invocations of the bulk completion function, which cdk-nag does not recognise as one.',
    });
    completion.function.configureAsyncInvoke({
      retryAttempts: 2,
      maxEventAge: Duration.hours(6),
      onFailure: new destinations.SqsDestination(deadLetterQueue),
    });
    const rule = new events.Rule(bulk.scope, 'CompletionRule', {
      description: 'Hands Bedrock batch inference job state changes to the cdk-scalable-ai bulk completion function',
      // Only this pipeline's jobs (the submitter names them sai-bulk-*), and only the states the
      // completion handler acts on.
      eventPattern: {
        source: ['aws.bedrock'],
        detailType: ['Batch Inference Job State Change'],
        detail: {
          batchJobName: [{ prefix: BULK_JOB_NAME_PREFIX }],
          status: ['InProgress', 'Completed', 'PartiallyCompleted', 'Failed', 'Stopped', 'Expired'],
        },
      },
      targets: [new eventsTargets.LambdaFunction(completion.function, {
        deadLetterQueue,
        retryAttempts: 185,
        maxEventAge: Duration.hours(24),
      })],
    });
    return { completion, rule, deadLetterQueue };
  }

  /** Item actions on `table` (and the use of its key). */
  private grantTable(fn: lambda.Function, table: dynamodb.ITable, actions: string[]): void {
    iam.Grant.addToPrincipal({ grantee: fn, actions, resourceArns: [table.tableArn] });
    this.encryptionKey?.grant(fn, ...TABLE_KEY_ACTIONS);
  }

  /** `actions` on the objects under `prefix` of `bucket`, with the acknowledgement of its wildcard. */
  private grantObjects(grantee: iam.IGrantable, role: iam.IRole, bucket: s3.IBucket, prefix: string, actions: string[], reason: string): void {
    const objects = bucket.arnForObjects(`${prefix}*`);
    iam.Grant.addToPrincipal({ grantee, actions, resourceArns: [objects] });
    Validations.of(role).acknowledge({ id: `AwsSolutions-IAM5[Resource::${nagResourceId(this, objects)}]`, reason });
  }

  /** `s3:ListBucket` on `bucket`, limited to `prefixes`. */
  private grantList(grantee: iam.IGrantable, bucket: s3.IBucket, prefixes: string[]): void {
    iam.Grant.addToPrincipal({
      grantee,
      actions: ['s3:ListBucket'],
      resourceArns: [bucket.bucketArn],
      conditions: { StringLike: { 's3:prefix': prefixes.map((p) => `${p}*`) } },
    });
  }
}

/** What every pipeline function shares. */
type FunctionDefaults = Pick<HandlerFunctionProps, 'serviceName' | 'logRetention' | 'vpc' | 'vpcSubnets' | 'environment' | 'logEncryptionKey' | 'keyProp' | 'tracing'>;

/** What bulk mode made before the functions exist. */
interface BulkResources {
  readonly tier: BedrockModelTier;
  readonly bucket: s3.IBucket;
  readonly inputPrefix: string;
  readonly outputPrefix: string;
  readonly role: iam.Role;
  /** The `Bulk` construct, parent of the bulk resources. */
  readonly scope: Construct;
}

interface Settings {
  readonly queueEncryption: sqs.QueueEncryption;
  readonly maxReceiveCount: number;
  readonly retentionPeriod: Duration;
  readonly batchSize: number;
  readonly maxBatchingWindow: Duration;
  readonly workerTimeout: Duration;
  readonly tierConcurrency: number;
  readonly maxConcurrency: number;
  readonly resultTtl: Duration;
  readonly idempotencyTtl: Duration;
  readonly maxItemsPerJob: number;
  readonly bulk?: {
    readonly tier: BedrockModelTier;
    readonly minItems: number;
    readonly maxItems: number;
    readonly timeoutHours: number;
    readonly prefix: string;
  };
}

/** Bedrock's default quota "Minimum number of records per batch inference job" (most models). */
const BEDROCK_MIN_RECORDS_PER_JOB = 100;

/** The visibility timeout of the queue: AWS's recommendation for SQS event sources. */
function visibilityTimeoutSeconds(settings: Settings): number {
  return 6 * settings.workerTimeout.toSeconds() + settings.maxBatchingWindow.toSeconds();
}

interface ExistingQueues {
  readonly queue?: sqs.IQueue;
  readonly deadLetterQueue?: sqs.IQueue;
  readonly maxReceiveCount: number;
}

/**
 * The user's queues, checked as far as they can be at synth, and the receive count on which the
 * worker gives up (that of the queue's redrive policy).
 */
function existingQueues(props: BatchPipelineProps, settings: Settings): ExistingQueues {
  const where = 'BatchPipeline';
  const checkStandardEncrypted = (name: string, q: sqs.IQueue) => {
    if (q.fifo) throw new Error(`${where}: ${name} must be a standard queue; ${q.node.path} is a FIFO queue`);
    if (q instanceof sqs.Queue && q.encryptionType === sqs.QueueEncryption.UNENCRYPTED) {
      throw new Error(`${where}: ${name} must be encrypted at rest: requests and their content rest in it`);
    }
  };
  if (props.deadLetterQueue) checkStandardEncrypted('deadLetterQueue', props.deadLetterQueue);
  const queue = props.queue;
  if (!queue) return { deadLetterQueue: props.deadLetterQueue, maxReceiveCount: settings.maxReceiveCount };

  checkStandardEncrypted('queue', queue);
  for (const name of ['queueEncryption', 'retentionPeriod'] as const) {
    if (props[name] !== undefined) throw new Error(`${where}: ${name} configures the queue this construct creates; it cannot be combined with queue`);
  }
  if (!(queue instanceof sqs.Queue)) {
    if (!props.deadLetterQueue || props.maxReceiveCount === undefined) {
      throw new Error(`${where}: an imported queue needs deadLetterQueue and maxReceiveCount, those of its redrive policy: the library cannot read them, and the worker writes a failed result on that receive`);
    }
    return { queue, deadLetterQueue: props.deadLetterQueue, maxReceiveCount: props.maxReceiveCount };
  }

  const redrive = queue.deadLetterQueue;
  if (!redrive) {
    throw new Error(`${where}: queue ${queue.node.path} has no dead-letter queue; give it one (deadLetterQueue: { queue, maxReceiveCount }), or requests that cannot be processed are retried until they expire`);
  }
  if (props.deadLetterQueue && props.deadLetterQueue !== redrive.queue) {
    throw new Error(`${where}: deadLetterQueue is not the dead-letter queue of queue ${queue.node.path}; leave it out to use the queue's own`);
  }
  if (props.maxReceiveCount !== undefined && props.maxReceiveCount !== redrive.maxReceiveCount) {
    throw new Error(`${where}: maxReceiveCount (${props.maxReceiveCount}) differs from the maxReceiveCount of the redrive policy of queue ${queue.node.path} (${redrive.maxReceiveCount}); leave it out to use the queue's`);
  }
  checkStandardEncrypted('deadLetterQueue', redrive.queue);
  const cfn = queue.node.defaultChild as sqs.CfnQueue;
  // SQS's defaults when the template leaves them out: 30 seconds, 4 days.
  const visibility = cfn.visibilityTimeout ?? 30;
  const needed = visibilityTimeoutSeconds(settings);
  if (!Token.isUnresolved(visibility) && visibility < needed) {
    throw new Error(`${where}: the visibility timeout of queue ${queue.node.path} (${visibility} s) must be at least six times workerTimeout plus maxBatchingWindow (${needed} s), or a request is received again while the worker still handles it`);
  }
  const retention = cfn.messageRetentionPeriod ?? 345_600;
  if (!Token.isUnresolved(retention) && settings.resultTtl.toSeconds() < retention) {
    throw new Error(`${where}: resultTtl (${settings.resultTtl.toHumanString()}) must be at least the retention period of queue ${queue.node.path} (${retention} s): a job must outlive its queued requests`);
  }
  return { queue, deadLetterQueue: redrive.queue, maxReceiveCount: redrive.maxReceiveCount };
}

/** The props with their defaults, validated; messages name the prop. */
function resolveSettings(props: BatchPipelineProps): Settings {
  const where = 'BatchPipeline';
  const integer = (name: string, value: number, min: number, max: number): number => {
    if (!Number.isInteger(value) || value < min || value > max) throw new Error(`${where}: ${name} must be an integer from ${min} to ${max}; got ${value}`);
    return value;
  };
  const wholeSeconds = (name: string, value: Duration): number => {
    const ms = value.toMilliseconds();
    if (ms % 1000 !== 0) throw new Error(`${where}: ${name} must be whole seconds; got ${value.toHumanString()}`);
    return ms / 1000;
  };

  const queueEncryption = props.queueEncryption ?? (props.encryptionKey ? sqs.QueueEncryption.KMS : sqs.QueueEncryption.SQS_MANAGED);
  if (queueEncryption === sqs.QueueEncryption.UNENCRYPTED) {
    throw new Error(`${where}: queueEncryption must not be UNENCRYPTED: requests and their content rest in the queue`);
  }
  if (queueEncryption === sqs.QueueEncryption.KMS && !props.encryptionKey) {
    throw new Error(`${where}: queueEncryption KMS needs encryptionKey (the customer managed key of the queues)`);
  }

  const maxReceiveCount = integer('maxReceiveCount', props.maxReceiveCount ?? 5, 1, 1000);
  const retentionPeriod = props.retentionPeriod ?? Duration.days(4);
  const retentionSeconds = wholeSeconds('retentionPeriod', retentionPeriod);
  if (retentionSeconds < 86_400 || retentionSeconds > 14 * 86_400) {
    throw new Error(`${where}: retentionPeriod must be from 1 day (so that a day-long model outage loses nothing) to 14 days; got ${retentionPeriod.toHumanString()}`);
  }
  const batchSize = integer('batchSize', props.batchSize ?? 10, 1, 10_000);
  const maxBatchingWindow = props.maxBatchingWindow ?? Duration.seconds(5);
  const windowSeconds = wholeSeconds('maxBatchingWindow', maxBatchingWindow);
  if (windowSeconds <= 0 || windowSeconds > 300) {
    throw new Error(`${where}: maxBatchingWindow must be more than 0 (identical requests meet only in a batch) and at most 300 seconds; got ${maxBatchingWindow.toHumanString()}`);
  }
  const workerTimeout = props.workerTimeout ?? Duration.minutes(5);
  const workerSeconds = wholeSeconds('workerTimeout', workerTimeout);
  const slowest = props.router.tiers.reduce((a, b) => (b.timeout.toMilliseconds() > a.timeout.toMilliseconds() ? b : a));
  if (workerSeconds > 900 || workerTimeout.toMilliseconds() <= slowest.timeout.toMilliseconds()) {
    throw new Error(`${where}: workerTimeout must be longer than the timeout of tier "${slowest.tierId}" (${slowest.timeout.toHumanString()}) and at most 15 minutes; got ${workerTimeout.toHumanString()}`);
  }
  if (props.workerMemorySize !== undefined) integer('workerMemorySize', props.workerMemorySize, 128, 10_240);
  const tierConcurrency = integer('tierConcurrency', props.tierConcurrency ?? 4, 1, 100);
  const maxConcurrency = integer('maxConcurrency', props.maxConcurrency ?? 10, 2, 1000);
  const maxItemsPerJob = integer('maxItemsPerJob', props.maxItemsPerJob ?? 100, 1, 1000);

  let bulk: Settings['bulk'];
  if (props.bulk) {
    const b = props.bulk;
    const ids = props.router.tiers.map((t) => t.tierId);
    if (!props.router.tiers.includes(b.tier)) {
      throw new Error(`${where}: bulk.tier "${b.tier.tierId}" is not one of the router's tiers (${ids.join(', ')}); pass the same IModelTier object the router was given`);
    }
    if (!(b.tier instanceof BedrockModelTier)) {
      throw new Error(`${where}: bulk.tier "${b.tier.tierId}" is served by ${b.tier.provider}; bulk mode runs on Bedrock batch inference and needs a tier created with ModelTier.bedrock()`);
    }
    const quota = integer('bulk.minRecordsPerJobQuota', b.minRecordsPerJobQuota ?? BEDROCK_MIN_RECORDS_PER_JOB, 1, Number.MAX_SAFE_INTEGER);
    const minItems = b.minItems ?? quota;
    const maxItems = b.maxItems ?? 50_000;
    if (!Number.isInteger(minItems) || minItems < quota) {
      throw new Error(`${where}: bulk.minItems must be an integer of at least ${quota}, Bedrock's quota "Minimum number of records per batch inference job" `
        + `(Bedrock refuses smaller jobs); got ${minItems}. If AWS lowered that quota for your account, set bulk.minRecordsPerJobQuota to its value`);
    }
    integer('bulk.maxItems', maxItems, minItems, Number.MAX_SAFE_INTEGER);
    const timeout = b.timeout ?? Duration.hours(24);
    const hours = timeout.toMilliseconds() / 3_600_000;
    if (!Number.isInteger(hours) || hours < 24 || hours > 168) {
      throw new Error(`${where}: bulk.timeout must be whole hours from 24 to 168 (Bedrock's timeoutDurationInHours); got ${timeout.toHumanString()}`);
    }
    const prefix = b.prefix ?? 'bulk/';
    if (!Token.isUnresolved(prefix) && (prefix.startsWith('/') || !prefix.endsWith('/') || prefix.length > 512)) {
      throw new Error(`${where}: bulk.prefix must be a key prefix ending with "/" and not starting with "/" (at most 512 characters); got "${prefix}"`);
    }
    bulk = { tier: b.tier, minItems, maxItems, timeoutHours: hours, prefix };
  }

  const resultTtl = props.resultTtl ?? Duration.days(7);
  const resultSeconds = wholeSeconds('resultTtl', resultTtl);
  const floor = Math.max(retentionSeconds, (bulk?.timeoutHours ?? 0) * 3600);
  if (resultSeconds < floor) {
    throw new Error(`${where}: resultTtl (${resultTtl.toHumanString()}) must be at least retentionPeriod${bulk ? ' and bulk.timeout' : ''} `
      + `(${Duration.seconds(floor).toHumanString()}): a job must outlive its queued requests`);
  }
  const idempotencyTtl = props.idempotencyTtl ?? Duration.hours(1);
  const idempotencySeconds = wholeSeconds('idempotencyTtl', idempotencyTtl);
  if (idempotencySeconds < 60 || idempotencySeconds > resultSeconds) {
    throw new Error(`${where}: idempotencyTtl must be from 1 minute to resultTtl (${resultTtl.toHumanString()}); got ${idempotencyTtl.toHumanString()}`);
  }

  return {
    queueEncryption,
    maxReceiveCount,
    retentionPeriod,
    batchSize,
    maxBatchingWindow,
    workerTimeout,
    tierConcurrency,
    maxConcurrency,
    resultTtl,
    idempotencyTtl,
    maxItemsPerJob,
    bulk,
  };
}
