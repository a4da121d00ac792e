/**
 * Compaction of changelog topics, checked against a model on random histories: keyed appends
 * over a small key space (so keys repeat), tombstones, random batch sizes, clock advances,
 * cleanups (some racing un-awaited appends and segment rolls), closes and reopens, optionally
 * under an idempotent producer whose retries must still be answered as duplicates.
 *
 * The model is exact. A record stays until a cleanup finds it in a sealed segment and either it
 * is not its key's latest record or it is a tombstone at least `tombstoneRetentionMs` old. Which
 * segments are sealed is read from the partition folder (the highest-based `.log` file is the
 * active one). The clock moves in multiples of 10 ms and the retention is 995 ms, so a
 * tombstone's age never equals the retention and the boundary case cannot make the test flaky.
 *
 * Checked after every cleanup and reopen: reads from 0 (whole, and paged) return exactly the
 * model's surviving records in increasing offset order with identical bytes and timestamps;
 * endOffsets never moves because of a cleanup; bytesReclaimed equals the shrink of the segment
 * files, and no segment file is shorter than its durable mark covers; the idempotent producer's
 * state survives compaction and reopening.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import type { LogRecord, PersistMode } from '../log.ts';
import { FileLog } from './file-log.ts';
import { readAll as readAllOf } from './log-test-support.ts';

/**
 * Runs (each does real file I/O) stop after this long: it keeps the file within its time budget
 * on a slow machine and bounds the shrinking of a failure, whose smallest counterexample found
 * by then is still reported. Runs past it pass at once, so none is abandoned halfway.
 */
const runBudgetMs = 16_000;

const topic = 'changelog';
const tombstoneRetentionMs = 995;
const clockStepMs = 10;
const producerId = 7;

function temporaryFolder(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-compaction-'));
}

function partitionFolder(folder: string, partition: number): string {
  return path.join(folder, 'topics', topic, String(partition));
}

/** Base offsets of the partition's segments, oldest first; the last one is the active segment. */
function segmentBases(folder: string, partition: number): number[] {
  return fs
    .readdirSync(partitionFolder(folder, partition))
    .filter((name) => /^\d{20}\.log$/.test(name))
    .map((name) => Number(name.slice(0, 20)))
    .sort((a, b) => a - b);
}

function segmentFileBytes(folder: string, partition: number): number {
  let total = 0;
  for (const base of segmentBases(folder, partition)) {
    total += fs.statSync(path.join(partitionFolder(folder, partition), `${String(base).padStart(20, '0')}.log`)).size;
  }
  return total;
}

/**
 * Every segment file reaches at least its data start: the durable mark of even an empty segment
 * covers the bytes up to there, and recovery refuses a file shorter than its mark.
 */
function assertSegmentFilesWhole(folder: string, partition: number, context: string): void {
  for (const base of segmentBases(folder, partition)) {
    const file = path.join(partitionFolder(folder, partition), `${String(base).padStart(20, '0')}.log`);
    const bytes = fs.statSync(file).size;
    assert.ok(bytes >= 4096, `${context}: ${path.basename(file)} is ${bytes} bytes, shorter than the 4096 its durable mark covers, so the log will refuse to reopen`);
  }
}

function readAll(log: FileLog, partition: number, from = 0, maxRecords?: number): Promise<LogRecord[]> {
  return readAllOf(log, topic, partition, from, maxRecords);
}

// ── The model ─────────────────────────────────────────────────────────────────────────────────

interface ModelRecord {
  offset: number;
  key: string;
  value: Buffer | null;
  timestamp: number;
  present: boolean;
}

interface ModelBatch {
  firstSequence: number;
  count: number;
  baseOffset: number;
}

interface ModelPartition {
  records: ModelRecord[];
  /** Key → offset of its latest record. */
  latest: Map<string, number>;
  /** The idempotent producer's batches, oldest first. */
  producerBatches: ModelBatch[];
}

function newModel(partitions: number): ModelPartition[] {
  return Array.from({ length: partitions }, () => ({ records: [], latest: new Map(), producerBatches: [] }));
}

