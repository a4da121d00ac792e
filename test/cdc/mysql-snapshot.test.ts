/**
 * MySQL/MariaDB snapshots against a hermetic MariaDB 10.11 (one server for the file, one database,
 * one log and one server_id per test):
 *
 * 1. `snapshot = 'watermark'` (DBLog) of a 60,000-row table in 500-row chunks while writers
 *    insert, update, delete and change primary keys all over the key range — and one of them in
 *    the chunk being read right now, between its watermarks: transactions are interleaved between
 *    SNAPSHOT_START and SNAPSHOT_END, the watermark table never shows up in the log, and the
 *    applied log equals SELECT;
 * 2. two tables, one with a composite primary key, chunked with watermarks (and a watermark table
 *    named by `watermark_table` in another database): exact at the end;
 * 3. and 4. a snapshot stopped mid-table (the second table), twice, continues after the last
 *    `after` key in watermark and in consistent mode: one SNAPSHOT_START, no chunk read twice, the
 *    first table not read again, exact after `caughtUp()`;
 * 5. preflight: watermark mode without the watermark table, or without INSERT/UPDATE on it, is
 *    refused with the CREATE TABLE and the GRANT to run; a table without a primary key stays
 *    refused; consistent mode needs no watermark table;
 * 6. through the pipeline: views over a watermark-mode source never show part of the snapshot
 *    (empty, then the whole state: per group a count and a sum every transaction of the writers
 *    keeps), and equal MariaDB at the end.
 *
 * Every writer that chases the snapshot aims at the chunk in flight (from the last chunk's `after`
 * key, or the rows read so far), so that rows change between a chunk's low and high watermarks in
 * most chunks: a chunk whose rows the binlog changed meanwhile and that is not corrected fails 1, 2,
 * 3 and 6.
 *
 * SLUICE_SCENARIO_SEED replays the writers' choices.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test, type TestContext } from 'node:test';
import mysql from 'mysql2/promise';
import { DefiniteError } from '../../src/core/index.ts';
import { FileLog } from '../../src/log/index.ts';
import { PipelineRuntime } from '../../src/pipeline/runtime.ts';
import { mysqlConfig } from '../../src/sources/mysql/config.ts';
import { MysqlCapture } from '../../src/sources/mysql/connector.ts';
import { mysqlPreflight } from '../../src/sources/mysql/preflight.ts';
import { decodeSourceRecord, DELETE, SNAPSHOT_END, SNAPSHOT_ROWS, SNAPSHOT_START, TRANSACTION, TRANSACTION_PART, transactionParts, TRUNCATE, type SourceRecord } from '../../src/sources/records.ts';
import { outputValue, resolveType } from '../../src/sql/index.ts';
import { seededRandom, type Random } from '../crash/random.ts';
import { startMariadb, type MariadbServer } from '../services/mariadb.ts';
import { describeDiff, scenario, waitFor, sourceTopicRecords as logRecords } from './scenario-helpers.ts';

let server: MariadbServer;
let folder: string;
const seed = Number(process.env.SLUICE_SCENARIO_SEED ?? Math.floor(Math.random() * 2 ** 32));

before(async () => {
  server = await startMariadb({ settings: { 'innodb-buffer-pool-size': '64M', 'max-connections': '60', 'innodb-lock-wait-timeout': '5' } });
  folder = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-mysql-snapshot-'));
  process.stdout.write(`mysql snapshot tests: seed ${seed} (SLUICE_SCENARIO_SEED=${seed} replays the writers' choices)\n`);
});

after(async () => {
  await server?.stop();
  fs.rmSync(folder, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

// ── Helpers ─────────────────────────────────────────────────────────────────────────────────

/** A captured table as the tests compare it: its name and how many leading columns are its key. */
interface TableSpec {
  name: string;
  keys: number;
}

const WATERMARK_TABLE = (database: string) => `CREATE TABLE \`${database}\`.sluice_watermark (source varchar(64) PRIMARY KEY, mark varchar(64) NOT NULL)`;

function captureConfig(name: string, database: string, tables: string, options: Record<string, string>) {
  return mysqlConfig(name, server.url(database), new Map(Object.entries({ tables, ...options })));
}

/** Applies a source log to tables keyed by their key columns; values printed as text. */
function apply(records: SourceRecord[], specs: TableSpec[]): Map<string, Map<string, string>> {
  const keysOf = new Map(specs.map((s) => [s.name, s.keys]));
  const tables = new Map<string, Map<string, string>>();
  const table = (name: string) => tables.get(name) ?? tables.set(name, new Map()).get(name)!;
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
      const key = JSON.stringify(printed.slice(0, keysOf.get(described.name) ?? 1));
      if (change.op === DELETE) rows.delete(key);
      else rows.set(key, JSON.stringify(printed));
    }
  }
  return tables;
}

/** The tables as MariaDB has them now, keyed and printed like apply() (columns in table order). */
async function mariadbTables(database: string, specs: TableSpec[]): Promise<Map<string, Map<string, string>>> {
  const out = new Map<string, Map<string, string>>();
  for (const spec of specs) {
    const rows = await server.query(`SELECT * FROM \`${database}\`.\`${spec.name.split('.')[1]}\``);
    out.set(
      spec.name,
      new Map(
        rows.map((r: Record<string, unknown>) => {
          const values = Object.values(r).map((v) => (v === null ? null : String(v)));
          return [JSON.stringify(values.slice(0, spec.keys)), JSON.stringify(values)];
        }),
      ),
    );
  }
  return out;
}

/** What differs between the applied log and MariaDB, per table ('' when nothing). */
async function differences(records: SourceRecord[], database: string, specs: TableSpec[]): Promise<string> {
  const got = apply(records, specs);
  const want = await mariadbTables(database, specs);
  return [...want]
    .flatMap(([name, rows]) => {
      const mine = got.get(name) ?? new Map<string, string>();
      const missing = [...rows].filter(([key, row]) => mine.get(key) !== row);
      const extra = [...mine].filter(([key]) => !rows.has(key));
      if (missing.length === 0 && extra.length === 0) return [];
      const example = missing[0] ? `MariaDB ${missing[0][1]} vs log ${mine.get(missing[0][0]) ?? '(none)'}` : `only in the log: ${extra[0]![1]}`;
      return [`${name}: ${mine.size} rows in the log for ${rows.size} in MariaDB; ${missing.length} missing or different, ${extra.length} extra; e.g. ${example}`];
    })
    .join('\n  ');
}

