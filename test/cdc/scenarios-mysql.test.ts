/**
 * MySQL/MariaDB CDC scenarios end to end, each against a hermetic MariaDB 10.11 (one server for
 * the file, one database and one source per test), each ending with "every view over the source
 * equals the same SELECT on MariaDB":
 *
 * a. the initial snapshot of a large table (300,000 rows) while a writer keeps inserting,
 *    updating, deleting and changing primary keys: the snapshot (a consistent InnoDB read view and
 *    its binlog position) and the binlog stream meet exactly;
 * b. MariaDB killed (SIGKILL, crash recovery at the next start) three times while writers run
 *    transactions: the capture retries by itself (TransientError, backoff), resumes at its binlog
 *    position — across the new binlog file each start opens — and nothing is lost or doubled;
 * c. multi-table transactions (accounts + ledger) are never seen half-applied: a view's
 *    invariant, read every few milliseconds during the load, holds in every observed state;
 * d. a large transaction (200,000 rows inserted by one INSERT … SELECT, with a change to another
 *    table) arrives whole: no read ever sees part of it;
 * e. ALTER TABLE ADD COLUMN and DROP COLUMN mid-stream under a writer: the views that do not use
 *    the column stay exact; a view that reads the dropped column stops with
 *    `source_schema_changed` and the rest of the pipeline runs;
 * f. ALTER TABLE MODIFY (int to varchar) mid-stream, with rows of the new type right after it:
 *    likewise, the view that compares the column with a number stops, the others stay exact;
 * g. columns widened mid-stream (varchar(20) to varchar(60), decimal(10,2) to decimal(12,4)): the
 *    views that read them either still equal MariaDB or stop with `source_schema_changed` — they
 *    never go on silently with NULLs;
 * h. MariaDB killed while the snapshot is read: the capture retries by itself, the snapshot
 *    continues after its last chunk, and the views converge.
 *
 * SLUICE_SCENARIO_SEED replays the writers' choices.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test, type TestContext } from 'node:test';
import mysql from 'mysql2/promise';
import { PipelineRuntime } from '../../src/pipeline/runtime.ts';
import { seededRandom, type Random } from '../crash/random.ts';
import { startMariadb, type MariadbServer } from '../services/mariadb.ts';
import { describeDiff, scenario, sourceStatus, waitFor } from './scenario-helpers.ts';

let server: MariadbServer;
let folder: string;
const seed = Number(process.env.SLUICE_SCENARIO_SEED ?? Math.floor(Math.random() * 2 ** 32));

before(async () => {
  // A bigger buffer pool than the harness's 32M: the 300,000-row tables and the 200,000-row
  // transaction stay in memory.
  server = await startMariadb({ settings: { 'innodb-buffer-pool-size': '256M', 'max-connections': '60', 'innodb-lock-wait-timeout': '5' } });
  folder = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-mysql-scenarios-'));
  process.stdout.write(`mysql scenarios: seed ${seed} (SLUICE_SCENARIO_SEED=${seed} replays the writers' choices)\n`);
});

after(async () => {
  await server?.stop();
  fs.rmSync(folder, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

// ── Helpers ─────────────────────────────────────────────────────────────────────────────────

/** A view of the pipeline and the same query on MariaDB (source tables as `SOURCE.X`). */
interface ViewCheck {
  name: string;
  sql: string;
}

/** A value as text; decimals in canonical form (`12.50`, 12.5 and `12.5` alike). */
function canonical(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  const text = String(value);
  if (/^-?\d+\.\d+$/.test(text)) return text.replace(/0+$/, '').replace(/\.$/, '');
  return text;
}

function normalize(rows: Record<string, unknown>[]): string[] {
  return rows.map((row) => JSON.stringify(Object.fromEntries(Object.entries(row).map(([k, v]) => [k, canonical(v)])))).sort();
}

/** The view's query as MariaDB runs it: `SOURCE.table` is `database`.`table`. */
function mysqlSql(sql: string, source: string, database: string): string {
  return sql.replaceAll(`${source}.`, `\`${database}\`.`);
}

async function expected(database: string, source: string, sql: string): Promise<string[]> {
  return normalize(await server.query(mysqlSql(sql, source, database), database));
}

function actual(runtime: PipelineRuntime, view: string): string[] {
  return normalize(runtime.readView(view, { limit: 10_000_000 }).rows);
}

/** Waits until every view equals MariaDB's answer (MariaDB is quiescent by then). */
async function converges(runtime: PipelineRuntime, database: string, source: string, views: ViewCheck[], what: string, timeoutMs = 60_000): Promise<number> {
  const began = performance.now();
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const problems: string[] = [];
    for (const view of views) {
      const want = await expected(database, source, view.sql);
      let got: string[];
      try {
        got = actual(runtime, view.name);
      } catch (error) {
        problems.push(`${view.name}: ${(error as Error).message}`);
        continue;
      }
      if (JSON.stringify(want) !== JSON.stringify(got)) problems.push(`${view.name}: ${describeDiff(want, got)}`);
    }
    if (problems.length === 0) return performance.now() - began;
    // A source that gave up (state 'failed') will not converge.
    const failed = runtime.status().sources.some((s) => s.state === 'failed');
    if (Date.now() > deadline || failed) {
      assert.fail(`${what}: the views do not converge to MariaDB ${failed ? '(the source failed for good)' : `within ${timeoutMs / 1000} s`}\n  ${problems.join('\n  ')}\n  status.sources ${JSON.stringify(runtime.status().sources)}\n  status.error ${JSON.stringify(runtime.status().error ?? null)}`);
    }
    await sleep(200);
  }
}

