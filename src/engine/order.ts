/**
 * Orders over rows: ORDER BY keys with PostgreSQL's NULL placement, completed by the whole row so
 * that only equal rows tie (which makes top-k and string_agg results independent of arrival order).
 */

import { compareRows, compareValues, Decimal, type Row } from '../core/index.ts';
import type { SortKey } from './spec.ts';

/** Compares by the sort keys alone (rows may tie). */
export function compareBySortKeys(a: Row, b: Row, keys: readonly SortKey[]): number {
  for (const key of keys) {
    const x = a[key.column]!;
    const y = b[key.column]!;
    if (x === y) continue;
    const nullsFirst = key.nullsFirst ?? key.descending === true;
    if (x === null || y === null) return (x === null) === nullsFirst ? -1 : 1;
    const order = compareValues(x, y);
    if (order !== 0) return key.descending ? -order : order;
  }
  return 0;
}

/** A total order: the sort keys, then the whole row. */
export function totalOrder(keys: readonly SortKey[]): (a: Row, b: Row) => number {
  if (keys.length === 0) return compareRows;
  const [first, ...rest] = keys;
  const column = first!.column;
  const direction = first!.descending ? -1 : 1;
  const firstOnly = [first!];
  // The first key inline for the common cases of two ordinary numbers or two decimals of one
  // scale; anything else the general way.
  return (a, b) => {
    const x = a[column];
    const y = b[column];
    if (typeof x === 'number' && typeof y === 'number' && x === x && y === y) {
      if (x !== y) return x < y ? -direction : direction;
    } else if (x instanceof Decimal && y instanceof Decimal && x.scale === y.scale) {
      // Decimals of one scale (a numeric(p,s) column) order by their mantissas.
      if (x.mantissa !== y.mantissa) return x.mantissa < y.mantissa ? -direction : direction;
    } else {
      const order = compareBySortKeys(a, b, firstOnly);
      if (order !== 0) return order;
    }
    return (rest.length > 0 ? compareBySortKeys(a, b, rest) : 0) || compareRows(a, b);
  };
}
