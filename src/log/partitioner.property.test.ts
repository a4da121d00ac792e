/**
 * Key partitioning: `partitionFor` of the file log agrees with `partitionForKey` (Kafka's
 * `toPositive(murmur2(key)) % partitions`), is the same for a string and its UTF-8 bytes, stays
 * the same after the log is closed and reopened, keeps every key's records in one partition in
 * append order, and spreads keys evenly over the partitions.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { FileLog } from './file/file-log.ts';
import { partitionForKey } from './partitioner.ts';

const partitionCounts = [1, 2, 3, 7, 16, 64];

function temporaryFolder(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-partitioner-'));
}

const keyArbitrary = fc.oneof(fc.string({ unit: 'grapheme', maxLength: 40 }), fc.string({ maxLength: 40 }), fc.uint8Array({ maxLength: 40 }));

test('partitionFor agrees with partitionForKey, with the key’s bytes, and across a reopen', { timeout: 120_000 }, async () => {
  // One log with a topic per partition count, created once; each run closes and reopens it.
  const folder = temporaryFolder();
  let log = await FileLog.open(folder, { cleanupIntervalMs: 0 });
  try {
    for (const partitions of partitionCounts) await log.createTopic(`keys-${partitions}`, { partitions });
    await fc.assert(
      fc.asyncProperty(fc.array(keyArbitrary, { minLength: 1, maxLength: 60 }), async (keys) => {
        const before = new Map<number, number[]>();
        for (const partitions of partitionCounts) {
          const topic = `keys-${partitions}`;
          const assigned: number[] = [];
          for (const key of keys) {
            const partition = await log.partitionFor(topic, key);
            assert.ok(Number.isInteger(partition) && partition >= 0 && partition < partitions, `partition ${partition} of ${partitions}`);
            assert.equal(partition, partitionForKey(key, partitions));
            const bytes = typeof key === 'string' ? Buffer.from(key, 'utf8') : Buffer.from(key);
            assert.equal(await log.partitionFor(topic, bytes), partition, 'a string and its UTF-8 bytes go to the same partition');
            assigned.push(partition);
          }
          before.set(partitions, assigned);
        }
        await log.close();
        log = await FileLog.open(folder, { cleanupIntervalMs: 0 });
        for (const partitions of partitionCounts) {
          const after = await Promise.all(keys.map((key) => log.partitionFor(`keys-${partitions}`, key)));
          assert.deepEqual(after, before.get(partitions), `partitions of the ${partitions}-partition topic after reopening`);
        }
      }),
      { numRuns: 40 },
    );
  } finally {
    await log.close();
    fs.rmSync(folder, { recursive: true, force: true });
  }
});

test('partitionForKey is Kafka’s: toPositive(murmur2(key)) % partitions, not Math.abs', () => {
  // From Kafka's reference murmur2 values (partitioner.test.ts), masked with 0x7fffffff.
  const cases: Array<[string, number[]]> = [
    ['21', [0, 3, 12, 40]],
    ['foobar', [0, 0, 14, 66]],
    ['a-little-bit-long-string', [2, 1, 0, 12]],
    ['a-little-bit-longer-string', [2, 0, 3, 19]],
    ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', [2, 3, 13, 77]],
  ];
  for (const [key, expected] of cases) {
    assert.deepEqual([3, 7, 16, 100].map((partitions) => partitionForKey(key, partitions)), expected, key);
  }
  // Every key of a one-partition topic goes to partition 0, the empty key included.
  for (const key of ['', new Uint8Array(0), 'x', new Uint8Array([255, 0])]) assert.equal(partitionForKey(key, 1), 0);
});

/** Pearson's chi-square statistic of counts against an even spread. */
function chiSquare(counts: number[]): number {
  const total = counts.reduce((sum, count) => sum + count, 0);
  const expected = total / counts.length;
  return counts.reduce((sum, count) => sum + (count - expected) ** 2 / expected, 0);
}

/**
 * The chi-square statistic a uniform hash exceeds with probability about 10^-9, by the
 * Wilson–Hilferty approximation (z = 6.0). The approximation overestimates the quantile for one or
 * two degrees of freedom (46.9 against the exact 37.3 for one), which only makes the bound safer.
 * A mean-plus-k-deviations bound is wrong here: chi-square is skewed, and with one degree of
 * freedom "mean + 8σ" (12.3) is exceeded once in about 2,200 fair runs.
 */