/** Applies one cleanup at `now` to a partition whose active segment starts at `activeBase`. */
function modelCleanup(model: ModelPartition, now: number, activeBase: number): number {
  let removed = 0;
  for (const record of model.records) {
    if (!record.present || record.offset >= activeBase) continue;
    const superseded = model.latest.get(record.key) !== record.offset;
    const expiredTombstone = record.value === null && now - record.timestamp >= tombstoneRetentionMs;
    if (superseded || expiredTombstone) {
      record.present = false;
      removed++;
    }
  }
  return removed;
}

function describe(record: { offset: number; key: string | Buffer | null; value: Buffer | null; timestamp: number }): string {
  const value = record.value === null ? 'null (tombstone)' : `${record.value.length} bytes`;
  return `offset ${record.offset} key ${JSON.stringify(record.key?.toString())} value ${value} timestamp ${record.timestamp}`;
}

/** Compares a partition read from 0 with the model, naming the first difference. */
function assertMatchesModel(records: LogRecord[], model: ModelPartition, activeBase: number, now: number, context: string): void {
  for (let i = 1; i < records.length; i++) {
    assert.ok(records[i].offset > records[i - 1].offset, `${context}: offsets out of order: ${records[i - 1].offset} then ${records[i].offset}`);
  }
  const expected = model.records.filter((record) => record.present);
  const read = new Map(records.map((record) => [record.offset, record]));
  for (const want of expected) {
    const got = read.get(want.offset);
    if (!got) {
      const latest = model.latest.get(want.key) === want.offset;
      assert.fail(
        `${context}: missing ${describe(want)}; it is ${latest ? "its key's latest record" : 'not yet compacted (sealed after the last cleanup)'}, ` +
          `${want.offset >= activeBase ? 'in the active segment' : 'in a sealed segment'}, now ${now}`,
      );
    }
    assert.equal(got.key?.toString(), want.key, `${context}: key at offset ${want.offset}`);
    assert.ok(got.key !== null && got.key.equals(Buffer.from(want.key)), `${context}: key bytes at offset ${want.offset}`);
    if (want.value === null) assert.equal(got.value, null, `${context}: offset ${want.offset} should be a tombstone`);
    else assert.ok(got.value !== null && got.value.equals(want.value), `${context}: value bytes differ at offset ${want.offset}: got ${got.value?.toString('hex').slice(0, 40)}, want ${want.value.toString('hex').slice(0, 40)}`);
    assert.equal(got.timestamp, want.timestamp, `${context}: timestamp at offset ${want.offset}`);
  }
  if (records.length !== expected.length) {
    const wanted = new Set(expected.map((record) => record.offset));
    const extra = records.find((record) => !wanted.has(record.offset));
    assert.ok(extra);
    const appended = model.records[extra.offset];
    const reason = !appended
      ? 'it was never appended'
      : model.latest.get(appended.key) !== appended.offset
        ? `it is superseded by offset ${model.latest.get(appended.key)} and sits in a sealed segment`
        : 'it is an expired tombstone in a sealed segment';
    assert.fail(`${context}: ${describe(extra)} survived compaction, but ${reason} (active segment from ${activeBase}, now ${now})`);
  }
}

// ── Operations ────────────────────────────────────────────────────────────────────────────────

/** A small key space so that keys repeat; includes the empty key and a non-ASCII one. */
const keys = ['a', 'b', 'c', 'ключ', '', 'k5'];

type Operation =
  | { kind: 'append'; partition: number; records: Array<{ key: number; value: { length: number; seed: number } | null }>; producer: boolean; persist: PersistMode }
  | { kind: 'advance'; steps: number }
  | { kind: 'cleanup' }
  | { kind: 'reopen' }
  | { kind: 'retry'; partition: number; back: number }
  /** Appends issued without awaiting them, with a cleanup started after the first `before`. */
  | { kind: 'cleanupDuringAppends'; appends: Array<Extract<Operation, { kind: 'append' }>>; before: number };

