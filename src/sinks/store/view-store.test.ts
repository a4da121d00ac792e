import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { test } from 'node:test';
import { Decimal, DefiniteError, Interval, Json, Timestamp, TransientError, type Row } from '../../core/index.ts';
import { inputValue, resolveType } from '../../sql/index.ts';
import type { SinkColumn, SinkTarget } from '../sink.ts';
import { ViewStore } from './view-store.ts';

function temporaryFolder(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-store-'));
}

function columns(spec: string): SinkColumn[] {
  return spec.split(/,(?![^(]*\))/).map((part) => {
    const [name, ...type] = part.trim().split(' ');
    const typeText = type.join(' ');
    const match = /^(.*?)(?:\((\d+)(?:,(\d+))?\))?$/.exec(typeText)!;
    const modifiers = [match[2], match[3]].filter((m) => m !== undefined).map(Number);
    return { name: name!, type: resolveType(match[1]!, modifiers) };
  });
}

const products: SinkTarget = { name: 'products', columns: columns('id bigint, title text, price numeric(10,2)'), key: [0] };
const d = (text: string) => Decimal.parse(text);

function expectDefinite(code: string, pattern: RegExp, run: () => unknown): DefiniteError {
  let caught: unknown;
  try {
    run();
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof DefiniteError, `expected a DefiniteError, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  assert.match(caught.message, pattern);
  assert.ok(caught.hint, 'every error has a hint');
  return caught;
}

test('a keyed view: inserts, updates as delete + insert, deletes, get by key, count and committed', () => {
  const store = ViewStore.open();
  const sink = store.sink(products);
  assert.equal(sink.committed(), undefined);
  sink.write({ step: 1, frontier: 'p1', rows: [[1, 'lamp', d('9.50')], [2, 'desk', d('120.00')], [10, 'chair', d('45')]], weights: [1, 1, 1] });
  assert.deepEqual(sink.committed(), { step: 1, frontier: 'p1' });
  assert.deepEqual(store.read('products'), {
    rows: [
      { id: 1, title: 'lamp', price: '9.50' },
      { id: 2, title: 'desk', price: '120.00' },
      { id: 10, title: 'chair', price: '45' },
    ],
    step: 1,
    position: 'p1',
  });
  // An update: the old row deleted, the new one inserted, in one step.
  sink.write({ step: 2, frontier: 'p2', rows: [[2, 'desk', d('120.00')], [2, 'desk', d('99.00')], [10, 'chair', d('45')]], weights: [-1, 1, -1] });
  assert.deepEqual(store.get('products', [2]), { id: 2, title: 'desk', price: '99.00' });
  assert.deepEqual(store.get('products', ['2']), { id: 2, title: 'desk', price: '99.00' }, 'a key given as text is read with its type');
  assert.deepEqual(store.get('products', [2n]), { id: 2, title: 'desk', price: '99.00' });
  assert.equal(store.get('products', [10]), undefined);
  assert.equal(store.count('products'), 2);
  assert.deepEqual(store.committed('products'), { step: 2, frontier: 'p2' });
  assert.deepEqual(store.read('products', { total: true, limit: 1 }), { rows: [{ id: 1, title: 'lamp', price: '9.50' }], total: 2, step: 2, position: 'p2' });
  store.close();
});

test('an unkeyed view is a multiset: a weight of 2 is one stored row read twice, and pages count copies', () => {
  const store = ViewStore.open();
  const sink = store.sink({ name: 'clicks', columns: columns('url text, n integer') });
  sink.write({ step: 1, frontier: 'a', rows: [['/a', 1], ['/b', 2], ['/c', 3]], weights: [2, 3, 1] });
  assert.equal(store.count('clicks'), 6);
  assert.deepEqual(store.entries('clicks').map((e) => [e.row, e.count]), [[['/a', 1], 2], [['/b', 2], 3], [['/c', 3], 1]]);
  const all = store.read('clicks').rows.map((r) => r.url);
  assert.deepEqual(all, ['/a', '/a', '/b', '/b', '/b', '/c']);
  for (let limit = 1; limit <= 7; limit++) {
    const paged: unknown[] = [];
    for (let offset = 0; offset < 8; offset += limit) paged.push(...store.read('clicks', { limit, offset }).rows.map((r) => r.url));
    assert.deepEqual(paged, all, `pages of ${limit}`);
  }
  assert.deepEqual(store.read('clicks', { filters: { url: '/b' }, total: true, limit: 2, offset: 2 }), { rows: [{ url: '/b', n: 2 }], total: 3, step: 1, position: 'a' });
  // Deleting some copies keeps the rest; deleting the last removes the row.
  sink.write({ step: 2, frontier: 'b', rows: [['/a', 1], ['/b', 2]], weights: [-2, -1] });
  assert.deepEqual(store.entries('clicks').map((e) => [e.row, e.count]), [[['/b', 2], 2], [['/c', 3], 1]]);
  assert.equal(store.count('clicks'), 3);
  sink.write({ step: 3, frontier: 'c', rows: [['/b', 2]], weights: [-1] });
  assert.deepEqual(store.read('clicks').rows.map((r) => r.url), ['/b', '/c'], 'no duplicates left: the plain paging path');
  store.close();
});

test('a replayed step is skipped; a batch at a later step applies', () => {
  const store = ViewStore.open();
  const sink = store.sink(products);
  sink.write({ step: 1, frontier: 'p1', rows: [[1, 'lamp', d('9.50')]], weights: [1] });
  sink.write({ step: 1, frontier: 'p1', rows: [[1, 'lamp', d('9.50')]], weights: [1] });
  assert.equal(store.count('products'), 1);
  sink.write({ step: 3, frontier: 'p3', rows: [[3, 'rug', d('20')]], weights: [1] });
  sink.write({ step: 2, frontier: 'p2', rows: [[2, 'desk', d('1')]], weights: [1] });
  assert.deepEqual(store.read('products').rows.map((r) => r.id), [1, 3]);
  assert.deepEqual(sink.committed(), { step: 3, frontier: 'p3' });
  // An empty step still moves the frontier.
  sink.write({ step: 4, frontier: 'p4', rows: [], weights: [] });
  assert.deepEqual(store.committed('products'), { step: 4, frontier: 'p4' });
  store.close();
});

test('a batch that fails midway leaves the previous rows and step', () => {
  const store = ViewStore.open();
  const sink = store.sink(products);
  sink.write({ step: 1, frontier: 'p1', rows: [[1, 'lamp', d('9.50')], [2, 'desk', d('120')]], weights: [1, 1] });
  const before = store.read('products', { total: true });

  // A delete of a row the store does not hold, after other changes.
  expectDefinite('store_missing_row', /step 2 deletes a row the store does not hold: \{"id":7/, () =>
    sink.write({ step: 2, frontier: 'p2', rows: [[1, 'lamp', d('9.50')], [7, 'nothing', d('1')], [3, 'rug', d('5')]], weights: [-1, -1, 1] }),
  );
  assert.deepEqual(store.read('products', { total: true }), before);
  assert.deepEqual(sink.committed(), { step: 1, frontier: 'p1' });

  // A value of the wrong type in the middle of the inserts.
  expectDefinite('store_value_type', /column "price" \(numeric\(10,2\)\) cannot hold "cheap"/, () =>
    sink.write({ step: 2, frontier: 'p2', rows: [[3, 'rug', d('5')], [4, 'bed', 'cheap'], [5, 'mat', d('1')]], weights: [1, 1, 1] }),
  );
  assert.deepEqual(store.read('products', { total: true }), before);

  // A different row under an existing key.
  expectDefinite('store_key_conflict', /key \{"id":2\} already holds a different row/, () =>
    sink.write({ step: 2, frontier: 'p2', rows: [[3, 'rug', d('5')], [2, 'other desk', d('1')]], weights: [1, 1] }),
  );
  assert.deepEqual(store.read('products', { total: true }), before);

  // Deleting more copies than are stored.
  expectDefinite('store_missing_row', /deletes 2 copies of a row the store holds 1 of/, () => sink.write({ step: 2, frontier: 'p2', rows: [[1, 'lamp', d('9.50')]], weights: [-2] }));

  // And the sink carries on with the next good batch.
  sink.write({ step: 2, frontier: 'p2', rows: [[3, 'rug', d('5')]], weights: [1] });
  assert.equal(store.count('products'), 3);
  store.close();
});

test('the store reopens from its file: views, rows, steps; a changed definition is refused; drop', () => {
  const folder = temporaryFolder();
  const file = path.join(folder, 'views', 'store.sqlite');
  let store = ViewStore.open(file);
  store.sink(products).write({ step: 5, frontier: 'p5', rows: [[1, 'lamp', d('9.50')]], weights: [1] });
  store.sink({ name: 'empty', columns: columns('x integer') });
  store.close();
  expectDefinite('store_closed', /closed/, () => store.read('products'));

  store = ViewStore.open(file);
  assert.deepEqual(store.views().map((v) => [v.name, v.step, v.rows]), [['products', 5, 1], ['empty', undefined, 0]]);
  const sink = store.sink(products);
  assert.deepEqual(sink.committed(), { step: 5, frontier: 'p5' });
  sink.write({ step: 5, frontier: 'p5', rows: [[1, 'lamp', d('9.50')]], weights: [1] });
  sink.write({ step: 6, frontier: 'p6', rows: [[2, 'desk', d('1.00')]], weights: [1] });
  assert.deepEqual(store.read('products').rows, [{ id: 1, title: 'lamp', price: '9.50' }, { id: 2, title: 'desk', price: '1.00' }]);

  expectDefinite('store_schema_changed', /view "products" is stored with other columns/, () => store.sink({ ...products, key: undefined }));
  store.drop('products');
  expectDefinite('store_dropped', /dropped/, () => sink.write({ step: 7, frontier: 'p7', rows: [], weights: [] }));
  expectDefinite('store_view_unknown', /view "products" does not exist/, () => store.read('products'));
  const again = store.sink({ ...products, key: undefined });
  assert.equal(again.committed(), undefined);
  store.close();
  store = ViewStore.open(file);
  assert.deepEqual(store.views().map((v) => [v.name, v.step, v.rows, v.key]), [['empty', undefined, 0, undefined], ['products', undefined, 0, undefined]]);
  store.close();
  fs.rmSync(folder, { recursive: true, force: true });
});

const everything = columns(
  'i integer, big bigint, n numeric, r double precision, t text, v varchar(3), ch char(3), u uuid, b boolean, dt date, ts timestamp, tz timestamptz, iv interval, j jsonb, by bytea',
);

function typedRow(texts: Array<string | null>): Row {
  return texts.map((text, i) => (text === null ? null : inputValue(text, everything[i]!.type)));
}

test('filters parse their text with each column type, as PostgreSQL compares', () => {
  const store = ViewStore.open();
  const sink = store.sink({ name: 'all', columns: everything });
  const rows = [
    typedRow(['1', '9007199254740993', '9.50', '1.5', 'ada', 'abc', 'ab', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', 't', '2024-01-01', '2024-01-01 12:00:00', '2024-01-01 12:00:00+02', '1 mon', '{"b": 2, "a": [1, "x"]}', '\\x0102ff']),
    typedRow(['2', '-5', '-0.001', 'NaN', 'bob', 'b', 'c', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12', 'f', '1999-12-31', '1999-12-31 23:59:59.5', '1999-12-31 23:59:59.5Z', '2 days', '[]', '\\x']),
    typedRow([null, null, null, null, null, null, null, null, null, null, null, null, null, null, null]),
  ];
  sink.write({ step: 1, frontier: 'x', rows, weights: [1, 1, 1] });
  const ids = (filters: Record<string, string>) => store.read('all', { filters }).rows.map((r) => r.i);
  assert.deepEqual(ids({ i: '1' }), [1]);
  assert.deepEqual(ids({ i: ' 2 ' }), [2]);
  assert.deepEqual(ids({ big: '9007199254740993' }), [1], 'an integer beyond 2^53 exactly');
  assert.deepEqual(ids({ big: '9007199254740992' }), []);
  assert.deepEqual(ids({ n: '9.5' }), [1], 'numeric equality ignores the scale');
  assert.deepEqual(ids({ n: '9.500000' }), [1]);
  assert.deepEqual(ids({ n: '-1e-3' }), [2]);
  assert.deepEqual(ids({ r: '1.50' }), [1]);
  assert.deepEqual(ids({ r: 'NaN' }), [2], 'NaN equals NaN, as in PostgreSQL');
  assert.deepEqual(ids({ t: 'bob' }), [2]);
  assert.deepEqual(ids({ t: 'Bob' }), []);
  assert.deepEqual(ids({ v: 'abcd' }), [], 'a value longer than varchar(n) matches nothing, no error');
  assert.deepEqual(ids({ ch: 'ab' }), [1], 'char(n) pads');
  assert.deepEqual(ids({ u: 'a0eebc999c0b4ef8bb6d6bb9bd380a11' }), [1]);
  assert.deepEqual(ids({ b: 'true' }), [1]);
  assert.deepEqual(ids({ b: 'no' }), [2]);
  assert.deepEqual(ids({ dt: '2024-01-01' }), [1]);
  assert.deepEqual(ids({ ts: '2024-01-01T12:00:00' }), [1]);
  assert.deepEqual(ids({ ts: '1999-12-31 23:59:59.500' }), [2]);
  assert.deepEqual(ids({ tz: '2024-01-01 10:00:00Z' }), [1], 'timestamptz compares instants');
  assert.deepEqual(ids({ iv: '30 days' }), [1], "'1 mon' = '30 days'");
  assert.deepEqual(ids({ iv: '48 hours' }), [2]);
  assert.deepEqual(ids({ j: '{"a":[1,"x"],"b":2}' }), [1], 'jsonb equality ignores key order and spacing');
  assert.deepEqual(ids({ by: '\\x0102FF' }), [1]);
  assert.deepEqual(ids({ by: '\\x' }), [2]);
  assert.deepEqual(ids({ i: '1', t: 'ada' }), [1]);
  assert.deepEqual(ids({ i: '1', t: 'bob' }), []);

  // The values come back as PostgreSQL prints them (objectRow).
  assert.deepEqual(store.read('all', { filters: { i: '1' } }).rows[0], {
    i: 1,
    big: '9007199254740993',
    n: '9.50',
    r: 1.5,
    t: 'ada',
    v: 'abc',
    ch: 'ab ',
    u: 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
    b: true,
    dt: '2024-01-01',
    ts: '2024-01-01 12:00:00',
    tz: '2024-01-01 10:00:00+00',
    iv: '1 mon',
    j: { a: [1, 'x'], b: 2 },
    by: '\\x0102ff',
  });
  assert.deepEqual(store.read('all', { filters: { i: '2' } }).rows[0]!.r, 'NaN');
  assert.deepEqual(store.read('all', { filters: {} }).rows[2], Object.fromEntries(everything.map((c) => [c.name, null])));

  // Bad values and unknown columns name themselves and say what to write.
  const bad = expectDefinite('store_filter_value', /filter i="x" on view "all": invalid input syntax for type integer: "x"/, () => store.read('all', { filters: { i: 'x' } }));
  assert.match(bad.hint!, /column "i" is integer; write its value as 7/);
  expectDefinite('store_filter_value', /filter ts="yesterday"/, () => store.read('all', { filters: { ts: 'yesterday' } }));
  expectDefinite('store_filter_value', /out of range for type integer/, () => store.read('all', { filters: { i: '99999999999' } }));
  const unknown = expectDefinite('store_column_unknown', /cannot filter column "tt": view "all" has no such column/, () => store.read('all', { filters: { tt: 'x' } }));
  assert.match(unknown.hint!, /did you mean "t"\?/);
  expectDefinite('store_view_unknown', /view "al" does not exist/, () => store.read('al'));
  expectDefinite('store_read_options', /limit must be a whole number/, () => store.read('all', { limit: -1 }));
  expectDefinite('store_column_unknown', /cannot order by column "zz"/, () => store.read('all', { orderBy: [{ column: 'zz' }] }));
  store.close();
});

test('ORDER BY follows PostgreSQL: numbers numerically (numeric exactly), NaN above numbers, NULLs last ascending', () => {
  const store = ViewStore.open();
  const sink = store.sink({ name: 'numbers', columns: columns('n numeric, r double precision, at timestamptz, iv interval') });
  const values = ['-100', '-9.99', '-9.9', '-0.001', '0', '0.0001', '0.001', '9.9', '9.99', '10', '100.5', '123456789012345678901234567890'];
  const rows: Row[] = values.map((text, i) => [d(text), i % 3 === 0 ? NaN : Number(text), new Timestamp('timestamptz', BigInt(i) * 1000n - 5000n), new Interval(0, i - 5, 0n)]);
  rows.push([null, null, null, null]);
  sink.write({ step: 1, frontier: 'x', rows, weights: rows.map(() => 1) });
  assert.deepEqual(store.read('numbers', { orderBy: [{ column: 'n' }] }).rows.map((r) => r.n), [...values, null]);
  assert.deepEqual(store.read('numbers', { orderBy: [{ column: 'n', descending: true }] }).rows.map((r) => r.n), [null, ...values.reverse()]);
  const floats = store.read('numbers', { orderBy: [{ column: 'r' }] }).rows.map((r) => r.r);
  assert.deepEqual(floats.slice(-5), ['NaN', 'NaN', 'NaN', 'NaN', null]);
  assert.deepEqual(store.read('numbers', { orderBy: [{ column: 'at', descending: true }], limit: 3 }).rows.map((r) => r.at), [null, '1970-01-01 00:00:00.006+00', '1970-01-01 00:00:00.005+00']);
  assert.deepEqual(store.read('numbers', { orderBy: [{ column: 'iv' }], limit: 2 }).rows.map((r) => r.iv), ['-5 days', '-4 days']);
  store.close();
});

test('paging is stable: pages in any order and size concatenate to the whole, each row once', () => {
  const store = ViewStore.open();
  const sink = store.sink({ name: 'letters', columns: columns('letter text, n integer') });
  const rows: Row[] = [];
  for (let i = 0; i < 50; i++) rows.push([String.fromCharCode(97 + (i % 26)), i % 7]);
  sink.write({ step: 1, frontier: 'x', rows, weights: rows.map(() => 1) });
  for (const orderBy of [undefined, [{ column: 'n' }], [{ column: 'letter', descending: true }]]) {
    const whole = store.read('letters', { orderBy }).rows;
    assert.equal(whole.length, 50);
    for (const size of [1, 7, 50]) {
      const pages: unknown[] = [];
      for (let offset = 0; offset < 50; offset += size) pages.push(...store.read('letters', { orderBy, limit: size, offset }).rows);
      assert.deepEqual(pages, whole);
    }
  }
  const byN = store.read('letters', { orderBy: [{ column: 'n' }] }).rows.map((r) => r.n as number);
  assert.deepEqual(byN, [...byN].sort((a, b) => a - b));
  // With a filter, and with duplicates (the running-count path), in a given order.
  const check = (options: { filters?: Record<string, string>; orderBy?: Array<{ column: string; descending?: boolean }> }, expected: number) => {
    const whole = store.read('letters', options).rows;
    assert.equal(whole.length, expected);
    for (const size of [1, 3]) {
      const pages: unknown[] = [];
      for (let offset = 0; offset < whole.length + size; offset += size) pages.push(...store.read('letters', { ...options, limit: size, offset }).rows);
      assert.deepEqual(pages, whole);
    }
    return whole;
  };
  check({ filters: { n: '3' }, orderBy: [{ column: 'letter', descending: true }] }, 7);
  sink.write({ step: 2, frontier: 'y', rows: [['z', 3], ['q', 3]], weights: [3, 1] });
  const filtered = check({ filters: { n: '3' }, orderBy: [{ column: 'letter', descending: true }] }, 11);
  assert.deepEqual(filtered.map((r) => r.letter).slice(0, 5), ['z', 'z', 'z', 'y', 't']);
  check({ orderBy: [{ column: 'n', descending: true }, { column: 'letter' }] }, 54);
  store.close();
});

test('a keyed view reads in key order by default, with a composite key and text keys', () => {
  const store = ViewStore.open();
  const sink = store.sink({ name: 'stock', columns: columns('shop text, item integer, qty integer'), key: [0, 1] });
  sink.write({ step: 1, frontier: 'x', rows: [['b', 2, 5], ['a', 10, 1], ['a', 9, 3], ['b', 1, 0]], weights: [1, 1, 1, 1] });
  assert.deepEqual(store.read('stock').rows.map((r) => `${r.shop}${r.item}`), ['a9', 'a10', 'b1', 'b2']);
  assert.deepEqual(store.get('stock', ['a', '10']), { shop: 'a', item: 10, qty: 1 });
  expectDefinite('store_no_key', /has a key of 2 column\(s\) \(shop, item\), not 1/, () => store.get('stock', ['a']));
  // A keyed row may gain copies of itself (the view is still a multiset).
  sink.write({ step: 2, frontier: 'y', rows: [['a', 9, 3]], weights: [1] });
  assert.equal(store.count('stock'), 5);
  store.close();
});

test('a view with json values, whole-row identity across representations, and empty strings', () => {
  const store = ViewStore.open();
  const sink = store.sink({ name: 'docs', columns: columns('doc json, n numeric, iv interval, s text') });
  sink.write({ step: 1, frontier: 'x', rows: [[new Json({ b: 1, a: 2 }), d('1.50'), new Interval(1, 0, 0n), '']], weights: [1] });
  // The same row with other representations of equal values: one row id.
  sink.write({ step: 2, frontier: 'y', rows: [[new Json({ a: 2, b: 1 }), d('1.5'), new Interval(0, 30, 0n), '']], weights: [-1] });
  assert.equal(store.count('docs'), 0);
  assert.deepEqual(store.entries('docs'), []);
  store.close();
});

test('a store locked by another connection fails the step as transient, having applied nothing', () => {
  const folder = temporaryFolder();
  const file = path.join(folder, 'views.sqlite');
  const store = ViewStore.open(file, { busyTimeoutMs: 20 });
  const sink = store.sink(products);
  sink.write({ step: 1, frontier: 'p1', rows: [[1, 'lamp', d('9.50')]], weights: [1] });
  const other = new DatabaseSync(file);
  other.exec('BEGIN IMMEDIATE');
  assert.throws(
    () => sink.write({ step: 2, frontier: 'p2', rows: [[2, 'desk', d('1')]], weights: [1] }),
    (error: unknown) => error instanceof TransientError && error.code === 'store_write' && /step 2 could not be stored: database is locked/.test(error.message),
  );
  other.exec('ROLLBACK');
  other.close();
  assert.deepEqual(sink.committed(), { step: 1, frontier: 'p1' });
  sink.write({ step: 2, frontier: 'p2', rows: [[2, 'desk', d('1')]], weights: [1] });
  assert.equal(store.count('products'), 2);
  store.close();
  fs.rmSync(folder, { recursive: true, force: true });
});

test('a group commits several views\' batches together; a failed batch inside is undone alone', () => {
  const store = ViewStore.open();
  const a = store.sink(products);
  const b = store.sink({ name: 'clicks', columns: columns('url text') });
  store.group(() => {
    a.write({ step: 1, frontier: 'p1', rows: [[1, 'lamp', d('9.50')]], weights: [1] });
    b.write({ step: 1, frontier: 'p1', rows: [['/a']], weights: [2] });
    assert.equal(a.committed(), undefined, 'not committed before the group is');
    assert.equal(store.count('clicks'), 2, 'reads inside see the group\'s writes');
    // A replay inside the group is skipped too.
    b.write({ step: 1, frontier: 'p1', rows: [['/a']], weights: [2] });
  });
  assert.deepEqual([a.committed(), b.committed()], [{ step: 1, frontier: 'p1' }, { step: 1, frontier: 'p1' }]);
  assert.equal(store.count('clicks'), 2);

  // One view's batch fails: the others commit.
  store.group(() => {
    a.write({ step: 2, frontier: 'p2', rows: [[2, 'desk', d('1')]], weights: [1] });
    expectDefinite('store_missing_row', /does not hold/, () => b.write({ step: 2, frontier: 'p2', rows: [['/zzz']], weights: [-1] }));
  });
  assert.deepEqual([a.committed(), b.committed()], [{ step: 2, frontier: 'p2' }, { step: 1, frontier: 'p1' }]);
  assert.equal(store.count('products'), 2);
  assert.equal(store.count('clicks'), 2);

  // The group itself fails: nothing of it is committed.
  assert.throws(() =>
    store.group(() => {
      a.write({ step: 3, frontier: 'p3', rows: [[3, 'rug', d('1')]], weights: [1] });
      b.write({ step: 3, frontier: 'p3', rows: [['/b']], weights: [1] });
      throw new Error('the step loop stopped');
    }),
  /the step loop stopped/);
  assert.deepEqual([a.committed(), b.committed()], [{ step: 2, frontier: 'p2' }, { step: 1, frontier: 'p1' }]);
  assert.deepEqual([store.count('products'), store.count('clicks')], [2, 2]);
  assert.equal(store.get('products', [3]), undefined);
  expectDefinite('store_group', /do not nest/, () => store.group(() => store.group(() => 1)));
  expectDefinite('store_group', /creating view "new" cannot happen inside/, () => store.group(() => store.sink({ name: 'new', columns: columns('x integer') })));
  // And the store carries on.
  store.group(() => b.write({ step: 2, frontier: 'p2', rows: [['/b']], weights: [1] }));
  assert.equal(store.count('clicks'), 3);
  store.close();
});
