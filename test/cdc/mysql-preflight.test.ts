/**
 * MySQL/MariaDB source configuration and preflight against a real MariaDB 10.11: every problem a
 * source can meet is reported together, each with its fix, and a server that is ready passes.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { DefiniteError, TransientError } from '../../src/core/index.ts';
import { defaultServerId, mysqlConfig } from '../../src/sources/mysql/config.ts';
import { hasGlobal, hasOn, mysqlPreflight, mysqlPreflightError, parseGrants } from '../../src/sources/mysql/preflight.ts';
import { startMariadb, type MariadbServer } from '../services/mariadb.ts';

let good: MariadbServer;
let loose: MariadbServer;
let unlogged: MariadbServer;

before(async () => {
  [good, loose, unlogged] = await Promise.all([
    startMariadb(),
    startMariadb({ settings: { binlog_format: 'MIXED', binlog_row_image: 'MINIMAL', binlog_row_metadata: 'MINIMAL', binlog_expire_logs_seconds: '3600', log_bin_compress: 'ON' } }),
    startMariadb({ settings: { 'skip-log-bin': '' } }),
  ]);
  const schema = `CREATE DATABASE shop;
    CREATE TABLE shop.products (id int PRIMARY KEY, name varchar(40));
    CREATE TABLE shop.orders (id bigint unsigned PRIMARY KEY, product int);
    CREATE TABLE shop.events (at datetime, what text);
    CREATE VIEW shop.cheap AS SELECT * FROM shop.products;
    INSERT INTO shop.products VALUES (1, 'tea');`;
  await Promise.all([good.query(schema), loose.query(schema), unlogged.query(schema)]);
  await good.query(`
    CREATE USER 'cdc'@'%'; GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO 'cdc'@'%'; GRANT SELECT ON shop.* TO 'cdc'@'%';
    CREATE USER 'nobody'@'127.0.0.1';
    CREATE USER 'partial'@'%'; GRANT SELECT ON shop.products TO 'partial'@'%'; GRANT SELECT (id) ON shop.orders TO 'partial'@'%';
    CREATE ROLE capture; GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO capture; GRANT SELECT ON \`sh_p\`.* TO capture;
    CREATE USER 'viarole'@'%'; GRANT capture TO 'viarole'@'%'; SET DEFAULT ROLE capture FOR 'viarole'@'%';`);
});

after(async () => {
  await Promise.all([good?.stop(), loose?.stop(), unlogged?.stop()]);
});

const config = (url: string, tables: string, extra: Record<string, string> = {}) => mysqlConfig('shop', url, new Map(Object.entries({ tables, ...extra })));
const byCheck = (problems: Array<{ check: string; message: string; fix: string }>) => {
  const found: Record<string, string> = {};
  for (const p of problems) found[p.check] = `${found[p.check] ? `${found[p.check]}\n` : ''}${p.message}: ${p.fix}`;
  return found;
};

test('options are checked, defaulted, and secrets resolved without ever being shown', () => {
  process.env.SLUICE_TEST_MYSQL_PASSWORD = 's3cr3t/@';
  const c = config('mysql://cdc:${env:SLUICE_TEST_MYSQL_PASSWORD}@db.example:3306/shop', 'products, sales.`order-items`', { server_id: ' 5401 ' });
  assert.equal(c.url, 'mysql://cdc:s3cr3t%2F%40@db.example:3306/shop');
  assert.equal(c.displayUrl, 'mysql://cdc:***@db.example:3306/shop');
  assert.equal(c.database, 'shop');
  assert.deepEqual(c.tables, [{ schema: 'shop', name: 'products' }, { schema: 'sales', name: 'order-items' }]);
  assert.equal(c.serverId, 5401);
  // Without server_id: derived from the source name, the same every time, in range and not 1.
  const derived = mysqlConfig('shop', 'mariadb://h', new Map([['tables', 'shop.products']]));
  assert.equal(derived.database, '');
  assert.equal(derived.serverId, defaultServerId('shop'));
  assert.equal(mysqlConfig('shop', 'mariadb://h', new Map([['tables', 'shop.products']])).serverId, derived.serverId);
  assert.notEqual(defaultServerId('shop'), defaultServerId('shop2'));
  for (const name of ['a', 'shop', 'orders_eu', 'x'.repeat(200)]) {
    const id = defaultServerId(name);
    assert.ok(Number.isInteger(id) && id >= 2 && id <= 4294967295, `${name}: ${id}`);
  }

  const refused = (f: () => unknown, pattern: RegExp) =>
    assert.throws(f, (error: unknown) => {
      assert.ok(error instanceof DefiniteError, String(error));
      assert.match(`${error.message} ${error.hint}`, pattern);
      assert.doesNotMatch(`${error.message} ${error.hint}`, /s3cr3t/);
      return true;
    });
  refused(() => mysqlConfig('shop', 'mysql://h/shop', new Map([['tables', 'orders'], ['slot', 'x']])), /FROM MYSQL has no option "slot".*its options are tables, server_id, snapshot, watermark_table and chunk_rows/);
  refused(() => config('mysql://h/shop', 'orders', { server_id: '0' }), /server_id "0" is not a whole number from 1 to 4294967295/);
  refused(() => config('mysql://h/shop', 'orders', { snapshot: 'sometimes' }), /snapshot "sometimes" is not a snapshot mode.*'auto'.*'consistent'.*'watermark'/);
  refused(() => config('mysql://h/shop', 'orders', { chunk_rows: '0' }), /chunk_rows "0" is not a whole number of rows above 0/);
  refused(() => config('mysql://h/shop', 'orders', { watermark_table: 'a.b.c' }), /watermark_table "a.b.c" is not a table name/);
  refused(() => config('mysql://h/shop', 'orders', { watermark_table: 'orders' }), /the watermark table shop.orders is also a captured table/);
  const defaults = config('mysql://h/shop', 'orders', {});
  assert.deepEqual([defaults.snapshot, defaults.watermarkTable, defaults.chunkRows], ['auto', { schema: 'shop', name: 'sluice_watermark' }, 10_000]);
  const chosen = config('mysql://h/shop', 'orders', { snapshot: 'WATERMARK', watermark_table: 'ops.marks', chunk_rows: '500' });
  assert.deepEqual([chosen.snapshot, chosen.watermarkTable, chosen.chunkRows], ['watermark', { schema: 'ops', name: 'marks' }, 500]);
  refused(() => config('mysql://h/shop', 'orders', { server_id: '4294967296' }), /server_id "4294967296" is not a whole number/);
  refused(() => config('mysql://h/shop', 'orders', { server_id: '12.5' }), /server_id "12.5" is not a whole number.*leave server_id out/);
  refused(() => config('mysql://h/shop', 'orders', { server_id: 'abc' }), /server_id "abc"/);
  refused(() => config('postgres://cdc:s3cr3t@h/shop', 'orders'), /"postgres:\/\/cdc:\*\*\*@h\/shop" is not a mysql:\/\/ URL.*mysql:\/\/user:\$\{env:MYSQL_PASSWORD\}@host:3306\/database/);
  refused(() => config('mysql://cdc:s3cr3t@h:99999/shop', 'orders'), /"mysql:\/\/cdc:\*\*\*@h:99999\/shop" is not a valid URL/);
  refused(() => config('mysql://cdc:s3cr3t@h', 'orders'), /table "orders" names no database, and the URL names none either.*shop\.orders.*mysql:\/\/user@host:3306\/shop/);
  refused(() => config('mysql://h/shop', ''), /which tables to capture is not said.*tables = /);
  refused(() => config('mysql://h/shop', 'a.b.c'), /"a\.b\.c" is not a table name/);
  refused(() => config('mysql://h/shop', 'my-table'), /"my-table" is not a table name.*backticks/);
  refused(() => config('mysql://cdc:${env:SLUICE_TEST_NOT_SET}@h/shop', 'orders'), /SLUICE_TEST_NOT_SET is not set/);
  // A password written out with a / or an @ in it is hidden all the same.
  refused(() => config('mysql://cdc:s3cr3t/x@h/shop', 'orders'), /"mysql:\/\/cdc:\*\*\*@h\/shop" is not a valid URL/);
  refused(() => config('mysql://cdc:s3cr3t@x@h:0x/shop', 'orders'), /"mysql:\/\/cdc:\*\*\*@h:0x\/shop" is not a valid URL/);
  const secretFile = join(mkdtempSync(join(tmpdir(), 'sluice-mysql-secret-')), 's3cr3t');
  writeFileSync(secretFile, 'pass word\n');
  const fromFile = config(`mysql://cdc:\${file:${secretFile}}@h/shop`, 'orders');
  assert.equal(fromFile.url, 'mysql://cdc:pass%20word@h/shop');
  assert.equal(fromFile.displayUrl, 'mysql://cdc:***@h/shop');
  rmSync(dirname(secretFile), { recursive: true, force: true });
});

test('a ready MariaDB passes, with where its binary log and GTIDs stand', async () => {
  for (const user of ['root', 'cdc']) {
    const c = config(good.url('shop', user), 'products, shop.orders');
    const report = await mysqlPreflight(c);
    assert.deepEqual(report.problems, [], user);
    assert.equal(mysqlPreflightError(c, report), undefined);
    assert.equal(report.flavor, 'mariadb');
    assert.match(report.serverVersion, /^10\.11\.\d+$/);
    assert.match(report.binlog!.file, /^mariadb-bin\.\d{6}$/);
    assert.ok(report.binlog!.position > 4);
    assert.match(report.gtidPosition, /^0-1-\d+$/);
    assert.equal(report.gtidDomainId, 0);
    assert.equal(report.serverId, 1);
    assert.equal(report.binlogRetentionSeconds, 0); // never purged by age
  }
  const before = (await mysqlPreflight(config(good.url('shop'), 'products'))).binlog!;
  await good.query(`INSERT INTO shop.products VALUES (2, 'coffee')`);
  const later = await mysqlPreflight(config(good.url('shop'), 'products'));
  assert.equal(later.binlog!.file, before.file);
  assert.ok(later.binlog!.position > before.position);
});

test('privileges may come from the default role, and a database grant may be a pattern', async () => {
  const report = await mysqlPreflight(config(good.url('shop', 'viarole'), 'products, orders'));
  assert.deepEqual(report.problems, []);
  assert.ok(report.binlog);
});

test('every settings problem is reported at once, each with its fix, in one error', async () => {
  const c = config(loose.url('shop'), 'products');
  const report = await mysqlPreflight(c);
  const found = byCheck(report.problems);
  assert.deepEqual(Object.keys(found).sort(), ['binlog_compression', 'binlog_format', 'binlog_retention', 'binlog_row_image', 'binlog_row_metadata']);
  assert.match(found.binlog_format!, /binlog_format is 'MIXED', not ROW: set binlog_format = ROW in the \[mariadbd\] section of the server's configuration and restart MariaDB/);
  assert.match(found.binlog_row_image!, /binlog_row_image is 'MINIMAL', not FULL: set binlog_row_image = FULL .*SET GLOBAL binlog_row_image = 'FULL'/);
  assert.match(found.binlog_row_metadata!, /binlog_row_metadata is 'MINIMAL', not FULL: set binlog_row_metadata = FULL/);
  assert.match(found.binlog_retention!, /purged after 1 hour \(binlog_expire_logs_seconds = 3600\).*new snapshot: keep them at least a day.*binlog_expire_logs_seconds = 604800/);
  assert.match(found.binlog_compression!, /log_bin_compress is ON: Sluice does not read compressed binlog events: set log_bin_compress = OFF/);
  const error = mysqlPreflightError(c, report)!;
  assert.ok(error instanceof DefiniteError);
  assert.equal(error.code, 'mysql_preflight');
  assert.match(error.message, /^source shop \(mysql:\/\/root@127\.0\.0\.1:\d+\/shop\) cannot capture changes yet:\n  - /);
  assert.equal(error.message.split('\n').length, 1 + report.problems.length);
  assert.match(error.hint!, /fix these on the MariaDB server/);
});

test('a server without a binary log says how to turn it on', async () => {
  const report = await mysqlPreflight(config(unlogged.url('shop'), 'products'));
  assert.deepEqual(report.problems.map((p) => p.check), ['log_bin']);
  assert.match(report.problems[0]!.fix, /add log_bin = mariadb-bin .*\[mariadbd\].*restart MariaDB/);
  assert.equal(report.binlog, null);
  assert.equal(report.gtidPosition, '');
});

test('a user without privileges is told each grant to run', async () => {
  const report = await mysqlPreflight(config(good.url('shop', 'nobody'), 'products, nowhere'));
  const found = byCheck(report.problems);
  assert.deepEqual(Object.keys(found).sort(), ['replication_client', 'replication_slave', 'select_privilege']);
  assert.match(found.replication_slave!, /user 'nobody'@'127\.0\.0\.1' may not read the binary log \(no REPLICATION SLAVE\): run GRANT REPLICATION SLAVE ON \*\.\* TO 'nobody'@'127\.0\.0\.1'/);
  assert.match(found.replication_client!, /no BINLOG MONITOR \(REPLICATION CLIENT\)\): run GRANT BINLOG MONITOR ON \*\.\* TO 'nobody'@'127\.0\.0\.1'/);
  assert.match(found.select_privilege!, /may not use database shop \(in the URL\): run GRANT SELECT ON `shop`\.\* TO 'nobody'@'127\.0\.0\.1'/);
  assert.match(found.select_privilege!, /may not read table shop\.products \(nor see whether it exists\): run GRANT SELECT ON `shop`\.`products` TO 'nobody'@'127\.0\.0\.1'/);
  assert.match(found.select_privilege!, /may not read table shop\.nowhere/);
  assert.equal(report.binlog, null); // it may not see it
  // A grant on some columns only is not enough to read the table.
  const partial = byCheck((await mysqlPreflight(config(good.url('shop', 'partial'), 'products, orders'))).problems);
  assert.match(partial.select_privilege!, /^user 'partial'@'%' may not read table shop\.orders: run GRANT SELECT ON `shop`\.`orders` TO 'partial'@'%'/);
  assert.doesNotMatch(partial.select_privilege!, /shop\.products/);
});

test('a table without a primary key, a missing table, a view and a missing database are reported', async () => {
  const report = await mysqlPreflight(config(good.url('shop', 'cdc'), 'products, events, nowhere, cheap, archive.old'));
  const found = byCheck(report.problems);
  assert.deepEqual(Object.keys(found).sort(), ['not_a_table', 'primary_key', 'select_privilege', 'table_missing']);
  assert.match(found.primary_key!, /table shop\.events has no primary key.*: add a primary key: ALTER TABLE `shop`\.`events` ADD PRIMARY KEY/);
  assert.match(found.table_missing!, /table shop\.nowhere does not exist: create it, or remove it from WITH \(tables = …\)/);
  // cdc may read shop only: whether archive.old exists is not for it to see.
  assert.equal(found.select_privilege, "user 'cdc'@'%' may not read table archive.old (nor see whether it exists): run GRANT SELECT ON `archive`.`old` TO 'cdc'@'%' (or ON `archive`.*)");
  assert.match(byCheck((await mysqlPreflight(config(good.url('shop'), 'archive.old'))).problems).table_missing!, /table archive\.old does not exist/);
  assert.match(found.not_a_table!, /shop\.cheap is a view, not a table/);
  const missingDb = byCheck((await mysqlPreflight(config(good.url('warehouse'), 'shop.products'))).problems);
  assert.match(missingDb.database_missing!, /database warehouse \(in the URL\) does not exist/);
});

test('a server_id equal to the server\'s own is refused', async () => {
  const report = await mysqlPreflight(config(good.url('shop'), 'products', { server_id: '1' }));
  assert.match(byCheck(report.problems).server_id!, /server_id 1 is the server's own: give the source another.*server_id = '5401'/);
});

test('a server that cannot be reached is a transient error naming the URL, password hidden', async () => {
  const c = config('mysql://cdc:s3cret@127.0.0.1:1/shop', 'products');
  await assert.rejects(mysqlPreflight(c), (error: unknown) => {
    assert.ok(error instanceof TransientError);
    assert.equal(error.code, 'mysql_connect');
    assert.match(error.message, /^source shop: cannot connect to mysql:\/\/cdc:\*\*\*@127\.0\.0\.1:1\/shop: /);
    assert.doesNotMatch(`${error.message} ${error.hint}`, /s3cret/);
    return true;
  });
  // A wrong password is the same kind of error (the server may be set up meanwhile).
  await assert.rejects(mysqlPreflight(config(`mysql://cdc:wrong@127.0.0.1:${good.port}/shop`, 'products')), (error: unknown) => error instanceof TransientError && /Access denied/.test(error.message) && !/wrong/.test(error.message));
});

test('SHOW GRANTS is read in MySQL 8\'s spelling and MariaDB\'s', () => {
  const mysql8 = parseGrants([
    'GRANT SELECT, RELOAD, SHOW DATABASES, REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO `cdc`@`%`',
    'GRANT BACKUP_ADMIN ON *.* TO `cdc`@`%`',
    'GRANT `reader`@`%` TO `cdc`@`%`',
  ]);
  assert.ok(hasGlobal(mysql8, ['REPLICATION SLAVE']));
  assert.ok(hasGlobal(mysql8, ['REPLICATION CLIENT']));
  assert.ok(hasOn(mysql8, 'SELECT', 'any', 'table'));
  const mariadb = parseGrants([
    'GRANT `capture` TO `cdc`@`%`',
    'GRANT USAGE ON *.* TO `cdc`@`%` IDENTIFIED BY PASSWORD \'*94BDCEBE19083CE2A1F959FD02F964C7AF4CFC29\'',
    'GRANT REPLICATION REPLICA, BINLOG MONITOR ON *.* TO `capture`',
    'GRANT SELECT, INSERT ON `shop`.`order ON items` TO `cdc`@`%`',
    'GRANT SELECT (`id`, `a,b`), UPDATE ON `shop`.`orders` TO `cdc`@`%`',
    'GRANT ALL PRIVILEGES ON `sales\\_%`.* TO `cdc`@`%` WITH GRANT OPTION',
    'GRANT EXECUTE ON PROCEDURE `shop`.`p` TO `cdc`@`%`',
    "GRANT PROXY ON ''@'%' TO 'cdc'@'%'",
    'SET DEFAULT ROLE `capture` FOR `cdc`@`%`',
  ]);
  assert.ok(hasGlobal(mariadb, ['REPLICATION SLAVE', 'REPLICATION REPLICA']));
  assert.ok(hasGlobal(mariadb, ['BINLOG MONITOR']));
  assert.ok(!hasGlobal(mariadb, ['SUPER']));
  assert.ok(hasOn(mariadb, 'SELECT', 'shop', 'order ON items'));
  assert.ok(!hasOn(mariadb, 'SELECT', 'shop', 'orders')); // some columns only
  assert.ok(!hasOn(mariadb, 'SELECT', 'shop', 'products'));
  assert.ok(hasOn(mariadb, 'SELECT', 'sales_eu', 'orders'));
  assert.ok(!hasOn(mariadb, 'SELECT', 'salesXeu', 'orders')); // \_ is an underscore, not any character
  assert.ok(!hasOn(mariadb, 'SELECT', 'shop', 'p'));
  // A database-level ALL is not a global one.
  assert.ok(!hasGlobal(parseGrants(['GRANT ALL PRIVILEGES ON `shop`.* TO `cdc`@`%`']), ['REPLICATION SLAVE']));
  assert.ok(hasGlobal(parseGrants(['GRANT ALL PRIVILEGES ON *.* TO \'root\'@\'localhost\' WITH GRANT OPTION']), ['REPLICATION SLAVE']));
  assert.ok(hasOn(parseGrants(['GRANT SELECT ON shop.* TO cdc@localhost']), 'SELECT', 'shop', 'x')); // older, unquoted spelling
  assert.ok(hasOn(parseGrants(['GRANT SELECT ON "shop"."products" TO "cdc"@"%"']), 'SELECT', 'shop', 'products')); // ANSI_QUOTES
});

test('sluice check runs each MySQL source\'s preflight: ready, or the problems with their fixes', async () => {
  const { spawnSync } = await import('node:child_process');
  const folder = mkdtempSync(join(tmpdir(), 'sluice-mysql-check-'));
  try {
    const check = (url: string) => {
      const file = join(folder, 'p.sql');
      writeFileSync(file, `CREATE SOURCE shop FROM MYSQL '${url}' WITH (tables = 'products');\nCREATE VIEW n AS SELECT count(*) AS n FROM shop.products;\n`);
      return spawnSync(process.execPath, [join(dirname(new URL(import.meta.url).pathname), '../../bin/sluice.js'), 'check', file], { encoding: 'utf8', timeout: 30_000 });
    };
    const ready = check(good.url('shop'));
    assert.equal(ready.status, 0, ready.stdout + ready.stderr);
    assert.match(ready.stdout, /preflight shop: ready \(MariaDB 10\.\d+\.\d+[^;]*; binlog at [\w.-]+:\d+\)/);
    const notReady = check(loose.url('shop'));
    assert.equal(notReady.status, 1, notReady.stdout + notReady.stderr);
    assert.match(notReady.stdout, /preflight shop: \d+ problems to fix on the server\n  - .*binlog_format/s);
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
});
