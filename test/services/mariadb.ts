/**
 * A hermetic MariaDB 10.11 for tests: each `startMariadb()` gets a fresh data directory (a copy of
 * what mariadb-install-db made) in a temporary directory of its own and starts a mariadbd on a free
 * loopback port, configured for change data capture from the binary log. Tests never touch the
 * shared server on port 3306.
 *
 * Invariants:
 * - `--no-defaults` everywhere: nothing in /etc/mysql (or ~/.my.cnf) is read; every option is on
 *   the command line below.
 * - The server listens only on 127.0.0.1 and on a unix socket inside its temporary directory;
 *   `skip-name-resolve` is on, so accounts match on IP: `'root'@'127.0.0.1'` is the one used over
 *   TCP. A user made by a test must be `'name'@'127.0.0.1'` (or `'name'@'%'`), never `@'localhost'`,
 *   which only matches socket connections.
 * - Real privileges (no `--skip-grant-tables`): root has ALL PRIVILEGES WITH GRANT OPTION and no
 *   password; users a test creates without a password work with `url(db, user)`. The
 *   `root@<hostname>` account install-db makes (unusable under skip-name-resolve) is removed.
 * - The binary log (ROW, FULL row image, FULL row metadata, CRC32 checksums, server_id 1, GTID strict
 *   mode, domain 0) lives in `<root>/binlog/` as `mariadb-bin.NNNNNN`, one new file per server start;
 *   the data in `<root>/data/` (= `dataDir`), the server's temporary files in `<root>/tmp/`.
 *   binlog_annotate_row_events stays at 10.11's default (ON): row events come with Annotate_rows
 *   events carrying the statement's text.
 * - utf8mb4 (utf8mb4_general_ci) and time zone +00:00 (no time zone tables are loaded) are set
 *   explicitly: without /etc/mysql, 10.11's defaults would be latin1 and the system time zone.
 * - Small: a 32M buffer pool, an 8M redo log, 50 connections, no performance schema.
 * - Durability defaults are kept (innodb_flush_log_at_trx_commit=1, doublewrite on, sync_binlog=0):
 *   committed data and its binlog events survive a killed server (`restart('kill')`), since the OS
 *   still has what the process wrote; only a machine crash could lose the unsynced binlog tail.
 * - A missing binary fails with the Debian package to install, never a silent skip.
 * - No server outlives the test process: `stop()` is idempotent and removes the directory, and an
 *   'exit' handler (and SIGINT/SIGTERM) SIGKILLs whatever is still running and removes its directory.
 * - mariadb-install-db runs once per process, into a template data directory that each server
 *   gets a copy of (see `templateDataDir`); the template is removed on exit.
 * - mariadbd refuses to run as root, so when we are root it runs with `--user=mysql` (it switches
 *   user itself, so the pid we spawn is the server's) and the temporary directory is chowned to
 *   `mysql`.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { chownSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import mysql from 'mysql2/promise';

export interface MariadbServer {
  port: number;
  host: '127.0.0.1';
  /** The server's data directory (`<root>/data`); the binary log is in `<root>/binlog`. */
  dataDir: string;
  /**
   * A connection string without a password, e.g. `mysql://root@127.0.0.1:PORT/DB`; without a
   * database, `mysql://root@127.0.0.1:PORT` (no path).
   */
  url(database?: string, user?: string): string;
  /**
   * Runs `sql` as root on a one-shot connection (multiple statements allowed) and returns the rows
   * of the last statement; a last statement that returns no rows (INSERT, CREATE, ...) gives `[]`.
   * Values as mysql2 gives them, with DATETIME/TIMESTAMP read as UTC, DECIMAL as strings and
   * integers beyond 2^53 as strings.
   */
  query(sql: string, database?: string): Promise<any[]>;
  createDatabase(name: string): Promise<void>;
  /**
   * Stops the server and starts it again on the same port and data. 'clean' (the default) is a
   * normal shutdown (SIGTERM); 'kill' is SIGKILL, a crash: InnoDB recovers on the next start.
   */
  restart(mode?: 'clean' | 'kill'): Promise<void>;
  /** Stops the server and removes its directory; idempotent. */
  stop(): Promise<void>;
}

export interface StartMariadbOptions {
  /**
   * Extra server options, passed as `--name=value` after the harness's defaults, so they override
   * them (but not datadir, port, bind-address, socket, pid-file, log-error, tmpdir or user). Names
   * may use `_` or `-`; an empty value gives a bare `--name` (e.g. `{ 'skip-log-bin': '' }`).
   * Options fixed at install time (innodb_page_size, lower_case_table_names) cannot be changed.
   */
  settings?: Record<string, string>;
}

