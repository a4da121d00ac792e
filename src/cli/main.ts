/**
 * The `sluice` command line (the contract is in DESIGN.md). Each command lives in its own file;
 * this one parses the command name, runs it, and turns errors into a message and an exit code:
 * 0 done, 1 failed (with some input rejected or an error), 2 bad usage or bad definition.
 */
import { SluiceError } from '../core/index.ts';
import { demoCommand } from './demo-command.ts';
import { logCommand } from './log-command.ts';
import { UsageError } from './arguments.ts';

const usage = `sluice — keeps derived data in sync through a durable log

Usage:
  sluice demo [--data DIR] [--rate N] [--seconds N]
                                             a live sample workload on embedded defaults
  sluice log append TOPIC [--data DIR] [--key FIELD] [--partitions N] [--persist MODE]
                                             NDJSON on stdin; prints {"partition":P,"offset":O}
                                             per record once durable
  sluice log read TOPIC [--data DIR] [--from N] [--partition P] [--follow]
                                             NDJSON records with their offsets
  sluice log topics [--data DIR]             topics with their partitions and offsets

  sluice 'SOURCE | STAGE | … | SINK'         the pipe one-liner: for now, shows the pipeline it
                                             compiles to (running it comes with the runtime)
  sluice check FILE.sql | 'PIPE'             validates a pipeline and prints each view's plan
  sluice slt FILE.test… [--verbose] [--one-shot]
                                             runs sqllogictest files (or directories of them) on
                                             incrementally maintained views; last line
                                             "N passed, N failed"

Defaults: --data ./.sluice, --persist syncData.
Still to come (see the issues): up, run, and running pipes.`;

const later: Record<string, string> = {
  up: 'the pipeline runtime',
  run: 'the pipeline runtime',
};

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'log':
        return await logCommand(rest);
      case 'demo':
        return await demoCommand(rest);
      case 'check': {
        const { checkCommand } = await import('./check-command.ts');
        return await checkCommand(rest);
      }
      case 'slt': {
        // Loaded only for slt, like pipes: the log commands do not pay for the SQL engine.
        const { sltCommand } = await import('./slt-command.ts');
        return await sltCommand(rest);
      }
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(`${usage}\n`);
        return command === undefined ? 2 : 0;
      default:
        if (command.includes('|') || /^[a-z][a-z0-9+.-]*:/i.test(command)) {
          // Loaded only for pipes: the log commands do not pay for PostgreSQL's parser.
          const { pipeCommand } = await import('./pipe-command.ts');
          return await pipeCommand(command, rest);
        }
        if (command in later) {
          process.stderr.write(`sluice: \`sluice ${command}\` is not built yet; it arrives with ${later[command]}.\n`);
          return 2;
        }
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`sluice: ${error.message}\n\n${usage}\n`);
      return 2;
    }
    if (error instanceof SluiceError) {
      process.stderr.write(`sluice: ${error.message}\n${error.hint ? `  hint: ${error.hint}\n` : ''}`);
      return error.name === 'TransientError' ? 1 : 2;
    }
    throw error;
  }
}

process.exitCode = await main(process.argv.slice(2));
