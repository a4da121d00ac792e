/**
 * Reading the sqllogictest corpus of ../shared/slt and producing results the way its harness
 * compares them.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import test from 'node:test';
import { appliesTo, formatValue, hashValues, matchesExpected, parseSlt, resultValues, SltFormatError } from './format.ts';

const corpus = path.resolve(import.meta.dirname, '../../../../shared/slt');

function corpusFiles(): string[] {
  assert.ok(fs.existsSync(corpus), `the sqllogictest corpus is expected at ${corpus} (../shared/slt beside the repository)`);
  return (fs.readdirSync(corpus, { recursive: true }) as string[]).filter((name) => name.endsWith('.test')).map((name) => path.join(corpus, name));
}

test('every file of the corpus reads completely: as many queries and statements as the files hold', () => {
  let queries = 0;
  let statements = 0;
  let hashed = 0;
  for (const file of corpusFiles()) {
    const text = fs.readFileSync(file, 'utf8');
    const records = parseSlt(text, file);
    const expectedQueries = text.match(/^query /gm)?.length ?? 0;
    const expectedStatements = text.match(/^statement /gm)?.length ?? 0;
    assert.equal(records.filter((record) => record.kind === 'query').length, expectedQueries, file);
    assert.equal(records.filter((record) => record.kind === 'statement').length, expectedStatements, file);
    for (const record of records) {
      if (record.kind !== 'query') continue;
      queries++;
      if ('hash' in record.expected) hashed++;
      else if (record.expected.values.length > 0) assert.equal(record.expected.values.length % record.types.length, 0, `${file}:${record.line}: values fill whole rows`);
      assert.ok(!record.sql.includes('----'), `${file}:${record.line}: the SQL stops at ----`);
    }
    statements += records.filter((record) => record.kind === 'statement').length;
  }
  assert.ok(queries > 100_000, `the corpus holds ${queries} queries`);
  assert.ok(hashed > 0 && statements > 0);
});

test('records, conditions and expectations are read as written', () => {
  const records = parseSlt(
    [
      '# a comment',
      'hash-threshold 8',
      '',
      'statement ok',
      'CREATE TABLE t1(a INTEGER, b TEXT)',
      '',
      'skipif mysql # not compatible',
      'onlyif postgresql',
      'query IT rowsort label-1',
      'SELECT a, b',
      '  FROM t1',
      '----',
      '1',
      'x',
      '',
      'query I nosort',
      'SELECT count(*) FROM t1',
      '----',
      '30 values hashing to 3f3e6e3a1d1b8c5c9f1a2b3c4d5e6f70',
      '',
      'statement error',
      'SELECT nope',
      '',
      'halt',
      '',
      'statement ok',
      'SELECT 1',
    ].join('\n'),
  );
  assert.deepEqual(
    records.map((record) => [record.kind, record.line]),
    [
      ['hashThreshold', 2],
      ['statement', 4],
      ['query', 9],
      ['query', 16],
      ['statement', 21],
      ['halt', 24],
      ['statement', 26],
    ],
  );
  const query = records[2]!;
  assert.ok(query.kind === 'query');
  assert.deepEqual(query, {
    kind: 'query',
    types: 'IT',
    sort: 'rowsort',
    label: 'label-1',
    sql: 'SELECT a, b\n  FROM t1',
    expected: { values: ['1', 'x'] },
    line: 9,
    conditions: [
      { kind: 'skipif', engine: 'mysql' },
      { kind: 'onlyif', engine: 'postgresql' },
    ],
  });
  assert.ok(appliesTo(query.conditions, 'postgresql') && !appliesTo(query.conditions, 'mysql') && !appliesTo(query.conditions, 'sqlite'));
  assert.deepEqual(records[3]!.kind === 'query' && records[3]!.expected, { count: 30, hash: '3f3e6e3a1d1b8c5c9f1a2b3c4d5e6f70' });
  assert.throws(() => parseSlt('query X nosort\nSELECT 1', 'bad.test'), (error: unknown) => error instanceof SltFormatError && /^bad\.test:1: query types must be letters I, T or R/.test(error.message));
  assert.throws(() => parseSlt('\n\nfrobnicate\nSELECT 1', 'bad.test'), /bad\.test:3: unknown record "frobnicate"/);
});

test('values are formatted, sorted and hashed as the reference harness does', () => {
  assert.equal(formatValue(null, 'I'), 'NULL');
  assert.equal(formatValue(7.9, 'I'), '7');
  assert.equal(formatValue(-7.9, 'I'), '-7');
  assert.equal(formatValue(2n ** 64n, 'I'), '18446744073709551616');
  assert.equal(formatValue(2, 'R'), '2.000');
  assert.equal(formatValue('1.23456', 'R'), '1.235');
  assert.equal(formatValue('', 'T'), '(empty)');
  assert.equal(formatValue('a\tb\n', 'T'), 'a@b@');
  assert.deepEqual(
    resultValues(
      [
        [2, 'b'],
        [10, 'a'],
        [null, ''],
      ],
      'IT',
      'rowsort',
    ),
    ['10', 'a', '2', 'b', 'NULL', '(empty)'],
    'rowsort compares rows as text, as the reference harness does',
  );
  assert.deepEqual(resultValues([[2, 'b'], [10, 'a']], 'IT', 'valuesort'), ['10', '2', 'a', 'b']);
  assert.deepEqual(resultValues([[2, 'b'], [10, 'a']], 'IT', 'nosort'), ['2', 'b', '10', 'a']);
  assert.equal(hashValues([]), 'd41d8cd98f00b204e9800998ecf8427e', 'the MD5 of nothing');
  assert.equal(hashValues(['a']), '60b725f10c9c85c70d97880dfe8191b3', 'the MD5 of "a\\n"');
  assert.ok(matchesExpected(['a'], { count: 1, hash: '60b725f10c9c85c70d97880dfe8191b3' }));
  assert.ok(!matchesExpected(['a'], { count: 2, hash: '60b725f10c9c85c70d97880dfe8191b3' }));
  assert.ok(matchesExpected(['1', 'x'], { values: ['1', 'x'] }) && !matchesExpected(['1'], { values: ['1', 'x'] }));
});
