/**
 * Running sqllogictest files against Sluice (`sluice slt`, the slt tests in test/slt/, and the
 * `sql` benchmark): each file gets a fresh in-memory database, its records run in order, and
 * every statement and query is counted as passed, failed or skipped.
 *
 * - `statement ok` passes when the statement runs; `statement error` when Sluice rejects it with
 *   an error of its own (a SluiceError). A crash (any other exception) is always a failure,
 *   reported as "internal error at FILE:LINE: …" with the place it was thrown, so bugs stand
 *   out from rejected SQL.
 * - Every query is answered by a live query — a view Sluice maintains incrementally — opened
 *   right after the last schema statement (CREATE / DROP) before it, so it is maintained through
 *   every INSERT, UPDATE and DELETE between that statement and the query, and read (then closed)
 *   at the query's place. `oneShot: true` answers each query with a one-shot SELECT instead
 *   (for comparison). A query whose view cannot be opened fails with that error.
 * - `query TYPES SORT` passes when the result has one column per letter of TYPES and its values,
 *   formatted and sorted as the reference harness does (format.ts), match the expectation.
 * - An expectation written as "N values hashing to H" is compared by count and hash, whatever
 *   the current `hash-threshold`: the corpus's select1.test has no hash-threshold record and was
 *   written by the reference harness run with `-ht 8`. An expectation written as values is
 *   compared value by value; the reference harness would hash a result over the threshold and
 *   fail it against written values, which a value-by-value comparison fails as well (the value
 *   counts differ). The threshold only decides how a wrong result is shown in its reason.
 * - Labels (`query I rowsort label-7`) are not compared with each other: in the corpus every
 *   labelled query carries its own expectation, and matching it is what matters.
 * - skipif/onlyif are read for the engine `postgresql`; records they exclude, and everything
 *   after a `halt` that applies, are skipped.
 *
 * Invariants:
 * - passed + failed + skipped counts statements and queries only (hash-threshold and halt are
 *   not tests), and equals the number of statements and queries in the file.
 * - Every failure keeps the 1-based line of its record, the SQL, and a one-line reason.
 * - The database is closed whatever happens, so a file's failures never leak into the next.
 */
import fs from 'node:fs';
import path from 'node:path';
import { SluiceError } from '../../core/index.ts';
import { open, type LiveQuery } from '../../index.ts';
import { appliesTo, hashValues, matchesExpected, parseSlt, resultValues, type SltRecord } from './format.ts';

/** The engine name that skipif/onlyif records are read for. */
export const sltEngine = 'postgresql';

/** The longest reason kept for a failure, in characters. */
const reasonLength = 200;

type Test = Extract<SltRecord, { kind: 'statement' } | { kind: 'query' }>;

export interface SltFailure {
  kind: 'statement' | 'query';
  /** 1-based line of the record's first line (`statement …` / `query …`). */
  line: number;
  sql: string;
  /** One line: the error's first line, or what was wrong with the result. */
  reason: string;
}

export interface SltCounts {
  passed: number;
  failed: number;
}

export interface SltFileResult {
  file: string;
  /** Statements and queries together. */
  passed: number;
  failed: number;
  skipped: number;
  queries: SltCounts;
  statements: SltCounts;
  /** In file order. */
  failures: SltFailure[];
  ms: number;
}

export interface SltTotals {
  files: SltFileResult[];
  passed: number;
  failed: number;
  skipped: number;
  queries: SltCounts;
  statements: SltCounts;
  ms: number;
}

export interface SltOptions {
  /** Called now and then while a file runs: statements and queries done, out of those that run. */
  onProgress?: (file: string, done: number, total: number) => void;
  /** Answer queries with one-shot SELECTs instead of maintained live queries. */
  oneShot?: boolean;
}

/** A file read and parsed: what `runSlt` runs. Parsing throws an SltFormatError on a bad file. */
export interface SltFile {
  file: string;
  records: SltRecord[];
}

/** The .test files under a directory, relative to it (with `/`), sorted. */
export function findSltFiles(directory: string): string[] {
  return (fs.readdirSync(directory, { recursive: true }) as string[])
    .filter((name) => name.endsWith('.test'))
    .map((name) => name.split(path.sep).join('/'))
    .sort();
}

export function loadSltFile(file: string): SltFile {
  return { file, records: parseSlt(fs.readFileSync(file, 'utf8'), file) };
}

/**
 * What a file runs, without running it: the hash threshold in force for each test, and the
 * statements and queries that run (those that apply to the engine, up to a `halt` that
 * applies). The test harness counts a file's queries with it as well.
 */
