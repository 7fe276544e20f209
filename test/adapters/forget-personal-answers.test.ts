/**
 * `DELETE /v1/context` forgets the caller's cached personal answers, against a real
 * Redis-protocol server: the exact cache (ValkeyAnswerCache), the user context
 * (ValkeyUserContextStore) and the Valkey vector store's key layout (ValkeyVectorStore: its entry
 * hashes and scope sets; Redis has no FT.SEARCH, so lookups are answered by an in-memory store that
 * receives the same entries).
 */
import Valkey from 'iovalkey';
import { ValkeyAnswerCache, deleteKeysByPrefix, escapeGlob } from '../../lambdas/adapters/valkey-answer-cache';
import { ValkeyUserContextStore } from '../../lambdas/adapters/valkey-user-context-store';
import { ValkeyVectorStore } from '../../lambdas/adapters/valkey-vector-store';
import { personalExactKeyPrefix, personalScopePrefix, type Caller } from '../../lambdas/core/cache-key';
import type { ChatMessage, ChatRequest } from '../../lambdas/core/chat-request';
import { ChatService } from '../../lambdas/core/chat-service';
import { idHash } from '../../lambdas/core/hashing';
import { InMemoryVectorStore } from '../../lambdas/core/semantic/memory-vector-store';
import type { SemanticEntry, StoreOptions, VectorMatch, VectorStore } from '../../lambdas/core/semantic/ports';
import { QuestionGuard } from '../../lambdas/core/semantic/question-guard';
import { SemanticCache } from '../../lambdas/core/semantic/semantic-cache';
import { handleUserContext } from '../../lambdas/core/user-context-endpoint';
import {
  answer, blend, DEADLINE, fixedScore, NOW, RecordingMetrics, routerConfig, SCORE, ScriptedInvoker, SEMANTIC_OPTIONS, TestEmbedder,
} from '../core/cache-doubles';
import { RedisServer } from '../support/redis-server';

const PREFIX = 'test:';
const ALICE: Caller = { tenantId: 'tenant-a', userId: 'alice' };
const BOB: Caller = { tenantId: 'tenant-a', userId: 'bob' };
const CAROL: Caller = { tenantId: 'tenant-a', userId: 'carol' };

let redis: RedisServer;
let client: Valkey;

beforeAll(async () => {
  redis = await RedisServer.start();
  client = new Valkey({ host: redis.host, port: redis.port, maxRetriesPerRequest: 1 });
  client.on('error', () => undefined);
});

beforeEach(async () => {
  await client.flushall();
});

afterAll(async () => {
  client?.disconnect();
  await redis?.dispose();
});

/** Writes every entry to the Valkey layout and to an in-memory store that answers the searches. */
class MirroredVectorStore implements VectorStore {
  readonly memory = new InMemoryVectorStore();
  constructor(readonly valkey: ValkeyVectorStore) {}
  async ensureIndex(): Promise<void> {}
  search(scope: string, vector: Float32Array, k: number): Promise<VectorMatch[]> {
    return this.memory.search(scope, vector, k);
  }
  async put(entry: SemanticEntry, options: StoreOptions): Promise<void> {
    await Promise.all([this.valkey.put(entry, options), this.memory.put(entry, options)]);
  }
  async deleteScope(scope: string): Promise<void> {
    await Promise.all([this.valkey.deleteScope(scope), this.memory.deleteScope(scope)]);
  }
  async deleteScopePrefix(scopePrefix: string): Promise<void> {
    await Promise.all([this.valkey.deleteScopePrefix(scopePrefix), this.memory.deleteScopePrefix(scopePrefix)]);
  }
}

const ask = (text: string, extra: Partial<ChatRequest> = {}): ChatRequest => ({ messages: [{ role: 'user', text }], ...extra });
const conversation = (...texts: string[]): ChatRequest => ({
  messages: texts.map((text, i): ChatMessage => ({ role: i % 2 === 0 ? 'user' : 'assistant', text })),
});

