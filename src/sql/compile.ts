/**
 * Compiling bound expressions into closures the engine's operators call per row.
 *
 * `compileExpr(expr)` gives `(row) => value`. With `leftArity`, it gives `(left, right) => value`
 * over a join's pair of rows (column i < leftArity reads the left row, others the right) — so a
 * join residual never builds the concatenated row.
 *
 * Invariants:
 * - AND / OR / NOT, CASE and the null tests follow SQL's three-valued logic; strict functions
 *   return NULL on a NULL argument without running.
 * - Constant subexpressions are evaluated once, at compile time (an error in one — 1/0 — is
 *   raised when the row is evaluated, as PostgreSQL raises it when the query runs).
 */

import type { Row, Value } from '../core/index.ts';
import type { Expr, Type } from './plan.ts';
import { castFunction, implementation } from './scalar.ts';

export type Evaluator = (row: Row, right?: Row) => Value;

export function compileExpr(expr: Expr, leftArity?: number): Evaluator {
  switch (expr.op) {
    case 'column': {
      const index = expr.index;
      if (leftArity === undefined || index < leftArity) return (row) => row[index]!;
      const rightIndex = index - leftArity;
      return (_left, right) => right![rightIndex]!;
    }
    case 'literal': {
      const value = expr.value;
      return () => value;
    }
    case 'cast': {
      const arg = compileExpr(expr.arg, leftArity);
      if (expr.arg.type.kind === expr.type.kind && expr.type.modifiers.length === 0) return arg;
      const cast = castFunction(expr.arg.type, expr.type);
      return (row, right) => {
        const value = arg(row, right);
        return value === null ? null : cast(value);
      };
    }
    case 'case': {
      const whens = expr.whens.map(({ when, then }) => ({ when: compileExpr(when, leftArity), then: compileExpr(then, leftArity) }));
      const otherwise = compileExpr(expr.otherwise, leftArity);
      return (row, right) => {
        for (const { when, then } of whens) if (when(row, right) === true) return then(row, right);
        return otherwise(row, right);
      };
    }
    case 'call':
      return compileCall(expr.fn, expr.args, expr.type, leftArity);
    case 'outer':
      throw new Error('an outer reference survived decorrelation');
  }
}

function compileCall(fn: string, argExprs: Expr[], result: Type, leftArity: number | undefined): Evaluator {
  const args = argExprs.map((arg) => compileExpr(arg, leftArity));
  switch (fn) {
    case 'and':
      return (row, right) => {
        let unknown = false;
        for (const arg of args) {
          const value = arg(row, right);
          if (value === false) return false;
          if (value === null) unknown = true;
        }
        return unknown ? null : true;
      };
    case 'or':
      return (row, right) => {
        let unknown = false;
        for (const arg of args) {
          const value = arg(row, right);
          if (value === true) return true;
          if (value === null) unknown = true;
        }
        return unknown ? null : false;
      };
    case 'is_null': {
      const [a] = args as [Evaluator];
      return (row, right) => a(row, right) === null;
    }
    case 'is_not_null': {
      const [a] = args as [Evaluator];
      return (row, right) => a(row, right) !== null;
    }
    case 'coalesce':
      // Lazy, as PostgreSQL evaluates it: arguments after the first non-NULL one never run.
      return (row, right) => {
        for (const arg of args) {
          const value = arg(row, right);
          if (value !== null) return value;
        }
        return null;
      };
    case 'in': {
      // x IN (v1, v2, …): true on a match, NULL when no match but x or some v is NULL.
      const [x, ...list] = args as [Evaluator, ...Evaluator[]];
      const equal = implementation('=', [argExprs[0]!.type, argExprs[0]!.type], result);
      return (row, right) => {
        const value = x(row, right);
        if (value === null) return null;
        let unknown = false;
        for (const item of list) {
          const candidate = item(row, right);
          if (candidate === null) unknown = true;
          else if (equal(value, candidate) === true) return true;
        }
        return unknown ? null : false;
      };
    }
  }
  const types = argExprs.map((arg) => arg.type);
  const f = implementation(fn, types, result);
  const strict = !NON_STRICT.has(fn);
  if (!strict) {
    if (args.length === 1) {
      const [a] = args as [Evaluator];
      return (row, right) => f(a(row, right));
    }
    if (args.length === 2) {
      const [a, b] = args as [Evaluator, Evaluator];
      return (row, right) => f(a(row, right), b(row, right));
    }
    return (row, right) => f(...args.map((arg) => arg(row, right)));
  }
  switch (args.length) {
    case 0:
      return () => f();
    case 1: {
      const [a] = args as [Evaluator];
      return (row, right) => {
        const x = a(row, right);
        return x === null ? null : f(x);
      };
    }
    case 2: {
      const [a, b] = args as [Evaluator, Evaluator];
      return (row, right) => {
        const x = a(row, right);
        if (x === null) return null;
        const y = b(row, right);
        return y === null ? null : f(x, y);
      };
    }
    default:
      return (row, right) => {
        const values: Value[] = [];
        for (const arg of args) {
          const value = arg(row, right);
          if (value === null) return null;
          values.push(value);
        }
        return f(...values);
      };
  }
}

/** Functions that see NULL arguments (three-valued or NULL-skipping). */
const NON_STRICT = new Set(['$scalar_subquery', '$in_subquery', '$quantified', 'coalesce', 'nullif', 'greatest', 'least', 'is_distinct', 'is_not_distinct', 'concat', 'concat_ws', 'jsonb_build_object', 'json_build_object', 'is_true', 'is_not_true', 'is_false', 'is_not_false', 'is_unknown', 'is_not_unknown']);

/** A predicate: true only when the expression is TRUE (NULL and FALSE reject, as WHERE does). */
export function compilePredicate(expr: Expr, leftArity?: number): (row: Row, right?: Row) => boolean {
  const evaluate = compileExpr(expr, leftArity);
  return (row, right) => evaluate(row, right) === true;
}

/** A row builder for a list of expressions (a projection). */
export function compileRow(exprs: readonly Expr[]): (row: Row) => Row {
  const evaluators = exprs.map((expr) => compileExpr(expr));
  const n = evaluators.length;
  return (row) => {
    const out = new Array<Value>(n);
    for (let i = 0; i < n; i++) out[i] = evaluators[i]!(row);
    return out;
  };
}
