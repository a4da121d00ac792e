/**
 * The embedded search index: the sink behind `CREATE SINK … INTO SEARCH WITH (fields = …)`. It
 * keeps a full-text index of a view in SQLite FTS5 (node:sqlite), exactly in step with the view,
 * and answers ranked queries in the language of query.ts.
 *
 * Storage (in one SQLite database, which may hold other indexes: every name has the index's
 * prefix P, `search_<view>` by default):
 *
 *   P_docs   one row per distinct document: id (INTEGER PRIMARY KEY, the FTS rowid), key (BLOB,
 *            UNIQUE: the key columns' values, or the whole row when the view has no key — see
 *            documents.ts), count (its multiplicity, > 0), rest (a JSON array of the non-field
 *            columns' values, JSON-friendly), f0 … fn (the field columns' text)
 *   P_fts    FTS5 over f0 … fn with P_docs as its external content: the index only, no second
 *            copy of the text; highlight/snippet read the text back from P_docs by rowid
 *   P_meta   one row: the index's definition (columns, key, fields, weights), the committed step
 *            and its frontier
 *
 * Invariants:
 * - P_fts indexes exactly the rows of P_docs (`verify()` checks it), and P_docs holds exactly
 *   the view's rows up to the committed step: a document per distinct row (or key), with count =
 *   its multiplicity. A row with weight 2 is one document with count 2; a delete lowers the count
 *   and the document disappears when it reaches 0. Only a new, removed or re-texted document
 *   touches P_fts; a count change does not.
 * - A batch is one transaction (BEGIN IMMEDIATE … COMMIT, ROLLBACK on any error): the batch's
 *   deletes, then its inserts, applied to P_docs; then the P_fts changes that follow from them,
 *   in the same order (an un-index always carries the exact text that was indexed, as external
 *   content requires); then the meta row's step and frontier. A batch that fails midway (a row
 *   that cannot be stored, a full disk) leaves the previous step committed and visible,
 *   untouched; so does a process killed at any instant (SQLite's journal).
 * - Every statement that writes while P_fts holds this transaction's pending terms is a plain
 *   single-row statement: no triggers, no RETURNING, no upserts. Those make SQLite open a
 *   statement savepoint, FTS5 writes out its pending terms as a new segment at every savepoint,
 *   and indexing then writes one tiny segment per row and merges them (measured 2–3× slower
 *   than the same work in this order).
 * - A batch whose step is at or below the committed step is a replay and is skipped.
 * - With a key, the key identifies the document: an insert of a present key replaces its content
 *   (an update arrives as a delete and an insert of the same key in one batch, so it is applied
 *   as one change). A delete of an absent document (which a consistent view never sends) is
 *   ignored and counted in `stats().ignoredDeletes`.
 * - A query's user text only ever reaches FTS5 inside quoted strings (query.ts): any string is
 *   either answered or refused with a DefiniteError.
 * - One SearchIndex writes an index (BEGIN IMMEDIATE serializes any other writer); any number of
 *   read-only ones (`readOnly: true`, e.g. in worker threads) may search it beside the writer.
 *   Every answer carries the step and frontier of the snapshot it was read from (the meta row
 *   and the query are read in one transaction).
 *
 * Why these FTS5 settings:
 * - `tokenize = 'unicode61 remove_diacritics 2'`: Unicode-aware word splitting with case folding,
 *   and diacritics folded (café = cafe) including on letters the older mode 1 missed.
 * - `prefix = '2 3'`: extra index entries for every word's first 2 and 3 characters, so the short
 *   prefixes a user types (`sh*`, `sho*`) read one precomputed doclist instead of merging the
 *   doclists of every word that starts with them (2–2.5× faster prefix queries, measured; longer
 *   prefixes cover few words and need no help). It costs index size and indexing time (≈ 1.7×
 *   the work per row), which the bench reports. A prefix needs at least 2 characters.
 * - `detail = full` (the default): phrase queries and highlights need word positions.
 * - Ranking is FTS5's BM25 with the field weights, set once as the table's `rank` function, so
 *   `ORDER BY rank LIMIT n` is done inside FTS5 (its sorter) and snippets are computed for the
 *   returned hits only. BM25 is computed for every matching document — FTS5 has no top-k
 *   pruning — so a query's time grows with how many documents match (≈ 1 µs each).
 * - External content (`content = P_docs`): the text is stored once; the index is rebuildable
 *   from P_docs (`INSERT INTO P_fts(P_fts) VALUES ('rebuild')`). Writing both from here, not by
 *   triggers, is what the statement-savepoint invariant above requires.
 * - Opened from a path, the database runs in WAL mode with synchronous = NORMAL by default: a
 *   crash of the process loses nothing committed, a power loss may lose the last commits but
 *   never half of one, and `committed()` then says where to resume (`synchronous: 'full'` makes
 *   every commit durable on return).
 */

