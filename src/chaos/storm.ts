/**
 * A spawn storm through the client, and the checks made afterwards against the JetStream proc table
 * and the nodes' own records of what ran (each proc's log: `hello` prints one line per run).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SPAWN_TIMEOUT_MS_DEFAULT, type SigmaClient } from '../client/client.js';
import type { ProcRecord } from '../control/protocol/index.js';
import { REALM, SPARE_REALM, type ChaosWorld } from './world.js';

export interface SpawnRecord {
  readonly key: string;
  readonly pid: string;
  readonly startMs: number;
  readonly endMs: number;
  /** undefined: accepted; else the error's type. */
  readonly failed?: string;
}

/** Spawns in flight at once. */
export const STORM_CONCURRENCY = 8;
/** Of those, how many spawn in the spare realm (removed at the end of every scenario: ./leftovers.ts). */
export const STORM_SPARE_WORKERS = 2;
/** How long a spawn keeps trying across a leader change: the client's default. */
export const STORM_SPAWN_TIMEOUT_MS = SPAWN_TIMEOUT_MS_DEFAULT;
/** After a failed spawn, the storm's worker pauses this long. */
const STORM_FAIL_PAUSE_MS = 100;
/** After the storm, how long accepted procs may take to reach a terminal status. */
export const SETTLE_MS = 60_000;
const SETTLE_POLL_MS = 500;
const READ_CONCURRENCY = 64;
const READ_ATTEMPTS_MAX = 5;
const READ_RETRY_MS = 500;

/**
 * Spawns `hello` with keys of our own (so a failed spawn's pid is known) until `until()` says stop;
 * STORM_SPARE_WORKERS of the workers spawn in the spare realm, the others in REALM.
 */
export async function spawnStorm(client: SigmaClient, keyPrefix: string, until: () => boolean, onAccepted?: (r: SpawnRecord) => void): Promise<SpawnRecord[]> {
  const out: SpawnRecord[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: STORM_CONCURRENCY }, async (_, worker) => {
      const realm = worker < STORM_SPARE_WORKERS ? SPARE_REALM : REALM;
      while (!until()) {
        const key = `${keyPrefix}${(next++).toString(36)}`;
        const pid = `${realm}.k_${key}`;
        const startMs = Date.now();
        try {
          await client.spawn({ program: 'hello', args: [key], realm }, { key, timeoutMs: STORM_SPAWN_TIMEOUT_MS });
          const r = { key, pid, startMs, endMs: Date.now() };
          out.push(r);
          onAccepted?.(r);
        } catch (e) {
          out.push({ key, pid, startMs, endMs: Date.now(), failed: (e as { type?: string }).type ?? (e as Error).name });
          // A failure that needed no I/O (a closed connection) must not make this a loop of microtasks
          // that starves every timer, the storm's own stop included (a run grew to 3.9 GB so).
          await new Promise((r) => setTimeout(r, STORM_FAIL_PAUSE_MS));
        }
      }
    }),
  );
  return out;
}

export interface Verdict {
  accepted: number;
  /** Accepted and no terminal status within SETTLE_MS: each as `pid [state on node, runs]`. */
  lost: string[];
  /** Ran more than once by the nodes' logs: each as `pid [machines that ran it]`. */
  runTwice: string[];
  /** Ran (or got a record) although its spawn was reported failed. */
  ghosts: string[];
  failed: SpawnRecord[];
  /**
   * Failed although a scheduler accepted a spawn sent after it, before it failed: a leader served
   * again within its deadline, and its own retries (every 2 s at most) should have found it (the
   * issue's `spawns_failed_in_failover`). The others failed with no scheduler serving for their whole
   * deadline, which the error says. (A spawn accepted just after a failed one started, but sent
   * before it, shows only that a leader served until the fault.)
   */
  failedInFailover: SpawnRecord[];
  /** Procs accepted whose terminal status is not ok (their node died: lost or crashed); allowed, counted. */
  notOk: number;
}

