import { fork } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SigmaClient, untilScheduler } from '../../client/client.js';
import { startCluster } from '../../cluster/launcher.js';
import { defineCluster } from '../../config/cluster.js';
import { BUCKET, decodeProcRecord } from '../../control/protocol/index.js';
import { hostEnv } from '../../node/host-process.js';
import { connectBus } from '../../nats/real.js';
import { median, percentile, round, type BenchContext, type Figures, type Suite } from '../harness.js';
import { cpuUsPer, treeCpuMs, type CpuByRole } from './spawn-cpu.js';
import { measureDeployed } from './spawn-deployed.js';
import { availableParallelism } from 'node:os';

/** mkdtemp makes 0700 directories; realm uids need to pass through to the programs. */
const TRAVERSE_ONLY = 0o711;

const PROC_TYPES = fileURLToPath(new URL('../../proc/types.js', import.meta.url));

/** A function proc whose first line stamps the wall clock (µs precision, same clock in every process). */
const stampProgram = (): string => `import { FunctionProc } from ${JSON.stringify(PROC_TYPES)};
export default class Stamp extends FunctionProc {
  run() { return performance.timeOrigin + performance.now(); }
}
`;
/** Warm-up bursts before giving up on reaching every node. */
const WARM_ROUNDS_MAX = 50;
const wallMs = (): number => performance.timeOrigin + performance.now();

/** The same first line as a plain script started with child_process.fork: the baseline. */
const forkScript = `process.send(performance.timeOrigin + performance.now()); process.disconnect();\n`;

async function forkStart(script: string): Promise<number> {
  const t0 = wallMs();
  const child = fork(script, [], { env: hostEnv(process.env, {}), execArgv: [], stdio: ['ignore', 'ignore', 'ignore', 'ipc'] });
  const first = await new Promise<number>((r) => child.once('message', (m) => r(m as number)));
  await new Promise((r) => child.once('exit', r));
  return first - t0;
}

export const spawnSuite: Suite = {
  name: 'spawn',
  description: 'procs through the real control plane: cold and warm start, fork baseline, throughput',
  async run(ctx: BenchContext): Promise<Figures> {
    const dir = mkdtempSync(join(tmpdir(), 'sigma-bench-'));
    chmodSync(dir, TRAVERSE_ONLY); // sandboxed hosts (a uid per realm) load the programs from here
    // The programs are ES modules in an ESM package, as a user's would be: without "type": "module",
    // Node 20 compiles each .js first as CommonJS to detect its format (about 0.1-0.3 ms per load).
    writeFileSync(join(dir, 'package.json'), '{ "type": "module", "private": true }\n');
    const coldCount = ctx.quick ? 20 : 100;
    const programs: Record<string, string> = {};
    for (let i = 0; i < coldCount; i++) {
      programs[`cold-${i}`] = join(dir, `cold-${i}.js`);
      writeFileSync(programs[`cold-${i}`]!, stampProgram());
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
    try {
      await untilScheduler(() => client.createRealm('default'), { attempts: 102 });
      // Completion by one watch over the whole proc table, not one watch per proc.
      // An exit may be seen before spawn() has resolved with its pid: such early exits are kept
      // (bounded by the procs in flight) instead of reading each record back.
      const exits = new Map<string, (data: unknown) => void>();
      const early = new Map<string, unknown>();
      const ranOn = new Set<string>(); // nodes that have run a proc, hence have the realm's host up
      const watch = await (await bus.kv(BUCKET.procs)).watch({});
      void (async () => {
        for await (const e of watch) {
          const r = e.value === null ? undefined : decodeProcRecord(e.value);
          if (r?.state !== 'exited') continue;
          if (r.node !== undefined) ranOn.add(r.node);
          const waiter = exits.get(r.pid);
          if (waiter !== undefined) waiter(r.status?.data);
          else early.set(r.pid, r.status?.data);
        }
      })();
      const run = async (program: string): Promise<{ startMs: number }> => {
        const t0 = wallMs();
        const pid = await client.spawn({ program });
        let first: number;
        if (early.has(pid)) first = early.get(pid) as number;
        else first = (await new Promise<unknown>((r) => exits.set(pid, r))) as number;
        early.delete(pid);
        exits.delete(pid);
        return { startMs: first - t0 };
      };

      // Warm every node's realm host (σOS measures cold start with the realm's container up): a
      // burst spreads over the nodes once all of them have offered slots, which takes a heartbeat.
      for (let round = 0; round < WARM_ROUNDS_MAX && ranOn.size < config.nodes.length; round++) {
        await Promise.all(Array.from({ length: 16 }, () => run('stamp')));
        if (ranOn.size < config.nodes.length) await new Promise((r) => setTimeout(r, 100));
      }
      if (ranOn.size < config.nodes.length) throw new Error(`only ${ranOn.size} of ${config.nodes.length} nodes ran a proc during warm-up; cold starts would include host starts`);
      const bar = ctx.progress('cold start', coldCount);
      const cold: number[] = [];
      for (let i = 0; i < coldCount; i++) {
        cold.push((await run(`cold-${i}`)).startMs);
        bar.tick();
      }
      bar.done();
      const deployed = await measureDeployed({ bus, dir, procTypes: PROC_TYPES, count: ctx.quick ? 5 : 20, run });
      const warm: number[] = [];
      for (let i = 0; i < (ctx.quick ? 50 : 200); i++) warm.push((await run('stamp')).startMs);
      const forks: number[] = [];
      for (let i = 0; i < (ctx.quick ? 10 : 30); i++) forks.push(await forkStart(script));

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
      await bus.close();
      await cluster.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
