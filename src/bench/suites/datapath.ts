import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { DEFAULT_BUSY_POLL_US } from '../../datapath/busy-poll.js';
import { bpfStatus } from '../../native/bpf.js';
import { nativeStatus } from '../../native/index.js';
import { startNatsServer, type NatsServer } from '../../nats/server.js';
import { CpuHomes, nodeCpus } from '../../node/datapath/cpu-homes.js';
import { BenchError, median, percentile, round, type BenchContext, type Comparison, type Figures, type Goal, type Suite } from '../harness.js';
import { pidCpuUs, procCpuNs, ProcPath, type ProcMode } from './datapath-procs.js';
import { HOST_PAIRS, PROC_TRANSPORTS, ROLES, SPIN_HOME_ENV, SPIN_WINDOW_ENV, TRANSPORTS, type HostCommand, type HostTransport, type Role, type Transport } from './datapath-protocol.js';
import { analyseTail } from './datapath-tail.js';

/**
 * `npm run bench -- datapath`: two procs in two host processes on one node exchange requests of 64 B,
 * 4 KiB, 64 KiB and 1 MiB, echoed back, over the transports measured in the same run: `bpf` (descriptors
 * redirected by the sk_msg program into per-realm shared memory), `bpfevent` (the same with busy polling
 * off), `userspace` (the same endpoints through the hub), `tcp`, `tcpspin` (tcp between processes that
 * busy-poll and pin as the hosts do), `http` (keep-alive) and `nats` (request/reply through a
 * nats-server started here). `bpf` and `userspace` are real procs on a real node (datapath-procs.ts): a
 * one-node cluster per mode, an echo service proc and a client proc each in a host process of its own,
 * talking through ctx.callWith, and a forging proc in realm B writing raw descriptors to realm A's
 * server endpoint and offsets. The others run between plain child processes (src/bench/datapath-host.ts),
 * a pair per kind (datapath-protocol.ts HOST_PAIRS): what a Node user would write.
 *
 * A further transport, `remote`, runs two plain hosts as two nodes over the node-to-node channel
 * (src/datapath/remote.ts), each with a pool of its own and an Endpoint: what one copy across nodes costs.
 *
 * Figures: `<transport>_<size>_rtt_p50_us` / `_p99_us` (sequential round trips, one outstanding),
 * `<transport>_<size>_cpu_us_per_rtt` (CPU of every process of the transport — both hosts, and the node
 * process (procs) or the nats-server (nats) — per round trip over the latency phase, less what the
 * command that starts each batch costs; `<transport>_cpu_us_per_rtt` is the 64 B one), `<transport>_<size>_msgs_per_s` (requests answered per second with a window of
 * requests outstanding), `<transport>_cpu_us_per_msg` (the same processes' CPU per request in the 64 B
 * throughput phase), `bpf_64_tail_*` (where the slow round trips of bpf at 64 B come from:
 * datapath-tail.ts), `cross_realm_*` (forged descriptors sent, refused by the kernel or the hub,
 * delivered: the run fails unless every one was refused before any receiver's own checks).
 */

const HOST_SCRIPT = fileURLToPath(new URL('../datapath-host.js', import.meta.url));
export const SIZES = [
  { key: '64', bytes: 64 },
  { key: '4k', bytes: 4 << 10 },
  { key: '64k', bytes: 64 << 10 },
  { key: '1m', bytes: 1 << 20 },
] as const;
type SizeKey = (typeof SIZES)[number]['key'];

const FORGE_PERIOD_MS = 2;
const HOST_READY_TIMEOUT_MS = 20_000;
const COMMAND_TIMEOUT_MS = 120_000;
/** Empty latency commands per transport whose CPU is the overhead subtracted from every batch's. */
const CPU_CALIBRATION_CALLS = 7;
/**
 * After the forgers stop: long enough for the hub to have counted the last diversions and for every
 * host to have reported its receiver rejects (hosts report with the node's pings, every 250 ms).
 */
