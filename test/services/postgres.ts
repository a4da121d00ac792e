/**
 * A hermetic PostgreSQL 15 for tests: each `startPostgres()` runs initdb into a fresh temporary
 * directory and starts a server of its own on a free loopback port, configured for logical
 * replication (`wal_level=logical`). Tests never touch the shared server on port 5432.
 *
 * Invariants:
 * - The server listens only on 127.0.0.1 and on a unix socket inside its temporary directory;
 *   authentication is `trust` for loopback, replication connections included.
 * - fsync stays on (crash tests rely on what PostgreSQL itself makes durable); only initdb runs
 *   with `--no-sync`, which matters to a machine crash, never to a killed server.
 * - A missing binary fails with the Debian package to install, never a silent skip.
 * - No server outlives the test process: `stop()` is idempotent and removes the directory, and an
 *   'exit' handler (and SIGINT/SIGTERM) stops whatever is still running with `-m immediate`.
 * - PostgreSQL refuses to run as root, so when we are root the binaries run as the `postgres` OS
 *   user (`runuser`) and the temporary directory is chowned to it.
 */
import { execFile, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

export interface PostgresServer {
  port: number;
  host: '127.0.0.1';
  dataDir: string;
  /** A connection string, e.g. `postgres://postgres@127.0.0.1:PORT/postgres`. */
  url(database?: string, user?: string): string;
  /** Runs `sql` on a one-shot connection and returns the rows (of the last statement). */
  query(sql: string, database?: string): Promise<any[]>;
  createDatabase(name: string): Promise<void>;
  /** Stops the server with `pg_ctl stop -m MODE` and starts it again on the same port and data. */
  restart(mode?: 'fast' | 'immediate'): Promise<void>;
  /** Stops the server (`-m fast`) and removes its directory; idempotent. */
  stop(): Promise<void>;
}

export interface StartPostgresOptions {
  /**
   * Extra postgresql.conf settings, written verbatim and overriding the harness's defaults (but not
   * listen_addresses, port or unix_socket_directories): quote string values as postgresql.conf
   * wants them, e.g. `{ work_mem: "'8MB'" }`.
   */
  settings?: Record<string, string>;
  /**
   * Instead of a fresh cluster: a copy of this running server (pg_basebackup), started as a standby
   * and promoted — the same system identifier on the next timeline, as after a failover or a
   * point-in-time restore.
   */
  promotedCopyOf?: PostgresServer;
}

const BIN_DIR = '/usr/lib/postgresql/15/bin';
const PACKAGE = 'postgresql-15';
const HOST = '127.0.0.1';
const OS_USER = 'postgres';
const READY_TIMEOUT_SECONDS = 20;
const LOG_TAIL_LINES = 40;
const PORT_ATTEMPTS = 3;

const DEFAULT_SETTINGS: Record<string, string> = {
  wal_level: 'logical',
  max_replication_slots: '10',
  max_wal_senders: '10',
  fsync: 'on',
  synchronous_commit: 'on',
  shared_buffers: '16MB',
  max_connections: '30',
  logging_collector: 'off',
  log_min_messages: 'warning',
  timezone: `'UTC'`,
};

const HBA = [
  '# TYPE  DATABASE     USER  ADDRESS       METHOD',
  'local   all          all                 trust',
  'local   replication  all                 trust',
  `host    all          all   ${HOST}/32  trust`,
  `host    replication  all   ${HOST}/32  trust`,
  '',
].join('\n');

interface Layout {
  root: string;
  port: number;
  dataDir: string;
  socketDir: string;
  logFile: string;
}

/** Servers started and not yet stopped, for the exit handler. */
const running = new Set<Layout>();

export async function startPostgres(options: StartPostgresOptions = {}): Promise<PostgresServer> {
  checkBinaries();
  const asRoot = process.getuid?.() === 0;
  const root = mkdtempSync(join(tmpdir(), 'sluice-postgres-'));
  const layout: Layout = { root, port: 0, dataDir: join(root, 'data'), socketDir: join(root, 'socket'), logFile: join(root, 'server.log') };
  try {
    mkdirSync(layout.socketDir);
    writeFileSync(layout.logFile, '');
    if (asRoot) {
      const { uid, gid } = osUser(OS_USER);
      for (const path of [root, layout.socketDir, layout.logFile]) chownSync(path, uid, gid);
    }
    const copyOf = options.promotedCopyOf;
    if (copyOf) {
      await run('pg_basebackup', ['-h', HOST, '-p', String(copyOf.port), '-U', 'postgres', '-D', layout.dataDir, '-X', 'stream', '--no-sync', '--checkpoint=fast']);
      writeFileSync(join(layout.dataDir, 'standby.signal'), '');
      if (asRoot) {
        const { uid, gid } = osUser(OS_USER);
        chownSync(join(layout.dataDir, 'standby.signal'), uid, gid);
      }
    } else await run('initdb', ['-D', layout.dataDir, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync', '--no-instructions']);
    writeFileSync(join(layout.dataDir, 'pg_hba.conf'), HBA); // exists already, so it keeps its owner
    // The free port can be taken between our probe and the server's bind: then try another one.
    for (let attempt = 1; ; attempt++) {
      layout.port = await freePort();
      const settings = {
        ...DEFAULT_SETTINGS,
        ...options.settings,
        // Where the server is found is the harness's, not the caller's, to choose.
        listen_addresses: `'${HOST}'`,
        port: String(layout.port),
        unix_socket_directories: `'${layout.socketDir}'`,
      };
      const conf = Object.entries(settings).map(([name, value]) => `${name} = ${value}`).join('\n');
      // Appended: the last occurrence of a setting wins, so a retry's port overrides the previous one.
      writeFileSync(join(layout.dataDir, 'postgresql.conf'), `\n# sluice test harness\n${conf}\n`, { flag: 'a' });
      try {
        await startServer(layout);
        if (copyOf) await run('pg_ctl', ['promote', '-D', layout.dataDir, '-w', '-t', String(READY_TIMEOUT_SECONDS)]);
        return server(layout);
      } catch (error) {
        if (attempt >= PORT_ATTEMPTS || !/could not bind|address already in use/i.test(logTail(layout))) throw error;
      }
    }
  } catch (error) {
    stopNow(layout);
    throw error;
  }
}

function server(layout: Layout): PostgresServer {
  const { port } = layout;
  let stopped = false;
  const url = (database = 'postgres', user = 'postgres'): string =>
    `postgres://${encodeURIComponent(user)}@${HOST}:${port}/${encodeURIComponent(database)}`;
  const query = async (sql: string, database = 'postgres'): Promise<any[]> => {
    const client = new pg.Client({ host: HOST, port, user: 'postgres', database });
    await client.connect();
    try {
      // A multi-statement string yields one result per statement; return the last one's rows.
      const result = (await client.query(sql)) as pg.QueryResult | pg.QueryResult[];
      return Array.isArray(result) ? (result.at(-1)?.rows ?? []) : result.rows;
    } finally {
      await client.end();
    }
  };
  return {
    port,
    host: HOST,
    dataDir: layout.dataDir,
    url,
    query,
    async createDatabase(name) {
      await query(`CREATE DATABASE "${name.replaceAll('"', '""')}"`);
    },
    async restart(mode = 'fast') {
      if (stopped) throw new Error('restart() after stop()');
      await run('pg_ctl', ['stop', '-D', layout.dataDir, '-m', mode, '-w', '-t', String(READY_TIMEOUT_SECONDS)]);
      await startServer(layout);
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      running.delete(layout);
      try {
        if (existsSync(join(layout.dataDir, 'postmaster.pid'))) {
          await run('pg_ctl', ['stop', '-D', layout.dataDir, '-m', 'fast', '-w', '-t', String(READY_TIMEOUT_SECONDS)]);
        }
      } catch {
        stopNow(layout); // a fast stop that fails (or times out) falls back to immediate
      } finally {
        rmSync(layout.root, { recursive: true, force: true });
      }
    },
  };
}

/** Starts the server and waits until it accepts connections (pg_ctl -w); fails with the log's tail. */
async function startServer(layout: Layout): Promise<void> {
  running.add(layout);
  installExitHandler();
  try {
    await run('pg_ctl', ['start', '-D', layout.dataDir, '-l', layout.logFile, '-w', '-t', String(READY_TIMEOUT_SECONDS)]);
    await run('pg_isready', ['-h', HOST, '-p', String(layout.port), '-t', String(READY_TIMEOUT_SECONDS)]);
  } catch (error) {
    throw new Error(`PostgreSQL did not start in ${layout.dataDir}: ${(error as Error).message}\n--- server log (tail) ---\n${logTail(layout)}`);
  }
}

function logTail(layout: Layout): string {
  try {
    return readFileSync(layout.logFile, 'utf8').trimEnd().split('\n').slice(-LOG_TAIL_LINES).join('\n');
  } catch {
    return '(no server log)';
  }
}

/** Synchronous stop for exit paths: `pg_ctl stop -m immediate`, then remove the directory. */
function stopNow(layout: Layout): void {
  running.delete(layout);
  if (existsSync(join(layout.dataDir, 'postmaster.pid'))) {
    const [file, args] = command('pg_ctl', ['stop', '-D', layout.dataDir, '-m', 'immediate', '-w', '-t', '10']);
    spawnSync(file, args, { stdio: 'ignore' });
  }
  rmSync(layout.root, { recursive: true, force: true });
}

let exitHandlerInstalled = false;

function installExitHandler(): void {
  if (exitHandlerInstalled) return;
  exitHandlerInstalled = true;
  process.on('exit', () => {
    for (const layout of [...running]) stopNow(layout);
  });
  // 'exit' does not run on a signal; stop the servers, then die of the same signal as before.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    const onSignal = (): void => {
      for (const layout of [...running]) stopNow(layout);
      process.off(signal, onSignal);
      process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
}

function checkBinaries(): void {
  const missing = ['initdb', 'pg_ctl', 'postgres', 'pg_isready'].filter((name) => !existsSync(join(BIN_DIR, name)));
  if (missing.length > 0) {
    throw new Error(
      `PostgreSQL 15 binaries missing from ${BIN_DIR} (${missing.join(', ')}): install the Debian package ` +
        `'${PACKAGE}' (apt-get install ${PACKAGE}). Tests that need PostgreSQL fail rather than skip.`,
    );
  }
  if (process.getuid?.() === 0 && !existsSync('/usr/sbin/runuser') && !existsSync('/sbin/runuser')) {
    throw new Error(`running as root needs 'runuser' (Debian package 'util-linux') to run PostgreSQL as '${OS_USER}'`);
  }
}

/** The file and arguments for a PostgreSQL binary, run as the postgres OS user when we are root. */
function command(name: string, args: string[]): [string, string[]] {
  const binary = join(BIN_DIR, name);
  return process.getuid?.() === 0 ? ['runuser', ['-u', OS_USER, '--', binary, ...args]] : [binary, args];
}

function run(name: string, args: string[]): Promise<void> {
  const [file, fullArgs] = command(name, args);
  return new Promise((resolve, reject) => {
    execFile(file, fullArgs, { timeout: (READY_TIMEOUT_SECONDS + 10) * 1000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${name} ${args.join(' ')} failed (${error.code ?? error.signal}): ${`${stderr}${stdout}`.trim()}`));
      else resolve();
    });
  });
}

function osUser(name: string): { uid: number; gid: number } {
  for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
    const fields = line.split(':');
    if (fields[0] === name) return { uid: Number(fields[2]), gid: Number(fields[3]) };
  }
  throw new Error(`no '${name}' OS user to run PostgreSQL as (it comes with the Debian package '${PACKAGE}')`);
}

/** A port free on 127.0.0.1 right now: bind port 0, read the port, close. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.unref();
    probe.on('error', reject);
    probe.listen(0, HOST, () => {
      const address = probe.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      probe.close(() => (port > 0 ? resolve(port) : reject(new Error('could not pick a free port'))));
    });
  });
}
