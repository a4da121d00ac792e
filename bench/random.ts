/** Seeded randomness shared by the benchmarks: the same seed gives the same data in every run. */

/** mulberry32: a small, fast, seeded PRNG. */
export function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The rank whose cumulative probability first reaches `u` (a binary search of a CDF). */
export function rankAt(cdf: Float64Array, u: number): number {
  let low = 0;
  let high = cdf.length - 1;
  while (low < high) {
    const middle = (low + high) >> 1;
    if (cdf[middle]! < u) low = middle + 1;
    else high = middle;
  }
  return low;
}
