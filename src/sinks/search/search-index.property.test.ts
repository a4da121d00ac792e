/**
 * The search index against the naive reference: random batches of inserts, deletes and keyed
 * updates (with multiplicities when the view has no key); after each batch, for random queries,
 * the documents the index returns (and their counts) equal those the parsed query matches when
 * evaluated directly over the view's current rows (reference.ts).
 *
 * The texts use words that FTS5's unicode61 tokenizer and query.ts's `tokenize` split and fold
 * identically (ASCII, accented Latin letters, digits, punctuation), so the comparison is exact.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import fc from 'fast-check';
import { DefiniteError, type Row } from '../../core/index.ts';
import type { SqlType } from '../../sql/index.ts';
import type { SinkTarget } from '../sink.ts';
import { parseQuery, type ParsedQuery } from './query.ts';
import { referenceMatches } from './reference.ts';
import { SearchIndex } from './search-index.ts';

const type = (kind: SqlType['kind']): SqlType => ({ kind, modifiers: [] });
const columns = [
  { name: 'id', type: type('bigint') },
  { name: 'title', type: type('text') },
  { name: 'body', type: type('text') },
];

const words = ['red', 'shoes', 'shoe', 'shoelace', 'café', 'cafe', 'CAFÉ', 'Cafés', 'naïve', 'naive', 'boots', 'blue', 'bl', 'résumé', 'ab', 'abc', 'abcd', 'x1', '42', 'über', 'uber', 'Ñandú', 'or', 'and'];
const separators = [' ', ' ', ' ', ', ', '-', '. ', ' / ', "'", ': ', ' (', ') '];
const fieldText = fc.oneof(
  { weight: 1, arbitrary: fc.constant(null) },
  { weight: 6, arbitrary: fc.array(fc.tuple(fc.constantFrom(...words), fc.constantFrom(...separators)), { maxLength: 7 }).map((pairs) => pairs.map(([word, separator]) => word + separator).join('')) },
);

/** An operation, interpreted against the current rows (so it is always valid). */
interface Operation {
  kind: 'insert' | 'delete' | 'update';
  pick: number;
  title: string | null;
  body: string | null;
  weight: number;
}
const operation: fc.Arbitrary<Operation> = fc.record({
  kind: fc.constantFrom('insert', 'insert', 'delete', 'update'),
  pick: fc.nat(),
  title: fieldText,
  body: fieldText,
  weight: fc.integer({ min: 1, max: 3 }),
});

/** A query in the language, built from the same words (sometimes refused: only exclusions, short prefixes). */
const term = fc.oneof(
  fc.constantFrom(...words),
  fc.constantFrom(...words).map((word) => `${word.slice(0, 2 + (word.length % 3))}*`),
  fc.tuple(fc.constantFrom(...words), fc.constantFrom(...words)).map(([a, b]) => `"${a} ${b}"`),
  fc.tuple(fc.constantFrom(...words), fc.constantFrom(...words)).map(([a, b]) => `"${a} ${b.slice(0, 2)}"*`),
);
const item = fc.oneof(
  { weight: 4, arbitrary: term },
  { weight: 1, arbitrary: term.map((t) => `-${t}`) },
  { weight: 1, arbitrary: fc.tuple(term, term).map(([a, b]) => `${a} OR ${b}`) },
);
const query = fc.tuple(fc.array(item, { minLength: 1, maxLength: 3 }), fc.boolean()).map(([items, typing]) => ({ text: items.join(' '), asYouType: typing }));

interface Model {
  /** Document identity → row and count. */
  documents: Map<string, { row: Row; count: number }>;
}

const identity = (row: Row, keyed: boolean) => (keyed ? String(row[0]) : JSON.stringify(row));

