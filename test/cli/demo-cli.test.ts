/**
 * `sluice demo` (what `npm start` runs), as a user runs it: it prints the example pipeline, serves
 * it over HTTP while the shop workload plays into its tables, keeps a live summary, and stops
 * cleanly after --seconds; `sluice run` over its data directory then gives the same views.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const sluice = path.resolve(import.meta.dirname, '../../bin/sluice.js');
const shop = path.resolve(import.meta.dirname, '../../src/cli/demo/shop.sql');

test('the demo serves the shop pipeline live over HTTP, then stops cleanly and its data replays the same', async () => {
  const data = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-demo-')), 'demo');
  const child = spawn(process.execPath, [sluice, 'demo', '--data', data, '--seconds', '5', '--rate', '3000', '--listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const match = /^listening (\S+)$/m.exec(stdout);
      if (match) resolve(match[1]!);
    });
    child.once('exit', (code) => reject(new Error(`the demo exited (${code}) before listening: ${stderr}`)));
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  // Wait until the workload has placed orders, then read the views and search over HTTP.
  let top: Array<{ revenue: string }> = [];
  for (let i = 0; i < 50 && top.length < 10; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    top = ((await (await fetch(`${url}/v1/views/top_products`)).json()) as { rows: Array<{ revenue: string }> }).rows;
  }
  assert.equal(top.length, 10, 'the top 10 products fill up');
  const revenues = top.map((row) => Number(row.revenue));
  assert.deepEqual([...revenues].sort((a, b) => b - a), revenues, 'in descending order of revenue');
  const search = (await (await fetch(`${url}/v1/search/products_search?q=lamp`)).json()) as { hits: Array<{ row: { title: string; description: string } }> };
  assert.ok(search.hits.length > 0, 'the products are searchable');
  for (const hit of search.hits) assert.match(`${hit.row.title} ${hit.row.description}`, /lamp/i);
  const code = await exited;
  assert.equal(code, 0, stderr);
  assert.match(stdout, /CREATE TABLE orders/, 'the pipeline is printed');
  assert.match(stdout, /curl '.*\/v1\/search\/products_search\?q=/, 'the URLs to try are printed');
  const generated = /The demo generated ([\d,]+) events/.exec(stdout);
  assert.ok(generated && Number(generated[1]!.replaceAll(',', '')) > 3000, stdout.slice(-500));
  // The data directory replays to the same views with `sluice run`.
  const replay = spawnSync(process.execPath, [sluice, 'run', shop, '--data', data], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(replay.status, 0, replay.stderr);
  assert.match(replay.stdout, /top_products: 10 rows/);
});
