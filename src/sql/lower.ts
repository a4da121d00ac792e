/**
 * Lowering: a relational plan → a circuit of the engine's incremental operators.
 *
 *   scan → an input (one per table, shared by every scan of it)   values → the unit input, mapped
 *   filter / project → filter / map (project when it only picks columns)
 *   join → hash join on its equality conjuncts (computed keys appended first), the rest residual
 *   keyJoin → semi-, anti- or left join on an encoded, NULL-safe key column
 *   aggregate → the engine's aggregate (+ a distinct pass per DISTINCT sum/avg/string_agg, joined
 *     back by group), then SQL's result types; groups of the domain with no rows get defaults
 *   distinct → distinct   setop → union (+ distinct), semi/anti-join, or counted multiplicities
 *   topK → the engine's top-k
 *
 * Invariants:
 * - The unit input (`UNIT_INPUT`, no columns) must receive exactly one row in a view's first step:
 *   FROM-less SELECTs and aggregates without GROUP BY hang from it.
 * - Output rows have the plan's columns, in order, with the plan's types' value kinds.
 */

import { Decimal, Json, Timestamp, type Row, type Value } from '../core/index.ts';
import { CircuitBuilder, type AggregateSpec, type SortKey, type Stream } from '../engine/index.ts';
import { compileExpr, compilePredicate, compileRow } from './compile.ts';
import { columnsUsed, shiftColumns, type AggregateCall, type Expr, type Rel } from './plan.ts';
import { splitConjuncts, conjunction } from './optimize.ts';
import { divideDecimal, isInteger, toDecimal } from './scalar.ts';

export const UNIT_INPUT = '$unit';

export interface Lowered {
  builder: CircuitBuilder;
  /** The tables the circuit reads (its inputs besides the unit), with their arity. */
  tables: Map<string, number>;
}

/** Adds the circuit computing `rel` to `builder` and returns its output stream. */
export function lower(rel: Rel, builder: CircuitBuilder, inputs = new Map<string, Stream>()): Stream {
  const lowering = new Lowering(builder, inputs);
  return lowering.rel(rel);
}

class Lowering {
  readonly builder: CircuitBuilder;
  readonly inputs: Map<string, Stream>;
  constructor(builder: CircuitBuilder, inputs: Map<string, Stream>) {
    this.builder = builder;
    this.inputs = inputs;
  }

  input(name: string, arity: number): Stream {
    let stream = this.inputs.get(name);
    if (!stream) {
      stream = this.builder.input(name, arity);
      this.inputs.set(name, stream);
    }
    return stream;
  }

  rel(rel: Rel): Stream {
    switch (rel.kind) {
      case 'scan':
        return this.input(rel.table, rel.columns.length);
      case 'values': {
        const unit = this.input(UNIT_INPUT, 0);
        if (rel.rows.length === 1 && rel.rows[0]!.length === 0) return unit;
        const rows = rel.rows.map((row) => compileRow(row));
        return unit.flatMap((empty) => rows.map((make) => make(empty)), rel.columns.length);
      }
      case 'filter':
        return this.rel(rel.input).filter(compilePredicate(rel.predicate));
      case 'project':
        return this.project(this.rel(rel.input), rel.exprs);
      case 'join':
        return this.join(rel);
      case 'keyJoin': {
        const left = withKey(this.rel(rel.left), rel.leftKey);
        const right = withKey(this.rel(rel.right), rel.rightKey);
        const leftWidth = rel.left.columns.length;
        const options = { leftKey: [leftWidth], rightKey: [rel.right.columns.length] };
        if (rel.join === 'semi') return left.semiJoin(right, options).project(range(0, leftWidth));
        if (rel.join === 'anti') return left.antiJoin(right, options).project(range(0, leftWidth));
        const joined = left.join(right, { ...options, kind: 'left' });
        return joined.project([...range(0, leftWidth), ...range(leftWidth + 1, leftWidth + 1 + rel.right.columns.length)]);
      }
      case 'aggregate':
        return this.aggregate(rel);
      case 'distinct':
        return this.rel(rel.input).distinct();
      case 'setop':
        return this.setop(rel);
      case 'topK': {
        let input = this.rel(rel.input);
        const width = rel.input.columns.length;
        const computed = rel.orderBy.filter((key) => key.expr.op !== 'column');
        if (computed.length > 0) input = input.map(appendColumns(computed.map((key) => key.expr)), width + computed.length);
        let next = width;
        const orderBy: SortKey[] = rel.orderBy.map((key) => ({ column: key.expr.op === 'column' ? key.expr.index : next++, descending: key.descending, nullsFirst: key.nullsFirst }));
        const top = input.topK({ groupBy: rel.groupBy, orderBy, limit: rel.limit, offset: rel.offset });
        return computed.length > 0 ? top.project(range(0, width)) : top;
      }
    }
  }

