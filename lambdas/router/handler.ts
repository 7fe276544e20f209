import { Logger } from '@aws-lambda-powertools/logger';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { DependencyBuilder } from './dependencies';
import { EmfWriter } from '../adapters/emf-metrics';
import { traceInvocation, xRaySpans } from '../adapters/powertools-tracing';
import { ProviderInvoker } from '../adapters/provider-invoker';
import { onFirstUse, readRouterConfig } from '../adapters/router-config';
import { SecretsManagerOriginSecrets } from '../adapters/secrets-manager-origin-secrets';
import { handleChat, type HttpResponse } from '../core/chat-endpoint';
import { ChatService } from '../core/chat-service';
import { HeuristicClassifier } from '../core/classifier';
import { handleFeedback } from '../core/feedback';
import { dispatchRouterRequest, internalError, type RouteHandlers } from '../core/router-dispatch';
import { QuestionGuard } from '../core/semantic/question-guard';
import { handleStaticAnswer } from '../core/static-answers-endpoint';
import { handleUserContext } from '../core/user-context-endpoint';
import { handleUserProfile } from '../core/user-profile-endpoint';

const logger = new Logger();
const serviceName = process.env.POWERTOOLS_SERVICE_NAME ?? 'scalable-ai';
const invoker = new ProviderInvoker();
const classifier = new HeuristicClassifier();
const guard = new QuestionGuard();
/** The configuration (from the environment, or SSM at cold start) and what is built from it. */
const runtime = onFirstUse(async () => {
  const config = await readRouterConfig();
  const origin = config.originVerification ? new SecretsManagerOriginSecrets(config.originVerification, { logger: errorLogger }) : undefined;
  return { config, dependencies: new DependencyBuilder(config, guard, logger), origin };
});
const errorLogger = { error: (message: string, attributes: Record<string, unknown>): void => logger.error(message, attributes) };
/** Built once per container; each invocation gets a recorder and writes one line (metrics and log fields). */
const emf = EmfWriter.fromEnvironment(serviceName);
/** Subsegments per cache level and tier attempt when tracing is on (HandlerTracing); no-ops otherwise. */
const spans = xRaySpans();

/**
 * The router's routes: `POST /v1/chat`, `GET /v1/static-answers`, `PUT /v1/context/preferences`,
 * `DELETE /v1/context`, `POST /v1/feedback`, `GET`/`PUT /v1/profile`, and `GET /v1/health` behind the edge. Every answer carries the request id (the Lambda's,
 * unique per invocation) in `x-request-id`.
 */
export function handler(event: APIGatewayProxyEventV2, context: Context): Promise<APIGatewayProxyStructuredResultV2> {
  return traceInvocation('router', async (span) => {
    const response = await handle(event, context);
    span.annotate('route', event.routeKey);
    span.annotate('status', response.statusCode ?? 0);
    if (response.headers?.['x-cache']) span.annotate('servedBy', String(response.headers['x-cache']));
    if (response.headers?.['x-tier']) span.annotate('tier', String(response.headers['x-tier']));
    return response;
  });
}

async function handle(event: APIGatewayProxyEventV2, context: Context): Promise<APIGatewayProxyStructuredResultV2> {
  const metrics = emf.recorder();
  const requestId = context.awsRequestId;
  let log: Record<string, unknown> | undefined;
  try {
    const { config, dependencies, origin } = await runtime();
    const deps = await dependencies.get(metrics);
    const service = new ChatService({ config, invoker, classifier, guard, metrics, spans, ...deps, profiles: deps.userProfiles?.lookup });
    const routes: RouteHandlers = {
      'POST /v1/chat': ({ body, caller }) => handleChat(service, config, metrics, {
        body, caller, deadline: Date.now() + context.getRemainingTimeInMillis(), requestId, servingRecords: deps.servingRecords, quotas: deps.quotas,
      }),
      'GET /v1/static-answers': ({ query, caller, edgeTenant }) => handleStaticAnswer(service.caches, config, metrics, { question: query.q, caller, edgeTenant }),
      'PUT /v1/context/preferences': ({ body, caller }) => handleUserContext(deps.userContext, config, metrics, { method: 'PUT', body, caller }),
      'DELETE /v1/context': ({ body, caller }) => handleUserContext(deps.userContext, config, metrics, {
        method: 'DELETE', body, caller, answers: { exact: deps.exactCache, vectors: deps.semanticCache?.store },
      }),
      'GET /v1/profile': ({ caller }) => handleUserProfile(deps.userProfiles?.store, config, metrics, { method: 'GET', body: undefined, caller }),
      'PUT /v1/profile': ({ body, caller }) => handleUserProfile(deps.userProfiles?.store, config, metrics, { method: 'PUT', body, caller }),
      'POST /v1/feedback': ({ body, caller }) => handleFeedback({
        records: deps.servingRecords, exact: deps.exactCache, vectors: deps.semanticCache?.store,
      }, config, metrics, { body, caller }),
    };
    const dispatchDeps = { tenant: config.tenant, metrics, logger: errorLogger, origin };
    const response = withRequestId(await dispatchRouterRequest(routes, event, dispatchDeps), requestId);
    log = requestLog(event, context, response);
    return response;
  } catch (err) {
    const response = withRequestId(internalError(err, { logger: errorLogger }), requestId);
    log = requestLog(event, context, response);
    return response;
  } finally {
    metrics.flush(log);
  }
}

/** The response with its request id header: a caller quotes it in feedback and support requests. */
function withRequestId(response: HttpResponse, requestId: string): HttpResponse {
  return { ...response, headers: { ...response.headers, 'x-request-id': requestId } };
}

/**
 * The invocation's log fields, written with its metrics as one line (the first EMF document):
 * in CloudWatch Logs they are searchable fields of the same JSON object.
 */
function requestLog(event: APIGatewayProxyEventV2, context: Context, response: HttpResponse): Record<string, unknown> {
  return {
    level: 'INFO',
    message: 'request',
    timestamp: new Date().toISOString(),
    requestId: context.awsRequestId,
    route: event.routeKey,
    status: response.statusCode,
    cache: response.headers['x-cache'],
    tier: response.headers['x-tier'],
  };
}
