/**
 * Crash test of the pipeline runtime, driven as a user would: `sluice up` runs a pipeline file
 * (a keyed products table, an orders table fed with upserts, a join-aggregate view `revenue`, a
 * `top3` view over it, a search sink on products and a JSONL file sink of revenue) under a
 * steady append load over HTTP, and is killed with SIGKILL at random moments — during the load
 * (after 100–1500 ms of it) and, about three times in ten, during start-up and recovery (while the
 * log is replayed and unacknowledged requests are retried) — then restarted on the same data
 * directory (DESIGN.md, promises 1 and 2).
 *
 * The client keeps every request (its rows and Idempotency-Key). A request in flight at a kill has
 * an unknown fate: after the restart it is retried with the same key until acknowledged. The
 * position each append answers (the original one on a duplicate answer) is the offset of its
 * record, so the reference (pipeline-model.ts, SQLite) applies each table's requests in the
 * exact order the pipeline did, upserts included.
 *
 * After every restart that survives (once retries are acknowledged and the views reflect each
 * table's last acknowledged position), and at the end:
 * - every view (revenue, top3) and both tables equal the reference over all acknowledged requests;
 * - re-sending a few already-acknowledged requests answers duplicate:true with their position;
 * - the search index returns exactly the products whose current title holds the word, as they are;
 * - the JSONL file holds whole steps, strictly increasing, no change twice, no delete of a row it
 *   does not hold, and its integral equals revenue at its last position.
 * At the end of each run, after a clean stop (SIGTERM, exit 0):
 * - after every step of the JSONL file, its integral equals the reference revenue at that step's
 *   position (no gap, no duplicate anywhere in its history);
 * - the log holds exactly one record per request, with its key, at its acknowledged offset;
 * - `sluice run` on the data directory exits 0 and the views (read by `sluice up` again) are
 *   identical; so is `sluice run` on a copy holding only the log (everything rebuilt).
 *
 * SLUICE_CRASH_KILLS sets the kills per `npm test` (default 104, spread over 5 runs, two at a time);
 * SLUICE_CRASH_SEED replays a run's plan (the requests and the kill times; process timing varies).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FileLog } from '../../src/log/index.ts';
import { decodeTableRecord } from '../../src/pipeline/table-records.ts';
import { checkSinkFile, decodeToken, describeDiff, normalizeNumeric, referenceOverAll, sameList, byId, type OrderRow, type ProductRow, type Reference, type Request, type TableName } from './pipeline-model.ts';
import { Sluice, runSluice, sleep } from './pipeline-process.ts';
import { seededRandom, type Random } from './random.ts';

const killsWanted = Number(process.env.SLUICE_CRASH_KILLS ?? 104);
const runs = Math.max(1, Math.min(5, Math.ceil(killsWanted / 21)));
const seed = Number(process.env.SLUICE_CRASH_SEED ?? Math.floor(Math.random() * 2 ** 32));
const WORDS = ['amber', 'birch', 'cedar', 'delta', 'ember', 'fjord', 'glade', 'heron'];
const PRODUCT_IDS = 30;
const ORDER_IDS = 1500;
const WORKERS = 2;

const PIPELINE = `
CREATE TABLE products (id bigint PRIMARY KEY, title text, price numeric(10,2));
CREATE TABLE orders (id bigint PRIMARY KEY, product_id bigint, qty int);
CREATE VIEW revenue AS SELECT p.id, count(*) AS n, sum(o.qty * p.price) AS total
  FROM orders o JOIN products p ON p.id = o.product_id GROUP BY p.id;
CREATE VIEW top3 AS SELECT id, total FROM revenue ORDER BY total DESC, id LIMIT 3;
CREATE SINK s FROM products INTO SEARCH WITH (fields = 'title');
CREATE SINK f FROM revenue INTO FILE 'revenue.jsonl';
`;

process.stdout.write(`pipeline crash test: seed ${seed} (SLUICE_CRASH_SEED=${seed} replays it), ${killsWanted} kills over ${runs} runs\n`);

// ── The client ─────────────────────────────────────────────────────────────────────────────

class Client {
  readonly requests: Request[] = [];
  /** Sent, fate unknown (in flight at a kill): retried after the restart. */
  readonly pending = new Set<Request>();
  readonly #random: Random;
  readonly #run: number;
  #next = 0;
  cycle = 0;

  constructor(run: number, random: Random) {
    this.#run = run;
    this.#random = random;
  }

  newRequest(): Request {
    const r = this.#random;
    const table: TableName = r.chance(0.3) ? 'products' : 'orders';
    const count = r.integer(1, 20);
    const ids = new Set<number>();
    const rows: Array<ProductRow | OrderRow> = [];
    for (let tries = 0; rows.length < count && tries < 100; tries++) {
      const id = table === 'products' ? r.integer(1, PRODUCT_IDS) : r.integer(1, ORDER_IDS);
      if (ids.has(id)) continue;
      ids.add(id);
      if (table === 'products') {
        const words = Array.from({ length: r.integer(1, 3) }, () => WORDS[r.integer(0, WORDS.length - 1)]!);
        const cents = r.integer(1, 99_999);
        rows.push({ id, title: words.join(' '), price: `${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, '0')}` });
      } else {
        rows.push({ id, product_id: r.integer(1, PRODUCT_IDS + 5), qty: r.integer(1, 9) });
      }
    }
    const request: Request = { key: `run${this.#run}-${this.#next++}-${seed}`, table, rows, body: JSON.stringify(rows), cycle: this.cycle };
    this.requests.push(request);
    return request;
  }

  /** POSTs a request; 'lost' when the connection failed (the process died). */
  async send(sluice: Sluice, request: Request): Promise<'ok' | 'lost' | { duplicate: boolean; position: string }> {
    let response: Response;
    try {
      response = await fetch(`${sluice.url}/v1/tables/${request.table}/events`, { method: 'POST', body: request.body, headers: { 'content-type': 'application/json', 'idempotency-key': request.key } });
    } catch (error) {
      if (!sluice.killed) throw new Error(`POST ${request.key} failed while the process was alive: ${(error as Error).message}`);
      return 'lost';
    }
    let text: string;
    try {
      text = await response.text();
    } catch (error) {
      if (!sluice.killed) throw error;
      return 'lost';
    }
    if (response.status !== 200) throw new Error(`POST /v1/tables/${request.table}/events (${request.key}) answered ${response.status}: ${text}`);
    const answer = JSON.parse(text) as { position: string; count: number; duplicate: boolean };
    const frontier = decodeToken(answer.position);
    const end = frontier.get(`table.${request.table}`);
    if (frontier.size !== 1 || end === undefined || end < 1) throw new Error(`append ${request.key} answered position ${JSON.stringify(Object.fromEntries(frontier))}, not one of table.${request.table}`);
    if (answer.duplicate) {
      if (answer.count !== 0) throw new Error(`duplicate answer for ${request.key} with count ${answer.count}`);
      if (request.offset === undefined && !this.pending.has(request)) throw new Error(`a new request ${request.key} was answered duplicate:true`);
    } else if (answer.count !== request.rows.length) throw new Error(`append ${request.key} of ${request.rows.length} rows answered count ${answer.count}`);
    if (request.offset !== undefined) {
      if (!answer.duplicate) throw new Error(`re-sending acknowledged request ${request.key} (at table.${request.table} offset ${request.offset}) was applied again at offset ${end - 1} instead of answering duplicate:true — an acknowledged Idempotency-Key was forgotten after a restart`);
      if (end - 1 !== request.offset) throw new Error(`re-sending acknowledged request ${request.key} answered duplicate at offset ${end - 1}, but it was acknowledged at offset ${request.offset}`);
      return 'ok';
    }
    request.offset = end - 1;
    this.pending.delete(request);
    return { duplicate: answer.duplicate, position: answer.position };
  }

  lastPositions(): string[] {
    const out: string[] = [];
    for (const table of ['products', 'orders'] as const) {
      let last = -1;
      for (const r of this.requests) if (r.table === table && r.offset !== undefined) last = Math.max(last, r.offset);
      if (last >= 0) out.push(Buffer.from(JSON.stringify({ [`table.${table}`]: last + 1 })).toString('base64url'));
    }
    return out;
  }
}

