/**
 * MySQL and MariaDB columns as Sluice columns: each column type a source table uses is given a
 * Sluice type, and each value the binlog carries (binlog.ts) is read as a Sluice value of it,
 * exactly.
 *
 *   tinyint, smallint (signed), year            smallint
 *   tinyint/smallint unsigned, mediumint, int   integer
 *   int unsigned, bigint                        bigint
 *   bigint unsigned                             numeric(20,0) (up to 18446744073709551615)
 *   decimal(p,s)                                numeric(p,s)
 *   float, double                               real, double
 *   date, datetime, timestamp                   date, timestamp, timestamptz (the binlog's is UTC)
 *   time                                        interval ('-838:59:58.99')
 *   char(n), varchar(n)                         varchar(n) (MySQL drops CHAR's trailing spaces)
 *   text types, enum, set                       text (ENUM and SET as their member names)
 *   json (MariaDB: longtext CHECK json_valid)   jsonb
 *   binary, varbinary, blobs, geometry          bytea
 *   bit(n)                                      bigint
 *
 * Invariant: a value that does not read as its column's type is an error naming the column and
 * the value, never a silently different value.
 *
 * Schema history: each row event comes after a table map that says the table's columns as they
 * were when the row was written (names, wire types, signedness, key: binlog_row_metadata=FULL).
 * `columnsAt` reads the row with those: a column the server describes now is used where the
 * table map agrees with it (same name, a type of the same kind), and one derived from the table map
 * where it does not (the row predates an ALTER, or follows one not yet described). So rows before
 * and after an ALTER TABLE (ADD, DROP, MODIFY, RENAME COLUMN) each read as they were written.
 */

import mysql from 'mysql2/promise';
import { canonicalInteger, Decimal, DefiniteError, type Value } from '../../core/index.ts';
import { INTEGER_RANGES, inputValue, type SqlType } from '../../sql/index.ts';
import { TYPE, type BinlogColumn, type RawValue, type TableMap } from './binlog.ts';

export interface MysqlColumn {
  name: string;
  type: SqlType;
  key: boolean;
  /** The column's type as the server describes it (COLUMN_TYPE), for messages. */
  native: string;
}

export interface InformationSchemaColumn {
  name: string;
  dataType: string;
  columnType: string;
  precision: number | null;
  scale: number | null;
  length: number | null;
  key: boolean;
  /** MariaDB's JSON is longtext with a json_valid CHECK constraint. */
  json: boolean;
}

const type = (kind: SqlType['kind'], ...modifiers: number[]): SqlType => ({ kind, modifiers });

export function mapMysqlColumn(column: InformationSchemaColumn): MysqlColumn {
  const unsigned = /\bunsigned\b/i.test(column.columnType);
  const data = column.dataType.toLowerCase();
  let mapped: SqlType;
  switch (data) {
    case 'tinyint':
      mapped = type('smallint');
      break;
    case 'smallint':
      mapped = unsigned ? type('integer') : type('smallint');
      break;
    case 'mediumint':
    case 'int':
    case 'integer':
      mapped = data !== 'mediumint' && unsigned ? type('bigint') : type('integer');
      break;
    case 'bigint':
      mapped = unsigned ? type('numeric', 20, 0) : type('bigint');
      break;
    case 'decimal':
    case 'numeric':
      mapped = type('numeric', column.precision ?? 10, column.scale ?? 0);
      break;
    case 'float':
      mapped = type('real');
      break;
    case 'double':
    case 'real':
      mapped = type('double');
      break;
    case 'year':
      mapped = type('smallint');
      break;
    case 'date':
      mapped = type('date');
      break;
    case 'datetime':
      mapped = type('timestamp');
      break;
    case 'timestamp':
      mapped = type('timestamptz');
      break;
    case 'time':
      mapped = type('interval');
      break;
    case 'char':
    case 'varchar':
      mapped = column.length !== null ? type('varchar', column.length) : type('text');
      break;
    case 'json':
      mapped = type('jsonb');
      break;
    case 'tinytext':
    case 'text':
    case 'mediumtext':
    case 'longtext':
      mapped = column.json ? type('jsonb') : type('text');
      break;
    case 'enum':
    case 'set':
      mapped = type('text');
      break;
    case 'bit':
      mapped = type('bigint');
      break;
    case 'binary':
    case 'varbinary':
    case 'tinyblob':
    case 'blob':
    case 'mediumblob':
    case 'longblob':
    case 'geometry':
    case 'point':
    case 'linestring':
    case 'polygon':
      mapped = type('bytea');
      break;
    default:
      mapped = type('text');
  }
  return { name: column.name, type: mapped, key: column.key, native: column.columnType };
}

