/**
 * What `npm pack` publishes for `cdk-scalable-ai plan`: the default trace and its shipped MiniLM
 * vectors (lambdas/cli/plan-embeddings.ts), and git tracks them (a fresh clone has them).
 */
import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { SHIPPED_EMBEDDINGS_FILE } from '../../lambdas/cli/plan-embeddings';

const ROOT = resolve(__dirname, '../..');
const PLAN_DATA = ['data/banking77/train.csv', 'data/banking77/test.csv', `data/banking77/${SHIPPED_EMBEDDINGS_FILE}`];

test('the npm package holds the default trace of plan and its shipped embeddings', () => {
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8', timeout: 120_000, stdio: ['ignore', 'pipe', 'ignore'] });
  const files = (JSON.parse(out) as Array<{ files: Array<{ path: string }> }>)[0].files.map((f) => f.path);
  expect(files).toEqual(expect.arrayContaining(PLAN_DATA));
});

test('git tracks them: neither is ignored', () => {
  // check-ignore exits 1 when no path is ignored, and prints the ignored ones.
  let ignored = '';
  try {
    ignored = execFileSync('git', ['check-ignore', '--no-index', ...PLAN_DATA], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });
  } catch (err) {
    if ((err as { status?: number }).status !== 1) throw err;
  }
  expect(ignored).toBe('');
});
