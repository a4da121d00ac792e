import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { Decimal, DefiniteError, Json, NodeStorage, Timestamp, TransientError, type Row, type Storage, type StorageFile } from '../../core/index.ts';
import { resolveType } from '../../sql/index.ts';
import type { SinkBatch, SinkTarget } from '../sink.ts';
import { FileSink } from './file-sink.ts';

const target: SinkTarget = {
  name: 'orders',
  columns: [
    { name: 'id', type: resolveType('bigint') },
    { name: 'amount', type: resolveType('numeric', [10, 2]) },
    { name: 'at', type: resolveType('timestamptz') },
    { name: 'doc', type: resolveType('jsonb') },
  ],
  key: [0],
};

function temporaryFile(name = 'out.jsonl'): string {
  return path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-file-sink-')), name);
}

function lines(file: string): Array<Record<string, unknown>> {
  const text = fs.readFileSync(file, 'utf8');
  assert.ok(text === '' || text.endsWith('\n'), 'the file ends with a whole line');
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

const order = (id: number, amount: string): Row => [id, Decimal.parse(amount), new Timestamp('timestamptz', 1_700_000_000_000_000n), new Json({ id })];

/** Steps 1..n, each a mix of inserts, an update (delete + insert) and duplicates. */
function steps(n: number, size = 3): SinkBatch[] {
  const batches: SinkBatch[] = [];
  for (let step = 1; step <= n; step++) {
    const rows: Row[] = [];
    const weights: number[] = [];
    for (let i = 0; i < size; i++) {
      rows.push(order(step * 1000 + i, `${step}.${i}0`));
      weights.push(1 + (i % 2));
    }
    if (step > 1) {
      rows.unshift(order((step - 1) * 1000, `${step - 1}.00`));
      weights.unshift(-1);
    }
    batches.push({ step, frontier: `token-${step}`, rows, weights });
  }
  return batches;
}

async function writeAll(file: string, batches: readonly SinkBatch[], options: { storage?: Storage } = {}): Promise<FileSink> {
  const sink = await FileSink.open(file, target, options);
  for (const batch of batches) await sink.write(batch);
  return sink;
}

test('one line per change: deletes first, a weight of n as n lines, the step on each line and its line count on the last', async () => {
  const file = temporaryFile();
  const sink = await FileSink.open(file, target);
  assert.equal(sink.committed(), undefined);
  await sink.write({ step: 1, frontier: 'p1', rows: [order(1, '9.50'), order(2, '3')], weights: [1, 2] });
  await sink.write({ step: 2, frontier: 'p2', rows: [order(2, '3'), order(1, '9.50'), order(1, '12.00')], weights: [1, -1, 1] });
  assert.deepEqual(sink.committed(), { step: 2, frontier: 'p2' });
  await sink.close();
  const row = (id: number, amount: string) => ({ id, amount, at: '2023-11-14 22:13:20+00', doc: { id } });
  assert.deepEqual(lines(file), [
    { op: 'insert', row: row(1, '9.50'), position: 'p1', step: 1 },
    { op: 'insert', row: row(2, '3'), position: 'p1', step: 1 },
    { op: 'insert', row: row(2, '3'), position: 'p1', step: 1, lines: 3 },
    { op: 'delete', row: row(1, '9.50'), position: 'p2', step: 2 },
    { op: 'insert', row: row(2, '3'), position: 'p2', step: 2 },
    { op: 'insert', row: row(1, '12.00'), position: 'p2', step: 2, lines: 3 },
  ]);
  // The line's shape: op, row, position first (the change-stream shape), then the step.
  assert.match(fs.readFileSync(file, 'utf8').split('\n')[0]!, /^\{"op":"insert","row":\{"id":1,"amount":"9.50",.*\},"position":"p1","step":1\}$/);
});

test('a replayed step is skipped, also after reopening: committed() comes from the file', async () => {
  const file = temporaryFile();
  const batches = steps(4);
  let sink = await writeAll(file, batches.slice(0, 3));
  await sink.write(batches[1]!);
  await sink.write(batches[2]!);
  await sink.close();
  const before = fs.readFileSync(file);
  sink = await FileSink.open(file, target);
  assert.deepEqual(sink.committed(), { step: 3, frontier: 'token-3' });
  for (const batch of batches) await sink.write(batch);
  await sink.close();
  const after = fs.readFileSync(file);
  assert.deepEqual(after.subarray(0, before.length), before);
  assert.deepEqual(new Set(lines(file).map((line) => line.step)), new Set([1, 2, 3, 4]));
  const reference = temporaryFile();
  await (await writeAll(reference, batches)).close();
  assert.deepEqual(after, fs.readFileSync(reference));
});

/** The real file system without its (slow) syncs, for tests that simulate crashes by editing files. */
const unsynced: Storage = (() => {
  const real = new NodeStorage();
  return Object.create(real, {
    open: {
      value: (file: string, options: { create?: boolean }): StorageFile => {
        const handle = real.open(file, options);
        return {
          path: handle.path,
          size: () => handle.size(),
          read: (...args) => handle.read(...args),
          write: (buffers, position) => handle.write(buffers, position),
          truncate: (size) => handle.truncate(size),
          sync: () => Promise.resolve(),
          close: () => handle.close(),
        };
      },
    },
    syncDirectory: { value: () => Promise.resolve() },
  }) as Storage;
})();

test('a crash at any byte of a step: reopening truncates to the last whole step and rewriting gives the same file', async () => {
  const reference = temporaryFile();
  const batches = steps(5, 4);
  await (await writeAll(reference, batches)).close();
  const whole = fs.readFileSync(reference);
  const ends: number[] = []; // where each step's lines end
  whole.forEach((byte, i) => {
    if (byte === 10 && /"lines":\d+\}$/.test(whole.subarray(0, i).toString().split('\n').at(-1)!)) ends.push(i + 1);
  });
  assert.equal(ends.length, 5);
  const file = temporaryFile();
  // Every byte around each step's end, and a stride through the rest.
  const cuts = new Set<number>();
  for (let cut = 0; cut <= whole.length; cut += 7) cuts.add(cut);
  for (const end of [0, ...ends]) for (let d = -3; d <= 3; d++) if (end + d >= 0 && end + d <= whole.length) cuts.add(end + d);
  for (const cut of [...cuts].sort((a, b) => a - b)) {
    fs.writeFileSync(file, whole.subarray(0, cut));
    const sink = await FileSink.open(file, target, { storage: unsynced });
    const lastWhole = ends.filter((end) => end <= cut).length;
    assert.deepEqual(sink.committed(), lastWhole === 0 ? undefined : { step: lastWhole, frontier: `token-${lastWhole}` }, `cut at ${cut}`);
    assert.equal(fs.statSync(file).size, lastWhole === 0 ? 0 : ends[lastWhole - 1], `cut at ${cut}: truncated to the last whole step`);
    // The runtime replays from the steps it knows: all of them, here.
    for (const batch of batches) await sink.write(batch);
    await sink.close();
    assert.ok(fs.readFileSync(file).equals(whole), `cut at ${cut}: no duplicate and no gap`);
  }
});

