/**
 * MySQL's binary JSON decoder (json-binary.ts), without a MySQL 8 server: documents are built by
 * a small encoder written here from the format MySQL's sql-common/json_binary.h describes and the
 * layout rules json_binary.cc follows (keys sorted by length then bytes, the small format unless
 * something does not fit in 16 bits — and then the parent too —, literals and [u]int16 inlined,
 * [u]int32 inlined in large containers), plus byte vectors written by hand in other decoders'
 * tests (cited at each). Every document must decode to the text MySQL prints for it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { DefiniteError } from '../../core/index.ts';
import { BinlogDecoder, EVENT, TYPE, type BinlogEvent } from './binlog.ts';
import { decodeMysqlJson, formatDouble } from './json-binary.ts';
import { mysqlValue } from './schema.ts';

// ---------------------------------------------------------------------------------------------
// An independent encoder, from the format spec.

/** A JSON double (JSON numbers that are JS integers are encoded as MySQL integers). */
class Dbl {
  readonly value: number;
  constructor(value: number) {
    this.value = value;
  }
}

/** An unsigned JSON integer (MySQL's Json_uint: uint16/uint32/uint64). */
class Uint {
  readonly value: bigint;
  constructor(value: bigint | number) {
    this.value = BigInt(value);
  }
}

/** An opaque value: a MySQL field type and its bytes. */
class Opaque {
  readonly fieldType: number;
  readonly data: number[];
  constructor(fieldType: number, data: ArrayLike<number>) {
    this.fieldType = fieldType;
    this.data = Array.from(data);
  }
}

type Model = null | boolean | number | bigint | string | Dbl | Uint | Opaque | Model[] | { [key: string]: Model };

const T = { SMALL_OBJECT: 0, LARGE_OBJECT: 1, SMALL_ARRAY: 2, LARGE_ARRAY: 3, LITERAL: 4, INT16: 5, UINT16: 6, INT32: 7, UINT32: 8, INT64: 9, UINT64: 10, DOUBLE: 11, STRING: 12, OPAQUE: 15 } as const;

const encoder = new TextEncoder();

function le(value: bigint, bytes: number): number[] {
  const out: number[] = [];
  let v = BigInt.asUintN(bytes * 8, value);
  for (let i = 0; i < bytes; i++) {
    out.push(Number(v & 0xffn));
    v >>= 8n;
  }
  return out;
}

function varlen(length: number): number[] {
  const out: number[] = [];
  do {
    let byte = length & 0x7f;
    length = Math.floor(length / 128);
    if (length > 0) byte |= 0x80;
    out.push(byte);
  } while (length > 0);
  return out;
}

function isContainer(v: Model): v is Model[] | { [key: string]: Model } {
  return v !== null && typeof v === 'object' && !(v instanceof Dbl) && !(v instanceof Uint) && !(v instanceof Opaque);
}

/** [type, bytes] of a scalar. */
function scalar(v: Model): [number, number[]] {
  if (v === null) return [T.LITERAL, [0]];
  if (v === true) return [T.LITERAL, [1]];
  if (v === false) return [T.LITERAL, [2]];
  if (typeof v === 'string') {
    const bytes = encoder.encode(v);
    return [T.STRING, [...varlen(bytes.length), ...bytes]];
  }
  if (v instanceof Dbl) {
    const buffer = Buffer.alloc(8);
    buffer.writeDoubleLE(v.value);
    return [T.DOUBLE, [...buffer]];
  }
  if (v instanceof Opaque) return [T.OPAQUE, [v.fieldType, ...varlen(v.data.length), ...v.data]];
  if (v instanceof Uint) {
    if (v.value <= 0xffffn) return [T.UINT16, le(v.value, 2)];
    if (v.value <= 0xffffffffn) return [T.UINT32, le(v.value, 4)];
    return [T.UINT64, le(v.value, 8)];
  }
  if (typeof v === 'number' && !Number.isInteger(v)) return scalar(new Dbl(v));
  const n = BigInt(v as number | bigint);
  if (n > 0x7fffffffffffffffn) return scalar(new Uint(n));
  if (n >= -32768n && n <= 32767n) return [T.INT16, le(n, 2)];
  if (n >= -2147483648n && n <= 2147483647n) return [T.INT32, le(n, 4)];
  return [T.INT64, le(n, 8)];
}

/** The inlined [type, value] of `v` in a value entry, or null when it is stored at an offset. */
function inline(v: Model, large: boolean): [number, bigint] | null {
  if (isContainer(v)) return null;
  const [type, bytes] = scalar(v);
  if (type === T.LITERAL) return [type, BigInt(bytes[0]!)];
  if (type === T.INT16 || (large && type === T.INT32)) return [type, BigInt(v as number | bigint)];
  if (type === T.UINT16 || (large && type === T.UINT32)) return [type, (v as Uint).value];
  return null;
}

/** Keys in MySQL's order: by UTF-8 length, then bytes. */
function sortedKeys(object: { [key: string]: Model }): string[] {
  return Object.keys(object).sort((a, b) => {
    const x = encoder.encode(a);
    const y = encoder.encode(b);
    if (x.length !== y.length) return x.length - y.length;
    return Buffer.compare(Buffer.from(x), Buffer.from(y));
  });
}

