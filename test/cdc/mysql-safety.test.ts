/**
 * What a MySQL/MariaDB source must never skip silently, and how `--resnapshot` recovers, against
 * hermetic MariaDB 10.11 servers:
 *
 * 1. the binlog Sluice needs was purged while it was stopped: the source fails for good with
 *    `mysql_binlog_gone` (its hint names `--resnapshot NAME`) and the views keep what they had;
 *    a start with `resnapshot` takes a second snapshot that brings the views in line (rows written
 *    while stopped included), and a later start without the flag streams on, no third snapshot;
 * 2. the binlog was reset and holds another transaction (another GTID) at the very position where
 *    the log's last transaction began: `mysql_binlog_mismatch`, naming both GTIDs, not a silent
 *    continue;
 * 3. `--resnapshot` naming a source the pipeline lacks is refused with `unknown_source` (the
 *    runtime's start(), runToEnd(), and `sluice run`);
 * 4. the resnapshot flag is consumed once: an object with `resnapshot` started twice continues
 *    the snapshot its first run started; a new object with the flag starts another one.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import mysql from 'mysql2/promise';
import { DefiniteError, TransientError } from '../../src/core/index.ts';
import { FileLog } from '../../src/log/index.ts';
import { PipelineRuntime } from '../../src/pipeline/runtime.ts';
import { mysqlConfig } from '../../src/sources/mysql/config.ts';
import { MysqlCapture } from '../../src/sources/mysql/connector.ts';
import { decodeSourceRecord, DELETE, SNAPSHOT_END, SNAPSHOT_ROWS, SNAPSHOT_START, TRANSACTION, TRANSACTION_PART, transactionParts, TRUNCATE, type SourceRecord } from '../../src/sources/records.ts';
import { startMariadb, type MariadbServer } from '../services/mariadb.ts';
import { describeDiff, scenario, sourceStatus, waitFor, sourceTopicRecords as topicRecords } from './scenario-helpers.ts';

let server: MariadbServer;
let folder: string;
const others: MariadbServer[] = [];

before(async () => {
  server = await startMariadb();
  folder = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-mysql-safety-'));
});

after(async () => {
  for (const other of others) await other.stop();
  await server?.stop();
  fs.rmSync(folder, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

// ── Helpers ─────────────────────────────────────────────────────────────────────────────────

/** The source topic's records of a pipeline's data directory (the runtime closed). */
async function pipelineRecords(data: string, source: string): Promise<SourceRecord[]> {
  const log = await FileLog.open(path.join(data, 'log'));
  try {
    return await topicRecords(log, `source.${source}`);
  } finally {
    await log.close();
  }
}

const starts = (records: SourceRecord[]) => records.filter((r) => r.kind === SNAPSHOT_START).length;

/** The one table `items (id, label)` as the log's records build it: id → label. */
function applyItems(records: SourceRecord[]): Map<string, string | null> {
  const rows = new Map<string, string | null>();
  const changesOf = (record: SourceRecord) => [...transactionParts(record).map((offset) => records[offset]!), record].flatMap((r) => r.changes);
  for (const record of records) {
    if (record.kind === SNAPSHOT_START) rows.clear();
    if (record.kind === TRANSACTION_PART) continue;
    for (const change of changesOf(record)) {
      if (change.op === TRUNCATE) rows.clear();
      else if (change.op === DELETE) rows.delete(String(change.row[0]));
      else rows.set(String(change.row[0]), change.row[1] === null ? null : String(change.row[1]));
    }
  }
  return rows;
}

async function mariadbItems(on: MariadbServer, database: string): Promise<Map<string, string | null>> {
  const rows = await on.query(`SELECT id, label FROM items`, database);
  return new Map(rows.map((r: { id: number; label: string | null }) => [String(r.id), r.label]));
}

function sameItems(got: Map<string, string | null>, want: Map<string, string | null>): string | undefined {
  const differs = [...want].filter(([id, label]) => got.get(id) !== label).concat([...got].filter(([id]) => !want.has(id)));
  return differs.length === 0 ? undefined : `${got.size} rows for ${want.size}; ${differs.length} differ, e.g. ${JSON.stringify(differs.slice(0, 3))}`;
}

