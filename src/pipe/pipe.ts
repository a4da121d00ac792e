/**
 * The pipe language: `SOURCE | STAGE | … | SINK` on one line, compiled into the pipeline
 * statements a pipeline file would hold (CREATE SOURCE, CREATE VIEW per stage, CREATE SINK), so
 * both forms meet in the same parse tree and from there the same plan.
 *
 *   sluice 'mysql://shop@localhost/shop?tables=products | where price > 0 | search'
 *
 * becomes
 *
 *   CREATE SOURCE pipe_source FROM MYSQL 'mysql://shop@localhost/shop' WITH (tables = 'products');
 *   CREATE VIEW pipe_1 AS SELECT * FROM pipe_source.products WHERE price > 0;
 *   CREATE SINK pipe_sink FROM pipe_1 INTO SEARCH;
 *
 * Sources: `postgres://…?tables=T`, `mysql://…?tables=T` (one table; other query parameters that
 * are source options — publication, slot, server_id — become options, the rest stay in the URL),
 * `file:PATH.jsonl`, or the name of a table or view. Stages: `where …`, `select …`,
 * `group by … select …`, `join T on …` (also left / right / full join), `distinct`,
 * `order by … [limit N [offset M]]`, `limit N`. Sinks (the last segment, when it is one):
 * `search`, `redis://…`, `postgres://…/TABLE`, `mysql://…/TABLE`, `file:PATH.jsonl`. Without a
 * sink the last stage is the view `pipe`, served over HTTP.
 *
 * Invariants:
 * - `|` separates segments only outside quotes and parentheses, and `||` (SQL's concatenation)
 *   never does.
 * - Every error points into the pipe text itself: a syntax error inside a stage's SQL is mapped
 *   back from the generated statement to the stage's column.
 */

import { DefiniteError } from '../core/index.ts';
import { parsePipeline, SqlSyntaxError, type PipelineStatement } from '../sql/index.ts';

export class PipeError extends DefiniteError {
  override readonly name: string = 'PipeError';
  readonly column: number;
  constructor(pipe: string, offset: number, what: string, hint?: string) {
    super('pipe_syntax', `column ${offset + 1}: ${what}\n  ${pipe}\n  ${' '.repeat(offset)}^`, hint);
    this.column = offset + 1;
  }
}

interface Segment {
  text: string;
  /** Offset of `text` in the pipe. */
  offset: number;
}

/** Splits on `|` outside quotes, parentheses and `||`; each segment trimmed, with its offset. */
export function splitPipe(pipe: string): Segment[] {
  const segments: Segment[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < pipe.length; i++) {
    const c = pipe[i]!;
    if (c === "'" || c === '"') {
      let j = i + 1;
      for (; j < pipe.length; j++) {
        if (pipe[j] !== c) continue;
        if (pipe[j + 1] === c) j++;
        else break;
      }
      if (j >= pipe.length) throw new PipeError(pipe, i, `unterminated ${c === "'" ? 'string' : 'quoted identifier'}`, `close it with ${c}`);
      i = j;
    } else if (c === '(') depth++;
    else if (c === ')') depth = Math.max(0, depth - 1);
    else if (c === '|' && depth === 0) {
      if (pipe[i + 1] === '|') {
        i++;
        continue;
      }
      segments.push(trimmed(pipe, start, i));
      start = i + 1;
    }
  }
  segments.push(trimmed(pipe, start, pipe.length));
  for (const segment of segments) if (segment.text === '') throw new PipeError(pipe, segment.offset, 'empty segment', 'each part between | must be a source, a stage or a sink');
  return segments;
}

function trimmed(pipe: string, from: number, to: number): Segment {
  let start = from;
  let end = to;
  while (start < end && /\s/.test(pipe[start]!)) start++;
  while (end > start && /\s/.test(pipe[end - 1]!)) end--;
  return { text: pipe.slice(start, end), offset: start };
}

/** Where a piece of the generated SQL came from in the pipe (for mapping errors back). */
interface Origin {
  generated: number;
  pipe: number;
  length: number;
}

export interface CompiledPipe {
  /** The pipeline statements, as a pipeline file would state them. */
  sql: string;
  statements: PipelineStatement[];
  /** The relation the pipe ends in: its sink's input, or the view `pipe`. */
  result: string;
}

const SOURCE_OPTIONS = new Set(['tables', 'publication', 'slot', 'server_id']);
const STAGE_WORDS = 'where, select, group by, join, left join, right join, full join, distinct, order by, limit';

