/**
 * What a running pipeline offers the layers above it (the HTTP API of src/serve/, the CLI, the
 * embedded API): reads that name their position, appends, waits, change subscriptions and status.
 * The runtime (runtime.ts) implements it.
 *
 * Errors are DefiniteErrors with these codes (src/serve/ maps them to HTTP statuses):
 *   relation_unknown   no such table, view or search sink            → 404
 *   row_invalid        an appended row does not match the table      → 400 (names row and column)
 *   body_invalid       an append body is not rows                    → 400
 *   filter_invalid     a view filter names no column / bad value     → 400
 *   search_query       a search query that cannot be understood      → 400
 *   position_invalid   a position token that is not one of ours      → 400
 *   position_expired   a change stream cannot resume that far back   → 410
 *   view_failed        the view has no current result (1/0 …)        → 409
 *   sql_*              a bad one-shot query                          → 400
 *   stopping           the pipeline is shutting down                 → 503
 */

export interface ColumnInfo {
  name: string;
  /** The type as PostgreSQL names it: bigint, numeric(10,2), text, timestamp with time zone … */
  type: string;
}

export interface RelationInfo {
  name: string;
  kind: 'table' | 'view';
  columns: ColumnInfo[];
  /** Primary key columns of a table. */
  key?: string[];
}

export interface SearchSinkInfo {
  /** The sink's name (what GET /v1/search/NAME takes; the view's name works too when it has one search sink). */
  name: string;
  view: string;
  fields: string;
}

export interface Change {
  op: 'insert' | 'delete';
  row: Record<string, unknown>;
}

export interface ChangeEvent {
  /** The position token the view reached with this step (the SSE event id). */
  position: string;
  changes: Change[];
}

export interface SearchHitInfo {
  row: Record<string, unknown>;
  score: number;
  highlights: Record<string, string>;
}

/** A CDC source: what it is doing, where it stands, how far behind. */
export interface SourceStatus {
  name: string;
  kind: 'postgres' | 'mysql';
  /** starting (connecting, checking), snapshot (reading tables), streaming, failed (see error). */
  state: 'starting' | 'snapshot' | 'streaming' | 'failed';
  /** The source position of the last transaction in the log (a PostgreSQL LSN, or binlog file:position and GTID). */
  position: string;
  /** Records captured into the log that the views have not processed yet. */
  lag: number;
  /** Bytes of WAL (PostgreSQL) or binlog (MySQL) the server has written beyond what Sluice has captured (while streaming). */
  lagBytes?: number;
  /** How long ago the oldest change captured but not yet in the views was committed (0: none). */
  lagSeconds: number;
  /** Rows (changes) captured per second, over the last few seconds. */
  rowsPerSecond: number;
  /** Changes captured since start. */
  rowsCaptured: number;
  /** While the initial snapshot runs (and after it, its totals). */
  /** Column changes seen at the source (ALTER TABLE), newest last, and the views each stopped. */
  schemaChanges: Array<{ table: string; position: string; added: string[]; dropped: string[]; retyped: string[]; stoppedViews: string[] }>;
  snapshot?: { mode?: 'consistent' | 'watermark'; table: string; tablesDone: number; tables: number; rows: number; estimatedRows: number; rowsPerSecond: number; etaSeconds?: number; done: boolean };
  error?: { code: string; message: string; hint?: string };
}

export interface StatusReport {
  state: 'starting' | 'replaying' | 'running' | 'stopping' | 'stopped';
  /** The position every view and sink reflects. */
  position: string;
  startedAt: string;
  uptimeSeconds: number;
  /** Steps run since start, and input records (events) they consumed. */
  steps: number;
  eventsProcessed: number;
  /** Tables fed by appends (and, later, sources): their log topic, end, what is processed, lag. */
  tables: Array<{ name: string; topic: string; endOffset: number; processedOffset: number; lag: number; eventsAppended: number; rows: number }>;
  /** Change data capture sources (CREATE SOURCE). */
  sources: SourceStatus[];
  /** Each view's rows and the position (frontier) they reflect. */
  views: Array<{ name: string; rows: number; position: string; failure?: { code: string; message: string; hint?: string } }>;
  sinks: Array<{ name: string; kind: 'store' | 'search' | 'file'; view: string; step?: number; position?: string; file?: string }>;
  /** Milliseconds spent in the last step, and the largest since start. */
  lastStepMs: number;
  maxStepMs: number;
  /** Why the step loop stopped, when it did. */
  error?: { code: string; message: string; hint?: string };
}

export interface ReadViewOptions {
  limit?: number;
  offset?: number;
  /** Equality filters, column name → value as text. */
  filters?: Record<string, string>;
}

export interface AppendOptions {
  /** A retried append with the same key is a no-op that answers the first one's position. */
  idempotencyKey?: string;
}

export interface AppendResult {
  position: string;
  /** Rows appended (0 for a duplicate). */
  count: number;
  /** True when the idempotency key was seen before: nothing was appended. */
  duplicate: boolean;
}

export interface PipelineHandle {
  status(): StatusReport;
  /** Tables and views with their columns. */
  relations(): RelationInfo[];
  searchSinks(): SearchSinkInfo[];
  /** A view's (or table's) rows, paged and filtered, and the position they reflect. */
  readView(name: string, options?: ReadViewOptions): { rows: Record<string, unknown>[]; position: string };
  /** A one-shot SELECT over tables and views. */
  query(sql: string): Promise<{ columns: ColumnInfo[]; rows: Record<string, unknown>[]; position: string }>;
  search(name: string, q: string, options?: { limit?: number; offset?: number }): { hits: SearchHitInfo[]; position: string };
  /** Appends rows (objects) to a table, whole or not at all; resolves once they are durable in the log. */
  append(table: string, rows: readonly unknown[], options?: AppendOptions): Promise<AppendResult>;
  /** Resolves true once every view reflects `position`, false after `timeoutMs`. */
  waitFor(position: string, timeoutMs: number): Promise<boolean>;
  /**
   * Calls `listener` with each step's changes of `view`, starting after `from` (or from now),
   * until the returned function is called. Throws position_expired when `from` is older than the
   * changes kept in memory.
   */
  subscribe(view: string, from: string | undefined, listener: (event: ChangeEvent) => void): () => void;
}
