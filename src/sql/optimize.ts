/**
 * Plan rewrites that keep results identical and make the circuit cheaper:
 * - predicates are pushed down: a WHERE over a tree of inner joins (comma joins included) is cut
 *   into conjuncts, each placed at the lowest join (or scan) that has all the columns it reads;
 *   through projections that only pass columns along; and into the inner side of outer joins
 *   when it reads only that side;
 * - inner joins are ordered so each join shares an equality with the relations before it when
 *   any can (no cross product when a key exists), then the original column order is restored;
 * - adjacent filters merge, and a TRUE filter disappears;
 * - columns nothing reads are dropped as low as possible (pruneColumns), so operator state holds
 *   narrow rows.
 *
 * Equality conjuncts between the two sides of a join become the engine's hash-join keys in
 * lowering (lower.ts); the rest is a residual predicate.
 */

import { column, columnsUsed, literal, mapColumns, shiftColumns, type Expr, type Rel } from './plan.ts';
import { BOOLEAN } from './scalar.ts';

export function optimize(rel: Rel): Rel {
  return mergeProjections(pruneColumns(rewrite(rel)));
}

/**
 * A projection of a projection becomes one (the outer expressions over the inner ones), when no
 * computed inner expression would be computed twice.
 */
function mergeProjections(rel: Rel): Rel {
  const merged = mapInputs(rel, mergeProjections);
  if (merged.kind !== 'project' || merged.input.kind !== 'project') return merged;
  const inner = merged.input;
  const uses = new Map<number, number>();
  for (const e of merged.exprs) for (const i of columnsUsed(e)) uses.set(i, (uses.get(i) ?? 0) + 1);
  if ([...uses].some(([i, n]) => n > 1 && inner.exprs[i]!.op !== 'column' && inner.exprs[i]!.op !== 'literal')) return merged;
  const exprs = merged.exprs.map((e) => mapColumns(e, (i) => inner.exprs[i]!));
  const identity = exprs.length === inner.input.columns.length && exprs.every((e, i) => e.op === 'column' && e.index === i && merged.columns[i]!.name === inner.input.columns[i]!.name);
  return identity ? inner.input : { ...merged, input: inner.input, exprs };
}

function mapInputs(rel: Rel, f: (input: Rel) => Rel): Rel {
  switch (rel.kind) {
    case 'scan':
    case 'values':
      return rel;
    case 'filter':
    case 'project':
    case 'distinct':
    case 'topK':
      return { ...rel, input: f(rel.input) } as Rel;
    case 'aggregate':
      return { ...rel, input: f(rel.input), domain: rel.domain ? f(rel.domain) : undefined };
    case 'join':
    case 'keyJoin':
    case 'setop':
      return { ...rel, left: f(rel.left), right: f(rel.right) } as Rel;
  }
}

function rewrite(rel: Rel): Rel {
  switch (rel.kind) {
    case 'scan':
    case 'values':
      return rel;
    case 'filter': {
      const conjuncts = splitConjuncts(rel.predicate);
      return pushDown(rewrite(rel.input), conjuncts);
    }
    case 'join':
      if (rel.join === 'inner') return pushDown(rel, []);
      return rewriteOuterJoin(rel);
    case 'project': {
      const input = rewrite(rel.input);
      // An identity projection (same columns, same names) disappears.
      const identity = rel.exprs.length === input.columns.length && rel.exprs.every((e, i) => e.op === 'column' && e.index === i && rel.columns[i]!.name === input.columns[i]!.name);
      return identity ? input : { ...rel, input };
    }
    case 'aggregate':
      return { ...rel, input: rewrite(rel.input), domain: rel.domain ? rewrite(rel.domain) : undefined };
    case 'distinct':
    case 'topK':
      return { ...rel, input: rewrite(rel.input) };
    case 'keyJoin':
    case 'setop':
      return { ...rel, left: rewrite(rel.left), right: rewrite(rel.right) };
  }
}

