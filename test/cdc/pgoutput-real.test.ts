/**
 * The pgoutput decoder and the type mapping against a real PostgreSQL 15: changes read from a
 * logical replication slot (pg_logical_slot_peek_binary_changes, the bytes a replication
 * connection would stream) are decoded, and every value must print exactly as PostgreSQL prints
 * it. Also: a transaction larger than logical_decoding_work_mem streamed with protocol 2, and
 * unchanged TOAST values.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Json } from '../../src/core/index.ts';
import { PgOutputDecoder, type PgOutputMessage } from '../../src/sources/postgres/pgoutput.ts';
import { mapColumn, readValue, UNCHANGED, type ColumnMapping } from '../../src/sources/postgres/schema.ts';
import { outputValue } from '../../src/sql/index.ts';
import { startPostgres, type PostgresServer } from '../services/postgres.ts';

let server: PostgresServer;

before(async () => {
  server = await startPostgres({ settings: { logical_decoding_work_mem: "'64kB'" } });
  await server.query(`CREATE TYPE mood AS ENUM ('happy', 'sad')`);
});

after(async () => {
  await server?.stop();
});

/** Every message the slot holds, decoded in order. */
async function changes(slot: string, options: string[]): Promise<PgOutputMessage[]> {
  const rows = await server.query(`SELECT data FROM pg_logical_slot_get_binary_changes('${slot}', NULL, NULL, ${options.map((o) => `'${o}'`).join(', ')})`);
  const decoder = new PgOutputDecoder();
  return rows.map((row: { data: Buffer }) => decoder.decode(row.data));
}

const KINDS = `CREATE TABLE kinds (
  id int PRIMARY KEY, i2 smallint, i8 bigint, n12 numeric(12,2), n numeric, f4 real, f8 double precision,
  b boolean, t text, v varchar(10), c char(3), d date, ts timestamp, tz timestamptz, iv interval,
  u uuid, j json, jb jsonb, by bytea, ai int[], at text[], m mood, ip inet)`;

const VALUES = [
  `(1, 32767, 9223372036854775807, 1234567890.12, 3.14159265358979323846264338327950288, 1.5, -2.25e-300, true, 'crème brûlée ☕', 'short', 'ab', '2026-11-24', '2026-11-24 12:34:56.789', '2026-11-24 12:34:56.789123+05:30', '1 year 2 mons 3 days 04:05:06.5', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a": [1, 2.5]}', '{"b": null, "a": "x"}', '\\x00ff10', '{1,NULL,3}', '{"a b","c\\"d",NULL}', 'happy', '192.168.0.1/24')`,
  `(2, -32768, -9223372036854775808, -0.01, 0, 'NaN', 'Infinity', false, '', '', '', '0001-01-01', '1970-01-01 00:00:00', '1999-12-31 23:59:59.999999+00', '-3 days', '00000000-0000-0000-0000-000000000000', '[]', '{}', '\\x', '{}', '{}', 'sad', '::1')`,
  `(3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`,
];

test('every value of every common type decodes to what PostgreSQL prints', async () => {
  await server.query(KINDS);
  await server.query(`CREATE PUBLICATION kinds_pub FOR TABLE kinds`);
  await server.query(`SELECT pg_create_logical_replication_slot('kinds_slot', 'pgoutput')`);
  await server.query(`INSERT INTO kinds VALUES ${VALUES.join(', ')}`);
  const messages = await changes('kinds_slot', ['proto_version', '1', 'publication_names', 'kinds_pub']);
  // The enum column's type is described before the relation that uses it.
  assert.deepEqual(messages.map((m) => m.type), ['begin', 'type', 'relation', 'insert', 'insert', 'insert', 'commit']);
  assert.deepEqual(messages[1], { type: 'type', typeOid: (messages[1] as { typeOid: number }).typeOid, namespace: 'public', name: 'mood' });
  const relation = messages[2] as Extract<PgOutputMessage, { type: 'relation' }>;
  assert.equal(relation.name, 'kinds');
  assert.deepEqual(relation.columns.filter((c) => c.key).map((c) => c.name), ['id']);
  const columns: ColumnMapping[] = relation.columns.map(mapColumn);
  const expected = await server.query(`SELECT to_jsonb(ai)::text AS ai, to_jsonb(at)::text AS at FROM kinds ORDER BY id`);
  const inserts = messages.filter((m): m is Extract<PgOutputMessage, { type: 'insert' }> => m.type === 'insert');
  inserts.forEach((insert, r) => {
    columns.forEach((column, c) => {
      const value = readValue(insert.newTuple[c]!, column, 'kinds');
      assert.notEqual(value, UNCHANGED);
      const printed = value === null ? null : column.element ? JSON.stringify((value as Json).value) : outputValue(value as Exclude<typeof value, typeof UNCHANGED>, column.type);
      // Scalars: exactly the text PostgreSQL's output function sent (read, then printed back).
      // Arrays: the JSON PostgreSQL itself makes of them (to_jsonb).
      const sent = insert.newTuple[c]!;
      const want = sent.kind !== 'text' ? null : column.element ? JSON.stringify(JSON.parse(expected[r][column.name])) : sent.value;
      // json keeps its value, not its text's spacing (Sluice's json is a value, as jsonb is).
      if (column.type.kind === 'json' && printed !== null) assert.deepEqual(JSON.parse(printed), JSON.parse(want!), `row ${r + 1}, column ${column.name}`);
      else assert.equal(printed, want, `row ${r + 1}, column ${column.name} (${column.type.kind})`);
    });
  });
});

