/** Pipeline SQL: parsing now; binding, planning and lowering to circuits as they land. */
export { parsePipeline, parsePipelineAsync, loadParser, splitStatements, lineAndColumn, SqlSyntaxError } from './parse.ts';
export type { PipelineStatement, SinkTarget, Span } from './parse.ts';
