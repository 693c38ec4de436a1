import { Socket, type SocketConstructorOpts } from 'node:net';
import type { SocketIo } from '../native/index.js';
import type { BusyPoll } from './busy-poll.js';
import { left, type Either } from 'fp-ts/lib/Either.js';
import { checkDescriptor, DESC_OFFSETS, DESC_SIZE, DescriptorError, F_CREDIT, fitsWidths, type Descriptor } from './descriptor.js';

/**
 * Descriptor frames on the wire and the links that carry them.
 *
 * A frame is one 32-byte descriptor in the layout of bpf/sigma_datapath.h, mirrored once in
 * ./descriptor.ts; the names below are that mirror's, short for the hot paths that index frames.
 * Fixed frames rather than length-prefixed ones: the BPF program gives one verdict per 32 bytes
 * (bpf_msg_apply_bytes), and the hub can route a whole read chunk in place without parsing lengths.
 */
export const FRAME_BYTES = DESC_SIZE;
export const F_DST = DESC_OFFSETS.dstEp;
export const F_SRC = DESC_OFFSETS.srcEp;
export const F_OFFSET = DESC_OFFSETS.offset;
export const F_LENGTH = DESC_OFFSETS.length;
export const F_GENERATION = DESC_OFFSETS.generation;
export const F_FLAGS = DESC_OFFSETS.flags;
export const F_REQUEST_ID = DESC_OFFSETS.requestId;
/** A credit return: no buffer; `length` is the number of credits. */
export const FLAG_CREDIT = F_CREDIT;
export type { Descriptor };

/**
 * The descriptor codec: writes `d` at `at`. A field outside its width is a bug in the caller, not
 * data: it throws a DescriptorError ('not-u32') rather than wrapping silently; no room throws too.
 */
export function encodeFrame(d: Descriptor, out: Buffer = Buffer.allocUnsafe(FRAME_BYTES), at = 0): Buffer {
  const bad = fitsWidths(d);
  if (bad !== undefined) throw bad;
  if (!(at >= 0 && at + FRAME_BYTES <= out.length)) throw new DescriptorError('short', `no room for ${FRAME_BYTES} bytes at ${at} in a ${out.length}-byte buffer`);
  out.writeUInt32LE(d.dstEp, at + F_DST);
  out.writeUInt32LE(d.srcEp, at + F_SRC);
  out.writeUInt32LE(d.offset, at + F_OFFSET);
  out.writeUInt32LE(d.length, at + F_LENGTH);
  out.writeUInt32LE(d.generation, at + F_GENERATION);
  out.writeUInt32LE(d.flags, at + F_FLAGS);
  out.writeBigUInt64LE(d.requestId, at + F_REQUEST_ID);
  return out;
}

/** Reads the frame at `at`: any 32 bytes are some descriptor; checkDescriptor says whether it keeps the rules. */
export function decodeFrame(b: Buffer, at = 0): Descriptor {
  return {
    dstEp: b.readUInt32LE(at + F_DST),
    srcEp: b.readUInt32LE(at + F_SRC),
    offset: b.readUInt32LE(at + F_OFFSET),
    length: b.readUInt32LE(at + F_LENGTH),
    generation: b.readUInt32LE(at + F_GENERATION),
    flags: b.readUInt32LE(at + F_FLAGS),
    requestId: b.readBigUInt64LE(at + F_REQUEST_ID),
  };
}

/** Reads and checks the frame at `at` of bytes from outside: a Left for too few bytes or a broken rule, never a throw. */
export function decodeFrameChecked(b: Buffer, at: number, poolBytes: number): Either<DescriptorError, Descriptor> {
  if (!Number.isInteger(at) || at < 0 || at + FRAME_BYTES > b.length) return left(new DescriptorError('short', `need ${FRAME_BYTES} bytes at ${at}, there are ${b.length}`));
  return checkDescriptor(decodeFrame(b, at), poolBytes);
}

/** The frame at `at` asks for an answer: a request id (not 0) without the response bit (request-id.ts). */
export function isCallRequest(frames: Uint8Array, at: number): boolean {
  const id = at + F_REQUEST_ID;
  if ((frames[id + 7]! & 0x80) !== 0) return false;
  for (let i = id; i < id + 8; i++) if (frames[i] !== 0) return true;
  return false;
}

