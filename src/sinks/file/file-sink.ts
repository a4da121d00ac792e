/**
 * The JSONL file sink (`CREATE SINK … FROM view INTO FILE 'out.jsonl'`): a view's changes, one
 * line per change, in the change-stream shape of DESIGN.md, plus the step that wrote it:
 *
 *   {"op":"delete","row":{"id":2,"price":"120.00"},"position":"TOKEN","step":7}
 *   {"op":"insert","row":{"id":2,"price":"99.00"},"position":"TOKEN","step":7,"lines":2}
 *
 * A weight of n writes n identical lines. Deletes come before inserts within a step. `position`
 * is the step's frontier (the token a reader can pass as `atLeast` or `from`). Rows are shown
 * as `objectRow` shows them (numbers as numbers, numeric and big integers as text, json as its
 * value, the rest as PostgreSQL prints it).
 *
 * Exactly once across crashes, with the file itself as the state:
 * - Each step's lines are appended with one write, then fdatasync'd, before `write` resolves.
 * - The last line of each step carries `"lines":K`, the number of lines the step wrote. So on
 *   open, the tail is scanned backward to the last line with `lines` whose K − 1 lines before it
 *   are all whole lines of the same step: that step is committed (its `position` is the
 *   frontier), and anything after it — a torn line, or the first lines of a step whose write
 *   did not finish — is truncated away. A replayed step is then skipped; the next one appends.
 *   No duplicate, no gap.
 * - A step with no changes writes no line; it is recorded in a sidecar, `FILE.sluice-step`: one
 *   line `CRC32 {"step":N,"frontier":…,"size":S}` appended and synced per empty step (started
 *   afresh by an atomic replace when a process first records there or it grows past 64 KiB).
 *   Its last whole record counts only while the file is still S bytes long (a later step's
 *   lines make it stale). A damaged or missing sidecar only means those empty steps are
 *   replayed, which writes nothing.
 *
 * Invariants:
 * - The file holds whole steps only once `open` returns, and `committed()` is the last of them.
 * - Recovery discards only what a crash can leave: an unterminated last line, lines holding zero
 *   bytes (sectors that never reached the disk), and the lines of one unfinished step after the
 *   last whole one. Text that is not the sink's (another program's file) and lines of several
 *   unfinished steps are refused with an error naming the byte offset, never truncated.
 * - A failed append is cut back off the file before the error is thrown; after a failed sync
 *   the sink refuses further writes until reopened (its recovery decides what is durable).
 *
 * One process writes a file at a time (the pipeline runtime owns its sinks); the file must not
 * be rotated or edited while a pipeline writes it.
 */

import path from 'node:path';
import zlib from 'node:zlib';
import { DefiniteError, NodeStorage, replaceFileAtomically, TransientError, type Storage, type StorageFile } from '../../core/index.ts';
import { objectRow } from '../object-row.ts';
import type { Sink, SinkBatch, SinkTarget } from '../sink.ts';

export interface FileSinkOptions {
  /** File operations (tests pass a simulated storage). */
  storage?: Storage;
}

interface Committed {
  step: number;
  frontier: string;
}

/** One line of the file as the sink writes it. */
interface SinkLine {
  op: 'insert' | 'delete';
  row: Record<string, unknown>;
  position: string;
  step: number;
  lines?: number;
}

const SIDECAR_SUFFIX = '.sluice-step';
/** The sidecar is started afresh once it would grow past this. */
const SIDECAR_LIMIT = 1 << 16;
/** Strings are turned into buffers at about this size, so a huge step never builds one giant string. */
const CHUNK_CHARS = 1 << 22;

export class FileSink implements Sink {
  readonly file: string;
  readonly #target: SinkTarget;
  readonly #storage: Storage;
  readonly #handle: StorageFile;
  #size: number;
  #committed: Committed | undefined;
  #sidecar: StorageFile | undefined;
  #sidecarSize = 0;
  #queue: Promise<void> = Promise.resolve();
  #broken: Error | undefined;
  #closed = false;

  private constructor(file: string, target: SinkTarget, storage: Storage, handle: StorageFile, size: number, committed: Committed | undefined) {
    this.file = file;
    this.#target = target;
    this.#storage = storage;
    this.#handle = handle;
    this.#size = size;
    this.#committed = committed;
  }

