/**
 * `sluice 'PIPE EXPRESSION'`: the one-liner form of `up`. The pipe compiles to the statements of
 * a pipeline file (src/pipe/), which `up` then runs; `--print` shows them instead.
 */
import { compilePipe } from '../pipe/index.ts';
import { loadParser } from '../sql/index.ts';
import { dataOption, parseCommand } from './arguments.ts';
import { listenDefault, resolveSecret, upPipeline } from './up-command.ts';

export async function pipeCommand(pipe: string, rest: string[]): Promise<number> {
  const { values } = parseCommand(rest, { ...dataOption, listen: { type: 'string', default: listenDefault }, token: { type: 'string' }, print: { type: 'boolean', default: false } });
  await loadParser();
  const compiled = compilePipe(pipe); // a PipeError is reported by main with its caret and hint
  if (values.print) {
    process.stdout.write(compiled.sql);
    return 0;
  }
  return upPipeline({ text: compiled.sql, file: '<pipe>', data: values.data, listen: values.listen, token: resolveSecret(values.token) });
}
