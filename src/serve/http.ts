/**
 * The HTTP API (DESIGN.md, "Public contract"): reads that name their position, appends, one-shot
 * queries, search, change streams and metrics, over node:http and a PipelineHandle.
 *
 * Invariants:
 * - A handler never throws out of the server: every failure becomes a JSON error
 *   `{"error":{"code","message","hint"}}` (or, once a stream has started, the end of the stream).
 * - Off loopback the server refuses to start without a token; with a token every request carries
 *   it as a bearer token, compared in constant time. The token is never logged or echoed.
 * - Reads with `atLeast=TOKEN` wait, at most `waitTimeoutMs`, until every view reflects TOKEN.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { isIPv4, isIPv6, type Socket } from 'node:net';
import { DefiniteError, SluiceError, TransientError } from '../core/index.ts';
import type { PipelineHandle } from '../pipeline/api.ts';
import { ChangeStreams } from './change-stream.ts';
import { stringifyJson } from './json.ts';
import { formatMetrics, HttpMetrics, METRICS_CONTENT_TYPE } from './metrics.ts';
import { decodeBody, parseEvents, parseJsonBody, readBody } from './request-body.ts';

export interface ServeOptions {
  /** Default 127.0.0.1. Any other than loopback needs `token`. */
  host?: string;
  /** Default 7878; 0 picks a free port (read it from `Server.url`). */
  port?: number;
  /** When set, every request needs `Authorization: Bearer TOKEN`. */
  token?: string;
  /** Default 64 MiB. */
  maxBodyBytes?: number;
  /** How long a client has to send its whole request; default 30 s. */
  requestTimeoutMs?: number;
  /** The longest an `atLeast=` read waits; default 10 s. */
  waitTimeoutMs?: number;
  /** Where unexpected (500) errors are reported; default standard error. */
  log?: (message: string) => void;
}

export interface Server {
  /** `http://HOST:PORT`, with the port actually bound. */
  url: string;
  /** Stops accepting, ends change streams, and resolves once every connection is closed. */
  close(): Promise<void>;
}

const DEFAULT_PORT = 7878;
const MAX_BODY_BYTES_DEFAULT = 64 * 1024 * 1024;
const REQUEST_TIMEOUT_MS_DEFAULT = 30_000;
const WAIT_TIMEOUT_MS_DEFAULT = 10_000;
const LIMIT_DEFAULT = 100;
const LIMIT_MAX = 10_000;
const IDEMPOTENCY_KEY_LENGTH_MAX = 200;
/** How long close() lets requests in flight finish before cutting their connections. */
const CLOSE_GRACE_MS = 2_000;
const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';

/** HTTP statuses of error codes; other DefiniteErrors are 400, TransientErrors 503, the rest 500. */
const STATUS_BY_CODE: Record<string, number> = {
  unauthorized: 401,
  relation_unknown: 404,
  route_unknown: 404,
  method_not_allowed: 405,
  request_timeout: 408,
  view_failed: 409,
  position_expired: 410,
  body_too_large: 413,
  stopping: 503,
  wait_timeout: 504,
};

interface Request {
  request: IncomingMessage;
  response: ServerResponse;
  /** The decoded `:name` segment, when the route has one. */
  name: string;
  query: URLSearchParams;
}

interface Route {
  method: 'GET' | 'POST';
  /** Segments after the leading `/`; `:name` matches one non-empty segment. */
  path: string;
  description: string;
  answer: (request: Request) => Promise<void> | void;
}