export function splitConjuncts(expr: Expr): Expr[] {
  if (expr.op === 'call' && expr.fn === 'and') return expr.args.flatMap(splitConjuncts);
  if (expr.op === 'literal' && expr.value === true) return [];
  return [expr];
}

export function conjunction(conjuncts: Expr[]): Expr {
  if (conjuncts.length === 0) return literal(true, BOOLEAN);
  if (conjuncts.length === 1) return conjuncts[0]!;
  return { op: 'call', fn: 'and', args: conjuncts, type: BOOLEAN };
}

function filter(rel: Rel, conjuncts: Expr[]): Rel {
  if (conjuncts.length === 0) return rel;
  return { kind: 'filter', input: rel, predicate: conjunction(conjuncts), columns: rel.columns };
}

/** Places `conjuncts` (over rel's columns) as low as they can go in `rel` (already rewritten below, except inner joins). */
function pushDown(rel: Rel, conjuncts: Expr[]): Rel {
  switch (rel.kind) {
    case 'filter':
      return pushDown(rel.input, [...splitConjuncts(rel.predicate), ...conjuncts]);
    case 'join':
      if (rel.join === 'inner') return joinTree(rel, conjuncts);
      return outerJoinFilter(rel, conjuncts);
    case 'project': {
      // Through a projection: the conjunct with the projected expressions substituted.
      if (conjuncts.length === 0) return rel;
      return { ...rel, input: pushDown(rel.input, conjuncts.map((c) => mapColumns(c, (i) => rel.exprs[i]!))) };
    }
    case 'aggregate': {
      // Conjuncts on group columns only filter the groups' input rows (not with a domain: its
      // groups exist without rows).
      if (rel.domain || conjuncts.length === 0) return filter(rel, conjuncts);
      const g = rel.groupBy.length;
      const below: Expr[] = [];
      const above: Expr[] = [];
      for (const conjunct of conjuncts) {
        if ([...columnsUsed(conjunct)].every((i) => i < g)) below.push(mapColumns(conjunct, (i) => rel.groupBy[i]!));
        else above.push(conjunct);
      }
      return filter(below.length > 0 ? { ...rel, input: pushDown(rel.input, below) } : rel, above);
    }
    case 'distinct':
      return conjuncts.length > 0 ? { ...rel, input: pushDown(rel.input, conjuncts) } : rel;
    case 'setop':
      // σ(A ∪ B) = σA ∪ σB, and likewise for ∩ and −, with bags or sets.
      return conjuncts.length > 0 ? { ...rel, left: pushDown(rel.left, conjuncts), right: pushDown(rel.right, conjuncts) } : rel;
    case 'keyJoin': {
      // Semi, anti and left key joins keep their left rows: conjuncts on those go below.
      const width = rel.left.columns.length;
      const below = conjuncts.filter((c) => [...columnsUsed(c)].every((i) => i < width));
      const above = conjuncts.filter((c) => !below.includes(c));
      return filter(below.length > 0 ? { ...rel, left: pushDown(rel.left, below) } : rel, above);
    }
    default:
      return filter(rel, conjuncts);
  }
}

/**
 * WHERE conjuncts over an outer join: one that rejects the NULLs an outer side pads with turns
 * that side inner (LEFT → INNER, FULL → LEFT/RIGHT); conjuncts on the preserved side alone go
 * below the join; the rest stay above.
 */
