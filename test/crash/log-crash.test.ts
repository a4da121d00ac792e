/**
 * Crash test of the log, driven through the CLI as a user would: `sluice log append` is fed
 * NDJSON in bursts and killed with SIGKILL at random moments (during start-up and recovery,
 * between bursts, and right after a burst while group commits are in flight), then restarted on
 * the same data folder; `sluice log read` (a separate process) reads everything back.
 *
 * Checked by a read after about half the kills and after the last (DESIGN.md, "Log"):
 * - Every acknowledged record is present exactly once, at the partition and offset it was
 *   acknowledged with, its value byte for byte the line that was sent.
 * - Offsets in each partition are dense from 0; every record present is one that was sent, in the
 *   partition its key hashes to.
 * - Per partition, rounds never interleave, and what survives of a round is a prefix, in order, of
 *   what that round sent to the partition (unacknowledged records may survive only as a suffix).
 * - A restart is never refused: the killed appender's writer lock is stale and is taken over.
 * Reported, not asserted: records a read showed that a later read no longer has ("read-then-gone";
 * allowed for unacknowledged records, but SIGKILL keeps the page cache, so it should stay 0).
 *
 * SLUICE_CRASH_ROUNDS sets the number of rounds (default 60, each one SIGKILL); SLUICE_CRASH_SEED
 * replays a run's plan (what is sent and when the kill is aimed; process timing still varies).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { logFolder } from '../../src/cli/log-command.ts';
import { FileLog, partitionForKey, type PersistMode } from '../../src/log/index.ts';
import { seededRandom, type Random } from './random.ts';

const sluiceBin = fileURLToPath(new URL('../../bin/sluice.js', import.meta.url));
const roundsWanted = Number(process.env.SLUICE_CRASH_ROUNDS ?? 60);
const seed = Number(process.env.SLUICE_CRASH_SEED ?? Math.floor(Math.random() * 2 ** 32));
/** How long an appender may take to acknowledge its first record (the machine may be busy). */
const firstAcknowledgementMsMax = 15_000;

// ── Random, seeded ─────────────────────────────────────────────────────────────────────────────

/** An independent stream per round and purpose, so that process timing cannot shift the others. */
function streamFor(round: number, purpose: number): Random {
  return seededRandom(seed + Math.imul(round + 1, 0x9e3779b1) + Math.imul(purpose, 0x85ebca6b));
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

// ── What was sent and acknowledged, per topic ──────────────────────────────────────────────────

interface SentRecord {
  id: string;
  line: string;
  round: number;
  partition: number;
  /** Its place among the records its round sent to its partition. */
  indexInRound: number;
}

interface Placement {
  partition: number;
  offset: number;
}

interface TopicUnderTest {
  name: string;
  partitions: number;
  /** Created by the first `log append` (default segments) rather than beforehand (small ones). */
  createdByAppend: boolean;
  sent: Map<string, SentRecord>;
  /** Per round, per partition: ids in the order they were sent. */
  sentByRound: Map<number, string[][]>;
  acknowledged: Map<string, Placement>;
  /** "partition/offset" → id, to catch two acknowledgements of one offset. */
  acknowledgedAt: Map<string, string>;
  /** Ids per partition as the last read saw them. */
  lastRead: string[][];
}

function topicUnderTest(name: string, partitions: number, createdByAppend: boolean): TopicUnderTest {
  return {
    name,
    partitions,
    createdByAppend,
    sent: new Map(),
    sentByRound: new Map(),
    acknowledged: new Map(),
    acknowledgedAt: new Map(),
    lastRead: Array.from({ length: partitions }, () => []),
  };
}

const padAlphabet = 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ';

/** A record line: a unique id (the key) and a payload of random size, now and then 10–50 KB. */
function makeRecord(random: Random, topic: TopicUnderTest, round: number): SentRecord {
  let perRound = topic.sentByRound.get(round);
  if (!perRound) topic.sentByRound.set(round, (perRound = Array.from({ length: topic.partitions }, () => [])));
  const id = `r${round}-${topic.sent.size}`;
  const size = random.chance(0.005) ? random.integer(10_000, 50_000) : random.integer(0, 200);
  let block = '';
  for (let i = 0; i < 41; i++) block += padAlphabet[random.integer(0, padAlphabet.length - 1)];
  let pad = block.repeat(Math.ceil(size / block.length)).slice(0, size);
  if (random.chance(0.1)) pad += 'é✓"\\\t';
  const line = JSON.stringify({ id, round, pad });
  const partition = partitionForKey(id, topic.partitions);
  const record: SentRecord = { id, line, round, partition, indexInRound: perRound[partition].length };
  perRound[partition].push(id);
  topic.sent.set(id, record);
  return record;
}

// ── Processes ──────────────────────────────────────────────────────────────────────────────────

// The test starts some 100 processes; Node's compile cache (which keeps the stripped TypeScript
// too) roughly halves the start-up time of each.
const compileCache = process.env.NODE_COMPILE_CACHE ?? path.join(os.tmpdir(), 'sluice-test-compile-cache');

function sluice(args: string[]): ChildProcessWithoutNullStreams {
  return spawn(process.execPath, [sluiceBin, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, NODE_COMPILE_CACHE: compileCache } });
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

function exitOf(child: ChildProcessWithoutNullStreams): Promise<Exit> {
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (text: string) => (stderr += text));
  return new Promise((resolve) => child.once('close', (code, signal) => resolve({ code, signal, stderr })));
}

