/**
 * Parsing pipeline files: statement splitting that respects quotes and comments, Sluice's own
 * statements, PostgreSQL's statements through its parser, and errors that point at the file's
 * line and column with a hint.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import { parsePipelineAsync, splitStatements, SqlSyntaxError, type PipelineStatement } from './parse.ts';

const pipeline = `-- the shop pipeline
CREATE SOURCE shop FROM POSTGRES 'postgres://cdc@127.0.0.1/shop'
  WITH (publication = 'sluice', tables = 'public.products, public.orders');
CREATE SOURCE legacy FROM MYSQL 'mysql://cdc@127.0.0.1/legacy' WITH (tables = 'legacy.items', server_id = 4242);
CREATE TABLE clicks (user_id bigint, url text, at timestamptz);   -- fed by POST …/events
CREATE VIEW totals AS SELECT customer_id, count(*) AS n, sum(amount) AS total
  FROM shop.orders GROUP BY customer_id;
CREATE SINK products_search FROM shop.products INTO SEARCH WITH (fields = 'title^2, body');
create sink totals_cache from totals into redis 'redis://127.0.0.1:6379'
  with (key = 'totals:{customer_id}');
DROP SINK IF EXISTS old_sink;
DROP VIEW old_view;
`;

test('the pipeline of DESIGN.md parses into its statements, each with its place in the file', async () => {
  const statements = await parsePipelineAsync(pipeline, 'shop.sql');
  assert.deepEqual(
    statements.map((statement) => [statement.kind, statement.span.line, statement.span.column]),
    [
      ['createSource', 2, 1],
      ['createSource', 4, 1],
      ['postgres', 5, 1],
      ['postgres', 6, 1],
      ['createSink', 8, 1],
      ['createSink', 9, 1],
      ['drop', 11, 1],
      ['postgres', 12, 1],
    ],
  );
  const [shop, legacy, clicks, totals, search, cache, dropSink, dropView] = statements as [PipelineStatement, ...PipelineStatement[]];
  assert.deepEqual(shop, {
    kind: 'createSource',
    name: 'shop',
    connector: 'postgres',
    url: 'postgres://cdc@127.0.0.1/shop',
    options: new Map([
      ['publication', 'sluice'],
      ['tables', 'public.products, public.orders'],
    ]),
    span: shop.span,
  });
  assert.ok(legacy?.kind === 'createSource' && legacy.connector === 'mysql' && legacy.options.get('server_id') === '4242');
  assert.ok(clicks?.kind === 'postgres' && 'CreateStmt' in clicks.node);
  assert.ok(totals?.kind === 'postgres' && 'ViewStmt' in totals.node && totals.text.endsWith('GROUP BY customer_id'));
  assert.ok(search?.kind === 'createSink' && search.target === 'search' && search.url === undefined && search.from.join('.') === 'shop.products' && search.options.get('fields') === 'title^2, body');
  assert.ok(cache?.kind === 'createSink' && cache.name === 'totals_cache' && cache.target === 'redis' && cache.url === 'redis://127.0.0.1:6379' && cache.options.get('key') === 'totals:{customer_id}');
  assert.deepEqual(dropSink && { ...dropSink, span: undefined }, { kind: 'drop', object: 'sink', name: 'old_sink', ifExists: true, span: undefined });
  assert.ok(dropView?.kind === 'postgres' && 'DropStmt' in dropView.node);
});

test('semicolons inside strings, identifiers, dollar quotes and comments do not split statements', () => {
  const text = [
    `SELECT 'a;b', 'it''s; here', E'\\'; still', "odd;name" FROM t`,
    `/* a comment; /* nested; */ still */ SELECT $$ x; y $$, $tag$ $$; $tag$`,
    `-- a comment; with a semicolon\nSELECT 1`,
    ``,
    `  `,
  ].join(';');
  const parts = splitStatements(text).map(({ offset, length }) => text.slice(offset, offset + length));
  assert.deepEqual(parts, [`SELECT 'a;b', 'it''s; here', E'\\'; still', "odd;name" FROM t`, `SELECT $$ x; y $$, $tag$ $$; $tag$`, `SELECT 1`]);
});

test('errors name the file, line and column, show the line with a caret, and hint at the fix', async () => {
  const cases: Array<[string, RegExp, RegExp | undefined]> = [
    ["SELECT 1;\nCREATE SOURCE shop FROM ORACLE 'x'", /^bad\.sql:2:25: expected POSTGRES, MYSQL or FILE, found "oracle"\n  CREATE SOURCE shop FROM ORACLE 'x'\n {26}\^$/, /PostgreSQL and from MySQL or MariaDB/],
    ['SELECT title\nFROM products\nWHERE WHERE x', /^bad\.sql:3:7: syntax error at or near "WHERE"/, /just before "WHERE"/],
    ['SELECT (1', /^bad\.sql:1:10: syntax error at end of input/, /ends too early/],
    ['CREATE SINK s FROM v INTO ELASTIC', /^bad\.sql:1:27: expected a sink target \(SEARCH, REDIS, POSTGRES, MYSQL, FILE, JETSTREAM, WEBHOOK\), found "elastic"/, undefined],
    ["CREATE SINK s FROM v INTO REDIS WITH (key = 'k')", /^bad\.sql:1:33: expected the redis URL in single quotes, found "with"/, undefined],
    ["CREATE SOURCE s FROM MYSQL 'x' WITH (a = 'b', a = 'c')", /^bad\.sql:1:47: option "a" is given twice\n/, /give each option once/],
    ["CREATE SOURCE s FROM MYSQL 'x' extra", /^bad\.sql:1:32: expected the end of the statement, found "extra"/, /semicolon/],
    ["SELECT 'unterminated", /^bad\.sql:1:8: unterminated string/, /close it with '/],
    ['SELECT 1 /* open', /^bad\.sql:1:10: unterminated \/\* comment/, /close it with \*\//],
  ];
  for (const [text, message, hint] of cases) {
    await assert.rejects(parsePipelineAsync(text, 'bad.sql'), (error: unknown) => {
      assert.ok(error instanceof SqlSyntaxError, `${text}: ${String(error)}`);
      assert.match(error.message, message, text);
      if (hint) assert.match(error.hint ?? '', hint, text);
      assert.equal(error.code, 'sql_syntax');
      return true;
    });
  }
});