test('sectors lost in a crash (zeros inside the unfinished step, even with its last line intact) are cut off', async () => {
  const reference = temporaryFile();
  const batches = steps(3, 40);
  await (await writeAll(reference, batches)).close();
  const whole = fs.readFileSync(reference);
  const text = whole.toString();
  const endOfStep2 = text.indexOf('\n', text.indexOf('"step":2,"lines"')) + 1;
  const file = temporaryFile();
  for (const at of [endOfStep2, endOfStep2 + 512, whole.length - 700]) {
    const damaged = Buffer.from(whole);
    damaged.fill(0, at, Math.min(at + 512, whole.length - 100));
    fs.writeFileSync(file, damaged);
    const sink = await FileSink.open(file, target);
    assert.deepEqual(sink.committed(), { step: 2, frontier: 'token-2' });
    for (const batch of batches) await sink.write(batch);
    await sink.close();
    assert.ok(fs.readFileSync(file).equals(whole));
  }
  // Zeros past the end (a file extended by a lost write) are cut off too.
  fs.writeFileSync(file, Buffer.concat([whole, Buffer.alloc(1024)]));
  const sink = await FileSink.open(file, target);
  assert.deepEqual(sink.committed(), { step: 3, frontier: 'token-3' });
  await sink.close();
  assert.equal(fs.statSync(file).size, whole.length);
});

