/**
 * Pipeline SQL: parsing (parse.ts), binding against a catalog (bind.ts, scalar.ts, types.ts), the
 * relational IR (plan.ts), optimization (optimize.ts) and lowering to engine circuits (lower.ts,
 * compile.ts). See docs/ARCHITECTURE.md ("SQL").
 */
export { parsePipeline, parsePipelineAsync, loadParser, splitStatements, lineAndColumn, SqlError, SqlSyntaxError } from './parse.ts';
export type { PipelineStatement, SinkTarget, Span } from './parse.ts';
export { resolveType, typeName, inputValue, outputValue, SUPPORTED_TYPES, INTEGER_RANGES } from './types.ts';
export type { SqlType, TypeKind } from './types.ts';
export { Binder, BindError, closest, coerce, columnType, constantValue } from './bind.ts';
export type { Catalog, TableColumn, TableSchema } from './bind.ts';
export { explain, explainQuery, exprText, column, literal, type, visitExpr, tablesOf, uniqueKey } from './plan.ts';
export type { Column, Expr, Query, Rel, Type, OrderKey, AggregateCall } from './plan.ts';
export { optimize } from './optimize.ts';
export { lower, encodeKey, UNIT_INPUT } from './lower.ts';
export { compileExpr, compilePredicate, compileRow } from './compile.ts';
export { castFunction, compareSql, typeLabel } from './scalar.ts';
export { quoteIdentifier, quoteLiteral } from './quote.ts';
