/**
 * The log benchmark: append throughput and ack latency of the embedded file log for 128 B and
 * 1 KiB records in each PersistMode with 1 and 16 concurrent producers, read throughput, and
 * beside them in the same run two peers:
 *
 * - the raw floor: the very group sizes the log's group commit wrote, replayed with
 *   fs.writeSync + fdatasync (fsync for syncAll, no sync for buffer) into one file;
 * - NATS JetStream (file storage, one replica) on a nats-server the benchmark starts.
 *
 * Invariants:
 * - Every case runs in a fresh temporary folder that is removed afterwards, and the nats-server
 *   child is killed on every way out, errors included.
 * - The table and the one JSON line go to stdout; progress goes to stderr.
 * - Throughput is a median over repeated runs of each case; the ack latencies are those of the
 *   median run.
 */
import { progress } from './format.ts';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { NodeStorage, type Storage, type StorageFile, type SyncMode } from '../src/core/storage.ts';
import { FileLog, type AppendRecord, type PersistMode } from '../src/log/index.ts';
import { dataStart } from '../src/log/file/segment-format.ts';

export const description = 'the embedded file log: appends, acks and reads, against the raw disk floor and NATS JetStream';

const topic = 'bench';

interface Settings {
  /** Seconds each run of a case appends for. */
  seconds: number;
  /** Runs of each case; throughput is their median. */
  repeats: number;
  /** Records per append (one batch). */
  batchRecords: number;
  /** Appends each producer keeps in flight. */
  window: number;
  /** Skip the JetStream peer. */
  skipJetStream: boolean;
  /** The cases to run: every combination of these. */
  recordSizes: number[];
  persistModes: PersistMode[];
  producerCounts: number[];
}

interface Row {
  case: string;
  system: 'sluice' | 'floor' | 'jetstream';
  operation: 'append' | 'read';
  recordBytes: number;
  persist?: PersistMode;
  producers?: number;
  records: number;
  seconds: number;
  recordsPerSecond: number;
  megabytesPerSecond: number;
  ackMsP50?: number;
  ackMsP99?: number;
  ackMsMax?: number;
  /** Sluice appends: segments rolled to during the run. */
  rolls?: number;
  /** Sluice appends: sync rounds that carried record bytes, and their mean size. */
  groups?: number;
  groupBytesMean?: number;
  /** Sluice appends: all fdatasync/fsync calls on segment files (marks, rolls included). */
  syncs?: number;
  ratioVsFloor?: number;
  ratioVsJetStream?: number;
  note?: string;
}

// ── Measuring what group commit writes ────────────────────────────────────────────────────────

/**
 * Counts what the log writes to its segment files, cut into sync rounds: a round is the bytes
 * written between two syncs (in buffer mode, where nothing syncs, each write of records is one).
 */
class GroupTrace {
  /** Bytes of each round that wrote records (mark bytes riding along included). */
  groups: number[] = [];
  syncs = 0;
  /** Segment files started (a header written at byte 0), the first one included. */
  segments = 0;
  roundsWithoutRecords = 0;
  #bytes = 0;
  #hasRecords = false;

  noteWrite(bytes: number, position: number): void {
    const records = position >= dataStart;
    if (position === 0) this.segments++;
    if (records && this.#hasRecords) this.#closeRound();
    this.#bytes += bytes;
    if (records) this.#hasRecords = true;
  }

  noteSync(): void {
    this.syncs++;
    this.#closeRound();
  }

  finish(): void {
    this.#closeRound();
  }

  #closeRound(): void {
    if (this.#hasRecords) this.groups.push(this.#bytes);
    else if (this.#bytes > 0 || this.syncs > 0) this.roundsWithoutRecords++;
    this.#bytes = 0;
    this.#hasRecords = false;
  }
}

class TracedFile implements StorageFile {
  readonly #inner: StorageFile;
  readonly #storage: { trace: GroupTrace };
  constructor(inner: StorageFile, storage: { trace: GroupTrace }) {
    this.#inner = inner;
    this.#storage = storage;
  }
  get path(): string {
    return this.#inner.path;
  }
  size(): number {
    return this.#inner.size();
  }
  read(target: Uint8Array, targetOffset: number, length: number, position: number): number {
    return this.#inner.read(target, targetOffset, length, position);
  }
  write(buffers: readonly Uint8Array[], position: number): void {
    let bytes = 0;
    for (const buffer of buffers) bytes += buffer.length;
    this.#storage.trace.noteWrite(bytes, position);
    this.#inner.write(buffers, position);
  }
  truncate(size: number): void {
    this.#inner.truncate(size);
  }
  sync(mode: SyncMode): Promise<void> {
    this.#storage.trace.noteSync();
    return this.#inner.sync(mode);
  }
  close(): void {
    this.#inner.close();
  }
}

/** The real file system, with segment-file writes and syncs counted into a GroupTrace. */
class TracedStorage extends NodeStorage implements Storage {
  trace = new GroupTrace();
  override open(file: string, options: { create?: boolean; readOnly?: boolean }): StorageFile {
    const inner = super.open(file, options);
    // Files hold on to the storage, not the trace, so that a reset reaches them too.
    return /\.log(\.tmp)?$/.test(file) ? new TracedFile(inner, this) : inner;
  }
}

// ── Helpers ───────────────────────────────────────────────────────────────────────────────────

/** Folders made and not yet removed: removed on the way out, even after an error or Ctrl-C. */
const temporaryFolders = new Set<string>();

function removeLeftovers(): void {
  for (const folder of temporaryFolders) fs.rmSync(folder, { recursive: true, force: true });
  temporaryFolders.clear();
}

let removeOnExit = false;

function temporaryFolder(label: string): string {
  if (!removeOnExit) {
    removeOnExit = true;
    process.on('exit', removeLeftovers);
  }
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), `sluice-bench-${label}-`));
  temporaryFolders.add(folder);
  return folder;
}

