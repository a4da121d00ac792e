import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CorruptionError, DefiniteError } from '../../core/errors.ts';
import { FileLog } from './file-log.ts';
import { dataStart } from './segment-format.ts';

function temporaryFolder(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-log-'));
}

async function readAll(log: FileLog, topic: string, partition = 0): Promise<Array<{ offset: number; value: string | null; key: string | null }>> {
  const out = [];
  let from = 0;
  for (;;) {
    const { records, nextOffset } = await log.read(topic, partition, from, { maxRecords: 1000 });
    if (records.length === 0) return out;
    for (const record of records) out.push({ offset: record.offset, value: record.value?.toString() ?? null, key: record.key?.toString() ?? null });
    from = nextOffset;
  }
}

function segmentFiles(folder: string, topic = 't', partition = 0): string[] {
  const dir = path.join(folder, 'topics', topic, String(partition));
  return fs.readdirSync(dir).filter((name) => name.endsWith('.log')).sort().map((name) => path.join(dir, name));
}

async function filledLog(folder: string, count: number, segmentBytes = 1 << 20): Promise<void> {
  const log = await FileLog.open(folder);
  await log.createTopic('t', { segmentBytes });
  for (let i = 0; i < count; i++) await log.append('t', 0, [{ key: `k${i}`, value: `value number ${i}` }]);
  await log.close();
}

test('appends get dense offsets, survive reopen, and read back in order from any offset', async () => {
  const folder = temporaryFolder();
  const log = await FileLog.open(folder);
  await log.createTopic('t', { segmentBytes: 8192 });
  const results = await Promise.all(Array.from({ length: 500 }, (_, i) => log.append('t', 0, [{ value: `a${i}` }, { value: `b${i}` }])));
  assert.deepEqual(
    results.map((r) => r.baseOffset),
    Array.from({ length: 500 }, (_, i) => 2 * i),
  );
  await log.close();
  const reopened = await FileLog.open(folder);
  const all = await readAll(reopened, 't');
  assert.equal(all.length, 1000);
  all.forEach((record, i) => {
    assert.equal(record.offset, i);
    assert.equal(record.value, `${i % 2 === 0 ? 'a' : 'b'}${Math.floor(i / 2)}`);
  });
  // One read across many segments: every value intact (records are views of read buffers).
  const across = await reopened.read('t', 0, 0, { maxRecords: 1000 });
  assert.equal(across.records.length, 1000);
  across.records.forEach((record, i) => assert.equal(record.value?.toString(), all[i].value));
  assert.ok(segmentFiles(folder).length > 3, 'small segments rolled');
  const middle = await reopened.read('t', 0, 733, { maxRecords: 3 });
  assert.deepEqual(middle.records.map((r) => r.value?.toString()), ['b366', 'a367', 'b367']);
  assert.equal(middle.nextOffset, 736);
  assert.deepEqual(await reopened.endOffsets('t'), [1000]);
  await reopened.close();
});

test('a torn tail after the durable mark is truncated and appends continue after it', async () => {
  const folder = temporaryFolder();
  await filledLog(folder, 20);
  const [file] = segmentFiles(folder);
  const size = fs.statSync(file).size;
  // Half of a batch that never got its mark: what a crash mid-write leaves.
  const batch = fs.readFileSync(file).subarray(dataStart, dataStart + 90);
  fs.appendFileSync(file, batch.subarray(0, 50));
  const log = await FileLog.open(folder);
  assert.equal((await readAll(log, 't')).length, 20);
  assert.equal(fs.statSync(file).size, size);
  const next = await log.append('t', 0, [{ value: 'after' }]);
  assert.equal(next.baseOffset, 20);
  await log.close();
});

test('a bit flip before the durable mark refuses to open, naming the file and byte', async () => {
  const folder = temporaryFolder();
  await filledLog(folder, 20);
  const [file] = segmentFiles(folder);
  const bytes = fs.readFileSync(file);
  const at = dataStart + 300;
  bytes[at] ^= 0x10;
  fs.writeFileSync(file, bytes);
  await assert.rejects(
    async () => {
      const log = await FileLog.open(folder);
      try {
        await log.endOffsets('t');
      } finally {
        await log.close();
      }
    },
    (error: unknown) => {
      assert.ok(error instanceof CorruptionError);
      assert.equal(error.file, file);
      assert.ok(error.position >= dataStart && error.position <= at, `position ${error.position}`);
      assert.match(error.message, /damaged at byte \d+: the batch fails its checksum/);
      assert.match(error.hint ?? '', /backup/);
      return true;
    },
  );
});

test('a file cut short inside acknowledged data refuses to open', async () => {
  const folder = temporaryFolder();
  await filledLog(folder, 20);
  const [file] = segmentFiles(folder);
  fs.truncateSync(file, fs.statSync(file).size - 10);
  const log = await FileLog.open(folder);
  await assert.rejects(log.endOffsets('t'), (error: unknown) => error instanceof CorruptionError && /acknowledged records were cut off/.test(error.message));
  await log.close();
});

