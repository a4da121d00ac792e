/**
 * The search query language: what a user types into `GET /v1/search/NAME?q=…`, parsed into a small
 * AST and compiled to an FTS5 MATCH expression in which every piece of user text is a quoted
 * string. User text never reaches FTS5's own syntax, so column filters (`title:x`), NEAR, `^`,
 * parentheses, `+`, stray quotes or a lone `*` are plain text, never an operator, a column
 * reference or an SQLite syntax error.
 *
 * The language (whitespace separates items; every item must match — AND):
 *
 *   shoes red          both words, anywhere in the indexed fields (each in any field)
 *   "red shoes"        a phrase: these words next to each other, in this order, in one field
 *   sho*               a prefix: words starting with "sho" (at least 2 characters before the *)
 *   "red sho"*         a phrase whose last word is a prefix
 *   boots OR shoes     either; OR binds tighter than the implicit AND: `red boots OR shoes`
 *                      means red AND (boots OR shoes). `a OR b OR c` chains.
 *   -leather           excludes documents with the word (also `NOT leather`, `-"faux leather"`)
 *   a AND b            AND between items is accepted and means what a space means
 *
 * Words are split the way the index splits text (letters and digits; everything else separates),
 * so `foo-bar`, `title:x` or `e-mail` are phrases of their words (`"foo bar"`), and case and
 * diacritics never matter (`CAFE` finds `café`). Only uppercase `OR`, `AND`, `NOT` are operators;
 * an operator without its operands (`shoes OR`, a trailing `NOT`) is dropped, so a query being
 * typed never fails; quote them (`"OR"`) to search for the words. A piece with no letters or
 * digits (`(`, `^`, `*`, `:`) is dropped. An unterminated quote runs to the end of the query.
 *
 * Refused with a DefiniteError (code `search_query`), never silently reinterpreted:
 * - a prefix shorter than 2 characters (`a*`: it would scan most of the index),
 * - a query that only excludes (`-shoes`: FTS5 needs something to match),
 * - `OR` next to an excluded item (`a OR -b`),
 * - more than 1,000 characters or more than 32 terms (words and phrases, OR alternatives included).
 * An empty query (or one with nothing searchable left) matches nothing and is not an error.
 *
 * Automatic prefix on the last word (search as you type) is off by default: a complete word then
 * means that word (`shoe` does not find `shoelace`), and explicit `*` is the way to ask for a
 * prefix. With `{ asYouType: true }` the last positive word also matches as a prefix when the
 * query does not end in a space or a closing quote and the word has at least 2 characters.
 *
 * Invariants:
 * - `compileQuery` output contains user text only inside `"…"` strings (quotes doubled, NUL
 *   replaced by a space: FTS5 reads its expression as a C string), joined by the operators
 *   AND, OR, NOT, `*` and parentheses that this module writes.
 * - `tokenize` approximates FTS5's unicode61 tokenizer with remove_diacritics 2 (token
 *   characters are Unicode letters, digits and private-use characters; case and diacritics are
 *   folded). It decides only which pieces are dropped and how long a prefix is, and is what the
 *   naive reference (reference.ts) matches with; FTS5 tokenizes the quoted text itself.
 */

import { DefiniteError } from '../../core/index.ts';

/** A phrase of one or more words (one word is a one-word phrase). */
export interface Phrase {
  /** The user's text for the phrase, without quotes or the trailing `*`. */
  text: string;
  /** Its words as the index sees them (folded), by `tokenize`. */
  tokens: readonly string[];
  /** The last word matches as a prefix. */
  prefix: boolean;
}

/**
 * A parsed query: every group must match (a group matches when any of its phrases does), and no
 * excluded phrase may match. No groups means the query matches nothing.
 */
export interface ParsedQuery {
  groups: readonly (readonly Phrase[])[];
  excluded: readonly Phrase[];
}

export interface ParseOptions {
  /** Match the last positive word as a prefix while the user is still typing it. */
  asYouType?: boolean;
}

export const MAX_QUERY_LENGTH = 1000;
export const MAX_QUERY_ITEMS = 32;
export const MIN_PREFIX_LENGTH = 2;

const TOKEN_RUN = /[\p{L}\p{N}\p{Co}]+/gu;
const MARKS = /\p{M}/gu;

/** The words of a text as the index sees them: runs of letters and digits, case and diacritics folded. */
export function tokenize(text: string): string[] {
  const tokens: string[] = [];
  for (const match of text.matchAll(TOKEN_RUN)) tokens.push(foldToken(match[0]));
  return tokens;
}

function foldToken(token: string): string {
  // ASCII letters and digits need no folding beyond case: the common case, kept cheap.
  if (/^[\x00-\x7f]*$/.test(token)) return token.toLowerCase();
  return token.normalize('NFD').replace(MARKS, '').toLowerCase();
}

/** A lexed piece of the query before operators are resolved. */
interface Piece {
  kind: 'word' | 'phrase';
  text: string;
  /** Written with a leading `-` (words) or a `-` right before the opening quote (phrases). */
  negated: boolean;
  /** Written with a trailing `*`. */
  star: boolean;
  /** The piece ends the query text (no space or closing quote after it). */
  last: boolean;
}

function refuse(message: string, hint?: string): DefiniteError {
  return new DefiniteError('search_query', message, hint);
}

const SPACE = /\s/u;