// ── Checks against a running process ───────────────────────────────────────────────────────

async function getJson(url: string): Promise<Record<string, unknown>> {
  const response = await fetch(url);
  const text = await response.text();
  if (response.status !== 200) throw new Error(`GET ${url} answered ${response.status}: ${text}`);
  return JSON.parse(text) as Record<string, unknown>;
}

async function readAll(sluice: Sluice, name: string): Promise<Record<string, unknown>[]> {
  const rows: Record<string, unknown>[] = [];
  for (let offset = 0; ; offset += 10_000) {
    const page = (await getJson(`${sluice.url}/v1/views/${name}?limit=10000&offset=${offset}`)).rows as Record<string, unknown>[];
    rows.push(...page);
    if (page.length < 10_000) return rows;
  }
}

async function waitCaughtUp(sluice: Sluice, client: Client): Promise<void> {
  for (const token of client.lastPositions()) await getJson(`${sluice.url}/v1/views/revenue?atLeast=${token}&limit=1`);
}

/** Compares views, tables and the search index with the reference; returns problems. */
async function checkServed(sluice: Sluice, expected: Reference, when: string): Promise<string[]> {
  const problems: string[] = [];
  const compare = (what: string, e: string[], a: string[]) => {
    if (!sameList(e, a)) problems.push(`${when}: ${what} ${describeDiff(e, a)}`);
  };
  const revenue = (await readAll(sluice, 'revenue')).map((r) => `${String(r.id)}|${String(r.n)}|${normalizeNumeric(r.total)}`).sort(byId);
  compare('view revenue', expected.revenue, revenue);
  const top3 = (await readAll(sluice, 'top3')).map((r) => `${String(r.id)}|${normalizeNumeric(r.total)}`);
  compare('view top3 (in its order)', expected.top3, top3);
  const products = (await readAll(sluice, 'products')).map((r) => `${String(r.id)}|${String(r.title)}|${normalizeNumeric(r.price)}`).sort(byId);
  compare('table products (acknowledged appends)', expected.products.map((p) => `${p.id}|${p.title}|${p.price}`), products);
  const orders = (await readAll(sluice, 'orders')).map((r) => `${String(r.id)}|${String(r.product_id)}|${String(r.qty)}`).sort(byId);
  compare('table orders (acknowledged appends)', expected.orders.map((o) => `${o.id}|${o.product_id}|${o.qty}`), orders);
  for (const word of WORDS) {
    const answer = await getJson(`${sluice.url}/v1/search/s?q=${word}&limit=1000`);
    const hits = (answer.hits as Array<{ row: Record<string, unknown> }>).map((h) => `${String(h.row.id)}|${String(h.row.title)}|${normalizeNumeric(h.row.price)}`).sort(byId);
    const want = expected.products.filter((p) => p.title.split(' ').includes(word)).map((p) => `${p.id}|${p.title}|${p.price}`);
    compare(`search s for "${word}"`, want, hits);
  }
  return problems;
}

