/**
 * The naive reference for search matching: a parsed query evaluated directly over a document's
 * field texts, with the semantics query.ts documents. The property tests compare the index's
 * matches with it.
 *
 * Semantics: a phrase matches a document when, in one of its fields, the phrase's words occur
 * consecutively and in order (the last as a prefix when the phrase is one); a query matches
 * when every group has a matching phrase and no excluded phrase matches. Words are compared as
 * `tokenize` folds them.
 */

import { tokenize, type ParsedQuery, type Phrase } from './query.ts';

/** Whether a phrase occurs in a field's words. */
function phraseIn(phrase: Phrase, words: readonly string[]): boolean {
  const { tokens, prefix } = phrase;
  if (tokens.length === 0) return false;
  const lastIndex = tokens.length - 1;
  for (let start = 0; start + tokens.length <= words.length; start++) {
    let all = true;
    for (let k = 0; k < tokens.length && all; k++) {
      const word = words[start + k]!;
      all = k === lastIndex && prefix ? word.startsWith(tokens[k]!) : word === tokens[k];
    }
    if (all) return true;
  }
  return false;
}

/** Whether a query matches a document whose indexed fields hold these texts (null: empty). */
export function referenceMatches(query: ParsedQuery, fields: readonly (string | null)[]): boolean {
  if (query.groups.length === 0) return false;
  const words = fields.map((text) => (text === null ? [] : tokenize(text)));
  const matches = (phrase: Phrase) => words.some((field) => phraseIn(phrase, field));
  return query.groups.every((group) => group.some(matches)) && !query.excluded.some(matches);
}
