/**
 * Crash test of a MySQL source (MariaDB 10.11) driven as a user would: `sluice up` runs a pipeline
 * file (CREATE SOURCE shop FROM MYSQL over a hermetic MariaDB, tables shop.orders and
 * shop.customers; views: an aggregate with count and sums, joins, plain projections keyed by id,
 * and an invariant across both tables) and is killed with SIGKILL at random moments, then
 * restarted on the same data directory. Two pipelines, one after the other, each on its own data
 * directory, cover both snapshot modes:
 * - most kills on a source declared with snapshot = 'watermark' (DBLog: the binlog streams from
 *   the start while the tables are read in small primary-key chunks between watermarks written to
 *   shop.sluice_watermark, the writer meanwhile changing the rows being chunked);
 * - a shorter run on a source declared with snapshot = 'consistent' (MariaDB's consistent
 *   snapshot, in small chunks), so that its resume is killed too.
 * Each run kills `sluice up`:
 * - during the initial snapshot (its first kills, while a writer already runs; an interrupted
 *   snapshot continues after the last chunk it logged);
 * - during start-up (about one kill in five: while the log is replayed, or the capture starts);
 * - mostly while a MariaDB writer runs a random workload: inserts, updates, deletes, primary-key
 *   updates, and multi-table transactions (an order's amount always moves with its customer's
 *   `spent`, so sum(spent) = sum(amount) in every committed state), some large (300 rows,
 *   one log record each).
 *
 * The oracle is MariaDB itself: whenever the writer is paused, every view converges to the same
 * query on MariaDB — nothing lost, nothing doubled. Checked after every eighth restart or so, at
 * the end of each run (writer paused, then stopped), and after `sluice run` on each data directory
 * (which captures what was committed meanwhile and exits; the views, read by `sluice up` at once,
 * are exact). Between checks, every read of the `balance` view that reflects a state past the
 * snapshot must show sum(spent) = sum(amount): a transaction is never half applied, across kills
 * too. At the end, with no sluice running, each source topic (`source.shop` in each data
 * directory) shows the snapshots were continued, never started over: one snapshot start record,
 * per table chunks whose last keys (and rows' keys) strictly increase across all the kills, the
 * last one alone complete, and one snapshot end; a watermark snapshot has transactions between its
 * start and end, a consistent one none; no transaction is written twice.
 *
 * SLUICE_MYSQL_CRASH_KILLS sets the kills (default 56, about one in seven in the consistent run);
 * SLUICE_MYSQL_CRASH_SEED replays a run's plan (the workload and the kill times; process timing
 * varies).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import mysql from 'mysql2/promise';
import { FileLog } from '../../src/log/index.ts';
import { decodeSourceRecord, SNAPSHOT_END, SNAPSHOT_ROWS, SNAPSHOT_START, TRANSACTION, type SourceRecord } from '../../src/sources/records.ts';
import { startMariadb, type MariadbServer } from '../services/mariadb.ts';
import { Sluice, runSluice, sleep } from './pipeline-process.ts';
import { canonical, compareAll, getJson, killCycles, live, newStats, normalize, readView, sourceOffset, type Oracle, type Stats } from './source-crash.ts';
import { seededRandom, type Random } from './random.ts';

const killsWanted = Number(process.env.SLUICE_MYSQL_CRASH_KILLS ?? 56);
const seed = Number(process.env.SLUICE_MYSQL_CRASH_SEED ?? Math.floor(Math.random() * 2 ** 32));
const CUSTOMERS = 300;
const ORDERS = 60_000;
/** The snapshot modes, each run with its pipeline file and data directory. */
type Mode = 'watermark' | 'consistent';
/** The kills of the consistent run (the rest are the watermark run's). */
const CONSISTENT_KILLS = Math.min(killsWanted, Math.max(2, Math.round(killsWanted / 7)));
const KILLS: Record<Mode, number> = { watermark: killsWanted - CONSISTENT_KILLS, consistent: CONSISTENT_KILLS };
/** Kills aimed at the initial snapshot (it continues after the last chunk logged). */
const SNAPSHOT_KILLS: Record<Mode, number> = { watermark: 8, consistent: 4 };
/** Rows per snapshot chunk (chunk_rows): small, so that kills land between chunks of a table being written to. */
const CHUNK_ROWS: Record<Mode, number> = { watermark: 1000, consistent: 2000 };
/** A convergence check after about every this many restarts. */
const CHECK_EVERY = 8;
const CONVERGE_MS = 60_000;
/** Orders inserted by a large transaction (which also changes as many existing ones). */
const LARGE = 150;

