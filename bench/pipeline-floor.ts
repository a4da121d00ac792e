/**
 * The floor of durable HTTP ingest in Node, the peer of `bench/pipeline.ts`'s ingest part: a
 * node:http server that reads each POST body, JSON.parses every NDJSON line, appends the body to
 * one file and calls fdatasync before answering — what any Node ingest must do at least to
 * acknowledge durably. Run as a child process: `node bench/pipeline-floor.ts FILE`; it prints
 * `listening URL` once serving on a free loopback port, and stops on SIGTERM.
 */
import fs from 'node:fs';
import { createServer } from 'node:http';

const file = process.argv[2];
if (!file) throw new Error('usage: node bench/pipeline-floor.ts FILE');
const fd = fs.openSync(file, 'a');
let syncing = Promise.resolve();

const server = createServer((request, response) => {
  const chunks: Buffer[] = [];
  request.on('data', (chunk: Buffer) => chunks.push(chunk));
  request.on('end', () => {
    const body = Buffer.concat(chunks);
    let count = 0;
    for (const line of body.toString('utf8').split('\n')) {
      if (line.trim() === '') continue;
      JSON.parse(line);
      count++;
    }
    // One append + fdatasync per request, in arrival order (as a log with one writer would).
    syncing = syncing.then(
      () =>
        new Promise<void>((resolve, reject) => {
          fs.write(fd, body, (error) => {
            if (error) return reject(error);
            fs.fdatasync(fd, (syncError) => (syncError ? reject(syncError) : resolve()));
          });
        }),
    );
    syncing.then(
      () => {
        const text = JSON.stringify({ count });
        response.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
        response.end(text);
      },
      (error: Error) => {
        response.writeHead(500);
        response.end(error.message);
      },
    );
  });
});
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`listening http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}\n`);
});
process.once('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
  fs.closeSync(fd);
});
