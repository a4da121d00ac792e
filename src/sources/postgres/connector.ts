/**
 * A PostgreSQL source captured into the log (wiring only: config.ts, preflight.ts, snapshot.ts,
 * stream.ts, schema.ts do the work). One topic `source.NAME`, one record per committed
 * transaction, in commit order (records.ts).
 *
 *   const capture = new PostgresCapture(config, log);
 *   await capture.run(signal);          // snapshot (first time), then stream until aborted
 *
 * Exactly once into the log:
 * - A transaction is appended when its commit arrives, and its commit LSN is confirmed to
 *   PostgreSQL only after the append is durable.
 * - On restart the last record's position says where to resume; transactions PostgreSQL sends
 *   again (committed at or before it: appended, but not yet confirmed when the process died) are
 *   skipped.
 * - A snapshot interrupted before its end record is started over, with a fresh slot, after a new
 *   start record (which tells whoever applies the log to forget the unfinished one).
 */

import pg from 'pg';
import { DefiniteError, type Row } from '../../core/index.ts';
import type { Log, PersistMode } from '../../log/index.ts';
import { quoteIdentifier, typeLabel } from '../../sql/index.ts';
import { decodeSourceRecord, DELETE, encodeSourceRecord, SNAPSHOT_END, SNAPSHOT_ROWS, SNAPSHOT_START, TRANSACTION, TRUNCATE, UPSERT, type SourceChange, type SourceRecord, type SourceTable } from '../records.ts';
import type { PostgresSourceConfig } from './config.ts';
import { formatLsn, parseLsn, type ColumnValue, type PgOutputMessage } from './pgoutput.ts';
import { preflight, preflightError } from './preflight.ts';
import { mapColumn, readValue, UNCHANGED, type ColumnMapping } from './schema.ts';
import { createSlotWithSnapshot, readSnapshot } from './snapshot.ts';
import { ReplicationStream } from './stream.ts';

export interface CaptureProgress {
  phase: 'snapshot' | 'streaming';
  table?: string;
  rows: number;
  estimated?: number;
  /** The last commit LSN in the log. */
  lsn?: string;
}

export interface CaptureOptions {
  persist?: PersistMode;
  onProgress?: (progress: CaptureProgress) => void;
  /** Each record once durable in the log (for status and measuring). */
  onAppend?: (record: SourceRecord) => void;
}

interface Relation {
  name: string;
  columns: ColumnMapping[];
}

export class PostgresCapture {
  readonly topic: string;
  readonly #config: PostgresSourceConfig;
  readonly #log: Log;
  readonly #options: CaptureOptions;
  readonly #relations = new Map<number, Relation>();
  /** The commit LSN of the last transaction in the log (what PostgreSQL may be told). */
  #logged = 0n;
  /** Sync markers asked for (caughtUp) and not yet seen in the stream, by token. */
  readonly #syncs = new Map<string, () => void>();
  /** Resolves once every transaction received so far is durable in the log. */
  #drained: () => Promise<void> = () => Promise.resolve();
  #streamingSince: Promise<void> | undefined;
  #streamingStarted: (() => void) | undefined;

  constructor(config: PostgresSourceConfig, log: Log, options: CaptureOptions = {}) {
    this.#config = config;
    this.#log = log;
    this.#options = options;
    this.topic = `source.${config.name}`;
  }