process.stdout.write(`mysql crash test: seed ${seed} (SLUICE_MYSQL_CRASH_SEED=${seed} replays it), ${killsWanted} kills (${KILLS.watermark} with a watermark snapshot, ${KILLS.consistent} with a consistent one)\n`);

/** The views, each with the same query on MariaDB (database shop, so `shop.X` as it is). */
const VIEWS: Record<string, string> = {
  totals: `SELECT count(*) AS n, sum(amount) AS amount, sum(qty) AS qty, sum(id) AS ids FROM shop.orders`,
  by_country: `SELECT c.country, count(*) AS n, sum(o.amount) AS amount, sum(o.qty) AS qty FROM shop.orders o JOIN shop.customers c ON c.id = o.customer_id GROUP BY c.country`,
  per_customer: `SELECT c.id, c.name, count(*) AS n, sum(o.qty) AS qty FROM shop.customers c JOIN shop.orders o ON o.customer_id = c.id GROUP BY c.id, c.name`,
  big_orders: `SELECT id, customer_id, amount, qty FROM shop.orders WHERE qty >= 9`,
  customer_list: `SELECT id, name, country, spent FROM shop.customers`,
  balance: `SELECT c.spent AS spent, c.n AS customers, o.amount AS amount, o.n AS orders FROM (SELECT sum(spent) AS spent, count(*) AS n FROM shop.customers) c CROSS JOIN (SELECT sum(amount) AS amount, count(*) AS n FROM shop.orders) o`,
};

function pipelineText(server: MariadbServer, mode: Mode): string {
  return [
    `CREATE SOURCE shop FROM MYSQL '${server.url('shop')}' WITH (tables = 'orders, customers', snapshot = '${mode}', chunk_rows = '${CHUNK_ROWS[mode]}');`,
    ...Object.entries(VIEWS).map(([name, sql]) => `CREATE VIEW ${name} AS ${sql};`),
  ].join('\n');
}

// ── Comparing ───────────────────────────────────────────────────────────────────────────────

/** A view's query on MariaDB, normalized as the views' rows are. */
async function expected(server: MariadbServer, sql: string): Promise<string[]> {
  return normalize(await server.query(sql, 'shop'));
}

// ── The source topic ────────────────────────────────────────────────────────────────────────

/** Every record of the topic `source.shop` in a data directory (read while no sluice runs there). */
async function sourceRecords(data: string): Promise<SourceRecord[]> {
  const log = await FileLog.open(path.join(data, 'log'));
  try {
    const topic = 'source.shop';
    const out: SourceRecord[] = [];
    const [end] = await log.endOffsets(topic);
    for (let offset = 0; offset < end!; ) {
      const { records } = await log.read(topic, 0, offset);
      for (const r of records) out.push(decodeSourceRecord(r.value!, `${data}: ${topic}@${r.offset}`));
      offset = records.at(-1)!.offset + 1;
    }
    return out;
  } finally {
    await log.close();
  }
}

/** Integer keys (as numbers, bigints or text) in order. */
function compareKeys(a: readonly unknown[], b: readonly unknown[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = BigInt(a[i] as string | number | bigint) - BigInt(b[i] as string | number | bigint);
    if (d !== 0n) return d < 0n ? -1 : 1;
  }
  return 0;
}

/**
 * Checks the snapshot a source topic holds, after all the kills of its run: it was started once
 * (one start record: a continued snapshot never starts over) and ended once; per table, its
 * chunks' `after` keys strictly increase, and their rows' keys too, over the whole log (no chunk
 * read twice, none skipped back), each chunk's rows at or before its `after` key and after the
 * previous one's, and only the table's last chunk complete; a watermark snapshot has
 * transactions (marked `snapshot`) between its start and end, a consistent one none; no
 * transaction is in the log twice. Returns what it counted.
 */
