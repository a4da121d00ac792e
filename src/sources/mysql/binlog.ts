/**
 * A MySQL/MariaDB binary log decoder: the events a replica receives (COM_BINLOG_DUMP), each
 * checked against its CRC32 and decoded — transaction boundaries (GTID, XID, COMMIT), DDL (query
 * events), table maps and row events with every column value read exactly.
 *
 *   const decoder = new BinlogDecoder();
 *   for (const bytes of events) handle(decoder.decode(bytes));   // in order: table maps before rows
 *
 * Values, by column type (what `binlog_row_metadata=FULL` adds — names, signedness, charsets,
 * ENUM/SET values, the primary key — is used when present):
 *
 *   TINY/SHORT/INT24/LONG       number (unsigned when the column is)
 *   LONGLONG                    bigint (unsigned when the column is)
 *   FLOAT/DOUBLE                number
 *   NEWDECIMAL                  Decimal, exact, of the column's scale (prints "-12.50")
 *   DATE, DATETIME(2), TIME(2)  string as MySQL prints it ("2024-02-29 13:05:09.120000")
 *   TIMESTAMP(2)                string in UTC with its offset ("2024-02-29 13:05:09.12+00")
 *   YEAR                        number
 *   CHAR/VARCHAR/TEXT           string (UTF-8); Uint8Array for binary columns (BINARY, BLOB)
 *   ENUM, SET                   string (the member names, SET's joined by ",")
 *   BIT                         bigint
 *   JSON                        string: MySQL's binary JSON as MySQL prints it (json-binary.ts);
 *                               MariaDB's JSON is LONGTEXT and arrives as text
 *
 * Invariant: an event that does not decode (a CRC mismatch, a type not known, bytes left over) is
 * an error naming the event and the position, never a guessed value.
 */

import zlib from 'node:zlib';
import { Decimal, DefiniteError } from '../../core/index.ts';
import { decodeMysqlJson } from './json-binary.ts';
import { decimalSize, decodeDecimal } from './decimal.ts';

export const EVENT = {
  QUERY: 2,
  STOP: 3,
  ROTATE: 4,
  FORMAT_DESCRIPTION: 15,
  XID: 16,
  TABLE_MAP: 19,
  WRITE_ROWS_V1: 23,
  UPDATE_ROWS_V1: 24,
  DELETE_ROWS_V1: 25,
  HEARTBEAT: 27,
  WRITE_ROWS: 30,
  UPDATE_ROWS: 31,
  DELETE_ROWS: 32,
  GTID_MYSQL: 33,
  ANONYMOUS_GTID_MYSQL: 34,
  PREVIOUS_GTIDS_MYSQL: 35,
  ANNOTATE_ROWS: 160,
  BINLOG_CHECKPOINT: 161,
  GTID_MARIADB: 162,
  GTID_LIST_MARIADB: 163,
} as const;

/** Column types (MYSQL_TYPE_*). */
export const TYPE = {
  DECIMAL: 0,
  TINY: 1,
  SHORT: 2,
  LONG: 3,
  FLOAT: 4,
  DOUBLE: 5,
  NULL: 6,
  TIMESTAMP: 7,
  LONGLONG: 8,
  INT24: 9,
  DATE: 10,
  TIME: 11,
  DATETIME: 12,
  YEAR: 13,
  NEWDATE: 14,
  VARCHAR: 15,
  BIT: 16,
  TIMESTAMP2: 17,
  DATETIME2: 18,
  TIME2: 19,
  JSON: 245,
  NEWDECIMAL: 246,
  ENUM: 247,
  SET: 248,
  TINY_BLOB: 249,
  MEDIUM_BLOB: 250,
  LONG_BLOB: 251,
  BLOB: 252,
  VAR_STRING: 253,
  STRING: 254,
  GEOMETRY: 255,
} as const;

const BINARY_CHARSET = 63;

export interface EventHeader {
  timestamp: number;
  type: number;
  serverId: number;
  size: number;
  /** The position of the next event in the binlog file (0 for artificial events). */
  nextPosition: number;
  flags: number;
}