const MARIADBD = '/usr/sbin/mariadbd';
const INSTALL_DB = '/usr/bin/mariadb-install-db';
const PACKAGE = 'mariadb-server';
const HOST = '127.0.0.1';
const OS_USER = 'mysql';
const READY_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 20_000;
const LOG_TAIL_LINES = 40;
const PORT_ATTEMPTS = 3;

/** The harness's defaults, in mariadbd option names (without the leading `--`). */
const DEFAULT_SETTINGS: Record<string, string> = {
  'server-id': '1',
  'binlog-format': 'ROW',
  'binlog-row-image': 'FULL',
  'binlog-row-metadata': 'FULL',
  'binlog-checksum': 'CRC32',
  'gtid-domain-id': '0',
  'gtid-strict-mode': 'ON',
  'skip-name-resolve': '',
  'character-set-server': 'utf8mb4',
  'collation-server': 'utf8mb4_general_ci',
  'default-time-zone': '+00:00',
  'innodb-buffer-pool-size': '32M',
  'innodb-log-file-size': '8M',
  'innodb-log-buffer-size': '2M',
  'max-connections': '50',
  'table-open-cache': '400',
  'performance-schema': 'OFF',
};

/** Sizes given to the bootstrap too, so the server does not resize the redo log on first start. */
const INSTALL_SETTINGS = ['--innodb-buffer-pool-size=32M', '--innodb-log-file-size=8M'];

interface Layout {
  root: string;
  port: number;
  dataDir: string;
  binlogDir: string;
  socket: string;
  pidFile: string;
  logFile: string;
  tmpDir: string;
  settings: Record<string, string>;
  /** The running mariadbd, if any. */
  child?: ChildProcess;
}

/** Servers started and not yet stopped, for the exit handler. */
const running = new Set<Layout>();

export async function startMariadb(options: StartMariadbOptions = {}): Promise<MariadbServer> {
  checkBinaries();
  const owner = process.getuid?.() === 0 ? osUser(OS_USER) : undefined;
  const root = mkdtempSync(join(tmpdir(), 'sluice-mariadb-'));
  const layout: Layout = {
    root,
    port: 0,
    dataDir: join(root, 'data'),
    binlogDir: join(root, 'binlog'),
    socket: join(root, 'mariadbd.sock'),
    pidFile: join(root, 'mariadbd.pid'),
    logFile: join(root, 'server.log'),
    tmpDir: join(root, 'tmp'),
    settings: {
      ...DEFAULT_SETTINGS,
      'log-bin': join(root, 'binlog', 'mariadb-bin'),
      ...options.settings,
    },
  };
  running.add(layout);
  installExitHandler();
  try {
    mkdirSync(layout.binlogDir);
    mkdirSync(layout.tmpDir);
    writeFileSync(layout.logFile, '');
    if (owner) for (const path of [root, layout.binlogDir, layout.tmpDir, layout.logFile]) chownSync(path, owner.uid, owner.gid);
    await copy(await templateDataDir(owner), layout.dataDir);
    // The free port can be taken between our probe and the server's bind: then try another one.
    for (let attempt = 1; ; attempt++) {
      layout.port = await freePort();
      try {
        await startServer(layout);
        return server(layout);
      } catch (error) {
        if (attempt >= PORT_ATTEMPTS || !/address already in use|bind on tcp\/ip port/i.test(logTail(layout))) throw error;
        writeFileSync(layout.logFile, ''); // the next attempt's tail should be its own
      }
    }
  } catch (error) {
    stopNow(layout);
    throw error;
  }
}

