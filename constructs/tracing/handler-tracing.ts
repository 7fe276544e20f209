import { Token } from 'aws-cdk-lib';

/** How a tracing choice configures a function (read by the library's handler functions). */
export enum HandlerTracingMode {
  /** No tracing. */
  DISABLED = 'DISABLED',
  /** Powertools Tracer to AWS X-Ray. */
  X_RAY = 'X_RAY',
  /** The AWS Distro for OpenTelemetry (ADOT) Lambda layer's auto-instrumentation. */
  OPEN_TELEMETRY = 'OPEN_TELEMETRY',
}

const LAYER_VERSION_ARN = /^arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:layer:[A-Za-z0-9_-]+:\d+$/;

/**
 * Tracing of the library's Lambda handlers. Off by default: an untraced request costs nothing.
 *
 * - `xRay()`: X-Ray active tracing and Powertools Tracer; each request's trace has a subsegment
 *   per cache level lookup and store (`static.lookup`, `exact.lookup`, `semantic.store`...), per
 *   embedding, per user-context read and write, and per tier attempt (`tier.<id>`, annotated
 *   with `tier`, `attempt`, `outcome`, `errorKind`), with the AWS SDK calls below them.
 * - `openTelemetry(layerArn)`: the ADOT Lambda layer instead; Powertools Tracer stays off.
 */
export class HandlerTracing {
  /** No tracing (the default). */
  public static disabled(): HandlerTracing {
    return new HandlerTracing(HandlerTracingMode.DISABLED);
  }

  /** X-Ray active tracing with the handlers' Powertools Tracer subsegments. */
  public static xRay(): HandlerTracing {
    return new HandlerTracing(HandlerTracingMode.X_RAY);
  }

  /**
   * The ADOT Lambda layer's auto-instrumentation (spans of the invocation and the AWS SDK calls;
   * not the library's per-cache-level and per-tier subsegments, which come from `xRay()`).
   * @param layerArn ARN of an ADOT Node.js layer version for arm64 in the stack's Region
   *   (the layer is published per Region, architecture and version)
   */
  public static openTelemetry(layerArn: string): HandlerTracing {
    if (!Token.isUnresolved(layerArn) && !LAYER_VERSION_ARN.test(layerArn)) {
      throw new Error(`HandlerTracing.openTelemetry(layerArn): '${layerArn}' is not the ARN of a Lambda layer version `
        + '(arn:aws:lambda:<region>:<account>:layer:<name>:<version>); give the ADOT Node.js arm64 layer ARN of your Region.');
    }
    return new HandlerTracing(HandlerTracingMode.OPEN_TELEMETRY, layerArn);
  }

  private constructor(
    /** Which tracing. */
    public readonly mode: HandlerTracingMode,
    /** The ADOT layer version ARN (OPEN_TELEMETRY only). */
    public readonly layerArn?: string,
  ) {}
}
