/**
 * Binding: PostgreSQL's AST (from libpg-query) → the relational IR of plan.ts, checked against a
 * catalog of tables and views.
 *
 * What binding decides: which table or column every name means (with "did you mean" hints), the
 * type of every expression and the implicit casts PostgreSQL would insert, which calls are
 * aggregates and what is grouped, and how subqueries become joins:
 * - an uncorrelated subquery is computed once and joined in (scalar → its value, checked to be at
 *   most one row; EXISTS → whether it has rows; IN → match plus NULL bookkeeping for SQL's
 *   three-valued IN);
 * - a correlated subquery is decorrelated: the distinct values of the outer columns it uses (the
 *   "domain" D) are pushed into it, so it is computed once per distinct outer value, grouped by
 *   D, and joined back on D — never re-run per row.
 *
 * Invariants:
 * - Every error is a `BindError` carrying the offset of the offending text in the statement, so
 *   callers report line:column; messages name what was wrong and how to fix it.
 * - Unsupported SQL is refused by name ("window functions are not supported"), never ignored.
 */

import { Decimal, DefiniteError, type Value } from '../core/index.ts';
import { compileExpr } from './compile.ts';
import type { Node } from 'libpg-query';
import {
  column,
  columnsUsed,
  exprEquals,
  exprText,
  literal,
  mapColumns,
  mapOuter,
  shiftColumns,
  type as makeType,
  type AggregateCall,
  type Column,
  type Expr,
  type JoinType,
  type OrderKey,
  type Query,
  type Rel,
  type Type,
  UNKNOWN,
} from './plan.ts';
import { BIGINT, BOOLEAN, canCoerce, castFunction, commonType, INTEGER, isKnownFunction, isNumeric, isString, knownFunctions, NUMERIC, resolveFunction, TEXT, typeLabel } from './scalar.ts';
import { resolveType, type SqlType } from './types.ts';

export interface TableColumn {
  name: string;
  type: SqlType;
  notNull: boolean;
}

export interface TableSchema {
  name: string;
  columns: TableColumn[];
  primaryKey: number[] | undefined;
}

export interface Catalog {
  table(name: string): TableSchema | undefined;
  /** A view: read as its materialized rows (its visible columns), like a table. */
  view(name: string): { name: string; columns: Column[] } | undefined;
  /** Every relation name, for hints. */
  names(): string[];
}

export class BindError extends DefiniteError {
  override readonly name: string = 'BindError';
  /** Offset of the offending text in the statement (-1 when unknown). */
  readonly location: number;
  constructor(code: string, message: string, location: number | undefined, hint?: string) {
    super(code, message, hint ?? DEFAULT_HINTS[code]);
    this.location = location ?? -1;
  }
}

/** What to do, for errors that have no more specific hint. */
const DEFAULT_HINTS: Record<string, string> = {
  sql_unsupported: 'docs/sql.md lists the SQL Sluice supports; write this another way for now',
  sql_type: 'add an explicit cast, e.g. CAST(x AS text) or x::numeric',
  sql_setop: 'select the same number of columns in every branch, casting where types differ',
  sql_values: 'give every VALUES row the same number of values, of compatible types',
  sql_limit: 'LIMIT and OFFSET take a non-negative integer constant',
  sql_order: 'order by a column of the select list: its name, its position, or an expression of it',
  sql_function: 'docs/sql.md lists the functions Sluice supports',
  sql_group: 'in a grouped query every column outside an aggregate must be in GROUP BY',
  sql_subquery: 'a subquery used as a value selects exactly one column',
  sql_alias: 'give at most as many column names as the relation has columns',
  sql_column: 'check the column names of the tables in FROM',
  sql_relation: 'use a table or view defined above, or an alias given in FROM',
  sql_select: 'name the columns to select, or add a FROM clause',
};

// libpg-query's nodes are JSON: one key (the node type) → fields.
type Any = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function nodeType(node: Node | Any): [string, Any] {
  const key = Object.keys(node)[0]!;
  return [key, (node as Any)[key] as Any];
}

function location(node: Node | Any | undefined): number | undefined {
  if (!node) return undefined;
  const [, body] = nodeType(node);
  return typeof body?.location === 'number' && body.location >= 0 ? body.location : undefined;
}

function stringsOf(list: Any[] | undefined): string[] {
  return (list ?? []).map((item) => (item.String?.sval as string | undefined) ?? (item.A_Star ? '*' : ''));
}

/** The closest of `candidates` to `name`, when it is close enough to be a likely typo. */
export function closest(name: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const d = editDistance(name.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      bestDistance = d;
      best = candidate;
    }
  }
  return best !== undefined && bestDistance <= Math.max(1, Math.floor(name.length / 3)) ? best : undefined;
}

/** Edit distance counting insertions, deletions, substitutions and adjacent transpositions. */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}

function didYouMean(name: string, candidates: Iterable<string>): string | undefined {
  const match = closest(name, candidates);
  return match ? `did you mean "${match}"?` : undefined;
}

// ---------------------------------------------------------------------------------------------
// Scopes

interface ScopeColumn {
  /** The range variable's name (alias or table name). */
  table: string | undefined;
  name: string;
  index: number;
  type: Type;
  /** Only reachable qualified (the two sides of a USING column), and not part of `*`. */
  qualifiedOnly?: boolean;
}

interface Scope {
  columns: ScopeColumn[];
  /** The enclosing query's scope, for correlated references. */
  outer: OuterContext | undefined;
  ctes: Map<string, Query>;
}

/** What a subquery's binding records about its references to the enclosing query. */
interface OuterContext {
  scope: Scope;
  /** The enclosing query's column indices referenced, in first-use order. */
  refs: number[];
}

const AGG_BASE = 1 << 28;
const SUB_BASE = 1 << 29;

interface Pending {
  kind: 'scalar' | 'exists' | 'in' | 'quantified';
  /** For quantified comparisons: the operator and ANY / ALL, e.g. '> ALL'. */
  quantifier?: string;
  query: Query;
  /** Outer column indices (of the binding scope) the subquery references. */
  refs: number[];
  /** For IN: the tested expression (over the binding scope). */
  test?: Expr;
}

/** Where an expression is being bound. */
interface Context {
  scope: Scope;
  /** What the expression is part of, for messages ("WHERE", "JOIN/ON"). */
  clause: string;
  /** Set in SELECT lists and HAVING of grouped queries: aggregate calls collected here. */
  aggregates?: AggregateCall[];
  /** Subqueries met, attached after binding (see attach). */
  pending?: Pending[];
}

const AGGREGATES = new Set(['count', 'sum', 'avg', 'min', 'max', 'bool_and', 'bool_or', 'every', 'string_agg', 'array_agg']);

// ---------------------------------------------------------------------------------------------
// Entry points

export class Binder {
  readonly catalog: Catalog;
  constructor(catalog: Catalog) {
    this.catalog = catalog;
  }

  /** Binds a SELECT (any query expression: set operations, VALUES, WITH). */
  query(node: Any, outer?: OuterContext, ctes?: Map<string, Query>): Query {
    const [kind, stmt] = nodeType(node);
    if (kind !== 'SelectStmt') throw new BindError('sql_unsupported', `${kind.replace(/Stmt$/, '')} is not a query`, location(node));
    return this.#select(stmt, outer, ctes ?? new Map());
  }

  /**
   * The query of INSERT … SELECT: its select list's untyped values (NULL, 'text') keep the
   * unknown type, so the INSERT casts them to its columns' types as PostgreSQL does.
   */
  insertQuery(node: Any): Query {
    this.#keepUnknown = true;
    try {
      return this.query(node);
    } finally {
      this.#keepUnknown = false;
    }
  }

  #keepUnknown = false;

  /** Binds an expression over one table's columns (UPDATE … SET, DEFAULT). */
  rowExpression(node: Any, table: TableSchema): Expr {
    const scope: Scope = { columns: table.columns.map((c, index) => ({ table: table.name, name: c.name, index, type: c.type })), outer: undefined, ctes: new Map() };
    return this.#expr(node, { scope, clause: 'this expression' });
  }

  #select(stmt: Any, outer: OuterContext | undefined, parentCtes: Map<string, Query>): Query {
    // Only the top SELECT of an INSERT keeps unknown types; nested queries resolve theirs.
    const keepUnknown = this.#keepUnknown;
    this.#keepUnknown = false;
    const ctes = new Map(parentCtes);
    if (stmt.withClause) {
      if (stmt.withClause.recursive) throw new BindError('sql_unsupported', 'WITH RECURSIVE is not supported yet', location({ WithClause: stmt.withClause }), 'write the recursion out for a fixed depth, or compute it upstream');
      for (const cte of stmt.withClause.ctes ?? []) {
        const body = cte.CommonTableExpr;
        let query = this.query(body.ctequery, outer, ctes);
        const names = stringsOf(body.aliascolnames);
        if (names.length > 0) query = renameColumns(query, names, location(cte));
        ctes.set(body.ctename, query);
      }
    }
    if (stmt.op && stmt.op !== 'SETOP_NONE') return this.#setOperation(stmt, outer, ctes);
    if (stmt.valuesLists) return this.#values(stmt, outer, ctes);
    for (const [field, what] of [
      ['intoClause', 'SELECT INTO'],
      ['lockingClause', 'FOR UPDATE / FOR SHARE'],
      ['windowClause', 'WINDOW'],
    ] as const) {
      if (stmt[field]) throw new BindError('sql_unsupported', `${what} is not supported`, undefined);
    }
    if (stmt.groupingSets) throw new BindError('sql_unsupported', 'GROUPING SETS are not supported yet', undefined);

    // FROM
    let rel: Rel;
    let scope: Scope;
    if (stmt.fromClause && stmt.fromClause.length > 0) {
      let joined: { rel: Rel; columns: ScopeColumn[] } | undefined;
      for (const item of stmt.fromClause) {
        const next = this.#fromItem(item, outer, ctes);
        joined = joined ? crossJoin(joined, next) : next;
      }
      rel = joined!.rel;
      scope = { columns: joined!.columns, outer, ctes };
    } else {
      rel = { kind: 'values', rows: [[]], columns: [] };
      scope = { columns: [], outer, ctes };
    }

    // WHERE: EXISTS, NOT EXISTS and IN (subquery) conjuncts become semi- and anti-joins; the
    // rest is a filter (its subqueries joined in first).
    if (stmt.whereClause) {
      const rest: Any[] = [];
      for (const conjunct of andConjuncts(stmt.whereClause)) {
        const joined = this.#semiJoin(conjunct, rel, scope);
        if (joined) rel = joined;
        else rest.push(conjunct);
      }
      if (rest.length > 0) {
        const context: Context = { scope, clause: 'WHERE', pending: [] };
        const predicate = this.#condition(rest.length === 1 ? rest[0]! : { BoolExpr: { boolop: 'AND_EXPR', args: rest } }, context);
        const width = rel.columns.length;
        const attached = this.#attach(rel, context.pending!, (e) => e, scope);
        rel = { kind: 'filter', input: attached.rel, predicate: attached.substitute(predicate), columns: attached.rel.columns };
        if (rel.columns.length !== width) rel = projectFirst(rel, width);
      }
    }

