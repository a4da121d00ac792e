/**
 * What a PostgreSQL source must never skip silently: the slot invalidated (the WAL it needed was
 * removed), the source URL pointing at another server (another system identifier), a server
 * whose WAL ends before what the log already holds (restored from an older backup), or one on
 * another timeline (a promoted standby, a point-in-time restore). Each stops the
 * capture with an error that names what happened and what to do, and is not retried.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { DefiniteError, TransientError } from '../../src/core/index.ts';
import { FileLog } from '../../src/log/index.ts';
import { PipelineRuntime } from '../../src/pipeline/runtime.ts';
import { postgresConfig } from '../../src/sources/postgres/config.ts';
import { PostgresCapture } from '../../src/sources/postgres/connector.ts';
import { startPostgres, type PostgresServer } from '../services/postgres.ts';

let folder: string;
const servers: PostgresServer[] = [];

before(() => {
  folder = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-pg-safety-'));
});

after(async () => {
  for (const server of servers) await server.stop();
  fs.rmSync(folder, { recursive: true, force: true });
});

async function server(settings: Record<string, string> = {}, promotedCopyOf?: PostgresServer): Promise<PostgresServer> {
  const started = await startPostgres({ settings, ...(promotedCopyOf ? { promotedCopyOf } : {}) });
  servers.push(started);
  if (promotedCopyOf) return started;
  await started.query(`CREATE TABLE items (id int PRIMARY KEY, label text)`);
  await started.query(`INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 100) g`);
  return started;
}

const config = (url: string) => postgresConfig('src', url, new Map([['tables', 'public.items']]));

/** Captures from `url` into the log at `dir` until the snapshot and `extra` transactions are in it, then stops. */
async function captureSome(dir: string, url: string, more: (() => Promise<unknown>) | undefined): Promise<void> {
  const log = await FileLog.open(dir);
  const controller = new AbortController();
  const capture = new PostgresCapture(config(url), log);
  const running = capture.run(controller.signal);
  await capture.caughtUp();
  if (more) {
    await more();
    await capture.caughtUp();
  }
  controller.abort();
  await running;
  await log.close();
}

/** Runs the capture on the log at `dir` against `url`; resolves with the error it stops with. */
async function captureError(dir: string, url: string): Promise<Error> {
  const log = await FileLog.open(dir);
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), 15_000);
  try {
    await new PostgresCapture(config(url), log).run(controller.signal);
    assert.fail('the capture ran on without an error');
  } catch (error) {
    return error as Error;
  } finally {
    clearTimeout(timer);
    await log.close();
  }
}

test('a slot PostgreSQL invalidated (max_slot_wal_keep_size) stops the capture with the fix, never a silent gap', async () => {
  const pg = await server({ max_slot_wal_keep_size: "'1MB'", max_wal_size: "'32MB'", min_wal_size: "'32MB'" });
  const dir = path.join(folder, 'invalidated');
  await captureSome(dir, pg.url(), undefined);
  // While Sluice is stopped, more WAL than the slot may keep, then a checkpoint that removes it.
  for (let i = 0; i < 4; i++) {
    await pg.query(`INSERT INTO items SELECT g, repeat('x', 200) FROM generate_series(${1000 + i * 20000}, ${1000 + i * 20000 + 19999}) g`);
    await pg.query(`SELECT pg_switch_wal()`);
  }
  await pg.query(`CHECKPOINT`);
  const [slot] = await pg.query(`SELECT wal_status FROM pg_replication_slots WHERE slot_name = 'sluice_src'`);
  assert.equal(slot.wal_status, 'lost', 'the set-up invalidates the slot');
  const error = await captureError(dir, pg.url());
  assert.ok(error instanceof DefiniteError && !(error instanceof TransientError), `${error}`);
  assert.equal((error as DefiniteError).code, 'pg_slot_invalidated');
  assert.match(error.message, /invalidated the replication slot "sluice_src"/);
  assert.match((error as DefiniteError).hint ?? '', /pg_drop_replication_slot\('sluice_src'\).*max_slot_wal_keep_size/);
});

