/**
 * The view store against an in-memory Z-set integration of the same batches: random batches of
 * inserts, deletes (of present rows, often given in another representation of the same values:
 * 1.5 for 1.50, 30 days for 1 mon), updates of keyed rows, replays of old steps and reopenings;
 * after each batch the stored multiset, counts, filtered reads and pages equal the model's.
 * Also: the numeric sort key orders as the numbers do.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { Decimal, Interval, Json, rowsEqual, Timestamp, valuesEqual, type Row, type Value } from '../../core/index.ts';
import { inputValue, outputValue, resolveType } from '../../sql/index.ts';
import { objectRow } from '../object-row.ts';
import type { SinkBatch, SinkColumn } from '../sink.ts';
import { decimalKey } from './columns.ts';
import { ViewStore } from './view-store.ts';

test('the numeric key orders as the numbers do, and is equal exactly for equal numbers', () => {
  const decimal = fc.tuple(fc.bigInt({ min: -(10n ** 25n), max: 10n ** 25n }), fc.integer({ min: 0, max: 12 })).map(([m, s]) => new Decimal(m, s));
  const small = fc.tuple(fc.integer({ min: -1000, max: 1000 }), fc.integer({ min: 0, max: 4 })).map(([m, s]) => new Decimal(BigInt(m), s));
  const any = fc.oneof(decimal, small);
  fc.assert(
    fc.property(any, any, (a, b) => {
      const x = decimalKey(a);
      const y = decimalKey(b);
      assert.equal(Math.sign(x < y ? -1 : x > y ? 1 : 0), Math.sign(a.compare(b)), `${a} vs ${b}: ${x} vs ${y}`);
    }),
    { numRuns: 3000 },
  );
});

const column = (name: string, type: string, modifiers: number[] = []): SinkColumn => ({ name, type: resolveType(type, modifiers) });

// k is the key of the keyed variant.
const COLUMNS: SinkColumn[] = [
  column('k', 'integer'),
  column('big', 'bigint'),
  column('n', 'numeric'),
  column('r', 'double precision'),
  column('t', 'text'),
  column('b', 'boolean'),
  column('at', 'timestamptz'),
  column('iv', 'interval'),
  column('j', 'jsonb'),
  column('by', 'bytea'),
];

const orNull = <T extends Value>(arbitrary: fc.Arbitrary<T>) => fc.oneof({ weight: 5, arbitrary }, { weight: 1, arbitrary: fc.constant(null) });
const valueArbitraries: Array<fc.Arbitrary<Value>> = [
  fc.integer({ min: 0, max: 6 }),
  orNull(fc.oneof(fc.integer({ min: -2, max: 2 }), fc.constantFrom(2n ** 60n, -(2n ** 62n), 9007199254740993n))),
  orNull(fc.tuple(fc.integer({ min: -30, max: 30 }), fc.integer({ min: 0, max: 2 })).map(([m, s]) => new Decimal(BigInt(m), s))),
  orNull(fc.constantFrom(0, -0, 1.5, -2.25, NaN, Infinity, -Infinity, 1e300, 5e-324)),
  orNull(fc.constantFrom('', 'a', 'A', 'é', '😀', 'x y', "it's", '%_')),
  orNull(fc.boolean()),
  orNull(fc.integer({ min: -3, max: 3 }).map((s) => new Timestamp('timestamptz', BigInt(s) * 1_500_000n))),
  orNull(fc.tuple(fc.integer({ min: 0, max: 1 }), fc.integer({ min: 0, max: 31 })).map(([m, dd]) => new Interval(m, dd, 0n))),
  orNull(fc.constantFrom<unknown>({ a: 1 }, { b: [1, 2], a: 'x' }, [], 'text', 3, null).map((v) => new Json(v))),
  orNull(fc.uint8Array({ maxLength: 3 })),
];
const rowArbitrary: fc.Arbitrary<Row> = fc.tuple(...valueArbitraries);

/** An equal row in another representation, as the engine may give a delete. */
function variant(row: Row): Row {
  return row.map((value) => {
    if (value instanceof Decimal) return new Decimal(value.mantissa * 10n, value.scale + 1);
    if (value instanceof Interval) return new Interval(0, value.days + 30 * value.months, value.micros);
    if (typeof value === 'number' && Number.isSafeInteger(value) && !Object.is(value, -0)) return BigInt(value);
    if (value instanceof Json) return new Json(JSON.parse(JSON.stringify(value.value)));
    return value;
  });
}

type Operation =
  | { kind: 'insert'; row: Row; copies: number }
  | { kind: 'delete'; pick: number; copies: number; variant: boolean }
  | { kind: 'replay'; back: number }
  | { kind: 'reopen' };

const operation: fc.Arbitrary<Operation> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('insert' as const), row: rowArbitrary, copies: fc.integer({ min: 1, max: 3 }) }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('delete' as const), pick: fc.nat(100), copies: fc.integer({ min: 1, max: 3 }), variant: fc.boolean() }) },
);
const step = fc.oneof(
  { weight: 10, arbitrary: fc.array(operation, { maxLength: 12 }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('replay' as const), back: fc.nat(5) }).map((o) => [o as Operation]) },
  { weight: 1, arbitrary: fc.constant([{ kind: 'reopen' } as Operation]) },
);

interface Entry {
  row: Row;
  count: number;
}

/** Adds `weight` copies of `row` to a consolidated multiset (an existing entry keeps its representation). */
function add(entries: Entry[], row: Row, weight: number): void {
  const entry = entries.find((e) => rowsEqual(e.row, row));
  if (entry) {
    entry.count += weight;
    if (entry.count === 0) entries.splice(entries.indexOf(entry), 1);
  } else if (weight !== 0) entries.push({ row, count: weight });
}