export function testsToRun(records: readonly SltRecord[], engine = sltEngine): { run: Array<{ test: Test; hashThreshold: number }>; skipped: number } {
  const run: Array<{ test: Test; hashThreshold: number }> = [];
  let hashThreshold = 0;
  let halted = false;
  let skipped = 0;
  for (const record of records) {
    if (record.kind === 'hashThreshold') {
      hashThreshold = record.value;
    } else if (record.kind === 'halt') {
      if (appliesTo(record.conditions, engine)) halted = true;
    } else if (halted || !appliesTo(record.conditions, engine)) {
      skipped++;
    } else {
      run.push({ test: record, hashThreshold });
    }
  }
  return { run, skipped };
}

/** Runs one file on a fresh in-memory database. */
export async function runSltFile(file: string, options: SltOptions = {}): Promise<SltFileResult> {
  return runSlt(loadSltFile(file), options);
}

export async function runSlt({ file, records }: SltFile, options: SltOptions = {}): Promise<SltFileResult> {
  const started = performance.now();
  const { run, skipped } = testsToRun(records);
  const result: SltFileResult = {
    file,
    passed: 0,
    failed: 0,
    skipped,
    queries: { passed: 0, failed: 0 },
    statements: { passed: 0, failed: 0 },
    failures: [],
    ms: 0,
  };
  const db = await open();
  // Each query's live query opens after the last schema statement before it (index -1: at the start).
  const anchored = new Map<number, number[]>();
  if (!options.oneShot) {
    let anchor = -1;
    run.forEach(({ test }, i) => {
      if (test.kind === 'statement' && isSchemaStatement(test.sql)) anchor = i;
      else if (test.kind === 'query') anchored.set(anchor, [...(anchored.get(anchor) ?? []), i]);
    });
  }
  const live = new Map<number, Live>();
  const openLive = async (anchor: number) => {
    for (const i of anchored.get(anchor) ?? []) {
      const test = run[i]!.test;
      try {
        live.set(i, { query: await db.live(test.sql) });
      } catch (error) {
        live.set(i, { error: error instanceof SluiceError ? error.message : crashDescription(error) });
      }
    }
  };
  try {
    let lastProgress = started;
    await openLive(-1);
    for (let i = 0; i < run.length; i++) {
      const { test, hashThreshold } = run[i]!;
      let reason: string | undefined;
      if (test.kind === 'statement') {
        reason = await runStatement(db, test);
        if (isSchemaStatement(test.sql)) await openLive(i);
      } else {
        reason = await runQuery(db, test, hashThreshold, live.get(i));
        live.get(i)?.query?.close();
        live.delete(i);
      }
      const counts = test.kind === 'statement' ? result.statements : result.queries;
      if (reason === undefined) {
        counts.passed++;
      } else {
        counts.failed++;
        result.failures.push({ kind: test.kind, line: test.line, sql: test.sql, reason: oneLine(reason) });
      }
      if (options.onProgress && performance.now() - lastProgress > 100) {
        lastProgress = performance.now();
        options.onProgress(file, i + 1, run.length);
      }
    }
  } finally {
    await db.close();
  }
  result.passed = result.queries.passed + result.statements.passed;
  result.failed = result.queries.failed + result.statements.failed;
  result.ms = performance.now() - started;
  return result;
}

/**
 * Runs files one after another and adds up their counts (what `sluice slt` and the `sql`
 * benchmark report). `onFile` hears each file's result as soon as it is known.
 */
export async function runSltFiles(files: readonly (string | SltFile)[], options: SltOptions & { onFile?: (result: SltFileResult) => void } = {}): Promise<SltTotals> {
  const started = performance.now();
  const totals: SltTotals = { files: [], passed: 0, failed: 0, skipped: 0, queries: { passed: 0, failed: 0 }, statements: { passed: 0, failed: 0 }, ms: 0 };
  for (const file of files) {
    const result = typeof file === 'string' ? await runSltFile(file, options) : await runSlt(file, options);
    totals.files.push(result);
    totals.passed += result.passed;
    totals.failed += result.failed;
    totals.skipped += result.skipped;
    for (const kind of ['queries', 'statements'] as const) {
      totals[kind].passed += result[kind].passed;
      totals[kind].failed += result[kind].failed;
    }
    options.onFile?.(result);
  }
  totals.ms = performance.now() - started;
  return totals;
}

type Database = Awaited<ReturnType<typeof open>>;
type Results = Awaited<ReturnType<Database['execute']>>;

