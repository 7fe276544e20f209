import { Logger } from '@aws-lambda-powertools/logger';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { callerFromAuthorizer, type AuthorizerContext } from './caller';
import { DependencyBuilder } from './dependencies';
import { ROUTER_CONFIG_ENV, type RouterRuntimeConfig } from '../../constructs/contract/runtime-config';
import { EmfWriter } from '../adapters/emf-metrics';
import { readJsonEnv } from '../adapters/environment';
import { ProviderInvoker } from '../adapters/provider-invoker';
import { handleChat, type HttpResponse } from '../core/chat-endpoint';
import { ChatService } from '../core/chat-service';
import { HeuristicClassifier } from '../core/classifier';
import { QuestionGuard } from '../core/semantic/question-guard';
import { handleStaticAnswer } from '../core/static-answers-endpoint';
import { handleUserContext } from '../core/user-context-endpoint';

const logger = new Logger();
const config = readJsonEnv<RouterRuntimeConfig>(ROUTER_CONFIG_ENV);
const serviceName = process.env.POWERTOOLS_SERVICE_NAME ?? 'scalable-ai';
const invoker = new ProviderInvoker();
const classifier = new HeuristicClassifier();
const guard = new QuestionGuard();
const dependencies = new DependencyBuilder(config, guard, logger);
/** Built once per container; each invocation gets a recorder and writes one line (metrics and log fields). */
const emf = EmfWriter.fromEnvironment(serviceName);

/** The router's routes: `POST /v1/chat`, `GET /v1/static-answers`, `PUT /v1/context/preferences`, `DELETE /v1/context`. */
export async function handler(event: APIGatewayProxyEventV2, context: Context): Promise<APIGatewayProxyStructuredResultV2> {
  const metrics = emf.recorder();
  let log: Record<string, unknown> | undefined;
  try {
    const authorizer = (event.requestContext as { authorizer?: AuthorizerContext }).authorizer;
    const caller = callerFromAuthorizer(authorizer, config.tenant.source, config.tenant.claim);
    const body = event.body !== undefined && event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString('utf8') : event.body;
    const deps = await dependencies.get(metrics);
    const service = new ChatService({ config, invoker, classifier, guard, metrics, ...deps });
    let response: HttpResponse;
    switch (event.routeKey) {
      case 'GET /v1/static-answers':
        response = await handleStaticAnswer(service.caches, config, metrics, { question: event.queryStringParameters?.q, caller });
        break;
      case 'PUT /v1/context/preferences':
        response = await handleUserContext(deps.userContext, config, metrics, { method: 'PUT', body, caller });
        break;
      case 'DELETE /v1/context':
        response = await handleUserContext(deps.userContext, config, metrics, { method: 'DELETE', body, caller });
        break;
      default:
        response = await handleChat(service, config, metrics, { body, caller, deadline: Date.now() + context.getRemainingTimeInMillis() });
    }
    log = requestLog(event, context, response);
    return response;
  } finally {
    metrics.flush(log);
  }
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
