/**
 * The initial snapshot, consistent with the slot's starting point: the slot is created with an
 * exported snapshot (`CREATE_REPLICATION_SLOT … LOGICAL pgoutput (SNAPSHOT 'export')`), and the
 * tables are read inside a REPEATABLE READ transaction that imports it. Every change committed
 * after the slot's consistent point then arrives through replication; none before it does.
 *
 * Why an exported snapshot rather than DBLog-style chunks with watermarks: it is exact by
 * construction (PostgreSQL guarantees the snapshot and the slot's start agree), takes no locks
 * that block writers, and needs no watermark table in the user's database.
 *
 * Tables are read in primary-key order, and each chunk records its last key, so a snapshot
 * interrupted by a crash resumes after it (the exported snapshot died with its connection): the
 * rest is read as of a later moment, and the slot — still at the consistent point — replays every
 * change since, which brings those rows back in line (changes are applied by key, so replaying
 * one the later read already shows changes nothing in the end).
 */

import pg from 'pg';
import { pgClient, transient } from './client.ts';
import { DefiniteError, TransientError, type Row } from '../../core/index.ts';
import { quoteIdentifier, quoteLiteral } from '../../sql/index.ts';
import type { PostgresSourceConfig } from './config.ts';
import { mapColumn, readValue, UNCHANGED, type ColumnMapping } from './schema.ts';
import { parseLsn } from './pgoutput.ts';

export interface SlotSnapshot {
  /** Replication starts here: the snapshot holds everything committed before it. */
  consistentPoint: bigint;
  snapshotName: string;
  /** The server's system identifier and timeline (IDENTIFY_SYSTEM): a log continues only on the same. */
  systemId: string;
  timeline: number;
  /** Keeps the snapshot alive; close it once the tables are read. */
  connection: pg.Client;
}

export async function createSlotWithSnapshot(config: PostgresSourceConfig): Promise<SlotSnapshot> {
  const connection = pgClient({ connectionString: config.url, replication: 'database' } as pg.ClientConfig);
  await connection.connect();
  try {
    const identity = (await connection.query('IDENTIFY_SYSTEM')).rows[0] as { systemid: string; timeline: string | number };
    const result = await connection.query(`CREATE_REPLICATION_SLOT ${quoteIdentifier(config.slot)} LOGICAL pgoutput (SNAPSHOT 'export')`);
    const row = result.rows[0] as { consistent_point: string; snapshot_name: string };
    return { consistentPoint: parseLsn(row.consistent_point), snapshotName: row.snapshot_name, systemId: String(identity.systemid), timeline: Number(identity.timeline), connection };
  } catch (error) {
    await connection.end().catch(() => {});
    if (transient(error as Error, config.name) instanceof TransientError) throw transient(error as Error, config.name);
    throw new DefiniteError('pg_slot_create', `source ${config.name}: the replication slot "${config.slot}" could not be created: ${(error as Error).message}`, 'check the preflight problems (wal_level, privileges, max_replication_slots)');
  }
}

export interface SnapshotChunk {
  table: string;
  columns: ColumnMapping[];
  rows: Row[];
  /** Rows read of this table so far, and PostgreSQL's estimate of its size. */
  done: number;
  estimated: number;
  /** The primary key of the chunk's last row, as text (where a resumed read continues). */
  after?: string[];
  /** This chunk is the table's last. */
  complete: boolean;
}

/** Where an interrupted snapshot continues: tables already read, and the table read up to a key. */
export interface SnapshotResume {
  skip: Set<string>;
  table?: string;
  after?: string[];
  done?: number;
}

/**
 * Reads every table of the source, in primary-key order, in chunks of about `chunkRows` rows: as
 * of the exported snapshot `snapshotName`, or (resuming, without one) as of now.
 */
