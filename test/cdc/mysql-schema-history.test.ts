/**
 * Schema history for a MariaDB source: rows are read with the table's columns as they were when
 * each row was written (the binlog's table maps), not as the server describes the table now. The
 * capture is stopped while ALTER TABLE statements run between writes, then started again: every
 * transaction record must describe the columns of its own moment and hold the values written.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { FileLog } from '../../src/log/index.ts';
import { mysqlConfig } from '../../src/sources/mysql/config.ts';
import { MysqlCapture } from '../../src/sources/mysql/connector.ts';
import { decodeSourceRecord, SNAPSHOT_END, TRANSACTION, type SourceRecord } from '../../src/sources/records.ts';
import { outputValue, resolveType } from '../../src/sql/index.ts';
import { startMariadb, type MariadbServer } from '../services/mariadb.ts';
import { sourceTopicRecords as records } from './scenario-helpers.ts';

let server: MariadbServer;
let folder: string;

before(async () => {
  server = await startMariadb();
  folder = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-mysql-history-'));
});

after(async () => {
  await server?.stop();
  fs.rmSync(folder, { recursive: true, force: true });
});

/** A transaction's one row as {column: printed value}, with its columns' type labels. */
function rowOf(record: SourceRecord): { columns: string[]; values: Record<string, string | null> } {
  const table = record.tables[0]!;
  const change = record.changes.at(-1)!;
  const values: Record<string, string | null> = {};
  table.columns.forEach(([name, type], i) => (values[name] = change.row[i] === null ? null : outputValue(change.row[i]!, resolveType(type.replace(/\(.*\)$/, '')))));
  return { columns: table.columns.map(([name, type]) => `${name} ${type}`), values };
}

test('rows written before and after ALTER TABLE statements each read with the columns of their moment, though the capture starts after all of them', async () => {
  await server.createDatabase('hist');
  await server.query(`CREATE TABLE hist.t (id int PRIMARY KEY, a int, b varchar(10), d int)`);
  await server.query(`INSERT INTO hist.t VALUES (1, 10, 'one', 20230101)`);
  const log = await FileLog.open(path.join(folder, 'log'));
  const config = mysqlConfig('hist', server.url('hist'), new Map([['tables', 't']]));
  let controller = new AbortController();
  let capture = new MysqlCapture(config, log);
  let running = capture.run(controller.signal);
  await capture.caughtUp();
  controller.abort();
  await running;
  assert.ok((await records(log, capture.topic)).some((r) => r.kind === SNAPSHOT_END));

  // While Sluice is stopped: writes between schema changes of every kind.
  await server.query(`INSERT INTO hist.t VALUES (2, 20, 'two', 20230102)`);
  await server.query(`ALTER TABLE hist.t ADD COLUMN c bigint`);
  await server.query(`INSERT INTO hist.t VALUES (3, 30, 'three', 20230103, 3000000000)`);
  await server.query(`ALTER TABLE hist.t DROP COLUMN a`);
  await server.query(`INSERT INTO hist.t VALUES (4, 'four', 20230104, 4)`);
  await server.query(`ALTER TABLE hist.t RENAME COLUMN b TO bb`);
  await server.query(`INSERT INTO hist.t VALUES (5, 'five', 20230105, 5)`);
  // d: int → date (another kind: a value written before must not be read as a date).
  await server.query(`UPDATE hist.t SET d = 20240101 WHERE id = 5`);
  await server.query(`ALTER TABLE hist.t MODIFY d date`);
  await server.query(`INSERT INTO hist.t VALUES (6, 'six', '2024-06-30', 6)`);

  controller = new AbortController();
  capture = new MysqlCapture(config, log);
  running = capture.run(controller.signal);
  running.catch(() => {});
  try {
    await capture.caughtUp();
    const transactions = (await records(log, capture.topic)).filter((r) => r.kind === TRANSACTION).map(rowOf);
    assert.equal(transactions.length, 6, 'six transactions written while stopped');
    const [two, three, four, five, fiveDate, six] = transactions as [ReturnType<typeof rowOf>, ReturnType<typeof rowOf>, ReturnType<typeof rowOf>, ReturnType<typeof rowOf>, ReturnType<typeof rowOf>, ReturnType<typeof rowOf>];
    assert.deepEqual(two.columns.map((c) => c.split(' ')[0]), ['id', 'a', 'b', 'd'], 'before ADD COLUMN: no c');
    assert.deepEqual(two.values, { id: '2', a: '20', b: 'two', d: '20230102' });
    assert.deepEqual(three.columns.map((c) => c.split(' ')[0]), ['id', 'a', 'b', 'd', 'c']);
    assert.deepEqual(three.values, { id: '3', a: '30', b: 'three', d: '20230103', c: '3000000000' });
    assert.deepEqual(four.values, { id: '4', b: 'four', d: '20230104', c: '4' }, 'after DROP COLUMN a: no a');
    assert.deepEqual(five.values, { id: '5', bb: 'five', d: '20230105', c: '5' }, 'after RENAME COLUMN: bb');
    assert.deepEqual(fiveDate.values, { id: '5', bb: 'five', d: '20240101', c: '5' }, 'd still an int before MODIFY');
    assert.ok(fiveDate.columns.includes('d integer'), `d read as an integer before MODIFY: ${fiveDate.columns.join(', ')}`);
    assert.deepEqual(six.values, { id: '6', bb: 'six', d: '2024-06-30', c: '6' });
    assert.ok(six.columns.includes('d date'), `d read as a date after MODIFY: ${six.columns.join(', ')}`);
    assert.ok(six.columns.includes('bb character varying(10)'), `a column the server describes keeps its declared type: ${six.columns.join(', ')}`);
  } finally {
    controller.abort();
    await running.catch(() => {});
    await log.close();
  }
});