export interface BinlogColumn {
  /** Null when the server did not send names (binlog_row_metadata=MINIMAL). */
  name: string | null;
  /** The type on the wire (ENUM and SET arrive as STRING, with `real` saying which). */
  type: number;
  /** ENUM, SET or STRING for a STRING column; the type otherwise. */
  real: number;
  /** Type metadata: max length, precision and scale, fractional digits, length bytes … */
  meta: number;
  scale: number;
  nullable: boolean;
  unsigned: boolean;
  /** Character set collation id; 63 is binary. Undefined when not sent. */
  charset: number | undefined;
  /** ENUM or SET members. */
  members?: string[];
  key: boolean;
}

export interface TableMap {
  tableId: number;
  schema: string;
  table: string;
  columns: BinlogColumn[];
}

/** A column's value as the binlog has it (DECIMAL exact, with its column's scale). */
export type RawValue = null | number | bigint | string | Uint8Array | Decimal;
export type RawRow = RawValue[];

export type BinlogEvent =
  | { kind: 'formatDescription'; header: EventHeader; binlogVersion: number; serverVersion: string; checksum: boolean }
  | { kind: 'rotate'; header: EventHeader; file: string; position: number }
  | { kind: 'query'; header: EventHeader; schema: string; sql: string }
  | { kind: 'xid'; header: EventHeader; xid: bigint }
  | { kind: 'tableMap'; header: EventHeader; table: TableMap }
  | { kind: 'rows'; header: EventHeader; op: 'insert' | 'update' | 'delete'; table: TableMap; rows: RawRow[]; before?: RawRow[] }
  /** A transaction starts (MariaDB: domain-server-sequence; MySQL: uuid:sequence); `standalone` for DDL. */
  | { kind: 'gtid'; header: EventHeader; gtid: string; standalone: boolean }
  | { kind: 'heartbeat'; header: EventHeader }
  | { kind: 'other'; header: EventHeader };

const HEADER_LENGTH = 19;

export class BinlogDecoder {
  #checksum: boolean;
  readonly #tables = new Map<number, TableMap>();

  /**
   * `checksum`: whether events carry a CRC32 before the format description event says so (a
   * replica's stream starts with an artificial rotate event, checksummed as the server's
   * binlog_checksum says).
   */
  constructor(options: { checksum?: boolean } = {}) {
    this.#checksum = options.checksum ?? false;
  }

  /** The table map a rows event refers to (its last TABLE_MAP). */
  table(tableId: number): TableMap | undefined {
    return this.#tables.get(tableId);
  }

