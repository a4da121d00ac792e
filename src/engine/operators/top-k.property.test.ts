/**
 * Top-k (ORDER BY … LIMIT … OFFSET per group) against the reference: with and without groups,
 * ascending and descending keys, NULLs first and last, duplicate rows counted by weight, and
 * phantom deletes (only present rows take part).
 */
import test from 'node:test';
import fc from 'fast-check';
import type { Row, Value } from '../../core/index.ts';
import { assertMatchesReference, changeSteps, keyValue, mixedValue, smallInteger, textValue } from '../reference/change-sequences.ts';
import type { SortKey } from '../spec.ts';

const row: fc.Arbitrary<Row> = fc.tuple(keyValue, smallInteger, textValue);
const sortKey: fc.Arbitrary<SortKey> = fc.record({ column: fc.constantFrom(0, 1, 2), descending: fc.option(fc.boolean(), { nil: undefined }), nullsFirst: fc.option(fc.boolean(), { nil: undefined }) }, { requiredKeys: ['column'] });
const options = fc.record({
  groupBy: fc.constantFrom<number[]>([], [0], [2], [0, 2]),
  orderBy: fc.array(sortKey, { maxLength: 3 }),
  limit: fc.integer({ min: 0, max: 4 }),
  offset: fc.integer({ min: 0, max: 3 }),
});

for (const phantoms of [false, true]) {
  test(`top-k with random groups, keys, limits and offsets matches the reference${phantoms ? ' (with phantom deletes)' : ''}`, () => {
    fc.assert(
      fc.property(changeSteps({ a: row }, { phantoms }), options, (steps, { groupBy, orderBy, limit, offset }) => {
        assertMatchesReference((builder) => {
          builder.output('out', builder.input('a', 3).topK({ groupBy, orderBy, limit, offset }));
        }, steps);
      }),
      { numRuns: 250 },
    );
  });
}

test('top-1 per group by a descending key with NULLs first, and a large limit, match the reference', () => {
  fc.assert(
    fc.property(changeSteps({ a: row }), (steps) => {
      assertMatchesReference((builder) => {
        const a = builder.input('a', 3);
        builder.output('top1', a.topK({ groupBy: [0], orderBy: [{ column: 1, descending: true, nullsFirst: true }], limit: 1 }));
        builder.output('all', a.topK({ orderBy: [{ column: 2 }], limit: 1000 }));
        builder.output('skip-all', a.topK({ orderBy: [{ column: 2 }], limit: 2, offset: 1000 }));
      }, steps);
    }),
    { numRuns: 150 },
  );
});

test('top-k ties on the sort keys are broken by the whole row', () => {
  const tied: fc.Arbitrary<Row> = fc.tuple(fc.constant<Value>(1), fc.constantFrom<Value>(null, 'a', 'b', 'c', 'd'));
  fc.assert(
    fc.property(changeSteps({ a: tied }), fc.integer({ min: 0, max: 2 }), (steps, offset) => {
      assertMatchesReference((builder) => {
        builder.output('out', builder.input('a', 2).topK({ orderBy: [{ column: 0 }], limit: 2, offset }));
      }, steps);
    }),
    { numRuns: 150 },
  );
});

test('top-k over groups and sort keys of mixed kinds matches the reference', () => {
  fc.assert(
    fc.property(changeSteps({ a: fc.tuple(mixedValue, mixedValue) }, { phantoms: true }), fc.boolean(), (steps, descending) => {
      assertMatchesReference((builder) => {
        const a = builder.input('a', 2);
        builder.output('grouped', a.topK({ groupBy: [0], orderBy: [{ column: 1, descending }], limit: 2 }));
        builder.output('whole', a.topK({ orderBy: [{ column: 1, descending }], limit: 3, offset: 1 }));
      }, steps);
    }),
    { numRuns: 150 },
  );
});
