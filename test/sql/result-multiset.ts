/**
 * Query results compared as multisets of rows, whatever engine produced them.
 *
 * Invariants:
 * - A value's canonical text depends only on its SQL value: integers of every representation
 *   (number, bigint, Decimal with trailing zeros) meet; text is quoted, so the text '5' never
 *   meets the integer 5; NULL is `NULL`.
 * - Two results are equal when their canonical rows, sorted, are equal (no ORDER BY anywhere).
 */
import { Decimal } from '../../src/core/index.ts';

export function canonicalValue(value: unknown): string {
  if (value === null || value === undefined) return 'NULL';
  if (typeof value === 'number') return Object.is(value, -0) ? '0' : String(value);
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'string') return JSON.stringify(value);
  if (value instanceof Decimal) {
    const text = value.toString();
    return text.includes('.') ? text.replace(/\.?0+$/, '') : text;
  }
  if (typeof value === 'boolean') return `boolean ${value}`;
  return `${Object.prototype.toString.call(value)} ${String(value)}`;
}

export function canonicalRows(rows: readonly (readonly unknown[])[]): string[] {
  return rows.map((row) => `(${row.map(canonicalValue).join(', ')})`).sort();
}

/** Rows of `expected` that `actual` lacks and rows of `actual` that `expected` lacks, with multiplicity. */
export function multisetDifference(expected: readonly string[], actual: readonly string[]): { missing: string[]; extra: string[] } {
  const counts = new Map<string, number>();
  for (const row of expected) counts.set(row, (counts.get(row) ?? 0) + 1);
  const extra: string[] = [];
  for (const row of actual) {
    const count = counts.get(row) ?? 0;
    if (count > 0) counts.set(row, count - 1);
    else extra.push(row);
  }
  const missing: string[] = [];
  for (const [row, count] of counts) for (let i = 0; i < count; i++) missing.push(row);
  return { missing: missing.sort(), extra };
}

export function formatRows(rows: readonly string[], limit = 40): string {
  if (rows.length === 0) return '    (no rows)';
  const shown = rows.slice(0, limit).map((row) => `    ${row}`);
  if (rows.length > limit) shown.push(`    … ${rows.length - limit} more`);
  return shown.join('\n');
}
