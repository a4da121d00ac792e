/**
 * A decoder of PostgreSQL's logical replication protocol as the `pgoutput` plugin writes it
 * (PostgreSQL's "Logical Replication Message Formats"), protocol versions 1 and 2: the messages a
 * replication slot streams inside CopyData 'w' (XLogData) frames.
 *
 *   const decoder = new PgOutputDecoder();
 *   for (const bytes of frames) handle(decoder.decode(bytes));
 *
 * Version 2 adds streaming of large in-progress transactions: between Stream Start and Stream
 * Stop, the messages that carry changes (Relation, Type, Insert, Update, Delete, Truncate,
 * Message) start with the transaction id they belong to. The decoder keeps that state, so the
 * messages of one slot must be decoded in order by one decoder.
 *
 * Invariants:
 * - Every byte of a message is consumed; a message cut short or with bytes left over is refused
 *   with a PgOutputError naming the message and offset, never half-decoded.
 * - Column values stay as PostgreSQL sent them (text, or bytes in binary mode), with NULL and
 *   "unchanged TOAST" told apart: mapping them to Sluice values needs the column's type (schema.ts).
 * - LSNs and timestamps are bigints: an LSN is 64 bits, a timestamp microseconds since 2000-01-01.
 */

import { DefiniteError } from '../../core/index.ts';

/** Microseconds from the Unix epoch to PostgreSQL's (2000-01-01). */
export const POSTGRES_EPOCH_MICROS = 946_684_800_000_000n;

export type ColumnValue =
  | { kind: 'null' }
  /** A TOASTed value the change did not touch (and did not send): take it from the previous row image. */
  | { kind: 'unchanged' }
  | { kind: 'text'; value: string }
  | { kind: 'binary'; value: Uint8Array };

export interface RelationColumn {
  /** Part of the replica identity (the key sent with updates and deletes). */
  key: boolean;
  name: string;
  typeOid: number;
  typeModifier: number;
}

export type PgOutputMessage =
  | { type: 'begin'; finalLsn: bigint; commitTime: bigint; xid: number }
  | { type: 'commit'; flags: number; commitLsn: bigint; endLsn: bigint; commitTime: bigint }
  | { type: 'origin'; lsn: bigint; name: string }
  | {
      type: 'relation';
      xid?: number;
      relationOid: number;
      namespace: string;
      name: string;
      /** 'd' default (primary key), 'n' nothing, 'f' full, 'i' index. */
      replicaIdentity: string;
      columns: RelationColumn[];
    }
  | { type: 'type'; xid?: number; typeOid: number; namespace: string; name: string }
  | { type: 'insert'; xid?: number; relationOid: number; newTuple: ColumnValue[] }
  | {
      type: 'update';
      xid?: number;
      relationOid: number;
      /** The old key ('K', replica identity index or primary key changed) or old row ('O', REPLICA IDENTITY FULL), when sent. */
      oldKind?: 'key' | 'row';
      oldTuple?: ColumnValue[];
      newTuple: ColumnValue[];
    }
  | { type: 'delete'; xid?: number; relationOid: number; oldKind: 'key' | 'row'; oldTuple: ColumnValue[] }
  | { type: 'truncate'; xid?: number; cascade: boolean; restartIdentity: boolean; relationOids: number[] }
  | { type: 'message'; xid?: number; transactional: boolean; lsn: bigint; prefix: string; content: Uint8Array }
  | { type: 'streamStart'; xid: number; firstSegment: boolean }
  | { type: 'streamStop' }
  | { type: 'streamCommit'; xid: number; flags: number; commitLsn: bigint; endLsn: bigint; commitTime: bigint }
  | { type: 'streamAbort'; xid: number; subXid: number };

export class PgOutputError extends DefiniteError {
  override readonly name: string = 'PgOutputError';
  constructor(what: string) {
    super('pgoutput_invalid', what, 'the replication stream is not pgoutput protocol 1 or 2 as expected: check the slot uses the pgoutput plugin');
  }
}

export class PgOutputDecoder {
  /** The transaction being streamed (between Stream Start and Stream Stop), if any. */
  #streaming: number | undefined;

  get streamingXid(): number | undefined {
    return this.#streaming;
  }

