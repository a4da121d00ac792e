/**
 * One writer per partition: a lock file naming the writing process, taken before recovery and
 * held until close. Node has no flock(), so the lock is a file created exclusively (link(2) of a
 * fully written temporary, atomic on local file systems) and holding pid, process start time and
 * host. A lock whose process is gone — same host, and no live process with that pid and start
 * time — is stale and taken over; otherwise the second writer gets a clear error, never a share.
 *
 * Invariants:
 * - The lock file is never seen half-written (it appears by link, whole).
 * - Only the owner removes its lock; a stale lock is moved aside atomically before a new one is
 *   linked, and the takeover re-reads the lock to check it won.
 */
import fs from 'node:fs';
import os from 'node:os';
import { DefiniteError } from '../../core/index.ts';

interface LockOwner {
  pid: number;
  startTime: string;
  host: string;
  command: string;
}

function startTimeOf(pid: number): string | undefined {
  try {
    // Field 22 of /proc/PID/stat: start time in clock ticks since boot. The command name (field 2)
    // may hold spaces and parentheses, so count fields after its closing parenthesis.
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

function isAlive(owner: LockOwner): boolean {
  if (owner.host !== os.hostname()) return true; // cannot tell: assume it is
  if (fs.existsSync('/proc/self/stat')) {
    const startTime = startTimeOf(owner.pid);
    return startTime !== undefined && startTime === owner.startTime;
  }
  try {
    process.kill(owner.pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readOwner(file: string): LockOwner | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as LockOwner;
  } catch {
    return undefined;
  }
}

export class WriterLock {
  readonly file: string;
  #released = false;

  private constructor(file: string) {
    this.file = file;
  }

  /** Takes the lock or throws a DefiniteError naming the process that holds it. */
  static acquire(file: string, what: string): WriterLock {
    const me: LockOwner = {
      pid: process.pid,
      startTime: startTimeOf(process.pid) ?? '',
      host: os.hostname(),
      command: process.argv.slice(1).join(' ').slice(0, 200),
    };
    const temporary = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(temporary, JSON.stringify(me));
    try {
      for (let attempt = 0; attempt < 3; attempt++) {
        try {
          fs.linkSync(temporary, file);
          return new WriterLock(file);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        }
        const owner = readOwner(file);
        if (owner && owner.pid === process.pid && owner.startTime === me.startTime) {
          throw new DefiniteError('log_locked', `${what} is already open for writing in this process`, 'open the log once per process and share it');
        }
        if (owner && isAlive(owner)) {
          throw new DefiniteError(
            'log_locked',
            `${what} is being written by another process (pid ${owner.pid} on ${owner.host}: ${owner.command})`,
            'a partition has one writer at a time: stop that process, or read with `sluice log read`, which needs no lock',
          );
        }
        // Stale (or unreadable, from a crash between create and write on an old version): move it
        // aside, then make sure what was moved is what was judged stale.
        const aside = `${file}.stale.${process.pid}`;
        try {
          fs.renameSync(file, aside);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
          throw error;
        }
        const moved = readOwner(aside);
        if (moved && owner && (moved.pid !== owner.pid || moved.startTime !== owner.startTime)) {
          // Another process took over between our read and our rename: give its lock back.
          try {
            fs.linkSync(aside, file);
          } catch {
            // It re-created one meanwhile; either way the lock is not ours.
          }
          fs.rmSync(aside, { force: true });
          throw new DefiniteError('log_locked', `${what} was just taken by pid ${moved.pid}`, 'a partition has one writer at a time');
        }
        fs.rmSync(aside, { force: true });
      }
      throw new DefiniteError('log_locked', `${what}: could not take the writer lock ${file}`, 'another process keeps taking it; make sure only one writer runs');
    } finally {
      fs.rmSync(temporary, { force: true });
    }
  }

  release(): void {
    if (this.#released) return;
    this.#released = true;
    const owner = readOwner(this.file);
    if (owner && owner.pid === process.pid) fs.rmSync(this.file, { force: true });
  }
}