    // Grouping.
    const targets: Any[] = stmt.targetList ?? [];
    const grouped = (stmt.groupClause?.length ?? 0) > 0 || stmt.havingClause !== undefined || targets.some((t) => containsAggregate(t.ResTarget?.val)) || (stmt.sortClause ?? []).some((s: Any) => containsAggregate(s.SortBy?.node));
    const selectContext: Context = { scope, clause: 'SELECT', pending: [] };
    let outputs: Array<{ expr: Expr; name: string }>;
    let having: Expr | undefined;
    let groupRewrite: ((expr: Expr, where: number | undefined) => Expr) | undefined;
    let orderItems: Array<{ expr: Expr | number; descending: boolean; nullsFirst: boolean }>;

    if (grouped) {
      const aggregates: AggregateCall[] = [];
      selectContext.aggregates = aggregates;
      // GROUP BY items: expressions over the input, output positions, or output names.
      const groupBy: Expr[] = [];
      for (const item of stmt.groupClause ?? []) {
        const [kind, body] = nodeType(item);
        if (kind === 'GroupingSet' || kind === 'RowExpr') throw new BindError('sql_unsupported', 'GROUPING SETS, ROLLUP and CUBE are not supported yet', location(item));
        let expr: Expr;
        if (kind === 'A_Const' && body.ival !== undefined) {
          const position = Number(body.ival.ival ?? 0);
          const target = targets[position - 1];
          if (!target) throw new BindError('sql_group', `GROUP BY position ${position} is not in select list`, location(item), `the select list has ${targets.length} column${targets.length === 1 ? '' : 's'}`);
          expr = this.#expr(target.ResTarget.val, { scope, clause: 'GROUP BY' });
        } else if (kind === 'ColumnRef' && stringsOf(body.fields).length === 1 && !findColumn(scope, undefined, stringsOf(body.fields)[0]!)) {
          const name = stringsOf(body.fields)[0]!;
          const target = targets.find((t) => t.ResTarget.name === name);
          if (!target) expr = this.#expr(item, { scope, clause: 'GROUP BY' });
          else expr = this.#expr(target.ResTarget.val, { scope, clause: 'GROUP BY' });
        } else expr = this.#expr(item, { scope, clause: 'GROUP BY' });
        if (!groupBy.some((g) => exprEquals(g, expr))) groupBy.push(expr);
      }
      const boundTargets = this.#targets(targets, selectContext);
      const boundHaving = stmt.havingClause ? this.#condition(stmt.havingClause, { ...selectContext, clause: 'HAVING' }) : undefined;
      orderItems = this.#orderItems(stmt.sortClause ?? [], boundTargets, selectContext);
      const width = groupBy.length;
      const rewrite = (expr: Expr, where: number | undefined): Expr => rewriteGrouped(expr, groupBy, width, scope, where);
      groupRewrite = rewrite;
      // The aggregate: group keys then aggregate values; global aggregates produce a row even over no input.
      const inputNames = rel.columns.map((c) => c.name);
      const aggregateColumns: Column[] = [
        ...groupBy.map((g, i) => ({ name: g.op === 'column' ? inputNames[g.index]! : `group${i + 1}`, type: g.type })),
        ...aggregates.map((a) => ({ name: `${a.fn === 'count_star' ? 'count' : a.fn}(${a.distinct ? 'DISTINCT ' : ''}${a.fn === 'count_star' ? '*' : a.args.map((e) => exprText(e, inputNames)).join(', ')})`, type: a.type })),
      ];
      rel = { kind: 'aggregate', input: rel, groupBy, aggregates, domain: groupBy.length === 0 ? unit() : undefined, columns: aggregateColumns };
      outputs = boundTargets.map((t) => ({ expr: rewrite(t.expr, t.location), name: t.name }));
      having = boundHaving ? rewrite(boundHaving, location(stmt.havingClause)) : undefined;
      orderItems = orderItems.map((item) => (typeof item.expr === 'number' ? item : { ...item, expr: rewrite(item.expr, undefined) }));
    } else {
      const boundTargets = this.#targets(targets, selectContext);
      outputs = boundTargets.map((t) => ({ expr: t.expr, name: t.name }));
      orderItems = this.#orderItems(stmt.sortClause ?? [], boundTargets, selectContext);
    }

    // Subqueries in the select list, HAVING and ORDER BY, joined onto the (grouped) relation.
    const attached = this.#attach(rel, selectContext.pending!, groupRewrite ? (e) => groupRewrite!(e, undefined) : (e) => e, scope);
    rel = attached.rel;
    if (having) {
      const width = rel.columns.length;
      rel = { kind: 'filter', input: rel, predicate: attached.substitute(having), columns: rel.columns };
      void width;
    }
    outputs = outputs.map((o) => ({ ...o, expr: attached.substitute(o.expr) }));
    const order = orderItems.map((item) => (typeof item.expr === 'number' ? item : { ...item, expr: attached.substitute(item.expr) }));

