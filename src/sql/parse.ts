/**
 * Parsing pipeline SQL: a file (or a string) of statements separated by semicolons.
 *
 * Sluice's own statements — CREATE SOURCE, CREATE SINK, DROP SOURCE / SINK — are parsed here by a
 * small hand-written parser; every other statement, and so every SELECT, goes to PostgreSQL's own
 * parser (`libpg-query`, compiled to WebAssembly), which returns PostgreSQL's AST. Why: see
 * docs/design/2026-11-24-sql-parser.md.
 *
 * Invariants:
 * - Statements are split on semicolons outside quotes ('…', E'…', "…", $tag$…$tag$) and comments
 *   (-- …, nested /* … *\/); each keeps its offset in the file, so every error points at the
 *   line and column of the file, not of the statement.
 * - A syntax error is a `SqlSyntaxError` (a DefiniteError) carrying file, line, column, the line
 *   of text with a caret under the offending spot, and a hint; nothing is half-parsed.
 */

import { loadModule, parseSync } from 'libpg-query';
import type { Node } from 'libpg-query';
import { DefiniteError } from '../core/index.ts';

export interface Span {
  /** Offset of the statement's first character in the text (UTF-16 units). */
  offset: number;
  length: number;
  line: number;
  column: number;
}

export type SinkTarget = 'search' | 'redis' | 'postgres' | 'mysql' | 'file' | 'jetstream' | 'webhook';
const SINK_TARGETS: readonly SinkTarget[] = ['search', 'redis', 'postgres', 'mysql', 'file', 'jetstream', 'webhook'];
/** The sink targets written with a URL or path after their name. */
const SINK_TARGETS_WITH_URL: ReadonlySet<SinkTarget> = new Set(['redis', 'postgres', 'mysql', 'file', 'jetstream', 'webhook']);

export type PipelineStatement =
  /** `url` is a connection URL, or for FILE the path of a JSON-lines file. */
  | { kind: 'createSource'; name: string; connector: 'postgres' | 'mysql' | 'file'; url: string; options: Map<string, string>; span: Span }
  | { kind: 'createSink'; name: string; from: string[]; target: SinkTarget; url: string | undefined; options: Map<string, string>; span: Span }
  | { kind: 'drop'; object: 'source' | 'sink'; name: string; ifExists: boolean; span: Span }
  /** Any other statement, as PostgreSQL's parser gives it (SelectStmt, ViewStmt, CreateStmt, InsertStmt, …). */
  | { kind: 'postgres'; node: Node; text: string; span: Span };

/** An error in SQL text, positioned: `file:line:column: what`, the line, and a caret under the spot. */
export class SqlError extends DefiniteError {
  override readonly name: string = 'SqlError';
  readonly file: string;
  readonly line: number;
  readonly column: number;
  constructor(code: string, file: string, text: string, offset: number, what: string, hint?: string) {
    const { line, column } = lineAndColumn(text, offset);
    const { text: lineText, caret } = redactLine(text.split('\n')[line - 1] ?? '', column - 1);
    super(code, `${file}:${line}:${column}: ${what}\n  ${lineText}\n  ${' '.repeat(Math.max(0, caret))}^`, hint);
    this.file = file;
    this.line = line;
    this.column = column;
  }
}

/** A line with URL passwords shown as *** (secrets are never printed), and where the caret goes in it. */
function redactLine(line: string, caret: number): { text: string; caret: number } {
  let shift = 0;
  const text = line.replace(/([a-z][a-z0-9+.-]*:\/\/[^:/@\s'"]*):([^@/\s'"]+)@/gi, (match, prefix: string, password: string, at: number) => {
    if (at + prefix.length + 1 < caret) shift += Math.min(password.length, caret - (at + prefix.length + 1)) - 3;
    return `${prefix}:***@`;
  });
  return { text, caret: Math.max(0, caret - shift) };
}

export class SqlSyntaxError extends SqlError {
  override readonly name: string = 'SqlSyntaxError';
  constructor(file: string, text: string, offset: number, what: string, hint?: string) {
    super('sql_syntax', file, text, offset, what, hint);
  }
}

/** 1-based line and column of an offset. */
export function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}

let loaded: Promise<void> | undefined;

/** Loads PostgreSQL's parser (WebAssembly, about 20 ms) once per process. */
export function loadParser(): Promise<void> {
  return (loaded ??= loadModule());
}

