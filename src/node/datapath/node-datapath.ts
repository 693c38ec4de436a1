import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { DataPathMode } from '../../config/cluster.js';
import { F_COPY, F_CREDIT, F_REJECTED, HUB_EP, rejectReason, SYSTEM_REALM } from '../../datapath/descriptor.js';
import { REJECT_REASONS } from '../../datapath/errors.js';
import { F_DST, F_FLAGS, F_GENERATION, F_LENGTH, F_OFFSET, F_SRC, FRAME_BYTES, SocketLink, type FrameLink } from '../../datapath/frames.js';
import { BusyPoll, DEFAULT_BUSY_POLL_US } from '../../datapath/busy-poll.js';
import { Hub } from '../../datapath/hub.js';
import { realBusyPollPorts } from '../../datapath/busy-poll-real.js';
import { Ownership, type RejectCounts } from '../../datapath/ownership.js';
import { OWNER_MAX, Pool } from '../../datapath/pool.js';
import { Endpoint } from '../../datapath/endpoint.js';
import { linkPair } from '../../datapath/frames.js';
import type { HostDataPathStats } from '../../datapath/status.js';
import { ProcData, type NameLookup } from '../../datapath/proc-data.js';
import { realTimers } from '../../ports/real.js';
import type { LocalDataPathApi } from '../../proc/data.js';
import { BpfDataPath, bpfStatus } from '../../native/bpf.js';
import { closeFd, mapFd, memfdCreate, socketFd, socketIo, unmap } from '../../native/index.js';
import type { DataPathPort, DataPathStatus, HostWiring } from './port.js';
import { CrossNode, type CrossHooks } from './cross.js';
import type { WireRefusal } from '../../datapath/refusal.js';
import { endpointRange } from './ids.js';
import { CpuHomes, nodeCpus } from './cpu-homes.js';
import { LoopbackPairs } from './loopback.js';
import type { RemoteChannelOptions } from '../../datapath/remote.js';
import type { DataPathAddress } from '../../control/protocol/index.js';
import { refusalError } from '../../datapath/refusal.js';
import type { HostHandle } from '../host-process.js';

/**
 * The node manager's data path (the real binding of DataPathPort: memfds, sockets, the kernel).
 *
 * - One pool per (realm, node): a memfd formatted as a Pool when the realm's first host is prepared,
 *   inherited by that realm's hosts only (fd 4 at fork; memfds are close-on-exec, so no other host gets
 *   it), unmapped and closed when the realm's last host is gone.
 * - Each host gets one TCP loopback connection to this process: the host keeps one end, this process
 *   attaches the other to the Hub. In `userspace` mode every descriptor crosses the Hub, which checks
 *   the sender by the connection it came on and the realm policy. In `bpf` mode the host's end is in
 *   the SOCKHASH with its (realm, endpoint) in SK_STORAGE and each proc's endpoint in ep_info: the
 *   kernel redirects allowed descriptors straight into the destination host's socket and diverts the
 *   rest to the hub socket (HUB_EP) with a reason, which is counted here and freed on the sender's
 *   behalf. What the verdict passes to the peer (a split descriptor) reaches the Hub and is judged there.
 *   Data for an endpoint exported to the sender's realm (spec.exports), and its answers, arrive there
 *   too, flagged F_COPY: the Hub copies them into the destination realm's pool.
 * - Endpoint ids are cluster-unique (they own pool buffers, here and in other nodes' pools), allocated
 *   here in this node's range (ids.ts); when a proc exits or its host dies, its endpoints leave the
 *   maps and the Hub and every buffer they held is reclaimed.
 * - With `cross` set, descriptors to another node's endpoints (told apart by their id) reach this process
 *   — the Hub's `foreign` hook in userspace mode, the hub socket in bpf mode — and go over the
 *   node-to-node channel (cross.ts); what peers send comes back in through `LocalSide.deliver`.
 */