/** Key values in MariaDB's order for the keys these tests use (integers, lower-case ASCII text). */
function compareKeys(a: readonly unknown[], b: readonly unknown[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const x = a[i];
    const y = b[i];
    const integer = (v: unknown) => typeof v === 'bigint' || (typeof v === 'number' && Number.isInteger(v)) || (typeof v === 'string' && /^-?\d+$/.test(v));
    let c: number;
    if (integer(x) && integer(y)) {
      const d = BigInt(x as string | number | bigint) - BigInt(y as string | number | bigint);
      c = d < 0n ? -1 : d > 0n ? 1 : 0;
    } else c = String(x) < String(y) ? -1 : String(x) > String(y) ? 1 : 0;
    if (c !== 0) return c;
  }
  return 0;
}

/** The table a SNAPSHOT_ROWS record is a chunk of. */
const chunkTable = (record: SourceRecord) => String(record.position.table ?? record.tables[0]?.name);

/**
 * Checks the snapshot chunks of a log: per table, the chunks' `after` keys increase strictly and
 * their rows' keys too over the whole log (no chunk read twice), each chunk's rows are at or before
 * its `after` key (the chunk's last key), and exactly the table's last chunk says `complete`.
 */
function checkChunks(records: SourceRecord[], specs: TableSpec[], chunkRows: number): Map<string, number> {
  const counts = new Map<string, number>();
  for (const spec of specs) {
    const chunks = records.filter((r) => r.kind === SNAPSHOT_ROWS && chunkTable(r) === spec.name);
    counts.set(spec.name, chunks.length);
    assert.ok(chunks.length > 0, `${spec.name}: no snapshot chunks in the log`);
    let previousAfter: unknown[] | undefined;
    let previousRow: unknown[] | undefined;
    chunks.forEach((chunk, i) => {
      assert.equal(chunk.position.complete === true, i === chunks.length - 1, `${spec.name}: chunk ${i} of ${chunks.length} says complete = ${String(chunk.position.complete)}`);
      // A table's last chunk may have found nothing more to read: it then repeats the previous
      // chunk's key (or names none, for an empty table). Every other chunk moves the key on.
      const closing = chunk.position.complete === true && chunk.changes.length === 0;
      const afterKey = chunk.position.after ?? (closing ? previousAfter : undefined);
      if (closing && afterKey === undefined) return;
      assert.ok(Array.isArray(afterKey) && afterKey.length === spec.keys, `${spec.name}: chunk ${i} has no after key of ${spec.keys} column(s): ${JSON.stringify(chunk.position)}`);
      if (previousAfter) assert.ok(compareKeys(previousAfter, afterKey) < (closing ? 1 : 0), `${spec.name}: chunk ${i}'s after key ${JSON.stringify(afterKey)} does not follow ${JSON.stringify(previousAfter)} (a chunk read twice, or out of order)`);
      assert.ok(chunk.changes.length <= chunkRows, `${spec.name}: chunk ${i} has ${chunk.changes.length} rows, more than chunk_rows = ${chunkRows}`);
      for (const change of chunk.changes) {
        const key = change.row.slice(0, spec.keys);
        if (previousRow) assert.ok(compareKeys(previousRow, key) < 0, `${spec.name}: snapshot row ${JSON.stringify(key)} after ${JSON.stringify(previousRow)} (a row read twice, or out of order)`);
        if (previousAfter) assert.ok(compareKeys(previousAfter, key) < 0, `${spec.name}: chunk ${i} holds row ${JSON.stringify(key)}, at or before the previous chunk's after key ${JSON.stringify(previousAfter)}`);
        assert.ok(compareKeys(key, afterKey) <= 0, `${spec.name}: chunk ${i} holds row ${JSON.stringify(key)} beyond its after key ${JSON.stringify(afterKey)}`);
        previousRow = key;
      }
      previousAfter = afterKey;
    });
  }
  return counts;
}

/** TRANSACTION records in strictly increasing binlog order (none written twice). */
function checkTransactionOrder(records: SourceRecord[]): void {
  const positions = records.filter((r) => r.kind === TRANSACTION).map((r) => `${String(r.position.file)}:${String(r.position.pos).padStart(12, '0')}`);
  const bad = positions.findIndex((p, i) => i > 0 && p <= positions[i - 1]!);
  assert.equal(bad, -1, `transactions in binlog order, none twice (${positions[bad - 1]} then ${positions[bad]})`);
}

/** `stats.snapshot.mode`: how the capture reads (or read) its snapshot. */
function modeOf(capture: MysqlCapture): unknown {
  return (capture.stats.snapshot as { mode?: unknown } | undefined)?.mode;
}

/** A promise that fails after `ms` with what was awaited. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms / 1000} s: ${what}`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** A capture running on a log until `stop()`; `ended` resolves once SNAPSHOT_END is in the log. */
function startCapture(config: ReturnType<typeof mysqlConfig>, log: FileLog, onRecord?: (record: SourceRecord, controller: AbortController) => void) {
  const controller = new AbortController();
  let snapshotEnded!: () => void;
  const ended = new Promise<void>((resolve) => (snapshotEnded = resolve));
  const capture = new MysqlCapture(config, log, {
    onAppend: (record) => {
      if (record.kind === SNAPSHOT_END) snapshotEnded();
      onRecord?.(record, controller);
    },
  });
  const running = capture.run(controller.signal);
  running.catch(() => {});
  return {
    capture,
    controller,
    running,
    /** Resolves when SNAPSHOT_END is appended; rejects when run() fails first. */
    snapshotEnd: (timeoutMs: number) => within(Promise.race([ended, running.then(() => assert.fail('run() returned before the snapshot ended'))]), timeoutMs, 'the snapshot to end'),
    async stop() {
      controller.abort();
      await within(running, 30_000, 'run() to return after its signal was aborted');
    },
  };
}

async function connect(database: string): Promise<mysql.Connection> {
  const connection = await mysql.createConnection({ host: server.host, port: server.port, user: 'root', database, supportBigNumbers: true, bigNumberStrings: true, connectTimeout: 5_000 });
  connection.on('error', () => {});
  return connection;
}

