/**
 * The relational IR: what the binder produces from SQL (and the pipe language), the optimizer
 * rewrites, `sluice check` prints, and lowering turns into an engine circuit.
 *
 * A plan is a tree of relations (`Rel`); each has an ordered list of output columns. Scalar
 * expressions (`Expr`) refer to the columns of their input relation by position — a join's
 * condition refers to the left columns, then the right ones.
 *
 * Invariants:
 * - Plans are plain data (no closures): they can be printed, compared and fingerprinted. Closures
 *   are made by lowering (`compile.ts`).
 * - Every expression carries its resolved type; the binder has inserted every implicit cast, so
 *   operators see operands of the types they were resolved for.
 * - Subqueries do not survive binding: they are decorrelated into joins and aggregates.
 */

import type { Value } from '../core/index.ts';
import type { TypeKind } from './types.ts';

export type Kind = TypeKind | 'unknown';

/** A type: a PostgreSQL type, or `unknown` (an untyped string literal or NULL, before coercion). */
export interface Type {
  kind: Kind;
  modifiers: readonly number[];
}

export const UNKNOWN: Type = { kind: 'unknown', modifiers: [] };
export function type(kind: Kind, modifiers: readonly number[] = []): Type {
  return { kind, modifiers };
}

export interface Column {
  name: string;
  type: Type;
}

export type Expr =
  | { op: 'column'; index: number; type: Type }
  | { op: 'literal'; value: Value; type: Type }
  /** An operator or function, resolved for its argument types (see scalar.ts). */
  | { op: 'call'; fn: string; args: Expr[]; type: Type }
  | { op: 'case'; whens: Array<{ when: Expr; then: Expr }>; otherwise: Expr; type: Type }
  | { op: 'cast'; arg: Expr; type: Type }
  /** A correlated reference to a column of an enclosing query (only while binding; decorrelation removes it). */
  | { op: 'outer'; index: number; type: Type };

export interface AggregateCall {
  /** count, count_star, sum, avg, min, max, bool_and, bool_or, string_agg, array_agg */
  fn: string;
  args: Expr[];
  distinct: boolean;
  type: Type;
}

export interface OrderKey {
  expr: Expr;
  descending: boolean;
  nullsFirst: boolean;
}

export type JoinType = 'inner' | 'left' | 'right' | 'full';

export type Rel =
  | { kind: 'scan'; table: string; columns: Column[] }
  /** Constant rows (a FROM-less SELECT is one empty row). */
  | { kind: 'values'; rows: Expr[][]; columns: Column[] }
  | { kind: 'filter'; input: Rel; predicate: Expr; columns: Column[] }
  | { kind: 'project'; input: Rel; exprs: Expr[]; columns: Column[] }
  /** `on` refers to the left columns, then the right. Output: left columns, then right. */
  | { kind: 'join'; join: JoinType; left: Rel; right: Rel; on: Expr; columns: Column[] }
  /**
   * `key` and `keyOf` are null-safe (NULL matches NULL): used by decorrelation and set operations.
   * semi: left rows with a match; anti: left rows without one; mark: left rows plus one boolean
   * column (whether a match exists).
   */
  | { kind: 'keyJoin'; join: 'semi' | 'anti' | 'left'; left: Rel; right: Rel; leftKey: number[]; rightKey: number[]; columns: Column[] }
  /**
   * Output: the group-by values, then one column per aggregate. `domain`: a relation of group keys
   * that must each produce a row even when no input row falls in the group (aggregates over empty
   * groups: count 0, others NULL) — one empty row for an aggregate without GROUP BY.
   */
  | { kind: 'aggregate'; input: Rel; groupBy: Expr[]; aggregates: AggregateCall[]; domain: Rel | undefined; columns: Column[] }
  | { kind: 'distinct'; input: Rel; columns: Column[] }
  | { kind: 'setop'; op: 'union' | 'intersect' | 'except'; all: boolean; left: Rel; right: Rel; columns: Column[] }
  /** ORDER BY … LIMIT/OFFSET per group (`groupBy` columns: decorrelated subqueries). */
  | { kind: 'topK'; input: Rel; orderBy: OrderKey[]; limit: number; offset: number; groupBy: number[]; columns: Column[] };

/** A bound query: its plan, and the order its reads are given in (ORDER BY without LIMIT). */
export interface Query {
  rel: Rel;
  /** The visible columns are the first `visible` of rel's; the rest carry ORDER BY values. */
  visible: number;
  orderBy: OrderKey[];
}

export function column(index: number, columnType: Type): Expr {
  return { op: 'column', index, type: columnType };
}

export function literal(value: Value, literalType: Type): Expr {
  return { op: 'literal', value, type: literalType };
}

