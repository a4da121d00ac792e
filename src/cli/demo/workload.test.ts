import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { open, type Database } from '../../index.ts';
import { batchRowsMax, orderLifecycle, ShopWorkload, shopTables, type OrderStatus, type TableBatch } from './workload.ts';

/** shop.sql without its sinks: the embedded database runs tables and views, not sinks (yet). */
const pipeline = readFileSync(new URL('./shop.sql', import.meta.url), 'utf8').replace(/CREATE\s+SINK\b[^;]*;/gi, '');
const views = [...pipeline.matchAll(/CREATE\s+VIEW\s+(\w+)/gi)].map((match) => match[1]!);

/** The workload's first `rounds` calls of next(eventsPerCall), after initial(). */
function run(seed: number, rounds: number, eventsPerCall: number): TableBatch[][] {
  const shop = new ShopWorkload(seed);
  const calls = [shop.initial()];
  for (let i = 0; i < rounds; i++) calls.push(shop.next(eventsPerCall));
  return calls;
}

function rowsOf(batches: TableBatch[], table: string): Record<string, unknown>[] {
  return batches.filter((batch) => batch.table === table).flatMap((batch) => batch.rows);
}

/** "12.3" / "12.30" / "-4" → cents, exactly. */
function cents(text: unknown): bigint {
  const match = /^(-?)(\d+)(?:\.(\d*))?$/.exec(String(text));
  assert.ok(match, `${String(text)} is a decimal`);
  const fraction = (match[3] ?? '').padEnd(2, '0');
  assert.match(fraction, /^\d\d0*$/, `${String(text)} has at most two significant decimals`);
  const value = BigInt(match[2]!) * 100n + BigInt(fraction.slice(0, 2));
  return match[1] ? -value : value;
}

async function shopDatabase(): Promise<Database> {
  const db = await open();
  await db.execute(pipeline, 'shop.sql');
  return db;
}

