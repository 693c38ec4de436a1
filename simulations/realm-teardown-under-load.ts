import type { Scenario } from '../src/sim/scenario.js';
import { burst, mixed } from './lib.js';

/** A tenant is removed while its procs (functions and named services) run and more spawns arrive. */
export default {
  name: 'realm-teardown-under-load',
  description: 'a realm with running functions and named services is removed under load, with proc crashes and a slow link',
  faults: (r, nodes) => [
    { kind: 'proc-crash', atMs: r.int(1_000), node: nodes[r.int(nodes.length)]!, pick: r.int(1000) },
    { kind: 'net', atMs: r.int(500), durationMs: 2_000 + r.int(2_000), node: nodes[r.int(nodes.length)]!, faults: { delayMs: r.int(10), jitterMs: r.int(20), dropRate: 0.05, duplicateRate: 0.05 } },
  ],
  async workload(w) {
    // An operator retries a creation whose request or reply was lost (the realm then exists already).
    const create = async (): Promise<void> => {
      for (let i = 0; ; i++) {
        const e = await w.client.createRealm('tenant').then(() => undefined, (err: unknown) => err);
        if (e === undefined || (e as { type?: string }).type === 'realm-exists' || i === 4) return;
      }
    };
    await w.during(create(), 30_000);
    const load = burst(w, 40, mixed(w, { sleepMsMax: 3_000, lcRate: 0.2, realm: 'tenant' }), 10_000);
    const services = Promise.allSettled(Array.from({ length: 4 }, (_, i) => w.client.spawn({ program: 'counter', realm: 'tenant', name: `svc-${i}` }, { timeoutMs: 5_000 })));
    const other = burst(w, 30, mixed(w, { sleepMsMax: 1_000 }), 10_000);
    await w.ports.time.advance(300 + w.ports.random.int(1_500));
    // An operator retries a removal whose request or reply was lost.
    const removal = (async () => {
      for (let i = 0; i < 3; i++) if (await w.client.removeRealm('tenant', { timeoutMs: 8_000 }).then(() => true, () => false)) return;
    })();
    // Spawns into the realm while it goes away: refused or accepted-and-evicted, never left behind.
    const late = burst(w, 10, mixed(w, { sleepMsMax: 500, realm: 'tenant' }), 5_000);
    await w.during(Promise.allSettled([load, services, other, late, removal]), 25_000);
  },
} satisfies Scenario;
