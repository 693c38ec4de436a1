import { F_SRC, FRAME_BYTES, type Descriptor, decodeFrame, encodeFrame } from './frames.js';

/**
 * The node-to-node channel's frames (src/datapath/remote.ts). One TCP connection per pair of nodes
 * carries them both ways. Every frame starts with a fixed 128-byte header, little-endian:
 *   kind u32 @0 | payload_bytes u32 @4 | seq u64 @8 | reason u32 @16 | text_bytes u32 @20
 *   | descriptor (the 32-byte frame of frames.ts) @24 | text (UTF-8, <= 64 bytes) @56 | reserved @120
 * followed by `payload_bytes` of payload (data frames only). `text` is the sender's realm on a data or
 * credit frame, the node id on HELLO, a nonce or an HMAC on AUTH (src/datapath/remote-auth.ts). `seq` numbers data frames per connection and direction; the
 * receiver answers them in order: a NACK (with a reason) for a refused one, and a cumulative ACK
 * ("every frame up to seq not NACKed was delivered") once per turn of its event loop.
 * Fixed width so that the reader never buffers more than one header: payload bytes go straight from the
 * socket into the destination realm's pool, the one copy of the channel.
 */
export const HEADER_BYTES = 128;
export const TEXT_BYTES_MAX = 64;
const H_KIND = 0;
const H_PAYLOAD = 4;
const H_SEQ = 8;
const H_REASON = 16;
const H_TEXT_LEN = 20;
const H_DESC = 24;
const H_TEXT = 56;

export const KIND = { hello: 1, data: 2, credit: 3, ack: 4, nack: 5, auth: 6 } as const;
/** An AUTH frame's `reason`: a challenge (text: a nonce) or the proof for the peer's challenge (text: an HMAC). */
export const AUTH_CHALLENGE = 0;
export const AUTH_PROOF = 1;
export type Kind = keyof typeof KIND;
const KIND_NAMES = new Map<number, Kind>(Object.entries(KIND).map(([k, v]) => [v, k as Kind]));

/** Why the receiving node refused a data frame (carried in a NACK's `reason`). */
export const REFUSALS = ['unknown-endpoint', 'cross-realm', 'pool-exhausted', 'credits-exhausted', 'dst-backlog', 'too-large', 'bad-src'] as const;
export type Refusal = (typeof REFUSALS)[number];

export interface Header {
  kind: Kind;
  payloadBytes: number;
  /** A safe integer (2^53 frames per connection: centuries at a million a second). */
  seq: number;
  reason: number;
  text: string;
  desc: Descriptor;
}

const ZERO_DESC: Descriptor = { dstEp: 0, srcEp: 0, offset: 0, length: 0, generation: 0, flags: 0, requestId: 0n };

/** Realm and node names as bytes, cached: a handful per node, encoded on every frame otherwise. */
const TEXT_CACHE_MAX = 1024;
const textCache = new Map<string, Buffer>();
function textBytes(text: string): Buffer {
  let b = textCache.get(text);
  if (b !== undefined) return b;
  b = Buffer.from(text, 'utf8');
  if (b.length > TEXT_BYTES_MAX) throw new RangeError(`realm or node id "${text}" is ${b.length} bytes; at most ${TEXT_BYTES_MAX}`);
  if (textCache.size >= TEXT_CACHE_MAX) textCache.clear();
  textCache.set(text, b);
  return b;
}

export function encodeHeader(h: Partial<Header> & { kind: Kind }): Buffer {
  const text = textBytes(h.text ?? '');
  const seq = h.seq ?? 0;
  if (!Number.isSafeInteger(seq) || seq < 0) throw new RangeError(`seq must be a non-negative safe integer, got ${seq}`);
  const b = Buffer.allocUnsafe(HEADER_BYTES);
  b.writeUInt32LE(KIND[h.kind], H_KIND);
  b.writeUInt32LE(h.payloadBytes ?? 0, H_PAYLOAD);
  b.writeUInt32LE(seq % 2 ** 32, H_SEQ);
  b.writeUInt32LE(Math.floor(seq / 2 ** 32), H_SEQ + 4);
  b.writeUInt32LE(h.reason ?? 0, H_REASON);
  b.writeUInt32LE(text.length, H_TEXT_LEN);
  encodeFrame(h.desc ?? ZERO_DESC, b, H_DESC);
  text.copy(b, H_TEXT);
  b.fill(0, H_TEXT + text.length); // never put stale process memory on the wire
  return b;
}