function checkFile(data: string, client: Client, expected: Reference | undefined, full: boolean, when: string): string[] {
  const file = path.join(data, 'revenue.jsonl');
  if (!fs.existsSync(file)) return expected && expected.revenue.length > 0 ? [`${when}: ${file} does not exist`] : [];
  const result = checkSinkFile(fs.readFileSync(file, 'utf8'), full ? client.requests : undefined, full);
  const problems = result.problems.map((p) => `${when}: revenue.jsonl ${p}`);
  if (expected && !sameList(expected.revenue, result.integral)) problems.push(`${when}: the integral of revenue.jsonl ${describeDiff(expected.revenue, result.integral)}`);
  return problems;
}

/** Re-sends pending requests until acknowledged (or the process died). */
async function retryPending(sluice: Sluice, client: Client): Promise<void> {
  for (const request of [...client.pending]) {
    if (sluice.killed) return;
    await client.send(sluice, request);
  }
}

// ── One run: a fresh data directory, many kills ────────────────────────────────────────────

interface RunResult {
  kills: number;
  startupKills: number;
  requests: number;
  rows: number;
  restartMs: number[];
  /** Milliseconds spent starting (to listening), retrying + catching up + checking, under load. */
  phases: { start: number; check: number; load: number; end: number };
  problems: string[];
}