function pipelineText(database: string, source: string, tables: string[], views: ViewCheck[]): string {
  return [`CREATE SOURCE ${source} FROM MYSQL '${server.url(database)}' WITH (tables = '${tables.join(', ')}');`, ...views.map((v) => `CREATE VIEW ${v.name} AS ${v.sql};`)].join('\n');
}

async function connect(database: string): Promise<mysql.Connection> {
  const connection = await mysql.createConnection({ host: server.host, port: server.port, user: 'root', database, supportBigNumbers: true, bigNumberStrings: true, connectTimeout: 2_000 });
  // A server restart ends the connection: reported by the failing query, not as an uncaught
  // 'error' event.
  connection.on('error', () => {});
  return connection;
}

/** Rows a statement changed (an UPDATE or DELETE's ResultSetHeader). */
async function affected(connection: mysql.Connection, sql: string, values: unknown[]): Promise<number> {
  const [result] = await connection.query(sql, values);
  return (result as { affectedRows: number }).affectedRows;
}

async function rows<T>(connection: mysql.Connection, sql: string, values: unknown[] = []): Promise<T[]> {
  const [result] = await connection.query(sql, values);
  return result as T[];
}

/**
 * A writer running transactions on its own connection until stopped; after a connection failure
 * (a server restart) it reconnects and goes on. `transaction` runs the statements of one.
 */
function startWriter(database: string, transaction: (connection: mysql.Connection, random: Random) => Promise<void>, random: Random, pauseMs = 0) {
  let stop = false;
  const counts = { committed: 0, failed: 0, reconnects: 0 };
  const errors = new Map<string, number>();
  const done = (async () => {
    let connection: mysql.Connection | undefined;
    while (!stop) {
      try {
        connection ??= await connect(database);
        await connection.query('BEGIN');
        await transaction(connection, random);
        await connection.query('COMMIT');
        counts.committed++;
      } catch (error) {
        // Its fate is MariaDB's to say (the oracle is MariaDB itself): roll back, or reconnect
        // when the connection is gone. (A COMMIT cut by a kill may or may not have committed.)
        counts.failed++;
        const code = String((error as { code?: unknown }).code ?? (error as Error).message.slice(0, 40));
        errors.set(code, (errors.get(code) ?? 0) + 1);
        try {
          if (!connection) throw new Error('no connection');
          await connection.query('ROLLBACK');
        } catch {
          connection?.destroy();
          connection = undefined;
          counts.reconnects++;
          await sleep(50);
        }
      }
      if (pauseMs > 0) await sleep(pauseMs);
    }
    await connection?.end().catch(() => {});
  })();
  return {
    counts,
    errors,
    async stop() {
      stop = true;
      await done;
    },
  };
}

// ── Workloads ───────────────────────────────────────────────────────────────────────────────

const GROUPS = 100;

/**
 * A table `items (id bigint PRIMARY KEY, grp int, val int, pad varchar)` with `count` rows; the
 * writer's transactions make 1–6 random changes: inserts of new keys, updates of val and grp,
 * deletes, and primary-key updates (to a fresh key).
 */
async function createItems(database: string, count: number, padLength: number, extra = ''): Promise<void> {
  await server.createDatabase(database);
  await server.query(`CREATE TABLE items (id bigint PRIMARY KEY, grp int NOT NULL, val int NOT NULL, pad varchar(200)${extra}) ENGINE=InnoDB`, database);
  // The Sequence engine's seq_1_to_N, in batches of 100,000 (smaller transactions).
  for (let from = 1; from <= count; from += 100_000) {
    const to = Math.min(count, from + 99_999);
    await server.query(`INSERT INTO items (id, grp, val, pad) SELECT seq, seq % ${GROUPS}, (seq * 7919) % 1000, REPEAT('x', ${padLength}) FROM seq_${from}_to_${to}`, database);
  }
}

function itemsWriter(count: number) {
  let next = 10_000_000;
  return async (connection: mysql.Connection, r: Random) => {
    const changes = r.integer(1, 6);
    for (let i = 0; i < changes; i++) {
      const id = r.integer(1, count);
      const choice = r.integer(0, 9);
      if (choice <= 2) await connection.query(`INSERT INTO items (id, grp, val, pad) VALUES (?, ?, ?, 'new')`, [next++, r.integer(0, GROUPS - 1), r.integer(0, 999)]);
      else if (choice <= 4) await connection.query(`UPDATE items SET val = val + ? WHERE id = ?`, [r.integer(1, 50), id]);
      else if (choice === 5) await connection.query(`UPDATE items SET grp = ? WHERE id = ?`, [r.integer(0, GROUPS - 1), id]);
      else if (choice <= 7) await connection.query(`DELETE FROM items WHERE id = ?`, [id]);
      else await connection.query(`UPDATE items SET id = ? WHERE id = ?`, [next++, id]);
    }
  };
}