  project(input: Stream, exprs: Expr[]): Stream {
    if (exprs.every((e) => e.op === 'column')) {
      const columns = exprs.map((e) => (e as { index: number }).index);
      if (columns.length === input.arity && columns.every((c, i) => c === i)) return input;
      return input.project(columns);
    }
    return input.map(compileRow(exprs), exprs.length);
  }

  join(rel: Extract<Rel, { kind: 'join' }>): Stream {
    const leftWidth = rel.left.columns.length;
    const rightWidth = rel.right.columns.length;
    const leftKeys: Expr[] = [];
    const rightKeys: Expr[] = [];
    const residual: Expr[] = [];
    for (const conjunct of splitConjuncts(rel.on)) {
      if (conjunct.op === 'call' && conjunct.fn === '=' && conjunct.args[0]!.type.kind !== 'char') {
        const [a, b] = conjunct.args as [Expr, Expr];
        const sideA = side(a, leftWidth);
        const sideB = side(b, leftWidth);
        if (sideA === 'left' && sideB === 'right') {
          leftKeys.push(a);
          rightKeys.push(shiftColumns(b, -leftWidth));
          continue;
        }
        if (sideA === 'right' && sideB === 'left') {
          leftKeys.push(b);
          rightKeys.push(shiftColumns(a, -leftWidth));
          continue;
        }
      }
      residual.push(conjunct);
    }
    let left = this.rel(rel.left);
    let right = this.rel(rel.right);
    const leftKey = keyColumns(leftKeys, leftWidth);
    const rightKey = keyColumns(rightKeys, rightWidth);
    if (leftKey.extra.length > 0) left = left.map(appendColumns(leftKey.extra), leftWidth + leftKey.extra.length);
    if (rightKey.extra.length > 0) right = right.map(appendColumns(rightKey.extra), rightWidth + rightKey.extra.length);
    const leftArity = leftWidth + leftKey.extra.length;
    // The residual reads (left row, right row); right columns move past the left's computed keys.
    const residualExpr = residual.length > 0 ? shiftRight(conjunction(residual), leftWidth, leftKey.extra.length) : undefined;
    const joined = left.join(right, {
      kind: rel.join,
      leftKey: leftKey.columns,
      rightKey: rightKey.columns,
      ...(residualExpr ? { residual: compilePredicate(residualExpr, leftArity) as (l: Row, r: Row) => boolean } : {}),
    });
    if (leftKey.extra.length === 0 && rightKey.extra.length === 0) return joined;
    return joined.project([...range(0, leftWidth), ...range(leftArity, leftArity + rightWidth)]);
  }