    // Projection: the select list, then ORDER BY values that are not in it.
    const exprs = outputs.map((o) => o.expr);
    const columns: Column[] = outputs.map((o) => ({ name: o.name, type: o.expr.type.kind === 'unknown' && !keepUnknown ? TEXT : o.expr.type }));
    const distinctOn = stmt.distinctClause !== undefined && stmt.distinctClause.length > 0 && Object.keys(stmt.distinctClause[0]).length > 0;
    const distinct = stmt.distinctClause !== undefined && !distinctOn;
    // DISTINCT ON (e, …): the first row per value of e by ORDER BY — a top-1 per group.
    let onColumns: number[] = [];
    if (distinctOn) {
      const boundTargets = outputs.map((o) => ({ expr: o.expr, name: o.name }));
      const items = this.#orderItems((stmt.distinctClause as Any[]).map((node) => ({ SortBy: { node, sortby_dir: 'SORTBY_DEFAULT', sortby_nulls: 'SORTBY_NULLS_DEFAULT' } })), boundTargets, selectContext);
      onColumns = items.map((item) => {
        if (typeof item.expr === 'number') return item.expr;
        const expr = attached.substitute(groupRewrite ? groupRewrite(item.expr, undefined) : item.expr);
        const index = exprs.findIndex((e) => exprEquals(e, expr));
        if (index >= 0) return index;
        exprs.push(expr);
        columns.push({ name: `on${exprs.length}`, type: expr.type });
        return exprs.length - 1;
      });
    }
    const keys: OrderKey[] = [];
    for (const item of order) {
      let index: number;
      if (typeof item.expr === 'number') index = item.expr;
      else {
        const expr = item.expr;
        index = exprs.findIndex((e) => exprEquals(e, expr));
        if (index < 0) {
          if (distinct) throw new BindError('sql_order', 'for SELECT DISTINCT, ORDER BY expressions must appear in select list', undefined);
          index = exprs.length;
          exprs.push(expr);
          columns.push({ name: `order${keys.length + 1}`, type: expr.type });
        }
      }
      keys.push({ expr: column(index, columns[index]!.type), descending: item.descending, nullsFirst: item.nullsFirst });
    }
    const visible = outputs.length;
    rel = { kind: 'project', input: rel, exprs: keepUnknown ? exprs : exprs.map((e) => coerceUnknownToText(e)), columns };
    if (distinct) rel = { kind: 'distinct', input: rel, columns };
    if (distinctOn) {
      const leading = keys.slice(0, onColumns.length).map((key) => (key.expr as { index: number }).index);
      if (keys.length > 0 && !(leading.length === onColumns.length && [...leading].sort().every((c, i) => c === [...onColumns].sort()[i]))) {
        throw new BindError('sql_order', 'SELECT DISTINCT ON expressions must match initial ORDER BY expressions', undefined, 'start ORDER BY with the DISTINCT ON expressions, then order within each');
      }
      rel = { kind: 'topK', input: rel, orderBy: keys.slice(onColumns.length), limit: 1, offset: 0, groupBy: onColumns, columns };
    }
    return this.#limit({ rel, visible, orderBy: keys }, stmt, scope);
  }

  /** LIMIT / OFFSET: a top-k over the ORDER BY keys (or the whole row's order without them). */
  #limit(query: Query, stmt: Any, scope: Scope): Query {
    if (!stmt.limitCount && !stmt.limitOffset) return query;
    if (stmt.limitOption === 'LIMIT_OPTION_WITH_TIES') throw new BindError('sql_unsupported', 'FETCH … WITH TIES is not supported yet', undefined);
    const constant = (node: Any | undefined, what: string): number | undefined => {
      if (!node) return undefined;
      if (node.A_Const?.isnull) return undefined;
      const expr = this.#expr(node, { scope: { columns: [], outer: undefined, ctes: scope.ctes }, clause: what });
      const value = constantValue(expr);
      if (value === undefined) throw new BindError('sql_limit', `argument of ${what} must be a constant`, location(node), `${what} takes a number, e.g. ${what} 10`);
      if (value === null) return undefined;
      const n = Number(value);
      if (!Number.isInteger(n)) throw new BindError('sql_limit', `argument of ${what} must be an integer`, location(node));
      if (n < 0) throw new BindError('sql_limit', what === 'LIMIT' ? 'LIMIT must not be negative' : 'OFFSET must not be negative', location(node));
      return n;
    };
    const limit = constant(stmt.limitCount, 'LIMIT');
    const offset = constant(stmt.limitOffset, 'OFFSET') ?? 0;
    const rel: Rel = { kind: 'topK', input: query.rel, orderBy: query.orderBy, limit: limit ?? Number.MAX_SAFE_INTEGER, offset, groupBy: [], columns: query.rel.columns };
    return { rel, visible: query.visible, orderBy: query.orderBy };
  }

  #setOperation(stmt: Any, outer: OuterContext | undefined, ctes: Map<string, Query>): Query {
    const op = stmt.op === 'SETOP_UNION' ? 'union' : stmt.op === 'SETOP_INTERSECT' ? 'intersect' : 'except';
    let left = visibleRel(this.query({ SelectStmt: stmt.larg }, outer, ctes));
    let right = visibleRel(this.query({ SelectStmt: stmt.rarg }, outer, ctes));
    if (left.columns.length !== right.columns.length) {
      throw new BindError('sql_setop', `each ${op.toUpperCase()} query must have the same number of columns (${left.columns.length} and ${right.columns.length})`, undefined);
    }
    const types = left.columns.map((c, i) => {
      const common = commonType(c.type, right.columns[i]!.type);
      if (!common) throw new BindError('sql_setop', `${op.toUpperCase()} types ${typeLabel(c.type)} and ${typeLabel(right.columns[i]!.type)} cannot be matched`, undefined, 'cast one side, e.g. CAST(x AS text)');
      return common.kind === 'unknown' ? TEXT : common;
    });
    left = castColumns(left, types);
    right = castColumns(right, types);
    const columns = left.columns.map((c, i) => ({ name: c.name, type: types[i]! }));
    const rel: Rel = { kind: 'setop', op, all: stmt.all === true, left, right, columns };
    const names = columns.map((c) => c.name);
    const keys: OrderKey[] = [];
    for (const item of stmt.sortClause ?? []) {
      const sort = item.SortBy;
      const [kind, body] = nodeType(sort.node);
      let index = -1;
      if (kind === 'A_Const' && body.ival !== undefined) index = Number(body.ival.ival ?? 0) - 1;
      else if (kind === 'ColumnRef') index = names.indexOf(stringsOf(body.fields).at(-1)!);
      if (index < 0 || index >= columns.length) throw new BindError('sql_order', 'ORDER BY on a UNION/INTERSECT/EXCEPT result must name a result column', location(sort.node), `the result columns are: ${names.join(', ')}`);
      keys.push(orderKey(column(index, columns[index]!.type), sort));
    }
    return this.#limit({ rel, visible: columns.length, orderBy: keys }, stmt, { columns: [], outer, ctes });
  }

  #values(stmt: Any, outer: OuterContext | undefined, ctes: Map<string, Query>): Query {
    const scope: Scope = { columns: [], outer, ctes };
    const rows = (stmt.valuesLists as Any[]).map((list) => (list.List.items as Any[]).map((item) => this.#expr(item, { scope, clause: 'VALUES' })));
    const width = rows[0]!.length;
    for (const row of rows) if (row.length !== width) throw new BindError('sql_values', 'VALUES lists must all be the same length', undefined);
    const types = Array.from({ length: width }, (_, i) => {
      let common: Type = UNKNOWN;
      for (const row of rows) {
        if (row[i]!.type.kind === 'unknown') continue;
        const next = commonType(common, row[i]!.type);
        if (!next) throw new BindError('sql_values', `VALUES types ${typeLabel(common)} and ${typeLabel(row[i]!.type)} cannot be matched`, undefined);
        common = next;
      }
      // All literals of unknown type stay unknown: INSERT casts them to the target columns' types.
      return common;
    });
    const columns = types.map((t, i) => ({ name: `column${i + 1}`, type: t }));
    const rel: Rel = { kind: 'values', rows: rows.map((row) => row.map((e, i) => coerce(e, types[i]!, 'VALUES'))), columns };
    return this.#limit({ rel, visible: width, orderBy: [] }, stmt, scope);
  }

  // -------------------------------------------------------------------------------------------
  // FROM

  #fromItem(item: Any, outer: OuterContext | undefined, ctes: Map<string, Query>): { rel: Rel; columns: ScopeColumn[] } {
    const [kind, body] = nodeType(item);
    switch (kind) {
      case 'RangeVar': {
        const name = body.schemaname ? `${body.schemaname}.${body.relname}` : body.relname;
        const alias = body.alias?.aliasname ?? body.relname;
        let rel: Rel;
        const cte = body.schemaname ? undefined : ctes.get(body.relname);
        if (cte) rel = visibleRel(cte);
        else {
          const table = this.catalog.table(name);
          const view = table ? undefined : this.catalog.view(name);
          if (table) rel = { kind: 'scan', table: table.name, columns: table.columns.map((c) => ({ name: c.name, type: c.type })) };
          else if (view) rel = { kind: 'scan', table: view.name, columns: view.columns };
          else {
            throw new BindError('sql_relation', `relation "${name}" does not exist`, body.location, didYouMean(name, [...this.catalog.names(), ...ctes.keys()]) ?? 'create it first with CREATE TABLE, CREATE VIEW or CREATE SOURCE');
          }
        }
        return { rel, columns: scopeColumns(rel, alias, stringsOf(body.alias?.colnames), body.location) };
      }
      case 'RangeSubselect': {
        if (body.lateral) throw new BindError('sql_unsupported', 'LATERAL subqueries are not supported yet', location(item));
        const rel = visibleRel(this.query(body.subquery, undefined, ctes));
        return { rel, columns: scopeColumns(rel, body.alias?.aliasname, stringsOf(body.alias?.colnames), location(item)) };
      }
      case 'JoinExpr':
        return this.#join(body, outer, ctes);
      case 'RangeFunction':
        throw new BindError('sql_unsupported', 'functions in FROM (set-returning functions) are not supported yet', location(item));
      default:
        throw new BindError('sql_unsupported', `${kind} in FROM is not supported`, location(item));
    }
  }

  #join(body: Any, outer: OuterContext | undefined, ctes: Map<string, Query>): { rel: Rel; columns: ScopeColumn[] } {
    const left = this.#fromItem(body.larg, outer, ctes);
    const right = this.#fromItem(body.rarg, outer, ctes);
    const join: JoinType = ({ JOIN_INNER: 'inner', JOIN_LEFT: 'left', JOIN_RIGHT: 'right', JOIN_FULL: 'full' } as Record<string, JoinType>)[body.jointype]!;
    if (!join) throw new BindError('sql_unsupported', `join type ${body.jointype} is not supported`, undefined);
    const width = left.rel.columns.length;
    const columns: ScopeColumn[] = [...left.columns, ...right.columns.map((c) => ({ ...c, index: c.index + width }))];
    const joinedColumns = [...left.rel.columns, ...right.rel.columns];
    let using: string[] = stringsOf(body.usingClause);
    if (body.isNatural) {
      const rightNames = new Set(right.columns.filter((c) => !c.qualifiedOnly).map((c) => c.name));
      using = left.columns.filter((c) => !c.qualifiedOnly && rightNames.has(c.name)).map((c) => c.name);
    }
    if (using.length > 0 || body.isNatural) {
      // USING (a, b): equality on each pair, and one merged column per name in front.
      const conditions: Expr[] = [];
      const merged: Array<{ name: string; l: ScopeColumn; r: ScopeColumn; type: Type }> = [];
      for (const name of using) {
        const l = findColumn({ columns: left.columns, outer: undefined, ctes }, undefined, name);
        const r = findColumn({ columns: right.columns, outer: undefined, ctes }, undefined, name);
        if (!l || !r) throw new BindError('sql_column', `column "${name}" specified in USING clause does not exist in ${l ? 'right' : 'left'} table`, undefined);
        const common = commonType(l.type, r.type);
        if (!common) throw new BindError('sql_type', `JOIN/USING types ${typeLabel(l.type)} and ${typeLabel(r.type)} cannot be matched`, undefined);
        const rr = { ...r, index: r.index + width };
        conditions.push(this.#call('=', [column(l.index, l.type), column(rr.index, rr.type)], undefined, 'JOIN/USING'));
        merged.push({ name, l, r: rr, type: common });
      }
      const on = conditions.length === 0 ? literal(true, BOOLEAN) : conditions.length === 1 ? conditions[0]! : { op: 'call' as const, fn: 'and', args: conditions, type: BOOLEAN };
      const joinRel: Rel = { kind: 'join', join, left: left.rel, right: right.rel, on, columns: joinedColumns };
      const mergedExprs = merged.map((m) => {
        const l = coerce(column(m.l.index, m.l.type), m.type, 'USING');
        const r = coerce(column(m.r.index, m.r.type), m.type, 'USING');
        if (join === 'full') return this.#call('coalesce', [l, r], undefined, 'USING');
        return join === 'right' ? r : l;
      });
      const exprs = [...mergedExprs, ...joinedColumns.map((c, i) => column(i, c.type))];
      const rel: Rel = { kind: 'project', input: joinRel, exprs, columns: [...merged.map((m, i) => ({ name: m.name, type: mergedExprs[i]!.type })), ...joinedColumns] };
      const usingNames = new Set(using);
      const scope: ScopeColumn[] = [
        ...merged.map((m, i) => ({ table: undefined, name: m.name, index: i, type: mergedExprs[i]!.type })),
        ...columns.map((c) => ({ ...c, index: c.index + merged.length, qualifiedOnly: c.qualifiedOnly || usingNames.has(c.name) })),
      ];
      return { rel, columns: scope };
    }
    let on: Expr = literal(true, BOOLEAN);
    if (body.quals) {
      const scope: Scope = { columns, outer, ctes };
      const context: Context = { scope, clause: 'JOIN/ON' };
      on = this.#condition(body.quals, context);
    }
    return { rel: { kind: 'join', join, left: left.rel, right: right.rel, on, columns: joinedColumns }, columns };
  }

  // -------------------------------------------------------------------------------------------
  // Select lists and ORDER BY

  #targets(targets: Any[], context: Context): Array<{ expr: Expr; name: string; location: number | undefined }> {
    const out: Array<{ expr: Expr; name: string; location: number | undefined }> = [];
    for (const target of targets) {
      const t = target.ResTarget;
      const [kind, body] = nodeType(t.val);
      if (kind === 'ColumnRef' && body.fields.some((f: Any) => f.A_Star)) {
        const names = stringsOf(body.fields);
        const qualifier = names.length > 1 ? names[names.length - 2] : undefined;
        const columns = context.scope.columns.filter((c) => (qualifier === undefined ? !c.qualifiedOnly : c.table === qualifier));
        if (qualifier !== undefined && columns.length === 0) {
          throw new BindError('sql_relation', `missing FROM-clause entry for table "${qualifier}"`, body.location, didYouMean(qualifier, new Set(context.scope.columns.map((c) => c.table ?? ''))));
        }
        if (qualifier === undefined && context.scope.columns.length === 0) throw new BindError('sql_select', 'SELECT * with no tables specified is not valid', body.location);
        for (const c of columns) out.push({ expr: this.#columnExpr(c, context, body.location), name: c.name, location: body.location });
        continue;
      }
      const expr = this.#expr(t.val, context);
      out.push({ expr, name: t.name ?? columnName(t.val), location: location(t.val) ?? t.location });
    }
    return out;
  }

  #orderItems(sortClause: Any[], targets: Array<{ expr: Expr; name: string }>, context: Context): Array<{ expr: Expr | number; descending: boolean; nullsFirst: boolean }> {
    return sortClause.map((item) => {
      const sort = item.SortBy;
      const key = orderKey(literal(null, UNKNOWN), sort);
      const [kind, body] = nodeType(sort.node);
      if (sort.useOp) throw new BindError('sql_unsupported', 'ORDER BY … USING is not supported', location(sort.node));
      if (kind === 'A_Const' && body.ival !== undefined) {
        const position = Number(body.ival.ival ?? 0);
        if (position < 1 || position > targets.length) throw new BindError('sql_order', `ORDER BY position ${position} is not in select list`, location(sort.node), `the select list has ${targets.length} column${targets.length === 1 ? '' : 's'}`);
        return { expr: position - 1, descending: key.descending, nullsFirst: key.nullsFirst };
      }
      if (kind === 'ColumnRef' && body.fields.length === 1) {
        const name = stringsOf(body.fields)[0]!;
        const matches = targets.map((t, i) => (t.name === name ? i : -1)).filter((i) => i >= 0);
        if (matches.length > 1 && !matches.every((i) => exprEquals(targets[i]!.expr, targets[matches[0]!]!.expr))) throw new BindError('sql_order', `ORDER BY "${name}" is ambiguous`, location(sort.node));
        if (matches.length >= 1) return { expr: matches[0]!, descending: key.descending, nullsFirst: key.nullsFirst };
      }
      return { expr: this.#expr(sort.node, { ...context, clause: 'ORDER BY' }), descending: key.descending, nullsFirst: key.nullsFirst };
    });
  }

  // -------------------------------------------------------------------------------------------
  // Expressions

  #condition(node: Any, context: Context): Expr {
    const expr = this.#expr(node, context);
    if (expr.type.kind !== 'boolean' && expr.type.kind !== 'unknown') {
      throw new BindError('sql_type', `argument of ${context.clause} must be type boolean, not type ${typeLabel(expr.type)}`, location(node), 'compare it with something, e.g. x <> 0 or x IS NOT NULL');
    }
    return coerce(expr, BOOLEAN, context.clause, location(node));
  }

  #columnExpr(c: ScopeColumn, _context: Context, _location: number | undefined): Expr {
    return column(c.index, c.type);
  }

  #columnRef(body: Any, context: Context): Expr {
    const names = stringsOf(body.fields);
    const name = names.at(-1)!;
    const qualifier = names.length >= 2 ? names[names.length - 2] : undefined;
    if (names.length > 3) throw new BindError('sql_column', `improper qualified name (too many dotted names): ${names.join('.')}`, body.location);
    let scope: Scope | undefined = context.scope;
    let depth = 0;
    while (scope) {
      const found = findColumn(scope, qualifier, name, body.location);
      if (found) {
        if (depth === 0) return column(found.index, found.type);
        if (depth > 1) throw new BindError('sql_unsupported', `the reference to "${names.join('.')}" reaches ${depth} queries out; correlated references beyond the enclosing query are not supported yet`, body.location);
        const refs = context.scope.outer!.refs;
        let k = refs.indexOf(found.index);
        if (k < 0) {
          k = refs.length;
          refs.push(found.index);
        }
        return { op: 'outer', index: k, type: found.type };
      }
      scope = scope.outer?.scope;
      depth++;
    }
    if (qualifier !== undefined && !context.scope.columns.some((c) => c.table === qualifier)) {
      throw new BindError('sql_relation', `missing FROM-clause entry for table "${qualifier}"`, body.location, didYouMean(qualifier, new Set(context.scope.columns.map((c) => c.table ?? '').filter(Boolean))));
    }
    const candidates = context.scope.columns.filter((c) => qualifier === undefined || c.table === qualifier).map((c) => c.name);
    throw new BindError('sql_column', `column "${qualifier ? `${qualifier}.` : ''}${name}" does not exist`, body.location, didYouMean(name, candidates) ?? (candidates.length ? `the columns are: ${[...new Set(candidates)].join(', ')}` : undefined));
  }

  #expr(node: Any, context: Context): Expr {
    const [kind, body] = nodeType(node);
    switch (kind) {
      case 'A_Const':
        return constant(body);
      case 'ColumnRef':
        if (body.fields.some((f: Any) => f.A_Star)) throw new BindError('sql_select', '* is only allowed in a select list or count(*)', body.location);
        return this.#columnRef(body, context);
      case 'TypeCast':
        return this.#cast(body, context);
      case 'A_Expr':
        return this.#aExpr(body, context);
      case 'BoolExpr': {
        const args = (body.args as Any[]).map((arg) => this.#condition(arg, { ...context, clause: body.boolop === 'NOT_EXPR' ? 'NOT' : body.boolop === 'AND_EXPR' ? 'AND' : 'OR' }));
        const fn = body.boolop === 'AND_EXPR' ? 'and' : body.boolop === 'OR_EXPR' ? 'or' : 'not';
        return { op: 'call', fn, args, type: BOOLEAN };
      }
      case 'NullTest': {
        const arg = this.#expr(body.arg, context);
        return { op: 'call', fn: body.nulltesttype === 'IS_NULL' ? 'is_null' : 'is_not_null', args: [arg], type: BOOLEAN };
      }
      case 'BooleanTest': {
        const arg = this.#condition(body.arg, { ...context, clause: 'IS' });
        return { op: 'call', fn: String(body.booltesttype).toLowerCase(), args: [arg], type: BOOLEAN };
      }
      case 'CaseExpr':
        return this.#case(body, context);
      case 'CoalesceExpr':
        return this.#call('coalesce', (body.args as Any[]).map((arg) => this.#expr(arg, context)), body.location, 'COALESCE');
      case 'MinMaxExpr':
        return this.#call(body.op === 'IS_GREATEST' ? 'greatest' : 'least', (body.args as Any[]).map((arg) => this.#expr(arg, context)), body.location, body.op === 'IS_GREATEST' ? 'GREATEST' : 'LEAST');
      case 'FuncCall':
        return this.#function(body, context);
      case 'SubLink':
        return this.#subLink(body, context);
      case 'ParamRef':
        throw new BindError('sql_unsupported', `parameters ($${body.number}) are not supported here`, body.location, 'write the value into the statement');
      case 'SQLValueFunction':
        throw new BindError('sql_unsupported', `${String(body.op).replace(/^SVFOP_/, '')} is not allowed in a view: its result would depend on when a row is processed, not only on the data`, body.location, 'add the time to the events themselves (a timestamp column)');
      case 'A_ArrayExpr':
        throw new BindError('sql_unsupported', 'ARRAY[…] values are not supported yet', body.location, 'use a json or jsonb value instead');
      case 'RowExpr':
        throw new BindError('sql_unsupported', 'row values (a, b) are not supported yet', body.location, 'compare the columns one by one');
      case 'CollateClause':
        throw new BindError('sql_unsupported', 'COLLATE is not supported yet: text compares by code point', body.location);
      default:
        throw new BindError('sql_unsupported', `${kind} expressions are not supported yet`, location(node));
    }
  }

  #cast(body: Any, context: Context): Expr {
    const target = typeFromNode(body.typeName);
    const arg = this.#expr(body.arg, context);
    if (arg.type.kind === 'unknown' && arg.op === 'literal') {
      if (arg.value === null) return literal(null, target);
      return literal(castConstant(arg.value, arg.type, target, body.location), target);
    }
    if (arg.type.kind === target.kind && target.modifiers.length === 0) return arg.type.modifiers.length === 0 ? arg : { op: 'cast', arg, type: target };
    try {
      castFunction(arg.type, target);
    } catch (error) {
      throw new BindError('sql_type', (error as Error).message, body.location);
    }
    if (arg.op === 'literal') return literal(arg.value === null ? null : castConstant(arg.value, arg.type, target, body.location), target);
    return { op: 'cast', arg, type: target };
  }

  #aExpr(body: Any, context: Context): Expr {
    const name = stringsOf(body.name).at(-1) ?? '';
    const loc = body.location as number | undefined;
    switch (body.kind) {
      case 'AEXPR_OP': {
        if (!body.lexpr) {
          const arg = this.#expr(body.rexpr, context);
          if (name === '-' && arg.op === 'literal' && typeof arg.value === 'number') return literal(arg.value === 0 ? 0 : -arg.value, arg.type);
          return this.#call(name === '!' ? 'not' : name, [arg], loc, name);
        }
        const left = this.#expr(body.lexpr, context);
        const right = this.#expr(body.rexpr, context);
        const fn = OPERATOR_FUNCTIONS[name] ?? name;
        return this.#call(fn, [left, right], loc, name);
      }
      case 'AEXPR_DISTINCT':
      case 'AEXPR_NOT_DISTINCT':
        return this.#call(body.kind === 'AEXPR_DISTINCT' ? 'is_distinct' : 'is_not_distinct', [this.#expr(body.lexpr, context), this.#expr(body.rexpr, context)], loc, 'IS DISTINCT FROM');
      case 'AEXPR_NULLIF':
        return this.#call('nullif', [this.#expr(body.lexpr, context), this.#expr(body.rexpr, context)], loc, 'NULLIF');
      case 'AEXPR_IN': {
        const x = this.#expr(body.lexpr, context);
        const items = (body.rexpr.List?.items ?? body.rexpr) as Any[];
        const list = items.map((item) => this.#expr(item, context));
        let common: Type = x.type;
        for (const item of list) {
          const next = commonType(common, item.type);
          if (!next) throw new BindError('sql_type', `IN types ${typeLabel(common)} and ${typeLabel(item.type)} cannot be matched`, location(items[list.indexOf(item)]) ?? loc, 'cast the values to one type');
          common = next;
        }
        if (common.kind === 'unknown') common = TEXT;
        const inExpr: Expr = { op: 'call', fn: 'in', args: [coerce(x, common, 'IN', loc), ...list.map((item) => coerce(item, common, 'IN', loc))], type: BOOLEAN };
        return name === '<>' ? { op: 'call', fn: 'not', args: [inExpr], type: BOOLEAN } : inExpr;
      }
      case 'AEXPR_LIKE':
      case 'AEXPR_ILIKE': {
        if (body.rexpr.FuncCall) throw new BindError('sql_unsupported', 'LIKE … ESCAPE is not supported yet (the escape character is \\)', loc);
        const like = this.#call(body.kind === 'AEXPR_LIKE' ? 'like' : 'ilike', [this.#expr(body.lexpr, context), this.#expr(body.rexpr, context)], loc, body.kind === 'AEXPR_LIKE' ? 'LIKE' : 'ILIKE');
        return name.startsWith('!') ? { op: 'call', fn: 'not', args: [like], type: BOOLEAN } : like;
      }
      case 'AEXPR_BETWEEN':
      case 'AEXPR_NOT_BETWEEN':
      case 'AEXPR_BETWEEN_SYM':
      case 'AEXPR_NOT_BETWEEN_SYM': {
        const x = this.#expr(body.lexpr, context);
        const [lowNode, highNode] = body.rexpr.List.items as Any[];
        const low = this.#expr(lowNode, context);
        const high = this.#expr(highNode, context);
        const inRange = (a: Expr, b: Expr): Expr => ({ op: 'call', fn: 'and', args: [this.#call('>=', [x, a], loc, 'BETWEEN'), this.#call('<=', [x, b], loc, 'BETWEEN')], type: BOOLEAN });
        let between = inRange(low, high);
        if (body.kind.endsWith('_SYM')) between = { op: 'call', fn: 'or', args: [between, inRange(high, low)], type: BOOLEAN };
        return body.kind.includes('NOT') ? { op: 'call', fn: 'not', args: [between], type: BOOLEAN } : between;
      }
      case 'AEXPR_OP_ANY':
      case 'AEXPR_OP_ALL':
        throw new BindError('sql_unsupported', `${name} ${body.kind === 'AEXPR_OP_ANY' ? 'ANY' : 'ALL'} (array) is not supported yet`, loc, 'use IN (…) with a list of values');
      case 'AEXPR_SIMILAR':
        throw new BindError('sql_unsupported', 'SIMILAR TO is not supported yet', loc, 'use LIKE');
      default:
        throw new BindError('sql_unsupported', `${String(body.kind)} is not supported`, loc);
    }
  }

  #case(body: Any, context: Context): Expr {
    const subject = body.arg ? this.#expr(body.arg, context) : undefined;
    const whens = (body.args as Any[]).map((item) => {
      const w = item.CaseWhen;
      const when = subject ? this.#call('=', [subject, this.#expr(w.expr, context)], w.location, 'CASE') : this.#condition(w.expr, { ...context, clause: 'CASE/WHEN' });
      return { when, then: this.#expr(w.result, context), location: w.location as number | undefined };
    });
    const otherwise = body.defresult ? this.#expr(body.defresult, context) : literal(null, UNKNOWN);
    let common: Type = UNKNOWN;
    for (const result of [...whens.map((w) => w.then), otherwise]) {
      const next = commonType(common, result.type);
      if (!next) throw new BindError('sql_type', `CASE types ${typeLabel(common)} and ${typeLabel(result.type)} cannot be matched`, body.location, 'cast the results to one type');
      common = next;
    }
    if (common.kind === 'unknown') common = TEXT;
    return {
      op: 'case',
      whens: whens.map((w) => ({ when: coerce(w.when, BOOLEAN, 'CASE'), then: coerce(w.then, common, 'CASE', w.location) })),
      otherwise: coerce(otherwise, common, 'CASE'),
      type: common,
    };
  }

  /** A resolved call of a function or operator, with its arguments cast as resolved. */
  #call(fn: string, args: Expr[], loc: number | undefined, what: string): Expr {
    let resolved;
    try {
      resolved = resolveFunction(fn, args.map((a) => a.type), what);
    } catch (error) {
      if (error instanceof DefiniteError) throw new BindError(error.code, error.message, loc, error.hint);
      throw error;
    }
    const cast = args.map((arg, i) => coerce(arg, resolved.args[i] ?? arg.type, what, loc));
    // A strict function of a NULL constant is NULL, without evaluating the other arguments (as
    // PostgreSQL's constant folding does: `x / 0 = NULL` is NULL, not an error).
    if (resolved.strict && cast.some((arg) => arg.op === 'literal' && arg.value === null)) return literal(null, resolved.type);
    return { op: 'call', fn, args: cast, type: resolved.type };
  }

  #function(body: Any, context: Context): Expr {
    const names = stringsOf(body.funcname);
    let name = names.at(-1)!.toLowerCase();
    if (names.length > 1 && names[0] !== 'pg_catalog') throw new BindError('sql_function', `function ${names.join('.')} does not exist`, body.location);
    if (body.over) throw new BindError('sql_unsupported', 'window functions (OVER …) are not supported yet', body.location, 'use GROUP BY, or ORDER BY … LIMIT for top-k');
    if (AGGREGATES.has(name)) return this.#aggregate(name, body, context);
    if (body.agg_distinct || body.agg_star || body.agg_order || body.agg_filter) throw new BindError('sql_function', `${name}() is not an aggregate function`, body.location);
    let argNodes: Any[] = body.args ?? [];
    if (name === 'position') {
      name = 'strpos';
      argNodes = [argNodes[0]!, argNodes[1]!];
    }
    if (name === 'extract' || name === 'date_part') {
      const [field, value] = argNodes;
      const fieldExpr = this.#expr(field!, context);
      return this.#call('date_part', [fieldExpr, this.#expr(value!, context)], body.location, name);
    }
    const args = argNodes.map((arg) => this.#expr(arg, context));
    if (!isKnownFunction(name)) {
      throw new BindError('sql_function', `function ${name}(${args.map((a) => typeLabel(a.type)).join(', ')}) does not exist`, body.location, didYouMean(name, [...knownFunctions(), ...AGGREGATES]) ?? 'see the list of supported functions in docs/sql.md');
    }
    return this.#call(name, args, body.location, `${name}()`);
  }

  #aggregate(name: string, body: Any, context: Context): Expr {
    if (!context.aggregates) {
      throw new BindError('sql_group', `aggregate functions are not allowed in ${context.clause}`, body.location, context.clause === 'WHERE' ? 'filter groups with HAVING, or aggregate in a subquery' : undefined);
    }
    if (body.agg_within_group) throw new BindError('sql_unsupported', 'WITHIN GROUP is not supported yet', body.location);
    const inner: Context = { scope: context.scope, clause: 'aggregate function calls', pending: context.pending };
    const argNodes: Any[] = body.args ?? [];
    if (argNodes.some((a) => containsAggregate(a))) throw new BindError('sql_group', 'aggregate function calls cannot be nested', body.location);
    let args = argNodes.map((arg) => this.#expr(arg, inner));
    const distinct = body.agg_distinct === true;
    let fn = name === 'every' ? 'bool_and' : name;
    let resultType: Type;
    if (body.agg_star) {
      if (name !== 'count') throw new BindError('sql_function', `${name}(*) is not valid`, body.location, `use ${name}(column)`);
      fn = 'count_star';
      args = [];
      resultType = BIGINT;
    } else {
      const arity = name === 'string_agg' ? 2 : 1;
      if (args.length !== arity) throw new BindError('sql_function', `${name}() takes ${arity} argument${arity === 1 ? '' : 's'}`, body.location);
      const t = args[0]!.type.kind === 'unknown' ? (name === 'sum' || name === 'avg' ? NUMERIC : TEXT) : args[0]!.type;
      args[0] = coerce(args[0]!, t, name);
      switch (name) {
        case 'count':
          resultType = BIGINT;
          break;
        case 'sum':
          if (!isNumeric(t)) throw new BindError('sql_function', `function sum(${typeLabel(t)}) does not exist`, body.location, 'sum() needs numbers');
          resultType = t.kind === 'smallint' || t.kind === 'integer' ? BIGINT : t.kind === 'bigint' ? NUMERIC : makeType(t.kind);
          break;
        case 'avg':
          if (!isNumeric(t)) throw new BindError('sql_function', `function avg(${typeLabel(t)}) does not exist`, body.location, 'avg() needs numbers');
          resultType = t.kind === 'real' || t.kind === 'double' ? makeType('double') : NUMERIC;
          break;
        case 'min':
        case 'max':
          if (t.kind === 'json' || t.kind === 'boolean') throw new BindError('sql_function', `function ${name}(${typeLabel(t)}) does not exist`, body.location);
          resultType = isString(t) ? TEXT : makeType(t.kind, t.modifiers);
          break;
        case 'bool_and':
        case 'bool_or':
        case 'every':
          if (t.kind !== 'boolean') throw new BindError('sql_function', `function ${name}(${typeLabel(t)}) does not exist`, body.location, `${name}() needs booleans`);
          resultType = BOOLEAN;
          break;
        case 'string_agg':
          if (!isString(t)) throw new BindError('sql_function', `function string_agg(${typeLabel(t)}, …) does not exist`, body.location, 'cast the value to text');
          args[1] = coerce(args[1]!, TEXT, name);
          if (constantValue(args[1]!) === undefined) throw new BindError('sql_unsupported', 'string_agg needs a constant separator', location(argNodes[1]));
          resultType = TEXT;
          break;
        default:
          resultType = makeType('jsonb');
          throw new BindError('sql_unsupported', 'array_agg is not supported yet (arrays are not a column type yet)', body.location, 'use string_agg, or jsonb');
      }
    }
    if (body.agg_filter) {
      // agg(x) FILTER (WHERE c) is agg(CASE WHEN c THEN x END): aggregates skip NULLs.
      const condition = this.#condition(body.agg_filter, { ...inner, clause: 'FILTER' });
      const guard = (e: Expr): Expr => ({ op: 'case', whens: [{ when: condition, then: e }], otherwise: literal(null, e.type), type: e.type });
      if (fn === 'count_star') {
        fn = 'count';
        args = [guard(literal(1, INTEGER))];
      } else args[0] = guard(args[0]!);
    }
    if (distinct && fn !== 'count' && fn !== 'sum' && fn !== 'avg' && fn !== 'min' && fn !== 'max' && fn !== 'string_agg') {
      throw new BindError('sql_unsupported', `${name}(DISTINCT …) is not supported yet`, body.location);
    }
    if (body.agg_order) {
      if (fn !== 'string_agg') throw new BindError('sql_unsupported', `ORDER BY inside ${name}() is not supported`, body.location);
      throw new BindError('sql_unsupported', 'ORDER BY inside string_agg() is not supported yet: values are joined in value order', body.location);
    }
    const call: AggregateCall = { fn, args, distinct: distinct && fn !== 'min' && fn !== 'max', type: resultType };
    const existing = context.aggregates.findIndex((a) => a.fn === call.fn && a.distinct === call.distinct && a.args.length === call.args.length && a.args.every((x, i) => exprEquals(x, call.args[i]!)));
    const index = existing >= 0 ? existing : context.aggregates.push(call) - 1;
    return column(AGG_BASE + index, resultType);
  }

  #subLink(body: Any, context: Context): Expr {
    if (!context.pending) throw new BindError('sql_unsupported', `subqueries are not supported in ${context.clause}`, body.location, 'move the condition to WHERE');
    const outer: OuterContext = { scope: context.scope, refs: [] };
    const query = this.query(body.subselect, outer, context.scope.ctes);
    const index = context.pending.length;
    switch (body.subLinkType) {
      case 'EXPR_SUBLINK': {
        if (query.visible !== 1) throw new BindError('sql_subquery', 'subquery must return only one column', body.location);
        context.pending.push({ kind: 'scalar', query, refs: outer.refs });
        return column(SUB_BASE + index, query.rel.columns[0]!.type);
      }
      case 'EXISTS_SUBLINK':
        context.pending.push({ kind: 'exists', query, refs: outer.refs });
        return column(SUB_BASE + index, BOOLEAN);
      case 'ANY_SUBLINK':
      case 'ALL_SUBLINK': {
        const op = stringsOf(body.operName).at(-1) ?? '=';
        const isIn = (body.subLinkType === 'ANY_SUBLINK' && op === '=') || (body.subLinkType === 'ALL_SUBLINK' && op === '<>');
        const quantifier = body.subLinkType === 'ANY_SUBLINK' ? 'ANY' : 'ALL';
        if (!isIn && !['=', '<>', '!=', '<', '<=', '>', '>='].includes(op)) throw new BindError('sql_unsupported', `${op} ${quantifier} (subquery) is not supported`, body.location, 'compare with =, <>, <, <=, > or >=');
        if (query.visible !== 1) throw new BindError('sql_subquery', 'subquery has too many columns', body.location, `${isIn ? 'IN' : quantifier} (subquery) compares one column`);
        const test = this.#expr(body.testexpr, context);
        const common = commonType(test.type, query.rel.columns[0]!.type);
        if (!common) throw new BindError('sql_type', `operator does not exist: ${typeLabel(test.type)} = ${typeLabel(query.rel.columns[0]!.type)}`, body.location, 'cast one side');
        const target = common.kind === 'unknown' ? TEXT : common;
        const sub = castColumns(visibleRel(query), [target]);
        if (!isIn) {
          // x op ANY / ALL (subquery): decided from the subquery's row and non-NULL counts and its min and max.
          const position = context.pending.push({ kind: 'quantified', query: { rel: sub, visible: 1, orderBy: [] }, refs: outer.refs, test: coerce(test, target, quantifier), quantifier: `${op === '!=' ? '<>' : op} ${quantifier}` }) - 1;
          return column(SUB_BASE + position, BOOLEAN);
        }
        // The test may hold subqueries of its own, pushed while binding it: this one goes after them.
        const position = context.pending.push({ kind: 'in', query: { rel: sub, visible: 1, orderBy: [] }, refs: outer.refs, test: coerce(test, target, 'IN') }) - 1;
        const result = column(SUB_BASE + position, BOOLEAN);
        return body.subLinkType === 'ALL_SUBLINK' ? { op: 'call', fn: 'not', args: [result], type: BOOLEAN } : result;
      }
      default:
        throw new BindError('sql_unsupported', `${String(body.subLinkType).replace(/_SUBLINK$/, '')} subqueries are not supported yet`, body.location);
    }
  }

  /**
   * A WHERE conjunct `EXISTS (…)`, `NOT EXISTS (…)` or `x IN (…)` as a semi- or anti-join of
   * `rel` (undefined for any other conjunct). WHERE keeps a row only when the conjunct is TRUE,
   * so IN needs no NULL bookkeeping here: a match on a non-NULL value is TRUE, anything else is not.
   */
  #semiJoin(node: Any, rel: Rel, scope: Scope): Rel | undefined {
    let negated = false;
    let link = node.SubLink as Any | undefined;
    if (!link && node.BoolExpr?.boolop === 'NOT_EXPR' && node.BoolExpr.args[0]?.SubLink?.subLinkType === 'EXISTS_SUBLINK') {
      negated = true;
      link = node.BoolExpr.args[0].SubLink;
    }
    if (!link) return undefined;
    const isIn = link.subLinkType === 'ANY_SUBLINK' && (stringsOf(link.operName).at(-1) ?? '=') === '=';
    if (link.subLinkType !== 'EXISTS_SUBLINK' && !isIn) return undefined;
    // A tested value with subqueries of its own takes the general path (which joins those in first).
    if (isIn && JSON.stringify(link.testexpr).includes('"SubLink"')) return undefined;
    const outer: OuterContext = { scope, refs: [] };
    const query = this.query(link.subselect, outer, scope.ctes);
    let sub = visibleRel(query);
    const keys = outer.refs.map((index) => column(index, findByIndex(scope, index).type));
    // Correlated only through equalities `inner = outer` in its WHERE: join on them directly,
    // without a domain (the semi-join itself keeps just the matching keys).
    const direct = outer.refs.length > 0 ? equalityCorrelation(sub, outer.refs.length, isIn) : undefined;
    if (direct) {
      sub = direct.rel;
      keys.splice(0, keys.length, ...direct.outerKeys.map((e) => mapOuter(e, (i, t) => column(outer.refs[i]!, t))));
      outer.refs.length = 0;
    }
    const directKeys = direct?.outerKeys.length ?? 0;
    if (isIn) {
      if (query.visible !== 1) throw new BindError('sql_subquery', 'subquery has too many columns', link.location, 'IN (subquery) compares one column');
      const test = this.#expr(link.testexpr, { scope, clause: 'IN' });
      const value = directKeys; // the subquery's value column (after any direct keys)
      const common = commonType(test.type, sub.columns[value]!.type);
      if (!common) throw new BindError('sql_type', `operator does not exist: ${typeLabel(test.type)} = ${typeLabel(sub.columns[value]!.type)}`, link.location, 'cast one side');
      const target = common.kind === 'unknown' ? TEXT : common;
      sub = castColumns(sub, sub.columns.map((c, i) => (i === value ? target : c.type)));
      // A NULL value matches nothing: drop NULLs from the subquery, so the NULL-safe join cannot match them.
      sub = { kind: 'filter', input: sub, predicate: { op: 'call', fn: 'is_not_null', args: [column(value, target)], type: BOOLEAN }, columns: sub.columns };
      keys.push(coerce(test, target, 'IN'));
    }
    const d = outer.refs.length;
    const width = rel.columns.length;
    // Key columns of rel (computed ones appended).
    const keyColumns: number[] = [];
    const extra: Expr[] = [];
    for (const key of keys) {
      if (key.op === 'column') keyColumns.push(key.index);
      else {
        keyColumns.push(width + extra.length);
        extra.push(key);
      }
    }
    let left = rel;
    if (extra.length > 0) left = { kind: 'project', input: rel, exprs: [...rel.columns.map((c, i) => column(i, c.type)), ...extra], columns: [...rel.columns, ...extra.map((e, i) => ({ name: `key${i + 1}`, type: e.type }))] };
    if (d > 0) sub = decorrelate(sub, { kind: 'distinct', input: projectColumns(left, keyColumns.slice(0, d)), columns: keyColumns.slice(0, d).map((i) => left.columns[i]!) });
    // The subquery's key columns: the domain's (or the direct keys), then (IN) its value.
    const k = d + directKeys;
    const rightKey = isIn ? [...Array.from({ length: k }, (_, i) => i), k] : Array.from({ length: k }, (_, i) => i);
    const right = projectColumns(sub, rightKey);
    const joined: Rel = { kind: 'keyJoin', join: negated ? 'anti' : 'semi', left, right, leftKey: keyColumns, rightKey: rightKey.map((_, i) => i), columns: left.columns };
    return extra.length > 0 ? projectFirst(joined, width) : joined;
  }

  /**
   * Joins the subqueries met while binding onto `rel` (each adds columns at the end) and returns
   * how to substitute their placeholders. `mapRef` maps a reference to the binding scope (an
   * input column) onto `rel` (identity, or the GROUP BY rewrite).
   */
  #attach(rel: Rel, pending: Pending[], mapRef: (expr: Expr) => Expr, scope: Scope): { rel: Rel; substitute: (expr: Expr) => Expr } {
    const results: Expr[] = [];
    for (const item of pending) {
      // A correlated aggregate `(SELECT agg(…) FROM x WHERE x.k = outer.k …)`: grouped by x.k and
      // joined on it; an outer row without a group gets the aggregate's value over no rows.
      const grouped = item.kind === 'scalar' && item.refs.length > 0 ? aggregateCorrelation(visibleRel(item.query), item.refs.length) : undefined;
      if (grouped) {
        const outerKeys = grouped.outerKeys.map((key) => mapOuter(key, (i, t) => mapRef(column(item.refs[i]!, t))));
        const width = rel.columns.length;
        const computed = outerKeys.filter((key) => key.op !== 'column');
        let keyIndex = width;
        const leftKey = outerKeys.map((key) => (key.op === 'column' ? key.index : keyIndex++));
        if (computed.length > 0) rel = { kind: 'project', input: rel, exprs: [...rel.columns.map((c, i) => column(i, c.type)), ...computed], columns: [...rel.columns, ...computed.map((e, i) => ({ name: `key${i + 1}`, type: e.type }))] };
        const base = rel.columns.length;
        const k = outerKeys.length;
        rel = { kind: 'keyJoin', join: 'left', left: rel, right: grouped.rel, leftKey, rightKey: Array.from({ length: k }, (_, i) => i), columns: [...rel.columns, ...grouped.rel.columns] };
        const valueType = grouped.rel.columns[k]!.type;
        results.push({ op: 'case', whens: [{ when: { op: 'call', fn: 'is_not_null', args: [column(base, grouped.rel.columns[0]!.type)], type: BOOLEAN }, then: column(base + k, valueType) }], otherwise: literal(grouped.empty, valueType), type: valueType });
        continue;
      }
      // The outer values the subquery depends on, as columns of rel.
      const refExprs = item.refs.map((index) => mapRef(column(index, findByIndex(scope, index).type)));
      // The tested value may use subqueries attached before this one.
      const test = item.test ? mapColumns(mapRef(item.test), (index, t) => (index >= SUB_BASE ? results[index - SUB_BASE]! : column(index, t))) : undefined;
      const keyExprs = test ? [...refExprs, test] : refExprs;
      const keyColumns: number[] = [];
      const extra: Expr[] = [];
      for (const expr of keyExprs) {
        if (expr.op === 'column' && expr.index < rel.columns.length) keyColumns.push(expr.index);
        else {
          keyColumns.push(rel.columns.length + extra.length);
          extra.push(expr);
        }
      }
      if (extra.length > 0) {
        const base = rel.columns.map((c, i) => column(i, c.type));
        rel = { kind: 'project', input: rel, exprs: [...base, ...extra], columns: [...rel.columns, ...extra.map((e, i) => ({ name: `key${i + 1}`, type: e.type }))] };
      }
      const d = refExprs.length;
      let sub = visibleRel(item.query);
      if (d > 0) {
        const domain: Rel = { kind: 'distinct', input: projectColumns(rel, keyColumns.slice(0, d)), columns: keyColumns.slice(0, d).map((i) => rel.columns[i]!) };
        sub = decorrelate(sub, domain);
      }
      const dColumns = Array.from({ length: d }, (_, i) => i);
      const width = rel.columns.length;
      const dCol = (i: number) => column(i, sub.columns[i]!.type);
      let right: Rel;
      let rightKey: number[];
      let value: (base: number) => Expr;
      if (item.kind === 'scalar') {
        const v = column(d, sub.columns[d]!.type);
        right = aggregateRel(sub, dColumns.map(dCol), [{ fn: 'count_star', args: [], distinct: false, type: BIGINT }, { fn: 'min', args: [v], distinct: false, type: v.type }]);
        rightKey = dColumns;
        value = (base) => ({ op: 'call', fn: '$scalar_subquery', args: [column(base + d, BIGINT), column(base + d + 1, v.type)], type: v.type });
      } else if (item.kind === 'quantified') {
        const v = column(d, sub.columns[d]!.type);
        right = aggregateRel(sub, dColumns.map(dCol), [
          { fn: 'count_star', args: [], distinct: false, type: BIGINT },
          { fn: 'count', args: [v], distinct: false, type: BIGINT },
          { fn: 'min', args: [v], distinct: false, type: v.type },
          { fn: 'max', args: [v], distinct: false, type: v.type },
        ]);
        rightKey = dColumns;
        const testColumn = keyColumns[d]!;
        const quantifier = item.quantifier!;
        value = (base) => ({ op: 'call', fn: '$quantified', args: [literal(quantifier, TEXT), column(testColumn, v.type), ...[0, 1].map((i) => column(base + d + i, BIGINT)), column(base + d + 2, v.type), column(base + d + 3, v.type)], type: BOOLEAN });
      } else if (item.kind === 'exists') {
        right = aggregateRel(sub, dColumns.map(dCol), [{ fn: 'count_star', args: [], distinct: false, type: BIGINT }]);
        rightKey = dColumns;
        // count(*) > 0: a missing domain value has no row (NULL), and a global aggregate's one
        // row over nothing counts 0 — both are "no rows".
        value = (base) => ({ op: 'call', fn: '>', args: [{ op: 'call', fn: 'coalesce', args: [column(base + d, BIGINT), literal(0, BIGINT)], type: BIGINT }, literal(0, BIGINT)], type: BOOLEAN });
      } else {
        const v = column(d, sub.columns[d]!.type);
        // Matches per (domain, value), and row / non-NULL counts per domain value.
        const matches = aggregateRel(sub, [...dColumns.map(dCol), v], [{ fn: 'count_star', args: [], distinct: false, type: BIGINT }]);
        const counts = aggregateRel(sub, dColumns.map(dCol), [
          { fn: 'count_star', args: [], distinct: false, type: BIGINT },
          { fn: 'count', args: [v], distinct: false, type: BIGINT },
        ]);
        const withMatches: Rel = { kind: 'keyJoin', join: 'left', left: rel, right: matches, leftKey: keyColumns, rightKey: [...dColumns, d], columns: [...rel.columns, ...matches.columns] };
        const countsBase = withMatches.columns.length;
        rel = { kind: 'keyJoin', join: 'left', left: withMatches, right: counts, leftKey: keyColumns.slice(0, d), rightKey: dColumns, columns: [...withMatches.columns, ...counts.columns] };
        const testColumn = keyColumns[d]!;
        results.push({ op: 'call', fn: '$in_subquery', args: [column(testColumn, v.type), column(width + d + 1, BIGINT), column(countsBase + d, BIGINT), column(countsBase + d + 1, BIGINT)], type: BOOLEAN });
        continue;
      }
      rel = { kind: 'keyJoin', join: 'left', left: rel, right, leftKey: keyColumns.slice(0, d), rightKey, columns: [...rel.columns, ...right.columns] };
      results.push(value(width));
    }
    const substitute = (expr: Expr): Expr => (results.length === 0 ? expr : mapColumns(expr, (index, t) => (index >= SUB_BASE ? results[index - SUB_BASE]! : column(index, t))));
    return { rel, substitute };
  }
}

