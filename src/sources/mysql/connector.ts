/**
 * A MySQL/MariaDB source captured into the log: one topic `source.NAME`, a snapshot and then one
 * record per committed transaction, in binlog order — the record format of records.ts, shared
 * with the PostgreSQL source, so the runtime applies both alike.
 *
 *   const capture = new MysqlCapture(config, log);
 *   await capture.run(signal);          // snapshot (first time), then stream until aborted
 *
 * - **Snapshot** (MariaDB): `START TRANSACTION WITH CONSISTENT SNAPSHOT` gives an InnoDB read view
 *   and, in the same instant, the binlog position it matches (`binlog_snapshot_file` /
 *   `_position`), without FLUSH TABLES WITH READ LOCK. The tables are read in primary-key order,
 *   in chunks; streaming starts at that position. An interrupted snapshot starts over.
 * - **Transactions**: a GTID event opens one, row events fill it, XID (or a COMMIT query) closes
 *   it; the record's position is where the next event starts (`file`, `pos`) and its GTID. On
 *   restart the stream resumes at the last record's position, so nothing is doubled or lost.
 * - **Schema**: records name their tables' columns with the types the server describes
 *   (information_schema); a DDL statement on a captured table has them described again, so rows
 *   after it carry the new columns. Row values are matched to columns by name
 *   (binlog_row_metadata=FULL).
 * - A purged binlog (error 1236) stops the capture with a definite error naming the fix.
 */

import mysql from 'mysql2/promise';
import { DefiniteError, TransientError, type Row } from '../../core/index.ts';
import type { Log } from '../../log/index.ts';
import { typeLabel } from '../../sql/index.ts';
import { DELETE, offsetRanges, SNAPSHOT_END, SNAPSHOT_ROWS, SNAPSHOT_START, TRANSACTION, TRANSACTION_PART, TRUNCATE, UPSERT, type SourceChange, type SourceRecord, type SourceTable } from '../records.ts';
import type { BinlogEvent, RawRow, RawValue } from './binlog.ts';
import type { MysqlSourceConfig } from './config.ts';
import { mysqlPreflight, mysqlPreflightError } from './preflight.ts';
import { describeMysqlTables, mysqlValue, type MysqlColumn } from './schema.ts';
import { BinlogStream, type BinlogPosition } from './stream.ts';
import { SourceTopic, type SourceTopicOptions } from '../topic.ts';

export type MysqlCaptureConfig = MysqlSourceConfig;

export type MysqlCaptureOptions = SourceTopicOptions;

export interface MysqlCaptureStats {
  phase: 'starting' | 'snapshot' | 'streaming';
  since?: number;
  snapshot?: { table: string; tablesDone: number; tables: number; rows: number; estimated: number; startedAt: number; endedAt?: number };
  rows: number;
  /** Where the stream has read to. */
  position?: BinlogPosition;
}

