import { defaultProvider } from '@aws-sdk/credential-provider-node';
import { Client, errors } from '@opensearch-project/opensearch';
import { AwsSigv4Signer } from '@opensearch-project/opensearch/aws-v3';
import type { HnswRuntimeConfig } from '../../constructs/contract/runtime-config';
import type { CachedAnswer } from '../core/ports';
import type { SemanticEntry, StoreOptions, VectorMatch, VectorStore } from '../core/semantic/ports';

export interface OpenSearchVectorStoreOptions {
  /** Collection endpoint, `https://<id>.<region>.aoss.amazonaws.com`. */
  readonly endpoint: string;
  /** Index name (lower case). */
  readonly index: string;
  readonly hnsw: HnswRuntimeConfig;
  /** @default process.env.AWS_REGION */
  readonly region?: string;
  /** Credentials for SigV4. @default the SDK's default chain (`defaultProvider()`): the Lambda role */
  readonly getCredentials?: () => Promise<{ accessKeyId: string; secretAccessKey: string; sessionToken?: string; expiration?: Date }>;
  /** Milliseconds a request may take. @default 3000 */
  readonly requestTimeoutMs?: number;
  /** Most documents one `put` deletes while enforcing the scope bound and expiry. @default 50 */
  readonly evictionBatch?: number;
}

interface Payload {
  readonly question: string;
  readonly answer: CachedAnswer;
  readonly answerVector?: number[];
  readonly answerKey: string;
}

interface StoredDocument {
  readonly embedding: number[];
  readonly scope: string;
  readonly entry_id: string;
  readonly created_at: number;
  readonly expires_at: number;
  readonly payload: Payload;
}

interface SearchResponse<T> {
  hits: {
    total?: { value: number; relation: string };
    hits: Array<{ _id: string; _score: number | null; _source?: T }>;
  };
}

/**
 * The semantic cache on an Amazon OpenSearch Serverless (AOSS) vector search collection, through
 * `@opensearch-project/opensearch` with SigV4 signing for the service `aoss`.
 *
 * Requests (paths relative to the collection endpoint):
 * - `ensureIndex`: `PUT /<index>` with `settings.index.knn: true` and the mappings
 *   `embedding: knn_vector` (`dimension`, `method: { name: hnsw, space_type: cosinesimil, engine:
 *   faiss, parameters: { m, ef_construction, ef_search } }`), `scope` and `entry_id: keyword`,
 *   `created_at` and `expires_at: date (epoch_millis)`, and `payload: object, enabled: false`
 *   (question, answer, answer vector and key: kept in `_source`, never indexed). `ef_search` is
 *   a Faiss HNSW method parameter (the `knn.algo_param.ef_search` index setting is NMSLIB's). A
 *   `400 resource_already_exists_exception` counts as success.
 * - `search`: `POST /<index>/_search` with `size: k` and a `knn` query on `embedding` with `k` and
 *   a `filter` (Faiss efficient filtering: the filter applies during the graph search, so a small
 *   scope still gets `k` results): `term scope` and `range expires_at > now`. For `cosinesimil`
 *   OpenSearch scores `(2 - d) / 2` with `d = 1 - cos`, so `similarity = 2 * _score - 1`.
 * - `put`: `POST /<index>/_doc` (auto-generated `_id`: vector search collections accept no
 *   custom document ids; the entry id is the `entry_id` field), then the scope's bound and expiry are enforced: `POST /<index>/_search` for
 *   the scope's oldest documents (`sort created_at asc`, `track_total_hits`), and `POST /_bulk`
 *   deleting those beyond `maxEntriesPerScope` (by the total) and those already expired.
 * - `deleteScope`: pages through the scope with `search_after` on `(created_at, entry_id)` and
 *   deletes each page by id with `POST /_bulk` (documents indexed in the last refresh interval
 *   are not seen yet and stay).
 *
 * Limitations, by the service's design:
 * - AOSS has no document TTL: expired documents are filtered out of every search and deleted
 *   only when their scope receives a new entry; a scope that is never written again keeps its
 *   (invisible) documents until the index is dropped.
 * - Vector search collections refresh every 60 s, so documents indexed in the last minute are
 *   not yet visible to the eviction query: the bound is enforced with that lag, and by at most
 *   `evictionBatch` documents per `put`.
 *
 * No local OpenSearch can be run for the tests: this adapter is tested against the request and
 * response formats of the OpenSearch documentation (k-NN vector mapping, efficient k-NN
 * filtering, search, index document, bulk) with a local HTTP server that records what is sent.
 */
export class OpenSearchVectorStore implements VectorStore {
  readonly client: Client;
  private readonly index: string;