function outerJoinFilter(rel: Extract<Rel, { kind: 'join' }>, conjuncts: Expr[]): Rel {
  if (conjuncts.length === 0) return rel;
  const width = rel.left.columns.length;
  const leftColumns = new Set(rel.left.columns.map((_, i) => i));
  const rightColumns = new Set(rel.right.columns.map((_, i) => i + width));
  const rejectsRight = conjuncts.some((c) => rejectsNulls(c, rightColumns));
  const rejectsLeft = conjuncts.some((c) => rejectsNulls(c, leftColumns));
  let join = rel.join;
  if (join === 'left' && rejectsRight) join = 'inner';
  else if (join === 'right' && rejectsLeft) join = 'inner';
  else if (join === 'full' && (rejectsLeft || rejectsRight)) join = rejectsLeft && rejectsRight ? 'inner' : rejectsRight ? 'right' : 'left';
  if (join !== rel.join) return pushDown(join === 'inner' ? { ...rel, join } : rewriteOuterJoin({ ...rel, join }), conjuncts);
  const below: Expr[] = [];
  const above: Expr[] = [];
  for (const conjunct of conjuncts) {
    const used = [...columnsUsed(conjunct)];
    if (used.length > 0 && join === 'left' && used.every((i) => i < width)) below.push(conjunct);
    else if (used.length > 0 && join === 'right' && used.every((i) => i >= width)) below.push(shiftColumns(conjunct, -width));
    else above.push(conjunct);
  }
  if (below.length === 0) return filter(rel, above);
  const pushed = join === 'left' ? { ...rel, left: pushDown(rel.left, below) } : { ...rel, right: pushDown(rel.right, below) };
  return filter(pushed, above);
}

/** Functions that may return non-NULL for NULL arguments (the rest give NULL for a NULL). */
const NULL_TOLERANT = new Set(['coalesce', 'nullif', 'greatest', 'least', 'is_distinct', 'is_not_distinct', 'concat', 'concat_ws', 'jsonb_build_object', 'json_build_object', 'is_null', 'is_not_null', 'is_true', 'is_not_true', 'is_false', 'is_not_false', 'is_unknown', 'is_not_unknown', 'and', 'or', 'not', 'in', '$scalar_subquery', '$in_subquery', '$quantified']);

/** Whether `expr` is NULL whenever all of `columns` are NULL. */
function nullOnNull(expr: Expr, columns: Set<number>): boolean {
  switch (expr.op) {
    case 'column':
      return columns.has(expr.index);
    case 'cast':
      return nullOnNull(expr.arg, columns);
    case 'call':
      return !NULL_TOLERANT.has(expr.fn) && expr.args.some((arg) => nullOnNull(arg, columns));
    default:
      return false;
  }
}

/** Whether a WHERE conjunct is never TRUE when all of `columns` are NULL (a padded outer row). */
function rejectsNulls(expr: Expr, columns: Set<number>): boolean {
  if (expr.op !== 'call') return false;
  switch (expr.fn) {
    case 'and':
      return expr.args.some((arg) => rejectsNulls(arg, columns));
    case 'or':
      return expr.args.every((arg) => rejectsNulls(arg, columns));
    case 'is_not_null':
    case 'is_true':
      return nullOnNull(expr.args[0]!, columns) || rejectsNulls(expr.args[0]!, columns);
    case 'in':
      return nullOnNull(expr.args[0]!, columns);
    default:
      return nullOnNull(expr, columns);
  }
}

function rewriteOuterJoin(rel: Extract<Rel, { kind: 'join' }>): Rel {
  const left = rewrite(rel.left);
  const right = rewrite(rel.right);
  const width = left.columns.length;
  // ON conjuncts that read only the nullable side filter that side before the join.
  const on: Expr[] = [];
  let newLeft = left;
  let newRight = right;
  const leftPush: Expr[] = [];
  const rightPush: Expr[] = [];
  for (const conjunct of splitConjuncts(rel.on)) {
    const used = [...columnsUsed(conjunct)];
    if (used.length > 0 && rel.join === 'left' && used.every((i) => i >= width)) rightPush.push(shiftColumns(conjunct, -width));
    else if (used.length > 0 && rel.join === 'right' && used.every((i) => i < width)) leftPush.push(conjunct);
    else on.push(conjunct);
  }
  if (rightPush.length) newRight = pushDown(right, rightPush);
  if (leftPush.length) newLeft = pushDown(left, leftPush);
  return { ...rel, left: newLeft, right: newRight, on: conjunction(on) };
}