export function inputsOf(rel: Rel): Rel[] {
  switch (rel.kind) {
    case 'scan':
    case 'values':
      return [];
    case 'filter':
    case 'project':
    case 'distinct':
    case 'topK':
      return [rel.input];
    case 'aggregate':
      return rel.domain ? [rel.input, rel.domain] : [rel.input];
    case 'join':
    case 'keyJoin':
    case 'setop':
      return [rel.left, rel.right];
  }
}

/** The tables a plan reads. */
export function tablesOf(rel: Rel, into = new Set<string>()): Set<string> {
  if (rel.kind === 'scan') into.add(rel.table);
  for (const input of inputsOf(rel)) tablesOf(input, into);
  return into;
}

/** Calls `visit` on every expression node of an expression tree, children first. */
export function visitExpr(expr: Expr, visit: (expr: Expr) => void): void {
  if (expr.op === 'call') for (const arg of expr.args) visitExpr(arg, visit);
  else if (expr.op === 'case') {
    for (const { when, then } of expr.whens) {
      visitExpr(when, visit);
      visitExpr(then, visit);
    }
    visitExpr(expr.otherwise, visit);
  } else if (expr.op === 'cast') visitExpr(expr.arg, visit);
  visit(expr);
}

/** A copy of `expr` with its column references renumbered (or replaced) by `map`. */
export function mapColumns(expr: Expr, map: (index: number, columnType: Type) => Expr): Expr {
  switch (expr.op) {
    case 'column':
      return map(expr.index, expr.type);
    case 'literal':
      return expr;
    case 'call':
      return { ...expr, args: expr.args.map((arg) => mapColumns(arg, map)) };
    case 'case':
      return { ...expr, whens: expr.whens.map(({ when, then }) => ({ when: mapColumns(when, map), then: mapColumns(then, map) })), otherwise: mapColumns(expr.otherwise, map) };
    case 'cast':
      return { ...expr, arg: mapColumns(expr.arg, map) };
    case 'outer':
      return expr;
  }
}

/** A copy of `expr` with its outer references replaced by `map`. */
export function mapOuter(expr: Expr, map: (index: number, columnType: Type) => Expr): Expr {
  switch (expr.op) {
    case 'outer':
      return map(expr.index, expr.type);
    case 'column':
    case 'literal':
      return expr;
    case 'call':
      return { ...expr, args: expr.args.map((arg) => mapOuter(arg, map)) };
    case 'case':
      return { ...expr, whens: expr.whens.map(({ when, then }) => ({ when: mapOuter(when, map), then: mapOuter(then, map) })), otherwise: mapOuter(expr.otherwise, map) };
    case 'cast':
      return { ...expr, arg: mapOuter(expr.arg, map) };
  }
}

export function shiftColumns(expr: Expr, by: number): Expr {
  return by === 0 ? expr : mapColumns(expr, (index, columnType) => column(index + by, columnType));
}

/** The columns an expression reads. */
export function columnsUsed(expr: Expr, into = new Set<number>()): Set<number> {
  visitExpr(expr, (node) => {
    if (node.op === 'column') into.add(node.index);
  });
  return into;
}

export function exprEquals(a: Expr, b: Expr): boolean {
  return exprText(a) === exprText(b);
}

/** The expression as text, for plans and for comparing expressions. */
export function exprText(expr: Expr, names?: readonly string[]): string {
  switch (expr.op) {
    case 'column':
      return names?.[expr.index] !== undefined ? names[expr.index]! : `#${expr.index}`;
    case 'literal':
      return literalText(expr.value, expr.type);
    case 'call': {
      const args = expr.args.map((arg) => exprText(arg, names));
      if (/^[^a-z$]/.test(expr.fn) && args.length === 2) return `(${args[0]} ${expr.fn} ${args[1]})`;
      if (/^[^a-z$]/.test(expr.fn) && args.length === 1) return `(${expr.fn} ${args[0]})`;
      return `${expr.fn}(${args.join(', ')})`;
    }
    case 'case':
      return `CASE ${expr.whens.map(({ when, then }) => `WHEN ${exprText(when, names)} THEN ${exprText(then, names)}`).join(' ')} ELSE ${exprText(expr.otherwise, names)} END`;
    case 'cast':
      return `${exprText(expr.arg, names)}::${typeText(expr.type)}`;
    case 'outer':
      return `outer#${expr.index}`;
  }
}

function literalText(value: Value, literalType: Type): string {
  if (value === null) return 'NULL';
  if (typeof value === 'string') return `'${value.replace(/'/g, "''")}'`;
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') return String(value);
  return `'${String(value)}'::${typeText(literalType)}`;
}

export function typeText(t: Type): string {
  return t.modifiers.length > 0 ? `${t.kind}(${t.modifiers.join(',')})` : t.kind;
}

