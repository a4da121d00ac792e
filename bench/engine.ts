/**
 * The engine benchmark: Sluice's incremental dataflow engine against two peers, @tanstack/db-ivm
 * and @electric-sql/d2ts (in-memory operators), on the same generated data and the same changes.
 *
 * Workloads (each a dataflow graph loaded in one step, then changed):
 * - join:     orders ⋈ customers → group by customer → sum(amount), count(*)
 * - distinct: distinct customer_id over the union of two order streams
 * - topk:     the top 10 orders of each customer by amount (descending)
 * Each loads its rows in one step, then runs single-row updates one step each (latency per
 * update), then batches of mixed changes one step each (throughput), and checks the final output.
 *
 * Invariants:
 * - Every engine runs every workload in a child process of its own (node --expose-gc), one after
 *   another, so one engine's garbage and JIT state never reach another's numbers.
 * - The data and the changes are a function of the seed alone: every child generates them itself,
 *   identically, before its engine is built.
 * - A step is timed from the harness's change list to the output delta folded into a view (typed
 *   arrays allocated before the baseline); converting changes to the engine's input format counts.
 * - Each child checks its final view against the answer computed directly from the final tables,
 *   and the parent compares the engines' digests; a mismatch is printed loudly.
 * - Peers run their idiomatic in-memory operators; the one intervention is draining the readers
 *   d2ts's D2 leaks (see orphanReaders), which only makes d2ts faster.
 * - The table and the one JSON line go to stdout; progress goes to stderr.
 */
import { prng } from './random.ts';
import { spawn } from 'node:child_process';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Row } from '../src/core/index.ts';
import { formatNumber, printTable, round, progress } from './format.ts';
import { integerOption } from './options.ts';

export const description = 'the dataflow engine: join+aggregate, distinct and top-k under loads, single-row updates and batches, against @tanstack/db-ivm and @electric-sql/d2ts';

const workloads = ['join', 'distinct', 'topk'] as const;
type Workload = (typeof workloads)[number];
const engines = ['sluice', 'db-ivm', 'd2ts'] as const;
type EngineName = (typeof engines)[number];

const workloadTitles: Record<Workload, string> = {
  join: 'orders ⋈ customers → sum, count by customer',
  distinct: 'distinct customer_id of two unioned order streams',
  topk: 'top 10 orders per customer by amount',
};

interface Sizes {
  orders: number;
  customers: number;
  updates: number;
  /** Single-row updates run before the timed ones, unrecorded (JIT warm-up). */
  warmup: number;
  batches: number;
  batchSize: number;
  seed: number;
}

interface Settings extends Sizes {
  engines: EngineName[];
  workloads: Workload[];
  heapMegabytes: number;
  cpuProfileDir: string | undefined;
  quick: boolean;
  /** Run d2ts without draining the readers its D2 leaks (see orphanReaders). */
  d2tsAsPublished: boolean;
}

// ── Data and changes ──────────────────────────────────────────────────────────────────────────


const maxAmount = 10_000;

/** One input's share of a step: rows with weights (+1 insert, −1 delete). */
interface Part {
  input: string;
  rows: Row[];
  weights: number[];
}

/** The changes of one step, one part per input that changes. */
type Delta = Part[];

class DeltaBuilder {
  readonly #parts = new Map<string, Part>();
  readonly #order: readonly string[];
  constructor(inputs: readonly string[]) {
    this.#order = inputs;
  }
  add(input: string, row: Row, weight: number): void {
    let part = this.#parts.get(input);
    if (!part) this.#parts.set(input, (part = { input, rows: [], weights: [] }));
    part.rows.push(row);
    part.weights.push(weight);
  }
  build(): Delta {
    const delta: Delta = [];
    for (const input of this.#order) {
      const part = this.#parts.get(input);
      if (part) delta.push(part);
    }
    return delta;
  }
}

/** Orders by id ([id, customer_id, amount]), with the live ids for picking one at random. */
class OrderTable {
  readonly rows: Array<Row | undefined> = [];
  readonly live: number[] = [];
  readonly #position: number[] = [];

  insert(row: Row): void {
    const id = row[0] as number;
    this.rows[id] = row;
    this.#position[id] = this.live.length;
    this.live.push(id);
  }

  replace(row: Row): void {
    this.rows[row[0] as number] = row;
  }

  remove(id: number): void {
    const at = this.#position[id]!;
    const last = this.live.pop()!;
    if (last !== id) {
      this.live[at] = last;
      this.#position[last] = at;
    }
    this.#position[id] = -1;
    this.rows[id] = undefined;
  }

  /** A live id at random, not one in `touched` (if given). */
  pick(random: () => number, touched?: Set<number>): number {
    for (;;) {
      const id = this.live[Math.floor(random() * this.live.length)]!;
      if (!touched?.has(id)) return id;
    }
  }
}

interface Scenario {
  workload: Workload;
  inputs: string[];
  sizes: Sizes;
  load: Delta;
  rowsLoaded: number;
  warmup: Delta[];
  updates: Delta[];
  batches: Delta[];
  /** Logical changes in all batches (an update or rename is one change of two rows). */
  batchChanges: number;
  batchRows: number;
  /** One past the largest order id any step uses. */
  orderIdLimit: number;
  orders: OrderTable;
  customerRows: Row[];
}

/** Which order stream of the distinct workload an order belongs to. */
function streamOf(id: number): string {
  return id % 2 === 0 ? 'orders' : 'orders2';
}

/**
 * The data and every change, a function of the workload and the sizes alone.
 * - join: an update gives an order a new amount; a batch is 30 % inserts, 30 % deletes, 35 %
 *   order updates and 5 % customer renames (a customer row replaced by one with a new name).
 * - distinct, topk: an update gives an order a new amount and a new (random) customer; a batch is
 *   a third each inserts, deletes and updates. distinct routes even ids to `orders`, odd ones to
 *   `orders2`.
 * No row is touched twice in one batch.
 */
