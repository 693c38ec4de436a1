import { left, right, type Either } from 'fp-ts/lib/Either.js';
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import type { TimerHandle } from '../ports/types.js';
import { F_SENDER_MASK } from './descriptor.js';
import { InvalidArgumentError } from './errors.js';
import { FLAG_CREDIT, type Descriptor } from './frames.js';
import { Ownership } from './ownership.js';
import type { Pool } from './pool.js';
import {
  PeerGoneError,
  PeerUnreachableError,
  RemoteBackloggedError,
  RemoteBadBufferError,
  RemoteEndpointUnknownError,
  RemotePayloadTooLargeError,
  RemoteRefusedError,
  type RemoteSendError,
} from './remote-errors.js';
import { DEFAULT_REMOTE_OPTIONS, type LocalSide, type RemoteChannelOptions, type RemoteStats } from './remote-options.js';
import { nonce, proof, proves } from './remote-auth.js';
import { AUTH_CHALLENGE, AUTH_PROOF, encodeHeader, FrameReader, localFrame, REFUSALS, TEXT_BYTES_MAX, type Header, type Refusal } from './remote-wire.js';

/**
 * The node-to-node data-path channel (σEP-like): procs on different nodes exchange descriptors with the
 * same semantics as on one node. One TCP connection per pair of nodes (the node with the smaller id dials,
 * so there is never a second one), carrying descriptor + payload frames both ways.
 *
 * Sending (`send`, called by the node manager for a destination endpoint on another node): the payload is
 * written from the sender realm's pool straight into the socket; the buffer stays the sender's until the
 * receiving node answers, then it is freed whatever the answer (a send gives the buffer away, as on one
 * node). Each send settles exactly once: delivered (a cumulative ACK), refused (NACK with a reason, a typed error), or
 * the peer died (PeerGoneError). On a refusal the sender's credit is handed back locally, so its window
 * does not shrink for good.
 *
 * Receiving: realm policy is checked here, on the receiving side — the destination must be in the sender's
 * realm, exported to it, or replying to an endpoint that reached it first — and credits per (source,
 * destination) are enforced as they are locally (a sender that ignores its credits is refused, never
 * queued). The payload is copied once, from the socket into a buffer of the destination realm's pool owned
 * by the sending endpoint, and the descriptor is handed to the local endpoint, which accepts it as any
 * other (ownership moves to it). If the peer dies, buffers it sent that no endpoint accepted yet are freed.
 *
 * Endpoint ids must be cluster-unique (node managers allocate disjoint ranges): a remote sender's id owns
 * its buffers in the receiving pool. Node managers trust each other's claim of a sender's realm, as they
 * trust their own kernel's; the channel is for a private node network.
 */

export { DEFAULT_REMOTE_OPTIONS, type LocalSide, type RemoteChannelOptions, type RemoteStats } from './remote-options.js';

interface Pending {
  desc: Descriptor;
  realm: string;
  resolve: (r: Either<RemoteSendError, void>) => void;
}

interface Pair {
  outstanding: number;
  /** Buffers delivered and not yet credited back, oldest first: what to free if the peer dies. */
  allocs: Alloc[];
}

/** A buffer the channel allocated in a local pool for a remote sender (its owner until accepted). */
interface Alloc {
  pool: Pool;
  src: number;
  offset: number;
  generation: number;
}

interface Conn {
  node: string | undefined;
  sock: Socket;
  reader: FrameReader;
  nextSeq: number;
  pending: Map<number, Pending>;
  bytesInFlight: number;
  /** Inbound: keyed `${remoteSrc}:${localDst}`. */
  pairs: Map<string, Pair>;
  /** Local endpoints whose sends to a remote endpoint were accepted: `${local}>${remote}` (reply rule). */
  contacted: Set<string>;
  /** Writes are being gathered for one writev at the end of this turn. */
  corked: boolean;
  /** Highest delivered data frame not yet acknowledged: one cumulative ACK goes out per flush. */
  ackUpTo: number;
  /** Inbound data frame whose payload is being read. */
  current: (Alloc & { pair: Pair }) | undefined;
  /** The node id its HELLO claimed, up (`node`) once it proved it holds the cluster's secret. */
  claimed: string | undefined;
  /** The challenge we sent it. */
  nonce: string;
}

