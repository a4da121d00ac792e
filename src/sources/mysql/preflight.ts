/**
 * Preflight: everything a MySQL or MariaDB source needs from the server, checked before anything
 * is read, each problem with the fix (DESIGN.md: "messages say what to do").
 *
 *   the binary log is on (log_bin)              MariaDB: log_bin in the config; MySQL: no skip-log-bin
 *   binlog_format = ROW                         row events, not statements
 *   binlog_row_image = FULL                     whole rows before and after
 *   binlog_row_metadata = FULL                  column names, signedness, ENUM/SET values, the key
 *   no compressed binlog events                 log_bin_compress (MariaDB),
 *                                               binlog_transaction_compression (MySQL) OFF
 *   no partial JSON updates (MySQL)             binlog_row_value_options = ''
 *   GTIDs                                       MariaDB: always on (the domain is reported);
 *                                               MySQL: gtid_mode = ON, enforce_gtid_consistency = ON
 *   binlog retention ≥ 1 day (0: never purged)  binlog_expire_logs_seconds (or expire_logs_days)
 *   server_id differs from the server's own     WITH (server_id = …)
 *   the user's privileges                       REPLICATION SLAVE; REPLICATION CLIENT (MariaDB:
 *                                               BINLOG MONITOR; SUPER or ALL PRIVILEGES do too);
 *                                               SELECT on each table (or its database, or all)
 *   the URL's database exists
 *   each table exists, is a table, has a key    a primary key
 *   the watermark table (snapshot 'watermark')  exists with (source, mark); INSERT and UPDATE on it
 *   no binlog_do_db / binlog_ignore_db          leaving out a captured database (or the watermarks')
 *
 * Privileges are read from SHOW GRANTS (with the active roles' grants: MariaDB lists them itself,
 * MySQL is asked with USING), in either flavor's spelling; where the grants do not show one, what
 * it allows is tried (SHOW MASTER STATUS, SELECT * … LIMIT 0), so an unusual grant is never refused
 * wrongly. All problems are reported together, so one round of fixes is enough.
 */

import mysql from 'mysql2/promise';
import { DefiniteError, TransientError } from '../../core/index.ts';
import type { MysqlSourceConfig } from './config.ts';
import type { BinlogPosition } from './stream.ts';

export type MysqlPreflightCheck =
  | 'log_bin'
  | 'binlog_format'
  | 'binlog_row_image'
  | 'binlog_row_metadata'
  | 'binlog_compression'
  | 'binlog_row_value_options'
  | 'gtid_mode'
  | 'enforce_gtid_consistency'
  | 'binlog_retention'
  | 'server_id'
  | 'replication_slave'
  | 'replication_client'
  | 'select_privilege'
  | 'database_missing'
  | 'table_missing'
  | 'not_a_table'
  | 'primary_key'
  | 'watermark_table'
  | 'binlog_filter';

export interface MysqlPreflightProblem {
  check: MysqlPreflightCheck;
  message: string;
  fix: string;
}

export interface MysqlPreflightReport {
  /** The server's version number, e.g. '10.11.6' or '8.0.36'. */
  serverVersion: string;
  /** How the snapshot is read: the config's mode, with 'auto' decided by the server. */
  snapshotMode: 'consistent' | 'watermark';
  flavor: 'mariadb' | 'mysql';
  problems: MysqlPreflightProblem[];
  /** Where the binary log ends now; null when it is off (or the user may not see it). */
  binlog: BinlogPosition | null;
  /** The GTID position now: MariaDB's gtid_binlog_pos ('0-1-17'), MySQL's gtid_executed ('uuid:1-17'); '' when none. */
  gtidPosition: string;
  /** MariaDB: the server's gtid_domain_id (the domain its own transactions are in). */
  gtidDomainId?: number;
  /** The server's own server_id. */
  serverId: number;
  /** How long binary logs are kept, in seconds; 0 when they are never purged by age. */
  binlogRetentionSeconds: number;
  /** The account connected as, as the server sees it: 'cdc@%'. */
  user: string;
}