  /** Opens (or creates) the file, recovering its last whole step. */
  static async open(file: string, target: SinkTarget, options: FileSinkOptions = {}): Promise<FileSink> {
    const storage = options.storage ?? new NodeStorage();
    const folder = path.dirname(file);
    await storage.makeFolder(folder);
    const existed = storage.exists(file);
    const handle = storage.open(file, { create: true });
    try {
      if (!existed) await storage.syncDirectory(folder);
      const size = handle.size();
      const recovered = recover(handle, size);
      if (recovered.end < size) {
        handle.truncate(recovered.end);
        await handle.sync('data');
      }
      let committed = recovered.committed;
      const sidecar = readSidecar(storage, file + SIDECAR_SUFFIX);
      if (sidecar && sidecar.size === recovered.end && (!committed || sidecar.step > committed.step)) committed = { step: sidecar.step, frontier: sidecar.frontier };
      return new FileSink(file, target, storage, handle, recovered.end, committed);
    } catch (error) {
      handle.close();
      throw error;
    }
  }

  committed(): { step: number; frontier: string } | undefined {
    return this.#committed && { ...this.#committed };
  }

  /** Appends the step's changes (one write, then fdatasync); a replayed step is skipped. */
  write(batch: SinkBatch): Promise<void> {
    const done = this.#queue.then(() => this.#write(batch));
    this.#queue = done.catch(() => {});
    return done;
  }

