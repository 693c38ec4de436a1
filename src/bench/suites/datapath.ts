import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { bpfStatus } from '../../native/bpf.js';
import { nativeStatus } from '../../native/index.js';
import { startNatsServer, type NatsServer } from '../../nats/server.js';
import { BenchError, percentile, round, type BenchContext, type Comparison, type Figures, type Goal, type Suite } from '../harness.js';
import { pidCpuUs, ProcPath, type ProcMode } from './datapath-procs.js';
import { PROC_TRANSPORTS, TRANSPORTS, type HostCommand, type Role, type Transport } from './datapath-protocol.js';

/**
 * `npm run bench -- datapath`: two procs in two host processes on one node exchange requests of 64 B,
 * 4 KiB, 64 KiB and 1 MiB, echoed back, over five transports measured in the same run: `bpf` (descriptors
 * redirected by the sk_msg program into per-realm shared memory), `userspace` (the same endpoints through
 * the hub), `tcp`, `http` (keep-alive) and `nats` (request/reply through a nats-server started here).
 * `bpf` and `userspace` are real procs on a real node (src/bench/suites/datapath-procs.ts): a one-node
 * cluster per mode, an echo service proc and a client proc each in a host process of its own, talking
 * through ctx.callWith, and a forging proc in realm B writing raw descriptors to realm A's server endpoint
 * and offsets; none of them may be delivered. `tcp`, `http` and `nats` run between two plain child
 * processes (src/bench/datapath-host.ts): what a Node user would write.
 *
 * A sixth transport, `remote`, runs the two plain hosts as two nodes over the node-to-node channel
 * (src/datapath/remote.ts), each with a pool of its own and an Endpoint: what one copy across nodes costs
 * (procs across nodes take the same channel; test/datapath-cross-*.test.ts).
 *
 * Figures: `<transport>_<size>_rtt_p50_us` / `_p99_us` (sequential round trips, one outstanding),
 * `<transport>_<size>_msgs_per_s` (requests answered per second with a window of requests outstanding),
 * `<transport>_cpu_us_per_msg` (CPU of client + server + the node process (procs) or nats-server, per
 * request, in the 64 B throughput phase — where per-message cost dominates).
 */

const HOST_SCRIPT = fileURLToPath(new URL('../datapath-host.js', import.meta.url));
const SIZES = [
  { key: '64', bytes: 64 },
  { key: '4k', bytes: 4 << 10 },
  { key: '64k', bytes: 64 << 10 },
  { key: '1m', bytes: 1 << 20 },
] as const;
type SizeKey = (typeof SIZES)[number]['key'];

const FORGE_PERIOD_MS = 2;
const HOST_READY_TIMEOUT_MS = 20_000;
const COMMAND_TIMEOUT_MS = 120_000;

/**
 * Latency is measured in interleaved rounds — every round takes a batch of each (transport, size) in turn —
 * so that load from elsewhere on this shared machine falls on all transports alike instead of on
 * whichever one happened to run while it lasted.
 */
interface Plan {
  /** Round trips per (transport, size) before anything is timed, so every transport is measured JIT-warm (the proc path runs through more functions than a raw socket: a few hundred round trips leave it half optimised). */
  warmup: number;
  rounds: number;
  /** Round trips per (transport, size) per round. */
  batch: Record<SizeKey, number>;
  /**
   * Unmeasured round trips at the start of every batch, in every transport: the first after the gap
   * between batches wakes sleeping processes on cold caches (measured: 356-480 µs for the first bpf round
   * trip of a batch, ~30 µs from the fourth on), and with 12 round trips a batch at 1 MiB those would be
   * a sixth of the samples. The figures are of sequential round trips on a warm path.
   */
  batchWarmup: number;
  /** Requests outstanding in the throughput phase. */
  window: Record<SizeKey, number>;
  throughputMs: number;
}
const WINDOW = { '64': 16, '4k': 16, '64k': 8, '1m': 4 };
const PLAN_QUICK: Plan = { warmup: 1000, rounds: 4, batch: { '64': 60, '4k': 60, '64k': 30, '1m': 8 }, batchWarmup: 2, window: WINDOW, throughputMs: 200 };
const PLAN_FULL: Plan = { warmup: 3000, rounds: 30, batch: { '64': 100, '4k': 100, '64k': 50, '1m': 12 }, batchWarmup: 2, window: WINDOW, throughputMs: 1500 };