import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { createHash } from 'node:crypto';
import { DefiniteError, SluiceError, TransientError, type Row, type Value } from '../../core/index.ts';
import { typeName } from '../../sql/index.ts';
import type { Sink, SinkBatch, SinkTarget } from '../sink.ts';
import { badValue, documentKey, jsonValue } from './documents.ts';
import { resolveFields, type SearchField } from './fields.ts';
import { compileQuery, parseQuery } from './query.ts';

export interface SearchIndexOptions {
  /** The `fields` option: `'title^2, body'`; every text column when omitted. */
  fields?: string;
  /** The prefix of the index's table names; `search_<view name>` when omitted. */
  table?: string;
  /** When the index opens a database from a path: `normal` (default) or `full` (see above). */
  synchronous?: 'normal' | 'full';
  /**
   * Open an existing index for searching only (from a path: a read-only connection), e.g. in a
   * worker thread beside the process that writes it: in WAL mode readers never wait for the
   * writer, and a long query never holds up the pipeline's steps.
   */
  readOnly?: boolean;
}

export interface SearchOptions {
  /** Hits to return: 0–1,000, default 10. */
  limit?: number;
  /** Hits to skip first: 0–10,000, default 0. */
  offset?: number;
  /** Add highlighted snippets of the matching fields (default true). */
  highlight?: boolean;
  /** Also count every matching document (default false: it costs a second pass). */
  total?: boolean;
  /** Match the last word as a prefix while it is being typed (see query.ts). */
  asYouType?: boolean;
}

export interface SearchHit {
  /** The document's row as an object, values JSON-friendly (see documents.ts). */
  row: Record<string, unknown>;
  /** Its BM25 score with the field weights: higher is better. */
  score: number;
  /**
   * For each field with a match: its text (or, for long text, a window of it around the best
   * match, with … where cut), HTML-escaped, matches wrapped in `<mark>…</mark>`.
   */
  highlights: Record<string, string>;
  /** How many copies of the row the view holds (1 unless the view has duplicate rows). */
  count: number;
}

export interface SearchResult {
  hits: SearchHit[];
  /** Every matching document, when asked for. */
  total?: number;
  /** The committed step and frontier the answer reflects (0 and undefined before the first batch). */
  step: number;
  frontier: string | undefined;
}

export interface SearchIndexStats {
  /** Distinct documents. */
  documents: number;
  /** Rows of the view, copies counted. */
  rows: number;
  /** Deletes of absent documents ignored since the index was opened. */
  ignoredDeletes: number;
}

/** The tokens a snippet's window holds at most (FTS5 allows up to 64). */
const SNIPPET_TOKENS = 32;
const MAX_LIMIT = 1000;
const MAX_OFFSET = 10_000;
const FORMAT = 1;
const OPEN_MARK = '\u0002';
const CLOSE_MARK = '\u0003';

/** A change to the full-text index: index a document's texts, or un-index the texts it had. */
interface IndexChange {
  index: boolean;
  id: number;
  texts: (string | null)[];
}

