import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import type { IConstruct } from 'constructs';
import type { ITieredRouter } from '../routing/router-interface';

/** The asynchronous path of a router (`POST /v1/jobs`). Implemented by {@link BatchPipeline}. */
export interface IBatchPipeline extends IConstruct {
  /** The router whose API, tiers and caches the pipeline uses. */
  readonly router: ITieredRouter;
  /** The queue of requests waiting for the worker. */
  readonly queue: sqs.IQueue;
  /** Requests the worker failed to handle `maxReceiveCount` times. */
  readonly deadLetterQueue: sqs.IQueue;
  /** The function behind `POST /v1/jobs` and `GET /v1/jobs/{id}`. */
  readonly jobsApiFunction: lambda.IFunction;
  /** The batch worker. */
  readonly workerFunction: lambda.IFunction;
  /** Jobs and their results. */
  readonly resultsTable: dynamodb.ITable;

  /** Grants `grantee` permission to submit jobs and read their results (with IAM authorization). */
  grantSubmit(grantee: iam.IGrantable): iam.Grant;
  /** A metric of the pipeline (see `AiMetricNames` for names), with the router's `service` dimension. */
  metric(metricName: string, dimensions?: { [name: string]: string }, props?: cloudwatch.MetricOptions): cloudwatch.Metric;
  /** Requests waiting in the queue. */
  metricQueueDepth(props?: cloudwatch.MetricOptions): cloudwatch.Metric;
  /** Age in seconds of the oldest request in the queue. */
  metricOldestMessageAge(props?: cloudwatch.MetricOptions): cloudwatch.Metric;
  /** Requests in the dead-letter queue (alarm on any). */
  metricDeadLetterDepth(props?: cloudwatch.MetricOptions): cloudwatch.Metric;
  /** Job results written (succeeded or failed). */
  metricResultsWritten(props?: cloudwatch.MetricOptions): cloudwatch.Metric;
  /** Batch records reported failed (to be retried), of one kind: `poison`, `store` or `model`. */
  metricBatchFailures(kind: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric;
  /** Jobs accepted by `POST /v1/jobs`. */
  metricJobsSubmitted(props?: cloudwatch.MetricOptions): cloudwatch.Metric;
}
