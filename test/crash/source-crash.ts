/**
 * What the crash tests of CDC sources share (test/crash/postgres-crash.test.ts and
 * mysql-crash.test.ts): reading views over HTTP and comparing them with the source database, and
 * the cycles of starting `sluice up` and killing it — during the snapshot, during start-up, or
 * under load — with convergence checks every few restarts.
 */
import assert from 'node:assert/strict';
import type { Random } from './random.ts';
import { Sluice, sleep } from './pipeline-process.ts';

// ── Comparing ───────────────────────────────────────────────────────────────────────────────

/** A value as text; numbers in canonical form (`12.50`, 12.5 and `12.5` alike). */
export function canonical(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  const text = String(value);
  if (/^-?\d+\.\d+$/.test(text)) return text.replace(/0+$/, '').replace(/\.$/, '');
  return text;
}

export function normalize(rows: Record<string, unknown>[]): string[] {
  return rows.map((row) => JSON.stringify(Object.fromEntries(Object.entries(row).map(([k, v]) => [k, canonical(v)])))).sort();
}

export function describeDiff(want: string[], got: string[]): string {
  const wantSet = new Set(want);
  const gotSet = new Set(got);
  const missing = want.filter((r) => !gotSet.has(r));
  const extra = got.filter((r) => !wantSet.has(r));
  return `${got.length} rows for ${want.length}: missing ${missing.length} ${JSON.stringify(missing.slice(0, 3))}, unexpected ${extra.length} ${JSON.stringify(extra.slice(0, 3))}`;
}

export async function getJson(url: string): Promise<Record<string, unknown>> {
  const response = await fetch(url);
  const text = await response.text();
  if (response.status !== 200) throw new Error(`GET ${url} answered ${response.status}: ${text}`);
  return JSON.parse(text) as Record<string, unknown>;
}

/**
 * Runs `work` against a live process; a failure names the moment and, when the process died by
 * itself meanwhile (it was not killed), its exit code and stderr.
 */
export async function live<T>(sluice: Sluice, when: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    await Promise.race([sluice.exited, sleep(500)]);
    const state = sluice.alive ? 'still running' : `exited by itself (exit ${sluice.exitCode})`;
    throw new Error(`${when}: ${(error as Error).message}${(error as Error).cause ? ` (${String((error as Error).cause)})` : ''}; sluice up ${state}; stderr: ${sluice.stderr.trim().slice(-2000)}`, { cause: error });
  }
}

/** A view's rows through GET /v1/views/NAME, page by page, all at one position (retried otherwise). */
export async function readView(sluice: Sluice, name: string): Promise<{ rows: Record<string, unknown>[]; position: string }> {
  for (let attempt = 0; ; attempt++) {
    const rows: Record<string, unknown>[] = [];
    const positions = new Set<string>();
    for (let offset = 0; ; offset += 10_000) {
      const page = await getJson(`${sluice.url}/v1/views/${name}?limit=10000&offset=${offset}`);
      rows.push(...(page.rows as Record<string, unknown>[]));
      positions.add(String(page.position));
      if ((page.rows as unknown[]).length < 10_000) break;
    }
    if (positions.size === 1 || attempt >= 20) return { rows, position: [...positions][0]! };
  }
}

/** The source database as the oracle: its name for messages, the views, and each view's query's rows there. */
export interface Oracle {
  product: string;
  views: Record<string, string>;
  /** The rows of a view's query on the source database, normalized. */
  expected(sql: string): Promise<string[]>;
  convergeMs: number;
}

/** Every view against the source database once; returns the problems (none when all are equal). */
export async function compareAll(oracle: Oracle, sluice: Sluice): Promise<{ problems: string[]; positions: string[] }> {
  const problems: string[] = [];
  const positions: string[] = [];
  for (const [name, sql] of Object.entries(oracle.views)) {
    const want = await oracle.expected(sql);
    const { rows, position } = await readView(sluice, name);
    positions.push(position);
    const got = normalize(rows);
    if (JSON.stringify(want) !== JSON.stringify(got)) problems.push(`view ${name}: ${describeDiff(want, got)}`);
  }
  return { problems, positions };
}

/** Waits until every view equals the source database (quiescent meanwhile); fails with the differences and the status. */
export async function converge(oracle: Oracle, sluice: Sluice, when: string): Promise<{ ms: number; positions: string[] }> {
  const began = performance.now();
  const deadline = Date.now() + oracle.convergeMs;
  for (;;) {
    if (!sluice.alive) assert.fail(`${when}: sluice up exited by itself (exit ${sluice.exitCode}): ${sluice.stderr.trim().slice(-2000)}`);
    const { problems, positions } = await live(sluice, when, () => compareAll(oracle, sluice));
    if (problems.length === 0) return { ms: performance.now() - began, positions };
    const status = await getJson(`${sluice.url}/v1/status`).catch((error: Error) => ({ unavailable: error.message }));
    // A source that gave up (state 'failed', where the status says so) will not converge.
    const failed = ((status as { sources?: Array<{ state?: string }> }).sources ?? []).some((s) => s.state === 'failed');
    if (Date.now() > deadline || failed) {
      assert.fail(`${when}: the views do not converge to ${oracle.product} ${failed ? '(the source failed for good)' : `within ${oracle.convergeMs / 1000} s`}:\n  ${problems.join('\n  ')}\n  status.sources ${JSON.stringify((status as { sources?: unknown }).sources ?? status)}\n  stderr ${sluice.stderr.trim().slice(-1500)}`);
    }
    await sleep(250);
  }
}