/** Value bytes made from a length and a seed, so counterexamples stay short to print. */
function valueBytes(value: { length: number; seed: number }): Buffer {
  const bytes = Buffer.alloc(value.length);
  let state = value.seed | 1;
  for (let i = 0; i < bytes.length; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    bytes[i] = state & 0xff;
  }
  return bytes;
}

const valueArbitrary = fc.oneof(
  { weight: 1, arbitrary: fc.constant(null) },
  { weight: 4, arbitrary: fc.record({ length: fc.integer({ min: 0, max: 400 }), seed: fc.integer({ min: 1, max: 1000 }) }) },
);

const appendArbitrary = (partitions: number) =>
  fc.record({
    kind: fc.constant('append' as const),
    partition: fc.integer({ min: 0, max: partitions - 1 }),
    records: fc.array(fc.record({ key: fc.integer({ min: 0, max: keys.length - 1 }), value: valueArbitrary }), { minLength: 1, maxLength: 6, size: 'max' }),
    producer: fc.boolean(),
    persist: fc.constantFrom<PersistMode>('buffer', 'buffer', 'syncData'),
  });

const operationArbitrary = (partitions: number): fc.Arbitrary<Operation> =>
  fc.oneof(
    { weight: 12, arbitrary: appendArbitrary(partitions) },
    {
      weight: 1,
      arbitrary: fc.record({
        kind: fc.constant('cleanupDuringAppends' as const),
        appends: fc.array(appendArbitrary(partitions), { minLength: 1, maxLength: 12, size: 'max' }),
        before: fc.integer({ min: 0, max: 12 }),
      }),
    },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('advance' as const), steps: fc.integer({ min: 1, max: 60 }) }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('cleanup' as const) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('reopen' as const) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('retry' as const), partition: fc.integer({ min: 0, max: partitions - 1 }), back: fc.integer({ min: 0, max: 4 }) }) },
  );

const scenarioArbitrary = fc
  .record({ partitions: fc.integer({ min: 1, max: 2 }), segmentBytes: fc.constantFrom(4096, 4096, 8192) })
  .chain(({ partitions, segmentBytes }) =>
    fc.record({ partitions: fc.constant(partitions), segmentBytes: fc.constant(segmentBytes), operations: fc.array(operationArbitrary(partitions), { minLength: 1, maxLength: 120, size: 'max' }) }),
  );

