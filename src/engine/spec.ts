/**
 * What a circuit is made of, as data: the node specifications that the incremental operators
 * (`operators/`) and the naive reference evaluator (`reference/`) both interpret.
 *
 * Semantics shared by both (the reference is their definition):
 * - Streams carry deltas (Z-sets). A relational node's output delta at step t is
 *   Q(∫inputs up to t) − Q(∫inputs up to t−1): DBSP's Q^Δ = D ∘ Q ∘ I.
 * - A row "is present" in an integrated relation when its weight is positive. Linear nodes and
 *   joins work on any weights; distinct, semi/anti-join matching, min/max and top-k consider the
 *   present rows, each as many times as its weight.
 * - Equi-join and semi/anti-join keys with a NULL in any column match nothing (SQL's `=`);
 *   group-by keys group NULLs together (SQL's GROUP BY).
 */

import type { Row } from '../core/index.ts';

export interface SortKey {
  column: number;
  descending?: boolean;
  /** Where NULLs go; PostgreSQL's default is last ascending, first descending. */
  nullsFirst?: boolean;
}

export type AggregateSpec =
  /** count(*) when `column` is absent, else count(column): non-NULL values. */
  | { kind: 'count'; column?: number }
  | { kind: 'count_distinct'; column: number }
  | { kind: 'sum' | 'avg' | 'min' | 'max' | 'bool_and' | 'bool_or'; column: number }
  | { kind: 'string_agg'; column: number; separator: string; orderBy?: SortKey[] }
  | { kind: 'array_agg'; column: number; orderBy?: SortKey[] };

export type JoinKind = 'inner' | 'left' | 'right' | 'full';

export type NodeSpec =
  | { kind: 'input'; name: string }
  | { kind: 'map'; map: (row: Row) => Row }
  | { kind: 'filter'; predicate: (row: Row) => boolean }
  | { kind: 'flatMap'; flatMap: (row: Row) => Iterable<Row> }
  | { kind: 'project'; columns: readonly number[] }
  | { kind: 'union' }
  | { kind: 'negate' }
  | { kind: 'minus' }
  | { kind: 'distinct' }
  /** Output rows are the left row's columns then the right row's; an unmatched side is NULLs. */
  | { kind: 'join'; join: JoinKind; leftKey: readonly number[]; rightKey: readonly number[]; residual?: (left: Row, right: Row) => boolean }
  | { kind: 'semiJoin' | 'antiJoin'; leftKey: readonly number[]; rightKey: readonly number[]; residual?: (left: Row, right: Row) => boolean }
  /** Output rows are the group-by columns then one column per aggregate. */
  | { kind: 'aggregate'; groupBy: readonly number[]; aggregates: readonly AggregateSpec[] }
  /** The rows at positions [offset, offset + limit) of each group in `orderBy` order (ties broken by the whole row). */
  | { kind: 'topK'; groupBy: readonly number[]; orderBy: readonly SortKey[]; limit: number; offset: number }
  | { kind: 'integrate' }
  | { kind: 'differentiate' }
  | { kind: 'delay' };

export interface NodeDefinition {
  readonly id: number;
  readonly spec: NodeSpec;
  readonly inputs: readonly number[];
  /** The number of columns of the node's rows. */
  readonly arity: number;
}

export interface CircuitDefinition {
  readonly nodes: readonly NodeDefinition[];
  readonly inputs: ReadonlyMap<string, number>;
  readonly outputs: ReadonlyMap<string, number>;
}
