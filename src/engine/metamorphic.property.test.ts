/**
 * Metamorphic relations of circuits:
 * - cutting the same changes into different steps (all in one, one per step, random cuts) gives
 *   the same integrated outputs at every common boundary (relational circuits only: delay and
 *   differentiate are about steps by definition);
 * - checkpointing at any step, restoring into a fresh identical circuit and continuing gives the
 *   outputs of the uninterrupted run; a different circuit is refused and damaged bytes are
 *   reported as corruption.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'node:test';
import fc from 'fast-check';
import { CorruptionError, Decimal, DefiniteError, type Row, type Value } from '../core/index.ts';
import { decodeCheckpoint, encodeCheckpoint, loadCheckpoint, saveCheckpoint } from './checkpoint.ts';
import type { Circuit, CircuitBuilder } from './circuit.ts';
import { buildCircuit, changeSequence, formatSteps, formatZSet, keyValue, stepsOf, textValue, type Change, type Step } from './reference/change-sequences.ts';
import { ZSet } from './zset.ts';

// orders: (id, customer, amount)   customers: (id, region)
const amount: fc.Arbitrary<Value> = fc.constantFrom<Value>(null, 1, 5, 10, 2 ** 53 - 1, 2n ** 60n);
const order: fc.Arbitrary<Row> = fc.tuple(fc.integer({ min: 1, max: 4 }), keyValue, amount);
const customer: fc.Arbitrary<Row> = fc.tuple(keyValue, fc.constantFrom<Value>(null, 'north', 'south'));
const float: fc.Arbitrary<Value> = fc.constantFrom<Value>(null, 0.1, 0.2, 0.3, -0.1, 1e16, -1e16, 1 / 3, 2.5, 1e-300, 5e-324);
const decimal: fc.Arbitrary<Value> = fc.constantFrom<Value>(null, Decimal.parse('1.5'), Decimal.parse('-0.25'), Decimal.parse('2.00'), Decimal.parse('0.001'));
const measurement: fc.Arbitrary<Row> = fc.tuple(keyValue, float, decimal, textValue, fc.constantFrom<Value>(null, true, false));

interface Scenario {
  name: string;
  inputs: Record<string, fc.Arbitrary<Row>>;
  build(builder: CircuitBuilder): void;
}

/** Relational circuits: their integrated outputs depend only on the integrated inputs. */
const relational: Scenario[] = [
  {
    name: 'join → aggregate → top-k, outer joins, semi- and anti-joins',
    inputs: { orders: order, customers: customer },
    build(builder) {
      const orders = builder.input('orders', 3);
      const customers = builder.input('customers', 2);
      const joined = orders.join(customers, { kind: 'full', leftKey: [1], rightKey: [0] });
      const byRegion = joined.aggregate([4], [{ kind: 'count' }, { kind: 'sum', column: 2 }, { kind: 'avg', column: 2 }, { kind: 'max', column: 2 }, { kind: 'array_agg', column: 0, orderBy: [{ column: 2, descending: true }] }]);
      builder.output('by region', byRegion);
      builder.output('top', byRegion.topK({ orderBy: [{ column: 2, descending: true, nullsFirst: true }], limit: 1, offset: 1 }));
      builder.output('known', orders.semiJoin(customers, { leftKey: [1], rightKey: [0] }).aggregate([1], [{ kind: 'count_distinct', column: 0 }]));
      builder.output('unknown', orders.antiJoin(customers, { leftKey: [1], rightKey: [0] }).distinct());
      builder.output('global', orders.aggregate([], [{ kind: 'count' }, { kind: 'min', column: 2 }]));
    },
  },
  {
    name: 'exact float and decimal sums, string_agg and bool_and',
    inputs: { m: measurement },
    build(builder) {
      const m = builder.input('m', 5);
      builder.output(
        'per key',
        m.aggregate([0], [
          { kind: 'sum', column: 1 },
          { kind: 'avg', column: 1 },
          { kind: 'sum', column: 2 },
          { kind: 'avg', column: 2 },
          { kind: 'string_agg', column: 3, separator: ',', orderBy: [{ column: 1 }] },
          { kind: 'bool_and', column: 4 },
        ]),
      );
      builder.output('global', m.aggregate([], [{ kind: 'sum', column: 1 }, { kind: 'avg', column: 1 }, { kind: 'count', column: 3 }]));
      builder.output('top', m.topK({ groupBy: [3], orderBy: [{ column: 1, descending: true }], limit: 2 }));
    },
  },
];

