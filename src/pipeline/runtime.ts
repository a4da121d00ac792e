/**
 * The pipeline runtime: one pipeline file run end to end in one process and one data directory.
 *
 *   const runtime = await PipelineRuntime.open({ text, file: 'shop.sql', data: './.sluice' });
 *   runtime.start();                       // sluice up: follow the log
 *   await runtime.append('orders', [{ id: 1, customer_id: 7, amount: '9.50' }]);
 *   await runtime.runToEnd();              // sluice run: everything appended so far, then stop
 *   await runtime.close();
 *
 * Data directory:
 *   log/          the durable log; each table is a topic `table.NAME` (table-records.ts)
 *   checkpoint    every table's rows, the frontier they reflect and recent Idempotency-Keys
 *   views.db      every view's rows (sinks/store), each with the frontier it reflects
 *   search.db     the INTO SEARCH indexes (sinks/search)
 *   manifest.json each sink's definition version, so a changed view is rebuilt, not mixed
 *   FILE sinks    where their path says (relative paths are inside the data directory)
 *
 * The step loop reads whole records (whole appends) from each table's topic from the frontier
 * on, applies them to the tables as one step of every view (database.ts), and hands each view's
 * output delta to its sinks with the new frontier. The log is the source of truth; everything
 * else is derived and rebuilt from it when missing.
 *
 * Exactly once (docs/design/2026-11-24-pipeline-runtime.md):
 * - Views are deterministic functions of the input prefix, so the rows a sink holds are fixed by
 *   the frontier it committed with them.
 * - On start, tables are restored from the checkpoint (frontier F0) and views recomputed over
 *   them. Every sink has committed at some F1 ≥ F0 (sinks are brought to the frontier before a
 *   checkpoint is written). The log from F0 is replayed in steps cut exactly at each sink's F1,
 *   and a step is written only to sinks at its start: nothing doubled, nothing skipped.
 * - A sink behind the checkpoint (its store lost its last commits in a power cut) cannot be
 *   brought forward from F0, so the runtime then starts from an empty state and replays the whole
 *   log. A new or changed sink starts with the view's whole contents.
 * - An append is acknowledged only once durable in the log; an Idempotency-Key is kept in the
 *   record itself, so a retry after a crash is still recognized.
 */

import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import zlib from 'node:zlib';
import { ByteReader, ByteWriter, DefiniteError, NodeStorage, redactUrl, replaceRebuildableFile, SluiceError, TransientError, type Row } from '../core/index.ts';
import { ZSet } from '../engine/index.ts';
import { FileLog } from '../log/index.ts';
import type { LogRecord, PersistMode } from '../log/index.ts';
import { FileSink } from '../sinks/file/index.ts';
import { objectChanges, objectRow } from '../sinks/object-row.ts';
import { SearchIndex } from '../sinks/search/index.ts';
import type { Sink, SinkTarget } from '../sinks/sink.ts';
import { ViewStore } from '../sinks/store/index.ts';
import { closest, inputValue, parsePipelineAsync, quoteIdentifier, quoteLiteral, SqlError, typeLabel, type PipelineStatement, type SqlType } from '../sql/index.ts';
import type { AppendOptions, AppendResult, ChangeEvent, ColumnInfo, PipelineHandle, ReadViewOptions, RelationInfo, SearchHitInfo, SearchSinkInfo, SourceStatus, StatusReport } from './api.ts';
import { Database, open as openDatabase, writeTables } from './database.ts';
import { decodePosition, encodePosition, reaches, recordsIn, type Frontier } from './position.ts';
import { decodeTableRecord, encodeTableRecord, INSERT, recordIdempotencyKey } from './table-records.ts';
import { postgresConfig, type PostgresSourceConfig } from '../sources/postgres/config.ts';
import { PostgresCapture } from '../sources/postgres/connector.ts';
import { describeTables } from '../sources/postgres/snapshot.ts';
import { mysqlConfig, type MysqlSourceConfig } from '../sources/mysql/config.ts';
import { MysqlCapture, type MysqlCaptureStats } from '../sources/mysql/connector.ts';
import { describeMysqlTables } from '../sources/mysql/schema.ts';
import type { CaptureStats } from '../sources/postgres/connector.ts';
import { decodeSourceHeader, decodeSourceRecord, sourceRecordKind, SNAPSHOT_END, SNAPSHOT_START, TRANSACTION, TRANSACTION_PART, transactionParts, type SourceRecord } from '../sources/records.ts';

export interface RuntimeOptions {
  /** The pipeline's SQL text. */
  text: string;
  /** Its file name, for error positions. */
  file?: string;
  /** The data directory. */
  data: string;
  /** How often tables are checkpointed while running (default 30 s). */
  checkpointIntervalMs?: number;
  /** About how many bytes of records one step reads at most (default 8 MiB). */
  maxStepBytes?: number;
  /** How appends are made durable before they are acknowledged (default 'syncData'). */
  persist?: PersistMode;
  /**
   * Sources whose tables are captured afresh: a new snapshot replaces what their log holds (after
   * the binlog or WAL they needed was lost). Taken once: a restart continues that snapshot.
   */
  resnapshot?: readonly string[];
  /** Steps' changes kept per view for resuming change streams (default 50,000 rows). */
  keepChanges?: number;
  /** Long work (replaying the log on start) reports here. */
  onProgress?: (progress: { phase: 'replay'; done: number; total: number; ratePerSecond: number }) => void;
}

interface TableEntry {
  name: string;
  topic: string;
  columns: string[];
  endOffset: number;
  appended: number;
  /** Set when the topic is a CDC source's (records.ts), not a table's. */
  source?: SourceInput;
}

/** A CREATE SOURCE … FROM POSTGRES: its capture, and its tables as Sluice tables. */
interface SourceInput {
  config: SourceConfig;
  /**
   * The source's `schema.table` → the Sluice table (`SOURCE.table`): its columns and their types,
   * and the columns as the source has them now (`live`, by the last record that described them).
   * The Sluice table keeps a column the source dropped (NULL from then on), so the pipeline still
   * loads; views that cannot do without it are stopped (see #fitViews).
   */
  tables: Map<string, SourceTableEntry>;
  /** Schema changes seen (newest last, at most 20), for status. */
  schemaChanges: SchemaChange[];
  /** How far the search for the end of the snapshot starting at `start` has read. */
  scan?: { start: number; next: number };
  capture?: Promise<void>;
  controller?: AbortController;
  /** The last transaction's position captured, and the capture's last error. */
  lsn?: string;
  error?: Error;
  instance?: Capture;
  /** When the last error happened, and whether it stopped the capture for good (not retried). */
  errorAt?: number;
  failed?: boolean;
  /** Changes captured since start, sampled for a rate: [ms, rows] at most every 500 ms. */
  rows: number;
  samples: Array<[number, number]>;
  /** Commit times (ms) of transactions captured but not yet processed, by the topic offset after them. */
  unapplied: Array<[offset: number, time: number]>;
}

/** A CREATE SOURCE's options, by connector. */
type SourceConfig = (PostgresSourceConfig & { connector: 'postgres' }) | (MysqlSourceConfig & { connector: 'mysql' });

/** What the runtime needs of a capture, whichever the connector. */
interface Capture {
  readonly topic: string;
  run(signal: AbortSignal): Promise<void>;
  caughtUp(timeoutMs?: number): Promise<void>;
  readonly stats: Pick<CaptureStats, 'phase' | 'since' | 'snapshot' | 'rows'> & Partial<Pick<CaptureStats, 'pendingSince'>> & Partial<Pick<MysqlCaptureStats, 'position'>>;
  readonly lagBytes?: number | undefined;
}

interface SourceTableEntry {
  name: string;
  columns: string[];
  types: string[];
  live: Array<[name: string, type: string]>;
  /** The record's columns as last seen (JSON), to notice a change cheaply. */
  seen?: string;
}

interface SchemaChange {
  table: string;
  position: string;
  added: string[];
  dropped: string[];
  retyped: string[];
  stoppedViews: string[];
}

interface SinkEntry {
  name: string;
  kind: 'store' | 'search' | 'file';
  view: string;
  sink: Sink;
  /** Records its committed frontier includes (-1 before the first batch). */
  committedRecords: number;
  search?: SearchIndex;
  fields?: string;
  file?: string;
}

/** A table's or view's change stream: recent steps' changes kept for subscribers that resume. */
interface Stream {
  name: string;
  columns: Array<{ name: string; type: SqlType }>;
  /** Recent steps' changes, for change streams that resume. */
  ring: Array<{ frontier: Frontier; rows: readonly Row[]; weights: readonly number[] }>;
  ringRows: number;
  /** The frontier from which the ring holds every change. */
  ringStart: Frontier;
  listeners: Set<(event: ChangeEvent) => void>;
}

interface ViewEntry extends Stream {
  version: string;
  store: SinkEntry;
}

const CHECKPOINT_MAGIC = 'SLUICEPC';
const CHECKPOINT_VERSION = 1;
/** Idempotency-Keys remembered (the most recent; older ones are forgotten first). */
const IDEMPOTENCY_KEYS = 200_000;
const MAX_QUERY_ROWS = 100_000;
/** Steps of fewer events than this are paced (see #follow). */
const SMALL_STEP_EVENTS = 1000;
const STEP_PACING_MS = 2;

export class PipelineRuntime implements PipelineHandle {
  readonly data: string;
  readonly #options: RuntimeOptions;
  readonly #db: Database;
  readonly #log: FileLog;
  readonly #store: ViewStore;
  readonly #searchDb: DatabaseSync;
  readonly #tables = new Map<string, TableEntry>();
  #definition: Definition | undefined;
  readonly #views = new Map<string, ViewEntry>();
  /** Change streams of tables (views' streams are their ViewEntry). */
  readonly #tableStreams = new Map<string, Stream>();
  readonly #sinks: SinkEntry[] = [];
  readonly #searchSinks = new Map<string, SinkEntry>();
  #frontier: Frontier;
  #state: StatusReport['state'] = 'starting';
  readonly #startedAt = Date.now();
  #steps = 0;
  #eventsProcessed = 0;
  #lastStepMs = 0;
  #lastStepEvents = 0;
  #maxStepMs = 0;
  #lastCheckpoint = Date.now();
  #checkpointFrontier = -1;
  #checkpointWrite: Promise<void> = Promise.resolve();
  #checkpointBusy = false;
  /** Idempotency-Key → the position its append answered; insertion-ordered, oldest first. */
  readonly #keys = new Map<string, string>();
  readonly #inflight = new Map<string, Promise<AppendResult>>();
  readonly #waiters = new Set<{ target: Frontier; resolve: (reached: boolean) => void; timer: NodeJS.Timeout }>();
  #wake: (() => void) | undefined;
  /** Set by every append: the loop does not go to sleep on an append it has not read yet. */
  #appended = false;
  #loop: Promise<void> | undefined;
  #failure: Error | undefined;
  #closing = false;

