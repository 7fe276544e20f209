import { HttpError, ModelInvocationError, classifyAwsError, type ModelErrorKind } from '../../lambdas/core/errors';

/** An error shaped like one thrown by an AWS SDK v3 client. */
function sdkError(name: string, status?: number, message = 'details'): Error {
  const err = new Error(message) as Error & { $metadata?: { httpStatusCode?: number } };
  err.name = name;
  if (status !== undefined) err.$metadata = { httpStatusCode: status };
  return err;
}

describe('classifyAwsError', () => {
  test.each<[string, unknown, ModelErrorKind]>([
    // Throttling and capacity: another tier may have room.
    ['Bedrock ThrottlingException (429)', sdkError('ThrottlingException', 429), 'throttled'],
    ['Bedrock ServiceQuotaExceededException (400)', sdkError('ServiceQuotaExceededException', 400), 'throttled'],
    ['Bedrock ModelNotReadyException (429)', sdkError('ModelNotReadyException', 429), 'throttled'],
    ['TooManyRequestsException without metadata', sdkError('TooManyRequestsException'), 'throttled'],
    ['any error with status 429', sdkError('SomethingElse', 429), 'throttled'],
    [
      'SageMaker inference component without a copy (ValidationError 400): scaled to zero, capacity comes in minutes',
      sdkError('ValidationError', 400, 'Inference Component has no capacity to process this request. ApplicationAutoScaling may be in-progress (if configured) or try to increase the capacity by invoking UpdateInferenceComponentRuntimeConfig API.'),
      'throttled',
    ],
    // Configuration: this tier cannot work, another one might.
    ['AccessDeniedException (403)', sdkError('AccessDeniedException', 403), 'config'],
    ['ResourceNotFoundException (404)', sdkError('ResourceNotFoundException', 404), 'config'],
    ['UnrecognizedClientException (403)', sdkError('UnrecognizedClientException', 403), 'config'],
    ['ExpiredTokenException', sdkError('ExpiredTokenException', 400), 'config'],
    ['any error with status 403', sdkError('Forbidden', 403), 'config'],
    ['any error with status 404', sdkError('NotFound', 404), 'config'],
    // The request itself is wrong: no other tier will take it.
    ['ValidationException (400)', sdkError('ValidationException', 400), 'invalid'],
    ['ValidationException without metadata', sdkError('ValidationException'), 'invalid'],
    ['any error with status 400', sdkError('BadRequest', 400), 'invalid'],
    ['any error with status 413', sdkError('PayloadTooLarge', 413), 'invalid'],
    ['any error with status 422', sdkError('Unprocessable', 422), 'invalid'],
    // The service failed.
    ['InternalServerException (500)', sdkError('InternalServerException', 500), 'server'],
    ['ServiceUnavailableException (503)', sdkError('ServiceUnavailableException', 503), 'server'],
    ['Bedrock ModelErrorException (424)', sdkError('ModelErrorException', 424), 'server'],
    ['SageMaker ModelError (424)', sdkError('ModelError', 424), 'server'],
    ['any error with status 502', sdkError('BadGateway', 502), 'server'],
    ['InternalServerException without metadata', sdkError('InternalServerException'), 'server'],
    ['an answer (200) the SDK could not deserialize', sdkError('SyntaxError', 200, 'Unexpected token < in JSON at position 0'), 'server'],
    // No HTTP response at all.
    ['a socket error', Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }), 'network'],
    ['a plain Error', new Error('boom'), 'network'],
    ['a thrown string', 'boom', 'network'],
    ['undefined', undefined, 'network'],
    // Aborted or timed out.
    ['AbortError', sdkError('AbortError'), 'timeout'],
    ['TimeoutError', sdkError('TimeoutError'), 'timeout'],
  ])('%s → %s', (_name, err, kind) => {
    const e = classifyAwsError('small', err, false);
    expect(e).toBeInstanceOf(ModelInvocationError);
    expect(e.kind).toBe(kind);
    expect(e.tierId).toBe('small');
  });

  test('a timeout noticed by the caller wins over the error it caused', () => {
    for (const err of [sdkError('ThrottlingException', 429), sdkError('ValidationException', 400), new Error('aborted')]) {
      expect(classifyAwsError('medium', err, true).kind).toBe('timeout');
    }
  });

  test('keeps the HTTP status and names the error in the message', () => {
    const e = classifyAwsError('large', sdkError('ThrottlingException', 429, 'Too many tokens'), false);
    expect(e.statusCode).toBe(429);
    expect(e.message).toContain('ThrottlingException');
    expect(e.message).toContain('Too many tokens');
  });

  test('a ModelInvocationError passes through unchanged', () => {
    const original = new ModelInvocationError('config', 'medium', 'no endpoint', 404);
    expect(classifyAwsError('small', original, true)).toBe(original);
  });
});

describe('ModelInvocationError.retryable', () => {
  test.each<[ModelErrorKind, boolean]>([
    ['throttled', true],
    ['timeout', true],
    ['server', true],
    ['network', true],
    ['config', true],
    ['empty', true],
    ['invalid-usage', true],
    ['invalid', false],
  ])('%s → %p', (kind, retryable) => {
    expect(new ModelInvocationError(kind, 't', 'x').retryable).toBe(retryable);
  });

  test('follows the classification of SDK errors', () => {
    expect(classifyAwsError('t', sdkError('ValidationException', 400), false).retryable).toBe(false);
    expect(classifyAwsError('t', sdkError('ThrottlingException', 429), false).retryable).toBe(true);
  });
});

describe('HttpError', () => {
  test('carries status, reason and headers', () => {
    const e = new HttpError(503, 'busy', 'unavailable', { 'retry-after': '2' });
    expect(e).toBeInstanceOf(Error);
    expect(e.statusCode).toBe(503);
    expect(e.reason).toBe('unavailable');
    expect(e.headers).toEqual({ 'retry-after': '2' });
    expect(e.message).toBe('busy');
    expect(new HttpError(400, 'bad', 'invalid').headers).toEqual({});
  });
});

describe('classifyAwsError: validation errors that describe the tier, not the request', () => {
  test.each([
    'Input is too long for requested model.',
    'The model returned the following errors: prompt is too long: 210000 tokens > 200000 maximum',
    "This model's maximum context length is 8192 tokens",
    "Invocation of model ID amazon.nova-pro-v1:0 with on-demand throughput isn't supported.",
    'The provided model identifier is invalid.',
  ])('"%s" → config (the request moves on to the next tier)', (message) => {
    const err = Object.assign(new Error(message), { name: 'ValidationException', $metadata: { httpStatusCode: 400 } });
    const classified = classifyAwsError('small', err, false);
    expect(classified.kind).toBe('config');
    expect(classified.retryable).toBe(true);
  });

  test('a plain validation error of the request stays invalid (no fallback)', () => {
    const err = Object.assign(new Error('messages: roles must alternate'), { name: 'ValidationException', $metadata: { httpStatusCode: 400 } });
    expect(classifyAwsError('small', err, false).kind).toBe('invalid');
  });
});
