import type { Logger } from 'pino';
import type { StreamLeadership, StreamReplicas } from '../nats/types.js';
import type { Clock, Timers } from '../ports/types.js';
import { BUCKET } from './protocol/index.js';

/** How long this process's server must have led the meta group before the scheduler leaves it. */
export const META_SETTLE_MS = 15_000;
/** Between two looks at who leads the control buckets' streams. */
export const LEADERS_CHECK_MS = 3_000;
/**
 * A new leader's first look, after its recovery (a stepdown pauses its stream for a moment). Not much
 * later: the chaos service scenario killed a scheduler 8 s after its election, before a first look at
 * 10 s, and its successor's recovery waited 7 s for the live index's election.
 */
export const LEADERS_FIRST_LOOK_MS = 1_000;
/** The next look after one that asked for a stepdown: where did it land? */
export const LEADERS_RECHECK_MS = 300;
/**
 * The n-th stepdown in a row of one bucket waits LEADERS_RECHECK_MS * 4^(n-1) after the one before, up
 * to this. nats-server 2.9 picks the new leader itself, and a chaos run saw one land on the other
 * avoided server again and again (n1, n2, n1, ... every 300 ms, never the third): each stepdown pauses
 * the stream, and the lease's stream was among them.
 */
export const STEPDOWN_BACKOFF_MAX_MS = 30_000;

/**
 * NATS servers seen absent (offline, or silent for seconds) from a replicated bucket's stream, looked
 * at every LEADERS_CHECK_MS by every node process, standbys included, so that a scheduler elected after
 * the server came back knows it too. Such a server may hold replicas that lack writes they acknowledged
 * before: in the chaos scheduler scenario nats-server 2.9.10's replica of the proc table on the killed
 * server came back without the last 8 records written before the kill (same sequence range, 8 messages
 * fewer than its peers), and reads under its leadership found no record of 8 procs that had run.
 * Held for the life of the process: nothing in NATS mends such a replica.
 *
 * `ownLeads`: this process's server leads one of the buckets' streams as last seen, or no look has
 * ended yet. A cluster's first election leaves such a candidate be (LeaseOptions.defer), so the first
 * scheduler sits where no stream needs moving: a stepdown lands where nats-server 2.9 picks, and a
 * chaos run's moves were still going on when its machine was killed 6 s after the start.
 */
export function watchReplicas(
  lead: StreamLeadership,
  ports: { timers: Timers },
  log: Logger,
  o: { buckets?: readonly string[]; skip?: () => boolean } = {},
): ReplicaWatch & { ownLeads(): boolean } {
  const buckets = o.buckets ?? [BUCKET.procs];
  const { suspects, note } = suspectServers(log);
  const leaders = new Map<string, string>();
  let looked = false;
  const loop = periodically(ports.timers, 0, async (stopped) => {
    // `skip`: the lease holder's leader placement looks at the same buckets and notes what it sees.
    if (o.skip?.() === true) return;
    for (const bucket of buckets) {
      if (stopped()) return;
      const r = await lead.replicasOf(bucket).catch(() => undefined);
      if (r?.leader === undefined) leaders.delete(bucket);
      else leaders.set(bucket, r.leader);
      if (r !== undefined) note(r);
    }
    looked = true;
  });
  const ownLeads = (): boolean => {
    const own = lead.server();
    return !looked || (own !== undefined && [...leaders.values()].includes(own));
  };
  return { suspects, note, ownLeads, stop: loop.stop };
}

/** What watchReplicas keeps: the servers seen absent, and a way to add what a look of one's own saw. */
export interface ReplicaWatch {
  suspects(): ReadonlySet<string>;
  note(r: StreamReplicas): void;
  stop(): void;
}

function suspectServers(log: Logger): Omit<ReplicaWatch, 'stop'> {
  const seen = new Set<string>();
  // Only a server seen healthy before and absent since went away: a stream just made may list peers not heard from yet.
  const present = new Set<string>();
  return {
    suspects: () => seen,
    note(r) {
      for (const p of r.peers) {
        if (p.healthy) present.add(p.name);
        if (!p.absent || !present.has(p.name) || seen.has(p.name)) continue;
        seen.add(p.name);
        log.info({ server: p.name }, "a NATS server was absent from a control bucket's stream: no stream leadership is handed where it may land on it");
      }
    },
  };
}