/** Runs SQL; the results, or the reason it failed as an error of Sluice's or as a crash. */
async function execute(db: Database, sql: string): Promise<{ results: Results } | { error: string; crashed: boolean }> {
  try {
    return { results: await db.execute(sql) };
  } catch (error) {
    if (error instanceof SluiceError) return { error: error.message, crashed: false };
    return { error: crashDescription(error), crashed: true };
  }
}

/** The reason a statement failed, or undefined when it passed. */
async function runStatement(db: Database, test: Extract<Test, { kind: 'statement' }>): Promise<string | undefined> {
  const outcome = await execute(db, test.sql);
  if (test.expect === 'ok') return 'error' in outcome ? outcome.error : undefined;
  if (!('error' in outcome)) return 'expected an error, but the statement succeeded';
  return outcome.crashed ? outcome.error : undefined;
}

type Live = { query: LiveQuery; error?: undefined } | { query?: undefined; error: string };

/** Statements after which queries see another schema: their live queries open after them. */
function isSchemaStatement(sql: string): boolean {
  return /^\s*(create|drop|alter)\b/i.test(sql);
}

/** Reads a live query's result as an execute() result. */
function readLive(live: Live): { results: Results } | { error: string; crashed: boolean } {
  if (live.error !== undefined) return { error: live.error, crashed: live.error.startsWith('internal error') };
  try {
    const rows = live.query.rows();
    return { results: [{ command: 'SELECT', rowCount: rows.length, columns: live.query.columns, rows }] };
  } catch (error) {
    if (error instanceof SluiceError) return { error: error.message, crashed: false };
    return { error: crashDescription(error), crashed: true };
  }
}

/** The reason a query failed, or undefined when it passed; answered by its live query when it has one. */
async function runQuery(db: Database, test: Extract<Test, { kind: 'query' }>, hashThreshold: number, live?: Live): Promise<string | undefined> {
  const outcome = live ? readLive(live) : await execute(db, test.sql);
  if ('error' in outcome) return outcome.error;
  const result = outcome.results.at(-1);
  if (result === undefined || (result.columns === undefined && result.rows === undefined)) {
    return `expected rows, but ${result ? `the statement (${result.command}) returns none` : 'nothing ran'}`;
  }
  const rows = result.rows ?? [];
  const columns = result.columns?.length ?? rows[0]?.length ?? 0;
  if (columns !== test.types.length) {
    return `wrong number of columns: expected ${test.types.length} (${test.types}), got ${columns}${result.columns ? ` (${result.columns.map((column) => column.name).join(', ')})` : ''}`;
  }
  const values = resultValues(rows, test.types, test.sort);
  if (matchesExpected(values, test.expected)) return undefined;
  const expected = 'hash' in test.expected ? `${test.expected.count} values hashing to ${test.expected.hash}` : showValues(test.expected.values);
  const actual = 'hash' in test.expected || (hashThreshold > 0 && values.length > hashThreshold) ? `${values.length} values hashing to ${hashValues(values)}` : showValues(values);
  return `wrong result: expected ${expected}, got ${actual}`;
}

function showValues(values: readonly string[]): string {
  return values.length === 0 ? 'no rows' : `[${values.join(', ')}]`;
}

/**
 * A crash as "internal error at src/FILE:LINE: Name: message", the place being the first frame in
 * Sluice's sources (first, so that reasons group by where they happen).
 */
function crashDescription(error: unknown): string {
  if (!(error instanceof Error)) return `internal error: ${String(error)}`;
  const sources = path.resolve(import.meta.dirname, '../..');
  const frame = error.stack
    ?.split('\n')
    .map((line) => /\((?:file:\/\/)?([^()]+):(\d+):\d+\)$|at (?:file:\/\/)?([^() ]+):(\d+):\d+$/.exec(line.trim()))
    .find((match) => match && (match[1] ?? match[3])!.startsWith(sources) && (match[1] ?? match[3]) !== import.meta.filename);
  const where = frame ? ` at ${path.relative(path.dirname(sources), (frame[1] ?? frame[3])!)}:${frame[2] ?? frame[4]}` : '';
  return `internal error${where}: ${error.name}: ${firstLine(error.message)}`;
}

function firstLine(text: string): string {
  const newline = text.indexOf('\n');
  return newline < 0 ? text : text.slice(0, newline);
}

/** A reason on one line, no longer than `reasonLength`. */
function oneLine(reason: string): string {
  const line = firstLine(reason).trim();
  return line.length <= reasonLength ? line : `${line.slice(0, reasonLength - 1)}…`;
}