  async #write(batch: SinkBatch): Promise<void> {
    if (this.#closed) throw new DefiniteError('file_sink_closed', `the file sink ${this.file} is closed`, 'open it again');
    if (this.#broken) throw this.#broken;
    validateBatch(this.file, batch);
    if (this.#committed && batch.step <= this.#committed.step) return; // a replay: already written
    const buffers = encodeStep(batch, this.#target);
    if (buffers.length === 0) {
      try {
        await this.#recordEmptyStep(batch);
      } catch (error) {
        throw new TransientError('file_sink_write', `could not record empty step ${batch.step} beside ${this.file}: ${(error as Error).message}`, 'check free space and permissions; the step is retried', { cause: error });
      }
      this.#committed = { step: batch.step, frontier: batch.frontier };
      return;
    }
    const start = this.#size;
    let length = 0;
    for (const buffer of buffers) length += buffer.length;
    try {
      this.#handle.write(buffers, start);
    } catch (error) {
      // Cut off whatever part was written, so the file still ends with a whole step.
      try {
        this.#handle.truncate(start);
      } catch (truncateError) {
        this.#broken = brokenError(this.file, truncateError);
      }
      throw new TransientError('file_sink_write', `could not append step ${batch.step} to ${this.file}: ${(error as Error).message}`, 'check free space and permissions; the step is retried', { cause: error });
    }
    try {
      await this.#handle.sync('data');
    } catch (error) {
      // What reached the disk is unknown now: only recovery (reopening) can tell.
      this.#broken = brokenError(this.file, error);
      throw this.#broken;
    }
    this.#size = start + length;
    this.#committed = { step: batch.step, frontier: batch.frontier };
  }

  /**
   * Appends a record of an empty step to the sidecar and syncs it. Appending never touches the
   * records already synced, so a torn append loses only itself. The sidecar starts afresh (an
   * atomic replace) the first time a process records in it and whenever it has grown large.
   */
  async #recordEmptyStep(batch: SinkBatch): Promise<void> {
    const file = this.file + SIDECAR_SUFFIX;
    const json = JSON.stringify({ step: batch.step, frontier: batch.frontier, size: this.#size });
    const record = Buffer.from(`${crc32Hex(json)} ${json}\n`);
    if (!this.#sidecar || this.#sidecarSize + record.length > SIDECAR_LIMIT) {
      this.#sidecar?.close();
      this.#sidecar = undefined;
      await replaceFileAtomically(this.#storage, file, record);
      this.#sidecar = this.#storage.open(file, {});
      this.#sidecarSize = record.length;
      return;
    }
    this.#sidecar.write([record], this.#sidecarSize);
    this.#sidecarSize += record.length;
    await this.#sidecar.sync('data');
  }

  /** Waits for writes in flight, then closes the file. */
  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#queue;
    this.#closed = true;
    this.#handle.close();
    this.#sidecar?.close();
  }
}

function brokenError(file: string, cause: unknown): TransientError {
  return new TransientError(
    'file_sink_sync',
    `could not make ${file} durable: ${(cause as Error)?.message ?? String(cause)}`,
    'the file sink refuses further writes until it is reopened; reopening keeps the steps that reached the disk and the runtime replays the rest',
    { cause },
  );
}

function validateBatch(file: string, batch: SinkBatch): void {
  if (!Number.isSafeInteger(batch.step) || batch.step < 1) throw new DefiniteError('file_sink_batch', `${file}: step ${batch.step} is not a whole number ≥ 1`, 'steps are numbered from 1');
  if (batch.rows.length !== batch.weights.length) throw new DefiniteError('file_sink_batch', `${file}: step ${batch.step} has ${batch.rows.length} rows but ${batch.weights.length} weights`, 'give one weight per row');
  for (const weight of batch.weights) {
    if (!Number.isSafeInteger(weight)) throw new DefiniteError('file_sink_batch', `${file}: step ${batch.step} has weight ${weight}, not a whole number`, 'weights are whole numbers: +n inserts, −n deletes');
  }
}

/** The step's lines as buffers (none for an empty step); the last line carries `"lines":K`. */
function encodeStep(batch: SinkBatch, target: SinkTarget): Buffer[] {
  const { rows, weights } = batch;
  const tail = `,"position":${JSON.stringify(batch.frontier)},"step":${batch.step}}\n`;
  let count = 0;
  for (const weight of weights) count += Math.abs(weight);
  if (count === 0) return [];
  const buffers: Buffer[] = [];
  let text = '';
  let written = 0;
  for (const deletes of [true, false]) {
    for (let i = 0; i < rows.length; i++) {
      const weight = weights[i]!;
      if (weight === 0 || weight < 0 !== deletes) continue;
      const head = `{"op":"${deletes ? 'delete' : 'insert'}","row":${JSON.stringify(objectRow(rows[i]!, target.columns))}`;
      for (let copy = Math.abs(weight); copy > 0; copy--) {
        written++;
        text += written === count ? `${head}${tail.slice(0, -2)},"lines":${count}}\n` : head + tail;
        if (text.length >= CHUNK_CHARS) {
          buffers.push(Buffer.from(text));
          text = '';
        }
      }
    }
  }
  if (text.length > 0) buffers.push(Buffer.from(text));
  return buffers;
}

function sinkLine(value: unknown): SinkLine | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const line = value as Record<string, unknown>;
  if (line.op !== 'insert' && line.op !== 'delete') return undefined;
  if (typeof line.row !== 'object' || line.row === null || Array.isArray(line.row)) return undefined;
  if (typeof line.position !== 'string' || !Number.isSafeInteger(line.step) || (line.step as number) < 1) return undefined;
  if (line.lines !== undefined && !(Number.isSafeInteger(line.lines) && (line.lines as number) >= 1)) return undefined;
  return line as unknown as SinkLine;
}

interface Line {
  /** Byte offsets of the line in the file, its newline included in `end`. */
  start: number;
  end: number;
  /** The parsed line: a sink line, 'torn' (a crash's leftovers), or 'foreign' (not the sink's). */
  parsed: SinkLine | 'torn' | 'foreign';
}

/**
 * Finds the end of the last whole step: reads the tail backward in growing windows until a line
 * with `lines` = K is found whose K − 1 predecessors are lines of the same step.
 */
function recover(handle: StorageFile, size: number): { end: number; committed: Committed | undefined } {
  if (size === 0) return { end: 0, committed: undefined };
  for (let window = 1 << 16; ; window *= 4) {
    const start = Math.max(0, size - window);
    const bytes = Buffer.alloc(size - start);
    const read = handle.read(bytes, 0, bytes.length, start);
    if (read !== bytes.length) throw new TransientError('file_sink_read', `${handle.path}: read ${read} of ${bytes.length} bytes at ${start}`, 'the file changed while it was opened: make sure one pipeline writes it');
    // Whole lines in the window; a line cut by the window's start is not one of them.
    const lines: Line[] = [];
    let from = start === 0 ? 0 : bytes.indexOf(10) + 1;
    if (start > 0 && from === 0) continue; // no newline in the window yet: read more
    for (let newline = bytes.indexOf(10, from); newline >= 0; newline = bytes.indexOf(10, from)) {
      lines.push({ start: start + from, end: start + newline + 1, parsed: parseLine(bytes.subarray(from, newline)) });
      from = newline + 1;
    }
    if (!tornTail(bytes.subarray(from))) {
      throw new DefiniteError(
        'file_sink_damaged',
        `${handle.path} cannot be continued: it ends with text that the file sink did not write (at byte ${start + from})`,
        'a file sink appends to a file only it writes: choose another file for the sink, or move this one aside',
      );
    }
    const outcome = lastWholeStep(handle.path, lines, start === 0);
    if (outcome === 'more') {
      if (start === 0) throw new Error('unreachable: the whole file was read');
      continue;
    }
    return outcome;
  }
}

/**
 * A line is torn when a crash can explain it: it is not JSON and holds a zero byte (a sector
 * that never reached the disk reads back as zeros). Other text is not the sink's.
 */
function parseLine(bytes: Buffer): SinkLine | 'torn' | 'foreign' {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch {
    return bytes.includes(0) ? 'torn' : 'foreign';
  }
  return sinkLine(value) ?? 'foreign';
}

const LINE_START = Buffer.from('{"op":"');

/** Whether the bytes after the last newline can be the start of a line cut by a crash. */
function tornTail(bytes: Buffer): boolean {
  if (bytes.includes(0)) return true;
  const common = Math.min(bytes.length, LINE_START.length);
  return bytes.subarray(0, common).equals(LINE_START.subarray(0, common));
}

function lastWholeStep(file: string, lines: readonly Line[], wholeFile: boolean): { end: number; committed: Committed | undefined } | 'more' {
  // The step of the sink's lines seen after the candidate (an unfinished step), if any.
  let unfinished: number | undefined;
  const refuse = (line: Line, why: string) =>
    new DefiniteError(
      'file_sink_damaged',
      `${file} cannot be continued: ${why} (the line at byte ${line.start})`,
      'a file sink appends to a file only it writes: choose another file for the sink, or move this one aside (the pipeline then writes the view\'s changes again from its start)',
    );
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i]!;
    if (line.parsed === 'torn') continue;
    if (line.parsed === 'foreign') throw refuse(line, 'it holds a line that the file sink did not write');
    const { step, lines: count } = line.parsed;
    if (count !== undefined && (unfinished === undefined || step < unfinished)) {
      const first = i - count + 1;
      if (first < 0 && !wholeFile) return 'more';
      let whole = first >= 0;
      for (let j = Math.max(first, 0); whole && j < i; j++) {
        const before = lines[j]!.parsed;
        whole = typeof before === 'object' && before.step === step && before.lines === undefined;
      }
      if (whole) return { end: line.end, committed: { step, frontier: line.parsed.position } };
    }
    if (unfinished !== undefined && unfinished !== step) throw refuse(line, `the lines after the last whole step belong to several steps (${step} and ${unfinished})`);
    unfinished = step;
  }
  if (!wholeFile) return 'more';
  return { end: 0, committed: undefined };
}

function crc32Hex(text: string): string {
  return zlib.crc32(text).toString(16).padStart(8, '0');
}

/** The sidecar's last whole record (`CRC32 JSON` lines; a torn or damaged one is passed over). */
function readSidecar(storage: Storage, file: string): { step: number; frontier: string; size: number } | undefined {
  const bytes = storage.readWhole(file);
  if (!bytes) return undefined;
  const lines = bytes.toString('utf8').split('\n');
  lines.pop(); // whatever follows the last newline is not a whole record
  for (let i = lines.length - 1; i >= 0; i--) {
    const match = /^([0-9a-f]{8}) (.*)$/s.exec(lines[i]!);
    if (!match || crc32Hex(match[2]!) !== match[1]) continue;
    try {
      const record = JSON.parse(match[2]!) as { step: unknown; frontier: unknown; size: unknown };
      if (Number.isSafeInteger(record.step) && typeof record.frontier === 'string' && Number.isSafeInteger(record.size)) return record as { step: number; frontier: string; size: number };
    } catch {
      // not a record: pass over it
    }
  }
  return undefined;
}
