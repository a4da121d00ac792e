/**
 * The Sink interface: where a view's changes go (DESIGN.md, "Sinks"). Every sink behind it —
 * the embedded view store, the search index, JSONL files, and later PostgreSQL, Redis, … — is
 * written by the pipeline runtime the same way: one batch per engine step, in step order.
 *
 * Invariants every sink keeps:
 * - A batch is applied whole or not at all, together with its step number and frontier
 *   (transactional sinks commit both in one transaction; append-only sinks write deterministic
 *   ids so a replay converges).
 * - `committed()` tells the runtime where to resume after a restart; a batch whose step is at or
 *   below it is a replay and is skipped (nothing doubled).
 * - Changes within a batch are consolidated (one entry per distinct row, weight ≠ 0), deletes
 *   before inserts; a weight above 1 or below −1 means that many copies (views are multisets).
 */

import type { Row } from '../core/index.ts';
import type { SqlType } from '../sql/index.ts';

export interface SinkColumn {
  name: string;
  type: SqlType;
}

/** What a sink is created for: a view (or table) with its columns. */
export interface SinkTarget {
  /** The view's name, e.g. `products` or `shop.orders`. */
  name: string;
  columns: readonly SinkColumn[];
  /**
   * Columns that identify a row (a primary key the view passes through), when known. Without a
   * key a row is identified by all its values (and may occur several times).
   */
  key?: readonly number[];
}

export interface SinkBatch {
  /** The engine step this batch is the output of: strictly increasing, 1 for the first. */
  step: number;
  /** The opaque frontier (position token) the step reached: stored with the batch. */
  frontier: string;
  /** The view's changes in this step: rows with their weights (+n inserts, −n deletes). */
  rows: readonly Row[];
  weights: readonly number[];
}

export interface Sink {
  /** The last committed step and its frontier, or undefined before the first batch. */
  committed(): { step: number; frontier: string } | undefined;
  /** Applies one batch atomically with its step and frontier; a replayed step is skipped. */
  write(batch: SinkBatch): void | Promise<void>;
  close(): void | Promise<void>;
}
