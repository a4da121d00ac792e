/**
 * Rows as search documents: a document's identity (its key bytes), its stored form, and the row
 * object a search hit returns.
 *
 * Invariants:
 * - Two rows have the same key bytes exactly when their identifying values are equal under
 *   `valuesEqual` (5, 5n and Decimal 5.00 are one key; '1 mon' and '30 days' too): values are
 *   put in a canonical form before they are encoded with the value codec.
 * - Key bytes are the canonical encoding when it is shorter than 32 bytes, else its SHA-256
 *   (32 bytes): short keys stay readable and cheap, long ones (whole rows) stay small; the two
 *   never meet because their lengths differ.
 * - The stored row is JSON-friendly: null, booleans, text and finite numbers as themselves,
 *   json/jsonb as their value, bigint and numeric as text (no precision lost), everything else
 *   as PostgreSQL prints it (`outputValue`). A value that is not a Sluice value is a
 *   DefiniteError naming the column.
 */

import { createHash } from 'node:crypto';
import { ByteWriter, canonicalInteger, Decimal, DefiniteError, describe, Interval, Json, Timestamp, type Row, type Value } from '../../core/index.ts';
import { outputValue } from '../../sql/index.ts';
import type { SinkColumn } from '../sink.ts';

/** Thrown for a row that cannot be stored; names the view and column. */
export function badValue(view: string, column: string, value: unknown, why: string): DefiniteError {
  return new DefiniteError('search_row', `search sink on "${view}": column "${column}" holds ${describe(value)}, ${why}`, 'the view produced a value of the wrong kind for its column; check the view definition');
}

function canonical(value: Value): Value {
  switch (typeof value) {
    case 'number':
      return Number.isInteger(value) ? canonicalInteger(BigInt(value)) : value;
    case 'bigint':
      return canonicalInteger(value);
    case 'string':
    case 'boolean':
      return value;
    default:
      if (value === null || value instanceof Uint8Array || value instanceof Timestamp || value instanceof Json) return value;
      if (value instanceof Decimal) {
        const normalized = value.normalized();
        return normalized.scale === 0 ? canonicalInteger(normalized.mantissa) : normalized;
      }
      if (value instanceof Interval) return new Interval(0, 0, value.span());
      if (Array.isArray(value)) return value.map(canonical);
      throw new TypeError('not a value');
  }
}

/** The key bytes of some of a row's columns (all of them when `columns` is undefined). */
export function documentKey(row: Row, columns: readonly number[] | undefined, view: string, names: readonly SinkColumn[]): Uint8Array {
  const writer = new ByteWriter(128);
  const count = columns ? columns.length : row.length;
  writer.varint(count);
  for (let i = 0; i < count; i++) {
    const index = columns ? columns[i]! : i;
    const value = row[index];
    let form: Value;
    try {
      form = canonical(value as Value);
    } catch {
      throw badValue(view, names[index]?.name ?? `#${index + 1}`, value, 'which is not a SQL value');
    }
    writer.value(form);
  }
  const bytes = writer.finish();
  return bytes.length < 32 ? bytes.slice() : new Uint8Array(createHash('sha256').update(bytes).digest());
}

/** A value in its JSON-friendly stored form (see the invariants). Throws a TypeError for a non-value. */
export function jsonValue(value: Value): unknown {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      return Number.isFinite(value) ? value : outputValue(value, { kind: 'double', modifiers: [] });
    case 'bigint':
      return value.toString();
    default:
      if (value === null) return null;
      if (value instanceof Decimal) return value.toString();
      if (value instanceof Json) return value.value;
      if (value instanceof Timestamp || value instanceof Interval) return value.toString();
      if (value instanceof Uint8Array) return outputValue(value, { kind: 'bytea', modifiers: [] });
      if (Array.isArray(value)) return value.map(jsonValue);
      throw new TypeError('not a value');
  }
}
