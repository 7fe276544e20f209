/** An error that maps to an HTTP response the client is meant to read. */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
    /** Machine-readable reason, also the `Reason` dimension of RejectedRequests. */
    readonly reason: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

/**
 * Why a model invocation failed. Every kind except `invalid` moves the request on to the
 * next tier: `invalid` means the model rejected the request itself, which another tier would
 * most likely reject too.
 *
 * - `empty`: the tier answered without any text (no content, only whitespace, or only tool use);
 * - `invalid-usage`: the tier reported a token usage that cannot be true (negative, fractional,
 *   not a number, more output than was allowed, more input than the prompt can hold); such an
 *   answer is neither billed nor cached.
 */
export type ModelErrorKind = 'throttled' | 'timeout' | 'server' | 'network' | 'config' | 'invalid' | 'empty' | 'invalid-usage';

export class ModelInvocationError extends Error {
  constructor(
    readonly kind: ModelErrorKind,
    readonly tierId: string,
    message: string,
    readonly statusCode?: number,
  ) {
    super(message);
    this.name = 'ModelInvocationError';
  }

  get retryable(): boolean {
    return this.kind !== 'invalid';
  }
}

/** Validation messages that describe a limit or setup of the tier rather than a bad request. */
const TIER_LIMIT = /too long|too many (input )?tokens|context (length|window)|maximum context|input length|exceeds? the max|token limit|on-demand throughput|(isn't|is not) supported|model identifier is invalid/i;

/** SageMaker's answer when an inference component has no copy to serve the request. */
const NO_CAPACITY = /no capacity to process/i;

/**
 * Classifies an AWS SDK error (or an abort) into a {@link ModelErrorKind}.
 * Works for any SDK v3 client: it reads `name` and `$metadata.httpStatusCode`.
 */
export function classifyAwsError(tierId: string, err: unknown, timedOut: boolean): ModelInvocationError {
  if (err instanceof ModelInvocationError) return err;
  const e = err as { name?: string; message?: string; $metadata?: { httpStatusCode?: number }; code?: string };
  const name = e?.name ?? 'Error';
  const status = e?.$metadata?.httpStatusCode;
  const message = `${name}: ${e?.message ?? String(err)}`;
  if (timedOut || name === 'AbortError' || name === 'TimeoutError') {
    return new ModelInvocationError('timeout', tierId, `timed out (${message})`, status);
  }
  if (/Throttl|TooManyRequests|ServiceQuotaExceeded|ModelNotReady/i.test(name) || status === 429) {
    return new ModelInvocationError('throttled', tierId, message, status);
  }
  if (/AccessDenied|ResourceNotFound|UnrecognizedClient|InvalidSignature|ExpiredToken/i.test(name) || status === 403 || status === 404) {
    return new ModelInvocationError('config', tierId, message, status);
  }
  if (NO_CAPACITY.test(message) && (/Validation/.test(name) || status === 400)) {
    // An inference component scaled to zero (or still scaling out): capacity arrives in minutes,
    // and meanwhile the request moves on to the next tier.
    return new ModelInvocationError('throttled', tierId, message, status);
  }
  if ((name === 'ValidationException' || status === 400 || status === 413 || status === 422) && TIER_LIMIT.test(message)) {
    // The request exceeds this tier (its context window, or the tier is misconfigured): a more
    // capable tier may well take it, so it counts as the tier's failure and the request moves on.
    return new ModelInvocationError('config', tierId, message, status);
  }
  if (name === 'ValidationException' || status === 400 || status === 413 || status === 422) {
    return new ModelInvocationError('invalid', tierId, message, status);
  }
  if (status !== undefined && status >= 500) {
    return new ModelInvocationError('server', tierId, message, status);
  }
  if (/ModelError|InternalServer|ServiceUnavailable|ModelTimeout/i.test(name)) {
    return new ModelInvocationError('server', tierId, message, status);
  }
  if (status !== undefined && status >= 200 && status < 300) {
    // An answer arrived but could not be read (not JSON, cut short): the provider's fault, not the network's.
    return new ModelInvocationError('server', tierId, `unreadable answer (${message})`, status);
  }
  return new ModelInvocationError('network', tierId, message, status);
}