/** A writer running transactions on its own connection until stopped; failed ones roll back. */
function startWriter(database: string, transaction: (connection: mysql.Connection, random: Random) => Promise<void>, random: Random, pauseMs = 0) {
  let stop = false;
  const counts = { committed: 0, failed: 0 };
  let lastError = '';
  const done = (async () => {
    const connection = await connect(database);
    try {
      while (!stop) {
        try {
          await connection.query('BEGIN');
          await transaction(connection, random);
          await connection.query('COMMIT');
          counts.committed++;
        } catch (error) {
          counts.failed++;
          lastError = (error as Error).message;
          await connection.query('ROLLBACK');
        }
        if (pauseMs > 0) await sleep(pauseMs);
      }
    } finally {
      await connection.end().catch(() => {});
    }
  })();
  return {
    counts,
    get lastError() {
      return lastError;
    },
    async stop() {
      stop = true;
      await done;
    },
  };
}

/**
 * `items (id bigint PRIMARY KEY, grp int, val int, pad varchar(40))` with `count` rows of even ids
 * 2…2·count, so that inserts and key changes to odd ids land all over the key range.
 */
async function createItems(database: string, table: string, count: number, groups = 20): Promise<void> {
  await server.query(`CREATE TABLE \`${database}\`.\`${table}\` (id bigint PRIMARY KEY, grp int NOT NULL, val int NOT NULL, pad varchar(40))`);
  await server.query(`INSERT INTO \`${database}\`.\`${table}\` SELECT seq * 2, seq % ${groups}, (seq * 7919) % 1000, CONCAT('row ', seq) FROM \`${database}\`.seq_1_to_${count}`);
}

/**
 * 1–4 changes to `table`: inserts, updates (single rows and ranges), deletes and key changes. With
 * `hot`, the ids changed are in the `width` ids from hot() on (where the snapshot reads now: the
 * chunk in flight, between its watermarks), and key changes move rows between there and anywhere;
 * without, they are anywhere in the key range.
 */
function itemsChanges(table: string, count: number, hot?: () => number, width = 1200) {
  const top = 2 * count;
  return async (connection: mysql.Connection, r: Random) => {
    const from = hot ? Math.max(1, hot()) : 1;
    const to = hot ? from + width : top;
    const changes = r.integer(1, 4);
    for (let i = 0; i < changes; i++) {
      const id = r.integer(from, to);
      const odd = (n: number) => n - (n % 2) + 1;
      const anywhere = odd(r.integer(0, top));
      const choice = r.integer(0, 10);
      if (choice <= 1) await connection.query(`INSERT IGNORE INTO \`${table}\` VALUES (?, ?, ?, 'inserted')`, [odd(id), r.integer(0, 19), r.integer(0, 999)]);
      else if (choice <= 3) await connection.query(`UPDATE \`${table}\` SET val = val + ?, pad = 'updated' WHERE id = ?`, [r.integer(1, 50), id]);
      else if (choice === 4) await connection.query(`UPDATE \`${table}\` SET val = val + 1 WHERE id BETWEEN ? AND ?`, [id, id + 40]);
      else if (choice <= 6) await connection.query(`DELETE FROM \`${table}\` WHERE id = ?`, [id]);
      else if (choice <= 8) await connection.query(`UPDATE IGNORE \`${table}\` SET id = ?, pad = 'moved' WHERE id = ?`, [anywhere, id]);
      else await connection.query(`UPDATE IGNORE \`${table}\` SET id = ?, pad = 'moved in' WHERE id = ?`, [odd(id), r.integer(1, top)]);
    }
  };
}

/** The first key of the chunk the snapshot of `table` reads next: after the last chunk's key. */
function chunkFrontier(table: string) {
  let next = 0;
  return {
    get: () => next,
    onRecord(record: SourceRecord) {
      const key = (record.position.after as unknown[] | undefined)?.[0];
      if (record.kind === SNAPSHOT_ROWS && chunkTable(record) === table && key !== undefined) next = Number(key) + 1;
    },
  };
}

// ── 1. Watermark snapshot under writes ──────────────────────────────────────────────────────

test('1: a watermark snapshot of 60,000 rows in 500-row chunks under inserts, updates, deletes and key changes: transactions interleave with the chunks, and the log equals MariaDB', { timeout: 120_000 }, scenario(async (t: TestContext) => {
  const database = 'wm_under_writes';
  const count = 60_000;
  await server.createDatabase(database);
  await createItems(database, 'items', count);
  await server.query(WATERMARK_TABLE(database));
  const specs = [{ name: `${database}.items`, keys: 1 }];
  const log = await FileLog.open(path.join(folder, '1', 'log'));
  // One writer anywhere in the key range, one on the chunk being read.
  const frontier = chunkFrontier(specs[0]!.name);
  const writer = startWriter(database, itemsChanges('items', count), seededRandom(seed ^ 0x1));
  const chaser = startWriter(database, itemsChanges('items', count, frontier.get), seededRandom(seed ^ 0x11));
  let run: ReturnType<typeof startCapture> | undefined;
  try {
    await sleep(100);
    const atStart = writer.counts.committed + chaser.counts.committed;
    run = startCapture(captureConfig('wm1', database, 'items', { snapshot: 'watermark', chunk_rows: '500', server_id: '801' }), log, (record) => frontier.onRecord(record));
    await waitFor('the snapshot to start', () => run!.capture.stats.snapshot !== undefined || run!.capture.stats.phase === 'streaming', 30_000);
    assert.equal(modeOf(run.capture), 'watermark', `stats.snapshot: ${JSON.stringify(run.capture.stats.snapshot)}`);
    await run.snapshotEnd(60_000);
    const during = writer.counts.committed + chaser.counts.committed - atStart;
    await writer.stop();
    await chaser.stop();
    assert.ok(during > 0, 'the writer committed nothing during the snapshot');
    await within(run.capture.caughtUp(30_000), 35_000, 'caughtUp()');
    await run.stop();
    const stats = run.capture.stats.snapshot!;
    assert.equal(modeOf(run.capture), 'watermark');
    assert.ok(stats.endedAt !== undefined && stats.tablesDone === 1 && stats.tables === 1, `stats.snapshot: ${JSON.stringify(stats)}`);

    const records = await logRecords(log, run.capture.topic);
    const starts = records.flatMap((r, i) => (r.kind === SNAPSHOT_START ? [i] : []));
    const ends = records.flatMap((r, i) => (r.kind === SNAPSHOT_END ? [i] : []));
    assert.equal(starts.length, 1, 'one SNAPSHOT_START');
    assert.equal(ends.length, 1, 'one SNAPSHOT_END');
    const start = records[starts[0]!]!;
    assert.equal(start.position.mode, 'watermark');
    assert.equal(typeof start.position.file, 'string');
    assert.equal(typeof start.position.pos, 'number');
    const interleaved = records.slice(starts[0]! + 1, ends[0]!).filter((r) => r.kind === TRANSACTION).length;
    assert.ok(interleaved > 0, 'no TRANSACTION record between SNAPSHOT_START and SNAPSHOT_END: the binlog was not interleaved with the chunks');
    const named = records.flatMap((r) => r.tables.map((table) => table.name)).filter((name) => /sluice_watermark/.test(name));
    assert.deepEqual(named, [], 'the watermark table is never in the log');
    const chunks = checkChunks(records, specs, 500).get(specs[0]!.name)!;
    assert.ok(chunks >= (count / 500) * 0.8, `${chunks} chunks for ${count} rows at 500 a chunk`);
    checkTransactionOrder(records);
    const diff = await differences(records, database, specs);
    assert.equal(diff, '', `the applied log differs from MariaDB:\n  ${diff}`);
    t.diagnostic(`${chunks} chunks, ${interleaved} transactions between the snapshot's start and end; writers ${JSON.stringify([writer.counts, chaser.counts])} (${during} during the snapshot), ${Math.round((stats.endedAt! - stats.startedAt) / 100) / 10} s of snapshot`);
  } finally {
    await writer.stop().catch(() => {});
    await chaser.stop().catch(() => {});
    await run?.stop().catch(() => {});
    await log.close();
  }
}));

