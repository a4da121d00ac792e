/**
 * The pipeline benchmark: Sluice as a user runs it — `sluice up FILE.sql` in a child process,
 * driven over HTTP by this process (so the client never shares the server's event loop).
 *
 * 1. ingest — one table (bigint, text, numeric, timestamptz); several clients POST NDJSON bodies
 *    of 1,000 and 10,000 rows back to back for a few seconds: events/s and MB/s acknowledged, then
 *    the time until the step loop has processed them all. Peer: a minimal node:http server
 *    (bench/pipeline-floor.ts) that reads each body, JSON.parses every line and appends the body to
 *    a file with fdatasync per request — the floor of durable HTTP ingest in Node.
 * 2. end to end — orders joined to customers, grouped by customer (count, sum): the orders are
 *    POSTed in bulk (batches of --batch rows, --clients concurrent clients, default 8: enough to keep the server busy), then the view is read with
 *    `atLeast=` the last append's position; events/s from the first POST until the view reflects
 *    the last. Peer: @tanstack/db-ivm computing the same join + aggregate over the same events in
 *    the same batches, in memory (no durability, no HTTP). Both results are checked (groups,
 *    count, sum).
 * 3. latency — on the same pipeline, an open-loop client appends --latency-batch orders every
 *    millisecond (--rate events/s) and, after each acknowledgement, reads the view with
 *    `atLeast=TOKEN&limit=1`; each append is timed from when it was due (no coordinated omission):
 *    ack and visible p50/p99/max.
 * 4. search — products (id, title, description, price, category) INTO SEARCH; --products rows
 *    POSTed in batches, indexing time until the search sink reflects the last (stopping early,
 *    at the size reached, when --search-seconds runs out); then mixed queries timed over HTTP
 *    (GET /v1/search/NAME?q=…&limit=10) and, on the same index file, directly through
 *    SearchIndex.search (what bench/search.ts measures as "sluice"), alternating per query.
 *
 * Invariants:
 * - The tables and the one JSON line go to stdout; progress goes to stderr.
 * - Every child process and temporary folder is removed at the end, also on failure.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { parseArgs } from 'node:util';
import { decodePosition, recordsIn } from '../src/pipeline/position.ts';
import type { SqlType } from '../src/sql/index.ts';
import { SearchIndex } from '../src/sinks/search/index.ts';
import { formatNumber, printTable, round, progress as writeProgress } from './format.ts';
import { positiveOption } from './options.ts';
import { catalog, customerObjects, events, ndjson, orderObjects, orders, products, queries, type Order } from './pipeline-data.ts';
import { prng } from './random.ts';
import { productsTarget } from './search.ts';
import { append, closeConnections, json, request, settle, startFloor, startSluice, type Child } from './pipeline-processes.ts';

export const description = 'the pipeline over HTTP (sluice up in a child process): NDJSON ingest, join+aggregate end to end, append-to-visible latency, search; against a durable node:http floor and @tanstack/db-ivm';

const parts = ['ingest', 'e2e', 'latency', 'search'] as const;
type Part = (typeof parts)[number];

interface Settings {
  quick: boolean;
  parts: Set<Part>;
  seconds: number;
  clients: number;
  customers: number;
  orders: number;
  batch: number;
  rate: number;
  latencyBatch: number;
  latencySeconds: number;
  products: number;
  searchSeconds: number;
  queries: number;
  seed: number;
  directory: string | undefined;
  cpuProf: string | undefined;
}

function parseSettings(args: string[]): Settings {
  const { values } = parseArgs({
    args,
    options: {
      quick: { type: 'boolean', default: false },
      parts: { type: 'string' },
      seconds: { type: 'string' },
      clients: { type: 'string' },
      customers: { type: 'string' },
      orders: { type: 'string' },
      batch: { type: 'string' },
      rate: { type: 'string' },
      'latency-batch': { type: 'string' },
      'latency-seconds': { type: 'string' },
      products: { type: 'string' },
      'search-seconds': { type: 'string' },
      queries: { type: 'string' },
      seed: { type: 'string' },
      dir: { type: 'string' },
      'cpu-prof': { type: 'string' },
    },
    strict: true,
  });
  const quick = values.quick;
  const chosen = (values.parts ?? parts.join(',')).split(',').map((p) => p.trim());
  for (const p of chosen) if (!(parts as readonly string[]).includes(p)) throw new Error(`--parts takes ${parts.join(', ')}; not "${p}"`);
  return {
    quick,
    parts: new Set(chosen as Part[]),
    seconds: positiveOption('seconds', values.seconds, quick ? 1 : 3),
    clients: positiveOption('clients', values.clients, 8),
    customers: positiveOption('customers', values.customers, quick ? 2_000 : 10_000),
    orders: positiveOption('orders', values.orders, quick ? 50_000 : 500_000),
    batch: positiveOption('batch', values.batch, 10_000),
    rate: positiveOption('rate', values.rate, 10_000),
    latencyBatch: positiveOption('latency-batch', values['latency-batch'], 10),
    latencySeconds: positiveOption('latency-seconds', values['latency-seconds'], quick ? 2 : 10),
    products: positiveOption('products', values.products, quick ? 50_000 : 1_000_000),
    searchSeconds: positiveOption('search-seconds', values['search-seconds'], quick ? 60 : 150),
    queries: positiveOption('queries', values.queries, quick ? 300 : 2_000),
    seed: positiveOption('seed', values.seed, 20240601),
    directory: values.dir,
    cpuProf: values['cpu-prof'] ? path.resolve(values['cpu-prof']) : undefined,
  };
}

function progress(line: string): void {
  writeProgress(`  ${line}`);
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}

function stats(values: number[]): { p50: number; p99: number; max: number; count: number } {
  const sorted = [...values].sort((a, b) => a - b);
  return { p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99), max: sorted.at(-1) ?? NaN, count: sorted.length };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

interface Status {
  eventsProcessed: number;
  tables: Array<{ name: string; lag: number; eventsAppended: number }>;
  lastStepMs: number;
  maxStepMs: number;
  steps: number;
}

async function status(url: string): Promise<Status> {
  return json<Status>(`${url}/v1/status`);
}

/** Polls the status until no table has records left to process; returns when that was seen. */
async function drained(url: string): Promise<number> {
  for (;;) {
    const s = await status(url);
    if (s.tables.every((t) => t.lag === 0)) return performance.now();
    await sleep(2);
  }
}

