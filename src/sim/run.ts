import type { ProcRecord } from '../control/protocol.js';
import { checkInvariants, traceHash, type RunResult, type Scenario } from './scenario.js';
import { simWorld, type World } from './world.js';

/** How long after the scenario's last fault the cluster gets to finish its work (liveness bound). */
export const SETTLE_MS = 30_000;

/**
 * Runs one scenario on one seed: a fresh world, the scenario, a settling period with faults healed,
 * then the invariants. The client's spawns are recorded so "every accepted spawn ends exactly once"
 * can be checked against the durable proc table.
 */
export async function runScenario(s: Scenario, seed: number): Promise<RunResult> {
  const w = await simWorld(seed, s.nodes === undefined ? {} : { nodes: s.nodes });
  const accepted = new Set<string>();
  const spawn = w.client.spawn.bind(w.client);
  w.client.spawn = async (spec, o) => {
    const pid = await spawn(spec, o);
    accepted.add(pid);
    return pid;
  };
  await w.ports.time.advance(3_000);
  await w.during(w.client.createRealm('default'), 5_000);
  await s.run(w);
  w.nats.down = false;
  for (const id of w.nodes.keys()) w.nats.partition(id, false);
  await w.ports.time.advance(SETTLE_MS);
  const records: ProcRecord[] = await w.during(w.client.ps({ all: true }), 5_000);
  const violations = checkInvariants(records, accepted);
  const trace = records.map((r) => `${r.pid} ${r.spec.program} ${r.node ?? '-'} ${r.state} ${r.status?.kind ?? '-'}`).sort();
  const events = w.ports.time.eventsExecuted;
  await stop(w);
  return { scenario: s.name, seed, violations, hash: traceHash([...trace, `events ${events}`]), events, records: records.length };
}

async function stop(w: World): Promise<void> {
  for (const n of w.nodes.values()) await w.during(n.stop(), 5_000);
}
