/**
 * Aggregate accumulators: the per-group state of each aggregate function, updated by weighted
 * values and read as a result.
 *
 * Invariants:
 * - count, count(column), sum, avg, bool_and and bool_or are linear: O(1) state per group, exact
 *   under any order of inserts and deletes. Sums are exact for every numeric kind — integers
 *   overflow into bigint, decimals add exactly, and floats accumulate as an exact binary fraction
 *   rounded once when read — so a result never depends on how changes were cut into steps.
 * - min, max, count(distinct), string_agg and array_agg keep the group's values (a sorted or
 *   hashed multiset), so deleting the current minimum finds the next one.
 * - NULL inputs are ignored (array_agg keeps them, as PostgreSQL does); an aggregate over no
 *   non-NULL input is NULL, except counts, which are 0.
 */

import { ByteReader, ByteWriter, canonicalInteger, compareValues, Decimal, hashValue, type Row, type Value } from '../../core/index.ts';
import { totalOrder } from '../order.ts';
import type { AggregateSpec, SortKey } from '../spec.ts';
import { OrderedBag, RowBag, rowItem, valueItem } from '../state.ts';

export interface Accumulator {
  /** Adds a value of the input row `row` with a weight. */
  add(row: Row, weight: number): void;
  result(): Value;
  /** Whether the accumulator holds nothing (a group whose rows all cancelled can be dropped). */
  empty(): boolean;
  save(writer: ByteWriter): void;
  restore(reader: ByteReader): void;
}

export function createAccumulator(spec: AggregateSpec): Accumulator {
  switch (spec.kind) {
    case 'count':
      return spec.column === undefined ? new CountRows() : new CountValues(spec.column);
    case 'count_distinct':
      return new CountDistinct(spec.column);
    case 'sum':
      return new Sum(spec.column, false);
    case 'avg':
      return new Sum(spec.column, true);
    case 'min':
      return new Extreme(spec.column, false);
    case 'max':
      return new Extreme(spec.column, true);
    case 'bool_and':
      return new BooleanAggregate(spec.column, true);
    case 'bool_or':
      return new BooleanAggregate(spec.column, false);
    case 'string_agg':
      return new Collect(spec.column, spec.orderBy ?? [], spec.separator);
    case 'array_agg':
      return new Collect(spec.column, spec.orderBy ?? [], undefined);
  }
}

class CountRows implements Accumulator {
  count = 0;
  empty(): boolean {
    return this.count === 0;
  }
  add(_row: Row, weight: number): void {
    this.count += weight;
  }
  result(): Value {
    return this.count;
  }
  save(writer: ByteWriter): void {
    writer.signed(this.count);
  }
  restore(reader: ByteReader): void {
    this.count = reader.signed();
  }
}

class CountValues implements Accumulator {
  readonly column: number;
  count = 0;
  constructor(column: number) {
    this.column = column;
  }
  empty(): boolean {
    return this.count === 0;
  }
  add(row: Row, weight: number): void {
    if (row[this.column] !== null) this.count += weight;
  }
  result(): Value {
    return this.count;
  }
  save(writer: ByteWriter): void {
    writer.signed(this.count);
  }
  restore(reader: ByteReader): void {
    this.count = reader.signed();
  }
}

class CountDistinct implements Accumulator {
  readonly column: number;
  values = new RowBag();
  constructor(column: number) {
    this.column = column;
  }
  empty(): boolean {
    return this.values.length === 0;
  }
  add(row: Row, weight: number): void {
    const value = row[this.column]!;
    if (value !== null) this.values.add([value], hashValue(value), weight);
  }
  result(): Value {
    return this.values.positive;
  }
  save(writer: ByteWriter): void {
    RowBag.codec.save(this.values, writer);
  }
  restore(reader: ByteReader): void {
    this.values = RowBag.codec.restore(reader);
  }
}

// Exact float sums: a finite double is m × 2^e with e ≥ −1074, so m × 2^(e + 1074) is an integer.
const FLOAT_SCALE_BITS = 1074n;
const float64 = new Float64Array(1);
const float64Words = new Int32Array(float64.buffer);

/** `value × 2^1074` as an exact bigint (value finite). */
export function doubleToScaled(value: number): bigint {
  float64[0] = value;
  const high = float64Words[1]!;
  const low = float64Words[0]! >>> 0;
  const exponentBits = (high >>> 20) & 0x7ff;
  let mantissa = (BigInt(high & 0xfffff) << 32n) | BigInt(low);
  let shift = 0;
  if (exponentBits !== 0) {
    mantissa |= 1n << 52n;
    shift = exponentBits - 1;
  }
  const scaled = mantissa << BigInt(shift);
  return high < 0 ? -scaled : scaled;
}