/**
 * Keeps the control buckets' stream leaders off the scheduler's own NATS server. A server that dies
 * stops every stream it led for its peers' Raft election timeout (4 to 9 s in nats-server, fixed), and
 * the machine whose death must cost no more than the lease TTL is the scheduler's: its successor needs
 * every bucket answering at once. The chaos scheduler scenario measured 13.4 s from the kill to the
 * first spawn the successor accepted, 10.6 s of it a recovery waiting for the nodes bucket's election.
 * A stepdown hands leadership to a current replica without an election timeout.
 *
 * Never where it may land on a suspect server (`watchReplicas`: one seen absent, which may have come
 * back without writes it had acknowledged): the stepdown's target is nats-server's choice (2.9 takes
 * no preferred peer), and with three servers a scheduler avoiding its own and the meta leader's server
 * steered every stream onto the third, after a kill of the scheduler's machine the one restarted: the
 * proc table was handed 2 s after its return to a replica missing 8 records (chaos scheduler scenario,
 * seed 2). A stream led by a suspect server whose peers are all sound is moved off it.
 */
export function keepLeadersOff(
  lead: StreamLeadership,
  ports: { timers: Timers; clock: Clock },
  log: Logger,
  o: { buckets?: readonly string[]; metaLeader?: () => string | undefined; replicas?: Omit<ReplicaWatch, 'stop'> } = {},
): { stop(): void } {
  const buckets = o.buckets ?? Object.values(BUCKET);
  const replicas = o.replicas ?? suspectServers(log);
  const held = new Set<string>();
  /** Stepdowns in a row of a bucket that stayed misplaced, and when the next one may be asked. */
  const tries = new Map<string, { count: number; notBeforeMs: number }>();
  /** Moves one bucket's stream leader if it is misplaced and may move; whether it asked for a stepdown. */
  const place = async (bucket: string, own: string | undefined, meta: string | undefined): Promise<boolean> => {
    const r = await lead.replicasOf(bucket).catch(() => undefined); // a bucket not made yet, or electing
    if (r === undefined) return false;
    replicas.note(r);
    // Not while a replica is down or behind (moving then would pile leadership onto the survivors).
    if (r.leader === undefined || r.peers.length === 0 || !r.peers.every((p) => p.healthy)) return false;
    const suspects = replicas.suspects();
    if (r.leader !== own && r.leader !== meta && !suspects.has(r.leader)) {
      tries.delete(bucket); // where it belongs: the next misplacement starts the backoff afresh
      return false;
    }
    const tried = tries.get(bucket) ?? { count: 0, notBeforeMs: 0 };
    const nowMs = ports.clock.nowMs();
    if (nowMs < tried.notBeforeMs) return false;
    const risky = r.peers.filter((p) => suspects.has(p.name)).map((p) => p.name);
    if (risky.length > 0) {
      if (!held.has(bucket)) log.info({ bucket, leader: r.leader, suspects: risky }, "a control bucket's stream leader stays: a stepdown may land on a server that was absent (its replica may lack acknowledged writes)");
      held.add(bucket);
      return false;
    }
    const from = r.leader;
    tries.set(bucket, { count: tried.count + 1, notBeforeMs: nowMs + Math.min(LEADERS_RECHECK_MS * 4 ** tried.count, STEPDOWN_BACKOFF_MAX_MS) });
    return lead.stepDown(bucket).then(
      () => (log.info({ bucket, from, server: own, metaLeader: meta, suspect: suspects.has(from) }, "moved a control bucket's stream leader off the scheduler's and the meta leader's servers (or off one that was absent)"), true),
      (e: unknown) => (log.debug({ err: e, bucket }, 'stream leader stepdown refused; the next look tries again'), true),
    );
  };
  const loop = periodically(ports.timers, LEADERS_FIRST_LOOK_MS, async (stopped) => {
    // A scheduler on a machine without a NATS server (a worker) has no server of its own to keep
    // leaders off: only the meta leader's and the suspects' are left to avoid.
    const own = lead.server();
    if (stopped()) return;
    // Off the meta leader's server too, when known (from followMetaLeader, which already asks, or
    // asked here): with three servers the streams then sit on the third, and the death of the
    // scheduler's machine or the meta leader's stops none of them (the chaos service scenario: leaders
    // moved onto the meta leader's machine died with it).
    const meta = o.metaLeader !== undefined ? o.metaLeader() : (await lead.metaGroup().catch(() => undefined))?.leader;
    // All buckets at once, and soon again after a stepdown (it lands on a replica nats-server picks,
    // maybe the scheduler's own), less soon for each one in a row: a cluster just started is settled in
    // a second or two when the landings are kind. The chaos service scenario killed the first
    // scheduler's machine 3.5 s after its election, in the middle of its moves (one every 3 s then), and
    // its successor's recovery waited 4.6 s for elections.
    const moved = await Promise.all(buckets.map((bucket) => place(bucket, own, meta)));
    return moved.includes(true) ? LEADERS_RECHECK_MS : LEADERS_CHECK_MS;
  });
  return { stop: loop.stop };
}

