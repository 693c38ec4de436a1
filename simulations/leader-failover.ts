import type { Scenario } from '../src/sim/scenario.js';
import { BUCKET, decodeJson, type LeaseRecord } from '../src/control/protocol.js';

/** The scheduler leader loses NATS during a spawn storm; a standby must take over. */
export default {
  name: 'leader-failover',
  description: 'the leader is partitioned away during a spawn storm',
  async run(w) {
    const r = w.ports.random;
    const lease = await w.during(w.client.bus.kv(BUCKET.leader), 1_000);
    const e = await w.during(lease.get('scheduler'), 1_000);
    const leader = e?.value == null ? undefined : (decodeJson(e.value) as LeaseRecord).holder;
    const storm = Promise.allSettled(Array.from({ length: 80 }, () => w.client.spawn({ program: 'sleep', args: [r.int(200)] }, { timeoutMs: 2_000 })));
    await w.ports.time.advance(r.int(50));
    if (leader !== undefined) w.nats.partition(leader);
    await w.during(storm, 10_000);
    // Spawns during the failover may be refused; the ones accepted must all finish.
    await w.during(Promise.allSettled(Array.from({ length: 20 }, () => w.client.spawn({ program: 'noop' }, { timeoutMs: 5_000 }))), 15_000);
  },
} satisfies Scenario;
