/**
 * The HTTP layer on its own: the token rule, body parsing, routing, limits, error mapping, the
 * change stream's framing and the metrics format. The pipeline is a small in-test double that
 * records what it was asked; contract tests against the real runtime live elsewhere.
 */
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import test from 'node:test';
import { DefiniteError, TransientError } from '../core/index.ts';
import type { AppendOptions, ChangeEvent, PipelineHandle, StatusReport } from '../pipeline/api.ts';
import { serve, type ServeOptions, type Server } from './http.ts';
import { formatMetrics, HttpMetrics } from './metrics.ts';
import { parseEvents } from './request-body.ts';

const STATUS: StatusReport = {
  state: 'running',
  position: 'p1',
  startedAt: '2025-01-01T00:00:00.000Z',
  uptimeSeconds: 5,
  steps: 3,
  eventsProcessed: 10,
  tables: [{ name: 'clicks', topic: 'clicks', endOffset: 10, processedOffset: 8, lag: 2, eventsAppended: 10, rows: 10 }],
  sources: [],
  views: [{ name: 'totals', rows: 4, position: 'p1' }, { name: 'broken', rows: 0, position: 'p1', failure: { code: 'division_by_zero', message: 'division by zero' } }],
  sinks: [{ name: 'totals_search', kind: 'search', view: 'totals', step: 3 }],
  lastStepMs: 2,
  maxStepMs: 7,
};

/** A pipeline double: answers from fixed data, records calls, and throws what a test tells it to. */
class PipelineDouble implements PipelineHandle {
  appends: { table: string; rows: readonly unknown[]; options?: AppendOptions }[] = [];
  reads: { name: string; options: unknown }[] = [];
  listeners = new Map<string, (event: ChangeEvent) => void>();
  subscribedFrom: (string | undefined)[] = [];
  /** Thrown by the next call that reads a relation. */
  failure: unknown;
  waitResult = true;
  status(): StatusReport {
    return STATUS;
  }
  relations() {
    return [{ name: 'clicks', kind: 'table' as const, columns: [{ name: 'url', type: 'text' }] }];
  }
  searchSinks() {
    return [];
  }
  readView(name: string, options?: object) {
    this.#throwFailure();
    this.reads.push({ name, options });
    return { rows: [{ id: 1n, big: 2n ** 70n }], position: 'p1' };
  }
  async query(sql: string) {
    this.#throwFailure();
    return { columns: [{ name: 'sql', type: 'text' }], rows: [{ sql }], position: 'p1' };
  }
  search(name: string, q: string) {
    this.#throwFailure();
    return { hits: [{ row: { name, q }, score: 1, highlights: {} }], position: 'p1' };
  }
  async append(table: string, rows: readonly unknown[], options?: AppendOptions) {
    this.#throwFailure();
    this.appends.push({ table, rows, options });
    return { position: 'p2', count: rows.length, duplicate: false };
  }
  async waitFor(): Promise<boolean> {
    return this.waitResult;
  }
  subscribe(view: string, from: string | undefined, listener: (event: ChangeEvent) => void): () => void {
    this.#throwFailure();
    this.subscribedFrom.push(from);
    listener({ position: 'backlog', changes: [{ op: 'insert', row: { a: 1 } }] });
    this.listeners.set(view, listener);
    return () => this.listeners.delete(view);
  }
  #throwFailure(): void {
    const failure = this.failure;
    this.failure = undefined;
    if (failure !== undefined) throw failure;
  }
}

async function withServer(options: ServeOptions, body: (server: Server, pipeline: PipelineDouble) => Promise<void>): Promise<void> {
  const pipeline = new PipelineDouble();
  const server = await serve(pipeline, { port: 0, log: () => {}, ...options });
  try {
    await body(server, pipeline);
  } finally {
    await server.close();
  }
}

async function call(server: Server, method: string, path: string, init: { body?: string; headers?: Record<string, string> } = {}) {
  const response = await fetch(server.url + path, { method, body: init.body, headers: init.headers });
  const text = await response.text();
  const json = response.headers.get('content-type')?.startsWith('application/json') ? JSON.parse(text) : undefined;
  return { status: response.status, headers: response.headers, text, json };
}

test('off loopback the server refuses to start without a token, and says how to give one', async () => {
  await assert.rejects(serve(new PipelineDouble(), { host: '0.0.0.0', port: 0 }), (error: unknown) => {
    assert.ok(error instanceof DefiniteError);
    assert.equal(error.code, 'serve_token_required');
    assert.match(error.hint ?? '', /--token/);
    assert.match(error.hint ?? '', /\$\{env:NAME\}/);
    return true;
  });
  await assert.rejects(serve(new PipelineDouble(), { host: '127.0.0.1', port: 0, token: '' }), { code: 'serve_token_invalid' });
  const server = await serve(new PipelineDouble(), { host: 'localhost', port: 0 });
  await server.close();
});

