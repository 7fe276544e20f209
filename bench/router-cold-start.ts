/**
 * What loading the bundled router costs a cold Lambda container: the time to `require` the
 * bundle (parse and evaluate its modules), measured in fresh Node processes, for the
 * configurations a deployment can have. A router that uses Valkey and Bedrock must not pay for
 * pg, the OpenSearch client, the DynamoDB SDK or SageMaker, which are loaded on first use.
 *
 *   npx projen bundle && npx ts-node --transpile-only bench/router-cold-start.ts           # 15 runs each
 *   npx ts-node --transpile-only bench/router-cold-start.ts --runs 30 --bundle other/index.js
 *
 * `npm run bench` (bench/bench.ts) imports {@link coldStart} and {@link COLD_START_CONFIGS}.
 *
 * Prints numbers only: it asserts nothing (DESIGN.md §7). Node here is 20; Lambda runs 22 or 24,
 * and its CPU share depends on the memory size, so read the numbers relative to each other.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { ROUTER_CONFIG_ENV, type RouterRuntimeConfig, type TierRuntimeConfig } from '../constructs/contract/runtime-config';

/** The router Lambda's bundle. */
export const ROUTER_BUNDLE = resolve(__dirname, '..', 'assets/lambdas/router/handler/index.js');

const BEDROCK: TierRuntimeConfig = {
  id: 'small', provider: 'bedrock', modelId: 'amazon.nova-micro-v1:0', inputPricePer1k: 0.000035, outputPricePer1k: 0.00014, maxTokens: 512, timeoutMs: 5_000,
};
const SAGEMAKER: TierRuntimeConfig = {
  id: 'large', provider: 'sagemaker', endpointName: 'llm', apiFormat: 'openai-chat', inputPricePer1k: 0.002, outputPricePer1k: 0.006, maxTokens: 1_024, timeoutMs: 10_000,
};
const base: RouterRuntimeConfig = {
  tiers: [BEDROCK], tierHintPolicy: 'cheaper-only', maxRequestBytes: 32_768, maxMessages: 20, tenant: { source: 'iam' }, personalCaching: 'user',
};
const PGVECTOR = {
  host: 'db.internal',
  port: 5432,
  database: 'ai',
  table: 'semantic_cache',
  secretArn: 'arn:aws:secretsmanager:us-east-1:111111111111:secret:db',
  ssl: true,
};
const HNSW = { m: 16, efConstruction: 128, efSearch: 64 };
const cache = { host: 'cache.internal', port: 6379, tls: true, keyPrefix: 'sai:', timeoutMs: 200 };
const semantic = (store: NonNullable<RouterRuntimeConfig['semanticCache']>['store']): RouterRuntimeConfig['semanticCache'] => ({
  embedder: { provider: 'bedrock', modelId: 'amazon.titan-embed-text-v2:0', dimensions: 1024 },
  store,
  threshold: 0.82,
  margin: 0.12,
  rivalSupport: 2,
  answerEquivalence: 0.9,
  neighbours: 20,
  ttlSeconds: 604_800,
  maxEntriesPerScope: 10_000,
  timeoutMs: 1_500,
});

export const COLD_START_CONFIGS: Record<string, RouterRuntimeConfig> = {
  'Bedrock, no cache': base,
  'Bedrock + Valkey (exact, semantic, user context)': {
    ...base,
    cache,
    exactCache: { ttlSeconds: 86_400 },
    semanticCache: semantic({ kind: 'valkey', hnsw: HNSW }),
    userContext: { kind: 'valkey', maxTurns: 10, ttlSeconds: 86_400 },
  },
  'Bedrock + SageMaker + Valkey + pgvector + DynamoDB user context': {
    ...base,
    tiers: [BEDROCK, SAGEMAKER],
    cache,
    exactCache: { ttlSeconds: 86_400 },
    semanticCache: semantic({ kind: 'pgvector', hnsw: HNSW, pgvector: PGVECTOR }),
    userContext: { kind: 'dynamodb', tableName: 'context', maxTurns: 10, ttlSeconds: 86_400 },
  },
};

/** One fresh process: the milliseconds its `require` of the bundle took. */
function loadOnce(bundle: string, config: RouterRuntimeConfig): number {
  const script = `const t = process.hrtime.bigint(); require(${JSON.stringify(bundle)}); process.stdout.write(String(Number(process.hrtime.bigint() - t) / 1e6));`;
  const out = execFileSync(process.execPath, ['-e', script], {
    env: { ...process.env, [ROUTER_CONFIG_ENV]: JSON.stringify(config), AWS_REGION: 'us-east-1', NODE_NO_WARNINGS: '1' },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return Number(out);
}

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

export interface ColdStart {
  readonly bundleBytes: number;
  /** Module init time of each fresh process, per configuration, in ms. */
  readonly initMs: Record<string, number[]>;
}

/**
 * Init time of the bundle in `runs` fresh processes per configuration, interleaved, so that a
 * change in the machine's load touches every configuration alike.
 */
export function coldStart(configs: Record<string, RouterRuntimeConfig>, runs: number, bundle = ROUTER_BUNDLE): ColdStart {
  if (!existsSync(bundle)) throw new Error(`${bundle} does not exist: run npx projen bundle first`);
  const initMs: Record<string, number[]> = Object.fromEntries(Object.keys(configs).map((k) => [k, []]));
  for (let i = 0; i < runs; i++) for (const [name, config] of Object.entries(configs)) initMs[name].push(loadOnce(bundle, config));
  return { bundleBytes: statSync(bundle).size, initMs };
}

if (require.main === module) {
  const arg = (name: string): string | undefined => {
    const i = process.argv.indexOf(name);
    return i > 0 ? process.argv[i + 1] : undefined;
  };
  const runs = Number(arg('--runs') ?? 15);
  const bundle = resolve(arg('--bundle') ?? ROUTER_BUNDLE);
  try {
    const result = coldStart(COLD_START_CONFIGS, runs, bundle);
    console.log(`${bundle}: ${(result.bundleBytes / 1e6).toFixed(2)} MB; Node ${process.version}; ${runs} fresh processes per configuration`);
    for (const [name, ms] of Object.entries(result.initMs)) {
      console.log(`${name}: median ${median(ms).toFixed(1)} ms, min ${Math.min(...ms).toFixed(1)} ms, max ${Math.max(...ms).toFixed(1)} ms`);
    }
  } catch (err) {
    console.error((err as Error).message);
    process.exit(1);
  }
}
