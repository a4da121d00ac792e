/**
 * The seed's one-liner with a PostgreSQL source, as a user runs it:
 *   sluice 'postgres://…/db?tables=products | where price > 0 | search'
 * keeps a search index in sync with the table — the snapshot first, then every change.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { startPostgres, type PostgresServer } from '../services/postgres.ts';
import { searchPipeFollows } from './search-pipe.ts';

let server: PostgresServer;
let folder: string;

before(async () => {
  server = await startPostgres();
  folder = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-pipe-pg-'));
  await server.query(`CREATE TABLE products (id int PRIMARY KEY, title text, price numeric(10,2))`);
  await server.query(`INSERT INTO products VALUES (1, 'Walnut desk lamp', 20), (2, 'Free lamp sample', 0), (3, 'Oak lamp shade', 15)`);
});

after(async () => {
  await server?.stop();
  fs.rmSync(folder, { recursive: true, force: true });
});

test("the seed's pipe keeps a search index in sync with a PostgreSQL table", async () => {
  await searchPipeFollows(server.url('postgres'), path.join(folder, 'data'), 'products', (sql) => server.query(sql));
});