function buildScenario(workload: Workload, sizes: Sizes): Scenario {
  const random = prng(sizes.seed);
  const int = (n: number) => Math.floor(random() * n);
  const inputs = workload === 'join' ? ['orders', 'customers'] : workload === 'distinct' ? ['orders', 'orders2'] : ['orders'];
  const orderInput = (id: number) => (workload === 'distinct' ? streamOf(id) : 'orders');
  const orders = new OrderTable();
  const customerRows: Row[] = [];
  let customerVersion = 0;
  const load = new DeltaBuilder(inputs);
  if (workload === 'join') {
    for (let id = 0; id < sizes.customers; id++) {
      const row: Row = [id, `customer ${id}`];
      customerRows.push(row);
      load.add('customers', row, 1);
    }
  }
  let nextId = 0;
  for (; nextId < sizes.orders; nextId++) {
    const row: Row = [nextId, int(sizes.customers), 1 + int(maxAmount)];
    orders.insert(row);
    load.add(orderInput(nextId), row, 1);
  }
  const rowsLoaded = sizes.orders + (workload === 'join' ? sizes.customers : 0);

  /** Replaces a random live order (one not in `touched`, when a batch passes its set). */
  const updateOrder = (builder: DeltaBuilder, touched?: Set<number>) => {
    const id = orders.pick(random, touched);
    touched?.add(id);
    const old = orders.rows[id]!;
    const row: Row = workload === 'join' ? [id, old[1]!, 1 + int(maxAmount)] : [id, int(sizes.customers), 1 + int(maxAmount)];
    orders.replace(row);
    builder.add(orderInput(id), old, -1);
    builder.add(orderInput(id), row, 1);
  };
  const single = (count: number) => {
    const out: Delta[] = [];
    for (let i = 0; i < count; i++) {
      const builder = new DeltaBuilder(inputs);
      updateOrder(builder);
      out.push(builder.build());
    }
    return out;
  };
  const warmup = single(sizes.warmup);
  const updates = single(sizes.updates);

  const batches: Delta[] = [];
  let batchRows = 0;
  for (let b = 0; b < sizes.batches; b++) {
    const builder = new DeltaBuilder(inputs);
    const touched = new Set<number>();
    const renamed = new Set<number>();
    for (let c = 0; c < sizes.batchSize; c++) {
      const r = random();
      const [insertBelow, deleteBelow, updateBelow] = workload === 'join' ? [0.3, 0.6, 0.95] : [1 / 3, 2 / 3, 1];
      if (r < insertBelow) {
        const id = nextId++;
        const row: Row = [id, int(sizes.customers), 1 + int(maxAmount)];
        orders.insert(row);
        touched.add(id);
        builder.add(orderInput(id), row, 1);
        batchRows++;
      } else if (r < deleteBelow) {
        const id = orders.pick(random, touched);
        touched.add(id);
        builder.add(orderInput(id), orders.rows[id]!, -1);
        orders.remove(id);
        batchRows++;
      } else if (r < updateBelow) {
        updateOrder(builder, touched);
        batchRows += 2;
      } else {
        let id = int(sizes.customers);
        while (renamed.has(id)) id = int(sizes.customers);
        renamed.add(id);
        const old = customerRows[id]!;
        const row: Row = [id, `customer ${id} v${++customerVersion}`];
        customerRows[id] = row;
        builder.add('customers', old, -1);
        builder.add('customers', row, 1);
        batchRows += 2;
      }
    }
    batches.push(builder.build());
  }
  return {
    workload,
    inputs,
    sizes,
    load: load.build(),
    rowsLoaded,
    warmup,
    updates,
    batches,
    batchChanges: sizes.batches * sizes.batchSize,
    batchRows,
    orderIdLimit: nextId,
    orders,
    customerRows,
  };
}

// ── Views: the engines' output deltas, folded ─────────────────────────────────────────────────

/**
 * What each engine's output deltas are folded into: typed arrays allocated before the memory
 * baseline, so folding allocates nothing and the same code runs for every engine.
 */
class View {
  /** join: weight, sum and count of each customer's output row. distinct: weight of each customer. */
  readonly present: Float64Array;
  readonly sum: Float64Array;
  readonly count: Float64Array;
  /** topk: weight of each order id in the output, and its weighted customer and amount. */
  readonly orderWeight: Float64Array;
  readonly orderCustomer: Float64Array;
  readonly orderAmount: Float64Array;
  /** Output rows folded, for the record. */
  rows = 0;

  constructor(scenario: Scenario) {
    const customers = scenario.sizes.customers;
    const ids = scenario.workload === 'topk' ? scenario.orderIdLimit : 0;
    this.present = new Float64Array(scenario.workload === 'topk' ? 0 : customers);
    this.sum = new Float64Array(scenario.workload === 'join' ? customers : 0);
    this.count = new Float64Array(scenario.workload === 'join' ? customers : 0);
    this.orderWeight = new Float64Array(ids);
    this.orderCustomer = new Float64Array(ids);
    this.orderAmount = new Float64Array(ids);
  }

  addTotal(customer: number, sum: number, count: number, weight: number): void {
    this.present[customer]! += weight;
    this.sum[customer]! += weight * sum;
    this.count[customer]! += weight * count;
    this.rows++;
  }

  addCustomer(customer: number, weight: number): void {
    this.present[customer]! += weight;
    this.rows++;
  }

  addOrder(row: Row, weight: number): void {
    const id = row[0] as number;
    this.orderWeight[id]! += weight;
    this.orderCustomer[id]! += weight * (row[1] as number);
    this.orderAmount[id]! += weight * (row[2] as number);
    this.rows++;
  }
}

// ── Engines ───────────────────────────────────────────────────────────────────────────────────

/** One engine built for one workload: a step takes a delta and folds the output into the view. */
interface Adapter {
  step(delta: Delta): void;
}

type SluiceModule = typeof import('../src/engine/index.ts');
type IvmModule = typeof import('@tanstack/db-ivm');
type D2tsModule = typeof import('@electric-sql/d2ts');
type Keyed<V> = [number, V];

/** amount desc, then id asc: Sluice's tie-break on the whole row ([id, …]) gives the same order. */
function byAmountDescending(a: Row, b: Row): number {
  return (b[2] as number) - (a[2] as number) || (a[0] as number) - (b[0] as number);
}

/** The peers' reduce for the join workload: [sum, count] of a customer's amounts. */
function sumAndCount(values: Array<[number, number]>): Array<[[number, number], number]> {
  let sum = 0;
  let count = 0;
  for (let i = 0; i < values.length; i++) {
    const [amount, multiplicity] = values[i]!;
    sum += amount * multiplicity;
    count += multiplicity;
  }
  return count > 0 ? [[[sum, count], 1]] : [];
}

/** [row[column], row] with the row's weight, for a peer's keyed input. */
function keyedBy(part: Part, column: number): Array<[Keyed<Row>, number]> {
  const { rows, weights } = part;
  const out = new Array<[Keyed<Row>, number]>(rows.length);
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i]!;
    out[i] = [[row[column] as number, row], weights[i]!];
  }
  return out;
}