  private constructor(options: RuntimeOptions, db: Database, log: FileLog, store: ViewStore, searchDb: DatabaseSync, frontier: Frontier) {
    this.data = options.data;
    this.#options = options;
    this.#db = db;
    this.#log = log;
    this.#store = store;
    this.#searchDb = searchDb;
    this.#frontier = frontier;
  }

  /** Loads the pipeline, restores its state and brings every sink to the same frontier. */
  static async open(options: RuntimeOptions): Promise<PipelineRuntime> {
    const file = options.file ?? '<pipeline>';
    const definition = await loadDefinition(options.text, file);
    fs.mkdirSync(options.data, { recursive: true });
    const log = await FileLog.open(path.join(options.data, 'log'), { persist: options.persist ?? 'syncData' });
    let store: ViewStore | undefined;
    let searchDb: DatabaseSync | undefined;
    try {
      store = ViewStore.open(path.join(options.data, 'views.db'), { durability: 'normal' });
      searchDb = new DatabaseSync(path.join(options.data, 'search.db'));
      searchDb.exec('PRAGMA journal_mode = WAL');
      searchDb.exec('PRAGMA synchronous = NORMAL');
      for (let attempt = 0; ; attempt++) {
        const runtime = await PipelineRuntime.#build(options, definition, log, store, searchDb, attempt === 0);
        if (runtime) return runtime;
      }
    } catch (error) {
      store?.close();
      searchDb?.close();
      await log.close();
      throw error;
    }
  }

  static async #build(options: RuntimeOptions, definition: Definition, log: FileLog, store: ViewStore, searchDb: DatabaseSync, useCheckpoint: boolean): Promise<PipelineRuntime | undefined> {
    const file = options.file ?? '<pipeline>';
    const db = await openDatabase();
    for (const statement of definition.tables) db.runStatement(statement, options.text, file);
    const tables: TableEntry[] = [];
    for (const statement of definition.tables) {
      const name = tableName(statement);
      const schema = db.tableSchema(name)!;
      if (db.uniqueConstraints(name) > 0) {
        throw new SqlError('sql_unsupported', file, options.text, statement.span.offset, `table "${name}" has a UNIQUE constraint besides its primary key: tables fed by events cannot refuse an event once it is acknowledged`, 'drop the UNIQUE constraint, or make those columns the PRIMARY KEY (a new row with an existing key updates it)');
      }
      const topic = `table.${name}`;
      await log.createTopic(topic, { partitions: 1 });
      const [end] = await log.endOffsets(topic);
      tables.push({ name, topic, columns: schema.columns.map((c) => c.name), endOffset: end!, appended: 0 });
    }
    // Each source's tables, as PostgreSQL describes them now, and its topic.
    const schemasFile = path.join(options.data, 'source-tables.json');
    const knownSchemas = (fs.existsSync(schemasFile) ? JSON.parse(fs.readFileSync(schemasFile, 'utf8')) : {}) as SourceSchemas;
    const nextSchemas: SourceSchemas = {};
    for (const config of definition.sources) {
      const described =
        config.connector === 'postgres'
          ? (await describeTables(config)).map((t) => ({ name: t.name, columns: t.columns.map((c) => ({ name: c.name, type: c.type, key: c.key })) }))
          : await describeMysqlTables(config.url, config.tables, config.name);
      const input: SourceInput = { config, tables: new Map(), rows: 0, samples: [], unapplied: [], schemaChanges: [] };
      for (const table of described) {
        const name = `${config.name}.${table.name.split('.')[1]}`;
        const live = table.columns.map((c): SourceColumn => [c.name, typeLabel(c.type), c.key]);
        // The columns the Sluice table had before, then any the source added since.
        const known = knownSchemas[config.name]?.[table.name];
        const columns = known ? [...known, ...live.filter(([n]) => !known.some(([k]) => k === n))] : live;
        (nextSchemas[config.name] ??= {})[table.name] = columns;
        const text = createTableSql(name, columns);
        const [statement] = await parsePipelineAsync(text, `source ${config.name}`);
        db.runStatement(statement!, text, `source ${config.name}`);
        input.tables.set(table.name, { name, columns: columns.map(([n]) => n), types: columns.map(([, t]) => t), live: live.map(([n, t]) => [n, t]) });
      }
      const topic = `source.${config.name}`;
      await log.createTopic(topic, { partitions: 1 });
      const [end] = await log.endOffsets(topic);
      tables.push({ name: `\0source:${config.name}`, topic, columns: [], endOffset: end!, appended: 0, source: input });
    }
    // Tables from the checkpoint, when it matches this pipeline's tables and the log.
    let frontier: Frontier = new Map(tables.map((t) => [t.topic, 0]));
    let keys: Array<[string, string]> = [];
    const checkpointFile = path.join(options.data, 'checkpoint');
    if (useCheckpoint && fs.existsSync(checkpointFile)) {
      const restored = readCheckpoint(checkpointFile, db, tables);
      if (restored) {
        frontier = restored.frontier;
        keys = restored.keys;
      }
    }
    for (const statement of definition.views) db.runStatement(statement, options.text, file);
    if (definition.sources.length > 0 && JSON.stringify(nextSchemas) !== JSON.stringify(knownSchemas)) {
      replaceRebuildableFile(new NodeStorage(), schemasFile, new TextEncoder().encode(JSON.stringify(nextSchemas, null, 1) + '\n'));
    }
    const runtime = new PipelineRuntime(options, db, log, store, searchDb, frontier);
    runtime.#definition = definition;
    for (const table of tables) runtime.#tables.set(table.name, table);
    for (const [key, token] of keys) runtime.#keys.set(key, token);
    // Views that do not fit the source tables as they are now (a column dropped while stopped).
    if (definition.sources.length > 0) await runtime.#fitViews(undefined);
    runtime.#checkpointFrontier = recordsIn(frontier);
    try {
      if (!(await runtime.#openSinks(definition))) {
        runtime.#closeSinks();
        await db.close();
        return undefined;
      }
      // Keys of the records after the checkpoint (before the replay moves the frontier past them).
      await runtime.#scanKeys();
      await runtime.#catchUp();
    } catch (error) {
      runtime.#closeSinks();
      await db.close();
      throw error;
    }
    runtime.#state = 'running';
    return runtime;
  }

