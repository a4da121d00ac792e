/**
 * Top-k per group: ORDER BY … LIMIT … OFFSET within each group.
 *
 *   Δ(topk a)_g = window(I(a)_g) − window(z⁻¹I(a)_g)   for the groups g touched by Δa
 *
 * Each group keeps its rows sorted (ties broken by the whole row, so the window depends only on
 * the multiset); a change costs O(log n) to place plus O(offset + limit) to compare windows, and
 * only rows entering or leaving the window are emitted. A group that fits in its window before and
 * after the step (no offset) needs no windows: its output is the change of each touched row.
 */

import { type ByteReader, type ByteWriter, hashColumns, type Row } from '../../core/index.ts';
import type { Operator } from '../operator.ts';
import { totalOrder } from '../order.ts';
import type { SortKey } from '../spec.ts';
import { Arrangement, OrderedBag, rowItem, type GroupCodec } from '../state.ts';
import { ZSet } from '../zset.ts';

interface Group {
  bag: OrderedBag<Row>;
  touchedAt: number;
  /** While touched in a step: its row hash, its size before the step, its first and last change. */
  hash: number;
  sizeBefore: number;
  first: number;
  last: number;
  changes: number;
  /** Its window before the step, captured once it has many changes in the step (see step). */
  beforeRows: Row[] | undefined;
  beforeCounts: number[] | undefined;
}

/** Changes to one group in one step past which its window before the step is captured. */
const CAPTURE_AFTER = 8;

