/**
 * A compact binary encoding of values and rows, used by checkpoints.
 *
 * Byte layout (little-endian). A value is one tag byte, then:
 *
 *   0 null · 1 false · 2 true           nothing
 *   3 int32                             4 bytes
 *   4 float64                           8 bytes
 *   5 bigint                            varint length, then that many bytes of its decimal text
 *   6 text                              varint byte length, then UTF-8
 *   7 bytes                             varint length, then the bytes
 *   8 decimal                           varint scale, then the mantissa's decimal text (as 5)
 *   9 timestamp                         kind byte (0 date, 1 timestamp, 2 timestamptz), int64 micros
 *  10 json                              its canonical text (as 6)
 *  11 array                             varint element count, then the elements
 *  12 interval                          signed varint months, signed varint days, int64 micros
 *
 * A row is a varint column count, then its values. Varints are unsigned LEB128 up to 2^53.
 *
 * Invariants:
 * - `decode(encode(v))` equals `v` under `valuesEqual`, and keeps a Decimal's display scale.
 * - A reader never reads past its buffer: a truncated or malformed input throws a RangeError.
 */

import { Decimal, Interval, Json, Timestamp, type Row, type TimestampKind, type Value } from './value.ts';

const TIMESTAMP_KINDS: readonly TimestampKind[] = ['date', 'timestamp', 'timestamptz'];
const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

export class ByteWriter {
  #buffer: Uint8Array;
  #view: DataView;
  #length = 0;

  constructor(initialBytes = 64 * 1024) {
    this.#buffer = new Uint8Array(initialBytes);
    this.#view = new DataView(this.#buffer.buffer);
  }

  get length(): number {
    return this.#length;
  }

  #reserve(bytes: number): void {
    if (this.#length + bytes <= this.#buffer.length) return;
    let size = this.#buffer.length * 2;
    while (size < this.#length + bytes) size *= 2;
    const grown = new Uint8Array(size);
    grown.set(this.#buffer.subarray(0, this.#length));
    this.#buffer = grown;
    this.#view = new DataView(grown.buffer);
  }

  uint8(value: number): void {
    this.#reserve(1);
    this.#buffer[this.#length++] = value;
  }

  varint(value: number): void {
    if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`varint out of range: ${value}`);
    this.#reserve(8);
    while (value >= 0x80) {
      this.#buffer[this.#length++] = (value % 0x80) | 0x80;
      value = Math.floor(value / 0x80);
    }
    this.#buffer[this.#length++] = value;
  }

  /** A signed integer (a weight, a count) as a zig-zag varint. */
  signed(value: number): void {
    this.varint(value < 0 ? -value * 2 - 1 : value * 2);
  }

  int32(value: number): void {
    this.#reserve(4);
    this.#view.setInt32(this.#length, value, true);
    this.#length += 4;
  }

  float64(value: number): void {
    this.#reserve(8);
    this.#view.setFloat64(this.#length, value, true);
    this.#length += 8;
  }

  int64(value: bigint): void {
    this.#reserve(8);
    this.#view.setBigInt64(this.#length, value, true);
    this.#length += 8;
  }

  bytes(value: Uint8Array): void {
    this.varint(value.length);
    this.#reserve(value.length);
    this.#buffer.set(value, this.#length);
    this.#length += value.length;
  }

  string(value: string): void {
    this.#reserve(value.length * 3 + 8);
    // Short ASCII (most keys, names, decimal digits) byte by byte: no encoder call, no subarray.
    if (value.length < 0x80) {
      const buffer = this.#buffer;
      const start = this.#length;
      let i = 0;
      for (; i < value.length; i++) {
        const code = value.charCodeAt(i);
        if (code >= 0x80) break;
        buffer[start + 1 + i] = code;
      }
      if (i === value.length) {
        buffer[start] = value.length;
        this.#length = start + 1 + value.length;
        return;
      }
    }
    // Encode straight into the buffer after a worst-case-sized varint slot would waste bytes, so
    // encode first into the tail, then write the length and move the bytes if the varint is short.
    const start = this.#length;
    const lengthBytes = value.length * 3 < 0x80 ? 1 : value.length * 3 < 0x4000 ? 2 : 5;
    const { written } = encoder.encodeInto(value, this.#buffer.subarray(start + lengthBytes));
    const needed = varintSize(written);
    if (needed !== lengthBytes) this.#buffer.copyWithin(start + needed, start + lengthBytes, start + lengthBytes + written);
    this.#length = start;
    this.varint(written);
    this.#length = start + needed + written;
  }

  /** A bigint as its decimal text (exact at any size). */
  bigint(value: bigint): void {
    this.string(value.toString());
  }

  value(value: Value): void {
    switch (typeof value) {
      case 'number':
        if ((value | 0) === value && !Object.is(value, -0)) {
          this.uint8(3);
          this.int32(value);
        } else {
          this.uint8(4);
          this.float64(value);
        }
        return;
      case 'string':
        this.uint8(6);
        this.string(value);
        return;
      case 'boolean':
        this.uint8(value ? 2 : 1);
        return;
      case 'bigint':
        this.uint8(5);
        this.bigint(value);
        return;
      default:
        if (value === null) this.uint8(0);
        else if (value instanceof Uint8Array) {
          this.uint8(7);
          this.bytes(value);
        } else if (value instanceof Decimal) {
          this.uint8(8);
          this.varint(value.scale);
          this.bigint(value.mantissa);
        } else if (value instanceof Timestamp) {
          this.uint8(9);
          this.uint8(TIMESTAMP_KINDS.indexOf(value.kind));
          this.int64(value.micros);
        } else if (value instanceof Json) {
          this.uint8(10);
          this.string(value.text);
        } else if (value instanceof Interval) {
          this.uint8(12);
          this.signed(value.months);
          this.signed(value.days);
          this.int64(value.micros);
        } else if (Array.isArray(value)) {
          this.uint8(11);
          this.row(value);
        } else throw new TypeError(`cannot encode ${String(value)}`);
    }
  }

  row(row: Row): void {
    this.varint(row.length);
    for (let i = 0; i < row.length; i++) this.value(row[i]!);
  }

  /** Starts over, keeping the buffer (for a writer reused across many small encodings). */
  reset(): void {
    this.#length = 0;
  }

  /** The bytes written so far (a view, valid until the next write). */
  finish(): Uint8Array {
    return this.#buffer.subarray(0, this.#length);
  }
}

function varintSize(value: number): number {
  let size = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 0x80);
    size++;
  }
  return size;
}

