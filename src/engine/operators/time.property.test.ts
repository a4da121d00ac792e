/**
 * integrate, differentiate and delay against their stream definitions, alone and feeding (or fed
 * by) relational operators: I(a)[t] = Σ_{s≤t} a[s], D(a)[t] = a[t] − a[t−1], z⁻¹(a)[t] = a[t−1].
 */
import test from 'node:test';
import fc from 'fast-check';
import type { Row } from '../../core/index.ts';
import { assertMatchesReference, changeSteps, keyValue, textValue } from '../reference/change-sequences.ts';

const row: fc.Arbitrary<Row> = fc.tuple(keyValue, textValue);

test('integrate, differentiate and delay match their definitions', () => {
  fc.assert(
    fc.property(changeSteps({ a: row }, { phantoms: true }), (steps) => {
      assertMatchesReference((builder) => {
        const a = builder.input('a', 2);
        builder.output('integrate', a.integrate());
        builder.output('differentiate', a.differentiate());
        builder.output('delay', a.delay());
        builder.output('delay twice', a.delay().delay());
        builder.output('D(I(a))', a.integrate().differentiate());
        builder.output('I(D(a))', a.differentiate().integrate());
        builder.output('I(I(a))', a.integrate().integrate());
      }, steps);
    }),
    { numRuns: 200 },
  );
});

test('time operators composed with relational ones match the reference', () => {
  fc.assert(
    fc.property(changeSteps({ a: row, b: row }), (steps) => {
      assertMatchesReference((builder) => {
        const a = builder.input('a', 2);
        const b = builder.input('b', 2);
        // The integral as a delta stream: distinct sees the running sums added up.
        builder.output('distinct(I(a))', a.integrate().distinct());
        builder.output('a ⋈ z⁻¹(b)', a.join(b.delay(), { kind: 'full', leftKey: [0], rightKey: [0] }));
        builder.output('I(count(a))', a.aggregate([0], [{ kind: 'count' }]).integrate());
        builder.output('z⁻¹(global count)', a.aggregate([], [{ kind: 'count' }]).delay());
        builder.output('D(top-1)', b.topK({ orderBy: [{ column: 1 }], limit: 1 }).differentiate());
        builder.output('top-2 of D(a)', a.differentiate().topK({ orderBy: [{ column: 1 }], limit: 2 }));
      }, steps);
    }),
    { numRuns: 150 },
  );
});
