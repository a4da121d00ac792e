/**
 * `CREATE SOURCE name FROM MYSQL 'url' WITH (tables, server_id)`: the options, checked, with
 * Sluice's defaults. For MySQL 8 and MariaDB alike (`mysql://` or `mariadb://`).
 *
 *   tables     required: 'shop.products, orders' (a table without a database is in the URL's
 *              database: mysql://user@host:3306/shop); names may be `quoted` with backticks
 *   server_id  default: a number derived from the source name (stable, 2..4294967295); the id
 *              Sluice's binlog connection uses, which must differ from the server's own and from
 *              every other replica's
 *   snapshot   how the first copy of the tables is read, without a global read lock:
 *              'consistent'  one transaction WITH CONSISTENT SNAPSHOT, whose binlog position the
 *                            server gives (MariaDB); nothing is written to the server
 *              'watermark'   DBLog: primary-key chunks, each read between a low and a high
 *                            watermark Sluice writes to watermark_table, interleaved with the
 *                            binlog (MySQL 8 and MariaDB; no long transaction)
 *              'auto'        (default) consistent where the server offers it, else watermark
 *   watermark_table  default: sluice_watermark in the first table's database; must exist:
 *              CREATE TABLE db.sluice_watermark (source varchar(64) PRIMARY KEY, mark varchar(64) NOT NULL)
 *   chunk_rows rows per snapshot chunk, default 10000
 *
 * The URL may hold `${env:NAME}` or `${file:PATH}` for its password; it is never printed (see
 * redactUrl).
 */

import { DefiniteError, redactUrl, resolveSecrets } from '../../core/index.ts';

export interface MysqlSourceConfig {
  name: string;
  /** The connection URL with secrets resolved: never print it (use `displayUrl`). */
  url: string;
  displayUrl: string;
  /** The database the URL names ('' when it names none). */
  database: string;
  tables: Array<{ schema: string; name: string }>;
  /** The replica server id of Sluice's binlog connection. */
  serverId: number;
  snapshot: 'auto' | 'consistent' | 'watermark';
  /** Where watermarks are written (snapshot 'watermark'). */
  watermarkTable: { schema: string; name: string };
  chunkRows: number;
}

const OPTIONS = new Set(['tables', 'server_id', 'snapshot', 'watermark_table', 'chunk_rows']);
const SNAPSHOT_MODES = ['auto', 'consistent', 'watermark'] as const;
const MAX_SERVER_ID = 4294967295; // 2^32 - 1
/** An unquoted MySQL identifier: letters, digits, _ and $ (and any non-ASCII letter), at most 64. */
const BARE_IDENTIFIER = /^[A-Za-z0-9_$\u0080-\uFFFF]{1,64}$/;

