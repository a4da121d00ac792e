/**
 * Golden plan tests: every case in test/plans/*.plan is a SQL text whose optimized plan
 * (`db.explain`, what `sluice check` prints) must equal the expected text written under it.
 *
 *   node --test test/plans/                            run them
 *   SLUICE_UPDATE_PLANS=1 node --test test/plans/      rewrite every expected plan from the actual
 *                                                      output (then read the diff before committing)
 *
 * File format. A file is blocks separated by blank lines (a line of only whitespace is blank).
 *
 *   # Lines starting with `#` at the top of a block are comments, kept as they are by updates.
 *   # A block of comments alone is a free-standing comment (the file's header, say).
 *   setup
 *   CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint, amount numeric);
 *   CREATE VIEW paid AS SELECT * FROM orders WHERE amount > 0;
 *
 *   # what this case checks
 *   SELECT id FROM orders
 *   WHERE amount > 10
 *   ----
 *   Project id
 *     Filter (amount > '10'::numeric)
 *       Scan orders (id, customer_id, amount)
 *
 * - A block whose first line after its comments is exactly `setup` is SQL run (db.execute) on the
 *   file's database before the cases after it. Each file gets a fresh in-memory database, and its
 *   blocks run in file order.
 * - Any other block is a case: its input SQL is the lines up to the first line that is exactly
 *   `----`; the expected plan is every line after it, to the end of the block. A case without a
 *   `----` line has no expected plan yet: it fails, and an update writes one.
 * - Input SQL cannot hold a blank line or a line `----` (it would end the case or the input);
 *   the expected plan can hold anything, escaped: each line of the plan is written as it is,
 *   except a blank line or one starting with `\`, which gets a `\` in front. So no expected line
 *   is blank (a blank line always ends a case), and a plan line `----` or `#…` is just a line.
 *   (explain separates the plans of several statements with a blank line: written `\`.)
 * - When explain throws, the actual text is `error: MESSAGE`, so refused SQL can be a case too.
 * - A comment line starting `# KNOWN ISSUE:` marks a plan that is kept as it is today but is
 *   wrong or clearly suboptimal; the comment says what it should be. The test still compares
 *   it (its name ends with "(known issue)"), so fixing the optimizer shows up as a diff to bless.
 *
 * A mismatch fails with the case's place (file:line), its SQL and a line diff (`-` expected,
 * `+` actual). An update rewrites only the expected sections; everything else keeps its bytes.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { open } from '../../src/index.ts';

const update = process.env.SLUICE_UPDATE_PLANS === '1';
const directory = import.meta.dirname;

export interface PlanBlock {
  kind: 'comment' | 'setup' | 'case';
  /** 1-based line of the block's first line (its first comment, if any). */
  line: number;
  comments: string[];
  /** setup: the SQL after `setup`; case: the input SQL. */
  sql: string;
  /** 1-based line of the SQL's first line. */
  sqlLine: number;
  /** case only: the decoded expected plan, undefined when the case has no `----` yet. */
  expected?: string;
  /** case only: 0-based index of the first line after the input (the `----` line, or where it goes). */
  separatorIndex?: number;
  /** 0-based index one past the block's last line. */
  endIndex: number;
}

/** Reads a .plan file's text into blocks. Throws on an input that cannot be read unambiguously. */
export function parsePlanFile(text: string, file: string): PlanBlock[] {
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  const blank = (line: string) => line.trim() === '';
  const blocks: PlanBlock[] = [];
  let i = 0;
  while (i < lines.length) {
    if (blank(lines[i]!)) {
      i++;
      continue;
    }
    const start = i;
    let end = i;
    while (end < lines.length && !blank(lines[end]!)) end++;
    const comments: string[] = [];
    let j = start;
    while (j < end && lines[j]!.startsWith('#')) comments.push(lines[j++]!);
    if (j === end) {
      blocks.push({ kind: 'comment', line: start + 1, comments, sql: '', sqlLine: start + 1, endIndex: end });
    } else if (lines[j] === 'setup') {
      if (j + 1 === end) throw new Error(`${file}:${j + 1}: a setup block needs SQL after "setup"`);
      blocks.push({ kind: 'setup', line: start + 1, comments, sql: lines.slice(j + 1, end).join('\n'), sqlLine: j + 2, endIndex: end });
    } else {
      let separator = j;
      while (separator < end && lines[separator] !== '----') separator++;
      if (separator === j) throw new Error(`${file}:${j + 1}: a case needs its SQL before "----"`);
      const block: PlanBlock = { kind: 'case', line: start + 1, comments, sql: lines.slice(j, separator).join('\n'), sqlLine: j + 1, separatorIndex: separator, endIndex: end };
      if (separator < end) block.expected = lines.slice(separator + 1, end).map(decodeLine).join('\n');
      blocks.push(block);
    }
    i = end;
  }
  return blocks;
}

function encodeLine(line: string): string {
  return line.trim() === '' || line.startsWith('\\') ? `\\${line}` : line;
}

function decodeLine(line: string): string {
  return line.startsWith('\\') ? line.slice(1) : line;
}

