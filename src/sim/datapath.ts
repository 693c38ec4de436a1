import { HUB_EP } from '../datapath/descriptor.js';
import { OWNER_MAX } from '../datapath/pool.js';
import type { LocalDataPathApi } from '../proc/data.js';
import type { DataPathPort, DataPathStatus, HostWiring } from '../node/datapath/port.js';
import { REJECT_REASONS } from '../datapath/errors.js';
import type { SimPool, SimPools } from './pools.js';
import { SIM_POOL_BYTES } from './pools.js';

/** Endpoints one simulated node serves at once (src/node/datapath/node-datapath.ts has the same bound; importing it would load the native addon). */
export const SIM_NODE_ENDPOINTS_MAX = 65_536;

/** What the simulated data path tells the run's observer: reclamation the node manager asked for. */
export interface DataPathObserver {
  reclaimed(node: string, realm: string, endpoints: number, buffers: number, afterCrash: boolean): void;
  poolFreed(node: string, realm: string): void;
}

interface RealmPool {
  pool: SimPool;
  hosts: Set<string>;
}

interface HostEntry {
  realm: string;
  hostEp: number;
  attached: boolean;
  endpoints: Set<number>;
}

/**
 * The node manager's data path in the simulator: the bookkeeping of src/node/datapath/node-datapath.ts (one pool
 * per realm created with its first host and freed with its last, node-unique endpoint ids, endpoints
 * closed in batches with one reclamation pass per realm, a dead host's endpoints reclaimed with a scan)
 * over real src/datapath Pools in ArrayBuffers, without memfds, sockets or BPF. The node manager's own
 * decisions (when to open, linger, close, when a host is gone) drive it, exactly as in production.
 * Sim hosts get their realm's pool from here when they start (the fd inheritance of a real fork).
 */
export class SimDataPath implements DataPathPort {
  readonly mode = 'userspace' as const;
  readonly #pools = new Map<string, RealmPool>();
  readonly #hosts = new Map<string, HostEntry>();
  /** endpoint -> host id */
  readonly #endpoints = new Map<number, string>();
  #nextEp = HUB_EP + 1;
  #reclaimed = { buffers: 0, bytes: 0 };
  /** The node process died: its memory (the pools) went with it, and nothing more is done. */
  #crashed = false;

  constructor(
    readonly node: string,
    private readonly pools: SimPools,
    private readonly observer: DataPathObserver,
  ) {}

  prepareHost(hostId: string, realm: string): Promise<HostWiring> {
    if (this.#crashed) return Promise.reject(new Error(`node ${this.node} is down`));
    let rp = this.#pools.get(realm);
    if (rp === undefined) {
      rp = { pool: this.pools.create(this.node, realm), hosts: new Set() };
      this.#pools.set(realm, rp);
    }
    const hostEp = this.#allocEp(hostId);
    this.#hosts.set(hostId, { realm, hostEp, attached: false, endpoints: new Set() });
    rp.hosts.add(hostId);
    // No memfd and no connection in the simulator: fds stay empty.
    const attach = { t: 'dp-attach' as const, node: this.node, hostEp, poolFd: -1, socketFd: -1, poolBytes: SIM_POOL_BYTES, mode: this.mode };
    return Promise.resolve({ hostId, fds: [], attach });
  }

  /** The pool a starting host inherits (undefined: the host runs without a data path). */
  poolOf(hostId: string): SimPool | undefined {
    const h = this.#hosts.get(hostId);
    return h === undefined ? undefined : this.#pools.get(h.realm)?.pool;
  }

  attachHost(wiring: HostWiring): boolean {
    const h = this.#hosts.get(wiring.hostId);
    if (h === undefined) return false;
    h.attached = true;
    return true;
  }

  openEndpoint(hostId: string): number | undefined {
    const h = this.#hosts.get(hostId);
    if (h === undefined || !h.attached || this.#endpoints.size >= SIM_NODE_ENDPOINTS_MAX) return undefined;
    const ep = this.#allocEp(hostId);
    h.endpoints.add(ep);
    return ep;
  }

  closeEndpoints(endpoints: readonly number[], afterCrash = false): void {
    const byRealm = new Map<string, Set<number>>();
    for (const ep of endpoints) {
      const hostId = this.#endpoints.get(ep);
      if (hostId === undefined) continue;
      this.#endpoints.delete(ep);
      const h = this.#hosts.get(hostId);
      if (h === undefined) continue;
      h.endpoints.delete(ep);
      const set = byRealm.get(h.realm) ?? new Set<number>();
      byRealm.set(h.realm, set.add(ep));
    }
    for (const [realm, set] of byRealm) {
      const rp = this.#pools.get(realm);
      if (rp === undefined) continue;
      // As the real data path: after clean exits a pool with nothing live is not scanned.
      const r = afterCrash || rp.pool.pool.unitsLive() > 0 ? rp.pool.pool.reclaimAll(set) : { buffers: 0, bytes: 0 };
      this.#reclaimed.buffers += r.buffers;
      this.#reclaimed.bytes += r.bytes;
      this.observer.reclaimed(this.node, realm, set.size, r.buffers, afterCrash);
    }
  }

  hostGone(hostId: string): void {
    const h = this.#hosts.get(hostId);
    if (h === undefined) return;
    this.closeEndpoints([...h.endpoints, h.hostEp], true);
    this.#hosts.delete(hostId);
    const rp = this.#pools.get(h.realm);
    if (rp === undefined) return;
    rp.hosts.delete(hostId);
    if (rp.hosts.size > 0) return;
    this.#pools.delete(h.realm);
    this.pools.retire(rp.pool, true);
    this.observer.poolFreed(this.node, h.realm);
  }

  noteHostStats(): void {}

  /** No node-local endpoints in the simulator (the gateway and `sigma call` are not simulated). */
  local(): LocalDataPathApi | undefined {
    return undefined;
  }

  status(): DataPathStatus {
    const pools: DataPathStatus['pools'] = {};
    for (const [realm, rp] of this.#pools) {
      const s = rp.pool.pool.stats();
      pools[realm] = { bytesTotal: s.bytesFree + s.bytesUsed, bytesFree: s.bytesFree, bytesUsed: s.bytesUsed, hosts: rp.hosts.size };
    }
    const none = Object.fromEntries(REJECT_REASONS.map((r) => [r, 0])) as DataPathStatus['receiverRejects'];
    return { mode: this.mode, reason: 'simulated', endpoints: this.#endpoints.size, pools, violations: {}, receiverRejects: none, reclaimed: { ...this.#reclaimed }, hubRouted: 0, hubCopied: 0 };
  }

  close(): void {
    for (const id of [...this.#hosts.keys()]) this.hostGone(id);
  }

  /** The node process was killed: its pools vanish unexamined (a crash frees memory, not buffers). */
  crash(): void {
    this.#crashed = true;
    for (const rp of this.#pools.values()) this.pools.retire(rp.pool, false);
    this.#pools.clear();
    this.#hosts.clear();
    this.#endpoints.clear();
  }

  #allocEp(hostId: string): number {
    for (;;) {
      const ep = this.#nextEp;
      this.#nextEp = ep >= OWNER_MAX ? HUB_EP + 1 : ep + 1;
      if (!this.#endpoints.has(ep)) {
        this.#endpoints.set(ep, hostId);
        return ep;
      }
    }
  }
}
