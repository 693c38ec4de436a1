import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { F_FLAGS, F_SRC, FRAME_BYTES } from '../../datapath/frames.js';
import { HUB_EP, rejectReason, SYSTEM_REALM } from '../../datapath/descriptor.js';
import { Hub } from '../../datapath/hub.js';
import { Pool } from '../../datapath/pool.js';
import { BpfDataPath, bpfStatus } from '../../native/bpf.js';
import { closeFd, mapFd, memfdCreate, nativeStatus, pidfdGetfd, unmap } from '../../native/index.js';
import { startNatsServer, type NatsServer } from '../../nats/server.js';
import { BenchError, percentile, round, type BenchContext, type Comparison, type Figures, type Goal, type Suite } from '../harness.js';
import { ENDPOINTS, POOL_A_BYTES, POOL_A_CLASSES, REALM_A, REALM_B, TRANSPORTS, type HostCommand, type Role, type Transport } from './datapath-protocol.js';

/**
 * `npm run bench -- datapath`: two procs in two host processes on one node exchange requests of 64 B,
 * 4 KiB, 64 KiB and 1 MiB, echoed back, over five transports measured in the same run: `bpf` (descriptors
 * redirected by the sk_msg program into per-realm shared memory), `userspace` (the same endpoints through
 * the hub), `tcp`, `http` (keep-alive) and `nats` (request/reply through a nats-server started here).
 * This process plays the node manager: it owns the memfd pools, loads the BPF object, registers sockets,
 * runs the hub. A forging host in realm B runs alongside the data-path phases; none of its descriptors may
 * be delivered. Until procs can use the data path (src/proc), the two procs are host processes holding an
 * Endpoint exactly as a proc host does (src/bench/datapath-host.ts).
 *
 * A sixth transport, `remote`, runs the same two hosts as two nodes over the node-to-node channel
 * (src/datapath/remote.ts), each with a pool of its own: what one copy across nodes costs.
 *
 * Figures: `<transport>_<size>_rtt_p50_us` / `_p99_us` (sequential round trips, one outstanding),
 * `<transport>_<size>_msgs_per_s` (requests answered per second with a window of requests outstanding),
 * `<transport>_cpu_us_per_msg` (CPU of client + server + the node manager/hub or nats-server, per request,
 * in the 64 B throughput phase — where per-message cost dominates).
 */

const HOST_SCRIPT = fileURLToPath(new URL('../datapath-host.js', import.meta.url));
const SIZES = [
  { key: '64', bytes: 64 },
  { key: '4k', bytes: 4 << 10 },
  { key: '64k', bytes: 64 << 10 },
  { key: '1m', bytes: 1 << 20 },
] as const;
type SizeKey = (typeof SIZES)[number]['key'];

const POOL_B_BYTES = 1 << 20;
const FORGE_PERIOD_MS = 2;
const HOST_READY_TIMEOUT_MS = 20_000;
const COMMAND_TIMEOUT_MS = 120_000;

/**
 * Latency is measured in interleaved rounds — every round takes a batch of each (transport, size) in turn —
 * so that load from elsewhere on this shared machine falls on all transports alike instead of on
 * whichever one happened to run while it lasted.
 */
interface Plan {
  /** Round trips per (transport, size) before anything is timed, so every transport is measured JIT-warm. */
  warmup: number;
  rounds: number;
  /** Round trips per (transport, size) per round. */
  batch: Record<SizeKey, number>;
  /** Requests outstanding in the throughput phase. */
  window: Record<SizeKey, number>;
  throughputMs: number;
}
const WINDOW = { '64': 16, '4k': 16, '64k': 8, '1m': 4 };
const PLAN_QUICK: Plan = { warmup: 60, rounds: 4, batch: { '64': 60, '4k': 60, '64k': 30, '1m': 8 }, window: WINDOW, throughputMs: 200 };
const PLAN_FULL: Plan = { warmup: 500, rounds: 30, batch: { '64': 100, '4k': 100, '64k': 50, '1m': 12 }, window: WINDOW, throughputMs: 1500 };