/** Turns operations into one consolidated batch (one entry per distinct row) and applies it to the model. */
function makeBatch(model: Model, operations: Operation[], keyed: boolean, nextId: { value: number }): { rows: Row[]; weights: number[] } {
  const changes = new Map<string, { row: Row; weight: number }>();
  const change = (row: Row, weight: number) => {
    const id = JSON.stringify(row);
    const entry = changes.get(id) ?? { row, weight: 0 };
    entry.weight += weight;
    changes.set(id, entry);
  };
  const touched = new Set<string>();
  const present = () => [...model.documents.entries()].filter(([id]) => !touched.has(id));
  for (const op of operations) {
    if (op.kind === 'insert') {
      if (keyed) {
        const id = nextId.value++;
        touched.add(String(id));
        change([id, op.title, op.body], 1);
      } else {
        // Sometimes a copy of a present row (multiplicity), else a new row.
        const candidates = [...model.documents.values()];
        const row = op.pick % 3 === 0 && candidates.length > 0 ? candidates[op.pick % candidates.length]!.row : [op.pick % 5, op.title, op.body];
        change(row, op.weight);
      }
      continue;
    }
    const candidates = keyed ? present() : [...model.documents.entries()];
    if (candidates.length === 0) continue;
    const [id, document] = candidates[op.pick % candidates.length]!;
    if (keyed) touched.add(id);
    if (op.kind === 'delete' || !keyed) {
      // Never more copies than the view holds, counting this batch's earlier changes.
      const available = document.count + (changes.get(JSON.stringify(document.row))?.weight ?? 0);
      if (available > 0) change(document.row, -Math.min(op.weight, available));
    } else {
      change(document.row, -1);
      change([document.row[0]!, op.title, op.body], 1);
    }
  }
  const rows: Row[] = [];
  const weights: number[] = [];
  for (const { row, weight } of changes.values()) {
    if (weight === 0) continue;
    rows.push(row);
    weights.push(weight);
  }
  // Apply to the model: deletes first, as the sink does.
  for (const sign of [-1, 1]) {
    rows.forEach((row, i) => {
      if (Math.sign(weights[i]!) !== sign) return;
      const id = identity(row, keyed);
      const document = model.documents.get(id);
      const count = (document?.count ?? 0) + weights[i]!;
      assert.ok(count >= 0, 'the generator never deletes more than is there');
      if (count === 0) model.documents.delete(id);
      else model.documents.set(id, { row, count });
    });
  }
  return { rows, weights };
}

function check(index: SearchIndex, model: Model, keyed: boolean, q: { text: string; asYouType: boolean }): void {
  let parsed: ParsedQuery;
  try {
    parsed = parseQuery(q.text, { asYouType: q.asYouType });
  } catch (error) {
    assert.ok(error instanceof DefiniteError, String(error));
    assert.throws(() => index.search(q.text, { asYouType: q.asYouType }), DefiniteError);
    return;
  }
  const result = index.search(q.text, { asYouType: q.asYouType, limit: 1000, total: true });
  const got = result.hits.map((hit) => `${identity([hit.row.id as number, hit.row.title as string | null, hit.row.body as string | null], keyed)}×${hit.count}`).sort();
  const expected = [...model.documents.entries()]
    .filter(([, document]) => referenceMatches(parsed, [document.row[1] as string | null, document.row[2] as string | null]))
    .map(([, document]) => `${identity(document.row, keyed)}×${document.count}`)
    .sort();
  assert.deepEqual(got, expected, `query ${JSON.stringify(q.text)}${q.asYouType ? ' (as you type)' : ''}`);
  assert.equal(result.total, expected.length);
}

for (const keyed of [true, false]) {
  test(`matches equal the reference after every batch (${keyed ? 'keyed view' : 'view without a key, multiplicities'})`, () => {
    const target: SinkTarget = { name: 'docs', columns, ...(keyed ? { key: [0] } : {}) };
    fc.assert(
      fc.property(fc.array(fc.array(operation, { maxLength: 12 }), { minLength: 1, maxLength: 8 }), fc.array(query, { minLength: 1, maxLength: 8 }), (batches, queries) => {
        const index = SearchIndex.open(':memory:', target, { fields: 'title^2, body' });
        try {
          const model: Model = { documents: new Map() };
          const nextId = { value: 1 };
          batches.forEach((operations, i) => {
            const { rows, weights } = makeBatch(model, operations, keyed, nextId);
            index.write({ step: i + 1, frontier: `f${i + 1}`, rows, weights });
            for (const q of queries) check(index, model, keyed, q);
          });
          const stats = index.stats();
          assert.equal(stats.documents, model.documents.size);
          assert.equal(stats.ignoredDeletes, 0);
          index.verify();
        } finally {
          index.close();
        }
      }),
      { numRuns: 150 },
    );
  });
}
