/**
 * The naive reference evaluator: the oracle every incremental operator is checked against. It
 * computes each node's output by the definitions of spec.ts, from scratch, at every step:
 *
 *   relational node:  out[t] = Q(I(in)[t]) − Q(I(in)[t−1])     (Q over whole relations, Q(·)[−1] = ∅)
 *   integrate:        out[t] = Σ_{s≤t} in[s]      differentiate: out[t] = in[t] − in[t−1]
 *   delay:            out[t] = in[t−1]            (empty at t = 0)
 *
 * Invariants:
 * - Shares no code with `operators/` or `state.ts`: Q is nested loops (joins), full regrouping
 *   (aggregates) and a full sort (top-k) over consolidated Z-sets, slow and obviously right.
 * - A row is present when its weight is positive; linear nodes, joins, count and sum use every
 *   weight, the rest look at present rows only, each as many times as its weight.
 * - Every Z-set it returns is consolidated.
 */

import { canonicalInteger, compareValues, Decimal, rowsEqual, valuesEqual, type Row, type Value } from '../../core/index.ts';
import { totalOrder } from '../order.ts';
import type { AggregateSpec, CircuitDefinition, NodeDefinition, NodeSpec } from '../spec.ts';
import { ZSet } from '../zset.ts';

export type ReferenceInputs = Readonly<Record<string, ZSet>> | ReadonlyMap<string, ZSet>;

export interface ReferenceStep {
  /** Each output's delta at this step. */
  readonly deltas: Record<string, ZSet>;
  /** Each output's integral up to and including this step (for a relational node, Q of the integrated inputs). */
  readonly integrals: Record<string, ZSet>;
}

/** Every output's delta and integral at every step of `steps`, computed from scratch. */
export function evaluate(definition: CircuitDefinition, steps: readonly ReferenceInputs[]): ReferenceStep[] {
  const given = steps.map((inputs) => (inputs instanceof Map ? inputs : new Map(Object.entries(inputs))) as ReadonlyMap<string, ZSet>);
  for (const inputs of given) {
    for (const name of inputs.keys()) if (!definition.inputs.has(name)) throw new RangeError(`the circuit has no input named "${name}"`);
  }
  const arityOf = (id: number) => definition.nodes[id]!.arity;
  /** streams[id][t]: node id's delta at step t; integrals[id][t]: its integral. */
  const streams: ZSet[][] = [];
  const integrals: ZSet[][] = [];
  for (const node of definition.nodes) {
    const inputs = node.inputs.map((id) => streams[id]!);
    const spec = node.spec;
    let stream: ZSet[];
    let integral: ZSet[] | undefined;
    switch (spec.kind) {
      case 'input':
        stream = given.map((inputs) => (inputs.get(spec.name) ?? ZSet.empty).consolidate());
        break;
      case 'integrate':
        stream = runningSums(inputs[0]!);
        break;
      case 'differentiate':
        stream = inputs[0]!.map((delta, t) => delta.plus(t === 0 ? ZSet.empty : inputs[0]![t - 1]!.negate()).consolidate());
        break;
      case 'delay':
        stream = inputs[0]!.map((_delta, t) => (t === 0 ? ZSet.empty : inputs[0]![t - 1]!));
        break;
      default: {
        const accumulated = inputs.map(runningSums);
        integral = given.map((_inputs, t) => evaluateRelational(node, accumulated.map((input) => input[t]!), node.inputs.map(arityOf)));
        stream = integral.map((now, t) => now.plus(t === 0 ? ZSet.empty : integral![t - 1]!.negate()).consolidate());
      }
    }
    streams.push(stream);
    integrals.push(integral ?? runningSums(stream));
  }
  return given.map((_inputs, t) => {
    const deltas: Record<string, ZSet> = {};
    const sums: Record<string, ZSet> = {};
    for (const [name, id] of definition.outputs) {
      deltas[name] = streams[id]![t]!;
      sums[name] = integrals[id]![t]!;
    }
    return { deltas, integrals: sums };
  });
}

function runningSums(stream: readonly ZSet[]): ZSet[] {
  const sums: ZSet[] = [];
  let sum = ZSet.empty;
  for (const delta of stream) {
    sum = sum.plus(delta).consolidate();
    sums.push(sum);
  }
  return sums;
}

/**
 * Q of a relational node over whole (integrated) input relations, consolidated.
 * `inputArities` are the column counts of the node's inputs (outer joins pad with them).
 */
