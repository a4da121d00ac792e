/**
 * MySQL 8's binary JSON (the JSON column type as the binlog carries it) decoded to the text MySQL
 * itself prints for the document (`SELECT CAST(col AS CHAR)`, the mysql client):
 *
 *   decodeMysqlJson(bytes)   // '{"a": 1, "b": [1.5, "x", null]}'
 *
 * The format (MySQL's sql-common/json_binary.h): a type byte, then the value.
 *
 *   0x00/0x01  object, small/large: count, size, key entries (offset, uint16 length), value
 *              entries (type byte, offset or inlined value), keys, values
 *   0x02/0x03  array, small/large: count, size, value entries, values
 *   0x04       literal: 0 null, 1 true, 2 false
 *   0x05-0x0a  int16, uint16, int32, uint32, int64, uint64 (little-endian)
 *   0x0b       double (IEEE 754, little-endian)
 *   0x0c       string: a variable length (7 bits a byte, low bits first), then UTF-8
 *   0x0f       opaque: a MySQL field type byte, a variable length, the data
 *
 * Small containers use 2-byte counts, sizes and offsets, large ones 4-byte; offsets count from
 * the container's first byte (after its type byte). A value entry holds the value itself rather
 * than an offset for literals and [u]int16, and in large containers also for [u]int32.
 *
 * Printing follows MySQL's Json_wrapper::to_string (json_dom.cc):
 *
 *   objects, arrays    `{"k": v, "k2": v2}`, `[a, b]`: keys in stored order (MySQL sorts them by
 *                      length, then bytes)
 *   strings            `"`, `\`, \b \t \n \f \r escaped, other control characters as \u00xx;
 *                      everything else as is (UTF-8)
 *   integers           exact (64-bit through bigint)
 *   doubles            my_gcvt's shortest round-trip digits, in its choice of fixed or exponent
 *                      notation (1.5, 0.1, 1e100, 1e15, 1.5e-16, 0.00000015), with ".0" added when
 *                      neither a point nor an exponent was printed (1.0, 100.0)
 *   DECIMAL (opaque)   the exact decimal with its scale, unquoted (1.50)
 *   DATE, TIME, DATETIME, TIMESTAMP (opaque, MySQL's packed longlong)
 *                      quoted: "2024-01-02", "12:34:56.000000", "2024-01-02 12:34:56.000000"
 *   VAR_STRING (opaque) the bytes as a string
 *   other opaque       "base64:typeNN:<base64>", the base64 broken by a newline every 76
 *                      characters as MySQL's base64_encode does (printed escaped, \n)
 *
 * An empty value is the JSON null: MySQL's parse_binary reads it so (an empty string stored into
 * a NOT NULL JSON column by INSERT IGNORE or a non-strict sql_mode), and prints it as `null`.
 *
 * Like MySQL, bytes after the top-level value are not read (a container's own size says where it
 * ends). Everything that is read is checked: a count, size, offset or length pointing outside its
 * container or the value, an unknown type byte or literal, an invalid UTF-8 string, a decimal or
 * a date whose bytes are not one, a double that is not finite (MySQL never stores one), nesting
 * deeper than any document MySQL writes — each is a DefiniteError naming what and the byte
 * offset, never a guessed value.
 */

import { DefiniteError } from '../../core/index.ts';
import { decimalSize, decodeDecimal } from './decimal.ts';

const TYPE_SMALL_OBJECT = 0x00;
const TYPE_LARGE_OBJECT = 0x01;
const TYPE_SMALL_ARRAY = 0x02;
const TYPE_LARGE_ARRAY = 0x03;
const TYPE_LITERAL = 0x04;
const TYPE_INT16 = 0x05;
const TYPE_UINT16 = 0x06;
const TYPE_INT32 = 0x07;
const TYPE_UINT32 = 0x08;
const TYPE_INT64 = 0x09;
const TYPE_UINT64 = 0x0a;
const TYPE_DOUBLE = 0x0b;
const TYPE_STRING = 0x0c;
const TYPE_OPAQUE = 0x0f;

