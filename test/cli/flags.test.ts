import { CliError } from '../../lambdas/cli/errors';
import { integerFlag, parseFlags } from '../../lambdas/cli/flags';

const OPTIONS = { name: { type: 'string' }, tag: { type: 'string', multiple: true }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } as const;

describe('parseFlags', () => {
  test('parses strings, repeatable strings, switches and short flags; absent flags are undefined', () => {
    expect(parseFlags(['--name', 'a', '--tag', 'x', '--tag=y', '--json', '-h'], OPTIONS)).toEqual({ name: 'a', tag: ['x', 'y'], json: true, help: true });
    expect(parseFlags([], OPTIONS)).toEqual({});
  });

  test.each([
    [['--frobnicate'], "Unknown option '--frobnicate'"],
    [['--name'], "Option '--name <value>' argument missing"],
    [['extra'], "Unexpected argument 'extra'"],
    [['--json=yes'], "Option '--json' does not take an argument"],
  ])('%j is a CliError with parseArgs\' message', (argv, message) => {
    expect(() => parseFlags(argv, OPTIONS)).toThrow(CliError);
    expect(() => parseFlags(argv, OPTIONS)).toThrow(message);
  });

  test('the usage text follows the message when given', () => {
    expect(() => parseFlags(['--frobnicate'], OPTIONS, 'Usage: x [options]')).toThrow(/Unknown option '--frobnicate'.*\n\nUsage: x \[options\]$/s);
  });
});

describe('integerFlag', () => {
  test('accepts integers from the minimum', () => {
    expect(integerFlag('--seed', '0', 0)).toBe(0);
    expect(integerFlag('--threads', '4', 1)).toBe(4);
  });

  test.each(['', ' ', '2.5', 'two', '0'])('rejects %j for a minimum of 1, naming the flag', (raw) => {
    expect(() => integerFlag('--threads', raw, 1)).toThrow(new CliError(`--threads must be an integer >= 1; got "${raw}"`));
  });
});
