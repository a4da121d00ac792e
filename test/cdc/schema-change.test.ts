/**
 * Columns added, dropped and retyped at a PostgreSQL source while Sluice streams (and while it is
 * stopped): views that do not use the column keep following the source exactly; a view that
 * cannot do without it stops with an error naming the change, and the rest of the pipeline runs.
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
  server = await startPostgres();
  folder = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-pg-schema-'));
  await server.query(`CREATE TABLE products (id int PRIMARY KEY, name text, price numeric(10,2), legacy text, weight int)`);
  await server.query(`INSERT INTO products SELECT g, 'product ' || g, g * 1.5, 'old ' || g, g FROM generate_series(1, 500) g`);
});

after(async () => {
  await server?.stop();
  fs.rmSync(folder, { recursive: true, force: true });
});

const PRICES = `SELECT count(*) AS n, sum(price) AS total FROM shop.products`;
const NAMES = `SELECT id, name FROM shop.products WHERE id % 7 = 0`;

function pipeline(): string {
  return `CREATE SOURCE shop FROM POSTGRES '${server.url()}' WITH (tables = 'public.products');
CREATE VIEW prices AS ${PRICES};
CREATE VIEW names AS ${NAMES};
CREATE VIEW legacy AS SELECT id, legacy FROM shop.products WHERE id < 10;
CREATE VIEW heavy AS SELECT count(*) AS n FROM shop.products WHERE weight > 250;`;
}

const text = (rows: Array<Record<string, unknown>>) => rows.map((row) => JSON.stringify(Object.fromEntries(Object.entries(row).map(([k, v]) => [k, v === null ? null : String(v)])))).sort();

async function converges(runtime: PipelineRuntime, what: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const want = [text(await server.query(PRICES.replaceAll('shop.', 'public.'))), text(await server.query(NAMES.replaceAll('shop.', 'public.')))];
    const got = [text(runtime.readView('prices').rows), text(runtime.readView('names', { limit: 10_000 }).rows)];
    if (JSON.stringify(got) === JSON.stringify(want)) return;
    if (Date.now() > deadline) assert.fail(`${what}: the views do not converge to PostgreSQL\n  got  ${JSON.stringify(got)}\n  want ${JSON.stringify(want)}\n  sources ${JSON.stringify(runtime.status().sources)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function failure(runtime: PipelineRuntime, view: string): { code: string; message: string } | undefined {
  return runtime.status().views.find((v) => v.name === view)?.failure;
}

test('add, drop and retype columns mid-stream and while stopped: views that can absorb it stay exact, the others stop with the reason', async () => {
  const data = path.join(folder, 'data');
  let runtime = await PipelineRuntime.open({ text: pipeline(), file: 'shop.sql', data });
  runtime.start();
  try {
    await converges(runtime, 'after the snapshot');
    assert.equal(runtime.readView('legacy').rows.length, 9);

    // ADD COLUMN mid-stream, then rows that fill it: the views that do not read it are unaffected.
    await server.query(`ALTER TABLE products ADD COLUMN color text`);
    await server.query(`INSERT INTO products VALUES (1000, 'new one', 10, 'old', 1, 'red')`);
    await server.query(`UPDATE products SET color = 'blue', price = price + 1 WHERE id <= 50`);
    await converges(runtime, 'after ADD COLUMN');
    assert.equal(failure(runtime, 'legacy'), undefined, 'an added column stops nothing');

    // DROP COLUMN mid-stream: "legacy" reads it, so it stops (keeping its last rows); the rest run.
    await server.query(`ALTER TABLE products DROP COLUMN legacy`);
    await server.query(`INSERT INTO products VALUES (1001, 'after drop', 3, 2, 'green')`);
    await server.query(`DELETE FROM products WHERE id BETWEEN 100 AND 120`);
    await converges(runtime, 'after DROP COLUMN');
    const dropped = failure(runtime, 'legacy');
    assert.equal(dropped?.code, 'source_schema_changed');
    assert.match(dropped!.message, /view "legacy" no longer compiles after shop\.products changed at the source \(dropped legacy/);
    assert.throws(() => runtime.readView('legacy'), (error: Error & { code?: string }) => error.code === 'view_failed' && /dropped legacy/.test(error.message));
    const [source] = runtime.status().sources;
    assert.deepEqual(source!.schemaChanges.map((c) => [c.added, c.dropped, c.stoppedViews]), [[['color'], [], []], [[], ['legacy'], ['legacy']]]);
    assert.equal(source!.state, 'streaming');

    // ALTER COLUMN TYPE mid-stream: "heavy" compares weight with a number; as text it no longer compiles.
    await server.query(`ALTER TABLE products ALTER COLUMN weight TYPE text`);
    await server.query(`UPDATE products SET weight = 'heavy', price = price * 2 WHERE id BETWEEN 200 AND 260`);
    await converges(runtime, 'after ALTER COLUMN TYPE');
    assert.equal(failure(runtime, 'heavy')?.code, 'source_schema_changed');
    assert.equal(failure(runtime, 'prices'), undefined);
  } finally {
    await runtime.close();
  }

  // While stopped: another column dropped that a view reads ("names" reads name). The pipeline still
  // loads; "names" stops, "prices" follows the source, and the earlier stops hold.
  await server.query(`ALTER TABLE products DROP COLUMN name`);
  await server.query(`UPDATE products SET price = price + 5 WHERE id % 3 = 0`);
  runtime = await PipelineRuntime.open({ text: pipeline(), file: 'shop.sql', data });
  runtime.start();
  try {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const want = text(await server.query(PRICES.replaceAll('shop.', 'public.')));
      if (JSON.stringify(text(runtime.readView('prices').rows)) === JSON.stringify(want)) break;
      if (Date.now() > deadline) assert.fail(`after a restart: prices ${JSON.stringify(runtime.readView('prices').rows)} vs ${JSON.stringify(want)}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.match(failure(runtime, 'names')?.message ?? '', /view "names" no longer compiles as the source tables are now, without the columns dropped or changed in kind: .*name/);
    assert.equal(failure(runtime, 'legacy')?.code, 'source_schema_changed');
    assert.equal(failure(runtime, 'heavy')?.code, 'source_schema_changed');
    assert.equal(failure(runtime, 'prices'), undefined);
  } finally {
    await runtime.close();
  }
});
