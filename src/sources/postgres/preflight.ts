/**
 * Preflight: everything a PostgreSQL source needs from the server, checked before anything is
 * created, each problem with the fix (DESIGN.md: "messages say what to do").
 *
 *   wal_level = logical                  set wal_level = logical in postgresql.conf and restart
 *   the user may replicate               ALTER ROLE … WITH REPLICATION (or a superuser)
 *   each table exists, with a key        a primary key, or ALTER TABLE … REPLICA IDENTITY FULL
 *   a free replication slot / sender     raise max_replication_slots / max_wal_senders
 *   the slot is not in use               stop the other consumer (its pid is named)
 *
 * All problems are reported together, so one round of fixes is enough.
 */

import pg from 'pg';
import { pgClient } from './client.ts';
import { DefiniteError, TransientError } from '../../core/index.ts';
import type { PostgresSourceConfig } from './config.ts';

export interface PreflightProblem {
  check: 'wal_level' | 'replication_privilege' | 'table_missing' | 'replica_identity' | 'slots' | 'wal_senders' | 'slot_active' | 'slot_plugin';
  message: string;
  fix: string;
}

export interface PreflightReport {
  serverVersion: string;
  /** Whether the slot and publication exist already (they are created when missing). */
  slotExists: boolean;
  publicationExists: boolean;
  /** The slot's state when it exists (wal_status 'lost': invalidated) and the server's WAL position now. */
  slot?: { walStatus: string | null; confirmedFlush: string | null };
  currentLsn: string;
  problems: PreflightProblem[];
}

export async function preflight(config: PostgresSourceConfig): Promise<PreflightReport> {
  const client = pgClient({ connectionString: config.url });
  try {
    await client.connect();
  } catch (error) {
    throw new TransientError('pg_connect', `source ${config.name}: cannot connect to ${config.displayUrl}: ${(error as Error).message}`, 'check the URL, that PostgreSQL runs and accepts connections from this host (pg_hba.conf)');
  }
  try {
    const problems: PreflightProblem[] = [];
    const setting = async (name: string) => String((await client.query(`SELECT current_setting($1) AS value`, [name])).rows[0].value);
    const serverVersion = await setting('server_version');
    const walLevel = await setting('wal_level');
    if (walLevel !== 'logical') problems.push({ check: 'wal_level', message: `wal_level is '${walLevel}'`, fix: 'set wal_level = logical in postgresql.conf and restart PostgreSQL' });
    const role = (await client.query(`SELECT current_user AS name, rolreplication OR rolsuper AS can FROM pg_roles WHERE rolname = current_user`)).rows[0] as { name: string; can: boolean };
    if (!role.can) problems.push({ check: 'replication_privilege', message: `user "${role.name}" may not replicate`, fix: `run ALTER ROLE "${role.name}" WITH REPLICATION as a superuser` });
    for (const table of config.tables) {
      const found = (
        await client.query(
          `SELECT c.relreplident AS identity, EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary) AS has_key
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')`,
          [table.schema, table.name],
        )
      ).rows[0] as { identity: string; has_key: boolean } | undefined;
      const qualified = `${table.schema}.${table.name}`;
      if (!found) {
        problems.push({ check: 'table_missing', message: `table ${qualified} does not exist`, fix: `create it, or remove it from WITH (tables = …)` });
        continue;
      }
      // Updates and deletes must say which row they change: the primary key (identity 'd'),
      // a unique index ('i') or the whole old row ('f'). 'n', or 'd' without a key, says nothing.
      if (found.identity === 'n' || (found.identity === 'd' && !found.has_key)) {
        problems.push({ check: 'replica_identity', message: `table ${qualified} has ${found.identity === 'n' ? 'REPLICA IDENTITY NOTHING' : 'no primary key'}: its updates and deletes would not say which row they change`, fix: `add a primary key, or run ALTER TABLE ${qualified} REPLICA IDENTITY FULL` });
      }
    }
    const slots = (await client.query(`SELECT slot_name, plugin, active, active_pid, wal_status, confirmed_flush_lsn::text AS confirmed_flush FROM pg_replication_slots`)).rows as Array<{ slot_name: string; plugin: string | null; active: boolean; active_pid: number | null; wal_status: string | null; confirmed_flush: string | null }>;
    const ours = slots.find((s) => s.slot_name === config.slot);
    if (ours) {
      if (ours.plugin !== 'pgoutput') problems.push({ check: 'slot_plugin', message: `replication slot "${config.slot}" uses ${ours.plugin ?? 'no plugin (a physical slot)'}, not pgoutput`, fix: `name another slot in WITH (slot = …), or drop it: SELECT pg_drop_replication_slot('${config.slot}')` });
      if (ours.active) problems.push({ check: 'slot_active', message: `replication slot "${config.slot}" is in use by process ${ours.active_pid}`, fix: `stop the other consumer (SELECT pg_terminate_backend(${ours.active_pid}) if it is a leftover), or name another slot in WITH (slot = …)` });
    } else {
      const maxSlots = Number(await setting('max_replication_slots'));
      if (slots.length >= maxSlots) problems.push({ check: 'slots', message: `all ${maxSlots} replication slots are taken`, fix: 'raise max_replication_slots in postgresql.conf and restart PostgreSQL, or drop an unused slot' });
    }
    const maxSenders = Number(await setting('max_wal_senders'));
    const senders = Number((await client.query(`SELECT count(*) AS n FROM pg_stat_replication`)).rows[0].n);
    if (senders >= maxSenders) problems.push({ check: 'wal_senders', message: `all ${maxSenders} WAL senders are busy`, fix: 'raise max_wal_senders in postgresql.conf and restart PostgreSQL' });
    const publicationExists = (await client.query(`SELECT 1 FROM pg_publication WHERE pubname = $1`, [config.publication])).rowCount === 1;
    const currentLsn = String((await client.query(`SELECT pg_current_wal_lsn()::text AS lsn`)).rows[0].lsn);
    return { serverVersion, slotExists: ours !== undefined, publicationExists, problems, currentLsn, ...(ours ? { slot: { walStatus: ours.wal_status, confirmedFlush: ours.confirmed_flush } } : {}) };
  } finally {
    await client.end().catch(() => {});
  }
}

/** The report's problems as one error, or nothing when there are none. */
export function preflightError(config: PostgresSourceConfig, report: PreflightReport): DefiniteError | undefined {
  if (report.problems.length === 0) return undefined;
  const lines = report.problems.map((p) => `  - ${p.message}: ${p.fix}`).join('\n');
  return new DefiniteError('pg_preflight', `source ${config.name} (${config.displayUrl}) cannot capture changes yet:\n${lines}`, 'fix these on the PostgreSQL server, then start again');
}
