/**
 * The SQL benchmark: how fast SQL becomes running circuits, and how fast the sqllogictest corpus
 * is answered, each against SQLite (node:sqlite) measured in the same run.
 *
 * 1. pipeline — a pipeline file of 5 tables and 100 views of varied shapes (joins of 2–4 tables,
 *    grouped aggregates, DISTINCT aggregates, IN / EXISTS / scalar subqueries, set operations,
 *    top-k, CTEs, outer joins, views over views) run through `db.execute` on a fresh in-memory
 *    database: parse, bind, optimize, lower, build every circuit and run its first step over
 *    the (empty) tables. Beside it: parsing alone (`parsePipelineAsync`) and parse + bind +
 *    optimize (`db.explain` of the same text on a database holding the views, plans printed).
 *    Peer: SQLite in memory executing the same DDL, then preparing `SELECT * FROM view` for every
 *    view (SQLite's CREATE VIEW only parses and stores the text; preparing a statement that reads
 *    the view resolves names and compiles the query to bytecode — its planning). The cases run
 *    in rounds, each round running every case once (so JIT warm-up and machine noise fall on all
 *    of them alike): untimed warm-up rounds, then --repeats timed rounds; each figure is a median.
 * 2. slt — every .test file under ../shared/slt (the runner of `sluice slt`, src/cli/slt/runner.ts):
 *    per file the statements and queries run, passed, failed and skipped, and the seconds —
 *    once as the runner answers queries by default (live queries: views maintained through the
 *    inserts before each query), once with its one-shot SELECTs. Peer: the same records (those
 *    both engines run under skipif/onlyif) answered one-shot by SQLite, one fresh in-memory
 *    database per file, results formatted and compared by the same code as Sluice's
 *    (format.ts). Files are read and parsed before any clock starts. One run each.
 *
 * Invariants:
 * - The table and the one JSON line go to stdout; progress goes to stderr.
 * - Every figure says what it covers; ratios are Sluice ÷ SQLite time (above 1: Sluice slower).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { parseArgs } from 'node:util';
import { open } from '../src/index.ts';
import { parsePipelineAsync } from '../src/sql/index.ts';
import { appliesTo, matchesExpected, resultValues, type SltRecord } from '../src/cli/slt/format.ts';
import { findSltFiles, loadSltFile, runSltFiles, testsToRun, type SltFile, type SltFileResult } from '../src/cli/slt/runner.ts';
import { formatNumber, printTable, round, progress } from './format.ts';
import { integerOption } from './options.ts';

export const description = 'SQL: parse/plan/lower a pipeline of 100 views, and run the sqllogictest corpus, against SQLite (node:sqlite)';

const repoRoot = path.resolve(import.meta.dirname, '..');

interface Settings {
  repeats: number;
  /** Untimed rounds before the timed ones. */
  warmups: number;
  views: number;
  sltDirectory: string;
  slt: boolean;
  /** Also run the corpus with the runner's one-shot SELECTs (besides its default, live queries). */
  oneShot: boolean;
  /** Only the slt files under this size (bytes); undefined: every file. */
  sltMaxBytes: number | undefined;
  quick: boolean;
}

// ── The pipeline ──────────────────────────────────────────────────────────────────────────────

const tables = `CREATE TABLE customers (id bigint PRIMARY KEY, name text NOT NULL, city text, tier integer, created_at timestamp);
CREATE TABLE products (id bigint PRIMARY KEY, title text NOT NULL, category text, price numeric, stock integer);
CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint, product_id bigint, quantity integer, amount numeric, status text, placed_at timestamp);
CREATE TABLE payments (id bigint PRIMARY KEY, order_id bigint, method text, amount numeric, paid_at timestamp);
CREATE TABLE shipments (id bigint PRIMARY KEY, order_id bigint, carrier text, shipped_at timestamp, delivered_at timestamp);`;