test('an online schema change (a copy altered, then RENAME TABLE swapping it in, as gh-ost and pt-online-schema-change do) is followed: rows after the swap carry the new column and equal the table; rows not written since keep the columns they had (the new one reads NULL in Sluice, as after ADD COLUMN … DEFAULT)', async () => {
  await server.createDatabase('osc');
  await server.query(`CREATE TABLE osc.items (id int PRIMARY KEY, name varchar(20))`);
  await server.query(`INSERT INTO osc.items SELECT seq, CONCAT('item ', seq) FROM osc.seq_1_to_200`);
  const log = await FileLog.open(path.join(folder, 'log-osc'));
  const config = mysqlConfig('osc', server.url('osc'), new Map([['tables', 'items']]));
  const controller = new AbortController();
  const capture = new MysqlCapture(config, log);
  const running = capture.run(controller.signal);
  running.catch(() => {});
  try {
    await capture.caughtUp();
    await server.query(`CREATE TABLE osc._items_gho LIKE osc.items`);
    await server.query(`ALTER TABLE osc._items_gho ADD COLUMN price decimal(8,2) NOT NULL DEFAULT 0`);
    await server.query(`INSERT INTO osc._items_gho (id, name) SELECT id, name FROM osc.items`);
    await server.query(`UPDATE osc.items SET name = 'changed before' WHERE id = 1`);
    await server.query(`UPDATE osc._items_gho SET name = 'changed before' WHERE id = 1`);
    await server.query(`RENAME TABLE osc.items TO osc._items_del, osc._items_gho TO osc.items`);
    await server.query(`INSERT INTO osc.items VALUES (201, 'after', 9.99)`);
    await server.query(`UPDATE osc.items SET price = 1.50 WHERE id = 2`);
    await server.query(`DELETE FROM osc.items WHERE id = 3`);
    await capture.caughtUp();
    const all = await records(log, capture.topic);
    // Applied by key over the whole log: the table as MariaDB has it.
    const rows = new Map<string, string>();
    for (const record of all) {
      for (const change of record.changes) {
        const described = record.tables[change.table]!;
        assert.equal(described.name, 'osc.items', 'only the captured table is in the log (not the copy)');
        const values = Object.fromEntries(described.columns.map(([name], i) => [name, change.row[i] === null || change.row[i] === undefined ? null : String(change.row[i])]));
        if (change.op === 2) rows.delete(String(values.id));
        else rows.set(String(values.id), JSON.stringify([values.id, values.name, values.price === undefined ? 'not captured' : values.price]));
      }
    }
    const want = await server.query(`SELECT id, name, price FROM osc.items`);
    assert.equal(rows.size, want.length);
    const written = new Set(['1', '2', '201']); // 1 before the swap: in the snapshot and its update
    for (const row of want) {
      const price = written.has(String(row.id)) && String(row.id) !== '1' ? String(row.price) : 'not captured';
      assert.equal(rows.get(String(row.id)), JSON.stringify([String(row.id), row.name, price]), `row ${row.id}`);
    }
    const last = all.filter((r) => r.kind === TRANSACTION).at(-1)!;
    assert.ok(last.tables[0]!.columns.some(([name]) => name === 'price'), 'rows after the swap describe the new column');
  } finally {
    controller.abort();
    await running.catch(() => {});
    await log.close();
  }
});
