/**
 * `plan`'s stored embeddings through the bundled command line (`npx projen bundle` first): the
 * default trace is answered by the shipped vectors (no model needed), those vectors give the hit
 * rates live MiniLM gives, and what a run embeds live is found by the next run in the disk cache.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse } from 'csv-parse/sync';
import { SHIPPED_EMBEDDINGS_FILE } from '../../lambdas/cli/plan-embeddings';

const ROOT = resolve(__dirname, '../..');
const CLI = join(ROOT, 'assets/lambdas/cli/main/index.mjs');
const BANKING77 = join(ROOT, 'data/banking77');
const LABELS = ['card_arrival', 'card_delivery_estimate', 'activate_my_card', 'lost_or_stolen_card', 'exchange_rate', 'pin_blocked'];
const PER_LABEL = 25;
/** Phases of 100 and 1,000 requests: the first replays half the sample's rows, the second all. */
const PHASES = ['--users', '100,1000', '--requests-per-user', '1'];

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the CLI with its own cache folder and no AWS settings from the machine running the tests. */
function run(args: string[], cache: string, cli = CLI): Promise<Run> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('AWS_')));
  return new Promise((done) => {
    const options = { env: { ...base, XDG_CACHE_HOME: cache }, cwd: tmpdir(), timeout: 170_000, maxBuffer: 16 * 1024 * 1024 };
    execFile(process.execPath, [cli, ...args], options,
      (err, stdout, stderr) => done({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }));
  });
}

function lastJsonLine(stdout: string): any {
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]);
}

let dir: string;
let sample: string;

beforeAll(() => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npx projen bundle" first`);
  dir = mkdtempSync(join(tmpdir(), 'plan-embeddings-cli-'));
  // 150 real questions of 6 intents (two of them close: card_arrival and card_delivery_estimate).
  const records = parse(readFileSync(join(BANKING77, 'train.csv'), 'utf8'), { columns: true }) as Array<{ text: string; category: string }>;
  const picked = LABELS.flatMap((label) => records.filter((r) => r.category === label).slice(0, PER_LABEL));
  const quote = (s: string) => `"${s.replace(/"/g, '""')}"`;
  sample = join(dir, 'sample.csv');
  writeFileSync(sample, ['text,label', ...picked.map((r) => `${quote(r.text)},${r.category}`)].join('\n'));
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('a fresh install without the MiniLM packages plans banking77 with the semantic level, from the shipped vectors', async () => {
  // The package as npm installs it (the bundle and data/banking77), where no node_modules can be found.
  const pkg = join(dir, 'pkg');
  mkdirSync(join(pkg, 'assets/lambdas/cli/main'), { recursive: true });
  mkdirSync(join(pkg, 'data/banking77'), { recursive: true });
  copyFileSync(CLI, join(pkg, 'assets/lambdas/cli/main/index.mjs'));
  for (const f of ['train.csv', 'test.csv', SHIPPED_EMBEDDINGS_FILE]) copyFileSync(join(BANKING77, f), join(pkg, 'data/banking77', f));
  const cache = join(dir, 'cache-fresh');

  const { code, stdout, stderr } = await run(['plan', '--json'], cache, join(pkg, 'assets/lambdas/cli/main/index.mjs'));
  expect({ code, stderr: code === 0 ? '' : stderr }).toEqual({ code: 0, stderr: '' });
  expect(stderr).toMatch(/plan: semantic cache with all-MiniLM-L6-v2: 13149 of 13149 texts already embedded \(stored: 13149 shipped, 0 in the cache\)\n/);
  expect(stderr).not.toMatch(/warning|embedding \d+ on/);
  const plan = lastJsonLine(stdout);
  expect(plan.phases[0].hitRate.semantic).toBeGreaterThan(0.2);
  // Nothing was embedded, so nothing was cached.
  expect(existsSync(cache)).toBe(false);
}, 200_000);

test('the shipped int8 vectors give the hit rates and tier shares of live MiniLM on a sample, within one row of it', async () => {
  const [shipped, live] = await Promise.all([
    run(['plan', '--trace', sample, ...PHASES, '--json'], join(dir, 'cache-a')),
    run(['plan', '--trace', sample, ...PHASES, '--json', '--live-embeddings'], join(dir, 'cache-b')),
  ]);
  expect({ code: shipped.code, stderr: shipped.code === 0 ? '' : shipped.stderr }).toEqual({ code: 0, stderr: '' });
  expect({ code: live.code, stderr: live.code === 0 ? '' : live.stderr }).toEqual({ code: 0, stderr: '' });
  const texts = LABELS.length * (PER_LABEL + 1);
  expect(shipped.stderr).toContain(`${texts} of ${texts} texts already embedded`);
  expect(live.stderr).toContain(`0 of ${texts} texts already embedded (--live-embeddings), embedding ${texts} on`);
  // --live-embeddings neither reads nor writes the cache.
  expect(existsSync(join(dir, 'cache-b'))).toBe(false);

  const rows = LABELS.length * PER_LABEL;
  const a = lastJsonLine(shipped.stdout);
  const b = lastJsonLine(live.stdout);
  // 100 requests from 150 rows: 73 distinct, of 6 intents; a broken pipeline answers none.
  expect(a.phases[0].hitRate.semantic).toBeGreaterThan(0.1);
  a.phases.forEach((p: any, i: number) => {
    const q = b.phases[i];
    // One row of the D distinct rows of a phase answered differently moves a rate by 1/D.
    const distinct = Math.round(rows * (1 - Math.pow(1 - 1 / rows, p.requestsPerDay)));
    for (const [k, v] of Object.entries({ ...p.hitRate, ...p.tierShare })) {
      const other = ({ ...q.hitRate, ...q.tierShare } as Record<string, number>)[k];
      expect({ phase: p.usersPerDay, rate: k, withinOneRow: Math.abs((v as number) - other) <= 1 / distinct + 1e-6 })
        .toEqual({ phase: p.usersPerDay, rate: k, withinOneRow: true });
    }
  });
}, 200_000);

test('texts embedded live are kept in the disk cache: the next run embeds nothing and plans the same', async () => {
  const trace = join(dir, 'novel.csv');
  writeFileSync(trace, ['text,label', 'Can I pay my electricity bill from the app?,bills', 'How do I pay a utility bill?,bills',
    'Is there a fee for paying bills?,bills', 'What is my credit limit?,limit'].join('\n'));
  const cache = join(dir, 'cache-novel');
  const first = await run(['plan', '--trace', trace, '--json'], cache);
  expect({ code: first.code, stderr: first.code === 0 ? '' : first.stderr }).toEqual({ code: 0, stderr: '' });
  expect(first.stderr).toMatch(/0 of 6 texts already embedded \(stored: \d+ shipped, 0 in the cache\), embedding 6 on/);
  expect(first.stderr).toContain('plan: kept 6 new embedding(s) in ');
  const folder = join(cache, 'cdk-scalable-ai/embeddings');
  expect(readdirSync(folder)).toHaveLength(1);

  const second = await run(['plan', '--trace', trace, '--json'], cache);
  expect(second.code).toBe(0);
  expect(second.stderr).toMatch(/6 of 6 texts already embedded \(stored: \d+ shipped, 6 in the cache\)\n/);
  expect(second.stderr).not.toContain('kept');
  expect(lastJsonLine(second.stdout)).toEqual(lastJsonLine(first.stdout));
}, 200_000);
