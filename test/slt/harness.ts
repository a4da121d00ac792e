/**
 * The sqllogictest corpus (../shared/slt beside the repository) as part of `npm test`: every
 * file runs through the slt runner, and the failures must be exactly those listed in
 * known-failures.txt.
 *
 * The corpus is split into shards, one test file each (slt-shard-N.test.ts), so that
 * `node --test` runs them side by side; files go to shards by their number of statements and
 * queries, the biggest first into the lightest shard, which gives each shard about the same time.
 *
 * known-failures.txt holds one failing statement or query per line, `path.test:LINE  reason`
 * (path relative to the corpus, LINE the record's first line); `#` starts a comment line. A
 * shard fails when
 *   (a) a statement or query fails that the list does not hold,
 *   (b) one the list holds passes now (it must be removed: the list only shrinks), or
 *   (c) fewer than 99% of the corpus's queries pass. The corpus's count comes from the files
 *       (the queries that run for PostgreSQL) and its failures from the list, which (a) and (b)
 *       keep exact; so each shard checks the whole corpus, not only its own part.
 * With SLUICE_SLT_UPDATE=1 a shard rewrites its files' lines of the list from its run, with the
 * reasons of this run, instead of checking (a) and (b); shards take turns writing through a lock
 * directory, and (c) reads the list as the shards have written it so far.
 *
 * Invariants:
 * - A missing corpus fails the tests with a message saying where it was looked for; never a skip.
 * - Every entry of the list names a file of the corpus; entries are kept sorted by file and line.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { findSltFiles, loadSltFile, runSltFile, testsToRun, type SltFailure, type SltFileResult } from '../../src/cli/slt/runner.ts';

const repoRoot = path.resolve(import.meta.dirname, '../..');
export const corpus = path.resolve(repoRoot, '../shared/slt');
export const knownFailuresPath = path.join(import.meta.dirname, 'known-failures.txt');
const updating = process.env.SLUICE_SLT_UPDATE === '1';
/** The share of the corpus's queries that must pass. */
const requiredPassRate = 0.99;
/** Failures spelled out in a message; the rest are counted. */
const shownInMessage = 25;

const header = `# The sqllogictest corpus's statements and queries that fail today (test/slt/harness.ts):
# one per line, "path.test:LINE  reason", LINE being the line of the record's first line.
# The list only shrinks: a listed entry that passes fails the tests until it is removed.
# SLUICE_SLT_UPDATE=1 node --test test/slt/*.test.ts rewrites the entries from a run.
`;

interface CorpusFile {
  /** Relative to the corpus, with forward slashes: how the list names it. */
  name: string;
  /** Statements and queries that run. */
  weight: number;
  /** Line of every query that runs. */
  queryLines: Set<number>;
}

let corpusCache: CorpusFile[] | undefined;

/**
 * Every .test file of the corpus, read and planned once per process. The records are not kept
 * (the corpus's take over 100 MB): a shard reads its own files again to run them.
 */
function corpusFiles(): CorpusFile[] {
  if (corpusCache) return corpusCache;
  if (!fs.existsSync(corpus)) {
    throw new Error(`the sqllogictest corpus is missing: expected at ${corpus} (../shared/slt beside the repository, ${repoRoot})`);
  }
  const names = findSltFiles(corpus);
  if (names.length === 0) throw new Error(`the sqllogictest corpus at ${corpus} holds no .test files`);
  corpusCache = names.map((name) => {
    const { run } = testsToRun(loadSltFile(path.join(corpus, name)).records);
    const queryLines = new Set(run.filter(({ test }) => test.kind === 'query').map(({ test }) => test.line));
    return { name, weight: run.length, queryLines };
  });
  return corpusCache;
}

/** The files of shard `index` (1-based) out of `count`: heaviest first, each to the lightest shard. */
function shardFiles(files: readonly CorpusFile[], index: number, count: number): CorpusFile[] {
  const shards = Array.from({ length: count }, () => ({ weight: 0, files: [] as CorpusFile[] }));
  for (const file of [...files].sort((a, b) => b.weight - a.weight || (a.name < b.name ? -1 : 1))) {
    const lightest = shards.reduce((a, b) => (b.weight < a.weight ? b : a));
    lightest.weight += file.weight;
    lightest.files.push(file);
  }
  return shards[index - 1]!.files.sort((a, b) => (a.name < b.name ? -1 : 1));
}

