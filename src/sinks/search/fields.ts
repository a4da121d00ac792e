/**
 * The indexed fields of a search sink: `WITH (fields = 'title^2, body')` resolved against the
 * view's columns.
 *
 * Invariants:
 * - Every field names a text column of the view (text, varchar, char), at most once; its weight
 *   is a positive finite number (1 when not given) and scales that field's part of the BM25
 *   score.
 * - Without `fields`, every text column of the view is a field, with weight 1.
 * - A bad field is a DefiniteError (code `search_fields`) naming it, with "did you mean" when a
 *   column's name is close, and the view's text columns in the hint.
 */

import { DefiniteError } from '../../core/index.ts';
import { closest, typeName, type TypeKind } from '../../sql/index.ts';
import type { SinkTarget } from '../sink.ts';

export interface SearchField {
  /** The column's name in the view. */
  name: string;
  /** The column's position in the view's rows. */
  column: number;
  weight: number;
}

const TEXT_KINDS: ReadonlySet<TypeKind> = new Set(['text', 'varchar', 'char']);

function textColumns(target: SinkTarget): string[] {
  return target.columns.filter((column) => TEXT_KINDS.has(column.type.kind)).map((column) => column.name);
}

function fail(target: SinkTarget, message: string, hint?: string): DefiniteError {
  const texts = textColumns(target);
  return new DefiniteError(
    'search_fields',
    `search sink on "${target.name}": ${message}`,
    hint ?? (texts.length > 0 ? `the text columns of "${target.name}" are: ${texts.join(', ')}` : `"${target.name}" has no text columns to index`),
  );
}

/** Resolves the `fields` option (or its absence) against the view's columns. */
export function resolveFields(target: SinkTarget, fields: string | undefined): SearchField[] {
  if (fields === undefined) {
    const resolved = target.columns.flatMap((column, index) => (TEXT_KINDS.has(column.type.kind) ? [{ name: column.name, column: index, weight: 1 }] : []));
    if (resolved.length === 0) {
      throw fail(target, 'the view has no text column to index', 'give it a text column, or cast one: CREATE VIEW … AS SELECT …, description::text AS description');
    }
    return resolved;
  }
  const pieces = fields.split(',').map((piece) => piece.trim());
  if (pieces.every((piece) => piece === '')) throw fail(target, 'fields is empty', `write fields = 'title^2, body'`);
  const resolved: SearchField[] = [];
  for (const piece of pieces) {
    if (piece === '') throw fail(target, `fields = '${fields}' has an empty entry`, `separate fields with single commas: fields = 'title^2, body'`);
    const match = /^(?:"((?:[^"]|"")+)"|([^\s^"]+))\s*(?:\^\s*(\S*))?$/.exec(piece);
    if (!match) throw fail(target, `"${piece}" is not a field`, `write a column name, optionally with a weight: title^2`);
    const name = match[1] !== undefined ? match[1].replaceAll('""', '"') : match[2]!;
    let weight = 1;
    if (match[3] !== undefined) {
      weight = /^(\d+(\.\d*)?|\.\d+)$/.test(match[3]) ? Number(match[3]) : NaN;
      if (!(weight > 0) || !Number.isFinite(weight)) throw fail(target, `the weight of field "${name}" must be a positive number, not "${match[3]}"`, `write it as ${name}^2 or ${name}^0.5`);
    }
    let column = target.columns.findIndex((each) => each.name === name);
    if (column < 0) {
      const folded = target.columns.map((each, index) => [each.name.toLowerCase(), index] as const).filter(([each]) => each === name.toLowerCase());
      if (folded.length === 1) column = folded[0]![1];
    }
    if (column < 0) {
      const guess = closest(name, target.columns.map((each) => each.name));
      throw fail(target, `field "${name}" is not a column of "${target.name}"`, guess ? `did you mean "${guess}"?` : undefined);
    }
    const type = target.columns[column]!.type;
    if (!TEXT_KINDS.has(type.kind)) {
      throw fail(target, `field "${name}" is ${typeName(type)}; search fields must be text columns (text, varchar or char)`, `index it as text in the view (${name}::text AS ${name}_text) or leave it out of fields`);
    }
    if (resolved.some((each) => each.column === column)) throw fail(target, `field "${name}" is listed twice`, 'list each field once, with its weight');
    resolved.push({ name: target.columns[column]!.name, column, weight });
  }
  return resolved;
}
