import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SigmaClient, untilScheduler } from '../../client/client.js';
import { startCluster, type RunningCluster } from '../../cluster/launcher.js';
import { defineCluster } from '../../config/cluster.js';
import { NODE as NODE_RPC, call, type NameRecord } from '../../control/protocol/index.js';
import { connectBus } from '../../nats/real.js';
import type { Bus } from '../../nats/types.js';
import type { DataPathStatus } from '../../datapath/status.js';
import { BenchError } from '../harness.js';
import type { GcEvent, ProcCommand } from '../procs/dp-commands.js';

/** mkdtemp makes 0700 directories; realm uids need to pass through to their own directory. */
const TRAVERSE_ONLY = 0o711;

/**
 * The `bpf` and `userspace` transports of the `datapath` benchmark: real procs through the real control
 * plane. A one-node cluster (its own nats-server, node process and data dir) in one data-path mode; the
 * server proc (`dpb-echo`) and the client proc (`dpb-client`) each in a host process of its own
 * (`dedicated`), both in realm `default`; the forging proc (`dpb-forger`) in realm `other`. The suite
 * drives the procs with JSON commands over `client.dataPathCall` (through the node's own endpoint), and
 * the client proc times its round trips itself, so neither spawn nor command costs are in the figures.
 */

const proc = (name: string): string => fileURLToPath(new URL(`../procs/${name}.js`, import.meta.url));
const PROGRAMS = { 'dpb-echo': proc('dp-echo'), 'dpb-client': proc('dp-client'), 'dpb-forger': proc('dp-forger') };
const REALM_A = 'default';
const REALM_B = 'other';
/** The client's and the server's reservation: one core each (the node has 8000 mcpu). */
const LC_CORE = { lc: true, mcpu: 1000 } as const;
const NODE = 'node-1';
/** A node answers its data-path status at once; longer means it is gone. */
const STATUS_TIMEOUT_MS = 5_000;
/** Bound on one command to a proc (a throughput phase or a latency batch of 1 MiB requests). */
export const PROC_COMMAND_TIMEOUT_MS = 60_000;
const START_TIMEOUT_MS = 30_000;
const NO_SCHEDULER_RETRIES_MAX = 100;
const CLK_TCK = 100;

export type ProcMode = 'bpf' | 'userspace';

/** CPU time of a process from /proc, in µs (10 ms resolution). */
export function pidCpuUs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[11]) + Number(f[12])) / CLK_TCK) * 1e6;
}

/**
 * CPU time of a process, all its threads, in ns: the first field of /proc/<pid>/task/<tid>/schedstat
 * (time on a CPU), summed. Resolution of ns where /proc/<pid>/stat counts 10 ms ticks, which a latency
 * batch of a few ms would not register. Falls back to the ticks where schedstat is missing.
 */
export function procCpuNs(pid: number): number {
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return 0; // gone
  }
  let ns = 0;
  for (const tid of tids) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // The thread ended while we looked, or there is no schedstat: the ticks, for the whole process.
      if (tid === tids[0]) return pidCpuUs(pid) * 1000;
    }
  }
  return ns;
}

/**
 * Time on a CPU (ns) and times given a CPU (schedstat's first and third fields) of a process, all its
 * threads summed: how much, and how often, it ran. Zeros when it is gone.
 */
export function procRuns(pid: number): { ns: number; runs: number } {
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return { ns: 0, runs: 0 };
  }
  let ns = 0;
  let runs = 0;
  for (const tid of tids) {
    try {
      const f = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ');
      ns += Number(f[0]);
      runs += Number(f[2]);
    } catch {
      // the thread ended while we looked
    }
  }
  return { ns, runs };
}