function sluiceAdapter(engine: SluiceModule, scenario: Scenario, view: View): Adapter {
  const { CircuitBuilder, ZSet } = engine;
  const builder = new CircuitBuilder();
  let fold: (row: Row, weight: number) => void;
  switch (scenario.workload) {
    case 'join': {
      const orders = builder.input('orders', 3);
      const customers = builder.input('customers', 2);
      const totals = orders.join(customers, { leftKey: [1], rightKey: [0] }).aggregate([1], [{ kind: 'sum', column: 2 }, { kind: 'count' }]);
      builder.output('out', totals);
      fold = (row, weight) => view.addTotal(row[0] as number, Number(row[1]), row[2] as number, weight);
      break;
    }
    case 'distinct': {
      const orders = builder.input('orders', 3);
      const orders2 = builder.input('orders2', 3);
      builder.output('out', orders.project([1]).union(orders2.project([1])).distinct());
      fold = (row, weight) => view.addCustomer(row[0] as number, weight);
      break;
    }
    case 'topk': {
      const orders = builder.input('orders', 3);
      builder.output('out', orders.topK({ groupBy: [1], orderBy: [{ column: 2, descending: true }], limit: 10 }));
      fold = (row, weight) => view.addOrder(row, weight);
      break;
    }
  }
  const circuit = builder.build();
  return {
    step(delta) {
      const inputs: Record<string, InstanceType<typeof ZSet>> = {};
      for (const part of delta) inputs[part.input] = new ZSet(part.rows, part.weights);
      const { rows, weights } = circuit.step(inputs).out!;
      for (let i = 0; i < rows.length; i++) fold(rows[i]!, weights[i]!);
    },
  };
}

function ivmAdapter(ivm: IvmModule, scenario: Scenario, view: View): Adapter {
  const { D2, MultiSet } = ivm;
  const graph = new D2();
  const senders = new Map<string, (part: Part) => void>();
  const sendKeyed = (input: { sendData(data: InstanceType<typeof MultiSet<Keyed<Row>>>): void }, column: number) => (part: Part) => input.sendData(new MultiSet(keyedBy(part, column)));
  switch (scenario.workload) {
    case 'join': {
      // Orders keyed by customer_id, customers by id: the keyed join, then reduce per customer.
      const orders = graph.newInput<Keyed<Row>>();
      const customers = graph.newInput<Keyed<Row>>();
      const joined = orders.pipe(ivm.join(customers, 'inner')) as ReturnType<typeof graph.newInput<Keyed<[Row, Row]>>>;
      joined.pipe(
        ivm.map(([customer, [order]]: Keyed<[Row, Row]>): Keyed<number> => [customer, order[2] as number]),
        ivm.reduce(sumAndCount),
        ivm.output((message: InstanceType<typeof MultiSet<Keyed<[number, number]>>>) => {
          for (const [[customer, [sum, count]], weight] of message.getInner()) view.addTotal(customer, sum, count, weight);
        }),
      );
      senders.set('orders', sendKeyed(orders, 1));
      senders.set('customers', sendKeyed(customers, 0));
      break;
    }
    case 'distinct': {
      // Both streams keyed by order id, projected to [customer_id, customer_id], concatenated,
      // then distinct by customer_id.
      const orders = graph.newInput<Keyed<Row>>();
      const orders2 = graph.newInput<Keyed<Row>>();
      const project = () => ivm.map(([, row]: Keyed<Row>): Keyed<number> => [row[1] as number, row[1] as number]);
      const projected2 = orders2.pipe(project());
      orders.pipe(
        project(),
        ivm.concat(projected2),
        ivm.distinct(([customer]: Keyed<number>) => customer),
        ivm.output((message: InstanceType<typeof MultiSet<Keyed<number>>>) => {
          for (const [[, customer], weight] of message.getInner()) view.addCustomer(customer, weight);
        }),
      );
      senders.set('orders', sendKeyed(orders, 0));
      senders.set('orders2', sendKeyed(orders2, 0));
      break;
    }
    case 'topk': {
      // Orders keyed by id, grouped by customer_id in the grouped top-k operator.
      const orders = graph.newInput<Keyed<Row>>();
      orders.pipe(
        ivm.groupedTopKWithFractionalIndex<number, Row>(byAmountDescending, { limit: 10, groupKeyFn: (_id, row) => row[1] }),
        ivm.output((message: InstanceType<typeof MultiSet<[number, [Row, string]]>>) => {
          for (const [[, [row]], weight] of message.getInner()) view.addOrder(row, weight);
        }),
      );
      senders.set('orders', sendKeyed(orders, 0));
      break;
    }
  }
  graph.finalize();
  return {
    step(delta) {
      for (const part of delta) senders.get(part.input)!(part);
      graph.run();
    },
  };
}

interface Drainable {
  drain(): unknown;
}

/**
 * d2ts 0.1.8's D2 keeps a reader on every input and every operator's output (`#streams`) that
 * nothing ever reads: every message sent stays queued, and each send `unshift`s into those
 * ever-longer arrays, so a step costs O(steps so far) — at 100,000 single-row steps that cost
 * dwarfs the dataflow. Unless `asPublished`, this captures those readers so the adapter can drain
 * them after each step (inside the timed step), which only ever makes d2ts faster and smaller.
 */
function orphanReaders(d2ts: D2tsModule, graph: InstanceType<D2tsModule['D2']>, asPublished: boolean): { newInput<T>(): ReturnType<typeof graph.newInput<T>>; readers: Drainable[] } {
  const readers: Drainable[] = [];
  if (asPublished) return { newInput: () => graph.newInput(), readers };
  // Operators register their output's orphan reader through graph.addStream.
  const addStream = graph.addStream.bind(graph);
  graph.addStream = (reader) => {
    readers.push(reader);
    addStream(reader);
  };
  // newInput registers its orphan reader with the first connectReader call it makes.
  let owner = Object.getPrototypeOf(new d2ts.D2({ initialFrontier: 0 }).newInput()) as { connectReader(): Drainable } | null;
  while (owner && !Object.hasOwn(owner, 'connectReader')) owner = Object.getPrototypeOf(owner) as typeof owner;
  if (!owner) throw new Error('d2ts: StreamBuilder.connectReader was not found; run with --d2ts-as-published');
  const connectReader = owner.connectReader;
  const target = owner;
  return {
    newInput<T>() {
      let first = true;
      target.connectReader = function (this: unknown) {
        const reader = connectReader.call(this);
        if (first) readers.push(reader);
        first = false;
        return reader;
      };
      try {
        return graph.newInput<T>();
      } finally {
        target.connectReader = connectReader;
      }
    },
    readers,
  };
}

