/**
 * PostgreSQL types in Sluice: resolving type names, reading values from their text form (what a
 * literal, an INSERT or a CDC text value gives) and writing them back as PostgreSQL prints them.
 *
 * Type → value kind (core/value.ts): smallint, integer, bigint → integer (number, or bigint past
 * 2^53); numeric → Decimal; real, double precision → number; text, varchar, char, uuid → string;
 * boolean → boolean; date, timestamp, timestamptz → Timestamp; json, jsonb → Json; bytea →
 * Uint8Array.
 *
 * Invariants:
 * - Input follows PostgreSQL's input functions and their error messages ("invalid input syntax
 *   for type integer: "x"", "value "…" is out of range for type smallint", "value too long for
 *   type character varying(3)", "numeric field overflow"); the session time zone is UTC.
 * - Output is PostgreSQL's text output for the same value (t/f, '\x…' for bytea, '+00' for
 *   timestamptz, at least two exponent digits for floats, jsonb's key order and spacing).
 * - Input is assignment: a varchar(n) value that is too long is an error, as on INSERT (an
 *   explicit cast `'abcd'::varchar(3)` truncates instead — the binder's business).
 * - Intervals read PostgreSQL's verbose form ('1 year 2 mons 3 days 04:05:06', '90 minutes',
 *   '1.5 hours', '-2 days ago') and ISO 8601 durations ('P1Y2M3DT4H5M6S'), and print as
 *   PostgreSQL's default style does.
 * - Not yet: arrays (refused by name), json's verbatim text (json prints its
 *   value, not the text it was given). Checked against PostgreSQL 15 by hand; the expected
 *   strings in types.test.ts are what psql printed.
 */

import { canonicalInteger, Decimal, DefiniteError, Interval, Json, Timestamp, type Value } from '../core/index.ts';

export type TypeKind =
  | 'smallint'
  | 'integer'
  | 'bigint'
  | 'numeric'
  | 'real'
  | 'double'
  | 'text'
  | 'varchar'
  | 'char'
  | 'boolean'
  | 'date'
  | 'timestamp'
  | 'timestamptz'
  | 'interval'
  | 'uuid'
  | 'json'
  | 'jsonb'
  | 'bytea';

export interface SqlType {
  kind: TypeKind;
  /** Type modifiers: numeric (precision, scale), varchar and char (length). */
  modifiers: readonly number[];
}

const NAMES: Readonly<Record<string, TypeKind>> = {
  int2: 'smallint',
  smallint: 'smallint',
  int4: 'integer',
  int: 'integer',
  integer: 'integer',
  int8: 'bigint',
  bigint: 'bigint',
  numeric: 'numeric',
  decimal: 'numeric',
  float4: 'real',
  real: 'real',
  float8: 'double',
  float: 'double',
  'double precision': 'double',
  text: 'text',
  varchar: 'varchar',
  'character varying': 'varchar',
  bpchar: 'char',
  char: 'char',
  character: 'char',
  bool: 'boolean',
  boolean: 'boolean',
  date: 'date',
  timestamp: 'timestamp',
  'timestamp without time zone': 'timestamp',
  timestamptz: 'timestamptz',
  'timestamp with time zone': 'timestamptz',
  interval: 'interval',
  uuid: 'uuid',
  json: 'json',
  jsonb: 'jsonb',
  bytea: 'bytea',
};

const PRINTED: Readonly<Record<TypeKind, string>> = {
  smallint: 'smallint',
  integer: 'integer',
  bigint: 'bigint',
  numeric: 'numeric',
  real: 'real',
  double: 'double precision',
  text: 'text',
  varchar: 'character varying',
  char: 'character',
  boolean: 'boolean',
  date: 'date',
  timestamp: 'timestamp without time zone',
  timestamptz: 'timestamp with time zone',
  interval: 'interval',
  uuid: 'uuid',
  json: 'json',
  jsonb: 'jsonb',
  bytea: 'bytea',
};

/** The supported type names, for hints. */
export const SUPPORTED_TYPES = 'smallint, integer, bigint, numeric(p,s), real, double precision, text, varchar(n), char(n), boolean, date, timestamp, timestamptz, uuid, json, jsonb, bytea';

/**
 * Resolves a type name as PostgreSQL's parser gives it (`['pg_catalog', 'int4']`, `['jsonb']`),
 * or as written (`'double precision'`), with its modifiers.
 */