function removeFolder(folder: string): void {
  fs.rmSync(folder, { recursive: true, force: true });
  temporaryFolders.delete(folder);
}

function percentile(sorted: Float64Array, fraction: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(fraction * sorted.length) - 1))];
}

function median<T>(items: T[], by: (item: T) => number): T {
  const sorted = items.slice().sort((a, b) => by(a) - by(b));
  return sorted[(sorted.length - 1) >> 1];
}

/** Grows as latencies come in, without boxing each one. */
class Samples {
  values = new Float64Array(1 << 16);
  length = 0;
  add(value: number): void {
    if (this.length === this.values.length) {
      const grown = new Float64Array(this.values.length * 2);
      grown.set(this.values);
      this.values = grown;
    }
    this.values[this.length++] = value;
  }
  sorted(): Float64Array {
    return this.values.slice(0, this.length).sort();
  }
}

/** Fails a run that has not finished long after its deadline, rather than hanging the bench. */
async function withWatchdog<T>(work: Promise<T>, seconds: number, what: string): Promise<T> {
  const limitMs = seconds * 1000 * 10 + 60_000;
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} had not finished ${limitMs / 1000} s after it began (the run lasts ${seconds} s): an append or ack is stuck`)), limitMs);
  });
  try {
    return await Promise.race([work, expired]);
  } finally {
    clearTimeout(timer);
  }
}

function payloadOf(bytes: number): Buffer {
  const payload = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i++) payload[i] = 32 + ((i * 7919) % 95);
  return payload;
}


// ── Sluice appends ────────────────────────────────────────────────────────────────────────────

interface AppendRun {
  records: number;
  recordBytes: number;
  seconds: number;
  latencies: Float64Array;
  trace: GroupTrace;
  folder: string;
  log: FileLog;
}

/**
 * Producers append batches of `batchRecords` records to partition 0 of one topic, each keeping
 * `window` appends in flight, until `seconds` have passed; then every append in flight is awaited.
 */
async function runAppends(recordBytes: number, persist: PersistMode, producers: number, settings: Settings, seconds: number): Promise<AppendRun> {
  const folder = temporaryFolder(`${recordBytes}-${persist}-${producers}`);
  const storage = new TracedStorage();
  const log = await FileLog.open(folder, { storage, persist });
  await log.createTopic(topic, { partitions: 1 });
  const payload = payloadOf(recordBytes);
  const batch: AppendRecord[] = Array.from({ length: settings.batchRecords }, () => ({ value: payload }));
  const latencies = new Samples();
  let records = 0;
  // Opening the topic (lock, recovery) is not part of the measurement.
  await log.append(topic, 0, [{ value: payload }], { persist });
  storage.trace = new GroupTrace();
  const started = performance.now();
  const deadline = started + seconds * 1000;
  const lane = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const sent = performance.now();
      await log.append(topic, 0, batch, { persist });
      latencies.add(performance.now() - sent);
      records += batch.length;
    }
  };
  const lanes: Promise<void>[] = [];
  for (let i = 0; i < producers * settings.window; i++) lanes.push(lane());
  await withWatchdog(Promise.all(lanes), seconds, `appending ${recordBytes} B records in ${persist} mode with ${producers} producers`);
  const elapsed = (performance.now() - started) / 1000;
  storage.trace.finish();
  return { records, recordBytes, seconds: elapsed, latencies: latencies.sorted(), trace: storage.trace, folder, log };
}

/** The rate the open-loop case offers: the issue's append target. */
const openLoopRecordsPerSecond = 1_000_000;

/**
 * Open loop: appends of `batchRecords` records are issued on a fixed schedule (every millisecond,
 * the appends due by then) whether or not earlier ones were acknowledged, and each ack latency is
 * measured from when its append was *due* — so a stall delays every append scheduled during it
 * (no coordinated omission). This is ack latency at a given rate, not at saturation.
 */
async function runOpenLoop(recordBytes: number, persist: PersistMode, recordsPerSecond: number, settings: Settings, seconds: number): Promise<Row> {
  const folder = temporaryFolder(`open-${recordBytes}-${persist}`);
  const log = await FileLog.open(folder, { persist });
  try {
    await log.createTopic(topic, { partitions: 1 });
    const payload = payloadOf(recordBytes);
    const batch: AppendRecord[] = Array.from({ length: settings.batchRecords }, () => ({ value: payload }));
    await log.append(topic, 0, [{ value: payload }], { persist });
    const latencies = new Samples();
    const appendsPerMs = recordsPerSecond / 1000 / settings.batchRecords;
    const pending: Promise<void>[] = [];
    let records = 0;
    let owed = 0;
    const started = performance.now();
    const deadline = started + seconds * 1000;
    for (let tick = 0; started + tick <= deadline; ) {
      const now = performance.now();
      for (; started + tick <= now && started + tick <= deadline; tick++) {
        const due = started + tick;
        for (owed += appendsPerMs; owed >= 1; owed--) {
          pending.push(log.append(topic, 0, batch, { persist }).then(() => latencies.add(performance.now() - due)));
          records += batch.length;
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    await withWatchdog(Promise.all(pending), seconds, `appending at ${recordsPerSecond} records/s`);
    const elapsed = (performance.now() - started) / 1000;
    const sorted = latencies.sorted();
    return {
      case: `sluice ${recordBytes} B ${persist} open loop ${formatNumber(recordsPerSecond)}/s`,
      system: 'sluice',
      operation: 'append',
      recordBytes,
      persist,
      producers: 1,
      records,
      seconds: elapsed,
      recordsPerSecond: records / elapsed,
      megabytesPerSecond: (records * recordBytes) / elapsed / 1e6,
      ackMsP50: percentile(sorted, 0.5),
      ackMsP99: percentile(sorted, 0.99),
      ackMsMax: percentile(sorted, 1),
      note: 'open loop: appends issued on schedule, latency from when each was due',
    };
  } finally {
    await log.close();
    removeFolder(folder);
  }
}

/**
 * Replays the log's record-carrying groups, same sizes in the same order, as plain appends to
 * one file: writeSync, then fdatasync (syncData), fsync (syncAll) or nothing (buffer). Stops
 * after `secondsMax`; the rate is of the bytes replayed.
 */
function runFloor(groups: number[], persist: PersistMode, secondsMax: number): { bytes: number; seconds: number; latencies: Float64Array } {
  const folder = temporaryFolder('floor');
  try {
    const largest = groups.reduce((a, b) => Math.max(a, b), 0);
    const buffer = Buffer.alloc(largest, 0x5a);
    const fd = fs.openSync(path.join(folder, 'floor.bin'), 'w+');
    let position = 0;
    const latencies = new Samples();
    const started = performance.now();
    const stopAt = started + secondsMax * 1000;
    try {
      for (const size of groups) {
        const groupStarted = performance.now();
        let done = 0;
        while (done < size) done += fs.writeSync(fd, buffer, done, size - done, position + done);
        position += size;
        if (persist === 'syncData') fs.fdatasyncSync(fd);
        else if (persist === 'syncAll') fs.fsyncSync(fd);
        const now = performance.now();
        latencies.add(now - groupStarted);
        if (now > stopAt) break;
      }
    } finally {
      fs.closeSync(fd);
    }
    return { bytes: position, seconds: (performance.now() - started) / 1000, latencies: latencies.sorted() };
  } finally {
    removeFolder(folder);
  }
}

/** Reads the whole topic from offset 0 with log.read, `passes` times; the median pass. */
async function runReads(log: FileLog, expected: number, recordBytes: number, passes: number): Promise<{ records: number; seconds: number }> {
  const results: Array<{ records: number; seconds: number }> = [];
  for (let pass = 0; pass < passes; pass++) {
    let from = 0;
    let records = 0;
    let bytes = 0;
    const started = performance.now();
    for (;;) {
      const result = await log.read(topic, 0, from);
      if (result.records.length === 0) break;
      for (const record of result.records) bytes += record.value?.length ?? 0;
      records += result.records.length;
      from = result.nextOffset;
    }
    const seconds = (performance.now() - started) / 1000;
    if (records !== expected || bytes !== records * recordBytes) {
      throw new Error(`reading back found ${records} records of ${bytes} bytes, expected ${expected} of ${recordBytes} bytes each`);
    }
    results.push({ records, seconds });
  }
  return median(results, (result) => result.seconds);
}

// ── JetStream ─────────────────────────────────────────────────────────────────────────────────

function findNatsServer(): string {
  const folders = [...(process.env.PATH ?? '').split(path.delimiter), '/usr/sbin', '/usr/local/sbin', '/usr/bin', '/usr/local/bin'];
  for (const folder of folders) {
    if (!folder) continue;
    const candidate = path.join(folder, 'nats-server');
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  throw Object.assign(new Error('nats-server was not found on PATH nor in /usr/sbin: the JetStream peer needs it'), {
    hint: 'install the Debian package nats-server (apt-get install nats-server), or run with --no-jetstream',
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

interface NatsServer {
  port: number;
  version: string;
  stop(): Promise<void>;
}

async function startNatsServer(binary: string, folder: string): Promise<NatsServer> {
  const port = await freePort();
  const child: ChildProcess = spawn(binary, ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', folder], { stdio: ['ignore', 'ignore', 'pipe'] });
  const killOnExit = () => child.kill('SIGKILL');
  process.on('exit', killOnExit);
  let output = '';
  let version = 'unknown';
  let ready = false;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`nats-server did not become ready within 10 s:\n${output}`)), 10_000);
    const fail = (error: Error) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(error);
    };
    child.on('error', (error) => fail(new Error(`nats-server could not start: ${error.message}`)));
    const exitedEarly = (code: number | null) => fail(new Error(`nats-server exited with code ${code} before it was ready:\n${output}`));
    child.on('exit', exitedEarly);
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (text: string) => {
      output += text;
      const found = /Version:\s+(\S+)/.exec(output);
      if (found) version = found[1];
      if (!ready && output.includes('Server is ready')) {
        ready = true;
        clearTimeout(timer);
        child.off('exit', exitedEarly);
        resolve();
      }
    });
  });
  return {
    port,
    version,
    stop: () =>
      new Promise<void>((resolve) => {
        process.off('exit', killOnExit);
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 3000).unref();
      }),
  };
}

interface JetStreamRun {
  records: number;
  seconds: number;
  latencies: Float64Array;
  readRecords?: number;
  readSeconds?: number;
}

/**
 * Producers (one connection each) publish to a file-storage, one-replica stream with
 * `window × batchRecords` publishes in flight each — the same records in flight as the Sluice
 * producers — and time each publish until its ack. Then an ordered consumer reads it all back.
 */
async function runJetStream(port: number, recordBytes: number, producers: number, settings: Settings, seconds: number, streamName: string, read: boolean): Promise<JetStreamRun> {
  const { connect } = await import('@nats-io/transport-node');
  const { jetstream, jetstreamManager, StorageType } = await import('@nats-io/jetstream');
  const servers = `127.0.0.1:${port}`;
  const admin = await connect({ servers, noAsyncTraces: true });
  const connections = await Promise.all(Array.from({ length: producers }, () => connect({ servers, noAsyncTraces: true })));
  try {
    const manager = await jetstreamManager(admin);
    const subject = `${streamName}.records`;
    await manager.streams.add({ name: streamName, subjects: [subject], storage: StorageType.File, num_replicas: 1 });
    const payload = payloadOf(recordBytes);
    const latencies = new Samples();
    let records = 0;
    await jetstream(admin).publish(subject, payload);
    const started = performance.now();
    const deadline = started + seconds * 1000;
    const lanes: Promise<void>[] = [];
    for (const connection of connections) {
      const client = jetstream(connection, { timeout: 60_000 });
      for (let i = 0; i < settings.window * settings.batchRecords; i++) {
        lanes.push(
          (async () => {
            while (performance.now() < deadline) {
              const sent = performance.now();
              await client.publish(subject, payload);
              latencies.add(performance.now() - sent);
              records++;
            }
          })(),
        );
      }
    }
    await withWatchdog(Promise.all(lanes), seconds, `publishing ${recordBytes} B messages to JetStream with ${producers} producers`);
    const elapsed = (performance.now() - started) / 1000;
    const run: JetStreamRun = { records, seconds: elapsed, latencies: latencies.sorted() };
    if (read) {
      const total = records + 1;
      const consumer = await jetstream(admin).consumers.get(streamName);
      const readStarted = performance.now();
      const messages = await consumer.consume({ max_messages: 10_000 });
      let received = 0;
      let bytes = 0;
      const giveUp = setTimeout(() => messages.stop(), 60_000);
      for await (const message of messages) {
        received++;
        bytes += message.data.length;
        if (received >= total) break;
      }
      clearTimeout(giveUp);
      run.readSeconds = (performance.now() - readStarted) / 1000;
      run.readRecords = received;
      if (received < total) progress(`  jetstream read stopped after ${received} of ${total} messages`);
      if (bytes !== received * recordBytes) throw new Error(`JetStream read back ${bytes} bytes in ${received} messages of ${recordBytes} bytes each`);
    }
    await manager.streams.delete(streamName);
    return run;
  } finally {
    for (const connection of connections) await connection.close();
    await admin.close();
  }
}

// ── Output ────────────────────────────────────────────────────────────────────────────────────

function formatNumber(value: number | undefined, digits = 0): string {
  if (value === undefined || Number.isNaN(value)) return '';
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function printTable(rows: Row[]): void {
  const columns: Array<[string, (row: Row) => string]> = [
    ['case', (row) => row.case],
    ['records/s', (row) => formatNumber(row.recordsPerSecond)],
    ['MB/s', (row) => formatNumber(row.megabytesPerSecond, 1)],
    ['ack p50 ms', (row) => formatNumber(row.ackMsP50, 2)],
    ['ack p99 ms', (row) => formatNumber(row.ackMsP99, 2)],
    ['ack max ms', (row) => formatNumber(row.ackMsMax, 1)],
    ['vs floor', (row) => (row.ratioVsFloor === undefined ? '' : `${formatNumber(row.ratioVsFloor, 2)}×`)],
    ['vs JetStream', (row) => (row.ratioVsJetStream === undefined ? '' : `${formatNumber(row.ratioVsJetStream, 1)}×`)],
    ['groups', (row) => formatNumber(row.groups)],
    ['group KiB', (row) => formatNumber(row.groupBytesMean === undefined ? undefined : row.groupBytesMean / 1024, 1)],
    ['syncs', (row) => formatNumber(row.syncs)],
    ['rolls', (row) => formatNumber(row.rolls)],
  ];
  const cells = rows.map((row) => columns.map(([, cell]) => cell(row)));
  const widths = columns.map(([title], i) => Math.max(title.length, ...cells.map((line) => line[i].length)));
  const render = (line: string[]) => line.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  ').trimEnd();
  const lines = [render(columns.map(([title]) => title)), widths.map((width) => '─'.repeat(width)).join('  ')];
  for (const line of cells) lines.push(render(line));
  process.stdout.write(`${lines.join('\n')}\n`);
}

function round(value: number | undefined, digits: number): number | undefined {
  if (value === undefined || Number.isNaN(value)) return undefined;
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

// ── The benchmark ─────────────────────────────────────────────────────────────────────────────

function parseSettings(args: string[]): Settings {
  const { values } = parseArgs({
    args,
    options: {
      seconds: { type: 'string', default: '1.5' },
      repeats: { type: 'string', default: '3' },
      batch: { type: 'string', default: '100' },
      window: { type: 'string', default: '4' },
      'no-jetstream': { type: 'boolean', default: false },
      quick: { type: 'boolean', default: false },
      sizes: { type: 'string', default: '128,1024' },
      modes: { type: 'string', default: 'buffer,syncData,syncAll' },
      producers: { type: 'string', default: '1,16' },
    },
    strict: true,
  });
  const settings: Settings = {
    seconds: Number(values.seconds),
    repeats: Number(values.repeats),
    batchRecords: Number(values.batch),
    window: Number(values.window),
    skipJetStream: values['no-jetstream'],
    recordSizes: values.sizes.split(',').map(Number),
    persistModes: values.modes.split(',') as PersistMode[],
    producerCounts: values.producers.split(',').map(Number),
  };
  if (values.quick) {
    settings.seconds = 0.5;
    settings.repeats = 1;
  }
  const positive = (value: number) => value > 0 && Number.isFinite(value);
  for (const [name, value] of Object.entries(values)) {
    if (['seconds', 'repeats', 'batch', 'window'].includes(name) && !positive(Number(value))) throw new Error(`--${name} must be a positive number, not ${value}`);
  }
  if (!settings.recordSizes.every((size) => Number.isInteger(size) && size > 0)) throw new Error(`--sizes must list record sizes in bytes, like 128,1024`);
  if (!settings.producerCounts.every((count) => Number.isInteger(count) && count > 0)) throw new Error(`--producers must list producer counts, like 1,16`);
  for (const mode of settings.persistModes) {
    if (!['buffer', 'syncData', 'syncAll'].includes(mode)) throw new Error(`--modes lists PersistModes (buffer, syncData, syncAll), not ${mode}`);
  }
  return settings;
}

export async function run(args: string[]): Promise<void> {
  const settings = parseSettings(args);
  // Ctrl-C still runs the exit hooks that kill nats-server and remove the temporary folders.
  const interrupted = () => process.exit(130);
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  try {
    await runCases(settings);
  } finally {
    process.off('SIGINT', interrupted);
    process.off('SIGTERM', interrupted);
    removeLeftovers();
  }
}

async function runCases(settings: Settings): Promise<void> {
  const natsBinary = settings.skipJetStream ? undefined : findNatsServer();
  const rows: Row[] = [];
  const floors = new Map<string, Row>();
  progress(
    `log bench: ${settings.batchRecords} records per append, ${settings.window} appends in flight per producer, ` +
      `one partition, ${settings.seconds} s per run, median of ${settings.repeats} run(s)`,
  );

  // Warm the JIT so the first case is not penalized.
  {
    const warm = await runAppends(128, 'syncData', 16, settings, 0.5);
    await warm.log.close();
    removeFolder(warm.folder);
  }

  // Reads go over the topic the last run of this case appended.
  const readCase = {
    persist: settings.persistModes.includes('syncData') ? 'syncData' : settings.persistModes[0],
    producers: Math.max(...settings.producerCounts),
  };
  const readRows: Row[] = [];
  for (const recordBytes of settings.recordSizes) {
    for (const persist of settings.persistModes) {
      for (const producers of settings.producerCounts) {
        const name = `sluice ${recordBytes} B ${persist} ${producers}p`;
        // Each run is followed at once by its floor, so that both meet the same machine load.
        const runs: Array<AppendRun & { floorRecordsPerSecond: number; floorLatencies: Float64Array }> = [];
        for (let repeat = 0; repeat < settings.repeats; repeat++) {
          const result = await runAppends(recordBytes, persist, producers, settings, settings.seconds);
          const keepForReads = persist === readCase.persist && producers === readCase.producers;
          if (!keepForReads || repeat < settings.repeats - 1) {
            await result.log.close();
            removeFolder(result.folder);
          }
          // The floor writes the same groups; its records/s is scaled by the log's records per byte.
          const groupBytes = result.trace.groups.reduce((a, b) => a + b, 0);
          const floor = runFloor(result.trace.groups, persist, Math.max(result.seconds * 2, 1));
          runs.push({ ...result, floorRecordsPerSecond: (floor.bytes / floor.seconds) * (result.records / groupBytes), floorLatencies: floor.latencies });
        }
        const chosen = median(runs, (each) => each.records / each.seconds);
        const recordsPerSecond = chosen.records / chosen.seconds;
        const groups = chosen.trace.groups;
        const groupBytes = groups.reduce((a, b) => a + b, 0);
        const floorChosen = median(runs, (each) => each.floorRecordsPerSecond);
        const floorRecordsPerSecond = floorChosen.floorRecordsPerSecond;
        const row: Row = {
          case: name,
          system: 'sluice',
          operation: 'append',
          recordBytes,
          persist,
          producers,
          records: chosen.records,
          seconds: chosen.seconds,
          recordsPerSecond,
          megabytesPerSecond: (recordsPerSecond * recordBytes) / 1e6,
          ackMsP50: percentile(chosen.latencies, 0.5),
          ackMsP99: percentile(chosen.latencies, 0.99),
          ackMsMax: percentile(chosen.latencies, 1),
          rolls: chosen.trace.segments,
          groups: groups.length,
          groupBytesMean: groups.length > 0 ? groupBytes / groups.length : 0,
          syncs: chosen.trace.syncs,
          // The median of the runs' ratios, each against the floor run right after it.
          ratioVsFloor: median(
            runs.map((each) => each.records / each.seconds / each.floorRecordsPerSecond),
            (ratio) => ratio,
          ),
        };
        const floorRow: Row = {
          case: `floor ${recordBytes} B ${persist} ${producers}p`,
          system: 'floor',
          operation: 'append',
          recordBytes,
          persist,
          producers,
          records: chosen.records,
          seconds: chosen.records / floorRecordsPerSecond,
          recordsPerSecond: floorRecordsPerSecond,
          megabytesPerSecond: (floorRecordsPerSecond * recordBytes) / 1e6,
          // A floor "ack" is one group's write and sync.
          ackMsP50: percentile(floorChosen.floorLatencies, 0.5),
          ackMsP99: percentile(floorChosen.floorLatencies, 0.99),
          ackMsMax: percentile(floorChosen.floorLatencies, 1),
          groups: groups.length,
          groupBytesMean: row.groupBytesMean,
          note: 'writeSync of each group, then fdatasync/fsync/none; ack = one group written and synced',
        };
        rows.push(row);
        floors.set(name, floorRow);
        progress(
          `  ${name}: ${formatNumber(recordsPerSecond)} records/s, ack p50 ${formatNumber(row.ackMsP50, 2)} ms p99 ${formatNumber(row.ackMsP99, 2)} ms, ` +
            `${groups.length} groups of ${formatNumber((row.groupBytesMean ?? 0) / 1024, 1)} KiB, floor ${formatNumber(floorRecordsPerSecond)} records/s`,
        );
        if (persist === readCase.persist && producers === readCase.producers) {
          const kept = runs[runs.length - 1];
          const expected = kept.records + 1;
          await kept.log.close();
          const openStarted = performance.now();
          const reopened = await FileLog.open(kept.folder, { persist });
          await reopened.endOffsets(topic);
          const openSeconds = (performance.now() - openStarted) / 1000;
          try {
            const read = await runReads(reopened, expected, recordBytes, 3);
            const readPerSecond = read.records / read.seconds;
            readRows.push({
              case: `sluice ${recordBytes} B read`,
              system: 'sluice',
              operation: 'read',
              recordBytes,
              records: read.records,
              seconds: read.seconds,
              recordsPerSecond: readPerSecond,
              megabytesPerSecond: (readPerSecond * recordBytes) / 1e6,
              note: `log.read in a loop from offset 0 (default maxRecords 10,000), page cache warm; reopening took ${formatNumber(openSeconds * 1000, 1)} ms`,
            });
            progress(`  sluice ${recordBytes} B read: ${formatNumber(readPerSecond)} records/s over ${formatNumber(read.records)} records (reopen ${formatNumber(openSeconds * 1000, 1)} ms)`);
          } finally {
            await reopened.close();
            removeFolder(kept.folder);
          }
        }
      }
    }
  }

  const jetStreamRows: Row[] = [];
  let natsVersion: string | undefined;
  if (natsBinary) {
    const folder = temporaryFolder('nats');
    let server: NatsServer | undefined;
    try {
      server = await startNatsServer(natsBinary, folder);
      natsVersion = server.version;
      progress(`  nats-server ${server.version} on 127.0.0.1:${server.port}`);
      let streamNumber = 0;
      for (const recordBytes of settings.recordSizes) {
        for (const producers of settings.producerCounts) {
          const runs: JetStreamRun[] = [];
          for (let repeat = 0; repeat < settings.repeats; repeat++) {
            const read = producers === readCase.producers && repeat === settings.repeats - 1;
            runs.push(await runJetStream(server.port, recordBytes, producers, settings, settings.seconds, `BENCH${++streamNumber}`, read));
          }
          const chosen = median(runs, (each) => each.records / each.seconds);
          const recordsPerSecond = chosen.records / chosen.seconds;
          jetStreamRows.push({
            case: `jetstream ${recordBytes} B ${producers}p`,
            system: 'jetstream',
            operation: 'append',
            recordBytes,
            producers,
            records: chosen.records,
            seconds: chosen.seconds,
            recordsPerSecond,
            megabytesPerSecond: (recordsPerSecond * recordBytes) / 1e6,
            ackMsP50: percentile(chosen.latencies, 0.5),
            ackMsP99: percentile(chosen.latencies, 0.99),
            ackMsMax: percentile(chosen.latencies, 1),
            note: 'async publishes, one connection per producer, file storage, one replica',
          });
          progress(`  jetstream ${recordBytes} B ${producers}p: ${formatNumber(recordsPerSecond)} records/s`);
          const withRead = runs.find((each) => each.readRecords !== undefined);
          if (withRead?.readRecords !== undefined && withRead.readSeconds !== undefined) {
            const readPerSecond = withRead.readRecords / withRead.readSeconds;
            jetStreamRows.push({
              case: `jetstream ${recordBytes} B read`,
              system: 'jetstream',
              operation: 'read',
              recordBytes,
              records: withRead.readRecords,
              seconds: withRead.readSeconds,
              recordsPerSecond: readPerSecond,
              megabytesPerSecond: (readPerSecond * recordBytes) / 1e6,
              note: 'ordered consumer, consume() with max_messages 10,000',
            });
            progress(`  jetstream ${recordBytes} B read: ${formatNumber(readPerSecond)} records/s`);
          }
        }
      }
    } finally {
      await server?.stop();
      removeFolder(folder);
    }
  }

  // Ratios against JetStream: appends of the same size and producers, reads of the same size.
  const jetStreamFor = (row: Row) =>
    jetStreamRows.find((peer) => peer.operation === row.operation && peer.recordBytes === row.recordBytes && (row.operation === 'read' || peer.producers === row.producers));
  for (const row of [...rows, ...readRows]) {
    const peer = jetStreamFor(row);
    if (peer) row.ratioVsJetStream = row.recordsPerSecond / peer.recordsPerSecond;
  }

  let openLoop: Row | undefined;
  if (settings.recordSizes.includes(128) && settings.persistModes.includes('syncData')) {
    const runs: Row[] = [];
    for (let repeat = 0; repeat < settings.repeats; repeat++) runs.push(await runOpenLoop(128, 'syncData', openLoopRecordsPerSecond, settings, settings.seconds));
    openLoop = median(runs, (row) => row.ackMsP99 ?? 0);
    progress(`  ${openLoop.case}: ${formatNumber(openLoop.recordsPerSecond)} records/s, ack p50 ${formatNumber(openLoop.ackMsP50, 2)} ms p99 ${formatNumber(openLoop.ackMsP99, 2)} ms`);
  }

  const table: Row[] = [];
  for (const row of rows) table.push(row, floors.get(row.case) as Row);
  if (openLoop) table.push(openLoop);
  table.push(...readRows, ...jetStreamRows);
  printTable(table);

  const target = rows.find((row) => row.recordBytes === 128 && row.persist === 'syncData' && row.producers === 16);
  const read128 = readRows.find((row) => row.recordBytes === 128);
  const verdict = (actual: number | undefined, want: (value: number) => boolean) => (actual === undefined ? null : want(actual));
  const targets = {
    appendRecordsPerSecond: { case: target?.case ?? null, want: '>= 1000000', actual: round(target?.recordsPerSecond, 0) ?? null, met: verdict(target?.recordsPerSecond, (value) => value >= 1_000_000) },
    ratioVsFloor: { case: target?.case ?? null, want: '>= 0.5', actual: round(target?.ratioVsFloor, 3) ?? null, met: verdict(target?.ratioVsFloor, (value) => value >= 0.5) },
    ackMsP99: { case: openLoop?.case ?? null, want: '<= 5', actual: round(openLoop?.ackMsP99, 3) ?? null, met: verdict(openLoop?.ackMsP99, (value) => value <= 5 && (openLoop?.recordsPerSecond ?? 0) >= 0.95 * openLoopRecordsPerSecond) },
    ackMsP99AtSaturation: { case: target?.case ?? null, want: 'reported', actual: round(target?.ackMsP99, 3) ?? null, met: null },
    readRecordsPerSecond: { case: read128?.case ?? null, want: '>= 3000000', actual: round(read128?.recordsPerSecond, 0) ?? null, met: verdict(read128?.recordsPerSecond, (value) => value >= 3_000_000) },
    ratioVsJetStream: { case: target?.case ?? null, want: '>= 10', actual: round(target?.ratioVsJetStream, 2) ?? null, met: verdict(target?.ratioVsJetStream, (value) => value >= 10) },
  };
  const verdicts = Object.entries(targets).map(([name, each]) => `${name} ${each.want === 'reported' ? 'is' : each.met === null ? 'not measured' : each.met ? 'met' : 'MISSED'} (${each.actual ?? '–'}${each.want === 'reported' ? '' : `, want ${each.want}`})`);
  process.stdout.write(`targets, on sluice 128 B syncData 16p (ack p99: the open-loop case at ${formatNumber(openLoopRecordsPerSecond)} records/s; reads: sluice 128 B read): ${verdicts.join('; ')}\n`);

  const summary = {
    bench: 'log',
    config: {
      batchRecords: settings.batchRecords,
      appendsInFlightPerProducer: settings.window,
      partitions: 1,
      secondsPerRun: settings.seconds,
      repeats: settings.repeats,
      cores: os.availableParallelism(),
      node: process.version,
      natsServer: natsVersion ?? null,
      megabyte: 'MB = 1e6 bytes of record values; record headers and batch headers not counted',
    },
    results: table.map((row) => ({
      case: row.case,
      system: row.system,
      operation: row.operation,
      recordBytes: row.recordBytes,
      persist: row.persist,
      producers: row.producers,
      records: row.records,
      seconds: round(row.seconds, 3),
      recordsPerSecond: round(row.recordsPerSecond, 0),
      megabytesPerSecond: round(row.megabytesPerSecond, 2),
      ackMsP50: round(row.ackMsP50, 3),
      ackMsP99: round(row.ackMsP99, 3),
      ackMsMax: round(row.ackMsMax, 3),
      groups: row.groups,
      groupBytesMean: round(row.groupBytesMean, 0),
      syncs: row.syncs,
      rolls: row.rolls,
      ratioVsFloor: round(row.ratioVsFloor, 3),
      ratioVsJetStream: round(row.ratioVsJetStream, 2),
    })),
    targets,
  };
  process.stdout.write(`${JSON.stringify(summary)}\n`);
}