/** A document as #find reads it: id, count, rest, and f0 … fn. */
interface StoredDocument {
  id: number;
  count: number;
  rest: string;
  [field: string]: unknown;
}

interface Definition {
  format: number;
  view: string;
  columns: { name: string; type: string }[];
  key: number[] | null;
  fields: { name: string; column: number }[];
  weights: number[];
}

function quote(identifier: string): string {
  return `"${identifier.replaceAll('"', '""')}"`;
}

/** The default table prefix: `search_` and the view's name, made a plain identifier (with a hash when that changed it). */
function defaultPrefix(view: string): string {
  const slug = view.toLowerCase().replace(/[^a-z0-9_]/g, '_');
  const suffix = slug === view ? '' : `_${createHash('sha1').update(view).digest('hex').slice(0, 8)}`;
  return `search_${slug}${suffix}`;
}

const SQLITE_TRANSIENT = new Set([5, 6, 7, 10, 13, 15]); // BUSY, LOCKED, NOMEM, IOERR, FULL, PROTOCOL
const SQLITE_DAMAGED = new Set([11, 26]); // CORRUPT, NOTADB
const SQLITE_REFUSED = new Set([3, 8, 14, 23]); // PERM, READONLY, CANTOPEN, AUTH

/**
 * An SQLite error as a Sluice error where it says something about the environment: busy, disk
 * full, I/O → transient; damage, permissions → definite. Anything else (a bug) is rethrown as is.
 */
function translate(error: unknown, where: string): unknown {
  if (error instanceof SluiceError) return error;
  const sqlite = error as { code?: string; errcode?: number; errstr?: string; message?: string };
  if (sqlite?.code !== 'ERR_SQLITE_ERROR' || typeof sqlite.errcode !== 'number') return error;
  const primary = sqlite.errcode & 0xff;
  if (SQLITE_TRANSIENT.has(primary)) {
    return new TransientError('search_unavailable', `${where}: ${sqlite.message}`, primary === 13 ? 'free disk space; the sink retries' : 'the sink retries', { cause: error });
  }
  if (SQLITE_DAMAGED.has(primary)) {
    return new DefiniteError('search_corrupt', `${where}: ${sqlite.message}`, 'the search index is damaged; delete its database file and the sink rebuilds it from the log', { cause: error });
  }
  if (SQLITE_REFUSED.has(primary)) {
    return new DefiniteError('search_storage', `${where}: ${sqlite.message}`, 'check that the data directory exists and is writable by this process', { cause: error });
  }
  return error;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '"' ? '&quot;' : '&#39;'));
}

/** A snippet with FTS5's marks as HTML, or undefined when the field did not match (or its text holds the marks). */
function renderSnippet(snippet: unknown, text: unknown): string | undefined {
  if (typeof snippet !== 'string' || typeof text !== 'string' || !snippet.includes(OPEN_MARK)) return undefined;
  if (text.includes(OPEN_MARK) || text.includes(CLOSE_MARK)) return undefined; // the marks would be ambiguous
  return escapeHtml(snippet).replaceAll(OPEN_MARK, '<mark>').replaceAll(CLOSE_MARK, '</mark>');
}

function integerOption(value: number | undefined, name: string, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 0 || value > max) {
    throw new DefiniteError('search_query', `${name} must be an integer from 0 to ${max.toLocaleString('en-US')}, not ${String(value)}`);
  }
  return value;
}

export class SearchIndex implements Sink {
  readonly target: SinkTarget;
  readonly fields: readonly SearchField[];
  /** The prefix of this index's table names. */
  readonly table: string;

  readonly #db: DatabaseSync;
  readonly #ownsDatabase: boolean;
  readonly #restColumns: number[];
  readonly #key: readonly number[] | undefined;
  #committed: { step: number; frontier: string } | undefined;
  #closed = false;
  #ignoredDeletes = 0;

