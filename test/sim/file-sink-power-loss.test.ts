/**
 * The JSONL file sink under power cuts (the seeded disk model of test/sim/simulated-storage.ts):
 * random steps (some empty, some large) are written; the power goes at a seeded moment, often
 * while a step's write or sync is in flight; unsynced sectors come back written, lost (zeros) or
 * cut off. After the cut the sink must reopen at a step between the last acknowledged one and the
 * last one attempted, holding exactly the lines of the steps up to it; and rewriting every step
 * must give the file an uninterrupted run writes — no duplicate, no gap.
 *
 * SLUICE_FILE_SINK_SIM_CASES sets the number of cases (default 300); SLUICE_FILE_SINK_SIM_SEED
 * replays one case.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import { Decimal, type Row } from '../../src/core/index.ts';
import { resolveType } from '../../src/sql/index.ts';
import { Random } from './random.ts';
import { SimulatedStorage } from './simulated-storage.ts';
import type { SinkBatch, SinkTarget } from '../../src/sinks/sink.ts';
import { FileSink } from '../../src/sinks/file/file-sink.ts';

const cases = Number(process.env.SLUICE_FILE_SINK_SIM_CASES ?? 300);
const onlySeed = process.env.SLUICE_FILE_SINK_SIM_SEED === undefined ? undefined : Number(process.env.SLUICE_FILE_SINK_SIM_SEED);
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));
const file = '/data/out/changes.jsonl';
const target: SinkTarget = { name: 'totals', columns: [{ name: 'customer', type: resolveType('bigint') }, { name: 'total', type: resolveType('numeric') }], key: [0] };

function generate(random: Random, count: number): SinkBatch[] {
  const batches: SinkBatch[] = [];
  const totals = new Map<number, Decimal>();
  for (let step = 1; step <= count; step++) {
    const rows: Row[] = [];
    const weights: number[] = [];
    const changes = random.chance(0.2) ? 0 : random.chance(0.1) ? 50 + random.int(400) : 1 + random.int(6);
    const touched = new Set<number>();
    for (let c = 0; c < changes; c++) {
      const customer = random.int(changes > 20 ? 1000 : 10);
      if (touched.has(customer)) continue;
      touched.add(customer);
      const old = totals.get(customer);
      if (old) {
        rows.unshift([customer, old]);
        weights.unshift(-1);
      }
      const total = new Decimal(BigInt(random.int(100_000)), 2);
      totals.set(customer, total);
      rows.push([customer, total]);
      weights.push(random.chance(0.1) ? 2 : 1);
    }
    batches.push({ step, frontier: `pos-${step}`, rows, weights });
  }
  return batches;
}

/** The bytes an uninterrupted run writes for these steps (written through a storage that never fails). */
async function reference(batches: readonly SinkBatch[]): Promise<Buffer> {
  const storage = new SimulatedStorage(new Random(1));
  const sink = await FileSink.open(file, target, { storage });
  for (const batch of batches) await sink.write(batch);
  await sink.close();
  return storage.readWhole(file)!;
}

test('the file sink after a power cut: resumes at an acknowledged step or later, with no duplicate and no gap', async () => {
  const seeds = onlySeed !== undefined ? [onlySeed] : Array.from({ length: cases }, (_, i) => 11_000 + i);
  let cutMidWrite = 0;
  let truncated = 0;
  for (const seed of seeds) {
    const random = new Random(seed);
    const batches = generate(random.fork(), 4 + random.int(14));
    const whole = await reference(batches);
    // Where each step's lines end in the uninterrupted file (an empty step ends where the last one did).
    const ends: number[] = [0];
    {
      const storage = new SimulatedStorage(new Random(2));
      const sink = await FileSink.open(file, target, { storage });
      for (const batch of batches) {
        await sink.write(batch);
        ends.push(storage.readWhole(file)!.length);
      }
      await sink.close();
    }

    const storage = new SimulatedStorage(random.fork());
    let acknowledged = 0;
    let attempted = 0;
    let inFlight: Promise<void> | undefined;
    const cutAt = random.int(batches.length);
    try {
      const sink = await FileSink.open(file, target, { storage });
      for (let s = 0; s <= cutAt; s++) {
        attempted = s + 1;
        inFlight = sink.write(batches[s]!).then(
          () => void (acknowledged = s + 1),
          (error: unknown) => {
            // Only the step cut by the power loss may fail (its storage is gone).
            if (s < cutAt) throw error;
          },
        );
        if (s < cutAt) await inFlight;
      }
    } catch (error) {
      assert.fail(`seed ${seed}: writing failed before the cut: ${(error as Error).message}`);
    }
    for (let turns = random.int(6); turns > 0; turns--) await turn();
    if (acknowledged < attempted) cutMidWrite++;
    const disk = storage.crash(random);

    const before = disk.readWhole(file)?.length ?? 0;
    const sink = await FileSink.open(file, target, { storage: disk });
    const step = sink.committed()?.step ?? 0;
    assert.ok(step >= acknowledged, `seed ${seed}: reopened at step ${step}, behind the acknowledged ${acknowledged}`);
    assert.ok(step <= attempted, `seed ${seed}: reopened at step ${step}, never attempted (${attempted})`);
    if (step > 0) assert.equal(sink.committed()!.frontier, `pos-${step}`);
    const kept = disk.readWhole(file) ?? Buffer.alloc(0);
    if (kept.length < before) truncated++;
    assert.ok(kept.equals(whole.subarray(0, ends[step]!)), `seed ${seed}: after reopening, the file is not exactly steps 1..${step}`);
    // The runtime replays from its checkpoint (here: from the start); the sink skips what it has.
    for (const batch of batches) await sink.write(batch);
    await sink.close();
    assert.ok(disk.readWhole(file)!.equals(whole), `seed ${seed}: the file differs from an uninterrupted run's`);
  }
  process.stdout.write(`ℹ file sink power-cut simulation: ${seeds.length} cases, ${cutMidWrite} cut during a write, ${truncated} recovered by truncating\n`);
  if (onlySeed === undefined) assert.ok(cutMidWrite > seeds.length / 5, `only ${cutMidWrite} of ${seeds.length} cuts landed during a write`);
});
