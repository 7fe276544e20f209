import { RecordingMetrics } from './cache-doubles';
import { AiMetricNames as M } from '../../constructs/contract/metrics';
import type { HttpResponse } from '../../lambdas/core/chat-endpoint';
import { callerOf, dispatchRouterRequest, ROUTER_ROUTES, type RoutedRequest, type RouteHandlers, type RouterEvent } from '../../lambdas/core/router-dispatch';

const USER_ARN = 'arn:aws:sts::111111111111:assumed-role/Shop/alice';
const IAM = { source: 'iam' as const };

function setup(route: (request: RoutedRequest) => Promise<HttpResponse> = async () => ({ statusCode: 200, headers: {}, body: '{}' })) {
  const calls: Array<{ route: string; request: RoutedRequest }> = [];
  const handlers = Object.fromEntries(ROUTER_ROUTES.map((r) => [r, (request: RoutedRequest) => {
    calls.push({ route: r, request });
    return route(request);
  }])) as RouteHandlers;
  const metrics = new RecordingMetrics();
  const errors: Array<{ message: string; attributes: Record<string, unknown> }> = [];
  const logger = { error: (message: string, attributes: Record<string, unknown>) => errors.push({ message, attributes }) };
  const dispatch = (event: RouterEvent, tenant: Parameters<typeof callerOf>[1] = IAM) =>
    dispatchRouterRequest(handlers, event, { tenant, metrics, logger });
  return { calls, metrics, errors, dispatch };
}

const event = (routeKey: string, extra: Partial<Record<keyof RouterEvent, unknown>> = {}): RouterEvent => ({
  routeKey,
  requestContext: { authorizer: { iam: { userArn: USER_ARN } } },
  ...extra,
});

describe('dispatchRouterRequest: routes', () => {
  test.each(ROUTER_ROUTES)('%s goes to its own handler, with the caller, body and query', async (routeKey) => {
    const { calls, dispatch } = setup();
    const res = await dispatch(event(routeKey, { body: '{"a":1}', queryStringParameters: { q: 'hours?' } }));
    expect(res.statusCode).toBe(200);
    expect(calls).toEqual([{
      route: routeKey,
      request: { caller: { tenantId: 'arn:aws:iam::111111111111:role/Shop', userId: 'alice' }, body: '{"a":1}', query: { q: 'hours?' } },
    }]);
  });

  test.each(['GET /v1/chat', 'POST /v1/jobs', '$default', 'POST /v1/chat/', undefined, 42])('an unknown route key (%p) is 404, not chat', async (routeKey) => {
    const { calls, metrics, dispatch } = setup();
    const res = await dispatch({ ...event('x'), routeKey });
    expect(res.statusCode).toBe(404);
    expect(JSON.parse(res.body).error.code).toBe('not-found');
    expect(calls).toEqual([]);
    expect(metrics.sum(M.REJECTED_REQUESTS, { [M.DIMENSION_REASON]: 'not-found' })).toBe(1);
  });

  test('a base64-encoded body is decoded', async () => {
    const { calls, dispatch } = setup();
    await dispatch(event('POST /v1/chat', { body: Buffer.from('{"ü":1}').toString('base64'), isBase64Encoded: true }));
    expect(calls[0].request.body).toBe('{"ü":1}');
  });
});

describe('dispatchRouterRequest: callers that cannot be authenticated reach the route as undefined (401)', () => {
  test.each<[string, unknown]>([
    ['no requestContext', undefined],
    ['a null requestContext', null],
    ['no authorizer', {}],
    ['an authorizer without iam', { authorizer: {} }],
    ['a numeric userArn', { authorizer: { iam: { userArn: 12345 } } }],
    ['an object userArn', { authorizer: { iam: { userArn: { arn: USER_ARN } } } }],
    ['an array userArn', { authorizer: { iam: { userArn: [USER_ARN] } } }],
    ['an empty userArn', { authorizer: { iam: { userArn: '' } } }],
    ['a non-string Cognito identity', { authorizer: { iam: { userArn: USER_ARN, cognitoIdentity: { identityId: 7 } } } }],
    ['a string authorizer', { authorizer: 'iam' }],
  ])('%s', async (_, requestContext) => {
    const { calls, errors, dispatch } = setup();
    await dispatch({ routeKey: 'POST /v1/chat', requestContext });
    expect(calls).toHaveLength(1);
    expect(calls[0].request.caller).toBeUndefined();
    expect(errors).toEqual([]);
  });

  test.each<[string, unknown]>([
    ['a numeric tenant claim', { authorizer: { jwt: { claims: { tenant_id: 7, sub: 'u' } } } }],
    ['claims that are a string', { authorizer: { jwt: { claims: 'tenant_id=a' } } }],
    ['no jwt', { authorizer: { iam: { userArn: USER_ARN } } }],
  ])('JWT: %s', async (_, requestContext) => {
    const { calls, dispatch } = setup();
    await dispatch({ routeKey: 'POST /v1/chat', requestContext }, { source: 'jwt' });
    expect(calls[0].request.caller).toBeUndefined();
  });

  test('JWT: the tenant claim and sub make the caller; a non-string sub is no user id', async () => {
    expect(callerOf({ authorizer: { jwt: { claims: { tenant_id: 'acme', sub: 'u-1' } } } }, { source: 'jwt' })).toEqual({ tenantId: 'acme', userId: 'u-1' });
    expect(callerOf({ authorizer: { jwt: { claims: { tenant_id: 'acme', sub: 1 } } } }, { source: 'jwt' })).toEqual({ tenantId: 'acme', userId: undefined });
  });

  test('IAM with Cognito credentials: the identity id is the user', () => {
    const requestContext = { authorizer: { iam: { userArn: 'arn:aws:sts::111111111111:assumed-role/Web/CognitoIdentityCredentials', cognitoIdentity: { identityId: 'us-east-1:abc' } } } };
    expect(callerOf(requestContext, IAM)).toEqual({ tenantId: 'arn:aws:iam::111111111111:role/Web', userId: 'cognito:us-east-1:abc' });
  });
});

describe('dispatchRouterRequest: anything unexpected', () => {
  test('a route that throws: 500 without details, the error logged', async () => {
    const { errors, dispatch } = setup(async () => {
      throw new RangeError('Maximum call stack size exceeded at secret.internal:6379');
    });
    const res = await dispatch(event('POST /v1/chat'));
    expect(res.statusCode).toBe(500);
    expect(JSON.parse(res.body)).toEqual({ error: { code: 'internal', message: 'Internal error' } });
    expect(res.body).not.toContain('secret.internal');
    expect(errors).toEqual([{ message: 'unexpected error', attributes: { error: expect.objectContaining({ name: 'RangeError', message: expect.stringContaining('secret.internal') }) } }]);
  });

  test('a thrown non-Error is a 500 too', async () => {
    const { dispatch, errors } = setup(() => Promise.reject('boom'));
    expect((await dispatch(event('DELETE /v1/context'))).statusCode).toBe(500);
    expect(errors).toHaveLength(1);
  });
});
