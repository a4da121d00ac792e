/**
 * Circuits: a graph of operators built once, then run one step at a time over input deltas.
 *
 *   const builder = new CircuitBuilder();
 *   const orders = builder.input('orders', 3);            // id, customer_id, amount
 *   const totals = orders.aggregate([1], [{ kind: 'sum', column: 2 }]);
 *   builder.output('totals', totals);
 *   const circuit = builder.build();
 *   const { totals: delta } = circuit.step({ orders: ZSet.inserts([[1, 7, 950]]) });
 *
 * Invariants:
 * - Nodes are created in topological order (a node's inputs exist before it), so a step runs
 *   them in creation order, each exactly once.
 * - Deterministic: the integral of every output depends only on the integral of the inputs, never
 *   on how changes were cut into steps (delay and differentiate are the exception by definition:
 *   they are about steps).
 * - Step outputs are consolidated, with their deletes before their inserts; inputs may be
 *   unconsolidated and are never mutated.
 */

import { DefiniteError, type ByteReader, type ByteWriter, type Row } from '../core/index.ts';
import type { Operator } from './operator.ts';
import { AggregateOperator } from './operators/aggregate.ts';
import { DistinctOperator } from './operators/distinct.ts';
import { JoinOperator } from './operators/join.ts';
import { FilterOperator, FlatMapOperator, MapOperator, MinusOperator, NegateOperator, ProjectOperator, UnionOperator } from './operators/linear.ts';
import { SemiJoinOperator } from './operators/semi-join.ts';
import { DelayOperator, DifferentiateOperator, IntegrateOperator } from './operators/time.ts';
import { TopKOperator } from './operators/top-k.ts';
import type { AggregateSpec, CircuitDefinition, JoinKind, NodeDefinition, NodeSpec, SortKey } from './spec.ts';
import { ZSet } from './zset.ts';

export interface JoinOptions {
  leftKey: readonly number[];
  rightKey: readonly number[];
  /** A predicate over (left row, right row) that a match must also satisfy. */
  residual?: (left: Row, right: Row) => boolean;
}

export interface TopKOptions {
  groupBy?: readonly number[];
  orderBy: readonly SortKey[];
  limit: number;
  offset?: number;
}

/** A stream of deltas in a circuit under construction; its methods add operators. */
export class Stream {
  readonly builder: CircuitBuilder;
  readonly id: number;
  readonly arity: number;

  constructor(builder: CircuitBuilder, id: number, arity: number) {
    this.builder = builder;
    this.id = id;
    this.arity = arity;
  }

  map(map: (row: Row) => Row, arity: number): Stream {
    return this.builder.add({ kind: 'map', map }, [this], arity);
  }
  filter(predicate: (row: Row) => boolean): Stream {
    return this.builder.add({ kind: 'filter', predicate }, [this], this.arity);
  }
  flatMap(flatMap: (row: Row) => Iterable<Row>, arity: number): Stream {
    return this.builder.add({ kind: 'flatMap', flatMap }, [this], arity);
  }
  project(columns: readonly number[]): Stream {
    for (const column of columns) this.#checkColumn(column, 'project');
    return this.builder.add({ kind: 'project', columns: [...columns] }, [this], columns.length);
  }
  union(...others: Stream[]): Stream {
    for (const other of others) if (other.arity !== this.arity) throw new DefiniteError('engine.arity', `union of streams with ${this.arity} and ${other.arity} columns`);
    return this.builder.add({ kind: 'union' }, [this, ...others], this.arity);
  }
  negate(): Stream {
    return this.builder.add({ kind: 'negate' }, [this], this.arity);
  }
  minus(other: Stream): Stream {
    if (other.arity !== this.arity) throw new DefiniteError('engine.arity', `minus of streams with ${this.arity} and ${other.arity} columns`);
    return this.builder.add({ kind: 'minus' }, [this, other], this.arity);
  }
  distinct(): Stream {
    return this.builder.add({ kind: 'distinct' }, [this], this.arity);
  }
  /** An equi-join; output rows are this stream's columns, then the other's. */
  join(other: Stream, options: JoinOptions & { kind?: JoinKind }): Stream {
    this.#checkKeys(other, options);
    const spec: NodeSpec = { kind: 'join', join: options.kind ?? 'inner', leftKey: [...options.leftKey], rightKey: [...options.rightKey], ...(options.residual ? { residual: options.residual } : {}) };
    return this.builder.add(spec, [this, other], this.arity + other.arity);
  }
  /** The rows of this stream that match some row of `other` (EXISTS / IN). */
  semiJoin(other: Stream, options: JoinOptions): Stream {
    this.#checkKeys(other, options);
    return this.builder.add({ kind: 'semiJoin', leftKey: [...options.leftKey], rightKey: [...options.rightKey], ...(options.residual ? { residual: options.residual } : {}) }, [this, other], this.arity);
  }
  /** The rows of this stream that match no row of `other` (NOT EXISTS). */
  antiJoin(other: Stream, options: JoinOptions): Stream {
    this.#checkKeys(other, options);
    return this.builder.add({ kind: 'antiJoin', leftKey: [...options.leftKey], rightKey: [...options.rightKey], ...(options.residual ? { residual: options.residual } : {}) }, [this, other], this.arity);
  }
  /** Output rows: the group-by columns, then one column per aggregate. */
  aggregate(groupBy: readonly number[], aggregates: readonly AggregateSpec[]): Stream {
    for (const column of groupBy) this.#checkColumn(column, 'group by');
    for (const aggregate of aggregates) {
      if ('column' in aggregate && aggregate.column !== undefined) this.#checkColumn(aggregate.column, aggregate.kind);
      if ('orderBy' in aggregate) for (const key of aggregate.orderBy ?? []) this.#checkColumn(key.column, `${aggregate.kind} order by`);
    }
    return this.builder.add({ kind: 'aggregate', groupBy: [...groupBy], aggregates: aggregates.map((aggregate) => ({ ...aggregate })) }, [this], groupBy.length + aggregates.length);
  }
  topK(options: TopKOptions): Stream {
    const groupBy = [...(options.groupBy ?? [])];
    for (const column of groupBy) this.#checkColumn(column, 'top-k group');
    for (const key of options.orderBy) this.#checkColumn(key.column, 'order by');
    if (!Number.isSafeInteger(options.limit) || options.limit < 0) throw new DefiniteError('engine.limit', `LIMIT must be a non-negative integer, not ${options.limit}`);
    const offset = options.offset ?? 0;
    if (!Number.isSafeInteger(offset) || offset < 0) throw new DefiniteError('engine.limit', `OFFSET must be a non-negative integer, not ${offset}`);
    return this.builder.add({ kind: 'topK', groupBy, orderBy: options.orderBy.map((key) => ({ ...key })), limit: options.limit, offset }, [this], this.arity);
  }
  integrate(): Stream {
    return this.builder.add({ kind: 'integrate' }, [this], this.arity);
  }
  differentiate(): Stream {
    return this.builder.add({ kind: 'differentiate' }, [this], this.arity);
  }
  delay(): Stream {
    return this.builder.add({ kind: 'delay' }, [this], this.arity);
  }