/** MySQL field types an opaque value can carry that print as something other than base64. */
const FIELD_TIMESTAMP = 7;
const FIELD_DATE = 10;
const FIELD_TIME = 11;
const FIELD_DATETIME = 12;
const FIELD_NEWDECIMAL = 246;
const FIELD_VAR_STRING = 253;

/** MySQL refuses documents nested deeper than 100; far past that is a corrupt value (and a deep stack). */
const MAX_DEPTH = 1000;

/** MY_GCVT_MAX_FIELD_WIDTH: DBL_DIG + 4 + max(5, MAX_DECPT_FOR_F_FORMAT). */
const GCVT_WIDTH = 15 + 4 + 15;
/** MAX_DECPT_FOR_F_FORMAT (DBL_DIG). */
const MAX_DECPT_FOR_F_FORMAT = 15;


// ignoreBOM: a string that starts with U+FEFF keeps it.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** The JSON document MySQL's binary JSON `bytes` hold, as MySQL prints it. */
export function decodeMysqlJson(bytes: Uint8Array): string {
  if (bytes.length === 0) return 'null';
  const decoder = new JsonDecoder(bytes);
  decoder.value(bytes[0]!, 1, bytes.length, 0);
  return decoder.text();
}

function corrupt(what: string, at: number): DefiniteError {
  return new DefiniteError('binlog_corrupt', `MySQL binary JSON: ${what} (at byte ${at})`, 'the server sent a JSON value Sluice cannot read: please report it with the server version');
}

class JsonDecoder {
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  readonly #out: string[] = [];

  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  text(): string {
    return this.#out.join('');
  }

  /** The value of `type` whose bytes start at `start` and may run up to `end` (exclusive). */
  value(type: number, start: number, end: number, depth: number): void {
    switch (type) {
      case TYPE_SMALL_OBJECT:
      case TYPE_LARGE_OBJECT:
      case TYPE_SMALL_ARRAY:
      case TYPE_LARGE_ARRAY:
        this.#container(type, start, end, depth);
        return;
      default:
        this.#scalar(type, start, end);
    }
  }

