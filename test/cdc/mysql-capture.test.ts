/**
 * A MariaDB source captured into the log against a real MariaDB 10.11: a consistent snapshot
 * (without a global read lock) while writes go on, then every committed transaction whole, in
 * binlog order; stopping and starting again resumes exactly; applying the log gives the tables
 * MariaDB has.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { FileLog } from '../../src/log/index.ts';
import { mysqlConfig } from '../../src/sources/mysql/config.ts';
import { MysqlCapture } from '../../src/sources/mysql/connector.ts';
import { decodeSourceRecord, DELETE, SNAPSHOT_END, SNAPSHOT_START, TRANSACTION, TRANSACTION_PART, transactionParts, TRUNCATE, type SourceRecord } from '../../src/sources/records.ts';
import { outputValue, resolveType } from '../../src/sql/index.ts';
import { startMariadb, type MariadbServer } from '../services/mariadb.ts';
import { sourceTopicRecords as logRecords } from './scenario-helpers.ts';

let server: MariadbServer;
let folder: string;

before(async () => {
  server = await startMariadb();
  folder = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-mysql-capture-'));
  await server.createDatabase('shop');
  await server.query(`CREATE TABLE shop.customers (id int PRIMARY KEY, name varchar(100))`);
  await server.query(`CREATE TABLE shop.orders (id bigint PRIMARY KEY, customer_id int, amount decimal(10,2), note text)`);
  await server.query(`INSERT INTO shop.customers SELECT seq, CONCAT('customer ', seq) FROM shop.seq_1_to_50`);
  await server.query(`INSERT INTO shop.orders SELECT seq, seq % 50 + 1, seq * 1.25, NULL FROM shop.seq_1_to_25000`);
});

after(async () => {
  await server?.stop();
  fs.rmSync(folder, { recursive: true, force: true });
});

const config = () => mysqlConfig('shop', server.url('shop'), new Map([['tables', 'customers, orders'], ['server_id', '777']]));

/** Applies the log's records to tables keyed by id, values printed as text. */
function apply(records: SourceRecord[]): Map<string, Map<string, string>> {
  const tables = new Map<string, Map<string, string>>();
  const table = (name: string) => tables.get(name) ?? tables.set(name, new Map()).get(name)!;
  // records[i] is the record at offset i: a transaction written in parts names their offsets.
  const changesOf = (record: SourceRecord) => [...transactionParts(record).map((offset) => records[offset]!), record].flatMap((r) => r.changes.map((change) => ({ change, described: r.tables[change.table]! })));
  for (const record of records) {
    if (record.kind === SNAPSHOT_START) tables.clear();
    if (record.kind === TRANSACTION_PART) continue; // applied with the transaction that names it
    for (const { change, described } of changesOf(record)) {
      const rows = table(described.name);
      if (change.op === TRUNCATE) {
        rows.clear();
        continue;
      }
      const printed = described.columns.map(([, type], i) => (change.row[i] === null || change.row[i] === undefined ? null : outputValue(change.row[i]!, resolveType(type.replace(/\(.*\)$/, '')))));
      if (change.op === DELETE) rows.delete(String(printed[0]));
      else rows.set(String(printed[0]), JSON.stringify(printed));
    }
  }
  return tables;
}

async function mariadbTables(): Promise<Map<string, Map<string, string>>> {
  const out = new Map<string, Map<string, string>>();
  for (const [name, columns] of [['customers', 'id, name'], ['orders', 'id, customer_id, amount, note']] as const) {
    const rows = await server.query(`SELECT ${columns} FROM shop.${name}`);
    out.set(`shop.${name}`, new Map(rows.map((r: Record<string, unknown>) => [String(r.id), JSON.stringify(Object.values(r).map((v) => (v === null ? null : String(v))))])));
  }
  return out;
}

