import type { Scenario } from '../src/sim/scenario.js';
import { burst, mixed, waitSome } from './lib.js';

/**
 * One JetStream server is cut off from the other two for seconds while work arrives in waves: its
 * clients (a node, or the spawning client) stay connected to it but it commits nothing and answers KV
 * gets from its own stale replica; core messages to the other side do not cross.
 */
export default {
  name: 'js-minority',
  description: 'a JetStream server partitioned into a minority (stale reads, no writes) under waves of spawns',
  cluster: true,
  faults: (r) => [{ kind: 'nats-server-partition', atMs: r.int(1_500), durationMs: 3_000 + r.int(9_000), server: `s${1 + r.int(3)}` }],
  async workload(w) {
    const spec = mixed(w, { sleepMsMax: 1_500, lcRate: 0.2 });
    const pids: string[] = [];
    for (let wave = 0; wave < 5; wave++) {
      pids.push(...(await burst(w, 30, spec, 12_000, 10_000)));
      await w.ports.time.advance(1_500 + w.ports.random.int(1_000));
    }
    await waitSome(w, pids, 5, 30_000);
  },
} satisfies Scenario;
