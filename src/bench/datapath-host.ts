/**
 * A host process of the `datapath` benchmark for the transports that are not procs: the plain baselines
 * a Node user would write between two processes (`tcp`, `http`, `nats`) and `remote`, where this process
 * acts as a node of its own over the node-to-node channel. (The `bpf` and `userspace` transports are
 * real procs on a real node: src/bench/suites/datapath-procs.ts.) Commands come over IPC from the suite
 * (src/bench/suites/datapath.ts).
 *
 * Roles (datapath-protocol.ts): a client (sends requests, measures) and a server (echoes) per pair of
 * hosts — `client`/`server` for tcp, http and nats, `spin-*` for tcpspin, `remote-*` for remote — and
 * `forger` (realm B: a node of its own sending to realm A's server node, which must refuse every one).
 * A spinning host (SPIN_WINDOW_ENV set) busy-polls after its socket traffic and pins itself to its home
 * CPU (SPIN_HOME_ENV) with the same code and policy as a proc host (src/host/datapath/attach.ts).
 */
import { pino } from 'pino';
import { BusyPoll } from '../datapath/busy-poll.js';
import { homePin, realBusyPollPorts } from '../datapath/busy-poll-real.js';
import { DataPathClient, FORGED_BIT, HttpClient, NatsClient, serveDataPath, serveHttp, serveNats, serveTcp, TcpClient, type EchoStats, type WireClient } from './suites/datapath-wire.js';
import { startRemoteNode, type RemoteNode } from './suites/datapath-remote-node.js';
import { ENDPOINTS, REALM_B, SPIN_HOME_ENV, SPIN_WINDOW_ENV, type HostCommand, type Role, type Transport } from './suites/datapath-protocol.js';

const role = process.env['SIGMA_BENCH_ROLE'] as Role;
const send = (m: object): void => void process.send!(m);

/** The busy poll of a spinning host (tcpspin), with the proc hosts' ports: sched_yield per turn, home pinning. */
function spinPoll(): BusyPoll | undefined {
  const windowUs = Number(process.env[SPIN_WINDOW_ENV] ?? 0);
  if (!(windowUs > 0)) return undefined;
  const homeText = process.env[SPIN_HOME_ENV];
  const home = homeText === undefined || homeText === '' ? undefined : Number(homeText);
  return new BusyPoll(windowUs, { ...realBusyPollPorts, ...homePin(home, pino({ level: 'warn', name: role }, pino.destination(2))) });
}
const poll = spinPoll();

const clients = new Map<Transport, WireClient>();
const closers: Array<() => Promise<void>> = [];
const echoStats: { remote?: EchoStats } = {};
const forging: { timer: NodeJS.Timeout | undefined; attempts: number } = { timer: undefined, attempts: 0 };
let remoteServer: RemoteNode | undefined;

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
  else if (t === 'bpf' || t === 'userspace') throw new Error(`${t} runs between procs, not host processes`);
  else if (t === 'tcp') clients.set(t, await TcpClient.connect(port));
  else if (t === 'tcpspin') {
    if (poll === undefined) throw new Error(`tcpspin needs a spinning host; ${role} does not spin`);
    clients.set(t, await TcpClient.connect(port, poll));
  }
  else if (t === 'http') clients.set(t, new HttpClient(port, window));
  else clients.set(t, await NatsClient.connect(url));
}

async function serve(t: Transport, url: string): Promise<{ port?: number }> {
  if (t === 'bpf' || t === 'userspace') throw new Error(`${t} runs between procs, not host processes`);
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
  if (t === 'tcpspin' && poll === undefined) throw new Error(`tcpspin needs a spinning host; ${role} does not spin`);
  const s = t === 'tcp' ? await serveTcp() : t === 'tcpspin' ? await serveTcp(poll) : await serveHttp();
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
  const state = forging;
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
      return { cpuUs: u.user + u.system, pid: process.pid };
    }
    case 'forge':
      await forgeRemote(m.periodMs, m.port ?? 0);
      return {};
    case 'forge-stop':
      clearInterval(forging.timer);
      return { attempts: forging.attempts };
    case 'stats':
      return {
        echo: echoStats,
        remoteCrossRealmRefused: remoteServer?.channel.stats().refusedIn['cross-realm'] ?? 0,
        // What the receiving endpoint itself refused (owner, generation, range): the channel must have stopped every forgery first.
        remoteReceiverRejects: remoteServer === undefined ? 0 : Object.values(remoteServer.endpoint.stats().rejected).reduce((a, b) => a + b, 0),
        poll: poll?.stats(),
      };
    case 'exit':
      poll?.stop();
      for (const c of clients.values()) await c.close();
      for (const close of closers) await close();
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