/** The list: file → line → reason. */
type KnownFailures = Map<string, Map<number, string>>;

function readKnownFailures(): KnownFailures {
  const known: KnownFailures = new Map();
  if (!fs.existsSync(knownFailuresPath)) return known;
  const lines = fs.readFileSync(knownFailuresPath, 'utf8').split('\n');
  lines.forEach((text, i) => {
    if (text.trim() === '' || text.startsWith('#')) return;
    const entry = /^(\S+?):(\d+)(?:\s+(.*))?$/.exec(text);
    if (!entry) throw new Error(`${knownFailuresPath}:${i + 1}: expected "path.test:LINE  reason", found "${text}"`);
    const [, file, line, reason] = entry;
    if (!known.has(file!)) known.set(file!, new Map());
    known.get(file!)!.set(Number(line), reason ?? '');
  });
  return known;
}

function writeKnownFailures(known: KnownFailures, order: readonly string[]): void {
  // The comment lines the file starts with are kept (the standard header when there are none).
  const existing = fs.existsSync(knownFailuresPath) ? fs.readFileSync(knownFailuresPath, 'utf8') : '';
  const comments = /^(?:#.*\n)+/.exec(existing)?.[0];
  let text = comments ?? header;
  for (const file of [...known.keys()].sort((a, b) => order.indexOf(a) - order.indexOf(b))) {
    for (const [line, reason] of [...known.get(file)!].sort((a, b) => a[0] - b[0])) text += `${file}:${line}  ${reason}\n`;
  }
  const temporary = `${knownFailuresPath}.${process.pid}`;
  fs.writeFileSync(temporary, text);
  fs.renameSync(temporary, knownFailuresPath);
}

/** Runs `change` on the list while holding the lock directory beside it (shards run in parallel). */
async function updateKnownFailures(change: (known: KnownFailures) => void, order: readonly string[]): Promise<void> {
  const lock = `${knownFailuresPath}.lock`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      fs.mkdirSync(lock);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      if (Date.now() > deadline) throw new Error(`${lock} has been held for a minute; if no slt test is running, remove it`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  try {
    const known = readKnownFailures();
    change(known);
    writeKnownFailures(known, order);
  } finally {
    fs.rmdirSync(lock);
  }
}

function describeFailure(file: string, failure: SltFailure): string {
  const sql = failure.sql.split('\n')[0]!;
  return `${file}:${failure.line}: ${failure.reason}\n    ${sql.length > 160 ? `${sql.slice(0, 159)}…` : sql}`;
}

function listed<T>(items: readonly T[], show: (item: T) => string): string {
  const shown = items.slice(0, shownInMessage).map(show).join('\n');
  return items.length > shownInMessage ? `${shown}\n… and ${items.length - shownInMessage} more` : shown;
}

function percent(part: number, whole: number): string {
  return whole === 0 ? '100%' : `${((100 * part) / whole).toFixed(2)}%`;
}

/** What a file's run says against the list: failures the list lacks, listed lines that pass. */
function compare(result: SltFileResult, known: ReadonlyMap<number, string>): { unexpected: SltFailure[]; fixed: number[] } {
  const failed = new Set(result.failures.map((failure) => failure.line));
  return {
    unexpected: result.failures.filter((failure) => !known.has(failure.line)),
    fixed: [...known.keys()].filter((line) => !failed.has(line)).sort((a, b) => a - b),
  };
}

/**
 * Registers shard `index` (1-based) of `count`: one test per file of the shard, then the
 * corpus-wide checks (the list names corpus files only; 99% of the queries pass).
 */
export function sltShard(index: number, count: number): void {
  let files: CorpusFile[];
  try {
    files = corpusFiles();
  } catch (error) {
    test(`sqllogictest corpus, shard ${index}/${count}`, () => assert.fail((error as Error).message));
    return;
  }
  const mine = shardFiles(files, index, count);
  const order = files.map((file) => file.name);
  const results = new Map<string, SltFileResult>();
  const started = performance.now();

  for (const file of mine) {
    test(`slt ${file.name}`, async (t: TestContext) => {
      const result = await runSltFile(path.join(corpus, file.name));
      results.set(file.name, result);
      const queries = result.queries.passed + result.queries.failed;
      t.diagnostic(
        `${file.name}: ${result.queries.passed}/${queries} queries pass (${percent(result.queries.passed, queries)}), ` +
          `${result.statements.failed} of ${result.statements.passed + result.statements.failed} statements fail, ${result.skipped} skipped; ${(result.ms / 1000).toFixed(1)} s`,
      );
      if (updating) return;
      const { unexpected, fixed } = compare(result, readKnownFailures().get(file.name) ?? new Map());
      const problems: string[] = [];
      if (unexpected.length > 0) {
        problems.push(
          `${unexpected.length} statement(s) or queries fail that ${path.relative(repoRoot, knownFailuresPath)} does not list ` +
            `(fix them, or if they are to fail for now, SLUICE_SLT_UPDATE=1 node --test test/slt/*.test.ts lists them):\n` +
            listed(unexpected, (failure) => describeFailure(file.name, failure)),
        );
      }
      if (fixed.length > 0) {
        problems.push(
          `${fixed.length} listed failure(s) pass now: remove them from ${path.relative(repoRoot, knownFailuresPath)} (the list only shrinks; ` +
            `SLUICE_SLT_UPDATE=1 node --test test/slt/*.test.ts does it):\n` +
            listed(fixed, (line) => `${file.name}:${line}`),
        );
      }
      if (problems.length > 0) assert.fail(problems.join('\n\n'));
    });
  }

  test(`slt corpus: at least ${requiredPassRate * 100}% of the queries pass (shard ${index}/${count})`, async (t: TestContext) => {
    if (updating) {
      const ran = mine.filter((file) => results.has(file.name));
      await updateKnownFailures((known) => {
        for (const file of ran) {
          const failures = results.get(file.name)!.failures;
          if (failures.length === 0) known.delete(file.name);
          // An entry that stays keeps its reason: reasons are edited by hand to say why (e.g. where
          // PostgreSQL and SQLite, which generated the corpus, disagree).
          else known.set(file.name, new Map(failures.map((failure) => [failure.line, known.get(file.name)?.get(failure.line) ?? failure.reason])));
        }
        if (index === 1) for (const file of known.keys()) if (!order.includes(file)) known.delete(file);
      }, order);
      t.diagnostic(`rewrote the entries of ${ran.length} file(s) in ${path.relative(repoRoot, knownFailuresPath)}`);
    }
    const known = readKnownFailures();
    const strangers = [...known.keys()].filter((file) => !order.includes(file));
    assert.deepEqual(strangers, [], `${path.relative(repoRoot, knownFailuresPath)} lists files that are not in the corpus at ${corpus}: remove their lines`);

    const mineQueries = [...results.values()].reduce((sum, result) => sum + result.queries.passed + result.queries.failed, 0);
    const minePassed = [...results.values()].reduce((sum, result) => sum + result.queries.passed, 0);
    t.diagnostic(`shard ${index}/${count}: ${minePassed}/${mineQueries} queries pass (${percent(minePassed, mineQueries)}) in ${((performance.now() - started) / 1000).toFixed(1)} s`);

    const queries = files.reduce((sum, file) => sum + file.queryLines.size, 0);
    const failing = files.reduce((sum, file) => sum + [...(known.get(file.name)?.keys() ?? [])].filter((line) => file.queryLines.has(line)).length, 0);
    t.diagnostic(`corpus (by ${path.basename(knownFailuresPath)}): ${queries - failing}/${queries} queries pass (${percent(queries - failing, queries)})`);
    assert.ok(
      queries - failing >= requiredPassRate * queries,
      `only ${queries - failing} of the corpus's ${queries} queries pass (${percent(queries - failing, queries)}); at least ${requiredPassRate * 100}% must`,
    );
  });
}
