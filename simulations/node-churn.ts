import type { Scenario } from '../src/sim/scenario.js';
import { nemesis } from '../src/sim/faults.js';
import { burst, mixed, waitSome } from './lib.js';

/** Nodes crash and restart, hosts crash or hang, procs crash, clocks drift, while work keeps arriving. */
export default {
  name: 'node-churn',
  description: 'node crash/restart, host crash and hang, proc crash and clock skew under a steady load',
  faults: (r, nodes) =>
    nemesis(r, nodes, { kinds: ['node-crash', 'host-crash', 'host-crash', 'host-hang', 'proc-crash', 'clock-skew'], count: 4 + r.int(5), windowMs: 8_000, durationMsMin: 500, durationMsMax: 4_000 }),
  async workload(w) {
    const spec = mixed(w, { sleepMsMax: 2_000, lcRate: 0.2 });
    const pids: string[] = [];
    for (let wave = 0; wave < 5; wave++) {
      pids.push(...(await burst(w, 30, spec, 3_000, 2_000)));
      await w.ports.time.advance(1_000 + w.ports.random.int(1_000));
    }
    await waitSome(w, pids, 6, 15_000);
  },
} satisfies Scenario;
