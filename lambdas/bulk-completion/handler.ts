/**
 * The bulk completion Lambda, the target of an EventBridge rule on Amazon Bedrock's batch
 * inference state changes (source `aws.bedrock`, detail-type `Batch Inference Job State Change`):
 * loads a finished bulk job's output from S3 into the results table, or fails the job (see
 * `core/jobs/bulk-completion` for what each status does).
 *
 * It throws when the work could not be done (S3 or DynamoDB unavailable, output not readable), so
 * that the rule's retry policy and dead-letter queue apply; writes are idempotent, so a retried or
 * redelivered event counts nothing twice. Events of jobs it does not know are logged and ignored.
 *
 * Configuration: `JOBS_CONFIG_ENV` (JSON `JobsRuntimeConfig`, with `bulk`) and `ROUTER_CONFIG_ENV`
 * (JSON `RouterRuntimeConfig`: the bulk tier's prices), or `ROUTER_CONFIG_PARAMETER_ENV` (the SSM
 * parameter holding it).
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import type { Context, EventBridgeEvent } from 'aws-lambda';
import { JOBS_CONFIG_ENV, type BulkRuntimeConfig, type JobsRuntimeConfig, type TierRuntimeConfig } from '../../constructs/contract/runtime-config';
import { DynamoDbJobStore } from '../adapters/dynamodb-job-store';
import { EmfWriter } from '../adapters/emf-metrics';
import { readJsonEnv } from '../adapters/environment';
import { onFirstUse, readRouterConfig } from '../adapters/router-config';
import { S3BulkOutputReader } from '../adapters/s3-bulk-output-reader';
import { s3ClientConfig } from '../adapters/s3-client';
import {
  handleBulkJobStateChange,
  type BatchJobStateChangeDetail,
  type BulkCompletionLogger,
  type BulkCompletionSummary,
} from '../core/jobs/bulk-completion';
import { bulkTier } from '../core/jobs/bulk-layout';
import type { JobStore } from '../core/jobs/job-model';

const logger = new Logger();
const completionLogger: BulkCompletionLogger = {
  info: (message, attributes = {}) => logger.info(message, attributes),
  warn: (message, attributes = {}) => logger.warn(message, attributes),
  error: (message, attributes = {}) => logger.error(message, attributes),
};
const serviceName = process.env.POWERTOOLS_SERVICE_NAME ?? 'scalable-ai';
/** Built once per container; each invocation gets a recorder of its own. */
const emf = EmfWriter.fromEnvironment(serviceName);

interface Runtime {
  readonly jobs: JobsRuntimeConfig;
  readonly bulk: BulkRuntimeConfig;
  readonly tier: TierRuntimeConfig;
  readonly store: JobStore;
  readonly output: S3BulkOutputReader;
}

/** Configuration and clients, built on the first event and kept for the life of the container. */
const runtimeOf = onFirstUse(async (): Promise<Runtime> => {
  const jobs = readJsonEnv<JobsRuntimeConfig>(JOBS_CONFIG_ENV);
  if (!jobs.bulk) throw new Error(`${JOBS_CONFIG_ENV}: bulk is not configured; the bulk completion function has nothing to do`);
  const router = await readRouterConfig();
  const s3 = new S3Client(s3ClientConfig());
  return {
    jobs,
    bulk: jobs.bulk,
    tier: bulkTier(jobs.bulk, router),
    store: new DynamoDbJobStore(jobs.resultsTable, new DynamoDBClient({ maxAttempts: 4 })),
    output: new S3BulkOutputReader(s3, jobs.bulk.bucketName),
  };
});

export async function handler(
  event: EventBridgeEvent<string, BatchJobStateChangeDetail>,
  context?: Context,
): Promise<BulkCompletionSummary> {
  if (context) logger.addContext(context);
  const metrics = emf.recorder();
  try {
    const rt = await runtimeOf();
    return await handleBulkJobStateChange(event, {
      store: rt.store,
      output: rt.output,
      metrics,
      logger: completionLogger,
      bulk: rt.bulk,
      tier: rt.tier,
      resultTtlSeconds: rt.jobs.resultTtlSeconds,
    });
  } catch (err) {
    logger.error('bulk completion failed; the event is retried', {
      error: err as Error,
      eventId: event?.id,
      bulkJobArn: event?.detail?.batchJobArn,
      status: event?.detail?.status,
    });
    throw err;
  } finally {
    metrics.flush();
  }
}
