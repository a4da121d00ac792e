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
 * - A snapshot interrupted before its end record continues after the last primary key it wrote
 *   (snapshot.ts says why that converges), as long as the slot still stands at the snapshot's
 *   point. Otherwise (a table without a primary key, a slot moved or gone) it starts over with a
 *   fresh slot, after a new start record that tells whoever applies the log to forget the
 *   unfinished one.
 * - Records carry the server's system identifier and timeline; a resume on another server, or
 *   another timeline, an invalidated slot, or a server whose WAL ends before the log, is refused.
 * - A transaction larger than SPILL_CHANGES is written in parts as it arrives (records.ts).
 */

import pg from 'pg';
import { pgClient, transient } from './client.ts';
import { DefiniteError, TransientError, type Row } from '../../core/index.ts';
import type { Log } from '../../log/index.ts';
import { quoteIdentifier, typeLabel } from '../../sql/index.ts';
import { DELETE, offsetRanges, SNAPSHOT_END, SNAPSHOT_ROWS, SNAPSHOT_START, TRANSACTION, TRANSACTION_PART, TRUNCATE, UPSERT, type SourceChange, type SourceRecord, type SourceTable } from '../records.ts';
import type { PostgresSourceConfig } from './config.ts';
import { formatLsn, parseLsn, POSTGRES_EPOCH_MICROS, type ColumnValue, type PgOutputMessage } from './pgoutput.ts';
import { preflight, preflightError, type PreflightReport } from './preflight.ts';
import { mapColumn, readValue, UNCHANGED, type ColumnMapping } from './schema.ts';
import { createSlotWithSnapshot, readSnapshot, type SnapshotResume } from './snapshot.ts';
import { ReplicationStream } from './stream.ts';
import { SourceTopic, type SourceCaptureOptions } from '../topic.ts';

export interface CaptureProgress {
  phase: 'snapshot' | 'streaming';
  table?: string;
  rows: number;
  estimated?: number;
  /** The last commit LSN in the log. */
  lsn?: string;
}

/** What the capture is doing, for status and metrics (read it, don't keep it). */
export interface CaptureStats {
  phase: 'starting' | 'snapshot' | 'streaming';
  /** When the capture entered its phase (ms since 1970). */
  since?: number;
  snapshot?: { table: string; tablesDone: number; tables: number; rows: number; estimated: number; startedAt: number; endedAt?: number };
  /** Changes captured into the log since the capture started streaming. */
  rows: number;
  /** The WAL position of the last message received. */
  receivedLsn: bigint;
  /** Commit time (ms since 1970) of the last transaction durable in the log. */
  committedTime?: number;
  /** Commit time of the oldest transaction received but not yet durable in the log. */
  pendingSince?: number;
}

/** Changes of a transaction buffered before they are written as a part (records.ts). */
const SPILL_CHANGES = 10_000;
/** Changes waiting for the log beyond which reading from PostgreSQL pauses. */
const BACKLOG_CHANGES = 100_000;
const POSTGRES_EPOCH_MILLIS = POSTGRES_EPOCH_MICROS / 1000n;


export interface CaptureOptions extends SourceCaptureOptions {
  onProgress?: (progress: CaptureProgress) => void;
}

interface Relation {
  name: string;
  columns: ColumnMapping[];
}

export class PostgresCapture {
  readonly topic: string;
  readonly #config: PostgresSourceConfig;
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
  /** The source's topic: this capture is its only writer. */
  readonly #topic: SourceTopic;
  /** The last record in the log when the capture started (where it resumes, and from which server). */
  #last: SourceRecord | undefined;
  readonly #stats: CaptureStats = { phase: 'starting', rows: 0, receivedLsn: 0n };
  #stream_: ReplicationStream | undefined;
  #serverLsn: bigint | undefined;

  /** A new snapshot is to be taken whatever the log holds (until its start record is written). */
  #resnapshot: boolean;