/** Cuts a flat change list after the positions marked in `cuts`. */
function cut(changes: readonly Change[], cuts: readonly boolean[]): Change[][] {
  const steps: Change[][] = [[]];
  changes.forEach((change, i) => {
    steps[steps.length - 1]!.push(change);
    if (cuts[i] && i < changes.length - 1) steps.push([]);
  });
  return steps;
}

/** The integrated outputs after each step, keyed by the number of changes applied so far. */
function integralsByBoundary(build: (builder: CircuitBuilder) => void, steps: readonly Change[][]): Map<number, Record<string, ZSet>> {
  const circuit = buildCircuit(build);
  const sums: Record<string, ZSet> = {};
  const boundaries = new Map<number, Record<string, ZSet>>();
  let applied = 0;
  for (const step of stepsOf(steps)) {
    const outputs = circuit.step(step);
    for (const [name, delta] of Object.entries(outputs)) sums[name] = (sums[name] ?? ZSet.empty).plus(delta).consolidate();
    applied += Object.values(step).reduce((count, delta) => count + delta.length, 0);
    boundaries.set(applied, { ...sums });
  }
  return boundaries;
}

for (const scenario of relational) {
  test(`step cuts do not change integrated outputs: ${scenario.name}`, () => {
    fc.assert(
      fc.property(changeSequence(scenario.inputs, { maxSteps: 8 }), fc.array(fc.boolean(), { maxLength: 40 }), (generated, randomCuts) => {
        const changes = generated.flat();
        const cuttings: Record<string, Change[][]> = {
          'as generated': generated,
          'all in one step': [changes],
          'random cuts': cut(changes, randomCuts),
        };
        const perChange = integralsByBoundary(scenario.build, changes.map((change) => [change]));
        for (const [how, steps] of Object.entries(cuttings)) {
          for (const [applied, integrals] of integralsByBoundary(scenario.build, steps)) {
            const expected = applied === 0 ? integralsByBoundary(scenario.build, [[]]).get(0)! : perChange.get(applied)!;
            for (const [name, integral] of Object.entries(integrals)) {
              if (!integral.equals(expected[name]!)) {
                assert.fail(
                  `output "${name}" after ${applied} changes cut ${how} differs from one change per step\n  ${how}: ${formatZSet(integral)}\n  one per step: ${formatZSet(expected[name]!)}\nsteps (${how}):\n${formatSteps(stepsOf(steps))}`,
                );
              }
            }
          }
        }
      }),
      { numRuns: 100 },
    );
  });
}

