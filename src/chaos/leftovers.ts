/**
 * Checks made after every scenario, once its storm and callers are done: every buffer returned (each
 * node's realm pools whole once the run is quiet, by the node's `datapath-status`), and a removed realm
 * empty (the spare realm, used by the storm, removed: no live record of it in the proc table's live
 * index nor among the run's records of it, no name, no realm record, no node holding its pool or a
 * host of it). Harness code: real time.
 */
import { spawnSync } from 'node:child_process';
import type { ProcRecord } from '../control/protocol/index.js';
import type { DataPathStatus } from '../datapath/status.js';
import { untilScheduler } from '../client/client.js';
import { readRecords } from './storm.js';
import type { ChaosWorld } from './world.js';

/** How long a quiet run's pools may take to be whole (lingering endpoints, credits, frees in flight). */
export const BUFFERS_QUIET_MS = 15_000;
/** How long a removed realm's remains may take to go (hosts retiring, pools unmapped). */
export const REMOVED_QUIET_MS = 15_000;
const POLL_MS = 500;
const STATUS_TIMEOUT_MS = 5_000;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Each node's data-path status (an error's message for one that did not answer). */
async function statuses(world: ChaosWorld): Promise<Map<string, DataPathStatus | string>> {
  const ids = world.machines.map((m) => world.nodeId(m));
  const all = await Promise.all(ids.map((id) => world.client.dataPathStatus(id, { timeoutMs: STATUS_TIMEOUT_MS }).catch((e: unknown) => (e as Error).message)));
  return new Map(ids.map((id, i) => [id, all[i]!]));
}

/** Polls `find` until it finds nothing or `quietMs` has passed: what it found last. */
async function untilNone(quietMs: number, find: () => Promise<string[]>): Promise<string[]> {
  const deadline = Date.now() + quietMs;
  for (;;) {
    const found = await find();
    if (found.length === 0 || Date.now() > deadline) return found;
    await sleep(POLL_MS);
  }
}

/** Pools not whole on a node once the run is quiet: `node realm: N bytes in use`, or a node that gave no status. */
export function buffersLeaked(world: ChaosWorld): Promise<string[]> {
  return untilNone(BUFFERS_QUIET_MS, async () => {
    const out: string[] = [];
    for (const [node, st] of await statuses(world)) {
      if (typeof st === 'string') out.push(`${node}: no status (${st})`);
      else for (const [realm, p] of Object.entries(st.pools)) if (p.bytesUsed !== 0) out.push(`${node} ${realm}: ${p.bytesUsed} bytes in use`);
    }
    return out;
  });
}

/** The node's host processes as `pid/uid/age s` (a realm's hosts run as its uid): evidence for a pool left behind. */
function hostProcesses(world: ChaosWorld, node: string): string {
  const pid = world.nodePid(world.machineOf(node));
  if (pid === undefined) return 'unknown (no node process)';
  const r = spawnSync('ps', ['--ppid', String(pid), '-o', 'pid=,uid=,etimes='], { encoding: 'utf8' });
  return r.stdout.trim().split('\n').filter((l) => l.trim() !== '').map((l) => l.trim().split(/\s+/).join('/')).join(' ') || 'none';
}

/** A realm removal tried while no scheduler answers: 30 s. */
const REMOVE_ATTEMPTS_MAX = 120;
const REMOVE_RETRY_MS = 250;

/**
 * Removes `realm` and lists what is left of it once REMOVED_QUIET_MS has passed (nothing, if all is
 * well). `pids`: procs of the realm the run spawned, whose records are read by key (listing a table
 * of 100,000 procs of history, as the scheduler scenario's, is too slow).
 */
export async function removedRealmLeftovers(world: ChaosWorld, realm: string, pids: readonly string[]): Promise<string[]> {
  // Tried again while no scheduler answers, as a user would (the removal may fall in a failover: a CI
  // run's came right after the paused scheduler's successor took over); a retry that finds the realm
  // gone means an earlier attempt removed it and its answer was lost.
  let attempt = 0;
  const remove = async (): Promise<void> => {
    attempt++;
    await world.client.removeRealm(realm).catch((e: unknown) => {
      if (attempt > 1 && (e as { type?: string }).type === 'unknown-realm') return;
      throw e;
    });
  };
  try {
    await untilScheduler(remove, { attempts: REMOVE_ATTEMPTS_MAX, delayMs: REMOVE_RETRY_MS });
  } catch (e) {
    return [`removing realm ${realm} failed: ${(e as Error).message}`];
  }
  return untilNone(REMOVED_QUIET_MS, async () => {
    const out: string[] = [];
    for (const r of await world.client.ps({ realm }).catch((): ProcRecord[] => [])) out.push(`${r.pid} in the live index (${r.state})`);
    for (const n of await world.client.names(realm).catch(() => [])) out.push(`name ${n.name} -> ${n.pid}`);
    if ((await world.client.realms().catch((): string[] => [])).includes(realm)) out.push(`realm record ${realm}`);
    for (const [node, st] of await statuses(world)) {
      if (typeof st === 'string') out.push(`${node}: no status (${st})`);
      else if (Object.hasOwn(st.pools, realm)) out.push(`${node}: pool of ${realm} (${st.pools[realm]!.hosts} hosts, ${st.pools[realm]!.bytesUsed} bytes in use; host processes ${hostProcesses(world, node)})`);
    }
    if (out.length > 0) return out;
    // The run's own procs of the realm, by key, once the rest is clean.
    const table = new Map<string, ProcRecord>();
    await readRecords(world.client, pids, table);
    for (const r of table.values()) if (r.state !== 'exited') out.push(`${r.pid} ${r.state}${r.node === undefined ? '' : ` on ${r.node}`}`);
    return out;
  });
}
