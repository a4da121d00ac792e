/**
 * A `pg` client for the PostgreSQL source. A connection that dies while idle (PostgreSQL
 * restarted) makes `pg` emit 'error'; without a listener that is an uncaught exception, which
 * would stop the whole process. The failure reaches the capture anyway through the query it is
 * waiting for (or the next one), so the event itself is only listened to.
 */
import pg from 'pg';

export function pgClient(config: pg.ClientConfig): pg.Client {
  const client = new pg.Client(config);
  client.on('error', () => {});
  return client;
}
