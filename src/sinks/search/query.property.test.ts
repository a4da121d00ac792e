/**
 * Fuzzing the query language against a real index: any string as a query is either answered or
 * refused with a DefiniteError (code search_query) — never an SQLite error — and the FTS5
 * expression it compiles to holds user text only inside quoted strings.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import fc from 'fast-check';
import { DefiniteError } from '../../core/index.ts';
import type { SqlType } from '../../sql/index.ts';
import { compileQuery, parseQuery } from './query.ts';
import { SearchIndex } from './search-index.ts';

const text: SqlType = { kind: 'text', modifiers: [] };
const bigint: SqlType = { kind: 'bigint', modifiers: [] };

function openIndex(): SearchIndex {
  const index = SearchIndex.open(':memory:', { name: 'docs', columns: [{ name: 'id', type: bigint }, { name: 'title', type: text }, { name: 'body', type: text }], key: [0] }, { fields: 'title^2, body' });
  const rows = [
    [1, 'Red shoes', 'Leather shoes: title f0 near and or not'],
    [2, 'Café OR bar', 'NEAR(a b) ^start "quoted" {f0 f1}: x * - + ( )'],
    [3, 'shoelace', 'as sh she shoe shoes'],
    [4, 'and AND', 'OR NOT x\u0002y\u0003z é e'],
  ];
  index.write({ step: 1, frontier: 'f', rows, weights: rows.map(() => 1) });
  return index;
}

/** Pieces that mean something to FTS5 or to the query language, and a few words. */
const piece = fc.constantFrom(
  '"', '""', '*', '-', '--', '(', ')', ':', '^', '+', '{', '}', ',', "'", '\\', '.', '\0', ' ', '  ', '\t', '\n',
  'OR', 'AND', 'NOT', 'NEAR', 'NEAR/2', 'or', 'title', 'body', 'f0', 'f1', 'rank', 'rowid', 'docs_fts', 'shoes', 'sh', 's', 'a', 'é', 'CAFÉ', '\u0002', '\u0003', '\uFFFD', '\uD800', '😀', 'ß',
);
const queryText = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 30 }),
  fc.array(piece, { maxLength: 16 }).map((pieces) => pieces.join('')),
  fc.array(piece, { maxLength: 16 }).map((pieces) => pieces.join(' ')),
);

/** The compiled expression with its quoted strings removed: only operators may remain. */
function outsideStrings(expression: string): string {
  return expression.replace(/"(?:[^"]|"")*"/g, '');
}

test('any query is answered or refused with a DefiniteError, never an SQLite error', () => {
  const index = openIndex();
  try {
    fc.assert(
      fc.property(queryText, fc.boolean(), fc.boolean(), (q, asYouType, highlight) => {
        try {
          const result = index.search(q, { asYouType, highlight, total: true, limit: 5 });
          assert.ok(result.total! >= result.hits.length);
        } catch (error) {
          assert.ok(error instanceof DefiniteError && error.code === 'search_query', `${JSON.stringify(q)}: ${String(error)}`);
        }
      }),
      { numRuns: 5000 },
    );
  } finally {
    index.close();
  }
});

test('compiled expressions hold user text only inside quoted strings', () => {
  fc.assert(
    fc.property(queryText, fc.boolean(), (q, asYouType) => {
      let expression: string | undefined;
      try {
        expression = compileQuery(parseQuery(q, { asYouType }));
      } catch (error) {
        assert.ok(error instanceof DefiniteError);
        return;
      }
      if (expression === undefined) return;
      assert.match(outsideStrings(expression), /^(?:[\s()*]|AND|OR|NOT)*$/, expression);
      assert.ok(!expression.includes('\0'));
    }),
    { numRuns: 5000 },
  );
});
