/**
 * Idempotent producers, checked against a model on random histories: several producers on two
 * partitions append (next sequence), retry one of their last 5 appends, retry an older one,
 * skip ahead (a gap), retry with a different shape, append without a producer, issue several
 * appends at once without awaiting them, and close and reopen the log — over tiny segments, so
 * that producer state must survive segment rolls (snapshots are written when segments seal).
 *
 * The model applies operations one at a time in the order they were issued (concurrent appends
 * included: a partition accepts appends in call order). After every operation: endOffsets and
 * every producer's `producerState()` match; after every reopen and at the end: the whole content
 * read back matches, byte for byte.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import type { AppendResult, LogRecord, PersistMode } from '../log.ts';
import { FileLog } from './file-log.ts';

/**
 * Runs (each does real file I/O) stop after this long: it keeps the file within its time budget
 * on a slow machine and bounds the shrinking of a failure, whose smallest counterexample found
 * by then is still reported. Runs past it pass at once, so none is abandoned halfway.
 */
const runBudgetMs = 16_000;

const topic = 'events';
const partitions = 2;
const producerIds = [1, 2, 3];
/** As many recent batches as the log promises to remember per producer. */
const recentKept = 5;

function temporaryFolder(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-producers-'));
}

async function readAll(log: FileLog, partition: number): Promise<LogRecord[]> {
  const end = (await log.endOffsets(topic))[partition];
  const records: LogRecord[] = [];
  let next = 0;
  while (next < end) {
    const result = await log.read(topic, partition, next);
    assert.ok(result.nextOffset > next, `a read from ${next} (end ${end}) made no progress`);
    records.push(...result.records);
    next = result.nextOffset;
  }
  return records;
}

// ── The model ─────────────────────────────────────────────────────────────────────────────────

interface ModelBatch {
  firstSequence: number;
  count: number;
  baseOffset: number;
}

interface ModelPartition {
  /** Values by offset. */
  values: string[];
  /** Per producer id, every batch it appended, oldest first. */
  batches: Map<number, ModelBatch[]>;
}

type Expected = { kind: 'result'; result: AppendResult } | { kind: 'rejected'; code: string } | { kind: 'skip' };

/** One append as issued: where, by whom, with which sequence and records. */
interface Attempt {
  partition: number;
  producer: number | undefined;
  sequence: number;
  values: string[];
  persist: PersistMode;
}

/** What the log must answer to an attempt, given the model; applies it to the model. */
function expectAndApply(model: ModelPartition[], attempt: Attempt): Expected {
  const m = model[attempt.partition];
  const appended = (): Expected => {
    const baseOffset = m.values.length;
    m.values.push(...attempt.values);
    if (attempt.producer !== undefined) {
      const batches = m.batches.get(attempt.producer) ?? [];
      batches.push({ firstSequence: attempt.sequence, count: attempt.values.length, baseOffset });
      m.batches.set(attempt.producer, batches);
    }
    return { kind: 'result', result: { partition: attempt.partition, baseOffset, count: attempt.values.length, duplicate: false } };
  };
  if (attempt.producer === undefined) return appended();
  const batches = m.batches.get(attempt.producer) ?? [];
  const last = batches[batches.length - 1];
  if (!last) return appended(); // A producer never seen may start at any sequence.
  const lastSequence = last.firstSequence + last.count - 1;
  if (attempt.sequence === lastSequence + 1) return appended();
  if (attempt.sequence > lastSequence + 1) return { kind: 'rejected', code: 'producer_sequence_gap' };
  const recent = batches.slice(-recentKept).find((batch) => batch.firstSequence === attempt.sequence && batch.count === attempt.values.length);
  if (recent) return { kind: 'result', result: { partition: attempt.partition, baseOffset: recent.baseOffset, count: recent.count, duplicate: true } };
  return { kind: 'rejected', code: 'producer_sequence_duplicate' };
}

function modelProducerState(model: ModelPartition[], partition: number, producer: number): { lastSequence: number; lastOffset: number } {
  const batches = model[partition].batches.get(producer) ?? [];
  const last = batches[batches.length - 1];
  return last ? { lastSequence: last.firstSequence + last.count - 1, lastOffset: last.baseOffset + last.count - 1 } : { lastSequence: -1, lastOffset: -1 };
}

// ── Operations ────────────────────────────────────────────────────────────────────────────────

