/**
 * The embedded database: Sluice inside a Node program (DESIGN.md, "Embedded API"), in memory.
 *
 *   const db = await open();
 *   await db.execute(`CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint, amount numeric);
 *                     CREATE VIEW totals AS SELECT customer_id, sum(amount) AS total FROM orders GROUP BY customer_id`);
 *   const position = await db.insert('orders', [{ id: 1, customer_id: 7, amount: '9.50' }]);
 *   await db.settle(position);
 *   const rows = await db.query('SELECT * FROM totals ORDER BY total DESC LIMIT 10');
 *
 * Every view is an engine circuit kept up to date as changes arrive: each change to a table is a
 * step of every circuit that reads it, in creation order, and a view's output delta is the input
 * delta of the views that read it. A one-shot SELECT is a transient view over the current
 * contents. (The durable data directory, sources and sinks come with the pipeline runtime.)
 *
 * Invariants:
 * - A statement either applies whole or not at all: its rows are checked (types, NOT NULL,
 *   primary keys) before any table or view changes.
 * - A view whose step fails (1/0 on a new row) stops with that error, reported when it is read;
 *   the tables and other views carry on.
 * - SQL INSERT follows PostgreSQL (a duplicate primary key is an error); the `insert` method is an
 *   upsert on keyed tables (DESIGN.md: an insert of an existing key is an update).
 */

import type { Node } from 'libpg-query';
import type { DurableDatabase } from './durable.ts';
import { pushIterator } from './push-iterator.ts';
import { ByteReader, ByteWriter, Decimal, DefiniteError, Json, redactUrl, Timestamp, type Row, type Value } from '../core/index.ts';
import { Circuit, CircuitBuilder, compareBySortKeys, ZSet, type SortKey } from '../engine/index.ts';
import { objectChanges, objectRow } from '../sinks/object-row.ts';
import {
  Binder,
  BindError,
  closest,
  coerce,
  columnType,
  compileExpr,
  encodeKey,
  explainQuery,
  inputValue,
  lower,
  optimize,
  parsePipeline,
  parsePipelineAsync,
  SqlError,
  tablesOf,
  typeLabel,
  UNIT_INPUT,
  uniqueKey,
  type Catalog,
  type Column,
  type Expr,
  type PipelineStatement,
  type Query,
  type Rel,
  type SqlType,
  type TableSchema,
} from '../sql/index.ts';

export interface OpenOptions {
  /** The data directory; everything is kept in memory without one. */
  data?: string;
}

export interface StatementResult {
  /** SELECT, INSERT, UPDATE, DELETE, CREATE TABLE, CREATE VIEW, DROP TABLE, … */
  command: string;
  /** Rows returned (SELECT) or changed (INSERT, UPDATE, DELETE). */
  rowCount: number;
  columns?: Array<{ name: string; type: string }>;
  /** SELECT results as raw values (Decimal, Timestamp, Json, bigint …), in ORDER BY order. */
  rows?: Value[][];
}

export interface LiveQuery {
  columns: Array<{ name: string; type: string }>;
  /** The current result, in ORDER BY order, as raw values; throws if the query's view stopped. */
  rows(): Value[][];
  close(): void;
}

export interface CheckEntry {
  kind: 'table' | 'view' | 'source' | 'sink' | 'drop' | 'query' | 'statement';
  name: string;
  detail: string;
  /** The optimized plan (views and queries). */
  plan?: string;
  /** What could not be checked yet, and why. */
  note?: string;
}

export interface Change {
  op: 'insert' | 'delete';
  row: Record<string, unknown>;
}

export interface ChangeStep {
  position: string;
  changes: Change[];
}

type Bag = Map<string, { row: Row; count: number }>;

interface TableState {
  schema: TableSchema;
  rows: Bag;
  /** The column names, for checking appended objects (made on first use). */
  columnNames?: Set<string>;
  defaults: Array<Expr | undefined>;
  /** UNIQUE constraints and unique indexes: how many rows hold each non-NULL key. */
  uniques: Array<{ name: string; columns: number[]; counts: Map<string, number> }>;
}

interface ViewState {
  name: string;
  query: Query;
  columns: Column[];
  circuit: Circuit;
  /** The tables and views its circuit reads. */
  reads: Set<string>;
  rows: Bag;
  /** Why the view has no current result: its last step (or rebuild) failed. Its rows are the last good ones. */
  failure: Error | undefined;
  /** A failure no change can cure (what it reads was dropped): never rebuilt. */
  permanent?: boolean;
  sortKeys: SortKey[];
  subscribers: Set<(step: ChangeStep) => void>;
}

/**
 * Opens an embedded database: in memory without `data`; with `data`, the pipeline runtime runs
 * in-process, durable in that directory (durable.ts).
 */
export async function open(options: { data: string }): Promise<DurableDatabase>;
export async function open(options?: { data?: undefined }): Promise<Database>;
export async function open(options: OpenOptions = {}): Promise<Database | DurableDatabase> {
  if (options.data !== undefined) {
    const { DurableDatabase } = await import('./durable.ts');
    return DurableDatabase.open(options.data);
  }
  await parsePipelineAsync('SELECT 1');
  return new Database();
}

export class Database {
  readonly #tables = new Map<string, TableState>();
  readonly #views = new Map<string, ViewState>();
  readonly #indexes = new Set<string>();
  readonly #binder: Binder;
  #position = 0;
  #closed = false;

