/**
 * Random schemas, queries and changes in the SQL that SQLite and PostgreSQL evaluate alike, for
 * the oracle property (oracle.property.test.ts): SQLite recomputes what a Sluice view must hold.
 *
 * Every program is read from a tape of naturals (`Choices`), so fast-check shrinks a failing
 * program by shrinking its tapes.
 *
 * Invariants:
 * - Choice 0 is always the simplest (a leaf, no optional clause, one source, an INSERT), and a
 *   tape read past its end reads 0, so every tape, however cut, is a valid program and a shorter
 *   or smaller tape is a simpler one.
 * - Only the common ground of the two engines is generated: integer and text columns; small
 *   integers, no division, and no overflow (`*` only at the top level of a view that reads no
 *   other view, over operands without `*`; UPDATEs only add constants); text in lowercase ASCII
 *   plus 'A', whose byte order is the order of both; comparisons between operands of one kind;
 *   booleans only as conditions (SQLite would return 0/1); scalar subqueries only over aggregates
 *   without GROUP BY (one row); every output column named (c0, c1, …); every reference
 *   qualified by a unique alias; every operator parenthesized; compound operators chained only
 *   where SQLite's left-to-right reading is PostgreSQL's precedence (INTERSECT with INTERSECT).
 *   What the two spell differently (LIKE, IS DISTINCT FROM, strpos) sqlite-oracle.ts translates.
 * - Left out because Sluice refuses them as not supported yet: subqueries in JOIN … ON,
 *   correlated references beyond the enclosing query (so derived tables are never correlated),
 *   correlated subqueries inside correlated subqueries, row values, UPDATE … FROM.
 */

export type Kind = 'int' | 'text';

export interface TableSchema {
  readonly name: string;
  readonly columns: readonly { readonly name: string; readonly kind: Kind }[];
  /** `a` is the PRIMARY KEY: inserts give fresh keys, updates leave keys alone. */
  readonly keyed: boolean;
}

export interface Schema {
  readonly tables: readonly TableSchema[];
}

/** Column names of a table: the first is always an integer `a` (something to join on). */
const COLUMN_NAMES = ['a', 'b', 'c', 'd', 'e'];

/** A schema from the kinds of each table's columns after the first, and whether it is keyed. */
export function schemaOf(tables: readonly { readonly kinds: readonly Kind[]; readonly keyed: boolean }[]): Schema {
  return {
    tables: tables.map(({ kinds, keyed }, i) => ({
      name: `t${i}`,
      columns: [{ name: 'a', kind: 'int' as Kind }, ...kinds.map((kind, j) => ({ name: COLUMN_NAMES[j + 1]!, kind }))],
      keyed,
    })),
  };
}

export function createTableSql(table: TableSchema): string {
  const columns = table.columns.map(
    (column, i) => `${column.name} ${column.kind === 'int' ? 'integer' : 'text'}${table.keyed && i === 0 ? ' PRIMARY KEY' : ''}`,
  );
  return `CREATE TABLE ${table.name} (${columns.join(', ')})`;
}

/** Reads choices from a tape; past its end every choice is 0. */
export class Choices {
  readonly #tape: readonly number[];
  #next = 0;

  constructor(tape: readonly number[]) {
    this.#tape = tape;
  }

  /** 0 … n−1. */
  below(n: number): number {
    const value = this.#next < this.#tape.length ? this.#tape[this.#next]! : 0;
    this.#next++;
    return n <= 1 ? 0 : value % n;
  }

  pick<T>(options: readonly T[]): T {
    return options[this.below(options.length)]!;
  }

  /** True with the given probability on random tapes; false on 0. */
  maybe(percent: number): boolean {
    return this.below(100) >= 100 - percent;
  }

  /** One of the options, chosen with the given weights; option 0 on 0. */
  weighted<T>(options: readonly (readonly [number, T])[]): T {
    const total = options.reduce((sum, [weight]) => sum + weight, 0);
    let drawn = this.below(total);
    for (const [weight, option] of options) {
      if (drawn < weight) return option;
      drawn -= weight;
    }
    return options[options.length - 1]![1];
  }
}

// ---------------------------------------------------------------------------------------------
// Values