export const DEFAULT_POOL_BYTES = 64 << 20;
/** Endpoints (procs + hosts) one node serves at once. */
export const NODE_ENDPOINTS_MAX = 65_536;
/** What a host inherits at fork: stdio 0-2, the IPC channel 3, then the realm's pool memfd and its end of its connection. */
const HOST_POOL_FD = 4;
const HOST_SOCKET_FD = 5;

interface RealmPool {
  realmNo: number;
  fd: number;
  buffer: ArrayBuffer;
  pool: Pool;
  own: Ownership;
  hosts: Set<string>;
  /** Kept while the node-local endpoint serves a gateway route of the realm, hosts here or not. */
  kept: boolean;
}

interface HostEntry {
  hostId: string;
  realm: string;
  hostEp: number;
  link?: FrameLink;
  handle?: HostHandle;
  /** The host's end, until the host that inherited it at fork is up (destroyed either way). */
  unsent?: Socket;
  /** This process's end (the hub reads it once registered). */
  mine?: Socket;
  endpoints: Set<number>;
}

export interface NodeDataPathOptions {
  node: string;
  mode: DataPathMode;
  log: Logger;
  poolBytes?: number;
  /**
   * A smaller pool for some realms (their quota's poolMb), read when the realm's pool is made, after
   * `poolSizeKnown` (the realm's record read, if the node had not seen it yet) has settled.
   */
  poolBytesFor?: (realm: string) => number | undefined;
  poolSizeKnown?: (realm: string) => Promise<void>;
  /** Busy-poll window after traffic, µs, for this process's hub and for every host (src/datapath/busy-poll.ts); 0: never. */
  busyPollUs?: number;
  /** Procs here reach other nodes' endpoints: this node's index (its endpoint range) and where its channel listens. */
  cross?: { index: number; host: string; port: number; channel?: Partial<RemoteChannelOptions> };
}

export class NodeDataPath implements DataPathPort {
  readonly mode: 'bpf' | 'userspace';
  readonly reason: string;
  readonly #o: NodeDataPathOptions & { poolBytes: number };
  readonly #pairs: LoopbackPairs;
  readonly #bpf: BpfDataPath | undefined;
  readonly #hub: Hub;
  readonly #pools = new Map<string, RealmPool>();
  readonly #hosts = new Map<string, HostEntry>();
  /** Where each host spins during a ping-pong (src/node/datapath/cpu-homes.ts). */
  readonly #homes = new CpuHomes(nodeCpus());
  /** endpoint -> host id */
  readonly #endpoints = new Map<number, string>();
  readonly #violations: Record<string, number> = {};
  readonly #hostStats = new Map<string, HostDataPathStats>();
  readonly #deadHostRejects: RejectCounts = zeroRejects();
  /** Per realm, an endpoint in this process (the gateway's, `sigma call`'s): realm -> its endpoint. */
  readonly #locals = new Map<string, { endpoint: number; data: ProcData; link: FrameLink }>();
  readonly #localLinks = new Map<number, FrameLink>();
  #hubSocket: Socket | undefined;
  #cross: CrossNode | undefined;
  readonly #epRange: { first: number; last: number };
  #nextEp: number;
  #realmSeq = 0;
  /** Realm names -> the numbers the kernel maps know them by; kept for the node's life (realms are few). */
  readonly #realmNos = new Map<string, number>();
  /** Endpoints exported to other realms (spec.exports): endpoint -> those realms. */
  readonly #exports = new Map<number, readonly string[]>();
  #reclaimed = { buffers: 0, bytes: 0 };
  /** Kernel counters of endpoints that are gone (their metrics rows are deleted). */
  #kernelGone = { msgs: 0, bytes: 0, rejects: 0 };

