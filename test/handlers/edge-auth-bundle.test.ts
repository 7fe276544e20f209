/**
 * The Lambda@Edge JWT verifier as it is deployed: the bundle (assets/lambdas/edge-auth) with its
 * configuration file beside it, in a process of its own (one Lambda container), against a local
 * HTTPS issuer whose self-signed certificate the process trusts through NODE_EXTRA_CA_CERTS.
 * Tokens are RS256, signed with the issuer's key.
 */
import { generateKeyPairSync, createSign } from 'node:crypto';
import * as net from 'node:net';
import type { CloudFrontRequestEvent } from 'aws-lambda';
import { EDGE_AUTH_CONFIG_FILE, EDGE_TENANT_HEADER, type EdgeAuthRuntimeConfig } from '../../constructs/contract/edge';
import { BundleProcess } from '../support/bundle-process';
import { LocalJwksServer } from '../support/jwks-server';

const AUDIENCE = 'edge-client';

interface EdgeRequest {
  uri: string;
  querystring: string;
  headers: Record<string, Array<{ key?: string; value: string }>>;
}
interface EdgeResponse {
  status: string;
  headers: Record<string, Array<{ key?: string; value: string }>>;
  body: string;
}

function viewerRequest(headers: Record<string, string>): CloudFrontRequestEvent {
  return {
    Records: [{
      cf: {
        config: { distributionDomainName: 'd111111abcdef8.cloudfront.net', distributionId: 'EDFDVBD6EXAMPLE', eventType: 'viewer-request', requestId: 'req-1' },
        request: {
          clientIp: '203.0.113.10',
          method: 'GET',
          uri: '/v1/static-answers',
          querystring: 'q=opening%20hours',
          headers: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), [{ key: k, value: v }]])),
        },
      },
    }],
  };
}

function startVerifier(issuer: LocalJwksServer | { issuer: string }, caFile: string): BundleProcess {
  const config: EdgeAuthRuntimeConfig = { issuer: issuer.issuer, audience: [AUDIENCE, 'second-audience'], tenantClaim: 'tenant_id' };
  return BundleProcess.start('edge-auth', { env: { NODE_EXTRA_CA_CERTS: caFile }, files: { [EDGE_AUTH_CONFIG_FILE]: JSON.stringify(config) } });
}

const isResponse = (r: EdgeRequest | EdgeResponse): r is EdgeResponse => 'status' in r;

