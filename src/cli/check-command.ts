/**
 * `sluice check FILE.sql | 'PIPE'`: validates a pipeline without running it and prints what it
 * declares — tables with their columns, each view's columns and optimized plan, sources and sinks
 * (URLs with passwords hidden). Errors print at their line:column with a caret and a hint.
 *
 * Exit codes: 0 valid, 1 invalid (the first error is printed), 2 usage.
 */

import { existsSync, readFileSync } from 'node:fs';
import { compilePipe } from '../pipe/index.ts';
import { open } from '../pipeline/database.ts';
import { SluiceError } from '../core/index.ts';
import { loadParser, parsePipelineAsync } from '../sql/index.ts';

export async function checkCommand(args: string[]): Promise<number> {
  try {
    return await check(args);
  } catch (error) {
    if (!(error instanceof SluiceError)) throw error;
    process.stderr.write(`sluice check: ${error.message}\n${error.hint ? `  hint: ${error.hint}\n` : ''}`);
    return 1;
  }
}

async function check(args: string[]): Promise<number> {
  const target = args.find((arg) => !arg.startsWith('--'));
  if (!target || args.length !== 1) {
    process.stderr.write('usage: sluice check FILE.sql\n       sluice check \'SOURCE | STAGE | … | SINK\'\n');
    return 2;
  }
  await loadParser();
  let text: string;
  let file: string;
  if (existsSync(target)) {
    text = readFileSync(target, 'utf8');
    file = target;
  } else if (target.includes('|') || !/\.sql$/i.test(target)) {
    text = compilePipe(target).sql;
    file = 'pipe';
    process.stdout.write(`-- the pipeline this pipe stands for:\n${text}\n`);
  } else {
    process.stderr.write(`sluice check: ${target}: no such file\n`);
    return 2;
  }
  const db = await open();
  const entries = await db.check(text, file);
  await db.close();
  const count = (kind: string) => entries.filter((e) => e.kind === kind).length;
  for (const entry of entries) {
    const title = entry.name ? `${entry.kind} ${entry.name}` : entry.kind;
    process.stdout.write(`${title}: ${entry.detail}\n`);
    if (entry.plan) process.stdout.write(entry.plan.split('\n').map((line) => `  ${line}`).join('\n') + '\n');
    if (entry.note) process.stdout.write(`  (${entry.note})\n`);
  }
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
  process.stdout.write(`\n${file}: valid — ${plural(count('table'), 'table')}, ${plural(count('view'), 'view')}, ${plural(count('source'), 'source')}, ${plural(count('sink'), 'sink')}\n`);
  return (await preflightSources(text, file)) ? 0 : 1;
}

/** Runs each PostgreSQL and MySQL source's preflight and prints what it found; false when one cannot run. */
async function preflightSources(text: string, file: string): Promise<boolean> {
  const { postgresConfig } = await import('../sources/postgres/config.ts');
  const { preflight } = await import('../sources/postgres/preflight.ts');
  let ready = true;
  const { mysqlConfig } = await import('../sources/mysql/config.ts');
  const { mysqlPreflight } = await import('../sources/mysql/preflight.ts');
  for (const statement of await parsePipelineAsync(text, file)) {
    if (statement.kind !== 'createSource' || (statement.connector !== 'postgres' && statement.connector !== 'mysql')) continue;
    try {
      if (statement.connector === 'mysql') {
        const config = mysqlConfig(statement.name, statement.url, statement.options);
        const report = await mysqlPreflight(config);
        const product = report.flavor === 'mariadb' ? 'MariaDB' : 'MySQL';
        if (report.problems.length === 0) process.stdout.write(`preflight ${statement.name}: ready (${product} ${report.serverVersion}${report.binlog ? `; binlog at ${report.binlog.file}:${report.binlog.position}` : ''})\n`);
        else {
          ready = false;
          process.stdout.write(`preflight ${statement.name}: ${report.problems.length} problem${report.problems.length === 1 ? '' : 's'} to fix on the server\n${report.problems.map((p) => `  - ${p.message}: ${p.fix}\n`).join('')}`);
        }
        continue;
      }
      const config = postgresConfig(statement.name, statement.url, statement.options);
      const report = await preflight(config);
      if (report.problems.length === 0) {
        const creates = [report.publicationExists ? '' : `publication ${config.publication}`, report.slotExists ? '' : `slot ${config.slot}`].filter(Boolean);
        process.stdout.write(`preflight ${statement.name}: ready (PostgreSQL ${report.serverVersion}${creates.length ? `; will create ${creates.join(' and ')}` : ''})\n`);
      } else {
        ready = false;
        process.stdout.write(`preflight ${statement.name}: ${report.problems.length} problem${report.problems.length === 1 ? '' : 's'} to fix on the server\n${report.problems.map((p) => `  - ${p.message}: ${p.fix}\n`).join('')}`);
      }
    } catch (error) {
      ready = false;
      const hint = error instanceof SluiceError && error.hint ? ` (${error.hint})` : '';
      process.stdout.write(`preflight ${statement.name}: ${(error as Error).message}${hint}\n`);
    }
  }
  return ready;
}