  constructor() {
    const catalog: Catalog = {
      table: (name) => this.#tables.get(name)?.schema,
      view: (name) => {
        const view = this.#views.get(name);
        return view ? { name: view.name, columns: view.columns } : undefined;
      },
      names: () => [...this.#tables.keys(), ...this.#views.keys()],
    };
    this.#binder = new Binder(catalog);
  }

  /** Runs SQL statements in order; throws at the first failing one (those before it stay applied). */
  async execute(sql: string, file = '<sql>'): Promise<StatementResult[]> {
    this.#checkOpen();
    const statements = await parsePipelineAsync(sql, file);
    const results: StatementResult[] = [];
    for (const statement of statements) results.push(this.#run(statement, sql, file));
    return results;
  }

  /** Runs a SELECT and returns its rows as JSON-friendly objects (numeric as text, timestamps as PostgreSQL prints them). */
  async query(sql: string): Promise<Array<Record<string, unknown>>> {
    const results = await this.execute(sql);
    const last = results.at(-1);
    if (!last?.rows || !last.columns) throw new DefiniteError('sql_not_query', 'query() needs a SELECT', 'use execute() for other statements');
    const columns = last.columns;
    const types = this.#lastTypes;
    const sinkColumns = columns.map((c, i) => ({ name: c.name, type: types[i]!.type as SqlType }));
    return last.rows.map((row) => objectRow(row, sinkColumns));
  }

  /** The rows of a view, in its ORDER BY order, as raw values. */
  rows(view: string): Value[][] {
    const state = this.#view(view);
    return this.#ordered(state);
  }

  /**
   * A live query: a SELECT maintained like a view (each change to what it reads is a step of its
   * circuit) but unnamed, so any select list goes (duplicate or unnamed columns). `rows()` gives
   * its current result in its ORDER BY order; `close()` stops maintaining it.
   */
  async live(sql: string): Promise<LiveQuery> {
    this.#checkOpen();
    const statements = await parsePipelineAsync(sql, '<sql>');
    const statement = statements[0];
    if (statements.length !== 1 || statement?.kind !== 'postgres' || nodeOf(statement.node)[0] !== 'SelectStmt') {
      throw new DefiniteError('sql_not_query', 'live() needs one SELECT', 'pass a single SELECT statement');
    }
    let view: ViewState;
    try {
      view = this.#materialize(`$live${this.#liveCount++}`, this.#bind(statement.node, statement, sql, '<sql>'), undefined);
    } catch (error) {
      if (error instanceof BindError) throw new SqlError(error.code, '<sql>', sql, statement.span.offset + Math.max(error.location, 0), error.message, error.hint);
      throw error;
    }
    this.#live.add(view);
    return {
      columns: view.columns.map((c) => ({ name: c.name, type: typeLabel(c.type) })),
      rows: () => this.#ordered(view),
      close: () => {
        this.#live.delete(view);
      },
    };
  }

  readonly #live = new Set<ViewState>();
  #liveCount = 0;

  /** Adds rows to a table (objects by column name); on keyed tables an existing key is updated. */
  async insert(table: string, rows: ReadonlyArray<Record<string, unknown>>): Promise<string> {
    this.#checkOpen();
    const state = this.#table(table);
    const converted = rows.map((row, i) => this.#rowFromObject(state, row, i));
    const delta = new ZSet();
    const key = keyOf(state.schema);
    const seen = new Map<string, Row>();
    for (const row of converted) {
      const k = key(row);
      const previous = seen.get(k) ?? state.rows.get(k)?.row;
      if (state.schema.primaryKey && previous) delta.add(previous, -1);
      delta.add(row, 1);
      if (state.schema.primaryKey) seen.set(k, row);
    }
    this.#apply(state, delta);
    return this.#token();
  }

  /** Removes rows: by primary key on keyed tables (other fields ignored), else by whole row (one occurrence each). */
  async delete(table: string, rows: ReadonlyArray<Record<string, unknown>>): Promise<string> {
    this.#checkOpen();
    const state = this.#table(table);
    const delta = new ZSet();
    const key = keyOf(state.schema);
    const removed = new Map<string, number>();
    for (const row of this.deletionRows(table, rows)) {
      const k = key(row);
      const existing = state.rows.get(k);
      const already = removed.get(k) ?? 0;
      if (existing && existing.count > already) {
        delta.add(existing.row, -1);
        removed.set(k, already + 1);
      }
    }
    this.#apply(state, delta);
    return this.#token();
  }

  /**
   * What delete() removes, as rows: on keyed tables the key (other columns NULL; a missing key
   * column is row_invalid), else the whole row.
   */
  deletionRows(table: string, objects: ReadonlyArray<Record<string, unknown>>): Row[] {
    const state = this.#table(table);
    const pk = state.schema.primaryKey;
    if (!pk) return objects.map((object, i) => this.#rowFromObject(state, object, i));
    return objects.map((object, i) => {
      const keyRow: Value[] = state.schema.columns.map(() => null);
      for (const index of pk) {
        const column = state.schema.columns[index]!;
        if (!(column.name in object)) throw new DefiniteError('row_invalid', `row ${i}: the key column "${column.name}" is missing`, `deleting from a keyed table needs its key: ${pk.map((p) => state.schema.columns[p]!.name).join(', ')}`);
        keyRow[index] = fromJs(object[column.name], column.type, i, column.name);
      }
      return keyRow;
    });
  }

  /** Resolves once every view reflects `position` (in memory, changes apply before their call returns). */
  async settle(position?: string): Promise<void> {
    if (position !== undefined) {
      const n = decodeToken(position);
      if (n > this.#position) throw new DefiniteError('position_invalid', `position ${position} is ahead of this database`, 'use a position returned by this database');
    }
  }

  /** The changes of a view from now on, one item per step. */
  changes(view: string): AsyncIterableIterator<ChangeStep> {
    const state = this.#view(view);
    const { iterator, push, end } = pushIterator<ChangeStep>(() => {
      state.subscribers.delete(push);
      this.#closers.delete(end);
    });
    state.subscribers.add(push);
    this.#closers.add(end);
    return iterator;
  }

  readonly #closers = new Set<() => void>();

  async close(): Promise<void> {
    this.#closed = true;
    for (const close of this.#closers) close();
    this.#tables.clear();
    this.#views.clear();
  }

  /** The optimized plan of a query, as `sluice check` prints it. */
  async explain(sql: string): Promise<string> {
    const statements = await parsePipelineAsync(sql);
    return statements
      .map((statement) => {
        if (statement.kind !== 'postgres') return `-- ${statement.kind}`;
        const [kind, body] = nodeOf(statement.node);
        const select = kind === 'ViewStmt' ? body.query : kind === 'SelectStmt' ? statement.node : undefined;
        if (!select) return `-- ${kind}`;
        return explainQuery(this.#bind(select, statement, sql, '<sql>'));
      })
      .join('\n\n');
  }

  /**
   * Validates a pipeline file without running it (`sluice check`): tables and views are created
   * here (empty), each view's optimized plan is returned; sources and sinks are checked for what
   * can be known without connecting. Throws the first error, positioned in the file.
   */
  async check(text: string, file = '<sql>'): Promise<CheckEntry[]> {
    const entries: CheckEntry[] = [];
    const sources = new Map<string, string[]>();
    for (const statement of await parsePipelineAsync(text, file)) {
      if (statement.kind === 'createSource') {
        const tables = (statement.options.get('tables') ?? '').split(',').map((t) => t.trim()).filter(Boolean);
        sources.set(statement.name, tables);
        entries.push({ kind: 'source', name: statement.name, detail: `${statement.connector.toUpperCase()} ${redactUrl(statement.url)}${tables.length ? ` tables ${tables.join(', ')}` : ''}`, note: statement.connector === 'file' ? 'not checked: the file connector is not built' : 'sluice check connects to it for the preflight, below' });
        continue;
      }
      if (statement.kind === 'createSink') {
        const from = statement.from.join('.');
        const known = this.#views.has(from) || this.#tables.has(from) || sources.has(statement.from[0]!);
        if (!known) throw new SqlError('sql_relation', file, text, statement.span.offset, `sink "${statement.name}" reads "${from}", which is not defined above it`, didYouMeanRelation(from, [...this.#views.keys(), ...this.#tables.keys()]));
        entries.push({ kind: 'sink', name: statement.name, detail: `FROM ${from} INTO ${statement.target.toUpperCase()}${statement.url ? ` ${redactUrl(statement.url)}` : ''}`, note: 'not checked yet: sinks come with the pipeline runtime' });
        continue;
      }
      if (statement.kind === 'drop') {
        entries.push({ kind: 'drop', name: statement.name, detail: `DROP ${statement.object.toUpperCase()}` });
        continue;
      }
      const [kind, body] = nodeOf(statement.node);
      if (kind === 'ViewStmt') {
        const name = relationName(body.view);
        try {
          this.#run(statement, text, file);
        } catch (error) {
          // A view over a source's tables cannot be planned before the source tells their columns.
          const missing = /relation "([^"]+)" does not exist/.exec((error as Error).message)?.[1];
          if (missing && sources.has(missing.split('.')[0]!)) {
            entries.push({ kind: 'view', name, detail: `reads ${missing}`, note: "not planned yet: planned once the source's connector reads the table's columns" });
            continue;
          }
          throw error;
        }
        const view = this.#views.get(name)!;
        entries.push({ kind: 'view', name, detail: view.columns.map((c) => `${c.name} ${typeLabel(c.type)}`).join(', '), plan: explainQuery(view.query) });
        continue;
      }
      if (kind === 'SelectStmt') {
        entries.push({ kind: 'query', name: '', detail: statement.text.split('\n')[0]!, plan: explainQuery(this.#bind(statement.node, statement, text, file)) });
        continue;
      }
      const result = this.#run(statement, text, file);
      if (kind === 'CreateStmt') {
        const table = this.#tables.get(relationName(body.relation))!;
        entries.push({ kind: 'table', name: table.schema.name, detail: table.schema.columns.map((c, i) => `${c.name} ${typeLabel(c.type)}${table.schema.primaryKey?.includes(i) ? ' (key)' : c.notNull ? ' NOT NULL' : ''}`).join(', ') });
      } else entries.push({ kind: 'statement', name: '', detail: result.command });
    }
    return entries;
  }

  // -------------------------------------------------------------------------------------------

  #lastTypes: Column[] = [];

  #run(statement: PipelineStatement, text: string, file: string): StatementResult {
    if (statement.kind !== 'postgres') {
      throw new SqlError('not_built', file, text, statement.span.offset, `CREATE/DROP ${statement.kind === 'createSource' ? 'SOURCE' : statement.kind === 'createSink' ? 'SINK' : statement.object.toUpperCase()} needs the pipeline runtime (sluice up), which is not built yet`, 'the embedded API supports tables, views and queries for now');
    }
    try {
      return this.#statement(statement, text, file);
    } catch (error) {
      if (error instanceof BindError) {
        const at = error.location >= 0 ? statement.span.offset + error.location : statement.span.offset;
        throw new SqlError(error.code, file, text, at, error.message, error.hint);
      }
      if (error instanceof DefiniteError && !(error instanceof SqlError) && error.code !== 'engine.failed') {
        throw new SqlError(error.code, file, text, statement.span.offset, error.message, error.hint);
      }
      throw error;
    }
  }

  #statement(statement: Extract<PipelineStatement, { kind: 'postgres' }>, text: string, file: string): StatementResult {
    const [kind, body] = nodeOf(statement.node);
    switch (kind) {
      case 'SelectStmt': {
        const query = this.#bind(statement.node, statement, text, file);
        const rows = this.#evaluate(query).map((row) => row.slice(0, query.visible));
        const columns = query.rel.columns.slice(0, query.visible);
        this.#lastTypes = columns;
        return { command: 'SELECT', rowCount: rows.length, columns: columns.map((c) => ({ name: c.name, type: typeLabel(c.type) })), rows };
      }
      case 'CreateStmt':
        return this.#createTable(body);
      case 'ViewStmt':
        return this.#createView(body, statement, text, file);
      case 'InsertStmt':
        return this.#insertStatement(body);
      case 'UpdateStmt':
        return this.#updateStatement(body);
      case 'DeleteStmt':
        return this.#deleteStatement(body);
      case 'DropStmt':
        return this.#drop(body);
      case 'IndexStmt': {
        // An index speeds nothing up here (views keep their own state); a UNIQUE one is a
        // constraint, checked on the existing rows first. The name is remembered for DROP INDEX.
        const name = body.idxname ?? `${body.relation.relname}_idx`;
        const state = this.#table(relationName(body.relation));
        if (this.#indexes.has(name)) throw new DefiniteError('sql_duplicate', `relation "${name}" already exists`);
        if (body.unique) {
          const columns = ((body.indexParams ?? []) as Any[]).map((param) => {
            const column = param.IndexElem?.name as string | undefined;
            const index = column === undefined ? -1 : state.schema.columns.findIndex((c) => c.name === column);
            if (index < 0) throw new DefiniteError('sql_unsupported', column === undefined ? 'a UNIQUE index on an expression is not supported' : `column "${column}" does not exist`, 'index columns of the table by name');
            return index;
          });
          const counts = new Map<string, number>();
          for (const { row, count } of state.rows.values()) {
            if (columns.some((c) => row[c] === null)) continue;
            const key = encodeKey(row, columns);
            const total = (counts.get(key) ?? 0) + count;
            if (total > 1) throw new DefiniteError('sql_unique', `could not create unique index "${name}": key (${columns.map((c) => state.schema.columns[c]!.name).join(', ')})=(${columns.map((c) => String(row[c])).join(', ')}) is duplicated`, 'remove the duplicates first');
            counts.set(key, total);
          }
          state.uniques.push({ name, columns, counts });
        }
        this.#indexes.add(name);
        return { command: 'CREATE INDEX', rowCount: 0 };
      }
      case 'TransactionStmt':
        throw new DefiniteError('sql_unsupported', 'transactions (BEGIN/COMMIT) are not supported yet: each statement applies on its own', 'send the changes of one transaction in one insert() call');
      default:
        throw new DefiniteError('sql_unsupported', `${kind.replace(/Stmt$/, '')} statements are not supported`, 'Sluice runs CREATE TABLE / VIEW, INSERT, UPDATE, DELETE, DROP and SELECT');
    }
  }

  #bind(node: Node, _statement: unknown, _text: string, _file: string): Query {
    const query = this.#binder.query(node as Record<string, unknown>);
    return { ...query, rel: optimize(query.rel) };
  }

  /** Runs a query as a transient view over the current contents: its rows (all columns), ordered. */
  #evaluate(query: Query): Row[] {
    const circuit = buildCircuit(query.rel);
    const output = circuit.step(this.#contents(circuit)).out!;
    const rows: Row[] = [];
    for (let i = 0; i < output.rows.length; i++) {
      const weight = output.weights[i]!;
      for (let k = 0; k < weight; k++) rows.push(output.rows[i]!);
    }
    if (query.orderBy.length > 0) {
      const keys = sortKeys(query);
      rows.sort((a, b) => compareBySortKeys(a, b, keys));
    }
    return rows;
  }

  /** The current contents of every input a circuit reads, as a first step's deltas. */
  #contents(circuit: Circuit): Map<string, ZSet> {
    const inputs = new Map<string, ZSet>();
    for (const name of circuit.definition.inputs.keys()) {
      if (name === UNIT_INPUT) {
        inputs.set(name, ZSet.inserts([[]]));
        continue;
      }
      const table = this.#tables.get(name);
      inputs.set(name, bagToZSet(table ? table.rows : this.#view(name, true).rows));
    }
    return inputs;
  }

  #createTable(body: Any): StatementResult {
    const name = relationName(body.relation);
    if (this.#tables.has(name) || this.#views.has(name)) {
      if (body.if_not_exists) return { command: 'CREATE TABLE', rowCount: 0 };
      throw new BindError('sql_duplicate', `relation "${name}" already exists`, body.relation.location, 'pick another name, or DROP it first');
    }
    const columns: TableSchema['columns'] = [];
    const defaults: Array<Any | undefined> = [];
    const uniqueColumns: string[][] = [];
    let primaryKey: number[] | undefined;
    const setKey = (names: string[], loc: number | undefined) => {
      if (primaryKey) throw new BindError('sql_constraint', `multiple primary keys for table "${name}" are not allowed`, loc);
      primaryKey = names.map((n) => {
        const index = columns.findIndex((c) => c.name === n);
        if (index < 0) throw new BindError('sql_column', `column "${n}" named in key does not exist`, loc);
        return index;
      });
    };
    for (const element of body.tableElts ?? []) {
      const [kind, item] = nodeOf(element);
      if (kind === 'ColumnDef') {
        if (columns.some((c) => c.name === item.colname)) throw new BindError('sql_duplicate', `column "${item.colname}" specified more than once`, item.location);
        const type = columnType(item.typeName);
        let notNull = false;
        let defaultExpr: Any | undefined;
        for (const constraint of item.constraints ?? []) {
          const c = constraint.Constraint;
          switch (c.contype) {
            case 'CONSTR_PRIMARY':
              columns.push({ name: item.colname, type, notNull: true });
              defaults.push(defaultExpr);
              setKey([item.colname], c.location);
              columns.pop();
              defaults.pop();
              notNull = true;
              break;
            case 'CONSTR_NOTNULL':
              notNull = true;
              break;
            case 'CONSTR_NULL':
              break;
            case 'CONSTR_DEFAULT':
              defaultExpr = c.raw_expr;
              break;
            case 'CONSTR_UNIQUE':
              uniqueColumns.push([item.colname]);
              break;
            default:
              throw new BindError('sql_unsupported', `${String(c.contype).replace(/^CONSTR_/, '')} constraints are not supported yet`, c.location);
          }
        }
        columns.push({ name: item.colname, type, notNull });
        defaults.push(defaultExpr);
        if (primaryKey && primaryKey.length === 1 && primaryKey[0] === columns.length) primaryKey = [columns.length - 1];
      } else if (kind === 'Constraint') {
        if (item.contype === 'CONSTR_PRIMARY') setKey((item.keys ?? []).map((k: Any) => k.String.sval), item.location);
        else if (item.contype === 'CONSTR_UNIQUE') uniqueColumns.push((item.keys ?? []).map((k: Any) => k.String.sval));
        else throw new BindError('sql_unsupported', `${String(item.contype).replace(/^CONSTR_/, '')} constraints are not supported yet`, item.location);
      } else throw new BindError('sql_unsupported', `${kind} in CREATE TABLE is not supported`, undefined);
    }
    if (columns.length === 0) throw new BindError('sql_table', `table "${name}" needs at least one column`, body.relation.location);
    if (primaryKey) for (const index of primaryKey) columns[index]!.notNull = true;
    const schema: TableSchema = { name, columns, primaryKey };
    const boundDefaults = defaults.map((node, i) => (node ? coerce(this.#binder.rowExpression(node, { name, columns: [], primaryKey: undefined }), columns[i]!.type, `DEFAULT for column "${columns[i]!.name}"`, undefined, true) : undefined));
    const uniques = uniqueColumns.map((names) => {
      const indices = names.map((n) => {
        const index = columns.findIndex((c) => c.name === n);
        if (index < 0) throw new BindError('sql_column', `column "${n}" named in key does not exist`, body.relation.location);
        return index;
      });
      return { name: `${name.replace(/\./g, '_')}_${names.join('_')}_key`, columns: indices, counts: new Map<string, number>() };
    });
    this.#tables.set(name, { schema, rows: new Map(), defaults: boundDefaults, uniques });
    return { command: 'CREATE TABLE', rowCount: 0 };
  }

  #createView(body: Any, statement: Extract<PipelineStatement, { kind: 'postgres' }>, text: string, file: string): StatementResult {
    const name = relationName(body.view);
    if (body.view.relpersistence === 't') throw new BindError('sql_unsupported', 'TEMPORARY views are not supported: every view is maintained', body.view.location, 'drop TEMPORARY');
    if (this.#tables.has(name) || this.#views.has(name)) {
      if (!body.replace || this.#tables.has(name)) throw new BindError('sql_duplicate', `relation "${name}" already exists`, body.view.location, 'pick another name, or DROP VIEW it first');
    }
    let query = this.#bind(body.query, statement, text, file);
    const aliases: string[] = (body.aliases ?? []).map((a: Any) => a.String.sval);
    if (aliases.length > query.visible) throw new BindError('sql_alias', `CREATE VIEW specifies more column names than columns`, body.view.location);
    const columns = query.rel.columns.slice(0, query.visible).map((c, i) => ({ name: aliases[i] ?? c.name, type: c.type }));
    const seen = new Set<string>();
    for (const c of columns) {
      if (seen.has(c.name)) throw new BindError('sql_duplicate', `column "${c.name}" specified more than once`, body.view.location, 'name the columns apart with AS');
      seen.add(c.name);
    }
    if (body.replace && this.#views.has(name)) {
      if (this.#dependents(name).length > 0) throw new BindError('sql_dependency', `cannot replace view "${name}": other views depend on it`, body.view.location);
      this.#views.delete(name);
    }
    this.#views.set(name, this.#materialize(name, query, columns));
    return { command: 'CREATE VIEW', rowCount: 0 };
  }

  /** A view's circuit, run once over the current contents of what it reads. */
  #materialize(name: string, query: Query, columns: Column[] | undefined): ViewState {
    const circuit = buildCircuit(query.rel);
    const visible = columns ?? query.rel.columns.slice(0, query.visible);
    const view: ViewState = { name, query, columns: visible, circuit, reads: new Set(tablesOf(query.rel)), rows: new Map(), failure: undefined, sortKeys: sortKeys(query), subscribers: new Set() };
    try {
      applyDelta(view.rows, circuit.step(this.#contents(circuit)).out!);
    } catch (error) {
      // As in PostgreSQL, defining a view does not fail on its data (45 / count(*) over no
      // rows): the view reports the error when read, until a change cures it.
      view.failure = asFailure(error);
    }
    return view;
  }

  #insertStatement(body: Any): StatementResult {
    const state = this.#table(relationName(body.relation));
    if (body.onConflictClause) throw new BindError('sql_unsupported', 'INSERT … ON CONFLICT is not supported yet', undefined, 'use the insert() API, which updates an existing key');
    if (body.returningList) throw new BindError('sql_unsupported', 'RETURNING is not supported yet', undefined);
    const schema = state.schema;
    const targetNames: string[] = (body.cols ?? []).map((c: Any) => c.ResTarget.name);
    const targets = targetNames.length > 0 ? targetNames.map((n, i) => {
      const index = schema.columns.findIndex((c) => c.name === n);
      if (index < 0) throw new BindError('sql_column', `column "${n}" of relation "${schema.name}" does not exist`, body.cols[i].ResTarget.location);
      return index;
    }) : schema.columns.map((_, i) => i);
    let rows: Row[];
    if (!body.selectStmt) rows = [[]];
    else {
      const query = this.#binder.insertQuery(body.selectStmt);
      if (query.visible > targets.length) throw new BindError('sql_insert', 'INSERT has more expressions than target columns', undefined);
      const rel = query.rel;
      // Cast each value to its column's type as an assignment (as PostgreSQL's INSERT does).
      const exprs = rel.columns.slice(0, query.visible).map((c, i) => coerce({ op: 'column', index: i, type: c.type }, schema.columns[targets[i]!]!.type, `column "${schema.columns[targets[i]!]!.name}" is of type ${typeLabel(schema.columns[targets[i]!]!.type)} but the value`, undefined, true));
      const values = this.#evaluate({ rel: optimize({ kind: 'project', input: rel, exprs, columns: exprs.map((e, i) => ({ name: `v${i}`, type: e.type })) }), visible: exprs.length, orderBy: [] });
      rows = values;
    }
    const full = rows.map((values) => {
      const row: Value[] = schema.columns.map((_, i) => {
        const expr = state.defaults[i];
        return expr ? compileExpr(expr)([]) : null;
      });
      targets.forEach((target, i) => {
        if (i < values.length) row[target] = values[i]!;
      });
      return row;
    });
    const delta = new ZSet();
    const key = keyOf(schema);
    const seen = new Set<string>();
    for (const row of full) {
      checkNotNull(schema, row);
      if (schema.primaryKey) {
        const k = key(row);
        if (state.rows.has(k) || seen.has(k)) throw duplicateKey(schema, row);
        seen.add(k);
      }
      delta.add(row, 1);
    }
    this.#apply(state, delta);
    return { command: 'INSERT', rowCount: full.length };
  }

  /** The rows of `table` matching WHERE, with extra expressions evaluated per row. */
  #matching(relation: Any, where: Any | undefined, extra: Any[]): Row[] {
    const state = this.#table(relationName(relation));
    const targetList = [
      ...state.schema.columns.map((c) => ({ ResTarget: { val: { ColumnRef: { fields: [{ String: { sval: relation.alias?.aliasname ?? relation.relname } }, { String: { sval: c.name } }] } } } })),
      ...extra.map((val) => ({ ResTarget: { val } })),
    ];
    const select = { SelectStmt: { targetList, fromClause: [{ RangeVar: relation }], ...(where ? { whereClause: where } : {}), limitOption: 'LIMIT_OPTION_DEFAULT', op: 'SETOP_NONE' } };
    const query = this.#binder.query(select);
    return this.#evaluate({ ...query, rel: optimize(query.rel) });
  }

  #updateStatement(body: Any): StatementResult {
    const state = this.#table(relationName(body.relation));
    const schema = state.schema;
    if (body.fromClause) throw new BindError('sql_unsupported', 'UPDATE … FROM is not supported yet', undefined);
    if (body.returningList) throw new BindError('sql_unsupported', 'RETURNING is not supported yet', undefined);
    const sets: Array<{ index: number; node: Any }> = (body.targetList as Any[]).map((t) => {
      const index = schema.columns.findIndex((c) => c.name === t.ResTarget.name);
      if (index < 0) throw new BindError('sql_column', `column "${t.ResTarget.name}" of relation "${schema.name}" does not exist`, t.ResTarget.location);
      return { index, node: { TypeCast: { arg: t.ResTarget.val, typeName: typeNode(schema.columns[index]!.type), location: t.ResTarget.location } } };
    });
    const width = schema.columns.length;
    const matches = this.#matching(body.relation, body.whereClause, sets.map((s) => s.node));
    const delta = new ZSet();
    const key = keyOf(schema);
    const changedKeys = new Set<string>();
    const after: Row[] = [];
    for (const match of matches) {
      const old = match.slice(0, width);
      const row = old.slice();
      sets.forEach((set, i) => (row[set.index] = match[width + i]!));
      checkNotNull(schema, row);
      delta.add(old, -1);
      delta.add(row, 1);
      if (schema.primaryKey) changedKeys.add(key(old));
      after.push(row);
    }
    if (schema.primaryKey) {
      const seen = new Set<string>();
      for (const row of after) {
        const k = key(row);
        if (seen.has(k) || (state.rows.has(k) && !changedKeys.has(k))) throw duplicateKey(schema, row);
        seen.add(k);
      }
    }
    this.#apply(state, delta);
    return { command: 'UPDATE', rowCount: matches.length };
  }

  #deleteStatement(body: Any): StatementResult {
    const state = this.#table(relationName(body.relation));
    if (body.usingClause) throw new BindError('sql_unsupported', 'DELETE … USING is not supported yet', undefined, 'use WHERE … IN (SELECT …)');
    if (body.returningList) throw new BindError('sql_unsupported', 'RETURNING is not supported yet', undefined);
    const matches = this.#matching(body.relation, body.whereClause, []);
    const delta = new ZSet();
    for (const row of matches) delta.add(row, -1);
    this.#apply(state, delta);
    return { command: 'DELETE', rowCount: matches.length };
  }

  #drop(body: Any): StatementResult {
    const type = body.removeType as string;
    const what = type === 'OBJECT_TABLE' ? 'table' : type === 'OBJECT_VIEW' ? 'view' : type === 'OBJECT_INDEX' ? 'index' : undefined;
    if (!what) throw new BindError('sql_unsupported', `DROP ${String(type).replace(/^OBJECT_/, '')} is not supported`, undefined);
    for (const object of body.objects ?? []) {
      const name = ((object.List?.items ?? []) as Any[]).map((i) => i.String.sval).join('.');
      if (what === 'index') {
        if (!this.#indexes.delete(name) && !body.missing_ok) throw new DefiniteError('sql_relation', `index "${name}" does not exist`);
        for (const table of this.#tables.values()) table.uniques = table.uniques.filter((unique) => unique.name !== name);
        continue;
      }
      const exists = what === 'table' ? this.#tables.has(name) : this.#views.has(name);
      if (!exists) {
        if (body.missing_ok) continue;
        const other = what === 'table' ? this.#views.has(name) : this.#tables.has(name);
        throw new DefiniteError('sql_relation', other ? `"${name}" is not a ${what}` : `${what} "${name}" does not exist`, other ? `use DROP ${what === 'table' ? 'VIEW' : 'TABLE'}` : undefined);
      }
      const dependents = this.#dependents(name);
      if (dependents.length > 0 && body.behavior !== 'DROP_CASCADE') {
        throw new DefiniteError('sql_dependency', `cannot drop ${what} ${name} because other objects depend on it: ${dependents.join(', ')}`, 'drop those views first, or use DROP … CASCADE');
      }
      for (const dependent of dependents.reverse()) this.#views.delete(dependent);
      for (const live of this.#live) {
        if ([...live.reads].some((r) => r === name || dependents.includes(r))) {
          live.failure ??= new DefiniteError('sql_relation', `${what} "${name}" was dropped`);
          live.permanent = true;
        }
      }
      if (what === 'table') this.#tables.delete(name);
      else this.#views.delete(name);
    }
    return { command: `DROP ${what.toUpperCase()}`, rowCount: 0 };
  }

  /** Views reading `name`, directly or through other views, in creation order. */
  #dependents(name: string): string[] {
    const found = new Set<string>([name]);
    const out: string[] = [];
    for (const view of this.#views.values()) {
      if ([...view.reads].some((r) => found.has(r))) {
        found.add(view.name);
        out.push(view.name);
      }
    }
    return out;
  }

  /** Applies a delta to a table and steps every view downstream of it. */
  #apply(state: TableState, delta: ZSet): void {
    const consolidated = delta.consolidate();
    if (consolidated.rows.length === 0) return;
    if (this.#captured) {
      // Durable mode: the change goes to the log, and comes back through applyChanges().
      this.#captured.push({ table: state.schema.name, delta: consolidated.deletesFirst() });
      return;
    }
    this.#checkUniques(state, consolidated);
    applyDelta(state.rows, consolidated, keyOf(state.schema));
    this.#position++;
    const position = this.#token();
    const changed = new Map<string, ZSet>([[state.schema.name, consolidated]]);
    for (const view of this.#views.values()) this.#step(view, changed, position);
    for (const view of this.#live) this.#step(view, changed, position);
  }

  /** Checks a table's UNIQUE constraints against a consolidated change, then counts it in. */
  #checkUniques(state: TableState, consolidated: ZSet): void {
    // UNIQUE constraints are checked on the whole change before anything is applied.
    const uniqueChanges = state.uniques.map((unique) => {
      const changes = new Map<string, number>();
      for (let i = 0; i < consolidated.rows.length; i++) {
        const row = consolidated.rows[i]!;
        if (unique.columns.some((c) => row[c] === null)) continue; // NULLs are never equal
        const key = encodeKey(row, unique.columns);
        changes.set(key, (changes.get(key) ?? 0) + consolidated.weights[i]!);
      }
      for (const [key, change] of changes) {
        if (change > 0 && (unique.counts.get(key) ?? 0) + change > 1) {
          const row = consolidated.rows.find((r) => !unique.columns.some((c) => r[c] === null) && encodeKey(r, unique.columns) === key)!;
          throw new DefiniteError('sql_unique', `duplicate key value violates unique constraint "${unique.name}": key (${unique.columns.map((c) => state.schema.columns[c]!.name).join(', ')})=(${unique.columns.map((c) => String(row[c])).join(', ')}) already exists`, 'change the value, or remove the row holding it first');
        }
      }
      return changes;
    });
    state.uniques.forEach((unique, i) => {
      for (const [key, change] of uniqueChanges[i]!) {
        const count = (unique.counts.get(key) ?? 0) + change;
        if (count <= 0) unique.counts.delete(key);
        else unique.counts.set(key, count);
      }
    });
  }

  // -------------------------------------------------------------------------------------------
  // What the pipeline runtime (runtime.ts) drives the database with: tables fed from the log,
  // one step of every view per batch of log records, and table contents for checkpoints.

  #captured: Array<{ table: string; delta: ZSet }> | undefined;

  /**
   * Runs `fn` (SQL INSERT, UPDATE, DELETE) without applying the table changes it makes: returns
   * them instead, deletes first, for the durable runtime to append to the log.
   */
  captureChanges(fn: () => void): Array<{ table: string; delta: ZSet }> {
    if (this.#captured) throw new DefiniteError('internal', 'captureChanges() calls do not nest');
    this.#captured = [];
    try {
      fn();
      return this.#captured;
    } finally {
      this.#captured = undefined;
    }
  }

  /** Runs one parsed statement of `text` (as execute() does for each). */
  runStatement(statement: PipelineStatement, text: string, file: string): StatementResult {
    this.#checkOpen();
    return this.#run(statement, text, file);
  }

  /** How many UNIQUE constraints and unique indexes a table has beyond its primary key. */
  uniqueConstraints(table: string): number {
    return this.#table(table).uniques.length;
  }

  /** Runs one SELECT now (synchronously): its visible rows in ORDER BY order, and its columns. */
  selectNow(sql: string, parsed?: PipelineStatement): { rows: Row[]; columns: Array<{ name: string; type: SqlType }> } {
    this.#checkOpen();
    const statement = parsed ?? parsePipeline(sql, '<query>')[0];
    if (statement?.kind !== 'postgres' || nodeOf(statement.node)[0] !== 'SelectStmt') throw new DefiniteError('sql_not_query', 'selectNow() needs a SELECT');
    const result = this.#run(statement, sql, '<query>');
    return { rows: result.rows!, columns: this.#lastTypes.map((c) => ({ name: c.name, type: c.type as SqlType })) };
  }

  /** A table's schema, or undefined. */
  tableSchema(name: string): TableSchema | undefined {
    return this.#tables.get(name)?.schema;
  }

  /** The views in creation order (upstream before downstream). */
  viewNames(): string[] {
    return [...this.#views.keys()];
  }

  /** A view's visible columns, its ORDER BY (as column indexes) and why it has no result, if so. */
  /**
   * Stops a view for good with `error` (it keeps its last rows, reads as failed, and views over it
   * do too): what it reads changed in a way it cannot absorb.
   */
  failView(name: string, error: Error): void {
    const view = this.#views.get(name);
    if (!view) throw new DefiniteError('relation_unknown', `view "${name}" does not exist`);
    view.failure = error;
    view.permanent = true;
  }

  viewInfo(name: string): { columns: Column[]; sortKeys: SortKey[]; failure: Error | undefined; reads: string[] } {
    const view = this.#view(name);
    const failed = this.#failedUpstream(view);
    return { columns: view.columns, sortKeys: view.sortKeys, failure: failed?.failure, reads: [...view.reads] };
  }

  /** Visible columns that identify a view's rows, when its plan shows them (uniqueKey). */
  viewKey(name: string): number[] | undefined {
    const view = this.#view(name);
    const key = uniqueKey(view.query.rel, (table) => this.#tables.get(table)?.schema.primaryKey);
    return key && key.length > 0 && key.every((c) => c < view.columns.length) ? key : undefined;
  }

  /** A view's whole current contents, as a delta from nothing (what a new sink starts from). */
  viewContents(name: string): ZSet {
    const table = this.#tables.get(name);
    return bagToZSet(table ? table.rows : this.#view(name).rows);
  }

  /** Rows of a table (its distinct rows with their counts). */
  tableSize(name: string): number {
    return this.#table(name).rows.size;
  }

  /** Objects checked and converted to a table's rows (defaults filled in); throws row_invalid naming the row and column. */
  rowsFromObjects(table: string, objects: readonly unknown[], firstIndex = 0): Row[] {
    const state = this.#table(table);
    return objects.map((object, i) => this.#rowFromObject(state, object as Record<string, unknown>, firstIndex + i));
  }

  /**
   * Applies changes to several tables as one step of every view and returns each table's and
   * view's delta (those with no change are absent). `ops[i]` is 1 for an insert (an upsert on keyed
   * tables) and 2 for a delete (by key on keyed tables, else of one copy of the whole row).
   */
  applyChanges(batches: ReadonlyArray<{ table: string; ops: ArrayLike<number>; rows: readonly Row[]; keep?: ReadonlyArray<readonly number[] | undefined> }>): Map<string, ZSet> {
    this.#checkOpen();
    const deltas = new Map<TableState, ZSet>();
    const pending = new Map<TableState, Map<string, Row | null>>();
    /** Tables emptied earlier in these batches (op 3): their stored rows no longer count. */
    const truncated = new Set<TableState>();
    const removedCopies = new Map<TableState, Map<string, number>>();
    for (const { table, ops, rows, keep } of batches) {
      const state = this.#table(table);
      let delta = deltas.get(state);
      if (!delta) deltas.set(state, (delta = new ZSet()));
      const pk = state.schema.primaryKey;
      const key = keyOf(state.schema);
      const stored = (k: string) => (truncated.has(state) ? undefined : state.rows.get(k));
      const truncate = () => {
        // Empty: the change so far becomes "every stored row goes" (state.rows is the table as
        // it was before these batches; a second truncate drops what came after the first).
        const emptied = bagToZSet(state.rows).negate();
        deltas.set(state, (delta = emptied));
        truncated.add(state);
        pending.set(state, new Map());
        removedCopies.set(state, new Map());
      };
      if (pk) {
        for (let i = 0; i < rows.length; i++) {
          if (ops[i] === 3) {
            truncate();
            continue;
          }
          const seen = pending.get(state) ?? pending.set(state, new Map()).get(state)!;
          let row = rows[i]!;
          const k = key(row);
          const previous = seen.has(k) ? seen.get(k)! : (stored(k)?.row ?? null);
          if (previous) delta!.add(previous, -1);
          if (ops[i] === 1) {
            // Columns the source did not send (unchanged TOAST values) keep the previous row's.
            const kept = keep?.[i];
            if (kept && previous) {
              const merged: Value[] = [...row];
              for (const c of kept) merged[c] = previous[c] ?? null;
              row = merged;
            }
            delta!.add(row, 1);
            seen.set(k, row);
          } else seen.set(k, null);
        }
      } else {
        for (let i = 0; i < rows.length; i++) {
          if (ops[i] === 3) {
            truncate();
            continue;
          }
          const removed = removedCopies.get(state) ?? removedCopies.set(state, new Map()).get(state)!;
          const row = rows[i]!;
          if (ops[i] === 1) {
            delta!.add(row, 1);
            continue;
          }
          const k = key(row);
          const existing = stored(k);
          const already = removed.get(k) ?? 0;
          if (existing && existing.count > already) {
            delta!.add(existing.row, -1);
            removed.set(k, already + 1);
          }
        }
      }
    }
    const changed = new Map<string, ZSet>();
    for (const [state, delta] of deltas) {
      const consolidated = delta.consolidate();
      if (consolidated.rows.length === 0) continue;
      applyDelta(state.rows, consolidated, keyOf(state.schema));
      changed.set(state.schema.name, consolidated);
    }
    const outputs = new Map(changed);
    if (changed.size === 0) return outputs;
    this.#position++;
    const position = this.#token();
    for (const view of this.#views.values()) {
      this.#step(view, changed, position);
      const output = changed.get(view.name);
      if (output) outputs.set(view.name, output);
    }
    for (const view of this.#live) this.#step(view, changed, position);
    return outputs;
  }

  /** Writes every table's rows (for a checkpoint): per table its name, column names and rows with counts. */
  saveTables(writer: ByteWriter): void {
    for (const _ of writeTables(this.snapshotTables(), writer, Infinity));
  }

  /**
   * Every table's rows as they are now, for a checkpoint written while steps go on: rows are
   * never changed in place (a change replaces them), so the arrays taken here stay as they were.
   */
  snapshotTables(): TableSnapshot[] {
    const out: TableSnapshot[] = [];
    for (const state of this.#tables.values()) {
      const rows: Row[] = new Array(state.rows.size);
      const counts: number[] = new Array(state.rows.size);
      let i = 0;
      for (const entry of state.rows.values()) {
        rows[i] = entry.row;
        counts[i++] = entry.count;
      }
      out.push({ name: state.schema.name, columns: JSON.stringify(state.schema.columns.map((c) => [c.name, typeLabel(c.type)])), rows, counts });
    }
    return out;
  }

  /**
   * Restores tables written by saveTables into empty tables of the same names and columns, before
   * any view exists. Returns false (and restores nothing) when the tables are not the same.
   */
  restoreTables(reader: ByteReader): boolean {
    if (this.#views.size > 0) throw new DefiniteError('internal', 'tables are restored before views are created');
    const count = reader.varint();
    const restored: Array<[TableState, Bag]> = [];
    for (let t = 0; t < count; t++) {
      const name = reader.string();
      const columns = reader.string();
      const state = this.#tables.get(name);
      const same = state !== undefined && columns === JSON.stringify(state.schema.columns.map((c) => [c.name, typeLabel(c.type)]));
      const rows = reader.varint();
      const bag: Bag = new Map();
      const key = state ? keyOf(state.schema) : undefined;
      for (let i = 0; i < rows; i++) {
        const copies = reader.varint();
        const row = reader.row();
        if (same) bag.set(key!(row), { row, count: copies });
      }
      if (!same) return false;
      restored.push([state, bag]);
    }
    if (restored.length !== this.#tables.size || this.#tables.size === 0 && count !== 0) return false;
    for (const [state, bag] of restored) {
      state.rows = bag;
      for (const unique of state.uniques) {
        for (const { row, count: copies } of bag.values()) {
          if (unique.columns.some((c) => row[c] === null)) continue;
          const k = encodeKey(row, unique.columns);
          unique.counts.set(k, (unique.counts.get(k) ?? 0) + copies);
        }
      }
    }
    return true;
  }

  /** Steps one view with the deltas of the inputs that changed; its output joins `changed`. */
  #step(view: ViewState, changed: Map<string, ZSet>, position: string): void {
    let inputs: Map<string, ZSet> | undefined;
    for (const input of view.reads) {
      const d = changed.get(input);
      if (d) (inputs ??= new Map()).set(input, d);
    }
    if (!inputs) return;
    let output: ZSet;
    if (view.failure) {
      // A failed view is rebuilt from the current data at each change to what it reads: it has
      // a result again as soon as the data no longer raises the error (the bad row is gone).
      if (view.permanent) return;
      const circuit = buildCircuit(view.query.rel);
      let fresh: ZSet;
      try {
        fresh = circuit.step(this.#contents(circuit)).out!;
      } catch (error) {
        view.failure = asFailure(error);
        return;
      }
      output = fresh.plus(bagToZSet(view.rows).negate()).consolidate().deletesFirst();
      view.circuit = circuit;
      view.failure = undefined;
      if (output.rows.length === 0) return;
    } else {
      try {
        output = view.circuit.step(inputs).out!;
      } catch (error) {
        view.failure = asFailure(error);
        return;
      }
    }
    if (output.rows.length === 0) return;
    applyDelta(view.rows, output);
    changed.set(view.name, output);
    if (view.subscribers.size > 0) {
      const columns = view.columns.map((c) => ({ name: c.name, type: c.type as SqlType }));
      const changes: Change[] = objectChanges(output.rows, output.weights, columns);
      for (const subscriber of view.subscribers) subscriber({ position, changes });
    }
  }

  #ordered(view: ViewState): Value[][] {
    const failed = this.#failedUpstream(view);
    if (failed) {
      const why = failed.failure!.message.replace(/^the circuit stopped at step \d+: /, '');
      const what = failed === view ? `view "${view.name}" has no result: ${why}` : `view "${view.name}" reads view "${failed.name}", which has no result: ${why}`;
      throw new DefiniteError('view_failed', what, failed.permanent ? 'create it again' : 'it recovers by itself when a change removes the cause (the row that raises the error)', { cause: failed.failure });
    }
    const rows: Row[] = [];
    for (const { row, count } of view.rows.values()) for (let k = 0; k < count; k++) rows.push(row);
    if (view.sortKeys.length > 0) rows.sort((a, b) => compareBySortKeys(a, b, view.sortKeys));
    return rows.map((row) => row.slice(0, view.columns.length));
  }

  /** The view, or a view it reads directly or indirectly, that has no current result. */
  #failedUpstream(view: ViewState): ViewState | undefined {
    if (view.failure) return view;
    for (const name of view.reads) {
      const upstream = this.#views.get(name);
      const failed = upstream && this.#failedUpstream(upstream);
      if (failed) return failed;
    }
    return undefined;
  }

  #table(name: string): TableState {
    const state = this.#tables.get(name);
    if (!state) {
      const hint = this.#views.has(name) ? `"${name}" is a view: views change only through their tables` : undefined;
      throw new DefiniteError('sql_relation', `table "${name}" does not exist`, hint);
    }
    return state;
  }

  #view(name: string, anyRelation = false): ViewState {
    const state = this.#views.get(name);
    if (!state) throw new DefiniteError('sql_relation', `${anyRelation ? 'relation' : 'view'} "${name}" does not exist`);
    return state;
  }

  #rowFromObject(state: TableState, object: Record<string, unknown>, index: number): Row {
    if (object === null || typeof object !== 'object' || Array.isArray(object)) throw new DefiniteError('row_invalid', `row ${index} is not an object`, 'give each row as an object of column values');
    const columns = state.schema.columns;
    const names = (state.columnNames ??= new Set(columns.map((c) => c.name)));
    for (const key in object) {
      if (!names.has(key)) throw new DefiniteError('row_invalid', `row ${index}: table "${state.schema.name}" has no column "${key}"`, `its columns are: ${columns.map((c) => c.name).join(', ')}`);
    }
    const row = columns.map((c, i) => {
      if (object[c.name] === undefined) {
        const expr = state.defaults[i];
        return expr ? compileExpr(expr)([]) : null;
      }
      return fromJs(object[c.name], c.type, index, c.name);
    });
    checkNotNull(state.schema, row, index);
    return row;
  }

  #token(): string {
    return `m${this.#position.toString(36)}`;
  }

  #checkOpen(): void {
    if (this.#closed) throw new DefiniteError('closed', 'the database is closed');
  }
}

// ---------------------------------------------------------------------------------------------

type Any = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function nodeOf(node: Node | Any): [string, Any] {
  const key = Object.keys(node)[0]!;
  return [key, (node as Any)[key] as Any];
}

function relationName(relation: Any): string {
  return relation.schemaname ? `${relation.schemaname}.${relation.relname}` : relation.relname;
}


function didYouMeanRelation(name: string, names: string[]): string | undefined {
  const match = closest(name, names);
  return match ? `did you mean "${match}"?` : 'define it with CREATE TABLE, CREATE VIEW or CREATE SOURCE before the sink';
}

/** Why a view has no result; a bug (not a DefiniteError) says so, so it is not mistaken for bad data. */
function asFailure(error: unknown): DefiniteError {
  if (error instanceof DefiniteError) return error;
  return new DefiniteError('internal', `internal error: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`, 'please report this with the view definition', { cause: error });
}

export interface TableSnapshot {
  name: string;
  /** The column names and types, as JSON (a restore checks they are the same). */
  columns: string;
  rows: Row[];
  counts: number[];
}

/**
 * Writes table snapshots as restoreTables reads them (per table: name, columns, rows with their
 * counts), yielding after about `chunkRows` rows so a caller can let other work run between.
 */
export function* writeTables(tables: readonly TableSnapshot[], writer: ByteWriter, chunkRows: number): Generator<void> {
  writer.varint(tables.length);
  let written = 0;
  for (const table of tables) {
    writer.string(table.name);
    writer.string(table.columns);
    writer.varint(table.rows.length);
    for (let i = 0; i < table.rows.length; i++) {
      writer.varint(table.counts[i]!);
      writer.row(table.rows[i]!);
      if (++written >= chunkRows) {
        written = 0;
        yield;
      }
    }
  }
}

function bagToZSet(bag: Bag): ZSet {
  const rows: Row[] = [];
  const weights: number[] = [];
  for (const { row, count } of bag.values()) {
    rows.push(row);
    weights.push(count);
  }
  return new ZSet(rows, weights);
}

function buildCircuit(rel: Rel): Circuit {
  const builder = new CircuitBuilder();
  builder.output('out', lower(rel, builder));
  return builder.build();
}

function sortKeys(query: Query): SortKey[] {
  return query.orderBy.map((key) => ({ column: (key.expr as { index: number }).index, descending: key.descending, nullsFirst: key.nullsFirst }));
}

function allColumns(schema: TableSchema): number[] {
  return schema.columns.map((_, i) => i);
}

function keyOf(schema: TableSchema): (row: Row) => string {
  const columns = schema.primaryKey ?? allColumns(schema);
  return (row) => encodeKey(row, columns);
}

/** [0, 1, …, n − 1], shared per n. */
const allIndexes: number[][] = [];
function indexesUpTo(n: number): number[] {
  return (allIndexes[n] ??= Array.from({ length: n }, (_, i) => i));
}

function wholeRowKey(row: Row): string {
  return encodeKey(row, indexesUpTo(row.length));
}

function applyDelta(bag: Bag, delta: ZSet, key: (row: Row) => string = wholeRowKey): void {
  for (let i = 0; i < delta.rows.length; i++) {
    const row = delta.rows[i]!;
    const k = key(row);
    const weight = delta.weights[i]!;
    const existing = bag.get(k);
    if (existing) {
      existing.count += weight;
      if (weight > 0) existing.row = row;
      if (existing.count <= 0) bag.delete(k);
    } else if (weight > 0) bag.set(k, { row, count: weight });
  }
}

function checkNotNull(schema: TableSchema, row: Row, index?: number): void {
  schema.columns.forEach((c, i) => {
    if (c.notNull && row[i] === null) {
      throw new DefiniteError('sql_not_null', `${index !== undefined ? `row ${index}: ` : ''}null value in column "${c.name}" of relation "${schema.name}" violates not-null constraint`, `give "${c.name}" a value`);
    }
  });
}

function duplicateKey(schema: TableSchema, row: Row): DefiniteError {
  const key = schema.primaryKey!;
  return new DefiniteError('sql_unique', `duplicate key value violates unique constraint "${schema.name}_pkey": key (${key.map((i) => schema.columns[i]!.name).join(', ')})=(${key.map((i) => String(row[i])).join(', ')}) already exists`, 'use UPDATE, or the insert() API, which updates an existing key');
}

function typeNode(type: SqlType): Any {
  return { names: [{ String: { sval: type.kind === 'double' ? 'float8' : type.kind === 'real' ? 'float4' : type.kind } }], typmods: type.modifiers.map((m) => ({ A_Const: { ival: { ival: m } } })), typemod: -1 };
}

function decodeToken(token: string): number {
  const match = /^m([0-9a-z]+)$/.exec(token);
  if (!match) throw new DefiniteError('position_invalid', `"${token}" is not a position of this database`, 'use a position returned by insert() or delete()');
  return parseInt(match[1]!, 36);
}

/** A JavaScript value given to insert() as a value of a column's type. */
function fromJs(value: unknown, type: SqlType, row: number, columnName: string): Value {
  const fail = (why: string) => new DefiniteError('row_invalid', `row ${row}, column "${columnName}": ${why}`, `give a ${typeLabel(type)} value`);
  if (value === null || value === undefined) return null;
  try {
    switch (typeof value) {
      case 'string':
        if (type.kind === 'text') return value;
        return inputValue(value, type);
      case 'number':
        // The common cases without a trip through text.
        if (type.kind === 'bigint' ? Number.isSafeInteger(value) : type.kind === 'integer' ? Number.isInteger(value) && value >= -2147483648 && value <= 2147483647 : type.kind === 'smallint' && Number.isInteger(value) && value >= -32768 && value <= 32767) return value === 0 ? 0 : value;
        if (type.kind === 'json' || type.kind === 'jsonb') return new Json(value);
        if (type.kind === 'real' || type.kind === 'double') return type.kind === 'real' ? Math.fround(value) : value;
        if (!Number.isFinite(value)) throw fail(`${value} is not a ${typeLabel(type)}`);
        if (type.kind === 'numeric' || type.kind === 'smallint' || type.kind === 'integer' || type.kind === 'bigint') return inputValue(String(value), type);
        if (type.kind === 'text' || type.kind === 'varchar' || type.kind === 'char') return inputValue(String(value), type);
        throw fail(`a number is not a ${typeLabel(type)}`);
      case 'bigint':
        return inputValue(value.toString(), type);
      case 'boolean':
        if (type.kind === 'boolean') return value;
        if (type.kind === 'json' || type.kind === 'jsonb') return new Json(value);
        throw fail(`a boolean is not a ${typeLabel(type)}`);
      case 'object':
        if (type.kind === 'json' || type.kind === 'jsonb') return value instanceof Json ? value : new Json(value);
        if (value instanceof Decimal || value instanceof Timestamp) return inputValue(value.toString(), type);
        if (value instanceof Date && (type.kind === 'timestamptz' || type.kind === 'timestamp' || type.kind === 'date')) return inputValue(value.toISOString(), type);
        if (value instanceof Uint8Array && type.kind === 'bytea') return value;
        throw fail(`an object is not a ${typeLabel(type)}`);
      default:
        throw fail(`a ${typeof value} is not a ${typeLabel(type)}`);
    }
  } catch (error) {
    if (error instanceof DefiniteError && error.code === 'row_invalid') throw error;
    throw fail((error as Error).message);
  }
}

