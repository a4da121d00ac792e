/**
 * A pipeline over a PostgreSQL source, end to end against a real PostgreSQL 15: CREATE SOURCE …
 * FROM POSTGRES, views over `SOURCE.table`, and after the snapshot, after changes (updates,
 * primary-key updates, deletes, TRUNCATE, TOAST) and after a restart with changes made while
 * stopped, every view equals the same query on PostgreSQL.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { PipelineRuntime } from '../../src/pipeline/runtime.ts';
import { startPostgres, type PostgresServer } from '../services/postgres.ts';

let server: PostgresServer;
let folder: string;

before(async () => {
  server = await startPostgres({ settings: { logical_decoding_work_mem: "'64kB'" } });
  folder = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-pg-pipeline-'));
  await server.query(`CREATE TABLE customers (id int PRIMARY KEY, name text, country text)`);
  await server.query(`CREATE TABLE orders (id bigint PRIMARY KEY, customer_id int, amount numeric(10,2), note text)`);
  await server.query(`ALTER TABLE orders ALTER COLUMN note SET STORAGE EXTERNAL`);
  await server.query(`INSERT INTO customers SELECT g, 'customer ' || g, CASE WHEN g % 3 = 0 THEN 'FR' ELSE 'DE' END FROM generate_series(1, 30) g`);
  await server.query(`INSERT INTO orders SELECT g, g % 30 + 1, (g % 97) * 1.25, NULL FROM generate_series(1, 20000) g`);
});

after(async () => {
  await server?.stop();
  fs.rmSync(folder, { recursive: true, force: true });
});

const QUERY = `SELECT c.country, count(*) AS n, sum(o.amount) AS total FROM shop.orders o JOIN shop.customers c ON c.id = o.customer_id GROUP BY c.country`;

function pipeline(): string {
  return `CREATE SOURCE shop FROM POSTGRES '${server.url()}' WITH (tables = 'public.customers, public.orders');
CREATE VIEW by_country AS ${QUERY};
CREATE VIEW notes AS SELECT id, length(note) AS note_length FROM shop.orders WHERE note IS NOT NULL;`;
}

/** PostgreSQL's answer to a view's query (shop.X read as public.X), as sorted JSON rows. */
async function expected(sql: string): Promise<string[]> {
  const rows = await server.query(sql.replaceAll('shop.', 'public.'));
  return rows.map((row: Record<string, unknown>) => JSON.stringify(Object.fromEntries(Object.entries(row).map(([k, v]) => [k, v === null ? null : String(v)])))).sort();
}

function actual(runtime: PipelineRuntime, view: string): string[] {
  return runtime.readView(view, { limit: 10_000 }).rows.map((row) => JSON.stringify(Object.fromEntries(Object.entries(row).map(([k, v]) => [k, v === null ? null : String(v)])))).sort();
}

