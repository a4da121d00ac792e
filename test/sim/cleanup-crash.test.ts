/**
 * Compaction and retention under power loss, on the simulated disk: a cleanup is started and the
 * power cut at a seeded moment — before it, between any two of its writes, renames and syncs, or
 * after it finished. On reopening, the log must open (a crash is not damage), every record still
 * stored must be the one appended at its offset, every key's latest record must survive, offsets
 * and end offsets must not move, and cleanup must run again to completion on the recovered log.
 *
 * Knobs: SLUICE_CLEANUP_SIM_CASES (default 300), SLUICE_CLEANUP_SIM_SEED (run one seed).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FileLog } from '../../src/log/index.ts';
import { readAll } from '../../src/log/file/log-test-support.ts';
import { Random } from './random.ts';
import { SimulatedStorage } from './simulated-storage.ts';

const cases = Number(process.env.SLUICE_CLEANUP_SIM_CASES ?? 300);
const onlySeed = process.env.SLUICE_CLEANUP_SIM_SEED === undefined ? undefined : Number(process.env.SLUICE_CLEANUP_SIM_SEED);

interface Appended {
  key: string;
  value: string | null;
}

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

function open(storage: SimulatedStorage, clock: () => number): Promise<FileLog> {
  return FileLog.open('/data', { storage, fence: false, cleanupIntervalMs: 0, now: clock });
}

/** Checks what a compacted and a retention topic hold against what was appended. */
async function check(log: FileLog, compacted: Appended[], events: string[], seed: number, when: string): Promise<void> {
  const where = `seed ${seed} (replay: SLUICE_CLEANUP_SIM_SEED=${seed}), ${when}`;
  assert.deepEqual(await log.endOffsets('changelog'), [compacted.length], `${where}: the changelog's end offset moved`);
  const stored = await readAll(log, 'changelog', 0);
  const latest = new Map<string, number>();
  compacted.forEach((record, offset) => latest.set(record.key, offset));
  const seen = new Set<number>();
  let previous = -1;
  for (const record of stored) {
    assert.ok(record.offset > previous, `${where}: offsets out of order`);
    previous = record.offset;
    const appended = compacted[record.offset];
    assert.equal(record.key?.toString(), appended.key, `${where}: changelog offset ${record.offset} holds another key`);
    assert.equal(record.value?.toString() ?? null, appended.value, `${where}: changelog offset ${record.offset} holds another value`);
    seen.add(record.offset);
  }
  for (const [key, offset] of latest) assert.ok(seen.has(offset), `${where}: the latest record of key ${key} (offset ${offset}) is gone`);

  assert.deepEqual(await log.endOffsets('events'), [events.length], `${where}: the event topic's end offset moved`);
  const [start] = await log.startOffsets('events');
  const kept = await readAll(log, 'events', 0);
  assert.deepEqual(
    kept.map((record) => record.offset),
    Array.from({ length: events.length - start }, (_, i) => start + i),
    `${where}: retention left a gap or an unordered suffix`,
  );
  for (const record of kept) assert.equal(record.value?.toString(), events[record.offset], `${where}: event ${record.offset} changed`);
}

test('compaction and retention survive a power cut at any moment', async () => {
  const seeds = onlySeed === undefined ? Array.from({ length: cases }, (_, i) => i + 1) : [onlySeed];
  let cutMidway = 0;
  for (const seed of seeds) {
    const random = new Random(seed);
    let clock = 1_000_000;
    const now = () => clock;
    const storage = new SimulatedStorage(random.fork());
    const log = await open(storage, now);
    await log.createTopic('changelog', { cleanupPolicy: 'compact', segmentBytes: 4096, tombstoneRetentionMs: 1_000_000 });
    await log.createTopic('events', { segmentBytes: 4096, retentionBytes: 8192 + random.int(8192) });
    const compacted: Appended[] = [];
    const events: string[] = [];
    const keys = 3 + random.int(10);
    const appends = 40 + random.int(80);
    for (let i = 0; i < appends; i++) {
      const batch: Appended[] = [];
      for (let n = 1 + random.int(3); n > 0; n--) {
        batch.push({ key: `k${random.int(keys)}`, value: random.chance(0.1) ? null : `v${compacted.length + batch.length}-${'x'.repeat(random.int(200))}` });
      }
      await log.append('changelog', 0, batch);
      compacted.push(...batch);
      const event = `e${events.length}-${'y'.repeat(random.int(300))}`;
      await log.append('events', 0, [{ value: event }]);
      events.push(event);
      clock += 1;
    }
    // Start both cleanups and cut the power a seeded number of event-loop turns later.
    let finished = 0;
    log.cleanup('changelog').then(() => finished++, () => {});
    log.cleanup('events').then(() => finished++, () => {});
    // Mostly early (a cleanup of these small logs takes a few dozen turns), sometimes after.
    for (let turns = random.chance(0.85) ? random.int(40) : random.int(400); turns > 0; turns--) await turn();
    if (finished < 2) cutMidway++;
    const disk = storage.crash(random);

    const reopened = await open(disk, now);
    await check(reopened, compacted, events, seed, 'after the power cut');
    await reopened.cleanup('changelog');
    await reopened.cleanup('events');
    await check(reopened, compacted, events, seed, 'after cleaning up again');
    await reopened.close();
    const again = await open(disk, now);
    await check(again, compacted, events, seed, 'after a clean reopen');
    await again.close();
  }
  process.stdout.write(`ℹ cleanup power-cut simulation: ${seeds.length} cases, ${cutMidway} cut while a cleanup was under way\n`);
  if (onlySeed === undefined) assert.ok(cutMidway > seeds.length / 4, `only ${cutMidway} of ${seeds.length} cuts landed during a cleanup: the test would not be testing much`);
});