export type HeaderFault = 'unknown-kind' | 'bad-text' | 'payload-on-control' | 'bad-seq';

/** Reads a header; undefined plus the fault when the bytes cannot be one (the connection is then closed). */
export function decodeHeader(b: Buffer): Header | HeaderFault {
  const kind = KIND_NAMES.get(b.readUInt32LE(H_KIND));
  if (kind === undefined) return 'unknown-kind';
  const textBytes = b.readUInt32LE(H_TEXT_LEN);
  if (textBytes > TEXT_BYTES_MAX) return 'bad-text';
  const payloadBytes = b.readUInt32LE(H_PAYLOAD);
  if (kind !== 'data' && payloadBytes !== 0) return 'payload-on-control';
  if (b.readUInt32LE(H_SEQ + 4) >= 2 ** 21) return 'bad-seq'; // beyond 2^53
  return {
    kind,
    payloadBytes,
    seq: b.readUInt32LE(H_SEQ) + b.readUInt32LE(H_SEQ + 4) * 2 ** 32,
    reason: b.readUInt32LE(H_REASON),
    text: b.toString('utf8', H_TEXT, H_TEXT + textBytes),
    desc: decodeFrame(b, H_DESC),
  };
}

/** The descriptor as a local 32-byte frame, for delivery to a local endpoint's link. */
export function localFrame(d: Descriptor): Buffer {
  const f = encodeFrame(d);
  if (f.length !== FRAME_BYTES || f.readUInt32LE(F_SRC) !== d.srcEp >>> 0) throw new RangeError('frame encoding broke its own layout');
  return f;
}

/**
 * Splits a connection's byte stream into headers and payload bytes. For each data header, `onHeader`
 * says where its payload goes: a Uint8Array of exactly `payloadBytes` (the pool buffer), or undefined to
 * skip it (refused, already answered). Never holds more than one header's bytes of its own.
 */
export class FrameReader {
  readonly #head = Buffer.alloc(HEADER_BYTES);
  #headBytes = 0;
  #header: Header | undefined;
  #into: Uint8Array | undefined;
  #payloadLeft = 0;
  #payloadAt = 0;

  constructor(
    readonly onHeader: (h: Header) => Uint8Array | undefined,
    readonly onPayload: (h: Header) => void,
    readonly onFault: (fault: HeaderFault) => void,
  ) {}

  /** True while the reader is in the middle of a frame's payload. */
  get midFrame(): boolean {
    return this.#header !== undefined;
  }

  feed(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.#header === undefined) {
        const n = Math.min(HEADER_BYTES - this.#headBytes, chunk.length - at);
        chunk.copy(this.#head, this.#headBytes, at, at + n);
        this.#headBytes += n;
        at += n;
        if (this.#headBytes < HEADER_BYTES) return;
        this.#headBytes = 0;
        const h = decodeHeader(this.#head);
        if (typeof h === 'string') return this.onFault(h);
        if (h.kind !== 'data' || h.payloadBytes === 0) {
          if (h.kind === 'data') this.onHeader(h);
          this.onPayload(h);
          continue;
        }
        this.#header = h;
        this.#into = this.onHeader(h);
        this.#payloadLeft = h.payloadBytes;
        this.#payloadAt = 0;
        continue;
      }
      const n = Math.min(this.#payloadLeft, chunk.length - at);
      this.#into?.set(chunk.subarray(at, at + n), this.#payloadAt);
      this.#payloadAt += n;
      this.#payloadLeft -= n;
      at += n;
      if (this.#payloadLeft === 0) {
        const h = this.#header;
        this.#header = undefined;
        this.#into = undefined;
        this.onPayload(h);
      }
    }
  }
}
