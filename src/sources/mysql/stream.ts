/**
 * A replica's binlog connection to MySQL or MariaDB: COM_BINLOG_DUMP over `mysql2`, every event
 * handed over raw and decoded by binlog.ts (mysql2 decodes only four event types itself).
 *
 *   const stream = await BinlogStream.start({ url, serverId, file, position, onEvent });
 *   …                  // onEvent(event, at) for every event, in order; `at` is where the next starts
 *   await stream.close();
 *
 * Invariants:
 * - The server is told that Sluice checks event checksums (`@master_binlog_checksum`), and every
 *   event's CRC32 is verified.
 * - Events are handed over in the order the server sent them. `pause()` and `resume()` apply
 *   backpressure to the socket.
 */

import { createRequire } from 'node:module';
import path from 'node:path';
import mysql from 'mysql2';
import { DefiniteError, TransientError } from '../../core/index.ts';
import { BinlogDecoder, type BinlogEvent } from './binlog.ts';

const require = createRequire(import.meta.url);
// mysql2's command machinery (neither exported nor declared; reached by path): a command gets
// every packet the server sends in reply until it returns no next state.
const mysql2Lib = path.join(path.dirname(require.resolve('mysql2')), 'lib');
const Command = require(path.join(mysql2Lib, 'commands/command.js')) as new () => { emit(event: string, ...args: unknown[]): boolean };
const Packet = require(path.join(mysql2Lib, 'packets/packet.js')) as new (id: number, buffer: Buffer, start: number, end: number) => unknown;

/** COM_BINLOG_DUMP: 0x12, position (4), flags (2), server id (4), file name. */
function binlogDumpPacket(start: BinlogPosition, serverId: number): unknown {
  const name = Buffer.from(start.file, 'utf8');
  const buffer = Buffer.alloc(4 + 11 + name.length); // 4: the packet header, written on send
  buffer[4] = 0x12;
  buffer.writeUInt32LE(start.position, 5);
  buffer.writeUInt16LE(0, 9);
  buffer.writeUInt32LE(serverId, 11);
  name.copy(buffer, 15);
  return new Packet(0, buffer, 0, buffer.length);
}

export interface BinlogPosition {
  file: string;
  position: number;
}

export interface BinlogStreamOptions {
  /** A mysql:// URL. */
  url: string;
  /** This replica's server id: unique among the server's replicas. */
  serverId: number;
  /** Where to start: a binlog file and the position of an event in it (4 is a file's first). */
  start: BinlogPosition;
  /** Every event, with the position of the event after it. */
  onEvent: (event: BinlogEvent, next: BinlogPosition) => void;
  /** The connection failed or ended (not called after close()). */
  onError?: (error: Error) => void;
  /** The server sends a heartbeat when it has had nothing to send for this long (default 5 s). */
  heartbeatSeconds?: number;
  /** Nothing at all from the server for this long (neither events nor heartbeats, while not paused) fails the stream: a dead peer (default 30 s). */
  silentMs?: number;
}

interface Packet {
  buffer: Buffer;
  offset: number;
  end: number;
  isEOF(): boolean;
}

interface RawConnection {
  addCommand(command: unknown): void;
  writePacket(packet: unknown): void;
  pause(): void;
  resume(): void;
  query(sql: string, callback: (error: Error | null) => void): void;
  end(callback?: () => void): void;
  destroy(): void;
  /** The socket: mysql2's destroy() only half-closes it, which a dump thread waiting for events does not notice. */
  stream: { destroy(): void };
  on(event: 'error' | 'end', listener: (error?: Error) => void): void;
}

export class BinlogStream {
  readonly #connection: RawConnection;
  #closed = false;

  private constructor(connection: RawConnection) {
    this.#connection = connection;
  }