/**
 * A tree of inner joins with extra conjuncts: flattened into its leaves, conjuncts placed, leaves
 * ordered greedily by shared equalities, rebuilt left-deep, and projected back to the original
 * column order.
 */
function joinTree(rel: Extract<Rel, { kind: 'join' }>, extra: Expr[]): Rel {
  const leaves: Rel[] = [];
  const offsets: number[] = [];
  const conjuncts: Expr[] = [...extra];
  const flatten = (r: Rel, offset: number) => {
    if (r.kind === 'join' && r.join === 'inner') {
      flatten(r.left, offset);
      flatten(r.right, offset + r.left.columns.length);
      for (const c of splitConjuncts(r.on)) conjuncts.push(shiftColumns(c, offset));
    } else if (r.kind === 'filter') {
      // A filter directly over a leaf: its conjuncts join the pool (they may move further down).
      const before = leaves.length;
      flatten(r.input, offset);
      if (leaves.length === before + 1) for (const c of splitConjuncts(r.predicate)) conjuncts.push(shiftColumns(c, offset));
      else conjuncts.push(shiftColumns(r.predicate, offset));
    } else {
      leaves.push(r);
      offsets.push(offset);
    }
  };
  flatten(rel, 0);
  const leafOf = (index: number) => {
    for (let i = offsets.length - 1; i >= 0; i--) if (index >= offsets[i]!) return i;
    return 0;
  };
  // Conjuncts reading one leaf go into that leaf; the rest are placed while building.
  const perLeaf: Expr[][] = leaves.map(() => []);
  const pool: Array<{ expr: Expr; leaves: Set<number> }> = [];
  for (const conjunct of conjuncts) {
    const used = [...columnsUsed(conjunct)];
    const touched = new Set(used.map(leafOf));
    if (touched.size === 1) {
      const leaf = [...touched][0]!;
      perLeaf[leaf]!.push(shiftColumns(conjunct, -offsets[leaf]!));
    } else pool.push({ expr: conjunct, leaves: touched });
  }
  const built = leaves.map((leaf, i) => (perLeaf[i]!.length ? pushDown(rewrite(leaf), perLeaf[i]!) : rewrite(leaf)));
  if (leaves.length === 1) return filter(built[0]!, pool.map((p) => p.expr));

  // Greedy order: start with the first leaf; next, a leaf joined by an equality to those placed.
  const order: number[] = [0];
  const placed = new Set([0]);
  const isEquality = (e: Expr) => e.op === 'call' && e.fn === '=';
  while (order.length < leaves.length) {
    let next = -1;
    for (let i = 0; i < leaves.length && next < 0; i++) {
      if (placed.has(i)) continue;
      if (pool.some((p) => isEquality(p.expr) && p.leaves.has(i) && [...p.leaves].every((l) => l === i || placed.has(l)))) next = i;
    }
    if (next < 0) for (let i = 0; i < leaves.length && next < 0; i++) if (!placed.has(i)) next = i;
    order.push(next);
    placed.add(next);
  }
  // Build left-deep; track where each original column now is.
  const position = new Map<number, number>();
  let current = built[order[0]!]!;
  for (let c = 0; c < leaves[order[0]!]!.columns.length; c++) position.set(offsets[order[0]!]! + c, c);
  const done = new Set([order[0]!]);
  const remaining = [...pool];
  for (const leaf of order.slice(1)) {
    const width = current.columns.length;
    for (let c = 0; c < leaves[leaf]!.columns.length; c++) position.set(offsets[leaf]! + c, width + c);
    done.add(leaf);
    const here: Expr[] = [];
    for (let i = remaining.length - 1; i >= 0; i--) {
      if ([...remaining[i]!.leaves].every((l) => done.has(l))) {
        here.unshift(mapColumns(remaining[i]!.expr, (index, t) => column(position.get(index)!, t)));
        remaining.splice(i, 1);
      }
    }
    current = { kind: 'join', join: 'inner', left: current, right: built[leaf]!, on: conjunction(here), columns: [...current.columns, ...built[leaf]!.columns] };
  }
  const identity = order.every((leaf, i) => leaf === i);
  if (identity) return current;
  const exprs = rel.columns.map((c, i) => column(position.get(i)!, c.type));
  return { kind: 'project', input: current, exprs, columns: rel.columns };
}