/** The file's text with each case's expected section replaced by `actual` (by case index). */
export function rewritePlanFile(text: string, blocks: readonly PlanBlock[], actual: ReadonlyMap<PlanBlock, string>): string {
  const lines = text.split('\n');
  const trailingNewline = lines.at(-1) === '';
  if (trailingNewline) lines.pop();
  // Bottom to top, so earlier indices stay valid.
  for (const block of [...blocks].reverse()) {
    const plan = actual.get(block);
    if (block.kind !== 'case' || plan === undefined) continue;
    const encoded = ['----', ...(plan === '' ? [] : plan.split('\n').map(encodeLine))];
    lines.splice(block.separatorIndex!, block.endIndex - block.separatorIndex!, ...encoded);
  }
  return `${lines.join('\n')}\n`;
}

/** A line diff of two texts: ` ` common, `-` only in expected, `+` only in actual (LCS). */
export function lineDiff(expected: string, actual: string): string {
  const a = expected === '' ? [] : expected.split('\n');
  const b = actual === '' ? [] : actual.split('\n');
  const common: number[][] = Array.from({ length: a.length + 1 }, () => new Array<number>(b.length + 1).fill(0));
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) common[i]![j] = a[i] === b[j] ? common[i + 1]![j + 1]! + 1 : Math.max(common[i + 1]![j]!, common[i]![j + 1]!);
  }
  const out: string[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (i < a.length && j < b.length && a[i] === b[j]) {
      out.push(`  ${a[i++]}`);
      j++;
    } else if (i < a.length && (j === b.length || common[i + 1]![j]! >= common[i]![j + 1]!)) out.push(`- ${a[i++]}`);
    else out.push(`+ ${b[j++]}`);
  }
  return out.join('\n');
}

function firstLine(sql: string): string {
  const line = sql.split('\n')[0]!;
  return line.length > 70 ? `${line.slice(0, 69)}…` : line;
}

const files = fs.readdirSync(directory).filter((name) => name.endsWith('.plan')).sort();

for (const name of files) {
  const file = path.join(directory, name);
  const text = fs.readFileSync(file, 'utf8');
  const blocks = parsePlanFile(text, name);
  describe(name, () => {
    let db: Awaited<ReturnType<typeof open>>;
    const actual = new Map<PlanBlock, string>();
    before(async () => {
      db = await open();
    });
    after(async () => {
      await db.close();
      if (!update) return;
      const rewritten = rewritePlanFile(text, blocks, actual);
      if (rewritten !== text) {
        fs.writeFileSync(file, rewritten);
        process.stderr.write(`updated ${path.relative(process.cwd(), file)}\n`);
      }
    });
    for (const block of blocks) {
      if (block.kind === 'setup') {
        test(`${block.sqlLine}: setup`, async () => {
          await db.execute(block.sql, `${name}:${block.sqlLine}`);
        });
      } else if (block.kind === 'case') {
        const known = block.comments.some((c) => /^#\s*KNOWN ISSUE:/.test(c));
        test(`${block.sqlLine}: ${firstLine(block.sql)}${known ? ' (known issue)' : ''}`, async () => {
          let plan: string;
          try {
            plan = await db.explain(block.sql);
          } catch (error) {
            plan = `error: ${(error as Error).message}`;
          }
          actual.set(block, plan);
          if (update) return;
          if (block.expected === undefined) assert.fail(`${name}:${block.sqlLine}: no expected plan yet; run SLUICE_UPDATE_PLANS=1 node --test test/plans/ and read the result\nactual:\n${plan}`);
          if (plan !== block.expected) {
            assert.fail(`${name}:${block.sqlLine}: the plan differs (- expected, + actual)\n${block.sql}\n----\n${lineDiff(block.expected, plan)}\n(if the new plan is right: SLUICE_UPDATE_PLANS=1 node --test test/plans/)`);
          }
        });
      }
    }
  });
}

describe('the .plan format', () => {
  test('expected plans round-trip through the escapes, and only expected sections change', () => {
    const text = '# header\n\nsetup\nCREATE TABLE t (a int);\n\n# a case\nSELECT 1\n----\nold\n\nSELECT 2\n\nSELECT 3\n----\n';
    const blocks = parsePlanFile(text, 'x.plan');
    assert.deepEqual(blocks.map((b) => b.kind), ['comment', 'setup', 'case', 'case', 'case']);
    const tricky = 'Project a\n\n----\n\\x\n# not a comment\n  ';
    const actual = new Map(blocks.filter((b) => b.kind === 'case').map((b) => [b, tricky] as const));
    const rewritten = rewritePlanFile(text, blocks, actual);
    assert.ok(rewritten.startsWith('# header\n\nsetup\nCREATE TABLE t (a int);\n\n# a case\nSELECT 1\n----\nProject a\n\\\n----\n\\\\x\n# not a comment\n\\  \n\nSELECT 2\n----\n'));
    const again = parsePlanFile(rewritten, 'x.plan');
    assert.deepEqual(again.filter((b) => b.kind === 'case').map((b) => b.expected), [tricky, tricky, tricky]);
    assert.equal(rewritePlanFile(rewritten, again, new Map(again.filter((b) => b.kind === 'case').map((b) => [b, tricky] as const))), rewritten);
  });

  test('a mismatch is shown as a line diff', () => {
    assert.equal(lineDiff('Project a\n  Filter x\n    Scan t', 'Project a\n  Filter y\n    Scan t'), '  Project a\n-   Filter x\n+   Filter y\n      Scan t');
  });
});