describe('the edge-auth bundle against an HTTPS JWKS', () => {
  let issuer: LocalJwksServer;
  let edge: BundleProcess;

  beforeAll(async () => {
    issuer = await LocalJwksServer.start();
    edge = startVerifier(issuer, issuer.caFile);
  });
  afterAll(async () => {
    await edge?.close();
    await issuer?.close();
  });

  const call = (headers: Record<string, string>): Promise<EdgeRequest | EdgeResponse> => edge.invoke(viewerRequest(headers));
  const withToken = (token: string, extra: Record<string, string> = {}): Promise<EdgeRequest | EdgeResponse> => call({ Authorization: `Bearer ${token}`, ...extra });

  async function expect401(token: string): Promise<EdgeResponse> {
    const result = await withToken(token);
    expect(isResponse(result)).toBe(true);
    const response = result as EdgeResponse;
    expect(response.status).toBe('401');
    expect(response.headers['www-authenticate']?.[0].value).toBe('Bearer');
    expect(response.headers['cache-control']?.[0].value).toBe('no-store');
    expect(JSON.parse(response.body)).toEqual({ error: { code: 'unauthenticated', message: expect.any(String) } });
    return response;
  }

  test('a valid token passes with x-edge-tenant set to its tenant, and the viewer\'s x-edge-tenant is dropped', async () => {
    const result = await withToken(issuer.token({ aud: AUDIENCE, tenant_id: 'acme' }), { 'X-Edge-Tenant': 'victim' });
    expect(isResponse(result)).toBe(false);
    const request = result as EdgeRequest;
    expect(request.headers[EDGE_TENANT_HEADER]).toEqual([{ key: EDGE_TENANT_HEADER, value: 'acme' }]);
    // The rest of the request goes on unchanged.
    expect(request.uri).toBe('/v1/static-answers');
    expect(request.querystring).toBe('q=opening%20hours');
    expect(request.headers.authorization[0].value).toMatch(/^Bearer /);
    expect(issuer.jwksRequests).toBe(1);
  });

  test('the JWKS is downloaded once per container', async () => {
    const before = issuer.jwksRequests;
    for (const tenant of ['t1', 't2', 't3']) {
      const result = await withToken(issuer.token({ aud: AUDIENCE, tenant_id: tenant }));
      expect((result as EdgeRequest).headers[EDGE_TENANT_HEADER][0].value).toBe(tenant);
    }
    expect(issuer.jwksRequests).toBe(before);
  });

  test('a tenant claim with characters a header cannot carry as they are is percent-encoded', async () => {
    const result = await withToken(issuer.token({ aud: AUDIENCE, tenant_id: 'Acme Corp/Zürich,eu;1' }));
    expect((result as EdgeRequest).headers[EDGE_TENANT_HEADER][0].value).toBe('Acme%20Corp%2FZ%C3%BCrich%2Ceu%3B1');
  });

  test('a numeric tenant claim is its decimal string, as API Gateway hands it to the router', async () => {
    const result = await withToken(issuer.token({ aud: AUDIENCE, tenant_id: 4711 }));
    expect((result as EdgeRequest).headers[EDGE_TENANT_HEADER][0].value).toBe('4711');
  });

  test('a numeric tenant a JSON number cannot hold exactly, or not an integer, is refused', async () => {
    // 2^53 + 1 parses as 2^53: two tenants would share one string.
    await expect401(issuer.token({ aud: AUDIENCE, tenant_id: 9007199254740993 }));
    await expect401(issuer.token({ aud: AUDIENCE, tenant_id: 1.5 }));
  });

  test('a Cognito access token (client_id, no aud) passes when its client is an accepted audience', async () => {
    const result = await withToken(issuer.token({ client_id: 'second-audience', token_use: 'access', tenant_id: 'acme' }));
    expect((result as EdgeRequest).headers[EDGE_TENANT_HEADER][0].value).toBe('acme');
  });

  test('an expired token is 401', async () => {
    const now = Math.floor(Date.now() / 1000);
    await expect401(issuer.token({ aud: AUDIENCE, tenant_id: 'acme', iat: now - 7200, exp: now - 3600 }));
  });

  test('a token of another issuer is 401', async () => {
    await expect401(issuer.token({ aud: AUDIENCE, tenant_id: 'acme', iss: 'https://evil.example.com' }));
  });

  test('a token for another audience or client is 401', async () => {
    await expect401(issuer.token({ aud: 'other-client', tenant_id: 'acme' }));
    await expect401(issuer.token({ client_id: 'other-client', tenant_id: 'acme' }));
    // aud takes precedence: a matching client_id does not rescue a wrong aud.
    await expect401(issuer.token({ aud: 'other-client', client_id: AUDIENCE, tenant_id: 'acme' }));
  });

  test('a token signed by another key under the issuer\'s kid is 401', async () => {
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    const [header, payload] = issuer.token({ aud: AUDIENCE, tenant_id: 'acme' }).split('.');
    const forged = `${header}.${payload}.${createSign('RSA-SHA256').update(`${header}.${payload}`).sign(other).toString('base64url')}`;
    await expect401(forged);
  });

  test('a token whose payload was changed after signing is 401', async () => {
    const [header, , signature] = issuer.token({ aud: AUDIENCE, tenant_id: 'acme' }).split('.');
    const payload = Buffer.from(JSON.stringify({ iss: issuer.issuer, aud: AUDIENCE, tenant_id: 'victim', exp: Math.floor(Date.now() / 1000) + 600 })).toString('base64url');
    await expect401(`${header}.${payload}.${signature}`);
  });

  test('an unsigned token (alg none) is 401', async () => {
    const b64 = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');
    const payload = { iss: issuer.issuer, aud: AUDIENCE, tenant_id: 'acme', exp: Math.floor(Date.now() / 1000) + 600 };
    await expect401(`${b64({ alg: 'none', typ: 'JWT', kid: issuer.kid })}.${b64(payload)}.`);
    // Our signature under a header that claims none.
    await expect401(issuer.sign({ header: { alg: 'none', kid: issuer.kid }, payload }));
  });

  test('a token without a tenant claim, or an empty one, is 401', async () => {
    const response = await expect401(issuer.token({ aud: AUDIENCE }));
    expect(JSON.parse(response.body).error.message).toContain('tenant_id');
    await expect401(issuer.token({ aud: AUDIENCE, tenant_id: '' }));
    await expect401(issuer.token({ aud: AUDIENCE, tenant_id: ['acme'] }));
  });

  test('no token, or not a bearer token, is 401', async () => {
    const cases: Array<Record<string, string>> = [{}, { Authorization: 'Basic dXNlcjpwYXNz' }, { Authorization: 'Bearer not a token' }];
    for (const headers of cases) {
      const result = (await call(headers)) as EdgeResponse;
      expect(result.status).toBe('401');
    }
  });
});

