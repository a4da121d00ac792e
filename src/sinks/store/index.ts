/** The embedded view store: every view materialized in SQLite, readable by key, filter and page. */
export { ViewStore } from './view-store.ts';
export type { ViewStoreOptions, ReadOptions, ReadResult, StoredView } from './view-store.ts';
export { decimalKey } from './columns.ts';
