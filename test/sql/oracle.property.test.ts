/**
 * The SQL oracle: on random schemas, views and change sequences, every Sluice view equals its
 * query recomputed from scratch by SQLite (`node:sqlite`) on the same data, after every batch.
 *
 * - Views are created before the changes (maintained incrementally from empty) and some after a
 *   batch (started over existing data); batches go to Sluice statement by statement or in one
 *   `execute` call.
 * - After the last batch each view's query also runs as a one-shot SELECT, which must agree too
 *   (a one-shot right and a view wrong points at incremental maintenance).
 * - Results are compared as multisets (sql-grammar.ts generates no ORDER BY); a Sluice error is a
 *   failure, as is a SQLite error (a bug in the grammar). A failure shrinks and reports the whole
 *   script, the query and both results, ready to paste into a SQL shell.
 *
 * SLUICE_ORACLE_RUNS=N runs N cases (default 300, about 10 s); SLUICE_ORACLE_SEED=S (with the
 * path fast-check prints, SLUICE_ORACLE_PATH=P) replays a failure.
 */
import test from 'node:test';
import fc from 'fast-check';
import { oracleCase } from './oracle-case.ts';
import { checkCase } from './oracle-check.ts';

const runs = Number(process.env.SLUICE_ORACLE_RUNS ?? 300);
const seed = process.env.SLUICE_ORACLE_SEED === undefined ? undefined : Number(process.env.SLUICE_ORACLE_SEED);
const path = process.env.SLUICE_ORACLE_PATH;

test('every view equals SQLite recomputing its query after every batch of random changes', async () => {
  await fc.assert(
    fc.asyncProperty(oracleCase, checkCase),
    { numRuns: runs, ...(seed === undefined ? {} : { seed }), ...(path === undefined ? {} : { path }) },
  );
});
