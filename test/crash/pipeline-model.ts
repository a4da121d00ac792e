/**
 * The oracle of the pipeline crash test (pipeline-crash.test.ts): every request the client made,
 * where the log put it, and the reference recomputation of tables and views in SQLite.
 *
 * Every request is one append, so one record of its table's topic; the position an append
 * answers ({"table.T": end}, also on a duplicate answer) gives that record's offset (end − 1). Applying
 * each table's requests in offset order is therefore exactly the order the pipeline applied
 * them in, upserts of the same key included, whatever the client's concurrency was.
 */
import { DatabaseSync } from 'node:sqlite';

export type TableName = 'products' | 'orders';

export interface ProductRow {
  id: number;
  title: string;
  /** numeric(10,2) as text with two decimals. */
  price: string;
}

export interface OrderRow {
  id: number;
  product_id: number;
  qty: number;
}

export interface Request {
  key: string;
  table: TableName;
  rows: Array<ProductRow | OrderRow>;
  body: string;
  /** The record's offset in table.TABLE once acknowledged. */
  offset?: number;
  /** The kill cycle in which it was first sent (for messages). */
  cycle: number;
}

export type Frontier = Map<string, number>;

export function decodeToken(token: string): Frontier {
  return new Map(Object.entries(JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as Record<string, number>));
}

export function recordsIn(frontier: Frontier): number {
  let total = 0;
  for (const value of frontier.values()) total += value;
  return total;
}

/** Cents from a numeric's text ("12.30", "-4", "7.5"); refuses more than 2 nonzero decimals. */
export function cents(text: string): bigint {
  const match = /^(-?)(\d+)(?:\.(\d+))?$/.exec(text);
  if (!match) throw new Error(`not a numeric: ${JSON.stringify(text)}`);
  let fraction = match[3] ?? '';
  while (fraction.length > 2 && fraction.endsWith('0')) fraction = fraction.slice(0, -1);
  if (fraction.length > 2) throw new Error(`numeric with more than 2 decimals: ${text}`);
  const value = BigInt(match[2]!) * 100n + BigInt(fraction.padEnd(2, '0') || '0');
  return match[1] ? -value : value;
}

export function money(value: bigint): string {
  const negative = value < 0n;
  const abs = negative ? -value : value;
  return `${negative ? '-' : ''}${abs / 100n}.${(abs % 100n).toString().padStart(2, '0')}`;
}

/** A numeric as text normalized to two decimals. */
export function normalizeNumeric(value: unknown): string {
  return money(cents(String(value)));
}

export interface Reference {
  products: ProductRow[];
  orders: OrderRow[];
  /** id|n|total, ordered by id. */
  revenue: string[];
  /** id|total, in the view's order. */
  top3: string[];
}

