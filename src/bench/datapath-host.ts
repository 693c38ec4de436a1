/**
 * A host process of the `datapath` benchmark: what a proc host holds for one proc, and nothing more —
 * its realm's pool mapped from the memfd the node manager handed it (fd 3), an Endpoint on a socketpair to
 * the node manager's hub (fd 4, userspace mode) and, in BPF mode, an Endpoint on a TCP loopback socket to
 * the never-reading sink, registered by the node manager in the SOCKHASH (it takes the socket with
 * pidfd_getfd). The same src/datapath and src/native code a proc host runs. Commands come over IPC from
 * the suite (src/bench/suites/datapath.ts), which plays the node manager.
 *
 * Roles: `client` (sends requests, measures), `server` (echoes), `forger` (realm B: writes descriptors
 * naming realm A's endpoints and offsets, which must all be refused).
 */
import { connect, Socket } from 'node:net';
import { Endpoint } from '../datapath/endpoint.js';
import { encodeFrame, FRAME_BYTES, SocketLink } from '../datapath/frames.js';
import { F_COPY } from '../datapath/descriptor.js';
import { Pool } from '../datapath/pool.js';
import { mapFd, socketFd } from '../native/index.js';
import { realTimers } from '../ports/index.js';
import { DataPathClient, FORGED_BIT, HttpClient, NatsClient, serveDataPath, serveHttp, serveNats, serveTcp, TcpClient, type EchoStats, type WireClient } from './suites/datapath-wire.js';
import { startRemoteNode, type RemoteNode } from './suites/datapath-remote-node.js';
import { ENDPOINTS, REALM_B, type ForgeMode, type HostCommand, type Role, type Transport } from './suites/datapath-protocol.js';

const role = process.env['SIGMA_BENCH_ROLE'] as Role;
const poolBytes = Number(process.env['SIGMA_BENCH_POOL_BYTES']);
const sinkPort = process.env['SIGMA_BENCH_SINK_PORT'] === undefined ? undefined : Number(process.env['SIGMA_BENCH_SINK_PORT']);
const ids = ENDPOINTS[role];

const attached = Pool.attach(mapFd(3, poolBytes));
if (attached._tag === 'Left') throw attached.left;
const pool = attached.right;
const hubSocket = new Socket({ fd: 4, readable: true, writable: true });

const send = (m: object): void => void process.send!(m);
const waitFor = (op: string): Promise<Record<string, unknown>> =>
  new Promise((resolve) => {
    const on = (m: Record<string, unknown>): void => {
      if (m['op'] !== op) return;
      process.off('message', on);
      resolve(m);
    };
    process.on('message', on);
  });

/** BPF mode: a TCP socket to the sink, handed to the node manager to register before first use. */
async function bpfSocket(): Promise<Socket | undefined> {
  if (sinkPort === undefined) return undefined;
  const sock = connect(sinkPort, '127.0.0.1');
  await new Promise<void>((r, j) => sock.once('connect', () => r()).once('error', j));
  const registered = waitFor('bpf-registered');
  send({ op: 'bpf-socket', fd: socketFd(sock), pid: process.pid });
  const r = await registered;
  if (r['ok'] !== true) throw new Error(`node manager could not register the BPF socket: ${String(r['reason'])}`);
  return sock;
}

const bpfSock = await bpfSocket();
const endpoints: Partial<Record<'bpf' | 'userspace', Endpoint>> = {};
if (role !== 'forger') {
  endpoints.userspace = new Endpoint({ id: ids.userspace, pool, link: new SocketLink(hubSocket), timers: realTimers });
  if (bpfSock !== undefined) endpoints.bpf = new Endpoint({ id: ids.bpf, pool, link: new SocketLink(bpfSock), timers: realTimers });
}

const clients = new Map<Transport, WireClient>();
const closers: Array<() => Promise<void>> = [];
const echoStats: Partial<Record<'bpf' | 'userspace' | 'remote', EchoStats>> = {};
const forging: Record<ForgeMode, { timer: NodeJS.Timeout | undefined; attempts: number }> = {
  bpf: { timer: undefined, attempts: 0 },
  userspace: { timer: undefined, attempts: 0 },
  remote: { timer: undefined, attempts: 0 },
};
let remoteServer: RemoteNode | undefined;