function objects(entries: readonly Entry[]): string[] {
  return entries.flatMap((e) => Array.from({ length: e.count }, () => JSON.stringify(objectRow(e.row, COLUMNS)))).sort();
}

function check(store: ViewStore, model: readonly Entry[], random: () => number): void {
  assert.equal(store.count('v'), model.reduce((sum, e) => sum + e.count, 0));
  // The stored multiset equals the model's (values compared as SQL compares them).
  const stored = store.entries('v');
  assert.equal(stored.length, model.length);
  for (const entry of model) {
    const match = stored.find((s) => rowsEqual(s.row, entry.row));
    assert.ok(match, `missing ${JSON.stringify(objectRow(entry.row, COLUMNS))}`);
    assert.equal(match.count, entry.count);
  }
  // A read gives every copy, as the model's rows print; pages concatenate to it.
  const all = store.read('v', { total: true });
  assert.deepEqual(all.rows.map((r) => JSON.stringify(r)).sort(), objects(model));
  assert.equal(all.total, all.rows.length);
  const size = 1 + Math.floor(random() * 4);
  const pages: unknown[] = [];
  for (let offset = 0; offset < all.rows.length + size; offset += size) pages.push(...store.read('v', { limit: size, offset }).rows);
  assert.deepEqual(pages, all.rows);
  // A filter on a column, with a value of a present row as text, selects the rows equal to it.
  if (model.length > 0) {
    const row = model[Math.floor(random() * model.length)]!.row;
    const index = Math.floor(random() * COLUMNS.length);
    const value = row[index]!;
    if (value !== null) {
      const { name, type } = COLUMNS[index]!;
      const text = outputValue(value, type);
      const parsed = inputValue(text, type);
      const expected = model.filter((e) => e.row[index] !== null && valuesEqual(e.row[index]!, parsed));
      const result = store.read('v', { filters: { [name]: text }, total: true });
      assert.deepEqual(result.rows.map((r) => JSON.stringify(r)).sort(), objects(expected), `filter ${name}=${text}`);
      assert.equal(result.total, result.rows.length);
    }
  }
}

function run(keyed: boolean, steps: ReadonlyArray<readonly Operation[]>, seed: number): void {
  // On tmpfs when there is one: the cases reopen files hundreds of times, and syncs are not what is tested.
  const folder = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'sluice-store-property-'));
  const file = path.join(folder, 'views.sqlite');
  let random = seed;
  const next = () => ((random = (Math.imul(random, 1103515245) + 12345) >>> 0) / 2 ** 32);
  let store = ViewStore.open(file, { durability: 'normal' });
  const target = { name: 'v', columns: COLUMNS, ...(keyed ? { key: [0] } : {}) };
  let sink = store.sink(target);
  const model: Entry[] = [];
  const written: SinkBatch[] = [];
  try {
    for (const operations of steps) {
      const first = operations[0];
      if (first?.kind === 'reopen') {
        store.close();
        store = ViewStore.open(file, { durability: 'normal' });
        sink = store.sink(target);
        assert.deepEqual(sink.committed(), written.length === 0 ? undefined : { step: written.length, frontier: `f${written.length}` });
        check(store, model, next);
        continue;
      }
      if (first?.kind === 'replay') {
        if (written.length === 0) continue;
        sink.write(written[Math.max(0, written.length - 1 - first.back)]!);
        check(store, model, next);
        continue;
      }
      // Build the step's consolidated delta against the model.
      const delta: Entry[] = [];
      const after = model.map((e) => ({ row: e.row, count: e.count }));
      for (const op of operations) {
        if (op.kind === 'insert') {
          if (keyed) {
            // A keyed view holds one row per key: an insert of a present key is an update.
            const old = after.find((e) => valuesEqual(e.row[0]!, op.row[0]!));
            if (old) {
              add(delta, old.row, -old.count);
              add(after, old.row, -old.count);
            }
            add(delta, op.row, 1);
            add(after, op.row, 1);
          } else {
            add(delta, op.row, op.copies);
            add(after, op.row, op.copies);
          }
        } else if (op.kind === 'delete' && after.length > 0) {
          const entry = after[op.pick % after.length]!;
          const copies = Math.min(op.copies, entry.count);
          const row = op.variant ? variant(entry.row) : entry.row;
          add(delta, row, -copies);
          add(after, entry.row, -copies);
        }
      }
      // Deletes first, as the runtime gives them.
      delta.sort((a, b) => a.count - b.count);
      const batch: SinkBatch = { step: written.length + 1, frontier: `f${written.length + 1}`, rows: delta.map((e) => e.row), weights: delta.map((e) => e.count) };
      // Half the cases write through group() (as the runtime writes a step's views), half directly.
      if (seed % 2 === 0) store.group(() => sink.write(batch));
      else sink.write(batch);
      written.push(batch);
      for (const e of delta) add(model, e.row, e.count);
      assert.deepEqual(sink.committed(), { step: batch.step, frontier: batch.frontier });
      check(store, model, next);
    }
  } finally {
    store.close();
    fs.rmSync(folder, { recursive: true, force: true });
  }
}

for (const keyed of [false, true]) {
  test(`random batches on ${keyed ? 'a keyed' : 'an unkeyed'} view: the store equals the Z-set integration of the batches`, () => {
    fc.assert(
      fc.property(fc.array(step, { minLength: 1, maxLength: 12 }), fc.nat(), (steps, seed) => run(keyed, steps, seed)),
      { numRuns: 150 },
    );
  });
}
