import type { HostDataPathStats } from '../../datapath/status.js';
import type { Logger } from 'pino';
import { Endpoint } from '../../datapath/endpoint.js';
import type { BusyPoll } from '../../datapath/busy-poll.js';
import { F_DST, FRAME_BYTES, SocketLink, type FrameLink } from '../../datapath/frames.js';
import type { RejectCounts } from '../../datapath/ownership.js';
import type { Pool } from '../../datapath/pool.js';
import { REJECT_REASONS } from '../../datapath/errors.js';
import type { Timers } from '../../ports/types.js';
import { ProcData, type NameLookup } from '../../datapath/proc-data.js';

/**
 * A proc host's end of the data path: the realm's pool (mapped from the memfd the node manager handed
 * down at fork) and ONE socket to the node (its peer is the hub; in BPF mode the kernel redirects most
 * descriptors straight into it). Every proc of the host has an endpoint on that socket; incoming
 * frames are demultiplexed on dst, outgoing ones share the socket (one writev per event-loop turn).
 */

export interface HostDataPathOptions {
  node: string;
  realm: string;
  hostEp: number;
  pool: Pool;
  /** The host's one connection to the node (SocketLink.overFd on the inherited fd). */
  link: SocketLink;
  timers: Timers;
  lookup: NameLookup;
  log: Logger;
  /** The node routes descriptors to other nodes' endpoints (ids are cluster-unique): remote names are sent like local ones. */
  crossNode?: boolean;
  /** Keeps the loop spinning after traffic (src/datapath/busy-poll.ts); none: the loop blocks as usual. */
  poll?: BusyPoll;
}


/** Bound on how long a proc's exit report waits for its descriptors to leave the host. */
export const DRAIN_WAIT_MS_MAX = 1_000;

interface MuxEntry {
  frames: (frames: Buffer) => void;
  closeHandlers: Array<() => void>;
}

/** Set once the node manager attached this host to the data path; tests' forging procs reach the raw link here. */
let current: HostDataPath | undefined;
export function hostDataPath(): HostDataPath | undefined {
  return current;
}

export class HostDataPath {
  readonly node: string;
  readonly realm: string;
  readonly pool: Pool;
  readonly #link: SocketLink;
  readonly #poll: BusyPoll | undefined;
  readonly #mux = new Map<number, MuxEntry>();
  readonly #procs = new Map<number, ProcData>();
  readonly #options: HostDataPathOptions;
  readonly #closedTotals = { rejected: zeroRejects(), received: 0, sent: 0 };
  #misrouted = 0;

  constructor(options: HostDataPathOptions) {
    this.#options = options;
    this.node = options.node;
    this.realm = options.realm;
    this.pool = options.pool;
    this.#poll = options.poll;
    this.#link = options.link;
    this.#link.onFrames((frames) => this.#demux(frames));
    this.#link.onClose(() => {
      for (const e of [...this.#mux.values()]) e.closeHandlers.splice(0).forEach((h) => h());
    });
    current = this;
  }

