/**
 * The reference engine: SQLite in memory, reading the grammar's SQL as PostgreSQL does, and
 * recomputing every view from scratch when asked.
 *
 * Invariants:
 * - A view is never a SQLite view: `materializeViews` recomputes each one, in creation order,
 *   into a table of its name (so a view that reads another reads its rows), and every derived
 *   table and CTE runs as a MATERIALIZED CTE. SQLite's subquery flattening and WHERE push-down
 *   return wrong rows around RIGHT and FULL JOINs (3.40 to 3.53 at least), for example
 *     SELECT * FROM (SELECT a FROM t UNION ALL SELECT x.a FROM t x RIGHT JOIN t y ON x.a = y.a) s
 *     WHERE s.a IS NULL        -- a row (0) when t holds one row (0)
 *   and materializing leaves nothing to flatten; it also spares recomputing a subquery once per
 *   outer row (seconds where PostgreSQL takes milliseconds).
 * - LIKE is case-sensitive, as PostgreSQL's: `x LIKE 'pattern'` runs as `x GLOB 'pattern'` with
 *   % → * and _ → ? (the grammar's patterns and texts hold no GLOB metacharacters). Not through
 *   `PRAGMA case_sensitive_like`, which meets the flattening bug above even in SQLite views.
 * - `IS [NOT] DISTINCT FROM` runs as `IS [NOT]`, strpos as instr.
 * - Rows come back as arrays (duplicate column names survive), integers as numbers.
 */
import { DatabaseSync } from 'node:sqlite';

/** The index of the parenthesis closing the one at `open` (the grammar's literals hold none). */
function closing(sql: string, open: number): number {
  let depth = 0;
  for (let i = open; i < sql.length; i++) {
    if (sql[i] === "'") i = sql.indexOf("'", i + 1);
    else if (sql[i] === '(') depth++;
    else if (sql[i] === ')' && --depth === 0) return i;
  }
  throw new Error(`unbalanced parentheses in ${sql}`);
}

/**
 * A query with its derived tables (`(SELECT …) AS x3`) and CTEs rewritten as MATERIALIZED CTEs of
 * one WITH, innermost first. Derived tables are never correlated in the grammar, so any place in
 * the WITH list after what they read is theirs.
 */
export function materializeSubqueries(sql: string): string {
  const definitions: string[] = [];
  const hoist = (text: string): string => {
    let out = '';
    for (let i = 0; i < text.length; i++) {
      if (text[i] === "'") {
        const end = text.indexOf("'", i + 1);
        out += text.slice(i, end + 1);
        i = end;
      } else if (text[i] === '(') {
        const end = closing(text, i);
        const inner = hoist(text.slice(i + 1, end));
        const alias = /^ AS (x\d+)/.exec(text.slice(end + 1));
        if (alias && inner.startsWith('SELECT ')) {
          const name = `d${definitions.length}`;
          definitions.push(`${name} AS MATERIALIZED (${inner})`);
          out += name;
        } else {
          out += `(${inner})`;
        }
        i = end;
      } else {
        out += text[i];
      }
    }
    return out;
  };
  let rest = sql;
  if (rest.startsWith('WITH ')) {
    rest = rest.slice('WITH '.length);
    for (let match = /^(w\d+) AS \(/.exec(rest); match; match = /^, (w\d+) AS \(/.exec(rest)) {
      const open = match[0].length - 1;
      const end = closing(rest, open);
      definitions.push(`${match[1]} AS MATERIALIZED (${hoist(rest.slice(open + 1, end))})`);
      rest = rest.slice(end + 1);
    }
    rest = rest.trimStart();
  }
  const main = hoist(rest);
  return definitions.length > 0 ? `WITH ${definitions.join(', ')} ${main}` : main;
}

/** The SQL SQLite runs for the grammar's SQL (see the invariants above). */
export function sqliteDialect(sql: string): string {
  return materializeSubqueries(sql)
    .replace(/ IS (NOT )?DISTINCT FROM /g, (_match, not: string | undefined) => (not ? ' IS ' : ' IS NOT '))
    .replaceAll('strpos(', 'instr(')
    .replace(/\b(NOT )?LIKE '([^']*)'/g, (_match, not: string | undefined, pattern: string) => {
      if (/[*?[\]]/.test(pattern)) throw new Error(`the LIKE pattern '${pattern}' has GLOB metacharacters`);
      return `${not ?? ''}GLOB '${pattern.replaceAll('%', '*').replaceAll('_', '?')}'`;
    });
}

export class SqliteOracle {
  readonly #database = new DatabaseSync(':memory:');
  readonly #views: { name: string; sql: string }[] = [];

  /** Runs statements other than CREATE VIEW. */
  execute(sql: string): void {
    this.#database.exec(sqliteDialect(sql));
  }

  /** Records a view and computes its rows now; `materializeViews` recomputes them. */
  defineView(name: string, sql: string): void {
    const query = sqliteDialect(sql);
    this.#database.exec(`CREATE TABLE ${name} AS ${query}`);
    this.#views.push({ name, sql: query });
  }

  /** Recomputes every view from scratch, in creation order, into a table of its name. */
  materializeViews(): void {
    for (const view of this.#views) this.#database.exec(`DROP TABLE ${view.name}; CREATE TABLE ${view.name} AS ${view.sql}`);
  }

  rows(sql: string): unknown[][] {
    const statement = this.#database.prepare(sqliteDialect(sql));
    statement.setReturnArrays(true);
    return statement.all() as unknown as unknown[][];
  }

  close(): void {
    this.#database.close();
  }
}
