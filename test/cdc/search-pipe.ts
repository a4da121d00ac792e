/**
 * The seed's one-liner, `sluice 'URL?tables=products | where price > 0 | search'`, run as a user
 * would (the real CLI) against a source database, and its search index followed through an
 * insert, updates and a delete. Shared by the PostgreSQL and MySQL tests.
 *
 * The source's `products` table must start as (1, 'Walnut desk lamp', 20),
 * (2, 'Free lamp sample', 0), (3, 'Oak lamp shade', 15); `run` executes SQL on it, `table` is
 * its name as `run` reaches it.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';

export async function searchPipeFollows(url: string, data: string, table: string, run: (sql: string) => Promise<unknown>): Promise<void> {
  const pipe = `${url}?tables=products | where price > 0 | search`;
  const child = spawn(process.execPath, [path.resolve(import.meta.dirname, '../../bin/sluice.js'), pipe, '--data', data, '--listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'] });
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
    await run(`INSERT INTO ${table} VALUES (4, 'Brass lamp', 30)`);
    await run(`UPDATE ${table} SET price = 5 WHERE id = 2`);
    await run(`UPDATE ${table} SET title = 'Oak shelf' WHERE id = 3`);
    await until([1, 2, 4], 'after an insert, a price change and a new title');
    await run(`DELETE FROM ${table} WHERE id = 1`);
    await until([2, 4], 'after a delete');
  } finally {
    child.kill('SIGTERM');
    assert.equal(await exited, 0, output);
  }
}
