/** distinct against the reference: rows present (weight > 0) once, with duplicates and phantom deletes. */
import test from 'node:test';
import fc from 'fast-check';
import type { Row } from '../../core/index.ts';
import { assertMatchesReference, changeSteps, keyValue, mixedValue, textValue } from '../reference/change-sequences.ts';

const row: fc.Arbitrary<Row> = fc.tuple(keyValue, textValue);

test('distinct matches the reference', () => {
  fc.assert(
    fc.property(changeSteps({ a: row }, { phantoms: true }), (steps) => {
      assertMatchesReference((builder) => {
        builder.output('out', builder.input('a', 2).distinct());
      }, steps);
    }),
    { numRuns: 200 },
  );
});

test('distinct of a projection (many rows collapse to one) matches the reference', () => {
  fc.assert(
    fc.property(changeSteps({ a: row }, { phantoms: true }), (steps) => {
      assertMatchesReference((builder) => {
        builder.output('out', builder.input('a', 2).project([0]).distinct());
      }, steps);
    }),
    { numRuns: 200 },
  );
});

test('distinct of values of mixed kinds (equal across representations) matches the reference', () => {
  fc.assert(
    fc.property(changeSteps({ a: fc.tuple(mixedValue, mixedValue) }, { phantoms: true }), (steps) => {
      assertMatchesReference((builder) => {
        builder.output('out', builder.input('a', 2).distinct());
      }, steps);
    }),
    { numRuns: 150 },
  );
});
