import { BUCKET, encode, type ProcRecord } from '../control/protocol/index.js';
import type { Bus } from '../nats/types.js';

/** Writes in flight while the table is filled with history. */
const FILL_CONCURRENCY = 256;

/** Tries of one history write: a put of the same record again is harmless, and 256 in flight on a loaded 3-server cluster timed out (chaos, seed 2). */
const FILL_ATTEMPTS_MAX = 5;

async function putAgain(put: () => Promise<number>): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return void (await put());
    } catch (e) {
      if (attempt >= FILL_ATTEMPTS_MAX || (e as { type?: string }).type !== 'timeout') throw e;
    }
  }
}

/** An exited record as the scheduler and a node leave it. */
function exitedRecord(realm: string, i: number, nowMs: number): ProcRecord {
  return {
    pid: `${realm}.hist-${i.toString(36)}`,
    spec: { program: 'hello', args: [i], realm, lc: false, mcpu: 0, memMb: 64, dedicated: false, restart: 'never', maxRestarts: 0, restartWithinMs: 0, evictWithParent: false },
    state: 'exited',
    node: 'node-1',
    restarts: 0,
    term: 1,
    createdAtMs: nowMs,
    status: { kind: 'ok', message: 'ok', data: `hello ${i}` },
  };
}

/**
 * Fills the proc table with `count` exited procs of `realm` (the history a long-running cluster
 * leaves), faster than running them would: what a failover measured "with history" runs against.
 */
export async function fillHistory(bus: Bus, realm: string, count: number, tick: (n: number) => void = () => {}): Promise<void> {
  const procs = await bus.kv(BUCKET.procs);
  const nowMs = Date.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: FILL_CONCURRENCY }, async () => {
      for (let i = next++; i < count; i = next++) {
        const r = exitedRecord(realm, i, nowMs);
        await putAgain(() => procs.put(r.pid, encode(r)));
        if (i % 1000 === 0) tick(1000);
      }
    }),
  );
}
