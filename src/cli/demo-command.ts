/**
 * `sluice demo` (what `npm start` runs). Until the pipeline runtime lands, the demo shows the
 * foundation: a live online-shop workload (orders and order status events) appended to the
 * embedded log by several producers, read back by followers that feed an incremental view
 * (revenue per product, top 3), with a one-line live summary.
 */
import path from 'node:path';
import { Decimal, type Row } from '../core/index.ts';
import { CircuitBuilder, ZSet } from '../engine/index.ts';
import { FileLog } from '../log/index.ts';
import { dataOption, parseCommand, wholeNumber } from './arguments.ts';
import { logFolder } from './log-command.ts';

export async function demoCommand(argv: string[]): Promise<number> {
  const { values } = parseCommand(argv, { ...dataOption, seconds: { type: 'string' }, rate: { type: 'string' } });
  const seconds = wholeNumber('seconds', values.seconds, 0);
  const rate = wholeNumber('rate', values.rate, 2000, 1);
  const log = await FileLog.open(logFolder(values.data));
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  if (seconds > 0) setTimeout(stop, seconds * 1000).unref();
  try {
    // Small segments and a size cap, so a demo left running does not fill the disk.
    const demoTopic = { partitions: 4, segmentBytes: 8 * 1024 * 1024, retentionBytes: 64 * 1024 * 1024 };
    const existing = await log.topics();
    for (const topic of ['orders', 'order_status']) if (!existing.has(topic)) await log.createTopic(topic, demoTopic);
    const start = await log.endOffsets('orders');
    process.stdout.write(
      `Sluice demo — data in ${path.resolve(values.data)}\n` +
        `Appending a live shop workload (orders and their status events, ${rate.toLocaleString()} events/s; --rate changes it)\n` +
        `to the durable log, keyed by customer, syncData group commit.\n` +
        `Try, in another terminal:  npx sluice log read orders --data ${values.data} --follow\n` +
        `                           npx sluice log topics --data ${values.data}\n` +
        `(Views, search and the HTTP API arrive with the pipeline runtime.) Ctrl-C stops.\n\n`,
    );
    let appended = 0;
    let read = 0;
    let nextOrder = start.reduce((a, b) => a + b, 0);
    const products = ['lamp', 'desk', 'chair', 'rug', 'shelf', 'mug', 'kettle', 'clock'];
    // Every 50 ms, the events due at `rate`: an order, and a status event for it.
    const tickMs = 50;
    let owed = 0;
    const producer = async () => {
      while (!controller.signal.aborted) {
        const tickStart = Date.now();
        owed += (rate * tickMs) / 1000 / 2;
        const orders = new Map<number, Array<{ key: string; value: string }>>();
        const statuses = new Map<number, Array<{ key: string; value: string }>>();
        for (; owed >= 1; owed--) {
          const order = nextOrder++;
          const customer = String((order * 7919) % 10_000);
          const partition = await log.partitionFor('orders', customer);
          if (!orders.has(partition)) orders.set(partition, []);
          if (!statuses.has(partition)) statuses.set(partition, []);
          orders.get(partition)!.push({ key: customer, value: JSON.stringify({ id: order, customer_id: Number(customer), product: products[order % products.length], amount: ((order % 9000) / 100 + 1).toFixed(2) }) });
          statuses.get(partition)!.push({ key: customer, value: JSON.stringify({ order_id: order, status: order % 5 === 0 ? 'shipped' : 'placed' }) });
        }
        const appends: Array<Promise<unknown>> = [];
        for (const [partition, records] of orders) appends.push(log.append('orders', partition, records));
        for (const [partition, records] of statuses) appends.push(log.append('order_status', partition, records));
        await Promise.all(appends);
        for (const records of orders.values()) appended += records.length * 2;
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, tickMs - (Date.now() - tickStart))));
      }
    };
    // The view: SELECT product, count(*), sum(amount) FROM orders GROUP BY product ORDER BY 3 DESC LIMIT 3,
    // kept up to date by the engine as the followers read orders back from the log.
    const builder = new CircuitBuilder();
    const ordersStream = builder.input('orders', 4); // id, customer_id, product, amount
    const revenue = ordersStream.aggregate([2], [{ kind: 'count' }, { kind: 'sum', column: 3 }]);
    builder.output('top', revenue.topK({ orderBy: [{ column: 2, descending: true }], limit: 3 }));
    const view = builder.build();
    const top = new Map<string, Row>();
    const follower = async (partition: number) => {
      for await (const { records } of log.follow('orders', partition, start[partition], { signal: controller.signal })) {
        read += records.length;
        const rows: Row[] = [];
        for (const record of records) {
          const order = JSON.parse(record.value?.toString() ?? "null") as { id: number; customer_id: number; product: string; amount: string };
          rows.push([order.id, order.customer_id, order.product, Decimal.parse(order.amount)]);
        }
        const { top: changes } = view.step({ orders: ZSet.inserts(rows) });
        // Deltas list deletes before inserts: a product whose revenue changed is replaced, not lost.
        for (const [row, weight] of changes!.entries()) {
          if (weight < 0) top.delete(String(row[0]));
          else top.set(String(row[0]), row);
        }
      }
    };
    const leaders = () =>
      [...top.values()]
        .sort((a, b) => (b[2] as Decimal).compare(a[2] as Decimal))
        .map((row) => `${String(row[0])} ${String(row[2])}`)
        .join(', ');
    const began = Date.now();
    let lastAppended = 0;
    const ticker = setInterval(async () => {
      const ends = await log.endOffsets('orders');
      const rate = appended - lastAppended;
      lastAppended = appended;
      process.stdout.write(`\r${((Date.now() - began) / 1000).toFixed(0)}s  ${rate.toLocaleString()} events/s  appended ${appended.toLocaleString()}  followed ${read.toLocaleString()} orders  end offsets [${ends.join(', ')}]  top revenue this run: ${leaders()}   `);
    }, 1000);
    await Promise.all([producer(), ...[0, 1, 2, 3].map(follower)]);
    clearInterval(ticker);
    process.stdout.write(`\nStopped after ${appended.toLocaleString()} events; everything acknowledged is durable in ${path.resolve(values.data)}.\n`);
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    await log.close();
  }
  return 0;
}
