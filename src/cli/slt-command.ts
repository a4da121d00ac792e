/**
 * `sluice slt FILE…`: runs sqllogictest files (runner.ts) and reports them: one line per file,
 * `path: N passed, N failed, N skipped (X s)`, followed by its first failures (all of them with
 * --verbose), and as the very last line the totals, exactly `N passed, N failed`. Queries are
 * answered by incrementally maintained live queries; `--one-shot` answers them with one-shot
 * SELECTs instead (for comparison).
 *
 * A directory stands for every .test file under it. Exit code 0 when nothing failed, 1 when
 * something did, 2 for bad usage: no file, a missing file, a file that is not sqllogictest
 * (every file is read before any runs, so a typo never costs a long run). Progress goes to stderr
 * when stderr is a terminal.
 */
import fs from 'node:fs';
import path from 'node:path';
import { DefiniteError } from '../core/index.ts';
import { parseCommand, UsageError } from './arguments.ts';
import { SltFormatError } from './slt/format.ts';
import { findSltFiles, loadSltFile, runSltFiles, type SltFile, type SltFileResult } from './slt/runner.ts';

/** Failures shown per file without --verbose. */
const shownFailures = 5;

export async function sltCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(argv, { verbose: { type: 'boolean', short: 'v', default: false }, 'one-shot': { type: 'boolean', default: false } });
  if (positionals.length === 0) throw new UsageError('slt needs at least one sqllogictest file (FILE.test) or directory');
  const files = positionals.flatMap(testFiles).map(load);
  const progress = process.stderr.isTTY ? (text: string) => process.stderr.write(`\r\x1b[K${text}`) : undefined;
  const totals = await runSltFiles(files, {
    oneShot: values['one-shot'],
    onProgress: progress && ((file, done, total) => progress(`${file}: ${done}/${total}`)),
    onFile: (result) => {
      progress?.('');
      process.stdout.write(report(result, values.verbose));
    },
  });
  process.stdout.write(`${totals.passed} passed, ${totals.failed} failed\n`);
  return totals.failed === 0 ? 0 : 1;

  function load(file: string): SltFile {
    try {
      return loadSltFile(file);
    } catch (error) {
      if (error instanceof SltFormatError) throw new DefiniteError('slt_format', error.message, 'is this a sqllogictest file? Records are "statement ok|error", "query TYPES SORT", "hash-threshold N" and "halt", separated by blank lines.');
      throw error;
    }
  }
}

/** The .test files a command-line argument stands for: itself, or the ones under a directory. */
function testFiles(argument: string): string[] {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(argument);
  } catch {
    throw new DefiniteError('slt_file_missing', `${argument}: no such file`, 'give the path of a sqllogictest file (FILE.test) or of a directory holding some');
  }
  if (!stat.isDirectory()) return [argument];
  const found = findSltFiles(argument).map((name) => path.join(argument, name));
  if (found.length === 0) throw new DefiniteError('slt_file_missing', `${argument}: no .test files in this directory`);
  return found;
}

/** A file's line, and its first failures (all with verbose): where, why, and the SQL's first line. */
function report(result: SltFileResult, verbose: boolean): string {
  let text = `${result.file}: ${result.passed} passed, ${result.failed} failed, ${result.skipped} skipped (${(result.ms / 1000).toFixed(1)} s)\n`;
  const shown = verbose ? result.failures : result.failures.slice(0, shownFailures);
  for (const failure of shown) {
    const sql = failure.sql.split('\n')[0]!;
    text += `  ${result.file}:${failure.line}: ${failure.reason}\n    ${sql.length > 120 ? `${sql.slice(0, 119)}…` : sql}\n`;
  }
  const hidden = result.failures.length - shown.length;
  if (hidden > 0) text += `  … and ${hidden} more failure${hidden === 1 ? '' : 's'} (--verbose shows all)\n`;
  return text;
}
