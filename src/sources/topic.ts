/**
 * A CDC source's topic (`source.NAME`, records.ts) as its one writer sees it: where the log
 * stands when the source starts, and appends that check nobody else wrote in between.
 *
 *   const topic = new SourceTopic(log, 'source.shop', 'shop', { persist, onAppend });
 *   const last = await topic.open();    // the last record that says where the log stands
 *   await topic.append([record, …]);    // all durable, or none
 */

import { DefiniteError } from '../core/index.ts';
import type { Log, PersistMode } from '../log/index.ts';
import { decodeSourceHeader, encodeSourceRecord, TRANSACTION_PART, type SourceRecord } from './records.ts';

export interface SourceTopicOptions {
  persist?: PersistMode;
  /** Each record once durable in the log. */
  onAppend?: (record: SourceRecord) => void;
}

/** What a source's capture (either connector) is given: its topic's options, and more. */
export interface SourceCaptureOptions extends SourceTopicOptions {
  /**
   * Capture the tables afresh: a new snapshot, whatever the log holds (`sluice up --resnapshot`).
   * Once its start record is written, a retry continues it.
   */
  resnapshot?: boolean;
}

export class SourceTopic {
  readonly name: string;
  readonly #log: Log;
  readonly #source: string;
  readonly #options: SourceTopicOptions;
  #end = 0;

  constructor(log: Log, name: string, source: string, options: SourceTopicOptions = {}) {
    this.#log = log;
    this.name = name;
    this.#source = source;
    this.#options = options;
  }

  /** The topic's end offset: the offset the next record gets. */
  get end(): number {
    return this.#end;
  }

  /**
   * Creates the topic when missing; returns its last record that says where the log stands,
   * without its changes (parts are written before their commit, so the very last record may be
   * one of a transaction never committed).
   */
  async open(): Promise<Omit<SourceRecord, 'changes'> | undefined> {
    await this.#log.createTopic(this.name, { partitions: 1 });
    const [end] = await this.#log.endOffsets(this.name);
    this.#end = end!;
    for (let offset = end! - 1; offset >= 0; offset--) {
      const header = await this.header(offset);
      if (!header) return undefined;
      if (header.kind !== TRANSACTION_PART) return header;
    }
    return undefined;
  }

  /** The record at `offset` without its changes. */
  async header(offset: number): Promise<Omit<SourceRecord, 'changes'> | undefined> {
    const { records } = await this.#log.read(this.name, 0, offset, { maxRecords: 1 });
    const record = records[0];
    return record?.value && record.offset === offset ? decodeSourceHeader(record.value, `${this.name} offset ${offset}`) : undefined;
  }

  /** Records appended as one batch: all durable, or none. */
  async append(records: SourceRecord[]): Promise<void> {
    const result = await this.#log.append(this.name, 0, records.map((record) => ({ value: encodeSourceRecord(record) })), this.#options.persist ? { persist: this.#options.persist } : {});
    if (result.baseOffset !== this.#end) throw new DefiniteError('internal', `source ${this.#source}: its topic ${this.name} was written by someone else (expected offset ${this.#end}, got ${result.baseOffset})`, 'only the source writes its topic');
    this.#end = result.baseOffset + result.count;
    for (const record of records) this.#options.onAppend?.(record);
  }
}
