/**
 * Scalar semantics against PostgreSQL: each expression's expected text is what PostgreSQL 15's
 * psql printed for `SELECT expr` (checked by hand on 2026-11-24); an empty string is NULL, and
 * `ERROR:  …` is the error PostgreSQL raised.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { open } from '../index.ts';
import { outputValue, resolveType } from './index.ts';

const POSTGRES: Array<[string, string]> = [
  ['7 / 2', '3'],
  ['-7 / 2', '-3'],
  ['-7 % 3', '-1'],
  ['7.0 / 2', '3.5000000000000000'],
  ['1 / 3::numeric', '0.33333333333333333333'],
  ['10 / 3::numeric', '3.3333333333333333'],
  ['12345.6 / 7', '1763.6571428571428571'],
  ['2 ^ 10', '1024'],
  ['round(2.5)', '3'],
  ['round(2.5::float8)', '2'],
  ['round(3.5::float8)', '4'],
  ['round(-2.5)', '-3'],
  ['round(1234.5678, 2)', '1234.57'],
  ['round(1234.5678, -2)', '1200'],
  ['trunc(-1234.5678, 1)', '-1234.5'],
  ['ceil(-1.5)', '-1'],
  ['floor(-1.5)', '-2'],
  ['abs(-7)', '7'],
  ['5::float8 / 2', '2.5'],
  ['CAST(2.5 AS integer)', '3'],
  ['CAST(3.5 AS integer)', '4'],
  ['CAST(2.5::float8 AS integer)', '2'],
  ['CAST(-2.5::float8 AS integer)', '-2'],
  ['CAST(\'12\' AS integer) + 1', '13'],
  ['\'abc\' || 1', 'abc1'],
  ['1 || \'abc\'', '1abc'],
  ['NULLIF(1, 2.2)', '1'],
  ['COALESCE(NULL, 2, 1/0)', '2'],
  ['substr(\'hello\', 2, 3)', 'ell'],
  ['substr(\'hello\', -1, 3)', 'h'],
  ['position(\'l\' in \'hello\')', '3'],
  ['lpad(\'ab\', 5, \'xy\')', 'xyxab'],
  ['rpad(\'abcdef\', 3)', 'abc'],
  ['split_part(\'a,b,c\', \',\', 2)', 'b'],
  ['split_part(\'a,b,c\', \',\', -1)', 'c'],
  ['initcap(\'hello wORLD foo-bar\')', 'Hello World Foo-Bar'],
  ['length(\'héllo\')', '5'],
  ['\'abc\' LIKE \'a%\'', 't'],
  ['\'a_c\' LIKE \'a\\_c\'', 't'],
  ['\'ABC\' ILIKE \'a%\'', 't'],
  ['NULL IN (1, 2)', ''],
  ['1 IN (2, NULL)', ''],
  ['1 NOT IN (2, NULL)', ''],
  ['2 BETWEEN 3 AND 1', 'f'],
  ['2 BETWEEN SYMMETRIC 3 AND 1', 't'],
  ['CASE WHEN NULL THEN 1 ELSE 2 END', '2'],
  ['greatest(1, NULL, 3)', '3'],
  ['least(2.5, 1)', '1'],
  ['date_trunc(\'month\', \'2024-03-15 12:34:56\'::timestamp)', '2024-03-01 00:00:00'],
  ['extract(year from \'2024-03-15\'::date)', '2024'],
  ['extract(epoch from \'2024-03-15 00:00:01.5\'::timestamp)', '1710460801.500000'],
  ['\'2024-03-01\'::date - \'2024-02-01\'::date', '29'],
  ['\'2024-03-01\'::date + 30', '2024-03-31'],
  ['\'{"a": {"b": [1, 2]}}\'::jsonb -> \'a\' -> \'b\' ->> 1', '2'],
  ['jsonb_typeof(\'[1]\'::jsonb)', 'array'],
  ['md5(\'abc\')', '900150983cd24fb0d6963f7d28e17f72'],
  ['sum(x) FROM (VALUES (1), (2)) t(x)', '3'],
  ['avg(x) FROM (VALUES (1), (2)) t(x)', '1.5000000000000000'],
  ['avg(x) FROM (VALUES (0), (1)) t(x)', '0.50000000000000000000'],
  ['avg(x) FROM (VALUES (1.25), (2)) t(x)', '1.6250000000000000'],
  ['sum(x) FROM (VALUES (9223372036854775807::bigint), (1)) t(x)', '9223372036854775808'],
  ['2147483647 + 1', 'ERROR:  integer out of range'],
  ['\'abcd\'::varchar(2)', 'ab'],
  ['\'12.345\'::numeric(5,2)', '12.35'],
  ['CAST(1 AS boolean)', 't'],
  ['true::text', 'true'],
  ['\'2024-01-02 03:04:05+02\'::timestamptz', '2024-01-02 01:04:05+00'],
  ['1.5::float8 * 2', '3'],
  ['9007199254740993::bigint + 1', '9007199254740994'],
  ['-32768::smallint', 'ERROR:  smallint out of range'],
  ['100000::smallint', 'ERROR:  smallint out of range'],
  ['1e3::float8', '1000'],
  ['0.1::float8 + 0.2::float8', '0.30000000000000004'],
  ['\'x\' = \'x \' ', 'f'],
  ['\'x\'::char(3) = \'x\'::char(5)', 't'],
  ['concat(\'a\', NULL, 2)', 'a2'],
  ['concat_ws(\'-\', \'a\', NULL, \'b\')', 'a-b'],
  ['replace(\'banana\', \'an\', \'AN\')', 'bANANa'],
  ['reverse(\'abc\')', 'cba'],
  ['strpos(\'hello\', \'z\')', '0'],
  ['left(\'hello\', -2)', 'hel'],
  ['right(\'hello\', 2)', 'lo'],
  ['btrim(\'xxhixx\', \'x\')', 'hi'],
  ['mod(-7, 3)', '-1'],
  ['sign(-2.5)', '-1'],
  ['sqrt(2)', '1.4142135623730951'],
  ['interval \'1 day\'', '1 day'],
  ['interval \'1 year 2 months 3 days 04:05:06.5\'', '1 year 2 mons 3 days 04:05:06.5'],
  ['interval \'90 minutes\'', '01:30:00'],
  ['interval \'1.5 hours\'', '01:30:00'],
  ['interval \'-2 days ago\'', '2 days'],
  ['interval \'P1Y2M3DT4H5M6S\'', '1 year 2 mons 3 days 04:05:06'],
  ['interval \'1 mon\' = interval \'30 days\'', 't'],
  ['interval \'1 day\' > interval \'23 hours\'', 't'],
  ['\'2024-01-31\'::timestamp + interval \'1 month\'', '2024-02-29 00:00:00'],
  ['\'2024-01-31\'::date + interval \'1 month 1 day\'', '2024-03-01 00:00:00'],
  ['\'2024-03-01 00:00\'::timestamp - \'2024-02-01 12:00\'::timestamp', '28 days 12:00:00'],
  ['\'2024-03-01\'::timestamptz - interval \'2 hours\'', '2024-02-29 22:00:00+00'],
  ['interval \'1 day\' * 1.5', '1 day 12:00:00'],
  ['interval \'1 day\' / 3', '08:00:00'],
  ['interval \'1 day\' + interval \'2 hours\'', '1 day 02:00:00'],
  ['- interval \'1 day 02:00\'', '-1 days -02:00:00'],
  ['extract(epoch from interval \'1 day 1 hour\')', '90000.000000'],
  ['extract(hour from interval \'1 day 5 hours 3 minutes\')', '5'],
  ['extract(epoch from interval \'1 year\')', '31557600.000000'],
  ['\'2024-02-29\'::timestamp + interval \'1 year\'', '2025-02-28 00:00:00'],
  ['interval \'abc\'', 'ERROR:  invalid input syntax for type interval: "abc"'],
  ['\'{"a": {"b": [1, {"c": "x"}]}}\'::jsonb #> \'{a,b,1}\'', '{"c": "x"}'],
  ['\'{"a": {"b": [1, {"c": "x"}]}}\'::jsonb #>> \'{a,b,1,c}\'', 'x'],
  ['\'{"a": 1, "b": [1, 2]}\'::jsonb @> \'{"b": [2]}\'', 't'],
  ['\'{"a": 1}\'::jsonb <@ \'{"a": 1, "b": 2}\'', 't'],
  ['\'{"a": 1}\'::jsonb ? \'a\'', 't'],
  ['\'["x", "y"]\'::jsonb ? \'y\'', 't'],
  ['jsonb_extract_path_text(\'{"a": {"b": 5}}\'::jsonb, \'a\', \'b\')', '5'],
  ['jsonb_extract_path(\'{"a": {"b": 5}}\'::jsonb, \'a\')', '{"b": 5}'],
  ['\'foobar\' ~ \'^fo+b\'', 't'],
  ['\'FOOBAR\' ~* \'foo\'', 't'],
  ['\'foobar\' !~ \'x\'', 't'],
  ['regexp_replace(\'hello world\', \'o\', \'0\', \'g\')', 'hell0 w0rld'],
  ['regexp_replace(\'hello world\', \'(\\w+) (\\w+)\', \'\\2 \\1\')', 'world hello'],
  ['regexp_count(\'banana\', \'an\')', '2'],
  ['to_char(\'2024-03-05 14:07:09.123456\'::timestamp, \'YYYY-MM-DD HH24:MI:SS.US\')', '2024-03-05 14:07:09.123456'],
  ['to_char(\'2024-03-05 14:07:09\'::timestamp, \'Mon DD, YYYY HH12:MI AM\')', 'Mar 05, 2024 02:07 PM'],
  ['to_char(\'2024-03-05\'::date, \'Day DY Month MON Q DDD D "week"\')', 'Tuesday   TUE March     MAR 1 065 3 week'],
  ['to_char(\'2024-12-31 00:00:00+00\'::timestamptz, \'YY-MM\')', '24-12'],
  ['to_timestamp(1710460801.5)', '2024-03-15 00:00:01.5+00'],
];

test('expressions evaluate as PostgreSQL evaluates them', async () => {
  const db = await open();
  const differences: string[] = [];
  for (const [expr, expected] of POSTGRES) {
    let actual: string;
    try {
      const [result] = await db.execute(`SELECT ${expr}`);
      const value = result!.rows![0]![0]!;
      const type = result!.columns![0]!.type.replace(/\(.*\)/, '');
      actual = value === null ? '' : typeof value === 'bigint' || (typeof value === 'number' && type !== 'double precision' && type !== 'real') ? String(value) : outputValue(value, resolveType(type));
    } catch (error) {
      actual = 'ERROR:  ' + (error as Error).message.split('\n')[0]!.replace(/^<sql>:\d+:\d+: /, '');
    }
    if (actual !== expected) differences.push(`SELECT ${expr}\n  PostgreSQL: ${expected}\n  Sluice:     ${actual}`);
  }
  await db.close();
  assert.deepEqual(differences, []);
});
