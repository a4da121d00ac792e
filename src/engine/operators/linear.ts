/**
 * Linear operators: they keep no state, because each commutes with integration.
 *
 *   Δ(map f a) = map f Δa   Δ(σ a) = σ Δa   Δ(a + b) = Δa + Δb   Δ(−a) = −Δa   Δ(a − b) = Δa − Δb
 *
 * map, filter, flatMap and project apply a row function to each delta row and keep its weight.
 */

import type { Row } from '../../core/index.ts';
import type { Operator } from '../operator.ts';
import { ZSet } from '../zset.ts';

export class MapOperator implements Operator {
  readonly #map: (row: Row) => Row;
  constructor(map: (row: Row) => Row) {
    this.#map = map;
  }
  step([delta]: readonly ZSet[]): ZSet {
    if (delta!.isEmpty) return delta!;
    const { rows, weights } = delta!;
    const out = new Array<Row>(rows.length);
    for (let i = 0; i < rows.length; i++) out[i] = this.#map(rows[i]!);
    return new ZSet(out, weights.slice());
  }
}

export class FilterOperator implements Operator {
  readonly #predicate: (row: Row) => boolean;
  constructor(predicate: (row: Row) => boolean) {
    this.#predicate = predicate;
  }
  step([delta]: readonly ZSet[]): ZSet {
    if (delta!.isEmpty) return delta!;
    const { rows, weights } = delta!;
    const out = new ZSet();
    for (let i = 0; i < rows.length; i++) if (this.#predicate(rows[i]!)) out.add(rows[i]!, weights[i]!);
    // A subset of a consolidated Z-set is consolidated.
    out.consolidated = delta!.consolidated;
    return out;
  }
}

export class FlatMapOperator implements Operator {
  readonly #flatMap: (row: Row) => Iterable<Row>;
  constructor(flatMap: (row: Row) => Iterable<Row>) {
    this.#flatMap = flatMap;
  }
  step([delta]: readonly ZSet[]): ZSet {
    const { rows, weights } = delta!;
    const out = new ZSet();
    for (let i = 0; i < rows.length; i++) for (const row of this.#flatMap(rows[i]!)) out.add(row, weights[i]!);
    return out;
  }
}

export class ProjectOperator implements Operator {
  readonly #columns: readonly number[];
  constructor(columns: readonly number[]) {
    this.#columns = columns;
  }
  step([delta]: readonly ZSet[]): ZSet {
    if (delta!.isEmpty) return delta!;
    const { rows, weights } = delta!;
    const columns = this.#columns;
    const width = columns.length;
    const out = new Array<Row>(rows.length);
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i]!;
      const projected = new Array(width);
      for (let c = 0; c < width; c++) projected[c] = row[columns[c]!];
      out[i] = projected;
    }
    return new ZSet(out, weights.slice());
  }
}

/** The sum of any number of inputs. */
export class UnionOperator implements Operator {
  step(inputs: readonly ZSet[]): ZSet {
    const nonEmpty = inputs.filter((input) => !input.isEmpty);
    if (nonEmpty.length <= 1) return nonEmpty[0] ?? new ZSet();
    const out = new ZSet();
    for (const input of nonEmpty) out.addAll(input);
    return out;
  }
}

export class NegateOperator implements Operator {
  step([delta]: readonly ZSet[]): ZSet {
    if (delta!.isEmpty) return delta!;
    const out = delta!.negate();
    out.consolidated = delta!.consolidated;
    return out;
  }
}

/** a − b as Z-sets (EXCEPT ALL is this followed by a clamp; EXCEPT a distinct). */
export class MinusOperator implements Operator {
  step([left, right]: readonly ZSet[]): ZSet {
    if (right!.isEmpty) return left!;
    const out = new ZSet(left!.rows.slice(), left!.weights.slice());
    out.addAll(right!, -1);
    return out;
  }
}
