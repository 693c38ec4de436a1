import type { Logger } from 'pino';
import type { DataPathAddress } from '../../control/protocol/index.js';
import { F_SENDER_MASK } from '../../datapath/descriptor.js';
import { decodeFrame, FLAG_CREDIT, type Descriptor } from '../../datapath/frames.js';
import type { Pool } from '../../datapath/pool.js';
import { RemoteChannel, type RemoteChannelOptions } from '../../datapath/remote.js';
import type { RemoteSendError } from '../../datapath/remote-errors.js';
import type { CrossNodeCounts, CrossNodeStats } from '../../datapath/status.js';
import type { WireRefusal } from '../../datapath/refusal.js';
import { parseId, responseId } from '../../datapath/request-id.js';
import type { Timers } from '../../ports/types.js';
import { nodeIndexOf } from './ids.js';

/**
 * The node data path's side of the node-to-node channel: descriptors that a host (or the node's own
 * endpoint) addressed to another node's endpoint reach the node manager — the hub in userspace mode, the
 * hub socket in bpf mode, where the verdict sends them because their ep_info entry points there — and go
 * out over the channel (src/datapath/remote.ts), which copies the payload once into the destination
 * realm's pool on the other node. Answers and credit returns come back the same way, so procs see one
 * API whatever the node of their peer. The destination node comes from the id itself (ids.ts).
 *
 * A refused send must not leave a caller waiting for its timeout: the refusal (and a dead peer) is told
 * to the calling proc's host, which fails that very call with the channel's typed error.
 */

/** Remote endpoints remembered per node (for the kernel's ep_info and for peer-gone notices); beyond, routing still works, unremembered. */
/** Remote endpoints last dropped on an announcement, kept for `sigma datapath` (and tests). */
export const GONE_RECENT_MAX = 32;
export const REMOTE_ENDPOINTS_MAX = 16_384;

export interface CrossHooks {
  realmOf(endpoint: number): string | undefined;
  /** `endpoint` (of this node) is exported to `realm` (spec.exports). */
  isExportedTo(endpoint: number, realm: string): boolean;
  pool(realm: string): Pool | undefined;
  /** A frame for a local endpoint (the channel checked policy and credits): false when its link is backlogged. */
  deliver(frame: Buffer): boolean;
  /** Remote endpoints that went away (their node, or the endpoint itself): fail calls, drop names. */
  gone(endpoints: number[], node: string, why: WireRefusal['type']): void;
  /** The call `seq` of local endpoint `caller` was refused on its way. */
  refused(caller: number, seq: number, error: WireRefusal): void;
  /** bpf mode: route descriptors to a remote endpoint through the hub socket without a kernel reject. */
  learn?(endpoint: number): void;
  forget?(endpoints: number[]): void;
}

export interface CrossNodeOptions {
  nodeId: string;
  index: number;
  host: string;
  port: number;
  hooks: CrossHooks;
  timers: Timers;
  log: Logger;
  channel?: Partial<RemoteChannelOptions>;
}

export class CrossNode {
  readonly index: number;
  readonly #o: CrossNodeOptions;
  readonly #ch: RemoteChannel;
  readonly #byIndex = new Map<number, string>();
  readonly #peers = new Map<string, DataPathAddress>();
  readonly #seen = new Map<string, Set<number>>();
  #seenCount = 0;
  #announce: ((endpoints: number[]) => void) | undefined;
  readonly #goneRecent: number[] = [];
  /** goneAnnounced: local endpoints announced gone to peers; goneHeard: remote endpoints dropped on a peer's announcement. */
  readonly counts: CrossNodeCounts = { routed: 0, refused: 0, indexCollisions: 0, goneAnnounced: 0, goneHeard: 0 };