  /** An endpoint for a proc (the id was allocated and registered by the node manager). */
  open(endpoint: number): ProcData {
    const entry: MuxEntry = { frames: () => {}, closeHandlers: [] };
    this.#mux.set(endpoint, entry);
    const link: FrameLink = {
      write: (frames) => this.#link.write(frames),
      onFrames: (h) => (entry.frames = h),
      onClose: (h) => void entry.closeHandlers.push(h),
      close: () => {
        if (this.#mux.get(endpoint) !== entry) return;
        this.#mux.delete(endpoint);
        entry.closeHandlers.splice(0).forEach((h) => h());
      },
    };
    const ep = new Endpoint({ id: endpoint, pool: this.pool, link, timers: this.#options.timers });
    const { timers, lookup, log, crossNode } = this.#options;
    const data = new ProcData({ endpoint: ep, node: this.node, realm: this.realm, timers, lookup, log, crossNode: crossNode === true });
    this.#procs.set(endpoint, data);
    return data;
  }

  /** The proc is gone: close its endpoint, keep its counts. True when it ever wrote (so its exit should wait for `drained`). */
  close(endpoint: number): boolean {
    const data = this.#procs.get(endpoint);
    if (data === undefined) return false;
    this.#procs.delete(endpoint);
    const s = data.endpointStats();
    for (const r of REJECT_REASONS) this.#closedTotals.rejected[r] += s.rejected[r];
    this.#closedTotals.received += s.received;
    this.#closedTotals.sent += s.sent;
    data.close(); // returns pending credits: a write too, when it received anything
    return s.sent > 0 || s.received > 0 || Object.values(s.rejected).some((n) => n > 0);
  }

  /** An endpoint of this realm went away (node manager): free what we sent it, forget its name. */
  gone(endpoint: number, error?: Error): void {
    for (const d of this.#procs.values()) d.destinationGone(endpoint, error);
  }

  /** A cross-node call of `endpoint` was refused on its way (the node manager says so): fail it now. */
  refused(endpoint: number, seq: number, error: Error): void {
    this.#procs.get(endpoint)?.callRefused(seq, error);
  }

  /**
   * Resolves once what procs wrote has left this process (at most `waitMs`): a dedicated host is killed
   * as soon as its proc's exit is reported, and descriptors still queued in Node would die with it.
   */
  drained(waitMs = DRAIN_WAIT_MS_MAX): Promise<void> {
    const socket = this.#link.socket;
    return new Promise((resolve) => {
      const timer = this.#options.timers.setTimeout(resolve, waitMs);
      // After the link's nextTick uncork, so corked frames count as queued.
      this.#options.timers.defer(() => {
        if (socket.destroyed || socket.writableLength === 0) return (timer.cancel(), resolve());
        socket.once('drain', () => (timer.cancel(), resolve()));
      });
    });
  }

  /** The host's busy poll (its window can be changed at run time: the bench compares with it off). */
  get poll(): BusyPoll | undefined {
    return this.#poll;
  }

  /** Bytes written to the host's socket that have not left this process yet. */
  pendingWriteBytes(): number {
    return this.#link.pendingBytes;
  }

  /** Writes raw frames on the host's socket, bypassing every endpoint. For tests that play a malicious proc. */
  writeRaw(frames: Uint8Array): boolean {
    return this.#link.write(frames);
  }

  stats(): HostDataPathStats {
    const out: HostDataPathStats = { endpoints: this.#procs.size, rejected: { ...this.#closedTotals.rejected }, misrouted: this.#misrouted, received: this.#closedTotals.received, sent: this.#closedTotals.sent };
    for (const d of this.#procs.values()) {
      const s = d.endpointStats();
      for (const r of REJECT_REASONS) out.rejected[r] += s.rejected[r];
      out.received += s.received;
      out.sent += s.sent;
      out.misrouted += s.misrouted;
    }
    return out;
  }

  shutdown(): void {
    for (const ep of [...this.#procs.keys()]) this.close(ep);
    this.#poll?.stop();
    this.#link.close();
    if (current === this) current = undefined;
  }

  /** Hands each run of consecutive frames for one endpoint to it in one call. */
  #demux(frames: Buffer): void {
    let start = 0;
    let dst = -1;
    const flush = (end: number): void => {
      if (end <= start) return;
      const e = this.#mux.get(dst);
      if (e === undefined) this.#misrouted += (end - start) / FRAME_BYTES;
      else e.frames(frames.subarray(start, end));
    };
    for (let at = 0; at < frames.length; at += FRAME_BYTES) {
      const d = frames.readUInt32LE(at + F_DST);
      if (d === dst) continue;
      flush(at);
      start = at;
      dst = d;
    }
    flush(frames.length);
  }
}


function zeroRejects(): RejectCounts {
  return Object.fromEntries(REJECT_REASONS.map((r) => [r, 0])) as RejectCounts;
}
