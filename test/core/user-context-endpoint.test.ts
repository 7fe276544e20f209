import { MapAnswerCache, MapUserContextStore, RecordingMetrics, routerConfig, USER_CONTEXT } from './cache-doubles';
import { AiMetricNames as M } from '../../constructs/contract/metrics';
import type { RouterRuntimeConfig } from '../../constructs/contract/runtime-config';
import type { Caller } from '../../lambdas/core/cache-key';
import type { HttpResponse } from '../../lambdas/core/chat-endpoint';
import { InMemoryVectorStore } from '../../lambdas/core/semantic/memory-vector-store';
import { FORGET_TIMEOUT_MS, handleUserContext, type PersonalAnswerStores } from '../../lambdas/core/user-context-endpoint';

const ALICE: Caller = { tenantId: 'tenant-a', userId: 'alice' };

function setup(
  config: RouterRuntimeConfig = routerConfig(),
  withStore = true,
  answers: PersonalAnswerStores = { exact: new MapAnswerCache(), vectors: new InMemoryVectorStore() },
) {
  const store = new MapUserContextStore();
  const metrics = new RecordingMetrics();
  // `caller` 'none' stands for a request without an authorizer context.
  const callerOf = (caller: Caller | 'none') => (caller === 'none' ? undefined : caller);
  const put = (body: unknown, caller: Caller | 'none' = ALICE) => handleUserContext(withStore ? store : undefined, config, metrics, {
    method: 'PUT', body: typeof body === 'string' ? body : JSON.stringify(body), caller: callerOf(caller),
  });
  const del = (caller: Caller | 'none' = ALICE) => handleUserContext(withStore ? store : undefined, config, metrics, {
    method: 'DELETE', body: undefined, caller: callerOf(caller), answers,
  });
  return { store, metrics, put, del };
}

function errorOf(res: HttpResponse): { code: string; message: string } {
  return JSON.parse(res.body).error;
}