const INTEGERS = ['0', '1', '2', '3', '(-1)', '5', '10', '(-2)', '7'];
const TEXTS = ["'a'", "'b'", "'ab'", "'ba'", "''", "'A'", "'abc'", "'bb'", "'ca'"];
const LIKE_PATTERNS = ["'a%'", "'%a'", "'%b%'", "'_'", "'a_'", "'_b%'", "'ab'", "'%'", "''", "'A%'"];

function literal(choices: Choices, kind: Kind): string {
  return kind === 'int' ? choices.pick(INTEGERS) : choices.pick(TEXTS);
}

/** A stored value: a literal or, one time in eight, NULL. */
function storedValue(choices: Choices, kind: Kind): string {
  return choices.maybe(12) ? 'NULL' : literal(choices, kind);
}

// ---------------------------------------------------------------------------------------------
// Queries

/** A column a reference may name: its SQL (`x1.b`, or `b` in UPDATE and DELETE) and its kind. */
interface Column {
  readonly sql: string;
  readonly kind: Kind;
  /** A GROUP BY expression rather than a column: never correlated on (PostgreSQL may refuse it). */
  readonly expression?: boolean;
}

interface Scope {
  /** What a plain reference may name (in a grouped query: the grouping keys only). */
  readonly columns: readonly Column[];
  /** In a grouped query: the rows' columns, which aggregate arguments may name. */
  readonly rows?: readonly Column[];
  /** In a grouped query: set once an aggregate is generated at its level. */
  readonly aggregated?: { value: boolean };
  /** This query is correlated: its subqueries are not (Sluice refuses nested correlation). */
  readonly correlated?: boolean;
}

/**
 * What a subquery in `scope` may correlate on: the scope's plain columns, never those of queries
 * further out (Sluice refuses references beyond the enclosing query), and nothing when the scope's
 * query is correlated itself (Sluice refuses nested correlated subqueries).
 */
function outerOf(scope: Scope): Column[] {
  return scope.correlated ? [] : scope.columns.filter((column) => !column.expression);
}

interface ExpressionOptions {
  /** Nesting left for subqueries; 0 allows none. */
  readonly queryDepth: number;
  /** Whether `*` may appear (at the top level of a view only, never nested in another `*`). */
  readonly multiply: boolean;
}

/** A table, a view or a CTE that FROM may name. */
export interface Relation {
  readonly name: string;
  readonly columns: readonly { readonly name: string; readonly kind: Kind }[];
}

export interface GeneratedQuery {
  readonly sql: string;
  readonly kinds: readonly Kind[];
}

/** How deep a view's query nests. */
export interface QueryLimits {
  /** Subqueries, derived tables and CTEs below the view's query. */
  readonly queryDepth: number;
  /** Operators in one expression. */
  readonly expressionDepth: number;
}

export const DEFAULT_LIMITS: QueryLimits = { queryDepth: 2, expressionDepth: 2 };

export class QueryGenerator {
  readonly #choices: Choices;
  readonly #tables: readonly Relation[];
  /** Tables and the views this one may read. */
  readonly #relations: readonly Relation[];
  /** `*` over columns of other views could overflow (theirs may be products already). */
  readonly #multiply: boolean;
  #aliases = 0;
  #ctes: Relation[] = [];
  /** How many subqueries in expressions enclose what is being generated. */
  #subqueries = 0;
  /** The next source is a CTE (the main query of a WITH reads one at least). */
  #cteNext = false;

  readonly #limits: QueryLimits;

  constructor(schema: Schema, choices: Choices, views: readonly Relation[] = [], limits: QueryLimits = DEFAULT_LIMITS) {
    this.#limits = limits;
    this.#choices = choices;
    this.#tables = schema.tables;
    this.#relations = [...schema.tables, ...views];
    this.#multiply = views.length === 0;
  }

