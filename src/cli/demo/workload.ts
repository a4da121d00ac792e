/**
 * The live workload of `sluice demo`: an online shop's events for the tables of `shop.sql`
 * (customers, products, orders, order_status), as JSON-friendly rows ready for `insert` or
 * `POST /v1/tables/NAME/events`.
 *
 *   const shop = new ShopWorkload(42);
 *   for (const { table, rows } of shop.initial()) await db.insert(table, rows);   // the catalogue
 *   for (const { table, rows } of shop.next(2000)) await db.insert(table, rows);  // 2,000 events
 *
 * Each event is one row: mostly a new order or a status event of an earlier order (placed → paid
 * → shipped → delivered, or → cancelled), now and then a price change (the whole product row
 * again: an upsert) or a new customer. Products carry realistic titles and descriptions, some
 * with accented words ("crème", "café"), for the search sink to show off.
 *
 * Invariants:
 * - Deterministic: the events are a function of the seed alone (a seeded generator and a
 *   simulated clock; never Math.random or the wall clock), whatever the sizes of next()'s calls.
 * - Events are a discrete-event simulation: each happens at its own simulated time, in time order
 *   (`placed_at`, `at` and `signed_up` of new customers never decrease from one event to the next).
 * - Batches are grouped by table in dependency order (customers, products, orders,
 *   order_status), each in event order and at most `batchRowsMax` rows: applying the batches in
 *   turn never refers to a customer, product or order not yet written.
 * - Per order, status events follow the lifecycle with strictly increasing `at`, the first
 *   being 'placed' at the order's `placed_at`.
 * - numeric columns are strings with two decimals ("19.99"); timestamps are ISO 8601 strings.
 */

export interface TableBatch {
  table: string;
  rows: Record<string, unknown>[];
}

export interface ShopWorkloadOptions {
  /** Customers in the initial catalogue (1,000 unless given). */
  customers?: number;
  /** Products in the initial catalogue (2,000 unless given). */
  products?: number;
}

export type OrderStatus = 'placed' | 'paid' | 'shipped' | 'delivered' | 'cancelled';

/** The statuses that may follow each status; an order's first status is 'placed'. */
export const orderLifecycle: Readonly<Record<OrderStatus, readonly OrderStatus[]>> = {
  placed: ['paid', 'cancelled'],
  paid: ['shipped', 'cancelled'],
  shipped: ['delivered'],
  delivered: [],
  cancelled: [],
};

/** The most rows in one batch. */
export const batchRowsMax = 1000;

/** The tables, in the order batches are returned (each refers only to those before it). */
export const shopTables = ['customers', 'products', 'orders', 'order_status'] as const;

/** The simulated clock starts here; customers signed up in the two years before. */
const clockStartMs = Date.UTC(2025, 0, 6, 8, 0, 0);
const second = 1000;
/**
 * Mean simulated times between new orders, new customers and price changes. Each order brings
 * about four status events, so about one event per simulated second: 80 % status events, 19 %
 * orders, 1 % price changes and a few new customers.
 */
const orderGapMsMean = 5 * second;
const customerGapMsMean = 300 * second;
const priceChangeGapMsMean = 100 * second;

interface Customer {
  id: number;
  name: string;
  email: string;
  country: string;
  signed_up: string;
}

interface Product {
  id: number;
  title: string;
  description: string;
  category: string;
  priceCents: number;
}

interface StatusDue {
  dueMs: number;
  sequence: number;
  orderId: number;
  status: OrderStatus;
}

export class ShopWorkload {
  readonly #random: () => number;
  readonly #customers: Customer[] = [];
  readonly #products: Product[] = [];
  /** Products by popularity: orders pick early entries far more often (a skewed, Zipf-like mix). */
  readonly #popularity: number[];
  readonly #due = new MinHeap<StatusDue>((a, b) => a.dueMs - b.dueMs || a.sequence - b.sequence);
  #clockMs = clockStartMs;
  #nextOrderMs: number;
  #nextCustomerMs: number;
  #nextPriceChangeMs: number;
  #nextOrderId = 1;
  #sequence = 0;

