import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CliError } from '../../lambdas/cli/errors';
import { parseLabelledCsv, readLabelledCsv } from '../../lambdas/cli/labelled-csv';

describe('parseLabelledCsv', () => {
  test('reads text and label; quoted fields may hold commas, quotes and newlines', () => {
    const csv = 'text,label\n'
      + 'plain question,a\n'
      + '"with, a comma",b\n'
      + '"with ""quotes""",a\n'
      + '"two\nlines",c\n';
    const { rows, skipped } = parseLabelledCsv(csv, 'mem.csv');
    expect(rows).toEqual([
      { text: 'plain question', label: 'a', source: 'mem.csv' },
      { text: 'with, a comma', label: 'b', source: 'mem.csv' },
      { text: 'with "quotes"', label: 'a', source: 'mem.csv' },
      { text: 'two\nlines', label: 'c', source: 'mem.csv' },
    ]);
    expect(skipped).toBe(0);
  });

  test('accepts "category" for the label (banking77), any column order, case and extra columns', () => {
    const banking = parseLabelledCsv('text,category\nI am still waiting on my card?,card_arrival\n', 'train.csv');
    expect(banking.rows).toEqual([{ text: 'I am still waiting on my card?', label: 'card_arrival', source: 'train.csv' }]);

    const reordered = parseLabelledCsv('id,Category,TEXT\r\n1,x,hello there\r\n', 'r.csv');
    expect(reordered.rows).toEqual([{ text: 'hello there', label: 'x', source: 'r.csv' }]);
  });

  test('"label" wins over "category" when both exist', () => {
    expect(parseLabelledCsv('category,text,label\nc,q,l\n', 'x').rows[0].label).toBe('l');
  });

  test('skips rows without text or label, and blank lines; ignores a byte-order mark', () => {
    const { rows, skipped } = parseLabelledCsv('\uFEFFtext,label\nq1,a\n\n,a\nq3,\nq4,b\n', 'x');
    expect(rows.map((r) => r.text)).toEqual(['q1', 'q4']);
    expect(skipped).toBe(2);
  });

  test('a header without a label column is an error that names what it found', () => {
    expect(() => parseLabelledCsv('text,intent\nq,a\n', 'bad.csv')).toThrow(CliError);
    expect(() => parseLabelledCsv('text,intent\nq,a\n', 'bad.csv'))
      .toThrow('bad.csv: the header row must name a "text" column and a "label" (or "category") column; found "text", "intent"');
    expect(() => parseLabelledCsv('question,label\nq,a\n', 'bad.csv')).toThrow(/must name a "text" column/);
  });

  test('an empty file, a header alone, or broken quoting are errors', () => {
    expect(() => parseLabelledCsv('', 'e.csv')).toThrow('e.csv is empty');
    expect(() => parseLabelledCsv('text,label\n', 'h.csv')).toThrow('h.csv has no rows with both a text and a label');
    expect(() => parseLabelledCsv('text,label\n"unterminated,a\n', 'q.csv')).toThrow(/q.csv is not valid CSV/);
  });
});

describe('readLabelledCsv', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'labelled-csv-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('reads a file; rows carry its base name', () => {
    const file = join(dir, 'traffic.csv');
    writeFileSync(file, 'text,label\n"a, b",x\n');
    expect(readLabelledCsv(file).rows).toEqual([{ text: 'a, b', label: 'x', source: 'traffic.csv' }]);
  });

  test('a missing file or a directory is a clear error', () => {
    expect(() => readLabelledCsv(join(dir, 'nope.csv'))).toThrow(`cannot read ${join(dir, 'nope.csv')}: no such file`);
    expect(() => readLabelledCsv(dir)).toThrow(/it is a directory/);
  });
});
