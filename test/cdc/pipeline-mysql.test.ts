/**
 * Pipelines over a MariaDB source, end to end against a real MariaDB 10.11: CREATE SOURCE … FROM
 * MYSQL, views over `SOURCE.table` that equal the same queries on MariaDB after the snapshot,
 * after changes (updates, primary-key updates, deletes, multi-table transactions, TRUNCATE) and
 * after a restart with changes made while stopped; and the seed's one-liner
 * `sluice 'mysql://…/shop?tables=products | search'` keeping a search index in sync.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { PipelineRuntime } from '../../src/pipeline/runtime.ts';
import { startMariadb, type MariadbServer } from '../services/mariadb.ts';
import { searchPipeFollows } from './search-pipe.ts';

let server: MariadbServer;
let folder: string;

before(async () => {
  server = await startMariadb();
  folder = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-mysql-pipeline-'));
  await server.createDatabase('shop');
  await server.query(`CREATE TABLE shop.customers (id int PRIMARY KEY, name varchar(100), country char(2))`);
  await server.query(`CREATE TABLE shop.orders (id bigint PRIMARY KEY, customer_id int, amount decimal(10,2), placed datetime(3))`);
  await server.query(`INSERT INTO shop.customers SELECT seq, CONCAT('customer ', seq), IF(seq % 3 = 0, 'FR', 'DE') FROM shop.seq_1_to_30`);
  await server.query(`INSERT INTO shop.orders SELECT seq, seq % 30 + 1, (seq % 97) * 1.25, '2024-01-01 10:00:00.5' FROM shop.seq_1_to_20000`);
  await server.query(`CREATE TABLE shop.products (id int PRIMARY KEY, title varchar(200), price decimal(10,2))`);
  await server.query(`INSERT INTO shop.products VALUES (1, 'Walnut desk lamp', 20), (2, 'Free lamp sample', 0), (3, 'Oak lamp shade', 15)`);
});

after(async () => {
  await server?.stop();
  fs.rmSync(folder, { recursive: true, force: true });
});

const QUERIES = {
  by_country: `SELECT c.country, count(*) AS n, sum(o.amount) AS total FROM shop.orders o JOIN shop.customers c ON c.id = o.customer_id GROUP BY c.country`,
  big: `SELECT id, amount FROM shop.orders WHERE amount > 110`,
};

function pipeline(): string {
  return `CREATE SOURCE shop FROM MYSQL '${server.url('shop')}' WITH (tables = 'customers, orders');
${Object.entries(QUERIES).map(([name, sql]) => `CREATE VIEW ${name} AS ${sql};`).join('\n')}`;
}

const text = (rows: Array<Record<string, unknown>>) => rows.map((row) => JSON.stringify(Object.fromEntries(Object.entries(row).map(([k, v]) => [k, v === null ? null : String(v)])))).sort();

async function converges(runtime: PipelineRuntime, what: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const want = await Promise.all(Object.values(QUERIES).map(async (sql) => text(await server.query(sql))));
    const got = Object.keys(QUERIES).map((name) => text(runtime.readView(name, { limit: 100_000 }).rows));
    if (JSON.stringify(got) === JSON.stringify(want)) return;
    if (Date.now() > deadline) assert.fail(`${what}: the views do not converge to MariaDB\n  got  ${JSON.stringify(got[0])}\n  want ${JSON.stringify(want[0])}\n  sources ${JSON.stringify(runtime.status().sources)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

test('views over a MariaDB source equal the same queries on MariaDB, through changes and restarts', async () => {
  const data = path.join(folder, 'data');
  let runtime = await PipelineRuntime.open({ text: pipeline(), file: 'shop.sql', data });
  runtime.start();
  try {
    assert.deepEqual(runtime.relations().filter((r) => r.kind === 'table').map((r) => r.name).sort(), ['shop.customers', 'shop.orders']);
    await converges(runtime, 'after the snapshot');
    await server.query(`UPDATE shop.orders SET amount = amount + 100 WHERE id <= 50`);
    await server.query(`UPDATE shop.orders SET id = id + 100000 WHERE id BETWEEN 60 AND 70`);
    await server.query(`DELETE FROM shop.orders WHERE id BETWEEN 100 AND 500`);
    await server.query(`BEGIN; UPDATE shop.customers SET country = 'IT' WHERE id = 1; INSERT INTO shop.orders VALUES (900000, 1, 112.34, NOW(3)); COMMIT`);
    await converges(runtime, 'after the changes');
    const [source] = runtime.status().sources;
    assert.equal(source!.kind, 'mysql');
    assert.equal(source!.state, 'streaming');
    assert.match(source!.position, /^mariadb-bin\.\d+:\d+ \(0-1-\d+\)$/);
    // Bytes of binlog behind: known while streaming, and none once caught up and idle (writes to
    // other tables and new binlog files included).
    await server.query(`CREATE TABLE IF NOT EXISTS shop.elsewhere (id int PRIMARY KEY); INSERT INTO shop.elsewhere SELECT seq FROM shop.seq_1_to_5000; FLUSH BINARY LOGS`);
    const deadline = Date.now() + 10_000;
    while (runtime.status().sources[0]!.lagBytes !== 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(runtime.status().sources[0]!.lagBytes, 0, JSON.stringify(runtime.status().sources[0]));
  } finally {
    await runtime.close();
  }
  // Changes while stopped arrive after the restart, once.
  await server.query(`UPDATE shop.orders SET amount = 0 WHERE customer_id = 2`);
  await server.query(`TRUNCATE shop.customers`);
  await server.query(`INSERT INTO shop.customers SELECT seq, CONCAT('again ', seq), 'ES' FROM shop.seq_1_to_10`);
  runtime = await PipelineRuntime.open({ text: pipeline(), file: 'shop.sql', data });
  runtime.start();
  try {
    await converges(runtime, 'after a restart');
  } finally {
    await runtime.close();
  }
  // sluice run: everything committed so far, then stop — exact when it returns.
  await server.query(`INSERT INTO shop.orders SELECT seq, 3, 150, NULL FROM shop.seq_300000_to_300999`);
  runtime = await PipelineRuntime.open({ text: pipeline(), file: 'shop.sql', data });
  try {
    await runtime.runToEnd();
    assert.deepEqual(text(runtime.readView('by_country').rows), text(await server.query(QUERIES.by_country)));
  } finally {
    await runtime.close();
  }
});

test("the seed's pipe keeps a search index exactly in sync with a MariaDB table", async () => {
  await searchPipeFollows(server.url('shop'), path.join(folder, 'pipe'), 'shop.products', (sql) => server.query(sql));
});
