/**
 * The HTTP ⇄ API Gateway HTTP API (payload 2.0) translation that `serve` runs the router bundle on
 * and the handler tests build their events with: what API Gateway documents for Lambda proxy
 * integrations with payload format 2.0.
 */
import { gzipSync } from 'node:zlib';
import { fromHttpApiResult, lambdaContext, toHttpApiEvent } from '../../lambdas/adapters/http-api-event';
import { decodedBody } from '../../lambdas/core/router-dispatch';

describe('request → event', () => {
  test('headers lower-cased and joined, cookies in `cookies`, repeated query parameters joined, the route key', () => {
    const event = toHttpApiEvent({
      method: 'get',
      url: '/v1/static-answers?q=returns&lang=en&lang=fr',
      headers: { 'Accept': 'application/json', 'X-Trace': ['a', 'b'], 'Cookie': ['session=1; theme=dark', 'ab=test'], 'User-Agent': 'curl/8' },
    });
    expect(event.routeKey).toBe('GET /v1/static-answers');
    expect(event.rawPath).toBe('/v1/static-answers');
    expect(event.rawQueryString).toBe('q=returns&lang=en&lang=fr');
    expect(event.queryStringParameters).toEqual({ q: 'returns', lang: 'en,fr' });
    expect(event.headers).toEqual({ 'accept': 'application/json', 'x-trace': 'a,b', 'user-agent': 'curl/8' });
    expect(event.cookies).toEqual(['session=1', 'theme=dark', 'ab=test']);
    expect(event.requestContext.http).toMatchObject({ method: 'GET', path: '/v1/static-answers', userAgent: 'curl/8' });
    expect(event.body).toBeUndefined();
    expect(event.isBase64Encoded).toBe(false);
  });

  test('a JSON body stays text; a binary body is base64-encoded; either decodes to the bytes sent', () => {
    const json = toHttpApiEvent({ method: 'POST', url: '/v1/chat', headers: { 'content-type': 'application/json; charset=utf-8' }, body: Buffer.from('{"q":"é"}') });
    expect(json).toMatchObject({ body: '{"q":"é"}', isBase64Encoded: false });

    const bytes = Buffer.from([0xff, 0x00, 0x10, 0x80]);
    const binary = toHttpApiEvent({ method: 'POST', url: '/v1/chat', headers: { 'content-type': 'application/octet-stream' }, body: bytes });
    expect(binary.isBase64Encoded).toBe(true);
    expect(Buffer.from(binary.body!, 'base64')).toEqual(bytes);

    const forced = toHttpApiEvent({ method: 'POST', url: '/v1/chat', headers: { 'content-type': 'application/json' }, body: '{"a":1}', forceBase64: true });
    expect(decodedBody(forced)).toBe('{"a":1}');
  });

  test('no byte is lost: a compressed or non-UTF-8 body with a text content type goes base64', () => {
    const gzipped = gzipSync('{"q":"hello"}');
    const compressed = toHttpApiEvent({ method: 'POST', url: '/v1/chat', headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' }, body: gzipped });
    expect(compressed.isBase64Encoded).toBe(true);
    expect(Buffer.from(compressed.body!, 'base64')).toEqual(gzipped);

    const latin1 = Buffer.from([0x7b, 0x22, 0xe9, 0x22, 0x7d]); // {"é"} in Latin-1: not UTF-8
    const notUtf8 = toHttpApiEvent({ method: 'POST', url: '/v1/chat', headers: { 'content-type': 'application/json' }, body: latin1 });
    expect(notUtf8.isBase64Encoded).toBe(true);
    expect(Buffer.from(notUtf8.body!, 'base64')).toEqual(latin1);

    const identity = toHttpApiEvent({ method: 'POST', url: '/v1/chat', headers: { 'content-type': 'application/json', 'content-encoding': 'identity' }, body: '{"a":1}' });
    expect(identity).toMatchObject({ body: '{"a":1}', isBase64Encoded: false });
  });

  test('the authorizer context: IAM or JWT where the router reads it, none at all when absent', () => {
    const iam = toHttpApiEvent({ method: 'POST', url: '/v1/chat', authorizer: { iam: { userArn: 'arn:aws:sts::111122223333:assumed-role/T/u' } } });
    expect((iam.requestContext as any).authorizer.iam).toMatchObject({ userArn: 'arn:aws:sts::111122223333:assumed-role/T/u', cognitoIdentity: null });
    const jwt = toHttpApiEvent({ method: 'POST', url: '/v1/chat', authorizer: { jwt: { claims: { tenant_id: 'acme', sub: 'ana' } } } });
    expect((jwt.requestContext as any).authorizer.jwt.claims).toEqual({ tenant_id: 'acme', sub: 'ana' });
    const none = toHttpApiEvent({ method: 'GET', url: '/v1/health' });
    expect('authorizer' in none.requestContext).toBe(false);
  });

  test('the Lambda context counts down to the deadline and never below zero', () => {
    expect(lambdaContext('router', Date.now() - 1_000).getRemainingTimeInMillis()).toBe(0);
    const remaining = lambdaContext('router', Date.now() + 60_000).getRemainingTimeInMillis();
    expect(remaining).toBeGreaterThan(0);
    expect(remaining).toBeLessThanOrEqual(60_000);
  });
});

describe('result → response', () => {
  test('status, headers (lower-cased), one set-cookie per cookie, a base64 body decoded', () => {
    const out = fromHttpApiResult({
      statusCode: 201,
      headers: { 'Content-Type': 'image/png', 'x-cache': 'miss' },
      cookies: ['a=1; Path=/', 'b=2; HttpOnly'],
      body: Buffer.from([1, 2, 3]).toString('base64'),
      isBase64Encoded: true,
    });
    expect(out.statusCode).toBe(201);
    expect(out.headers).toEqual({ 'content-type': 'image/png', 'x-cache': 'miss', 'set-cookie': ['a=1; Path=/', 'b=2; HttpOnly'] });
    expect(out.body).toEqual(Buffer.from([1, 2, 3]));
  });

  test('a result without statusCode is a 200 whose body is the result as JSON', () => {
    const object = fromHttpApiResult({ answer: 42 });
    expect(object).toMatchObject({ statusCode: 200, headers: { 'content-type': 'application/json' } });
    expect(object.body.toString()).toBe('{"answer":42}');
    expect(fromHttpApiResult('plain').body.toString()).toBe('plain');
  });
});
