/**
 * Retention of delete-policy topics: `retentionMs` removes sealed segments whose newest record is
 * older than that, `retentionBytes` removes the oldest sealed segments while the partition is
 * larger; the active segment always stays. Offsets of the records left never change, the start
 * offset moves up to the first segment kept, and all of it survives reopening.
 *
 * Segment boundaries and sizes are read from the partition folder; record timestamps come from
 * a controllable clock that moves in steps of 10 ms, while retention times end in 5 ms, so a
 * segment's age never equals the retention and the boundary case cannot make a test flaky.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import type { LogRecord } from '../log.ts';
import { FileLog } from './file-log.ts';
import { readAll as readAllOf } from './log-test-support.ts';

/**
 * Runs (each does real file I/O) stop after this long: it keeps the file within its time budget
 * on a slow machine and bounds the shrinking of a failure, whose smallest counterexample found
 * by then is still reported. Runs past it pass at once, so none is abandoned halfway.
 */
const runBudgetMs = 16_000;

const topic = 'events';

function temporaryFolder(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-retention-'));
}

function partitionFolder(folder: string, partition: number): string {
  return path.join(folder, 'topics', topic, String(partition));
}

interface SegmentFile {
  baseOffset: number;
  bytes: number;
}

/** The partition's segment files, oldest first; the last one is the active segment. */
function segmentFiles(folder: string, partition: number): SegmentFile[] {
  const where = partitionFolder(folder, partition);
  return fs
    .readdirSync(where)
    .filter((name) => /^\d{20}\.log$/.test(name))
    .sort()
    .map((name) => ({ baseOffset: Number(name.slice(0, 20)), bytes: fs.statSync(path.join(where, name)).size }));
}

function readAll(log: FileLog, partition: number, from = 0, maxRecords?: number): Promise<LogRecord[]> {
  return readAllOf(log, topic, partition, from, maxRecords);
}

/** Appended values and their timestamps, by offset. */
interface ModelRecord {
  value: string;
  timestamp: number;
}

function assertReadsFrom(records: LogRecord[], model: ModelRecord[], start: number, context: string): void {
  assert.equal(records.length, model.length - start, `${context}: ${records.length} records read from 0, expected offsets ${start}…${model.length - 1}`);
  for (const [i, record] of records.entries()) {
    const offset = start + i;
    assert.equal(record.offset, offset, `${context}: offsets of the records kept do not change`);
    assert.equal(record.value?.toString(), model[offset].value, `${context}: value at offset ${offset}`);
    assert.equal(record.timestamp, model[offset].timestamp, `${context}: timestamp at offset ${offset}`);
  }
}

/** Appends `count` single-record batches of about `bytes` bytes each at the current clock. */
async function appendMany(log: FileLog, model: ModelRecord[], count: number, bytes: number, now: number, partition = 0): Promise<void> {
  for (let i = 0; i < count; i++) {
    const value = `record ${model.length} `.padEnd(bytes, '-');
    const result = await log.append(topic, partition, [{ value }], { persist: 'buffer' });
    assert.equal(result.baseOffset, model.length);
    model.push({ value, timestamp: now });
  }
}