// ── 1. ingest ───────────────────────────────────────────────────────────────────────────────

interface IngestResult {
  system: string;
  rowsPerBody: number;
  events: number;
  seconds: number;
  eventsPerSecond: number;
  mbPerSecond: number;
  ackP50: number;
  ackP99: number;
  /** Sluice: events/s counted to when the step loop had processed everything. */
  processedPerSecond?: number;
}

async function ingestCase(system: string, target: string, bodies: Buffer[], rowsPerBody: number, settings: Settings): Promise<{ events: number; bytes: number; seconds: number; acks: number[]; began: number }> {
  const acks: number[] = [];
  let events = 0;
  let bytes = 0;
  let next = 0;
  const began = performance.now();
  const end = began + settings.seconds * 1000;
  await Promise.all(
    Array.from({ length: settings.clients }, async () => {
      while (performance.now() < end) {
        const body = bodies[next++ % bodies.length]!;
        const start = performance.now();
        const reply = await request(target, 'POST', body, { 'content-type': 'application/x-ndjson' });
        if (reply.status !== 200) throw new Error(`${system}: POST answered ${reply.status}: ${reply.body.slice(0, 300)}`);
        acks.push(performance.now() - start);
        events += rowsPerBody;
        bytes += body.length;
      }
    }),
  );
  return { events, bytes, seconds: (performance.now() - began) / 1000, acks, began };
}

