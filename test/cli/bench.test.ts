/**
 * `npm run bench` (bench/bench.ts) as a tiny run: it starts its own local servers, serve (twice)
 * and the Portkey gateway, stops by itself, and prints one JSON object as its last line. Benchmarks
 * assert nothing about timings (DESIGN.md §7): only that every field is there and is a number >= 0.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

const ROOT = resolve(__dirname, '../..');
const CLI = join(ROOT, 'assets/lambdas/cli/main/index.mjs');
const TS_NODE = join(ROOT, 'node_modules/ts-node/dist/bin.js');

function bench(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('AWS_')));
  return new Promise((done) => {
    execFile(process.execPath, [TS_NODE, '--transpile-only', join(ROOT, 'bench/bench.ts'), ...args], { cwd: ROOT, env, timeout: 55_000 }, (err, stdout, stderr) => {
      done({ code: err ? Number(err.code) : 0, stdout, stderr });
    });
  });
}

beforeAll(() => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npx projen bundle" first`);
});

test('bench --json --runs 1 (tiny sizes, no synth): the last line holds every field, each a number >= 0', async () => {
  const { code, stdout, stderr } = await bench(['--json', '--runs', '1', '--requests', '20', '--warmup', '2', '--duration', '1s', '--cold-runs', '1', '--no-synth']);
  expect({ code, stderr: code === 0 ? '' : stderr }).toEqual({ code: 0, stderr: '' });
  const lines = stdout.trim().split('\n');
  const report = JSON.parse(lines[lines.length - 1]);
  const fields = {
    routerOverhead: ['p50Ms', 'p99Ms', 'rps', 'cpuMsPerRequest', 'portkeyP50Ms', 'portkeyP99Ms', 'portkeyRps', 'portkeyCpuMsPerRequest', 'directP50Ms', 'directP99Ms'],
    cacheHit: ['p50Ms', 'p99Ms'],
    semanticCache: ['hitRate', 'wrongHitRate', 'threshold'],
  };
  for (const [section, names] of Object.entries(fields)) {
    for (const name of names) {
      expect({ field: `${section}.${name}`, value: report[section][name] }).toEqual({ field: `${section}.${name}`, value: expect.any(Number) });
      expect(report[section][name]).toBeGreaterThanOrEqual(0);
    }
  }
  expect(report.routerOverhead.portkeyError).toBeNull();
  for (const ratio of ['p50', 'p99', 'rps']) expect(report.routerOverhead.ratios[ratio]).toBeGreaterThan(0);
  // Every cache-hit request was answered from the exact cache.
  expect(report.cacheHit.missesSeen).toBe(0);
  for (const config of ['default', 'everyStore']) {
    expect(report.coldStart[config].bundleBytes).toBeGreaterThan(0);
    expect(report.coldStart[config].initMs).toBeGreaterThan(0);
  }
  expect(report.synthSeconds).toBeNull();
  expect(report.semanticCache.source).toMatch(/committed/);
}, 60_000);

test('bad flags are refused with the usage (exit 2)', async () => {
  const { code, stderr } = await bench(['--runs', '0']);
  expect(code).toBe(2);
  expect(stderr).toMatch(/--runs must be an integer from 1 to 50/);
});

test('the Portkey preload (bench/listen-loopback.cjs) makes a listen without a host bind 127.0.0.1 only', async () => {
  // What @hono/node-server's serve({ fetch, port }) does: server.listen(port, undefined, callback).
  const script = "const s = require('node:http').createServer(); s.listen(0, undefined, () => { console.log(s.address().address); s.close(); });";
  const run = (preload: string[]): Promise<string> => new Promise((done, fail) => {
    execFile(process.execPath, [...preload, '-e', script], { timeout: 10_000 }, (err, stdout) => (err ? fail(err) : done(stdout.trim())));
  });
  expect(await run(['--require', join(ROOT, 'bench/listen-loopback.cjs')])).toBe('127.0.0.1');
  expect(await run([])).not.toBe('127.0.0.1');
});