/** Rows as sorted JSON text, values as text: a view's rows and MariaDB's compare alike. */
function normalize(rows: Record<string, unknown>[]): string[] {
  return rows.map((row) => JSON.stringify(Object.fromEntries(Object.entries(row).map(([k, v]) => [k, v === null || v === undefined ? null : String(v)])))).sort();
}

interface View {
  name: string;
  /** The view's query, source tables as `SOURCE.table`. */
  sql: string;
}

function pipeline(on: MariadbServer, database: string, source: string, views: View[]): string {
  return [`CREATE SOURCE ${source} FROM MYSQL '${on.url(database)}' WITH (tables = 'items');`, ...views.map((v) => `CREATE VIEW ${v.name} AS ${v.sql};`)].join('\n');
}

/** Waits until every view equals the same query on MariaDB; fails early if the source failed. */
async function converges(runtime: PipelineRuntime, on: MariadbServer, database: string, source: string, views: View[], what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const problems: string[] = [];
    for (const view of views) {
      const want = normalize(await on.query(view.sql.replaceAll(`${source}.`, `\`${database}\`.`), database));
      const got = normalize(runtime.readView(view.name, { limit: 10_000_000 }).rows);
      if (JSON.stringify(want) !== JSON.stringify(got)) problems.push(`${view.name}: ${describeDiff(want, got)}`);
    }
    if (problems.length === 0) return;
    const failed = sourceStatus(runtime, source).state === 'failed';
    if (failed || Date.now() > deadline) assert.fail(`${what}: the views do not equal MariaDB${failed ? ' (the source failed)' : ''}\n  ${problems.join('\n  ')}\n  ${JSON.stringify(runtime.status().sources)}`);
    await sleep(50);
  }
}

// ── 1. A purged binlog ──────────────────────────────────────────────────────────────────────