test('with a token every request needs it as a bearer token, and the token is never echoed', async () => {
  const token = 's3cret-token';
  await withServer({ token }, async (server) => {
    for (const headers of [{} as Record<string, string>, { authorization: 'Bearer wrong' }, { authorization: `Basic ${token}` }, { authorization: `Bearer ${token}x` }]) {
      const answer = await call(server, 'GET', '/v1/status', { headers });
      assert.equal(answer.status, 401);
      assert.equal(answer.json.error.code, 'unauthorized');
      assert.ok(!answer.text.includes(token));
      assert.equal(answer.headers.get('www-authenticate'), 'Bearer realm="sluice"');
    }
    assert.equal((await call(server, 'GET', '/nowhere')).status, 401, 'unknown routes are not revealed without the token');
    const allowed = await call(server, 'GET', '/v1/status', { headers: { authorization: `Bearer ${token}` } });
    assert.equal(allowed.status, 200);
    assert.equal(allowed.json.position, 'p1');
    const metrics = await call(server, 'GET', '/metrics', { headers: { authorization: `bearer ${token}` } });
    assert.equal(metrics.status, 200);
    assert.ok(!metrics.text.includes(token));
  });
});

test('append bodies: an object, an array, NDJSON by content type or by shape, and a pretty-printed object', () => {
  assert.deepEqual(parseEvents('{"a":1}', 'application/json'), [{ a: 1 }]);
  assert.deepEqual(parseEvents('[{"a":1},{"a":2}]', undefined), [{ a: 1 }, { a: 2 }]);
  assert.deepEqual(parseEvents('{"a":1}\n{"a":2}\n', 'application/x-ndjson; charset=utf-8'), [{ a: 1 }, { a: 2 }]);
  assert.deepEqual(parseEvents('{"a":1}', 'application/x-ndjson'), [{ a: 1 }]);
  assert.deepEqual(parseEvents('\uFEFF{"a":1}\r\n\r\n  \n{"a":2}', 'application/json'), [{ a: 1 }, { a: 2 }], 'CRLF and blank lines');
  assert.deepEqual(parseEvents('{\n  "a": 1,\n  "b": [1, 2]\n}\n', 'application/json'), [{ a: 1, b: [1, 2] }], 'one document over many lines');
});

test('a bad append body is refused whole, naming the line or element', () => {
  const malformed = '{"a":1}\n{"a":2}\n{"a":\n{"a":4}';
  assert.throws(() => parseEvents(malformed, 'application/x-ndjson'), (error: DefiniteError) => error.code === 'json_invalid' && /^line 3 /.test(error.message));
  assert.throws(() => parseEvents(malformed, undefined), (error: DefiniteError) => error.code === 'json_invalid' && /^line 3 /.test(error.message));
  assert.throws(() => parseEvents('{"a":1}\n[1]', undefined), (error: DefiniteError) => error.code === 'body_invalid' && /line 2 .* array/.test(error.message));
  assert.throws(() => parseEvents('[{"a":1}, 7]', undefined), (error: DefiniteError) => error.code === 'body_invalid' && /element 1 /.test(error.message));
  assert.throws(() => parseEvents('{"a":1} {"a":2}', undefined), { code: 'json_invalid' });
  assert.throws(() => parseEvents('"text"', undefined), { code: 'body_invalid' });
  assert.throws(() => parseEvents('', undefined), { code: 'body_invalid' });
  assert.throws(() => parseEvents('[]', undefined), { code: 'body_invalid' });
  assert.throws(() => parseEvents('\n\n', 'application/x-ndjson'), { code: 'body_invalid' });
});

test('a bulk NDJSON body of 100,000 lines parses quickly', () => {
  const body = Array.from({ length: 100_000 }, (_, index) => `{"id":${index},"url":"/page/${index}"}`).join('\n');
  const started = performance.now();
  const rows = parseEvents(body, undefined);
  const elapsedMs = performance.now() - started;
  assert.equal(rows.length, 100_000);
  assert.deepEqual(rows[99_999], { id: 99_999, url: '/page/99999' });
  assert.ok(elapsedMs < 2_000, `took ${elapsedMs} ms`);
});

