/**
 * PostgreSQL columns as Sluice columns: each type OID a source table uses is given a Sluice type,
 * and each value pgoutput sends (in PostgreSQL's text output format) is read as a Sluice value of
 * that type, exactly — numeric stays decimal, timestamptz keeps its microseconds, json its text.
 *
 *   bool, int2/4/8, float4/8, numeric(p,s)   boolean, smallint/integer/bigint, real/double, numeric
 *   text, varchar(n), bpchar(n), name         text, varchar, char, text
 *   date, timestamp, timestamptz, interval    the same
 *   uuid, json, jsonb, bytea                  the same
 *   arrays of the above                       jsonb arrays (NULL elements as null)
 *   enums and every other type                text, as PostgreSQL prints it
 *
 * Invariant: a value that does not read as its column's type is an error naming the column and
 * the value (a DefiniteError), never a silently different value.
 */

import { DefiniteError, Json, type Value } from '../../core/index.ts';
import { inputValue, type SqlType, type TypeKind } from '../../sql/index.ts';
import type { ColumnValue, RelationColumn } from './pgoutput.ts';

/** Built-in type OIDs (pg_type.oid, stable across PostgreSQL versions). */
const SCALARS: ReadonlyMap<number, TypeKind> = new Map([
  [16, 'boolean'],
  [17, 'bytea'],
  [19, 'text'], // name
  [20, 'bigint'],
  [21, 'smallint'],
  [23, 'integer'],
  [25, 'text'],
  [26, 'bigint'], // oid (unsigned 32-bit)
  [114, 'json'],
  [700, 'real'],
  [701, 'double'],
  [1042, 'char'],
  [1043, 'varchar'],
  [1082, 'date'],
  [1114, 'timestamp'],
  [1184, 'timestamptz'],
  [1186, 'interval'],
  [1700, 'numeric'],
  [2950, 'uuid'],
  [3802, 'jsonb'],
]);

/** Array type OID → its element type OID. */
const ARRAYS: ReadonlyMap<number, number> = new Map([
  [1000, 16],
  [1001, 17],
  [1003, 19],
  [1005, 21],
  [1007, 23],
  [1009, 25],
  [1014, 1042],
  [1015, 1043],
  [1016, 20],
  [1021, 700],
  [1022, 701],
  [1182, 1082],
  [1115, 1114],
  [1185, 1184],
  [1187, 1186],
  [1231, 1700],
  [2951, 2950],
  [199, 114],
  [3807, 3802],
]);

export interface ColumnMapping {
  name: string;
  type: SqlType;
  /** For arrays: the element type each element is read as. */
  element?: SqlType;
  /** The PostgreSQL type, for messages. */
  typeOid: number;
  key: boolean;
}

/** The Sluice column for a column of a Relation message. */
export function mapColumn(column: RelationColumn): ColumnMapping {
  const element = ARRAYS.get(column.typeOid);
  if (element !== undefined) return { name: column.name, type: { kind: 'jsonb', modifiers: [] }, element: scalarType(element, -1), typeOid: column.typeOid, key: column.key };
  return { name: column.name, type: scalarType(column.typeOid, column.typeModifier), typeOid: column.typeOid, key: column.key };
}

function scalarType(oid: number, typeModifier: number): SqlType {
  const kind = SCALARS.get(oid) ?? 'text';
  if (kind === 'numeric' && typeModifier >= 4) {
    // atttypmod = ((precision << 16) | scale) + VARHDRSZ
    const packed = typeModifier - 4;
    return { kind, modifiers: [(packed >> 16) & 0xffff, packed & 0xffff] };
  }
  if ((kind === 'varchar' || kind === 'char') && typeModifier >= 4) return { kind, modifiers: [typeModifier - 4] };
  return { kind, modifiers: [] };
}

/** Marks a TOASTed value the change did not send: the caller takes it from the previous row image. */
export const UNCHANGED: unique symbol = Symbol('unchanged TOAST value');

/** One value of a change as a Sluice value of its column's type. */
export function readValue(value: ColumnValue, column: ColumnMapping, where: string): Value | typeof UNCHANGED {
  switch (value.kind) {
    case 'null':
      return null;
    case 'unchanged':
      return UNCHANGED;
    case 'binary':
      throw new DefiniteError('pg_value', `${where}, column "${column.name}": a value in binary format`, 'Sluice reads pgoutput in text format: do not set binary = true on the subscription');
    case 'text':
      try {
        if (column.element) return new Json(parseArray(value.value, column.element));
        if (column.type.kind === 'text' || column.type.kind === 'varchar') return value.value; // as PostgreSQL stored it
        return inputValue(value.value, column.type);
      } catch (error) {
        throw new DefiniteError('pg_value', `${where}, column "${column.name}": ${(error as Error).message} (value ${JSON.stringify(value.value.length > 60 ? value.value.slice(0, 60) + '…' : value.value)})`, 'please report this with the column\'s PostgreSQL type: Sluice reads it as ' + column.type.kind);
      }
  }
}

/**
 * A PostgreSQL array literal (`{1,2,NULL}`, `{{1,2},{3,4}}`, `{"a b","c\"d"}`) as nested JSON
 * arrays, each element read as `element` and given as JSON: numbers for integers and floats,
 * exact text for numeric, PostgreSQL's text for the rest.
 */
export function parseArray(text: string, element: SqlType): unknown[] {
  let i = 0;
  // A dimension decoration ('[1:2]={1,2}') sets the lower bound: the elements are what matter.
  if (text[0] === '[') i = text.indexOf('=') + 1;
  const fail = (why: string): never => {
    throw new Error(`malformed array literal at character ${i + 1}: ${why}`);
  };
  const convert = (raw: string | null): unknown => {
    if (raw === null) return null;
    const value = inputValue(raw, element);
    if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'string') return Number.isNaN(value) ? 'NaN' : value;
    if (typeof value === 'bigint') return value.toString();
    if (value instanceof Json) return value.value;
    return raw; // numeric, timestamps, intervals, bytea: PostgreSQL's own text
  };
  const array = (): unknown[] => {
    if (text[i] !== '{') fail('expected "{"');
    i++;
    const out: unknown[] = [];
    if (text[i] === '}') {
      i++;
      return out;
    }
    for (;;) {
      while (text[i] === ' ') i++;
      if (text[i] === '{') out.push(array());
      else if (text[i] === '"') {
        i++;
        let raw = '';
        while (text[i] !== '"') {
          if (i >= text.length) fail('unterminated quoted element');
          if (text[i] === '\\') i++;
          raw += text[i++];
        }
        i++;
        out.push(convert(raw));
      } else {
        const start = i;
        while (i < text.length && text[i] !== ',' && text[i] !== '}') i++;
        const raw = text.slice(start, i).trim();
        out.push(raw.toUpperCase() === 'NULL' ? null : convert(raw));
      }
      while (text[i] === ' ') i++;
      if (text[i] === ',') {
        i++;
        continue;
      }
      if (text[i] === '}') {
        i++;
        return out;
      }
      fail('expected "," or "}"');
    }
  };
  const result = array();
  if (i !== text.length) fail('text after the closing "}"');
  return result;
}
