/**
 * How a change data capture source keeps what it captured in its log topic (`source.NAME`, one
 * partition, totally ordered): one record per committed source transaction — so a step never
 * splits one — and snapshot records before them.
 *
 * Record value (value codec of core/value-codec.ts):
 *
 *   uint8    format version (1)
 *   uint8    kind: 1 snapshot start, 2 snapshot rows, 3 snapshot end, 4 transaction,
 *            5 transaction part (the changes of a large transaction, written before its commit)
 *   string   the source position, JSON: {"lsn":"16/B374D848","xid":741,"time":"…"} (PostgreSQL);
 *            a transaction written in parts names them: "parts":[[first offset, count], …]
 *   varint   tables described, each: string qualified name, string columns as JSON [[name, type], …]
 *   varint   changes, each: varint table index, uint8 op (1 upsert, 2 delete, 3 truncate),
 *            varint count of unchanged columns + their indexes (TOAST values not sent), the row
 *
 * Invariants:
 * - A transaction record is appended only once the transaction committed upstream, and its
 *   position (the commit's end LSN) is what the source confirms upstream after the append is
 *   durable: on restart, transactions at or before the last record's position are skipped.
 * - A snapshot is bracketed by start and end records; a start record after an unfinished
 *   snapshot means "start over" for whoever applies the log.
 * - A large transaction is written in parts while it arrives, so its size never has to fit in
 *   memory at once. Parts mean nothing by themselves: the transaction record that commits them
 *   lists them (in order), and its changes are theirs followed by its own. Parts no commit names
 *   (an aborted transaction, a subtransaction rolled back, or one sent again after a restart)
 *   are never applied.
 */

import { ByteReader, ByteWriter, CorruptionError, type Row } from '../core/index.ts';

export const SNAPSHOT_START = 1;
export const SNAPSHOT_ROWS = 2;
export const SNAPSHOT_END = 3;
export const TRANSACTION = 4;
export const TRANSACTION_PART = 5;
export type SourceRecordKind = 1 | 2 | 3 | 4 | 5;

export const UPSERT = 1;
export const DELETE = 2;
export const TRUNCATE = 3;

export interface SourceTable {
  /** `schema.table` as the source names it. */
  name: string;
  columns: Array<[name: string, type: string]>;
}

export interface SourceChange {
  table: number;
  op: 1 | 2 | 3;
  /** Columns whose value was not sent (unchanged TOAST): take them from the previous row. */
  unchanged?: number[];
  row: Row;
}

export interface SourceRecord {
  kind: SourceRecordKind;
  position: Record<string, unknown>;
  tables: SourceTable[];
  changes: SourceChange[];
}

const FORMAT_VERSION = 1;

/** The log offsets of the parts a transaction record commits, from its position's `parts`. */
export function transactionParts(record: SourceRecord): number[] {
  const ranges = record.position.parts as Array<[number, number]> | undefined;
  const offsets: number[] = [];
  for (const [first, count] of ranges ?? []) for (let i = 0; i < count; i++) offsets.push(first + i);
  return offsets;
}

/** Offsets as `[first, count]` ranges (parts are mostly consecutive records). */
export function offsetRanges(offsets: number[]): Array<[number, number]> {
  const ranges: Array<[number, number]> = [];
  for (const offset of offsets) {
    const last = ranges.at(-1);
    if (last && last[0] + last[1] === offset) last[1]++;
    else ranges.push([offset, 1]);
  }
  return ranges;
}

export function encodeSourceRecord(record: SourceRecord): Uint8Array {
  const writer = new ByteWriter(Math.max(256, record.changes.length * 64));
  writer.uint8(FORMAT_VERSION);
  writer.uint8(record.kind);
  writer.string(JSON.stringify(record.position));
  writer.varint(record.tables.length);
  for (const table of record.tables) {
    writer.string(table.name);
    writer.string(JSON.stringify(table.columns));
  }
  writer.varint(record.changes.length);
  for (const change of record.changes) {
    writer.varint(change.table);
    writer.uint8(change.op);
    writer.varint(change.unchanged?.length ?? 0);
    for (const column of change.unchanged ?? []) writer.varint(column);
    writer.row(change.row);
  }
  return writer.finish().slice();
}

/** A record's kind, read without decoding it (the second byte; see the layout above). */
export function sourceRecordKind(value: Uint8Array | null | undefined): SourceRecordKind | undefined {
  return value && value.length > 1 ? (value[1] as SourceRecordKind) : undefined;
}

/** A record without its changes (cheap: what it is, where, and the tables it describes). */
export function decodeSourceHeader(value: Uint8Array, where: string): Omit<SourceRecord, 'changes'> {
  const reader = new ByteReader(value);
  try {
    return readHeader(reader);
  } catch (error) {
    throw new CorruptionError(where, reader.position, `unreadable source record (${(error as Error).message})`, 'the log was written by another program or is damaged');
  }
}

function readHeader(reader: ByteReader): Omit<SourceRecord, 'changes'> {
  const version = reader.uint8();
  if (version !== FORMAT_VERSION) throw new Error(`record format ${version}; this Sluice reads ${FORMAT_VERSION}`);
  const kind = reader.uint8() as SourceRecordKind;
  const position = JSON.parse(reader.string()) as Record<string, unknown>;
  const tables: SourceTable[] = [];
  for (let i = reader.varint(); i > 0; i--) tables.push({ name: reader.string(), columns: JSON.parse(reader.string()) as SourceTable['columns'] });
  return { kind, position, tables };
}

export function decodeSourceRecord(value: Uint8Array, where: string): SourceRecord {
  const reader = new ByteReader(value);
  try {
    const { kind, position, tables } = readHeader(reader);
    const changes: SourceChange[] = [];
    for (let i = reader.varint(); i > 0; i--) {
      const table = reader.varint();
      const op = reader.uint8() as 1 | 2 | 3;
      const unchanged: number[] = [];
      for (let u = reader.varint(); u > 0; u--) unchanged.push(reader.varint());
      changes.push({ table, op, ...(unchanged.length > 0 ? { unchanged } : {}), row: reader.row() });
    }
    if (!reader.done) throw new Error('bytes left over');
    return { kind, position, tables, changes };
  } catch (error) {
    throw new CorruptionError(where, reader.position, `unreadable source record (${(error as Error).message})`, 'the log was written by another program or is damaged');
  }
}
