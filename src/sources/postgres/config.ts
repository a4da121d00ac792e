/**
 * `CREATE SOURCE name FROM POSTGRES 'url' WITH (publication, tables, slot)`: the options, checked,
 * with Sluice's defaults.
 *
 *   tables       required: 'public.orders, public.customers' (a table without a schema is public.T)
 *   publication  default sluice_<source>; created FOR those tables when missing
 *   slot         default sluice_<source>; a pgoutput logical replication slot, created when missing
 *
 * The URL may hold `${env:NAME}` or `${file:PATH}` for its password; it is never printed (see
 * redactUrl).
 */

import { DefiniteError, redactUrl, resolveSecrets } from '../../core/index.ts';

export interface PostgresSourceConfig {
  name: string;
  /** The connection URL with secrets resolved: never print it (use `displayUrl`). */
  url: string;
  displayUrl: string;
  publication: string;
  slot: string;
  tables: Array<{ schema: string; name: string }>;
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_$]{0,62}$/;
const OPTIONS = new Set(['publication', 'tables', 'slot']);

export function postgresConfig(name: string, url: string, options: ReadonlyMap<string, string>): PostgresSourceConfig {
  for (const option of options.keys()) {
    if (!OPTIONS.has(option)) throw new DefiniteError('source_option', `source ${name}: FROM POSTGRES has no option "${option}"`, 'its options are publication, tables and slot');
  }
  if (!/^postgres(ql)?:\/\//i.test(url)) throw new DefiniteError('source_url', `source ${name}: "${redactUrl(url)}" is not a postgres:// URL`, "write it as 'postgres://user:${env:PGPASSWORD}@host:5432/database'");
  const tablesText = options.get('tables');
  if (!tablesText || tablesText.trim() === '') throw new DefiniteError('source_option', `source ${name}: which tables to capture is not said`, "add WITH (tables = 'public.orders, public.customers')");
  const tables = tablesText.split(',').map((entry) => {
    const parts = entry.trim().split('.');
    const [schema, table] = parts.length === 1 ? ['public', parts[0]!] : parts.length === 2 ? [parts[0]!, parts[1]!] : ['', ''];
    if (!IDENTIFIER.test(schema) || !IDENTIFIER.test(table)) throw new DefiniteError('source_option', `source ${name}: "${entry.trim()}" is not a table name`, "list tables as schema.table, separated by commas: tables = 'public.orders, public.customers'");
    return { schema, name: table };
  });
  const publication = options.get('publication') ?? `sluice_${name}`;
  const slot = options.get('slot') ?? `sluice_${name}`;
  if (!IDENTIFIER.test(publication)) throw new DefiniteError('source_option', `source ${name}: "${publication}" is not a publication name`, 'use letters, digits and underscores');
  // Slot names are lower case letters, digits and underscores (PostgreSQL refuses others).
  if (!/^[a-z0-9_]{1,63}$/.test(slot)) throw new DefiniteError('source_option', `source ${name}: "${slot}" is not a replication slot name`, 'a slot name is lower-case letters, digits and underscores, at most 63');
  return { name, url: resolveSecrets(url, `source ${name}`, encodeURIComponent), displayUrl: redactUrl(url), publication, slot, tables };
}
