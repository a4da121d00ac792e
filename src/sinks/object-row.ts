/**
 * Rows as JSON-friendly objects: how every sink and every HTTP response shows a row, the same
 * convention as the embedded database's `objectRow` (src/pipeline/database.ts).
 *
 *   null, booleans, text          as they are
 *   numbers                       numbers (NaN, Infinity, -Infinity as the text PostgreSQL prints)
 *   bigint (beyond ±(2^53 − 1))   its decimal text, so no JSON reader rounds it
 *   numeric (Decimal)             its text with its scale ("9.50"), never a float
 *   json, jsonb                   the JSON value itself
 *   others                        as PostgreSQL prints them (timestamps, dates, intervals, bytea)
 *
 * Invariant: the same row always gives the same object (and the same `JSON.stringify` text), so
 * sinks that write rows out (JSONL files) are deterministic across replays.
 */

import { Decimal, Json, type Row } from '../core/index.ts';
import { outputValue } from '../sql/index.ts';
import type { SinkColumn } from './sink.ts';

export function objectRow(row: Row, columns: readonly SinkColumn[]): Record<string, unknown> {
  const object: Record<string, unknown> = {};
  for (let i = 0; i < columns.length; i++) {
    const column = columns[i]!;
    const value = row[i] ?? null;
    if (value === null || typeof value === 'boolean' || typeof value === 'string') object[column.name] = value;
    else if (typeof value === 'number') object[column.name] = Number.isFinite(value) ? value : String(value);
    else if (typeof value === 'bigint' || value instanceof Decimal) object[column.name] = value.toString();
    else if (value instanceof Json) object[column.name] = value.value;
    else object[column.name] = outputValue(value, column.type);
  }
  return object;
}

/** A delta as the change stream shows it: one `{op, row}` per copy, rows as objectRow gives them. */
export function objectChanges(rows: readonly Row[], weights: readonly number[], columns: readonly SinkColumn[]): Array<{ op: 'insert' | 'delete'; row: Record<string, unknown> }> {
  const changes: Array<{ op: 'insert' | 'delete'; row: Record<string, unknown> }> = [];
  for (let i = 0; i < rows.length; i++) {
    const weight = weights[i]!;
    const row = objectRow(rows[i]!, columns);
    for (let k = 0; k < Math.abs(weight); k++) changes.push({ op: weight > 0 ? 'insert' : 'delete', row });
  }
  return changes;
}
