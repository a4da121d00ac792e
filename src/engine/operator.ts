/**
 * The contract between the circuit and its operators.
 *
 * Invariants:
 * - `step` is called once per circuit step with one delta per input, in input order, and returns
 *   this step's output delta. It never mutates its inputs.
 * - An operator with state (`save`/`restore`) keeps everything that decides its future outputs
 *   there; restoring a saved state into a fresh operator continues exactly where it stopped.
 */

import type { ByteReader, ByteWriter } from '../core/index.ts';
import type { ZSet } from './zset.ts';

export interface Operator {
  step(inputs: readonly ZSet[]): ZSet;
  save?(writer: ByteWriter): void;
  restore?(reader: ByteReader): void;
  /** Rows (or groups) held in state, for metrics. */
  stateSize?(): number;
}
