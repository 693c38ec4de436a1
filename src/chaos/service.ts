/**
 * The service scenario's fault: named `echo` services (restart: always) called by name through the data
 * path while the machine running the most of them dies (its node and NATS server, kill -9). Each one's
 * recovery is the time from the kill to its first answer by name again, from wherever it was restarted.
 * Harness code: real time.
 */
import type { SeededRandom } from '../ports/random.js';
import type { LabMachine } from './lab.js';
import { REALM, type ChaosWorld } from './world.js';

/** Services started before the fault: enough that every machine runs some. */
export const SERVICES = 9;
/** How often each service is called while it recovers, and how long one call may take. */
export const PROBE_EVERY_MS = 100;
export const PROBE_TIMEOUT_MS = 1_000;
/** Bound on a service answering again (at first start, or after the fault). */
export const SERVICE_WAIT_MS = 60_000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Calls `name` until it answers (`ok`), or SERVICE_WAIT_MS has passed: the time it answered, else undefined. */
async function untilAnswers(world: ChaosWorld, name: string): Promise<number | undefined> {
  const deadline = Date.now() + SERVICE_WAIT_MS;
  while (Date.now() < deadline) {
    const answer = await world.client.dataPathCall(name, 'ping', { realm: REALM, timeoutMs: PROBE_TIMEOUT_MS }).catch(() => undefined);
    if (answer === 'ping') return Date.now();
    await sleep(PROBE_EVERY_MS);
  }
  return undefined;
}

/** The node each named service runs on, by the names bucket. */
async function placement(world: ChaosWorld, names: readonly string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const r of await world.client.names(REALM)) if (names.includes(r.name) && r.node !== undefined) out.set(r.name, r.node);
  return out;
}

export interface ServiceFault {
  victim: LabMachine;
  /** Seconds from the kill to each affected service's first answer again (missing: it never answered). */
  recoveryS: number[];
  /** Affected services that did not answer within SERVICE_WAIT_MS. */
  unrecovered: string[];
}

/** Starts the services, kills the machine running most of them, and measures each one's way back. */
export async function killServiceMachine(world: ChaosWorld, rng: SeededRandom, log: (line: string) => void, kill: (m: LabMachine) => void): Promise<ServiceFault> {
  const names = Array.from({ length: SERVICES }, (_, i) => `svc${i}`);
  for (const name of names) await world.client.spawn({ program: 'echo', name, realm: REALM, restart: 'always' });
  const ready = await Promise.all(names.map((n) => untilAnswers(world, n)));
  if (ready.some((t) => t === undefined)) throw new Error(`services did not answer within ${SERVICE_WAIT_MS} ms of their start`);
  const where = await placement(world, names);
  const load = (m: LabMachine): number => names.filter((n) => where.get(n) === world.nodeId(m)).length;
  const most = Math.max(...world.machines.map(load));
  const candidates = world.machines.filter((m) => load(m) === most);
  const victim = candidates[rng.int(candidates.length)]!;
  const affected = names.filter((n) => where.get(n) === world.nodeId(victim));
  const t0 = Date.now();
  kill(victim);
  log(`kill -9 of machine ${victim.name}, which ran ${affected.join(' ')}`);
  await sleep(2 * PROBE_EVERY_MS); // no call may reach the dying node before it is gone
  const back = await Promise.all(affected.map((n) => untilAnswers(world, n)));
  const recoveryS = back.flatMap((t) => (t === undefined ? [] : [(t - t0) / 1000]));
  log(`services answer again by name after ${recoveryS.map((s) => s.toFixed(2)).join(' ')} s`);
  return { victim, recoveryS, unrecovered: affected.filter((_, i) => back[i] === undefined) };
}
