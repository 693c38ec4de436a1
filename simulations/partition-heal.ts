import type { Scenario } from '../src/sim/scenario.js';
import { burst, mixed, waitSome } from './lib.js';

/** One or two nodes lose NATS mid-run and come back; sometimes the whole server blinks. */
export default {
  name: 'partition-heal',
  description: 'nodes lose NATS mid-run and come back; NATS itself may be briefly unavailable',
  faults(r, nodes) {
    const cut = nodes.filter(() => r.next() < 0.3);
    const faults = [{ kind: 'partition' as const, atMs: 200 + r.int(500), durationMs: 1_000 + r.int(6_000), nodes: cut.length > 0 ? cut : [nodes[r.int(nodes.length)]!] }];
    return r.next() < 0.3 ? [...faults, { kind: 'nats-down' as const, atMs: 3_000 + r.int(3_000), durationMs: 200 + r.int(1_500) }] : faults;
  },
  async workload(w) {
    const spec = mixed(w, { sleepMsMax: 4_000, lcRate: 0.2 });
    const pids = await burst(w, 60, spec, 10_000);
    await w.ports.time.advance(2_000);
    pids.push(...(await burst(w, 30, spec, 10_000)));
    await waitSome(w, pids, 4);
  },
} satisfies Scenario;
