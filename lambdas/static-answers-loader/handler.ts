/**
 * The static answers loader Lambda, run daily by EventBridge Scheduler: reads the answer files
 * from S3, publishes every valid tenant into Valkey (see `loadStaticAnswers` for the rules).
 *
 * It throws, so that Lambda retries the run and then sends it to the dead-letter queue, only when
 * nothing could be done: the files cannot be listed or none can be read (S3 down, no access), or
 * the cache or its AUTH token cannot be reached. Per-tenant errors are `StaticAnswerErrors`
 * metrics and log lines; the run succeeds.
 *
 * Configuration: `STATIC_LOADER_CONFIG_ENV` (JSON `StaticAnswersLoaderRuntimeConfig`).
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { GetObjectCommand, S3Client, paginateListObjectsV2 } from '@aws-sdk/client-s3';
import type { Context } from 'aws-lambda';
import type Valkey from 'iovalkey';
import { AiMetricNames as M } from '../../constructs/contract/metrics';
import { STATIC_LOADER_CONFIG_ENV, type StaticAnswersLoaderRuntimeConfig } from '../../constructs/contract/runtime-config';
import { createEmbedder, openCacheConnection } from '../adapters/connections';
import { EmfWriter } from '../adapters/emf-metrics';
import { readJsonEnv } from '../adapters/environment';
import { s3ClientConfig } from '../adapters/s3-client';
import { ValkeyStaticAnswers } from '../adapters/valkey-static-answers';
import { ValkeyVectorStore } from '../adapters/valkey-vector-store';
import type { Embedder } from '../core/semantic/ports';
import { loadStaticAnswers, type AnswerObjectSource, type LoadSummary, type LoaderLogger, type SourceObject } from '../core/static-answers-loader';

const logger = new Logger();
const loaderLogger: LoaderLogger = {
  info: (message, attributes = {}) => logger.info(message, attributes),
  warn: (message, attributes = {}) => logger.warn(message, attributes),
  error: (message, attributes = {}) => logger.error(message, attributes),
};
const serviceName = process.env.POWERTOOLS_SERVICE_NAME ?? 'scalable-ai';
/** Built once per container; each invocation gets a recorder of its own. */
const emf = EmfWriter.fromEnvironment(serviceName);
/** The loader writes in bulk: it waits longer for the cache than the router, which fails open. */
const MIN_CACHE_TIMEOUT_MS = 5_000;
/** Retries of the AWS calls (S3, embedding model): a daily batch job can afford them. */
const MAX_ATTEMPTS = 4;

/** The answer files: every object under a prefix of an S3 bucket. */
export class S3AnswerFileSource implements AnswerObjectSource {
  constructor(
    private readonly client: S3Client,
    private readonly bucket: string,
    private readonly prefix: string,
    /** Keys per ListObjectsV2 page (S3 returns at most 1,000). */
    private readonly pageSize = 1_000,
  ) {}

  async list(): Promise<SourceObject[]> {
    const objects: SourceObject[] = [];
    const pages = paginateListObjectsV2({ client: this.client, pageSize: this.pageSize }, { Bucket: this.bucket, Prefix: this.prefix });
    for await (const page of pages) {
      for (const o of page.Contents ?? []) if (o.Key !== undefined) objects.push({ key: o.Key, size: o.Size });
    }
    return objects;
  }

  async get(key: string): Promise<string> {
    const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
    if (!out.Body) throw new Error(`s3://${this.bucket}/${key} has no body`);
    return out.Body.transformToString('utf-8');
  }
}

function readConfig(): StaticAnswersLoaderRuntimeConfig {
  const config = readJsonEnv<StaticAnswersLoaderRuntimeConfig>(STATIC_LOADER_CONFIG_ENV);
  if (config.embedder && !config.vectorIndex) throw new Error(`${STATIC_LOADER_CONFIG_ENV}: an embedder needs a vectorIndex`);
  return config;
}

let s3: S3Client | undefined;
let embedder: Embedder | undefined;

function embedderFor(config: StaticAnswersLoaderRuntimeConfig): Embedder | undefined {
  const c = config.embedder;
  if (!c) return undefined;
  if (embedder && embedder.dimensions === c.dimensions) return embedder;
  embedder = createEmbedder(c, MAX_ATTEMPTS);
  return embedder;
}

export async function handler(_event: unknown, context?: Context): Promise<LoadSummary> {
  if (context) logger.addContext(context);
  const metrics = emf.recorder();
  let client: Valkey | undefined;
  try {
    const config = readConfig();
    s3 ??= new S3Client(s3ClientConfig());
    const c = config.cache;
    client = await openCacheConnection(c, MIN_CACHE_TIMEOUT_MS);
    const vectorStore = config.embedder && config.vectorIndex
      ? new ValkeyVectorStore(client, { keyPrefix: c.keyPrefix, indexName: config.vectorIndex.indexName, hnsw: config.vectorIndex.hnsw })
      : undefined;
    const summary = await loadStaticAnswers({
      source: new S3AnswerFileSource(s3, config.bucketName, config.prefix),
      publisher: new ValkeyStaticAnswers(client, { keyPrefix: c.keyPrefix, vectorStore }),
      embedder: embedderFor(config),
      metrics,
      logger: loaderLogger,
    });
    logger.info('static answers loaded', {
      objects: summary.objects,
      files: summary.files,
      published: summary.published.map((p) => p.tenantId),
      skipped: summary.skipped.map((s) => s.tenantId),
      removed: summary.removed,
      removalsSuspended: summary.removalsSuspended,
      answers: summary.answers,
      variants: summary.variants,
      errors: summary.errors.length,
    });
    return summary;
  } catch (err) {
    logger.error('static answers: the load failed', err as Error);
    metrics.add(M.STATIC_ANSWER_ERRORS, 'Count', 1, { [M.DIMENSION_REASON]: 'unavailable' });
    metrics.add(M.STATIC_ANSWER_ERRORS, 'Count', 1);
    throw err;
  } finally {
    metrics.flush();
    // A daily job keeps no connection open between runs.
    client?.disconnect();
  }
}
