/**
 * Linear operators (map, filter, flatMap, project, union, negate, minus) against the reference,
 * on random change sequences with NULLs, duplicates and phantom deletes.
 */
import test from 'node:test';
import fc from 'fast-check';
import type { Row } from '../../core/index.ts';
import { assertMatchesReference, changeSteps, keyValue, smallInteger, textValue } from '../reference/change-sequences.ts';

const row: fc.Arbitrary<Row> = fc.tuple(keyValue, textValue, smallInteger);
const runs = { numRuns: 150 };

test('map matches the reference', () => {
  fc.assert(
    fc.property(changeSteps({ a: row }, { phantoms: true }), (steps) => {
      assertMatchesReference((builder) => {
        builder.output('out', builder.input('a', 3).map((r) => [r[1]!, typeof r[2] === 'number' ? r[2] % 2 : null], 2));
      }, steps);
    }),
    runs,
  );
});

test('filter matches the reference', () => {
  fc.assert(
    fc.property(changeSteps({ a: row }, { phantoms: true }), (steps) => {
      assertMatchesReference((builder) => {
        builder.output('out', builder.input('a', 3).filter((r) => r[2] !== null && (r[2] as number) > 0));
      }, steps);
    }),
    runs,
  );
});

test('flatMap matches the reference (zero, one or several rows per row)', () => {
  fc.assert(
    fc.property(changeSteps({ a: row }, { phantoms: true }), (steps) => {
      assertMatchesReference((builder) => {
        const a = builder.input('a', 3);
        builder.output(
          'out',
          a.flatMap((r) => {
            const n = typeof r[2] === 'number' ? Math.abs(r[2]) % 3 : 0;
            return Array.from({ length: n }, (_, i) => [r[1]!, i]);
          }, 2),
        );
      }, steps);
    }),
    runs,
  );
});

test('project matches the reference (dropping, repeating and reordering columns)', () => {
  fc.assert(
    fc.property(changeSteps({ a: row }, { phantoms: true }), (steps) => {
      assertMatchesReference((builder) => {
        const a = builder.input('a', 3);
        builder.output('one', a.project([1]));
        builder.output('shuffled', a.project([2, 0, 0]));
        builder.output('none', a.project([]));
      }, steps);
    }),
    runs,
  );
});

test('union, negate and minus match the reference', () => {
  fc.assert(
    fc.property(changeSteps({ a: row, b: row, c: row }, { phantoms: true }), (steps) => {
      assertMatchesReference((builder) => {
        const a = builder.input('a', 3);
        const b = builder.input('b', 3);
        const c = builder.input('c', 3);
        builder.output('union', a.union(b, c));
        builder.output('self-union', a.union(a));
        builder.output('negate', b.negate());
        builder.output('minus', a.minus(b));
        builder.output('minus-self', c.minus(c));
      }, steps);
    }),
    runs,
  );
});
