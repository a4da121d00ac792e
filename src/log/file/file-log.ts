/**
 * The embedded log: topics of partitions of segment files under one folder.
 *
 *   DIR/topics/TOPIC/topic.json            the topic's config (written atomically)
 *   DIR/topics/TOPIC/P/NNNN….log           segments, named by base offset (see segment-format.ts)
 *   DIR/topics/TOPIC/P/NNNN….index         sparse offset index of a sealed segment
 *   DIR/topics/TOPIC/P/NNNN….producers     idempotent-producer state as of that offset
 *   DIR/topics/TOPIC/P/writer.lock         the writing process (writer-lock.ts)
 *   DIR/consumers/GROUP.json               committed consumer offsets (written atomically)
 *
 * Invariants:
 * - A writer opens a topic's partitions (taking their locks and recovering them) on first use,
 *   so a damaged or locked topic does not stop work on the others.
 * - A read-only log takes no lock and changes no file: it can run beside the writer.
 */
import path from 'node:path';
import { DefiniteError, replaceFileAtomically, NodeStorage, type Storage } from '../../core/index.ts';
import {
  topicConfigDefaults,
  type AppendOptions,
  type AppendRecord,
  type AppendResult,
  type FollowOptions,
  type Log,
  type PersistMode,
  type ProducerState,
  type ReadOptions,
  type ReadResult,
  type TopicConfig,
} from '../log.ts';
import { partitionForKey } from '../partitioner.ts';
import { applyRetention, compactPartition } from './cleanup.ts';
import { Partition } from './partition.ts';
import { WriterLock } from './writer-lock.ts';

export interface FileLogOptions {
  /** Read without taking writer locks or recovering: for a process beside the writer. */
  readOnly?: boolean;
  /** The PersistMode of appends that do not name one (default 'syncData'). */
  persist?: PersistMode;
  /** File operations (default: the real file system). */
  storage?: Storage;
  /** Clock for batch timestamps and retention (default Date.now). */
  now?: () => number;
  /** Take a writer lock per partition (default true; the simulation has no real files). */
  fence?: boolean;
  /** How often a read-only follower looks for new records, in ms (default 25). */
  pollMs?: number;
  /**
   * How often a writer compacts or applies retention to the topics it has open, in ms
   * (default 60,000; 0 = only when `cleanup` is called).
   */
  cleanupIntervalMs?: number;
}

const topicNamePattern = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,199}$/;
const groupNamePattern = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,199}$/;

interface OpenTopic {
  config: TopicConfig;
  partitions: Partition[];
  locks: WriterLock[];
}

function validateConfig(topic: string, config: TopicConfig): void {
  const problems: string[] = [];
  if (!Number.isInteger(config.partitions) || config.partitions < 1 || config.partitions > 10_000) problems.push('partitions must be an integer from 1 to 10000');
  if (config.cleanupPolicy !== 'delete' && config.cleanupPolicy !== 'compact') problems.push(`cleanupPolicy must be 'delete' or 'compact'`);
  for (const field of ['retentionMs', 'retentionBytes', 'tombstoneRetentionMs'] as const) {
    if (!Number.isSafeInteger(config[field]) || config[field] < 0) problems.push(`${field} must be a whole number ≥ 0`);
  }
  if (!Number.isSafeInteger(config.segmentBytes) || config.segmentBytes < 4096) problems.push('segmentBytes must be a whole number ≥ 4096');
  if (problems.length > 0) throw new DefiniteError('topic_config_invalid', `topic ${topic}: ${problems.join('; ')}`);
}

export class FileLog implements Log {
  readonly folder: string;
  readonly #options: Required<Omit<FileLogOptions, 'storage'>> & { storage: Storage };
  readonly #topics = new Map<string, Promise<OpenTopic>>();
  readonly #commits = new Map<string, Promise<void>>();
  #closed = false;
  /** Cleanups run one at a time, in the background or on request. */
  #cleaning: Promise<unknown> = Promise.resolve();
  #cleanupTimer: NodeJS.Timeout | undefined;

