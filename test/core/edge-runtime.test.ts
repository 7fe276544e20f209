/** The router's origin secret check, health route and edge-verified static answers; the rotation steps. */
import type { RouterRuntimeConfig } from '../../constructs/contract/runtime-config';
import type { AnswerCaches } from '../../lambdas/core/answer-caches';
import { rotateOriginSecret, type OriginHeaders, type RotationDistribution, type RotationSecrets } from '../../lambdas/core/origin-secret-rotation';
import { matchesOriginSecret, type OriginSecretVerifier } from '../../lambdas/core/origin-verification';
import { dispatchRouterRequest, type RouteHandlers } from '../../lambdas/core/router-dispatch';
import { handleStaticAnswer } from '../../lambdas/core/static-answers-endpoint';

const metrics = { add: () => undefined } as never;
const logger = { error: () => undefined };

describe('matchesOriginSecret', () => {
  test('accepts any accepted value, rejects others, missing and different lengths', () => {
    expect(matchesOriginSecret(['current-value', 'pending-value'], 'pending-value')).toBe(true);
    expect(matchesOriginSecret(['current-value'], 'current-valuE')).toBe(false);
    expect(matchesOriginSecret(['current-value'], 'current')).toBe(false);
    expect(matchesOriginSecret(['current-value'], undefined)).toBe(false);
    expect(matchesOriginSecret([''], '')).toBe(false);
  });
});

describe('dispatch with origin verification', () => {
  const seen: Array<string | undefined> = [];
  const ok = async (r: { edgeTenant?: string }): Promise<never> => {
    seen.push(r.edgeTenant);
    return { statusCode: 200, headers: {}, body: '{}' } as never;
  };
  const handlers = new Proxy({}, { get: () => ok }) as RouteHandlers;
  const verifier = (verdict: 'valid' | 'invalid' | 'unavailable'): OriginSecretVerifier & { calls: Array<string | undefined> } => {
    const calls: Array<string | undefined> = [];
    return { calls, verify: async (presented) => (calls.push(presented), verdict) };
  };
  const event = (routeKey: string, headers: Record<string, string> = {}): object => ({ routeKey, headers, requestContext: {} });
  const deps = (origin?: OriginSecretVerifier) => ({ tenant: { source: 'jwt' as const, claim: 'tenant_id' }, metrics, logger, origin });

  test('health answers 200 {"status":"ok"} without any origin check', async () => {
    const origin = verifier('invalid');
    const res = await dispatchRouterRequest(handlers, event('GET /v1/health'), deps(origin));
    expect(res.statusCode).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ status: 'ok' });
    expect(origin.calls).toHaveLength(0);
  });

  test('an invalid or missing secret is 403 without the secret; an unreadable one is 503', async () => {
    const invalid = verifier('invalid');
    const res = await dispatchRouterRequest(handlers, event('POST /v1/chat', { 'x-origin-verify': 'guess' }), deps(invalid));
    expect(res.statusCode).toBe(403);
    expect(invalid.calls).toEqual(['guess']);
    expect(res.body).not.toContain('guess');
    expect((await dispatchRouterRequest(handlers, event('POST /v1/chat'), deps(verifier('unavailable')))).statusCode).toBe(503);
  });

  test('a valid secret reaches the route with x-edge-tenant; without verification the header is ignored', async () => {
    seen.length = 0;
    const headers = { 'x-origin-verify': 's', 'x-edge-tenant': 'acme' };
    expect((await dispatchRouterRequest(handlers, event('GET /v1/static-answers', headers), deps(verifier('valid')))).statusCode).toBe(200);
    await dispatchRouterRequest(handlers, event('GET /v1/static-answers', headers), deps(undefined));
    expect(seen).toEqual(['acme', undefined]);
  });

  test('without an authorizer, the verified edge tenant is the caller of static answers only', async () => {
    const callers: unknown[] = [];
    const record = new Proxy({}, { get: () => async (r: { caller?: unknown }) => (callers.push(r.caller), { statusCode: 200, headers: {}, body: '{}' }) }) as RouteHandlers;
    const headers = { 'x-origin-verify': 's', 'x-edge-tenant': 'acme%20corp' };
    await dispatchRouterRequest(record, event('GET /v1/static-answers', headers), deps(verifier('valid')));
    await dispatchRouterRequest(record, event('POST /v1/chat', headers), deps(verifier('valid')));
    await dispatchRouterRequest(record, event('GET /v1/static-answers', headers), deps(undefined));
    await dispatchRouterRequest(record, event('GET /v1/static-answers', { ...headers, 'x-edge-tenant': '%E0%A4%A' }), deps(verifier('valid')));
    expect(callers).toEqual([{ tenantId: 'acme corp' }, undefined, undefined, undefined]);
  });
});

