/** Vocabulary shared by every layer: errors now; rows, changes and positions as they arrive. */
export { SluiceError, DefiniteError, TransientError, CorruptionError } from './errors.ts';
export type { ErrorCode } from './errors.ts';