test('POST /v1/tables/NAME/events appends whole bodies, passes the idempotency key, and refuses bad ones', async () => {
  await withServer({}, async (server, pipeline) => {
    const one = await call(server, 'POST', '/v1/tables/clicks/events', { body: '{"url":"/a"}', headers: { 'content-type': 'application/json', 'idempotency-key': 'k1' } });
    assert.equal(one.status, 200);
    assert.deepEqual(one.json, { position: 'p2', count: 1, duplicate: false });
    assert.equal(one.headers.get('content-type'), 'application/json; charset=utf-8');
    assert.deepEqual(pipeline.appends[0], { table: 'clicks', rows: [{ url: '/a' }], options: { idempotencyKey: 'k1' } });

    const lines = await call(server, 'POST', '/v1/tables/shop.orders/events', { body: '{"id":1}\n{"id":2}\n', headers: { 'content-type': 'application/x-ndjson' } });
    assert.equal(lines.json.count, 2);
    assert.equal(pipeline.appends[1].table, 'shop.orders');

    const malformed = await call(server, 'POST', '/v1/tables/clicks/events', { body: '{"id":1}\n{"id":\n', headers: { 'content-type': 'application/x-ndjson' } });
    assert.equal(malformed.status, 400);
    assert.match(malformed.json.error.message, /line 2/);
    assert.ok(malformed.json.error.hint);
    const longKey = await call(server, 'POST', '/v1/tables/clicks/events', { body: '{"id":1}', headers: { 'idempotency-key': 'x'.repeat(201) } });
    assert.equal(longKey.status, 400);
    assert.equal(pipeline.appends.length, 2, 'nothing appended from refused requests');

    pipeline.failure = new DefiniteError('row_invalid', 'row 0: column "x" does not exist', 'check the columns');
    const invalid = await call(server, 'POST', '/v1/tables/clicks/events', { body: '{"x":1}' });
    assert.deepEqual([invalid.status, invalid.json.error], [400, { code: 'row_invalid', message: 'row 0: column "x" does not exist', hint: 'check the columns' }]);
  });
});

test('unknown paths are 404 and a known path with the wrong method is 405 with Allow', async () => {
  await withServer({}, async (server) => {
    const missing = await call(server, 'GET', '/v2/nothing');
    assert.deepEqual([missing.status, missing.json.error.code], [404, 'route_unknown']);
    assert.equal((await call(server, 'GET', '/v1/views/')).status, 404, 'an empty name is no route');
    assert.equal((await call(server, 'GET', '//evil.example/v1/status')).status, 404, 'a path is never read as a host');
    const wrong = await call(server, 'DELETE', '/v1/views/totals');
    assert.deepEqual([wrong.status, wrong.json.error.code, wrong.headers.get('allow')], [405, 'method_not_allowed', 'GET']);
    const get = await call(server, 'GET', '/v1/query');
    assert.deepEqual([get.status, get.headers.get('allow')], [405, 'POST']);
    const index = await call(server, 'GET', '/');
    assert.equal(index.json.name, 'sluice');
    assert.ok(index.json.endpoints.some((endpoint: { method: string; path: string }) => endpoint.method === 'POST' && endpoint.path === '/v1/tables/:name/events'));
  });
});

/** Sends headers and `sent` bytes of a body declared (or not) larger, and resolves with the answer. */
function sendPartially(server: Server, path: string, headers: Record<string, string | number>, sent: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(server.url + path, { method: 'POST', headers }, (response) => {
      let body = '';
      response.on('data', (chunk) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
    });
    request.on('error', reject);
    request.write('x'.repeat(sent));
  });
}

test('a body over the limit is 413, whether declared or streamed, and the server keeps serving', async () => {
  await withServer({ maxBodyBytes: 1000 }, async (server, pipeline) => {
    const declared = await sendPartially(server, '/v1/tables/clicks/events', { 'content-length': 5000 }, 10);
    assert.equal(declared.status, 413);
    assert.equal(JSON.parse(declared.body).error.code, 'body_too_large');
    const streamed = await sendPartially(server, '/v1/query', { 'transfer-encoding': 'chunked' }, 3000);
    assert.equal(streamed.status, 413);
    const fits = await call(server, 'POST', '/v1/tables/clicks/events', { body: JSON.stringify({ url: 'x'.repeat(900) }) });
    assert.equal(fits.status, 200);
    assert.equal(pipeline.appends.length, 1);
  });
});

test('a body that does not arrive in time is 408', async () => {
  await withServer({ requestTimeoutMs: 300 }, async (server) => {
    const slow = await sendPartially(server, '/v1/query', { 'content-length': 100 }, 10);
    assert.equal(slow.status, 408);
    assert.equal(JSON.parse(slow.body).error.code, 'request_timeout');
  });
});