const comparisons: Comparison[] = [
  ...SIZES.flatMap((s) =>
    (['userspace', 'tcp', 'http', 'nats'] as const).map((b) => ({ figure: `bpf_${s.key}_rtt_p50_us`, baseline: `${b}_${s.key}_rtt_p50_us`, better: 'lower' as const, ratio: `bpf_vs_${b}_${s.key}_p50_ratio` })),
  ),
  ...SIZES.map((s) => ({ figure: `bpf_${s.key}_msgs_per_s`, baseline: `http_${s.key}_msgs_per_s`, better: 'higher' as const, ratio: `bpf_vs_http_${s.key}_msgs_ratio` })),
  { figure: 'bpf_cpu_us_per_msg', baseline: 'http_cpu_us_per_msg', better: 'lower', ratio: 'bpf_vs_http_cpu_ratio' },
  { figure: 'bpf_cpu_us_per_msg', baseline: 'nats_cpu_us_per_msg', better: 'lower', ratio: 'bpf_vs_nats_cpu_ratio' },
];
/** The goals. */
const goals: Goal[] = [
  { figure: 'bpf_vs_http_64_p50_ratio', op: '>=', target: 5 },
  { figure: 'bpf_vs_nats_64_p50_ratio', op: '>=', target: 5 },
  { figure: 'bpf_vs_http_1m_p50_ratio', op: '>=', target: 20 },
  { figure: 'cross_realm_delivered', op: '<=', target: 0 },
];

/** A host process and its IPC, one command at a time. */
class Host {
  #seq = 0;
  readonly #waiting = new Map<number, { resolve: (r: Record<string, unknown>) => void; reject: (e: Error) => void }>();
  readonly exited: Promise<void>;

  constructor(readonly role: Role, readonly cp: ChildProcess) {
    cp.on('message', (raw) => {
      const m = raw as Record<string, unknown>;
      const w = typeof m['seq'] === 'number' ? this.#waiting.get(m['seq']) : undefined;
      if (w === undefined) return;
      this.#waiting.delete(m['seq'] as number);
      if (m['ok'] === true) w.resolve(m);
      else w.reject(new BenchError(`${role} host: ${String(m['error'])}`));
    });
    this.exited = new Promise((r) => cp.once('exit', () => r()));
    void this.exited.then(() => this.#waiting.forEach((w) => w.reject(new BenchError(`${role} host exited`))));
  }

  /** The socketpair end the hub attaches. */
  get hubLink(): Socket {
    return this.cp.stdio[4] as Socket;
  }

  call(command: HostCommand): Promise<Record<string, unknown>> {
    const seq = ++this.#seq;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new BenchError(`${this.role} host: no answer to ${command.op} in ${COMMAND_TIMEOUT_MS} ms`)), COMMAND_TIMEOUT_MS);
      this.#waiting.set(seq, {
        resolve: (r) => (clearTimeout(timer), resolve(r)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
      this.cp.send({ ...command, seq });
    });
  }

  async cpuUs(): Promise<number> {
    return (await this.call({ op: 'cpu' }))['cpuUs'] as number;
  }
}

/** The node manager's side of BPF mode: the program, the sink, the hub socket counting what is diverted. */
class KernelPath {
  readonly diverted: Record<string, number> = {};
  private constructor(readonly dp: BpfDataPath, readonly sink: Server, readonly hubSock: Socket, readonly sinkSides: Socket[]) {
    hubSock.on('data', (chunk: Buffer) => {
      // Whole frames only (the hub socket receives nothing but redirected 32-byte descriptors).
      for (let at = 0; at + FRAME_BYTES <= chunk.length; at += FRAME_BYTES) {
        const key = `${rejectReason(chunk.readUInt32LE(at + F_FLAGS)) ?? 'copy'}:${chunk.readUInt32LE(at + F_SRC)}`;
        this.diverted[key] = (this.diverted[key] ?? 0) + 1;
      }
    });
  }