interface ReadRecord {
  topic: string;
  partition: number;
  offset: number;
  key: string | null;
  value: unknown;
}

/** The topic's records, all partitions; none when it does not exist and `missingIsEmpty`. */
async function readTopic(data: string, topic: string, missingIsEmpty = false): Promise<ReadRecord[]> {
  const child = sluice(['log', 'read', topic, '--data', data]);
  child.stdin.end();
  const chunks: Buffer[] = [];
  child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
  const exit = await exitOf(child);
  if (missingIsEmpty && exit.code !== 0 && exit.stderr.includes(`topic ${topic} does not exist`)) return [];
  assert.equal(exit.code, 0, `sluice log read ${topic} failed (${exit.signal ?? exit.code}): ${exit.stderr}`);
  const text = Buffer.concat(chunks).toString('utf8');
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as ReadRecord);
}

// ── One round: start an appender, feed it, kill it ─────────────────────────────────────────────

type KillMoment = 'start-up' | 'between bursts' | 'commits in flight';

interface RoundOutcome {
  sent: number;
  acknowledged: number;
  moment: KillMoment;
}

async function appendAndKill(data: string, topic: TopicUnderTest, round: number): Promise<RoundOutcome> {
  const random = streamFor(round, 1);
  const feederRandom = streamFor(round, 2);
  const burstRandom = streamFor(round, 3);
  const persist: PersistMode = random.chance(0.2) ? 'syncAll' : 'syncData';
  const roll = random.next();
  const moment: KillMoment = roll < 0.15 ? 'start-up' : roll < 0.65 ? 'between bursts' : 'commits in flight';
  const args = ['log', 'append', topic.name, '--data', data, '--key', 'id', '--persist', persist];
  if (topic.createdByAppend) args.push('--partitions', String(topic.partitions));
  const startedAt = Date.now();
  const child = sluice(args);
  const exited = exitOf(child);
  let dead = false;
  void exited.then(() => (dead = true));
  child.stdin.on('error', () => {}); // EPIPE once it is killed

  // Input, in the order written: output line N acknowledges written[N].
  const written: SentRecord[] = [];
  let acknowledgedCount = 0;
  let firstAcknowledgement: () => void = () => {};
  const firstAcknowledged = new Promise<void>((resolve) => (firstAcknowledgement = resolve));
  let afterAcknowledgement: (() => void) | undefined;
  const lastOffset = new Map<number, number>();
  let protocolError: Error | undefined;
  let partial = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (text: string) => {
    const lines = (partial + text).split('\n');
    partial = lines.pop()!;
    for (const line of lines) {
      const record = written[acknowledgedCount];
      try {
        assert.ok(record, `round ${round}: output line ${acknowledgedCount + 1} (${line}) answers no input line`);
        const placement = JSON.parse(line) as Placement;
        assert.equal(placement.partition, record.partition, `round ${round}: ${record.id} acknowledged in partition ${placement.partition}, but its key hashes to ${record.partition}`);
        const previous = lastOffset.get(placement.partition);
        if (previous !== undefined) assert.equal(placement.offset, previous + 1, `round ${round}: ${record.id} acknowledged at ${topic.name}/${placement.partition}@${placement.offset}, after offset ${previous}`);
        lastOffset.set(placement.partition, placement.offset);
        const slot = `${placement.partition}/${placement.offset}`;
        const holder = topic.acknowledgedAt.get(slot);
        assert.equal(holder, undefined, `round ${round}: ${record.id} acknowledged at ${topic.name}/${slot}, which already acknowledged ${holder}`);
        topic.acknowledgedAt.set(slot, record.id);
        topic.acknowledged.set(record.id, placement);
      } catch (error) {
        protocolError ??= error as Error;
      }
      acknowledgedCount++;
    }
    firstAcknowledgement();
    afterAcknowledgement?.();
  });

  const write = async (records: SentRecord[]): Promise<void> => {
    if (dead) return;
    written.push(...records);
    if (!child.stdin.write(records.map((record) => `${record.line}\n`).join(''))) {
      await Promise.race([new Promise((resolve) => child.stdin.once('drain', resolve)), exited]);
    }
  };
  const burst = (stream: Random, count: number) => Array.from({ length: count }, () => makeRecord(stream, topic, round));

  // The feeder writes bursts at a random pace until the kill.
  let stopped = false;
  const feeder = (async () => {
    while (!stopped && !dead) {
      await write(burst(feederRandom, feederRandom.integer(1, 30)));
      await sleep(feederRandom.integer(0, 40));
    }
  })();

  // Unreferenced, so that a timer of a finished round does not hold the test process open.
  const timeout = (ms: number, what: string) =>
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`round ${round}: ${what}`)), ms).unref());
  const diedEarly = exited.then((exit) => {
    throw new Error(`round ${round}: the appender exited by itself (${exit.signal ?? `exit code ${exit.code}`}) before it was killed: ${exit.stderr.trim()}`);
  });
  diedEarly.catch(() => {});
  const noAcknowledgement = () => timeout(firstAcknowledgementMsMax, `no acknowledgement within ${firstAcknowledgementMsMax} ms`);

  try {
    if (moment === 'start-up') {
      // Anywhere from before the lock is taken to the first group commits (start-up takes ~150 ms).
      await Promise.race([sleep(Math.max(0, startedAt + random.integer(5, 300) - Date.now())), diedEarly]);
    } else if (moment === 'between bursts') {
      await Promise.race([firstAcknowledged, diedEarly, noAcknowledgement()]);
      await Promise.race([sleep(random.integer(20, 400)), diedEarly]);
    } else {
      await Promise.race([firstAcknowledged, diedEarly, noAcknowledgement()]);
      await Promise.race([sleep(random.integer(0, 150)), diedEarly]);
      // A big burst, then the kill as soon as its first records are acknowledged (the rest are
      // queued or being group-committed) or a moment after it was written.
      stopped = true;
      const before = written.length;
      const waitForAcknowledgement = random.chance(0.7);
      await write(burst(burstRandom, burstRandom.integer(100, 600)));
      if (waitForAcknowledgement) {
        const acknowledgedInBurst = new Promise<void>((resolve) => {
          afterAcknowledgement = () => {
            if (acknowledgedCount > before) resolve();
          };
          afterAcknowledgement();
        });
        await Promise.race([acknowledgedInBurst, diedEarly, timeout(firstAcknowledgementMsMax, 'the big burst was never acknowledged')]);
      } else {
        await Promise.race([sleep(random.integer(0, 3)), diedEarly]);
      }
    }
  } finally {
    stopped = true;
    child.kill('SIGKILL');
    const exit = await exited;
    await feeder;
    if (protocolError) throw protocolError;
    // Exited by itself just before the kill: diedEarly lost the race but it is still a failure.
    assert.equal(exit.signal, 'SIGKILL', `round ${round}: the appender exited by itself (exit code ${exit.code}): ${exit.stderr.trim()}`);
    // A skipped line would shift every acknowledgement after it; nothing here should be skipped.
    assert.equal(exit.stderr, '', `round ${round}: the appender complained`);
  }
  return { sent: written.length, acknowledged: acknowledgedCount, moment };
}