const comparisons: Comparison[] = [
  ...SIZES.flatMap((s) =>
    (['bpfevent', 'userspace', 'tcp', 'http', 'nats'] as const).map((b) => ({ figure: `bpf_${s.key}_rtt_p50_us`, baseline: `${b}_${s.key}_rtt_p50_us`, better: 'lower' as const, ratio: `bpf_vs_${b}_${s.key}_p50_ratio` })),
  ),
  ...SIZES.map((s) => ({ figure: `bpf_${s.key}_msgs_per_s`, baseline: `http_${s.key}_msgs_per_s`, better: 'higher' as const, ratio: `bpf_vs_http_${s.key}_msgs_ratio` })),
  { figure: 'bpf_cpu_us_per_msg', baseline: 'bpfevent_cpu_us_per_msg', better: 'lower', ratio: 'bpf_vs_bpfevent_cpu_ratio' },
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

function startHost(role: Role): Host {
  const env: NodeJS.ProcessEnv = { ...process.env, SIGMA_BENCH_ROLE: role };
  delete env['NODE_EXTRA_CA_CERTS']; // ~60 ms per start, see DESIGN.md
  const cp = spawn(process.execPath, [HOST_SCRIPT], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'], env });
  return new Host(role, cp);
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

interface Run {
  client: Host;
  server: Host;
  forger: Host;
  nats: NatsServer;
  procs: Partial<Record<ProcMode, ProcPath>>;
  plan: Plan;
}

type ProcTransport = ProcMode | 'bpfevent';
const isProc = (t: Transport): t is ProcTransport => t === 'bpfevent' || (PROC_TRANSPORTS as readonly string[]).includes(t);

/** Runs `fn` on the transport's node; `bpfevent` is the bpf node with busy polling off in both procs' hosts meanwhile. */
async function onProcs<T>(run: Run, t: ProcTransport, fn: (p: ProcPath) => Promise<T>): Promise<T> {
  const p = procPath(run, t === 'bpfevent' ? 'bpf' : t);
  if (t !== 'bpfevent') return fn(p);
  const before = await p.busyPoll(0);
  try {
    return await fn(p);
  } finally {
    await p.busyPoll(before);
  }
}

function procPath(run: Run, t: ProcMode): ProcPath {
  const p = run.procs[t];
  if (p === undefined) throw new BenchError(`no ${t} node in this run`);
  return p;
}

async function latency(run: Run, t: Transport, sizeBytes: number, count: number, warmup: number): Promise<number[]> {
  if (isProc(t)) return onProcs(run, t, (p) => p.latency(sizeBytes, count, warmup));
  return (await run.client.call({ op: 'latency', transport: t, sizeBytes, count, warmup }))['rttsUs'] as number[];
}

async function prepare(run: Run, transports: readonly Transport[]): Promise<void> {
  const { client, server, forger, nats, plan } = run;
  for (const t of transports) {
    if (t === 'bpfevent') continue; // the bpf node's procs (warmed up, and forged at, as `bpf`)
    if (t === 'bpf' || t === 'userspace') await procPath(run, t).forge(FORGE_PERIOD_MS);
    else {
      const served = await server.call({ op: 'serve', transport: t, url: nats.url });
      // (remote: `port` is the server node's channel listener; the client node dials it)
      await client.call({ op: 'prepare', transport: t, port: served['port'] as number | undefined, url: nats.url, window: Math.max(...Object.values(plan.window)) });
      if (t === 'remote') await forger.call({ op: 'forge', periodMs: FORGE_PERIOD_MS, port: served['port'] as number | undefined });
    }
    for (const s of SIZES) await latency(run, t, s.bytes, 1, s.bytes >= 1 << 20 ? plan.warmup / 10 : plan.warmup);
  }
}

async function measureLatency(ctx: BenchContext, run: Run, transports: readonly Transport[], out: Figures): Promise<void> {
  const rtts = new Map<string, number[]>();
  const bar = ctx.progress('datapath round trips', run.plan.rounds);
  try {
    for (let r = 0; r < run.plan.rounds; r++) {
      for (const t of transports) {
        for (const s of SIZES) {
          const got = await latency(run, t, s.bytes, run.plan.batch[s.key], run.plan.batchWarmup);
          const key = `${t}_${s.key}`;
          rtts.set(key, [...(rtts.get(key) ?? []), ...got]);
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

/** Procs: CPU of client host + server host + node process; host pairs: client + server (+ nats-server). */
async function throughput(run: Run, t: Transport, sizeBytes: number, window: number): Promise<{ completed: number; wallMs: number; cpuUs: number }> {
  const { client, server, nats, plan } = run;
  if (isProc(t)) return onProcs(run, t, (p) => p.throughput(sizeBytes, window, plan.throughputMs));
  const cpu = async (): Promise<number> => (await client.cpuUs()) + (await server.cpuUs()) + (t === 'nats' ? pidCpuUs(nats.pid) : 0);
  const cpu0 = await cpu();
  const tp = await client.call({ op: 'throughput', transport: t, sizeBytes, window, durationMs: plan.throughputMs });
  return { completed: tp['completed'] as number, wallMs: tp['wallMs'] as number, cpuUs: (await cpu()) - cpu0 };
}

async function measureThroughput(ctx: BenchContext, run: Run, transports: readonly Transport[], out: Figures): Promise<void> {
  const bar = ctx.progress('datapath throughput', transports.length * SIZES.length);
  try {
    for (const t of transports) {
      for (const s of SIZES) {
        const tp = await throughput(run, t, s.bytes, run.plan.window[s.key]);
        out[`${t}_${s.key}_msgs_per_s`] = Math.round((tp.completed / tp.wallMs) * 1000);
        if (s.key === '64') out[`${t}_cpu_us_per_msg`] = round(tp.cpuUs / tp.completed, 2);
        bar.tick();
      }
    }
  } finally {
    bar.done();
  }
}

/** The BPF node, or why there is none (not root, no addon, the program does not load). */
async function startBpf(): Promise<{ path?: ProcPath; reason?: string }> {
  const reason = bpfStatus().reason;
  if (reason !== undefined) return { reason };
  try {
    return { path: await ProcPath.start('bpf') };
  } catch (e) {
    return { reason: (e as Error).message };
  }
}

export const datapathSuite: Suite = {
  name: 'datapath',
  description: 'two real procs in two host processes on one node: bpf data path vs userspace hub; tcp, http keep-alive, nats request/reply between plain processes',
  comparisons,
  goals,
  async run(ctx: BenchContext): Promise<Figures> {
    const native = nativeStatus();
    if (!native.available) throw new BenchError(`the datapath bench needs the native addon (memfd pools): ${native.reason}; run \`npm run build\``);
    const plan = ctx.quick ? PLAN_QUICK : PLAN_FULL;
    process.env['SIGMA_LOG'] ??= 'error'; // the forger's refusals are logged as warnings, thousands of them
    const hosts: Host[] = [];
    const procs: Partial<Record<ProcMode, ProcPath>> = {};
    let nats: NatsServer | undefined;
    try {
      const bpf = await startBpf();
      if (bpf.path !== undefined) procs.bpf = bpf.path;
      else ctx.log(`datapath: BPF unavailable (${bpf.reason}); the bpf transport is skipped, mode "userspace"`);
      procs.userspace = await ProcPath.start('userspace');
      const client = startHost('client');
      const server = startHost('server');
      const forger = startHost('forger');
      hosts.push(client, server, forger);
      await Promise.all(hosts.map(ready));
      nats = await startNatsServer({ jetstream: false });
      const transports = TRANSPORTS.filter((t) => (t !== 'bpf' && t !== 'bpfevent') || procs.bpf !== undefined);
      const out: Figures = { mode: procs.bpf !== undefined ? 'bpf' : 'userspace' };
      const run: Run = { client, server, forger, nats, procs, plan };
      const violations0 = new Map<ProcMode, number>();
      for (const [m, p] of Object.entries(procs) as Array<[ProcMode, ProcPath]>) violations0.set(m, sumValues((await p.status()).violations));
      await prepare(run, transports);
      await measureLatency(ctx, run, transports, out);
      await measureThroughput(ctx, run, transports, out);

      let attempts = 0;
      let rejected = 0;
      let delivered = 0;
      let leaked = 0;
      for (const [m, p] of Object.entries(procs) as Array<[ProcMode, ProcPath]>) {
        const n = await p.forgeStop();
        ctx.log(`  ${m}: ${n} forged descriptors sent from realm B`);
        attempts += n;
        const st = await p.status();
        // Counted where they were stopped: the kernel's diversions to the hub (BPF) or the hub itself.
        rejected += sumValues(st.violations) - violations0.get(m)!;
        delivered += (await p.serverStats()).forgedDelivered;
        leaked += await p.poolBytesLeaked();
        ctx.log(`  ${m}: refusals ${JSON.stringify(st.violations)}; receiver rejects ${JSON.stringify(st.receiverRejects)}; hub routed ${st.hubRouted}; kernel ${JSON.stringify(st.kernel ?? {})}`);
      }
      const remote = (await forger.call({ op: 'forge-stop' }))['attempts'] as number;
      ctx.log(`  remote: ${remote} forged descriptors sent from realm B's node`);
      attempts += remote;
      const stats = await server.call({ op: 'stats' });
      const echo = stats['echo'] as Record<string, { forgedDelivered: number }>;
      delivered += Object.values(echo).reduce((n, e) => n + e.forgedDelivered, 0);
      rejected += stats['remoteCrossRealmRefused'] as number;
      if (procs.bpf === undefined) for (const k of [...TRANSPORT_KEYS('bpf'), ...TRANSPORT_KEYS('bpfevent')]) out[k] = null;
      out['cross_realm_delivered'] = delivered;
      out['cross_realm_attempts'] = attempts;
      out['cross_realm_rejected'] = rejected;
      if (procs.bpf === undefined) out['bpf_unavailable_reason'] = bpf.reason ?? 'unknown';
      // Every buffer sent was answered and released: realm A's pools are back where they started.
      out['pool_bytes_leaked'] = leaked;
      for (const h of hosts) await h.call({ op: 'exit' }).catch(() => undefined);
      await Promise.all(hosts.map((h) => h.exited));
      return out;
    } finally {
      for (const h of hosts) h.cp.kill();
      await nats?.stop();
      for (const p of Object.values(procs)) await p.close();
    }
  },
};

const sumValues = (r: Record<string, number>): number => Object.values(r).reduce((a, b) => a + b, 0);
const TRANSPORT_KEYS = (t: Transport): string[] => [...SIZES.flatMap((s) => [`${t}_${s.key}_rtt_p50_us`, `${t}_${s.key}_rtt_p99_us`, `${t}_${s.key}_msgs_per_s`]), `${t}_cpu_us_per_msg`];
