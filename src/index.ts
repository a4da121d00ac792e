/**
 * Sluice's embedded API (DESIGN.md, "Embedded API"): `open()` a database, `execute` SQL, `insert`
 * and `delete` rows, `settle` on a position, `query` views, follow `changes`, `close`.
 */
export { open, Database } from './pipeline/database.ts';
export { DurableDatabase } from './pipeline/durable.ts';
export type { OpenOptions, StatementResult, Change, ChangeStep, LiveQuery, CheckEntry } from './pipeline/database.ts';
export { DefiniteError, TransientError, Decimal, Timestamp, Json } from './core/index.ts';
export type { Value, Row } from './core/index.ts';