// ── Checking a read against what was sent and acknowledged ─────────────────────────────────────

interface ReadCheck {
  records: number;
  unacknowledgedSurvivors: number;
  /** Records an earlier read showed that are gone (allowed for unacknowledged ones; reported). */
  seenThenGone: number;
}

function checkRead(topic: TopicUnderTest, records: ReadRecord[], when: string): ReadCheck {
  const byPartition: string[][] = Array.from({ length: topic.partitions }, () => []);
  const seen = new Set<string>();
  for (const record of records) {
    const where = `${when}: ${topic.name}/${record.partition}@${record.offset}`;
    assert.equal(record.topic, topic.name, where);
    const ids = byPartition[record.partition];
    assert.ok(ids, `${where}: no such partition`);
    assert.equal(record.offset, ids.length, `${where}: offsets are not dense from 0 (expected offset ${ids.length})`);
    const id = (record.value as { id?: unknown } | null)?.id;
    const sent = typeof id === 'string' ? topic.sent.get(id) : undefined;
    assert.ok(sent, `${where}: a record that was never sent: ${JSON.stringify(record.value).slice(0, 200)}`);
    assert.ok(!seen.has(sent.id), `${where}: ${sent.id} is present twice`);
    seen.add(sent.id);
    assert.equal(record.key, sent.id, `${where}: key`);
    assert.equal(record.partition, sent.partition, `${where}: ${sent.id} belongs in partition ${sent.partition}`);
    assert.ok(JSON.stringify(record.value) === sent.line, `${where}: the value of ${sent.id} differs from the line sent`);
    ids.push(sent.id);
  }
  for (const [id, placement] of topic.acknowledged) {
    const found = byPartition[placement.partition][placement.offset];
    assert.equal(found, id, `${when}: acknowledged ${id} at ${topic.name}/${placement.partition}@${placement.offset} is ${found === undefined ? 'missing' : `replaced by ${found}`}${seen.has(id) ? ' (it is elsewhere)' : ''}`);
  }
  let seenThenGone = 0;
  for (let partition = 0; partition < topic.partitions; partition++) {
    const ids = byPartition[partition];
    let round = -1;
    let nextIndex = 0;
    for (let offset = 0; offset < ids.length; offset++) {
      const sent = topic.sent.get(ids[offset])!;
      const where = `${when}: ${topic.name}/${partition}@${offset} (${sent.id})`;
      assert.ok(sent.round >= round, `${where}: a record of round ${sent.round} after one of round ${round}`);
      if (sent.round > round) {
        round = sent.round;
        nextIndex = 0;
      }
      const expected = topic.sentByRound.get(round)![partition][nextIndex];
      assert.equal(sent.indexInRound, nextIndex, `${where}: round ${round}'s records are not a prefix of what it sent here (expected ${expected} next)`);
      nextIndex++;
    }
    const previous = topic.lastRead[partition];
    for (let offset = 0; offset < previous.length; offset++) {
      if (ids[offset] !== previous[offset]) {
        seenThenGone += previous.length - offset;
        break;
      }
    }
    topic.lastRead[partition] = ids;
  }
  return { records: records.length, unacknowledgedSurvivors: records.length - topic.acknowledged.size, seenThenGone };
}