test('retentionMs removes the sealed segments whose newest record is older, never the active segment', { timeout: 120_000 }, async () => {
  const folder = temporaryFolder();
  let clock = 1_000_000;
  const open = () => FileLog.open(folder, { now: () => clock, cleanupIntervalMs: 0 });
  let log = await open();
  const model: ModelRecord[] = [];
  try {
    await log.createTopic(topic, { retentionMs: 1005, segmentBytes: 4096 });
    await appendMany(log, model, 60, 200, clock); // about three segments, all at 1 000 000
    clock += 600;
    await appendMany(log, model, 60, 200, clock); // about three more at 1 000 600
    const segments = segmentFiles(folder, 0);
    assert.ok(segments.length >= 5, `expected several segments, got ${segments.length}`);

    // Nothing is older than 1005 ms yet.
    assert.deepEqual(await log.cleanup(topic), { segmentsRemoved: 0, bytesReclaimed: 0 });
    assert.deepEqual(await log.startOffsets(topic), [0]);

    // At 1 001 200 the segments holding only records of 1 000 000 are 1200 ms old and go; the one
    // where the second round of appends began holds a record of 1 000 600 and stays.
    clock += 600;
    const straddling = segments.findIndex((segment, i) => i + 1 < segments.length && segments[i + 1].baseOffset > 60);
    const expectedRemoved = segments.slice(0, straddling);
    assert.ok(expectedRemoved.length >= 1);
    const result = await log.cleanup(topic);
    assert.deepEqual(result, { segmentsRemoved: expectedRemoved.length, bytesReclaimed: expectedRemoved.reduce((sum, segment) => sum + segment.bytes, 0) });
    const start = segments[straddling].baseOffset;
    assert.ok(start <= 60, 'the segment holding offset 60 is kept');
    assert.deepEqual(await log.startOffsets(topic), [start]);
    assert.deepEqual(await log.endOffsets(topic), [120]);
    assert.deepEqual(segmentFiles(folder, 0), segments.slice(straddling));
    assertReadsFrom(await readAll(log, 0), model, start, 'after the first retention');
    assertReadsFrom(await readAll(log, 0, 0, 7), model, start, 'paged, after the first retention');
    const fromRemoved = await log.read(topic, 0, 1);
    assert.equal(fromRemoved.records[0]?.offset, start, 'a read from a removed offset starts at the start offset');

    // Long after, every sealed segment is expired; the active one stays however old it is.
    clock += 1_000_000;
    const before = segmentFiles(folder, 0);
    const active = before[before.length - 1];
    const second = await log.cleanup(topic);
    assert.equal(second.segmentsRemoved, before.length - 1);
    assert.deepEqual(segmentFiles(folder, 0), [active]);
    assert.deepEqual(await log.startOffsets(topic), [active.baseOffset]);
    assert.deepEqual(await log.endOffsets(topic), [120]);
    assertReadsFrom(await readAll(log, 0), model, active.baseOffset, 'with only the active segment left');
    assert.deepEqual(await log.cleanup(topic), { segmentsRemoved: 0, bytesReclaimed: 0 });

    // Reopened, the log has the same start, end and records, and appends continue the offsets.
    await log.close();
    log = await open();
    assert.deepEqual(await log.startOffsets(topic), [active.baseOffset]);
    assert.deepEqual(await log.endOffsets(topic), [120]);
    assertReadsFrom(await readAll(log, 0), model, active.baseOffset, 'after reopening');
    await appendMany(log, model, 30, 200, clock);
    assert.deepEqual(await log.endOffsets(topic), [150]);
    assertReadsFrom(await readAll(log, 0), model, active.baseOffset, 'after appending again');
  } finally {
    await log.close();
    fs.rmSync(folder, { recursive: true, force: true });
  }
});

test('retentionBytes removes the oldest sealed segments while the partition is larger, and no more', { timeout: 120_000 }, async () => {
  const folder = temporaryFolder();
  const clock = 2_000_000;
  const open = () => FileLog.open(folder, { now: () => clock, cleanupIntervalMs: 0 });
  let log = await open();
  const model: ModelRecord[] = [];
  try {
    const retentionBytes = 20_000;
    await log.createTopic(topic, { retentionBytes, segmentBytes: 4096 });
    await appendMany(log, model, 200, 150, clock);
    const segments = segmentFiles(folder, 0);
    const total = segments.reduce((sum, segment) => sum + segment.bytes, 0);
    assert.ok(total > 2 * retentionBytes, `the partition should be well over the limit (${total} bytes)`);

    const result = await log.cleanup(topic);

    const kept = segmentFiles(folder, 0);
    const keptBytes = kept.reduce((sum, segment) => sum + segment.bytes, 0);
    assert.ok(keptBytes <= retentionBytes, `${keptBytes} bytes are left, more than ${retentionBytes}`);
    const removed = segments.slice(0, segments.length - kept.length);
    assert.deepEqual(segments.slice(removed.length), kept, 'the oldest segments go, the newest stay');
    // Keeping one more (the newest removed) would have been over the limit.
    assert.ok(keptBytes + removed[removed.length - 1].bytes > retentionBytes, 'removed more than needed');
    assert.deepEqual(result, { segmentsRemoved: removed.length, bytesReclaimed: total - keptBytes });
    assert.deepEqual(await log.startOffsets(topic), [kept[0].baseOffset]);
    assert.deepEqual(await log.endOffsets(topic), [200]);
    assertReadsFrom(await readAll(log, 0), model, kept[0].baseOffset, 'after retention by size');

    await log.close();
    log = await open();
    assert.deepEqual(segmentFiles(folder, 0), kept);
    assert.deepEqual(await log.startOffsets(topic), [kept[0].baseOffset]);
    assertReadsFrom(await readAll(log, 0), model, kept[0].baseOffset, 'after reopening');
  } finally {
    await log.close();
    fs.rmSync(folder, { recursive: true, force: true });
  }
});