test(
  'a purged binlog fails the source for good (mysql_binlog_gone, views kept); --resnapshot takes a new snapshot once, then streaming goes on',
  scenario(async () => {
    const database = 'purged';
    const source = 'shop';
    await server.createDatabase(database);
    await server.query(`CREATE TABLE items (id int PRIMARY KEY, label varchar(100))`, database);
    await server.query(`INSERT INTO items SELECT seq, CONCAT('item ', seq) FROM seq_1_to_200`, database);
    const views: View[] = [
      { name: 'all_items', sql: `SELECT id, label FROM ${source}.items` },
      { name: 'n', sql: `SELECT count(*) AS n FROM ${source}.items` },
    ];
    const text = pipeline(server, database, source, views);
    const data = path.join(folder, 'purged');

    // Captured, with transactions after the snapshot (the log ends with a TRANSACTION record).
    let runtime = await PipelineRuntime.open({ text, data });
    runtime.start();
    try {
      await converges(runtime, server, database, source, views, 'after the snapshot');
      for (let i = 0; i < 3; i++) await server.query(`UPDATE items SET label = 'updated ${i}' WHERE id = ${i + 1}`, database);
      await converges(runtime, server, database, source, views, 'after the first changes');
    } finally {
      await runtime.close();
    }
    let records = await pipelineRecords(data, source);
    assert.equal(records.at(-1)!.kind, TRANSACTION);
    assert.equal(typeof records.at(-1)!.position.begin, 'number', 'a transaction record names where it begins');
    assert.match(String(records.at(-1)!.position.gtid), /^\d+-\d+-\d+$/, 'and its GTID');
    const before = normalize(await server.query(`SELECT id, label FROM items`, database));

    // Stopped: more writes, and the binlog holding them (and the log's position) purged.
    await server.query(`INSERT INTO items SELECT seq, CONCAT('while stopped ', seq) FROM seq_201_to_260`, database);
    await server.query(`DELETE FROM items WHERE id BETWEEN 10 AND 19`, database);
    await server.query(`FLUSH BINARY LOGS`);
    await server.query(`UPDATE items SET label = 'in the second file' WHERE id = 5`, database);
    await server.query(`FLUSH BINARY LOGS`);
    const [{ File: current }] = await server.query(`SHOW MASTER STATUS`);
    await waitFor(
      'the older binlogs to be purged',
      async () => {
        await server.query(`PURGE BINARY LOGS TO '${current}'`);
        const logs = await server.query(`SHOW BINARY LOGS`);
        return logs.length === 1 && logs[0].Log_name === current;
      },
      10_000,
      100,
    );
    assert.ok(String(records.at(-1)!.position.file) < current, `the log's position ${records.at(-1)!.position.file} is in a purged file (now ${current})`);

    // Started again: the source fails for good; the views keep what they had.
    runtime = await PipelineRuntime.open({ text, data });
    runtime.start();
    try {
      await waitFor('the source to fail', () => sourceStatus(runtime, source).state === 'failed', 15_000, 20);
      const status = sourceStatus(runtime, source);
      assert.equal(status.error?.code, 'mysql_binlog_gone', JSON.stringify(status));
      assert.match(status.error!.message, new RegExp(`^source ${source}: `));
      assert.match(status.error!.hint ?? '', new RegExp(`--resnapshot ${source}\\b`));
      // Not retried: still failed a while later, and nothing was captured.
      await sleep(1_500);
      assert.equal(sourceStatus(runtime, source).state, 'failed');
      assert.deepEqual(normalize(runtime.readView('all_items', { limit: 1_000_000 }).rows), before, 'the view keeps the rows it had');
      assert.deepEqual(runtime.readView('n').rows.map((r) => Number(r.n)), [200]);
    } finally {
      await runtime.close();
    }
    records = await pipelineRecords(data, source);
    assert.equal(starts(records), 1);

    // --resnapshot: a second snapshot, and the views equal MariaDB (rows written while stopped too).
    runtime = await PipelineRuntime.open({ text, data, resnapshot: [source] });
    runtime.start();
    try {
      await converges(runtime, server, database, source, views, 'after --resnapshot');
      assert.notEqual(sourceStatus(runtime, source).state, 'failed');
      await server.query(`INSERT INTO items VALUES (1000, 'after the new snapshot')`, database);
      await converges(runtime, server, database, source, views, 'streaming after the new snapshot');
    } finally {
      await runtime.close();
    }
    records = await pipelineRecords(data, source);
    assert.equal(starts(records), 2, 'a second snapshot start record');
    const startCount = records.length;

    // Started again without the flag: no third snapshot, and new writes stream in.
    runtime = await PipelineRuntime.open({ text, data });
    runtime.start();
    try {
      await server.query(`UPDATE items SET label = 'after the restart' WHERE id = 1000; INSERT INTO items VALUES (1001, 'new')`, database);
      await converges(runtime, server, database, source, views, 'after a restart without --resnapshot');
      assert.equal(sourceStatus(runtime, source).state, 'streaming');
    } finally {
      await runtime.close();
    }
    records = await pipelineRecords(data, source);
    assert.equal(starts(records), 2, 'no snapshot again without the flag');
    assert.ok(records.slice(startCount).every((r) => r.kind === TRANSACTION), 'only transactions after the restart');
  }),
);

// ── 2. Another transaction at the recorded position ─────────────────────────────────────────

/** The byte sizes of a decimal number's digits. */
const digits = (n: number) => String(n).length;

/** A MariaDB of its own (RESET MASTER is server-wide) with `reset.items`, captured into a log; `transactions` after the snapshot. */
async function capturedServer(dir: string, transactions: number, truncate = false) {
  const own = await startMariadb();
  others.push(own);
  const database = 'reset';
  await own.createDatabase(database);
  await own.query(`CREATE TABLE items (id int PRIMARY KEY, label varchar(100))`, database);
  await own.query(`CREATE TABLE filler (id int AUTO_INCREMENT PRIMARY KEY, v longtext)`, database);
  // Room before the log's position, for the fillers that line the reset binlog up with it.
  await own.query(`INSERT INTO items SELECT seq, REPEAT('a', 100) FROM seq_1_to_100`, database);
  const config = mysqlConfig('shop', own.url(database), new Map([['tables', 'items'], ['server_id', '881']]));
  const log = await FileLog.open(dir);
  const controller = new AbortController();
  const capture = new MysqlCapture(config, log);
  const running = capture.run(controller.signal);
  running.catch(() => {});
  try {
    await capture.caughtUp();
    for (let i = 0; i < transactions; i++) await own.query(`INSERT INTO items VALUES (${200 + i}, 'captured ${i}')`, database);
    if (truncate) await own.query(`TRUNCATE TABLE items`, database);
    await capture.caughtUp();
    return { own, database, config, topic: capture.topic, records: await topicRecords(log, capture.topic) };
  } finally {
    controller.abort();
    await running;
    await log.close();
  }
}

