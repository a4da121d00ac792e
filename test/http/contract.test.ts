/**
 * The HTTP contract of DESIGN.md ("Public contract"), driven against the real runtime: every
 * endpoint, its exact bodies where they are determinable, its errors, and that bad input never
 * takes the server down. One test goes through the real CLI (`sluice up` / `sluice run`).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PipelineRuntime } from '../../src/pipeline/runtime.ts';
import { serve, type Server } from '../../src/serve/http.ts';
import { assertError, call, canonical, type Reply, SseClient } from './helpers.ts';

const PIPELINE = `
CREATE TABLE products (id bigint PRIMARY KEY, title text, body text, price numeric);
CREATE TABLE items (id bigint PRIMARY KEY, qty bigint);
CREATE TABLE orders (order_id bigint, product_id bigint, qty bigint, note text);
CREATE TABLE clicks (user_id bigint, url text);
CREATE VIEW totals AS
  SELECT p.id AS product_id, p.title, count(*) AS n, sum(o.qty) AS units
  FROM orders o JOIN products p ON p.id = o.product_id
  GROUP BY p.id, p.title;
CREATE VIEW top_products AS SELECT product_id, units FROM totals ORDER BY units DESC, product_id LIMIT 3;
CREATE VIEW failing AS SELECT id, 100 / qty AS x FROM items;
CREATE SINK s FROM products INTO SEARCH WITH (fields = 'title^2, body');
CREATE SINK f FROM totals INTO FILE 'totals.jsonl';
`;

interface Product {
  id: number;
  title: string;
  body: string;
  price: string;
}
interface Order {
  order_id: number;
  product_id: number;
  qty: number;
  note?: string;
}

/** What the pipeline should hold: the tests keep it in step with their appends. */
class Model {
  products = new Map<number, Product>();
  orders: Order[] = [];
  totals(): Array<{ product_id: number; title: string; n: number; units: string }> {
    const groups = new Map<number, { n: number; units: bigint }>();
    for (const order of this.orders) {
      if (!this.products.has(order.product_id)) continue;
      const group = groups.get(order.product_id) ?? { n: 0, units: 0n };
      group.n++;
      group.units += BigInt(order.qty);
      groups.set(order.product_id, group);
    }
    return [...groups].map(([id, g]) => ({ product_id: id, title: this.products.get(id)!.title, n: g.n, units: String(g.units) }));
  }
  topProducts(): Array<{ product_id: number; units: string }> {
    return this.totals()
      .sort((a, b) => Number(BigInt(b.units) - BigInt(a.units)) || a.product_id - b.product_id)
      .slice(0, 3)
      .map(({ product_id, units }) => ({ product_id, units }));
  }
}

const PRODUCTS: Product[] = [
  { id: 1, title: 'Desk lamp', body: 'A bright lamp for the desk', price: '19.90' },
  { id: 2, title: 'Office chair', body: 'Sits nicely next to a desk lamp', price: '49' },
  { id: 3, title: 'Café table', body: 'Round oak table', price: '99.50' },
  { id: 4, title: 'Sofa', body: 'lamp, desk and sofa set', price: '250' },
  { id: 5, title: 'Oak stool', body: 'three sturdy legs', price: '35' },
];
const ORDERS: Order[] = [
  { order_id: 1, product_id: 1, qty: 2, note: 'first' },
  { order_id: 2, product_id: 2, qty: 5 },
  { order_id: 3, product_id: 1, qty: 1 },
  { order_id: 4, product_id: 3, qty: 4 },
  { order_id: 5, product_id: 5, qty: 1 },
];

function json(value: unknown): { body: string; headers: Record<string, string> } {
  return { body: JSON.stringify(value), headers: { 'content-type': 'application/json' } };
}

function metric(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  assert.ok(line, `metric ${name} is missing`);
  return Number(line.slice(name.length + 1));
}

