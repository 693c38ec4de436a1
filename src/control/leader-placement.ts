import type { Logger } from 'pino';
import type { StreamLeadership } from '../nats/types.js';
import type { Timers } from '../ports/types.js';
import { BUCKET } from './protocol/index.js';

/** Between two looks at who leads the control buckets' streams. */
export const LEADERS_CHECK_MS = 3_000;

/**
 * Keeps the control buckets' stream leaders off the scheduler's own NATS server. A server that dies
 * stops every stream it led for its peers' Raft election timeout (4 to 9 s in nats-server, fixed), and
 * the machine whose death must cost no more than the lease TTL is the scheduler's: its successor needs
 * every bucket answering at once. The chaos scheduler scenario measured 13.4 s from the kill to the
 * first spawn the successor accepted, 10.6 s of it a recovery waiting for the nodes bucket's election.
 * A stepdown hands leadership to a current replica without an election timeout.
 */
export function keepLeadersOff(lead: StreamLeadership, ports: { timers: Timers }, log: Logger, buckets: readonly string[] = Object.values(BUCKET)): { stop(): void } {
  let stopped = false;
  let timer: { cancel(): void } | undefined;
  const look = async (): Promise<void> => {
    const own = lead.server();
    if (own === undefined) return;
    for (const bucket of buckets) {
      if (stopped) return;
      const leader = await lead.leaderOf(bucket).catch(() => undefined); // a bucket not made yet, or electing
      if (leader !== own) continue;
      await lead.stepDown(bucket).then(
        () => log.info({ bucket, server: own }, "moved a control bucket's stream leader off the scheduler's server"),
        (e: unknown) => log.debug({ err: e, bucket }, 'stream leader stepdown refused; the next look tries again'),
      );
    }
  };
  const next = (delayMs: number): void => {
    if (stopped) return;
    timer = ports.timers.setTimeout(() => void look().finally(() => next(LEADERS_CHECK_MS)), delayMs);
  };
  next(0);
  return {
    stop() {
      stopped = true;
      timer?.cancel();
    },
  };
}
