import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InvalidArgumentError, ServerMissingError, ServerStartError } from './errors.js';

/**
 * Starts and stops a real nats-server (Debian's 2.9.10) — for tests and for `npm run cluster`'s
 * embedded server. This file binds to the real world: it uses Node's timers and processes directly.
 */
export interface NatsServer {
  url: string;
  port: number;
  /** The nats-server process. */
  pid: number;
  /** The JetStream store directory. */
  dataDir: string;
  /**
   * Replaces the users (started with users only) and has the server reload them; resolves once it has.
   * Connections of users that are gone are closed by the server, and permissions apply at once.
   */
  setUsers(users: NatsUser[]): Promise<void>;
  stop(): Promise<void>;
}

export interface NatsServerOptions {
  /** 0 (default) lets the server pick a free port. */
  port?: number;
  /** JetStream store; a temporary directory, removed on stop, when absent (a given one is kept). */
  dataDir?: string;
  /** Accepted for compatibility: a given dataDir is always kept. */
  keepDataDir?: boolean;
  /** Default true. */
  jetstream?: boolean;
  /** 'info' (default), 'debug' or 'trace' (nats-server has no quieter level than info). */
  logLevel?: 'info' | 'debug' | 'trace';
  /** Every log line of the server, as it comes. */
  onLog?: (line: string) => void;
  /** The binary; found on the usual paths and PATH when absent. */
  binary?: string;
  readyTimeoutMs?: number;
  /** How long stop() waits after SIGTERM before SIGKILL. */
  stopTimeoutMs?: number;
  /** Users and their subject permissions; absent: no authorization (anyone who reaches the port may do anything). */
  users?: NatsUser[];
  /** The address clients connect to (and the URL names). Default 127.0.0.1. */
  host?: string;
  /** The server's name in a cluster (JetStream clustering needs one per server, stable across restarts). */
  serverName?: string;
  /** Its HTTP monitoring port, on `host` (`/jsz` says who leads JetStream's meta group); none when unset. */
  monitorPort?: number;
  /** Joins a cluster: routes to the other servers, JetStream replicated by Raft among them. */
  cluster?: NatsClusterOptions;
  /**
   * A command the server runs under, e.g. `['ip', 'netns', 'exec', 'ns1']`: it must exec the binary in
   * its own process (as `ip netns exec` does) so that `pid` is the server's.
   */
  prefix?: string[];
}

/** One server's part of a NATS cluster (src/nats/cluster.ts starts several). */
export interface NatsClusterOptions {
  name: string;
  /** Where this server listens for routes. */
  host: string;
  port: number;
  /** Every server's route URL (`nats-route://host:port`; its own is skipped by the server). */
  routes: string[];
  /** Routes authenticate with this user: a route is a full member, so nobody else may open one. */
  auth?: { user: string; password: string };
}

export interface NatsUser {
  user: string;
  password: string;
  /** Subjects it may publish to and subscribe to (NATS wildcards); absent: everything. */
  permissions?: { publish: { allow: string[] }; subscribe: { allow: string[] } };
}

export const NATS_READY_TIMEOUT_MS = 10_000;
export const NATS_STOP_TIMEOUT_MS = 10_000;
export const NATS_RELOAD_TIMEOUT_MS = 10_000;
/** Bytes of the server's log kept for error messages. */
const LOG_TAIL_BYTES_MAX = 4_000;
/** After a failed start: how long to wait for the server to go before carrying on. */
const FAILED_START_EXIT_WAIT_MS = 1_000;
const PORT_MAX = 65_535;

const CANDIDATES = ['/usr/sbin/nats-server', '/usr/bin/nats-server', '/usr/local/bin/nats-server'];

export function findNatsServer(): string | undefined {
  for (const c of CANDIDATES) if (existsSync(c)) return c;
  for (const dir of (process.env['PATH'] ?? '').split(':')) if (dir !== '' && existsSync(join(dir, 'nats-server'))) return join(dir, 'nats-server');
  return undefined;
}