// ── 2. Multi-table watermark snapshot ───────────────────────────────────────────────────────

test('2: two tables, one with a composite primary key, both chunked with watermarks (watermark_table in another database): exact at the end', { timeout: 90_000 }, scenario(async (t: TestContext) => {
  const database = 'wm_multi';
  const meta = 'wm_multi_meta';
  await server.createDatabase(database);
  await server.createDatabase(meta);
  await server.query(`CREATE TABLE ${meta}.marks (source varchar(64) PRIMARY KEY, mark varchar(64) NOT NULL)`);
  await server.query(`CREATE TABLE ${database}.customers (id int PRIMARY KEY, name varchar(40), tier int NOT NULL)`);
  await server.query(`INSERT INTO ${database}.customers SELECT seq * 2, CONCAT('customer ', seq), seq % 3 FROM ${database}.seq_1_to_6000`);
  await server.query(`CREATE TABLE ${database}.orders (region varchar(10), id int, amount int NOT NULL, note varchar(20), PRIMARY KEY (region, id))`);
  const regions = ['ap', 'eu', 'us'];
  for (const region of regions) await server.query(`INSERT INTO ${database}.orders SELECT '${region}', seq * 2, seq % 97, NULL FROM ${database}.seq_1_to_7000`);
  const specs = [{ name: `${database}.customers`, keys: 1 }, { name: `${database}.orders`, keys: 2 }];
  const log = await FileLog.open(path.join(folder, '2', 'log'));
  // Where each table's snapshot reads next: half the writers' changes go there, into the chunk in flight.
  const hot = { customers: 0, region: 'ap', orders: 0 };
  const onRecord = (record: SourceRecord) => {
    const key = record.position.after as unknown[] | undefined;
    if (record.kind !== SNAPSHOT_ROWS || !key) return;
    if (chunkTable(record) === specs[0]!.name) hot.customers = Number(key[0]);
    else [hot.region, hot.orders] = [String(key[0]), Number(key[1])];
  };
  const changes = async (connection: mysql.Connection, r: Random) => {
    const near = r.chance(0.5);
    const region = near ? hot.region : regions[r.integer(0, 2)]!;
    const id = near ? hot.orders + r.integer(1, 1000) : r.integer(1, 14_001);
    const customer = () => (near ? hot.customers + r.integer(1, 1000) : r.integer(1, 12_001));
    const choice = r.integer(0, 7);
    if (choice === 0) await connection.query(`INSERT IGNORE INTO orders VALUES (?, ?, ?, 'new')`, [region, id | 1, r.integer(0, 99)]);
    else if (choice === 1) await connection.query(`UPDATE orders SET amount = amount + 1 WHERE region = ? AND id BETWEEN ? AND ?`, [region, id, id + 30]);
    else if (choice === 2) await connection.query(`DELETE FROM orders WHERE region = ? AND id = ?`, [region, id]);
    // A key change that moves a row to another region: to a part of the key range read already, or not yet.
    else if (choice === 3) await connection.query(`UPDATE IGNORE orders SET region = ?, note = 'moved' WHERE region = ? AND id = ?`, [regions[r.integer(0, 2)], region, id]);
    else if (choice === 4) await connection.query(`UPDATE customers SET tier = tier + 1, name = 'changed' WHERE id = ?`, [customer()]);
    else if (choice === 5) await connection.query(`DELETE FROM customers WHERE id = ?`, [customer()]);
    else if (choice === 6) await connection.query(`INSERT IGNORE INTO customers VALUES (?, 'new', 0)`, [customer() | 1]);
    else {
      // Both tables in one transaction.
      await connection.query(`UPDATE customers SET tier = tier - 1 WHERE id = ?`, [customer()]);
      await connection.query(`UPDATE orders SET note = 'both' WHERE region = ? AND id = ?`, [region, id]);
    }
  };
  const writers = [startWriter(database, changes, seededRandom(seed ^ 0x2)), startWriter(database, changes, seededRandom(seed ^ 0x22))];
  let run: ReturnType<typeof startCapture> | undefined;
  try {
    run = startCapture(captureConfig('wm2', database, 'customers, orders', { snapshot: 'watermark', chunk_rows: '500', watermark_table: `${meta}.marks`, server_id: '802' }), log, onRecord);
    await run.snapshotEnd(60_000);
    for (const writer of writers) await writer.stop();
    await within(run.capture.caughtUp(30_000), 35_000, 'caughtUp()');
    await run.stop();
    const records = await logRecords(log, run.capture.topic);
    assert.equal(records.filter((r) => r.kind === SNAPSHOT_START).length, 1, 'one SNAPSHOT_START');
    assert.equal(records.find((r) => r.kind === SNAPSHOT_START)!.position.mode, 'watermark');
    assert.deepEqual(records.flatMap((r) => r.tables.map((table) => table.name)).filter((name) => name.startsWith(`${meta}.`)), [], 'the watermark table is never in the log');
    const chunks = checkChunks(records, specs, 500);
    assert.ok(chunks.get(`${database}.customers`)! >= 10 && chunks.get(`${database}.orders`)! >= 35, `both tables chunked: ${JSON.stringify([...chunks])}`);
    // A table's chunks all come before the next table's.
    const order = records.filter((r) => r.kind === SNAPSHOT_ROWS).map(chunkTable);
    assert.equal(order.lastIndexOf(`${database}.customers`) < order.indexOf(`${database}.orders`), true, 'customers are read whole before orders');
    checkTransactionOrder(records);
    const diff = await differences(records, database, specs);
    assert.equal(diff, '', `the applied log differs from MariaDB:\n  ${diff}`);
    t.diagnostic(`chunks ${JSON.stringify([...chunks])}; writers ${JSON.stringify(writers.map((w) => w.counts))}`);
  } finally {
    for (const writer of writers) await writer.stop().catch(() => {});
    await run?.stop().catch(() => {});
    await log.close();
  }
}));