  /** One event (without the network packet's leading 0x00). */
  decode(bytes: Uint8Array): BinlogEvent {
    const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (buffer.length < HEADER_LENGTH) throw corrupt('an event shorter than its header', undefined, buffer.length);
    const header: EventHeader = {
      timestamp: buffer.readUInt32LE(0),
      type: buffer[4]!,
      serverId: buffer.readUInt32LE(5),
      size: buffer.readUInt32LE(9),
      nextPosition: buffer.readUInt32LE(13),
      flags: buffer.readUInt16LE(17),
    };
    if (header.size !== buffer.length) throw corrupt(`an event of ${buffer.length} bytes says it has ${header.size}`, header);
    let end = buffer.length;
    // The format description event says whether events carry a CRC32 (it always carries one
    // itself when the server checksums); every other event is checked against it.
    if (header.type === EVENT.FORMAT_DESCRIPTION) {
      const algorithmAt = buffer.length - 5;
      const checksum = buffer.length >= HEADER_LENGTH + 57 + 5 && buffer[algorithmAt] === 1;
      if (checksum) verify(buffer, header);
      this.#checksum = checksum;
      const reader = new Reader(buffer.subarray(0, checksum ? buffer.length - 4 : buffer.length), HEADER_LENGTH, header);
      const binlogVersion = reader.uint16();
      const serverVersion = reader.bytes(50).toString('latin1').replace(/\0.*$/s, '');
      return { kind: 'formatDescription', header, binlogVersion, serverVersion, checksum };
    }
    if (this.#checksum) {
      verify(buffer, header);
      end -= 4;
    }
    const reader = new Reader(buffer.subarray(0, end), HEADER_LENGTH, header);
    switch (header.type) {
      case EVENT.ROTATE: {
        const position = Number(reader.uint64());
        return { kind: 'rotate', header, position, file: reader.rest().toString('utf8') };
      }
      case EVENT.QUERY: {
        reader.skip(8); // thread id, execution time
        const schemaLength = reader.uint8();
        reader.skip(2); // error code
        const statusLength = reader.uint16();
        reader.skip(statusLength);
        const schema = reader.bytes(schemaLength).toString('utf8');
        reader.skip(1);
        return { kind: 'query', header, schema, sql: reader.rest().toString('utf8') };
      }
      case EVENT.XID:
        return { kind: 'xid', header, xid: reader.uint64() };
      case EVENT.TABLE_MAP: {
        const table = readTableMap(reader);
        this.#tables.set(table.tableId, table);
        return { kind: 'tableMap', header, table };
      }
      case EVENT.WRITE_ROWS_V1:
      case EVENT.UPDATE_ROWS_V1:
      case EVENT.DELETE_ROWS_V1:
      case EVENT.WRITE_ROWS:
      case EVENT.UPDATE_ROWS:
      case EVENT.DELETE_ROWS:
        return this.#rows(reader, header);
      case EVENT.GTID_MARIADB: {
        // Sequence number, domain id, flags (FL_STANDALONE 1: no transaction follows, e.g. DDL).
        const sequence = reader.uint64();
        const domain = reader.uint32();
        const flags = reader.uint8();
        return { kind: 'gtid', header, gtid: `${domain}-${header.serverId}-${sequence}`, standalone: (flags & 1) !== 0 };
      }
      case EVENT.GTID_MYSQL: {
        const flags = reader.uint8();
        const uuid = reader.bytes(16).toString('hex');
        const sequence = reader.uint64();
        const formatted = `${uuid.slice(0, 8)}-${uuid.slice(8, 12)}-${uuid.slice(12, 16)}-${uuid.slice(16, 20)}-${uuid.slice(20)}`;
        void flags; // MySQL marks DDL with query events, not the GTID
        return { kind: 'gtid', header, gtid: `${formatted}:${sequence}`, standalone: false };
      }
      case EVENT.HEARTBEAT:
        return { kind: 'heartbeat', header };
      case 39: // MySQL PARTIAL_UPDATE_ROWS (binlog_row_value_options=PARTIAL_JSON)
      case 40: // MySQL TRANSACTION_PAYLOAD (binlog_transaction_compression=ON)
      case 165: // MariaDB compressed query and rows events (log_bin_compress=ON)
      case 166:
      case 167:
      case 168:
      case 169:
      case 170:
      case 171:
        // Skipping these would lose changes without a word.
        throw new DefiniteError('binlog_type', `binlog event type ${header.type} (compressed or partial row events) ending at position ${header.nextPosition} is not read yet`, 'turn off log_bin_compress (MariaDB), binlog_transaction_compression and PARTIAL_JSON (MySQL); the preflight names them');
      default:
        return { kind: 'other', header };
    }
  }

  #rows(reader: Reader, header: EventHeader): BinlogEvent {
    const tableId = reader.uintN(6);
    reader.skip(2); // flags
    if (header.type >= EVENT.WRITE_ROWS) reader.skip(reader.uint16() - 2); // v2: extra data, its length included
    const count = reader.lengthEncoded();
    const table = this.#tables.get(tableId);
    if (!table) throw corrupt(`a rows event for table id ${tableId} without its table map`, header);
    if (count !== table.columns.length) throw corrupt(`a rows event with ${count} columns for ${table.schema}.${table.table}, which the table map gives ${table.columns.length}`, header);
    const present = reader.bitmap(count);
    const update = header.type === EVENT.UPDATE_ROWS_V1 || header.type === EVENT.UPDATE_ROWS;
    const presentAfter = update ? reader.bitmap(count) : present;
    const rows: RawRow[] = [];
    const before: RawRow[] = [];
    while (!reader.done) {
      if (update) {
        before.push(readRow(reader, table, present));
        rows.push(readRow(reader, table, presentAfter));
      } else rows.push(readRow(reader, table, present));
    }
    const op = update ? 'update' : header.type === EVENT.WRITE_ROWS_V1 || header.type === EVENT.WRITE_ROWS ? 'insert' : 'delete';
    return { kind: 'rows', header, op, table, rows, ...(update ? { before } : {}) };
  }
}

function verify(buffer: Buffer, header: EventHeader): void {
  const expected = buffer.readUInt32LE(buffer.length - 4);
  const actual = zlib.crc32(buffer.subarray(0, buffer.length - 4)) >>> 0;
  if (expected !== actual) throw corrupt(`a CRC32 mismatch (the event says ${expected.toString(16)}, its bytes give ${actual.toString(16)})`, header);
}

