/**
 * Scalar semantics: PostgreSQL's type resolution for operators and functions (which implicit casts
 * apply, what type results), casts, and the implementations the compiled expressions call.
 *
 * Invariants:
 * - Resolution happens once, at bind time: `resolveFunction` names the argument types the binder
 *   must cast to and the result type; `implementation` then returns a function that assumes them.
 * - Integer arithmetic is exact and checked against the result type's range ("integer out of
 *   range"), as PostgreSQL's int2/int4/int8 operators are; numeric is exact (Decimal); floats are
 *   IEEE doubles. Division by zero is an error for every kind.
 * - Strict functions (most) return NULL when any argument is NULL; the compiler handles that, so
 *   implementations of strict functions never see NULL.
 */

import { createHash } from 'node:crypto';
import { canonicalInteger, compareValues, Decimal, DefiniteError, Interval, Json, Timestamp, valuesEqual, type Value } from '../core/index.ts';
import { type Kind, type Type, type as makeType } from './plan.ts';
import { inputValue, outputValue, typeName, type SqlType, type TypeKind } from './types.ts';

export type Fn = (...args: Value[]) => Value;

const NUMERIC_RANK: Partial<Record<Kind, number>> = { smallint: 1, integer: 2, bigint: 3, numeric: 4, real: 5, double: 6 };
const TEMPORAL_RANK: Partial<Record<Kind, number>> = { date: 1, timestamp: 2, timestamptz: 3 };
const STRING_KINDS: ReadonlySet<Kind> = new Set(['text', 'varchar', 'char']);

export const TEXT = makeType('text');
export const BOOLEAN = makeType('boolean');
export const INTEGER = makeType('integer');
export const BIGINT = makeType('bigint');
export const NUMERIC = makeType('numeric');
export const DOUBLE = makeType('double');

export function isNumeric(t: Type): boolean {
  return NUMERIC_RANK[t.kind] !== undefined;
}
export function isInteger(t: Type): boolean {
  return t.kind === 'smallint' || t.kind === 'integer' || t.kind === 'bigint';
}
export function isString(t: Type): boolean {
  return STRING_KINDS.has(t.kind);
}

/** How PostgreSQL names a type in messages. */
export function typeLabel(t: Type): string {
  return t.kind === 'unknown' ? 'unknown' : typeName(t as SqlType);
}

/**
 * The type two operands are brought to (UNION branches, CASE results, comparison operands), or
 * undefined when PostgreSQL would refuse the combination.
 */
export function commonType(a: Type, b: Type): Type | undefined {
  if (a.kind === 'unknown') return b;
  if (b.kind === 'unknown') return a;
  if (a.kind === b.kind) return a.modifiers.length === b.modifiers.length && a.modifiers.every((m, i) => m === b.modifiers[i]) ? a : makeType(a.kind);
  const an = NUMERIC_RANK[a.kind];
  const bn = NUMERIC_RANK[b.kind];
  if (an !== undefined && bn !== undefined) return makeType(an >= bn ? a.kind : b.kind);
  if (isString(a) && isString(b)) return TEXT;
  const at = TEMPORAL_RANK[a.kind];
  const bt = TEMPORAL_RANK[b.kind];
  if (at !== undefined && bt !== undefined) return makeType(at >= bt ? a.kind : b.kind);
  if ((a.kind === 'json' || a.kind === 'jsonb') && (b.kind === 'json' || b.kind === 'jsonb')) return makeType('jsonb');
  return undefined;
}

/** Whether PostgreSQL casts `from` to `to` implicitly (in expressions) or in assignment (INSERT, UPDATE). */
export function canCoerce(from: Type, to: Type, assignment: boolean): boolean {
  if (from.kind === to.kind || from.kind === 'unknown') return true;
  const fn = NUMERIC_RANK[from.kind];
  const tn = NUMERIC_RANK[to.kind];
  if (fn !== undefined && tn !== undefined) return assignment || fn <= tn;
  if (isString(to) && (isString(from) || assignment)) return true;
  const ft = TEMPORAL_RANK[from.kind];
  const tt = TEMPORAL_RANK[to.kind];
  if (ft !== undefined && tt !== undefined) return assignment || ft <= tt;
  if ((from.kind === 'json' || from.kind === 'jsonb') && (to.kind === 'json' || to.kind === 'jsonb')) return true;
  return false;
}

// ---------------------------------------------------------------------------------------------
// Integers

const RANGES: Partial<Record<Kind, readonly [number, number, bigint, bigint]>> = {
  smallint: [-32768, 32767, -32768n, 32767n],
  integer: [-2147483648, 2147483647, -2147483648n, 2147483647n],
  bigint: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, -9223372036854775808n, 9223372036854775807n],
};

function outOfRange(kind: Kind): DefiniteError {
  return new DefiniteError('sql_range', `${kind} out of range`, kind === 'bigint' ? 'cast an operand to numeric for exact results beyond 64 bits' : 'cast an operand to bigint or numeric for larger values');
}

function checkedInteger(value: bigint, kind: Kind): number | bigint {
  const range = RANGES[kind]!;
  if (value < range[2] || value > range[3]) throw outOfRange(kind);
  return canonicalInteger(value);
}

function integerOperator(op: string, kind: Kind): Fn {
  const [min, max] = RANGES[kind]!;
  const slow = (a: Value, b: Value): Value => {
    const x = BigInt(a as number | bigint);
    const y = BigInt(b as number | bigint);
    switch (op) {
      case '+':
        return checkedInteger(x + y, kind);
      case '-':
        return checkedInteger(x - y, kind);
      case '*':
        return checkedInteger(x * y, kind);
      case '/':
        if (y === 0n) throw divisionByZero();
        return checkedInteger(x / y, kind);
      default:
        if (y === 0n) throw divisionByZero();
        return checkedInteger(x % y, kind);
    }
  };
  switch (op) {
    case '+':
      return (a, b) => {
        if (typeof a === 'number' && typeof b === 'number') {
          const r = a + b;
          if (r >= min && r <= max) return r;
        }
        return slow(a, b);
      };
    case '-':
      return (a, b) => {
        if (typeof a === 'number' && typeof b === 'number') {
          const r = a - b;
          if (r >= min && r <= max) return r;
        }
        return slow(a, b);
      };
    case '*':
      return (a, b) => {
        if (typeof a === 'number' && typeof b === 'number') {
          const r = a * b;
          if (r >= min && r <= max) return r === 0 ? 0 : r;
        }
        return slow(a, b);
      };
    case '/':
      return (a, b) => {
        if (typeof a === 'number' && typeof b === 'number') {
          if (b === 0) throw divisionByZero();
          const r = Math.trunc(a / b);
          if (r >= min && r <= max) return r === 0 ? 0 : r;
        }
        return slow(a, b);
      };
    default:
      return (a, b) => {
        if (typeof a === 'number' && typeof b === 'number') {
          if (b === 0) throw divisionByZero();
          const r = a % b;
          return r === 0 ? 0 : r;
        }
        return slow(a, b);
      };
  }
}

function divisionByZero(): DefiniteError {
  return new DefiniteError('sql_division_by_zero', 'division by zero', 'guard the divisor, e.g. x / NULLIF(y, 0)');
}

// ---------------------------------------------------------------------------------------------
// Numeric (exact decimals)

export function toDecimal(value: Value): Decimal {
  if (value instanceof Decimal) return value;
  if (typeof value === 'number') {
    if (Number.isInteger(value)) return Decimal.fromInteger(value);
    // PostgreSQL converts float8 to numeric with 15 significant digits.
    return Decimal.parse(value.toPrecision(15));
  }
  if (typeof value === 'bigint') return Decimal.fromInteger(value);
  throw new TypeError(`not a number: ${String(value)}`);
}

/** The number of base-10000 digits before the point, minus one (PostgreSQL's numeric weight). */
function weight(value: Decimal): number {
  if (value.mantissa === 0n) return 0;
  const digits = (value.mantissa < 0n ? -value.mantissa : value.mantissa).toString().length - value.scale;
  return Math.floor((digits - 1) / 4);
}

/** numeric division with PostgreSQL's choice of result scale (select_div_scale). */
export function divideDecimal(a: Decimal, b: Decimal): Decimal {
  if (b.mantissa === 0n) throw divisionByZero();
  let qweight = weight(a) - weight(b);
  const first = (d: Decimal) => {
    const digits = (d.mantissa < 0n ? -d.mantissa : d.mantissa).toString();
    const lead = (digits.length - d.scale) % 4;
    return Number(digits.slice(0, lead <= 0 ? lead + 4 : lead));
  };
  if (a.mantissa !== 0n && first(a) < first(b)) qweight--;
  const scale = Math.min(Math.max(16 - qweight * 4, a.scale, b.scale, 0), 1000);
  // a / b = (ma / 10^sa) / (mb / 10^sb) = (ma × 10^sb) / (mb × 10^sa)
  const numerator = new Decimal(a.mantissa * 10n ** BigInt(b.scale), a.scale);
  return numerator.divide(b.mantissa, scale);
}