// ---------------------------------------------------------------------------------------------
// Decorrelation

function exprHas(e: Expr): boolean {
  let found = false;
  mapOuter(e, (i, t) => {
    found = true;
    return { op: 'outer', index: i, type: t };
  });
  return found;
}

function hasOuter(rel: Rel): boolean {
  switch (rel.kind) {
    case 'scan':
      return false;
    case 'values':
      return rel.rows.some((row) => row.some(exprHas));
    case 'filter':
      return exprHas(rel.predicate) || hasOuter(rel.input);
    case 'project':
      return rel.exprs.some(exprHas) || hasOuter(rel.input);
    case 'join':
      return exprHas(rel.on) || hasOuter(rel.left) || hasOuter(rel.right);
    case 'keyJoin':
    case 'setop':
      return hasOuter(rel.left) || hasOuter(rel.right);
    case 'aggregate':
      return rel.groupBy.some(exprHas) || rel.aggregates.some((a) => a.args.some(exprHas)) || hasOuter(rel.input);
    case 'distinct':
      return hasOuter(rel.input);
    case 'topK':
      return rel.orderBy.some((k) => exprHas(k.expr)) || hasOuter(rel.input);
  }
}

/**
 * `rel` with the domain's columns in front, its outer references replaced by them: the subquery
 * computed for every domain value at once.
 */
