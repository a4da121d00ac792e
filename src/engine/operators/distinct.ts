/**
 * Distinct: each present row once.
 *
 *   Δ(distinct a)[r] = [I(a)[r] > 0] − [z⁻¹I(a)[r] > 0]   for the rows r of Δa
 *
 * State: the integrated weight of every row (an arrangement keyed by the whole row).
 */

import { type ByteReader, type ByteWriter, hashRow } from '../../core/index.ts';
import type { Operator } from '../operator.ts';
import { Arrangement, identityColumns, type GroupCodec } from '../state.ts';
import { ZSet } from '../zset.ts';

const weightCodec: GroupCodec<number> = {
  save: (weight, writer) => writer.signed(weight),
  restore: (reader) => reader.signed(),
};

export class DistinctOperator implements Operator {
  readonly #weights = new Arrangement<number>();
  readonly #columns: readonly number[];

  constructor(arity: number) {
    this.#columns = identityColumns(arity);
  }

  step([delta]: readonly ZSet[]): ZSet {
    // Row by row, emitting each change of presence as it happens: for a row that appears more than
    // once in the delta the flips telescope to [after > 0] − [before > 0], and no consolidation
    // pass over the input is needed (most changes flip nothing).
    const { rows, weights, hashes } = delta!;
    const columns = this.#columns;
    const out = new ZSet();
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i]!;
      const weight = weights[i]!;
      if (weight === 0) continue;
      const before = this.#weights.addWeight(hashes ? hashes[i]! : hashRow(row), row, columns, weight);
      const after = before + weight;
      if (before > 0 !== after > 0) out.add(row, after > 0 ? 1 : -1);
    }
    if (delta!.consolidated) out.consolidated = true;
    return out;
  }

  save(writer: ByteWriter): void {
    this.#weights.save(writer, weightCodec);
  }

  restore(reader: ByteReader): void {
    this.#weights.restore(reader, weightCodec);
  }

  stateSize(): number {
    return this.#weights.size;
  }
}
