/**
 * Z-sets: rows with integer weights (+1 an insert, −1 a delete). A delta is a Z-set of changes.
 *
 * Invariants:
 * - `rows[i]` has weight `weights[i]`; the two arrays always have the same length.
 * - A Z-set may hold a row more than once and zero weights until it is consolidated;
 *   `consolidate()` returns one where each row appears once with a non-zero weight, in a
 *   deterministic order (sorted by `compareRows`), so two equal Z-sets consolidate identically.
 * - Z-sets are values: operators never mutate a Z-set they were given.
 */

import { compareRows, hashRow, rowsEqual, type Row } from '../core/index.ts';

export class ZSet {
  readonly rows: Row[];
  readonly weights: number[];

  constructor(rows: Row[] = [], weights: number[] = []) {
    if (rows.length !== weights.length) throw new RangeError(`a Z-set needs one weight per row (${rows.length} rows, ${weights.length} weights)`);
    this.rows = rows;
    this.weights = weights;
  }

  static readonly empty: ZSet = new ZSet();

  /** A Z-set from `[row, weight]` pairs. */
  static of(entries: Iterable<readonly [Row, number]>): ZSet {
    const zset = new ZSet();
    for (const [row, weight] of entries) zset.add(row, weight);
    return zset;
  }

  /** Inserts (weight +1 each). */
  static inserts(rows: Iterable<Row>): ZSet {
    const list = [...rows];
    return new ZSet(list, list.map(() => 1));
  }

  /** Deletes (weight −1 each). */
  static deletes(rows: Iterable<Row>): ZSet {
    const list = [...rows];
    return new ZSet(list, list.map(() => -1));
  }

  get length(): number {
    return this.rows.length;
  }

  get isEmpty(): boolean {
    return this.rows.length === 0;
  }

  add(row: Row, weight: number): void {
    this.rows.push(row);
    this.weights.push(weight);
  }

  /** Appends all of another Z-set's entries, times a factor. */
  addAll(other: ZSet, factor = 1): void {
    const { rows, weights } = other;
    for (let i = 0; i < rows.length; i++) {
      this.rows.push(rows[i]!);
      this.weights.push(weights[i]! * factor);
    }
  }

  negate(): ZSet {
    return new ZSet(this.rows.slice(), this.weights.map((weight) => -weight));
  }

  /** The sum of two Z-sets (unconsolidated). */
  plus(other: ZSet): ZSet {
    if (other.isEmpty) return this;
    if (this.isEmpty) return other;
    const sum = new ZSet(this.rows.slice(), this.weights.slice());
    sum.addAll(other);
    return sum;
  }

  /** The sum of weights: the net number of rows. */
  count(): number {
    let total = 0;
    for (const weight of this.weights) total += weight;
    return total;
  }

  /** Each row once with its net weight, zero weights dropped, sorted by `compareRows`. */
  consolidate(): ZSet {
    const length = this.rows.length;
    if (length === 0) return this;
    const buckets = new Map<number, number | number[]>();
    const rows: Row[] = [];
    const weights: number[] = [];
    for (let i = 0; i < length; i++) {
      const row = this.rows[i]!;
      const weight = this.weights[i]!;
      if (weight === 0) continue;
      const hash = hashRow(row);
      const bucket = buckets.get(hash);
      if (bucket === undefined) {
        buckets.set(hash, rows.length);
        rows.push(row);
        weights.push(weight);
        continue;
      }
      const slots = typeof bucket === 'number' ? [bucket] : bucket;
      let found = false;
      for (const slot of slots) {
        if (rowsEqual(rows[slot]!, row)) {
          weights[slot]! += weight;
          found = true;
          break;
        }
      }
      if (!found) {
        slots.push(rows.length);
        if (typeof bucket === 'number') buckets.set(hash, slots);
        rows.push(row);
        weights.push(weight);
      }
    }
    const order: number[] = [];
    for (let i = 0; i < rows.length; i++) if (weights[i] !== 0) order.push(i);
    order.sort((a, b) => compareRows(rows[a]!, rows[b]!));
    return new ZSet(
      order.map((i) => rows[i]!),
      order.map((i) => weights[i]!),
    );
  }

  /** Whether two Z-sets are equal as Z-sets (after consolidation). */
  equals(other: ZSet): boolean {
    const a = this.consolidate();
    const b = other.consolidate();
    if (a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (a.weights[i] !== b.weights[i] || !rowsEqual(a.rows[i]!, b.rows[i]!)) return false;
    return true;
  }

  *entries(): IterableIterator<[Row, number]> {
    for (let i = 0; i < this.rows.length; i++) yield [this.rows[i]!, this.weights[i]!];
  }

  /** The rows of a consolidated Z-set with positive weights, each repeated weight times. */
  toMultiset(): Row[] {
    const out: Row[] = [];
    const consolidated = this.consolidate();
    for (let i = 0; i < consolidated.length; i++) for (let w = 0; w < consolidated.weights[i]!; w++) out.push(consolidated.rows[i]!);
    return out;
  }
}