export function roundDecimal(value: Decimal, scale: number): Decimal {
  if (scale >= value.scale) return new Decimal(value.mantissaAt(scale), scale);
  return new Decimal(value.mantissa, value.scale).divide(1n, scale);
}

function numericOperator(op: string): Fn {
  switch (op) {
    case '+':
      return (a, b) => toDecimal(a).add(toDecimal(b));
    case '-':
      return (a, b) => toDecimal(a).add(toDecimal(b).negate());
    case '*':
      return (a, b) => {
        const x = toDecimal(a);
        const y = toDecimal(b);
        return new Decimal(x.mantissa * y.mantissa, x.scale + y.scale);
      };
    case '/':
      return (a, b) => divideDecimal(toDecimal(a), toDecimal(b));
    default:
      return (a, b) => {
        const x = toDecimal(a);
        const y = toDecimal(b);
        if (y.mantissa === 0n) throw divisionByZero();
        const scale = Math.max(x.scale, y.scale);
        return new Decimal(x.mantissaAt(scale) % y.mantissaAt(scale), scale);
      };
  }
}

// ---------------------------------------------------------------------------------------------
// Floats

export function toNumber(value: Value): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'bigint') return Number(value);
  if (value instanceof Decimal) return Number(value.toString());
  throw new TypeError(`not a number: ${String(value)}`);
}

function checkedFloat(result: number, a: number, b: number): number {
  if (!Number.isFinite(result) && Number.isFinite(a) && Number.isFinite(b)) throw new DefiniteError('sql_range', 'value out of range: overflow');
  return result;
}

function floatOperator(op: string, real: boolean): Fn {
  const round = real ? Math.fround : (x: number) => x;
  switch (op) {
    case '+':
      return (a, b) => round(checkedFloat(toNumber(a) + toNumber(b), toNumber(a), toNumber(b)));
    case '-':
      return (a, b) => round(checkedFloat(toNumber(a) - toNumber(b), toNumber(a), toNumber(b)));
    case '*':
      return (a, b) => round(checkedFloat(toNumber(a) * toNumber(b), toNumber(a), toNumber(b)));
    default:
      return (a, b) => {
        const y = toNumber(b);
        if (y === 0) throw divisionByZero();
        return round(checkedFloat(toNumber(a) / y, toNumber(a), y));
      };
  }
}

// ---------------------------------------------------------------------------------------------
// Casts

const DAY_MICROS = 86_400_000_000n;

/** A cast of a value of type `from` to type `to` (explicit: varchar(n) truncates). */
export function castFunction(from: Type, to: Type): (value: Value) => Value {
  const f = from.kind;
  const t = to.kind;
  if (f === 'unknown' || isString(from)) {
    if (isString(to)) return stringLength(to, true);
    if (t === 'unknown') return (v) => v;
    return (v) => inputValue(String(v), to as SqlType);
  }
  if (isString(to)) {
    const limit = stringLength(to, true);
    if (f === 'boolean') return (v) => limit(v ? 'true' : 'false');
    if (f === 'integer' || f === 'smallint' || f === 'bigint') return (v) => limit(String(v));
    return (v) => limit(outputValue(v, from as SqlType));
  }
  if (f === t && to.modifiers.length === 0) return (v) => v;
  if (isInteger(to)) {
    if (isInteger(from)) return (v) => checkedInteger(BigInt(v as number | bigint), t);
    if (f === 'numeric') return (v) => checkedInteger(roundDecimal(v as Decimal, 0).mantissa, t);
    if (f === 'real' || f === 'double')
      return (v) => {
        const x = v as number;
        if (!Number.isFinite(x)) throw outOfRange(t);
        // rint: half to even
        let r = Math.round(x);
        if (Math.abs(x % 1) === 0.5 && r % 2 !== 0) r -= 1;
        if (!Number.isSafeInteger(r)) return checkedInteger(BigInt(Math.trunc(r)), t);
        return checkedInteger(BigInt(r), t);
      };
    if (f === 'boolean' && t === 'integer') return (v) => (v ? 1 : 0);
  }
  if (t === 'numeric') {
    const [precision, scale] = to.modifiers;
    const limit =
      precision === undefined
        ? (d: Decimal) => d
        : (d: Decimal) => {
            const rounded = roundDecimal(d, scale ?? 0);
            const digits = (rounded.mantissa < 0n ? -rounded.mantissa : rounded.mantissa).toString().length;
            if (rounded.mantissa !== 0n && digits - rounded.scale > precision - (scale ?? 0)) {
              throw new DefiniteError('sql_range', 'numeric field overflow', `a field with precision ${precision}, scale ${scale ?? 0} must round to an absolute value less than 10^${precision - (scale ?? 0)}`);
            }
            return rounded;
          };
    if (isNumeric(from))
      return (v) => {
        if (typeof v === 'number' && !Number.isFinite(v)) {
          if (Number.isNaN(v)) throw new DefiniteError('sql_range', 'cannot convert NaN to numeric');
          throw new DefiniteError('sql_range', 'cannot convert infinity to numeric');
        }
        return limit(toDecimal(v));
      };
  }
  if (t === 'double' && isNumeric(from)) return (v) => toNumber(v);
  if (t === 'real' && isNumeric(from)) return (v) => Math.fround(toNumber(v));
  if (t === 'boolean' && f === 'integer') return (v) => v !== 0;
  if (TEMPORAL_RANK[t] !== undefined && TEMPORAL_RANK[f] !== undefined) {
    if (t === 'date') return (v) => new Timestamp('date', floorDiv((v as Timestamp).micros, DAY_MICROS) * DAY_MICROS);
    return (v) => new Timestamp(t as 'timestamp' | 'timestamptz', (v as Timestamp).micros);
  }
  if ((t === 'json' || t === 'jsonb') && (f === 'json' || f === 'jsonb')) return (v) => v;
  throw new DefiniteError('sql_type', `cannot cast type ${typeLabel(from)} to ${typeLabel(to)}`);
}

function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && a < 0n !== b < 0n ? q - 1n : q;
}

function stringLength(to: Type, explicit: boolean): (value: Value) => Value {
  const length = to.modifiers[0];
  if (length === undefined) return (v) => (typeof v === 'string' ? v : String(v));
  if (to.kind === 'char') return (v) => String(v).slice(0, length).padEnd(length, ' ');
  return (v) => {
    const s = String(v);
    if (s.length <= length) return s;
    if (explicit || s.slice(length).trim() === '') return s.slice(0, length);
    throw new DefiniteError('sql_range', `value too long for type character varying(${length})`);
  };
}

// ---------------------------------------------------------------------------------------------
// Functions and operators

export interface Resolved {
  /** The types the arguments must be cast to first. */
  args: Type[];
  type: Type;
  /** NULL in any argument gives NULL without calling the implementation. */
  strict: boolean;
  fn: string;
}

interface Definition {
  resolve(args: Type[]): { args: Type[]; type: Type; strict?: boolean } | string;
  implement(args: Type[], result: Type): Fn;
}

const DEFINITIONS = new Map<string, Definition>();

function define(names: string | string[], definition: Definition): void {
  for (const name of typeof names === 'string' ? [names] : names) DEFINITIONS.set(name, definition);
}

function numericArgs(args: Type[], count: number): Type[] | string {
  if (args.length !== count) return `takes ${count} argument${count === 1 ? '' : 's'}`;
  let common: Type | undefined;
  for (const arg of args) {
    const t = arg.kind === 'unknown' ? makeType('numeric') : arg;
    if (!isNumeric(t)) return 'needs numbers';
    common = common ? commonType(common, t) : t;
  }
  return args.map(() => common!);
}

