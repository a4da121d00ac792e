/**
 * Seeded storage-fault simulation of the embedded log (TigerBeetle's VOPR, SQLite's crash VFS):
 * thousands of seeded cases, each running FileLog on a SimulatedStorage, cutting the power at a
 * random instant (mid group commit, mid roll, mid recovery), sometimes damaging a synced region
 * afterwards, then reopening and reading everything back.
 *
 * Invariants checked (src/log/log.ts, src/log/file/partition.ts):
 * - Without damage, the log opens and reads; every acknowledged record is at its offset, once,
 *   with its key and value; offsets are dense from 0; every record present is the one submitted
 *   at that offset; an append is all or nothing; records read back after a reopen stay.
 * - A retried producer append is answered `duplicate: true` with the original offsets, and
 *   producerState() matches the surviving batches; a committed consumer offset is the last
 *   acknowledged commit or a later one; readers in the running process see a prefix of what was
 *   acknowledged, exactly as submitted.
 * - With one fault injected (bit flip, truncation) the log either refuses with a CorruptionError
 *   naming file and byte ("detected") or all of the above still holds ("repaired or harmless").
 *   Anything else is a silent loss, and the failure names its seed.
 *
 * Knobs: SLUICE_SIM_CASES (default 3000), SLUICE_SIM_BASE_SEED (default 1), SLUICE_SIM_SEED (run
 * one seed), SLUICE_SIM_TRACE=1 (print what a case did), SLUICE_SIM_FAULT_RATE (default 0.5).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import test from 'node:test';
import { CorruptionError } from '../../src/core/index.ts';
import { FileLog, type AppendOptions, type AppendRecord, type AppendResult, type PersistMode } from '../../src/log/index.ts';
import { Random } from './random.ts';
import { SimulatedStorage, sectorBytes, type Fault } from './simulated-storage.ts';

const topic = 'events';
const group = 'readers';
const folder = '/data';
const producerIds = [1, 2, 3];
/** Kept in step with recentBatchesKept in src/log/file/producer-state.ts. */
const recentBatchesKept = 5;
/** The segment layout of src/log/file/segment-format.ts, to aim faults at batches and marks. */
const dataStart = 4096;
const headerAndMarkRanges: Array<[number, number]> = [
  [0, 64],
  [512, 576],
  [1024, 1088],
];
/** An append that has not settled after this many event-loop turns is stuck. */
const settleTurnsMax = 5000;

const environment = process.env;
const casesWanted = Number(environment.SLUICE_SIM_CASES ?? 3000);
const baseSeed = Number(environment.SLUICE_SIM_BASE_SEED ?? 1);
const onlySeed = environment.SLUICE_SIM_SEED === undefined ? undefined : Number(environment.SLUICE_SIM_SEED);
const tracing = environment.SLUICE_SIM_TRACE === '1';
const faultRate = Number(environment.SLUICE_SIM_FAULT_RATE ?? 0.5);
/** A broken promise of the log, found by comparing it with what the simulation submitted. */
class Violation extends Error {
  override readonly name = 'Violation';
}

interface Expected {
  key: Buffer | null;
  value: Buffer | null;
}

interface Batch {
  partition: number;
  baseOffset: number;
  count: number;
  records: AppendRecord[];
  persist: PersistMode;
  producer: { id: number; sequence: number } | undefined;
  generation: number;
  /** A reopen found it gone (it was never acknowledged, or the check failed already). */
  lost: boolean;
  /** Answered (in any PersistMode), or read back after a reopen. */
  acknowledged: boolean;
}

interface ProducerModel {
  /** Batches given offsets and not found lost, in sequence order. */
  batches: Batch[];
  nextSequence: number;
}