export async function* readSnapshot(config: PostgresSourceConfig, snapshotName: string | undefined, resume?: SnapshotResume, chunkRows = 10_000): AsyncGenerator<SnapshotChunk> {
  // Values as PostgreSQL prints them: schema.ts reads each as its column's type.
  const client = pgClient({ connectionString: config.url, types: { getTypeParser: () => (value: string) => value } as unknown as pg.CustomTypesConfig });
  await client.connect();
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    if (snapshotName !== undefined) await client.query(`SET TRANSACTION SNAPSHOT ${quoteLiteral(snapshotName)}`);
    for (const table of config.tables) {
      const qualified = `${quoteIdentifier(table.schema)}.${quoteIdentifier(table.name)}`;
      const name = `${table.schema}.${table.name}`;
      if (resume?.skip.has(name)) continue;
      const keyNames = (
        await client.query(
          `SELECT a.attname AS name FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n) JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum WHERE i.indrelid = $1::regclass AND i.indisprimary ORDER BY k.n`,
          [qualified],
        )
      ).rows.map((r: { name: string }) => r.name);
      const keys = new Set(keyNames);
      const estimated = Math.max(0, Number((await client.query(`SELECT reltuples::bigint AS n FROM pg_class WHERE oid = $1::regclass`, [qualified])).rows[0].n));
      const keyList = keyNames.map(quoteIdentifier).join(', ');
      const continuing = resume?.table === name && resume.after !== undefined && keyNames.length === resume.after.length;
      const where = continuing ? ` WHERE (${keyList}) > (${keyNames.map((_, i) => `$${i + 1}`).join(', ')})` : '';
      const order = keyNames.length > 0 ? ` ORDER BY ${keyList}` : '';
      await client.query(`DECLARE sluice_snapshot NO SCROLL CURSOR FOR SELECT * FROM ONLY ${qualified}${where}${order}`, continuing ? resume.after : []);
      let done = continuing ? (resume.done ?? 0) : 0;
      let first = true;
      for (;;) {
        const result = await client.query(`FETCH ${chunkRows} FROM sluice_snapshot`);
        const columns = result.fields.map((field) => mapColumn({ key: keys.has(field.name), name: field.name, typeOid: field.dataTypeID, typeModifier: field.dataTypeModifier }));
        const rows: Row[] = result.rows.map((values: Record<string, string | null>) =>
          columns.map((column) => {
            const text = values[column.name];
            const value = readValue(text === null || text === undefined ? { kind: 'null' } : { kind: 'text', value: text }, column, name);
            return value === UNCHANGED ? null : value;
          }),
        );
        done += rows.length;
        const complete = result.rows.length < chunkRows;
        const lastRow = result.rows.at(-1) as Record<string, string> | undefined;
        const after = lastRow && keyNames.length > 0 ? keyNames.map((k) => lastRow[k]!) : undefined;
        if (rows.length > 0 || first) yield { table: name, columns, rows, done, estimated, complete, ...(after ? { after } : {}) };
        first = false;
        if (complete) break;
      }
      await client.query('CLOSE sluice_snapshot');
    }
    await client.query('COMMIT');
  } finally {
    await client.end().catch(() => {});
  }
}

/** The source's tables as PostgreSQL describes them now: columns in order, types, primary key. */
export async function describeTables(config: PostgresSourceConfig): Promise<Array<{ name: string; columns: ColumnMapping[] }>> {
  const client = pgClient({ connectionString: config.url });
  try {
    await client.connect();
  } catch (error) {
    throw new DefiniteError('pg_connect', `source ${config.name}: cannot connect to ${config.displayUrl}: ${(error as Error).message}`, 'the pipeline needs the source database to read its tables\' columns: check the URL and that PostgreSQL runs');
  }
  try {
    const out: Array<{ name: string; columns: ColumnMapping[] }> = [];
    for (const table of config.tables) {
      const qualified = `${quoteIdentifier(table.schema)}.${quoteIdentifier(table.name)}`;
      const exists = (await client.query(`SELECT to_regclass($1) AS oid`, [qualified])).rows[0].oid;
      if (!exists) throw new DefiniteError('pg_table_missing', `source ${config.name}: table ${table.schema}.${table.name} does not exist`, 'create it, or remove it from WITH (tables = …)');
      const rows = (
        await client.query(
          `SELECT a.attname AS name, a.atttypid AS type, a.atttypmod AS modifier,
                  EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = a.attrelid AND i.indisprimary AND a.attnum = ANY(i.indkey)) AS key
             FROM pg_attribute a WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
          [qualified],
        )
      ).rows as Array<{ name: string; type: number; modifier: number; key: boolean }>;
      out.push({ name: `${table.schema}.${table.name}`, columns: rows.map((r) => mapColumn({ key: r.key, name: r.name, typeOid: Number(r.type), typeModifier: Number(r.modifier) })) });
    }
    return out;
  } finally {
    await client.end().catch(() => {});
  }
}
