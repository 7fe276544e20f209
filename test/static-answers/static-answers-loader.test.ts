/**
 * The static answers loader core (`loadStaticAnswers`) with its real adapters:
 * - the Valkey writer/reader `ValkeyStaticAnswers` on a real Redis-protocol server;
 * - the S3 source of the handler (`S3AnswerFileSource`, the real `@aws-sdk/client-s3`) against
 *   the local S3 protocol server, with two keys per ListObjectsV2 page so that every load pages.
 * Metrics and logs are recorded through the core's ports. The semantic part uses a deterministic
 * bag-of-words embedder and the in-process vector store.
 */
import { S3Client } from '@aws-sdk/client-s3';
import Valkey from 'iovalkey';
import { AiMetricNames as M } from '../../constructs/contract/metrics';
import { ValkeyStaticAnswers, staticVectorScope } from '../../lambdas/adapters/valkey-static-answers';
import type { MetricUnit, MetricsRecorder } from '../../lambdas/core/ports';
import { InMemoryVectorStore } from '../../lambdas/core/semantic/memory-vector-store';
import type { Embedder, SemanticEntry, StoreOptions, VectorMatch, VectorStore } from '../../lambdas/core/semantic/ports';
import { normalize } from '../../lambdas/core/semantic/vectors';
import { normalizeQuestion, type StaticAnswerFile } from '../../lambdas/core/static-answers';
import {
  loadStaticAnswers, type LoadSummary, type LoaderLogger, type LoaderOptions, type StaticAnswersPublisher,
} from '../../lambdas/core/static-answers-loader';
import { S3AnswerFileSource } from '../../lambdas/static-answers-loader/handler';
import { RedisServer } from '../support/redis-server';
import { LocalS3Server } from '../support/s3-protocol-server';

const BUCKET = 'static-answers-bucket';
const PREFIX = 'answers/';
const KEY_PREFIX = 'sai:';
const TENANT_A = 'tenant-a';
const TENANT_B = 'tenant-b';

// ---------------------------------------------------------------------------------------------
// Test doubles for the ports that are not under test

class RecordingMetrics implements MetricsRecorder {
  readonly records: Array<{ name: string; unit: MetricUnit; value: number; dimensions: Record<string, string> }> = [];
  add(name: string, unit: MetricUnit, value: number, dimensions: Record<string, string> = {}): void {
    this.records.push({ name, unit, value, dimensions });
  }
  /** Sum of `name` with exactly these dimensions (undefined when never recorded). */
  sum(name: string, dimensions: Record<string, string> = {}): number | undefined {
    const wanted = JSON.stringify(Object.entries(dimensions).sort());
    const matching = this.records.filter((r) => r.name === name && JSON.stringify(Object.entries(r.dimensions).sort()) === wanted);
    return matching.length === 0 ? undefined : matching.reduce((n, r) => n + r.value, 0);
  }
}

class RecordingLogger implements LoaderLogger {
  readonly lines: Array<{ level: string; message: string; attributes: Record<string, unknown> }> = [];
  info(message: string, attributes: Record<string, unknown> = {}): void {
    this.lines.push({ level: 'info', message, attributes });
  }
  warn(message: string, attributes: Record<string, unknown> = {}): void {
    this.lines.push({ level: 'warn', message, attributes });
  }
  error(message: string, attributes: Record<string, unknown> = {}): void {
    this.lines.push({ level: 'error', message, attributes });
  }
  errors(): Array<Record<string, unknown>> {
    return this.lines.filter((l) => l.level === 'error').map((l) => l.attributes);
  }
}

/** Bag of words hashed into 64 dimensions: equal word sets embed equally, shared words embed close. */
class BagOfWordsEmbedder implements Embedder {
  readonly modelId = 'test/bag-of-words-64';
  readonly dimensions = 64;
  readonly calls: string[][] = [];
  failWith?: Error;

  async embed(texts: string[]): Promise<Float32Array[]> {
    this.calls.push([...texts]);
    if (this.failWith) throw this.failWith;
    return texts.map((text) => {
      const v = new Float32Array(this.dimensions);
      for (const word of normalizeQuestion(text).split(/[^\p{L}\p{N}]+/u).filter(Boolean)) {
        let h = 7;
        for (const ch of word) h = (h * 31 + ch.codePointAt(0)!) % 1_000_003;
        v[h % this.dimensions] += 1;
      }
      return normalize(v);
    });
  }
}

/** The in-process store, with `deleteScope` (what the Valkey store is asked to offer). */
class ScopedMemoryStore implements VectorStore {
  readonly inner = new InMemoryVectorStore();
  readonly deleted = new Set<string>();
  readonly putOptions: StoreOptions[] = [];
  failPuts = false;
  onPut?: () => Promise<void>;