  #container(type: number, start: number, end: number, depth: number): void {
    const object = type === TYPE_SMALL_OBJECT || type === TYPE_LARGE_OBJECT;
    const large = type === TYPE_LARGE_OBJECT || type === TYPE_LARGE_ARRAY;
    const what = `${large ? 'a large' : 'a small'} ${object ? 'object' : 'array'}`;
    if (depth >= MAX_DEPTH) throw corrupt(`${what} nested more than ${MAX_DEPTH} deep (MySQL allows 100)`, start);
    const offsetSize = large ? 4 : 2;
    if (end - start < 2 * offsetSize) throw corrupt(`${what} whose header needs ${2 * offsetSize} bytes, ${end - start} left`, start);
    const count = this.#offset(start, large);
    const size = this.#offset(start + offsetSize, large);
    if (size > end - start) throw corrupt(`${what} of ${size} bytes, ${end - start} left`, start);
    const keyEntrySize = offsetSize + 2;
    const valueEntrySize = 1 + offsetSize;
    const header = 2 * offsetSize + count * ((object ? keyEntrySize : 0) + valueEntrySize);
    if (header > size) throw corrupt(`${what} of ${count} members whose header (${header} bytes) is larger than its size (${size} bytes)`, start);
    const containerEnd = start + size;
    const valueEntries = start + 2 * offsetSize + (object ? count * keyEntrySize : 0);
    this.#out.push(object ? '{' : '[');
    for (let i = 0; i < count; i++) {
      if (i > 0) this.#out.push(', ');
      if (object) {
        const entry = start + 2 * offsetSize + i * keyEntrySize;
        const keyOffset = this.#offset(entry, large);
        const keyLength = this.#view.getUint16(entry + offsetSize, true);
        if (keyOffset < header || keyOffset + keyLength > size) throw corrupt(`key ${i} of ${what} at offset ${keyOffset} (${keyLength} bytes) outside its ${header}..${size}`, entry);
        this.#out.push(quote(this.#utf8(start + keyOffset, keyLength, `key ${i}`)), ': ');
      }
      const entry = valueEntries + i * valueEntrySize;
      const valueType = this.#bytes[entry]!;
      if (inlined(valueType, large)) {
        this.#scalar(valueType, entry + 1, entry + valueEntrySize);
        continue;
      }
      const valueOffset = this.#offset(entry + 1, large);
      if (valueOffset < entry - start + valueEntrySize || valueOffset >= size) throw corrupt(`value ${i} of ${what} at offset ${valueOffset}, outside its ${header}..${size}`, entry);
      this.value(valueType, start + valueOffset, containerEnd, depth + 1);
    }
    this.#out.push(object ? '}' : ']');
  }

  #scalar(type: number, start: number, end: number): void {
    const need = (n: number, what: string): void => {
      if (end - start < n) throw corrupt(`${what} needs ${n} bytes, ${end - start} left`, start);
    };
    switch (type) {
      case TYPE_LITERAL: {
        need(1, 'a literal');
        const literal = this.#bytes[start]!;
        if (literal > 2) throw corrupt(`a literal of 0x${hex(literal)} (0 null, 1 true, 2 false)`, start);
        this.#out.push(literal === 0 ? 'null' : literal === 1 ? 'true' : 'false');
        return;
      }
      case TYPE_INT16:
        need(2, 'an int16');
        this.#out.push(String(this.#view.getInt16(start, true)));
        return;
      case TYPE_UINT16:
        need(2, 'a uint16');
        this.#out.push(String(this.#view.getUint16(start, true)));
        return;
      case TYPE_INT32:
        need(4, 'an int32');
        this.#out.push(String(this.#view.getInt32(start, true)));
        return;
      case TYPE_UINT32:
        need(4, 'a uint32');
        this.#out.push(String(this.#view.getUint32(start, true)));
        return;
      case TYPE_INT64:
        need(8, 'an int64');
        this.#out.push(this.#view.getBigInt64(start, true).toString());
        return;
      case TYPE_UINT64:
        need(8, 'a uint64');
        this.#out.push(this.#view.getBigUint64(start, true).toString());
        return;
      case TYPE_DOUBLE: {
        need(8, 'a double');
        const value = this.#view.getFloat64(start, true);
        if (!Number.isFinite(value)) throw corrupt(`a double that is ${value} (MySQL stores only finite doubles)`, start);
        this.#out.push(formatDouble(value));
        return;
      }
      case TYPE_STRING: {
        const [length, n] = this.#variableLength(start, end, 'a string');
        if (n + length > end - start) throw corrupt(`a string of ${length} bytes, ${end - start - n} left`, start);
        this.#out.push(quote(this.#utf8(start + n, length, 'a string')));
        return;
      }
      case TYPE_OPAQUE: {
        need(1, 'an opaque value');
        const fieldType = this.#bytes[start]!;
        const [length, n] = this.#variableLength(start + 1, end, 'an opaque value');
        if (1 + n + length > end - start) throw corrupt(`an opaque value (field type ${fieldType}) of ${length} bytes, ${end - start - 1 - n} left`, start);
        this.#opaque(fieldType, start + 1 + n, length);
        return;
      }
      default:
        throw corrupt(`a value of unknown type 0x${hex(type)}`, start);
    }
  }

  #opaque(fieldType: number, start: number, length: number): void {
    const data = this.#bytes.subarray(start, start + length);
    switch (fieldType) {
      case FIELD_NEWDECIMAL:
        this.#out.push(decimal(data, start));
        return;
      case FIELD_DATE:
      case FIELD_TIME:
      case FIELD_DATETIME:
      case FIELD_TIMESTAMP:
        this.#out.push(`"${temporal(data, fieldType, start)}"`);
        return;
      case FIELD_VAR_STRING:
        this.#out.push(quote(this.#utf8(start, length, 'an opaque string')));
        return;
      default:
        this.#out.push(quote(`base64:type${fieldType}:${base64(data)}`));
    }
  }

  /** An offset, size or count: 2 bytes (small) or 4 (large); the caller has checked it is there. */
  #offset(at: number, large: boolean): number {
    if (at + (large ? 4 : 2) > this.#bytes.length) throw corrupt(`an offset past the value's end`, at);
    return large ? this.#view.getUint32(at, true) : this.#view.getUint16(at, true);
  }

  /** A length of 7 bits a byte, least significant first, at most 5 bytes (32 bits): [length, bytes used]. */
  #variableLength(start: number, end: number, what: string): [number, number] {
    let length = 0;
    for (let i = 0; i < 5 && start + i < end; i++) {
      const byte = this.#bytes[start + i]!;
      length += (byte & 0x7f) * 2 ** (7 * i);
      if ((byte & 0x80) === 0) {
        if (length > 0xffffffff) throw corrupt(`${what} whose length is more than 32 bits`, start);
        return [length, i + 1];
      }
    }
    throw corrupt(`${what} whose length does not end`, start);
  }

  #utf8(start: number, length: number, what: string): string {
    try {
      return utf8.decode(this.#bytes.subarray(start, start + length));
    } catch {
      throw corrupt(`${what} that is not UTF-8`, start);
    }
  }
}