// Arithmetic.
for (const op of ['+', '-', '*', '/', '%']) {
  define(op, {
    resolve(args) {
      if (args.length === 1) {
        const t = args[0]!.kind === 'unknown' ? makeType('integer') : args[0]!;
        if (t.kind === 'interval' && (op === '-' || op === '+')) return { args: [t], type: t };
        if (!isNumeric(t)) return 'needs a number';
        return { args: [t], type: t };
      }
      const [a, b] = args as [Type, Type];
      const interval = intervalArithmetic(op, a, b);
      if (interval) return interval;
      if (a.kind === 'date' && isInteger(b) && (op === '+' || op === '-')) return { args: [a, INTEGER], type: a };
      if (isInteger(a) && b.kind === 'date' && op === '+') return { args: [INTEGER, b], type: b };
      if (a.kind === 'date' && b.kind === 'date' && op === '-') return { args: [a, b], type: INTEGER };
      const resolvedA = a.kind === 'unknown' ? (b.kind === 'unknown' ? makeType('numeric') : b) : a;
      const resolvedB = b.kind === 'unknown' ? resolvedA : b;
      if (!isNumeric(resolvedA) || !isNumeric(resolvedB)) return 'needs numbers';
      const common = commonType(resolvedA, resolvedB)!;
      if (op === '%' && (common.kind === 'real' || common.kind === 'double')) return 'is not defined for floating-point numbers';
      return { args: [common, common], type: makeType(common.kind) };
    },
    implement(args, result) {
      if (args.some((t) => t.kind === 'interval') || (TEMPORAL_RANK[args[0]!.kind] !== undefined && TEMPORAL_RANK[args[1]?.kind ?? 'unknown'] !== undefined && args[0]!.kind !== 'date')) {
        return intervalOperator(op, args, result);
      }
      if (args.length === 1) {
        if (op === '+') return (a) => a;
        if (isInteger(result)) return (a) => integerOperator('-', result.kind)(0, a);
        if (result.kind === 'numeric') return (a) => (a as Decimal).negate();
        return (a) => -(a as number);
      }
      if (args[0]!.kind === 'date' || args[1]!.kind === 'date') {
        if (args[0]!.kind === 'date' && args[1]!.kind === 'date') return (a, b) => Number(((a as Timestamp).micros - (b as Timestamp).micros) / DAY_MICROS);
        const sign = op === '-' ? -1n : 1n;
        return (a, b) => (a instanceof Timestamp ? new Timestamp('date', a.micros + sign * BigInt(b as number) * DAY_MICROS) : new Timestamp('date', (b as Timestamp).micros + BigInt(a as number) * DAY_MICROS));
      }
      if (isInteger(result)) return integerOperator(op, result.kind);
      if (result.kind === 'numeric') return numericOperator(op);
      return floatOperator(op, result.kind === 'real');
    },
  });
}

/** Resolution of the operators on intervals and times (undefined: not an interval operation). */
function intervalArithmetic(op: string, a: Type, b: Type): { args: Type[]; type: Type } | undefined {
  const INTERVAL = makeType('interval');
  const ai = a.kind === 'interval';
  const bi = b.kind === 'interval';
  const at = TEMPORAL_RANK[a.kind] !== undefined;
  const bt = TEMPORAL_RANK[b.kind] !== undefined;
  // An unknown literal next to an interval or a time is an interval ('1 day').
  if (op === '+' && at && (bi || b.kind === 'unknown')) return { args: [a, INTERVAL], type: a.kind === 'date' ? makeType('timestamp') : a };
  if (op === '+' && (ai || a.kind === 'unknown') && bt) return { args: [INTERVAL, b], type: b.kind === 'date' ? makeType('timestamp') : b };
  if (op === '-' && at && bi) return { args: [a, INTERVAL], type: a.kind === 'date' ? makeType('timestamp') : a };
  if (op === '-' && at && bt && a.kind !== 'date' && b.kind !== 'date') {
    const common = commonType(a, b)!;
    return { args: [common, common], type: INTERVAL };
  }
  if ((op === '+' || op === '-') && (ai || bi) && (ai || a.kind === 'unknown') && (bi || b.kind === 'unknown')) return { args: [INTERVAL, INTERVAL], type: INTERVAL };
  if (op === '*' && ai && (isNumeric(b) || b.kind === 'unknown')) return { args: [INTERVAL, DOUBLE], type: INTERVAL };
  if (op === '*' && bi && (isNumeric(a) || a.kind === 'unknown')) return { args: [DOUBLE, INTERVAL], type: INTERVAL };
  if (op === '/' && ai && (isNumeric(b) || b.kind === 'unknown')) return { args: [INTERVAL, DOUBLE], type: INTERVAL };
  return undefined;
}

const MICROS_PER_DAY = 86_400_000_000;

/** A time plus an interval: months on the calendar (the day clamped to the month's end), then days, then time. */
export function addInterval(time: Timestamp, interval: Interval, sign: 1 | -1, kind: 'timestamp' | 'timestamptz'): Timestamp {
  let micros = time.micros;
  const months = interval.months * sign;
  if (months !== 0) {
    const dayMicros = BigInt(MICROS_PER_DAY);
    const day = floorDiv(micros, dayMicros);
    const timeOfDay = micros - day * dayMicros;
    const date = new Date(Number(day) * 86_400_000);
    const total = date.getUTCFullYear() * 12 + date.getUTCMonth() + months;
    const year = Math.floor(total / 12);
    const month = total - year * 12;
    const lastDay = new Date(Date.UTC(year, month + 1, 0)).getUTCDate();
    const newDay = Date.UTC(year, month, Math.min(date.getUTCDate(), lastDay)) / 86_400_000;
    micros = BigInt(newDay) * dayMicros + timeOfDay;
  }
  micros += BigInt(interval.days * sign) * BigInt(MICROS_PER_DAY) + interval.micros * BigInt(sign);
  return new Timestamp(kind, micros);
}

/** Multiplies an interval by a factor, cascading fractional months to days and days to time, as PostgreSQL does. */
function scaleInterval(interval: Interval, factor: number): Interval {
  if (!Number.isFinite(factor)) throw new DefiniteError('sql_range', 'interval out of range');
  const months = interval.months * factor;
  const wholeMonths = Math.trunc(months);
  const days = interval.days * factor + (months - wholeMonths) * 30;
  const wholeDays = Math.trunc(days);
  const micros = Number(interval.micros) * factor + (days - wholeDays) * MICROS_PER_DAY;
  return new Interval(wholeMonths || 0, wholeDays || 0, BigInt(Math.round(micros)));
}

function intervalOperator(op: string, args: Type[], result: Type): Fn {
  if (args.length === 1) return (a) => (op === '-' ? new Interval(-(a as Interval).months || 0, -(a as Interval).days || 0, -(a as Interval).micros) : a);
  const [a, b] = args as [Type, Type];
  const kind = (result.kind === 'timestamptz' ? 'timestamptz' : 'timestamp') as 'timestamp' | 'timestamptz';
  if (result.kind === 'interval' && a.kind !== 'interval' && b.kind !== 'interval') {
    // time − time: whole days, then the rest as time (PostgreSQL's timestamp_mi).
    return (x, y) => {
      const diff = (x as Timestamp).micros - (y as Timestamp).micros;
      const day = BigInt(MICROS_PER_DAY);
      return new Interval(0, Number(diff / day), diff % day);
    };
  }
  if (op === '+' || op === '-') {
    const sign = op === '+' ? 1 : -1;
    if (a.kind === 'interval' && b.kind === 'interval') return (x, y) => new Interval((x as Interval).months + sign * (y as Interval).months, (x as Interval).days + sign * (y as Interval).days, (x as Interval).micros + BigInt(sign) * (y as Interval).micros);
    if (a.kind === 'interval') return (x, y) => addInterval(y as Timestamp, x as Interval, 1, kind);
    return (x, y) => addInterval(x as Timestamp, y as Interval, sign as 1 | -1, kind);
  }
  if (op === '*') return a.kind === 'interval' ? (x, y) => scaleInterval(x as Interval, toNumber(y)) : (x, y) => scaleInterval(y as Interval, toNumber(x));
  return (x, y) => {
    const divisor = toNumber(y);
    if (divisor === 0) throw divisionByZero();
    return scaleInterval(x as Interval, 1 / divisor);
  };
}

// Comparisons.
const COMPARISONS: Record<string, (order: number) => boolean> = {
  '=': (o) => o === 0,
  '<>': (o) => o !== 0,
  '!=': (o) => o !== 0,
  '<': (o) => o < 0,
  '<=': (o) => o <= 0,
  '>': (o) => o > 0,
  '>=': (o) => o >= 0,
};

function comparable(args: Type[]): Type | string {
  const found = commonType(args[0]!, args[1]!);
  if (!found) return 'cannot compare these types';
  const common = found.kind === 'unknown' ? TEXT : found;
  if (common.kind === 'json') return 'is not defined for json (use jsonb)';
  return common;
}

/** Compares two non-NULL values of one type, as PostgreSQL orders them. */
export function compareSql(a: Value, b: Value): number {
  if (typeof a === 'number' && typeof b === 'number') return a < b ? -1 : a > b ? 1 : a === b ? 0 : compareValues(a, b);
  if (typeof a === 'string' && typeof b === 'string') return a < b ? -1 : a > b ? 1 : 0;
  return compareValues(a, b);
}

for (const [op, test] of Object.entries(COMPARISONS)) {
  define(op, {
    resolve(args) {
      const common = comparable(args);
      if (typeof common === 'string') return common;
      return { args: [common, common], type: BOOLEAN };
    },
    implement(args) {
      if (args[0]!.kind === 'char') return (a, b) => test(compareSql(String(a).trimEnd(), String(b).trimEnd()));
      if (op === '=') return (a, b) => (typeof a === 'number' && typeof b === 'number' ? a === b : compareSql(a, b) === 0);
      return (a, b) => test(compareSql(a, b));
    },
  });
}