export function decorrelate(rel: Rel, domain: Rel): Rel {
  const d = domain.columns.length;
  const fix = (e: Expr, shift: number) => mapOuter(shiftColumns(e, shift), (i, t) => column(i, t));
  const dColumns = domain.columns.map((c, i) => column(i, c.type));
  if (!hasOuter(rel)) return { kind: 'join', join: 'inner', left: domain, right: rel, on: literal(true, BOOLEAN), columns: [...domain.columns, ...rel.columns] };
  switch (rel.kind) {
    case 'values':
    case 'scan':
      return { kind: 'project', input: { kind: 'join', join: 'inner', left: domain, right: { kind: 'values', rows: [[]], columns: [] }, on: literal(true, BOOLEAN), columns: domain.columns }, exprs: [...dColumns, ...(rel.kind === 'values' ? rel.rows[0]!.map((e) => fix(e, d)) : [])], columns: [...domain.columns, ...rel.columns] };
    case 'filter': {
      const input = decorrelate(rel.input, domain);
      return { kind: 'filter', input, predicate: fix(rel.predicate, d), columns: input.columns };
    }
    case 'project': {
      const input = decorrelate(rel.input, domain);
      return { kind: 'project', input, exprs: [...dColumns, ...rel.exprs.map((e) => fix(e, d))], columns: [...domain.columns, ...rel.columns] };
    }
    case 'join': {
      if (hasOuter(rel.right) || (rel.join !== 'inner' && rel.join !== 'left' && exprHas(rel.on))) {
        throw new DefiniteError('sql_unsupported', 'this correlated subquery (outer references inside the right side of a join) is not supported yet', 'move the outer reference to the subquery\'s WHERE clause');
      }
      const left = decorrelate(rel.left, domain);
      return { kind: 'join', join: rel.join, left, right: rel.right, on: fix(rel.on, d), columns: [...left.columns, ...rel.right.columns] };
    }
    case 'keyJoin': {
      if (hasOuter(rel.right)) throw new DefiniteError('sql_unsupported', 'nested correlated subqueries are not supported yet', 'rewrite the inner subquery as a join');
      const left = decorrelate(rel.left, domain);
      return { ...rel, left, leftKey: rel.leftKey.map((k) => k + d), columns: [...left.columns, ...rel.right.columns] };
    }
    case 'aggregate': {
      const input = decorrelate(rel.input, domain);
      return {
        kind: 'aggregate',
        input,
        groupBy: [...dColumns, ...rel.groupBy.map((e) => fix(e, d))],
        aggregates: rel.aggregates.map((a) => ({ ...a, args: a.args.map((e) => fix(e, d)) })),
        domain: rel.groupBy.length === 0 ? domain : undefined,
        columns: [...domain.columns, ...rel.columns],
      };
    }
    case 'distinct': {
      const input = decorrelate(rel.input, domain);
      return { kind: 'distinct', input, columns: input.columns };
    }
    case 'topK': {
      const input = decorrelate(rel.input, domain);
      return { ...rel, input, orderBy: rel.orderBy.map((k) => ({ ...k, expr: fix(k.expr, d) })), groupBy: [...dColumns.map((_, i) => i), ...rel.groupBy.map((g) => g + d)], columns: input.columns };
    }
    case 'setop': {
      const left = decorrelate(rel.left, domain);
      const right = decorrelate(rel.right, domain);
      return { ...rel, left, right, columns: left.columns };
    }
  }
}

