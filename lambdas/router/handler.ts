import { Logger } from '@aws-lambda-powertools/logger';
import { getSecret } from '@aws-lambda-powertools/parameters/secrets';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { callerFromAuthorizer, type AuthorizerContext } from './caller';
import { AiMetricNames as M } from '../../constructs/contract/metrics';
import { ROUTER_CONFIG_ENV, type RouterRuntimeConfig } from '../../constructs/contract/runtime-config';
import { PowertoolsMetricsRecorder } from '../adapters/powertools-metrics';
import { ProviderInvoker } from '../adapters/provider-invoker';
import { ValkeyAnswerCache, connectValkey } from '../adapters/valkey-answer-cache';
import { handleChat } from '../core/chat-endpoint';
import { ChatService } from '../core/chat-service';
import { HeuristicClassifier } from '../core/classifier';
import type { AnswerCache, MetricsRecorder } from '../core/ports';

const logger = new Logger();
const config = JSON.parse(process.env[ROUTER_CONFIG_ENV] ?? 'null') as RouterRuntimeConfig;
if (!config) throw new Error(`${ROUTER_CONFIG_ENV} is not set`);
const serviceName = process.env.POWERTOOLS_SERVICE_NAME ?? 'scalable-ai';
const invoker = new ProviderInvoker();
const classifier = new HeuristicClassifier();
let exactCache: AnswerCache | undefined;

/** Connects the exact cache once per container; a failure is counted and retried next time. */
async function resolveExactCache(metrics: MetricsRecorder): Promise<AnswerCache | undefined> {
  const c = config.cache;
  if (!c || !config.exactCache || exactCache) return exactCache;
  try {
    const password = c.authSecretArn ? await getSecret(c.authSecretArn, { maxAge: 3600 }) : undefined;
    exactCache = new ValkeyAnswerCache(
      connectValkey({ host: c.host, port: c.port, tls: c.tls, password: password as string | undefined, timeoutMs: c.timeoutMs }),
    );
  } catch (err) {
    logger.error('exact cache unavailable: could not read its credential', err as Error);
    metrics.add(M.CACHE_ERRORS, 'Count', 1, { [M.DIMENSION_CACHE_LEVEL]: 'exact' });
  }
  return exactCache;
}

export async function handler(event: APIGatewayProxyEventV2, context: Context): Promise<APIGatewayProxyStructuredResultV2> {
  const metrics = new PowertoolsMetricsRecorder(serviceName);
  try {
    const authorizer = (event.requestContext as { authorizer?: AuthorizerContext }).authorizer;
    const caller = callerFromAuthorizer(authorizer, config.tenant.source, config.tenant.claim);
    const body = event.body !== undefined && event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString('utf8') : event.body;
    const service = new ChatService({ config, invoker, classifier, metrics, exactCache: await resolveExactCache(metrics) });
    const response = await handleChat(service, config, metrics, {
      body,
      caller,
      deadline: Date.now() + context.getRemainingTimeInMillis(),
    });
    logger.info('chat', { status: response.statusCode, cache: response.headers['x-cache'], tier: response.headers['x-tier'] });
    return response;
  } finally {
    metrics.flush();
  }
}