  decode(bytes: Uint8Array): PgOutputMessage {
    const reader = new Reader(bytes);
    const tag = String.fromCharCode(reader.uint8());
    const xid = () => (this.#streaming !== undefined ? reader.int32() : undefined);
    const withXid = <T extends object>(id: number | undefined, message: T): T & { xid?: number } => (id === undefined ? message : { xid: id, ...message });
    let message: PgOutputMessage;
    switch (tag) {
      case 'B':
        message = { type: 'begin', finalLsn: reader.uint64(), commitTime: reader.int64(), xid: reader.uint32() };
        break;
      case 'C':
        message = { type: 'commit', flags: reader.uint8(), commitLsn: reader.uint64(), endLsn: reader.uint64(), commitTime: reader.int64() };
        break;
      case 'O':
        message = { type: 'origin', lsn: reader.uint64(), name: reader.string() };
        break;
      case 'R': {
        const id = xid();
        const relationOid = reader.uint32();
        const namespace = reader.string();
        const name = reader.string();
        const replicaIdentity = String.fromCharCode(reader.uint8());
        const count = reader.int16();
        const columns: RelationColumn[] = [];
        for (let i = 0; i < count; i++) columns.push({ key: (reader.uint8() & 1) === 1, name: reader.string(), typeOid: reader.uint32(), typeModifier: reader.int32() });
        message = withXid(id, { type: 'relation' as const, relationOid, namespace, name, replicaIdentity, columns });
        break;
      }
      case 'Y': {
        const id = xid();
        message = withXid(id, { type: 'type' as const, typeOid: reader.uint32(), namespace: reader.string(), name: reader.string() });
        break;
      }
      case 'I': {
        const id = xid();
        const relationOid = reader.uint32();
        reader.expect('N', 'an insert');
        message = withXid(id, { type: 'insert' as const, relationOid, newTuple: reader.tuple() });
        break;
      }
      case 'U': {
        const id = xid();
        const relationOid = reader.uint32();
        let marker = String.fromCharCode(reader.uint8());
        let oldKind: 'key' | 'row' | undefined;
        let oldTuple: ColumnValue[] | undefined;
        if (marker === 'K' || marker === 'O') {
          oldKind = marker === 'K' ? 'key' : 'row';
          oldTuple = reader.tuple();
          marker = String.fromCharCode(reader.uint8());
        }
        if (marker !== 'N') throw new PgOutputError(`an update has '${marker}' where the new tuple ('N') belongs, at byte ${reader.offset - 1}`);
        message = withXid(id, { type: 'update' as const, relationOid, ...(oldKind ? { oldKind, oldTuple: oldTuple! } : {}), newTuple: reader.tuple() });
        break;
      }
      case 'D': {
        const id = xid();
        const relationOid = reader.uint32();
        const marker = String.fromCharCode(reader.uint8());
        if (marker !== 'K' && marker !== 'O') throw new PgOutputError(`a delete has '${marker}' where the old key ('K') or row ('O') belongs, at byte ${reader.offset - 1}`);
        message = withXid(id, { type: 'delete' as const, relationOid, oldKind: marker === 'K' ? ('key' as const) : ('row' as const), oldTuple: reader.tuple() });
        break;
      }
      case 'T': {
        const id = xid();
        const count = reader.uint32();
        const options = reader.uint8();
        const relationOids: number[] = [];
        for (let i = 0; i < count; i++) relationOids.push(reader.uint32());
        message = withXid(id, { type: 'truncate' as const, cascade: (options & 1) !== 0, restartIdentity: (options & 2) !== 0, relationOids });
        break;
      }
      case 'M': {
        const id = xid();
        const flags = reader.uint8();
        const lsn = reader.uint64();
        const prefix = reader.string();
        const length = reader.uint32();
        message = withXid(id, { type: 'message' as const, transactional: (flags & 1) !== 0, lsn, prefix, content: reader.bytes(length) });
        break;
      }
      case 'S': {
        const id = reader.uint32();
        message = { type: 'streamStart', xid: id, firstSegment: reader.uint8() === 1 };
        this.#streaming = id;
        break;
      }
      case 'E':
        message = { type: 'streamStop' };
        this.#streaming = undefined;
        break;
      case 'c':
        message = { type: 'streamCommit', xid: reader.uint32(), flags: reader.uint8(), commitLsn: reader.uint64(), endLsn: reader.uint64(), commitTime: reader.int64() };
        break;
      case 'A': {
        message = { type: 'streamAbort', xid: reader.uint32(), subXid: reader.uint32() };
        // Protocol 4 adds the abort's LSN and time (parallel apply); they are not needed here.
        if (reader.remaining === 16) reader.bytes(16);
        break;
      }
      default:
        throw new PgOutputError(`unknown pgoutput message type '${tag}' (byte ${bytes[0]})`);
    }
    if (reader.remaining !== 0) throw new PgOutputError(`a ${message.type} message has ${reader.remaining} bytes left over`);
    return message;
  }
}

/** An LSN as PostgreSQL prints it: `16/B374D848`. */
export function formatLsn(lsn: bigint): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

export function parseLsn(text: string): bigint {
  const match = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text);
  if (!match) throw new DefiniteError('lsn_invalid', `"${text}" is not an LSN`, 'an LSN is written as two hexadecimal numbers: 16/B374D848');
  return (BigInt(`0x${match[1]}`) << 32n) | BigInt(`0x${match[2]}`);
}