/** Whether a value of `type` sits in its value entry (rather than at an offset). */
function inlined(type: number, large: boolean): boolean {
  if (type === TYPE_LITERAL || type === TYPE_INT16 || type === TYPE_UINT16) return true;
  return large && (type === TYPE_INT32 || type === TYPE_UINT32);
}

function hex(byte: number): string {
  return byte.toString(16).padStart(2, '0');
}

/** A JSON string as MySQL's double_quote writes it. */
function quote(text: string): string {
  let out = '"';
  let from = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code > 0x1f && code !== 0x22 && code !== 0x5c) continue;
    out += text.slice(from, i);
    from = i + 1;
    switch (code) {
      case 0x08:
        out += '\\b';
        break;
      case 0x09:
        out += '\\t';
        break;
      case 0x0a:
        out += '\\n';
        break;
      case 0x0c:
        out += '\\f';
        break;
      case 0x0d:
        out += '\\r';
        break;
      case 0x22:
        out += '\\"';
        break;
      case 0x5c:
        out += '\\\\';
        break;
      default:
        out += `\\u00${hex(code)}`;
    }
  }
  return `${out}${text.slice(from)}"`;
}

/**
 * A double as MySQL prints it in JSON: my_gcvt(value, MY_GCVT_ARG_DOUBLE, MY_GCVT_MAX_FIELD_WIDTH)
 * (strings/dtoa.cc), then ".0" when that printed neither a point nor an exponent. The width (34)
 * always holds the shortest round-trip digits (at most 17), so only the choice between fixed and
 * exponent notation is my_gcvt's own: fixed when it fits, the exponent is at least -14 and the
 * number is below 1e15 or has a fraction; the exponent has no sign for positive powers and no
 * padding ("1e100", "1.5e-16").
 */
export function formatDouble(value: number): string {
  const negative = value < 0 || Object.is(value, -0);
  const width = GCVT_WIDTH - (value < 0 ? 1 : 0);
  const [mantissa, exponent] = Math.abs(value).toExponential().split('e') as [string, string];
  const digits = mantissa.replace('.', '');
  const len = digits.length;
  let decpt = Number(exponent) + 1; // the point's place: value = 0.<digits> * 10^decpt
  const expLen = 1 + (decpt >= 101 || decpt <= -99 ? 1 : 0) + (decpt >= 11 || decpt <= -9 ? 1 : 0);
  const haveSpace = (decpt <= 0 ? len - decpt + 2 : decpt < len ? len + 1 : decpt) <= width;
  const forceE = decpt <= 0 && width <= 2 - decpt && width >= 3 + expLen;
  const fixed =
    (haveSpace || (decpt <= width && (decpt >= -1 || (decpt === -2 && (len > 1 || !forceE))) && !forceE)) &&
    (!haveSpace || (decpt >= -MAX_DECPT_FOR_F_FORMAT + 1 && (decpt <= MAX_DECPT_FOR_F_FORMAT || len > decpt)));
  let text = negative ? '-' : '';
  if (fixed) {
    if (decpt <= 0) text += `0.${'0'.repeat(-decpt)}${digits}`;
    else if (decpt < len) text += `${digits.slice(0, decpt)}.${digits.slice(decpt)}`;
    else text += digits + '0'.repeat(decpt - len);
  } else {
    decpt -= 1;
    text += digits[0]!;
    if (len > 1) text += `.${digits.slice(1)}`;
    text += `e${decpt < 0 ? '-' : ''}${Math.abs(decpt)}`;
  }
  return /[.e]/.test(text) ? text : `${text}.0`;
}