  aggregate(rel: Extract<Rel, { kind: 'aggregate' }>): Stream {
    const g = rel.groupBy.length;
    // Pre-projection: group values, then each aggregate's arguments.
    const argExprs: Expr[] = [];
    const argIndex = rel.aggregates.map((a) => a.args.map((arg) => {
      const found = argExprs.findIndex((e) => e === arg);
      if (found >= 0) return g + found;
      argExprs.push(arg);
      return g + argExprs.length - 1;
    }));
    const input = this.project(this.rel(rel.input), [...rel.groupBy, ...argExprs]);
    const groupColumns = range(0, g);
    // Engine aggregates for the plain calls; avg is sum and count, divided afterwards.
    const specs: AggregateSpec[] = [];
    const plan: Array<{ kind: 'main'; columns: number[] } | { kind: 'distinct'; piece: number }> = [];
    const pieces: Stream[] = [];
    rel.aggregates.forEach((call, i) => {
      const column = argIndex[i]![0]!;
      if (call.distinct && call.fn !== 'count') {
        const distinctInput = input.project([...groupColumns, column]).distinct();
        const pieceSpecs = engineSpecs(call, g);
        pieces.push(distinctInput.aggregate(groupColumns, pieceSpecs));
        plan.push({ kind: 'distinct', piece: pieces.length - 1 });
        return;
      }
      const add = engineSpecs(call, column);
      const start = g + specs.length;
      specs.push(...add);
      plan.push({ kind: 'main', columns: range(start, start + add.length) });
    });
    // The plain aggregates (group values alone when there are none), then each DISTINCT piece
    // joined back by group on a NULL-safe key.
    let combined = input.aggregate(groupColumns, specs);
    const pieceOffsets: number[] = [];
    for (const piece of pieces) {
      const width = combined.arity;
      const joined = withKey(combined, groupColumns).join(withKey(piece, groupColumns), { leftKey: [width], rightKey: [piece.arity] });
      pieceOffsets.push(width);
      combined = joined.project([...range(0, width), ...range(width + 1 + g, width + 1 + piece.arity)]);
    }
    // SQL results from the engine's values.
    const finishers = rel.aggregates.map((call, i) => {
      const p = plan[i]!;
      const columns = p.kind === 'main' ? p.columns : [pieceOffsets[p.piece]!, pieceOffsets[p.piece]! + 1].slice(0, engineSpecs(call, 0).length);
      return finisher(call, columns);
    });
    const out = combined.map((row) => {
      const result = new Array<Value>(g + finishers.length);
      for (let i = 0; i < g; i++) result[i] = row[i]!;
      for (let i = 0; i < finishers.length; i++) result[g + i] = finishers[i]!(row);
      return result;
    }, g + finishers.length);
    if (!rel.domain) return out;
    // Groups of the domain with no input rows: count 0, everything else NULL.
    const domain = this.rel(rel.domain);
    const missing = withKey(domain, range(0, g)).antiJoin(withKey(out, groupColumns), { leftKey: [g], rightKey: [g + finishers.length] });
    const defaults = rel.aggregates.map((call) => (call.fn === 'count' || call.fn === 'count_star' ? 0 : null));
    const filled = missing.map((row) => [...row.slice(0, g), ...defaults], g + defaults.length);
    return out.union(filled);
  }

  setop(rel: Extract<Rel, { kind: 'setop' }>): Stream {
    const left = this.rel(rel.left);
    const right = this.rel(rel.right);
    const n = rel.columns.length;
    const all = range(0, n);
    if (rel.op === 'union') return rel.all ? left.union(right) : left.union(right).distinct();
    if (!rel.all) {
      const keyedLeft = withKey(left.distinct(), all);
      const keyedRight = withKey(right, all);
      const options = { leftKey: [n], rightKey: [n] };
      return (rel.op === 'intersect' ? keyedLeft.semiJoin(keyedRight, options) : keyedLeft.antiJoin(keyedRight, options)).project(all);
    }
    // Multiplicities: count each distinct row on both sides, then repeat min / (left − right).
    const leftCounts = withKey(left, all).aggregate([n, ...all], [{ kind: 'count' }]); // key, row…, count
    const rightCounts = withKey(right, all).aggregate([n], [{ kind: 'count' }]); // key, count
    const joined = leftCounts.join(rightCounts, { kind: rel.op === 'intersect' ? 'inner' : 'left', leftKey: [0], rightKey: [0] });
    const intersect = rel.op === 'intersect';
    return joined.flatMap((row) => {
      const l = Number(row[n + 1]);
      const r = row[n + 3] === null ? 0 : Number(row[n + 3]);
      const times = intersect ? Math.min(l, r) : Math.max(l - r, 0);
      const values = row.slice(1, n + 1);
      return Array.from({ length: times }, () => values);
    }, n);
  }
}

type Side = 'left' | 'right' | 'both' | 'none';
function side(expr: Expr, leftWidth: number): Side {
  const used = [...columnsUsed(expr)];
  if (used.length === 0) return 'none';
  if (used.every((i) => i < leftWidth)) return 'left';
  if (used.every((i) => i >= leftWidth)) return 'right';
  return 'both';
}

/** Key expressions as columns: plain columns are used in place, the rest are computed and appended. */
function keyColumns(keys: Expr[], width: number): { columns: number[]; extra: Expr[] } {
  const columns: number[] = [];
  const extra: Expr[] = [];
  for (const key of keys) {
    const plain = key.op === 'column' ? key : key.op === 'cast' && key.arg.op === 'column' && isInteger(key.type) && isInteger(key.arg.type) ? key.arg : undefined;
    if (plain && plain.op === 'column') columns.push(plain.index);
    else {
      columns.push(width + extra.length);
      extra.push(key);
    }
  }
  return { columns, extra };
}

