/**
 * `npm run bench -- postgres`: PostgreSQL change data capture into the log, against a real
 * PostgreSQL 15 started for the run (test/services/postgres.ts), with `pg_recvlogical` — the
 * ceiling of one logical replication slot — reading the same changes in the same run.
 *
 * 1. snapshot — `--rows` (1,000,000) orders read through an exported-snapshot slot into the log.
 * 2. streaming — a mixed load (inserts, updates, deletes: `--changes` rows in transactions of
 *    1,000) captured into the log, from the first statement until the last commit is durable in
 *    the log; beside it pg_recvlogical (pgoutput, the same publication) reads the same WAL range
 *    from a second slot to /dev/null.
 * 3. latency — single-row INSERT transactions at `--rate` (5,000/s) from 8 connections for
 *    `--seconds` (5): from each COMMIT's acknowledgement to its record being durable in the log.
 *
 * Targets (issue 6): snapshot ≥ 200,000 rows/s, streaming ≥ 100,000 rows/s and ≥ 0.5×
 * pg_recvlogical, commit-to-log p99 ≤ 50 ms. `--quick` runs small sizes.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { FileLog } from '../src/log/index.ts';
import { postgresConfig } from '../src/sources/postgres/config.ts';
import { PostgresCapture } from '../src/sources/postgres/connector.ts';
import { parseLsn } from '../src/sources/postgres/pgoutput.ts';
import { SNAPSHOT_END, TRANSACTION, type SourceRecord } from '../src/sources/records.ts';
import { startPostgres, type PostgresServer } from '../test/services/postgres.ts';
import { formatNumber, printTable, progress } from './format.ts';
import { integerOption, positiveOption } from './options.ts';

export const description = 'PostgreSQL change data capture: snapshot and streaming rows/s and commit-to-log latency, against pg_recvlogical';

interface Settings {
  rows: number;
  changes: number;
  rate: number;
  seconds: number;
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

export async function run(args: string[]): Promise<void> {
  const settings = settingsFrom(args);
  const server = await startPostgres({ settings: { max_wal_size: "'4GB'", logical_decoding_work_mem: "'64MB'" } });
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-bench-postgres-'));
  const log = await FileLog.open(path.join(folder, 'log'));
  let controller = new AbortController();
  let capture: Promise<void> | undefined;
  try {
    await server.query(`CREATE TABLE orders (id bigint PRIMARY KEY, customer_id int, amount numeric(10,2), note text)`);
    progress(`loading ${formatNumber(settings.rows)} orders into PostgreSQL`);
    await server.query(`INSERT INTO orders SELECT g, g % 10000, (g % 10000) / 100.0, 'order ' || g FROM generate_series(1, ${settings.rows}) g`);
    await server.query(`VACUUM ANALYZE orders`);

    // 1. Snapshot.
    let snapshotDone: () => void;
    const snapshotEnded = new Promise<void>((resolve) => (snapshotDone = resolve));
    const appended: Array<{ at: number; record: SourceRecord }> = [];
    let lastLsn = 0n;
    let waitingFor: { lsn: bigint; resolve: () => void } | undefined;
    const config = postgresConfig('bench', server.url(), new Map([['tables', 'public.orders']]));
    const began = performance.now();
    const newCapture = () => new PostgresCapture(config, log, {
      onAppend: (record) => {
        if (record.kind === SNAPSHOT_END) snapshotDone();
        if (record.kind === TRANSACTION) {
          lastLsn = parseLsn(String(record.position.lsn));
          appended.push({ at: performance.now(), record });
          if (waitingFor && lastLsn >= waitingFor.lsn) waitingFor.resolve();
        }
      },
      onProgress: (p) => {
        if (p.phase === 'snapshot' && p.rows % 200_000 < 10_000) progress(`snapshot: ${formatNumber(p.rows)} of about ${formatNumber(p.estimated ?? 0)} rows`);
      },
    });
    const start = () => {
      controller = new AbortController();
      capture = newCapture().run(controller.signal);
      capture.catch((error: Error) => progress(`capture failed: ${error.message}`));
    };
    start();
    await snapshotEnded;
    const snapshotSeconds = (performance.now() - began) / 1000;

    // 2. Streaming, with pg_recvlogical on a second slot over the same WAL.
    await server.query(`SELECT pg_create_logical_replication_slot('peer', 'pgoutput')`);
    const reached = async () => {
      const [{ lsn }] = await server.query(`SELECT pg_current_wal_lsn()::text AS lsn`);
      return parseLsn(lsn);
    };
    const untilLogged = (lsn: bigint) => (lastLsn >= lsn ? Promise.resolve() : new Promise<void>((resolve) => (waitingFor = { lsn, resolve })));
    const client = new pg.Client({ connectionString: server.url() });
    await client.connect();
    const third = Math.floor(settings.changes / 3);
    // Both read WAL already written: the capture is stopped while the changes are made, so its
    // rate is its own, not PostgreSQL's write rate (the peer reads the same range afterwards).
    controller.abort();
    await capture;
    const writeStart = performance.now();
    // Transactions of 1,000 rows: inserts, then updates and deletes of rows from the snapshot.
    for (let at = 0; at < third; at += 1000) await client.query(`INSERT INTO orders SELECT g, g % 10000, 1.5, 'new ' || g FROM generate_series(${settings.rows + at + 1}, ${settings.rows + at + 1000}) g`);
    for (let at = 0; at < third; at += 1000) await client.query(`UPDATE orders SET amount = amount + 1 WHERE id BETWEEN ${at + 1} AND ${at + 1000}`);
    for (let at = 0; at < third; at += 1000) await client.query(`DELETE FROM orders WHERE id BETWEEN ${third + at + 1} AND ${third + at + 1000}`);
    const end = await reached();
    const writeSeconds = (performance.now() - writeStart) / 1000;
    progress(`${formatNumber(settings.changes)} changes written in ${writeSeconds.toFixed(2)} s; the capture reads them`);
    const streamStart = performance.now();
    start();
    await untilLogged(end);
    const streamSeconds = (performance.now() - streamStart) / 1000;
    const streamRows = third * 3;
    progress('pg_recvlogical reading the same changes');
    const peerStart = performance.now();
    const peer = spawnSync('runuser', ['-u', 'postgres', '--', '/usr/lib/postgresql/15/bin/pg_recvlogical', '-h', '127.0.0.1', '-p', String(server.port), '-U', 'postgres', '-d', 'postgres', '--slot', 'peer', '--start', '--endpos', `${(end >> 32n).toString(16)}/${(end & 0xffffffffn).toString(16)}`, '-o', 'proto_version=1', '-o', 'publication_names=sluice_bench', '--no-loop', '-f', '/dev/null'], { encoding: 'utf8' });
    const peerSeconds = (performance.now() - peerStart) / 1000;
    if (peer.status !== 0) progress(`pg_recvlogical failed (${peer.status}): ${peer.stderr}`);

    // 3. Commit-to-log latency at a fixed rate of single-row transactions.
    const pool = new pg.Pool({ connectionString: server.url(), max: 8 });
    const committed = new Map<number, number>();
    appended.length = 0;
    const total = settings.rate * settings.seconds;
    const intervalMs = 1000 / settings.rate;
    const latencyStart = performance.now();
    const inflight: Array<Promise<void>> = [];
    let next = 0;
    while (next < total) {
      const due = latencyStart + next * intervalMs;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
      const id = 10_000_000 + next++;
      inflight.push(pool.query(`INSERT INTO orders VALUES (${id}, 1, 1, NULL)`).then(() => void committed.set(id, performance.now())));
      if (inflight.length > 2000) await Promise.all(inflight.splice(0, 1000));
    }
    await Promise.all(inflight);
    await untilLogged(await reached());
    await pool.end();
    await client.end();
    const latencies: number[] = [];
    for (const { at, record } of appended) {
      for (const change of record.changes) {
        const id = Number(change.row[0]);
        const commit = committed.get(id);
        if (commit !== undefined) latencies.push(at - commit);
      }
    }
    latencies.sort((a, b) => a - b);
    const achieved = total / ((performance.now() - latencyStart) / 1000);

    const snapshotRate = settings.rows / snapshotSeconds;
    const streamRate = streamRows / streamSeconds;
    const peerRate = streamRows / peerSeconds;
    process.stdout.write(`\nPostgreSQL 15 → the log (syncData), this machine; ${formatNumber(settings.rows)} orders snapshotted, ${formatNumber(streamRows)} changes streamed\n`);
    printTable(
      ['measure', 'Sluice', 'pg_recvlogical', 'ratio', 'target'],
      [
        ['snapshot rows/s', formatNumber(snapshotRate), '', '', `≥ 200,000 ${snapshotRate >= 200_000 ? 'met' : 'MISSED'}`],
        ['streaming rows/s (insert/update/delete, 1,000 per transaction)', formatNumber(streamRate), formatNumber(peerRate), `${formatNumber(streamRate / peerRate, 2)}×`, `≥ 100,000 and ≥ 0.5× ${streamRate >= 100_000 && streamRate >= 0.5 * peerRate ? 'met' : 'MISSED'}`],
        [`commit-to-log p50 / p99 at ${formatNumber(achieved)} tx/s`, `${formatNumber(percentile(latencies, 0.5), 2)} / ${formatNumber(percentile(latencies, 0.99), 2)} ms`, '', '', `p99 ≤ 50 ms ${percentile(latencies, 0.99) <= 50 ? 'met' : 'MISSED'}`],
      ],
    );
    process.stdout.write(
      JSON.stringify({
        bench: 'postgres',
        settings,
        snapshotRowsPerSecond: Math.round(snapshotRate),
        streamingRowsPerSecond: Math.round(streamRate),
        pgRecvlogicalRowsPerSecond: Math.round(peerRate),
        ratio: Number((streamRate / peerRate).toFixed(2)),
        latency: { transactionsPerSecond: Math.round(achieved), measured: latencies.length, p50Ms: percentile(latencies, 0.5), p99Ms: percentile(latencies, 0.99), maxMs: latencies.at(-1) },
      }) + '\n',
    );
  } finally {
    controller.abort();
    await capture?.catch(() => {});
    await log.close();
    await server.stop();
    fs.rmSync(folder, { recursive: true, force: true });
  }
}