/** Every stateful operator kind, fed with values of every kind the codec must carry. */
function everyOperator(builder: CircuitBuilder): void {
  const orders = builder.input('orders', 3);
  const customers = builder.input('customers', 2);
  const m = builder.input('m', 5);
  for (const kind of ['inner', 'left', 'right', 'full'] as const) builder.output(`${kind} join`, orders.join(customers, { kind, leftKey: [1], rightKey: [0], residual: (o, c) => o[0] !== 4 || c[1] !== 'north' }));
  builder.output('semi', orders.semiJoin(customers, { leftKey: [1], rightKey: [0] }));
  builder.output('anti', orders.antiJoin(customers, { leftKey: [1], rightKey: [0], residual: (_o, c) => c[1] !== null }));
  builder.output('distinct', orders.project([1]).distinct());
  builder.output(
    'aggregate',
    m.aggregate([0], [
      { kind: 'count' },
      { kind: 'count', column: 1 },
      { kind: 'count_distinct', column: 3 },
      { kind: 'sum', column: 1 },
      { kind: 'avg', column: 2 },
      { kind: 'min', column: 2 },
      { kind: 'max', column: 3 },
      { kind: 'bool_or', column: 4 },
      { kind: 'string_agg', column: 3, separator: '/', orderBy: [{ column: 2, descending: true }] },
      { kind: 'array_agg', column: 1 },
    ]),
  );
  builder.output('big sums', orders.aggregate([], [{ kind: 'sum', column: 2 }, { kind: 'avg', column: 2 }]));
  builder.output('top-k', m.topK({ groupBy: [0], orderBy: [{ column: 1, nullsFirst: true }], limit: 2, offset: 1 }));
  const arrays = m.aggregate([3], [{ kind: 'array_agg', column: 2 }]);
  builder.output('integrate', arrays.integrate());
  builder.output('differentiate', m.differentiate());
  builder.output('delay', arrays.delay());
}

const everyInput = { orders: order, customers: customer, m: measurement };

function assertSameOutputs(actual: Record<string, ZSet>, expected: Record<string, ZSet>, where: string): void {
  for (const [name, delta] of Object.entries(expected)) {
    if (!actual[name]!.equals(delta)) assert.fail(`${where}, output "${name}": ${formatZSet(actual[name]!)} instead of ${formatZSet(delta)}`);
  }
}

test('restoring a checkpoint at any step continues exactly like the uninterrupted run', () => {
  fc.assert(
    fc.property(changeSequence(everyInput), fc.nat(), fc.nat(), (changes, first, second) => {
      const steps = stepsOf(changes);
      const uninterrupted = buildCircuit(everyOperator);
      const outputs = steps.map((step) => uninterrupted.step(step));
      // Checkpoint twice: at `at1`, then again at `at2` in the restored circuit.
      const at1 = first % (steps.length + 1);
      const at2 = at1 + (second % (steps.length - at1 + 1));
      let circuit = buildCircuit(everyOperator);
      for (let t = 0; t < steps.length; t++) {
        if (t === at1 || t === at2) circuit = restored(circuit, t);
        assertSameOutputs(circuit.step(steps[t]!), outputs[t]!, `step ${t} (checkpoints at ${at1} and ${at2})\n${formatSteps(steps)}\n`);
      }
      if (at2 === steps.length) restored(circuit, at2);
    }),
    { numRuns: 100 },
  );
});

function restored(circuit: Circuit, t: number): Circuit {
  const bytes = encodeCheckpoint(circuit, { step: t, offsets: [t, 2 * t] });
  const fresh = buildCircuit(everyOperator);
  assert.deepEqual(decodeCheckpoint(fresh, bytes, 'x'), { step: t, offsets: [t, 2 * t] }, 'the frontier round-trips');
  assert.equal(fresh.steps, t, 'the step count is restored');
  assert.deepEqual(encodeCheckpoint(fresh, { step: t, offsets: [t, 2 * t] }), bytes, 'a restored circuit checkpoints to the same bytes');
  return fresh;
}