async function oneRun(run: number, kills: number): Promise<RunResult> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `sluice-pipeline-crash-${run}-`));
  const file = path.join(dir, 'shop.sql');
  const data = path.join(dir, 'data');
  fs.writeFileSync(file, PIPELINE);
  const plan = seededRandom(seed + Math.imul(run + 1, 0x9e3779b1));
  const client = new Client(run, seededRandom(seed ^ Math.imul(run + 7, 0x85ebca6b)));
  const result: RunResult = { kills: 0, startupKills: 0, requests: 0, rows: 0, restartMs: [], phases: { start: 0, check: 0, load: 0, end: 0 }, problems: [] };
  const fail = (problems: string[]) => {
    if (problems.length === 0) return;
    result.problems.push(...problems);
    throw new Error(`run ${run} (seed ${seed}), after ${result.kills} kills:\n  ${problems.slice(0, 12).join('\n  ')}`);
  };
  let sluice: Sluice | undefined;
  try {
    for (let cycle = 0; cycle <= kills; cycle++) {
      client.cycle = cycle;
      const last = cycle === kills;
      const startupKill = !last && cycle > 0 && plan.chance(0.3);
      const startupDelay = plan.integer(0, 700);
      const loadMs = plan.integer(100, 1500);
      const began = performance.now();
      // Odd runs checkpoint every 0.3 s: restarts then restore a checkpoint and replay from it,
      // cut at each sink's frontier; even runs replay the whole log (the 30 s default never fires).
      sluice = Sluice.start(file, data, run % 2 === 1 ? 0.3 : undefined);
      if (startupKill) {
        // Killed during start-up and recovery: while the log is replayed, or while retries run.
        const killer = sleep(startupDelay).then(() => sluice!.kill());
        if (await sluice.ready()) await retryPending(sluice, client).catch((error) => { if (!sluice!.killed) throw error; });
        await killer;
        await sluice.exited;
        result.kills++;
        result.startupKills++;
        continue;
      }
      if (!(await sluice.ready())) fail([`cycle ${cycle}: sluice up did not start after ${result.kills} kills (exit ${sluice.exitCode}): ${sluice.stderr.trim().slice(-2000)}`]);
      result.restartMs.push(performance.now() - began);
      result.phases.start += performance.now() - began;
      const checkBegan = performance.now();
      await retryPending(sluice, client);
      if (client.pending.size > 0) fail([`cycle ${cycle}: ${client.pending.size} requests still unacknowledged`]);
      // Acknowledged before the kill: a retry must be recognized, at its position.
      const acknowledged = client.requests.filter((r) => r.offset !== undefined);
      for (let k = 0; k < 3 && acknowledged.length > 0; k++) await client.send(sluice, acknowledged[plan.integer(0, acknowledged.length - 1)]!);
      await waitCaughtUp(sluice, client);
      const expected = referenceOverAll(client.requests);
      const when = `run ${run} after restart ${cycle} (${result.kills} kills)`;
      fail([...(await checkServed(sluice, expected, when)), ...checkFile(data, client, expected, false, when)]);
      result.phases.check += performance.now() - checkBegan;
      if (last) break;
      // The load, then the kill.
      const loadBegan = performance.now();
      let stop = false;
      const workers = Array.from({ length: WORKERS }, async () => {
        while (!stop && !sluice!.killed) {
          const request = client.newRequest();
          client.pending.add(request);
          const outcome = await client.send(sluice!, request);
          if (outcome === 'lost') return;
          // A steady load, not a flood: the log (replayed at every restart, as no periodic
          // checkpoint happens within a run) then stays small enough for ~100 kills in ~2 min.
          await sleep(3);
        }
      });
      await Promise.race([sleep(loadMs), Promise.all(workers)]);
      if (!sluice.alive) fail([`cycle ${cycle}: the process exited by itself during the load (exit ${sluice.exitCode}): ${sluice.stderr.trim().slice(-2000)}`]);
      sluice.kill();
      stop = true;
      await Promise.all(workers);
      await sluice.exited;
      result.phases.load += performance.now() - loadBegan;
      result.kills++;
    }
    const endBegan = performance.now();
    // A clean stop, then the whole history of the file, the log, and `sluice run`.
    const expected = referenceOverAll(client.requests);
    const code = await sluice!.stop();
    sluice = undefined;
    if (code !== 0) fail([`the clean stop (SIGTERM) exited ${code}`]);
    fail(checkFile(data, client, expected, true, `run ${run} at the end`));
    fail(await checkLog(data, client));
    for (const [what, folder] of [['on the data directory', data], ['on a copy holding only the log', copyLog(data, path.join(dir, 'rebuilt'))]] as const) {
      const run1 = await runSluice(['run', file, '--data', folder, '--quiet']);
      if (run1.code !== 0) fail([`sluice run ${what} exited ${run1.code}: ${run1.stderr.trim().slice(-2000)}`]);
      const again = Sluice.start(file, folder);
      try {
        if (!(await again.ready())) fail([`sluice up after sluice run ${what} did not start: ${again.stderr.trim().slice(-2000)}`]);
        fail(await checkServed(again, expected, `after sluice run ${what}`));
      } finally {
        await again.stop();
      }
    }
    result.requests = client.requests.length;
    result.rows = client.requests.reduce((sum, r) => sum + r.rows.length, 0);
    result.phases.end = performance.now() - endBegan;
    fs.rmSync(dir, { recursive: true, force: true });
    return result;
  } catch (error) {
    sluice?.kill();
    if (sluice) await sluice.exited;
    (error as Error).message += `\n  data kept in ${dir}`;
    throw error;
  }
}

