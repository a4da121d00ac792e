/**
 * `npm run bench -- mysql`: MySQL/MariaDB change data capture into the log, against a real
 * MariaDB 10.11 started for the run (test/services/mariadb.ts), with `mariadb-binlog` — MariaDB's
 * own client reading the binlog as a replica does — reading the same changes in the same run.
 *
 * 1. snapshot — `--rows` (1,000,000) orders read through a consistent snapshot into the log.
 * 2. streaming — a mixed load (inserts, updates, deletes: `--changes` rows in transactions of
 *    1,000) written while the capture is stopped, then captured into the log by a new capture on
 *    the same log, until the last transaction is durable; beside it mariadb-binlog reads the same
 *    binlog range from the server and decodes its rows (`--base64-output=decode-rows --verbose`)
 *    to /dev/null.
 * 3. latency — single-row INSERT transactions at `--rate` (5,000/s) from 8 connections for
 *    `--seconds` (5): from each COMMIT's acknowledgement to its record being durable in the log.
 *
 * Targets (issue 7): snapshot ≥ 200,000 rows/s, streaming ≥ 100,000 rows/s, commit-to-log
 * p99 ≤ 50 ms. `--quick` runs small sizes.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import mysql from 'mysql2/promise';
import { FileLog } from '../src/log/index.ts';
import { MysqlCapture, type MysqlCaptureConfig } from '../src/sources/mysql/connector.ts';
import { SNAPSHOT_END, TRANSACTION, TRANSACTION_PART, type SourceRecord } from '../src/sources/records.ts';
import { startMariadb } from '../test/services/mariadb.ts';
import { formatNumber, printTable, progress } from './format.ts';
import { integerOption, positiveOption } from './options.ts';

export const description = 'MySQL/MariaDB change data capture: snapshot and streaming rows/s and commit-to-log latency, against mariadb-binlog';

interface Settings {
  rows: number;
  changes: number;
  rate: number;
  seconds: number;
}

/** A place in the binlog: a file (`mariadb-bin.000001`) and a byte offset in it. */
interface Position {
  file: string;
  pos: number;
}

function settingsFrom(args: string[]): Settings {
  const { values } = parseArgs({ args, options: { quick: { type: 'boolean', default: false }, rows: { type: 'string' }, changes: { type: 'string' }, rate: { type: 'string' }, seconds: { type: 'string' } }, allowPositionals: true });
  const quick = values.quick;
  return {
    rows: integerOption('rows', values.rows, quick ? 100_000 : 1_000_000),
    changes: integerOption('changes', values.changes, quick ? 60_000 : 300_000),
    rate: integerOption('rate', values.rate, 5000),
    seconds: positiveOption('seconds', values.seconds, quick ? 2 : 5),
  };
}

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

/** Binlog positions in order: file names sort as their sequence numbers do. */
function compare(a: Position, b: Position): number {
  return a.file === b.file ? a.pos - b.pos : a.file < b.file ? -1 : 1;
}

const MARIADB_BINLOG = '/usr/bin/mariadb-binlog';