/** A container in the small or large format, or null when it does not fit the format. */
function layout(v: Model[] | { [key: string]: Model }, large: boolean): number[] | null {
  const size = large ? 4 : 2;
  const fits = (n: number): boolean => n <= (large ? 0xffffffff : 0xffff);
  const object = !Array.isArray(v);
  const keys = object ? sortedKeys(v) : [];
  const values: Model[] = object ? keys.map((k) => (v as { [key: string]: Model })[k]!) : (v as Model[]);
  const count = values.length;
  if (!fits(count)) return null;
  const out: number[] = [...le(BigInt(count), size), ...le(0n, size)];
  const keyEntry = size + 2;
  const valueEntry = 1 + size;
  if (object) {
    let offset = 2 * size + count * (keyEntry + valueEntry);
    for (const key of keys) {
      const length = encoder.encode(key).length;
      if (length > 0xffff) throw new Error('key too long');
      if (!fits(offset)) return null;
      out.push(...le(BigInt(offset), size), ...le(BigInt(length), 2));
      offset += length;
    }
  }
  const entries = out.length;
  for (let i = 0; i < count * valueEntry; i++) out.push(0);
  for (const key of keys) out.push(...encoder.encode(key));
  values.forEach((child, i) => {
    const at = entries + i * valueEntry;
    const inlined = inline(child, large);
    if (inlined) {
      out[at] = inlined[0];
      out.splice(at + 1, size, ...le(inlined[1], size));
      return;
    }
    const offset = out.length;
    if (!fits(offset)) throw TOO_BIG;
    const encoded = encodeValue(child, !large);
    if (!encoded) throw TOO_BIG;
    out[at] = encoded[0];
    out.splice(at + 1, size, ...le(BigInt(offset), size));
    for (const byte of encoded[1]) out.push(byte);
  });
  if (!fits(out.length)) return null;
  out.splice(size, size, ...le(BigInt(out.length), size));
  return out;
}

const TOO_BIG = new Error('too big for the small format');

/** [type, bytes] of any value; null when a container needs the large format inside a small parent. */
function encodeValue(v: Model, smallParent: boolean): [number, number[]] | null {
  if (!isContainer(v)) return scalar(v);
  const object = !Array.isArray(v);
  const tryLayout = (large: boolean): number[] | null => {
    try {
      return layout(v, large);
    } catch (error) {
      if (error === TOO_BIG) return null;
      throw error;
    }
  };
  const small = tryLayout(false);
  if (small) return [object ? T.SMALL_OBJECT : T.SMALL_ARRAY, small];
  if (smallParent) return null;
  const large = tryLayout(true);
  if (!large) throw new Error('document too large');
  return [object ? T.LARGE_OBJECT : T.LARGE_ARRAY, large];
}

/** A whole document: its type byte, then the value. `large` forces a top-level container large. */
function encode(v: Model, options: { large?: boolean } = {}): Uint8Array {
  if (options.large && isContainer(v)) {
    const bytes = layout(v, true)!;
    return Uint8Array.from([Array.isArray(v) ? T.LARGE_ARRAY : T.LARGE_OBJECT, ...bytes]);
  }
  const [type, bytes] = encodeValue(v, false)!;
  const out = new Uint8Array(1 + bytes.length);
  out[0] = type;
  out.set(bytes, 1);
  return out;
}

/** The JS value JSON.parse gives for what MySQL prints of `v`. */
function plain(v: Model): unknown {
  if (v instanceof Dbl) return v.value;
  if (v instanceof Uint) return Number(v.value);
  if (typeof v === 'bigint') return Number(v);
  if (Array.isArray(v)) return v.map(plain);
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x as Model)]));
  return v;
}

// MySQL field types for opaque values.
const F = { TIMESTAMP: 7, DATE: 10, TIME: 11, DATETIME: 12, YEAR: 13, VARCHAR: 15, NEWDECIMAL: 246, BLOB: 252, VAR_STRING: 253 } as const;

const DIG2BYTES = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4];

/** An opaque DECIMAL: precision, scale, then MySQL's binary decimal (decimal2bin), from the spec. */
function decimalOpaque(text: string, precision: number, scale: number): Opaque {
  const negative = text.startsWith('-');
  const [int = '', frac = ''] = text.replace('-', '').split('.');
  const integral = precision - scale;
  const intDigits = int.padStart(integral, '0');
  const fracDigits = frac.padEnd(scale, '0');
  const bytes: number[] = [];
  const group = (digits: string): void => {
    if (digits.length === 0) return;
    bytes.push(...le(BigInt(digits), DIG2BYTES[digits.length]!).reverse()); // big-endian
  };
  const partial = integral % 9;
  group(intDigits.slice(0, partial));
  for (let i = partial; i < integral; i += 9) group(intDigits.slice(i, i + 9));
  for (let i = 0; i + 9 <= scale; i += 9) group(fracDigits.slice(i, i + 9));
  group(fracDigits.slice(scale - (scale % 9)));
  if (negative) for (let i = 0; i < bytes.length; i++) bytes[i] = ~bytes[i]! & 0xff;
  bytes[0]! ^= 0x80;
  return new Opaque(F.NEWDECIMAL, [precision, scale, ...bytes]);
}

