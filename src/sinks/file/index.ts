/** The JSONL file sink: a view's changes, one line per change, exactly once across crashes. */
export { FileSink } from './file-sink.ts';
export type { FileSinkOptions } from './file-sink.ts';
