/**
 * Frontiers and position tokens (DESIGN.md, "position / frontier").
 *
 * A frontier maps each input topic of the pipeline to the next offset not yet included (tables
 * have one partition, so a topic names it). A position token is its opaque, URL-safe encoding:
 * base64url of a JSON object, `{"table.orders":1200,…}`. A token from an append names only the
 * topic it wrote; a read's token names every topic.
 *
 * Frontiers of one pipeline form a chain (each step moves some offsets forward), so the runtime
 * orders them by the records they include: `recordsIn`.
 */

import { DefiniteError } from '../core/index.ts';

export type Frontier = Map<string, number>;

export function encodePosition(frontier: Frontier): string {
  const entries = [...frontier].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return Buffer.from(JSON.stringify(Object.fromEntries(entries))).toString('base64url');
}

export function decodePosition(token: string): Frontier {
  const invalid = () => new DefiniteError('position_invalid', `"${token.length > 40 ? token.slice(0, 40) + '…' : token}" is not a position token of this pipeline`, 'use a position returned by a read or an append');
  if (typeof token !== 'string' || token.length === 0 || token.length > 10_000 || !/^[A-Za-z0-9_-]+$/.test(token)) throw invalid();
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    throw invalid();
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw invalid();
  const frontier: Frontier = new Map();
  for (const [topic, offset] of Object.entries(parsed)) {
    if (!Number.isSafeInteger(offset) || (offset as number) < 0) throw invalid();
    frontier.set(topic, offset as number);
  }
  return frontier;
}

/** True when `frontier` includes everything `target` names (a topic it lacks counts as 0). */
export function reaches(frontier: Frontier, target: Frontier): boolean {
  for (const [topic, offset] of target) if ((frontier.get(topic) ?? 0) < offset) return false;
  return true;
}

/** How many records a frontier includes: strictly increasing along the pipeline's steps. */
export function recordsIn(frontier: Frontier): number {
  let total = 0;
  for (const offset of frontier.values()) total += offset;
  return total;
}
