/**
 * GET /v1/views/NAME/changes: a view's changes as Server-Sent Events, one event per step
 * (`id: POSITION`, `data: {"changes":[…]}`), resumable with Last-Event-ID.
 *
 * Invariants:
 * - The subscription is made before any byte is written, so an error from it (position_expired,
 *   relation_unknown …) is answered as an ordinary JSON error.
 * - The listener never throws into the pipeline: a failure ends this stream only.
 * - A client that does not read is cut off once ~8 MiB are buffered for it; it resumes from the
 *   last event it received with Last-Event-ID, so nothing is lost to it.
 * - Every stream is unsubscribed when its connection closes, whoever closes it.
 */
import type { ServerResponse } from 'node:http';
import type { ChangeEvent, PipelineHandle } from '../pipeline/api.ts';
import { stringifyJson } from './json.ts';

export const KEEPALIVE_INTERVAL_MS = 15_000;
export const SLOW_CLIENT_BUFFERED_BYTES_MAX = 8 * 1024 * 1024;

/** The open change streams of one server. */
export class ChangeStreams {
  readonly #open = new Set<() => void>();
  readonly #keepaliveIntervalMs: number;

  constructor(keepaliveIntervalMs = KEEPALIVE_INTERVAL_MS) {
    this.#keepaliveIntervalMs = keepaliveIntervalMs;
  }

  get size(): number {
    return this.#open.size;
  }

  /** Subscribes and starts the stream; throws (with nothing written) when the subscription fails. */
  open(handle: PipelineHandle, view: string, from: string | undefined, response: ServerResponse): void {
    let pending: ChangeEvent[] | undefined = [];
    let closed = false;
    let keepalive: NodeJS.Timeout | undefined;

    const close = (how: 'end' | 'destroy'): void => {
      if (closed) return;
      closed = true;
      clearInterval(keepalive);
      this.#open.delete(endStream);
      try {
        unsubscribe();
      } finally {
        if (how === 'destroy') response.destroy();
        else response.end();
      }
    };
    const endStream = (): void => close('end');
    const write = (text: string): void => {
      if (closed) return;
      if (!response.write(text) && response.writableLength > SLOW_CLIENT_BUFFERED_BYTES_MAX) close('destroy');
    };
    const send = (event: ChangeEvent): void => {
      try {
        write(`id: ${event.position}\ndata: ${stringifyJson({ changes: event.changes })}\n\n`);
      } catch {
        close('destroy');
      }
    };

    const unsubscribe = handle.subscribe(view, from, (event) => {
      if (pending) pending.push(event);
      else send(event);
    });
    response.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      'x-accel-buffering': 'no',
    });
    response.flushHeaders();
    this.#open.add(endStream);
    response.on('close', endStream);
    keepalive = setInterval(() => write(': keepalive\n\n'), this.#keepaliveIntervalMs);
    const backlog = pending;
    pending = undefined;
    for (const event of backlog) send(event);
  }

  /** Ends every open stream (the server is closing). */
  closeAll(): void {
    for (const end of [...this.#open]) end();
  }
}
