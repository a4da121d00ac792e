/**
 * One oracle case run on Sluice and on SQLite side by side (oracle.property.test.ts).
 *
 * Invariants:
 * - Both engines run the same statements in the same order; after the views are created and
 *   after each batch, every view created so far is read from Sluice and recomputed by SQLite.
 * - After the last batch each view's query also runs as a one-shot SELECT on Sluice.
 * - The first difference or error throws a self-contained report: what differed, the view's
 *   query, both results, their multiset difference, and the script up to that point.
 */
import { open, type Database } from '../../src/index.ts';
import { formatScript, script, type OracleCase, type OracleView } from './oracle-case.ts';
import { canonicalRows, formatRows, multisetDifference } from './result-multiset.ts';
import { SqliteOracle } from './sqlite-oracle.ts';

function describeError(error: unknown): string {
  if (error instanceof Error) {
    const { code, hint } = error as Error & { code?: unknown; hint?: unknown };
    return `${error.name}${code ? ` [${String(code)}]` : ''}: ${error.message}${hint ? `\n  hint: ${String(hint)}` : ''}`;
  }
  return String(error);
}

async function sluiceRows(db: Database, sql: string): Promise<unknown[][]> {
  const results = await db.execute(sql);
  const rows = results.at(-1)?.rows;
  if (!rows) throw new Error(`Sluice returned no rows for ${sql}`);
  return rows;
}

/** Runs the case on both engines; throws a self-contained bug report at the first difference. */
export async function checkCase(oracle: OracleCase): Promise<void> {
  const steps = script(oracle);
  const sqlite = new SqliteOracle();
  const db = await open();
  let at = 0;
  const report = (what: string) => new Error(`${what}\n\n-- the script up to here:\n${formatScript(steps, at)}\n`);
  const sqliteDo = <T>(what: string, run: () => T): T => {
    try {
      return run();
    } catch (error) {
      throw report(`SQLite refused ${what} (a bug in the oracle's grammar, test/sql/sql-grammar.ts): ${describeError(error)}`);
    }
  };
  const sluiceDo = async <T>(what: string, run: () => Promise<T>): Promise<T> => {
    try {
      return await run();
    } catch (error) {
      throw report(`Sluice failed on ${what}:\n  ${describeError(error)}`);
    }
  };
  const compare = async (view: OracleView, label: string, sql: string, how: string, expected: string[]) => {
    const actual = canonicalRows(await sluiceDo(`${how} ${label}: ${sql}`, () => sluiceRows(db, sql)));
    const { missing, extra } = multisetDifference(expected, actual);
    if (missing.length === 0 && extra.length === 0) return;
    throw report(
      [
        `${how} ${label} differs from SQLite:`,
        `  ${sql}`,
        `view ${view.name}: ${view.sql}`,
        `expected (SQLite, ${expected.length} rows):`,
        formatRows(expected),
        `actual (Sluice, ${actual.length} rows):`,
        formatRows(actual),
        `missing from Sluice:`,
        formatRows(missing),
        `extra in Sluice:`,
        formatRows(extra),
      ].join('\n'),
    );
  };
  try {
    for (; at < steps.length; at++) {
      const step = steps[at]!;
      switch (step.kind) {
        case 'define':
          sqliteDo(step.sql, () => sqlite.execute(step.sql));
          await sluiceDo(step.sql, () => db.execute(step.sql));
          break;
        case 'view': {
          const sql = `CREATE VIEW ${step.view.name} AS ${step.view.sql}`;
          sqliteDo(sql, () => sqlite.defineView(step.view.name, step.view.sql));
          await sluiceDo(sql, () => db.execute(sql));
          break;
        }
        case 'batch':
          for (const statement of step.batch.statements) sqliteDo(statement, () => sqlite.execute(statement));
          if (step.batch.oneCall) {
            const sql = step.batch.statements.map((statement) => `${statement};`).join('\n');
            if (sql !== '') await sluiceDo(`batch ${step.index} (one execute call)`, () => db.execute(sql));
          } else {
            for (const statement of step.batch.statements) await sluiceDo(statement, () => db.execute(statement));
          }
          break;
        case 'check': {
          sqliteDo('recomputing the views', () => sqlite.materializeViews());
          const expected = new Map(step.views.map((view) => [view, canonicalRows(sqlite.rows(`SELECT * FROM ${view.name}`))]));
          for (const view of step.views) await compare(view, step.label, `SELECT * FROM ${view.name}`, `view ${view.name}`, expected.get(view)!);
          if (at === steps.length - 1) {
            for (const view of step.views) await compare(view, step.label, view.sql, `the one-shot query of ${view.name}`, expected.get(view)!);
          }
          break;
        }
      }
    }
  } finally {
    sqlite.close();
    await db.close();
  }
}
