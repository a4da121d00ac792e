/**
 * `sluice slt` as a user runs it: a line per file, its first failures (all with --verbose), the
 * totals as the very last line, exit code 0 when everything passed and 1 when something failed,
 * and 2 for bad usage.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const sluice = path.resolve(import.meta.dirname, '../../bin/sluice.js');
const run = (args: string[]) => spawnSync(process.execPath, [sluice, 'slt', ...args], { encoding: 'utf8', timeout: 60_000 });

/** A table of three rows, and queries of it that pass: by values, and by hash over the threshold. */
const passing = `hash-threshold 4

statement ok
CREATE TABLE t1(a INTEGER, b INTEGER)

statement ok
INSERT INTO t1 VALUES (1, 10), (2, 20), (3, 30)

# 6 values, over the threshold: MD5 of "1\\n10\\n2\\n20\\n3\\n30\\n"
query II rowsort
SELECT a, b FROM t1
----
6 values hashing to eec09b499a9f85c0bf4b07134d807d7a

query I nosort
SELECT b FROM t1 WHERE a = 2
----
20

statement error
SELECT no_such_column FROM t1

skipif postgresql
query I nosort
SELECT 1
----
2
`;

/** Seven queries with wrong expectations, a statement that fails, and one with the wrong columns. */
const failing = `statement ok
CREATE TABLE t1(a INTEGER, b INTEGER)

statement ok
INSERT INTO t1 VALUES (1, 10), (2, 20), (3, 30)

${Array.from({ length: 7 }, (_, i) => `query I rowsort\nSELECT a FROM t1 WHERE b > ${i}\n----\n1\n2\n4\n`).join('\n')}
statement ok
SELECT no_such_column FROM t1

query II nosort
SELECT a FROM t1 WHERE a = 1
----
1
10

query I nosort
SELECT a FROM t1 WHERE a = 3
----
3
`;

function writeTest(name: string, text: string): string {
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-slt-'));
  const file = path.join(folder, name);
  fs.writeFileSync(file, text);
  return file;
}

test('a passing file: its line, the totals last, exit code 0', () => {
  const file = writeTest('passing.test', passing);
  const result = run([file]);
  assert.equal(result.status, 0, result.stdout + result.stderr);
  const lines = result.stdout.trimEnd().split('\n');
  assert.match(lines[0]!, new RegExp(`^${file.replaceAll('.', '\\.')}: 5 passed, 0 failed, 1 skipped \\(\\d+\\.\\d s\\)$`));
  assert.equal(lines.at(-1), '5 passed, 0 failed');
  assert.equal(lines.length, 2);
});

test('failures: the first five per file with where and why, all with --verbose; totals over all files; exit code 1', () => {
  const good = writeTest('passing.test', passing);
  const bad = writeTest('failing.test', failing);
  const result = run([good, bad]);
  assert.equal(result.status, 1, result.stderr);
  const lines = result.stdout.trimEnd().split('\n');
  assert.match(lines[0]!, /passing\.test: 5 passed, 0 failed, 1 skipped/);
  assert.match(lines[1]!, /failing\.test: 3 passed, 9 failed, 0 skipped \(\d+\.\d s\)$/);
  // The first failure: the query's line, a reason showing expected and actual values, its SQL.
  assert.equal(lines[2], `  ${bad}:7: wrong result: expected [1, 2, 4], got [1, 2, 3]`);
  assert.equal(lines[3], '    SELECT a FROM t1 WHERE b > 0');
  assert.equal(lines.filter((line) => line.startsWith(`  ${bad}:`)).length, 5);
  assert.equal(lines.at(-2), '  … and 4 more failures (--verbose shows all)');
  assert.equal(lines.at(-1), '8 passed, 9 failed');

  const verbose = run([bad, '--verbose']);
  assert.equal(verbose.status, 1);
  const failures = verbose.stdout.split('\n').filter((line) => line.startsWith(`  ${bad}:`));
  assert.equal(failures.length, 9);
  assert.match(failures[7]!, /:56: .*no_such_column/, 'a statement that fails gives the error as its reason');
  assert.match(failures[8]!, /:59: wrong number of columns: expected 2 \(II\), got 1/);
  assert.equal(verbose.stdout.trimEnd().split('\n').at(-1), '3 passed, 9 failed');
});

test('bad usage: no file, a missing file, a file that is not sqllogictest; exit code 2', () => {
  const none = run([]);
  assert.equal(none.status, 2);
  assert.match(none.stderr, /slt needs at least one sqllogictest file/);
  const good = writeTest('passing.test', passing);
  const missing = run([good, path.join(os.tmpdir(), 'no-such-file.test')]);
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /no-such-file\.test: no such file/);
  assert.equal(missing.stdout, '', 'nothing runs when a file is missing');
  const notSlt = run([writeTest('notes.test', 'SELECT 1;\n')]);
  assert.equal(notSlt.status, 2);
  assert.match(notSlt.stderr, /notes\.test:1: unknown record "SELECT 1;"/);
});