  readonly #find: StatementSync;
  readonly #insertDocument: StatementSync;
  readonly #replaceDocument: StatementSync;
  readonly #setCount: StatementSync;
  readonly #removeDocument: StatementSync;
  readonly #index: StatementSync;
  readonly #unindex: StatementSync;
  readonly #setMeta: StatementSync;
  readonly #readMeta: StatementSync;
  readonly #readOnly: boolean;
  readonly #searchWithSnippets: StatementSync;
  readonly #searchPlain: StatementSync;
  readonly #count: StatementSync;

  /**
   * Opens (creating when absent) the search index of `target` in a database: a file path,
   * ':memory:', or an open DatabaseSync that the caller keeps owning (the index runs its own
   * transactions on it, so it must not be inside one when `write` is called).
   */
  static open(location: string | DatabaseSync, target: SinkTarget, options: SearchIndexOptions = {}): SearchIndex {
    const fields = resolveFields(target, options.fields);
    if (options.table !== undefined && !/^[A-Za-z_][A-Za-z0-9_]{0,100}$/.test(options.table)) {
      throw new DefiniteError('search_options', `the search index table prefix "${options.table}" must be a plain identifier`, 'use letters, digits and underscores, starting with a letter');
    }
    for (const index of target.key ?? []) {
      if (!Number.isInteger(index) || index < 0 || index >= target.columns.length) {
        throw new DefiniteError('search_options', `search sink on "${target.name}": key column #${index} is not one of its ${target.columns.length} columns`);
      }
    }
    if (typeof location !== 'string') return new SearchIndex(location, false, target, fields, options);
    let db: DatabaseSync;
    try {
      db = new DatabaseSync(location, { timeout: 5000, readOnly: options.readOnly === true });
    } catch (error) {
      throw translate(error, `opening the search index database ${location}`);
    }
    try {
      if (location !== ':memory:' && location !== '' && !options.readOnly) db.exec('PRAGMA journal_mode = WAL');
      db.exec(`PRAGMA synchronous = ${options.synchronous === 'full' ? 'FULL' : 'NORMAL'}; PRAGMA cache_size = -65536; PRAGMA temp_store = MEMORY`);
      return new SearchIndex(db, true, target, fields, options);
    } catch (error) {
      if (db.isOpen) db.close();
      throw translate(error, `opening the search index database ${location}`);
    }
  }