// ── 3. and 4. Resume mid-table ──────────────────────────────────────────────────────────────

async function resumesMidTable(t: TestContext, mode: 'watermark' | 'auto', database: string, serverId: string): Promise<void> {
  const first = `${database}.accounts`;
  const second = `${database}.items`;
  const count = 12_000;
  await server.createDatabase(database);
  await server.query(`CREATE TABLE ${database}.accounts (id int PRIMARY KEY, owner varchar(40), balance int NOT NULL)`);
  await server.query(`INSERT INTO ${database}.accounts SELECT seq, CONCAT('owner ', seq), seq % 100 FROM ${database}.seq_1_to_3000`);
  await createItems(database, 'items', count);
  if (mode === 'watermark') await server.query(WATERMARK_TABLE(database));
  const specs = [{ name: first, keys: 1 }, { name: second, keys: 1 }];
  const options: Record<string, string> = { chunk_rows: '500', server_id: serverId, ...(mode === 'watermark' ? { snapshot: 'watermark' } : {}) };
  const config = () => captureConfig(`resume_${mode}`, database, 'accounts, items', options);
  const log = await FileLog.open(path.join(folder, database, 'log'));
  const items = itemsChanges('items', count);
  const frontier = chunkFrontier(second);
  const chaser = startWriter(database, itemsChanges('items', count, frontier.get), seededRandom(seed ^ (mode === 'watermark' ? 0x33 : 0x44)), 1);
  const writer = startWriter(
    database,
    async (connection, r) => {
      await items(connection, r);
      if (r.chance(0.3)) await connection.query(`UPDATE accounts SET balance = balance + 1 WHERE id = ?`, [r.integer(1, 3000)]);
    },
    seededRandom(seed ^ (mode === 'watermark' ? 0x3 : 0x4)),
    1,
  );
  let run: ReturnType<typeof startCapture> | undefined;
  try {
    // Two runs stopped mid-table (after 3 chunks of the second table, then after 4 more), then
    // one that finishes; writes go on all along, also while no capture runs.
    const wantMode = mode === 'watermark' ? 'watermark' : 'consistent';
    const restarts: number[] = [];
    const stoppedAfter: number[] = [];
    for (const chunksToRead of [3, 4]) {
      let read = 0;
      run = startCapture(config(), log, (record, controller) => {
        frontier.onRecord(record);
        if (record.kind === SNAPSHOT_ROWS && chunkTable(record) === second && ++read === chunksToRead) controller.abort();
      });
      await within(run.running, 60_000, `run ${restarts.length + 1} to stop after ${chunksToRead} chunks of the second table`);
      assert.equal(modeOf(run.capture), wantMode, `stats.snapshot.mode (snapshot = '${mode}' on MariaDB): ${JSON.stringify(run.capture.stats.snapshot)}`);
      const sofar = await logRecords(log, run.capture.topic);
      assert.ok(!sofar.some((r) => r.kind === SNAPSHOT_END), `run ${restarts.length + 1} stopped before the snapshot ended`);
      const chunks = sofar.filter((r) => r.kind === SNAPSHOT_ROWS);
      assert.ok(chunks.some((r) => chunkTable(r) === first && r.position.complete === true), 'the first table was read whole in the first run');
      const ofSecond = chunks.filter((r) => chunkTable(r) === second);
      assert.ok(ofSecond.length >= (stoppedAfter.at(-1) ?? 0) + chunksToRead && !ofSecond.some((r) => r.position.complete === true), `run ${restarts.length + 1} stopped mid-table: ${ofSecond.length} chunks of ${second}`);
      stoppedAfter.push(ofSecond.length);
      restarts.push(sofar.length);
      await sleep(200); // writes go on while the capture is stopped
    }

    // The last run on the same log: it continues to the end.
    run = startCapture(config(), log, (record) => frontier.onRecord(record));
    await run.snapshotEnd(60_000);
    await sleep(200);
    await writer.stop();
    await chaser.stop();
    await within(run.capture.caughtUp(30_000), 35_000, 'caughtUp()');
    await run.stop();
    assert.equal(modeOf(run.capture) ?? wantMode, wantMode);

    const records = await logRecords(log, run.capture.topic);
    const starts = records.filter((r) => r.kind === SNAPSHOT_START);
    assert.equal(starts.length, 1, 'exactly one SNAPSHOT_START: the snapshot continued, it did not start over');
    assert.equal(starts[0]!.position.mode, wantMode);
    assert.equal(records.filter((r) => r.kind === SNAPSHOT_END).length, 1, 'one SNAPSHOT_END');
    const again = records.slice(restarts[0]).filter((r) => r.kind === SNAPSHOT_ROWS && chunkTable(r) === first).length;
    assert.equal(again, 0, `the later runs read ${again} chunks of ${first}, which the first run had completed`);
    for (const [i, at] of restarts.entries()) assert.ok(records.slice(at).some((r) => r.kind === SNAPSHOT_ROWS && chunkTable(r) === second), `run ${i + 2} went on reading the second table`);
    const chunks = checkChunks(records, specs, 500);
    checkTransactionOrder(records);
    const diff = await differences(records, database, specs);
    assert.equal(diff, '', `the applied log differs from MariaDB:\n  ${diff}`);
    t.diagnostic(`chunks ${JSON.stringify([...chunks])} (${stoppedAfter.join(' and ')} of ${second} at the stops); writers ${JSON.stringify([writer.counts, chaser.counts])}`);
  } finally {
    await writer.stop().catch(() => {});
    await chaser.stop().catch(() => {});
    await run?.stop().catch(() => {});
    await log.close();
  }
}