describe('HTTP contract against the runtime', () => {
  let dir: string;
  let runtime: PipelineRuntime;
  let server: Server;
  const model = new Model();
  const get = (p: string, headers?: Record<string, string>) => call(server.url, 'GET', p, headers ? { headers } : {});
  const post = (p: string, body: string | Buffer, headers: Record<string, string> = { 'content-type': 'application/json' }) => call(server.url, 'POST', p, { body, headers });
  const append = async (table: string, rows: unknown, headers?: Record<string, string>): Promise<Reply> => {
    const reply = await post(`/v1/tables/${table}/events`, JSON.stringify(rows), headers);
    assert.equal(reply.status, 200, reply.text);
    return reply;
  };

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-http-contract-'));
    runtime = await PipelineRuntime.open({ text: PIPELINE, file: 'p.sql', data: dir });
    runtime.start();
    server = await serve(runtime, { port: 0, log: () => {} });
    await append('products', PRODUCTS);
    for (const p of PRODUCTS) model.products.set(p.id, p);
    await append('orders', ORDERS);
    model.orders.push(...ORDERS);
    const last = await append('items', { id: 1, qty: 4 });
    // Every view reflects the seed once this read answers.
    assert.equal((await get(`/v1/views/failing?atLeast=${last.json.position}`)).status, 200);
  });

  after(async () => {
    await server?.close();
    await runtime?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('GET / is a JSON index of every endpoint', async () => {
    const reply = await get('/');
    assert.equal(reply.status, 200);
    assert.match(reply.headers.get('content-type') ?? '', /^application\/json/);
    assert.equal(reply.json.name, 'sluice');
    assert.equal(typeof reply.json.version, 'string');
    assert.deepEqual(
      reply.json.endpoints.map((e: { method: string; path: string }) => `${e.method} ${e.path}`),
      ['GET /', 'GET /v1/status', 'GET /v1/views', 'GET /v1/views/:name', 'GET /v1/views/:name/changes', 'POST /v1/query', 'GET /v1/search/:name', 'POST /v1/tables/:name/events', 'GET /metrics'],
    );
    for (const e of reply.json.endpoints) assert.ok(e.description.length > 0);
    assertError(await get('/v2/nothing'), 404, 'route_unknown');
    assertError(await call(server.url, 'DELETE', '/v1/status'), 405, 'method_not_allowed');
  });

  it('GET /v1/status names tables, views, sinks and the position', async () => {
    const reply = await get('/v1/status');
    assert.equal(reply.status, 200);
    const status = reply.json;
    assert.equal(status.state, 'running');
    assert.equal(typeof status.position, 'string');
    assert.deepEqual(
      status.tables.map((t: { name: string; rows: number; lag: number; endOffset: number; processedOffset: number }) => [t.name, t.rows, t.lag, t.endOffset === t.processedOffset]),
      [['products', 5, 0, true], ['items', 1, 0, true], ['orders', 5, 0, true], ['clicks', 0, 0, true]],
    );
    assert.deepEqual(
      status.views.map((v: { name: string; rows: number; failure?: unknown }) => [v.name, v.rows, v.failure]),
      [['totals', 4, undefined], ['top_products', 3, undefined], ['failing', 1, undefined]],
    );
    assert.deepEqual(
      status.sinks.map((s: { name: string; kind: string; view: string }) => [s.name, s.kind, s.view]),
      [['s', 'search', 'products'], ['f', 'file', 'totals']],
    );
    assert.equal(status.sinks[1].file, path.join(dir, 'totals.jsonl'));
    assert.ok(status.steps >= 1);
    assert.equal(status.eventsProcessed, 11);
    // The status's position is the position reads name.
    assert.equal((await get('/v1/views/totals')).json.position, status.position);
  });

  it('GET /v1/views lists tables and views with their schemas, and the search sinks', async () => {
    const reply = await get('/v1/views');
    assert.equal(reply.status, 200);
    assert.deepEqual(reply.json, {
      views: [
        { name: 'products', kind: 'table', columns: [{ name: 'id', type: 'bigint' }, { name: 'title', type: 'text' }, { name: 'body', type: 'text' }, { name: 'price', type: 'numeric' }], key: ['id'] },
        { name: 'items', kind: 'table', columns: [{ name: 'id', type: 'bigint' }, { name: 'qty', type: 'bigint' }], key: ['id'] },
        { name: 'orders', kind: 'table', columns: [{ name: 'order_id', type: 'bigint' }, { name: 'product_id', type: 'bigint' }, { name: 'qty', type: 'bigint' }, { name: 'note', type: 'text' }] },
        { name: 'clicks', kind: 'table', columns: [{ name: 'user_id', type: 'bigint' }, { name: 'url', type: 'text' }] },
        { name: 'totals', kind: 'view', columns: [{ name: 'product_id', type: 'bigint' }, { name: 'title', type: 'text' }, { name: 'n', type: 'bigint' }, { name: 'units', type: 'numeric' }] },
        { name: 'top_products', kind: 'view', columns: [{ name: 'product_id', type: 'bigint' }, { name: 'units', type: 'numeric' }] },
        { name: 'failing', kind: 'view', columns: [{ name: 'id', type: 'bigint' }, { name: 'x', type: 'bigint' }] },
      ],
      search: [{ name: 's', view: 'products', fields: 'title^2, body' }],
    });
  });

  it('a table reads in key order with limit/offset and typed filters', async () => {
    const ids = async (q: string) => {
      const reply = await get(`/v1/views/products${q}`);
      assert.equal(reply.status, 200, reply.text);
      assert.equal(typeof reply.json.position, 'string');
      return reply.json.rows.map((r: Product) => r.id);
    };
    const all = await get('/v1/views/products');
    assert.deepEqual(all.json.rows, PRODUCTS);
    assert.deepEqual(await ids('?limit=2'), [1, 2]);
    assert.deepEqual(await ids('?limit=2&offset=1'), [2, 3]);
    assert.deepEqual(await ids('?limit=2&offset=4'), [5]);
    assert.deepEqual(await ids('?offset=9'), []);
    assert.deepEqual(await ids('?title=Sofa'), [4]);
    assert.deepEqual(await ids(`?title=${encodeURIComponent('Café table')}`), [3]);
    assert.deepEqual(await ids('?id=3'), [3]);
    assert.deepEqual(await ids('?price=19.90'), [1]);
    assert.deepEqual(await ids('?price=19.9'), [1]);
    assert.deepEqual(await ids('?id=03'), [3]);
    assert.deepEqual(await ids('?price=49&title=Sofa'), []);
    const orders = await get('/v1/views/orders?product_id=1');
    assert.deepEqual(canonical(orders.json.rows), canonical([{ ...ORDERS[0]! }, { ...ORDERS[2]!, note: null }]));
    assertError(await get('/v1/views/products?limit=-1'), 400, 'param_invalid');
    assertError(await get('/v1/views/products?limit=abc'), 400, 'param_invalid');
  });

  it('a bad filter value on a table is 400 filter_invalid, like on a view', async () => {
    const error = assertError(await get('/v1/views/products?price=abc'), 400, 'filter_invalid');
    assert.match(error.message, /price/);
    assert.doesNotMatch(error.message, /SELECT/);
    assertError(await get('/v1/views/products?id=abc'), 400, 'filter_invalid');
  });

  it('a view reads exactly the query over its inputs, with typed filters and paging', async () => {
    const reply = await get('/v1/views/totals');
    assert.equal(reply.status, 200);
    assert.deepEqual(canonical(reply.json.rows), canonical(model.totals()));
    assert.deepEqual((await get('/v1/views/totals?product_id=2')).json.rows, [{ product_id: 2, title: 'Office chair', n: 1, units: '5' }]);
    assert.deepEqual((await get(`/v1/views/totals?title=${encodeURIComponent('Café table')}`)).json.rows, [{ product_id: 3, title: 'Café table', n: 1, units: '4' }]);
    assert.deepEqual((await get('/v1/views/totals?units=4')).json.rows, [{ product_id: 3, title: 'Café table', n: 1, units: '4' }]);
    assert.deepEqual((await get('/v1/views/totals?units=4.0')).json.rows, [{ product_id: 3, title: 'Café table', n: 1, units: '4' }]);
    assert.deepEqual(canonical((await get('/v1/views/totals?n=1')).json.rows), canonical(model.totals().filter((t) => t.n === 1)));
    assertError(await get('/v1/views/totals?units=abc'), 400, 'filter_invalid');
    assertError(await get('/v1/views/totals?n=1&n=2'), 400, 'param_invalid');
    // Pages of one row: disjoint, and together the whole view.
    const pages: unknown[] = [];
    for (let offset = 0; offset < 5; offset++) pages.push(...(await get(`/v1/views/totals?limit=1&offset=${offset}`)).json.rows);
    assert.equal(pages.length, 4);
    assert.deepEqual(canonical(pages as Record<string, unknown>[]), canonical(model.totals()));
  });

  it('an ORDER BY … LIMIT view comes back in its order', async () => {
    const reply = await get('/v1/views/top_products');
    assert.deepEqual(reply.json.rows, [{ product_id: 2, units: '5' }, { product_id: 3, units: '4' }, { product_id: 1, units: '3' }]);
    assert.deepEqual(reply.json.rows, model.topProducts());
    assert.deepEqual((await get('/v1/views/top_products?limit=2&offset=1')).json.rows, [{ product_id: 3, units: '4' }, { product_id: 1, units: '3' }]);
  });

  it('atLeast=TOKEN from an append reads that append (read-your-writes)', async () => {
    const order = { order_id: 6, product_id: 5, qty: 9 };
    const reply = await append('orders', order);
    assert.deepEqual(Object.keys(reply.json).sort(), ['count', 'duplicate', 'position']);
    assert.equal(reply.json.count, 1);
    assert.equal(reply.json.duplicate, false);
    model.orders.push(order);
    const read = await get(`/v1/views/top_products?atLeast=${reply.json.position}`);
    assert.equal(read.status, 200);
    assert.deepEqual(read.json.rows, [{ product_id: 5, units: '10' }, { product_id: 2, units: '5' }, { product_id: 3, units: '4' }]);
    assert.deepEqual(read.json.rows, model.topProducts());
    const totals = await get(`/v1/views/totals?product_id=5&atLeast=${reply.json.position}`);
    assert.deepEqual(totals.json.rows, [{ product_id: 5, title: 'Oak stool', n: 2, units: '10' }]);
    // A read's position covers the append's.
    const position = JSON.parse(Buffer.from(read.json.position, 'base64url').toString());
    const appended = JSON.parse(Buffer.from(reply.json.position, 'base64url').toString());
    for (const [topic, offset] of Object.entries(appended)) assert.ok(position[topic] >= (offset as number));
  });

  it('a bad position token is 400 position_invalid', async () => {
    assertError(await get('/v1/views/totals?atLeast=not%20a%20token'), 400, 'position_invalid');
    assertError(await get('/v1/views/totals?atLeast=garbage'), 400, 'position_invalid');
    const foreign = Buffer.from(JSON.stringify({ 'table.nope': 1 })).toString('base64url');
    assertError(await get(`/v1/views/totals?atLeast=${foreign}`), 400, 'position_invalid');
    assertError(await get('/v1/search/s?q=lamp&atLeast=garbage'), 400, 'position_invalid');
    assertError(await get('/v1/views/totals/changes?from=garbage'), 400, 'position_invalid');
  });

  it('an unknown view is 404 relation_unknown with a "did you mean" hint', async () => {
    const error = assertError(await get('/v1/views/totls'), 404, 'relation_unknown');
    assert.match(error.message, /totls/);
    assert.match(error.hint, /did you mean "totals"/);
    assert.match(assertError(await get('/v1/views/product'), 404, 'relation_unknown').hint, /did you mean "products"/);
    assertError(await get('/v1/views/totls/changes'), 404, 'relation_unknown');
  });

  it('an unknown filter column is 400 and names the columns', async () => {
    const error = assertError(await get('/v1/views/totals?nope=1'), 400, 'filter_invalid');
    assert.match(error.message, /nope/);
    assert.match(error.hint, /product_id, title, n, units/);
    assertError(await get('/v1/views/products?nope=1'), 400, 'filter_invalid');
  });

  it('POST /v1/query runs a SELECT over views and tables', async () => {
    const reply = await post('/v1/query', JSON.stringify({ sql: 'SELECT t.product_id, p.price, t.units FROM totals t JOIN products p ON p.id = t.product_id ORDER BY t.product_id' }));
    assert.equal(reply.status, 200, reply.text);
    assert.deepEqual(reply.json.columns, [{ name: 'product_id', type: 'bigint' }, { name: 'price', type: 'numeric' }, { name: 'units', type: 'numeric' }]);
    const expected = model
      .totals()
      .sort((a, b) => a.product_id - b.product_id)
      .map((t) => ({ product_id: t.product_id, price: model.products.get(t.product_id)!.price, units: t.units }));
    assert.deepEqual(reply.json.rows, expected);
    assert.equal(typeof reply.json.position, 'string');
    const count = await post('/v1/query', JSON.stringify({ sql: 'SELECT count(*) AS c, sum(qty) AS q FROM orders WHERE product_id <> 2' }));
    const rest = model.orders.filter((o) => o.product_id !== 2);
    assert.deepEqual(count.json.rows, [{ c: rest.length, q: String(rest.reduce((s, o) => s + o.qty, 0)) }]);
  });

  it('POST /v1/query refuses what is not one SELECT, bad JSON and bad SQL (naming line:column)', async () => {
    assertError(await post('/v1/query', JSON.stringify({ sql: 'INSERT INTO items VALUES (7, 1)' })), 400, 'sql_not_query');
    assertError(await post('/v1/query', JSON.stringify({ sql: 'CREATE VIEW v2 AS SELECT 1' })), 400, 'sql_not_query');
    assertError(await post('/v1/query', JSON.stringify({ sql: 'SELECT 1; SELECT 2' })), 400, 'sql_not_query');
    assertError(await post('/v1/query', '{"sql": "SELECT 1"'), 400, 'json_invalid');
    assertError(await post('/v1/query', 'not json at all'), 400, 'json_invalid');
    assertError(await post('/v1/query', JSON.stringify({ query: 'SELECT 1' })), 400, 'body_invalid');
    const column = await post('/v1/query', JSON.stringify({ sql: 'SELECT product_id,\n  nope FROM totals' }));
    assert.equal(column.status, 400);
    assert.match(column.json.error.code, /^sql_/);
    assert.match(column.json.error.message, /2:3/);
    const syntax = await post('/v1/query', JSON.stringify({ sql: 'SELECT FROM WHERE' }));
    assert.equal(syntax.status, 400);
    assert.match(syntax.json.error.code, /^sql_/);
    assert.match(syntax.json.error.message, /\d+:\d+/);
    const relation = await post('/v1/query', JSON.stringify({ sql: 'SELECT * FROM nowhere' }));
    assert.equal(relation.status, 400, relation.text);
    assert.match(relation.json.error.message, /1:15/);
    assertError(await post('/v1/query', JSON.stringify({ sql: '' })), 400, 'sql_empty');
    assert.match(assertError(await post('/v1/query', JSON.stringify({ sql: 'SELECT 1/0' })), 400, 'sql_division_by_zero').message, /1:1: division by zero/);
  });

  it('search ranks a title match (^2) above a body match', async () => {
    const reply = await get('/v1/search/s?q=oak');
    assert.equal(reply.status, 200, reply.text);
    assert.deepEqual(reply.json.hits.map((h: { row: Product }) => h.row.id), [5, 3]);
    assert.deepEqual(reply.json.hits[0].row, PRODUCTS[4]);
    assert.ok(reply.json.hits[0].score > reply.json.hits[1].score);
    assert.equal(typeof reply.json.position, 'string');
    // The view's name finds its only search sink too.
    assert.deepEqual((await get('/v1/search/products?q=oak')).json.hits, reply.json.hits);
    assert.deepEqual((await get('/v1/search/s?q=oak&limit=1')).json.hits.map((h: { row: Product }) => h.row.id), [5]);
  });

  it('search: prefix, phrase, accents and highlights', async () => {
    const ids = async (q: string) => {
      const reply = await get(`/v1/search/s?q=${encodeURIComponent(q)}`);
      assert.equal(reply.status, 200, `${q}: ${reply.text}`);
      return reply.json.hits.map((h: { row: Product }) => h.row.id).sort();
    };
    assert.deepEqual(await ids('lam*'), [1, 2, 4]);
    assert.deepEqual(await ids('lamp'), [1, 2, 4]);
    assert.deepEqual(await ids('"desk lamp"'), [1, 2]);
    assert.deepEqual(await ids('cafe'), [3]);
    assert.deepEqual(await ids('CAFÉ'), [3]);
    assert.deepEqual(await ids('nothingmatches'), []);
    const hit = (await get('/v1/search/s?q=cafe')).json.hits[0];
    assert.match(hit.highlights.title, /<mark>Café<\/mark>/);
    const lamp = (await get('/v1/search/s?q=lamp')).json.hits.find((h: { row: Product }) => h.row.id === 1);
    assert.equal(lamp.highlights.title, 'Desk <mark>lamp</mark>');
    assert.equal(lamp.highlights.body, 'A bright <mark>lamp</mark> for the desk');
  });

  it('search: an updated product replaces its document', async () => {
    const updated = { id: 5, title: 'Pine stool', body: 'three sturdy legs', price: '35' };
    const reply = await append('products', updated);
    model.products.set(5, updated);
    const oak = await get(`/v1/search/s?q=oak&atLeast=${reply.json.position}`);
    assert.deepEqual(oak.json.hits.map((h: { row: Product }) => h.row.id), [3]);
    const pine = await get('/v1/search/s?q=pine');
    assert.deepEqual(pine.json.hits.map((h: { row: Product }) => h.row), [updated]);
    // The join view follows the new title.
    assert.deepEqual((await get('/v1/views/totals?product_id=5')).json.rows, [{ product_id: 5, title: 'Pine stool', n: 2, units: '10' }]);
    // Highlights are HTML: the row's own markup is escaped, only <mark> is added.
    const html = { id: 6, title: '<b>Shade</b> & <mark>frame</mark>', body: 'x', price: '1' };
    const added = await append('products', html);
    model.products.set(6, html);
    const shade = await get(`/v1/search/s?q=shade&atLeast=${added.json.position}`);
    assert.deepEqual(shade.json.hits.map((h: { row: Product }) => h.row), [html]);
    assert.equal(shade.json.hits[0].highlights.title, '&lt;b&gt;<mark>Shade</mark>&lt;/b&gt; &amp; &lt;mark&gt;frame&lt;/mark&gt;');
  });

  it('search: FTS5 syntax in q is never a 500', async () => {
    for (const q of ['title:lamp', 'title:foo', 'NEAR(desk lamp)', 'NEAR(a b)', '*', '"unbalanced', 'AND OR', 'lamp AND', 'OR', 'NOT', '^', '^lamp', 'col:', ':', '(', ')', 'lamp)', '"', '""', '-', '+', 'a:b:c', 'body : desk', '{title body}: lamp', 'lamp*', '**', "'", '\\', ' ', '']) {
      const reply = await get(`/v1/search/s?q=${encodeURIComponent(q)}`);
      assert.ok(reply.status === 200 || reply.status === 400, `q=${JSON.stringify(q)} → ${reply.status} ${reply.text}`);
      if (reply.status === 400) {
        assert.equal(reply.json.error.code, 'search_query', `q=${JSON.stringify(q)}: ${reply.text}`);
        assert.ok(reply.json.error.message.length > 10);
      } else assert.ok(Array.isArray(reply.json.hits));
    }
    assertError(await get('/v1/search/s'), 400, 'param_invalid');
  });

  it('search: an unknown index is 404', async () => {
    const error = assertError(await get('/v1/search/nope?q=lamp'), 404, 'relation_unknown');
    assert.match(error.message, /nope/);
    assertError(await get('/v1/search/totals?q=lamp'), 404, 'relation_unknown');
  });

  it('events: an object, an array and NDJSON are appended', async () => {
    const one = await append('clicks', { user_id: 1, url: '/a' });
    assert.equal(one.json.count, 1);
    const many = await append('clicks', [{ user_id: 2, url: '/b' }, { user_id: 3, url: '/c' }]);
    assert.equal(many.json.count, 2);
    const nd = await post('/v1/tables/clicks/events', '{"user_id":4,"url":"/d"}\n\n{"user_id":5,"url":"/e"}\n', { 'content-type': 'application/x-ndjson' });
    assert.equal(nd.status, 200, nd.text);
    assert.equal(nd.json.count, 2);
    const read = await get(`/v1/views/clicks?atLeast=${nd.json.position}`);
    assert.deepEqual(canonical(read.json.rows), canonical([1, 2, 3, 4, 5].map((i) => ({ user_id: i, url: `/${'abcde'[i - 1]}` }))));
    // Positions move forward.
    const offset = (token: string) => JSON.parse(Buffer.from(token, 'base64url').toString())['table.clicks'];
    assert.deepEqual([offset(one.json.position), offset(many.json.position), offset(nd.json.position)], [1, 2, 3]);
  });

  it('events: a 50,000-row NDJSON body is appended whole and visible', async () => {
    const lines: string[] = [];
    for (let i = 0; i < 50_000; i++) lines.push(JSON.stringify({ user_id: 1000 + i, url: `/big/${i}` }));
    const reply = await post('/v1/tables/clicks/events', lines.join('\n'), { 'content-type': 'application/x-ndjson' });
    assert.equal(reply.status, 200, reply.text);
    assert.equal(reply.json.count, 50_000);
    const last = await get(`/v1/views/clicks?user_id=50999&atLeast=${reply.json.position}`);
    assert.deepEqual(last.json.rows, [{ user_id: 50999, url: '/big/49999' }]);
    const count = await post('/v1/query', JSON.stringify({ sql: "SELECT count(*) AS c FROM clicks WHERE url LIKE '/big/%'" }));
    assert.deepEqual(count.json.rows, [{ c: 50_000 }]);
    const status = (await get('/v1/status')).json;
    assert.equal(status.tables.find((t: { name: string }) => t.name === 'clicks').rows, 50_005);
  });

  it('events: the same Idempotency-Key twice appends once', async () => {
    const order = { order_id: 7, product_id: 4, qty: 7 };
    const headers = { 'content-type': 'application/json', 'idempotency-key': 'order-7-attempt' };
    const first = await append('orders', order, headers);
    const second = await append('orders', order, headers);
    assert.deepEqual(first.json, { position: first.json.position, count: 1, duplicate: false });
    assert.deepEqual(second.json, { position: first.json.position, count: 0, duplicate: true });
    model.orders.push(order);
    // A different key is a different append (of another row, so the model stays simple).
    const other = await append('orders', { order_id: 8, product_id: 4, qty: 1 }, { ...headers, 'idempotency-key': 'order-8' });
    assert.equal(other.json.duplicate, false);
    model.orders.push({ order_id: 8, product_id: 4, qty: 1 });
    const read = await get(`/v1/views/totals?product_id=4&atLeast=${other.json.position}`);
    assert.deepEqual(read.json.rows, [{ product_id: 4, title: 'Sofa', n: 2, units: '8' }]);
    assert.deepEqual(canonical((await get('/v1/views/totals')).json.rows), canonical(model.totals()));
    assertError(await post('/v1/tables/orders/events', JSON.stringify(order), { 'idempotency-key': 'x'.repeat(201) }), 400, 'header_invalid');
  });

  it('events: a row with a wrong type is 400 naming row and column, and nothing of the request applies', async () => {
    const before = (await get('/v1/status')).json.tables.find((t: { name: string }) => t.name === 'items');
    const error = assertError(await post('/v1/tables/items/events', JSON.stringify([{ id: 50, qty: 1 }, { id: 51, qty: 'many' }])), 400, 'row_invalid');
    assert.match(error.message, /row 1/);
    assert.match(error.message, /qty/);
    const ndjson = assertError(await post('/v1/tables/items/events', '{"id":52,"qty":1}\n{"id":53,"qty":1}\n{"id":"x","qty":1}\n', { 'content-type': 'application/x-ndjson' }), 400, 'row_invalid');
    assert.match(ndjson.message, /row 2|line 3/);
    assert.match(ndjson.message, /"id"/);
    assertError(await post('/v1/tables/items/events', '{"id":54,"qty":1}\n{"id":55,"qty":\n', { 'content-type': 'application/x-ndjson' }), 400, 'json_invalid');
    const unknown = assertError(await post('/v1/tables/items/events', JSON.stringify([{ id: 56, qty: 1 }, { id: 57, qty: 1, colour: 'red' }])), 400, 'row_invalid');
    assert.match(unknown.message, /colour/);
    assertError(await post('/v1/tables/items/events', JSON.stringify([])), 400, 'body_invalid');
    assertError(await post('/v1/tables/items/events', JSON.stringify([{ id: 58, qty: 1 }, 2])), 400, 'body_invalid');
    assert.match(assertError(await post('/v1/tables/items/events', '{"id":59,"qty":1}\n[2]\n', { 'content-type': 'application/x-ndjson' }), 400, 'body_invalid').message, /line 2/);
    assertError(await post('/v1/tables/items/events', JSON.stringify([{ id: 61, qty: 1.5 }])), 400, 'row_invalid');
    assertError(await post('/v1/tables/items/events', JSON.stringify([{ id: 62, qty: '99999999999999999999' }])), 400, 'row_invalid');
    // A later good append, read with atLeast: none of the refused rows is there.
    const good = await append('items', { id: 60, qty: 2 });
    const read = await get(`/v1/views/items?atLeast=${good.json.position}`);
    assert.deepEqual(read.json.rows, [{ id: 1, qty: 4 }, { id: 60, qty: 2 }]);
    const afterwards = (await get('/v1/status')).json.tables.find((t: { name: string }) => t.name === 'items');
    assert.equal(afterwards.endOffset, before.endOffset + 1);
    assert.deepEqual((await get('/v1/views/failing')).json.rows.sort((a: { id: number }, b: { id: number }) => a.id - b.id), [{ id: 1, x: 25 }, { id: 60, x: 50 }]);
  });

  it('events: concurrent requests with one Idempotency-Key append once', async () => {
    const headers = { 'content-type': 'application/json', 'idempotency-key': 'clicks-concurrent' };
    const replies = await Promise.all([1, 2, 3].map(() => post('/v1/tables/clicks/events', JSON.stringify({ user_id: 777_777, url: '/once' }), headers)));
    for (const reply of replies) assert.equal(reply.status, 200, reply.text);
    assert.equal(replies.filter((r) => r.json.duplicate === false).length, 1);
    assert.equal(new Set(replies.map((r) => r.json.position)).size, 1);
    const read = await get(`/v1/views/clicks?user_id=777777&atLeast=${replies[0]!.json.position}`);
    assert.deepEqual(read.json.rows, [{ user_id: 777_777, url: '/once' }]);
  });

  it('events: a row without its key is 400 row_invalid naming row and column', async () => {
    const error = assertError(await post('/v1/tables/items/events', JSON.stringify([{ id: 70, qty: 1 }, { qty: 1 }])), 400, 'row_invalid');
    assert.match(error.message, /row 1/);
    assert.match(error.message, /"id"/);
  });

  it('events: an unknown table is 404 with a hint', async () => {
    const error = assertError(await post('/v1/tables/ordres/events', JSON.stringify({ order_id: 1 })), 404, 'relation_unknown');
    assert.match(error.hint, /did you mean "orders"/);
    // Views are not appendable.
    assertError(await post('/v1/tables/totals/events', JSON.stringify({ product_id: 1 })), 404, 'relation_unknown');
  });

  it('events: an oversized body is 413 and nothing is appended', async () => {
    const small = await serve(runtime, { port: 0, maxBodyBytes: 1_000, log: () => {} });
    try {
      const rows = Array.from({ length: 100 }, (_, i) => ({ user_id: 900_000 + i, url: '/too-big' }));
      const reply = await call(small.url, 'POST', '/v1/tables/clicks/events', { body: JSON.stringify(rows), headers: { 'content-type': 'application/json' } });
      assertError(reply, 413, 'body_too_large');
      const fits = await call(small.url, 'POST', '/v1/tables/clicks/events', { body: JSON.stringify({ user_id: 800_000, url: '/fits' }), headers: { 'content-type': 'application/json' } });
      assert.equal(fits.status, 200, fits.text);
      const read = await get(`/v1/views/clicks?url=%2Ftoo-big&atLeast=${fits.json.position}`);
      assert.deepEqual(read.json.rows, []);
      assertError(await call(small.url, 'POST', '/v1/query', { body: JSON.stringify({ sql: `SELECT '${'x'.repeat(2_000)}'` }) }), 413, 'body_too_large');
    } finally {
      await small.close();
    }
  });

  it('changes: SSE events carry insert/delete changes and resume exactly from ?from= and Last-Event-ID', async () => {
    const live = await SseClient.open(`${server.url}/v1/views/totals/changes`);
    try {
      assert.equal(live.status, 200);
      assert.match(live.contentType, /^text\/event-stream/);
      const appends = [
        { order_id: 20, product_id: 1, qty: 10 }, // product 1 changes: delete old, insert new
        { order_id: 21, product_id: 2, qty: 1 },
        { order_id: 22, product_id: 3, qty: 2 },
      ];
      const positions: string[] = [];
      for (const order of appends) {
        const before = model.totals().find((t) => t.product_id === order.product_id)!;
        const reply = await append('orders', order);
        model.orders.push(order);
        positions.push(reply.json.position);
        assert.equal((await get(`/v1/views/totals?atLeast=${reply.json.position}`)).status, 200);
        const after = model.totals().find((t) => t.product_id === order.product_id)!;
        await live.waitFor(positions.length);
        const event = live.events[positions.length - 1]!;
        assert.equal(typeof event.id, 'string');
        assert.deepEqual(
          [...event.data.changes].sort((a: { op: string }, b: { op: string }) => a.op.localeCompare(b.op)),
          [{ op: 'delete', row: before }, { op: 'insert', row: after }],
        );
      }
      assert.equal(live.events.length, 3);
      // Each event's id is the position reached: it covers that step's append.
      for (let i = 0; i < 3; i++) {
        const id = JSON.parse(Buffer.from(live.events[i]!.id!, 'base64url').toString());
        const appended = JSON.parse(Buffer.from(positions[i]!, 'base64url').toString());
        assert.ok(id['table.orders'] >= appended['table.orders']);
      }
      const first = live.events[0]!.id!;
      const expected = live.events.slice(1);
      const fromQuery = await SseClient.open(`${server.url}/v1/views/totals/changes?from=${first}`);
      const fromHeader = await SseClient.open(`${server.url}/v1/views/totals/changes`, { 'last-event-id': first });
      try {
        await fromQuery.waitFor(expected.length);
        await fromHeader.waitFor(expected.length);
        // One more step after the resume: all three streams see it.
        const order = { order_id: 23, product_id: 1, qty: 1 };
        await append('orders', order);
        model.orders.push(order);
        await live.waitFor(4);
        await fromQuery.waitFor(expected.length + 1);
        await fromHeader.waitFor(expected.length + 1);
        assert.deepEqual(fromQuery.events, live.events.slice(1));
        assert.deepEqual(fromHeader.events, live.events.slice(1));
        // From the last event: nothing replayed.
        const fromLast = await SseClient.open(`${server.url}/v1/views/totals/changes?from=${live.events[3]!.id}`);
        try {
          await new Promise((resolve) => setTimeout(resolve, 200));
          assert.deepEqual(fromLast.events, []);
        } finally {
          await fromLast.close();
        }
      } finally {
        await fromQuery.close();
        await fromHeader.close();
      }
    } finally {
      await live.close();
    }
  });

  it('GET /metrics is Prometheus text whose counters move with appends', async () => {
    const before = await get('/metrics');
    assert.equal(before.status, 200);
    assert.match(before.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    assert.match(before.text, /^# HELP sluice_steps_total .+\n# TYPE sluice_steps_total counter\n/m);
    for (const line of before.text.split('\n')) {
      if (line === '' || line.startsWith('#')) continue;
      assert.match(line, /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"(,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*")*\})? -?[0-9.e+-]+|NaN|[+-]Inf$/, `bad metric line ${JSON.stringify(line)}`);
    }
    const steps = metric(before.text, 'sluice_steps_total');
    const events = metric(before.text, 'sluice_events_processed_total');
    const appended = metric(before.text, 'sluice_table_events_appended_total{table="orders"}');
    const reply = await append('orders', [{ order_id: 30, product_id: 9, qty: 1 }, { order_id: 31, product_id: 9, qty: 1 }]);
    model.orders.push({ order_id: 30, product_id: 9, qty: 1 }, { order_id: 31, product_id: 9, qty: 1 });
    await get(`/v1/views/totals?atLeast=${reply.json.position}`);
    const afterText = (await get('/metrics')).text;
    assert.equal(metric(afterText, 'sluice_steps_total'), steps + 1);
    assert.equal(metric(afterText, 'sluice_events_processed_total'), events + 2);
    assert.equal(metric(afterText, 'sluice_table_events_appended_total{table="orders"}'), appended + 2);
  });

  it('a failing view answers 409 view_failed while the others serve, and recovers when the bad row is replaced', async () => {
    const bad = await append('items', { id: 9, qty: 0 });
    const failed = await get(`/v1/views/failing?atLeast=${bad.json.position}`);
    const error = assertError(failed, 409, 'view_failed');
    assert.match(error.message, /division by zero/);
    assert.deepEqual(canonical((await get(`/v1/views/totals?atLeast=${bad.json.position}`)).json.rows), canonical(model.totals()));
    assert.equal((await get('/v1/views/items?id=9')).json.rows.length, 1);
    assert.equal((await get('/v1/search/s?q=lamp')).status, 200);
    const status = (await get('/v1/status')).json;
    assert.equal(status.state, 'running');
    const view = status.views.find((v: { name: string }) => v.name === 'failing');
    assert.match(view.failure.message, /division by zero/);
    // Still failing after an unrelated step.
    const unrelated = await append('clicks', { user_id: 7, url: '/x' });
    assertError(await get(`/v1/views/failing?atLeast=${unrelated.json.position}`), 409, 'view_failed');
    const fixed = await append('items', { id: 9, qty: 1 });
    const recovered = await get(`/v1/views/failing?atLeast=${fixed.json.position}`);
    assert.equal(recovered.status, 200, recovered.text);
    assert.deepEqual(recovered.json.rows.sort((a: { id: number }, b: { id: number }) => a.id - b.id), [{ id: 1, x: 25 }, { id: 9, x: 100 }, { id: 60, x: 50 }]);
    assert.equal((await get('/v1/status')).json.views.find((v: { name: string }) => v.name === 'failing').failure, undefined);
  });

  it('the file sink holds exactly the changes of its view', async () => {
    const status = (await get('/v1/status')).json;
    const reply = await get(`/v1/views/totals?atLeast=${status.position}`);
    assert.equal(reply.status, 200);
    assert.deepEqual(foldChanges(fs.readFileSync(path.join(dir, 'totals.jsonl'), 'utf8')), canonical(reply.json.rows));
  });

  it('auth: off loopback needs a token; with one, only the right bearer gets in', async () => {
    await assert.rejects(serve(runtime, { host: '0.0.0.0', port: 0, log: () => {} }), (error: Error & { code?: string }) => error.code === 'serve_token_required');
    const guarded = await serve(runtime, { host: '0.0.0.0', port: 0, token: 's3cret-token', log: () => {} });
    try {
      const url = guarded.url.replace('0.0.0.0', '127.0.0.1');
      const none = await call(url, 'GET', '/v1/status');
      assertError(none, 401, 'unauthorized');
      assert.match(none.headers.get('www-authenticate') ?? '', /^Bearer/);
      assert.doesNotMatch(none.text, /s3cret/);
      assertError(await call(url, 'GET', '/v1/status', { headers: { authorization: 'Bearer wrong' } }), 401, 'unauthorized');
      assertError(await call(url, 'GET', '/v1/status', { headers: { authorization: 's3cret-token' } }), 401, 'unauthorized');
      assertError(await call(url, 'POST', '/v1/tables/clicks/events', { body: '{"user_id":1,"url":"/intruder"}' }), 401, 'unauthorized');
      assertError(await call(url, 'GET', '/v1/views/totals/changes'), 401, 'unauthorized');
      const ok = await call(url, 'GET', '/v1/status', { headers: { authorization: 'Bearer s3cret-token' } });
      assert.equal(ok.status, 200);
      assert.equal(ok.json.state, 'running');
      assert.equal((await get('/v1/views/clicks?url=%2Fintruder')).json.rows.length, 0);
    } finally {
      await guarded.close();
    }
  });

  it('atLeast a position the pipeline has not reached answers 504 wait_timeout after the bounded wait', async () => {
    const quick = await serve(runtime, { port: 0, waitTimeoutMs: 150, log: () => {} });
    try {
      const ahead = Buffer.from(JSON.stringify({ 'table.orders': 1_000_000 })).toString('base64url');
      const started = Date.now();
      const error = assertError(await call(quick.url, 'GET', `/v1/views/totals?atLeast=${ahead}`), 504, 'wait_timeout');
      assert.ok(Date.now() - started >= 140);
      assert.match(error.hint, /status/);
      assertError(await call(quick.url, 'GET', `/v1/search/s?q=lamp&atLeast=${ahead}`), 504, 'wait_timeout');
    } finally {
      await quick.close();
    }
  });

  it('after all the bad input, the server still serves', async () => {
    const reply = await get('/v1/status');
    assert.equal(reply.status, 200);
    assert.equal(reply.json.state, 'running');
    assert.equal(reply.json.error, undefined);
    assert.deepEqual(canonical((await get('/v1/views/totals')).json.rows), canonical(model.totals()));
  });
});

