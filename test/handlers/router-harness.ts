/**
 * The router handler of the handler tests, started on a configuration against local servers:
 * the environment of the local AWS server with the configuration and the service name, EMF on,
 * the JSON lines of stdout captured, and the Valkey clients that the handler opens tracked, so
 * that `stop()` can close them before the servers stop.
 */
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import Valkey from 'iovalkey';
import { ROUTER_CONFIG_ENV, type RouterRuntimeConfig } from '../../constructs/contract/runtime-config';
import type * as RouterHandler from '../../lambdas/router/handler';
import type { LocalAwsServer } from '../support/aws-protocol-server';
import { captureJsonStdout, enableEmf, httpApiEvent, lambdaContext, parseEmf, type EmfMetric, type EventOptions } from '../support/lambda-harness';

/** What one invocation answered and wrote. */
export interface RouterReply {
  readonly res: APIGatewayProxyStructuredResultV2;
  readonly status: number;
  /** The response headers, with lower-case names. */
  readonly headers: Record<string, string>;
  /** The parsed JSON body (`{}` when empty). */
  readonly body: Record<string, any>;
  /** The EMF metrics of the invocation. */
  readonly metrics: EmfMetric[];
  /** The JSON lines the invocation wrote to stdout (EMF documents and log lines). */
  readonly lines: string[];
}

export interface RouterHandlerHarness {
  readonly handler: typeof RouterHandler.handler;
  /** Invokes the handler with an HTTP API event from `options.userArn`, or else `defaultUserArn`. */
  call(body: unknown, defaultUserArn: string, options?: EventOptions): Promise<RouterReply>;
  /** Invokes the handler with `event` as given (hostile events included). */
  invoke(event: APIGatewayProxyEventV2): Promise<RouterReply>;
  /** Closes the handler's Valkey clients, restores the mocks and the environment. */
  stop(): Promise<void>;
}

/** Loads the router handler (the real module) with `config` in its environment. */
export function startRouterHandler(aws: LocalAwsServer, config: RouterRuntimeConfig, serviceName: string): RouterHandlerHarness {
  const savedEnv = { ...process.env };
  Object.assign(process.env, aws.env(), { [ROUTER_CONFIG_ENV]: JSON.stringify(config), POWERTOOLS_SERVICE_NAME: serviceName });
  enableEmf();
  const captured = captureJsonStdout();
  const valkeyClients = new Set<Valkey>();
  const connect = Valkey.prototype.connect;
  jest.spyOn(Valkey.prototype, 'connect').mockImplementation(function (this: Valkey, ...args: Parameters<Valkey['connect']>) {
    valkeyClients.add(this);
    return connect.apply(this, args);
  });
  const { handler } = jest.requireActual<typeof RouterHandler>('../../lambdas/router/handler');

  const invoke = async (event: APIGatewayProxyEventV2): Promise<RouterReply> => {
    captured.splice(0);
    const res: APIGatewayProxyStructuredResultV2 = await handler(event, lambdaContext());
    const lines = captured.splice(0);
    const text = String(res.body ?? '');
    return {
      res,
      status: res.statusCode ?? 0,
      headers: Object.fromEntries(Object.entries(res.headers ?? {}).map(([k, v]) => [k.toLowerCase(), String(v)])),
      body: text ? JSON.parse(text) : {},
      metrics: parseEmf(lines),
      lines,
    };
  };

  return {
    handler,
    call: (body, defaultUserArn, options = {}) => invoke(httpApiEvent(body, defaultUserArn, options)),
    invoke,
    async stop() {
      await Promise.all([...valkeyClients].map(async (c) => c.disconnect()));
      jest.restoreAllMocks();
      for (const key of Object.keys(process.env)) if (!(key in savedEnv)) delete process.env[key];
      Object.assign(process.env, savedEnv);
    },
  };
}