async function runScenario(scenario: { partitions: number; segmentBytes: number; operations: Operation[] }): Promise<void> {
  const folder = temporaryFolder();
  let clock = 1_000_000;
  const now = () => clock;
  const open = () => FileLog.open(folder, { now, cleanupIntervalMs: 0 });
  let log = await open();
  try {
    await log.createTopic(topic, { partitions: scenario.partitions, cleanupPolicy: 'compact', tombstoneRetentionMs, segmentBytes: scenario.segmentBytes });
    const model = newModel(scenario.partitions);

    const checkAll = async (context: string) => {
      assert.deepEqual(await log.endOffsets(topic), model.map((m) => m.records.length), `${context}: endOffsets`);
      const starts = await log.startOffsets(topic);
      for (let p = 0; p < scenario.partitions; p++) {
        const bases = segmentBases(folder, p);
        const activeBase = bases[bases.length - 1];
        const records = await readAll(log, p);
        assertMatchesModel(records, model[p], activeBase, clock, `${context}, partition ${p}`);
        const firstPresent = model[p].records.find((record) => record.present);
        assert.ok(starts[p] <= (firstPresent?.offset ?? model[p].records.length), `${context}: startOffset ${starts[p]} is past the first stored record`);
        // Paged reads, and reads from the middle, agree with the whole read.
        const paged = await readAll(log, p, 0, 3);
        assert.deepEqual(paged.map((record) => record.offset), records.map((record) => record.offset), `${context}: reads of 3 records at a time`);
        const middle = Math.floor(model[p].records.length / 2);
        const fromMiddle = await readAll(log, p, middle);
        assert.deepEqual(fromMiddle.map((record) => record.offset), records.filter((record) => record.offset >= middle).map((record) => record.offset), `${context}: read from ${middle}`);
        const batches = model[p].producerBatches;
        const last = batches[batches.length - 1];
        assert.deepEqual(
          await log.producerState(topic, p, producerId),
          last ? { lastSequence: last.firstSequence + last.count - 1, lastOffset: last.baseOffset + last.count - 1 } : { lastSequence: -1, lastOffset: -1 },
          `${context}: producerState of partition ${p}`,
        );
      }
    };

    /** Issues an append and applies it to the model (appends to a partition take offsets in call order). */
    const issueAppend = (operation: Extract<Operation, { kind: 'append' }>, context: string): Promise<void> => {
      const m = model[operation.partition];
      const records = operation.records.map(({ key, value }) => ({ key: keys[key], value: value === null ? null : valueBytes(value) }));
      const last = m.producerBatches[m.producerBatches.length - 1];
      const producer = operation.producer ? { id: producerId, sequence: last ? last.firstSequence + last.count : 0 } : undefined;
      const expected = { partition: operation.partition, baseOffset: m.records.length, count: records.length, duplicate: false };
      const appended = log.append(topic, operation.partition, records, { persist: operation.persist, producer });
      if (producer) m.producerBatches.push({ firstSequence: producer.sequence, count: records.length, baseOffset: expected.baseOffset });
      for (const record of records) {
        const offset = m.records.length;
        m.records.push({ offset, key: record.key, value: record.value, timestamp: clock, present: true });
        m.latest.set(record.key, offset);
      }
      return appended.then((result) => assert.deepEqual(result, expected, context));
    };

    /** `raced`: a cleanup the model did not follow ran before, so this one may find nothing to do. */
    const cleanupAndCheck = async (context: string, raced = false) => {
      const endsBefore = await log.endOffsets(topic);
      const bytesBefore = model.map((_, p) => segmentFileBytes(folder, p));
      const result = await log.cleanup(topic);
      assert.deepEqual(await log.endOffsets(topic), endsBefore, `${context}: cleanup moved endOffsets`);
      assert.equal(result.segmentsRemoved, 0, `${context}: compaction removes records, not segments`);
      let removed = 0;
      let shrunk = 0;
      for (let p = 0; p < scenario.partitions; p++) {
        assertSegmentFilesWhole(folder, p, context);
        const bases = segmentBases(folder, p);
        removed += modelCleanup(model[p], clock, bases[bases.length - 1]);
        shrunk += bytesBefore[p] - segmentFileBytes(folder, p);
      }
      assert.equal(result.bytesReclaimed, shrunk, `${context}: bytesReclaimed should equal how much the segment files shrank`);
      if (!raced) assert.equal(removed > 0, shrunk > 0, `${context}: ${removed} records removed but ${shrunk} bytes reclaimed`);
      await checkAll(context);
    };

    for (const [step, operation] of scenario.operations.entries()) {
      const context = `operation ${step} (${operation.kind})`;
      switch (operation.kind) {
        case 'append':
          await issueAppend(operation, context);
          break;
        case 'advance':
          clock += operation.steps * clockStepMs;
          break;
        case 'cleanup':
          await cleanupAndCheck(context);
          break;
        case 'cleanupDuringAppends': {
          // What the racing cleanup sees depends on timing, so it is not checked on its own. But
          // compaction is monotone (sealed stays sealed, superseded stays superseded, an expired
          // tombstone stays expired), so after one more cleanup the partition must be exactly
          // what the model says, with nothing lost to the race.
          const appended: Array<Promise<void>> = [];
          let cleaned: Promise<unknown> | undefined;
          for (const [i, append] of operation.appends.entries()) {
            if (i === operation.before) cleaned = log.cleanup(topic);
            appended.push(issueAppend(append, `${context}, append ${i}`));
          }
          cleaned ??= log.cleanup(topic);
          const outcomes = await Promise.allSettled([...appended, cleaned]);
          for (const outcome of outcomes) if (outcome.status === 'rejected') throw outcome.reason;
          await cleanupAndCheck(`${context}, then a cleanup`, true);
          break;
        }
        case 'reopen': {
          const before = [];
          for (let p = 0; p < scenario.partitions; p++) before.push(await readAll(log, p));
          await log.close();
          log = await open();
          for (let p = 0; p < scenario.partitions; p++) {
            const after = await readAll(log, p);
            assert.deepEqual(after, before[p], `${context}: partition ${p} reads differently after reopening`);
          }
          await checkAll(context);
          break;
        }
        case 'retry': {
          const batches = model[operation.partition].producerBatches;
          if (batches.length === 0) break;
          const batch = batches[Math.max(0, batches.length - 1 - operation.back)];
          // The records of a retry are those of the original append; compaction may have removed
          // them from the log, which must not matter.
          const records = Array.from({ length: batch.count }, () => ({ key: 'retried', value: 'retried' }));
          const result = await log.append(topic, operation.partition, records, { producer: { id: producerId, sequence: batch.firstSequence } });
          assert.deepEqual(result, { partition: operation.partition, baseOffset: batch.baseOffset, count: batch.count, duplicate: true }, `${context}: a retry of sequence ${batch.firstSequence}`);
          break;
        }
      }
    }
    // A last cleanup with the clock far ahead removes every superseded record and old tombstone.
    clock += 100 * tombstoneRetentionMs;
    await log.cleanup(topic);
    for (let p = 0; p < scenario.partitions; p++) {
      const bases = segmentBases(folder, p);
      modelCleanup(model[p], clock, bases[bases.length - 1]);
    }
    await checkAll('final cleanup');
    await log.close();
    log = await open();
    await checkAll('reopen after the final cleanup');
  } finally {
    await log.close();
    fs.rmSync(folder, { recursive: true, force: true });
  }
}

