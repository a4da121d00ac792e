/**
 * `sluice 'PIPE EXPRESSION'`: the one-liner form of `up`. Until the pipeline runtime lands it
 * compiles the pipe, reports any error at its column, and shows the pipeline it stands for.
 */
import { compilePipe } from '../pipe/index.ts';
import { loadParser } from '../sql/index.ts';

export async function pipeCommand(pipe: string, _rest: string[]): Promise<number> {
  await loadParser();
  const compiled = compilePipe(pipe); // a PipeError is reported by main with its caret and hint
  process.stdout.write(`-- the pipeline this pipe stands for:\n${compiled.sql}`);
  process.stderr.write('sluice: running pipelines is not built yet; it arrives with the pipeline runtime. The pipe above compiles.\n');
  return 2;
}