/**
 * An opaque DECIMAL: precision byte, scale byte, then MySQL's binary decimal (groups of 9 digits in
 * 4 bytes, big-endian, the sign in the top bit, negatives inverted), printed with its scale.
 */
function decimal(data: Uint8Array, at: number): string {
  if (data.length < 2) throw corrupt(`a decimal of ${data.length} bytes (precision and scale need 2)`, at);
  const precision = data[0]!;
  const scale = data[1]!;
  if (precision > 65 || scale > 30 || scale > precision) throw corrupt(`a decimal of precision ${precision} and scale ${scale}`, at);
  const size = decimalSize(precision, scale);
  if (data.length - 2 !== size) throw corrupt(`a decimal(${precision},${scale}) of ${data.length - 2} bytes (it takes ${size})`, at);
  return decodeDecimal(data.subarray(2), precision, scale, (what) => corrupt(what, at)).toString();
}

/**
 * An opaque DATE, TIME, DATETIME or TIMESTAMP: MySQL's "longlong packed" time, 8 bytes
 * little-endian, the sign on the whole, 24 bits of microseconds below the rest; printed by
 * my_TIME_to_str with 6 fractional digits (a DATE without a time; a TIMESTAMP as a DATETIME).
 */
function temporal(data: Uint8Array, fieldType: number, at: number): string {
  const name = fieldType === FIELD_DATE ? 'date' : fieldType === FIELD_TIME ? 'time' : fieldType === FIELD_DATETIME ? 'datetime' : 'timestamp';
  if (data.length !== 8) throw corrupt(`a ${name} of ${data.length} bytes (a packed time takes 8)`, at);
  let packed = new DataView(data.buffer, data.byteOffset, 8).getBigInt64(0, true);
  const negative = packed < 0n;
  if (negative) packed = -packed;
  const micros = Number(packed % (1n << 24n));
  const whole = packed >> 24n;
  const bad = (what: string): DefiniteError => corrupt(`a ${name} with ${what}`, at);
  if (micros > 999999) throw bad(`${micros} microseconds`);
  if (fieldType === FIELD_TIME) {
    if (whole >= 1n << 22n) throw bad('bits past its 10 bits of hours');
    const hms = Number(whole);
    const hour = Math.floor(hms / 4096);
    const minute = Math.floor(hms / 64) % 64;
    const second = hms % 64;
    if (minute > 59 || second > 59) throw bad(`minute ${minute}, second ${second}`);
    return `${negative ? '-' : ''}${pad(hour, 2)}:${pad(minute, 2)}:${pad(second, 2)}.${pad(micros, 6)}`;
  }
  if (negative) throw bad('a negative value');
  const hms = Number(whole % (1n << 17n));
  const ymd = Number(whole >> 17n);
  const day = ymd % 32;
  const yearMonth = Math.floor(ymd / 32);
  const month = yearMonth % 13;
  const year = Math.floor(yearMonth / 13);
  const hour = Math.floor(hms / 4096);
  const minute = Math.floor(hms / 64) % 64;
  const second = hms % 64;
  if (year > 9999 || hour > 23 || minute > 59 || second > 59) throw bad(`year ${year}, hour ${hour}, minute ${minute}, second ${second}`);
  const date = `${pad(year, 4)}-${pad(month, 2)}-${pad(day, 2)}`;
  if (fieldType === FIELD_DATE) return date;
  return `${date} ${pad(hour, 2)}:${pad(minute, 2)}:${pad(second, 2)}.${pad(micros, 6)}`;
}

function pad(value: number, width: number): string {
  return String(value).padStart(width, '0');
}

/** Base64 as MySQL's base64_encode writes it: standard alphabet, padded, a newline every 76 characters. */
function base64(data: Uint8Array): string {
  const plain = Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < plain.length; i += 76) lines.push(plain.slice(i, i + 76));
  return lines.join('\n');
}