  private constructor(o: NodeDataPathOptions & { poolBytes: number }, pairs: LoopbackPairs, bpfPath: BpfDataPath | undefined, reason: string) {
    this.#o = o;
    this.#pairs = pairs;
    this.#bpf = bpfPath;
    this.mode = bpfPath === undefined ? 'userspace' : 'bpf';
    this.reason = reason;
    this.#epRange = o.cross === undefined ? { first: HUB_EP + 1, last: OWNER_MAX } : endpointRange(o.cross.index);
    this.#nextEp = this.#epRange.first;
    const busyPollUs = o.busyPollUs ?? DEFAULT_BUSY_POLL_US;
    const poll = busyPollUs > 0 ? new BusyPoll(busyPollUs, realBusyPollPorts) : undefined;
    this.#hub = new Hub({ logger: o.log, foreign: (realm, frames, at) => this.#foreign(realm, frames, at), io: socketIo(), ...(poll === undefined ? {} : { poll }) });
  }

  /** Chooses the mode (auto: bpf when it loads, else userspace, saying why) and opens the pairing socket. */
  static async create(options: NodeDataPathOptions): Promise<NodeDataPath> {
    const o = { poolBytes: DEFAULT_POOL_BYTES, ...options };
    let dp: BpfDataPath | undefined;
    let reason = 'configured: userspace';
    if (o.mode !== 'userspace') {
      const st = bpfStatus();
      if (st.available) {
        try {
          dp = BpfDataPath.load();
          reason = `${o.mode === 'auto' ? 'auto' : 'configured'}: the BPF object loaded`;
        } catch (e) {
          reason = `the BPF object did not load (${(e as Error).message})`;
        }
      } else reason = st.reason ?? 'BPF unavailable';
      if (dp === undefined && o.mode === 'bpf') throw new Error(`data path mode 'bpf' was configured but ${reason}; use 'auto' or 'userspace'`);
      if (dp === undefined) reason = `auto: userspace, because ${reason}`;
    }
    const self = new NodeDataPath(o, await LoopbackPairs.listen(), dp, reason);
    o.log.info({ mode: self.mode, reason }, `data path: ${self.mode} mode (${reason})`);
    if (dp !== undefined) await self.#startHubSocket(dp);
    if (o.cross !== undefined) {
      const { index, host, port, channel } = o.cross;
      self.#cross = await CrossNode.start({ nodeId: o.node, index, host, port, timers: realTimers, log: o.log, hooks: self.#crossHooks(), ...(channel === undefined ? {} : { channel }) });
    }
    return self;
  }

