/**
 * The binlog decoder against a real MariaDB: every common column type, written by INSERT, UPDATE
 * and DELETE, decodes to exactly what MariaDB itself prints for it (CAST(… AS CHAR), HEX for
 * bytes), with transaction boundaries (GTID, XID) around the rows.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { TransientError } from '../../src/core/index.ts';
import { after, before, test } from 'node:test';
import type { BinlogEvent, RawValue } from '../../src/sources/mysql/binlog.ts';
import { BinlogStream, type BinlogPosition } from '../../src/sources/mysql/stream.ts';
import { startMariadb, type MariadbServer } from '../services/mariadb.ts';

let server: MariadbServer;

before(async () => {
  server = await startMariadb();
  await server.createDatabase('shop');
});

after(async () => {
  await server?.stop();
});

const COLUMNS: Array<[name: string, type: string, value: string]> = [
  ['id', 'int PRIMARY KEY', '1'],
  ['t', 'tinyint', '-128'],
  ['tu', 'tinyint unsigned', '255'],
  ['s', 'smallint', '-32768'],
  ['m', 'mediumint', '-8388608'],
  ['mu', 'mediumint unsigned', '16777215'],
  ['i', 'int', '-2147483648'],
  ['iu', 'int unsigned', '4294967295'],
  ['b', 'bigint', '-9223372036854775808'],
  ['bu', 'bigint unsigned', '18446744073709551615'],
  ['f', 'float', '1.5'],
  ['d', 'double', '-2.25e100'],
  ['dec1', 'decimal(10,2)', '-12345678.91'],
  ['dec2', 'decimal(30,10)', '12345678901234567890.0123456789'],
  ['dec3', 'decimal(5,0)', '-7'],
  ['dec4', 'decimal(12,4)', '-0.0001'],
  ['dt', 'date', "'2024-02-29'"],
  ['dtm', 'datetime(6)', "'2024-02-29 13:05:09.123456'"],
  ['dtm0', 'datetime', "'1999-12-31 23:59:59'"],
  ['ts', 'timestamp(3) NULL', "'2024-02-29 13:05:09.120'"],
  ['tm', 'time(2)', "'-838:59:58.99'"],
  ['tm0', 'time', "'12:34:56'"],
  ['y', 'year', '2155'],
  ['c', 'char(5)', "'ab'"],
  ['vc', 'varchar(300)', "'héllo wörld ✓'"],
  ['tx', 'text', "'a longer text'"],
  ['bl', 'blob', "x'00ff10'"],
  ['bn', 'binary(4)', "x'01020304'"],
  ['e', "enum('small','medium','large')", "'medium'"],
  ['st', "set('red','green','blue')", "'red,blue'"],
  ['bt', 'bit(10)', "b'1010101010'"],
  ['js', 'json', `'{"a": [1, 2.5, "x"]}'`],
  ['n', 'int', 'NULL'],
];

/** What MariaDB prints for each column of row `id`: CAST(… AS CHAR), HEX for bytes, bit as a number. */
async function printed(id: number): Promise<Record<string, string | null>> {
  const select = COLUMNS.map(([name, type]) => (/blob|binary/.test(type) ? `HEX(${name}) AS ${name}` : /^bit/.test(type) ? `CAST(${name} + 0 AS CHAR) AS ${name}` : /^timestamp/.test(type) ? `CAST(CONVERT_TZ(${name}, @@session.time_zone, '+00:00') AS CHAR) AS ${name}` : `CAST(${name} AS CHAR) AS ${name}`)).join(', ');
  const [row] = await server.query(`SELECT ${select} FROM shop.types WHERE id = ${id}`);
  return row as Record<string, string | null>;
}

/** A decoded value as MariaDB would print it. */
function print(value: RawValue, type: string): string | null {
  if (value === null) return null;
  if (value instanceof Uint8Array) return Buffer.from(value).toString('hex').toUpperCase();
  if (type.startsWith('timestamp') && typeof value === 'string') return value.replace(/\+00$/, '');
  if (type === 'float' || type === 'double') return String(value).replace('e+', 'e');
  return String(value);
}

