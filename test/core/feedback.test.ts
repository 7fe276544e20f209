/**
 * Serving records and `POST /v1/feedback` in the core: the parser, the scoping of records to
 * their caller, one verdict per answer, the counts, and what a wrong verdict evicts (through
 * ChatService with Map-backed stores and an in-memory vector store).
 */
import { answer, axis, blend, DEADLINE, harness, NOW, type Harness } from './cache-doubles';
import { AiMetricNames as M } from '../../constructs/contract/metrics';
import { exactCacheKey, personalExactKeyPrefix, personalScopePrefix, type Caller } from '../../lambdas/core/cache-key';
import { handleChat, type HttpResponse } from '../../lambdas/core/chat-endpoint';
import {
  exactKeyInScope, FEEDBACK_MAX_BYTES, handleFeedback, semanticScopeInScope, servingRecordKey,
  type ServingRecord, type ServingRecordStore, type Verdict,
} from '../../lambdas/core/feedback';

const ALICE: Caller = { tenantId: 'tenant-a', userId: 'alice' };
const BOB: Caller = { tenantId: 'tenant-a', userId: 'bob' };
const CAROL: Caller = { tenantId: 'tenant-a', userId: 'carol' };
const OTHER_TENANT: Caller = { tenantId: 'tenant-b', userId: 'alice' };
const RESET = 'How do I reset my password?';
const RESET_PARAPHRASE = 'How can I reset my password?';
const WINDOW_SECONDS = 3_600;

/** Serving records on a Map, with the atomic claim of the Valkey adapter. */
class MapServingRecords implements ServingRecordStore {
  readonly records = new Map<string, { record: ServingRecord; ttlSeconds: number; verdict?: Verdict }>();
  failPut = false;

  async put(key: string, record: ServingRecord, ttlSeconds: number): Promise<void> {
    if (this.failPut) throw new Error('Command timed out');
    // What the adapter stores is JSON: the record must survive it.
    this.records.set(key, { record: JSON.parse(JSON.stringify(record)) as ServingRecord, ttlSeconds });
  }

  async claim(key: string, verdict: Verdict) {
    const found = this.records.get(key);
    if (!found) return undefined;
    const previous = found.verdict;
    found.verdict ??= verdict;
    return { record: found.record, previous };
  }

  expire(): void {
    this.records.clear();
  }
}

interface Setup extends Harness {
  readonly records: MapServingRecords;
  chat(question: string, caller: Caller): Promise<{ res: HttpResponse; requestId: string; body: any }>;
  feedback(body: unknown, caller?: Caller | undefined, raw?: string): Promise<{ res: HttpResponse; body: any }>;
}

let counter = 0;
function setup(options: Parameters<typeof harness>[0] = {}): Setup {
  const h = harness({ ...options, config: { feedback: { windowSeconds: WINDOW_SECONDS }, ...options.config } });
  h.embedder.define(RESET, axis(0)).define(RESET_PARAPHRASE, blend(0, 1, 0.95));
  const records = new MapServingRecords();
  return {
    ...h,
    records,
    async chat(question, caller) {
      const requestId = `00000000-0000-4000-8000-${String(++counter).padStart(12, '0')}`;
      const res = await handleChat(h.service, h.config, h.metrics, {
        body: JSON.stringify({ messages: [{ role: 'user', content: question }] }), caller, deadline: DEADLINE, now: () => NOW, requestId, servingRecords: records,
      });
      return { res, requestId, body: JSON.parse(res.body) };
    },
    async feedback(body, caller = ALICE, raw) {
      const res = await handleFeedback({ records, exact: h.exact, vectors: h.vectors }, h.config, h.metrics, {
        body: raw ?? JSON.stringify(body), caller,
      });
      return { res, body: res.body ? JSON.parse(res.body) : undefined };
    },
  };
}

