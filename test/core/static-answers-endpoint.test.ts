import { axis, blend, MapStaticAnswerStore, RecordingMetrics, routerConfig, STATIC_MAX_AGE_SECONDS, TestEmbedder } from './cache-doubles';
import { AiMetricNames as M } from '../../constructs/contract/metrics';
import type { RouterRuntimeConfig } from '../../constructs/contract/runtime-config';
import { AnswerCaches } from '../../lambdas/core/answer-caches';
import type { Caller } from '../../lambdas/core/cache-key';
import type { HttpResponse } from '../../lambdas/core/chat-endpoint';
import { QuestionGuard } from '../../lambdas/core/semantic/question-guard';
import { handleStaticAnswer } from '../../lambdas/core/static-answers-endpoint';

const ALICE: Caller = { tenantId: 'tenant-a', userId: 'alice' };

async function setup(config: RouterRuntimeConfig = routerConfig()) {
  const metrics = new RecordingMetrics();
  const embedder = new TestEmbedder()
    .define('What are your opening hours?', axis(0))
    .define('When do you open in the morning', blend(0, 1, 0.93));
  const store = new MapStaticAnswerStore();
  await store.publish('tenant-a', { id: 'opening-hours', questions: ['What are your opening hours?'], answer: 'From 9 to 5.' }, embedder);
  const staticAnswers = { store, vectors: { embedder, store: store.vectors } };
  const caches = new AnswerCaches({ config, metrics, guard: new QuestionGuard(), staticAnswers });
  /** `caller` 'none' stands for a request without an authorizer context. */
  const call = (question: string | undefined, caller: Caller | 'none' = ALICE) =>
    handleStaticAnswer(caches, config, metrics, { question, caller: caller === 'none' ? undefined : caller });
  return { call, metrics, store };
}

function bodyOf(res: HttpResponse): any {
  return JSON.parse(res.body);
}

function expectError(res: HttpResponse, status: number, code: string, message?: RegExp): void {
  expect(res.statusCode).toBe(status);
  const body = bodyOf(res);
  expect(body.error.code).toBe(code);
  if (message) expect(body.error.message).toMatch(message);
  expect(res.headers['cache-control']).toBe('no-store');
  expect(res.headers['x-cache']).toBeUndefined();
}