describe('the edge-auth bundle when the JWKS cannot be read', () => {
  test('a JWKS server that accepts and never answers gives 503 after one attempt', async () => {
    const issuer = await LocalJwksServer.start();
    issuer.mode = 'hang';
    const edge = startVerifier(issuer, issuer.caFile);
    try {
      const response = (await edge.invoke(viewerRequest({ Authorization: `Bearer ${issuer.token({ aud: AUDIENCE, tenant_id: 'acme' })}` }))) as EdgeResponse;
      // Only the verifier's own time limit ends a download the server never answers.
      expect(response.status).toBe('503');
      expect(response.headers['retry-after']?.[0].value).toBe('5');
      expect(response.headers['cache-control']?.[0].value).toBe('no-store');
      expect(JSON.parse(response.body).error.code).toBe('unavailable');
      // No retry: a hanging issuer costs one time limit, well inside the viewer request's 5 s.
      expect(issuer.jwksRequests).toBe(1);
      // It recovers once the issuer answers (the failure was not cached).
      issuer.mode = 'serve';
      const result = (await edge.invoke(viewerRequest({ Authorization: `Bearer ${issuer.token({ aud: AUDIENCE, tenant_id: 'acme' })}` }))) as EdgeRequest;
      expect(result.headers[EDGE_TENANT_HEADER][0].value).toBe('acme');
    } finally {
      await edge.close();
      await issuer.close();
    }
  });

  test('a JWKS server that is down gives 503', async () => {
    const issuer = await LocalJwksServer.start();
    const token = issuer.token({ aud: AUDIENCE, tenant_id: 'acme' });
    const { issuer: url, caFile } = issuer;
    const port = Number(new URL(url).port);
    await issuer.close();
    // Nothing listens on the port any more (a connection is refused).
    await expect(new Promise((resolve, reject) => net.connect(port, '127.0.0.1').once('connect', resolve).once('error', reject))).rejects.toThrow(/ECONNREFUSED/);
    const edge = startVerifier({ issuer: url }, caFile);
    try {
      const response = (await edge.invoke(viewerRequest({ Authorization: `Bearer ${token}` }))) as EdgeResponse;
      expect(response.status).toBe('503');
    } finally {
      await edge.close();
    }
  });

  test('a certificate the container does not trust is no JWKS: 503, never a pass', async () => {
    const issuer = await LocalJwksServer.start();
    // No NODE_EXTRA_CA_CERTS for the self-signed certificate.
    const config: EdgeAuthRuntimeConfig = { issuer: issuer.issuer, audience: [AUDIENCE], tenantClaim: 'tenant_id' };
    const edge = BundleProcess.start('edge-auth', { files: { [EDGE_AUTH_CONFIG_FILE]: JSON.stringify(config) } });
    try {
      const response = (await edge.invoke(viewerRequest({ Authorization: `Bearer ${issuer.token({ aud: AUDIENCE, tenant_id: 'acme' })}` }))) as EdgeResponse;
      expect(response.status).toBe('503');
    } finally {
      await edge.close();
      await issuer.close();
    }
  });
});
