/**
 * `sluice up FILE.sql` (follow the log, serve HTTP) and `sluice run FILE.sql` (process everything
 * available, then exit 0): the same runtime and the same step code, so the same results.
 *
 * Both show progress on long work (replaying the log on start); `up` prints the URLs to try and
 * a one-line live summary, and stops cleanly (a checkpoint, then exit 0) on Ctrl-C or SIGTERM.
 */
import fs from 'node:fs';
import path from 'node:path';
import { DefiniteError, resolveSecrets } from '../core/index.ts';
import { PipelineRuntime, type RuntimeOptions } from '../pipeline/runtime.ts';
import type { SourceStatus } from '../pipeline/api.ts';
import { dataOption, parseCommand, persistMode, UsageError } from './arguments.ts';

export const listenDefault = '127.0.0.1:7878';

export async function upCommand(argv: string[], mode: 'up' | 'run'): Promise<number> {
  const { values, positionals } = parseCommand(argv, {
    ...dataOption,
    listen: { type: 'string', default: listenDefault },
    token: { type: 'string' },
    persist: { type: 'string' },
    'checkpoint-interval': { type: 'string' },
    quiet: { type: 'boolean', default: false },
    resnapshot: { type: 'string', multiple: true },
  });
  const resnapshot = values.resnapshot ?? [];
  const checkpointIntervalMs = secondsOption('checkpoint-interval', values['checkpoint-interval'], 30);
  if (positionals.length !== 1) throw new UsageError(`sluice ${mode} takes one pipeline file (FILE.sql)`);
  const file = positionals[0]!;
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    throw new DefiniteError('file_unreadable', `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, 'give the path of a pipeline .sql file');
  }
  if (mode === 'run') return runPipeline({ text, file, data: values.data, persist: persistMode(values.persist), quiet: values.quiet, resnapshot });
  return upPipeline({ text, file, data: values.data, persist: persistMode(values.persist), listen: values.listen, token: resolveSecret(values.token), quiet: values.quiet, checkpointIntervalMs, resnapshot });
}

interface PipelineCommandOptions {
  text: string;
  file: string;
  data: string;
  persist?: RuntimeOptions['persist'];
  quiet?: boolean;
  checkpointIntervalMs?: number;
  /** Sources to capture afresh (--resnapshot). */
  resnapshot?: string[];
}

export async function runPipeline(options: PipelineCommandOptions): Promise<number> {
  const progress = progressPrinter(options.quiet);
  const runtime = await PipelineRuntime.open({ text: options.text, file: options.file, data: options.data, ...(options.persist ? { persist: options.persist } : {}), ...(options.resnapshot?.length ? { resnapshot: options.resnapshot } : {}), onProgress: progress.report });
  try {
    await runtime.runToEnd();
    progress.done();
    const status = runtime.status();
    if (!options.quiet) {
      process.stdout.write(`processed ${status.eventsProcessed.toLocaleString('en-US')} events in ${status.steps.toLocaleString('en-US')} steps; data in ${path.resolve(options.data)}\n`);
      for (const view of status.views) process.stdout.write(`  ${view.name}: ${view.rows.toLocaleString('en-US')} rows${view.failure ? ` — no result: ${view.failure.message}` : ''}\n`);
    }
  } finally {
    await runtime.close();
  }
  return 0;
}

export interface UpOptions extends PipelineCommandOptions {
  listen: string;
  token?: string | undefined;
  /** Called once serving, with the runtime and the server's URL (the demo feeds its workload here). */
  onReady?: (runtime: PipelineRuntime, url: string, stop: () => void) => void | Promise<void>;
  /** Extra text for the live summary line. */
  summary?: () => string;
  /** Called once stopping, before the server and the runtime close. */
  beforeStop?: () => Promise<void>;
}

export async function upPipeline(options: UpOptions): Promise<number> {
  const { host, port } = parseListen(options.listen);
  const progress = progressPrinter(options.quiet);
  const runtime = await PipelineRuntime.open({ text: options.text, file: options.file, data: options.data, ...(options.persist ? { persist: options.persist } : {}), ...(options.checkpointIntervalMs !== undefined ? { checkpointIntervalMs: options.checkpointIntervalMs } : {}), ...(options.resnapshot?.length ? { resnapshot: options.resnapshot } : {}), onProgress: progress.report });
  progress.done();
  const { serve } = await import('../serve/index.ts');
  let server;
  try {
    server = await serve(runtime, { host, port, ...(options.token ? { token: options.token } : {}) });
  } catch (error) {
    await runtime.close();
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') throw new DefiniteError('listen_in_use', `${host}:${port} is already in use`, 'stop what listens there, or pick another address with --listen HOST:PORT (port 0 picks a free one)');
    if (code === 'EACCES' || code === 'EADDRNOTAVAIL') throw new DefiniteError('listen_invalid', `cannot listen on ${host}:${port} (${code})`, 'pick another address with --listen HOST:PORT');
    throw error;
  }
  runtime.start();
  let stopping = false;
  let resolveStop!: () => void;
  const stopped = new Promise<void>((resolve) => (resolveStop = resolve));
  const stop = () => {
    if (stopping) return;
    stopping = true;
    resolveStop();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const status = runtime.status();
  if (!options.quiet) {
    process.stdout.write(`Sluice is up: ${options.file}, data in ${path.resolve(options.data)}\n`);
    process.stdout.write(`  listening on ${server.url}${options.token ? ' (bearer token required)' : ''}\n`);
    for (const table of status.tables) process.stdout.write(`  POST ${server.url}/v1/tables/${table.name}/events\n`);
    for (const view of status.views) process.stdout.write(`  GET  ${server.url}/v1/views/${view.name}\n`);
    for (const sink of runtime.searchSinks()) process.stdout.write(`  GET  ${server.url}/v1/search/${sink.name}?q=…\n`);
    process.stdout.write(`  GET  ${server.url}/v1/status · ${server.url}/metrics · Ctrl-C stops\n`);
  }
  // Printed (again) as a line of its own once serving: tests and scripts wait for it.
  process.stdout.write(`listening ${server.url}\n`);
  await options.onReady?.(runtime, server.url, stop);
  const summary = options.quiet ? undefined : liveSummary(runtime, options.summary);
  const failed = runtime.stopped.then(() => {
    if (runtime.failure) stop();
  });
  await stopped;
  void failed;
  summary?.stop();
  await options.beforeStop?.();
  const failure = runtime.failure;
  if (!options.quiet) process.stdout.write('stopping: checkpointing…\n');
  await server.close();
  await runtime.close();
  process.removeListener('SIGINT', stop);
  process.removeListener('SIGTERM', stop);
  if (failure) {
    process.stderr.write(`sluice: the pipeline stopped: ${failure.message}\n${(failure as DefiniteError).hint ? `  hint: ${(failure as DefiniteError).hint}\n` : ''}`);
    return 1;
  }
  return 0;
}

/** A number of seconds (fractions allowed) as milliseconds. */
function secondsOption(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback * 1000;
  const value = Number(text);
  if (!Number.isFinite(value) || value < 0) throw new UsageError(`--${name} takes seconds (like 30 or 0.5), not "${text}"`);
  return value * 1000;
}

/** `HOST:PORT`, `:PORT` or `PORT`; IPv6 as `[::1]:PORT`. */
export function parseListen(text: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]*))?:?(\d+)$/.exec(text);
  const port = match ? Number(match[3]) : NaN;
  if (!match || !Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--listen takes HOST:PORT (like ${listenDefault}), not "${text}"`);
  return { host: match[1] ?? (match[2] || '127.0.0.1'), port };
}

