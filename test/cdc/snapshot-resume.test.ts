/**
 * A snapshot interrupted mid-table (Sluice stopped, or killed) continues after the last key it
 * wrote, without reading finished chunks again, while writes go on at the source; after catching
 * up, the views equal SELECT on PostgreSQL.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { FileLog } from '../../src/log/index.ts';
import { PipelineRuntime } from '../../src/pipeline/runtime.ts';
import { decodeSourceRecord, SNAPSHOT_END, SNAPSHOT_ROWS, SNAPSHOT_START, type SourceRecord } from '../../src/sources/records.ts';
import { startPostgres, type PostgresServer } from '../services/postgres.ts';

let server: PostgresServer;
let folder: string;

before(async () => {
  server = await startPostgres();
  folder = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-pg-resume-'));
  await server.query(`CREATE TABLE accounts (id int PRIMARY KEY, owner text, balance numeric(12,2))`);
  await server.query(`CREATE TABLE events (region text, seq int, amount int, PRIMARY KEY (region, seq))`);
  await server.query(`INSERT INTO accounts SELECT g, 'owner ' || g, g % 1000 FROM generate_series(1, 150000) g`);
  await server.query(`INSERT INTO events SELECT CASE g % 3 WHEN 0 THEN 'eu' WHEN 1 THEN 'us' ELSE 'ap' END, g, g % 17 FROM generate_series(1, 120000) g`);
  await server.query(`ANALYZE`);
});

after(async () => {
  await server?.stop();
  fs.rmSync(folder, { recursive: true, force: true });
});

const VIEWS = {
  balances: `SELECT count(*) AS n, sum(balance) AS total FROM bank.accounts`,
  regions: `SELECT region, count(*) AS n, sum(amount) AS total FROM bank.events GROUP BY region`,
};

function pipeline(): string {
  return `CREATE SOURCE bank FROM POSTGRES '${server.url()}' WITH (tables = 'public.accounts, public.events');
${Object.entries(VIEWS).map(([name, sql]) => `CREATE VIEW ${name} AS ${sql};`).join('\n')}`;
}

const text = (rows: Array<Record<string, unknown>>) => rows.map((row) => JSON.stringify(Object.fromEntries(Object.entries(row).map(([k, v]) => [k, v === null ? null : String(v)])))).sort();

async function sourceRecords(data: string): Promise<SourceRecord[]> {
  const log = await FileLog.open(path.join(data, 'log'));
  try {
    const out: SourceRecord[] = [];
    const [end] = await log.endOffsets('source.bank');
    for (let offset = 0; offset < end!; ) {
      const { records } = await log.read('source.bank', 0, offset);
      for (const record of records) out.push(decodeSourceRecord(record.value!, `offset ${record.offset}`));
      offset = records.at(-1)!.offset + 1;
    }
    return out;
  } finally {
    await log.close();
  }
}

test('an interrupted snapshot continues after its last key, writes going on meanwhile, and the views equal PostgreSQL', async () => {
  const data = path.join(folder, 'data');
  let writing = true;
  // Updates, deletes, inserts and primary-key updates across the whole key range, all along.
  const writer = (async () => {
    for (let i = 0; writing; i++) {
      const id = 1 + ((i * 7919) % 150000);
      await server.query(`BEGIN;
        UPDATE accounts SET balance = balance + 1 WHERE id = ${id};
        DELETE FROM accounts WHERE id = ${(id * 3) % 150000 + 1};
        INSERT INTO accounts VALUES (${200000 + i}, 'new', 5) ON CONFLICT DO NOTHING;
        UPDATE accounts SET id = ${400000 + i} WHERE id = ${(id * 11) % 150000 + 1};
        UPDATE events SET amount = amount + 1 WHERE region = 'eu' AND seq = ${(i * 31) % 120000};
        COMMIT`);
    }
  })();
  try {
    // First run: stopped once the snapshot is well into the first table.
    let runtime = await PipelineRuntime.open({ text: pipeline(), file: 'bank.sql', data });
    runtime.start();
    const deadline = Date.now() + 60_000;
    while ((runtime.status().sources[0]!.snapshot?.rows ?? 0) < 40_000 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
    await runtime.close();
    const first = await sourceRecords(data);
    assert.ok(!first.some((r) => r.kind === SNAPSHOT_END), 'the first run stopped before the snapshot ended');
    const readBefore = first.filter((r) => r.kind === SNAPSHOT_ROWS).reduce((sum, r) => sum + r.changes.length, 0);
    assert.ok(readBefore >= 40_000 && readBefore < 150_000, `${readBefore} rows read before the stop`);

    // Second run: it continues.
    runtime = await PipelineRuntime.open({ text: pipeline(), file: 'bank.sql', data });
    runtime.start();
    try {
      while (runtime.status().sources[0]!.state !== 'streaming' && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      writing = false;
      await writer;
      const until = Date.now() + 30_000;
      for (;;) {
        const want = await Promise.all(Object.values(VIEWS).map(async (sql) => text(await server.query(sql.replaceAll('bank.', 'public.')))));
        const got = Object.keys(VIEWS).map((name) => text(runtime.readView(name).rows));
        if (JSON.stringify(got) === JSON.stringify(want)) break;
        if (Date.now() > until) {
          const mine = new Set(runtime.readView('bank.accounts', { limit: 1_000_000 }).rows.map((r) => Number(r.id)));
          const theirs = new Set((await server.query(`SELECT id FROM accounts`)).map((r: { id: number }) => Number(r.id)));
          const extra = [...mine].filter((id) => !theirs.has(id)).slice(0, 10);
          const missing = [...theirs].filter((id) => !mine.has(id)).slice(0, 10);
          assert.fail(`the views do not converge: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}; accounts only in Sluice ${extra}, only in PostgreSQL ${missing}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    } finally {
      await runtime.close();
    }
    const records = await sourceRecords(data);
    assert.equal(records.filter((r) => r.kind === SNAPSHOT_START && r.position.lsn !== undefined).length, 1, 'one snapshot: continued, not started over');
    assert.equal(records.filter((r) => r.kind === SNAPSHOT_END).at(-1)?.position.resumed, true);
    // No chunk read twice: each table's snapshot rows come in strictly increasing key order.
    const chunks = records.filter((r) => r.kind === SNAPSHOT_ROWS);
    for (const table of ['public.accounts', 'public.events']) {
      const keys = chunks.filter((r) => r.tables[0]!.name === table).flatMap((r) => r.changes.map((c) => (table === 'public.accounts' ? [Number(c.row[0])] : [String(c.row[0]), Number(c.row[1])])));
      const increasing = keys.every((key, i) => i === 0 || JSON.stringify([keys[i - 1], key]) === JSON.stringify([keys[i - 1], key].sort((a, b) => (a[0]! < b[0]! ? -1 : a[0]! > b[0]! ? 1 : (a[1] as number) - (b[1] as number)))) && JSON.stringify(keys[i - 1]) !== JSON.stringify(key));
      assert.ok(increasing, `${table}: the snapshot's keys increase strictly (no chunk read twice)`);
    }
  } finally {
    writing = false;
    await writer.catch(() => {});
  }
});