/** Parses a pipeline file. `loadParser()` must have resolved first (see `parsePipelineAsync`). */
export function parsePipeline(text: string, file = '<input>'): PipelineStatement[] {
  const statements: PipelineStatement[] = [];
  for (const { offset, length } of splitStatements(text, file)) {
    const span: Span = { offset, length, ...lineAndColumn(text, offset) };
    const statementText = text.slice(offset, offset + length);
    if (/^(create|drop)\s+(source|sink)\b/i.test(statementText)) {
      statements.push(parseOwnStatement(tokenize(statementText, offset, text, file), span, text, file));
      continue;
    }
    statements.push({ kind: 'postgres', node: parsePostgres(statementText, offset, text, file), text: statementText, span });
  }
  return statements;
}

export async function parsePipelineAsync(text: string, file = '<input>'): Promise<PipelineStatement[]> {
  await loadParser();
  return parsePipeline(text, file);
}

function parsePostgres(statementText: string, offset: number, text: string, file: string): Node {
  try {
    const result = parseSync(statementText);
    const node = result.stmts?.[0]?.stmt;
    if (!node) throw new SqlSyntaxError(file, text, offset, 'empty statement');
    return node;
  } catch (error) {
    if (error instanceof SqlSyntaxError) throw error;
    const details = (error as { sqlDetails?: { cursorPosition?: number; message?: string } }).sqlDetails;
    const message = details?.message ?? (error as Error).message;
    const at = offset + Math.min(details?.cursorPosition ?? 0, statementText.length);
    const near = /at or near "([^"]*)"/.exec(message)?.[1];
    throw new SqlSyntaxError(file, text, at, message, near !== undefined ? `check the SQL just before "${near}"` : 'the statement ends too early: something is missing at its end');
  }
}

// ── Splitting ─────────────────────────────────────────────────────────────────────────────────

/** The statements of a text: offset and length of each, without the semicolon and outer blanks and comments. */
export function splitStatements(text: string, file = '<input>'): Array<{ offset: number; length: number }> {
  const statements: Array<{ offset: number; length: number }> = [];
  let start = -1; // the first significant character of the current statement
  let end = -1; // one past its last significant character
  let i = 0;
  const significant = (from: number, to: number) => {
    if (start < 0) start = from;
    end = to;
  };
  while (i < text.length) {
    const c = text[i]!;
    const next = text[i + 1];
    if (c === '-' && next === '-') {
      const newline = text.indexOf('\n', i);
      i = newline < 0 ? text.length : newline + 1;
    } else if (c === '/' && next === '*') {
      let depth = 1;
      let j = i + 2;
      while (j < text.length && depth > 0) {
        if (text[j] === '/' && text[j + 1] === '*') {
          depth++;
          j += 2;
        } else if (text[j] === '*' && text[j + 1] === '/') {
          depth--;
          j += 2;
        } else j++;
      }
      if (depth > 0) throw new SqlSyntaxError(file, text, i, 'unterminated /* comment', 'close it with */');
      i = j;
    } else if (c === "'" || c === '"') {
      const escapes = c === "'" && i > 0 && /[eE]/.test(text[i - 1]!) && (i < 2 || !/[\w$]/.test(text[i - 2]!));
      const close = closingQuote(text, i, c, escapes);
      if (close < 0) throw new SqlSyntaxError(file, text, i, `unterminated ${c === "'" ? 'string' : 'quoted identifier'}`, `close it with ${c}`);
      significant(i, close + 1);
      i = close + 1;
    } else if (c === '$' && /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.test(text.slice(i, i + 64)) && (i === 0 || !/[\w$]/.test(text[i - 1]!))) {
      const tag = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(text.slice(i, i + 64))![0];
      const close = text.indexOf(tag, i + tag.length);
      if (close < 0) throw new SqlSyntaxError(file, text, i, `unterminated dollar-quoted string ${tag}`, `close it with ${tag}`);
      significant(i, close + tag.length);
      i = close + tag.length;
    } else if (c === ';') {
      if (start >= 0) statements.push({ offset: start, length: end - start });
      start = end = -1;
      i++;
    } else {
      if (!/\s/.test(c)) significant(i, i + 1);
      i++;
    }
  }
  if (start >= 0) statements.push({ offset: start, length: end - start });
  return statements;
}