function setup() {
  const config = routerConfig();
  const exact = new ValkeyAnswerCache(client);
  const context = new ValkeyUserContextStore(client, PREFIX);
  const vectors = new MirroredVectorStore(new ValkeyVectorStore(client, { keyPrefix: PREFIX, indexName: 'sem', hnsw: { m: 16, efConstruction: 200, efSearch: 64 } }));
  const embedder = new TestEmbedder();
  const invoker = new ScriptedInvoker();
  const metrics = new RecordingMetrics();
  const guard = new QuestionGuard();
  const service = new ChatService({
    config,
    invoker,
    classifier: fixedScore(SCORE.small),
    metrics,
    guard,
    exactCache: exact,
    semanticCache: new SemanticCache(embedder, vectors, guard, SEMANTIC_OPTIONS),
    userContext: context,
    now: () => NOW,
  });
  const forget = (caller: Caller) => handleUserContext(context, config, metrics, { method: 'DELETE', body: undefined, caller, answers: { exact, vectors } });
  return { config, exact, context, vectors, embedder, invoker, service, forget };
}

const keys = async (pattern = '*') => (await client.keys(pattern)).sort();
const userKeys = async (caller: Caller) => {
  const exactKeys = await keys(`${escapeGlob(personalExactKeyPrefix(PREFIX, caller.tenantId, caller.userId!))}*`);
  const contextKeys = await keys(`${PREFIX}ctx:${idHash(caller.tenantId)}:${idHash(caller.userId!)}:*`);
  const semanticKeys = await keys(`${PREFIX}sem*:sem:${personalScopePrefix(caller.tenantId, caller.userId!)}*`);
  return { exactKeys, contextKeys, semanticKeys };
};

