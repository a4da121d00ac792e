/**
 * Values and rows: what flows through every layer.
 *
 * A row is a plain array of values, one per column; the column types live in schemas, not in the
 * values. A value is one of:
 *
 *   null · boolean · number (float, or an integer within ±(2^53 − 1)) · bigint (an integer beyond
 *   that) · string (text) · Uint8Array (bytes) · Decimal (exact numeric) · Timestamp (date,
 *   timestamp, timestamptz) · Interval · Json · an array of values (PostgreSQL arrays, array_agg)
 *
 * Invariants:
 * - `valuesEqual`, `hashValue` and `compareValues` agree: equal values hash alike and compare 0,
 *   and `compareValues` is a total order (NULL sorts last, as PostgreSQL's ASC default does).
 * - Numeric kinds meet on integers: 5, 5n, 5.0 and Decimal 5.00 are equal. A fractional float and
 *   a fractional Decimal are never equal (the SQL layer casts to one type before comparing); they
 *   still order numerically, with the float first on a tie.
 * - NaN equals NaN and sorts above every other number; −0 equals 0 (PostgreSQL's rules).
 * - Decimal keeps its display scale ('2.50' prints as 2.50) but equality and hashing ignore
 *   trailing zeros.
 * - Hashes are 32-bit integers computed without building strings (no JSON.stringify keys).
 */

export class Decimal {
  /** The value is `mantissa × 10^−scale`. */
  readonly mantissa: bigint;
  readonly scale: number;

  constructor(mantissa: bigint, scale: number) {
    if (!Number.isInteger(scale) || scale < 0) throw new RangeError(`a decimal's scale must be a non-negative integer, not ${scale}`);
    this.mantissa = mantissa;
    this.scale = scale;
  }

