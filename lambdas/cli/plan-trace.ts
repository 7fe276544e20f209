/**
 * Traffic traces for `plan`: the questions a service is asked, one per row, with optionally who
 * asked (tenant, user) and a label (questions of one label deserve one answer).
 *
 * - CSV (RFC 4180) with a header row naming a `text` column (`query` and `question` are accepted)
 *   and optionally `tenant`, `user` (or `user_id`) and `label` (or `category`, as banking77 names it).
 *   Header names are matched case-insensitively; other columns are ignored.
 * - JSONL (`.jsonl` or `.ndjson`): one object per line with `text` (or `query`/`question`) and
 *   optionally `tenant`, `user`, `label`.
 *
 * Rows with an empty text are skipped and counted.
 */
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { parse } from 'csv-parse/sync';
import { CliError } from './errors';

export interface TraceRow {
  readonly text: string;
  readonly tenant?: string;
  readonly user?: string;
  readonly label?: string;
}

export interface Trace {
  readonly rows: TraceRow[];
  /** Rows left out because their text is empty. */
  readonly skipped: number;
}

const TEXT_COLUMNS = ['text', 'query', 'question'] as const;
const COLUMNS = { tenant: ['tenant', 'tenant_id'], user: ['user', 'user_id'], label: ['label', 'category'] } as const;

/** Reads a trace file (CSV, or JSONL by its extension). */
export function readTrace(path: string): Trace {
  let content: string;
  try {
    content = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : (err as Error).message;
    throw new CliError(`cannot read trace ${path}: ${why}`);
  }
  const ext = extname(path).toLowerCase();
  return ext === '.jsonl' || ext === '.ndjson' ? parseJsonlTrace(content, path) : parseCsvTrace(content, path);
}

/** Parses CSV text; `name` appears in error messages. */
export function parseCsvTrace(content: string, name: string): Trace {
  let records: string[][];
  try {
    records = parse(content, { bom: true, skip_empty_lines: true, relax_column_count: true }) as string[][];
  } catch (err) {
    throw new CliError(`${name} is not valid CSV: ${(err as Error).message}`);
  }
  if (records.length === 0) throw new CliError(`${name} is empty: expected a header row naming a "text" column, and rows`);
  const header = records[0].map((h) => h.trim().toLowerCase());
  const at = (names: readonly string[]) => names.map((n) => header.indexOf(n)).find((i) => i >= 0) ?? -1;
  const textAt = at(TEXT_COLUMNS);
  if (textAt < 0) {
    throw new CliError(`${name}: the header row must name a "text" (or "query", "question") column; found ${records[0].map((h) => JSON.stringify(h)).join(', ')}`);
  }
  const tenantAt = at(COLUMNS.tenant);
  const userAt = at(COLUMNS.user);
  const labelAt = at(COLUMNS.label);
  const cell = (record: string[], i: number) => (i < 0 ? undefined : record[i]?.trim() || undefined);
  const rows: TraceRow[] = [];
  let skipped = 0;
  for (const record of records.slice(1)) {
    const text = record[textAt]?.trim() ?? '';
    if (text === '') {
      skipped++;
      continue;
    }
    rows.push(row(text, cell(record, tenantAt), cell(record, userAt), cell(record, labelAt)));
  }
  if (rows.length === 0) throw new CliError(`${name} has no rows with a text`);
  return { rows, skipped };
}

/** Parses JSONL text; `name` appears in error messages. */
export function parseJsonlTrace(content: string, name: string): Trace {
  const rows: TraceRow[] = [];
  let skipped = 0;
  const lines = content.split(/\r?\n/);
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (err) {
      throw new CliError(`${name} line ${i + 1} is not JSON: ${(err as Error).message}`);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new CliError(`${name} line ${i + 1}: expected an object with a "text" field`);
    const o = value as Record<string, unknown>;
    const field = (names: readonly string[]) => {
      const v = names.map((n) => o[n]).find((x) => x !== undefined && x !== null);
      if (v === undefined) return undefined;
      if (typeof v !== 'string' && typeof v !== 'number') throw new CliError(`${name} line ${i + 1}: "${names[0]}" must be a string`);
      return String(v).trim() || undefined;
    };
    const text = field(TEXT_COLUMNS);
    if (text === undefined) {
      skipped++;
      return;
    }
    rows.push(row(text, field(COLUMNS.tenant), field(COLUMNS.user), field(COLUMNS.label)));
  });
  if (rows.length === 0) throw new CliError(`${name} has no rows with a text`);
  return { rows, skipped };
}

function row(text: string, tenant: string | undefined, user: string | undefined, label: string | undefined): TraceRow {
  return { text, ...(tenant ? { tenant } : {}), ...(user ? { user } : {}), ...(label ? { label } : {}) };
}
