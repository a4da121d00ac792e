/**
 * Idempotent producers (what Kafka's idempotent producer does): per partition, the last sequence
 * each producer appended and its few most recent batches, so that a retried append is answered
 * with its original offsets instead of being written twice.
 *
 * Invariants:
 * - A producer's sequences are consecutive: an append must start at last sequence + 1 (any
 *   sequence for a producer never seen). Earlier sequences are duplicates, later ones a gap.
 * - The state is derived from the log alone (batch headers carry producer id and sequence), plus
 *   snapshots written when a segment is sealed so recovery need not read the whole partition.
 */
import { DefiniteError } from '../../core/index.ts';
import { crc32 } from './segment-format.ts';

/** Batches remembered per producer, as Kafka does (max.in.flight.requests.per.connection). */
export const recentBatchesKept = 5;

export interface ProducerBatch {
  firstSequence: number;
  count: number;
  baseOffset: number;
}

export interface ProducerEntry {
  lastSequence: number;
  lastOffset: number;
  recent: ProducerBatch[];
}

export type SequenceCheck = { kind: 'append' } | { kind: 'duplicate'; batch: ProducerBatch };

export class ProducerTable {
  readonly entries = new Map<number, ProducerEntry>();

  /** Decides whether an append from this producer is new, a retried duplicate, or an error. */
  check(where: string, producerId: number, sequence: number, count: number): SequenceCheck {
    const entry = this.entries.get(producerId);
    if (!entry || sequence === entry.lastSequence + 1) return { kind: 'append' };
    if (sequence <= entry.lastSequence) {
      const batch = entry.recent.find((b) => b.firstSequence === sequence);
      if (batch && batch.count === count) return { kind: 'duplicate', batch };
      throw new DefiniteError(
        'producer_sequence_duplicate',
        `${where}: producer ${producerId} appended sequence ${sequence} (${count} records), which overlaps records it already appended (its last sequence is ${entry.lastSequence}) but is not one of its last ${recentBatchesKept} appends`,
        'retry an append with exactly the records and sequence it had, or continue from producerState().lastSequence + 1',
      );
    }
    throw new DefiniteError(
      'producer_sequence_gap',
      `${where}: producer ${producerId} appended sequence ${sequence}, but its last sequence is ${entry.lastSequence}: sequences ${entry.lastSequence + 1}…${sequence - 1} were never appended`,
      'a producer must append its sequences in order; resume from producerState().lastSequence + 1',
    );
  }

  /** Notes a batch appended (or found in the log) for a producer. */
  record(producerId: number, firstSequence: number, count: number, baseOffset: number, lastOffset: number): void {
    let entry = this.entries.get(producerId);
    if (!entry) {
      entry = { lastSequence: -1, lastOffset: -1, recent: [] };
      this.entries.set(producerId, entry);
    }
    entry.lastSequence = firstSequence + count - 1;
    entry.lastOffset = lastOffset;
    entry.recent.push({ firstSequence, count, baseOffset });
    if (entry.recent.length > recentBatchesKept) entry.recent.shift();
  }

  encode(): Buffer {
    const body = Buffer.from(JSON.stringify([...this.entries]));
    const out = Buffer.alloc(body.length + 4);
    out.writeUInt32LE(crc32(body), 0);
    body.copy(out, 4);
    return out;
  }

  /** Loads a snapshot; false when it is damaged (then the caller rebuilds from the log). */
  static decode(buffer: Buffer): ProducerTable | undefined {
    if (buffer.length < 4) return undefined;
    const body = buffer.subarray(4);
    if (buffer.readUInt32LE(0) !== crc32(body)) return undefined;
    const table = new ProducerTable();
    for (const [id, entry] of JSON.parse(body.toString()) as Array<[number, ProducerEntry]>) table.entries.set(id, entry);
    return table;
  }
}

export function producerSnapshotName(offset: number): string {
  return `${String(offset).padStart(20, '0')}.producers`;
}
