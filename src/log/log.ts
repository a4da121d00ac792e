/**
 * The log: durable, totally ordered, replayable topics of records, in partitions with dense
 * offsets from 0. Sources append to it, views are derived from it, replaying it rebuilds them.
 *
 * Invariants (every implementation, embedded files or JetStream):
 * - An append resolves only once its records are durable under its PersistMode; what resolved is
 *   never lost and never reordered, and a crash leaves at most a suffix of unacknowledged records.
 * - Offsets within a partition are assigned in append order and never reused. Compaction and
 *   retention may remove records, never renumber them.
 * - One writer per partition: a second writer is refused with a clear error, not interleaved.
 * - An idempotent producer's retried append (same producer id and sequence) is answered with the
 *   original offsets and appends nothing.
 */

/** How far an append is made durable before it is acknowledged. */
export type PersistMode = 'buffer' | 'syncData' | 'syncAll';

/** What to do with old records of a topic. */
export type CleanupPolicy = 'delete' | 'compact';

export interface TopicConfig {
  /** Number of partitions; fixed at creation so that key hashing stays stable. */
  partitions: number;
  /** 'delete': retention by age and size. 'compact': keep the latest record per key. */
  cleanupPolicy: CleanupPolicy;
  /** Delete-policy topics: a sealed segment whose newest record is older than this goes. 0 = keep. */
  retentionMs: number;
  /** Delete-policy topics: oldest sealed segments go while a partition is larger. 0 = keep. */
  retentionBytes: number;
  /** Compacted topics: how long a tombstone (a null value) is kept after its key's last record. */
  tombstoneRetentionMs: number;
  /** A segment is sealed and a new one started once it reaches this size. */
  segmentBytes: number;
}

/** A record to append. A null value is a tombstone on a compacted topic. */
export interface AppendRecord {
  key?: Uint8Array | string | null;
  value: Uint8Array | string | null;
}

/** An idempotent producer's identity and the sequence number of the first record appended. */
export interface ProducerSequence {
  /** Chosen by the producer (a source derives it from its name); a safe integer ≥ 1. */
  id: number;
  /** Per producer and partition, consecutive from the first append; a safe integer ≥ 0. */
  sequence: number;
}

export interface AppendOptions {
  persist?: PersistMode;
  producer?: ProducerSequence;
}

/** Offsets given to an append: `baseOffset` … `baseOffset + count - 1`. */
export interface AppendResult {
  partition: number;
  baseOffset: number;
  count: number;
  /** True when the producer sequence was seen before: nothing was appended this time. */
  duplicate: boolean;
}

export interface LogRecord {
  partition: number;
  offset: number;
  /** Milliseconds since the epoch at which the record's batch was appended. */
  timestamp: number;
  key: Buffer | null;
  value: Buffer | null;
}

export interface ReadOptions {
  /** Stop after this many records (default 10,000). */
  maxRecords?: number;
  /** Stop after about this many bytes of keys and values (default 16 MiB). */
  maxBytes?: number;
}

export interface ReadResult {
  records: LogRecord[];
  /** The offset to read from next; equals the end offset when the reader has caught up. */
  nextOffset: number;
}

export interface FollowOptions extends ReadOptions {
  signal?: AbortSignal;
}

export interface ProducerState {
  /** The sequence number of the last record the producer appended, or -1. */
  lastSequence: number;
  /** The offset that record was given, or -1. */
  lastOffset: number;
}

export interface Log {
  /** Creates a topic; an existing topic with the same config is accepted, a different one refused. */
  createTopic(topic: string, config?: Partial<TopicConfig>): Promise<TopicConfig>;
  /** The topics and their configs, by name. */
  topics(): Promise<Map<string, TopicConfig>>;
  /** The partition a key is hashed to; stable across restarts and implementations. */
  partitionFor(topic: string, key: Uint8Array | string): Promise<number>;
  /** Appends records to one partition, all or none, in order, under one producer sequence. */
  append(topic: string, partition: number, records: AppendRecord[], options?: AppendOptions): Promise<AppendResult>;
  /** Reads records at or after `from` that are durable (acknowledged or written before open). */
  read(topic: string, partition: number, from: number, options?: ReadOptions): Promise<ReadResult>;
  /** Reads from `from` and then waits for new records, until the signal aborts. */
  follow(topic: string, partition: number, from: number, options?: FollowOptions): AsyncIterable<ReadResult>;
  /**
   * Per partition, the offset below which nothing is stored: retention moves it forward; on a
   * compacted topic the first record kept may lie beyond it.
   */
  startOffsets(topic: string): Promise<number[]>;
  /** Per partition, the offset the next appended record will get (durable records only). */
  endOffsets(topic: string): Promise<number[]>;
  /** Where an idempotent producer left off, so it can resume its sequence after a restart. */
  producerState(topic: string, partition: number, producerId: number): Promise<ProducerState>;
  /** Durably records a consumer group's next offset to read. */
  commitOffset(group: string, topic: string, partition: number, offset: number): Promise<void>;
  /** A consumer group's committed offset, or undefined when it has committed none. */
  committedOffset(group: string, topic: string, partition: number): Promise<number | undefined>;
  /** Makes everything appended so far durable and releases the partitions. */
  close(): Promise<void>;
}

export const topicConfigDefaults: TopicConfig = {
  partitions: 1,
  cleanupPolicy: 'delete',
  retentionMs: 0,
  retentionBytes: 0,
  tombstoneRetentionMs: 24 * 60 * 60 * 1000,
  segmentBytes: 128 * 1024 * 1024,
};