/**
 * A subquery `SELECT … FROM x WHERE inner₁ = outer₁ AND … AND rest` whose outer references appear
 * only in such equalities: the subquery without them, as (inner keys…, [IN: its value]) with NULL
 * keys removed (`inner = outer` is never true for a NULL), and the outer side of each equality.
 */
function equalityCorrelation(rel: Rel, refs: number, withValue: boolean): { rel: Rel; outerKeys: Expr[] } | undefined {
  if (rel.kind !== 'project' || rel.input.kind !== 'filter') return undefined;
  const { input: filterRel } = rel;
  if (hasOuter(filterRel.input) || (withValue && exprHas(rel.exprs[0]!))) return undefined;
  const innerKeys: Expr[] = [];
  const outerKeys: Expr[] = [];
  const rest: Expr[] = [];
  const conjuncts = (e: Expr): Expr[] => (e.op === 'call' && e.fn === 'and' ? e.args.flatMap(conjuncts) : [e]);
  for (const conjunct of conjuncts(filterRel.predicate)) {
    if (!exprHas(conjunct)) {
      rest.push(conjunct);
      continue;
    }
    if (conjunct.op !== 'call' || conjunct.fn !== '=') return undefined;
    const [a, b] = conjunct.args as [Expr, Expr];
    const outerSide = exprHas(a) && !exprHas(b) && onlyOuter(a) ? a : exprHas(b) && !exprHas(a) && onlyOuter(b) ? b : undefined;
    if (!outerSide) return undefined;
    innerKeys.push(outerSide === a ? b : a);
    outerKeys.push(outerSide);
  }
  const seen = new Set<number>();
  for (const key of outerKeys) mapOuter(key, (i, t) => (seen.add(i), { op: 'outer', index: i, type: t }));
  if (seen.size !== refs) return undefined;
  const notNull = innerKeys.map((key): Expr => ({ op: 'call', fn: 'is_not_null', args: [key], type: BOOLEAN }));
  const predicate = [...rest, ...notNull];
  const filtered: Rel = { kind: 'filter', input: filterRel.input, predicate: predicate.length === 1 ? predicate[0]! : { op: 'call', fn: 'and', args: predicate, type: BOOLEAN }, columns: filterRel.input.columns };
  const exprs = [...innerKeys, ...(withValue ? [rel.exprs[0]!] : [])];
  return { rel: { kind: 'project', input: filtered, exprs, columns: exprs.map((e, i) => ({ name: withValue && i === exprs.length - 1 ? rel.columns[0]!.name : `key${i + 1}`, type: e.type })) }, outerKeys };
}