function checkSourceLog(records: SourceRecord[], mode: Mode): { chunks: Record<string, number>; inSnapshot: number; transactions: number } {
  const where = `source.shop of the ${mode} run`;
  const starts = records.flatMap((r, i) => (r.kind === SNAPSHOT_START ? [i] : []));
  const ends = records.flatMap((r, i) => (r.kind === SNAPSHOT_END ? [i] : []));
  assert.equal(starts.length, 1, `${where}: ${starts.length} snapshot start records (at ${starts.join(', ')}): an interrupted snapshot must continue, not start over`);
  assert.equal(ends.length, 1, `${where}: ${ends.length} snapshot end records (at ${ends.join(', ')})`);
  const [start] = starts as [number];
  const [end] = ends as [number];
  assert.ok(start < end, `${where}: the snapshot ends (offset ${end}) before it starts (offset ${start})`);
  assert.equal(records[start]!.position.mode, mode, `${where}: the snapshot start record names mode ${String(records[start]!.position.mode)}`);
  const chunks: Record<string, number> = {};
  for (const table of ['shop.orders', 'shop.customers']) {
    const offsets = records.flatMap((r, i) => (r.kind === SNAPSHOT_ROWS && String(r.position.table ?? r.tables[0]?.name) === table ? [i] : []));
    chunks[table] = offsets.length;
    assert.ok(offsets.length > 0, `${where}: no snapshot chunks of ${table}`);
    let previousAfter: unknown[] | undefined;
    let previousRow: unknown[] | undefined;
    offsets.forEach((offset, i) => {
      const chunk = records[offset]!;
      const what = `${where}: ${table}'s chunk ${i} of ${offsets.length} (offset ${offset})`;
      assert.ok(offset > start && offset < end, `${what} lies outside the snapshot (${start} to ${end})`);
      assert.equal(chunk.position.complete === true, i === offsets.length - 1, `${what} says complete = ${String(chunk.position.complete)}`);
      assert.ok(chunk.changes.length <= CHUNK_ROWS[mode], `${what} has ${chunk.changes.length} rows, more than chunk_rows = ${CHUNK_ROWS[mode]}`);
      // A table's last chunk may have found nothing more to read: it then repeats the previous
      // chunk's key. Every other chunk moves the key on.
      const closing = chunk.position.complete === true && chunk.changes.length === 0;
      const after = chunk.position.after as unknown[] | undefined;
      assert.ok(Array.isArray(after) && after.length === 1, `${what} names no after key: ${JSON.stringify(chunk.position)}`);
      if (previousAfter) {
        assert.ok(compareKeys(previousAfter, after) < (closing ? 1 : 0), `${what}: its after key ${JSON.stringify(after)} does not follow the previous chunk's ${JSON.stringify(previousAfter)} (a chunk read twice, or out of order)`);
      }
      for (const change of chunk.changes) {
        const key = change.row.slice(0, 1);
        if (previousRow) assert.ok(compareKeys(previousRow, key) < 0, `${what}: row ${JSON.stringify(key)} after row ${JSON.stringify(previousRow)} (a row read twice, or out of order)`);
        if (previousAfter) assert.ok(compareKeys(previousAfter, key) < 0, `${what}: row ${JSON.stringify(key)} at or before the previous chunk's after key ${JSON.stringify(previousAfter)}`);
        assert.ok(compareKeys(key, after) <= 0, `${what}: row ${JSON.stringify(key)} beyond its after key ${JSON.stringify(after)}`);
        previousRow = key;
      }
      previousAfter = after;
    });
  }
  const inside = records.slice(start, end).filter((r) => r.kind === TRANSACTION);
  if (mode === 'watermark') {
    assert.ok(inside.length > 0, `${where}: no transaction between the snapshot's start (${start}) and end (${end}), although the writer ran throughout`);
    assert.ok(inside.every((r) => r.position.snapshot === true), `${where}: a transaction inside the snapshot is not marked snapshot: true`);
  } else {
    assert.equal(inside.length, 0, `${where}: ${inside.length} transactions between the start (${start}) and end (${end}) of a consistent snapshot`);
  }
  // Binlog order, none twice (a transaction read again after a kill is not written again).
  const transactions = records.flatMap((r, i) => (r.kind === TRANSACTION ? [{ i, at: `${String(r.position.file)}:${String(r.position.pos).padStart(12, '0')}` }] : []));
  const twice = transactions.findIndex((t, i) => i > 0 && t.at <= transactions[i - 1]!.at);
  assert.equal(twice, -1, `${where}: transactions out of binlog order or written twice: ${JSON.stringify(transactions.slice(Math.max(0, twice - 1), twice + 1))}`);
  return { chunks, inSnapshot: inside.length, transactions: transactions.length };
}

