/**
 * Distinct: each present row once.
 *
 *   Δ(distinct a)[r] = [I(a)[r] > 0] − [z⁻¹I(a)[r] > 0]   for the rows r of Δa
 *
 * State: the integrated weight of every row (an arrangement keyed by the whole row).
 */

import type { ByteReader, ByteWriter } from '../../core/index.ts';
import { hashRow, type Row } from '../../core/index.ts';
import type { Operator } from '../operator.ts';
import { Arrangement, type GroupCodec } from '../state.ts';
import { ZSet } from '../zset.ts';

const weightCodec: GroupCodec<number> = {
  save: (weight, writer) => writer.signed(weight),
  restore: (reader) => reader.signed(),
};

function allColumns(length: number): number[] {
  return Array.from({ length }, (_, i) => i);
}

export class DistinctOperator implements Operator {
  readonly #weights = new Arrangement<number>();
  readonly #columns: number[];

  constructor(arity: number) {
    this.#columns = allColumns(arity);
  }

  step([delta]: readonly ZSet[]): ZSet {
    const { rows, weights } = delta!;
    const columns = this.#columns;
    // The weight of each touched row before the step, in first-touch order.
    const touched: Row[] = [];
    const before = new Arrangement<number>();
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i]!;
      const weight = weights[i]!;
      if (weight === 0) continue;
      const hash = hashRow(row);
      const old = this.#weights.find(hash, row, columns) ?? 0;
      if (before.find(hash, row, columns) === undefined) {
        before.set(hash, row, columns, old);
        touched.push(row);
      }
      const now = old + weight;
      if (now === 0) this.#weights.delete(hash, row, columns);
      else this.#weights.set(hash, row, columns, now);
    }
    const out = new ZSet();
    for (const row of touched) {
      const hash = hashRow(row);
      const was = (before.find(hash, row, columns) ?? 0) > 0;
      const is = (this.#weights.find(hash, row, columns) ?? 0) > 0;
      if (was !== is) out.add(row, is ? 1 : -1);
    }
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