/**
 * A scalar subquery `SELECT f(agg(…), …) FROM x WHERE inner = outer AND … rest` (one aggregate
 * level, no GROUP BY, outer references only in those equalities): the subquery grouped by the
 * inner keys as (keys…, value), and the value it has over no rows (count 0, others NULL) — or
 * undefined when the subquery has another shape.
 */
function aggregateCorrelation(rel: Rel, refs: number): { rel: Rel; outerKeys: Expr[]; empty: Value } | undefined {
  if (rel.kind !== 'project' || rel.exprs.length !== 1 || exprHas(rel.exprs[0]!)) return undefined;
  const aggregate = rel.input;
  if (aggregate.kind !== 'aggregate' || aggregate.groupBy.length !== 0 || aggregate.aggregates.some((a) => a.args.some(exprHas))) return undefined;
  const keyed = equalityCorrelation({ kind: 'project', input: aggregate.input, exprs: [], columns: [] }, refs, false);
  if (!keyed || keyed.rel.kind !== 'project') return undefined;
  const innerKeys = keyed.rel.exprs;
  const k = innerKeys.length;
  const groupedRel: Rel = {
    kind: 'aggregate',
    input: keyed.rel.input,
    groupBy: innerKeys,
    aggregates: aggregate.aggregates,
    domain: undefined,
    columns: [...innerKeys.map((key, i) => ({ name: `key${i + 1}`, type: key.type })), ...aggregate.aggregates.map((a) => ({ name: a.fn, type: a.type }))],
  };
  const value = rel.exprs[0]!;
  let empty: Value;
  try {
    const defaults = aggregate.aggregates.map((a) => (a.fn === 'count' || a.fn === 'count_star' ? 0 : null));
    empty = compileExpr(value)(defaults);
  } catch {
    return undefined; // the value over no rows raises an error: keep the general plan, which raises it where PostgreSQL would
  }
  const keys = innerKeys.map((key, i) => column(i, key.type));
  return {
    rel: { kind: 'project', input: groupedRel, exprs: [...keys, shiftColumns(value, k)], columns: [...groupedRel.columns.slice(0, k), rel.columns[0]!] },
    outerKeys: keyed.outerKeys,
    empty,
  };
}

/** Whether an expression reads only outer references (and constants). */
function onlyOuter(expr: Expr): boolean {
  return columnsUsed(expr).size === 0;
}

// ---------------------------------------------------------------------------------------------
// Helpers

/** The top-level AND conjuncts of a WHERE clause (AST). */
function andConjuncts(node: Any): Any[] {
  if (node.BoolExpr?.boolop === 'AND_EXPR') return (node.BoolExpr.args as Any[]).flatMap(andConjuncts);
  return [node];
}

const OPERATOR_FUNCTIONS: Record<string, string> = { '~~': 'like', '~~*': 'ilike', '^': 'power', '!=': '<>' };

