/**
 * The embedded view store: every view of a pipeline materialized in one SQLite database
 * (node:sqlite), so the HTTP API can read it by key, filter and page
 * (`GET /v1/views/NAME?limit=&offset=&COLUMN=VALUE`).
 *
 *   const store = ViewStore.open('.sluice/views.sqlite');    // or ':memory:'
 *   const sink = store.sink({ name: 'totals', columns, key: [0] });
 *   sink.write({ step: 1, frontier, rows, weights });          // one transaction
 *   store.read('totals', { filters: { customer_id: '7' }, limit: 10 });
 *
 * Layout. A table `sluice_views` holds each view's definition (columns, key), its committed step
 * and frontier, and its row count. Each view has a table `v<id>` (named by number, so no user
 * text reaches SQL): `_id` (the row id, PRIMARY KEY, WITHOUT ROWID), the view's columns as
 * `c0 … cN` (with shadow columns for numeric, interval and json: see columns.ts), and `_count`.
 * - Row id: `encodeKey` of the key columns when the view has a key, else of the whole row
 *   (intervals by their span, so SQL-equal rows share an id).
 * - Multiplicity: views are multisets; a row with weight 2 is one stored row with `_count` 2,
 *   and reads give it twice (PostgreSQL's semantics), paging counting each copy.
 * - Indexes: the primary key on `_id`; keyed views also index their key columns (compare
 *   columns), which is their default read order; a partial index finds rows with `_count > 1`
 *   so reads of views without duplicates (the common case) page with plain LIMIT/OFFSET.
 *
 * Invariants:
 * - A batch is one transaction (BEGIN IMMEDIATE … COMMIT): its deletes, then its inserts, then
 *   the view's step, frontier and row count. Any error rolls all of it back, leaving the
 *   previous state and step. A batch at or below the committed step is a replay and is skipped.
 * - The store never holds a negative or zero count: deleting more copies than stored, or
 *   inserting a different row under an existing key, is a DefiniteError (the view and the store
 *   disagree) and the batch is rolled back.
 * - `group(fn)` commits the writes `fn` makes to several views in one transaction (one disk
 *   sync per engine step, not one per view); each write inside is a savepoint, so one view's
 *   failed batch is undone alone.
 * - A read sees whole batches only, and names the step and frontier it reflects.
 * - Reads are stable: a total order (the requested order, then the row id) on every page.
 *
 * One ViewStore per file in a process, and every read and write through it: it keeps each view's
 * committed step and row count in memory (read from `sluice_views` when it opens).
 *
 * Why SQLite: indexed reads, filters and paging over views bigger than memory, one file per
 * pipeline, and transactions that commit a view's data with its frontier. Durability: WAL with
 * synchronous=FULL by default (a committed batch survives power loss); `durability: 'normal'`
 * (synchronous=NORMAL) survives process crashes but may lose the last batches on power loss, in
 * which case `committed()` reports the earlier step and the runtime replays from there.
 */

import fs from 'node:fs';
import path from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { DefiniteError, Interval, SluiceError, TransientError, type Row, type Value } from '../../core/index.ts';
import { closest, encodeKey, typeName } from '../../sql/index.ts';
import { objectRow } from '../object-row.ts';
import type { Sink, SinkBatch, SinkColumn, SinkTarget } from '../sink.ts';
import { columnLayout, parseFilterValue, type ColumnLayout, type Stored } from './columns.ts';

/** The store's format version (PRAGMA user_version). */
const FORMAT_VERSION = 1;

export interface ViewStoreOptions {
  /** 'full' (default): a committed batch survives power loss. 'normal': survives process crashes. */
  durability?: 'full' | 'normal';
  /** How long a write waits for another connection's lock before failing (default 5000 ms). */
  busyTimeoutMs?: number;
}

export interface ReadOptions {
  /** At most this many rows (each copy of a duplicated row counts); all when omitted. */
  limit?: number;
  /** Rows to skip first (each copy counts). */
  offset?: number;
  /** Equality filters, column name → the value as text (parsed with the column's type). */
  filters?: Readonly<Record<string, string>>;
  /** The order; NULLs last ascending, first descending (PostgreSQL's defaults). Default: the key, else the row id. */
  orderBy?: ReadonlyArray<{ column: string; descending?: boolean }>;
  /** Also count every row the filters select (ignoring limit and offset). */
  total?: boolean;
}