/** Compiles a pipe into pipeline statements. Needs `loadParser()` (sql/) to have resolved. */
export function compilePipe(pipe: string): CompiledPipe {
  const segments = splitPipe(pipe);
  let sql = '';
  const origins: Origin[] = [];
  const emit = (text: string, from?: Segment, fragmentStart?: number) => {
    if (from && fragmentStart !== undefined) origins.push({ generated: sql.length, pipe: from.offset + fragmentStart, length: text.length });
    sql += text;
  };

  // The source.
  const source = segments[0]!;
  let current = compileSource(pipe, source, emit);

  // The sink, when the last segment is one.
  const last = segments.length > 1 ? segments[segments.length - 1]! : undefined;
  const sink = last && isSink(last.text) ? last : undefined;
  const stages = segments.slice(1, sink ? -1 : undefined);

  // `order by …` directly followed by `limit …` is one stage (a top-k): a view's order does not
  // carry into the next view, so apart they would keep arbitrary rows.
  const merged: Segment[][] = [];
  for (const stage of stages) {
    const previous = merged.at(-1);
    if (previous?.length === 1 && /^order\s+by\s/i.test(previous[0]!.text) && /^limit\s/i.test(stage.text)) previous.push(stage);
    else merged.push([stage]);
  }
  merged.forEach((parts, index) => {
    const name = sink || index < merged.length - 1 ? `pipe_${index + 1}` : 'pipe';
    emit(`CREATE VIEW ${name} AS `);
    compileStage(pipe, parts[0]!, current, emit);
    if (parts[1]) {
      emit(' ');
      emit(parts[1].text, parts[1], 0);
    }
    emit(';\n');
    current = name;
  });
  if (sink) compileSink(pipe, sink, current, emit);

  let statements: PipelineStatement[];
  try {
    statements = parsePipeline(sql, 'pipe');
  } catch (error) {
    if (!(error instanceof SqlSyntaxError)) throw error;
    // Map the error's place in the generated SQL back into the pipe.
    const offset = offsetOf(sql, error.line, error.column);
    const origin = origins.find((each) => offset >= each.generated && offset <= each.generated + each.length);
    // Outside every fragment the error is in what the source became: point at the source.
    const at = origin ? origin.pipe + (offset - origin.generated) : segments[0]!.offset;
    const what = error.message.split('\n')[0]!.replace(/^pipe:\d+:\d+: /, '');
    throw new PipeError(pipe, Math.min(at, pipe.length), what, error.hint);
  }
  return { sql, statements, result: sink ? current : stages.length > 0 ? 'pipe' : current };
}

function offsetOf(text: string, line: number, column: number): number {
  let offset = 0;
  for (let l = 1; l < line; l++) offset = text.indexOf('\n', offset) + 1;
  return offset + column - 1;
}

function quote(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

type Emit = (text: string, from?: Segment, fragmentStart?: number) => void;

/** Emits the source statement (if any) and returns the relation the first stage reads. */
function compileSource(pipe: string, source: Segment, emit: Emit): string {
  const text = source.text;
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(text)?.[1]?.toLowerCase();
  if (scheme === 'postgres' || scheme === 'postgresql' || scheme === 'mysql' || scheme === 'mariadb') {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      throw new PipeError(pipe, source.offset, `"${text}" is not a valid URL`, `for example ${scheme}://user@127.0.0.1/database?tables=products`);
    }
    const options = new Map<string, string>();
    for (const [key, value] of [...url.searchParams]) {
      if (!SOURCE_OPTIONS.has(key)) continue;
      options.set(key, value);
      url.searchParams.delete(key);
    }
    const tables = (options.get('tables') ?? '')
      .split(',')
      .map((table) => table.trim())
      .filter((table) => table !== '');
    if (tables.length !== 1) {
      throw new PipeError(pipe, source.offset, tables.length === 0 ? 'the source names no table' : `the source names ${tables.length} tables (${tables.join(', ')}); a pipe reads one`, `add ?tables=TABLE to the URL, for example ${scheme}://…/shop?tables=products`);
    }
    const connector = scheme.startsWith('postgres') ? 'POSTGRES' : 'MYSQL';
    const withOptions = [...options].map(([key, value]) => `${key} = ${quote(value)}`).join(', ');
    emit(`CREATE SOURCE pipe_source FROM ${connector} ${quote(url.toString())} WITH (${withOptions});\n`);
    // A table named schema.table is read as pipe_source.table (the source's tables go by their own name).
    return `pipe_source.${quoteIdentifier(tables[0]!.split('.').at(-1)!)}`;
  }
  if (scheme === 'file') {
    const path = text.slice('file:'.length);
    if (path === '') throw new PipeError(pipe, source.offset, 'file: needs a path', 'for example file:events.jsonl');
    emit(`CREATE SOURCE pipe_source FROM FILE ${quote(path)};\n`);
    return 'pipe_source.records';
  }
  if (scheme !== undefined && /^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    throw new PipeError(pipe, source.offset, `unknown source "${scheme}:"`, 'a pipe starts with postgres://…, mysql://…, file:PATH or the name of a table or view');
  }
  if (!/^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$/.test(text) && !/^"/.test(text)) {
    throw new PipeError(pipe, source.offset, `"${text}" is not a source`, 'a pipe starts with postgres://…, mysql://…, file:PATH or the name of a table or view');
  }
  return text;
}

