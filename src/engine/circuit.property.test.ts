/**
 * Composed circuits against the reference: joins feeding aggregates feeding top-k, outer joins of
 * aggregates, distinct over unions, semi/anti-joins feeding aggregates, and a deep mixed chain.
 * Inputs are well-formed wherever an aggregate sits downstream.
 */
import test from 'node:test';
import fc from 'fast-check';
import { compareValues, Decimal, type Row, type Value } from '../core/index.ts';
import { assertMatchesReference, changeSteps, keyValue, smallInteger, textValue } from './reference/change-sequences.ts';

// orders: (id, customer, amount)   customers: (id, region)
const amount: fc.Arbitrary<Value> = fc.constantFrom<Value>(null, 1, 5, 10, Decimal.parse('2.5'), 2 ** 53 - 1);
const order: fc.Arbitrary<Row> = fc.tuple(fc.integer({ min: 1, max: 4 }), keyValue, amount);
const customer: fc.Arbitrary<Row> = fc.tuple(keyValue, fc.constantFrom<Value>(null, 'north', 'south'));
const runs = { numRuns: 120 };

test('join → aggregate → top-k matches the reference', () => {
  fc.assert(
    fc.property(changeSteps({ orders: order, customers: customer }), (steps) => {
      assertMatchesReference((builder) => {
        const orders = builder.input('orders', 3);
        const customers = builder.input('customers', 2);
        const joined = orders.join(customers, { leftKey: [1], rightKey: [0] });
        const byRegion = joined.aggregate([4], [{ kind: 'count' }, { kind: 'sum', column: 2 }, { kind: 'max', column: 2 }, { kind: 'count_distinct', column: 1 }]);
        builder.output('by region', byRegion);
        builder.output('top region', byRegion.topK({ orderBy: [{ column: 2, descending: true }], limit: 1 }));
        const byCustomer = orders.join(customers, { kind: 'left', leftKey: [1], rightKey: [0] }).aggregate([1, 4], [{ kind: 'sum', column: 2 }, { kind: 'avg', column: 2 }]);
        builder.output('top customers per region', byCustomer.topK({ groupBy: [1], orderBy: [{ column: 2, descending: true, nullsFirst: false }, { column: 0 }], limit: 2 }));
      }, steps);
    }),
    runs,
  );
});

test('outer joins of aggregates match the reference', () => {
  fc.assert(
    fc.property(changeSteps({ orders: order, customers: customer }), (steps) => {
      assertMatchesReference((builder) => {
        const orders = builder.input('orders', 3);
        const customers = builder.input('customers', 2);
        const totals = orders.aggregate([1], [{ kind: 'sum', column: 2 }, { kind: 'count' }]);
        const regions = customers.aggregate([0], [{ kind: 'min', column: 1 }, { kind: 'count' }]);
        builder.output('full', totals.join(regions, { kind: 'full', leftKey: [0], rightKey: [0] }));
        builder.output('left with residual', totals.join(regions, { kind: 'left', leftKey: [0], rightKey: [0], residual: (l, r) => l[2] !== null && r[2] !== null && compareValues(l[2]!, r[2]!) >= 0 }));
        builder.output('right', totals.join(customers, { kind: 'right', leftKey: [0], rightKey: [0] }));
        builder.output('count of full', totals.join(regions, { kind: 'full', leftKey: [0], rightKey: [0] }).aggregate([], [{ kind: 'count' }, { kind: 'count', column: 0 }, { kind: 'count', column: 3 }]));
      }, steps);
    }),
    runs,
  );
});

test('distinct over unions matches the reference', () => {
  const row: fc.Arbitrary<Row> = fc.tuple(keyValue, textValue);
  fc.assert(
    fc.property(changeSteps({ a: row, b: row }, { phantoms: true }), (steps) => {
      assertMatchesReference((builder) => {
        const a = builder.input('a', 2);
        const b = builder.input('b', 2);
        builder.output('UNION', a.union(b).distinct());
        builder.output('UNION of projections', a.project([0]).union(b.project([0])).distinct());
        builder.output('EXCEPT', a.distinct().minus(b.distinct()).distinct());
        builder.output('INTERSECT', a.distinct().semiJoin(b, { leftKey: [0, 1], rightKey: [0, 1] }));
      }, steps);
    }),
    runs,
  );
});