test('large steps: 100,000 changes in one write; a crash inside one is found by reading back past it', async () => {
  const file = temporaryFile();
  const rows: Row[] = [];
  for (let i = 0; i < 50_000; i++) rows.push(order(i, `${i}.25`));
  const big = (step: number): SinkBatch => ({ step, frontier: `t${step}`, rows, weights: rows.map((_, i) => (i % 5 === 0 ? 2 : 1)) });
  const sink = await FileSink.open(file, target);
  await sink.write(big(1));
  await sink.write(big(2));
  await sink.close();
  const all = lines(file);
  assert.equal(all.length, 2 * 60_000);
  assert.equal(all[59_999]!.lines, 60_000);
  const size = fs.statSync(file).size;
  // Cut step 2 near its end: the scan reads back over ~60,000 lines of it to find step 1's end.
  fs.truncateSync(file, size - 100);
  const reopened = await FileSink.open(file, target);
  assert.deepEqual(reopened.committed(), { step: 1, frontier: 't1' });
  assert.equal(fs.statSync(file).size, size / 2);
  await reopened.write(big(2));
  await reopened.close();
  assert.equal(fs.statSync(file).size, size);
});

test('steps without changes write nothing but are remembered beside the file, until a later step writes', async () => {
  const file = temporaryFile();
  let sink = await FileSink.open(file, target);
  await sink.write({ step: 1, frontier: 'p1', rows: [order(1, '1')], weights: [1] });
  await sink.write({ step: 2, frontier: 'p2', rows: [], weights: [] });
  await sink.write({ step: 3, frontier: 'p3', rows: [order(1, '1')], weights: [0] });
  assert.deepEqual(sink.committed(), { step: 3, frontier: 'p3' });
  await sink.close();
  assert.equal(lines(file).length, 1);
  sink = await FileSink.open(file, target);
  assert.deepEqual(sink.committed(), { step: 3, frontier: 'p3' });
  await sink.write({ step: 4, frontier: 'p4', rows: [order(2, '2')], weights: [1] });
  await sink.close();
  sink = await FileSink.open(file, target);
  assert.deepEqual(sink.committed(), { step: 4, frontier: 'p4' }, 'the sidecar is stale once the file grew');
  await sink.write({ step: 5, frontier: 'p5', rows: [], weights: [] });
  await sink.close();
  // A damaged sidecar only loses the empty steps: they replay as nothing.
  const sidecar = file + '.sluice-step';
  fs.writeFileSync(sidecar, fs.readFileSync(sidecar, 'utf8').replace('"step":5', '"step":6'));
  sink = await FileSink.open(file, target);
  assert.deepEqual(sink.committed(), { step: 4, frontier: 'p4' });
  await sink.close();
  // A crash that cut step 4 away: the sidecar (recorded at step 3's size) counts again.
  fs.rmSync(sidecar);
  sink = await FileSink.open(file, target);
  await sink.write({ step: 5, frontier: 'p5', rows: [], weights: [] });
  await sink.close();
  const text = fs.readFileSync(file, 'utf8');
  fs.writeFileSync(file, text.slice(0, text.length - 10));
  sink = await FileSink.open(file, target);
  assert.deepEqual(sink.committed(), { step: 1, frontier: 'p1' }, 'step 4 was cut: the sidecar of step 5 no longer matches the size');
  await sink.close();
});