function d2tsAdapter(d2ts: D2tsModule, scenario: Scenario, view: View, asPublished: boolean): Adapter {
  const { D2, MultiSet, MessageType } = d2ts;
  const graph = new D2({ initialFrontier: 0 });
  const orphans = orphanReaders(d2ts, graph, asPublished);
  type Input = ReturnType<typeof graph.newInput<Keyed<Row>>>;
  const inputs = new Map<string, { input: Input; column: number }>();
  switch (scenario.workload) {
    case 'join': {
      const orders = orphans.newInput<Keyed<Row>>();
      const customers = orphans.newInput<Keyed<Row>>();
      const joined = orders.pipe(d2ts.join(customers, 'inner')) as unknown as ReturnType<typeof graph.newInput<Keyed<[Row, Row]>>>;
      joined.pipe(
        d2ts.map(([customer, [order]]: Keyed<[Row, Row]>): Keyed<number> => [customer, order[2] as number]),
        d2ts.reduce(sumAndCount),
        d2ts.output((message) => {
          if (message.type !== MessageType.DATA) return;
          for (const [[customer, [sum, count]], weight] of message.data.collection.getInner() as Array<[Keyed<[number, number]>, number]>) view.addTotal(customer, sum, count, weight);
        }),
      );
      inputs.set('orders', { input: orders, column: 1 });
      inputs.set('customers', { input: customers, column: 0 });
      break;
    }
    case 'distinct': {
      // d2ts's distinct is per key: key by customer_id with no value.
      const orders = orphans.newInput<Keyed<Row>>();
      const orders2 = orphans.newInput<Keyed<Row>>();
      const project = () => d2ts.map(([, row]: Keyed<Row>): Keyed<null> => [row[1] as number, null]);
      const projected2 = orders2.pipe(project());
      orders.pipe(
        project(),
        d2ts.concat(projected2),
        d2ts.distinct(),
        d2ts.output((message) => {
          if (message.type !== MessageType.DATA) return;
          for (const [[customer], weight] of message.data.collection.getInner() as Array<[Keyed<null>, number]>) view.addCustomer(customer, weight);
        }),
      );
      inputs.set('orders', { input: orders, column: 0 });
      inputs.set('orders2', { input: orders2, column: 0 });
      break;
    }
    case 'topk': {
      // Orders keyed by customer_id: topK orders each key's values.
      const orders = orphans.newInput<Keyed<Row>>();
      orders.pipe(
        d2ts.topK<number, Row, Keyed<Row>>(byAmountDescending, { limit: 10 }),
        d2ts.output((message) => {
          if (message.type !== MessageType.DATA) return;
          for (const [[, row], weight] of message.data.collection.getInner() as Array<[Keyed<Row>, number]>) view.addOrder(row, weight);
        }),
      );
      inputs.set('orders', { input: orders, column: 1 });
      break;
    }
  }
  graph.finalize();
  let version = 0;
  const all = [...inputs.values()];
  return {
    step(delta) {
      for (const part of delta) {
        const { input, column } = inputs.get(part.input)!;
        input.sendData(version, new MultiSet(keyedBy(part, column)));
      }
      version++;
      // Every input's frontier moves past the version, so that the version completes.
      for (const { input } of all) input.sendFrontier(version);
      graph.run();
      for (const reader of orphans.readers) reader.drain();
    },
  };
}

async function createAdapter(engine: EngineName, scenario: Scenario, view: View, d2tsAsPublished: boolean): Promise<() => Adapter> {
  switch (engine) {
    case 'sluice': {
      const module = await import('../src/engine/index.ts');
      return () => sluiceAdapter(module, scenario, view);
    }
    case 'db-ivm': {
      const module = await import('@tanstack/db-ivm');
      return () => ivmAdapter(module, scenario, view);
    }
    case 'd2ts': {
      const module = await import('@electric-sql/d2ts');
      return () => d2tsAdapter(module, scenario, view, d2tsAsPublished);
    }
  }
}

// ── Checking results ──────────────────────────────────────────────────────────────────────────

/** FNV-1a over 32-bit halves of non-negative integers below 2^53. */
class Digest {
  #hash = 0x811c9dc5;
  add(value: number): void {
    this.#word(value >>> 0);
    this.#word(Math.floor(value / 4294967296) >>> 0);
  }
  #word(word: number): void {
    for (let shift = 0; shift < 32; shift += 8) this.#hash = Math.imul(this.#hash ^ ((word >>> shift) & 0xff), 16777619);
  }
  get value(): string {
    return (this.#hash >>> 0).toString(16).padStart(8, '0');
  }
}

interface Verification {
  /** The view equals the answer computed from the final tables. */
  ok: boolean;
  /** Of the view (not of the expected answer): equal digests, equal outputs. */
  digest: string;
  /** Output groups (join: customers with totals; distinct: customers; topk: orders in a top 10). */
  groups: number;
  mismatches: number;
  examples: string[];
  /** The view of a few fixed customers, for the eye. */
  sample: string[];
}