describe('GET /v1/static-answers', () => {
  test('401 without a caller', async () => {
    const { call, store } = await setup();
    expectError(await call('What are your opening hours?', 'none'), 401, 'unauthenticated');
    expect(store.reads).toBe(0);
  });

  test('404 when the router has no static answers', async () => {
    const { call, store } = await setup(routerConfig({ staticAnswers: undefined }));
    expectError(await call('What are your opening hours?'), 404, 'not-found', /no static answers/i);
    expect(store.reads).toBe(0);
  });

  test.each<[string, string | undefined]>([
    ['missing', undefined],
    ['empty', ''],
    ['blank', '   \n '],
  ])('400 when q is %s', async (_name, q) => {
    const { call, metrics } = await setup();
    expectError(await call(q), 400, 'invalid', /\bq\b/);
    expect(metrics.sum(M.REJECTED_REQUESTS, { [M.DIMENSION_REASON]: 'invalid' })).toBe(1);
  });

  test('400 when q is longer than 1024 characters, naming both numbers', async () => {
    const { call, store } = await setup();
    const res = await call('x'.repeat(1_025));
    expectError(res, 400, 'invalid', /1024.*1025/);
    expect(store.reads).toBe(0);
  });

  test('a q of exactly 1024 characters (after trimming) is looked up', async () => {
    const { call, store } = await setup();
    const res = await call(`  ${'x'.repeat(1_024)}  `);
    expect(res.statusCode).toBe(404);
    expect(store.exactLookups).toHaveLength(1);
  });

  test('404 when no static answer matches', async () => {
    const { call } = await setup();
    expectError(await call('How do I reset my password?'), 404, 'not-found', /no static answer/i);
  });

  test('404 for another tenant', async () => {
    const { call } = await setup();
    expectError(await call('What are your opening hours?', { tenantId: 'tenant-b' }), 404, 'not-found');
  });

  test('200 for an exact match, cacheable privately for maxAgeSeconds', async () => {
    const { call, metrics } = await setup();
    const res = await call('  what are your OPENING hours  ');

    expect(res.statusCode).toBe(200);
    expect(res.headers).toMatchObject({
      'content-type': 'application/json',
      'cache-control': `private, max-age=${STATIC_MAX_AGE_SECONDS}`,
      'x-cache': 'static',
    });
    expect(bodyOf(res)).toEqual({ id: 'opening-hours', output: { text: 'From 9 to 5.' }, match: 'exact' });
    expect(metrics.sum(M.CACHE_HITS, { [M.DIMENSION_CACHE_LEVEL]: 'static' })).toBe(1);
  });

  test('200 for a semantic match, with its similarity rounded to 3 digits', async () => {
    const { call } = await setup();
    const res = await call('When do you open in the morning');

    expect(res.statusCode).toBe(200);
    expect(res.headers['cache-control']).toBe(`private, max-age=${STATIC_MAX_AGE_SECONDS}`);
    expect(bodyOf(res)).toEqual({ id: 'opening-hours', output: { text: 'From 9 to 5.' }, match: 'semantic', similarity: 0.93 });
  });

  test('max-age follows the config', async () => {
    const { call } = await setup(routerConfig({ staticAnswers: { threshold: 0.9, maxAgeSeconds: 42 } }));
    expect((await call('What are your opening hours?')).headers['cache-control']).toBe('private, max-age=42');
  });

  test('without a threshold a paraphrase does not match', async () => {
    const { call } = await setup(routerConfig({ staticAnswers: { maxAgeSeconds: 42 } }));
    expect((await call('When do you open in the morning')).statusCode).toBe(404);
  });
});

describe('GET /v1/static-answers: the store down', () => {
  test.each<[string, 'failExact' | 'failScope' | 'embedder']>([
    ['the exact lookup fails', 'failExact'],
    ['the vector scope cannot be read', 'failScope'],
    ['the embedder fails', 'embedder'],
  ])('503 with retry-after, not 404 "no match", when %s', async (_, failure) => {
    const metrics = new RecordingMetrics();
    const embedder = new TestEmbedder().define('What are your opening hours?', axis(0));
    const store = new MapStaticAnswerStore();
    await store.publish('tenant-a', { id: 'opening-hours', questions: ['What are your opening hours?'], answer: 'From 9 to 5.' }, embedder);
    if (failure === 'embedder') embedder.failing = true;
    else store[failure] = true;
    const config = routerConfig();
    const staticAnswers = { store, vectors: { embedder, store: store.vectors } };
    const caches = new AnswerCaches({ config, metrics, guard: new QuestionGuard(), staticAnswers });

    const res = await handleStaticAnswer(caches, config, metrics, { question: 'When do you open?', caller: ALICE });

    expectError(res, 503, 'unavailable', /unavailable/);
    expect(res.headers['retry-after']).toBe('2');
    expect(metrics.sum(M.CACHE_ERRORS, { [M.DIMENSION_CACHE_LEVEL]: 'static' })).toBe(1);
    expect(metrics.named(M.REJECTED_REQUESTS)).toHaveLength(0);
  });

  test('the chat path still fails open on the same failure: lookupStatic reports it as null, never throws', async () => {
    const metrics = new RecordingMetrics();
    const store = new MapStaticAnswerStore();
    store.failExact = true;
    const caches = new AnswerCaches({ config: routerConfig(), metrics, guard: new QuestionGuard(), staticAnswers: { store } });
    await expect(caches.lookupStatic('tenant-a', 'What are your opening hours?')).resolves.toBeNull();
    const { hit } = await caches.lookup({ caller: ALICE, request: { messages: [{ role: 'user', text: 'What are your opening hours?' }] }, personal: false });
    expect(hit).toBeUndefined();
  });
});
