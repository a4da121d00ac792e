/**
 * The search query language: what each form parses to, the FTS5 expression it compiles to, and
 * what is refused.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import { DefiniteError } from '../../core/index.ts';
import { compileQuery, parseQuery, tokenize, type ParseOptions } from './query.ts';

const fts = (q: string, options?: ParseOptions) => compileQuery(parseQuery(q, options));

function refused(q: string, pattern: RegExp): void {
  assert.throws(
    () => parseQuery(q),
    (error: unknown) => error instanceof DefiniteError && error.code === 'search_query' && pattern.test(error.message),
    `expected ${JSON.stringify(q)} to be refused with ${pattern}`,
  );
}

test('words are ANDed, each quoted', () => {
  assert.equal(fts('red shoes'), '"red" AND "shoes"');
  assert.equal(fts('  shoes  '), '"shoes"');
  assert.equal(fts('red AND shoes'), '"red" AND "shoes"');
});

test('phrases, prefixes and phrase prefixes', () => {
  assert.equal(fts('"red shoes"'), '"red shoes"');
  assert.equal(fts('sho*'), '"sho" *');
  assert.equal(fts('sho***'), '"sho" *');
  assert.equal(fts('"red sho"*'), '"red sho" *');
  assert.equal(fts('"red sho'), '"red sho"', 'an unterminated quote runs to the end');
});

test('OR binds tighter than the implicit AND, and chains', () => {
  assert.equal(fts('red boots OR shoes'), '"red" AND ("boots" OR "shoes")');
  assert.equal(fts('a OR b OR c'), '("a" OR "b" OR "c")');
  assert.equal(fts('a OR "b c" d'), '("a" OR "b c") AND "d"');
});

test('exclusions: -word, -"phrase", NOT word', () => {
  assert.equal(fts('shoes -leather'), '("shoes") NOT "leather"');
  assert.equal(fts('shoes -"faux leather" NOT red'), '(("shoes") NOT "faux leather") NOT "red"');
  assert.equal(fts('shoes --leather'), '("shoes") NOT "leather"');
  assert.equal(fts('shoes -sho*'), '("shoes") NOT "sho" *');
});

test('FTS5 syntax in user text is plain text', () => {
  assert.equal(fts('title:x'), '"title:x"');
  assert.deepEqual(parseQuery('title:x').groups[0]![0]!.tokens, ['title', 'x']);
  assert.equal(fts('NEAR(a b)'), '"NEAR(a" AND "b)"');
  assert.equal(fts('^start'), '"^start"');
  assert.equal(fts('{f0 f1}: x'), '"{f0" AND "f1}:" AND "x"');
  assert.equal(fts('a + b'), '"a" AND "b"', 'a lone + has no words and is dropped');
  assert.equal(fts('( a OR b )'), '("a" OR "b")');
  assert.equal(fts('a"b'), '"a" AND "b"');
  assert.equal(fts('x\0y'), '"x y"', 'NUL never reaches FTS5, which reads a C string');
  assert.equal(fts('"say ""hi"""'), '"say " AND "hi"', 'quotes delimit; doubled quotes are empty phrases, dropped');
  assert.equal(fts('or and not'), '"or" AND "and" AND "not"', 'only uppercase operators are operators');
  assert.equal(fts('"OR"'), '"OR"');
});

test('operators without operands, and pieces without words, are dropped', () => {
  assert.equal(fts('shoes OR'), '"shoes"');
  assert.equal(fts('OR shoes'), '"shoes"');
  assert.equal(fts('shoes NOT'), '"shoes"');
  assert.equal(fts('a OR OR b'), '("a" OR "b")');
  assert.equal(fts('a OR AND b'), '"a" AND "b"');
  assert.equal(fts('*'), undefined);
  assert.equal(fts(''), undefined);
  assert.equal(fts('"" - * ( ) :'), undefined);
  assert.equal(fts('-'), undefined);
});

test('refused: short prefixes, only exclusions, OR with an exclusion, too long', () => {
  refused('a*', /prefix "a\*" is too short/);
  refused('"red s"*', /too short/);
  refused('-shoes', /cannot only exclude/);
  refused('NOT shoes', /cannot only exclude/);
  refused('a OR -b', /OR cannot join an excluded term \("b"\)/);
  refused('-a OR b', /OR cannot join an excluded term \("a"\)/);
  refused('a OR NOT b', /OR cannot join/);
  refused('x'.repeat(1001), /1001 characters long/);
  refused(Array.from({ length: 33 }, (_, i) => `w${i}`).join(' '), /33 terms/);
  refused(Array.from({ length: 33 }, (_, i) => `w${i}`).join(' OR '), /33 terms/);
  assert.doesNotThrow(() => parseQuery(Array.from({ length: 32 }, (_, i) => `w${i}`).join(' ')));
});

test('as you type: the last positive word is a prefix while it is being typed', () => {
  const typing = { asYouType: true };
  assert.equal(fts('red sho', typing), '"red" AND "sho" *');
  assert.equal(fts('red sho ', typing), '"red" AND "sho"', 'a space ends the word');
  assert.equal(fts('red s', typing), '"red" AND "s"', 'one character is matched as a word');
  assert.equal(fts('"red sho"', typing), '"red sho"', 'a closing quote ends the phrase');
  assert.equal(fts('"red sho', typing), '"red sho" *');
  assert.equal(fts('red -sho', typing), '("red") NOT "sho"', 'exclusions stay whole words');
  assert.equal(fts('boots OR sho', typing), '("boots" OR "sho" *)');
  assert.equal(fts('red sho'), '"red" AND "sho"', 'off by default');
});

test('tokenize folds case and diacritics and splits on everything but letters and digits', () => {
  assert.deepEqual(tokenize('Café-au-LAIT, naïve résumé 42x'), ['cafe', 'au', 'lait', 'naive', 'resume', '42x']);
  assert.deepEqual(tokenize('Ünïcödé ÅNGSTRÖM Ñandú'), ['unicode', 'angstrom', 'nandu']);
  assert.deepEqual(tokenize('--- ... ***'), []);
});