/**
 * The server runs under a small shell that holds a pipe from us on its stdin: when this process ends
 * in any way (even SIGKILL) the pipe closes, `read` returns, and the shell stops the server — no
 * orphaned servers. It reports the server's pid first so stop() can signal the server itself.
 */
const WATCHDOG = 'trap "" INT; "$@" </dev/null & srv=$!; echo "sigma-watchdog server-pid $srv" >&2; while read -r _; do :; done; kill -TERM "$srv" 2>/dev/null; wait "$srv"';

/** What the server says on stderr, read as it comes: its pid (from the watchdog), its port, readiness, reloads. */
class ServerLog {
  tail = '';
  serverPid: number | undefined;
  boundPort: number | undefined;
  onReady: (() => void) | undefined;
  readonly onReloaded: Array<() => void> = [];
  #partial = '';

  constructor(private readonly onLog?: (line: string) => void) {}

  take(d: Buffer): void {
    const lines = (this.#partial + d.toString()).split('\n');
    this.#partial = lines.pop()!;
    for (const line of lines) this.#line(line);
  }

  #line(line: string): void {
    this.tail = (this.tail + line + '\n').slice(-LOG_TAIL_BYTES_MAX);
    const pid = /^sigma-watchdog server-pid (\d+)/.exec(line);
    if (pid !== null) return void (this.serverPid = Number(pid[1]));
    this.onLog?.(line);
    const listen = /Listening for client connections on [^\s]*:(\d+)/.exec(line);
    if (listen !== null) this.boundPort = Number(listen[1]);
    if (/Server is ready/.test(line)) this.onReady?.();
    if (/Reloaded server configuration/.test(line)) for (const f of this.onReloaded.splice(0)) f();
  }
}

/** The command line; with users or a cluster, JetStream is configured in the config file instead. */
function serverArgs(options: NatsServerOptions, host: string, port: number, dataDir: string, conf: string | undefined): string[] {
  const args = ['-a', host, '-p', String(port === 0 ? -1 : port)];
  if (options.jetstream !== false && conf === undefined) args.push('-js', '-sd', dataDir);
  if (conf !== undefined) args.push('-c', conf);
  if (options.logLevel === 'debug') args.push('-D');
  if (options.logLevel === 'trace') args.push('-DV');
  return args;
}

/** Resolves once the server logs "Server is ready"; rejects when it exits first, cannot run, or takes too long. */
function untilReady(child: ChildProcess, log: ServerLog, exited: Promise<void>, o: { bin: string; port: number; timeoutMs: number }): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new ServerStartError(`nats-server did not get ready within ${o.timeoutMs} ms:\n${log.tail.trim()}`)), o.timeoutMs);
    log.onReady = () => {
      clearTimeout(timer);
      resolve();
    };
    void exited.then(() => {
      clearTimeout(timer);
      const hint = /address already in use/i.test(log.tail) ? ` (port ${o.port} is taken: pick another or use port 0)` : '';
      reject(new ServerStartError(`nats-server exited during startup${hint}:\n${log.tail.trim()}`));
    });
    child.once('error', (e: Error) => reject(new ServerStartError(`cannot run nats-server (${o.bin}): ${e.message}`, { cause: e })));
  });
}

