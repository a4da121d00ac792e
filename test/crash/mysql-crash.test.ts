/**
 * Crash test of a MySQL source (MariaDB 10.11) driven as a user would: `sluice up` runs a pipeline
 * file (CREATE SOURCE shop FROM MYSQL over a hermetic MariaDB, tables shop.orders and
 * shop.customers; views: an aggregate with count and sums, joins, plain projections keyed by id,
 * and an invariant across both tables) and is killed with SIGKILL at random moments, then
 * restarted on the same data directory:
 * - during the initial snapshot (the first few kills, while a writer already runs; an interrupted
 *   MySQL snapshot starts over, by design);
 * - during start-up (about one kill in five: while the log is replayed, or the capture starts);
 * - mostly while a MariaDB writer runs a random workload: inserts, updates, deletes, primary-key
 *   updates, and multi-table transactions (an order's amount always moves with its customer's
 *   `spent`, so sum(spent) = sum(amount) in every committed state), some large (300 rows,
 *   one log record each).
 *
 * The oracle is MariaDB itself: whenever the writer is paused, every view converges to the same
 * query on MariaDB — nothing lost, nothing doubled. Checked after every eighth restart or so, at
 * the end (writer stopped), and after `sluice run` on the same data (which captures what was
 * committed meanwhile and exits; the views, read by `sluice up` at once, are exact). Between
 * checks, every read of the `balance` view that reflects a state past the snapshot must show
 * sum(spent) = sum(amount): a transaction is never half applied, across kills too.
 *
 * SLUICE_MYSQL_CRASH_KILLS sets the kills (default 56); SLUICE_MYSQL_CRASH_SEED replays a run's
 * plan (the workload and the kill times; process timing varies).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import mysql from 'mysql2/promise';
import { startMariadb, type MariadbServer } from '../services/mariadb.ts';
import { Sluice, runSluice, sleep } from './pipeline-process.ts';
import { canonical, compareAll, getJson, killCycles, live, newStats, normalize, readView, sourceOffset } from './source-crash.ts';
import { seededRandom, type Random } from './random.ts';

const killsWanted = Number(process.env.SLUICE_MYSQL_CRASH_KILLS ?? 56);
const seed = Number(process.env.SLUICE_MYSQL_CRASH_SEED ?? Math.floor(Math.random() * 2 ** 32));
const CUSTOMERS = 300;
const ORDERS = 60_000;
/** Kills aimed at the initial snapshot (a MySQL snapshot starts over after each). */
const SNAPSHOT_KILLS = 4;
/** A convergence check after about every this many restarts. */
const CHECK_EVERY = 8;
const CONVERGE_MS = 60_000;
/** Orders inserted by a large transaction (which also changes as many existing ones). */
const LARGE = 150;

process.stdout.write(`mysql crash test: seed ${seed} (SLUICE_MYSQL_CRASH_SEED=${seed} replays it), ${killsWanted} kills\n`);

/** The views, each with the same query on MariaDB (database shop, so `shop.X` as it is). */
const VIEWS: Record<string, string> = {
  totals: `SELECT count(*) AS n, sum(amount) AS amount, sum(qty) AS qty, sum(id) AS ids FROM shop.orders`,
  by_country: `SELECT c.country, count(*) AS n, sum(o.amount) AS amount, sum(o.qty) AS qty FROM shop.orders o JOIN shop.customers c ON c.id = o.customer_id GROUP BY c.country`,
  per_customer: `SELECT c.id, c.name, count(*) AS n, sum(o.qty) AS qty FROM shop.customers c JOIN shop.orders o ON o.customer_id = c.id GROUP BY c.id, c.name`,
  big_orders: `SELECT id, customer_id, amount, qty FROM shop.orders WHERE qty >= 9`,
  customer_list: `SELECT id, name, country, spent FROM shop.customers`,
  balance: `SELECT c.spent AS spent, c.n AS customers, o.amount AS amount, o.n AS orders FROM (SELECT sum(spent) AS spent, count(*) AS n FROM shop.customers) c CROSS JOIN (SELECT sum(amount) AS amount, count(*) AS n FROM shop.orders) o`,
};

function pipelineText(server: MariadbServer): string {
  return [
    `CREATE SOURCE shop FROM MYSQL '${server.url('shop')}' WITH (tables = 'orders, customers');`,
    ...Object.entries(VIEWS).map(([name, sql]) => `CREATE VIEW ${name} AS ${sql};`),
  ].join('\n');
}

// ── Comparing ───────────────────────────────────────────────────────────────────────────────

