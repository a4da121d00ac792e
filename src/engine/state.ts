/**
 * Operator state: arrangements, the one state interface every stateful operator keeps.
 *
 * An `Arrangement<G>` indexes groups by a key (some columns of a row, or a whole row); a group is
 * what the operator needs per key: a `RowBag` (a multiset of rows — joins, semi-joins), an
 * `OrderedBag` (a sorted multiset — min/max, top-k, string_agg), a weight (distinct), or an
 * aggregate's accumulators. Every arrangement saves to and restores from a checkpoint the same way.
 *
 * Invariants:
 * - Keys are found by a 32-bit hash and confirmed by value equality (`valuesEqual`); a hash
 *   collision costs a comparison, never a wrong answer.
 * - A group that becomes empty is removed, so state is proportional to the live rows.
 * - Iteration order of a bag is not meaningful; operators produce Z-sets, and every consumer of
 *   order (top-k, string_agg, min/max) uses an `OrderedBag` with a total order.
 */

import { ByteReader, ByteWriter, columnsEqual, hashRow, rowsEqual, valuesEqual, type Row, type Value } from '../core/index.ts';

/** How an arrangement's groups are written to and read from a checkpoint. */
export interface GroupCodec<G> {
  save(group: G, writer: ByteWriter): void;
  /** Reads a group saved by `save`; `key` is its key, already read. */
  restore(reader: ByteReader, key?: Row): G;
}

const identityColumnsCache: number[][] = [];
/** The columns 0 … length − 1 (shared arrays: callers must not change them). */
export function identityColumns(length: number): number[] {
  return (identityColumnsCache[length] ??= Array.from({ length }, (_, i) => i));
}

/**
 * An open-addressing hash table (linear probing, backward-shift deletion) of key → group: a slot
 * is its key's 32-bit hash in a typed array plus references to the key and the group, so a group
 * costs about 30 bytes of index instead of a map entry and an entry object. A one-column key is
 * kept as the bare value (no array), which is what makes distinct and single-key groups small.
 */
export class Arrangement<G> {
  #capacity = 16;
  #mask = 15;
  #hashes = new Int32Array(16);
  /** A slot is empty when its key is undefined; a one-column key is stored as its bare value. */
  #keys: Array<Row | Value | undefined> = new Array<Row | Value | undefined>(16).fill(undefined);
  /** Whether keys have one column (decided by the first key; an arrangement's keys all have the same width). */
  #single = false;
  #groups: Array<G | undefined> = new Array<G | undefined>(16).fill(undefined);
  #size = 0;

  /** The number of keys with a group. */
  get size(): number {
    return this.#size;
  }