/** Applies requests incrementally (per table in offset order) and answers the views. */
export class ReferenceDb {
  readonly #db = new DatabaseSync(':memory:');
  /** Per topic, the offset of the next record not applied. */
  readonly #applied: Frontier = new Map([
    ['table.products', 0],
    ['table.orders', 0],
  ]);
  readonly #byOffset: Map<string, Map<number, Request>>;

  constructor(requests: readonly Request[]) {
    this.#byOffset = indexByOffset(requests);
    this.#db.exec(`
      CREATE TABLE products (id INTEGER PRIMARY KEY, title TEXT NOT NULL, price INTEGER NOT NULL);
      CREATE TABLE orders (id INTEGER PRIMARY KEY, product_id INTEGER NOT NULL, qty INTEGER NOT NULL);
    `);
  }

  /** Brings the tables forward to `frontier` (which must not be behind what was applied). */
  advance(frontier: Frontier): void {
    const product = this.#db.prepare('INSERT OR REPLACE INTO products (id, title, price) VALUES (?, ?, ?)');
    const order = this.#db.prepare('INSERT OR REPLACE INTO orders (id, product_id, qty) VALUES (?, ?, ?)');
    this.#db.exec('BEGIN');
    for (const [topic, end] of frontier) {
      const from = this.#applied.get(topic);
      if (from === undefined) throw new Error(`unknown topic ${topic} in a position`);
      if (end < from) throw new Error(`positions went backwards on ${topic}: ${from} then ${end}`);
      const records = this.#byOffset.get(topic)!;
      for (let offset = from; offset < end; offset++) {
        const request = records.get(offset);
        if (!request) throw new Error(`${topic} offset ${offset} is inside a position but no acknowledged request is there (a record nobody acknowledged, or an append applied twice)`);
        for (const row of request.rows) {
          if (request.table === 'products') {
            const p = row as ProductRow;
            product.run(p.id, p.title, cents(p.price));
          } else {
            const o = row as OrderRow;
            order.run(o.id, o.product_id, o.qty);
          }
        }
      }
      this.#applied.set(topic, end);
    }
    this.#db.exec('COMMIT');
  }

  revenue(): string[] {
    const rows = this.#db.prepare('SELECT p.id AS id, count(*) AS n, sum(o.qty * p.price) AS total FROM orders o JOIN products p ON p.id = o.product_id GROUP BY p.id ORDER BY p.id').all() as Array<{ id: number; n: number; total: number }>;
    return rows.map((r) => `${r.id}|${r.n}|${money(BigInt(r.total))}`);
  }

  snapshot(): Reference {
    const revenueRows = this.#db.prepare('SELECT p.id AS id, sum(o.qty * p.price) AS total FROM orders o JOIN products p ON p.id = o.product_id GROUP BY p.id ORDER BY total DESC, id LIMIT 3').all() as Array<{ id: number; total: number }>;
    return {
      products: (this.#db.prepare('SELECT id, title, price FROM products ORDER BY id').all() as Array<{ id: number; title: string; price: number }>).map((r) => ({ id: r.id, title: r.title, price: money(BigInt(r.price)) })),
      orders: this.#db.prepare('SELECT id, product_id, qty FROM orders ORDER BY id').all() as unknown as OrderRow[],
      revenue: this.revenue(),
      top3: revenueRows.map((r) => `${r.id}|${money(BigInt(r.total))}`),
    };
  }

  close(): void {
    this.#db.close();
  }
}

function indexByOffset(requests: readonly Request[]): Map<string, Map<number, Request>> {
  const out = new Map<string, Map<number, Request>>([
    ['table.products', new Map()],
    ['table.orders', new Map()],
  ]);
  for (const request of requests) {
    if (request.offset === undefined) continue;
    const topic = `table.${request.table}`;
    const other = out.get(topic)!.get(request.offset);
    if (other) throw new Error(`requests ${other.key} and ${request.key} were both acknowledged at ${topic} offset ${request.offset}`);
    out.get(topic)!.set(request.offset, request);
  }
  return out;
}

/** The reference over every acknowledged request (all must be acknowledged, offsets dense). */
export function referenceOverAll(requests: readonly Request[]): Reference {
  const frontier: Frontier = new Map([
    ['table.products', 0],
    ['table.orders', 0],
  ]);
  for (const r of requests) {
    if (r.offset === undefined) continue;
    const topic = `table.${r.table}`;
    frontier.set(topic, Math.max(frontier.get(topic)!, r.offset + 1));
  }
  const db = new ReferenceDb(requests);
  try {
    db.advance(frontier);
    return db.snapshot();
  } finally {
    db.close();
  }
}

// ── The JSONL sink's file ────────────────────────────────────────────────────────────────────

export interface FileLine {
  op: 'insert' | 'delete';
  row: Record<string, unknown>;
  position: string;
  step: number;
  lines?: number;
}

/**
 * Checks the FILE sink's content: whole steps, steps strictly increasing and equal to the records
 * their position includes + 1, each step's last line counting its lines, no (position, op, row)
 * twice, no multiplicity below 0, and (when `requests` is given) after every step the integral equals
 * the reference revenue at that step's position. Returns problems (empty when fine) and the integral.
 */
export function checkSinkFile(text: string, requests: readonly Request[] | undefined, fullCheck: boolean): { problems: string[]; integral: string[]; lastPosition: string | undefined; steps: number } {
  const problems: string[] = [];
  const lines = text.split('\n');
  if (lines.at(-1) !== '') problems.push(`the file does not end with a newline (torn last line: ${JSON.stringify(lines.at(-1)!.slice(0, 80))})`);
  lines.pop();
  const multiplicity = new Map<string, number>();
  const seen = new Set<string>();
  let lastStep = 0;
  let stepLines = 0;
  let stepPosition: string | undefined;
  let lastPosition: string | undefined;
  let steps = 0;
  let reference: ReferenceDb | undefined;
  try {
    if (requests && fullCheck) reference = new ReferenceDb(requests);
    const endStep = (lineNo: number) => {
      steps++;
      if (reference && stepPosition) {
        reference.advance(decodeToken(stepPosition));
        const expected = reference.revenue();
        const actual = integralRows(multiplicity);
        if (!sameList(expected, actual)) problems.push(`after step ${lastStep} (line ${lineNo}, position ${JSON.stringify(Object.fromEntries(decodeToken(stepPosition)))}) the file's integral ${describeDiff(expected, actual)}`);
      }
    };
    for (let i = 0; i < lines.length; i++) {
      const where = `line ${i + 1}`;
      let line: FileLine;
      try {
        line = JSON.parse(lines[i]!) as FileLine;
      } catch {
        problems.push(`${where} is not JSON: ${lines[i]!.slice(0, 120)}`);
        break;
      }
      if (line.step !== lastStep) {
        if (stepLines > 0) problems.push(`${where}: step ${lastStep} ended without its "lines" mark`);
        if (line.step <= lastStep) problems.push(`${where}: step ${line.step} after step ${lastStep} (steps must increase: a replayed step was written again)`);
        lastStep = line.step;
        stepLines = 0;
        stepPosition = line.position;
        const frontier = decodeToken(line.position);
        if (recordsIn(frontier) + 1 !== line.step) problems.push(`${where}: step ${line.step} with a position including ${recordsIn(frontier)} records`);
        if (lastPosition !== undefined) {
          const previous = decodeToken(lastPosition);
          for (const [topic, offset] of previous) if ((frontier.get(topic) ?? 0) < offset) problems.push(`${where}: the position went backwards on ${topic} (${offset} → ${frontier.get(topic) ?? 0})`);
        }
        lastPosition = line.position;
      } else if (line.position !== stepPosition) problems.push(`${where}: step ${line.step} has two positions`);
      stepLines++;
      const row = canonicalRevenue(line.row);
      const identity = `${line.position} ${line.op} ${row}`;
      if (seen.has(identity)) problems.push(`${where}: duplicate change ${line.op} ${row} at the same position (step ${line.step})`);
      seen.add(identity);
      const next = (multiplicity.get(row) ?? 0) + (line.op === 'insert' ? 1 : -1);
      if (next < 0) problems.push(`${where}: delete of ${row}, which the file does not hold (a gap: its insert is missing) at step ${line.step}`);
      if (next === 0) multiplicity.delete(row);
      else multiplicity.set(row, next);
      if (line.lines !== undefined) {
        if (line.lines !== stepLines) problems.push(`${where}: step ${line.step} says "lines":${line.lines} but wrote ${stepLines}`);
        stepLines = 0;
        endStep(i + 1);
      }
      if (problems.length > 20) break;
    }
    if (stepLines > 0) problems.push(`the file ends inside step ${lastStep} (its "lines" mark is missing)`);
    if (reference && requests && lastPosition === undefined) {
      // no step at all: nothing to compare
    }
  } finally {
    reference?.close();
  }
  return { problems, integral: integralRows(multiplicity), lastPosition, steps };
}