test('updates and deletes carry the key; an unchanged TOASTed value is marked, not sent', async () => {
  await server.query(`CREATE TABLE docs (id int PRIMARY KEY, title text, body text)`);
  await server.query(`ALTER TABLE docs ALTER COLUMN body SET STORAGE EXTERNAL`);
  await server.query(`CREATE PUBLICATION docs_pub FOR TABLE docs`);
  await server.query(`SELECT pg_create_logical_replication_slot('docs_slot', 'pgoutput')`);
  await server.query(`INSERT INTO docs VALUES (1, 'first', repeat('toast ', 2000))`);
  await server.query(`UPDATE docs SET title = 'renamed' WHERE id = 1`);
  await server.query(`UPDATE docs SET id = 2 WHERE id = 1`);
  await server.query(`DELETE FROM docs WHERE id = 2`);
  const messages = await changes('docs_slot', ['proto_version', '1', 'publication_names', 'docs_pub']);
  const data = messages.filter((m) => m.type === 'insert' || m.type === 'update' || m.type === 'delete');
  assert.deepEqual(data.map((m) => m.type), ['insert', 'update', 'update', 'delete']);
  const [insert, rename, rekey, remove] = data as [Extract<PgOutputMessage, { type: 'insert' }>, Extract<PgOutputMessage, { type: 'update' }>, Extract<PgOutputMessage, { type: 'update' }>, Extract<PgOutputMessage, { type: 'delete' }>];
  assert.equal((insert.newTuple[2] as { value: string }).value.length, 12_000);
  // The title changed, the TOASTed body did not: it is not sent.
  assert.deepEqual(rename.newTuple[2], { kind: 'unchanged' });
  assert.equal(rename.oldTuple, undefined, 'no old key when the key did not change');
  // A primary-key update sends the old key.
  assert.equal(rekey.oldKind, 'key');
  assert.deepEqual(rekey.oldTuple![0], { kind: 'text', value: '1' });
  assert.deepEqual(rekey.newTuple[0], { kind: 'text', value: '2' });
  assert.equal(remove.oldKind, 'key');
  assert.deepEqual(remove.oldTuple[0], { kind: 'text', value: '2' });
});

test('a transaction larger than logical_decoding_work_mem streams with protocol 2 and commits whole', async () => {
  await server.query(`CREATE TABLE big (id int PRIMARY KEY, pad text)`);
  await server.query(`CREATE PUBLICATION big_pub FOR TABLE big`);
  await server.query(`SELECT pg_create_logical_replication_slot('big_slot', 'pgoutput')`);
  await server.query(`INSERT INTO big SELECT g, repeat('x', 100) FROM generate_series(1, 5000) g`);
  const messages = await changes('big_slot', ['proto_version', '2', 'streaming', 'on', 'publication_names', 'big_pub']);
  const starts = messages.filter((m) => m.type === 'streamStart');
  assert.ok(starts.length >= 2, `streamed in ${starts.length} segments`);
  const inserts = messages.filter((m): m is Extract<PgOutputMessage, { type: 'insert' }> => m.type === 'insert');
  assert.equal(inserts.length, 5000);
  const xid = (starts[0] as { xid: number }).xid;
  assert.ok(inserts.every((m) => m.xid === xid), 'every streamed change names its transaction');
  assert.deepEqual(messages.filter((m) => m.type === 'streamCommit').map((m) => (m as { xid: number }).xid), [xid]);
  assert.equal(messages.filter((m) => m.type === 'begin').length, 0, 'a streamed transaction has no Begin');
});