export function resolveType(names: readonly string[] | string, modifiers: readonly number[] = [], array = false): SqlType {
  const name = (typeof names === 'string' ? names : (names.at(-1) ?? '')).toLowerCase().trim();
  const kind = NAMES[name];
  if (!kind) throw new DefiniteError('sql_type', `type "${name}" does not exist or is not supported`, `the supported types are ${SUPPORTED_TYPES}`);
  if (array) throw new DefiniteError('sql_type', `array types (${name}[]) are not supported yet`, 'store the array as json or jsonb for now');
  if (kind === 'numeric') {
    const [precision, scale = 0] = modifiers;
    if (precision !== undefined && (precision < 1 || precision > 1000)) throw new DefiniteError('sql_type', `NUMERIC precision ${precision} must be between 1 and 1000`);
    if (precision !== undefined && (scale < 0 || scale > precision)) throw new DefiniteError('sql_type', `NUMERIC scale ${scale} must be between 0 and precision ${precision}`);
  }
  if ((kind === 'varchar' || kind === 'char') && modifiers[0] !== undefined && modifiers[0] < 1) throw new DefiniteError('sql_type', `length for type ${PRINTED[kind]} must be at least 1`);
  const normalized = kind === 'char' && modifiers.length === 0 ? [1] : [...modifiers];
  return { kind, modifiers: normalized };
}

/** The type as PostgreSQL prints it: `numeric(10,2)`, `character varying(20)`, `timestamp with time zone`. */
export function typeName(type: SqlType): string {
  return type.modifiers.length > 0 ? `${PRINTED[type.kind]}(${type.modifiers.join(',')})` : PRINTED[type.kind];
}

function invalid(type: SqlType, text: string): DefiniteError {
  return new DefiniteError('sql_input', `invalid input syntax for type ${typeName({ kind: type.kind, modifiers: [] })}: "${text}"`);
}

/** The integer types' ranges. */
export const INTEGER_RANGES: Partial<Record<TypeKind, [bigint, bigint]>> = {
  smallint: [-32768n, 32767n],
  integer: [-2147483648n, 2147483647n],
  bigint: [-9223372036854775808n, 9223372036854775807n],
};

/** Reads a value of `type` from its text form, as PostgreSQL's input function does. */
export function inputValue(text: string, type: SqlType): Value {
  const trimmed = text.trim();
  switch (type.kind) {
    case 'smallint':
    case 'integer':
    case 'bigint': {
      if (!/^[+-]?\d+$/.test(trimmed)) throw invalid(type, text);
      const value = BigInt(trimmed);
      const [min, max] = INTEGER_RANGES[type.kind]!;
      if (value < min || value > max) throw new DefiniteError('sql_input', `value "${text}" is out of range for type ${typeName(type)}`);
      return canonicalInteger(value);
    }
    case 'numeric': {
      let value: Decimal;
      try {
        value = Decimal.parse(trimmed);
      } catch {
        throw invalid(type, text);
      }
      return applyNumericModifiers(value, type);
    }
    case 'real':
    case 'double': {
      const lower = trimmed.toLowerCase();
      let value: number;
      if (lower === 'nan') value = NaN;
      else if (lower === 'infinity' || lower === '+infinity' || lower === 'inf' || lower === '+inf') value = Infinity;
      else if (lower === '-infinity' || lower === '-inf') value = -Infinity;
      else if (/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(trimmed)) value = Number(trimmed);
      else throw invalid(type, text);
      if (!Number.isFinite(value) && /\d/.test(lower)) throw new DefiniteError('sql_input', `"${text}" is out of range for type ${typeName(type)}`);
      return type.kind === 'real' ? Math.fround(value) : value;
    }
    case 'text':
      return text;
    case 'varchar': {
      const length = type.modifiers[0];
      if (length !== undefined && text.length > length && [...text].length > length) {
        // PostgreSQL allows the excess if it is all spaces (and drops it).
        const kept = [...text].slice(0, length).join('');
        if (text.slice(kept.length).trim() !== '') throw new DefiniteError('sql_input', `value too long for type ${typeName(type)}`);
        return kept;
      }
      return text;
    }
    case 'char': {
      const length = type.modifiers[0] ?? 1;
      const characters = [...text];
      if (characters.length > length) {
        if (characters.slice(length).join('').trim() !== '') throw new DefiniteError('sql_input', `value too long for type ${typeName(type)}`);
        return characters.slice(0, length).join('');
      }
      return text + ' '.repeat(length - characters.length);
    }
    case 'boolean': {
      const lower = trimmed.toLowerCase();
      if (['t', 'true', 'y', 'yes', 'on', '1'].includes(lower)) return true;
      if (['f', 'false', 'n', 'no', 'off', '0'].includes(lower)) return false;
      throw invalid(type, text);
    }
    case 'date':
    case 'timestamp':
    case 'timestamptz':
      return inputTimestamp(trimmed, text, type);
    case 'uuid': {
      const hex = trimmed.replace(/^\{(.*)\}$/, '$1').replaceAll('-', '');
      if (!/^[0-9a-f]{32}$/i.test(hex)) throw invalid(type, text);
      const lower = hex.toLowerCase();
      return `${lower.slice(0, 8)}-${lower.slice(8, 12)}-${lower.slice(12, 16)}-${lower.slice(16, 20)}-${lower.slice(20)}`;
    }
    case 'json':
    case 'jsonb':
      try {
        return Json.parse(text);
      } catch {
        throw invalid(type, text);
      }
    case 'bytea':
      return inputBytea(text, type);
    case 'interval':
      return inputInterval(text);
  }
}

