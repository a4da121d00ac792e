/**
 * SimulatedStorage: the `Storage` of src/core/storage.ts held entirely in memory, with the disk
 * model documented there made explicit, so that a seeded test can cut the power at any instant
 * and then damage what survived (SQLite's crash VFS, TigerBeetle's VOPR storage).
 *
 * The model:
 * - A file is an inode with `current` bytes (every write, what a running process reads) and
 *   `durable` bytes (as of its last completed sync). Sectors (512 bytes) changed since are pending.
 * - `sync()` resolves a few event-loop turns later (seeded); it makes durable what was written
 *   before it was called, and leaves pending whatever was written meanwhile.
 * - A folder maps names to inodes and folders, with a `current` view and a `durable` view (as of
 *   its last completed `syncDirectory`); creations, renames and removals since are kept in order.
 *   Creating a folder is an entry in its parent like any other, durable once the parent is synced
 *   (unless `folderCreation: 'durable'`).
 * - Open handles keep their inode through renames and removals (POSIX).
 * - `crash()` is a power loss. Per folder, the entries are the durable view plus a prefix of the
 *   changes since (none: the durable view; all: the current view) — a journaled file system keeps
 *   a folder's changes in order. Per file, the bytes are the durable ones, each pending sector
 *   independently either written or not, and the length is either the durable or the current one;
 *   a sector past the durable length that was not written reads as zeros.
 * - After a crash, `flipBit` and `truncateSynced` damage synced bytes of checksummed files, the
 *   way a medium or a careless operator would; `files` and `syncedLength` let a test aim them.
 *
 * Invariants:
 * - Deterministic: every choice comes from the seeded Random passed in; names are visited sorted.
 * - A crashed storage is dead: its syncs never resolve and every other call throws, as the
 *   process that used it would be gone. The disk after the crash shares nothing with it.
 */
import path from 'node:path';
import type { Storage, StorageFile, SyncMode } from '../../src/core/storage.ts';
import type { Random } from './random.ts';

export const sectorBytes = 512;

/**
 * Only these files carry checksums, so only they are damaged on purpose: topic.json and the
 * consumer-offset files (consumers/GROUP.json) are not checksummed yet, and a flipped bit there
 * would be read back silently — a known gap, not what this simulation measures.
 */
export const checksummedFilePattern = /\.(log|index|producers)$/;

function fsError(code: string, message: string): NodeJS.ErrnoException {
  const error: NodeJS.ErrnoException = new Error(`${code}: ${message}`);
  error.code = code;
  return error;
}

class Inode {
  readonly id: number;
  /** What a running process reads: `bytes[0 … length)`; the rest of `bytes` is spare capacity. */
  bytes: Buffer;
  length: number;
  /** What survives a power loss for certain. */
  durable: Buffer;
  /** Sector → change number of its last change not yet known durable. */
  readonly pending = new Map<number, number>();
  changes = 0;
  /** The change number the durable bytes are as of. */
  durableAsOf = 0;

  constructor(id: number, contents: Buffer) {
    this.id = id;
    this.bytes = Buffer.from(contents);
    this.length = contents.length;
    this.durable = Buffer.from(contents);
  }