/** Starts serving `handle`; resolves once listening. */
export async function serve(handle: PipelineHandle, options: ServeOptions = {}): Promise<Server> {
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? DEFAULT_PORT;
  const maxBodyBytes = options.maxBodyBytes ?? MAX_BODY_BYTES_DEFAULT;
  const requestTimeoutMs = options.requestTimeoutMs ?? REQUEST_TIMEOUT_MS_DEFAULT;
  const waitTimeoutMs = options.waitTimeoutMs ?? WAIT_TIMEOUT_MS_DEFAULT;
  const log = options.log ?? ((message: string) => process.stderr.write(`sluice serve: ${message}\n`));
  const tokenDigest = checkToken(host, options.token);
  const version = await packageVersion();
  const metrics = new HttpMetrics();
  const streams = new ChangeStreams();

  const waitForPosition = async (query: URLSearchParams): Promise<void> => {
    const position = query.get('atLeast');
    if (position === null) return;
    if (position === '') throw parameterInvalid('atLeast', 'must be a position token');
    if (!(await handle.waitFor(position, waitTimeoutMs))) {
      throw new DefiniteError(
        'wait_timeout',
        `the views did not reach position ${position} within ${waitTimeoutMs} ms`,
        'the pipeline is behind (GET /v1/status shows its lag); retry the read, or read without atLeast to get the current position',
      );
    }
  };

  const routes: Route[] = [
    {
      method: 'GET',
      path: '/',
      description: 'This index of the API.',
      answer: ({ response }) =>
        sendJson(response, 200, {
          name: 'sluice',
          version,
          endpoints: routes.map(({ method, path, description }) => ({ method, path, description })),
        }),
    },
    {
      method: 'GET',
      path: '/v1/status',
      description: 'The pipeline: state, position, tables (lag), views (rows, failures), sinks.',
      answer: ({ response }) => sendJson(response, 200, handle.status()),
    },
    {
      method: 'GET',
      path: '/v1/views',
      description: 'Tables and views with their columns, and the search sinks.',
      answer: ({ response }) => sendJson(response, 200, { views: handle.relations(), search: handle.searchSinks() }),
    },
    {
      method: 'GET',
      path: '/v1/views/:name',
      description: 'A view\'s rows: ?limit=&offset=&atLeast=TOKEN&COLUMN=VALUE… → {rows, position}.',
      answer: async ({ response, name, query }) => {
        const limit = integerParameter(query, 'limit', LIMIT_DEFAULT, LIMIT_MAX);
        const offset = integerParameter(query, 'offset', 0, Number.MAX_SAFE_INTEGER);
        const filters: Record<string, string> = {};
        for (const [column, value] of query) {
          if (column === 'limit' || column === 'offset' || column === 'atLeast') continue;
          if (Object.hasOwn(filters, column)) throw parameterInvalid(column, 'is given twice; a column filter takes one value');
          filters[column] = value;
        }
        await waitForPosition(query);
        sendJson(response, 200, handle.readView(name, { limit, offset, filters }));
      },
    },
    {
      method: 'GET',
      path: '/v1/views/:name/changes',
      description: 'A view\'s changes as Server-Sent Events, one per step: ?from=TOKEN, or the Last-Event-ID header.',
      answer: ({ request, response, name, query }) => {
        const lastEventId = request.headers['last-event-id'];
        const from = typeof lastEventId === 'string' && lastEventId !== '' ? lastEventId : (query.get('from') ?? undefined);
        streams.open(handle, name, from === '' ? undefined : from, response);
      },
    },
    {
      method: 'POST',
      path: '/v1/query',
      description: 'A one-shot SELECT: body {"sql": "…"} → {columns, rows, position}.',
      answer: async ({ request, response }) => {
        const body = parseJsonBody(await readBody(request, { maxBytes: maxBodyBytes, timeoutMs: requestTimeoutMs }));
        const sql = typeof body === 'object' && body !== null ? (body as { sql?: unknown }).sql : undefined;
        if (typeof sql !== 'string') {
          throw new DefiniteError('body_invalid', 'the body needs "sql", a string', 'send {"sql": "SELECT * FROM my_view"}');
        }
        sendJson(response, 200, await handle.query(sql));
      },
    },
    {
      method: 'GET',
      path: '/v1/search/:name',
      description: 'Full-text search of a search sink: ?q=…&limit=&offset=&atLeast=TOKEN → {hits, position}.',
      answer: async ({ response, name, query }) => {
        const q = query.get('q');
        if (q === null) throw parameterInvalid('q', 'is required: the words to search for');
        const limit = integerParameter(query, 'limit', LIMIT_DEFAULT, LIMIT_MAX);
        const offset = integerParameter(query, 'offset', 0, Number.MAX_SAFE_INTEGER);
        await waitForPosition(query);
        sendJson(response, 200, handle.search(name, q, { limit, offset }));
      },
    },
    {
      method: 'POST',
      path: '/v1/tables/:name/events',
      description: 'Appends rows, whole or not at all: a JSON object, an array of objects, or NDJSON; header Idempotency-Key → {position, count, duplicate}.',
      answer: async ({ request, response, name }) => {
        const idempotencyKey = idempotencyKeyOf(request);
        const body = await readBody(request, { maxBytes: maxBodyBytes, timeoutMs: requestTimeoutMs });
        const rows = parseEvents(decodeBody(body), request.headers['content-type']);
        sendJson(response, 200, await handle.append(name, rows, idempotencyKey === undefined ? {} : { idempotencyKey }));
      },
    },
    {
      method: 'GET',
      path: '/metrics',
      description: 'Prometheus metrics (text format 0.0.4).',
      answer: ({ response }) => {
        const text = formatMetrics(handle.status(), metrics, streams.size);
        response.writeHead(200, { 'content-type': METRICS_CONTENT_TYPE, 'content-length': Buffer.byteLength(text) });
        response.end(text);
      },
    },
  ];
  const router = new Router(routes);

  // Sockets with a request in flight: a client error on them is the handler's to answer.
  const busySockets = new WeakSet<Socket>();
  const onRequest = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const started = process.hrtime.bigint();
    busySockets.add(request.socket);
    const { pathname, query } = splitUrl(request.url ?? '/');
    const match = router.match(request.method ?? 'GET', pathname);
    response.on('close', () => {
      busySockets.delete(request.socket);
      metrics.record(match.pattern, response.statusCode, Number(process.hrtime.bigint() - started) / 1e9);
    });
    try {
      if (tokenDigest !== undefined && !authorized(request, tokenDigest)) {
        throw new DefiniteError('unauthorized', 'this server needs a bearer token', 'send the header "Authorization: Bearer TOKEN" with the token the server was started with');
      }
      if (match.route === undefined) {
        if (match.allow.length > 0) {
          response.setHeader('allow', match.allow.join(', '));
          throw new DefiniteError('method_not_allowed', `${request.method} is not allowed on ${pathname}`, `use ${match.allow.join(' or ')}; GET / lists the endpoints`);
        }
        throw new DefiniteError('route_unknown', `there is no endpoint ${pathname}`, 'GET / lists the endpoints');
      }
      await match.route.answer({ request, response, name: match.name, query });
    } catch (error) {
      sendError(response, error, log);
    }
  };

  const server = createServer(
    {
      // node:http's own timers are the backstop for slow headers; readBody answers slow bodies
      // with a JSON 408 first.
      headersTimeout: requestTimeoutMs,
      requestTimeout: requestTimeoutMs + 1_000,
      connectionsCheckingInterval: Math.min(30_000, Math.max(250, Math.floor(requestTimeoutMs / 4))),
    },
    (request, response) =>
      void onRequest(request, response).catch((error: unknown) => {
        // Only a failure to write the error response itself lands here.
        log(`could not answer ${request.method} ${request.url}: ${error instanceof Error ? error.message : String(error)}`);
        response.destroy();
      }),
  );
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => {
    if (busySockets.has(socket)) socket.destroy();
    else answerClientError(error, socket);
  });

  await new Promise<void>((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException): void => {
      reject(
        new DefiniteError(
          'serve_listen',
          `cannot listen on ${host}:${port}: ${error.code === 'EADDRINUSE' ? 'the port is in use' : error.message}`,
          'choose another address with --listen HOST:PORT (port 0 picks a free one)',
        ),
      );
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  server.on('error', (error) => log(`server error: ${error.message}`));
  const address = server.address();
  const boundPort = typeof address === 'object' && address !== null ? address.port : port;

  let closing: Promise<void> | undefined;
  return {
    url: `http://${isIPv6(host) ? `[${host}]` : host}:${boundPort}`,
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        streams.closeAll();
        // Connections between requests (including ones a client opened ahead and never used) go
        // now; requests in flight get a grace period.
        for (const socket of sockets) if (!busySockets.has(socket)) socket.destroy();
        setTimeout(() => server.closeAllConnections(), CLOSE_GRACE_MS).unref();
      })),
  };
}