  static async start(): Promise<KernelPath> {
    const dp = BpfDataPath.load();
    const sinkSides: Socket[] = [];
    // Accepts and never reads (SPRIGHT's trick): whatever a registered socket writes is the verdict's.
    const sink = createServer((c) => {
      c.pause();
      sinkSides.push(c);
    });
    await new Promise<void>((r) => sink.listen(0, '127.0.0.1', () => r()));
    const hubSock = connect((sink.address() as { port: number }).port, '127.0.0.1');
    await new Promise<void>((r, j) => hubSock.once('connect', () => r()).once('error', j));
    dp.attachSocket(hubSock, SYSTEM_REALM, HUB_EP);
    return new KernelPath(dp, sink, hubSock, sinkSides);
  }

  get sinkPort(): number {
    return (this.sink.address() as { port: number }).port;
  }

  /** A host's socket, taken from its process with pidfd_getfd, registered, and our duplicate closed. */
  register(pid: number, fd: number, realm: number, endpoint: number): void {
    const dup = pidfdGetfd(pid, fd);
    try {
      this.dp.attachSocket(dup, realm, endpoint);
    } finally {
      closeFd(dup);
    }
  }

  close(): void {
    this.hubSock.destroy();
    for (const s of this.sinkSides) s.destroy();
    this.sink.close();
    this.dp.close();
  }
}

function startHost(role: Role, poolFd: number, poolBytes: number, kernel: KernelPath | undefined): Host {
  const env: NodeJS.ProcessEnv = { ...process.env, SIGMA_BENCH_ROLE: role, SIGMA_BENCH_POOL_BYTES: String(poolBytes) };
  delete env['NODE_EXTRA_CA_CERTS']; // ~60 ms per start, see DESIGN.md
  if (kernel !== undefined) env['SIGMA_BENCH_SINK_PORT'] = String(kernel.sinkPort);
  const cp = spawn(process.execPath, [HOST_SCRIPT], { stdio: ['ignore', 'ignore', 'inherit', poolFd, 'pipe', 'ipc'], env });
  const host = new Host(role, cp);
  const realm = role === 'forger' ? REALM_B.id : REALM_A.id;
  cp.on('message', (raw) => {
    const m = raw as { op?: string; fd?: number; pid?: number };
    if (m.op !== 'bpf-socket' || kernel === undefined) return;
    try {
      kernel.register(m.pid!, m.fd!, realm, ENDPOINTS[role].bpf);
      cp.send({ op: 'bpf-registered', ok: true });
    } catch (e) {
      cp.send({ op: 'bpf-registered', ok: false, reason: (e as Error).message });
    }
  });
  return host;
}

function ready(host: Host): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new BenchError(`${host.role} host not ready in ${HOST_READY_TIMEOUT_MS} ms`)), HOST_READY_TIMEOUT_MS);
    host.cp.on('message', (m) => {
      if ((m as { op?: string }).op === 'ready') {
        clearTimeout(timer);
        resolve();
      }
    });
    host.cp.once('exit', (code) => reject(new BenchError(`${host.role} host exited with ${code} before it was ready`)));
  });
}

/** A realm's pool on a memfd, formatted here (the node manager's job) and mapped by that realm's hosts. */
function makePool(bytes: number, classes?: typeof POOL_A_CLASSES): { fd: number; buffer: ArrayBuffer; pool: Pool } {
  const fd = memfdCreate(bytes, 'sigma-bench-pool');
  const buffer = mapFd(fd, bytes);
  const p = Pool.format(buffer, classes === undefined ? {} : { classes, largeBytes: 0 });
  if (p._tag === 'Left') throw p.left;
  return { fd, buffer, pool: p.right };
}

const CLK_TCK = 100;
/** CPU time of another process (nats-server) from /proc, in µs (10 ms resolution). */
function procCpuUs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) / CLK_TCK) * 1e6;
}

const selfCpuUs = (): number => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

interface Run {
  client: Host;
  server: Host;
  forger: Host;
  nats: NatsServer;
  kernel: KernelPath | undefined;
  plan: Plan;
}

