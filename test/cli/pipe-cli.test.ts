/**
 * The pipe one-liner from the shell: `--print` shows the pipeline it stands for; running it runs
 * that pipeline (`sluice up`), and says what stops it; a bad pipe is reported at its column.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const sluice = path.resolve(import.meta.dirname, '../../bin/sluice.js');
const run = (args: string[]) => spawnSync(process.execPath, [sluice, ...args], { encoding: 'utf8', timeout: 30_000 });

test("the seed's pipe compiles into its pipeline, and running it says what stops it", () => {
  const printed = run(['mysql://shop@localhost/shop?tables=products | where price > 0 | search', '--print']);
  assert.equal(printed.status, 0, printed.stderr);
  assert.match(printed.stdout, /CREATE SOURCE pipe_source FROM MYSQL 'mysql:\/\/shop@localhost\/shop' WITH \(tables = 'products'\);\nCREATE VIEW pipe_1 AS SELECT \* FROM pipe_source\.products WHERE price > 0;\nCREATE SINK pipe_sink FROM pipe_1 INTO SEARCH;/);
  const data = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-pipe-'));
  // Nothing listens on port 1: the pipeline cannot read the source's columns, and says so.
  const result = run(['mysql://shop:secret@127.0.0.1:1/shop?tables=products | where price > 0 | search', '--data', data, '--listen', '127.0.0.1:0']);
  assert.equal(result.status, 2);
  assert.match(result.stderr, /source pipe_source: cannot connect: connect ECONNREFUSED 127\.0\.0\.1:1\n  hint: the pipeline needs the source database to read its tables' columns/);
  assert.doesNotMatch(result.stderr + result.stdout, /secret/, 'the password is never printed');
});

test('a bad pipe is reported at its column with a hint', () => {
  const result = run(['orders | frobnicate x | search']);
  assert.equal(result.status, 2);
  assert.match(result.stderr, /^sluice: column 10: "frobnicate" is not a stage\n  orders \| frobnicate x \| search\n {11}\^\n  hint: a stage is one of/);
  assert.equal(result.stdout, '');
});