/** The index of the quote closing the one at `open` ('' and "" are escaped quotes), or −1. */
function closingQuote(text: string, open: number, quote: string, backslashEscapes: boolean): number {
  for (let i = open + 1; i < text.length; i++) {
    const c = text[i];
    if (backslashEscapes && c === '\\') {
      i++;
      continue;
    }
    if (c !== quote) continue;
    if (text[i + 1] === quote) {
      i++;
      continue;
    }
    return i;
  }
  return -1;
}

// ── Sluice's own statements ───────────────────────────────────────────────────────────────────

interface Token {
  kind: 'word' | 'identifier' | 'string' | 'punctuation' | 'other';
  /** Words lowercased; identifiers and strings unquoted. */
  value: string;
  /** Offset in the whole text. */
  offset: number;
}

/** Enough of a tokenizer to recognise and parse Sluice's statements (others go to PostgreSQL). */
function tokenize(statement: string, base: number, text: string, file: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < statement.length) {
    const c = statement[i]!;
    if (/\s/.test(c)) i++;
    else if (c === '-' && statement[i + 1] === '-') {
      const newline = statement.indexOf('\n', i);
      i = newline < 0 ? statement.length : newline + 1;
    } else if (c === '/' && statement[i + 1] === '*') {
      const close = statement.indexOf('*/', i + 2);
      i = close < 0 ? statement.length : close + 2;
    } else if (/[A-Za-z0-9_]/.test(c)) {
      // Words and bare numbers (option values like `port = 5432`).
      const word = /^[A-Za-z0-9_][A-Za-z0-9_$.]*/.exec(statement.slice(i))![0].replace(/\.+$/, '');
      if (/^[A-Za-z_]/.test(word) && word.includes('.')) {
        // A qualified name: split at the dots so "shop.orders" reads as shop . orders.
        const part = /^[A-Za-z_][A-Za-z0-9_$]*/.exec(word)![0];
        tokens.push({ kind: 'word', value: part.toLowerCase(), offset: base + i });
        i += part.length;
        continue;
      }
      tokens.push({ kind: 'word', value: word.toLowerCase(), offset: base + i });
      i += word.length;
    } else if (c === '"' || c === "'") {
      const close = closingQuote(statement, i, c, false);
      if (close < 0) throw new SqlSyntaxError(file, text, base + i, 'unterminated quote');
      tokens.push({ kind: c === '"' ? 'identifier' : 'string', value: statement.slice(i + 1, close).replaceAll(c + c, c), offset: base + i });
      i = close + 1;
    } else if ('(),=.'.includes(c)) {
      tokens.push({ kind: 'punctuation', value: c, offset: base + i });
      i++;
    } else {
      tokens.push({ kind: 'other', value: c, offset: base + i });
      i++;
    }
  }
  return tokens;
}

