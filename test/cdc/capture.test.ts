/**
 * A PostgreSQL source captured into the log against a real PostgreSQL 15: the snapshot and then
 * every committed transaction arrive in commit order, whole; stopping and starting again resumes
 * exactly (nothing lost, nothing doubled); applying the log gives the tables PostgreSQL has.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { FileLog } from '../../src/log/index.ts';
import { postgresConfig } from '../../src/sources/postgres/config.ts';
import { PostgresCapture } from '../../src/sources/postgres/connector.ts';
import { parseLsn } from '../../src/sources/postgres/pgoutput.ts';
import { decodeSourceRecord, DELETE, SNAPSHOT_END, SNAPSHOT_ROWS, SNAPSHOT_START, TRANSACTION, TRANSACTION_PART, transactionParts, TRUNCATE, type SourceRecord } from '../../src/sources/records.ts';
import { objectRow } from '../../src/sinks/object-row.ts';
import { resolveType } from '../../src/sql/index.ts';
import { startPostgres, type PostgresServer } from '../services/postgres.ts';

let server: PostgresServer;
let folder: string;

before(async () => {
  // A small logical_decoding_work_mem: large transactions stream (protocol 2) in segments.
  server = await startPostgres({ settings: { logical_decoding_work_mem: "'64kB'" } });
  folder = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-capture-'));
  await server.query(`CREATE TABLE customers (id int PRIMARY KEY, name text)`);
  await server.query(`CREATE TABLE orders (id int PRIMARY KEY, customer_id int, amount numeric(10,2), note text)`);
  await server.query(`ALTER TABLE orders ALTER COLUMN note SET STORAGE EXTERNAL`);
  await server.query(`INSERT INTO customers SELECT g, 'customer ' || g FROM generate_series(1, 50) g`);
  await server.query(`INSERT INTO orders SELECT g, g % 50 + 1, g * 1.25, NULL FROM generate_series(1, 25000) g`);
});

after(async () => {
  await server?.stop();
  fs.rmSync(folder, { recursive: true, force: true });
});

/** Applies the log's records to tables keyed by id (the model a view over the source would read). */
function apply(records: SourceRecord[]): Map<string, Map<string, Record<string, unknown>>> {
  const tables = new Map<string, Map<string, Record<string, unknown>>>();
  const table = (name: string) => tables.get(name) ?? tables.set(name, new Map()).get(name)!;
  // records[i] is the record at offset i: a transaction written in parts names their offsets.
  const changesOf = (record: SourceRecord) => [...transactionParts(record).map((offset) => records[offset]!), record].flatMap((r) => r.changes.map((change) => ({ change, described: r.tables[change.table] })));
  for (const record of records) {
    if (record.kind === SNAPSHOT_START) tables.clear();
    if (record.kind === TRANSACTION_PART) continue; // applied with the transaction that names it
    for (const { change, described } of changesOf(record)) {
      const rows = described ? table(described.name) : undefined;
      if (change.op === TRUNCATE) {
        rows!.clear();
        continue;
      }
      // Only the kind matters for printing: 'numeric(10,2)' → numeric.
      const columns = described!.columns.map(([name, type]) => ({ name, type: resolveType(type.replace(/\(.*\)$/, '')) }));
      const row = objectRow(change.row, columns);
      const key = String(row.id);
      if (change.op === DELETE) rows!.delete(key);
      else {
        const previous = rows!.get(key);
        for (const i of change.unchanged ?? []) row[columns[i]!.name] = previous?.[columns[i]!.name];
        rows!.set(key, row);
      }
    }
  }
  return tables;
}

async function logRecords(log: FileLog, topic: string): Promise<SourceRecord[]> {
  const out: SourceRecord[] = [];
  let offset = 0;
  for (;;) {
    const { records, nextOffset } = await log.read(topic, 0, offset);
    for (const r of records) out.push(decodeSourceRecord(r.value!, `${topic}@${r.offset}`));
    if (records.length === 0) return out;
    offset = nextOffset;
  }
}

async function postgresTables(): Promise<Map<string, Map<string, Record<string, unknown>>>> {
  const out = new Map<string, Map<string, Record<string, unknown>>>();
  for (const name of ['customers', 'orders']) {
    const rows = await server.query(`SELECT row_to_json(t)::text AS j FROM public.${name} t`);
    out.set(`public.${name}`, new Map(rows.map((r: { j: string }) => {
      const row = JSON.parse(r.j) as Record<string, unknown>;
      if ('amount' in row && row.amount !== null) row.amount = Number(row.amount).toFixed(2);
      return [String(row.id), row];
    })));
  }
  return out;
}