/** `${env:NAME}` and `${file:PATH}` resolved; anything else as it is. Never printed. */
export function resolveSecret(text: string | undefined): string | undefined {
  return text === undefined ? undefined : resolveSecrets(text, '--token');
}

function progressPrinter(quiet = false): { report: NonNullable<RuntimeOptions['onProgress']>; done: () => void } {
  let last = 0;
  let shown = false;
  return {
    report: ({ done, total, ratePerSecond }) => {
      if (quiet || Date.now() - last < 500) return;
      last = Date.now();
      shown = true;
      const eta = ratePerSecond > 0 ? Math.ceil((total - done) / ratePerSecond) : 0;
      const line = `replaying the log: ${done.toLocaleString('en-US')} / ${total.toLocaleString('en-US')} records (${Math.round(ratePerSecond).toLocaleString('en-US')}/s, about ${eta} s left)`;
      if (process.stderr.isTTY) process.stderr.write(`\r${line}\x1b[K`);
      else process.stderr.write(`${line}\n`);
    },
    done: () => {
      if (shown && process.stderr.isTTY) process.stderr.write('\n');
    },
  };
}

/** A source in the live summary: its snapshot's progress, or how far behind it is. */
function sourceSummary(source: SourceStatus): string {
  const n = (value: number) => value.toLocaleString('en-US');
  if (source.state === 'failed') return `${source.name} failed (${source.error?.code ?? 'see /v1/status'})`;
  const snapshot = source.snapshot;
  if (source.state === 'snapshot' && snapshot) {
    const total = snapshot.estimatedRows > snapshot.rows ? ` / ~${n(snapshot.estimatedRows)}` : '';
    return `${source.name} snapshot ${snapshot.table} (${snapshot.tablesDone + 1}/${snapshot.tables}): ${n(snapshot.rows)}${total} rows, ${n(snapshot.rowsPerSecond)}/s${snapshot.etaSeconds !== undefined ? `, about ${snapshot.etaSeconds} s left` : ''}`;
  }
  const retrying = source.error ? ` (retrying: ${source.error.code})` : '';
  return `${source.name} ${source.state}${retrying} ${n(source.rowsPerSecond)} rows/s, ${source.lagSeconds} s behind${source.lagBytes !== undefined ? ` (${n(source.lagBytes)} bytes of WAL or binlog)` : ''}`;
}

/** Every second on a terminal (every 10 s otherwise): events/s, lag and rows per view. */
function liveSummary(runtime: PipelineRuntime, extra?: () => string): { stop: () => void } {
  const tty = process.stdout.isTTY === true;
  let previous = runtime.status().eventsProcessed;
  let previousAt = Date.now();
  const timer = setInterval(
    () => {
      const status = runtime.status();
      const now = Date.now();
      const rate = ((status.eventsProcessed - previous) * 1000) / Math.max(1, now - previousAt);
      previous = status.eventsProcessed;
      previousAt = now;
      const lag = status.tables.reduce((sum, t) => sum + t.lag, 0);
      const views = status.views.map((v) => `${v.name} ${v.rows.toLocaleString('en-US')}${v.failure ? ' (failed)' : ''}`).join(' · ');
      const sources = status.sources.map(sourceSummary).join(' · ');
      const line = `${Math.round(rate).toLocaleString('en-US')} events/s · lag ${lag.toLocaleString('en-US')} records · step ${status.lastStepMs} ms${sources ? ` · ${sources}` : ''}${extra ? ` · ${extra()}` : ''} · ${views}`;
      if (tty) process.stdout.write(`\r${line.slice(0, Math.max(40, (process.stdout.columns ?? 120) - 1))}\x1b[K`);
      else process.stdout.write(`${line}\n`);
    },
    tty ? 1000 : 10_000,
  );
  timer.unref();
  return {
    stop: () => {
      clearInterval(timer);
      if (tty) process.stdout.write('\n');
    },
  };
}
