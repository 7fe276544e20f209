/**
 * A user's clone has nothing beside it: no file of the project may read data from outside the
 * repository, and every dataset it reads carries its source and licence.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { parse } from 'csv-parse/sync';

const ROOT = resolve(__dirname, '../..');
/** Generated, installed or git-ignored trees: not the project's own files. */
const SKIPPED = new Set(['node_modules', '.git', 'lib', 'assets', 'cdk.out', '.cache', 'coverage', 'test-reports', 'dist', 'data']);
const TEXT = /\.(ts|js|mjs|json|md|sh|ya?ml|txt)$|^\.ci$|^run$/;

function projectFiles(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    if (SKIPPED.has(name) || name.endsWith('.cdk.out')) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) projectFiles(path, out);
    else if (TEXT.test(name)) out.push(path);
  }
  return out;
}

describe('the repository stands alone', () => {
  test('no project file names the development machines\' shared folder', () => {
    // Built from parts so that this file does not name it either.
    const outside = ['..', 'shared'].join('/');
    const offenders = projectFiles(ROOT).filter((f) => readFileSync(f, 'utf8').includes(outside)).map((f) => relative(ROOT, f));
    expect(offenders).toEqual([]);
  });

  test.each(['banking77', 'routellm-mmlu'])('data/%s carries its source, citation and licence', (set) => {
    const files = readdirSync(join(ROOT, 'data', set));
    expect(files).toEqual(expect.arrayContaining(['SOURCE.md', 'CITATION.bib']));
    expect(files.some((f) => /^LICENSE/.test(f))).toBe(true);
    expect(files.filter((f) => /\.(csv|jsonl)$/.test(f)).length).toBeGreaterThan(0);
  });

  test('banking77 holds all 13,083 queries', () => {
    const rows = (file: string) => (parse(readFileSync(join(ROOT, 'data/banking77', file)), { columns: true }) as unknown[]).length;
    expect(rows('train.csv') + rows('test.csv')).toBe(13_083);
  });
});
