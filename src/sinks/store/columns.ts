/**
 * How the view store keeps a value of each SQL type in SQLite, so that equality filters and
 * ORDER BY in SQLite agree with PostgreSQL's comparison of the same values.
 *
 *   type                            SQLite column(s)                     compared and ordered by
 *   smallint, integer, bigint       cN INTEGER (exact over the whole     cN
 *                                   int8 range: SQLite integers are
 *                                   64-bit, so no text form is needed)
 *   real, double precision          cN REAL; NaN as the text 'NaN'       cN (SQLite orders text
 *                                   (SQLite would turn NaN into NULL)    above numbers: NaN last,
 *                                                                        as in PostgreSQL)
 *   numeric                         cN TEXT: its text with its scale     sN: an order-preserving
 *                                   ('9.50', printed back as given)      text key (below); 9.5 and
 *                                   + sN TEXT shadow                     9.50 get the same key
 *   text, varchar, char, uuid       cN TEXT                              cN (bytewise: C collation)
 *   boolean                         cN INTEGER 0/1                       cN
 *   date, timestamp, timestamptz    cN INTEGER microseconds since 1970   cN
 *   interval                        cN TEXT 'months days micros' (exact) sN: the key of its span
 *                                   + sN TEXT shadow                     (a month as 30 days)
 *   json, jsonb                     cN TEXT: the JSON text, keys in the  sN: the canonical text
 *                                   value's order; + sN TEXT shadow      (sorted keys): equality
 *                                                                        exact, order textual
 *   bytea                           cN BLOB                              cN (memcmp, as PostgreSQL)
 *
 * The numeric key: '1' for zero; '2' + exponent + significant digits for a positive value (the
 * value is 0.DIGITS × 10^exponent, the exponent written as 10 digits offset by 5·10^9, trailing
 * zeros dropped); '0' + the negated exponent + the nines' complement of the digits + '~' for a
 * negative one. Comparing keys as byte strings compares the numbers.
 *
 * Invariants:
 * - `decode(encode(v))` equals `v` under `valuesEqual` (numeric keeps its display scale;
 *   float −0 comes back as 0, which equals it).
 * - Two values are equal under `valuesEqual` exactly when their compare values are equal.
 * - Values of a numeric kind are accepted in any numeric column when nothing is lost (an integer
 *   column takes 5, 5n or Decimal 5.00; a numeric column takes integers); anything else that
 *   does not fit the column's type is a DefiniteError naming the column.
 */

import { ByteReader, ByteWriter, canonicalInteger, Decimal, DefiniteError, describe, Interval, Json, Timestamp, type Value } from '../../core/index.ts';
import { inputValue, typeName, type SqlType } from '../../sql/index.ts';

/** A value as node:sqlite binds it. */
export type Stored = null | number | bigint | string | Uint8Array;

export interface ColumnLayout {
  /** The SQLite column declarations for this SQL column: `c3 INTEGER`, or `c3 TEXT, s3 TEXT`. */
  readonly declarations: readonly string[];
  /** The SQLite column holding the value (read back by `decode`). */
  readonly valueColumn: string;
  /** The SQLite column that equality filters, key indexes and ORDER BY use. */
  readonly compareColumn: string;
  /** Appends the stored form(s) of a value, one per declaration. */
  encode(value: Value, into: Stored[]): void;
  /** The value back from its stored form (read with bigints for integers). */
  decode(stored: unknown): Value;
  /** What `compareColumn` holds for a value. */
  compareValue(value: Value): Stored;
  /** Whether filters can name this column. */
  readonly filterable: boolean;
}