test('view reads: paging and filters, parameter errors named, atLeast waits, errors mapped to statuses', async () => {
  await withServer({ waitTimeoutMs: 50 }, async (server, pipeline) => {
    const read = await call(server, 'GET', '/v1/views/shop.orders?limit=5&offset=2&customer_id=7&atLeast=p1');
    assert.equal(read.status, 200);
    assert.deepEqual(read.json, { rows: [{ id: 1, big: '1180591620717411303424' }], position: 'p1' });
    assert.deepEqual(pipeline.reads[0], { name: 'shop.orders', options: { limit: 5, offset: 2, filters: { customer_id: '7' } } });
    assert.equal((await call(server, 'GET', '/v1/views/a%20b')).status, 200);
    assert.equal(pipeline.reads[1].name, 'a b');

    for (const [query, parameter] of [['limit=10001', 'limit'], ['limit=-1', 'limit'], ['offset=1.5', 'offset'], ['limit=ten', 'limit'], ['a=1&a=2', 'a']]) {
      const bad = await call(server, 'GET', `/v1/views/totals?${query}`);
      assert.equal(bad.status, 400, query);
      assert.equal(bad.json.error.code, 'param_invalid');
      assert.match(bad.json.error.message, new RegExp(`parameter ${parameter} `));
    }
    pipeline.waitResult = false;
    const late = await call(server, 'GET', '/v1/views/totals?atLeast=p9');
    assert.deepEqual([late.status, late.json.error.code], [504, 'wait_timeout']);
    assert.ok(late.json.error.hint);
    pipeline.waitResult = true;

    const cases: [unknown, number, string][] = [
      [new DefiniteError('relation_unknown', 'no view x'), 404, 'relation_unknown'],
      [new DefiniteError('view_failed', 'division by zero'), 409, 'view_failed'],
      [new DefiniteError('filter_invalid', 'no column q'), 400, 'filter_invalid'],
      [new DefiniteError('stopping', 'shutting down'), 503, 'stopping'],
      [new TransientError('log_unavailable', 'try again'), 503, 'log_unavailable'],
      [new Error('boom'), 500, 'internal'],
    ];
    for (const [failure, status, code] of cases) {
      pipeline.failure = failure;
      const answer = await call(server, 'GET', '/v1/views/totals');
      assert.deepEqual([answer.status, answer.json.error.code], [status, code]);
      assert.equal(typeof answer.json.error.hint, 'string');
      assert.ok(!answer.text.includes('at '), 'no stack');
    }
    assert.equal((await call(server, 'GET', '/v1/views/totals')).status, 200, 'still serving');
  });
});

test('search needs q; query needs a JSON body with sql', async () => {
  await withServer({}, async (server) => {
    const missing = await call(server, 'GET', '/v1/search/products');
    assert.deepEqual([missing.status, missing.json.error.code], [400, 'param_invalid']);
    const found = await call(server, 'GET', '/v1/search/products?q=red%20shoes&limit=3');
    assert.deepEqual(found.json.hits[0].row, { name: 'products', q: 'red shoes' });

    const notJson = await call(server, 'POST', '/v1/query', { body: '{"sql": }' });
    assert.deepEqual([notJson.status, notJson.json.error.code], [400, 'json_invalid']);
    assert.match(notJson.json.error.message, /position 8/);
    const noSql = await call(server, 'POST', '/v1/query', { body: '{"query":"SELECT 1"}' });
    assert.deepEqual([noSql.status, noSql.json.error.code], [400, 'body_invalid']);
    const ok = await call(server, 'POST', '/v1/query', { body: '{"sql":"SELECT 1"}' });
    assert.deepEqual(ok.json, { columns: [{ name: 'sql', type: 'text' }], rows: [{ sql: 'SELECT 1' }], position: 'p1' });
  });
});

