import assert from 'node:assert/strict';
import test from 'node:test';
import fc from 'fast-check';
import { formatLsn, parseLsn, PgOutputDecoder, PgOutputError, unixMicros, type ColumnValue } from './pgoutput.ts';

/** Builds pgoutput bytes the way PostgreSQL writes them (big-endian, NUL-terminated strings). */
class Bytes {
  readonly parts: number[] = [];
  tag(c: string): this {
    this.parts.push(c.charCodeAt(0));
    return this;
  }
  u8(v: number): this {
    this.parts.push(v & 0xff);
    return this;
  }
  i16(v: number): this {
    this.parts.push((v >> 8) & 0xff, v & 0xff);
    return this;
  }
  i32(v: number): this {
    this.parts.push((v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
    return this;
  }
  i64(v: bigint): this {
    for (let shift = 56n; shift >= 0n; shift -= 8n) this.parts.push(Number((BigInt.asUintN(64, v) >> shift) & 0xffn));
    return this;
  }
  str(s: string): this {
    this.parts.push(...new TextEncoder().encode(s), 0);
    return this;
  }
  raw(bytes: Uint8Array): this {
    this.parts.push(...bytes);
    return this;
  }
  tuple(values: ColumnValue[]): this {
    this.i16(values.length);
    for (const v of values) {
      if (v.kind === 'null') this.tag('n');
      else if (v.kind === 'unchanged') this.tag('u');
      else if (v.kind === 'text') {
        const encoded = new TextEncoder().encode(v.value);
        this.tag('t').i32(encoded.length).raw(encoded);
      } else this.tag('b').i32(v.value.length).raw(v.value);
    }
    return this;
  }
  done(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

const t = (value: string): ColumnValue => ({ kind: 'text', value });

test('begin, commit and origin carry their LSNs, times and transaction id', () => {
  const decoder = new PgOutputDecoder();
  assert.deepEqual(decoder.decode(new Bytes().tag('B').i64(0x16b374d848n).i64(785_000_000_123n).i32(4_000_000_000).done()), { type: 'begin', finalLsn: 0x16b374d848n, commitTime: 785_000_000_123n, xid: 4_000_000_000 });
  assert.deepEqual(decoder.decode(new Bytes().tag('C').u8(0).i64(10n).i64(20n).i64(-5n).done()), { type: 'commit', flags: 0, commitLsn: 10n, endLsn: 20n, commitTime: -5n });
  assert.deepEqual(decoder.decode(new Bytes().tag('O').i64(7n).str('origin-é').done()), { type: 'origin', lsn: 7n, name: 'origin-é' });
});

test('a relation message names its columns, types and which are in the replica identity', () => {
  const bytes = new Bytes().tag('R').i32(16384).str('public').str('orders').tag('d').i16(3).u8(1).str('id').i32(20).i32(-1).u8(0).str('amount').i32(1700).i32(786438).u8(0).str('note').i32(25).i32(-1).done();
  assert.deepEqual(new PgOutputDecoder().decode(bytes), {
    type: 'relation',
    relationOid: 16384,
    namespace: 'public',
    name: 'orders',
    replicaIdentity: 'd',
    columns: [
      { key: true, name: 'id', typeOid: 20, typeModifier: -1 },
      { key: false, name: 'amount', typeOid: 1700, typeModifier: 786438 },
      { key: false, name: 'note', typeOid: 25, typeModifier: -1 },
    ],
  });
});

test('inserts, updates and deletes carry tuples with null, unchanged TOAST, text and binary values', () => {
  const decoder = new PgOutputDecoder();
  const row: ColumnValue[] = [t('1'), { kind: 'null' }, { kind: 'unchanged' }, { kind: 'binary', value: Uint8Array.of(0, 255, 7) }, t('crème ☕')];
  assert.deepEqual(decoder.decode(new Bytes().tag('I').i32(16384).tag('N').tuple(row).done()), { type: 'insert', relationOid: 16384, newTuple: row });
  assert.deepEqual(decoder.decode(new Bytes().tag('U').i32(1).tag('N').tuple([t('2')]).done()), { type: 'update', relationOid: 1, newTuple: [t('2')] });
  assert.deepEqual(decoder.decode(new Bytes().tag('U').i32(1).tag('K').tuple([t('1')]).tag('N').tuple([t('2')]).done()), { type: 'update', relationOid: 1, oldKind: 'key', oldTuple: [t('1')], newTuple: [t('2')] });
  assert.deepEqual(decoder.decode(new Bytes().tag('U').i32(1).tag('O').tuple([t('1'), t('a')]).tag('N').tuple([t('1'), t('b')]).done()), { type: 'update', relationOid: 1, oldKind: 'row', oldTuple: [t('1'), t('a')], newTuple: [t('1'), t('b')] });
  assert.deepEqual(decoder.decode(new Bytes().tag('D').i32(1).tag('K').tuple([t('9')]).done()), { type: 'delete', relationOid: 1, oldKind: 'key', oldTuple: [t('9')] });
  assert.deepEqual(decoder.decode(new Bytes().tag('D').i32(1).tag('O').tuple([t('9'), { kind: 'null' }]).done()), { type: 'delete', relationOid: 1, oldKind: 'row', oldTuple: [t('9'), { kind: 'null' }] });
});

test('truncate, type and logical decoding messages', () => {
  const decoder = new PgOutputDecoder();
  assert.deepEqual(decoder.decode(new Bytes().tag('T').i32(2).u8(3).i32(10).i32(11).done()), { type: 'truncate', cascade: true, restartIdentity: true, relationOids: [10, 11] });
  assert.deepEqual(decoder.decode(new Bytes().tag('T').i32(1).u8(0).i32(10).done()), { type: 'truncate', cascade: false, restartIdentity: false, relationOids: [10] });
  assert.deepEqual(decoder.decode(new Bytes().tag('Y').i32(70000).str('public').str('mood').done()), { type: 'type', typeOid: 70000, namespace: 'public', name: 'mood' });
  assert.deepEqual(decoder.decode(new Bytes().tag('M').u8(1).i64(99n).str('sluice.watermark').i32(3).raw(Uint8Array.of(1, 2, 3)).done()), {
    type: 'message',
    transactional: true,
    lsn: 99n,
    prefix: 'sluice.watermark',
    content: Uint8Array.of(1, 2, 3),
  });
});

test('protocol 2 streaming: changes between Stream Start and Stop carry their transaction id', () => {
  const decoder = new PgOutputDecoder();
  assert.deepEqual(decoder.decode(new Bytes().tag('S').i32(741).u8(1).done()), { type: 'streamStart', xid: 741, firstSegment: true });
  assert.equal(decoder.streamingXid, 741);
  assert.deepEqual(decoder.decode(new Bytes().tag('R').i32(741).i32(5).str('s').str('r').tag('f').i16(0).done()), { type: 'relation', xid: 741, relationOid: 5, namespace: 's', name: 'r', replicaIdentity: 'f', columns: [] });
  assert.deepEqual(decoder.decode(new Bytes().tag('I').i32(741).i32(5).tag('N').tuple([t('x')]).done()), { type: 'insert', xid: 741, relationOid: 5, newTuple: [t('x')] });
  assert.deepEqual(decoder.decode(new Bytes().tag('D').i32(741).i32(5).tag('K').tuple([t('x')]).done()), { type: 'delete', xid: 741, relationOid: 5, oldKind: 'key', oldTuple: [t('x')] });
  assert.deepEqual(decoder.decode(new Bytes().tag('E').done()), { type: 'streamStop' });
  assert.equal(decoder.streamingXid, undefined);
  // Outside a stream, the same insert has no transaction id.
  assert.deepEqual(decoder.decode(new Bytes().tag('I').i32(5).tag('N').tuple([t('y')]).done()), { type: 'insert', relationOid: 5, newTuple: [t('y')] });
  assert.deepEqual(decoder.decode(new Bytes().tag('c').i32(741).u8(0).i64(100n).i64(200n).i64(300n).done()), { type: 'streamCommit', xid: 741, flags: 0, commitLsn: 100n, endLsn: 200n, commitTime: 300n });
  assert.deepEqual(decoder.decode(new Bytes().tag('A').i32(741).i32(742).done()), { type: 'streamAbort', xid: 741, subXid: 742 });
});

test('damaged messages are refused with what and where, never half decoded', () => {
  const decoder = new PgOutputDecoder();
  const refuses = (bytes: Uint8Array, pattern: RegExp) => assert.throws(() => decoder.decode(bytes), (error: unknown) => error instanceof PgOutputError && error.code === 'pgoutput_invalid' && pattern.test(error.message));
  refuses(new Bytes().tag('B').i64(1n).done(), /ends at byte 9 inside an Int64/);
  refuses(new Bytes().tag('C').u8(0).i64(1n).i64(2n).i64(3n).u8(9).done(), /commit message has 1 bytes left over/);
  refuses(new Bytes().tag('Z').done(), /unknown pgoutput message type 'Z'/);
  refuses(new Bytes().tag('I').i32(1).tag('N').i16(1).tag('x').done(), /column 0 of a tuple has kind 'x'/);
  refuses(new Bytes().tag('I').i32(1).tag('X').done(), /an insert has 'X' where 'N' belongs/);
  refuses(new Bytes().tag('O').i64(1n).raw(Uint8Array.of(65, 66)).done(), /no terminating NUL/);
  refuses(new Bytes().tag('I').i32(1).tag('N').i16(1).tag('t').i32(10).raw(Uint8Array.of(65)).done(), /column 0's text/);
});

test('LSNs print and parse as PostgreSQL writes them; timestamps convert to the Unix epoch', () => {
  assert.equal(formatLsn(0x16b374d848n), '16/B374D848');
  assert.equal(parseLsn('0/0'), 0n);
  assert.throws(() => parseLsn('16-B374'), /is not an LSN/);
  fc.assert(fc.property(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), (lsn) => parseLsn(formatLsn(lsn)) === lsn));
  assert.equal(unixMicros(0n), 946_684_800_000_000n);
});