  /** A view's query. */
  view(): GeneratedQuery {
    const c = this.#choices;
    if (c.maybe(15)) {
      const definitions: string[] = [];
      const count = 1 + c.below(2);
      for (let i = 0; i < count; i++) {
        const body = this.query(undefined, this.#limits.queryDepth - 1, false, []);
        const name = `w${i}`;
        definitions.push(`${name} AS (${body.sql})`);
        this.#ctes.push({ name, columns: body.kinds.map((kind, j) => ({ name: `c${j}`, kind })) });
      }
      this.#cteNext = true;
      const main = this.query(undefined, this.#limits.queryDepth, true, []);
      return { sql: `WITH ${definitions.join(', ')} ${main.sql}`, kinds: main.kinds };
    }
    return this.query(undefined, this.#limits.queryDepth, true, []);
  }

  /** A query: a SELECT, a grouped SELECT or a compound of them; `outer` is what it may correlate on. */
  query(want: readonly Kind[] | undefined, depth: number, top: boolean, outer: readonly Column[]): GeneratedQuery {
    const form = this.#choices.weighted([
      [5, 'select'],
      [3, 'grouped'],
      [2, 'compound'],
    ] as const);
    if (form === 'compound') return this.#compound(want, depth, top, outer);
    return this.#select(want, depth, top, form === 'grouped', outer);
  }

  #compound(want: readonly Kind[] | undefined, depth: number, top: boolean, outer: readonly Column[]): GeneratedQuery {
    const c = this.#choices;
    const first = this.#select(want, depth, top, c.maybe(35), outer);
    const operator = c.pick(['UNION ALL', 'UNION', 'EXCEPT', 'INTERSECT']);
    let sql = `${first.sql} ${operator} ${this.#select(first.kinds, depth, top, c.maybe(35), outer).sql}`;
    if (c.maybe(25)) {
      // INTERSECT binds tighter than UNION and EXCEPT in PostgreSQL; SQLite reads left to right.
      const next = operator === 'INTERSECT' ? 'INTERSECT' : c.pick(['UNION ALL', 'UNION', 'EXCEPT']);
      sql += ` ${next} ${this.#select(first.kinds, depth, top, c.maybe(35), outer).sql}`;
    }
    return { sql, kinds: first.kinds };
  }

