/**
 * Semi-join (EXISTS, IN) and anti-join (NOT EXISTS): the left rows that do, or do not, match a
 * present right row on the key (and the residual predicate, if any), with the left weights.
 *
 *   Δ(a ⋉ b) = Σ over keys k:  Δa_k·[k matched by z⁻¹I(b)]                 when b_k is unchanged
 *                              (I(a)⋉I(b))_k − (z⁻¹I(a) ⋉ z⁻¹I(b))_k        when Δb touches k
 *
 * A left row with a NULL key matches nothing: the anti-join passes it through, the semi-join drops
 * it, and neither keeps it. Right rows with a NULL key are ignored. (NOT IN's three-valued rules
 * are the SQL layer's: it plans them over this operator.)
 */

import { type ByteReader, type ByteWriter, hashColumns, type Row } from '../../core/index.ts';
import type { Operator } from '../operator.ts';
import { JoinState } from '../state.ts';
import { ZSet } from '../zset.ts';
import { hasNullIn, KeySet, matchesIn, type Residual } from './join.ts';


export class SemiJoinOperator implements Operator {
  readonly #anti: boolean;
  readonly #leftKey: readonly number[];
  readonly #rightKey: readonly number[];
  readonly #residual: Residual | undefined;
  readonly #state = new JoinState();

  constructor(anti: boolean, leftKey: readonly number[], rightKey: readonly number[], residual?: Residual) {
    if (leftKey.length !== rightKey.length) throw new RangeError(`a semi-join needs as many left key columns as right ones (${leftKey.length} and ${rightKey.length})`);
    this.#anti = anti;
    this.#leftKey = leftKey;
    this.#rightKey = rightKey;
    this.#residual = residual;
  }

  step([left, right]: readonly ZSet[]): ZSet {
    const out = new ZSet();
    const recompute = right!.isEmpty ? KeySet.none : new KeySet();
    if (!right!.isEmpty) recompute.addAll(right!, this.#rightKey);
    for (const [hash, key] of recompute.list) this.#emitKey(hash, key, -1, out);
    const { rows, weights } = left!;
    const leftKey = this.#leftKey;
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i]!;
      const weight = weights[i]!;
      if (weight === 0) continue;
      if (hasNullIn(row, leftKey)) {
        if (this.#anti) out.add(row, weight);
        continue;
      }
      const hash = hashColumns(row, leftKey);
      const group = this.#state.findOrCreate(hash, row, leftKey);
      if (!recompute.has(hash, row, leftKey) && matchesIn(row, group.right, this.#residual) !== this.#anti) out.add(row, weight);
      this.#state.addLeft(group, hash, row, leftKey, weight);
    }
    const rightRows = right!.rows;
    const rightWeights = right!.weights;
    const rightKey = this.#rightKey;
    for (let i = 0; i < rightRows.length; i++) {
      const row = rightRows[i]!;
      if (rightWeights[i] === 0 || hasNullIn(row, rightKey)) continue;
      const hash = hashColumns(row, rightKey);
      this.#state.addRight(this.#state.findOrCreate(hash, row, rightKey), hash, row, rightKey, rightWeights[i]!);
    }
    for (const [hash, key] of recompute.list) this.#emitKey(hash, key, 1, out);
    return out;
  }

  #emitKey(hash: number, key: Row, sign: number, out: ZSet): void {
    const group = this.#state.findKey(hash, key);
    const leftBag = group?.left;
    if (!leftBag) return;
    const rightBag = group.right;
    for (let i = 0; i < leftBag.rows.length; i++) {
      const row = leftBag.rows[i]!;
      if (matchesIn(row, rightBag, this.#residual) !== this.#anti) out.add(row, sign * leftBag.weights[i]!);
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