for (const [name, distinct] of [['is_distinct', true], ['is_not_distinct', false]] as const) {
  define(name, {
    resolve(args) {
      const common = comparable(args);
      if (typeof common === 'string') return common;
      return { args: [common, common], type: BOOLEAN, strict: false };
    },
    implement() {
      return (a, b) => {
        const same = a === null || b === null ? a === b : compareSql(a, b) === 0;
        return same !== distinct;
      };
    },
  });
}

// Internal: the value of a scalar subquery from its row count and (only) value.
define('$scalar_subquery', {
  resolve(args) {
    return { args, type: args[1]!, strict: false };
  },
  implement() {
    return (count, value) => {
      if (count !== null && Number(count) > 1) throw new DefiniteError('sql_cardinality', 'more than one row returned by a subquery used as an expression', 'make the subquery return one row: add a WHERE on a key, an aggregate, or LIMIT 1');
      return value;
    };
  },
});
// Internal: x op ANY / ALL (subquery) from the subquery's row and non-NULL counts, min and max
// (SQL's three-valued rules: over no rows ALL is TRUE and ANY FALSE; a NULL leaves it unknown).
define('$quantified', {
  resolve(args) {
    return { args, type: BOOLEAN, strict: false };
  },
  implement() {
    return (quantifier, x, rows, nonNull, min, max) => {
      const [op, which] = String(quantifier).split(' ') as [string, 'ANY' | 'ALL'];
      const total = rows === null ? 0 : Number(rows);
      const known = nonNull === null ? 0 : Number(nonNull);
      if (total === 0) return which === 'ALL';
      if (x === null) return null;
      const unknown = total > known ? null : which === 'ALL';
      if (known === 0) return null;
      const test = (y: Value) => COMPARISONS[op]!(compareSql(x, y));
      if (op === '=' || op === '<>') {
        // (= ANY is IN and <> ALL is NOT IN, bound apart.) = ALL: every value equals x, so
        // min = max = x; <> ANY: some value differs from x.
        const allEqual = compareSql(min!, x) === 0 && compareSql(max!, x) === 0;
        if (op === '=') return allEqual ? unknown : false;
        return allEqual ? unknown : true;
      }
      // ALL: the hardest value decides FALSE; ANY: the easiest decides TRUE.
      const low = op === '<' || op === '<=';
      if (which === 'ALL') return test(low ? min! : max!) ? unknown : false;
      return test(low ? max! : min!) ? true : unknown;
    };
  },
});
// Internal: x IN (subquery) from x, its match count, and the subquery's row and non-NULL counts.
define('$in_subquery', {
  resolve(args) {
    return { args, type: BOOLEAN, strict: false };
  },
  implement() {
    return (x, matches, rows, nonNull) => {
      const total = rows === null ? 0 : Number(rows);
      if (x === null) return total > 0 ? null : false;
      if (matches !== null) return true;
      return total > Number(nonNull ?? 0) ? null : false;
    };
  },
});

// Text.
define('||', {
  resolve(args) {
    const [a, b] = args as [Type, Type];
    if (a.kind === 'jsonb' && b.kind === 'jsonb') return { args, type: a };
    // anynonarray || text: the other side is converted to text, as by an explicit cast.
    if (isString(a) || isString(b) || a.kind === 'unknown' || b.kind === 'unknown') return { args: [isString(a) || a.kind === 'unknown' ? TEXT : a, isString(b) || b.kind === 'unknown' ? TEXT : b], type: TEXT };
    return 'needs text';
  },
  implement(args) {
    if (args[0]!.kind !== 'jsonb' && (!isString(args[0]!) || !isString(args[1]!))) {
      const [x, y] = args.map((t) => (isString(t) ? (v: Value) => v : castFunction(t, TEXT))) as [(v: Value) => Value, (v: Value) => Value];
      return (a, b) => (x(a) as string) + (y(b) as string);
    }
    if (args[0]!.kind === 'jsonb') {
      return (a, b) => {
        const x = (a as Json).value;
        const y = (b as Json).value;
        if (isObject(x) && isObject(y)) return new Json({ ...x, ...y });
        return new Json([...(Array.isArray(x) ? x : [x]), ...(Array.isArray(y) ? y : [y])]);
      };
    }
    return (a, b) => (a as string) + (b as string);
  },
});

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function likeRegExp(pattern: string, insensitive: boolean): RegExp {
  let source = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '\\' && i + 1 < pattern.length) source += escapeRegExp(pattern[++i]!);
    else if (c === '%') source += '[\\s\\S]*';
    else if (c === '_') source += '[\\s\\S]';
    else source += escapeRegExp(c);
  }
  return new RegExp(`^${source}$`, insensitive ? 'i' : '');
}

/** A pattern compiler that keeps the last pattern compiled (patterns are usually constants). */
function lastCompiled(compile: (pattern: string) => RegExp): (pattern: string) => RegExp {
  let last: string | undefined;
  let compiled: RegExp | undefined;
  return (pattern) => {
    if (pattern !== last || !compiled) {
      compiled = compile(pattern);
      last = pattern;
    }
    return compiled;
  };
}