const statuses = ['open', 'paid', 'shipped', 'returned', 'cancelled'];
const cities = ['Oslo', 'Lima', 'Kyoto', 'Accra', 'Quito'];
const carriers = ['dhl', 'ups', 'fedex', 'posten', 'gls'];
const methods = ['card', 'cash', 'transfer', 'voucher', 'wallet'];
const categories = ['books', 'games', 'garden', 'kitchen', 'toys'];

/**
 * The view shapes, each a function of a variant number (its constants) and the names of the
 * views made so far in this round (for views over views). Standard SQL that PostgreSQL and
 * SQLite both accept.
 */
const shapes: Array<{ name: string; sql: (k: number, made: Map<string, string>) => string }> = [
  { name: 'open_orders', sql: (k) => `SELECT id, customer_id, amount FROM orders WHERE status = '${statuses[k % 5]}' AND amount > ${10 * k}` },
  { name: 'orders_by_city', sql: (k) => `SELECT o.id, c.name, o.amount FROM orders o JOIN customers c ON o.customer_id = c.id WHERE c.city = '${cities[k % 5]}'` },
  { name: 'order_lines', sql: (k) => `SELECT o.id, c.name, p.title, o.quantity * p.price AS line_total FROM orders o, customers c, products p WHERE o.customer_id = c.id AND o.product_id = p.id AND p.category = '${categories[k % 5]}'` },
  {
    name: 'revenue_by_city_category',
    sql: (k) => `SELECT c.city, p.category, count(*) AS orders, sum(y.amount) AS paid FROM orders o JOIN customers c ON c.id = o.customer_id JOIN products p ON p.id = o.product_id JOIN payments y ON y.order_id = o.id WHERE y.method <> '${methods[k % 5]}' GROUP BY c.city, p.category`,
  },
  { name: 'customer_totals', sql: (k) => `SELECT customer_id, count(*) AS n, sum(amount) AS total, avg(amount) AS mean, max(placed_at) AS last_order FROM orders GROUP BY customer_id HAVING count(*) > ${k}` },
  { name: 'buyers_per_category', sql: (k) => `SELECT p.category, count(DISTINCT o.customer_id) AS buyers, sum(o.quantity) AS units FROM orders o JOIN products p ON p.id = o.product_id WHERE o.status <> '${statuses[(k + 4) % 5]}' GROUP BY p.category` },
  { name: 'big_spenders', sql: (k) => `SELECT id, name FROM customers WHERE id IN (SELECT customer_id FROM orders WHERE amount > ${100 + 50 * k})` },
  { name: 'shipped_by', sql: (k) => `SELECT o.id, o.amount FROM orders o WHERE EXISTS (SELECT 1 FROM shipments s WHERE s.order_id = o.id AND s.carrier = '${carriers[k % 5]}')` },
  { name: 'unpaid_orders', sql: (k) => `SELECT o.id, o.customer_id FROM orders o WHERE o.status = '${statuses[k % 5]}' AND NOT EXISTS (SELECT 1 FROM payments y WHERE y.order_id = o.id)` },
  { name: 'customer_spend', sql: (k) => `SELECT c.id, c.name, (SELECT sum(o.amount) FROM orders o WHERE o.customer_id = c.id) AS spent FROM customers c WHERE c.tier = ${k}` },
  { name: 'above_average', sql: (k) => `SELECT id, amount FROM orders WHERE amount > (SELECT avg(amount) FROM orders WHERE status = '${statuses[k % 5]}')` },
  { name: 'active_people', sql: (k) => `SELECT customer_id AS id FROM orders WHERE status = '${statuses[k % 5]}' UNION SELECT id FROM customers WHERE tier = ${k}` },
  {
    name: 'events_per_kind',
    sql: (k) => `SELECT kind, count(*) AS n FROM (SELECT 'payment' AS kind, order_id FROM payments WHERE method = '${methods[k % 5]}' UNION ALL SELECT 'shipment' AS kind, order_id FROM shipments WHERE carrier = '${carriers[k % 5]}') e GROUP BY kind`,
  },
  { name: 'not_shipped', sql: (k) => `SELECT id FROM orders WHERE quantity > ${k} EXCEPT SELECT order_id FROM shipments` },
  { name: 'largest_orders', sql: (k) => `SELECT id, customer_id, amount FROM orders WHERE status = '${statuses[k % 5]}' ORDER BY amount DESC, id LIMIT ${5 + 5 * k}` },
  { name: 'top_customers', sql: (k) => `SELECT customer_id, sum(amount) AS total FROM orders WHERE placed_at >= '2024-0${k + 1}-01' GROUP BY customer_id ORDER BY total DESC, customer_id LIMIT 10` },
  { name: 'delivery', sql: (k) => `SELECT o.id, s.carrier, s.delivered_at FROM orders o LEFT JOIN shipments s ON s.order_id = o.id AND s.carrier <> '${carriers[k % 5]}' WHERE o.placed_at >= '2024-0${k + 1}-01'` },
  {
    name: 'cities_of_big_buyers',
    sql: (k) => `WITH big AS (SELECT customer_id, sum(amount) AS total FROM orders GROUP BY customer_id HAVING sum(amount) > ${1000 * (k + 1)}) SELECT c.city, count(*) AS n, max(big.total) AS top FROM big JOIN customers c ON c.id = big.customer_id GROUP BY c.city`,
  },
  { name: 'loyal_customers', sql: (k, made) => `SELECT t.customer_id, t.total, c.name FROM ${made.get('customer_totals')} t JOIN customers c ON c.id = t.customer_id WHERE t.total > ${500 * (k + 1)}` },
  {
    name: 'order_labels',
    sql: (k) => `SELECT o.id, CASE WHEN o.amount > ${100 * (k + 1)} THEN 'big' WHEN o.amount > 10 THEN 'medium' ELSE 'small' END AS size, coalesce(y.method, 'unpaid') AS method, nullif(o.status, 'open') AS closed_status, CAST(o.quantity AS numeric) * 2 AS double_quantity FROM orders o LEFT JOIN payments y ON y.order_id = o.id WHERE o.amount BETWEEN ${k} AND ${1000 * (k + 1)} AND o.status LIKE '%e%'`,
  },
];

