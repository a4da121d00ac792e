/**
 * Group-by aggregation.
 *
 *   Δ(γ_k,f(a)) = Σ over groups g touched by Δa of  [g, f(I(a)_g)] − [g, f(I(a)_g − Δa_g)]
 *
 * Each group keeps accumulators (linear ones O(1), min/max and friends a sorted multiset), so a
 * change costs O(log group) at most; only groups the delta touches emit, and a group whose result
 * row did not change emits nothing. A group exists while its count(*) is positive; with no
 * group-by columns the one global group always exists (SQL: `SELECT count(*) FROM empty` is 0).
 */

import { type ByteReader, type ByteWriter, hashColumns, rowsEqual, type Row, type Value } from '../../core/index.ts';
import type { Operator } from '../operator.ts';
import type { AggregateSpec } from '../spec.ts';
import { Arrangement, type GroupCodec } from '../state.ts';
import { ZSet } from '../zset.ts';
import { createAccumulator, type Accumulator } from './accumulators.ts';

class Group {
  /** The group-by values. */
  readonly key: Row;
  /** count(*): the group's net number of rows. */
  count = 0;
  readonly accumulators: Accumulator[];
  /** The step in which this group was last touched, its result row before that step, and its key hash. */
  touchedAt = -1;
  before: Row | undefined;
  hash = 0;
  constructor(key: Row, accumulators: Accumulator[]) {
    this.key = key;
    this.accumulators = accumulators;
  }
}

export class AggregateOperator implements Operator {
  readonly #groupBy: readonly number[];
  readonly #specs: readonly AggregateSpec[];
  readonly #groups = new Arrangement<Group>();
  readonly #global: boolean;
  #step = 0;
  readonly #codec: GroupCodec<Group>;

  constructor(groupBy: readonly number[], aggregates: readonly AggregateSpec[]) {
    this.#groupBy = groupBy;
    this.#specs = aggregates;
    this.#global = groupBy.length === 0;
    this.#codec = {
      save: (group, writer) => {
        writer.signed(group.count);
        for (const accumulator of group.accumulators) accumulator.save(writer);
      },
      restore: (reader, key) => {
        const group = this.#newGroup(key ?? []);
        group.count = reader.signed();
        for (const accumulator of group.accumulators) accumulator.restore(reader);
        return group;
      },
    };
  }

  readonly #newGroup = (key: Row): Group => new Group(key, this.#specs.map(createAccumulator));

  #result(group: Group): Row | undefined {
    if (group.count <= 0 && !this.#global) return undefined;
    const { key, accumulators } = group;
    const row = new Array<Value>(key.length + accumulators.length);
    for (let i = 0; i < key.length; i++) row[i] = key[i]!;
    for (let i = 0; i < accumulators.length; i++) row[key.length + i] = accumulators[i]!.result();
    return row;
  }

  step([delta]: readonly ZSet[]): ZSet {
    const step = ++this.#step;
    const { rows, weights } = delta!;
    const groupBy = this.#groupBy;
    const touched: Group[] = [];
    const create = this.#newGroup;
    if (this.#global && step === 1) {
      // The global group exists from the first step, even over no rows, and had no row before it.
      const group = this.#groups.findOrCreate(0, [], [], create);
      group.touchedAt = step;
      group.before = undefined;
      touched.push(group);
    }
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i]!;
      const weight = weights[i]!;
      if (weight === 0) continue;
      const hash = this.#global ? 0 : hashColumns(row, groupBy);
      const group = this.#groups.findOrCreate(hash, row, groupBy, create);
      if (group.touchedAt !== step) {
        group.touchedAt = step;
        group.before = this.#result(group);
        group.hash = hash;
        touched.push(group);
      }
      group.count += weight;
      const accumulators = group.accumulators;
      for (let a = 0; a < accumulators.length; a++) accumulators[a]!.add(row, weight);
    }
    const out = new ZSet();
    for (let t = 0; t < touched.length; t++) {
      const group = touched[t]!;
      const after = this.#result(group);
      const before = group.before;
      group.before = undefined;
      if (before && after && rowsEqual(before, after)) continue;
      if (before) out.add(before, -1);
      if (after) out.add(after, 1);
      if (group.count === 0 && !this.#global && group.accumulators.every((accumulator) => accumulator.empty())) this.#groups.deleteKey(group.hash, group.key);
    }
    // Each group emits at most its old and its new row, which differ; rows of different groups differ in their keys.
    return out.asConsolidated();
  }

  save(writer: ByteWriter): void {
    writer.varint(this.#step);
    this.#groups.save(writer, this.#codec);
  }

  restore(reader: ByteReader): void {
    this.#step = reader.varint();
    this.#groups.restore(reader, this.#codec);
  }

  stateSize(): number {
    return this.#groups.size;
  }
}