describe('serving records', () => {
  test('every chat answer returns its request id and leaves a record of how it was served, for the window', async () => {
    const s = setup();
    s.invoker.script('small', answer('Open the reset link.'));
    const { res, requestId, body } = await s.chat(RESET, ALICE);
    expect(res.statusCode).toBe(200);
    expect(body.requestId).toBe(requestId);
    const stored = s.records.records.get(servingRecordKey(s.config.cache!.keyPrefix, ALICE, requestId));
    const key = exactCacheKey(s.config.cache!.keyPrefix, ALICE, { messages: [{ role: 'user', text: RESET }] }, undefined);
    const { entry } = s.vectors.puts[0];
    expect(stored).toEqual({
      ttlSeconds: WINDOW_SECONDS,
      record: {
        servedBy: 'model',
        tierId: 'small',
        locations: { answerId: expect.any(String), exactKeys: [key], semantic: { scope: entry.scope, id: entry.id } },
      },
    });
  });

  test('a failed record write fails open: the answer goes out, CacheErrors{feedback} is counted', async () => {
    const s = setup();
    s.records.failPut = true;
    s.invoker.script('small', answer('Open the reset link.'));
    const { res } = await s.chat(RESET, ALICE);
    expect(res.statusCode).toBe(200);
    expect(s.metrics.sum(M.CACHE_ERRORS, { [M.DIMENSION_CACHE_LEVEL]: 'feedback' })).toBe(1);
  });

  test('the record key is the caller\'s alone: another tenant, another user or another id is another key', () => {
    const id = '0f8fad5b-d9cb-469f-a165-70867728950e';
    const keys = new Set([
      servingRecordKey('p:', ALICE, id),
      servingRecordKey('p:', BOB, id),
      servingRecordKey('p:', OTHER_TENANT, id),
      servingRecordKey('p:', { tenantId: 'tenant-a' }, id),
      servingRecordKey('p:', ALICE, '0f8fad5b-d9cb-469f-a165-70867728950f'),
    ]);
    expect(keys.size).toBe(5);
    for (const key of keys) expect(key).toMatch(/^p:fb:[0-9a-f]{16}:[0-9a-f]{40}$/);
  });
});

