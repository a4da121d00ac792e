/**
 * Engine checkpoints under power cuts (seeded simulation of the disk in simulated-storage.ts):
 * a circuit runs random steps and checkpoints every few steps; the power is cut at a seeded
 * moment, often while a checkpoint is being written. After the cut the checkpoint on disk must
 * load (never a damaged file), must be the newest one whose save had resolved or a newer one, and
 * a fresh circuit restored from it and fed the steps after its frontier must end exactly where an
 * uninterrupted run ends.
 *
 * SLUICE_CHECKPOINT_SIM_CASES sets the number of cases (default 200); SLUICE_CHECKPOINT_SIM_SEED
 * replays one case.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import { CircuitBuilder, loadCheckpoint, saveCheckpoint, ZSet, type Circuit } from '../../src/engine/index.ts';
import { Random } from './random.ts';
import { SimulatedStorage } from './simulated-storage.ts';

const cases = Number(process.env.SLUICE_CHECKPOINT_SIM_CASES ?? 200);
const onlySeed = process.env.SLUICE_CHECKPOINT_SIM_SEED === undefined ? undefined : Number(process.env.SLUICE_CHECKPOINT_SIM_SEED);
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));
const file = '/data/views.checkpoint';

/** orders ⋈ customers → revenue per customer name, and the top 3 orders per customer. */
function build(): Circuit {
  const builder = new CircuitBuilder();
  const orders = builder.input('orders', 3); // id, customer_id, amount
  const customers = builder.input('customers', 2); // id, name
  const joined = orders.join(customers, { leftKey: [1], rightKey: [0], kind: 'left' });
  builder.output('revenue', joined.aggregate([4], [{ kind: 'sum', column: 2 }, { kind: 'count' }, { kind: 'max', column: 2 }]));
  builder.output('top', orders.topK({ groupBy: [1], orderBy: [{ column: 2, descending: true }], limit: 3 }));
  return builder.build();
}

type Step = { orders: ZSet; customers: ZSet };

/** Random steps of inserts, updates and deletes over small domains. */
function generate(random: Random, count: number): Step[] {
  const live = new Map<number, [number, number, number]>();
  const names = new Map<number, string>();
  const steps: Step[] = [];
  let nextId = 0;
  for (let s = 0; s < count; s++) {
    const orders = new ZSet();
    const customers = new ZSet();
    for (let c = random.int(6); c > 0; c--) {
      const roll = random.int(10);
      if (roll < 5 || live.size === 0) {
        const row: [number, number, number] = [nextId++, random.int(8), random.int(100)];
        live.set(row[0], row);
        orders.add(row, 1);
      } else if (roll < 8) {
        const old = random.pick([...live.values()]);
        const row: [number, number, number] = [old[0], old[1], random.int(100)];
        live.set(row[0], row);
        orders.add(old, -1);
        orders.add(row, 1);
      } else {
        const old = random.pick([...live.values()]);
        live.delete(old[0]);
        orders.add(old, -1);
      }
    }
    if (random.chance(0.3)) {
      const id = random.int(8);
      const name = `customer ${id} v${s}`;
      const old = names.get(id);
      if (old !== undefined) customers.add([id, old], -1);
      customers.add([id, name], 1);
      names.set(id, name);
    }
    steps.push({ orders, customers });
  }
  return steps;
}

/** Runs steps and returns each output's integral. */
function integrals(circuit: Circuit, steps: readonly Step[], from: Map<string, ZSet> = new Map()): Map<string, ZSet> {
  const sums = new Map(from);
  for (const step of steps) {
    for (const [name, delta] of Object.entries(circuit.step(step))) sums.set(name, (sums.get(name) ?? new ZSet()).plus(delta).consolidate());
  }
  return sums;
}

test('a checkpoint cut by a power loss loads as the last acknowledged one or a newer one, and resumes exactly', async () => {
  const seeds = onlySeed !== undefined ? [onlySeed] : Array.from({ length: cases }, (_, i) => 7_000 + i);
  let cutMidSave = 0;
  for (const seed of seeds) {
    const random = new Random(seed);
    const steps = generate(random.fork(), 12 + random.int(20));
    const expected = integrals(build(), steps);

    const storage = new SimulatedStorage(random.fork());
    await storage.makeFolder('/data');
    const circuit = build();
    let acknowledged = -1; // the frontier (steps done) of the newest checkpoint whose save resolved
    let saving: Promise<void> | undefined;
    const cutAfterStep = random.int(steps.length);
    for (let s = 0; s <= cutAfterStep; s++) {
      circuit.step(steps[s]!);
      if (saving === undefined && (s % 3 === 2 || s === cutAfterStep)) {
        const frontier = s + 1;
        saving = saveCheckpoint(circuit, file, { steps: frontier }, { storage }).then(() => {
          acknowledged = Math.max(acknowledged, frontier);
          saving = undefined;
        });
        if (s < cutAfterStep) await saving;
      }
    }
    // The power goes a seeded number of event-loop turns into the last save: often midway.
    for (let turns = random.int(8); turns > 0; turns--) await turn();
    if (saving !== undefined) cutMidSave++;
    const disk = storage.crash(random);

    const restored = build();
    let loaded: { frontier: unknown } | undefined;
    try {
      loaded = loadCheckpoint(restored, file, { storage: disk });
    } catch (error) {
      assert.fail(`seed ${seed}: the checkpoint did not load after the power cut: ${(error as Error).message}`);
    }
    const done = loaded === undefined ? 0 : (loaded.frontier as { steps: number }).steps;
    assert.ok(done >= Math.max(acknowledged, 0), `seed ${seed}: the checkpoint went back to step ${done}, behind the acknowledged ${acknowledged}`);
    assert.ok(done <= cutAfterStep + 1, `seed ${seed}: a checkpoint from the future (${done})`);
    // Resume: the outputs of the steps up to the frontier are the restored state's; replay the rest.
    const before = loaded === undefined ? new Map<string, ZSet>() : integrals(build(), steps.slice(0, done));
    const resumed = integrals(restored, steps.slice(done), before);
    for (const [name, integral] of expected) assert.ok(integral.equals(resumed.get(name) ?? new ZSet()), `seed ${seed}: output "${name}" differs after resuming from step ${done}`);
  }
  process.stdout.write(`ℹ checkpoint power-cut simulation: ${seeds.length} cases, ${cutMidSave} cut while a checkpoint was being saved\n`);
  if (onlySeed === undefined) assert.ok(cutMidSave > seeds.length / 5, `only ${cutMidSave} of ${seeds.length} cuts landed during a save: the test would not be testing much`);
});