function chiSquareBound(degrees: number): number {
  const z = 6.0;
  const v = 2 / (9 * degrees);
  return degrees * (1 - v + z * Math.sqrt(v)) ** 3;
}

/**
 * Checks that keys spread evenly: the chi-square statistic stays below the bound a uniform hash
 * exceeds once in 10^9, and no partition gets less than half or more than one and a half times
 * its share.
 */
function assertEvenSpread(keys: Array<string | Uint8Array>, partitions: number, what: string): void {
  const counts = new Array<number>(partitions).fill(0);
  for (const key of keys) counts[partitionForKey(key, partitions)]++;
  const statistic = chiSquare(counts);
  assert.ok(statistic < chiSquareBound(partitions - 1), `${what} over ${partitions} partitions: chi-square ${statistic.toFixed(1)} (counts ${counts.join(' ')})`);
  const share = keys.length / partitions;
  for (const count of counts) assert.ok(count > share / 2 && count < share * 1.5, `${what} over ${partitions} partitions: counts ${counts.join(' ')}`);
}

test('typical key shapes spread evenly over the partitions', () => {
  const n = 20_000;
  const shapes: Array<[string, Array<string | Uint8Array>]> = [
    ['decimal ids', Array.from({ length: n }, (_, i) => String(i))],
    ['prefixed ids', Array.from({ length: n }, (_, i) => `customer-${i}`)],
    ['uuid-like ids', Array.from({ length: n }, (_, i) => `${(i * 2654435761) >>> 0}`.padStart(8, '0') + '-4a1e-9c3b-' + String(i).padStart(12, '0'))],
    [
      'big-endian 8-byte integers',
      Array.from({ length: n }, (_, i) => {
        const bytes = new Uint8Array(8);
        new DataView(bytes.buffer).setBigUint64(0, BigInt(i));
        return bytes;
      }),
    ],
    ['composite keys', Array.from({ length: n }, (_, i) => JSON.stringify([i % 97, `order ${i}`]))],
  ];
  for (const [what, keys] of shapes) {
    for (const partitions of [2, 3, 8, 10, 16, 32, 100]) assertEvenSpread(keys, partitions, what);
  }
});

test('random distinct keys spread evenly over the partitions', () => {
  fc.assert(
    fc.property(fc.uniqueArray(fc.string({ minLength: 1, maxLength: 24 }), { minLength: 4000, maxLength: 4000 }), fc.constantFrom(2, 3, 5, 8, 12, 16), (keys, partitions) => {
      assertEvenSpread(keys, partitions, 'random strings');
    }),
    { numRuns: 30 },
  );
});

test('every key’s records share one partition, in append order, before and after a reopen', { timeout: 120_000 }, async () => {
  const folder = temporaryFolder();
  let log = await FileLog.open(folder, { cleanupIntervalMs: 0 });
  try {
    const topic = 'orders';
    await log.createTopic(topic, { partitions: 5, segmentBytes: 4096 });
    const appended = new Map<string, string[]>();
    for (let i = 0; i < 600; i++) {
      const key = `customer-${i % 37}`;
      const value = `event ${i}`;
      const partition = await log.partitionFor(topic, key);
      await log.append(topic, partition, [{ key, value }], { persist: 'buffer' });
      appended.set(key, [...(appended.get(key) ?? []), value]);
      if (i === 300) {
        await log.close();
        log = await FileLog.open(folder, { cleanupIntervalMs: 0 });
      }
    }
    const seen = new Map<string, { partition: number; values: string[] }>();
    const ends = await log.endOffsets(topic);
    for (let partition = 0; partition < 5; partition++) {
      let next = 0;
      while (next < ends[partition]) {
        const { records, nextOffset } = await log.read(topic, partition, next);
        for (const record of records) {
          const key = String(record.key);
          const entry = seen.get(key) ?? { partition, values: [] };
          assert.equal(entry.partition, partition, `${key} is in partitions ${entry.partition} and ${partition}`);
          entry.values.push(String(record.value));
          seen.set(key, entry);
        }
        next = nextOffset;
      }
    }
    assert.equal(seen.size, 37);
    for (const [key, values] of appended) assert.deepEqual(seen.get(key)?.values, values, key);
    assert.ok(new Set([...seen.values()].map((entry) => entry.partition)).size === 5, 'all five partitions are used');
    // The partition count is fixed: hashing would move keys otherwise.
    await assert.rejects(log.createTopic(topic, { partitions: 6 }), { code: 'topic_exists' });
  } finally {
    await log.close();
    fs.rmSync(folder, { recursive: true, force: true });
  }
});