test('retentionBytes smaller than the active segment leaves just the active segment', { timeout: 120_000 }, async () => {
  const folder = temporaryFolder();
  const log = await FileLog.open(folder, { now: () => 3_000_000, cleanupIntervalMs: 0 });
  const model: ModelRecord[] = [];
  try {
    await log.createTopic(topic, { retentionBytes: 1, segmentBytes: 4096 });
    await appendMany(log, model, 100, 150, 3_000_000);
    const segments = segmentFiles(folder, 0);
    assert.ok(segments.length > 2);
    await log.cleanup(topic);
    assert.deepEqual(segmentFiles(folder, 0), segments.slice(-1));
    assertReadsFrom(await readAll(log, 0), model, segments[segments.length - 1].baseOffset, 'after retention');
  } finally {
    await log.close();
    fs.rmSync(folder, { recursive: true, force: true });
  }
});

test('without retention settings, and on compacted topics, retention removes nothing', { timeout: 120_000 }, async () => {
  const folder = temporaryFolder();
  let clock = 4_000_000;
  const log = await FileLog.open(folder, { now: () => clock, cleanupIntervalMs: 0 });
  try {
    await log.createTopic(topic, { segmentBytes: 4096 });
    await log.createTopic('changelog', { cleanupPolicy: 'compact', retentionMs: 5, retentionBytes: 4096, segmentBytes: 4096 });
    for (let i = 0; i < 100; i++) {
      await log.append(topic, 0, [{ value: `${i}`.padEnd(150, '.') }], { persist: 'buffer' });
      // Distinct keys: compaction has nothing to remove either.
      await log.append('changelog', 0, [{ key: `key ${i}`, value: `${i}`.padEnd(150, '.') }], { persist: 'buffer' });
    }
    clock += 10 * 365 * 24 * 60 * 60 * 1000;
    const events = segmentFiles(folder, 0);
    assert.deepEqual(await log.cleanup(topic), { segmentsRemoved: 0, bytesReclaimed: 0 });
    assert.deepEqual(await log.cleanup('changelog'), { segmentsRemoved: 0, bytesReclaimed: 0 });
    assert.deepEqual(segmentFiles(folder, 0), events);
    assert.deepEqual(await log.startOffsets(topic), [0]);
    assert.deepEqual(await log.startOffsets('changelog'), [0]);
    assert.equal((await readAll(log, 0)).length, 100);
  } finally {
    await log.close();
    fs.rmSync(folder, { recursive: true, force: true });
  }
});

test('an idempotent producer keeps its state when retention removes the segments it wrote', { timeout: 120_000 }, async () => {
  const folder = temporaryFolder();
  let clock = 5_000_000;
  const open = () => FileLog.open(folder, { now: () => clock, cleanupIntervalMs: 0 });
  let log = await open();
  try {
    await log.createTopic(topic, { retentionMs: 1005, segmentBytes: 4096 });
    let last;
    for (let sequence = 0; sequence < 40; sequence++) {
      last = await log.append(topic, 0, [{ value: `${sequence}`.padEnd(500, '.') }], { producer: { id: 9, sequence } });
    }
    // A filler of a segment's size, still at the old time, so that the next append rolls and
    // every segment holding producer 9's records is expired.
    const segmentsBefore = segmentFiles(folder, 0).length;
    await log.append(topic, 0, [{ value: 'x'.repeat(4096) }]);
    clock += 10_000;
    await log.append(topic, 0, [{ value: 'y' }], { producer: { id: 10, sequence: 0 } });
    assert.ok(segmentFiles(folder, 0).length > segmentsBefore);
    await log.cleanup(topic);
    assert.ok((await log.startOffsets(topic))[0] >= 40, 'every segment holding producer 9’s records was removed');
    await log.close();
    log = await open();
    assert.deepEqual(await log.producerState(topic, 0, 9), { lastSequence: 39, lastOffset: 39 });
    assert.deepEqual(await log.append(topic, 0, [{ value: 'retried' }], { producer: { id: 9, sequence: 39 } }), { ...last, duplicate: true });
    await assert.rejects(log.append(topic, 0, [{ value: 'gap' }], { producer: { id: 9, sequence: 41 } }), { code: 'producer_sequence_gap' });
    assert.deepEqual(await log.append(topic, 0, [{ value: 'next' }], { producer: { id: 9, sequence: 40 } }), { partition: 0, baseOffset: 42, count: 1, duplicate: false });
  } finally {
    await log.close();
    fs.rmSync(folder, { recursive: true, force: true });
  }
});

// ── A model check over random histories ──────────────────────────────────────────────────────