/**
 * RESET MASTER (the binlog starts again under the same file name), then transactions of another
 * GTID domain (7) until `target` is where the next transaction starts: one to a captured table.
 * Returns that transaction's GTID.
 */
async function resetBinlogTo(own: MariadbServer, database: string, file: string, target: number): Promise<string> {
  const connection = await mysql.createConnection({ host: own.host, port: own.port, user: 'root', database });
  try {
    await connection.query(`RESET MASTER TO ${Number(/\.(\d+)$/.exec(file)![1])}`);
    await connection.query(`SET SESSION gtid_domain_id = 7`);
    const position = async () => {
      const [[status]] = (await connection.query(`SHOW MASTER STATUS`)) as unknown as [Array<{ File: string; Position: number }>];
      assert.equal(status!.File, file, 'the reset binlog has the file name the log recorded');
      return Number(status!.Position);
    };
    const fill = (length: number) => connection.query(`INSERT INTO filler (v) VALUES (REPEAT('x', ${length}))`);
    // A filler's size is c + digits(L) + L (the statement's text in its Annotate_rows event, the
    // value in its Write_rows event): one of length 1 measures c, one more fills the rest.
    let at = await position();
    await fill(1);
    const c = (await position()) - at - 2;
    at = await position();
    const left = target - at;
    const length = [1, 2, 3, 4, 5, 6].map((d) => left - c - d).find((l) => l >= 0 && digits(l) === left - c - l);
    assert.ok(length !== undefined, `no filler fits the ${left} bytes between ${at} and ${target} (a filler is ${c} + digits + length bytes)`);
    await fill(length);
    assert.equal(await position(), target, 'the fillers end exactly at the position the log recorded');
    await connection.query(`INSERT INTO items VALUES (300, 'after the reset')`);
  } finally {
    await connection.end();
  }
  const [event] = await own.query(`SHOW BINLOG EVENTS IN '${file}' FROM ${target} LIMIT 1`);
  assert.equal(event.Event_type, 'Gtid', 'the reset binlog has a transaction starting at the recorded position');
  return /GTID (\S+)$/.exec(event.Info)![1]!;
}

/** Runs a capture on the log at `dir`: the error it stops with, or none if it captured on (aborted once it appends, or after 10 s). */
async function captureAgain(dir: string, config: ReturnType<typeof mysqlConfig>, topic: string): Promise<{ error?: Error; appended: number }> {
  const log = await FileLog.open(dir);
  try {
    const [before] = await log.endOffsets(topic);
    const controller = new AbortController();
    const running = new MysqlCapture(config, log).run(controller.signal);
    let settled = false;
    running.then(
      () => (settled = true),
      () => (settled = true),
    );
    const deadline = Date.now() + 10_000;
    while (!settled && Date.now() < deadline && (await log.endOffsets(topic))[0] === before) await sleep(50);
    controller.abort();
    let error: Error | undefined;
    try {
      await running;
    } catch (caught) {
      error = caught as Error;
    }
    const [end] = await log.endOffsets(topic);
    return { ...(error ? { error } : {}), appended: end! - before! };
  } finally {
    await log.close();
  }
}