test('3: a watermark snapshot stopped mid-table (twice) continues after the last after key: one SNAPSHOT_START, no chunk read twice, exact after caughtUp()', { timeout: 90_000 }, scenario(async (t) => {
  await resumesMidTable(t, 'watermark', 'resume_watermark', '803');
}));

test('4: a consistent snapshot (the default on MariaDB) stopped mid-table (twice) continues after the last after key: one SNAPSHOT_START, no chunk read twice, exact after caughtUp()', { timeout: 90_000 }, scenario(async (t) => {
  await resumesMidTable(t, 'auto', 'resume_consistent', '804');
}));

// ── 5. Preflight ────────────────────────────────────────────────────────────────────────────

test('5: watermark mode needs the watermark table and INSERT and UPDATE on it (the CREATE TABLE and the GRANT are named); a table without a primary key stays refused', { timeout: 60_000 }, async () => {
  const database = 'wm_preflight';
  await server.createDatabase(database);
  await server.query(`CREATE TABLE ${database}.products (id int PRIMARY KEY, name varchar(20))`);
  await server.query(`CREATE TABLE ${database}.events (at datetime, what text)`);
  await server.query(`INSERT INTO ${database}.products VALUES (1, 'tea')`);
  const watermarkProblems = async (url: string, options: Record<string, string>, tables = 'products') =>
    (await mysqlPreflight(mysqlConfig('pf', url, new Map(Object.entries({ tables, server_id: '805', ...options }))))).problems.filter((p) => p.check === 'watermark_table').map((p) => `${p.message}: ${p.fix}`);

  // No watermark table.
  const missing = await watermarkProblems(server.url(database), { snapshot: 'watermark' });
  assert.equal(missing.length, 1, `watermark_table problems: ${JSON.stringify(missing)}`);
  assert.match(missing[0]!, /wm_preflight`?\.`?sluice_watermark/);
  assert.match(missing[0]!, /CREATE TABLE `?wm_preflight`?\.`?sluice_watermark`? \(source varchar\(64\) PRIMARY KEY, mark varchar\(64\) NOT NULL\)/);
  assert.match(missing[0]!, /GRANT INSERT, UPDATE ON `?wm_preflight`?\.`?sluice_watermark`?/);
  // Consistent mode (and auto, which is consistent on MariaDB) needs none.
  assert.deepEqual(await watermarkProblems(server.url(database), { snapshot: 'consistent' }), []);
  assert.deepEqual(await watermarkProblems(server.url(database), {}), []);

  // run() refuses before anything is written, with the table, the CREATE TABLE and the GRANT.
  const folderOf = path.join(folder, '5');
  const log = await FileLog.open(path.join(folderOf, 'log'));
  try {
    const capture = new MysqlCapture(mysqlConfig('pf', server.url(database), new Map([['tables', 'products'], ['snapshot', 'watermark'], ['server_id', '805']])), log);
    await assert.rejects(within(capture.run(new AbortController().signal), 30_000, 'run() to refuse'), (error: unknown) => {
      assert.ok(error instanceof DefiniteError, String(error));
      const text = `${error.message} ${error.hint ?? ''}`;
      assert.match(text, /sluice_watermark/);
      assert.match(text, /CREATE TABLE/);
      assert.match(text, /GRANT INSERT, UPDATE/);
      return true;
    });
    const [end] = await log.endOffsets(capture.topic).catch(() => [0]);
    assert.equal(end ?? 0, 0, 'nothing written to the log');
  } finally {
    await log.close();
  }

  // The table exists; users without INSERT, without UPDATE, and with both.
  await server.query(WATERMARK_TABLE(database));
  await server.query(`
    CREATE USER 'wm_reader'@'%'; GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO 'wm_reader'@'%'; GRANT SELECT ON ${database}.* TO 'wm_reader'@'%';
    CREATE USER 'wm_half'@'%'; GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO 'wm_half'@'%'; GRANT SELECT ON ${database}.* TO 'wm_half'@'%'; GRANT INSERT ON ${database}.sluice_watermark TO 'wm_half'@'%';
    CREATE USER 'wm_writer'@'%'; GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO 'wm_writer'@'%'; GRANT SELECT ON ${database}.* TO 'wm_writer'@'%'; GRANT INSERT, UPDATE ON ${database}.sluice_watermark TO 'wm_writer'@'%';`);
  const reader = await watermarkProblems(server.url(database, 'wm_reader'), { snapshot: 'watermark' });
  assert.equal(reader.length, 1, `wm_reader: ${JSON.stringify(reader)}`);
  assert.match(reader[0]!, /INSERT/);
  assert.match(reader[0]!, /GRANT INSERT, UPDATE ON `?wm_preflight`?\.`?sluice_watermark`? TO 'wm_reader'@'%'/);
  const half = await watermarkProblems(server.url(database, 'wm_half'), { snapshot: 'watermark' });
  assert.equal(half.length, 1, `wm_half: ${JSON.stringify(half)}`);
  assert.match(half[0]!, /UPDATE/);
  assert.match(half[0]!, /GRANT [A-Z, ]*UPDATE[A-Z, ]* ON `?wm_preflight`?\.`?sluice_watermark`? TO 'wm_half'@'%'/);
  assert.deepEqual(await watermarkProblems(server.url(database, 'wm_writer'), { snapshot: 'watermark' }), []);
  assert.deepEqual((await mysqlPreflight(mysqlConfig('pf', server.url(database, 'wm_writer'), new Map([['tables', 'products'], ['snapshot', 'watermark'], ['server_id', '805']])))).problems, []);
  const log2 = await FileLog.open(path.join(folderOf, 'log2'));
  try {
    const capture = new MysqlCapture(mysqlConfig('pf', server.url(database, 'wm_reader'), new Map([['tables', 'products'], ['snapshot', 'watermark'], ['server_id', '805']])), log2);
    await assert.rejects(within(capture.run(new AbortController().signal), 30_000, 'run() to refuse'), (error: unknown) => {
      assert.ok(error instanceof DefiniteError, String(error));
      assert.match(`${error.message} ${error.hint ?? ''}`, /GRANT INSERT, UPDATE ON `?wm_preflight`?\.`?sluice_watermark`? TO 'wm_reader'@'%'/);
      return true;
    });
  } finally {
    await log2.close();
  }

  // A table without a primary key is refused in watermark mode as in the others.
  const noKey = await mysqlPreflight(mysqlConfig('pf', server.url(database), new Map([['tables', 'products, events'], ['snapshot', 'watermark'], ['server_id', '805']])));
  assert.deepEqual(noKey.problems.map((p) => p.check), ['primary_key']);
  assert.match(noKey.problems[0]!.message, /wm_preflight\.events has no primary key/);
  // A snapshot mode that does not exist is refused by the configuration.
  assert.throws(() => mysqlConfig('pf', server.url(database), new Map([['tables', 'products'], ['snapshot', 'sometimes']])), (error: unknown) => error instanceof DefiniteError && /snapshot/.test(error.message));
});

