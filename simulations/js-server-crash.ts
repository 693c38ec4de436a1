import { STORE_LEADER } from '../src/sim/faults.js';
import type { Scenario } from '../src/sim/scenario.js';
import { burst, mixed, trickle, waitSome } from './lib.js';

/**
 * The replicated JetStream loses a server during a spawn storm: the one leading the proc table, killed
 * -9 and restarted seconds later, sometimes another one after it (briefly no quorum at all when the two
 * overlap). Its clients reconnect elsewhere; the table has no leader for an election timeout (4-9 s).
 */
export default {
  name: 'js-server-crash',
  description: 'a spawn storm on three JetStream servers while the proc table\'s leader server dies and comes back',
  cluster: true,
  faults: (r) => [
    { kind: 'nats-server-crash', atMs: 100 + r.int(400), durationMs: 2_000 + r.int(10_000), server: `${STORE_LEADER}KV_sigma_procs` },
    ...(r.next() < 0.4 ? [{ kind: 'nats-server-crash' as const, atMs: 3_000 + r.int(8_000), durationMs: 1_000 + r.int(5_000), server: `s${1 + r.int(3)}` }] : []),
  ],
  async workload(w) {
    const spec = mixed(w, { sleepMsMax: 400, failRate: 0.15, lcRate: 0.2 });
    const pids = await burst(w, 80 + w.ports.random.int(60), spec, 20_000, 10_000);
    pids.push(...(await trickle(w, 60, 150, spec, 10_000)));
    await waitSome(w, pids, 4, 30_000);
  },
} satisfies Scenario;