/** A position token's offset in the source's topic. */
export function sourceOffset(token: string): number {
  const frontier = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as Record<string, number>;
  return frontier['source.shop'] ?? 0;
}

// ── The kill cycles ─────────────────────────────────────────────────────────────────────────

export interface Stats {
  kills: { snapshot: number; startup: number; load: number };
  /**
   * Snapshot kills that found the snapshot unfinished: the source was reading it (state
   * 'snapshot'), or was not streaming yet and had no position (a watermark snapshot has one as
   * soon as it writes a transaction).
   */
  inSnapshot: number;
  checks: number;
  balanceReads: number;
  balanceChecked: number;
  restartMs: number[];
  convergeMs: number[];
}

export function newStats(): Stats {
  return { kills: { snapshot: 0, startup: 0, load: 0 }, inSnapshot: 0, checks: 0, balanceReads: 0, balanceChecked: 0, restartMs: [], convergeMs: [] };
}

export interface KillCycles {
  plan: Random;
  kills: number;
  seed: number;
  file: string;
  data: string;
  oracle: Oracle;
  writer: { pause(): Promise<void>; resume(): void; stop(): Promise<void> };
  stats: Stats;
  /** Kills aimed at the initial snapshot, and a convergence check every this many restarts. */
  snapshotKills: number;
  checkEvery: number;
  /** Upper bounds (ms) of the random start-up kill delay and load time. */
  startupMs: number;
  loadMs: number;
  /** Checks the cross-table invariant on one read (once the snapshot is processed). */
  checkBalance(sluice: Sluice, when: string, snapshotDone: number | undefined): Promise<void>;
  /** Each started process (so the caller can stop the last one). */
  started(sluice: Sluice): void;
}

/** Starts and kills `sluice up` `kills` times, then starts it once more and checks it converges; returns the last process, running. */
export async function killCycles(options: KillCycles): Promise<Sluice> {
  const { plan, stats, writer, file, data, seed } = options;
  const killsWanted = options.kills;
  let sluice: Sluice;
  /** The source's offset at which the snapshot is known to be processed (by a converged check). */
  let snapshotDone: number | undefined;
  const checkBalance = (s: Sluice, when: string) => options.checkBalance(s, when, snapshotDone);
    for (let cycle = 0; cycle <= killsWanted; cycle++) {
      const last = cycle === killsWanted;
      const kills = stats.kills.snapshot + stats.kills.startup + stats.kills.load;
      const when = `cycle ${cycle} (${kills} kills, seed ${seed})`;
      const snapshotKill = !last && cycle < options.snapshotKills && snapshotDone === undefined;
      const startupKill = !last && !snapshotKill && plan.chance(0.2);
      const startupDelay = plan.integer(0, options.startupMs);
      const snapshotDelay = plan.integer(0, 400);
      const loadMs = plan.integer(100, options.loadMs);
      const check = last || (!startupKill && !snapshotKill && cycle % options.checkEvery === options.checkEvery - 1);
      const checkpoint = plan.chance(0.5) ? 0.3 : undefined;
      const startBegan = performance.now();
      sluice = Sluice.start(file, data, checkpoint);
      options.started(sluice);
      if (startupKill) {
        // Killed during start-up: while the log is replayed, or while the capture connects.
        await Promise.race([sleep(startupDelay), sluice.exited]);
        if (!sluice.alive) assert.fail(`${when}: sluice up exited by itself during start-up (exit ${sluice.exitCode}): ${sluice.stderr.trim().slice(-2000)}`);
        sluice.kill();
        await sluice.exited;
        stats.kills.startup++;
        continue;
      }
      if (!(await sluice.ready())) assert.fail(`${when}: sluice up did not start (exit ${sluice.exitCode}): ${sluice.stderr.trim().slice(-2000)}`);
      stats.restartMs.push(performance.now() - startBegan);
      if (snapshotKill) {
        await sleep(snapshotDelay);
        if (!sluice.alive) assert.fail(`${when}: sluice up exited by itself during the snapshot (exit ${sluice.exitCode}): ${sluice.stderr.trim().slice(-2000)}`);
        // A source reading its snapshot, or not streaming yet with no position, has not finished it.
        const sources = (await live(sluice, when, () => getJson(`${sluice!.url}/v1/status`))).sources as Array<{ position: string; state?: string }>;
        if (sources[0]?.state === 'snapshot' || (sources[0]?.position === '' && sources[0]?.state !== 'streaming')) stats.inSnapshot++;
        sluice.kill();
        await sluice.exited;
        stats.kills.snapshot++;
        continue;
      }
      if (check) {
        await writer.pause();
        if (last) await writer.stop();
        const { ms, positions } = await converge(options.oracle, sluice, `${when}: after a restart`);
        stats.checks++;
        stats.convergeMs.push(ms);
        const offset = Math.max(...positions.map(sourceOffset));
        if (snapshotDone === undefined) snapshotDone = offset;
        await checkBalance(sluice, when);
        if (last) break;
        writer.resume();
      }
      // The load, with reads of the invariant, then the kill.
      const loadEnds = performance.now() + loadMs;
      while (performance.now() < loadEnds) {
        if (!sluice.alive) assert.fail(`${when}: sluice up exited by itself under load (exit ${sluice.exitCode}): ${sluice.stderr.trim().slice(-2000)}`);
        await checkBalance(sluice, when);
        await sleep(Math.min(100, Math.max(0, loadEnds - performance.now())));
      }
      sluice.kill();
      await sluice.exited;
      stats.kills.load++;
    }

  return sluice!;
}
