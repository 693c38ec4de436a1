import type { Scenario } from '../src/sim/scenario.js';
import { LEADER } from '../src/sim/faults.js';
import { burst, mixed, trickle, waitSome } from './lib.js';

/**
 * JetStream answers slowly for some nodes (the leader among them) while work arrives. Delays stay
 * inside the lease's margin (renew every 500 ms, TTL 3 s): past it, a leader whose renewal hangs keeps
 * acting after its lease lapsed — a known lease bug the 'one-scheduler' invariant catches (the
 * test.failing case in test/sim-invariants.test.ts, and some partition-heal seeds), being fixed on main.
 */
export default {
  name: 'slow-kv',
  description: 'slow JetStream/KV for the leader and other nodes during a spawn storm',
  faults: (r, nodes) => [
    { kind: 'slow-kv', atMs: r.int(300), durationMs: 2_000 + r.int(4_000), node: LEADER, delayMs: 20 + r.int(180) },
    ...Array.from({ length: 1 + r.int(3) }, () => ({ kind: 'slow-kv' as const, atMs: r.int(4_000), durationMs: 500 + r.int(3_000), node: nodes[r.int(nodes.length)]!, delayMs: 20 + r.int(180) })),
  ],
  async workload(w) {
    const spec = mixed(w, { sleepMsMax: 500, lcRate: 0.2 });
    const pids = await burst(w, 60, spec, 15_000);
    pids.push(...(await trickle(w, 100, 80, spec)));
    await waitSome(w, pids, 4);
  },
} satisfies Scenario;
