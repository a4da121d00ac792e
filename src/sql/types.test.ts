/**
 * PostgreSQL types: names resolve as PostgreSQL's parser gives them, values read and print as
 * PostgreSQL's input and output functions do (expected strings are what psql prints).
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import { Decimal, Json, Timestamp, valuesEqual } from '../core/index.ts';
import { inputValue, outputValue, resolveType, typeName, type SqlType } from './types.ts';

const type = (name: string, ...modifiers: number[]): SqlType => resolveType(name, modifiers);

test('type names resolve from their aliases and print as PostgreSQL prints them', () => {
  assert.equal(typeName(resolveType(['pg_catalog', 'int4'])), 'integer');
  assert.equal(typeName(resolveType(['pg_catalog', 'numeric'], [10, 2])), 'numeric(10,2)');
  assert.equal(typeName(resolveType(['pg_catalog', 'varchar'], [20])), 'character varying(20)');
  assert.equal(typeName(resolveType(['pg_catalog', 'bpchar'])), 'character(1)');
  assert.equal(typeName(resolveType(['timestamptz'])), 'timestamp with time zone');
  assert.equal(typeName(resolveType('double precision')), 'double precision');
  assert.equal(resolveType('decimal').kind, 'numeric');
  assert.throws(() => resolveType(['geometry']), (error: Error & { hint?: string }) => /type "geometry" does not exist or is not supported/.test(error.message) && /smallint, integer, bigint/.test(error.hint ?? ''));
  assert.throws(() => resolveType(['text'], [], true), /array types \(text\[\]\) are not supported yet/);
  assert.equal(typeName(resolveType(['interval'])), 'interval');
  assert.throws(() => resolveType(['numeric'], [5, 7]), /NUMERIC scale 7 must be between 0 and precision 5/);
});

test('integers read with range checks and PostgreSQL messages', () => {
  assert.equal(inputValue(' 42 ', type('integer')), 42);
  assert.equal(inputValue('-32768', type('smallint')), -32768);
  assert.equal(inputValue('9223372036854775807', type('bigint')), 9223372036854775807n);
  assert.throws(() => inputValue('32768', type('smallint')), /^DefiniteError: value "32768" is out of range for type smallint$|value "32768" is out of range for type smallint/);
  assert.throws(() => inputValue('4.5', type('integer')), /invalid input syntax for type integer: "4.5"/);
  assert.throws(() => inputValue('', type('bigint')), /invalid input syntax for type bigint: ""/);
});

test('numeric keeps its scale, rounds to its modifiers and refuses overflow', () => {
  assert.equal(String(inputValue('2.50', type('numeric'))), '2.50');
  assert.equal(String(inputValue('1.005', type('numeric', 10, 2))), '1.01', 'half away from zero');
  assert.equal(String(inputValue('-1.005', type('numeric', 10, 2))), '-1.01');
  assert.equal(String(inputValue('7', type('numeric', 5, 2))), '7.00');
  assert.throws(() => inputValue('1000', type('numeric', 5, 2)), /numeric field overflow/);
  assert.ok(valuesEqual(inputValue('1e3', type('numeric')) as Decimal, Decimal.parse('1000')));
  assert.throws(() => inputValue('abc', type('numeric')), /invalid input syntax for type numeric: "abc"/);
});

test('floats, booleans, text, uuid, json and bytea read and print as PostgreSQL does', () => {
  assert.equal(inputValue('1.5', type('float8')), 1.5);
  assert.ok(Number.isNaN(inputValue('NaN', type('float8')) as number));
  assert.equal(inputValue('-Infinity', type('float8')), -Infinity);
  assert.equal(inputValue('0.1', type('float4')), Math.fround(0.1));
  assert.throws(() => inputValue('1e999', type('float8')), /out of range for type double precision/);
  assert.equal(outputValue(1e-7, type('float8')), '1e-07');
  assert.equal(outputValue(1e21, type('float8')), '1e+21');
  assert.equal(outputValue(0.1 + 0.2, type('float8')), '0.30000000000000004');
  assert.equal(outputValue(NaN, type('float8')), 'NaN');
  assert.equal(inputValue('yes', type('boolean')), true);
  assert.equal(inputValue(' OFF ', type('boolean')), false);
  assert.equal(outputValue(true, type('boolean')), 't');
  assert.throws(() => inputValue('maybe', type('boolean')), /invalid input syntax for type boolean: "maybe"/);
  assert.equal(inputValue('abc  ', type('varchar', 3)), 'abc', 'trailing spaces past the length are dropped');
  assert.throws(() => inputValue('abcd', type('varchar', 3)), /value too long for type character varying\(3\)/);
  assert.equal(inputValue('ab', type('char', 4)), 'ab  ');
  assert.equal(inputValue('{A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11}', type('uuid')), 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11');
  assert.throws(() => inputValue('a0eebc99', type('uuid')), /invalid input syntax for type uuid/);
  const document = inputValue('{"b": [1, 2], "aa": {"z": null, "y": true}, "c": "x"}', type('jsonb'));
  assert.ok(document instanceof Json);
  assert.equal(outputValue(document, type('jsonb')), '{"b": [1, 2], "c": "x", "aa": {"y": true, "z": null}}', "jsonb orders keys by length, then bytes");
  assert.throws(() => inputValue('{nope', type('json')), /invalid input syntax for type json/);
  assert.deepEqual(inputValue('\\xDEADbeef', type('bytea')), Uint8Array.from([0xde, 0xad, 0xbe, 0xef]));
  assert.deepEqual(inputValue('a\\\\b\\001', type('bytea')), Uint8Array.from([0x61, 0x5c, 0x62, 0x01]));
  assert.equal(outputValue(Uint8Array.from([0, 255]), type('bytea')), '\\x00ff');
});

test('dates and timestamps read in UTC, honour zones only for timestamptz, and print as PostgreSQL does', () => {
  const date = inputValue('2024-02-29', type('date'));
  assert.ok(date instanceof Timestamp && date.kind === 'date');
  assert.equal(outputValue(date, type('date')), '2024-02-29');
  assert.throws(() => inputValue('2023-02-29', type('date')), /date\/time field value out of range: "2023-02-29"/);
  assert.throws(() => inputValue('yesterday-ish', type('date')), /invalid input syntax for type date/);
  assert.equal(outputValue(inputValue('2024-01-02 03:04:05.5', type('timestamp')), type('timestamp')), '2024-01-02 03:04:05.5');
  assert.equal(outputValue(inputValue('2024-01-02T03:04:05+02', type('timestamp')), type('timestamp')), '2024-01-02 03:04:05', 'a zone is ignored without time zone');
  assert.equal(outputValue(inputValue('2024-01-02 03:04:05+02:30', type('timestamptz')), type('timestamptz')), '2024-01-02 00:34:05+00');
  assert.equal(outputValue(inputValue('2024-01-02 03:04:05.123456Z', type('timestamptz')), type('timestamptz')), '2024-01-02 03:04:05.123456+00');
  assert.equal((inputValue('1970-01-01 00:00:01', type('timestamptz')) as Timestamp).micros, 1_000_000n);
});