/** What one partition must hold: the submission order is the offset order. */
class PartitionModel {
  /** What each offset assigned so far must hold. */
  expected: Expected[] = [];
  /** Appends given offsets and not found lost, in offset order. */
  batches: Batch[] = [];
  /** Offsets below this were acknowledged durable (or read back after a reopen): they must stay. */
  durableEnd = 0;
  readonly producers = new Map<number, ProducerModel>();
  /** Consumer-offset commits since the last reopen, in submission order. */
  commits: Array<{ offset: number; acknowledged: boolean }> = [];

  /**
   * Readers in the process see a prefix of the acknowledged appends: at least up to the first
   * append not acknowledged (a buffer-mode append answered behind a synced one still waiting
   * need not be visible yet).
   */
  acknowledgedPrefixEnd(): number {
    const waiting = this.batches.find((batch) => !batch.acknowledged);
    return waiting ? waiting.baseOffset : this.expected.length;
  }

  producer(id: number, random: Random): ProducerModel {
    let found = this.producers.get(id);
    if (!found) {
      found = { batches: [], nextSequence: random.chance(0.5) ? 0 : random.int(1000) };
      this.producers.set(id, found);
    }
    return found;
  }
}

interface Stats {
  cases: number;
  generations: number;
  crashes: number;
  crashesInRecovery: number;
  crashesWithAppendsInFlight: number;
  cleanCloses: number;
  appends: number;
  appendsAcknowledged: number;
  retries: number;
  recordsRead: number;
  unacknowledgedRecordsLost: number;
  pendingSectors: number;
  sectorsWritten: number;
  foldersWithLostChanges: number;
  faults: number;
  faultsByKind: Map<string, { injected: number; detected: number; harmless: number }>;
  detected: number;
  detectedNamingDamagedFile: number;
  harmless: number;
  silentLosses: number;
}

function newStats(): Stats {
  return {
    cases: 0,
    generations: 0,
    crashes: 0,
    crashesInRecovery: 0,
    crashesWithAppendsInFlight: 0,
    cleanCloses: 0,
    appends: 0,
    appendsAcknowledged: 0,
    retries: 0,
    recordsRead: 0,
    unacknowledgedRecordsLost: 0,
    pendingSectors: 0,
    sectorsWritten: 0,
    foldersWithLostChanges: 0,
    faults: 0,
    faultsByKind: new Map(),
    detected: 0,
    detectedNamingDamagedFile: 0,
    harmless: 0,
    silentLosses: 0,
  };
}

function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await nextTurn();
}

const alphabet = ['a', 'b', 'k', 'x', 'z', '0', '7', ' ', '-', 'é', 'ß', 'ж', '漢', '字', '🙂', '\u0000'];

function randomString(random: Random, lengthMax: number): string {
  let out = '';
  for (let n = random.int(lengthMax + 1); n > 0; n--) out += random.pick(alphabet);
  return out;
}

function randomRecord(random: Random): AppendRecord {
  const keyKind = random.int(5);
  const key = keyKind === 0 ? undefined : keyKind === 1 ? null : keyKind === 2 ? randomString(random, 12) : random.bytes(random.int(25));
  const valueKind = random.int(20);
  const value =
    valueKind === 0
      ? null
      : valueKind < 8
        ? random.bytes(random.int(120))
        : valueKind < 14
          ? randomString(random, 60)
          : valueKind < 19
            ? random.bytes(random.between(120, 900))
            : random.bytes(random.between(900, 3000));
  return key === undefined ? { value } : { key, value };
}

function toExpected(record: AppendRecord): Expected {
  const part = (bytes: Uint8Array | string | null | undefined) =>
    bytes === null || bytes === undefined ? null : typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : Buffer.from(bytes);
  return { key: part(record.key), value: part(record.value) };
}

function sameBytes(a: Buffer | null, b: Buffer | null): boolean {
  if (a === null || b === null) return a === b;
  return a.equals(b);
}

function show(bytes: Buffer | null): string {
  if (bytes === null) return 'null';
  return `${bytes.length} bytes ${bytes.subarray(0, 16).toString('hex')}${bytes.length > 16 ? '…' : ''}`;
}