/** One record, read again after a failed read (a stream leader moving makes a burst of reads fail at once). */
async function readOne(client: SigmaClient, pid: string): Promise<ProcRecord | undefined> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await client.proc(pid);
    } catch (e) {
      if (attempt >= READ_ATTEMPTS_MAX) throw e;
      await new Promise((r) => setTimeout(r, READ_RETRY_MS));
    }
  }
}

/**
 * Reads the records of `pids` not yet known to be exited into `table`, READ_CONCURRENCY at a time:
 * by key, not by listing the table, which holds 100,000 procs of history in the scheduler scenario.
 */
export async function readRecords(client: SigmaClient, pids: readonly string[], table: Map<string, ProcRecord>): Promise<void> {
  const todo = pids.filter((pid) => table.get(pid)?.state !== 'exited');
  let next = 0;
  await Promise.all(
    Array.from({ length: READ_CONCURRENCY }, async () => {
      for (let i = next++; i < todo.length; i = next++) {
        const r = await readOne(client, todo[i]!).catch(() => table.get(todo[i]!));
        if (r !== undefined) table.set(r.pid, r);
      }
    }),
  );
}

/** How many times each machine's node logged the proc's run line. */
function runsOf(world: ChaosWorld, pid: string, machines = world.machines): number {
  let runs = 0;
  for (const m of machines) {
    const file = join(world.dirOf(m), 'logs', `${pid}.log`);
    if (existsSync(file)) runs += readFileSync(file, 'utf8').split('\n').filter((l) => l.includes(`hello from ${pid} `)).length;
  }
  return runs;
}

/** Which machines ran the proc, once per run (`m1 m1 m3`). */
function ranWhere(world: ChaosWorld, pid: string): string {
  return world.machines.flatMap((m) => Array<string>(runsOf(world, pid, [m])).fill(m.name)).join(' ');
}

/**
 * A lost proc with what tells why: its record's state and node, and how often it ran. Without a record,
 * one more read says whether the table has none or could not be read (two full runs had accepted
 * spawns with "no record" that had run once, and the verdict could not tell the two apart).
 */
async function describeLost(world: ChaosWorld, pid: string, r: ProcRecord | undefined): Promise<string> {
  const where =
    r !== undefined
      ? `${r.state}${r.node === undefined ? '' : ` on ${r.node}`}`
      : await world.client.proc(pid).then(
          (again) => (again === undefined ? 'no record (the table has none)' : `no record until a last read: ${again.state}`),
          (e: unknown) => `no record (unreadable: ${(e as Error).message})`,
        );
  return `${pid} [${where}, ran ${runsOf(world, pid)}x]`;
}

/** Waits for every accepted proc to be terminal (or SETTLE_MS), then checks the invariants. */
export async function check(world: ChaosWorld, records: readonly SpawnRecord[]): Promise<Verdict> {
  const accepted = records.filter((r) => r.failed === undefined);
  const deadline = Date.now() + SETTLE_MS;
  const table = new Map<string, ProcRecord>();
  const pids = records.map((r) => r.pid);
  for (;;) {
    await readRecords(world.client, pids, table);
    if (accepted.every((r) => table.get(r.pid)?.state === 'exited') || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, SETTLE_POLL_MS));
  }
  const failed = records.filter((r) => r.failed !== undefined);
  return {
    accepted: accepted.length,
    lost: await Promise.all(accepted.filter((r) => table.get(r.pid)?.state !== 'exited').map((r) => describeLost(world, r.pid, table.get(r.pid)))),
    runTwice: records.filter((r) => runsOf(world, r.pid) > 1).map((r) => `${r.pid} [${ranWhere(world, r.pid)}]`),
    ghosts: failed.filter((r) => table.has(r.pid) || runsOf(world, r.pid) > 0).map((r) => r.pid),
    failed,
    failedInFailover: failed.filter((f) => accepted.some((a) => a.startMs > f.startMs && a.endMs <= f.endMs)),
    notOk: accepted.filter((r) => table.get(r.pid)?.status !== undefined && table.get(r.pid)!.status!.kind !== 'ok').length,
  };
}
