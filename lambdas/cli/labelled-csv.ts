/**
 * Labelled traffic for `eval-cache`: CSV files (RFC 4180: quoted fields may hold commas, quotes
 * and newlines) whose header names a `text` column and a `label` column. `category` is accepted
 * for the label (banking77 names it so); `label` wins when both exist. Header names are matched
 * case-insensitively; other columns are ignored.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { parse } from 'csv-parse/sync';
import { CliError } from './errors';
import type { LabelledRow } from '../core/semantic/cache-replay';

export const TEXT_COLUMN = 'text';
export const LABEL_COLUMNS = ['label', 'category'] as const;

export interface LabelledCsv {
  readonly rows: LabelledRow[];
  /** Rows left out because their text or label is empty. */
  readonly skipped: number;
}

/** Reads one file; rows carry the file's base name as their `source`. */
export function readLabelledCsv(path: string): LabelledCsv {
  let content: string;
  try {
    content = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : (err as Error).message;
    throw new CliError(`cannot read ${path}: ${why}`);
  }
  return parseLabelledCsv(content, path, basename(path));
}

/** Parses CSV text; `name` appears in error messages, `source` on the rows. */
export function parseLabelledCsv(content: string, name: string, source: string = name): LabelledCsv {
  let records: string[][];
  try {
    records = parse(content, { bom: true, skip_empty_lines: true, relax_column_count: true }) as string[][];
  } catch (err) {
    throw new CliError(`${name} is not valid CSV: ${(err as Error).message}`);
  }
  if (records.length === 0) throw new CliError(`${name} is empty: expected a header row "text,label" and at least one row`);
  const header = records[0].map((h) => h.trim().toLowerCase());
  const textAt = header.indexOf(TEXT_COLUMN);
  const labelAt = LABEL_COLUMNS.map((c) => header.indexOf(c)).find((i) => i >= 0) ?? -1;
  if (textAt < 0 || labelAt < 0) {
    throw new CliError(`${name}: the header row must name a "text" column and a "label" (or "category") column; `
      + `found ${records[0].map((h) => JSON.stringify(h)).join(', ')}`);
  }
  const rows: LabelledRow[] = [];
  let skipped = 0;
  for (const record of records.slice(1)) {
    const text = record[textAt]?.trim() ?? '';
    const label = record[labelAt]?.trim() ?? '';
    if (text === '' || label === '') skipped++;
    else rows.push({ text, label, source });
  }
  if (rows.length === 0) throw new CliError(`${name} has no rows with both a text and a label`);
  return { rows, skipped };
}