export class ByteReader {
  readonly #buffer: Uint8Array;
  readonly #view: DataView;
  #position = 0;

  constructor(buffer: Uint8Array) {
    this.#buffer = buffer;
    this.#view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  }

  get position(): number {
    return this.#position;
  }

  get done(): boolean {
    return this.#position >= this.#buffer.length;
  }

  #need(bytes: number): void {
    if (this.#position + bytes > this.#buffer.length) throw new RangeError(`unexpected end of data at byte ${this.#position} (needed ${bytes} more)`);
  }

  uint8(): number {
    this.#need(1);
    return this.#buffer[this.#position++]!;
  }

  varint(): number {
    let value = 0;
    let factor = 1;
    for (;;) {
      const byte = this.uint8();
      value += (byte & 0x7f) * factor;
      if (byte < 0x80) return value;
      factor *= 0x80;
      if (factor > 2 ** 56) throw new RangeError(`varint too long at byte ${this.#position}`);
    }
  }

  signed(): number {
    const zigzag = this.varint();
    return zigzag % 2 === 1 ? -(zigzag + 1) / 2 : zigzag / 2;
  }

  int32(): number {
    this.#need(4);
    const value = this.#view.getInt32(this.#position, true);
    this.#position += 4;
    return value;
  }

  float64(): number {
    this.#need(8);
    const value = this.#view.getFloat64(this.#position, true);
    this.#position += 8;
    return value;
  }

  int64(): bigint {
    this.#need(8);
    const value = this.#view.getBigInt64(this.#position, true);
    this.#position += 8;
    return value;
  }

  bytes(): Uint8Array {
    const length = this.varint();
    this.#need(length);
    const value = this.#buffer.slice(this.#position, this.#position + length);
    this.#position += length;
    return value;
  }

  string(): string {
    const length = this.varint();
    this.#need(length);
    const buffer = this.#buffer;
    const start = this.#position;
    // Short ASCII without the decoder (see ByteWriter.string).
    if (length <= 32) {
      let ascii = true;
      for (let i = start; i < start + length; i++) {
        if (buffer[i]! >= 0x80) {
          ascii = false;
          break;
        }
      }
      if (ascii) {
        this.#position += length;
        return String.fromCharCode.apply(null, buffer.subarray(start, start + length) as unknown as number[]);
      }
    }
    const value = decoder.decode(buffer.subarray(start, start + length));
    this.#position += length;
    return value;
  }

  bigint(): bigint {
    return BigInt(this.string());
  }

  value(): Value {
    const tag = this.uint8();
    switch (tag) {
      case 0:
        return null;
      case 1:
        return false;
      case 2:
        return true;
      case 3:
        return this.int32();
      case 4:
        return this.float64();
      case 5:
        return this.bigint();
      case 6:
        return this.string();
      case 7:
        return this.bytes();
      case 8: {
        const scale = this.varint();
        return new Decimal(this.bigint(), scale);
      }
      case 9: {
        const kind = TIMESTAMP_KINDS[this.uint8()];
        if (!kind) throw new RangeError(`unknown timestamp kind at byte ${this.#position - 1}`);
        return new Timestamp(kind, this.int64());
      }
      case 10:
        return Json.parse(this.string());
      case 11:
        return this.row();
      case 12: {
        const months = this.signed();
        const days = this.signed();
        return new Interval(months, days, this.int64());
      }
      default:
        throw new RangeError(`unknown value tag ${tag} at byte ${this.#position - 1}`);
    }
  }

  row(): Value[] {
    const length = this.varint();
    const row = new Array<Value>(length);
    for (let i = 0; i < length; i++) row[i] = this.value();
    return row;
  }
}
