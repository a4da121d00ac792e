/**
 * The circuit's own rules: input validation with clear errors, and a step that fails midway
 * stopping the circuit rather than letting it continue from half-updated state.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import { CircuitBuilder } from './circuit.ts';
import { ZSet } from './zset.ts';

test('unknown inputs, wrong column counts and bad columns are refused with what to fix', () => {
  const builder = new CircuitBuilder();
  const orders = builder.input('orders', 3);
  assert.throws(() => orders.project([3]), /project: column 3 does not exist; the stream has 3 columns \(0–2\)/);
  assert.throws(() => orders.join(builder.input('customers', 2), { leftKey: [1], rightKey: [0, 1] }), /as many left key columns as right ones/);
  assert.throws(() => orders.topK({ orderBy: [{ column: 2 }], limit: -1 }), /LIMIT must be a non-negative integer/);
  builder.output('totals', orders.aggregate([1], [{ kind: 'sum', column: 2 }]));
  const circuit = builder.build();
  assert.throws(() => builder.input('late', 1), /already built/);
  assert.throws(() => circuit.step({ order: ZSet.inserts([[1, 2, 3]]) }), (error: Error & { hint?: string }) => /no input named "order"/.test(error.message) && /orders, customers/.test(error.hint ?? ''));
  assert.throws(() => circuit.step({ orders: ZSet.inserts([[1, 2]]) }), /input "orders": row 0 has 2 columns, the input has 3/);
  // Refused inputs change nothing: the circuit still works.
  const { totals } = circuit.step({ orders: ZSet.inserts([[1, 7, 5]]) });
  assert.deepEqual([...totals!.entries()], [[[7, 5], 1]]);
});

test('a step that fails midway stops the circuit with an error naming the cause', () => {
  const builder = new CircuitBuilder();
  const orders = builder.input('orders', 3);
  builder.output('totals', orders.aggregate([1], [{ kind: 'sum', column: 2 }]));
  const circuit = builder.build();
  circuit.step({ orders: ZSet.inserts([[1, 7, 5]]) });
  assert.throws(() => circuit.step({ orders: ZSet.inserts([[2, 7, 'five']]) }), /sum needs numbers, not string/);
  assert.throws(() => circuit.step({ orders: ZSet.inserts([[3, 7, 1]]) }), (error: Error & { code?: string; hint?: string }) => error.code === 'engine.failed' && /stopped at step 2: sum needs numbers/.test(error.message) && /restore the last checkpoint/.test(error.hint ?? ''));
});

test('an output delta lists its deletes before its inserts, so keyed consumers apply updates safely', () => {
  const builder = new CircuitBuilder();
  const orders = builder.input('orders', 3);
  // Revenue per product, top 3: each order moves a product's row within the window.
  const revenue = orders.aggregate([1], [{ kind: 'sum', column: 2 }]);
  builder.output('top', revenue.topK({ orderBy: [{ column: 1, descending: true }], limit: 3 }));
  const circuit = builder.build();
  const products = ['lamp', 'desk', 'mug', 'rug', 'clock'];
  circuit.step({ orders: ZSet.inserts(products.map((product, i) => [i, product, 10 * (5 - i)])) });
  // The leader keeps growing: its row moves up within the window (the new row sorts before the old).
  for (let step = 0; step < 20; step++) {
    const { top } = circuit.step({ orders: ZSet.inserts([[100 + step, 'lamp', 1 + (step % 5)]]) });
    assert.deepEqual(top!.weights, [-1, 1], 'one product row replaced, its delete first');
  }
});