test(
  'a reset binlog holding another transaction (another GTID) where the last one began is refused with mysql_binlog_mismatch, not continued',
  scenario(async () => {
    const dir = path.join(folder, 'reset-log');
    const { own, database, config, topic, records } = await capturedServer(dir, 3);
    const last = records.at(-1)!;
    assert.equal(last.kind, TRANSACTION);
    const file = String(last.position.file);
    const begin = Number(last.position.begin);
    const gtid = String(last.position.gtid);
    const [event] = await own.query(`SHOW BINLOG EVENTS IN '${file}' FROM ${begin} LIMIT 1`);
    assert.equal(event.Event_type, 'Gtid', `the recorded begin ${file}:${begin} is the transaction's GTID event`);
    assert.match(event.Info, new RegExp(`GTID ${gtid}$`));

    const otherGtid = await resetBinlogTo(own, database, file, begin);
    assert.notEqual(otherGtid, gtid);

    // Started again: a definite error naming both transactions, and nothing written to the log.
    const { error, appended } = await captureAgain(dir, config, topic);
    assert.ok(error, `the capture went on over the reset binlog (${appended} records appended)`);
    assert.ok(error instanceof DefiniteError && !(error instanceof TransientError), `${error}`);
    assert.equal(error.code, 'mysql_binlog_mismatch', `${error}`);
    assert.ok(error.message.includes(gtid) && error.message.includes(otherGtid), error.message);
    assert.match(error.message, /^source shop: /);
    assert.match(error.hint ?? '', /--resnapshot shop\b/);
    assert.equal(appended, 0, 'nothing captured from the other binlog');
  }),
);

test(
  'a reset binlog lined up with the position of a snapshot no transaction followed is refused too',
  scenario(async () => {
    const dir = path.join(folder, 'reset-after-snapshot');
    const { own, database, config, topic, records } = await capturedServer(dir, 0);
    const last = records.at(-1)!;
    assert.equal(last.kind, SNAPSHOT_END, 'no transaction after the snapshot (the set-up)');
    await resetBinlogTo(own, database, String(last.position.file), Number(last.position.pos));
    const { error, appended } = await captureAgain(dir, config, topic);
    assert.ok(error instanceof DefiniteError, `the capture went on over the reset binlog: ${appended} records appended, error ${error}`);
    assert.equal(appended, 0);
  }),
);

test(
  'a reset binlog lined up with where a TRUNCATE (a statement outside a transaction) began is refused too',
  scenario(async () => {
    const dir = path.join(folder, 'reset-after-truncate');
    const { own, database, config, topic, records } = await capturedServer(dir, 1, true);
    const last = records.at(-1)!;
    assert.equal(last.kind, TRANSACTION);
    assert.equal(last.changes[0]!.op, 3, 'the log ends with the TRUNCATE (the set-up)');
    assert.ok(String(last.position.gtid) !== '' && typeof last.position.begin === 'number', `the TRUNCATE record names its GTID and where it began: ${JSON.stringify(last.position)}`);
    await resetBinlogTo(own, database, String(last.position.file), Number(last.position.begin));
    const { error, appended } = await captureAgain(dir, config, topic);
    assert.ok(error instanceof DefiniteError, `the capture went on over the reset binlog: ${appended} records appended, error ${error}`);
    assert.equal(error.code, 'mysql_binlog_mismatch');
    assert.equal(appended, 0);
  }),
);

// ── 3. An unknown source ────────────────────────────────────────────────────────────────────

test('--resnapshot naming a source the pipeline lacks is refused with unknown_source, naming its sources', async () => {
  const database = 'unknown';
  await server.createDatabase(database);
  await server.query(`CREATE TABLE items (id int PRIMARY KEY, label varchar(100))`, database);
  const text = pipeline(server, database, 'shop', [{ name: 'n', sql: 'SELECT count(*) AS n FROM shop.items' }]);
  const check = (error: unknown) => {
    assert.ok(error instanceof DefiniteError, `${error}`);
    assert.equal(error.code, 'unknown_source');
    assert.match(error.message, /\bnope\b/);
    assert.match(error.hint ?? '', /\bshop\b/);
    return true;
  };
  let runtime = await PipelineRuntime.open({ text, data: path.join(folder, 'unknown-up'), resnapshot: ['shop', 'nope'] });
  try {
    assert.throws(() => runtime.start(), check);
  } finally {
    await runtime.close();
  }
  runtime = await PipelineRuntime.open({ text, data: path.join(folder, 'unknown-run'), resnapshot: ['nope'] });
  try {
    await assert.rejects(runtime.runToEnd(), check);
  } finally {
    await runtime.close();
  }
  // Through the command line.
  const file = path.join(folder, 'unknown.sql');
  fs.writeFileSync(file, text);
  const sluice = path.resolve(import.meta.dirname, '../../bin/sluice.js');
  const result = spawnSync(process.execPath, [sluice, 'run', file, '--data', path.join(folder, 'unknown-cli'), '--resnapshot', 'nope', '--quiet'], { encoding: 'utf8', timeout: 30_000 });
  assert.notEqual(result.status, 0, result.stdout);
  assert.match(result.stderr, /--resnapshot nope: the pipeline has no source nope/);
  assert.match(result.stderr, /hint: its sources are shop/);
});