describe('static answers through the edge', () => {
  const caches = { lookupStatic: async () => ({ staticAnswerId: 'faq-1', answer: { text: 'Returns within 30 days.' } }) } as unknown as AnswerCaches;
  const config = {
    staticAnswers: { maxAgeSeconds: 300 },
    originVerification: { secretArn: 'arn', refreshSeconds: 300, edgeCacheSeconds: 3600 },
  } as unknown as RouterRuntimeConfig;
  const caller = { tenantId: 'tenant a/ü', userId: 'u1' };
  const ask = (edgeTenant?: string) => handleStaticAnswer(caches, config, metrics, { question: 'returns?', caller, edgeTenant });

  test('edge tenant equal to the authorizer tenant: public with s-maxage', async () => {
    const res = await ask(encodeURIComponent('tenant a/ü'));
    expect(res.statusCode).toBe(200);
    expect(res.headers['cache-control']).toBe('public, max-age=0, s-maxage=3600');
  });

  test('no edge tenant: private as before', async () => {
    expect((await ask(undefined)).headers['cache-control']).toBe('private, max-age=300');
  });

  test('another edge tenant: 403, never cacheable', async () => {
    const res = await ask('tenant-b');
    expect(res.statusCode).toBe(403);
    expect(res.headers['cache-control']).toBe('no-store');
  });
});

describe('origin secret rotation', () => {
  class Secrets implements RotationSecrets {
    versions: Record<string, { stages: string[]; value?: string }> = { v1: { stages: ['AWSCURRENT'], value: 'old' } };
    puts = 0;
    start(token: string): void {
      for (const v of Object.values(this.versions)) v.stages = v.stages.filter((s) => s !== 'AWSPENDING');
      this.versions[token] = { stages: ['AWSPENDING'] };
    }
    async describe() {
      return { rotationEnabled: true, versions: Object.fromEntries(Object.entries(this.versions).map(([k, v]) => [k, [...v.stages]])) };
    }
    async value(_: string, s: { versionId?: string; stage: string }) {
      const hit = Object.entries(this.versions).find(([id, v]) => (!s.versionId || id === s.versionId) && v.stages.includes(s.stage));
      return hit?.[1].value;
    }
    async randomValue(length: number) {
      return 'N'.repeat(length - 1) + String(this.puts);
    }
    async putPending(_: string, id: string, value: string) {
      this.puts++;
      this.versions[id].value = value;
    }
    async promote(_: string, id: string, from: string) {
      for (const v of Object.values(this.versions)) v.stages = v.stages.filter((s) => s !== 'AWSPREVIOUS');
      this.versions[from].stages = this.versions[from].stages.filter((s) => s !== 'AWSCURRENT').concat('AWSPREVIOUS');
      this.versions[id].stages.push('AWSCURRENT');
    }
  }
  class Distribution implements RotationDistribution {
    origins_: Array<{ originId: string; headers: Array<{ name: string; value: string }> }> = [
      { originId: 'primary', headers: [{ name: 'x-origin-verify', value: 'old' }, { name: 'x-other', value: 'keep' }] },
      { originId: 'secondary', headers: [] },
    ];
    updates = 0;
    async origins(): Promise<OriginHeaders[]> {
      return this.origins_;
    }
    async setOriginHeader(_: string, header: string, value: string) {
      if (this.origins_.every((o) => o.headers.some((h) => h.name === header && h.value === value))) return false;
      for (const o of this.origins_) o.headers = [...o.headers.filter((h) => h.name !== header), { name: header, value }];
      this.updates++;
      return true;
    }
  }

  test('four steps, each retried, end with the new value current on every origin', async () => {
    const secrets = new Secrets();
    const distribution = new Distribution();
    secrets.start('v2');
    const deps = { secrets, distribution, distributionId: 'E123' };
    for (const Step of ['createSecret', 'setSecret', 'testSecret', 'finishSecret']) {
      await rotateOriginSecret({ SecretId: 's', ClientRequestToken: 'v2', Step }, deps);
      await rotateOriginSecret({ SecretId: 's', ClientRequestToken: 'v2', Step }, deps);
    }
    const value = secrets.versions.v2.value!;
    expect(value).toHaveLength(64);
    expect(secrets.puts).toBe(1);
    expect(distribution.updates).toBe(1);
    expect(distribution.origins_.every((o) => o.headers.some((h) => h.name === 'x-origin-verify' && h.value === value))).toBe(true);
    expect(distribution.origins_[0].headers).toContainEqual({ name: 'x-other', value: 'keep' });
    expect(secrets.versions.v2.stages).toContain('AWSCURRENT');
    expect(secrets.versions.v1.stages).toEqual(['AWSPREVIOUS']);
  });

  test('testSecret fails while an origin lacks the pending value', async () => {
    const secrets = new Secrets();
    secrets.start('v2');
    const deps = { secrets, distribution: new Distribution(), distributionId: 'E123' };
    await rotateOriginSecret({ SecretId: 's', ClientRequestToken: 'v2', Step: 'createSecret' }, deps);
    await expect(rotateOriginSecret({ SecretId: 's', ClientRequestToken: 'v2', Step: 'testSecret' }, deps)).rejects.toThrow(/primary, secondary/);
  });
});