describe('POST /v1/feedback: verdicts', () => {
  test('a wrong verdict on a model answer evicts its exact and semantic entries: the next asker gets a fresh answer', async () => {
    const s = setup();
    s.invoker.script('small', answer('Wrong answer.')).script('small', answer('Fresh answer.'));
    const first = await s.chat(RESET, ALICE);
    const { res, body } = await s.feedback({ requestId: first.requestId, verdict: 'wrong' });
    expect(res.statusCode).toBe(200);
    expect(body).toEqual({ requestId: first.requestId, verdict: 'wrong', servedBy: 'model', evicted: { exact: 1, semantic: 1 }, evictionFailed: [] });
    expect(s.metrics.sum(M.FEEDBACK, { [M.DIMENSION_SERVED_BY]: 'model', [M.DIMENSION_VERDICT]: 'wrong' })).toBe(1);
    expect(s.metrics.sum(M.FEEDBACK, { [M.DIMENSION_TIER]: 'small', [M.DIMENSION_VERDICT]: 'wrong' })).toBe(1);
    expect(s.metrics.sum(M.FEEDBACK_EVICTIONS, { [M.DIMENSION_CACHE_LEVEL]: 'exact' })).toBe(1);
    expect(s.metrics.sum(M.FEEDBACK_EVICTIONS, { [M.DIMENSION_CACHE_LEVEL]: 'semantic' })).toBe(1);

    const again = await s.chat(RESET_PARAPHRASE, BOB);
    expect(again.body).toMatchObject({ cache: 'miss', output: { text: 'Fresh answer.' } });
  });

  test('a wrong verdict on a semantic hit evicts the entry, the copy it left and the original question\'s exact entry', async () => {
    const s = setup();
    s.invoker.script('small', answer('Wrong answer.')).script('small', answer('Fresh one.')).script('small', answer('Fresh two.'));
    await s.chat(RESET, ALICE);
    const hit = await s.chat(RESET_PARAPHRASE, BOB);
    expect(hit.body.cache).toBe('semantic');
    const { body } = await s.feedback({ requestId: hit.requestId, verdict: 'wrong' }, BOB);
    expect(body).toMatchObject({ servedBy: 'semantic', evicted: { exact: 2, semantic: 1 } });
    expect(s.metrics.sum(M.FEEDBACK, { [M.DIMENSION_SERVED_BY]: 'semantic', [M.DIMENSION_VERDICT]: 'wrong' })).toBe(1);
    // The tier the cached answer came from.
    expect(s.metrics.sum(M.FEEDBACK, { [M.DIMENSION_TIER]: 'small', [M.DIMENSION_VERDICT]: 'wrong' })).toBe(1);
    const carol = await s.chat(RESET, CAROL);
    expect(carol.body.cache).toBe('miss');
    // Bob's copy is gone too: his question finds Carol's fresh answer in the semantic level.
    expect((await s.chat(RESET_PARAPHRASE, BOB)).body).toMatchObject({ cache: 'semantic', output: { text: carol.body.output.text } });
  });

  test('a wrong verdict on an exact hit evicts the entry only while it holds the answer that was judged', async () => {
    const s = setup({ semantic: false });
    s.invoker.script('small', answer('Old answer.')).script('small', answer('New answer.'));
    const alice = await s.chat(RESET, ALICE);
    const bob = await s.chat(RESET, BOB);
    expect(bob.body.cache).toBe('exact');
    expect((await s.feedback({ requestId: bob.requestId, verdict: 'wrong' }, BOB)).body.evicted).toEqual({ exact: 1, semantic: 0 });
    expect((await s.chat(RESET, CAROL)).body).toMatchObject({ cache: 'miss', output: { text: 'New answer.' } });
    // Alice judges the old answer: the new one under the same key stays.
    expect((await s.feedback({ requestId: alice.requestId, verdict: 'wrong' })).body.evicted).toEqual({ exact: 0, semantic: 0 });
    expect((await s.chat(RESET, BOB)).body).toMatchObject({ cache: 'exact', output: { text: 'New answer.' } });
  });

  test('a right verdict is counted and evicts nothing', async () => {
    const s = setup();
    s.invoker.script('small', answer('Open the reset link.'));
    const first = await s.chat(RESET, ALICE);
    expect((await s.feedback({ requestId: first.requestId, verdict: 'right' })).body.evicted).toEqual({ exact: 0, semantic: 0 });
    expect(s.metrics.sum(M.FEEDBACK, { [M.DIMENSION_SERVED_BY]: 'model', [M.DIMENSION_VERDICT]: 'right' })).toBe(1);
    expect(s.exact.evicts).toHaveLength(0);
    expect(s.vectors.deleted).toHaveLength(0);
    expect((await s.chat(RESET, BOB)).body.cache).toBe('exact');
  });

  test('a wrong verdict on a static answer is counted but deletes nothing (the operator curates them)', async () => {
    const s = setup();
    await s.statics.publish('tenant-a', { id: 'reset', questions: [RESET], answer: 'Use the reset link.' });
    const first = await s.chat(RESET, ALICE);
    expect(first.body.cache).toBe('static');
    const { body } = await s.feedback({ requestId: first.requestId, verdict: 'wrong' });
    expect(body).toMatchObject({ servedBy: 'static', evicted: { exact: 0, semantic: 0 } });
    expect(s.metrics.sum(M.FEEDBACK, { [M.DIMENSION_SERVED_BY]: 'static', [M.DIMENSION_VERDICT]: 'wrong' })).toBe(1);
    expect(s.metrics.named(M.FEEDBACK, { [M.DIMENSION_TIER]: 'static', [M.DIMENSION_VERDICT]: 'wrong' })).toHaveLength(0);
    expect((await s.chat(RESET, BOB)).body.cache).toBe('static');
  });

  test('one verdict per answer: a second one is 409, counted and evicting nothing more', async () => {
    const s = setup();
    s.invoker.script('small', answer('Open the reset link.'));
    const first = await s.chat(RESET, ALICE);
    expect((await s.feedback({ requestId: first.requestId, verdict: 'right' })).res.statusCode).toBe(200);
    for (const verdict of ['wrong', 'right']) {
      const again = await s.feedback({ requestId: first.requestId, verdict });
      expect(again.res.statusCode).toBe(409);
      expect(again.body.error.code).toBe('conflict');
    }
    expect(s.metrics.sum(M.FEEDBACK, { [M.DIMENSION_SERVED_BY]: 'model', [M.DIMENSION_VERDICT]: 'wrong' })).toBe(0);
    expect(s.exact.evicts).toHaveLength(0);
  });

  test('another tenant\'s, another user\'s, an expired or an unknown request id: the same 404, nothing recorded', async () => {
    const s = setup();
    s.invoker.script('small', answer('Open the reset link.'));
    const first = await s.chat(RESET, ALICE);
    const answers = [
      await s.feedback({ requestId: first.requestId, verdict: 'wrong' }, OTHER_TENANT),
      await s.feedback({ requestId: first.requestId, verdict: 'wrong' }, BOB),
      await s.feedback({ requestId: first.requestId, verdict: 'wrong' }, { tenantId: 'tenant-a' }),
      await s.feedback({ requestId: '0f8fad5b-d9cb-469f-a165-70867728950e', verdict: 'wrong' }),
    ];
    for (const a of answers) {
      expect(a.res.statusCode).toBe(404);
      expect(a.body.error.message).toMatch(/^No answer with request id [0-9a-f-]{36} was given to this caller within the feedback window$/);
    }
    expect(s.exact.evicts).toHaveLength(0);
    // None of them took Alice's verdict.
    expect((await s.feedback({ requestId: first.requestId, verdict: 'right' })).res.statusCode).toBe(200);
    s.records.expire();
    const expired = await s.chat(RESET, ALICE);
    s.records.expire();
    expect((await s.feedback({ requestId: expired.requestId, verdict: 'wrong' })).res.statusCode).toBe(404);
  });

  test('locations outside the caller\'s scope are never touched, even if a record named them', async () => {
    const s = setup();
    const requestId = '0f8fad5b-d9cb-469f-a165-70867728950e';
    const prefix = s.config.cache!.keyPrefix;
    const otherTenantKey = exactCacheKey(prefix, OTHER_TENANT, { messages: [{ role: 'user', text: RESET }] }, undefined);
    const otherUserKey = `${personalExactKeyPrefix(prefix, 'tenant-a', 'bob')}${'a'.repeat(64)}`;
    await s.records.put(servingRecordKey(prefix, ALICE, requestId), {
      servedBy: 'exact',
      locations: { answerId: 'x', exactKeys: [otherTenantKey, otherUserKey], semantic: { scope: `${personalScopePrefix('tenant-a', 'bob')}${'b'.repeat(32)}`, id: 'e' } },
    }, 60);
    const { body } = await s.feedback({ requestId, verdict: 'wrong' });
    expect(body.evicted).toEqual({ exact: 0, semantic: 0 });
    expect(s.exact.evicts).toHaveLength(0);
    expect(s.vectors.deleted).toHaveLength(0);
  });
});