function quoteIdentifier(name: string): string {
  return /^[a-z_][a-z0-9_$]*$/.test(name) ? name : `"${name.replaceAll('"', '""')}"`;
}

/** Emits `SELECT … FROM current …` for one stage. */
function compileStage(pipe: string, stage: Segment, current: string, emit: Emit): void {
  const text = stage.text;
  const lower = text.toLowerCase();
  const rest = (words: number) => {
    const match = new RegExp(`^(\\S+\\s+){${words}}`).exec(text);
    return match ? match[0].length : text.length;
  };
  const fragment = (from: number) => emit(text.slice(from), stage, from);
  if (/^where\s/.test(lower)) {
    emit(`SELECT * FROM ${current} WHERE `);
    fragment(rest(1));
  } else if (/^select\s/.test(lower)) {
    emit('SELECT ');
    fragment(rest(1));
    emit(` FROM ${current}`);
  } else if (/^group\s+by\s/.test(lower)) {
    const selectAt = /\sselect\s/i.exec(text);
    if (!selectAt) throw new PipeError(pipe, stage.offset, '"group by" needs a "select" after its columns', 'for example: group by customer_id select customer_id, sum(amount) AS total');
    const start = rest(2);
    emit('SELECT ');
    fragment(selectAt.index + selectAt[0].length);
    emit(` FROM ${current} GROUP BY `);
    emit(text.slice(start, selectAt.index), stage, start);
  } else if (/^((left|right|full)\s+(outer\s+)?)?join\s/.test(lower)) {
    emit(`SELECT * FROM ${current} `);
    fragment(0);
  } else if (lower === 'distinct') {
    emit(`SELECT DISTINCT * FROM ${current}`);
  } else if (/^(order\s+by|limit)\s/.test(lower)) {
    emit(`SELECT * FROM ${current} `);
    fragment(0);
  } else {
    const word = /^\S+/.exec(text)?.[0] ?? text;
    throw new PipeError(pipe, stage.offset, `"${word}" is not a stage`, `a stage is one of: ${STAGE_WORDS}; the last part may be a sink (search, redis://…, postgres://…/table, mysql://…/table, file:PATH)`);
  }
}

function isSink(text: string): boolean {
  return /^search(\s|$)/i.test(text) || /^(redis|rediss|postgres|postgresql|mysql|mariadb):\/\//i.test(text) || /^file:/i.test(text);
}

function compileSink(pipe: string, sink: Segment, current: string, emit: Emit): void {
  const text = sink.text;
  if (/^search(\s|$)/i.test(text)) {
    const fields = /^search\s+(.+)$/i.exec(text)?.[1];
    emit(`CREATE SINK pipe_sink FROM ${current} INTO SEARCH${fields ? ` WITH (fields = ${quote(fields)})` : ''};\n`);
    return;
  }
  if (/^file:/i.test(text)) {
    const path = text.slice('file:'.length);
    if (path === '') throw new PipeError(pipe, sink.offset, 'file: needs a path', 'for example file:out.jsonl');
    emit(`CREATE SINK pipe_sink FROM ${current} INTO FILE ${quote(path)};\n`);
    return;
  }
  const scheme = /^([a-z]+):/i.exec(text)![1]!.toLowerCase();
  if (scheme === 'redis' || scheme === 'rediss') {
    emit(`CREATE SINK pipe_sink FROM ${current} INTO REDIS ${quote(text)};\n`);
    return;
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new PipeError(pipe, sink.offset, `"${text}" is not a valid URL`, `for example ${scheme}://user@127.0.0.1/database/table`);
  }
  // postgres://…/database/table: the last path part is the target table.
  const parts = url.pathname.split('/').filter((part) => part !== '');
  if (parts.length < 2) throw new PipeError(pipe, sink.offset, `the sink URL names no table`, `end it with /DATABASE/TABLE, for example ${scheme}://user@127.0.0.1/shop/product_totals`);
  const table = decodeURIComponent(parts.pop()!);
  url.pathname = '/' + parts.join('/');
  const target = scheme.startsWith('postgres') ? 'POSTGRES' : 'MYSQL';
  emit(`CREATE SINK pipe_sink FROM ${current} INTO ${target} ${quote(url.toString())} WITH (table = ${quote(table)});\n`);
}