function itemsViews(source: string): ViewCheck[] {
  return [
    { name: 'totals', sql: `SELECT count(*) AS n, sum(id) AS ids, sum(val) AS vals FROM ${source}.items` },
    { name: 'by_group', sql: `SELECT grp, count(*) AS n, sum(val) AS vals, max(id) AS top FROM ${source}.items GROUP BY grp` },
    { name: 'group_seven', sql: `SELECT id, val FROM ${source}.items WHERE grp = 7` },
  ];
}

// ── a. Snapshot of a large table while writes continue ─────────────────────────────────────

test('a: a 300,000-row snapshot taken while a writer inserts, updates, deletes and changes keys converges to MariaDB', { timeout: 240_000 }, scenario(async (t: TestContext) => {
  const database = 'snapshot_under_writes';
  const source = 'a';
  const count = 300_000;
  await createItems(database, count, 20);
  const views = itemsViews(source);
  const random = seededRandom(seed ^ 0xa);
  // The writer runs before the capture starts, all through the snapshot, and a while after.
  const writer = startWriter(database, itemsWriter(count), random);
  await sleep(200);
  const began = performance.now();
  const runtime = await PipelineRuntime.open({ text: pipelineText(database, source, ['items'], views), file: 'a.sql', data: path.join(folder, 'a') });
  runtime.start();
  try {
    const atStart = writer.counts.committed;
    // The snapshot is over once the source reports a position (its end record is in the log).
    await waitFor('the snapshot to end', () => sourceStatus(runtime, source).position !== '' || sourceStatus(runtime, source).state === 'failed', 120_000);
    assert.notEqual(sourceStatus(runtime, source).state, 'failed', `the capture failed: ${JSON.stringify(sourceStatus(runtime, source).error)}`);
    const snapshotMs = performance.now() - began;
    const during = writer.counts.committed - atStart;
    await sleep(1000);
    await writer.stop();
    assert.ok(during > 0, 'the writer committed nothing during the snapshot');
    const convergeMs = await converges(runtime, database, source, views, 'after the snapshot and the concurrent writes', 120_000);
    const [{ n }] = await server.query(`SELECT count(*) AS n FROM items`, database);
    t.diagnostic(`snapshot of ${count} rows in ${Math.round(snapshotMs)} ms with ${during} transactions committed meanwhile (${writer.counts.committed} in all, ${writer.counts.failed} failed); converged ${Math.round(convergeMs)} ms after the writer stopped; ${n} rows now`);
  } finally {
    await writer.stop();
    await runtime.close();
  }
}));

// ── b. MariaDB killed mid-stream ────────────────────────────────────────────────────────────

test('b: MariaDB killed (SIGKILL) three times under a stream of transactions: the capture retries by itself, nothing lost, nothing doubled', { timeout: 240_000 }, scenario(async (t: TestContext) => {
  const database = 'restart_in_stream';
  const source = 'b';
  const count = 5_000;
  await createItems(database, count, 0);
  const views = [...itemsViews(source), { name: 'everything', sql: `SELECT id, grp, val FROM ${source}.items` }];
  const runtime = await PipelineRuntime.open({ text: pipelineText(database, source, ['items'], views), file: 'b.sql', data: path.join(folder, 'b') });
  runtime.start();
  const random = seededRandom(seed ^ 0xb);
  const writers: Array<ReturnType<typeof startWriter>> = [];
  try {
    await converges(runtime, database, source, views, 'after the snapshot');
    // Two writers: small transactions, and now and then a bigger one.
    writers.push(startWriter(database, itemsWriter(count), random));
    writers.push(
      startWriter(
        database,
        async (connection, r) => {
          const from = r.integer(1, count - 400);
          await connection.query(`UPDATE items SET val = val + 1 WHERE id BETWEEN ? AND ?`, [from, from + 399]);
          const base = 20_000_000 + r.integer(0, 10_000) * 200;
          await connection.query(`INSERT IGNORE INTO items (id, grp, val, pad) SELECT ? + seq, seq % ${GROUPS}, 1, 'bulk' FROM seq_0_to_199`, [base]);
        },
        seededRandom(seed ^ 0xbb),
        100,
      ),
    );
    const restarts: number[] = [];
    const states: string[] = [];
    for (let i = 0; i < 3; i++) {
      await sleep(700 + random.integer(0, 800));
      const began = performance.now();
      await server.restart('kill');
      restarts.push(Math.round(performance.now() - began));
      states.push(sourceStatus(runtime, source).state);
    }
    await sleep(1500);
    for (const writer of writers) await writer.stop();
    const convergeMs = await converges(runtime, database, source, views, 'after three kills of MariaDB under load', 90_000);
    const counts = writers.map((w) => w.counts);
    const [{ n }] = await server.query(`SELECT count(*) AS n FROM items`, database);
    const status = sourceStatus(runtime, source);
    t.diagnostic(`restarts took ${restarts.join(', ')} ms; writers ${JSON.stringify(counts)} (errors ${JSON.stringify([...writers[0]!.errors])}); ${n} rows; converged ${Math.round(convergeMs)} ms after the writers stopped; source ${status.state} at ${status.position}`);
    assert.ok(counts[0]!.committed > 0 && counts[0]!.reconnects >= 1, `the writer should have committed and reconnected: ${JSON.stringify(counts[0])}`);
    assert.equal(status.state, 'streaming');
    // Every kill started a new binlog file, and the source reads the last one.
    assert.match(status.position, /^mariadb-bin\.000004:\d+ /, 'the source streams from the binlog file of the fourth server start');
  } finally {
    for (const writer of writers) await writer.stop();
    await runtime.close();
  }
}));

