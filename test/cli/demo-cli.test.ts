/**
 * `sluice demo` (what `npm start` runs), as a user runs it: it appends the live workload, follows
 * it back through an incremental view, stops cleanly after --seconds, and leaves a readable log.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const sluice = path.resolve(import.meta.dirname, '../../bin/sluice.js');

test('the demo runs the workload through the log and a live view, then stops cleanly', () => {
  const data = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-demo-'));
  const demo = spawnSync(process.execPath, [sluice, 'demo', '--data', data, '--seconds', '3', '--rate', '4000'], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(demo.status, 0, demo.stderr);
  const updates = demo.stdout.split('\r').filter((line) => line.includes('top revenue this run:'));
  assert.ok(updates.length >= 1, `the live summary showed the view: ${demo.stdout}`);
  // The view names real products with decimal revenues, largest first.
  const last = updates.at(-1)!;
  const leaders = [...last.matchAll(/(lamp|desk|chair|rug|shelf|mug|kettle|clock) (\d+\.\d{2})/g)].map((match) => Number(match[2]));
  assert.equal(leaders.length, 3, last);
  assert.deepEqual([...leaders].sort((a, b) => b - a), leaders, 'the top 3 are in descending order of revenue');
  const stopped = /Stopped after ([\d,]+) events/.exec(demo.stdout);
  assert.ok(stopped, demo.stdout);
  // Everything acknowledged is readable afterwards: half the events are orders.
  const read = spawnSync(process.execPath, [sluice, 'log', 'read', 'orders', '--data', data], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(read.status, 0, read.stderr);
  const orders = read.stdout.split('\n').filter((line) => line !== '').length;
  assert.equal(orders * 2, Number(stopped[1]!.replaceAll(',', '')), 'every acknowledged order is in the log');
});