function endpoint(t: 'bpf' | 'userspace'): Endpoint {
  const ep = endpoints[t];
  if (ep === undefined) throw new Error(`no ${t} endpoint in this host`);
  return ep;
}

/** Connects to the server host's node for the `remote` transport (this node dials: its id is smaller). */
async function remoteClient(port: number): Promise<WireClient> {
  const node = await startRemoteNode('bench-client', 'bench-server', ENDPOINTS.client.remote);
  closers.push(() => node.close());
  node.channel.addPeer('bench-server', { host: '127.0.0.1', port });
  if (!(await node.channel.whenConnected('bench-server', 10_000))) throw new Error('the remote channel did not connect');
  return new DataPathClient(node.endpoint, ENDPOINTS.server.remote);
}

async function prepareClient(t: Transport, port: number, url: string, window: number): Promise<void> {
  if (t === 'remote') clients.set(t, await remoteClient(port));
  else if (t === 'bpf' || t === 'userspace') clients.set(t, new DataPathClient(endpoint(t), ENDPOINTS.server[t]));
  else if (t === 'tcp') clients.set(t, await TcpClient.connect(port));
  else if (t === 'http') clients.set(t, new HttpClient(port, window));
  else clients.set(t, await NatsClient.connect(url));
}

async function serve(t: Transport, url: string): Promise<{ port?: number }> {
  if (t === 'bpf' || t === 'userspace') {
    echoStats[t] = serveDataPath(endpoint(t), ENDPOINTS.client[t]);
    return {};
  }
  if (t === 'remote') {
    const node = await startRemoteNode('bench-server', 'bench-client', ENDPOINTS.server.remote);
    remoteServer = node;
    closers.push(() => node.close());
    echoStats.remote = serveDataPath(node.endpoint, ENDPOINTS.client.remote);
    return { port: node.channel.port };
  }
  if (t === 'nats') {
    const s = await serveNats(url);
    closers.push(() => s.close());
    return {};
  }
  const s = t === 'tcp' ? await serveTcp() : await serveHttp();
  closers.push(() => s.close());
  return { port: s.port };
}

function client(t: Transport): WireClient {
  const c = clients.get(t);
  if (c === undefined) throw new Error(`transport ${t} not prepared`);
  return c;
}

/** Sequential round trips: one outstanding request, each timed on its own. */
async function latency(t: Transport, sizeBytes: number, count: number, warmup: number): Promise<number[]> {
  const c = client(t);
  const rtts: number[] = [];
  for (let i = 0; i < warmup + count; i++) {
    const t0 = performance.now();
    await c.roundTrip(sizeBytes, i);
    if (i >= warmup) rtts.push((performance.now() - t0) * 1000);
  }
  return rtts;
}

/** `window` requests outstanding for `durationMs`: completed requests and the CPU this process spent. */
async function throughput(t: Transport, sizeBytes: number, window: number, durationMs: number): Promise<{ completed: number; wallMs: number }> {
  const c = client(t);
  let completed = 0;
  const t0 = performance.now();
  const deadline = t0 + durationMs;
  await Promise.all(
    Array.from({ length: window }, async (_, lane) => {
      for (let i = lane; performance.now() < deadline; i += window) {
        await c.roundTrip(sizeBytes, i);
        completed++;
      }
    }),
  );
  return { completed, wallMs: performance.now() - t0 };
}

