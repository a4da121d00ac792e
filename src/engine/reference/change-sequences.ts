/**
 * Test support for the differential tests (`*.property.test.ts`): fast-check generators of change
 * sequences (inserts, deletes of earlier rows, updates, phantom deletes, duplicates, empty steps)
 * and a check that a circuit's every step matches the reference evaluator.
 *
 * Not exported from `reference/index.ts`: it imports fast-check, a development dependency.
 *
 * Invariants:
 * - A well-formed sequence never deletes more copies of a row than are present when the delete
 *   is applied (in generation order), so every prefix of it integrates to weights ≥ 0.
 * - Generation is deterministic in fast-check's choices, so a failing case shrinks and replays.
 */

import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Decimal, rowsEqual, type Row, type Value } from '../../core/index.ts';
import { CircuitBuilder, type Circuit } from '../circuit.ts';
import { ZSet } from '../zset.ts';
import { evaluate } from './evaluate.ts';

export interface Change {
  readonly input: string;
  readonly row: Row;
  readonly weight: number;
}

export type Step = Record<string, ZSet>;

export interface SequenceOptions {
  /** Whether to add phantom deletes: of any row, present or not (linear operators, joins, distinct, semi-joins, top-k). */
  phantoms?: boolean;
  maxSteps?: number;
  maxChangesPerStep?: number;
}

type Operation =
  | { kind: 'insert'; input: string; row: Row; copies: number }
  | { kind: 'delete'; input: string; pick: number; copies: number }
  | { kind: 'update'; input: string; pick: number; row: Row }
  | { kind: 'phantom'; input: string; row: Row; copies: number }
  | { kind: 'zero'; input: string; row: Row };

function operation(input: string, row: fc.Arbitrary<Row>, phantoms: boolean): fc.Arbitrary<Operation> {
  const copies = fc.integer({ min: 1, max: 3 });
  const pick = fc.nat(50);
  const choices: Array<fc.WeightedArbitrary<Operation>> = [
    { weight: 5, arbitrary: fc.record({ kind: fc.constant('insert' as const), input: fc.constant(input), row, copies }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('delete' as const), input: fc.constant(input), pick, copies }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('update' as const), input: fc.constant(input), pick, row }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('zero' as const), input: fc.constant(input), row }) },
  ];
  if (phantoms) choices.push({ weight: 1, arbitrary: fc.record({ kind: fc.constant('phantom' as const), input: fc.constant(input), row, copies: fc.integer({ min: 1, max: 2 }) }) });
  return fc.oneof(...choices);
}

/**
 * Steps of changes, each step's changes in the order they were generated. Deletes and updates
 * pick a present row (inserted earlier, in this step or before).
 */
export function changeSequence(inputs: Readonly<Record<string, fc.Arbitrary<Row>>>, options: SequenceOptions = {}): fc.Arbitrary<Change[][]> {
  const phantoms = options.phantoms ?? false;
  const operations = fc.oneof(...Object.entries(inputs).map(([name, row]) => operation(name, row, phantoms)));
  const step = fc.oneof({ weight: 1, arbitrary: fc.constant([] as Operation[]) }, { weight: 6, arbitrary: fc.array(operations, { maxLength: options.maxChangesPerStep ?? 5 }) });
  return fc.array(step, { minLength: 1, maxLength: options.maxSteps ?? 10 }).map((steps) => interpret(steps));
}

function interpret(steps: Operation[][]): Change[][] {
  /** The integrated weight of each row of each input. */
  const state = new Map<string, Array<[Row, number]>>();
  const apply = (input: string, row: Row, weight: number, out: Change[]) => {
    out.push({ input, row, weight });
    let rows = state.get(input);
    if (!rows) state.set(input, (rows = []));
    const entry = rows.find(([other]) => rowsEqual(other, row));
    if (entry) entry[1] += weight;
    else rows.push([row, weight]);
  };
  const presentRows = (input: string) => (state.get(input) ?? []).filter(([, weight]) => weight > 0);
  return steps.map((operations) => {
    const changes: Change[] = [];
    for (const op of operations) {
      switch (op.kind) {
        case 'insert':
          apply(op.input, op.row, op.copies, changes);
          break;
        case 'delete':
        case 'update': {
          const rows = presentRows(op.input);
          if (rows.length > 0) {
            const [row, weight] = rows[op.pick % rows.length]!;
            apply(op.input, row, -Math.min(weight, op.kind === 'delete' ? op.copies : 1), changes);
          }
          if (op.kind === 'update') apply(op.input, op.row, 1, changes);
          break;
        }
        case 'phantom':
          apply(op.input, op.row, -op.copies, changes);
          break;
        case 'zero':
          apply(op.input, op.row, 0, changes);
          break;
      }
    }
    return changes;
  });
}

/** Step inputs from changes: one Z-set per input that has changes, entries in change order (or reversed). */
export function stepsOf(changes: readonly (readonly Change[])[], reversed: readonly boolean[] = []): Step[] {
  return changes.map((step, t) => {
    const out: Step = {};
    const ordered = reversed[t] ? [...step].reverse() : step;
    for (const { input, row, weight } of ordered) (out[input] ??= new ZSet()).add(row, weight);
    return out;
  });
}

/** Change sequences as step inputs, some steps with their entries reversed (deletes before inserts). */
export function changeSteps(inputs: Readonly<Record<string, fc.Arbitrary<Row>>>, options: SequenceOptions = {}): fc.Arbitrary<Step[]> {
  return fc.tuple(changeSequence(inputs, options), fc.array(fc.boolean(), { maxLength: options.maxSteps ?? 10 })).map(([changes, reversed]) => stepsOf(changes, reversed));
}