/** Some frame of `frames` is a call request (credit returns may ride along with it, before or after). */
function carriesCall(frames: Uint8Array): boolean {
  for (let at = 0; at < frames.length; at += FRAME_BYTES) if (isCallRequest(frames, at)) return true;
  return false;
}

/**
 * One endpoint's connection, seen from either end: the hub's side or the endpoint's side. The userspace
 * hub and BPF mode both use sockets (in BPF mode most frames are redirected by the kernel and only the
 * rejected ones reach the hub); tests and single-process setups use an in-process pair.
 */
export interface FrameLink {
  /** Sends whole frames. False (and nothing sent) when the peer's backlog is over its bound. */
  write(frames: Uint8Array): boolean;
  /** Receives whole frames (a multiple of FRAME_BYTES, valid only during the call). */
  onFrames(handler: (frames: Buffer) => void): void;
  onClose(handler: () => void): void;
  close(): void;
  /** True once the link can carry nothing more (when the link knows). */
  readonly closed?: boolean;
}

export const DEFAULT_LINK_BACKLOG_BYTES_MAX = 1 << 20;
/** The one buffer a link made by SocketLink.overFd reads into (a read takes up to this much). */
const READ_BUFFER_BYTES = 64 << 10;

export interface SocketLinkOptions {
  /** Bound on bytes accepted but not yet in the kernel; a write beyond it is refused. */
  backlogBytesMax?: number;
  /**
   * Poked on every read, and on writes that carry a call request (the writer waits for an answer then).
   * One-way sends and answers do not make the sender spin.
   */
  poll?: BusyPoll;
  /** Native send (src/native/socket.cc): a write costs one syscall instead of a trip through Node's streams. */
  io?: SocketIo;
}

/**
 * A FrameLink over a stream socket (unix or TCP): reassembles frames, coalesces writes, bounds the backlog.
 * Frames written in one turn of the event loop leave in one socket write at the end of the turn (one
 * syscall and one wakeup of the peer): gathered here rather than by cork/uncork, whose writev path costs
 * more JS per write than the write itself for 32-byte frames.
 *
 * With native I/O, a write goes straight to the fd whenever Node has nothing queued for it (what the
 * kernel does not take is queued in Node, and everything after waits behind it, so bytes never overtake
 * each other): 1-1.5 µs less a 64 B round trip between two procs. libuv still owns the socket: it reads
 * it, sees errors and closes it. (Reading the fd natively from the busy poll's turns gained nothing
 * over libuv's own zero-timeout epoll, measured; it is not done.)
 */
export class SocketLink implements FrameLink {
  readonly socket: Socket;
  readonly backlogBytesMax: number;
  readonly poll: BusyPoll | undefined;
  #partial: Buffer | undefined;
  #frames: (frames: Buffer) => void = () => {};
  /** Frames of this turn, not yet handed to the socket. */
  readonly #batch: Uint8Array[] = [];
  #batchBytes = 0;
  readonly #closeHandlers: Array<() => void> = [];
  readonly #flush = (): void => this.#flushBatch();
  /** Dropped at the first kernel error: libuv handles what follows (an error, or a socket that is not one). */
  #io: SocketIo | undefined;
  readonly #fd: number;

