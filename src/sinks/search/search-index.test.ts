/**
 * The search index sink: documents follow the view's changes exactly (inserts, deletes, keyed
 * updates, multiplicities), batches are atomic with their step and frontier, replays are
 * skipped, state survives reopening and a SIGKILL, and queries rank, match phrases and prefixes,
 * fold diacritics and highlight as documented.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'node:test';
import { DatabaseSync } from 'node:sqlite';
import { Decimal, DefiniteError, Interval, Json, Timestamp, type Row } from '../../core/index.ts';
import type { SqlType } from '../../sql/index.ts';
import type { SinkTarget } from '../sink.ts';
import { SearchIndex, type SearchResult } from './search-index.ts';

const type = (kind: SqlType['kind']): SqlType => ({ kind, modifiers: [] });

const products: SinkTarget = {
  name: 'shop.products',
  columns: [
    { name: 'id', type: type('bigint') },
    { name: 'title', type: type('text') },
    { name: 'body', type: type('varchar') },
    { name: 'price', type: type('numeric') },
  ],
  key: [0],
};

/** A view without a key: rows are identified by all their values. */
const tags: SinkTarget = { name: 'tags', columns: [{ name: 'tag', type: type('text') }, { name: 'n', type: type('integer') }] };

function temporaryDirectory(t: { after: (fn: () => void) => void }): string {
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-search-'));
  t.after(() => fs.rmSync(directory, { recursive: true, force: true }));
  return directory;
}

let step = 0;
function batch(rows: Row[], weights: number[] = rows.map(() => 1)) {
  step++;
  return { step, frontier: `f${step}`, rows, weights };
}

const ids = (result: SearchResult) => result.hits.map((hit) => hit.row.id);
const sortedIds = (result: SearchResult) => ids(result).sort();

test('inserts are searchable, with the row, a score and highlights', () => {
  const index = SearchIndex.open(':memory:', products, { fields: 'title^2, body' });
  index.write(batch([
    [1, 'Red running shoes', 'Light shoes for road running', Decimal.parse('59.90')],
    [2, 'Winter boots', 'Warm boots with a leather upper', Decimal.parse('120.00')],
  ]));
  const result = index.search('shoes');
  assert.deepEqual(result.hits.map((hit) => hit.row), [{ id: 1, title: 'Red running shoes', body: 'Light shoes for road running', price: '59.90' }]);
  assert.ok(result.hits[0]!.score > 0);
  assert.deepEqual(result.hits[0]!.highlights, { title: 'Red running <mark>shoes</mark>', body: 'Light <mark>shoes</mark> for road running' });
  assert.equal(result.hits[0]!.count, 1);
  assert.equal(result.step, step);
  assert.equal(result.frontier, `f${step}`);
  assert.deepEqual(index.search('boots leather').hits.map((hit) => hit.highlights), [{ title: 'Winter <mark>boots</mark>', body: 'Warm <mark>boots</mark> with a <mark>leather</mark> upper' }]);
  assert.deepEqual(index.search('sandals').hits, []);
  index.verify();
  index.close();
});

test('deletes remove documents; a keyed update replaces the document in one batch', () => {
  const index = SearchIndex.open(':memory:', products);
  index.write(batch([[1, 'Red shoes', 'cotton', null], [2, 'Blue shoes', 'wool', null]]));
  index.write(batch([[1, 'Red shoes', 'cotton', null]], [-1]));
  assert.deepEqual(ids(index.search('shoes')), [2]);
  // An update arrives as the old row deleted and the new one inserted.
  index.write(batch([[2, 'Blue shoes', 'wool', null], [2, 'Blue sandals', 'linen', null]], [-1, 1]));
  assert.deepEqual(ids(index.search('shoes')), []);
  assert.deepEqual(index.search('sandals linen').hits.map((hit) => hit.row), [{ id: 2, title: 'Blue sandals', body: 'linen', price: null }]);
  assert.deepEqual(index.stats(), { documents: 1, rows: 1, ignoredDeletes: 0 });
  // An insert of a present key replaces its content (the view's key is trusted).
  index.write(batch([[2, 'Green hat', 'felt', Decimal.parse('5')]]));
  assert.deepEqual(ids(index.search('sandals')), []);
  assert.deepEqual(ids(index.search('hat')), [2]);
  index.verify();
  index.close();
});

