import { left, right, type Either } from 'fp-ts/lib/Either.js';
import type { Socket } from 'node:net';
import type { BusyPoll } from './busy-poll.js';
import { EndpointRegistrationError } from './errors.js';
import { F_COPY } from './descriptor.js';
import type { SocketIo } from '../native/index.js';
import { DEFAULT_LINK_BACKLOG_BYTES_MAX, F_DST, F_FLAGS, F_GENERATION, F_LENGTH, F_OFFSET, F_SRC, FLAG_CREDIT, FRAME_BYTES, SocketLink, type FrameLink } from './frames.js';
import { Ownership } from './ownership.js';
import { RealmTable, DEFAULT_ENDPOINTS_MAX, DEFAULT_EXPORTS_PER_ENDPOINT_MAX } from './policy.js';
import { OWNER_MAX, type Pool } from './pool.js';
import { assert } from '../assert.js';

/**
 * The node manager's descriptor router. In userspace mode (no root, no BPF, or `datapath: 'userspace'`)
 * every descriptor goes through it; in BPF mode the kernel redirects the allowed ones and only the rest
 * (SK_PASS) reach it — the same code then counts, logs and drops them, or does the cross-realm copy.
 *
 * Each link is one connection from a proc host (or an in-process sink), registered with its realm and the
 * endpoints it speaks for. The sender of a frame is the link it came in on, never what the frame claims:
 * a frame whose src is not one of the link's endpoints is dropped as 'spoofed-src'.
 *
 * Transport: unix stream sockets in userspace mode — the node manager hands each host one end of a
 * socketpair at fork (no listening socket another process could connect to, no port, and the lowest round
 * trip measured here: unix 26-35 µs vs TCP 36-52 µs). BPF mode uses TCP loopback (sk_msg does not see
 * AF_UNIX senders); both are a FrameLink, and so is an in-process pair.
 *
 * A descriptor names a buffer in its realm's pool, and a host maps only its own realm's pool, so a data
 * descriptor to an endpoint of another realm (exported, or a reply) is copied by the hub, which maps every
 * pool: validated against the sender, copied into the receiver realm's pool, the original freed. Dropped
 * data descriptors are freed on the sender's behalf (a send gives the buffer away, delivered or not).
 */

export type DropReason = 'spoofed-src' | 'unknown-dst' | 'cross-realm' | 'dst-backlog' | 'bad-buffer' | 'no-pool' | 'pool-exhausted';
export const DROP_REASONS: readonly DropReason[] = ['spoofed-src', 'unknown-dst', 'cross-realm', 'dst-backlog', 'bad-buffer', 'no-pool', 'pool-exhausted'];

/** What the hub logs through (a pino logger fits). */
export interface HubLogger {
  warn(obj: object, msg: string): void;
}

export interface HubOptions {
  endpointsMax: number;
  exportsPerEndpointMax: number;
  /** Bytes queued towards one link before frames to it are dropped ('dst-backlog'). */
  linkBacklogBytesMax: number;
  logger?: HubLogger;
  /** Called when an endpoint goes away (its link closed or it was detached): reclaim its buffers there. */
  onDetach?: (endpoint: number, realm: string) => void;
  /**
   * A frame to an endpoint this hub does not know, from a sender of `realm` it vouches for: true when it
   * was taken (an endpoint of another node: the node-to-node channel carries it), else it is dropped.
   */
  foreign?: (realm: string, frames: Buffer, at: number) => boolean;
  /** Keeps this process's loop spinning after it routed something (./busy-poll.ts); what it drops does not count. */
  poll?: BusyPoll;
  /** Native socket writes for the links it routes to (src/native/socket.cc). */
  io?: SocketIo;
}

export interface HubStats {
  endpoints: number;
  routed: number;
  copied: number;
  dropped: Record<DropReason, number>;
}

export interface Registration {
  realm: string;
  endpoint: number;
}