  #reserve(size: number): void {
    if (size <= this.bytes.length) return;
    const grown = Buffer.alloc(Math.max(size, this.bytes.length * 2, 4096));
    this.bytes.copy(grown, 0, 0, this.length);
    this.bytes = grown;
  }

  #touch(from: number, to: number): void {
    const change = ++this.changes;
    for (let sector = Math.floor(from / sectorBytes); sector * sectorBytes < to; sector++) this.pending.set(sector, change);
  }

  write(data: Buffer, position: number): void {
    if (data.length === 0) return;
    const end = position + data.length;
    this.#reserve(end);
    // A write past the end leaves a hole of zeros (spare capacity is kept zeroed).
    data.copy(this.bytes, position);
    if (end > this.length) this.length = end;
    this.#touch(position, end);
  }

  truncate(size: number): void {
    if (size < this.length) {
      this.bytes.fill(0, size, this.length);
      // Sectors cut off differ from the durable ones until the truncation is synced.
      this.#touch(size, Math.max(this.length, this.durable.length));
      this.length = size;
    } else if (size > this.length) {
      this.#reserve(size);
      this.#touch(this.length, size);
      this.length = size;
    }
  }

  read(target: Uint8Array, targetOffset: number, length: number, position: number): number {
    if (position >= this.length) return 0;
    const n = Math.min(length, this.length - position);
    target.set(this.bytes.subarray(position, position + n), targetOffset);
    return n;
  }

  /** Called when a sync is issued: what it will make durable when it completes. */
  captureForSync(): { asOf: number; contents: Buffer } {
    return { asOf: this.changes, contents: Buffer.from(this.bytes.subarray(0, this.length)) };
  }

  completeSync(capture: { asOf: number; contents: Buffer }): void {
    // Syncs may complete out of order; an older one must not roll the durable bytes back.
    if (capture.asOf <= this.durableAsOf) return;
    this.durable = capture.contents;
    this.durableAsOf = capture.asOf;
    for (const [sector, change] of this.pending) if (change <= capture.asOf) this.pending.delete(sector);
  }

  /** The file's bytes after a power loss. */
  afterPowerLoss(random: Random, sectorWritten: number, report: PowerLossReport): Buffer {
    const length = this.length === this.durable.length || random.chance(0.5) ? this.durable.length : this.length;
    const out = Buffer.alloc(length);
    this.durable.copy(out, 0, 0, Math.min(length, this.durable.length));
    const sectors = [...this.pending.keys()].sort((a, b) => a - b);
    for (const sector of sectors) {
      const start = sector * sectorBytes;
      if (start >= length) break;
      report.pendingSectors++;
      if (!random.chance(sectorWritten)) continue;
      report.sectorsWritten++;
      const end = Math.min(start + sectorBytes, length);
      out.fill(0, start, end);
      this.bytes.copy(out, start, start, Math.min(end, this.length));
    }
    return out;
  }
}

type FolderChange =
  | { kind: 'set'; name: string; entry: Entry }
  | { kind: 'delete'; name: string }
  | { kind: 'rename'; from: string; to: string; entry: Entry };

class Folder {
  readonly id: number;
  readonly current = new Map<string, Entry>();
  durable = new Map<string, Entry>();
  /** Changes to `current` not yet known durable, oldest first. */
  changes: Array<{ number: number; change: FolderChange }> = [];
  changeCount = 0;
  durableAsOf = 0;

  constructor(id: number, entries?: Map<string, Entry>) {
    this.id = id;
    if (entries) {
      for (const [name, entry] of entries) {
        this.current.set(name, entry);
        this.durable.set(name, entry);
      }
    }
  }

  change(change: FolderChange): void {
    applyChange(this.current, change);
    this.changes.push({ number: ++this.changeCount, change });
  }

  completeSync(asOf: number): void {
    if (asOf <= this.durableAsOf) return;
    let n = 0;
    while (n < this.changes.length && this.changes[n].number <= asOf) applyChange(this.durable, this.changes[n++].change);
    this.changes = this.changes.slice(n);
    this.durableAsOf = asOf;
  }

  /** The entries after a power loss: the durable ones and the first `kept` changes since. */
  afterPowerLoss(kept: number): Map<string, Entry> {
    const view = new Map(this.durable);
    for (let i = 0; i < kept; i++) applyChange(view, this.changes[i].change);
    return view;
  }
}

type Entry = Inode | Folder;

function applyChange(view: Map<string, Entry>, change: FolderChange): void {
  if (change.kind === 'set') view.set(change.name, change.entry);
  else if (change.kind === 'delete') view.delete(change.name);
  else if (view.get(change.from) === change.entry) {
    view.delete(change.from);
    view.set(change.to, change.entry);
  }
}

/** A fault injected into a synced region, described so a failure message can name it. */
export interface Fault {
  kind: 'flip-bit' | 'truncate';
  file: string;
  /** The byte flipped, or the length the file was cut to. */
  position: number;
  /** For 'flip-bit', which bit (0–7) of the byte. */
  bit?: number;
  /** The file's synced length before the fault. */
  syncedLength: number;
  description: string;
}

/** What the last power loss did, for the simulation's statistics. */
export interface PowerLossReport {
  /** Sectors changed since their file's last sync, within the length the file came back with. */
  pendingSectors: number;
  /** Of those, the ones whose new bytes reached the disk. */
  sectorsWritten: number;
  /** Folders that came back without some of their unsynced creations, renames or removals. */
  foldersWithLostChanges: number;
}

class SimulatedFile implements StorageFile {
  readonly path: string;
  readonly #storage: SimulatedStorage;
  readonly #inode: Inode;
  readonly #readOnly: boolean;
  #closed = false;

  constructor(storage: SimulatedStorage, file: string, inode: Inode, readOnly: boolean) {
    this.#storage = storage;
    this.path = file;
    this.#inode = inode;
    this.#readOnly = readOnly;
  }

