/**
 * Top-k per group: ORDER BY … LIMIT … OFFSET within each group.
 *
 *   Δ(topk a)_g = window(I(a)_g) − window(z⁻¹I(a)_g)   for the groups g touched by Δa
 *
 * Each group keeps its rows sorted (ties broken by the whole row, so the window depends only on
 * the multiset); a change costs O(log n) to place plus O(offset + limit) to compare windows, and
 * only rows entering or leaving the window are emitted.
 */

import type { ByteReader, ByteWriter } from '../../core/index.ts';
import { hashColumns, type Row } from '../../core/index.ts';
import type { Operator } from '../operator.ts';
import { totalOrder } from '../order.ts';
import type { SortKey } from '../spec.ts';
import { Arrangement, OrderedBag, rowItem, type GroupCodec } from '../state.ts';
import { ZSet } from '../zset.ts';

interface Group {
  bag: OrderedBag<Row>;
  touchedAt: number;
  before: Array<[Row, number]>;
}

export class TopKOperator implements Operator {
  readonly #groupBy: readonly number[];
  readonly #limit: number;
  readonly #offset: number;
  readonly #compare: (a: Row, b: Row) => number;
  readonly #groups = new Arrangement<Group>();
  readonly #codec: GroupCodec<Group>;
  #step = 0;

  constructor(groupBy: readonly number[], orderBy: readonly SortKey[], limit: number, offset: number) {
    if (!Number.isSafeInteger(limit) || limit < 0) throw new RangeError(`LIMIT must be a non-negative integer, not ${limit}`);
    if (!Number.isSafeInteger(offset) || offset < 0) throw new RangeError(`OFFSET must be a non-negative integer, not ${offset}`);
    this.#groupBy = groupBy;
    this.#limit = limit;
    this.#offset = offset;
    this.#compare = totalOrder(orderBy);
    const bagCodec = OrderedBag.codecFor(this.#compare, rowItem);
    this.#codec = {
      save: (group, writer) => bagCodec.save(group.bag, writer),
      restore: (reader) => ({ bag: bagCodec.restore(reader), touchedAt: -1, before: [] }),
    };
  }

  step([delta]: readonly ZSet[]): ZSet {
    const step = ++this.#step;
    const { rows, weights } = delta!;
    const groupBy = this.#groupBy;
    const touched: Array<[Row, Group, number]> = [];
    const create = (): Group => ({ bag: new OrderedBag<Row>(this.#compare), touchedAt: -1, before: [] });
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i]!;
      const weight = weights[i]!;
      if (weight === 0) continue;
      const hash = hashColumns(row, groupBy);
      const group = this.#groups.findOrCreate(hash, row, groupBy, create);
      if (group.touchedAt !== step) {
        group.touchedAt = step;
        group.before = group.bag.window(this.#offset, this.#limit);
        touched.push([row, group, hash]);
      }
      group.bag.add(row, weight);
    }
    const out = new ZSet();
    for (const [row, group, hash] of touched) {
      this.#diff(group.before, group.bag.window(this.#offset, this.#limit), out);
      group.before = [];
      if (group.bag.length === 0) this.#groups.delete(hash, row, groupBy);
    }
    return out;
  }

  /** Emits after − before, walking the two sorted windows together. */
  #diff(before: Array<[Row, number]>, after: Array<[Row, number]>, out: ZSet): void {
    let i = 0;
    let j = 0;
    while (i < before.length || j < after.length) {
      const order = i >= before.length ? 1 : j >= after.length ? -1 : this.#compare(before[i]![0], after[j]![0]);
      if (order < 0) {
        out.add(before[i]![0], -before[i]![1]);
        i++;
      } else if (order > 0) {
        out.add(after[j]![0], after[j]![1]);
        j++;
      } else {
        const change = after[j]![1] - before[i]![1];
        if (change !== 0) out.add(after[j]![0], change);
        i++;
        j++;
      }
    }
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
    let rows = 0;
    for (const [, group] of this.#groups.entries()) rows += group.bag.length;
    return rows;
  }
}