/** A decimal of the type's scale whose digits fit its precision. */
function fits(value: Decimal, type: SqlType): boolean {
  const [precision, scale = 0] = type.modifiers;
  if (precision === undefined || value.scale !== scale) return false;
  const bound = (BOUNDS[precision] ??= 10n ** BigInt(precision));
  return value.mantissa < bound && value.mantissa > -bound;
}

const BOUNDS: bigint[] = [];

/**
 * `-12.50` as a Decimal without parsing it as free text, when it has exactly the type's scale and
 * fits its precision (as a value from a column of that type does); otherwise undefined.
 */
function decimalOfScale(text: string, type: SqlType): Decimal | undefined {
  const [precision, scale = 0] = type.modifiers;
  if (precision === undefined) return undefined;
  const dot = text.indexOf('.');
  if ((dot < 0 ? 0 : text.length - dot - 1) !== scale) return undefined;
  const negative = text.charCodeAt(0) === 45; // -
  const whole = (dot < 0 ? text.length : dot) - (negative ? 1 : 0);
  if (whole < 1 || whole > Math.max(1, precision - scale)) return undefined;
  if (precision === scale && text[negative ? 1 : 0] !== '0') return undefined; // decimal(2,2): below 1
  const digits = dot < 0 ? text : text.slice(0, dot) + text.slice(dot + 1);
  if (!/^-?\d+$/.test(digits)) return undefined;
  return new Decimal(BigInt(digits), scale);
}

/** Integer kinds' ranges as numbers, where a number in them is the Sluice value itself (canonicalInteger). */
const NUMBER_RANGES: Partial<Record<SqlType['kind'], [number, number]>> = Object.fromEntries(
  Object.entries(INTEGER_RANGES).map(([kind, [min, max]]) => [kind, [Math.max(Number(min), Number.MIN_SAFE_INTEGER), Math.min(Number(max), Number.MAX_SAFE_INTEGER)]]),
);

/** One binlog value as a Sluice value of its column's type. */
export function mysqlValue(raw: RawValue, column: MysqlColumn, where: string): Value {
  if (raw === null) return null;
  // The common cases without a text round trip: integers in range, doubles.
  if (typeof raw === 'number') {
    const kind = column.type.kind;
    const range = NUMBER_RANGES[kind];
    if (range && Number.isSafeInteger(raw) && raw >= range[0] && raw <= range[1]) return raw === 0 ? 0 : raw;
    if (kind === 'double') return raw === 0 ? 0 : raw; // -0 reads 0, as its printed form does
    if (kind === 'real') return raw === 0 ? 0 : Math.fround(raw);
  } else if (typeof raw === 'bigint') {
    const range = INTEGER_RANGES[column.type.kind];
    if (range && raw >= range[0] && raw <= range[1]) return canonicalInteger(raw);
  } else if (raw instanceof Decimal) {
    // From the binlog, with its column's scale: itself, when the Sluice column has that scale and room.
    if (column.type.kind === 'numeric' && fits(raw, column.type)) return raw;
    return mysqlValue(raw.toString(), column, where);
  } else if (typeof raw === 'string' && column.type.kind === 'numeric') {
    // A DECIMAL from the binlog has its column's scale already: its digits are the mantissa.
    const fast = decimalOfScale(raw, column.type);
    if (fast) return fast;
  }
  try {
    if (raw instanceof Uint8Array) {
      if (column.type.kind === 'bytea') return inputValue(`\\x${Buffer.from(raw).toString('hex')}`, column.type);
      return inputValue(Buffer.from(raw).toString('utf8'), column.type);
    }
    if (typeof raw === 'string' && (column.type.kind === 'text' || column.type.kind === 'varchar')) return raw;
    if (typeof raw === 'string' && column.type.kind === 'bytea') return inputValue(`\\x${Buffer.from(raw, 'utf8').toString('hex')}`, column.type);
    return inputValue(String(raw), column.type);
  } catch (error) {
    const text = String(raw instanceof Uint8Array ? '(bytes)' : raw);
    throw new DefiniteError('mysql_value', `${where}, column "${column.name}" (${column.native}): ${(error as Error).message} (value ${JSON.stringify(text.length > 60 ? text.slice(0, 60) + '…' : text)})`, `please report this with the column's type: Sluice reads it as ${column.type.kind}`);
  }
}