const FORGE_SETTLE_MS = 750;

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
   * trip of a batch, ~30 µs from the fourth on; the tail analysis still found the third slow in some
   * batches), and with 12 round trips a batch at 1 MiB those would be a sixth of the samples. The figures
   * are of sequential round trips on a warm path.
   */
  batchWarmup: number;
  /** Requests outstanding in the throughput phase. */
  window: Record<SizeKey, number>;
  throughputMs: number;
  /** Batches of bpf at 64 B, each of batch['64'], in the tail analysis (datapath-tail.ts). */
  tailBatches: number;
}
const WINDOW = { '64': 16, '4k': 16, '64k': 8, '1m': 4 };
const PLAN_QUICK: Plan = { warmup: 1000, rounds: 4, batch: { '64': 60, '4k': 60, '64k': 30, '1m': 8 }, batchWarmup: 3, window: WINDOW, throughputMs: 200, tailBatches: 10 };
const PLAN_FULL: Plan = { warmup: 3000, rounds: 30, batch: { '64': 100, '4k': 100, '64k': 50, '1m': 12 }, batchWarmup: 3, window: WINDOW, throughputMs: 1500, tailBatches: 30 };

const comparisons: Comparison[] = [
  ...SIZES.flatMap((s) =>
    (['bpfevent', 'userspace', 'tcp', 'tcpspin', 'http', 'nats'] as const).map((b) => ({ figure: `bpf_${s.key}_rtt_p50_us`, baseline: `${b}_${s.key}_rtt_p50_us`, better: 'lower' as const, ratio: `bpf_vs_${b}_${s.key}_p50_ratio` })),
  ),
  // No polling against a baseline that does not poll either.
  ...SIZES.map((s) => ({ figure: `bpfevent_${s.key}_rtt_p50_us`, baseline: `http_${s.key}_rtt_p50_us`, better: 'lower' as const, ratio: `bpfevent_vs_http_${s.key}_p50_ratio` })),
  ...SIZES.map((s) => ({ figure: `bpfevent_${s.key}_rtt_p50_us`, baseline: `tcp_${s.key}_rtt_p50_us`, better: 'lower' as const, ratio: `bpfevent_vs_tcp_${s.key}_p50_ratio` })),
  { figure: 'bpf_64_rtt_p99_us', baseline: 'http_64_rtt_p99_us', better: 'lower', ratio: 'bpf_vs_http_64_p99_ratio' },
  { figure: 'bpf_64_rtt_p99_us', baseline: 'tcpspin_64_rtt_p99_us', better: 'lower', ratio: 'bpf_vs_tcpspin_64_p99_ratio' },
  ...SIZES.map((s) => ({ figure: `bpf_${s.key}_msgs_per_s`, baseline: `http_${s.key}_msgs_per_s`, better: 'higher' as const, ratio: `bpf_vs_http_${s.key}_msgs_ratio` })),
  { figure: 'bpf_cpu_us_per_msg', baseline: 'bpfevent_cpu_us_per_msg', better: 'lower', ratio: 'bpf_vs_bpfevent_cpu_ratio' },
  { figure: 'bpf_cpu_us_per_msg', baseline: 'http_cpu_us_per_msg', better: 'lower', ratio: 'bpf_vs_http_cpu_ratio' },
  { figure: 'bpf_cpu_us_per_msg', baseline: 'nats_cpu_us_per_msg', better: 'lower', ratio: 'bpf_vs_nats_cpu_ratio' },
  { figure: 'bpf_cpu_us_per_rtt', baseline: 'tcpspin_cpu_us_per_rtt', better: 'lower', ratio: 'bpf_vs_tcpspin_cpu_per_rtt_ratio' },
  { figure: 'bpf_cpu_us_per_rtt', baseline: 'http_cpu_us_per_rtt', better: 'lower', ratio: 'bpf_vs_http_cpu_per_rtt_ratio' },
  { figure: 'bpfevent_cpu_us_per_rtt', baseline: 'http_cpu_us_per_rtt', better: 'lower', ratio: 'bpfevent_vs_http_cpu_per_rtt_ratio' },
];
/** The goals. */
const goals: Goal[] = [
  { figure: 'bpf_vs_http_64_p50_ratio', op: '>=', target: 5 },
  { figure: 'bpf_vs_nats_64_p50_ratio', op: '>=', target: 5 },
  { figure: 'bpf_vs_http_1m_p50_ratio', op: '>=', target: 20 },
  { figure: 'cross_realm_delivered', op: '<=', target: 0 },
  { figure: 'cross_realm_rejected', op: '>=', target: 'cross_realm_attempts' },
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

  get pid(): number {
    if (this.cp.pid === undefined) throw new BenchError(`the ${this.role} host has no pid`);
    return this.cp.pid;
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

/** `spin`: a tcpspin host, busy-polling with the hosts' window and pinned to `home` as a proc host would be. */
function startHost(role: Role, spin?: { home: number | undefined }): Host {
  const env: NodeJS.ProcessEnv = { ...process.env, SIGMA_BENCH_ROLE: role };
  delete env['NODE_EXTRA_CA_CERTS']; // ~60 ms per start, see DESIGN.md
  if (spin !== undefined) {
    env[SPIN_WINDOW_ENV] = String(DEFAULT_BUSY_POLL_US);
    if (spin.home !== undefined) env[SPIN_HOME_ENV] = String(spin.home);
  }
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

/** Every host role; the spinning pair gets homes as a node gives its hosts (distinct CPUs, least loaded first). */
function startHosts(): Record<Role, Host> {
  const homes = new CpuHomes(nodeCpus());
  const hosts = {} as Record<Role, Host>;
  for (const role of ROLES) hosts[role] = startHost(role, role.startsWith('spin-') ? { home: homes.take(role) } : undefined);
  return hosts;
}

interface Run {
  hosts: Record<Role, Host>;
  nats: NatsServer;
  procs: Partial<Record<ProcMode, ProcPath>>;
  plan: Plan;
  /** Every process of each transport, whose CPU is charged to it. */
  pids: Map<Transport, number[]>;
  /** Where each host transport's server listens (remote: the server node's channel, which the forger dials too). */
  ports: Map<HostTransport, number | undefined>;
}

type ProcTransport = ProcMode | 'bpfevent';
const isProc = (t: Transport): t is ProcTransport => t === 'bpfevent' || (PROC_TRANSPORTS as readonly string[]).includes(t);
const pairOf = (run: Run, t: HostTransport): { client: Host; server: Host } => ({ client: run.hosts[HOST_PAIRS[t].client], server: run.hosts[HOST_PAIRS[t].server] });

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

const cpuNs = (pids: readonly number[]): number => pids.reduce((sum, pid) => sum + procCpuNs(pid), 0);

/**
 * One latency batch and the CPU its transport's processes spent meanwhile (ns). The busy-poll switch of
 * `bpfevent` happens outside the CPU window; the command that starts the batch is inside it (calibrated).
 */
async function latency(run: Run, t: Transport, sizeBytes: number, count: number, warmup: number): Promise<{ rttsUs: number[]; cpuNs: number }> {
  const pids = run.pids.get(t) ?? [];
  if (isProc(t)) {
    return onProcs(run, t, async (p) => {
      const cpu0 = cpuNs(pids);
      const rttsUs = await p.latency(sizeBytes, count, warmup);
      return { rttsUs, cpuNs: cpuNs(pids) - cpu0 };
    });
  }
  const cpu0 = cpuNs(pids);
  const r = await pairOf(run, t).client.call({ op: 'latency', transport: t, sizeBytes, count, warmup });
  return { rttsUs: r['rttsUs'] as number[], cpuNs: cpuNs(pids) - cpu0 };
}

async function prepare(run: Run, transports: readonly Transport[]): Promise<void> {
  const { nats, plan } = run;
  for (const t of transports) {
    if (isProc(t)) {
      const p = procPath(run, t === 'bpfevent' ? 'bpf' : t);
      const ids = await p.processIds();
      run.pids.set(t, [ids.client, ids.server, ids.node, ...(ids.nats === undefined ? [] : [ids.nats])]);
    } else {
      const { client, server } = pairOf(run, t);
      const served = await server.call({ op: 'serve', transport: t, url: nats.url });
      run.ports.set(t, served['port'] as number | undefined);
      // (remote: `port` is the server node's channel listener; the client node dials it)
      await client.call({ op: 'prepare', transport: t, port: served['port'] as number | undefined, url: nats.url, window: Math.max(...Object.values(plan.window)) });
      run.pids.set(t, [client.pid, server.pid, ...(t === 'nats' && nats.pid !== undefined ? [nats.pid] : [])]);
    }
    for (const s of SIZES) await latency(run, t, s.bytes, 1, s.bytes >= 1 << 20 ? plan.warmup / 10 : plan.warmup);
  }
}

/** CPU (ns) of an empty latency command on `t`: what starting a batch costs its processes, apart from the round trips. */
async function batchOverheadNs(run: Run, t: Transport): Promise<number> {
  const xs: number[] = [];
  for (let i = 0; i < CPU_CALIBRATION_CALLS; i++) xs.push((await latency(run, t, 64, 0, 0)).cpuNs);
  return median(xs);
}

async function measureLatency(ctx: BenchContext, run: Run, transports: readonly Transport[], out: Figures): Promise<void> {
  const rtts = new Map<string, number[]>();
  const cpu = new Map<string, { ns: number; rtts: number }>();
  const overhead = new Map<Transport, number>();
  for (const t of transports) overhead.set(t, await batchOverheadNs(run, t));
  const bar = ctx.progress('datapath round trips', run.plan.rounds);
  try {
    for (let r = 0; r < run.plan.rounds; r++) {
      for (const t of transports) {
        for (const s of SIZES) {
          const got = await latency(run, t, s.bytes, run.plan.batch[s.key], run.plan.batchWarmup);
          const key = `${t}_${s.key}`;
          rtts.set(key, [...(rtts.get(key) ?? []), ...got.rttsUs]);
          const c = cpu.get(key) ?? { ns: 0, rtts: 0 };
          cpu.set(key, { ns: c.ns + got.cpuNs - overhead.get(t)!, rtts: c.rtts + got.rttsUs.length + run.plan.batchWarmup });
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
  // Per size; the headline is 64 B, where per-message cost dominates (as <transport>_cpu_us_per_msg).
  for (const [key, c] of cpu) out[`${key}_cpu_us_per_rtt`] = round(c.ns / 1000 / c.rtts, 1);
  for (const t of transports) out[`${t}_cpu_us_per_rtt`] = out[`${t}_64_cpu_us_per_rtt`] ?? null;
  for (const [t, ns] of overhead) ctx.log(`  ${t}: a batch's command costs ${round(ns / 1000, 1)} µs of CPU (subtracted from ${t}_cpu_us_per_rtt)`);
}

/** Procs: CPU of client host + server host + node process + the cluster's nats-server; host pairs: client + server (+ nats-server). */
async function throughput(run: Run, t: Transport, sizeBytes: number, window: number): Promise<{ completed: number; wallMs: number; cpuUs: number }> {
  const { nats, plan } = run;
  if (isProc(t)) return onProcs(run, t, (p) => p.throughput(sizeBytes, window, plan.throughputMs));
  const { client, server } = pairOf(run, t);
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

const sumValues = (r: Record<string, number>): number => Object.values(r).reduce((a, b) => a + b, 0);

/** What the data paths had refused (hub or kernel) and what receivers had refused themselves, before forging. */
interface RefusalCounts {
  refused: Map<ProcMode, number>;
  receiver: Map<ProcMode, number>;
}

async function refusalCounts(run: Run): Promise<RefusalCounts> {
  const out: RefusalCounts = { refused: new Map(), receiver: new Map() };
  for (const [m, p] of Object.entries(run.procs) as Array<[ProcMode, ProcPath]>) {
    const st = await p.status();
    out.refused.set(m, sumValues(st.violations));
    out.receiver.set(m, sumValues(st.receiverRejects));
  }
  return out;
}

/** Forgers on every node: realm B's proc on each proc node, and realm B's node against `remote-server`. */
async function startForging(run: Run): Promise<void> {
  for (const p of Object.values(run.procs)) await p.forge(FORGE_PERIOD_MS);
  const port = run.ports.get('remote');
  if (port === undefined) throw new BenchError('the remote server node has no channel port to forge at');
  await run.hosts.forger.call({ op: 'forge', periodMs: FORGE_PERIOD_MS, port });
}

/**
 * Stops the forgers and checks that every forged descriptor was refused by the kernel (bpf) or the hub
 * (userspace) or the remote channel, and none reached a receiver: the hub's and channel's refusals equal
 * the attempts, no receiver refused anything itself (its owner and generation checks would otherwise hide
 * a verdict that let one through), and none was delivered. Fails the run otherwise.
 */
async function checkForging(ctx: BenchContext, run: Run, before: RefusalCounts, out: Figures): Promise<void> {
  let attempts = 0;
  let rejected = 0;
  let receiver = 0;
  let delivered = 0;
  let leaked = 0;
  const perPath: string[] = [];
  const sent = new Map<ProcMode, number>();
  for (const [m, p] of Object.entries(run.procs) as Array<[ProcMode, ProcPath]>) sent.set(m, await p.forgeStop());
  const remoteSent = (await run.hosts.forger.call({ op: 'forge-stop' }))['attempts'] as number;
  await new Promise((r) => setTimeout(r, FORGE_SETTLE_MS));
  for (const [m, p] of Object.entries(run.procs) as Array<[ProcMode, ProcPath]>) {
    const st = await p.status();
    const n = sent.get(m)!;
    const refused = sumValues(st.violations) - before.refused.get(m)!;
    const rec = sumValues(st.receiverRejects) - before.receiver.get(m)!;
    const got = (await p.serverStats()).forgedDelivered;
    attempts += n;
    rejected += refused;
    receiver += rec;
    delivered += got;
    leaked += await p.poolBytesLeaked();
    perPath.push(`${m}: sent ${n}, refused ${refused} (${JSON.stringify(st.violations)}; kernel ${JSON.stringify(st.kernel ?? {})}), receiver rejects +${rec}, delivered ${got}`);
  }
  const stats = await run.hosts['remote-server'].call({ op: 'stats' });
  const echo = stats['echo'] as Record<string, { forgedDelivered: number }>;
  const remoteDelivered = Object.values(echo).reduce((n, e) => n + e.forgedDelivered, 0);
  const remoteRefused = stats['remoteCrossRealmRefused'] as number;
  const remoteReceiver = stats['remoteReceiverRejects'] as number;
  attempts += remoteSent;
  rejected += remoteRefused;
  receiver += remoteReceiver;
  delivered += remoteDelivered;
  perPath.push(`remote: sent ${remoteSent}, refused ${remoteRefused} by the channel, receiver rejects ${remoteReceiver}, delivered ${remoteDelivered}`);
  for (const line of perPath) ctx.log(`  ${line}`);
  out['cross_realm_attempts'] = attempts;
  out['cross_realm_rejected'] = rejected;
  out['cross_realm_receiver_rejects'] = receiver;
  out['cross_realm_delivered'] = delivered;
  // Every buffer sent was answered and released: realm A's pools are back where they started.
  out['pool_bytes_leaked'] = leaked;
  const failure = crossRealmFailure({ attempts, rejected, receiver, delivered });
  if (failure !== undefined) throw new BenchError(`${failure}. Per path: ${perPath.join(' | ')}`);
}

/**
 * Why the forged descriptors show nothing, or undefined when they show what they must: every one refused
 * by the kernel, the hub or the channel (`rejected == attempts`), none left to a receiver's own owner and
 * generation checks (which would hide a verdict that let one through), none delivered, and some sent.
 */
export function crossRealmFailure(c: { attempts: number; rejected: number; receiver: number; delivered: number }): string | undefined {
  if (c.attempts > 0 && c.rejected === c.attempts && c.receiver === 0 && c.delivered === 0) return undefined;
  return (
    `cross-realm check failed: ${c.attempts} forged descriptors sent, ${c.rejected} refused by the kernel, hub or channel, ${c.receiver} refused only by a receiver's own checks, ${c.delivered} delivered; ` +
    `every forged descriptor must be refused before it reaches a receiver (rejected == attempts, receiver rejects 0, delivered 0)${c.attempts === 0 ? ', and none was sent, so nothing was shown' : ''}`
  );
}

export const datapathSuite: Suite = {
  name: 'datapath',
  description: 'two real procs in two host processes on one node: bpf data path (polling and not) vs userspace hub; tcp, tcp with the hosts\' busy poll, http keep-alive, nats request/reply between plain processes',
  comparisons,
  goals,
  async run(ctx: BenchContext): Promise<Figures> {
    const native = nativeStatus();
    if (!native.available) throw new BenchError(`the datapath bench needs the native addon (memfd pools): ${native.reason}; run \`npm run build\``);
    const plan = ctx.quick ? PLAN_QUICK : PLAN_FULL;
    process.env['SIGMA_LOG'] ??= 'error'; // the forger's refusals are logged as warnings, thousands of them
    let hosts: Record<Role, Host> | undefined;
    const procs: Partial<Record<ProcMode, ProcPath>> = {};
    let nats: NatsServer | undefined;
    try {
      const bpf = await startBpf();
      if (bpf.path !== undefined) procs.bpf = bpf.path;
      else ctx.log(`datapath: BPF unavailable (${bpf.reason}); the bpf transport is skipped, mode "userspace"`);
      procs.userspace = await ProcPath.start('userspace');
      hosts = startHosts();
      await Promise.all(Object.values(hosts).map(ready));
      nats = await startNatsServer({ jetstream: false });
      const transports = TRANSPORTS.filter((t) => (t !== 'bpf' && t !== 'bpfevent') || procs.bpf !== undefined);
      const out: Figures = { mode: procs.bpf !== undefined ? 'bpf' : 'userspace' };
      const run: Run = { hosts, nats, procs, plan, pids: new Map(), ports: new Map() };
      const before = await refusalCounts(run);
      await prepare(run, transports);
      // The forgers run in the throughput phase, under load, not among the latency batches: their
      // wake-ups every FORGE_PERIOD_MS (three processes, and the hub refusing) were in every
      // transport's tail (the tail analysis: twice the slow round trips with them as without).
      await measureLatency(ctx, run, transports, out);
      if (procs.bpf !== undefined) Object.assign(out, await analyseTail(procs.bpf, 64, plan.batch['64'], plan.batchWarmup, plan.tailBatches));
      await startForging(run);
      await measureThroughput(ctx, run, transports, out);
      await checkForging(ctx, run, before, out);
      if (procs.bpf === undefined) for (const k of [...TRANSPORT_KEYS('bpf'), ...TRANSPORT_KEYS('bpfevent')]) out[k] = null;
      if (procs.bpf === undefined) out['bpf_unavailable_reason'] = bpf.reason ?? 'unknown';
      for (const h of Object.values(hosts)) await h.call({ op: 'exit' }).catch(() => undefined);
      await Promise.all(Object.values(hosts).map((h) => h.exited));
      return out;
    } finally {
      for (const h of Object.values(hosts ?? {})) h.cp.kill();
      await nats?.stop();
      for (const p of Object.values(procs)) await p.close();
    }
  },
};

const TRANSPORT_KEYS = (t: Transport): string[] => [...SIZES.flatMap((s) => [`${t}_${s.key}_rtt_p50_us`, `${t}_${s.key}_rtt_p99_us`, `${t}_${s.key}_msgs_per_s`, `${t}_${s.key}_cpu_us_per_rtt`]), `${t}_cpu_us_per_msg`, `${t}_cpu_us_per_rtt`];