  #checkColumn(column: number, what: string): void {
    if (!Number.isInteger(column) || column < 0 || column >= this.arity) throw new DefiniteError('engine.column', `${what}: column ${column} does not exist; the stream has ${this.arity} columns (0–${this.arity - 1})`);
  }

  #checkKeys(other: Stream, options: JoinOptions): void {
    if (other.builder !== this.builder) throw new DefiniteError('engine.circuit', 'cannot join streams of different circuits');
    if (options.leftKey.length !== options.rightKey.length) throw new DefiniteError('engine.join', `a join needs as many left key columns as right ones (${options.leftKey.length} and ${options.rightKey.length})`);
    for (const column of options.leftKey) this.#checkColumn(column, 'join key');
    for (const column of options.rightKey) other.#checkColumn(column, 'join key');
  }
}

export class CircuitBuilder {
  readonly #nodes: NodeDefinition[] = [];
  readonly #inputs = new Map<string, number>();
  readonly #outputs = new Map<string, number>();
  #built = false;

  input(name: string, arity: number): Stream {
    if (this.#inputs.has(name)) throw new DefiniteError('engine.input', `the circuit already has an input named "${name}"`);
    const stream = this.add({ kind: 'input', name }, [], arity);
    this.#inputs.set(name, stream.id);
    return stream;
  }

  output(name: string, stream: Stream): void {
    if (this.#outputs.has(name)) throw new DefiniteError('engine.output', `the circuit already has an output named "${name}"`);
    this.#outputs.set(name, stream.id);
  }

  /** Adds a node (the Stream methods call this). */
  add(spec: NodeSpec, inputs: readonly Stream[], arity: number): Stream {
    if (this.#built) throw new DefiniteError('engine.circuit', 'the circuit is already built; build a new one to change it');
    const id = this.#nodes.length;
    this.#nodes.push({ id, spec, inputs: inputs.map((input) => input.id), arity });
    return new Stream(this, id, arity);
  }

  definition(): CircuitDefinition {
    return { nodes: [...this.#nodes], inputs: new Map(this.#inputs), outputs: new Map(this.#outputs) };
  }

  build(): Circuit {
    this.#built = true;
    return new Circuit(this.definition());
  }
}

export function createOperator(node: NodeDefinition, arityOf: (id: number) => number): Operator | undefined {
  const spec = node.spec;
  switch (spec.kind) {
    case 'input':
      return undefined;
    case 'map':
      return new MapOperator(spec.map);
    case 'filter':
      return new FilterOperator(spec.predicate);
    case 'flatMap':
      return new FlatMapOperator(spec.flatMap);
    case 'project':
      return new ProjectOperator(spec.columns);
    case 'union':
      return new UnionOperator();
    case 'negate':
      return new NegateOperator();
    case 'minus':
      return new MinusOperator();
    case 'distinct':
      return new DistinctOperator(node.arity);
    case 'join':
      return new JoinOperator(spec.join, spec.leftKey, spec.rightKey, arityOf(node.inputs[0]!), arityOf(node.inputs[1]!), spec.residual);
    case 'semiJoin':
    case 'antiJoin':
      return new SemiJoinOperator(spec.kind === 'antiJoin', spec.leftKey, spec.rightKey, spec.residual);
    case 'aggregate':
      return new AggregateOperator(spec.groupBy, spec.aggregates);
    case 'topK':
      return new TopKOperator(spec.groupBy, spec.orderBy, spec.limit, spec.offset);
    case 'integrate':
      return new IntegrateOperator();
    case 'differentiate':
      return new DifferentiateOperator();
    case 'delay':
      return new DelayOperator();
  }
}

export type StepInputs = Readonly<Record<string, ZSet>> | ReadonlyMap<string, ZSet>;

export class Circuit {
  readonly definition: CircuitDefinition;
  readonly #operators: Array<Operator | undefined>;
  readonly #values: ZSet[];
  /** Input nodes, and the operators in run order with a reusable argument list each. */
  readonly #inputNodes: Array<{ id: number; name: string; arity: number }>;
  readonly #run: Array<{ id: number; operator: Operator; inputs: readonly number[]; args: ZSet[] }>;
  readonly #outputNodes: Array<[string, number]>;
  #steps = 0;
  /** Set when a step threw midway: operator state may be half-updated, so no further step runs. */
  #failure: Error | undefined;

  constructor(definition: CircuitDefinition) {
    this.definition = definition;
    const arityOf = (id: number) => definition.nodes[id]!.arity;
    this.#operators = definition.nodes.map((node) => createOperator(node, arityOf));
    this.#values = definition.nodes.map(() => ZSet.empty);
    this.#inputNodes = [...definition.inputs].map(([name, id]) => ({ id, name, arity: arityOf(id) }));
    this.#run = [];
    definition.nodes.forEach((node, id) => {
      const operator = this.#operators[id];
      if (operator) this.#run.push({ id, operator, inputs: node.inputs, args: node.inputs.map(() => ZSet.empty) });
    });
    this.#outputNodes = [...definition.outputs];
  }

  /** The number of steps run since the circuit started (restored ones included). */
  get steps(): number {
    return this.#steps;
  }

  /**
   * Runs one step: each named input's delta (absent inputs are empty), and returns each output's
   * delta, consolidated, deletes first.
   */
  step(inputs: StepInputs): Record<string, ZSet> {
    if (this.#failure) {
      throw new DefiniteError(
        'engine.failed',
        `the circuit stopped at step ${this.#steps + 1}: ${this.#failure.message}`,
        'its state may be half-updated; restore the last checkpoint into a new circuit and fix what the step was given',
        { cause: this.#failure },
      );
    }
    const given = inputs instanceof Map ? inputs : undefined;
    const record = given ? undefined : (inputs as Readonly<Record<string, ZSet>>);
    if (given) {
      for (const name of given.keys()) this.#checkInputName(name);
    } else {
      for (const name in record) this.#checkInputName(name);
    }
    const values = this.#values;
    for (const { id, name, arity } of this.#inputNodes) {
      const delta = (given ? given.get(name) : record![name]) ?? ZSet.empty;
      const rows = delta.rows;
      for (let i = 0; i < rows.length; i++) {
        if (rows[i]!.length !== arity) throw new DefiniteError('engine.arity', `input "${name}": row ${i} has ${rows[i]!.length} columns, the input has ${arity}`);
      }
      values[id] = delta;
    }
    const run = this.#run;
    try {
      for (let n = 0; n < run.length; n++) {
        const { id, operator, inputs: sources, args } = run[n]!;
        for (let i = 0; i < sources.length; i++) args[i] = values[sources[i]!]!;
        values[id] = operator.step(args);
      }
    } catch (error) {
      this.#failure = error instanceof Error ? error : new Error(String(error));
      values.fill(ZSet.empty);
      throw error;
    }
    this.#steps++;
    const outputs: Record<string, ZSet> = {};
    for (const [name, id] of this.#outputNodes) outputs[name] = values[id]!.consolidate().deletesFirst();
    // Drop references to this step's deltas so they can be collected.
    values.fill(ZSet.empty);
    for (let n = 0; n < run.length; n++) run[n]!.args.fill(ZSet.empty);
    return outputs;
  }

  #checkInputName(name: string): void {
    if (!this.definition.inputs.has(name)) throw new DefiniteError('engine.input', `the circuit has no input named "${name}"`, `its inputs are: ${[...this.definition.inputs.keys()].join(', ')}`);
  }

  /** Writes every operator's state. */
  save(writer: ByteWriter): void {
    writer.varint(this.#steps);
    for (const operator of this.#operators) operator?.save?.(writer);
  }

  /** Reads state written by `save` of a circuit with the same definition. */
  restore(reader: ByteReader): void {
    this.#steps = reader.varint();
    for (const operator of this.#operators) operator?.restore?.(reader);
  }

  /** Rows and groups held in state, per node id. */
  stateSizes(): Map<number, number> {
    const sizes = new Map<number, number>();
    this.#operators.forEach((operator, id) => {
      if (operator?.stateSize) sizes.set(id, operator.stateSize());
    });
    return sizes;
  }
}