function verify(scenario: Scenario, view: View): Verification {
  const { sizes, orders } = scenario;
  const digest = new Digest();
  const examples: string[] = [];
  const sample: string[] = [];
  let mismatches = 0;
  let groups = 0;
  const mismatch = (text: string) => {
    mismatches++;
    if (examples.length < 5) examples.push(text);
  };
  const sampleCustomers = new Set([0, 1, 2, Math.floor(sizes.customers / 2), sizes.customers - 1]);
  // Per customer: live orders.
  const byCustomer: Row[][] = Array.from({ length: sizes.customers }, () => []);
  for (const id of orders.live) {
    const row = orders.rows[id]!;
    byCustomer[row[1] as number]!.push(row);
  }
  switch (scenario.workload) {
    case 'join': {
      for (let customer = 0; customer < sizes.customers; customer++) {
        const rows = byCustomer[customer]!;
        let sum = 0;
        for (const row of rows) sum += row[2] as number;
        const present = view.present[customer]!;
        const got = `${present === 1 ? '' : `weight ${present} `}sum ${view.sum[customer]} count ${view.count[customer]}`;
        const want = rows.length > 0 ? `sum ${sum} count ${rows.length}` : 'sum 0 count 0';
        if (rows.length > 0 ? present !== 1 || view.sum[customer] !== sum || view.count[customer] !== rows.length : present !== 0 || view.sum[customer] !== 0 || view.count[customer] !== 0) {
          mismatch(`customer ${customer}: got ${got}, want ${want}`);
        }
        if (present !== 0) {
          groups++;
          digest.add(customer);
          digest.add(present);
          digest.add(view.sum[customer]!);
          digest.add(view.count[customer]!);
        }
        if (sampleCustomers.has(customer)) sample.push(`${customer}: ${got}`);
      }
      break;
    }
    case 'distinct': {
      for (let customer = 0; customer < sizes.customers; customer++) {
        const want = byCustomer[customer]!.length > 0 ? 1 : 0;
        const present = view.present[customer]!;
        if (present !== want) mismatch(`customer ${customer}: weight ${present}, want ${want}`);
        if (present !== 0) {
          groups++;
          digest.add(customer);
          digest.add(present);
        }
        if (sampleCustomers.has(customer)) sample.push(`${customer}: ${present}`);
      }
      break;
    }
    case 'topk': {
      const expected = new Uint8Array(scenario.orderIdLimit);
      for (let customer = 0; customer < sizes.customers; customer++) {
        const top = byCustomer[customer]!.sort(byAmountDescending).slice(0, 10);
        for (const row of top) expected[row[0] as number] = 1;
        if (sampleCustomers.has(customer)) {
          const ids = top.map((row) => row[0] as number).filter((id) => view.orderWeight[id] === 1);
          sample.push(`${customer}: ${ids.length}/${top.length} of the top 10 present (${top.slice(0, 3).map((row) => `#${row[0]} ${row[2]}`).join(', ')}, …)`);
        }
      }
      for (let id = 0; id < scenario.orderIdLimit; id++) {
        const weight = view.orderWeight[id]!;
        if (weight !== expected[id]) {
          mismatch(`order ${id}: weight ${weight} in the output, want ${expected[id]} (${JSON.stringify(orders.rows[id] ?? 'deleted')})`);
        } else if (weight === 1) {
          const row = orders.rows[id]!;
          if (view.orderCustomer[id] !== row[1] || view.orderAmount[id] !== row[2]) mismatch(`order ${id}: customer ${view.orderCustomer[id]} amount ${view.orderAmount[id]}, want ${row[1]} ${row[2]}`);
        }
        if (weight !== 0) {
          groups++;
          digest.add(id);
          digest.add(weight);
          digest.add(view.orderCustomer[id]!);
          digest.add(view.orderAmount[id]!);
        }
      }
      break;
    }
  }
  return { ok: mismatches === 0, digest: digest.value, groups, mismatches, examples, sample };
}

// ── One engine on one workload (a child process) ──────────────────────────────────────────────

interface ChildResult {
  engine: EngineName;
  workload: Workload;
  rowsLoaded: number;
  loadSeconds: number;
  heapBaselineBytes: number;
  heapAfterLoadBytes: number;
  bytesPerRow: number;
  heapEndBytes: number;
  peakRssBytes: number;
  updates: number;
  updateSeconds: number;
  updateUsP50: number;
  updateUsP99: number;
  updateUsMax: number;
  batches: number;
  batchChanges: number;
  batchRows: number;
  batchSeconds: number;
  batchMsP50: number;
  outputRows: number;
  generateSeconds: number;
  verification: Verification;
}

function percentile(sorted: Float64Array, fraction: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(fraction * sorted.length) - 1))]!;
}

function collectGarbage(): void {
  const gc = (globalThis as { gc?: () => void }).gc!;
  gc();
  gc();
}


