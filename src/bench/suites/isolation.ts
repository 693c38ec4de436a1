import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createSystem } from '../../actors/index.js';
import { SigmaClient, untilScheduler } from '../../client/client.js';
import { startCluster, type RunningCluster } from '../../cluster/launcher.js';
import { defineCluster, type IsolationMode } from '../../config/cluster.js';
import { natsTransport } from '../../control/nats-transport.js';
import { ACTOR } from '../../control/protocol/index.js';
import { connectBus } from '../../nats/real.js';
import type { Bus } from '../../nats/types.js';
import { isolationStatus } from '../../node/sandbox/probe.js';
import { BenchError, median, round, type BenchContext, type Figures, type Suite } from '../harness.js';
import { ATTACK_COUNT, runAttacks } from './isolation-attacks.js';
import { hostPrewarmMs, noisyNeighbour, stampPrograms, startMs } from './isolation-costs.js';

const TRAVERSE_ONLY = 0o711;
const proc = (name: string): string => fileURLToPath(new URL(`../procs/${name}.js`, import.meta.url));

interface Running {
  cluster: RunningCluster;
  bus: Bus;
  client: SigmaClient;
  stop(): Promise<void>;
}

async function cluster(dir: string, isolation: IsolationMode, programs: Record<string, string>): Promise<Running> {
  const config = defineCluster({ nodes: 1, node: { mcpu: 2000, memMb: 8192, beSlots: 16 }, nats: { embedded: true, port: 0 }, dataDir: join(dir, `data-${isolation}`), realms: ['default'], isolation, programs });
  const c = await startCluster(config);
  const bus = await connectBus({ servers: [c.natsUrl], name: 'bench' });
  const client = await SigmaClient.connect(bus);
  await untilScheduler(() => client.createRealm('default'), { attempts: 100 });
  return { cluster: c, bus, client, stop: async () => (await bus.close(), await c.stop()) };
}

export const isolationSuite: Suite = {
  name: 'isolation',
  description: 'the walls between realms: attacks tried and blocked, what the sandbox costs, a noisy neighbour',
  comparisons: [
    { figure: 'host_prewarm_ms', baseline: 'host_prewarm_plain_ms', better: 'lower' },
    { figure: 'cold_start_sandboxed_p50_ms', baseline: 'cold_start_plain_p50_ms', better: 'lower' },
    { figure: 'noisy_p99_us', baseline: 'quiet_p99_us', better: 'lower' },
  ],
  goals: [
    { figure: 'attacks_blocked', op: '>=', target: 'attacks_tried' },
    { figure: 'cross_realm_leaks', op: '<=', target: 0 },
    { figure: 'sandbox_overhead_ms', op: '<=', target: 0.3 },
    { figure: 'noisy_neighbour_p99_ratio', op: '<=', target: 1.5 },
  ],
  async run(ctx: BenchContext): Promise<Figures> {
    const status = isolationStatus();
    if (!status.sandboxed) throw new BenchError(`proc hosts cannot be sandboxed here (${status.missing.join('; ')}): run as root on Linux with Landlock`);
    process.env['SIGMA_LOG'] ??= 'warn';
    const dir = mkdtempSync(join(tmpdir(), 'sigma-bench-isolation-'));
    chmodSync(dir, TRAVERSE_ONLY); // realm uids pass through to their directories and the programs
    const cold = ctx.quick ? 20 : 100;
    const programs = { ...stampPrograms(join(dir, 'programs'), cold), attacker: proc('attacker'), spinner: proc('spinner'), 'nn-caller': proc('nn-caller') };
    const plain = await cluster(dir, 'off', programs);
    const boxed = await cluster(dir, 'required', programs);
    try {
      // 1. The attacks, on the sandboxed cluster.
      for (const r of ['alpha', 'beta', 'noisy']) await boxed.client.createRealm(r);
      await boxed.client.createRealm('gamma', { quota: { diskMb: 8 } });
      const alpha = createSystem({ name: ACTOR.realmSystem('alpha', `bench-${process.pid}`), transport: natsTransport(boxed.bus) });
      const bar = ctx.progress('attacks', ATTACK_COUNT);
      const attacks = await runAttacks({ client: boxed.client, dataDir: boxed.cluster.dataDir, natsUrl: boxed.cluster.natsUrl, alpha }, () => bar.tick()).finally(() => alpha.shutdown());
      bar.done();
      for (const w of attacks.worked) ctx.log(`  ATTACK WORKED: ${w}`);

      // 2. Cold start with and without the sandbox, interleaved (both realm hosts warm first).
      for (const c of [plain, boxed]) for (let i = 0; i < 5; i++) await startMs(c.client, 'stamp');
      const times = { off: [] as number[], required: [] as number[] };
      const cbar = ctx.progress('cold starts', cold * 2);
      for (let i = 0; i < cold; i++) {
        const order = i % 2 === 0 ? ([['off', plain], ['required', boxed]] as const) : ([['required', boxed], ['off', plain]] as const);
        for (const [mode, c] of order) {
          times[mode].push(await startMs(c.client, `cold-${i}`));
          cbar.tick();
        }
      }
      cbar.done();
      const coldPlain = median(times.off);
      const coldBoxed = median(times.required);

      // 3. A host from fork to ready.
      const hosts = ctx.quick ? 8 : 30;
      const prewarmBoxed = await hostPrewarmMs(join(dir, 'prewarm'), true, hosts);
      const prewarmPlain = await hostPrewarmMs(join(dir, 'prewarm'), false, hosts);

      // 4. The noisy neighbour, on the sandboxed cluster.
      const nn = await noisyNeighbour(boxed.client, ctx.quick ? 2_000 : 10_000);
      return {
        attacks_tried: attacks.attacks_tried,
        attacks_blocked: attacks.attacks_blocked,
        cross_realm_leaks: attacks.cross_realm_leaks,
        cold_start_sandboxed_p50_ms: round(coldBoxed, 3),
        cold_start_plain_p50_ms: round(coldPlain, 3),
        sandbox_overhead_ms: round(coldBoxed - coldPlain, 3),
        host_prewarm_ms: round(prewarmBoxed, 2),
        host_prewarm_plain_ms: round(prewarmPlain, 2),
        quiet_p50_us: round(nn.quiet.p50Us, 1),
        quiet_p99_us: round(nn.quiet.p99Us, 1),
        noisy_p50_us: round(nn.noisy.p50Us, 1),
        noisy_p99_us: round(nn.noisy.p99Us, 1),
        // The direction: > 1 means the neighbour slowed the service down.
        noisy_neighbour_p99_ratio: round(nn.noisy.p99Us / nn.quiet.p99Us, 2),
      };
    } finally {
      await boxed.stop();
      await plain.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
