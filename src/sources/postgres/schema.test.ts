import assert from 'node:assert/strict';
import test from 'node:test';
import { DefiniteError, Json, Timestamp } from '../../core/index.ts';
import { mapColumn, parseArray, readValue, UNCHANGED } from './schema.ts';

const column = (typeOid: number, typeModifier = -1) => mapColumn({ key: false, name: 'c', typeOid, typeModifier });
const read = (typeOid: number, text: string, typeModifier = -1) => readValue({ kind: 'text', value: text }, column(typeOid, typeModifier), 'orders');

test('type OIDs map to Sluice types, with numeric precision and scale and character lengths', () => {
  assert.deepEqual(column(1700, 786438).type, { kind: 'numeric', modifiers: [12, 2] });
  assert.deepEqual(column(1700).type, { kind: 'numeric', modifiers: [] });
  assert.deepEqual(column(1043, 24).type, { kind: 'varchar', modifiers: [20] });
  assert.deepEqual(column(1184).type, { kind: 'timestamptz', modifiers: [] });
  assert.deepEqual(column(1016).type, { kind: 'jsonb', modifiers: [] });
  assert.deepEqual(column(1016).element, { kind: 'bigint', modifiers: [] });
  // An enum, inet, or any type Sluice has no kind for: its text.
  assert.deepEqual(column(98765).type, { kind: 'text', modifiers: [] });
  assert.deepEqual(column(869).type, { kind: 'text', modifiers: [] });
});

test('values in PostgreSQL text output read exactly', () => {
  assert.equal(read(20, '9007199254740993'), 9007199254740993n);
  assert.equal(read(23, '-42'), -42);
  assert.equal(String(read(1700, '12345678901234567890.12', 786438 + (10 << 16))), '12345678901234567890.12');
  assert.equal(String(read(1700, '1.50')), '1.50');
  assert.equal(read(16, 't'), true);
  assert.equal(read(701, '-Infinity'), -Infinity);
  assert.equal((read(1184, '2026-11-24 12:34:56.123456+05:30') as Timestamp).micros, (read(1184, '2026-11-24 07:04:56.123456+00') as Timestamp).micros);
  assert.deepEqual((read(3802, '{"a": [1, 2.5]}') as Json).value, { a: [1, 2.5] });
  assert.deepEqual(read(17, '\\x00ff10'), Uint8Array.of(0, 255, 16));
  assert.equal(read(2950, 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'), 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11');
  assert.equal(read(25, '  spaces kept  '), '  spaces kept  ');
  assert.equal(readValue({ kind: 'null' }, column(23), 't'), null);
  assert.equal(readValue({ kind: 'unchanged' }, column(25), 't'), UNCHANGED);
});

test('arrays read as JSON arrays: NULLs, quoting, nesting, bounds', () => {
  const int8 = { kind: 'bigint' as const, modifiers: [] };
  const text = { kind: 'text' as const, modifiers: [] };
  assert.deepEqual(parseArray('{1,2,NULL}', int8), [1, 2, null]);
  assert.deepEqual(parseArray('{}', int8), []);
  assert.deepEqual(parseArray('{{1,2},{3,4}}', int8), [[1, 2], [3, 4]]);
  assert.deepEqual(parseArray('[0:1]={5,6}', int8), [5, 6]);
  assert.deepEqual(parseArray('{"a b","c\\"d","NULL",NULL,plain}', text), ['a b', 'c"d', 'NULL', null, 'plain']);
  assert.deepEqual(parseArray('{9223372036854775807}', int8), ['9223372036854775807']);
  assert.deepEqual(parseArray('{1.50,2}', { kind: 'numeric', modifiers: [] }), ['1.50', '2']);
  assert.deepEqual((read(1007, '{1,NULL,3}') as Json).value, [1, null, 3]);
  assert.throws(() => parseArray('{1,2', int8), /malformed array literal/);
  assert.throws(() => parseArray('{"open', text), /unterminated quoted element/);
});

test('a value that does not read as its type is an error naming the column and value', () => {
  assert.throws(() => read(23, 'twelve'), (error: unknown) => error instanceof DefiniteError && error.code === 'pg_value' && /orders, column "c": .*"twelve"/.test(error.message));
  assert.throws(() => readValue({ kind: 'binary', value: Uint8Array.of(1) }, column(23), 'orders'), /binary format/);
});
