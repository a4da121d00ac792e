/**
 * A 2,000,000-row transaction at a PostgreSQL source: the capture writes it to the log in parts
 * while it streams (protocol 2), holding at most a bounded number of changes in memory; the commit
 * names the parts; a pipeline applies the transaction whole (never half-visible) and its view
 * equals SELECT on PostgreSQL.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import v8 from 'node:v8';
import vm from 'node:vm';
import { FileLog } from '../../src/log/index.ts';
import { PipelineRuntime } from '../../src/pipeline/runtime.ts';
import { postgresConfig } from '../../src/sources/postgres/config.ts';
import { PostgresCapture } from '../../src/sources/postgres/connector.ts';
import { decodeSourceHeader, TRANSACTION, TRANSACTION_PART, transactionParts } from '../../src/sources/records.ts';
import { startPostgres, type PostgresServer } from '../services/postgres.ts';

const ROWS = 2_000_000;
let server: PostgresServer;
let folder: string;
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

before(async () => {
  server = await startPostgres();
  folder = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-pg-large-'));
  await server.query(`CREATE TABLE items (id bigint PRIMARY KEY, grp int, amount numeric(12,2), label text)`);
});

after(async () => {
  await server?.stop();
  fs.rmSync(folder, { recursive: true, force: true });
});

/** Samples the heap every 20 ms; `stop()` gives the highest seen, in MB. */
function heapPeak(): { stop: () => number } {
  let peak = process.memoryUsage().heapUsed;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().heapUsed)), 20);
  return { stop: () => (clearInterval(timer), Math.max(peak, process.memoryUsage().heapUsed) / 1e6) };
}

const insert = (from: number) => server.query(`INSERT INTO items SELECT g, g % 100, g * 0.01, 'label ' || g FROM generate_series(${from}, ${from + ROWS - 1}) g`);

test(`the capture writes a ${ROWS.toLocaleString('en-US')}-row transaction in parts, with bounded memory`, async () => {
  const log = await FileLog.open(path.join(folder, 'capture-log'));
  const controller = new AbortController();
  const capture = new PostgresCapture(postgresConfig('big', server.url(), new Map([['tables', 'public.items'], ['slot', 'capture_only']])), log);
  const running = capture.run(controller.signal);
  try {
    await capture.caughtUp();
    gc();
    const base = process.memoryUsage().heapUsed / 1e6;
    const peak = heapPeak();
    await insert(1);
    await capture.caughtUp(300_000);
    const growth = peak.stop() - base;
    // Decoded whole, 2,000,000 rows take well over a gigabyte of heap; in parts, a few hundred MB at most.
    assert.ok(growth < 400, `the capture's heap grew by ${growth.toFixed(0)} MB for the transaction`);
    const [end] = await log.endOffsets(capture.topic);
    const headers: Array<ReturnType<typeof decodeSourceHeader> & { offset: number }> = [];
    for (let offset = 0; offset < end!; ) {
      const { records } = await log.read(capture.topic, 0, offset, { maxRecords: 1000 });
      for (const record of records) headers.push({ offset: record.offset, ...decodeSourceHeader(record.value!, `offset ${record.offset}`) });
      offset = records.at(-1)!.offset + 1;
    }
    const commit = headers.findLast((h) => h.kind === TRANSACTION)!;
    const parts = transactionParts({ ...commit, changes: [] });
    assert.ok(parts.length >= ROWS / 10_000, `the commit names ${parts.length} parts`);
    assert.ok(parts.every((offset) => headers[offset]!.kind === TRANSACTION_PART && headers[offset]!.offset < commit.offset));
    console.log(`# capture: ${ROWS.toLocaleString('en-US')} rows in ${parts.length} parts; heap grew by at most ${growth.toFixed(0)} MB`);
  } finally {
    controller.abort();
    await running;
    await log.close();
  }
});

test(`a pipeline applies the ${ROWS.toLocaleString('en-US')}-row transaction whole, and its views equal PostgreSQL`, async () => {
  await server.query(`TRUNCATE items`);
  const runtime = await PipelineRuntime.open({
    text: `CREATE SOURCE big FROM POSTGRES '${server.url()}' WITH (tables = 'public.items');
CREATE VIEW totals AS SELECT grp, count(*) AS n, sum(amount) AS total FROM big.items GROUP BY grp;
CREATE VIEW overall AS SELECT count(*) AS n FROM big.items;`,
    data: path.join(folder, 'pipeline'),
  });
  runtime.start();
  try {
    const deadline = Date.now() + 30_000;
    while (runtime.status().sources[0]!.state !== 'streaming' && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    gc();
    const base = process.memoryUsage().heapUsed / 1e6;
    const peak = heapPeak();
    // Every state the view shows is all of the transaction or none of it.
    const seen = new Set<number>();
    const watch = setInterval(() => seen.add(Number(runtime.readView('overall').rows[0]?.n ?? 0)), 5);
    await insert(1);
    const want = (await server.query(`SELECT grp, count(*) AS n, sum(amount)::text AS total FROM items GROUP BY grp ORDER BY grp`)).map((r: Record<string, unknown>) => `${r.grp}:${r.n}:${r.total}`);
    const until = Date.now() + 300_000;
    for (;;) {
      const got = runtime.readView('totals', { limit: 1000 }).rows.map((r) => `${r.grp}:${r.n}:${r.total}`).sort((a, b) => Number(a.split(':')[0]) - Number(b.split(':')[0]));
      if (JSON.stringify(got) === JSON.stringify(want)) break;
      if (Date.now() > until) assert.fail(`the view does not reach PostgreSQL's answer: ${JSON.stringify(runtime.status().sources)}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    clearInterval(watch);
    const growth = peak.stop() - base;
    gc();
    const kept = process.memoryUsage().heapUsed / 1e6 - base;
    assert.deepEqual([...seen].filter((n) => n !== 0 && n !== ROWS), [], 'never half-applied');
    // The tables live in memory (the rows are the views' state): the transaction itself must not
    // cost a multiple of what it leaves behind.
    assert.ok(growth < kept * 2.5 + 200, `the heap peaked ${growth.toFixed(0)} MB above the start for ${kept.toFixed(0)} MB kept`);
    console.log(`# pipeline: heap peak +${growth.toFixed(0)} MB while applying, +${kept.toFixed(0)} MB kept (the table's rows)`);
  } finally {
    await runtime.close();
  }
});
