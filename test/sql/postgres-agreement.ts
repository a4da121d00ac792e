/**
 * Checks the oracle itself: on random cases of the grammar, SQLite and a real PostgreSQL must
 * accept every statement and agree on every view after every batch. A disagreement is a bug in
 * the grammar (it left the common ground of the two), not in Sluice.
 *
 * Not part of `npm test` (it needs a running PostgreSQL). Run by hand after changing the grammar:
 *
 *   node test/sql/postgres-agreement.ts [RUNS [LIMITS]]   # PGHOST, PGPORT, PGUSER, PGDATABASE as for psql
 *
 * LIMITS is JSON overriding DEFAULT_CASE_LIMITS (oracle-case.ts), e.g. '{"queryDepth":3}'.
 */
import { spawnSync } from 'node:child_process';
import fc from 'fast-check';
import { DEFAULT_CASE_LIMITS, oracleCases, script, formatScript, type OracleCase } from './oracle-case.ts';
import { SqliteOracle } from './sqlite-oracle.ts';
import { formatRows, multisetDifference } from './result-multiset.ts';


/** A SQLite row as JSON, as PostgreSQL's json_agg writes one. */
function asJson(row: readonly unknown[]): string {
  return JSON.stringify(row.map((value) => (typeof value === 'bigint' ? Number(value) : value)));
}

/** Runs the case in a fresh schema; returns each check's rows per view, or the error psql reported. */
export function runPostgres(oracle: OracleCase): { results: Map<string, string[]> } | { error: string } {
  const lines = [
    '\\set ON_ERROR_STOP 1',
    'SET client_min_messages = warning;',
    'DROP SCHEMA IF EXISTS oracle CASCADE;',
    'CREATE SCHEMA oracle;',
    'SET search_path = oracle;',
  ];
  for (const step of script(oracle)) {
    if (step.kind === 'define') lines.push(`${step.sql};`);
    else if (step.kind === 'view') lines.push(`CREATE VIEW ${step.view.name} AS ${step.view.sql};`);
    else if (step.kind === 'batch') for (const statement of step.batch.statements) lines.push(`${statement};`);
    else
      for (const view of step.views) {
        lines.push(`\\echo '#${step.label}/${view.name}'`);
        lines.push(`SELECT (SELECT json_agg(value) FROM json_each(row_to_json(v)))::text FROM ${view.name} AS v;`);
      }
  }
  const run = spawnSync('psql', ['-X', '-q', '-A', '-t'], { input: lines.join('\n'), encoding: 'utf8' });
  if (run.status !== 0) return { error: run.stderr.trim() };
  const results = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const line of run.stdout.split('\n')) {
    if (line.startsWith('#')) results.set(line.slice(1), (current = []));
    else if (line !== '') current?.push(JSON.stringify(JSON.parse(line)));
  }
  for (const rows of results.values()) rows.sort();
  return { results };
}

export function runSqlite(oracle: OracleCase): { results: Map<string, string[]> } | { error: string } {
  const sqlite = new SqliteOracle();
  const results = new Map<string, string[]>();
  try {
    for (const step of script(oracle)) {
      if (step.kind === 'define') sqlite.execute(step.sql);
      else if (step.kind === 'view') sqlite.defineView(step.view.name, step.view.sql);
      else if (step.kind === 'batch') for (const statement of step.batch.statements) sqlite.execute(statement);
      else {
        sqlite.materializeViews();
        for (const view of step.views) {
          const rows = sqlite.rows(`SELECT * FROM ${view.name}`).map(asJson);
          results.set(`${step.label}/${view.name}`, rows.sort());
        }
      }
    }
    return { results };
  } catch (error) {
    return { error: (error as Error).message };
  } finally {
    sqlite.close();
  }
}

if (import.meta.main) {
  const runs = Number(process.argv[2] ?? 300);
  const limits = { ...DEFAULT_CASE_LIMITS, ...JSON.parse(process.argv[3] ?? '{}') };
  fc.assert(
    fc.property(oracleCases(limits), (oracle) => {
      const report = (what: string) => `${what}\n\n${formatScript(script(oracle))}`;
      const postgres = runPostgres(oracle);
      const sqlite = runSqlite(oracle);
      if ('error' in postgres) throw new Error(report(`PostgreSQL refused the case: ${postgres.error}`));
      if ('error' in sqlite) throw new Error(report(`SQLite refused the case: ${sqlite.error}`));
      for (const [key, expected] of postgres.results) {
        const actual = sqlite.results.get(key) ?? [];
        const { missing, extra } = multisetDifference(expected, actual);
        if (missing.length > 0 || extra.length > 0) {
          const view = oracle.views.find((v) => v.name === key.split('/')[1])!;
          throw new Error(report(`PostgreSQL and SQLite disagree on ${key}: ${view.sql}\nonly PostgreSQL:\n${formatRows(missing)}\nonly SQLite:\n${formatRows(extra)}`));
        }
      }
    }),
    { numRuns: runs },
  );
  console.log(`${runs} cases: PostgreSQL and SQLite agree`);
}