async function prepare(run: Run, transports: readonly Transport[]): Promise<void> {
  const { client, server, forger, nats, plan } = run;
  for (const t of transports) {
    const served = await server.call({ op: 'serve', transport: t, url: nats.url });
    // (remote: `port` is the server node's channel listener; the client node dials it)
    await client.call({ op: 'prepare', transport: t, port: served['port'] as number | undefined, url: nats.url, window: Math.max(...Object.values(plan.window)) });
    if (t === 'bpf' || t === 'userspace' || t === 'remote') await forger.call({ op: 'forge', periodMs: FORGE_PERIOD_MS, mode: t, port: served['port'] as number | undefined });
    for (const s of SIZES) await client.call({ op: 'latency', transport: t, sizeBytes: s.bytes, count: 1, warmup: s.bytes >= 1 << 20 ? plan.warmup / 10 : plan.warmup });
  }
}

async function measureLatency(ctx: BenchContext, run: Run, transports: readonly Transport[], out: Figures): Promise<void> {
  const rtts = new Map<string, number[]>();
  const bar = ctx.progress('datapath round trips', run.plan.rounds);
  try {
    for (let r = 0; r < run.plan.rounds; r++) {
      for (const t of transports) {
        for (const s of SIZES) {
          const got = await run.client.call({ op: 'latency', transport: t, sizeBytes: s.bytes, count: run.plan.batch[s.key], warmup: 0 });
          const key = `${t}_${s.key}`;
          rtts.set(key, [...(rtts.get(key) ?? []), ...(got['rttsUs'] as number[])]);
        }
      }
      bar.tick();
    }
  } finally {
    bar.done();
  }
  for (const [key, xs] of rtts) {
    out[`${key}_rtt_p50_us`] = round(percentile(xs, 50), 1);
    out[`${key}_rtt_p99_us`] = round(percentile(xs, 99), 1);
  }
}

async function measureThroughput(ctx: BenchContext, run: Run, transports: readonly Transport[], out: Figures): Promise<void> {
  const { client, server, nats, plan } = run;
  const cpu = async (t: Transport): Promise<number> => (await client.cpuUs()) + (await server.cpuUs()) + selfCpuUs() + (t === 'nats' ? procCpuUs(nats.pid) : 0);
  const bar = ctx.progress('datapath throughput', transports.length * SIZES.length);
  try {
    for (const t of transports) {
      for (const s of SIZES) {
        const cpu0 = await cpu(t);
        const tp = await client.call({ op: 'throughput', transport: t, sizeBytes: s.bytes, window: plan.window[s.key], durationMs: plan.throughputMs });
        const cpuUs = (await cpu(t)) - cpu0;
        const completed = tp['completed'] as number;
        out[`${t}_${s.key}_msgs_per_s`] = Math.round((completed / (tp['wallMs'] as number)) * 1000);
        if (s.key === '64') out[`${t}_cpu_us_per_msg`] = round(cpuUs / completed, 2);
        bar.tick();
      }
    }
  } finally {
    bar.done();
  }
}