function corrupt(what: string, header: EventHeader | undefined, at?: number): DefiniteError {
  const where = header ? `binlog event type ${header.type} ending at position ${header.nextPosition}` : 'a binlog event';
  return new DefiniteError('binlog_corrupt', `${where}: ${what}${at !== undefined ? ` (at byte ${at})` : ''}`, 'the server sent what Sluice cannot read: please report it with the server version');
}

function readTableMap(reader: Reader): TableMap {
  const tableId = reader.uintN(6);
  reader.skip(2); // flags
  const schema = reader.bytes(reader.uint8()).toString('utf8');
  reader.skip(1);
  const table = reader.bytes(reader.uint8()).toString('utf8');
  reader.skip(1);
  const count = reader.lengthEncoded();
  const types = [...reader.bytes(count)];
  const metaEnd = reader.lengthEncoded() + reader.position;
  const columns: BinlogColumn[] = types.map((type) => ({ name: null, type, real: type, meta: 0, scale: 0, nullable: true, unsigned: false, charset: undefined, key: false }));
  for (const column of columns) {
    switch (column.type) {
      case TYPE.FLOAT:
      case TYPE.DOUBLE:
      case TYPE.BLOB:
      case TYPE.GEOMETRY:
      case TYPE.JSON:
      case TYPE.TIMESTAMP2:
      case TYPE.DATETIME2:
      case TYPE.TIME2:
        column.meta = reader.uint8();
        break;
      case TYPE.VARCHAR:
      case TYPE.VAR_STRING:
        column.meta = reader.uint16();
        break;
      case TYPE.BIT: {
        const bits = reader.uint8();
        const bytes = reader.uint8();
        column.meta = bytes * 8 + bits;
        break;
      }
      case TYPE.NEWDECIMAL:
        column.meta = reader.uint8(); // precision
        column.scale = reader.uint8();
        break;
      case TYPE.STRING:
      case TYPE.ENUM:
      case TYPE.SET: {
        const first = reader.uint8();
        const second = reader.uint8();
        if ((first & 0x30) !== 0x30) {
          // A CHAR longer than 255 bytes keeps two length bits in the type byte.
          column.real = first | 0x30;
          column.meta = (((first & 0x30) ^ 0x30) << 4) | second;
        } else {
          column.real = first;
          column.meta = second;
        }
        break;
      }
      default:
        break;
    }
  }
  reader.seek(metaEnd);
  const nullable = reader.bitmap(count);
  columns.forEach((column, i) => (column.nullable = nullable[i]!));
  // Optional metadata (binlog_row_metadata=FULL): type, length, value.
  const numeric = columns.filter((c) => isNumeric(c.type));
  const characterColumns = columns.filter((c) => isCharacter(c));
  const enumSet = columns.filter((c) => c.real === TYPE.ENUM || c.real === TYPE.SET);
  let defaultCharset: number | undefined;
  while (!reader.done) {
    const field = reader.uint8();
    const length = reader.lengthEncoded();
    const end = reader.position + length;
    switch (field) {
      case 1: {
        // SIGNEDNESS: a bit per numeric column, most significant first; 1 is unsigned.
        const bits = reader.bytes(length);
        numeric.forEach((column, i) => (column.unsigned = (bits[i >> 3]! & (0x80 >> (i & 7))) !== 0));
        break;
      }
      case 2: {
        // DEFAULT_CHARSET: the default, then (column index, charset) pairs for the others.
        defaultCharset = reader.lengthEncoded();
        for (const column of characterColumns) column.charset = defaultCharset;
        while (reader.position < end) {
          const index = reader.lengthEncoded();
          const charset = reader.lengthEncoded();
          if (characterColumns[index]) characterColumns[index]!.charset = charset;
        }
        break;
      }
      case 3:
        for (const column of characterColumns) column.charset = reader.lengthEncoded();
        break;
      case 4:
        for (const column of columns) column.name = reader.bytes(reader.lengthEncoded()).toString('utf8');
        break;
      case 5:
      case 6: {
        // SET_STR_VALUE, ENUM_STR_VALUE: for each SET (or ENUM) column, its members.
        const kind = field === 5 ? TYPE.SET : TYPE.ENUM;
        for (const column of enumSet.filter((c) => c.real === kind)) {
          const members: string[] = [];
          for (let n = reader.lengthEncoded(); n > 0; n--) members.push(reader.bytes(reader.lengthEncoded()).toString('utf8'));
          column.members = members;
        }
        break;
      }
      case 8:
        // SIMPLE_PRIMARY_KEY: column indexes.
        while (reader.position < end) columns[reader.lengthEncoded()]!.key = true;
        break;
      case 9:
        // PRIMARY_KEY_WITH_PREFIX: (column index, prefix length) pairs.
        while (reader.position < end) {
          columns[reader.lengthEncoded()]!.key = true;
          reader.lengthEncoded();
        }
        break;
      default:
        break;
    }
    reader.seek(end);
  }
  return { tableId, schema, table, columns };
}

