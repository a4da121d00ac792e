/**
 * The search benchmark: the embedded search index sink (src/sinks/search) indexing and answering
 * queries over synthetic products, against a plain SQLite FTS5 table measured in the same run.
 *
 * 1. index — N products (id, title, description, price, category; words drawn from a synthetic
 *    vocabulary with Zipf frequencies) written as engine steps of --batch rows each through
 *    `SearchIndex.write` (fields 'title^2, description', key id): rows/s over the write calls.
 *    Peer: the same rows inserted into `fts5(title, description, price UNINDEXED, category
 *    UNINDEXED)` — FTS5 built the simplest way: default tokenizer, no prefix index, its own
 *    content, one INSERT per row, one transaction per batch. Both run in WAL mode with
 *    synchronous = NORMAL and the same cache size, batch by batch in alternating order.
 * 2. search — a few thousand mixed queries (single words, two-word AND, prefixes, phrases) in a
 *    seeded random order, each timed on its own with limit 10: `index.search(q)` (BM25 with the field weights, snippets of
 *    the matching fields), `index.search(q, { highlight: false })`, and the peer's
 *    `SELECT … WHERE products MATCH ? ORDER BY rank LIMIT 10` with the same query written as
 *    quoted FTS5 terms (unweighted BM25, no snippets). Queries run in order, the systems in
 *    alternating order per query, after an untimed warm-up pass. Every query's match count is
 *    compared between the two (they must find the same documents); a difference is printed
 *    loudly.
 *
 * Query words come from the documents' own Zipf distribution with its 100 most frequent words
 * left out (they play the part of stop words, which real users rarely search alone and real
 * indexes often drop); those head words are measured separately ("head word"), because with
 * BM25 computed for every matching document they show where the time goes.
 *
 * Invariants:
 * - The table and the one JSON line go to stdout; progress goes to stderr.
 * - Data and queries are a function of the seed alone; both systems get identical rows.
 * - Only the write/insert calls and the query calls are timed (generation is not).
 */
import { prng, rankAt } from './random.ts';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { parseArgs } from 'node:util';
import { Decimal, type Row } from '../src/core/index.ts';
import type { SqlType } from '../src/sql/index.ts';
import { SearchIndex } from '../src/sinks/search/index.ts';
import { formatNumber, printTable, round, progress } from './format.ts';
import { integerOption } from './options.ts';

export const description = 'the search index sink: indexing and ranked queries over 1,000,000 products, against a plain SQLite FTS5 table';

interface Settings {
  products: number;
  queries: number;
  batch: number;
  seed: number;
  directory: string | undefined;
  optimize: boolean;
  quick: boolean;
}


// ── Data ──────────────────────────────────────────────────────────────────────────────────────

/** Syllables are onset + vowel + coda: about 2,600 distinct 3-letter beginnings, as in English text. */
const ONSETS = ['', 'b', 'c', 'd', 'f', 'g', 'h', 'j', 'k', 'l', 'm', 'n', 'p', 'r', 's', 't', 'v', 'w', 'z', 'br', 'ch', 'cl', 'cr', 'dr', 'fl', 'gr', 'pl', 'pr', 'sh', 'sl', 'sp', 'st', 'th', 'tr'];
const VOWELS = ['a', 'e', 'i', 'o', 'u', 'a', 'e', 'i', 'o', 'ai', 'ea', 'ou', 'y'];
const CODAS = ['', '', '', 'n', 'r', 's', 't', 'l', 'm', 'nd', 'st', 'ck', 'ng', 'x'];
const VOCABULARY_SIZE = 50_000;
const CATEGORIES = ['books', 'games', 'garden', 'kitchen', 'toys', 'tools', 'shoes', 'audio', 'bikes', 'pets', 'music', 'office', 'sports', 'beauty', 'baby', 'food', 'lights', 'rugs', 'bags', 'tents', 'paint', 'phones', 'films', 'yarn', 'glass', 'clocks', 'maps', 'seeds', 'tea', 'wine'];
/** Query words skip the most frequent ranks (see the header). */
const HEAD = 100;

interface Vocabulary {
  words: string[];
  /** The Zipf CDF over ranks (s = 1). */
  cdf: Float64Array;
  /** The CDF over ranks from HEAD on (query words). */
  tailCdf: Float64Array;
}

