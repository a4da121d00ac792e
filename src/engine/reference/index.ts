/** The naive reference evaluator: the oracle the incremental engine is tested against. */
export { evaluate, evaluateRelational } from './evaluate.ts';
export type { ReferenceInputs, ReferenceStep } from './evaluate.ts';
