import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { RouteRecord } from '../control/protocol/index.js';
import type { NameLookup } from '../datapath/proc-data.js';
import type { LocalDataPathApi as DataPathApi, PoolBuffer } from '../proc/data.js';
import { encodeHead, readAnswer, writeHead, type RequestHead } from './envelope.js';
import type { GatewayMetrics } from './metrics.js';
import { RouteTable, type Match } from './route-table.js';
import { errorStatus, FAILURE_STATUS, type FailureKind } from './errors.js';

/** The part of the node's data path the gateway uses (src/node/datapath/port.ts). */
export interface GatewayDataPath {
  local(realm: string, lookup: NameLookup, options?: { keep?: boolean }): DataPathApi | undefined;
  releaseLocal?(realm: string): void;
}

/** Every bound of the gateway, named; overflow is a clear refusal, never growth. */
export interface GatewayLimits {
  /** Requests between head and last answer byte at once; past it 503. */
  requestsInFlightMax: number;
  connectionsMax: number;
  /** A request body must arrive whole within this, or 408 and its pool buffer goes back. */
  bodyTimeoutMs: number;
  /** An answer must be handed to the kernel within this (a client that does not read), or the connection is cut and its buffer goes back. */
  writeTimeoutMs: number;
  /** Idle keep-alive connections close after this. */
  keepAliveTimeoutMs: number;
  /** What a 503 tells the client to wait, seconds. */
  retryAfterS: number;
}

export const DEFAULT_GATEWAY_LIMITS: GatewayLimits = { requestsInFlightMax: 4_096, connectionsMax: 10_000, bodyTimeoutMs: 10_000, writeTimeoutMs: 10_000, keepAliveTimeoutMs: 5_000, retryAfterS: 1 };

export interface GatewayOptions {
  node: string;
  port: number;
  /** Listen address; default all interfaces. */
  host?: string;
  datapath: GatewayDataPath | undefined;
  /** Name lookups of a realm's endpoint: that realm's names and what other realms export to it, nothing else. */
  lookup: (realm: string) => NameLookup;
  log: Logger;
  metrics: GatewayMetrics;
  limits?: Partial<GatewayLimits>;
}

/** One request's pool buffers: both go back to the pool when the response closes, however it ends. */
interface Held {
  body: PoolBuffer | undefined;
  answer: PoolBuffer | undefined;
  closed: boolean;
  /** The bound in force: the body's arrival, then the answer's write. */
  timer: ReturnType<typeof setTimeout> | undefined;
}

/**
 * HTTP/1.1 ingress of one node (Node's http: keep-alive, chunked bodies, pipelined requests answered
 * in order). A request matches a route of some realm (route-table.ts); its body enters that realm's
 * pool once, through the node's own endpoint of the realm; the gateway calls the route's target (the
 * first stage of a chain) with the buffer's descriptor; the answer, still in the pool, is written to
 * the socket from there and freed once the kernel has it. Every failure maps to a status (errors.ts)
 * and every buffer goes back when the response closes (`Held`).
 */
export class Gateway {
  readonly #o: GatewayOptions;
  readonly #limits: GatewayLimits;
  readonly #table = new RouteTable();
  /** Realms whose endpoint (and pool) this gateway holds open: they have routes and are active. */
  readonly #realms = new Set<string>();
  /** Realms that exist and are not being removed (the realms bucket): only their routes are served. */
  readonly #active = new Set<string>();
  #server: Server | undefined;
  #inFlight = 0;

  constructor(o: GatewayOptions) {
    this.#o = o;
    this.#limits = { ...DEFAULT_GATEWAY_LIMITS, ...o.limits };
  }