const DAY = 86_400;
const ER_DBACCESS_DENIED = 1044;
const ER_BAD_DB = 1049;
const ER_TABLEACCESS_DENIED = 1142;
const ER_NO_SUCH_TABLE = 1146;
const ER_SPECIFIC_ACCESS_DENIED = 1227;

export async function mysqlPreflight(config: MysqlSourceConfig): Promise<MysqlPreflightReport> {
  // The URL as the binlog connection uses it, but without its database: a missing one is a
  // problem to report, not a failure to connect.
  const uri = new URL(config.url);
  uri.pathname = '';
  let connection: mysql.Connection;
  try {
    connection = await mysql.createConnection({ uri: uri.toString(), connectTimeout: 10_000, supportBigNumbers: true, bigNumberStrings: true });
  } catch (error) {
    throw new TransientError(
      'mysql_connect',
      `source ${config.name}: cannot connect to ${config.displayUrl}: ${(error as Error).message}`,
      'check the URL and the password, that the server runs and accepts connections from this host',
    );
  }
  try {
    const problems: MysqlPreflightProblem[] = [];
    const rows = async (sql: string, values: unknown[] = []) => (await connection.query(sql, values))[0] as Array<Record<string, unknown>>;
    const errno = async (sql: string): Promise<number> => {
      try {
        await connection.query(sql);
        return 0;
      } catch (error) {
        const number = (error as { errno?: number }).errno;
        if (typeof number !== 'number') throw error;
        return number;
      }
    };

    const [identity] = await rows(`SELECT VERSION() AS version, CURRENT_USER() AS user, @@server_id AS server_id`);
    const version = String(identity!.version);
    const flavor: 'mariadb' | 'mysql' = /mariadb/i.test(version) ? 'mariadb' : 'mysql';
    const serverVersion = version.split('-')[0]!;
    const user = String(identity!.user);
    const account = quoteAccount(user);
    const serverId = Number(identity!.server_id);
    const product = flavor === 'mariadb' ? 'MariaDB' : 'MySQL';
    const section = flavor === 'mariadb' ? '[mariadbd]' : '[mysqld]';
    const restart = `in the ${section} section of the server's configuration and restart ${product}`;

    // SHOW VARIABLES leaves out what a version does not have, instead of failing.
    const variables = new Map<string, string>();
    for (const row of await rows(`SHOW GLOBAL VARIABLES WHERE Variable_name IN ('log_bin', 'binlog_format', 'binlog_row_image', 'binlog_row_metadata', 'log_bin_compress', 'binlog_transaction_compression', 'binlog_row_value_options', 'gtid_mode', 'enforce_gtid_consistency', 'gtid_domain_id', 'gtid_binlog_pos', 'gtid_executed', 'binlog_expire_logs_seconds', 'expire_logs_days')`)) {
      variables.set(String(row.Variable_name).toLowerCase(), String(row.Value ?? ''));
    }
    const variable = (name: string) => variables.get(name)?.toUpperCase();
    const on = (name: string) => ['ON', '1', 'TRUE'].includes(variable(name) ?? '');

    // The binary log and its format.
    if (!on('log_bin')) {
      problems.push({
        check: 'log_bin',
        message: 'the binary log is off (log_bin = OFF)',
        fix: flavor === 'mariadb' ? `add log_bin = mariadb-bin (and a server_id other than 0) ${restart}` : `MySQL 8 writes it by default: remove skip-log-bin (or disable-log-bin) ${restart}`,
      });
    }
    const setting = (check: MysqlPreflightCheck, name: string, wanted: string) => {
      const value = variable(name);
      if (value === wanted) return;
      if (value === undefined) {
        problems.push({ check, message: `${product} ${serverVersion} has no ${name} setting: its binary log cannot say ${name === 'binlog_row_metadata' ? 'the columns\' names, signedness and ENUM/SET values' : 'what Sluice needs'}`, fix: 'upgrade to MariaDB 10.5 or later, or MySQL 8.0 or later' });
      } else {
        problems.push({ check, message: `${name} is '${variables.get(name)}', not ${wanted}`, fix: `set ${name} = ${wanted} ${restart} (SET GLOBAL ${name} = '${wanted}' applies to new connections until then)` });
      }
    };
    setting('binlog_format', 'binlog_format', 'ROW');
    setting('binlog_row_image', 'binlog_row_image', 'FULL');
    setting('binlog_row_metadata', 'binlog_row_metadata', 'FULL');
    for (const name of ['log_bin_compress', 'binlog_transaction_compression']) {
      if (on(name)) problems.push({ check: 'binlog_compression', message: `${name} is ON: Sluice does not read compressed binlog events`, fix: `set ${name} = OFF ${restart} (SET GLOBAL ${name} = OFF applies to new transactions until then)` });
    }
    if (/PARTIAL_JSON/.test(variable('binlog_row_value_options') ?? '')) {
      problems.push({ check: 'binlog_row_value_options', message: `binlog_row_value_options is '${variables.get('binlog_row_value_options')}': JSON updates would be logged as partial changes`, fix: `set binlog_row_value_options = '' ${restart} (SET GLOBAL binlog_row_value_options = '' until then)` });
    }

    // GTIDs: MariaDB always writes them; MySQL only in gtid_mode ON.
    let gtidPosition: string;
    let gtidDomainId: number | undefined;
    if (flavor === 'mariadb') {
      gtidPosition = variables.get('gtid_binlog_pos') ?? '';
      gtidDomainId = variables.has('gtid_domain_id') ? Number(variables.get('gtid_domain_id')) : undefined;
    } else {
      gtidPosition = (variables.get('gtid_executed') ?? '').replace(/\s+/g, '');
      if (variable('gtid_mode') !== 'ON') {
        problems.push({ check: 'gtid_mode', message: `gtid_mode is '${variables.get('gtid_mode') ?? 'not available'}', not ON: transactions have no GTIDs to resume from`, fix: `set gtid_mode = ON and enforce_gtid_consistency = ON ${restart} (a running server can step there: OFF_PERMISSIVE, ON_PERMISSIVE, ON; see "Enabling GTID Transactions Online")` });
      }
      if (variable('enforce_gtid_consistency') !== 'ON') {
        problems.push({ check: 'enforce_gtid_consistency', message: `enforce_gtid_consistency is '${variables.get('enforce_gtid_consistency') ?? 'not available'}', not ON`, fix: `set enforce_gtid_consistency = ON ${restart}` });
      }
    }

    // Retention: a binlog purged before Sluice read it means a new snapshot.
    const seconds = Number(variables.get('binlog_expire_logs_seconds') ?? 0);
    const days = Number(variables.get('expire_logs_days') ?? 0);
    const binlogRetentionSeconds = seconds > 0 ? seconds : days > 0 ? Math.round(days * DAY) : 0;
    if (binlogRetentionSeconds > 0 && binlogRetentionSeconds < DAY) {
      const which = seconds > 0 ? `binlog_expire_logs_seconds = ${seconds}` : `expire_logs_days = ${variables.get('expire_logs_days')}`;
      problems.push({
        check: 'binlog_retention',
        message: `binary logs are purged after ${duration(binlogRetentionSeconds)} (${which}): a Sluice stopped for longer would have to take a new snapshot`,
        fix: `keep them at least a day, better a week: binlog_expire_logs_seconds = 604800 ${restart} (SET GLOBAL binlog_expire_logs_seconds = 604800 applies now)`,
      });
    }

    if (serverId === config.serverId) {
      problems.push({ check: 'server_id', message: `server_id ${config.serverId} is the server's own`, fix: `give the source another, unique among the server's replicas: WITH (server_id = '${config.serverId === 1 ? 5401 : config.serverId + 1}')` });
    }

    // Privileges.
    const grants = await currentGrants(connection, flavor);
    const canReplicate = hasGlobal(grants, ['REPLICATION SLAVE', 'REPLICATION REPLICA']);
    if (!canReplicate) {
      problems.push({ check: 'replication_slave', message: `user ${account} may not read the binary log (no REPLICATION SLAVE)`, fix: `run GRANT REPLICATION SLAVE ON *.* TO ${account}` });
    }
    const status = flavor === 'mysql' && compareVersions(serverVersion, '8.2.0') >= 0 ? 'SHOW BINARY LOG STATUS' : 'SHOW MASTER STATUS';
    let binlog: BinlogPosition | null = null;
    let statusDenied = false;
    /** The binlog's database filters (binlog_do_db, binlog_ignore_db): row events are kept by the table's database. */
    let filters = { only: [] as string[], ignored: [] as string[] };
    try {
      const [row] = await rows(status);
      if (row && row.File) binlog = { file: String(row.File), position: Number(row.Position) };
      const list = (value: unknown) => String(value ?? '').split(',').map((name) => name.trim()).filter((name) => name !== '');
      if (row) filters = { only: list(row.Binlog_Do_DB), ignored: list(row.Binlog_Ignore_DB) };
    } catch (error) {
      if ((error as { errno?: number }).errno !== ER_SPECIFIC_ACCESS_DENIED) throw error;
      statusDenied = true;
    }
    const monitor = flavor === 'mariadb' ? 'BINLOG MONITOR' : 'REPLICATION CLIENT';
    if (statusDenied && !hasGlobal(grants, ['REPLICATION CLIENT', 'BINLOG MONITOR', 'SUPER'])) {
      problems.push({ check: 'replication_client', message: `user ${account} may not see where the binary log stands (no ${monitor === 'BINLOG MONITOR' ? 'BINLOG MONITOR (REPLICATION CLIENT)' : 'REPLICATION CLIENT'})`, fix: `run GRANT ${monitor} ON *.* TO ${account}` });
    }

    // The URL's database and the tables.
    if (config.database !== '') {
      const code = await errno(`USE ${quoteName(config.database)}`);
      if (code === ER_BAD_DB) problems.push({ check: 'database_missing', message: `database ${config.database} (in the URL) does not exist`, fix: 'create it, or name another in the URL' });
      else if (code === ER_DBACCESS_DENIED) problems.push({ check: 'select_privilege', message: `user ${account} may not use database ${config.database} (in the URL)`, fix: `run GRANT SELECT ON ${quoteName(config.database)}.* TO ${account}` });
    }
    for (const table of config.tables) {
      const qualified = `${table.schema}.${table.name}`;
      const quoted = `${quoteName(table.schema)}.${quoteName(table.name)}`;
      const [found] = await rows(`SELECT TABLE_TYPE AS type FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?`, [table.schema, table.name]);
      const grantedSelect = hasOn(grants, 'SELECT', table.schema, table.name);
      // SHOW GRANTS may not show everything (roles MySQL has not said, proxies): try it.
      const trial = grantedSelect ? 0 : await errno(`SELECT * FROM ${quoted} LIMIT 0`);
      if (!found) {
        // Without any privilege on a table, it cannot be seen: the server says which it is.
        if (trial === ER_TABLEACCESS_DENIED || trial === ER_DBACCESS_DENIED) {
          problems.push({ check: 'select_privilege', message: `user ${account} may not read table ${qualified} (nor see whether it exists)`, fix: `run GRANT SELECT ON ${quoted} TO ${account} (or ON ${quoteName(table.schema)}.*)` });
        } else {
          problems.push({ check: 'table_missing', message: `table ${qualified} does not exist`, fix: 'create it, or remove it from WITH (tables = …)' });
        }
        continue;
      }
      const type = String(found.type);
      if (type !== 'BASE TABLE' && type !== 'SYSTEM VERSIONED') {
        problems.push({ check: 'not_a_table', message: `${qualified} is a ${type.toLowerCase()}, not a table: the binary log has no rows for it`, fix: 'capture the tables it reads instead' });
        continue;
      }
      if (trial !== 0) {
        problems.push({ check: 'select_privilege', message: `user ${account} may not read table ${qualified}`, fix: `run GRANT SELECT ON ${quoted} TO ${account} (or ON ${quoteName(table.schema)}.*)` });
      }
      // STATISTICS, not TABLE_CONSTRAINTS: MariaDB 10.11 shows a user with SELECT only no
      // constraints at all, but the indexes of every table it may read.
      const [key] = await rows(`SELECT 1 AS found FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND INDEX_NAME = 'PRIMARY' LIMIT 1`, [table.schema, table.name]);
      if (!key) {
        problems.push({ check: 'primary_key', message: `table ${qualified} has no primary key: its updates and deletes would not say which row they change, and it cannot be snapshotted in chunks`, fix: `add a primary key: ALTER TABLE ${quoted} ADD PRIMARY KEY (…)` });
      }
    }

    // Databases the binlog leaves out: their changes would never arrive.
    const logged = (schema: string) => (filters.only.length === 0 || filters.only.includes(schema)) && !filters.ignored.includes(schema);
    for (const schema of new Set(config.tables.map((t) => t.schema))) {
      if (!logged(schema)) problems.push({ check: 'binlog_filter', message: `the binary log leaves out database ${schema} (${filters.only.length ? `binlog_do_db = ${filters.only.join(',')}` : `binlog_ignore_db = ${filters.ignored.join(',')}`}): its tables' changes would never reach Sluice`, fix: `log it: ${filters.only.length ? `add binlog_do_db = ${schema}` : `remove binlog_ignore_db = ${schema}`} ${restart}` });
    }

    // The watermark table, when the snapshot is read with watermarks.
    const snapshotMode = config.snapshot === 'auto' ? (flavor === 'mariadb' ? 'consistent' : 'watermark') : config.snapshot;
    if (snapshotMode === 'watermark') {
      const table = config.watermarkTable;
      const qualified = `${table.schema}.${table.name}`;
      const quoted = `${quoteName(table.schema)}.${quoteName(table.name)}`;
      const create = `CREATE TABLE ${quoted} (source varchar(64) PRIMARY KEY, mark varchar(64) NOT NULL)`;
      const columns = await rows(`SELECT COLUMN_NAME AS name FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?`, [table.schema, table.name]);
      const names = new Set(columns.map((c) => String(c.name).toLowerCase()));
      const missing = ['INSERT', 'UPDATE'].filter((privilege) => !hasOn(grants, privilege, table.schema, table.name));
      if (!logged(table.schema)) {
        problems.push({ check: 'watermark_table', message: `the binary log leaves out database ${table.schema}, where the watermark table ${qualified} is: its watermarks would never be seen`, fix: `name a watermark table in a logged database (WITH (watermark_table = …)), or log ${table.schema}` });
      } else if (columns.length === 0) {
        problems.push({ check: 'watermark_table', message: `the watermark table ${qualified} does not exist (snapshot 'watermark' writes its low and high watermarks there)`, fix: `run ${create}; GRANT INSERT, UPDATE ON ${quoted} TO ${account} (or name another with WITH (watermark_table = …), or use snapshot = 'consistent' on MariaDB)` });
      } else if (!names.has('source') || !names.has('mark')) {
        problems.push({ check: 'watermark_table', message: `the watermark table ${qualified} has no columns source and mark`, fix: `drop it and run ${create}` });
      } else if (missing.length > 0) {
        problems.push({ check: 'watermark_table', message: `user ${account} may not write the watermark table ${qualified} (no ${missing.join(' or ')})`, fix: `run GRANT INSERT, UPDATE ON ${quoted} TO ${account}` });
      }
    }

    return { serverVersion, flavor, snapshotMode, problems, binlog, gtidPosition, ...(gtidDomainId === undefined ? {} : { gtidDomainId }), serverId, binlogRetentionSeconds, user };
  } finally {
    await connection.end().catch(() => {});
  }
}