describe('DELETE /v1/context forgets the caller\'s cached personal answers', () => {
  const PERSONAL = 'my name is alice and my diagnosis is diabetes, what should I eat?';
  const BOB_PERSONAL = 'my name is bob and my diagnosis is diabetes, what should I eat?';
  const HISTORY = ['I live in Berlin', 'Noted.', 'Which branch is closest?'];
  const SHARED = 'What are your opening hours?';

  test('exact entries, semantic entries of every personal scope, sessions and preferences; other users and shared entries stay', async () => {
    const h = setup();
    h.invoker.script('small', ...Array.from({ length: 12 }, (_, i) => answer(`answer ${i}`)));
    // Alice: a question with personal data, a conversation, a session request; and a shared question.
    await h.service.chat(ask(PERSONAL), ALICE, DEADLINE);
    await h.service.chat(conversation(...HISTORY), ALICE, DEADLINE);
    await h.service.chat(ask('What did I ask before?', { session: 's-1' }), ALICE, DEADLINE);
    await h.context.setPreferences('tenant-a', 'alice', { language: 'de' }, 3_600);
    await h.service.chat(ask(SHARED), ALICE, DEADLINE);
    // Bob: his own personal entries.
    await h.service.chat(ask(BOB_PERSONAL), BOB, DEADLINE);
    await h.service.chat(conversation(...HISTORY), BOB, DEADLINE);

    const before = await userKeys(ALICE);
    expect(before.exactKeys).toHaveLength(3);
    expect(before.contextKeys.length).toBeGreaterThanOrEqual(2); // the session list, its index, the preferences
    // 3 entry hashes; 2 scope sets (the question with personal data and the session request, both
    // without earlier turns, share alice's scope; the conversation has its own).
    expect(before.semanticKeys.filter((k) => k.startsWith(`${PREFIX}sem:`))).toHaveLength(3);
    expect(before.semanticKeys.filter((k) => k.startsWith(`${PREFIX}semz:`))).toHaveLength(2);
    const bobBefore = await userKeys(BOB);
    const sharedBefore = (await keys(`${PREFIX}exact:${idHash('tenant-a')}:*`)).filter((k) => !k.includes(':u:'));
    expect(sharedBefore).toHaveLength(1);

    const res = await h.forget(ALICE);
    expect(res.statusCode).toBe(204);

    expect(await userKeys(ALICE)).toEqual({ exactKeys: [], contextKeys: [], semanticKeys: [] });
    expect(await userKeys(BOB)).toEqual(bobBefore);
    expect((await keys(`${PREFIX}exact:${idHash('tenant-a')}:*`)).filter((k) => !k.includes(':u:'))).toEqual(sharedBefore);

    // Alice is answered afresh; Bob and the shared question are still served from the caches.
    await expect(h.service.chat(ask(PERSONAL), ALICE, DEADLINE)).resolves.toMatchObject({ servedBy: 'model' });
    await expect(h.service.chat(conversation(...HISTORY), ALICE, DEADLINE)).resolves.toMatchObject({ servedBy: 'model' });
    await expect(h.service.chat(ask(BOB_PERSONAL), BOB, DEADLINE)).resolves.toMatchObject({ servedBy: 'exact' });
    await expect(h.service.chat(ask(SHARED), CAROL, DEADLINE)).resolves.toMatchObject({ servedBy: 'exact' });
  });

  test('a semantic paraphrase of a forgotten personal question is not served either', async () => {
    const h = setup();
    const paraphrase = 'my name is alice and I have diabetes, what should I eat?';
    const again = 'my name is alice, I have diabetes: what should I eat?';
    h.embedder.define(PERSONAL, blend(10, 11, 1)).define(paraphrase, blend(10, 11, 0.95)).define(again, blend(10, 12, 0.95));
    h.invoker.script('small', answer('first'), answer('second'));
    await h.service.chat(ask(PERSONAL), ALICE, DEADLINE);
    // Control: before the DELETE, the paraphrase is served from alice's semantic entry.
    await expect(h.service.chat(ask(paraphrase), ALICE, DEADLINE)).resolves.toMatchObject({ servedBy: 'semantic', text: 'first' });

    expect((await h.forget(ALICE)).statusCode).toBe(204);
    await expect(h.service.chat(ask(again), ALICE, DEADLINE)).resolves.toMatchObject({ servedBy: 'model', text: 'second' });
  });

  test('without a user context store, DELETE still forgets the cached answers (204, not 404)', async () => {
    const h = setup();
    h.invoker.script('small', answer('first'));
    await h.service.chat(ask(PERSONAL), ALICE, DEADLINE);
    const res = await handleUserContext(undefined, routerConfig({ userContext: undefined }), new RecordingMetrics(), {
      method: 'DELETE', body: undefined, caller: ALICE, answers: { exact: h.exact, vectors: h.vectors },
    });
    expect(res.statusCode).toBe(204);
    expect((await userKeys(ALICE)).exactKeys).toEqual([]);
    expect((await userKeys(ALICE)).semanticKeys).toEqual([]);
  });

  test('a cache that fails is a 503 the client may retry', async () => {
    const h = setup();
    const failing = { ...h.exact, get: h.exact.get.bind(h.exact), set: h.exact.set.bind(h.exact), deleteByPrefix: async () => { throw new Error('READONLY'); } };
    const res = await handleUserContext(h.context, h.config, new RecordingMetrics(), { method: 'DELETE', body: undefined, caller: ALICE, answers: { exact: failing } });
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toBeDefined();
  });
});

describe('deleteKeysByPrefix', () => {
  test('deletes every key with the prefix, across SCAN pages, and matches glob characters literally', async () => {
    const many = Array.from({ length: 2_500 }, (_, i) => [`p:a*[b]?\\:${i}`, 'x']).flat();
    await client.mset(...many);
    await client.mset('p:aX[b]?\\:1', 'keep', 'p:a*b?\\:1', 'keep', 'p:a*[b]', 'keep', 'other', 'keep');
    await deleteKeysByPrefix(client, 'p:a*[b]?\\:');
    expect(await keys()).toEqual(['other', 'p:a*[b]', 'p:a*b?\\:1', 'p:aX[b]?\\:1'].sort());
  });
});