// ── 6. Through the pipeline ─────────────────────────────────────────────────────────────────

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

test('6: views over a watermark-mode source never show part of the snapshot (empty, then the whole state) while writes go on, and equal MariaDB at the end', { timeout: 120_000 }, scenario(async (t: TestContext) => {
  const database = 'wm_pipeline';
  const source = 'p';
  const count = 30_000;
  const groups = 20;
  await server.createDatabase(database);
  await createItems(database, 'items', count, groups);
  await server.query(WATERMARK_TABLE(database));
  const views = {
    totals: `SELECT count(*) AS n, sum(val) AS total FROM ${source}.items`,
    by_group: `SELECT grp, count(*) AS n, sum(val) AS total FROM ${source}.items GROUP BY grp`,
    moved: `SELECT id, grp, val FROM ${source}.items WHERE pad = 'moved'`,
  };
  const onMariadb = (sql: string) => sql.replaceAll(`${source}.`, `${database}.`);
  // Every transaction of the writer keeps each group's count and sum of val: so does every state
  // a view may show, from the whole snapshot on.
  const wantTotals = normalize(await server.query(onMariadb(views.totals)));
  const wantGroups = normalize(await server.query(onMariadb(views.by_group)));
  /** Transactions that keep the invariant, at ids `pick` chooses. */
  const invariantChanges = (pick: (r: Random) => number) => async (connection: mysql.Connection, r: Random) => {
    const id = pick(r);
    const [row] = (await connection.query(`SELECT grp, val FROM items WHERE id >= ? ORDER BY id LIMIT 1 FOR UPDATE`, [id]))[0] as Array<{ grp: number; val: number }>;
    if (!row) return;
    const choice = r.integer(0, 2);
    if (choice === 0) {
      // A transfer of val between two rows of the same group.
      const d = r.integer(1, 30);
      const [[from]] = (await connection.query(`SELECT id FROM items WHERE id >= ? AND grp = ? ORDER BY id LIMIT 1`, [id, row.grp])) as unknown as [Array<{ id: string }>];
      const [[to]] = (await connection.query(`SELECT id FROM items WHERE id >= ? AND grp = ? ORDER BY id LIMIT 1`, [2 * r.integer(1, count), row.grp])) as unknown as [Array<{ id: string }>];
      if (!from || !to || from.id === to.id) return;
      await connection.query(`UPDATE items SET val = val - ? WHERE id = ?`, [d, from.id]);
      await connection.query(`UPDATE items SET val = val + ? WHERE id = ?`, [d, to.id]);
    } else if (choice === 1) {
      // A key change anywhere in the range.
      await connection.query(`UPDATE items SET id = ?, pad = 'moved' WHERE id = (SELECT id FROM (SELECT id FROM items WHERE id >= ? ORDER BY id LIMIT 1) x)`, [2 * r.integer(0, count) + 1, id]);
    } else {
      // A row deleted and its values inserted under another key, in one transaction.
      const [[gone]] = (await connection.query(`DELETE FROM items WHERE id >= ? ORDER BY id LIMIT 1 RETURNING id, grp, val`, [id])) as unknown as [Array<{ id: string; grp: number; val: number }>];
      if (gone) await connection.query(`INSERT INTO items VALUES (?, ?, ?, 'moved')`, [2 * r.integer(0, count) + 1, gone.grp, gone.val]);
    }
  };
  // One writer anywhere, one where the snapshot reads now (about 2 ids a row: rows read so far).
  let hotFrom = 0;
  const writer = startWriter(database, invariantChanges((r) => 2 * r.integer(1, count)), seededRandom(seed ^ 0x6), 1);
  const chaser = startWriter(database, invariantChanges((r) => hotFrom + r.integer(0, 2000)), seededRandom(seed ^ 0x66), 1);
  const data = path.join(folder, '6');
  const text = `CREATE SOURCE ${source} FROM MYSQL '${server.url(database)}' WITH (tables = 'items', snapshot = 'watermark', chunk_rows = '1000', server_id = '806');
${Object.entries(views).map(([name, sql]) => `CREATE VIEW ${name} AS ${sql};`).join('\n')}`;
  const runtime = await PipelineRuntime.open({ text, file: 'p.sql', data });
  const observed = { reads: 0, empty: 0, whole: 0 };
  const partial: string[] = [];
  let polling = true;
  let atWhole: number | undefined;
  const committed = () => writer.counts.committed + chaser.counts.committed;
  const atStart = committed();
  const poller = (async () => {
    while (polling) {
      const snapshot = runtime.status().sources[0]?.snapshot;
      if (snapshot && !snapshot.done) hotFrom = 2 * snapshot.rows;
      // Both views read in one tick: one state.
      const totals = normalize(runtime.readView('totals').rows);
      const byGroup = normalize(runtime.readView('by_group', { limit: 1000 }).rows);
      observed.reads++;
      const empty = (totals.length === 0 || totals.every((row) => JSON.parse(row).n === '0')) && byGroup.length === 0;
      const whole = JSON.stringify(totals) === JSON.stringify(wantTotals) && JSON.stringify(byGroup) === JSON.stringify(wantGroups);
      if (empty) observed.empty++;
      else if (whole) {
        observed.whole++;
        atWhole ??= committed();
      } else if (partial.length < 5) partial.push(`totals ${JSON.stringify(totals)}, ${byGroup.length} groups ${JSON.stringify(byGroup.slice(0, 2))}…`);
      if (!empty && !whole && partial.length >= 5) break;
      await sleep(3);
    }
  })();
  runtime.start();
  try {
    await waitFor('the views to show the snapshot', () => atWhole !== undefined || partial.length > 0 || runtime.status().sources.some((s) => s.state === 'failed'), 60_000);
    assert.deepEqual(partial, [], `a view showed a state that is neither empty nor the whole snapshot (part of it, or a state that breaks the writers' invariant; want empty, or totals ${JSON.stringify(wantTotals)} and all ${wantGroups.length} groups), source ${JSON.stringify(runtime.status().sources)}`);
    await sleep(500); // streaming, with the writers still going
    await writer.stop();
    await chaser.stop();
    polling = false;
    await poller;
    assert.deepEqual(partial, [], 'a view showed a state that breaks the writer\'s invariant');
    assert.ok(atWhole! > atStart, 'the writer committed nothing during the snapshot');
    // The end: every view equals MariaDB's answer.
    const deadline = Date.now() + 30_000;
    for (;;) {
      const problems: string[] = [];
      for (const [name, sql] of Object.entries(views)) {
        const want = normalize(await server.query(onMariadb(sql)));
        const got = normalize(runtime.readView(name, { limit: 1_000_000 }).rows);
        if (JSON.stringify(want) !== JSON.stringify(got)) problems.push(`${name}: ${describeDiff(want, got)}`);
      }
      if (problems.length === 0) break;
      if (Date.now() > deadline) assert.fail(`the views do not converge to MariaDB:\n  ${problems.join('\n  ')}\n  sources ${JSON.stringify(runtime.status().sources)}`);
      await sleep(100);
    }
    t.diagnostic(`${observed.reads} reads: ${observed.empty} empty, ${observed.whole} whole, none partial; writers ${JSON.stringify([writer.counts, chaser.counts])} (${atWhole! - atStart} before the snapshot showed)`);
  } finally {
    polling = false;
    await writer.stop().catch(() => {});
    await chaser.stop().catch(() => {});
    await poller.catch(() => {});
    await runtime.close();
  }
  // The log the views were read from: a watermark snapshot, with transactions inside it.
  const log = await FileLog.open(path.join(data, 'log'));
  try {
    const records = await logRecords(log, `source.${source}`);
    const start = records.findIndex((r) => r.kind === SNAPSHOT_START);
    const end = records.findIndex((r) => r.kind === SNAPSHOT_END);
    assert.equal(records[start]?.position.mode, 'watermark');
    assert.ok(end > start && records.slice(start, end).some((r) => r.kind === TRANSACTION), 'transactions interleaved in the snapshot');
  } finally {
    await log.close();
  }
}));

