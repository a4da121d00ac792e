/**
 * Random: a small seeded pseudo-random generator (xoshiro128**, seeded through splitmix32) for
 * the simulations. The same seed gives the same sequence on every machine and every run, which
 * is what lets a failing simulation be replayed from the seed it prints.
 *
 * Invariants:
 * - Only integer arithmetic on 32-bit values (Math.imul, shifts): no platform-dependent floats.
 * - `fork()` draws from this generator, so a forked stream is as reproducible as its parent.
 */

function splitmix32(state: number): { state: number; value: number } {
  const next = (state + 0x9e3779b9) | 0;
  let z = next;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return { state: next, value: (z ^ (z >>> 16)) >>> 0 };
}

function rotateLeft(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

export class Random {
  readonly seed: number;
  #s0: number;
  #s1: number;
  #s2: number;
  #s3: number;

  /** `seed` is any safe integer; its high and low 32 bits both count. */
  constructor(seed: number) {
    if (!Number.isSafeInteger(seed)) throw new RangeError(`a seed must be a safe integer, not ${seed}`);
    this.seed = seed;
    let state = (seed >>> 0) ^ Math.imul(Math.floor(seed / 0x100000000) | 0, 0x27d4eb2d);
    const words: number[] = [];
    for (let i = 0; i < 4; i++) {
      const step = splitmix32(state);
      state = step.state;
      words.push(step.value);
    }
    // xoshiro must not start from all zeros; splitmix32 makes that practically impossible.
    if ((words[0] | words[1] | words[2] | words[3]) === 0) words[0] = 1;
    [this.#s0, this.#s1, this.#s2, this.#s3] = words;
  }

  /** The next 32 random bits, as an unsigned integer. */
  next(): number {
    const result = Math.imul(rotateLeft(Math.imul(this.#s1, 5), 7), 9) >>> 0;
    const t = this.#s1 << 9;
    this.#s2 ^= this.#s0;
    this.#s3 ^= this.#s1;
    this.#s1 ^= this.#s2;
    this.#s0 ^= this.#s3;
    this.#s2 ^= t;
    this.#s3 = rotateLeft(this.#s3, 11);
    return result;
  }

  /** A number in [0, 1), with 32 bits of randomness. */
  float(): number {
    return this.next() / 0x100000000;
  }

  /** An integer in [0, n), for 1 ≤ n ≤ 2^32. */
  int(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > 0x100000000) throw new RangeError(`int(n) needs an integer n from 1 to 2^32, not ${n}`);
    return Math.floor(this.float() * n);
  }

  /** An integer in [min, max], both included. */
  between(min: number, max: number): number {
    return min + this.int(max - min + 1);
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.float() < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('pick() from an empty list');
    return items[this.int(items.length)];
  }

  bytes(n: number): Buffer {
    const buffer = Buffer.allocUnsafe(n);
    let i = 0;
    for (; i + 4 <= n; i += 4) buffer.writeUInt32LE(this.next(), i);
    if (i < n) {
      const last = this.next();
      for (let shift = 0; i < n; i++, shift += 8) buffer[i] = (last >>> shift) & 0xff;
    }
    return buffer;
  }

  /** An independent generator seeded from this one. */
  fork(): Random {
    return new Random(this.next() * 0x200000 + (this.next() >>> 11));
  }
}
