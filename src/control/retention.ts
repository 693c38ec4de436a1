import type { Logger } from 'pino';
import type { Clock, Timers } from '../ports/types.js';
import { INDEX_COMPLETE, type ProcTable } from './proc-table.js';

/** How long exited procs stay in the table: per realm, the newest `maxPerRealm`, none older than `maxAgeMs`. */
export interface Retention {
  maxAgeMs: number;
  maxPerRealm: number;
  /** Between two sweeps. */
  sweepEveryMs: number;
}

export const RETENTION_DEFAULT: Retention = { maxAgeMs: 7 * 86_400_000, maxPerRealm: 100_000, sweepEveryMs: 60_000 };

/** An exited record the sweeper has read: its realm and when it was created (what its age counts from). */
interface Seen {
  realm: string;
  atMs: number;
}

/**
 * One sweep: every key of the table that the live index does not hold is a candidate; records read
 * once are remembered (`seen`), so a sweep costs one key listing plus the records that are new. Only a
 * record read as exited goes (exited is terminal: a live proc can never be removed). Returns how many
 * records left the table.
 */
export async function sweep(table: ProcTable, nowMs: number, r: Retention, seen: Map<string, Seen>): Promise<number> {
  const live = new Set(table.live === undefined ? [] : await table.live.keys());
  const keys = new Set(await table.kv.keys());
  for (const pid of seen.keys()) if (!keys.has(pid)) seen.delete(pid);
  for (const pid of keys) {
    if (live.has(pid) || pid === INDEX_COMPLETE || seen.has(pid)) continue;
    const cur = await table.get(pid).catch(() => undefined);
    if (cur?.record.state === 'exited') seen.set(pid, { realm: cur.record.spec.realm, atMs: cur.record.createdAtMs });
  }
  const byRealm = new Map<string, Array<[string, Seen]>>();
  for (const e of seen) {
    const list = byRealm.get(e[1].realm);
    if (list === undefined) byRealm.set(e[1].realm, [e]);
    else list.push(e);
  }
  let removed = 0;
  for (const entries of byRealm.values()) {
    entries.sort((a, b) => b[1].atMs - a[1].atMs); // newest first
    for (const [i, [pid, s]] of entries.entries()) {
      if (i < r.maxPerRealm && nowMs - s.atMs <= r.maxAgeMs) continue;
      await table.kv.purge(pid);
      seen.delete(pid);
      removed++;
    }
  }
  return removed;
}

/** Sweeps every `sweepEveryMs` until stopped (the leader runs one; its writes are fenced with it). */
export function startRetention(table: ProcTable, ports: { timers: Timers; clock: Clock }, r: Retention, log: Logger): { stop(): void } {
  const seen = new Map<string, Seen>();
  let stopped = false;
  let timer: { cancel(): void } | undefined;
  const next = (): void => {
    if (stopped) return;
    timer = ports.timers.setTimeout(() => {
      sweep(table, ports.clock.nowMs(), r, seen).then(
        (n) => n > 0 && log.info({ removed: n }, 'exited procs past their retention left the table'),
        (e: unknown) => log.warn({ err: e }, 'a retention sweep failed; the next one tries again'),
      ).finally(next);
    }, r.sweepEveryMs);
  };
  next();
  return {
    stop() {
      stopped = true;
      timer?.cancel();
    },
  };
}
