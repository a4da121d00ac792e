/**
 * Operators over time (DBSP's stream operators):
 *
 *   delay:         z⁻¹(a)[t] = a[t−1]          (empty at t = 0)
 *   integrate:     I(a)[t]   = Σ_{s≤t} a[s]    (emits the whole accumulated Z-set every step)
 *   differentiate: D(a)[t]   = a[t] − a[t−1]
 *
 * Each keeps one Z-set of state: the previous input, or the running sum.
 */

import type { ByteReader, ByteWriter } from '../../core/index.ts';
import type { Operator } from '../operator.ts';
import { ZSet } from '../zset.ts';

function saveZSet(zset: ZSet, writer: ByteWriter): void {
  writer.varint(zset.length);
  for (let i = 0; i < zset.length; i++) {
    writer.row(zset.rows[i]!);
    writer.signed(zset.weights[i]!);
  }
}

function restoreZSet(reader: ByteReader): ZSet {
  const zset = new ZSet();
  const count = reader.varint();
  for (let i = 0; i < count; i++) zset.add(reader.row(), reader.signed());
  return zset;
}

/** The state of delay and differentiate: the previous step's input. */
abstract class RemembersPrevious {
  protected previous = new ZSet();
  save(writer: ByteWriter): void {
    saveZSet(this.previous, writer);
  }
  restore(reader: ByteReader): void {
    this.previous = restoreZSet(reader);
  }
  stateSize(): number {
    return this.previous.length;
  }
}

export class DelayOperator extends RemembersPrevious implements Operator {
  step([delta]: readonly ZSet[]): ZSet {
    const out = this.previous;
    this.previous = delta!.consolidate();
    return out;
  }
}

export class IntegrateOperator implements Operator {
  #sum = new ZSet();
  step([delta]: readonly ZSet[]): ZSet {
    this.#sum = this.#sum.plus(delta!).consolidate();
    return this.#sum;
  }
  save(writer: ByteWriter): void {
    saveZSet(this.#sum, writer);
  }
  restore(reader: ByteReader): void {
    this.#sum = restoreZSet(reader);
  }
  stateSize(): number {
    return this.#sum.length;
  }
}

export class DifferentiateOperator extends RemembersPrevious implements Operator {
  step([delta]: readonly ZSet[]): ZSet {
    const current = delta!.consolidate();
    const out = current.plus(this.previous.negate());
    this.previous = current;
    return out;
  }
}
