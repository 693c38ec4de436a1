import { fork, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SigmaClient, untilScheduler } from '../../client/client.js';
import { startCluster } from '../../cluster/launcher.js';
import { defineCluster } from '../../config/cluster.js';
import { BUCKET, decodeJson, decodeProcRecord, type LeaseRecord } from '../../control/protocol/index.js';
import { hostEnv } from '../../node/host-process.js';
import { connectBus } from '../../nats/real.js';
import { BenchError, median, percentile, round, type BenchContext, type Comparison, type Figures, type Suite } from '../harness.js';
import type { PoolAnswer, PoolTask } from '../procs/spawn-pool-worker.js';
import { cpuUsPer, treeCpuMs, type CpuByRole } from './spawn-cpu.js';
import { measureDeployed } from './spawn-deployed.js';
import { availableParallelism } from 'node:os';

/** mkdtemp makes 0700 directories; realm uids need to pass through to the programs. */
const TRAVERSE_ONLY = 0o711;

const PROC_TYPES = fileURLToPath(new URL('../../proc/types.js', import.meta.url));
const POOL_WORKER = fileURLToPath(new URL('../procs/spawn-pool-worker.js', import.meta.url));

/**
 * One clock for every process: start and first-line stamps are CLOCK_MONOTONIC in ns
 * (process.hrtime.bigint()), which all processes on the machine share. (performance.timeOrigin +
 * now() differs between processes by how each read the wall clock at its start.) A stamp crosses
 * processes as a decimal string: a proc's result, an IPC message.
 */
const monoNs = (): bigint => process.hrtime.bigint();
const msSince = (t0Ns: bigint, stamp: unknown): number => {
  if (typeof stamp !== 'string' || !/^\d+$/.test(stamp)) throw new BenchError(`a first-line stamp must be a decimal string of ns, got ${JSON.stringify(stamp)}`);
  return Number(BigInt(stamp) - t0Ns) / 1e6;
};
const wallMs = (): number => performance.now();

/** A function proc whose first line stamps the shared monotonic clock. */
const stampProgram = (): string => `import { FunctionProc } from ${JSON.stringify(PROC_TYPES)};
export default class Stamp extends FunctionProc {
  run() { return process.hrtime.bigint().toString(); }
}
`;
/** Warm-up bursts before giving up on reaching every node. */
const WARM_ROUNDS_MAX = 50;
/** Fresh modules run by the pool worker before it is timed (the cluster's hosts are warmed alike). */
const POOL_WARM_TASKS = 16;
/** Remote spawns before the remote ones are timed (the other node's paths JIT-warm). */
const REMOTE_WARM_SPAWNS = 16;
/** A BE proc asking for this much CPU does not fit on the leader's node once a reservation fills it: it goes elsewhere. */
const REMOTE_MCPU = 1;
const POOL_READY_TIMEOUT_MS = 20_000;
const START_TIMEOUT_MS = 30_000;
const LEADER_KEY = 'scheduler';

/** The same first line as a plain script started with child_process.fork: the baseline. */
const forkScript = `process.send(process.hrtime.bigint().toString()); process.disconnect();\n`;

async function forkStart(script: string): Promise<number> {
  const t0 = monoNs();
  const child = fork(script, [], { env: hostEnv(process.env, {}), execArgv: [], stdio: ['ignore', 'ignore', 'ignore', 'ipc'] });
  const first = await new Promise<unknown>((r) => child.once('message', r));
  await new Promise((r) => child.once('exit', r));
  return msSince(t0, first);
}

/** The `pool` baseline (src/bench/procs/spawn-pool-worker.ts): one pre-forked plain Node process, a fresh module per task over IPC. */
class PoolWorker {
  #seq = 0;
  readonly #waiting = new Map<number, (a: PoolAnswer) => void>();

  private constructor(readonly cp: ChildProcess) {
    cp.on('message', (m) => {
      const a = m as PoolAnswer;
      this.#waiting.get(a.seq)?.(a);
      this.#waiting.delete(a.seq);
    });
  }

  static async start(): Promise<PoolWorker> {
    const cp = fork(POOL_WORKER, [], { env: hostEnv(process.env, {}), execArgv: [], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new BenchError(`the pool worker was not ready in ${POOL_READY_TIMEOUT_MS} ms`)), POOL_READY_TIMEOUT_MS);
      cp.once('message', () => (clearTimeout(timer), resolve()));
      cp.once('exit', (code) => (clearTimeout(timer), reject(new BenchError(`the pool worker exited with ${code} before it was ready`))));
    });
    return new PoolWorker(cp);
  }

  /** Sends the task and resolves to the ms from sending it to its first line. */
  async start(path: string, load: PoolTask['load']): Promise<number> {
    const seq = ++this.#seq;
    const answered = new Promise<PoolAnswer>((r) => this.#waiting.set(seq, r));
    const t0 = monoNs();
    this.cp.send({ seq, path, load } satisfies PoolTask);
    const a = await answered;
    if (!a.ok) throw new BenchError(`pool task ${path} failed: ${a.error}`);
    return msSince(t0, a.first);
  }

  stop(): void {
    this.cp.kill();
  }
}