/** The report's problems as one error, or nothing when there are none. */
export function mysqlPreflightError(config: MysqlSourceConfig, report: MysqlPreflightReport): DefiniteError | undefined {
  if (report.problems.length === 0) return undefined;
  const lines = report.problems.map((p) => `  - ${p.message}: ${p.fix}`).join('\n');
  const product = report.flavor === 'mariadb' ? 'MariaDB' : 'MySQL';
  return new DefiniteError('mysql_preflight', `source ${config.name} (${config.displayUrl}) cannot capture changes yet:\n${lines}`, `fix these on the ${product} server, then start again`);
}

// ---------------------------------------------------------------------------------------------
// SHOW GRANTS

/** One `GRANT privileges ON target TO …` line; `*` for any schema or table. */
export interface Grant {
  /** Upper case, single spaces: 'SELECT', 'REPLICATION SLAVE', 'ALL PRIVILEGES'. Column privileges are left out. */
  privileges: Set<string>;
  schema: string;
  /** Whether `schema` is a pattern (% and _ as in LIKE): a database-level grant. */
  schemaPattern: boolean;
  table: string;
}

/**
 * The current user's grants, with those of the roles active on a new connection: MariaDB's
 * SHOW GRANTS lists the default role's grants itself; MySQL needs USING the active roles.
 */