test('another server behind the same URL (another system identifier) or one restored to an older point is refused, and the pipeline reports it', async () => {
  const first = await server();
  const dir = path.join(folder, 'moved');
  await captureSome(dir, first.url(), () => first.query(`UPDATE items SET label = 'changed' WHERE id <= 10`));

  // A server whose WAL ends before what the log holds: an older backup, or a fresh one.
  const behind = await server();
  await behind.query(`SELECT pg_create_logical_replication_slot('sluice_src', 'pgoutput')`);
  await behind.query(`CREATE PUBLICATION sluice_src FOR TABLE items`);
  const [{ lsn: firstLsn }] = await first.query(`SELECT pg_current_wal_lsn()::text AS lsn`);
  const [{ lsn: behindLsn }] = await behind.query(`SELECT pg_current_wal_lsn()::text AS lsn`);
  assert.ok(behindLsn < firstLsn || behindLsn.length < firstLsn.length, `the set-up needs a server behind (${behindLsn} vs ${firstLsn})`);
  let error = await captureError(dir, behind.url());
  assert.equal((error as DefiniteError).code, 'pg_server_behind', `${error}`);
  assert.match(error.message, /restored from an older backup, or this is another server/);

  // Move its WAL past the log's position: now it is caught by its system identifier.
  for (let i = 0; i < 3; i++) await behind.query(`SELECT pg_switch_wal()`);
  await behind.query(`INSERT INTO items VALUES (5000, 'x')`);
  error = await captureError(dir, behind.url());
  assert.equal((error as DefiniteError).code, 'pg_server_changed', `${error}`);
  assert.match(error.message, /is another PostgreSQL server \(system identifier \d+\) than the one this log was captured from \(\d+\)/);

  // Through a pipeline: the source shows as failed with that error, and is not retried.
  const data = path.join(folder, 'pipeline');
  fs.mkdirSync(path.join(data), { recursive: true });
  fs.cpSync(dir, path.join(data, 'log'), { recursive: true });
  const runtime = await PipelineRuntime.open({ text: `CREATE SOURCE src FROM POSTGRES '${behind.url()}' WITH (tables = 'public.items'); CREATE VIEW n AS SELECT count(*) AS n FROM src.items;`, data });
  runtime.start();
  try {
    const deadline = Date.now() + 15_000;
    while (runtime.status().sources[0]!.state !== 'failed' && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    const [source] = runtime.status().sources;
    assert.equal(source!.state, 'failed');
    assert.equal(source!.error?.code, 'pg_server_changed');
    // The views keep what was captured from the first server.
    assert.deepEqual(runtime.readView('n').rows, [{ n: 100 }]);
  } finally {
    await runtime.close();
  }
});

test('a failover or restore onto another timeline (a promoted copy of the server) is refused, not continued', async () => {
  const primary = await server();
  const dir = path.join(folder, 'timeline');
  await captureSome(dir, primary.url(), () => primary.query(`UPDATE items SET label = 'before the failover' WHERE id <= 5`));
  // A copy of the primary (its slot is not copied) promoted to timeline 2, with a slot of the same name.
  const promoted = await server({}, primary);
  await promoted.query(`CHECKPOINT`);
  const [{ timeline_id: timeline }] = await promoted.query(`SELECT timeline_id FROM pg_control_checkpoint()`);
  assert.equal(Number(timeline), 2, 'the copy is on the next timeline');
  await promoted.query(`SELECT pg_create_logical_replication_slot('sluice_src', 'pgoutput')`);
  await promoted.query(`INSERT INTO items VALUES (7000, 'after the failover')`);
  const error = await captureError(dir, promoted.url());
  assert.equal((error as DefiniteError).code, 'pg_timeline_changed', `${error}`);
  assert.match(error.message, /PostgreSQL is on timeline \d+, but this log was captured on timeline 1: the server was restored or failed over/);
});
