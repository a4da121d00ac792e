/**
 * The hermetic PostgreSQL harness (postgres.ts): a server of its own with logical decoding on,
 * whose pgoutput slot reports inserts, updates and deletes in commit order, whose data survives an
 * immediate (crash) restart, and which leaves no listening port or directory behind when stopped.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { connect } from 'node:net';
import { startPostgres, type PostgresServer } from './postgres.ts';

const DATABASE = 'harness';

let server: PostgresServer;

before(async () => {
  const startedAt = performance.now();
  server = await startPostgres();
  console.log(`# postgres harness started in ${Math.round(performance.now() - startedAt)} ms on port ${server.port}`);
});

after(async () => {
  await server?.stop();
});

/** The pgoutput message types (each message's first byte) in the slot, without consuming them. */
async function peekMessageTypes(): Promise<string> {
  const rows = await server.query(
    `SELECT data FROM pg_logical_slot_peek_binary_changes('s1', NULL, NULL, 'proto_version', '1', 'publication_names', 'pub')`,
    DATABASE,
  );
  return rows.map((row: { data: Buffer }) => String.fromCharCode(row.data[0])).join('');
}

test('runs its own server with logical decoding on, on a loopback port', async () => {
  assert.notEqual(server.port, 5432);
  assert.equal(server.url(), `postgres://postgres@127.0.0.1:${server.port}/postgres`);
  const [walLevel] = await server.query('SHOW wal_level');
  assert.equal(walLevel.wal_level, 'logical');
  const [slots] = await server.query('SHOW max_replication_slots');
  assert.equal(slots.max_replication_slots, '10');
  const [fsync] = await server.query('SHOW fsync');
  assert.equal(fsync.fsync, 'on');
  const [listen] = await server.query('SHOW listen_addresses');
  assert.equal(listen.listen_addresses, '127.0.0.1');
});

test('stores and reads back rows in a new database', async () => {
  await server.createDatabase(DATABASE);
  await server.query('CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL)', DATABASE);
  await server.query(`INSERT INTO items VALUES (1, 'one'), (2, 'two')`, DATABASE);
  const rows = await server.query('SELECT id, name FROM items ORDER BY id', DATABASE);
  assert.deepEqual(rows, [{ id: 1, name: 'one' }, { id: 2, name: 'two' }]);
});

test('a pgoutput slot reports inserts, updates and deletes in commit order', async () => {
  await server.query('CREATE PUBLICATION pub FOR TABLE items', DATABASE);
  await server.query(`SELECT pg_create_logical_replication_slot('s1', 'pgoutput')`, DATABASE);
  await server.query(`INSERT INTO items VALUES (3, 'three'), (4, 'four')`, DATABASE); // one transaction, two rows
  await server.query(`UPDATE items SET name = 'THREE' WHERE id = 3`, DATABASE);
  await server.query('DELETE FROM items WHERE id = 4', DATABASE);
  // The relation is described once per decoding session, before its first change.
  const expected = 'BRIIC' + 'BUC' + 'BDC';
  const types = await peekMessageTypes();
  assert.equal(types.length, expected.length);
  assert.equal(types, expected);
  // Peeking does not consume: the same changes are there a second time.
  assert.equal(await peekMessageTypes(), expected);
});

test('data and the slot survive an immediate (crash) restart', async () => {
  await server.restart('immediate');
  const rows = await server.query('SELECT id, name FROM items ORDER BY id', DATABASE);
  assert.deepEqual(rows, [{ id: 1, name: 'one' }, { id: 2, name: 'two' }, { id: 3, name: 'THREE' }]);
  assert.equal(await peekMessageTypes(), 'BRIIC' + 'BUC' + 'BDC');
  await server.restart('fast');
  const [count] = await server.query('SELECT count(*)::int AS n FROM items', DATABASE);
  assert.equal(count.n, 3);
});

test('stop closes the port and removes the directory, and may be called twice', async () => {
  const { port, dataDir } = server;
  assert.ok(existsSync(dataDir));
  await server.stop();
  await server.stop();
  assert.equal(existsSync(dirname(dataDir)), false);
  const refused = await new Promise<boolean>((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED'));
  });
  assert.equal(refused, true, `port ${port} still accepts connections after stop()`);
});
