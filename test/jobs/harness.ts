/**
 * What the jobs tests share: the local servers (DynamoDB with transactions, SQS, Bedrock), the
 * handlers' configuration, HTTP API events for the jobs routes, and invoking the handlers with
 * their EMF metrics captured.
 */
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { JOBS_CONFIG_ENV, ROUTER_CONFIG_ENV, type JobsRuntimeConfig, type RouterRuntimeConfig, type TierRuntimeConfig } from '../../constructs/contract/runtime-config';
import type { JobResponseBody, SubmitResponseBody } from '../../lambdas/core/jobs/jobs-endpoint';
import { DynaliteServer } from '../support/dynalite-server';
import { ACCOUNT, captureJsonStdout, enableEmf, httpApiEvent, lambdaContext, parseEmf, type EmfMetric } from '../support/lambda-harness';

export const TENANT_A_USER_1 = `arn:aws:sts::${ACCOUNT}:assumed-role/TenantA/user-1`;
export const TENANT_A_USER_2 = `arn:aws:sts::${ACCOUNT}:assumed-role/TenantA/user-2`;
export const TENANT_B_USER_1 = `arn:aws:sts::${ACCOUNT}:assumed-role/TenantB/user-1`;
export const TENANT_A = `arn:aws:iam::${ACCOUNT}:role/TenantA`;
export const TENANT_B = `arn:aws:iam::${ACCOUNT}:role/TenantB`;

export const RESULTS_TABLE = 'jobs-results';
export const IDEMPOTENCY_TABLE = 'jobs-idempotency';
export const SMALL_MODEL = 'us.amazon.nova-micro-v1:0';
export const LARGE_MODEL = 'us.anthropic.claude-3-5-haiku-20241022-v1:0';

export const TIERS: TierRuntimeConfig[] = [
  { id: 'small', provider: 'bedrock', modelId: SMALL_MODEL, inputPricePer1k: 0.000035, outputPricePer1k: 0.00014, maxTokens: 512, timeoutMs: 10_000 },
  { id: 'large', provider: 'bedrock', modelId: LARGE_MODEL, inputPricePer1k: 0.0008, outputPricePer1k: 0.004, maxTokens: 1_024, timeoutMs: 10_000 },
];

/** The tables the jobs handlers use: results (`pk` + `sk`) and Powertools idempotency (`id`). */
export const JOBS_TABLES = [
  DynaliteServer.userContextTable(RESULTS_TABLE),
  {
    TableName: IDEMPOTENCY_TABLE,
    AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' as const }],
    KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' as const }],
    BillingMode: 'PAY_PER_REQUEST' as const,
  },
];

export function routerConfig(extra: Partial<RouterRuntimeConfig> = {}): RouterRuntimeConfig {
  return {
    tiers: TIERS,
    tierHintPolicy: 'any',
    maxRequestBytes: 2_048,
    maxMessages: 6,
    tenant: { source: 'iam' },
    personalCaching: 'user',
    ...extra,
  };
}

export function jobsConfig(queueUrl: string, extra: Partial<JobsRuntimeConfig> = {}): JobsRuntimeConfig {
  return {
    resultsTable: RESULTS_TABLE,
    idempotencyTable: IDEMPOTENCY_TABLE,
    queueUrl,
    resultTtlSeconds: 86_400,
    idempotencyTtlSeconds: 3_600,
    maxItemsPerJob: 8,
    maxReceiveCount: 3,
    tierConcurrency: 2,
    ...extra,
  };
}

/**
 * Sets the handlers' environment (configuration, endpoints, dummy credentials, EMF on) and
 * starts capturing stdout. Returns a function that restores the environment.
 */
export function useEnvironment(
  vars: Record<string, string>,
  configs: { router: RouterRuntimeConfig; jobs: JobsRuntimeConfig },
): { captured: string[]; restore: () => void } {
  const saved = { ...process.env };
  Object.assign(process.env, vars, {
    [ROUTER_CONFIG_ENV]: JSON.stringify(configs.router),
    [JOBS_CONFIG_ENV]: JSON.stringify(configs.jobs),
    AWS_REGION: 'us-east-1',
    AWS_DEFAULT_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'AKIDLOCALTEST',
    AWS_SECRET_ACCESS_KEY: 'local-test-secret',
    AWS_EC2_METADATA_DISABLED: 'true',
    POWERTOOLS_SERVICE_NAME: 'jobs-test',
    // The handlers log their errors; set DEBUG_JOBS_TESTS=1 to see them.
    POWERTOOLS_LOG_LEVEL: process.env.DEBUG_JOBS_TESTS ? 'DEBUG' : 'SILENT',
  });
  enableEmf();
  const captured = captureJsonStdout();
  return {
    captured,
    restore: () => {
      jest.restoreAllMocks();
      for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
      Object.assign(process.env, saved);
    },
  };
}

export interface ApiCall {
  readonly userArn?: string | null;
  readonly body?: unknown;
  /** Raw body instead of JSON.stringify(body). */
  readonly raw?: string;
  readonly headers?: Record<string, string>;
  readonly query?: Record<string, string>;
}

export function submitEvent(call: ApiCall): APIGatewayProxyEventV2 {
  const event = httpApiEvent(call.body, TENANT_A_USER_1, { routeKey: 'POST /v1/jobs', userArn: call.userArn, raw: call.raw });
  return { ...event, headers: { ...event.headers, ...call.headers } };
}

export function getEvent(jobId: string, call: ApiCall = {}): APIGatewayProxyEventV2 {
  const event = httpApiEvent(undefined, TENANT_A_USER_1, { routeKey: 'GET /v1/jobs/{id}', userArn: call.userArn, query: call.query });
  return { ...event, rawPath: `/v1/jobs/${jobId}`, pathParameters: { id: jobId }, headers: { ...event.headers, ...call.headers } };
}

export interface ApiResponse<T> {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: T & { error?: { code: string; message: string } };
  readonly metrics: EmfMetric[];
}

type ApiHandler = (event: APIGatewayProxyEventV2, context: Context) => Promise<APIGatewayProxyStructuredResultV2>;
type WorkerHandler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse>;

/** Invokes the jobs API handler; returns its parsed answer and the metrics it emitted. */
export async function callApi<T>(handler: ApiHandler, captured: string[], event: APIGatewayProxyEventV2): Promise<ApiResponse<T>> {
  captured.splice(0, captured.length);
  const res = await handler(event, lambdaContext('jobs-api'));
  const metrics = parseEmf(captured.splice(0, captured.length));
  return {
    status: res.statusCode ?? 0,
    headers: Object.fromEntries(Object.entries(res.headers ?? {}).map(([k, v]) => [k.toLowerCase(), String(v)])),
    body: JSON.parse(String(res.body)) as ApiResponse<T>['body'],
    metrics,
  };
}

/** Invokes the batch worker with an SQS event; returns its batch response and metrics. */
export async function callWorker(
  handler: WorkerHandler,
  captured: string[],
  event: SQSEvent,
): Promise<{ response: SQSBatchResponse; metrics: EmfMetric[] }> {
  captured.splice(0, captured.length);
  const response = await handler(event, lambdaContext('batch-worker'));
  return { response, metrics: parseEmf(captured.splice(0, captured.length)) };
}

export type SubmitBody = SubmitResponseBody;
export type JobBody = JobResponseBody;

/** A chat request of one user question. */
export function question(text: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { messages: [{ role: 'user', content: text }], ...extra };
}
