/** Helpers shared by the log's tests (not part of the log). */
import assert from 'node:assert/strict';
import type { Log, LogRecord } from '../log.ts';

/** Reads a partition from `from` to its end offset, `maxRecords` at a time (default: the log's). */
export async function readAll(log: Log, topic: string, partition: number, from = 0, maxRecords?: number): Promise<LogRecord[]> {
  const end = (await log.endOffsets(topic))[partition];
  const records: LogRecord[] = [];
  let next = from;
  while (next < end) {
    const result = await log.read(topic, partition, next, maxRecords === undefined ? undefined : { maxRecords });
    assert.ok(result.nextOffset > next, `a read from ${next} (end ${end}) made no progress`);
    records.push(...result.records);
    next = result.nextOffset;
  }
  return records;
}