  constructor(private readonly options: OpenSearchVectorStoreOptions) {
    if (!/^[a-z0-9][a-z0-9_.-]{0,254}$/.test(options.index) || options.index === '.' || options.index === '..') {
      throw new Error(`invalid index name ${JSON.stringify(options.index)}: lower-case letters, digits, '_', '-' and '.' only`);
    }
    for (const [name, value] of Object.entries(options.hnsw)) {
      if (!Number.isInteger(value) || value < 1) throw new Error(`hnsw.${name} must be a positive integer, got ${value}`);
    }
    const region = options.region ?? process.env.AWS_REGION;
    if (!region) throw new Error('OpenSearchVectorStore needs a region (options.region or AWS_REGION)');
    this.index = options.index;
    this.client = new Client({
      ...AwsSigv4Signer({ region, service: 'aoss', getCredentials: options.getCredentials ?? defaultProvider() }),
      node: options.endpoint,
      requestTimeout: options.requestTimeoutMs ?? 3_000,
      maxRetries: 0,
    });
  }

  /** The body of `PUT /<index>`. */
  indexDefinition(dimensions: number): Record<string, unknown> {
    if (!Number.isInteger(dimensions) || dimensions < 1) throw new Error(`dimensions must be a positive integer, got ${dimensions}`);
    const { m, efConstruction, efSearch } = this.options.hnsw;
    return {
      settings: { index: { knn: true } },
      mappings: {
        properties: {
          embedding: {
            type: 'knn_vector',
            dimension: dimensions,
            method: {
              name: 'hnsw',
              space_type: 'cosinesimil',
              engine: 'faiss',
              parameters: { m, ef_construction: efConstruction, ef_search: efSearch },
            },
          },
          scope: { type: 'keyword' },
          entry_id: { type: 'keyword' },
          created_at: { type: 'date', format: 'epoch_millis' },
          expires_at: { type: 'date', format: 'epoch_millis' },
          payload: { type: 'object', enabled: false },
        },
      },
    };
  }

  async ensureIndex(dimensions: number, signal?: AbortSignal): Promise<void> {
    try {
      await this.request({ method: 'PUT', path: `/${this.index}`, body: this.indexDefinition(dimensions) }, signal);
    } catch (err) {
      if (err instanceof errors.ResponseError && errorType(err) === 'resource_already_exists_exception') return;
      throw err;
    }
  }

  async search(scope: string, vector: Float32Array, k: number, signal?: AbortSignal): Promise<VectorMatch[]> {
    if (!Number.isInteger(k) || k < 1) throw new Error(`k must be a positive integer, got ${k}`);
    const body = {
      size: k,
      query: {
        knn: {
          embedding: {
            vector: Array.from(vector),
            k,
            filter: {
              bool: {
                filter: [{ term: { scope } }, { range: { expires_at: { gt: Date.now() } } }],
              },
            },
          },
        },
      },
    };
    const res = await this.request({ method: 'POST', path: `/${this.index}/_search`, body }, signal);
    const hits = (res.body as SearchResponse<StoredDocument>).hits?.hits ?? [];
    const matches: VectorMatch[] = [];
    for (const hit of hits) {
      const doc = hit._source;
      // Defence in depth: the filter already selects the scope.
      if (!doc || doc.scope !== scope || typeof hit._score !== 'number') continue;
      matches.push({
        similarity: 2 * hit._score - 1,
        entry: {
          id: doc.entry_id,
          scope: doc.scope,
          question: doc.payload.question,
          vector: Float32Array.from(doc.embedding),
          answer: doc.payload.answer,
          answerVector: doc.payload.answerVector ? Float32Array.from(doc.payload.answerVector) : undefined,
          answerKey: doc.payload.answerKey ?? doc.entry_id,
          createdAt: doc.created_at,
        },
      });
    }
    return matches.sort((a, b) => b.similarity - a.similarity).slice(0, k);
  }

  async put(entry: SemanticEntry, options: StoreOptions, signal?: AbortSignal): Promise<void> {
    const ttlMs = Math.max(1, Math.ceil(options.ttlSeconds)) * 1000;
    const doc: StoredDocument = {
      embedding: Array.from(entry.vector),
      scope: entry.scope,
      entry_id: entry.id,
      created_at: entry.createdAt,
      expires_at: entry.createdAt + ttlMs,
      payload: {
        question: entry.question,
        answer: entry.answer,
        answerVector: entry.answerVector ? Array.from(entry.answerVector) : undefined,
        answerKey: entry.answerKey,
      },
    };
    await this.request({ method: 'POST', path: `/${this.index}/_doc`, body: doc }, signal);
    await this.evict(entry.scope, Math.max(0, Math.floor(options.maxEntriesPerScope)), signal);
  }

  /** Deletes every document of a scope, page by page. */
  async deleteScope(scope: string, signal?: AbortSignal): Promise<void> {
    let after: unknown[] | undefined;
    for (;;) {
      const res = await this.request({
        method: 'POST',
        path: `/${this.index}/_search`,
        body: {
          size: 500,
          _source: false,
          query: { bool: { filter: [{ term: { scope } }] } },
          sort: [{ created_at: { order: 'asc' } }, { entry_id: { order: 'asc' } }],
          ...(after ? { search_after: after } : {}),
        },
      }, signal);
      const hits = (res.body as SearchResponse<never>).hits.hits as Array<{ _id: string; sort?: unknown[] }>;
      if (hits.length === 0) return;
      await this.bulkDelete(hits.map((h) => h._id), signal);
      after = hits[hits.length - 1].sort;
      if (!after) return;
    }
  }