  private constructor(o: CrossNodeOptions, ch: RemoteChannel) {
    this.#o = o;
    this.index = o.index;
    this.#ch = ch;
    ch.onPeerDown((node) => this.#peerDown(node));
  }

  static async start(o: CrossNodeOptions): Promise<CrossNode> {
    const h = o.hooks;
    const local = { realmOf: (ep: number) => h.realmOf(ep), isExportedTo: (ep: number, realm: string) => h.isExportedTo(ep, realm), pool: (r: string) => h.pool(r), deliver: (f: Buffer) => h.deliver(f) };
    const ch = await RemoteChannel.listen({ ...o.channel, nodeId: o.nodeId, host: o.host, port: o.port, timers: o.timers, local });
    return new CrossNode(o, ch);
  }

  get address(): DataPathAddress {
    return { host: this.#o.host, port: this.#ch.port, index: this.index };
  }

  /** An id of another node's range (index 0 is a node running alone: never remote). */
  isRemote(endpoint: number): boolean {
    const i = nodeIndexOf(endpoint);
    return i !== 0 && i !== this.index;
  }

  /** A peer from its heartbeat; false when its index collides with ours or another peer's (not dialled). */
  addPeer(node: string, addr: DataPathAddress): boolean {
    const holder = addr.index === this.index ? this.#o.nodeId : this.#byIndex.get(addr.index);
    if (holder !== undefined && holder !== node) {
      if (this.counts.indexCollisions++ === 0) this.#o.log.error({ node, index: addr.index, holder }, `data path: node ${node} claims endpoint range ${addr.index}, already ${holder}'s; it is not reachable over the data path (give nodes distinct indexes)`);
      return false;
    }
    const known = this.#peers.get(node);
    if (known !== undefined && known.host === addr.host && known.port === addr.port && known.index === addr.index) return true;
    if (known !== undefined && known.index !== addr.index) this.#byIndex.delete(known.index);
    this.#peers.set(node, addr);
    this.#byIndex.set(addr.index, node);
    this.#ch.addPeer(node, { host: addr.host, port: addr.port });
    return true;
  }

  removePeer(node: string): void {
    const known = this.#peers.get(node);
    if (known === undefined) return;
    this.#peers.delete(node);
    if (this.#byIndex.get(known.index) === node) this.#byIndex.delete(known.index);
    this.#ch.removePeer(node);
    this.#peerDown(node);
  }

  peers(): string[] {
    return [...this.#peers.keys()];
  }

  whenConnected(node: string, timeoutMs: number): Promise<boolean> {
    return this.#ch.whenConnected(node, timeoutMs);
  }

  /**
   * Takes the frame at `at` (a descriptor from a local endpoint of `srcRealm`, its source vouched for by
   * the kernel or the hub) to its node. The channel frees the sender's buffer and hands its credit back
   * whatever happens; a refusal reaches the caller.
   */
  route(frames: Buffer, at: number, srcRealm: string): void {
    const desc = decodeFrame(frames, at);
    desc.flags &= F_SENDER_MASK; // verdict bits (a reject reason) are this node's business only
    const index = nodeIndexOf(desc.dstEp);
    const node = this.#byIndex.get(index) ?? `#${index}`; // unknown: the channel answers peer-unreachable
    this.#remember(node, desc.dstEp);
    this.counts.routed++;
    void this.#ch.send(node, desc, srcRealm).then((r) => {
      if (r._tag === 'Left') this.#refused(desc, r.left, srcRealm);
    });
  }

  stats(): CrossNodeStats {
    return { ...this.#ch.stats(), ...this.counts, peersKnown: this.#peers.size, goneRecent: [...this.#goneRecent] };
  }

  /**
   * Local endpoints are gone: what remote senders delivered to them and they never accepted is freed, and
   * those that remote senders reached are announced (the `announce` hook: NATS), so that callers waiting
   * on them elsewhere fail now and stale names there are dropped.
   */
  localGone(endpoints: readonly number[]): void {
    const reached = this.#ch.endpointsGone(endpoints);
    if (reached.size === 0 || this.#announce === undefined) return;
    this.counts.goneAnnounced += reached.size;
    this.#announce([...reached]);
  }

  /** How localGone tells other nodes (node.ts binds it to a NATS publish). */
  onLocalGone(announce: (endpoints: number[]) => void): void {
    this.#announce = announce;
  }

  /** Another node's announcement: of its endpoints, those procs here sent to are gone (calls fail, names drop). */
  remoteGone(node: string, endpoints: readonly number[]): void {
    const set = this.#seen.get(node);
    const addr = this.#peers.get(node);
    if (set === undefined || addr === undefined) return;
    const gone = endpoints.filter((ep) => set.has(ep) && nodeIndexOf(ep) === addr.index);
    if (gone.length === 0) return;
    this.counts.goneHeard += gone.length;
    this.#goneRecent.push(...gone);
    this.#goneRecent.splice(0, Math.max(0, this.#goneRecent.length - GONE_RECENT_MAX));
    this.#forget(node, gone);
    this.#o.hooks.gone(gone, node, 'remote-endpoint-unknown');
  }

  /** The realm's pool here is about to be unmapped: the channel lets go of its buffers. */
  forgetPool(pool: Pool): void {
    this.#ch.forgetPool(pool);
  }

  close(): Promise<void> {
    return this.#ch.close();
  }

  #remember(node: string, endpoint: number): void {
    if (!this.#byIndex.has(nodeIndexOf(endpoint)) || this.#seenCount >= REMOTE_ENDPOINTS_MAX) return;
    let set = this.#seen.get(node);
    if (set === undefined) this.#seen.set(node, (set = new Set()));
    if (set.has(endpoint)) return;
    set.add(endpoint);
    this.#seenCount++;
    this.#o.hooks.learn?.(endpoint);
  }

  #forget(node: string, endpoints: number[]): void {
    const set = this.#seen.get(node);
    if (set === undefined) return;
    for (const ep of endpoints) if (set.delete(ep)) this.#seenCount--;
    if (set.size === 0) this.#seen.delete(node);
    this.#o.hooks.forget?.(endpoints);
  }

  #refused(desc: Descriptor, e: RemoteSendError, srcRealm: string): void {
    this.counts.refused++;
    if ((desc.flags & FLAG_CREDIT) !== 0) return; // a credit return that could not go: the peer is gone anyway
    const node = 'node' in e ? e.node : (this.#byIndex.get(nodeIndexOf(desc.dstEp)) ?? `#${nodeIndexOf(desc.dstEp)}`);
    const w: WireRefusal = { type: e.type, node, endpoint: desc.dstEp, detail: e.message, ...('reason' in e ? { reason: e.reason } : {}) };
    const id = parseId(desc.requestId);
    // The caller waits for an answer to this request (a forwarded request names its original caller).
    if (!id.oneWay && !id.response) {
      if (this.isRemote(id.replyTo)) this.#answerAcross(desc, w, srcRealm);
      else this.#o.hooks.refused(id.replyTo, id.seq, w);
    }
    if (e.type === 'remote-endpoint-unknown') {
      this.#forget(node, [desc.dstEp]);
      this.#o.hooks.gone([desc.dstEp], node, e.type);
    }
  }

  /**
   * A forwarded request refused on its way to a third node: its caller is on another node still, so the
   * refusal goes to it as the error answer the forwarding stage would have sent (a RemoteHandlerError
   * there, with the channel's reason), in a buffer of that stage — not left to the caller's timeout.
   */
  #answerAcross(desc: Descriptor, w: WireRefusal, srcRealm: string): void {
    const pool = this.#o.hooks.pool(srcRealm);
    if (pool === undefined || this.#o.hooks.realmOf(desc.srcEp) !== srcRealm) return; // the stage is gone: nothing to answer from
    const text = Buffer.from(`${w.type}: ${w.detail}`.slice(0, 1024), 'utf8');
    const a = pool.alloc(desc.srcEp, text.length);
    if (a._tag === 'Left') return;
    pool.bytes(a.right.offset, text.length).set(text);
    const replyTo = Number((desc.requestId >> 32n) & 0x7fff_ffffn);
    const answer: Descriptor = { dstEp: replyTo, srcEp: desc.srcEp, offset: a.right.offset, length: text.length, generation: a.right.generation, flags: 0, requestId: responseId(desc.requestId, true) };
    const index = nodeIndexOf(replyTo);
    void this.#ch.send(this.#byIndex.get(index) ?? `#${index}`, answer, srcRealm); // settles by itself; the buffer is freed either way
  }

  #peerDown(node: string): void {
    const eps = [...(this.#seen.get(node) ?? [])];
    if (eps.length === 0) return;
    this.#forget(node, eps);
    this.#o.hooks.gone(eps, node, 'peer-gone');
  }
}
