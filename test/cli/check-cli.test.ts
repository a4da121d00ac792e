/**
 * `sluice check`: a valid pipeline prints its tables, each view's plan, sources (passwords
 * hidden) and sinks, and exits 0; an invalid one prints the first error at its line:column with
 * a caret and a hint, and exits 1.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const sluice = path.resolve(import.meta.dirname, '../../bin/sluice.js');
const run = (args: string[]) => spawnSync(process.execPath, [sluice, ...args], { encoding: 'utf8', timeout: 30_000 });

function pipelineFile(text: string): string {
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-check-'));
  const file = path.join(directory, 'pipeline.sql');
  fs.writeFileSync(file, text);
  return file;
}

test('a valid pipeline: plans printed, the password hidden', () => {
  const file = pipelineFile(`
CREATE TABLE clicks (user_id bigint, url text);
CREATE TABLE users (id bigint PRIMARY KEY, country text);
CREATE VIEW french_clicks AS
  SELECT u.id, count(*) AS n FROM clicks c, users u WHERE u.id = c.user_id AND u.country = 'fr' GROUP BY u.id;
CREATE SINK s FROM french_clicks INTO SEARCH;
`);
  const result = run(['check', file]);
  assert.equal(result.status, 0, result.stderr);
  // The WHERE equality became the join key, the filter sits on users, and the unused url is pruned.
  assert.ok(
    result.stdout.includes(
      'view french_clicks: id bigint, n bigint\n  Project id, count(*) AS n\n    Aggregate by id: count(*)\n      Join inner on (id = user_id)\n' +
        "        Project user_id\n          Scan clicks (user_id, url)\n        Project id\n          Filter (country = 'fr')\n            Scan users (id, country)\n",
    ),
    result.stdout,
  );
  assert.match(result.stdout, /valid — 2 tables, 1 view, 0 sources, 1 sink\n$/);
});

test('an invalid pipeline: the error at its line and column, exit 1', () => {
  const file = pipelineFile('CREATE TABLE t (amount numeric);\nCREATE VIEW v AS\n  SELECT sum(amont) FROM t;\n');
  const result = run(['check', file]);
  assert.equal(result.status, 1);
  assert.equal(result.stderr, `sluice check: ${file}:3:14: column "amont" does not exist\n    SELECT sum(amont) FROM t;\n               ^\n  hint: did you mean "amount"?\n`);
});

test('usage errors exit 2', () => {
  assert.equal(run(['check']).status, 2);
  assert.equal(run(['check', '/nonexistent/pipeline.sql']).status, 2);
});