async function converge(log: FileLog, topic: string, what: string, running: Promise<void>): Promise<SourceRecord[]> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    await Promise.race([running, new Promise((resolve) => setTimeout(resolve, 0))]);
    const records = await logRecords(log, topic);
    const got = apply(records);
    const want = await mariadbTables();
    const diff = [...want].flatMap(([name, rows]) => {
      const mine = got.get(name) ?? new Map();
      const differs = [...rows].filter(([key, row]) => mine.get(key) !== row).concat([...mine].filter(([key]) => !rows.has(key)));
      return differs.length ? [`${name}: ${differs.length} rows differ, e.g. ${JSON.stringify(differs[0])} vs ${JSON.stringify(mine.get(differs[0]![0]))}`] : [];
    });
    if (diff.length === 0 && records.some((r) => r.kind === SNAPSHOT_END)) return records;
    if (Date.now() > deadline) assert.fail(`${what}: the log does not converge to MariaDB's tables:\n${diff.join('\n')}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

test('snapshot while writes go on, then every transaction whole and in order; a restart resumes exactly', async () => {
  const log = await FileLog.open(path.join(folder, 'log'));
  let controller = new AbortController();
  let capture = new MysqlCapture(config(), log);
  let writing = true;
  const writer = (async () => {
    for (let i = 0; writing; i++) await server.query(`UPDATE shop.orders SET amount = amount + 1 WHERE id = ${1 + ((i * 7919) % 25000)}; INSERT INTO shop.orders VALUES (${100000 + i}, 1, 2.50, 'during')`);
  })();
  let running = capture.run(controller.signal);
  running.catch(() => {});
  try {
    while (capture.stats.phase !== 'streaming') await Promise.race([running, new Promise((resolve) => setTimeout(resolve, 20))]);
    writing = false;
    await writer;
    let records = await converge(log, capture.topic, 'after the snapshot with writes going on', running);

    await server.query(`UPDATE shop.orders SET note = REPEAT('long note ', 500) WHERE id = 7`);
    await server.query(`UPDATE shop.orders SET id = 30001 WHERE id = 8`);
    await server.query(`DELETE FROM shop.orders WHERE id BETWEEN 100 AND 199`);
    await server.query(`BEGIN; INSERT INTO shop.customers VALUES (51, 'new'); INSERT INTO shop.orders VALUES (30002, 51, 5, 'first'); COMMIT`);
    await server.query(`INSERT INTO shop.orders SELECT seq, 1, 1, NULL FROM shop.seq_40000_to_69999`);
    records = await converge(log, capture.topic, 'after the changes', running);
    const multi = records.find((r) => r.kind === TRANSACTION && r.tables.length === 2)!;
    assert.deepEqual(multi.tables.map((t) => t.name).sort(), ['shop.customers', 'shop.orders']);
    const large = records.find((r) => r.kind === TRANSACTION && transactionParts(r).length > 0)!;
    assert.equal(transactionParts(large).map((offset) => records[offset]!.changes.length).reduce((a, b) => a + b, 0), 30_000, 'the 30,000-row transaction is written in parts that its commit names');

    // Stopped, changes meanwhile (a TRUNCATE and a new column among them), started again.
    controller.abort();
    await running;
    await server.query(`INSERT INTO shop.orders VALUES (90000, 2, 3.5, NULL)`);
    await server.query(`UPDATE shop.customers SET name = 'renamed' WHERE id = 1`);
    await server.query(`TRUNCATE shop.customers`);
    await server.query(`INSERT INTO shop.customers VALUES (1, 'back')`);
    controller = new AbortController();
    capture = new MysqlCapture(config(), log);
    running = capture.run(controller.signal);
    running.catch(() => {});
    records = await converge(log, capture.topic, 'after a restart', running);
    const positions = records.filter((r) => r.kind === TRANSACTION).map((r) => `${r.position.file}:${String(r.position.pos).padStart(12, '0')}`);
    assert.ok(positions.every((p, i) => i === 0 || p > positions[i - 1]!), 'transactions in binlog order, none twice');
    assert.equal(records.filter((r) => r.kind === SNAPSHOT_START).length, 1, 'no second snapshot');
    // caughtUp: everything written before it is in the log when it resolves.
    await server.query(`INSERT INTO shop.customers VALUES (2, 'synced')`);
    await capture.caughtUp();
    assert.ok(apply(await logRecords(log, capture.topic)).get('shop.customers')!.has('2'));
  } finally {
    writing = false;
    await writer.catch(() => {});
    controller.abort();
    await running.catch(() => {});
    await log.close();
  }
});