function lex(text: string): Piece[] {
  const pieces: Piece[] = [];
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text[i]!;
    if (SPACE.test(c)) {
      i++;
      continue;
    }
    if (c === '"') {
      const close = text.indexOf('"', i + 1);
      const end = close < 0 ? n : close;
      const inner = text.slice(i + 1, end);
      i = close < 0 ? n : close + 1;
      let star = false;
      while (i < n && text[i] === '*') {
        star = true;
        i++;
      }
      pieces.push({ kind: 'phrase', text: inner, negated: false, star, last: close < 0 });
      continue;
    }
    let end = i;
    while (end < n && text[end] !== '"' && !SPACE.test(text[end]!)) end++;
    const raw = text.slice(i, end);
    i = end;
    // A word of dashes right before a quote negates the phrase: -"faux leather".
    if (/^-+$/.test(raw) && text[end] === '"') {
      const close = text.indexOf('"', end + 1);
      const stop = close < 0 ? n : close;
      const inner = text.slice(end + 1, stop);
      i = close < 0 ? n : close + 1;
      let star = false;
      while (i < n && text[i] === '*') {
        star = true;
        i++;
      }
      pieces.push({ kind: 'phrase', text: inner, negated: true, star, last: close < 0 });
      continue;
    }
    let body = raw;
    let negated = false;
    if (body.startsWith('-')) {
      negated = true;
      body = body.replace(/^-+/, '');
    }
    let star = false;
    if (body.endsWith('*')) {
      star = true;
      body = body.replace(/\*+$/, '');
    }
    pieces.push({ kind: 'word', text: body, negated, star, last: i >= n });
  }
  return pieces;
}

function isOperator(piece: Piece, name: 'OR' | 'AND' | 'NOT'): boolean {
  return piece.kind === 'word' && !piece.negated && !piece.star && piece.text === name;
}

/** Parses user query text. Throws a DefiniteError (code `search_query`) for what it refuses. */
export function parseQuery(text: string, options: ParseOptions = {}): ParsedQuery {
  if (typeof text !== 'string') throw refuse('the search query must be text');
  if (text.length > MAX_QUERY_LENGTH) throw refuse(`the search query is ${text.length} characters long; the limit is ${MAX_QUERY_LENGTH}`, 'search for fewer, more specific words');
  // Pieces with no letters or digits are dropped before operators are resolved: `a OR ( b` is `a OR b`.
  const pieces = lex(text).filter((piece) => isOperator(piece, 'OR') || isOperator(piece, 'AND') || isOperator(piece, 'NOT') || tokenize(piece.text).length > 0);

  // Resolve operators into items: [negated, phrases joined by OR].
  const items: { negated: boolean; phrases: Piece[] }[] = [];
  let pendingNot = false;
  let pendingOr = false;
  for (let k = 0; k < pieces.length; k++) {
    const piece = pieces[k]!;
    if (isOperator(piece, 'AND')) {
      pendingOr = false;
      continue;
    }
    if (isOperator(piece, 'OR')) {
      // OR joins the previous item and the next one; without both it is dropped.
      if (items.length > 0 && !pendingNot) pendingOr = true;
      continue;
    }
    if (isOperator(piece, 'NOT')) {
      pendingNot = true;
      continue;
    }
    const negated = piece.negated || pendingNot;
    pendingNot = false;
    if (pendingOr) {
      pendingOr = false;
      const previous = items[items.length - 1]!;
      if (negated || previous.negated) {
        const excluded = negated ? piece : previous.phrases[0]!;
        throw refuse(`OR cannot join an excluded term ("${excluded.text}")`, 'write the alternatives joined by OR (a OR b) and exclude separately (-c)');
      }
      previous.phrases.push(piece);
      continue;
    }
    items.push({ negated, phrases: [piece] });
  }
  const terms = items.reduce((sum, item) => sum + item.phrases.length, 0);
  if (terms > MAX_QUERY_ITEMS) throw refuse(`the search query has ${terms} terms; the limit is ${MAX_QUERY_ITEMS}`, 'search for fewer, more specific words');

  const phraseOf = (piece: Piece, prefix: boolean): Phrase => {
    const tokens = tokenize(piece.text);
    if (prefix && [...tokens[tokens.length - 1]!].length < MIN_PREFIX_LENGTH) {
      if (piece.star) throw refuse(`the prefix "${piece.text}*" is too short: a prefix needs at least ${MIN_PREFIX_LENGTH} letters or digits before the *`, 'type another letter before the *');
      prefix = false; // as you type: a 1-character last word is matched as a word
    }
    return { text: piece.text, tokens, prefix };
  };
  const lastItem = items[items.length - 1];
  const groups: Phrase[][] = [];
  const excluded: Phrase[] = [];
  for (const item of items) {
    const phrases = item.phrases.map((piece) => {
      const typing = options.asYouType === true && !item.negated && item === lastItem && piece === item.phrases[item.phrases.length - 1] && piece.last;
      return phraseOf(piece, piece.star || typing);
    });
    if (item.negated) excluded.push(...phrases);
    else groups.push(phrases);
  }
  if (groups.length === 0 && excluded.length > 0) throw refuse('a search query cannot only exclude terms', 'add a word to search for, e.g. shoes -leather');
  return { groups, excluded };
}

/** A phrase as an FTS5 string: the user's text quoted, quotes doubled, NUL replaced. */
function ftsPhrase(phrase: Phrase): string {
  return `"${phrase.text.replaceAll('"', '""').replaceAll('\0', ' ')}"${phrase.prefix ? ' *' : ''}`;
}

/** The FTS5 MATCH expression of a parsed query, or undefined when it matches nothing. */
export function compileQuery(query: ParsedQuery): string | undefined {
  if (query.groups.length === 0) return undefined;
  const group = (phrases: readonly Phrase[]) => (phrases.length === 1 ? ftsPhrase(phrases[0]!) : `(${phrases.map(ftsPhrase).join(' OR ')})`);
  let expression = query.groups.map(group).join(' AND ');
  for (const phrase of query.excluded) expression = `(${expression}) NOT ${ftsPhrase(phrase)}`;
  return expression;
}
