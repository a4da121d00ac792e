/**
 * `sluice up` as a child process for the pipeline crash test: start, wait for its
 * `listening URL` line, kill (SIGKILL) or stop (SIGTERM); plus a seeded PRNG.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
/** How long a start may take to listen (replays the log; the machine may be busy). */
const READY_MS = 30_000;

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class Sluice {
  readonly child: ChildProcess;
  url = '';
  stderr = '';
  alive = true;
  /** Set when SIGKILL (or SIGTERM) was sent: a failed request then has an unknown fate. */
  killed = false;
  exitCode: number | null = null;
  readonly exited: Promise<number | null>;
  readonly #ready: Promise<boolean>;

  private constructor(child: ChildProcess) {
    this.child = child;
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.alive = false;
        this.exitCode = code ?? (signal ? -1 : null);
        resolve(this.exitCode);
      });
    });
    let stdout = '';
    this.#ready = new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), READY_MS);
      child.stdout!.on('data', (chunk: Buffer) => {
        stdout += chunk.toString();
        const match = /^listening (http:\/\/\S+)$/m.exec(stdout);
        if (match && !this.url) {
          this.url = match[1]!;
          clearTimeout(timer);
          resolve(true);
        }
      });
      void this.exited.then(() => {
        clearTimeout(timer);
        resolve(false);
      });
    });
    child.stderr!.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()));
  }

  /** `checkpointSeconds` short makes restarts restore checkpoints (and cut replays at sinks' frontiers). */
  static start(file: string, data: string, checkpointSeconds?: number): Sluice {
    const extra = checkpointSeconds === undefined ? [] : ['--checkpoint-interval', String(checkpointSeconds)];
    return new Sluice(spawn(process.execPath, ['src/cli/main.ts', 'up', file, '--data', data, '--listen', '127.0.0.1:0', '--quiet', ...extra], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] }));
  }

  /** True once listening; false when it exited (or did not listen in time). */
  ready(): Promise<boolean> {
    return this.#ready;
  }

  kill(): void {
    this.killed = true;
    if (this.alive) this.child.kill('SIGKILL');
  }

  async stop(): Promise<number | null> {
    this.killed = true;
    if (this.alive) this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.kill(), 30_000);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }
}

export function runSluice(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['src/cli/main.ts', ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}
