/**
 * The embedded API with a data directory: `open({ data })` runs the pipeline runtime in-process,
 * durable in that directory (DESIGN.md, "Embedded API").
 *
 *   const db = await open({ data: './.sluice' });
 *   await db.execute('CREATE TABLE orders (…); CREATE VIEW totals AS …');
 *   const position = await db.insert('orders', [{ id: 1, customer_id: 7, amount: '9.50' }]);
 *   await db.settle(position);
 *
 * - Definitions (CREATE TABLE / VIEW / SINK) are kept in `pipeline.sql` in the directory; a new
 *   one restarts the runtime over the longer file (views over existing data are built by replay).
 * - Every change — insert(), delete(), SQL INSERT / UPDATE / DELETE — is appended to the table's
 *   log topic and acknowledged once durable; views change when the step loop applies it. SQL
 *   statements wait until their change is applied, so the next statement sees it.
 * - DROP is not supported here yet: edit `pipeline.sql` (the views' stores are rebuilt).
 */

import fs from 'node:fs';
import path from 'node:path';
import { DefiniteError, NodeStorage, replaceFileAtomically } from '../core/index.ts';
import { parsePipelineAsync, type PipelineStatement } from '../sql/index.ts';
import type { ChangeStep, StatementResult } from './database.ts';
import { pushIterator } from './push-iterator.ts';
import { PipelineRuntime } from './runtime.ts';
import { DELETE, INSERT } from './table-records.ts';

const DEFINITIONS = 'pipeline.sql';
/** How long settle() and SQL changes wait for the step loop at most. */
const SETTLE_TIMEOUT_MS = 60_000;

export class DurableDatabase {
  readonly data: string;
  #runtime: PipelineRuntime;
  #closed = false;

  private constructor(data: string, runtime: PipelineRuntime) {
    this.data = data;
    this.#runtime = runtime;
  }

  static async open(data: string): Promise<DurableDatabase> {
    fs.mkdirSync(data, { recursive: true });
    const runtime = await PipelineRuntime.open({ text: readDefinitions(data), file: path.join(data, DEFINITIONS), data });
    runtime.start();
    return new DurableDatabase(data, runtime);
  }

