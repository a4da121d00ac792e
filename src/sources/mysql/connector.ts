/**
 * A MySQL/MariaDB source captured into the log: one topic `source.NAME`, a snapshot and then one
 * record per committed transaction, in binlog order — the record format of records.ts, shared
 * with the PostgreSQL source, so the runtime applies both alike.
 *
 *   const capture = new MysqlCapture(config, log);
 *   await capture.run(signal);          // snapshot (first time), then stream until aborted
 *
 * - **Snapshot**, never with FLUSH TABLES WITH READ LOCK, in one of two ways (WITH snapshot):
 *   - *consistent* (MariaDB): `START TRANSACTION WITH CONSISTENT SNAPSHOT` gives an InnoDB read
 *     view and, in the same instant, the binlog position it matches (`binlog_snapshot_file` /
 *     `_position`). The tables are read in primary-key order; streaming starts at that position.
 *   - *watermark* (DBLog; MySQL 8 and MariaDB): the binlog streams from the start, and the tables
 *     are read in primary-key chunks, each between a low and a high watermark that Sluice writes
 *     to its watermark table. A row the binlog changes between the two marks is dropped from the
 *     chunk (the binlog's version is as new or newer), and the rest of the chunk goes into the log
 *     at the high mark's place in binlog order. Transactions between the snapshot's start and end
 *     records are applied with it, so at the end record the tables are exactly as the server had
 *     them at its position. No long transaction holds the server's undo history.
 *   Each chunk record names its table's last key read: an interrupted snapshot continues after
 *   it, and tables already read are not read again. In consistent mode the rest is read as of a
 *   later moment; streaming from the snapshot's position replays every change since, which
 *   brings those rows in line (changes carry whole rows and apply by key).
 * - **Transactions**: a GTID event opens one, row events fill it, XID (or a COMMIT query) closes
 *   it; the record's position is where the next event starts (`file`, `pos`) and its GTID. On
 *   restart the stream resumes at the last record's position, so nothing is doubled or lost.
 * - **Schema**: each row is read with its table map's columns, as of its binlog position
 *   (schema.ts `columnsAt`), and records name those columns; a DDL statement has the tables
 *   described again, for what the table map cannot say (varchar lengths, MariaDB's JSON).
 * - **Resume checks**: the stream restarts at the last transaction's GTID event, which must be the
 *   recorded one; a purged binlog (error 1236) or another transaction there stops the capture
 *   with a definite error naming `--resnapshot`.
 */

import { randomUUID } from 'node:crypto';
import mysql from 'mysql2/promise';
import { DefiniteError, TransientError, type Row } from '../../core/index.ts';
import type { Log } from '../../log/index.ts';
import { typeLabel } from '../../sql/index.ts';
import { DELETE, offsetRanges, SNAPSHOT_END, SNAPSHOT_ROWS, SNAPSHOT_START, TRANSACTION, TRANSACTION_PART, TRUNCATE, UPSERT, type SourceChange, type SourceRecord, type SourceTable } from '../records.ts';
import type { BinlogEvent, RawRow, RawValue, TableMap } from './binlog.ts';
import type { MysqlSourceConfig } from './config.ts';
import { mysqlPreflight, mysqlPreflightError } from './preflight.ts';
import { columnsAt, describeMysqlTables, mysqlValue, type MysqlColumn } from './schema.ts';
import { BinlogStream, type BinlogPosition } from './stream.ts';
import { SourceTopic, type SourceCaptureOptions } from '../topic.ts';

export type MysqlCaptureConfig = MysqlSourceConfig;

export type MysqlCaptureOptions = SourceCaptureOptions;

export interface MysqlCaptureStats {
  phase: 'starting' | 'snapshot' | 'streaming';
  since?: number;
  snapshot?: { mode: 'consistent' | 'watermark'; table: string; tablesDone: number; tables: number; rows: number; estimated: number; startedAt: number; endedAt?: number };
  rows: number;
  /** Where the stream has read to. */
  position?: BinlogPosition;
}

/** Changes of a transaction buffered before they are written as a part (records.ts). */
const SPILL_CHANGES = 10_000;
/** Changes waiting for the log beyond which reading the binlog pauses. */
const BACKLOG_CHANGES = 100_000;

/** Binlog positions in order: file names sort as their sequence numbers do. */
function compare(a: BinlogPosition, b: BinlogPosition): number {
  return a.file === b.file ? a.position - b.position : a.file < b.file ? -1 : 1;
}

export class MysqlCapture {
  readonly topic: string;
  readonly #config: MysqlCaptureConfig;
  /** The source's topic: this capture is its only writer. */
  readonly #topic: SourceTopic;
  readonly #stats: MysqlCaptureStats = { phase: 'starting', rows: 0 };
  /** The source's tables (`schema.table`) → their columns as the server describes them. */
  #schemas = new Map<string, MysqlColumn[]>();
  /** The position after the last transaction in the log. */
  #logged: BinlogPosition | undefined;
  #received: BinlogPosition | undefined;
  /** The position after the last record durable in the log (or after all that was read, when idle). */
  #durable: BinlogPosition | undefined;
  /** The server's binlog files and their sizes, when last asked (every 2 s while streaming). */
  #binlogFiles: Array<{ file: string; size: number }> | undefined;
  /** A watermark snapshot being taken. */
  #driver: WatermarkDriver | undefined;
  readonly #waiters = new Set<{ target: BinlogPosition; resolve: () => void }>();