async function runIngest(settings: Settings, directory: string): Promise<IngestResult[]> {
  process.stderr.write('── ingest: NDJSON POSTs to one table, against a node:http + fdatasync floor\n');
  const folder = path.join(directory, 'ingest');
  fs.mkdirSync(folder);
  const pipeline = 'CREATE TABLE events (id bigint, name text, amount numeric(12,2), at timestamptz);\n';
  const sluice = await startSluice(folder, pipeline, settings.cpuProf ? { cpuProf: path.join(settings.cpuProf, 'ingest') } : {});
  const floor = await startFloor(path.join(folder, 'floor.ndjson'));
  const results: IngestResult[] = [];
  try {
    const random = prng(settings.seed);
    let id = 0;
    for (const rowsPerBody of [1_000, 10_000]) {
      const bodies = Array.from({ length: 8 }, () => {
        const body = ndjson(events(id, rowsPerBody, random));
        id += rowsPerBody;
        return body;
      });
      // A short untimed warm-up of each, then the timed runs.
      const warm = { ...settings, seconds: Math.min(0.5, settings.seconds) };
      await ingestCase('sluice', `${sluice.url}/v1/tables/events/events`, bodies, rowsPerBody, warm);
      await drained(sluice.url);
      await ingestCase('floor', `${floor.url}/`, bodies, rowsPerBody, warm);
      for (const system of ['sluice', 'floor'] as const) {
        const target = system === 'sluice' ? `${sluice.url}/v1/tables/events/events` : `${floor.url}/`;
        const run = await ingestCase(system, target, bodies, rowsPerBody, settings);
        const ack = stats(run.acks);
        const result: IngestResult = { system, rowsPerBody, events: run.events, seconds: run.seconds, eventsPerSecond: run.events / run.seconds, mbPerSecond: run.bytes / run.seconds / 1e6, ackP50: ack.p50, ackP99: ack.p99 };
        if (system === 'sluice') {
          const done = await drained(sluice.url);
          result.processedPerSecond = run.events / ((done - run.began) / 1000);
        }
        results.push(result);
        progress(`${system}, ${formatNumber(rowsPerBody)} rows/body: ${formatNumber(result.eventsPerSecond)} events/s acknowledged${result.processedPerSecond ? `, ${formatNumber(result.processedPerSecond)} events/s processed` : ''}`);
      }
    }
  } finally {
    await Promise.all([sluice.stop(), floor.stop()]);
  }
  const lines = results.map((r) => {
    const peer = results.find((p) => p.system === 'floor' && p.rowsPerBody === r.rowsPerBody)!;
    return [
      `${r.system} ${formatNumber(r.rowsPerBody)} rows/POST`,
      formatNumber(r.events),
      formatNumber(r.eventsPerSecond),
      formatNumber(r.mbPerSecond, 1),
      formatNumber(r.ackP50, 1),
      formatNumber(r.ackP99, 1),
      r.processedPerSecond === undefined ? '' : formatNumber(r.processedPerSecond),
      r.system === 'sluice' ? `${formatNumber(r.eventsPerSecond / peer.eventsPerSecond, 2)}×` : '',
    ];
  });
  process.stdout.write(`\ningest — ${settings.clients} clients POSTing NDJSON back to back for ${settings.seconds} s per case\n`);
  printTable(['case', 'events', 'events/s acked', 'MB/s', 'ack p50 ms', 'ack p99 ms', 'events/s processed', 'vs floor'], lines);
  return results;
}

// ── 2. end to end, and 3. latency ───────────────────────────────────────────────────────────

const JOIN_PIPELINE = `CREATE TABLE customers (id bigint PRIMARY KEY, name text);
CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint, amount numeric(12,2));
CREATE VIEW totals AS
  SELECT o.customer_id, count(*) AS n, sum(o.amount) AS total
  FROM orders o JOIN customers c ON c.id = o.customer_id
  GROUP BY o.customer_id;
`;

interface Totals {
  groups: number;
  n: number;
  cents: number;
}

function expectedTotals(list: readonly Order[]): Totals {
  const groups = new Set<number>();
  let cents = 0;
  for (const o of list) {
    groups.add(o.customer_id);
    cents += o.cents;
  }
  return { groups: groups.size, n: list.length, cents };
}

interface EndToEndResult {
  orders: number;
  sluiceSeconds: number;
  sluiceAckSeconds: number;
  sluicePerSecond: number;
  ivmSeconds: number;
  ivmPerSecond: number;
  sluiceOk: boolean;
  ivmOk: boolean;
  maxStepMs: number;
  steps: number;
}

async function viewTotals(url: string): Promise<Totals> {
  const reply = await json<{ rows: Array<{ groups: number | string; n: number | string; total: number | string | null }> }>(`${url}/v1/query`, 'POST', JSON.stringify({ sql: 'SELECT count(*) AS groups, sum(n) AS n, sum(total) AS total FROM totals' }), { 'content-type': 'application/json' });
  const row = reply.rows[0]!;
  return { groups: Number(row.groups), n: Number(row.n), cents: Math.round(Number(row.total ?? 0) * 100) };
}