/** The SQL type's layout for column number `index`. */
export function columnLayout(type: SqlType, index: number, describeColumn: () => string): ColumnLayout {
  const c = `c${index}`;
  const s = `s${index}`;
  const refuse = (value: Value): never => {
    throw new DefiniteError('store_value_type', `${describeColumn()} (${typeName(type)}) cannot hold ${describe(value)}`, 'the view produced a value of another type than its column: report this as a bug');
  };
  const simple = (declared: string, encode: (value: Value) => Stored, decode: (stored: unknown) => Value): ColumnLayout => ({
    declarations: [`${c} ${declared}`],
    valueColumn: c,
    compareColumn: c,
    encode: (value, into) => void into.push(value === null ? null : encode(value)),
    decode: (stored) => (stored === null ? null : decode(stored)),
    compareValue: (value) => (value === null ? null : encode(value)),
    filterable: true,
  });
  const shadowed = (encode: (value: Value) => [string, string], decode: (stored: string) => Value): ColumnLayout => ({
    declarations: [`${c} TEXT`, `${s} TEXT`],
    valueColumn: c,
    compareColumn: s,
    encode: (value, into) => {
      if (value === null) into.push(null, null);
      else into.push(...encode(value));
    },
    decode: (stored) => (stored === null ? null : decode(stored as string)),
    compareValue: (value) => (value === null ? null : encode(value)[1]),
    filterable: true,
  });

  switch (type.kind) {
    case 'smallint':
    case 'integer':
    case 'bigint':
      return simple(
        'INTEGER',
        (value) => {
          const integer = integerOf(value);
          return integer ?? refuse(value);
        },
        (stored) => (typeof stored === 'bigint' ? canonicalInteger(stored) : (stored as number)),
      );
    case 'real':
    case 'double':
      return simple(
        'REAL',
        (value) => {
          const number = typeof value === 'number' ? value : typeof value === 'bigint' ? Number(value) : value instanceof Decimal ? Number(value.toString()) : refuse(value);
          return Number.isNaN(number) ? 'NaN' : number;
        },
        (stored) => (stored === 'NaN' ? NaN : Number(stored)),
      );
    case 'numeric':
      return shadowed(
        (value) => {
          const decimal = decimalOf(value) ?? refuse(value);
          return [decimal.toString(), decimalKey(decimal)];
        },
        (stored) => Decimal.parse(stored),
      );
    case 'text':
    case 'varchar':
    case 'char':
    case 'uuid':
      return simple('TEXT', (value) => (typeof value === 'string' ? value : refuse(value)), (stored) => stored as string);
    case 'boolean':
      return simple('INTEGER', (value) => (typeof value === 'boolean' ? (value ? 1 : 0) : refuse(value)), (stored) => stored === 1n || stored === 1);
    case 'date':
    case 'timestamp':
    case 'timestamptz': {
      const kind = type.kind;
      return simple('INTEGER', (value) => (value instanceof Timestamp ? value.micros : refuse(value)), (stored) => new Timestamp(kind, BigInt(stored as bigint)));
    }
    case 'interval':
      return shadowed(
        (value) => {
          if (!(value instanceof Interval)) return refuse(value);
          return [`${value.months} ${value.days} ${value.micros}`, decimalKey(Decimal.fromInteger(value.span()))];
        },
        (stored) => {
          const [months, days, micros] = stored.split(' ');
          return new Interval(Number(months), Number(days), BigInt(micros!));
        },
      );
    case 'json':
    case 'jsonb':
      return shadowed(
        (value) => (value instanceof Json ? [JSON.stringify(value.value) ?? 'null', value.text] : refuse(value)),
        (stored) => Json.parse(stored),
      );
    case 'bytea':
      return simple('BLOB', (value) => (value instanceof Uint8Array ? value : refuse(value)), (stored) => stored as Uint8Array);
    default: {
      // A type this store has no special form for: the value codec's bytes, kept and given back
      // exactly; not filterable.
      const layout = simple(
        'BLOB',
        (value) => {
          const writer = new ByteWriter(64);
          writer.value(value);
          return writer.finish();
        },
        (stored) => new ByteReader(stored as Uint8Array).value(),
      );
      return { ...layout, filterable: false };
    }
  }
}

function integerOf(value: Value): number | bigint | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) ? value : undefined;
  if (typeof value === 'bigint') return canonicalInteger(value);
  if (value instanceof Decimal) {
    const normalized = value.normalized();
    return normalized.scale === 0 ? canonicalInteger(normalized.mantissa) : undefined;
  }
  return undefined;
}

function decimalOf(value: Value): Decimal | undefined {
  if (value instanceof Decimal) return value;
  if (typeof value === 'bigint') return Decimal.fromInteger(value);
  if (typeof value === 'number' && Number.isFinite(value)) return Number.isInteger(value) ? Decimal.fromInteger(BigInt(value)) : Decimal.parse(String(value));
  return undefined;
}

const EXPONENT_OFFSET = 5_000_000_000;

function exponentText(exponent: number): string {
  return String(exponent + EXPONENT_OFFSET).padStart(10, '0');
}

/** An order-preserving text key of a decimal: byte order of keys is numeric order of values. */
export function decimalKey(value: Decimal): string {
  const mantissa = value.mantissa;
  if (mantissa === 0n) return '1';
  const negative = mantissa < 0n;
  const all = (negative ? -mantissa : mantissa).toString();
  const exponent = all.length - value.scale; // value = 0.DIGITS × 10^exponent
  let end = all.length;
  while (all.charCodeAt(end - 1) === 48) end--;
  const digits = all.slice(0, end);
  if (!negative) return '2' + exponentText(exponent) + digits;
  let complement = '';
  for (let i = 0; i < digits.length; i++) complement += String.fromCharCode(105 - digits.charCodeAt(i)); // '0'..'9' → '9'..'0'
  return '0' + exponentText(-exponent) + complement + '~';
}

/** Example input text per type, for hints. */
const EXAMPLES: Partial<Record<SqlType['kind'], string>> = {
  smallint: '7',
  integer: '7',
  bigint: '7',
  numeric: '9.50',
  real: '1.5',
  double: '1.5',
  boolean: 'true or false',
  date: '2024-01-31',
  timestamp: '2024-01-31 12:00:00',
  timestamptz: '2024-01-31T12:00:00Z',
  interval: '1 day 02:00:00',
  uuid: 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
  json: '{"a":1}',
  jsonb: '{"a":1}',
  bytea: '\\x0102ff',
};

/**
 * Reads a filter value given as text with the column's type (PostgreSQL's input function), the
 * way `WHERE column = 'text'` would: type modifiers that would refuse or round the text
 * (varchar(n), numeric(p,s)) are not applied; char(n) pads as the stored values are padded.
 */
export function parseFilterValue(text: string, type: SqlType, columnName: string, viewName: string): Value {
  const lenient: SqlType = type.kind === 'char' ? type : { kind: type.kind, modifiers: [] };
  try {
    return inputValue(text, lenient);
  } catch (error) {
    if (!(error instanceof DefiniteError)) throw error;
    const example = EXAMPLES[type.kind];
    throw new DefiniteError(
      'store_filter_value',
      `filter ${columnName}=${JSON.stringify(text)} on view "${viewName}": ${error.message}`,
      `column "${columnName}" is ${typeName(type)}${example ? `; write its value as ${example}` : ''}`,
      { cause: error },
    );
  }
}
