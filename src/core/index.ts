/** Vocabulary shared by every layer: errors, values and rows, their codec, and storage. */
export { SluiceError, DefiniteError, TransientError, CorruptionError } from './errors.ts';
export type { ErrorCode } from './errors.ts';
export {
  Decimal,
  Timestamp,
  Interval,
  Json,
  canonicalInteger,
  hashValue,
  hashRow,
  hashColumns,
  hashInto,
  valuesEqual,
  rowsEqual,
  columnsEqual,
  compareValues,
  compareRows,
  describe,
} from './value.ts';
export type { Value, Row, ValueArray, TimestampKind } from './value.ts';
export { ByteReader, ByteWriter } from './value-codec.ts';
export { NodeStorage, replaceFileAtomically, replaceRebuildableFile } from './storage.ts';
export { redactUrl, resolveSecrets } from './secrets.ts';
export type { Storage, StorageFile, SyncMode } from './storage.ts';