async function runChild(engine: EngineName, workload: Workload, settings: Settings): Promise<void> {
  const sizes: Sizes = settings;
  if (typeof (globalThis as { gc?: unknown }).gc !== 'function') {
    // Memory is measured after a full collection: run again with the collector exposed.
    const code = await new Promise<number>((resolve, reject) => {
      const child = spawn(process.execPath, ['--expose-gc', ...process.execArgv, ...process.argv.slice(1)], { stdio: 'inherit' });
      child.on('error', reject);
      child.on('exit', (exitCode, signal) => resolve(exitCode ?? (signal ? 1 : 0)));
    });
    process.exitCode = code;
    return;
  }
  const label = `${workload} ${engine}`;
  const generateStarted = performance.now();
  const scenario = buildScenario(workload, sizes);
  const generateSeconds = (performance.now() - generateStarted) / 1000;
  const view = new View(scenario);
  const build = await createAdapter(engine, scenario, view, settings.d2tsAsPublished);

  collectGarbage();
  const heapBaselineBytes = process.memoryUsage().heapUsed;
  const adapter = build();
  progress(`  ${label}: loading ${scenario.rowsLoaded.toLocaleString('en-US')} rows in one step`);
  const loadStarted = performance.now();
  adapter.step(scenario.load);
  const loadSeconds = (performance.now() - loadStarted) / 1000;
  collectGarbage();
  const heapAfterLoadBytes = process.memoryUsage().heapUsed;

  progress(`  ${label}: loaded in ${loadSeconds.toFixed(2)} s; ${scenario.warmup.length.toLocaleString('en-US')} warm-up + ${scenario.updates.length.toLocaleString('en-US')} single-row updates`);
  for (const delta of scenario.warmup) adapter.step(delta);
  const latencies = new Float64Array(scenario.updates.length);
  let updateMs = 0;
  for (let i = 0; i < scenario.updates.length; i++) {
    const delta = scenario.updates[i]!;
    const started = performance.now();
    adapter.step(delta);
    const elapsed = performance.now() - started;
    latencies[i] = elapsed;
    updateMs += elapsed;
  }
  latencies.sort();
  collectGarbage();

  progress(`  ${label}: updates at ${(scenario.updates.length / (updateMs / 1000)).toFixed(0)}/s; ${scenario.batches.length} batches of ${sizes.batchSize} changes`);
  const batchTimes = new Float64Array(scenario.batches.length);
  let batchMs = 0;
  for (let i = 0; i < scenario.batches.length; i++) {
    const started = performance.now();
    adapter.step(scenario.batches[i]!);
    const elapsed = performance.now() - started;
    batchTimes[i] = elapsed;
    batchMs += elapsed;
  }
  batchTimes.sort();
  const heapEndBytes = process.memoryUsage().heapUsed;

  const verification = verify(scenario, view);
  progress(`  ${label}: batches at ${(scenario.batchChanges / (batchMs / 1000)).toFixed(0)} changes/s; result ${verification.ok ? 'correct' : `WRONG (${verification.mismatches} mismatches)`}`);
  const result: ChildResult = {
    engine,
    workload,
    rowsLoaded: scenario.rowsLoaded,
    loadSeconds,
    heapBaselineBytes,
    heapAfterLoadBytes,
    bytesPerRow: (heapAfterLoadBytes - heapBaselineBytes) / scenario.rowsLoaded,
    heapEndBytes,
    peakRssBytes: process.resourceUsage().maxRSS * 1024,
    updates: scenario.updates.length,
    updateSeconds: updateMs / 1000,
    updateUsP50: percentile(latencies, 0.5) * 1000,
    updateUsP99: percentile(latencies, 0.99) * 1000,
    updateUsMax: percentile(latencies, 1) * 1000,
    batches: scenario.batches.length,
    batchChanges: scenario.batchChanges,
    batchRows: scenario.batchRows,
    batchSeconds: batchMs / 1000,
    batchMsP50: percentile(batchTimes, 0.5),
    outputRows: view.rows,
    generateSeconds,
    verification,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

// ── The parent: children in turn, then the tables ─────────────────────────────────────────────

const mainPath = fileURLToPath(new URL('./main.ts', import.meta.url));

interface Outcome {
  engine: EngineName;
  workload: Workload;
  result?: ChildResult;
  error?: string;
}

function sizeArgs(sizes: Sizes): string[] {
  return [
    '--orders', String(sizes.orders),
    '--customers', String(sizes.customers),
    '--updates', String(sizes.updates),
    '--warmup', String(sizes.warmup),
    '--batches', String(sizes.batches),
    '--batch-size', String(sizes.batchSize),
    '--seed', String(sizes.seed),
  ];
}

/** Children still running: killed on the way out (Ctrl-C included). */
const running = new Set<ReturnType<typeof spawn>>();

function spawnChild(engine: EngineName, workload: Workload, settings: Settings): Promise<Outcome> {
  const nodeArgs = ['--expose-gc', `--max-old-space-size=${settings.heapMegabytes}`];
  if (settings.cpuProfileDir) nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${settings.cpuProfileDir}`, `--cpu-prof-name=${workload}-${engine}.cpuprofile`);
  const args = [...nodeArgs, mainPath, 'engine', '--child', engine, '--workload', workload, ...sizeArgs(settings), ...(settings.d2tsAsPublished ? ['--d2ts-as-published'] : [])];
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    running.add(child);
    let stdout = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (text: string) => (stdout += text));
    child.on('error', (error) => {
      running.delete(child);
      resolve({ engine, workload, error: error.message });
    });
    child.on('close', (code, signal) => {
      running.delete(child);
      const last = stdout.trim().split('\n').pop() ?? '';
      if (code === 0 && last.startsWith('{')) return resolve({ engine, workload, result: JSON.parse(last) as ChildResult });
      resolve({ engine, workload, error: `the child exited with ${signal ?? `code ${code}`}${last ? `: ${last.slice(0, 200)}` : ''}` });
    });
  });
}

interface Metrics {
  loadRowsPerSecond: number;
  updatesPerSecond: number;
  batchChangesPerSecond: number;
}

function metricsOf(result: ChildResult): Metrics {
  return {
    loadRowsPerSecond: result.rowsLoaded / result.loadSeconds,
    updatesPerSecond: result.updates / result.updateSeconds,
    batchChangesPerSecond: result.batchChanges / result.batchSeconds,
  };
}

const throughputs: Array<[keyof Metrics, string]> = [
  ['loadRowsPerSecond', 'load rows/s'],
  ['updatesPerSecond', 'single-row updates/s'],
  ['batchChangesPerSecond', 'batch changes/s'],
];

async function runParent(settings: Settings): Promise<void> {
  const interrupted = () => {
    for (const child of running) child.kill('SIGKILL');
    process.exit(130);
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  try {
    await runAll(settings);
  } finally {
    process.off('SIGINT', interrupted);
    process.off('SIGTERM', interrupted);
  }
}

async function runAll(settings: Settings): Promise<void> {
  progress(
    `engine bench: ${formatNumber(settings.orders)} orders, ${formatNumber(settings.customers)} customers; ` +
      `${formatNumber(settings.updates)} single-row updates (after ${formatNumber(settings.warmup)} warm-up); ` +
      `${settings.batches} batches of ${formatNumber(settings.batchSize)} changes; seed ${settings.seed}; one child process per engine and workload`,
  );
  if (settings.engines.includes('d2ts')) {
    progress(
      settings.d2tsAsPublished
        ? 'd2ts runs as published: its D2 keeps an undrained reader per stream, so every message stays queued and each step costs O(steps so far)'
        : "d2ts: the readers its D2 keeps on every stream and never reads are drained after each step (else each step costs O(steps so far)); --d2ts-as-published turns this off",
    );
  }
  const outcomes: Outcome[] = [];
  for (const workload of settings.workloads) {
    progress(`── ${workload}: ${workloadTitles[workload]}`);
    for (const engine of settings.engines) {
      const outcome = await spawnChild(engine, workload, settings);
      if (outcome.error) progress(`  ${workload} ${engine}: FAILED: ${outcome.error}`);
      outcomes.push(outcome);
    }
  }

  // Correctness: each engine against the answer from the final tables, and against each other.
  const alarms: string[] = [];
  const agreement = new Map<Workload, boolean>();
  for (const workload of settings.workloads) {
    const done = outcomes.filter((each) => each.workload === workload && each.result);
    for (const { engine, result } of done) {
      const check = result!.verification;
      if (!check.ok) alarms.push(`MISMATCH: ${workload} ${engine}: ${check.mismatches} of its final outputs differ from the answer computed from the final tables, e.g. ${check.examples.join('; ')}`);
    }
    const digests = new Set(done.map((each) => each.result!.verification.digest));
    agreement.set(workload, digests.size <= 1);
    if (digests.size > 1) {
      alarms.push(`MISMATCH: ${workload}: the engines' final outputs differ: ${done.map(({ engine, result }) => `${engine} ${result!.verification.digest} (${result!.verification.groups} groups)`).join(', ')}`);
      for (const { engine, result } of done) alarms.push(`  ${engine} sample: ${result!.verification.sample.join(' | ')}`);
    }
  }
  for (const { engine, workload, error } of outcomes) if (error) alarms.push(`FAILED: ${workload} ${engine}: ${error}`);
  for (const alarm of alarms) {
    process.stderr.write(`!!! ${alarm}\n`);
    process.stdout.write(`!!! ${alarm}\n`);
  }

  // The main table.
  const resultFor = (workload: Workload, engine: EngineName) => outcomes.find((each) => each.workload === workload && each.engine === engine)?.result;
  const lines: string[][] = [];
  for (const outcome of outcomes) {
    const result = outcome.result;
    if (!result) {
      lines.push([outcome.workload, outcome.engine, 'failed', '', '', '', '', '', '', '', '', '']);
      continue;
    }
    const metrics = metricsOf(result);
    lines.push([
      outcome.workload,
      outcome.engine,
      formatNumber(result.loadSeconds, 2),
      formatNumber(metrics.loadRowsPerSecond),
      formatNumber(result.updateUsP50, 1),
      formatNumber(result.updateUsP99, 1),
      formatNumber(result.updateUsMax, 0),
      formatNumber(metrics.updatesPerSecond),
      formatNumber(metrics.batchChangesPerSecond),
      formatNumber(result.bytesPerRow, 0),
      formatNumber(result.peakRssBytes / 1e6, 0),
      result.verification.ok && agreement.get(outcome.workload) ? 'ok' : 'MISMATCH',
    ]);
  }
  printTable(['workload', 'engine', 'load s', 'load rows/s', 'upd p50 µs', 'upd p99 µs', 'upd max µs', 'updates/s', 'batch chg/s', 'heap B/row', 'peak RSS MB', 'result'], lines);
  process.stdout.write('\n');

  // Ratios of each throughput, and memory.
  const ratioLines: string[][] = [];
  interface Ratio {
    workload: Workload;
    metric: string;
    sluice?: number;
    dbIvm?: number;
    d2ts?: number;
    vsDbIvm?: number;
    vsD2ts?: number;
  }
  const ratios: Ratio[] = [];
  for (const workload of settings.workloads) {
    const sluice = resultFor(workload, 'sluice');
    const dbIvm = resultFor(workload, 'db-ivm');
    const d2ts = resultFor(workload, 'd2ts');
    for (const [key, metric] of throughputs) {
      const values = [sluice, dbIvm, d2ts].map((result) => (result ? metricsOf(result)[key] : undefined));
      ratios.push({ workload, metric, sluice: values[0], dbIvm: values[1], d2ts: values[2], vsDbIvm: values[0] !== undefined && values[1] ? values[0] / values[1] : undefined, vsD2ts: values[0] !== undefined && values[2] ? values[0] / values[2] : undefined });
    }
    const memory = [sluice, dbIvm, d2ts].map((result) => result?.bytesPerRow);
    ratios.push({ workload, metric: 'heap bytes/row', sluice: memory[0], dbIvm: memory[1], d2ts: memory[2], vsDbIvm: memory[0] !== undefined && memory[1] ? memory[0] / memory[1] : undefined, vsD2ts: memory[0] !== undefined && memory[2] ? memory[0] / memory[2] : undefined });
  }
  for (const ratio of ratios) {
    const memory = ratio.metric === 'heap bytes/row';
    const mark = (value: number | undefined, want: number) => (value === undefined ? '' : `${formatNumber(value, 2)}×${memory ? (value <= 1 ? '' : ' ✗') : value >= want ? '' : ' ✗'}`);
    ratioLines.push([ratio.workload, ratio.metric, formatNumber(ratio.sluice), formatNumber(ratio.dbIvm), formatNumber(ratio.d2ts), mark(ratio.vsDbIvm, 3), memory ? (ratio.vsD2ts === undefined ? '' : `${formatNumber(ratio.vsD2ts, 2)}×`) : mark(ratio.vsD2ts, 10)]);
  }
  printTable(['workload', 'metric', 'sluice', 'db-ivm', 'd2ts', 'sluice/db-ivm', 'sluice/d2ts'], ratioLines);
  process.stdout.write('(✗: short of the target — throughput ≥ 3× db-ivm and ≥ 10× d2ts; heap bytes/row ≤ db-ivm\'s)\n\n');

  // Targets.
  const throughputRatios = ratios.filter((ratio) => ratio.metric !== 'heap bytes/row');
  const weakest = (key: 'vsDbIvm' | 'vsD2ts') => {
    const known = throughputRatios.filter((ratio) => ratio[key] !== undefined);
    if (known.length === 0) return undefined;
    return known.reduce((a, b) => (b[key]! < a[key]! ? b : a));
  };
  const verdict = (met: boolean | undefined) => (met === undefined ? 'not measured' : met ? 'met' : 'NOT MET');
  const weakestDbIvm = weakest('vsDbIvm');
  const weakestD2ts = weakest('vsD2ts');
  const sluiceResults = settings.workloads.map((workload) => resultFor(workload, 'sluice')).filter((result) => result !== undefined);
  const worstP99 = sluiceResults.length ? sluiceResults.reduce((a, b) => (b.updateUsP99 > a.updateUsP99 ? b : a)) : undefined;
  const memoryRatios = ratios.filter((ratio) => ratio.metric === 'heap bytes/row' && ratio.vsDbIvm !== undefined);
  const worstMemory = memoryRatios.length ? memoryRatios.reduce((a, b) => (b.vsDbIvm! > a.vsDbIvm! ? b : a)) : undefined;
  const correct = outcomes.every((each) => each.result?.verification.ok) && [...agreement.values()].every(Boolean);
  const targets = {
    throughputVsDbIvm: { want: '>= 3 (every throughput, every workload)', weakest: weakestDbIvm ? `${weakestDbIvm.workload} ${weakestDbIvm.metric}` : null, actual: round(weakestDbIvm?.vsDbIvm, 2) ?? null, met: weakestDbIvm ? weakestDbIvm.vsDbIvm! >= 3 : null },
    throughputVsD2ts: { want: '>= 10 (every throughput, every workload)', weakest: weakestD2ts ? `${weakestD2ts.workload} ${weakestD2ts.metric}` : null, actual: round(weakestD2ts?.vsD2ts, 2) ?? null, met: weakestD2ts ? weakestD2ts.vsD2ts! >= 10 : null },
    updateUsP99: { want: '<= 50 (every workload)', worst: worstP99?.workload ?? null, actual: round(worstP99?.updateUsP99, 1) ?? null, met: worstP99 ? worstP99.updateUsP99 <= 50 : null },
    bytesPerRowVsDbIvm: { want: "<= 1 (sluice's heap bytes/row over db-ivm's, every workload)", worst: worstMemory?.workload ?? null, actual: round(worstMemory?.vsDbIvm, 2) ?? null, met: worstMemory ? worstMemory.vsDbIvm! <= 1 : null },
  };
  const detail = (what: string, value: number | undefined, digits: number, unit: string, where: string | null | undefined) => (value === undefined ? '' : ` (${what} ${formatNumber(value, digits)}${unit}, ${where ?? '–'})`);
  process.stdout.write(
    `targets: throughput ≥ 3× db-ivm ${verdict(targets.throughputVsDbIvm.met ?? undefined)}${detail('weakest', weakestDbIvm?.vsDbIvm, 2, '×', targets.throughputVsDbIvm.weakest)}; ` +
      `throughput ≥ 10× d2ts ${verdict(targets.throughputVsD2ts.met ?? undefined)}${detail('weakest', weakestD2ts?.vsD2ts, 2, '×', targets.throughputVsD2ts.weakest)}; ` +
      `single-row p99 ≤ 50 µs ${verdict(targets.updateUsP99.met ?? undefined)}${detail('worst', worstP99?.updateUsP99, 1, ' µs', worstP99?.workload)}; ` +
      `heap bytes/row ≤ db-ivm's ${verdict(targets.bytesPerRowVsDbIvm.met ?? undefined)}${detail('worst', worstMemory?.vsDbIvm, 2, '×', worstMemory?.workload)}; ` +
      `results ${correct ? 'agree and are correct' : 'DO NOT all agree: see MISMATCH above'}\n`,
  );

  const summary = {
    bench: 'engine',
    config: {
      orders: settings.orders,
      customers: settings.customers,
      updates: settings.updates,
      warmupUpdates: settings.warmup,
      batches: settings.batches,
      batchSize: settings.batchSize,
      seed: settings.seed,
      quick: settings.quick,
      heapMegabytes: settings.heapMegabytes,
      cores: os.availableParallelism(),
      node: process.version,
      isolation: 'one child process per engine and workload, run one after another',
      d2tsOrphanReadersDrained: !settings.d2tsAsPublished,
    },
    results: outcomes.map(({ engine, workload, result, error }) => {
      if (!result) return { workload, engine, error };
      const metrics = metricsOf(result);
      return {
        workload,
        engine,
        rowsLoaded: result.rowsLoaded,
        loadSeconds: round(result.loadSeconds, 3),
        loadRowsPerSecond: round(metrics.loadRowsPerSecond, 0),
        updates: result.updates,
        updateUsP50: round(result.updateUsP50, 2),
        updateUsP99: round(result.updateUsP99, 2),
        updateUsMax: round(result.updateUsMax, 1),
        updatesPerSecond: round(metrics.updatesPerSecond, 0),
        batchChanges: result.batchChanges,
        batchRows: result.batchRows,
        batchMsP50: round(result.batchMsP50, 3),
        batchChangesPerSecond: round(metrics.batchChangesPerSecond, 0),
        heapBytesPerRow: round(result.bytesPerRow, 1),
        heapAfterLoadBytes: result.heapAfterLoadBytes - result.heapBaselineBytes,
        heapEndBytes: result.heapEndBytes - result.heapBaselineBytes,
        peakRssBytes: result.peakRssBytes,
        outputRows: result.outputRows,
        correct: result.verification.ok,
        digest: result.verification.digest,
        groups: result.verification.groups,
        mismatches: result.verification.mismatches,
      };
    }),
    ratios: ratios.map((ratio) => ({ workload: ratio.workload, metric: ratio.metric, sluice: round(ratio.sluice, 1), dbIvm: round(ratio.dbIvm, 1), d2ts: round(ratio.d2ts, 1), sluiceOverDbIvm: round(ratio.vsDbIvm, 3), sluiceOverD2ts: round(ratio.vsD2ts, 3) })),
    targets,
    correct,
  };
  process.stdout.write(`${JSON.stringify(summary)}\n`);
}