/** MySQL's "longlong packed" datetime (TIME_to_longlong_datetime_packed), 8 bytes little-endian. */
function packedDatetime(year: number, month: number, day: number, hour = 0, minute = 0, second = 0, micros = 0): number[] {
  const ymd = BigInt(((year * 13 + month) << 5) | day);
  const hms = BigInt((hour << 12) | (minute << 6) | second);
  return le((((ymd << 17n) | hms) << 24n) + BigInt(micros), 8);
}

/** MySQL's packed TIME (TIME_to_longlong_time_packed), negative as a whole. */
function packedTime(negative: boolean, hour: number, minute: number, second: number, micros = 0): number[] {
  const value = (BigInt((hour << 12) | (minute << 6) | second) << 24n) + BigInt(micros);
  return le(negative ? -value : value, 8);
}

function assertCorrupt(bytes: Uint8Array | number[], pattern: RegExp): void {
  assert.throws(
    () => decodeMysqlJson(Uint8Array.from(bytes)),
    (error: unknown) => {
      assert.ok(error instanceof DefiniteError, `a DefiniteError, not ${String(error)}`);
      assert.equal(error.code, 'binlog_corrupt');
      assert.match(error.message, /^MySQL binary JSON: .* \(at byte \d+\)$/);
      assert.match(error.message, pattern);
      return true;
    },
  );
}

// ---------------------------------------------------------------------------------------------
// Hand-written vectors.

test('vectors from go-mysql (replication/json_mysql_text_test.go) decode as MySQL prints them', () => {
  // TestRenderJSONAsMySQLText_Object: {"a": 1, "b": "x"}, an inlined INT16 and a STRING at an offset.
  const object = [0x00, 0x02, 0x00, 0x16, 0x00, 0x12, 0x00, 0x01, 0x00, 0x13, 0x00, 0x01, 0x00, 0x05, 0x01, 0x00, 0x0c, 0x14, 0x00, 0x61, 0x62, 0x01, 0x78];
  assert.equal(decodeMysqlJson(Uint8Array.from(object)), '{"a": 1, "b": "x"}');
  // TestRenderJSONAsMySQLText_Array: [1, "x", true].
  const array = [0x02, 0x03, 0x00, 0x0f, 0x00, 0x05, 0x01, 0x00, 0x0c, 0x0d, 0x00, 0x04, 0x01, 0x00, 0x01, 0x78];
  assert.equal(decodeMysqlJson(Uint8Array.from(array)), '[1, "x", true]');
  // TestRenderJSONAsMySQLText_EmptyObject / _EmptyArray.
  assert.equal(decodeMysqlJson(Uint8Array.from([0x00, 0x00, 0x00, 0x04, 0x00])), '{}');
  assert.equal(decodeMysqlJson(Uint8Array.from([0x02, 0x00, 0x00, 0x04, 0x00])), '[]');
  // TestRenderJSONAsMySQLText_Literal, _Int, _Double (1.0 keeps its ".0").
  assert.equal(decodeMysqlJson(Uint8Array.from([0x04, 0x00])), 'null');
  assert.equal(decodeMysqlJson(Uint8Array.from([0x04, 0x01])), 'true');
  assert.equal(decodeMysqlJson(Uint8Array.from([0x04, 0x02])), 'false');
  assert.equal(decodeMysqlJson(Uint8Array.from([0x05, 0x2a, 0x00])), '42');
  assert.equal(decodeMysqlJson(Uint8Array.from([0x0b, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f])), '1.0');
  // TestRenderJSONAsMySQLText_OpaqueDecimal: DECIMAL(2,1) 1.0, unquoted.
  assert.equal(decodeMysqlJson(Uint8Array.from([0x0f, 246, 0x04, 0x02, 0x01, 0x81, 0x00])), '1.0');
  // TestRenderJSONAsMySQLText_OpaqueDateTime / _OpaqueDate / _OpaqueTime (their payload formulas).
  assert.equal(decodeMysqlJson(Uint8Array.from([0x0f, 12, 0x08, ...packedDatetime(2024, 1, 15, 10, 30, 45, 123456)])), '"2024-01-15 10:30:45.123456"');
  assert.equal(decodeMysqlJson(Uint8Array.from([0x0f, 10, 0x08, ...packedDatetime(2024, 1, 15)])), '"2024-01-15"');
  assert.equal(decodeMysqlJson(Uint8Array.from([0x0f, 11, 0x08, ...packedTime(false, 10, 30, 45, 123456)])), '"10:30:45.123456"');
  // TestRenderJSONAsMySQLText_IgnoreDecodeError: a small object claiming 10 bytes with 4.
  assertCorrupt([0x00, 0x00, 0x00, 0x0a, 0x00], /a small object of 10 bytes, 4 left/);
});