// ── The MariaDB workload ────────────────────────────────────────────────────────────────────

const COUNTRIES = ['DE', 'FR', 'IT', 'ES', 'PT', 'NL'];

function money(r: Random): string {
  const cents = r.integer(1, 99_999);
  return `${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, '0')}`;
}

type Connection = mysql.Connection;

async function rows<T>(connection: Connection, sql: string, values: unknown[] = []): Promise<T[]> {
  const [result] = await connection.query(sql, values);
  return result as T[];
}

/**
 * A writer on its own connection: random transactions until stopped, pausable (a paused writer
 * has no transaction open, so MariaDB is quiescent). Every change to an order's amount or
 * customer changes the customers' `spent` in the same transaction.
 */
class Writer {
  readonly #server: MariadbServer;
  readonly #random: Random;
  #connection: Connection | undefined;
  #stop = false;
  #paused = false;
  #idle: (() => void) | undefined;
  #resume: (() => void) | undefined;
  #done: Promise<void> | undefined;
  #nextOrder = 10_000_000;
  #nextCustomer = 100_000;
  committed = 0;
  failed = 0;
  readonly kinds = new Map<string, number>();

  constructor(server: MariadbServer, random: Random) {
    this.#server = server;
    this.#random = random;
  }

  start(): void {
    this.#done = this.#loop();
  }