function vocabulary(random: () => number): Vocabulary {
  const words = new Set<string>();
  const pick = (list: string[]) => list[Math.floor(random() * list.length)]!;
  while (words.size < VOCABULARY_SIZE) {
    const syllables = 1 + Math.floor(random() * 3);
    let word = '';
    for (let i = 0; i < syllables; i++) word += pick(ONSETS) + pick(VOWELS) + pick(CODAS);
    if (word.length >= 3 && word.length <= 12) words.add(word);
  }
  const cdf = new Float64Array(VOCABULARY_SIZE);
  let sum = 0;
  for (let rank = 0; rank < VOCABULARY_SIZE; rank++) cdf[rank] = sum += 1 / (rank + 1);
  for (let rank = 0; rank < VOCABULARY_SIZE; rank++) cdf[rank]! /= sum;
  const tailCdf = new Float64Array(VOCABULARY_SIZE - HEAD);
  let tail = 0;
  for (let rank = HEAD; rank < VOCABULARY_SIZE; rank++) tailCdf[rank - HEAD] = tail += 1 / (rank + 1);
  for (let i = 0; i < tailCdf.length; i++) tailCdf[i]! /= tail;
  return { words: [...words], cdf, tailCdf };
}

function sample(cdf: Float64Array, random: () => number): number {
  return rankAt(cdf, random());
}

interface Generator {
  vocabulary: Vocabulary;
  /** The HEAD most frequent words (left out of queries). */
  head: ReadonlySet<string>;
  random: () => number;
  /** Adjacent word pairs seen in descriptions (for phrase queries). */
  pairs: [string, string][];
}

function words(generator: Generator, count: number): string[] {
  const out: string[] = new Array(count);
  for (let i = 0; i < count; i++) out[i] = generator.vocabulary.words[sample(generator.vocabulary.cdf, generator.random)]!;
  return out;
}

/** Products first..first+count-1: [id, title, description, price, category]. */
function products(generator: Generator, first: number, count: number): Row[] {
  const { random } = generator;
  const rows: Row[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const title = words(generator, 3 + Math.floor(random() * 5));
    title[0] = title[0]![0]!.toUpperCase() + title[0]!.slice(1);
    const text = words(generator, 15 + Math.floor(random() * 26));
    if (random() < 0.02 && generator.pairs.length < 50_000) {
      const at = Math.floor(random() * (text.length - 1));
      // Phrases follow the rule of query words: no head word.
      if (!generator.head.has(text[at]!) && !generator.head.has(text[at + 1]!)) generator.pairs.push([text[at]!, text[at + 1]!]);
    }
    const price = new Decimal(BigInt(100 + Math.floor(random() * 99_900)), 2);
    rows[i] = [first + i, title.join(' '), `${text.join(' ')}.`, price, CATEGORIES[Math.floor(random() * CATEGORIES.length)]!];
  }
  return rows;
}

// ── Queries ───────────────────────────────────────────────────────────────────────────────────

type QueryClass = 'word' | 'two words' | 'prefix' | 'phrase' | 'head word';
const MIX: QueryClass[] = ['word', 'word', 'word', 'two words', 'two words', 'two words', 'prefix', 'prefix', 'phrase', 'phrase'];

interface Query {
  kind: QueryClass;
  /** In Sluice's query language. */
  sluice: string;
  /** The same query as FTS5 MATCH syntax, terms quoted. */
  fts: string;
}

function queries(generator: Generator, count: number, random: () => number): Query[] {
  const { words: list, tailCdf } = generator.vocabulary;
  const word = () => list[HEAD + sample(tailCdf, random)]!;
  const out: Query[] = [];
  for (let i = 0; i < count; i++) {
    const kind = MIX[i % MIX.length]!;
    if (kind === 'word') {
      const w = word();
      out.push({ kind, sluice: w, fts: `"${w}"` });
    } else if (kind === 'two words') {
      const a = word();
      const b = word();
      out.push({ kind, sluice: `${a} ${b}`, fts: `"${a}" "${b}"` });
    } else if (kind === 'prefix') {
      // What a user has typed of a word: at least 3 characters, and not the whole word.
      const w = word();
      const typed = w.slice(0, Math.max(3, Math.min(w.length - 1, 3 + Math.floor(random() * (w.length - 3)))));
      out.push({ kind, sluice: `${typed}*`, fts: `"${typed}"*` });
    } else {
      const [a, b] = generator.pairs[Math.floor(random() * generator.pairs.length)]!;
      out.push({ kind, sluice: `"${a} ${b}"`, fts: `"${a} ${b}"` });
    }
  }
  // Shuffled, so that a query's class, its neighbours (a broad query empties the page cache for
  // the next) and which system runs it first are independent.
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  // The head words, measured on their own after the mix.
  for (let rank = 0; rank < Math.min(HEAD, 20); rank++) out.push({ kind: 'head word', sluice: list[rank]!, fts: `"${list[rank]}"` });
  return out;
}