/** @tanstack/db-ivm: the same join and aggregate, keyed the way bench/engine.ts keys it. */
async function ivmRun(customers: number, batches: readonly Order[][]): Promise<{ seconds: number; totals: Totals }> {
  const ivm = await import('@tanstack/db-ivm');
  type Keyed<V> = [number, V];
  type OrderRow = [number, number, number];
  const graph = new ivm.D2();
  const ordersIn = graph.newInput<Keyed<OrderRow>>();
  const customersIn = graph.newInput<Keyed<[number, string]>>();
  const totals = new Map<number, [number, number]>();
  ordersIn.pipe(
    ivm.join(customersIn, 'inner'),
    ivm.map(([customer, [order]]: Keyed<[OrderRow | null, [number, string] | null]>): Keyed<number> => [customer, order![2]]),
    ivm.reduce((values: Array<[number, number]>): Array<[[number, number], number]> => {
      let sum = 0;
      let count = 0;
      for (const [amount, multiplicity] of values) {
        sum += amount * multiplicity;
        count += multiplicity;
      }
      return count > 0 ? [[[sum, count], 1]] : [];
    }),
    ivm.output((message: InstanceType<typeof ivm.MultiSet<Keyed<[number, number]>>>) => {
      for (const [[customer, value], weight] of message.getInner()) {
        if (weight > 0) totals.set(customer, value);
        else if (totals.get(customer) === value) totals.delete(customer);
      }
    }),
  );
  graph.finalize();
  const began = performance.now();
  customersIn.sendData(new ivm.MultiSet(Array.from({ length: customers }, (_, id): [Keyed<[number, string]>, number] => [[id, [id, `customer ${id}`]], 1])));
  graph.run();
  for (const batch of batches) {
    ordersIn.sendData(new ivm.MultiSet(batch.map((o): [Keyed<OrderRow>, number] => [[o.customer_id, [o.id, o.customer_id, o.cents]], 1])));
    graph.run();
  }
  const seconds = (performance.now() - began) / 1000;
  let n = 0;
  let cents = 0;
  for (const [sum, count] of totals.values()) {
    cents += sum;
    n += count;
  }
  return { seconds, totals: { groups: totals.size, n, cents } };
}

async function runEndToEnd(settings: Settings, directory: string): Promise<{ e2e?: EndToEndResult; latency?: LatencyResult }> {
  process.stderr.write('── end to end: orders ⋈ customers, grouped by customer, against @tanstack/db-ivm\n');
  const folder = path.join(directory, 'join');
  fs.mkdirSync(folder);
  const sluice = await startSluice(folder, JOIN_PIPELINE, settings.cpuProf ? { cpuProf: path.join(settings.cpuProf, 'join') } : {});
  let e2e: EndToEndResult | undefined;
  let latency: LatencyResult | undefined;
  try {
    const random = prng(settings.seed + 1);
    const list = orders(0, settings.orders, settings.customers, random);
    const batches: Order[][] = [];
    for (let i = 0; i < list.length; i += settings.batch) batches.push(list.slice(i, i + settings.batch));
    const bodies = batches.map((b) => ndjson(orderObjects(b)));
    await settle(sluice.url, '/v1/views/totals', await append(sluice.url, 'customers', ndjson(customerObjects(0, settings.customers))));
    if (settings.parts.has('e2e')) {
      const began = performance.now();
      let next = 0;
      let done = 0;
      const lastBody = bodies.length - 1;
      await Promise.all(
        Array.from({ length: settings.clients }, async () => {
          while (next < lastBody) {
            await append(sluice.url, 'orders', bodies[next++]!);
            done++;
            if (done % 10 === 0) progress(`${formatNumber(done * settings.batch)} orders acknowledged`);
          }
        }),
      );
      // The last batch after every other one is acknowledged: its position is past them all.
      const last = await append(sluice.url, 'orders', bodies[lastBody]!);
      const acked = performance.now();
      await settle(sluice.url, '/v1/views/totals', last);
      const visible = performance.now();
      const got = await viewTotals(sluice.url);
      const want = expectedTotals(list);
      const s = await status(sluice.url);
      progress(`sluice: ${formatNumber(settings.orders / ((visible - began) / 1000))} events/s to visible; running db-ivm`);
      const ivm = await ivmRun(settings.customers, batches);
      const ivmOk = ivm.totals.groups === want.groups && ivm.totals.n === want.n && ivm.totals.cents === want.cents;
      const sluiceOk = got.groups === want.groups && got.n === want.n && got.cents === want.cents;
      if (!sluiceOk) process.stdout.write(`!!! MISMATCH sluice totals ${JSON.stringify(got)}, expected ${JSON.stringify(want)}\n`);
      if (!ivmOk) process.stdout.write(`!!! MISMATCH db-ivm totals ${JSON.stringify(ivm.totals)}, expected ${JSON.stringify(want)}\n`);
      e2e = { orders: settings.orders, sluiceSeconds: (visible - began) / 1000, sluiceAckSeconds: (acked - began) / 1000, sluicePerSecond: settings.orders / ((visible - began) / 1000), ivmSeconds: ivm.seconds, ivmPerSecond: settings.orders / ivm.seconds, sluiceOk, ivmOk, maxStepMs: s.maxStepMs, steps: s.steps };
      process.stdout.write(`\nend to end — ${formatNumber(settings.orders)} orders over ${formatNumber(settings.customers)} customers in POSTs of ${formatNumber(settings.batch)} (${settings.clients} clients), view: join + count/sum per customer\n`);
      printTable(
        ['system', 'seconds', 'events/s', 'checked', 'vs db-ivm'],
        [
          ['sluice: all POSTs acknowledged', formatNumber(e2e.sluiceAckSeconds, 2), formatNumber(settings.orders / e2e.sluiceAckSeconds), '', ''],
          ['sluice: view reflects the last', formatNumber(e2e.sluiceSeconds, 2), formatNumber(e2e.sluicePerSecond), sluiceOk ? 'ok' : 'MISMATCH', `${formatNumber(e2e.sluicePerSecond / e2e.ivmPerSecond, 2)}×`],
          ['db-ivm in memory', formatNumber(e2e.ivmSeconds, 2), formatNumber(e2e.ivmPerSecond), ivmOk ? 'ok' : 'MISMATCH', ''],
        ],
      );
      process.stdout.write(`(sluice: ${formatNumber(s.steps)} steps so far, longest ${formatNumber(s.maxStepMs, 1)} ms)\n`);
    }
    if (settings.parts.has('latency')) latency = await runLatency(settings, sluice, settings.orders);
  } finally {
    await sluice.stop();
  }
  return { ...(e2e ? { e2e } : {}), ...(latency ? { latency } : {}) };
}

