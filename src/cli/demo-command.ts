/**
 * `sluice demo` (what `npm start` runs): the product's main job on embedded defaults. It prints
 * the example pipeline (demo/shop.sql), runs it with `sluice up`'s code, plays a live online shop
 * into its tables (demo/workload.ts: customers, products, orders, order status events), prints
 * the URLs to try, and keeps a one-line live summary until Ctrl-C (or --seconds).
 *
 * The demo owns its data directory (default ./.sluice-demo) and starts it afresh each run, so
 * the generated ids never clash with an earlier run's; a directory that is not a demo's is
 * refused rather than overwritten.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DefiniteError } from '../core/index.ts';
import type { PipelineRuntime } from '../pipeline/runtime.ts';
import { parseCommand, wholeNumber } from './arguments.ts';
import { ShopWorkload } from './demo/workload.ts';
import { listenDefault, parseListen, upPipeline } from './up-command.ts';

const MARKER = 'sluice-demo';

export async function demoCommand(argv: string[]): Promise<number> {
  const { values } = parseCommand(argv, {
    data: { type: 'string', default: './.sluice-demo' },
    listen: { type: 'string', default: listenDefault },
    seconds: { type: 'string' },
    rate: { type: 'string' },
    quiet: { type: 'boolean', default: false },
  });
  const seconds = wholeNumber('seconds', values.seconds, 0);
  const rate = wholeNumber('rate', values.rate, 2000, 1);
  const data = values.data;
  prepareDirectory(data);
  const file = fileURLToPath(new URL('./demo/shop.sql', import.meta.url));
  const text = fs.readFileSync(file, 'utf8');
  if (!values.quiet) {
    process.stdout.write(`Sluice demo — an online shop, kept live. The pipeline (${path.relative(process.cwd(), file) || file}):\n\n`);
    process.stdout.write(text.replace(/^/gm, '  ') + '\n');
  }
  let listen = values.listen;
  // The default port may be taken (another demo, another program): then any free port.
  if (values.listen === listenDefault && !(await portFree(parseListen(listen).port))) {
    listen = '127.0.0.1:0';
    if (!values.quiet) process.stdout.write(`(${listenDefault} is in use: listening on a free port instead)\n`);
  }
  let generated = 0;
  let generator: Promise<void> | undefined;
  let stopGenerator = false;
  const onReady = async (runtime: PipelineRuntime, url: string, stop: () => void) => {
    const workload = new ShopWorkload(Date.now() % 100_000);
    const initial = workload.initial();
    const total = initial.reduce((sum, b) => sum + b.rows.length, 0);
    for (const batch of initial) {
      await runtime.append(batch.table, batch.rows);
      generated += batch.rows.length;
    }
    if (!values.quiet) {
      process.stdout.write(`\nLoaded ${total.toLocaleString('en-US')} customers and products; now playing ${rate.toLocaleString('en-US')} events/s (--rate changes it). Try:\n`);
      process.stdout.write(`  curl '${url}/v1/views/top_products'\n`);
      process.stdout.write(`  curl '${url}/v1/views/orders_by_status'\n`);
      process.stdout.write(`  curl '${url}/v1/views/customer_revenue?limit=5'\n`);
      process.stdout.write(`  curl '${url}/v1/search/products_search?q=creme+lamp'\n`);
      process.stdout.write(`  curl -N '${url}/v1/views/orders_by_status/changes'\n`);
      process.stdout.write(`  curl -X POST '${url}/v1/query' -d '{"sql":"SELECT category, revenue FROM category_revenue ORDER BY revenue DESC"}'\n`);
      process.stdout.write(`  curl '${url}/v1/status'   ·   curl '${url}/metrics'\n\n`);
    }
    const tickMs = 50;
    let owed = 0;
    generator = (async () => {
      while (!stopGenerator) {
        const began = Date.now();
        owed += (rate * tickMs) / 1000;
        const count = Math.floor(owed);
        owed -= count;
        if (count > 0) {
          for (const batch of workload.next(count)) {
            await runtime.append(batch.table, batch.rows);
            generated += batch.rows.length;
          }
        }
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, tickMs - (Date.now() - began))));
      }
    })().catch((error: unknown) => {
      if (!stopGenerator) {
        process.stderr.write(`\nsluice demo: the workload stopped: ${(error as Error).message}\n`);
        stop();
      }
    });
    if (seconds > 0) setTimeout(stop, seconds * 1000).unref();
  };
  const code = await upPipeline({
    text,
    file: path.relative(process.cwd(), file) || file,
    data,
    listen,
    quiet: values.quiet,
    onReady,
    summary: () => `generated ${generated.toLocaleString('en-US')}`,
    beforeStop: async () => {
      stopGenerator = true;
      await generator;
    },
  });
  if (!values.quiet) process.stdout.write(`The demo generated ${generated.toLocaleString('en-US')} events; its data stays in ${path.resolve(data)} until the next demo.\n`);
  return code;
}

/** Empties a previous demo's directory; refuses one that holds something else. */
function prepareDirectory(data: string): void {
  if (fs.existsSync(data)) {
    const entries = fs.readdirSync(data);
    if (entries.length > 0 && !entries.includes(MARKER)) {
      throw new DefiniteError('demo_directory', `${path.resolve(data)} is not empty and is not a demo's data directory`, 'pick another with --data DIR (the demo starts its directory afresh each run)');
    }
    fs.rmSync(data, { recursive: true, force: true });
  }
  fs.mkdirSync(data, { recursive: true });
  fs.writeFileSync(path.join(data, MARKER), 'This directory belongs to `sluice demo`, which empties it at each run.\n');
}

async function portFree(port: number): Promise<boolean> {
  const net = await import('node:net');
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}