  /**
   * Resolves once everything committed in PostgreSQL before the call is durable in the log (a
   * non-transactional logical decoding message marks the point: transactions committed before it
   * stream before it). `sluice run` uses it to capture "everything available now".
   */
  async caughtUp(timeoutMs = 120_000): Promise<void> {
    this.#streamingSince ??= new Promise((resolve) => (this.#streamingStarted = resolve));
    await this.#streamingSince;
    const token = `${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`;
    const seen = new Promise<void>((resolve) => this.#syncs.set(token, resolve));
    const client = new pg.Client({ connectionString: this.#config.url });
    await client.connect();
    try {
      await client.query(`SELECT pg_logical_emit_message(false, 'sluice.sync', $1)`, [token]);
    } finally {
      await client.end().catch(() => {});
    }
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([seen, new Promise((_, reject) => (timer = setTimeout(() => reject(new DefiniteError('pg_sync_timeout', `source ${this.#config.name}: did not catch up with PostgreSQL within ${timeoutMs / 1000} s`, 'check the source in GET /v1/status')), timeoutMs)))]);
    } finally {
      clearTimeout(timer);
      this.#syncs.delete(token);
    }
    await this.#drained();
  }

  /** Captures until `signal` aborts; rejects on an error that retrying would not cure. */
  async run(signal: AbortSignal): Promise<void> {
    await this.#log.createTopic(this.topic, { partitions: 1 });
    const last = await this.#lastRecord();
    const report = await preflight(this.#config);
    // A slot this log's snapshot made is expected to exist; the others are not ours.
    const resuming = last !== undefined && (last.kind === SNAPSHOT_END || last.kind === TRANSACTION);
    const problems = report.problems.filter((p) => !(resuming && p.check === 'slots'));
    const error = preflightError(this.#config, { ...report, problems });
    if (error) throw error;
    if (!report.publicationExists) await this.#createPublication();
    let startLsn: bigint;
    if (resuming) {
      if (!report.slotExists) {
        throw new DefiniteError('pg_slot_missing', `source ${this.#config.name}: the replication slot "${this.#config.slot}" is gone (dropped, or the server was restored), so changes since ${String(last.position.lsn)} cannot be read`, `start the source afresh: move the data directory's log of topic ${this.topic} away to take a new snapshot`);
      }
      startLsn = parseLsn(String(last.position.lsn));
    } else {
      if (report.slotExists) {
        if (last === undefined) throw new DefiniteError('pg_slot_exists', `source ${this.#config.name}: a replication slot "${this.#config.slot}" exists already, but this log holds no snapshot taken with it`, `name another slot in WITH (slot = …), or drop it if it is a leftover: SELECT pg_drop_replication_slot('${this.#config.slot}')`);
        // Our own interrupted snapshot: start over from a fresh slot.
        await this.#dropSlot();
      }
      startLsn = await this.#snapshot(signal);
    }
    this.#logged = startLsn;
    if (!signal.aborted) await this.#stream(startLsn, signal);
  }

  async #lastRecord(): Promise<SourceRecord | undefined> {
    const [end] = await this.#log.endOffsets(this.topic);
    if (!end) return undefined;
    const { records } = await this.#log.read(this.topic, 0, end - 1, { maxRecords: 1 });
    const record = records[0];
    return record?.value ? decodeSourceRecord(record.value, `${this.topic} offset ${record.offset}`) : undefined;
  }

  async #append(record: SourceRecord): Promise<void> {
    await this.#appendAll([record]);
  }

  /** Records appended as one batch: all durable, or none. */
  async #appendAll(records: SourceRecord[]): Promise<void> {
    await this.#log.append(this.topic, 0, records.map((record) => ({ value: encodeSourceRecord(record) })), this.#options.persist ? { persist: this.#options.persist } : {});
    for (const record of records) this.#options.onAppend?.(record);
  }

  async #createPublication(): Promise<void> {
    const client = new pg.Client({ connectionString: this.#config.url });
    await client.connect();
    try {
      const tables = this.#config.tables.map((t) => `${quoteIdentifier(t.schema)}.${quoteIdentifier(t.name)}`).join(', ');
      await client.query(`CREATE PUBLICATION ${quoteIdentifier(this.#config.publication)} FOR TABLE ${tables}`);
    } catch (error) {
      throw new DefiniteError('pg_publication', `source ${this.#config.name}: the publication "${this.#config.publication}" could not be created: ${(error as Error).message}`, `create it as the tables' owner: CREATE PUBLICATION ${this.#config.publication} FOR TABLE …`);
    } finally {
      await client.end().catch(() => {});
    }
  }

  async #dropSlot(): Promise<void> {
    const client = new pg.Client({ connectionString: this.#config.url });
    await client.connect();
    try {
      await client.query(`SELECT pg_drop_replication_slot($1)`, [this.#config.slot]);
    } finally {
      await client.end().catch(() => {});
    }
  }

  /** Creates the slot and writes every table's rows as of its consistent point; returns that point. */
  async #snapshot(signal: AbortSignal): Promise<bigint> {
    const slot = await createSlotWithSnapshot(this.#config);
    try {
      const lsn = formatLsn(slot.consistentPoint);
      await this.#append({ kind: SNAPSHOT_START, position: { lsn }, tables: [], changes: [] });
      for await (const chunk of readSnapshot(this.#config, slot.snapshotName)) {
        if (signal.aborted) return slot.consistentPoint;
        const table: SourceTable = { name: chunk.table, columns: chunk.columns.map((c) => [c.name, typeLabel(c.type)]) };
        await this.#append({ kind: SNAPSHOT_ROWS, position: { lsn, table: chunk.table, done: chunk.done }, tables: [table], changes: chunk.rows.map((row) => ({ table: 0, op: UPSERT, row })) });
        this.#options.onProgress?.({ phase: 'snapshot', table: chunk.table, rows: chunk.done, estimated: chunk.estimated });
      }
      await this.#append({ kind: SNAPSHOT_END, position: { lsn }, tables: [], changes: [] });
      return slot.consistentPoint;
    } finally {
      await slot.connection.end().catch(() => {});
    }
  }

  async #stream(startLsn: bigint, signal: AbortSignal): Promise<void> {
    // Transactions by xid while they arrive (protocol 2 streams large ones in segments).
    let current: { xid: number; changes: Array<{ relation: Relation; change: Omit<SourceChange, 'table'> }> } | undefined;
    // Streamed transactions by top-level xid; each change remembers the (sub)transaction that
    // made it, since a subtransaction's abort discards just its changes.
    const streamed = new Map<number, Array<{ relation: Relation; change: Omit<SourceChange, 'table'>; xid: number }>>();
    let streaming: number | undefined;
    let failure: Error | undefined;
    let work = Promise.resolve();
    let stream: ReplicationStream | undefined;
    const commit = (changes: Array<{ relation: Relation; change: Omit<SourceChange, 'table'> }>, endLsn: bigint, xid: number, time: bigint) => {
      // PostgreSQL sends again what was appended but not yet confirmed when the process died.
      if (endLsn <= this.#logged) return;
      this.#logged = endLsn;
      const tables: SourceTable[] = [];
      const index = new Map<Relation, number>();
      const out: SourceChange[] = changes.map(({ relation, change }) => {
        let i = index.get(relation);
        if (i === undefined) {
          index.set(relation, (i = tables.length));
          tables.push({ name: relation.name, columns: relation.columns.map((c) => [c.name, typeLabel(c.type)]) });
        }
        return { table: i, ...change };
      });
      const record: SourceRecord = { kind: TRANSACTION, position: { lsn: formatLsn(endLsn), xid, time: String(time) }, tables, changes: out };
      queued.push({ record, endLsn });
      if (!flushing) {
        flushing = true;
        work = flush().finally(() => (flushing = false));
        work.catch((error: Error) => (failure ??= error));
      }
    };
    // Transactions that commit while an append is being made durable go together in the next
    // append (one batch, one sync): a stream of small transactions is not one sync each.
    const queued: Array<{ record: SourceRecord; endLsn: bigint }> = [];
    let flushing = false;
    const flush = async () => {
      while (queued.length > 0) {
        const batch = queued.splice(0, queued.length);
        await this.#appendAll(batch.map((b) => b.record));
        const last = batch.at(-1)!.endLsn;
        stream?.confirm(last);
        this.#options.onProgress?.({ phase: 'streaming', rows: batch.reduce((sum, b) => sum + b.record.changes.length, 0), lsn: formatLsn(last) });
      }
    };
    type Pending = { relation: Relation; change: Omit<SourceChange, 'table'> };
    const rowOf = (relation: Relation, tuple: ColumnValue[], op: 1 | 2): Pending => {
      const unchanged: number[] = [];
      const row: Row = relation.columns.map((column, i) => {
        const value = readValue(tuple[i] ?? ({ kind: 'null' } as ColumnValue), column, relation.name);
        if (value === UNCHANGED) {
          unchanged.push(i);
          return null;
        }
        return value;
      });
      return { relation, change: { op, ...(unchanged.length ? { unchanged } : {}), row } };
    };
    /** A change's entries: an update that sends the old key (its key changed) or the old row (REPLICA IDENTITY FULL) deletes that first. */
    const changesOf = (message: PgOutputMessage): Pending[] => {
      if (message.type !== 'insert' && message.type !== 'update' && message.type !== 'delete') return [];
      const relation = this.#relations.get(message.relationOid);
      if (!relation) throw new DefiniteError('pg_protocol', `a change to relation ${message.relationOid} arrived before its Relation message`);
      if (message.type === 'delete') return [rowOf(relation, message.oldTuple, DELETE)];
      if (message.type === 'update' && message.oldTuple) return [rowOf(relation, message.oldTuple, DELETE), rowOf(relation, message.newTuple, UPSERT)];
      return [rowOf(relation, message.newTuple, UPSERT)];
    };
    const onMessage = (message: PgOutputMessage) => {
      try {
        switch (message.type) {
          case 'begin':
            current = { xid: message.xid, changes: [] };
            return;
          case 'relation':
            this.#relations.set(message.relationOid, { name: `${message.namespace}.${message.name}`, columns: message.columns.map(mapColumn) });
            return;
          case 'commit':
            if (current) commit(current.changes, message.endLsn, current.xid, message.commitTime);
            current = undefined;
            return;
          case 'message': {
            if (message.prefix === 'sluice.sync') this.#syncs.get(Buffer.from(message.content).toString())?.();
            return;
          }
          case 'streamStart':
            streaming = message.xid;
            return;
          case 'streamStop':
            streaming = undefined;
            return;
          case 'streamCommit': {
            commit(streamed.get(message.xid) ?? [], message.endLsn, message.xid, message.commitTime);
            streamed.delete(message.xid);
            return;
          }
          case 'streamAbort': {
            if (message.subXid === message.xid) streamed.delete(message.xid);
            else streamed.set(message.xid, (streamed.get(message.xid) ?? []).filter((entry) => entry.xid !== message.subXid));
            return;
          }
          default: {
            let entries: Pending[] = [];
            if (message.type === 'truncate') {
              for (const oid of message.relationOids) {
                const relation = this.#relations.get(oid);
                if (relation) entries.push({ relation, change: { op: TRUNCATE, row: [] } });
              }
            } else entries = changesOf(message);
            if (entries.length === 0) return;
            const xid = (message as { xid?: number }).xid;
            if (xid !== undefined && streaming !== undefined) {
              const list = streamed.get(streaming) ?? [];
              for (const entry of entries) list.push({ ...entry, xid });
              streamed.set(streaming, list);
            } else current?.changes.push(...entries);
          }
        }
      } catch (error) {
        failure ??= error as Error;
      }
    };
    let ended: (error: Error) => void;
    const done = new Promise<Error>((resolve) => (ended = resolve));
    stream = await ReplicationStream.start({ url: this.#config.url, slot: this.#config.slot, publication: this.#config.publication, startLsn, onMessage, onError: (error) => ended(error) });
    this.#drained = async () => {
      while (flushing || queued.length > 0) await work.catch(() => {});
      if (failure) throw failure;
    };
    if (this.#streamingStarted) this.#streamingStarted();
    else this.#streamingSince = Promise.resolve();
    const abort = () => ended(new Error('aborted'));
    signal.addEventListener('abort', abort, { once: true });
    const poll = setInterval(() => {
      if (failure) ended(failure);
    }, 50);
    try {
      const reason = await done;
      if (!signal.aborted) throw reason;
    } finally {
      clearInterval(poll);
      signal.removeEventListener('abort', abort);
      await work.catch(() => {});
      await stream.close();
    }
  }
}