/** Routes by method and path; `pattern` names the route in metrics (never the raw path). */
class Router {
  readonly #routes: { route: Route; segments: string[] }[];

  constructor(routes: Route[]) {
    this.#routes = routes.map((route) => ({ route, segments: route.path.split('/').slice(1) }));
  }

  match(method: string, pathname: string): { route?: Route; name: string; pattern: string; allow: string[] } {
    const segments = pathname.split('/').slice(1);
    const allow: string[] = [];
    let pattern = 'unmatched';
    for (const { route, segments: expected } of this.#routes) {
      const name = matchSegments(expected, segments);
      if (name === undefined) continue;
      pattern = route.path;
      if (route.method === method) return { route, name, pattern, allow };
      allow.push(route.method);
    }
    return { name: '', pattern, allow };
  }
}

/** The decoded `:name` segment ('' when there is none), or undefined when the path does not match. */
function matchSegments(expected: string[], actual: string[]): string | undefined {
  if (expected.length !== actual.length) return undefined;
  let name = '';
  for (let index = 0; index < expected.length; index++) {
    if (expected[index] === ':name') {
      if (actual[index] === '') return undefined;
      try {
        name = decodeURIComponent(actual[index]);
      } catch {
        return undefined;
      }
    } else if (expected[index] !== actual[index]) return undefined;
  }
  return name;
}