type Operation =
  | { kind: 'append'; partition: number; count: number; bytes: number }
  | { kind: 'advance'; steps: number }
  | { kind: 'cleanup' }
  | { kind: 'reopen' };

const operationArbitrary: fc.Arbitrary<Operation> = fc.oneof(
  { weight: 10, arbitrary: fc.record({ kind: fc.constant('append' as const), partition: fc.integer({ min: 0, max: 1 }), count: fc.integer({ min: 1, max: 5 }), bytes: fc.integer({ min: 0, max: 700 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('advance' as const), steps: fc.integer({ min: 1, max: 80 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('cleanup' as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('reopen' as const) }) },
);

const scenarioArbitrary = fc.record({
  retentionMs: fc.constantFrom(0, 305, 1005),
  retentionBytes: fc.constantFrom(0, 9000, 20_000),
  operations: fc.array(operationArbitrary, { minLength: 1, maxLength: 80, size: 'max' }),
});

test('retention agrees with a model: by age and size, oldest first, active segment kept, offsets unchanged, across reopens', { timeout: 120_000 }, async () => {
  const deadline = Date.now() + runBudgetMs;
  await fc.assert(
    fc.asyncProperty(scenarioArbitrary, async ({ retentionMs, retentionBytes, operations }) => {
      if (Date.now() > deadline) return;
      const folder = temporaryFolder();
      let clock = 10_000_000;
      const open = () => FileLog.open(folder, { now: () => clock, cleanupIntervalMs: 0 });
      let log = await open();
      const model: ModelRecord[][] = [[], []];
      try {
        await log.createTopic(topic, { partitions: 2, retentionMs, retentionBytes, segmentBytes: 4096 });
        await log.endOffsets(topic); // opens the partitions, creating their folders
        const check = async (context: string) => {
          const starts = await log.startOffsets(topic);
          assert.deepEqual(await log.endOffsets(topic), model.map((m) => m.length), `${context}: endOffsets`);
          for (let p = 0; p < 2; p++) {
            const files = segmentFiles(folder, p);
            assert.equal(starts[p], files[0].baseOffset, `${context}: partition ${p} starts at its first segment`);
            assertReadsFrom(await readAll(log, p), model[p], starts[p], `${context}, partition ${p}`);
          }
        };
        for (const [index, operation] of operations.entries()) {
          const context = `operation ${index} (${operation.kind})`;
          switch (operation.kind) {
            case 'append': {
              const values = Array.from({ length: operation.count }, (_, i) => `${model[operation.partition].length + i} `.padEnd(operation.bytes, '~'));
              const result = await log.append(topic, operation.partition, values.map((value) => ({ value })), { persist: 'buffer' });
              assert.equal(result.baseOffset, model[operation.partition].length, context);
              for (const value of values) model[operation.partition].push({ value, timestamp: clock });
              break;
            }
            case 'advance':
              clock += operation.steps * 10;
              break;
            case 'cleanup': {
              // Expected: oldest sealed segments go while expired or while the partition is larger
              // than retentionBytes; the active (last) segment stays.
              let segmentsRemoved = 0;
              let bytesReclaimed = 0;
              const expected: SegmentFile[][] = [];
              for (let p = 0; p < 2; p++) {
                const files = segmentFiles(folder, p);
                let total = files.reduce((sum, file) => sum + file.bytes, 0);
                let first = 0;
                while (first < files.length - 1) {
                  const nextBase = files[first + 1].baseOffset;
                  const newest = Math.max(...model[p].slice(files[first].baseOffset, nextBase).map((record) => record.timestamp));
                  const expired = retentionMs > 0 && clock - newest > retentionMs;
                  const oversized = retentionBytes > 0 && total > retentionBytes;
                  if (!expired && !oversized) break;
                  total -= files[first].bytes;
                  segmentsRemoved++;
                  bytesReclaimed += files[first].bytes;
                  first++;
                }
                expected.push(files.slice(first));
              }
              const result = await log.cleanup(topic);
              for (let p = 0; p < 2; p++) assert.deepEqual(segmentFiles(folder, p), expected[p], `${context}: segments of partition ${p} after retention`);
              assert.deepEqual(result, { segmentsRemoved, bytesReclaimed }, context);
              await check(context);
              break;
            }
            case 'reopen':
              await log.close();
              log = await open();
              await check(context);
              break;
          }
        }
        await check('the end');
      } finally {
        await log.close();
        fs.rmSync(folder, { recursive: true, force: true });
      }
    }),
    { numRuns: 80 },
  );
});