  /**
   * A link over an inherited socket fd (a proc host's connection) that reads into one reused buffer
   * (Node's `onread`): no Buffer is allocated and no stream machinery runs per read, 2-3 µs less a 64 B
   * round trip between two procs (measured: 23.3-24.7 against 25.8-26.8 µs p50, four paired runs). The
   * frames it hands on live in that buffer, valid only during the call (FrameLink's contract); nothing
   * may keep them or write them out again later, which a host never does (the hub does: it keeps the
   * stream path).
   */
  static overFd(fd: number, options: SocketLinkOptions = {}): SocketLink {
    let link: SocketLink | undefined;
    const onread = { buffer: Buffer.allocUnsafe(READ_BUFFER_BYTES), callback: (n: number, buf: Buffer): void => link!.#onData(buf.subarray(0, n)) };
    // The Socket constructor reads `onread` (net.connect hands its options to it); @types/node lists it for connect only.
    link = new SocketLink(new Socket({ fd, readable: true, writable: true, onread } as SocketConstructorOpts), options);
    return link;
  }

  constructor(socket: Socket, options: SocketLinkOptions = {}) {
    this.socket = socket;
    this.backlogBytesMax = options.backlogBytesMax ?? DEFAULT_LINK_BACKLOG_BYTES_MAX;
    this.poll = options.poll;
    const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
    this.#fd = typeof fd === 'number' ? fd : -1;
    this.#io = this.#fd >= 0 ? options.io : undefined;
    socket.setNoDelay?.(true);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('close', () => this.#closeHandlers.splice(0).forEach((h) => h()));
    socket.on('error', () => socket.destroy()); // 'close' follows; the owner learns of it there
  }

  write(frames: Uint8Array): boolean {
    if (frames.length % FRAME_BYTES !== 0) throw new RangeError(`a link carries whole ${FRAME_BYTES}-byte frames, got ${frames.length} bytes`);
    if (this.socket.destroyed || this.socket.writableLength + this.#batchBytes + frames.length > this.backlogBytesMax) return false;
    if (this.#batch.length === 0) process.nextTick(this.#flush);
    if (this.poll !== undefined && carriesCall(frames)) this.poll.poke();
    this.#batch.push(frames);
    this.#batchBytes += frames.length;
    return true;
  }

  get closed(): boolean {
    return this.socket.destroyed;
  }

  /** Bytes accepted by write() that have not left this process yet. */
  get pendingBytes(): number {
    return this.socket.writableLength + this.#batchBytes;
  }

  #flushBatch(): void {
    const b = this.#batch;
    let out = b.length === 1 ? b[0]! : Buffer.concat(b, this.#batchBytes);
    b.length = 0;
    this.#batchBytes = 0;
    if (this.socket.destroyed) return;
    if (this.#io !== undefined && this.socket.writableLength === 0 && !this.socket.connecting) {
      let sent = 0;
      try {
        sent = this.#io.send(this.#fd, out);
      } catch {
        this.#io = undefined; // libuv meets the same error on the write below, and closes the socket
      }
      if (sent === out.length) return;
      if (sent > 0) out = out.subarray(sent);
    }
    this.socket.write(out);
  }

  onFrames(handler: (frames: Buffer) => void): void {
    this.#frames = handler;
  }

  onClose(handler: () => void): void {
    if (this.socket.destroyed) handler();
    else this.#closeHandlers.push(handler);
  }

  close(): void {
    this.socket.destroy();
  }

  #onData(chunk: Buffer): void {
    this.poll?.poke();
    let data = chunk;
    if (this.#partial !== undefined) {
      data = Buffer.concat([this.#partial, chunk]);
      this.#partial = undefined;
    }
    const whole = data.length - (data.length % FRAME_BYTES);
    if (whole < data.length) this.#partial = Buffer.from(data.subarray(whole));
    if (whole > 0) this.#frames(data.subarray(0, whole));
  }
}

/**
 * Two in-process links wired to each other (an endpoint and the hub in one process). Delivery is deferred
 * (never re-entrant, like a socket) and bounded like a socket's backlog.
 */
export function linkPair(defer: (fn: () => void) => void = queueMicrotask, backlogBytesMax = DEFAULT_LINK_BACKLOG_BYTES_MAX): [FrameLink, FrameLink] {
  const a = new MemoryLink(defer, backlogBytesMax);
  const b = new MemoryLink(defer, backlogBytesMax);
  a.peer = b;
  b.peer = a;
  return [a, b];
}

class MemoryLink implements FrameLink {
  peer: MemoryLink | undefined;
  queuedBytes = 0;
  closed = false;
  #frames: (frames: Buffer) => void = () => {};
  readonly #closeHandlers: Array<() => void> = [];

  constructor(readonly defer: (fn: () => void) => void, readonly backlogBytesMax: number) {}

  write(frames: Uint8Array): boolean {
    const peer = this.peer;
    if (this.closed || peer === undefined || peer.closed || peer.queuedBytes + frames.length > this.backlogBytesMax) return false;
    if (frames.length % FRAME_BYTES !== 0) throw new RangeError(`a link carries whole ${FRAME_BYTES}-byte frames, got ${frames.length} bytes`);
    const copy = Buffer.from(frames);
    peer.queuedBytes += copy.length;
    this.defer(() => {
      peer.queuedBytes -= copy.length;
      if (!peer.closed) peer.#frames(copy);
    });
    return true;
  }

  onFrames(handler: (frames: Buffer) => void): void {
    this.#frames = handler;
  }

  onClose(handler: () => void): void {
    if (this.closed) handler();
    else this.#closeHandlers.push(handler);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.#closeHandlers.splice(0).forEach((h) => h());
    this.peer?.close();
  }
}