describe('POST /v1/feedback: input', () => {
  const requestId = '0f8fad5b-d9cb-469f-a165-70867728950e';

  test.each([
    ['no body', undefined, /not valid JSON/],
    ['not JSON', '{"requestId":', /JSON/i],
    ['an array', '[]', /^Invalid request: body/],
    ['no verdict', JSON.stringify({ requestId }), /^Invalid request: verdict/],
    ['another verdict', JSON.stringify({ requestId, verdict: 'meh' }), /^Invalid request: verdict/],
    ['an extra field', JSON.stringify({ requestId, verdict: 'wrong', answer: 'the right answer is...' }), /^Invalid request: body: Unrecognized key/],
    ['a number id', JSON.stringify({ requestId: 42, verdict: 'wrong' }), /^Invalid request: requestId/],
    ['a glob id', JSON.stringify({ requestId: '*', verdict: 'wrong' }), /^Invalid request: requestId: must be the request id/],
    ['a key-separator id', JSON.stringify({ requestId: `${requestId}:x`, verdict: 'wrong' }), /^Invalid request: requestId/],
    ['a brace id', JSON.stringify({ requestId: `{${requestId}}`, verdict: 'wrong' }), /^Invalid request: requestId/],
    ['a newline id', JSON.stringify({ requestId: `${requestId}\n`, verdict: 'wrong' }), /^Invalid request: requestId/],
    ['an upper-case id', JSON.stringify({ requestId: requestId.toUpperCase(), verdict: 'wrong' }), /^Invalid request: requestId/],
  ])('%s: 400 naming the field', async (_, raw, message) => {
    const s = setup();
    const res = await handleFeedback({ records: s.records }, s.config, s.metrics, { body: raw, caller: ALICE });
    expect(res.statusCode).toBe(400);
    expect(JSON.parse(res.body).error.message).toMatch(message);
  });

  test('a body over the limit: 413', async () => {
    const s = setup();
    const { res } = await s.feedback(undefined, ALICE, JSON.stringify({ requestId, verdict: 'wrong', pad: 'x'.repeat(FEEDBACK_MAX_BYTES) }));
    expect(res.statusCode).toBe(413);
  });

  test('no caller: 401; no cache configured: 404 saying why; cache unreachable: 503', async () => {
    const s = setup();
    const body = JSON.stringify({ requestId, verdict: 'wrong' });
    expect((await handleFeedback({ records: s.records }, s.config, s.metrics, { body, caller: undefined })).statusCode).toBe(401);
    const noCache = await handleFeedback({}, { ...s.config, feedback: undefined }, s.metrics, { body, caller: ALICE });
    expect(noCache.statusCode).toBe(404);
    expect(JSON.parse(noCache.body).error.message).toMatch(/feedback needs the response cache/);
    const down = await handleFeedback({}, s.config, s.metrics, { body, caller: ALICE });
    expect(down.statusCode).toBe(503);
    expect(down.headers['retry-after']).toBe('2');
  });
});

