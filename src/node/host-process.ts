import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { decodeToNode, type ToHost, type ToNode } from '../host/protocol.js';
import type { HostCgroup, HostCgroups, HostLimits } from './sandbox/cgroups.js';
import type { HostSandbox } from './sandbox/host-sandbox.js';
import type { HostNameLookup } from './name-lookup.js';
import { SPAWN_TRACE_ENV } from '../spawn-trace.js';

/** A running proc host as the node manager sees it. The simulator provides an in-process one. */
export interface HostHandle {
  readonly hostId: string;
  readonly realm: string;
  readonly pid: number | undefined;
  send(m: ToHost): boolean;
  /** Every decoded message from the host. */
  onMessage(fn: (m: ToNode) => void): void;
  /** The host process ended (crash, kill or exit); `reason` when the node knows more (its memory limit). */
  onExit(fn: (code: number | null, signal: string | null, reason?: string) => void): void;
  kill(): void;
}

export interface HostStartOptions {
  /** Open file descriptors the host inherits as fd 4, 5, ... (the realm's pool memfd, its data-path socket). */
  fds?: number[];
  /** Memory, CPU weight and pids of the host's cgroup, where the node has cgroups. */
  limits?: HostLimits;
}

export interface HostLauncher {
  start(hostId: string, realm: string, options?: HostStartOptions): Promise<HostHandle>;
}

export class HostStartError extends Error {
  readonly type = 'host-start';
  constructor(readonly hostId: string, detail: string) {
    super(`proc host ${hostId} did not start: ${detail}`);
    this.name = 'HostStartError';
  }
}

export const HOST_READY_TIMEOUT_MS = 10_000;
const HOST_MAIN = fileURLToPath(new URL('../host/main.js', import.meta.url));

/**
 * Variables that slow every Node start or leak the parent's debugging/instrumentation into hosts.
 * NODE_EXTRA_CA_CERTS alone costs ~60 ms per start on this platform.
 */
const STRIPPED_ENV = ['NODE_EXTRA_CA_CERTS', 'NODE_OPTIONS', 'NODE_V8_COVERAGE', 'NODE_DEBUG', 'NODE_INSPECT_RESUME_ON_START'];

export function hostEnv(base: NodeJS.ProcessEnv, extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base, ...extra };
  for (const k of STRIPPED_ENV) delete env[k];
  return env;
}

/**
 * Node flags for proc hosts, for profiling only (`SIGMA_HOST_NODE_FLAGS="--cpu-prof --cpu-prof-dir=/tmp/p"`):
 * hosts never inherit NODE_OPTIONS (above), so this is the one way to pass them.
 */
export const HOST_NODE_FLAGS_ENV = 'SIGMA_HOST_NODE_FLAGS';
export function hostExecArgv(env: NodeJS.ProcessEnv): string[] {
  return (env[HOST_NODE_FLAGS_ENV] ?? '').split(' ').filter((f) => f.length > 0);
}

/** What a sandboxed host gets of the node's environment: nothing of root's but these (plus its own SIGMA_*). */
const SANDBOXED_ENV_KEPT = ['PATH', 'LANG', 'SIGMA_LOG', SPAWN_TRACE_ENV];
/** stdin, stdout, stderr and Node's IPC channel come before the inherited fds. */
const HOST_STDIO_FDS = 4;

export interface ForkHostLauncherOptions {
  env?: Record<string, string>;
  readyTimeoutMs?: number;
  /** Confine every host (a uid per realm, Landlock, seccomp: src/node/sandbox/); absent: plain fork. */
  sandbox?: HostSandbox;
  /** Put each sandboxed host in a cgroup of its own with its limits (the wrapper joins it before exec). */
  cgroups?: HostCgroups;
  /** Something the operator should know (a protection that could not be applied). */
  onWarning?: (message: string) => void;
  /** The NATS URL, with credentials, for hosts of a realm: sent to each host over IPC before anything else. */
  natsUrl?: (realm: string) => string;
  /** Answers the hosts' service-name lookups (they read no bucket themselves). */
  lookupName?: HostNameLookup;
}

/** Forks real host processes. This file's job is binding to the real world. */
export class ForkHostLauncher implements HostLauncher {
  constructor(private readonly options: ForkHostLauncherOptions = {}) {}

  /** The host's cgroup; a machine that refuses one (an undelegated v2 tree) gets the host without limits, said once. */
  #cgroup(hostId: string, limits: HostLimits): HostCgroup | undefined {
    try {
      return this.options.cgroups?.create(hostId, limits);
    } catch (e) {
      if (!this.#cgroupsFailed) this.options.onWarning?.(`proc hosts run without cgroup limits: ${(e as Error).message}`);
      this.#cgroupsFailed = true;
      return undefined;
    }
  }

