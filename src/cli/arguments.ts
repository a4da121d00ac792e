/** Command-line argument parsing shared by the commands: node:util's parseArgs, strict. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { DefiniteError } from '../core/index.ts';
import type { PersistMode } from '../log/index.ts';

/** Bad usage: the message is printed with the usage text, exit code 2. */
export class UsageError extends Error {}

export function parseCommand<T extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: T) {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

export function wholeNumber(name: string, text: string | undefined, fallback: number, minimum = 0): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < minimum) throw new UsageError(`--${name} must be a whole number ≥ ${minimum}, not "${text}"`);
  return value;
}

export function persistMode(text: string | undefined): PersistMode {
  if (text === undefined) return 'syncData';
  if (text === 'buffer' || text === 'syncData' || text === 'syncAll') return text;
  throw new DefiniteError('persist_invalid', `--persist must be buffer, syncData or syncAll, not "${text}"`);
}

export const dataOption = { data: { type: 'string', default: './.sluice' } } as const;