test('saveCheckpoint and loadCheckpoint round-trip through a file', async () => {
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-checkpoint-'));
  try {
    const file = path.join(directory, 'view.ck');
    const changes = fc.sample(changeSequence(everyInput, { maxSteps: 12 }), { seed: 42, numRuns: 100 }).find((sequence) => sequence.length >= 8)!;
    const steps = stepsOf(changes);
    const uninterrupted = buildCircuit(everyOperator);
    const outputs = steps.map((step) => uninterrupted.step(step));
    assert.equal(loadCheckpoint(buildCircuit(everyOperator), file), undefined, 'no checkpoint yet');
    const half = Math.floor(steps.length / 2);
    const circuit = buildCircuit(everyOperator);
    for (let t = 0; t < half; t++) circuit.step(steps[t]!);
    await saveCheckpoint(circuit, file, { step: half }, { version: 'v1' });
    assert.throws(() => loadCheckpoint(circuit, file, { version: 'v1' }), (error: unknown) => error instanceof DefiniteError && error.code === 'checkpoint_restore');
    assert.throws(() => loadCheckpoint(buildCircuit(everyOperator), file, { version: 'v2' }), (error: unknown) => error instanceof DefiniteError && error.code === 'checkpoint_mismatch');
    const fresh = buildCircuit(everyOperator);
    assert.deepEqual(loadCheckpoint(fresh, file, { version: 'v1' }), { frontier: { step: half } });
    for (let t = half; t < steps.length; t++) assertSameOutputs(fresh.step(steps[t]!), outputs[t]!, `step ${t} after loading`);
    assert.deepEqual(fs.readdirSync(directory), ['view.ck'], 'no temporary file is left behind');
  } finally {
    fs.rmSync(directory, { recursive: true, force: true });
  }
});

test('a checkpoint is refused by a circuit with a different definition', () => {
  const circuit = buildCircuit(everyOperator);
  circuit.step({ orders: ZSet.inserts([[1, 1, 5]]) });
  const bytes = encodeCheckpoint(circuit, null);
  const variants: Array<[string, (builder: CircuitBuilder) => void]> = [
    ['another limit', (builder) => builder.output('x', builder.input('a', 1).topK({ orderBy: [{ column: 0 }], limit: 2 }))],
    [
      'one operator more',
      (builder) => {
        everyOperator(builder);
        builder.output('more', builder.input('extra', 1).distinct());
      },
    ],
    [
      'another residual',
      (builder) => {
        const orders = builder.input('orders', 3);
        const customers = builder.input('customers', 2);
        builder.output('j', orders.join(customers, { leftKey: [1], rightKey: [0], residual: (o) => o[0] !== 3 }));
      },
    ],
  ];
  for (const [what, build] of variants) {
    assert.throws(() => decodeCheckpoint(buildCircuit(build), bytes, 'x'), (error: unknown) => error instanceof DefiniteError && error.code === 'checkpoint_mismatch', what);
  }
  assert.throws(() => decodeCheckpoint(buildCircuit(everyOperator), bytes, 'x', 'v2'), (error: unknown) => error instanceof DefiniteError && error.code === 'checkpoint_mismatch', 'another version');
});

test('a flipped byte or a truncated checkpoint is a CorruptionError, and the circuit stays fresh', () => {
  const [changes] = fc.sample(changeSequence(everyInput, { maxSteps: 6 }), { seed: 7, numRuns: 1 });
  const steps = stepsOf(changes!);
  const circuit = buildCircuit(everyOperator);
  for (const step of steps) circuit.step(step);
  const bytes = encodeCheckpoint(circuit, { step: steps.length });
  const probe: Step = { orders: ZSet.inserts([[1, 1, 5], [2, null, 10]]), customers: ZSet.inserts([[1, 'north']]), m: ZSet.inserts([[1, 0.1, Decimal.parse('1.5'), 'a', true]]) };
  const freshOutputs = buildCircuit(everyOperator).step(probe);
  fc.assert(
    fc.property(fc.nat(bytes.length - 1), fc.integer({ min: 1, max: 255 }), fc.boolean(), (position, mask, truncate) => {
      const damaged = truncate ? bytes.slice(0, position) : bytes.slice();
      if (!truncate) damaged[position]! ^= mask;
      const fresh = buildCircuit(everyOperator);
      assert.throws(() => decodeCheckpoint(fresh, damaged, 'x'), (error: unknown) => error instanceof CorruptionError && error.file === 'x', `${truncate ? 'truncated to' : 'flipped byte'} ${position}`);
      assertSameOutputs(fresh.step(probe), freshOutputs, 'a circuit after a refused checkpoint');
    }),
    { numRuns: 200 },
  );
});