  /** A new snapshot is to be taken whatever the log holds (until its start record is written). */
  #resnapshot: boolean;

  constructor(config: MysqlCaptureConfig, log: Log, options: MysqlCaptureOptions = {}) {
    this.#config = config;
    this.#resnapshot = options.resnapshot === true;
    this.topic = `source.${config.name}`;
    this.#topic = new SourceTopic(log, this.topic, config.name, options);
  }

  /** Bytes of binlog the server had written, when last asked, beyond what is durable in Sluice's log. */
  get lagBytes(): number | undefined {
    const files = this.#binlogFiles;
    const from = this.#durable;
    if (!files || !from) return undefined;
    let bytes = 0;
    for (const { file, size } of files) {
      if (file < from.file) continue;
      bytes += file === from.file ? Math.max(0, size - from.position) : size;
    }
    return bytes;
  }

  get stats(): MysqlCaptureStats {
    return this.#stats;
  }

  /** Resolves once everything the server had written to its binlog at the call is in the log, and the snapshot is over. */
  async caughtUp(timeoutMs = 120_000): Promise<void> {
    // A snapshot takes as long as the tables take: the time limit counts from its end.
    while (this.#stats.phase !== 'streaming') await new Promise((resolve) => setTimeout(resolve, 20));
    // Resolved by the stream once it has read past the target and written what it read.
    const target = await this.#serverPosition();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      new Promise<void>((resolve) => this.#waiters.add({ target, resolve })),
      new Promise((_, reject) => (timer = setTimeout(() => reject(new DefiniteError('mysql_sync_timeout', `source ${this.#config.name}: did not catch up with the server within ${timeoutMs / 1000} s`, 'check the source in GET /v1/status')), timeoutMs))),
    ]).finally(() => clearTimeout(timer));
  }

  async run(signal: AbortSignal): Promise<void> {
    try {
      await this.#run(signal);
    } catch (error) {
      if (error instanceof DefiniteError || error instanceof TransientError) throw error;
      const code = String((error as { code?: unknown }).code ?? '');
      if (/^(ECONN|PROTOCOL_CONNECTION_LOST|ER_SERVER_SHUTDOWN|ETIMEDOUT|EPIPE)/.test(code) || /Connection lost|closed state/i.test((error as Error).message)) {
        throw new TransientError('mysql_connection', `source ${this.#config.name}: the connection failed: ${(error as Error).message}`, 'Sluice reconnects and resumes where it stopped', { cause: error });
      }
      throw error;
    }
  }

  async #run(signal: AbortSignal): Promise<void> {
    this.#stats.phase = 'starting';
    this.#stats.since = Date.now();
    const opened = await this.#topic.open();
    // Taking a new snapshot (--resnapshot), the log is as good as empty.
    const last = this.#resnapshot ? undefined : opened;
    // Every problem on the server, each with its fix, before anything is read.
    const report = await mysqlPreflight(this.#config);
    const error = mysqlPreflightError(this.#config, report);
    if (error) throw error;
    await this.#describe();
    // Streaming on from the last transaction, or a snapshot to take or to continue.
    if (last && (last.kind === SNAPSHOT_END || (last.kind === TRANSACTION && !last.position.snapshot))) {
      this.#logged = positionOf(last);
      // The binlog must still hold the last transaction where the log says: read again from its
      // GTID event, which must be the same transaction (not a reset binlog, not another server).
      const gtid = typeof last.position.gtid === 'string' && last.position.gtid !== '' ? last.position.gtid : undefined;
      if (gtid && typeof last.position.begin === 'number') await this.#stream({ file: this.#logged.file, position: last.position.begin }, signal, gtid);
      else {
        // A consistent snapshot's end names the server's GTID state at its position (MariaDB).
        if (typeof last.position.gtidState === 'string') await this.#checkGtidState(this.#logged, last.position.gtidState);
        await this.#stream(this.#logged, signal);
      }
      return;
    }
    const resume = last ? await this.#resumePoint(positionOf(last)) : undefined;
    const mode = resume?.mode ?? report.snapshotMode;
    if (mode === 'watermark') {
      // The stream runs from the start; the chunks are read beside it (#readChunks).
      const start = resume?.at ?? (await this.#serverPosition());
      const progress = this.#progress('watermark', resume);
      if (!resume) await this.#topic.append([{ kind: SNAPSHOT_START, position: { file: start.file, pos: start.position, mode: 'watermark' }, tables: [], changes: [] }]);
      this.#resnapshot = false;
      this.#logged = start;
      this.#driver = { progress, resume };
      await this.#stream(start, signal);
      return;
    }
    const start = await this.#snapshot(signal, resume);
    this.#logged = start;
    if (!signal.aborted) await this.#stream(start, signal);
  }

  async #describe(): Promise<void> {
    const described = await describeMysqlTables(this.#config.url, this.#config.tables, this.#config.name);
    this.#schemas = new Map(described.map((t) => [t.name, t.columns]));
  }

  async #serverPosition(on?: mysql.Connection): Promise<BinlogPosition> {
    const connection = on ?? (await mysql.createConnection({ uri: this.#config.url }));
    try {
      // MySQL 8.4 has only SHOW BINARY LOG STATUS (8.2 and later), MariaDB only SHOW MASTER STATUS.
      const [rows] = (await connection.query(`SHOW MASTER STATUS`).catch((error: { errno?: number }) => {
        if (error.errno === 1064) return connection.query(`SHOW BINARY LOG STATUS`);
        throw error;
      })) as unknown as [Array<{ File: string; Position: number }>];
      if (!rows[0]) throw new DefiniteError('mysql_binlog_off', `source ${this.#config.name}: the server's binary log is off`, 'start it with log_bin (and binlog_format=ROW)');
      return { file: rows[0].File, position: Number(rows[0].Position) };
    } finally {
      if (!on) await connection.end().catch(() => {});
    }
  }

  /**
   * Where an unfinished snapshot stands, from the log (headers only, back to its start record):
   * its mode and start, the tables read whole, the table being read and its last key.
   */
  async #resumePoint(at: BinlogPosition): Promise<SnapshotResume | undefined> {
    const done = new Set<string>();
    const rows = new Map<string, number>();
    let table: string | undefined;
    let after: KeyValue[] | undefined;
    for (let offset = this.#topic.end - 1; offset >= 0; offset--) {
      const header = await this.#topic.header(offset);
      if (!header) return undefined;
      const position = header.position;
      if (header.kind === SNAPSHOT_ROWS) {
        const name = String(position.table);
        if (!rows.has(name)) rows.set(name, Number(position.done ?? 0));
        if (position.complete) done.add(name);
        else if (table === undefined && !done.has(name) && position.after) {
          table = name;
          after = position.after as KeyValue[];
        }
      }
      if (header.kind === SNAPSHOT_START) {
        // A log written before chunks named their keys: the snapshot starts over.
        if (position.mode === undefined && rows.size > 0 && done.size === 0 && !table) return undefined;
        return { mode: position.mode === 'watermark' ? 'watermark' : 'consistent', start: positionOf(header), at, done, rows, ...(typeof position.gtidState === 'string' ? { gtidState: position.gtidState } : {}), ...(table ? { table, after } : {}) };
      }
    }
    return undefined;
  }

  #progress(mode: 'consistent' | 'watermark', resume: SnapshotResume | undefined): Snapshot {
    const rows = [...(resume?.rows.values() ?? [])].reduce((a, b) => a + b, 0);
    const progress: Snapshot = { mode, table: '', tablesDone: resume?.done.size ?? 0, tables: this.#config.tables.length, rows, estimated: 0, startedAt: Date.now() };
    this.#stats.snapshot = progress;
    this.#stats.phase = 'snapshot';
    this.#stats.since = Date.now();
    return progress;
  }

  /** MariaDB's GTID state at a binlog position (BINLOG_GTID_POS); undefined where there is none (MySQL). */
  async #gtidState(connection: mysql.Connection, at: BinlogPosition): Promise<string | undefined> {
    try {
      const [[row]] = (await connection.query(`SELECT BINLOG_GTID_POS(?, ?) AS state`, [at.file, at.position])) as unknown as [Array<{ state: string | null }>];
      return row?.state === null || row?.state === undefined ? undefined : String(row.state);
    } catch (error) {
      if ((error as { errno?: number }).errno === 1305) return undefined; // no such function: MySQL
      throw error;
    }
  }

  /** The binlog at `at` must still have the GTID state it had when the log was written there. */
  async #checkGtidState(at: BinlogPosition, recorded: string): Promise<void> {
    const connection = await mysql.createConnection({ uri: this.#config.url });
    try {
      const state = await this.#gtidState(connection, at).catch(() => undefined);
      if (state === recorded) return;
      throw new DefiniteError('mysql_binlog_mismatch', `source ${this.#config.name}: the binlog at ${at.file}:${at.position} stands at GTID state ${state === undefined ? '(none: the position is not in the binlog)' : `"${state}"`}, but this log was captured there at "${recorded}": the server's binlog was reset, or it is another server`, `point the source back at the original server, or take a new snapshot: run sluice up (or run) with --resnapshot ${this.#config.name} once`);
    } finally {
      await connection.end().catch(() => {});
    }
  }

  /** The tables a snapshot has still to read, each with the key it continues after (progress noted). */
  async *#tablesToRead(connection: mysql.Connection, progress: Snapshot, resume: SnapshotResume | undefined) {
    for (const table of this.#config.tables) {
      const name = `${table.schema}.${table.name}`;
      if (resume?.done.has(name)) continue;
      progress.estimated += await this.#estimate(connection, table);
      progress.table = name;
      const columns = this.#schemas.get(name)!;
      const after = resume?.table === name ? resume.after : undefined;
      yield { table, name, columns, keys: columns.filter((c) => c.key), after, done: after ? (resume!.rows.get(name) ?? 0) : 0 };
    }
  }

  /** Up to chunkRows rows of a table after the key `after`, in key order. */
  async #selectChunk(connection: mysql.Connection, table: { schema: string; name: string }, keys: readonly MysqlColumn[], after: KeyValue[] | undefined): Promise<Array<Record<string, unknown>>> {
    const [where, values] = keysetWhere(keys, after);
    const [rows] = (await connection.query(`SELECT * FROM ${quoteTable(table)}${where} ORDER BY ${keys.map((k) => quoteName(k.name)).join(', ')} LIMIT ${this.#config.chunkRows}`, values)) as unknown as [Array<Record<string, unknown>>];
    return rows;
  }

  /** Opens a connection for reading tables: values as text, in UTC. */
  async #reader(): Promise<mysql.Connection> {
    const connection = await mysql.createConnection({ uri: this.#config.url, dateStrings: true, supportBigNumbers: true, bigNumberStrings: true, decimalNumbers: false, timezone: 'Z' });
    await connection.query(`SET SESSION time_zone = '+00:00'`);
    return connection;
  }

  async #estimate(connection: mysql.Connection, table: { schema: string; name: string }): Promise<number> {
    const [[estimate]] = (await connection.query(`SELECT TABLE_ROWS AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?`, [table.schema, table.name])) as unknown as [Array<{ n: number | null }>];
    return Number(estimate?.n ?? 0);
  }

  /**
   * Reads every table as of one consistent snapshot; returns the binlog position it matches.
   * Continuing (`resume`), the tables not yet read are read as of now, and the position is the
   * first run's: streaming from it replays every change since.
   */
  async #snapshot(signal: AbortSignal, resume: SnapshotResume | undefined): Promise<BinlogPosition> {
    const connection = await this.#reader();
    try {
      await connection.query(`SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ`);
      await connection.query(`START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY`);
      let start = resume?.start;
      if (!start) {
        const [status] = (await connection.query(`SHOW STATUS LIKE 'binlog_snapshot_%'`)) as unknown as [Array<{ Variable_name: string; Value: string }>];
        const value = (name: string) => status.find((s) => s.Variable_name.toLowerCase() === name)?.Value;
        const file = value('binlog_snapshot_file');
        const position = value('binlog_snapshot_position');
        if (!file || !position) throw new DefiniteError('mysql_snapshot_mode', `source ${this.#config.name}: the server gives no binlog position for a consistent snapshot (binlog_snapshot_file is MariaDB's)`, "use snapshot = 'watermark' (or leave snapshot out: 'auto' chooses it on MySQL)");
        start = { file, position: Number(position) };
        const gtidState = await this.#gtidState(connection, start);
        await this.#topic.append([{ kind: SNAPSHOT_START, position: { file: start.file, pos: start.position, mode: 'consistent', ...(gtidState !== undefined ? { gtidState } : {}) }, tables: [], changes: [] }]);
        this.#resnapshot = false;
      }
      const progress = this.#progress('consistent', resume);
      for await (const { table, name, columns, keys, after: resumed, done: already } of this.#tablesToRead(connection, progress, resume)) {
        const described = sourceTable(name, columns);
        let done = already;
        let last: KeyValue[] | undefined = resumed;
        let chunk: Row[] = [];
        const flush = async (complete: boolean) => {
          await this.#topic.append([{ kind: SNAPSHOT_ROWS, position: { file: start.file, pos: start.position, table: name, done, ...(last ? { after: last } : {}), ...(complete ? { complete } : {}) }, tables: [described], changes: chunk.map((row) => ({ table: 0, op: UPSERT, row })) }]);
          chunk = [];
        };
        // Chunks in the snapshot's transaction; the next is asked for while this one is converted
        // and written.
        const select = (after: KeyValue[] | undefined) => {
          const query = this.#selectChunk(connection, table, keys, after);
          query.catch(() => {}); // awaited below, or abandoned when the capture stops
          return query;
        };
        let pending = select(resumed);
        while (true) {
          const rows = await pending;
          if (signal.aborted) return start;
          const complete = rows.length < this.#config.chunkRows;
          if (rows.length > 0) last = keyValues(keys, rows.at(-1)!);
          if (!complete) pending = select(last);
          chunk = snapshotRows(name, columns, rows);
          done += rows.length;
          progress.rows += rows.length;
          if (complete) break;
          await flush(false);
        }
        await flush(true);
        progress.tablesDone++;
      }
      await connection.query('COMMIT');
      progress.endedAt = Date.now();
      const gtidState = resume?.gtidState ?? (await this.#gtidState(connection, start));
      await this.#topic.append([{ kind: SNAPSHOT_END, position: { file: start.file, pos: start.position, ...(gtidState !== undefined ? { gtidState } : {}) }, tables: [], changes: [] }]);
      return start;
    } finally {
      await connection.end().catch(() => {});
    }
  }

  /**
   * The watermark snapshot's reading side (DBLog), while #stream reads the binlog: for each chunk,
   * a low watermark is written, the chunk selected, a high watermark written; #stream drops the
   * chunk's rows it saw change between the two and writes the rest at the high mark.
   */
  async #readChunks(driver: WatermarkDriver, stop: AbortSignal): Promise<void> {
    const connection = await this.#reader();
    const stopped = new Promise<void>((resolve) => stop.addEventListener('abort', () => resolve(), { once: true }));
    try {
      const { progress, resume } = driver;
      const marks = this.#config.watermarkTable;
      const mark = async (value: string) => {
        await connection.query(`INSERT INTO ${quoteTable(marks)} (source, mark) VALUES (?, ?) ON DUPLICATE KEY UPDATE mark = VALUES(mark)`, [this.#config.name, value]);
      };
      for await (const read of this.#tablesToRead(connection, progress, resume)) {
        const { table, name, columns, keys } = read;
        let { after, done } = read;
        while (true) {
          if (stop.aborted) return;
          const id = randomUUID();
          let resolve!: () => void;
          const emitted = new Promise<void>((r) => (resolve = r));
          const window: ChunkWindow = { table: name, low: `${id}:low`, high: `${id}:high`, phase: 'waiting', changed: new Set(), rows: [], columns, done, complete: false, resolve };
          driver.window = window;
          await mark(window.low);
          // The binlog holds the low mark before here: a stream past it that has not seen it never will.
          window.lowAt = await this.#serverPosition(connection);
          const rows = await this.#selectChunk(connection, table, keys, after);
          // The columns as described now (a DDL meanwhile has them described again): the rows are read, and later described, with these.
          window.columns = this.#schemas.get(name)!;
          window.rows = snapshotRows(name, window.columns, rows);
          window.done = done += rows.length;
          window.complete = rows.length < this.#config.chunkRows;
          if (rows.length > 0) window.after = after = keyValues(keys, rows.at(-1)!);
          else if (after) window.after = after;
          await mark(window.high);
          await Promise.race([emitted, stopped]);
          if (stop.aborted) return;
          progress.rows += rows.length;
          if (window.complete) break;
        }
        progress.tablesDone++;
      }
      driver.finish?.();
    } finally {
      await connection.end().catch(() => {});
    }
  }

  async #stream(start: BinlogPosition, signal: AbortSignal, expectGtid?: string): Promise<void> {
    const marks = `${this.#config.watermarkTable.schema}.${this.#config.watermarkTable.name}`;
    this.#durable = start;
    /** A change, with the columns its row was read with (the table's as of its binlog position). */
    type Pending = { table: string; columns: MysqlColumn[]; change: Omit<SourceChange, 'table'> };
    /** A part queued for the log; its offset is set when it is appended (records.ts). */
    type Part = { offset?: number };
    /** The transaction being read: its changes so far, written as parts every SPILL_CHANGES. */
    let open: { gtid: string; begin?: number; changes: Pending[]; parts: Part[]; time: number } | undefined;
    let expected = expectGtid;
    /** The GTID of a statement outside a transaction (DDL), for the TRUNCATE record it may make. */
    let standalone: { gtid: string; begin: number } | undefined;
    /** The last transaction committed (captured or not): records without one of their own name it. */
    let lastSeen: { gtid: string; begin: number; end: BinlogPosition } | undefined;
    type Queued = { record: SourceRecord; part?: Part; parts?: Part[] };
    const queued: Queued[] = [];
    let queuedChanges = 0;
    let flushing: Promise<void> | undefined;
    let failure: Error | undefined;
    let stream: BinlogStream | undefined;
    const flush = async () => {
      while (queued.length > 0) {
        const batch = queued.splice(0, queued.length);
        let offset = this.#topic.end;
        for (const item of batch) {
          if (item.part) item.part.offset = offset;
          if (item.parts?.length) item.record.position.parts = offsetRanges(item.parts.map((p) => p.offset!));
          offset++;
        }
        await this.#topic.append(batch.map((b) => b.record));
        for (const { record } of batch) if (record.position.file !== undefined) this.#durable = positionOf(record);
        const changes = batch.reduce((sum, b) => sum + b.record.changes.length, 0);
        queuedChanges -= changes;
        this.#stats.rows += changes;
      }
    };
    let stopped = false;
    // One flush at a time; what arrives while one ends is taken by the next.
    const kick = (): void => {
      if (flushing || queued.length === 0) return;
      flushing = flush()
        .then(() => {
          if (queuedChanges <= BACKLOG_CHANGES / 2) stream?.resume();
        })
        .catch((error: Error) => {
          failure ??= error;
        })
        .finally(() => {
          flushing = undefined;
          kick();
        });
    };
    const enqueue = (item: Queued) => {
      if (stopped) return;
      queued.push(item);
      queuedChanges += item.record.changes.length;
      // Backpressure: stop reading the binlog while the log is behind.
      if (queuedChanges > BACKLOG_CHANGES) stream?.pause();
      kick();
    };
    const tablesOf = (pending: Pending[]): { tables: SourceTable[]; changes: SourceChange[] } => {
      const tables: SourceTable[] = [];
      const index = new Map<MysqlColumn[], number>();
      const changes: SourceChange[] = pending.map(({ table, columns, change }) => {
        let i = index.get(columns);
        if (i === undefined) {
          index.set(columns, (i = tables.length));
          tables.push(sourceTable(table, columns));
        }
        return { table: i, ...change };
      });
      return { tables, changes };
    };
    const spill = () => {
      if (!open || open.changes.length === 0) return;
      const part: Part = {};
      open.parts.push(part);
      enqueue({ record: { kind: TRANSACTION_PART, position: { gtid: open.gtid }, ...tablesOf(open.changes) }, part });
      open.changes = [];
    };
    const add = (pending: Pending) => {
      open!.changes.push(pending);
      if (open!.changes.length >= SPILL_CHANGES) spill();
    };
    const commit = (next: BinlogPosition) => {
      if (!open) return;
      if (open.gtid !== '' && open.begin !== undefined) lastSeen = { gtid: open.gtid, begin: open.begin, end: next };
      // Sent again after a restart (parts it spilled again are named by no commit: never applied).
      if (this.#logged && compare(next, this.#logged) <= 0) {
        open = undefined;
        return;
      }
      this.#logged = next;
      const driver = this.#driver;
      // During a watermark snapshot transactions are marked: they are applied with it.
      const position = { file: next.file, pos: next.position, gtid: open.gtid, ...(open.begin !== undefined ? { begin: open.begin } : {}), time: open.time, ...(driver ? { snapshot: true } : {}) };
      if (open.parts.length > 0) {
        spill();
        enqueue({ record: { kind: TRANSACTION, position, tables: [], changes: [] }, parts: open.parts });
      } else if (open.changes.length > 0) enqueue({ record: { kind: TRANSACTION, position, ...tablesOf(open.changes) } });
      open = undefined;
      // The high watermark committed: the chunk's rows the binlog did not change go in here.
      const window = driver?.window;
      if (window?.phase === 'closing') {
        const columns = window.columns;
        const rows = window.rows.filter((row) => !window.changed.has(keyOf(columns, row)));
        const at = { file: next.file, pos: next.position, table: window.table, done: window.done, ...(window.after ? { after: window.after } : {}), ...(window.complete ? { complete: true } : {}) };
        enqueue({ record: { kind: SNAPSHOT_ROWS, position: at, tables: [sourceTable(window.table, columns)], changes: rows.map((row) => ({ table: 0, op: UPSERT, row })) } });
        driver!.window = undefined;
        window.resolve();
      }
    };
    const rowOf = (table: string, raw: RawRow, columns: MysqlColumn[]): Row => columns.map((column, i) => mysqlValue(raw[i] ?? null, column, table));
    // The columns of a table map: computed once per map and per description of the tables.
    const columnsCache = new WeakMap<TableMap, { schemas: Map<string, MysqlColumn[]>; columns: MysqlColumn[] }>();
    const columnsOf = (map: TableMap, name: string): MysqlColumn[] => {
      const cached = columnsCache.get(map);
      if (cached && cached.schemas === this.#schemas) return cached.columns;
      const columns = columnsAt(map, this.#schemas.get(name));
      columnsCache.set(map, { schemas: this.#schemas, columns });
      return columns;
    };
    // After a DDL statement, events wait until the tables are described again, so the columns the
    // rows that follow are read with carry the server's labels (columnsAt prefers them).
    let held: Array<[BinlogEvent, BinlogPosition]> | undefined;
    const describeAgain = () => {
      held = [];
      stream?.pause();
      this.#describe().then(
        () => {
          const events = held ?? [];
          held = undefined;
          // onEvent may hold again (another DDL among them): it queues the rest itself.
          for (const [event, next] of events) onEvent(event, next);
          stream?.resume();
        },
        (error: Error) => {
          failure ??= error;
        },
      );
    };
    const onEvent = (event: BinlogEvent, next: BinlogPosition): void => {
      if (held) {
        held.push([event, next]);
        return;
      }
      try {
        this.#received = next;
        this.#stats.position = next;
        switch (event.kind) {
          case 'gtid':
            if (expected !== undefined) {
              const at = `${next.file}:${next.position - event.header.size}`;
              if (event.gtid !== expected) throw new DefiniteError('mysql_binlog_mismatch', `source ${this.#config.name}: the binlog at ${at} holds transaction ${event.gtid}, but this log captured ${expected} there: the server's binlog was reset, or it is another server`, `point the source back at the original server, or take a new snapshot: run sluice up (or run) with --resnapshot ${this.#config.name} once`);
              expected = undefined;
            }
            // Where the transaction starts (its GTID event): a resume reads it again to check it.
            open = { gtid: event.gtid, begin: next.position - event.header.size, changes: [], parts: [], time: event.header.timestamp * 1000 };
            standalone = event.standalone ? { gtid: event.gtid, begin: open.begin! } : undefined;
            if (event.standalone) open = undefined;
            break;
          case 'query': {
            const sql = event.sql.trim();
            if (/^COMMIT\b/i.test(sql)) commit(next);
            else if (/^BEGIN\b/i.test(sql)) open ??= { gtid: '', changes: [], parts: [], time: event.header.timestamp * 1000 };
            else if (/^(ALTER|CREATE|DROP|RENAME|TRUNCATE)\b/i.test(sql)) {
              // DDL: TRUNCATE of a captured table empties it; any other has the tables described again.
              const truncated = /^TRUNCATE\s+(?:TABLE\s+)?`?([\w$]+)`?(?:\.`?([\w$]+)`?)?/i.exec(sql);
              if (truncated) {
                const name = truncated[2] ? `${truncated[1]}.${truncated[2]}` : `${event.schema}.${truncated[1]}`;
                if (this.#schemas.has(name)) {
                  open = { gtid: standalone?.gtid ?? '', ...(standalone ? { begin: standalone.begin } : {}), changes: [{ table: name, columns: this.#schemas.get(name)!, change: { op: TRUNCATE, row: [] } }], parts: [], time: event.header.timestamp * 1000 };
                  commit(next);
                }
              } else describeAgain();
            }
            break;
          }
          case 'rows': {
            const name = `${event.table.schema}.${event.table.table}`;
            const names = event.table.columns.map((c) => c.name);
            const window = this.#driver?.window;
            if (window && name === marks) {
              // Our watermarks: the chunk's window opens at the low one and closes at the high one.
              const source = names.indexOf('source');
              const mark = names.indexOf('mark');
              for (const raw of event.rows) {
                if (text(raw[source]) !== this.#config.name) continue;
                if (text(raw[mark]) === window.low && window.phase === 'waiting') window.phase = 'open';
                else if (text(raw[mark]) === window.high && window.phase === 'open') window.phase = 'closing';
              }
              break;
            }
            // Not read again when the stream starts before the log's last transaction (to check it).
            if (!this.#schemas.has(name) || !open || (this.#logged && compare(next, this.#logged) < 0)) break;
            const columns = columnsOf(event.table, name);
            const changed = window?.phase === 'open' && window.table === name ? window.changed : undefined;
            event.rows.forEach((raw, r) => {
              const row = rowOf(name, raw, columns);
              changed?.add(keyOf(columns, row));
              if (event.op === 'delete') add({ table: name, columns, change: { op: DELETE, row } });
              else if (event.op === 'update') {
                const before = rowOf(name, event.before![r]!, columns);
                changed?.add(keyOf(columns, before));
                if (keyOf(columns, before) !== keyOf(columns, row)) add({ table: name, columns, change: { op: DELETE, row: before } });
                add({ table: name, columns, change: { op: UPSERT, row } });
              } else add({ table: name, columns, change: { op: UPSERT, row } });
            });
            break;
          }
          case 'xid':
            commit(next);
            break;
          default:
            break;
        }
      } catch (error) {
        failure ??= error as Error;
      }
    };
    let ended: (error: Error) => void;
    const done = new Promise<Error>((resolve) => (ended = resolve));
    stream = await BinlogStream.start({ url: this.#config.url, serverId: this.#config.serverId, start, onEvent, onError: (error) => ended(error) });
    // A watermark snapshot: its chunks are read beside the stream, and it ends in the stream's order.
    const driver = this.#driver;
    const chunksStop = new AbortController();
    let chunks: Promise<void> | undefined;
    if (driver) {
      driver.finish = () => {
        // Named by the last transaction before it, which a resume from here checks.
        const named = lastSeen && compare(lastSeen.end, this.#logged!) === 0 ? { gtid: lastSeen.gtid, begin: lastSeen.begin } : {};
        enqueue({ record: { kind: SNAPSHOT_END, position: { file: this.#logged!.file, pos: this.#logged!.position, ...named }, tables: [], changes: [] } });
        this.#driver = undefined;
        driver.progress.endedAt = Date.now();
        this.#stats.phase = 'streaming';
        this.#stats.since = Date.now();
      };
      chunks = this.#readChunks(driver, chunksStop.signal).catch((error: Error) => {
        failure ??= error;
      });
    } else {
      this.#stats.phase = 'streaming';
      this.#stats.since = Date.now();
    }
    const abort = () => ended(new Error('aborted'));
    signal.addEventListener('abort', abort, { once: true });
    if (signal.aborted) abort(); // aborted while the stream was starting
    // Where the server's binlog stands, every 2 s, for lagBytes.
    const lagClient = mysql.createConnection({ uri: this.#config.url });
    lagClient.catch(() => {});
    let asking = false;
    const ask = async () => {
      if (asking) return;
      asking = true;
      try {
        const [files] = (await (await lagClient).query(`SHOW BINARY LOGS`)) as unknown as [Array<{ Log_name: string; File_size: number | string }>];
        this.#binlogFiles = files.map((f) => ({ file: f.Log_name, size: Number(f.File_size) }));
        // Nothing waiting to be written and no transaction open: all that was read is in the log
        // (or holds nothing for it).
        if (!flushing && queued.length === 0 && !open && !held && this.#received) this.#durable = this.#received;
      } catch {
        this.#binlogFiles = undefined;
      } finally {
        asking = false;
      }
    };
    void ask();
    const lagTimer = setInterval(() => void ask(), 2000);
    const poll = setInterval(() => {
      // A low watermark the stream went past without seeing: the binlog does not carry the
      // watermark table's changes (binlog_do_db / binlog_ignore_db), and the snapshot would wait forever.
      const window = this.#driver?.window;
      if (window?.phase === 'waiting' && window.lowAt && this.#received && compare(this.#received, window.lowAt) >= 0 && !held) {
        const marks = this.#config.watermarkTable;
        failure ??= new DefiniteError('mysql_watermark_unseen', `source ${this.#config.name}: the watermark Sluice wrote to ${marks.schema}.${marks.name} is not in the binlog (it reached ${window.lowAt.file}:${window.lowAt.position} without it): the server does not log that database (binlog_do_db or binlog_ignore_db)`, `put the watermark table in a database the binlog records (WITH (watermark_table = …)), or use snapshot = 'consistent' on MariaDB`);
      }
      if (failure) ended(failure);
      // Waiters whose target was passed while records were still being written (and, during a
      // watermark snapshot, once it is over: before, the log holds only part of the tables).
      if (!flushing && queued.length === 0 && !held && !this.#driver) {
        for (const waiter of this.#waiters) {
          if (this.#received && compare(this.#received, waiter.target) >= 0) {
            this.#waiters.delete(waiter);
            waiter.resolve();
          }
        }
      }
    }, 20);
    try {
      const reason = await done;
      if (signal.aborted) return;
      if (reason instanceof DefiniteError && reason.code === 'mysql_binlog_gone') throw new DefiniteError(reason.code, `source ${this.#config.name}: ${reason.message}`, `take a new snapshot: run sluice up (or run) with --resnapshot ${this.#config.name} once; keep binlogs longer than Sluice may be stopped (binlog_expire_logs_seconds)`);
      throw reason;
    } finally {
      clearInterval(poll);
      clearInterval(lagTimer);
      this.#binlogFiles = undefined;
      void lagClient.then((client) => client.end()).catch(() => {});
      signal.removeEventListener('abort', abort);
      chunksStop.abort();
      await chunks;
      await stream.close();
      stopped = true;
      // What was received before the stop is written; nothing is appended after run() returns.
      while (flushing) await flushing;
    }
  }
}

/** A primary key's values as the server gave them, JSON-safe (binary as {hex}), for WHERE … > …. */
type KeyValue = string | number | null | { hex: string };

interface SnapshotResume {
  mode: 'consistent' | 'watermark';
  /** The snapshot's start record's position, and the last record's (a watermark snapshot streams on from it). */
  start: BinlogPosition;
  at: BinlogPosition;
  /** The server's GTID state at a consistent snapshot's position (MariaDB). */
  gtidState?: string;
  /** Tables read whole; rows read per table. */
  done: Set<string>;
  rows: Map<string, number>;
  /** The table being read, and the key it was read up to. */
  table?: string;
  after?: KeyValue[];
}

type Snapshot = NonNullable<MysqlCaptureStats['snapshot']>;

/** One chunk of a watermark snapshot, between its low and high watermark. */
interface ChunkWindow {
  table: string;
  low: string;
  high: string;
  /** Where the server's binlog stood just after the low mark was written. */
  lowAt?: BinlogPosition;
  /** waiting for the low mark in the binlog, open (changes noted), closing (high mark read). */
  phase: 'waiting' | 'open' | 'closing';
  /** Keys the binlog changed while the window was open. */
  changed: Set<string>;
  rows: Row[];
  /** The columns the rows were read with. */
  columns: MysqlColumn[];
  done: number;
  after?: KeyValue[];
  complete: boolean;
  resolve: () => void;
}

interface WatermarkDriver {
  progress: Snapshot;
  resume: SnapshotResume | undefined;
  window?: ChunkWindow;
  /** Writes the end record in the stream's order (set by #stream). */
  finish?: () => void;
}

function positionOf(record: { position: Record<string, unknown> }): BinlogPosition {
  return { file: String(record.position.file), position: Number(record.position.pos) };
}

/** A row's primary key as one string (the same for a snapshot row and a binlog row, by name). */
function keyOf(columns: readonly MysqlColumn[], row: Row): string {
  const key: string[] = [];
  columns.forEach((c, i) => {
    if (c.key) key.push(c.name, String(row[i]));
  });
  return JSON.stringify(key);
}

function sourceTable(name: string, columns: readonly MysqlColumn[]): SourceTable {
  return { name, columns: columns.map((c) => [c.name, typeLabel(c.type)]) };
}

function keyValues(keys: readonly MysqlColumn[], values: Record<string, unknown>): KeyValue[] {
  return keys.map((k) => {
    const value = values[k.name];
    if (value === null || value === undefined) return null;
    if (Buffer.isBuffer(value)) return { hex: value.toString('hex') };
    return typeof value === 'number' ? value : String(value);
  });
}

/** ` WHERE (a, b) > (…)` spelled out so that every server uses the key's index, and its values. */
function keysetWhere(keys: readonly MysqlColumn[], after: KeyValue[] | undefined): [string, unknown[]] {
  if (!after) return ['', []];
  const values = after.map((v) => (v !== null && typeof v === 'object' ? Buffer.from(v.hex, 'hex') : v));
  const terms: string[] = [];
  const params: unknown[] = [];
  for (let i = 0; i < keys.length; i++) {
    const parts = keys.slice(0, i).map((k, j) => {
      params.push(values[j]);
      return `${quoteName(k.name)} = ?`;
    });
    parts.push(`${quoteName(keys[i]!.name)} > ?`);
    params.push(values[i]);
    terms.push(`(${parts.join(' AND ')})`);
  }
  return [` WHERE ${terms.join(' OR ')}`, params];
}

function quoteName(name: string): string {
  return `\`${name.replaceAll('`', '``')}\``;
}

function quoteTable(table: { schema: string; name: string }): string {
  return `${quoteName(table.schema)}.${quoteName(table.name)}`;
}

function text(value: RawValue | undefined): string | undefined {
  if (value === null || value === undefined) return undefined;
  return typeof value === 'string' ? value : value instanceof Uint8Array ? Buffer.from(value).toString('utf8') : String(value);
}

/** Rows as mysql2 returns them from a SELECT, as Sluice rows of `columns`. */
function snapshotRows(table: string, columns: readonly MysqlColumn[], rows: Array<Record<string, unknown>>): Row[] {
  return rows.map((values) => columns.map((column) => mysqlValue(snapshotValue(values[column.name], column), column, table)));
}

/** A value as mysql2 returns it from a SELECT, in the binlog's terms (mysqlValue reads both). */
function snapshotValue(value: unknown, column: MysqlColumn): RawValue {
  if (value === null || value === undefined) return null;
  if (Buffer.isBuffer(value)) {
    if (column.native.startsWith('bit')) return BigInt(`0x${value.toString('hex') || '0'}`);
    return Uint8Array.from(value);
  }
  if (column.type.kind === 'timestamptz' && typeof value === 'string') return `${value}+00`;
  if (typeof value === 'object') return JSON.stringify(value); // JSON columns on MySQL
  return value as string | number;
}
