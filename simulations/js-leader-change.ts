import { STORE_LEADER } from '../src/sim/faults.js';
import type { Scenario } from '../src/sim/scenario.js';
import { mixed, trickle, waitSome } from './lib.js';

/**
 * Leader changes under a steady trickle of spawns, so writes are always in flight when a leader goes:
 * the proc table's and the scheduler lease's leader servers are each cut off (or killed) for a moment.
 * Writes the old leader had replicated land without an acknowledgement (the writer timed out; the
 * write is there); the others are lost; calls during the election are refused.
 */
export default {
  name: 'js-leader-change',
  description: 'the proc table\'s and the lease\'s JetStream leaders change while spawns are in flight (acks lost, writes refused)',
  cluster: true,
  faults: (r) =>
    [`${STORE_LEADER}KV_sigma_procs`, `${STORE_LEADER}KV_sigma_leader`, `${STORE_LEADER}KV_sigma_live`].map((server, i) => ({
      kind: r.next() < 0.5 ? ('nats-server-partition' as const) : ('nats-server-crash' as const),
      atMs: 200 + i * 4_000 + r.int(2_000),
      durationMs: 300 + r.int(2_500),
      server,
    })),
  async workload(w) {
    const spec = mixed(w, { sleepMsMax: 300, lcRate: 0.2 });
    const pids = await trickle(w, 200, 70, spec, 10_000);
    await waitSome(w, pids, 3, 30_000);
  },
} satisfies Scenario;