  /**
   * Deletes the documents of every scope that starts with `scopePrefix` (a `prefix` query on the
   * scope keyword), page by page like {@link deleteScope}; documents indexed in the last refresh
   * interval are not seen yet and stay.
   */
  async deleteScopePrefix(scopePrefix: string): Promise<void> {
    let after: unknown[] | undefined;
    for (;;) {
      const res = await this.client.transport.request({
        method: 'POST',
        path: `/${this.index}/_search`,
        body: {
          size: 500,
          _source: false,
          query: { bool: { filter: [{ prefix: { scope: scopePrefix } }] } },
          sort: [{ created_at: { order: 'asc' } }, { entry_id: { order: 'asc' } }],
          ...(after ? { search_after: after } : {}),
        },
      });
      const hits = (res.body as SearchResponse<never>).hits.hits as Array<{ _id: string; sort?: unknown[] }>;
      if (hits.length === 0) return;
      await this.bulkDelete(hits.map((h) => h._id));
      after = hits[hits.length - 1].sort;
      if (!after) return;
    }
  }

  /**
   * Deletes one entry: finds its documents by `scope` and `entry_id`, then deletes them by id
   * (`POST /_bulk`). A document indexed within the last refresh interval is not found yet.
   */
  async deleteEntry(scope: string, id: string, signal?: AbortSignal): Promise<boolean> {
    const res = await this.request({
      method: 'POST',
      path: `/${this.index}/_search`,
      body: { size: 10, _source: false, query: { bool: { filter: [{ term: { scope } }, { term: { entry_id: id } }] } } },
    }, signal);
    const hits = (res.body as SearchResponse<never>).hits.hits;
    if (hits.length === 0) return false;
    await this.bulkDelete(hits.map((h) => h._id), signal);
    return true;
  }

  /** Deletes the scope's oldest documents beyond `max` and its expired ones (one batch). */
  private async evict(scope: string, max: number, signal?: AbortSignal): Promise<void> {
    const batch = this.options.evictionBatch ?? 50;
    const res = await this.request({
      method: 'POST',
      path: `/${this.index}/_search`,
      body: {
        size: batch,
        track_total_hits: true,
        _source: ['expires_at'],
        query: { bool: { filter: [{ term: { scope } }] } },
        sort: [{ created_at: { order: 'asc' } }],
      },
    }, signal);
    const hits = (res.body as SearchResponse<{ expires_at?: number }>).hits;
    const excess = (hits.total?.value ?? 0) - max;
    const now = Date.now();
    const doomed = hits.hits
      .filter((hit, i) => i < excess || (hit._source?.expires_at !== undefined && hit._source.expires_at <= now))
      .map((hit) => hit._id);
    if (doomed.length > 0) await this.bulkDelete(doomed, signal);
  }

  private async bulkDelete(ids: string[], signal?: AbortSignal): Promise<void> {
    const bulk = await this.request({
      method: 'POST',
      path: '/_bulk',
      bulkBody: ids.map((id) => ({ delete: { _index: this.index, _id: id } })),
    }, signal);
    const result = bulk.body as { errors?: boolean; items?: Array<{ delete?: { error?: { type?: string; reason?: string } } }> };
    const failed = result.errors ? result.items?.find((item) => item.delete?.error)?.delete?.error : undefined;
    if (failed) throw new Error(`bulk delete failed: ${failed.type ?? 'error'}: ${failed.reason ?? ''}`);
  }

  private request(params: TransportParams, signal?: AbortSignal): Promise<{ body: unknown }> {
    return abortableRequest(this.client, params, signal);
  }
}

type TransportParams = Parameters<Client['transport']['request']>[0];

/** The request's promise carries `abort()`, which destroys the HTTP request; an aborted signal calls it. */
function abortableRequest(client: Client, params: TransportParams, signal?: AbortSignal): Promise<{ body: unknown }> {
  signal?.throwIfAborted();
  const request = client.transport.request(params);
  if (!signal) return request;
  const onAbort = (): void => {
    request.abort();
  };
  signal.addEventListener('abort', onAbort, { once: true });
  return Promise.resolve(request).then(
    (res) => {
      signal.removeEventListener('abort', onAbort);
      return res;
    },
    (err: unknown) => {
      signal.removeEventListener('abort', onAbort);
      throw signal.aborted ? signal.reason : err;
    },
  );
}

function errorType(err: InstanceType<typeof errors.ResponseError>): string | undefined {
  const body = err.meta?.body as { error?: { type?: string } } | undefined;
  return body?.error?.type;
}
