/**
 * Equi-joins — inner, left, right and full outer — with an optional residual predicate.
 *
 *   Δ(a⋈b) = Δa⋈I(b) + I(a)⋈Δb + Δa⋈Δb = Δa⋈z⁻¹(I(b)) + I(a)⋈Δb      (bilinear; I = arrangements)
 *   outer: + pad(I(a), I(b)) − pad(z⁻¹I(a), z⁻¹I(b)) over the keys the step touches, where
 *   pad lists each row of one side that matches no present row of the other, with NULLs.
 *
 * A row whose key has a NULL matches nothing: it is padded at once (outer) or dropped (inner) and
 * never kept in state. Left padding is linear in a while b is fixed, so a left delta row whose key
 * b does not change this step is padded (or not) directly; keys where b changes are recomputed
 * before and after the step (symmetrically for right padding). Inner joins do no padding work.
 */

import { type ByteReader, type ByteWriter, hashColumns, type Row, type Value } from '../../core/index.ts';
import type { Operator } from '../operator.ts';
import type { JoinKind } from '../spec.ts';
import { Arrangement, JoinState, RowBag } from '../state.ts';
import { ZSet } from '../zset.ts';

export type Residual = (left: Row, right: Row) => boolean;

export function hasNullIn(row: Row, columns: readonly number[]): boolean {
  for (let i = 0; i < columns.length; i++) if (row[columns[i]!] === null) return true;
  return false;
}

/** `left` then `right` in one new row (faster than concat on the hot path). */
function joinRows(left: Row, right: Row): Row {
  const leftLength = left.length;
  const rightLength = right.length;
  const row = new Array<Value>(leftLength + rightLength);
  for (let i = 0; i < leftLength; i++) row[i] = left[i]!;
  for (let i = 0; i < rightLength; i++) row[leftLength + i] = right[i]!;
  return row;
}

/** Whether `row` matches some present row of `other` (with the residual, if any). */
export function matchesIn(row: Row, other: RowBag | undefined, residual: Residual | undefined): boolean {
  if (!other || other.positive === 0) return false;
  if (!residual) return true;
  const { rows, weights } = other;
  for (let i = 0; i < rows.length; i++) if (weights[i]! > 0 && residual(row, rows[i]!)) return true;
  return false;
}

/** A set of keys (tuples of key values), found by hash and confirmed by value. */
export class KeySet {
  /** The empty set, shared by steps that need no recomputation (no allocation on the hot path). */
  static readonly none: KeySet = new KeySet();
  readonly #keys = new Arrangement<Row>();
  /** Each key with its hash, in insertion order. */
  readonly list: Array<[number, Row]> = [];

  addAll(delta: ZSet, columns: readonly number[]): void {
    for (const row of delta.rows) {
      if (hasNullIn(row, columns)) continue;
      const hash = hashColumns(row, columns);
      this.#keys.findOrCreate(hash, row, columns, (key) => {
        this.list.push([hash, key]);
        return key;
      });
    }
  }

  has(hash: number, row: Row, columns: readonly number[]): boolean {
    return this.list.length > 0 && this.#keys.find(hash, row, columns) !== undefined;
  }
}

export class JoinOperator implements Operator {
  readonly #padLeft: boolean;
  readonly #padRight: boolean;
  readonly #leftKey: readonly number[];
  readonly #rightKey: readonly number[];
  readonly #residual: Residual | undefined;
  readonly #flipped: Residual | undefined;
  readonly #leftNulls: Value[];
  readonly #rightNulls: Value[];
  readonly #state = new JoinState();

  constructor(kind: JoinKind, leftKey: readonly number[], rightKey: readonly number[], leftArity: number, rightArity: number, residual?: Residual) {
    if (leftKey.length !== rightKey.length) throw new RangeError(`a join needs as many left key columns as right ones (${leftKey.length} and ${rightKey.length})`);
    this.#padLeft = kind === 'left' || kind === 'full';
    this.#padRight = kind === 'right' || kind === 'full';
    this.#leftKey = leftKey;
    this.#rightKey = rightKey;
    this.#residual = residual;
    this.#flipped = residual ? (right, left) => residual(left, right) : undefined;
    this.#leftNulls = new Array<Value>(leftArity).fill(null);
    this.#rightNulls = new Array<Value>(rightArity).fill(null);
  }