export interface ReadResult {
  rows: Record<string, unknown>[];
  /** Every row the filters select, when `total` was asked for. */
  total?: number;
  /** The step and frontier (position token) the rows reflect; undefined before the first batch. */
  step?: number;
  position?: string;
}

export interface StoredView {
  name: string;
  columns: readonly SinkColumn[];
  key?: readonly number[];
  step?: number;
  frontier?: string;
  /** Rows, counting each copy. */
  rows: number;
}

interface Statements {
  insert: StatementSync;
  /** A keyed view's row changed outside its key (undefined when every column is in the key). */
  update: StatementSync | undefined;
  deleteExact: StatementSync;
  decrement: StatementSync;
  countOf: StatementSync;
  commit: StatementSync;
}

interface ViewState {
  readonly id: number;
  readonly name: string;
  readonly table: string;
  readonly columns: readonly SinkColumn[];
  readonly key: readonly number[] | undefined;
  readonly layouts: readonly ColumnLayout[];
  /** The columns a row id encodes. */
  readonly idColumns: readonly number[];
  readonly hasInterval: boolean;
  /** What is committed (durable). */
  step: number | undefined;
  frontier: string | undefined;
  rows: number;
  /** Within a group: what the group's writes so far have made of it (committed with the group). */
  pending: { step: number; frontier: string; rows: number } | undefined;
  dropped: boolean;
  statements: Statements | undefined;
  readonly reads: Map<string, StatementSync>;
}

function definitionOf(target: SinkTarget): string {
  const key = target.key && target.key.length > 0 ? [...target.key] : null;
  return JSON.stringify({ columns: target.columns.map((c) => ({ name: c.name, type: { kind: c.type.kind, modifiers: [...c.type.modifiers] } })), key });
}

export class ViewStore {
  readonly file: string;
  readonly #db: DatabaseSync;
  readonly #views = new Map<string, ViewState>();
  /** The views written in the group() under way, if any. */
  #grouped: Set<ViewState> | undefined;
  #closed = false;

  private constructor(file: string, db: DatabaseSync) {
    this.file = file;
    this.#db = db;
  }

  /** Opens (or creates) the store in `file`, or in memory for ':memory:'. */
  static open(file = ':memory:', options: ViewStoreOptions = {}): ViewStore {
    if (file !== ':memory:') fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    const db = new DatabaseSync(file);
    try {
      if (file !== ':memory:') db.exec('PRAGMA journal_mode = WAL');
      db.exec(`PRAGMA synchronous = ${options.durability === 'normal' ? 'NORMAL' : 'FULL'}`);
      db.exec('PRAGMA cache_size = -32768');
      db.exec(`PRAGMA busy_timeout = ${Math.max(0, Math.floor(options.busyTimeoutMs ?? 5000))}`);
      const version = Number((db.prepare('PRAGMA user_version').get() as { user_version: number }).user_version);
      if (version > FORMAT_VERSION) {
        throw new DefiniteError('store_version', `${file} was written by a newer Sluice (store format ${version}; this one reads ${FORMAT_VERSION})`, 'upgrade Sluice, or remove the file to rebuild the views from the log');
      }
      db.exec(`CREATE TABLE IF NOT EXISTS sluice_views (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        definition TEXT NOT NULL,
        step INTEGER,
        frontier TEXT,
        rows INTEGER NOT NULL DEFAULT 0)`);
      if (version === 0) db.exec(`PRAGMA user_version = ${FORMAT_VERSION}`);
    } catch (error) {
      db.close();
      throw error;
    }
    const store = new ViewStore(file, db);
    const saved = db.prepare('SELECT id, name, definition, step, frontier, rows FROM sluice_views ORDER BY id').all() as Array<{ id: number; name: string; definition: string; step: number | null; frontier: string | null; rows: number }>;
    for (const row of saved) {
      const definition = JSON.parse(row.definition) as { columns: SinkColumn[]; key: number[] | null };
      const state = store.#state(row.id, row.name, { name: row.name, columns: definition.columns, ...(definition.key ? { key: definition.key } : {}) });
      state.step = row.step ?? undefined;
      state.frontier = row.frontier ?? undefined;
      state.rows = row.rows;
      store.#views.set(row.name, state);
    }
    return store;
  }