function applyNumericModifiers(value: Decimal, type: SqlType): Decimal {
  const [precision, scale = 0] = type.modifiers;
  if (precision === undefined) return value;
  const rounded = value.scale === scale ? value : value.scale > scale ? value.divide(1n, scale) : new Decimal(value.mantissaAt(scale), scale);
  const digits = (rounded.mantissa < 0n ? -rounded.mantissa : rounded.mantissa).toString().length;
  if (rounded.mantissa !== 0n && digits - scale > precision - scale) {
    throw new DefiniteError('sql_input', 'numeric field overflow', `a field with precision ${precision}, scale ${scale} must round to an absolute value less than 10^${precision - scale}`);
  }
  return rounded;
}

const TIMESTAMP = /^(\d{4,})-(\d{1,2})-(\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6})\d*)?)?)?\s*(Z|UTC|[+-]\d{1,2}(?::?\d{2})?)?$/i;

function inputTimestamp(trimmed: string, text: string, type: SqlType): Timestamp {
  const match = TIMESTAMP.exec(trimmed);
  if (!match) throw invalid(type, text);
  const [, year, month, day, hour = '0', minute = '0', second = '0', fraction = '', zone] = match;
  const y = Number(year);
  const m = Number(month);
  const d = Number(day);
  const days = daysFromCivil(y, m, d);
  const [cy, cm, cd] = civilFromDays(days);
  if (cy !== y || cm !== m || cd !== d) throw new DefiniteError('sql_input', `date/time field value out of range: "${text}"`);
  if (Number(hour) > 24 || Number(minute) > 59 || Number(second) > 60) throw new DefiniteError('sql_input', `date/time field value out of range: "${text}"`);
  // Microseconds as a number while exact (about 1685–2255: |micros| < 2^53), else as a bigint.
  let seconds = 0;
  let extra = 0;
  if (type.kind !== 'date') {
    seconds = Number(hour) * 3600 + Number(minute) * 60 + Number(second);
    extra = fraction === '' ? 0 : Number(fraction.padEnd(6, '0'));
    // A zone counts only for timestamptz; timestamp without time zone ignores it, as PostgreSQL does.
    if (type.kind === 'timestamptz' && zone && zone !== 'Z' && zone !== 'z' && !/^utc$/i.test(zone)) {
      const zoneMatch = /^([+-])(\d{1,2}):?(\d{2})?$/.exec(zone)!;
      const offset = (Number(zoneMatch[2]) * 60 + Number(zoneMatch[3] ?? 0)) * 60;
      seconds -= zoneMatch[1] === '-' ? -offset : offset;
    }
  }
  const kind = type.kind as 'date' | 'timestamp' | 'timestamptz';
  if (Math.abs(days) < 104_000) return new Timestamp(kind, BigInt((days * 86_400 + seconds) * 1_000_000 + extra));
  return new Timestamp(kind, BigInt(days) * 86_400_000_000n + BigInt(seconds) * 1_000_000n + BigInt(extra));
}

/** Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm). */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yearOfEra = y - era * 400;
  const dayOfYear = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1;
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear;
  return era * 146097 + dayOfEra - 719468;
}

function civilFromDays(days: number): [number, number, number] {
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const dayOfEra = z - era * 146097;
  const yearOfEra = Math.floor((dayOfEra - Math.floor(dayOfEra / 1460) + Math.floor(dayOfEra / 36524) - Math.floor(dayOfEra / 146096)) / 365);
  const dayOfYear = dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100));
  const monthIndex = Math.floor((5 * dayOfYear + 2) / 153);
  const day = dayOfYear - Math.floor((153 * monthIndex + 2) / 5) + 1;
  const month = monthIndex + (monthIndex < 10 ? 3 : -9);
  return [yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day];
}

function inputBytea(text: string, type: SqlType): Uint8Array {
  if (text.startsWith('\\x')) {
    const hex = text.slice(2).replace(/\s+/g, '');
    if (!/^([0-9a-f]{2})*$/i.test(hex)) throw invalid(type, text);
    return Uint8Array.from(hex.match(/../g) ?? [], (pair) => parseInt(pair, 16));
  }
  // The escape format: backslash-octal triples and doubled backslashes; other bytes as they are.
  const bytes: number[] = [];
  const encoded = new TextEncoder().encode(text);
  for (let i = 0; i < encoded.length; i++) {
    if (encoded[i] !== 0x5c) {
      bytes.push(encoded[i]!);
      continue;
    }
    if (encoded[i + 1] === 0x5c) {
      bytes.push(0x5c);
      i++;
      continue;
    }
    const octal = String.fromCharCode(...encoded.slice(i + 1, i + 4));
    if (!/^[0-3][0-7]{2}$/.test(octal)) throw invalid(type, text);
    bytes.push(parseInt(octal, 8));
    i += 3;
  }
  return Uint8Array.from(bytes);
}

/** A value of `type` as PostgreSQL prints it (NULL is the caller's to print). */
export function outputValue(value: Value, type: SqlType): string {
  if (value === null) return 'NULL';
  switch (type.kind) {
    case 'boolean':
      return value ? 't' : 'f';
    case 'real':
    case 'double':
      return outputFloat(value as number);
    case 'bytea': {
      let hex = '\\x';
      for (const byte of value as Uint8Array) hex += byte.toString(16).padStart(2, '0');
      return hex;
    }
    case 'jsonb':
      return outputJsonb((value as Json).value);
    case 'json':
      return JSON.stringify((value as Json).value);
    case 'date':
    case 'timestamp':
    case 'timestamptz':
      return (value as Timestamp).toString();
    default:
      return String(value);
  }
}

/** PostgreSQL's shortest round-trip float output: exponents get at least two digits. */
function outputFloat(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return 'Infinity';
  if (value === -Infinity) return '-Infinity';
  if (Object.is(value, -0)) return '-0';
  const text = String(value);
  return text.replace(/e([+-])(\d)$/, 'e$10$2');
}