describe('ShopWorkload', () => {
  it('is deterministic: the same seed gives the same events, whatever the sizes of the calls', () => {
    assert.deepEqual(run(42, 3, 1500), run(42, 3, 1500));
    assert.notDeepEqual(run(42, 1, 1500), run(43, 1, 1500));
    const inSteps = new ShopWorkload(7);
    const atOnce = new ShopWorkload(7);
    const stepped = [inSteps.next(1), inSteps.next(999), inSteps.next(2000)].flat();
    const whole = atOnce.next(3000);
    for (const table of shopTables) assert.deepEqual(rowsOf(stepped, table), rowsOf(whole, table), table);
  });

  it('gives the catalogue and then events in batches of at most batchRowsMax rows, tables in dependency order', () => {
    const shop = new ShopWorkload(3);
    const initial = shop.initial();
    assert.equal(rowsOf(initial, 'customers').length, 1000);
    assert.equal(rowsOf(initial, 'products').length, 2000);
    for (const call of [initial, shop.next(5000), shop.next(10)]) {
      const order = call.map((batch) => shopTables.indexOf(batch.table as (typeof shopTables)[number]));
      assert.ok(order.every((index, i) => index >= 0 && (i === 0 || index >= order[i - 1]!)), `tables in order: ${call.map((b) => b.table).join(', ')}`);
      for (const batch of call) assert.ok(batch.rows.length > 0 && batch.rows.length <= batchRowsMax);
    }
    const counted = shop.next(777).reduce((sum, batch) => sum + batch.rows.length, 0);
    assert.equal(counted, 777, 'one row per event');
  });

  it('gives rows with exactly their table columns, in values the tables accept', async () => {
    const db = await shopDatabase();
    const columns = new Map<string, string[]>();
    for (const table of shopTables) {
      const [result] = await db.execute(`SELECT * FROM ${table}`);
      columns.set(table, result!.columns!.map((c) => c.name));
    }
    const shop = new ShopWorkload(11);
    for (const call of [shop.initial(), shop.next(4000), shop.next(4000)]) {
      for (const { table, rows } of call) {
        for (const row of rows) {
          assert.deepEqual(Object.keys(row).sort(), [...columns.get(table)!].sort(), `a ${table} row: ${JSON.stringify(row)}`);
          for (const [name, value] of Object.entries(row)) {
            assert.notEqual(value, null, `${table}.${name} is set`);
            if (name === 'price' || name === 'amount') assert.match(String(value), /^\d+\.\d\d$/);
            if (name === 'signed_up' || name === 'placed_at' || name === 'at') assert.equal(new Date(String(value)).toISOString(), value);
          }
        }
        await db.insert(table, rows); // the database checks every value against its column type
      }
    }
    await db.close();
  });

  it('writes product text for search: 15–40 words, with accented words; price changes are whole rows of known products', () => {
    const shop = new ShopWorkload(5);
    const products = new Map(rowsOf(shop.initial(), 'products').map((row) => [row.id, row]));
    for (const product of products.values()) {
      const words = String(product.description).split(/\s+/).length;
      assert.ok(words >= 15 && words <= 40, `${words} words: ${String(product.description)}`);
      assert.ok(String(product.title).length > 0);
    }
    const accented = [...products.values()].filter((p) => /[^\x00-\x7f]/.test(`${String(p.title)} ${String(p.description)}`));
    assert.ok(accented.length > products.size / 10, `${accented.length} products with accented words`);
    assert.ok([...products.values()].some((p) => /crème|café/.test(String(p.description))));
    const changes = rowsOf(shop.next(20_000), 'products');
    assert.ok(changes.length > 50, `${changes.length} price changes`);
    for (const change of changes) {
      const before = products.get(change.id);
      assert.ok(before, `product ${String(change.id)} exists`);
      assert.deepEqual({ ...change, price: before.price }, before, 'only the price changes');
      products.set(change.id, change);
    }
  });

  it('emits status events only for earlier orders, along the lifecycle, in time order', () => {
    const shop = new ShopWorkload(9);
    shop.initial();
    const placedAt = new Map<unknown, string>();
    const latest = new Map<unknown, { status: OrderStatus; at: string }>();
    const seen = new Set<OrderStatus>();
    let orders = 0;
    let events = 0;
    for (let call = 0; call < 10; call++) {
      for (const { table, rows } of shop.next(2000)) {
        for (const row of rows) {
          events++;
          if (table === 'orders') {
            orders++;
            assert.ok(!placedAt.has(row.id), `order ${String(row.id)} is new`);
            placedAt.set(row.id, String(row.placed_at));
          }
          if (table !== 'order_status') continue;
          const status = row.status as OrderStatus;
          const at = String(row.at);
          seen.add(status);
          assert.ok(placedAt.has(row.order_id), `order ${String(row.order_id)} exists before its status event`);
          const before = latest.get(row.order_id);
          if (before) {
            assert.ok(orderLifecycle[before.status].includes(status), `order ${String(row.order_id)}: ${before.status} → ${status}`);
            assert.ok(at > before.at, `order ${String(row.order_id)}: ${status} at ${at} after ${before.status} at ${before.at}`);
          } else {
            assert.equal(status, 'placed', `order ${String(row.order_id)} starts placed`);
            assert.equal(at, placedAt.get(row.order_id));
          }
          latest.set(row.order_id, { status, at });
        }
      }
    }
    assert.deepEqual([...seen].sort(), ['cancelled', 'delivered', 'paid', 'placed', 'shipped']);
    assert.ok(orders > events / 10 && latest.size > orders * 0.9, `${orders} orders, ${latest.size} with a status, of ${events} events`);
  });

  it('feeds shop.sql: every view answers, and the views equal a recomputation', async () => {
    const db = await shopDatabase();
    const shop = new ShopWorkload(21);
    const all: TableBatch[] = [];
    for (const call of [shop.initial(), shop.next(3000), shop.next(3000), shop.next(3000)]) {
      for (const batch of call) {
        await db.settle(await db.insert(batch.table, batch.rows));
        all.push(batch);
      }
    }
    for (const view of views) {
      const [row] = await db.query(`SELECT count(*) AS n FROM ${view}`);
      assert.ok(Number(row!.n) > 0, `${view} has rows`);
    }

    // Keyed tables keep the last row per key; order_status keeps every event.
    const last = (table: string) => new Map(rowsOf(all, table).map((row) => [row.id, row]));
    const customers = last('customers');
    const products = last('products');
    const orders = [...last('orders').values()];

    const perCustomer = new Map<unknown, { orders: number; revenue: bigint }>();
    for (const order of orders) {
      const total = perCustomer.get(order.customer_id) ?? { orders: 0, revenue: 0n };
      total.orders++;
      total.revenue += cents(order.amount);
      perCustomer.set(order.customer_id, total);
    }
    const customerRevenue = await db.query('SELECT customer_id, name, orders, revenue FROM customer_revenue');
    assert.equal(customerRevenue.length, perCustomer.size);
    for (const row of customerRevenue) {
      const expected = perCustomer.get(Number(row.customer_id));
      assert.ok(expected, `customer ${String(row.customer_id)} has orders`);
      assert.equal(Number(row.orders), expected.orders);
      assert.equal(cents(row.revenue), expected.revenue);
      assert.equal(row.name, customers.get(Number(row.customer_id))!.name);
    }

    const perProduct = new Map<number, bigint>();
    for (const order of orders) perProduct.set(Number(order.product_id), (perProduct.get(Number(order.product_id)) ?? 0n) + cents(order.amount));
    const top = [...perProduct].sort(([a, x], [b, y]) => (x === y ? a - b : x > y ? -1 : 1)).slice(0, 10);
    const topProducts = await db.query('SELECT id, title, revenue FROM top_products ORDER BY revenue DESC, id');
    assert.deepEqual(
      topProducts.map((row) => [Number(row.id), String(row.title), cents(row.revenue)]),
      top.map(([id, revenue]) => [id, String(products.get(id)!.title), revenue]),
    );

    const perCategory = new Map<string, bigint>();
    for (const order of orders) {
      const category = String(products.get(Number(order.product_id))!.category);
      perCategory.set(category, (perCategory.get(category) ?? 0n) + cents(order.amount));
    }
    const categoryRevenue = await db.query('SELECT category, revenue FROM category_revenue');
    assert.deepEqual(new Map(categoryRevenue.map((row) => [String(row.category), cents(row.revenue)])), perCategory);

    const latestStatus = new Map<unknown, string>();
    for (const event of rowsOf(all, 'order_status')) latestStatus.set(event.order_id, String(event.status));
    const perStatus = new Map<string, number>();
    for (const status of latestStatus.values()) perStatus.set(status, (perStatus.get(status) ?? 0) + 1);
    const ordersByStatus = await db.query('SELECT status, orders FROM orders_by_status');
    assert.deepEqual(new Map(ordersByStatus.map((row) => [String(row.status), Number(row.orders)])), perStatus);
    await db.close();
  });
});
