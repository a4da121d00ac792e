/**
 * Helpers for the HTTP contract tests: JSON calls and a Server-Sent Events reader over fetch.
 */
import assert from 'node:assert/strict';

export interface Reply {
  status: number;
  headers: Headers;
  text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any;
}

export async function call(base: string, method: string, path: string, options: { body?: string | Buffer; headers?: Record<string, string> } = {}): Promise<Reply> {
  const init: RequestInit = { method, headers: options.headers ?? {} };
  if (options.body !== undefined) init.body = options.body;
  const response = await fetch(base + path, init);
  const text = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, text, json };
}

/** Asserts a JSON error body with `code` (and the status) and returns it. */
export function assertError(reply: Reply, status: number, code: string): { code: string; message: string; hint: string } {
  assert.equal(reply.status, status, `expected ${status} ${code}, got ${reply.status}: ${reply.text}`);
  assert.equal(reply.json?.error?.code, code, reply.text);
  assert.equal(typeof reply.json.error.message, 'string');
  assert.ok(reply.json.error.message.length > 0);
  return reply.json.error;
}

export interface SseEvent {
  id: string | undefined;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  data: any;
}

/** A change stream read with fetch and a reader; events are parsed as they arrive. */
export class SseClient {
  readonly events: SseEvent[] = [];
  status = 0;
  contentType = '';
  ended = false;
  readonly #controller = new AbortController();
  #buffer = '';
  #wake: (() => void) | undefined;
  #done: Promise<void> = Promise.resolve();

  static async open(url: string, headers: Record<string, string> = {}): Promise<SseClient> {
    const client = new SseClient();
    const response = await fetch(url, { headers, signal: client.#controller.signal });
    client.status = response.status;
    client.contentType = response.headers.get('content-type') ?? '';
    if (response.status !== 200 || !response.body) {
      client.#buffer = await response.text();
      client.ended = true;
      return client;
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    client.#done = (async () => {
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          client.#buffer += decoder.decode(value, { stream: true });
          client.#parse();
        }
      } catch {
        // aborted
      } finally {
        client.ended = true;
        client.#wake?.();
      }
    })();
    return client;
  }

  /** The body of a refused stream. */
  get errorBody(): unknown {
    return JSON.parse(this.#buffer);
  }

  #parse(): void {
    let end: number;
    while ((end = this.#buffer.indexOf('\n\n')) !== -1) {
      const block = this.#buffer.slice(0, end);
      this.#buffer = this.#buffer.slice(end + 2);
      let id: string | undefined;
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon === -1 ? line : line.slice(0, colon);
        const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'id') id = value;
        else if (field === 'data') data.push(value);
      }
      if (data.length === 0 && id === undefined) continue;
      this.events.push({ id, data: JSON.parse(data.join('\n')) });
    }
    this.#wake?.();
  }

  /** Resolves once at least `count` events arrived; rejects after `timeoutMs`. */
  async waitFor(count: number, timeoutMs = 5_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.events.length < count) {
      if (this.ended) throw new Error(`the stream ended after ${this.events.length} events, ${count} expected`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${this.events.length} events after ${timeoutMs} ms, ${count} expected`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = undefined;
    }
  }

  async close(): Promise<void> {
    this.#controller.abort();
    await this.#done;
  }
}

/** Rows sorted by their JSON text: for comparing multisets. */
export function canonical(rows: readonly Record<string, unknown>[]): string[] {
  return rows.map((row) => JSON.stringify(row)).sort();
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