test('the encoder here lays out the go-mysql vectors byte for byte', () => {
  assert.deepEqual([...encode({ a: 1, b: 'x' })], [0x00, 0x02, 0x00, 0x16, 0x00, 0x12, 0x00, 0x01, 0x00, 0x13, 0x00, 0x01, 0x00, 0x05, 0x01, 0x00, 0x0c, 0x14, 0x00, 0x61, 0x62, 0x01, 0x78]);
  assert.deepEqual([...encode([1, 'x', true])], [0x02, 0x03, 0x00, 0x0f, 0x00, 0x05, 0x01, 0x00, 0x0c, 0x0d, 0x00, 0x04, 0x01, 0x00, 0x01, 0x78]);
  assert.deepEqual([...encode(decimalOpaque('1.0', 2, 1))], [0x0f, 246, 0x04, 0x02, 0x01, 0x81, 0x00]);
});

test('an empty value is the JSON null (MySQL json_binary.cc parse_binary)', () => {
  assert.equal(decodeMysqlJson(new Uint8Array(0)), 'null');
});

// ---------------------------------------------------------------------------------------------
// Scalars.

test('every integer type, at its extremes, top-level and in small and large containers', () => {
  const cases: Array<[Model, string, number]> = [
    [0, '0', T.INT16],
    [-32768, '-32768', T.INT16],
    [32767, '32767', T.INT16],
    [32768, '32768', T.INT32],
    [-2147483648, '-2147483648', T.INT32],
    [2147483647, '2147483647', T.INT32],
    [2147483648, '2147483648', T.INT64],
    [-9223372036854775808n, '-9223372036854775808', T.INT64],
    [9223372036854775807n, '9223372036854775807', T.INT64],
    [new Uint(0), '0', T.UINT16],
    [new Uint(65535), '65535', T.UINT16],
    [new Uint(65536), '65536', T.UINT32],
    [new Uint(4294967295), '4294967295', T.UINT32],
    [new Uint(4294967296), '4294967296', T.UINT64],
    [new Uint(18446744073709551615n), '18446744073709551615', T.UINT64],
  ];
  for (const [value, text, type] of cases) {
    const bytes = encode(value);
    assert.equal(bytes[0], type, text);
    assert.equal(decodeMysqlJson(bytes), text);
    assert.equal(decodeMysqlJson(encode([value, value])), `[${text}, ${text}]`);
    assert.equal(decodeMysqlJson(encode([value, value], { large: true })), `[${text}, ${text}]`);
    assert.equal(decodeMysqlJson(encode({ k: value }, { large: true })), `{"k": ${text}}`);
  }
  // In a large container [u]int32 sit in their value entries; in a small one at an offset.
  const large = encode([2147483647, new Uint(4294967295), -5], { large: true });
  assert.equal(large[1 + 8], T.INT32);
  assert.deepEqual([...large.subarray(1 + 9, 1 + 13)], [0xff, 0xff, 0xff, 0x7f]);
  assert.equal(large.length, 1 + 8 + 3 * 5); // everything inlined
  assert.equal(decodeMysqlJson(large), '[2147483647, 4294967295, -5]');
});

test('doubles print as MySQL my_gcvt prints them, with ".0" for integral ones', () => {
  const cases: Array<[number, string]> = [
    [1.5, '1.5'],
    [0.1, '0.1'],
    [-2.25, '-2.25'],
    [0.30000000000000004, '0.30000000000000004'],
    [1, '1.0'],
    [0, '0.0'],
    [-0, '-0.0'],
    [100, '100.0'],
    [-3, '-3.0'],
    [123456.789, '123456.789'],
    [1e14, '100000000000000.0'], // 15 digits before the point: still fixed
    [123456789012345.6, '123456789012345.6'],
    [1e15, '1e15'], // MAX_DECPT_FOR_F_FORMAT: integers of 16 digits and more take an exponent
    [1234567890123456.8, '1234567890123456.8'], // … unless the digits go past the point
    [1e16, '1e16'],
    [1.2345678901234568e20, '1.2345678901234568e20'],
    [1e100, '1e100'],
    [-2.25e100, '-2.25e100'],
    [1.7976931348623157e308, '1.7976931348623157e308'],
    [0.001, '0.001'],
    [1e-5, '0.00001'], // "make cases like 1e200 or 0.00001 look nicer" (m_string.h)
    [1.5e-7, '0.00000015'],
    [1e-14, '0.00000000000001'],
    [1e-15, '0.000000000000001'], // decpt -14: the last fixed one
    [1e-16, '1e-16'],
    [1.5e-16, '1.5e-16'],
    [-1.5e-100, '-1.5e-100'],
    [5e-324, '5e-324'],
    [2.2250738585072014e-308, '2.2250738585072014e-308'],
  ];
  for (const [value, text] of cases) {
    assert.equal(formatDouble(value), text, String(value));
    assert.equal(decodeMysqlJson(encode(new Dbl(value))), text);
    assert.equal(decodeMysqlJson(encode({ d: new Dbl(value) })), `{"d": ${text}}`);
    assert.ok(Object.is(JSON.parse(text), value), `${text} reads back as ${value}`);
  }
});