/**
 * Column pruning: every relation keeps only the columns something above it reads, so joins,
 * aggregates and top-k hold narrower rows in their state. The plan's output columns are kept.
 */
export function pruneColumns(rel: Rel): Rel {
  const all = new Set(rel.columns.map((_, i) => i));
  return prune(rel, all).rel;
}

interface Pruned {
  rel: Rel;
  /** Old column index → new index (-1: dropped). */
  map: number[];
}

function identityMap(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

function remapExpr(expr: Expr, map: number[]): Expr {
  return mapColumns(expr, (index, t) => column(map[index]!, t));
}

/** A pruned relation cut down to exactly the `needed` columns (of the original numbering). */
function narrow(pruned: Pruned, needed: Set<number>): Pruned {
  const width = pruned.rel.columns.length;
  const keep = [...needed].sort((a, b) => a - b).map((old) => pruned.map[old]!);
  if (keep.length === width) return pruned;
  const exprs = keep.map((i) => column(i, pruned.rel.columns[i]!.type));
  return { rel: { kind: 'project', input: pruned.rel, exprs, columns: keep.map((i) => pruned.rel.columns[i]!) }, map: pruned.map.map((i) => (i < 0 ? -1 : keep.indexOf(i))) };
}

function prune(rel: Rel, required: Set<number>): Pruned {
  const n = rel.columns.length;
  const keepAll = (): Pruned => {
    const inputs = ((): Rel => {
      switch (rel.kind) {
        case 'distinct':
          return { ...rel, input: prune(rel.input, new Set(identityMap(rel.input.columns.length))).rel };
        case 'setop': {
          const left = prune(rel.left, new Set(identityMap(rel.left.columns.length))).rel;
          const right = prune(rel.right, new Set(identityMap(rel.right.columns.length))).rel;
          return { ...rel, left, right };
        }
        default:
          return rel;
      }
    })();
    return { rel: inputs, map: identityMap(n) };
  };
  switch (rel.kind) {
    case 'scan': {
      if (required.size === n) return { rel, map: identityMap(n) };
      const kept = [...required].sort((a, b) => a - b);
      const map = identityMap(n).map((i) => kept.indexOf(i));
      return { rel: { kind: 'project', input: rel, exprs: kept.map((i) => column(i, rel.columns[i]!.type)), columns: kept.map((i) => rel.columns[i]!) }, map };
    }
    case 'values':
      return { rel, map: identityMap(n) };
    case 'filter': {
      const needed = new Set(required);
      columnsUsed(rel.predicate, needed);
      const input = prune(rel.input, needed);
      return { rel: { kind: 'filter', input: input.rel, predicate: remapExpr(rel.predicate, input.map), columns: input.rel.columns }, map: input.map };
    }
    case 'project': {
      const kept = identityMap(n).filter((i) => required.has(i));
      const needed = new Set<number>();
      for (const i of kept) columnsUsed(rel.exprs[i]!, needed);
      const input = prune(rel.input, needed);
      const map = identityMap(n).map((i) => kept.indexOf(i));
      const exprs = kept.map((i) => remapExpr(rel.exprs[i]!, input.map));
      const columns = kept.map((i) => rel.columns[i]!);
      const identity = exprs.length === input.rel.columns.length && exprs.every((e, i) => e.op === 'column' && e.index === i && columns[i]!.name === input.rel.columns[i]!.name);
      return { rel: identity ? input.rel : { kind: 'project', input: input.rel, exprs, columns }, map };
    }
    case 'join': {
      const width = rel.left.columns.length;
      const needed = new Set(required);
      columnsUsed(rel.on, needed);
      // Each side is narrowed to what the join and the rows above read: the join keeps it in state.
      const left = narrow(prune(rel.left, new Set([...needed].filter((i) => i < width))), new Set([...needed].filter((i) => i < width)));
      const rightNeeded = new Set([...needed].filter((i) => i >= width).map((i) => i - width));
      const right = narrow(prune(rel.right, rightNeeded), rightNeeded);
      const newWidth = left.rel.columns.length;
      const map = identityMap(n).map((i) => (i < width ? left.map[i]! : right.map[i - width]! < 0 ? -1 : newWidth + right.map[i - width]!));
      return { rel: { ...rel, left: left.rel, right: right.rel, on: remapExpr(rel.on, map), columns: [...left.rel.columns, ...right.rel.columns] }, map };
    }
    case 'keyJoin': {
      const width = rel.left.columns.length;
      const leftNeeded = new Set([...required].filter((i) => i < width));
      for (const k of rel.leftKey) leftNeeded.add(k);
      const left = prune(rel.left, leftNeeded);
      if (rel.join !== 'left') {
        const right = prune(rel.right, new Set(rel.rightKey));
        return { rel: { ...rel, left: left.rel, right: right.rel, leftKey: rel.leftKey.map((k) => left.map[k]!), rightKey: rel.rightKey.map((k) => right.map[k]!), columns: left.rel.columns }, map: left.map };
      }
      const rightNeeded = new Set([...required].filter((i) => i >= width).map((i) => i - width));
      for (const k of rel.rightKey) rightNeeded.add(k);
      const right = prune(rel.right, rightNeeded);
      const newWidth = left.rel.columns.length;
      const map = identityMap(n).map((i) => (i < width ? left.map[i]! : right.map[i - width]! < 0 ? -1 : newWidth + right.map[i - width]!));
      return { rel: { ...rel, left: left.rel, right: right.rel, leftKey: rel.leftKey.map((k) => left.map[k]!), rightKey: rel.rightKey.map((k) => right.map[k]!), columns: [...left.rel.columns, ...right.rel.columns] }, map };
    }
    case 'aggregate': {
      const needed = new Set<number>();
      for (const g of rel.groupBy) columnsUsed(g, needed);
      for (const a of rel.aggregates) for (const arg of a.args) columnsUsed(arg, needed);
      const input = prune(rel.input, needed);
      const domain = rel.domain ? prune(rel.domain, new Set(identityMap(rel.domain.columns.length))).rel : undefined;
      return {
        rel: { ...rel, input: input.rel, domain, groupBy: rel.groupBy.map((g) => remapExpr(g, input.map)), aggregates: rel.aggregates.map((a) => ({ ...a, args: a.args.map((arg) => remapExpr(arg, input.map)) })) },
        map: identityMap(n),
      };
    }
    case 'topK': {
      const needed = new Set(required);
      for (const key of rel.orderBy) columnsUsed(key.expr, needed);
      for (const g of rel.groupBy) needed.add(g);
      // Ties are broken by the whole row: every column takes part in which rows are kept.
      for (let i = 0; i < n; i++) needed.add(i);
      const input = prune(rel.input, needed);
      return { rel: { ...rel, input: input.rel, orderBy: rel.orderBy.map((k) => ({ ...k, expr: remapExpr(k.expr, input.map) })), groupBy: rel.groupBy.map((g) => input.map[g]!), columns: input.rel.columns }, map: input.map };
    }
    case 'distinct':
    case 'setop':
      return keepAll();
  }
}