test('keys compare as values do: 5, 5n and 5.00 are one document', () => {
  const target: SinkTarget = { name: 'k', columns: [{ name: 'id', type: type('numeric') }, { name: 'title', type: type('text') }], key: [0] };
  const index = SearchIndex.open(':memory:', target);
  index.write(batch([[5, 'five']]));
  index.write(batch([[5n, 'five']], [-1]));
  assert.deepEqual(index.stats(), { documents: 0, rows: 0, ignoredDeletes: 0 });
  index.write(batch([[Decimal.parse('5.00'), 'five again']]));
  index.write(batch([[Decimal.parse('5.0'), 'five again']], [-1]));
  assert.deepEqual(index.stats(), { documents: 0, rows: 0, ignoredDeletes: 0 });
  index.close();
});

test('multiplicities: weight 2 is one document with count 2; it goes only when the count reaches 0', () => {
  const index = SearchIndex.open(':memory:', tags);
  index.write(batch([['red shoes', 1]], [2]));
  assert.deepEqual(index.search('shoes').hits.map((hit) => [hit.row, hit.count]), [[{ tag: 'red shoes', n: 1 }, 2]]);
  index.write(batch([['red shoes', 1]], [-1]));
  assert.deepEqual(index.search('shoes').hits.map((hit) => hit.count), [1]);
  index.write(batch([['red shoes', 1], ['red shoes', 2]], [1, 1]));
  assert.deepEqual(index.search('shoes').hits.map((hit) => [hit.row.n, hit.count]).sort(), [[1, 2], [2, 1]]);
  index.write(batch([['red shoes', 1]], [-2]));
  assert.deepEqual(index.search('shoes').hits.map((hit) => hit.row.n), [2]);
  assert.deepEqual(index.stats(), { documents: 1, rows: 1, ignoredDeletes: 0 });
  // A delete of an absent document is ignored and counted, never an error.
  index.write(batch([['blue hat', 1]], [-1]));
  assert.equal(index.stats().ignoredDeletes, 1);
  index.verify();
  index.close();
});

test('a replayed step is skipped', () => {
  const index = SearchIndex.open(':memory:', tags);
  index.write({ step: 1, frontier: 'a', rows: [['shoes', 1]], weights: [1] });
  index.write({ step: 2, frontier: 'b', rows: [['boots', 1]], weights: [1] });
  index.write({ step: 2, frontier: 'b', rows: [['boots', 1]], weights: [1] });
  index.write({ step: 1, frontier: 'a', rows: [['shoes', 1]], weights: [1] });
  assert.deepEqual(index.committed(), { step: 2, frontier: 'b' });
  assert.deepEqual(index.search('shoes OR boots').hits.map((hit) => hit.count), [1, 1]);
  index.close();
});

test('a batch that fails midway leaves the previous step committed, and the next batch applies', () => {
  const index = SearchIndex.open(':memory:', products);
  index.write({ step: 1, frontier: 'a', rows: [[1, 'Red shoes', null, null]], weights: [1] });
  const bad = { notAValue: true } as unknown as string;
  assert.throws(
    () => index.write({ step: 2, frontier: 'b', rows: [[1, 'Red shoes', null, null], [2, 'Blue shoes', null, null], [3, 'Green shoes', null, bad]], weights: [-1, 1, 1] }),
    (error: unknown) => error instanceof DefiniteError && error.code === 'search_row' && /column "price"/.test(error.message),
  );
  assert.deepEqual(index.committed(), { step: 1, frontier: 'a' });
  assert.deepEqual(ids(index.search('shoes')), [1]);
  // A field holding something other than text is refused the same way.
  assert.throws(() => index.write({ step: 2, frontier: 'b', rows: [[2, 42 as unknown as string, null, null]], weights: [1] }), /column "title" holds 42, but a search field holds text/);
  assert.throws(() => index.write({ step: 2, frontier: 'b', rows: [[2, 'x']], weights: [1] }), /a row has 2 values, not 4/);
  index.write({ step: 2, frontier: 'b', rows: [[2, 'Blue shoes', null, null]], weights: [1] });
  assert.deepEqual(sortedIds(index.search('shoes')), [1, 2]);
  index.verify();
  index.close();
});