test('strings: escapes as MySQL double_quote writes them, non-ASCII as is, long lengths', () => {
  const cases: Array<[string, string]> = [
    ['', '""'],
    ['plain', '"plain"'],
    ['a"b\\c', '"a\\"b\\\\c"'],
    ['\n\t\r\b\f', '"\\n\\t\\r\\b\\f"'],
    ['\u0000\u0001\u001f', '"\\u0000\\u0001\\u001f"'],
    ['\u007f/<>', '"\u007f/<>"'], // DEL and "/" are not escaped
    ['héllo wörld ✓ 😀 漢字', '"héllo wörld ✓ 😀 漢字"'],
    ['\ufeffbom', '"\ufeffbom"'], // a leading BOM is kept
    ['\u2028\u2029', '"\u2028\u2029"'],
  ];
  for (const [value, text] of cases) {
    assert.equal(decodeMysqlJson(encode(value)), text);
    assert.equal(decodeMysqlJson(encode([value])), `[${text}]`);
  }
  // Lengths of 1, 2 and 3 bytes (7 bits each).
  for (const length of [127, 128, 16383, 16384, 70000]) {
    const value = 'x'.repeat(length);
    const bytes = encode(value);
    assert.equal(decodeMysqlJson(bytes), `"${value}"`);
    assert.equal(bytes.length, 1 + varlen(length).length + length);
  }
});

test('objects: keys in stored order (by length, then bytes), unicode keys, escaped keys', () => {
  assert.equal(decodeMysqlJson(encode({ é: 1, z: 2, ab: 3, a: 4 })), '{"a": 4, "z": 2, "ab": 3, "é": 1}');
  assert.equal(decodeMysqlJson(encode({ 'k"\n': true, '': null })), '{"": null, "k\\"\\n": true}');
  assert.equal(decodeMysqlJson(encode({ 10: 'ten', 9: 'nine', b: 'b' })), '{"9": "nine", "b": "b", "10": "ten"}');
  assert.equal(decodeMysqlJson(encode({ 日本: '語', emoji: '😀' })), '{"emoji": "😀", "日本": "語"}');
});

test('nested objects and arrays', () => {
  const value: Model = { a: [1, new Dbl(2.5), 'x', null, [true, false, []], {}], b: { c: { d: [{ e: 'deep' }] } }, n: -40000 };
  assert.equal(decodeMysqlJson(encode(value)), '{"a": [1, 2.5, "x", null, [true, false, []], {}], "b": {"c": {"d": [{"e": "deep"}]}}, "n": -40000}');
  assert.equal(decodeMysqlJson(encode(value, { large: true })), '{"a": [1, 2.5, "x", null, [true, false, []], {}], "b": {"c": {"d": [{"e": "deep"}]}}, "n": -40000}');
  let deep: Model = 'core';
  for (let i = 0; i < 100; i++) deep = i % 2 ? [deep] : { k: deep };
  assert.equal(decodeMysqlJson(encode(deep)), JSON.stringify(plain(deep)).replaceAll(':', ': '));
});

test('containers over 64 KiB take the large format, and so do their parents', () => {
  const big = 'y'.repeat(40000);
  // Two 40000-byte strings do not fit 16-bit offsets: the array is large.
  const array = encode([big, big, 7]);
  assert.equal(array[0], T.LARGE_ARRAY);
  assert.equal(decodeMysqlJson(array), `["${big}", "${big}", 7]`);
  // A small object holding it must grow too (MySQL's small_parent rule); a small sibling stays small.
  const object = encode({ list: [big, big], small: [1, 2] });
  assert.equal(object[0], T.LARGE_OBJECT);
  assert.equal(decodeMysqlJson(object), `{"list": ["${big}", "${big}"], "small": [1, 2]}`);
  const smallEntry = 1 + 8 + 2 * 6 + 5; // the second value entry: "small"'s
  assert.equal(object[smallEntry], T.SMALL_ARRAY);
  // More than 65535 elements: a large array however small they are.
  const many = Array.from({ length: 70000 }, (_, i) => i % 3 === 0 ? null : i % 100);
  const manyBytes = encode(many);
  assert.equal(manyBytes[0], T.LARGE_ARRAY);
  assert.equal(decodeMysqlJson(manyBytes), `[${many.map((x) => String(x)).join(', ')}]`);
  // A large object with many keys.
  const keys: { [key: string]: Model } = {};
  for (let i = 0; i < 7000; i++) keys[`key${i}`] = `value ${i}`;
  const keyBytes = encode(keys);
  assert.equal(keyBytes[0], T.LARGE_OBJECT);
  assert.deepEqual(JSON.parse(decodeMysqlJson(keyBytes)), keys);
});

// ---------------------------------------------------------------------------------------------
// Opaque values.

test('opaque DECIMAL prints as the exact decimal with its scale, unquoted', () => {
  const cases: Array<[string, number, number]> = [
    ['1.50', 5, 2],
    ['-12345678.91', 10, 2],
    ['0.0001', 12, 4],
    ['-0.0001', 12, 4],
    ['0.5', 1, 1],
    ['12345678901234567890.0123456789', 30, 10],
    ['-7', 5, 0],
    ['0', 10, 0],
    ['99999999999999999999999999999999999.999999999999999999999999999999', 65, 30],
    ['-123456789.123456789', 18, 9],
  ];
  for (const [text, precision, scale] of cases) {
    assert.equal(decodeMysqlJson(encode(decimalOpaque(text, precision, scale))), text);
    assert.equal(decodeMysqlJson(encode({ price: decimalOpaque(text, precision, scale) })), `{"price": ${text}}`);
  }
});