  #check(writing: boolean): void {
    this.#storage.assertPowered();
    if (this.#closed) throw fsError('EBADF', `${this.path} is closed`);
    if (writing && this.#readOnly) throw fsError('EBADF', `${this.path} was opened read-only`);
  }

  size(): number {
    this.#check(false);
    return this.#inode.length;
  }

  read(target: Uint8Array, targetOffset: number, length: number, position: number): number {
    this.#check(false);
    return this.#inode.read(target, targetOffset, length, position);
  }

  write(buffers: readonly Uint8Array[], position: number): void {
    this.#check(true);
    let at = position;
    for (const buffer of buffers) {
      const data = Buffer.from(buffer.buffer, buffer.byteOffset, buffer.byteLength);
      this.#inode.write(data, at);
      at += data.length;
    }
  }

  truncate(size: number): void {
    this.#check(true);
    this.#inode.truncate(size);
  }

  sync(_mode: SyncMode): Promise<void> {
    this.#check(false);
    const capture = this.#inode.captureForSync();
    return this.#storage.later(() => this.#inode.completeSync(capture));
  }

  close(): void {
    this.#storage.assertPowered();
    this.#closed = true;
  }
}

export interface SimulatedStorageOptions {
  /** Most event-loop turns a sync takes to complete (default 3; at least 1). */
  syncTurnsMax?: number;
  /**
   * 'strict' (the default): a new folder is an entry of its parent like a file, lost in a crash
   * unless the parent is synced — what POSIX promises. 'durable': a new folder survives any crash
   * at once — what ext4 and XFS do in practice once any later fsync commits their journal.
   */
  folderCreation?: 'strict' | 'durable';
}

export class SimulatedStorage implements Storage {
  /** Drives sync latencies; power-loss choices come from the Random given to `crash`. */
  readonly #random: Random;
  readonly #syncTurnsMax: number;
  readonly #folderCreation: 'strict' | 'durable';
  #root: Folder;
  #nextId = 1;
  #powered = true;
  lastPowerLoss: PowerLossReport | undefined;

  constructor(random: Random, options: SimulatedStorageOptions = {}) {
    this.#random = random;
    this.#syncTurnsMax = Math.max(1, options.syncTurnsMax ?? 3);
    this.#folderCreation = options.folderCreation ?? 'strict';
    this.#root = new Folder(this.#nextId++);
  }

  assertPowered(): void {
    if (!this.#powered) throw new Error('the simulated machine lost power: this storage belongs to a world that crashed');
  }

  /** Runs `effect` a seeded number of event-loop turns from now, then resolves; never, after a crash. */
  later(effect: () => void): Promise<void> {
    const turns = 1 + this.#random.int(this.#syncTurnsMax);
    return new Promise((resolve) => {
      let left = turns;
      const step = () => {
        if (!this.#powered) return; // the power went: this sync never completes
        if (--left > 0) return void setImmediate(step);
        effect();
        resolve();
      };
      setImmediate(step);
    });
  }

  // ── Paths ───────────────────────────────────────────────────────────────────────────────────

  #parts(file: string): string[] {
    return path.posix.resolve(file).split('/').filter((part) => part.length > 0);
  }

  #folderAt(parts: readonly string[]): Folder | undefined {
    let folder = this.#root;
    for (const part of parts) {
      const entry = folder.current.get(part);
      if (!(entry instanceof Folder)) return undefined;
      folder = entry;
    }
    return folder;
  }

  /** The folder holding `file` and the file's name in it. */
  #locate(file: string): { folder: Folder | undefined; name: string } {
    const parts = this.#parts(file);
    const name = parts.pop();
    if (name === undefined) return { folder: undefined, name: '' };
    return { folder: this.#folderAt(parts), name };
  }

  #inodeAt(file: string): Inode | undefined {
    const { folder, name } = this.#locate(file);
    const entry = folder?.current.get(name);
    return entry instanceof Inode ? entry : undefined;
  }

  // ── Storage ─────────────────────────────────────────────────────────────────────────────────