  private constructor(db: DatabaseSync, ownsDatabase: boolean, target: SinkTarget, fields: SearchField[], options: SearchIndexOptions) {
    this.#db = db;
    this.#ownsDatabase = ownsDatabase;
    this.target = target;
    this.fields = fields;
    this.table = options.table ?? defaultPrefix(target.name);
    this.#key = target.key;
    this.#readOnly = options.readOnly === true;
    const fieldColumns = new Set(fields.map((field) => field.column));
    this.#restColumns = target.columns.map((_, index) => index).filter((index) => !fieldColumns.has(index));

    const docs = quote(`${this.table}_docs`);
    const fts = quote(`${this.table}_fts`);
    const meta = quote(`${this.table}_meta`);
    const f = fields.map((_, i) => `f${i}`);
    const definition: Definition = {
      format: FORMAT,
      view: target.name,
      columns: target.columns.map((column) => ({ name: column.name, type: typeName(column.type) })),
      key: target.key ? [...target.key] : null,
      fields: fields.map((field) => ({ name: field.name, column: field.column })),
      weights: fields.map((field) => field.weight),
    };
    const rankFunction = `bm25(${definition.weights.map((weight) => String(weight)).join(', ')})`;
    const where = `search index "${this.table}"`;

    try {
      const exists = db.prepare(`SELECT 1 AS found FROM sqlite_schema WHERE type = 'table' AND name = ?`);
      if (!exists.get(`${this.table}_meta`)) {
        if (options.readOnly) {
          throw new DefiniteError('search_missing', `${where} does not exist yet`, 'open it for writing first (the sink creates it), then open readers');
        }
        if (exists.get(`${this.table}_docs`)) {
          throw new DefiniteError('search_corrupt', `${where} has a documents table but no meta table`, 'drop the index\'s tables (or delete the database file) and the sink rebuilds it from the log');
        }
        db.exec('BEGIN IMMEDIATE');
        try {
          db.exec(`
            CREATE TABLE ${docs} (id INTEGER PRIMARY KEY, key BLOB NOT NULL UNIQUE, count INTEGER NOT NULL, rest TEXT NOT NULL${f.map((name) => `, ${name} TEXT`).join('')});
            CREATE VIRTUAL TABLE ${fts} USING fts5(${f.join(', ')}, content = '${this.table}_docs', content_rowid = 'id', tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3');
            CREATE TABLE ${meta} (singleton INTEGER PRIMARY KEY CHECK (singleton = 0), definition TEXT NOT NULL, step INTEGER, frontier TEXT);
          `);
          db.prepare(`INSERT INTO ${meta} (singleton, definition) VALUES (0, ?)`).run(JSON.stringify(definition));
          db.prepare(`INSERT INTO ${fts} (${fts}, rank) VALUES ('rank', ?)`).run(rankFunction);
          db.exec('COMMIT');
        } catch (error) {
          if (db.isTransaction) db.exec('ROLLBACK');
          throw error;
        }
      } else {
        const stored = db.prepare(`SELECT definition, step, frontier FROM ${meta} WHERE singleton = 0`).get() as { definition: string; step: number | null; frontier: string | null } | undefined;
        if (!stored) throw new DefiniteError('search_corrupt', `${where} has lost its meta row`, 'drop the index\'s tables (or delete the database file) and the sink rebuilds it from the log');
        const previous = JSON.parse(stored.definition) as Definition;
        const shape = (d: Definition) => JSON.stringify({ ...d, weights: undefined });
        if (shape(previous) !== shape(definition)) {
          throw new DefiniteError(
            'search_definition',
            `${where} was built for another definition of "${previous.view}" (columns ${previous.columns.map((c) => `${c.name} ${c.type}`).join(', ')}; fields ${previous.fields.map((c) => c.name).join(', ')}; key ${previous.key ? previous.key.join(',') : 'none'})`,
            'give the changed sink a new name (its index is rebuilt from the log), or drop the old index\'s tables',
          );
        }
        if (JSON.stringify(previous.weights) !== JSON.stringify(definition.weights)) {
          if (options.readOnly) throw new DefiniteError('search_definition', `${where} ranks with other field weights (${previous.weights.join(', ')})`, 'open it for writing once with the new weights, or open the reader with the same fields');
          // Weights only change the ranking: no rebuild needed.
          db.exec('BEGIN IMMEDIATE');
          try {
            db.prepare(`UPDATE ${meta} SET definition = ? WHERE singleton = 0`).run(JSON.stringify(definition));
            db.prepare(`INSERT INTO ${fts} (${fts}, rank) VALUES ('rank', ?)`).run(rankFunction);
            db.exec('COMMIT');
          } catch (error) {
            if (db.isTransaction) db.exec('ROLLBACK');
            throw error;
          }
        }
        if (stored.step !== null && stored.frontier !== null) this.#committed = { step: Number(stored.step), frontier: stored.frontier };
      }

      this.#find = db.prepare(`SELECT id, count, rest${f.map((name) => `, ${name}`).join('')} FROM ${docs} WHERE key = ?`);
      this.#insertDocument = db.prepare(`INSERT INTO ${docs} (key, count, rest${f.map((name) => `, ${name}`).join('')}) VALUES (?, ?, ?${f.map(() => ', ?').join('')})`);
      this.#replaceDocument = db.prepare(`UPDATE ${docs} SET count = ?, rest = ?${f.map((name) => `, ${name} = ?`).join('')} WHERE id = ?`);
      this.#setCount = db.prepare(`UPDATE ${docs} SET count = ? WHERE id = ?`);
      this.#removeDocument = db.prepare(`DELETE FROM ${docs} WHERE id = ?`);
      this.#index = db.prepare(`INSERT INTO ${fts} (rowid${f.map((name) => `, ${name}`).join('')}) VALUES (?${f.map(() => ', ?').join('')})`);
      this.#unindex = db.prepare(`INSERT INTO ${fts} (${fts}, rowid${f.map((name) => `, ${name}`).join('')}) VALUES ('delete', ?${f.map(() => ', ?').join('')})`);
      this.#setMeta = db.prepare(`UPDATE ${meta} SET step = ?, frontier = ? WHERE singleton = 0`);
      this.#readMeta = db.prepare(`SELECT step, frontier FROM ${meta} WHERE singleton = 0`);
      const columns = `m.id AS id, m.score AS score, d.count AS count, d.rest AS rest${f.map((name) => `, d.${name} AS ${name}`).join('')}`;
      const snippets = f.map((_, i) => `, snippet(${fts}, ${i}, char(2), char(3), '…', ${SNIPPET_TOKENS}) AS h${i}`).join('');
      const search = (withSnippets: boolean) =>
        db.prepare(
          `SELECT ${columns}${withSnippets ? f.map((_, i) => `, m.h${i} AS h${i}`).join('') : ''}
           FROM (SELECT rowid AS id, rank AS score${withSnippets ? snippets : ''} FROM ${fts} WHERE ${fts} MATCH ? ORDER BY rank LIMIT ? OFFSET ?) AS m
           JOIN ${docs} AS d ON d.id = m.id
           ORDER BY m.score, m.id`,
        );
      this.#searchWithSnippets = search(true);
      this.#searchPlain = search(false);
      this.#count = db.prepare(`SELECT count(*) AS n FROM ${fts} WHERE ${fts} MATCH ?`);
    } catch (error) {
      if (ownsDatabase && db.isOpen) db.close();
      throw translate(error, `opening ${where}`);
    }
  }

