/**
 * Tracing of the handlers with Powertools Tracer (AWS X-Ray). On only when the function's
 * construct sets `POWERTOOLS_TRACE_ENABLED=true` (HandlerTracing.xRay()); otherwise the tracer is
 * never loaded and every span is a plain call: no segment, no X-Ray SDK work, nothing sent.
 */
import type { Tracer } from '@aws-lambda-powertools/tracer';
import { NO_SPANS, type Span, type SpanAnnotations, type Spans } from '../core/tracing';

/** The annotations of one subsegment (X-Ray indexes them: `annotation.tier = "small"`). */
interface Annotated {
  addAnnotation(key: string, value: string | number | boolean): void;
  addError(err: Error | string): void;
  close(): void;
}

let containerTracer: Tracer | null | undefined;

/**
 * The container's tracer (one per container, as Powertools recommends), or null with tracing off.
 * Loaded only when on: the X-Ray SDK, once loaded in Lambda, installs an async hook that every
 * later await of an untraced invocation would pay for.
 */
export function tracer(): Tracer | null {
  if (containerTracer === undefined) {
    containerTracer = process.env.POWERTOOLS_TRACE_ENABLED === 'true'
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      ? new (require('@aws-lambda-powertools/tracer') as typeof import('@aws-lambda-powertools/tracer')).Tracer({
        serviceName: process.env.POWERTOOLS_SERVICE_NAME,
        enabled: true,
        captureHTTPsRequests: false,
      })
      : null;
  }
  return containerTracer;
}

/** Traces the calls of an AWS SDK v3 client (a subsegment per call); unchanged with tracing off. */
export function traced<T>(client: T): T {
  const t = tracer();
  return t?.isTracingEnabled() ? t.captureAWSv3Client(client) : client;
}

/** Spans as X-Ray subsegments of the current (sub)segment; NO_SPANS when tracing is off. */
export function xRaySpans(t: Tracer | null = tracer()): Spans {
  if (!t?.isTracingEnabled()) return NO_SPANS;
  return {
    span: <T>(name: string, fn: (span: Span) => Promise<T>, annotations?: SpanAnnotations): Promise<T> =>
      // captureAsyncFunc runs `fn` in its own context: concurrent spans (the cache writes) nest correctly.
      t.provider.captureAsyncFunc(name, async (subsegment?: Annotated) => {
        if (!subsegment) return fn({ annotate: () => undefined });
        for (const [key, value] of Object.entries(annotations ?? {})) subsegment.addAnnotation(key, value);
        try {
          return await fn({ annotate: (key, value) => subsegment.addAnnotation(key, value) });
        } catch (err) {
          subsegment.addError(err instanceof Error ? err : String(err));
          throw err;
        } finally {
          subsegment.close();
        }
      }) as Promise<T>,
  };
}

/**
 * Runs one invocation in the subsegment `## <handler name>`, annotated with the cold start and the
 * service; `annotate` adds what the response says (how it was served, by which tier).
 */
export async function traceInvocation<T>(name: string, fn: (span: Span) => Promise<T>): Promise<T> {
  const t = tracer();
  if (!t?.isTracingEnabled()) return fn({ annotate: () => undefined });
  return xRaySpans(t).span(`## ${name}`, (span) => {
    t.annotateColdStart();
    t.addServiceNameAnnotation();
    return fn(span);
  });
}