// ── 4. The flag is consumed once ─────────────────────────────────────────────────────────────

test('resnapshot is taken once per capture object: run() again continues its snapshot, a new object with the flag starts another', async () => {
  const database = 'once';
  await server.createDatabase(database);
  await server.query(`CREATE TABLE items (id int PRIMARY KEY, label varchar(100))`, database);
  await server.query(`INSERT INTO items SELECT seq, CONCAT('item ', seq, ' ', REPEAT('z', 40)) FROM seq_1_to_100000`, database);
  const config = mysqlConfig('once', server.url(database), new Map([['tables', 'items'], ['server_id', '882'], ['chunk_rows', '1000']]));
  const log = await FileLog.open(path.join(folder, 'once-log'));
  const topic = 'source.once';
  /** Runs `capture` until `until` holds, then aborts it; returns what run() settled with. */
  const runUntil = async (capture: MysqlCapture, until: () => boolean | Promise<boolean>, what: string): Promise<void> => {
    const controller = new AbortController();
    const running = capture.run(controller.signal);
    let settled = false;
    running.then(
      () => (settled = true),
      () => (settled = true),
    );
    try {
      await waitFor(what, async () => {
        if (settled) await running; // a failure is the test's
        return until();
      }, 30_000, 2);
    } finally {
      controller.abort();
      await running;
    }
  };
  const midSnapshot = (capture: MysqlCapture) => () => capture.stats.phase === 'snapshot' && (capture.stats.snapshot?.rows ?? 0) >= 20_000;
  /** The records after the last start record: a snapshot not ended. */
  const unfinished = (records: SourceRecord[]) => {
    const tail = records.slice(records.findLastIndex((r) => r.kind === SNAPSHOT_START) + 1);
    return tail.length > 0 && tail.every((r) => r.kind === SNAPSHOT_ROWS);
  };
  try {
    // The first snapshot, whole.
    const first = new MysqlCapture(config, log);
    await runUntil(first, () => first.stats.phase === 'streaming', 'the first snapshot');
    let records = await topicRecords(log, topic);
    assert.equal(starts(records), 1);
    assert.equal(records.at(-1)!.kind, SNAPSHOT_END);

    // With the flag: a second snapshot, interrupted.
    const second = new MysqlCapture(config, log, { resnapshot: true });
    await runUntil(second, midSnapshot(second), 'the second snapshot to be under way');
    records = await topicRecords(log, topic);
    assert.equal(starts(records), 2, 'the flag takes a new snapshot over a finished one');
    assert.ok(unfinished(records), 'aborted mid-snapshot (the set-up)');

    // A new object with the flag again: a third start (the flag asks for a new snapshot each time it is given).
    const third = new MysqlCapture(config, log, { resnapshot: true });
    await runUntil(third, midSnapshot(third), 'the third snapshot to be under way');
    records = await topicRecords(log, topic);
    assert.equal(starts(records), 3, 'a new capture object with the flag starts over');
    assert.ok(unfinished(records), 'aborted mid-snapshot (the set-up)');
    const thirdStart = records.findLastIndex((r) => r.kind === SNAPSHOT_START);

    // The same object run again (a retry after a failure): it continues that snapshot.
    await server.query(`INSERT INTO items VALUES (200000, 'during the pause')`, database);
    await runUntil(third, () => third.stats.phase === 'streaming', 'the third snapshot to end');
    await server.query(`UPDATE items SET label = 'streamed' WHERE id = 1`, database);
    const controller = new AbortController();
    const running = third.run(controller.signal);
    running.catch(() => {});
    try {
      await third.caughtUp();
    } finally {
      controller.abort();
      await running;
    }
    records = await topicRecords(log, topic);
    assert.equal(starts(records), 3, 'run() again on the same object continues: no new start record');
    const snapshotRows = records.slice(thirdStart).filter((r) => r.kind === SNAPSHOT_ROWS).reduce((n, r) => n + r.changes.length, 0);
    assert.ok(snapshotRows <= 100_001 && snapshotRows >= 100_000, `the continued snapshot reads each row once (${snapshotRows} rows in its chunks)`);
    assert.equal(records.filter((r, i) => i > thirdStart && r.kind === SNAPSHOT_END).length, 1);
    const diff = sameItems(applyItems(records), await mariadbItems(server, database));
    assert.equal(diff, undefined, `the log's tables equal MariaDB's: ${diff}`);

    // A new object without the flag: no snapshot, it streams on.
    await server.query(`DELETE FROM items WHERE id <= 10`, database);
    const plain = new MysqlCapture(config, log);
    const stop = new AbortController();
    const streaming = plain.run(stop.signal);
    streaming.catch(() => {});
    try {
      await plain.caughtUp();
    } finally {
      stop.abort();
      await streaming;
    }
    records = await topicRecords(log, topic);
    assert.equal(starts(records), 3, 'no snapshot without the flag');
    assert.equal(sameItems(applyItems(records), await mariadbItems(server, database)), undefined);
  } finally {
    await log.close();
  }
});