test('a missing segment in the middle refuses to open', async () => {
  const folder = temporaryFolder();
  await filledLog(folder, 200, 4096);
  const files = segmentFiles(folder);
  assert.ok(files.length >= 3);
  fs.rmSync(files[1]);
  const log = await FileLog.open(folder);
  await assert.rejects(log.endOffsets('t'), (error: unknown) => error instanceof CorruptionError && /is missing/.test(error.message));
  await log.close();
});

test('a damaged or missing index of a sealed segment is rebuilt by scanning', async () => {
  const folder = temporaryFolder();
  await filledLog(folder, 200, 4096);
  const dir = path.join(folder, 'topics', 't', '0');
  const indexes = fs.readdirSync(dir).filter((name) => name.endsWith('.index'));
  assert.ok(indexes.length >= 2);
  fs.rmSync(path.join(dir, indexes[0]));
  fs.writeFileSync(path.join(dir, indexes[1]), Buffer.from('garbage!'));
  const log = await FileLog.open(folder);
  const all = await readAll(log, 't');
  assert.deepEqual(
    all.map((r) => r.offset),
    Array.from({ length: 200 }, (_, i) => i),
  );
  await log.close();
});

test('a bit flip in a sealed segment is caught by the checksum when read', async () => {
  const folder = temporaryFolder();
  await filledLog(folder, 200, 4096);
  const [first] = segmentFiles(folder);
  const bytes = fs.readFileSync(first);
  bytes[dataStart + 100] ^= 1;
  fs.writeFileSync(first, bytes);
  const log = await FileLog.open(folder);
  await assert.rejects(readAll(log, 't'), (error: unknown) => error instanceof CorruptionError && error.file === first);
  await log.close();
});

test('a read-only log beside the writer sees durable records and follows new ones', async () => {
  const folder = temporaryFolder();
  const writer = await FileLog.open(folder);
  await writer.createTopic('t', { segmentBytes: 4096 });
  await writer.append('t', 0, [{ value: 'one' }]);
  const reader = await FileLog.open(folder, { readOnly: true, pollMs: 5 });
  assert.deepEqual((await readAll(reader, 't')).map((r) => r.value), ['one']);
  const controller = new AbortController();
  const seen: string[] = [];
  const following = (async () => {
    for await (const { records } of reader.follow('t', 0, 0, { signal: controller.signal })) {
      for (const record of records) seen.push(record.value!.toString());
      if (seen.length >= 101) controller.abort();
    }
  })();
  for (let i = 0; i < 100; i++) await writer.append('t', 0, [{ value: `v${i}` }]);
  await following;
  assert.equal(seen.length, 101);
  assert.equal(seen[100], 'v99');
  await reader.close();
  await writer.close();
});

test('compacted topics refuse keyless records; topics keep their config', async () => {
  const folder = temporaryFolder();
  const log = await FileLog.open(folder);
  await log.createTopic('c', { cleanupPolicy: 'compact' });
  await assert.rejects(log.append('c', 0, [{ key: 'a', value: '1' }, { value: '2' }]), /record 1 of the append has no key/);
  await assert.rejects(log.createTopic('c', { cleanupPolicy: 'delete' }), (error: unknown) => error instanceof DefiniteError && error.code === 'topic_exists');
  await assert.rejects(log.createTopic('../escape'), (error: unknown) => error instanceof DefiniteError && error.code === 'topic_name_invalid');
  await assert.rejects(log.createTopic('p', { partitions: 0 }), /partitions must be an integer/);
  await assert.rejects(log.append('nope', 0, [{ value: 'x' }]), /topic nope does not exist/);
  await log.close();
});

test('a second writer in the same process is refused; after close the lock is free', async () => {
  const folder = temporaryFolder();
  await filledLog(folder, 1);
  const first = await FileLog.open(folder);
  await first.endOffsets('t');
  const second = await FileLog.open(folder);
  await assert.rejects(second.endOffsets('t'), (error: unknown) => error instanceof DefiniteError && error.code === 'log_locked');
  await first.close();
  assert.deepEqual(await second.endOffsets('t'), [1]);
  await second.close();
});

test('consumer offsets are committed durably per group', async () => {
  const folder = temporaryFolder();
  const log = await FileLog.open(folder);
  assert.equal(await log.committedOffset('views', 't', 0), undefined);
  await Promise.all([log.commitOffset('views', 't', 0, 5), log.commitOffset('views', 't', 1, 7), log.commitOffset('views', 't', 0, 9)]);
  await log.close();
  const reopened = await FileLog.open(folder);
  assert.equal(await reopened.committedOffset('views', 't', 0), 9);
  assert.equal(await reopened.committedOffset('views', 't', 1), 7);
  await assert.rejects(reopened.commitOffset('../x', 't', 0, 1), /not a valid consumer group name/);
  await reopened.close();
});