function isNumeric(type: number): boolean {
  return type === TYPE.TINY || type === TYPE.SHORT || type === TYPE.INT24 || type === TYPE.LONG || type === TYPE.LONGLONG || type === TYPE.FLOAT || type === TYPE.DOUBLE || type === TYPE.NEWDECIMAL || type === TYPE.DECIMAL;
}

/** Columns with a character set in the optional metadata: strings and blobs, not ENUM/SET. */
function isCharacter(column: BinlogColumn): boolean {
  if (column.real === TYPE.ENUM || column.real === TYPE.SET) return false;
  return column.type === TYPE.STRING || column.type === TYPE.VARCHAR || column.type === TYPE.VAR_STRING || column.type === TYPE.BLOB || column.type === TYPE.GEOMETRY;
}

function readRow(reader: Reader, table: TableMap, present: boolean[]): RawRow {
  const presentCount = present.filter(Boolean).length;
  const nulls = reader.bitmap(presentCount);
  const row: RawRow = [];
  let p = 0;
  for (let i = 0; i < table.columns.length; i++) {
    if (!present[i]) {
      row.push(null);
      continue;
    }
    const isNull = nulls[p++]!;
    row.push(isNull ? null : readValue(reader, table.columns[i]!, table));
  }
  return row;
}

function readValue(reader: Reader, column: BinlogColumn, table: TableMap): RawValue {
  switch (column.type) {
    case TYPE.TINY:
      return column.unsigned ? reader.uint8() : reader.int8();
    case TYPE.SHORT:
      return column.unsigned ? reader.uint16() : reader.int16();
    case TYPE.INT24: {
      const value = reader.uintN(3);
      return column.unsigned || value < 0x800000 ? value : value - 0x1000000;
    }
    case TYPE.LONG:
      return column.unsigned ? reader.uint32() : reader.int32();
    case TYPE.LONGLONG:
      return column.unsigned ? reader.uint64() : reader.int64();
    case TYPE.FLOAT:
      return reader.float();
    case TYPE.DOUBLE:
      return reader.double();
    case TYPE.NEWDECIMAL:
      return readDecimal(reader, column.meta, column.scale);
    case TYPE.YEAR: {
      const year = reader.uint8();
      return year === 0 ? 0 : 1900 + year;
    }
    case TYPE.DATE: {
      const value = reader.uintN(3);
      return `${pad(value >> 9, 4)}-${pad((value >> 5) & 15, 2)}-${pad(value & 31, 2)}`;
    }
    case TYPE.DATETIME2: {
      // 40 bits big-endian: sign, year*13+month (17), day (5), hour (5), minute (6), second (6).
      const packed = reader.uintBE(5) - 0x8000000000;
      const fraction = readFraction(reader, column.meta);
      const ymd = Math.floor(packed / 2 ** 17);
      const yearMonth = Math.floor(ymd / 32);
      const hms = packed % 2 ** 17;
      const date = `${pad(Math.floor(yearMonth / 13), 4)}-${pad(yearMonth % 13, 2)}-${pad(ymd % 32, 2)}`;
      return `${date} ${pad(Math.floor(hms / 4096), 2)}:${pad(Math.floor(hms / 64) % 64, 2)}:${pad(hms % 64, 2)}${fraction}`;
    }
    case TYPE.TIMESTAMP2: {
      const seconds = reader.uintBE(4);
      const fraction = readFraction(reader, column.meta);
      const text = new Date(seconds * 1000).toISOString().slice(0, 19).replace('T', ' ');
      return `${text}${fraction}+00`;
    }
    case TYPE.TIME2:
      return readTime2(reader, column.meta);
    case TYPE.TIMESTAMP: {
      const seconds = reader.uint32();
      return `${new Date(seconds * 1000).toISOString().slice(0, 19).replace('T', ' ')}+00`;
    }
    case TYPE.DATETIME: {
      const value = reader.uint64(); // YYYYMMDDhhmmss as a number
      const text = value.toString().padStart(14, '0');
      return `${text.slice(0, 4)}-${text.slice(4, 6)}-${text.slice(6, 8)} ${text.slice(8, 10)}:${text.slice(10, 12)}:${text.slice(12, 14)}`;
    }
    case TYPE.VARCHAR:
    case TYPE.VAR_STRING: {
      const length = column.meta < 256 ? reader.uint8() : reader.uint16();
      return text(reader.bytes(length), column);
    }
    case TYPE.STRING:
    case TYPE.ENUM:
    case TYPE.SET: {
      if (column.real === TYPE.ENUM) {
        const index = column.meta === 1 ? reader.uint8() : reader.uint16();
        if (index === 0) return ''; // the error value MySQL stores for an invalid member
        return column.members?.[index - 1] ?? String(index);
      }
      if (column.real === TYPE.SET) {
        const bits = reader.uintLE(column.meta);
        const members: string[] = [];
        for (let i = 0; i < 64; i++) if (bits & (1n << BigInt(i))) members.push(column.members?.[i] ?? String(i + 1));
        return members.join(',');
      }
      const length = column.meta < 256 ? reader.uint8() : reader.uint16();
      return text(reader.bytes(length), column);
    }
    case TYPE.BLOB:
    case TYPE.GEOMETRY: {
      const length = Number(reader.uintLE(column.meta));
      const bytes = reader.bytes(length);
      return column.type === TYPE.GEOMETRY ? Uint8Array.from(bytes) : text(bytes, column);
    }
    case TYPE.BIT:
      return reader.uintBigBE(Math.ceil(column.meta / 8));
    case TYPE.JSON: {
      // MySQL's binary JSON, length-prefixed like a BLOB (the metadata says how many length bytes).
      const bytes = reader.bytes(Number(reader.uintLE(column.meta)));
      try {
        return decodeMysqlJson(bytes);
      } catch (error) {
        if (!(error instanceof DefiniteError)) throw error;
        throw new DefiniteError(error.code, `${table.schema}.${table.table}, column ${column.name ?? '?'}: ${error.message}`, error.hint, { cause: error });
      }
    }
    default:
      throw new DefiniteError('binlog_type', `${table.schema}.${table.table}, column ${column.name ?? '?'}: column type ${column.type} is not known`, 'please report it with the column\'s type');
  }
}