test('compaction keeps exactly the latest record per key in sealed segments, and reads, offsets and producer state agree with a model', { timeout: 120_000 }, async () => {
  const deadline = Date.now() + runBudgetMs;
  await fc.assert(fc.asyncProperty(scenarioArbitrary, async (scenario) => (Date.now() > deadline ? undefined : runScenario(scenario))), { numRuns: 100 });
});

test('a changelog of 1000 updates to 10 keys compacts to about 10 records plus the active segment', { timeout: 120_000 }, async () => {
  const folder = temporaryFolder();
  let clock = 5_000_000;
  const log = await FileLog.open(folder, { now: () => clock, persist: 'buffer', cleanupIntervalMs: 0 });
  try {
    await log.createTopic(topic, { cleanupPolicy: 'compact', segmentBytes: 4096 });
    const value = (i: number) => `update ${String(i).padStart(4, '0')} `.padEnd(100, '.');
    for (let i = 0; i < 1000; i++) {
      await log.append(topic, 0, [{ key: `key-${i % 10}`, value: value(i) }]);
      clock += 1;
    }
    const bases = segmentBases(folder, 0);
    assert.ok(bases.length > 20, `expected many segments, got ${bases.length}`);
    const activeBase = bases[bases.length - 1];
    const bytesBefore = segmentFileBytes(folder, 0);

    const result = await log.cleanup(topic);

    assertSegmentFilesWhole(folder, 0, 'after compaction');
    const bytesAfter = segmentFileBytes(folder, 0);
    assert.equal(result.bytesReclaimed, bytesBefore - bytesAfter, 'bytesReclaimed should equal how much the segment files shrank');
    assert.deepEqual(await log.endOffsets(topic), [1000]);
    const records = await readAll(log, 0);
    const sealedSurvivors = records.filter((record) => record.offset < activeBase);
    const activeRecords = records.filter((record) => record.offset >= activeBase);
    assert.equal(activeRecords.length, 1000 - activeBase, 'the active segment is never compacted');
    // Only keys whose latest update is not in the active segment keep a record in a sealed one.
    const keysInActive = new Set(activeRecords.map((record) => record.key?.toString()));
    assert.equal(sealedSurvivors.length, 10 - keysInActive.size);
    for (const { offset: i, value: bytes, key } of sealedSurvivors) {
      assert.equal(bytes?.toString(), value(i));
      assert.ok(i >= 990, `offset ${i} is not the latest update of ${key}`);
    }
    // The latest value of every key is readable.
    const latest = new Map<string, string>();
    for (const record of records) latest.set(String(record.key), String(record.value));
    for (let k = 0; k < 10; k++) assert.equal(latest.get(`key-${k}`), value(990 + k));
    // What is left on disk: each segment's 4 KiB header area, at most 10 records of about
    // 100 + 12 + 6 bytes each (in batches of 64-byte headers), and the active segment.
    const recordBytesMax = 10 * (64 + 12 + 5 + 100);
    const activeBytes = fs.statSync(path.join(partitionFolder(folder, 0), `${String(activeBase).padStart(20, '0')}.log`)).size;
    const sealedDataBytes = bytesAfter - activeBytes - (bases.length - 1) * 4096;
    assert.ok(sealedDataBytes <= recordBytesMax, `sealed segments still hold ${sealedDataBytes} bytes of batches`);
    assert.ok(bytesBefore - bytesAfter >= 1000 * 100 - activeBytes - recordBytesMax, `only ${bytesBefore - bytesAfter} bytes were reclaimed of ${bytesBefore}`);
  } finally {
    await log.close();
    fs.rmSync(folder, { recursive: true, force: true });
  }
});