  constructor(config: PostgresSourceConfig, log: Log, options: CaptureOptions = {}) {
    this.#config = config;
    this.#options = options;
    this.#resnapshot = options.resnapshot === true;
    this.topic = `source.${config.name}`;
    this.#topic = new SourceTopic(log, this.topic, config.name, options);
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
    const client = pgClient({ connectionString: this.#config.url });
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

  get stats(): CaptureStats {
    return this.#stats;
  }

  /**
   * Bytes of WAL the server had written, when last asked (every 2 s while streaming), beyond what
   * is durable in Sluice's log or confirmed as holding nothing for it.
   */
  get lagBytes(): number | undefined {
    const stream = this.#stream_;
    if (!stream || this.#serverLsn === undefined) return undefined;
    const behind = this.#serverLsn - stream.confirmed;
    return behind > 0n ? Number(behind) : 0;
  }

  /**
   * Captures until `signal` aborts; rejects with a TransientError when retrying may cure it (the
   * connection failed, PostgreSQL restarted) and a DefiniteError when it needs a fix.
   */
  async run(signal: AbortSignal): Promise<void> {
    try {
      await this.#run(signal);
    } catch (error) {
      throw transient(error as Error, this.#config.name);
    }
  }

  async #run(signal: AbortSignal): Promise<void> {
    this.#stats.phase = 'starting';
    this.#stats.since = Date.now();
    const opened = await this.#topic.open();
    // Taking a new snapshot (--resnapshot), the log is as good as empty: the slot is made afresh.
    const last = (this.#last = this.#resnapshot ? undefined : opened && { ...opened, changes: [] });
    const report = await preflight(this.#config);
    // A slot this log's snapshot made is expected to exist; the others are not ours.
    const resuming = last !== undefined && last.kind !== SNAPSHOT_START && last.kind !== SNAPSHOT_ROWS;
    const problems = report.problems.filter((p) => !((resuming || (this.#resnapshot && report.slotExists)) && p.check === 'slots'));
    const error = preflightError(this.#config, { ...report, problems });
    // A slot still in use is most often this process's own connection from before a restart,
    // which PostgreSQL is about to notice is gone: worth retrying.
    if (error && problems.every((p) => p.check === 'slot_active')) throw new TransientError('pg_slot_active', error.message, error.hint);
    if (error) throw error;
    if (!report.publicationExists) await this.#createPublication();
    let startLsn: bigint;
    if (resuming) {
      if (!report.slotExists) {
        throw new DefiniteError('pg_slot_missing', `source ${this.#config.name}: the replication slot "${this.#config.slot}" is gone (dropped, or the server was restored), so changes since ${String(last.position.lsn)} cannot be read`, `take a new snapshot: run sluice up (or run) with --resnapshot ${this.#config.name} once`);
      }
      // After the last transaction's commit, or the snapshot's point.
      startLsn = parseLsn(String(last.position.lsn));
      if (report.slot?.walStatus === 'lost') {
        throw new DefiniteError('pg_slot_invalidated', `source ${this.#config.name}: PostgreSQL invalidated the replication slot "${this.#config.slot}" (wal_status 'lost': the WAL it needed was removed, max_slot_wal_keep_size), so changes since ${formatLsn(startLsn)} cannot be read`, `take a new snapshot: run sluice up (or run) with --resnapshot ${this.#config.name} once (it drops the slot and makes it afresh); raise max_slot_wal_keep_size so it does not happen again`);
      }
      if (parseLsn(report.currentLsn) < startLsn) {
        throw new DefiniteError('pg_server_behind', `source ${this.#config.name}: PostgreSQL's WAL ends at ${report.currentLsn}, before ${formatLsn(startLsn)} already captured: the server was restored from an older backup, or this is another server`, `take a new snapshot: run sluice up (or run) with --resnapshot ${this.#config.name} once`);
      }
    } else if (this.#resnapshot) {
      if (report.slotExists) await this.#dropSlot();
      startLsn = await this.#snapshot(signal);
    } else {
      if (report.slotExists) {
        if (last === undefined) throw new DefiniteError('pg_slot_exists', `source ${this.#config.name}: a replication slot "${this.#config.slot}" exists already, but this log holds no snapshot taken with it`, `name another slot in WITH (slot = …), or drop it if it is a leftover: SELECT pg_drop_replication_slot('${this.#config.slot}')`);
        // Our own interrupted snapshot: continued where it stopped when it can be, else started
        // over from a fresh slot.
        const resume = await this.#snapshotResume(report);
        if (!resume) await this.#dropSlot();
        startLsn = await this.#snapshot(signal, resume);
      } else startLsn = await this.#snapshot(signal);
    }
    this.#logged = startLsn;
    if (!signal.aborted) await this.#stream(startLsn, signal);
  }

  /** The server streaming now must be the one the log was captured from, on the same timeline. */
  async #checkIdentity(systemId: string, timeline: number): Promise<void> {
    const recorded = this.#last?.position;
    if (!recorded || recorded.system === undefined) return;
    if (String(recorded.system) !== systemId) {
      throw new DefiniteError('pg_server_changed', `source ${this.#config.name}: ${this.#config.displayUrl} is another PostgreSQL server (system identifier ${systemId}) than the one this log was captured from (${String(recorded.system)}), so its changes cannot continue this log`, `point the source back at the original server, or take a new snapshot of this one: run sluice up (or run) with --resnapshot ${this.#config.name} once`);
    }
    if (Number(recorded.timeline) !== timeline) {
      throw new DefiniteError('pg_timeline_changed', `source ${this.#config.name}: PostgreSQL is on timeline ${timeline}, but this log was captured on timeline ${String(recorded.timeline)}: the server was restored or failed over, and changes after ${String(recorded.lsn)} may differ from what Sluice captured`, `take a new snapshot: run sluice up (or run) with --resnapshot ${this.#config.name} once`);
    }
  }

  async #append(record: SourceRecord): Promise<void> {
    await this.#topic.append([record]);
  }

  async #createPublication(): Promise<void> {
    const client = pgClient({ connectionString: this.#config.url });
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
    const client = pgClient({ connectionString: this.#config.url });
    await client.connect();
    try {
      await client.query(`SELECT pg_drop_replication_slot($1)`, [this.#config.slot]);
    } finally {
      await client.end().catch(() => {});
    }
  }

  /**
   * A Relation message: the table's columns as of the changes that follow. A change of columns
   * (ALTER TABLE … ADD / DROP / ALTER COLUMN) reaches the log with the next transaction, whose
   * record names its tables' columns; whoever applies the log decides what each view can absorb.
   */
  #relation(message: Extract<PgOutputMessage, { type: 'relation' }>): void {
    this.#relations.set(message.relationOid, { name: `${message.namespace}.${message.name}`, columns: message.columns.map(mapColumn) });
  }

  /**
   * Where the log's interrupted snapshot can continue, or undefined when it must start over: the
   * slot must still stand at the snapshot's point, and the table it was reading must have a
   * primary key (its chunks then record the last key read).
   */
  async #snapshotResume(report: PreflightReport): Promise<(SnapshotResume & { start: SourceRecord }) | undefined> {
    const chunks: SourceRecord[] = [];
    let start: SourceRecord | undefined;
    for (let offset = this.#topic.end - 1; offset >= 0 && !start; offset--) {
      const record = await this.#topic.header(offset);
      if (!record || (record.kind !== SNAPSHOT_ROWS && record.kind !== SNAPSHOT_START)) return undefined;
      if (record.kind === SNAPSHOT_START) start = { ...record, changes: [] };
      else chunks.unshift({ ...record, changes: [] });
    }
    if (!start || start.position.system === undefined) return undefined;
    const confirmed = report.slot?.confirmedFlush;
    if (!confirmed || parseLsn(confirmed) !== parseLsn(String(start.position.lsn))) return undefined;
    const skip = new Set<string>();
    for (const chunk of chunks) if (chunk.position.complete === true) skip.add(String(chunk.position.table));
    const last = chunks.at(-1);
    if (!last || last.position.complete === true) return { start, skip };
    if (!Array.isArray(last.position.after)) return undefined; // no primary key: no place to continue from
    return { start, skip, table: String(last.position.table), after: last.position.after as string[], done: Number(last.position.done) };
  }

  /**
   * Creates the slot and writes every table's rows as of its consistent point (or, resuming, the
   * rows not yet read, as of now); returns that point.
   */
  async #snapshot(signal: AbortSignal, resume?: SnapshotResume & { start: SourceRecord }): Promise<bigint> {
    // A start record before the slot exists says the slot is this log's (should the process die
    // before the next record), so a restart drops it and starts over instead of refusing it.
    if (!resume) await this.#append({ kind: SNAPSHOT_START, position: { slot: this.#config.slot, creating: true }, tables: [], changes: [] });
    this.#resnapshot = false;
    const slot = resume ? undefined : await createSlotWithSnapshot(this.#config);
    try {
      const consistentPoint = slot ? slot.consistentPoint : parseLsn(String(resume!.start.position.lsn));
      const lsn = formatLsn(consistentPoint);
      const identity = slot ? { system: slot.systemId, timeline: slot.timeline } : { system: resume!.start.position.system, timeline: resume!.start.position.timeline };
      if (resume) this.#last = resume.start; // its server identity is checked when streaming starts
      else await this.#append({ kind: SNAPSHOT_START, position: { lsn, ...identity }, tables: [], changes: [] });
      const progress: NonNullable<CaptureStats['snapshot']> = { table: '', tablesDone: resume?.skip.size ?? 0, tables: this.#config.tables.length, rows: 0, estimated: 0, startedAt: Date.now() };
      this.#stats.snapshot = progress;
      this.#stats.phase = 'snapshot';
      this.#stats.since = Date.now();
      const estimates = new Map<string, number>();
      let before = 0;
      for await (const chunk of readSnapshot(this.#config, slot?.snapshotName, resume)) {
        if (signal.aborted) return consistentPoint;
        const table: SourceTable = { name: chunk.table, columns: chunk.columns.map((c) => [c.name, typeLabel(c.type)]) };
        const position = { lsn, table: chunk.table, done: chunk.done, ...(chunk.after ? { after: chunk.after } : {}), ...(chunk.complete ? { complete: true } : {}) };
        await this.#append({ kind: SNAPSHOT_ROWS, position, tables: [table], changes: chunk.rows.map((row) => ({ table: 0, op: UPSERT, row })) });
        if (progress.table !== chunk.table) {
          if (progress.table !== '') progress.tablesDone++;
          before = progress.rows;
          progress.table = chunk.table;
        }
        estimates.set(chunk.table, Math.max(chunk.estimated, chunk.done));
        progress.rows = before + chunk.done;
        progress.estimated = [...estimates.values()].reduce((a, b) => a + b, 0);
        this.#options.onProgress?.({ phase: 'snapshot', table: chunk.table, rows: chunk.done, estimated: chunk.estimated });
      }
      progress.tablesDone = progress.tables;
      progress.endedAt = Date.now();
      await this.#append({ kind: SNAPSHOT_END, position: { lsn, ...identity, ...(resume ? { resumed: true } : {}) }, tables: [], changes: [] });
      return consistentPoint;
    } finally {
      await slot?.connection.end().catch(() => {});
    }
  }

  async #stream(startLsn: bigint, signal: AbortSignal): Promise<void> {
    type Pending = { relation: Relation; change: Omit<SourceChange, 'table'> };
    /** A part already queued for the log; its offset is set when it is appended. */
    type Part = { subxid: number; offset?: number; aborted?: boolean };
    /**
     * A transaction while it arrives: changes are buffered by (sub)transaction and written to the
     * log as parts every SPILL_CHANGES changes (and at each end of a streamed segment), so a
     * transaction of millions of rows never sits in memory whole.
     */
    type Open = { xid: number; buffer: Pending[]; bufferXid: number; parts: Part[]; streamed: boolean };
    let current: Open | undefined;
    const streamed = new Map<number, Open>();
    let streaming: Open | undefined;
    let failure: Error | undefined;
    let work = Promise.resolve();
    let stream: ReplicationStream | undefined;
    const stats = this.#stats;
    // Records wait here while an append is being made durable, and go together in the next one
    // (one batch, one sync): a stream of small transactions is not one sync each.
    type Queued = { record: SourceRecord; endLsn?: bigint; part?: Part; parts?: Part[]; commitTime?: number };
    const queued: Queued[] = [];
    let queuedChanges = 0;
    let flushing = false;
    let paused = false;
    const enqueue = (item: Queued) => {
      queued.push(item);
      queuedChanges += item.record.changes.length;
      // Backpressure: stop reading from PostgreSQL while the log is behind.
      if (!paused && queuedChanges > BACKLOG_CHANGES) {
        paused = true;
        stream?.pause();
      }
      if (!flushing) {
        flushing = true;
        work = flush().finally(() => (flushing = false));
        work.catch((error: Error) => (failure ??= error));
      }
    };
    // Messages may arrive before ReplicationStream.start() returns (a backlog streams at once):
    // records wait for the stream, whose server identity they carry.
    let connected: () => void;
    const started = new Promise<void>((resolve) => (connected = resolve));
    const flush = async () => {
      await started;
      while (queued.length > 0) {
        const batch = queued.splice(0, queued.length);
        let offset = this.#topic.end;
        for (const item of batch) {
          if (item.record.kind === TRANSACTION) Object.assign(item.record.position, { system: stream!.systemId, timeline: stream!.timeline });
          if (item.part) item.part.offset = offset;
          if (item.parts) {
            const offsets = item.parts.filter((p) => !p.aborted).map((p) => p.offset!);
            if (offsets.length > 0) item.record.position.parts = offsetRanges(offsets);
          }
          offset++;
        }
        await this.#topic.append(batch.map((b) => b.record));
        let changes = 0;
        let last: bigint | undefined;
        for (const item of batch) {
          changes += item.record.changes.length;
          if (item.endLsn !== undefined) last = item.endLsn;
        }
        queuedChanges -= changes;
        if (paused && queuedChanges <= BACKLOG_CHANGES / 2) {
          paused = false;
          stream?.resume();
        }
        stats.rows += changes;
        const committed = batch.filter((b) => b.commitTime !== undefined);
        if (committed.length > 0) stats.committedTime = committed.at(-1)!.commitTime!;
        stats.pendingSince = queued.find((b) => b.commitTime !== undefined)?.commitTime;
        if (last !== undefined) {
          stream?.confirm(last);
          this.#options.onProgress?.({ phase: 'streaming', rows: changes, lsn: formatLsn(last) });
        }
      }
    };
    const tablesOf = (entries: Pending[]): { tables: SourceTable[]; changes: SourceChange[] } => {
      const tables: SourceTable[] = [];
      const index = new Map<Relation, number>();
      const changes: SourceChange[] = entries.map(({ relation, change }) => {
        let i = index.get(relation);
        if (i === undefined) {
          index.set(relation, (i = tables.length));
          tables.push({ name: relation.name, columns: relation.columns.map((c) => [c.name, typeLabel(c.type)]) });
        }
        return { table: i, ...change };
      });
      return { tables, changes };
    };
    /** Writes the buffered changes of `open` as a part. */
    const spill = (open: Open) => {
      if (open.buffer.length === 0) return;
      const part: Part = { subxid: open.bufferXid };
      open.parts.push(part);
      enqueue({ record: { kind: TRANSACTION_PART, position: { xid: open.xid, subxid: open.bufferXid }, ...tablesOf(open.buffer) }, part });
      open.buffer = [];
    };
    const add = (open: Open, entries: Pending[], subxid: number) => {
      if (open.buffer.length > 0 && open.bufferXid !== subxid) spill(open);
      open.bufferXid = subxid;
      for (const entry of entries) open.buffer.push(entry);
      if (open.buffer.length >= SPILL_CHANGES) spill(open);
    };
    const commit = (open: Open, endLsn: bigint, time: bigint) => {
      // PostgreSQL sends again what was appended but not yet confirmed when the process died
      // (parts it spilled again are left unnamed, so never applied).
      if (endLsn <= this.#logged) return;
      this.#logged = endLsn;
      const commitTime = Number(time / 1000n + POSTGRES_EPOCH_MILLIS);
      const position: Record<string, unknown> = { lsn: formatLsn(endLsn), xid: open.xid, time: String(time) };
      if (open.parts.length > 0 || open.streamed) {
        spill(open);
        enqueue({ record: { kind: TRANSACTION, position, tables: [], changes: [] }, endLsn, parts: open.parts, commitTime });
      } else enqueue({ record: { kind: TRANSACTION, position, ...tablesOf(open.buffer) }, endLsn, commitTime });
    };
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
    const onMessage = (message: PgOutputMessage, lsn: bigint) => {
      try {
        switch (message.type) {
          case 'begin':
            current = { xid: message.xid, buffer: [], bufferXid: message.xid, parts: [], streamed: false };
            return;
          case 'relation':
            this.#relation(message);
            return;
          case 'commit':
            if (current) commit(current, message.endLsn, message.commitTime);
            current = undefined;
            return;
          case 'message': {
            if (message.prefix === 'sluice.sync') this.#syncs.get(Buffer.from(message.content).toString())?.();
            return;
          }
          case 'streamStart': {
            let open = streamed.get(message.xid);
            if (!open) streamed.set(message.xid, (open = { xid: message.xid, buffer: [], bufferXid: message.xid, parts: [], streamed: true }));
            streaming = open;
            return;
          }
          case 'streamStop':
            if (streaming) spill(streaming);
            streaming = undefined;
            return;
          case 'streamCommit': {
            const open = streamed.get(message.xid);
            if (open) commit(open, message.endLsn, message.commitTime);
            streamed.delete(message.xid);
            return;
          }
          case 'streamAbort': {
            const open = streamed.get(message.xid);
            if (!open) return;
            if (message.subXid === message.xid) streamed.delete(message.xid);
            else {
              // A subtransaction rolled back: its changes, buffered or already in parts, go.
              for (const part of open.parts) if (part.subxid === message.subXid) part.aborted = true;
              if (open.bufferXid === message.subXid) open.buffer = [];
            }
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
            if (xid !== undefined && streaming) add(streaming, entries, xid);
            else if (current) add(current, entries, current.xid);
          }
        }
      } catch (error) {
        failure ??= error as Error;
      } finally {
        if (lsn > stats.receivedLsn) stats.receivedLsn = lsn;
      }
    };
    let ended: (error: Error) => void;
    const done = new Promise<Error>((resolve) => (ended = resolve));
    stream = await ReplicationStream.start({ url: this.#config.url, slot: this.#config.slot, publication: this.#config.publication, startLsn, onMessage, onError: (error) => ended(error) });
    try {
      await this.#checkIdentity(stream.systemId, stream.timeline);
    } catch (error) {
      await stream.close();
      throw error;
    }
    connected!();
    this.#stream_ = stream;
    stats.phase = 'streaming';
    stats.since = Date.now();
    this.#drained = async () => {
      while (flushing || queued.length > 0) await work.catch(() => {});
      if (failure) throw failure;
    };
    if (this.#streamingStarted) this.#streamingStarted();
    else this.#streamingSince = Promise.resolve();
    const abort = () => ended(new Error('aborted'));
    signal.addEventListener('abort', abort, { once: true });
    if (signal.aborted) abort(); // aborted while the stream was starting
    const poll = setInterval(() => {
      if (failure) ended(failure);
    }, 50);
    // The server's WAL position, for lag in bytes (a separate connection: the replication one
    // cannot run queries while it streams).
    const lsnClient = pgClient({ connectionString: this.#config.url });
    let asking = false;
    const ask = async () => {
      if (asking) return;
      asking = true;
      try {
        this.#serverLsn = parseLsn(String((await lsnClient.query(`SELECT pg_current_wal_lsn()::text AS lsn`)).rows[0].lsn));
      } catch {
        this.#serverLsn = undefined;
      } finally {
        asking = false;
      }
    };
    const lsnTimer = setInterval(() => void ask(), 2000);
    void lsnClient.connect().then(ask, () => {});
    try {
      const reason = await done;
      if (!signal.aborted) throw reason;
    } finally {
      clearInterval(poll);
      clearInterval(lsnTimer);
      void lsnClient.end().catch(() => {});
      signal.removeEventListener('abort', abort);
      await work.catch(() => {});
      this.#stream_ = undefined;
      await stream.close();
    }
  }
}
