/**
 * Equi-joins (inner, left, right, full; with and without a residual predicate; one- and
 * two-column keys) against the reference, with NULL keys, duplicates and phantom deletes.
 */
import test from 'node:test';
import fc from 'fast-check';
import { compareValues, type Row } from '../../core/index.ts';
import { assertMatchesReference, changeSteps, keyValue, mixedValue, smallInteger, textValue } from '../reference/change-sequences.ts';
import type { JoinKind } from '../spec.ts';

// left: (key, key2, amount)   right: (key, key2, label, limit)
const left: fc.Arbitrary<Row> = fc.tuple(keyValue, fc.constantFrom(null, 'x', 'y'), smallInteger);
const right: fc.Arbitrary<Row> = fc.tuple(keyValue, fc.constantFrom(null, 'x', 'y'), textValue, smallInteger);

/** A match also needs left.amount ≤ right.limit (false when either is NULL, as in SQL). */
const residual = (l: Row, r: Row) => l[2] !== null && r[3] !== null && compareValues(l[2]!, r[3]!) <= 0;

for (const kind of ['inner', 'left', 'right', 'full'] as JoinKind[]) {
  for (const withResidual of [false, true]) {
    const name = `${kind} join${withResidual ? ' with a residual' : ''}`;
    test(`${name} on one key column matches the reference`, () => {
      fc.assert(
        fc.property(changeSteps({ l: left, r: right }, { phantoms: true }), (steps) => {
          assertMatchesReference((builder) => {
            const l = builder.input('l', 3);
            const r = builder.input('r', 4);
            builder.output('out', l.join(r, { kind, leftKey: [0], rightKey: [0], ...(withResidual ? { residual } : {}) }));
          }, steps);
        }),
        { numRuns: 120 },
      );
    });
    test(`${name} on two key columns matches the reference`, () => {
      fc.assert(
        fc.property(changeSteps({ l: left, r: right }, { phantoms: true }), (steps) => {
          assertMatchesReference((builder) => {
            const l = builder.input('l', 3);
            const r = builder.input('r', 4);
            builder.output('out', l.join(r, { kind, leftKey: [0, 1], rightKey: [0, 1], ...(withResidual ? { residual } : {}) }));
          }, steps);
        }),
        { numRuns: 80 },
      );
    });
  }
}

test('a self-join (both sides the same stream) and a join on no columns (a cross product) match the reference', () => {
  fc.assert(
    fc.property(changeSteps({ l: left, r: right }, { phantoms: true, maxChangesPerStep: 3 }), (steps) => {
      assertMatchesReference((builder) => {
        const l = builder.input('l', 3);
        const r = builder.input('r', 4);
        builder.output('self', l.join(l, { kind: 'full', leftKey: [0], rightKey: [0] }));
        builder.output('cross', l.join(r, { kind: 'left', leftKey: [], rightKey: [] }));
      }, steps);
    }),
    { numRuns: 100 },
  );
});

test('joins on keys of mixed kinds (equal across representations) match the reference', () => {
  const row: fc.Arbitrary<Row> = fc.tuple(mixedValue, textValue);
  fc.assert(
    fc.property(changeSteps({ l: row, r: row }, { phantoms: true }), (steps) => {
      assertMatchesReference((builder) => {
        const l = builder.input('l', 2);
        const r = builder.input('r', 2);
        builder.output('inner', l.join(r, { leftKey: [0], rightKey: [0] }));
        builder.output('full', l.join(r, { kind: 'full', leftKey: [0], rightKey: [0] }));
      }, steps);
    }),
    { numRuns: 120 },
  );
});