async function converges(runtime: PipelineRuntime, what: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const want = { by_country: await expected(QUERY), notes: await expected(`SELECT id, length(note) AS note_length FROM shop.orders WHERE note IS NOT NULL`) };
    const got = { by_country: actual(runtime, 'by_country'), notes: actual(runtime, 'notes') };
    if (JSON.stringify(got) === JSON.stringify(want)) return;
    const status = runtime.status();
    if (Date.now() > deadline) assert.fail(`${what}: the views do not converge to PostgreSQL\n  got  ${JSON.stringify(got.by_country)}\n  want ${JSON.stringify(want.by_country)}\n  sources ${JSON.stringify(status.sources)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

test('views over a PostgreSQL source equal the same queries on PostgreSQL, through changes and restarts', async () => {
  const data = path.join(folder, 'data');
  let runtime = await PipelineRuntime.open({ text: pipeline(), file: 'shop.sql', data });
  runtime.start();
  try {
    assert.deepEqual(runtime.relations().filter((r) => r.kind === 'table').map((r) => r.name).sort(), ['shop.customers', 'shop.orders']);
    await converges(runtime, 'after the snapshot');
    await server.query(`UPDATE orders SET note = repeat('a long note ', 400) WHERE id <= 5`);
    await server.query(`UPDATE orders SET amount = amount + 100 WHERE id <= 5`); // the TOASTed notes are not resent
    await server.query(`UPDATE orders SET id = id + 100000 WHERE id BETWEEN 6 AND 10`);
    await server.query(`DELETE FROM orders WHERE id BETWEEN 11 AND 500`);
    await server.query(`BEGIN; UPDATE customers SET country = 'IT' WHERE id = 1; INSERT INTO orders VALUES (900000, 1, 12.34, NULL); COMMIT`);
    await server.query(`INSERT INTO orders SELECT g, g % 30 + 1, 1, NULL FROM generate_series(200000, 205000) g`);
    await converges(runtime, 'after the changes');
    const [source] = runtime.status().sources;
    assert.equal(source!.name, 'shop');
    assert.match(source!.position, /^[0-9A-F]+\/[0-9A-F]+$/);
    const { formatMetrics, HttpMetrics } = await import('../../src/serve/metrics.ts');
    assert.match(formatMetrics(runtime.status(), new HttpMetrics(), 0), /\nsluice_source_lag_records\{source="shop"\} \d+\n/);
  } finally {
    await runtime.close();
  }
  // Changes while the pipeline is stopped arrive after the restart, once.
  await server.query(`UPDATE orders SET amount = 0 WHERE customer_id = 2`);
  await server.query(`TRUNCATE customers`);
  await server.query(`INSERT INTO customers SELECT g, 'again ' || g, 'ES' FROM generate_series(1, 10) g`);
  runtime = await PipelineRuntime.open({ text: pipeline(), file: 'shop.sql', data });
  runtime.start();
  try {
    await converges(runtime, 'after a restart');
  } finally {
    await runtime.close();
  }
  // sluice run: captures everything committed so far, processes it, and stops — the views are
  // exact when it returns, without waiting.
  await server.query(`INSERT INTO orders SELECT g, 3, 7, NULL FROM generate_series(300000, 300999) g`);
  await server.query(`UPDATE customers SET country = 'PT' WHERE id = 3`);
  runtime = await PipelineRuntime.open({ text: pipeline(), file: 'shop.sql', data });
  try {
    await runtime.runToEnd();
    assert.deepEqual(actual(runtime, 'by_country'), await expected(QUERY));
  } finally {
    await runtime.close();
  }
});

test('views never show part of the initial snapshot: it is applied whole, like a transaction', async () => {
  await server.createDatabase('whole');
  await server.query(`CREATE TABLE items (id int PRIMARY KEY, grp int)`, 'whole');
  await server.query(`INSERT INTO items SELECT g, g % 10 FROM generate_series(1, 120000) g`, 'whole');
  const runtime = await PipelineRuntime.open({
    text: `CREATE SOURCE w FROM POSTGRES '${server.url('whole')}' WITH (tables = 'public.items');
CREATE VIEW n AS SELECT count(*) AS n FROM w.items;
CREATE VIEW groups AS SELECT grp, count(*) AS n FROM w.items GROUP BY grp;`,
    data: path.join(folder, 'whole'),
  });
  runtime.start();
  try {
    const seen = new Set<number>();
    let chunksSeen = 0;
    const deadline = Date.now() + 30_000;
    for (;;) {
      seen.add(Number(runtime.readView('n').rows[0]?.n ?? 0));
      const groups = runtime.readView('groups').rows.map((r) => Number(r.n));
      assert.ok(groups.every((n) => n === groups[0]), `the groups are read whole too: ${groups}`);
      chunksSeen = Math.max(chunksSeen, runtime.status().sources[0]!.snapshot?.rows ?? 0);
      if (seen.has(120_000)) break;
      if (Date.now() > deadline) assert.fail(`the snapshot did not arrive: saw ${[...seen]}`);
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    assert.deepEqual([...seen].filter((n) => n !== 0 && n !== 120_000), [], 'no partial snapshot was visible');
    assert.ok(chunksSeen > 0, 'the snapshot was read in chunks meanwhile');
  } finally {
    await runtime.close();
  }
});
