import type { ToHost, ToNode } from '../host/protocol.js';
import type { HostHandle, HostLauncher } from '../node/host-process.js';
import type { Timers } from '../ports/types.js';

/**
 * Proc hosts for the simulator: in-process, driven by the injected timers, running stand-in programs
 * named by their module path (`sim:noop`, `sim:sleep`, `sim:fail`, `sim:service`) — importing real
 * modules would bring real I/O timing into a run that must replay exactly.
 */
export const SIM_PROGRAMS: Readonly<Record<string, string>> = {
  noop: 'sim:noop',
  sleep: 'sim:sleep',
  fail: 'sim:fail',
  counter: 'sim:service',
};

export class SimHostLauncher implements HostLauncher {
  readonly hosts = new Map<string, SimHost>();

  constructor(
    private readonly timers: Timers,
    private readonly options: { startMs?: number } = {},
  ) {}

  start(hostId: string, realm: string): Promise<HostHandle> {
    return new Promise((resolve) =>
      this.timers.setTimeout(() => {
        const h = new SimHost(hostId, realm, this.timers);
        this.hosts.set(hostId, h);
        resolve(h);
      }, this.options.startMs ?? 5),
    );
  }
}

export class SimHost implements HostHandle {
  readonly pid = undefined;
  readonly #onMessage: Array<(m: ToNode) => void> = [];
  readonly #onExit: Array<(code: number | null, signal: string | null) => void> = [];
  readonly #running = new Map<string, { cancel(): void } | undefined>();
  #dead = false;

  constructor(
    readonly hostId: string,
    readonly realm: string,
    private readonly timers: Timers,
  ) {}

  get running(): number {
    return this.#running.size;
  }

  send(m: ToHost): boolean {
    if (this.#dead) return false;
    this.timers.defer(() => this.#handle(m));
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
    for (const t of this.#running.values()) t?.cancel();
    this.#running.clear();
    this.timers.defer(() => this.#onExit.forEach((f) => f(null, 'SIGKILL')));
  }

  #emit(m: ToNode): void {
    if (!this.#dead) this.#onMessage.forEach((f) => f(m));
  }

  #exit(pid: string, status: Extract<ToNode, { t: 'exited' }>['status']): void {
    if (!this.#running.has(pid)) return;
    this.#running.delete(pid);
    this.#emit({ t: 'exited', pid, status });
  }

  #handle(m: ToHost): void {
    if (this.#dead) return;
    switch (m.t) {
      case 'ping':
        return this.#emit({ t: 'pong', seq: m.seq });
      case 'evict':
        if (this.#running.has(m.pid)) {
          this.#running.get(m.pid)?.cancel();
          this.#exit(m.pid, { kind: 'evicted', message: 'evicted' });
        }
        return;
      case 'exit':
        return this.kill();
      case 'run': {
        if (this.#running.has(m.pid)) return;
        const service = m.modulePath === 'sim:service';
        this.#running.set(m.pid, undefined);
        this.#emit({ t: 'started', pid: m.pid, kind: service ? 'service' : 'function', ...(service ? { actorPath: `actor://${this.hostId}/procs/${m.pid}` } : {}) });
        if (service) return;
        const ms = m.modulePath === 'sim:sleep' ? Number(m.args[0] ?? 1e9) : 1;
        const status = m.modulePath === 'sim:fail' ? { kind: 'error' as const, message: 'failed on purpose' } : m.modulePath.startsWith('sim:') ? { kind: 'ok' as const, message: 'ok', data: null } : { kind: 'error' as const, message: `no sim program ${m.modulePath}` };
        this.#running.set(m.pid, this.timers.setTimeout(() => this.#exit(m.pid, status), ms));
      }
    }
  }
}
