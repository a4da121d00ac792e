/**
 * Child processes and an HTTP client for `bench/pipeline.ts`: `sluice up` (src/cli/main.ts) and
 * the ingest floor (bench/pipeline-floor.ts) run in their own processes, so the client that
 * drives them does not share their event loop; the client keeps its connections alive.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export interface Child {
  url: string;
  process: ChildProcess;
  /** SIGTERM, then waits for the exit (SIGKILL after `graceMs`). */
  stop(graceMs?: number): Promise<void>;
}

/** Starts `node ARGS…` in the repository and waits for its `listening URL` line. */
function startListening(args: string[], label: string, nodeOptions: string[] = []): Promise<Child> {
  const child = spawn(process.execPath, [...nodeOptions, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    if (stderr.length > 20_000) stderr = stderr.slice(-10_000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return new Promise((resolve, reject) => {
    let stdout = '';
    const onData = (chunk: Buffer) => {
      stdout += chunk.toString();
      const match = /^listening (\S+)$/m.exec(stdout);
      if (!match) return;
      child.stdout!.off('data', onData);
      // SLUICE_BENCH_SERVER_STDOUT=FILE keeps the servers' output (e.g. with --trace-gc).
      if (process.env.SLUICE_BENCH_SERVER_STDOUT) child.stdout!.pipe(fs.createWriteStream(process.env.SLUICE_BENCH_SERVER_STDOUT, { flags: 'a' }));
      else child.stdout!.resume();
      resolve({
        url: match[1]!,
        process: child,
        stop: async (graceMs = 60_000) => {
          if (child.exitCode !== null) return;
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
          await exited;
          clearTimeout(timer);
        },
      });
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`${label} exited (${code}) before listening:\n${stderr.slice(-2000)}`)));
  });
}

/** `sluice up FILE --data DIR --listen 127.0.0.1:0` in a child process. */
export async function startSluice(directory: string, pipeline: string, options: { cpuProf?: string } = {}): Promise<Child> {
  const file = path.join(directory, 'pipeline.sql');
  fs.writeFileSync(file, pipeline);
  // SLUICE_BENCH_NODE_OPTIONS: extra Node options for the server (e.g. --heap-prof, --trace-gc).
  const nodeOptions = [...(options.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${options.cpuProf}`] : []), ...(process.env.SLUICE_BENCH_NODE_OPTIONS?.split(' ').filter(Boolean) ?? [])];
  return startListening([path.join(root, 'src/cli/main.ts'), 'up', file, '--data', path.join(directory, 'data'), '--listen', '127.0.0.1:0', '--quiet'], 'sluice up', nodeOptions);
}

/** The floor server (bench/pipeline-floor.ts) appending to FILE. */
export function startFloor(file: string): Promise<Child> {
  return startListening([path.join(root, 'bench/pipeline-floor.ts'), file], 'the floor server');
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

export interface Reply {
  status: number;
  body: string;
}

/** One request on a kept-alive connection; resolves with the status and the body text. */
export function request(url: string, method: 'GET' | 'POST' = 'GET', body?: Buffer | string, headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const outgoing = http.request(url, { method, agent, headers: body === undefined ? headers : { 'content-length': String(Buffer.byteLength(body)), ...headers } }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      response.on('error', reject);
    });
    outgoing.on('error', reject);
    outgoing.end(body);
  });
}

/** A request that must answer 200; returns its JSON. */
export async function json<T>(url: string, method: 'GET' | 'POST' = 'GET', body?: Buffer | string, headers: Record<string, string> = {}): Promise<T> {
  const reply = await request(url, method, body, headers);
  if (reply.status !== 200) throw new Error(`${method} ${url}: ${reply.status} ${reply.body.slice(0, 500)}`);
  return JSON.parse(reply.body) as T;
}

/** POSTs NDJSON rows to a table; returns the position token. */
export async function append(url: string, table: string, body: Buffer): Promise<string> {
  return (await json<{ position: string }>(`${url}/v1/tables/${table}/events`, 'POST', body, { 'content-type': 'application/x-ndjson' })).position;
}

/** Waits until the pipeline reflects `position`, reading `read` (`/v1/views/NAME`, `/v1/search/NAME?q=…`), re-asking past the server's bounded wait. */
export async function settle(url: string, read: string, position: string): Promise<void> {
  for (;;) {
    const reply = await request(`${url}${read}${read.includes('?') ? '&' : '?'}atLeast=${position}&limit=1`);
    if (reply.status === 200) return;
    if (reply.status !== 504) throw new Error(`GET ${read} atLeast: ${reply.status} ${reply.body.slice(0, 500)}`);
  }
}

export function closeConnections(): void {
  agent.destroy();
}
