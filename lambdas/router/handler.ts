import { Logger } from '@aws-lambda-powertools/logger';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { DependencyBuilder } from './dependencies';
import { ROUTER_CONFIG_ENV, type RouterRuntimeConfig } from '../../constructs/contract/runtime-config';
import { readJsonEnv } from '../adapters/environment';
import { PowertoolsMetricsRecorder } from '../adapters/powertools-metrics';
import { ProviderInvoker } from '../adapters/provider-invoker';
import { handleChat } from '../core/chat-endpoint';
import { ChatService } from '../core/chat-service';
import { HeuristicClassifier } from '../core/classifier';
import { dispatchRouterRequest, internalError, type RouteHandlers } from '../core/router-dispatch';
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
const errorLogger = { error: (message: string, attributes: Record<string, unknown>): void => logger.error(message, attributes) };

/** The router's routes: `POST /v1/chat`, `GET /v1/static-answers`, `PUT /v1/context/preferences`, `DELETE /v1/context`. */
export async function handler(event: APIGatewayProxyEventV2, context: Context): Promise<APIGatewayProxyStructuredResultV2> {
  const metrics = new PowertoolsMetricsRecorder(serviceName);
  try {
    const deps = await dependencies.get(metrics);
    const service = new ChatService({ config, invoker, classifier, guard, metrics, ...deps });
    const routes: RouteHandlers = {
      'POST /v1/chat': ({ body, caller }) => handleChat(service, config, metrics, { body, caller, deadline: Date.now() + context.getRemainingTimeInMillis() }),
      'GET /v1/static-answers': ({ query, caller }) => handleStaticAnswer(service.caches, config, metrics, { question: query.q, caller }),
      'PUT /v1/context/preferences': ({ body, caller }) => handleUserContext(deps.userContext, config, metrics, { method: 'PUT', body, caller }),
      'DELETE /v1/context': ({ body, caller }) => handleUserContext(deps.userContext, config, metrics, { method: 'DELETE', body, caller }),
    };
    const response = await dispatchRouterRequest(routes, event, { tenant: config.tenant, metrics, logger: errorLogger });
    logger.info('request', { route: event.routeKey, status: response.statusCode, cache: response.headers['x-cache'], tier: response.headers['x-tier'] });
    return response;
  } catch (err) {
    return internalError(err, { logger: errorLogger });
  } finally {
    metrics.flush();
  }
}
