/**
 * The benchmark runner: `npm run bench -- NAME [OPTIONS]` runs one benchmark, `npm run bench`
 * runs them all in turn.
 *
 * Invariants:
 * - Every benchmark prints a human table and then exactly one JSON summary line on stdout;
 *   progress goes to stderr, so `npm run bench -- log | tail -1` is the summary.
 * - A benchmark module is loaded only when it runs, so one benchmark's client libraries or
 *   missing servers never stop another from running.
 */

/** What a benchmark module exports. */
export interface Benchmark {
  /** One line, shown in the list of benchmarks. */
  description: string;
  /** Runs the benchmark with the command-line arguments after its name. */
  run(args: string[]): Promise<void>;
}

/** Adding a benchmark is one line here: its name, and where its module is. */
const benchmarks: Record<string, () => Promise<Benchmark>> = {
  log: () => import('./log.ts'),
  engine: () => import('./engine.ts'),
  sql: () => import('./sql.ts'),
  search: () => import('./search.ts'),
  pipeline: () => import('./pipeline.ts'),
  postgres: () => import('./postgres.ts'),
  mysql: () => import('./mysql.ts'),
};

function listing(): string {
  return Object.keys(benchmarks).map((name) => `  ${name}`).join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  if (name === '--help' || name === '-h') {
    process.stdout.write(`usage: npm run bench -- [NAME [OPTIONS]]\nbenchmarks:\n${listing()}\nwith no name, every benchmark runs in turn\n`);
    return 0;
  }
  if (name === undefined || name.startsWith('-')) {
    for (const each of Object.keys(benchmarks)) {
      process.stderr.write(`── bench ${each} ──\n`);
      await (await benchmarks[each]()).run(argv);
    }
    return 0;
  }
  const load = benchmarks[name];
  if (!load) {
    process.stderr.write(`bench: there is no benchmark "${name}"; the benchmarks are:\n${listing()}\n`);
    return 2;
  }
  await (await load()).run(args);
  return 0;
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  const hint = (error as { hint?: string }).hint;
  process.stderr.write(`bench: ${(error as Error).message}\n${hint ? `  hint: ${hint}\n` : ''}`);
  process.exitCode = 1;
}