  #state(id: number, name: string, target: SinkTarget): ViewState {
    const layouts = target.columns.map((column, i) => columnLayout(column.type, i, () => `view "${name}", column "${column.name}"`));
    const key = target.key && target.key.length > 0 ? [...target.key] : undefined;
    return {
      id,
      name,
      table: `v${id}`,
      columns: target.columns.map((c) => ({ name: c.name, type: c.type })),
      key,
      layouts,
      idColumns: key ?? target.columns.map((_, i) => i),
      hasInterval: target.columns.some((c) => c.type.kind === 'interval'),
      step: undefined,
      frontier: undefined,
      rows: 0,
      pending: undefined,
      dropped: false,
      statements: undefined,
      reads: new Map(),
    };
  }

  /**
   * The sink that maintains view `target.name` here: creates its table on first use, resumes it
   * when it exists with the same columns and key. A view stored with other columns or another
   * key is refused: drop it first (its rows are then rebuilt from the log).
   */
  sink(target: SinkTarget): Sink {
    this.#checkOpen();
    validateTarget(target);
    let state = this.#views.get(target.name);
    if (state) {
      const stored = definitionOf({ name: state.name, columns: state.columns, ...(state.key ? { key: state.key } : {}) });
      if (stored !== definitionOf(target)) {
        throw new DefiniteError(
          'store_schema_changed',
          `view "${target.name}" is stored with other columns or another key than it now has`,
          `drop it from the store (ViewStore.drop) so it is rebuilt from the log, or give the new definition another name`,
        );
      }
    } else state = this.#create(target);
    const view = state;
    return {
      committed: () => (view.step === undefined || view.dropped ? undefined : { step: view.step, frontier: view.frontier! }),
      write: (batch: SinkBatch) => this.#apply(view, batch),
      // The store owns the connection: closing one view's sink has nothing to release.
      close: () => {},
    };
  }

  #create(target: SinkTarget): ViewState {
    this.#notInGroup(`creating view "${target.name}"`);
    const db = this.#db;
    try {
      db.exec('BEGIN IMMEDIATE');
      const { id } = db.prepare('INSERT INTO sluice_views (name, definition) VALUES (?, ?) RETURNING id').get(target.name, definitionOf(target)) as { id: number };
      const state = this.#state(Number(id), target.name, target);
      const columns = state.layouts.flatMap((layout) => layout.declarations);
      db.exec(`CREATE TABLE ${state.table} (_id TEXT PRIMARY KEY, ${columns.map((c) => c + ', ').join('')}_count INTEGER NOT NULL) WITHOUT ROWID`);
      db.exec(`CREATE INDEX ${state.table}_multi ON ${state.table} (_count) WHERE _count > 1`);
      if (state.key) db.exec(`CREATE INDEX ${state.table}_key ON ${state.table} (${state.key.map((i) => state.layouts[i]!.compareColumn).join(', ')})`);
      db.exec('COMMIT');
      this.#views.set(target.name, state);
      return state;
    } catch (error) {
      if (db.isTransaction) db.exec('ROLLBACK');
      throw error instanceof SluiceError ? error : sqliteFailure(`view "${target.name}" could not be created`, error);
    }
  }

  /** The views in the store. */
  views(): StoredView[] {
    this.#checkOpen();
    return [...this.#views.values()].map((state) => this.describe(state.name));
  }

  /** One view's definition, committed step and row count. */
  describe(view: string): StoredView {
    const state = this.#view(view);
    return {
      name: state.name,
      columns: state.columns,
      ...(state.key ? { key: state.key } : {}),
      ...(state.step !== undefined ? { step: state.step, frontier: state.frontier! } : {}),
      rows: state.rows,
    };
  }

  has(view: string): boolean {
    return this.#views.has(view);
  }

  /** The view's last committed step and frontier, or undefined before its first batch. */
  committed(view: string): { step: number; frontier: string } | undefined {
    const state = this.#view(view);
    return state.step === undefined ? undefined : { step: state.step, frontier: state.frontier! };
  }

  /** The view's rows, each copy counted (inside a group, with the group's writes so far). */
  count(view: string): number {
    const state = this.#view(view);
    return (state.pending ?? state).rows;
  }

  /** Removes a view and its rows. Sinks already made for it refuse further writes. */
  drop(view: string): void {
    const state = this.#view(view);
    this.#notInGroup(`dropping view "${view}"`);
    const db = this.#db;
    try {
      db.exec('BEGIN IMMEDIATE');
      db.exec(`DROP TABLE ${state.table}`);
      db.prepare('DELETE FROM sluice_views WHERE id = ?').run(state.id);
      db.exec('COMMIT');
    } catch (error) {
      if (db.isTransaction) db.exec('ROLLBACK');
      throw sqliteFailure(`view "${view}" could not be dropped`, error);
    }
    state.dropped = true;
    state.statements = undefined;
    state.reads.clear();
    this.#views.delete(view);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const state of this.#views.values()) {
      state.statements = undefined;
      state.reads.clear();
    }
    this.#db.close();
  }

  // -------------------------------------------------------------------------------------------
  // Writing.

  /**
   * Runs `fn` (synchronous) in one transaction: the sink writes it makes commit together, with
   * one disk sync for all of them — the way to write every view's batch of a step. A write that
   * fails inside is undone alone (a savepoint) and throws to `fn`, which may carry on with the
   * other views; if `fn` throws, nothing of the group is committed. Reads inside see the group's
   * writes; `committed()` changes only once the group commits.
   */
  group<T>(fn: () => T): T {
    this.#checkOpen();
    if (this.#grouped) throw new DefiniteError('store_group', 'ViewStore.group() calls do not nest', 'make the sink writes of one step inside one group() call');
    const db = this.#db;
    const touched = new Set<ViewState>();
    try {
      db.exec('BEGIN IMMEDIATE');
    } catch (error) {
      throw sqliteFailure('a group of writes could not start', error);
    }
    this.#grouped = touched;
    let result: T;
    try {
      result = fn();
      if (result instanceof Promise) throw new DefiniteError('store_group', 'the function given to ViewStore.group() returned a promise', 'group() runs synchronous writes: await nothing inside it');
      db.exec('COMMIT');
    } catch (error) {
      if (db.isTransaction) db.exec('ROLLBACK');
      for (const state of touched) state.pending = undefined;
      throw error instanceof SluiceError ? error : sqliteFailure('a group of writes could not be committed', error);
    } finally {
      this.#grouped = undefined;
    }
    for (const state of touched) {
      const pending = state.pending!;
      state.step = pending.step;
      state.frontier = pending.frontier;
      state.rows = pending.rows;
      state.pending = undefined;
    }
    return result;
  }

  /** Applies one batch to a view: the sink's `write`. */
  #apply(state: ViewState, batch: SinkBatch): void {
    this.#checkOpen();
    if (state.dropped) throw new DefiniteError('store_dropped', `view "${state.name}" was dropped from the store`, 'make a new sink for it (ViewStore.sink), which starts it empty');
    validateBatch(state, batch);
    const current = state.pending ?? state;
    if (current.step !== undefined && batch.step <= current.step) return; // a replay: already applied
    const statements = (state.statements ??= this.#prepare(state));
    const { rows, weights } = batch;
    const db = this.#db;
    const group = this.#grouped;
    let total = current.rows;
    try {
      db.exec(group ? 'SAVEPOINT sluice_write' : 'BEGIN IMMEDIATE');
      const params: Stored[] = [];
      // A keyed view's changed row (delete old, insert new under the same key) is one UPDATE.
      let done: Uint8Array | undefined;
      if (state.key && statements.update) {
        const update = statements.update;
        const key = state.key;
        const deleted = new Map<string, number>();
        for (let i = 0; i < rows.length; i++) if (weights[i] === -1) deleted.set(this.#rowId(state, rows[i]!), i);
        if (deleted.size > 0) {
          for (let i = 0; i < rows.length; i++) {
            if (weights[i] !== 1) continue;
            const row = rows[i]!;
            const id = this.#rowId(state, row);
            const old = deleted.get(id);
            if (old === undefined) continue;
            params.length = 0;
            for (let c = 0; c < state.layouts.length; c++) if (!key.includes(c)) state.layouts[c]!.encode(row[c] ?? null, params);
            params.push(id);
            if (update.run(...params).changes === 1) {
              done ??= new Uint8Array(rows.length);
              done[i] = 1;
              done[old] = 1;
            }
          }
        }
      }
      // Deletes first, so an update of a keyed row (delete old, insert new) never meets itself.
      for (let i = 0; i < rows.length; i++) {
        const weight = weights[i]!;
        if (weight >= 0 || done?.[i]) continue;
        const row = rows[i]!;
        const id = this.#rowId(state, row);
        const copies = -weight;
        if (statements.deleteExact.run(id, copies).changes === 0 && statements.decrement.run(copies, id, copies).changes === 0) {
          const held = statements.countOf.get(id) as unknown as [bigint] | undefined;
          throw new DefiniteError(
            'store_missing_row',
            `view "${state.name}": step ${batch.step} deletes ${copies === 1 ? 'a row' : `${copies} copies of a row`} the store ${held ? `holds ${held[0]} of` : 'does not hold'}: ${JSON.stringify(objectRow(row, state.columns))}`,
            'the store and the view disagree (was the store file replaced?): drop the view from the store so it is rebuilt from the log',
          );
        }
        total += weight;
      }
      for (let i = 0; i < rows.length; i++) {
        const weight = weights[i]!;
        if (weight <= 0 || done?.[i]) continue;
        const row = rows[i]!;
        params.length = 0;
        params.push(this.#rowId(state, row));
        for (let c = 0; c < state.layouts.length; c++) state.layouts[c]!.encode(row[c] ?? null, params);
        params.push(weight);
        if (statements.insert.run(...params).changes === 0) {
          const key = Object.fromEntries(state.key!.map((k) => [state.columns[k]!.name, objectRow(row, state.columns)[state.columns[k]!.name]]));
          throw new DefiniteError(
            'store_key_conflict',
            `view "${state.name}": step ${batch.step} inserts a row whose key ${JSON.stringify(key)} already holds a different row`,
            'the columns declared as the view\'s key do not identify its rows: declare the view without a key, or fix the key',
          );
        }
        total += weight;
      }
      statements.commit.run(batch.step, batch.frontier, total, state.id);
      db.exec(group ? 'RELEASE sluice_write' : 'COMMIT');
    } catch (error) {
      if (group) {
        if (db.isTransaction) db.exec('ROLLBACK TO sluice_write; RELEASE sluice_write');
      } else if (db.isTransaction) db.exec('ROLLBACK');
      if (error instanceof SluiceError) throw error;
      throw sqliteFailure(`view "${state.name}": step ${batch.step} could not be stored`, error);
    }
    if (group) {
      state.pending = { step: batch.step, frontier: batch.frontier, rows: total };
      group.add(state);
      return;
    }
    state.step = batch.step;
    state.frontier = batch.frontier;
    state.rows = total;
  }

  #prepare(state: ViewState): Statements {
    const db = this.#db;
    const t = state.table;
    const stored = state.layouts.flatMap((layout) => layout.declarations.map((d) => d.split(' ')[0]!));
    const updatable = state.layouts.filter((_, i) => !state.key?.includes(i)).flatMap((layout) => layout.declarations.map((d) => d.split(' ')[0]!));
    let conflict = 'DO UPDATE SET _count = _count + excluded._count';
    if (state.key) {
      // A keyed row may only gain copies of itself: a different row under its key is refused.
      const rest = state.layouts.filter((_, i) => !state.key!.includes(i)).map((layout) => `${t}.${layout.compareColumn} IS excluded.${layout.compareColumn}`);
      if (rest.length > 0) conflict += ` WHERE ${rest.join(' AND ')}`;
    }
    const insert = db.prepare(`INSERT INTO ${t} (_id, ${stored.map((c) => c + ', ').join('')}_count) VALUES (?, ${stored.map(() => '?, ').join('')}?) ON CONFLICT (_id) ${conflict}`);
    const countOf = db.prepare(`SELECT _count FROM ${t} WHERE _id = ?`);
    countOf.setReadBigInts(true);
    countOf.setReturnArrays(true);
    return {
      insert,
      // Only the columns outside the key: the key's index is then left alone.
      update: updatable.length === 0 ? undefined : db.prepare(`UPDATE ${t} SET ${updatable.map((c) => `${c} = ?`).join(', ')} WHERE _id = ? AND _count = 1`),
      deleteExact: db.prepare(`DELETE FROM ${t} WHERE _id = ? AND _count = ?`),
      decrement: db.prepare(`UPDATE ${t} SET _count = _count - ? WHERE _id = ? AND _count > ?`),
      countOf,
      commit: db.prepare('UPDATE sluice_views SET step = ?, frontier = ?, rows = ? WHERE id = ?'),
    };
  }

  #rowId(state: ViewState, row: Row): string {
    if (!state.hasInterval) return encodeKey(row, state.idColumns);
    // Intervals by their span: '1 mon' and '30 days' are one SQL value, so one row id.
    return encodeKey(row.map((value) => (value instanceof Interval ? value.span() : value)), state.idColumns);
  }

  // -------------------------------------------------------------------------------------------
  // Reading.

  /** A page of a view's rows as objects (objectRow), each copy of a duplicated row given. */
  read(view: string, options: ReadOptions = {}): ReadResult {
    const state = this.#view(view);
    const limit = options.limit ?? -1;
    const offset = options.offset ?? 0;
    if (options.limit !== undefined && !(Number.isSafeInteger(limit) && limit >= 0)) throw new DefiniteError('store_read_options', `limit must be a whole number ≥ 0, not ${options.limit}`, 'write limit=100');
    if (!(Number.isSafeInteger(offset) && offset >= 0)) throw new DefiniteError('store_read_options', `offset must be a whole number ≥ 0, not ${options.offset}`, 'write offset=0');
    const { where, params } = this.#where(state, options.filters);
    const order = this.#order(state, options.orderBy);
    const values = state.layouts.map((layout) => layout.valueColumn);
    const select = values.map((c) => c + ', ').join('');
    const result: ReadResult = { rows: [] };
    const current = state.pending ?? state;
    if (current.step !== undefined) {
      result.step = current.step;
      result.position = current.frontier!;
    }
    if (limit === 0 && !options.total) return result;

    const duplicates = this.#statement(state, `SELECT 1 FROM ${state.table} WHERE _count > 1 LIMIT 1`).get() !== undefined;
    if (!duplicates) {
      // Past the first page, pick the page's row ids first (an index-only skip when the order has
      // an index), then fetch just those rows.
      const sql =
        offset === 0
          ? `SELECT ${select}1 FROM ${state.table}${where} ORDER BY ${order} LIMIT ? OFFSET ?`
          : `SELECT ${select}1 FROM ${state.table} WHERE _id IN (SELECT _id FROM ${state.table}${where} ORDER BY ${order} LIMIT ? OFFSET ?) ORDER BY ${order}`;
      const rows = this.#statement(state, sql).all(...params, limit, offset) as unknown as unknown[][];
      for (const stored of rows) result.rows.push(this.#object(state, stored));
    } else {
      // Each stored row covers positions [_end − _count, _end) of the expanded result.
      const rows = this.#statement(
        state,
        `SELECT * FROM (SELECT ${select}_count, sum(_count) OVER (ORDER BY ${order} ROWS UNBOUNDED PRECEDING) AS _end FROM ${state.table}${where}) WHERE _end > ? ORDER BY _end LIMIT ?`,
      ).all(...params, offset, limit) as unknown as unknown[][];
      const stop = limit < 0 ? Infinity : offset + limit;
      for (const stored of rows) {
        const end = Number(stored[stored.length - 1]);
        const count = Number(stored[stored.length - 2]);
        const from = Math.max(end - count, offset);
        const to = Math.min(end, stop);
        if (to <= from) continue;
        const object = this.#object(state, stored);
        for (let k = from; k < to; k++) result.rows.push(object);
      }
    }
    if (options.total) {
      if (where === '') result.total = current.rows;
      else result.total = Number((this.#statement(state, `SELECT coalesce(sum(_count), 0) FROM ${state.table}${where}`).get(...params) as unknown as unknown[])[0]);
    }
    return result;
  }

  /**
   * The row of a keyed view with these key values (in key order), or undefined. A key value may
   * be given as text for a non-text column; it is then read with the column's type.
   */
  get(view: string, key: readonly Value[]): Record<string, unknown> | undefined {
    const state = this.#view(view);
    if (!state.key) throw new DefiniteError('store_no_key', `view "${view}" has no key`, 'read it with column filters instead');
    if (key.length !== state.key.length) {
      throw new DefiniteError('store_no_key', `view "${view}" has a key of ${state.key.length} column(s) (${state.key.map((k) => state.columns[k]!.name).join(', ')}), not ${key.length}`, 'give one value per key column, in order');
    }
    const row: Value[] = state.columns.map(() => null);
    state.key.forEach((column, i) => {
      const value = key[i]!;
      const { name, type } = state.columns[column]!;
      row[column] = typeof value === 'string' && type.kind !== 'text' && type.kind !== 'varchar' ? parseFilterValue(value, type, name, view) : value;
    });
    const values = state.layouts.map((layout) => layout.valueColumn);
    const stored = this.#statement(state, `SELECT ${values.map((c) => c + ', ').join('')}1 FROM ${state.table} WHERE _id = ?`).get(this.#rowId(state, row)) as unknown as unknown[] | undefined;
    return stored && this.#object(state, stored);
  }

  /** Every row of a view with its count, as values, in row id order (for checks and tests). */
  entries(view: string): Array<{ row: Value[]; count: number }> {
    const state = this.#view(view);
    const values = state.layouts.map((layout) => layout.valueColumn);
    const rows = this.#statement(state, `SELECT ${values.map((c) => c + ', ').join('')}_count FROM ${state.table} ORDER BY _id`).all() as unknown as unknown[][];
    return rows.map((stored) => ({ row: state.layouts.map((layout, i) => layout.decode(stored[i])), count: Number(stored[stored.length - 1]) }));
  }

  #object(state: ViewState, stored: unknown[]): Record<string, unknown> {
    const row: Value[] = new Array(state.layouts.length);
    for (let i = 0; i < row.length; i++) row[i] = state.layouts[i]!.decode(stored[i]);
    return objectRow(row, state.columns);
  }

  #where(state: ViewState, filters: Readonly<Record<string, string>> | undefined): { where: string; params: Stored[] } {
    const clauses: string[] = [];
    const params: Stored[] = [];
    for (const [name, text] of Object.entries(filters ?? {})) {
      const index = this.#column(state, name, 'filter');
      const layout = state.layouts[index]!;
      const column = state.columns[index]!;
      if (!layout.filterable) throw new DefiniteError('store_filter_value', `column "${name}" of view "${state.name}" (${typeName(column.type)}) cannot be filtered on`, 'filter on another column');
      const value = parseFilterValue(String(text), column.type, name, state.name);
      // `column = value` as in SQL: a NULL never matches (the text forms never give NULL).
      clauses.push(`${layout.compareColumn} = ?`);
      params.push(layout.compareValue(value));
    }
    return { where: clauses.length > 0 ? ` WHERE ${clauses.join(' AND ')}` : '', params };
  }

  #order(state: ViewState, orderBy: ReadOptions['orderBy']): string {
    if (!orderBy || orderBy.length === 0) {
      return state.key ? `${state.key.map((k) => state.layouts[k]!.compareColumn + ', ').join('')}_id` : '_id';
    }
    const terms = orderBy.map(({ column, descending }) => {
      const layout = state.layouts[this.#column(state, column, 'order by')]!;
      if (!layout.filterable) throw new DefiniteError('store_read_options', `column "${column}" of view "${state.name}" cannot be ordered by`, 'order by another column');
      return `${layout.compareColumn} ${descending ? 'DESC NULLS FIRST' : 'ASC NULLS LAST'}`;
    });
    return `${terms.join(', ')}, _id`;
  }

  #column(state: ViewState, name: string, what: string): number {
    const index = state.columns.findIndex((c) => c.name === name);
    if (index >= 0) return index;
    const names = state.columns.map((c) => c.name);
    const guess = closest(name, names);
    throw new DefiniteError(
      'store_column_unknown',
      `cannot ${what} column "${name}": view "${state.name}" has no such column`,
      guess ? `did you mean "${guess}"? Its columns are ${names.join(', ')}` : `its columns are ${names.join(', ') || '(none)'}`,
    );
  }

  #statement(state: ViewState, sql: string): StatementSync {
    let statement = state.reads.get(sql);
    if (!statement) {
      if (state.reads.size >= 64) state.reads.clear();
      statement = this.#db.prepare(sql);
      statement.setReadBigInts(true);
      statement.setReturnArrays(true);
      state.reads.set(sql, statement);
    }
    return statement;
  }

  #view(view: string): ViewState {
    this.#checkOpen();
    const state = this.#views.get(view);
    if (state) return state;
    const guess = closest(view, this.#views.keys());
    throw new DefiniteError(
      'store_view_unknown',
      `view "${view}" does not exist`,
      guess ? `did you mean "${guess}"?` : this.#views.size > 0 ? `the views are ${[...this.#views.keys()].join(', ')}` : 'no view has been created yet',
    );
  }

  #notInGroup(what: string): void {
    if (this.#grouped) throw new DefiniteError('store_group', `${what} cannot happen inside ViewStore.group()`, 'create and drop views before or after a group of writes');
  }

  #checkOpen(): void {
    if (this.#closed) throw new DefiniteError('store_closed', `the view store ${this.file} is closed`, 'open it again');
  }
}

