/**
 * The incremental dataflow engine: Z-sets, circuits of operators run step by step, operator state
 * in arrangements, and checkpoints. See docs/ARCHITECTURE.md ("Engine").
 */
export { ZSet } from './zset.ts';
export { Circuit, CircuitBuilder, Stream, createOperator } from './circuit.ts';
export type { JoinOptions, TopKOptions, StepInputs } from './circuit.ts';
export type { AggregateSpec, CircuitDefinition, JoinKind, NodeDefinition, NodeSpec, SortKey } from './spec.ts';
export { compareBySortKeys, totalOrder } from './order.ts';
export { Arrangement, OrderedBag, RowBag } from './state.ts';
export type { GroupCodec } from './state.ts';
export type { Operator } from './operator.ts';
export { saveCheckpoint, loadCheckpoint, encodeCheckpoint, decodeCheckpoint, fingerprint } from './checkpoint.ts';
export type { CheckpointOptions } from './checkpoint.ts';
