/**
 * The batch worker Lambda, on the jobs queue's SQS event source (with `ReportBatchItemFailures`):
 * answers each job message with the router's ChatService (the same caches, routing and
 * fallback, built from the router's configuration by the router's DependencyBuilder), shares one
 * answer among identical requests of a batch, limits concurrent invocations per tier, and stores
 * each result before its message is acknowledged. Records that must be retried are reported in
 * `batchItemFailures` (Powertools BatchProcessor), so one bad message never fails its neighbours.
 * See `core/jobs/batch-processing` for what happens to each record.
 *
 * Configuration: `JOBS_CONFIG_ENV` (JSON `JobsRuntimeConfig`) and `ROUTER_CONFIG_ENV` (JSON
 * `RouterRuntimeConfig`), or `ROUTER_CONFIG_PARAMETER_ENV` (the SSM parameter holding it).
 */
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { Logger } from '@aws-lambda-powertools/logger';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { JOBS_CONFIG_ENV, type JobsRuntimeConfig } from '../../constructs/contract/runtime-config';
import { DynamoDbJobStore } from '../adapters/dynamodb-job-store';
import { EmfWriter } from '../adapters/emf-metrics';
import { readJsonEnv } from '../adapters/environment';
import { ProviderInvoker } from '../adapters/provider-invoker';
import { onFirstUse, readRouterConfig } from '../adapters/router-config';
import { ChatService } from '../core/chat-service';
import { HeuristicClassifier } from '../core/classifier';
import { JobBatch, type JobBatchDeps } from '../core/jobs/batch-processing';
import { withBatchServiceTier } from '../core/jobs/batch-service-tier';
import { TierLimitedInvoker } from '../core/jobs/tier-limiter';
import { QuestionGuard } from '../core/semantic/question-guard';
import { DependencyBuilder } from '../router/dependencies';

const logger = new Logger();
const jobsConfig = readJsonEnv<JobsRuntimeConfig>(JOBS_CONFIG_ENV);
const serviceName = process.env.POWERTOOLS_SERVICE_NAME ?? 'scalable-ai';
/** Built once per container; each invocation gets a recorder of its own. */
const emf = EmfWriter.fromEnvironment(serviceName);

const store = new DynamoDbJobStore(jobsConfig.resultsTable);
const invoker = new ProviderInvoker();
const classifier = new HeuristicClassifier();
const guard = new QuestionGuard();
const processor = new BatchProcessor(EventType.SQS);
/** The router's configuration (from the environment, or SSM at cold start) and what is built from it. */
const runtime = onFirstUse(async () => {
  // The queue's requests may ask for a cheaper service tier than the router's (JobsRuntimeConfig.serviceTier).
  const routerConfig = withBatchServiceTier(await readRouterConfig(), jobsConfig.serviceTier);
  return {
    routerConfig,
    dependencies: new DependencyBuilder(routerConfig, guard, logger),
    limits: { maxMessages: routerConfig.maxMessages, tierIds: routerConfig.tiers.map((t) => t.id) },
  };
});
/**
 * The routing core of one batch. When it cannot be built (the router's configuration unreadable:
 * SSM unreachable or refusing), the batch still runs, with every request failing as if no tier
 * answered: retried, and on its last receive given a failed result, so that no job is left
 * running when its messages reach the dead-letter queue.
 */
async function routingCore(metrics: ReturnType<typeof emf.recorder>): Promise<Pick<JobBatchDeps, 'chat' | 'limits' | 'unavailable'>> {
  try {
    const { routerConfig, dependencies, limits } = await runtime();
    const deps = await dependencies.get(metrics);
    // The tier limit holds within this batch: one semaphore per tier.
    const limited = new TierLimitedInvoker(invoker, jobsConfig.tierConcurrency);
    return { chat: new ChatService({ config: routerConfig, invoker: limited, classifier, guard, metrics, ...deps }), limits };
  } catch (err) {
    const reason = `The router's configuration could not be read: ${(err as Error)?.message ?? String(err)}.`;
    logger.error('routing core unavailable', { error: err as Error });
    return { chat: { chat: () => Promise.reject(new Error(reason)) }, limits: { maxMessages: 0, tierIds: [] }, unavailable: reason };
  }
}

/** Time kept back from the invocation's end to store the last results. */
const STORE_RESERVE_MS = 3_000;

export async function handler(event: SQSEvent, context: Context): Promise<SQSBatchResponse> {
  const metrics = emf.recorder();
  try {
    const routing = await routingCore(metrics);
    const batch = JobBatch.start(
      {
        store,
        ...routing,
        metrics,
        maxReceiveCount: jobsConfig.maxReceiveCount,
        resultTtlSeconds: jobsConfig.resultTtlSeconds,
        deadline: Date.now() + context.getRemainingTimeInMillis() - STORE_RESERVE_MS,
        logger: { warn: (message, ...extra) => logger.warn(message, ...(extra as [Record<string, unknown>])) },
      },
      event.Records.length,
    );
    const response = await processPartialResponse(
      event,
      (record: SQSRecord) =>
        batch.process({
          messageId: record.messageId,
          body: record.body,
          receiveCount: Number(record.attributes?.ApproximateReceiveCount ?? '1') || 1,
        }),
      processor,
      // A batch whose every record failed is reported like any other (every record retried),
      // rather than thrown as an invocation error.
      { context, throwOnFullBatchFailure: false },
    );
    batch.finish();
    logger.info('batch', {
      records: event.Records.length,
      failed: response.batchItemFailures.length,
      deduplicated: batch.deduplicatedRequests,
      duplicates: batch.duplicateRecords,
    });
    return response;
  } finally {
    metrics.flush();
  }
}