test('opaque DATE, TIME, DATETIME and TIMESTAMP print quoted, as MySQL JSON does', () => {
  const cases: Array<[Opaque, string]> = [
    [new Opaque(F.DATETIME, packedDatetime(2015, 1, 15, 23, 24, 25)), '"2015-01-15 23:24:25.000000"'],
    [new Opaque(F.DATETIME, packedDatetime(2024, 2, 29, 13, 5, 9, 120000)), '"2024-02-29 13:05:09.120000"'],
    [new Opaque(F.DATETIME, packedDatetime(0, 0, 0)), '"0000-00-00 00:00:00.000000"'],
    [new Opaque(F.DATETIME, packedDatetime(9999, 12, 31, 23, 59, 59, 999999)), '"9999-12-31 23:59:59.999999"'],
    [new Opaque(F.TIMESTAMP, packedDatetime(2038, 1, 19, 3, 14, 7)), '"2038-01-19 03:14:07.000000"'],
    [new Opaque(F.DATE, packedDatetime(2024, 1, 2)), '"2024-01-02"'],
    [new Opaque(F.TIME, packedTime(false, 12, 34, 56)), '"12:34:56.000000"'],
    [new Opaque(F.TIME, packedTime(true, 838, 59, 59)), '"-838:59:59.000000"'],
    [new Opaque(F.TIME, packedTime(true, 0, 0, 1, 500000)), '"-00:00:01.500000"'],
  ];
  for (const [value, text] of cases) {
    assert.equal(decodeMysqlJson(encode(value)), text);
    assert.equal(decodeMysqlJson(encode([value, 1])), `[${text}, 1]`);
  }
});

test('other opaque values print as "base64:typeNN:…", VAR_STRING as a string', () => {
  // json_dom.cc wrapper_to_string: "base64:type" + the field type + ":" + base64_encode(data); a binary
  // string such as CAST(x'01' AS JSON) is field type 15 (VARCHAR).
  assert.equal(decodeMysqlJson(encode(new Opaque(F.VARCHAR, [0x01]))), '"base64:type15:AQ=="');
  assert.equal(decodeMysqlJson(encode(new Opaque(F.YEAR, [0xe8, 0x07]))), '"base64:type13:6Ac="');
  assert.equal(decodeMysqlJson(encode(new Opaque(F.BLOB, []))), '"base64:type252:"');
  // base64_encode breaks its output every 76 characters; the newline prints escaped.
  const data = Array.from({ length: 120 }, (_, i) => i);
  const encoded = Buffer.from(data).toString('base64');
  assert.equal(encoded.length, 160);
  assert.equal(decodeMysqlJson(encode([new Opaque(F.BLOB, data)])), `["base64:type252:${encoded.slice(0, 76)}\\n${encoded.slice(76, 152)}\\n${encoded.slice(152)}"]`);
  assert.equal(decodeMysqlJson(encode(new Opaque(F.VAR_STRING, encoder.encode('a "quoted" ✓')))), '"a \\"quoted\\" ✓"');
});

// ---------------------------------------------------------------------------------------------
// Malformed input.