export async function run(args: string[]): Promise<void> {
  const settings = settingsFrom(args);
  if (!fs.existsSync(MARIADB_BINLOG)) throw Object.assign(new Error(`${MARIADB_BINLOG} is missing`), { hint: 'apt-get install mariadb-client' });
  // The harness's server is small (32M buffer pool, 8M redo log): give it room for the table, so
  // the snapshot reads memory, not the disk, and the load is not a stream of checkpoints.
  const server = await startMariadb({ settings: { 'innodb-buffer-pool-size': '512M', 'innodb-log-file-size': '512M', 'innodb-log-buffer-size': '64M' } });
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-bench-mysql-'));
  const log = await FileLog.open(path.join(folder, 'log'));
  let controller = new AbortController();
  let capture: Promise<void> | undefined;
  let pool: mysql.Pool | undefined;
  let client: mysql.Connection | undefined;
  try {
    await server.createDatabase('shop');
    await server.query(`CREATE TABLE orders (id bigint PRIMARY KEY, customer_id int, amount decimal(10,2), note text)`, 'shop');
    progress(`loading ${formatNumber(settings.rows)} orders into MariaDB`);
    // In transactions of 100,000: one of a million rows would go through a 1M-row binlog cache file.
    for (let at = 0; at < settings.rows; at += 100_000) {
      const last = Math.min(settings.rows, at + 100_000);
      await server.query(`INSERT INTO orders SELECT seq, seq % 10000, (seq % 10000) / 100, CONCAT('order ', seq) FROM seq_${at + 1}_to_${last}`, 'shop');
    }
    await server.query(`ANALYZE TABLE orders`, 'shop');

    // 1. Snapshot.
    let snapshotDone: () => void;
    const snapshotEnded = new Promise<void>((resolve) => (snapshotDone = resolve));
    const appended: Array<{ at: number; record: SourceRecord }> = [];
    let last: Position = { file: '', pos: 0 };
    let waitingFor: { target: Position; resolve: () => void } | undefined;
    /** Changes in the transactions (and parts of them) appended: checks the streaming count. */
    let streamedChanges = 0;
    const config: MysqlCaptureConfig = { name: 'bench', url: server.url('shop'), displayUrl: server.url('shop'), database: 'shop', tables: [{ schema: 'shop', name: 'orders' }], serverId: 5401, snapshot: 'consistent', watermarkTable: { schema: 'shop', name: 'sluice_watermark' }, chunkRows: 10_000 };
    const newCapture = () =>
      new MysqlCapture(config, log, {
        onAppend: (record) => {
          if (record.kind === SNAPSHOT_END) snapshotDone();
          if (record.kind === TRANSACTION || record.kind === TRANSACTION_PART) streamedChanges += record.changes.length;
          if (record.kind === TRANSACTION) {
            last = { file: String(record.position.file), pos: Number(record.position.pos) };
            appended.push({ at: performance.now(), record });
            if (waitingFor && compare(last, waitingFor.target) >= 0) waitingFor.resolve();
          }
        },
      });
    let current: MysqlCapture | undefined;
    const start = () => {
      controller = new AbortController();
      current = newCapture();
      capture = current.run(controller.signal);
      capture.catch((error: Error) => progress(`capture failed: ${error.message}`));
    };
    const began = performance.now();
    start();
    let shown = 0;
    const ticker = setInterval(() => {
      const rows = current?.stats.snapshot?.rows ?? 0;
      if (rows - shown >= 200_000) progress(`snapshot: ${formatNumber((shown = rows))} of about ${formatNumber(current?.stats.snapshot?.estimated ?? 0)} rows`);
    }, 100);
    await snapshotEnded.finally(() => clearInterval(ticker));
    const snapshotSeconds = (performance.now() - began) / 1000;

    // 1b. The same table read in watermark mode (DBLog chunks beside the binlog), into its own log.
    await server.query(`CREATE TABLE sluice_watermark (source varchar(64) PRIMARY KEY, mark varchar(64) NOT NULL)`, 'shop');
    const watermarkLog = await FileLog.open(path.join(folder, 'log-watermark'));
    let watermarkSeconds: number;
    {
      let ended: () => void;
      const done = new Promise<void>((resolve) => (ended = resolve));
      const watermark = new MysqlCapture({ ...config, name: 'bench_watermark', serverId: 5402, snapshot: 'watermark' }, watermarkLog, { onAppend: (record) => record.kind === SNAPSHOT_END && ended() });
      const stop = new AbortController();
      progress('snapshot again in watermark mode');
      const watermarkStart = performance.now();
      const running = watermark.run(stop.signal);
      running.catch((error: Error) => progress(`watermark capture failed: ${error.message}`));
      await done;
      watermarkSeconds = (performance.now() - watermarkStart) / 1000;
      stop.abort();
      await running.catch(() => {});
      await watermarkLog.close();
    }

    // 2. Streaming, with mariadb-binlog reading the same binlog range from the server.
    client = await mysql.createConnection({ uri: server.url('shop') });
    const reached = async (): Promise<Position> => {
      const [rows] = (await client!.query(`SHOW MASTER STATUS`)) as unknown as [Array<{ File: string; Position: number }>];
      return { file: rows[0]!.File, pos: Number(rows[0]!.Position) };
    };
    const untilLogged = (target: Position) => (compare(last, target) >= 0 ? Promise.resolve() : new Promise<void>((resolve) => (waitingFor = { target, resolve })));
    const third = Math.floor(settings.changes / 3);
    // Both read binlog already written: the capture is stopped while the changes are made, so its
    // rate is its own, not MariaDB's write rate (the peer reads the same range afterwards).
    // Stopped only once streaming: an abort before the stream has started is not seen (the capture
    // listens for it only from then on) and the capture would never return.
    while (current?.stats.phase !== 'streaming') await new Promise((resolve) => setTimeout(resolve, 5));
    controller.abort();
    await capture;
    const from = await reached();
    const writeStart = performance.now();
    // Transactions of 1,000 rows: inserts, then updates and deletes of rows from the snapshot.
    for (let at = 0; at < third; at += 1000) await client.query(`INSERT INTO orders SELECT seq, seq % 10000, 1.5, CONCAT('new ', seq) FROM seq_${settings.rows + at + 1}_to_${settings.rows + at + 1000}`);
    for (let at = 0; at < third; at += 1000) await client.query(`UPDATE orders SET amount = amount + 1 WHERE id BETWEEN ${at + 1} AND ${at + 1000}`);
    for (let at = 0; at < third; at += 1000) await client.query(`DELETE FROM orders WHERE id BETWEEN ${third + at + 1} AND ${third + at + 1000}`);
    const end = await reached();
    const writeSeconds = (performance.now() - writeStart) / 1000;
    progress(`${formatNumber(settings.changes)} changes written in ${writeSeconds.toFixed(2)} s (binlog ${from.file}:${from.pos} to ${end.file}:${end.pos}); the capture reads them`);
    const streamStart = performance.now();
    streamedChanges = 0;
    start();
    await untilLogged(end);
    const streamSeconds = (performance.now() - streamStart) / 1000;
    const streamRows = Math.ceil(third / 1000) * 1000 * 3;
    if (streamedChanges !== streamRows) progress(`the capture logged ${formatNumber(streamedChanges)} changes, not the ${formatNumber(streamRows)} written`);

    progress('mariadb-binlog reading the same changes');
    const [logs] = (await client.query(`SHOW BINARY LOGS`)) as unknown as [Array<{ Log_name: string }>];
    const files = logs.map((l) => l.Log_name).filter((name) => name >= from.file && name <= end.file);
    const peer = (mode: string[]) => {
      const output = fs.openSync('/dev/null', 'w');
      try {
        const peerStart = performance.now();
        const result = spawnSync(MARIADB_BINLOG, ['--no-defaults', '--read-from-remote-server', '--host=127.0.0.1', `--port=${server.port}`, '--user=root', `--start-position=${from.pos}`, `--stop-position=${end.pos}`, ...mode, ...files], { stdio: ['ignore', output, 'pipe'], encoding: 'utf8' });
        const seconds = (performance.now() - peerStart) / 1000;
        if (result.status !== 0) progress(`mariadb-binlog ${mode.join(' ')} failed (${result.status ?? result.signal}): ${result.stderr}`);
        return seconds;
      } finally {
        fs.closeSync(output);
      }
    };
    // Reads and decodes every row (a `### INSERT INTO …` line per row, values as text), as the
    // capture does; --raw only copies the events (the transport's ceiling, for comparison).
    const peerSeconds = peer(['--base64-output=decode-rows', '--verbose']);
    const rawFolder = fs.mkdtempSync(path.join(folder, 'raw-'));
    const rawSeconds = peer(['--raw', `--result-file=${rawFolder}/`]);

    // 3. Commit-to-log latency at a fixed rate of single-row transactions.
    pool = mysql.createPool({ uri: server.url('shop'), connectionLimit: 8 });
    await Promise.all(Array.from({ length: 8 }, () => pool!.query('SELECT 1'))); // connections made before the clock starts
    const committed = new Map<number, number>();
    appended.length = 0;
    const total = Math.round(settings.rate * settings.seconds);
    const firstId = settings.rows + settings.changes + 1_000_001;
    const intervalMs = 1000 / settings.rate;
    const latencyStart = performance.now();
    const inflight: Array<Promise<void>> = [];
    let next = 0;
    while (next < total) {
      const due = latencyStart + next * intervalMs;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
      const id = firstId + next++;
      inflight.push(pool.query(`INSERT INTO orders VALUES (${id}, 1, 1, NULL)`).then(() => void committed.set(id, performance.now())));
      if (inflight.length > 2000) await Promise.all(inflight.splice(0, 1000));
    }
    await Promise.all(inflight);
    const sent = (performance.now() - latencyStart) / 1000;
    await untilLogged(await reached());
    const latencies: number[] = [];
    for (const { at, record } of appended) {
      for (const change of record.changes) {
        const commit = committed.get(Number(change.row[0]));
        if (commit !== undefined) latencies.push(at - commit);
      }
    }
    latencies.sort((a, b) => a - b);
    const achieved = total / sent;

    const snapshotRate = settings.rows / snapshotSeconds;
    const watermarkRate = settings.rows / watermarkSeconds;
    const streamRate = streamRows / streamSeconds;
    const peerRate = streamRows / peerSeconds;
    const rawRate = streamRows / rawSeconds;
    const p99 = percentile(latencies, 0.99);
    process.stdout.write(`\nMariaDB 10.11 → the log (syncData), this machine; ${formatNumber(settings.rows)} orders snapshotted, ${formatNumber(streamRows)} changes streamed\n`);
    printTable(
      ['measure', 'Sluice', 'mariadb-binlog', 'ratio', 'target'],
      [
        ['snapshot rows/s (consistent: one transaction)', formatNumber(snapshotRate), '', '', `≥ 200,000 ${snapshotRate >= 200_000 ? 'met' : 'MISSED'}`],
        ['snapshot rows/s (watermark: 10,000-row chunks beside the binlog)', formatNumber(watermarkRate), '', '', `≥ 200,000 ${watermarkRate >= 200_000 ? 'met' : 'MISSED'}`],
        ['streaming rows/s (insert/update/delete, 1,000 per transaction)', formatNumber(streamRate), formatNumber(peerRate), `${formatNumber(streamRate / peerRate, 2)}×`, `≥ 100,000 ${streamRate >= 100_000 ? 'met' : 'MISSED'}`],
        ['  mariadb-binlog --raw (events copied, not decoded)', '', formatNumber(rawRate), `${formatNumber(streamRate / rawRate, 2)}×`, ''],
        [`commit-to-log p50 / p99 at ${formatNumber(achieved)} tx/s`, `${formatNumber(percentile(latencies, 0.5), 2)} / ${formatNumber(p99, 2)} ms`, '', '', `p99 ≤ 50 ms ${p99 <= 50 ? 'met' : 'MISSED'}`],
      ],
    );
    process.stdout.write(
      JSON.stringify({
        bench: 'mysql',
        settings,
        snapshotRowsPerSecond: Math.round(snapshotRate),
        watermarkSnapshotRowsPerSecond: Math.round(watermarkRate),
        streamingRowsPerSecond: Math.round(streamRate),
        mariadbBinlogRowsPerSecond: Math.round(peerRate),
        ratio: Number((streamRate / peerRate).toFixed(2)),
        mariadbBinlogRawRowsPerSecond: Math.round(rawRate),
        latency: { transactionsPerSecond: Math.round(achieved), measured: latencies.length, p50Ms: percentile(latencies, 0.5), p99Ms: p99, maxMs: latencies.at(-1) },
      }) + '\n',
    );
  } finally {
    controller.abort();
    // Bounded: a capture aborted before it was streaming does not return (see above).
    await Promise.race([capture?.catch(() => {}), new Promise((resolve) => setTimeout(resolve, 5000).unref())]);
    await pool?.end().catch(() => {});
    await client?.end().catch(() => {});
    await log.close();
    await server.stop();
    fs.rmSync(folder, { recursive: true, force: true });
  }
}