function copyLog(data: string, to: string): string {
  fs.rmSync(to, { recursive: true, force: true });
  fs.mkdirSync(to, { recursive: true });
  fs.cpSync(path.join(data, 'log'), path.join(to, 'log'), { recursive: true });
  return to;
}

/** The log holds exactly one record per request, with its key and rows, at its acknowledged offset. */
async function checkLog(data: string, client: Client): Promise<string[]> {
  const problems: string[] = [];
  const log = await FileLog.open(path.join(data, 'log'), { readOnly: true });
  try {
    for (const table of ['products', 'orders'] as const) {
      const topic = `table.${table}`;
      const byOffset = new Map(client.requests.filter((r) => r.table === table).map((r) => [r.offset!, r]));
      const [end] = await log.endOffsets(topic);
      const columns = table === 'products' ? ['id', 'title', 'price'] : ['id', 'product_id', 'qty'];
      if (end !== byOffset.size) problems.push(`${topic} holds ${end} records for ${byOffset.size} requests (each request must be in the log exactly once)`);
      for (let offset = 0; offset < end!; ) {
        const { records } = await log.read(topic, 0, offset, { maxRecords: 1000 });
        if (records.length === 0) break;
        for (const record of records) {
          const decoded = decodeTableRecord(record.value!, columns, `${topic} offset ${record.offset}`);
          const request = byOffset.get(record.offset);
          if (!request) problems.push(`${topic} offset ${record.offset} holds a record of key "${decoded.idempotencyKey}" that no acknowledgement names`);
          else if (decoded.idempotencyKey !== request.key) problems.push(`${topic} offset ${record.offset} holds key "${decoded.idempotencyKey}", but request ${request.key} was acknowledged there`);
          else if (decoded.rows.length !== request.rows.length) problems.push(`${topic} offset ${record.offset} holds ${decoded.rows.length} rows for the ${request.rows.length} of ${request.key}`);
          offset = record.offset + 1;
        }
      }
    }
  } finally {
    await log.close();
  }
  return problems;
}

test(`sluice up survives SIGKILL under load: views, search, JSONL sink and appends stay exact (${killsWanted} kills)`, { timeout: 600_000 }, async () => {
  const began = performance.now();
  const perRun = Array.from({ length: runs }, (_, i) => Math.floor(killsWanted / runs) + (i < killsWanted % runs ? 1 : 0));
  // Two runs at a time: the machine has two cores, and a run mostly waits on its process.
  const results: RunResult[] = [];
  const queue = perRun.map((kills, run) => () => oneRun(run, kills));
  const errors: Error[] = [];
  await Promise.all(
    [0, 1].map(async () => {
      for (let job = queue.shift(); job; job = queue.shift()) {
        try {
          results.push(await job());
        } catch (error) {
          errors.push(error as Error);
        }
      }
    }),
  );
  const restarts = results.flatMap((r) => r.restartMs).sort((a, b) => a - b);
  const kills = results.reduce((s, r) => s + r.kills, 0);
  const phase = (name: keyof RunResult['phases']) => (results.reduce((s, r) => s + r.phases[name], 0) / 1000).toFixed(1);
  process.stdout.write(
    `pipeline crash: ${kills} kills (${results.map((r) => `${r.kills} (${r.startupKills} in start-up)`).join(', ')}), ${results.reduce((s, r) => s + r.requests, 0)} requests / ${results.reduce((s, r) => s + r.rows, 0)} rows, ` +
      `time in start-up ${phase('start')} s, retry+catch-up+checks ${phase('check')} s, load+kill ${phase('load')} s, final checks and sluice run ${phase('end')} s (summed over runs); restart to listening median ${Math.round(restarts[Math.floor(restarts.length / 2)] ?? 0)} ms (max ${Math.round(restarts.at(-1) ?? 0)}), ${((performance.now() - began) / 1000).toFixed(1)} s; seed ${seed}\n`,
  );
  if (errors.length > 0) assert.fail(errors.map((e) => e.message).join('\n\n'));
  assert.equal(kills, killsWanted);
});