test('reopening a file resumes committed() and the documents; several indexes share a database', (t) => {
  const file = path.join(temporaryDirectory(t), 'search.db');
  const first = SearchIndex.open(file, products, { fields: 'title^2, body' });
  assert.equal(first.committed(), undefined);
  first.write({ step: 7, frontier: 'token-7', rows: [[1, 'Red shoes', 'x', Decimal.parse('1.50')]], weights: [1] });
  first.close();
  const second = SearchIndex.open(file, tags);
  second.write({ step: 3, frontier: 'other', rows: [['shoes', 9]], weights: [1] });
  second.close();

  const reopened = SearchIndex.open(file, products, { fields: 'title^2, body' });
  assert.deepEqual(reopened.committed(), { step: 7, frontier: 'token-7' });
  assert.deepEqual(reopened.search('shoes').hits.map((hit) => hit.row), [{ id: 1, title: 'Red shoes', body: 'x', price: '1.50' }]);
  reopened.write({ step: 7, frontier: 'token-7', rows: [[1, 'Red shoes', 'x', Decimal.parse('1.50')]], weights: [-1] });
  assert.equal(reopened.search('shoes').hits.length, 1, 'step 7 again is a replay');
  reopened.close();
  const tagsAgain = SearchIndex.open(file, tags);
  assert.deepEqual(tagsAgain.committed(), { step: 3, frontier: 'other' });
  tagsAgain.close();
});

test('a changed definition is refused on reopen; changed weights are applied', (t) => {
  const file = path.join(temporaryDirectory(t), 'search.db');
  SearchIndex.open(file, products, { fields: 'title^2, body' }).close();
  assert.throws(() => SearchIndex.open(file, products, { fields: 'title' }), (error: unknown) => error instanceof DefiniteError && error.code === 'search_definition' && /fields title, body/.test(error.message));
  const moreColumns = { ...products, columns: [...products.columns, { name: 'stock', type: type('integer') }] };
  assert.throws(() => SearchIndex.open(file, moreColumns, { fields: 'title^2, body' }), /another definition/);
  const reweighted = SearchIndex.open(file, products, { fields: 'title, body^3' });
  assert.deepEqual(reweighted.fields.map((field) => field.weight), [1, 3]);
  reweighted.close();
});

test('ranking follows the field weights', () => {
  const rows: Row[] = [
    [1, 'garden hose', 'a tool for watering plants in a yard', null],
    [2, 'watering can', 'a garden tool to water plants and flowers', null],
  ];
  const titleFirst = SearchIndex.open(':memory:', products, { fields: 'title^10, body' });
  titleFirst.write({ step: 1, frontier: 'a', rows, weights: [1, 1] });
  assert.deepEqual(ids(titleFirst.search('garden')), [1, 2]);
  const bodyFirst = SearchIndex.open(':memory:', products, { fields: 'title, body^10' });
  bodyFirst.write({ step: 1, frontier: 'a', rows, weights: [1, 1] });
  assert.deepEqual(ids(bodyFirst.search('garden')), [2, 1]);
  const scores = titleFirst.search('garden').hits.map((hit) => hit.score);
  assert.ok(scores[0]! > scores[1]!);
  titleFirst.close();
  bodyFirst.close();
});