// ── 7, 8. What happens to the server during a watermark snapshot ──────────────────────────

/**
 * A pipeline over 20,000 rows read in 200-row watermark chunks, with a view of count and sum:
 * `during` changes the table once the snapshot has begun; then the view must equal MariaDB.
 * Returns the source topic's records.
 */
async function duringWatermarkSnapshot(database: string, serverId: string, during: (items: string) => Promise<void>): Promise<SourceRecord[]> {
  const source = database;
  await server.createDatabase(database);
  await createItems(database, 'items', 20_000);
  await server.query(WATERMARK_TABLE(database));
  const data = path.join(folder, database);
  const view = `SELECT count(*) AS n, sum(val) AS total FROM ${source}.items`;
  const text = `CREATE SOURCE ${source} FROM MYSQL '${server.url(database)}' WITH (tables = 'items', snapshot = 'watermark', chunk_rows = '200', server_id = '${serverId}');
CREATE VIEW totals AS ${view};`;
  const runtime = await PipelineRuntime.open({ text, file: `${database}.sql`, data });
  runtime.start();
  try {
    await waitFor('the snapshot to start', () => (runtime.status().sources[0]?.snapshot?.rows ?? 0) > 0, 30_000, 2);
    await during(`\`${database}\`.items`);
    const want = normalize(await server.query(view.replaceAll(`${source}.`, `\`${database}\`.`)));
    await waitFor('the view to equal MariaDB', () => JSON.stringify(normalize(runtime.readView('totals').rows)) === JSON.stringify(want) || runtime.status().sources[0]?.state === 'failed', 60_000);
    assert.deepEqual(normalize(runtime.readView('totals').rows), want, `source ${JSON.stringify(runtime.status().sources)}`);
    assert.equal(runtime.status().views.find((v) => v.name === 'totals')?.failure, undefined, 'the view runs on');
  } finally {
    await runtime.close();
  }
  const log = await FileLog.open(path.join(data, 'log'));
  try {
    return await logRecords(log, `source.${source}`);
  } finally {
    await log.close();
  }
}

test('7: a 30,000-row transaction committed during a watermark snapshot is written in parts inside it, and the pipeline applies it whole with the snapshot', { timeout: 90_000 }, scenario(async (t: TestContext) => {
  const records = await duringWatermarkSnapshot('wm_large', '807', async (items) => {
    // One transaction of 30,000 inserts and 5,000 updates while the chunks are read.
    await server.query(`BEGIN; INSERT INTO ${items} SELECT seq + 1000000, seq % 20, 1, 'big' FROM \`wm_large\`.seq_1_to_30000; UPDATE ${items} SET val = val + 1 WHERE id <= 10000; COMMIT`);
  });
  const start = records.findIndex((r) => r.kind === SNAPSHOT_START);
  const end = records.findIndex((r) => r.kind === SNAPSHOT_END);
  const large = records.findIndex((r) => r.kind === TRANSACTION && transactionParts(r).length > 0);
  assert.ok(start < large && large < end, `the large transaction (at ${large}) lies inside the snapshot (${start}…${end}): the set-up needs it there`);
  const parts = transactionParts(records[large]!);
  assert.ok(parts.every((offset) => offset > start && offset < large && records[offset]!.kind === TRANSACTION_PART), 'its parts are inside the snapshot too');
  t.diagnostic(`snapshot records ${start}…${end}; the transaction at ${large} in ${parts.length} parts`);
}));

test('8: ADD COLUMN during a watermark snapshot: chunks before and after it describe their own columns, and the views stay exact', { timeout: 90_000 }, scenario(async (t: TestContext) => {
  const records = await duringWatermarkSnapshot('wm_ddl', '808', async (items) => {
    await server.query(`ALTER TABLE ${items} ADD COLUMN extra int`);
    await server.query(`UPDATE ${items} SET val = val + 1, extra = 7 WHERE id % 3 = 0`);
  });
  const chunks = records.filter((r) => r.kind === SNAPSHOT_ROWS);
  const widths = chunks.map((r) => r.tables[0]!.columns.length);
  assert.ok(widths[0] === 4 && widths.at(-1) === 5, `the first chunk has the old columns, the last the new one: ${widths.join(',')}`);
  for (const chunk of chunks) for (const change of chunk.changes) assert.equal(change.row.length, chunk.tables[0]!.columns.length, 'each chunk row has the columns its record describes');
  t.diagnostic(`chunk widths ${widths.join(',')}`);
}));