function escapeRegExp(c: string): string {
  return c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

for (const [name, insensitive] of [['like', false], ['ilike', true]] as const) {
  define(name, {
    resolve(args) {
      if (!args.every((a) => isString(a) || a.kind === 'unknown')) return 'needs text';
      return { args: [TEXT, TEXT], type: BOOLEAN };
    },
    implement() {
      const pattern = lastCompiled((text) => likeRegExp(text, insensitive));
      return (a, b) => pattern(b as string).test(a as string);
    },
  });
}

// Boolean logic (not strict: three-valued).
define(['and', 'or'], {
  resolve(args) {
    if (!args.every((a) => a.kind === 'boolean' || a.kind === 'unknown')) return 'needs boolean operands';
    return { args: args.map(() => BOOLEAN), type: BOOLEAN, strict: false };
  },
  implement() {
    throw new Error('and/or are compiled inline');
  },
});
define('not', {
  resolve(args) {
    if (args[0]!.kind !== 'boolean' && args[0]!.kind !== 'unknown') return 'needs a boolean operand';
    return { args: [BOOLEAN], type: BOOLEAN };
  },
  implement() {
    return (a) => !a;
  },
});
define(['is_null', 'is_not_null'], {
  resolve(args) {
    return { args, type: BOOLEAN, strict: false };
  },
  implement() {
    throw new Error('null tests are compiled inline');
  },
});
for (const [name, test] of [
  ['is_true', (v: Value) => v === true],
  ['is_not_true', (v: Value) => v !== true],
  ['is_false', (v: Value) => v === false],
  ['is_not_false', (v: Value) => v !== false],
  ['is_unknown', (v: Value) => v === null],
  ['is_not_unknown', (v: Value) => v !== null],
] as const) {
  define(name, {
    resolve(args) {
      if (args[0]!.kind !== 'boolean' && args[0]!.kind !== 'unknown') return 'needs a boolean operand';
      return { args: [BOOLEAN], type: BOOLEAN, strict: false };
    },
    implement() {
      return (a) => test(a);
    },
  });
}

// Variadic, non-strict.
function sameType(args: Type[]): Type | string {
  let common: Type = args[0] ?? TEXT;
  for (const arg of args.slice(1)) {
    const next = commonType(common, arg);
    if (!next) return `cannot mix ${typeLabel(common)} and ${typeLabel(arg)}`;
    common = next;
  }
  return common.kind === 'unknown' ? TEXT : common;
}
define('coalesce', {
  resolve(args) {
    const common = sameType(args);
    if (typeof common === 'string') return common;
    return { args: args.map(() => common), type: common, strict: false };
  },
  implement() {
    return (...values) => {
      for (const value of values) if (value !== null) return value;
      return null;
    };
  },
});
define('nullif', {
  resolve(args) {
    if (args.length !== 2) return 'takes 2 arguments';
    const common = comparable(args);
    if (typeof common === 'string') return common;
    return { args: [common, common], type: common, strict: false };
  },
  implement() {
    return (a, b) => (a !== null && b !== null && compareSql(a, b) === 0 ? null : a);
  },
});
for (const [name, sign] of [['greatest', 1], ['least', -1]] as const) {
  define(name, {
    resolve(args) {
      const common = sameType(args);
      if (typeof common === 'string') return common;
      return { args: args.map(() => common), type: common, strict: false };
    },
    implement() {
      return (...values) => {
        let best: Value = null;
        for (const value of values) if (value !== null && (best === null || compareSql(value, best) * sign > 0)) best = value;
        return best;
      };
    },
  });
}

// Math.
function numericFunction(name: string | string[], count: number, integerResult: boolean, forDecimal: (d: Decimal, ...rest: Value[]) => Value, forNumber: (x: number, ...rest: Value[]) => Value): void {
  define(name, {
    resolve(args) {
      const resolved = numericArgs(args.slice(0, 1), 1);
      if (typeof resolved === 'string') return resolved;
      if (args.length !== count) return `takes ${count} argument${count === 1 ? '' : 's'}`;
      const t = resolved[0]!;
      const rest = args.slice(1).map(() => INTEGER);
      return { args: [t, ...rest], type: isInteger(t) && !integerResult ? t : t };
    },
    implement(args) {
      const t = args[0]!;
      if (t.kind === 'numeric') return (d, ...rest) => forDecimal(d as Decimal, ...rest);
      if (isInteger(t)) return (x, ...rest) => {
        const r = forNumber(Number(x), ...rest);
        return typeof r === 'number' ? checkedInteger(BigInt(Math.round(r)), t.kind) : r;
      };
      return (x, ...rest) => forNumber(x as number, ...rest);
    },
  });
}
numericFunction('abs', 1, true, (d) => (d.mantissa < 0n ? d.negate() : d), Math.abs);
numericFunction(['ceil', 'ceiling'], 1, true, (d) => new Decimal(-roundFloor(d.negate()).mantissa, 0), Math.ceil);
numericFunction('floor', 1, true, (d) => roundFloor(d), Math.floor);
numericFunction('sign', 1, true, (d) => new Decimal(d.mantissa < 0n ? -1n : d.mantissa > 0n ? 1n : 0n, 0), Math.sign);

function roundFloor(d: Decimal): Decimal {
  const p = 10n ** BigInt(d.scale);
  return new Decimal(floorDiv(d.mantissa, p), 0);
}

define(['round', 'trunc'], {
  resolve(args) {
    if (args.length < 1 || args.length > 2) return 'takes 1 or 2 arguments';
    const t = args[0]!.kind === 'unknown' ? NUMERIC : args[0]!;
    if (!isNumeric(t)) return 'needs a number';
    if (args.length === 2) return { args: [NUMERIC, INTEGER], type: NUMERIC };
    return { args: [isInteger(t) ? DOUBLE : t], type: isInteger(t) ? DOUBLE : t };
  },
  implement(args) {
    // `this` is not available; the name is looked up by the caller through the two definitions below
    throw new Error(`round/trunc are implemented through roundOrTrunc (${args.length})`);
  },
});
export function roundOrTrunc(name: string, args: Type[]): Fn {
  const trunc = name === 'trunc';
  if (args[0]!.kind === 'numeric') {
    return (d, places) => {
      const x = d as Decimal;
      const scale = places === undefined ? 0 : Number(places);
      if (scale >= x.scale) return new Decimal(x.mantissaAt(Math.max(scale, 0)), Math.max(scale, 0));
      if (trunc) {
        const p = 10n ** BigInt(x.scale - Math.max(scale, 0));
        const m = x.mantissa / p;
        return scale < 0 ? new Decimal(m / 10n ** BigInt(-scale) * 10n ** BigInt(-scale), 0) : new Decimal(m, scale);
      }
      if (scale < 0) {
        const p = 10n ** BigInt(-scale);
        const r = roundDecimal(x, 0).mantissa;
        const q = (r < 0n ? -1n : 1n) * ((((r < 0n ? -r : r) * 2n) / p + 1n) / 2n);
        return new Decimal(q * p, 0);
      }
      return roundDecimal(x, scale);
    };
  }
  return (x) => {
    const v = x as number;
    if (trunc) return Math.trunc(v);
    // round() of a double rounds half to even (rint)
    let r = Math.round(v);
    if (Math.abs(v % 1) === 0.5 && r % 2 !== 0) r -= 1;
    return r;
  };
}

function floatFunction(name: string | string[], f: (...x: number[]) => number, count = 1, check?: (...x: number[]) => string | undefined): void {
  define(name, {
    resolve(args) {
      if (args.length !== count) return `takes ${count} argument${count === 1 ? '' : 's'}`;
      for (const arg of args) if (!isNumeric(arg) && arg.kind !== 'unknown') return 'needs numbers';
      return { args: args.map(() => DOUBLE), type: DOUBLE };
    },
    implement() {
      return (...values) => {
        const numbers = values.map((v) => v as number);
        const problem = check?.(...numbers);
        if (problem) throw new DefiniteError('sql_range', problem);
        return f(...numbers);
      };
    },
  });
}
floatFunction('sqrt', Math.sqrt, 1, (x) => (x! < 0 ? 'cannot take square root of a negative number' : undefined));
floatFunction('cbrt', Math.cbrt);
floatFunction('exp', Math.exp);
floatFunction('ln', Math.log, 1, (x) => (x! < 0 ? 'cannot take logarithm of a negative number' : x === 0 ? 'cannot take logarithm of zero' : undefined));
floatFunction(['log', 'log10'], Math.log10, 1, (x) => (x! < 0 ? 'cannot take logarithm of a negative number' : x === 0 ? 'cannot take logarithm of zero' : undefined));
floatFunction(['power', 'pow'], Math.pow, 2);
floatFunction('degrees', (x) => (x * 180) / Math.PI);
floatFunction('radians', (x) => (x * Math.PI) / 180);
floatFunction('pi', () => Math.PI, 0);
for (const [name, f] of Object.entries({ sin: Math.sin, cos: Math.cos, tan: Math.tan, asin: Math.asin, acos: Math.acos, atan: Math.atan })) floatFunction(name, f);
floatFunction('atan2', Math.atan2, 2);
define('mod', {
  resolve(args) {
    const resolved = numericArgs(args, 2);
    if (typeof resolved === 'string') return resolved;
    if (resolved[0]!.kind === 'real' || resolved[0]!.kind === 'double') return 'is not defined for floating-point numbers';
    return { args: resolved, type: resolved[0]! };
  },
  implement(args) {
    return isInteger(args[0]!) ? integerOperator('%', args[0]!.kind) : numericOperator('%');
  },
});

// Strings.
function textFunction(name: string | string[], argKinds: Array<'text' | 'integer'>, minArgs: number, result: Type, f: (...args: Value[]) => Value): void {
  define(name, {
    resolve(args) {
      if (args.length < minArgs || args.length > argKinds.length) return minArgs === argKinds.length ? `takes ${minArgs} argument${minArgs === 1 ? '' : 's'}` : `takes ${minArgs} to ${argKinds.length} arguments`;
      const targets = args.map((arg, i) => (argKinds[i] === 'text' ? TEXT : INTEGER));
      for (let i = 0; i < args.length; i++) {
        const arg = args[i]!;
        if (arg.kind === 'unknown') continue;
        if (argKinds[i] === 'text' && !isString(arg)) return `needs text for argument ${i + 1}, not ${typeLabel(arg)}`;
        if (argKinds[i] === 'integer' && !isInteger(arg)) return `needs an integer for argument ${i + 1}, not ${typeLabel(arg)}`;
      }
      return { args: targets, type: result };
    },
    implement() {
      return f;
    },
  });
}
const chars = (s: string) => [...s];
textFunction('lower', ['text'], 1, TEXT, (s) => (s as string).toLowerCase());
textFunction('upper', ['text'], 1, TEXT, (s) => (s as string).toUpperCase());
textFunction(['length', 'char_length', 'character_length'], ['text'], 1, INTEGER, (s) => chars(s as string).length);
textFunction('octet_length', ['text'], 1, INTEGER, (s) => Buffer.byteLength(s as string));
textFunction(['substr', 'substring'], ['text', 'integer', 'integer'], 2, TEXT, (s, from, count) => {
  const all = chars(s as string);
  const start = Number(from) - 1;
  if (count === undefined) return all.slice(Math.max(start, 0)).join('');
  if (Number(count) < 0) throw new DefiniteError('sql_range', 'negative substring length not allowed');
  const end = start + Number(count);
  return all.slice(Math.max(start, 0), Math.max(end, 0)).join('');
});
textFunction('strpos', ['text', 'text'], 2, INTEGER, (s, sub) => {
  const index = (s as string).indexOf(sub as string);
  return index < 0 ? 0 : chars((s as string).slice(0, index)).length + 1;
});
textFunction('replace', ['text', 'text', 'text'], 3, TEXT, (s, from, to) => ((from as string) === '' ? s : (s as string).split(from as string).join(to as string)));
function trimmer(mode: 'both' | 'leading' | 'trailing') {
  return (s: Value, set: Value = ' ') => {
    const characters = new Set(chars(set as string));
    const all = chars(s as string);
    let start = 0;
    let end = all.length;
    if (mode !== 'trailing') while (start < end && characters.has(all[start]!)) start++;
    if (mode !== 'leading') while (end > start && characters.has(all[end - 1]!)) end--;
    return all.slice(start, end).join('');
  };
}
textFunction(['btrim', 'trim'], ['text', 'text'], 1, TEXT, trimmer('both'));
textFunction('ltrim', ['text', 'text'], 1, TEXT, trimmer('leading'));
textFunction('rtrim', ['text', 'text'], 1, TEXT, trimmer('trailing'));
textFunction('left', ['text', 'integer'], 2, TEXT, (s, n) => {
  const all = chars(s as string);
  const k = Number(n);
  return (k >= 0 ? all.slice(0, k) : all.slice(0, Math.max(all.length + k, 0))).join('');
});
textFunction('right', ['text', 'integer'], 2, TEXT, (s, n) => {
  const all = chars(s as string);
  const k = Number(n);
  return (k >= 0 ? all.slice(Math.max(all.length - k, 0)) : all.slice(Math.min(-k, all.length))).join('');
});
function pad(left: boolean) {
  return (s: Value, n: Value, fill: Value = ' ') => {
    const all = chars(s as string);
    const length = Number(n);
    if (length <= all.length) return all.slice(0, Math.max(length, 0)).join('');
    const filler = chars(fill as string);
    if (filler.length === 0) return s;
    const padding: string[] = [];
    while (padding.length < length - all.length) padding.push(filler[padding.length % filler.length]!);
    return left ? padding.join('') + (s as string) : (s as string) + padding.join('');
  };
}
textFunction('lpad', ['text', 'integer', 'text'], 2, TEXT, pad(true));
textFunction('rpad', ['text', 'integer', 'text'], 2, TEXT, pad(false));
textFunction('repeat', ['text', 'integer'], 2, TEXT, (s, n) => (s as string).repeat(Math.max(Number(n), 0)));
textFunction('reverse', ['text'], 1, TEXT, (s) => chars(s as string).reverse().join(''));
textFunction('split_part', ['text', 'text', 'integer'], 3, TEXT, (s, delimiter, n) => {
  const index = Number(n);
  if (index === 0) throw new DefiniteError('sql_range', 'field position must not be zero');
  const parts = (delimiter as string) === '' ? [s as string] : (s as string).split(delimiter as string);
  return (index > 0 ? parts[index - 1] : parts[parts.length + index]) ?? '';
});
textFunction('starts_with', ['text', 'text'], 2, BOOLEAN, (s, prefix) => (s as string).startsWith(prefix as string));
textFunction('initcap', ['text'], 1, TEXT, (s) => (s as string).toLowerCase().replace(/(^|[^a-z0-9])([a-z])/g, (_, before: string, c: string) => before + c.toUpperCase()));
textFunction('ascii', ['text'], 1, INTEGER, (s) => (s as string).codePointAt(0) ?? 0);
textFunction('chr', ['integer'], 1, TEXT, (n) => String.fromCodePoint(Number(n)));
textFunction('translate', ['text', 'text', 'text'], 3, TEXT, (s, from, to) => {
  const f = chars(from as string);
  const t = chars(to as string);
  return chars(s as string)
    .map((c) => {
      const i = f.indexOf(c);
      return i < 0 ? c : (t[i] ?? '');
    })
    .join('');
});
define(['concat', 'concat_ws'], {
  resolve(args) {
    return { args: args.map((arg) => (arg.kind === 'unknown' ? TEXT : arg)), type: TEXT, strict: false };
  },
  implement() {
    throw new Error('concat is implemented through concatFunction');
  },
});
export function concatFunction(name: string, args: Type[]): Fn {
  const texts = args.map((arg) => (isString(arg) ? (v: Value) => v as string : castFunction(arg, TEXT) as (v: Value) => string));
  if (name === 'concat') return (...values) => values.map((v, i) => (v === null ? '' : texts[i]!(v))).join('');
  return (separator, ...values) => (separator === null ? null : values.flatMap((v, i) => (v === null ? [] : [texts[i + 1]!(v)])).join(separator as string));
}
define('md5', {
  resolve(args) {
    return args.length === 1 ? { args: [TEXT], type: TEXT } : 'takes 1 argument';
  },
  implement() {
    return (s) => md5(s as string);
  },
});
function md5(text: string): string {
  return createHash('md5').update(text).digest('hex');
}

// Dates and times.
const FIELDS_MICROS: Record<string, bigint> = { microseconds: 1n, milliseconds: 1000n, second: 1_000_000n, minute: 60_000_000n, hour: 3_600_000_000n, day: DAY_MICROS };
define('date_trunc', {
  resolve(args) {
    if (args.length !== 2) return 'takes 2 arguments';
    const t = args[1]!.kind === 'unknown' ? makeType('timestamp') : args[1]!;
    if (TEMPORAL_RANK[t.kind] === undefined) return 'needs a timestamp';
    const result = t.kind === 'date' ? makeType('timestamp') : t;
    return { args: [TEXT, result], type: result };
  },
  implement(_args, result) {
    return (field, ts) => {
      const micros = (ts as Timestamp).micros;
      const unit = String(field).toLowerCase();
      const fixed = FIELDS_MICROS[unit];
      if (fixed) return new Timestamp(result.kind as 'timestamp', floorDiv(micros, fixed) * fixed);
      const date = new Date(Number(floorDiv(micros, 1000n)));
      let truncated: number;
      if (unit === 'week') {
        const day = Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate());
        truncated = day - ((date.getUTCDay() + 6) % 7) * 86_400_000;
      } else if (unit === 'month') truncated = Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), 1);
      else if (unit === 'quarter') truncated = Date.UTC(date.getUTCFullYear(), Math.floor(date.getUTCMonth() / 3) * 3, 1);
      else if (unit === 'year') truncated = Date.UTC(date.getUTCFullYear(), 0, 1);
      else if (unit === 'decade') truncated = Date.UTC(Math.floor(date.getUTCFullYear() / 10) * 10, 0, 1);
      else if (unit === 'century') truncated = Date.UTC(Math.floor((date.getUTCFullYear() - 1) / 100) * 100 + 1, 0, 1);
      else throw new DefiniteError('sql_value', `unit "${unit}" not recognized for date_trunc`, 'use microseconds, milliseconds, second, minute, hour, day, week, month, quarter, year, decade or century');
      return new Timestamp(result.kind as 'timestamp', BigInt(truncated) * 1000n);
    };
  },
});
define(['date_part', 'extract'], {
  resolve(args) {
    if (args.length !== 2) return 'takes 2 arguments';
    const t = args[1]!.kind === 'unknown' ? makeType('timestamp') : args[1]!;
    if (TEMPORAL_RANK[t.kind] === undefined && t.kind !== 'interval') return 'needs a date, timestamp or interval';
    return { args: [TEXT, t], type: NUMERIC };
  },
  implement() {
    return (field, ts) => {
      if (ts instanceof Interval) return intervalPart(String(field).toLowerCase(), ts);
      const micros = (ts as Timestamp).micros;
      const date = new Date(Number(floorDiv(micros, 1000n)));
      const unit = String(field).toLowerCase();
      const secondsMicros = ((micros % 60_000_000n) + 60_000_000n) % 60_000_000n;
      switch (unit) {
        case 'epoch':
          return new Decimal(micros, 6);
        case 'year':
          return Decimal.fromInteger(date.getUTCFullYear());
        case 'quarter':
          return Decimal.fromInteger(Math.floor(date.getUTCMonth() / 3) + 1);
        case 'month':
          return Decimal.fromInteger(date.getUTCMonth() + 1);
        case 'day':
          return Decimal.fromInteger(date.getUTCDate());
        case 'dow':
          return Decimal.fromInteger(date.getUTCDay());
        case 'isodow':
          return Decimal.fromInteger(date.getUTCDay() || 7);
        case 'doy':
          return Decimal.fromInteger(Math.floor((Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate()) - Date.UTC(date.getUTCFullYear(), 0, 1)) / 86_400_000) + 1);
        case 'hour':
          return Decimal.fromInteger(date.getUTCHours());
        case 'minute':
          return Decimal.fromInteger(date.getUTCMinutes());
        case 'second':
          return new Decimal(secondsMicros, 6);
        case 'milliseconds':
          return new Decimal(secondsMicros, 3);
        case 'microseconds':
          return new Decimal(secondsMicros, 0);
        default:
          throw new DefiniteError('sql_value', `unit "${unit}" not recognized for extract`, 'use epoch, year, quarter, month, day, dow, isodow, doy, hour, minute, second, milliseconds or microseconds');
      }
    };
  },
});
function intervalPart(unit: string, interval: Interval): Decimal {
  const seconds = interval.micros % 60_000_000n;
  switch (unit) {
    case 'epoch': {
      // PostgreSQL counts a year as 365.25 days and a month as 30 days here.
      const years = Math.trunc(interval.months / 12);
      const months = interval.months % 12;
      const micros = BigInt(years) * 31_557_600_000_000n + (BigInt(months) * 30n + BigInt(interval.days)) * 86_400_000_000n + interval.micros;
      return new Decimal(micros, 6);
    }
    case 'year':
      return Decimal.fromInteger(Math.trunc(interval.months / 12));
    case 'month':
      return Decimal.fromInteger(interval.months % 12);
    case 'day':
      return Decimal.fromInteger(interval.days);
    case 'hour':
      return Decimal.fromInteger(interval.micros / 3_600_000_000n);
    case 'minute':
      return Decimal.fromInteger((interval.micros / 60_000_000n) % 60n);
    case 'second':
      return new Decimal(seconds, 6);
    case 'milliseconds':
      return new Decimal(seconds, 3);
    case 'microseconds':
      return new Decimal(seconds, 0);
    default:
      throw new DefiniteError('sql_value', `unit "${unit}" not supported for type interval`, 'use epoch, year, month, day, hour, minute, second, milliseconds or microseconds');
  }
}

