/**
 * Z-sets: rows with integer weights (+1 an insert, −1 a delete). A delta is a Z-set of changes.
 *
 * Invariants:
 * - `rows[i]` has weight `weights[i]`; the two arrays always have the same length.
 * - A Z-set may hold a row more than once and zero weights until it is consolidated;
 *   `consolidate()` returns one where each row appears once with a non-zero weight (in order of
 *   first appearance: sorting is work no consumer of a delta needs); `sorted()` also orders the
 *   rows by `compareRows`, so two equal Z-sets sort identically.
 * - Z-sets are values: operators never mutate a Z-set they were given.
 */

import { compareRows, hashRow, rowsEqual, type Row } from '../core/index.ts';

export class ZSet {
  readonly rows: Row[];
  readonly weights: number[];
  /** Each row's `hashRow`, when `consolidate` computed them (operators reuse them). */
  hashes: number[] | undefined;
  /**
   * Set when each row is known to appear once with a non-zero weight (by `consolidate`, or by an
   * operator whose output is so by construction), so consolidating again is skipped.
   */
  consolidated = false;

  /**
   * A Z-set over the given arrays, which it takes over without copying: the caller must not
   * change them (or the rows in them) afterwards.
   */
  constructor(rows: Row[] = [], weights: number[] = []) {
    if (rows.length !== weights.length) throw new RangeError(`a Z-set needs one weight per row (${rows.length} rows, ${weights.length} weights)`);
    this.rows = rows;
    this.weights = weights;
  }

  static readonly empty: ZSet = new ZSet();

  /** Marks this Z-set as consolidated (each row once, no zero weight) and returns it. */
  asConsolidated(): ZSet {
    this.consolidated = true;
    return this;
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
    this.hashes = undefined;
    this.consolidated = false;
    this.rows.push(row);
    this.weights.push(weight);
  }

  /** Appends all of another Z-set's entries, times a factor. */
  addAll(other: ZSet, factor = 1): void {
    this.hashes = undefined;
    this.consolidated = false;
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

  /**
   * Each row once with its net weight, zero weights dropped, in order of first appearance. The
   * result carries its rows' hashes (`hashes`) when it had to compute them.
   */
  consolidate(): ZSet {
    const length = this.rows.length;
    if (length === 0 || this.consolidated) return this;
    if (length === 1) return this.weights[0] === 0 ? new ZSet() : this;
    const rows: Row[] = [];
    const weights: number[] = [];
    const hashes: number[] = [];
    let cancelled = false;
    if (length <= 16) {
      // Small deltas (single-row updates): compare hashes pairwise instead of building a map.
      for (let i = 0; i < length; i++) {
        const weight = this.weights[i]!;
        if (weight === 0) continue;
        const row = this.rows[i]!;
        const hash = hashRow(row);
        let found = -1;
        for (let j = 0; j < hashes.length; j++) {
          if (hashes[j] === hash && rowsEqual(rows[j]!, row)) {
            found = j;
            break;
          }
        }
        if (found >= 0) {
          if ((weights[found]! += weight) === 0) cancelled = true;
          continue;
        }
        rows.push(row);
        weights.push(weight);
        hashes.push(hash);
      }
    } else {
      const buckets = new Map<number, number | number[]>();
      for (let i = 0; i < length; i++) {
        const weight = this.weights[i]!;
        if (weight === 0) continue;
        const row = this.rows[i]!;
        const hash = hashRow(row);
        const bucket = buckets.get(hash);
        let found = -1;
        if (typeof bucket === 'number') {
          if (rowsEqual(rows[bucket]!, row)) found = bucket;
        } else if (bucket !== undefined) {
          for (const slot of bucket) {
            if (rowsEqual(rows[slot]!, row)) {
              found = slot;
              break;
            }
          }
        }
        if (found >= 0) {
          if ((weights[found]! += weight) === 0) cancelled = true;
          continue;
        }
        if (bucket === undefined) buckets.set(hash, rows.length);
        else if (typeof bucket === 'number') buckets.set(hash, [bucket, rows.length]);
        else bucket.push(rows.length);
        rows.push(row);
        weights.push(weight);
        hashes.push(hash);
      }
    }
    let result: ZSet;
    if (!cancelled) result = new ZSet(rows, weights);
    else {
      result = new ZSet();
      const keptHashes: number[] = [];
      for (let i = 0; i < rows.length; i++) {
        if (weights[i] === 0) continue;
        result.add(rows[i]!, weights[i]!);
        keptHashes.push(hashes[i]!);
      }
      result.hashes = keptHashes;
      result.consolidated = true;
      return result;
    }
    result.hashes = hashes;
    result.consolidated = true;
    return result;
  }

  /**
   * The same entries with every delete (negative weight) before every insert, so that a consumer
   * applying changes one by one to a keyed store (delete the old row, insert the new) never drops
   * an update. Entries keep their relative order; a Z-set already in that order is returned as is.
   */
  deletesFirst(): ZSet {
    const { rows, weights } = this;
    let sawInsert = false;
    let ordered = true;
    for (let i = 0; i < weights.length; i++) {
      if (weights[i]! > 0) sawInsert = true;
      else if (sawInsert) {
        ordered = false;
        break;
      }
    }
    if (ordered) return this;
    const out = new ZSet();
    for (let i = 0; i < rows.length; i++) if (weights[i]! < 0) out.add(rows[i]!, weights[i]!);
    for (let i = 0; i < rows.length; i++) if (weights[i]! > 0) out.add(rows[i]!, weights[i]!);
    out.consolidated = this.consolidated;
    return out;
  }

  /** Consolidated and sorted by `compareRows`: one canonical form per Z-set (for display and tests). */
  sorted(): ZSet {
    const consolidated = this.consolidate();
    const order = consolidated.rows.map((_, i) => i).sort((a, b) => compareRows(consolidated.rows[a]!, consolidated.rows[b]!));
    return new ZSet(
      order.map((i) => consolidated.rows[i]!),
      order.map((i) => consolidated.weights[i]!),
    );
  }

  /** Whether two Z-sets are equal as Z-sets (their difference consolidates to nothing). */
  equals(other: ZSet): boolean {
    return this.plus(other.negate()).consolidate().isEmpty;
  }

  *entries(): IterableIterator<[Row, number]> {
    for (let i = 0; i < this.rows.length; i++) yield [this.rows[i]!, this.weights[i]!];
  }

}