// ── c. Multi-table transactions never seen half-applied ─────────────────────────────────────

test('c: multi-table transactions are never seen half-applied: an invariant across accounts and ledger holds in every observed state', { timeout: 240_000 }, scenario(async (t: TestContext) => {
  const database = 'atomic_transactions';
  const source = 'c';
  const accounts = 200;
  const initial = 1000;
  await server.createDatabase(database);
  await server.query(`CREATE TABLE accounts (id int PRIMARY KEY, balance bigint NOT NULL)`, database);
  await server.query(`CREATE TABLE ledger (id bigint PRIMARY KEY, account int NOT NULL, amount bigint NOT NULL, KEY (account))`, database);
  await server.query(`INSERT INTO accounts SELECT seq, ${initial} FROM seq_1_to_${accounts}`, database);
  await server.query(`INSERT INTO ledger VALUES (0, 0, 0)`, database);
  const constant = accounts * initial;
  // sum(balance) - sum(ledger.amount) = constant, and count(accounts) - (count of ledger rows
  // that opened or closed an account, with sign) = accounts: every transaction keeps both.
  const views: ViewCheck[] = [
    {
      name: 'invariant',
      sql: `SELECT a.total AS total, a.n AS n, l.total AS ledger_total, l.opened AS opened, l.entries AS entries FROM (SELECT sum(balance) AS total, count(*) AS n FROM ${source}.accounts) a CROSS JOIN (SELECT sum(amount) AS total, sum(CASE WHEN id < 0 THEN 1 WHEN account < 0 THEN -1 ELSE 0 END) AS opened, count(*) AS entries FROM ${source}.ledger) l`,
    },
    { name: 'balances', sql: `SELECT sum(balance) AS total, count(*) AS n FROM ${source}.accounts` },
    { name: 'ledger_totals', sql: `SELECT sum(amount) AS total, count(*) AS entries FROM ${source}.ledger` },
    { name: 'per_account', sql: `SELECT a.id, a.balance, count(l.id) AS entries FROM ${source}.accounts a LEFT JOIN ${source}.ledger l ON l.account = a.id GROUP BY a.id, a.balance` },
  ];
  const runtime = await PipelineRuntime.open({ text: pipelineText(database, source, ['accounts', 'ledger'], views), file: 'c.sql', data: path.join(folder, 'c') });
  runtime.start();
  let ledgerId = 1;
  let openedId = -1;
  let nextAccount = accounts + 1;
  /** One transaction: a transfer between two accounts, a deposit with its ledger row, and now and then an account opened, closed or renumbered, or a batch of 200 of these. */
  const transaction = async (connection: mysql.Connection, r: Random) => {
    const batch = r.chance(0.05) ? 200 : 1;
    for (let i = 0; i < batch; i++) {
      const ids = (await rows<{ id: number }>(connection, `SELECT id FROM accounts WHERE id >= ? ORDER BY id LIMIT 2`, [r.integer(1, nextAccount)])).map((row) => row.id);
      if (ids.length < 2) continue;
      if (r.chance(0.5)) ids.reverse();
      const amount = r.integer(1, 300);
      // An account another transaction closed (or renumbered) meanwhile: roll back.
      const change = async (id: number, delta: number) => {
        if ((await affected(connection, `UPDATE accounts SET balance = balance + ? WHERE id = ?`, [delta, id])) !== 1) throw new Error(`account ${id} is gone`);
      };
      await change(ids[0]!, -amount);
      await change(ids[1]!, amount);
      const deposit = r.integer(-50, 100);
      await change(ids[1]!, deposit === 0 ? 1 : deposit);
      await connection.query(`INSERT INTO ledger VALUES (?, ?, ?)`, [ledgerId++, ids[1], deposit === 0 ? 1 : deposit]);
      if (r.chance(0.1)) {
        // Open an account with its opening deposit (the ledger row's negative id marks an opening).
        const balance = r.integer(1, 500);
        await connection.query(`INSERT INTO accounts VALUES (?, ?)`, [nextAccount++, balance]);
        await connection.query(`INSERT INTO ledger VALUES (?, 0, ?)`, [openedId--, balance]);
      } else if (r.chance(0.08)) {
        // Close one: its balance leaves with it (account -1 marks a closing).
        const [row] = await rows<{ balance: string }>(connection, `DELETE FROM accounts WHERE id = ? RETURNING balance`, [ids[0]]);
        if (row) await connection.query(`INSERT INTO ledger VALUES (?, -1, ?)`, [ledgerId++, -Number(row.balance)]);
      } else if (r.chance(0.05)) {
        // Renumber one (a primary-key update): its ledger rows follow in the same transaction.
        const to = nextAccount++;
        await connection.query(`UPDATE accounts SET id = ? WHERE id = ?`, [to, ids[0]]);
        await connection.query(`UPDATE ledger SET account = ? WHERE account = ?`, [to, ids[0]]);
      }
    }
  };
  const violations: string[] = [];
  const observed = { reads: 0, states: new Set<string>(), positions: new Set<string>() };
  /** Checks one observed state of the views (all read in the same tick, so at one position). */
  const observe = () => {
    const invariant = runtime.readView('invariant', { limit: 10 });
    const balances = runtime.readView('balances', { limit: 10 });
    const ledger = runtime.readView('ledger_totals', { limit: 10 });
    observed.reads++;
    observed.positions.add(invariant.position);
    if (invariant.rows.length === 0) return; // before the snapshot
    const [row] = invariant.rows as Array<Record<string, unknown>>;
    const total = Number(row!.total);
    const ledgerTotal = Number(row!.ledger_total);
    const n = Number(row!.n);
    const opened = Number(row!.opened);
    observed.states.add(`${total}|${ledgerTotal}|${n}|${row!.entries}`);
    if (invariant.rows.length !== 1 || total - ledgerTotal !== constant || n - opened !== accounts) {
      violations.push(`view invariant at ${invariant.position}: ${JSON.stringify(invariant.rows)} (want total - ledger_total = ${constant} and n - opened = ${accounts})`);
    }
    const b = balances.rows[0];
    const l = ledger.rows[0];
    if (balances.position !== invariant.position || ledger.position !== invariant.position) violations.push(`views read in one tick answer different positions: ${invariant.position}, ${balances.position}, ${ledger.position}`);
    if (!b || !l || Number(b.total) - Number(l.total) !== constant || Number(b.total) !== total || Number(l.total) !== ledgerTotal || Number(b.n) !== n || Number(l.entries) !== Number(row!.entries)) {
      violations.push(`views balances ${JSON.stringify(balances.rows)} and ledger_totals ${JSON.stringify(ledger.rows)} read in one tick with invariant ${JSON.stringify(invariant.rows)}: sum(balance) - sum(amount) must be ${constant}, and all three must agree`);
    }
  };
  const writers: Array<ReturnType<typeof startWriter>> = [];
  let polling = false;
  let poller: Promise<void> = Promise.resolve();
  try {
    // The snapshot is applied table by table (a partial snapshot is visible, by design): the
    // invariant is checked from the first state that equals MariaDB on.
    await converges(runtime, database, source, views, 'after the snapshot');
    polling = true;
    poller = (async () => {
      while (polling) {
        try {
          observe();
        } catch (error) {
          violations.push(`reading the views failed: ${(error as Error).message}`);
        }
        await sleep(2);
      }
    })();
    // Two writers: transactions interleave in MariaDB (deadlocks and lock waits just fail one).
    writers.push(startWriter(database, transaction, seededRandom(seed ^ 0xc)));
    writers.push(startWriter(database, transaction, seededRandom(seed ^ 0xcc)));
    await sleep(8_000);
    for (const writer of writers) await writer.stop();
    const convergeMs = await converges(runtime, database, source, views, 'after the transfers');
    polling = false;
    await poller;
    observe();
    const counts = writers.map((w) => w.counts);
    t.diagnostic(`${observed.reads} reads saw ${observed.states.size} distinct states at ${observed.positions.size} positions; writers ${JSON.stringify(counts)}; converged ${Math.round(convergeMs)} ms after they stopped; ${violations.length} violations`);
    assert.deepEqual(violations.slice(0, 10), [], `${violations.length} observed states broke the invariant`);
    assert.ok(observed.reads >= 500, `only ${observed.reads} reads`);
    assert.ok(observed.states.size >= 50, `only ${observed.states.size} distinct states observed: the views did not move while polled`);
  } finally {
    polling = false;
    await poller.catch(() => {});
    for (const writer of writers) await writer.stop();
    await runtime.close();
  }
}));

