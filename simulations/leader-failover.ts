import { LEADER } from '../src/sim/faults.js';
import type { Scenario } from '../src/sim/scenario.js';
import { burst, mixed, waitSome } from './lib.js';

/** The scheduler leader is cut off during a spawn storm and comes back later; a standby must take over. */
export default {
  name: 'leader-failover',
  description: 'the leader is partitioned away during a spawn storm, then heals; a node clock may drift',
  faults: (r, nodes) => [
    { kind: 'partition', atMs: r.int(50), durationMs: 4_000 + r.int(4_000), nodes: [LEADER] },
    ...(r.next() < 0.5 ? [{ kind: 'clock-skew' as const, atMs: r.int(2_000), durationMs: 5_000, node: nodes[r.int(nodes.length)]!, offsetMs: r.int(10_000), rate: 0.9 + r.next() * 0.2 }] : []),
  ],
  async workload(w) {
    const spec = mixed(w, { sleepMsMax: 200, lcRate: 0.2 });
    const first = await burst(w, 80, spec, 10_000, 2_000);
    // Spawns during the failover may be refused; the ones accepted must all finish.
    await w.ports.time.advance(9_000);
    const after = await burst(w, 30, spec, 15_000);
    await waitSome(w, [...first, ...after], 3);
  },
} satisfies Scenario;