interface LatencyResult {
  appends: number;
  events: number;
  seconds: number;
  achievedPerSecond: number;
  ack: ReturnType<typeof stats>;
  visible: ReturnType<typeof stats>;
  failures: number;
}

async function runLatency(settings: Settings, sluice: Child, firstId: number): Promise<LatencyResult> {
  process.stderr.write(`── latency: ${formatNumber(settings.rate)} events/s in appends of ${settings.latencyBatch}, each read back with atLeast\n`);
  const random = prng(settings.seed + 2);
  const interval = (1000 * settings.latencyBatch) / settings.rate;
  const count = Math.floor((settings.latencySeconds * 1000) / interval);
  const bodies = Array.from({ length: count }, (_, i) => ndjson(orderObjects(orders(firstId + i * settings.latencyBatch, settings.latencyBatch, settings.customers, random))));
  const acks: number[] = [];
  const visible: number[] = [];
  let failures = 0;
  const pending: Promise<void>[] = [];
  const fire = async (i: number, due: number) => {
    try {
      const token = await append(sluice.url, 'orders', bodies[i]!);
      acks.push(performance.now() - due);
      const reply = await request(`${sluice.url}/v1/views/totals?atLeast=${token}&limit=1`);
      if (reply.status !== 200) throw new Error(`${reply.status} ${reply.body.slice(0, 200)}`);
      visible.push(performance.now() - due);
    } catch (error) {
      if (failures++ === 0) progress(`append/read failed: ${(error as Error).message}`);
    }
  };
  const began = performance.now();
  let sent = 0;
  let reported = began;
  while (sent < count) {
    const now = performance.now();
    while (sent < count && began + sent * interval <= now) {
      pending.push(fire(sent, began + sent * interval));
      sent++;
    }
    if (now - reported > 2000) {
      reported = now;
      progress(`${formatNumber((now - began) / 1000, 0)} s: ${formatNumber(sent)} appends sent, ${formatNumber(visible.length)} visible`);
    }
    await sleep(Math.max(0, began + sent * interval - performance.now()));
  }
  await Promise.all(pending);
  const seconds = (performance.now() - began) / 1000;
  const result: LatencyResult = { appends: count, events: count * settings.latencyBatch, seconds, achievedPerSecond: (count * settings.latencyBatch) / seconds, ack: stats(acks), visible: stats(visible), failures };
  process.stdout.write(`\nappend-to-visible latency — ${formatNumber(settings.rate)} events/s offered as ${settings.latencyBatch} orders every ${formatNumber(interval, 1)} ms for ${settings.latencySeconds} s (open loop, timed from when each append was due; achieved ${formatNumber(result.achievedPerSecond)} events/s)\n`);
  printTable(
    ['measure', 'count', 'p50 ms', 'p99 ms', 'max ms'],
    [
      ['append acknowledged', formatNumber(result.ack.count), formatNumber(result.ack.p50, 2), formatNumber(result.ack.p99, 2), formatNumber(result.ack.max, 1)],
      ['view reflects it (atLeast)', formatNumber(result.visible.count), formatNumber(result.visible.p50, 2), formatNumber(result.visible.p99, 2), formatNumber(result.visible.max, 1)],
    ],
  );
  if (failures > 0) process.stdout.write(`(${failures} appends or reads failed)\n`);
  return result;
}

