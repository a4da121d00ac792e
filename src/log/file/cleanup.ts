/**
 * Cleanup of sealed segments: keyed compaction for changelog topics, retention by age and size
 * for event topics. The active segment is never touched.
 *
 * Compaction keeps, per key, only the record with the highest offset; a tombstone (null value)
 * is kept until `tombstoneRetentionMs` after it was appended, so a reader that was behind still
 * sees the delete. Replaying a compacted topic therefore costs its live size, not its history.
 *
 * Invariants:
 * - Offsets never change; compaction only leaves gaps. Batch headers keep their offsets,
 *   timestamp and producer fields; a batch emptied of records is kept only when it is its
 *   producer's latest, so idempotent-producer state survives.
 * - A segment is replaced atomically: the new file is written and synced under a temporary name,
 *   the old index is removed first (a missing index is rebuilt by scanning, a stale one would be
 *   wrong), then the file is renamed into place and the folder synced.
 */
import path from 'node:path';
import { replaceFileAtomically, CorruptionError } from '../../core/index.ts';
import type { TopicConfig } from '../log.ts';
import { checkBatch, dataStart, encodeMark, encodeSegmentHeader, newSegmentInstance, filterBatch, markSlotFor, readBatchHeader } from './segment-format.ts';
import { Segment, encodeIndex, indexFileName } from './segment.ts';
import type { Partition } from './partition.ts';

export interface CleanupResult {
  segmentsRemoved: number;
  bytesReclaimed: number;
}

/**
 * Reads a whole sealed segment's batches, each checked against its checksum: compaction re-checksums
 * what it keeps, so damage must be caught here rather than carried into the new file.
 */
function batchesOf(segment: Segment): Buffer[] {
  const bytes = Buffer.allocUnsafe(segment.end - dataStart);
  if (segment.file.read(bytes, 0, bytes.length, dataStart) < bytes.length) {
    throw new CorruptionError(segment.path, dataStart, `the file ends before byte ${segment.end}, where its durable mark says its batches end`);
  }
  const batches: Buffer[] = [];
  let at = 0;
  while (at < bytes.length) {
    const checked = checkBatch(bytes, at, bytes.length - at);
    if (typeof checked === 'string' || checked === 0) throw new CorruptionError(segment.path, dataStart + at, checked || 'the batch is cut short');
    batches.push(bytes.subarray(at, at + checked));
    at += checked;
  }
  return batches;
}

export async function compactPartition(partition: Partition, config: TopicConfig, now: number): Promise<CleanupResult> {
  const result: CleanupResult = { segmentsRemoved: 0, bytesReclaimed: 0 };
  // A sealed segment's index may still be on its way to disk; replacing it now would race.
  await partition.backgroundWritesDone();
  const sealed = partition.segments.filter((segment) => segment.sealed);
  if (sealed.length === 0) return result;
  // The latest offset of every key, over the whole partition (the active segment included).
  const latest = new Map<string, number>();
  let from = partition.startOffset;
  for (;;) {
    const { records, nextOffset } = partition.read(from, { maxRecords: 100_000 });
    for (const record of records) if (record.key) latest.set(record.key.toString('latin1'), record.offset);
    if (records.length === 0 || nextOffset === from) break;
    from = nextOffset;
  }
  for (const segment of sealed) {
    const before = segment.end;
    let dropped = 0;
    const kept: Buffer[] = [];
    for (const batch of batchesOf(segment)) {
      const header = readBatchHeader(batch, 0);
      const filtered = filterBatch(batch, (delta, key, value) => {
        const keep = key !== null && latest.get(key.toString('latin1')) === header.baseOffset + delta && (value !== null || now - header.timestamp < config.tombstoneRetentionMs);
        if (!keep) dropped++;
        return keep;
      });
      const count = filtered.readUInt32LE(28);
      const producerLatest = header.producerId !== 0 && partition.producers.entries.get(header.producerId)?.recent.at(-1)?.baseOffset === header.baseOffset;
      if (count > 0 || producerLatest) kept.push(filtered);
    }
    if (dropped === 0) continue;
    await replaceSegment(partition, segment, kept);
    result.bytesReclaimed += before - segment.end;
  }
  return result;
}

async function replaceSegment(partition: Partition, segment: Segment, batches: Buffer[]): Promise<void> {
  const { storage, folder } = partition.options;
  const temporary = `${segment.path}.compacting`;
  const handle = storage.open(temporary, { create: true });
  handle.truncate(0);
  const replacement = new Segment(segment.baseOffset, segment.path, handle);
  handle.write([encodeSegmentHeader({ partition: partition.options.partition, baseOffset: segment.baseOffset, createdAt: partition.options.now(), instance: newSegmentInstance() })], 0);
  let position = dataStart;
  if (batches.length > 0) handle.write(batches, dataStart);
  for (const batch of batches) {
    const header = readBatchHeader(batch, 0);
    replacement.noteBatch(position, header.baseOffset, header.baseOffset + header.lastOffsetDelta + 1, header.timestamp, position + batch.length);
    position += batch.length;
  }
  // The segment still ends where it ended: its next offset does not shrink with its records.
  replacement.nextOffset = segment.nextOffset;
  replacement.maxTimestamp = segment.maxTimestamp;
  replacement.sealed = true;
  replacement.markSequence = 1;
  handle.write([encodeMark({ sequence: 1, sealed: true, position: replacement.end, nextOffset: replacement.nextOffset, maxTimestamp: replacement.maxTimestamp })], markSlotFor(1));
  // The mark covers bytes up to `end` (at least dataStart, even with no batches left).
  handle.truncate(replacement.end);
  await handle.sync('data');
  storage.remove(path.join(folder, indexFileName(segment.baseOffset)));
  await storage.syncDirectory(folder);
  storage.rename(temporary, segment.path);
  await storage.syncDirectory(folder);
  await replaceFileAtomically(storage, path.join(folder, indexFileName(segment.baseOffset)), encodeIndex(replacement));
  // Swap in memory. Reads are synchronous, so none is midway through the old file now.
  segment.file.close();
  segment.file = handle;
  segment.end = replacement.end;
  segment.indexOffsets = replacement.indexOffsets;
  segment.indexPositions = replacement.indexPositions;
  segment.markSequence = 1;
}

export async function applyRetention(partition: Partition, config: TopicConfig, now: number): Promise<CleanupResult> {
  const result: CleanupResult = { segmentsRemoved: 0, bytesReclaimed: 0 };
  const { storage, folder } = partition.options;
  await partition.backgroundWritesDone();
  let total = 0;
  for (const segment of partition.segments) total += segment.end;
  while (partition.segments.length > 1) {
    const oldest = partition.segments[0];
    if (!oldest.sealed) break;
    const expired = config.retentionMs > 0 && now - oldest.maxTimestamp > config.retentionMs;
    const oversized = config.retentionBytes > 0 && total > config.retentionBytes;
    if (!expired && !oversized) break;
    // The log file goes first: a leftover index without its log is ignored, never the reverse.
    storage.remove(oldest.path);
    storage.remove(path.join(folder, indexFileName(oldest.baseOffset)));
    await storage.syncDirectory(folder);
    oldest.file.close();
    partition.segments.shift();
    total -= oldest.end;
    result.segmentsRemoved++;
    result.bytesReclaimed += oldest.end;
  }
  return result;
}
