/**
 * How appends to a table are kept in its log topic (`table.NAME`, one partition): one record per
 * append — one transaction — so a step, which reads whole records, never splits it.
 *
 * Record value (value codec of core/value-codec.ts):
 *
 *   uint8    format version (1)
 *   string   the append's Idempotency-Key, or '' for none
 *   string   the column names the rows are written in, as a JSON array
 *   varint   number of changes
 *   …        each change: uint8 op (1 insert — an upsert on keyed tables — 2 delete), then the row
 *
 * Rows are stored checked and complete (defaults evaluated at append time), so replaying the log
 * gives the same rows however often it is replayed. Columns are named, so a table that gained a
 * column since reads old records with NULL in it.
 */

import { ByteReader, ByteWriter, CorruptionError, type Row, type Value } from '../core/index.ts';

const FORMAT_VERSION = 1;
export const INSERT = 1;
export const DELETE = 2;

export interface TableRecord {
  idempotencyKey: string;
  ops: Uint8Array;
  rows: Row[];
}

/** One writer reused by every encoding (they are synchronous); each result is a copy. */
const shared = new ByteWriter(1 << 16);
const columnsText = new WeakMap<readonly string[], string>();

export function encodeTableRecord(columns: readonly string[], ops: ArrayLike<number>, rows: readonly Row[], idempotencyKey = ''): Uint8Array {
  const writer = shared;
  writer.reset();
  let names = columnsText.get(columns);
  if (names === undefined) columnsText.set(columns, (names = JSON.stringify(columns)));
  writer.uint8(FORMAT_VERSION);
  writer.string(idempotencyKey);
  writer.string(names);
  writer.varint(rows.length);
  for (let i = 0; i < rows.length; i++) {
    writer.uint8(ops[i]!);
    writer.row(rows[i]!);
  }
  return writer.finish().slice();
}

/** Just the idempotency key of a record (cheap: for rebuilding the key index on start). */
export function recordIdempotencyKey(value: Uint8Array): string {
  const reader = new ByteReader(value);
  reader.uint8();
  return reader.string();
}

/** Decodes a record into rows laid out as `columns` (the table's current columns). */
export function decodeTableRecord(value: Uint8Array, columns: readonly string[], where: string): TableRecord {
  const reader = new ByteReader(value);
  try {
    const version = reader.uint8();
    if (version !== FORMAT_VERSION) throw new Error(`record format ${version}; this Sluice reads ${FORMAT_VERSION}`);
    const idempotencyKey = reader.string();
    const written = JSON.parse(reader.string()) as string[];
    const n = reader.varint();
    const ops = new Uint8Array(n);
    const rows: Row[] = new Array(n);
    const same = written.length === columns.length && written.every((c, i) => c === columns[i]);
    const map = same ? undefined : columns.map((c) => written.indexOf(c));
    for (let i = 0; i < n; i++) {
      ops[i] = reader.uint8();
      const row = reader.row();
      rows[i] = map ? map.map((j): Value => (j < 0 ? null : row[j]!)) : row;
    }
    return { idempotencyKey, ops, rows };
  } catch (error) {
    throw new CorruptionError(where, reader.position, `unreadable table record (${(error as Error).message})`, 'the log was written by another program or is damaged');
  }
}