  #cgroupsFailed = false;

  start(hostId: string, realm: string, options: HostStartOptions = {}): Promise<HostHandle> {
    const fds = options.fds ?? [];
    const natsUrl = this.options.natsUrl?.(realm);
    // SIGMA_NATS=ipc: the URL comes as the first IPC message, never in the environment (/proc/<pid>/environ).
    const own = { ...this.options.env, SIGMA_HOST_ID: hostId, SIGMA_REALM: realm, ...(natsUrl === undefined ? {} : { SIGMA_NATS: 'ipc' }) };
    const cg = options.limits === undefined || this.options.sandbox === undefined ? undefined : this.#cgroup(hostId, options.limits);
    const sandboxed = this.options.sandbox?.command(realm, HOST_STDIO_FDS + fds.length, hostExecArgv(process.env), cg?.procsFiles);
    const child = fork(HOST_MAIN, [], {
      ...(sandboxed === undefined
        ? { env: hostEnv(process.env, own), execArgv: hostExecArgv(process.env) }
        : { env: { ...keep(process.env, SANDBOXED_ENV_KEPT), ...sandboxed.env, ...own }, execPath: sandboxed.execPath, execArgv: sandboxed.execArgv }),
      stdio: ['ignore', 'inherit', 'inherit', 'ipc', ...fds],
      serialization: 'json',
    });
    const handle = new ForkedHost(hostId, realm, child, cg, this.options.lookupName);
    if (natsUrl !== undefined) handle.send({ t: 'nats', url: natsUrl });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new HostStartError(hostId, `no ready message within ${this.options.readyTimeoutMs ?? HOST_READY_TIMEOUT_MS} ms`));
      }, this.options.readyTimeoutMs ?? HOST_READY_TIMEOUT_MS);
      const onExit = (code: number | null, signal: string | null): void => {
        clearTimeout(timer);
        reject(new HostStartError(hostId, `exited before ready (code ${code}, signal ${signal})`));
      };
      child.once('exit', onExit);
      child.once('error', (e) => {
        clearTimeout(timer);
        reject(new HostStartError(hostId, e.message));
      });
      handle.onMessage((m) => {
        if (m.t !== 'ready') return;
        clearTimeout(timer);
        child.off('exit', onExit);
        resolve(handle);
      });
    });
  }
}

function keep(env: NodeJS.ProcessEnv, names: readonly string[]): Record<string, string> {
  return Object.fromEntries(names.flatMap((n) => (env[n] === undefined ? [] : [[n, env[n]!]])));
}

class ForkedHost implements HostHandle {
  readonly #messageFns: Array<(m: ToNode) => void> = [];
  #exitReason: string | undefined;

  constructor(
    readonly hostId: string,
    readonly realm: string,
    private readonly child: ChildProcess,
    private readonly cgroup?: HostCgroup,
    lookupName?: HostNameLookup,
  ) {
    // First of the exit listeners: what the cgroup says is read before the group goes.
    child.once('exit', () => {
      this.#exitReason = this.#overMemory();
      this.cgroup?.remove();
    });
    // A send to a host that just died fails with EPIPE as an 'error' event: without a listener it would
    // take the node process down. The host's death itself is seen through 'exit'.
    child.on('error', () => {});
    child.on('message', (raw) => {
      const m = decodeToNode(raw);
      if (m === undefined) return; // a host speaking nonsense is ignored; its heartbeat decides its fate
      if (m.t === 'lookup') return void this.#lookup(m.seq, m.key, lookupName);
      for (const fn of this.#messageFns) fn(m);
    });
  }

  async #lookup(seq: number, key: string, lookupName: HostNameLookup | undefined): Promise<void> {
    const record = await lookupName?.(this.realm, key).catch(() => undefined);
    this.send({ t: 'looked-up', seq, ...(record === undefined ? {} : { record }) });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  send(m: ToHost): boolean {
    if (!this.child.connected) return false;
    this.child.send(m);
    return true;
  }

  onMessage(fn: (m: ToNode) => void): void {
    this.#messageFns.push(fn);
  }

  onExit(fn: (code: number | null, signal: string | null, reason?: string) => void): void {
    const report = (code: number | null, signal: string | null): void => fn(code, signal, this.#exitReason);
    if (this.child.exitCode !== null || this.child.signalCode !== null) report(this.child.exitCode, this.child.signalCode);
    else this.child.once('exit', report);
  }

  /** Why the kernel killed it, when that was its memory limit. */
  #overMemory(): string | undefined {
    if (this.cgroup === undefined || this.cgroup.oomKills() === 0) return undefined;
    return `killed by the kernel: over its memory limit of ${this.cgroup.limits.memMb} MB`;
  }

  kill(): void {
    this.child.kill('SIGKILL');
  }
}