/** Splits a request target by hand: `new URL` would read `//host/path` as a host. */
function splitUrl(target: string): { pathname: string; query: URLSearchParams } {
  const mark = target.indexOf('?');
  return mark === -1
    ? { pathname: target, query: new URLSearchParams() }
    : { pathname: target.slice(0, mark), query: new URLSearchParams(target.slice(mark + 1)) };
}

function integerParameter(query: URLSearchParams, name: string, fallback: number, max: number): number {
  const text = query.get(name);
  if (text === null) return fallback;
  const value = /^\d{1,16}$/.test(text) ? Number(text) : NaN;
  if (!(value <= max)) throw parameterInvalid(name, `must be an integer from 0 to ${max}; got ${JSON.stringify(text.slice(0, 40))}`);
  return value;
}

function parameterInvalid(name: string, what: string): DefiniteError {
  return new DefiniteError('param_invalid', `the query parameter ${name} ${what}`, 'GET / lists the endpoints and their parameters');
}

function idempotencyKeyOf(request: IncomingMessage): string | undefined {
  const key = request.headers['idempotency-key'];
  if (key === undefined) return undefined;
  if (typeof key !== 'string' || key.length === 0 || key.length > IDEMPOTENCY_KEY_LENGTH_MAX) {
    throw new DefiniteError(
      'header_invalid',
      `the Idempotency-Key header must be 1 to ${IDEMPOTENCY_KEY_LENGTH_MAX} characters`,
      'use a short unique id per batch, such as a UUID, and send the same one when retrying',
    );
  }
  return key;
}

function isLoopback(host: string): boolean {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  if (bare.toLowerCase() === 'localhost' || bare === '::1') return true;
  const v4 = bare.toLowerCase().startsWith('::ffff:') ? bare.slice(7) : bare;
  return isIPv4(v4) && v4.startsWith('127.');
}