const zeroRefusals = (): Record<Refusal, number> => Object.fromEntries(REFUSALS.map((r) => [r, 0])) as Record<Refusal, number>;

export class RemoteChannel {
  readonly options: RemoteChannelOptions;
  readonly #server: Server;
  readonly #conns = new Map<string, Conn>();
  readonly #peers = new Map<string, { host: string; port: number; timer: TimerHandle | undefined; delayMs: number }>();
  readonly #waiters = new Map<string, Array<() => void>>();
  readonly #downHandlers: Array<(node: string) => void> = [];
  readonly #stats = { sent: 0, delivered: 0, received: 0, peerGone: 0, reclaimedBuffers: 0, creditsDropped: 0, connectionFaults: 0, unauthenticated: 0, refusedOut: zeroRefusals(), refusedIn: zeroRefusals() };
  readonly #own = new Map<Pool, Ownership>();
  /** Every socket, identified or not yet (dialling, awaiting HELLO): close() ends them all. */
  readonly #socks = new Set<Socket>();
  #closed = false;

  private constructor(options: RemoteChannelOptions) {
    this.options = options;
    this.#server = createServer((sock) => this.#attach(sock, undefined));
  }

  /** Starts the listener. */
  static async listen(options: Partial<RemoteChannelOptions> & Pick<RemoteChannelOptions, 'nodeId' | 'local' | 'timers'>): Promise<RemoteChannel> {
    const o: RemoteChannelOptions = { ...DEFAULT_REMOTE_OPTIONS, ...options };
    for (const k of ['payloadBytesMax', 'pendingPerPeerMax', 'bytesInFlightPerPeerMax', 'creditsPerPairMax', 'controlBacklogBytesMax', 'pairsPerPeerMax'] as const) {
      if (!Number.isInteger(o[k]) || o[k] < 1) throw new InvalidArgumentError(`remote.${k}`, `must be a positive integer, got ${o[k]}`);
    }
    if (Buffer.byteLength(o.nodeId) < 1 || Buffer.byteLength(o.nodeId) > 64) throw new InvalidArgumentError('remote.nodeId', 'must be 1..64 bytes of UTF-8');
    const ch = new RemoteChannel(o);
    await new Promise<void>((resolve, reject) => ch.#server.once('error', reject).listen(o.port, o.host, () => resolve()));
    return ch;
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  /** A node this one may exchange data with. The node with the smaller id dials (and redials). */
  addPeer(node: string, address: { host: string; port: number }): void {
    if (node === this.options.nodeId) throw new InvalidArgumentError('peer', 'a node is not its own peer');
    this.#peers.set(node, { ...address, timer: undefined, delayMs: this.options.redialDelayMsMin });
    if (this.options.nodeId < node) this.#dial(node);
  }

  removePeer(node: string): void {
    const p = this.#peers.get(node);
    p?.timer?.cancel();
    this.#peers.delete(node);
    this.#conns.get(node)?.sock.destroy();
  }

  connected(node: string): boolean {
    return this.#conns.has(node);
  }

  /** Resolves true once connected to `node`, false after `timeoutMs`. */
  whenConnected(node: string, timeoutMs: number): Promise<boolean> {
    if (this.#conns.has(node)) return Promise.resolve(true);
    return new Promise((resolve) => {
      let done = false;
      const list = this.#waiters.get(node) ?? [];
      const waiter = (): void => {
        if (done) return;
        timer.cancel();
        resolve(true);
      };
      const timer = this.options.timers.setTimeout(() => {
        done = true;
        list.splice(list.indexOf(waiter), 1); // no waiter outlives its timeout
        resolve(false);
      }, timeoutMs);
      list.push(waiter);
      this.#waiters.set(node, list);
    });
  }

  /** Called with the node id when a connection is lost (the node manager closes windows to its endpoints). */
  onPeerDown(handler: (node: string) => void): void {
    this.#downHandlers.push(handler);
  }

  /**
   * Sends a descriptor to an endpoint on `dstNode`. `desc.srcEp` is the sender as the caller (the node
   * manager) vouches for it, `srcRealm` its realm. A credit return carries no payload and settles at once;
   * a data descriptor names a buffer of the sender in its realm's pool and settles when the peer answers.
   */
  send(dstNode: string, desc: Descriptor, srcRealm: string): Promise<Either<RemoteSendError, void>> {
    if (Buffer.byteLength(srcRealm) > TEXT_BYTES_MAX) return Promise.resolve(left(new RemoteBadBufferError(desc.srcEp, `its realm name "${srcRealm}" is longer than ${TEXT_BYTES_MAX} bytes`)));
    const conn = this.#conns.get(dstNode);
    if ((desc.flags & FLAG_CREDIT) !== 0) {
      if (conn === undefined) return Promise.resolve(left(new PeerUnreachableError(dstNode, 'not connected')));
      this.#creditReturned(conn, desc);
      this.#control(conn, encodeHeader({ kind: 'credit', text: srcRealm, desc }));
      return Promise.resolve(right(undefined));
    }
    const pool = this.options.local.pool(srcRealm);
    const own = pool === undefined ? undefined : this.#ownership(pool);
    const valid = own?.validate(desc, desc.srcEp);
    if (own === undefined || valid === undefined || valid._tag === 'Left') {
      return Promise.resolve(left(new RemoteBadBufferError(desc.srcEp, valid?._tag === 'Left' ? valid.left.message : `realm ${srcRealm} has no pool on this node`)));
    }
    const fail = (e: RemoteSendError): Promise<Either<RemoteSendError, void>> => {
      this.#giveBack(desc, srcRealm);
      return Promise.resolve(left(e));
    };
    if (desc.length > this.options.payloadBytesMax) return fail(new RemotePayloadTooLargeError(desc.length, this.options.payloadBytesMax));
    if (conn === undefined) return fail(new PeerUnreachableError(dstNode, this.#peers.has(dstNode) ? 'connection not up' : 'unknown node'));
    if (conn.pending.size >= this.options.pendingPerPeerMax) return fail(new RemoteBackloggedError(dstNode, 'pendingPerPeerMax', this.options.pendingPerPeerMax));
    if (conn.bytesInFlight + desc.length > this.options.bytesInFlightPerPeerMax) return fail(new RemoteBackloggedError(dstNode, 'bytesInFlightPerPeerMax', this.options.bytesInFlightPerPeerMax));
    const seq = conn.nextSeq++;
    conn.bytesInFlight += desc.length;
    this.#stats.sent++;
    this.#write(conn, encodeHeader({ kind: 'data', payloadBytes: desc.length, seq, text: srcRealm, desc }));
    this.#write(conn, pool!.bytes(desc.offset, desc.length)); // the pool's memory itself; held until answered
    this.#flush(conn); // data goes now, with whatever control frames were gathered
    return new Promise((resolve) => conn.pending.set(seq, { desc, realm: srcRealm, resolve }));
  }

  /**
   * The node is about to unmap `pool` (its realm's last host here is gone): forget every buffer of it the
   * channel still tracks, so that nothing touches the memory afterwards. Sends from it still in flight
   * settle without a free (the memory is gone, and with it the buffers).
   */
  forgetPool(pool: Pool): void {
    for (const c of this.#conns.values()) {
      if (c.current?.pool === pool) {
        // Its payload is still arriving into that memory: cut the connection (the peer's sends fail as peer-gone).
        c.current = undefined;
        c.sock.destroy();
      }
      for (const p of c.pairs.values()) p.allocs = p.allocs.filter((a) => a.pool !== pool);
    }
    this.#own.delete(pool);
  }

  /**
   * Local endpoints went away: buffers remote senders delivered to them that they never accepted (the
   * frames died in a closed host socket) are still the senders', and nobody else would free them.
   */
  endpointsGone(endpoints: Iterable<number>): Set<number> {
    const gone = new Set(endpoints);
    /** Those that remote senders had reached: their nodes may have callers waiting on them. */
    const reached = new Set<number>();
    for (const c of this.#conns.values()) {
      for (const [key, p] of c.pairs) {
        const dst = Number(key.slice(key.indexOf(':') + 1));
        if (!gone.has(dst)) continue;
        reached.add(dst);
        for (const a of p.allocs) if (a.pool.free(a.src, a.offset, a.generation)._tag === 'Right') this.#stats.reclaimedBuffers++;
        c.pairs.delete(key);
      }
    }
    return reached;
  }

  stats(): RemoteStats {
    let pending = 0;
    let bytesInFlight = 0;
    for (const c of this.#conns.values()) {
      pending += c.pending.size;
      bytesInFlight += c.bytesInFlight;
    }
    const s = this.#stats;
    return { ...s, refusedOut: { ...s.refusedOut }, refusedIn: { ...s.refusedIn }, peers: this.#conns.size, pending, bytesInFlight };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const p of this.#peers.values()) p.timer?.cancel();
    this.#peers.clear();
    const closing = [...this.#socks].map((sock) => new Promise<void>((r) => (sock.destroyed && sock.closed ? r() : sock.once('close', () => r()).destroy())));
    await Promise.all([...closing, new Promise<void>((r) => this.#server.close(() => r()))]);
  }

  // ---- connections -----------------------------------------------------------------------------------

  #dial(node: string): void {
    const peer = this.#peers.get(node);
    if (peer === undefined || this.#closed || this.#conns.has(node)) return;
    const sock = connect(peer.port, peer.host);
    const conn = this.#attach(sock, node);
    sock.once('connect', () => {
      sock.setNoDelay(true);
      this.#greet(conn);
    });
  }

  #redial(node: string): void {
    const peer = this.#peers.get(node);
    if (peer === undefined || this.#closed || this.options.nodeId > node) return;
    peer.timer?.cancel();
    peer.timer = this.options.timers.setTimeout(() => {
      peer.timer = undefined;
      this.#dial(node);
    }, peer.delayMs);
    peer.delayMs = Math.min(this.options.redialDelayMsMax, peer.delayMs * 2);
  }

  /** Our HELLO, and our challenge when the channel is authenticated. */
  #greet(conn: Conn): void {
    conn.sock.write(encodeHeader({ kind: 'hello', text: this.options.nodeId }));
    if (this.options.secret !== undefined) conn.sock.write(encodeHeader({ kind: 'auth', reason: AUTH_CHALLENGE, text: conn.nonce }));
  }

  /** A socket, dialled (`dialled` = the peer's id) or accepted (identified by its HELLO and its proof). */
  #attach(sock: Socket, dialled: string | undefined): Conn {
    this.#socks.add(sock);
    sock.setNoDelay(true);
    const conn: Conn = {
      node: undefined,
      sock,
      nextSeq: 1,
      pending: new Map(),
      bytesInFlight: 0,
      pairs: new Map(),
      contacted: new Set(),
      corked: false,
      ackUpTo: 0,
      current: undefined,
      claimed: undefined,
      nonce: nonce(),
      reader: new FrameReader(
        (h) => this.#onDataHeader(conn, h),
        (h) => this.#onFrame(conn, h, dialled),
        () => {
          this.#stats.connectionFaults++;
          sock.destroy(); // a peer that speaks garbage is cut off; its sends fail as peer-gone
        },
      ),
    };
    sock.on('data', (chunk: Buffer) => {
      try {
        conn.reader.feed(chunk);
      } catch {
        // A bug or a frame we cannot handle must cost this connection, never the node manager.
        this.#stats.connectionFaults++;
        sock.destroy();
      }
    });
    sock.on('error', () => sock.destroy());
    sock.on('close', () => {
      this.#socks.delete(sock);
      this.#onClose(conn, dialled);
    });
    if (this.#closed) sock.destroy();
    return conn;
  }

  #up(conn: Conn, node: string): void {
    const old = this.#conns.get(node);
    if (old !== undefined && old !== conn) old.sock.destroy(); // the peer restarted and dialled again
    conn.node = node;
    this.#conns.set(node, conn);
    const peer = this.#peers.get(node);
    if (peer !== undefined) peer.delayMs = this.options.redialDelayMsMin;
    for (const w of this.#waiters.get(node) ?? []) w();
    this.#waiters.delete(node);
  }

  #onClose(conn: Conn, dialled: string | undefined): void {
    const node = conn.node;
    if (node !== undefined && this.#conns.get(node) === conn) this.#conns.delete(node);
    for (const p of conn.pending.values()) {
      this.#stats.peerGone++;
      this.#giveBack(p.desc, p.realm);
      p.resolve(left(new PeerGoneError(node ?? 'unidentified')));
    }
    conn.pending.clear();
    // Buffers this peer sent that no local endpoint accepted yet: still owned by the remote sender, so the
    // free succeeds exactly for those (an accepted one now belongs to its receiver and the free is refused).
    const unaccepted = [...(conn.current === undefined ? [] : [conn.current]), ...[...conn.pairs.values()].flatMap((p) => p.allocs)];
    for (const a of unaccepted) {
      try {
        if (a.pool.free(a.src, a.offset, a.generation)._tag === 'Right') this.#stats.reclaimedBuffers++;
      } catch {
        this.#stats.connectionFaults++; // a pool unmapped under us (forgetPool missed): never the node manager's death
      }
    }
    conn.current = undefined;
    conn.pairs.clear();
    if (dialled !== undefined) this.#redial(dialled); // also when the dial itself failed
    if (node !== undefined && this.#conns.get(node) === undefined) for (const h of this.#downHandlers) h(node);
  }

  // ---- receiving ---------------------------------------------------------------------------------------

  /** Where a data frame's payload goes: a buffer of the destination realm's pool, or nowhere (refused). */
  #onDataHeader(conn: Conn, h: Header): Uint8Array | undefined {
    this.#stats.received++;
    const refuse = (reason: Refusal): undefined => {
      this.#stats.refusedIn[reason]++;
      this.#control(conn, encodeHeader({ kind: 'nack', seq: h.seq, reason: REFUSALS.indexOf(reason), desc: h.desc }));
      return undefined;
    };
    if (conn.node === undefined) {
      this.#stats.unauthenticated++;
      conn.sock.destroy(); // data before HELLO (and its proof)
      return undefined;
    }
    const { dstEp: dst, srcEp: src, length } = h.desc;
    if (length !== h.payloadBytes || length < 1 || length > this.options.payloadBytesMax) return refuse('too-large');
    const dstRealm = this.options.local.realmOf(dst);
    if (dstRealm === undefined) return refuse('unknown-endpoint');
    if (src < 1 || src > 0x7fff_ffff || this.options.local.realmOf(src) !== undefined) return refuse('bad-src');
    if (!this.#allowed(conn, src, dst, h.text, dstRealm)) return refuse('cross-realm');
    const pair = this.#pair(conn, src, dst);
    if (pair === undefined || pair.outstanding >= this.options.creditsPerPairMax) return refuse('credits-exhausted');
    const pool = this.options.local.pool(dstRealm);
    const a = pool?.alloc(src, length);
    if (pool === undefined || a === undefined || a._tag === 'Left') return refuse(a?._tag === 'Left' && a.left.type === 'alloc-too-large' ? 'too-large' : 'pool-exhausted');
    conn.current = { pool, src, offset: a.right.offset, generation: a.right.generation, pair };
    return pool.bytes(a.right.offset, length);
  }

  #onFrame(conn: Conn, h: Header, dialled: string | undefined): void {
    if (conn.node === undefined && h.kind !== 'hello' && h.kind !== 'auth') {
      this.#stats.unauthenticated++;
      return void conn.sock.destroy(); // nothing counts before the peer is up
    }
    switch (h.kind) {
      case 'hello':
        if (h.text === this.options.nodeId || h.text === '' || conn.claimed !== undefined) return void conn.sock.destroy();
        if (dialled === undefined) this.#greet(conn);
        else if (h.text !== dialled) return void conn.sock.destroy(); // not the node we meant to reach
        conn.claimed = h.text;
        if (this.options.secret === undefined) this.#up(conn, h.text);
        return;
      case 'auth':
        return this.#onAuth(conn, h);
      case 'data':
        return this.#onPayload(conn, h);
      case 'credit':
        return this.#onCredit(conn, h);
      case 'ack':
      case 'nack':
        return this.#onAnswer(conn, h);
    }
  }

  /** A challenge gets our proof; a proof for our challenge brings the peer up; a wrong one cuts it off. */
  #onAuth(conn: Conn, h: Header): void {
    const secret = this.options.secret;
    if (secret === undefined || conn.claimed === undefined || conn.node !== undefined) return void conn.sock.destroy();
    if (h.reason === AUTH_CHALLENGE) return void conn.sock.write(encodeHeader({ kind: 'auth', reason: AUTH_PROOF, text: proof(secret, h.text, this.options.nodeId) }));
    if (h.reason === AUTH_PROOF && proves(secret, conn.nonce, conn.claimed, h.text)) return this.#up(conn, conn.claimed);
    this.#stats.unauthenticated++;
    conn.sock.destroy();
  }

  #onPayload(conn: Conn, h: Header): void {
    const cur = conn.current;
    conn.current = undefined;
    if (cur === undefined) return; // refused at its header, already answered
    const d = h.desc;
    const frame = localFrame({ dstEp: d.dstEp, srcEp: d.srcEp, offset: cur.offset, length: d.length, generation: cur.generation, flags: d.flags & F_SENDER_MASK & ~FLAG_CREDIT, requestId: d.requestId });
    if (!this.options.local.deliver(frame)) {
      cur.pool.free(d.srcEp, cur.offset, cur.generation);
      this.#stats.refusedIn['dst-backlog']++;
      this.#control(conn, encodeHeader({ kind: 'nack', seq: h.seq, reason: REFUSALS.indexOf('dst-backlog'), desc: d }));
      return;
    }
    cur.pair.outstanding++;
    cur.pair.allocs.push({ pool: cur.pool, src: cur.src, offset: cur.offset, generation: cur.generation });
    this.#stats.delivered++;
    conn.ackUpTo = h.seq; // frames are answered in order: a NACK already written goes before this ACK
    this.#cork(conn);
  }

  /** A control frame; a peer that lets them pile up past the bound is not reading, and is cut off. */
  #control(conn: Conn, frame: Buffer): void {
    if (conn.sock.writableLength + frame.length > this.options.controlBacklogBytesMax + conn.bytesInFlight) {
      conn.sock.destroy();
      return;
    }
    this.#write(conn, frame);
  }

  /**
   * Control frames wait (at most until the end of this turn of the event loop) for the next data frame and
   * go out with it in one writev: the ACK of a request and the reply its handler sends a few microtasks
   * later share a system call (separate syscalls were most of the channel's cost per message).
   */
  #write(conn: Conn, bytes: Uint8Array): void {
    this.#cork(conn);
    this.#ackNow(conn); // before anything after it: a reply may rely on the ACK (the reply rule)
    conn.sock.write(bytes);
  }

  #ackNow(conn: Conn): void {
    if (conn.ackUpTo === 0) return;
    const ack = encodeHeader({ kind: 'ack', seq: conn.ackUpTo });
    conn.ackUpTo = 0;
    conn.sock.write(ack);
  }

  #cork(conn: Conn): void {
    if (conn.corked) return;
    conn.corked = true;
    conn.sock.cork();
    this.options.timers.defer(() => this.#flush(conn));
  }

  #flush(conn: Conn): void {
    if (!conn.corked) return;
    this.#ackNow(conn);
    conn.corked = false;
    conn.sock.uncork();
  }

  #onCredit(conn: Conn, h: Header): void {
    const { dstEp: dst, srcEp: src } = h.desc;
    const dstRealm = this.options.local.realmOf(dst);
    if (conn.node === undefined || dstRealm === undefined || !this.#allowed(conn, src, dst, h.text, dstRealm)) {
      this.#stats.creditsDropped++;
      return;
    }
    if (!this.options.local.deliver(localFrame({ ...h.desc, offset: 0, generation: 0, flags: FLAG_CREDIT }))) this.#stats.creditsDropped++;
  }

  /** A cumulative ACK settles every pending send up to its seq (pending is in seq order); a NACK one. */
  #onAnswer(conn: Conn, h: Header): void {
    if (h.kind === 'ack') {
      for (const [seq, p] of conn.pending) {
        if (seq > h.seq) break;
        this.#settled(conn, seq, p);
        if (conn.contacted.size < this.options.pairsPerPeerMax) conn.contacted.add(`${p.desc.srcEp}>${p.desc.dstEp}`);
        p.resolve(right(undefined));
      }
      return;
    }
    const p = conn.pending.get(h.seq);
    if (p === undefined) return;
    this.#settled(conn, h.seq, p);
    const reason = REFUSALS[h.reason] ?? 'bad-src';
    this.#stats.refusedOut[reason]++;
    this.#refund(p.desc);
    const node = conn.node ?? 'unidentified';
    p.resolve(left(reason === 'unknown-endpoint' ? new RemoteEndpointUnknownError(node, p.desc.dstEp) : new RemoteRefusedError(node, p.desc.dstEp, reason)));
  }

  /** The peer answered: the sender's buffer is freed whatever the answer (unless its pool is gone meanwhile). */
  #settled(conn: Conn, seq: number, p: Pending): void {
    conn.pending.delete(seq);
    conn.bytesInFlight -= p.desc.length;
    const pool = this.options.local.pool(p.realm);
    if (pool !== undefined) this.#ownership(pool).release(p.desc, p.desc.srcEp);
  }

