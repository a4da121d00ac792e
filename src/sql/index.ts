/** Pipeline SQL: parsing now; binding, planning and lowering to circuits as they land. */
export { parsePipeline, parsePipelineAsync, loadParser, splitStatements, lineAndColumn, SqlSyntaxError } from './parse.ts';
export type { PipelineStatement, SinkTarget, Span } from './parse.ts';
export { resolveType, typeName, inputValue, outputValue, SUPPORTED_TYPES } from './types.ts';
export type { SqlType, TypeKind } from './types.ts';
