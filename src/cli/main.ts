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
  sluice demo [--data DIR] [--listen HOST:PORT] [--rate N] [--seconds N]
                                             the main job: a live shop workload, an example
                                             pipeline, views, search and the HTTP API
  sluice up FILE.sql [--data DIR] [--listen HOST:PORT] [--token T] [--checkpoint-interval S]
                     [--resnapshot SOURCE]…  runs a pipeline: follows the log, serves HTTP;
                                             --resnapshot captures a source's tables afresh
                                             (once: after its binlog or WAL was lost)
  sluice run FILE.sql [--data DIR] [--resnapshot SOURCE]…
                                             processes everything available now, then exits 0
  sluice 'SOURCE | STAGE | … | SINK' [--data DIR] [--listen HOST:PORT]
                                             the pipe one-liner form of up
  sluice check FILE.sql | 'PIPE'             validates a pipeline and prints each view's plan
  sluice log append TOPIC [--data DIR] [--key FIELD] [--partitions N] [--persist MODE]
                                             NDJSON on stdin; prints {"partition":P,"offset":O}
                                             per record once durable
  sluice log read TOPIC [--data DIR] [--from N] [--partition P] [--follow]
                                             NDJSON records with their offsets
  sluice log topics [--data DIR]             topics with their partitions and offsets
  sluice slt FILE.test… [--verbose] [--one-shot]
                                             runs sqllogictest files (or directories of them) on
                                             incrementally maintained views; last line
                                             "N passed, N failed"

Defaults: --data ./.sluice, --listen 127.0.0.1:7878, --persist syncData.
A --token may be written \${env:NAME} or \${file:PATH}; off loopback one is required.`;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'log':
        return await logCommand(rest);
      case 'demo':
        return await demoCommand(rest);
      case 'up':
      case 'run': {
        const { upCommand } = await import('./up-command.ts');
        return await upCommand(rest, command);
      }
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