test('every common column type decodes to what MariaDB prints, for inserts, updates and deletes', async () => {
  await server.query(`CREATE TABLE shop.types (${COLUMNS.map(([name, type]) => `${name} ${type}`).join(', ')})`);
  const [status] = await server.query(`SHOW MASTER STATUS`);
  const start: BinlogPosition = { file: String(status.File), position: Number(status.Position) };
  const events: Array<{ event: BinlogEvent; next: BinlogPosition }> = [];
  let failure: Error | undefined;
  const stream = await BinlogStream.start({ url: server.url(), serverId: 4242, start, onEvent: (event, next) => events.push({ event, next }), onError: (error) => (failure = error) });
  try {
    await server.query(`INSERT INTO shop.types VALUES (${COLUMNS.map(([, , value]) => value).join(', ')})`);
    const inserted = await printed(1);
    await server.query(`UPDATE shop.types SET id = 2, dec1 = 0.5, vc = 'changed', e = 'large', n = 7 WHERE id = 1`);
    const updated = await printed(2);
    await server.query(`DELETE FROM shop.types WHERE id = 2`);
    const deadline = Date.now() + 10_000;
    while (events.filter((e) => e.event.kind === 'xid').length < 3) {
      if (failure) throw failure;
      if (Date.now() > deadline) assert.fail(`the events did not arrive: ${events.map((e) => e.event.kind).join(' ')}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const rows = events.map((e) => e.event).filter((e): e is Extract<BinlogEvent, { kind: 'rows' }> => e.kind === 'rows');
    assert.deepEqual(rows.map((r) => r.op), ['insert', 'update', 'delete']);
    const table = rows[0]!.table;
    assert.deepEqual(table.columns.map((c) => c.name), COLUMNS.map(([name]) => name), 'binlog_row_metadata=FULL names the columns');
    assert.deepEqual(table.columns.filter((c) => c.key).map((c) => c.name), ['id']);
    const asPrinted = (row: RawValue[]) => Object.fromEntries(COLUMNS.map(([name, type], i) => [name, print(row[i]!, type)]));
    assert.deepEqual(asPrinted(rows[0]!.rows[0]!), inserted, 'the inserted row');
    assert.deepEqual(asPrinted(rows[1]!.before![0]!), inserted, 'the update\'s before image');
    assert.deepEqual(asPrinted(rows[1]!.rows[0]!), updated, 'the update\'s after image');
    assert.deepEqual(asPrinted(rows[2]!.rows[0]!), updated, 'the deleted row');
    // Each transaction: a GTID, its rows, an XID; positions move forward.
    const kinds = events.map((e) => e.event.kind).filter((k) => k === 'gtid' || k === 'rows' || k === 'xid');
    assert.deepEqual(kinds, ['gtid', 'rows', 'xid', 'gtid', 'rows', 'xid', 'gtid', 'rows', 'xid']);
    const positions = events.filter((e) => e.event.header.nextPosition > 0).map((e) => e.next.position);
    assert.ok(positions.every((p, i) => i === 0 || p > positions[i - 1]!), 'positions increase');
  } finally {
    await stream.close();
  }
});

test('a position the server no longer has is a definite error naming the fix', async () => {
  let failure: Error | undefined;
  const stream = await BinlogStream.start({ url: server.url(), serverId: 4243, start: { file: 'no-such-binlog.000042', position: 4 }, onEvent: () => {}, onError: (error) => (failure = error) });
  try {
    const deadline = Date.now() + 10_000;
    while (!failure && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal((failure as { code?: string } | undefined)?.code, 'mysql_binlog_gone', `${failure}`);
    assert.match(failure!.message, /cannot send the binlog from no-such-binlog\.000042:4/);
  } finally {
    await stream.close();
  }
});

test('each column maps to a Sluice type, and each binlog value reads as exactly the value MariaDB prints', async () => {
  const { describeMysqlTables, mysqlValue } = await import('../../src/sources/mysql/schema.ts');
  const { inputValue, outputValue } = await import('../../src/sql/index.ts');
  await server.query(`CREATE TABLE shop.mapped (${COLUMNS.map(([name, type]) => `${name} ${type}`).join(', ')})`);
  const [status] = await server.query(`SHOW MASTER STATUS`);
  const events: BinlogEvent[] = [];
  const stream = await BinlogStream.start({ url: server.url(), serverId: 4244, start: { file: String(status.File), position: Number(status.Position) }, onEvent: (event) => events.push(event) });
  try {
    const [described] = await describeMysqlTables(server.url(), [{ schema: 'shop', name: 'mapped' }], 'test');
    const columns = described!.columns;
    assert.deepEqual(
      Object.fromEntries(columns.map((c) => [c.name, `${c.type.kind}${c.type.modifiers.length ? `(${c.type.modifiers.join(',')})` : ''}`])),
      { id: 'integer', t: 'smallint', tu: 'smallint', s: 'smallint', m: 'integer', mu: 'integer', i: 'integer', iu: 'bigint', b: 'bigint', bu: 'numeric(20,0)', f: 'real', d: 'double', dec1: 'numeric(10,2)', dec2: 'numeric(30,10)', dec3: 'numeric(5,0)', dec4: 'numeric(12,4)', dt: 'date', dtm: 'timestamp', dtm0: 'timestamp', ts: 'timestamptz', tm: 'interval', tm0: 'interval', y: 'smallint', c: 'varchar(5)', vc: 'varchar(300)', tx: 'text', bl: 'bytea', bn: 'bytea', e: 'text', st: 'text', bt: 'bigint', js: 'jsonb', n: 'integer' },
    );
    assert.deepEqual(columns.filter((c) => c.key).map((c) => c.name), ['id']);
    await server.query(`INSERT INTO shop.mapped VALUES (${COLUMNS.map(([, , value]) => value).join(', ')})`);
    const deadline = Date.now() + 10_000;
    while (!events.some((e) => e.kind === 'rows')) {
      if (Date.now() > deadline) assert.fail('no rows event');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const raw = (events.find((e) => e.kind === 'rows') as Extract<BinlogEvent, { kind: 'rows' }>).rows[0]!;
    const select = COLUMNS.map(([name, type]) => (/blob|binary/.test(type) ? `HEX(${name})` : /^bit/.test(type) ? `CAST(${name} + 0 AS CHAR)` : `CAST(${name} AS CHAR)`)).join(', ');
    const [printedRow] = await server.query(`SELECT ${select.split(', ').map((e, i) => `${e} AS c${i}`).join(', ')} FROM shop.mapped`);
    columns.forEach((column, i) => {
      let text = (printedRow as Record<string, string | null>)[`c${i}`] ?? null;
      if (text !== null && column.type.kind === 'bytea') text = `\\x${text.toLowerCase()}`;
      if (text !== null && column.type.kind === 'timestamptz') text = `${text}+00`; // the harness runs in UTC
      const want = text === null ? null : inputValue(text, column.type);
      const got = mysqlValue(raw[i]!, column, 'shop.mapped');
      assert.equal(got === null ? null : outputValue(got, column.type), want === null ? null : outputValue(want, column.type), `column ${column.name} (${column.native})`);
    });
  } finally {
    await stream.close();
  }
});

test('an idle stream is kept alive by heartbeats, and a frozen server (SIGSTOP) is noticed by its silence', async () => {
  const [status] = await server.query(`SHOW MASTER STATUS`);
  const start: BinlogPosition = { file: String(status.File), position: Number(status.Position) };
  let failure: Error | undefined;
  const stream = await BinlogStream.start({ url: server.url(), serverId: 4244, start, heartbeatSeconds: 0.5, silentMs: 2000, onEvent: () => {}, onError: (error) => (failure = error) });
  const [{ file }] = await server.query(`SELECT @@pid_file AS file`);
  const pid = Number(fs.readFileSync(String(file), 'utf8').trim());
  try {
    // Nothing is written for longer than silentMs: only heartbeats keep the stream from failing.
    await new Promise((resolve) => setTimeout(resolve, 3500));
    assert.equal(failure, undefined, `an idle server's stream failed: ${failure}`);
    process.kill(pid, 'SIGSTOP');
    const deadline = Date.now() + 8000;
    while (!failure && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal((failure as { code?: string } | undefined)?.code, 'mysql_binlog_silent', `a frozen server: ${failure}`);
    assert.ok((failure as Error | undefined) instanceof TransientError, 'retried, not definite');
  } finally {
    process.kill(pid, 'SIGCONT');
    await stream.close();
  }
});