  committed(): { step: number; frontier: string } | undefined {
    if (this.#readOnly && !this.#closed) {
      // A reader follows the writer's commits.
      const position = this.#readMeta.get() as { step: number | null; frontier: string | null };
      return position.step === null || position.frontier === null ? undefined : { step: Number(position.step), frontier: position.frontier };
    }
    return this.#committed;
  }

  #check(): void {
    if (this.#closed) throw new DefiniteError('search_closed', `search index "${this.table}" is closed`);
  }

  write(batch: SinkBatch): void {
    this.#check();
    const { step, frontier, rows, weights } = batch;
    if (!Number.isSafeInteger(step) || step < 1) throw new DefiniteError('search_batch', `a batch's step must be a positive integer, not ${String(step)}`);
    if (typeof frontier !== 'string') throw new DefiniteError('search_batch', `a batch's frontier must be a string, not ${typeof frontier}`);
    if (rows.length !== weights.length) throw new DefiniteError('search_batch', `a batch has ${rows.length} rows but ${weights.length} weights`);
    if (this.#readOnly) throw new DefiniteError('search_read_only', `search index "${this.table}" was opened read-only`, 'write through the index opened for writing');
    if (this.#committed && step <= this.#committed.step) return; // a replay
    const db = this.#db;
    try {
      db.exec('BEGIN IMMEDIATE');
    } catch (error) {
      throw translate(error, `search index "${this.table}": starting step ${step}`);
    }
    try {
      // Documents first, collecting the index changes they imply; then the index, in that order.
      const changes: IndexChange[] = [];
      for (let i = 0; i < rows.length; i++) if (weights[i]! < 0) this.#delete(rows[i]!, weights[i]!, changes);
      for (let i = 0; i < rows.length; i++) if (weights[i]! > 0) this.#insert(rows[i]!, weights[i]!, changes);
      for (const change of changes) (change.index ? this.#index : this.#unindex).run(change.id, ...change.texts);
      this.#setMeta.run(step, frontier);
      db.exec('COMMIT');
    } catch (error) {
      try {
        if (db.isTransaction) db.exec('ROLLBACK');
      } catch {
        // The connection is unusable; the database rolls the transaction back when next opened.
      }
      throw translate(error, `search index "${this.table}": writing step ${step}`);
    }
    this.#committed = { step, frontier };
  }

  #checkRow(row: Row, weight: number): void {
    if (!Array.isArray(row) || row.length !== this.target.columns.length) {
      throw new DefiniteError('search_row', `search sink on "${this.target.name}": a row has ${Array.isArray(row) ? row.length : 'no'} values, not ${this.target.columns.length}`);
    }
    if (!Number.isSafeInteger(weight)) throw new DefiniteError('search_batch', `a row's weight must be an integer, not ${String(weight)}`);
  }

  #delete(row: Row, weight: number, changes: IndexChange[]): void {
    this.#checkRow(row, weight);
    const key = documentKey(row, this.#key, this.target.name, this.target.columns);
    const found = this.#find.get(key) as StoredDocument | undefined;
    if (!found) {
      this.#ignoredDeletes++;
      return;
    }
    const count = Number(found.count) + weight;
    if (count > 0) this.#setCount.run(count, found.id);
    else {
      if (count < 0) this.#ignoredDeletes++;
      this.#removeDocument.run(found.id);
      changes.push({ index: false, id: found.id, texts: this.#textsOf(found) });
    }
  }

  #textsOf(stored: StoredDocument): (string | null)[] {
    return this.fields.map((_, i) => stored[`f${i}`] as string | null);
  }

  #insert(row: Row, weight: number, changes: IndexChange[]): void {
    this.#checkRow(row, weight);
    const key = documentKey(row, this.#key, this.target.name, this.target.columns);
    const columns = this.target.columns;
    const rest: unknown[] = [];
    for (const index of this.#restColumns) {
      const value = row[index]!;
      try {
        rest.push(jsonValue(value));
      } catch {
        throw badValue(this.target.name, columns[index]!.name, value, 'which is not a SQL value');
      }
    }
    const texts: (string | null)[] = [];
    for (const field of this.fields) {
      const value = row[field.column] as Value;
      if (value !== null && typeof value !== 'string') throw badValue(this.target.name, field.name, value, `but a search field holds text`);
      texts.push(value);
    }
    const restText = JSON.stringify(rest);
    const found = this.#find.get(key) as StoredDocument | undefined;
    if (!found) {
      const { lastInsertRowid } = this.#insertDocument.run(key, weight, restText, ...texts);
      changes.push({ index: true, id: Number(lastInsertRowid), texts });
      return;
    }
    const count = Number(found.count) + weight;
    // Without a key the identity is the whole row, so a present document has this very content.
    if (!this.#key) {
      this.#setCount.run(count, found.id);
      return;
    }
    // With a key, the latest insert's content wins (the view's key is trusted).
    const old = this.#textsOf(found);
    const retexted = old.some((text, i) => text !== texts[i]);
    if (!retexted && found.rest === restText) {
      this.#setCount.run(count, found.id);
      return;
    }
    this.#replaceDocument.run(count, restText, ...texts, found.id);
    if (retexted) changes.push({ index: false, id: found.id, texts: old }, { index: true, id: found.id, texts });
  }

  /** The row object of a stored document. */
  #rowOf(record: Record<string, unknown>): Record<string, unknown> {
    const rest = JSON.parse(record.rest as string) as unknown[];
    const values: unknown[] = new Array(this.target.columns.length);
    this.#restColumns.forEach((index, i) => (values[index] = rest[i]));
    this.fields.forEach((field, i) => (values[field.column] = record[`f${i}`]));
    const row: Record<string, unknown> = {};
    this.target.columns.forEach((column, index) => (row[column.name] = values[index]));
    return row;
  }

  /** Sets a result's step and frontier from the meta row, as the current read sees it. */
  #position(result: SearchResult): void {
    const position = this.#readMeta.get() as { step: number | null; frontier: string | null };
    result.step = position.step === null ? 0 : Number(position.step);
    result.frontier = position.frontier ?? undefined;
  }

  /**
   * Answers a query (the language of query.ts), best matches first. Throws a DefiniteError
   * (code `search_query`) for a query or option it refuses; never an FTS5 syntax error.
   */
  search(q: string, options: SearchOptions = {}): SearchResult {
    this.#check();
    const limit = integerOption(options.limit, 'limit', 10, MAX_LIMIT);
    const offset = integerOption(options.offset, 'offset', 0, MAX_OFFSET);
    const expression = compileQuery(parseQuery(q, { asYouType: options.asYouType === true }));
    const result: SearchResult = { hits: [], step: 0, frontier: undefined };
    if (expression === undefined) {
      this.#position(result);
      if (options.total) result.total = 0;
      return result;
    }
    const highlight = options.highlight !== false;
    const db = this.#db;
    // One read transaction, so the position reported is the one the query saw (another
    // connection may commit in between statements).
    const own = !db.isTransaction;
    try {
      if (own) db.exec('BEGIN');
      this.#position(result);
      const records = (highlight ? this.#searchWithSnippets : this.#searchPlain).all(expression, limit, offset) as Record<string, unknown>[];
      for (const record of records) {
        const highlights: Record<string, string> = {};
        if (highlight) {
          this.fields.forEach((field, i) => {
            const rendered = renderSnippet(record[`h${i}`], record[`f${i}`]);
            if (rendered !== undefined) highlights[field.name] = rendered;
          });
        }
        result.hits.push({ row: this.#rowOf(record), score: -Number(record.score), highlights, count: Number(record.count) });
      }
      if (options.total) result.total = Number((this.#count.get(expression) as { n: number }).n);
      if (own) db.exec('COMMIT');
    } catch (error) {
      try {
        if (own && db.isTransaction) db.exec('ROLLBACK');
      } catch {
        // Nothing was written; the read transaction ends with the connection.
      }
      throw translate(error, `search index "${this.table}": searching`);
    }
    return result;
  }

  /** Counts of documents and rows (reads every document: for status pages, not hot paths). */
  stats(): SearchIndexStats {
    this.#check();
    const counts = this.#db.prepare(`SELECT count(*) AS documents, coalesce(sum(count), 0) AS rows FROM ${quote(`${this.table}_docs`)}`).get() as { documents: number; rows: number };
    return { documents: Number(counts.documents), rows: Number(counts.rows), ignoredDeletes: this.#ignoredDeletes };
  }

  /** Merges the index's segments into one (after a large backfill it makes queries faster). */
  optimize(): void {
    this.#check();
    const fts = quote(`${this.table}_fts`);
    try {
      this.#db.exec(`INSERT INTO ${fts} (${fts}) VALUES ('optimize')`);
    } catch (error) {
      throw translate(error, `search index "${this.table}": optimizing`);
    }
  }

  /** Checks the full-text index against the documents; throws a DefiniteError if they differ. */
  verify(): void {
    this.#check();
    const fts = quote(`${this.table}_fts`);
    try {
      this.#db.exec(`INSERT INTO ${fts} (${fts}, rank) VALUES ('integrity-check', 1)`);
    } catch (error) {
      const translated = translate(error, `search index "${this.table}": integrity check`);
      throw translated instanceof SluiceError ? translated : new DefiniteError('search_corrupt', `search index "${this.table}" fails its integrity check: ${(error as Error).message}`, 'delete the index and the sink rebuilds it from the log', { cause: error });
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#ownsDatabase) this.#db.close();
  }
}