describe('scope checks', () => {
  test('exact keys: the caller\'s tenant\'s shared keys and the caller\'s own personal keys only', () => {
    const shared = exactCacheKey('p:', ALICE, { messages: [{ role: 'user', text: RESET }] }, undefined);
    const personal = exactCacheKey('p:', ALICE, { messages: [{ role: 'user', text: 'a' }, { role: 'assistant', text: 'b' }, { role: 'user', text: 'c' }] }, undefined);
    expect(exactKeyInScope(shared, 'p:', ALICE)).toBe(true);
    expect(exactKeyInScope(shared, 'p:', BOB)).toBe(true);
    expect(exactKeyInScope(shared, 'p:', OTHER_TENANT)).toBe(false);
    expect(exactKeyInScope(personal, 'p:', ALICE)).toBe(true);
    expect(exactKeyInScope(personal, 'p:', BOB)).toBe(false);
    expect(exactKeyInScope(personal, 'p:', { tenantId: 'tenant-a' })).toBe(false);
    expect(exactKeyInScope(`${shared}*`, 'p:', ALICE)).toBe(false);
  });

  test('semantic scopes: shared scope hashes and the caller\'s personal scopes only', () => {
    expect(semanticScopeInScope('0123456789abcdef0123456789abcdef', ALICE)).toBe(true);
    expect(semanticScopeInScope(`${personalScopePrefix('tenant-a', 'alice')}0123456789abcdef0123456789abcdef`, ALICE)).toBe(true);
    expect(semanticScopeInScope(`${personalScopePrefix('tenant-a', 'bob')}0123456789abcdef0123456789abcdef`, ALICE)).toBe(false);
    expect(semanticScopeInScope('*', ALICE)).toBe(false);
  });
});
