/**
 * Semi-joins (EXISTS) and anti-joins (NOT EXISTS), with and without a residual predicate, against
 * the reference: NULL-keyed left rows pass the anti-join and never the semi-join.
 */
import test from 'node:test';
import fc from 'fast-check';
import { compareValues, type Row } from '../../core/index.ts';
import { assertMatchesReference, changeSteps, keyValue, mixedValue, smallInteger, textValue } from '../reference/change-sequences.ts';

const left: fc.Arbitrary<Row> = fc.tuple(keyValue, textValue, smallInteger);
const right: fc.Arbitrary<Row> = fc.tuple(keyValue, smallInteger);
const residual = (l: Row, r: Row) => l[2] !== null && r[1] !== null && compareValues(l[2]!, r[1]!) < 0;

for (const kind of ['semiJoin', 'antiJoin'] as const) {
  for (const withResidual of [false, true]) {
    test(`${kind}${withResidual ? ' with a residual' : ''} matches the reference`, () => {
      fc.assert(
        fc.property(changeSteps({ l: left, r: right }, { phantoms: true }), (steps) => {
          assertMatchesReference((builder) => {
            const l = builder.input('l', 3);
            const r = builder.input('r', 2);
            builder.output('out', l[kind](r, { leftKey: [0], rightKey: [0], ...(withResidual ? { residual } : {}) }));
          }, steps);
        }),
        { numRuns: 150 },
      );
    });
  }
}

test('semi- and anti-join on two key columns match the reference', () => {
  fc.assert(
    fc.property(changeSteps({ l: left, r: right }, { phantoms: true }), (steps) => {
      assertMatchesReference((builder) => {
        const l = builder.input('l', 3);
        const r = builder.input('r', 2);
        builder.output('semi', l.semiJoin(r, { leftKey: [0, 2], rightKey: [0, 1] }));
        builder.output('anti', l.antiJoin(r, { leftKey: [0, 2], rightKey: [0, 1] }));
      }, steps);
    }),
    { numRuns: 120 },
  );
});

test('semi- and anti-joins on keys of mixed kinds match the reference', () => {
  const row: fc.Arbitrary<Row> = fc.tuple(mixedValue, textValue);
  fc.assert(
    fc.property(changeSteps({ l: row, r: row }, { phantoms: true }), (steps) => {
      assertMatchesReference((builder) => {
        const l = builder.input('l', 2);
        const r = builder.input('r', 2);
        builder.output('semi', l.semiJoin(r, { leftKey: [0], rightKey: [0] }));
        builder.output('anti', l.antiJoin(r, { leftKey: [0], rightKey: [0] }));
      }, steps);
    }),
    { numRuns: 120 },
  );
});