async function currentGrants(connection: mysql.Connection, flavor: 'mariadb' | 'mysql'): Promise<Grant[]> {
  const lines = async (sql: string) => ((await connection.query(sql))[0] as Array<Record<string, unknown>>).map((row) => String(Object.values(row)[0]));
  let text = await lines('SHOW GRANTS');
  if (flavor === 'mysql') {
    try {
      const [row] = (await connection.query('SELECT CURRENT_ROLE() AS roles'))[0] as Array<{ roles: string | null }>;
      const roles = row?.roles ?? 'NONE';
      if (roles !== 'NONE' && roles !== '') text = await lines(`SHOW GRANTS FOR CURRENT_USER() USING ${roles}`);
    } catch {
      // Before MySQL 8 there are no roles: the grants are all there is.
    }
  }
  return parseGrants(text);
}

/** The `GRANT … ON … TO …` lines among SHOW GRANTS's, in MySQL's or MariaDB's spelling; others (roles, PROXY, SET DEFAULT ROLE) are skipped. */
export function parseGrants(lines: readonly string[]): Grant[] {
  const grants: Grant[] = [];
  for (const line of lines) {
    const grant = parseGrant(line);
    if (grant) grants.push(grant);
  }
  return grants;
}

function parseGrant(line: string): Grant | undefined {
  const text = line.trim();
  if (!/^GRANT\s/i.test(text)) return undefined;
  // The privilege list runs to the first ON outside quotes and parentheses.
  let at = 5;
  let depth = 0;
  let listEnd = -1;
  for (; at < text.length; at++) {
    const char = text[at]!;
    if (char === '`' || char === '"' || char === "'") at = skipQuoted(text, at);
    else if (char === '(') depth++;
    else if (char === ')') depth--;
    else if (depth === 0 && /\s/.test(char) && /^\s+ON\s/i.test(text.slice(at))) {
      listEnd = at;
      break;
    }
  }
  if (listEnd < 0) return undefined; // a role grant: GRANT `role` TO …
  const privileges = new Set<string>();
  for (const item of splitTopLevel(text.slice(5, listEnd))) {
    if (item.includes('(')) continue; // SELECT (`a`, `b`): some columns only
    privileges.add(item.trim().replace(/\s+/g, ' ').toUpperCase());
  }
  let rest = text.slice(listEnd).replace(/^\s+ON\s+/i, '');
  const objectType = /^(TABLE|FUNCTION|PROCEDURE|PACKAGE BODY|PACKAGE)\s+/i.exec(rest);
  if (objectType) {
    if (objectType[1]!.toUpperCase() !== 'TABLE') return undefined;
    rest = rest.slice(objectType[0].length);
  }
  const first = readName(rest, 0);
  if (!first) return undefined;
  let schema: string;
  let table: string;
  let schemaPattern = false;
  if (rest[first.end] === '.') {
    const second = readName(rest, first.end + 1);
    if (!second) return undefined;
    schema = first.name;
    table = second.name;
    schemaPattern = table === '*' && schema !== '*';
    at = second.end;
  } else {
    return undefined; // PROXY ON ''@'%', or a shape not known: not a privilege on tables
  }
  if (!/^\s+TO\s/i.test(rest.slice(at))) return undefined;
  return { privileges, schema, schemaPattern, table };
}