/** jsonb's text form: keys ordered by length, then bytes; ", " and ": " between items. */
function outputJsonb(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(outputJsonb).join(', ')}]`;
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record).sort((a, b) => {
    const x = Buffer.byteLength(a);
    const y = Buffer.byteLength(b);
    return x !== y ? x - y : Buffer.compare(Buffer.from(a), Buffer.from(b));
  });
  return `{${keys.map((key) => `${JSON.stringify(key)}: ${outputJsonb(record[key])}`).join(', ')}}`;
}

const DAY = 86_400_000_000;
/** Interval units: months, days or microseconds per unit. */
const INTERVAL_UNITS: Record<string, { months?: number; days?: number; micros?: number }> = {
  microsecond: { micros: 1 }, microseconds: { micros: 1 }, us: { micros: 1 }, usec: { micros: 1 }, usecs: { micros: 1 },
  millisecond: { micros: 1000 }, milliseconds: { micros: 1000 }, ms: { micros: 1000 }, msec: { micros: 1000 }, msecs: { micros: 1000 },
  second: { micros: 1e6 }, seconds: { micros: 1e6 }, sec: { micros: 1e6 }, secs: { micros: 1e6 }, s: { micros: 1e6 },
  minute: { micros: 6e7 }, minutes: { micros: 6e7 }, min: { micros: 6e7 }, mins: { micros: 6e7 }, m: { micros: 6e7 },
  hour: { micros: 3.6e9 }, hours: { micros: 3.6e9 }, hr: { micros: 3.6e9 }, hrs: { micros: 3.6e9 }, h: { micros: 3.6e9 },
  day: { days: 1 }, days: { days: 1 }, d: { days: 1 },
  week: { days: 7 }, weeks: { days: 7 }, w: { days: 7 },
  month: { months: 1 }, months: { months: 1 }, mon: { months: 1 }, mons: { months: 1 },
  year: { months: 12 }, years: { months: 12 }, yr: { months: 12 }, yrs: { months: 12 }, y: { months: 12 },
  decade: { months: 120 }, decades: { months: 120 },
  century: { months: 1200 }, centuries: { months: 1200 },
  millennium: { months: 12000 }, millennia: { months: 12000 },
};

/** Adds `amount` units to an interval under construction, cascading fractions down as PostgreSQL does. */
function addUnits(into: { months: number; days: number; micros: number }, amount: number, unit: { months?: number; days?: number; micros?: number }): void {
  if (unit.months) {
    const months = amount * unit.months;
    into.months += Math.trunc(months);
    const days = (months - Math.trunc(months)) * 30;
    into.days += Math.trunc(days);
    into.micros += Math.round((days - Math.trunc(days)) * DAY);
  } else if (unit.days) {
    const days = amount * unit.days;
    into.days += Math.trunc(days);
    into.micros += Math.round((days - Math.trunc(days)) * DAY);
  } else into.micros += Math.round(amount * unit.micros!);
}

function inputInterval(text: string): Interval {
  const invalid = () => new DefiniteError('sql_input', `invalid input syntax for type interval: "${text}"`, "write it as '1 day 02:00:00', '90 minutes' or 'P1DT2H'");
  const trimmed = text.trim().toLowerCase();
  const into = { months: 0, days: 0, micros: 0 };
  const iso = /^(-)?p(?:(-?[\d.]+)y)?(?:(-?[\d.]+)m)?(?:(-?[\d.]+)w)?(?:(-?[\d.]+)d)?(?:t(?:(-?[\d.]+)h)?(?:(-?[\d.]+)m)?(?:(-?[\d.]+)s)?)?$/.exec(trimmed);
  if (iso && trimmed !== 'p' && trimmed !== 'pt') {
    const units = ['years', 'months', 'weeks', 'days', 'hours', 'minutes', 'seconds'];
    iso.slice(2).forEach((amount, i) => {
      if (amount !== undefined) addUnits(into, Number(amount) * (iso[1] ? -1 : 1), INTERVAL_UNITS[units[i]!]!);
    });
    return new Interval(into.months, into.days, BigInt(into.micros));
  }
  let rest = trimmed;
  let ago = false;
  if (/\sago$/.test(rest)) {
    ago = true;
    rest = rest.replace(/\s+ago$/, '');
  }
  if (rest === '') throw invalid();
  const tokens = rest.replace(/^@\s*/, '').split(/\s+/);
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    const time = /^([+-])?(\d+):(\d{1,2})(?::(\d{1,2}(?:\.\d+)?))?$/.exec(token);
    if (time) {
      const micros = (Number(time[2]) * 3600 + Number(time[3]) * 60 + Number(time[4] ?? 0)) * 1e6;
      into.micros += Math.round(time[1] === '-' ? -micros : micros);
      continue;
    }
    const number = /^[+-]?(\d+(\.\d*)?|\.\d+)$/.test(token) ? Number(token) : undefined;
    const glued = number === undefined ? /^([+-]?(?:\d+(?:\.\d*)?|\.\d+))([a-z]+)$/.exec(token) : null;
    if (number === undefined && !glued) throw invalid();
    const amount = number ?? Number(glued![1]);
    const unitName = glued ? glued[2]! : tokens[++i];
    const unit = unitName === undefined ? INTERVAL_UNITS.second : INTERVAL_UNITS[unitName];
    if (!unit) throw invalid();
    addUnits(into, amount, unit);
  }
  const sign = ago ? -1 : 1;
  return new Interval(sign * into.months || 0, sign * into.days || 0, BigInt(sign * into.micros || 0));
}
