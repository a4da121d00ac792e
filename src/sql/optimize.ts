/**
 * Plan rewrites that keep results identical and make the circuit cheaper:
 * - predicates are pushed down: a WHERE over a tree of inner joins (comma joins included) is cut
 *   into conjuncts, each placed at the lowest join (or scan) that has all the columns it reads;
 *   through projections that only pass columns along; and into the inner side of outer joins
 *   when it reads only that side;
 * - inner joins are ordered so each join shares an equality with the relations before it when
 *   any can (no cross product when a key exists), then the original column order is restored;
 * - adjacent filters merge, and a TRUE filter disappears.
 *
 * Equality conjuncts between the two sides of a join become the engine's hash-join keys in
 * lowering (lower.ts); the rest is a residual predicate.
 */

import { column, columnsUsed, literal, mapColumns, shiftColumns, type Expr, type Rel } from './plan.ts';
import { BOOLEAN } from './scalar.ts';

export function optimize(rel: Rel): Rel {
  return rewrite(rel);
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
      return filter(rel, conjuncts);
    case 'project': {
      // Through a projection: conjuncts that read only passed-along columns.
      const passed: Expr[] = [];
      const kept: Expr[] = [];
      for (const conjunct of conjuncts) {
        const used = [...columnsUsed(conjunct)];
        if (used.every((i) => rel.exprs[i]!.op === 'column')) passed.push(mapColumns(conjunct, (i) => rel.exprs[i]!));
        else kept.push(conjunct);
      }
      const input = passed.length > 0 ? pushDown(rel.input, passed) : rel.input;
      return filter({ ...rel, input }, kept);
    }
    default:
      return filter(rel, conjuncts);
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