/** A name at `at`: `quoted` (doubled quotes inside), "quoted", or bare; `*` is a name too. */
function readName(text: string, at: number): { name: string; end: number } | undefined {
  const char = text[at];
  if (char === '`' || char === '"') {
    const end = skipQuoted(text, at);
    if (end >= text.length) return undefined;
    return { name: text.slice(at + 1, end).replaceAll(char + char, char), end: end + 1 };
  }
  const match = /^(\*|[A-Za-z0-9_$\u0080-\uFFFF\\%]+)/.exec(text.slice(at));
  return match ? { name: match[1]!, end: at + match[1]!.length } : undefined;
}

/** The index of the quote closing the one at `at` (a doubled quote does not close). */
function skipQuoted(text: string, at: number): number {
  const quote = text[at];
  let i = at + 1;
  while (i < text.length) {
    if (text[i] === '\\' && quote === "'") i += 2;
    else if (text[i] === quote) {
      if (text[i + 1] !== quote) return i;
      i += 2;
    } else i++;
  }
  return text.length;
}

/** Splits on commas outside parentheses and quotes. */
function splitTopLevel(text: string): string[] {
  const items: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const char = text[i]!;
    if (char === '`' || char === '"' || char === "'") i = skipQuoted(text, i);
    else if (char === '(') depth++;
    else if (char === ')') depth--;
    else if (char === ',' && depth === 0) {
      items.push(text.slice(start, i));
      start = i + 1;
    }
  }
  items.push(text.slice(start));
  return items.map((item) => item.trim()).filter((item) => item !== '');
}

