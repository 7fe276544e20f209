/**
 * The jobs API Lambda, on the router's HTTP API (payload 2.0): `POST /v1/jobs` and
 * `GET /v1/jobs/{id}` (see `core/jobs/jobs-endpoint` for the contract).
 *
 * Configuration: `JOBS_CONFIG_ENV` (JSON `JobsRuntimeConfig`: results and idempotency tables, the
 * queue, limits, bulk mode) and `ROUTER_CONFIG_ENV` (JSON `RouterRuntimeConfig`: how requests are
 * validated, where the tenant comes from, the tiers bulk mode may use), or
 * `ROUTER_CONFIG_PARAMETER_ENV` (the SSM parameter holding it).
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { JOBS_CONFIG_ENV, type JobsRuntimeConfig } from '../../constructs/contract/runtime-config';
import { BedrockBulkSubmitter } from '../adapters/bedrock-bulk-submitter';
import { DynamoDbJobStore } from '../adapters/dynamodb-job-store';
import { EmfWriter } from '../adapters/emf-metrics';
import { readJsonEnv } from '../adapters/environment';
import { PowertoolsIdempotency } from '../adapters/powertools-idempotency';
import { onFirstUse, readRouterConfig } from '../adapters/router-config';
import { SqsJobQueue } from '../adapters/sqs-job-queue';
import { errorResponse, type HttpResponse } from '../core/chat-endpoint';
import { HttpError } from '../core/errors';
import { getJob, submitJob, type JobsEndpointDeps } from '../core/jobs/jobs-endpoint';
import { callerOf, decodedBody, internalError } from '../core/router-dispatch';

const logger = new Logger();
const jobsConfig = readJsonEnv<JobsRuntimeConfig>(JOBS_CONFIG_ENV);
const serviceName = process.env.POWERTOOLS_SERVICE_NAME ?? 'scalable-ai';
/** Built once per container; each invocation gets a recorder of its own. */
const emf = EmfWriter.fromEnvironment(serviceName);

const dynamo = new DynamoDBClient({});
const store = new DynamoDbJobStore(jobsConfig.resultsTable, dynamo);
const queue = new SqsJobQueue(jobsConfig.queueUrl);
const idempotency = new PowertoolsIdempotency({
  tableName: jobsConfig.idempotencyTable,
  ttlSeconds: jobsConfig.idempotencyTtlSeconds,
  client: dynamo,
});
/** The router's configuration (from the environment, or SSM at cold start) and the bulk submitter built from it. */
const runtime = onFirstUse(async () => {
  const routerConfig = await readRouterConfig();
  return { routerConfig, bulk: jobsConfig.bulk ? new BedrockBulkSubmitter(jobsConfig.bulk, routerConfig) : undefined };
});

/** `POST /v1/jobs` (202 + job id) and `GET /v1/jobs/{id}` (status, results). */
export async function handler(event: APIGatewayProxyEventV2, context: Context): Promise<APIGatewayProxyStructuredResultV2> {
  const metrics = emf.recorder();
  try {
    const { routerConfig, bulk } = await runtime();
    const caller = callerOf(event.requestContext, routerConfig.tenant);
    const deps: JobsEndpointDeps = {
      router: routerConfig,
      jobs: jobsConfig,
      store,
      queue,
      bulk,
      idempotency,
      metrics,
      logger: { error: (message, ...extra) => logger.error(message, ...(extra as [Record<string, unknown>])) },
    };
    let response: HttpResponse;
    switch (event.routeKey) {
      case 'POST /v1/jobs': {
        idempotency.registerLambdaContext(context);
        const body = decodedBody(event);
        response = await submitJob(deps, { body, caller, idempotencyKey: header(event, 'idempotency-key') });
        break;
      }
      case 'GET /v1/jobs/{id}':
        response = await getJob(deps, {
          caller,
          jobId: event.pathParameters?.id,
          cursor: event.queryStringParameters?.cursor,
          limit: event.queryStringParameters?.limit,
        });
        break;
      default:
        response = errorResponse(new HttpError(404, `No route ${event.routeKey}`, 'not-found'), metrics);
    }
    logger.info('request', { route: event.routeKey, status: response.statusCode });
    return response;
  } catch (err) {
    return internalError(err, { logger: { error: (message, attributes) => logger.error(message, attributes) } });
  } finally {
    metrics.flush();
  }
}

/** A request header (HTTP API lower-cases names; a repeated header arrives comma-joined). */
function header(event: APIGatewayProxyEventV2, name: string): string | undefined {
  for (const [k, v] of Object.entries(event.headers ?? {})) if (k.toLowerCase() === name) return v;
  return undefined;
}