  step([left, right]: readonly ZSet[]): ZSet {
    const out = new ZSet();
    // Keys whose padding is recomputed: where the other side changes this step.
    const needed = (this.#padLeft && !right!.isEmpty) || (this.#padRight && !left!.isEmpty);
    const recompute = needed ? new KeySet() : KeySet.none;
    if (needed) {
      if (this.#padLeft) recompute.addAll(right!, this.#rightKey);
      if (this.#padRight) recompute.addAll(left!, this.#leftKey);
    }
    for (const [hash, key] of recompute.list) this.#pad(hash, key, -1, out);
    this.#applyLeft(left!, out, recompute);
    this.#applyRight(right!, out, recompute);
    for (const [hash, key] of recompute.list) this.#pad(hash, key, 1, out);
    return out;
  }

  /** Emits, with `sign`, the padded rows of one key on each padded side. */
  #pad(hash: number, key: Row, sign: number, out: ZSet): void {
    const group = this.#state.findKey(hash, key);
    const leftBag = group?.left;
    const rightBag = group?.right;
    if (this.#padLeft && leftBag) {
      for (let i = 0; i < leftBag.rows.length; i++) {
        const row = leftBag.rows[i]!;
        if (!matchesIn(row, rightBag, this.#residual)) out.add(joinRows(row, this.#rightNulls), sign * leftBag.weights[i]!);
      }
    }
    if (this.#padRight && rightBag) {
      for (let i = 0; i < rightBag.rows.length; i++) {
        const row = rightBag.rows[i]!;
        if (!matchesIn(row, leftBag, this.#flipped)) out.add(joinRows(this.#leftNulls, row), sign * rightBag.weights[i]!);
      }
    }
  }

  /** Δa ⋈ z⁻¹I(b), then Δa into I(a). */
  #applyLeft(delta: ZSet, out: ZSet, recompute: KeySet): void {
    const { rows, weights } = delta;
    const key = this.#leftKey;
    const residual = this.#residual;
    const padLeft = this.#padLeft;
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i]!;
      const weight = weights[i]!;
      if (weight === 0) continue;
      if (hasNullIn(row, key)) {
        if (padLeft) out.add(joinRows(row, this.#rightNulls), weight);
        continue;
      }
      const hash = hashColumns(row, key);
      const group = this.#state.findOrCreate(hash, row, key);
      const other = group.right;
      if (other) {
        const otherRows = other.rows;
        const otherWeights = other.weights;
        for (let j = 0; j < otherRows.length; j++) {
          const otherRow = otherRows[j]!;
          if (residual && !residual(row, otherRow)) continue;
          out.add(joinRows(row, otherRow), weight * otherWeights[j]!);
        }
      }
      if (padLeft && !recompute.has(hash, row, key) && !matchesIn(row, other, residual)) out.add(joinRows(row, this.#rightNulls), weight);
      this.#state.addLeft(group, hash, row, key, weight);
    }
  }

  /** I(a) ⋈ Δb (I(a) now includes Δa), then Δb into I(b). */
  #applyRight(delta: ZSet, out: ZSet, recompute: KeySet): void {
    const { rows, weights } = delta;
    const key = this.#rightKey;
    const residual = this.#residual;
    const padRight = this.#padRight;
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i]!;
      const weight = weights[i]!;
      if (weight === 0) continue;
      if (hasNullIn(row, key)) {
        if (padRight) out.add(joinRows(this.#leftNulls, row), weight);
        continue;
      }
      const hash = hashColumns(row, key);
      const group = this.#state.findOrCreate(hash, row, key);
      const other = group.left;
      if (other) {
        const otherRows = other.rows;
        const otherWeights = other.weights;
        for (let j = 0; j < otherRows.length; j++) {
          const otherRow = otherRows[j]!;
          if (residual && !residual(otherRow, row)) continue;
          out.add(joinRows(otherRow, row), otherWeights[j]! * weight);
        }
      }
      if (padRight && !recompute.has(hash, row, key) && !matchesIn(row, other, this.#flipped)) out.add(joinRows(this.#leftNulls, row), weight);
      this.#state.addRight(group, hash, row, key, weight);
    }
  }

  save(writer: ByteWriter): void {
    this.#state.save(writer);
  }

  restore(reader: ByteReader): void {
    this.#state.restore(reader);
  }

  stateSize(): number {
    return this.#state.rows();
  }
}
