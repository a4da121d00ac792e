/**
 * One partition of a topic on local files: a run of segments, the last one active. Appends are
 * group-committed; reads walk segments through their sparse indexes.
 *
 * Group commit and the durable mark. Each round of the flush loop writes every append queued
 * since the last round as one write, then syncs. A sync makes the bytes written before it durable,
 * but nothing on disk says so yet — so the next round also writes a mark (in the segment's
 * header sectors) covering them, and only when that round's sync resolves are those appends
 * acknowledged. Under load the mark rides along with the next group's data at no extra cost; when
 * the queue is empty a round writes just the mark. Hence:
 *
 * Invariants:
 * - Every acknowledged syncData/syncAll append lies before a durable mark. On open, any damage
 *   before the mark (bit flip, truncation, missing segment) refuses to open, naming file and byte;
 *   anything after it was never acknowledged, so a torn tail there is truncated.
 * - A mark never covers bytes written in the same sync round as itself.
 * - Offsets are assigned when an append is accepted; batches reach the file in offset order.
 * - Readers in this process see offsets below `visibleOffset`: a prefix of acknowledged appends.
 * - After a failed write or sync the partition refuses appends until reopened (the page cache may
 *   have dropped the data, so nothing after the failure can be trusted to be durable).
 */
import path from 'node:path';
import { CorruptionError, DefiniteError, TransientError, replaceRebuildableFile, type Storage, type SyncMode } from '../../core/index.ts';
import type { AppendOptions, AppendRecord, AppendResult, LogRecord, PersistMode, ProducerState, ReadOptions, ReadResult } from '../log.ts';
import { ProducerTable, producerSnapshotName, type ProducerEntry } from './producer-state.ts';
import {
  batchMagic,
  checkBatch,
  dataStart,
  batchLength,
  encodeBatchInto,
  encodeMark,
  encodeSegmentHeader,
  newSegmentInstance,
  markSlotFor,
  readBatchHeader,
  readUint64,
  recordHeaderBytes,
  type BatchHeader,
  type Mark,
} from './segment-format.ts';
import { Segment, decodeIndexInto, encodeIndex, indexFileName, segmentFileName } from './segment.ts';

export interface PartitionOptions {
  storage: Storage;
  /** The partition's folder. */
  folder: string;
  /** "topic/partition", for messages. */
  name: string;
  partition: number;
  segmentBytes: number;
  /** The PersistMode of appends that do not name one. */
  persist: PersistMode;
  /** False for a reader in another process than the writer: no recovery, no appends. */
  writer: boolean;
  now: () => number;
}

interface PendingAppend {
  /** Where its encoded batch sits in the partition's arena while queued (see `#arena`). */
  start: number;
  length: number;
  baseOffset: number;
  count: number;
  timestamp: number;
  persist: PersistMode;
  producerId: number;
  producerSequence: number;
  resolve: (result: AppendResult) => void;
  reject: (error: Error) => void;
  /** Set once written: the durable mark must reach this offset before the append is acknowledged. */
  written: boolean;
  acknowledged: boolean;
}

/** Appends per flush round, at most: bounds how long one round's write and acknowledgements take. */
const groupAppendsMax = 1024;
const groupBytesMax = 32 * 1024 * 1024;
const readChunkBytes = 1024 * 1024;
const defaultMaxRecords = 10_000;
const defaultMaxBytes = 16 * 1024 * 1024;
const producerSnapshotsKept = 2;

function strongest(a: PersistMode, b: PersistMode): PersistMode {
  if (a === 'syncAll' || b === 'syncAll') return 'syncAll';
  if (a === 'syncData' || b === 'syncData') return 'syncData';
  return 'buffer';
}

function cloneEntry(entry: ProducerEntry | undefined): ProducerEntry {
  return entry ? { lastSequence: entry.lastSequence, lastOffset: entry.lastOffset, recent: entry.recent.slice() } : { lastSequence: -1, lastOffset: -1, recent: [] };
}

export class Partition {
  readonly options: PartitionOptions;
  segments: Segment[] = [];
  /** Producer state of batches written to the file. */
  readonly producers = new ProducerTable();
  /** Producers with appends accepted but not yet written: their state including those. */
  readonly #producersAhead = new ProducerTable();
  /** Readers in this process see offsets below this. */
  visibleOffset = 0;