const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];
const WEEKDAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];

/** PostgreSQL's to_char for times: the common template patterns; other text is copied, "quoted" text literally. */
function formatTime(micros: bigint, template: string): string {
  const millis = Number(floorDiv(micros, 1000n));
  const date = new Date(millis);
  const fraction = Number(((micros % 1_000_000n) + 1_000_000n) % 1_000_000n);
  const pad = (n: number, width: number) => String(n).padStart(width, '0');
  const hour = date.getUTCHours();
  const patterns: Array<[RegExp, () => string]> = [
    [/^YYYY/, () => pad(date.getUTCFullYear(), 4)],
    [/^YY/, () => pad(date.getUTCFullYear() % 100, 2)],
    [/^MONTH/, () => MONTHS[date.getUTCMonth()]!.toUpperCase().padEnd(9)],
    [/^Month/, () => MONTHS[date.getUTCMonth()]!.padEnd(9)],
    [/^month/, () => MONTHS[date.getUTCMonth()]!.toLowerCase().padEnd(9)],
    [/^MON/, () => MONTHS[date.getUTCMonth()]!.slice(0, 3).toUpperCase()],
    [/^Mon/, () => MONTHS[date.getUTCMonth()]!.slice(0, 3)],
    [/^MM/, () => pad(date.getUTCMonth() + 1, 2)],
    [/^DAY/, () => WEEKDAYS[date.getUTCDay()]!.toUpperCase().padEnd(9)],
    [/^Day/, () => WEEKDAYS[date.getUTCDay()]!.padEnd(9)],
    [/^DY/, () => WEEKDAYS[date.getUTCDay()]!.slice(0, 3).toUpperCase()],
    [/^Dy/, () => WEEKDAYS[date.getUTCDay()]!.slice(0, 3)],
    [/^DDD/, () => pad(Math.floor((Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate()) - Date.UTC(date.getUTCFullYear(), 0, 1)) / 86_400_000) + 1, 3)],
    [/^DD/, () => pad(date.getUTCDate(), 2)],
    [/^D/, () => String(date.getUTCDay() + 1)],
    [/^HH24/, () => pad(hour, 2)],
    [/^HH12|^HH/, () => pad(hour % 12 === 0 ? 12 : hour % 12, 2)],
    [/^MI/, () => pad(date.getUTCMinutes(), 2)],
    [/^SS/, () => pad(date.getUTCSeconds(), 2)],
    [/^MS/, () => pad(Math.floor(fraction / 1000), 3)],
    [/^US/, () => pad(fraction, 6)],
    [/^(AM|PM)/, () => (hour < 12 ? 'AM' : 'PM')],
    [/^(am|pm)/, () => (hour < 12 ? 'am' : 'pm')],
    [/^Q/, () => String(Math.floor(date.getUTCMonth() / 3) + 1)],
  ];
  let out = '';
  let rest = template;
  while (rest.length > 0) {
    if (rest[0] === '"') {
      const end = rest.indexOf('"', 1);
      out += end < 0 ? rest.slice(1) : rest.slice(1, end);
      rest = end < 0 ? '' : rest.slice(end + 1);
      continue;
    }
    const match = patterns.find(([pattern]) => pattern.test(rest));
    if (match) {
      const [pattern, render] = match;
      out += render();
      rest = rest.slice(pattern.exec(rest)![0].length);
    } else {
      out += rest[0];
      rest = rest.slice(1);
    }
  }
  return out;
}