describe('change streams keep a bounded history', () => {
  it('a token older than what is kept is 410 position_expired; a recent one resumes', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-http-keep-'));
    const runtime = await PipelineRuntime.open({ text: 'CREATE TABLE t (id bigint PRIMARY KEY, v bigint);\nCREATE VIEW doubled AS SELECT id, v * 2 AS w FROM t;', file: 'p.sql', data: dir, keepChanges: 2 });
    runtime.start();
    const server = await serve(runtime, { port: 0, log: () => {} });
    try {
      const positions: string[] = [];
      for (let i = 1; i <= 5; i++) {
        const reply = await call(server.url, 'POST', '/v1/tables/t/events', { body: JSON.stringify({ id: i, v: i }) });
        assert.equal(reply.status, 200);
        const read = await call(server.url, 'GET', `/v1/views/doubled?atLeast=${reply.json.position}`);
        positions.push(read.json.position);
      }
      const expired = await SseClient.open(`${server.url}/v1/views/doubled/changes?from=${positions[0]}`);
      assert.equal(expired.status, 410);
      assert.equal((expired.errorBody as { error: { code: string } }).error.code, 'position_expired');
      const expiredHeader = await SseClient.open(`${server.url}/v1/views/doubled/changes`, { 'last-event-id': positions[1]! });
      assert.equal(expiredHeader.status, 410);
      const recent = await SseClient.open(`${server.url}/v1/views/doubled/changes?from=${positions[3]}`);
      try {
        assert.equal(recent.status, 200);
        await recent.waitFor(1);
        assert.deepEqual(recent.events, [{ id: positions[4], data: { changes: [{ op: 'insert', row: { id: 5, w: 10 } }] } }]);
      } finally {
        await recent.close();
      }
      assert.equal((await call(server.url, 'GET', '/v1/status')).status, 200);
    } finally {
      await server.close();
      await runtime.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('idempotency keys survive a restart', () => {
  it('a retry after a restart answers the first position and appends nothing', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-http-idem-'));
    const text = 'CREATE TABLE t (id bigint, v bigint);\nCREATE VIEW c AS SELECT count(*) AS n FROM t;';
    try {
      let first: Reply;
      {
        const runtime = await PipelineRuntime.open({ text, file: 'p.sql', data: dir });
        runtime.start();
        const server = await serve(runtime, { port: 0, log: () => {} });
        first = await call(server.url, 'POST', '/v1/tables/t/events', { body: '[{"id":1,"v":1},{"id":2,"v":2}]', headers: { 'idempotency-key': 'batch-1' } });
        assert.equal(first.status, 200);
        await server.close();
        await runtime.close();
      }
      const runtime = await PipelineRuntime.open({ text, file: 'p.sql', data: dir });
      runtime.start();
      const server = await serve(runtime, { port: 0, log: () => {} });
      try {
        const retry = await call(server.url, 'POST', '/v1/tables/t/events', { body: '[{"id":1,"v":1},{"id":2,"v":2}]', headers: { 'idempotency-key': 'batch-1' } });
        assert.deepEqual(retry.json, { position: first.json.position, count: 0, duplicate: true });
        const read = await call(server.url, 'GET', `/v1/views/c?atLeast=${first.json.position}`);
        assert.deepEqual(read.json.rows, [{ n: 2 }]);
      } finally {
        await server.close();
        await runtime.close();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('through the CLI', () => {
  const main = path.resolve(import.meta.dirname, '../../src/cli/main.ts');

  /** Starts `sluice up`; resolves with its URL once it prints `listening http://…`. */
  async function up(file: string, data: string): Promise<{ url: string; stop: () => Promise<number | null>; output: () => string }> {
    const child = spawn(process.execPath, [main, 'up', file, '--data', data, '--listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no "listening" line after 20 s: ${stdout}${stderr}`)), 20_000);
      child.stdout.on('data', (chunk: Buffer) => {
        stdout += chunk;
        const match = /^listening (http:\/\/\S+)$/m.exec(stdout);
        if (match) {
          clearTimeout(timer);
          resolve(match[1]!);
        }
      });
      void exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`sluice up exited ${code}: ${stdout}${stderr}`));
      });
    });
    return {
      url,
      stop: async () => {
        child.kill('SIGTERM');
        return exited;
      },
      output: () => stdout + stderr,
    };
  }

  const run = (file: string, data: string) => spawnSync(process.execPath, [main, 'run', file, '--data', data], { encoding: 'utf8', timeout: 30_000 });

  it('sluice up serves, stops with 0 on SIGTERM; sluice run gives the same views from the same log', async () => {
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-http-cli-'));
    try {
      const file = path.join(work, 'shop.sql');
      fs.writeFileSync(file, PIPELINE);
      const a = path.join(work, 'a');
      const b = path.join(work, 'b');
      const server = await up(file, a);
      let code: number | null;
      try {
        const post = (table: string, rows: unknown) => call(server.url, 'POST', `/v1/tables/${table}/events`, { body: JSON.stringify(rows), headers: { 'content-type': 'application/json' } });
        assert.equal((await post('products', PRODUCTS)).status, 200);
        assert.equal((await post('orders', ORDERS)).status, 200);
        assert.equal((await post('products', { id: 2, title: 'Desk chair', body: 'swivels', price: '59' })).status, 200);
        assert.equal((await post('orders', [{ order_id: 9, product_id: 2, qty: 3 }, { order_id: 10, product_id: 4, qty: 2 }])).status, 200);
        assert.equal((await post('items', [{ id: 1, qty: 5 }, { id: 2, qty: 0 }])).status, 200);
        const last = await post('items', { id: 2, qty: 4 });
        assert.equal(last.status, 200);
        const read = await call(server.url, 'GET', `/v1/views/totals?product_id=2&atLeast=${last.json.position}`);
        assert.deepEqual(read.json.rows, [{ product_id: 2, title: 'Desk chair', n: 2, units: '8' }]);
        assert.deepEqual((await call(server.url, 'GET', '/v1/views/failing')).json.rows.sort((x: { id: number }, y: { id: number }) => x.id - y.id), [{ id: 1, x: 20 }, { id: 2, x: 25 }]);
      } finally {
        code = await server.stop();
      }
      assert.equal(code, 0, server.output());

      const again = run(file, a);
      assert.equal(again.status, 0, again.stdout + again.stderr);
      fs.mkdirSync(b);
      fs.cpSync(path.join(a, 'log'), path.join(b, 'log'), { recursive: true });
      const batch = run(file, b);
      assert.equal(batch.status, 0, batch.stdout + batch.stderr);
      assert.match(batch.stdout, /totals: 5 rows/);

      const contents = async (data: string) => {
        const runtime = await PipelineRuntime.open({ text: PIPELINE, file, data });
        try {
          const out: Record<string, unknown> = {};
          for (const relation of runtime.relations()) out[relation.name] = runtime.readView(relation.name, { limit: 10_000 }).rows;
          out['search:desk'] = runtime.search('s', 'desk').hits.map((h) => h.row);
          return out;
        } finally {
          await runtime.close();
        }
      };
      const fromUp = await contents(a);
      const fromRun = await contents(b);
      assert.deepEqual(Object.keys(fromUp), ['products', 'items', 'orders', 'clicks', 'totals', 'top_products', 'failing', 'search:desk']);
      for (const name of Object.keys(fromUp)) {
        const x = fromUp[name] as Record<string, unknown>[];
        const y = fromRun[name] as Record<string, unknown>[];
        if (name === 'top_products' || name === 'products' || name === 'items') assert.deepEqual(y, x, name);
        else assert.deepEqual(canonical(y), canonical(x), name);
      }
      assert.deepEqual(fromUp.top_products, [{ product_id: 2, units: '8' }, { product_id: 3, units: '4' }, { product_id: 1, units: '3' }]);
      // Both file sinks fold to the view.
      for (const data of [a, b]) assert.deepEqual(foldChanges(fs.readFileSync(path.join(data, 'totals.jsonl'), 'utf8')), canonical(fromUp.totals as Record<string, unknown>[]));
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  });
});

/** The rows a change file amounts to (inserts minus deletes), canonical. */
function foldChanges(text: string): string[] {
  const counts = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const change = JSON.parse(line) as { op: string; row: Record<string, unknown> };
    const key = JSON.stringify(change.row);
    counts.set(key, (counts.get(key) ?? 0) + (change.op === 'insert' ? 1 : -1));
  }
  const rows: string[] = [];
  for (const [key, n] of counts) {
    assert.ok(n >= 0, `more deletes than inserts of ${key}`);
    for (let i = 0; i < n; i++) rows.push(key);
  }
  return rows.sort();
}