// ── The tests ──────────────────────────────────────────────────────────────────────────────────

test(`the log keeps every acknowledged record through ${roundsWanted} SIGKILLs of sluice log append`, { timeout: 240_000 }, async (t) => {
  const random = seededRandom(seed);
  const data = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-crash-'));
  t.diagnostic(`seed ${seed} (replay with SLUICE_CRASH_SEED=${seed}), data in ${data}`);
  const topics = [topicUnderTest('one', 1, true), topicUnderTest('three', 3, false), topicUnderTest('small', 1, false)];
  // Small segments, so that rolls happen often and some kills land in one ('small' has the least
  // allowed: nearly every group commit rolls). The CLI has no option for the segment size, so these
  // two are created through the log's own API beforehand; 'one' is created by its first appender.
  const log = await FileLog.open(logFolder(data));
  await log.createTopic('three', { partitions: 3, segmentBytes: 128 * 1024 });
  await log.createTopic('small', { partitions: 1, segmentBytes: 4096 });
  await log.close();

  const startedAt = Date.now();
  let passed = false;
  const totals = { kills: 0, sent: 0, acknowledged: 0, reads: 0, seenThenGone: 0, appendMs: 0, readMs: 0 };
  const moments = new Map<KillMoment, number>();
  try {
    for (let round = 0; round < roundsWanted; round++) {
      const topic = topics[round < topics.length ? round : random.integer(0, topics.length - 1)];
      const roundStartedAt = Date.now();
      const outcome = await appendAndKill(data, topic, round);
      totals.appendMs += Date.now() - roundStartedAt;
      totals.kills++;
      totals.sent += outcome.sent;
      totals.acknowledged += outcome.acknowledged;
      moments.set(outcome.moment, (moments.get(outcome.moment) ?? 0) + 1);
      // Read back after most kills (and always after the last): a read is a process start too.
      if (round === roundsWanted - 1 || random.chance(0.5)) {
        const readStartedAt = Date.now();
        // An appender killed before it created its topic leaves none, which is right if none was acknowledged.
        const check = checkRead(topic, await readTopic(data, topic.name, topic.acknowledged.size === 0), `after kill ${round + 1}`);
        totals.readMs += Date.now() - readStartedAt;
        totals.reads++;
        totals.seenThenGone += check.seenThenGone;
      }
    }
    let found = 0;
    let survivors = 0;
    for (const topic of topics) {
      const check = checkRead(topic, await readTopic(data, topic.name, topic.acknowledged.size === 0), 'at the end');
      found += check.records;
      survivors += check.unacknowledgedSurvivors;
      totals.seenThenGone += check.seenThenGone;
    }
    const segments = topics.map((topic) => {
      let count = 0;
      for (let partition = 0; partition < topic.partitions; partition++) {
        const folder = path.join(logFolder(data), 'topics', topic.name, String(partition));
        if (fs.existsSync(folder)) count += fs.readdirSync(folder).filter((name) => name.endsWith('.log')).length;
      }
      return `${topic.name}: ${count}`;
    });
    let bytes = 0;
    for (const topic of topics) for (const record of topic.sent.values()) bytes += record.line.length + 1;
    t.diagnostic(
      `${totals.kills} rounds, ${totals.kills} SIGKILLs (${[...moments].map(([moment, n]) => `${n} at ${moment}`).join(', ')}), ${totals.reads} reads in between; ` +
        `${totals.sent} records sent (${(bytes / 1024 / 1024).toFixed(1)} MB), ${totals.acknowledged} acknowledged, ${found} found at the end ` +
        `(${survivors} unacknowledged survivors); segments ${segments.join(', ')}; ${totals.seenThenGone} read-then-gone; ${((Date.now() - startedAt) / 1000).toFixed(1)} s (appending ${(totals.appendMs / 1000).toFixed(1)} s, reading ${(totals.readMs / 1000).toFixed(1)} s)`,
    );
    assert.ok(totals.kills >= Math.min(50, roundsWanted));
    passed = true;
  } finally {
    if (passed) fs.rmSync(data, { recursive: true, force: true });
    else t.diagnostic(`failed with seed ${seed}; the data folder is kept: ${data}`);
  }
});