define('to_char', {
  resolve(args) {
    if (args.length !== 2) return 'takes 2 arguments (a time and a template)';
    const t = args[0]!.kind === 'unknown' ? makeType('timestamp') : args[0]!;
    if (TEMPORAL_RANK[t.kind] === undefined) return 'formats dates and timestamps only (cast numbers to text)';
    return { args: [t, TEXT], type: TEXT };
  },
  implement() {
    return (ts, template) => formatTime((ts as Timestamp).micros, template as string);
  },
});
define('to_timestamp', {
  resolve(args) {
    if (args.length !== 1) return 'takes 1 argument (seconds since 1970-01-01 UTC)';
    return { args: [DOUBLE], type: makeType('timestamptz') };
  },
  implement() {
    return (seconds) => {
      const value = seconds as number;
      if (!Number.isFinite(value)) throw new DefiniteError('sql_range', 'timestamp out of range');
      return new Timestamp('timestamptz', BigInt(Math.round(value * 1e6)));
    };
  },
});

define('make_date', {
  resolve(args) {
    if (args.length !== 3) return 'takes 3 arguments';
    return { args: [INTEGER, INTEGER, INTEGER], type: makeType('date') };
  },
  implement() {
    return (y, m, d) => {
      const millis = Date.UTC(Number(y), Number(m) - 1, Number(d));
      const check = new Date(millis);
      if (check.getUTCMonth() !== Number(m) - 1 || check.getUTCDate() !== Number(d)) throw new DefiniteError('sql_value', `date field value out of range: ${y}-${m}-${d}`);
      return new Timestamp('date', BigInt(millis) * 1000n);
    };
  },
});

// JSON.
function jsonArg(t: Type): boolean {
  return t.kind === 'json' || t.kind === 'jsonb';
}
for (const [name, asText] of [['->', false], ['->>', true]] as const) {
  define(name, {
    resolve(args) {
      if (!jsonArg(args[0]!)) return 'needs json or jsonb on the left';
      const key = args[1]!;
      const keyType = isInteger(key) ? INTEGER : TEXT;
      if (!isInteger(key) && !isString(key) && key.kind !== 'unknown') return 'needs a text key or an integer index';
      return { args: [args[0]!, keyType], type: asText ? TEXT : args[0]! };
    },
    implement() {
      return (j, key) => {
        const value = (j as Json).value;
        let found: unknown;
        if (typeof key === 'string') found = isObject(value) ? value[key] : undefined;
        else if (Array.isArray(value)) {
          const index = Number(key);
          found = value[index < 0 ? value.length + index : index];
        }
        if (found === undefined) return null;
        if (asText) return found === null ? null : typeof found === 'string' ? found : new Json(found).text;
        return new Json(found);
      };
    },
  });
}
// #> and #>> take a path given as a text array literal: '{a,0,b}'.
for (const [name, asText] of [['#>', false], ['#>>', true]] as const) {
  define(name, {
    resolve(args) {
      if (!jsonArg(args[0]!)) return 'needs json or jsonb on the left';
      if (!isString(args[1]!) && args[1]!.kind !== 'unknown') return "needs a path such as '{a,0,b}' on the right";
      return { args: [args[0]!, TEXT], type: asText ? TEXT : args[0]! };
    },
    implement() {
      return (j, path) => {
        const text = String(path).trim();
        if (!/^\{.*\}$/.test(text)) throw new DefiniteError('sql_input', `malformed array literal: "${text}"`, "write the path as '{key,0,key}'");
        const keys = text.slice(1, -1) === '' ? [] : text.slice(1, -1).split(',').map((key) => key.trim().replace(/^"(.*)"$/, '$1'));
        return walkJson((j as Json).value, keys, asText);
      };
    },
  });
}
for (const [op, leftContains] of [['@>', true], ['<@', false]] as const) {
  define(op, {
    resolve(args) {
      const jsonb = makeType('jsonb');
      if (!args.every((a) => a.kind === 'jsonb' || a.kind === 'unknown')) return 'needs jsonb on both sides';
      return { args: [jsonb, jsonb], type: BOOLEAN };
    },
    implement() {
      return leftContains ? (a, b) => jsonContains((a as Json).value, (b as Json).value) : (a, b) => jsonContains((b as Json).value, (a as Json).value);
    },
  });
}
define('?', {
  resolve(args) {
    if (args[0]!.kind !== 'jsonb') return 'needs jsonb on the left';
    return { args: [args[0]!, TEXT], type: BOOLEAN };
  },
  implement() {
    return (j, key) => {
      const value = (j as Json).value;
      if (Array.isArray(value)) return value.some((item) => item === key);
      return isObject(value) && Object.hasOwn(value, key as string);
    };
  },
});