const ALL = ['ALL PRIVILEGES', 'ALL'];

/** Whether any of `names` (or ALL PRIVILEGES) is granted ON *.*. */
export function hasGlobal(grants: readonly Grant[], names: readonly string[]): boolean {
  return grants.some((g) => g.schema === '*' && g.table === '*' && [...names, ...ALL].some((name) => g.privileges.has(name)));
}

/** Whether `privilege` is granted on the table: on it, on its database (patterns too), or on everything. */
export function hasOn(grants: readonly Grant[], privilege: string, schema: string, table: string): boolean {
  return grants.some((g) => {
    if (![privilege, ...ALL].some((name) => g.privileges.has(name))) return false;
    if (g.schema === '*') return g.table === '*';
    if (g.table === '*') return g.schemaPattern ? likePattern(g.schema).test(schema) : g.schema === schema;
    // Table names compare without case where the server folds them; exact is the safe side.
    return g.schema === schema && g.table === table;
  });
}

/** A database-level grant's name as a pattern: % any, _ one character, \_ and \% themselves. */
function likePattern(pattern: string): RegExp {
  let source = '';
  for (let i = 0; i < pattern.length; i++) {
    const char = pattern[i]!;
    if (char === '\\' && i + 1 < pattern.length) source += escapeRegExp(pattern[++i]!);
    else if (char === '%') source += '.*';
    else if (char === '_') source += '.';
    else source += escapeRegExp(char);
  }
  return new RegExp(`^${source}$`, 's');
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

// ---------------------------------------------------------------------------------------------

/** `cdc@%` → `'cdc'@'%'` (the user name may hold an @: the host is after the last one). */
function quoteAccount(user: string): string {
  const at = user.lastIndexOf('@');
  const quote = (part: string) => `'${part.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  return at < 0 ? quote(user) : `${quote(user.slice(0, at))}@${quote(user.slice(at + 1))}`;
}

function quoteName(name: string): string {
  return `\`${name.replaceAll('`', '``')}\``;
}

function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

function duration(seconds: number): string {
  if (seconds % 3600 === 0) return `${seconds / 3600} hour${seconds === 3600 ? '' : 's'}`;
  if (seconds % 60 === 0) return `${seconds / 60} minutes`;
  return `${seconds} seconds`;
}