/** The pipeline file's text: the tables, then `views` views cycling through the shapes. */
export function pipelineText(views: number): { text: string; viewNames: string[] } {
  const statements = [tables];
  const viewNames: string[] = [];
  let made = new Map<string, string>();
  for (let i = 0; i < views; i++) {
    const shape = shapes[i % shapes.length]!;
    const k = Math.floor(i / shapes.length);
    if (i % shapes.length === 0) made = new Map();
    const name = `${shape.name}_${k}`;
    statements.push(`CREATE VIEW ${name} AS ${shape.sql(k % 5, made)};`);
    made.set(shape.name, name);
    viewNames.push(name);
  }
  return { text: `${statements.join('\n')}\n`, viewNames };
}

interface Timing {
  case: string;
  system: 'sluice' | 'sqlite';
  what: string;
  runs: number[];
  medianMs: number;
}

function medianOf(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

interface Case {
  name: string;
  system: Timing['system'];
  what: string;
  /** One run: its time in ms. */
  once: () => Promise<number>;
}

async function pipelineBench(settings: Settings): Promise<Timing[]> {
  const { text, viewNames } = pipelineText(settings.views);
  const statementsCount = 5 + viewNames.length;
  progress(
    `sql bench: a pipeline of 5 tables and ${viewNames.length} views (${text.length.toLocaleString('en-US')} characters); ` +
      `${settings.warmups} warm-up round(s), then ${settings.repeats} timed round(s), each running every case once`,
  );
  await parsePipelineAsync('SELECT 1'); // loads PostgreSQL's parser (WebAssembly) once, outside every clock
  // A database holding the views, for explain (binding needs the views that views read).
  const populated = await open();
  await populated.execute(text, 'pipeline.sql');

  const cases: Case[] = [
    {
      name: 'sluice parse',
      system: 'sluice',
      what: `parsePipelineAsync of the whole file (${statementsCount} statements)`,
      once: async () => {
        const started = performance.now();
        const statements = await parsePipelineAsync(text, 'pipeline.sql');
        const ms = performance.now() - started;
        if (statements.length !== statementsCount) throw new Error(`the pipeline parsed into ${statements.length} statements, not ${statementsCount}`);
        return ms;
      },
    },
    {
      name: 'sluice parse+bind+optimize',
      system: 'sluice',
      what: 'db.explain of the whole file on a database already holding its tables and views (parse, bind, optimize, print each plan)',
      once: async () => {
        const started = performance.now();
        await populated.explain(text);
        return performance.now() - started;
      },
    },
    {
      name: 'sluice execute',
      system: 'sluice',
      what: 'db.execute of the whole file on a fresh in-memory database: parse, bind, optimize, lower, build each circuit, run its first step over the empty tables',
      once: async () => {
        const db = await open();
        const started = performance.now();
        await db.execute(text, 'pipeline.sql');
        const ms = performance.now() - started;
        await db.close();
        return ms;
      },
    },
    {
      name: 'sqlite exec DDL',
      system: 'sqlite',
      what: 'DatabaseSync(":memory:").exec of the same file (SQLite parses and stores each view; it does not resolve or plan it)',
      once: async () => {
        const db = new DatabaseSync(':memory:');
        const started = performance.now();
        db.exec(text);
        const ms = performance.now() - started;
        db.close();
        return ms;
      },
    },
    {
      name: 'sqlite exec DDL + prepare',
      system: 'sqlite',
      what: 'the same exec, then prepare "SELECT * FROM view" for every view (names resolved, the query planned and compiled to bytecode, not run)',
      once: async () => {
        const db = new DatabaseSync(':memory:');
        const started = performance.now();
        db.exec(text);
        for (const name of viewNames) db.prepare(`SELECT * FROM ${name}`);
        const ms = performance.now() - started;
        db.close();
        return ms;
      },
    },
  ];

  // Rounds, each running every case once, so that JIT warm-up and machine noise fall on every case alike.
  for (let round = 0; round < settings.warmups; round++) for (const each of cases) await each.once();
  const runs = cases.map(() => [] as number[]);
  for (let round = 0; round < settings.repeats; round++) {
    for (let i = 0; i < cases.length; i++) runs[i]!.push(await cases[i]!.once());
  }
  await populated.close();
  return cases.map((each, i) => {
    const timing: Timing = { case: each.name, system: each.system, what: each.what, runs: runs[i]!, medianMs: medianOf(runs[i]!) };
    progress(`  ${each.name}: ${formatNumber(timing.medianMs, 1)} ms (runs: ${timing.runs.map((r) => formatNumber(r, 1)).join(', ')})`);
    return timing;
  });
}

// ── The slt corpus ────────────────────────────────────────────────────────────────────────────

interface SqliteFileResult {
  file: string;
  tests: number;
  queries: number;
  passed: number;
  failed: number;
  ms: number;
}

type Test = Extract<SltRecord, { kind: 'statement' } | { kind: 'query' }>;

/** The tests of a file that Sluice runs and that apply to SQLite too (skipif/onlyif). */
function sharedTests(file: SltFile): Test[] {
  return testsToRun(file.records).run.map((each) => each.test).filter((test) => appliesTo(test.conditions, 'sqlite'));
}

/** Answers a file's shared tests with SQLite, one-shot, comparing results as the slt runner does. */
function runSqliteFile(file: SltFile): SqliteFileResult {
  const tests = sharedTests(file);
  const started = performance.now();
  const db = new DatabaseSync(':memory:');
  let passed = 0;
  let queries = 0;
  try {
    for (const test of tests) {
      if (test.kind === 'statement') {
        let failed = false;
        try {
          db.exec(test.sql);
        } catch {
          failed = true;
        }
        if (failed === (test.expect === 'error')) passed++;
        continue;
      }
      queries++;
      try {
        const statement = db.prepare(test.sql);
        statement.setReturnArrays(true);
        const rows = statement.all() as unknown as unknown[][];
        const width = rows.length > 0 ? rows[0]!.length : statement.columns().length;
        if (width === test.types.length && matchesExpected(resultValues(rows, test.types, test.sort), test.expected)) passed++;
      } catch {
        // a failed query
      }
    }
  } finally {
    db.close();
  }
  return { file: file.file, tests: tests.length, queries, passed, failed: tests.length - passed, ms: performance.now() - started };
}

interface SltOutcome {
  files: Array<{ name: string; sluice: SltFileResult; oneShot: SltFileResult | undefined; sqlite: SqliteFileResult; queries: number }>;
  loadMs: number;
}

async function sltBench(settings: Settings): Promise<SltOutcome | undefined> {
  if (!fs.existsSync(settings.sltDirectory)) {
    progress(`  no slt corpus at ${settings.sltDirectory}: the slt part is skipped`);
    return undefined;
  }
  let names = findSltFiles(settings.sltDirectory);
  if (settings.sltMaxBytes !== undefined) names = names.filter((name) => fs.statSync(path.join(settings.sltDirectory, name)).size < settings.sltMaxBytes!);
  const loadStarted = performance.now();
  const files = names.map((name) => loadSltFile(path.join(settings.sltDirectory, name)));
  const loadMs = performance.now() - loadStarted;
  progress(`sql bench: ${files.length} slt files under ${path.relative(process.cwd(), settings.sltDirectory) || '.'} (read and parsed in ${formatNumber(loadMs, 0)} ms)`);

  const report = (mode: string) => (result: SltFileResult) =>
    progress(`  sluice ${mode} ${path.relative(settings.sltDirectory, result.file)}: ${result.passed} passed, ${result.failed} failed, ${result.skipped} skipped, ${formatNumber(result.ms / 1000, 2)} s`);
  const live = await runSltFiles(files, { onFile: report('live') });
  const oneShot = settings.oneShot ? await runSltFiles(files, { oneShot: true, onFile: report('one-shot') }) : undefined;
  const outcome: SltOutcome = { files: [], loadMs };
  live.files.forEach((sluice, i) => {
    const sqlite = runSqliteFile(files[i]!);
    const name = path.relative(settings.sltDirectory, sluice.file);
    progress(`  sqlite ${name}: ${sqlite.passed} of ${sqlite.tests} passed, ${formatNumber(sqlite.ms / 1000, 2)} s`);
    outcome.files.push({ name, sluice, oneShot: oneShot?.files[i], sqlite, queries: sluice.queries.passed + sluice.queries.failed });
  });
  return outcome;
}

// ── Output ────────────────────────────────────────────────────────────────────────────────────

// ── The benchmark ─────────────────────────────────────────────────────────────────────────────

function parseSettings(args: string[]): Settings {
  const { values } = parseArgs({
    args,
    options: {
      quick: { type: 'boolean', default: false },
      repeats: { type: 'string' },
      views: { type: 'string', default: '100' },
      'slt-dir': { type: 'string', default: path.resolve(repoRoot, '../shared/slt') },
      'no-slt': { type: 'boolean', default: false },
      'no-one-shot': { type: 'boolean', default: false },
    },
    strict: true,
  });
  return {
    repeats: integerOption('repeats', values.repeats, values.quick ? 3 : 15),
    warmups: values.quick ? 2 : 5,
    views: integerOption('views', values.views, 100),
    sltDirectory: path.resolve(values['slt-dir']),
    slt: !values['no-slt'],
    oneShot: !values['no-one-shot'],
    sltMaxBytes: values.quick ? 1_000_000 : undefined,
    quick: values.quick,
  };
}

export async function run(args: string[]): Promise<void> {
  const settings = parseSettings(args);
  const timings = await pipelineBench(settings);
  const slt = settings.slt ? await sltBench(settings) : undefined;

  // Table 1: the pipeline.
  const views = settings.views;
  const byCase = (name: string) => timings.find((t) => t.case === name)!;
  const execute = byCase('sluice execute');
  const sqlitePrepare = byCase('sqlite exec DDL + prepare');
  const sqliteExec = byCase('sqlite exec DDL');
  // Parsing alone is compared with SQLite's exec (which parses and stores views); planning with exec + prepare.
  const peerOf = (timing: Timing) => (timing.system === 'sqlite' ? undefined : timing.case === 'sluice parse' ? sqliteExec : sqlitePrepare);
  const ratioOf = (timing: Timing) => {
    const peer = peerOf(timing);
    return peer ? timing.medianMs / peer.medianMs : undefined;
  };
  process.stdout.write(`pipeline: 5 tables + ${views} views, median of ${settings.repeats} round(s) after ${settings.warmups} warm-up round(s); vs SQLite = Sluice ms ÷ the peer's ms\n`);
  printTable(
    ['case', 'median ms', 'µs per view', 'min ms', 'max ms', 'vs SQLite', 'peer'],
    timings.map((t) => [t.case, formatNumber(t.medianMs, 1), formatNumber((t.medianMs * 1000) / views, 0), formatNumber(Math.min(...t.runs), 1), formatNumber(Math.max(...t.runs), 1), ratioOf(t) === undefined ? '' : `${formatNumber(ratioOf(t), 1)}×`, peerOf(t)?.case ?? '']),
  );
  process.stdout.write('\n');

  // Table 2: the slt corpus.
  let sltSummary: Record<string, unknown> | null = null;
  if (slt) {
    const ratio = (a: number | undefined, b: number) => (a === undefined ? '' : `${formatNumber(a / b, 1)}×`);
    const lines = slt.files.map((f) => [
      f.name,
      formatNumber(f.queries),
      formatNumber(f.sluice.passed),
      formatNumber(f.sluice.failed),
      formatNumber(f.sluice.skipped),
      formatNumber(f.sluice.ms / 1000, 2),
      f.oneShot ? formatNumber(f.oneShot.failed) : '',
      f.oneShot ? formatNumber(f.oneShot.ms / 1000, 2) : '',
      `${formatNumber(f.sqlite.passed)}/${formatNumber(f.sqlite.tests)}`,
      formatNumber(f.sqlite.ms / 1000, 2),
      ratio(f.sluice.ms, f.sqlite.ms),
      ratio(f.oneShot?.ms, f.sqlite.ms),
    ]);
    const sum = (pick: (f: SltOutcome['files'][number]) => number) => slt.files.reduce((total, f) => total + pick(f), 0);
    const hasOneShot = slt.files.every((f) => f.oneShot !== undefined);
    const sluiceMs = sum((f) => f.sluice.ms);
    const oneShotMs = hasOneShot ? sum((f) => f.oneShot!.ms) : undefined;
    const sqliteMs = sum((f) => f.sqlite.ms);
    const total = {
      files: slt.files.length,
      queries: sum((f) => f.queries),
      statements: sum((f) => f.sluice.statements.passed + f.sluice.statements.failed),
      passed: sum((f) => f.sluice.passed),
      failed: sum((f) => f.sluice.failed),
      skipped: sum((f) => f.sluice.skipped),
      queriesPassed: sum((f) => f.sluice.queries.passed),
      sluiceSeconds: sluiceMs / 1000,
      oneShotPassed: hasOneShot ? sum((f) => f.oneShot!.passed) : undefined,
      oneShotFailed: hasOneShot ? sum((f) => f.oneShot!.failed) : undefined,
      oneShotSeconds: oneShotMs === undefined ? undefined : oneShotMs / 1000,
      sqliteTests: sum((f) => f.sqlite.tests),
      sqlitePassed: sum((f) => f.sqlite.passed),
      sqliteSeconds: sqliteMs / 1000,
    };
    lines.push([
      'total',
      formatNumber(total.queries),
      formatNumber(total.passed),
      formatNumber(total.failed),
      formatNumber(total.skipped),
      formatNumber(total.sluiceSeconds, 2),
      formatNumber(total.oneShotFailed),
      formatNumber(total.oneShotSeconds, 2),
      `${formatNumber(total.sqlitePassed)}/${formatNumber(total.sqliteTests)}`,
      formatNumber(total.sqliteSeconds, 2),
      ratio(sluiceMs, sqliteMs),
      ratio(oneShotMs, sqliteMs),
    ]);
    process.stdout.write(
      `slt: ${slt.files.length} files under ${settings.sltDirectory} (read and parsed in ${formatNumber(slt.loadMs, 0)} ms, not counted). ` +
        `passed/failed/skipped: statements and queries, queries answered by live queries (the runner's default); 1-shot: the same run answering queries with one-shot SELECTs; ` +
        `SQLite answers the same records one-shot; vs SQLite = Sluice s ÷ SQLite s\n`,
    );
    printTable(['file', 'queries', 'passed', 'failed', 'skipped', 'sluice s', '1-shot failed', '1-shot s', 'sqlite passed', 'sqlite s', 'vs SQLite', '1-shot vs SQLite'], lines);
    process.stdout.write('\n');
    sltSummary = {
      directory: settings.sltDirectory,
      loadMs: round(slt.loadMs, 1),
      total: {
        ...total,
        sluiceSeconds: round(total.sluiceSeconds, 3),
        oneShotSeconds: round(total.oneShotSeconds, 3) ?? null,
        oneShotPassed: total.oneShotPassed ?? null,
        oneShotFailed: total.oneShotFailed ?? null,
        sqliteSeconds: round(total.sqliteSeconds, 3),
        sluiceOverSqlite: round(sluiceMs / sqliteMs, 2),
        oneShotOverSqlite: oneShotMs === undefined ? null : round(oneShotMs / sqliteMs, 2),
      },
      files: slt.files.map((f) => ({
        file: f.name,
        queries: f.queries,
        statements: f.sluice.statements.passed + f.sluice.statements.failed,
        passed: f.sluice.passed,
        failed: f.sluice.failed,
        skipped: f.sluice.skipped,
        sluiceSeconds: round(f.sluice.ms / 1000, 3),
        oneShotPassed: f.oneShot?.passed ?? null,
        oneShotFailed: f.oneShot?.failed ?? null,
        oneShotSeconds: f.oneShot ? round(f.oneShot.ms / 1000, 3) : null,
        sqliteTests: f.sqlite.tests,
        sqlitePassed: f.sqlite.passed,
        sqliteSeconds: round(f.sqlite.ms / 1000, 3),
        sluiceOverSqlite: round(f.sluice.ms / f.sqlite.ms, 2),
        oneShotOverSqlite: f.oneShot ? round(f.oneShot.ms / f.sqlite.ms, 2) : null,
      })),
    };
  }

  const targets = {
    pipelineMs: { case: 'sluice execute', want: `< 1000 (${views} views)`, actual: round(execute.medianMs, 1), met: execute.medianMs < 1000 },
  };
  process.stdout.write(
    `targets: parse, plan and lower ${views} views < 1 s ${targets.pipelineMs.met ? 'met' : 'MISSED'} (${formatNumber(execute.medianMs, 1)} ms, ${formatNumber((execute.medianMs * 1000) / views, 0)} µs per view; ` +
      `SQLite exec DDL + prepare ${formatNumber(sqlitePrepare.medianMs, 1)} ms, exec DDL alone ${formatNumber(sqliteExec.medianMs, 1)} ms)\n`,
  );

  const summary = {
    bench: 'sql',
    config: { views, tables: 5, repeats: settings.repeats, warmupRounds: settings.warmups, quick: settings.quick, cores: os.availableParallelism(), node: process.version, sqlite: sqliteVersion() },
    pipeline: timings.map((t) => ({
      case: t.case,
      system: t.system,
      what: t.what,
      medianMs: round(t.medianMs, 2),
      usPerView: round((t.medianMs * 1000) / views, 1),
      runsMs: t.runs.map((r) => round(r, 2)),
      sluiceOverSqlite: round(ratioOf(t), 2),
      peer: peerOf(t)?.case ?? null,
    })),
    slt: sltSummary,
    targets,
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
