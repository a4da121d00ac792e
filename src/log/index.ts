/** The log layer: the Log interface, key partitioning, and the embedded file implementation. */
export type {
  AppendOptions,
  AppendRecord,
  AppendResult,
  CleanupPolicy,
  FollowOptions,
  Log,
  LogRecord,
  PersistMode,
  ProducerSequence,
  ProducerState,
  ReadOptions,
  ReadResult,
  TopicConfig,
} from './log.ts';
export { topicConfigDefaults } from './log.ts';
export { partitionForKey, murmur2 } from './partitioner.ts';
export { FileLog, type FileLogOptions } from './file/file-log.ts';
