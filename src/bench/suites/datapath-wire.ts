/**
 * The two ends of every transport the `datapath` benchmark compares, as they run inside the two host
 * processes: a client that sends one request of N bytes and waits for its echo, and a server that echoes.
 * The rules are the same for all five, so the comparison is fair: the sender fills the whole payload
 * (a byte that changes per request), the receiver touches every 4 KiB page of it (and checks the first
 * and last byte), the echo carries the same N bytes back, and the client touches them again.
 *
 * The data-path ends here (`DataPathClient`, `serveDataPath`) serve the `remote` transport, written
 * against a bare Endpoint; `bpf` and `userspace` run between real procs (src/bench/procs/) with the same
 * rules. The server forwards the received buffer itself (zero copy), as SPRIGHT's function chain does.
 */
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { connect as tcpConnect, createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { connect as natsConnect, type NatsConnection } from '@nats-io/transport-node';
import { Pool } from 'undici';
import type { BusyPoll } from '../../datapath/busy-poll.js';
import type { Endpoint, Message } from '../../datapath/endpoint.js';
import { BenchError } from '../harness.js';

export const PAGE_BYTES = 4096;
/** Request ids of forged descriptors carry this bit, so a delivery of one is recognisable. */
export const FORGED_BIT = 1n << 62n;
/**
 * A credit or NATS reply that takes this long is a broken transport, not a slow one. Round trips carry no
 * timer of their own (it would be measured too): a phase that hangs is caught by the suite's per-command
 * bound (COMMAND_TIMEOUT_MS in datapath.ts).
 */
export const ROUND_TRIP_TIMEOUT_MS = 30_000;
/** Bytes of one length-prefixed frame on the plain TCP transport (a bound, not a buffer size). */
const TCP_FRAME_BYTES_MAX = 16 << 20;
export const NATS_SUBJECT = 'sigma.bench.echo';

/** Keeps the page reads alive (the JIT may not drop a loop whose result is observable). */
export let touchSink = 0;

/** Reads one byte of every 4 KiB page and checks the fill byte at both ends. */
export function touchPages(bytes: Uint8Array, fill: number): void {
  const n = bytes.length;
  if (n === 0 || bytes[0] !== fill || bytes[n - 1] !== fill) throw new BenchError(`payload corrupted: expected fill ${fill}, got ${bytes[0]}..${bytes[n - 1]} over ${n} bytes`);
  let s = 0;
  for (let i = 0; i < n; i += PAGE_BYTES) s += bytes[i]!;
  touchSink += s;
}

/** The same over a payload that arrived in chunks (TCP, HTTP): every page of the whole, no concat. */
export function touchChunks(chunks: readonly Uint8Array[], fill: number): void {
  let at = 0;
  let next = 0;
  let s = 0;
  for (const c of chunks) {
    for (let i = next - at; i < c.length; i += PAGE_BYTES) s += c[i]!;
    at += c.length;
    next = Math.ceil(at / PAGE_BYTES) * PAGE_BYTES;
  }
  const first = chunks[0];
  const last = chunks.at(-1);
  if (first === undefined || last === undefined || first[0] !== fill || last[last.length - 1] !== fill) throw new BenchError(`payload corrupted: expected fill ${fill} over ${at} bytes in ${chunks.length} chunks`);
  touchSink += s;
}

/** One side of one transport inside a host process. */
export interface WireClient {
  roundTrip(sizeBytes: number, seq: number): Promise<void>;
  close(): Promise<void>;
}

// ---- data path (bpf and userspace: the same Endpoint, a different link) ---------------------------------

export class DataPathClient implements WireClient {
  readonly #pending = new Map<bigint, { fill: number; resolve: () => void; reject: (e: Error) => void }>();
  #next = 1n;

  constructor(readonly ep: Endpoint, readonly dst: number) {
    ep.onMessage((m) => this.#onReply(m));
  }

  async roundTrip(sizeBytes: number, seq: number): Promise<void> {
    const a = this.ep.alloc(sizeBytes);
    if (a._tag === 'Left') throw a.left;
    const fill = seq & 0xff;
    this.ep.pool.bytes(a.right.offset, sizeBytes).fill(fill);
    const id = this.#next++;
    const answered = new Promise<void>((resolve, reject) => this.#pending.set(id, { fill, resolve, reject }));
    // A credit is normally at hand: send synchronously, and wait for one only when the window is full.
    const now = this.ep.trySendBuffer(this.dst, a.right, sizeBytes, id);
    const sent = now._tag === 'Right' || now.left.type !== 'credits-exhausted' ? now : await this.ep.sendBuffer(this.dst, a.right, sizeBytes, { requestId: id, timeoutMs: ROUND_TRIP_TIMEOUT_MS });
    if (sent._tag === 'Left') {
      this.#pending.delete(id);
      this.ep.pool.free(this.ep.id, a.right.offset, a.right.generation);
      throw sent.left;
    }
    return answered;
  }

  async close(): Promise<void> {
    for (const p of this.#pending.values()) p.reject(new BenchError('client closed'));
    this.#pending.clear();
  }

  #onReply(m: Message): void {
    const p = this.#pending.get(m.requestId);
    try {
      if (p === undefined) throw new BenchError(`reply to unknown request ${m.requestId} from ${m.src}`);
      this.#pending.delete(m.requestId);
      touchPages(m.bytes, p.fill);
      p.resolve();
    } catch (e) {
      p?.reject(e as Error);
    } finally {
      m.release();
    }
  }
}

export interface EchoStats {
  received: number;
  forgedDelivered: number;
}

/** The echo service: touches the request's pages and forwards the same buffer back to its sender. */
export function serveDataPath(ep: Endpoint, legitimateSrc: number): EchoStats {
  const stats: EchoStats = { received: 0, forgedDelivered: 0 };
  ep.onMessage((m) => {
    stats.received++;
    if (m.src !== legitimateSrc || (m.requestId & FORGED_BIT) !== 0n) {
      stats.forgedDelivered++; // a forged descriptor got through every check: the figure that must stay 0
      m.release();
      return;
    }
    touchPages(m.bytes, m.bytes[0]!);
    const buf = m.take();
    const r = ep.trySendBuffer(m.src, buf, m.lengthBytes, m.requestId);
    if (r._tag === 'Right') return;
    void ep.sendBuffer(m.src, buf, m.lengthBytes, { requestId: m.requestId, timeoutMs: ROUND_TRIP_TIMEOUT_MS }).then((s) => {
      if (s._tag === 'Left') ep.pool.free(ep.id, buf.offset, buf.generation);
    });
  });
  return stats;
}

// ---- plain TCP: [u32 length][payload], one connection, pipelined ------------------------------------------

/** Splits a byte stream into length-prefixed messages, handing each over as the chunks it arrived in. */
function frameReader(onMessage: (chunks: Buffer[], lengthBytes: number) => void): (chunk: Buffer) => void {
  let head = Buffer.alloc(0);
  let want = -1;
  let chunks: Buffer[] = [];
  let have = 0;
  return (chunk) => {
    let c = chunk;
    while (c.length > 0) {
      if (want < 0) {
        const need = 4 - head.length;
        head = Buffer.concat([head, c.subarray(0, need)]);
        c = c.subarray(need);
        if (head.length < 4) return;
        want = head.readUInt32LE(0);
        head = Buffer.alloc(0);
        if (want < 1 || want > TCP_FRAME_BYTES_MAX) throw new BenchError(`tcp frame of ${want} bytes is outside [1, ${TCP_FRAME_BYTES_MAX}]`);
      }
      const take = Math.min(want - have, c.length);
      chunks.push(c.subarray(0, take));
      have += take;
      c = c.subarray(take);
      if (have === want) {
        const done = chunks;
        const n = want;
        chunks = [];
        have = 0;
        want = -1;
        onMessage(done, n);
      }
    }
  };
}

/** The socket's data handler: `read` itself without a poll (plain tcp, unchanged), else a poke first. */
const pokingFirst = (poll: BusyPoll | undefined, read: (chunk: Buffer) => void): ((chunk: Buffer) => void) =>
  poll === undefined
    ? read
    : (chunk) => {
        poll.poke();
        read(chunk);
      };

const header = (n: number): Buffer => {
  const h = Buffer.allocUnsafe(4);
  h.writeUInt32LE(n, 0);
  return h;
};

/**
 * `poll`: the busy poll of a spinning host (`tcpspin`), poked on every read and write as a proc host's
 * data-path link pokes its own (src/datapath/frames.ts).
 */
export async function serveTcp(poll?: BusyPoll): Promise<{ port: number; close(): Promise<void> }> {
  const server: TcpServer = createTcpServer((sock) => {
    sock.setNoDelay(true);
    sock.on('error', () => sock.destroy());
    const read = frameReader((chunks, n) => {
      touchChunks(chunks, chunks[0]![0]!);
      sock.cork();
      sock.write(header(n));
      for (const c of chunks) sock.write(c);
      sock.uncork();
    });
    sock.on('data', pokingFirst(poll, read));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { port: (server.address() as AddressInfo).port, close: () => new Promise((r) => server.close(() => r())) };
}

export class TcpClient implements WireClient {
  readonly #fifo: Array<{ fill: number; resolve: () => void; reject: (e: Error) => void }> = [];

  private constructor(readonly sock: Socket, readonly poll: BusyPoll | undefined) {
    sock.setNoDelay(true);
    const read = frameReader((chunks) => {
      const p = this.#fifo.shift();
      if (p === undefined) throw new BenchError('tcp: a reply nobody asked for');
      try {
        touchChunks(chunks, p.fill);
        p.resolve();
      } catch (e) {
        p.reject(e as Error);
      }
    });
    sock.on('data', pokingFirst(poll, read));
    sock.on('close', () => this.#fifo.splice(0).forEach((p) => p.reject(new BenchError('tcp connection closed'))));
  }

  static async connect(port: number, poll?: BusyPoll): Promise<TcpClient> {
    const sock = tcpConnect(port, '127.0.0.1');
    await new Promise<void>((r, j) => sock.once('connect', () => r()).once('error', j));
    return new TcpClient(sock, poll);
  }

  roundTrip(sizeBytes: number, seq: number): Promise<void> {
    const fill = seq & 0xff;
    const b = Buffer.allocUnsafe(4 + sizeBytes);
    b.writeUInt32LE(sizeBytes, 0);
    b.fill(fill, 4);
    const answered = new Promise<void>((resolve, reject) => this.#fifo.push({ fill, resolve, reject }));
    this.poll?.poke();
    this.sock.write(b);
    return answered;
  }

  async close(): Promise<void> {
    this.sock.destroy();
  }
}

// ---- HTTP/1.1 keep-alive (node:http server, undici client) -------------------------------------------------

export async function serveHttp(): Promise<{ port: number; close(): Promise<void> }> {
  const server: HttpServer = createHttpServer({ keepAliveTimeout: 60_000 }, (req, res) => {
    const chunks: Buffer[] = [];
    let n = 0;
    req.on('data', (c: Buffer) => {
      chunks.push(c);
      n += c.length;
    });
    req.on('end', () => {
      touchChunks(chunks, chunks[0]![0]!);
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': n });
      for (const c of chunks) res.write(c);
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/**
 * The `http` baseline's client: undici's Pool (keep-alive connections, one request at a time on each),
 * the HTTP/1.1 client a careful Node engineer picks for speed (fetch is built on it). node:http's
 * request with a keep-alive Agent, the client before, was slower: 258 against 229 µs p50 at 64 B,
 * 1,092 against 1,016 at 1 MiB (interleaved, same server, under load).
 */
export class HttpClient implements WireClient {
  readonly #pool: Pool;

  constructor(readonly port: number, socketsMax: number) {
    this.#pool = new Pool(`http://127.0.0.1:${port}`, { connections: socketsMax, pipelining: 1 });
  }

  async roundTrip(sizeBytes: number, seq: number): Promise<void> {
    const fill = seq & 0xff;
    const body = Buffer.allocUnsafe(sizeBytes).fill(fill);
    const res = await this.#pool.request({ path: '/echo', method: 'POST', body, headers: { 'content-length': String(sizeBytes) } });
    const chunks: Buffer[] = [];
    for await (const c of res.body) chunks.push(c as Buffer);
    if (res.statusCode !== 200) throw new BenchError(`http: status ${res.statusCode}`);
    touchChunks(chunks, fill);
  }

  async close(): Promise<void> {
    await this.#pool.destroy();
  }
}

// ---- NATS request/reply (a real nats-server started for the run) ----------------------------------------

export async function serveNats(url: string): Promise<{ close(): Promise<void> }> {
  const nc = await natsConnect({ servers: url, name: 'bench-echo' });
  nc.subscribe(NATS_SUBJECT, {
    callback: (err, msg) => {
      if (err !== null) return;
      touchPages(msg.data, msg.data[0]!);
      msg.respond(msg.data);
    },
  });
  await nc.flush();
  return { close: () => nc.close() };
}

export class NatsClient implements WireClient {
  private constructor(readonly nc: NatsConnection) {}

  static async connect(url: string): Promise<NatsClient> {
    return new NatsClient(await natsConnect({ servers: url, name: 'bench-client' }));
  }

  async roundTrip(sizeBytes: number, seq: number): Promise<void> {
    const fill = seq & 0xff;
    const reply = await this.nc.request(NATS_SUBJECT, new Uint8Array(sizeBytes).fill(fill), { timeout: ROUND_TRIP_TIMEOUT_MS });
    touchPages(reply.data, fill);
  }

  async close(): Promise<void> {
    await this.nc.close();
  }
}