test('phrases, prefixes, OR, exclusions and diacritics', () => {
  const index = SearchIndex.open(':memory:', products);
  index.write(batch([
    [1, 'Café crème', 'a naïve résumé of coffee', null],
    [2, 'Cafe table', 'round table, oak', null],
    [3, 'Table café', 'crème brûlée', null],
    [4, 'Shoelace', 'spare laces for shoes', null],
  ]));
  assert.deepEqual(sortedIds(index.search('cafe')), [1, 2, 3]);
  assert.deepEqual(sortedIds(index.search('CAFÉ')), [1, 2, 3]);
  assert.deepEqual(sortedIds(index.search('resume naive')), [1]);
  assert.deepEqual(sortedIds(index.search('"cafe table"')), [2]);
  assert.deepEqual(sortedIds(index.search('"table cafe"')), [3]);
  assert.deepEqual(sortedIds(index.search('"table café" OR "crème brûlée"')), [3]);
  assert.deepEqual(sortedIds(index.search('shoe')), [], 'a whole word does not match as a prefix');
  assert.deepEqual(sortedIds(index.search('shoe*')), [4]);
  assert.deepEqual(sortedIds(index.search('sh*')), [4]);
  assert.deepEqual(sortedIds(index.search('shoe', { asYouType: true })), [4]);
  assert.deepEqual(sortedIds(index.search('"spare lac"*')), [4]);
  assert.deepEqual(sortedIds(index.search('cafe -table')), [1]);
  assert.deepEqual(sortedIds(index.search('cafe NOT oak')), [1, 3]);
  assert.deepEqual(sortedIds(index.search('oak OR shoes')), [2, 4]);
  assert.deepEqual(sortedIds(index.search('cafe table OR coffee')), [1, 2, 3]);
  // A column filter is plain text: the words "title" and "cafe" next to each other.
  assert.deepEqual(sortedIds(index.search('title:cafe')), []);
  assert.deepEqual(sortedIds(index.search('f0:cafe')), []);
  index.close();
});

test('limit, offset and total', () => {
  const index = SearchIndex.open(':memory:', products);
  const rows: Row[] = Array.from({ length: 25 }, (_, i) => [i + 1, `shoes ${'shoes '.repeat(i % 5)}`, 'x', null]);
  index.write(batch(rows));
  const all = index.search('shoes', { limit: 100, total: true });
  assert.equal(all.hits.length, 25);
  assert.equal(all.total, 25);
  const pages = [0, 10, 20].flatMap((offset) => ids(index.search('shoes', { limit: 10, offset })));
  assert.deepEqual(pages, ids(all));
  assert.equal(index.search('shoes').hits.length, 10, 'the default limit is 10');
  assert.equal(index.search('sandals', { total: true }).total, 0);
  assert.equal(index.search('', { total: true }).total, 0);
  for (const options of [{ limit: -1 }, { limit: 1001 }, { limit: 1.5 }, { offset: 10_001 }]) {
    assert.throws(() => index.search('shoes', options), (error: unknown) => error instanceof DefiniteError && error.code === 'search_query');
  }
  index.close();
});

test('highlights are HTML-escaped, cover matching fields only, and long text is cut to a window', () => {
  const index = SearchIndex.open(':memory:', products);
  const long = `${'filler '.repeat(60)}the <b>shoes</b> & "socks" ${'filler '.repeat(60)}`;
  index.write(batch([[1, 'Socks & more', long, null], [2, 'odd \u0002shoes\u0003', 'shoes', null]]));
  const hit = index.search('shoes').hits.find((each) => each.row.id === 1)!;
  assert.deepEqual(Object.keys(hit.highlights), ['body']);
  const body = hit.highlights.body!;
  assert.match(body, /&lt;b&gt;<mark>shoes<\/mark>&lt;\/b&gt; &amp; &quot;socks&quot;/);
  assert.ok(body.startsWith('…') && body.endsWith('…'), body);
  assert.ok(body.length < long.length);
  // A field whose own text holds the marker characters gets no highlight rather than a wrong one.
  const odd = index.search('shoes').hits.find((each) => each.row.id === 2)!;
  assert.deepEqual(Object.keys(odd.highlights), ['body']);
  assert.deepEqual(index.search('shoes', { highlight: false }).hits.map((each) => each.highlights), [{}, {}]);
  index.close();
});