function describeError(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}

/** One seeded case: a run of generations, each a FileLog on the disk the last crash left. */
class Case {
  readonly seed: number;
  readonly random: Random;
  readonly partitions: number;
  readonly segmentBytes: number;
  readonly models: PartitionModel[];
  readonly stats: Stats;
  /** Problems noticed in callbacks (acknowledgements), raised at the next check. */
  readonly problems: string[] = [];
  generation = 0;
  appendsInFlightAtCrash = 0;
  /** The disk of the current generation: each crash replaces it. */
  storage: SimulatedStorage;
  readonly crashedGenerations = new Set<number>();
  #time = 1_700_000_000_000;
  readonly now = (): number => this.#time++;

  constructor(seed: number, stats: Stats) {
    this.seed = seed;
    this.random = new Random(seed);
    this.stats = stats;
    this.partitions = this.random.between(1, 2);
    this.segmentBytes = this.random.between(4096, 16384);
    this.models = Array.from({ length: this.partitions }, () => new PartitionModel());
    this.storage = new SimulatedStorage(this.random.fork());
  }

  note(message: string): void {
    if (tracing) fs.writeSync(1, `seed ${this.seed} [g${this.generation}] ${message}\n`);
  }

  problem(message: string): void {
    this.note(`PROBLEM ${message}`);
    this.problems.push(message);
  }

  raiseProblems(): void {
    if (this.problems.length > 0) throw new Violation(this.problems.join('; '));
  }

  async openLog(): Promise<FileLog> {
    return FileLog.open(folder, { storage: this.storage, fence: false, persist: 'syncData', now: this.now, cleanupIntervalMs: 0 });
  }

  async run(): Promise<void> {
    const random = this.random;
    const stats = this.stats;
    this.note(`partitions ${this.partitions}, segmentBytes ${this.segmentBytes}`);
    const generations = random.between(1, 4);
    for (let g = 0; g < generations; g++) {
      this.generation = g;
      stats.generations++;
      const log = await this.openLog();
      if (g > 0 && random.chance(0.12)) {
        // Cut the power while recovery truncates tails and writes marks.
        this.note('crash during recovery');
        log.endOffsets(topic).catch(() => {});
        await turns(random.int(10));
        stats.crashesInRecovery++;
      } else {
        if (g > 0) await this.verify(log);
        await this.workload(log);
      }
      this.crash();
    }
    this.generation = generations;
    stats.generations++;
    const fault = random.chance(faultRate) ? injectFault(random, this.storage) : undefined;
    if (!fault) return this.verify(await this.openLog());
    this.note(`fault: ${fault.description}`);
    stats.faults++;
    const kind = `${fault.kind} in ${fault.file.slice(fault.file.lastIndexOf('.'))}`;
    let byKind = stats.faultsByKind.get(kind);
    if (!byKind) stats.faultsByKind.set(kind, (byKind = { injected: 0, detected: 0, harmless: 0 }));
    byKind.injected++;
    try {
      await this.verify(await this.openLog());
    } catch (error) {
      if (!(error instanceof CorruptionError)) throw new Violation(`after the fault (${fault.description}): ${describeError(error)}`, { cause: error });
      this.note(`detected: ${error.message}`);
      if (typeof error.file !== 'string' || !Number.isInteger(error.position) || !error.message.includes(error.file)) {
        throw new Violation(`a CorruptionError must name the file and byte, got: ${error.message}`);
      }
      stats.detected++;
      byKind.detected++;
      if (error.file === fault.file) stats.detectedNamingDamagedFile++;
      return;
    }
    stats.harmless++;
    byKind.harmless++;
  }

