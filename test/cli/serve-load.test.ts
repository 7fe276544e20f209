/**
 * `npm run load` (bench/load.ts) as a short run: it starts its own Redis-protocol and Bedrock
 * protocol servers and the real `serve` bundle, stops by itself, and prints one JSON object as its
 * last line. Nothing here asserts a timing (DESIGN.md §7): only that the run completes cleanly and
 * that every request is counted once by how it was served.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { servedBy } from '../../bench/load-outcome';

const ROOT = resolve(__dirname, '../..');
const CLI = join(ROOT, 'assets/lambdas/cli/main/index.mjs');
const TS_NODE = join(ROOT, 'node_modules/ts-node/dist/bin.js');

function load(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('AWS_')));
  return new Promise((done) => {
    execFile(process.execPath, [TS_NODE, '--transpile-only', join(ROOT, 'bench/load.ts'), ...args], { cwd: ROOT, env, timeout: 55_000 }, (err, stdout, stderr) => {
      done({ code: err ? Number(err.code) : 0, stdout, stderr });
    });
  });
}

function lastJson(stdout: string): Record<string, any> {
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]);
}

beforeAll(() => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npx projen bundle" first`);
});

test('a 2 s closed-loop run: no errors, and hits, misses and fallbacks add up to the requests', async () => {
  const { code, stdout, stderr } = await load(['--duration', '2s', '--connections', '4', '--json']);
  expect({ code, stderr: code === 0 ? '' : stderr }).toEqual({ code: 0, stderr: '' });
  const report = lastJson(stdout);
  expect(report).toMatchObject({ errors: 0, mode: 'closed-loop', connections: 4, statuses: { 200: report.requests } });
  expect(report.requests).toBeGreaterThan(0);
  expect(report.hits + report.misses + report.fallbacks).toBe(report.requests);
  for (const field of ['p50Ms', 'p99Ms', 'rps']) expect(typeof report[field]).toBe('number');
  // Hits never reach a model; misses call it once, fallbacks twice (the throttled tier, then the next).
  expect(report.modelCalls).toBeGreaterThanOrEqual(report.misses + 2 * report.fallbacks);
});

test('paced at --multiplier x --expected-rps: the target and the achieved rate are reported', async () => {
  const { code, stdout, stderr } = await load(['--duration', '2s', '--connections', '4', '--expected-rps', '2', '--multiplier', '5', '--fallback-share', '0.3', '--json']);
  expect({ code, stderr: code === 0 ? '' : stderr }).toEqual({ code: 0, stderr: '' });
  const report = lastJson(stdout);
  expect(report).toMatchObject({ errors: 0, mode: 'paced', expectedRps: 2, multiplier: 5, targetRps: 10 });
  // 2 s at 10 requests/s: 20 scheduled slots at most.
  expect(report.requests).toBeLessThanOrEqual(20);
  expect(report.fallbacks).toBeGreaterThan(0);
  expect(report.achievedRps).toBe(report.rps);
});

test('bad flags are refused with the usage (exit 2)', async () => {
  const { code, stderr } = await load(['--multiplier', '10']);
  expect(code).toBe(2);
  expect(stderr).toMatch(/--multiplier needs --expected-rps/);
});

describe('how the driver counts an answer (bench/load-outcome.ts)', () => {
  const answer = (attempts: number): string => JSON.stringify({ output: { text: 'Hello' }, routing: { attempts: Array.from({ length: attempts }, () => ({})) } });

  test('a chat answer is a hit, a miss, or a fallback by x-cache and its attempts', () => {
    expect(servedBy('exact', answer(0))).toBe('hit');
    expect(servedBy('miss', answer(1))).toBe('miss');
    expect(servedBy('miss', answer(2))).toBe('fallback');
    expect(servedBy(undefined, answer(0))).toBe('not-a-chat-answer');
  });

  test('a 200 whose body is not a chat answer is an error', () => {
    for (const body of ['', '<html>ok</html>', 'null', '{}', JSON.stringify({ error: { code: 'x' } }), JSON.stringify({ output: { text: 42 } })]) {
      expect(servedBy('miss', body)).toBe('not-a-chat-answer');
    }
  });
});
