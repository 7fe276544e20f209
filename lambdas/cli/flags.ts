/**
 * The commands' flag parsing: node:util parseArgs, strict (an unknown flag, a missing value or a
 * positional argument is an error), with its message turned into a {@link CliError} (exit code 2).
 */
import { parseArgs } from 'node:util';
import { CliError } from './errors';

/** A flag: a string value or a boolean switch, repeatable or not. */
export interface FlagOption {
  readonly type: 'string' | 'boolean';
  readonly multiple?: boolean;
  readonly short?: string;
}

export type FlagOptions = Readonly<Record<string, FlagOption>>;

/** The values parsed for `T`: absent flags are undefined, repeatable ones arrays. */
export type FlagValues<T extends FlagOptions> = {
  -readonly [K in keyof T]?: (T[K]['type'] extends 'boolean' ? boolean : string) extends infer V ? (T[K]['multiple'] extends true ? V[] : V) : never;
};

/**
 * Parses `argv` against `options`; throws {@link CliError} with parseArgs' message, followed by
 * `usage` when given.
 */
export function parseFlags<const T extends FlagOptions>(argv: readonly string[], options: T, usage?: string): FlagValues<T> {
  try {
    return parseArgs({ args: [...argv], options: { ...options }, strict: true, allowPositionals: false }).values as FlagValues<T>;
  } catch (err) {
    throw new CliError(usage === undefined ? (err as Error).message : `${(err as Error).message}\n\n${usage}`);
  }
}

/** `raw` as an integer >= `min`; throws {@link CliError} naming `flag` otherwise. */
export function integerFlag(flag: string, raw: string, min: number): number {
  // Number('') is 0: an empty value is not an integer.
  const value = raw.trim() === '' ? Number.NaN : Number(raw);
  if (!Number.isInteger(value) || value < min) throw new CliError(`${flag} must be an integer >= ${min}; got "${raw}"`);
  return value;
}
