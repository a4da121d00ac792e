/**
 * Properties of values: equality, hashing and order agree, the order is total, and the codec
 * round-trips every kind.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import fc from 'fast-check';
import { ByteReader, ByteWriter } from './value-codec.ts';
import { compareRows, compareValues, Decimal, hashRow, hashValue, Interval, Json, rowsEqual, Timestamp, valuesEqual, type Value } from './value.ts';

const scalar: fc.Arbitrary<Value> = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.integer({ min: -5, max: 5 }),
  fc.integer(),
  fc.maxSafeInteger(),
  fc.double(),
  fc.constantFrom(0, -0, NaN, Infinity, -Infinity, 1.5, 2 ** 60, 5e9),
  fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }),
  fc.constantFrom(5n, 2n ** 60n, -(2n ** 53n)),
  fc.string({ maxLength: 6 }),
  fc.uint8Array({ maxLength: 4 }),
  fc.tuple(fc.bigInt({ min: -100000n, max: 100000n }), fc.integer({ min: 0, max: 4 })).map(([mantissa, scale]) => new Decimal(mantissa, scale)),
  fc.tuple(fc.constantFrom('date', 'timestamp', 'timestamptz' as const), fc.bigInt({ min: -(2n ** 62n), max: 2n ** 62n })).map(([kind, micros]) => new Timestamp(kind, micros)),
  fc.jsonValue({ maxDepth: 2 }).map((value) => new Json(value)),
  // Small ranges so that '1 mon' = '30 days'-style equalities between different fields occur.
  fc.tuple(fc.integer({ min: -2, max: 2 }), fc.integer({ min: -60, max: 60 }), fc.constantFrom(0n, 1n, -86_400_000_000n, 3_600_000_000n)).map(([months, days, micros]) => new Interval(months, days, micros)),
);
const value: fc.Arbitrary<Value> = fc.oneof({ weight: 6, arbitrary: scalar }, { weight: 1, arbitrary: fc.array(scalar, { maxLength: 3 }) });

test('equal values hash alike and compare 0; unequal values never compare 0', () => {
  fc.assert(
    fc.property(value, value, (a, b) => {
      const equal = valuesEqual(a, b);
      assert.equal(valuesEqual(b, a), equal, 'equality is symmetric');
      if (equal) assert.equal(hashValue(a), hashValue(b), 'equal values hash alike');
      assert.equal(compareValues(a, b) === 0, equal, `compare ${String(compareValues(a, b))} vs equal ${equal}`);
      assert.equal(Math.sign(compareValues(a, b)) || 0, -Math.sign(compareValues(b, a)) || 0, 'order is antisymmetric');
    }),
    { numRuns: 3000 },
  );
});

test('the order is transitive (checked by sorting and verifying adjacent pairs)', () => {
  fc.assert(
    fc.property(fc.array(value, { maxLength: 30 }), (values) => {
      const sorted = [...values].sort(compareValues);
      for (let i = 0; i + 1 < sorted.length; i++) for (let j = i + 1; j < sorted.length; j++) assert.ok(compareValues(sorted[i]!, sorted[j]!) <= 0);
    }),
    { numRuns: 500 },
  );
});

test('numeric kinds meet on integers, and NULL sorts last', () => {
  assert.ok(valuesEqual(5, 5n));
  assert.ok(valuesEqual(5, new Decimal(500n, 2)));
  assert.ok(valuesEqual(2 ** 60, 2n ** 60n));
  assert.equal(hashValue(2 ** 60), hashValue(2n ** 60n));
  assert.equal(hashValue(5), hashValue(Decimal.parse('5.00')));
  assert.ok(valuesEqual(Decimal.parse('2.50'), Decimal.parse('2.5')));
  assert.equal(Decimal.parse('2.50').toString(), '2.50', 'a decimal keeps its display scale');
  assert.ok(!valuesEqual(1.5, Decimal.parse('1.5')), 'a fractional float is not a decimal');
  assert.ok(compareValues(1.5, Decimal.parse('1.6')) < 0);
  assert.ok(valuesEqual(NaN, NaN) && compareValues(NaN, Infinity) > 0);
  assert.ok(valuesEqual(-0, 0) && hashValue(-0) === hashValue(0));
  assert.ok(compareValues(null, 'z') > 0 && compareValues(null, 10) > 0);
  assert.ok(compareRows([1, null], [1, 2]) > 0);
  assert.ok(rowsEqual([new Json({ b: 1, a: [1, 2] })], [Json.parse('{"a":[1,2],"b":1}')]));
  assert.equal(hashRow([1, 'a']) === hashRow(['a', 1]), false);
});

test('decimals parse, add and divide exactly with half-away-from-zero rounding', () => {
  assert.equal(Decimal.parse('-0.50').toString(), '-0.50');
  assert.equal(Decimal.parse('1e3').toString(), '1000');
  assert.equal(Decimal.parse('+.5').add(Decimal.parse('2.25')).toString(), '2.75');
  assert.equal(Decimal.parse('10').divide(3n, 4).toString(), '3.3333');
  assert.equal(Decimal.parse('2').divide(3n, 2).toString(), '0.67');
  assert.equal(Decimal.parse('-2').divide(3n, 2).toString(), '-0.67');
  assert.equal(Decimal.parse('1.25').divide(2n, 2).toString(), '0.63');
  assert.throws(() => Decimal.parse('1.2.3'), /not a decimal/);
});

test('the codec round-trips every kind of value and keeps a decimal scale', () => {
  fc.assert(
    fc.property(fc.array(value, { maxLength: 8 }), (row) => {
      const writer = new ByteWriter(16);
      writer.row(row);
      writer.signed(-12345);
      writer.string('é'.repeat(100));
      const reader = new ByteReader(writer.finish());
      const back = reader.row();
      assert.ok(rowsEqual(back, row), 'the row comes back equal');
      for (let i = 0; i < row.length; i++) if (row[i] instanceof Decimal) assert.equal(String(back[i]), String(row[i]));
      assert.equal(reader.signed(), -12345);
      assert.equal(reader.string(), 'é'.repeat(100));
      assert.ok(reader.done);
    }),
    { numRuns: 1000 },
  );
});

test('a truncated encoding is refused, never read past its end', () => {
  const writer = new ByteWriter();
  writer.row(['hello', 12345678901234567890n, new Decimal(5n, 1)]);
  const bytes = writer.finish();
  for (let cut = 0; cut < bytes.length; cut++) assert.throws(() => new ByteReader(bytes.subarray(0, cut)).row(), RangeError);
});