// ── The benchmark ─────────────────────────────────────────────────────────────────────────────

function parseSettings(args: string[]): { settings: Settings; child?: { engine: EngineName; workload: Workload } } {
  const { values } = parseArgs({
    args,
    options: {
      quick: { type: 'boolean', default: false },
      orders: { type: 'string' },
      customers: { type: 'string' },
      updates: { type: 'string' },
      warmup: { type: 'string' },
      batches: { type: 'string' },
      'batch-size': { type: 'string' },
      seed: { type: 'string', default: '20240601' },
      engines: { type: 'string', default: engines.join(',') },
      workloads: { type: 'string', default: workloads.join(',') },
      'heap-mb': { type: 'string', default: '16384' },
      'cpu-prof': { type: 'string' },
      'd2ts-as-published': { type: 'boolean', default: false },
      child: { type: 'string' },
      workload: { type: 'string' },
    },
    strict: true,
  });
  const scale = values.quick ? 10 : 1;
  const updates = integerOption('updates', values.updates, 100_000 / scale);
  const settings: Settings = {
    orders: integerOption('orders', values.orders, 1_000_000 / scale),
    customers: integerOption('customers', values.customers, 100_000 / scale),
    updates,
    warmup: integerOption('warmup', values.warmup, Math.max(100, updates / 100), 0),
    batches: integerOption('batches', values.batches, 100 / scale),
    batchSize: integerOption('batch-size', values['batch-size'], 1_000),
    seed: integerOption('seed', values.seed, 0, 0),
    engines: values.engines.split(',') as EngineName[],
    workloads: values.workloads.split(',') as Workload[],
    heapMegabytes: integerOption('heap-mb', values['heap-mb'], 16384),
    cpuProfileDir: values['cpu-prof'],
    quick: values.quick,
    d2tsAsPublished: values['d2ts-as-published'],
  };
  for (const engine of settings.engines) if (!engines.includes(engine)) throw new Error(`--engines lists engines (${engines.join(', ')}), not ${engine}`);
  for (const workload of settings.workloads) if (!workloads.includes(workload)) throw new Error(`--workloads lists workloads (${workloads.join(', ')}), not ${workload}`);
  if (settings.batchSize * 0.4 > settings.orders) throw new Error('--batch-size is too large for --orders: a batch would delete more orders than there are');
  if (values.child === undefined) return { settings };
  const engine = values.child as EngineName;
  const workload = values.workload as Workload;
  if (!engines.includes(engine) || !workloads.includes(workload)) throw new Error(`--child needs an engine (${engines.join(', ')}) and --workload one of ${workloads.join(', ')}`);
  return { settings, child: { engine, workload } };
}

export async function run(args: string[]): Promise<void> {
  const { settings, child } = parseSettings(args);
  if (child) return runChild(child.engine, child.workload, settings);
  return runParent(settings);
}