async function converge(log: FileLog, topic: string, what: string, running: Promise<void>, until: (records: SourceRecord[]) => boolean = () => true): Promise<SourceRecord[]> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    await Promise.race([running, new Promise((resolve) => setTimeout(resolve, 0))]); // a failed capture fails the test
    const records = await logRecords(log, topic);
    const got = apply(records);
    const want = await postgresTables();
    const equal = [...want].every(([name, rows]) => {
      const mine = got.get(name) ?? new Map();
      return mine.size === rows.size && [...rows].every(([key, row]) => JSON.stringify(mine.get(key)) === JSON.stringify(row));
    });
    if (equal && until(records)) return records;
    if (Date.now() > deadline) {
      const report = [...want].map(([name, rows]) => {
        const mine = got.get(name) ?? new Map();
        const differs = [...rows].find(([key, row]) => JSON.stringify(mine.get(key)) !== JSON.stringify(row)) ?? [...mine].find(([key]) => !rows.has(key));
        return `${name}: PostgreSQL ${rows.size} rows, log ${mine.size}; e.g. ${JSON.stringify(differs?.[1])} vs ${JSON.stringify(differs && mine.get(differs[0]))}`;
      });
      assert.fail(`${what}: the log (${records.length} records) does not converge to PostgreSQL's tables:\n${report.join('\n')}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

test('snapshot, then every transaction whole and in order; a restart resumes exactly', async () => {
  const log = await FileLog.open(path.join(folder, 'log'));
  const config = postgresConfig('shop', server.url(), new Map([['tables', 'public.customers, public.orders']]));
  let controller = new AbortController();
  let capture = new PostgresCapture(config, log);
  await log.createTopic(capture.topic, { partitions: 1 });
  let running = capture.run(controller.signal);
  running.catch(() => {}); // awaited below; a failure shows there

  let records = await converge(log, capture.topic, 'after the snapshot', running, (records) => records.some((r) => r.kind === SNAPSHOT_END));
  assert.equal(records[0]!.kind, SNAPSHOT_START);
  assert.ok(records.filter((r) => r.kind === SNAPSHOT_ROWS).length >= 3, 'the 25,000 orders arrive in chunks');
  assert.ok(records.some((r) => r.kind === SNAPSHOT_END));

  // Changes: inserts, an update leaving a TOASTed value unchanged, a primary-key update, a
  // delete, a transaction over both tables (one record), and a large transaction.
  await server.query(`UPDATE orders SET note = repeat('long note ', 500) WHERE id = 7`);
  await server.query(`UPDATE orders SET amount = 99.99 WHERE id = 7`);
  await server.query(`UPDATE orders SET id = 30001 WHERE id = 8`);
  await server.query(`DELETE FROM orders WHERE id BETWEEN 100 AND 199`);
  await server.query(`BEGIN; INSERT INTO customers VALUES (51, 'new'); INSERT INTO orders VALUES (30002, 51, 5, 'first'); COMMIT`);
  await server.query(`INSERT INTO orders SELECT g, 1, 1, NULL FROM generate_series(40000, 44999) g`);
  // A streamed transaction with subtransactions: a rolled-back savepoint's rows must not appear.
  await server.query(`BEGIN;
    INSERT INTO orders SELECT g, 2, 2, NULL FROM generate_series(60000, 62999) g;
    SAVEPOINT a; INSERT INTO orders SELECT g, 3, 3, NULL FROM generate_series(63000, 65999) g; ROLLBACK TO a;
    SAVEPOINT b; INSERT INTO orders SELECT g, 4, 4, NULL FROM generate_series(66000, 68999) g; RELEASE b;
    COMMIT`);
  records = await converge(log, capture.topic, 'after the changes', running);
  const multi = records.find((r) => r.kind === TRANSACTION && r.tables.length === 2)!;
  assert.deepEqual(multi.tables.map((t) => t.name).sort(), ['public.customers', 'public.orders']);
  assert.ok(records.some((r) => r.changes.some((c) => c.unchanged?.length)), 'the TOASTed note was not resent');

  // Stopped, changes meanwhile, started again: exactly what happened, once.
  controller.abort();
  await running;
  await server.query(`INSERT INTO orders VALUES (50000, 2, 3.5, NULL)`);
  await server.query(`UPDATE customers SET name = 'renamed' WHERE id = 1`);
  await server.query(`TRUNCATE customers`);
  await server.query(`INSERT INTO customers VALUES (1, 'back')`);
  controller = new AbortController();
  capture = new PostgresCapture(config, log);
  running = capture.run(controller.signal);
  running.catch(() => {});
  records = await converge(log, capture.topic, 'after a restart', running);
  const positions = records.filter((r) => r.kind === TRANSACTION).map((r) => parseLsn(String(r.position.lsn)));
  assert.ok(positions.every((lsn, i) => i === 0 || lsn > positions[i - 1]!), 'transactions in commit order, none twice');
  assert.equal(records.filter((r) => r.kind === SNAPSHOT_START && r.position.lsn !== undefined).length, 1, 'no second snapshot');
  controller.abort();
  await running;
  await log.close();
});