/** `scaled × 2^−1074`, correctly rounded (to nearest, ties to even) in the normal range. */
export function scaledToDouble(scaled: bigint): number {
  if (scaled === 0n) return 0;
  const negative = scaled < 0n;
  const magnitude = negative ? -scaled : scaled;
  const bits = magnitude.toString(16).length * 4;
  const drop = Math.max(0, bits - 64);
  let top = magnitude >> BigInt(drop);
  // A sticky bit below the 64 kept bits makes Number() round as if it saw all of them.
  if (drop > 0 && (magnitude & ((1n << BigInt(drop)) - 1n)) !== 0n) top |= 1n;
  const exponent = drop - Number(FLOAT_SCALE_BITS);
  // Scale in two steps so that neither factor underflows or overflows on its own.
  const half = Math.trunc(exponent / 2);
  const result = Number(top) * 2 ** half * 2 ** (exponent - half);
  return negative ? -result : result;
}

/** sum and avg over integers, decimals and floats, exactly. */
class Sum implements Accumulator {
  readonly column: number;
  readonly average: boolean;
  /** The weight of non-NULL values: the divisor of avg, and whether the result is NULL. */
  count = 0;
  integer: number | bigint = 0;
  decimal: Decimal | undefined;
  /** Weights of decimal and fractional-float values: what kind the result takes. */
  decimalCount = 0;
  /** The net weight of decimals per display scale: the result shows the largest scale present. */
  scales = new Map<number, number>();
  floatCount = 0;
  /** Fractional floats, exactly, as a multiple of 2^−1074. */
  floatScaled = 0n;
  nan = 0;
  infinities = 0;
  negativeInfinities = 0;

  constructor(column: number, average: boolean) {
    this.column = column;
    this.average = average;
  }

  empty(): boolean {
    return (
      this.count === 0 &&
      this.integer === 0 &&
      this.floatScaled === 0n &&
      this.floatCount === 0 &&
      this.decimalCount === 0 &&
      this.nan === 0 &&
      this.infinities === 0 &&
      this.negativeInfinities === 0 &&
      (this.decimal === undefined || this.decimal.mantissa === 0n)
    );
  }

  add(row: Row, weight: number): void {
    const value = row[this.column]!;
    if (value === null) return;
    this.count += weight;
    if (typeof value === 'number') {
      if (Number.isSafeInteger(value)) {
        if (typeof this.integer === 'number') {
          const sum = this.integer + value * weight;
          if (Number.isSafeInteger(sum)) {
            this.integer = sum;
            return;
          }
        }
        this.integer = canonicalInteger(BigInt(this.integer) + BigInt(value) * BigInt(weight));
        return;
      }
      if (Number.isInteger(value)) {
        // An integral double beyond 2^53 is an exact integer: it meets the bigint of equal value.
        this.integer = canonicalInteger(BigInt(this.integer) + BigInt(value) * BigInt(weight));
        return;
      }
      this.floatCount += weight;
      if (value !== value) this.nan += weight;
      else if (value === Infinity) this.infinities += weight;
      else if (value === -Infinity) this.negativeInfinities += weight;
      else this.floatScaled += doubleToScaled(value) * BigInt(weight);
      return;
    }
    if (typeof value === 'bigint') {
      this.integer = canonicalInteger(BigInt(this.integer) + value * BigInt(weight));
      return;
    }
    if (value instanceof Decimal) {
      this.decimalCount += weight;
      const net = (this.scales.get(value.scale) ?? 0) + weight;
      if (net === 0) this.scales.delete(value.scale);
      else this.scales.set(value.scale, net);
      const term = value.times(weight);
      this.decimal = this.decimal ? this.decimal.add(term) : term;
      return;
    }
    throw new TypeError(`${this.average ? 'avg' : 'sum'} needs numbers, not ${typeof value === 'object' ? value.constructor.name : typeof value}`);
  }

  /**
   * Every part is always summed; the counts only choose the result's kind, so a value inserted as
   * 2 and deleted as 2.00 (equal rows) still cancels exactly.
   */
  result(): Value {
    if (this.count <= 0) return null;
    const decimalPart = this.decimal !== undefined && this.decimal.mantissa !== 0n ? this.decimal : undefined;
    if (this.floatCount > 0 || this.floatScaled !== 0n || this.nan !== 0 || this.infinities !== 0 || this.negativeInfinities !== 0) {
      let value: number;
      if (this.nan > 0 || (this.infinities > 0 && this.negativeInfinities > 0)) value = NaN;
      else if (this.infinities > 0) value = Infinity;
      else if (this.negativeInfinities > 0) value = -Infinity;
      else {
        let exact = this.floatScaled + (BigInt(this.integer) << FLOAT_SCALE_BITS);
        if (decimalPart) exact += decimalToScaled(decimalPart);
        value = scaledToDouble(exact);
      }
      return this.average ? value / this.count : value;
    }
    if (this.decimalCount > 0 || this.average || decimalPart) {
      let total = Decimal.fromInteger(this.integer);
      if (decimalPart) total = total.add(decimalPart);
      // Display at the largest scale among the decimals present (a sum of them is exact there).
      let scale = 0;
      for (const [each, weight] of this.scales) if (weight > 0 && each > scale) scale = each;
      const normalized = total.normalized();
      total = normalized.scale <= scale ? new Decimal(normalized.mantissaAt(scale), scale) : normalized;
      if (this.average) return total.divide(BigInt(this.count), Math.max(16, scale));
      if (this.decimalCount > 0) return total;
      // Integers only (decimal terms cancelled): an integral total is an integer again.
      return total.scale === 0 ? canonicalInteger(total.mantissa) : total;
    }
    return this.integer;
  }

