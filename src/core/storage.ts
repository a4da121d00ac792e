/**
 * Storage: the file operations the durable parts of Sluice use, behind one interface so that a
 * seeded simulation can lose unsynced writes, tear tails and flip bits (test/sim/).
 *
 * Reads and writes are synchronous (they hit the page cache and are short); syncs are
 * asynchronous so that group commit can gather appends while one is in flight.
 *
 * Assumptions about the disk, which the simulation models:
 * - a write is durable once a later `sync` of its file has resolved;
 * - a file's creation, rename or removal is durable once `syncDirectory` of its folder resolved;
 * - until then a write may be lost whole or in part, in units of 512-byte sectors, in any order,
 *   and a lost sector past the old end of a file reads back as zeros (or the file is shorter).
 */
import fs from 'node:fs';
import path from 'node:path';

export type SyncMode = 'data' | 'all';

export interface StorageFile {
  readonly path: string;
  size(): number;
  /** Reads up to `length` bytes at `position` into `target` at `targetOffset`; returns bytes read. */
  read(target: Uint8Array, targetOffset: number, length: number, position: number): number;
  /** Writes all of `buffers`, one after another, starting at `position`. */
  write(buffers: readonly Uint8Array[], position: number): void;
  truncate(size: number): void;
  /** 'data' is fdatasync (contents and size), 'all' is fsync (every piece of metadata too). */
  sync(mode: SyncMode): Promise<void>;
  close(): void;
}

export interface Storage {
  /** Opens an existing file, or creates it when `create` is set. */
  open(file: string, options: { create?: boolean; readOnly?: boolean }): StorageFile;
  exists(file: string): boolean;
  /** Names in a folder, sorted; an empty list when the folder does not exist. */
  list(folder: string): string[];
  /** Creates a folder and its missing parents, durably: the parent of each one created is synced. */
  makeFolder(folder: string): Promise<void>;
  rename(from: string, to: string): void;
  remove(file: string): void;
  /** Makes creations, renames and removals in `folder` durable. */
  syncDirectory(folder: string): Promise<void>;
  /** Reads a whole small file, or undefined when it does not exist. */
  readWhole(file: string): Buffer | undefined;
}

/** Writes `contents` to a temporary sibling of `file`; returns it, still open. */
function writeTemporarySibling(storage: Storage, file: string, contents: Uint8Array): { temporary: string; handle: StorageFile } {
  const temporary = `${file}.${process.pid}.tmp`;
  const handle = storage.open(temporary, { create: true });
  try {
    handle.truncate(0);
    handle.write([contents], 0);
  } catch (error) {
    handle.close();
    throw error;
  }
  return { temporary, handle };
}

/**
 * Replaces a small file atomically and durably: writes a temporary sibling, syncs it, renames it
 * over `file`, syncs the folder. A crash leaves either the old file or the new one (and perhaps
 * the temporary, which recovery removes).
 */
export async function replaceFileAtomically(storage: Storage, file: string, contents: Uint8Array): Promise<void> {
  const { temporary, handle } = writeTemporarySibling(storage, file, contents);
  try {
    await handle.sync('data');
  } finally {
    handle.close();
  }
  storage.rename(temporary, file);
  await storage.syncDirectory(path.dirname(file));
}

/**
 * Replaces a file that is checked when read (a checksum) and can be rebuilt when missing or
 * damaged: the same rename, but nothing is synced, so it costs no disk flush. After a crash the
 * file may be the old one, the new one, or damaged — never silently wrong.
 */
export function replaceRebuildableFile(storage: Storage, file: string, contents: Uint8Array): void {
  const { temporary, handle } = writeTemporarySibling(storage, file, contents);
  handle.close();
  storage.rename(temporary, file);
}

class NodeFile implements StorageFile {
  readonly path: string;
  #fd: number;
  constructor(file: string, fd: number) {
    this.path = file;
    this.#fd = fd;
  }
  size(): number {
    return fs.fstatSync(this.#fd).size;
  }
  read(target: Uint8Array, targetOffset: number, length: number, position: number): number {
    let total = 0;
    while (total < length) {
      const n = fs.readSync(this.#fd, target, targetOffset + total, length - total, position + total);
      if (n === 0) break;
      total += n;
    }
    return total;
  }
  write(buffers: readonly Uint8Array[], position: number): void {
    if (buffers.length === 1) {
      const buffer = buffers[0];
      let done = 0;
      while (done < buffer.length) done += fs.writeSync(this.#fd, buffer, done, buffer.length - done, position + done);
      return;
    }
    let pending = buffers.slice();
    let at = position;
    while (pending.length > 0) {
      let written = fs.writevSync(this.#fd, pending as NodeJS.ArrayBufferView[], at);
      at += written;
      // A short writev leaves a partly written buffer: keep its rest and everything after it.
      while (pending.length > 0 && written >= pending[0].length) {
        written -= pending[0].length;
        pending.shift();
      }
      if (written > 0) pending[0] = pending[0].subarray(written);
    }
  }
  truncate(size: number): void {
    fs.ftruncateSync(this.#fd, size);
  }
  sync(mode: SyncMode): Promise<void> {
    return new Promise((resolve, reject) => {
      const done = (error: NodeJS.ErrnoException | null) => (error ? reject(error) : resolve());
      if (mode === 'all') fs.fsync(this.#fd, done);
      else fs.fdatasync(this.#fd, done);
    });
  }
  close(): void {
    fs.closeSync(this.#fd);
  }
}

/** The real file system. */
export class NodeStorage implements Storage {
  open(file: string, options: { create?: boolean; readOnly?: boolean }): StorageFile {
    const flags = options.readOnly ? 'r' : options.create ? fs.constants.O_RDWR | fs.constants.O_CREAT : 'r+';
    return new NodeFile(file, fs.openSync(file, flags, 0o644));
  }
  exists(file: string): boolean {
    return fs.existsSync(file);
  }
  list(folder: string): string[] {
    try {
      return fs.readdirSync(folder).sort();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
  }
  async makeFolder(folder: string): Promise<void> {
    const absolute = path.resolve(folder);
    const missing: string[] = [];
    for (let at = absolute; !fs.existsSync(at); at = path.dirname(at)) missing.push(at);
    if (missing.length === 0) return;
    fs.mkdirSync(absolute, { recursive: true });
    // Outermost first: a folder's entry is durable only once its parent is synced.
    for (const created of missing.reverse()) await this.syncDirectory(path.dirname(created));
  }
  rename(from: string, to: string): void {
    fs.renameSync(from, to);
  }
  remove(file: string): void {
    fs.rmSync(file, { force: true });
  }
  syncDirectory(folder: string): Promise<void> {
    return new Promise((resolve, reject) => {
      fs.open(folder, 'r', (openError, fd) => {
        if (openError) return reject(openError);
        fs.fsync(fd, (syncError) => {
          fs.close(fd, () => (syncError ? reject(syncError) : resolve()));
        });
      });
    });
  }
  readWhole(file: string): Buffer | undefined {
    try {
      return fs.readFileSync(file);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }
}