// ── 4. search ───────────────────────────────────────────────────────────────────────────────

const SEARCH_PIPELINE = `CREATE TABLE products (id bigint PRIMARY KEY, title text, description text, price numeric(10,2), category text);
CREATE SINK products_search FROM products INTO SEARCH WITH (fields = 'title^2, description');
`;

interface SearchResult {
  products: number;
  requested: number;
  seconds: number;
  perSecond: number;
  http: ReturnType<typeof stats>;
  direct: ReturnType<typeof stats>;
  directPlain: ReturnType<typeof stats>;
  byKind: Array<{ kind: string; http: ReturnType<typeof stats>; direct: ReturnType<typeof stats> }>;
  mismatches: number;
}

async function runSearch(settings: Settings, directory: string): Promise<SearchResult> {
  process.stderr.write(`── search: ${formatNumber(settings.products)} products INTO SEARCH through the pipeline (at most ${settings.searchSeconds} s), then queries\n`);
  const folder = path.join(directory, 'search');
  fs.mkdirSync(folder);
  const sluice = await startSluice(folder, SEARCH_PIPELINE, settings.cpuProf ? { cpuProf: path.join(settings.cpuProf, 'search') } : {});
  const read = '/v1/search/products_search?q=zzzzqqq';
  try {
    const words = catalog(settings.seed + 3);
    const batch = settings.batch;
    const began = performance.now();
    let appended = 0;
    let last = '';
    let settled = 0;
    // Two clients appending; every 100,000 the client waits for the index to catch up, so the
    // backlog stays bounded and the clock can stop the load at a size the index has reached.
    const checkEvery = Math.max(batch, 100_000);
    while (appended < settings.products && (performance.now() - began) / 1000 < settings.searchSeconds) {
      const round: Promise<string>[] = [];
      for (let k = 0; k < 2 && appended < settings.products; k++) {
        const count = Math.min(batch, settings.products - appended);
        round.push(append(sluice.url, 'products', ndjson(products(words, appended, count))));
        appended += count;
      }
      last = latest([last, ...(await Promise.all(round))]);
      if (appended - settled >= checkEvery) {
        await settle(sluice.url, read, last);
        settled = appended;
        const seconds = (performance.now() - began) / 1000;
        progress(`${formatNumber(settled)} products indexed in ${formatNumber(seconds, 1)} s (${formatNumber(settled / seconds)}/s)`);
      }
    }
    if (settled < appended) await settle(sluice.url, read, last);
    const seconds = (performance.now() - began) / 1000;
    progress(`${formatNumber(appended)} products indexed in ${formatNumber(seconds, 1)} s (${formatNumber(appended / seconds)}/s)${appended < settings.products ? ` — stopped at --search-seconds ${settings.searchSeconds}` : ''}`);
    return await searchQueries(settings, sluice, folder, words, appended, seconds);
  } finally {
    await sluice.stop();
  }
}

/** The furthest of position tokens of one table ('' is none). */
function latest(tokens: string[]): string {
  let best = '';
  let bestRecords = -1;
  for (const token of tokens) {
    if (token === '') continue;
    const records = recordsIn(decodePosition(token));
    if (records > bestRecords) {
      best = token;
      bestRecords = records;
    }
  }
  return best;
}