/** A view's query on MariaDB, normalized as the views' rows are. */
async function expected(server: MariadbServer, sql: string): Promise<string[]> {
  return normalize(await server.query(sql, 'shop'));
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


test(`sluice up over a MariaDB source survives SIGKILL under a MariaDB workload: every view equals MariaDB (${killsWanted} kills)`, { timeout: 600_000 }, async (t: TestContext) => {
  const began = performance.now();
  const plan = seededRandom(seed);
  const server = await startMariadb({ settings: { 'innodb-buffer-pool-size': '128M' } });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-mysql-crash-'));
  const file = path.join(dir, 'shop.sql');
  const data = path.join(dir, 'data');
  const writer = new Writer(server, seededRandom(seed ^ 0x5bd1e995));
  const stats = newStats();
  let sluice: Sluice | undefined;
  let passed = false;
  try {
    await server.createDatabase('shop');
    await server.query(`CREATE TABLE customers (id int PRIMARY KEY, name varchar(100) NOT NULL, country char(2) NOT NULL, spent decimal(14,2) NOT NULL)`, 'shop');
    await server.query(`CREATE TABLE orders (id bigint PRIMARY KEY, customer_id int NOT NULL, amount decimal(10,2) NOT NULL, qty int NOT NULL, KEY (customer_id))`, 'shop');
    await server.query(`INSERT INTO customers SELECT seq, CONCAT('customer ', seq), ELT(seq % 6 + 1, 'DE', 'FR', 'IT', 'ES', 'PT', 'NL'), 0 FROM seq_1_to_${CUSTOMERS}`, 'shop');
    await server.query(`INSERT INTO orders SELECT seq, seq % ${CUSTOMERS} + 1, ((seq * 7919) % 100000) / 100, seq % 10 + 1 FROM seq_1_to_${ORDERS}`, 'shop');
    await server.query(`UPDATE customers c JOIN (SELECT customer_id, sum(amount) AS total FROM orders GROUP BY customer_id) s ON s.customer_id = c.id SET c.spent = s.total`, 'shop');
    fs.writeFileSync(file, pipelineText(server));
    // The writer runs from before the first start: the snapshot is taken under writes.
    writer.start();

    const checkBalance = async (s: Sluice, when: string, snapshotDone: number | undefined) => {
      const answer = await live(s, when, () => readView(s, 'balance'));
      stats.balanceReads++;
      if (snapshotDone === undefined || sourceOffset(answer.position) < snapshotDone) return;
      stats.balanceChecked++;
      const [row] = answer.rows;
      if (answer.rows.length !== 1 || canonical(row!.spent) !== canonical(row!.amount)) {
        assert.fail(`${when}: view balance ${JSON.stringify(answer.rows)} at ${answer.position}: sum(spent) must equal sum(amount) in every state (a transaction was applied in part)`);
      }
    };

    sluice = await killCycles({
      plan, kills: killsWanted, seed, file, data, writer, stats, checkBalance,
      oracle: { product: 'MariaDB', views: VIEWS, expected: (sql) => expected(server, sql), convergeMs: CONVERGE_MS },
      snapshotKills: SNAPSHOT_KILLS, checkEvery: CHECK_EVERY, startupMs: 1400, loadMs: 800,
      started: (started) => (sluice = started),
    });

    // The status names no error; a clean stop exits 0.
    const status = await getJson(`${sluice!.url}/v1/status`);
    const sources = status.sources as Array<{ name: string; error?: unknown }>;
    assert.equal(sources.length, 1);
    assert.equal(sources[0]!.error, undefined, `the source reports an error after converging: ${JSON.stringify(sources[0])}`);
    const code = await sluice!.stop();
    sluice = undefined;
    assert.equal(code, 0, 'the clean stop (SIGTERM) exits 0');

    // `sluice run` on the same data captures what was committed since, processes it and exits;
    // the views (read by `sluice up` at once, before it could capture anything new) are exact.
    await server.query(`BEGIN; INSERT INTO customers VALUES (999999, 'last', 'DE', 12.34); INSERT INTO orders VALUES (99999999, 999999, 12.34, 9); UPDATE orders SET id = id + 50000000 ORDER BY id LIMIT 20; COMMIT`, 'shop');
    const run = await runSluice(['run', file, '--data', data, '--quiet']);
    assert.equal(run.code, 0, `sluice run exited ${run.code}: ${run.stderr.trim().slice(-2000)}`);
    sluice = Sluice.start(file, data);
    if (!(await sluice.ready())) assert.fail(`sluice up after sluice run did not start: ${sluice.stderr.trim().slice(-2000)}`);
    const { problems } = await compareAll({ product: 'MariaDB', views: VIEWS, expected: (sql) => expected(server, sql), convergeMs: CONVERGE_MS }, sluice);
    assert.deepEqual(problems, [], 'after sluice run, the views equal MariaDB');
    assert.equal(await sluice.stop(), 0);
    sluice = undefined;

    const [{ n: orders }] = await server.query(`SELECT count(*) AS n FROM orders`, 'shop');
    const kills = stats.kills.snapshot + stats.kills.startup + stats.kills.load;
    const median = (list: number[]) => Math.round([...list].sort((a, b) => a - b)[Math.floor(list.length / 2)] ?? 0);
    const summary =
      `mysql crash: ${kills} kills (${stats.kills.snapshot} aimed at the snapshot, ${stats.inSnapshot} of them before its end, ${stats.kills.startup} in start-up, ${stats.kills.load} under load), ` +
      `${writer.committed} MariaDB transactions (${[...writer.kinds].map(([k, n]) => `${k} ${n}`).join(', ')}; ${writer.failed} failed), ${ORDERS} + changes → ${orders} orders, ` +
      `${stats.checks} convergence checks (median ${median(stats.convergeMs)} ms), balance invariant checked on ${stats.balanceChecked} of ${stats.balanceReads} reads, ` +
      `restart to listening median ${median(stats.restartMs)} ms (max ${Math.round(Math.max(...stats.restartMs))}), ${((performance.now() - began) / 1000).toFixed(1)} s; seed ${seed}`;
    process.stdout.write(`${summary}\n`);
    t.diagnostic(summary);
    assert.ok(kills >= killsWanted, `${kills} kills for ${killsWanted}`);
    assert.ok(stats.checks >= Math.min(3, Math.floor(killsWanted / CHECK_EVERY)), `only ${stats.checks} convergence checks`);
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