  crash(): void {
    this.crashedGenerations.add(this.generation);
    if (this.appendsInFlightAtCrash > 0) this.stats.crashesWithAppendsInFlight++;
    this.appendsInFlightAtCrash = 0;
    this.storage = this.storage.crash(this.random);
    const report = this.storage.lastPowerLoss;
    this.stats.crashes++;
    if (report) {
      this.stats.pendingSectors += report.pendingSectors;
      this.stats.sectorsWritten += report.sectorsWritten;
      this.stats.foldersWithLostChanges += report.foldersWithLostChanges;
      this.note(`crash: ${report.sectorsWritten}/${report.pendingSectors} pending sectors written, ${report.foldersWithLostChanges} folders lost changes`);
    }
  }

  // ── The workload ────────────────────────────────────────────────────────────────────────────

  async workload(log: FileLog): Promise<void> {
    const random = this.random;
    const creating = log.createTopic(topic, { partitions: this.partitions, segmentBytes: this.segmentBytes });
    if (this.generation === 0 && random.chance(0.04)) {
      this.note('crash while creating the topic');
      creating.catch(() => {});
      await turns(random.int(8));
      return;
    }
    await creating;
    const outstanding = new Set<Promise<void>>();
    const track = (promise: Promise<void>) => {
      outstanding.add(promise);
      void promise.then(() => outstanding.delete(promise));
    };
    const steps = random.int(random.pick([8, 24, 60]));
    for (let step = 0; step < steps; step++) {
      const choice = random.int(100);
      if (choice < 45) track(this.appendNew(log));
      else if (choice < 52) {
        const retry = this.retry(log);
        if (retry) track(retry);
      } else if (choice < 72) await turns(random.int(5));
      else if (choice < 84) {
        if (outstanding.size > 0) await this.settle(random.pick([...outstanding]));
      } else if (choice < 94) await this.readBack(log);
      else track(this.commit(log));
    }
    if (random.chance(0.08)) {
      // A clean shutdown: once it completes everything appended must survive, buffered appends
      // too. Half the time the power goes while it is still closing.
      for (const promise of [...outstanding]) await this.settle(promise);
      this.raiseProblems();
      let closed = false;
      const generation = this.generation;
      const closing = log.close().then(
        () => (closed = true),
        (error: unknown) => this.rejected(generation, 'close', error),
      );
      if (random.chance(0.5)) await closing;
      else await turns(random.int(6));
      if (!closed) {
        this.note('crash while closing');
        return;
      }
      for (const model of this.models) {
        model.durableEnd = model.expected.length;
        for (const batch of model.batches) batch.acknowledged = true;
      }
      this.stats.cleanCloses++;
      this.note('closed cleanly');
      return;
    }
    // The power goes a few turns from now, most often with appends in flight.
    await turns(random.int(5));
    this.appendsInFlightAtCrash = outstanding.size;
  }

  async settle(promise: Promise<void>): Promise<void> {
    let done = false;
    void promise.then(() => (done = true));
    for (let i = 0; i < settleTurnsMax && !done; i++) await nextTurn();
    if (!done) this.problem(`an append or commit did not settle within ${settleTurnsMax} event-loop turns`);
  }