  static async start(options: BinlogStreamOptions): Promise<BinlogStream> {
    const connection = mysql.createConnection({ uri: options.url, supportBigNumbers: true, bigNumberStrings: true }) as unknown as RawConnection;
    const stream = new BinlogStream(connection);
    stream.#onError = options.onError;
    connection.on('error', (error) => stream.#fail(error ?? new Error('connection error')));
    connection.on('end', () => stream.#fail(new TransientError('mysql_binlog_ended', 'the binlog connection ended', 'the server restarted or the connection dropped: Sluice reconnects and resumes from the last position in its log')));
    const run = (sql: string) => new Promise<unknown>((resolve, reject) => (connection.query as (sql: string, callback: (error: Error | null, rows?: unknown) => void) => void)(sql, (error, rows) => (error ? reject(error) : resolve(rows))));
    let checksum = false;
    try {
      // Checksums are understood (and verified); MariaDB sends its GTID and annotate events.
      const [row] = (await run(`SELECT @@global.binlog_checksum AS checksum`)) as Array<{ checksum: string }>;
      checksum = String(row?.checksum).toUpperCase() === 'CRC32';
      // MySQL 8.0.26 and later read the source_ names, older servers and MariaDB the master_ ones.
      await run(`SET @master_binlog_checksum = @@global.binlog_checksum, @source_binlog_checksum = @@global.binlog_checksum`);
      await run(`SET @mariadb_slave_capability = 4`);
      const heartbeat = Math.round((options.heartbeatSeconds ?? 5) * 1e9);
      await run(`SET @master_heartbeat_period = ${heartbeat}, @source_heartbeat_period = ${heartbeat}`);
    } catch (error) {
      connection.destroy();
      throw new TransientError('mysql_connect', `cannot open a binlog connection: ${(error as Error).message}`, 'check the URL, that the server runs, and that the user has REPLICATION SLAVE');
    }
    const decoder = new BinlogDecoder({ checksum });
    const at: BinlogPosition = { ...options.start };
    let failed = false;
    // A server that stops answering (a network partition, a frozen host) sends no FIN: noticed by
    // its silence, since it sends heartbeats when idle.
    const silentMs = options.silentMs ?? 30_000;
    stream.#heard = Date.now();
    stream.#watch = setInterval(() => {
      if (!stream.#paused && Date.now() - stream.#heard > silentMs) stream.#fail(new TransientError('mysql_binlog_silent', `the server sent nothing for ${Math.round(silentMs / 1000)} s, not even a heartbeat`, 'Sluice reconnects and resumes from the last position in its log'));
    }, Math.min(5000, silentMs / 4));
    stream.#watch.unref();
    const onPacket = (packet: Packet): void => {
      stream.#heard = Date.now();
      // Packets already read when the stream closed are not handed over.
      if (failed || stream.#closed) return;
      try {
        // The packet is 0x00 (OK) and then the event.
        const event = decoder.decode(packet.buffer.subarray(packet.offset + 1, packet.end));
        if (event.kind === 'heartbeat') return; // says only that the server is there
        if (event.kind === 'rotate') {
          at.file = event.file;
          at.position = event.position;
        } else if (event.header.nextPosition > 0) at.position = event.header.nextPosition;
        options.onEvent(event, { ...at });
      } catch (error) {
        failed = true;
        stream.#fail(error as Error);
      }
    };
    class RawBinlogDump extends Command {
      start(_packet: Packet, raw: RawConnection): unknown {
        raw.writePacket(binlogDumpPacket(options.start, options.serverId));
        return RawBinlogDump.prototype.data;
      }
      data(packet: Packet): unknown {
        if (packet.isEOF()) return null;
        onPacket(packet);
        return RawBinlogDump.prototype.data;
      }
    }
    const dump = new RawBinlogDump();
    (dump as unknown as { on(event: string, listener: (error: Error) => void): void }).on('error', (error: Error) => {
      const code = (error as { errno?: number }).errno;
      // 1236: the binlog position is gone (purged) or invalid.
      stream.#fail(code === 1236 ? new DefiniteError('mysql_binlog_gone', `the server cannot send the binlog from ${options.start.file}:${options.start.position}: ${error.message}`, 'the binlog was purged before Sluice read it: take a new snapshot (and keep binlogs longer: binlog_expire_logs_seconds)') : error);
    });
    connection.addCommand(dump);
    return stream;
  }

  pause(): void {
    this.#paused = true;
    this.#connection.pause();
  }

  resume(): void {
    this.#paused = false;
    this.#heard = Date.now();
    this.#connection.resume();
  }

  #paused = false;
  /** When the server was last heard from. */
  #heard = 0;
  #watch: NodeJS.Timeout | undefined;

  #onError: ((error: Error) => void) | undefined;

  #fail(error: Error): void {
    clearInterval(this.#watch);
    if (this.#closed) return;
    this.#closed = true;
    this.#onError?.(error);
    this.#connection.destroy();
    this.#connection.stream.destroy();
  }

  async close(): Promise<void> {
    clearInterval(this.#watch);
    if (this.#closed) return;
    this.#closed = true;
    // A dump never ends by itself: the connection is closed under it.
    this.#connection.destroy();
    this.#connection.stream.destroy();
  }
}