test('malformed documents are DefiniteErrors naming what is wrong', () => {
  const object = [...encode({ a: 1, b: 'x' })];
  const array = [...encode([1, 'x', true])];
  assertCorrupt([0x0d], /unknown type 0x0d/);
  assertCorrupt([0x02, 0x01, 0x00, 0x08, 0x00, 0x0e, 0x07, 0x00, 0x00], /unknown type 0x0e/); // inside an array
  assertCorrupt([0x04, 0x03], /a literal of 0x03/);
  assertCorrupt([0x04], /a literal needs 1 bytes, 0 left/);
  assertCorrupt([0x09, 1, 2, 3], /an int64 needs 8 bytes, 3 left/);
  assertCorrupt([0x0b, 0, 0, 0, 0, 0, 0, 0xf8, 0x7f], /a double that is NaN/);
  assertCorrupt([0x0b, 0, 0, 0, 0, 0, 0, 0xf0, 0x7f], /a double that is Infinity/);
  assertCorrupt([0x0c, 0x05, 0x61], /a string of 5 bytes, 1 left/);
  assertCorrupt([0x0c, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01], /length does not end/);
  assertCorrupt([0x0c, 0x81], /length does not end/);
  assertCorrupt([0x0c, 0x02, 0xc3, 0x28], /a string that is not UTF-8/);
  assertCorrupt([0x03, 0x01, 0x00], /a large array whose header needs 8 bytes, 2 left/);
  // The value entry of "b" points before the entries' end, then past the object.
  const early = [...object];
  early[17] = 0x02;
  assertCorrupt(early, /value 1 of a small object at offset 2, outside/);
  const late = [...object];
  late[17] = 0x40;
  assertCorrupt(late, /value 1 of a small object at offset 64, outside/);
  // A key pointing into the header, and one running past the object.
  const keyEarly = [...object];
  keyEarly[5] = 0x00;
  assertCorrupt(keyEarly, /key 0 of a small object at offset 0/);
  const keyLong = [...object];
  keyLong[7] = 0x20;
  assertCorrupt(keyLong, /key 0 of a small object at offset 18 \(32 bytes\) outside/);
  // A count whose entries do not fit the size.
  const count = [...array];
  count[1] = 0x09;
  assertCorrupt(count, /a small array of 9 members whose header \(31 bytes\) is larger than its size \(15 bytes\)/);
  // Opaque values whose bytes are not what their type needs.
  assertCorrupt([0x0f, 246, 0x03, 0x02, 0x01, 0x81], /a decimal\(2,1\) of 1 bytes \(it takes 2\)/);
  assertCorrupt([0x0f, 246, 0x01, 0x02], /a decimal of 1 bytes/);
  assertCorrupt([0x0f, 246, 0x06, 70, 0, 0, 0, 0, 0], /a decimal of precision 70/);
  assertCorrupt([0x0f, 246, 0x06, 9, 0, 0xbb, 0x9a, 0xca, 0x00], /a group of 1000000000/);
  assertCorrupt([0x0f, 12, 0x07, 0, 0, 0, 0, 0, 0, 0], /a datetime of 7 bytes \(a packed time takes 8\)/);
  assertCorrupt([0x0f, 12, 0x08, ...packedDatetime(2024, 1, 1, 24, 0, 0)], /a datetime with .*hour 24/);
  assertCorrupt([0x0f, 11, 0x08, ...packedTime(false, 1, 60, 0)], /a time with minute 60/);
  assertCorrupt([0x0f, 12, 0x08, ...le((1n << 24n) - 1n, 8)], /16777215 microseconds/);
  assertCorrupt([0x0f, 253, 0x05, 0x61], /an opaque value \(field type 253\) of 5 bytes, 1 left/);
  // Nesting deeper than any document MySQL writes.
  let deep: Model = [];
  for (let i = 0; i < 1000; i++) deep = [deep];
  assertCorrupt(encode(deep), /a small array nested more than 1000 deep/);
  assert.equal(decodeMysqlJson(encode((deep as Model[])[0]!)), `${'['.repeat(1000)}${']'.repeat(1000)}`);
});

test('every truncation of a document is an error, never a shorter value', () => {
  const documents = [encode({ a: [1, 'two', new Dbl(3.5), { b: null }], 'ключ': decimalOpaque('-1.25', 5, 2), t: new Opaque(F.DATETIME, packedDatetime(2020, 5, 6, 7, 8, 9)) }), encode(['x'.repeat(300), 2147483647, new Uint(18446744073709551615n)], { large: true }), encode('a string of some length')];
  for (const bytes of documents) {
    decodeMysqlJson(bytes);
    for (let cut = 1; cut < bytes.length; cut++) assertCorrupt(bytes.subarray(0, cut), /./);
  }
});

test('property: damaged documents decode or fail with a DefiniteError, never another error', () => {
  const document = encode({ a: [1, 'two', new Dbl(3.5), { b: null }], c: decimalOpaque('-1.25', 5, 2), t: new Opaque(F.TIME, packedTime(true, 1, 2, 3)), u: new Uint(70000), w: [true, false, -70000] });
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.nat(document.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), (damage) => {
      const bytes = Uint8Array.from(document);
      for (const [at, byte] of damage) bytes[at] = byte;
      try {
        decodeMysqlJson(bytes);
      } catch (error) {
        assert.ok(error instanceof DefiniteError, `${String(error)}`);
      }
    }),
    { numRuns: 3000 },
  );
});

// ---------------------------------------------------------------------------------------------
// Round trips.

/** A JSON text parsed keeping each object's keys in order: objects as ['{', [key, value]…]. */
function parseOrdered(text: string): unknown {
  let at = 0;
  const value = (): unknown => {
    const c = text[at]!;
    if (c === '{' || c === '[') {
      const close = c === '{' ? '}' : ']';
      at++;
      const items: unknown[] = [];
      while (text[at] !== close) {
        if (items.length > 0) {
          assert.equal(text.slice(at, at + 2), ', ', `", " between members, at ${at} of ${text}`);
          at += 2;
        }
        if (c === '{') {
          const key = string();
          assert.equal(text.slice(at, at + 2), ': ', `": " after a key, at ${at} of ${text}`);
          at += 2;
          items.push([key, value()]);
        } else items.push(value());
      }
      at++;
      return c === '{' ? ['{', items] : items;
    }
    if (c === '"') return string();
    const match = /^(?:null|true|false|-?\d+(?:\.\d+)?(?:e-?\d+)?)/.exec(text.slice(at))!;
    assert.ok(match, `a scalar at ${at} of ${text}`);
    at += match[0].length;
    return JSON.parse(match[0]);
  };
  const string = (): string => {
    const match = /^"(?:[^"\\\u0000-\u001f]|\\["\\bfnrt]|\\u00[0-1][0-9a-f])*"/.exec(text.slice(at));
    assert.ok(match, `a string at ${at} of ${text}`);
    at += match[0].length;
    return JSON.parse(match[0]) as string;
  };
  const out = value();
  assert.equal(at, text.length);
  return out;
}