test('rows keep every kind of value, JSON-friendly', () => {
  const target: SinkTarget = {
    name: 'kinds',
    columns: ['text', 'bigint', 'double', 'numeric', 'boolean', 'timestamptz', 'date', 'interval', 'jsonb', 'bytea', 'double'].map((kind, i) => ({ name: `c${i}`, type: type(kind as SqlType['kind']) })),
  };
  const index = SearchIndex.open(':memory:', target);
  const row: Row = ['hello', 2n ** 70n, 1.5, Decimal.parse('2.50'), true, new Timestamp('timestamptz', 0n), new Timestamp('date', 86_400_000_000n), new Interval(1, 2, 3_000_000n), new Json({ a: [1, null] }), new Uint8Array([1, 255]), NaN];
  index.write(batch([row]));
  assert.deepEqual(index.search('hello').hits[0]!.row, {
    c0: 'hello', c1: '1180591620717411303424', c2: 1.5, c3: '2.50', c4: true, c5: '1970-01-01 00:00:00+00', c6: '1970-01-02', c7: '1 mon 2 days 00:00:03', c8: { a: [1, null] }, c9: '\\x01ff', c10: 'NaN',
  });
  // Without a key, the whole row is the identity: deleting the same values removes it.
  index.write(batch([row], [-1]));
  assert.deepEqual(index.stats(), { documents: 0, rows: 0, ignoredDeletes: 0 });
  index.close();
});

test('fields: defaults, weights, and clear errors', () => {
  assert.deepEqual(SearchIndex.open(':memory:', products).fields, [{ name: 'title', column: 1, weight: 1 }, { name: 'body', column: 2, weight: 1 }]);
  assert.deepEqual(SearchIndex.open(':memory:', products, { fields: ' body ^ 0.5 , "title"^3' }).fields, [{ name: 'body', column: 2, weight: 0.5 }, { name: 'title', column: 1, weight: 3 }]);
  assert.deepEqual(SearchIndex.open(':memory:', products, { fields: 'TITLE' }).fields, [{ name: 'title', column: 1, weight: 1 }]);
  const refused = (fields: string | undefined, pattern: RegExp, hint?: RegExp, target: SinkTarget = products) =>
    assert.throws(
      () => SearchIndex.open(':memory:', target, fields === undefined ? {} : { fields }),
      (error: unknown) => error instanceof DefiniteError && error.code === 'search_fields' && pattern.test(error.message) && (!hint || hint.test(error.hint ?? '')),
      `${fields}`,
    );
  refused('titel^2, body', /field "titel" is not a column of "shop.products"/, /did you mean "title"\?/);
  refused('colour', /field "colour" is not a column/, /text columns of "shop.products" are: title, body/);
  refused('price', /field "price" is numeric; search fields must be text columns/);
  refused('title^0', /weight of field "title" must be a positive number, not "0"/);
  refused('title^x', /not "x"/);
  refused('title, title^2', /listed twice/);
  refused('', /fields is empty/);
  refused('title,,body', /empty entry/);
  refused(undefined, /no text column to index/, undefined, { name: 'n', columns: [{ name: 'n', type: type('integer') }] });
  assert.throws(() => SearchIndex.open(':memory:', products, { table: 'x; DROP TABLE y' }), /plain identifier/);
});

test('an index in a shared database leaves the database open on close', () => {
  const db = new DatabaseSync(':memory:');
  const index = SearchIndex.open(db, products, { table: 'mine' });
  index.write(batch([[1, 'shoes', null, null]]));
  index.close();
  assert.ok(db.prepare(`SELECT count(*) AS n FROM mine_docs`).get());
  assert.throws(() => index.search('shoes'), /closed/);
  db.close();
});