/**
 * One append, described relative to the producer's history so that it means the same thing
 * whatever happened before:
 * - next: the next sequence (a fresh producer starts at `start`);
 * - retry: the same sequence and count as its `back`-th latest append (0 = the latest);
 * - gap: `ahead` sequences past the next one;
 * - reshaped: the sequence of a recent append with one record more (or, `inside`, a sequence
 *   inside one of its appends).
 * `back` beyond the producer's history makes the operation a no-op.
 */
type Step =
  | { kind: 'next'; partition: number; producer: number; count: number; length: number; start: number; persist: PersistMode }
  | { kind: 'plain'; partition: number; count: number; length: number; persist: PersistMode }
  | { kind: 'retry'; partition: number; producer: number; back: number }
  | { kind: 'gap'; partition: number; producer: number; ahead: number; count: number }
  | { kind: 'reshaped'; partition: number; producer: number; back: number; inside: boolean };

/** Concurrent steps are issued without awaiting earlier ones, `pause` event-loop turns apart. */
type Operation = Step | { kind: 'concurrent'; steps: Array<{ step: Step; pause: number }> } | { kind: 'reopen' };

const partitionArbitrary = fc.integer({ min: 0, max: partitions - 1 });
const producerArbitrary = fc.constantFrom(...producerIds);
const persistArbitrary = fc.constantFrom<PersistMode>('buffer', 'buffer', 'syncData', 'syncAll');

const stepArbitrary: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 10,
    arbitrary: fc.record({
      kind: fc.constant('next' as const),
      partition: partitionArbitrary,
      producer: producerArbitrary,
      count: fc.integer({ min: 1, max: 4 }),
      length: fc.integer({ min: 0, max: 600 }),
      start: fc.constantFrom(0, 0, 1, 1000),
      persist: persistArbitrary,
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('plain' as const), partition: partitionArbitrary, count: fc.integer({ min: 1, max: 3 }), length: fc.integer({ min: 0, max: 600 }), persist: persistArbitrary }) },
  // back 0–4: one of the last five appends (a duplicate); 5–8: an older one (refused).
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('retry' as const), partition: partitionArbitrary, producer: producerArbitrary, back: fc.integer({ min: 0, max: 8 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('gap' as const), partition: partitionArbitrary, producer: producerArbitrary, ahead: fc.integer({ min: 1, max: 3 }), count: fc.integer({ min: 1, max: 3 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('reshaped' as const), partition: partitionArbitrary, producer: producerArbitrary, back: fc.integer({ min: 0, max: 4 }), inside: fc.boolean() }) },
);

const operationArbitrary: fc.Arbitrary<Operation> = fc.oneof(
  { weight: 12, arbitrary: stepArbitrary },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('concurrent' as const),
      steps: fc.array(fc.record({ step: stepArbitrary, pause: fc.constantFrom(0, 0, 1, 2) }), { minLength: 2, maxLength: 8, size: 'max' }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('reopen' as const) }) },
);

let appendCounter = 0;

function values(count: number, length: number): string[] {
  const id = ++appendCounter;
  return Array.from({ length: count }, (_, i) => `append ${id} record ${i} `.padEnd(length, String.fromCharCode(97 + ((id + i) % 26))));
}

/** Turns a step into an attempt against the current model, or undefined when it does not apply. */
function attemptFor(model: ModelPartition[], step: Step): Attempt | undefined {
  if (step.kind === 'plain') return { partition: step.partition, producer: undefined, sequence: 0, values: values(step.count, step.length), persist: step.persist };
  const batches = model[step.partition].batches.get(step.producer) ?? [];
  const last = batches[batches.length - 1];
  const next = last ? last.firstSequence + last.count : undefined;
  switch (step.kind) {
    case 'next':
      return { partition: step.partition, producer: step.producer, sequence: next ?? step.start, values: values(step.count, step.length), persist: step.persist };
    case 'gap':
      return { partition: step.partition, producer: step.producer, sequence: (next ?? 0) + step.ahead, values: values(step.count, 10), persist: 'syncData' };
    case 'retry': {
      const batch = batches[batches.length - 1 - step.back];
      if (!batch) return undefined;
      // A retry carries the original records in real life; the log must not look at them.
      return { partition: step.partition, producer: step.producer, sequence: batch.firstSequence, values: values(batch.count, 5), persist: 'syncData' };
    }
    case 'reshaped': {
      const batch = batches[batches.length - 1 - step.back];
      if (!batch) return undefined;
      if (step.inside) {
        if (batch.count < 2) return undefined;
        return { partition: step.partition, producer: step.producer, sequence: batch.firstSequence + 1, values: values(1, 5), persist: 'syncData' };
      }
      return { partition: step.partition, producer: step.producer, sequence: batch.firstSequence, values: values(batch.count + 1, 5), persist: 'syncData' };
    }
  }
}

