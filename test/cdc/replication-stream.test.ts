/**
 * The replication connection against a real PostgreSQL 15: messages arrive decoded and in order,
 * the slot's flush position moves only to what was confirmed, a restart resumes after the
 * confirmed transaction (and redelivers the unconfirmed one), and an idle slot's position follows
 * the server's keepalives once everything received is confirmed.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { formatLsn, parseLsn, type PgOutputMessage } from '../../src/sources/postgres/pgoutput.ts';
import { ReplicationStream } from '../../src/sources/postgres/stream.ts';
import { startPostgres, type PostgresServer } from '../services/postgres.ts';

let server: PostgresServer;

before(async () => {
  server = await startPostgres({ settings: { wal_sender_timeout: "'2s'" } });
  await server.query(`CREATE TABLE items (id int PRIMARY KEY, name text)`);
  await server.query(`CREATE PUBLICATION items_pub FOR TABLE items`);
  await server.query(`SELECT pg_create_logical_replication_slot('items_slot', 'pgoutput')`);
});

after(async () => {
  await server?.stop();
});

async function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function slotFlush(): Promise<bigint> {
  const [row] = await server.query(`SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = 'items_slot'`);
  return parseLsn(row.lsn);
}

function open(startLsn: bigint, seen: Array<{ message: PgOutputMessage; lsn: bigint }>): Promise<ReplicationStream> {
  return ReplicationStream.start({ url: server.url(), slot: 'items_slot', publication: 'items_pub', startLsn, statusIntervalMs: 200, onMessage: (message, lsn) => seen.push({ message, lsn }) });
}

test('transactions stream in order; a restart resumes after the confirmed one and redelivers the rest', async () => {
  const seen: Array<{ message: PgOutputMessage; lsn: bigint }> = [];
  const before = await slotFlush();
  let stream = await open(0n, seen);
  assert.match(stream.systemId, /^\d+$/);
  assert.equal(stream.timeline, 1);
  await server.query(`INSERT INTO items VALUES (1, 'one')`);
  await server.query(`INSERT INTO items VALUES (2, 'two'), (3, 'three')`);
  await until(() => seen.filter((s) => s.message.type === 'commit').length === 2, 'two commits');
  assert.deepEqual(seen.map((s) => s.message.type), ['begin', 'relation', 'insert', 'commit', 'begin', 'insert', 'insert', 'commit']);
  // Nothing is acknowledged until confirmed.
  await new Promise((resolve) => setTimeout(resolve, 400));
  assert.equal(await slotFlush(), before);
  const firstCommit = seen.find((s) => s.message.type === 'commit')!.message as Extract<PgOutputMessage, { type: 'commit' }>;
  stream.confirm(firstCommit.endLsn);
  await until(() => false, 'nothing', 300).catch(() => {});
  assert.equal(formatLsn(await slotFlush()), formatLsn(firstCommit.endLsn));
  await stream.close();

  // Restarted from the confirmed position: the second transaction again, not the first.
  const again: Array<{ message: PgOutputMessage; lsn: bigint }> = [];
  stream = await open(firstCommit.endLsn, again);
  await until(() => again.some((s) => s.message.type === 'commit'), 'the redelivered commit');
  const inserted = again.filter((s) => s.message.type === 'insert').map((s) => (s.message as { newTuple: Array<{ value?: string }> }).newTuple[0]!.value);
  assert.deepEqual(inserted, ['2', '3']);
  const secondCommit = again.find((s) => s.message.type === 'commit')!.message as Extract<PgOutputMessage, { type: 'commit' }>;
  stream.confirm(secondCommit.endLsn);
  // Idle now: the keepalives' position is confirmed, so the slot does not pin WAL behind it.
  await server.query(`CREATE TABLE other (x int)`); // WAL outside the publication
  await server.query(`INSERT INTO other SELECT generate_series(1, 1000)`);
  const [{ lsn: current }] = await server.query(`SELECT pg_current_wal_lsn()::text AS lsn`);
  await until(() => stream.confirmed >= parseLsn(current), 'the keepalive position to be confirmed', 8000);
  await stream.close();
  // The last status update is read by the server as the connection closes: give it a moment.
  await until(async () => (await slotFlush()) >= parseLsn(current), 'the slot to move past WAL it had no changes in', 5000);
});

test('a slot that does not exist is refused with what to check', async () => {
  await assert.rejects(
    ReplicationStream.start({ url: server.url(), slot: 'nope', publication: 'items_pub', startLsn: 0n, onMessage: () => {} }),
    /refused to start replication from slot "nope".*does not exist/s,
  );
});