function unit(): Rel {
  return { kind: 'values', rows: [[]], columns: [] };
}

function aggregateRel(input: Rel, groupBy: Expr[], aggregates: AggregateCall[]): Rel {
  return {
    kind: 'aggregate',
    input,
    groupBy,
    aggregates,
    domain: undefined,
    columns: [...groupBy.map((g, i) => ({ name: `key${i + 1}`, type: g.type })), ...aggregates.map((a) => ({ name: a.fn, type: a.type }))],
  };
}

function projectColumns(rel: Rel, indices: number[]): Rel {
  return { kind: 'project', input: rel, exprs: indices.map((i) => column(i, rel.columns[i]!.type)), columns: indices.map((i) => rel.columns[i]!) };
}

function projectFirst(rel: Rel, width: number): Rel {
  return projectColumns(rel, Array.from({ length: width }, (_, i) => i));
}

/** The relation of a query's visible columns (dropping ORDER BY carriers). */
export function visibleRel(query: Query): Rel {
  return query.visible === query.rel.columns.length ? query.rel : projectFirst(query.rel, query.visible);
}

function renameColumns(query: Query, names: string[], loc: number | undefined): Query {
  if (names.length > query.visible) throw new BindError('sql_alias', `the query has ${query.visible} columns available but ${names.length} columns specified`, loc);
  const rel = visibleRel(query);
  const columns = rel.columns.map((c, i) => ({ name: names[i] ?? c.name, type: c.type }));
  return { rel: { kind: 'project', input: rel, exprs: rel.columns.map((c, i) => column(i, c.type)), columns }, visible: columns.length, orderBy: [] };
}

function castColumns(rel: Rel, types: Type[]): Rel {
  if (rel.columns.every((c, i) => c.type.kind === types[i]!.kind)) return rel;
  const exprs = rel.columns.map((c, i) => coerce(column(i, c.type), types[i]!, 'set operation'));
  return { kind: 'project', input: rel, exprs, columns: rel.columns.map((c, i) => ({ name: c.name, type: types[i]! })) };
}

function scopeColumns(rel: Rel, alias: string | undefined, names: string[], loc: number | undefined): ScopeColumn[] {
  if (names.length > rel.columns.length) throw new BindError('sql_alias', `table "${alias}" has ${rel.columns.length} columns available but ${names.length} columns specified`, loc);
  return rel.columns.map((c, index) => ({ table: alias, name: names[index] ?? c.name, index, type: c.type }));
}

function crossJoin(left: { rel: Rel; columns: ScopeColumn[] }, right: { rel: Rel; columns: ScopeColumn[] }): { rel: Rel; columns: ScopeColumn[] } {
  const width = left.rel.columns.length;
  return {
    rel: { kind: 'join', join: 'inner', left: left.rel, right: right.rel, on: literal(true, BOOLEAN), columns: [...left.rel.columns, ...right.rel.columns] },
    columns: [...left.columns, ...right.columns.map((c) => ({ ...c, index: c.index + width }))],
  };
}

function findColumn(scope: Scope, qualifier: string | undefined, name: string, loc?: number): ScopeColumn | undefined {
  const matches = scope.columns.filter((c) => c.name === name && (qualifier === undefined ? !c.qualifiedOnly : c.table === qualifier));
  if (matches.length > 1) {
    throw new BindError('sql_column', `column reference "${qualifier ? `${qualifier}.` : ''}${name}" is ambiguous`, loc, `qualify it with its table: ${matches.map((c) => `${c.table ?? '?'}.${name}`).join(' or ')}`);
  }
  return matches[0];
}

function findByIndex(scope: Scope, index: number): ScopeColumn {
  return scope.columns.find((c) => c.index === index)!;
}

function typeFromNode(typeName: Any): Type {
  const names = stringsOf(typeName.names);
  const modifiers = ((typeName.typmods ?? []) as Any[]).map((m) => Number(m.A_Const?.ival?.ival ?? 0));
  const name = names.at(-1)!;
  if (names.length === 1 && (name === 'signed' || name === 'unsigned')) throw new BindError('sql_type', `type "${name}" does not exist`, typeName.location, 'this is MySQL syntax; use integer');
  try {
    return resolveType(names, modifiers, typeName.arrayBounds !== undefined);
  } catch (error) {
    if (error instanceof DefiniteError) throw new BindError(error.code, error.message, typeName.location, error.hint);
    throw error;
  }
}

/** The type of a column definition (CREATE TABLE). */
export function columnType(typeName: Any): SqlType {
  return typeFromNode(typeName) as SqlType;
}

function constant(body: Any): Expr {
  if (body.isnull) return literal(null, UNKNOWN);
  if (body.ival !== undefined) return literal(Number(body.ival.ival ?? 0), INTEGER);
  if (body.fval !== undefined) {
    const text = String(body.fval.fval);
    if (/^[0-9]+$/.test(text)) {
      const value = BigInt(text);
      if (value <= 9223372036854775807n) return literal(value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value, BIGINT);
    }
    return literal(Decimal.parse(text), NUMERIC);
  }
  if (body.sval !== undefined) return literal(String(body.sval.sval ?? ''), UNKNOWN);
  if (body.boolval !== undefined) return literal(body.boolval.boolval === true, BOOLEAN);
  if (body.bsval !== undefined) throw new BindError('sql_unsupported', 'bit-string constants are not supported', body.location);
  throw new BindError('sql_unsupported', 'this constant is not supported', body.location);
}

function castConstant(value: Value, from: Type, to: Type, loc: number | undefined): Value {
  try {
    return castFunction(from, to)(value);
  } catch (error) {
    if (error instanceof DefiniteError) throw new BindError(error.code, error.message, loc, error.hint);
    throw error;
  }
}

/** `expr` implicitly cast to `target`; throws when PostgreSQL would not cast implicitly. */
export function coerce(expr: Expr, target: Type, what: string, loc?: number, assignment = false): Expr {
  if (expr.type.kind === target.kind && (target.modifiers.length === 0 || (expr.type.modifiers.length === target.modifiers.length && expr.type.modifiers.every((m, i) => m === target.modifiers[i])))) return expr;
  if (target.kind === 'unknown') return expr;
  if (expr.op === 'literal' && expr.type.kind === 'unknown') return literal(expr.value === null ? null : castConstant(expr.value, expr.type, target, loc), target);
  if (!canCoerce(expr.type, target, assignment)) {
    throw new BindError('sql_type', `${what}: ${typeLabel(expr.type)} cannot be used as ${typeLabel(target)}`, loc, `add an explicit cast: CAST(… AS ${typeLabel(target)})`);
  }
  if (expr.op === 'literal') return literal(expr.value === null ? null : castConstant(expr.value, expr.type, target, loc), target);
  return { op: 'cast', arg: expr, type: target };
}

function coerceUnknownToText(expr: Expr): Expr {
  return expr.type.kind === 'unknown' ? coerce(expr, TEXT, 'SELECT') : expr;
}

/** The value of a constant expression, or undefined when it is not constant. */
export function constantValue(expr: Expr): Value | undefined {
  if (expr.op === 'literal') return expr.value;
  if (expr.op === 'cast' && expr.arg.op === 'literal') return expr.arg.value === null ? null : castFunction(expr.arg.type, expr.type)(expr.arg.value);
  return undefined;
}

function orderKey(expr: Expr, sort: Any): OrderKey {
  const descending = sort.sortby_dir === 'SORTBY_DESC';
  const nullsFirst = sort.sortby_nulls === 'SORTBY_NULLS_FIRST' ? true : sort.sortby_nulls === 'SORTBY_NULLS_LAST' ? false : descending;
  return { expr, descending, nullsFirst };
}

function containsAggregate(node: Any | undefined): boolean {
  if (!node || typeof node !== 'object') return false;
  if (Array.isArray(node)) return node.some(containsAggregate);
  for (const [key, value] of Object.entries(node)) {
    if (key === 'SubLink') continue; // an aggregate inside a subquery belongs to the subquery
    if (key === 'FuncCall' && AGGREGATES.has(stringsOf((value as Any).funcname).at(-1)!.toLowerCase()) && !(value as Any).over) return true;
    if (typeof value === 'object' && containsAggregate(value as Any)) return true;
  }
  return false;
}

/** PostgreSQL's name for an unnamed select-list item. */
function columnName(node: Any): string {
  const [kind, body] = nodeType(node);
  switch (kind) {
    case 'ColumnRef':
      return stringsOf(body.fields).at(-1)!;
    case 'FuncCall':
      return stringsOf(body.funcname).at(-1)!;
    case 'TypeCast': {
      const inner = columnName(body.arg);
      if (inner !== '?column?') return inner;
      const names = stringsOf(body.typeName.names);
      return names.at(-1)!;
    }
    case 'CaseExpr':
      return 'case';
    case 'CoalesceExpr':
      return 'coalesce';
    case 'MinMaxExpr':
      return body.op === 'IS_GREATEST' ? 'greatest' : 'least';
    case 'A_Expr':
      return body.kind === 'AEXPR_NULLIF' ? 'nullif' : '?column?';
    case 'SubLink':
      return body.subLinkType === 'EXISTS_SUBLINK' ? 'exists' : body.subLinkType === 'EXPR_SUBLINK' ? subqueryName(body.subselect) : '?column?';
    case 'A_Const':
      return body.boolval !== undefined ? 'bool' : '?column?';
    default:
      return '?column?';
  }
}

function subqueryName(node: Any): string {
  const target = node.SelectStmt?.targetList?.[0]?.ResTarget;
  return target ? (target.name ?? columnName(target.val)) : '?column?';
}

/**
 * An expression over a grouped query's input rewritten over the aggregate's output: GROUP BY
 * expressions become group columns, aggregate placeholders their columns; any other input
 * column is an error, as in PostgreSQL.
 */
function rewriteGrouped(expr: Expr, groupBy: Expr[], width: number, scope: Scope, loc: number | undefined): Expr {
  const group = groupBy.findIndex((g) => exprEquals(g, expr));
  if (group >= 0) return column(group, expr.type);
  switch (expr.op) {
    case 'column': {
      if (expr.index >= SUB_BASE) return expr;
      if (expr.index >= AGG_BASE) return column(width + expr.index - AGG_BASE, expr.type);
      const c = findByIndex(scope, expr.index);
      throw new BindError('sql_group', `column "${c.table ? `${c.table}.` : ''}${c.name}" must appear in the GROUP BY clause or be used in an aggregate function`, loc, `add it to GROUP BY, or wrap it in an aggregate such as max(${c.name})`);
    }
    case 'literal':
    case 'outer':
      return expr;
    case 'call':
      return { ...expr, args: expr.args.map((arg) => rewriteGrouped(arg, groupBy, width, scope, loc)) };
    case 'case':
      return { ...expr, whens: expr.whens.map(({ when, then }) => ({ when: rewriteGrouped(when, groupBy, width, scope, loc), then: rewriteGrouped(then, groupBy, width, scope, loc) })), otherwise: rewriteGrouped(expr.otherwise, groupBy, width, scope, loc) };
    case 'cast':
      return { ...expr, arg: rewriteGrouped(expr.arg, groupBy, width, scope, loc) };
  }
}

