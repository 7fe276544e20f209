#!/usr/bin/env node
/**
 * `cdk-scalable-ai`: what a team runs before and beside `cdk deploy` (DESIGN.md §5). Bundled to
 * assets/lambdas/cli/main/index.mjs (an ES module) and published as the package's bin.
 *
 * Exit codes: 0 done, 1 failed, 2 bad usage or input (the message says what to fix).
 */
import { parseArgs } from 'node:util';
import { CliError } from './errors';
import { type CliIo, runEvalCache } from './eval-cache';
import { runPlan } from './plan';
import { runServe } from './serve';

interface Command {
  readonly summary: string;
  readonly run: (argv: readonly string[], io: CliIo) => Promise<number>;
}

const COMMANDS: Readonly<Record<string, Command>> = {
  'eval-cache': {
    summary: 'how often would the semantic cache answer, and how often wrongly, on my labelled traffic',
    run: runEvalCache,
  },
  'plan': {
    summary: 'what will this cost per day at 1K / 10K / 100K / 1M users, against the linear baseline',
    run: runPlan,
  },
  'serve': { summary: 'run the router bundle locally behind node:http (no authentication: loopback only)', run: runServe },
};

const USAGE = `Usage: cdk-scalable-ai <command> [options]

Commands:
${Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(12)} ${c.summary}`).join('\n')}

Run "cdk-scalable-ai <command> --help" for the options of a command.
`;

export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name.startsWith('-')) {
    let help = false;
    try {
      help = parseArgs({ args: [...argv], options: { help: { type: 'boolean', short: 'h' } }, strict: true }).values.help ?? false;
    } catch (err) {
      throw new CliError((err as Error).message);
    }
    if (!help) throw new CliError(`no command given\n\n${USAGE}`);
    io.stdout(USAGE);
    return 0;
  }
  const command = COMMANDS[name];
  if (!command) throw new CliError(`unknown command "${name}"\n\n${USAGE}`);
  return command.run(rest, io);
}

const io: CliIo = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
};

main(process.argv.slice(2), io).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof CliError) {
      io.stderr(`cdk-scalable-ai: ${err.message}\n`);
      process.exitCode = 2;
    } else {
      io.stderr(`cdk-scalable-ai: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
      process.exitCode = 1;
    }
  },
);