  save(writer: ByteWriter): void {
    writer.signed(this.count);
    writer.value(this.integer);
    writer.value(this.decimal ?? null);
    writer.signed(this.decimalCount);
    writer.varint(this.scales.size);
    for (const [scale, weight] of this.scales) {
      writer.varint(scale);
      writer.signed(weight);
    }
    writer.signed(this.floatCount);
    writer.bigint(this.floatScaled);
    writer.signed(this.nan);
    writer.signed(this.infinities);
    writer.signed(this.negativeInfinities);
  }

  restore(reader: ByteReader): void {
    this.count = reader.signed();
    this.integer = reader.value() as number | bigint;
    this.decimal = (reader.value() as Decimal | null) ?? undefined;
    this.decimalCount = reader.signed();
    this.scales = new Map();
    for (let i = reader.varint(); i > 0; i--) {
      const scale = reader.varint();
      this.scales.set(scale, reader.signed());
    }
    this.floatCount = reader.signed();
    this.floatScaled = reader.bigint();
    this.nan = reader.signed();
    this.infinities = reader.signed();
    this.negativeInfinities = reader.signed();
  }
}

/** A decimal mixed into a float sum, as a multiple of 2^−1074 (rounded at that precision). */
function decimalToScaled(value: Decimal): bigint {
  return (value.mantissa << FLOAT_SCALE_BITS) / 10n ** BigInt(value.scale);
}

/** min and max: the first or last present value of the group's sorted values. */
class Extreme implements Accumulator {
  readonly column: number;
  readonly maximum: boolean;
  values = new OrderedBag<Value>(compareValues);
  constructor(column: number, maximum: boolean) {
    this.column = column;
    this.maximum = maximum;
  }
  empty(): boolean {
    return this.values.length === 0;
  }
  add(row: Row, weight: number): void {
    const value = row[this.column]!;
    if (value !== null) this.values.add(value, weight);
  }
  result(): Value {
    return (this.maximum ? this.values.last() : this.values.first()) ?? null;
  }
  save(writer: ByteWriter): void {
    OrderedBag.codecFor(compareValues, valueItem).save(this.values, writer);
  }
  restore(reader: ByteReader): void {
    this.values = OrderedBag.codecFor(compareValues, valueItem).restore(reader);
  }
}

class BooleanAggregate implements Accumulator {
  readonly column: number;
  readonly all: boolean;
  trues = 0;
  falses = 0;
  constructor(column: number, all: boolean) {
    this.column = column;
    this.all = all;
  }
  empty(): boolean {
    return this.trues === 0 && this.falses === 0;
  }
  add(row: Row, weight: number): void {
    const value = row[this.column];
    if (value === true) this.trues += weight;
    else if (value === false) this.falses += weight;
    else if (value !== null) throw new TypeError(`${this.all ? 'bool_and' : 'bool_or'} needs booleans`);
  }
  result(): Value {
    if (this.trues + this.falses <= 0) return null;
    return this.all ? this.falses <= 0 : this.trues > 0;
  }
  save(writer: ByteWriter): void {
    writer.signed(this.trues);
    writer.signed(this.falses);
  }
  restore(reader: ByteReader): void {
    this.trues = reader.signed();
    this.falses = reader.signed();
  }
}

/** string_agg (a separator given) and array_agg: the group's rows in ORDER BY order, then by value. */
class Collect implements Accumulator {
  readonly column: number;
  readonly separator: string | undefined;
  readonly compare: (a: Row, b: Row) => number;
  rows: OrderedBag<Row>;
  constructor(column: number, orderBy: readonly SortKey[], separator: string | undefined) {
    this.column = column;
    this.separator = separator;
    this.compare = totalOrder([...orderBy, { column }]);
    this.rows = new OrderedBag<Row>(this.compare);
  }
  empty(): boolean {
    return this.rows.length === 0;
  }
  add(row: Row, weight: number): void {
    if (this.separator !== undefined && row[this.column] === null) return;
    this.rows.add(row, weight);
  }
  result(): Value {
    const values: Value[] = [];
    this.rows.forEach((row, weight) => {
      for (let w = 0; w < weight; w++) values.push(row[this.column]!);
    });
    if (values.length === 0) return null;
    if (this.separator === undefined) return values;
    return values.map((value) => (typeof value === 'string' ? value : String(value))).join(this.separator);
  }
  save(writer: ByteWriter): void {
    OrderedBag.codecFor(this.compare, rowItem).save(this.rows, writer);
  }
  restore(reader: ByteReader): void {
    this.rows = OrderedBag.codecFor(this.compare, rowItem).restore(reader);
  }
}