/** Starts nats-server on 127.0.0.1 and resolves once it logs "Server is ready" (JetStream up). */
export async function startNatsServer(options: NatsServerOptions = {}): Promise<NatsServer> {
  const bin = options.binary ?? findNatsServer();
  if (bin === undefined || !existsSync(bin)) throw new ServerMissingError();
  const port = options.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > PORT_MAX) throw new InvalidArgumentError(`port must be 0 (any free port) or 1..${PORT_MAX}, got ${port}`);
  const temp = options.dataDir === undefined;
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'sigma-nats-'));
  mkdirSync(dataDir, { recursive: true });
  const host = options.host ?? '127.0.0.1';
  const withConf = options.users !== undefined || options.cluster !== undefined || options.serverName !== undefined;
  const conf = `${dataDir.replace(/\/+$/, '')}.auth.conf`;
  // The server reads its config from a file only root may read (the JSON form of a NATS config): users,
  // JetStream and the cluster together, since a reload of a file without one of them would drop it.
  const writeConf = (users: NatsUser[] | undefined): void => {
    writeFileSync(conf, JSON.stringify(serverConfig(options, dataDir, users)), { mode: 0o600 });
    chmodSync(conf, 0o600);
  };
  if (withConf) writeConf(options.users);
  const args = serverArgs(options, host, port, dataDir, withConf ? conf : undefined);
  const child = spawn('/bin/sh', ['-c', WATCHDOG, 'sigma-nats-watchdog', ...(options.prefix ?? []), bin, ...args], { stdio: ['pipe', 'ignore', 'pipe'] });
  const log = new ServerLog(options.onLog);
  child.stderr.on('data', (d: Buffer) => log.take(d));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const removeTemp = (): void => {
    if (temp) rmSync(dataDir, { recursive: true, force: true });
    if (temp) rmSync(conf, { force: true });
  };
  try {
    await untilReady(child, log, exited, { bin, port, timeoutMs: options.readyTimeoutMs ?? NATS_READY_TIMEOUT_MS });
  } catch (e) {
    child.stdin.end();
    if (log.serverPid !== undefined) killQuietly(log.serverPid, 'SIGKILL');
    await Promise.race([exited, new Promise((r) => setTimeout(r, FAILED_START_EXIT_WAIT_MS))]);
    removeTemp();
    throw e;
  }
  if (log.boundPort === undefined || log.serverPid === undefined) throw new ServerStartError(`nats-server got ready but did not say where it listens:\n${log.tail.trim()}`);
  const pid = log.serverPid;
  let stopping: Promise<void> | undefined;
  let reloading: Promise<void> = Promise.resolve();
  return {
    url: `nats://${host}:${log.boundPort}`,
    port: log.boundPort,
    pid,
    dataDir,
    // One reload at a time: each waits for the server's "Reloaded" line of its own signal.
    setUsers(users) {
      if (options.users === undefined) return Promise.reject(new InvalidArgumentError('setUsers: this server was started without users (no authorization to reload)'));
      reloading = reloading.catch(() => {}).then(
        () =>
          new Promise<void>((resolve, reject) => {
            writeConf(users);
            const timer = setTimeout(() => reject(new ServerStartError(`nats-server did not reload its users within ${NATS_RELOAD_TIMEOUT_MS} ms:\n${log.tail.trim()}`)), NATS_RELOAD_TIMEOUT_MS);
            log.onReloaded.push(() => {
              clearTimeout(timer);
              resolve();
            });
            killQuietly(pid, 'SIGHUP');
          }),
      );
      return reloading;
    },
    stop() {
      stopping ??= (async () => {
        child.stdin.end(); // the watchdog sends SIGTERM and waits for the server
        const killer = setTimeout(() => killQuietly(pid, 'SIGKILL'), options.stopTimeoutMs ?? NATS_STOP_TIMEOUT_MS);
        await exited;
        clearTimeout(killer);
        removeTemp();
      })();
      return stopping;
    },
  };
}

/** The server's config file (JSON is a valid NATS config): what the options say, users included. */
function serverConfig(o: NatsServerOptions, dataDir: string, users: NatsUser[] | undefined): Record<string, unknown> {
  const c = o.cluster;
  const routeAuth = c?.auth === undefined ? '' : `${encodeURIComponent(c.auth.user)}:${encodeURIComponent(c.auth.password)}@`;
  return {
    ...(o.serverName === undefined ? {} : { server_name: o.serverName }),
    ...(o.monitorPort === undefined ? {} : { http: `${o.host ?? '127.0.0.1'}:${o.monitorPort}` }),
    ...(o.jetstream === false ? {} : { jetstream: { store_dir: dataDir } }),
    ...(users === undefined ? {} : { authorization: { users } }),
    ...(c === undefined
      ? {}
      : {
          cluster: {
            name: c.name,
            listen: `${c.host}:${c.port}`,
            routes: c.routes.map((r) => r.replace('nats-route://', `nats-route://${routeAuth}`)),
            ...(c.auth === undefined ? {} : { authorization: { user: c.auth.user, password: c.auth.password } }),
          },
        }),
  };
}

function killQuietly(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}