// ── d. A large transaction arrives whole ────────────────────────────────────────────────────

test('d: a 200,000-row transaction (one INSERT … SELECT and a change to another table) arrives whole: no read sees part of it', { timeout: 240_000 }, scenario(async (t: TestContext) => {
  const database = 'large_transaction';
  const source = 'd';
  const count = 20_000;
  const large = 200_000;
  await createItems(database, count, 10);
  await server.query(`CREATE TABLE batches (id int PRIMARY KEY, n int NOT NULL)`, database);
  await server.query(`INSERT INTO batches VALUES (1, 0)`, database);
  const views: ViewCheck[] = [
    ...itemsViews(source),
    // The batch count moves with the rows in one transaction: n = rows in the batch, always.
    { name: 'batch', sql: `SELECT b.n AS declared, i.n AS present FROM (SELECT n FROM ${source}.batches WHERE id = 1) b CROSS JOIN (SELECT count(*) AS n FROM ${source}.items WHERE pad = 'batch') i` },
  ];
  const runtime = await PipelineRuntime.open({ text: pipelineText(database, source, ['items', 'batches'], views), file: 'd.sql', data: path.join(folder, 'd') });
  runtime.start();
  const writer = startWriter(database, itemsWriter(count), seededRandom(seed ^ 0xd), 5);
  const seen = new Set<string>();
  const violations: string[] = [];
  let reads = 0;
  let polling = false;
  let poller: Promise<void> = Promise.resolve();
  try {
    await converges(runtime, database, source, views, 'after the snapshot');
    polling = true;
    poller = (async () => {
      while (polling) {
        try {
          const { rows: got, position } = runtime.readView('batch', { limit: 10 });
          reads++;
          const row = got[0];
          const state = row ? `${row.declared}/${row.present}` : 'none';
          seen.add(state);
          if (!row || Number(row.declared) !== Number(row.present) || (Number(row.present) !== 0 && Number(row.present) !== large)) violations.push(`view batch at ${position}: ${JSON.stringify(got)} (want 0/0 or ${large}/${large})`);
        } catch (error) {
          violations.push(`reading the view failed: ${(error as Error).message}`);
        }
        await sleep(2);
      }
    })();
    await sleep(500);
    const began = performance.now();
    await server.query(`BEGIN; INSERT INTO items (id, grp, val, pad) SELECT 50000000 + seq, seq % ${GROUPS}, seq % 1000, 'batch' FROM seq_1_to_${large}; UPDATE batches SET n = n + ${large} WHERE id = 1; COMMIT`, database);
    const committedMs = performance.now() - began;
    await waitFor('the large transaction to reach the view', () => seen.has(`${large}/${large}`) || sourceStatus(runtime, source).state === 'failed', 120_000, 20);
    const arrivedMs = performance.now() - began;
    await sleep(500);
    await writer.stop();
    const convergeMs = await converges(runtime, database, source, views, 'after the large transaction', 120_000);
    polling = false;
    await poller;
    t.diagnostic(`the ${large}-row transaction committed in ${Math.round(committedMs)} ms and was in the views ${Math.round(arrivedMs)} ms after it began; ${reads} reads saw states ${JSON.stringify([...seen])}; writer ${JSON.stringify(writer.counts)}; converged ${Math.round(convergeMs)} ms after the writer stopped`);
    assert.deepEqual(violations.slice(0, 10), [], `${violations.length} reads saw part of the large transaction`);
    assert.ok(seen.has('0/0') && seen.has(`${large}/${large}`), `states seen ${JSON.stringify([...seen])}`);
  } finally {
    polling = false;
    await poller.catch(() => {});
    await writer.stop();
    await runtime.close();
  }
}));