  #assignedOffset = 0;
  /** Accepted appends not yet acknowledged, in offset order. */
  #unacknowledged: PendingAppend[] = [];
  #queued: PendingAppend[] = [];
  #flushing = false;
  #flushDone: Promise<void> = Promise.resolve();
  #failure: Error | undefined;
  #closed = false;
  /** Bytes and offsets of the active segment known synced (written before the last sync began). */
  #synced = { position: dataStart, nextOffset: 0, maxTimestamp: 0 };
  /** What the last durable mark of the active segment covers. */
  #marked = { position: dataStart, nextOffset: 0 };
  #listeners = new Set<() => void>();
  /**
   * Queued appends' batches, encoded back to back in queue order: a group is a prefix, written
   * with one write and then dropped. Reused, so a busy log does not allocate per append.
   */
  #arena = Buffer.allocUnsafe(64 * 1024);
  #arenaUsed = 0;
  /** Index and producer-snapshot writes of sealed segments, one after another. */
  #background: Promise<void> = Promise.resolve();

  private constructor(options: PartitionOptions) {
    this.options = options;
  }

  get active(): Segment {
    return this.segments[this.segments.length - 1];
  }

  get startOffset(): number {
    // A reader may find a partition whose writer has not created its first segment yet.
    return this.segments.length > 0 ? this.segments[0].baseOffset : 0;
  }

  static async open(options: PartitionOptions): Promise<Partition> {
    const partition = new Partition(options);
    if (options.writer) await partition.#recover();
    else partition.refresh();
    return partition;
  }

  // ── Recovery ────────────────────────────────────────────────────────────────────────────────