test('change streams: SSE framing, Last-Event-ID over ?from, errors before the stream, unsubscribe on disconnect', async () => {
  await withServer({}, async (server, pipeline) => {
    pipeline.failure = new DefiniteError('position_expired', 'too old', 'read the view again');
    const expired = await call(server, 'GET', '/v1/views/totals/changes?from=p0');
    assert.deepEqual([expired.status, expired.json.error.code], [410, 'position_expired']);

    const controller = new AbortController();
    const response = await fetch(`${server.url}/v1/views/totals/changes?from=p0`, { headers: { 'last-event-id': 'p5' }, signal: controller.signal });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-type'), 'text/event-stream; charset=utf-8');
    assert.equal(response.headers.get('cache-control'), 'no-cache');
    assert.deepEqual(pipeline.subscribedFrom, ['p5']);
    pipeline.listeners.get('totals')!({ position: 'p6', changes: [{ op: 'delete', row: { a: 1 } }] });
    const reader = response.body!.getReader();
    let text = '';
    while (!text.includes('id: p6')) text += new TextDecoder().decode((await reader.read()).value);
    while (!text.endsWith('\n\n')) text += new TextDecoder().decode((await reader.read()).value);
    assert.equal(text, 'id: backlog\ndata: {"changes":[{"op":"insert","row":{"a":1}}]}\n\nid: p6\ndata: {"changes":[{"op":"delete","row":{"a":1}}]}\n\n');
    controller.abort();
    for (let attempt = 0; attempt < 100 && pipeline.listeners.size > 0; attempt++) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.equal(pipeline.listeners.size, 0, 'unsubscribed');
  });
});

test('a change stream whose client stops reading is cut off, and unsubscribed', async () => {
  await withServer({}, async (server, pipeline) => {
    const { port } = new URL(server.url);
    const socket = connect(Number(port), '127.0.0.1');
    socket.write('GET /v1/views/totals/changes HTTP/1.1\r\nhost: x\r\n\r\n');
    socket.once('data', () => socket.pause());
    for (let attempt = 0; attempt < 100 && !pipeline.listeners.has('totals'); attempt++) await new Promise((resolve) => setTimeout(resolve, 10));
    const row = { text: 'x'.repeat(100_000) };
    let sent = 0;
    while (pipeline.listeners.has('totals') && sent < 2_000) {
      pipeline.listeners.get('totals')!({ position: `p${sent++}`, changes: [{ op: 'insert', row }] });
      if (sent % 50 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    assert.ok(!pipeline.listeners.has('totals'), `still subscribed after ${sent} events`);
    assert.ok(sent * 100_000 < 64 * 1024 * 1024, `cut off after ${sent} events`);
    socket.destroy();
  });
});

test('metrics: HELP and TYPE for every family, escaped label values, request counters', async () => {
  const http = new HttpMetrics();
  http.record('/v1/views/:name', 200, 0.003);
  http.record('/v1/views/:name', 200, 0.2);
  const status: StatusReport = { ...STATUS, tables: [{ ...STATUS.tables[0], name: 'we"ird\\name\nx' }] };
  const text = formatMetrics(status, http, 0);
  assert.ok(text.includes('sluice_table_lag_records{table="we\\"ird\\\\name\\nx"} 2\n'));
  assert.ok(text.includes('sluice_http_requests_total{route="/v1/views/:name",status="200"} 2\n'));
  assert.ok(text.includes('sluice_http_request_duration_seconds_bucket{route="/v1/views/:name",le="0.005"} 1\n'));
  assert.ok(text.includes('sluice_http_request_duration_seconds_bucket{route="/v1/views/:name",le="+Inf"} 2\n'));
  assert.ok(text.includes('sluice_view_failed{view="broken"} 1\n'));
  assert.ok(text.includes('sluice_step_duration_seconds_max 0.007\n'));
  assert.ok(text.includes('sluice_sink_step{sink="totals_search",kind="search",view="totals"} 3\n'));
  // Every sample line belongs to a family declared above it, and the text is well formed.
  const declared = new Set<string>();
  for (const line of text.trimEnd().split('\n')) {
    const typeLine = /^# TYPE (\w+) (counter|gauge|histogram)$/.exec(line);
    if (typeLine) declared.add(typeLine[1]);
    else if (!line.startsWith('# HELP ')) {
      const sample = /^(\w+?)(_bucket|_sum|_count)?(\{.*\})? (\S+)$/.exec(line);
      assert.ok(sample, line);
      assert.ok(declared.has(sample[1]) || declared.has(sample[1] + (sample[2] ?? '')), line);
      assert.ok(!Number.isNaN(Number(sample[4])) || sample[4] === '+Inf', line);
    }
  }

  await withServer({}, async (server) => {
    await call(server, 'GET', '/v1/status');
    await call(server, 'GET', '/nothing');
    const answer = await call(server, 'GET', '/metrics');
    assert.equal(answer.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
    assert.match(answer.text, /^sluice_http_requests_total\{route="\/v1\/status",status="200"\} 1$/m);
    assert.match(answer.text, /^sluice_http_requests_total\{route="unmatched",status="404"\} 1$/m);
    assert.match(answer.text, /^sluice_steps_total 3$/m);
  });
});