  #select(want: readonly Kind[] | undefined, depth: number, top: boolean, grouped: boolean, outer: readonly Column[]): GeneratedQuery {
    const c = this.#choices;
    const from = this.#from(depth);
    const options: ExpressionOptions = { queryDepth: depth, multiply: top && this.#multiply };
    const conditions = [...from.joinConditions];
    const correlation = this.#correlation(from.columns, outer);
    const correlated = correlation !== undefined;
    if (correlation) conditions.push(correlation);
    if (c.maybe(55)) conditions.push(this.bool({ columns: from.columns, correlated }, this.#limits.expressionDepth, options));
    const kinds = want ?? this.#kinds();
    let scope: Scope = { columns: from.columns, correlated };
    let groupBy = '';
    if (grouped) {
      const keys: Column[] = [];
      const keyCount = c.weighted([
        [2, 0],
        [3, 1],
        [1, 2],
      ] as const);
      for (let i = 0; i < keyCount; i++) {
        const key = c.maybe(25) ? this.#keyExpression(c.pick(from.columns)) : c.pick(from.columns);
        if (!keys.some((other) => other.sql === key.sql)) keys.push(key);
      }
      scope = { columns: keys, rows: from.columns, aggregated: { value: false }, correlated };
      if (keys.length > 0) groupBy = ` GROUP BY ${keys.map((key) => key.sql).join(', ')}`;
    }
    const items = kinds.map((kind, i) => `${this.expression(kind, scope, this.#limits.expressionDepth, options)} AS c${i}`);
    const distinct = c.maybe(20) ? 'DISTINCT ' : '';
    const where = conditions.length > 0 ? ` WHERE ${conditions.join(' AND ')}` : '';
    // SQLite refuses HAVING in a query that has neither GROUP BY nor an aggregate in its SELECT.
    const having = grouped && (groupBy !== '' || scope.aggregated!.value) && c.maybe(35) ? ` HAVING ${this.bool(scope, this.#limits.expressionDepth, options)}` : '';
    return { sql: `SELECT ${distinct}${items.join(', ')} FROM ${from.sql}${where}${groupBy}${having}`, kinds };
  }

  /** A GROUP BY expression over a column (never a bare literal: GROUP BY 2 names an output column). */
  #keyExpression(column: Column): Column {
    const c = this.#choices;
    if (column.kind === 'int') {
      const sql = c.pick([`(${column.sql} + ${c.pick(INTEGERS)})`, `COALESCE(${column.sql}, ${c.pick(INTEGERS)})`, `abs(${column.sql})`]);
      return { sql, kind: 'int', expression: true };
    }
    if (c.maybe(30)) return { sql: `length(${column.sql})`, kind: 'int', expression: true };
    const sql = c.pick([`lower(${column.sql})`, `(${column.sql} || ${c.pick(TEXTS)})`, `COALESCE(${column.sql}, ${c.pick(TEXTS)})`, `substr(${column.sql}, 1, 1)`]);
    return { sql, kind: 'text', expression: true };
  }

  #kinds(): Kind[] {
    const count = 1 + this.#choices.weighted([
      [3, 0],
      [3, 1],
      [2, 2],
    ] as const);
    return Array.from({ length: count }, () => this.#choices.pick(['int', 'text'] as const));
  }

  /**
   * Half the time when there is an outer query, a condition tying a column of this one to a column
   * of the outer one: most often an equality, sometimes another comparison.
   */
  #correlation(columns: readonly Column[], outer: readonly Column[]): string | undefined {
    const c = this.#choices;
    if (outer.length === 0 || !c.maybe(50)) return undefined;
    const pairs = columns.flatMap((inner) => outer.filter((other) => other.kind === inner.kind).map((other) => [inner.sql, other.sql] as const));
    if (pairs.length === 0) return undefined;
    const [inner, other] = c.pick(pairs);
    const operator = c.weighted([
      [7, '='],
      [1, '<'],
      [1, '>='],
      [1, '<>'],
    ] as const);
    return `${inner} ${operator} ${other}`;
  }

  #alias(): string {
    return `x${this.#aliases++}`;
  }

  /** FROM: one source, a chain of explicit joins, or a comma list whose join conditions go to WHERE. */
  #from(depth: number): { sql: string; columns: Column[]; joinConditions: string[] } {
    const c = this.#choices;
    // SQLite evaluates joins by nested loops and a correlated subquery once per outer row, so a
    // subquery in an expression joins two sources at most and three sources are tables.
    const count = c.weighted([
      [4, 1],
      [4, 2],
      [this.#subqueries > 0 ? 0 : 1, 3],
    ] as const);
    const first = this.#source(depth, count === 3);
    let sql = first.sql;
    const columns = [...first.columns];
    const joinConditions: string[] = [];
    const comma = c.maybe(30);
    for (let i = 1; i < count; i++) {
      const next = this.#source(depth, count === 3);
      const pairs = columns.flatMap((left) => next.columns.filter((right) => right.kind === left.kind).map((right) => `${left.sql} = ${right.sql}`));
      if (comma) {
        sql += `, ${next.sql}`;
        if (pairs.length > 0 && !c.maybe(15)) joinConditions.push(c.pick(pairs));
      } else {
        let kind = c.pick(['JOIN', 'LEFT JOIN', 'RIGHT JOIN', 'FULL JOIN']);
        // PostgreSQL runs a FULL JOIN only on merge- or hash-joinable conditions: equalities only.
        if (kind === 'FULL JOIN' && pairs.length === 0) kind = 'LEFT JOIN';
        let on = pairs.length > 0 ? c.pick(pairs) : 'TRUE';
        // IS NOT DISTINCT FROM matches NULL keys; PostgreSQL cannot run it as a FULL JOIN's condition.
        if (kind !== 'FULL JOIN' && pairs.length > 0 && c.maybe(15)) on = on.replace(' = ', ' IS NOT DISTINCT FROM ');
        if (kind !== 'FULL JOIN' && c.maybe(30)) {
          on += ` AND ${this.bool({ columns: [...columns, ...next.columns] }, 1, { queryDepth: 0, multiply: false })}`;
        }
        sql += ` ${kind} ${next.sql} ON ${on}`;
      }
      columns.push(...next.columns);
    }
    return { sql, columns, joinConditions };
  }

  /**
   * A table, a view, a CTE or a derived table, under a fresh alias. A derived table is never
   * correlated: not on its sibling sources (that takes LATERAL), and not on the query enclosing
   * its own (Sluice refuses references beyond the enclosing query).
   */
  #source(depth: number, tablesOnly: boolean): { sql: string; columns: Column[] } {
    const c = this.#choices;
    const alias = this.#alias();
    if (tablesOnly && !this.#cteNext) {
      const table = c.pick(this.#tables);
      return { sql: `${table.name} AS ${alias}`, columns: table.columns.map((column) => ({ sql: `${alias}.${column.name}`, kind: column.kind })) };
    }
    const form = this.#cteNext
      ? 'cte'
      : c.weighted([
      [5, 'table'],
      [this.#ctes.length > 0 ? 3 : 0, 'cte'],
      [depth > 0 ? 2 : 0, 'derived'],
    ] as const);
    this.#cteNext = false;
    if (form === 'derived') {
      const query = this.query(undefined, depth - 1, false, []);
      return { sql: `(${query.sql}) AS ${alias}`, columns: query.kinds.map((kind, i) => ({ sql: `${alias}.c${i}`, kind })) };
    }
    const relation = form === 'cte' ? c.pick(this.#ctes) : c.pick(this.#relations);
    return { sql: `${relation.name} AS ${alias}`, columns: relation.columns.map((column) => ({ sql: `${alias}.${column.name}`, kind: column.kind })) };
  }

  // -------------------------------------------------------------------------------------------
  // Expressions

  expression(kind: Kind, scope: Scope, depth: number, options: ExpressionOptions): string {
    return kind === 'int' ? this.#integer(scope, depth, options) : this.#text(scope, depth, options);
  }

  #leaf(kind: Kind, scope: Scope, options: ExpressionOptions): string {
    const c = this.#choices;
    const columns = scope.columns.filter((column) => column.kind === kind);
    const form = c.weighted([
      [columns.length > 0 ? 6 : 0, 'column'],
      [scope.rows ? 6 : 0, 'aggregate'],
      [2, 'literal'],
    ] as const);
    if (form === 'column') return c.pick(columns).sql;
    if (form === 'aggregate') {
      scope.aggregated!.value = true;
      return this.#aggregate(kind, scope.rows!);
    }
    return literal(c, kind);
  }

  /** An aggregate over the rows of a group; its argument has no aggregate and no subquery. */
  #aggregate(kind: Kind, rows: readonly Column[]): string {
    const c = this.#choices;
    const inner: ExpressionOptions = { queryDepth: 0, multiply: false };
    const argument = (argumentKind: Kind) => this.expression(argumentKind, { columns: rows }, 1, inner);
    const call = (): string => {
      if (kind === 'text') return `${c.pick(['min', 'max'])}(${argument('text')})`;
      const form = c.pick(['count(*)', 'sum', 'count', 'min', 'max', 'count distinct', 'sum distinct'] as const);
      switch (form) {
        case 'count(*)':
          return 'count(*)';
        case 'count':
          return `count(${argument(c.pick(['int', 'text'] as const))})`;
        case 'count distinct':
          return `count(DISTINCT ${argument(c.pick(['int', 'text'] as const))})`;
        case 'sum distinct':
          return `sum(DISTINCT ${argument('int')})`;
        default:
          return `${form}(${argument('int')})`;
      }
    };
    const aggregate = call();
    return c.maybe(15) ? `${aggregate} FILTER (WHERE ${this.bool({ columns: rows }, 1, inner)})` : aggregate;
  }

  #integer(scope: Scope, depth: number, options: ExpressionOptions): string {
    const c = this.#choices;
    if (depth <= 0) return this.#leaf('int', scope, options);
    const next = depth - 1;
    const subqueries = options.queryDepth > 0;
    const form = c.weighted([
      [8, 'leaf'],
      [3, '+'],
      [2, '-'],
      [options.multiply ? 2 : 0, '*'],
      [2, 'case'],
      [1, 'simple case'],
      [1, 'coalesce'],
      [1, 'nullif'],
      [1, 'length'],
      [1, 'strpos'],
      [1, 'abs'],
      [subqueries ? 2 : 0, 'scalar'],
    ] as const);
    const int = (o: ExpressionOptions = options) => this.#integer(scope, next, o);
    switch (form) {
      case 'leaf':
        return this.#leaf('int', scope, options);
      case '+':
      case '-':
        return `(${int()} ${form} ${int()})`;
      case '*': {
        const operand: ExpressionOptions = { ...options, multiply: false };
        return `(${int(operand)} * ${int(operand)})`;
      }
      case 'case':
        return c.maybe(70)
          ? `CASE WHEN ${this.bool(scope, next, options)} THEN ${int()} ELSE ${int()} END`
          : `CASE WHEN ${this.bool(scope, next, options)} THEN ${int()} END`;
      case 'simple case':
        return this.#simpleCase(scope, next, options, int);
      case 'strpos':
        return `strpos(${this.#text(scope, next, options)}, ${c.pick(TEXTS)})`;
      case 'coalesce':
        return `COALESCE(${int()}, ${int()})`;
      case 'nullif':
        return `NULLIF(${int()}, ${int()})`;
      case 'length':
        return `length(${this.#text(scope, next, options)})`;
      case 'abs':
        return `abs(${int()})`;
      case 'scalar':
        return this.#inSubquery(() => this.#scalarSubquery('int', scope, options));
    }
  }

  #text(scope: Scope, depth: number, options: ExpressionOptions): string {
    const c = this.#choices;
    if (depth <= 0) return this.#leaf('text', scope, options);
    const next = depth - 1;
    const subqueries = options.queryDepth > 0;
    const form = c.weighted([
      [8, 'leaf'],
      [3, '||'],
      [1, 'lower'],
      [1, 'upper'],
      [2, 'case'],
      [1, 'simple case'],
      [1, 'coalesce'],
      [1, 'nullif'],
      [1, 'substr'],
      [1, 'replace'],
      [1, 'cast'],
      [subqueries ? 2 : 0, 'scalar'],
    ] as const);
    const text = () => this.#text(scope, next, options);
    switch (form) {
      case 'leaf':
        return this.#leaf('text', scope, options);
      case '||':
        return `(${text()} || ${text()})`;
      case 'lower':
      case 'upper':
        return `${form}(${text()})`;
      case 'case':
        return c.maybe(70)
          ? `CASE WHEN ${this.bool(scope, next, options)} THEN ${text()} ELSE ${text()} END`
          : `CASE WHEN ${this.bool(scope, next, options)} THEN ${text()} END`;
      case 'coalesce':
        return `COALESCE(${text()}, ${text()})`;
      case 'nullif':
        return `NULLIF(${text()}, ${text()})`;
      case 'substr':
        return `substr(${text()}, ${1 + c.below(3)}, ${1 + c.below(3)})`;
      case 'replace':
        return `replace(${text()}, ${c.pick(TEXTS)}, ${c.pick(TEXTS)})`;
      case 'cast':
        return `CAST(${this.#integer(scope, next, options)} AS text)`;
      case 'simple case':
        return this.#simpleCase(scope, next, options, text);
      case 'scalar':
        return this.#inSubquery(() => this.#scalarSubquery('text', scope, options));
    }
  }

  /** `CASE operand WHEN value THEN result … [ELSE result] END`, the results from `result`. */
  #simpleCase(scope: Scope, depth: number, options: ExpressionOptions, result: () => string): string {
    const c = this.#choices;
    const kind = c.pick(['int', 'text'] as const);
    const operand = this.expression(kind, scope, depth, options);
    const branches = Array.from({ length: 1 + c.below(2) }, () => `WHEN ${literal(c, kind)} THEN ${result()}`);
    const otherwise = c.maybe(60) ? ` ELSE ${result()}` : '';
    return `CASE ${operand} ${branches.join(' ')}${otherwise} END`;
  }

  bool(scope: Scope, depth: number, options: ExpressionOptions): string {
    const c = this.#choices;
    const next = depth - 1;
    const subqueries = options.queryDepth > 0;
    const form = c.weighted([
      [6, 'compare int'],
      [3, 'compare text'],
      [2, 'is null'],
      [1, 'is distinct'],
      [depth > 0 ? 3 : 0, 'and'],
      [depth > 0 ? 2 : 0, 'or'],
      [depth > 0 ? 1 : 0, 'not'],
      [1, 'between'],
      [2, 'in list'],
      [2, 'like'],
      [subqueries ? 2 : 0, 'in subquery'],
      [subqueries ? 2 : 0, 'exists'],
    ] as const);
    const operand = (kind: Kind) => this.expression(kind, scope, Math.max(next, 0), options);
    const kind = () => c.pick(['int', 'text'] as const);
    switch (form) {
      case 'compare int':
      case 'compare text': {
        const k = form === 'compare int' ? 'int' : 'text';
        return `(${operand(k)} ${c.pick(['=', '<>', '<', '<=', '>', '>='])} ${operand(k)})`;
      }
      case 'is null':
        return `(${operand(kind())} ${c.pick(['IS NULL', 'IS NOT NULL'])})`;
      case 'is distinct': {
        const k = kind();
        return `(${operand(k)} ${c.pick(['IS DISTINCT FROM', 'IS NOT DISTINCT FROM'])} ${operand(k)})`;
      }
      case 'and':
      case 'or':
        return `(${this.bool(scope, next, options)} ${form.toUpperCase()} ${this.bool(scope, next, options)})`;
      case 'not':
        return `(NOT ${this.bool(scope, next, options)})`;
      case 'between': {
        const k = kind();
        return `(${operand(k)} ${c.pick(['BETWEEN', 'NOT BETWEEN'])} ${operand(k)} AND ${operand(k)})`;
      }
      case 'in list': {
        const k = kind();
        const values = Array.from({ length: 1 + c.below(3) }, () => (c.maybe(15) ? 'NULL' : literal(c, k)));
        return `(${operand(k)} ${c.pick(['IN', 'NOT IN'])} (${values.join(', ')}))`;
      }
      case 'like':
        return `(${operand('text')} ${c.pick(['LIKE', 'NOT LIKE'])} ${c.pick(LIKE_PATTERNS)})`;
      case 'in subquery': {
        const k = kind();
        const query = this.#inSubquery(() => this.query([k], options.queryDepth - 1, false, outerOf(scope)));
        return `(${operand(k)} ${c.pick(['IN', 'NOT IN'])} (${query.sql}))`;
      }
      case 'exists':
        return `(${c.pick(['EXISTS', 'NOT EXISTS'])} ${this.#inSubquery(() => this.#existsSubquery(scope, options))})`;
    }
  }

  #inSubquery<T>(generate: () => T): T {
    this.#subqueries++;
    try {
      return generate();
    } finally {
      this.#subqueries--;
    }
  }

  /** `(SELECT …)` for EXISTS: correlated on an equality with the enclosing scope, or not. */
  #existsSubquery(scope: Scope, options: ExpressionOptions): string {
    const c = this.#choices;
    if (c.maybe(50)) {
      const correlated = this.#correlated(scope, options);
      if (correlated) return `(SELECT 1 AS c0 FROM ${correlated.from} WHERE ${correlated.where})`;
    }
    return `(${this.query(undefined, options.queryDepth - 1, false, outerOf(scope)).sql})`;
  }

  /** A scalar subquery: an aggregate without GROUP BY (one row), correlated or not. */
  #scalarSubquery(kind: Kind, scope: Scope, options: ExpressionOptions): string {
    const c = this.#choices;
    if (c.maybe(50)) {
      const correlated = this.#correlated(scope, options);
      if (correlated) {
        const aggregate = this.#aggregate(kind, correlated.columns);
        return `(SELECT ${aggregate} AS c0 FROM ${correlated.from} WHERE ${correlated.where})`;
      }
    }
    const outer = outerOf(scope);
    const from = this.#from(options.queryDepth - 1);
    const inner: ExpressionOptions = { queryDepth: options.queryDepth - 1, multiply: false };
    const conditions = [...from.joinConditions];
    const correlation = this.#correlation(from.columns, outer);
    if (correlation) conditions.push(correlation);
    if (c.maybe(50)) conditions.push(this.bool({ columns: from.columns, correlated: correlation !== undefined }, 1, inner));
    const where = conditions.length > 0 ? ` WHERE ${conditions.join(' AND ')}` : '';
    return `(SELECT ${this.#aggregate(kind, from.columns)} AS c0 FROM ${from.sql}${where})`;
  }

  /**
   * FROM and WHERE of a subquery correlated with the enclosing scope by an equality
   * (`inner.col = outer.col`), or undefined when no column of the scope matches one of the table.
   */
  #correlated(scope: Scope, options: ExpressionOptions): { from: string; where: string; columns: Column[] } | undefined {
    const c = this.#choices;
    const relation = c.pick([...this.#relations, ...this.#ctes]);
    const alias = this.#alias();
    const columns = relation.columns.map((column) => ({ sql: `${alias}.${column.name}`, kind: column.kind }));
    const pairs = outerOf(scope).flatMap((outer) => columns.filter((inner) => inner.kind === outer.kind).map((inner) => `${inner.sql} = ${outer.sql}`));
    if (pairs.length === 0) return undefined;
    let where = c.pick(pairs);
    if (c.maybe(40)) where += ` AND ${this.bool({ columns }, 1, { queryDepth: 0, multiply: false })}`;
    void options;
    return { from: `${relation.name} AS ${alias}`, where, columns };
  }
}

