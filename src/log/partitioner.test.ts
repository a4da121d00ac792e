import { test } from 'node:test';
import assert from 'node:assert/strict';
import { murmur2, partitionForKey } from './partitioner.ts';

test('murmur2 matches Kafka’s reference values', () => {
  // Values from Kafka's UtilsTest.testMurmur2.
  const cases: Array<[string, number]> = [
    ['21', -973932308],
    ['foobar', -790332482],
    ['a-little-bit-long-string', -985981536],
    ['a-little-bit-longer-string', -1486304829],
    ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
  ];
  for (const [input, expected] of cases) assert.equal(murmur2(new TextEncoder().encode(input)), expected, input);
  assert.equal(murmur2(new Uint8Array([97, 98, 99])), murmur2(new TextEncoder().encode('abc')));
});

test('partitionForKey is within range and the same for strings and their bytes', () => {
  for (let i = 0; i < 1000; i++) {
    const key = `customer-${i}`;
    const p = partitionForKey(key, 7);
    assert.ok(p >= 0 && p < 7);
    assert.equal(p, partitionForKey(new TextEncoder().encode(key), 7));
  }
});