/** A pgoutput timestamp (microseconds since 2000-01-01) as microseconds since the Unix epoch. */
export function unixMicros(postgresMicros: bigint): bigint {
  return postgresMicros + POSTGRES_EPOCH_MICROS;
}

const textDecoder = new TextDecoder('utf-8', { fatal: true });

class Reader {
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  offset = 0;

  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get remaining(): number {
    return this.#bytes.length - this.offset;
  }

  #need(count: number, what: string): void {
    if (this.offset + count > this.#bytes.length) throw new PgOutputError(`the message ends at byte ${this.#bytes.length} inside ${what} (${count} bytes needed at byte ${this.offset})`);
  }

  uint8(): number {
    this.#need(1, 'a byte');
    return this.#bytes[this.offset++]!;
  }

  int16(): number {
    this.#need(2, 'an Int16');
    const value = this.#view.getInt16(this.offset);
    this.offset += 2;
    return value;
  }

  int32(): number {
    this.#need(4, 'an Int32');
    const value = this.#view.getInt32(this.offset);
    this.offset += 4;
    return value;
  }

  uint32(): number {
    this.#need(4, 'an Int32');
    const value = this.#view.getUint32(this.offset);
    this.offset += 4;
    return value;
  }

  int64(): bigint {
    this.#need(8, 'an Int64');
    const value = this.#view.getBigInt64(this.offset);
    this.offset += 8;
    return value;
  }

  uint64(): bigint {
    this.#need(8, 'an Int64');
    const value = this.#view.getBigUint64(this.offset);
    this.offset += 8;
    return value;
  }

  /** A NUL-terminated UTF-8 string. */
  string(): string {
    const end = this.#bytes.indexOf(0, this.offset);
    if (end < 0) throw new PgOutputError(`a string starting at byte ${this.offset} has no terminating NUL`);
    const value = textDecoder.decode(this.#bytes.subarray(this.offset, end));
    this.offset = end + 1;
    return value;
  }

  bytes(count: number): Uint8Array {
    this.#need(count, `${count} bytes of data`);
    const value = this.#bytes.subarray(this.offset, this.offset + count);
    this.offset += count;
    return value;
  }

  expect(marker: string, what: string): void {
    const found = String.fromCharCode(this.uint8());
    if (found !== marker) throw new PgOutputError(`${what} has '${found}' where '${marker}' belongs, at byte ${this.offset - 1}`);
  }

  /** TupleData: Int16 columns, each 'n' (null), 'u' (unchanged TOAST), 't' (text) or 'b' (binary) with Int32 length + bytes. */
  tuple(): ColumnValue[] {
    const count = this.int16();
    const values: ColumnValue[] = new Array(count);
    for (let i = 0; i < count; i++) {
      const kind = String.fromCharCode(this.uint8());
      switch (kind) {
        case 'n':
          values[i] = { kind: 'null' };
          break;
        case 'u':
          values[i] = { kind: 'unchanged' };
          break;
        case 't': {
          const length = this.uint32();
          this.#need(length, `column ${i}'s text`);
          values[i] = { kind: 'text', value: textDecoder.decode(this.#bytes.subarray(this.offset, this.offset + length)) };
          this.offset += length;
          break;
        }
        case 'b':
          values[i] = { kind: 'binary', value: this.bytes(this.uint32()).slice() };
          break;
        default:
          throw new PgOutputError(`column ${i} of a tuple has kind '${kind}' (expected n, u, t or b), at byte ${this.offset - 1}`);
      }
    }
    return values;
  }
}