/**
 * The seam between the node manager and a data-path mode. The userspace mode is the Hub itself; the BPF
 * mode (src/native) implements the same calls by putting the endpoint's TCP socket into the SOCKHASH and
 * its (realm, endpoint) into SK_STORAGE, mirroring exports into the filter map, and attaching the peer
 * (sink) side of each socket to a Hub for what the program passes up (SK_PASS).
 */
export interface Router {
  attach(reg: Registration, link: FrameLink): Either<EndpointRegistrationError, void>;
  detach(endpoint: number): void;
  export(endpoint: number, realm: string): Either<EndpointRegistrationError, void>;
  unexport(endpoint: number, realm: string): void;
  attachPool(realm: string, pool: Pool): void;
  stats(): HubStats;
  close(): void;
}

interface Conn {
  link: FrameLink;
  realm: string;
  endpoints: Set<number>;
}

export class Hub implements Router {
  readonly options: HubOptions;
  readonly #table: RealmTable;
  readonly #byEndpoint = new Map<number, Conn>();
  readonly #conns = new Map<FrameLink, Conn>();
  readonly #pools = new Map<string, Ownership>();
  readonly #dropped = Object.fromEntries(DROP_REASONS.map((r) => [r, 0])) as Record<DropReason, number>;
  #routed = 0;
  #copied = 0;

  constructor(options: Partial<HubOptions> = {}) {
    this.options = { endpointsMax: DEFAULT_ENDPOINTS_MAX, exportsPerEndpointMax: DEFAULT_EXPORTS_PER_ENDPOINT_MAX, linkBacklogBytesMax: DEFAULT_LINK_BACKLOG_BYTES_MAX, ...options };
    this.#table = new RealmTable(this.options.endpointsMax, this.options.exportsPerEndpointMax);
  }