/** SQLite's own failures (busy, disk full, I/O): nothing was applied, and the write can be retried. */
function sqliteFailure(what: string, error: unknown): TransientError {
  return new TransientError(
    'store_write',
    `${what}: ${(error as Error)?.message ?? String(error)}`,
    'nothing of it was applied and it is retried; check free disk space, and that no other process writes the view store',
    { cause: error },
  );
}

function validateTarget(target: SinkTarget): void {
  if (typeof target.name !== 'string' || target.name === '') throw new DefiniteError('store_target', 'a stored view needs a name', 'name the view');
  for (const k of target.key ?? []) {
    if (!Number.isInteger(k) || k < 0 || k >= target.columns.length) {
      throw new DefiniteError('store_target', `view "${target.name}": key column ${k} is not one of its ${target.columns.length} columns`, 'key columns are numbered from 0');
    }
  }
  if (new Set(target.key ?? []).size !== (target.key ?? []).length) throw new DefiniteError('store_target', `view "${target.name}": a key column is listed twice`, 'list each key column once');
}

function validateBatch(state: ViewState, batch: SinkBatch): void {
  if (!Number.isSafeInteger(batch.step) || batch.step < 1) throw new DefiniteError('store_batch', `view "${state.name}": step ${batch.step} is not a whole number ≥ 1`, 'steps are numbered from 1');
  if (batch.rows.length !== batch.weights.length) throw new DefiniteError('store_batch', `view "${state.name}": step ${batch.step} has ${batch.rows.length} rows but ${batch.weights.length} weights`, 'give one weight per row');
  for (const weight of batch.weights) {
    if (!Number.isSafeInteger(weight)) throw new DefiniteError('store_batch', `view "${state.name}": step ${batch.step} has weight ${weight}, not a whole number`, 'weights are whole numbers: +n inserts, −n deletes');
  }
}
