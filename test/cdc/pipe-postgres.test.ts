/**
 * The seed's one-liner with a PostgreSQL source, as a user runs it:
 *   sluice 'postgres://…/db?tables=products | where price > 0 | search'
 * keeps a search index in sync with the table — the snapshot first, then every change.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { startPostgres, type PostgresServer } from '../services/postgres.ts';

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
  const pipe = `${server.url('postgres')}?tables=products | where price > 0 | search`;
  const child = spawn(process.execPath, [path.resolve(import.meta.dirname, '../../bin/sluice.js'), pipe, '--data', path.join(folder, 'data'), '--listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    const base = await new Promise<string>((resolve, reject) => {
      const timer = setInterval(() => {
        const match = /^listening (\S+)$/m.exec(output);
        if (match) {
          clearInterval(timer);
          resolve(match[1]!);
        }
      }, 50);
      void exited.then(() => {
        clearInterval(timer);
        reject(new Error(`sluice exited before listening:\n${output}`));
      });
    });
    const ids = async () => ((await (await fetch(`${base}/v1/search/pipe_sink?q=lamp`)).json()) as { hits: Array<{ row: { id: number } }> }).hits.map((h) => h.row.id).sort();
    const until = async (want: number[], what: string) => {
      const deadline = Date.now() + 15_000;
      let got: number[] = [];
      while (Date.now() < deadline) {
        got = await ids();
        if (JSON.stringify(got) === JSON.stringify(want)) return;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert.fail(`${what}: the search index holds ${JSON.stringify(got)}, not ${JSON.stringify(want)}\n${output}`);
    };
    await until([1, 3], 'after the snapshot (the free sample filtered out)');
    await server.query(`INSERT INTO products VALUES (4, 'Brass lamp', 30)`);
    await server.query(`UPDATE products SET price = 5 WHERE id = 2`);
    await server.query(`UPDATE products SET title = 'Oak shelf' WHERE id = 3`);
    await until([1, 2, 4], 'after an insert, a price change and a new title');
    await server.query(`DELETE FROM products WHERE id = 1`);
    await until([2, 4], 'after a delete');
  } finally {
    child.kill('SIGTERM');
    assert.equal(await exited, 0, output);
  }
});