async function searchQueries(settings: Settings, sluice: Child, folder: string, words: ReturnType<typeof catalog>, indexed: number, seconds: number): Promise<SearchResult> {
  // The same index file, opened here: the direct peer runs on exactly the documents the HTTP
  // queries run on (WAL mode: readers do not block the pipeline's writer).
  const target = productsTarget;
  const db = new DatabaseSync(path.join(folder, 'data', 'search.db'));
  db.exec('PRAGMA cache_size = -65536');
  const index = SearchIndex.open(db, target, { table: 'search_products_search', fields: 'title^2, description' });
  try {
    const list = queries(words, settings.queries, settings.seed + 4);
    const http = async (q: string) => {
      const started = performance.now();
      const reply = await request(`${sluice.url}/v1/search/products_search?q=${encodeURIComponent(q)}&limit=10`);
      if (reply.status !== 200) throw new Error(`search ${q}: ${reply.status} ${reply.body.slice(0, 300)}`);
      return { ms: performance.now() - started, hits: (JSON.parse(reply.body) as { hits: Array<{ row: { id: number | string } }> }).hits.map((h) => String(h.row.id)) };
    };
    const direct = (q: string, highlight: boolean) => {
      const started = performance.now();
      const result = index.search(q, { limit: 10, highlight });
      return { ms: performance.now() - started, hits: result.hits.map((h) => String(h.row.id)) };
    };
    const warm = Math.min(200, Math.floor(list.length / 5));
    for (const { q } of list.slice(0, warm)) {
      await http(q);
      direct(q, true);
    }
    const timesHttp: number[] = [];
    const timesDirect: number[] = [];
    const timesPlain: number[] = [];
    const kinds = new Map<string, { http: number[]; direct: number[] }>();
    let mismatches = 0;
    const began = performance.now();
    for (let i = 0; i < list.length; i++) {
      const { kind, q } = list[i]!;
      let h: { ms: number; hits: string[] };
      let d: { ms: number; hits: string[] };
      if (i % 2 === 0) {
        h = await http(q);
        d = direct(q, true);
      } else {
        d = direct(q, true);
        h = await http(q);
      }
      timesPlain.push(direct(q, false).ms);
      if (h.hits.join() !== d.hits.join()) mismatches++;
      timesHttp.push(h.ms);
      timesDirect.push(d.ms);
      const entry = kinds.get(kind) ?? { http: [], direct: [] };
      entry.http.push(h.ms);
      entry.direct.push(d.ms);
      kinds.set(kind, entry);
      if (performance.now() - began > 5000 && i % 200 === 0) progress(`${formatNumber(i)} of ${formatNumber(list.length)} queries`);
    }
    const result: SearchResult = {
      products: indexed,
      requested: settings.products,
      seconds,
      perSecond: indexed / seconds,
      http: stats(timesHttp),
      direct: stats(timesDirect),
      directPlain: stats(timesPlain),
      byKind: [...kinds].map(([kind, t]) => ({ kind, http: stats(t.http), direct: stats(t.direct) })),
      mismatches,
    };
    process.stdout.write(`\nsearch — ${formatNumber(indexed)} products${indexed < settings.products ? ` (of ${formatNumber(settings.products)} requested: indexing stopped at ${settings.searchSeconds} s)` : ''} POSTed in batches of ${formatNumber(settings.batch)} and indexed in ${formatNumber(seconds, 1)} s: ${formatNumber(result.perSecond)} products/s to searchable\n`);
    const line = (label: string, s: ReturnType<typeof stats>, peer?: ReturnType<typeof stats>) => [label, formatNumber(s.count), formatNumber(s.p50, 2), formatNumber(s.p99, 2), formatNumber(s.max, 1), peer ? `${formatNumber(s.p50 / peer.p50, 2)}× / ${formatNumber(s.p99 / peer.p99, 2)}×` : ''];
    printTable(
      ['queries (limit 10)', 'count', 'p50 ms', 'p99 ms', 'max ms', 'p50/p99 vs direct'],
      [
        line('all: HTTP GET /v1/search', result.http, result.direct),
        line('all: SearchIndex.search direct', result.direct),
        line('all: direct, no snippets', result.directPlain),
        ...result.byKind.flatMap((k) => [line(`${k.kind}: HTTP`, k.http, k.direct), line(`${k.kind}: direct`, k.direct)]),
      ],
    );
    if (mismatches > 0) process.stdout.write(`!!! MISMATCH: ${mismatches} queries returned other hits over HTTP than directly\n`);
    return result;
  } finally {
    index.close();
    db.close();
  }
}

// ── run ─────────────────────────────────────────────────────────────────────────────────────

function verdict(met: boolean | undefined): string {
  return met === undefined ? 'not measured' : met ? 'met' : 'MISSED';
}

