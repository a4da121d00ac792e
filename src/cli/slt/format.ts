/**
 * The sqllogictest format (SQLite's test corpus, ../shared/slt/): reading records, and producing
 * results the way the reference harness compares them (formatting by column type, sort modes,
 * MD5 hashing of large results).
 *
 * A file is records separated by blank lines; `#` starts a comment line. Records:
 *
 *   statement ok|error            SQL lines
 *   query TYPES SORT [LABEL]      SQL lines, `----`, then the expected values one per line, or
 *                                 "N values hashing to MD5"
 *   hash-threshold N              results with more values than N are compared by hash
 *   halt                          stop reading the file
 *
 * Any record may be preceded by `skipif ENGINE` / `onlyif ENGINE` lines. TYPES has one letter per
 * column: I (integer), R (real, printed with three decimals), T (text). SORT is nosort, rowsort
 * or valuesort.
 *
 * Invariants:
 * - Every record keeps the 1-based line it starts on, for messages.
 * - Formatting follows the reference harness: NULL → "NULL", the empty string → "(empty)",
 *   control characters → "@"; the hash is the MD5 of every value followed by a newline.
 */

import { createHash } from 'node:crypto';

export interface Condition {
  kind: 'skipif' | 'onlyif';
  engine: string;
}

export type SortMode = 'nosort' | 'rowsort' | 'valuesort';

export type SltRecord =
  | { kind: 'statement'; expect: 'ok' | 'error'; sql: string; line: number; conditions: Condition[] }
  | {
      kind: 'query';
      types: string;
      sort: SortMode;
      label: string | undefined;
      sql: string;
      expected: { values: string[] } | { count: number; hash: string };
      line: number;
      conditions: Condition[];
    }
  | { kind: 'hashThreshold'; value: number; line: number }
  | { kind: 'halt'; line: number; conditions: Condition[] };

export class SltFormatError extends Error {
  readonly line: number;
  constructor(file: string, line: number, what: string) {
    super(`${file}:${line}: ${what}`);
    this.line = line;
  }
}

/** Reads a sqllogictest file into records. */
export function parseSlt(text: string, file = '<slt>'): SltRecord[] {
  const lines = text.split(/\r?\n/);
  const records: SltRecord[] = [];
  let i = 0;
  const blank = (line: string | undefined) => line === undefined || line.trim() === '';
  while (i < lines.length) {
    // Skip blank lines and comments between records.
    if (blank(lines[i]) || lines[i]!.startsWith('#')) {
      i++;
      continue;
    }
    const conditions: Condition[] = [];
    let header = lines[i]!;
    for (;;) {
      const condition = /^(skipif|onlyif)\s+(\S+)/.exec(header);
      if (!condition) break;
      conditions.push({ kind: condition[1] as Condition['kind'], engine: condition[2]! });
      header = lines[++i] ?? '';
    }
    const line = i + 1;
    const words = header.replace(/#.*$/, '').trim().split(/\s+/);
    i++;
    const readSql = (stopAtSeparator: boolean): string => {
      const sql: string[] = [];
      while (i < lines.length && !blank(lines[i]) && !(stopAtSeparator && lines[i] === '----')) sql.push(lines[i++]!);
      if (sql.length === 0) throw new SltFormatError(file, line, `"${header.trim()}" has no SQL`);
      return sql.join('\n');
    };
    switch (words[0]) {
      case 'statement': {
        if (words[1] !== 'ok' && words[1] !== 'error') throw new SltFormatError(file, line, `expected "statement ok" or "statement error", found "${header.trim()}"`);
        records.push({ kind: 'statement', expect: words[1], sql: readSql(false), line, conditions });
        break;
      }
      case 'query': {
        const types = words[1] ?? '';
        if (!/^[ITR]+$/.test(types)) throw new SltFormatError(file, line, `query types must be letters I, T or R, found "${types}"`);
        const sort = (words[2] ?? 'nosort') as SortMode;
        if (!['nosort', 'rowsort', 'valuesort'].includes(sort)) throw new SltFormatError(file, line, `unknown sort mode "${sort}"`);
        const sql = readSql(true);
        const values: string[] = [];
        if (lines[i] === '----') {
          i++;
          while (i < lines.length && !blank(lines[i])) values.push(lines[i++]!);
        }
        const hashed = values.length === 1 ? /^(\d+) values hashing to ([0-9a-f]{32})$/.exec(values[0]!) : null;
        records.push({
          kind: 'query',
          types,
          sort,
          label: words[3],
          sql,
          expected: hashed ? { count: Number(hashed[1]), hash: hashed[2]! } : { values },
          line,
          conditions,
        });
        break;
      }
      case 'hash-threshold': {
        const value = Number(words[1]);
        if (!Number.isInteger(value) || value < 0) throw new SltFormatError(file, line, `hash-threshold needs a whole number, found "${words[1] ?? ''}"`);
        records.push({ kind: 'hashThreshold', value, line });
        break;
      }
      case 'halt':
        records.push({ kind: 'halt', line, conditions });
        break;
      default:
        throw new SltFormatError(file, line, `unknown record "${header.trim()}"`);
    }
  }
  return records;
}

/** Whether a record applies to an engine under its skipif/onlyif conditions. */
export function appliesTo(conditions: readonly Condition[], engine: string): boolean {
  for (const condition of conditions) {
    if (condition.kind === 'skipif' && condition.engine === engine) return false;
    if (condition.kind === 'onlyif' && condition.engine !== engine) return false;
  }
  return true;
}

/** One result value as the reference harness prints it for a column of type I, R or T. */
export function formatValue(value: unknown, type: string): string {
  if (value === null || value === undefined) return 'NULL';
  if (typeof value === 'boolean' && type !== 'T') return value ? '1' : '0';
  if (type === 'I') {
    if (typeof value === 'bigint') return value.toString();
    const number = typeof value === 'number' ? value : Number(String(value));
    if (Number.isFinite(number)) return Math.trunc(number).toString();
    return String(value);
  }
  if (type === 'R') {
    const number = typeof value === 'number' ? value : Number(String(value));
    return Number.isFinite(number) ? number.toFixed(3) : String(value);
  }
  const text = typeof value === 'string' ? value : String(value);
  if (text === '') return '(empty)';
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\x00-\x1f\x7f]/g, '@');
}

/**
 * The values of a result as compared: formatted by column type, then ordered by the sort mode
 * (rowsort sorts rows by their values as text, valuesort sorts all values).
 */
export function resultValues(rows: readonly (readonly unknown[])[], types: string, sort: SortMode): string[] {
  const formatted = rows.map((row) => row.map((value, column) => formatValue(value, types[column] ?? 'T')));
  if (sort === 'rowsort') formatted.sort(compareRowsAsText);
  const values = formatted.flat();
  if (sort === 'valuesort') values.sort(compareText);
  return values;
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function compareRowsAsText(a: readonly string[], b: readonly string[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const order = compareText(a[i]!, b[i]!);
    if (order !== 0) return order;
  }
  return a.length - b.length;
}

/** The reference harness's hash of a result: MD5 of each value followed by a newline. */
export function hashValues(values: readonly string[]): string {
  const hash = createHash('md5');
  for (const value of values) hash.update(value + '\n');
  return hash.digest('hex');
}

/** Whether actual values match a query's expectation (by values, or by count and hash). */
export function matchesExpected(values: readonly string[], expected: { values: string[] } | { count: number; hash: string }): boolean {
  if ('hash' in expected) return values.length === expected.count && hashValues(values) === expected.hash;
  return values.length === expected.values.length && values.every((value, i) => value === expected.values[i]);
}
