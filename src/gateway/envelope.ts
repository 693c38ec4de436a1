/**
 * The `http` envelope of a gateway route (RouteRecord.envelope): how a proc sees the HTTP request and
 * shapes its answer. A request is `u32le headBytes | head (JSON) | body`, all in the one pool buffer the
 * gateway filled; an answer may be framed the same way with `{ status, headers }`, or be plain bytes
 * (then 200). Proc authors use readRequest / httpAnswer; the gateway uses the rest.
 */
export interface RequestHead {
  method: string;
  /** Path and query as the client sent them. */
  url: string;
  path: string;
  query: Record<string, string>;
  /** Values of the route's `:params` (and `*` for a trailing wildcard). */
  params: Record<string, string>;
  /** Lower-case names; repeated headers joined with ", ". */
  headers: Record<string, string>;
}

export interface AnswerHead {
  status: number;
  headers?: Record<string, string>;
}

/** Marks an answer framed with a head (a plain answer never starts with these four bytes by chance: they spell "\0σH\0"). */
const ANSWER_MAGIC = 0x0048cf00;
export const HEAD_BYTES_MAX = 64 << 10;

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

export class EnvelopeError extends Error {
  readonly type = 'bad-envelope';
  constructor(detail: string) {
    super(`gateway envelope: ${detail}`);
    this.name = 'EnvelopeError';
  }
}

export function encodeHead(head: RequestHead | AnswerHead): Uint8Array {
  const bytes = utf8.encode(JSON.stringify(head));
  if (bytes.length > HEAD_BYTES_MAX) throw new EnvelopeError(`a head of ${bytes.length} bytes is over ${HEAD_BYTES_MAX}`);
  return bytes;
}

/** Writes `u32le length | head` at the start of `into`; returns where the body begins. */
export function writeHead(into: Uint8Array, head: Uint8Array): number {
  new DataView(into.buffer, into.byteOffset, into.byteLength).setUint32(0, head.length, true);
  into.set(head, 4);
  return 4 + head.length;
}

/** For procs behind an `http` route: the request's head and a view of its body (no copy). */
export function readRequest(bytes: Uint8Array): { head: RequestHead; body: Uint8Array } {
  if (bytes.length < 4) throw new EnvelopeError('shorter than its length prefix');
  const n = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0, true);
  if (n > HEAD_BYTES_MAX || 4 + n > bytes.length) throw new EnvelopeError(`head length ${n} does not fit`);
  const head = JSON.parse(fromUtf8.decode(bytes.subarray(4, 4 + n))) as RequestHead;
  return { head, body: bytes.subarray(4 + n) };
}

/** For procs behind an `http` route: an answer with a status and headers (one copy, into the pool, by ctx). */
export function httpAnswer(status: number, body: Uint8Array | string, headers: Record<string, string> = {}): Uint8Array {
  const b = typeof body === 'string' ? utf8.encode(body) : body;
  const head = encodeHead({ status, headers });
  const out = new Uint8Array(8 + head.length + b.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, ANSWER_MAGIC, true);
  dv.setUint32(4, head.length, true);
  out.set(head, 8);
  out.set(b, 8 + head.length);
  return out;
}

/** The gateway's reading of an answer: framed (status, headers, body view) or plain (200, all of it). */
export function readAnswer(bytes: Uint8Array): { head: AnswerHead; body: Uint8Array } | EnvelopeError {
  if (bytes.length < 8) return { head: { status: 200 }, body: bytes };
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (dv.getUint32(0, true) !== ANSWER_MAGIC) return { head: { status: 200 }, body: bytes };
  const n = dv.getUint32(4, true);
  if (n > HEAD_BYTES_MAX || 8 + n > bytes.length) return new EnvelopeError(`answer head length ${n} does not fit`);
  try {
    const head = JSON.parse(fromUtf8.decode(bytes.subarray(8, 8 + n))) as AnswerHead;
    if (!Number.isInteger(head.status) || head.status < 200 || head.status > 599) return new EnvelopeError(`answer status ${String(head.status)} is not in [200, 599]`);
    return { head, body: bytes.subarray(8 + n) };
  } catch (e) {
    return new EnvelopeError(`answer head is not JSON (${(e as Error).message})`);
  }
}
