/**
 * A `pg` client for the PostgreSQL source. A connection that dies while idle (PostgreSQL
 * restarted) makes `pg` emit 'error'; without a listener that is an uncaught exception, which
 * would stop the whole process. The failure reaches the capture anyway through the query it is
 * waiting for (or the next one), so the event itself is only listened to.
 */
import pg from 'pg';
import { DefiniteError, TransientError } from '../../core/index.ts';

export function pgClient(config: pg.ClientConfig): pg.Client {
  const client = new pg.Client(config);
  client.on('error', () => {});
  return client;
}

/**
 * `error` as a TransientError when it is the connection's or the server's going away (network
 * errors, "Connection terminated", SQLSTATE classes 08 connection exception, 57 operator
 * intervention such as a shutdown, 53 insufficient resources); as it is otherwise.
 */
export function transient(error: Error, source: string): Error {
  if (error instanceof DefiniteError || error instanceof TransientError) return error;
  const code = String((error as { code?: unknown }).code ?? '');
  const connection = /^(08|57|53)/.test(code) || /^E(CONNREFUSED|CONNRESET|PIPE|TIMEDOUT|HOSTUNREACH|NETUNREACH)$/.test(code) || /Connection terminated|not queryable|connection error|the database system is (starting up|shutting down|in recovery)/i.test(error.message);
  if (!connection) return error;
  return new TransientError('pg_connection', `source ${source}: the connection to PostgreSQL failed: ${error.message}`, 'Sluice reconnects and resumes where it stopped; check that PostgreSQL runs if this lasts', { cause: error });
}