/** The source's tables as the server describes them now: columns in order, types, primary key. */
export async function describeMysqlTables(url: string, tables: ReadonlyArray<{ schema: string; name: string }>, source: string): Promise<Array<{ name: string; columns: MysqlColumn[] }>> {
  let connection: mysql.Connection;
  try {
    connection = await mysql.createConnection({ uri: url });
  } catch (error) {
    throw new DefiniteError('mysql_connect', `source ${source}: cannot connect: ${(error as Error).message}`, 'the pipeline needs the source database to read its tables\' columns: check the URL and that the server runs');
  }
  try {
    const out: Array<{ name: string; columns: MysqlColumn[] }> = [];
    for (const table of tables) {
      const [rows] = (await connection.query(
        `SELECT COLUMN_NAME AS name, DATA_TYPE AS dataType, COLUMN_TYPE AS columnType, NUMERIC_PRECISION AS \`precision\`, NUMERIC_SCALE AS scale,
                CHARACTER_MAXIMUM_LENGTH AS length, COLUMN_KEY = 'PRI' AS \`key\`
           FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`,
        [table.schema, table.name],
      )) as unknown as [Array<Record<string, unknown>>];
      if (rows.length === 0) throw new DefiniteError('mysql_table_missing', `source ${source}: table ${table.schema}.${table.name} does not exist`, 'create it, or remove it from WITH (tables = …)');
      const json = await jsonColumns(connection, table.schema, table.name);
      out.push({
        name: `${table.schema}.${table.name}`,
        columns: rows.map((r) => mapMysqlColumn({ name: String(r.name), dataType: String(r.dataType), columnType: String(r.columnType), precision: r.precision === null ? null : Number(r.precision), scale: r.scale === null ? null : Number(r.scale), length: r.length === null ? null : Number(r.length), key: Number(r.key) === 1, json: json.has(String(r.name)) })),
      });
    }
    return out;
  } finally {
    await connection.end().catch(() => {});
  }
}

