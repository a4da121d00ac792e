/**
 * The byte format of a segment file: a file header, two durable-mark slots, then record batches.
 * Documented byte by byte in docs/formats/log-segment.md; all integers are little-endian.
 *
 *   0     64  file header: "SLUICESG", version u16, reserved u16, partition u32, base offset u64,
 *             created-at ms u64, instance u32, reserved, CRC32 of bytes 0..59 at 60
 *   512   64  mark slot A ┐ "MARK", flags u32 (1 = sealed), sequence u64, durable end position u64,
 *   1024  64  mark slot B ┘ next offset u64, max timestamp u64, reserved, CRC32 of bytes 0..59 at 60
 *   4096  …   batches, back to back
 *
 * A batch is a 64-byte header and its records:
 *
 *   0 "SLB1" | 4 length u32 (whole batch) | 8 CRC32 of bytes 12..length | 12 attributes u16 |
 *   14 reserved u16 | 16 base offset u64 | 24 last offset delta u32 | 28 record count u32 |
 *   32 timestamp ms u64 | 40 producer id u64 (0 = none) | 48 producer first sequence u64 |
 *   56 reserved u64
 *
 *   record: offset delta u32 | key length i32 (-1 = null) | value length i32 (-1 = null) | key | value
 *
 * Invariants:
 * - Marks live in their own 512-byte sectors, apart from the header and from each other, so a
 *   torn mark write can damage only the slot being written; the valid slot with the higher
 *   sequence wins.
 * - A mark never covers bytes written in the same sync as the mark itself (see partition.ts), so
 *   every byte before the winning mark's durable end was durable before the mark was.
 * - The CRC is zlib's CRC32 (IEEE): node:zlib computes it natively at several GB/s, where a
 *   CRC32C in JavaScript manages about a tenth of that — the checksum must not be the bottleneck.
 */
import { randomInt } from 'node:crypto';
import zlib from 'node:zlib';

export const segmentMagic = Buffer.from('SLUICESG', 'latin1');
export const formatVersion = 1;
export const fileHeaderBytes = 64;
export const markSlotPositions = [512, 1024] as const;
export const markBytes = 64;
export const markMagic = 0x4b52414d; // "MARK"
export const markFlagSealed = 1;
export const dataStart = 4096;

export const batchMagic = 0x31424c53; // "SLB1"
export const batchHeaderBytes = 64;
export const recordHeaderBytes = 12;
/** Larger batches are refused at append and treated as damage when read. */
export const batchBytesMax = 256 * 1024 * 1024;

export function crc32(data: Uint8Array): number {
  return zlib.crc32(data) >>> 0;
}

/** Writes a non-negative safe integer as u64 little-endian. */
export function writeUint64(buffer: Buffer, value: number, at: number): void {
  buffer.writeUInt32LE(value % 0x100000000, at);
  buffer.writeUInt32LE(Math.floor(value / 0x100000000), at + 4);
}

export function readUint64(buffer: Buffer, at: number): number {
  return buffer.readUInt32LE(at) + buffer.readUInt32LE(at + 4) * 0x100000000;
}

export interface SegmentHeader {
  partition: number;
  baseOffset: number;
  createdAt: number;
  /**
   * Random per file: a compacted replacement of a segment has the same name and base offset but
   * a new instance, which is how a reader in another process notices the replacement.
   */
  instance: number;
}

/** A fresh instance number for a new segment file. */
export function newSegmentInstance(): number {
  return randomInt(0x100000000);
}

export function encodeSegmentHeader(header: SegmentHeader): Buffer {
  const buffer = Buffer.alloc(fileHeaderBytes);
  segmentMagic.copy(buffer, 0);
  buffer.writeUInt16LE(formatVersion, 8);
  buffer.writeUInt32LE(header.partition, 12);
  writeUint64(buffer, header.baseOffset, 16);
  writeUint64(buffer, header.createdAt, 24);
  buffer.writeUInt32LE(header.instance, 32);
  buffer.writeUInt32LE(crc32(buffer.subarray(0, 60)), 60);
  return buffer;
}

