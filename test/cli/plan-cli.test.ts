/**
 * `plan` through the bundled command line, run as a child process (`npx projen bundle` first; the
 * test task does). The semantic level's local embedder is covered by eval-cache's CLI test; here
 * `--embedder none` keeps the replays fast.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(__dirname, '../..');
const CLI = join(ROOT, 'assets/lambdas/cli/main/index.mjs');
const PHASE_FIELDS = ['usersPerDay', 'requestsPerDay', 'costPerDayUsd', 'linearCostPerDayUsd', 'hitRate', 'tierShare', 'meanLatencyMs', 'costBreakdown', 'billOptions'];

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function run(args: string[]): Promise<Run> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('AWS_')));
  return new Promise((done) => {
    execFile(process.execPath, [CLI, ...args], { env, cwd: tmpdir(), timeout: 120_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      done({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

function lastJsonLine(stdout: string): any {
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]);
}

let dir: string;
let trace: string;

beforeAll(() => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npx projen bundle" first`);
  dir = mkdtempSync(join(tmpdir(), 'plan-cli-'));
  trace = join(dir, 'trace.csv');
  writeFileSync(trace, ['text,label', 'How do I reset my PIN?,pin', 'how do I reset my PIN,pin', 'Where is my card?,card',
    'Explain and compare the trade-offs of fixed versus variable rates,rates', 'What is the exchange rate?,rates'].join('\n'));
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('plan --json: the last line is the CostPlan of the four default phases, with every field', async () => {
  const { code, stdout, stderr } = await run(['plan', '--trace', trace, '--embedder', 'none', '--json']);
  expect({ code, stderr }).toMatchObject({ code: 0 });
  const plan = lastJsonLine(stdout);
  expect(plan.pricesAsOf).toMatch(/^\d{4}-\d{2}-\d{2}$/);
  expect(plan.phases.map((p: any) => p.usersPerDay)).toEqual([1000, 10000, 100000, 1000000]);
  for (const p of plan.phases) {
    expect(Object.keys(p).sort()).toEqual([...PHASE_FIELDS].sort());
    expect(Object.keys(p.hitRate).sort()).toEqual(['exact', 'semantic', 'static']);
    expect(Object.keys(p.tierShare)).toEqual(['small', 'medium', 'large']);
    const shares = [...Object.values(p.hitRate), ...Object.values(p.tierShare)] as number[];
    expect(shares.reduce((a, b) => a + b)).toBeCloseTo(1, 5);
    expect(p.costBreakdown.reduce((a: number, i: any) => a + i.costPerDayUsd, 0)).toBeCloseTo(p.costPerDayUsd, 4);
    expect(p.billOptions.map((o: any) => o.option)).toEqual(['batchInference', 'flex', 'priority', 'promptCaching', 'globalCrossRegion']);
    expect(p.costPerDayUsd).toBeLessThan(p.linearCostPerDayUsd);
  }
  expect(stderr).toContain('plan: 5 rows from 1 file(s)');
});

test('plan --html FILE writes the self-contained report of the same plan; --json stays the last line', async () => {
  const html = join(dir, 'plan.html');
  const { code, stdout, stderr } = await run(['plan', '--trace', trace, '--embedder', 'none', '--json', '--html', html]);
  expect({ code, stderr }).toMatchObject({ code: 0 });
  const plan = lastJsonLine(stdout);
  expect(stderr).toContain(`plan: wrote the report to ${html}`);
  const page = readFileSync(html, 'utf8');
  expect(page.toLowerCase().startsWith('<!doctype html>')).toBe(true);
  // The report draws this plan: its two charts, and its phases in the table.
  expect(page.match(/<svg/g)?.length).toBeGreaterThanOrEqual(2);
  for (const p of plan.phases) expect(page).toContain(p.usersPerDay.toLocaleString('en-US'));
  const bad = await run(['plan', '--trace', trace, '--embedder', 'none', '--html', join(dir, 'no-such-dir', 'plan.html')]);
  expect(bad.code).toBe(2);
  expect(bad.stderr).toMatch(/--html: cannot write .*no-such-dir/);
});

test('plan --users, --requests-per-user and --config: a service of two tiers with a batch share', async () => {
  const config = join(dir, 'config.json');
  writeFileSync(config, JSON.stringify({
    tiers: [{ tierId: 'fast', modelId: 'amazon.nova-pro-v1:0' }, { tierId: 'deep', inputPricePer1kTokens: 0.01, outputPricePer1kTokens: 0.02 }],
    batchShare: 0.5,
    systemPromptTokens: 1200,
  }));
  const { code, stdout } = await run(['plan', '--trace', trace, '--embedder', 'none', '--users', '50,5000', '--requests-per-user', '2', '--config', config, '--json']);
  expect(code).toBe(0);
  const plan = lastJsonLine(stdout);
  expect(plan.phases.map((p: any) => [p.usersPerDay, p.requestsPerDay])).toEqual([[50, 100], [5000, 10000]]);
  expect(Object.keys(plan.phases[0].tierShare)).toEqual(['fast', 'deep']);
  const items = plan.phases[1].costBreakdown.map((i: any) => i.item);
  expect(items).toEqual(expect.arrayContaining(['model:fast', 'model:deep', 'sqs', 'dynamodb']));
  const flex = plan.phases[1].billOptions.find((o: any) => o.option === 'flex');
  expect(flex.savingPerDayUsd).toBeGreaterThan(0);
});

test('plan with no trace runs on banking77, and prints the economics table', async () => {
  const { code, stdout, stderr } = await run(['plan', '--embedder', 'none']);
  expect({ code, stderr: code === 0 ? '' : stderr }).toEqual({ code: 0, stderr: '' });
  expect(stderr).toContain('plan: 13083 rows from 2 file(s)');
  expect(stdout).toMatch(/users\/day\s+requests\/day\s+our cost\/day\s+linear\/day\s+ratio/);
  expect(stdout).toMatch(/1,000,000\s+10,000,000/);
  expect(stdout).toContain('(goal: at most 2%)');
});

test.each([
  ['a missing trace', ['--trace', 'no-such.csv', '--embedder', 'none'], /cannot read trace no-such.csv: no such file/],
  ['bad --users', ['--users', '1000,,10'], /--users must be a comma-separated list of numbers/],
  ['an unknown option', ['--budget', '3'], /Unknown option '--budget'/],
  ['an unknown embedder', ['--embedder', 'titan'], /unknown embedder "titan": use minilm or none/],
  ['--live-embeddings without an embedder', ['--embedder', 'none', '--live-embeddings'], /--live-embeddings applies to --embedder minilm only/],
  ['an empty --seed', ['--seed', ''], /--seed must be an integer >= 0; got ""/],
])('plan with %s exits 2 with a message', async (_name, args, message) => {
  const { code, stdout, stderr } = await run(['plan', ...args]);
  expect(code).toBe(2);
  expect(stdout).toBe('');
  expect(stderr).toMatch(message);
});

test.each([
  ['a config that is not JSON', 'not json', /is not JSON/],
  ['a config with an unknown key', JSON.stringify({ tiers: [{ tierId: 'a', modelId: 'amazon.nova-micro-v1:0' }], budget: 1 }), /\(root\): Unrecognized key: "budget"/],
  ['a tier with no price', JSON.stringify({ tiers: [{ tierId: 'a', modelId: 'meta.llama3-70b-instruct-v1:0' }] }), /tiers\[0\] \("a"\): no price/],
  ['a batch share over 1', JSON.stringify({ tiers: [{ tierId: 'a', modelId: 'amazon.nova-micro-v1:0' }], batchShare: 2 }), /batchShare: Too big: expected number to be <=1/],
])('plan --config with %s exits 2 naming the problem', async (_name, content, message) => {
  const config = join(dir, 'bad.json');
  writeFileSync(config, content);
  const { code, stderr } = await run(['plan', '--trace', trace, '--embedder', 'none', '--config', config]);
  expect(code).toBe(2);
  expect(stderr).toMatch(message);
});