  async #loop(): Promise<void> {
    while (!this.#stop) {
      if (this.#paused) {
        this.#idle?.();
        await new Promise<void>((resolve) => (this.#resume = resolve));
        continue;
      }
      try {
        if (!this.#connection) {
          const connection = await mysql.createConnection({ host: this.#server.host, port: this.#server.port, user: 'root', database: 'shop', supportBigNumbers: true, bigNumberStrings: true });
          connection.on('error', () => {});
          this.#connection = connection;
        }
        await this.#connection.query('BEGIN');
        const kind = await this.#transaction(this.#connection, this.#random);
        await this.#connection.query('COMMIT');
        this.committed++;
        this.kinds.set(kind, (this.kinds.get(kind) ?? 0) + 1);
      } catch (error) {
        // Deadlocks and lock wait timeouts fail a transaction now and then: MariaDB rolls it back.
        this.failed++;
        if (this.failed > 200) throw new Error(`the MariaDB writer failed ${this.failed} times; the last: ${(error as Error).message}`);
        await this.#connection?.query('ROLLBACK').catch(() => {
          this.#connection?.destroy();
          this.#connection = undefined;
        });
      }
      await sleep(this.#random.integer(0, 6));
    }
    await this.#connection?.end().catch(() => {});
  }

  async #randomOrder(connection: Connection): Promise<{ id: string; customer_id: number; amount: string } | undefined> {
    const [row] = await rows<{ id: string; customer_id: number; amount: string }>(connection, `SELECT id, customer_id, amount FROM orders WHERE id >= ? ORDER BY id LIMIT 1`, [this.#random.integer(1, ORDERS + 1000)]);
    return row;
  }

  async #randomCustomer(connection: Connection): Promise<number | undefined> {
    const [row] = await rows<{ id: number }>(connection, `SELECT id FROM customers WHERE id >= ? ORDER BY id LIMIT 1`, [this.#random.integer(1, CUSTOMERS)]);
    return row?.id;
  }

  async #insertOrder(connection: Connection, r: Random, customer: number): Promise<void> {
    const amount = money(r);
    await connection.query(`INSERT INTO orders VALUES (?, ?, ?, ?)`, [this.#nextOrder++, customer, amount, r.integer(1, 10)]);
    await connection.query(`UPDATE customers SET spent = spent + ? WHERE id = ?`, [amount, customer]);
  }

  /** One transaction's statements; returns its kind. */
  async #transaction(connection: Connection, r: Random): Promise<string> {
    const choice = r.integer(0, 99);
    const customer = await this.#randomCustomer(connection);
    if (customer === undefined) return 'none';
    if (choice < 30) {
      for (let i = r.integer(1, 3); i > 0; i--) await this.#insertOrder(connection, r, customer);
      return 'insert';
    }
    const order = await this.#randomOrder(connection);
    if (!order) return 'none';
    if (choice < 45) {
      const amount = money(r);
      await connection.query(`UPDATE orders SET amount = ?, qty = ? WHERE id = ?`, [amount, r.integer(1, 10), order.id]);
      await connection.query(`UPDATE customers SET spent = spent - ? + ? WHERE id = ?`, [order.amount, amount, order.customer_id]);
      return 'update';
    }
    if (choice < 58) {
      await connection.query(`DELETE FROM orders WHERE id = ?`, [order.id]);
      await connection.query(`UPDATE customers SET spent = spent - ? WHERE id = ?`, [order.amount, order.customer_id]);
      return 'delete';
    }
    if (choice < 68) {
      await connection.query(`UPDATE orders SET id = ? WHERE id = ?`, [this.#nextOrder++, order.id]);
      return 'order key update';
    }
    if (choice < 78) {
      // The order moves to another customer, with its amount.
      await connection.query(`UPDATE orders SET customer_id = ? WHERE id = ?`, [customer, order.id]);
      await connection.query(`UPDATE customers SET spent = spent - ? WHERE id = ?`, [order.amount, order.customer_id]);
      await connection.query(`UPDATE customers SET spent = spent + ? WHERE id = ?`, [order.amount, customer]);
      return 'move';
    }
    if (choice < 84) {
      await connection.query(`UPDATE customers SET country = ?, name = CONCAT(name, '+') WHERE id = ?`, [COUNTRIES[r.integer(0, COUNTRIES.length - 1)], customer]);
      return 'customer update';
    }
    if (choice < 88) {
      // A customer's key changes; its orders follow in the same transaction.
      const to = this.#nextCustomer++;
      await connection.query(`UPDATE customers SET id = ? WHERE id = ?`, [to, customer]);
      await connection.query(`UPDATE orders SET customer_id = ? WHERE customer_id = ?`, [to, customer]);
      return 'customer key update';
    }
    if (choice < 92) {
      // A new customer with a first order.
      const id = this.#nextCustomer++;
      await connection.query(`INSERT INTO customers VALUES (?, ?, ?, 0)`, [id, `customer ${id}`, COUNTRIES[r.integer(0, COUNTRIES.length - 1)]]);
      await this.#insertOrder(connection, r, id);
      return 'new customer';
    }
    if (choice < 94) {
      // A customer leaves with its orders.
      await connection.query(`DELETE FROM orders WHERE customer_id = ?`, [customer]);
      await connection.query(`DELETE FROM customers WHERE id = ?`, [customer]);
      return 'customer delete';
    }
    // A large transaction: many new orders (one multi-row INSERT), the customer's spent, and
    // changes to existing orders.
    const values: unknown[] = [];
    let total = 0;
    for (let i = 0; i < LARGE; i++) {
      const amount = money(r);
      total += Math.round(Number(amount) * 100);
      values.push(this.#nextOrder++, customer, amount, r.integer(1, 10));
    }
    await connection.query(`INSERT INTO orders VALUES ${Array.from({ length: LARGE }, () => '(?, ?, ?, ?)').join(', ')}`, values);
    await connection.query(`UPDATE customers SET spent = spent + ? WHERE id = ?`, [(total / 100).toFixed(2), customer]);
    const from = r.integer(1, ORDERS);
    await connection.query(`UPDATE orders SET qty = qty % 10 + 1 WHERE id BETWEEN ? AND ?`, [from, from + LARGE]);
    return 'large';
  }

  /** Resolves once no transaction is open and none will start until resume(). */
  pause(): Promise<void> {
    this.#paused = true;
    const idle = new Promise<void>((resolve) => (this.#idle = resolve));
    return Promise.race([idle, this.#done!]);
  }

  resume(): void {
    this.#paused = false;
    this.#idle = undefined;
    this.#resume?.();
    this.#resume = undefined;
  }

  async stop(): Promise<void> {
    this.#stop = true;
    this.resume();
    await this.#done;
  }
}

// ── The test ────────────────────────────────────────────────────────────────────────────────


test(`sluice up over a MariaDB source survives SIGKILL under a MariaDB workload, watermark and consistent snapshots alike: every view equals MariaDB (${killsWanted} kills)`, { timeout: 600_000 }, async (t: TestContext) => {
  const began = performance.now();
  const plan = seededRandom(seed);
  const server = await startMariadb({ settings: { 'innodb-buffer-pool-size': '128M' } });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-mysql-crash-'));
  const modes: Mode[] = ['watermark', 'consistent'];
  /** Each run: its pipeline file, data directory, statistics and duration. */
  const runs = Object.fromEntries(modes.map((mode) => [mode, { file: path.join(dir, `shop-${mode}.sql`), data: path.join(dir, `data-${mode}`), stats: newStats(), ms: 0 }])) as Record<Mode, { file: string; data: string; stats: Stats; ms: number }>;
  const writer = new Writer(server, seededRandom(seed ^ 0x5bd1e995));
  let sluice: Sluice | undefined;
  let passed = false;
  try {
    await server.createDatabase('shop');
    await server.query(`CREATE TABLE customers (id int PRIMARY KEY, name varchar(100) NOT NULL, country char(2) NOT NULL, spent decimal(14,2) NOT NULL)`, 'shop');
    await server.query(`CREATE TABLE orders (id bigint PRIMARY KEY, customer_id int NOT NULL, amount decimal(10,2) NOT NULL, qty int NOT NULL, KEY (customer_id))`, 'shop');
    // Where a watermark snapshot writes its low and high watermarks (the default watermark_table).
    await server.query(`CREATE TABLE sluice_watermark (source varchar(64) PRIMARY KEY, mark varchar(64) NOT NULL)`, 'shop');
    await server.query(`INSERT INTO customers SELECT seq, CONCAT('customer ', seq), ELT(seq % 6 + 1, 'DE', 'FR', 'IT', 'ES', 'PT', 'NL'), 0 FROM seq_1_to_${CUSTOMERS}`, 'shop');
    await server.query(`INSERT INTO orders SELECT seq, seq % ${CUSTOMERS} + 1, ((seq * 7919) % 100000) / 100, seq % 10 + 1 FROM seq_1_to_${ORDERS}`, 'shop');
    await server.query(`UPDATE customers c JOIN (SELECT customer_id, sum(amount) AS total FROM orders GROUP BY customer_id) s ON s.customer_id = c.id SET c.spent = s.total`, 'shop');
    for (const mode of modes) fs.writeFileSync(runs[mode].file, pipelineText(server, mode));
    // The writer runs from before the first start: the snapshots are taken under writes.
    writer.start();
    const oracle: Oracle = { product: 'MariaDB', views: VIEWS, expected: (sql) => expected(server, sql), convergeMs: CONVERGE_MS };

    const checkBalance = (stats: Stats) => async (s: Sluice, when: string, snapshotDone: number | undefined) => {
      const answer = await live(s, when, () => readView(s, 'balance'));
      stats.balanceReads++;
      if (snapshotDone === undefined || sourceOffset(answer.position) < snapshotDone) return;
      stats.balanceChecked++;
      const [row] = answer.rows;
      if (answer.rows.length !== 1 || canonical(row!.spent) !== canonical(row!.amount)) {
        assert.fail(`${when}: view balance ${JSON.stringify(answer.rows)} at ${answer.position}: sum(spent) must equal sum(amount) in every state (a transaction was applied in part)`);
      }
    };

    // The watermark run, then the consistent run, each from an empty data directory. The
    // watermark run ends with the writer paused (resumed for the consistent run's snapshot); the
    // consistent run's end stops it.
    for (const mode of modes) {
      const run = runs[mode];
      const last = mode === modes.at(-1);
      const runBegan = performance.now();
      try {
        sluice = await killCycles({
          plan, kills: KILLS[mode], seed, file: run.file, data: run.data, stats: run.stats, checkBalance: checkBalance(run.stats),
          writer: last ? writer : { pause: () => writer.pause(), resume: () => writer.resume(), stop: async () => {} },
          oracle, snapshotKills: SNAPSHOT_KILLS[mode], checkEvery: CHECK_EVERY, startupMs: 1400, loadMs: 800,
          started: (started) => (sluice = started),
        });
        // The status names no error; a clean stop exits 0.
        const status = await getJson(`${sluice.url}/v1/status`);
        const sources = status.sources as Array<{ name: string; error?: unknown }>;
        assert.equal(sources.length, 1);
        assert.equal(sources[0]!.error, undefined, `the source reports an error after converging: ${JSON.stringify(sources[0])}`);
        const code = await sluice.stop();
        sluice = undefined;
        assert.equal(code, 0, 'the clean stop (SIGTERM) exits 0');
      } catch (error) {
        (error as Error).message = `the ${mode} run: ${(error as Error).message}`;
        throw error;
      }
      run.ms = performance.now() - runBegan;
      if (!last) writer.resume();
    }

    // `sluice run` on each data directory captures what was committed since, processes it and
    // exits; the views (read by `sluice up` at once, before it could capture anything new) are exact.
    const endBegan = performance.now();
    await server.query(`BEGIN; INSERT INTO customers VALUES (999999, 'last', 'DE', 12.34); INSERT INTO orders VALUES (99999999, 999999, 12.34, 9); UPDATE orders SET id = id + 50000000 ORDER BY id LIMIT 20; COMMIT`, 'shop');
    for (const mode of modes) {
      const { file, data } = runs[mode];
      const run = await runSluice(['run', file, '--data', data, '--quiet']);
      assert.equal(run.code, 0, `the ${mode} run: sluice run exited ${run.code}: ${run.stderr.trim().slice(-2000)}`);
      sluice = Sluice.start(file, data);
      if (!(await sluice.ready())) assert.fail(`the ${mode} run: sluice up after sluice run did not start: ${sluice.stderr.trim().slice(-2000)}`);
      const { problems } = await compareAll(oracle, sluice);
      assert.deepEqual(problems, [], `the ${mode} run: after sluice run, the views equal MariaDB`);
      assert.equal(await sluice.stop(), 0);
      sluice = undefined;
    }

    // The source topics, read with no sluice running: each snapshot continued across its kills.
    const logs = {} as Record<Mode, ReturnType<typeof checkSourceLog>>;
    for (const mode of modes) logs[mode] = checkSourceLog(await sourceRecords(runs[mode].data), mode);
    const endMs = performance.now() - endBegan;

    const [{ n: orders }] = await server.query(`SELECT count(*) AS n FROM orders`, 'shop');
    const median = (list: number[]) => Math.round([...list].sort((a, b) => a - b)[Math.floor(list.length / 2)] ?? 0);
    const killsOf = (stats: Stats) => stats.kills.snapshot + stats.kills.startup + stats.kills.load;
    const kills = modes.reduce((sum, mode) => sum + killsOf(runs[mode].stats), 0);
    const described = modes.map((mode) => {
      const { stats, ms } = runs[mode];
      const log = logs[mode];
      return (
        `${mode} run: ${killsOf(stats)} kills (${stats.kills.snapshot} aimed at the snapshot, ${stats.inSnapshot} of them before its end, ${stats.kills.startup} in start-up, ${stats.kills.load} under load), ` +
        `snapshot chunks ${Object.entries(log.chunks).map(([table, n]) => `${table} ${n}`).join(', ')} (chunk_rows ${CHUNK_ROWS[mode]}), ${log.inSnapshot} transactions inside the snapshot, ${log.transactions} in all, ` +
        `${stats.checks} convergence checks (median ${median(stats.convergeMs)} ms), balance invariant checked on ${stats.balanceChecked} of ${stats.balanceReads} reads, ` +
        `restart to listening median ${median(stats.restartMs)} ms (max ${Math.round(Math.max(...stats.restartMs))}), ${(ms / 1000).toFixed(1)} s`
      );
    });
    const summary =
      `mysql crash: ${kills} kills; ${described.join('; ')}; ` +
      `${writer.committed} MariaDB transactions (${[...writer.kinds].map(([k, n]) => `${k} ${n}`).join(', ')}; ${writer.failed} failed), ${ORDERS} + changes → ${orders} orders, ` +
      `sluice run, up and the source topics' checks ${(endMs / 1000).toFixed(1)} s, ${((performance.now() - began) / 1000).toFixed(1)} s in all; seed ${seed}`;
    process.stdout.write(`${summary}\n`);
    t.diagnostic(summary);
    assert.ok(kills >= killsWanted, `${kills} kills for ${killsWanted}`);
    for (const mode of modes) {
      const { stats } = runs[mode];
      assert.ok(stats.checks >= Math.max(1, Math.min(3, Math.floor(KILLS[mode] / CHECK_EVERY))), `the ${mode} run: only ${stats.checks} convergence checks`);
    }
    passed = true;
  } finally {
    await writer.stop().catch(() => {});
    if (sluice) {
      sluice.kill();
      await sluice.exited;
    }
    await server.stop();
    if (passed) fs.rmSync(dir, { recursive: true, force: true });
    else process.stdout.write(`mysql crash test: data kept in ${dir} (seed ${seed})\n`);
  }
});