function issue(log: FileLog, attempt: Attempt): Promise<AppendResult> {
  return log.append(
    topic,
    attempt.partition,
    attempt.values.map((value, i) => ({ key: `k${i}`, value })),
    { persist: attempt.persist, producer: attempt.producer === undefined ? undefined : { id: attempt.producer, sequence: attempt.sequence } },
  );
}

function describeAttempt(attempt: Attempt): string {
  return `partition ${attempt.partition} producer ${attempt.producer ?? 'none'} sequence ${attempt.sequence} count ${attempt.values.length}`;
}

function checkOutcome(outcome: PromiseSettledResult<AppendResult>, expected: Expected, context: string): void {
  if (expected.kind === 'skip') return;
  if (expected.kind === 'result') {
    if (outcome.status === 'rejected') assert.fail(`${context}: expected ${JSON.stringify(expected.result)}, got the error ${(outcome.reason as Error).message}`);
    assert.deepEqual(outcome.value, expected.result, context);
    return;
  }
  if (outcome.status === 'fulfilled') assert.fail(`${context}: expected a ${expected.code} error, got ${JSON.stringify(outcome.value)}`);
  const error = outcome.reason as Error & { code?: string };
  assert.equal(error.code, expected.code, `${context}: ${error.message}`);
}

async function runScenario(operations: Operation[]): Promise<void> {
  const folder = temporaryFolder();
  let clock = 1_700_000_000_000;
  const open = () => FileLog.open(folder, { now: () => clock, cleanupIntervalMs: 0 });
  let log = await open();
  const model: ModelPartition[] = Array.from({ length: partitions }, () => ({ values: [], batches: new Map() }));
  try {
    await log.createTopic(topic, { partitions, segmentBytes: 4096 });

    const checkState = async (context: string) => {
      assert.deepEqual(await log.endOffsets(topic), model.map((m) => m.values.length), `${context}: endOffsets`);
      for (let p = 0; p < partitions; p++) {
        for (const id of producerIds) {
          assert.deepEqual(await log.producerState(topic, p, id), modelProducerState(model, p, id), `${context}: producerState(partition ${p}, producer ${id})`);
        }
      }
    };
    const checkContents = async (context: string) => {
      for (let p = 0; p < partitions; p++) {
        const records = await readAll(log, p);
        assert.equal(records.length, model[p].values.length, `${context}: partition ${p} holds ${records.length} records, the model ${model[p].values.length}`);
        for (const [i, record] of records.entries()) {
          assert.equal(record.offset, i, `${context}: partition ${p} offsets are dense`);
          assert.equal(record.value?.toString(), model[p].values[i], `${context}: partition ${p} offset ${i}`);
        }
      }
    };

    for (const [index, operation] of operations.entries()) {
      clock += 1;
      const context = `operation ${index} (${operation.kind})`;
      if (operation.kind === 'reopen') {
        await log.close();
        log = await open();
        await checkState(context);
        await checkContents(context);
        continue;
      }
      const steps = operation.kind === 'concurrent' ? operation.steps : [{ step: operation, pause: 0 }];
      const attempts: Array<Attempt | undefined> = [];
      const settled: Array<Promise<PromiseSettledResult<AppendResult>> | undefined> = [];
      const expectations: Expected[] = [];
      // Every step is issued before any is awaited; the model takes them in the same order.
      for (const { step, pause } of steps) {
        // Letting the flush loop run between issues puts appends of one producer in different groups.
        for (let turn = 0; turn < pause; turn++) await new Promise((resolve) => setImmediate(resolve));
        const attempt = attemptFor(model, step);
        attempts.push(attempt);
        expectations.push(attempt ? expectAndApply(model, attempt) : { kind: 'skip' });
        // Settled at once, so that a refusal is handled even while later steps wait their turn.
        settled.push(
          attempt
            ? issue(log, attempt).then(
                (value): PromiseSettledResult<AppendResult> => ({ status: 'fulfilled', value }),
                (reason: unknown): PromiseSettledResult<AppendResult> => ({ status: 'rejected', reason }),
              )
            : undefined,
        );
      }
      for (let i = 0; i < steps.length; i++) {
        const attempt = attempts[i];
        const outcome = await settled[i];
        if (attempt && outcome) checkOutcome(outcome, expectations[i], `${context}, step ${i} (${steps[i].step.kind}: ${describeAttempt(attempt)})`);
      }
      await checkState(context);
    }
    await checkContents('the end');
    await log.close();
    log = await open();
    await checkState('reopened at the end');
    await checkContents('reopened at the end');
  } finally {
    await log.close();
    fs.rmSync(folder, { recursive: true, force: true });
  }
}

