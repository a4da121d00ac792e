/**
 * Data for `bench/pipeline.ts`, a function of the seed alone: NDJSON bodies of events, customers
 * and orders, and products with a Zipf vocabulary and the queries over them.
 */
import { prng, rankAt } from './random.ts';

export function ndjson(rows: readonly object[]): Buffer {
  return Buffer.from(rows.map((row) => JSON.stringify(row)).join('\n') + '\n');
}

const BASE_TIME = Date.UTC(2026, 0, 1);

/** `count` events of the ingest table: id bigint, name text, amount numeric(12,2), at timestamptz. */
export function events(first: number, count: number, random: () => number): object[] {
  const rows: object[] = [];
  for (let i = first; i < first + count; i++) {
    rows.push({ id: i, name: `user-${Math.floor(random() * 100_000)}`, amount: (Math.floor(random() * 1_000_000) / 100).toFixed(2), at: new Date(BASE_TIME + i * 37).toISOString() });
  }
  return rows;
}

/** An order as the pipeline receives it, and as the peer engine does ([id, customer_id, amount in cents]). */
export interface Order {
  id: number;
  customer_id: number;
  cents: number;
}

export function orders(first: number, count: number, customers: number, random: () => number): Order[] {
  const out: Order[] = [];
  for (let id = first; id < first + count; id++) out.push({ id, customer_id: Math.floor(random() * customers), cents: 100 + Math.floor(random() * 100_000) });
  return out;
}

export function orderObjects(list: readonly Order[]): object[] {
  return list.map((o) => ({ id: o.id, customer_id: o.customer_id, amount: (o.cents / 100).toFixed(2) }));
}

export function customerObjects(first: number, count: number): object[] {
  const rows: object[] = [];
  for (let id = first; id < first + count; id++) rows.push({ id, name: `customer ${id}` });
  return rows;
}

// ── Products and queries ────────────────────────────────────────────────────────────────────

const LETTERS = 'bcdfghklmnprstvz';
const VOWELS = 'aeiou';
/** Query words skip this many most frequent words (they play the part of stop words). */
const HEAD = 100;

export interface Catalog {
  words: string[];
  /** Zipf (s = 1) CDF over ranks. */
  cdf: Float64Array;
  random: () => number;
}

export function catalog(seed: number, size = 50_000): Catalog {
  const random = prng(seed);
  const words = new Set<string>();
  while (words.size < size) {
    let word = '';
    const syllables = 2 + Math.floor(random() * 3);
    for (let s = 0; s < syllables; s++) word += LETTERS[Math.floor(random() * LETTERS.length)]! + VOWELS[Math.floor(random() * VOWELS.length)]!;
    words.add(word);
  }
  const cdf = new Float64Array(size);
  let sum = 0;
  for (let rank = 0; rank < size; rank++) cdf[rank] = sum += 1 / (rank + 1);
  for (let rank = 0; rank < size; rank++) cdf[rank]! /= sum;
  return { words: [...words], cdf, random };
}


function text(c: Catalog, count: number): string {
  const out: string[] = [];
  for (let i = 0; i < count; i++) out.push(c.words[rankAt(c.cdf, c.random())]!);
  return out.join(' ');
}

const CATEGORIES = ['books', 'games', 'garden', 'kitchen', 'toys', 'tools', 'shoes', 'audio', 'bikes', 'pets'];

/** Products: id bigint, title text (3–7 words), description text (15–40 words), price numeric(10,2), category text. */
export function products(c: Catalog, first: number, count: number): object[] {
  const rows: object[] = [];
  for (let id = first; id < first + count; id++) {
    rows.push({
      id,
      title: text(c, 3 + Math.floor(c.random() * 5)),
      description: text(c, 15 + Math.floor(c.random() * 26)),
      price: (1 + Math.floor(c.random() * 99_900) / 100).toFixed(2),
      category: CATEGORIES[Math.floor(c.random() * CATEGORIES.length)]!,
    });
  }
  return rows;
}

/** A query word: Zipf over the ranks past the head. */
function queryWord(c: Catalog, random: () => number): string {
  const low = c.cdf[HEAD - 1]!;
  return c.words[rankAt(c.cdf, low + random() * (1 - low))]!;
}

/** Mixed queries: 40 % one word, 40 % two words ANDed, 20 % a prefix (3–4 letters then `*`). */
export function queries(c: Catalog, count: number, seed: number): Array<{ kind: string; q: string }> {
  const random = prng(seed);
  const out: Array<{ kind: string; q: string }> = [];
  for (let i = 0; i < count; i++) {
    const u = random();
    if (u < 0.4) out.push({ kind: 'one word', q: queryWord(c, random) });
    else if (u < 0.8) out.push({ kind: 'two words', q: `${queryWord(c, random)} ${queryWord(c, random)}` });
    else {
      const word = queryWord(c, random);
      out.push({ kind: 'prefix', q: `${word.slice(0, Math.min(word.length - 1, 3 + Math.floor(random() * 2)))}*` });
    }
  }
  return out;
}