test('distinct over unions feeding an aggregate matches the reference', () => {
  const row: fc.Arbitrary<Row> = fc.tuple(keyValue, textValue);
  fc.assert(
    fc.property(changeSteps({ a: row, b: row }), (steps) => {
      assertMatchesReference((builder) => {
        const a = builder.input('a', 2);
        const b = builder.input('b', 2);
        builder.output('counts', a.union(b).distinct().aggregate([0], [{ kind: 'count' }, { kind: 'string_agg', column: 1, separator: ',' }]));
      }, steps);
    }),
    runs,
  );
});

test('semi- and anti-joins feeding aggregates match the reference', () => {
  fc.assert(
    fc.property(changeSteps({ orders: order, customers: customer }), (steps) => {
      assertMatchesReference((builder) => {
        const orders = builder.input('orders', 3);
        const customers = builder.input('customers', 2);
        const known = orders.semiJoin(customers, { leftKey: [1], rightKey: [0] });
        const unknown = orders.antiJoin(customers, { leftKey: [1], rightKey: [0] });
        builder.output('known per customer', known.aggregate([1], [{ kind: 'count' }, { kind: 'sum', column: 2 }, { kind: 'min', column: 2 }]));
        builder.output('unknown overall', unknown.aggregate([], [{ kind: 'count' }, { kind: 'sum', column: 2 }, { kind: 'array_agg', column: 0 }]));
        const northern = orders.semiJoin(customers, { leftKey: [1], rightKey: [0], residual: (_o, c) => c[1] === 'north' });
        builder.output('northern max', northern.aggregate([], [{ kind: 'max', column: 2 }, { kind: 'count_distinct', column: 1 }]));
        // Customers without orders, counted per region.
        builder.output('idle per region', customers.antiJoin(orders, { leftKey: [0], rightKey: [1] }).aggregate([1], [{ kind: 'count' }]));
      }, steps);
    }),
    runs,
  );
});

test('a deep chain (filter → join → semi-join → aggregate → top-k → join → distinct) matches the reference', () => {
  const tags: fc.Arbitrary<Row> = fc.tuple(fc.integer({ min: 1, max: 4 }), textValue);
  fc.assert(
    fc.property(changeSteps({ orders: order, customers: customer, tags }), (steps) => {
      assertMatchesReference((builder) => {
        const orders = builder.input('orders', 3);
        const customers = builder.input('customers', 2);
        const tagged = builder.input('tags', 2);
        const positive = orders.filter((r) => r[2] !== null);
        const joined = positive.join(customers, { kind: 'left', leftKey: [1], rightKey: [0] });
        const withTags = joined.semiJoin(tagged, { leftKey: [0], rightKey: [0] });
        const perRegion = withTags.aggregate([4], [{ kind: 'count' }, { kind: 'sum', column: 2 }]);
        const top = perRegion.topK({ orderBy: [{ column: 1, descending: true }], limit: 2 });
        const back = top.join(joined, { kind: 'inner', leftKey: [0], rightKey: [4] });
        builder.output('top', top);
        builder.output('regions of top', back.project([0, 3]).distinct());
        builder.output('tag strings', tagged.aggregate([0], [{ kind: 'string_agg', column: 1, separator: '+', orderBy: [{ column: 1, descending: true }] }]).join(orders, { kind: 'right', leftKey: [0], rightKey: [0] }));
        builder.output('count of a count', orders.aggregate([1], [{ kind: 'count' }]).aggregate([1], [{ kind: 'count' }]));
        builder.output('mapped keys', orders.map((r) => [typeof r[2] === 'number' ? r[2] > 4 : null, typeof r[2] === 'number' ? r[2] % 3 : null], 2).aggregate([1], [{ kind: 'count' }, { kind: 'bool_or', column: 0 }]).filter(() => true));
      }, steps);
    }),
    { numRuns: 100 },
  );
});

test('small integers flow through every operator kind at once', () => {
  const row: fc.Arbitrary<Row> = fc.tuple(keyValue, smallInteger);
  fc.assert(
    fc.property(changeSteps({ a: row, b: row }), (steps) => {
      assertMatchesReference((builder) => {
        const a = builder.input('a', 2);
        const b = builder.input('b', 2);
        const both = a.union(b.negate().negate());
        const counted = both.aggregate([0], [{ kind: 'count' }, { kind: 'sum', column: 1 }]);
        builder.output('out', counted.join(a.distinct(), { kind: 'full', leftKey: [0], rightKey: [0] }).topK({ groupBy: [0], orderBy: [{ column: 4 }], limit: 2, offset: 1 }));
      }, steps);
    }),
    runs,
  );
});