  /** Runs SQL statements in order: definitions are recorded durably, changes go through the log. */
  async execute(sql: string, file = '<sql>'): Promise<StatementResult[]> {
    this.#checkOpen();
    const statements = await parsePipelineAsync(sql, file);
    const results: StatementResult[] = [];
    for (const statement of statements) results.push(await this.#run(statement, sql, file));
    return results;
  }

  async #run(statement: PipelineStatement, sql: string, file: string): Promise<StatementResult> {
    const text = statementText(statement, sql);
    if (statement.kind === 'createSink' || statement.kind === 'createSource') return this.#define(text, statement.kind === 'createSink' ? 'CREATE SINK' : 'CREATE SOURCE');
    if (statement.kind === 'drop') throw new DefiniteError('sql_unsupported', 'DROP is not supported with a data directory yet', `edit ${path.join(this.data, DEFINITIONS)} while the database is closed`);
    const kind = Object.keys(statement.node)[0];
    if (kind === 'CreateStmt') return this.#define(text, 'CREATE TABLE');
    if (kind === 'ViewStmt') return this.#define(text, 'CREATE VIEW');
    if (kind === 'SelectStmt') return this.#runtime.database.runStatement(statement, sql, file);
    if (kind === 'InsertStmt' || kind === 'UpdateStmt' || kind === 'DeleteStmt') {
      let result!: StatementResult;
      const changes = this.#runtime.database.captureChanges(() => {
        result = this.#runtime.database.runStatement(statement, sql, file);
      });
      let position: string | undefined;
      for (const { table, delta } of changes) {
        const ops = new Uint8Array(countCopies(delta.weights));
        const rows = [];
        let i = 0;
        for (let r = 0; r < delta.rows.length; r++) {
          const weight = delta.weights[r]!;
          for (let k = 0; k < Math.abs(weight); k++) {
            ops[i++] = weight > 0 ? INSERT : DELETE;
            rows.push(delta.rows[r]!);
          }
        }
        position = (await this.#runtime.appendChanges(table, ops, rows)).position;
      }
      if (position) await this.settle(position);
      return result;
    }
    throw new DefiniteError('sql_unsupported', `${kind?.replace(/Stmt$/, '')} statements are not supported with a data directory`, 'Sluice runs CREATE TABLE / VIEW / SINK, INSERT, UPDATE, DELETE and SELECT');
  }

  /** Checks a definition against the current ones, records it durably, and restarts over it. */
  async #define(text: string, command: string): Promise<StatementResult> {
    const definitions = readDefinitions(this.data);
    const next = `${definitions}${definitions && !definitions.endsWith('\n') ? '\n' : ''}${text.trim().replace(/;?$/, ';')}\n`;
    // The runtime restarts: change streams of the old one end (their loops finish).
    for (const end of this.#ends) end();
    this.#ends.clear();
    await this.#runtime.close();
    try {
      this.#runtime = await PipelineRuntime.open({ text: next, file: path.join(this.data, DEFINITIONS), data: this.data });
    } catch (error) {
      // Refused: the runtime comes back over the definitions as they were.
      this.#runtime = await PipelineRuntime.open({ text: definitions, file: path.join(this.data, DEFINITIONS), data: this.data });
      this.#runtime.start();
      throw error;
    }
    await replaceFileAtomically(new NodeStorage(), path.join(this.data, DEFINITIONS), new TextEncoder().encode(next));
    this.#runtime.start();
    return { command, rowCount: 0 };
  }

  /** Adds rows (objects by column name); on keyed tables an existing key is updated. Resolves once durable. */
  async insert(table: string, rows: ReadonlyArray<Record<string, unknown>>): Promise<string> {
    this.#checkOpen();
    return (await this.#runtime.append(table, rows)).position;
  }

  /** Removes rows: by primary key on keyed tables, else by whole row (one copy each). Resolves once durable. */
  async delete(table: string, rows: ReadonlyArray<Record<string, unknown>>): Promise<string> {
    this.#checkOpen();
    const converted = this.#runtime.database.deletionRows(table, rows);
    return (await this.#runtime.appendChanges(table, new Uint8Array(converted.length).fill(DELETE), converted)).position;
  }

  /** Resolves once every view reflects `position` (every change so far when omitted). */
  async settle(position?: string): Promise<void> {
    this.#checkOpen();
    const target = position ?? this.#runtime.endPosition();
    if (!(await this.#runtime.waitFor(target, SETTLE_TIMEOUT_MS))) {
      const failure = this.#runtime.failure;
      if (failure) throw failure;
      throw new DefiniteError('settle_timeout', `the views did not reach the position within ${SETTLE_TIMEOUT_MS / 1000} s`, 'check status() for a stopped pipeline');
    }
  }

  /** Runs a SELECT and returns its rows as JSON-friendly objects. */
  async query(sql: string): Promise<Array<Record<string, unknown>>> {
    this.#checkOpen();
    return (await this.#runtime.query(sql)).rows;
  }

  /** The changes of a view from now on, one item per step. */
  changes(view: string): AsyncIterableIterator<ChangeStep> {
    this.#checkOpen();
    const { iterator, push, end } = pushIterator<ChangeStep>(() => {
      unsubscribe();
      this.#ends.delete(end);
    });
    const unsubscribe = this.#runtime.subscribe(view, undefined, push);
    this.#ends.add(end);
    return iterator;
  }

  readonly #ends = new Set<() => void>();

  /** The runtime (for status, reads by page and filter, search). */
  get runtime(): PipelineRuntime {
    return this.#runtime;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const end of this.#ends) end();
    await this.#runtime.close();
  }

  #checkOpen(): void {
    if (this.#closed) throw new DefiniteError('closed', 'the database is closed');
  }
}

function readDefinitions(data: string): string {
  try {
    return fs.readFileSync(path.join(data, DEFINITIONS), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw error;
  }
}

function statementText(statement: PipelineStatement, sql: string): string {
  return sql.slice(statement.span.offset, statement.span.offset + statement.span.length);
}

function countCopies(weights: readonly number[]): number {
  let total = 0;
  for (const weight of weights) total += Math.abs(weight);
  return total;
}