test('idempotent producers: duplicates answered with the original offsets, gaps and stale sequences refused, state surviving rolls and reopening', { timeout: 120_000 }, async () => {
  const deadline = Date.now() + runBudgetMs;
  const operations = fc.array(operationArbitrary, { minLength: 1, maxLength: 100, size: 'max' });
  await fc.assert(fc.asyncProperty(operations, async (list) => (Date.now() > deadline ? undefined : runScenario(list))), { numRuns: 150 });
});

test('a retry of each of the last five appends is a duplicate after rolls and a reopen; the sixth is refused', { timeout: 120_000 }, async () => {
  const folder = temporaryFolder();
  const open = () => FileLog.open(folder, { cleanupIntervalMs: 0 });
  let log = await open();
  try {
    await log.createTopic(topic, { segmentBytes: 4096 });
    const producer = 42;
    const results: AppendResult[] = [];
    // Each append of 3 records of 1400 bytes fills a segment, so every append rolls the next.
    for (let sequence = 0; sequence < 30; sequence += 3) {
      const records = [0, 1, 2].map((i) => ({ key: null, value: `${sequence + i}`.padEnd(1400, '.') }));
      results.push(await log.append(topic, 0, records, { producer: { id: producer, sequence } }));
    }
    const segments = fs.readdirSync(path.join(folder, 'topics', topic, '0')).filter((name) => name.endsWith('.log'));
    assert.ok(segments.length >= 8, `expected the appends to roll segments, found ${segments.length}`);
    await log.close();
    log = await open();
    assert.deepEqual(await log.producerState(topic, 0, producer), { lastSequence: 29, lastOffset: 29 });
    for (let back = 0; back < 5; back++) {
      const original = results[results.length - 1 - back];
      const sequence = 27 - 3 * back;
      const retried = await log.append(topic, 0, [{ value: 'a' }, { value: 'b' }, { value: 'c' }], { producer: { id: producer, sequence } });
      assert.deepEqual(retried, { ...original, duplicate: true }, `retry of sequence ${sequence}`);
    }
    await assert.rejects(log.append(topic, 0, [{ value: 'a' }, { value: 'b' }, { value: 'c' }], { producer: { id: producer, sequence: 12 } }), { code: 'producer_sequence_duplicate' });
    await assert.rejects(log.append(topic, 0, [{ value: 'a' }], { producer: { id: producer, sequence: 31 } }), { code: 'producer_sequence_gap' });
    assert.deepEqual(await log.endOffsets(topic), [30]);
    assert.deepEqual(await log.append(topic, 0, [{ value: 'next' }], { producer: { id: producer, sequence: 30 } }), { partition: 0, baseOffset: 30, count: 1, duplicate: false });
  } finally {
    await log.close();
    fs.rmSync(folder, { recursive: true, force: true });
  }
});

test('invalid producer ids and sequences are refused with producer_invalid', { timeout: 120_000 }, async () => {
  const folder = temporaryFolder();
  const log = await FileLog.open(folder, { cleanupIntervalMs: 0 });
  try {
    await log.createTopic(topic, { segmentBytes: 4096 });
    for (const producer of [{ id: 0, sequence: 0 }, { id: -1, sequence: 0 }, { id: 1.5, sequence: 0 }, { id: 1, sequence: -1 }, { id: 1, sequence: 2 ** 53 }]) {
      await assert.rejects(log.append(topic, 0, [{ value: 'x' }], { producer }), { code: 'producer_invalid' }, JSON.stringify(producer));
    }
    assert.deepEqual(await log.endOffsets(topic), [0]);
  } finally {
    await log.close();
    fs.rmSync(folder, { recursive: true, force: true });
  }
});