// ── Measuring ─────────────────────────────────────────────────────────────────────────────────

const SYSTEMS = ['sluice', 'sluice, no snippets', 'sqlite fts5'] as const;
type System = (typeof SYSTEMS)[number];

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

function stats(values: number[]): { p50: number; p99: number; max: number; mean: number } {
  const sorted = [...values].sort((a, b) => a - b);
  return { p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted[sorted.length - 1] ?? NaN, mean: values.reduce((a, b) => a + b, 0) / Math.max(1, values.length) };
}

function fileBytes(file: string): number {
  return [file, `${file}-wal`].reduce((sum, each) => sum + (fs.existsSync(each) ? fs.statSync(each).size : 0), 0);
}

function checkpoint(file: string): void {
  const db = new DatabaseSync(file);
  db.exec('PRAGMA wal_checkpoint(TRUNCATE)');
  db.close();
}

function parseSettings(args: string[]): Settings {
  const { values } = parseArgs({
    args,
    options: {
      quick: { type: 'boolean', default: false },
      products: { type: 'string' },
      queries: { type: 'string' },
      batch: { type: 'string' },
      seed: { type: 'string', default: '20240601' },
      dir: { type: 'string' },
      optimize: { type: 'boolean', default: false },
    },
    strict: true,
  });
  return {
    products: integerOption('products', values.products, values.quick ? 50_000 : 1_000_000),
    queries: integerOption('queries', values.queries, values.quick ? 500 : 4_000),
    batch: integerOption('batch', values.batch, values.quick ? 5_000 : 10_000),
    seed: integerOption('seed', values.seed, 20240601),
    directory: values.dir,
    optimize: values.optimize,
    quick: values.quick,
  };
}

export async function run(args: string[]): Promise<void> {
  const settings = parseSettings(args);
  const directory = fs.mkdtempSync(path.join(settings.directory ?? os.tmpdir(), 'sluice-bench-search-'));
  try {
    await measure(settings, directory);
  } finally {
    fs.rmSync(directory, { recursive: true, force: true });
  }
}

const text: SqlType = { kind: 'text', modifiers: [] };
/** The products view both search benchmarks index (bench/pipeline.ts too). */
export const productsTarget = {
  name: 'products',
  columns: [
    { name: 'id', type: { kind: 'bigint', modifiers: [] } as SqlType },
    { name: 'title', type: text },
    { name: 'description', type: text },
    { name: 'price', type: { kind: 'numeric', modifiers: [10, 2] } as SqlType },
    { name: 'category', type: text },
  ],
  key: [0],
};