/** The token's digest (compared in constant time), or undefined when there is none. */
function checkToken(host: string, token: string | undefined): Buffer | undefined {
  if (token === '') {
    throw new DefiniteError('serve_token_invalid', 'the token is empty', 'give a non-empty token with --token, e.g. --token ${env:SLUICE_TOKEN} with that variable set');
  }
  if (token === undefined) {
    if (isLoopback(host)) return undefined;
    throw new DefiniteError(
      'serve_token_required',
      `listening on ${host} without a token would let anyone who can reach it read and write the pipeline`,
      'pass --token TOKEN (write it as ${env:NAME} to keep it out of files and shell history), or listen on 127.0.0.1',
    );
  }
  return digest(token);
}

function authorized(request: IncomingMessage, tokenDigest: Buffer): boolean {
  const header = request.headers.authorization;
  if (header === undefined || header.length < 7 || header.slice(0, 7).toLowerCase() !== 'bearer ') return false;
  // Digests have equal lengths, so timingSafeEqual compares without leaking the token's length.
  return timingSafeEqual(digest(header.slice(7).trim()), tokenDigest);
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

function sendJson(response: ServerResponse, status: number, body: unknown): void {
  const text = stringifyJson(body);
  response.writeHead(status, { 'content-type': JSON_CONTENT_TYPE, 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  response.end(text);
}

/** The one place an error becomes a response. */
export function errorResponse(error: unknown): { status: number; body: { error: { code: string; message: string; hint: string } } } {
  if (error instanceof SluiceError) {
    const status = STATUS_BY_CODE[error.code] ?? (error instanceof TransientError ? 503 : error instanceof DefiniteError ? 400 : 500);
    return { status, body: { error: { code: error.code, message: error.message, hint: error.hint ?? hintFor(status) } } };
  }
  const message = error instanceof Error ? error.message : String(error);
  return { status: 500, body: { error: { code: 'internal', message, hint: hintFor(500) } } };
}

function hintFor(status: number): string {
  if (status === 404) return 'GET /v1/views lists the tables and views, GET / the endpoints';
  if (status === 503) return 'retry in a moment';
  if (status >= 500) return 'this is a bug in Sluice; the server\'s log has the details';
  return 'correct the request and send it again';
}

function sendError(response: ServerResponse, error: unknown, log: (message: string) => void): void {
  const { status, body } = errorResponse(error);
  if (status === 500) log(error instanceof Error ? (error.stack ?? error.message) : String(error));
  if (response.headersSent) {
    response.destroy();
    return;
  }
  // After a refused or unfinished body the connection cannot carry another request.
  if (status === 413 || status === 408) response.setHeader('connection', 'close');
  if (status === 503) response.setHeader('retry-after', '1');
  if (status === 401) response.setHeader('www-authenticate', 'Bearer realm="sluice"');
  sendJson(response, status, body);
}

/** A request node:http could not parse, or whose headers came too slowly: answered in JSON, then closed. */
function answerClientError(error: NodeJS.ErrnoException, socket: Socket): void {
  if (socket.writable) {
    const [status, reason, code] =
      error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'Request Timeout', 'request_timeout']
        : error.code === 'HPE_HEADER_OVERFLOW'
          ? [431, 'Request Header Fields Too Large', 'headers_too_large']
          : [400, 'Bad Request', 'request_malformed'];
    const body = stringifyJson({ error: { code, message: `the request could not be read: ${reason.toLowerCase()}`, hint: 'send a well-formed HTTP/1.1 request promptly' } });
    socket.end(`HTTP/1.1 ${status} ${reason}\r\ncontent-type: ${JSON_CONTENT_TYPE}\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
  }
  socket.destroySoon();
}

async function packageVersion(): Promise<string> {
  try {
    const text = await readFile(new URL('../../package.json', import.meta.url), 'utf8');
    return (JSON.parse(text) as { version?: string }).version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}