test('a second appender on a topic being written is refused with a message naming the writer', { timeout: 60_000 }, async () => {
  const data = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-fence-'));
  const first = sluice(['log', 'append', 'fenced', '--data', data, '--key', 'id', '--partitions', '3']);
  try {
    const firstExit = exitOf(first);
    let output = '';
    first.stdout.setEncoding('utf8');
    const opened = new Promise<void>((resolve) => first.stdout.on('data', (text: string) => ((output += text), resolve())));
    first.stdin.write('{"id":"first-0"}\n'); // acknowledged once the topic is open (and locked)
    await Promise.race([
      opened,
      firstExit.then((exit) => assert.fail(`the first appender exited: ${exit.stderr}`)),
    ]);

    const second = sluice(['log', 'append', 'fenced', '--data', data, '--key', 'id']);
    second.stdin.on('error', () => {});
    second.stdin.end('{"id":"second-0"}\n');
    let secondOutput = '';
    second.stdout.on('data', (chunk: Buffer) => (secondOutput += chunk.toString()));
    const secondExit = await exitOf(second);
    assert.notEqual(secondExit.code, 0, 'the second appender must be refused');
    assert.equal(secondOutput, '', 'the refused appender acknowledged nothing');
    assert.match(secondExit.stderr, new RegExp(`pid ${first.pid}\\b`), `the refusal names the writer: ${secondExit.stderr}`);

    first.stdin.end('{"id":"first-1"}\n');
    const exit = await firstExit;
    assert.equal(exit.code, 0, exit.stderr);
    assert.equal(output.trim().split('\n').length, 2);

    // Once the first has closed, a new appender is accepted; the refused one appended nothing.
    const third = sluice(['log', 'append', 'fenced', '--data', data, '--key', 'id']);
    third.stdin.end('{"id":"third-0"}\n');
    const thirdExit = await exitOf(third);
    assert.equal(thirdExit.code, 0, thirdExit.stderr);
    const ids = (await readTopic(data, 'fenced')).map((record) => (record.value as { id: string }).id).sort();
    assert.deepEqual(ids, ['first-0', 'first-1', 'third-0']);
  } finally {
    if (first.exitCode === null && first.signalCode === null) first.kill('SIGKILL');
    fs.rmSync(data, { recursive: true, force: true });
  }
});
