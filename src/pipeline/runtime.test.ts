import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { DefiniteError } from '../core/index.ts';
import { open } from './database.ts';
import { PipelineRuntime, type RuntimeOptions } from './runtime.ts';

const folders: string[] = [];
after(() => {
  for (const folder of folders) fs.rmSync(folder, { recursive: true, force: true });
});

function temporary(): string {
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-runtime-'));
  folders.push(folder);
  return folder;
}

const PIPELINE = `
CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint, amount numeric);
CREATE TABLE clicks (url text);
CREATE VIEW totals AS SELECT customer_id, count(*) AS n, sum(amount) AS total FROM orders GROUP BY customer_id;
CREATE VIEW top AS SELECT customer_id, total FROM totals ORDER BY total DESC, customer_id LIMIT 2;
CREATE VIEW hits AS SELECT url, count(*) AS n FROM clicks GROUP BY url;
CREATE SINK changes FROM totals INTO FILE 'totals.jsonl';
`;

async function start(data: string, text = PIPELINE, options: Partial<RuntimeOptions> = {}): Promise<PipelineRuntime> {
  const runtime = await PipelineRuntime.open({ text, file: 'p.sql', data, ...options });
  runtime.start();
  return runtime;
}

/** Every view's rows, sorted, as JSON text. */
function snapshot(runtime: PipelineRuntime): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const relation of runtime.relations()) out[relation.name] = runtime.readView(relation.name, { limit: 100_000 }).rows.map((r) => JSON.stringify(r)).sort();
  return out;
}

/** The integral of a JSONL change file: row JSON → multiplicity; throws on a negative count. */
function integral(file: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line) continue;
    const { op, row } = JSON.parse(line) as { op: string; row: unknown };
    const key = JSON.stringify(row);
    const count = (counts.get(key) ?? 0) + (op === 'insert' ? 1 : -1);
    assert.ok(count >= 0, `the file deletes ${key} more often than it inserts it`);
    if (count === 0) counts.delete(key);
    else counts.set(key, count);
  }
  return counts;
}

async function feed(runtime: PipelineRuntime, from: number, to: number): Promise<string> {
  let position = '';
  for (let i = from; i < to; i++) {
    position = (await runtime.append('orders', [{ id: i % 37, customer_id: i % 5, amount: `${i % 11}.25` }])).position;
    if (i % 3 === 0) await runtime.append('clicks', [{ url: `/p/${i % 4}` }]);
  }
  assert.ok(await runtime.waitFor(position, 10_000));
  return position;
}

test('a restart restores the views from the checkpoint and the log, and sinks neither lose nor double a change', async () => {
  const data = temporary();
  let runtime = await start(data, PIPELINE, { checkpointIntervalMs: 0 });
  await feed(runtime, 0, 60);
  const before = snapshot(runtime);
  await runtime.close();
  runtime = await start(data);
  assert.deepEqual(snapshot(runtime), before);
  await feed(runtime, 60, 120);
  const expected = snapshot(runtime);
  // Stopped without a checkpoint (as after a crash): the log after the checkpoint is replayed.
  await runtime.close({ checkpoint: false });
  runtime = await start(data);
  assert.deepEqual(snapshot(runtime), expected);
  const file = integral(path.join(data, 'totals.jsonl'));
  assert.deepEqual([...file.keys()].sort(), expected.totals);
  await runtime.close();
});

test('a replay in many small steps reaches each sink exactly at its frontier', async () => {
  const data = temporary();
  // Small steps while running, so the sinks' frontiers differ (FILE is written only when totals changes).
  let runtime = await start(data, PIPELINE, { maxStepBytes: 64 });
  await feed(runtime, 0, 90);
  const expected = snapshot(runtime);
  await runtime.close({ checkpoint: false });
  runtime = await start(data, PIPELINE, { maxStepBytes: 64 });
  assert.deepEqual(snapshot(runtime), expected);
  await feed(runtime, 90, 100);
  const after = snapshot(runtime);
  await runtime.close();
  assert.deepEqual([...integral(path.join(data, 'totals.jsonl')).keys()].sort(), after.totals);
});

test('sluice run and a following runtime give the same views for the same log', async () => {
  const a = temporary();
  const runtime = await start(a);
  await feed(runtime, 0, 80);
  const expected = snapshot(runtime);
  await runtime.close();
  const b = temporary();
  fs.cpSync(path.join(a, 'log'), path.join(b, 'log'), { recursive: true });
  const batch = await PipelineRuntime.open({ text: PIPELINE, file: 'p.sql', data: b });
  await batch.runToEnd();
  assert.deepEqual(snapshot(batch), expected);
  await batch.close();
});

