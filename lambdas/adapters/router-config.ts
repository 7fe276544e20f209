/**
 * The router's configuration as the constructs hand it to a function: JSON in ROUTER_CONFIG_ENV,
 * or, when it would not fit Lambda's 4 KB of environment, the name of an SSM parameter (String)
 * that holds it in ROUTER_CONFIG_PARAMETER_ENV.
 */
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { readJsonEnv } from './environment';
import { traced } from './powertools-tracing';
import { ROUTER_CONFIG_ENV, ROUTER_CONFIG_PARAMETER_ENV, type RouterRuntimeConfig } from '../../constructs/contract/runtime-config';
import { withDeadline } from '../core/abortable';

/** Milliseconds one GetParameter attempt may take (connecting, then waiting for the answer). */
export const PARAMETER_ATTEMPT_TIMEOUT_MS = 1_000;
/** Attempts of the read: the function can do nothing without its configuration, so one retry. */
const PARAMETER_ATTEMPTS = 2;

/**
 * Reads the router's configuration: from the environment, or from the SSM parameter it names,
 * within {@link PARAMETER_ATTEMPT_TIMEOUT_MS} per attempt (two attempts) and abandoned at the
 * deadline whatever the client does.
 * @throws when neither variable is set, the parameter cannot be read in time, or its value is not JSON
 */
export async function readRouterConfig(client?: SSMClient): Promise<RouterRuntimeConfig> {
  if (process.env[ROUTER_CONFIG_ENV]) return readJsonEnv<RouterRuntimeConfig>(ROUTER_CONFIG_ENV);
  const name = process.env[ROUTER_CONFIG_PARAMETER_ENV];
  if (!name) throw new Error(`Neither ${ROUTER_CONFIG_ENV} nor ${ROUTER_CONFIG_PARAMETER_ENV} is set`);
  const ssm = client ?? traced(new SSMClient({
    maxAttempts: PARAMETER_ATTEMPTS,
    requestHandler: new NodeHttpHandler({
      connectionTimeout: PARAMETER_ATTEMPT_TIMEOUT_MS,
      requestTimeout: PARAMETER_ATTEMPT_TIMEOUT_MS,
      throwOnRequestTimeout: true,
    }),
  }));
  const deadlineMs = PARAMETER_ATTEMPTS * PARAMETER_ATTEMPT_TIMEOUT_MS + 500;
  const output = await withDeadline(deadlineMs, `reading the router configuration from the SSM parameter ${name}`, (signal) =>
    ssm.send(new GetParameterCommand({ Name: name }), { abortSignal: signal }));
  const value = output.Parameter?.Value;
  if (!value) throw new Error(`The SSM parameter ${name} (${ROUTER_CONFIG_PARAMETER_ENV}) has no value`);
  return JSON.parse(value) as RouterRuntimeConfig;
}

/**
 * `load` run once per container, on first use: a failed load is not kept, so the next
 * invocation tries again instead of the container failing until it is recycled.
 */
export function onFirstUse<T>(load: () => Promise<T>): () => Promise<T> {
  let loading: Promise<T> | undefined;
  return () => {
    loading ??= load().catch((err: unknown) => {
      loading = undefined;
      throw err;
    });
    return loading;
  };
}