  /** Parses '12', '-0.50', '1e3', '+.5'. */
  static parse(text: string): Decimal {
    const match = /^\s*([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?\s*$/.exec(text);
    if (!match || (match[2] === '' && (match[3] ?? '') === '')) throw new SyntaxError(`"${text}" is not a decimal number`);
    const [, sign, whole, fraction = '', exponentText] = match;
    let digits = (whole ?? '') + fraction;
    let scale = fraction.length - (exponentText ? Number(exponentText) : 0);
    if (scale < 0) {
      digits += '0'.repeat(-scale);
      scale = 0;
    }
    const mantissa = BigInt(digits === '' ? '0' : digits);
    return new Decimal(sign === '-' ? -mantissa : mantissa, scale);
  }

  static fromInteger(value: number | bigint): Decimal {
    return new Decimal(BigInt(value), 0);
  }

  /** The same value with trailing fractional zeros removed. */
  normalized(): Decimal {
    let { mantissa, scale } = this;
    while (scale > 0 && mantissa % 10n === 0n) {
      mantissa /= 10n;
      scale--;
    }
    return scale === this.scale ? this : new Decimal(mantissa, scale);
  }

  /** This value's mantissa at a larger scale. */
  mantissaAt(scale: number): bigint {
    return scale === this.scale ? this.mantissa : this.mantissa * 10n ** BigInt(scale - this.scale);
  }

  add(other: Decimal): Decimal {
    const scale = Math.max(this.scale, other.scale);
    return new Decimal(this.mantissaAt(scale) + other.mantissaAt(scale), scale);
  }

  times(factor: number | bigint): Decimal {
    return new Decimal(this.mantissa * BigInt(factor), this.scale);
  }

  negate(): Decimal {
    return new Decimal(-this.mantissa, this.scale);
  }

  /** `this / divisor`, rounded half away from zero to `scale` digits (PostgreSQL's numeric rounding). */
  divide(divisor: bigint, scale: number): Decimal {
    if (divisor === 0n) throw new RangeError('division by zero');
    // round(mantissa × 10^(scale − this.scale) / divisor), with the power of ten on whichever side keeps it integral.
    const numerator = scale >= this.scale ? this.mantissa * 10n ** BigInt(scale - this.scale) : this.mantissa;
    const denominator = scale >= this.scale ? divisor : divisor * 10n ** BigInt(this.scale - scale);
    const negative = numerator < 0n !== denominator < 0n;
    const n = numerator < 0n ? -numerator : numerator;
    const d = denominator < 0n ? -denominator : denominator;
    let quotient = n / d;
    if ((n % d) * 2n >= d) quotient++;
    return new Decimal(negative ? -quotient : quotient, scale);
  }

  compare(other: Decimal): number {
    const scale = Math.max(this.scale, other.scale);
    const a = this.mantissaAt(scale);
    const b = other.mantissaAt(scale);
    return a < b ? -1 : a > b ? 1 : 0;
  }

  toString(): string {
    const negative = this.mantissa < 0n;
    const digits = (negative ? -this.mantissa : this.mantissa).toString();
    if (this.scale === 0) return (negative ? '-' : '') + digits;
    const padded = digits.padStart(this.scale + 1, '0');
    return `${negative ? '-' : ''}${padded.slice(0, -this.scale)}.${padded.slice(-this.scale)}`;
  }

  toJSON(): string {
    return this.toString();
  }
}

export type TimestampKind = 'date' | 'timestamp' | 'timestamptz';

/**
 * A date (midnight of that day), a timestamp without time zone, or a timestamptz (an instant, in
 * UTC): microseconds since 1970-01-01 00:00, as PostgreSQL stores them.
 */
export class Timestamp {
  readonly kind: TimestampKind;
  readonly micros: bigint;

  constructor(kind: TimestampKind, micros: bigint) {
    this.kind = kind;
    this.micros = micros;
  }

  toString(): string {
    const millis = Number(this.micros / 1000n);
    const iso = new Date(millis).toISOString();
    const micros = Number(((this.micros % 1_000_000n) + 1_000_000n) % 1_000_000n);
    const fraction = micros === 0 ? '' : '.' + String(micros).padStart(6, '0').replace(/0+$/, '');
    if (this.kind === 'date') return iso.slice(0, 10);
    const base = iso.slice(0, 10) + ' ' + iso.slice(11, 19) + fraction;
    return this.kind === 'timestamptz' ? base + '+00' : base;
  }

  toJSON(): string {
    return this.toString();
  }
}

/**
 * A PostgreSQL interval: months, days and microseconds, kept apart as PostgreSQL keeps them
 * ('1 mon' and '30 days' print differently) but equal, hashed and ordered by their span, with
 * a month as 30 days and a day as 24 hours (PostgreSQL's interval comparison).
 */
export class Interval {
  readonly months: number;
  readonly days: number;
  readonly micros: bigint;

  constructor(months: number, days: number, micros: bigint) {
    this.months = months;
    this.days = days;
    this.micros = micros;
  }

  /** The span in microseconds (a month as 30 days): what equality, hashing and order use. */
  span(): bigint {
    return (BigInt(this.months) * 30n + BigInt(this.days)) * 86_400_000_000n + this.micros;
  }

  /** PostgreSQL's output: `1 year 2 mons 3 days 04:05:06.5`, `-1 days`, `00:00:00`. */
  toString(): string {
    const parts: string[] = [];
    const years = Math.trunc(this.months / 12);
    const months = this.months % 12;
    const plural = (n: number, unit: string, units: string) => `${n} ${n === 1 ? unit : units}`;
    if (years !== 0) parts.push(plural(years, 'year', 'years'));
    if (months !== 0) parts.push(plural(months, 'mon', 'mons'));
    if (this.days !== 0) parts.push(plural(this.days, 'day', 'days'));
    if (this.micros !== 0n || parts.length === 0) {
      const negative = this.micros < 0n;
      let rest = negative ? -this.micros : this.micros;
      const fraction = rest % 1_000_000n;
      rest /= 1_000_000n;
      const seconds = rest % 60n;
      rest /= 60n;
      const minutes = rest % 60n;
      const hours = rest / 60n;
      const two = (n: bigint) => n.toString().padStart(2, '0');
      const fractionText = fraction === 0n ? '' : '.' + fraction.toString().padStart(6, '0').replace(/0+$/, '');
      parts.push(`${negative ? '-' : ''}${two(hours)}:${two(minutes)}:${two(seconds)}${fractionText}`);
    }
    return parts.join(' ');
  }

  toJSON(): string {
    return this.toString();
  }
}

/** A JSON document, kept with its canonical text (object keys sorted) for equality and order. */
export class Json {
  readonly value: unknown;
  readonly text: string;

  constructor(value: unknown) {
    this.value = value;
    this.text = canonicalJson(value);
  }

  static parse(text: string): Json {
    return new Json(JSON.parse(text));
  }

  toString(): string {
    return this.text;
  }

  toJSON(): unknown {
    return this.value;
  }
}

function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return '[' + value.map(canonicalJson).join(',') + ']';
  const record = value as Record<string, unknown>;
  return (
    '{' +
    Object.keys(record)
      .sort()
      .filter((key) => record[key] !== undefined)
      .map((key) => JSON.stringify(key) + ':' + canonicalJson(record[key]))
      .join(',') +
    '}'
  );
}

export type Value = null | boolean | number | bigint | string | Uint8Array | Decimal | Timestamp | Interval | Json | ValueArray;
/** A PostgreSQL array: its elements in order (NULLs allowed). */
export type ValueArray = readonly Value[];
export type Row = readonly Value[];

/** An integer in its canonical form: a number when it is safe, else a bigint. */
export function canonicalInteger(value: bigint): number | bigint {
  return value >= -9007199254740991n && value <= 9007199254740991n ? Number(value) : value;
}

// ---------------------------------------------------------------------------------------------
// Hashing: murmur3's 32-bit mixing over the value's parts, seeded by a per-kind tag.

const float64 = new Float64Array(1);
const float64Words = new Int32Array(float64.buffer);

const TAG_NULL = 0x3c6ef372;
const TAG_FALSE = 0x2a3b4c5d;
const TAG_TRUE = 0x5d4c3b2a;
const TAG_INTEGER = 0x1b873593;
const TAG_FLOAT = 0x7f4a7c15;
const TAG_NAN = 0x6a09e667;
const TAG_BIG = 0x510e527f;
const TAG_STRING = 0x9b05688c | 0;
const TAG_BYTES = 0x1f83d9ab;
const TAG_DECIMAL = 0x5be0cd19;
const TAG_TIMESTAMP = 0x428a2f98;
const TAG_JSON = 0x71374491;
const TAG_ARRAY = 0x3956c25b;
const TAG_INTERVAL = 0x59f111f1;

function mix(hash: number, word: number): number {
  let k = Math.imul(word, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  hash ^= Math.imul(k, 0x1b873593);
  hash = (hash << 13) | (hash >>> 19);
  return (Math.imul(hash, 5) + 0xe6546b64) | 0;
}

function finish(hash: number): number {
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35);
  return hash ^ (hash >>> 16);
}

function hashString(hash: number, text: string): number {
  const length = text.length;
  let i = 0;
  for (; i + 1 < length; i += 2) hash = mix(hash, text.charCodeAt(i) | (text.charCodeAt(i + 1) << 16));
  if (i < length) hash = mix(hash, text.charCodeAt(i));
  return mix(hash, length);
}

function hashNumber(hash: number, value: number): number {
  if ((value | 0) === value) return mix(hash ^ TAG_INTEGER, value);
  if (value !== value) return mix(hash, TAG_NAN);
  if (Number.isInteger(value) && Number.isSafeInteger(value)) {
    // An integer beyond int32: hash its two 32-bit halves so that 5e9 and 5_000_000_000n meet.
    return mix(mix(hash ^ TAG_INTEGER, value % 0x100000000 | 0), Math.trunc(value / 0x100000000) | 0);
  }
  if (Number.isInteger(value)) {
    // A float integer beyond 2^53 equals the bigint of the same value.
    return hashBigInt(hash, BigInt(value));
  }
  float64[0] = value;
  return mix(mix(hash ^ TAG_FLOAT, float64Words[0]!), float64Words[1]!);
}

function hashBigInt(hash: number, value: bigint): number {
  const canonical = canonicalInteger(value);
  if (typeof canonical === 'number') return hashNumber(hash, canonical);
  return hashString(hash ^ TAG_BIG, canonical.toString(16));
}

/** Folds one value into a running hash. */
export function hashInto(hash: number, value: Value): number {
  switch (typeof value) {
    case 'number':
      return hashNumber(hash, value);
    case 'string':
      return hashString(hash ^ TAG_STRING, value);
    case 'boolean':
      return mix(hash, value ? TAG_TRUE : TAG_FALSE);
    case 'bigint':
      return hashBigInt(hash, value);
    case 'object':
      if (value === null) return mix(hash, TAG_NULL);
      if (value instanceof Decimal) {
        const normalized = value.normalized();
        if (normalized.scale === 0) return hashBigInt(hash, normalized.mantissa);
        return mix(hashString(hash ^ TAG_DECIMAL, normalized.mantissa.toString(16)), normalized.scale);
      }
      if (value instanceof Uint8Array) {
        hash ^= TAG_BYTES;
        for (let i = 0; i < value.length; i++) hash = mix(hash, value[i]!);
        return mix(hash, value.length);
      }
      if (value instanceof Timestamp) {
        const micros = value.micros;
        return mix(mix(hash ^ TAG_TIMESTAMP, Number(BigInt.asIntN(32, micros))), Number(BigInt.asIntN(32, micros >> 32n)) ^ value.kind.length);
      }
      if (value instanceof Json) return hashString(hash ^ TAG_JSON, value.text);
      if (value instanceof Interval) return hashString(hash ^ TAG_INTERVAL, value.span().toString(16));
      if (Array.isArray(value)) {
        hash ^= TAG_ARRAY;
        for (let i = 0; i < value.length; i++) hash = hashInto(hash, value[i]!);
        return mix(hash, value.length);
      }
      break;
    default:
      break;
  }
  throw new TypeError(`not a Sluice value: ${describe(value)}`);
}

export function hashValue(value: Value): number {
  return finish(hashInto(0, value));
}

/** The hash of a whole row. */
export function hashRow(row: Row): number {
  let hash = row.length;
  for (let i = 0; i < row.length; i++) hash = hashInto(hash, row[i]!);
  return finish(hash);
}

/** The hash of some of a row's columns, in the order given. */
export function hashColumns(row: Row, columns: readonly number[]): number {
  let hash = columns.length;
  for (let i = 0; i < columns.length; i++) hash = hashInto(hash, row[columns[i]!]!);
  return finish(hash);
}

// ---------------------------------------------------------------------------------------------
// Equality and order.

function integerOf(value: Value): bigint | undefined {
  if (typeof value === 'number') return Number.isInteger(value) ? BigInt(value) : undefined;
  if (typeof value === 'bigint') return value;
  if (value instanceof Decimal) {
    const normalized = value.normalized();
    return normalized.scale === 0 ? normalized.mantissa : undefined;
  }
  return undefined;
}

export function valuesEqual(a: Value, b: Value): boolean {
  if (a === b) return true;
  const kind = typeof a;
  if (kind === 'string' || kind === 'boolean' || a === null || b === null) return false;
  if (kind === 'number' && typeof b === 'number') return a !== a && b !== b; // NaN = NaN
  if (a instanceof Uint8Array) {
    if (!(b instanceof Uint8Array) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
  }
  if (a instanceof Timestamp) return b instanceof Timestamp && a.kind === b.kind && a.micros === b.micros;
  if (a instanceof Json) return b instanceof Json && a.text === b.text;
  if (a instanceof Interval) return b instanceof Interval && a.span() === b.span();
  if (Array.isArray(a)) return Array.isArray(b) && rowsEqual(a, b);
  if (a instanceof Decimal && b instanceof Decimal) return a.compare(b) === 0;
  // Mixed numeric kinds meet on integers.
  const x = integerOf(a);
  return x !== undefined && x === integerOf(b);
}

export function rowsEqual(a: Row, b: Row): boolean {
  if (a === b) return true;
  const length = a.length;
  if (length !== b.length) return false;
  for (let i = 0; i < length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x !== y && !valuesEqual(x, y)) return false;
  }
  return true;
}

export function columnsEqual(a: Row, aColumns: readonly number[], b: Row, bColumns: readonly number[]): boolean {
  for (let i = 0; i < aColumns.length; i++) {
    const x = a[aColumns[i]!]!;
    const y = b[bColumns[i]!]!;
    if (x !== y && !valuesEqual(x, y)) return false;
  }
  return true;
}

/** The rank of a value's kind in the total order: booleans, numbers, text, bytes, times, json, arrays, NULL. */
function rank(value: Value): number {
  switch (typeof value) {
    case 'boolean':
      return 0;
    case 'number':
    case 'bigint':
      return 1;
    case 'string':
      return 2;
    default:
      if (value === null) return 6;
      if (value instanceof Decimal) return 1;
      if (value instanceof Uint8Array) return 3;
      if (value instanceof Timestamp) return 4;
      if (value instanceof Json) return 5;
      if (value instanceof Interval) return 4.5;
      return 5.5; // arrays
  }
}

function compareNumeric(a: number | bigint | Decimal, b: number | bigint | Decimal): number {
  if (typeof a === 'number' && typeof b === 'number') {
    if (a < b) return -1;
    if (a > b) return 1;
    if (a === b) return 0;
    return a !== a ? (b !== b ? 0 : 1) : -1; // NaN above every number
  }
  if (typeof a === 'number' && a !== a) return 1;
  if (typeof b === 'number' && b !== b) return -1;
  if (typeof a === 'number' && !Number.isFinite(a)) return a > 0 ? 1 : -1;
  if (typeof b === 'number' && !Number.isFinite(b)) return b > 0 ? -1 : 1;
  const x = toExact(a);
  const y = toExact(b);
  const order = x.compare(y);
  if (order !== 0) return order;
  // Numerically equal: equal values compare 0; a fractional float and a Decimal tie-break by kind.
  if (valuesEqual(a, b)) return 0;
  return typeof a === 'number' ? -1 : typeof b === 'number' ? 1 : 0;
}

function toExact(value: number | bigint | Decimal): Decimal {
  if (value instanceof Decimal) return value;
  if (typeof value === 'bigint') return new Decimal(value, 0);
  if (Number.isInteger(value)) return new Decimal(BigInt(value), 0);
  // A finite double is a dyadic rational: write it exactly in decimal.
  return Decimal.parse(exactDecimalText(value));
}

function exactDecimalText(value: number): string {
  float64[0] = value;
  const high = float64Words[1]!;
  const low = float64Words[0]! >>> 0;
  const negative = high < 0;
  const exponentBits = (high >>> 20) & 0x7ff;
  let mantissa = (BigInt(high & 0xfffff) << 32n) | BigInt(low);
  let exponent: number;
  if (exponentBits === 0) exponent = -1074;
  else {
    mantissa |= 1n << 52n;
    exponent = exponentBits - 1075;
  }
  // mantissa × 2^exponent, exponent < 0 here: = mantissa × 5^−exponent × 10^exponent.
  const scale = -exponent;
  const digits = (mantissa * 5n ** BigInt(scale)).toString().padStart(scale + 1, '0');
  return `${negative ? '-' : ''}${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) if (a[i] !== b[i]) return a[i]! < b[i]! ? -1 : 1;
  return a.length - b.length;
}

/** The total order of values: by kind (booleans, numbers, text, bytes, times, json), NULL last. */
export function compareValues(a: Value, b: Value): number {
  if (a === b) return 0;
  if (typeof a === 'number' && typeof b === 'number') return compareNumeric(a, b);
  if (typeof a === 'string' && typeof b === 'string') return a < b ? -1 : 1;
  const rankA = rank(a);
  const rankB = rank(b);
  if (rankA !== rankB) return rankA - rankB;
  switch (rankA) {
    case 0:
      return a === b ? 0 : a ? 1 : -1;
    case 1:
      return compareNumeric(a as number | bigint | Decimal, b as number | bigint | Decimal);
    case 3:
      return compareBytes(a as Uint8Array, b as Uint8Array);
    case 4: {
      const x = a as Timestamp;
      const y = b as Timestamp;
      if (x.kind !== y.kind) return x.kind < y.kind ? -1 : 1;
      return x.micros < y.micros ? -1 : x.micros > y.micros ? 1 : 0;
    }
    case 5: {
      const x = (a as Json).text;
      const y = (b as Json).text;
      return x < y ? -1 : x > y ? 1 : 0;
    }
    case 4.5: {
      const x = (a as Interval).span();
      const y = (b as Interval).span();
      return x < y ? -1 : x > y ? 1 : 0;
    }
    case 5.5:
      return compareRows(a as ValueArray, b as ValueArray);
    default:
      return 0; // NULL = NULL in the order
  }
}

/** Rows ordered column by column, a shorter row first on a common prefix. */
export function compareRows(a: Row, b: Row): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const order = compareValues(a[i]!, b[i]!);
    if (order !== 0) return order;
  }
  return a.length - b.length;
}

/** A short description of a value for error messages (never the whole of a large value). */
export function describe(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (value === null) return 'null';
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? value.slice(0, 40) + '…' : value);
  if (value instanceof Decimal || value instanceof Timestamp || value instanceof Json || value instanceof Interval) return `${value.constructor.name}(${String(value).slice(0, 40)})`;
  if (value instanceof Uint8Array) return `bytes[${value.length}]`;
  if (Array.isArray(value)) return `array[${value.length}]`;
  if (typeof value === 'object') return (value as object).constructor?.name ?? 'object';
  return String(value);
}

