/**
 * Source configuration and preflight against a real PostgreSQL 15: every problem a source can
 * meet is reported together, each with its fix, and a server that is ready passes.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { DefiniteError } from '../../src/core/index.ts';
import { postgresConfig } from '../../src/sources/postgres/config.ts';
import { preflight, preflightError } from '../../src/sources/postgres/preflight.ts';
import { startPostgres, type PostgresServer } from '../services/postgres.ts';

let logical: PostgresServer;
let replica: PostgresServer;

before(async () => {
  [logical, replica] = await Promise.all([startPostgres(), startPostgres({ settings: { wal_level: 'replica', max_replication_slots: '1' } })]);
  await logical.query(`CREATE TABLE orders (id int PRIMARY KEY, amount numeric)`);
  await logical.query(`CREATE TABLE events (at timestamptz, what text)`);
  await logical.query(`CREATE TABLE audit (at timestamptz, what text)`);
  await logical.query(`ALTER TABLE audit REPLICA IDENTITY FULL`);
  await logical.query(`CREATE ROLE reader LOGIN`);
  await logical.query(`GRANT SELECT ON ALL TABLES IN SCHEMA public TO reader`);
});

after(async () => {
  await Promise.all([logical?.stop(), replica?.stop()]);
});

const config = (url: string, tables: string, extra: Record<string, string> = {}) => postgresConfig('shop', url, new Map(Object.entries({ tables, ...extra })));

test('options are checked, defaulted, and secrets resolved without ever being shown', () => {
  process.env.SLUICE_TEST_PG_PASSWORD = 's3cr3t/@';
  const c = config('postgres://cdc:${env:SLUICE_TEST_PG_PASSWORD}@localhost:5432/shop', 'orders, sales.items');
  assert.equal(c.url, 'postgres://cdc:s3cr3t%2F%40@localhost:5432/shop');
  assert.equal(c.displayUrl, 'postgres://cdc:***@localhost:5432/shop');
  assert.deepEqual(c.tables, [{ schema: 'public', name: 'orders' }, { schema: 'sales', name: 'items' }]);
  assert.equal(c.slot, 'sluice_shop');
  assert.equal(c.publication, 'sluice_shop');
  const refused = (f: () => unknown, pattern: RegExp) => assert.throws(f, (error: unknown) => error instanceof DefiniteError && pattern.test(`${error.message} ${error.hint}`) && !/s3cr3t/.test(error.message));
  refused(() => config('postgres://h/db', ''), /which tables to capture is not said.*tables = /);
  refused(() => config('postgres://h/db', 'a.b.c'), /"a.b.c" is not a table name/);
  refused(() => config('postgres://h/db', 'orders', { slot: 'Bad-Slot' }), /not a replication slot name/);
  refused(() => config('mysql://cdc:s3cr3t@h/db', 'orders'), /"mysql:\/\/cdc:\*\*\*@h\/db" is not a postgres:\/\/ URL/);
  refused(() => postgresConfig('shop', 'postgres://h/db', new Map([['tables', 'orders'], ['slots', 'x']])), /no option "slots"/);
  refused(() => config('postgres://cdc:${env:SLUICE_TEST_NOT_SET}@h/db', 'orders'), /SLUICE_TEST_NOT_SET is not set/);
});

test('a ready server passes, and says the slot and publication are still to be created', async () => {
  const report = await preflight(config(logical.url('postgres'), 'orders, audit'));
  assert.deepEqual(report.problems, []);
  assert.match(report.serverVersion, /^15\./);
  assert.equal(report.slotExists, false);
  assert.equal(report.publicationExists, false);
});

test('every problem is reported at once, each with its fix', async () => {
  await logical.query(`SELECT pg_create_logical_replication_slot('busy_slot', 'test_decoding')`);
  const report = await preflight(config(logical.url('postgres', 'reader'), 'orders, events, nowhere', { slot: 'busy_slot' }));
  const byCheck = Object.fromEntries(report.problems.map((p) => [p.check, `${p.message}: ${p.fix}`]));
  assert.match(byCheck.replication_privilege!, /user "reader" may not replicate: run ALTER ROLE "reader" WITH REPLICATION/);
  assert.match(byCheck.replica_identity!, /public\.events has no primary key.*ALTER TABLE public\.events REPLICA IDENTITY FULL/);
  assert.match(byCheck.table_missing!, /public\.nowhere does not exist/);
  assert.match(byCheck.slot_plugin!, /"busy_slot" uses test_decoding, not pgoutput/);
  const error = preflightError(config(logical.url('postgres', 'reader'), 'orders'), report)!;
  assert.equal(error.code, 'pg_preflight');
  assert.equal(error.message.split('\n').length, 1 + report.problems.length);
});

test('wal_level and slot limits are named with the setting to change', async () => {
  const report = await preflight(config(replica.url('postgres'), 'pg_catalog.pg_class'));
  assert.match(report.problems.find((p) => p.check === 'wal_level')!.fix, /set wal_level = logical in postgresql\.conf and restart PostgreSQL/);
});

test('a slot another consumer is reading is reported with that process', async () => {
  const { ReplicationStream } = await import('../../src/sources/postgres/stream.ts');
  await logical.query(`CREATE PUBLICATION live_pub FOR TABLE orders`);
  await logical.query(`SELECT pg_create_logical_replication_slot('live_slot', 'pgoutput')`);
  const stream = await ReplicationStream.start({ url: logical.url('postgres'), slot: 'live_slot', publication: 'live_pub', startLsn: 0n, onMessage: () => {} });
  try {
    const report = await preflight(config(logical.url('postgres'), 'orders', { slot: 'live_slot', publication: 'live_pub' }));
    assert.equal(report.slotExists, true);
    assert.equal(report.publicationExists, true);
    assert.match(report.problems.find((p) => p.check === 'slot_active')!.message, /"live_slot" is in use by process \d+/);
  } finally {
    await stream.close();
  }
});

test('sluice check runs each PostgreSQL source\'s preflight: ready, problems, or unreachable (password hidden)', async () => {
  const { spawnSync } = await import('node:child_process');
  const { mkdtempSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join, resolve } = await import('node:path');
  const sluice = resolve(import.meta.dirname, '../../bin/sluice.js');
  const folder = mkdtempSync(join(tmpdir(), 'sluice-check-'));
  const check = (url: string) => {
    const file = join(folder, `p${Math.random().toString(36).slice(2)}.sql`);
    writeFileSync(file, `CREATE SOURCE shop FROM POSTGRES '${url}' WITH (tables = 'public.orders');\n`);
    return spawnSync(process.execPath, [sluice, 'check', file], { encoding: 'utf8', timeout: 30_000 });
  };
  const ready = check(logical.url('postgres'));
  assert.equal(ready.status, 0, ready.stdout + ready.stderr);
  assert.match(ready.stdout, /preflight shop: ready \(PostgreSQL 15\.\d+[^;]*; will create publication sluice_shop and slot sluice_shop\)/);
  const replicaCheck = check(replica.url('postgres'));
  assert.equal(replicaCheck.status, 1);
  assert.match(replicaCheck.stdout, /preflight shop: \d+ problems? to fix on the server\n  - wal_level is 'replica': set wal_level = logical/);
  const unreachable = check('postgres://cdc:s3cret@127.0.0.1:1/shop');
  assert.equal(unreachable.status, 1);
  assert.match(unreachable.stdout, /preflight shop: source shop: cannot connect to postgres:\/\/cdc:\*\*\*@127\.0\.0\.1:1\/shop/);
  assert.doesNotMatch(unreachable.stdout + unreachable.stderr, /s3cret/);
});