export const datapathSuite: Suite = {
  name: 'datapath',
  description: 'two procs in two host processes: bpf data path vs userspace hub, tcp, http keep-alive, nats request/reply',
  comparisons,
  goals,
  async run(ctx: BenchContext): Promise<Figures> {
    const native = nativeStatus();
    if (!native.available) throw new BenchError(`the datapath bench needs the native addon (memfd pools): ${native.reason}; run \`npm run build\``);
    const plan = ctx.quick ? PLAN_QUICK : PLAN_FULL;
    let kernel: KernelPath | undefined;
    let bpfReason: string | undefined = bpfStatus().reason;
    if (bpfReason === undefined) {
      try {
        kernel = await KernelPath.start();
      } catch (e) {
        bpfReason = (e as Error).message;
      }
    }
    if (kernel === undefined) ctx.log(`datapath: BPF unavailable (${bpfReason}); the bpf transport is skipped, mode "userspace"`);
    const a = makePool(POOL_A_BYTES, POOL_A_CLASSES);
    const b = makePool(POOL_B_BYTES);
    const poolA0 = a.pool.stats().bytesFree;
    const hub = new Hub();
    hub.attachPool(REALM_A.name, a.pool);
    hub.attachPool(REALM_B.name, b.pool);
    const hosts: Host[] = [];
    let nats: NatsServer | undefined;
    try {
      const client = startHost('client', a.fd, POOL_A_BYTES, kernel);
      const server = startHost('server', a.fd, POOL_A_BYTES, kernel);
      const forger = startHost('forger', b.fd, POOL_B_BYTES, kernel);
      hosts.push(client, server, forger);
      for (const h of hosts) {
        const realm = h.role === 'forger' ? REALM_B.name : REALM_A.name;
        const r = hub.attachSocket({ realm, endpoint: ENDPOINTS[h.role].userspace }, h.hubLink);
        if (r._tag === 'Left') throw r.left;
      }
      await Promise.all(hosts.map(ready));
      nats = await startNatsServer({ jetstream: false });
      const transports = TRANSPORTS.filter((t) => t !== 'bpf' || kernel !== undefined);
      const out: Figures = { mode: kernel !== undefined ? 'bpf' : 'userspace' };
      const run: Run = { client, server, forger, nats, kernel, plan };
      await prepare(run, transports);
      await measureLatency(ctx, run, transports, out);
      await measureThroughput(ctx, run, transports, out);
      let attempts = 0;
      for (const t of ['bpf', 'userspace', 'remote'] as const) {
        if (!transports.includes(t)) continue;
        const n = (await forger.call({ op: 'forge-stop', mode: t }))['attempts'] as number;
        ctx.log(`  ${t}: ${n} forged descriptors sent from realm B`);
        attempts += n;
      }
      if (kernel === undefined) for (const k of TRANSPORT_KEYS('bpf')) out[k] = null;
      const stats = await server.call({ op: 'stats' });
      const echo = stats['echo'] as Record<string, { forgedDelivered: number }>;
      out['cross_realm_delivered'] = Object.values(echo).reduce((n, e) => n + e.forgedDelivered, 0);
      const dropped = hub.stats().dropped;
      const kernelRejects = Object.entries(kernel?.diverted ?? {}).filter(([k]) => k.endsWith(`:${ENDPOINTS.forger.bpf}`)).reduce((n, [, v]) => n + v, 0);
      out['cross_realm_attempts'] = attempts;
      // Counted where they were stopped: the kernel's diversions to the hub (BPF), the hub's drops (userspace),
      // the server node's refusals (remote).
      out['cross_realm_rejected'] = dropped['cross-realm'] + dropped['spoofed-src'] + kernelRejects + (stats['remoteCrossRealmRefused'] as number);
      if (kernel === undefined) out['bpf_unavailable_reason'] = bpfReason ?? 'unknown';
      ctx.log(`  hub drops ${JSON.stringify(dropped)}; kernel diversions ${JSON.stringify(kernel?.diverted ?? {})}`);
      for (const h of hosts) await h.call({ op: 'exit' }).catch(() => undefined);
      await Promise.all(hosts.map((h) => h.exited));
      // Every buffer sent was answered and released: realm A's pool is back where it started.
      out['pool_bytes_leaked'] = poolA0 - a.pool.stats().bytesFree;
      return out;
    } finally {
      for (const h of hosts) h.cp.kill();
      hub.close();
      await nats?.stop();
      kernel?.close();
      for (const p of [a, b]) {
        unmap(p.buffer);
        closeFd(p.fd);
      }
    }
  },
};

const TRANSPORT_KEYS = (t: Transport): string[] => [...SIZES.flatMap((s) => [`${t}_${s.key}_rtt_p50_us`, `${t}_${s.key}_rtt_p99_us`, `${t}_${s.key}_msgs_per_s`]), `${t}_cpu_us_per_msg`];