  ensureIndex(): Promise<void> {
    return this.inner.ensureIndex();
  }
  async search(scope: string, vector: Float32Array, k: number): Promise<VectorMatch[]> {
    return this.deleted.has(scope) ? [] : this.inner.search(scope, vector, k);
  }
  async put(entry: SemanticEntry, options: StoreOptions): Promise<void> {
    if (this.failPuts) throw new Error('vector store unavailable');
    await this.onPut?.();
    this.putOptions.push(options);
    await this.inner.put(entry, options);
  }
  async deleteScope(scope: string): Promise<void> {
    this.deleted.add(scope);
  }
  size(scope: string): number {
    return this.deleted.has(scope) ? 0 : this.inner.size(scope);
  }
}

/** The client, except that after its first GET resolves `hook` runs before the caller sees the value. */
function hookAfterFirstGet(real: Valkey, hook: () => Promise<void>): Valkey {
  let fired = false;
  return new Proxy(real, {
    get(target, prop) {
      if (prop === 'get') {
        return async (key: string): Promise<string | null> => {
          const value = await target.get(key);
          if (!fired) {
            fired = true;
            await hook();
          }
          return value;
        };
      }
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

// ---------------------------------------------------------------------------------------------
// Files

function file(tenantId: string, answers: Array<[id: string, questions: string[], answer: string]>): StaticAnswerFile {
  return { tenantId, answers: answers.map(([id, questions, answer]) => ({ id, questions, answer })) };
}

const A_FAQ = file(TENANT_A, [
  ['hours', ['What are your opening hours?', 'When are you open?'], 'A: 9am to 6pm, Monday to Saturday.'],
  ['returns', ['How do I return an item?'], 'A: Returns are free within 30 days.'],
]);
const A_POLICIES = file(TENANT_A, [
  ['privacy', ['Do you sell my data?', 'What is your privacy policy?'], 'A: We never sell your data.'],
]);
const B_FAQ = file(TENANT_B, [
  ['returns', ['How do I return an item?'], 'B: Send it back within 14 days.'],
  ['shipping', ['Do you ship abroad?'], 'B: We ship to the EU only.'],
]);

// ---------------------------------------------------------------------------------------------
// Servers and helpers

let redis: RedisServer;
let s3: LocalS3Server;
let s3Client: S3Client;
let client: Valkey;
let answers: ValkeyStaticAnswers;

function put(key: string, body: string | object): void {
  s3.putObject(BUCKET, `${PREFIX}${key}`, body);
}

function publishDefaults(): void {
  put('tenant-a/faq.json', A_FAQ);
  put('tenant-a/policies.json', A_POLICIES);
  put('tenant-b/faq.json', B_FAQ);
}

interface LoadRun {
  readonly summary: LoadSummary;
  readonly metrics: RecordingMetrics;
  readonly logger: RecordingLogger;
}

async function load(deps: { publisher?: StaticAnswersPublisher; embedder?: Embedder; options?: LoaderOptions } = {}): Promise<LoadRun> {
  const metrics = new RecordingMetrics();
  const logger = new RecordingLogger();
  const summary = await loadStaticAnswers({
    source: new S3AnswerFileSource(s3Client, BUCKET, PREFIX, 2),
    publisher: deps.publisher ?? answers,
    embedder: deps.embedder,
    metrics,
    logger,
    options: deps.options,
  });
  return { summary, metrics, logger };
}

async function ask(tenantId: string, question: string, reader: ValkeyStaticAnswers = answers): Promise<string | undefined> {
  return (await reader.findExact(tenantId, normalizeQuestion(question)))?.answer;
}

async function staticKeys(): Promise<string[]> {
  return (await client.keys(`${KEY_PREFIX}static:*`)).sort();
}

beforeAll(async () => {
  [redis, s3] = await Promise.all([RedisServer.start(), LocalS3Server.start({ maxKeysPerPage: 2 })]);
  s3.createBucket(BUCKET);
  s3Client = new S3Client({
    endpoint: s3.url,
    forcePathStyle: true,
    region: 'us-east-1',
    credentials: { accessKeyId: 'AKIDLOCALTEST', secretAccessKey: 'local-test-secret' },
  });
  client = new Valkey({ host: redis.host, port: redis.port, maxRetriesPerRequest: 1 });
  client.on('error', () => undefined);
  answers = new ValkeyStaticAnswers(client, { keyPrefix: KEY_PREFIX });
});

beforeEach(async () => {
  s3.reset();
  await client.flushall();
});

afterAll(async () => {
  client?.disconnect();
  s3Client?.destroy();
  await Promise.all([redis?.dispose(), s3?.close()]);
});

// ---------------------------------------------------------------------------------------------

describe('publishing', () => {
  test('two tenants: each tenant\'s variants match after normalization, never another tenant\'s', async () => {
    publishDefaults();
    put('README.md', '# not an answer file');
    s3.putObject(BUCKET, 'elsewhere/tenant-c.json', file('tenant-c', [['x', ['Anything?'], 'C']]));

    const { summary, metrics, logger } = await load();

    expect(summary.objects).toBe(4);
    expect(summary.files).toBe(3);
    expect(summary.published.map((p) => [p.tenantId, p.answers, p.variants, p.files])).toEqual([
      [TENANT_A, 3, 5, 2],
      [TENANT_B, 2, 2, 1],
    ]);
    expect(summary.skipped).toEqual([]);
    expect(summary.errors).toEqual([]);
    expect([summary.answers, summary.variants]).toEqual([5, 7]);

    // Case, whitespace and trailing punctuation do not matter.
    expect(await ask(TENANT_A, '  WHAT are your   opening HOURS??')).toBe('A: 9am to 6pm, Monday to Saturday.');
    expect(await ask(TENANT_A, 'when are you open')).toBe('A: 9am to 6pm, Monday to Saturday.');
    expect(await ask(TENANT_A, 'what is your privacy policy ?!')).toBe('A: We never sell your data.');
    expect(await answers.findExact(TENANT_A, normalizeQuestion('How do I return an item'))).toEqual({ id: 'returns', answer: 'A: Returns are free within 30 days.' });
    // The same question has each tenant's own answer.
    expect(await ask(TENANT_B, 'how do I return an item?')).toBe('B: Send it back within 14 days.');
    // Never across tenants, in either direction.
    expect(await ask(TENANT_B, 'What are your opening hours?')).toBeUndefined();
    expect(await ask(TENANT_A, 'Do you ship abroad?')).toBeUndefined();
    expect(await ask('tenant-c', 'Anything?')).toBeUndefined();
    // A question that is not a variant is not answered (no prefix or substring matching).
    expect(await ask(TENANT_A, 'What are your opening hours on Sunday?')).toBeUndefined();

    // The listing paged (two keys per page) and the files outside the prefix were never read.
    const lists = s3.callsOf('ListObjectsV2');
    expect(lists.length).toBeGreaterThanOrEqual(2);
    expect(lists.slice(1).every((c) => c.query['continuation-token'] !== undefined)).toBe(true);
    expect(s3.callsOf('GetObject').map((c) => c.key).sort()).toEqual([
      `${PREFIX}tenant-a/faq.json`, `${PREFIX}tenant-a/policies.json`, `${PREFIX}tenant-b/faq.json`,
    ]);

    expect(metrics.sum(M.STATIC_ANSWERS_PUBLISHED)).toBe(5);
    expect(metrics.sum(M.STATIC_ANSWER_ERRORS)).toBe(0);
    expect(metrics.records.filter((r) => r.dimensions[M.DIMENSION_REASON] !== undefined)).toEqual([]);
    expect(logger.errors()).toEqual([]);
  });

  test('the Valkey layout: a pointer per tenant, a question hash, an answer hash and metadata per version, a registry', async () => {
    publishDefaults();
    const { summary } = await load();
    const versionA = summary.published.find((p) => p.tenantId === TENANT_A)!.version;
    const hashA = ValkeyStaticAnswers.tenantHash(TENANT_A);
    const hashB = ValkeyStaticAnswers.tenantHash(TENANT_B);
    expect(await answers.currentVersion(TENANT_A)).toBe(versionA);

    const keys = answers.versionKeys(TENANT_A, versionA);
    expect(keys.questions).toBe(`${KEY_PREFIX}static:${hashA}:v:${versionA}:q`);
    expect(await client.hlen(keys.questions)).toBe(5);
    expect(await client.hget(keys.answers, 'privacy')).toBe(JSON.stringify({ id: 'privacy', answer: 'A: We never sell your data.' }));
    expect(JSON.parse((await client.get(keys.meta))!)).toMatchObject({
      tenantId: TENANT_A, version: versionA, answers: 3, variants: 5, sources: [`${PREFIX}tenant-a/faq.json`, `${PREFIX}tenant-a/policies.json`],
    });
    expect(JSON.parse((await client.get(`${KEY_PREFIX}static:${hashA}:current`))!)).toEqual({ v: 1, tenantId: TENANT_A, version: versionA });
    expect((await client.smembers(answers.registryKey)).sort()).toEqual([hashA, hashB].sort());
    // The tenant id in the pointer is checked: tenant A's pointer under tenant C's key (what a
    // hash collision would look like) answers nothing for C.
    await client.set(answers.pointerKey('tenant-c'), (await client.get(answers.pointerKey(TENANT_A)))!);
    expect(await answers.findExact(TENANT_A, normalizeQuestion('What are your opening hours?'))).toBeDefined();
    expect(await ask('tenant-c', 'What are your opening hours?')).toBeUndefined();
    expect(await answers.currentVersion('tenant-c')).toBeUndefined();
    await client.del(answers.pointerKey('tenant-c'));
    // Published versions do not expire.
    for (const key of await staticKeys()) expect(await client.ttl(key)).toBe(-1);
    expect(await staticKeys()).toHaveLength(2 * 4 + 1);
  });

  test('a republish switches versions atomically: concurrent readers see the old answer or the new one, then the old keys are gone', async () => {
    const many = (tag: string): StaticAnswerFile => file(TENANT_A, Array.from({ length: 1_500 }, (_, i): [string, string[], string] =>
      [`q${i}`, [`Question number ${i}?`, `Q ${i}`], `${tag} answer ${i}`]));
    put('tenant-a/many.json', many('old'));
    const first = await load();
    const oldVersion = first.summary.published[0].version;
    const oldKeys = answers.versionKeys(TENANT_A, oldVersion);

    put('tenant-a/many.json', many('new'));
    // A small batch size makes the write take many commands, so the readers run while it is half done.
    const writer = new ValkeyStaticAnswers(client, { keyPrefix: KEY_PREFIX, batchSize: 50 });
    const readerClient = client.duplicate();
    const reader = new ValkeyStaticAnswers(readerClient, { keyPrefix: KEY_PREFIX });
    const seen: Array<string | undefined> = [];
    let done = false;
    const readers = [0, 749, 1_499].map(async (i) => {
      while (!done) seen.push(await ask(TENANT_A, `question NUMBER ${i}`, reader));
    });
    const second = await load({ publisher: writer }).finally(() => {
      done = true;
    });
    await Promise.all(readers);
    readerClient.disconnect();

    const newVersion = second.summary.published[0].version;
    expect(newVersion).not.toBe(oldVersion);
    expect(await answers.currentVersion(TENANT_A)).toBe(newVersion);
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.filter((answer) => !/^(old|new) answer (0|749|1499)$/.test(answer ?? ''))).toEqual([]);
    expect(await ask(TENANT_A, 'Q 1499')).toBe('new answer 1499');

    // The replaced version is deleted; what is left is exactly the new version.
    expect(second.summary.errors).toEqual([]);
    expect(await client.exists(oldKeys.questions, oldKeys.answers, oldKeys.meta)).toBe(0);
    const current = answers.versionKeys(TENANT_A, newVersion);
    expect(await staticKeys()).toEqual([
      answers.pointerKey(TENANT_A), answers.registryKey, current.answers, current.meta, current.questions,
    ].sort());
  });

  test('while a version is being written, readers get the old one (the pointer moves last)', async () => {
    publishDefaults();
    const embedder = new BagOfWordsEmbedder();
    const store = new ScopedMemoryStore();
    const writer = new ValkeyStaticAnswers(client, { keyPrefix: KEY_PREFIX, vectorStore: store });
    await load({ publisher: writer, embedder });
    const oldScope = await answers.vectorScope(TENANT_A);

    put('tenant-a/faq.json', file(TENANT_A, [['hours', ['What are your opening hours?'], 'A: NEW hours']]));
    s3.deleteObject(BUCKET, `${PREFIX}tenant-b/faq.json`);
    // The vectors are written after the hashes and before the switch: look from inside a put.
    const during: Array<[string | undefined, string | undefined]> = [];
    let looked = false;
    store.onPut = async () => {
      if (looked) return;
      looked = true; // puts run concurrently: look once
      during.push([await ask(TENANT_A, 'What are your opening hours?'), await answers.vectorScope(TENANT_A)]);
    };
    await load({ publisher: writer, embedder });
    expect(during).toEqual([['A: 9am to 6pm, Monday to Saturday.', oldScope]]);
    expect(await ask(TENANT_A, 'What are your opening hours?')).toBe('A: NEW hours');
  });

  test('a lookup that read the pointer just before a switch (and the deletion of that version) answers from the new version', async () => {
    publishDefaults();
    await load();
    put('tenant-a/faq.json', file(TENANT_A, [['hours', ['What are your opening hours?'], 'A: NEW hours']]));
    const oldVersion = await answers.currentVersion(TENANT_A);
    let republished: LoadSummary | undefined;
    // The reader's first GET (the pointer) returns the old version; a whole republish runs before the reader goes on.
    const readerClient = hookAfterFirstGet(client, async () => {
      republished = (await load()).summary;
    });
    const reader = new ValkeyStaticAnswers(readerClient, { keyPrefix: KEY_PREFIX });

    expect(await ask(TENANT_A, 'What are your opening hours?', reader)).toBe('A: NEW hours');
    expect(republished?.published.map((p) => p.tenantId)).toContain(TENANT_A);
    const oldKeys = answers.versionKeys(TENANT_A, oldVersion!);
    expect(await client.exists(oldKeys.questions, oldKeys.answers)).toBe(0);
  });

  test('when the replaced version cannot be deleted, its keys get a short TTL instead and the cleanup error is counted', async () => {
    publishDefaults();
    await load();
    const oldA = answers.versionKeys(TENANT_A, (await answers.currentVersion(TENANT_A))!);
    // A cache user that may do everything but UNLINK.
    await client.call('ACL', 'SETUSER', 'no-unlink', 'on', '>no-unlink-pw', '~*', '&*', '+@all', '-unlink');
    const restricted = new Valkey({ host: redis.host, port: redis.port, username: 'no-unlink', password: 'no-unlink-pw', maxRetriesPerRequest: 1 });
    restricted.on('error', () => undefined);
    try {
      put('tenant-a/faq.json', file(TENANT_A, [['hours', ['What are your opening hours?'], 'A: NEW hours']]));
      const writer = new ValkeyStaticAnswers(restricted, { keyPrefix: KEY_PREFIX, staleTtlSeconds: 120 });
      const { summary, metrics } = await load({ publisher: writer });

      expect(summary.published.map((p) => p.tenantId)).toEqual([TENANT_A, TENANT_B]);
      expect(await ask(TENANT_A, 'What are your opening hours?')).toBe('A: NEW hours');
      expect(summary.errors.map((e) => [e.reason, e.tenantId])).toEqual([['cleanup', TENANT_A], ['cleanup', TENANT_B]]);
      expect(summary.errors[0].message).toMatch(/\(expiring\): .*NOPERM/);
      expect(metrics.sum(M.STATIC_ANSWER_ERRORS, { [M.DIMENSION_REASON]: 'cleanup' })).toBe(2);
      for (const key of [oldA.questions, oldA.answers, oldA.meta]) {
        const ttl = await client.ttl(key);
        expect(ttl).toBeGreaterThan(0);
        expect(ttl).toBeLessThanOrEqual(120);
      }
    } finally {
      restricted.disconnect();
      await client.call('ACL', 'DELUSER', 'no-unlink');
    }
  });

  test('a write that fails midway leaves the old version current and no keys of the new one', async () => {
    publishDefaults();
    await load();
    const before = await staticKeys();
    const versionA = await answers.currentVersion(TENANT_A);

    put('tenant-a/faq.json', file(TENANT_A, [['hours', ['What are your opening hours?'], 'A: new hours']]));
    const store = new ScopedMemoryStore();
    store.failPuts = true;
    const failing = new ValkeyStaticAnswers(client, { keyPrefix: KEY_PREFIX, vectorStore: store });
    const { summary, metrics } = await load({ publisher: failing, embedder: new BagOfWordsEmbedder() });

    expect(summary.published).toEqual([]);
    expect(summary.skipped.map((s) => [s.tenantId, s.errors.map((e) => e.reason)])).toEqual([[TENANT_A, ['publish']], [TENANT_B, ['publish']]]);
    expect(metrics.sum(M.STATIC_ANSWER_ERRORS, { [M.DIMENSION_REASON]: 'publish' })).toBe(2);
    expect(await answers.currentVersion(TENANT_A)).toBe(versionA);
    expect(await ask(TENANT_A, 'What are your opening hours?')).toBe('A: 9am to 6pm, Monday to Saturday.');
    expect(await staticKeys()).toEqual(before);
  });
});

describe('invalid files keep the tenant\'s published answers', () => {
  test.each<[string, () => void, string, RegExp]>([
    [
      'invalid JSON in a file the tenant published from',
      () => put('tenant-a/policies.json', '{"tenantId": "tenant-a", "answers": [ {"id": "privacy", '),
      'json',
      /not valid JSON/,
    ],
    [
      'a schema violation in a new file that names the tenant',
      () => put('tenant-a/new.json', { tenantId: TENANT_A, answers: [{ id: 'bad id!', questions: [], answer: 'x' }] }),
      'schema',
      /answers\.0\.id: id must be 1-128 letters.*answers\.0\.questions: questions must hold at least one variant/,
    ],
    [
      'an unknown field (the schema is strict)',
      () => put('tenant-a/policies.json', { ...A_POLICIES, answer: [] }),
      'schema',
      /\(file\): Unrecognized key.*answer/,
    ],
    [
      'a question that is empty once normalized',
      () => put('tenant-a/policies.json', file(TENANT_A, [['privacy', ['???'], 'A: new']])),
      'schema',
      /answers\.0\.questions\.0: "\?\?\?" is empty once normalized/,
    ],
  ])('%s: the old answers stay and answer, the other tenant is published, the error is counted and logged', async (_, breakIt, reason, messagePattern) => {
    publishDefaults();
    await load();
    const versionA = await answers.currentVersion(TENANT_A);

    // New content for both tenants, and one broken file for tenant A.
    put('tenant-a/faq.json', file(TENANT_A, [['hours', ['What are your opening hours?'], 'A: NEW hours']]));
    put('tenant-b/faq.json', file(TENANT_B, [['returns', ['How do I return an item?'], 'B: NEW returns']]));
    breakIt();
    const { summary, metrics, logger } = await load();

    // Tenant A: untouched, old answers from both of its old files still answer.
    expect(await answers.currentVersion(TENANT_A)).toBe(versionA);
    expect(await ask(TENANT_A, 'What are your opening hours?')).toBe('A: 9am to 6pm, Monday to Saturday.');
    expect(await ask(TENANT_A, 'Do you sell my data?')).toBe('A: We never sell your data.');
    // Tenant B: the new answers, and its removed answer is gone.
    expect(await ask(TENANT_B, 'How do I return an item?')).toBe('B: NEW returns');
    expect(await ask(TENANT_B, 'Do you ship abroad?')).toBeUndefined();

    expect(summary.published.map((p) => p.tenantId)).toEqual([TENANT_B]);
    expect(summary.skipped).toHaveLength(1);
    expect(summary.skipped[0].tenantId).toBe(TENANT_A);
    expect(summary.skipped[0].errors).toEqual([expect.objectContaining({ reason, key: expect.stringMatching(/^answers\/tenant-a\//), message: expect.stringMatching(messagePattern) })]);
    expect(metrics.sum(M.STATIC_ANSWER_ERRORS, { [M.DIMENSION_REASON]: reason })).toBe(1);
    expect(metrics.sum(M.STATIC_ANSWER_ERRORS)).toBe(1);
    expect(metrics.sum(M.STATIC_ANSWERS_PUBLISHED)).toBe(1);
    const [logged] = logger.errors();
    expect(logged).toEqual(expect.objectContaining({ reason, key: summary.skipped[0].errors[0].key, detail: expect.stringMatching(messagePattern) }));
  });

  test('a file S3 cannot serve keeps its tenant too (reason read)', async () => {
    publishDefaults();
    await load();
    put('tenant-a/faq.json', file(TENANT_A, [['hours', ['What are your opening hours?'], 'A: NEW hours']]));
    s3.failGet(BUCKET, `${PREFIX}tenant-a/policies.json`, { status: 403, code: 'AccessDenied', message: 'Access Denied' });
    const { summary, metrics } = await load();
    expect(summary.skipped.map((s) => [s.tenantId, s.errors[0].reason, s.errors[0].message])).toEqual([[TENANT_A, 'read', expect.stringMatching(/AccessDenied/)]]);
    expect(await ask(TENANT_A, 'What are your opening hours?')).toBe('A: 9am to 6pm, Monday to Saturday.');
    expect(metrics.sum(M.STATIC_ANSWER_ERRORS, { [M.DIMENSION_REASON]: 'read' })).toBe(1);
  });

  test.each<[string, StaticAnswerFile, RegExp]>([
    [
      'an answer id defined in two files',
      file(TENANT_A, [['hours', ['Are you open on Sundays?'], 'A: other hours']]),
      /answer id "hours" is defined twice \(in answers\/tenant-a\/faq\.json and answers\/tenant-a\/zz-extra\.json\)/,
    ],
    [
      'a question variant (after normalization) given to two answers in two files',
      file(TENANT_A, [['opening', ['  when ARE you open?? '], 'A: other hours']]),
      /question " {2}when ARE you open\?\? " \(normalized "when are you open"\) belongs to answers "hours" \(answers\/tenant-a\/faq\.json\) and "opening"/,
    ],
  ])('duplicates across files are rejected: %s', async (_, extra, messagePattern) => {
    publishDefaults();
    await load();
    const versionA = await answers.currentVersion(TENANT_A);
    put('tenant-a/zz-extra.json', extra);
    const { summary, metrics } = await load();
    expect(summary.skipped.map((s) => [s.tenantId, s.errors.map((e) => e.reason)])).toEqual([[TENANT_A, ['duplicate']]]);
    expect(summary.skipped[0].errors[0].message).toMatch(messagePattern);
    expect(metrics.sum(M.STATIC_ANSWER_ERRORS, { [M.DIMENSION_REASON]: 'duplicate' })).toBe(1);
    expect(await answers.currentVersion(TENANT_A)).toBe(versionA);
    expect(summary.published.map((p) => p.tenantId)).toEqual([TENANT_B]);
  });

  test('the same variant twice within one answer is stored once, not an error', async () => {
    put('tenant-a/faq.json', file(TENANT_A, [['hours', ['When are you open?', 'when are you open', 'Opening hours'], 'A: hours']]));
    const { summary } = await load();
    expect(summary.errors).toEqual([]);
    expect(summary.published[0]).toMatchObject({ answers: 1, variants: 2 });
    expect(await ask(TENANT_A, 'WHEN are you open')).toBe('A: hours');
  });
});

describe('tenants whose files are gone', () => {
  test('a tenant whose files are all removed loses its answers and every key', async () => {
    publishDefaults();
    await load();
    s3.deleteObject(BUCKET, `${PREFIX}tenant-b/faq.json`);

    const { summary, metrics } = await load();
    expect(summary.removed).toEqual([TENANT_B]);
    expect(await ask(TENANT_B, 'How do I return an item?')).toBeUndefined();
    expect(await answers.vectorScope(TENANT_B)).toBeUndefined();
    expect(await client.keys(`${KEY_PREFIX}static:${ValkeyStaticAnswers.tenantHash(TENANT_B)}:*`)).toEqual([]);
    expect(await client.smembers(answers.registryKey)).toEqual([ValkeyStaticAnswers.tenantHash(TENANT_A)]);
    expect(await ask(TENANT_A, 'How do I return an item?')).toBe('A: Returns are free within 30 days.');
    expect(metrics.sum(M.STATIC_ANSWER_ERRORS)).toBe(0);
  });

  test('an empty prefix removes every tenant', async () => {
    publishDefaults();
    await load();
    s3.reset();
    const { summary } = await load();
    expect(summary.removed).toEqual([TENANT_A, TENANT_B]);
    expect(await staticKeys()).toEqual([]);
  });

  test('a broken file nobody published from suspends removals (the answers may have moved there) but blocks no tenant', async () => {
    publishDefaults();
    await load();
    s3.deleteObject(BUCKET, `${PREFIX}tenant-b/faq.json`);
    put('tenant-b/moved.json', '{ "tenantId": "tenant-b", ');
    put('tenant-a/faq.json', file(TENANT_A, [['hours', ['What are your opening hours?'], 'A: NEW hours']]));

    const { summary, metrics, logger } = await load();
    expect(summary.removed).toEqual([]);
    expect(summary.removalsSuspended).toMatch(/answers\/tenant-b\/moved\.json/);
    expect(await ask(TENANT_B, 'How do I return an item?')).toBe('B: Send it back within 14 days.');
    expect(summary.published.map((p) => p.tenantId)).toEqual([TENANT_A]);
    expect(await ask(TENANT_A, 'What are your opening hours?')).toBe('A: NEW hours');
    expect(metrics.sum(M.STATIC_ANSWER_ERRORS, { [M.DIMENSION_REASON]: 'json' })).toBe(1);
    expect(logger.lines.some((l) => l.level === 'warn' && (l.attributes.tenants as string[] | undefined)?.includes(TENANT_B))).toBe(true);
  });
});

describe('what the loader cannot work without', () => {
  test('a listing that fails throws (the schedule retries) and changes nothing', async () => {
    publishDefaults();
    await load();
    const before = await staticKeys();
    s3.failList(BUCKET, { status: 403, code: 'AccessDenied', message: 'Access Denied' });
    await expect(load()).rejects.toThrow(/could not list the answer files: AccessDenied/);
    expect(await staticKeys()).toEqual(before);
  });

  test('objects that are listed but none can be read: throws, nothing is removed', async () => {
    publishDefaults();
    await load();
    const before = await staticKeys();
    for (const key of ['tenant-a/faq.json', 'tenant-a/policies.json', 'tenant-b/faq.json']) {
      s3.failGet(BUCKET, `${PREFIX}${key}`, { status: 403, code: 'AccessDenied', message: 'Access Denied' });
    }
    await expect(load()).rejects.toThrow(/could not read any of the 3 answer files/);
    expect(await staticKeys()).toEqual(before);
  });
});

describe('with an embedder', () => {
  test('every variant is stored under a version-specific scope with answerKey = answer id; vectorScope() names it', async () => {
    publishDefaults();
    const embedder = new BagOfWordsEmbedder();
    const store = new ScopedMemoryStore();
    const writer = new ValkeyStaticAnswers(client, { keyPrefix: KEY_PREFIX, vectorStore: store, vectorTtlSeconds: 86_400 });
    const { summary } = await load({ publisher: writer, embedder, options: { embedBatchSize: 2 } });
    expect(summary.errors).toEqual([]);

    // Embedded in batches of at most 2, each variant once.
    expect(embedder.calls.every((batch) => batch.length >= 1 && batch.length <= 2)).toBe(true);
    expect(embedder.calls.flat()).toHaveLength(7);

    const versionA = summary.published.find((p) => p.tenantId === TENANT_A)!.version;
    const scopeA = await answers.vectorScope(TENANT_A);
    const scopeB = await answers.vectorScope(TENANT_B);
    expect(scopeA).toBe(staticVectorScope(TENANT_A, versionA, embedder.modelId));
    expect(scopeB).toMatch(/^[0-9a-f]{32}$/);
    expect(scopeB).not.toBe(scopeA);
    expect(store.size(scopeA!)).toBe(5);
    expect(store.size(scopeB!)).toBe(2);
    expect(store.putOptions.every((o) => o.ttlSeconds === 86_400 && o.maxEntriesPerScope >= 2)).toBe(true);

    const [query] = await embedder.embed(['Do you sell my data?']);
    const [best] = await store.search(scopeA!, query, 3);
    expect(best.similarity).toBeCloseTo(1, 5);
    expect(best.entry).toMatchObject({ question: 'Do you sell my data?', answerKey: 'privacy', answer: { text: 'A: We never sell your data.', tierId: 'static', costUsd: 0 } });
    // Tenant B's scope holds only B's answers, whatever the question.
    const fromB = await store.search(scopeB!, query, 10);
    expect(fromB.map((m) => m.entry.answerKey).sort()).toEqual(['returns', 'shipping']);
    expect(fromB.every((m) => m.entry.answer.text.startsWith('B:'))).toBe(true);

    // A reader expecting another embedding model gets no scope (its vectors are not comparable).
    const otherModel = new ValkeyStaticAnswers(client, { keyPrefix: KEY_PREFIX, expectedModelId: 'amazon.titan-embed-text-v2:0' });
    expect(await otherModel.vectorScope(TENANT_A)).toBeUndefined();
    const sameModel = new ValkeyStaticAnswers(client, { keyPrefix: KEY_PREFIX, expectedModelId: embedder.modelId });
    expect(await sameModel.vectorScope(TENANT_A)).toBe(scopeA);

    // A republish moves to a new scope and deletes the old one.
    put('tenant-a/policies.json', file(TENANT_A, [['privacy', ['Do you sell my data?'], 'A: Still never.']]));
    await load({ publisher: writer, embedder });
    const newScopeA = await answers.vectorScope(TENANT_A);
    expect(newScopeA).not.toBe(scopeA);
    expect(store.deleted.has(scopeA!)).toBe(true);
    expect(store.size(newScopeA!)).toBe(4);
    const [again] = await store.search(newScopeA!, query, 1);
    expect(again.entry.answer.text).toBe('A: Still never.');
  });

  test('published without an embedder: no vector scope', async () => {
    publishDefaults();
    await load();
    expect(await answers.vectorScope(TENANT_A)).toBeUndefined();
  });

  test('an embedding failure skips the tenant (reason embedding); its published answers stay', async () => {
    publishDefaults();
    const embedder = new BagOfWordsEmbedder();
    const store = new ScopedMemoryStore();
    const writer = new ValkeyStaticAnswers(client, { keyPrefix: KEY_PREFIX, vectorStore: store });
    await load({ publisher: writer, embedder });
    const scopeA = await answers.vectorScope(TENANT_A);

    embedder.failWith = new Error('ThrottlingException: Too many requests');
    put('tenant-a/faq.json', file(TENANT_A, [['hours', ['What are your opening hours?'], 'A: NEW hours']]));
    const { summary, metrics } = await load({ publisher: writer, embedder });
    expect(summary.skipped.map((s) => [s.tenantId, s.errors[0].reason])).toEqual([[TENANT_A, 'embedding'], [TENANT_B, 'embedding']]);
    expect(metrics.sum(M.STATIC_ANSWER_ERRORS, { [M.DIMENSION_REASON]: 'embedding' })).toBe(2);
    expect(await ask(TENANT_A, 'What are your opening hours?')).toBe('A: 9am to 6pm, Monday to Saturday.');
    expect(await answers.vectorScope(TENANT_A)).toBe(scopeA);
    expect(store.size(scopeA!)).toBe(5);
  });
});