function server(layout: Layout): MariadbServer {
  const { port } = layout;
  let stopped = false;
  const url = (database?: string, user = 'root'): string =>
    `mysql://${encodeURIComponent(user)}@${HOST}:${port}${database === undefined ? '' : `/${encodeURIComponent(database)}`}`;
  const query = async (sql: string, database?: string): Promise<any[]> => {
    const connection = await connect(layout, database);
    try {
      const [result] = await connection.query(sql);
      return lastRows(result);
    } finally {
      await connection.end();
    }
  };
  return {
    port,
    host: HOST,
    dataDir: layout.dataDir,
    url,
    query,
    async createDatabase(name) {
      await query(`CREATE DATABASE \`${name.replaceAll('`', '``')}\``);
    },
    async restart(mode = 'clean') {
      if (stopped) throw new Error('restart() after stop()');
      await stopServer(layout, mode === 'kill' ? 'SIGKILL' : 'SIGTERM');
      await startServer(layout);
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      try {
        await stopServer(layout, 'SIGTERM');
      } finally {
        stopNow(layout); // removes the directory (and SIGKILLs a server that did not stop in time)
      }
    },
  };
}

/** The rows of a query's last statement: mysql2 gives an array of results for several statements. */
function lastRows(result: unknown): any[] {
  const isHeader = (value: unknown): boolean => value instanceof Object && value.constructor?.name === 'ResultSetHeader';
  if (!Array.isArray(result)) return []; // one statement without rows: a ResultSetHeader
  // One statement's rows are plain row objects; several statements' results are arrays or headers.
  const multiple = result.length > 0 && result.every((item) => Array.isArray(item) || isHeader(item));
  if (!multiple) return result;
  const last = result.at(-1);
  return Array.isArray(last) ? last : [];
}

function connect(layout: Layout, database?: string, connectTimeout = 10_000): Promise<mysql.Connection> {
  // The server's time zone is UTC, so DATETIME/TIMESTAMP values are read as UTC; integers beyond
  // 2^53 come back as strings instead of losing precision (DECIMAL always does: mysql2 default).
  return mysql.createConnection({
    host: HOST,
    port: layout.port,
    user: 'root',
    database,
    multipleStatements: true,
    supportBigNumbers: true,
    timezone: 'Z',
    connectTimeout,
  });
}

/**
 * The data directory of a fresh install, made once per process and copied (`cp -a`, owner kept) for
 * each server: mariadb-install-db costs ~0.5 s (and now and then ~1.5 s), a copy ~70 ms. Nothing in
 * it identifies a server (no server UUID file, no GTID state, the binlog is elsewhere), so copies are
 * as fresh as a new install. Removed by the exit handler.
 */
let template: Promise<string> | undefined;
let templateRoot: string | undefined;

function templateDataDir(owner: { uid: number; gid: number } | undefined): Promise<string> {
  template ??= createTemplate(owner).catch((error: unknown) => {
    template = undefined; // the next start tries again
    throw error;
  });
  return template;
}

async function createTemplate(owner: { uid: number; gid: number } | undefined): Promise<string> {
  const root = mkdtempSync(join(tmpdir(), 'sluice-mariadb-template-'));
  templateRoot = root;
  installExitHandler();
  try {
    const dataDir = join(root, 'data');
    const tmpDir = join(root, 'tmp');
    mkdirSync(tmpDir);
    // Accounts install-db makes for this machine's host name are ignored under skip-name-resolve
    // (with a warning at every start): keep only the loopback and socket ones.
    const extraFile = join(root, 'install-extra.sql');
    writeFileSync(
      extraFile,
      [
        `DELETE FROM mysql.global_priv WHERE Host NOT IN ('localhost', '127.0.0.1', '::1');`,
        `DELETE FROM mysql.proxies_priv WHERE Host NOT IN ('localhost', '127.0.0.1', '::1');`,
        '',
      ].join('\n'),
    );
    if (owner) for (const path of [root, tmpDir]) chownSync(path, owner.uid, owner.gid);
    await install(dataDir, tmpDir, extraFile, owner !== undefined);
    return dataDir;
  } catch (error) {
    rmSync(root, { recursive: true, force: true });
    templateRoot = undefined;
    throw error;
  }
}

/** mariadb-install-db into `dataDir`; nothing from /etc/mysql, no test database. */
function install(dataDir: string, tmpDir: string, extraFile: string, asRoot: boolean): Promise<void> {
  const args = [
    '--no-defaults',
    `--datadir=${dataDir}`,
    ...(asRoot ? [`--user=${OS_USER}`] : []),
    '--auth-root-authentication-method=normal',
    '--skip-test-db',
    '--skip-name-resolve',
    `--extra-file=${extraFile}`,
    // Passed on to the bootstrap mariadbd: its temporary tables' names are not unique across
    // concurrent bootstraps in a shared /tmp (seen: "Unknown table 'mysql.tmp_user_sys'").
    `--tmpdir=${tmpDir}`,
    ...INSTALL_SETTINGS,
  ];
  return execFileAsync(INSTALL_DB, args, { TMPDIR: tmpDir });
}

function copy(from: string, to: string): Promise<void> {
  return execFileAsync('cp', ['-a', from, to]);
}

function execFileAsync(file: string, args: string[], env: Record<string, string> = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: READY_TIMEOUT_MS, env: { ...process.env, ...env } }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${file} ${args.join(' ')} failed (${error.code ?? error.signal}): ${`${stderr}${stdout}`.trim()}`));
      else resolve();
    });
  });
}

function serverArgs(layout: Layout): string[] {
  const option = ([name, value]: [string, string]): string => (value === '' ? `--${name}` : `--${name}=${value}`);
  return [
    '--no-defaults', // must come first
    ...Object.entries(layout.settings).map(option),
    // Where the server is found is the harness's, not the caller's, to choose.
    `--datadir=${layout.dataDir}`,
    `--port=${layout.port}`,
    `--bind-address=${HOST}`,
    `--socket=${layout.socket}`,
    `--pid-file=${layout.pidFile}`,
    `--log-error=${layout.logFile}`,
    `--tmpdir=${layout.tmpDir}`,
    ...(process.getuid?.() === 0 ? [`--user=${OS_USER}`] : []),
  ];
}

/** Starts mariadbd and waits until root can connect over TCP; fails with the error log's tail. */
async function startServer(layout: Layout): Promise<void> {
  const log = openSync(layout.logFile, 'a'); // anything before --log-error takes over goes there too
  let child: ChildProcess;
  try {
    // Its own process group, so a terminal's Ctrl-C reaches only us (the signal handler stops it);
    // unref'd, so a test that forgets stop() still ends (the exit handler kills the server).
    child = spawn(MARIADBD, serverArgs(layout), { stdio: ['ignore', log, log], detached: true });
  } finally {
    closeSync(log);
  }
  child.unref();
  let spawnError: Error | undefined;
  child.on('error', (error) => (spawnError = error));
  layout.child = child;
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let lastError: unknown;
  while (true) {
    if (hasExited(child) || spawnError) {
      layout.child = undefined;
      const how = spawnError?.message ?? child.exitCode ?? child.signalCode;
      throw new Error(`mariadbd exited (${how}) before accepting connections on port ${layout.port}\n--- error log (tail) ---\n${logTail(layout)}`);
    }
    if (Date.now() > deadline) {
      await stopServer(layout, 'SIGKILL');
      throw new Error(
        `mariadbd did not accept connections on port ${layout.port} within ${READY_TIMEOUT_MS / 1000} s ` +
          `(${(lastError as Error)?.message})\n--- error log (tail) ---\n${logTail(layout)}`,
      );
    }
    try {
      const connection = await connect(layout, undefined, 2_000);
      await connection.end();
      return;
    } catch (error) {
      lastError = error;
      await sleep(20);
    }
  }
}

function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** Signals the server and waits until it has exited; SIGKILLs it if SIGTERM takes too long. */
async function stopServer(layout: Layout, signal: 'SIGTERM' | 'SIGKILL'): Promise<void> {
  const child = layout.child;
  if (!child) return;
  if (!hasExited(child)) {
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), STOP_TIMEOUT_MS); // a ref'd timer keeps us alive meanwhile
    });
    try {
      if (!hasExited(child) && (await Promise.race([exited.then(() => false), timedOut]))) {
        child.kill('SIGKILL');
        await exited;
      }
    } finally {
      clearTimeout(timer);
    }
  }
  layout.child = undefined;
}

function logTail(layout: Layout): string {
  try {
    return readFileSync(layout.logFile, 'utf8').trimEnd().split('\n').slice(-LOG_TAIL_LINES).join('\n');
  } catch {
    return '(no error log)';
  }
}

/** Synchronous stop for exit paths: SIGKILL the server, then remove the directory. */
function stopNow(layout: Layout): void {
  running.delete(layout);
  const child = layout.child;
  layout.child = undefined;
  if (child && !hasExited(child)) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  rmSync(layout.root, { recursive: true, force: true });
}

let exitHandlerInstalled = false;

function installExitHandler(): void {
  if (exitHandlerInstalled) return;
  exitHandlerInstalled = true;
  const stopAll = (): void => {
    for (const layout of [...running]) stopNow(layout);
    if (templateRoot) rmSync(templateRoot, { recursive: true, force: true });
    templateRoot = undefined;
  };
  process.on('exit', stopAll);
  // 'exit' does not run on a signal; stop the servers, then die of the same signal as before.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    const onSignal = (): void => {
      stopAll();
      process.off(signal, onSignal);
      process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
}

function checkBinaries(): void {
  const missing = [MARIADBD, INSTALL_DB].filter((path) => !existsSync(path));
  if (missing.length > 0) {
    throw new Error(
      `MariaDB binaries missing (${missing.join(', ')}): install the Debian package '${PACKAGE}' ` +
        `(apt-get install ${PACKAGE}). Tests that need MariaDB fail rather than skip.`,
    );
  }
}

function osUser(name: string): { uid: number; gid: number } {
  for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
    const fields = line.split(':');
    if (fields[0] === name) return { uid: Number(fields[2]), gid: Number(fields[3]) };
  }
  throw new Error(`no '${name}' OS user to run mariadbd as (it comes with the Debian package '${PACKAGE}')`);
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