const comparisons: Comparison[] = [
  { figure: 'cold_start_p50_ms', baseline: 'pool_p50_ms', better: 'lower', ratio: 'cold_start_vs_pool_p50_ratio' },
  { figure: 'cold_start_p50_ms', baseline: 'pool_require_p50_ms', better: 'lower', ratio: 'cold_start_vs_pool_require_p50_ratio' },
  { figure: 'cold_start_p50_ms', baseline: 'fork_p50_ms', better: 'lower', ratio: 'cold_start_vs_fork_p50_ratio' },
  { figure: 'cold_start_remote_p50_ms', baseline: 'pool_p50_ms', better: 'lower', ratio: 'cold_start_remote_vs_pool_p50_ratio' },
];

export const spawnSuite: Suite = {
  name: 'spawn',
  description: 'procs through the real control plane: cold start on the leader\'s node and on another, warm start, pool and fork baselines, throughput',
  comparisons,
  async run(ctx: BenchContext): Promise<Figures> {
    const dir = mkdtempSync(join(tmpdir(), 'sigma-bench-'));
    chmodSync(dir, TRAVERSE_ONLY); // sandboxed hosts (a uid per realm) load the programs from here
    // The programs are ES modules in an ESM package, as a user's would be: without "type": "module",
    // Node 20 compiles each .js first as CommonJS to detect its format (about 0.1-0.3 ms per load).
    writeFileSync(join(dir, 'package.json'), '{ "type": "module", "private": true }\n');
    const coldCount = ctx.quick ? 20 : 100;
    const programs: Record<string, string> = {};
    // A fresh module per cold start: on the leader's node (cold-i), on another node (remote-i), in the
    // pool worker by import() (pool-i) and by require() (poolreq-i).
    const pool: string[] = [];
    const poolReq: string[] = [];
    for (let i = 0; i < coldCount; i++) {
      for (const kind of ['cold', 'remote']) {
        programs[`${kind}-${i}`] = join(dir, `${kind}-${i}.js`);
        writeFileSync(programs[`${kind}-${i}`]!, stampProgram());
      }
    }
    for (let i = 0; i < coldCount + POOL_WARM_TASKS; i++) {
      pool.push(join(dir, `pool-${i}.js`));
      writeFileSync(pool[i]!, stampProgram());
      poolReq.push(join(dir, `poolreq-${i}.js`));
      writeFileSync(poolReq[i]!, stampProgram());
    }
    programs['stamp'] = join(dir, 'stamp.js');
    writeFileSync(programs['stamp'], stampProgram());
    const script = join(dir, 'fork-first-line.cjs');
    writeFileSync(script, forkScript);

    process.env['SIGMA_LOG'] ??= 'warn';
    const config = defineCluster({ nodes: 2, node: { beSlots: 4096 }, nats: { embedded: true, port: 0 }, dataDir: join(dir, 'data'), realms: ['default'], programs });
    const cluster = await startCluster(config);
    const bus = await connectBus({ servers: [cluster.natsUrl], name: 'bench' });
    const client = await SigmaClient.connect(bus);
    let worker: PoolWorker | undefined;
    try {
      await untilScheduler(() => client.createRealm('default'), { attempts: 102 });
      // Completion by one watch over the whole proc table, not one watch per proc.
      // An exit may be seen before spawn() has resolved with its pid: such early exits are kept
      // (bounded by the procs in flight) instead of reading each record back.
      type Exit = { data: unknown; node: string | undefined; status: string };
      const exits = new Map<string, (e: Exit) => void>();
      const early = new Map<string, Exit>();
      const ranOn = new Set<string>(); // nodes that have run a proc, hence have the realm's host up
      const watch = await (await bus.kv(BUCKET.procs)).watch({});
      void (async () => {
        for await (const e of watch) {
          const r = e.value === null ? undefined : decodeProcRecord(e.value);
          if (r?.state !== 'exited') continue;
          if (r.node !== undefined) ranOn.add(r.node);
          const exit = { data: r.status?.data, node: r.node, status: `${r.status?.kind}: ${r.status?.message}` };
          const waiter = exits.get(r.pid);
          if (waiter !== undefined) waiter(exit);
          else early.set(r.pid, exit);
        }
      })();
      /** Spawn to first line, and where it ran. `mcpu` 0 (the default) is a BE proc that fits anywhere. */
      const run = async (program: string, mcpu = 0): Promise<{ startMs: number; node: string | undefined }> => {
        const t0 = monoNs();
        const pid = await client.spawn({ program, ...(mcpu === 0 ? {} : { mcpu }) });
        const exit = early.get(pid) ?? (await new Promise<Exit>((r) => exits.set(pid, r)));
        early.delete(pid);
        exits.delete(pid);
        if (typeof exit.data !== 'string') throw new BenchError(`${program} (${pid}) on ${exit.node} ended ${exit.status}, without its stamp`);
        return { startMs: msSince(t0, exit.data), node: exit.node };
      };

      // Warm every node's realm host (σOS measures cold start with the realm's container up): a
      // burst spreads over the nodes once all of them have offered slots, which takes a heartbeat.
      for (let round = 0; round < WARM_ROUNDS_MAX && ranOn.size < config.nodes.length; round++) {
        await Promise.all(Array.from({ length: 16 }, () => run('stamp')));
        if (ranOn.size < config.nodes.length) await new Promise((r) => setTimeout(r, 100));
      }
      if (ranOn.size < config.nodes.length) throw new Error(`only ${ranOn.size} of ${config.nodes.length} nodes ran a proc during warm-up; cold starts would include host starts`);

      // Remote placement without touching the scheduler: an LC reservation fills the leader's node, so
      // a BE proc asking for REMOTE_MCPU fits only elsewhere (BE procs of 0 mcpu still fit on the leader's).
      const leader = await leaderNode(bus);
      const filler = await fillNode(client, leader, config.nodes[0]!.mcpu);
      for (let i = 0; i < REMOTE_WARM_SPAWNS; i++) await run('stamp', REMOTE_MCPU);
      worker = await PoolWorker.start();
      for (let i = 0; i < POOL_WARM_TASKS; i++) {
        await worker.start(pool[coldCount + i]!, 'import');
        await worker.start(poolReq[coldCount + i]!, 'require');
      }

      // Interleaved, one of each in turn, so that load from elsewhere falls on all of them alike.
      const forkCount = ctx.quick ? 10 : 30;
      const forkEvery = Math.ceil(coldCount / forkCount);
      const bar = ctx.progress('cold start', coldCount);
      const cold: number[] = [];
      const remote: number[] = [];
      const pooled: number[] = [];
      const pooledReq: number[] = [];
      const forks: number[] = [];
      let coldOnLeader = 0;
      for (let i = 0; i < coldCount; i++) {
        const c = await run(`cold-${i}`);
        cold.push(c.startMs);
        if (c.node === leader) coldOnLeader++;
        const r = await run(`remote-${i}`, REMOTE_MCPU);
        if (r.node === leader || r.node === undefined) {
          const f = await client.proc(filler).catch(() => undefined);
          throw new BenchError(`remote-${i} ran on ${r.node}, the leader's node (${await leaderNode(bus).catch(() => '?')} now): the reservation filling it did not hold (the filler ${filler}: ${f === undefined ? 'no record' : `${f.state} on ${f.node}${f.status === undefined ? '' : `, ${f.status.kind}: ${f.status.message}`}`})`);
        }
        remote.push(r.startMs);
        pooled.push(await worker.start(pool[i]!, 'import'));
        pooledReq.push(await worker.start(poolReq[i]!, 'require'));
        if (i % forkEvery === 0) forks.push(await forkStart(script));
        bar.tick();
      }
      bar.done();
      worker.stop();
      await client.evict(filler);
      await client.waitExit(filler, { timeoutMs: START_TIMEOUT_MS });
      if ((await leaderNode(bus)) !== leader) throw new BenchError('the scheduler leader changed during the cold starts; run again');
      const deployed = await measureDeployed({ bus, dir, procTypes: PROC_TYPES, count: ctx.quick ? 5 : 20, run });
      const warm: number[] = [];
      for (let i = 0; i < (ctx.quick ? 50 : 200); i++) warm.push((await run('stamp')).startMs);

      // Closed loop at rising concurrency until throughput stops growing or latency turns up.
      const levels = ctx.quick ? [4, 16, 64] : [4, 16, 64, 256, 1024];
      const durationMs = ctx.quick ? 2_000 : 5_000;
      let best: { perS: number; p99: number; level: number; cpu?: CpuByRole & { total: number } } = { perS: 0, p99: 0, level: 0 };
      const tbar = ctx.progress('throughput levels', levels.length);
      for (const level of levels) {
        const lat: number[] = [];
        let done = 0;
        const deadline = wallMs() + durationMs;
        const cpu0 = treeCpuMs();
        const t0 = wallMs();
        await Promise.all(
          Array.from({ length: level }, async () => {
            while (wallMs() < deadline) {
              lat.push((await run('stamp')).startMs);
              done++;
            }
          }),
        );
        const perS = (done / (wallMs() - t0)) * 1000;
        const cpu = cpuUsPer(cpu0, treeCpuMs(), done);
        const p99 = percentile(lat, 99);
        ctx.log(`  concurrency ${level}: ${Math.round(perS)} procs/s, start p99 ${round(p99)} ms, CPU per spawn ${cpu === undefined ? '?' : `${cpu.total} µs (nats-server ${cpu.nats}, nodes ${cpu.nodes}, hosts ${cpu.hosts}, bench client ${cpu.bench})`}`);
        tbar.tick();
        if (perS > best.perS) best = { perS, p99, level, ...(cpu === undefined ? {} : { cpu }) };
        else break;
      }
      tbar.done();
      watch.stop();
      const coldP50 = median(cold);
      const forkP50 = median(forks);
      return {
        cold_start_p50_ms: round(coldP50, 3),
        cold_start_p99_ms: round(percentile(cold, 99), 3),
        // Of the cold starts above, how many ran on the leader's node (its orders skip NATS).
        cold_start_on_leader_share: round(coldOnLeader / coldCount, 2),
        cold_start_remote_p50_ms: round(median(remote), 3),
        cold_start_remote_p99_ms: round(percentile(remote, 99), 3),
        pool_p50_ms: round(median(pooled), 3),
        pool_p99_ms: round(percentile(pooled, 99), 3),
        pool_require_p50_ms: round(median(pooledReq), 3),
        pool_require_p99_ms: round(percentile(pooledReq, 99), 3),
        fork_p50_ms: round(forkP50, 3),
        warm_start_p50_ms: round(median(warm), 3),
        cold_start_deployed_p50_ms: round(median(deployed.coldMs), 3),
        deploy_ms: round(median(deployed.deployMs), 3),
        spawn_throughput_per_s: Math.round(best.perS),
        start_latency_p99_ms_at_peak: round(best.p99, 3),
        peak_concurrency: best.level,
        // CPU of the whole cluster and this client per spawn at the peak: every process shares the
        // machine's cores, so cores * 1e6 / cpu_us_per_spawn bounds the throughput on this machine.
        cpu_us_per_spawn: best.cpu?.total ?? null,
        cpu_us_per_spawn_nats: best.cpu?.nats ?? null,
        cpu_us_per_spawn_nodes: best.cpu?.nodes ?? null,
        cpu_us_per_spawn_hosts: best.cpu?.hosts ?? null,
        cpu_us_per_spawn_client: best.cpu?.bench ?? null,
        cpu_bound_spawns_per_s: best.cpu === undefined || best.cpu.total <= 0 ? null : Math.round((availableParallelism() * 1e6) / best.cpu.total),
        fork_vs_cold_start: round(forkP50 / coldP50),
        nodes: config.nodes.length,
      };
    } finally {
      worker?.stop();
      await bus.close();
      await cluster.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  },
};

/** The node whose process runs the elected scheduler (the lease's holder). */
async function leaderNode(bus: Awaited<ReturnType<typeof connectBus>>): Promise<string> {
  const e = await (await bus.kv(BUCKET.leader)).get(LEADER_KEY);
  const lease = e?.value == null ? undefined : (decodeJson(e.value) as LeaseRecord | undefined);
  if (lease === undefined || typeof lease.holder !== 'string' || lease.holder === '') throw new BenchError('no scheduler leader holds the lease');
  return lease.holder;
}

/**
 * Reserves all of `node`'s CPU with a long-running LC proc (sleep, until evicted) and returns its pid.
 * LC placement is best fit with ties broken by node id, so fillers are placed until one lands on `node`;
 * the others are evicted.
 */
async function fillNode(client: SigmaClient, node: string, mcpu: number): Promise<string> {
  const others: string[] = [];
  try {
    for (let i = 0; i < 64; i++) {
      const pid = await client.spawn({ program: 'sleep', lc: true, mcpu, dedicated: true });
      await client.waitStart(pid, { timeoutMs: START_TIMEOUT_MS });
      if ((await client.proc(pid))?.node === node) return pid;
      others.push(pid);
    }
    throw new BenchError(`no reservation landed on ${node}`);
  } finally {
    for (const pid of others) await client.evict(pid).catch(() => undefined);
  }
}