  /** Listens; resolves with the port (useful when configured 0). */
  async start(): Promise<number> {
    const l = this.#limits;
    const server = createServer({ keepAliveTimeout: l.keepAliveTimeoutMs, requestTimeout: 0, headersTimeout: l.bodyTimeoutMs }, (req, res) => this.#handle(req, res));
    server.maxConnections = l.connectionsMax;
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.#o.port, this.#o.host ?? '0.0.0.0', () => {
        server.off('error', reject);
        resolve();
      });
    });
    const addr = server.address();
    return typeof addr === 'object' && addr !== null ? addr.port : this.#o.port;
  }

  async close(): Promise<void> {
    const s = this.#server;
    this.#server = undefined;
    if (s === undefined) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
    for (const realm of this.#realms) this.#o.datapath?.releaseLocal?.(realm);
    this.#realms.clear();
  }

  putRoute(key: string, route: RouteRecord): void {
    this.#table.put(key, route);
    this.#syncRealms();
  }

  deleteRoute(key: string): void {
    if (this.#table.delete(key)) this.#syncRealms();
  }

  /** A realm appeared, or is being removed / gone: a removed realm's routes answer 404 and its pool here is let go. */
  setRealm(realm: string, active: boolean): void {
    if (active) this.#active.add(realm);
    else this.#active.delete(realm);
    this.#syncRealms();
  }

  routes(): RouteRecord[] {
    return this.#table.routes();
  }

  /** A realm with routes keeps its gateway endpoint (and pool) on this node, hosts here or not. */
  #syncRealms(): void {
    const want = new Set([...this.#table.realms()].filter((r) => this.#active.has(r)));
    for (const realm of want) {
      if (this.#realms.has(realm)) continue;
      this.#realms.add(realm);
      if (this.#o.datapath?.local(realm, this.#o.lookup(realm), { keep: true }) === undefined) this.#o.log.warn({ realm }, 'gateway: no data-path endpoint for the realm; its routes answer 503');
    }
    for (const realm of [...this.#realms]) {
      if (want.has(realm)) continue;
      this.#realms.delete(realm);
      this.#o.datapath?.releaseLocal?.(realm);
    }
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const t0 = performance.now();
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const method = req.method ?? 'GET';
    if (path === '/metrics' && method === 'GET') return void this.#serveMetrics(res);
    const host = req.headers.host?.replace(/:\d+$/, '').toLowerCase();
    const m = this.#table.match(method, host, path);
    if (m === undefined || !this.#active.has(m.route.realm)) return this.#fail(req, res, undefined, 'not-found', `no route for ${method} ${path}`, t0);
    const route = m.route;
    const api = this.#o.datapath?.local(route.realm, this.#o.lookup(route.realm), { keep: true });
    if (api === undefined) return this.#fail(req, res, route, 'unavailable', `node ${this.#o.node} has no data path for realm ${route.realm}`, t0);
    const cl = req.headers['content-length'];
    const length = cl === undefined ? undefined : Number(cl);
    if (length !== undefined && (!Number.isSafeInteger(length) || length < 0)) return this.#fail(req, res, route, 'bad-request', 'content-length is not a length', t0);
    if (length !== undefined && length > route.bodyBytesMax) return this.#fail(req, res, route, 'too-large', `the body of ${length} bytes is over this route's ${route.bodyBytesMax}`, t0);
    if (this.#inFlight >= this.#limits.requestsInFlightMax) return this.#fail(req, res, route, 'busy', `${this.#limits.requestsInFlightMax} requests are in flight on this gateway`, t0);
    this.#inFlight++;
    this.#o.metrics.inFlight.inc();
    const held: Held = { body: undefined, answer: undefined, closed: false, timer: undefined };
    res.once('close', () => {
      held.closed = true;
      clearTimeout(held.timer);
      held.body?.release();
      held.answer?.release();
      this.#inFlight--;
      this.#o.metrics.inFlight.dec();
    });
    let head: Uint8Array | undefined;
    try {
      head = route.envelope === 'http' ? encodeHead(requestHead(req, url, path, q, m)) : undefined;
    } catch (e) {
      return this.#fail(req, res, route, 'bad-request', (e as Error).message, t0);
    }
    const prefix = head === undefined ? 0 : 4 + head.length;
    // A request without a body (most GETs) ends as soon as its head is parsed: no bound to arm.
    if ((length ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined) {
      held.timer = setTimeout(() => this.#fail(req, res, route, 'body-timeout', `the body did not arrive within ${this.#limits.bodyTimeoutMs} ms`, t0), this.#limits.bodyTimeoutMs);
    }
    const ready = (buf: PoolBuffer): void => {
      clearTimeout(held.timer);
      if (head !== undefined) writeHead(buf.bytes, head);
      this.#call(api, route, buf, held, req, res, t0);
    };
    if (length !== undefined) this.#readSized(api, req, res, route, held, prefix, length, ready, t0);
    else this.#readChunked(api, req, res, route, held, prefix, ready, t0);
  }

  /** A known length: the pool buffer is taken first and the body copied into it as it arrives (the one copy). */
  #readSized(api: DataPathApi, req: IncomingMessage, res: ServerResponse, route: RouteRecord, held: Held, prefix: number, length: number, ready: (b: PoolBuffer) => void, t0: number): void {
    try {
      held.body = api.alloc(prefix + length);
    } catch (e) {
      return this.#failWith(req, res, route, e, t0);
    }
    const buf = held.body;
    let at = prefix;
    req.on('data', (chunk: Buffer) => {
      if (held.closed) return;
      if (at + chunk.length > buf.bytes.length) return this.#fail(req, res, route, 'bad-request', 'more body than content-length', t0);
      buf.bytes.set(chunk, at);
      at += chunk.length;
    });
    req.once('end', () => {
      if (held.closed || res.headersSent) return;
      if (at !== buf.bytes.length) return this.#fail(req, res, route, 'bad-request', 'less body than content-length', t0);
      ready(buf);
    });
  }

  /** Chunked (no length): chunks are held, bounded by the route's limit, then copied into the pool once. */
  #readChunked(api: DataPathApi, req: IncomingMessage, res: ServerResponse, route: RouteRecord, held: Held, prefix: number, ready: (b: PoolBuffer) => void, t0: number): void {
    const chunks: Buffer[] = [];
    let total = 0;
    req.on('data', (chunk: Buffer) => {
      if (held.closed || res.headersSent) return;
      total += chunk.length;
      if (total > route.bodyBytesMax) {
        chunks.length = 0;
        return this.#fail(req, res, route, 'too-large', `the chunked body passed this route's ${route.bodyBytesMax} bytes`, t0);
      }
      chunks.push(chunk);
    });
    req.once('end', () => {
      if (held.closed || res.headersSent) return;
      try {
        held.body = api.alloc(prefix + total);
      } catch (e) {
        return this.#failWith(req, res, route, e, t0);
      }
      let at = prefix;
      for (const c of chunks) {
        held.body.bytes.set(c, at);
        at += c.length;
      }
      ready(held.body);
    });
  }

  #call(api: DataPathApi, route: RouteRecord, buf: PoolBuffer, held: Held, req: IncomingMessage, res: ServerResponse, t0: number): void {
    const target = route.target[0]!;
    const labels = { realm: route.realm, proc: target };
    const c0 = performance.now();
    api.callRetained(target, buf, { timeoutMs: route.deadlineMs }).then(
      (answer) => {
        this.#o.metrics.procCalls.inc({ ...labels, outcome: 'ok' });
        this.#o.metrics.procLatency.observe(labels, (performance.now() - c0) / 1000);
        if (held.closed) return answer.release(); // the client left meanwhile
        held.answer = answer;
        this.#answer(route, held, req, res, t0);
      },
      (e: unknown) => {
        buf.release(); // refused before it was sent: still ours (idempotent once it was)
        this.#o.metrics.procCalls.inc({ ...labels, outcome: (e as { type?: string }).type ?? 'error' });
        if (!held.closed) this.#failWith(req, res, route, e, t0);
      },
    );
  }

  /** Writes the answer from the pool; its buffer goes back once the kernel has it (res 'close'), or when the write bound cuts a client that does not read. */
  #answer(route: RouteRecord, held: Held, req: IncomingMessage, res: ServerResponse, t0: number): void {
    const answer = held.answer!;
    let status = 200;
    let body = answer.bytes;
    let headers: Record<string, string> = {};
    if (route.envelope === 'http') {
      const a = readAnswer(answer.bytes);
      if (a instanceof Error) return this.#fail(req, res, route, 'proc-failed', a.message, t0);
      status = a.head.status;
      body = a.body;
      headers = a.head.headers ?? {};
    }
    for (const [k, v] of Object.entries(headers)) if (!HOP_BY_HOP.has(k.toLowerCase())) res.setHeader(k, v);
    if (!res.hasHeader('content-type')) res.setHeader('content-type', 'application/octet-stream');
    res.setHeader('content-length', body.length);
    res.statusCode = status;
    held.timer = setTimeout(() => {
      this.#o.metrics.errors.inc({ realm: route.realm, route: route.name, kind: 'slow-client' });
      res.destroy(); // 'close' follows once libuv has let go of the buffer: then it is freed
    }, this.#limits.writeTimeoutMs);
    res.once('finish', () => this.#done(route, status, t0));
    if (req.method === 'HEAD') res.end();
    else res.end(body);
  }

  #done(route: RouteRecord | undefined, status: number, t0: number): void {
    const realm = route?.realm ?? '';
    const name = route?.name ?? '';
    this.#o.metrics.requests.inc({ realm, route: name, code: String(status) });
    this.#o.metrics.latency.observe({ realm, route: name }, (performance.now() - t0) / 1000);
  }

  #failWith(req: IncomingMessage, res: ServerResponse, route: RouteRecord, e: unknown, t0: number): void {
    const { kind } = errorStatus(e);
    this.#fail(req, res, route, kind, e instanceof Error ? e.message : String(e), t0);
  }

  /** Answers an error (JSON `{ error, message }`); a refused body closes the connection rather than read it. */
  #fail(req: IncomingMessage, res: ServerResponse, route: RouteRecord | undefined, kind: FailureKind, message: string, t0: number): void {
    if (res.headersSent || res.destroyed) return;
    const status = FAILURE_STATUS[kind];
    this.#o.metrics.errors.inc({ realm: route?.realm ?? '', route: route?.name ?? '', kind });
    res.statusCode = status;
    res.setHeader('content-type', 'application/json');
    if (status === 503) res.setHeader('retry-after', String(this.#limits.retryAfterS));
    // A body not read (refused, or cut by a bound) ends the connection; a bodiless request keeps it.
    const hasBody = req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
    if (hasBody && !req.complete) res.setHeader('connection', 'close');
    res.once('finish', () => this.#done(route, status, t0));
    res.end(JSON.stringify({ error: kind, message }));
  }

  async #serveMetrics(res: ServerResponse): Promise<void> {
    try {
      const text = await this.#o.metrics.text();
      res.setHeader('content-type', this.#o.metrics.registry.contentType);
      res.end(text);
    } catch (e) {
      res.statusCode = 500;
      res.end(String(e));
    }
  }
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length', 'upgrade', 'te', 'trailer', 'proxy-connection']);

function requestHead(req: IncomingMessage, url: string, path: string, q: number, m: Match): RequestHead {
  const query: Record<string, string> = {};
  if (q >= 0) for (const [k, v] of new URLSearchParams(url.slice(q + 1))) query[k] = v;
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
  return { method: req.method ?? 'GET', url, path, query, params: m.params, headers };
}