  /** Opens the store of every view and the declared sinks; false when one is behind the checkpoint. */
  async #openSinks(definition: Definition): Promise<boolean> {
    const manifestFile = path.join(this.data, 'manifest.json');
    const manifest = readManifest(manifestFile);
    const next: Record<string, string> = {};
    const versions = new Map<string, string>();
    for (const name of this.#db.viewNames()) {
      const info = this.#db.viewInfo(name);
      const text = definition.viewTexts.get(name) ?? '';
      const upstream = info.reads.map((r) => versions.get(r) ?? JSON.stringify(this.#db.tableSchema(r)?.columns.map((c) => [c.name, typeLabel(c.type)]) ?? r));
      const version = createHash('sha256').update(JSON.stringify([text, upstream])).digest('hex').slice(0, 16);
      versions.set(name, version);
      const columns = info.columns.map((c) => ({ name: c.name, type: c.type as SqlType }));
      // With a key (an aggregate's GROUP BY columns …), a changed row is updated in place.
      const key = this.#db.viewKey(name);
      const target: SinkTarget = { name, columns, ...(key ? { key } : {}) };
      const storeName = `store:${name}`;
      if (this.#store.has(name) && manifest[storeName] !== version) this.#store.drop(name);
      next[storeName] = version;
      let sink: Sink;
      try {
        sink = this.#store.sink(target);
      } catch (error) {
        if (!(error instanceof DefiniteError) || error.code !== 'store_schema_changed') throw error;
        this.#store.drop(name);
        sink = this.#store.sink(target);
      }
      const entry: SinkEntry = { name, kind: 'store', view: name, sink, committedRecords: committedRecords(sink) };
      this.#sinks.push(entry);
      this.#views.set(name, { name, columns, version, store: entry, ring: [], ringRows: 0, ringStart: this.#frontier, listeners: new Set() });
    }
    for (const sink of definition.sinks) {
      const view = this.#views.get(sink.view);
      const schema = this.#db.tableSchema(sink.view);
      const columns = view ? view.columns : schema!.columns.map((c) => ({ name: c.name, type: c.type as SqlType }));
      const key = schema ? schema.primaryKey : this.#db.viewKey(sink.view);
      const target: SinkTarget = { name: sink.view, columns, ...(key ? { key } : {}) };
      const viewVersion = view ? view.version : JSON.stringify(target);
      const version = createHash('sha256').update(JSON.stringify([viewVersion, sink.kind, sink.fields ?? '', sink.file ?? ''])).digest('hex').slice(0, 16);
      const manifestName = `${sink.kind}:${sink.name}`;
      next[manifestName] = version;
      if (sink.kind === 'search') {
        const table = `search_${sink.name.replace(/[^A-Za-z0-9_]/g, '_')}`;
        if (manifest[manifestName] !== undefined && manifest[manifestName] !== version) dropSearchTables(this.#searchDb, table);
        const index = SearchIndex.open(this.#searchDb, target, { table, ...(sink.fields !== undefined ? { fields: sink.fields } : {}) });
        const entry: SinkEntry = { name: sink.name, kind: 'search', view: sink.view, sink: index, committedRecords: committedRecords(index), search: index, fields: index.fields.map((f) => (f.weight === 1 ? f.name : `${f.name}^${f.weight}`)).join(', ') };
        this.#sinks.push(entry);
        this.#searchSinks.set(sink.name, entry);
      } else {
        const filePath = path.resolve(this.data, sink.file!);
        if (manifest[manifestName] !== undefined && manifest[manifestName] !== version && fs.existsSync(filePath) && fs.statSync(filePath).size > 0) {
          throw new DefiniteError('sink_changed', `sink ${sink.name}: view "${sink.view}" changed since ${filePath} was written, and an append-only file cannot be rewritten`, `move ${filePath} away (it then starts afresh with the view's current rows), or name the changed view differently`);
        }
        const fileSink = await FileSink.open(filePath, target);
        this.#sinks.push({ name: sink.name, kind: 'file', view: sink.view, sink: fileSink, committedRecords: committedRecords(fileSink), file: filePath });
      }
    }
    writeManifest(manifestFile, next);
    // Sinks that went ahead of the log (it was replaced) are rebuilt; behind the checkpoint, the
    // whole log is replayed.
    const start = recordsIn(this.#frontier);
    const ends = new Map([...this.#tables.values()].map((t) => [t.topic, t.endOffset]));
    for (const entry of this.#sinks) {
      const committed = entry.sink.committed();
      if (!committed) continue;
      const at = decodePosition(committed.frontier);
      const beyondLog = [...at].some(([topic, offset]) => !ends.has(topic) ? offset > 0 : offset > ends.get(topic)!);
      if (beyondLog) {
        if (entry.kind === 'file') throw new DefiniteError('sink_ahead', `sink ${entry.name}: ${entry.file} holds changes of records the log in ${path.join(this.data, 'log')} does not have, or of a table no longer in the pipeline`, `move ${entry.file} away to start it afresh`);
        this.#resetSink(entry);
        continue;
      }
      if (entry.committedRecords < start || !reaches(at, this.#frontier)) {
        if (start === 0) throw new DefiniteError('internal', `sink ${entry.name} is behind an empty frontier`);
        return false;
      }
    }
    return true;
  }

  #resetSink(entry: SinkEntry): void {
    if (entry.kind === 'store') {
      this.#store.drop(entry.view);
      const key = this.#db.viewKey(entry.view);
      entry.sink = this.#store.sink({ name: entry.view, columns: this.#views.get(entry.view)!.columns, ...(key ? { key } : {}) });
    } else if (entry.kind === 'search') {
      const table = entry.search!.table;
      entry.search!.close();
      dropSearchTables(this.#searchDb, table);
      entry.search = SearchIndex.open(this.#searchDb, entry.search!.target, { table, ...(entry.fields ? { fields: entry.fields } : {}) });
      entry.sink = entry.search;
    }
    entry.committedRecords = -1;
  }

  /** New sinks get the views' contents; then the log is replayed, cut at each sink's frontier. */
  async #catchUp(): Promise<void> {
    const start = this.#frontier;
    const token = encodePosition(start);
    const step = recordsIn(start) + 1;
    const fresh = this.#sinks.filter((s) => s.committedRecords < 0);
    if (fresh.length > 0) {
      const contents = new Map<string, ZSet>();
      for (const s of fresh) if (!contents.has(s.view)) contents.set(s.view, this.#db.viewContents(s.view));
      const stores = fresh.filter((s) => s.kind === 'store');
      this.#store.group(() => {
        for (const s of stores) s.sink.write({ step, frontier: token, rows: contents.get(s.view)!.rows, weights: contents.get(s.view)!.weights });
      });
      for (const s of fresh) {
        if (s.kind !== 'store') await s.sink.write({ step, frontier: token, rows: contents.get(s.view)!.rows, weights: contents.get(s.view)!.weights });
        s.committedRecords = recordsIn(start);
      }
    }
    const targets = [...new Set(this.#sinks.map((s) => s.committedRecords).filter((r) => r > recordsIn(start)))].sort((a, b) => a - b);
    if (targets.length === 0) return;
    this.#state = 'replaying';
    const total = targets.at(-1)! - recordsIn(start);
    const began = Date.now();
    for (const records of targets) {
      const sink = this.#sinks.find((s) => s.committedRecords === records)!;
      const target = decodePosition(sink.sink.committed()!.frontier);
      if (!reaches(target, this.#frontier)) throw new DefiniteError('sink_diverged', `sink ${sink.name} holds a frontier that is not on this log's path`, 'remove the data directory\'s views.db and search.db to rebuild them');
      while (recordsIn(this.#frontier) < records) {
        if (!(await this.#step(target))) throw new DefiniteError('log_short', `the log ends before sink ${sink.name}'s frontier`, 'remove the data directory\'s views.db and search.db to rebuild them from the log');
        const done = recordsIn(this.#frontier) - recordsIn(start);
        this.#options.onProgress?.({ phase: 'replay', done, total, ratePerSecond: done / Math.max(0.001, (Date.now() - began) / 1000) });
      }
      if (!reaches(this.#frontier, target)) throw new DefiniteError('internal', `replay passed sink ${sink.name}'s frontier`);
    }
  }

  /** Reads the Idempotency-Keys of records not yet processed, so their retries are recognized. */
  async #scanKeys(): Promise<void> {
    for (const table of this.#tables.values()) {
      if (table.source) continue;
      let offset = this.#frontier.get(table.topic) ?? 0;
      while (offset < table.endOffset) {
        const { records, nextOffset } = await this.#log.read(table.topic, 0, offset, { maxBytes: 8 << 20 });
        for (const record of records) {
          const key = record.value ? recordIdempotencyKey(record.value) : '';
          if (key) this.#remember(key, encodePosition(new Map([[table.topic, record.offset + 1]])));
        }
        if (nextOffset === offset) break;
        offset = nextOffset;
      }
    }
  }

  // -------------------------------------------------------------------------------------------
  // The step loop

  /** Follows the log in the background (sluice up) until close(). */
  start(): void {
    if (this.#loop) return;
    this.#checkResnapshot();
    this.#loop = this.#follow();
    for (const entry of this.#tables.values()) if (entry.source) this.#capture(entry, entry.source);
  }

  /** Every source --resnapshot names is one of the pipeline's. */
  #checkResnapshot(): void {
    const sources = [...this.#tables.values()].flatMap((entry) => (entry.source ? [entry.source.config.name] : []));
    for (const name of this.#options.resnapshot ?? []) {
      if (!sources.includes(name)) throw new DefiniteError('unknown_source', `--resnapshot ${name}: the pipeline has no source ${name}`, sources.length ? `its sources are ${sources.join(', ')}` : 'it declares no CREATE SOURCE');
    }
  }

  /** Runs a source's capture into its topic, retrying after connection failures, until close(). */
  #capture(entry: TableEntry, source: SourceInput): Capture {
    const controller = new AbortController();
    source.controller = controller;
    const options = {
      ...(this.#options.persist ? { persist: this.#options.persist } : {}),
      ...(this.#options.resnapshot?.includes(source.config.name) ? { resnapshot: true } : {}),
      onAppend: (record: SourceRecord) => {
        entry.endOffset++;
        if (record.kind === TRANSACTION || record.kind === SNAPSHOT_END) source.lsn = sourcePosition(record.position);
        if (record.kind === TRANSACTION && source.unapplied.length < 100_000) source.unapplied.push([entry.endOffset, commitTime(record.position)]);
        source.rows += record.changes.length;
        sample(source);
        this.#appended = true;
        this.#wake?.();
      },
    };
    const config = source.config;
    const capture: Capture = (source.instance = config.connector === 'postgres' ? new PostgresCapture(config, this.#log, options) : new MysqlCapture(config, this.#log, options));
    source.capture = (async () => {
      for (let attempt = 0; !controller.signal.aborted; attempt++) {
        const began = Date.now();
        try {
          await capture.run(controller.signal);
          return;
        } catch (error) {
          // A capture that ran a while before failing starts its backoff afresh.
          if (Date.now() - began > 60_000) attempt = 0;
          source.error = error as Error;
          source.errorAt = Date.now();
          // A definite error (a problem on the server that needs fixing) is reported, not retried.
          if (!(error instanceof TransientError)) {
            source.failed = true;
            return;
          }
          await new Promise((resolve) => setTimeout(resolve, Math.min(30_000, 500 * 2 ** attempt)).unref?.());
        }
      }
    })();
    return capture;
  }

  async #follow(): Promise<void> {
    while (!this.#closing) {
      try {
        const began = performance.now();
        this.#appended = false;
        const progressed = await this.#step(undefined);
        if (progressed && this.#lastStepEvents < SMALL_STEP_EVENTS) {
          // Under a stream of small appends, steps at most every STEP_PACING_MS: each step then
          // carries several appends, and the per-step costs (a store commit, position tokens,
          // waking readers) are paid less often, which keeps the process from saturating.
          const wait = STEP_PACING_MS - (performance.now() - began);
          if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        }
        if (!progressed) {
          await this.#maybeCheckpoint();
          if (this.#closing) break;
          // An append that landed while this step read (or while checkpointing) found no waiter
          // to wake: go round again at once rather than sleep on it.
          if (this.#appended) continue;
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, 1000);
            this.#wake = () => {
              clearTimeout(timer);
              resolve();
            };
          });
          this.#wake = undefined;
        } else await this.#maybeCheckpoint();
      } catch (error) {
        this.#fail(error);
        return;
      }
    }
  }

  /** Processes everything appended so far (sluice run), then checkpoints. */
  async runToEnd(): Promise<void> {
    if (this.#loop) throw new DefiniteError('internal', 'runToEnd() while the loop follows the log');
    this.#checkResnapshot();
    // Sources first capture everything their database has committed so far.
    for (const entry of this.#tables.values()) {
      if (!entry.source) continue;
      const capture = this.#capture(entry, entry.source);
      try {
        await Promise.race([capture.caughtUp(), entry.source.capture!.then(() => {
          throw entry.source!.error ?? new DefiniteError('pg_capture_stopped', `source ${entry.source!.config.name}: the capture stopped before catching up`);
        })]);
      } finally {
        entry.source.controller!.abort();
        await entry.source.capture;
      }
    }
    const target: Frontier = new Map([...this.#tables.values()].map((t) => [t.topic, t.endOffset]));
    const start = recordsIn(this.#frontier);
    const total = recordsIn(target) - start;
    const began = Date.now();
    while (!reaches(this.#frontier, target)) {
      if (!(await this.#step(target))) throw new DefiniteError('log_short', 'the log ends before the offsets it reported', 'is another process writing to this data directory?');
      const done = recordsIn(this.#frontier) - start;
      this.#options.onProgress?.({ phase: 'replay', done, total, ratePerSecond: done / Math.max(0.001, (Date.now() - began) / 1000) });
    }
    await this.checkpoint();
  }

  #fail(error: unknown): void {
    this.#failure = error instanceof Error ? error : new Error(String(error));
    this.#state = 'stopped';
    for (const waiter of this.#waiters) {
      clearTimeout(waiter.timer);
      waiter.resolve(false);
    }
    this.#waiters.clear();
  }

  /** The error that stopped the step loop, if one did. */
  get failure(): Error | undefined {
    return this.#failure;
  }

  /** Resolves when the loop stops by itself (an error); never while it follows the log. */
  get stopped(): Promise<void> {
    return this.#loop ?? Promise.resolve();
  }

  /**
   * One step: whole records from every table's topic from the frontier on (about maxStepBytes of
   * them, and never past `target` when given: a replay reaches each sink's frontier in one or
   * more steps that each end at or before it), applied as one step of every view, then written
   * to the sinks that are at the step's start. False when there was nothing to read.
   */
  async #step(target: Frontier | undefined): Promise<boolean> {
    const began = performance.now();
    const next = new Map(this.#frontier);
    const batches: Batch[] = [];
    /** When a step holds a transaction written in parts: what comes before it, its parts, what follows. */
    const segments: Array<{ batches: Batch[] } | { parts: LogRecord[]; source: SourceInput; topic: string; asIs?: boolean }> = [];
    let budget = this.#options.maxStepBytes ?? 8 << 20;
    let events = 0;
    // Each step starts at the next table, so a busy table cannot starve the others of the budget.
    const tables = [...this.#tables.values()];
    const first = this.#steps % Math.max(1, tables.length);
    for (const table of [...tables.slice(first), ...tables.slice(0, first)]) {
      let offset = next.get(table.topic) ?? 0;
      const limit = target ? (target.get(table.topic) ?? 0) : table.endOffset;
      let blocked = false;
      reading: while (offset < limit && budget > 0 && !blocked) {
        const { records, nextOffset } = await this.#log.read(table.topic, 0, offset, { maxRecords: Math.min(limit - offset, 10_000), maxBytes: budget });
        for (const record of records) {
          if (record.offset >= limit) break;
          if (table.source && sourceRecordKind(record.value) === SNAPSHOT_START) {
            // A snapshot is applied whole, like a transaction: views never show part of one.
            const end = await this.#snapshotEnd(table, record.offset, limit);
            if (end === undefined) {
              // Not all in the log yet (live), or a replay target inside it (a log written
              // before snapshots were applied whole): wait, or go record by record.
              if (!target) {
                blocked = true;
                break;
              }
            } else {
              const { records: snapshot } = await this.#readRange(table.topic, record.offset, end + 1);
              for (const part of snapshot) await this.#noticeSchema(table.source, decodeSourceHeader(part.value ?? new Uint8Array(), `${table.topic} offset ${part.offset}`));
              segments.push({ batches: batches.splice(0) }, { parts: snapshot, source: table.source, topic: table.topic, asIs: true });
              budget -= snapshot.reduce((sum, part) => sum + (part.value?.length ?? 0), 0);
              offset = end + 1;
              continue reading;
            }
          }
          if (table.source) {
            const decoded = decodeSourceRecord(record.value ?? new Uint8Array(), `${table.topic} offset ${record.offset}`);
            // A large transaction's changes are in parts written before it: they apply with it,
            // one part at a time (below), so the whole transaction is never decoded at once.
            const parts = await this.#parts(table.topic, decoded);
            await this.#noticeSchema(table.source, decoded);
            for (const part of parts) await this.#noticeSchema(table.source, decodeSourceHeader(part.value ?? new Uint8Array(), `${table.topic} offset ${part.offset}`));
            if (parts.length > 0) {
              segments.push({ batches: batches.splice(0) }, { parts, source: table.source, topic: table.topic });
              budget -= parts.reduce((sum, part) => sum + (part.value?.length ?? 0), 0);
            }
            events += sourceBatches(table.source, decoded, batches);
          }
          else {
            const decoded = decodeTableRecord(record.value ?? new Uint8Array(), table.columns, `${table.topic} offset ${record.offset}`);
            batches.push({ table: table.name, ops: decoded.ops, rows: decoded.rows });
            events += decoded.rows.length;
          }
          budget -= record.value?.length ?? 0;
          offset = record.offset + 1;
        }
        if (records.length === 0 || nextOffset <= offset - 1) break;
      }
      next.set(table.topic, offset);
    }
    if (recordsIn(next) === recordsIn(this.#frontier)) return false;
    let outputs: Map<string, ZSet>;
    if (segments.length === 0) outputs = this.#db.applyChanges(batches);
    else {
      // Applied piece by piece, synchronously: nothing can observe the state in between, and the
      // views' deltas add up to the step's.
      segments.push({ batches });
      const sums = new Map<string, ZSet>();
      const add = (out: Map<string, ZSet>) => {
        for (const [name, delta] of out) {
          const sum = sums.get(name) ?? sums.set(name, new ZSet()).get(name)!;
          sum.addAll(delta);
        }
      };
      for (const segment of segments) {
        if ('batches' in segment) {
          if (segment.batches.length > 0) add(this.#db.applyChanges(segment.batches));
          continue;
        }
        // A snapshot's records as they are (with the transactions a watermark snapshot interleaves,
        // whose parts are among them); a transaction's parts as its own changes.
        const byOffset = segment.asIs ? new Map(segment.parts.map((part) => [part.offset, part])) : undefined;
        const apply = (part: LogRecord, asIs: boolean) => {
          const partBatches: Batch[] = [];
          const decoded = decodeSourceRecord(part.value ?? new Uint8Array(), `${segment.topic} offset ${part.offset}`);
          if (byOffset && decoded.kind === TRANSACTION) {
            for (const offset of transactionParts(decoded)) {
              const named = byOffset.get(offset);
              if (!named) throw new DefiniteError('log_corrupt', `${segment.topic} offset ${part.offset}: its part at offset ${offset} is not inside the snapshot`, `the log was damaged: take a new snapshot with --resnapshot ${segment.source.config.name}`);
              apply(named, false);
            }
          }
          events += sourceBatches(segment.source, asIs ? decoded : { ...decoded, kind: TRANSACTION }, partBatches);
          add(this.#db.applyChanges(partBatches));
        };
        for (const part of segment.parts) apply(part, segment.asIs === true);
      }
      outputs = new Map([...sums].map(([name, sum]) => [name, sum.consolidate().deletesFirst()]));
      for (const [name, output] of outputs) if (output.isEmpty) outputs.delete(name);
    }
    const before = recordsIn(this.#frontier);
    const after = recordsIn(next);
    const token = encodePosition(next);
    const step = after + 1;
    const due = (s: SinkEntry) => s.committedRecords <= before;
    for (const s of this.#sinks) {
      if (s.committedRecords > before && s.committedRecords < after) throw new DefiniteError('internal', `step ${before}→${after} would pass sink ${s.name} at ${s.committedRecords}`);
    }
    const storeWrites = [...this.#views.values()].some((view) => outputs.has(view.name) && due(view.store));
    if (storeWrites) this.#store.group(() => {
      for (const view of this.#views.values()) {
        const output = outputs.get(view.name);
        if (!output || !due(view.store)) continue;
        view.store.sink.write({ step, frontier: token, rows: output.rows, weights: output.weights });
        view.store.committedRecords = after;
      }
    });
    for (const s of this.#sinks) {
      if (s.kind === 'store') continue;
      const output = outputs.get(s.view);
      if (!output || !due(s)) continue;
      await s.sink.write({ step, frontier: token, rows: output.rows, weights: output.weights });
      s.committedRecords = after;
    }
    this.#frontier = next;
    this.#steps++;
    this.#eventsProcessed += events;
    this.#lastStepEvents = events;
    this.#lastStepMs = performance.now() - began;
    this.#maxStepMs = Math.max(this.#maxStepMs, this.#lastStepMs);
    this.#publish(outputs, next);
    return true;
  }

  /**
   * A source record that describes a table's columns differently from before (ALTER TABLE at the
   * source): the change is noted (status), and views that no longer fit are stopped before the
   * record is applied.
   */
  async #noticeSchema(source: SourceInput, record: Omit<SourceRecord, 'changes'>): Promise<void> {
    for (const described of record.tables) {
      const table = source.tables.get(described.name);
      if (!table) continue;
      const seen = JSON.stringify(described.columns);
      if (table.seen === seen) continue;
      table.seen = seen;
      const before = new Map(table.live);
      const after = new Map(described.columns);
      const change: SchemaChange = {
        table: table.name,
        position: record.position.lsn !== undefined || record.position.file !== undefined ? sourcePosition(record.position) : '',
        added: [...after.keys()].filter((c) => !before.has(c)),
        dropped: [...before.keys()].filter((c) => !after.has(c)),
        retyped: [...after.keys()].filter((c) => before.has(c) && before.get(c) !== after.get(c)),
        stoppedViews: [],
      };
      table.live = described.columns.map(([n, t]) => [n, t]);
      if (change.added.length + change.dropped.length + change.retyped.length === 0) continue;
      source.schemaChanges.push(change);
      if (source.schemaChanges.length > 20) source.schemaChanges.shift();
      if (change.dropped.length + change.retyped.length > 0) change.stoppedViews = await this.#fitViews(change);
    }
  }

  /**
   * Stops the views that would not compile against the source tables as the source has them now
   * (`live`): each is planned again in a scratch database. Returns the views stopped.
   */
  async #fitViews(change: SchemaChange | undefined): Promise<string[]> {
    const definition = this.#definition!;
    const file = this.#options.file ?? '<pipeline>';
    const scratch = await openDatabase();
    const stopped: string[] = [];
    try {
      for (const statement of definition.tables) scratch.runStatement(statement, this.#options.text, file);
      for (const entry of this.#tables.values()) {
        for (const table of entry.source?.tables.values() ?? []) {
          // A column whose type changed kind is left out like a dropped one: its values no longer
          // fit the Sluice table's column (they read NULL), so no view may go on reading it.
          const usable = table.live.filter(([n, t]) => {
            const i = table.columns.indexOf(n);
            return i < 0 || typeKind(table.types[i]!) === typeKind(t);
          });
          const text = createTableSql(table.name, usable.map(([n, t]) => [n, t, false]));
          const [statement] = await parsePipelineAsync(text, `source ${entry.source!.config.name}`);
          scratch.runStatement(statement!, text, `source ${entry.source!.config.name}`);
        }
      }
      const names = [...definition.viewTexts.keys()];
      definition.views.forEach((statement, i) => {
        const name = names[i]!;
        try {
          scratch.runStatement(statement, this.#options.text, file);
        } catch (error) {
          const info = this.#db.viewInfo(name);
          // Already stopped, or stopped through a view it reads: nothing more to say.
          if (info.failure || info.reads.some((r) => stopped.includes(r))) return;
          const why = (error as Error).message.split('\n')[0]!.replace(/^[^:]*:\d+:\d+: /, '');
          const what = change ? ` after ${change.table} changed at the source (${describeChange(change)}${change.position ? ` at ${change.position}` : ''})` : ' as the source tables are now';
          this.#db.failView(name, new DefiniteError('source_schema_changed', `view "${name}" no longer compiles${what}, without the columns dropped or changed in kind: ${why}`, 'change the view in the pipeline file and restart: a changed view is rebuilt from the source\'s data'));
          stopped.push(name);
        }
      });
    } finally {
      await scratch.close();
    }
    return stopped;
  }

  /**
   * The offset of the snapshot end record that closes the snapshot starting at `start`, if it is
   * in the log below `limit`. Headers only; the scan goes on where the last call left off.
   */
  async #snapshotEnd(table: TableEntry, start: number, limit: number): Promise<number | undefined> {
    const source = table.source!;
    if (source.scan?.start !== start) source.scan = { start, next: start + 1 };
    const scan = source.scan;
    while (scan.next < limit) {
      const { records } = await this.#log.read(table.topic, 0, scan.next, { maxRecords: Math.min(limit - scan.next, 10_000), maxBytes: 4 << 20 });
      if (records.length === 0) break;
      for (const record of records) {
        if (record.offset >= limit) return undefined;
        scan.next = record.offset + 1;
        if (sourceRecordKind(record.value) === SNAPSHOT_END) return record.offset;
      }
    }
    return undefined;
  }

  /** Records [from, to) of a topic. */
  async #readRange(topic: string, from: number, to: number): Promise<{ records: LogRecord[] }> {
    const out: LogRecord[] = [];
    for (let offset = from; offset < to; ) {
      const { records } = await this.#log.read(topic, 0, offset, { maxRecords: Math.min(to - offset, 10_000) });
      if (records.length === 0 || records[0]!.offset !== offset) throw new DefiniteError('log_corrupt', `${topic}: records ${offset}…${to - 1} are missing`, 'the log was damaged or truncated: restore it, or move the topic away to capture afresh');
      for (const record of records) if (record.offset < to) out.push(record);
      offset = records.at(-1)!.offset + 1;
    }
    return { records: out };
  }

  /** The parts a source transaction record commits, read back (still encoded) from its topic in order. */
  async #parts(topic: string, record: SourceRecord): Promise<LogRecord[]> {
    if (record.kind !== TRANSACTION || record.position.parts === undefined) return [];
    const offsets = transactionParts(record);
    const parts: LogRecord[] = [];
    for (let i = 0; i < offsets.length; ) {
      // Consecutive offsets are read together.
      let j = i + 1;
      while (j < offsets.length && offsets[j] === offsets[j - 1]! + 1) j++;
      while (i < j) {
        const { records } = await this.#log.read(topic, 0, offsets[i]!, { maxRecords: j - i });
        if (records.length === 0 || records[0]!.offset !== offsets[i]) throw new DefiniteError('log_corrupt', `${topic}: a transaction at position ${String(record.position.lsn)} names parts at offsets ${offsets[i]}…${offsets[j - 1]} that the log does not hold`, 'the log was damaged or truncated: restore it, or move the topic away to capture afresh');
        parts.push(...records);
        i += records.length;
      }
    }
    return parts;
  }

  #publish(outputs: Map<string, ZSet>, frontier: Frontier): void {
    const keep = this.#options.keepChanges ?? 50_000;
    let token: string | undefined;
    for (const [name, output] of outputs) {
      const view = this.#views.get(name) ?? this.#tableStreams.get(name);
      if (!view) continue;
      view.ring.push({ frontier, rows: output.rows, weights: output.weights });
      view.ringRows += output.rows.length;
      while (view.ringRows > keep && view.ring.length > 1) {
        const dropped = view.ring.shift()!;
        view.ringRows -= dropped.rows.length;
        view.ringStart = dropped.frontier;
      }
      if (view.listeners.size > 0) {
        token ??= encodePosition(frontier);
        const event = { position: token, changes: objectChanges(output.rows, output.weights, view.columns) };
        for (const listener of view.listeners) listener(event);
      }
    }
    for (const waiter of this.#waiters) {
      if (reaches(frontier, waiter.target)) {
        clearTimeout(waiter.timer);
        this.#waiters.delete(waiter);
        waiter.resolve(true);
      }
    }
  }

  async #maybeCheckpoint(): Promise<void> {
    if (Date.now() - this.#lastCheckpoint < (this.#options.checkpointIntervalMs ?? 30_000)) return;
    await this.#checkpoint(false);
  }

  /** Brings every sink to the frontier (empty batches) and writes the tables' checkpoint. */
  async checkpoint(): Promise<void> {
    await this.#checkpoint();
    await this.#checkpointWrite;
  }

  /**
   * Takes a checkpoint; resolves once its bytes are in memory. Writing the file goes on in the
   * background (#checkpointWrite) while steps continue: the bytes are fixed by then, and every
   * sink is already at their frontier.
   */
  async #checkpoint(wait = true): Promise<void> {
    // One checkpoint file write at a time: the scheduled one skips its turn while one is written.
    if (this.#checkpointBusy && !wait) return;
    await this.#checkpointWrite;
    this.#lastCheckpoint = Date.now();
    const records = recordsIn(this.#frontier);
    if (records === this.#checkpointFrontier) return;
    const token = encodePosition(this.#frontier);
    const step = records + 1;
    const behind = this.#sinks.filter((s) => s.committedRecords < records);
    this.#store.group(() => {
      for (const s of behind) {
        if (s.kind !== 'store') continue;
        s.sink.write({ step, frontier: token, rows: [], weights: [] });
        s.committedRecords = records;
      }
    });
    for (const s of behind) {
      if (s.kind === 'store') continue;
      await s.sink.write({ step, frontier: token, rows: [], weights: [] });
      s.committedRecords = records;
    }
    // The tables are taken as they are now (a quick copy of references); serializing and writing
    // them goes on in the background while steps continue, in chunks that let requests be served
    // between them. Every sink is already at this frontier.
    const tables = this.#db.snapshotTables();
    const frontier = JSON.stringify(Object.fromEntries(this.#frontier));
    const keys = JSON.stringify([...this.#keys].slice(-IDEMPOTENCY_KEYS));
    const file = path.join(this.data, 'checkpoint');
    this.#checkpointBusy = true;
    this.#checkpointWrite = (async () => {
      const writer = new ByteWriter(1 << 20);
      const parts: Uint8Array[] = [];
      let crc = 0;
      const cut = () => {
        const part = writer.finish().slice();
        crc = zlib.crc32(part, crc);
        parts.push(part);
        writer.reset();
      };
      writer.string(CHECKPOINT_MAGIC);
      writer.uint8(CHECKPOINT_VERSION);
      writer.string(frontier);
      writer.string(keys);
      for (const _ of writeTables(tables, writer, 5_000)) {
        cut();
        await new Promise((resolve) => setImmediate(resolve));
      }
      cut();
      const trailer = Buffer.alloc(4);
      trailer.writeUInt32LE(crc >>> 0);
      parts.push(trailer);
      await writeFileDurably(file, parts);
    })().then(
      () => {
        this.#checkpointFrontier = records;
      },
      (error: unknown) => {
        // A checkpoint that could not be written is only a longer replay at the next start.
        process.emitWarning(`the checkpoint could not be written: ${(error as Error).message}`);
      },
    ).finally(() => {
      this.#checkpointBusy = false;
    });
  }

  // -------------------------------------------------------------------------------------------
  // PipelineHandle

  status(): StatusReport {
    // Between steps every view reflects the pipeline's frontier.
    const position = encodePosition(this.#frontier);
    return {
      state: this.#state,
      position,
      startedAt: new Date(this.#startedAt).toISOString(),
      uptimeSeconds: Math.round((Date.now() - this.#startedAt) / 1000),
      steps: this.#steps,
      eventsProcessed: this.#eventsProcessed,
      tables: [...this.#tables.values()].filter((t) => !t.source).map((t) => {
        const processed = this.#frontier.get(t.topic) ?? 0;
        return { name: t.name, topic: t.topic, endOffset: t.endOffset, processedOffset: processed, lag: t.endOffset - processed, eventsAppended: t.appended, rows: this.#db.tableSize(t.name) };
      }),
      sources: [...this.#tables.values()].flatMap((t) => (t.source ? [this.#sourceStatus(t, t.source)] : [])),
      views: [...this.#views.values()].map((v) => {
        const failure = this.#db.viewInfo(v.name).failure;
        return { name: v.name, rows: this.#store.count(v.name), position, ...(failure ? { failure: errorInfo(failure) } : {}) };
      }),
      sinks: this.#sinks
        .filter((s) => s.kind !== 'store')
        .map((s) => {
          const committed = s.sink.committed();
          return { name: s.name, kind: s.kind, view: s.view, ...(committed ? { step: committed.step, position: committed.frontier } : {}), ...(s.file ? { file: s.file } : {}) };
        }),
      lastStepMs: round(this.#lastStepMs),
      maxStepMs: round(this.#maxStepMs),
      ...(this.#failure ? { error: errorInfo(this.#failure) } : {}),
    };
  }

  relations(): RelationInfo[] {
    const out: RelationInfo[] = [];
    for (const name of this.#tableNames()) {
      const schema = this.#db.tableSchema(name)!;
      out.push({ name, kind: 'table', columns: schema.columns.map((c) => ({ name: c.name, type: typeLabel(c.type) })), ...(schema.primaryKey ? { key: schema.primaryKey.map((i) => schema.columns[i]!.name) } : {}) });
    }
    for (const v of this.#views.values()) out.push({ name: v.name, kind: 'view', columns: v.columns.map((c) => ({ name: c.name, type: typeLabel(c.type) })) });
    return out;
  }

  #sourceStatus(entry: TableEntry, source: SourceInput): SourceStatus {
    const stats = source.instance?.stats;
    const now = Date.now();
    const processed = this.#frontier.get(entry.topic) ?? 0;
    while (source.unapplied.length > 0 && source.unapplied[0]![0] <= processed) source.unapplied.shift();
    // The oldest commit waiting: in the log unprocessed, or received and not yet durable.
    const waiting = Math.min(source.unapplied[0]?.[1] ?? Infinity, stats?.pendingSince ?? Infinity);
    // An error retried since: the capture got going again after it.
    const current = source.error !== undefined && (source.failed || !(stats && stats.phase !== 'starting' && (stats.since ?? 0) > (source.errorAt ?? 0)));
    const failed = source.failed === true;
    const status: SourceStatus = {
      name: source.config.name,
      kind: source.config.connector,
      state: failed ? 'failed' : (stats?.phase ?? 'starting'),
      position: source.lsn ?? '',
      lag: entry.endOffset - processed,
      lagSeconds: Number.isFinite(waiting) ? Math.max(0, Math.round(now - waiting) / 1000) : 0,
      rowsPerSecond: rate(source, now),
      rowsCaptured: source.rows,
      schemaChanges: source.schemaChanges,
    };
    const lagBytes = source.instance?.lagBytes;
    if (lagBytes !== undefined) status.lagBytes = lagBytes;
    const snapshot = stats?.snapshot;
    if (snapshot) {
      const seconds = Math.max(0.001, ((snapshot.endedAt ?? now) - snapshot.startedAt) / 1000);
      const perSecond = Math.round(snapshot.rows / seconds);
      const done = stats.phase !== 'snapshot';
      const left = Math.max(0, snapshot.estimated - snapshot.rows);
      status.snapshot = { ...('mode' in snapshot ? { mode: snapshot.mode as 'consistent' | 'watermark' } : {}), table: snapshot.table, tablesDone: snapshot.tablesDone, tables: snapshot.tables, rows: snapshot.rows, estimatedRows: snapshot.estimated, rowsPerSecond: perSecond, done, ...(!done && perSecond > 0 ? { etaSeconds: Math.ceil(left / perSecond) } : {}) };
    }
    if (current) status.error = errorInfo(source.error!);
    return status;
  }

  /** Every table: those fed by appends, then the sources' tables. */
  #tableNames(): string[] {
    const names: string[] = [];
    for (const t of this.#tables.values()) {
      if (t.source) for (const table of t.source.tables.values()) names.push(table.name);
      else names.push(t.name);
    }
    return names;
  }

  searchSinks(): SearchSinkInfo[] {
    return [...this.#searchSinks.values()].map((s) => ({ name: s.name, view: s.view, fields: s.fields ?? '' }));
  }

  readView(name: string, options: ReadViewOptions = {}): { rows: Record<string, unknown>[]; position: string } {
    this.#checkOpen();
    const position = encodePosition(this.#frontier);
    const view = this.#views.get(name);
    if (!view) {
      if (this.#tableNames().includes(name)) return { rows: this.#readTable(name, options), position };
      throw this.#unknown(name, 'view');
    }
    const info = this.#db.viewInfo(name);
    if (info.failure) throw viewFailed(name, info.failure);
    const orderBy = info.sortKeys.filter((k) => k.column < view.columns.length).map((k) => ({ column: view.columns[k.column]!.name, descending: k.descending }));
    for (const column of Object.keys(options.filters ?? {})) {
      if (!view.columns.some((c) => c.name === column)) throw new DefiniteError('filter_invalid', `view "${name}" has no column "${column}"`, `filter by one of: ${view.columns.map((c) => c.name).join(', ')}`);
    }
    try {
      const result = this.#store.read(name, { ...(options.limit !== undefined ? { limit: options.limit } : {}), ...(options.offset !== undefined ? { offset: options.offset } : {}), ...(options.filters ? { filters: options.filters } : {}), ...(orderBy.length > 0 ? { orderBy } : {}) });
      return { rows: result.rows, position };
    } catch (error) {
      if (error instanceof DefiniteError && error.code.startsWith('store_')) throw new DefiniteError('filter_invalid', error.message, error.hint);
      throw error;
    }
  }

  #readTable(name: string, options: ReadViewOptions): Record<string, unknown>[] {
    const schema = this.#db.tableSchema(name)!;
    const where: string[] = [];
    for (const [column, value] of Object.entries(options.filters ?? {})) {
      const type = schema.columns.find((c) => c.name === column)?.type;
      if (!type) throw new DefiniteError('filter_invalid', `table "${name}" has no column "${column}"`, `filter by one of: ${schema.columns.map((c) => c.name).join(', ')}`);
      try {
        inputValue(value, type);
      } catch (error) {
        throw new DefiniteError('filter_invalid', `filter ${column}=${value.length > 40 ? value.slice(0, 40) + '…' : value}: ${(error as Error).message}`, `give a ${typeLabel(type)} value`);
      }
      where.push(`${quoteIdentifier(column)} = ${quoteLiteral(value)}`);
    }
    const order = schema.primaryKey ? ` ORDER BY ${schema.primaryKey.map((i) => quoteIdentifier(schema.columns[i]!.name)).join(', ')}` : '';
    const sql = `SELECT * FROM ${quoteIdentifier(name)}${where.length ? ` WHERE ${where.join(' AND ')}` : ''}${order} LIMIT ${options.limit ?? 100} OFFSET ${options.offset ?? 0}`;
    return this.#syncQuery(sql);
  }

  #syncQuery(sql: string): Record<string, unknown>[] {
    const { rows, columns } = this.#db.selectNow(sql);
    return rows.map((row) => objectRow(row, columns));
  }

  async query(sql: string): Promise<{ columns: ColumnInfo[]; rows: Record<string, unknown>[]; position: string }> {
    this.#checkOpen();
    if (typeof sql !== 'string' || sql.trim() === '') throw new DefiniteError('sql_empty', 'the query is empty', 'send {"sql": "SELECT … FROM view"}');
    const statements = await parsePipelineAsync(sql, '<query>');
    const only = statements[0];
    if (statements.length !== 1 || only?.kind !== 'postgres' || Object.keys(only.node)[0] !== 'SelectStmt') {
      throw new DefiniteError('sql_not_query', 'POST /v1/query runs one SELECT', 'tables change through POST /v1/tables/NAME/events; views are declared in the pipeline file');
    }
    const { rows, columns } = this.#db.selectNow(sql, only);
    if (rows.length > MAX_QUERY_ROWS) throw new DefiniteError('sql_too_many_rows', `the query returned ${rows.length.toLocaleString('en-US')} rows; at most ${MAX_QUERY_ROWS.toLocaleString('en-US')} are returned`, 'add a LIMIT, or page with LIMIT … OFFSET …');
    return { columns: columns.map((c) => ({ name: c.name, type: typeLabel(c.type) })), rows: rows.map((row) => objectRow(row, columns)), position: encodePosition(this.#frontier) };
  }

  search(name: string, q: string, options: { limit?: number; offset?: number } = {}): { hits: SearchHitInfo[]; position: string } {
    this.#checkOpen();
    let entry = this.#searchSinks.get(name);
    if (!entry) {
      const byView = [...this.#searchSinks.values()].filter((s) => s.view === name);
      if (byView.length === 1) entry = byView[0];
    }
    if (!entry) throw this.#unknown(name, 'search');
    const failure = this.#views.has(entry.view) ? this.#db.viewInfo(entry.view).failure : undefined;
    if (failure) throw viewFailed(entry.view, failure);
    const result = entry.search!.search(q, { ...(options.limit !== undefined ? { limit: options.limit } : {}), ...(options.offset !== undefined ? { offset: options.offset } : {}) });
    return { hits: result.hits.map((h) => ({ row: h.row, score: h.score, highlights: h.highlights })), position: encodePosition(this.#frontier) };
  }

  async append(table: string, rows: readonly unknown[], options: AppendOptions = {}): Promise<AppendResult> {
    this.#checkOpen();
    const entry = this.#tables.get(table);
    if (!entry || entry.source) {
      if (this.#tableNames().includes(table)) throw new DefiniteError('relation_unknown', `table "${table}" is a source's: it changes only through its database`, 'append to a table declared with CREATE TABLE');
      throw this.#unknown(table, 'table');
    }
    if (!Array.isArray(rows) || rows.length === 0) throw new DefiniteError('body_invalid', 'no rows to append', 'send a JSON object, an array of objects, or NDJSON (one object per line)');
    const key = options.idempotencyKey;
    if (key !== undefined) {
      if (typeof key !== 'string' || key.length === 0 || key.length > 200) throw new DefiniteError('body_invalid', 'an Idempotency-Key is 1 to 200 characters', 'use a UUID per logical request');
      const seen = this.#keys.get(key);
      if (seen !== undefined) return { position: seen, count: 0, duplicate: true };
      const inflight = this.#inflight.get(key);
      if (inflight) return inflight.then((r) => ({ position: r.position, count: 0, duplicate: true }));
    }
    let converted: Row[];
    try {
      converted = this.#db.rowsFromObjects(table, rows);
    } catch (error) {
      // A NULL in a NOT NULL column (a missing key) is a row that does not match the table, too.
      if (error instanceof DefiniteError && error.code === 'sql_not_null') throw new DefiniteError('row_invalid', error.message, error.hint);
      throw error;
    }
    const ops = new Uint8Array(converted.length).fill(INSERT);
    const promise = this.#appendRecord(entry, ops, converted, key);
    if (key !== undefined) this.#inflight.set(key, promise);
    try {
      return await promise;
    } finally {
      if (key !== undefined) this.#inflight.delete(key);
    }
  }

  /** Appends changes (inserts and deletes, already checked rows) as one record. */
  async appendChanges(table: string, ops: Uint8Array, rows: Row[]): Promise<AppendResult> {
    this.#checkOpen();
    const entry = this.#tables.get(table);
    if (!entry) throw this.#unknown(table, 'table');
    return this.#appendRecord(entry, ops, rows, undefined);
  }

  /** The embedded database the runtime drives (for the embedded API). */
  get database(): Database {
    return this.#db;
  }

  async #appendRecord(entry: TableEntry, ops: Uint8Array, rows: Row[], key: string | undefined): Promise<AppendResult> {
    const value = encodeTableRecord(entry.columns, ops, rows, key ?? '');
    const result = await this.#log.append(entry.topic, 0, [{ value }]);
    const end = result.baseOffset + result.count;
    if (end > entry.endOffset) entry.endOffset = end;
    entry.appended += rows.length;
    const position = encodePosition(new Map([[entry.topic, end]]));
    if (key !== undefined) this.#remember(key, position);
    this.#appended = true;
    this.#wake?.();
    return { position, count: rows.length, duplicate: false };
  }

  #remember(key: string, position: string): void {
    this.#keys.delete(key);
    this.#keys.set(key, position);
    if (this.#keys.size > IDEMPOTENCY_KEYS) this.#keys.delete(this.#keys.keys().next().value!);
  }

  /** The position of everything appended so far (what settle() with no position waits for). */
  endPosition(): string {
    return encodePosition(new Map([...this.#tables.values()].map((t) => [t.topic, t.endOffset])));
  }

  waitFor(position: string, timeoutMs: number): Promise<boolean> {
    const target = decodePosition(position);
    for (const topic of target.keys()) {
      if (![...this.#tables.values()].some((t) => t.topic === topic)) throw new DefiniteError('position_invalid', `the position names "${topic}", which this pipeline does not read`, 'use a position returned by this pipeline');
    }
    if (reaches(this.#frontier, target)) return Promise.resolve(true);
    if (this.#failure || this.#closing) return Promise.resolve(false);
    return new Promise((resolve) => {
      const waiter = {
        target,
        resolve,
        timer: setTimeout(() => {
          this.#waiters.delete(waiter);
          resolve(false);
        }, Math.max(0, timeoutMs)),
      };
      this.#waiters.add(waiter);
    });
  }

  subscribe(name: string, from: string | undefined, listener: (event: ChangeEvent) => void): () => void {
    this.#checkOpen();
    let view: Stream | undefined = this.#views.get(name) ?? this.#tableStreams.get(name);
    if (!view && this.#tables.has(name)) {
      // A table's stream starts when first asked for.
      const schema = this.#db.tableSchema(name)!;
      view = { name, columns: schema.columns.map((c) => ({ name: c.name, type: c.type as SqlType })), ring: [], ringRows: 0, ringStart: this.#frontier, listeners: new Set() };
      this.#tableStreams.set(name, view);
    }
    if (!view) throw this.#unknown(name, 'view');
    const stream = view;
    if (from !== undefined) {
      const start = decodePosition(from);
      if (!reaches(start, view.ringStart)) {
        throw new DefiniteError('position_expired', `the changes of view "${name}" after that position are no longer kept (they are kept in memory for the last ${(this.#options.keepChanges ?? 50_000).toLocaleString('en-US')} rows since the pipeline started)`, `read GET /v1/views/${name} for its rows and their position, then follow the changes from that position`);
      }
      for (const entry of view.ring) {
        if (reaches(start, entry.frontier)) continue;
        listener({ position: encodePosition(entry.frontier), changes: objectChanges(entry.rows, entry.weights, view.columns) });
      }
    }
    stream.listeners.add(listener);
    return () => stream.listeners.delete(listener);
  }

  #unknown(name: string, what: 'view' | 'table' | 'search'): DefiniteError {
    const names = what === 'search' ? [...this.#searchSinks.keys()] : what === 'table' ? [...this.#tables.values()].filter((t) => !t.source).map((t) => t.name) : [...this.#views.keys(), ...this.#tableNames()];
    const match = closest(name, names);
    const noun = what === 'search' ? 'search index' : what === 'table' ? 'table' : 'view';
    return new DefiniteError('relation_unknown', `${noun} "${name}" does not exist`, match ? `did you mean "${match}"?` : names.length ? `the ${noun}s are: ${names.join(', ')}` : `the pipeline declares no ${noun}`);
  }

  #checkOpen(): void {
    if (this.#closing) throw new DefiniteError('stopping', 'the pipeline is shutting down', 'retry against the restarted pipeline');
  }

  /** Stops following the log, checkpoints (unless the loop failed) and closes everything. */
  async close(options: { checkpoint?: boolean } = {}): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    this.#state = 'stopping';
    for (const entry of this.#tables.values()) entry.source?.controller?.abort();
    for (const entry of this.#tables.values()) await entry.source?.capture;
    this.#wake?.();
    await this.#loop;
    for (const waiter of this.#waiters) {
      clearTimeout(waiter.timer);
      waiter.resolve(false);
    }
    this.#waiters.clear();
    try {
      if (!this.#failure && options.checkpoint !== false) await this.checkpoint();
      await this.#checkpointWrite;
    } finally {
      this.#closeSinks();
      this.#store.close();
      this.#searchDb.close();
      await this.#db.close();
      await this.#log.close();
      this.#state = 'stopped';
    }
  }

  #closeSinks(): void {
    for (const s of this.#sinks) if (s.kind !== 'store') void s.sink.close();
    this.#sinks.length = 0;
  }
}

// ---------------------------------------------------------------------------------------------

interface Definition {
  sources: SourceConfig[];
  tables: Array<Extract<PipelineStatement, { kind: 'postgres' }>>;
  views: Array<Extract<PipelineStatement, { kind: 'postgres' }>>;
  viewTexts: Map<string, string>;
  sinks: Array<{ name: string; kind: 'search' | 'file'; view: string; fields?: string; file?: string }>;
}

/** Splits a pipeline file into tables, views and sinks, refusing what the runtime cannot run. */
async function loadDefinition(text: string, file: string): Promise<Definition> {
  const statements = await parsePipelineAsync(text, file);
  const definition: Definition = { sources: [], tables: [], views: [], viewTexts: new Map(), sinks: [] };
  const names = new Set<string>();
  const refuse = (offset: number, code: string, what: string, hint?: string) => new SqlError(code, file, text, offset, what, hint);
  for (const statement of statements) {
    if (statement.kind === 'createSource') {
      if (statement.connector !== 'postgres' && statement.connector !== 'mysql') {
        throw refuse(statement.span.offset, 'not_built', `CREATE SOURCE … FROM ${statement.connector.toUpperCase()} ('${redactUrl(statement.url)}') is not built yet`, 'PostgreSQL and MySQL/MariaDB sources work; for others, declare a CREATE TABLE and feed it with POST /v1/tables/NAME/events');
      }
      let config: SourceConfig;
      try {
        config = statement.connector === 'postgres' ? { ...postgresConfig(statement.name, statement.url, statement.options), connector: 'postgres' } : { ...mysqlConfig(statement.name, statement.url, statement.options), connector: 'mysql' };
      } catch (error) {
        if (error instanceof DefiniteError) throw refuse(statement.span.offset, error.code, error.message, error.hint);
        throw error;
      }
      definition.sources.push(config);
      for (const table of config.tables) names.add(`${config.name}.${table.name}`);
      continue;
    }
    if (statement.kind === 'drop') throw refuse(statement.span.offset, 'sql_unsupported', 'a pipeline file declares what exists: DROP has no place in it', 'remove the statement (and the object it names)');
    if (statement.kind === 'createSink') {
      const view = statement.from.join('.');
      if (!definition.viewTexts.has(view) && !definition.tables.some((t) => tableName(t) === view) && !names.has(view)) {
        const match = closest(view, [...names]);
        throw refuse(statement.span.offset, 'sql_relation', `sink ${statement.name} reads "${view}", which is not declared before it`, match ? `did you mean "${match}"?` : 'declare the view (or table) before the sink');
      }
      if (statement.target === 'search') {
        const fields = statement.options.get('fields');
        for (const option of statement.options.keys()) if (option !== 'fields') throw refuse(statement.span.offset, 'sink_option', `INTO SEARCH has no option "${option}"`, "its option is fields = 'title^2, body'");
        definition.sinks.push({ name: statement.name, kind: 'search', view, ...(fields !== undefined ? { fields } : {}) });
      } else if (statement.target === 'file') {
        if (!statement.url) throw refuse(statement.span.offset, 'sink_option', 'INTO FILE needs a path', "write INTO FILE 'changes.jsonl' (relative paths are inside the data directory)");
        for (const option of statement.options.keys()) throw refuse(statement.span.offset, 'sink_option', `INTO FILE has no option "${option}"`);
        definition.sinks.push({ name: statement.name, kind: 'file', view, file: statement.url });
      } else {
        throw refuse(statement.span.offset, 'not_built', `INTO ${statement.target.toUpperCase()} sinks are not built yet`, 'use INTO SEARCH or INTO FILE, or read the view over HTTP');
      }
      if (definition.sinks.filter((s) => s.name === statement.name).length > 1) throw refuse(statement.span.offset, 'sql_duplicate', `sink "${statement.name}" is declared twice`);
      continue;
    }
    const kind = Object.keys(statement.node)[0];
    const body = (statement.node as unknown as Record<string, Record<string, unknown>>)[kind!]!;
    if (kind === 'CreateStmt') {
      definition.tables.push(statement);
      names.add(tableName(statement));
    } else if (kind === 'ViewStmt') {
      const relation = body.view as { schemaname?: string; relname: string };
      const name = relation.schemaname ? `${relation.schemaname}.${relation.relname}` : relation.relname;
      definition.views.push(statement);
      definition.viewTexts.set(name, statement.text.replace(/\s+/g, ' ').trim());
      names.add(name);
    } else if (kind === 'IndexStmt') {
      throw refuse(statement.span.offset, 'sql_unsupported', 'indexes are not needed in a pipeline file: views keep their own state, and reads use the view store', 'remove the CREATE INDEX (a UNIQUE one cannot refuse acknowledged events: use the PRIMARY KEY)');
    } else {
      throw refuse(statement.span.offset, 'sql_unsupported', `${kind!.replace(/Stmt$/, '')} statements have no place in a pipeline file: it declares tables, views, sources and sinks`, 'feed tables with POST /v1/tables/NAME/events (or `sluice log append`), and query with POST /v1/query');
    }
  }
  return definition;
}

function tableName(statement: Extract<PipelineStatement, { kind: 'postgres' }>): string {
  const relation = (statement.node as { CreateStmt: { relation: { schemaname?: string; relname: string } } }).CreateStmt.relation;
  return relation.schemaname ? `${relation.schemaname}.${relation.relname}` : relation.relname;
}

function committedRecords(sink: Sink): number {
  const committed = sink.committed();
  return committed ? recordsIn(decodePosition(committed.frontier)) : -1;
}

function readCheckpoint(file: string, db: Database, tables: TableEntry[]): { frontier: Frontier; keys: Array<[string, string]> } | undefined {
  const bytes = fs.readFileSync(file);
  if (bytes.length < 8) return undefined;
  const body = bytes.subarray(0, bytes.length - 4);
  if ((zlib.crc32(body) >>> 0) !== bytes.readUInt32LE(bytes.length - 4)) {
    process.emitWarning(`${file}: checksum mismatch; ignoring the checkpoint and replaying the log`);
    return undefined;
  }
  const reader = new ByteReader(body);
  if (reader.string() !== CHECKPOINT_MAGIC || reader.uint8() !== CHECKPOINT_VERSION) return undefined;
  const frontier: Frontier = new Map(Object.entries(JSON.parse(reader.string()) as Record<string, number>));
  const keys = JSON.parse(reader.string()) as Array<[string, string]>;
  // The checkpoint must name exactly these tables, within the log's ends.
  if (frontier.size !== tables.length || tables.some((t) => !frontier.has(t.topic) || frontier.get(t.topic)! > t.endOffset)) return undefined;
  if (!db.restoreTables(reader)) return undefined;
  return { frontier, keys };
}

/** Writes `parts` to `file` atomically and durably without blocking the event loop: a temporary, synced, renamed. */
async function writeFileDurably(file: string, parts: Uint8Array[]): Promise<void> {
  const temporary = `${file}.tmp`;
  const handle = await fs.promises.open(temporary, 'w');
  try {
    // About 4 MiB at a time, each synced: dirty pages never pile up, so the log's own syncs
    // (which on ext4 may have to flush them first) are not held up by a large checkpoint.
    let i = 0;
    while (i < parts.length) {
      const batch: Uint8Array[] = [];
      let expected = 0;
      while (i < parts.length && batch.length < 512 && (batch.length === 0 || expected < 4 << 20)) {
        batch.push(parts[i]!);
        expected += parts[i++]!.length;
      }
      const { bytesWritten } = await handle.writev(batch);
      if (bytesWritten !== expected) throw new Error(`wrote ${bytesWritten} of ${expected} bytes (disk full?)`);
      await handle.datasync();
    }
  } finally {
    await handle.close();
  }
  await fs.promises.rename(temporary, file);
  const folder = await fs.promises.open(path.dirname(file), 'r');
  try {
    await folder.sync();
  } finally {
    await folder.close();
  }
}

function readManifest(file: string): Record<string, string> {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, string>;
  } catch {
    return {};
  }
}

/** The manifest is rebuildable: lost, every store and index is rebuilt from the log. */
function writeManifest(file: string, manifest: Record<string, string>): void {
  replaceRebuildableFile(new NodeStorage(), file, new TextEncoder().encode(JSON.stringify(manifest, null, 2) + '\n'));
}

function dropSearchTables(db: DatabaseSync, prefix: string): void {
  const names = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND (name = ? OR name LIKE ? ESCAPE '\\')").all(prefix, `${prefix.replace(/[_%\\]/g, '\\$&')}\\_%`) as Array<{ name: string }>;
  for (const { name } of names) {
    try {
      db.exec(`DROP TABLE IF EXISTS "${name.replaceAll('"', '""')}"`);
    } catch {
      // A shadow table of an FTS5 table already dropped with it.
    }
  }
}

function viewFailed(name: string, failure: Error): DefiniteError {
  const info = errorInfo(failure);
  return new DefiniteError('view_failed', `view "${name}" has no result: ${info.message}`, 'it recovers by itself when a change removes the cause (the row that raises the error)', { cause: failure });
}

function errorInfo(error: Error): { code: string; message: string; hint?: string } {
  if (error instanceof SluiceError) return { code: error.code, message: error.message.replace(/^the circuit stopped at step \d+: /, ''), ...(error.hint ? { hint: error.hint } : {}) };
  return { code: 'internal', message: error.message };
}


function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}

const POSTGRES_EPOCH_MS = 946_684_800_000;

/** A source record's position as status shows it: an LSN, or binlog file:position (and GTID). */
function sourcePosition(position: Record<string, unknown>): string {
  if (position.lsn !== undefined) return String(position.lsn);
  return `${String(position.file)}:${String(position.pos)}${position.gtid ? ` (${String(position.gtid)})` : ''}`;
}

/** A transaction record's commit time in ms since 1970 (PostgreSQL: µs since 2000; binlog: ms). */
function commitTime(position: Record<string, unknown>): number {
  if (position.lsn !== undefined) return Number(BigInt(String(position.time)) / 1000n) + POSTGRES_EPOCH_MS;
  return Number(position.time);
}

/** A type label without its modifiers: 'character varying(20)' → 'character varying'. */
function typeKind(label: string): string {
  return label.replace(/\(.*\)$/, '');
}

function describeChange(change: SchemaChange): string {
  const parts = [...change.dropped.map((c) => `dropped ${c}`), ...change.retyped.map((c) => `changed the type of ${c}`), ...change.added.map((c) => `added ${c}`)];
  return parts.join(', ');
}

/** Records a sample of a source's captured rows (at most every 500 ms, 20 kept). */
function sample(source: SourceInput): void {
  const now = Date.now();
  const last = source.samples.at(-1);
  if (last && now - last[0] < 500) return;
  source.samples.push([now, source.rows]);
  if (source.samples.length > 20) source.samples.shift();
}

/** Rows per second over the samples of the last ~5 s (0 when nothing came in lately). */
function rate(source: SourceInput, now: number): number {
  sample(source);
  const recent = source.samples.filter(([time]) => now - time <= 5500);
  const first = recent[0];
  if (!first || now - first[0] < 100) return 0;
  return Math.round(((source.rows - first[1]) * 1000) / (now - first[0]));
}

type Batch = { table: string; ops: Uint8Array; rows: Row[]; keep?: Array<number[] | undefined> };

/** A source record as table batches (Database.applyChanges); returns the changes it holds. */
function sourceBatches(source: SourceInput, record: SourceRecord, batches: Batch[]): number {
  // Parts are applied with the transaction that names them (and never when none does).
  if (record.kind === TRANSACTION_PART) return 0;
  if (record.kind === SNAPSHOT_START) {
    // A snapshot starts (again): the source's tables are emptied first.
    for (const table of source.tables.values()) batches.push({ table: table.name, ops: Uint8Array.of(3), rows: [[]] });
    return 0;
  }
  // Consecutive changes to one table go in one batch.
  let last: { batch: Batch; ops: number[] } | undefined;
  const flush = () => {
    if (last) last.batch.ops = Uint8Array.from(last.ops);
  };
  // Per table the record describes: where each Sluice column's value is in the record's rows
  // (undefined: the same columns in the same order). A column the record lacks (dropped at the
  // source), or has with another type (altered), reads NULL.
  const maps = record.tables.map((described) => {
    const table = source.tables.get(described.name);
    if (!table) return undefined;
    const same = described.columns.length === table.columns.length && described.columns.every(([n, t], i) => n === table.columns[i] && t === table.types[i]);
    // A value is kept when its type is of the column's kind (a varchar widened, a numeric's precision
    // changed); a column whose kind changed reads NULL, and the views reading it are stopped.
    return same ? undefined : table.columns.map((c, k) => described.columns.findIndex(([n, t]) => n === c && typeKind(t) === typeKind(table.types[k]!)));
  });
  for (const change of record.changes) {
    const described = record.tables[change.table]!;
    const table = source.tables.get(described.name);
    if (!table) continue; // a table this pipeline does not read
    const map = maps[change.table];
    const row: Row = map ? map.map((j) => (j < 0 ? null : (change.row[j] ?? null))) : change.row;
    const keep = change.unchanged?.map((j) => (map ? map.indexOf(j) : j)).filter((j) => j >= 0);
    if (!last || last.batch.table !== table.name) {
      flush();
      const batch: Batch = { table: table.name, ops: new Uint8Array(), rows: [] };
      batches.push(batch);
      last = { batch, ops: [] };
    }
    last.ops.push(change.op);
    last.batch.rows.push(row);
    if (keep && keep.length > 0) (last.batch.keep ??= [])[last.batch.rows.length - 1] = keep;
  }
  flush();
  return record.changes.length;
}

/** A source table's column: name, Sluice type label, part of the primary key. */
type SourceColumn = [name: string, type: string, key: boolean];
/** `source-tables.json`: each source's tables' columns as the Sluice tables have them. */
type SourceSchemas = Record<string, Record<string, SourceColumn[]>>;

/** CREATE TABLE for a source table. */
function createTableSql(name: string, columns: SourceColumn[]): string {
  const key = columns.filter(([, , k]) => k).map(([n]) => quoteIdentifier(n));
  const qualified = name.split('.').map(quoteIdentifier).join('.');
  return `CREATE TABLE ${qualified} (${columns.map(([n, t]) => `${quoteIdentifier(n)} ${t}`).join(', ')}${key.length ? `, PRIMARY KEY (${key.join(', ')})` : ''})`;
}