/** Renumbers right-side columns (index ≥ leftWidth) of a join predicate by `by`. */
function shiftRight(expr: Expr, leftWidth: number, by: number): Expr {
  return by === 0 ? expr : remap(expr, leftWidth, by);
}

function remap(expr: Expr, leftWidth: number, by: number): Expr {
  switch (expr.op) {
    case 'column':
      return expr.index >= leftWidth ? { ...expr, index: expr.index + by } : expr;
    case 'call':
      return { ...expr, args: expr.args.map((a) => remap(a, leftWidth, by)) };
    case 'case':
      return { ...expr, whens: expr.whens.map(({ when, then }) => ({ when: remap(when, leftWidth, by), then: remap(then, leftWidth, by) })), otherwise: remap(expr.otherwise, leftWidth, by) };
    case 'cast':
      return { ...expr, arg: remap(expr.arg, leftWidth, by) };
    default:
      return expr;
  }
}

function appendColumns(exprs: Expr[]): (row: Row) => Row {
  const evaluators = exprs.map((e) => compileExpr(e));
  return (row) => {
    const out = row.slice();
    for (const evaluate of evaluators) out.push(evaluate(row));
    return out;
  };
}

function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(to - from, 0) }, (_, i) => from + i);
}

/** The stream with one more column: a NULL-safe text encoding of `columns` (NULL equals NULL). */
function withKey(stream: Stream, columns: number[]): Stream {
  return stream.map((row) => {
    const out = row.slice();
    out.push(encodeKey(row, columns));
    return out;
  }, stream.arity + 1);
}

/** An injective text encoding of some values of a row, equal for SQL-equal values of one type. */
export function encodeKey(row: Row, columns: readonly number[]): string {
  let key = '';
  for (const index of columns) key += encodeValue(row[index]!);
  return key;
}

function encodeValue(value: Value): string {
  if (value === null) return 'N;';
  switch (typeof value) {
    case 'number':
      return `D${value === 0 ? 0 : value};`;
    case 'bigint':
      return `D${value};`;
    case 'string':
      return `S${value.length}:${value}`;
    case 'boolean':
      return value ? 'T;' : 'F;';
  }
  if (value instanceof Decimal) return `D${value.normalized().toString()};`;
  if (value instanceof Timestamp) return `M${value.micros};`;
  if (value instanceof Json) return `J${value.text.length}:${value.text}`;
  if (value instanceof Uint8Array) return `B${Buffer.from(value).toString('hex')};`;
  if (Array.isArray(value)) return `A${value.length}:${value.map(encodeValue).join('')}`;
  return `?${String(value)};`;
}

/** The engine aggregates computing one SQL aggregate over column `column`. */
function engineSpecs(call: AggregateCall, column: number): AggregateSpec[] {
  switch (call.fn) {
    case 'count_star':
      return [{ kind: 'count' }];
    case 'count':
      return [call.distinct ? { kind: 'count_distinct', column } : { kind: 'count', column }];
    case 'avg':
      return [{ kind: 'sum', column }, { kind: 'count', column }];
    case 'sum':
    case 'min':
    case 'max':
    case 'bool_and':
    case 'bool_or':
      return [{ kind: call.fn, column }];
    case 'string_agg': {
      const separator = call.args[1]!;
      return [{ kind: 'string_agg', column, separator: separator.op === 'literal' ? String(separator.value) : '' }];
    }
    default:
      throw new Error(`no engine aggregate for ${call.fn}`);
  }
}

/** Turns the engine's result columns for one aggregate into the SQL value of its type. */
function finisher(call: AggregateCall, columns: number[]): (row: Row) => Value {
  const [a, b] = columns as [number, number];
  const kind = call.type.kind;
  switch (call.fn) {
    case 'avg':
      if (kind === 'double') return (row) => (row[a] === null || Number(row[b]) === 0 ? null : Number(row[a]) / Number(row[b]));
      return (row) => (row[a] === null || Number(row[b]) === 0 ? null : divideDecimal(toDecimal(row[a]!), Decimal.fromInteger(row[b] as number | bigint)));
    case 'sum':
      if (kind === 'numeric') return (row) => (row[a] === null ? null : toDecimal(row[a]!));
      if (kind === 'real') return (row) => (row[a] === null ? null : Math.fround(Number(row[a])));
      if (kind === 'double') return (row) => (row[a] === null ? null : Number(row[a]));
      return (row) => row[a]!;
    default:
      return (row) => row[a]!;
  }
}