  async prepareHost(hostId: string, realm: string): Promise<HostWiring> {
    if (!this.#pools.has(realm)) await this.#o.poolSizeKnown?.(realm).catch(() => {});
    const rp = this.#pool(realm);
    const hostEp = this.#allocEp(hostId);
    const entry: HostEntry = { hostId, realm, hostEp, endpoints: new Set() };
    this.#hosts.set(hostId, entry);
    rp.hosts.add(hostId);
    try {
      const { mine, theirs } = await this.#pairs.pair();
      entry.unsent = theirs;
      entry.mine = mine;
      this.#bpf?.attachSocket(theirs, rp.realmNo, hostEp);
      const reg = this.#hub.attachSocket({ realm, endpoint: hostEp }, mine);
      if (reg._tag === 'Left') throw reg.left;
      entry.link = reg.right;
      mine.resume(); // accepted paused (pauseOnConnect): the Hub reads from here on
      const home = this.#homes.take(hostId);
      const attach = { t: 'dp-attach', node: this.#o.node, hostEp, poolFd: HOST_POOL_FD, socketFd: HOST_SOCKET_FD, poolBytes: rp.pool.layout.poolBytes, mode: this.mode, crossNode: this.#cross !== undefined, busyPollUs: this.#o.busyPollUs ?? DEFAULT_BUSY_POLL_US } as const;
      return { hostId, fds: [rp.fd, socketFd(theirs)], attach: home === undefined ? attach : { ...attach, homeCpu: home } };
    } catch (e) {
      this.hostGone(hostId);
      throw e;
    }
  }

  attachHost(wiring: HostWiring, handle: HostHandle): boolean {
    const entry = this.#hosts.get(wiring.hostId);
    if (entry === undefined) return false;
    entry.handle = handle;
    // The host inherited its end at fork: this process's copy of it goes (the connection stays, held by the host).
    entry.unsent?.destroy();
    entry.unsent = undefined;
    return handle.send(wiring.attach);
  }

  openEndpoint(hostId: string, exports: readonly string[] = []): number | undefined {
    const h = this.#hosts.get(hostId);
    if (h === undefined || h.link === undefined || h.handle === undefined) return undefined;
    const ep = this.#allocEp(hostId);
    try {
      this.#bpf?.addHostedEndpoint(this.#pools.get(h.realm)!.realmNo, h.hostEp, ep);
      const r = this.#hub.attach({ realm: h.realm, endpoint: ep }, h.link);
      if (r._tag === 'Left') throw r.left;
      if (exports.length > 0) this.#exports.set(ep, exports);
      for (const realm of exports) {
        const x = this.#hub.export(ep, realm);
        if (x._tag === 'Left') throw x.left;
        this.#bpf?.exportTo(this.#realmNo(realm), ep);
      }
    } catch (e) {
      this.#o.log.warn({ err: e, hostId, endpoint: ep }, 'data path: could not register an endpoint; the proc runs without one');
      this.#forget(ep);
      return undefined;
    }
    h.endpoints.add(ep);
    return ep;
  }

  /**
   * `afterCrash`: a process of the realm died (its host), perhaps in the middle of an allocation or a
   * free, so the pool is scanned even when no buffer is counted live. After clean exits a pool with
   * nothing live is not scanned — most procs never touch the data path, and a scan of a large pool
   * costs a quarter of a millisecond.
   */
  closeEndpoints(endpoints: readonly number[], afterCrash = false): void {
    this.#cross?.localGone(endpoints);
    // One pass over a realm's pool tables reclaims any number of owners: group by realm.
    const byRealm = new Map<string, Set<number>>();
    /** Realms the departing endpoints were exported to: their callers learn it too. */
    const callers = new Map<string, number[]>();
    for (const endpoint of endpoints) {
      const hostId = this.#endpoints.get(endpoint);
      if (hostId === undefined) continue;
      const h = this.#hosts.get(hostId);
      h?.endpoints.delete(endpoint);
      for (const realm of this.#exports.get(endpoint) ?? []) {
        const eps = callers.get(realm);
        if (eps === undefined) callers.set(realm, [endpoint]);
        else eps.push(endpoint);
      }
      this.#forget(endpoint);
      if (h === undefined) continue;
      const set = byRealm.get(h.realm) ?? new Set<number>();
      byRealm.set(h.realm, set.add(endpoint));
    }
    // A copy across realms is owned by its sender in the receiving realm's pool until accepted there:
    // once the hub has copied anything, every pool is searched for every departing owner.
    const copies = this.#hub.stats().copied > 0;
    const everyOwner = copies ? new Set([...byRealm.values()].flatMap((set) => [...set])) : undefined;
    const reclaim = (rp: RealmPool, owners: ReadonlySet<number>): void => {
      const r = rp.pool.reclaimAll(owners);
      this.#reclaimed.buffers += r.buffers;
      this.#reclaimed.bytes += r.bytes;
    };
    if (everyOwner !== undefined) for (const [realm, rp] of this.#pools) if (!byRealm.has(realm) && rp.pool.unitsLive() > 0) reclaim(rp, everyOwner);
    for (const [realm, set] of byRealm) {
      const rp = this.#pools.get(realm);
      if (rp === undefined) continue;
      if (afterCrash || rp.pool.unitsLive() > 0) reclaim(rp, everyOwner ?? set);
      // Senders free what they sent there that was never accepted (those buffers are still theirs).
      this.#tellGone(realm, [...set]);
    }
    for (const [realm, eps] of callers) this.#tellGone(realm, eps);
  }

  /** The realm's hosts and node-local endpoint: calls waiting on `endpoints` fail, unaccepted sends are freed. */
  #tellGone(realm: string, endpoints: number[]): void {
    const rp = this.#pools.get(realm);
    for (const id of rp?.hosts ?? []) this.#hosts.get(id)?.handle?.send({ t: 'dp-gone', endpoints });
    const local = this.#locals.get(realm);
    if (local !== undefined) for (const endpoint of endpoints) local.data.destinationGone(endpoint);
  }

  /**
   * An endpoint of `realm` living in this process, for callers inside the node (the gateway, `sigma
   * call`): undefined while the realm has no pool here (no host of it on this node), unless `keep`
   * (the gateway's): then the pool is made if need be and kept, with the endpoint, until
   * releaseLocal, whether or not the realm has hosts here. In bpf mode its ep_info entry points at the
   * hub socket, so hosts' descriptors to it arrive there.
   */
  local(realm: string, lookup: NameLookup, options: { keep?: boolean } = {}): LocalDataPathApi | undefined {
    let rp = this.#pools.get(realm);
    if (rp === undefined && options.keep === true) {
      try {
        rp = this.#pool(realm);
      } catch (e) {
        this.#o.log.warn({ err: e, realm }, 'data path: could not make a pool for the gateway');
        return undefined;
      }
    }
    if (rp !== undefined && options.keep === true) rp.kept = true;
    const known = this.#locals.get(realm);
    if (known !== undefined) return known.data;
    if (rp === undefined) return undefined;
    const endpoint = this.#allocEp(`local:${realm}`);
    const [mine, theirs] = linkPair();
    try {
      this.#bpf?.addHostedEndpoint(rp.realmNo, HUB_EP, endpoint);
      const r = this.#hub.attach({ realm, endpoint }, theirs);
      if (r._tag === 'Left') throw r.left;
    } catch (e) {
      this.#o.log.warn({ err: e, realm }, 'data path: could not open a node-local endpoint');
      this.#forget(endpoint);
      return undefined;
    }
    const data = new ProcData({ endpoint: new Endpoint({ id: endpoint, pool: rp.pool, link: mine, timers: realTimers }), node: this.#o.node, realm, timers: realTimers, lookup, log: this.#o.log, crossNode: this.#cross !== undefined });
    this.#locals.set(realm, { endpoint, data, link: theirs });
    this.#localLinks.set(endpoint, theirs);
    return data;
  }

  /** The gateway no longer needs `realm`'s endpoint: the pool goes with the realm's last host (now, if none). */
  releaseLocal(realm: string): void {
    const rp = this.#pools.get(realm);
    if (rp === undefined) return;
    rp.kept = false;
    if (rp.hosts.size === 0) this.#freePool(realm, rp);
  }

  hostGone(hostId: string): void {
    const h = this.#hosts.get(hostId);
    if (h === undefined) return;
    this.closeEndpoints([...h.endpoints, h.hostEp], true);
    this.#hosts.delete(hostId);
    this.#homes.release(hostId);
    h.link?.close();
    h.mine?.destroy();
    h.unsent?.destroy();
    const stats = this.#hostStats.get(hostId);
    this.#hostStats.delete(hostId);
    if (stats !== undefined) for (const r of REJECT_REASONS) this.#deadHostRejects[r] += stats.rejected[r] ?? 0;
    const rp = this.#pools.get(h.realm);
    if (rp === undefined) return;
    rp.hosts.delete(hostId);
    if (rp.hosts.size === 0 && !rp.kept) this.#freePool(h.realm, rp);
  }

  /** Hosts run tenant code, which can write on the IPC channel too: keep only counts that are counts. */
  noteHostStats(hostId: string, stats: HostDataPathStats): void {
    if (!this.#hosts.has(hostId)) return;
    const count = (v: unknown): number => (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : 0);
    const rejected = zeroRejects();
    for (const r of REJECT_REASONS) rejected[r] = count(stats.rejected[r]);
    this.#hostStats.set(hostId, { endpoints: count(stats.endpoints), rejected, misrouted: count(stats.misrouted), received: count(stats.received), sent: count(stats.sent) });
  }

  status(): DataPathStatus {
    const pools: DataPathStatus['pools'] = {};
    for (const [realm, rp] of this.#pools) {
      const s = rp.pool.stats();
      pools[realm] = { bytesTotal: s.bytesFree + s.bytesUsed, bytesFree: s.bytesFree, bytesUsed: s.bytesUsed, hosts: rp.hosts.size };
    }
    const receiverRejects = { ...this.#deadHostRejects };
    for (const s of this.#hostStats.values()) for (const r of REJECT_REASONS) receiverRejects[r] += s.rejected[r] ?? 0;
    const hub = this.#hub.stats();
    const violations: Record<string, number> = { ...this.#violations };
    for (const [reason, n] of Object.entries(hub.dropped)) if (n > 0) violations[reason === 'spoofed-src' ? 'src-spoofed' : reason] = (violations[reason === 'spoofed-src' ? 'src-spoofed' : reason] ?? 0) + n;
    let kernel: DataPathStatus['kernel'];
    if (this.#bpf !== undefined) {
      kernel = { ...this.#kernelGone };
      for (const ep of [...this.#endpoints.keys(), HUB_EP]) {
        const m = this.#bpf.metrics(ep);
        kernel.msgs += m.msgs;
        kernel.bytes = (kernel.bytes ?? 0) + m.bytes;
        kernel.rejects += m.rejects;
      }
    }
    return {
      mode: this.mode,
      reason: this.reason,
      endpoints: this.#endpoints.size,
      pools,
      violations,
      receiverRejects,
      reclaimed: { ...this.#reclaimed },
      hubRouted: hub.routed,
      hubCopied: hub.copied,
      ...(kernel === undefined ? {} : { kernel }),
      ...(this.#cross === undefined ? {} : { remote: this.#cross.stats() }),
    };
  }

  /** Where this node's channel listens (its heartbeat carries it); undefined without one. */
  peerAddress(): DataPathAddress | undefined {
    return this.#cross?.address;
  }

  get cross(): CrossNode | undefined {
    return this.#cross;
  }

  close(): void {
    void this.#cross?.close();
    for (const id of [...this.#hosts.keys()]) this.hostGone(id);
    this.#hubSocket?.destroy();
    this.#hub.close();
    this.#pairs.close();
    this.#bpf?.close();
  }

  #pool(realm: string): RealmPool {
    const known = this.#pools.get(realm);
    if (known !== undefined) return known;
    const bytes = Math.min(this.#o.poolBytes, this.#o.poolBytesFor?.(realm) ?? this.#o.poolBytes);
    const fd = memfdCreate(bytes, `sigma-pool-${realm}`);
    let buffer: ArrayBuffer | undefined;
    try {
      buffer = mapFd(fd, bytes);
      const pool = Pool.format(buffer);
      if (pool._tag === 'Left') throw pool.left;
      const rp: RealmPool = { realmNo: this.#realmNo(realm), fd, buffer, pool: pool.right, own: new Ownership(pool.right), hosts: new Set(), kept: false };
      this.#pools.set(realm, rp);
      this.#hub.attachPool(realm, pool.right);
      return rp;
    } catch (e) {
      if (buffer !== undefined) unmap(buffer);
      closeFd(fd);
      throw e;
    }
  }

  #realmNo(realm: string): number {
    let n = this.#realmNos.get(realm);
    if (n === undefined) this.#realmNos.set(realm, (n = ++this.#realmSeq));
    return n;
  }

  #freePool(realm: string, rp: RealmPool): void {
    const local = this.#locals.get(realm);
    if (local !== undefined) {
      this.#locals.delete(realm);
      this.#localLinks.delete(local.endpoint);
      local.data.close();
      this.#forget(local.endpoint);
    }
    this.#pools.delete(realm);
    this.#cross?.forgetPool(rp.pool);
    unmap(rp.buffer);
    closeFd(rp.fd);
  }

  #allocEp(hostId: string): number {
    if (this.#endpoints.size >= NODE_ENDPOINTS_MAX) throw new Error(`the node already serves ${NODE_ENDPOINTS_MAX} data-path endpoints; stop idle procs`);
    for (;;) {
      const ep = this.#nextEp;
      this.#nextEp = ep >= this.#epRange.last ? this.#epRange.first : ep + 1;
      if (!this.#endpoints.has(ep)) {
        this.#endpoints.set(ep, hostId);
        return ep;
      }
    }
  }

  #forget(ep: number): void {
    const hostId = this.#endpoints.get(ep);
    this.#endpoints.delete(ep);
    this.#hub.detach(ep);
    const exports = this.#exports.get(ep) ?? [];
    this.#exports.delete(ep);
    try {
      for (const realm of exports) this.#bpf?.unexport(this.#realmNo(realm), ep);
      this.#bpf?.removeEndpoint(ep, { hosted: hostId !== undefined && this.#hosts.get(hostId)?.hostEp !== ep });
      const m = this.#bpf?.takeMetrics(ep);
      if (m !== undefined) {
        this.#kernelGone.msgs += m.msgs;
        this.#kernelGone.bytes += m.bytes;
        this.#kernelGone.rejects += m.rejects;
      }
    } catch (e) {
      this.#o.log.warn({ err: e, endpoint: ep }, 'data path: could not remove an endpoint from the kernel maps');
    }
  }

  /** BPF mode: the hub's own socket (system realm, HUB_EP) receives what the verdict diverts. */
  async #startHubSocket(dp: BpfDataPath): Promise<void> {
    const { mine, theirs } = await this.#pairs.pair();
    mine.pause(); // the sink: never read (the verdict redirects into `theirs`' receive queue)
    dp.attachSocket(theirs, SYSTEM_REALM, HUB_EP);
    this.#hubSocket = theirs;
    const link = new SocketLink(theirs);
    link.onFrames((frames) => this.#diverted(frames));
    theirs.resume();
  }

  /** Descriptors the kernel refused: count by reason, free the buffer on the (kernel-stamped) sender's behalf. */
  #diverted(frames: Buffer): void {
    for (let at = 0; at < frames.length; at += FRAME_BYTES) {
      const flags = frames.readUInt32LE(at + F_FLAGS);
      if (this.#cross?.isRemote(frames.readUInt32LE(at + F_DST)) === true && (flags & F_COPY) === 0) {
        // Another node's endpoint: its ep_info entry points here, or it has none yet (unknown-dst).
        const why = rejectReason(flags);
        const realm = why === undefined || why === 'unknown-dst' ? this.#senderRealm(frames.readUInt32LE(at + F_SRC)) : undefined;
        if (realm !== undefined) {
          this.#cross.route(frames, at, realm);
          continue;
        }
      }
      if ((flags & (F_REJECTED | F_COPY)) === 0) {
        // Allowed by the verdict and addressed to an endpoint in this process (see local()).
        const to = this.#localLinks.get(frames.readUInt32LE(at + F_DST));
        if (to !== undefined && to.write(frames.subarray(at, at + FRAME_BYTES))) continue;
      }
      // To an exported endpoint of another realm, or its answer: the hub copies it across the pools.
      if ((flags & F_COPY) !== 0 && this.#hub.copyDiverted(frames, at)) continue;
      const reason = rejectReason(flags) ?? ((flags & F_COPY) !== 0 ? 'cross-realm' : 'dst-gone');
      const n = (this.#violations[reason] = (this.#violations[reason] ?? 0) + 1);
      if ((n & (n - 1)) === 0) this.#o.log.warn({ reason, count: n }, `data path: the kernel diverted a descriptor (${reason})`);
      if ((flags & F_CREDIT) !== 0) continue;
      const src = frames.readUInt32LE(at + F_SRC);
      const hostId = this.#endpoints.get(src);
      const realm = hostId === undefined ? undefined : this.#hosts.get(hostId)?.realm;
      const rp = realm === undefined ? undefined : this.#pools.get(realm);
      rp?.own.release({ offset: frames.readUInt32LE(at + F_OFFSET), length: frames.readUInt32LE(at + F_LENGTH), generation: frames.readUInt32LE(at + F_GENERATION) }, src);
    }
  }

  // ---- the node-to-node channel (cross.ts) ------------------------------------------------------------

  /** Userspace mode (and the node's own endpoints in both): a frame from `realm` to an id the hub does not know. */
  #foreign(realm: string, frames: Buffer, at: number): boolean {
    if (this.#cross?.isRemote(frames.readUInt32LE(at + F_DST)) !== true) return false;
    this.#cross.route(frames, at, realm);
    return true;
  }

  /** The realm of a sending endpoint of a host of this node. */
  #senderRealm(src: number): string | undefined {
    const hostId = this.#endpoints.get(src);
    return hostId === undefined ? undefined : this.#hosts.get(hostId)?.realm;
  }

  /** A proc's (or the node's own) endpoint's realm; hosts' own endpoints receive nothing from peers. */
  #receiverRealm(endpoint: number): string | undefined {
    const hostId = this.#endpoints.get(endpoint);
    if (hostId === undefined) return undefined;
    const h = this.#hosts.get(hostId);
    if (h !== undefined) return h.hostEp === endpoint ? undefined : h.realm;
    for (const [realm, l] of this.#locals) if (l.endpoint === endpoint) return realm;
    return undefined;
  }

  #crossHooks(): CrossHooks {
    return {
      realmOf: (ep) => this.#receiverRealm(ep),
      isExportedTo: (ep, realm) => this.#exports.get(ep)?.includes(realm) === true,
      pool: (realm) => this.#pools.get(realm)?.pool,
      deliver: (frame) => this.#hub.deliver(frame),
      gone: (endpoints, node, why) => {
        for (const h of this.#hosts.values()) h.handle?.send({ t: 'dp-gone', endpoints, node, why });
        for (const l of this.#locals.values()) for (const ep of endpoints) l.data.destinationGone(ep, refusalError({ type: why, node, endpoint: ep, detail: '' }));
      },
      refused: (caller, seq, w: WireRefusal) => {
        const hostId = this.#endpoints.get(caller);
        const h = hostId === undefined ? undefined : this.#hosts.get(hostId);
        if (h !== undefined) return void h.handle?.send({ t: 'dp-refused', endpoint: caller, seq, error: w });
        for (const l of this.#locals.values()) if (l.endpoint === caller) l.data.callRefused(seq, refusalError(w));
      },
      learn: (ep) => {
        try {
          this.#bpf?.addHostedEndpoint(SYSTEM_REALM, HUB_EP, ep);
        } catch {
          // Already there, or the map is full: the verdict then diverts it as unknown-dst, routed all the same.
        }
      },
      forget: (eps) => {
        for (const ep of eps) {
          try {
            this.#bpf?.removeEndpoint(ep, { hosted: true });
          } catch {
            // Not there: nothing to undo.
          }
        }
      },
    };
  }
}

function zeroRejects(): RejectCounts {
  return Object.fromEntries(REJECT_REASONS.map((r) => [r, 0])) as RejectCounts;
}
