/**
 * The hermetic MariaDB harness (mariadb.ts): a server of its own with a ROW binary log and GTIDs,
 * real privileges, whose data and binlog survive a SIGKILL (crash) restart, more alongside on other
 * ports with settings of their own, and no listening port or directory left when stopped.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { connect } from 'node:net';
import mysql from 'mysql2/promise';
import { startMariadb, type MariadbServer } from './mariadb.ts';

const DATABASE = 'harness';

let server: MariadbServer;

before(async () => {
  const startedAt = performance.now();
  server = await startMariadb();
  console.log(`# mariadb harness started in ${Math.round(performance.now() - startedAt)} ms on port ${server.port}`);
});

after(async () => {
  await server?.stop();
});

async function variables(target: MariadbServer, names: string[]): Promise<Record<string, string>> {
  const list = names.map((name) => `'${name}'`).join(', ');
  const rows = await target.query(`SHOW GLOBAL VARIABLES WHERE Variable_name IN (${list})`);
  return Object.fromEntries(rows.map((row: { Variable_name: string; Value: string }) => [row.Variable_name, row.Value]));
}

function refused(port: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED'));
  });
}

test('runs its own server with a ROW binary log and GTIDs, on a loopback port', async () => {
  assert.notEqual(server.port, 3306);
  assert.equal(server.host, '127.0.0.1');
  assert.equal(server.url(), `mysql://root@127.0.0.1:${server.port}`);
  assert.equal(server.url('db', 'cdc'), `mysql://cdc@127.0.0.1:${server.port}/db`);
  const root = dirname(server.dataDir);
  assert.deepEqual(
    await variables(server, [
      'log_bin', 'log_bin_basename', 'binlog_format', 'binlog_row_image', 'binlog_row_metadata', 'binlog_checksum',
      'server_id', 'gtid_domain_id', 'gtid_strict_mode', 'skip_name_resolve', 'bind_address', 'socket', 'port',
    ]),
    {
      log_bin: 'ON',
      log_bin_basename: join(root, 'binlog', 'mariadb-bin'),
      binlog_format: 'ROW',
      binlog_row_image: 'FULL',
      binlog_row_metadata: 'FULL',
      binlog_checksum: 'CRC32',
      server_id: '1',
      gtid_domain_id: '0',
      gtid_strict_mode: 'ON',
      skip_name_resolve: 'ON',
      bind_address: '127.0.0.1',
      socket: join(root, 'mariadbd.sock'),
      port: String(server.port),
    },
  );
  const [{ pos }] = await server.query('SELECT @@gtid_current_pos AS pos');
  assert.equal(pos, ''); // nothing binlogged yet
});

test('stores rows in a new database, each transaction with a GTID', async () => {
  await server.createDatabase(DATABASE);
  await server.query('CREATE TABLE items (id int PRIMARY KEY, name varchar(50) NOT NULL)', DATABASE);
  await server.query(`INSERT INTO items VALUES (1, 'one'), (2, 'two')`, DATABASE);
  // Several statements in one call: the last one's rows come back.
  const rows = await server.query(`INSERT INTO items VALUES (3, 'three'); SELECT id, name FROM items ORDER BY id`, DATABASE);
  assert.deepEqual(rows, [{ id: 1, name: 'one' }, { id: 2, name: 'two' }, { id: 3, name: 'three' }]);
  // CREATE DATABASE, CREATE TABLE and two inserts: four GTIDs in domain 0 from server 1.
  const [{ pos }] = await server.query('SELECT @@gtid_current_pos AS pos');
  assert.equal(pos, '0-1-4');
});

test('privileges are real: a user without grants is refused, root has them all', async () => {
  await server.query(`CREATE USER 'reader'@'127.0.0.1'`);
  // Connecting to the database would already be refused: connect without one.
  const connection = await mysql.createConnection(server.url(undefined, 'reader'));
  try {
    await assert.rejects(connection.query(`SELECT * FROM ${DATABASE}.items`), { code: 'ER_TABLEACCESS_DENIED_ERROR' });
    await server.query(`GRANT SELECT ON \`${DATABASE}\`.* TO 'reader'@'127.0.0.1'`);
    const [rows] = await connection.query(`SELECT count(*) AS n FROM ${DATABASE}.items`);
    assert.deepEqual(rows, [{ n: 3 }]);
  } finally {
    await connection.end();
  }
  const grants = await server.query('SHOW GRANTS');
  assert.match(Object.values(grants[0]).join(), /GRANT ALL PRIVILEGES ON \*\.\* TO `root`@`127\.0\.0\.1` WITH GRANT OPTION/);
});

test('data and the binlog survive a SIGKILL (crash) restart and a clean one', async () => {
  await server.restart('kill');
  const rows = await server.query('SELECT id, name FROM items ORDER BY id', DATABASE);
  assert.deepEqual(rows, [{ id: 1, name: 'one' }, { id: 2, name: 'two' }, { id: 3, name: 'three' }]);
  const [{ pos }] = await server.query('SELECT @@gtid_current_pos AS pos');
  assert.equal(pos, '0-1-6'); // CREATE USER and GRANT are binlogged too
  await server.restart('clean');
  await server.query(`UPDATE items SET name = 'ONE' WHERE id = 1`, DATABASE);
  const [{ n }] = await server.query('SELECT count(*) AS n FROM items', DATABASE);
  assert.equal(n, 3);
});

test('SHOW BINARY LOGS lists the files in the binlog directory, one more per start', async () => {
  const logs = await server.query('SHOW BINARY LOGS');
  const names = logs.map((row: { Log_name: string }) => row.Log_name);
  assert.deepEqual(names, ['mariadb-bin.000001', 'mariadb-bin.000002', 'mariadb-bin.000003']);
  const files = readdirSync(join(dirname(server.dataDir), 'binlog'));
  for (const name of names) assert.ok(files.includes(name), `${name} not in ${files.join(', ')}`);
  const events = await server.query(`SHOW BINLOG EVENTS IN 'mariadb-bin.000003'`);
  assert.deepEqual(
    events.map((event: { Event_type: string }) => event.Event_type).filter((type: string) => type !== 'Annotate_rows'),
    ['Format_desc', 'Gtid_list', 'Binlog_checkpoint', 'Gtid', 'Table_map', 'Update_rows_v1', 'Xid'],
  );
});

test('more servers at the same time get other ports, directories and settings of their own', async () => {
  // Two started concurrently, while the first one runs.
  const [second, third] = await Promise.all([
    startMariadb({ settings: { binlog_row_metadata: 'MINIMAL', 'gtid-domain-id': '7' } }),
    startMariadb(),
  ]);
  try {
    assert.equal(new Set([server.port, second.port, third.port]).size, 3);
    assert.equal(new Set([server.dataDir, second.dataDir, third.dataDir].map((dir) => dirname(dir))).size, 3);
    const settings = await variables(second, ['binlog_row_metadata', 'gtid_domain_id', 'binlog_format']);
    assert.deepEqual(settings, { binlog_row_metadata: 'MINIMAL', gtid_domain_id: '7', binlog_format: 'ROW' });
    assert.equal((await variables(third, ['binlog_row_metadata'])).binlog_row_metadata, 'FULL');
    assert.deepEqual(await second.query(`SHOW DATABASES LIKE '${DATABASE}'`), []);
    await second.createDatabase('other');
    const [{ pos }] = await second.query('SELECT @@gtid_current_pos AS pos');
    assert.equal(pos, '7-1-1');
  } finally {
    await Promise.all([second.stop(), third.stop()]);
  }
  assert.equal(existsSync(dirname(second.dataDir)), false);
  assert.equal(existsSync(dirname(third.dataDir)), false);
  assert.equal((await server.query('SELECT count(*) AS n FROM items', DATABASE))[0].n, 3); // the first one is unaffected
});

test('stop closes the port and removes the directory, and may be called twice', async () => {
  const { port, dataDir } = server;
  assert.ok(existsSync(dataDir));
  await server.stop();
  await server.stop();
  assert.equal(existsSync(dirname(dataDir)), false);
  assert.equal(await refused(port), true, `port ${port} still accepts connections after stop()`);
  await assert.rejects(server.restart(), /after stop/);
});