async function measure(settings: Settings, directory: string): Promise<void> {
  const random = prng(settings.seed);
  const words = vocabulary(random);
  const generator: Generator = { vocabulary: words, head: new Set(words.words.slice(0, HEAD)), random, pairs: [] };
  const target = productsTarget;

  const sluiceFile = path.join(directory, 'sluice.db');
  const peerFile = path.join(directory, 'peer.db');
  const index = SearchIndex.open(sluiceFile, target, { fields: 'title^2, description' });
  const peer = new DatabaseSync(peerFile);
  peer.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA cache_size = -65536; PRAGMA temp_store = MEMORY');
  peer.exec('CREATE VIRTUAL TABLE products USING fts5(title, description, price UNINDEXED, category UNINDEXED)');
  const peerInsert = peer.prepare('INSERT INTO products (rowid, title, description, price, category) VALUES (?, ?, ?, ?, ?)');

  // ── 1. Index ──
  progress(`search bench: indexing ${formatNumber(settings.products)} products in steps of ${formatNumber(settings.batch)} rows (${directory})`);
  let sluiceMs = 0;
  let peerMs = 0;
  let step = 0;
  for (let first = 1; first <= settings.products; first += settings.batch) {
    const rows = products(generator, first, Math.min(settings.batch, settings.products - first + 1));
    step++;
    const runSluice = () => {
      const started = performance.now();
      index.write({ step, frontier: `step-${step}`, rows, weights: rows.map(() => 1) });
      sluiceMs += performance.now() - started;
    };
    const runPeer = () => {
      const started = performance.now();
      peer.exec('BEGIN');
      for (const row of rows) peerInsert.run(row[0] as number, row[1] as string, row[2] as string, String(row[3]), row[4] as string);
      peer.exec('COMMIT');
      peerMs += performance.now() - started;
    };
    if (step % 2 === 0) {
      runSluice();
      runPeer();
    } else {
      runPeer();
      runSluice();
    }
    if (step % 10 === 0) progress(`  ${formatNumber(first + rows.length - 1)} rows: sluice ${formatNumber((first + rows.length - 1) / (sluiceMs / 1000))} rows/s, peer ${formatNumber((first + rows.length - 1) / (peerMs / 1000))} rows/s`);
  }
  let optimizeMs: { sluice: number; peer: number } | undefined;
  if (settings.optimize) {
    let started = performance.now();
    index.optimize();
    const sluiceOptimize = performance.now() - started;
    started = performance.now();
    peer.exec(`INSERT INTO products (products) VALUES ('optimize')`);
    optimizeMs = { sluice: sluiceOptimize, peer: performance.now() - started };
  }
  checkpoint(sluiceFile);
  peer.exec('PRAGMA wal_checkpoint(TRUNCATE)');
  const sizes = { sluice: fileBytes(sluiceFile), peer: fileBytes(peerFile) };
  const indexing = { sluice: settings.products / (sluiceMs / 1000), peer: settings.products / (peerMs / 1000) };
  progress(`  indexed: sluice ${formatNumber(indexing.sluice)} rows/s (${formatNumber(sizes.sluice / 1e6)} MB), peer ${formatNumber(indexing.peer)} rows/s (${formatNumber(sizes.peer / 1e6)} MB)`);

  // ── 2. Search ──
  const list = queries(generator, settings.queries, prng(settings.seed + 1));
  const peerSearch = peer.prepare('SELECT rowid AS id, title, description, price, category, rank FROM products WHERE products MATCH ? ORDER BY rank LIMIT 10');
  const peerCount = peer.prepare('SELECT count(*) AS n FROM products WHERE products MATCH ?');
  const run: Record<System, (q: Query) => number> = {
    sluice: (q) => index.search(q.sluice, { limit: 10 }).hits.length,
    'sluice, no snippets': (q) => index.search(q.sluice, { limit: 10, highlight: false }).hits.length,
    'sqlite fts5': (q) => (peerSearch.all(q.fts) as unknown[]).length,
  };
  progress(`search bench: ${formatNumber(list.length)} queries (${formatNumber(settings.queries)} mixed + ${list.length - settings.queries} head words); counting their matches in both, a warm-up pass of 200, then each timed on each system`);
  const matches: number[] = [];
  let mismatches = 0;
  const countStarted = performance.now();
  for (const q of list) {
    if (matches.length > 0 && matches.length % 1000 === 0) progress(`  ${formatNumber(matches.length)} queries counted (${formatNumber((performance.now() - countStarted) / 1000, 0)} s)`);
    const ours = index.search(q.sluice, { limit: 0, total: true }).total!;
    const theirs = Number((peerCount.get(q.fts) as { n: number }).n);
    if (ours !== theirs) {
      mismatches++;
      const line = `!!! MISMATCH: ${JSON.stringify(q.sluice)} matches ${ours} documents in sluice, ${theirs} in the peer (${q.fts})`;
      process.stdout.write(`${line}\n`);
      progress(line);
    }
    matches.push(ours);
  }
  // Warm-up: the first queries once on every system (JIT, statement caches, the hot pages).
  for (const q of list.slice(0, Math.min(200, list.length))) for (const system of SYSTEMS) run[system](q);
  const latencies: Record<System, number[]> = { sluice: [], 'sluice, no snippets': [], 'sqlite fts5': [] };
  const searchStarted = performance.now();
  list.forEach((q, i) => {
    const order = i % 2 === 0 ? SYSTEMS : [...SYSTEMS].reverse();
    for (const system of order) {
      const started = performance.now();
      run[system](q);
      latencies[system].push(performance.now() - started);
    }
    if ((i + 1) % 500 === 0) progress(`  ${formatNumber(i + 1)} queries timed (${formatNumber((performance.now() - searchStarted) / 1000, 0)} s)`);
  });
  index.close();
  peer.close();

  // ── Report ──
  process.stdout.write(
    `index: ${formatNumber(settings.products)} products in steps of ${formatNumber(settings.batch)} rows; sluice = SearchIndex.write (fields title^2, description; prefix index 2,3; documents table + external-content FTS5), ` +
      `peer = plain fts5(title, description) INSERTs; both WAL, synchronous NORMAL${settings.optimize ? '; both optimized after loading' : ''}\n`,
  );
  printTable(
    ['system', 'rows/s', 'seconds', 'size MB', 'vs peer'],
    [
      ['sluice', formatNumber(indexing.sluice), formatNumber(sluiceMs / 1000, 1), formatNumber(sizes.sluice / 1e6), `${formatNumber(indexing.sluice / indexing.peer, 2)}×`],
      ['sqlite fts5', formatNumber(indexing.peer), formatNumber(peerMs / 1000, 1), formatNumber(sizes.peer / 1e6), ''],
    ],
  );
  process.stdout.write('\n');

  const classes: (QueryClass | 'mix')[] = ['mix', 'word', 'two words', 'prefix', 'phrase', 'head word'];
  const inClass = (kind: QueryClass | 'mix', i: number) => (kind === 'mix' ? list[i]!.kind !== 'head word' : list[i]!.kind === kind);
  const summaryRows: Record<string, unknown>[] = [];
  const lines: string[][] = [];
  for (const kind of classes) {
    const indexes = list.map((_, i) => i).filter((i) => inClass(kind, i));
    const counted = stats(indexes.map((i) => matches[i]!));
    const peerStats = stats(indexes.map((i) => latencies['sqlite fts5'][i]!));
    for (const system of SYSTEMS) {
      const s = stats(indexes.map((i) => latencies[system][i]!));
      const vs = system === 'sqlite fts5' ? undefined : { p50: s.p50 / peerStats.p50, p99: s.p99 / peerStats.p99 };
      lines.push([kind, system, formatNumber(indexes.length), formatNumber(counted.mean), formatNumber(counted.max), formatNumber(s.p50, 2), formatNumber(s.p99, 2), formatNumber(s.max, 2), vs ? `${formatNumber(vs.p50, 2)}×` : '', vs ? `${formatNumber(vs.p99, 2)}×` : '']);
      summaryRows.push({ queries: kind, system, count: indexes.length, meanMatches: round(counted.mean, 0), maxMatches: counted.max, p50Ms: round(s.p50, 3), p99Ms: round(s.p99, 3), maxMs: round(s.max, 3), p50VsPeer: round(vs?.p50, 2), p99VsPeer: round(vs?.p99, 2) });
    }
  }
  process.stdout.write(`search: limit 10, each query timed on its own after a warm-up pass; mix = ${formatNumber(settings.queries)} queries (30 % one word, 30 % two words ANDed, 20 % prefixes of ≥ 3 characters, 20 % two-word phrases seen in descriptions; no word among the ${HEAD} most frequent); head word = the 20 most frequent words alone (not in the mix); vs peer = sluice ÷ sqlite fts5\n`);
  printTable(['queries', 'system', 'count', 'mean matches', 'max matches', 'p50 ms', 'p99 ms', 'max ms', 'p50 vs peer', 'p99 vs peer'], lines);
  process.stdout.write('\n');

  // The mix again, by how many documents a query matches: what the time depends on.
  const buckets: { name: string; low: number; high: number }[] = [
    { name: '≤ 1,000', low: 0, high: 1_000 },
    { name: '1,001–10,000', low: 1_001, high: 10_000 },
    { name: '10,001–100,000', low: 10_001, high: 100_000 },
    { name: '> 100,000', low: 100_001, high: Infinity },
  ];
  const bucketRows: Record<string, unknown>[] = [];
  const bucketLines: string[][] = [];
  for (const bucket of buckets) {
    const indexes = list.map((_, i) => i).filter((i) => inClass('mix', i) && matches[i]! >= bucket.low && matches[i]! <= bucket.high);
    if (indexes.length === 0) continue;
    const ours = stats(indexes.map((i) => latencies.sluice[i]!));
    const theirs = stats(indexes.map((i) => latencies['sqlite fts5'][i]!));
    bucketLines.push([bucket.name, formatNumber(indexes.length), `${formatNumber((indexes.length * 100) / settings.queries, 1)} %`, formatNumber(ours.p50, 2), formatNumber(ours.p99, 2), formatNumber(theirs.p50, 2), formatNumber(theirs.p99, 2)]);
    bucketRows.push({ matches: bucket.name, count: indexes.length, sluiceP50Ms: round(ours.p50, 3), sluiceP99Ms: round(ours.p99, 3), peerP50Ms: round(theirs.p50, 3), peerP99Ms: round(theirs.p99, 3) });
  }
  process.stdout.write('the mix by matching documents (sluice with snippets; peer = sqlite fts5)\n');
  printTable(['matches', 'queries', 'share', 'sluice p50 ms', 'sluice p99 ms', 'peer p50 ms', 'peer p99 ms'], bucketLines);
  process.stdout.write('\n');

  const mix = summaryRows.find((row) => row.queries === 'mix' && row.system === 'sluice')!;
  const p99 = mix.p99Ms as number;
  // How a query's time grows with its matches: the slope of a least-squares fit over the mix.
  const mixIndexes = list.map((_, i) => i).filter((i) => inClass('mix', i));
  const xs = mixIndexes.map((i) => matches[i]!);
  const ys = mixIndexes.map((i) => latencies.sluice[i]!);
  const meanX = xs.reduce((a, b) => a + b, 0) / xs.length;
  const meanY = ys.reduce((a, b) => a + b, 0) / ys.length;
  const slope = xs.reduce((sum, x, k) => sum + (x - meanX) * (ys[k]! - meanY), 0) / Math.max(1e-9, xs.reduce((sum, x) => sum + (x - meanX) ** 2, 0));
  const slowest = mixIndexes.reduce((worst, i) => (latencies.sluice[i]! > latencies.sluice[worst]! ? i : worst), mixIndexes[0]!);
  const met = p99 <= 10;
  process.stdout.write(
    `targets: search p99 ≤ 10 ms over the mix ${met ? 'met' : 'MISSED'} (${formatNumber(p99, 2)} ms; p50 ${formatNumber(mix.p50Ms as number, 2)} ms). ` +
      `A query costs about ${formatNumber(slope * 1000, 2)} µs per matching document (BM25 is computed for every match: FTS5 has no top-k pruning); ` +
      `the slowest mixed query, ${JSON.stringify(list[slowest]!.sluice)}, matched ${formatNumber(matches[slowest])} documents in ${formatNumber(latencies.sluice[slowest], 1)} ms. ` +
      `${mismatches === 0 ? 'Every query found the same documents in both.' : `${mismatches} queries found different documents: MISMATCH.`}\n`,
  );

  const summary = {
    bench: 'search',
    config: { products: settings.products, queries: settings.queries, batch: settings.batch, seed: settings.seed, optimize: settings.optimize, quick: settings.quick, vocabulary: VOCABULARY_SIZE, cores: os.availableParallelism(), node: process.version, sqlite: sqliteVersion() },
    indexing: {
      sluiceRowsPerSecond: round(indexing.sluice, 0),
      peerRowsPerSecond: round(indexing.peer, 0),
      sluiceOverPeer: round(indexing.sluice / indexing.peer, 3),
      sluiceSeconds: round(sluiceMs / 1000, 2),
      peerSeconds: round(peerMs / 1000, 2),
      sluiceMegabytes: round(sizes.sluice / 1e6, 1),
      peerMegabytes: round(sizes.peer / 1e6, 1),
      optimizeSeconds: optimizeMs ? { sluice: round(optimizeMs.sluice / 1000, 2), peer: round(optimizeMs.peer / 1000, 2) } : null,
    },
    search: summaryRows,
    byMatches: bucketRows,
    microsecondsPerMatch: round(slope * 1000, 3),
    mismatches,
    targets: { searchP99Ms: { want: '<= 10', actual: p99, met } },
  };
  process.stdout.write(`${JSON.stringify(summary)}\n`);
}

function sqliteVersion(): string {
  const db = new DatabaseSync(':memory:');
  try {
    return String((db.prepare('SELECT sqlite_version() AS v').get() as { v: string }).v);
  } finally {
    db.close();
  }
}
