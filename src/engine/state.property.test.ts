/**
 * Arrangements, row bags and sorted bags against plain models, with hashes forced into a tiny
 * space so that probing, collisions, backward-shift deletion, growth and shrinking all happen.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import fc from 'fast-check';
import { ByteReader, ByteWriter, compareValues, type Row } from '../core/index.ts';
import { Arrangement, OrderedBag, RowBag, type GroupCodec } from './state.ts';

const weightCodec: GroupCodec<number> = { save: (weight, writer) => writer.signed(weight), restore: (reader) => reader.signed() };

const operation = fc.record({ key: fc.integer({ min: 0, max: 60 }), weight: fc.integer({ min: -3, max: 3 }), action: fc.constantFrom('add', 'set', 'delete', 'create') });

test('an arrangement behaves like a map from keys to groups, whatever the hashes collide', () => {
  fc.assert(
    fc.property(fc.array(operation, { maxLength: 400 }), fc.integer({ min: 1, max: 7 }), (operations, hashSpace) => {
      const arrangement = new Arrangement<number>();
      const model = new Map<number, number>();
      const hashOf = (key: number) => Math.imul(key % hashSpace, 0x9e3779b1); // an int32, as row hashes are
      for (const { key, weight, action } of operations) {
        const row: Row = [key, 'payload'];
        const hash = hashOf(key);
        if (action === 'add') {
          const before = arrangement.addWeight(hash, row, [0], weight);
          assert.equal(before, model.get(key) ?? 0);
          const after = before + weight;
          if (after === 0) model.delete(key);
          else model.set(key, after);
        } else if (action === 'set') {
          if (!model.has(key)) continue;
          arrangement.set(hash, row, [0], weight || 1);
          model.set(key, weight || 1);
        } else if (action === 'delete') {
          arrangement.delete(hash, row, [0]);
          model.delete(key);
        } else {
          const group = arrangement.findOrCreate(hash, row, [0], (created) => {
            assert.deepEqual(created, [key], 'the key handed to create is the key values');
            return 1;
          });
          assert.equal(group, model.get(key) ?? 1);
          if (!model.has(key)) model.set(key, 1);
        }
        assert.equal(arrangement.size, model.size);
      }
      for (let key = 0; key <= 60; key++) assert.equal(arrangement.find(hashOf(key), [key], [0]), model.get(key), `key ${key}`);
      assert.deepEqual(new Map([...arrangement.entries()].map(([key, group]) => [key[0] as number, group])), model);
      const writer = new ByteWriter();
      arrangement.save(writer, weightCodec);
      const restored = new Arrangement<number>();
      restored.restore(new ByteReader(writer.finish()), weightCodec);
      assert.deepEqual(new Map([...restored.entries()].map(([key, group]) => [key[0] as number, group])), model);
    }),
    { numRuns: 300 },
  );
});

test('a row bag counts weights and present rows like a model, across its scan and index modes', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 40 }), fc.integer({ min: -2, max: 2 })), { maxLength: 300 }), fc.integer({ min: 1, max: 5 }), (changes, hashSpace) => {
      const bag = new RowBag();
      const model = new Map<number, number>();
      for (const [value, weight] of changes) {
        const before = bag.add([value], value % hashSpace, weight);
        assert.equal(before, model.get(value) ?? 0);
        const after = before + weight;
        if (after === 0) model.delete(value);
        else model.set(value, after);
        assert.equal(bag.length, model.size);
        assert.equal(bag.positive, [...model.values()].filter((w) => w > 0).length);
      }
      for (let value = 0; value <= 40; value++) assert.equal(bag.weightOf([value], value % hashSpace), model.get(value) ?? 0);
    }),
    { numRuns: 300 },
  );
});

test('a sorted bag keeps its items in order with their weights, and windows count multiplicity', () => {
  fc.assert(
    // Small value ranges exercise weights on one item; large ones with many changes split and drop chunks.
    fc.property(fc.oneof(fc.array(fc.tuple(fc.integer({ min: 0, max: 20 }), fc.integer({ min: -2, max: 3 })), { maxLength: 200 }), fc.array(fc.tuple(fc.integer({ min: 0, max: 3000 }), fc.integer({ min: -1, max: 2 })), { minLength: 600, maxLength: 3000 })), fc.nat(600), fc.nat(800), (changes, offset, limit) => {
      const bag = new OrderedBag<number>(compareValues);
      const model = new Map<number, number>();
      for (const [value, weight] of changes) {
        bag.add(value, weight);
        const after = (model.get(value) ?? 0) + weight;
        if (after === 0) model.delete(value);
        else model.set(value, after);
      }
      const sorted = [...model].sort((a, b) => a[0] - b[0]);
      const held: Array<[number, number]> = [];
      bag.forEach((value, weight) => void held.push([value, weight]));
      assert.deepEqual(held, sorted);
      assert.equal(bag.length, sorted.length);
      assert.equal(bag.first(), sorted.find(([, weight]) => weight > 0)?.[0]);
      assert.equal(bag.last(), sorted.findLast(([, weight]) => weight > 0)?.[0]);
      const present = sorted.flatMap(([value, weight]) => (weight > 0 ? new Array<number>(weight).fill(value) : []));
      assert.equal(bag.positiveTotal, present.length);
      const expected = present.slice(offset, offset + limit);
      const items: number[] = [];
      const counts: number[] = [];
      bag.windowInto(offset, limit, items, counts);
      assert.deepEqual(items.flatMap((item, i) => new Array<number>(counts[i]!).fill(item)), expected);
    }),
    { numRuns: 300 },
  );
});
