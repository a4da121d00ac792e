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
  /** The window before this step: its rows and how many times each counts. */
  beforeRows: Row[];
  beforeCounts: number[];
}

export class TopKOperator implements Operator {
  readonly #groupBy: readonly number[];
  readonly #limit: number;
  readonly #offset: number;
  readonly #compare: (a: Row, b: Row) => number;
  readonly #groups = new Arrangement<Group>();
  readonly #codec: GroupCodec<Group>;
  #step = 0;
  /** Scratch space for a group's window after the step. */
  readonly #afterRows: Row[] = [];
  readonly #afterCounts: number[] = [];

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
      restore: (reader) => ({ bag: bagCodec.restore(reader), touchedAt: -1, beforeRows: [], beforeCounts: [] }),
    };
  }

  step([delta]: readonly ZSet[]): ZSet {
    const step = ++this.#step;
    const { rows, weights } = delta!;
    const groupBy = this.#groupBy;
    const touched: Array<[Row, Group, number]> = [];
    const create = (): Group => ({ bag: new OrderedBag<Row>(this.#compare), touchedAt: -1, beforeRows: [], beforeCounts: [] });
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i]!;
      const weight = weights[i]!;
      if (weight === 0) continue;
      const hash = hashColumns(row, groupBy);
      const group = this.#groups.findOrCreate(hash, row, groupBy, create);
      if (group.touchedAt !== step) {
        group.touchedAt = step;
        group.bag.windowInto(this.#offset, this.#limit, group.beforeRows, group.beforeCounts);
        touched.push([row, group, hash]);
      }
      group.bag.add(row, weight);
    }
    const out = new ZSet();
    const afterRows = this.#afterRows;
    const afterCounts = this.#afterCounts;
    for (const [row, group, hash] of touched) {
      group.bag.windowInto(this.#offset, this.#limit, afterRows, afterCounts);
      this.#diff(group.beforeRows, group.beforeCounts, afterRows, afterCounts, out);
      group.beforeRows.length = 0;
      group.beforeCounts.length = 0;
      if (group.bag.length === 0) this.#groups.delete(hash, row, groupBy);
    }
    afterRows.length = 0;
    // The window diff emits each row once with a non-zero change; groups hold disjoint rows.
    return out.asConsolidated();
  }

  /** Emits after − before, walking the two sorted windows together. */
  #diff(beforeRows: Row[], beforeCounts: number[], afterRows: Row[], afterCounts: number[], out: ZSet): void {
    let i = 0;
    let j = 0;
    while (i < beforeRows.length || j < afterRows.length) {
      const order = i >= beforeRows.length ? 1 : j >= afterRows.length ? -1 : beforeRows[i] === afterRows[j] ? 0 : this.#compare(beforeRows[i]!, afterRows[j]!);
      if (order < 0) {
        out.add(beforeRows[i]!, -beforeCounts[i]!);
        i++;
      } else if (order > 0) {
        out.add(afterRows[j]!, afterCounts[j]!);
        j++;
      } else {
        const change = afterCounts[j]! - beforeCounts[i]!;
        if (change !== 0) out.add(afterRows[j]!, change);
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