export async function run(args: string[]): Promise<void> {
  const settings = parseSettings(args);
  const directory = fs.mkdtempSync(path.join(settings.directory ?? os.tmpdir(), 'sluice-bench-pipeline-'));
  if (settings.cpuProf) fs.mkdirSync(settings.cpuProf, { recursive: true });
  try {
    const ingest = settings.parts.has('ingest') ? await runIngest(settings, directory) : [];
    const { e2e, latency } = settings.parts.has('e2e') || settings.parts.has('latency') ? await runEndToEnd(settings, directory) : {};
    const search = settings.parts.has('search') ? await runSearch(settings, directory) : undefined;
    const bestIngest = ingest.filter((r) => r.system === 'sluice').reduce<IngestResult | undefined>((best, r) => (!best || r.eventsPerSecond > best.eventsPerSecond ? r : best), undefined);
    const targets = {
      ingest: { want: '>= 200000 events/s acknowledged (best body size)', actual: round(bestIngest?.eventsPerSecond, 0) ?? null, met: bestIngest ? bestIngest.eventsPerSecond >= 200_000 : null },
      endToEnd: { want: '>= 100000 events/s to visible', actual: round(e2e?.sluicePerSecond, 0) ?? null, met: e2e ? e2e.sluicePerSecond >= 100_000 : null },
      visibleP99: { want: `<= 20 ms at ${settings.rate} events/s`, actual: round(latency?.visible.p99, 2) ?? null, met: latency ? latency.visible.p99 <= 20 : null },
      searchP99: { want: '<= 10 ms over HTTP', actual: round(search?.http.p99, 2) ?? null, met: search ? search.http.p99 <= 10 : null },
    };
    process.stdout.write(
      `\ntargets: ingest ≥ 200,000 events/s ${verdict(targets.ingest.met ?? undefined)}; end to end ≥ 100,000 events/s ${verdict(targets.endToEnd.met ?? undefined)}; ` +
        `visible p99 ≤ 20 ms ${verdict(targets.visibleP99.met ?? undefined)}; search p99 ≤ 10 ms ${verdict(targets.searchP99.met ?? undefined)}${search && search.products < settings.products ? ` (at ${formatNumber(search.products)} products, not ${formatNumber(settings.products)})` : ''}\n`,
    );
    const summary = {
      benchmark: 'pipeline',
      quick: settings.quick,
      cpus: os.cpus().length,
      ingest: ingest.map((r) => ({ system: r.system, rowsPerBody: r.rowsPerBody, eventsPerSecond: round(r.eventsPerSecond, 0), mbPerSecond: round(r.mbPerSecond, 2), ackP50Ms: round(r.ackP50, 2), ackP99Ms: round(r.ackP99, 2), ...(r.processedPerSecond ? { processedPerSecond: round(r.processedPerSecond, 0) } : {}) })),
      ingestVsFloor: [1_000, 10_000].map((size) => {
        const a = ingest.find((r) => r.system === 'sluice' && r.rowsPerBody === size);
        const b = ingest.find((r) => r.system === 'floor' && r.rowsPerBody === size);
        return { rowsPerBody: size, ratio: a && b ? round(a.eventsPerSecond / b.eventsPerSecond, 2) : null };
      }),
      endToEnd: e2e ? { orders: e2e.orders, sluicePerSecond: round(e2e.sluicePerSecond, 0), sluiceAckPerSecond: round(e2e.orders / e2e.sluiceAckSeconds, 0), dbIvmPerSecond: round(e2e.ivmPerSecond, 0), vsDbIvm: round(e2e.sluicePerSecond / e2e.ivmPerSecond, 2), checked: e2e.sluiceOk && e2e.ivmOk } : null,
      latency: latency ? { rate: settings.rate, batch: settings.latencyBatch, achievedPerSecond: round(latency.achievedPerSecond, 0), ackP50Ms: round(latency.ack.p50, 2), ackP99Ms: round(latency.ack.p99, 2), visibleP50Ms: round(latency.visible.p50, 2), visibleP99Ms: round(latency.visible.p99, 2), visibleMaxMs: round(latency.visible.max, 2), failures: latency.failures } : null,
      search: search ? { products: search.products, requested: search.requested, indexPerSecond: round(search.perSecond, 0), httpP50Ms: round(search.http.p50, 2), httpP99Ms: round(search.http.p99, 2), directP50Ms: round(search.direct.p50, 2), directP99Ms: round(search.direct.p99, 2), directNoSnippetsP99Ms: round(search.directPlain.p99, 2), mismatches: search.mismatches } : null,
      targets,
    };
    process.stdout.write(`${JSON.stringify(summary)}\n`);
  } finally {
    closeConnections();
    fs.rmSync(directory, { recursive: true, force: true });
  }
}
