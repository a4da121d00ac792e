/**
 * Request bodies: read with a size limit and a deadline, then parsed as one JSON document or as
 * the rows of an append.
 *
 * Invariants:
 * - A body is never buffered beyond `maxBytes`: a declared Content-Length over it is refused before
 *   a byte is read, and an undeclared one is refused as soon as it crosses the limit.
 * - An append body is parsed whole before anything is appended, so a bad line refuses all of it.
 *
 * Which append bodies are NDJSON (one JSON object per line):
 * 1. a Content-Type of application/x-ndjson (or application/ndjson, application/jsonl,
 *    application/x-jsonlines) — always, whatever the body looks like;
 * 2. otherwise a body that is one JSON document is that document (an object is one row, an array
 *    is rows), even when it is pretty-printed over many lines;
 * 3. otherwise a body whose first non-blank character is `{` and which has non-blank text on more
 *    than one line is NDJSON; anything else is `json_invalid`.
 * Blank lines (and a `\r` before each `\n`) are allowed in NDJSON; errors name the 1-based line.
 */
import type { IncomingMessage } from 'node:http';
import { DefiniteError } from '../core/index.ts';
import { jsonErrorPosition } from './json.ts';

const NDJSON_MEDIA_TYPES = new Set(['application/x-ndjson', 'application/ndjson', 'application/jsonl', 'application/x-jsonlines']);

export interface BodyLimits {
  maxBytes: number;
  /** How long the client has to send the whole body. */
  timeoutMs: number;
}

/** Reads the whole body; rejects with `body_too_large` (413) or `request_timeout` (408). */
export function readBody(request: IncomingMessage, limits: BodyLimits): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = request.headers['content-length'];
    if (declared !== undefined && Number(declared) > limits.maxBytes) {
      reject(bodyTooLarge(limits.maxBytes));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const finish = (error?: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      request.off('data', onData).off('end', onEnd).off('error', finish).off('close', onClose);
      if (error === undefined) resolve(Buffer.concat(chunks, size));
      else {
        // Stop reading: the answer is an error, and the connection is closed after it.
        request.pause();
        chunks.length = 0;
        reject(error);
      }
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limits.maxBytes) finish(bodyTooLarge(limits.maxBytes));
      else chunks.push(chunk);
    };
    const onEnd = (): void => finish();
    const onClose = (): void => {
      if (!request.complete) finish(new Error('the client closed the connection before sending the whole body'));
    };
    const timer = setTimeout(
      () =>
        finish(
          new DefiniteError(
            'request_timeout',
            `the request body did not arrive within ${limits.timeoutMs} ms`,
            'send the body promptly, or split a large append into several requests',
          ),
        ),
      limits.timeoutMs,
    );
    request.on('data', onData).on('end', onEnd).on('error', finish).on('close', onClose);
  });
}

function bodyTooLarge(maxBytes: number): DefiniteError {
  return new DefiniteError(
    'body_too_large',
    `the request body is larger than ${maxBytes} bytes`,
    'split the rows into several requests (each is appended whole), or raise the server\'s body limit',
  );
}

/** Parses a body that must be one JSON document. */
export function parseJsonBody(body: Buffer): unknown {
  let text = '';
  try {
    text = decodeBody(body);
    return JSON.parse(text);
  } catch (error) {
    throw new DefiniteError(
      'json_invalid',
      `the body is not JSON: ${withPosition((error as Error).message, text)}`,
      'send one JSON document, e.g. {"sql": "SELECT * FROM my_view"}',
    );
  }
}

/** The rows of an append body (see the module comment for which bodies are NDJSON). */
export function parseEvents(body: string, contentType: string | undefined): Record<string, unknown>[] {
  const text = body.charCodeAt(0) === 0xfeff ? body.slice(1) : body;
  if (contentType !== undefined && NDJSON_MEDIA_TYPES.has(mediaType(contentType))) return parseLines(text);
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    if (looksLikeNdjson(text)) return parseLines(text);
    if (text.trim() === '') throw noRows();
    throw new DefiniteError(
      'json_invalid',
      `the body is not JSON: ${withPosition((error as Error).message, text)}`,
      'send a JSON object (one row), a JSON array of objects, or NDJSON (one object per line)',
    );
  }
  if (isRow(document)) return [document];
  if (!Array.isArray(document)) {
    throw new DefiniteError('body_invalid', `the body is a JSON ${describeJson(document)}, not rows`, 'send a JSON object (one row), a JSON array of objects, or NDJSON');
  }
  for (let index = 0; index < document.length; index++) {
    if (!isRow(document[index])) {
      throw new DefiniteError(
        'body_invalid',
        `element ${index} of the body's array is a JSON ${describeJson(document[index])}, not a row object`,
        'every element must be an object whose keys are column names; nothing was appended',
      );
    }
  }
  if (document.length === 0) throw noRows();
  return document as Record<string, unknown>[];
}

/** One JSON object per line; the loop slices lines by index rather than splitting, to keep bulk bodies cheap. */
function parseLines(text: string): Record<string, unknown>[] {
  const rows: Record<string, unknown>[] = [];
  let start = 0;
  let line = 0;
  while (start <= text.length) {
    let end = text.indexOf('\n', start);
    if (end === -1) end = text.length;
    line++;
    if (end > start) {
      const source = text.slice(start, end);
      let value: unknown;
      try {
        value = JSON.parse(source);
      } catch (error) {
        if (source.trim() === '') {
          start = end + 1;
          continue;
        }
        throw new DefiniteError(
          'json_invalid',
          `line ${line} of the NDJSON body is not JSON: ${(error as Error).message}`,
          'each line must hold one JSON object; nothing was appended — fix that line and send the whole body again',
        );
      }
      if (!isRow(value)) {
        throw new DefiniteError(
          'body_invalid',
          `line ${line} of the NDJSON body is a JSON ${describeJson(value)}, not a row object`,
          'each line must hold one JSON object whose keys are column names; nothing was appended',
        );
      }
      rows.push(value);
    }
    start = end + 1;
  }
  if (rows.length === 0) throw noRows();
  return rows;
}

function looksLikeNdjson(text: string): boolean {
  const nonBlank = /\S/g;
  if (!nonBlank.test(text) || text[nonBlank.lastIndex - 1] !== '{') return false;
  const newline = text.indexOf('\n', nonBlank.lastIndex);
  if (newline === -1) return false;
  nonBlank.lastIndex = newline;
  return nonBlank.test(text);
}

/** V8's parse error message, with the position added when V8 leaves it out. */
function withPosition(message: string, text: string): string {
  if (/ at position \d+/.test(message)) return message;
  const { position, line, column } = jsonErrorPosition(text);
  return `${message} at position ${position} (line ${line} column ${column})`;
}

function noRows(): DefiniteError {
  return new DefiniteError('body_invalid', 'the body holds no rows', 'send a JSON object (one row), a JSON array of objects, or NDJSON (one object per line)');
}

function isRow(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describeJson(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

function mediaType(contentType: string): string {
  const semicolon = contentType.indexOf(';');
  return (semicolon === -1 ? contentType : contentType.slice(0, semicolon)).trim().toLowerCase();
}

/** The body as text, without a byte order mark. */
export function decodeBody(body: Buffer): string {
  const text = body.toString('utf8');
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}