/** The plan as an indented tree, one operator per line (what `sluice check` prints). */
export function explain(rel: Rel, indent = ''): string {
  const names = (r: Rel) => r.columns.map((c) => c.name);
  const inputNames = rel.kind === 'join' ? [...names(rel.left), ...names(rel.right)] : 'input' in rel ? names(rel.input) : [];
  const text = (expr: Expr) => exprText(expr, inputNames);
  let line: string;
  switch (rel.kind) {
    case 'scan':
      line = `Scan ${rel.table} (${names(rel).join(', ')})`;
      break;
    case 'values':
      line = `Values ${rel.rows.length} row${rel.rows.length === 1 ? '' : 's'}${rel.columns.length ? ` (${names(rel).join(', ')})` : ''}`;
      break;
    case 'filter':
      line = `Filter ${text(rel.predicate)}`;
      break;
    case 'project':
      line = `Project ${rel.exprs.map((expr, i) => {
        const shown = text(expr);
        return shown === rel.columns[i]!.name ? shown : `${shown} AS ${rel.columns[i]!.name}`;
      }).join(', ')}`;
      break;
    case 'join':
      line = `Join ${rel.join} on ${text(rel.on)}`;
      break;
    case 'keyJoin':
      line = `${rel.join === 'semi' ? 'SemiJoin' : rel.join === 'anti' ? 'AntiJoin' : 'LeftKeyJoin'} (${rel.leftKey.map((i) => names(rel.left)[i]).join(', ')}) = (${rel.rightKey.map((i) => names(rel.right)[i]).join(', ')}) null-safe`;
      break;
    case 'aggregate':
      line = `Aggregate${rel.groupBy.length ? ` by ${rel.groupBy.map(text).join(', ')}` : ''}: ${rel.aggregates.map((a) => (a.fn === 'count_star' ? 'count(*)' : `${a.fn}(${a.distinct ? 'DISTINCT ' : ''}${a.args.map(text).join(', ')})`)).join(', ') || '(none)'}${rel.domain ? (rel.groupBy.length ? ' (a row for every group of the domain)' : ' (one row even over no input)') : ''}`;
      break;
    case 'distinct':
      line = 'Distinct';
      break;
    case 'setop':
      line = `${rel.op[0]!.toUpperCase()}${rel.op.slice(1)}${rel.all ? ' All' : ''}`;
      break;
    case 'topK':
      line = `TopK ${rel.orderBy.map((key) => `${text(key.expr)}${key.descending ? ' DESC' : ''}`).join(', ') || '(row order)'} limit ${rel.limit}${rel.offset ? ` offset ${rel.offset}` : ''}${rel.groupBy.length ? ` per ${rel.groupBy.map((i) => inputNames[i]).join(', ')}` : ''}`;
      break;
  }
  return [indent + line, ...inputsOf(rel).map((input) => explain(input, indent + '  '))].join('\n');
}

/** A query's plan, under a line for the order its reads are given in (ORDER BY without LIMIT). */
export function explainQuery(query: Query): string {
  const plan = explain(query.rel);
  if (query.orderBy.length === 0) return plan;
  const names = query.rel.columns.map((c) => c.name);
  const keys = query.orderBy.map((key) => `${exprText(key.expr, names)}${key.descending ? ' DESC' : ''}${key.nullsFirst !== key.descending ? (key.nullsFirst ? ' NULLS FIRST' : ' NULLS LAST') : ''}`);
  return `Order reads by ${keys.join(', ')}\n${plan.split('\n').map((line) => `  ${line}`).join('\n')}`;
}

/**
 * Columns whose values identify each row of `rel` (no two rows share them), when the plan shows
 * it: an aggregate's group-by columns, carried through filters, top-k and projections that keep
 * them as plain columns, and the pair of keys of an inner join. `tableKey` gives a table's
 * primary key. Undefined when no key is known (a key of all columns is no help to anyone).
 */
export function uniqueKey(rel: Rel, tableKey: (table: string) => number[] | undefined): number[] | undefined {
  switch (rel.kind) {
    case 'scan':
      return tableKey(rel.table);
    case 'aggregate':
      return rel.groupBy.length > 0 ? rel.groupBy.map((_, i) => i) : undefined;
    case 'filter':
    case 'topK':
      return uniqueKey(rel.input, tableKey);
    case 'project': {
      const inner = uniqueKey(rel.input, tableKey);
      if (!inner) return undefined;
      const out: number[] = [];
      for (const column of inner) {
        const at = rel.exprs.findIndex((e) => e.op === 'column' && e.index === column);
        if (at < 0) return undefined;
        out.push(at);
      }
      return out;
    }
    case 'join': {
      if (rel.join !== 'inner') return undefined;
      const left = uniqueKey(rel.left, tableKey);
      const right = uniqueKey(rel.right, tableKey);
      return left && right ? [...left, ...right.map((c) => c + rel.left.columns.length)] : undefined;
    }
    default:
      return undefined;
  }
}
