/**
 * One oracle case: a schema, views over it, and batches of changes, as fast-check values whose
 * shrinking shrinks the SQL (the SQL is read from tapes, see sql-grammar.ts).
 *
 * Invariants:
 * - Views are created before any change unless `createdAfter` says after which batch (so most
 *   are maintained incrementally from the start, some start over existing data). A view may read
 *   the views listed before it that exist by then.
 * - `script` lists every statement in the order both engines run it, with a check (compare every
 *   view created so far) after the views are created and after each batch.
 */
import fc from 'fast-check';
import { Choices, DEFAULT_LIMITS, KeyAllocator, QueryGenerator, changeStatement, createTableSql, schemaOf, type Kind, type QueryLimits, type Relation, type Schema } from './sql-grammar.ts';

export interface OracleView {
  readonly name: string;
  readonly sql: string;
  /** 0: before any change; n: after batch n. */
  readonly createdAfter: number;
}

export interface OracleBatch {
  readonly statements: readonly string[];
  /** Sent to Sluice in one `execute` call rather than one call per statement. */
  readonly oneCall: boolean;
}

export interface OracleCase {
  readonly schema: Schema;
  readonly views: readonly OracleView[];
  readonly batches: readonly OracleBatch[];
}

export type ScriptStep =
  | { readonly kind: 'define'; readonly sql: string }
  | { readonly kind: 'view'; readonly view: OracleView }
  | { readonly kind: 'batch'; readonly batch: OracleBatch; readonly index: number }
  | { readonly kind: 'check'; readonly label: string; readonly views: readonly OracleView[] };

const tape = (maxLength: number) => fc.array(fc.noBias(fc.nat({ max: 0xffff })), { maxLength, size: 'max' });

/** How big a case may be. */
export interface CaseLimits extends QueryLimits {
  readonly views: number;
  readonly batches: number;
  readonly statements: number;
}

export const DEFAULT_CASE_LIMITS: CaseLimits = { ...DEFAULT_LIMITS, views: 3, batches: 4, statements: 12 };

/** Cases within `limits`; `oracleCase` is the default size. */
export function oracleCases(limits: CaseLimits = DEFAULT_CASE_LIMITS): fc.Arbitrary<OracleCase> {
  const { views: viewCount, batches: batchCount, statements: statementCount } = limits;
  return fc
    .record({
      tables: fc.array(fc.record({ kinds: fc.array(fc.constantFrom<Kind>('int', 'text'), { maxLength: 3 }), keyed: fc.boolean() }), { minLength: 1, maxLength: 3 }),
      views: fc.array(
        fc.record({
          tape: tape(150 * limits.queryDepth),
          createdAfter: fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: batchCount }) }),
        }),
        { minLength: 1, maxLength: viewCount },
      ),
      batches: fc.array(fc.record({ statements: fc.array(tape(100), { maxLength: statementCount }), oneCall: fc.boolean() }), { minLength: 1, maxLength: batchCount }),
    })
    .map(({ tables, views, batches }) => {
      const schema = schemaOf(tables);
      const keys = new KeyAllocator();
      // A view may read the views before it that exist when it is created.
      const created: (OracleView & Relation)[] = [];
      for (const [i, view] of views.entries()) {
        const createdAfter = Math.min(view.createdAfter, batches.length);
        const readable = created.filter((earlier) => earlier.createdAfter <= createdAfter);
        const query = new QueryGenerator(schema, new Choices(view.tape), readable, limits).view();
        created.push({ name: `v${i}`, sql: query.sql, createdAfter, columns: query.kinds.map((kind, j) => ({ name: `c${j}`, kind })) });
      }
      return {
        schema,
        views: created.map(({ name, sql, createdAfter }) => ({ name, sql, createdAfter })),
        batches: batches.map((batch) => ({
          statements: batch.statements.map((statement) => changeStatement(schema, new Choices(statement), keys)),
          oneCall: batch.oneCall,
        })),
      };
    });
}

export const oracleCase: fc.Arbitrary<OracleCase> = oracleCases();

export function script(oracle: OracleCase): ScriptStep[] {
  const steps: ScriptStep[] = oracle.schema.tables.map((table) => ({ kind: 'define', sql: createTableSql(table) }));
  const created: OracleView[] = [];
  const createViews = (after: number) => {
    for (const view of oracle.views.filter((v) => v.createdAfter === after)) {
      steps.push({ kind: 'view', view });
      created.push(view);
    }
  };
  createViews(0);
  steps.push({ kind: 'check', label: 'before any change', views: [...created] });
  oracle.batches.forEach((batch, i) => {
    steps.push({ kind: 'batch', batch, index: i + 1 });
    createViews(i + 1);
    steps.push({ kind: 'check', label: `after batch ${i + 1}`, views: [...created] });
  });
  return steps;
}

/** The steps up to `last` (all by default) as one SQL script, batches marked, to paste into any SQL shell. */
export function formatScript(steps: readonly ScriptStep[], last = steps.length - 1): string {
  const lines: string[] = [];
  for (const step of steps.slice(0, last + 1)) {
    if (step.kind === 'define') lines.push(`${step.sql};`);
    else if (step.kind === 'view') lines.push(`CREATE VIEW ${step.view.name} AS ${step.view.sql};`);
    else if (step.kind === 'batch') {
      lines.push(`-- batch ${step.index}${step.batch.oneCall ? ' (sent to Sluice in one execute call)' : ''}`);
      for (const statement of step.batch.statements) lines.push(`${statement};`);
    }
  }
  return lines.join('\n');
}