/** `v` in the shape parseOrdered gives, keys in MySQL's order. */
function ordered(v: Model): unknown {
  if (Array.isArray(v)) return v.map(ordered);
  if (isContainer(v)) return ['{', sortedKeys(v).map((k) => [k, ordered(v[k]!)])];
  return plain(v);
}

const json: fc.Arbitrary<Model> = fc.letrec<{ value: Model }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    fc.integer({ min: -2147483648, max: 2147483647 }),
    fc.double({ noNaN: true, noDefaultInfinity: true }).map((x) => new Dbl(x)),
    fc.string({ unit: 'binary', maxLength: 20 }),
    fc.array(tie('value'), { maxLength: 5 }),
    fc.dictionary(fc.string({ unit: 'binary', maxLength: 8 }).filter((k) => k !== '__proto__'), tie('value'), { maxKeys: 5, noNullPrototype: true }),
  ),
})).value;

test('property: random documents read back as themselves, in MySQL\'s layout and separators', () => {
  fc.assert(
    fc.property(json, fc.boolean(), (value, large) => {
      const text = decodeMysqlJson(encode(value, { large }));
      assert.deepStrictEqual(JSON.parse(text), plain(value));
      assert.deepStrictEqual(parseOrdered(text), ordered(value));
    }),
    { numRuns: 2000 },
  );
});

test('property: a double prints as text that reads back as the same double', () => {
  fc.assert(
    fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), (x) => {
      const text = formatDouble(x);
      assert.ok(Object.is(JSON.parse(text), x), `${x} printed as ${text}`);
      assert.match(text, /^-?\d+(\.\d+)?(e-?\d+)?$/);
      assert.ok(/[.e]/.test(text));
    }),
    { numRuns: 5000 },
  );
});

// ---------------------------------------------------------------------------------------------
// Through the binlog decoder, and into a Sluice jsonb value.

function event(type: number, body: number[]): Uint8Array {
  const size = 19 + body.length;
  return Uint8Array.from([...le(1700000000n, 4), type, ...le(1n, 4), ...le(BigInt(size), 4), ...le(1000n, 4), 0, 0, ...body]);
}

function tableMap(): Uint8Array {
  const name = (text: string): number[] => [text.length, ...encoder.encode(text), 0];
  // Columns: id INT, doc JSON (metadata: 4 length bytes, as MySQL writes for JSON).
  return event(EVENT.TABLE_MAP, [...le(42n, 6), 0, 0, ...name('shop'), ...name('docs'), 2, TYPE.LONG, TYPE.JSON, 1, 4, 0b10]);
}

function writeRows(rows: Array<[number, Uint8Array | null]>): Uint8Array {
  const body = [...le(42n, 6), 0, 0, 2, 0, 2, 0b11];
  for (const [id, doc] of rows) {
    body.push(doc === null ? 0b10 : 0b00, ...le(BigInt(id), 4));
    if (doc !== null) body.push(...le(BigInt(doc.length), 4), ...doc);
  }
  return event(EVENT.WRITE_ROWS, body);
}

test('a MySQL rows event with a JSON column decodes the document to its text', () => {
  const decoder = new BinlogDecoder();
  decoder.decode(tableMap());
  const doc = encode({ name: 'widget', tags: ['a', 'b'], price: decimalOpaque('9.99', 5, 2), at: new Opaque(F.DATETIME, packedDatetime(2024, 1, 2, 3, 4, 5)) });
  const decoded = decoder.decode(writeRows([[1, doc], [2, null], [3, new Uint8Array(0)]])) as Extract<BinlogEvent, { kind: 'rows' }>;
  assert.equal(decoded.kind, 'rows');
  assert.deepEqual(decoded.rows, [
    [1, '{"at": "2024-01-02 03:04:05.000000", "name": "widget", "tags": ["a", "b"], "price": 9.99}'],
    [2, null],
    [3, 'null'],
  ]);
  // Read as a Sluice jsonb value, as schema.ts maps MySQL's json columns.
  const value = mysqlValue(decoded.rows[0]![1]!, { name: 'doc', type: { kind: 'jsonb', modifiers: [] }, key: false, native: 'json' }, 'shop.docs');
  assert.deepEqual(JSON.parse(String(value)), { at: '2024-01-02 03:04:05.000000', name: 'widget', tags: ['a', 'b'], price: 9.99 });
});

test('a corrupt JSON document in a rows event names the table and column', () => {
  const decoder = new BinlogDecoder();
  decoder.decode(tableMap());
  assert.throws(
    () => decoder.decode(writeRows([[1, Uint8Array.from([0x02, 0x05, 0x00, 0x04, 0x00])]])),
    (error: unknown) => error instanceof DefiniteError && error.code === 'binlog_corrupt' && /^shop\.docs, column \?: MySQL binary JSON: a small array of 5 members/.test(error.message),
  );
});
