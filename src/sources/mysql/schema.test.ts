/**
 * MySQL values read without a text round trip (integers, doubles, DECIMALs of their column's
 * scale) equal what the general path (inputValue on the printed value) gives, and what it refuses
 * is still refused.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { Decimal } from '../../core/index.ts';
import { inputValue, type SqlType } from '../../sql/index.ts';
import { mysqlValue, type MysqlColumn } from './schema.ts';

const column = (type: SqlType): MysqlColumn => ({ name: 'c', type, key: false, native: 'test' });

function general(text: string, type: SqlType): unknown {
  try {
    return inputValue(text, type);
  } catch {
    return 'refused';
  }
}

function fast(raw: string | number | bigint | Decimal, type: SqlType): unknown {
  try {
    return mysqlValue(raw, column(type), 't');
  } catch {
    return 'refused';
  }
}

test('DECIMAL text read directly equals the general path, for every precision and scale', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 65 }), fc.integer({ min: 0, max: 30 }), fc.oneof(fc.bigInt({ min: -(10n ** 40n), max: 10n ** 40n }), fc.bigInt({ min: -100000n, max: 100000n })), fc.integer({ min: 0, max: 30 }), fc.boolean(), (precision, scaleWanted, mantissa, otherScale, sameScale) => {
      const scale = Math.min(scaleWanted, precision);
      // Mostly the column's own scale (what the binlog gives), sometimes another.
      const textScale = sameScale ? scale : otherScale;
      const type: SqlType = { kind: 'numeric', modifiers: [precision, scale] };
      const digits = (mantissa < 0n ? -mantissa : mantissa).toString().padStart(textScale + 1, '0');
      const text = `${mantissa < 0n ? '-' : ''}${textScale > 0 ? `${digits.slice(0, -textScale)}.${digits.slice(-textScale)}` : digits}`;
      assert.deepEqual(fast(text, type), general(text, type), `${text} as numeric(${precision},${scale})`);
      // As the binlog gives it: a Decimal of the column's scale.
      assert.deepEqual(fast(Decimal.parse(text), type), general(text, type), `Decimal ${text} as numeric(${precision},${scale})`);
    }),
    { numRuns: 3000 },
  );
});

test('integers and doubles read directly equal the general path, out-of-range ones are still refused', () => {
  for (const kind of ['smallint', 'integer', 'bigint', 'real', 'double'] as const) {
    const type: SqlType = { kind, modifiers: [] };
    fc.assert(
      fc.property(fc.oneof(fc.integer(), fc.integer({ min: -40000, max: 40000 }), fc.maxSafeInteger(), fc.double({ noNaN: true, noDefaultInfinity: true })), (value) => {
        const expected = general(String(value), type);
        assert.deepEqual(fast(value, type), expected, `${value} as ${kind}`);
        if (Number.isSafeInteger(value)) assert.deepEqual(fast(BigInt(value), type), expected, `${value}n as ${kind}`);
      }),
      { numRuns: 2000 },
    );
  }
  // 64-bit integers as the binlog gives them (bigint), at and beyond bigint's ends.
  const bigint: SqlType = { kind: 'bigint', modifiers: [] };
  for (const value of [2n ** 63n - 1n, -(2n ** 63n), 2n ** 63n, 2n ** 64n - 1n, 2n ** 53n + 1n]) assert.deepEqual(fast(value, bigint), general(String(value), bigint), `${value}n`);
});