  private constructor(folder: string, options: FileLogOptions) {
    this.folder = folder;
    this.#options = {
      readOnly: options.readOnly ?? false,
      persist: options.persist ?? 'syncData',
      storage: options.storage ?? new NodeStorage(),
      now: options.now ?? Date.now,
      fence: options.fence ?? true,
      pollMs: options.pollMs ?? 25,
      cleanupIntervalMs: options.cleanupIntervalMs ?? 60_000,
    };
    if (!this.#options.readOnly && this.#options.cleanupIntervalMs > 0) {
      this.#cleanupTimer = setInterval(() => this.#cleanupOpenTopics(), this.#options.cleanupIntervalMs);
      this.#cleanupTimer.unref();
    }
  }

  /** Background cleanup of every open topic; a failure is kept for `lastCleanupError`. */
  #cleanupOpenTopics(): void {
    for (const topic of this.#topics.keys()) {
      this.cleanup(topic).catch((error: unknown) => {
        this.lastCleanupError = error as Error;
      });
    }
  }

  /** The last error of a background cleanup, for status reporting. */
  lastCleanupError: Error | undefined;

  /** Opens (creating when writable) the log in `folder`. */
  static async open(folder: string, options: FileLogOptions = {}): Promise<FileLog> {
    const log = new FileLog(path.resolve(folder), options);
    if (!log.#options.readOnly) {
      await log.#options.storage.makeFolder(path.join(log.folder, 'topics'));
      await log.#options.storage.makeFolder(path.join(log.folder, 'consumers'));
    }
    return log;
  }

  #topicFolder(topic: string): string {
    return path.join(this.folder, 'topics', topic);
  }

  #checkTopicName(topic: string): void {
    if (!topicNamePattern.test(topic)) {
      throw new DefiniteError('topic_name_invalid', `"${topic}" is not a valid topic name`, 'use letters, digits, ".", "_" and "-" (at most 200), not starting with "." or "-"');
    }
  }

  #readConfig(topic: string): TopicConfig | undefined {
    const bytes = this.#options.storage.readWhole(path.join(this.#topicFolder(topic), 'topic.json'));
    return bytes ? { ...topicConfigDefaults, ...(JSON.parse(bytes.toString()) as Partial<TopicConfig>) } : undefined;
  }

  async createTopic(topic: string, config: Partial<TopicConfig> = {}): Promise<TopicConfig> {
    this.#assertOpen();
    this.#checkTopicName(topic);
    const wanted: TopicConfig = { ...topicConfigDefaults, ...config };
    validateConfig(topic, wanted);
    const existing = this.#readConfig(topic);
    if (existing) {
      const differing = (Object.keys(config) as Array<keyof TopicConfig>).filter((key) => config[key] !== undefined && config[key] !== existing[key]);
      if (differing.length > 0) {
        throw new DefiniteError(
          'topic_exists',
          `topic ${topic} exists with ${differing.map((key) => `${key} = ${existing[key]}`).join(', ')}, not ${differing.map((key) => `${key} = ${config[key]}`).join(', ')}`,
          'a topic keeps the config it was created with; use another name, or drop the topic folder to start over',
        );
      }
      return existing;
    }
    if (this.#options.readOnly) throw new DefiniteError('log_read_only', `topic ${topic} does not exist and the log is open for reading only`);
    const { storage } = this.#options;
    const folder = this.#topicFolder(topic);
    await storage.makeFolder(folder);
    await replaceFileAtomically(storage, path.join(folder, 'topic.json'), Buffer.from(JSON.stringify(wanted, null, 2) + '\n'));
    await storage.syncDirectory(path.join(this.folder, 'topics'));
    return wanted;
  }

  async topics(): Promise<Map<string, TopicConfig>> {
    const result = new Map<string, TopicConfig>();
    for (const name of this.#options.storage.list(path.join(this.folder, 'topics'))) {
      const config = this.#readConfig(name);
      if (config) result.set(name, config);
    }
    return result;
  }

  /** The open topic, opening (locking and recovering) its partitions on first use. */
  #topic(topic: string): Promise<OpenTopic> {
    this.#assertOpen();
    let opening = this.#topics.get(topic);
    if (!opening) {
      opening = this.#openTopic(topic);
      this.#topics.set(topic, opening);
      opening.catch(() => this.#topics.delete(topic));
    }
    return opening;
  }

  async #openTopic(topic: string): Promise<OpenTopic> {
    this.#checkTopicName(topic);
    const config = this.#readConfig(topic);
    if (!config) {
      throw new DefiniteError('topic_unknown', `topic ${topic} does not exist in ${this.folder}`, 'create it first (`sluice log append` creates a topic on its first record)');
    }
    const { storage, readOnly, fence, persist, now } = this.#options;
    const opened: OpenTopic = { config, partitions: [], locks: [] };
    try {
      for (let p = 0; p < config.partitions; p++) {
        const folder = path.join(this.#topicFolder(topic), String(p));
        const name = `${topic}/${p}`;
        if (!readOnly) {
          await storage.makeFolder(folder);
          if (fence) opened.locks.push(WriterLock.acquire(path.join(folder, 'writer.lock'), `partition ${name}`));
        }
        opened.partitions.push(
          await Partition.open({ storage, folder, name, partition: p, segmentBytes: config.segmentBytes, persist, writer: !readOnly, now }),
        );
      }
    } catch (error) {
      for (const partition of opened.partitions) await partition.close().catch(() => {});
      for (const lock of opened.locks) lock.release();
      throw error;
    }
    return opened;
  }

  async #partition(topic: string, partition: number): Promise<Partition> {
    const opened = await this.#topic(topic);
    const found = opened.partitions[partition];
    if (!Number.isInteger(partition) || !found) {
      throw new DefiniteError('partition_unknown', `topic ${topic} has partitions 0…${opened.partitions.length - 1}, not ${partition}`);
    }
    return found;
  }

  async partitionFor(topic: string, key: Uint8Array | string): Promise<number> {
    const { config } = await this.#topic(topic);
    return partitionForKey(key, config.partitions);
  }

  async append(topic: string, partition: number, records: AppendRecord[], options?: AppendOptions): Promise<AppendResult> {
    const opened = await this.#topic(topic);
    if (opened.config.cleanupPolicy === 'compact') {
      const keyless = records.findIndex((record) => record.key === null || record.key === undefined);
      if (keyless >= 0) {
        throw new DefiniteError('record_key_missing', `topic ${topic} is compacted by key, but record ${keyless} of the append has no key`, 'give every record of a compacted topic a key');
      }
    }
    return (await this.#partition(topic, partition)).append(records, options);
  }

  async read(topic: string, partition: number, from: number, options?: ReadOptions): Promise<ReadResult> {
    return (await this.#partition(topic, partition)).read(from, options);
  }

  async *follow(topic: string, partition: number, from: number, options: FollowOptions = {}): AsyncIterable<ReadResult> {
    const opened = await this.#partition(topic, partition);
    let next = from;
    while (!options.signal?.aborted && !this.#closed) {
      const result = opened.read(next, options);
      next = result.nextOffset;
      if (result.records.length > 0) {
        yield result;
        continue;
      }
      await opened.waitForChange(next, this.#options.readOnly ? this.#options.pollMs : 1000, options.signal);
    }
  }

  async startOffsets(topic: string): Promise<number[]> {
    const opened = await this.#topic(topic);
    return opened.partitions.map((partition) => {
      if (this.#options.readOnly) partition.refresh();
      return partition.startOffset;
    });
  }

  async endOffsets(topic: string): Promise<number[]> {
    const opened = await this.#topic(topic);
    return opened.partitions.map((partition) => {
      if (this.#options.readOnly) partition.refresh();
      return partition.visibleOffset;
    });
  }

  async producerState(topic: string, partition: number, producerId: number): Promise<ProducerState> {
    return (await this.#partition(topic, partition)).producerState(producerId);
  }

  #groupFile(group: string): string {
    if (!groupNamePattern.test(group)) {
      throw new DefiniteError('group_name_invalid', `"${group}" is not a valid consumer group name`, 'use letters, digits, ".", "_" and "-"');
    }
    return path.join(this.folder, 'consumers', `${group}.json`);
  }

  #readOffsets(group: string): Record<string, number> {
    const bytes = this.#options.storage.readWhole(this.#groupFile(group));
    return bytes ? (JSON.parse(bytes.toString()) as Record<string, number>) : {};
  }

  commitOffset(group: string, topic: string, partition: number, offset: number): Promise<void> {
    this.#assertOpen();
    if (this.#options.readOnly) return Promise.reject(new DefiniteError('log_read_only', 'the log is open for reading only: offsets cannot be committed'));
    if (!Number.isSafeInteger(offset) || offset < 0) return Promise.reject(new DefiniteError('offset_invalid', `offset ${offset} is not a whole number ≥ 0`));
    let file: string;
    try {
      file = this.#groupFile(group);
    } catch (error) {
      return Promise.reject(error as Error);
    }
    // Commits of one group are applied in order, each a whole-file atomic replace.
    const previous = this.#commits.get(group) ?? Promise.resolve();
    const next = previous.then(async () => {
      const offsets = this.#readOffsets(group);
      offsets[`${topic}/${partition}`] = offset;
      await replaceFileAtomically(this.#options.storage, file, Buffer.from(JSON.stringify(offsets)));
    });
    this.#commits.set(group, next.catch(() => {}));
    return next;
  }

  async committedOffset(group: string, topic: string, partition: number): Promise<number | undefined> {
    await this.#commits.get(group);
    return this.#readOffsets(group)[`${topic}/${partition}`];
  }

  /** Compacts (compacted topics) or applies retention (delete topics) to every partition. */
  cleanup(topic: string): Promise<{ segmentsRemoved: number; bytesReclaimed: number }> {
    const run = this.#cleaning.then(() => this.#cleanupNow(topic));
    this.#cleaning = run.catch(() => {});
    return run;
  }

  async #cleanupNow(topic: string): Promise<{ segmentsRemoved: number; bytesReclaimed: number }> {
    const opened = await this.#topic(topic);
    if (this.#options.readOnly) throw new DefiniteError('log_read_only', 'the log is open for reading only');
    const total = { segmentsRemoved: 0, bytesReclaimed: 0 };
    for (const partition of opened.partitions) {
      const result =
        opened.config.cleanupPolicy === 'compact'
          ? await compactPartition(partition, opened.config, this.#options.now())
          : await applyRetention(partition, opened.config, this.#options.now());
      total.segmentsRemoved += result.segmentsRemoved;
      total.bytesReclaimed += result.bytesReclaimed;
    }
    return total;
  }

  #assertOpen(): void {
    if (this.#closed) throw new DefiniteError('log_closed', `the log in ${this.folder} is closed`);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    if (this.#cleanupTimer) clearInterval(this.#cleanupTimer);
    await this.#cleaning;
    this.#closed = true;
    for (const opening of this.#topics.values()) {
      let opened: OpenTopic;
      try {
        opened = await opening;
      } catch {
        continue;
      }
      for (const partition of opened.partitions) await partition.close();
      for (const lock of opened.locks) lock.release();
    }
    this.#topics.clear();
  }
}
