/**
 * The pipe language compiles into the pipeline statements a file would hold, and its errors point
 * at the column of the pipe where the problem is.
 */
import assert from 'node:assert/strict';
import test, { before } from 'node:test';
import { loadParser } from '../sql/index.ts';
import { compilePipe, PipeError, splitPipe } from './pipe.ts';

before(() => loadParser());

test("the seed's one-liner becomes a source, a view and a search sink", () => {
  const compiled = compilePipe('mysql://shop@localhost/shop?tables=products | where price > 0 | search');
  assert.equal(
    compiled.sql,
    "CREATE SOURCE pipe_source FROM MYSQL 'mysql://shop@localhost/shop' WITH (tables = 'products');\n" +
      'CREATE VIEW pipe_1 AS SELECT * FROM pipe_source.products WHERE price > 0;\n' +
      'CREATE SINK pipe_sink FROM pipe_1 INTO SEARCH;\n',
  );
  assert.deepEqual(
    compiled.statements.map((statement) => statement.kind),
    ['createSource', 'postgres', 'createSink'],
  );
  assert.equal(compiled.result, 'pipe_1');
});

test('every stage and sink form compiles, source options are lifted out of the URL, and the rest stays in it', () => {
  const grouped = compilePipe(
    'postgres://cdc@127.0.0.1/shop?tables=public.orders&publication=sluice&sslmode=disable | group by customer_id select customer_id, sum(amount) AS total | order by total desc limit 10 | redis://127.0.0.1:6379',
  );
  assert.equal(
    grouped.sql,
    "CREATE SOURCE pipe_source FROM POSTGRES 'postgres://cdc@127.0.0.1/shop?sslmode=disable' WITH (tables = 'public.orders', publication = 'sluice');\n" +
      'CREATE VIEW pipe_1 AS SELECT customer_id, sum(amount) AS total FROM pipe_source.orders GROUP BY customer_id;\n' +
      'CREATE VIEW pipe_2 AS SELECT * FROM pipe_1 order by total desc limit 10;\n' +
      "CREATE SINK pipe_sink FROM pipe_2 INTO REDIS 'redis://127.0.0.1:6379';\n",
  );
  const joined = compilePipe("orders | left join customers on orders.customer_id = customers.id | select name || ' (' || id || ')' AS label | file:out.jsonl");
  assert.equal(
    joined.sql,
    'CREATE VIEW pipe_1 AS SELECT * FROM orders left join customers on orders.customer_id = customers.id;\n' +
      "CREATE VIEW pipe_2 AS SELECT name || ' (' || id || ')' AS label FROM pipe_1;\n" +
      "CREATE SINK pipe_sink FROM pipe_2 INTO FILE 'out.jsonl';\n",
  );
  const served = compilePipe("file:events.jsonl | where kind = 'click' | distinct");
  assert.equal(served.result, 'pipe', 'without a sink the last stage is the view "pipe"');
  assert.match(served.sql, /CREATE SOURCE pipe_source FROM FILE 'events.jsonl';\n.*CREATE VIEW pipe AS SELECT DISTINCT \* FROM pipe_1;\n$/s);
  const copied = compilePipe('orders | postgres://u@h/db/order_copy');
  assert.equal(copied.sql, "CREATE SINK pipe_sink FROM orders INTO POSTGRES 'postgres://u@h/db' WITH (table = 'order_copy');\n");
});

test('| splits only outside quotes, parentheses and ||', () => {
  assert.deepEqual(
    splitPipe("t | where a = 'x | y' or (b | c) = 1 or d || e = 'f' | search").map((segment) => segment.text),
    ['t', "where a = 'x | y' or (b | c) = 1 or d || e = 'f'", 'search'],
  );
});

test('errors point at the column of the pipe and say what to do', () => {
  const cases: Array<[string, number, RegExp, RegExp]> = [
    ['orders | frobnicate x | search', 10, /"frobnicate" is not a stage/, /a stage is one of: where, select/],
    ['orders | where price > > 2 | search', 24, /syntax error at or near ">"/, /just before ">"/],
    ['mysql://h/shop?tables=a,b | search', 1, /the source names 2 tables \(a, b\); a pipe reads one/, /\?tables=TABLE/],
    ['mysql://h/shop | search', 1, /the source names no table/, /\?tables=TABLE/],
    ['orders | | search', 10, /empty segment/, /source, a stage or a sink/],
    ['orders | group by a | search', 10, /"group by" needs a "select"/, /group by customer_id select/],
    ["orders | where a = 'open", 20, /unterminated string/, /close it with '/],
    ['kafka://broker/topic | search', 1, /unknown source "kafka:"/, /postgres:\/\/…, mysql:\/\/…, file:PATH/],
    ['orders | postgres://u@h/db', 10, /the sink URL names no table/, /\/DATABASE\/TABLE/],
  ];
  for (const [pipe, column, message, hint] of cases) {
    assert.throws(
      () => compilePipe(pipe),
      (error: unknown) => {
        assert.ok(error instanceof PipeError, `${pipe}: ${String(error)}`);
        assert.equal(error.column, column, `${pipe}: ${error.message}`);
        assert.match(error.message, message, pipe);
        assert.match(error.hint ?? '', hint, pipe);
        assert.match(error.message, new RegExp(`\\n  ${pipe.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\n {${column + 1}}\\^$`), 'the pipe is shown with a caret under the column');
        return true;
      },
      pipe,
    );
  }
});

test('a pipe over a table runs as the same views and plans as its SQL', async () => {
  await loadParser();
  const { open } = await import('../index.ts');
  const db = await open();
  await db.execute(`CREATE TABLE orders (id integer, customer_id integer, amount numeric);
    INSERT INTO orders VALUES (1, 7, 5), (2, 7, 20), (3, 8, 12), (4, 9, 30), (5, 8, 1)`);
  const compiled = compilePipe('orders | where amount > 2 | group by customer_id select customer_id, sum(amount) AS total | order by total desc | limit 2');
  assert.match(compiled.sql, /CREATE VIEW pipe AS SELECT \* FROM pipe_2 order by total desc limit 2;/);
  await db.execute(compiled.sql);
  const direct = await db.execute('SELECT customer_id, sum(amount) AS total FROM orders WHERE amount > 2 GROUP BY customer_id ORDER BY total DESC LIMIT 2');
  assert.deepEqual(db.rows('pipe').map((row) => row.map(String)), direct[0]!.rows!.map((row) => row.map(String)));
  assert.deepEqual(db.rows('pipe').map((row) => row.map(String)), [['9', '30'], ['7', '25']]);
  // The views stay maintained: a new order changes the pipe's result.
  await db.execute('INSERT INTO orders VALUES (6, 8, 100)');
  assert.deepEqual(db.rows('pipe').map((row) => row.map(String)), [['8', '112'], ['9', '30']]);
  assert.match(await db.explain('SELECT * FROM pipe'), /^Scan pipe \(customer_id, total\)$/);
  await db.close();
});
