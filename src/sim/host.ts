import type { ToHost, ToNode } from '../host/protocol.js';
import type { HostHandle, HostLauncher } from '../node/host-process.js';
import type { Allocation } from '../datapath/pool.js';
import type { Status } from '../proc/types.js';
import type { Timers } from '../ports/types.js';
import type { SimDataPath } from './datapath.js';
import type { SimPool } from './pools.js';

/**
 * Proc hosts for the simulator: in-process, driven by the injected timers, running stand-in programs
 * named by their module path (`sim:noop`, `sim:sleep`, `sim:fail`, `sim:service`) — importing real
 * modules would bring real I/O timing into a run that must replay exactly. A host inherits its realm's
 * pool from the node's (simulated) data path as a forked host inherits the memfd; each sim proc takes a
 * few buffers in it, owned by the endpoint the node manager gave the proc, and frees them as it ends —
 * except some procs, whose last buffer is still "in flight" when they exit. Taking those back, and all a
 * dead host's procs held, is the node manager's job (its endpoint linger and close, its hostGone).
 */
export const SIM_PROGRAMS: Readonly<Record<string, string>> = {
  noop: 'sim:noop',
  sleep: 'sim:sleep',
  fail: 'sim:fail',
  counter: 'sim:service',
};

/** Buffers a sim proc holds while it runs (1..this). */
export const SIM_PROC_BUFFERS_MAX = 3;

/** What the world learns from hosts: lifecycles for the trace and the invariants. */
export interface HostObserver {
  hostUp(node: string, host: SimHost): void;
  hostDown(node: string, host: SimHost): void;
  procRun(node: string, host: SimHost, pid: string): void;
  procExit(node: string, host: SimHost, pid: string, status: Status): void;
}

export class SimHostLauncher implements HostLauncher {
  readonly hosts = new Map<string, SimHost>();
  #incarnation = 0;
  /** The data path of the node's current incarnation (set at each boot). */
  datapath: SimDataPath | undefined;

  constructor(
    readonly node: string,
    private readonly timers: Timers,
    private readonly observer: HostObserver,
    private readonly options: { startMs?: number } = {},
  ) {}

  start(hostId: string, realm: string): Promise<HostHandle> {
    return new Promise((resolve) =>
      this.timers.setTimeout(() => {
        const h = new SimHost(hostId, `${hostId}#${this.#incarnation++}`, realm, this.node, this.timers, this.datapath?.poolOf(hostId), (host) => this.#gone(host));
        h.launcher = this;
        this.hosts.set(h.uid, h);
        this.observer.hostUp(this.node, h);
        resolve(h);
      }, this.options.startMs ?? 5),
    );
  }

  /** Live hosts of this node. */
  live(): SimHost[] {
    return [...this.hosts.values()].filter((h) => !h.dead);
  }

  /** What the dead host's procs held is the node manager's to reclaim (it hears of the exit). */
  #gone(h: SimHost): void {
    this.hosts.delete(h.uid);
    this.observer.hostDown(this.node, h);
  }

  /** For the observer: a proc event from one of this launcher's hosts. */
  emit(kind: 'run' | 'exit', h: SimHost, pid: string, status?: Status): void {
    if (kind === 'run') this.observer.procRun(this.node, h, pid);
    else this.observer.procExit(this.node, h, pid, status!);
  }
}

interface Running {
  timer: { cancel(): void } | undefined;
  owner: number;
  buffers: Allocation[];
  /** Exits with its last buffer still in flight (sent, never accepted): the node reclaims it. */
  leavesOne: boolean;
}

export class SimHost implements HostHandle {
  readonly pid = undefined;
  readonly #onMessage: Array<(m: ToNode) => void> = [];
  readonly #onExit: Array<(code: number | null, signal: string | null) => void> = [];
  readonly #running = new Map<string, Running>();
  #dead = false;
  /** Hung (fault 'host-hang'): takes no messages and sends none until it resumes or is killed. */
  #hung = false;
  readonly #held: ToNode[] = [];
  /** What the node sent while the host hung: handled, in order, when it resumes (a blocked event loop). */
  readonly #inbox: ToHost[] = [];
  launcher: SimHostLauncher | undefined;

  constructor(
    readonly hostId: string,
    /** Unique within a run (node managers reuse host ids after a restart). */
    readonly uid: string,
    readonly realm: string,
    readonly node: string,
    private readonly timers: Timers,
    /** The realm's pool, inherited at start; undefined when the node had no data path for the host. */
    private readonly pool: SimPool | undefined,
    private readonly onGone: (h: SimHost) => void,
  ) {}

  get dead(): boolean {
    return this.#dead;
  }

  get hung(): boolean {
    return this.#hung;
  }