/** Columns with a `json_valid(col)` CHECK constraint (MariaDB's JSON type); none on MySQL. */
async function jsonColumns(connection: mysql.Connection, schema: string, table: string): Promise<Set<string>> {
  try {
    const [rows] = (await connection.query(`SELECT CHECK_CLAUSE AS clause FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?`, [schema, table])) as unknown as [Array<{ clause: string }>];
    const names = new Set<string>();
    for (const { clause } of rows) {
      const match = /^json_valid\(`([^`]+)`\)$/i.exec(String(clause).trim());
      if (match) names.add(match[1]!);
    }
    return names;
  } catch {
    return new Set(); // MySQL before 8.0.16 has no CHECK_CONSTRAINTS (nor MariaDB's JSON alias)
  }
}

/**
 * The columns a row event's values are read with: the table map's, as `described` has them where
 * they agree (see the file's comment), else as the table map says.
 */
export function columnsAt(map: TableMap, described: readonly MysqlColumn[] | undefined): MysqlColumn[] {
  const byName = new Map((described ?? []).map((c) => [c.name, c]));
  return map.columns.map((column, i) => {
    const known = column.name === null ? undefined : byName.get(column.name);
    const derived = mapMysqlColumn(columnInfo(column, i, known));
    if (known && sameKind(known.type.kind, derived.type.kind)) return known.key === column.key || !hasKeyMetadata(map) ? known : { ...known, key: column.key };
    return derived;
  });
}

/** Kinds whose values read alike (a varchar's length aside). */
function sameKind(a: SqlType['kind'], b: SqlType['kind']): boolean {
  const text = (kind: SqlType['kind']) => (kind === 'varchar' || kind === 'text' ? 'text' : kind);
  return text(a) === text(b);
}

function hasKeyMetadata(map: TableMap): boolean {
  return map.columns.some((c) => c.key);
}

/** What information_schema would say of a table map's column (as near as the binlog tells). */
function columnInfo(column: BinlogColumn, index: number, known: MysqlColumn | undefined): InformationSchemaColumn {
  const binary = column.charset === 63;
  const info = (dataType: string, columnType = dataType, extra: Partial<InformationSchemaColumn> = {}): InformationSchemaColumn => ({ name: column.name ?? `column ${index + 1}`, dataType, columnType: column.unsigned ? `${columnType} unsigned` : columnType, precision: null, scale: null, length: null, key: column.key, json: false, ...extra });
  switch (column.real) {
    case TYPE.TINY: return info('tinyint');
    case TYPE.SHORT: return info('smallint');
    case TYPE.INT24: return info('mediumint');
    case TYPE.LONG: return info('int');
    case TYPE.LONGLONG: return info('bigint');
    case TYPE.DECIMAL:
    case TYPE.NEWDECIMAL: return info('decimal', `decimal(${column.meta},${column.scale})`, { precision: column.meta, scale: column.scale });
    case TYPE.FLOAT: return info('float');
    case TYPE.DOUBLE: return info('double');
    case TYPE.YEAR: return info('year');
    case TYPE.DATE:
    case TYPE.NEWDATE: return info('date');
    case TYPE.DATETIME:
    case TYPE.DATETIME2: return info('datetime');
    case TYPE.TIMESTAMP:
    case TYPE.TIMESTAMP2: return info('timestamp');
    case TYPE.TIME:
    case TYPE.TIME2: return info('time');
    case TYPE.BIT: return info('bit', `bit(${column.meta})`);
    case TYPE.ENUM: return info('enum');
    case TYPE.SET: return info('set');
    case TYPE.JSON: return info('json');
    case TYPE.GEOMETRY: return info('geometry');
    case TYPE.VARCHAR:
    case TYPE.VAR_STRING:
    case TYPE.STRING: {
      const chars = column.meta / charsetWidth(column.charset);
      const name = column.real === TYPE.STRING ? (binary ? 'binary' : 'char') : binary ? 'varbinary' : 'varchar';
      return info(name, `${name}(${chars})`, { length: Number.isInteger(chars) ? chars : null });
    }
    default:
      // BLOB types: text unless the binary character set; MariaDB's JSON (longtext) stays JSON.
      return binary || column.charset === undefined ? info('blob') : info('longtext', 'longtext', { json: known?.type.kind === 'jsonb' });
  }
}

/** Bytes per character of a collation id (the common ones; 4 when unknown, as utf8mb4). */
function charsetWidth(collation: number | undefined): number {
  if (collation === undefined || collation === 63) return 1;
  if ([5, 8, 11, 15, 31, 47, 48, 49, 65, 94].includes(collation)) return 1; // latin1, ascii
  if (collation === 33 || collation === 83 || (collation >= 192 && collation <= 215)) return 3; // utf8mb3
  return 4;
}