const CHUNK_ROWS = 10_000;
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
  readonly #waiters = new Set<{ target: BinlogPosition; resolve: () => void }>();

  constructor(config: MysqlCaptureConfig, log: Log, options: MysqlCaptureOptions = {}) {
    this.#config = config;
    this.topic = `source.${config.name}`;
    this.#topic = new SourceTopic(log, this.topic, config.name, options);
  }

  get stats(): MysqlCaptureStats {
    return this.#stats;
  }

  /** Resolves once everything the server had written to its binlog at the call is in the log. */
  async caughtUp(timeoutMs = 120_000): Promise<void> {
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
    const last = await this.#topic.open();
    // Every problem on the server, each with its fix, before anything is read.
    const error = mysqlPreflightError(this.#config, await mysqlPreflight(this.#config));
    if (error) throw error;
    await this.#describe();
    let start: BinlogPosition;
    if (last && (last.kind === TRANSACTION || last.kind === SNAPSHOT_END)) start = { file: String(last.position.file), position: Number(last.position.pos) };
    else start = await this.#snapshot(signal);
    this.#logged = start;
    if (!signal.aborted) await this.#stream(start, signal);
  }

  async #describe(): Promise<void> {
    const described = await describeMysqlTables(this.#config.url, this.#config.tables, this.#config.name);
    this.#schemas = new Map(described.map((t) => [t.name, t.columns]));
  }

  #sourceTable(name: string): SourceTable {
    return { name, columns: this.#schemas.get(name)!.map((c) => [c.name, typeLabel(c.type)]) };
  }

  async #serverPosition(): Promise<BinlogPosition> {
    const connection = await mysql.createConnection({ uri: this.#config.url });
    try {
      const [rows] = (await connection.query(`SHOW MASTER STATUS`)) as unknown as [Array<{ File: string; Position: number }>];
      if (!rows[0]) throw new DefiniteError('mysql_binlog_off', `source ${this.#config.name}: the server's binary log is off`, 'start it with log_bin (and binlog_format=ROW)');
      return { file: rows[0].File, position: Number(rows[0].Position) };
    } finally {
      await connection.end().catch(() => {});
    }
  }

  /** Reads every table as of one consistent snapshot; returns the binlog position it matches. */
  async #snapshot(signal: AbortSignal): Promise<BinlogPosition> {
    const connection = await mysql.createConnection({ uri: this.#config.url, dateStrings: true, supportBigNumbers: true, bigNumberStrings: true, decimalNumbers: false, timezone: 'Z' });
    try {
      await connection.query(`SET SESSION time_zone = '+00:00'`);
      await connection.query(`SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ`);
      await connection.query(`START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY`);
      const [status] = (await connection.query(`SHOW STATUS LIKE 'binlog_snapshot_%'`)) as unknown as [Array<{ Variable_name: string; Value: string }>];
      const value = (name: string) => status.find((s) => s.Variable_name.toLowerCase() === name)?.Value;
      const file = value('binlog_snapshot_file');
      const position = value('binlog_snapshot_position');
      if (!file || !position) throw new DefiniteError('not_built', `source ${this.#config.name}: the server gives no binlog position for a consistent snapshot (binlog_snapshot_file): MySQL's lock-free snapshot is not built yet`, 'use MariaDB, or declare a table and feed it over HTTP meanwhile');
      const start: BinlogPosition = { file, position: Number(position) };
      await this.#topic.append([{ kind: SNAPSHOT_START, position: { file: start.file, pos: start.position }, tables: [], changes: [] }]);
      const progress = (this.#stats.snapshot = { table: '', tablesDone: 0, tables: this.#config.tables.length, rows: 0, estimated: 0, startedAt: Date.now() } as NonNullable<MysqlCaptureStats['snapshot']>);
      this.#stats.phase = 'snapshot';
      this.#stats.since = Date.now();
      for (const table of this.#config.tables) {
        const name = `${table.schema}.${table.name}`;
        const columns = this.#schemas.get(name)!;
        const keys = columns.filter((c) => c.key).map((c) => `\`${c.name.replaceAll('`', '``')}\``);
        const [[estimate]] = (await connection.query(`SELECT TABLE_ROWS AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?`, [table.schema, table.name])) as unknown as [Array<{ n: number | null }>];
        progress.estimated += Number(estimate?.n ?? 0);
        progress.table = name;
        const qualified = `\`${table.schema.replaceAll('`', '``')}\`.\`${table.name.replaceAll('`', '``')}\``;
        const described = this.#sourceTable(name);
        let done = 0;
        let chunk: Row[] = [];
        const flush = async () => {
          await this.#topic.append([{ kind: SNAPSHOT_ROWS, position: { file: start.file, pos: start.position, table: name, done }, tables: [described], changes: chunk.map((row) => ({ table: 0, op: UPSERT, row })) }]);
          chunk = [];
        };
        // Rows stream from the server; chunks of CHUNK_ROWS become records.
        const raw = (connection as unknown as { connection: RowStreamConnection }).connection;
        const rows = raw.query(`SELECT * FROM ${qualified}${keys.length ? ` ORDER BY ${keys.join(', ')}` : ''}`).stream();
        // A streaming query's connection failing reaches the connection, not the stream: end the
        // stream with it, or the loop below would wait forever (a server killed mid-snapshot).
        const onError = (error: Error) => rows.destroy(error);
        const onEnd = () => rows.destroy(new TransientError('mysql_connection', `source ${this.#config.name}: the snapshot connection ended`, 'Sluice reconnects and starts the snapshot again'));
        raw.on('error', onError);
        raw.on('end', onEnd);
        signal.addEventListener('abort', onEnd, { once: true });
        try {
        for await (const values of rows) {
          if (signal.aborted) return start;
          chunk.push(columns.map((column) => mysqlValue(snapshotValue(values[column.name], column), column, name)));
          done++;
          progress.rows++;
          if (chunk.length >= CHUNK_ROWS) await flush();
        }
        } catch (error) {
          if (signal.aborted) return start;
          throw error;
        } finally {
          raw.off('error', onError);
          raw.off('end', onEnd);
          signal.removeEventListener('abort', onEnd);
        }
        if (chunk.length > 0 || done === 0) await flush();
        progress.tablesDone++;
      }
      await connection.query('COMMIT');
      progress.endedAt = Date.now();
      await this.#topic.append([{ kind: SNAPSHOT_END, position: { file: start.file, pos: start.position }, tables: [], changes: [] }]);
      return start;
    } finally {
      await connection.end().catch(() => {});
    }
  }

  async #stream(start: BinlogPosition, signal: AbortSignal): Promise<void> {
    type Pending = { table: string; change: Omit<SourceChange, 'table'> };
    /** A part queued for the log; its offset is set when it is appended (records.ts). */
    type Part = { offset?: number };
    /** The transaction being read: its changes so far, written as parts every SPILL_CHANGES. */
    let open: { gtid: string; changes: Pending[]; parts: Part[]; time: number } | undefined;
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
      const index = new Map<string, number>();
      const changes: SourceChange[] = pending.map(({ table, change }) => {
        let i = index.get(table);
        if (i === undefined) {
          index.set(table, (i = tables.length));
          tables.push(this.#sourceTable(table));
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
      // Sent again after a restart (parts it spilled again are named by no commit: never applied).
      if (this.#logged && compare(next, this.#logged) <= 0) {
        open = undefined;
        return;
      }
      this.#logged = next;
      const position = { file: next.file, pos: next.position, gtid: open.gtid, time: open.time };
      if (open.parts.length > 0) {
        spill();
        enqueue({ record: { kind: TRANSACTION, position, tables: [], changes: [] }, parts: open.parts });
      } else if (open.changes.length > 0) enqueue({ record: { kind: TRANSACTION, position, ...tablesOf(open.changes) } });
      open = undefined;
    };
    const rowOf = (table: string, raw: RawRow, names: Array<string | null>): Row => {
      const columns = this.#schemas.get(table)!;
      return columns.map((column) => {
        const i = names.indexOf(column.name);
        return i < 0 ? null : mysqlValue(raw[i] ?? null, column, table);
      });
    };
    // After a DDL statement, events wait until the tables are described again, so the rows that
    // follow it are read with the new columns.
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
            open = { gtid: event.gtid, changes: [], parts: [], time: event.header.timestamp * 1000 };
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
                  open = { gtid: '', changes: [{ table: name, change: { op: TRUNCATE, row: [] } }], parts: [], time: event.header.timestamp * 1000 };
                  commit(next);
                }
              } else describeAgain();
            }
            break;
          }
          case 'rows': {
            const name = `${event.table.schema}.${event.table.table}`;
            if (!this.#schemas.has(name) || !open) break;
            const names = event.table.columns.map((c) => c.name);
            const columns = this.#schemas.get(name)!;
            const keyOf = (row: Row) => JSON.stringify(columns.map((c, i) => (c.key ? String(row[i]) : '')));
            event.rows.forEach((raw, r) => {
              const row = rowOf(name, raw, names);
              if (event.op === 'delete') add({ table: name, change: { op: DELETE, row } });
              else if (event.op === 'update') {
                const before = rowOf(name, event.before![r]!, names);
                if (keyOf(before) !== keyOf(row)) add({ table: name, change: { op: DELETE, row: before } });
                add({ table: name, change: { op: UPSERT, row } });
              } else add({ table: name, change: { op: UPSERT, row } });
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
    this.#stats.phase = 'streaming';
    this.#stats.since = Date.now();
    const abort = () => ended(new Error('aborted'));
    signal.addEventListener('abort', abort, { once: true });
    if (signal.aborted) abort(); // aborted while the stream was starting
    const poll = setInterval(() => {
      if (failure) ended(failure);
      // Waiters whose target was passed while records were still being written.
      if (!flushing && queued.length === 0 && !held) {
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
      if (!signal.aborted) throw reason;
    } finally {
      clearInterval(poll);
      signal.removeEventListener('abort', abort);
      await stream.close();
      stopped = true;
      // What was received before the stop is written; nothing is appended after run() returns.
      while (flushing) await flushing;
    }
  }
}

interface RowStreamConnection {
  query(sql: string): { stream(): AsyncIterable<Record<string, unknown>> & { destroy(error?: Error): void } };
  on(event: 'error' | 'end', listener: (error: Error) => void): void;
  off(event: 'error' | 'end', listener: (error: Error) => void): void;
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