export class TopKOperator implements Operator {
  readonly #groupBy: readonly number[];
  readonly #limit: number;
  readonly #offset: number;
  readonly #compare: (a: Row, b: Row) => number;
  readonly #groups = new Arrangement<Group>();
  readonly #codec: GroupCodec<Group>;
  #step = 0;
  /** Scratch space for a group's window after and before the step. */
  readonly #afterRows: Row[] = [];
  readonly #afterCounts: number[] = [];
  readonly #beforeRows: Row[] = [];
  readonly #beforeCounts: number[] = [];
  /** This step's changes, as linked lists per group: each row with its weight before and after. */
  readonly #changeRows: Row[] = [];
  readonly #changeBefore: number[] = [];
  readonly #changeAfter: number[] = [];
  readonly #changeNext: number[] = [];

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
      restore: (reader) => ({ bag: bagCodec.restore(reader), touchedAt: -1, hash: 0, sizeBefore: 0, first: -1, last: -1, changes: 0, beforeRows: undefined, beforeCounts: undefined }),
    };
  }

  step([delta]: readonly ZSet[]): ZSet {
    const step = ++this.#step;
    // A row may appear more than once in the delta: its changes then chain (each before is the
    // previous after), so the sum of its per-change differences telescopes to its net change.
    const { rows, weights } = delta!;
    const groupBy = this.#groupBy;
    const touched: Group[] = [];
    const touchedRows: Row[] = [];
    const compare = this.#compare;
    const create = (): Group => ({ bag: new OrderedBag<Row>(compare), touchedAt: -1, hash: 0, sizeBefore: 0, first: -1, last: -1, changes: 0, beforeRows: undefined, beforeCounts: undefined });
    const changeRows = this.#changeRows;
    const changeBefore = this.#changeBefore;
    const changeAfter = this.#changeAfter;
    const changeNext = this.#changeNext;
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i]!;
      const weight = weights[i]!;
      if (weight === 0) continue;
      const hash = hashColumns(row, groupBy);
      const group = this.#groups.findOrCreate(hash, row, groupBy, create);
      const change = changeRows.length;
      if (group.touchedAt !== step) {
        group.touchedAt = step;
        group.hash = hash;
        group.sizeBefore = group.bag.positiveTotal;
        group.first = change;
        group.changes = 0;
        touched.push(group);
        touchedRows.push(row);
      } else changeNext[group.last] = change;
      group.last = change;
      group.changes++;
      const before = group.bag.add(row, weight);
      changeRows.push(row);
      changeBefore.push(before);
      changeAfter.push(before + weight);
      changeNext.push(-1);
      // A group changed many times in one step (being loaded) has its window before the step
      // captured now, at a bounded cost, instead of undoing all its changes at the end.
      if (group.changes === CAPTURE_AFTER && group.sizeBefore > 0) {
        group.beforeRows = [];
        group.beforeCounts = [];
        this.#windowBefore(group, group.beforeRows, group.beforeCounts);
      }
    }
    const out = new ZSet();
    const limit = this.#limit;
    const offset = this.#offset;
    for (let t = 0; t < touched.length; t++) {
      const group = touched[t]!;
      // (A group changed many times in the step, like one being loaded, is cheaper by windows.)
      if (offset === 0 && group.sizeBefore <= limit && group.bag.positiveTotal <= limit && group.changes <= 4) {
        // The whole group is its window before and after: emit the change of each present count,
        // once per row (a row changed twice in the step has its changes summed).
        if (changeNext[group.first]! < 0) {
          const c = group.first;
          const change = Math.max(changeAfter[c]!, 0) - Math.max(changeBefore[c]!, 0);
          if (change !== 0) out.add(changeRows[c]!, change);
        } else {
          const netRows: Row[] = [];
          const netChanges: number[] = [];
          for (let c = group.first; c >= 0; c = changeNext[c]!) {
            const change = Math.max(changeAfter[c]!, 0) - Math.max(changeBefore[c]!, 0);
            const row = changeRows[c]!;
            let k = 0;
            while (k < netRows.length && compare(netRows[k]!, row) !== 0) k++;
            if (k === netRows.length) {
              netRows.push(row);
              netChanges.push(change);
            } else netChanges[k]! += change;
          }
          for (let k = 0; k < netRows.length; k++) if (netChanges[k] !== 0) out.add(netRows[k]!, netChanges[k]!);
        }
      } else {
        const bag = group.bag;
        bag.windowInto(offset, limit, this.#afterRows, this.#afterCounts);
        // The window before the step: empty for a new group, captured for a much-changed one, else
        // read by undoing this step's few changes.
        let beforeRows = this.#beforeRows;
        let beforeCounts = this.#beforeCounts;
        if (group.sizeBefore === 0) beforeRows.length = beforeCounts.length = 0;
        else if (group.beforeRows) {
          beforeRows = group.beforeRows;
          beforeCounts = group.beforeCounts!;
        } else this.#windowBefore(group, beforeRows, beforeCounts);
        group.beforeRows = group.beforeCounts = undefined;
        this.#diff(beforeRows, beforeCounts, this.#afterRows, this.#afterCounts, out);
      }
      if (group.bag.length === 0) this.#groups.delete(group.hash, touchedRows[t]!, groupBy);
    }
    this.#afterRows.length = 0;
    this.#beforeRows.length = 0;
    changeRows.length = changeBefore.length = changeAfter.length = changeNext.length = 0;
    // Each row is emitted once with a non-zero change; groups hold disjoint rows.
    return out.asConsolidated();
  }

  /** The group's window as it was before this step: its changes so far undone, read, and redone. */
  #windowBefore(group: Group, rows: Row[], counts: number[]): void {
    const changeRows = this.#changeRows;
    const changeBefore = this.#changeBefore;
    const changeAfter = this.#changeAfter;
    const order: number[] = [];
    for (let c = group.first; c >= 0; c = this.#changeNext[c]!) order.push(c);
    for (let k = order.length - 1; k >= 0; k--) group.bag.add(changeRows[order[k]!]!, changeBefore[order[k]!]! - changeAfter[order[k]!]!);
    group.bag.windowInto(this.#offset, this.#limit, rows, counts);
    for (const c of order) group.bag.add(changeRows[c]!, changeAfter[c]! - changeBefore[c]!);
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
