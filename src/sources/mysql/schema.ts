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
 */

import mysql from 'mysql2/promise';
import { DefiniteError, type Value } from '../../core/index.ts';
import { inputValue, type SqlType } from '../../sql/index.ts';
import type { RawValue } from './binlog.ts';

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

/** One binlog value as a Sluice value of its column's type. */
export function mysqlValue(raw: RawValue, column: MysqlColumn, where: string): Value {
  if (raw === null) return null;
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