// ── e. ALTER TABLE ADD / DROP COLUMN mid-stream ─────────────────────────────────────────────

/** A table `items` with two more columns (`legacy`, `weight`), views that use them, and the runtime over it. */
async function schemaScenario(database: string, source: string) {
  const count = 20_000;
  await createItems(database, count, 5, ', legacy varchar(20), weight int');
  await server.query(`UPDATE items SET legacy = CONCAT('old ', id), weight = id % 500`, database);
  const exact = itemsViews(source);
  const views: ViewCheck[] = [
    ...exact,
    { name: 'legacy', sql: `SELECT id, legacy FROM ${source}.items WHERE id < 10` },
    { name: 'heavy', sql: `SELECT count(*) AS n FROM ${source}.items WHERE weight > 250` },
  ];
  const runtime = await PipelineRuntime.open({ text: pipelineText(database, source, ['items'], views), file: `${source}.sql`, data: path.join(folder, source) });
  runtime.start();
  await waitFor('the snapshot to end', () => sourceStatus(runtime, source).position !== '' || sourceStatus(runtime, source).state === 'failed', 60_000);
  return { count, exact, views, runtime, failure: (view: string) => runtime.status().views.find((v) => v.name === view)?.failure };
}

test('e: ADD COLUMN and DROP COLUMN mid-stream under a writer: views that do not use the column stay exact, the one that reads the dropped column stops with source_schema_changed', { timeout: 240_000 }, scenario(async (t: TestContext) => {
  const database = 'add_drop_column';
  const source = 'e';
  const { count, exact, views, runtime, failure } = await schemaScenario(database, source);
  const writer = startWriter(database, itemsWriter(count), seededRandom(seed ^ 0xe), 2);
  try {
    await sleep(300);
    // ADD COLUMN mid-stream, then rows that fill it at once (the writer keeps going).
    await server.query(`ALTER TABLE items ADD COLUMN color varchar(10); INSERT INTO items (id, grp, val, color) VALUES (900001, 7, 1, 'red'); UPDATE items SET color = 'blue', val = val + 1 WHERE id <= 50`, database);
    await sleep(300);
    assert.equal(failure('legacy'), undefined, 'an added column stops nothing');
    // DROP COLUMN mid-stream: "legacy" reads it, so it stops (keeping its last rows); the rest run.
    await server.query(`ALTER TABLE items DROP COLUMN legacy; INSERT INTO items (id, grp, val, color) VALUES (900002, 7, 2, 'green'); DELETE FROM items WHERE id BETWEEN 100 AND 120`, database);
    await sleep(300);
    await writer.stop();
    const convergeMs = await converges(runtime, database, source, [...exact, views.find((v) => v.name === 'heavy')!], 'after ADD COLUMN and DROP COLUMN under a writer', 60_000);
    const [status] = runtime.status().sources;
    t.diagnostic(`writer ${JSON.stringify(writer.counts)}; converged ${Math.round(convergeMs)} ms after it stopped; schema changes ${JSON.stringify(status!.schemaChanges)}; view failures ${JSON.stringify(runtime.status().views.filter((v) => v.failure).map((v) => [v.name, v.failure]))}`);
    assert.equal(status!.state, 'streaming', `the source: ${JSON.stringify(status)}`);
    for (const view of [...exact, { name: 'heavy' }]) assert.equal(failure(view.name), undefined, `view ${view.name} does not use the changed columns`);
    const dropped = failure('legacy');
    assert.equal(dropped?.code, 'source_schema_changed', `view legacy reads the dropped column: ${JSON.stringify(dropped)}`);
    assert.match(dropped!.message, /view "legacy" no longer compiles after e\.items changed at the source \(dropped legacy/);
    assert.throws(() => runtime.readView('legacy'), (error: Error & { code?: string }) => error.code === 'view_failed' && /dropped legacy/.test(error.message));
    assert.deepEqual(
      status!.schemaChanges.map((c) => [c.added, c.dropped, c.retyped, c.stoppedViews]),
      [
        [['color'], [], [], []],
        [[], ['legacy'], [], ['legacy']],
      ],
    );
  } finally {
    await writer.stop();
    await runtime.close();
  }
}));

// ── f. ALTER TABLE MODIFY (a column's type) mid-stream ──────────────────────────────────────

test('f: MODIFY a column to another type mid-stream under a writer: views that do not use it stay exact, the one that compares it with a number stops with source_schema_changed', { timeout: 240_000 }, scenario(async (t: TestContext) => {
  const database = 'modify_column';
  const source = 'f';
  const { count, exact, runtime, failure } = await schemaScenario(database, source);
  const writer = startWriter(database, itemsWriter(count), seededRandom(seed ^ 0xf), 2);
  try {
    await sleep(300);
    // "heavy" compares weight with a number; as text it no longer compiles. Rows written right
    // after the ALTER carry the new type.
    await server.query(`ALTER TABLE items MODIFY weight varchar(20); UPDATE items SET weight = 'heavy', val = val * 2 WHERE id BETWEEN 200 AND 260`, database);
    await sleep(300);
    await writer.stop();
    const convergeMs = await converges(runtime, database, source, [...exact, { name: 'legacy', sql: `SELECT id, legacy FROM ${source}.items WHERE id < 10` }], 'after MODIFY COLUMN under a writer', 60_000);
    const [status] = runtime.status().sources;
    t.diagnostic(`writer ${JSON.stringify(writer.counts)}; converged ${Math.round(convergeMs)} ms after it stopped; schema changes ${JSON.stringify(status!.schemaChanges)}`);
    assert.equal(status!.state, 'streaming', `the source: ${JSON.stringify(status)}`);
    for (const view of [...exact, { name: 'legacy' }]) assert.equal(failure(view.name), undefined, `view ${view.name} does not use the retyped column`);
    assert.equal(failure('heavy')?.code, 'source_schema_changed', `view heavy compares the retyped column with a number: ${JSON.stringify(failure('heavy'))}`);
    assert.deepEqual(status!.schemaChanges.map((c) => [c.added, c.dropped, c.retyped, c.stoppedViews]), [[[], [], ['weight'], ['heavy']]]);
    assert.match(status!.schemaChanges[0]!.position, /^[\w.-]+:\d+/, 'the change names the binlog position where it took effect');
  } finally {
    await writer.stop();
    await runtime.close();
  }
}));

// ── g. A column widened mid-stream ──────────────────────────────────────────────────────────

test('g: columns widened mid-stream (varchar(20) to varchar(60), decimal(10,2) to decimal(12,4)): every view that reads them equals MariaDB or stops with source_schema_changed, never silently NULL', { timeout: 240_000 }, scenario(async (t: TestContext) => {
  const database = 'widen_column';
  const source = 'g';
  const count = 20_000;
  await createItems(database, count, 5, ', label varchar(20), price decimal(10,2)');
  await server.query(`UPDATE items SET label = CONCAT('label ', id), price = (id % 1000) / 4`, database);
  const exact = itemsViews(source);
  const widened: ViewCheck[] = [
    { name: 'labels', sql: `SELECT id, label FROM ${source}.items WHERE grp = 3` },
    { name: 'prices', sql: `SELECT grp, sum(price) AS total, count(price) AS priced FROM ${source}.items GROUP BY grp` },
  ];
  const runtime = await PipelineRuntime.open({ text: pipelineText(database, source, ['items'], [...exact, ...widened]), file: `${source}.sql`, data: path.join(folder, source) });
  runtime.start();
  const failure = (view: string) => runtime.status().views.find((v) => v.name === view)?.failure;
  const writer = startWriter(database, itemsWriter(count), seededRandom(seed ^ 0x9), 2);
  try {
    await waitFor('the snapshot to end', () => sourceStatus(runtime, source).position !== '' || sourceStatus(runtime, source).state === 'failed', 60_000);
    await sleep(300);
    await server.query(`ALTER TABLE items MODIFY label varchar(60), MODIFY price decimal(12,4)`, database);
    await sleep(500);
    // Rows written after the ALTER, well after the capture described the table again.
    await server.query(`UPDATE items SET label = CONCAT('longer label for ', id), price = price + 0.1234 WHERE grp = 3 AND id < 5000; INSERT INTO items (id, grp, val, label, price) VALUES (900001, 3, 1, 'a new and longer label', 12.3456)`, database);
    await sleep(300);
    await writer.stop();
    const convergeMs = await converges(runtime, database, source, exact, 'after the ALTER (views that do not read the widened columns)', 60_000);
    const [status] = runtime.status().sources;
    // The views that read the widened columns: exact, or stopped with the reason.
    const problems: string[] = [];
    for (const view of widened) {
      const stopped = failure(view.name);
      if (stopped) {
        if (stopped.code !== 'source_schema_changed') problems.push(`${view.name} stopped with ${JSON.stringify(stopped)}`);
        continue;
      }
      const want = await expected(database, source, view.sql);
      const got = actual(runtime, view.name);
      if (JSON.stringify(want) !== JSON.stringify(got)) problems.push(`${view.name} runs (no failure in the status) but differs from MariaDB: ${describeDiff(want, got)}`);
    }
    t.diagnostic(`writer ${JSON.stringify(writer.counts)}; converged ${Math.round(convergeMs)} ms after it stopped; schema changes ${JSON.stringify(status!.schemaChanges)}; view failures ${JSON.stringify(runtime.status().views.filter((v) => v.failure).map((v) => [v.name, v.failure]))}`);
    assert.equal(status!.state, 'streaming', `the source: ${JSON.stringify(status)}`);
    assert.deepEqual(problems, [], 'a view over a widened column neither follows MariaDB nor says it stopped');
  } finally {
    await writer.stop();
    await runtime.close();
  }
}));

// ── h. MariaDB killed while the snapshot is read ───────────────────────────────────────────

test('h: MariaDB killed (SIGKILL) while the snapshot is read: the capture retries by itself, the snapshot continues after its last chunk and the views converge', { timeout: 240_000 }, scenario(async (t: TestContext) => {
  const database = 'restart_in_snapshot';
  const source = 'h';
  const count = 400_000;
  await createItems(database, count, 60);
  const views = itemsViews(source);
  const runtime = await PipelineRuntime.open({ text: pipelineText(database, source, ['items'], views), file: 'h.sql', data: path.join(folder, 'h') });
  const began = performance.now();
  let closeHung = false;
  runtime.start();
  try {
    // Kill once the snapshot has begun writing rows to the log (or after 300 ms at most).
    const startedAt = Date.now();
    await waitFor('the snapshot to start', () => (sourceStatus(runtime, source).snapshot?.rows ?? 0) > 0 || Date.now() - startedAt > 300, 5_000, 5);
    const before = sourceStatus(runtime, source);
    const inSnapshot = before.position === '';
    t.diagnostic(`killing MariaDB ${Math.round(performance.now() - began)} ms after start; source status then ${JSON.stringify(before)}`);
    await server.restart('kill');
    assert.ok(inSnapshot, `the snapshot was over before the kill (${JSON.stringify(before)}): make the table bigger`);
    // Changes after the restart reach the views too.
    await server.query(`BEGIN; UPDATE items SET val = val + 1 WHERE id % 1000 = 3; DELETE FROM items WHERE id % 5000 = 1; UPDATE items SET id = id + 1000000 WHERE id % 7000 = 2; INSERT INTO items (id, grp, val, pad) SELECT seq, seq % ${GROUPS}, 5, 'late' FROM seq_2000001_to_2000500; COMMIT`, database);
    const convergeMs = await converges(runtime, database, source, views, 'after a kill during the snapshot', 45_000);
    t.diagnostic(`converged ${Math.round(convergeMs)} ms after the restart; status ${JSON.stringify(sourceStatus(runtime, source))}`);
    // And the capture streams after that.
    await server.query(`UPDATE items SET grp = 7 WHERE id % 997 = 0`, database);
    await converges(runtime, database, source, views, 'after changes that follow the recovered snapshot', 60_000);
  } finally {
    // A capture stuck in its snapshot would keep close() waiting: the test says so, and ends.
    const closed = await Promise.race([runtime.close().then(() => true), sleep(15_000).then(() => false)]);
    if (!closed) t.diagnostic(`runtime.close() did not return within 15 s; source status ${JSON.stringify(sourceStatus(runtime, source))}`);
    closeHung = !closed;
  }
  assert.ok(!closeHung, 'runtime.close() did not return within 15 s');
}));
