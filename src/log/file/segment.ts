/**
 * One segment file of a partition, in memory: where its batches end, its sparse offset index,
 * and the scan that checks batches and rebuilds both.
 *
 * Invariants:
 * - `end` is the byte position after the last batch known to be whole; nothing past it is read.
 * - Index entries are batch starts in increasing offset order; the first batch is always indexed.
 */
import type { StorageFile } from '../../core/index.ts';
import {
  checkBatch,
  crc32,
  dataStart,
  decodeMark,
  decodeSegmentHeader,
  markBytes,
  markSlotPositions,
  readBatchHeader,
  type BatchHeader,
  type Mark,
} from './segment-format.ts';

export const indexIntervalBytes = 4096;
const scanChunkBytes = 1024 * 1024;

export function segmentFileName(baseOffset: number): string {
  return `${String(baseOffset).padStart(20, '0')}.log`;
}

export function indexFileName(baseOffset: number): string {
  return `${String(baseOffset).padStart(20, '0')}.index`;
}

export class Segment {
  readonly baseOffset: number;
  readonly path: string;
  file: StorageFile;
  /** Position after the last whole batch. */
  end = dataStart;
  /** Offset after the last record of the last whole batch. */
  nextOffset: number;
  maxTimestamp = 0;
  sealed = false;
  /** The file's instance number (its header), to notice a replacement by compaction. */
  instance = 0;
  markSequence = 0;
  indexOffsets: number[] = [];
  indexPositions: number[] = [];
  #lastIndexedPosition = -indexIntervalBytes;

  constructor(baseOffset: number, path: string, file: StorageFile) {
    this.baseOffset = baseOffset;
    this.path = path;
    this.file = file;
    this.nextOffset = baseOffset;
  }

  /** Records a batch that starts at `position` and ends at `end`. */
  noteBatch(position: number, baseOffset: number, nextOffset: number, timestamp: number, end: number): void {
    if (position - this.#lastIndexedPosition >= indexIntervalBytes) {
      this.indexOffsets.push(baseOffset);
      this.indexPositions.push(position);
      this.#lastIndexedPosition = position;
    }
    this.end = end;
    this.nextOffset = nextOffset;
    if (timestamp > this.maxTimestamp) this.maxTimestamp = timestamp;
  }

  resetIndex(): void {
    this.indexOffsets = [];
    this.indexPositions = [];
    this.#lastIndexedPosition = -indexIntervalBytes;
  }

  /** The position of the last indexed batch at or before `offset`. */
  positionFor(offset: number): number {
    const offsets = this.indexOffsets;
    let low = 0;
    let high = offsets.length - 1;
    let found = -1;
    while (low <= high) {
      const middle = (low + high) >>> 1;
      if (offsets[middle] <= offset) {
        found = middle;
        low = middle + 1;
      } else high = middle - 1;
    }
    return found < 0 ? dataStart : this.indexPositions[found];
  }

  readHeaderAndMark(): { header: ReturnType<typeof decodeSegmentHeader>; mark: Mark | undefined } {
    const buffer = Buffer.alloc(dataStart);
    const n = this.file.read(buffer, 0, dataStart, 0);
    const header = decodeSegmentHeader(buffer.subarray(0, Math.min(n, 64)));
    let mark: Mark | undefined;
    for (const slot of markSlotPositions) {
      if (n < slot + markBytes) continue;
      const candidate = decodeMark(buffer.subarray(slot, slot + markBytes));
      if (candidate && (!mark || candidate.sequence > mark.sequence)) mark = candidate;
    }
    return { header, mark };
  }

  /**
   * Walks whole batches from `position` up to `limit` (or the file's end), noting each one.
   * Returns where it stopped, and why when a batch there is not whole and valid.
   */
  scan(
    position: number,
    limit: number,
    dense: boolean,
    visit?: (header: BatchHeader, position: number) => void,
  ): { position: number; problem?: string } {
    // Sized to what is there: opening many small segments should not allocate 1 MiB each.
    let buffer = Buffer.allocUnsafe(Math.max(64, Math.min(scanChunkBytes, limit - position)));
    let at = position;
    while (at < limit) {
      const want = Math.min(buffer.length, limit - at);
      const got = this.file.read(buffer, 0, want, at);
      if (got === 0) return { position: at, problem: 'the file ends here' };
      let cursor = 0;
      while (cursor < got) {
        const checked = checkBatch(buffer, cursor, got - cursor);
        if (typeof checked === 'string') return { position: at + cursor, problem: checked };
        if (checked === 0) {
          if (cursor === 0) {
            // One batch larger than the buffer: grow it, unless the file simply ends.
            const length = got >= 8 ? buffer.readUInt32LE(4) : 0;
            if (got < want || length <= buffer.length) return { position: at, problem: 'the batch is cut short' };
            buffer = Buffer.allocUnsafe(length);
          }
          break;
        }
        const header = readBatchHeader(buffer, cursor);
        if (dense && header.baseOffset !== this.nextOffset) {
          return { position: at + cursor, problem: `the batch starts at offset ${header.baseOffset}, not ${this.nextOffset}` };
        }
        if (header.baseOffset < this.nextOffset) {
          return { position: at + cursor, problem: `the batch's offset ${header.baseOffset} repeats an earlier one` };
        }
        if (header.recordCount > header.lastOffsetDelta + 1) {
          return { position: at + cursor, problem: 'the batch holds more records than offsets' };
        }
        visit?.(header, at + cursor);
        this.noteBatch(at + cursor, header.baseOffset, header.baseOffset + header.lastOffsetDelta + 1, header.timestamp, at + cursor + checked);
        cursor += checked;
      }
      at += cursor;
    }
    return { position: at };
  }
}

/** Sparse index file: entries (offset − base u32, position u32), then count u32 and CRC32. */
export function encodeIndex(segment: Segment): Buffer {
  const count = segment.indexOffsets.length;
  const buffer = Buffer.alloc(count * 8 + 8);
  for (let i = 0; i < count; i++) {
    buffer.writeUInt32LE(segment.indexOffsets[i] - segment.baseOffset, i * 8);
    buffer.writeUInt32LE(segment.indexPositions[i], i * 8 + 4);
  }
  buffer.writeUInt32LE(count, count * 8);
  buffer.writeUInt32LE(crc32(buffer.subarray(0, count * 8 + 4)), count * 8 + 4);
  return buffer;
}

/** Loads an index file into the segment; false when it is missing or damaged (then rebuild). */
export function decodeIndexInto(segment: Segment, buffer: Buffer | undefined): boolean {
  if (!buffer || buffer.length < 8 || buffer.length % 8 !== 0) return false;
  const count = buffer.readUInt32LE(buffer.length - 8);
  if (count * 8 + 8 !== buffer.length) return false;
  if (buffer.readUInt32LE(buffer.length - 4) !== crc32(buffer.subarray(0, buffer.length - 4))) return false;
  segment.resetIndex();
  for (let i = 0; i < count; i++) {
    segment.indexOffsets.push(segment.baseOffset + buffer.readUInt32LE(i * 8));
    segment.indexPositions.push(buffer.readUInt32LE(i * 8 + 4));
  }
  return true;
}