  open(file: string, options: { create?: boolean; readOnly?: boolean }): StorageFile {
    this.assertPowered();
    const { folder, name } = this.#locate(file);
    if (!folder) throw fsError('ENOENT', `no folder holds ${file}`);
    let entry = folder.current.get(name);
    if (entry instanceof Folder) throw fsError('EISDIR', `${file} is a folder`);
    if (!entry) {
      if (!options.create || options.readOnly) throw fsError('ENOENT', `${file} does not exist`);
      entry = new Inode(this.#nextId++, Buffer.alloc(0));
      folder.change({ kind: 'set', name, entry });
    }
    return new SimulatedFile(this, path.posix.resolve(file), entry, options.readOnly ?? false);
  }

  exists(file: string): boolean {
    this.assertPowered();
    const { folder, name } = this.#locate(file);
    return folder?.current.has(name) ?? false;
  }

  list(folder: string): string[] {
    this.assertPowered();
    const found = this.#folderAt(this.#parts(folder));
    return found ? [...found.current.keys()].sort() : [];
  }

  /** Creates missing folders, then syncs the parent of each one created (as NodeStorage does). */
  async makeFolder(folder: string): Promise<void> {
    this.assertPowered();
    let at = this.#root;
    let parentPath = '/';
    const parentsToSync: string[] = [];
    for (const part of this.#parts(folder)) {
      let entry = at.current.get(part);
      if (entry instanceof Inode) throw fsError('ENOTDIR', `${part} in ${folder} is a file`);
      if (!entry) {
        entry = new Folder(this.#nextId++);
        if (this.#folderCreation === 'durable') {
          at.current.set(part, entry);
          at.durable.set(part, entry);
        } else {
          at.change({ kind: 'set', name: part, entry });
          parentsToSync.push(parentPath);
        }
      }
      at = entry;
      parentPath = parentPath === '/' ? `/${part}` : `${parentPath}/${part}`;
    }
    for (const parent of parentsToSync) await this.syncDirectory(parent);
  }

  rename(from: string, to: string): void {
    this.assertPowered();
    const source = this.#locate(from);
    const target = this.#locate(to);
    const entry = source.folder?.current.get(source.name);
    if (!source.folder || !entry) throw fsError('ENOENT', `${from} does not exist`);
    if (!target.folder) throw fsError('ENOENT', `no folder holds ${to}`);
    if (source.folder === target.folder) {
      source.folder.change({ kind: 'rename', from: source.name, to: target.name, entry });
    } else {
      // Across folders the two halves become durable separately, as two syncDirectory calls do.
      target.folder.change({ kind: 'set', name: target.name, entry });
      source.folder.change({ kind: 'delete', name: source.name });
    }
  }

  remove(file: string): void {
    this.assertPowered();
    const { folder, name } = this.#locate(file);
    const entry = folder?.current.get(name);
    if (!folder || !entry) return;
    if (entry instanceof Folder) throw fsError('EISDIR', `${file} is a folder; remove() removes files`);
    folder.change({ kind: 'delete', name });
  }

  syncDirectory(folder: string): Promise<void> {
    this.assertPowered();
    const found = this.#folderAt(this.#parts(folder));
    if (!found) return Promise.reject(fsError('ENOENT', `folder ${folder} does not exist`));
    const asOf = found.changeCount;
    return this.later(() => found.completeSync(asOf));
  }

  readWhole(file: string): Buffer | undefined {
    this.assertPowered();
    const inode = this.#inodeAt(file);
    return inode ? Buffer.from(inode.bytes.subarray(0, inode.length)) : undefined;
  }


  // ── Power loss ──────────────────────────────────────────────────────────────────────────────

  /**
   * Cuts the power: this storage is dead from now on, and the returned one is the disk as it
   * comes back, with unsynced changes kept or lost as the model at the top of this file says.
   */
  crash(random: Random): SimulatedStorage {
    this.assertPowered();
    this.#powered = false;
    const disk = new SimulatedStorage(random.fork(), { syncTurnsMax: this.#syncTurnsMax, folderCreation: this.#folderCreation });
    // How likely a pending sector reached the disk: sometimes none, sometimes all, mostly a mix.
    const sectorWritten = random.pick([0, 1, 0.5, random.float()]);
    const report: PowerLossReport = { pendingSectors: 0, sectorsWritten: 0, foldersWithLostChanges: 0 };
    const inodes = new Map<Inode, Inode>();
    const folders = new Map<Folder, Folder>();
    const copyInode = (inode: Inode): Inode => {
      let copy = inodes.get(inode);
      if (!copy) {
        copy = new Inode(disk.#nextId++, inode.afterPowerLoss(random, sectorWritten, report));
        inodes.set(inode, copy);
      }
      return copy;
    };
    const copyFolder = (folder: Folder): Folder => {
      const known = folders.get(folder);
      if (known) return known;
      const pending = folder.changes.length;
      let kept = pending;
      if (pending > 0) {
        const choice = random.int(3);
        kept = choice === 0 ? 0 : choice === 1 ? pending : random.int(pending + 1);
        if (kept < pending) report.foldersWithLostChanges++;
      }
      const view = folder.afterPowerLoss(kept);
      const entries = new Map<string, Entry>();
      const copy = new Folder(disk.#nextId++, entries);
      folders.set(folder, copy);
      for (const name of [...view.keys()].sort()) {
        const entry = view.get(name) as Entry;
        const copied = entry instanceof Folder ? copyFolder(entry) : copyInode(entry);
        copy.current.set(name, copied);
        copy.durable.set(name, copied);
      }
      return copy;
    };
    disk.#root = copyFolder(this.#root);
    disk.lastPowerLoss = report;
    return disk;
  }

  // ── Inspection and faults (for tests) ───────────────────────────────────────────────────────

  /** Every file, by absolute path, sorted. */
  files(): string[] {
    this.assertPowered();
    const out: string[] = [];
    const walk = (folder: Folder, at: string) => {
      for (const name of [...folder.current.keys()].sort()) {
        const entry = folder.current.get(name) as Entry;
        const full = at === '/' ? `/${name}` : `${at}/${name}`;
        if (entry instanceof Folder) walk(entry, full);
        else out.push(full);
      }
    };
    walk(this.#root, '/');
    return out;
  }

  /** The length of `file` as of its last completed sync. */
  syncedLength(file: string): number {
    this.assertPowered();
    const inode = this.#inodeAt(file);
    if (!inode) throw fsError('ENOENT', `${file} does not exist`);
    return inode.durable.length;
  }

  /** Files that may be damaged on purpose: checksummed ones with synced bytes. */
  faultTargets(): string[] {
    return this.files().filter((file) => checksummedFilePattern.test(file) && this.syncedLength(file) > 0);
  }

  #target(random: Random, file: string | undefined): string | undefined {
    if (file !== undefined) {
      if (!checksummedFilePattern.test(file)) throw new RangeError(`${file} has no checksum; faults go only into .log, .index and .producers files`);
      return file;
    }
    const targets = this.faultTargets();
    return targets.length > 0 ? random.pick(targets) : undefined;
  }

  /** Flips one random bit inside the synced region of `file` (or of a random checksummed file). */
  flipBit(random: Random, file?: string): Fault | undefined {
    const target = this.#target(random, file);
    if (target === undefined) return undefined;
    const synced = this.syncedLength(target);
    if (synced === 0) return undefined;
    return this.flipBitAt(target, random.int(synced), random.int(8));
  }

  /** Flips bit `bit` of byte `position`, which must lie inside the synced region of `file`. */
  flipBitAt(file: string, position: number, bit: number): Fault {
    this.assertPowered();
    const inode = this.#inodeAt(file);
    if (!inode) throw fsError('ENOENT', `${file} does not exist`);
    const syncedLength = inode.durable.length;
    if (!(position >= 0 && position < syncedLength)) throw new RangeError(`byte ${position} is outside the synced region of ${file} (${syncedLength} bytes)`);
    const mask = 1 << bit;
    // Damage on the medium: the durable copy changes, and so does what a process reads, unless a
    // newer unsynced write of that sector sits in the page cache.
    inode.durable[position] ^= mask;
    if (position < inode.length && !inode.pending.has(Math.floor(position / sectorBytes))) inode.bytes[position] ^= mask;
    return { kind: 'flip-bit', file, position, bit, syncedLength, description: `flipped bit ${bit} of byte ${position} of ${file} (${syncedLength} bytes synced)` };
  }

  /** Cuts `file` (or a random checksummed file) to a random length inside its synced region. */
  truncateSynced(random: Random, file?: string): Fault | undefined {
    const target = this.#target(random, file);
    if (target === undefined) return undefined;
    const synced = this.syncedLength(target);
    if (synced === 0) return undefined;
    return this.truncateAt(target, random.int(synced));
  }

  /** Cuts `file` to `length` bytes, fewer than it has synced: synced bytes are lost. */
  truncateAt(file: string, length: number): Fault {
    this.assertPowered();
    const inode = this.#inodeAt(file);
    if (!inode) throw fsError('ENOENT', `${file} does not exist`);
    const syncedLength = inode.durable.length;
    if (!(length >= 0 && length < syncedLength)) throw new RangeError(`length ${length} is not inside the synced region of ${file} (${syncedLength} bytes)`);
    inode.durable = Buffer.from(inode.durable.subarray(0, length));
    if (inode.length > length) {
      inode.bytes.fill(0, length, inode.length);
      inode.length = length;
    }
    for (const sector of [...inode.pending.keys()]) if (sector * sectorBytes >= length) inode.pending.delete(sector);
    return { kind: 'truncate', file, position: length, syncedLength, description: `cut ${file} from ${syncedLength} synced bytes to ${length}` };
  }
}