  #segmentPath(baseOffset: number): string {
    return path.join(this.options.folder, segmentFileName(baseOffset));
  }

  async #recover(): Promise<void> {
    const { storage, folder } = this.options;
    await storage.makeFolder(folder);
    // Leftovers of a crash mid-creation or mid-compaction were never renamed into place.
    for (const name of storage.list(folder)) {
      if (name.endsWith('.tmp') || name.endsWith('.compacting')) storage.remove(path.join(folder, name));
    }
    const bases = this.#segmentBases();
    if (bases.length === 0) {
      this.segments.push(await this.#createSegment(0));
      this.#afterRecovery();
      return;
    }
    let expectedBase = bases[0];
    for (let i = 0; i < bases.length; i++) {
      const base = bases[i];
      const file = this.#segmentPath(base);
      if (base !== expectedBase) {
        throw new CorruptionError(file, 0, `the previous segment ends at offset ${expectedBase}, so a segment holding offsets ${expectedBase}…${base - 1} is missing`);
      }
      const segment = new Segment(base, file, storage.open(file, {}));
      this.segments.push(segment);
      const last = i === bases.length - 1;
      await this.#recoverSegment(segment, last);
      expectedBase = segment.nextOffset;
    }
    await this.#recoverProducers();
    if (this.active.sealed) this.segments.push(await this.#createSegment(this.active.nextOffset));
    this.#afterRecovery();
  }

  #segmentBases(): number[] {
    return this.options.storage
      .list(this.options.folder)
      .filter((name) => /^\d{20}\.log$/.test(name))
      .map((name) => Number(name.slice(0, 20)));
  }

  async #recoverSegment(segment: Segment, last: boolean): Promise<void> {
    const { header, mark } = segment.readHeaderAndMark();
    if (typeof header === 'string') throw new CorruptionError(segment.path, 0, header);
    if (header.baseOffset !== segment.baseOffset) {
      throw new CorruptionError(segment.path, 16, `the header says base offset ${header.baseOffset}, the file name ${segment.baseOffset}`);
    }
    if (!mark) throw new CorruptionError(segment.path, 512, 'neither durable-mark slot is valid');
    if (!last && !mark.sealed) throw new CorruptionError(segment.path, 512, 'a segment before the last one was never sealed');
    const size = segment.file.size();
    if (size < mark.position) {
      throw new CorruptionError(segment.path, size, `the file ends at byte ${size} but byte ${mark.position} was made durable: acknowledged records were cut off`);
    }
    segment.markSequence = mark.sequence;
    segment.sealed = mark.sealed;
    // Appends are dense; only compaction (of sealed segments) leaves gaps between batches.
    const dense = !mark.sealed;
    const indexed = mark.sealed && this.#loadIndex(segment);
    if (indexed) {
      // A sealed segment with its index: the mark says where it ends. Its batches are checked
      // when read (each read verifies checksums), which keeps opening a large log fast.
      segment.end = mark.position;
      segment.nextOffset = mark.nextOffset;
      segment.maxTimestamp = mark.maxTimestamp;
    } else {
      const durable = segment.scan(dataStart, mark.position, dense);
      if (durable.problem !== undefined || durable.position !== mark.position) {
        throw new CorruptionError(segment.path, durable.position, durable.problem ?? 'a batch runs past the durable mark');
      }
      if (segment.nextOffset !== mark.nextOffset && !mark.sealed) {
        throw new CorruptionError(segment.path, 512, `the durable mark says offset ${mark.nextOffset} but the batches end at ${segment.nextOffset}`);
      }
      segment.nextOffset = Math.max(segment.nextOffset, mark.nextOffset);
    }
    if (mark.sealed) {
      if (size > mark.position) segment.file.truncate(mark.position);
      return;
    }
    // Past the mark lies what was never acknowledged: keep whole batches in order, cut the rest.
    const tail = segment.scan(mark.position, size, true);
    if (tail.position < size) {
      segment.file.truncate(tail.position);
    }
    if (tail.position > mark.position || size > tail.position) {
      await segment.file.sync('data');
      this.#writeMark(segment, false);
      await segment.file.sync('data');
    }
  }

  #indexPath(baseOffset: number): string {
    return path.join(this.options.folder, indexFileName(baseOffset));
  }

  async #recoverProducers(): Promise<void> {
    const { storage, folder } = this.options;
    const snapshots = storage
      .list(folder)
      .filter((name) => /^\d{20}\.producers$/.test(name))
      .map((name) => Number(name.slice(0, 20)))
      .filter((offset) => offset <= this.active.nextOffset);
    let from = this.startOffset;
    for (let i = snapshots.length - 1; i >= 0; i--) {
      const table = ProducerTable.decode(storage.readWhole(path.join(folder, producerSnapshotName(snapshots[i]))) ?? Buffer.alloc(0));
      if (!table) continue;
      for (const [id, entry] of table.entries) this.producers.entries.set(id, entry);
      from = snapshots[i];
      break;
    }
    for (const segment of this.segments) {
      if (segment.nextOffset <= from) continue;
      this.#walkBatchHeaders(segment, from, (header) => {
        if (header.producerId !== 0) {
          const count = header.lastOffsetDelta + 1;
          this.producers.record(header.producerId, header.producerSequence, count, header.baseOffset, header.baseOffset + header.lastOffsetDelta);
        }
      });
    }
  }

  /** Reads only batch headers, from the batch holding `from` to the segment's end. */
  #walkBatchHeaders(segment: Segment, from: number, visit: (header: BatchHeader) => void): void {
    const buffer = Buffer.allocUnsafe(64);
    let position = segment.positionFor(from);
    while (position < segment.end) {
      if (segment.file.read(buffer, 0, 64, position) < 64) throw new CorruptionError(segment.path, position, 'the batch header is cut short');
      const header = readBatchHeader(buffer, 0);
      if (header.length < 64) throw new CorruptionError(segment.path, position, 'the batch length is impossible');
      if (header.baseOffset + header.lastOffsetDelta >= from) visit(header);
      position += header.length;
    }
  }

  #afterRecovery(): void {
    const active = this.active;
    this.#assignedOffset = active.nextOffset;
    this.visibleOffset = active.nextOffset;
    this.#synced = { position: active.end, nextOffset: active.nextOffset, maxTimestamp: active.maxTimestamp };
    this.#marked = { position: active.end, nextOffset: active.nextOffset };
  }

  async #createSegment(baseOffset: number): Promise<Segment> {
    const { segment, temporary } = this.#startSegment(baseOffset);
    await segment.file.sync('data');
    await this.#finishSegment(segment, temporary);
    return segment;
  }

  /**
   * Writes a new segment's header and first mark under a temporary name; it takes its real name
   * only after they are synced (`#finishSegment`), so a segment found under its real name always
   * has a valid header and mark.
   */
  #startSegment(baseOffset: number): { segment: Segment; temporary: string } {
    const { storage, partition, now } = this.options;
    const file = this.#segmentPath(baseOffset);
    const temporary = `${file}.tmp`;
    const handle = storage.open(temporary, { create: true });
    handle.truncate(0);
    const segment = new Segment(baseOffset, file, handle);
    handle.write([encodeSegmentHeader({ partition, baseOffset, createdAt: now(), instance: newSegmentInstance() })], 0);
    this.#writeMark(segment, false);
    // The mark says bytes up to dataStart are durable: the file must be that long.
    handle.truncate(dataStart);
    return { segment, temporary };
  }

  /** Renames a started segment, whose header and mark are synced, into place, durably. */
  async #finishSegment(segment: Segment, temporary: string): Promise<void> {
    this.options.storage.rename(temporary, segment.path);
    await this.options.storage.syncDirectory(this.options.folder);
  }

  #writeMark(segment: Segment, sealed: boolean, cover?: { position: number; nextOffset: number; maxTimestamp: number }): void {
    const sequence = ++segment.markSequence;
    const mark = encodeMark({
      sequence,
      sealed,
      position: cover?.position ?? segment.end,
      nextOffset: cover?.nextOffset ?? segment.nextOffset,
      maxTimestamp: cover?.maxTimestamp ?? segment.maxTimestamp,
    });
    segment.file.write([mark], markSlotFor(sequence));
  }

  // ── Appends ─────────────────────────────────────────────────────────────────────────────────

  append(records: readonly AppendRecord[], options: AppendOptions = {}): Promise<AppendResult> {
    const { name, partition } = this.options;
    if (!this.options.writer) return Promise.reject(new DefiniteError('log_read_only', `${name} was opened for reading only`, 'open the log without readOnly to append'));
    if (this.#closed) return Promise.reject(new DefiniteError('log_closed', `${name} is closed`));
    if (this.#failure) return Promise.reject(this.#failedError());
    if (records.length === 0) return Promise.resolve({ partition, baseOffset: this.#assignedOffset, count: 0, duplicate: false });
    const producer = options.producer;
    let producerId = 0;
    let producerSequence = 0;
    if (producer) {
      if (!Number.isSafeInteger(producer.id) || producer.id < 1 || !Number.isSafeInteger(producer.sequence) || producer.sequence < 0) {
        return Promise.reject(new DefiniteError('producer_invalid', `${name}: a producer id must be a safe integer ≥ 1 and a sequence a safe integer ≥ 0 (got id ${producer.id}, sequence ${producer.sequence})`));
      }
      producerId = producer.id;
      producerSequence = producer.sequence;
      const table = this.#producersAhead.entries.has(producerId) ? this.#producersAhead : this.producers;
      let check;
      try {
        check = table.check(name, producerId, producerSequence, records.length);
      } catch (error) {
        return Promise.reject(error as Error);
      }
      if (check.kind === 'duplicate') {
        const { baseOffset, count } = check.batch;
        return this.waitForVisible(baseOffset + count).then(() => ({ partition, baseOffset, count, duplicate: true }));
      }
    }
    const baseOffset = this.#assignedOffset;
    const timestamp = this.options.now();
    let length: number;
    try {
      length = batchLength(records);
    } catch (error) {
      return Promise.reject(new DefiniteError('append_too_large', `${name}: ${(error as Error).message}`));
    }
    const start = this.#reserve(length);
    encodeBatchInto(this.#arena.subarray(start, start + length), { baseOffset, timestamp, producerId, producerSequence, records }, length);
    this.#assignedOffset += records.length;
    if (producerId !== 0) {
      if (!this.#producersAhead.entries.has(producerId)) this.#producersAhead.entries.set(producerId, cloneEntry(this.producers.entries.get(producerId)));
      this.#producersAhead.record(producerId, producerSequence, records.length, baseOffset, baseOffset + records.length - 1);
    }
    return new Promise<AppendResult>((resolve, reject) => {
      const pending: PendingAppend = {
        start,
        length,
        baseOffset,
        count: records.length,
        timestamp,
        persist: options.persist ?? this.options.persist,
        producerId,
        producerSequence,
        resolve,
        reject,
        written: false,
        acknowledged: false,
      };
      this.#queued.push(pending);
      this.#unacknowledged.push(pending);
      if (!this.#flushing) {
        this.#flushing = true;
        this.#flushDone = new Promise((done) => setImmediate(() => this.#flush().then(done)));
      }
    });
  }

  /** Room for `length` more bytes at the end of the arena; returns where they start. */
  #reserve(length: number): number {
    const start = this.#arenaUsed;
    if (start + length > this.#arena.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.#arena.length * 2, start + length));
      this.#arena.copy(grown, 0, 0, start);
      this.#arena = grown;
    }
    this.#arenaUsed = start + length;
    return start;
  }

  async #flush(): Promise<void> {
    try {
      // Every round either writes queued appends or awaits a sync, so the loop always progresses.
      while (!this.#failure && (this.#queued.length > 0 || this.#awaitingMark())) {
        if (this.#queued.length > 0) {
          if (this.active.end - dataStart >= this.options.segmentBytes) await this.#roll(this.#persistWanted());
          this.#writeGroup(this.#takeGroup(this.options.segmentBytes - (this.active.end - dataStart)));
          this.#acknowledgeBuffered();
        }
        if (!this.#awaitingMark()) continue;
        // Cover with a mark what earlier rounds synced; sync this round's data with it.
        const persist = this.#persistWanted();
        const cover = this.#synced;
        const markNeeded = cover.position > this.#marked.position;
        if (markNeeded) this.#writeMark(this.active, false, cover);
        const written = { position: this.active.end, nextOffset: this.active.nextOffset, maxTimestamp: this.active.maxTimestamp };
        await this.active.file.sync(persist === 'syncAll' ? 'all' : 'data');
        this.#synced = written;
        if (markNeeded) this.#marked = { position: cover.position, nextOffset: cover.nextOffset };
        this.#acknowledgeUpTo(this.#marked.nextOffset);
      }
    } catch (error) {
      this.#fail(error as Error);
    } finally {
      // The loop re-checks the queue after every await, so nothing queued is left behind here.
      this.#flushing = false;
    }
  }

  /** Whether a written syncData/syncAll append still waits for a durable mark to cover it. */
  #awaitingMark(): boolean {
    for (const pending of this.#unacknowledged) {
      if (!pending.written) return false;
      if (!pending.acknowledged && pending.persist !== 'buffer') return true;
    }
    return false;
  }

  #persistWanted(): PersistMode {
    let persist: PersistMode = 'buffer';
    for (const pending of this.#unacknowledged) persist = strongest(persist, pending.persist);
    return persist;
  }

  /** The next appends to write: at most `groupAppendsMax`, and about `room` bytes (at least one). */
  #takeGroup(room: number): PendingAppend[] {
    const queued = this.#queued;
    const bytesMax = Math.min(groupBytesMax, room);
    let bytes = 0;
    let n = 0;
    while (n < queued.length && n < groupAppendsMax && (n === 0 || bytes + queued[n].length <= bytesMax)) bytes += queued[n++].length;
    if (n === queued.length) {
      this.#queued = [];
      return queued;
    }
    return queued.splice(0, n);
  }

  #writeGroup(group: PendingAppend[]): void {
    const segment = this.active;
    // The group is a prefix of the queue, so its batches lie back to back at the arena's start.
    const last = group[group.length - 1];
    const groupEnd = last.start + last.length;
    segment.file.write([this.#arena.subarray(0, groupEnd)], segment.end);
    // Appends still queued move to the front (rarely: only when a group was capped).
    const remaining = this.#arenaUsed - groupEnd;
    if (remaining > 0) {
      this.#arena.copyWithin(0, groupEnd, this.#arenaUsed);
      for (const pending of this.#queued) pending.start -= groupEnd;
    }
    this.#arenaUsed = remaining;
    for (const pending of group) {
      const start = segment.end;
      segment.noteBatch(start, pending.baseOffset, pending.baseOffset + pending.count, pending.timestamp, start + pending.length);
      pending.written = true;
      if (pending.producerId !== 0) {
        this.producers.record(pending.producerId, pending.producerSequence, pending.count, pending.baseOffset, pending.baseOffset + pending.count - 1);
        const ahead = this.#producersAhead.entries.get(pending.producerId);
        if (ahead && ahead.lastOffset === pending.baseOffset + pending.count - 1) this.#producersAhead.entries.delete(pending.producerId);
      }
    }
  }

  #acknowledgeBuffered(): void {
    for (const pending of this.#unacknowledged) {
      if (pending.written && pending.persist === 'buffer' && !pending.acknowledged) this.#acknowledge(pending);
    }
    this.#advanceVisible();
  }

  /** Acknowledges every written append below `offset`. */
  #acknowledgeUpTo(offset: number): void {
    for (const pending of this.#unacknowledged) {
      if (pending.baseOffset >= offset) break;
      if (!pending.acknowledged) this.#acknowledge(pending);
    }
    this.#advanceVisible();
  }

  #acknowledge(pending: PendingAppend): void {
    pending.acknowledged = true;
    pending.resolve({ partition: this.options.partition, baseOffset: pending.baseOffset, count: pending.count, duplicate: false });
  }

  #advanceVisible(): void {
    let n = 0;
    const unacknowledged = this.#unacknowledged;
    while (n < unacknowledged.length && unacknowledged[n].acknowledged) n++;
    if (n > 0) unacknowledged.splice(0, n);
    const visible = unacknowledged.length > 0 ? unacknowledged[0].baseOffset : this.#assignedOffset;
    if (visible > this.visibleOffset) {
      this.visibleOffset = visible;
      for (const listener of this.#listeners) listener();
    }
  }

  /**
   * Seals the full active segment and starts the next; everything written becomes durable. The
   * sealing mark and the new segment's file are synced together (two files, two syncs in
   * parallel), then the new segment is renamed into place and its folder synced. The sealed
   * segment's index and the producer snapshot are written after, unsynced: both carry checksums
   * and recovery rebuilds either when missing or damaged.
   */
  async #roll(persist: PersistMode): Promise<void> {
    const old = this.active;
    const mode: SyncMode = persist === 'syncAll' ? 'all' : 'data';
    if (this.#synced.position < old.end) {
      // A sealing mark must not share a sync with the bytes it covers.
      await old.file.sync(mode);
      this.#synced = { position: old.end, nextOffset: old.nextOffset, maxTimestamp: old.maxTimestamp };
    }
    this.#writeMark(old, true);
    const { segment: next, temporary } = this.#startSegment(old.nextOffset);
    await Promise.all([old.file.sync(mode), next.file.sync('data')]);
    old.sealed = true;
    this.#marked = { position: old.end, nextOffset: old.nextOffset };
    this.#acknowledgeUpTo(old.nextOffset);
    // Batches are written to the table as they reach the file, so this is the state as of the seal.
    const producers = this.producers.encode();
    await this.#finishSegment(next, temporary);
    this.segments.push(next);
    this.#synced = { position: next.end, nextOffset: next.nextOffset, maxTimestamp: 0 };
    this.#marked = { position: next.end, nextOffset: next.nextOffset };
    this.#background = this.#background.then(() => this.#persistSealed(old, producers));
  }

  async #persistSealed(sealed: Segment, producers: Buffer): Promise<void> {
    const { storage, folder } = this.options;
    try {
      replaceRebuildableFile(storage, this.#indexPath(sealed.baseOffset), encodeIndex(sealed));
      replaceRebuildableFile(storage, path.join(folder, producerSnapshotName(sealed.nextOffset)), producers);
      this.#pruneProducerSnapshots();
    } catch (error) {
      // Not fatal: without them recovery scans the segment and walks batch headers instead.
      this.backgroundError = error as Error;
    }
  }

  /** Resolves once sealed segments' index and snapshot writes so far are done (cleanup waits). */
  backgroundWritesDone(): Promise<void> {
    return this.#background;
  }

  /** The last failure to write a sealed segment's index or producer snapshot. */
  backgroundError: Error | undefined;

  #pruneProducerSnapshots(): void {
    const { storage, folder } = this.options;
    const snapshots = storage.list(folder).filter((name) => /^\d{20}\.producers$/.test(name));
    for (const name of snapshots.slice(0, Math.max(0, snapshots.length - producerSnapshotsKept))) storage.remove(path.join(folder, name));
  }

  #fail(error: Error): void {
    this.#failure = error;
    const failed = this.#failedError();
    for (const pending of this.#unacknowledged) if (!pending.acknowledged) pending.reject(failed);
    this.#unacknowledged = [];
    this.#queued = [];
    this.#arenaUsed = 0;
  }

  #failedError(): Error {
    return new TransientError(
      'log_write_failed',
      `${this.options.name}: a write or sync failed (${this.#failure?.message}); appends not yet acknowledged are not durable`,
      'fix the cause (disk full, I/O error), then reopen the log: recovery keeps exactly what was made durable',
      { cause: this.#failure },
    );
  }

  /** Resolves once readers in this process can see `offset - 1`. */
  waitForVisible(offset: number): Promise<void> {
    if (this.visibleOffset >= offset) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const listener = () => {
        if (this.visibleOffset >= offset) {
          this.#listeners.delete(listener);
          resolve();
        } else if (this.#failure) {
          this.#listeners.delete(listener);
          reject(this.#failedError());
        } else if (this.#closed) {
          this.#listeners.delete(listener);
          reject(new DefiniteError('log_closed', `${this.options.name} was closed before offset ${offset - 1} became visible`));
        }
      };
      this.#listeners.add(listener);
    });
  }

  /** Resolves when new records may be readable, or after `timeoutMs`, or on abort. */
  waitForChange(seenOffset: number, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const done = () => {
        if (timer) clearTimeout(timer);
        this.#listeners.delete(done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      if (signal?.aborted || this.visibleOffset > seenOffset) return resolve();
      timer = setTimeout(done, timeoutMs);
      if (this.options.writer) this.#listeners.add(done);
      signal?.addEventListener('abort', done);
    });
  }

  producerState(producerId: number): ProducerState {
    const entry = this.#producersAhead.entries.get(producerId) ?? this.producers.entries.get(producerId);
    return { lastSequence: entry?.lastSequence ?? -1, lastOffset: entry?.lastOffset ?? -1 };
  }

  // ── Reads ───────────────────────────────────────────────────────────────────────────────────

  /** Reads whole, checked batches; offsets at or above `visibleOffset` are not returned. */
  read(from: number, options: ReadOptions = {}): ReadResult {
    if (!this.options.writer) this.refresh();
    const maxRecords = options.maxRecords ?? defaultMaxRecords;
    const maxBytes = options.maxBytes ?? defaultMaxBytes;
    const limit = this.visibleOffset;
    const partition = this.options.partition;
    const records: LogRecord[] = [];
    let next = Math.max(from, this.startOffset);
    let bytes = 0;
    let s = this.#segmentIndexFor(next);
    // Chunks are allocated as needed and no larger than what is left to read: a reader that
    // follows the tail reads a few new bytes at a time, and a 1 MiB buffer per read would make
    // the garbage collector run major collections for nothing.
    const chunkBytes = Math.min(readChunkBytes, Math.max(maxBytes + 4096, 64 * 1024));
    let size = chunkBytes;
    let chunk: Buffer | undefined;
    reading: while (s < this.segments.length && next < limit) {
      const segment = this.segments[s];
      if (segment.nextOffset <= next) {
        s++;
        continue;
      }
      let position = segment.positionFor(next);
      const end = segment.end;
      while (position < end) {
        const needed = Math.min(size, end - position);
        if (chunk === undefined || chunk.length < needed) chunk = Buffer.allocUnsafe(needed);
        const want = Math.min(chunk.length, end - position);
        if (segment.file.read(chunk, 0, want, position) < want) {
          throw new CorruptionError(segment.path, position, `the file ends before byte ${end}, where its batches were known to end`);
        }
        let cursor = 0;
        while (cursor < want) {
          const checked = checkBatch(chunk, cursor, want - cursor);
          if (typeof checked === 'string') throw new CorruptionError(segment.path, position + cursor, checked);
          if (checked === 0) break;
          const base = readUint64(chunk, cursor + 16);
          const lastOffset = base + chunk.readUInt32LE(cursor + 24);
          if (base >= limit) break reading;
          if (lastOffset >= next) {
            const timestamp = readUint64(chunk, cursor + 32);
            const count = chunk.readUInt32LE(cursor + 28);
            let at = cursor + 64;
            for (let i = 0; i < count; i++) {
              const offset = base + chunk.readUInt32LE(at);
              const keyLength = chunk.readInt32LE(at + 4);
              const valueLength = chunk.readInt32LE(at + 8);
              const keyStart = at + recordHeaderBytes;
              const valueStart = keyLength > 0 ? keyStart + keyLength : keyStart;
              at = valueLength > 0 ? valueStart + valueLength : valueStart;
              if (offset < next) continue;
              records.push({
                partition,
                offset,
                timestamp,
                key: keyLength < 0 ? null : chunk.subarray(keyStart, valueStart),
                value: valueLength < 0 ? null : chunk.subarray(valueStart, at),
              });
              bytes += at - keyStart;
              next = offset + 1;
              if (records.length >= maxRecords || bytes >= maxBytes) {
                if (i === count - 1) next = lastOffset + 1;
                break reading;
              }
            }
            next = lastOffset + 1;
          }
          cursor += checked;
        }
        if (cursor === 0) {
          // One batch larger than the chunk: read it whole into a chunk of its size.
          const length = want >= 8 ? chunk.readUInt32LE(4) : 0;
          if (length <= want || position + length > end) throw new CorruptionError(segment.path, position, 'the batch is cut short');
          size = length;
          chunk = undefined;
          continue;
        }
        position += cursor;
        size = chunkBytes;
        // Records handed out are views of the chunk: the next read needs a fresh one.
        if (records.length > 0) chunk = undefined;
      }
      s++;
      if (s < this.segments.length) next = Math.max(next, Math.min(segment.nextOffset, limit));
      // Records handed out are views of the chunk: the next segment needs a fresh one.
      if (records.length > 0) chunk = undefined;
    }
    return { records, nextOffset: next };
  }

  #segmentIndexFor(offset: number): number {
    const segments = this.segments;
    let low = 0;
    let high = segments.length - 1;
    let found = 0;
    while (low <= high) {
      const middle = (low + high) >>> 1;
      if (segments[middle].baseOffset <= offset) {
        found = middle;
        low = middle + 1;
      } else high = middle - 1;
    }
    return found;
  }

  /**
   * For a reader in another process: picks up new segments and batches the writer has added
   * since. A batch still being written is simply not whole yet, and is left for the next look.
   */
  refresh(): void {
    const { storage } = this.options;
    this.#replaceCompactedSegments();
    const bases = this.#segmentBases();
    // Segments removed by retention at the front.
    while (this.segments.length > 0 && bases.length > 0 && this.segments[0].baseOffset < bases[0]) this.segments.shift()?.file.close();
    for (const base of bases) {
      const last = this.segments[this.segments.length - 1];
      if (last && base <= last.baseOffset) continue;
      if (last && !last.sealed) {
        // The writer has moved on: the previous segment is whole now, and sealed.
        last.scan(last.end, last.file.size(), false);
        const { mark } = last.readHeaderAndMark();
        if (mark?.sealed) last.sealed = true;
      }
      const file = this.#segmentPath(base);
      let handle;
      try {
        handle = storage.open(file, { readOnly: true });
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue; // removed meanwhile
        throw error;
      }
      const segment = new Segment(base, file, handle);
      const { header, mark } = segment.readHeaderAndMark();
      if (typeof header !== 'string') segment.instance = header.instance;
      if (mark?.sealed) this.#adoptSeal(segment, mark);
      this.segments.push(segment);
    }
    const active = this.active;
    if (active && !active.sealed) active.scan(active.end, active.file.size(), false);
    this.visibleOffset = active ? active.nextOffset : 0;
  }

  /**
   * For a reader in another process, at most once a second: a sealed segment whose file was
   * replaced by compaction (same name, new instance in its header) is reopened, so the reader
   * stops seeing removed records and the old file's space is freed.
   */
  #replaceCompactedSegments(): void {
    const now = Date.now();
    if (now - this.#replacementsCheckedAt < 1000) return;
    this.#replacementsCheckedAt = now;
    const { storage } = this.options;
    for (let i = 0; i < this.segments.length - 1; i++) {
      const segment = this.segments[i];
      if (!segment.sealed) continue;
      let handle;
      try {
        handle = storage.open(segment.path, { readOnly: true });
      } catch {
        continue; // removed by retention: the listing below drops it
      }
      const replacement = new Segment(segment.baseOffset, segment.path, handle);
      const { header, mark } = replacement.readHeaderAndMark();
      if (typeof header === 'string' || header.instance === segment.instance || !mark?.sealed) {
        handle.close();
        continue;
      }
      replacement.instance = header.instance;
      this.#adoptSeal(replacement, mark);
      segment.file.close();
      this.segments[i] = replacement;
    }
  }

  #replacementsCheckedAt = 0;

  /** A reader's segment that is sealed ends at its mark, with its index loaded or rebuilt. */
  #adoptSeal(segment: Segment, mark: Mark): void {
    if (!this.#loadIndex(segment)) segment.scan(dataStart, mark.position, false);
    segment.end = mark.position;
    segment.nextOffset = mark.nextOffset;
    segment.maxTimestamp = mark.maxTimestamp;
    segment.sealed = true;
  }

  /**
   * Loads a sealed segment's index. It must describe this very file (a reader can race a
   * compaction and pair the old index with the new file), so its last entry is checked against
   * the batch it points at. False, with the index reset, when it is missing or does not match.
   */
  #loadIndex(segment: Segment): boolean {
    if (decodeIndexInto(segment, this.options.storage.readWhole(this.#indexPath(segment.baseOffset)))) {
      const last = segment.indexPositions.length - 1;
      if (last < 0) return true;
      const header = Buffer.alloc(64);
      const got = segment.file.read(header, 0, 64, segment.indexPositions[last]);
      if (got === 64 && header.readUInt32LE(0) === batchMagic && readUint64(header, 16) === segment.indexOffsets[last]) return true;
    }
    segment.resetIndex();
    return false;
  }

  // ── Closing ─────────────────────────────────────────────────────────────────────────────────

  /** Waits for queued appends, makes everything written durable under a mark, closes files. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.options.writer) {
      while (this.#flushing) await this.#flushDone;
      await this.#background;
      if (!this.#failure && this.#marked.position < this.active.end) {
        await this.active.file.sync('data');
        this.#writeMark(this.active, false);
        await this.active.file.sync('data');
      }
    }
    for (const segment of this.segments) segment.file.close();
    // Wake whoever waits on this partition: followers end, visibility waits are refused.
    for (const listener of [...this.#listeners]) listener();
    this.#listeners.clear();
  }

  get failure(): Error | undefined {
    return this.#failure;
  }
}