  get running(): string[] {
    return [...this.#running.keys()];
  }

  send(m: ToHost): boolean {
    if (this.#dead) return false;
    this.timers.defer(() => (this.#hung ? this.#inbox.push(m) : this.#handle(m)));
    return true;
  }

  onMessage(fn: (m: ToNode) => void): void {
    this.#onMessage.push(fn);
  }

  onExit(fn: (code: number | null, signal: string | null) => void): void {
    this.#onExit.push(fn);
  }

  /** A crash (fault injection) or a kill by the node manager: every proc dies with the host. */
  kill(): void {
    if (this.#dead) return;
    this.#dead = true;
    for (const r of this.#running.values()) r.timer?.cancel();
    this.#running.clear();
    this.#held.length = 0;
    this.#inbox.length = 0;
    this.onGone(this);
    this.timers.defer(() => this.#onExit.forEach((f) => f(null, 'SIGKILL')));
  }

  /** Stops (or resumes) answering: what it would have sent meanwhile goes out when it resumes. */
  hang(hung: boolean): void {
    if (this.#dead || hung === this.#hung) return;
    this.#hung = hung;
    if (hung) return;
    for (const m of this.#held.splice(0)) this.#emit(m);
    for (const m of this.#inbox.splice(0)) this.#handle(m);
  }

  /** Fault 'proc-crash': one running proc dies inside a live host. */
  crashProc(pid: string): boolean {
    const r = this.#running.get(pid);
    if (r === undefined) return false;
    r.timer?.cancel();
    this.#exit(pid, { kind: 'crashed', message: 'proc crashed (simulated fault)' }, false);
    return true;
  }

  #emit(m: ToNode): void {
    if (this.#dead) return;
    if (this.#hung) return void this.#held.push(m);
    this.#onMessage.forEach((f) => f(m));
  }

  /** `tidy`: the proc freed what it held as it ended (a crashed one frees nothing: the node reclaims it). */
  #exit(pid: string, status: Status, tidy = true): void {
    const r = this.#running.get(pid);
    if (r === undefined) return;
    this.#running.delete(pid);
    const kept = !tidy ? 0 : r.leavesOne ? r.buffers.length - 1 : r.buffers.length;
    for (let i = 0; i < kept; i++) this.pool?.free(r.owner, r.buffers[i]!);
    this.launcher?.emit('exit', this, pid, status);
    this.#emit({ t: 'exited', pid, status });
  }

  #handle(m: ToHost): void {
    if (this.#dead) return;
    switch (m.t) {
      case 'ping':
        return this.#emit({ t: 'pong', seq: m.seq });
      case 'evict':
        if (this.#running.has(m.pid)) {
          this.#running.get(m.pid)!.timer?.cancel();
          this.#exit(m.pid, { kind: 'evicted', message: 'evicted' });
        }
        return;
      case 'exit':
        return this.kill();
      case 'run':
        return this.#run(m);
    }
  }

  #run(m: Extract<ToHost, { t: 'run' }>): void {
    if (this.#running.has(m.pid)) return;
    const service = m.modulePath === 'sim:service';
    // The owner is the endpoint the node manager opened for the proc, as in a real host.
    const owner = m.endpoint ?? 0;
    const buffers: Allocation[] = [];
    // Buffer count and sizes from the pid, not the PRNG: the pid is already part of the run's history.
    const hash = hashOf(m.pid);
    if (this.pool !== undefined && m.endpoint !== undefined) {
      this.pool.owners.set(owner, m.pid);
      const n = 1 + (hash % SIM_PROC_BUFFERS_MAX);
      for (let i = 0; i < n; i++) {
        const a = this.pool.alloc(owner, i === 0 ? 200 : 3000);
        if (a !== undefined) buffers.push(a);
      }
    }
    const r: Running = { timer: undefined, owner, buffers, leavesOne: buffers.length > 0 && Math.imul(hash, 0x9e3779b1) >>> 30 === 0 };
    this.#running.set(m.pid, r);
    this.launcher?.emit('run', this, m.pid);
    this.#emit({ t: 'started', pid: m.pid, kind: service ? 'service' : 'function', ...(service ? { actorPath: `actor://${this.hostId}/procs/${m.pid}` } : {}) });
    if (service) return;
    const ms = m.modulePath === 'sim:sleep' ? Number(m.args[0] ?? 1e9) : 1;
    const status: Status = m.modulePath === 'sim:fail' ? { kind: 'error', message: 'failed on purpose' } : m.modulePath.startsWith('sim:') ? { kind: 'ok', message: 'ok', data: null } : { kind: 'error', message: `no sim program ${m.modulePath}` };
    r.timer = this.timers.setTimeout(() => this.#exit(m.pid, status), ms);
  }
}

function hashOf(s: string): number {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (h * 31 + s.charCodeAt(i)) >>> 0;
  return h;
}
