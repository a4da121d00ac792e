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
import { SNAPSHOT_START, sourceRecordKind } from '../../src/sources/records.ts';
import { sourceStatus, waitFor } from './scenario-helpers.ts';

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
  assert.match((error as DefiniteError).hint ?? '', /--resnapshot src once.*max_slot_wal_keep_size/);
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

/** The number of snapshot start records in a pipeline's source topic (the runtime closed). */
async function snapshotStarts(data: string): Promise<number> {
  const log = await FileLog.open(path.join(data, 'log'));
  try {
    const [end] = await log.endOffsets('source.src');
    let starts = 0;
    for (let offset = 0; offset < end!; ) {
      const { records } = await log.read('source.src', 0, offset);
      starts += records.filter((r) => sourceRecordKind(r.value) === SNAPSHOT_START).length;
      offset = records.at(-1)!.offset + 1;
    }
    return starts;
  } finally {
    await log.close();
  }
}

test('--resnapshot after an invalidated slot drops it, makes it afresh and takes a new snapshot: the views equal PostgreSQL, and a restart streams on', async () => {
  const pg = await server({ max_slot_wal_keep_size: "'1MB'", max_wal_size: "'32MB'", min_wal_size: "'32MB'" });
  const data = path.join(folder, 'resnapshot');
  const views = [
    { name: 'n', sql: 'SELECT count(*) AS n, min(id) AS lo, max(id) AS hi FROM src.items' },
    { name: 'few', sql: 'SELECT id, label FROM src.items WHERE id <= 150' },
  ];
  const text = [`CREATE SOURCE src FROM POSTGRES '${pg.url()}' WITH (tables = 'public.items');`, ...views.map((v) => `CREATE VIEW ${v.name} AS ${v.sql};`)].join('\n');
  const normalize = (rows: Record<string, unknown>[]) => rows.map((row) => JSON.stringify(Object.entries(row).map(([k, v]) => [k, v === null ? null : String(v)]))).sort();
  const differences = async (runtime: PipelineRuntime) => {
    const out: string[] = [];
    for (const view of views) {
      const want = normalize(await pg.query(view.sql.replaceAll('src.', 'public.')));
      const got = normalize(runtime.readView(view.name).rows);
      if (JSON.stringify(want) !== JSON.stringify(got)) out.push(`${view.name}: ${got.length} rows for ${want.length}, e.g. ${got.find((r) => !want.includes(r))} vs ${want.find((r) => !got.includes(r))}`);
    }
    return out;
  };
  const converges = (runtime: PipelineRuntime, what: string) =>
    waitFor(what, async () => {
      if (sourceStatus(runtime, 'src').state === 'failed') assert.fail(`${what}: the source failed: ${JSON.stringify(sourceStatus(runtime, 'src').error)}`);
      return (await differences(runtime)).length === 0;
    }, 15_000, 50);

  let runtime = await PipelineRuntime.open({ text, data });
  runtime.start();
  try {
    await pg.query(`UPDATE items SET label = 'changed' WHERE id <= 10`);
    await converges(runtime, 'the first capture');
  } finally {
    await runtime.close();
  }

  // Stopped: more WAL than the slot may keep, and a checkpoint that removes it.
  for (let i = 0; i < 4; i++) {
    await pg.query(`INSERT INTO items SELECT g, repeat('x', 200) FROM generate_series(${1000 + i * 20000}, ${1000 + i * 20000 + 19999}) g`);
    await pg.query(`SELECT pg_switch_wal()`);
  }
  await pg.query(`UPDATE items SET label = 'while stopped' WHERE id BETWEEN 11 AND 20; DELETE FROM items WHERE id = 100`);
  await pg.query(`CHECKPOINT`);
  const [slot] = await pg.query(`SELECT wal_status FROM pg_replication_slots WHERE slot_name = 'sluice_src'`);
  assert.equal(slot.wal_status, 'lost', 'the set-up invalidates the slot');

  // Started again: failed for good, with the fix; the views keep what they had.
  runtime = await PipelineRuntime.open({ text, data });
  runtime.start();
  try {
    await waitFor('the source to fail', () => sourceStatus(runtime, 'src').state === 'failed', 15_000, 20);
    const { error } = sourceStatus(runtime, 'src');
    assert.equal(error?.code, 'pg_slot_invalidated', JSON.stringify(error));
    assert.match(error!.hint ?? '', /--resnapshot src\b/);
    assert.deepEqual(runtime.readView('n').rows.map((r) => [Number(r.n), Number(r.lo), Number(r.hi)]), [[100, 1, 100]], 'the views keep what was captured');
    assert.equal(runtime.readView('few').rows.filter((r) => r.label === 'changed').length, 10);
  } finally {
    await runtime.close();
  }
  const startsBefore = await snapshotStarts(data);
  const [{ lsn: invalidatedAt }] = await pg.query(`SELECT pg_current_wal_lsn()::text AS lsn`);

  // With --resnapshot: the slot dropped and made afresh, a new snapshot, the views equal PostgreSQL.
  runtime = await PipelineRuntime.open({ text, data, resnapshot: ['src'] });
  runtime.start();
  try {
    await converges(runtime, 'after --resnapshot');
    const [fresh] = await pg.query(`SELECT wal_status, restart_lsn >= '${invalidatedAt}'::pg_lsn AS fresh FROM pg_replication_slots WHERE slot_name = 'sluice_src'`);
    assert.notEqual(fresh?.wal_status, 'lost', 'the slot was made afresh');
    assert.equal(fresh?.fresh, true, 'the new slot starts after the invalidated one');
    await pg.query(`INSERT INTO items VALUES (5, 'x') ON CONFLICT (id) DO UPDATE SET label = 'streamed'`);
    await converges(runtime, 'streaming after the new snapshot');
  } finally {
    await runtime.close();
  }
  const startsAfter = await snapshotStarts(data);
  assert.ok(startsAfter > startsBefore, `a new snapshot start record (${startsBefore} → ${startsAfter})`);

  // Started again without the flag: no new snapshot, changes stream in.
  runtime = await PipelineRuntime.open({ text, data });
  runtime.start();
  try {
    await pg.query(`DELETE FROM items WHERE id BETWEEN 1 AND 3`);
    await converges(runtime, 'after a restart without --resnapshot');
  } finally {
    await runtime.close();
  }
  assert.equal(await snapshotStarts(data), startsAfter, 'no snapshot again without the flag');
});
