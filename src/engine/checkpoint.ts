/**
 * Checkpoints: a circuit's whole state plus the input frontier, in one file replaced atomically.
 *
 * Byte layout (docs/formats/engine-checkpoint.md):
 *
 *   8 bytes   magic "SLUICECK"
 *   1 byte    format version (1)
 *   string    the circuit's fingerprint (varint length + UTF-8; see `fingerprint`)
 *   string    the frontier, as JSON
 *   …         each stateful operator's state, in node order (value codec of core/value-codec.ts)
 *   4 bytes   CRC32 (zlib) of every byte before it, little-endian
 *
 * Why one file and an atomic rename rather than node:sqlite: a checkpoint is written whole and
 * read whole, so one sequential write, one fdatasync and a rename is the cheapest all-or-nothing
 * write there is, with no per-row overhead; the rename is the commit point. A crash leaves the
 * old checkpoint or the new one, never a mix.
 *
 * Invariants:
 * - A checkpoint restores only into a circuit with the same fingerprint (same nodes, keys,
 *   aggregates, limits, function texts and caller-given version); anything else is refused.
 * - A damaged file is refused with a CorruptionError naming the byte, never half-restored.
 */

import { createHash } from 'node:crypto';
import zlib from 'node:zlib';
import { ByteReader, ByteWriter, CorruptionError, DefiniteError, NodeStorage, replaceFileAtomically, type Storage } from '../core/index.ts';
import type { Circuit } from './circuit.ts';
import type { CircuitDefinition } from './spec.ts';

const MAGIC = new TextEncoder().encode('SLUICECK');
const FORMAT_VERSION = 1;

export interface CheckpointOptions {
  storage?: Storage;
  /** Names the meaning of the circuit's functions beyond their text (e.g. a view's version). */
  version?: string;
}

/** A hash of what the circuit computes: its nodes with their parameters and function texts. */
export function fingerprint(definition: CircuitDefinition, version = ''): string {
  const shape = {
    version,
    inputs: [...definition.inputs],
    outputs: [...definition.outputs],
    nodes: definition.nodes.map((node) => ({ inputs: node.inputs, arity: node.arity, spec: node.spec })),
  };
  const text = JSON.stringify(shape, (_key, value: unknown) => (typeof value === 'function' ? `fn:${String(value)}` : value));
  return createHash('sha256').update(text).digest('hex');
}

export function encodeCheckpoint(circuit: Circuit, frontier: unknown, version?: string): Uint8Array {
  const writer = new ByteWriter(1 << 20);
  for (const byte of MAGIC) writer.uint8(byte);
  writer.uint8(FORMAT_VERSION);
  writer.string(fingerprint(circuit.definition, version));
  writer.string(JSON.stringify(frontier ?? null));
  circuit.save(writer);
  const body = writer.finish();
  writer.int32(zlib.crc32(body) | 0);
  return writer.finish().slice();
}

/** Restores a checkpoint's state into `circuit` and returns its frontier. */
export function decodeCheckpoint(circuit: Circuit, bytes: Uint8Array, file: string, version?: string): unknown {
  if (bytes.length < MAGIC.length + 5 || !MAGIC.every((byte, i) => bytes[i] === byte)) throw new CorruptionError(file, 0, 'not a Sluice checkpoint (bad magic)', 'delete the file to rebuild the views from the log');
  const body = bytes.subarray(0, bytes.length - 4);
  const stored = new DataView(bytes.buffer, bytes.byteOffset + bytes.length - 4, 4).getUint32(0, true);
  if ((zlib.crc32(body) >>> 0) !== stored) throw new CorruptionError(file, bytes.length - 4, 'checksum mismatch', 'delete the file to rebuild the views from the log');
  const reader = new ByteReader(body);
  for (let i = 0; i < MAGIC.length; i++) reader.uint8();
  const format = reader.uint8();
  if (format !== FORMAT_VERSION) throw new DefiniteError('checkpoint_format', `${file} has checkpoint format ${format}; this Sluice reads format ${FORMAT_VERSION}`, 'delete the file to rebuild the views from the log');
  const expected = fingerprint(circuit.definition, version);
  const found = reader.string();
  if (found !== expected) {
    throw new DefiniteError(
      'checkpoint_mismatch',
      `${file} was written by a different circuit (fingerprint ${found.slice(0, 12)}…, this circuit is ${expected.slice(0, 12)}…)`,
      'the definition changed since the checkpoint: delete the file to rebuild the views from the log',
    );
  }
  const frontier: unknown = JSON.parse(reader.string());
  try {
    circuit.restore(reader);
  } catch (error) {
    throw new CorruptionError(file, reader.position, `unreadable operator state (${(error as Error).message})`, 'delete the file to rebuild the views from the log');
  }
  if (!reader.done) throw new CorruptionError(file, reader.position, 'bytes left over after the operator state', 'delete the file to rebuild the views from the log');
  return frontier;
}

/** Saves the circuit's state and the frontier to `file`, atomically and durably. */
export async function saveCheckpoint(circuit: Circuit, file: string, frontier: unknown, options: CheckpointOptions = {}): Promise<void> {
  const storage = options.storage ?? new NodeStorage();
  await replaceFileAtomically(storage, file, encodeCheckpoint(circuit, frontier, options.version));
}

/**
 * Restores `file` into a fresh circuit and returns `{ frontier }`, or undefined when there is no
 * checkpoint yet (start from the beginning of the inputs).
 */
export function loadCheckpoint(circuit: Circuit, file: string, options: CheckpointOptions = {}): { frontier: unknown } | undefined {
  if (circuit.steps !== 0) throw new DefiniteError('checkpoint_restore', 'a checkpoint restores only into a fresh circuit (this one has run steps)');
  const storage = options.storage ?? new NodeStorage();
  const bytes = storage.readWhole(file);
  if (bytes === undefined) return undefined;
  return { frontier: decodeCheckpoint(circuit, bytes, file, options.version) };
}