  /**
   * Registers `endpoint` of `realm` on `link`. A link may carry several endpoints of one realm (the procs
   * of one host); the first registration starts reading the link.
   */
  attach(reg: Registration, link: FrameLink): Either<EndpointRegistrationError, void> {
    const known = this.#conns.get(link);
    if (known !== undefined && known.realm !== reg.realm) {
      return left(new EndpointRegistrationError(reg.endpoint, `its link belongs to realm ${known.realm}, not ${reg.realm}; a host serves one realm`));
    }
    if (!Number.isInteger(reg.endpoint) || reg.endpoint < 1 || reg.endpoint > OWNER_MAX) {
      return left(new EndpointRegistrationError(reg.endpoint, `endpoint ids are integers in [1, ${OWNER_MAX}] (they own pool buffers)`));
    }
    const r = this.#table.register(reg.endpoint, reg.realm);
    if (!r.ok) return left(new EndpointRegistrationError(reg.endpoint, r.reason));
    let conn = known;
    if (conn === undefined) {
      const c: Conn = { link, realm: reg.realm, endpoints: new Set() };
      conn = c;
      this.#conns.set(link, c);
      link.onFrames((frames) => this.#onFrames(c, frames));
      link.onClose(() => this.#onClose(c));
    }
    conn.endpoints.add(reg.endpoint);
    this.#byEndpoint.set(reg.endpoint, conn);
    return right(undefined);
  }

  /** `attach` over a stream socket (one end of a socketpair, or an accepted unix/TCP connection). */
  attachSocket(reg: Registration, socket: Socket): Either<EndpointRegistrationError, FrameLink> {
    const link = new SocketLink(socket, { backlogBytesMax: this.options.linkBacklogBytesMax, io: this.options.io });
    const r = this.attach(reg, link);
    return r._tag === 'Left' ? r : right(link);
  }

  /** Removes one endpoint (its proc exited); the link stays for the host's other endpoints. */
  detach(endpoint: number): void {
    const conn = this.#byEndpoint.get(endpoint);
    if (conn === undefined) return;
    this.#byEndpoint.delete(endpoint);
    conn.endpoints.delete(endpoint);
    this.#table.unregister(endpoint);
    this.options.onDetach?.(endpoint, conn.realm);
  }

  export(endpoint: number, realm: string): Either<EndpointRegistrationError, void> {
    const r = this.#table.export(endpoint, realm);
    return r.ok ? right(undefined) : left(new EndpointRegistrationError(endpoint, r.reason));
  }

  unexport(endpoint: number, realm: string): void {
    this.#table.unexport(endpoint, realm);
  }

  /** The realm's pool, needed for cross-realm copies and to free dropped buffers. */
  attachPool(realm: string, pool: Pool): void {
    this.#pools.set(realm, new Ownership(pool));
  }

  stats(): HubStats {
    return { endpoints: this.#byEndpoint.size, routed: this.#routed, copied: this.#copied, dropped: { ...this.#dropped } };
  }

  /** Writes a frame to its destination's link unchecked: for the node-to-node channel, which checked it. */
  deliver(frame: Buffer): boolean {
    const to = this.#byEndpoint.get(frame.readUInt32LE(F_DST));
    if (to === undefined || !to.link.write(frame)) return false;
    this.#routed++;
    this.options.poll?.poke();
    return true;
  }

  /**
   * BPF mode: a data descriptor the kernel diverted with F_COPY (its destination is in another realm that
   * exported it, or it is an exported service's answer): checked against the table here too, then
   * copied into the destination realm's pool like a userspace cross-realm descriptor. False when the
   * table does not allow it (the caller frees it and counts it).
   */
  copyDiverted(frames: Buffer, at: number): boolean {
    const src = frames.readUInt32LE(at + F_SRC);
    const verdict = this.#table.route(src, frames.readUInt32LE(at + F_DST));
    const srcRealm = this.#table.realmOf(src);
    if ((verdict !== 'exported' && verdict !== 'reply') || srcRealm === undefined) return false;
    this.#copyAcross(srcRealm, src, this.#byEndpoint.get(frames.readUInt32LE(at + F_DST))!, frames, at);
    return true;
  }

  /** Descriptor rejections seen by the hub's own checks (cross-realm copies, freeing dropped buffers). */
  poolRejections(realm: string): Record<string, number> | undefined {
    return this.#pools.get(realm)?.rejected();
  }

  close(): void {
    for (const conn of [...this.#conns.values()]) conn.link.close();
  }

  /** Routes a chunk of whole frames; consecutive frames to one link are written as one run. */
  #onFrames(from: Conn, frames: Buffer): void {
    let runLink: FrameLink | undefined;
    let runStart = 0;
    const flush = (end: number): void => {
      if (runLink !== undefined && end > runStart) this.#write(runLink, frames, runStart, end);
      runLink = undefined;
    };
    for (let at = 0; at < frames.length; at += FRAME_BYTES) {
      const target = this.#route(from, frames, at);
      if (target === runLink && target !== undefined) continue;
      flush(at);
      if (target !== undefined) {
        runLink = target;
        runStart = at;
      }
    }
    flush(frames.length);
  }

  /** The link a frame goes to unchanged, or undefined when it was dropped or copied across realms. */
  #route(from: Conn, frames: Buffer, at: number): FrameLink | undefined {
    const src = frames.readUInt32LE(at + F_SRC);
    const dst = frames.readUInt32LE(at + F_DST);
    if (!from.endpoints.has(src)) {
      this.#drop('spoofed-src', from.realm, src, dst); // not the sender's buffer to free
      return undefined;
    }
    const verdict = this.#table.route(src, dst);
    if (verdict === 'unknown-dst' && this.options.foreign?.(from.realm, frames, at) === true) return undefined;
    if (verdict === 'unknown-dst' || verdict === 'cross-realm') {
      this.#drop(verdict, from.realm, src, dst);
      this.#dispose(from.realm, src, frames, at);
      return undefined;
    }
    const to = this.#byEndpoint.get(dst);
    assert(to !== undefined, `the route table knows endpoint ${dst}, so a connection serves it`);
    if (verdict === 'local' || (frames.readUInt32LE(at + F_FLAGS) & FLAG_CREDIT) !== 0) return to.link;
    this.#copyAcross(from.realm, src, to, frames, at);
    return undefined;
  }

  #write(link: FrameLink, frames: Buffer, start: number, end: number): void {
    if (link.write(frames.subarray(start, end))) {
      this.#routed += (end - start) / FRAME_BYTES;
      this.options.poll?.poke();
      return;
    }
    // A link that closed is a destination gone (its 'close' not handled yet), not a backlogged one.
    const reason = link.closed === true ? 'unknown-dst' : 'dst-backlog';
    for (let at = start; at < end; at += FRAME_BYTES) {
      const src = frames.readUInt32LE(at + F_SRC);
      const realm = this.#table.realmOf(src) ?? '';
      this.#drop(reason, realm, src, frames.readUInt32LE(at + F_DST));
      this.#dispose(realm, src, frames, at);
    }
  }

  /** A data descriptor to another realm: copy the payload into the receiver realm's pool. */
  #copyAcross(srcRealm: string, src: number, to: Conn, frames: Buffer, at: number): void {
    const dst = frames.readUInt32LE(at + F_DST);
    const from = this.#pools.get(srcRealm);
    const into = this.#pools.get(to.realm);
    if (from === undefined || into === undefined) return this.#drop('no-pool', srcRealm, src, dst);
    const ref = { offset: frames.readUInt32LE(at + F_OFFSET), length: frames.readUInt32LE(at + F_LENGTH), generation: frames.readUInt32LE(at + F_GENERATION) };
    if (from.validate(ref, src)._tag === 'Left') return this.#drop('bad-buffer', srcRealm, src, dst);
    // The copy is owned by the sender's id (ids are node-unique), so the receiver accepts it as usual.
    const copy = into.pool.alloc(src, Math.max(1, ref.length));
    if (copy._tag === 'Left') {
      from.release(ref, src);
      return this.#drop('pool-exhausted', srcRealm, src, dst);
    }
    into.pool.bytes(copy.right.offset, ref.length).set(from.pool.bytes(ref.offset, ref.length));
    if (from.release(ref, src)._tag === 'Left') {
      into.release({ offset: copy.right.offset, length: ref.length, generation: copy.right.generation }, src);
      return this.#drop('bad-buffer', srcRealm, src, dst); // freed by the sender meanwhile
    }
    const frame = Buffer.from(frames.subarray(at, at + FRAME_BYTES));
    frame.writeUInt32LE(copy.right.offset, F_OFFSET);
    frame.writeUInt32LE(copy.right.generation, F_GENERATION);
    frame.writeUInt32LE((frame.readUInt32LE(F_FLAGS) & ~F_COPY) >>> 0, F_FLAGS); // the hub's copy, no longer a diversion
    this.#copied++;
    this.#write(to.link, frame, 0, FRAME_BYTES);
  }

  /** Frees the buffer of a dropped data descriptor on the sender's behalf, if the hub maps its pool. */
  #dispose(realm: string, src: number, frames: Buffer, at: number): void {
    if ((frames.readUInt32LE(at + F_FLAGS) & FLAG_CREDIT) !== 0) return;
    const own = this.#pools.get(realm);
    if (own === undefined) return;
    own.release({ offset: frames.readUInt32LE(at + F_OFFSET), length: frames.readUInt32LE(at + F_LENGTH), generation: frames.readUInt32LE(at + F_GENERATION) }, src);
  }

  #drop(reason: DropReason, realm: string, src: number, dst: number): void {
    const n = ++this.#dropped[reason];
    // Bounded logging: the 1st, 2nd, 4th, 8th... drop of each reason.
    if ((n & (n - 1)) === 0) this.options.logger?.warn({ reason, realm, src, dst, count: n }, `data path: descriptor dropped (${reason})`);
  }

  #onClose(conn: Conn): void {
    this.#conns.delete(conn.link);
    for (const ep of [...conn.endpoints]) this.detach(ep);
  }
}
