/**
 * Key → partition, the way Kafka's default partitioner does it: murmur2 of the key's bytes, made
 * positive, modulo the partition count. Stable across restarts, processes and implementations,
 * so a key's records always share one partition (and therefore one order).
 */

const textEncoder = new TextEncoder();

export function keyBytes(key: Uint8Array | string): Uint8Array {
  return typeof key === 'string' ? textEncoder.encode(key) : key;
}

/** Kafka's murmur2 (seed 0x9747b28c), returning a signed 32-bit integer. */
export function murmur2(data: Uint8Array): number {
  const length = data.length;
  const m = 0x5bd1e995;
  const r = 24;
  let h = 0x9747b28c ^ length;
  const length4 = length >>> 2;
  for (let i = 0; i < length4; i++) {
    const i4 = i << 2;
    let k = data[i4] | (data[i4 + 1] << 8) | (data[i4 + 2] << 16) | (data[i4 + 3] << 24);
    k = Math.imul(k, m);
    k ^= k >>> r;
    k = Math.imul(k, m);
    h = Math.imul(h, m);
    h ^= k;
  }
  const tail = length4 << 2;
  const rest = length & 3;
  if (rest === 3) h ^= data[tail + 2] << 16;
  if (rest >= 2) h ^= data[tail + 1] << 8;
  if (rest >= 1) {
    h ^= data[tail];
    h = Math.imul(h, m);
  }
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h | 0;
}

export function partitionForKey(key: Uint8Array | string, partitions: number): number {
  return (murmur2(keyBytes(key)) & 0x7fffffff) % partitions;
}