// ── 5. Databases the binlog leaves out ──────────────────────────────────────────────────────

test('a binlog that leaves out a database (binlog_ignore_db): the preflight names a captured table or watermark table there, and watermarks that never reach the binlog fail the snapshot instead of hanging it', async () => {
  const own = await startMariadb({ settings: { 'binlog-ignore-db': 'marks' } });
  others.push(own);
  await own.query(`CREATE DATABASE shop; CREATE DATABASE marks;
    CREATE TABLE shop.items (id int PRIMARY KEY, label varchar(20)); INSERT INTO shop.items SELECT seq, 'x' FROM shop.seq_1_to_1000;
    CREATE TABLE marks.items (id int PRIMARY KEY);
    CREATE TABLE marks.sluice_watermark (source varchar(64) PRIMARY KEY, mark varchar(64) NOT NULL);
    CREATE VIEW shop.sluice_watermark AS SELECT * FROM marks.sluice_watermark;`);
  const folderFor = (name: string) => path.join(folder, `filtered-${name}`);
  const run = async (name: string, tables: string, options: Record<string, string>) => {
    const log = await FileLog.open(folderFor(name));
    const capture = new MysqlCapture(mysqlConfig('shop', own.url('shop'), new Map(Object.entries({ tables, server_id: '883', ...options }))), log);
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), 20_000);
    try {
      await capture.run(controller.signal);
      return undefined;
    } catch (error) {
      return error as DefiniteError;
    } finally {
      clearTimeout(timer);
      await log.close();
    }
  };
  // A captured table in the left-out database.
  let error = await run('table', 'items, marks.items', {});
  assert.ok(error instanceof DefiniteError, `${error}`);
  assert.match(error.message, /the binary log leaves out database marks \(binlog_ignore_db = marks\): its tables' changes would never reach Sluice: log it: remove binlog_ignore_db = marks/);
  // The watermark table there.
  error = await run('marks', 'items', { snapshot: 'watermark', watermark_table: 'marks.sluice_watermark' });
  assert.ok(error instanceof DefiniteError, `${error}`);
  assert.match(error.message, /leaves out database marks, where the watermark table marks\.sluice_watermark is/);
  // A watermark table the preflight cannot see through (a view over the left-out database): the
  // first watermark never shows in the binlog, and the capture says so instead of waiting forever.
  const began = Date.now();
  error = await run('view', 'items', { snapshot: 'watermark' });
  assert.ok(error instanceof DefiniteError, `the capture did not fail: ${error}`);
  assert.equal(error.code, 'mysql_watermark_unseen', `${error}`);
  assert.match(error.message, /shop\.sluice_watermark is not in the binlog/);
  assert.ok(Date.now() - began < 15_000, 'noticed within seconds');
});