export function canonicalRevenue(row: Record<string, unknown>): string {
  return `${String(row.id)}|${String(row.n)}|${normalizeNumeric(row.total)}`;
}

function integralRows(multiplicity: Map<string, number>): string[] {
  const out: string[] = [];
  for (const [row, count] of multiplicity) for (let k = 0; k < count; k++) out.push(row);
  return out.sort(byId);
}

export function byId(a: string, b: string): number {
  return Number(a.split('|')[0]) - Number(b.split('|')[0]) || (a < b ? -1 : a > b ? 1 : 0);
}

export function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

export function describeDiff(expected: readonly string[], actual: readonly string[]): string {
  const e = new Set(expected);
  const a = new Set(actual);
  const missing = expected.filter((x) => !a.has(x));
  const extra = actual.filter((x) => !e.has(x));
  return `differs from the reference (${expected.length} rows expected, ${actual.length} present): missing ${JSON.stringify(missing.slice(0, 5))}${missing.length > 5 ? ` (+${missing.length - 5})` : ''}, unexpected ${JSON.stringify(extra.slice(0, 5))}${extra.length > 5 ? ` (+${extra.length - 5})` : ''}${missing.length === 0 && extra.length === 0 ? ' (same rows, different order or multiplicity)' : ''}`;
}