  /**
   * Probes for the key formed by `columns` of `row`: its slot when present, else −1 − the empty
   * slot where it would go.
   */
  #probe(hash: number, row: Row, columns: readonly number[]): number {
    const keys = this.#keys;
    const hashes = this.#hashes;
    const mask = this.#mask;
    for (let slot = hash & mask; ; slot = (slot + 1) & mask) {
      const key = keys[slot];
      if (key === undefined) return -1 - slot;
      if (hashes[slot] === hash && keyMatches(key, row, columns)) return slot;
    }
  }

  /** The group for the key formed by `columns` of `row`, if any. */
  find(hash: number, row: Row, columns: readonly number[]): G | undefined {
    const slot = this.#probe(hash, row, columns);
    return slot < 0 ? undefined : this.#groups[slot];
  }

  /** The group for a key given as a row of key values. */
  findKey(hash: number, key: Row): G | undefined {
    return this.find(hash, key, identityColumns(key.length));
  }

  /** The group for the key, created by `create` (given the key values) when missing. */
  findOrCreate(hash: number, row: Row, columns: readonly number[], create: (key: Row) => G): G {
    const slot = this.#probe(hash, row, columns);
    if (slot >= 0) return this.#groups[slot]!;
    const key = keyOf(row, columns);
    const group = create(key);
    this.#insertAt(-1 - slot, hash, this.#stored(key), group);
    return group;
  }

  /** Sets the group of a key (for groups that are plain values, like weights). */
  set(hash: number, row: Row, columns: readonly number[], group: G): void {
    const slot = this.#probe(hash, row, columns);
    if (slot >= 0) this.#groups[slot] = group;
    else this.#insertAt(-1 - slot, hash, this.#stored(keyOf(row, columns)), group);
  }

  /**
   * For arrangements whose groups are weights: adds `weight` to the key's weight, removing the key
   * when it reaches zero, and returns the previous weight. One probe.
   */
  addWeight(this: Arrangement<number>, hash: number, row: Row, columns: readonly number[], weight: number): number {
    const slot = this.#probe(hash, row, columns);
    if (slot >= 0) {
      const before = this.#groups[slot]!;
      const after = before + weight;
      if (after !== 0) this.#groups[slot] = after;
      else this.#removeAt(slot);
      return before;
    }
    if (weight !== 0) this.#insertAt(-1 - slot, hash, columns.length === 1 ? this.#stored1(row[columns[0]!]!) : this.#stored(keyOf(row, columns)), weight);
    return 0;
  }

  /** Removes the group of a key given as a row of key values. */
  deleteKey(hash: number, key: Row): void {
    this.delete(hash, key, identityColumns(key.length));
  }

  /** Removes a key's group. */
  delete(hash: number, row: Row, columns: readonly number[]): void {
    const slot = this.#probe(hash, row, columns);
    if (slot >= 0) this.#removeAt(slot);
  }

  *entries(): IterableIterator<[Row, G]> {
    for (let slot = 0; slot < this.#capacity; slot++) {
      const key = this.#keys[slot];
      if (key !== undefined) yield [this.#boxed(key), this.#groups[slot]!];
    }
  }

  /** What a key is stored as: its bare value when keys have one column. */
  #stored(key: Row): Row | Value {
    if (this.#size === 0) this.#single = key.length === 1;
    return this.#single ? key[0]! : key;
  }

  #stored1(value: Value): Row | Value {
    if (this.#size === 0) this.#single = true;
    return this.#single ? value : [value];
  }

  #boxed(key: Row | Value): Row {
    return this.#single ? [key as Value] : (key as Row);
  }

  #insert(hash: number, key: Row | Value, group: G): void {
    const keys = this.#keys;
    const mask = this.#mask;
    let slot = hash & mask;
    while (keys[slot] !== undefined) slot = (slot + 1) & mask;
    this.#insertAt(slot, hash, key, group);
  }

  /** Fills an empty slot found by probing, growing the table past 5/8 full. */
  #insertAt(slot: number, hash: number, key: Row | Value, group: G): void {
    this.#hashes[slot] = hash;
    this.#keys[slot] = key;
    this.#groups[slot] = group;
    this.#size++;
    if (this.#size * 8 > this.#capacity * 5) this.#resize(this.#capacity * 2);
  }

  /** Empties a slot, shifting later entries of its probe run back so no tombstone is needed. */
  #removeAt(slot: number): void {
    const keys = this.#keys;
    const groups = this.#groups;
    const hashes = this.#hashes;
    const mask = this.#mask;
    let hole = slot;
    for (let next = (hole + 1) & mask; keys[next] !== undefined; next = (next + 1) & mask) {
      const home = hashes[next]! & mask;
      // The entry at `next` may move into the hole unless its home lies cyclically in (hole, next].
      const stays = hole <= next ? hole < home && home <= next : hole < home || home <= next;
      if (stays) continue;
      hashes[hole] = hashes[next]!;
      keys[hole] = keys[next];
      groups[hole] = groups[next];
      hole = next;
    }
    keys[hole] = undefined;
    groups[hole] = undefined;
    this.#size--;
    if (this.#capacity > 16 && this.#size * 8 < this.#capacity) this.#resize(this.#capacity / 2);
  }

  #resize(capacity: number): void {
    const oldKeys = this.#keys;
    const oldGroups = this.#groups;
    const oldHashes = this.#hashes;
    this.#capacity = capacity;
    this.#mask = capacity - 1;
    this.#hashes = new Int32Array(capacity);
    this.#keys = new Array<Row | Value | undefined>(capacity).fill(undefined);
    this.#groups = new Array<G | undefined>(capacity).fill(undefined);
    const mask = this.#mask;
    for (let old = 0; old < oldKeys.length; old++) {
      const key = oldKeys[old];
      if (key === undefined) continue;
      const hash = oldHashes[old]!;
      let slot = hash & mask;
      while (this.#keys[slot] !== undefined) slot = (slot + 1) & mask;
      this.#hashes[slot] = hash;
      this.#keys[slot] = key;
      this.#groups[slot] = oldGroups[old];
    }
  }

  save(writer: ByteWriter, codec: GroupCodec<G>): void {
    writer.varint(this.#size);
    for (let slot = 0; slot < this.#capacity; slot++) {
      const key = this.#keys[slot];
      if (key === undefined) continue;
      writer.int32(this.#hashes[slot]!);
      writer.row(this.#boxed(key));
      codec.save(this.#groups[slot]!, writer);
    }
  }

  restore(reader: ByteReader, codec: GroupCodec<G>): void {
    this.#capacity = 16;
    this.#mask = 15;
    this.#hashes = new Int32Array(16);
    this.#keys = new Array<Row | Value | undefined>(16).fill(undefined);
    this.#groups = new Array<G | undefined>(16).fill(undefined);
    this.#size = 0;
    const count = reader.varint();
    for (let i = 0; i < count; i++) {
      const hash = reader.int32();
      const key = reader.row();
      this.#insert(hash, this.#stored(key), codec.restore(reader, key));
    }
  }
}

/** Whether a stored key (bare value for one column) equals `columns` of `row`. */
function keyMatches(key: Row | Value, row: Row, columns: readonly number[]): boolean {
  if (columns.length === 1) {
    const value = row[columns[0]!]!;
    return key === value || valuesEqual(key as Value, value);
  }
  return columnsEqual(key as Row, identityColumns(columns.length), row, columns);
}

/** The key values of a row: the row itself when the key is all of it, in order. */
function keyOf(row: Row, columns: readonly number[]): Row {
  return columns.length === row.length && isIdentity(columns) ? row : columns.map((column) => row[column]!);
}

function isIdentity(columns: readonly number[]): boolean {
  for (let i = 0; i < columns.length; i++) if (columns[i] !== i) return false;
  return true;
}

/** Past this many distinct rows a bag indexes its rows by hash instead of scanning them. */
const INDEX_THRESHOLD = 16;

/**
 * A multiset of rows with weights. Small bags scan; large ones keep a hash → position index.
 * `positive` counts the rows whose weight is above zero (what "has a match" means).
 */
export class RowBag {
  readonly rows: Row[] = [];
  readonly hashes: number[] = [];
  readonly weights: number[] = [];
  /** The number of distinct rows with a positive weight. */
  positive = 0;
  #index: Map<number, number> | undefined;
  /** Two rows of this bag share a hash: the index is off and the bag scans. */
  #collided = false;

  get length(): number {
    return this.rows.length;
  }

  /** Adds `weight` to a row's weight and returns the row's previous weight. */
  add(row: Row, hash: number, weight: number): number {
    const position = this.#positionOf(row, hash);
    if (position < 0) {
      if (weight === 0) return 0;
      const at = this.rows.length;
      this.rows.push(row);
      this.hashes.push(hash);
      this.weights.push(weight);
      if (weight > 0) this.positive++;
      if (this.#index) {
        if (this.#index.has(hash)) this.#collide();
        else this.#index.set(hash, at);
      } else if (!this.#collided && at + 1 > INDEX_THRESHOLD) this.#buildIndex();
      return 0;
    }
    const before = this.weights[position]!;
    const after = before + weight;
    if (before > 0 !== after > 0) this.positive += after > 0 ? 1 : -1;
    if (after === 0) this.#removeAt(position);
    else this.weights[position] = after;
    return before;
  }

  /** The weight of a row (0 when absent). */
  weightOf(row: Row, hash: number): number {
    const position = this.#positionOf(row, hash);
    return position < 0 ? 0 : this.weights[position]!;
  }

  #positionOf(row: Row, hash: number): number {
    if (this.#index) {
      const position = this.#index.get(hash);
      return position !== undefined && rowsEqual(this.rows[position]!, row) ? position : -1;
    }
    const { hashes, rows } = this;
    for (let i = 0; i < hashes.length; i++) if (hashes[i] === hash && rowsEqual(rows[i]!, row)) return i;
    return -1;
  }

  #removeAt(position: number): void {
    const last = this.rows.length - 1;
    const hash = this.hashes[position]!;
    if (this.#index) this.#index.delete(hash);
    if (position !== last) {
      this.rows[position] = this.rows[last]!;
      this.hashes[position] = this.hashes[last]!;
      this.weights[position] = this.weights[last]!;
      if (this.#index) this.#index.set(this.hashes[position]!, position);
    }
    this.rows.pop();
    this.hashes.pop();
    this.weights.pop();
  }

  #buildIndex(): void {
    const index = new Map<number, number>();
    for (let i = 0; i < this.hashes.length; i++) {
      if (index.has(this.hashes[i]!)) return this.#collide();
      index.set(this.hashes[i]!, i);
    }
    this.#index = index;
  }

  #collide(): void {
    this.#index = undefined;
    this.#collided = true;
  }

  static readonly codec: GroupCodec<RowBag> = {
    save(bag, writer) {
      writer.varint(bag.rows.length);
      for (let i = 0; i < bag.rows.length; i++) {
        writer.row(bag.rows[i]!);
        writer.int32(bag.hashes[i]!);
        writer.signed(bag.weights[i]!);
      }
    },
    restore(reader) {
      const bag = new RowBag();
      const count = reader.varint();
      for (let i = 0; i < count; i++) {
        const row = reader.row();
        const hash = reader.int32();
        bag.add(row, hash, reader.signed());
      }
      return bag;
    },
  };
}

/** One key's rows on each side of a join; a side with no rows is undefined. */
export interface JoinGroup {
  left: RowBag | undefined;
  right: RowBag | undefined;
}

const newJoinGroup = (): JoinGroup => ({ left: undefined, right: undefined });

const joinGroupCodec: GroupCodec<JoinGroup> = {
  save(group, writer) {
    writer.uint8((group.left ? 1 : 0) | (group.right ? 2 : 0));
    if (group.left) RowBag.codec.save(group.left, writer);
    if (group.right) RowBag.codec.save(group.right, writer);
  },
  restore(reader) {
    const sides = reader.uint8();
    return { left: sides & 1 ? RowBag.codec.restore(reader) : undefined, right: sides & 2 ? RowBag.codec.restore(reader) : undefined };
  },
};

/**
 * The two integrated sides of a join-like operator (join, semi/anti-join) in one arrangement keyed
 * by the join key, so a delta row finds the other side and its own with a single lookup.
 */
export class JoinState {
  readonly #groups = new Arrangement<JoinGroup>();

  find(hash: number, row: Row, columns: readonly number[]): JoinGroup | undefined {
    return this.#groups.find(hash, row, columns);
  }

  findKey(hash: number, key: Row): JoinGroup | undefined {
    return this.#groups.findKey(hash, key);
  }

  findOrCreate(hash: number, row: Row, columns: readonly number[]): JoinGroup {
    return this.#groups.findOrCreate(hash, row, columns, newJoinGroup);
  }

  /** Adds a row to the left side of its key's group; drops the group when both sides are empty. */
  addLeft(group: JoinGroup, hash: number, row: Row, columns: readonly number[], weight: number): void {
    const bag = group.left ?? (group.left = new RowBag());
    bag.add(row, hashRow(row), weight);
    if (bag.length > 0) return;
    group.left = undefined;
    if (!group.right) this.#groups.delete(hash, row, columns);
  }

  /** Adds a row to the right side of its key's group; drops the group when both sides are empty. */
  addRight(group: JoinGroup, hash: number, row: Row, columns: readonly number[], weight: number): void {
    const bag = group.right ?? (group.right = new RowBag());
    bag.add(row, hashRow(row), weight);
    if (bag.length > 0) return;
    group.right = undefined;
    if (!group.left) this.#groups.delete(hash, row, columns);
  }

  save(writer: ByteWriter): void {
    this.#groups.save(writer, joinGroupCodec);
  }

  restore(reader: ByteReader): void {
    this.#groups.restore(reader, joinGroupCodec);
  }

  /** The number of distinct rows held on both sides. */
  rows(): number {
    let rows = 0;
    for (const [, group] of this.#groups.entries()) rows += (group.left?.length ?? 0) + (group.right?.length ?? 0);
    return rows;
  }
}

/**
 * A sorted multiset: items in `compare` order with weights. `compare` must be a total order in
 * which only equal items compare 0 (tie-break on the whole row), so the order is a function of the
 * multiset alone and never of the order of insertion.
 */
export class OrderedBag<T> {
  /**
   * Sorted runs ("chunks") of at most CHUNK × 2 items, in order: an insert or delete moves at most
   * one chunk's items, so a group of n items costs O(log n + CHUNK) per change, not O(n) — a
   * top-k or min/max over a million rows loaded in one step stays linear.
   */
  #chunks: Array<{ items: T[]; weights: number[] }> = [];
  #length = 0;
  readonly compare: (a: T, b: T) => number;
  /** The sum of the positive weights: how many items the multiset holds. */
  positiveTotal = 0;

  constructor(compare: (a: T, b: T) => number) {
    this.compare = compare;
  }

  /** The number of distinct items held (with any weight). */
  get length(): number {
    return this.#length;
  }

  /** The chunk an item belongs in: the first whose last item is not below it (else the last). */
  #chunkFor(item: T): number {
    const chunks = this.#chunks;
    let low = 0;
    let high = chunks.length - 1;
    // Fast path: past the end (ascending inserts).
    if (high >= 0 && this.compare(chunks[high]!.items[chunks[high]!.items.length - 1]!, item) < 0) return high;
    while (low < high) {
      const middle = (low + high) >>> 1;
      const chunk = chunks[middle]!;
      if (this.compare(chunk.items[chunk.items.length - 1]!, item) < 0) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  /** Adds `weight` to an item's weight; returns the previous weight. */
  add(item: T, weight: number): number {
    if (this.#chunks.length === 0) {
      if (weight === 0) return 0;
      this.#chunks.push({ items: [item], weights: [weight] });
      this.#length = 1;
      this.positiveTotal += Math.max(weight, 0);
      return 0;
    }
    const index = this.#chunkFor(item);
    const chunk = this.#chunks[index]!;
    const { items, weights } = chunk;
    let low = 0;
    let high = items.length;
    if (this.compare(items[high - 1]!, item) < 0) low = high;
    while (low < high) {
      const middle = (low + high) >>> 1;
      const order = this.compare(items[middle]!, item);
      if (order < 0) low = middle + 1;
      else if (order > 0) high = middle;
      else {
        const before = weights[middle]!;
        const after = before + weight;
        this.positiveTotal += Math.max(after, 0) - Math.max(before, 0);
        if (after === 0) {
          items.splice(middle, 1);
          weights.splice(middle, 1);
          this.#length--;
          if (items.length === 0) this.#chunks.splice(index, 1);
        } else weights[middle] = after;
        return before;
      }
    }
    if (weight === 0) return 0;
    if (low === items.length) {
      items.push(item);
      weights.push(weight);
    } else {
      items.splice(low, 0, item);
      weights.splice(low, 0, weight);
    }
    this.#length++;
    this.positiveTotal += Math.max(weight, 0);
    if (items.length > CHUNK * 2) {
      this.#chunks.splice(index + 1, 0, { items: items.splice(CHUNK), weights: weights.splice(CHUNK) });
    }
    return 0;
  }

  /** Calls `visit` on each item in order with its weight (stop by returning false). */
  forEach(visit: (item: T, weight: number) => boolean | void): void {
    for (const { items, weights } of this.#chunks) {
      for (let i = 0; i < items.length; i++) if (visit(items[i]!, weights[i]!) === false) return;
    }
  }

  /** The first item with a positive weight. */
  first(): T | undefined {
    for (const { items, weights } of this.#chunks) for (let i = 0; i < items.length; i++) if (weights[i]! > 0) return items[i];
    return undefined;
  }

  /** The last item with a positive weight. */
  last(): T | undefined {
    const chunks = this.#chunks;
    for (let c = chunks.length - 1; c >= 0; c--) {
      const { items, weights } = chunks[c]!;
      for (let i = items.length - 1; i >= 0; i--) if (weights[i]! > 0) return items[i];
    }
    return undefined;
  }

  /**
   * The items at multiset positions [offset, offset + limit) in order, counting each item as many
   * times as its positive weight, into `items` and `counts` (cleared first) as runs.
   */
  windowInto(offset: number, limit: number, items: T[], counts: number[]): void {
    items.length = 0;
    counts.length = 0;
    let position = 0;
    const end = offset + limit;
    this.forEach((item, weight) => {
      if (position >= end) return false;
      if (weight <= 0) return;
      const from = Math.max(position, offset);
      const to = Math.min(position + weight, end);
      if (to > from) {
        items.push(item);
        counts.push(to - from);
      }
      position += weight;
    });
  }

  static codecFor<T>(compare: (a: T, b: T) => number, item: { save(item: T, writer: ByteWriter): void; restore(reader: ByteReader): T }): GroupCodec<OrderedBag<T>> {
    return {
      save(bag, writer) {
        writer.varint(bag.length);
        bag.forEach((value, weight) => {
          item.save(value, writer);
          writer.signed(weight);
        });
      },
      restore(reader) {
        const bag = new OrderedBag<T>(compare);
        const count = reader.varint();
        for (let i = 0; i < count; i++) {
          const value = item.restore(reader);
          bag.#append(value, reader.signed());
        }
        return bag;
      },
    };
  }

  /** Appends an item known to sort after every item held (restoring saved state). */
  #append(item: T, weight: number): void {
    let chunk = this.#chunks.at(-1);
    if (!chunk || chunk.items.length >= CHUNK) this.#chunks.push((chunk = { items: [], weights: [] }));
    chunk.items.push(item);
    chunk.weights.push(weight);
    this.#length++;
    this.positiveTotal += Math.max(weight, 0);
  }
}

/** Items per chunk of an OrderedBag after a split (chunks hold CHUNK to 2 × CHUNK items). */
const CHUNK = 256;

/** Item codecs for ordered bags of rows and of single values. */
export const rowItem = {
  save(item: Row, writer: ByteWriter): void {
    writer.row(item);
  },
  restore(reader: ByteReader): Row {
    return reader.row();
  },
};

export const valueItem = {
  save(item: Value, writer: ByteWriter): void {
    writer.value(item);
  },
  restore(reader: ByteReader): Value {
    return reader.value();
  },
};