/** A string column's bytes: UTF-8 text, or bytes for the binary character set. */
function text(bytes: Buffer, column: BinlogColumn): string | Uint8Array {
  if (column.charset === BINARY_CHARSET) return Uint8Array.from(bytes);
  return bytes.toString('utf8');
}

function pad(value: number, width: number): string {
  return String(value).padStart(width, '0');
}

/** Fractional seconds of TIME2/DATETIME2/TIMESTAMP2 as ".ffffff" (empty for none). */
function readFraction(reader: Reader, digits: number): string {
  if (digits <= 0) return '';
  const bytes = Math.ceil(digits / 2);
  const value = reader.uintBE(bytes);
  // Stored in units of 10^(6 - 2*bytes) microseconds.
  const micros = value * 10 ** (6 - 2 * bytes);
  return `.${pad(micros, 6).slice(0, digits)}`;
}

function readTime2(reader: Reader, digits: number): string {
  // 24 bits big-endian: sign, unused, hour (10), minute (6), second (6); then the fraction, both
  // offset so that a negative time sorts below zero.
  const bytes = Math.ceil(digits / 2);
  const total = reader.uintBE(3) * 2 ** (8 * bytes) + (bytes > 0 ? reader.uintBE(bytes) : 0);
  const zero = 0x800000 * 2 ** (8 * bytes);
  let value = total - zero;
  const negative = value < 0;
  if (negative) value = -value;
  const fractionUnits = value % 2 ** (8 * bytes);
  const whole = Math.floor(value / 2 ** (8 * bytes));
  const hour = Math.floor(whole / 4096) % 1024;
  const minute = Math.floor(whole / 64) % 64;
  const second = whole % 64;
  const fraction = bytes > 0 ? `.${pad(fractionUnits * 10 ** (6 - 2 * bytes), 6).slice(0, digits)}` : '';
  return `${negative ? '-' : ''}${pad(hour, 2)}:${pad(minute, 2)}:${pad(second, 2)}${fraction}`;
}