/** Forged descriptors towards realm A's server, from realm B: its own id, a spoofed id, kernel flags. */
function forge(periodMs: number, mode: 'bpf' | 'userspace'): void {
  const link = mode === 'bpf' ? bpfSock : hubSocket;
  if (link === undefined) throw new Error('no BPF socket in this host');
  const state = forging[mode];
  clearInterval(state.timer);
  state.timer = setInterval(() => burst(), periodMs);
  const burst = (): void => {
    const frames = Buffer.alloc(4 * FRAME_BYTES);
    const offset = (): number => Math.floor((Math.random() * poolBytes) / 256) * 256;
    const gen = (): number => 1 + Math.floor(Math.random() * 1000);
    const base = { dstEp: ENDPOINTS.server[mode], length: 64, requestId: FORGED_BIT | BigInt(state.attempts) };
    encodeFrame({ ...base, srcEp: ids[mode], offset: offset(), generation: gen(), flags: 0 }, frames, 0);
    encodeFrame({ ...base, srcEp: ENDPOINTS.client[mode], offset: offset(), generation: gen(), flags: 0 }, frames, FRAME_BYTES);
    encodeFrame({ ...base, srcEp: 0, offset: offset(), generation: gen(), flags: 0 }, frames, 2 * FRAME_BYTES);
    encodeFrame({ ...base, srcEp: ids[mode], offset: offset(), generation: gen(), flags: F_COPY }, frames, 3 * FRAME_BYTES);
    if (link.writableLength < 1 << 16) {
      link.write(frames);
      state.attempts += 4;
    }
  };
}

/**
 * Realm B's proc on a node of its own sends to realm A's server endpoint through its node manager, which
 * (honestly) says realm B: the server's node must refuse every one of them.
 */
async function forgeRemote(periodMs: number, port: number): Promise<void> {
  const node = await startRemoteNode('bench-forger', 'bench-server', ENDPOINTS.forger.remote, REALM_B.name);
  closers.push(() => node.close());
  node.channel.addPeer('bench-server', { host: '127.0.0.1', port });
  if (!(await node.channel.whenConnected('bench-server', 10_000))) throw new Error('the forger node did not connect');
  const ep = node.endpoint;
  const state = forging.remote;
  state.timer = setInterval(() => {
    const a = ep.alloc(64);
    if (a._tag === 'Left') return;
    ep.pool.bytes(a.right.offset, 64).fill(0xee);
    const r = ep.trySendBuffer(ENDPOINTS.server.remote, a.right, 64, FORGED_BIT | BigInt(state.attempts));
    if (r._tag === 'Left') ep.pool.free(ep.id, a.right.offset, a.right.generation);
    else state.attempts++;
  }, periodMs);
}

async function handle(m: HostCommand): Promise<object> {
  switch (m.op) {
    case 'prepare':
      await prepareClient(m.transport, m.port ?? 0, m.url ?? '', m.window);
      return {};
    case 'serve':
      return serve(m.transport, m.url ?? '');
    case 'latency':
      return { rttsUs: await latency(m.transport, m.sizeBytes, m.count, m.warmup) };
    case 'throughput':
      return throughput(m.transport, m.sizeBytes, m.window, m.durationMs);
    case 'cpu': {
      const u = process.cpuUsage();
      return { cpuUs: u.user + u.system };
    }
    case 'forge':
      if (m.mode === 'remote') await forgeRemote(m.periodMs, m.port ?? 0);
      else forge(m.periodMs, m.mode);
      return {};
    case 'forge-stop':
      clearInterval(forging[m.mode].timer);
      return { attempts: forging[m.mode].attempts };
    case 'stats': {
      const ep = Object.fromEntries(Object.entries(endpoints).map(([k, e]) => [k, e.stats()]));
      return { echo: echoStats, endpoints: ep, remoteCrossRealmRefused: remoteServer?.channel.stats().refusedIn['cross-realm'] ?? 0 };
    }
    case 'exit':
      for (const c of clients.values()) await c.close();
      for (const close of closers) await close();
      for (const e of Object.values(endpoints)) e.close();
      setImmediate(() => process.exit(0));
      return {};
  }
}

process.on('message', (raw) => {
  const m = raw as HostCommand & { seq?: number };
  if (m.seq === undefined) return;
  handle(m).then(
    (r) => send({ seq: m.seq, ok: true, ...r }),
    (e: unknown) => send({ seq: m.seq, ok: false, error: e instanceof Error ? `${e.name}: ${e.message}` : String(e) }),
  );
});
process.on('disconnect', () => process.exit(0)); // the suite (node manager) went away: so do we
send({ op: 'ready', role });