export function evaluateRelational(node: Pick<NodeDefinition, 'spec'>, inputs: readonly ZSet[], inputArities: readonly number[]): ZSet {
  const relations = inputs.map((input) => [...input.consolidate().entries()]);
  const spec: NodeSpec = node.spec;
  const first = relations[0]!;
  const out = new ZSet();
  switch (spec.kind) {
    case 'map':
      for (const [row, weight] of first) out.add(spec.map(row), weight);
      break;
    case 'filter':
      for (const [row, weight] of first) if (spec.predicate(row)) out.add(row, weight);
      break;
    case 'flatMap':
      for (const [row, weight] of first) for (const mapped of spec.flatMap(row)) out.add(mapped, weight);
      break;
    case 'project':
      for (const [row, weight] of first) out.add(spec.columns.map((column) => row[column]!), weight);
      break;
    case 'union':
      for (const relation of relations) for (const [row, weight] of relation) out.add(row, weight);
      break;
    case 'negate':
      for (const [row, weight] of first) out.add(row, -weight);
      break;
    case 'minus':
      for (const [row, weight] of first) out.add(row, weight);
      for (const [row, weight] of relations[1]!) out.add(row, -weight);
      break;
    case 'distinct':
      for (const [row, weight] of first) if (weight > 0) out.add(row, 1);
      break;
    case 'join': {
      const right = relations[1]!;
      const matches = (left: Row, other: Row) => keysMatch(left, spec.leftKey, other, spec.rightKey) && (!spec.residual || spec.residual(left, other));
      for (const [left, leftWeight] of first) {
        for (const [other, rightWeight] of right) if (matches(left, other)) out.add([...left, ...other], leftWeight * rightWeight);
      }
      if (spec.join === 'left' || spec.join === 'full') {
        const nulls = new Array<Value>(inputArities[1]!).fill(null);
        for (const [left, leftWeight] of first) {
          if (!right.some(([other, weight]) => weight > 0 && matches(left, other))) out.add([...left, ...nulls], leftWeight);
        }
      }
      if (spec.join === 'right' || spec.join === 'full') {
        const nulls = new Array<Value>(inputArities[0]!).fill(null);
        for (const [other, rightWeight] of right) {
          if (!first.some(([left, weight]) => weight > 0 && matches(left, other))) out.add([...nulls, ...other], rightWeight);
        }
      }
      break;
    }
    case 'semiJoin':
    case 'antiJoin': {
      const right = relations[1]!;
      for (const [left, leftWeight] of first) {
        const matched = right.some(([other, weight]) => weight > 0 && keysMatch(left, spec.leftKey, other, spec.rightKey) && (!spec.residual || spec.residual(left, other)));
        if (matched === (spec.kind === 'semiJoin')) out.add(left, leftWeight);
      }
      break;
    }
    case 'aggregate': {
      const groups = groupRows(first, spec.groupBy);
      if (spec.groupBy.length === 0 && groups.length === 0) groups.push({ key: [], rows: [] });
      for (const group of groups) {
        const count = group.rows.reduce((sum, [, weight]) => sum + weight, 0);
        if (spec.groupBy.length > 0 && count <= 0) continue;
        out.add([...group.key, ...spec.aggregates.map((aggregate) => aggregateValue(aggregate, group.rows))], 1);
      }
      break;
    }
    case 'topK': {
      const order = totalOrder(spec.orderBy);
      for (const group of groupRows(first, spec.groupBy)) {
        const sorted = present(group.rows).sort(order);
        for (const row of sorted.slice(spec.offset, spec.offset + spec.limit)) out.add(row, 1);
      }
      break;
    }
    case 'input':
    case 'integrate':
    case 'differentiate':
    case 'delay':
      throw new RangeError(`${spec.kind} is not a relational node; evaluate() runs it over the stream`);
  }
  return out.consolidate();
}

/** SQL `=` on every key column: a NULL on either side matches nothing. */
function keysMatch(left: Row, leftKey: readonly number[], right: Row, rightKey: readonly number[]): boolean {
  for (let i = 0; i < leftKey.length; i++) {
    const x = left[leftKey[i]!]!;
    const y = right[rightKey[i]!]!;
    if (x === null || y === null || !valuesEqual(x, y)) return false;
  }
  return true;
}

interface Group {
  key: Row;
  rows: Array<[Row, number]>;
}

/** GROUP BY: rows whose group-by columns are equal (NULLs equal to NULLs) share a group. */
function groupRows(relation: ReadonlyArray<[Row, number]>, groupBy: readonly number[]): Group[] {
  const groups: Group[] = [];
  for (const [row, weight] of relation) {
    const key = groupBy.map((column) => row[column]!);
    let group = groups.find((candidate) => rowsEqual(candidate.key, key));
    if (!group) {
      group = { key, rows: [] };
      groups.push(group);
    }
    group.rows.push([row, weight]);
  }
  return groups;
}

/** The present rows, each repeated as many times as its weight. */
function present(rows: ReadonlyArray<[Row, number]>): Row[] {
  const out: Row[] = [];
  for (const [row, weight] of rows) for (let copy = 0; copy < weight; copy++) out.push(row);
  return out;
}