/** MySQL's binary DECIMAL(precision, scale) (decimal.ts). */
function readDecimal(reader: Reader, precision: number, scale: number): Decimal {
  const at = reader.position;
  return decodeDecimal(reader.bytes(decimalSize(precision, scale)), precision, scale, (what) => reader.corrupt(what, at));
}

/** Little-endian reads over one event, with positions for error messages. */
class Reader {
  readonly #buffer: Buffer;
  readonly #header: EventHeader;
  position: number;

  constructor(buffer: Buffer, position: number, header: EventHeader) {
    this.#buffer = buffer;
    this.position = position;
    this.#header = header;
  }

  /** An error naming what was wrong at `at` in this event. */
  corrupt(what: string, at: number): DefiniteError {
    return corrupt(what, this.#header, at);
  }

  get done(): boolean {
    return this.position >= this.#buffer.length;
  }

  #need(n: number): number {
    const at = this.position;
    if (at + n > this.#buffer.length) throw corrupt(`${n} bytes needed, ${this.#buffer.length - at} left`, this.#header, at);
    this.position += n;
    return at;
  }

  skip(n: number): void {
    this.#need(n);
  }

  seek(position: number): void {
    if (position > this.#buffer.length) throw corrupt(`a length past the event's end`, this.#header, position);
    this.position = position;
  }

  uint8(): number {
    return this.#buffer[this.#need(1)]!;
  }
  int8(): number {
    return this.#buffer.readInt8(this.#need(1));
  }
  uint16(): number {
    return this.#buffer.readUInt16LE(this.#need(2));
  }
  int16(): number {
    return this.#buffer.readInt16LE(this.#need(2));
  }
  uint32(): number {
    return this.#buffer.readUInt32LE(this.#need(4));
  }
  int32(): number {
    return this.#buffer.readInt32LE(this.#need(4));
  }
  uint64(): bigint {
    return this.#buffer.readBigUInt64LE(this.#need(8));
  }
  int64(): bigint {
    return this.#buffer.readBigInt64LE(this.#need(8));
  }
  float(): number {
    return this.#buffer.readFloatLE(this.#need(4));
  }
  double(): number {
    return this.#buffer.readDoubleLE(this.#need(8));
  }
  /** An unsigned little-endian integer of `n` ≤ 6 bytes. */
  uintN(n: number): number {
    return this.#buffer.readUIntLE(this.#need(n), n);
  }
  /** An unsigned big-endian integer of `n` ≤ 6 bytes. */
  uintBE(n: number): number {
    return this.#buffer.readUIntBE(this.#need(n), n);
  }
  /** An unsigned little-endian integer of `n` ≤ 8 bytes, as a bigint. */
  uintLE(n: number): bigint {
    const at = this.#need(n);
    let value = 0n;
    for (let i = n - 1; i >= 0; i--) value = (value << 8n) | BigInt(this.#buffer[at + i]!);
    return value;
  }
  /** An unsigned big-endian integer of `n` ≤ 8 bytes, as a bigint. */
  uintBigBE(n: number): bigint {
    const at = this.#need(n);
    let value = 0n;
    for (let i = 0; i < n; i++) value = (value << 8n) | BigInt(this.#buffer[at + i]!);
    return value;
  }
  /** MySQL's length-encoded integer. */
  lengthEncoded(): number {
    const first = this.uint8();
    if (first < 0xfb) return first;
    if (first === 0xfc) return this.uint16();
    if (first === 0xfd) return this.uintN(3);
    if (first === 0xfe) return Number(this.uint64());
    throw corrupt(`a length-encoded integer starting with 0x${first.toString(16)}`, this.#header, this.position - 1);
  }
  /** `count` bits, least significant first. */
  bitmap(count: number): boolean[] {
    const bytes = this.bytes(Math.ceil(count / 8));
    const out: boolean[] = [];
    for (let i = 0; i < count; i++) out.push((bytes[i >> 3]! & (1 << (i & 7))) !== 0);
    return out;
  }
  bytes(n: number): Buffer {
    const at = this.#need(n);
    return this.#buffer.subarray(at, at + n);
  }
  rest(): Buffer {
    return this.bytes(this.#buffer.length - this.position);
  }
}