  /** Same realm, exported to the sender's realm, or a reply to an endpoint that reached the sender first. */
  #allowed(conn: Conn, src: number, dst: number, srcRealm: string, dstRealm: string): boolean {
    return srcRealm === dstRealm || this.options.local.isExportedTo(dst, srcRealm) || conn.contacted.has(`${dst}>${src}`);
  }

  #pair(conn: Conn, src: number, dst: number): Pair | undefined {
    const key = `${src}:${dst}`;
    let p = conn.pairs.get(key);
    if (p !== undefined) return p;
    if (conn.pairs.size >= this.options.pairsPerPeerMax) {
      for (const [k, v] of conn.pairs) if (v.outstanding === 0) conn.pairs.delete(k);
      if (conn.pairs.size >= this.options.pairsPerPeerMax) return undefined;
    }
    p = { outstanding: 0, allocs: [] };
    conn.pairs.set(key, p);
    return p;
  }

  /** A local receiver returns credits to a remote sender: those messages are consumed, their buffers its own. */
  #creditReturned(conn: Conn, credit: Descriptor): void {
    const p = conn.pairs.get(`${credit.dstEp}:${credit.srcEp}`);
    if (p === undefined) return;
    const n = Math.min(credit.length, p.outstanding);
    p.outstanding -= n;
    p.allocs.splice(0, n);
  }

  // ---- the sender's buffer and credit ---------------------------------------------------------------------

  /** A send that will not be delivered: free the sender's buffer and hand its credit back. */
  #giveBack(desc: Descriptor, realm: string): void {
    const pool = this.options.local.pool(realm);
    if (pool !== undefined) this.#ownership(pool).release(desc, desc.srcEp);
    this.#refund(desc);
  }

  #refund(desc: Descriptor): void {
    this.options.local.deliver(localFrame({ dstEp: desc.srcEp, srcEp: desc.dstEp, offset: 0, length: 1, generation: 0, flags: FLAG_CREDIT, requestId: 0n }));
  }

  #ownership(pool: Pool): Ownership {
    let o = this.#own.get(pool);
    if (o === undefined) {
      o = new Ownership(pool);
      this.#own.set(pool, o);
    }
    return o;
  }
}