// Found by the property above (reported to the lead): replaceSegment writes an emptied segment
// as just its header and one mark slot (1088 bytes) while the mark says the data starts, and is
// durable up to, byte 4096; recovery then refuses the file as cut short.
test('a sealed segment emptied by compaction leaves a log that reopens', { timeout: 120_000 }, async () => {
  const folder = temporaryFolder();
  const open = () => FileLog.open(folder, { cleanupIntervalMs: 0 });
  let log = await open();
  try {
    await log.createTopic(topic, { cleanupPolicy: 'compact', segmentBytes: 4096 });
    // Two updates of one key, the first filling a segment: compaction empties that segment.
    await log.append(topic, 0, [{ key: 'k', value: 'x'.repeat(4096) }]);
    await log.append(topic, 0, [{ key: 'k', value: 'y' }]);
    const result = await log.cleanup(topic);
    assert.ok(result.bytesReclaimed > 4096);
    assertSegmentFilesWhole(folder, 0, 'after compaction');
    await log.close();
    log = await open();
    const { records, nextOffset } = await log.read(topic, 0, 0);
    assert.deepEqual(records.map((record) => [record.offset, String(record.value)]), [[1, 'y']]);
    assert.equal(nextOffset, 2);
  } finally {
    await log.close();
    fs.rmSync(folder, { recursive: true, force: true });
  }
});

test('a keyless append to a compacted topic is refused with a clear error and appends nothing', { timeout: 120_000 }, async () => {
  const folder = temporaryFolder();
  const log = await FileLog.open(folder, { cleanupIntervalMs: 0 });
  try {
    await log.createTopic(topic, { cleanupPolicy: 'compact', segmentBytes: 4096 });
    await log.append(topic, 0, [{ key: 'a', value: '1' }]);
    for (const records of [[{ value: 'no key' }], [{ key: null, value: 'null key' }], [{ key: 'b', value: '2' }, { value: 'second has none' }]]) {
      await assert.rejects(log.append(topic, 0, records), (error: Error & { code?: string }) => {
        assert.equal(error.code, 'record_key_missing');
        assert.match(error.message, /topic changelog is compacted by key, but record \d of the append has no key/);
        return true;
      });
    }
    assert.deepEqual(await log.endOffsets(topic), [1]);
    // A delete-policy topic takes keyless records.
    await log.createTopic('events', { segmentBytes: 4096 });
    assert.equal((await log.append('events', 0, [{ value: 'fine' }])).count, 1);
  } finally {
    await log.close();
    fs.rmSync(folder, { recursive: true, force: true });
  }
});
