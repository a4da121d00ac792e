/**
 * A logical replication connection: `START_REPLICATION SLOT … LOGICAL` over `pg` in replication
 * mode, pgoutput protocol 2 with streaming of large transactions, decoded message by message.
 *
 *   const stream = await ReplicationStream.start({ url, slot, publication, startLsn, onMessage });
 *   …                                   // onMessage(message, lsn) for every message, in order
 *   stream.confirm(lsn);                // only once everything up to lsn is durable in Sluice's log
 *   await stream.close();
 *
 * Invariants:
 * - The flush position reported to PostgreSQL (which lets it recycle WAL and is where a restart
 *   resumes) only ever moves to what the caller confirmed: nothing is acknowledged ahead of
 *   durability, unlike replication wrappers that acknowledge on receipt.
 * - Keepalives are answered; a status update is also sent every `statusIntervalMs`. When
 *   everything received has been confirmed, a keepalive's WAL end is confirmed too, so an idle
 *   database (or one whose changes are all outside the publication) does not pin WAL.
 * - Messages are handed over in the order PostgreSQL sent them; `pause()` / `resume()` apply
 *   backpressure to the socket.
 */

import pg from 'pg';
import { pgClient } from './client.ts';
import { DefiniteError, TransientError } from '../../core/index.ts';
import { quoteIdentifier, quoteLiteral } from '../../sql/index.ts';
import { formatLsn, PgOutputDecoder, POSTGRES_EPOCH_MICROS, type PgOutputMessage } from './pgoutput.ts';

export interface ReplicationOptions {
  /** A postgres:// URL; `replication=database` is added. */
  url: string;
  slot: string;
  publication: string;
  /** Where to start (PostgreSQL starts at the slot's confirmed position if that is later). */
  startLsn: bigint;
  /** Every decoded message with the WAL position of the XLogData that carried it. */
  onMessage: (message: PgOutputMessage, lsn: bigint) => void;
  /** The connection failed or ended (not called after close()). */
  onError?: (error: Error) => void;
  /** How often a status update is sent without being asked (default 10 s). */
  statusIntervalMs?: number;
}

export class ReplicationStream {
  readonly systemId: string;
  readonly timeline: number;
  readonly #client: pg.Client;
  readonly #decoder = new PgOutputDecoder();
  readonly #options: ReplicationOptions;
  #received = 0n;
  #confirmed = 0n;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  private constructor(client: pg.Client, options: ReplicationOptions, systemId: string, timeline: number) {
    this.#client = client;
    this.#options = options;
    this.systemId = systemId;
    this.timeline = timeline;
  }

  static async start(options: ReplicationOptions): Promise<ReplicationStream> {
    const client = pgClient({ connectionString: options.url, replication: 'database' } as pg.ClientConfig);
    try {
      await client.connect();
    } catch (error) {
      throw new TransientError('pg_connect', `cannot connect to PostgreSQL for replication: ${(error as Error).message}`, 'check the URL, that the server runs, and that pg_hba.conf allows a replication connection for this user');
    }
    try {
      const identity = (await client.query('IDENTIFY_SYSTEM')).rows[0] as { systemid: string; timeline: string | number };
      const stream = new ReplicationStream(client, options, String(identity.systemid), Number(identity.timeline));
      stream.#confirmed = options.startLsn;
      client.connection.on('copyData', (message: { chunk: Buffer }) => stream.#receive(message.chunk));
      client.on('error', (error: Error) => stream.#fail(error));
      client.on('end', () => stream.#fail(new TransientError('pg_replication_ended', 'the replication connection ended', 'PostgreSQL restarted or the connection dropped: Sluice reconnects and resumes from the last confirmed position')));
      const started = new Promise<void>((resolve, reject) => {
        client.connection.once('replicationStart', () => resolve());
        client.connection.once('errorMessage', (error: Error) => reject(error));
      });
      const command = `START_REPLICATION SLOT ${quoteIdentifier(options.slot)} LOGICAL ${formatLsn(options.startLsn)} (proto_version '2', streaming 'on', messages 'true', publication_names ${quoteLiteral(quoteIdentifier(options.publication))})`;
      // The query stays active while the stream runs; its end (or failure) is the stream's.
      client.query(command).catch((error: Error) => stream.#fail(error));
      try {
        await started;
      } catch (error) {
        throw new DefiniteError('pg_replication_start', `PostgreSQL refused to start replication from slot "${options.slot}": ${(error as Error).message}`, 'check the slot exists, uses the pgoutput plugin, is not active elsewhere, and that the publication exists');
      }
      stream.#timer = setInterval(() => stream.#sendStatus(false), options.statusIntervalMs ?? 10_000);
      stream.#timer.unref();
      return stream;
    } catch (error) {
      await client.end().catch(() => {});
      throw error;
    }
  }

  /** The flush position PostgreSQL has been told. */
  get confirmed(): bigint {
    return this.#confirmed;
  }

  /** The WAL position of the last message received. */
  get received(): bigint {
    return this.#received;
  }

  /** Everything up to `lsn` is durable: PostgreSQL may recycle it, and a restart starts after it. */
  confirm(lsn: bigint): void {
    if (lsn <= this.#confirmed) return;
    this.#confirmed = lsn;
    this.#sendStatus(false);
  }

  pause(): void {
    this.#client.connection.stream.pause();
  }

  resume(): void {
    this.#client.connection.stream.resume();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    this.#sendStatus(false);
    await this.#client.end().catch(() => {});
  }

  #receive(chunk: Buffer): void {
    if (this.#closed) return;
    try {
      const kind = chunk[0];
      if (kind === 0x77) {
        // XLogData: 'w', Int64 WAL start, Int64 WAL end, Int64 send time, the message.
        const lsn = chunk.readBigUInt64BE(1);
        if (lsn > this.#received) this.#received = lsn;
        this.#options.onMessage(this.#decoder.decode(chunk.subarray(25)), lsn);
      } else if (kind === 0x6b) {
        // Primary keepalive: 'k', Int64 WAL end, Int64 send time, Byte1 reply requested.
        const walEnd = chunk.readBigUInt64BE(1);
        // Nothing received is waiting to be made durable: the server's position can be
        // confirmed, so an idle slot does not hold WAL back.
        if (this.#received <= this.#confirmed && walEnd > this.#confirmed) this.#confirmed = walEnd;
        if (chunk[17] === 1) this.#sendStatus(false);
      }
    } catch (error) {
      this.#fail(error as Error);
    }
  }

  /** Standby status update: 'r', written, flushed, applied (Int64 each), client time, reply requested. */
  #sendStatus(replyRequested: boolean): void {
    if (this.#client.connection.stream.destroyed) return;
    const message = Buffer.alloc(34);
    message[0] = 0x72;
    message.writeBigUInt64BE(this.#confirmed, 1);
    message.writeBigUInt64BE(this.#confirmed, 9);
    message.writeBigUInt64BE(this.#confirmed, 17);
    message.writeBigInt64BE(BigInt(Date.now()) * 1000n - POSTGRES_EPOCH_MICROS, 25);
    message[33] = replyRequested ? 1 : 0;
    try {
      // pg's Connection sends CopyData with sendCopyFromChunk (missing from its type declarations).
      (this.#client.connection as unknown as { sendCopyFromChunk(chunk: Buffer): void }).sendCopyFromChunk(message);
    } catch {
      // The connection is going away: its end is reported by #fail.
    }
  }

  #fail(error: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    this.#options.onError?.(error);
    void this.#client.end().catch(() => {});
  }
}
