/**
 * What the handler tests share: API Gateway HTTP API (payload 2.0) events with an IAM
 * authorizer context, a Lambda context, the capture of stdout, and the parsing of the CloudWatch
 * EMF documents the handlers write there.
 */
import { randomUUID } from 'node:crypto';
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import { AiMetricNames as M } from '../../constructs/contract/metrics';
import { LOCAL_ACCOUNT_ID, lambdaContext as localLambdaContext, toHttpApiEvent } from '../../lambdas/adapters/http-api-event';

export const ACCOUNT = LOCAL_ACCOUNT_ID;

export interface EmfMetric {
  readonly namespace: string;
  readonly name: string;
  readonly unit: string;
  readonly values: number[];
  readonly dimensions: Record<string, string>;
}

export interface EventOptions {
  /** IAM principal of the caller; null: no authorizer context at all. */
  readonly userArn?: string | null;
  /** Raw body instead of JSON.stringify(body). */
  readonly raw?: string;
  readonly base64?: boolean;
  /** Route key, `POST /v1/chat` by default. */
  readonly routeKey?: string;
  readonly query?: Record<string, string>;
}

/**
 * An HTTP API event for `routeKey` from the caller `userArn` (default: the given default caller),
 * built by the same translation `cdk-scalable-ai serve` uses (lambdas/adapters/http-api-event.ts).
 */
export function httpApiEvent(body: unknown, defaultUserArn: string, options: EventOptions = {}): APIGatewayProxyEventV2 {
  const userArn = options.userArn === undefined ? defaultUserArn : options.userArn;
  const text = options.raw ?? (body === undefined ? undefined : JSON.stringify(body));
  const routeKey = options.routeKey ?? 'POST /v1/chat';
  const [method, path = '/'] = routeKey.split(' ');
  const query = new URLSearchParams(options.query ?? {}).toString();
  return toHttpApiEvent({
    method,
    url: query ? `${path}?${query}` : path,
    routeKey,
    headers: { 'content-type': 'application/json', 'user-agent': 'jest' },
    body: text,
    forceBase64: options.base64,
    authorizer: userArn === null ? undefined : { iam: { userArn } },
    sourceIp: '203.0.113.10',
    domainName: 'api1234567.execute-api.us-east-1.amazonaws.com',
    requestId: `req-${Math.random().toString(36).slice(2)}`,
    timeEpoch: 1_795_762_800_000,
  });
}

/** A Lambda context with 30 s left, and a request id unique per invocation, as Lambda's (serving records are keyed by it). */
export function lambdaContext(functionName = 'router'): Context {
  return localLambdaContext(functionName, Date.now() + 30_000, randomUUID());
}

/**
 * Parses the EMF documents among the captured stdout lines into one entry per metric and
 * dimension set, as CloudWatch reads them: every directive of `_aws.CloudWatchMetrics` publishes
 * each of its metrics once per dimension set in its `Dimensions`, with the dimension values and the
 * metric's value (or array of values) taken from the document's top-level keys.
 */
export function parseEmf(lines: string[]): EmfMetric[] {
  const metrics: EmfMetric[] = [];
  for (const line of lines.join('').split('\n')) {
    if (!line.includes('"_aws"')) continue;
    const doc = JSON.parse(line) as Record<string, unknown> & {
      _aws: { CloudWatchMetrics: Array<{ Namespace: string; Dimensions: string[][]; Metrics: Array<{ Name: string; Unit: string }> }> };
    };
    for (const directive of doc._aws.CloudWatchMetrics) {
      // A directive without dimension sets publishes its metrics without dimensions.
      const sets = directive.Dimensions.length > 0 ? directive.Dimensions : [[]];
      for (const set of sets) {
        const dimensions: Record<string, string> = {};
        for (const key of set) dimensions[key] = String(doc[key]);
        for (const m of directive.Metrics) {
          const value = doc[m.Name] as number | number[];
          metrics.push({ namespace: directive.Namespace, name: m.Name, unit: m.Unit, values: Array.isArray(value) ? value : [value], dimensions });
        }
      }
    }
  }
  return metrics;
}

/** The metrics named `name` whose dimensions are exactly `service` plus `dimensions`. */
export function metricsNamed(metrics: EmfMetric[], name: string, dimensions: Record<string, string> = {}): EmfMetric[] {
  const wanted = [M.DIMENSION_SERVICE, ...Object.keys(dimensions)].sort();
  return metrics.filter(
    (m) =>
      m.name === name &&
      JSON.stringify(Object.keys(m.dimensions).sort()) === JSON.stringify(wanted) &&
      Object.entries(dimensions).every(([k, v]) => m.dimensions[k] === v),
  );
}

/** Sum of the values of the metrics named `name` with exactly these dimensions (0 when absent). */
export function metricSum(metrics: EmfMetric[], name: string, dimensions: Record<string, string> = {}): number {
  return metricsNamed(metrics, name, dimensions).reduce((n, m) => n + m.values.reduce((a, b) => a + b, 0), 0);
}

/**
 * Captures the JSON lines written to stdout (EMF, structured logs); everything else passes
 * through. Returns the buffer to read and empty; call `jest.restoreAllMocks()` to stop.
 */
export function captureJsonStdout(): string[] {
  const captured: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  jest.spyOn(process.stdout, 'write').mockImplementation(((chunk: string | Uint8Array, ...rest: never[]) => {
    const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    if (text.trimStart().startsWith('{')) {
      captured.push(text);
      return true;
    }
    return write(chunk, ...rest);
  }) as typeof process.stdout.write);
  return captured;
}

/** Clears the Powertools settings that would silence EMF or override the namespace. */
export function enableEmf(): void {
  delete process.env.POWERTOOLS_METRICS_NAMESPACE;
  delete process.env.POWERTOOLS_DEV;
  delete process.env.POWERTOOLS_METRICS_DISABLED;
  delete process.env.AWS_PROFILE;
}