  constructor(seed = 1, options: ShopWorkloadOptions = {}) {
    this.#random = mulberry32(seed);
    const customers = options.customers ?? 1000;
    const products = options.products ?? 2000;
    for (let i = 0; i < customers; i++) this.#customers.push(this.#newCustomer(clockStartMs - Math.floor(this.#random() * 730 * 86_400_000)));
    for (let id = 1; id <= products; id++) this.#products.push(newProduct(id, this.#random));
    this.#popularity = this.#products.map((p) => p.id);
    shuffle(this.#popularity, this.#random);
    this.#nextOrderMs = clockStartMs + this.#gapMs(orderGapMsMean);
    this.#nextCustomerMs = clockStartMs + this.#gapMs(customerGapMsMean);
    this.#nextPriceChangeMs = clockStartMs + this.#gapMs(priceChangeGapMsMean);
  }

  /** The catalogue to load before any event: every customer and product, in batches. */
  initial(): TableBatch[] {
    return [...batches('customers', this.#customers.map(customerRow)), ...batches('products', this.#products.map(productRow))];
  }

  /** The next `count` events, grouped by table (see the invariants above). */
  next(count: number): TableBatch[] {
    const rows = new Map<string, Record<string, unknown>[]>(shopTables.map((table) => [table, []]));
    for (let i = 0; i < count; i++) {
      const { table, row } = this.#event();
      rows.get(table)!.push(row);
    }
    return shopTables.flatMap((table) => batches(table, rows.get(table)!));
  }

  /** The earliest of the pending happenings: a status falling due, an order, a customer or a price change. */
  #event(): { table: string; row: Record<string, unknown> } {
    const due = this.#due.peek();
    const nextMs = Math.min(due?.dueMs ?? Infinity, this.#nextOrderMs, this.#nextCustomerMs, this.#nextPriceChangeMs);
    this.#clockMs = nextMs;
    if (due && due.dueMs === nextMs) {
      this.#due.pop();
      this.#scheduleAfter(due);
      return { table: 'order_status', row: { order_id: due.orderId, status: due.status, at: iso(due.dueMs) } };
    }
    if (this.#nextCustomerMs === nextMs) {
      this.#nextCustomerMs += this.#gapMs(customerGapMsMean);
      const customer = this.#newCustomer(this.#clockMs);
      this.#customers.push(customer);
      return { table: 'customers', row: customerRow(customer) };
    }
    if (this.#nextPriceChangeMs === nextMs) {
      this.#nextPriceChangeMs += this.#gapMs(priceChangeGapMsMean);
      const product = this.#products[Math.floor(this.#random() * this.#products.length)]!;
      product.priceCents = changedPrice(product.priceCents, this.#random);
      return { table: 'products', row: productRow(product) };
    }
    this.#nextOrderMs += this.#gapMs(orderGapMsMean);
    return { table: 'orders', row: this.#newOrder() };
  }

  /** The time to the next of a kind of happening: exponential (a Poisson process), at least 1 ms. */
  #gapMs(meanMs: number): number {
    return 1 + Math.floor(-Math.log(1 - this.#random()) * meanMs);
  }

  #newOrder(): Record<string, unknown> {
    const id = this.#nextOrderId++;
    // Skewed picks: a few customers and products account for much of the business.
    const customer = this.#customers[Math.floor(this.#customers.length * this.#random() ** 1.6)]!;
    const product = this.#products[this.#popularity[Math.floor(this.#popularity.length * this.#random() ** 2.5)]! - 1]!;
    const quantity = pick([1, 1, 1, 1, 1, 1, 1, 2, 2, 3], this.#random) + (this.#random() < 0.02 ? 2 : 0);
    this.#schedule(this.#clockMs, id, 'placed');
    return { id, customer_id: customer.id, product_id: product.id, quantity, amount: money(product.priceCents * quantity), placed_at: iso(this.#clockMs) };
  }

  /** Schedules the status that follows `done` (a terminal status schedules nothing). */
  #scheduleAfter(done: StatusDue): void {
    const r = this.#random();
    const seconds = (low: number, high: number) => (low + this.#random() * (high - low)) * second;
    switch (done.status) {
      case 'placed':
        if (r < 0.93) this.#schedule(done.dueMs + seconds(5, 60), done.orderId, 'paid');
        else this.#schedule(done.dueMs + seconds(30, 600), done.orderId, 'cancelled');
        break;
      case 'paid':
        if (r < 0.98) this.#schedule(done.dueMs + seconds(120, 900), done.orderId, 'shipped');
        else this.#schedule(done.dueMs + seconds(60, 600), done.orderId, 'cancelled');
        break;
      case 'shipped':
        this.#schedule(done.dueMs + seconds(600, 3600), done.orderId, 'delivered');
        break;
      case 'delivered':
      case 'cancelled':
        break;
    }
  }

  #schedule(dueMs: number, orderId: number, status: OrderStatus): void {
    this.#due.push({ dueMs: Math.floor(dueMs), sequence: this.#sequence++, orderId, status });
  }

  #newCustomer(signedUpMs: number): Customer {
    const id = this.#customers.length + 1;
    const first = pick(firstNames, this.#random);
    const last = pick(lastNames, this.#random);
    return { id, name: `${first} ${last}`, email: `${asciiFold(first)}.${asciiFold(last)}.${id}@example.com`, country: pick(countries, this.#random), signed_up: iso(signedUpMs) };
  }
}

function customerRow(customer: Customer): Record<string, unknown> {
  return { ...customer };
}

function productRow(product: Product): Record<string, unknown> {
  return { id: product.id, title: product.title, description: product.description, category: product.category, price: money(product.priceCents) };
}

function batches(table: string, rows: Record<string, unknown>[]): TableBatch[] {
  const result: TableBatch[] = [];
  for (let i = 0; i < rows.length; i += batchRowsMax) result.push({ table, rows: rows.slice(i, i + batchRowsMax) });
  return result;
}

// ── Products: titles and descriptions ────────────────────────────────────────────────────────

interface Category {
  name: string;
  nouns: readonly string[];
  materials: readonly string[];
  /** Price range in whole currency units. */
  price: readonly [number, number];
}

const woods = ['walnut', 'oak', 'ash', 'beech', 'bamboo', 'teak', 'cherry wood', 'acacia'];
const metals = ['brass', 'steel', 'copper', 'aluminium', 'cast iron', 'zinc'];
const ceramics = ['stoneware', 'porcelain', 'terracotta', 'glass', 'marble', 'enamel'];
const fabrics = ['linen', 'wool', 'cotton', 'velvet', 'bouclé', 'jute', 'cashmere', 'mohair'];

const categories: readonly Category[] = [
  { name: 'lighting', nouns: ['desk lamp', 'floor lamp', 'pendant light', 'table lamp', 'lantern', 'wall sconce', 'reading light'], materials: [...woods, ...metals, 'glass', 'porcelain', 'rattan'], price: [29, 449] },
  { name: 'furniture', nouns: ['armchair', 'dining chair', 'bar stool', 'side table', 'bookshelf', 'bench', 'café table', 'chaise longue', 'étagère', 'coffee table', 'sideboard'], materials: [...woods, 'steel', 'brass', 'velvet', 'bouclé', 'rattan'], price: [59, 1299] },
  { name: 'kitchen', nouns: ['kettle', 'teapot', 'mug', 'espresso cup', 'salad bowl', 'chopping board', 'crêpe pan', 'soufflé dish', 'fondue set', 'café press', 'butter dish', 'carafe'], materials: [...ceramics, 'copper', 'cast iron', 'steel', 'olive wood', 'bamboo'], price: [6, 189] },
  { name: 'textiles', nouns: ['throw blanket', 'cushion', 'rug', 'duvet cover', 'table runner', 'bath towel', 'apron', 'curtain'], materials: fabrics, price: [12, 349] },
  { name: 'decor', nouns: ['vase', 'mirror', 'wall clock', 'candle holder', 'picture frame', 'jardinière', 'bookend', 'tray'], materials: [...ceramics, 'brass', 'copper', 'oak', 'walnut', 'rattan'], price: [9, 259] },
  { name: 'office', nouns: ['notebook', 'pen holder', 'desk organiser', 'letter tray', 'monitor stand', 'filing box'], materials: ['oak', 'walnut', 'bamboo', 'steel', 'brass', 'leather', 'cork', 'recycled paper'], price: [5, 149] },
  { name: 'garden', nouns: ['watering can', 'planter', 'bird feeder', 'garden bench', 'plant stand', 'hanging basket'], materials: ['galvanised steel', 'zinc', 'teak', 'terracotta', 'rattan', 'cast iron'], price: [8, 399] },
];

const colours = ['black', 'white', 'sage green', 'crème', 'écru', 'rosé', 'charcoal', 'ochre', 'navy', 'mustard', 'oat', 'café au lait', 'bordeaux', 'forest green', 'sand', 'slate grey', 'terracotta red', 'ivory'];
const adjectives = ['minimal', 'rustic', 'handmade', 'Nordic', 'vintage', 'compact', 'sculptural', 'classic', 'modern', 'artisan', 'Provençal', 'sturdy', 'elegant', 'timeless', 'matte', 'glazed', 'brushed', 'soft', 'lightweight', 'oversized'];
const uses = [
  'made for slow mornings',
  'for the café corner of your kitchen',
  'perfect for crème brûlée evenings',
  'built for small apartments',
  'for reading late into the night',
  'for the pied-à-terre',
  'for après-ski evenings by the fire',
  'for long Sunday brunches',
  'for the home office',
  'for the balcony garden',
  'for a calm bedroom',
  'for family dinners',
  'for the entrée of a dinner party',
  'for a sunny reading nook',
];
const finishes = [
  'is finished by hand',
  'ages beautifully over the years',
  'comes from certified suppliers',
  'gives it a warm, natural texture',
  'is treated with a food-safe oil',
  'is sanded smooth and left unvarnished',
  'is tested for daily use',
];
const places = ['Lyon', 'Malmö', 'Porto', 'Kraków', 'Zürich', 'São Paulo', 'Montréal', 'Córdoba', 'Kyoto', 'Copenhagen', 'Bruges', 'Reykjavík'];
/** Care advice by material family. */
function cares(material: string): readonly string[] {
  if (fabrics.includes(material)) return ['hand wash only', 'machine washable at 30 degrees', 'dry clean only'];
  if (woods.includes(material) || material === 'olive wood' || material === 'teak') return ['oil it twice a year', 'wipe clean with a damp cloth'];
  if (ceramics.includes(material)) return ['dishwasher safe', 'hand wash recommended'];
  return ['wipe clean with a damp cloth', 'keep out of direct sunlight'];
}
const shortSentences = ['Made in Portugal.', 'Ships flat-packed.', 'Gift wrapped on request.', 'Limited edition.', 'Fully recyclable.', 'Two-year guarantee.', 'Small-batch production.', 'Free returns.'];

const descriptionWordsMin = 15;
const descriptionWordsMax = 40;

function newProduct(id: number, random: () => number): Product {
  const category = pick(categories, random);
  const noun = pick(category.nouns, random);
  const material = pick(category.materials, random);
  const colour = pick(colours, random);
  const adjective = pick(adjectives, random);
  const style = random();
  const title = capitalize(style < 0.5 ? `${material} ${noun}` : style < 0.8 ? `${colour} ${material} ${noun}` : `${adjective} ${material} ${noun}`);
  const [low, high] = category.price;
  // Whole units skewed towards the cheap end, ending in .99 or .49 or .00.
  const units = Math.floor(low + (high - low) * random() ** 2);
  const priceCents = units * 100 + pick([99, 99, 99, 49, 0], random);
  return { id, title, description: description(random, { noun, material, colour, adjective, category }), category: category.name, priceCents };
}

function description(random: () => number, product: { noun: string; material: string; colour: string; adjective: string; category: Category }): string {
  const { noun, material, colour, adjective, category } = product;
  const sentences = [
    () => `The ${material} ${pick(finishes, random)}.`,
    () => `The ${colour} finish pairs well with ${pick(category.materials, random)} and ${pick(colours, random)} accents.`,
    () => `Designed in ${pick(places, random)} and made to last.`,
    () => `Pairs beautifully with our ${pick(pick(categories, random).nouns, random)}.`,
    () => `Care: ${pick(cares(material), random)}.`,
    () => `Measures ${10 + Math.floor(random() * 150)} by ${10 + Math.floor(random() * 90)} centimetres.`,
    () => {
      const other = pick(adjectives, random);
      return `${capitalize(article(other))} ${other} piece ${pick(uses, random)}.`;
    },
  ];
  const text = [capitalize(`${article(adjective)} ${adjective} ${noun} in ${colour} ${material}, ${pick(uses, random)}.`)];
  let words = wordCount(text[0]!);
  const target = descriptionWordsMin + Math.floor(random() * (descriptionWordsMax - descriptionWordsMin + 1));
  // Each kind of sentence at most once, in a random order.
  const order = sentences.map((_, i) => i);
  shuffle(order, random);
  while (words < target) {
    const next = order.pop();
    let sentence = next === undefined ? pick(shortSentences, random) : sentences[next]!();
    if (words + wordCount(sentence) > descriptionWordsMax) {
      if (words >= descriptionWordsMin) break;
      sentence = pick(shortSentences, random); // at most three words: always fits below the minimum
    }
    text.push(sentence);
    words += wordCount(sentence);
  }
  return text.join(' ');
}

function wordCount(text: string): number {
  return text.split(/\s+/).filter((word) => word !== '').length;
}

function article(word: string): string {
  return /^[aeiou]/i.test(word) ? 'an' : 'a';
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** A price moved by up to ±15 %, still ending in 9 cents, never under 0.99. */
function changedPrice(cents: number, random: () => number): number {
  const moved = Math.round(cents * (0.85 + random() * 0.3));
  return Math.max(99, moved - (moved % 10) + 9);
}

// ── Customers ────────────────────────────────────────────────────────────────────────────────

const firstNames = ['Zoë', 'José', 'Amélie', 'Søren', 'Chloé', 'Noémie', 'Björn', 'Inès', 'Jürgen', 'Renée', 'Léa', 'Mateo', 'Olivia', 'Liam', 'Aisha', 'Hiroshi', 'Priya', 'Lukas', 'Ana', 'Elena', 'Marco', 'Fatima', 'Noah', 'Emma', 'Sofia', 'Yusuf', 'Mei', 'Omar', 'Clara', 'Jonas', 'Camille', 'François'];
const lastNames = ['Müller', 'García', 'Dubois', 'Rossi', 'Novák', 'Nguyen', 'Smith', 'Kowalski', 'Jensen', 'Silva', 'Østergaard', 'Peña', 'Lefèvre', 'Schröder', 'Yilmaz', 'Tanaka', 'Okafor', 'Andersson', 'Brown', 'Martínez', 'Costa', 'Ivanović', 'Haddad', 'Kim'];
const countries = ['Germany', 'Germany', 'France', 'France', 'United Kingdom', 'United Kingdom', 'Spain', 'Italy', 'Netherlands', 'Sweden', 'Denmark', 'Poland', 'Portugal', 'United States', 'United States', 'Canada', 'Japan', 'Brazil'];

/** "Søren Müller" → "soren", "muller": for e-mail addresses. */
function asciiFold(name: string): string {
  return name
    .normalize('NFD')
    .replace(/\p{M}/gu, '')
    .replace(/ø/gi, 'o')
    .replace(/æ/gi, 'ae')
    .replace(/ß/g, 'ss')
    .toLowerCase()
    .replace(/[^a-z0-9]/g, '');
}

// ── Values, randomness and the pending-status queue ──────────────────────────────────────────

function money(cents: number): string {
  return `${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, '0')}`;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** mulberry32: a small, fast, seeded generator of floats in [0, 1). */
function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pick<T>(items: readonly T[], random: () => number): T {
  return items[Math.floor(random() * items.length)]!;
}

function shuffle<T>(items: T[], random: () => number): void {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
}

/** A binary min-heap: the status events waiting for their time, earliest first. */
class MinHeap<T> {
  readonly #items: T[] = [];
  readonly #before: (a: T, b: T) => number;

  constructor(before: (a: T, b: T) => number) {
    this.#before = before;
  }

  peek(): T | undefined {
    return this.#items[0];
  }

  push(item: T): void {
    const items = this.#items;
    items.push(item);
    for (let i = items.length - 1; i > 0; ) {
      const parent = (i - 1) >> 1;
      if (this.#before(items[i]!, items[parent]!) >= 0) break;
      [items[i], items[parent]] = [items[parent]!, items[i]!];
      i = parent;
    }
  }

  pop(): T | undefined {
    const items = this.#items;
    const top = items[0];
    const last = items.pop();
    if (items.length > 0 && last !== undefined) {
      items[0] = last;
      for (let i = 0; ; ) {
        const left = 2 * i + 1;
        const right = left + 1;
        let least = i;
        if (left < items.length && this.#before(items[left]!, items[least]!) < 0) least = left;
        if (right < items.length && this.#before(items[right]!, items[least]!) < 0) least = right;
        if (least === i) break;
        [items[i], items[least]] = [items[least]!, items[i]!];
        i = least;
      }
    }
    return top;
  }
}