/** The child of the SIGKILL test: writes steps to the index as fast as it can until killed. */
const child = `
import { SearchIndex } from ${JSON.stringify(new URL('./search-index.ts', import.meta.url).href)};
const index = SearchIndex.open(process.argv[2], ${JSON.stringify(tags)}, { synchronous: 'normal' });
let step = index.committed()?.step ?? 0;
process.stdout.write('ready\\n');
for (;;) {
  step++;
  // Step s inserts the rows "word s k" for k < 20 and deletes step s-1's odd rows.
  const rows = [], weights = [];
  for (let k = 0; k < 20; k++) { rows.push(['word s' + step + ' k' + k, k]); weights.push(1); }
  if (step > 1) for (let k = 1; k < 20; k += 2) { rows.push(['word s' + (step - 1) + ' k' + k, k]); weights.push(-1); }
  index.write({ step, frontier: 'f' + step, rows, weights });
}
`;

test('killed with SIGKILL at random moments, the index always reopens at a whole step', async (t) => {
  const directory = temporaryDirectory(t);
  const file = path.join(directory, 'search.db');
  const script = path.join(directory, 'child.ts');
  fs.writeFileSync(script, child);
  for (let round = 0; round < 5; round++) {
    const process_ = spawn(process.execPath, [script, file], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => process_.stdout.once('data', () => resolve()));
    await new Promise((resolve) => setTimeout(resolve, 50 + Math.random() * 200));
    process_.kill('SIGKILL');
    await new Promise((resolve) => process_.once('exit', resolve));

    const index = SearchIndex.open(file, tags);
    const committed = index.committed();
    assert.ok(committed && committed.frontier === `f${committed.step}`, JSON.stringify(committed));
    const s = committed.step;
    // Steps 1..s-1 keep their even rows; step s keeps all 20.
    assert.deepEqual(index.stats(), { documents: (s - 1) * 10 + 20, rows: (s - 1) * 10 + 20, ignoredDeletes: 0 });
    assert.equal(index.search(`s${s}`, { total: true, limit: 0 }).total, 20);
    assert.equal(index.search(`s${s + 1}`, { total: true, limit: 0 }).total, 0);
    if (s > 1) assert.equal(index.search(`s${s - 1}`, { total: true, limit: 0 }).total, 10);
    index.verify();
    index.close();
  }
});

test('a read-only reader beside the writer sees each committed step with its position', (t) => {
  const file = path.join(temporaryDirectory(t), 'search.db');
  assert.throws(() => SearchIndex.open(file, products, { readOnly: true }), (error: unknown) => error instanceof DefiniteError && (error.code === 'search_missing' || error.code === 'search_storage'));
  const writer = SearchIndex.open(file, products);
  const reader = SearchIndex.open(file, products, { readOnly: true });
  assert.equal(reader.committed(), undefined);
  assert.deepEqual(reader.search('shoes'), { hits: [], step: 0, frontier: undefined });
  writer.write({ step: 1, frontier: 'a', rows: [[1, 'Red shoes', null, null]], weights: [1] });
  const first = reader.search('shoes');
  assert.deepEqual([first.step, first.frontier, ids(first)], [1, 'a', [1]]);
  writer.write({ step: 2, frontier: 'b', rows: [[1, 'Red shoes', null, null], [2, 'Blue shoes', null, null]], weights: [-1, 1] });
  const second = reader.search('shoes');
  assert.deepEqual([second.step, second.frontier, ids(second)], [2, 'b', [2]]);
  assert.deepEqual(reader.committed(), { step: 2, frontier: 'b' });
  assert.throws(() => reader.write({ step: 3, frontier: 'c', rows: [], weights: [] }), /read-only/);
  assert.throws(() => SearchIndex.open(file, products, { readOnly: true, fields: 'title^2, body' }), /other field weights/);
  reader.close();
  writer.close();
});