/** Runs `look` after `firstMs`, then after each look ends, when it says (else LEADERS_CHECK_MS), until stopped. */
function periodically(timers: Timers, firstMs: number, look: (stopped: () => boolean) => Promise<number | void>): { stop(): void } {
  let stopped = false;
  let timer: { cancel(): void } | undefined;
  const next = (delayMs: number): void => {
    if (stopped) return;
    timer = timers.setTimeout(() => void look(() => stopped).then((ms) => next(ms ?? LEADERS_CHECK_MS), () => next(LEADERS_CHECK_MS)), delayMs);
  };
  next(firstMs);
  return {
    stop() {
      stopped = true;
      timer?.cancel();
    },
  };
}

/**
 * Whether this process's NATS server leads JetStream's meta group, looked at every LEADERS_CHECK_MS.
 * Its stepdown needs the system account, so the scheduler moves instead (LeaseOptions): a machine
 * dying with the meta leader stops every new consumer for an election of 4 to 9 s, and a successor's
 * recovery lists buckets through consumers (the chaos scheduler scenario's 8.5 s failover was its
 * recovery waiting for the meta group's election).
 *
 * `ownLeads` (a standby defers: LeaseOptions.defer): its server leads as last seen, or no look has
 * ended yet. So the first election of a cluster goes to another node: in the chaos service scenario
 * the node on the meta leader's server won it before its first look, and its machine was killed 5 s
 * later; the successor's recovery waited 4.5 s for the meta group.
 *
 * `ownIsLeader` (the holder hands over: LeaseOptions.handOver): only while the meta group is whole, and
 * once it has been so under this server for META_SETTLE_MS. A hand-over guards against a later death,
 * and during a fault (a server down or cut off) it is a failover of its own on top of the fault's. The
 * chaos service scenario (seed 2) lost the streams' server; the scheduler elected after their election
 * handed the lease over 1.5 s later, and the services came back after a second election and recovery
 * (9.9 s). The meta group moves during a fault, and a scheduler handed over then added a failover to
 * it (the chaos partition scenario).
 */
export function followMetaLeader(
  lead: StreamLeadership,
  ports: { timers: Timers; clock: Clock },
  log: Logger,
): { leader(): string | undefined; ownLeads(): boolean; ownIsLeader(): boolean; stop(): void } {
  let ownSinceMs: number | undefined;
  let last: string | undefined;
  let looked = false;
  const loop = periodically(ports.timers, 0, async () => {
    const meta = await lead.metaGroup().catch(() => undefined);
    const own = meta !== undefined && meta.leader === lead.server();
    // The settling counts from when the group is whole under this server, so a peer back a moment ago
    // (or one that went away) starts it again.
    ownSinceMs = own && meta.whole ? (ownSinceMs ?? ports.clock.nowMs()) : undefined;
    if (meta?.leader !== last) log.info({ metaLeader: meta?.leader, server: lead.server() }, 'JetStream meta leader seen');
    last = meta?.leader;
    looked = true;
  });
  return {
    leader: () => last,
    ownLeads: () => !looked || (last !== undefined && last === lead.server()),
    ownIsLeader: () => ownSinceMs !== undefined && ports.clock.nowMs() - ownSinceMs >= META_SETTLE_MS,
    stop: loop.stop,
  };
}