test('a view whose definition changed is rebuilt from the log, and a new sink starts with the whole view', async () => {
  const data = temporary();
  let runtime = await start(data);
  await feed(runtime, 0, 40);
  await runtime.close();
  const changed = PIPELINE.replace('count(*) AS n, sum(amount) AS total FROM orders', 'count(*) AS n, sum(amount) AS total FROM orders WHERE amount > 3').replace(
    "CREATE SINK changes FROM totals INTO FILE 'totals.jsonl';",
    "CREATE SINK hitsfile FROM hits INTO FILE 'hits.jsonl';",
  );
  runtime = await start(data, changed);
  const totals = (await runtime.query('SELECT customer_id, count(*) AS n, sum(amount) AS total FROM orders WHERE amount > 3 GROUP BY customer_id')).rows.map((r) => JSON.stringify(r)).sort();
  assert.deepEqual(snapshot(runtime).totals, totals);
  await feed(runtime, 40, 50);
  await runtime.close();
  const hits = integral(path.join(data, 'hits.jsonl'));
  runtime = await start(data, changed);
  assert.deepEqual([...hits.keys()].sort(), snapshot(runtime).hits);
  await runtime.close();
});

test('lost view stores are rebuilt, and a file sink whose view changed is refused rather than mixed', async () => {
  const data = temporary();
  let runtime = await start(data);
  await feed(runtime, 0, 30);
  const expected = snapshot(runtime);
  await runtime.close();
  fs.rmSync(path.join(data, 'views.db'));
  fs.rmSync(path.join(data, 'views.db-wal'), { force: true });
  runtime = await start(data);
  assert.deepEqual(snapshot(runtime), expected);
  await runtime.close();
  const changed = PIPELINE.replace('sum(amount) AS total', 'sum(amount) + 1 AS total');
  await assert.rejects(start(data, changed), (error: unknown) => error instanceof DefiniteError && error.code === 'sink_changed' && /move .*totals\.jsonl away/.test(error.hint ?? ''));
});

test('appends are checked whole: a bad row refuses the request and nothing of it is applied', async () => {
  const data = temporary();
  const runtime = await start(data);
  await assert.rejects(
    runtime.append('orders', [{ id: 1, customer_id: 1, amount: '1' }, { id: 2, customer_id: 'seven', amount: '1' }]),
    (error: unknown) => error instanceof DefiniteError && error.code === 'row_invalid' && /row 1, column "customer_id"/.test(error.message),
  );
  await assert.rejects(runtime.append('order', [{ id: 1 }]), (error: unknown) => error instanceof DefiniteError && error.code === 'relation_unknown' && /did you mean "orders"/.test(error.hint ?? ''));
  const ok = await runtime.append('orders', [{ id: 3, customer_id: 1, amount: '2' }], { idempotencyKey: 'k' });
  const again = await runtime.append('orders', [{ id: 3, customer_id: 1, amount: '2' }], { idempotencyKey: 'k' });
  assert.deepEqual(again, { position: ok.position, count: 0, duplicate: true });
  await runtime.waitFor(ok.position, 5000);
  assert.deepEqual(runtime.readView('orders').rows, [{ id: 3, customer_id: 1, amount: '2' }]);
  await runtime.close({ checkpoint: false });
  // The key is kept in the log record: a retry after a restart is still recognized.
  const restarted = await start(data);
  assert.equal((await restarted.append('orders', [{ id: 3, customer_id: 1, amount: '2' }], { idempotencyKey: 'k' })).duplicate, true);
  await restarted.close();
});