/** µs the main thread of `pid` has waited on a run queue (runnable, its CPU taken): schedstat's second field. */
export function runQueueWaitUsOf(pid: number): number {
  try {
    return Number(readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8').split(' ')[1]) / 1000;
  } catch {
    return 0;
  }
}

export interface LatencyDetail {
  rttsUs: number[];
  /** Each round trip's start, µs of CLOCK_MONOTONIC. */
  startsUs: number[];
  /** µs the client host's main thread waited on a run queue during each round trip. */
  runQueueUs: number[];
}

export class ProcPath {
  private constructor(
    readonly mode: ProcMode,
    readonly dir: string,
    readonly cluster: RunningCluster,
    readonly bus: Bus,
    readonly client: SigmaClient,
    readonly pids: string[],
    readonly server: NameRecord,
    readonly poolBytesUsed0: number,
  ) {}

  /** `busyPollUs`: the cluster's busy-poll window (src/datapath/busy-poll.ts); its default when absent. */
  static async start(mode: ProcMode, options: { busyPollUs?: number } = {}): Promise<ProcPath> {
    const dir = mkdtempSync(join(tmpdir(), `sigma-bench-dp-${mode}-`));
    chmodSync(dir, TRAVERSE_ONLY); // sandboxed hosts reach their realm's directory below it
    const config = defineCluster({ nodes: 1, node: { mcpu: 8000, memMb: 8192, beSlots: 64 }, nats: { embedded: true, port: 0 }, dataDir: join(dir, 'data'), realms: [REALM_A, REALM_B], datapath: mode, programs: PROGRAMS, ...options });
    const cluster = await startCluster(config);
    let bus: Bus | undefined;
    try {
      bus = await connectBus({ servers: [cluster.natsUrl], name: `bench-dp-${mode}` });
      const client = await SigmaClient.connect(bus);
      for (const r of [REALM_A, REALM_B]) await untilScheduler(() => client.createRealm(r), { attempts: NO_SCHEDULER_RETRIES_MAX });
      const pids: string[] = [];
      const service = async (program: string, realm: string, args: unknown[] = [], reserve: { lc: true; mcpu: number } | Record<string, never> = {}): Promise<NameRecord> => {
        const pid = await untilScheduler(() => client.spawn({ program, name: program, realm, dedicated: true, args, ...reserve }), { attempts: NO_SCHEDULER_RETRIES_MAX });
        pids.push(pid);
        await client.waitStart(pid, { timeoutMs: START_TIMEOUT_MS });
        const deadline = Date.now() + START_TIMEOUT_MS;
        for (;;) {
          const rec = (await client.names(realm)).find((n) => n.name === program && n.pid === pid);
          if (rec?.endpoint !== undefined) return rec;
          if (Date.now() > deadline) throw new BenchError(`${program} has no data-path endpoint after ${START_TIMEOUT_MS} ms`);
          await new Promise((r) => setTimeout(r, 20));
        }
      };
      // Latency-critical, a core each, as a user would run a latency-sensitive service: their hosts' cgroups
      // then have the CPU weight of a core, that of any plain process (the baselines'). As BE procs they
      // had a twentieth of it (BE_WEIGHT_MCPU), and lost the CPU to anything else runnable.
      const server = await service('dpb-echo', REALM_A, [], LC_CORE);
      await service('dpb-client', REALM_A, ['dpb-echo'], LC_CORE);
      await service('dpb-forger', REALM_B);
      const st = await status(bus);
      if (st.mode !== mode) throw new BenchError(`the node runs the ${st.mode} data path, not ${mode}: ${st.reason}`);
      return new ProcPath(mode, dir, cluster, bus, client, pids, server, st.pools[REALM_A]?.bytesUsed ?? 0);
    } catch (e) {
      await bus?.close();
      await cluster.stop();
      rmSync(dir, { recursive: true, force: true });
      throw e;
    }
  }

  async command(program: string, cmd: ProcCommand | { op: 'stats' }, realm = REALM_A): Promise<Record<string, unknown>> {
    const answer = await this.client.dataPathCall(program, JSON.stringify(cmd), { realm, timeoutMs: PROC_COMMAND_TIMEOUT_MS });
    return JSON.parse(answer) as Record<string, unknown>;
  }

  async latency(sizeBytes: number, count: number, warmup: number): Promise<number[]> {
    return (await this.command('dpb-client', { op: 'latency', sizeBytes, count, warmup }))['rttsUs'] as number[];
  }

  /** A latency batch with each round trip's start and the client's run-queue wait (the tail analysis). */
  async latencyDetail(sizeBytes: number, count: number, warmup: number): Promise<LatencyDetail> {
    return (await this.command('dpb-client', { op: 'latency', sizeBytes, count, warmup, detail: true })) as unknown as LatencyDetail;
  }

  /** The server proc's notes per request while tracing ([arrival µs, its host's run-queue wait µs so far]); `on` starts a new trace. */
  async trace(on: boolean): Promise<Array<[number, number]>> {
    return (await this.command('dpb-echo', { op: 'trace', on }))['notes'] as Array<[number, number]>;
  }

  /** Garbage collections in the client's and the server's host since `sinceUs` (µs of CLOCK_MONOTONIC). */
  async gcs(sinceUs: number): Promise<{ client: GcEvent[]; server: GcEvent[] }> {
    const client = (await this.command('dpb-client', { op: 'gcs', sinceUs }))['gcs'] as GcEvent[];
    const server = (await this.command('dpb-echo', { op: 'gcs', sinceUs }))['gcs'] as GcEvent[];
    return { client, server };
  }

  /** The node process's pid (its CPU and runs are read from /proc). */
  get nodePid(): number {
    const node = this.cluster.nodes.get(NODE)?.pid;
    if (node === undefined) throw new BenchError(`the ${this.mode} node process has no pid`);
    return node;
  }

  /**
   * Process ids of the client's host, the server's host, the node process (the hub in userspace mode)
   * and the cluster's nats-server: every process of this transport. The nats-server carries no frame of
   * the data path, but the cluster cannot run without it (heartbeats, host pings' reports), so what it
   * spends while the procs talk is charged to them too.
   */
  async processIds(): Promise<{ client: number; server: number; node: number; nats: number | undefined }> {
    const client = (await this.command('dpb-client', { op: 'cpu' }))['pid'] as number;
    const server = (await this.command('dpb-echo', { op: 'stats' }))['pid'] as number;
    const node = this.cluster.nodes.get(NODE)?.pid;
    if (node === undefined) throw new BenchError(`the ${this.mode} node process has no pid`);
    return { client, server, node, nats: this.cluster.natsPid };
  }

  /** Completed requests, wall time and the CPU of client host + server host + node process + nats-server over the phase. */
  async throughput(sizeBytes: number, window: number, durationMs: number): Promise<{ completed: number; wallMs: number; cpuUs: number }> {
    const cpu0 = await this.#cpuUs();
    const r = await this.command('dpb-client', { op: 'throughput', sizeBytes, window, durationMs });
    const cpuUs = (await this.#cpuUs()) - cpu0;
    return { completed: r['completed'] as number, wallMs: r['wallMs'] as number, cpuUs };
  }

  async forge(periodMs: number): Promise<void> {
    const client = (await this.client.names(REALM_A)).find((n) => n.name === 'dpb-client');
    const st = await status(this.bus);
    const poolBytes = st.pools[REALM_A]?.bytesTotal ?? 0;
    await this.command('dpb-forger', { op: 'forge', dstEp: this.server.endpoint!, spoofEp: client?.endpoint ?? 0, periodMs, poolBytes }, REALM_B);
  }

  async forgeStop(): Promise<number> {
    return (await this.command('dpb-forger', { op: 'forge-stop' }, REALM_B))['attempts'] as number;
  }

  /** Sets the busy-poll window of the client's and the server's hosts; resolves to what it was. */
  async busyPoll(windowUs: number): Promise<number> {
    const before = (await this.command('dpb-client', { op: 'busy-poll', windowUs }))['windowUs'] as number;
    await this.command('dpb-echo', { op: 'busy-poll', windowUs });
    return before;
  }

  async serverStats(): Promise<{ received: number; forgedDelivered: number }> {
    return (await this.command('dpb-echo', { op: 'stats' })) as { received: number; forgedDelivered: number };
  }

  status(): Promise<DataPathStatus> {
    return status(this.bus);
  }

  /** Realm A's pool use now, less what it was before any traffic (credits and frees settle within a few polls). */
  async poolBytesLeaked(): Promise<number> {
    let leaked = 0;
    for (let i = 0; i < 50; i++) {
      leaked = ((await this.status()).pools[REALM_A]?.bytesUsed ?? 0) - this.poolBytesUsed0;
      if (leaked === 0) return 0;
      await new Promise((r) => setTimeout(r, 20));
    }
    return leaked;
  }

  async close(): Promise<void> {
    try {
      for (const pid of this.pids) await this.client.evict(pid).catch(() => undefined);
      for (const pid of this.pids) await this.client.waitExit(pid, { timeoutMs: START_TIMEOUT_MS }).catch(() => undefined);
    } finally {
      await this.bus.close();
      await this.cluster.stop();
      rmSync(this.dir, { recursive: true, force: true });
    }
  }

  async #cpuUs(): Promise<number> {
    const client = (await this.command('dpb-client', { op: 'cpu' }))['cpuUs'] as number;
    const server = (await this.command('dpb-echo', { op: 'stats' }))['cpuUs'] as number;
    // The node process (the hub in userspace mode) and the cluster's nats-server too, as in the latency phase.
    const others = [this.cluster.nodes.get(NODE)?.pid, this.cluster.natsPid].filter((p): p is number => p !== undefined);
    return client + server + others.reduce((us, pid) => us + procCpuNs(pid) / 1000, 0);
  }
}

async function status(bus: Bus): Promise<DataPathStatus> {
  const r = await call(bus, NODE_RPC.subject(NODE), NODE_RPC.dataPathStatus, { op: 'datapath-status' }, STATUS_TIMEOUT_MS);
  if (!r.ok) throw new BenchError(`node ${NODE} gave no data-path status: ${JSON.stringify(r)}`);
  return r.status;
}
