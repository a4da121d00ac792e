/** The embedded search index sink (SQLite FTS5): see search-index.ts for its design, query.ts for its query language. */
export { SearchIndex } from './search-index.ts';
export type { SearchIndexOptions, SearchOptions, SearchHit, SearchResult, SearchIndexStats } from './search-index.ts';
export { parseQuery, compileQuery, tokenize, MAX_QUERY_LENGTH, MAX_QUERY_ITEMS, MIN_PREFIX_LENGTH } from './query.ts';
export type { ParsedQuery, Phrase, ParseOptions } from './query.ts';
export { resolveFields } from './fields.ts';
export type { SearchField } from './fields.ts';