test('a file the sink did not write is refused, never truncated', async () => {
  const cases: Array<[string, RegExp]> = [
    ['hello world\n', /holds a line that the file sink did not write \(the line at byte 0\)/],
    ['{"id":1}\n{"id":2}\n', /holds a line that the file sink did not write \(the line at byte 9\)/],
    ['{"op":"insert","row":{},"position":"p","step":1,"lines":1}\nid,name', /ends with text that the file sink did not write \(at byte 59\)/],
    ['{"op":"insert","row":{},"position":"p","step":1,"lines":1}\n{"op":"insert","row":{},"position":"p","step":3}\n{"op":"insert","row":{},"position":"p","step":4}\n', /several steps \(3 and 4\)/],
  ];
  for (const [content, pattern] of cases) {
    const file = temporaryFile();
    fs.writeFileSync(file, content);
    await assert.rejects(FileSink.open(file, target), (error: unknown) => {
      assert.ok(error instanceof DefiniteError);
      assert.equal(error.code, 'file_sink_damaged');
      assert.match(error.message, pattern);
      assert.match(error.hint!, /choose another file/);
      return true;
    });
    assert.equal(fs.readFileSync(file, 'utf8'), content);
  }
  // A cut-off first line of the sink's own is a crash's leftover: truncated.
  const file = temporaryFile();
  fs.writeFileSync(file, '{"op":"ins');
  const sink = await FileSink.open(file, target);
  assert.equal(sink.committed(), undefined);
  await sink.close();
  assert.equal(fs.statSync(file).size, 0);
});

test('a failed append is cut back off; a failed sync stops the sink until it is reopened', async () => {
  const real = new NodeStorage();
  let failWrite = false;
  let failSync = false;
  const storage: Storage = Object.create(real, {
    open: {
      value: (file: string, options: { create?: boolean }): StorageFile => {
        const handle = real.open(file, options);
        return {
          path: handle.path,
          size: () => handle.size(),
          read: (...args) => handle.read(...args),
          write: (buffers, position) => {
            if (failWrite) {
              handle.write([buffers[0]!.subarray(0, 10)], position);
              throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
            }
            handle.write(buffers, position);
          },
          truncate: (size) => handle.truncate(size),
          sync: (mode) => (failSync ? Promise.reject(new Error('EIO: i/o error')) : handle.sync(mode)),
          close: () => handle.close(),
        };
      },
    },
  });
  const file = temporaryFile();
  const batches = steps(3);
  const sink = await writeAll(file, batches.slice(0, 1), { storage });
  const size = fs.statSync(file).size;
  failWrite = true;
  await assert.rejects(sink.write(batches[1]!), (error: unknown) => error instanceof TransientError && /ENOSPC/.test(error.message));
  assert.equal(fs.statSync(file).size, size);
  failWrite = false;
  await sink.write(batches[1]!);
  failSync = true;
  await assert.rejects(sink.write(batches[2]!), (error: unknown) => error instanceof TransientError && error.code === 'file_sink_sync');
  failSync = false;
  await assert.rejects(sink.write(batches[2]!), /refuses further writes until it is reopened/);
  await sink.close();
  const reopened = await writeAll(file, batches);
  await reopened.close();
  const reference = temporaryFile();
  await (await writeAll(reference, batches)).close();
  assert.ok(fs.readFileSync(file).equals(fs.readFileSync(reference)));
});

test('writes issued without waiting are applied in order', async () => {
  const file = temporaryFile();
  const sink = await FileSink.open(file, target);
  const batches = steps(6);
  await Promise.all(batches.map((batch) => sink.write(batch)));
  await sink.close();
  assert.deepEqual([...new Set(lines(file).map((line) => line.step))], [1, 2, 3, 4, 5, 6]);
});

test('the sidecar of empty steps starts afresh when it grows large', async () => {
  const file = temporaryFile();
  let sink = await FileSink.open(file, target, { storage: unsynced });
  await sink.write({ step: 1, frontier: 'p1', rows: [order(1, '1')], weights: [1] });
  for (let step = 2; step <= 2001; step++) await sink.write({ step, frontier: `p${step}`, rows: [], weights: [] });
  await sink.close();
  assert.ok(fs.statSync(file + '.sluice-step').size <= 1 << 16);
  sink = await FileSink.open(file, target, { storage: unsynced });
  assert.deepEqual(sink.committed(), { step: 2001, frontier: 'p2001' });
  await sink.close();
});