test('the pipeline file is checked: sources not built yet, statements that do not belong, sinks of unknown views', async () => {
  const data = temporary();
  const refused = async (text: string, pattern: RegExp) => {
    await assert.rejects(PipelineRuntime.open({ text, file: 'p.sql', data }), (error: unknown) => error instanceof DefiniteError && pattern.test(error.message));
  };
  await refused("CREATE SOURCE legacy FROM FILE 'file://u:secret@h/db' WITH (tables = 'a');", /not built yet.*file:\/\/u:\*\*\*@h\/db/s);
  await refused("CREATE SOURCE legacy FROM MYSQL 'mysql://u:secret@127.0.0.1:1/db' WITH (tables = 'a');", /source legacy: cannot connect: connect ECONNREFUSED/);
  await refused("CREATE SOURCE shop FROM POSTGRES 'postgres://u:secret@127.0.0.1:1/db' WITH (tables = 'a');", /source shop: cannot connect to postgres:\/\/u:\*\*\*@127\.0\.0\.1:1\/db/);
  await refused("CREATE SOURCE shop FROM POSTGRES 'postgres://h/db';", /which tables to capture is not said/);
  await refused('CREATE TABLE t (a int); INSERT INTO t VALUES (1);', /Insert statements have no place in a pipeline file/);
  await refused("CREATE TABLE t (a int); CREATE SINK s FROM nope INTO SEARCH;", /sink s reads "nope"/);
  await refused('CREATE TABLE t (a int UNIQUE, b int);', /UNIQUE constraint/);
});

test('open({ data }) keeps tables, views and changes durable across reopening', async () => {
  const data = temporary();
  let db = await open({ data });
  await db.execute(`CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint, amount numeric);
                    CREATE VIEW totals AS SELECT customer_id, sum(amount) AS total FROM orders GROUP BY customer_id;`);
  const position = await db.insert('orders', [{ id: 1, customer_id: 7, amount: '9.50' }, { id: 2, customer_id: 7, amount: '1' }]);
  await db.settle(position);
  assert.deepEqual(await db.query('SELECT * FROM totals'), [{ customer_id: 7, total: '10.50' }]);
  await db.execute('UPDATE orders SET amount = amount * 2 WHERE id = 2; INSERT INTO orders VALUES (3, 8, 4)');
  assert.deepEqual(await db.query('SELECT * FROM totals ORDER BY customer_id'), [{ customer_id: 7, total: '11.50' }, { customer_id: 8, total: '4' }]);
  const changes = db.changes('totals');
  await db.delete('orders', [{ id: 1 }]);
  const step = (await changes.next()).value!;
  assert.deepEqual(step.changes, [{ op: 'delete', row: { customer_id: 7, total: '11.50' } }, { op: 'insert', row: { customer_id: 7, total: '2' } }]);
  await db.close();
  db = await open({ data });
  await db.settle();
  assert.deepEqual(await db.query('SELECT * FROM totals ORDER BY customer_id'), [{ customer_id: 7, total: '2' }, { customer_id: 8, total: '4' }]);
  await assert.rejects(db.execute('CREATE VIEW bad AS SELECT nope FROM orders'), /column "nope" does not exist/);
  await db.execute('CREATE VIEW big AS SELECT id FROM orders WHERE amount > 3');
  assert.deepEqual(await db.query('SELECT * FROM big'), [{ id: 3 }]);
  await db.close();
});

test('change streams resume within what is kept, refuse positions from before a restart, and cover tables too', async () => {
  const data = temporary();
  let runtime = await start(data);
  await feed(runtime, 0, 3);
  const old = runtime.status().position;
  await feed(runtime, 3, 5);
  const end = runtime.status().position;
  await runtime.close();
  runtime = await start(data);
  try {
    assert.throws(() => runtime.subscribe('totals', old, () => {}), (error: unknown) => error instanceof DefiniteError && error.code === 'position_expired');
    // Where the restarted pipeline began, nothing is missing: that position resumes.
    runtime.subscribe('totals', end, () => {})();
  } catch (error) {
    await runtime.close();
    throw error;
  }
  const now = runtime.status().position;
  const seen: string[] = [];
  const tableSeen: string[] = [];
  const stop = runtime.subscribe('totals', now, (event) => seen.push(...event.changes.map((c) => `${c.op} ${JSON.stringify(c.row)}`)));
  const stopTable = runtime.subscribe('clicks', undefined, (event) => tableSeen.push(...event.changes.map((c) => `${c.op} ${JSON.stringify(c.row)}`)));
  const position = (await runtime.append('orders', [{ id: 1000, customer_id: 99, amount: '1.00' }])).position;
  await runtime.append('clicks', [{ url: '/x' }]);
  assert.ok(await runtime.waitFor(position, 5000));
  await feed(runtime, 5, 6);
  assert.ok(seen.includes('insert {"customer_id":99,"n":1,"total":"1.00"}'));
  assert.deepEqual(tableSeen, ['insert {"url":"/x"}']);
  stop();
  stopTable();
  await runtime.close();
});
