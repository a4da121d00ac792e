/**
 * The `sluice log` commands as a user runs them: real processes, a temporary data directory,
 * the contract of DESIGN.md (one `{"partition":P,"offset":O}` line per durable record; NDJSON
 * records with offsets; clear errors and exit codes).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { partitionForKey } from '../../src/log/index.ts';

const sluice = path.resolve(import.meta.dirname, '../../bin/sluice.js');

function run(args: string[], input = ''): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [sluice, ...args], { input, encoding: 'utf8', timeout: 30_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

function lines(text: string): unknown[] {
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as unknown);
}

test('log append reports malformed lines by number, appends the rest, and exits 1', () => {
  const data = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-cli-'));
  const input = ['{"id":1,"name":"lamp"}', 'not json', '{"id":2,"name":"desk\u2028with a line separator"}', '', '{"name":"no id"}', '{"id":3}'].join('\n');
  const appended = run(['log', 'append', 'products', '--data', data, '--key', 'id', '--partitions', '2'], input);
  assert.equal(appended.status, 1, appended.stderr);
  assert.match(appended.stderr, /line 2 skipped: it is not valid JSON/);
  assert.match(appended.stderr, /line 5 skipped: it has no field "id" to use as the key/);
  assert.match(appended.stderr, /appended 3 records to products; skipped 2 malformed lines/);
  const positions = lines(appended.stdout) as Array<{ partition: number; offset: number }>;
  assert.deepEqual(
    positions.map((p) => p.partition),
    ['1', '2', '3'].map((key) => partitionForKey(key, 2)),
    'each record went to the partition its key hashes to',
  );

  const read = run(['log', 'read', 'products', '--data', data]);
  assert.equal(read.status, 0, read.stderr);
  const records = lines(read.stdout) as Array<{ topic: string; partition: number; offset: number; key: string; value: { id: number; name?: string } }>;
  assert.equal(records.length, 3);
  for (const record of records) {
    assert.equal(record.topic, 'products');
    assert.equal(record.key, String(record.value.id));
    const position = positions[record.value.id - 1];
    assert.deepEqual({ partition: record.partition, offset: record.offset }, position);
  }
  assert.equal(records.find((r) => r.value.id === 2)?.value.name, 'desk\u2028with a line separator');

  const topics = run(['log', 'topics', '--data', data]);
  assert.deepEqual(lines(topics.stdout), [
    {
      topic: 'products',
      partitions: 2,
      cleanupPolicy: 'delete',
      startOffsets: [0, 0],
      endOffsets: [0, 1].map((p) => positions.filter((x) => x.partition === p).length),
    },
  ]);
});

test('log read --from skips earlier offsets; appends continue the offsets', () => {
  const data = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-cli-'));
  const first = run(['log', 'append', 'events', '--data', data], Array.from({ length: 5 }, (_, i) => JSON.stringify({ n: i })).join('\n') + '\n');
  assert.equal(first.status, 0, first.stderr);
  assert.deepEqual(lines(first.stdout), [0, 1, 2, 3, 4].map((offset) => ({ partition: 0, offset })));
  const second = run(['log', 'append', 'events', '--data', data, '--persist', 'syncAll'], '{"n":5}\n');
  assert.deepEqual(lines(second.stdout), [{ partition: 0, offset: 5 }]);
  const read = run(['log', 'read', 'events', '--data', data, '--from', '3']);
  assert.deepEqual(
    (lines(read.stdout) as Array<{ offset: number; value: { n: number } }>).map((r) => [r.offset, r.value.n]),
    [
      [3, 3],
      [4, 4],
      [5, 5],
    ],
  );
});

test('bad usage and unknown topics are clear errors with exit code 2', () => {
  const data = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-cli-'));
  const unknown = run(['log', 'read', 'missing', '--data', data]);
  assert.equal(unknown.status, 2);
  assert.match(unknown.stderr, /topic missing does not exist/);
  assert.match(unknown.stderr, /hint: list the topics with `sluice log topics`/);
  const badPersist = run(['log', 'append', 't', '--data', data, '--persist', 'sometimes']);
  assert.equal(badPersist.status, 2);
  assert.match(badPersist.stderr, /--persist must be buffer, syncData or syncAll, not "sometimes"/);
  const badTopic = run(['log', 'append', '../etc', '--data', data], '{}\n');
  assert.equal(badTopic.status, 2);
  assert.match(badTopic.stderr, /"..\/etc" is not a valid topic name/);
  const badOption = run(['log', 'read', 't', '--data', data, '--frm', '3']);
  assert.equal(badOption.status, 2);
  assert.match(badOption.stderr, /Unknown option '--frm'/);
  const missing = run(['up', path.join(data, 'pipeline.sql'), '--data', data]);
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /cannot read .*pipeline\.sql: ENOENT\n  hint: give the path of a pipeline \.sql file/);
});