test('every persist mode is durable across a clean close, and a large append spans segments', async () => {
  const folder = temporaryFolder();
  const log = await FileLog.open(folder);
  await log.createTopic('t', { segmentBytes: 4096 });
  await log.append('t', 0, [{ value: 'buffered' }], { persist: 'buffer' });
  await log.append('t', 0, [{ value: 'synced' }], { persist: 'syncData' });
  await log.append('t', 0, [{ value: 'all' }], { persist: 'syncAll' });
  const big = 'x'.repeat(20_000);
  await log.append('t', 0, [{ value: big }, { value: big }]);
  await log.close();
  const reopened = await FileLog.open(folder);
  const all = await readAll(reopened, 't');
  assert.deepEqual(all.slice(0, 3).map((r) => r.value), ['buffered', 'synced', 'all']);
  assert.equal(all[3].value, big);
  assert.equal(all.length, 5);
  // A read limited to fewer bytes than one big batch still makes progress.
  const limited = await reopened.read('t', 0, 3, { maxBytes: 100 });
  assert.equal(limited.records.length, 1);
  assert.equal(limited.nextOffset, 4);
  await reopened.close();
});

test('a writer applies retention in the background on its cleanup schedule', async () => {
  const folder = temporaryFolder();
  const log = await FileLog.open(folder, { cleanupIntervalMs: 20 });
  await log.createTopic('t', { segmentBytes: 4096, retentionBytes: 16384 });
  for (let i = 0; i < 100; i++) await log.append('t', 0, [{ value: 'x'.repeat(500) }]);
  const deadline = Date.now() + 5000;
  while ((await log.startOffsets('t'))[0] === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  const [start] = await log.startOffsets('t');
  assert.ok(start > 0, 'old segments were removed without a cleanup call');
  assert.ok(segmentFiles(folder).length <= 6, `${segmentFiles(folder).length} segments left`);
  const { records } = await log.read('t', 0, 0, { maxRecords: 1 });
  assert.equal(records[0].offset, start, 'reading from 0 starts at the first record kept');
  assert.deepEqual(await log.endOffsets('t'), [100]);
  await log.close();
});

test('a partition that never got a record reopens, for writing and for reading', async () => {
  const folder = temporaryFolder();
  const log = await FileLog.open(folder);
  await log.createTopic('t', { partitions: 3 });
  await log.append('t', 1, [{ value: 'only in 1' }]);
  await log.close();
  const reopened = await FileLog.open(folder);
  assert.deepEqual(await reopened.endOffsets('t'), [0, 1, 0]);
  await reopened.append('t', 0, [{ value: 'now in 0' }]);
  await reopened.close();
  // A topic whose partitions no writer has opened yet reads as empty.
  const fresh = await FileLog.open(folder);
  await fresh.createTopic('unopened', { partitions: 2 });
  await fresh.close();
  const reader = await FileLog.open(folder, { readOnly: true });
  assert.deepEqual(await reader.endOffsets('unopened'), [0, 0]);
  assert.deepEqual(await reader.startOffsets('unopened'), [0, 0]);
  assert.deepEqual((await reader.read('unopened', 1, 0)).records, []);
  assert.deepEqual(await reader.endOffsets('t'), [1, 1, 0]);
  await reader.close();
});

test('a read-only log refuses appends with a clear error', async () => {
  const folder = temporaryFolder();
  await filledLog(folder, 1);
  const reader = await FileLog.open(folder, { readOnly: true });
  await assert.rejects(reader.append('t', 0, [{ value: 'x' }]), (error: unknown) => error instanceof DefiniteError && error.code === 'log_read_only');
  await assert.rejects(reader.commitOffset('g', 't', 0, 1), /reading only/);
  await reader.close();
});

test('closing the log ends its followers at once', async () => {
  const folder = temporaryFolder();
  const log = await FileLog.open(folder);
  await log.createTopic('t');
  await log.append('t', 0, [{ value: 'a' }]);
  let seen = 0;
  const following = (async () => {
    for await (const { records } of log.follow('t', 0, 0)) seen += records.length;
  })();
  await new Promise((resolve) => setTimeout(resolve, 50));
  const closedAt = Date.now();
  await log.close();
  await following;
  assert.equal(seen, 1);
  // A waiting writer-side follower otherwise wakes only after its 1000 ms fallback timeout.
  assert.ok(Date.now() - closedAt < 900, `the follower took ${Date.now() - closedAt} ms to end`);
});

test('a reader in another process notices a segment replaced by compaction', async () => {
  const folder = temporaryFolder();
  const writer = await FileLog.open(folder, { cleanupIntervalMs: 0 });
  await writer.createTopic('c', { cleanupPolicy: 'compact', segmentBytes: 4096 });
  for (let i = 0; i < 200; i++) await writer.append('c', 0, [{ key: `k${i % 5}`, value: `value ${i} ${'x'.repeat(40)}` }]);
  // Opened before compaction: it holds the original segment files.
  const reader = await FileLog.open(folder, { readOnly: true });
  const before = await readAll(reader, 'c');
  assert.equal(before.length, 200);
  await writer.cleanup('c');
  const compacted = await readAll(writer, 'c');
  assert.ok(compacted.length < 50, `${compacted.length} records after compaction`);
  await new Promise((resolve) => setTimeout(resolve, 1100)); // readers look for replacements once a second
  const after = await readAll(reader, 'c');
  assert.deepEqual(after, compacted, 'the reader sees what the writer sees');
  await reader.close();
  await writer.close();
});