export function mysqlConfig(name: string, url: string, options: ReadonlyMap<string, string>): MysqlSourceConfig {
  for (const option of options.keys()) {
    if (!OPTIONS.has(option)) throw new DefiniteError('source_option', `source ${name}: FROM MYSQL has no option "${option}"`, 'its options are tables, server_id, snapshot, watermark_table and chunk_rows');
  }
  const shown = hidePassword(url);
  const example = "write it as 'mysql://user:${env:MYSQL_PASSWORD}@host:3306/database'";
  if (!/^(mysql|mariadb):\/\//i.test(url)) throw new DefiniteError('source_url', `source ${name}: "${shown}" is not a mysql:// URL`, example);
  const resolved = resolveSecrets(url, `source ${name}`, encodeURIComponent);
  let parsed: URL;
  try {
    parsed = new URL(resolved);
  } catch {
    throw new DefiniteError('source_url', `source ${name}: "${shown}" is not a valid URL`, `${example} (a password with special characters can come from \${env:…} or \${file:…}: it is encoded for you)`);
  }
  if (parsed.hostname === '') throw new DefiniteError('source_url', `source ${name}: "${shown}" names no host`, example);
  let database: string;
  try {
    database = decodeURIComponent(parsed.pathname.replace(/^\//, '').replace(/\/$/, ''));
  } catch {
    throw new DefiniteError('source_url', `source ${name}: the database in "${shown}" is not well encoded`, example);
  }
  if (database.includes('/')) throw new DefiniteError('source_url', `source ${name}: "${shown}" has more than a database in its path`, example);

  const tablesText = options.get('tables');
  if (!tablesText || tablesText.trim() === '') throw new DefiniteError('source_option', `source ${name}: which tables to capture is not said`, "add WITH (tables = 'shop.products, shop.orders')");
  const tables = splitList(tablesText).map((entry) => {
    const parts = identifierParts(entry);
    if (!parts || parts.length > 2) throw new DefiniteError('source_option', `source ${name}: "${entry}" is not a table name`, "list tables as database.table, separated by commas: tables = 'shop.products, shop.orders' (quote unusual names with backticks: `my-db`.`my-table`)");
    if (parts.length === 2) return { schema: parts[0]!, name: parts[1]! };
    if (database === '') throw new DefiniteError('source_option', `source ${name}: table "${entry}" names no database, and the URL names none either`, `write it as database.table (tables = 'shop.${parts[0]}'), or put the database in the URL: mysql://user@host:3306/shop`);
    return { schema: database, name: parts[0]! };
  });

  const serverIdText = options.get('server_id');
  let serverId: number;
  if (serverIdText === undefined) serverId = defaultServerId(name);
  else {
    const text = serverIdText.trim();
    serverId = /^[0-9]{1,10}$/.test(text) ? Number(text) : NaN;
    if (!(serverId >= 1 && serverId <= MAX_SERVER_ID)) {
      throw new DefiniteError('source_option', `source ${name}: server_id "${serverIdText}" is not a whole number from 1 to ${MAX_SERVER_ID}`, `give a number no other replica of the server uses (server_id = '${defaultServerId(name)}'), or leave server_id out to have one derived from the source name`);
    }
  }
  const snapshotText = (options.get('snapshot') ?? 'auto').trim().toLowerCase();
  const snapshot = SNAPSHOT_MODES.find((mode) => mode === snapshotText);
  if (!snapshot) throw new DefiniteError('source_option', `source ${name}: snapshot "${options.get('snapshot')}" is not a snapshot mode`, "write snapshot = 'auto' (the default), 'consistent' (MariaDB) or 'watermark'");
  const watermarkText = options.get('watermark_table');
  let watermarkTable = { schema: tables[0]!.schema, name: 'sluice_watermark' };
  if (watermarkText !== undefined) {
    const parts = identifierParts(watermarkText.trim());
    if (!parts || parts.length > 2 || (parts.length === 1 && database === '')) throw new DefiniteError('source_option', `source ${name}: watermark_table "${watermarkText}" is not a table name`, "write it as database.table: watermark_table = 'shop.sluice_watermark'");
    watermarkTable = parts.length === 2 ? { schema: parts[0]!, name: parts[1]! } : { schema: database, name: parts[0]! };
  }
  if (tables.some((t) => t.schema === watermarkTable.schema && t.name === watermarkTable.name)) throw new DefiniteError('source_option', `source ${name}: the watermark table ${watermarkTable.schema}.${watermarkTable.name} is also a captured table`, 'give the watermarks a table of their own');
  const chunkText = options.get('chunk_rows');
  const chunkRows = chunkText === undefined ? 10_000 : /^\s*[0-9]{1,9}\s*$/.test(chunkText) ? Number(chunkText) : NaN;
  if (!(chunkRows >= 1)) throw new DefiniteError('source_option', `source ${name}: chunk_rows "${chunkText}" is not a whole number of rows above 0`, "write chunk_rows = '10000' (the default), or leave it out");
  return { name, url: resolved, displayUrl: shown, database, tables, serverId, snapshot, watermarkTable, chunkRows };
}

/**
 * The URL with its password as ***: redactUrl, and also when the password holds a / or an @ that
 * is not percent-encoded (or a `${file:/path}`), which redactUrl leaves as it is. The user part
 * ends at the last @.
 */
function hidePassword(url: string): string {
  const redacted = redactUrl(url);
  const match = /^([a-z][a-z0-9+.-]*:\/\/)(.*)@([^@]*)$/is.exec(url);
  if (!match || !match[2]!.includes(':')) return redacted;
  return `${match[1]}${match[2]!.slice(0, match[2]!.indexOf(':'))}:***@${match[3]}`;
}

/**
 * The server id a source uses when none is given: FNV-1a of its name, mapped onto 2..2^32-1 — the
 * same for the same name on every start, and never 1, the id servers most often have themselves.
 */
export function defaultServerId(name: string): number {
  let hash = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(`sluice:${name}`)) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return 2 + (hash % (MAX_SERVER_ID - 1));
}

/** `a, `b,c`, d` → ['a', '`b,c`', 'd']: commas inside backticks do not separate. */
function splitList(text: string): string[] {
  const entries: string[] = [];
  let current = '';
  let quoted = false;
  for (const char of text) {
    if (char === '`') quoted = !quoted;
    if (char === ',' && !quoted) {
      entries.push(current.trim());
      current = '';
    } else current += char;
  }
  entries.push(current.trim());
  return entries;
}

/** `shop.products`, `` `my-db`.`t` `` → the names; undefined when it is not a dotted name. */
function identifierParts(entry: string): string[] | undefined {
  const parts: string[] = [];
  let at = 0;
  while (true) {
    if (entry[at] === '`') {
      let name = '';
      at++;
      while (true) {
        if (at >= entry.length) return undefined;
        if (entry[at] === '`') {
          if (entry[at + 1] !== '`') break;
          at++;
        }
        name += entry[at++];
      }
      at++; // the closing backtick
      if (name === '' || name.length > 64 || name.endsWith(' ')) return undefined;
      parts.push(name);
    } else {
      const match = /^[^.`]*/.exec(entry.slice(at))![0];
      if (!BARE_IDENTIFIER.test(match)) return undefined;
      parts.push(match);
      at += match.length;
    }
    if (at === entry.length) return parts;
    if (entry[at] !== '.') return undefined;
    at++;
  }
}