  appendNew(log: FileLog): Promise<void> {
    const random = this.random;
    const partition = random.int(this.partitions);
    const model = this.models[partition];
    const count = 1 + random.int(random.pick([1, 3, 8]));
    const records = Array.from({ length: count }, () => randomRecord(random));
    const persist: PersistMode = random.chance(0.1) ? 'buffer' : random.chance(0.1) ? 'syncAll' : 'syncData';
    const options: AppendOptions = {};
    if (persist !== 'syncData' || random.chance(0.2)) options.persist = persist;
    let producer: ProducerModel | undefined;
    if (persist !== 'buffer' && random.chance(0.4)) {
      const id = random.pick(producerIds);
      producer = model.producer(id, random);
      options.producer = { id, sequence: producer.nextSequence };
      producer.nextSequence += count;
    }
    const batch: Batch = {
      partition,
      baseOffset: model.expected.length,
      count,
      records,
      persist,
      producer: options.producer,
      generation: this.generation,
      lost: false,
      acknowledged: false,
    };
    for (const record of records) model.expected.push(toExpected(record));
    model.batches.push(batch);
    producer?.batches.push(batch);
    this.stats.appends++;
    this.note(`append p${partition} @${batch.baseOffset}+${count} ${persist}${batch.producer ? ` producer ${batch.producer.id}#${batch.producer.sequence}` : ''}`);
    return log.append(topic, partition, records, options).then(
      (result) => this.acknowledged(batch, result, false),
      (error: unknown) => this.rejected(batch.generation, `append p${partition} @${batch.baseOffset}`, error),
    );
  }

  /** Retries one of a producer's recent appends: it must be answered as a duplicate. */
  retry(log: FileLog): Promise<void> | undefined {
    const random = this.random;
    const partition = random.int(this.partitions);
    const candidates = [...this.models[partition].producers.values()].filter((producer) => producer.batches.length > 0);
    if (candidates.length === 0) return undefined;
    const producer = random.pick(candidates);
    const original = random.pick(producer.batches.slice(-recentBatchesKept));
    return this.sendRetry(log, original);
  }

  sendRetry(log: FileLog, original: Batch): Promise<void> {
    this.stats.retries++;
    this.note(`retry p${original.partition} @${original.baseOffset} producer ${original.producer?.id}#${original.producer?.sequence}`);
    return log.append(topic, original.partition, original.records, { producer: original.producer }).then(
      (result) => this.acknowledged(original, result, true),
      (error: unknown) => this.rejected(this.generation, `retry of p${original.partition} @${original.baseOffset}`, error),
    );
  }

  acknowledged(batch: Batch, result: AppendResult, retry: boolean): void {
    const what = `${retry ? 'retry of ' : ''}append p${batch.partition} @${batch.baseOffset}+${batch.count}`;
    this.note(`acknowledged ${what}: ${JSON.stringify(result)}`);
    if (batch.lost) this.problem(`${what} was acknowledged after a reopen found it missing`);
    if (result.partition !== batch.partition || result.baseOffset !== batch.baseOffset || result.count !== batch.count || result.duplicate !== retry) {
      this.problem(`${what} was answered ${JSON.stringify(result)}, expected offsets ${batch.baseOffset}+${batch.count}, duplicate ${retry}`);
      return;
    }
    if (!retry) this.stats.appendsAcknowledged++;
    const model = this.models[batch.partition];
    const end = batch.baseOffset + batch.count;
    // A retry is answered once the original is visible, which for a synced original means durable.
    if (batch.persist !== 'buffer') model.durableEnd = Math.max(model.durableEnd, end);
    batch.acknowledged = true;
  }

  rejected(generation: number, what: string, error: unknown): void {
    // After the power went, the dead world's calls fail; that is the crash, not the log.
    if (this.crashedGenerations.has(generation)) return;
    this.problem(`${what} failed: ${describeError(error)}`);
  }

  commit(log: FileLog): Promise<void> {
    const random = this.random;
    const partition = random.int(this.partitions);
    const model = this.models[partition];
    const entry = { offset: random.int(model.expected.length + 1), acknowledged: false };
    model.commits.push(entry);
    const generation = this.generation;
    this.note(`commit p${partition} ${entry.offset}`);
    return log.commitOffset(group, topic, partition, entry.offset).then(
      () => {
        entry.acknowledged = true;
      },
      (error: unknown) => this.rejected(generation, `commit of p${partition}`, error),
    );
  }

  /** Reads in the running process: a prefix of what was acknowledged, exactly as submitted. */
  async readBack(log: FileLog): Promise<void> {
    const random = this.random;
    const partition = random.int(this.partitions);
    const model = this.models[partition];
    const visibleBefore = model.acknowledgedPrefixEnd();
    const end = (await log.endOffsets(topic))[partition];
    if (end < visibleBefore) this.problem(`p${partition}: endOffsets says ${end}, but offsets below ${visibleBefore} were acknowledged`);
    if (end > model.expected.length) this.problem(`p${partition}: endOffsets says ${end}, but only ${model.expected.length} offsets were assigned`);
    const from = random.int(end + 1);
    await this.readRange(log, partition, from, end);
  }

  /** Reads [from, end) in chunks of random size, checking every record against the model. */
  async readRange(log: FileLog, partition: number, from: number, end: number): Promise<void> {
    const model = this.models[partition];
    let next = from;
    while (next < end) {
      const maxRecords = this.random.between(1, 400);
      // maxBytes also sizes the read's buffer (at least 64 KiB); the default, 16 MiB, would make
      // each read allocate 1 MiB and the simulation spend its time collecting garbage.
      const maxBytes = this.random.pick([512, 8192, 60_000]);
      const { records, nextOffset } = await log.read(topic, partition, next, { maxRecords, maxBytes });
      if (records.length === 0) throw new Violation(`p${partition}: a read from ${next} returned nothing, but the end offset is ${end}`);
      for (const record of records) {
        if (record.offset !== next) throw new Violation(`p${partition}: offset ${record.offset} follows ${next - 1}: offsets must be dense`);
        if (record.partition !== partition) throw new Violation(`p${partition}: a record says partition ${record.partition}`);
        const expected = model.expected[next];
        if (!expected) throw new Violation(`p${partition}: offset ${next} holds a record, but nothing was submitted there`);
        if (!sameBytes(record.key, expected.key) || !sameBytes(record.value, expected.value)) {
          const acknowledged = next < model.durableEnd ? 'acknowledged' : 'unacknowledged';
          throw new Violation(
            `p${partition}: offset ${next} (${acknowledged}) holds key ${show(record.key)} value ${show(record.value)}, ` +
              `not the submitted key ${show(expected.key)} value ${show(expected.value)}`,
          );
        }
        next++;
      }
      if (nextOffset !== next) throw new Violation(`p${partition}: a read ended at ${next - 1} but said to continue from ${nextOffset}`);
      this.stats.recordsRead += records.length;
    }
    if (next !== end) throw new Violation(`p${partition}: reads ran past the end offset ${end}`);
  }

  // ── After a reopen ──────────────────────────────────────────────────────────────────────────

  /** Opens what the crash left, reads everything back, checks it, and brings the model along. */
  async verify(log: FileLog): Promise<void> {
    this.raiseProblems();
    await log.createTopic(topic, { partitions: this.partitions, segmentBytes: this.segmentBytes });
    const starts = await log.startOffsets(topic);
    const ends = await log.endOffsets(topic);
    for (let partition = 0; partition < this.partitions; partition++) {
      const model = this.models[partition];
      const end = ends[partition];
      this.note(`reopened p${partition}: end ${end}, ${model.durableEnd} acknowledged, ${model.expected.length} submitted`);
      if (starts[partition] !== 0) throw new Violation(`p${partition} starts at offset ${starts[partition]}, not 0`);
      if (end < model.durableEnd) {
        throw new Violation(`p${partition} ends at offset ${end}, but offsets up to ${model.durableEnd - 1} were acknowledged: acknowledged records lost (${describeFiles(this.storage, partition)})`);
      }
      if (end > model.expected.length) throw new Violation(`p${partition} ends at offset ${end}, but only offsets below ${model.expected.length} were ever submitted`);
      await this.readRange(log, partition, 0, end);
      for (const batch of model.batches) {
        if (batch.baseOffset < end && batch.baseOffset + batch.count > end) {
          throw new Violation(`p${partition}: the append at offsets ${batch.baseOffset}…${batch.baseOffset + batch.count - 1} survived only up to ${end - 1}: an append is all or none`);
        }
      }
      this.reconcile(partition, end);
    }
    for (let partition = 0; partition < this.partitions; partition++) await this.verifyProducers(log, partition);
    await this.verifyCommits(log);
    const after = await log.endOffsets(topic);
    if (after.some((end, partition) => end !== ends[partition])) throw new Violation(`duplicate retries changed the end offsets from ${ends} to ${after}`);
    this.raiseProblems();
  }

  /** Forgets what the crash took (never acknowledged); what was read back must stay from now on. */
  reconcile(partition: number, end: number): void {
    const model = this.models[partition];
    this.stats.unacknowledgedRecordsLost += model.expected.length - end;
    model.expected.length = end;
    for (const batch of model.batches) if (batch.baseOffset >= end) batch.lost = true;
    model.batches = model.batches.filter((batch) => !batch.lost);
    model.durableEnd = end;
    for (const batch of model.batches) batch.acknowledged = true;
    for (const producer of model.producers.values()) {
      producer.batches = producer.batches.filter((batch) => !batch.lost);
      const last = producer.batches.at(-1);
      if (last?.producer) producer.nextSequence = last.producer.sequence + last.count;
    }
  }

  async verifyProducers(log: FileLog, partition: number): Promise<void> {
    const model = this.models[partition];
    for (const [id, producer] of model.producers) {
      const last = producer.batches.at(-1);
      const state = await log.producerState(topic, partition, id);
      const expected = last?.producer
        ? { lastSequence: last.producer.sequence + last.count - 1, lastOffset: last.baseOffset + last.count - 1 }
        : { lastSequence: -1, lastOffset: -1 };
      if (state.lastSequence !== expected.lastSequence || state.lastOffset !== expected.lastOffset) {
        throw new Violation(`p${partition} producer ${id}: producerState is ${JSON.stringify(state)}, the surviving batches say ${JSON.stringify(expected)}`);
      }
      if (!last) continue;
      // The last acknowledged (or surviving) batch retried after the restart is a duplicate.
      await this.sendRetry(log, last);
      if (this.random.chance(0.5)) await this.sendRetry(log, this.random.pick(producer.batches.slice(-recentBatchesKept)));
      this.raiseProblems();
    }
  }

  async verifyCommits(log: FileLog): Promise<void> {
    for (let partition = 0; partition < this.partitions; partition++) {
      const model = this.models[partition];
      const committed = await log.committedOffset(group, topic, partition);
      let lastAcknowledged = -1;
      model.commits.forEach((entry, i) => {
        if (entry.acknowledged) lastAcknowledged = i;
      });
      const allowed = model.commits.slice(Math.max(lastAcknowledged, 0)).map((entry) => entry.offset);
      const ok = committed === undefined ? lastAcknowledged < 0 : allowed.includes(committed);
      if (!ok) {
        throw new Violation(`p${partition}: the committed offset is ${committed}, but the last acknowledged commit was ${lastAcknowledged < 0 ? 'none' : model.commits[lastAcknowledged].offset} (later ones: ${allowed.slice(1)})`);
      }
      model.commits = committed === undefined ? [] : [{ offset: committed, acknowledged: true }];
    }
  }
}

function describeFiles(storage: SimulatedStorage, partition: number): string {
  const prefix = `${folder}/topics/${topic}/${partition}/`;
  const files = storage.files().filter((file) => file.startsWith(prefix));
  return files.length === 0 ? `${prefix} holds no files` : files.map((file) => `${file.slice(prefix.length)} ${storage.syncedLength(file)} bytes`).join(', ');
}

/** Damages one checksummed file in its synced region, aimed mostly at batches and marks. */
function injectFault(random: Random, storage: SimulatedStorage): Fault | undefined {
  const targets = storage.faultTargets();
  if (targets.length === 0) return undefined;
  const logs = targets.filter((file) => file.endsWith('.log'));
  const others = targets.filter((file) => !file.endsWith('.log'));
  const file = logs.length > 0 && (others.length === 0 || random.chance(0.75)) ? random.pick(logs) : random.pick(others);
  const synced = storage.syncedLength(file);
  const isLog = file.endsWith('.log');
  if (random.chance(0.6)) {
    let position = random.int(synced);
    const aim = random.int(10);
    if (isLog && aim < 5 && synced > dataStart) position = random.between(dataStart, synced - 1);
    else if (isLog && aim < 7) {
      const [from, to] = random.pick(headerAndMarkRanges);
      if (from < synced) position = random.between(from, Math.min(to, synced) - 1);
    }
    return storage.flipBitAt(file, position, random.int(8));
  }
  let length = random.int(synced);
  const aim = random.int(10);
  if (isLog && aim < 6 && synced > dataStart) length = random.between(dataStart, synced - 1);
  else if (aim < 8) length = Math.floor(length / sectorBytes) * sectorBytes; // a lost sector run
  return storage.truncateAt(file, length);
}

function printSummary(stats: Stats, elapsedMs: number, failures: Array<{ seed: number; message: string }>, print: (line: string) => void): void {
  print(`storage-fault simulation: ${stats.cases} cases in ${(elapsedMs / 1000).toFixed(1)} s (seeds ${onlySeed ?? `${baseSeed}…${baseSeed + casesWanted - 1}`})`);
  print(`  generations ${stats.generations}, crashes ${stats.crashes} (${stats.crashesWithAppendsInFlight} with appends or commits in flight, ${stats.crashesInRecovery} during recovery), clean closes ${stats.cleanCloses}`);
  print(`  appends ${stats.appends} (${stats.appendsAcknowledged} acknowledged), producer retries ${stats.retries}, records read back ${stats.recordsRead}`);
  print(`  unacknowledged records lost to crashes ${stats.unacknowledgedRecordsLost}; pending sectors at crashes ${stats.pendingSectors} (${stats.sectorsWritten} reached the disk); folders that lost unsynced changes ${stats.foldersWithLostChanges}`);
  print(`  faults injected ${stats.faults}: detected ${stats.detected} (${stats.detectedNamingDamagedFile} naming the damaged file), repaired or harmless ${stats.harmless}`);
  for (const [kind, counts] of [...stats.faultsByKind].sort()) print(`    ${kind}: ${counts.injected} injected, ${counts.detected} detected, ${counts.harmless} repaired or harmless`);
  print(`  silent losses ${stats.silentLosses} (must be 0)${failures.length > 0 ? `; failing seeds ${failures.map((failure) => failure.seed).join(', ')}` : ''}`);
}

test('seeded storage faults: every fault is repaired or detected, no acknowledged record is silently lost', async (t) => {
  const seeds = onlySeed !== undefined ? [onlySeed] : Array.from({ length: casesWanted }, (_, i) => baseSeed + i);
  const stats = newStats();
  const failures: Array<{ seed: number; message: string }> = [];
  const started = performance.now();
  for (const seed of seeds) {
    stats.cases++;
    const simulation = new Case(seed, stats);
    try {
      await simulation.run();
    } catch (error) {
      stats.silentLosses++;
      const message = error instanceof Violation ? error.message : `unexpected ${describeError(error)}`;
      failures.push({ seed, message });
      if (!(error instanceof Violation) && error instanceof Error && error.stack) t.diagnostic(`seed ${seed}: ${error.stack}`);
    }
  }
  printSummary(stats, performance.now() - started, failures, (line) => t.diagnostic(line));
  if (failures.length > 0) {
    const shown = failures.slice(0, 10).map((failure) => `  seed ${failure.seed}: ${failure.message}\n    rerun: SLUICE_SIM_SEED=${failure.seed} SLUICE_SIM_TRACE=1 node --test test/sim/log-faults.test.ts`);
    assert.fail(`${failures.length} of ${stats.cases} seeded cases lost or altered data silently:\n${shown.join('\n')}`);
  }
});