/** jsonb containment (@>): every part of `b` is in `a`, arrays as sets. */
function jsonContains(a: unknown, b: unknown): boolean {
  if (Array.isArray(a)) {
    if (Array.isArray(b)) return b.every((item) => a.some((candidate) => jsonContains(candidate, item)));
    return a.some((candidate) => jsonContains(candidate, b)) || false;
  }
  if (isObject(a)) return isObject(b) && Object.entries(b).every(([key, value]) => Object.hasOwn(a, key) && jsonContains(a[key], value));
  return a === b;
}

for (const [names, asText] of [[['jsonb_extract_path_text', 'json_extract_path_text'], true], [['jsonb_extract_path', 'json_extract_path'], false]] as const) {
define([...names], {
  resolve(args) {
    if (args.length < 1 || !jsonArg(args[0]!)) return 'needs json or jsonb first';
    return { args: [args[0]!, ...args.slice(1).map(() => TEXT)], type: asText ? TEXT : args[0]! };
  },
  implement() {
    return extractPath(asText);
  },
});
}
function extractPath(asText: boolean): Fn {
  return (j, ...keys) => (keys.includes(null) ? null : walkJson((j as Json).value, keys as string[], asText));
}

/** The JSON value at a path of object keys and array indexes (negative from the end), or NULL. */
function walkJson(start: unknown, keys: readonly string[], asText: boolean): Value {
  let value = start;
  for (const key of keys) {
    if (Array.isArray(value) && /^-?\d+$/.test(key)) {
      const index = Number(key);
      value = value[index < 0 ? value.length + index : index];
    } else if (isObject(value)) value = value[key];
    else return null;
    if (value === undefined) return null;
  }
  if (asText) return value === null ? null : typeof value === 'string' ? value : new Json(value).text;
  return new Json(value);
}

// Regular expressions (POSIX in PostgreSQL; JavaScript's syntax covers the common subset).
function regex(pattern: string, flags: string): RegExp {
  try {
    return new RegExp(pattern, flags);
  } catch (error) {
    throw new DefiniteError('sql_input', `invalid regular expression: ${(error as Error).message}`, 'check the pattern');
  }
}
for (const [op, insensitive, negated] of [['~', false, false], ['~*', true, false], ['!~', false, true], ['!~*', true, true]] as const) {
  define(op, {
    resolve(args) {
      if (!args.every((a) => isString(a) || a.kind === 'unknown')) return 'needs text';
      return { args: [TEXT, TEXT], type: BOOLEAN };
    },
    implement() {
      const pattern = lastCompiled((text) => regex(text, insensitive ? 'i' : ''));
      return (a, b) => pattern(b as string).test(a as string) !== negated;
    },
  });
}
define('regexp_replace', {
  resolve(args) {
    if (args.length < 3 || args.length > 4) return 'takes 3 or 4 arguments (source, pattern, replacement[, flags])';
    return { args: args.map(() => TEXT), type: TEXT };
  },
  implement() {
    return (source, pattern, replacement, flags = '') => {
      const f = String(flags);
      const re = regex(pattern as string, (f.includes('g') ? 'g' : '') + (f.includes('i') ? 'i' : ''));
      // PostgreSQL writes back-references as \1; JavaScript as $1.
      return (source as string).replace(re, (replacement as string).replace(/\$/g, '$$$$').replace(/\\(\d)/g, '$$$1').replace(/\\&/g, '$$&'));
    };
  },
});
define('regexp_count', {
  resolve(args) {
    if (args.length !== 2) return 'takes 2 arguments';
    return { args: [TEXT, TEXT], type: INTEGER };
  },
  implement() {
    return (source, pattern) => ((source as string).match(regex(pattern as string, 'g')) ?? []).length;
  },
});

define(['jsonb_typeof', 'json_typeof'], {
  resolve(args) {
    return args.length === 1 && jsonArg(args[0]!) ? { args, type: TEXT } : 'needs one json argument';
  },
  implement() {
    return (j) => {
      const value = (j as Json).value;
      return value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value === 'object' ? 'object' : typeof value === 'number' ? 'number' : typeof value === 'boolean' ? 'boolean' : 'string';
    };
  },
});
define(['jsonb_array_length', 'json_array_length'], {
  resolve(args) {
    return args.length === 1 && jsonArg(args[0]!) ? { args, type: INTEGER } : 'needs one json argument';
  },
  implement() {
    return (j) => {
      const value = (j as Json).value;
      if (!Array.isArray(value)) throw new DefiniteError('sql_value', 'cannot get array length of a non-array');
      return value.length;
    };
  },
});

/** A value of a SQL type as JSON (to_jsonb, json_build_object). */
export function toJsonValue(value: Value, t: Type): unknown {
  if (value === null) return null;
  if (value instanceof Json) return value.value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'string') return value;
  if (typeof value === 'bigint' || value instanceof Decimal) return Number(value.toString());
  return t.kind === 'unknown' ? String(value) : outputValue(value, t as SqlType);
}
define(['jsonb_build_object', 'json_build_object'], {
  resolve(args) {
    if (args.length % 2 !== 0) return 'needs key/value pairs (an even number of arguments)';
    return { args: args.map((arg, i) => (i % 2 === 0 ? TEXT : arg.kind === 'unknown' ? TEXT : arg)), type: makeType('jsonb'), strict: false };
  },
  implement(args) {
    return (...values) => {
      const object: Record<string, unknown> = {};
      for (let i = 0; i < values.length; i += 2) {
        if (values[i] === null) throw new DefiniteError('sql_value', 'argument 1 cannot be null', 'object keys must be text');
        object[values[i] as string] = toJsonValue(values[i + 1]!, args[i + 1]!);
      }
      return new Json(object);
    };
  },
});
define(['to_jsonb', 'to_json'], {
  resolve(args) {
    return args.length === 1 ? { args: [args[0]!.kind === 'unknown' ? TEXT : args[0]!], type: makeType('jsonb') } : 'takes 1 argument';
  },
  implement(args) {
    return (v) => new Json(toJsonValue(v, args[0]!));
  },
});

/** The functions that are not deterministic: refused in views (a view must depend only on its inputs). */
const NONDETERMINISTIC = new Set(['now', 'random', 'clock_timestamp', 'statement_timestamp', 'transaction_timestamp', 'timeofday', 'gen_random_uuid', 'current_timestamp', 'current_date', 'localtimestamp', 'setseed']);

/** Definitions that are operators or internal, not functions a query may call by name. */
const NOT_CALLABLE = new Set(['and', 'or', 'not', 'like', 'ilike', 'is_null', 'is_not_null', 'is_distinct', 'is_not_distinct', 'is_true', 'is_not_true', 'is_false', 'is_not_false', 'is_unknown', 'is_not_unknown', 'extract']);

export function isKnownFunction(name: string): boolean {
  return (DEFINITIONS.has(name) && /^[a-z]/.test(name) && !NOT_CALLABLE.has(name)) || NONDETERMINISTIC.has(name);
}

export function knownFunctions(): string[] {
  return [...DEFINITIONS.keys()].filter((name) => /^[a-z]/.test(name) && !NOT_CALLABLE.has(name));
}

/**
 * Resolves a function or operator for its argument types; throws a DefiniteError naming the
 * problem (`what` is how the call is shown in messages).
 */
export function resolveFunction(name: string, args: Type[], what = name): Resolved {
  if (NONDETERMINISTIC.has(name)) {
    throw new DefiniteError('sql_unsupported', `${name}() is not allowed in a view: its result would depend on when a row is processed, not only on the data`, 'add the time to the events themselves (a timestamp column), or compute it in the application');
  }
  const definition = DEFINITIONS.get(name);
  if (!definition) throw new DefiniteError('sql_function', `function ${name}(${args.map(typeLabel).join(', ')}) does not exist`, undefined);
  const resolved = definition.resolve(args);
  if (typeof resolved === 'string') {
    const isOperator = /^[^a-z]/.test(name);
    throw new DefiniteError(
      'sql_function',
      isOperator ? `operator does not exist: ${args.length === 2 ? `${typeLabel(args[0]!)} ${name} ${typeLabel(args[1]!)}` : `${name} ${typeLabel(args[0]!)}`} (${what} ${resolved})` : `function ${name}(${args.map(typeLabel).join(', ')}) ${resolved}`,
      'add explicit casts, e.g. CAST(x AS integer) or x::text',
    );
  }
  return { args: resolved.args, type: resolved.type, strict: resolved.strict ?? true, fn: name };
}

/** The implementation of a resolved function, for its (already cast) argument types. */
export function implementation(name: string, args: Type[], result: Type): Fn {
  if (name === 'round' || name === 'trunc') return roundOrTrunc(name, args);
  if (name === 'concat' || name === 'concat_ws') return concatFunction(name, args);
  return DEFINITIONS.get(name)!.implement(args, result);
}

export { valuesEqual };
export type { TypeKind };