function aggregateValue(spec: AggregateSpec, rows: ReadonlyArray<[Row, number]>): Value {
  switch (spec.kind) {
    case 'count': {
      let count = 0;
      for (const [row, weight] of rows) if (spec.column === undefined || row[spec.column] !== null) count += weight;
      return count;
    }
    case 'count_distinct': {
      const seen: Value[] = [];
      for (const row of present(rows)) {
        const value = row[spec.column]!;
        if (value !== null && !seen.some((other) => valuesEqual(other, value))) seen.push(value);
      }
      return seen.length;
    }
    case 'sum':
    case 'avg':
      return sumOrAverage(rows, spec.column, spec.kind === 'avg');
    case 'min':
    case 'max': {
      let best: Value = null;
      for (const row of present(rows)) {
        const value = row[spec.column]!;
        if (value === null) continue;
        if (best === null || (spec.kind === 'min' ? compareValues(value, best) < 0 : compareValues(value, best) > 0)) best = value;
      }
      return best;
    }
    case 'bool_and':
    case 'bool_or': {
      const values = present(rows)
        .map((row) => row[spec.column]!)
        .filter((value) => value !== null);
      if (values.length === 0) return null;
      return spec.kind === 'bool_and' ? values.every((value) => value === true) : values.some((value) => value === true);
    }
    case 'string_agg':
    case 'array_agg': {
      const order = totalOrder([...(spec.orderBy ?? []), { column: spec.column }]);
      let collected = present(rows).sort(order);
      if (spec.kind === 'string_agg') collected = collected.filter((row) => row[spec.column] !== null);
      if (collected.length === 0) return null;
      const values = collected.map((row) => row[spec.column]!);
      if (spec.kind === 'array_agg') return values;
      return values.map((value) => (typeof value === 'string' ? value : String(value))).join(spec.separator);
    }
  }
}

/**
 * sum and avg: integers exactly (bigint beyond 2^53), decimals exactly, and — when any present
 * value is a fractional or non-finite float — the exact sum of everything rounded once to the
 * nearest double. An integral double is an integer whatever its size (it equals the bigint of the
 * same value, so treating it otherwise would make the result depend on which one a delta carried).
 */
function sumOrAverage(rows: ReadonlyArray<[Row, number]>, column: number, average: boolean): Value {
  const values: Array<[Value, number]> = [];
  for (const [row, weight] of rows) if (row[column] !== null) values.push([row[column]!, weight]);
  const count = values.reduce((sum, [, weight]) => sum + weight, 0);
  if (count <= 0) return null;
  const presentValues = values.filter(([, weight]) => weight > 0).map(([value]) => value);
  const isFloat = (value: Value) => typeof value === 'number' && !Number.isInteger(value);
  if (presentValues.some(isFloat)) {
    let sum: number;
    const nan = presentValues.some((value) => Number.isNaN(value));
    const positiveInfinity = presentValues.includes(Infinity);
    const negativeInfinity = presentValues.includes(-Infinity);
    if (nan || (positiveInfinity && negativeInfinity)) sum = NaN;
    else if (positiveInfinity) sum = Infinity;
    else if (negativeInfinity) sum = -Infinity;
    else {
      let exact = new Decimal(0n, 0);
      for (const [value, weight] of values) if (Number.isFinite(value) || typeof value !== 'number') exact = exact.add(exactDecimal(value).times(weight));
      sum = Number(exact.toString());
    }
    return average ? sum / count : sum;
  }
  if (presentValues.some((value) => value instanceof Decimal) || average) {
    let total = new Decimal(0n, 0);
    for (const [value, weight] of values) total = total.add(exactDecimal(value).times(weight));
    return average ? total.divide(BigInt(count), Math.max(16, total.scale)) : total;
  }
  let total = 0n;
  for (const [value, weight] of values) total += BigInt(value as number | bigint) * BigInt(weight);
  return canonicalInteger(total);
}

/** A number (finite), bigint or Decimal as an exact Decimal. */
function exactDecimal(value: Value): Decimal {
  if (value instanceof Decimal) return value;
  if (typeof value === 'bigint') return Decimal.fromInteger(value);
  if (typeof value !== 'number') throw new TypeError(`sum and avg need numbers, not ${typeof value}`);
  if (Number.isInteger(value)) return Decimal.fromInteger(BigInt(value));
  // value × 2^k is exact for every k until it becomes an integer: value = m / 2^k = m × 5^k / 10^k.
  let scaled = value;
  let k = 0;
  while (!Number.isInteger(scaled)) {
    scaled *= 2;
    k++;
  }
  return new Decimal(BigInt(scaled) * 5n ** BigInt(k), k);
}

