/**
 * What the CDC scenario tests share (scenarios-postgres.test.ts, scenarios-mysql.test.ts):
 * waiting for a condition, a source's status, comparing rows, running a scenario with uncaught
 * exceptions turned into a failure after the body has cleaned up, and reading a source topic.
 */
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import type { FileLog } from '../../src/log/index.ts';
import type { PipelineRuntime } from '../../src/pipeline/runtime.ts';
import { decodeSourceRecord, type SourceRecord } from '../../src/sources/records.ts';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export function describeDiff(want: string[], got: string[]): string {
  const wantSet = new Set(want);
  const gotSet = new Set(got);
  const missing = want.filter((r) => !gotSet.has(r));
  const extra = got.filter((r) => !wantSet.has(r));
  return `${got.length} rows for ${want.length}; missing ${missing.length} (${missing.slice(0, 3).join(' ')}), extra ${extra.length} (${extra.slice(0, 3).join(' ')})`;
}

export async function waitFor(what: string, condition: () => boolean | Promise<boolean>, timeoutMs: number, everyMs = 10): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** The source's entry in the runtime's status. */
export function sourceStatus(runtime: PipelineRuntime, name: string) {
  const found = runtime.status().sources.find((s) => s.name === name);
  assert.ok(found, `status().sources has no source ${name}: ${JSON.stringify(runtime.status().sources)}`);
  return found;
}

/**
 * Runs a test's body with uncaught exceptions recorded rather than handed to the test runner: an
 * error event nobody listens to (a connection of Sluice's dropped by a server restart) would kill
 * `sluice up`, so it fails the test — but only once the body has finished (runtime closed,
 * the server restarted), so that the next tests find a running server.
 */
export function scenario(body: (t: TestContext) => Promise<void>): (t: TestContext) => Promise<void> {
  return async (t) => {
    const uncaught: Error[] = [];
    const saved = process.listeners('uncaughtException');
    const record = (error: Error) => {
      uncaught.push(error);
    };
    process.removeAllListeners('uncaughtException');
    process.on('uncaughtException', record);
    let failure: unknown;
    try {
      await body(t);
    } catch (error) {
      failure = error;
    } finally {
      process.off('uncaughtException', record);
      for (const listener of saved) process.on('uncaughtException', listener);
    }
    const crash = uncaught.length > 0 ? `${uncaught.length} uncaught exception(s) in the process, which would have killed sluice up: ${uncaught.map((e) => `${e.message}\n    ${(e.stack ?? '').split('\n').slice(1, 4).join('\n    ')}`).join('\n  ')}` : undefined;
    if (failure !== undefined) {
      if (crash) (failure as Error).message += `\n  and ${crash}`;
      throw failure;
    }
    if (crash) assert.fail(crash);
  };
}

/** Every record of a source topic, in order (records[i] is the one at offset i). */
export async function sourceTopicRecords(log: FileLog, topic: string): Promise<SourceRecord[]> {
  const out: SourceRecord[] = [];
  const [end] = await log.endOffsets(topic);
  for (let offset = 0; offset < end!; ) {
    const { records } = await log.read(topic, 0, offset);
    for (const r of records) out.push(decodeSourceRecord(r.value!, `${topic}@${r.offset}`));
    offset = records.at(-1)!.offset + 1;
  }
  return out;
}