/** The header, or a sentence saying why the bytes are not one. */
export function decodeSegmentHeader(buffer: Buffer): SegmentHeader | string {
  if (buffer.length < fileHeaderBytes) return 'the file header is incomplete';
  if (!buffer.subarray(0, 8).equals(segmentMagic)) return 'the file header does not start with SLUICESG';
  if (buffer.readUInt32LE(60) !== crc32(buffer.subarray(0, 60))) return 'the file header fails its checksum';
  const version = buffer.readUInt16LE(8);
  if (version !== formatVersion) return `the segment format version is ${version}; this Sluice reads version ${formatVersion}`;
  return { partition: buffer.readUInt32LE(12), baseOffset: readUint64(buffer, 16), createdAt: readUint64(buffer, 24), instance: buffer.readUInt32LE(32) };
}

/** A durable mark: everything before `position` (and every offset before `nextOffset`) is durable. */
export interface Mark {
  sequence: number;
  sealed: boolean;
  position: number;
  nextOffset: number;
  maxTimestamp: number;
}

export function encodeMark(mark: Mark): Buffer {
  const buffer = Buffer.alloc(markBytes);
  buffer.writeUInt32LE(markMagic, 0);
  buffer.writeUInt32LE(mark.sealed ? markFlagSealed : 0, 4);
  writeUint64(buffer, mark.sequence, 8);
  writeUint64(buffer, mark.position, 16);
  writeUint64(buffer, mark.nextOffset, 24);
  writeUint64(buffer, mark.maxTimestamp, 32);
  buffer.writeUInt32LE(crc32(buffer.subarray(0, 60)), 60);
  return buffer;
}

export function decodeMark(buffer: Buffer): Mark | undefined {
  if (buffer.length < markBytes || buffer.readUInt32LE(0) !== markMagic) return undefined;
  if (buffer.readUInt32LE(60) !== crc32(buffer.subarray(0, 60))) return undefined;
  return {
    sealed: (buffer.readUInt32LE(4) & markFlagSealed) !== 0,
    sequence: readUint64(buffer, 8),
    position: readUint64(buffer, 16),
    nextOffset: readUint64(buffer, 24),
    maxTimestamp: readUint64(buffer, 32),
  };
}

export function markSlotFor(sequence: number): number {
  return markSlotPositions[sequence % 2];
}

/** The fields of a batch header. */
export interface BatchHeader {
  length: number;
  baseOffset: number;
  lastOffsetDelta: number;
  recordCount: number;
  timestamp: number;
  producerId: number;
  producerSequence: number;
}

export function readBatchHeader(buffer: Buffer, at: number): BatchHeader {
  return {
    length: buffer.readUInt32LE(at + 4),
    baseOffset: readUint64(buffer, at + 16),
    lastOffsetDelta: buffer.readUInt32LE(at + 24),
    recordCount: buffer.readUInt32LE(at + 28),
    timestamp: readUint64(buffer, at + 32),
    producerId: readUint64(buffer, at + 40),
    producerSequence: readUint64(buffer, at + 48),
  };
}

/**
 * Checks the batch starting at `at` in `buffer` (which holds `available` valid bytes from `at`):
 * returns its length, 0 when the bytes end before the batch does (read more), or a sentence
 * saying what is wrong.
 */
export function checkBatch(buffer: Buffer, at: number, available: number): number | string {
  if (available < batchHeaderBytes) return 0;
  if (buffer.readUInt32LE(at) !== batchMagic) return 'no batch starts here (bad magic number)';
  const length = buffer.readUInt32LE(at + 4);
  if (length < batchHeaderBytes || length > batchBytesMax) return `the batch length ${length} is impossible`;
  if (available < length) return 0;
  if (buffer.readUInt32LE(at + 8) !== crc32(buffer.subarray(at + 12, at + length))) return 'the batch fails its checksum';
  return length;
}

function byteLengthOf(part: Uint8Array | string | null | undefined): number {
  if (part === null || part === undefined) return 0;
  return typeof part === 'string' ? Buffer.byteLength(part) : part.length;
}


export interface BatchInput {
  baseOffset: number;
  timestamp: number;
  producerId: number;
  producerSequence: number;
  records: ReadonlyArray<{ key?: Uint8Array | string | null; value: Uint8Array | string | null }>;
}

function storeInt32(buffer: Buffer, value: number, at: number): void {
  buffer[at] = value;
  buffer[at + 1] = value >>> 8;
  buffer[at + 2] = value >>> 16;
  buffer[at + 3] = value >>> 24;
}

