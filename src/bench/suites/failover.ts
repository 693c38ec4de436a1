import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SigmaClient, untilScheduler } from '../../client/client.js';
import { startCluster } from '../../cluster/launcher.js';
import { defineCluster } from '../../config/cluster.js';
import { BUCKET, decodeJson, type LeaseRecord } from '../../control/protocol/index.js';
import { fillHistory } from '../history.js';
import { connectBus } from '../../nats/real.js';
import type { Bus } from '../../nats/types.js';
import { DEFAULT_TIMING } from '../../node/node.js';
import { ProcTable } from '../../control/proc-table.js';
import { round, type BenchContext, type Figures, type Suite } from '../harness.js';

const monoMs = (): number => Number(process.hrtime.bigint()) / 1e6;

async function leader(bus: Bus): Promise<string | undefined> {
  const e = await (await bus.kv(BUCKET.leader)).get('scheduler');
  return e?.value == null ? undefined : (decodeJson(e.value) as LeaseRecord).holder;
}

/**
 * kill -9 of the leader's node process to the first spawn its successor accepts, in seconds; and how
 * long reading the whole table takes (what a recovery did before the live index).
 */
async function failoverS(history: number, ctx: BenchContext): Promise<{ failoverS: number; scanS: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'sigma-bench-failover-'));
  const cluster = await startCluster(defineCluster({ nodes: 3, nats: { embedded: true, port: 0 }, dataDir: join(dir, 'data'), realms: ['default'] }));
  const bus = await connectBus({ servers: [cluster.natsUrl], name: 'bench' });
  const client = await SigmaClient.connect(bus);
  try {
    await untilScheduler(() => client.createRealm('default'), { attempts: 100 });
    await client.waitExit(await client.spawn({ program: 'hello' }));
    if (history > 0) {
      const bar = ctx.progress(`history (${history} exited procs)`, history);
      await fillHistory(bus, 'default', history, (n) => bar.tick(n));
      bar.done();
    }
    const scan0 = monoMs();
    await new ProcTable(await bus.kv(BUCKET.procs)).list();
    const scanS = (monoMs() - scan0) / 1000;
    const holder = (await leader(bus))!;
    const t0 = monoMs();
    cluster.nodes.get(holder)!.kill('SIGKILL');
    await client.spawn({ program: 'hello' }, { timeoutMs: 120_000 });
    const s = (monoMs() - t0) / 1000;
    ctx.log(`  ${history} exited procs: failover ${round(s, 2)} s (leader ${holder} killed); reading the whole table: ${round(scanS, 2)} s`);
    return { failoverS: s, scanS };
  } finally {
    await bus.close();
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

export const failoverSuite: Suite = {
  name: 'failover',
  description: 'kill -9 of the scheduler leader to the first spawn its successor accepts, with and without a long history in the proc table',
  comparisons: [{ figure: 'failover_s', baseline: 'failover_empty_s', better: 'lower' }],
  goals: [{ figure: 'failover_s', op: '<=', target: 'failover_goal_s' }],
  async run(ctx: BenchContext): Promise<Figures> {
    process.env['SIGMA_LOG'] ??= 'warn';
    const history = ctx.quick ? 10_000 : 100_000;
    const empty = await failoverS(0, ctx);
    const full = await failoverS(history, ctx);
    return {
      failover_s: round(full.failoverS, 3),
      failover_history_procs: history,
      failover_empty_s: round(empty.failoverS, 3),
      // What recovering from the whole table would add on top (the scheduler reads the live index instead).
      table_scan_s: round(full.scanS, 3),
      lease_ttl_s: DEFAULT_TIMING.leaseTtlMs / 1000,
      // The goal: within two lease TTLs.
      failover_goal_s: (2 * DEFAULT_TIMING.leaseTtlMs) / 1000,
    };
  },
};