// ---------------------------------------------------------------------------------------------
// Changes

/** Allocates the keys of keyed tables: never one used before in the case, so no INSERT conflicts. */
export class KeyAllocator {
  #next = 1;
  next(): number {
    return this.#next++;
  }
}

/**
 * An INSERT (most often), a DELETE or an UPDATE of one table. Conditions may hold subqueries over
 * the other tables (never over the changed one: SQLite may see a half-updated table where
 * PostgreSQL sees the statement's snapshot), correlated on the changed row's columns, written
 * `t0.a` so no subquery alias hides them. INSERT … SELECT copies rows of t0 into another table
 * that is not keyed (only t0 is read, so sizes grow by addition, never doubling).
 */
export function changeStatement(schema: Schema, choices: Choices, keys: KeyAllocator): string {
  const c = choices;
  const table = c.pick(schema.tables);
  // A keyed table's key is never updated: with no other column, it is only inserted and deleted.
  const updatable = table.keyed ? table.columns.slice(1) : table.columns;
  const form = c.weighted([
    [5, 'insert'],
    [2, 'delete'],
    [updatable.length > 0 ? 3 : 0, 'update'],
    [table !== schema.tables[0] && !table.keyed ? 1 : 0, 'insert select'],
  ] as const);
  const scope: Scope = { columns: table.columns.map((column) => ({ sql: `${table.name}.${column.name}`, kind: column.kind })) };
  const others: Schema = { tables: schema.tables.filter((other) => other !== table) };
  const generator = new QueryGenerator(others, choices);
  const subqueries = others.tables.length > 0 && c.maybe(30);
  const condition = () => generator.bool(scope, DEFAULT_LIMITS.expressionDepth, { queryDepth: subqueries ? 1 : 0, multiply: false });
  switch (form) {
    case 'insert': {
      const rows = Array.from(
        { length: 1 + c.below(5) },
        () => `(${table.columns.map((column, i) => (table.keyed && i === 0 ? String(keys.next()) : storedValue(c, column.kind))).join(', ')})`,
      );
      return `INSERT INTO ${table.name} VALUES ${rows.join(', ')}`;
    }
    case 'insert select': {
      const source = schema.tables[0]!;
      const columns = source.columns.map((column) => ({ sql: `x0.${column.name}`, kind: column.kind }));
      const items = table.columns.map((column) => {
        const same = columns.filter((other) => other.kind === column.kind);
        return same.length > 0 && !c.maybe(25) ? c.pick(same).sql : storedValue(c, column.kind);
      });
      const where = c.maybe(60) ? ` WHERE ${generator.bool({ columns }, 1, { queryDepth: 0, multiply: false })}` : '';
      return `INSERT INTO ${table.name} SELECT ${items.join(', ')} FROM ${source.name} AS x0${where}`;
    }
    case 'delete':
      return c.maybe(8) ? `DELETE FROM ${table.name}` : `DELETE FROM ${table.name} WHERE ${condition()}`;
    case 'update': {
      const assignments: string[] = [];
      const targets = c.maybe(30) ? 2 : 1;
      const assigned = new Set<string>();
      for (let i = 0; i < targets; i++) {
        const column = c.pick(updatable);
        if (assigned.has(column.name)) continue;
        assigned.add(column.name);
        assignments.push(`${column.name} = ${assignedValue(column, scope, c, condition)}`);
      }
      const where = c.maybe(85) ? ` WHERE ${condition()}` : '';
      return `UPDATE ${table.name} SET ${assignments.join(', ')}${where}`;
    }
  }
}

/** A new value that grows by a constant at most, so repeated UPDATEs cannot overflow. */
function assignedValue(column: { name: string; kind: Kind }, scope: Scope, c: Choices, condition: () => string): string {
  const same = scope.columns.filter((other) => other.kind === column.kind).map((other) => other.sql);
  const form = c.pick(['literal', 'grow', 'null', 'column', 'case', 'coalesce'] as const);
  switch (form) {
    case 'literal':
      return literal(c, column.kind);
    case 'grow':
      return column.kind === 'int' ? `(${column.name} + ${c.pick(INTEGERS)})` : `(${column.name} || ${c.pick(TEXTS)})`;
    case 'null':
      return 'NULL';
    case 'column':
      return c.pick(same);
    case 'case':
      return `CASE WHEN ${condition()} THEN ${literal(c, column.kind)} ELSE ${column.name} END`;
    case 'coalesce':
      return `COALESCE(${column.name}, ${literal(c, column.kind)})`;
  }
}