class TokenReader {
  readonly #tokens: Token[];
  readonly #text: string;
  readonly #file: string;
  readonly #end: number;
  #position = 0;
  constructor(tokens: Token[], text: string, file: string, end: number) {
    this.#tokens = tokens;
    this.#text = text;
    this.#file = file;
    this.#end = end;
  }
  get done(): boolean {
    return this.#position >= this.#tokens.length;
  }
  peek(): Token | undefined {
    return this.#tokens[this.#position];
  }
  next(): Token | undefined {
    return this.#tokens[this.#position++];
  }
  /** Fails at a token (the next one by default): "expected …, found …". */
  fail(what: string, hint?: string, token = this.peek()): never {
    throw new SqlSyntaxError(this.#file, this.#text, token?.offset ?? this.#end, token ? `${what}, found ${describeToken(token)}` : `${what}, found the end of the statement`, hint);
  }
  /** Fails at a token with a message of its own. */
  failAt(token: Token | undefined, what: string, hint?: string): never {
    throw new SqlSyntaxError(this.#file, this.#text, token?.offset ?? this.#end, what, hint);
  }
  keyword(...words: string[]): string {
    const token = this.peek();
    if (token?.kind === 'word' && words.includes(token.value)) {
      this.#position++;
      return token.value;
    }
    return this.fail(`expected ${words.map((word) => word.toUpperCase()).join(' or ')}`);
  }
  optionalKeyword(word: string): boolean {
    const token = this.peek();
    if (token?.kind === 'word' && token.value === word) {
      this.#position++;
      return true;
    }
    return false;
  }
  punctuation(mark: string): void {
    const token = this.peek();
    if (token?.kind === 'punctuation' && token.value === mark) {
      this.#position++;
      return;
    }
    this.fail(`expected "${mark}"`);
  }
  name(what: string): string {
    const token = this.peek();
    if (token?.kind === 'word' || token?.kind === 'identifier') {
      this.#position++;
      return token.value;
    }
    return this.fail(`expected ${what}`);
  }
  string(what: string, hint?: string): string {
    const token = this.peek();
    if (token?.kind === 'string') {
      this.#position++;
      return token.value;
    }
    return this.fail(`expected ${what} in single quotes`, hint);
  }
}

function describeToken(token: Token): string {
  if (token.kind === 'string') return `'${token.value.length > 30 ? token.value.slice(0, 30) + '…' : token.value}'`;
  if (token.kind === 'identifier') return `"${token.value}"`;
  return `"${token.value}"`;
}

/** CREATE SOURCE, CREATE SINK, DROP SOURCE, DROP SINK (the caller checked the first two words). */
function parseOwnStatement(tokens: Token[], span: Span, text: string, file: string): PipelineStatement {
  const first = tokens[0]!;
  const second = tokens[1]!;
  const isDrop = first.value === 'drop';
  const reader = new TokenReader(tokens.slice(2), text, file, span.offset + span.length);
  let statement: PipelineStatement;
  if (isDrop) {
    const ifExists = reader.optionalKeyword('if');
    if (ifExists) reader.keyword('exists');
    statement = { kind: 'drop', object: second.value as 'source' | 'sink', name: reader.name(`the ${second.value}'s name`), ifExists, span };
  } else if (second.value === 'source') {
    const name = reader.name("the source's name");
    reader.keyword('from');
    const connectorToken = reader.peek();
    if (connectorToken?.kind !== 'word' || !['postgres', 'mysql', 'file'].includes(connectorToken.value)) {
      return reader.fail('expected POSTGRES, MYSQL or FILE', 'Sluice captures changes from PostgreSQL and from MySQL or MariaDB, and reads JSON-lines files; tables fed by applications are CREATE TABLE');
    }
    const connector = reader.keyword('postgres', 'mysql', 'file') as 'postgres' | 'mysql' | 'file';
    const url =
      connector === 'file'
        ? reader.string('the path of the JSON-lines file', "for example 'events.jsonl'")
        : reader.string(`the ${connector === 'postgres' ? 'PostgreSQL' : 'MySQL'} URL`, `for example '${connector}://user@127.0.0.1/database'`);
    statement = { kind: 'createSource', name, connector, url, options: parseWith(reader), span };
  } else {
    const name = reader.name("the sink's name");
    reader.keyword('from');
    const from = [reader.name('the view, table or source table the sink reads')];
    while (reader.peek()?.value === '.' && reader.peek()?.kind === 'punctuation') {
      reader.next();
      from.push(reader.name('a name after "."'));
    }
    reader.keyword('into');
    const targetToken = reader.peek();
    const target = targetToken?.kind === 'word' ? (targetToken.value as SinkTarget) : undefined;
    if (!target || !SINK_TARGETS.includes(target)) return reader.fail(`expected a sink target (${SINK_TARGETS.map((each) => each.toUpperCase()).join(', ')})`);
    reader.next();
    const url = SINK_TARGETS_WITH_URL.has(target) ? reader.string(target === 'file' ? 'the file path' : `the ${target} URL`) : undefined;
    statement = { kind: 'createSink', name, from, target, url, options: parseWith(reader), span };
  }
  if (!reader.done) reader.fail('expected the end of the statement', 'a semicolon ends a statement');
  return statement;
}

/** `WITH (key = 'value', …)`, or nothing. */
function parseWith(reader: TokenReader): Map<string, string> {
  const options = new Map<string, string>();
  if (!reader.optionalKeyword('with')) return options;
  reader.punctuation('(');
  for (;;) {
    const keyToken = reader.peek();
    const key = reader.name('an option name');
    if (options.has(key)) reader.failAt(keyToken, `option "${key}" is given twice`, 'give each option once');
    reader.punctuation('=');
    const valueToken = reader.peek();
    if (valueToken?.kind === 'string' || valueToken?.kind === 'word') {
      reader.next();
      options.set(key, valueToken.value);
    } else reader.fail(`expected a value for option "${key}" ('text' or a word)`);
    if (reader.peek()?.value === ',') {
      reader.next();
      continue;
    }
    reader.punctuation(')');
    return options;
  }
}