/** The bytes a batch of these records takes; a RangeError when over `batchBytesMax`. */
export function batchLength(records: BatchInput['records']): number {
  const count = records.length;
  let length = batchHeaderBytes + recordHeaderBytes * count;
  for (let i = 0; i < count; i++) {
    const record = records[i];
    length += byteLengthOf(record.key) + byteLengthOf(record.value);
  }
  if (length > batchBytesMax) {
    throw new RangeError(`an append of ${length} bytes is larger than a batch may be (${batchBytesMax} bytes); append fewer records at a time`);
  }
  return length;
}

/** Encodes records into one batch with dense offsets from `baseOffset`. */
export function encodeBatch(input: BatchInput): Buffer {
  const length = batchLength(input.records);
  const buffer = Buffer.allocUnsafe(length);
  encodeBatchInto(buffer, input, length);
  return buffer;
}

/**
 * Encodes a batch into `buffer` (exactly `length` = batchLength(input.records) bytes long; a
 * view into a larger arena is fine) — no allocation, so a busy log does not churn the heap.
 */
export function encodeBatchInto(buffer: Buffer, input: BatchInput, length: number): void {
  const records = input.records;
  const count = records.length;
  buffer.writeUInt32LE(batchMagic, 0);
  buffer.writeUInt32LE(length, 4);
  buffer.writeUInt32LE(0, 12);
  writeUint64(buffer, input.baseOffset, 16);
  buffer.writeUInt32LE(count - 1, 24);
  buffer.writeUInt32LE(count, 28);
  writeUint64(buffer, input.timestamp, 32);
  writeUint64(buffer, input.producerId, 40);
  writeUint64(buffer, input.producerSequence, 48);
  buffer.fill(0, 56, 64);
  // The hot loop: plain byte stores (no bounds-checked helpers), bytes copied with set().
  let at = batchHeaderBytes;
  for (let i = 0; i < count; i++) {
    const record = records[i];
    const key = record.key;
    const value = record.value;
    storeInt32(buffer, i, at);
    let cursor = at + recordHeaderBytes;
    if (key === null || key === undefined) storeInt32(buffer, -1, at + 4);
    else {
      const n = typeof key === 'string' ? buffer.write(key, cursor) : (buffer.set(key, cursor), key.length);
      storeInt32(buffer, n, at + 4);
      cursor += n;
    }
    if (value === null) storeInt32(buffer, -1, at + 8);
    else {
      const n = typeof value === 'string' ? buffer.write(value, cursor) : (buffer.set(value, cursor), value.length);
      storeInt32(buffer, n, at + 8);
      cursor += n;
    }
    at = cursor;
  }
  buffer.writeUInt32LE(crc32(buffer.subarray(12, length)), 8);
}

/**
 * Re-encodes a batch keeping only the records `keep` accepts (compaction). Offsets, timestamp and
 * producer fields stay; the record count drops; the batch may end up with no records at all.
 */
export function filterBatch(batch: Buffer, keep: (offsetDelta: number, key: Buffer | null, value: Buffer | null) => boolean): Buffer {
  const header = readBatchHeader(batch, 0);
  const kept: Buffer[] = [batch.subarray(0, batchHeaderBytes)];
  let count = 0;
  let length = batchHeaderBytes;
  let at = batchHeaderBytes;
  for (let i = 0; i < header.recordCount; i++) {
    const delta = batch.readUInt32LE(at);
    const keyLength = batch.readInt32LE(at + 4);
    const valueLength = batch.readInt32LE(at + 8);
    const keyStart = at + recordHeaderBytes;
    const valueStart = keyStart + Math.max(keyLength, 0);
    const end = valueStart + Math.max(valueLength, 0);
    const key = keyLength < 0 ? null : batch.subarray(keyStart, valueStart);
    const value = valueLength < 0 ? null : batch.subarray(valueStart, end);
    if (keep(delta, key, value)) {
      kept.push(batch.subarray(at, end));
      length += end - at;
      count++;
    }
    at = end;
  }
  const out = Buffer.concat(kept, length);
  out.writeUInt32LE(length, 4);
  out.writeUInt32LE(count, 28);
  out.writeUInt32LE(crc32(out.subarray(12, length)), 8);
  return out;
}