describe('PUT /v1/context/preferences', () => {
  test('413 for a body over maxRequestBytes, before it is parsed', async () => {
    const { store, put } = setup(routerConfig({ maxRequestBytes: 100 }));
    const res = await put({ preferences: { language: 'x'.repeat(200) } });
    expect(res.statusCode).toBe(413);
    expect(errorOf(res)).toMatchObject({ code: 'too-large', message: expect.stringMatching(/limit is 100 bytes/) });
    expect(store.preferenceWrites).toHaveLength(0);
  });

  test('204; the preferences are replaced with the configured TTL', async () => {
    const { store, put } = setup();
    store.seedPreferences('tenant-a', 'alice', { tone: 'formal' });

    const res = await put({ preferences: { 'language': 'de', 'answer.length': 'short' } });

    expect(res).toEqual({ statusCode: 204, headers: {}, body: '' });
    expect(store.preferenceWrites).toEqual([
      { tenantId: 'tenant-a', userId: 'alice', preferences: { 'language': 'de', 'answer.length': 'short' }, ttlSeconds: USER_CONTEXT.ttlSeconds },
    ]);
    expect(store.preferencesOf('tenant-a', 'alice')).toEqual({ 'language': 'de', 'answer.length': 'short' });
  });

  test('exactly 32 preferences, names of 64 characters and values of 256 characters are accepted', async () => {
    const { store, put } = setup();
    const preferences = Object.fromEntries(Array.from({ length: 32 }, (_, i) => [`p${i}`.padEnd(64, 'x'), 'v'.repeat(256)]));
    expect((await put({ preferences })).statusCode).toBe(204);
    expect(Object.keys(store.preferenceWrites[0].preferences)).toHaveLength(32);
  });

  test.each<[string, unknown, RegExp]>([
    ['a body that is not JSON', '{"preferences": {', /JSON/],
    ['an empty body', '', /JSON/],
    ['an unknown top-level key', { preferences: {}, language: 'de' }, /"language"/],
    ['no preferences', {}, /preferences/],
    ['preferences that are not an object', { preferences: ['de'] }, /preferences/],
    ['a value that is not a string', { preferences: { language: 7 } }, /preferences\.language/],
    ['a value longer than 256 characters', { preferences: { language: 'x'.repeat(257) } }, /preferences\.language.*256/],
    ['more than 32 preferences', { preferences: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`p${i}`, 'v'])) }, /32/],
    ['a body nested 10,000 levels deep', `{"preferences": {"language": ${'['.repeat(10_000)}${']'.repeat(10_000)}}}`, /more than 32 levels deep; the limit is 32/],
  ])('400 for %s, naming the problem', async (_name, body, message) => {
    const { store, metrics, put } = setup();
    const res = await put(body);
    expect(res.statusCode).toBe(400);
    expect(errorOf(res)).toMatchObject({ code: 'invalid' });
    expect(errorOf(res).message).toMatch(message);
    expect(store.preferenceWrites).toHaveLength(0);
    expect(metrics.sum(M.REJECTED_REQUESTS, { [M.DIMENSION_REASON]: 'invalid' })).toBe(1);
  });

  test.each(['bad name', '1language', '_private', 'x'.repeat(65), ''])('400 for the preference name %p', async (name) => {
    const { store, put } = setup();
    const res = await put({ preferences: { [name]: 'v' } });
    expect(res.statusCode).toBe(400);
    expect(errorOf(res)).toMatchObject({ code: 'invalid' });
    expect(errorOf(res).message).toContain('preferences');
    expect(store.preferenceWrites).toHaveLength(0);
  });

  test('the message for a bad preference name names it and says which names are allowed', async () => {
    const { put } = setup();
    const { message } = errorOf(await put({ preferences: { 'bad name': 'v' } }));
    expect(message).toContain('bad name');
    expect(message).toMatch(/letters, digits/);
  });

  test('503 when a configured cache level is not reachable: a 204 would claim answers were forgotten', async () => {
    for (const answers of [{ vectors: new InMemoryVectorStore() }, { exact: new MapAnswerCache() }]) {
      const res = await setup(routerConfig(), true, answers).del();
      expect(res.statusCode).toBe(503);
      expect(errorOf(res).message).toMatch(/response cache is unavailable/);
    }
  });

  test('503 with retry-after when forgetting the cached answers outlasts its limit (a huge keyspace, a hanging store)', async () => {
    jest.useFakeTimers();
    try {
      class HangingCache extends MapAnswerCache {
        async deleteByPrefix(): Promise<void> {
          return new Promise(() => undefined);
        }
      }
      let settled: HttpResponse | undefined;
      void setup(routerConfig(), true, { exact: new HangingCache(), vectors: new InMemoryVectorStore() }).del().then((r) => (settled = r));
      await jest.advanceTimersByTimeAsync(FORGET_TIMEOUT_MS);
      expect(settled?.statusCode).toBe(503);
      expect(settled?.headers['retry-after']).toBe('2');
    } finally {
      jest.useRealTimers();
    }
  });

  test('403 without a user id', async () => {
    const { store, put } = setup();
    const res = await put({ preferences: { language: 'de' } }, { tenantId: 'tenant-a' });
    expect(res.statusCode).toBe(403);
    expect(errorOf(res).code).toBe('no-user');
    expect(store.preferenceWrites).toHaveLength(0);
  });

  test('401 without a caller', async () => {
    const { store, put, del } = setup();
    expect((await put({ preferences: {} }, 'none')).statusCode).toBe(401);
    expect((await del('none')).statusCode).toBe(401);
    expect(store.preferenceWrites).toHaveLength(0);
    expect(store.clears).toHaveLength(0);
  });

  test('404 when the router keeps no user context', async () => {
    expect((await setup(routerConfig({ userContext: undefined })).put({ preferences: {} })).statusCode).toBe(404);
  });

  test('503 with retry-after when the configured store is not reachable in this invocation', async () => {
    for (const res of [await setup(routerConfig(), false).put({ preferences: {} }), await setup(routerConfig(), false).del()]) {
      expect(res.statusCode).toBe(503);
      expect(res.headers['retry-after']).toBe('2');
      expect(errorOf(res).code).toBe('unavailable');
    }
  });

  test('503 with retry-after when the store fails', async () => {
    const { store, metrics, put } = setup();
    store.failPreferences = true;
    const res = await put({ preferences: { language: 'de' } });
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toMatch(/^[1-9]\d*$/);
    expect(errorOf(res).code).toBe('unavailable');
    expect(metrics.named(M.REJECTED_REQUESTS)).toHaveLength(0);
  });
});

describe('DELETE /v1/context', () => {
  test('204; everything kept for the caller is gone, other users keep theirs', async () => {
    const { store, del } = setup();
    store.seedPreferences('tenant-a', 'alice', { language: 'de' }).setTurns('tenant-a', 'alice', 's-1', [{ role: 'user', text: 'hi' }]);
    store.seedPreferences('tenant-a', 'bob', { language: 'fr' });

    const res = await del();

    expect(res).toEqual({ statusCode: 204, headers: {}, body: '' });
    expect(store.clears).toEqual([{ tenantId: 'tenant-a', userId: 'alice' }]);
    expect(store.preferencesOf('tenant-a', 'alice')).toBeUndefined();
    expect(store.turnsOf('tenant-a', 'alice', 's-1')).toEqual([]);
    expect(store.preferencesOf('tenant-a', 'bob')).toEqual({ language: 'fr' });
  });

  test('403 without a user id', async () => {
    const { store, del } = setup();
    expect((await del({ tenantId: 'tenant-a' })).statusCode).toBe(403);
    expect(store.clears).toHaveLength(0);
  });

  test('503 with retry-after when the store fails', async () => {
    const { store, del } = setup();
    store.failClear = true;
    const res = await del();
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toMatch(/^[1-9]\d*$/);
  });
});