// ---------------------------------------------------------------------------------------------
// Small value domains, so that keys collide.

export const keyValue: fc.Arbitrary<Value> = fc.oneof({ weight: 1, arbitrary: fc.constant(null) }, { weight: 5, arbitrary: fc.constantFrom<Value>(1, 2, 3, Decimal.parse('2.0')) });
export const textValue: fc.Arbitrary<Value> = fc.constantFrom<Value>(null, 'a', 'b', 'c', 'ab');
export const smallInteger: fc.Arbitrary<Value> = fc.oneof({ weight: 1, arbitrary: fc.constant(null) }, { weight: 6, arbitrary: fc.integer({ min: -3, max: 5 }) });
/** Values of several kinds, some equal across representations (0 and −0; 2, 2.0 and 2.00; 2^60 as a float and as a bigint; NaN). */
export const mixedValue: fc.Arbitrary<Value> = fc.constantFrom<Value>(null, 0, -0, NaN, 2, Decimal.parse('2.0'), Decimal.parse('2.00'), 1.5, Decimal.parse('1.5'), 2 ** 60, 2n ** 60n, 'a', true);
export const booleanValue: fc.Arbitrary<Value> = fc.constantFrom<Value>(null, true, false);

// ---------------------------------------------------------------------------------------------
// Checking a circuit against the reference.

export function formatValue(value: Value): string {
  if (value === null) return 'NULL';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'number') return Object.is(value, -0) ? '-0' : String(value);
  if (value instanceof Decimal) return `${value.toString()}m`;
  if (Array.isArray(value)) return `{${value.map(formatValue).join(', ')}}`;
  return String(value);
}

export function formatRow(row: Row): string {
  return `(${row.map(formatValue).join(', ')})`;
}

export function formatZSet(zset: ZSet): string {
  if (zset.isEmpty) return '{}';
  return `{ ${[...zset.sorted().entries()].map(([row, weight]) => `${formatRow(row)} ×${weight}`).join(', ')} }`;
}

export function formatSteps(steps: readonly Step[]): string {
  return steps
    .map((step, t) => {
      const inputs = Object.entries(step).map(([name, delta]) => `${name} ${formatZSet(delta)}`);
      return `  step ${t}: ${inputs.length === 0 ? '(empty)' : inputs.join('; ')}`;
    })
    .join('\n');
}

/** `actual − expected`, split into what only one side has. */
function difference(actual: ZSet, expected: ZSet): string {
  const diff = actual.plus(expected.negate()).consolidate();
  const extra = new ZSet();
  const missing = new ZSet();
  for (const [row, weight] of diff.entries()) (weight > 0 ? extra : missing).add(row, Math.abs(weight));
  return `engine has extra ${formatZSet(extra)}, lacks ${formatZSet(missing)}`;
}

/** Runs a circuit over steps and returns each step's outputs. */
export function runSteps(circuit: Circuit, steps: readonly Step[]): Array<Record<string, ZSet>> {
  return steps.map((step) => circuit.step(step));
}

export function buildCircuit(build: (builder: CircuitBuilder) => void): Circuit {
  const builder = new CircuitBuilder();
  build(builder);
  return builder.build();
}

/**
 * Runs the circuit `build` makes over `steps` and asserts that after every step each output's
 * delta is consolidated and equals the reference's, that its integral does too, and that the
 * step left its inputs as they were.
 */
export function assertMatchesReference(build: (builder: CircuitBuilder) => void, steps: readonly Step[]): void {
  const circuit = buildCircuit(build);
  const expected = evaluate(circuit.definition, steps);
  const integrals = new Map<string, ZSet>();
  for (let t = 0; t < steps.length; t++) {
    const before = Object.entries(steps[t]!).map(([name, delta]) => [name, delta, delta.rows.slice(), delta.weights.slice()] as const);
    const outputs = circuit.step(steps[t]!);
    for (const [name, delta, rows, weights] of before) {
      const unchanged = delta.rows.length === rows.length && delta.rows.every((row, i) => row === rows[i]) && delta.weights.every((weight, i) => weight === weights[i]);
      if (!unchanged) assert.fail(`step ${t}: the circuit mutated its input "${name}"`);
    }
    for (const name of circuit.definition.outputs.keys()) {
      const actual = outputs[name]!;
      const want = expected[t]!.deltas[name]!;
      const where = `step ${t}, output "${name}"`;
      const context = `\ninputs:\n${formatSteps(steps.slice(0, t + 1))}`;
      if (!actual.equals(want)) {
        assert.fail(`${where}: the engine's delta differs from the reference's\n  engine:    ${formatZSet(actual)}\n  reference: ${formatZSet(want)}\n  ${difference(actual, want)}${context}`);
      }
      if (actual.consolidate().length !== actual.length || actual.weights.includes(0)) assert.fail(`${where}: the engine's delta is not consolidated: ${formatZSet(actual)}${context}`);
      const integral = (integrals.get(name) ?? ZSet.empty).plus(actual).consolidate();
      integrals.set(name, integral);
      const wantIntegral = expected[t]!.integrals[name]!;
      if (!integral.equals(wantIntegral)) {
        assert.fail(`${where}: the integrated output differs from the reference's\n  engine:    ${formatZSet(integral)}\n  reference: ${formatZSet(wantIntegral)}\n  ${difference(integral, wantIntegral)}${context}`);
      }
    }
  }
}
