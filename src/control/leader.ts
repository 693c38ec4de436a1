import type { ActorRef, ActorSystem } from '../actors/index.js';
import { ControlError } from './errors.js';
import type { Bus, Kv, StreamLeadership, Subscription } from '../nats/types.js';
import type { Mutations } from './mutations.js';
import type { Clock } from '../ports/types.js';
import { fencedKv } from './fence.js';
import { startRetention, type Retention } from './retention.js';
import { keepLeadersOff, type ReplicaWatch } from './leader-placement.js';
import { ProcTable } from './proc-table.js';
import { realmJournals } from './realm-journals.js';
import { EVICT, NODE, NODE_BEAT, NODE_NOTE, PROC_EVENT, REALM_CREATE, REALM_QUOTA, REALM_REMOVE, SPAWN, call, decodeJson, keyedPid, decodeNodeRecord, encode, type NodeRequest, type Rpc } from './protocol/index.js';
import { schedulerActor, type SchedulerDeps, type SchedulerMsg } from './scheduler/index.js';
import { traceSpawn } from '../spawn-trace.js';

/** Pause before a leader opens a failed or ended watch again. */
export const WATCH_REOPEN_MS = 250;
/** Grace of an eviction whose request names none. */
export const EVICT_GRACE_MS_DEFAULT = 2_000;
/** The scheduler's mailbox: spawn storms queue here while table writes are in flight. */
export const SCHEDULER_MAILBOX_CAPACITY = 200_000;

export interface LeaderDeps {
  bus: Bus;
  system: ActorSystem;
  table: ProcTable;
  nodesKv: Kv;
  realmsKv: Kv;
  namesKv: Kv;
  programs: Readonly<Record<string, string>>;
  deployed?: SchedulerDeps['deployed'];
  nodeTimeoutMs: number;
  /** How often a node writes its record to the nodes bucket. */
  nodeRecordEveryMs: number;
  nodeRequestTimeoutMs: number;
  /** The node manager in this process: orders for it skip NATS (see startNode). */
  local?: { node: string; deliver(req: NodeRequest): Promise<void> };
  mutations?: Mutations;
  /** Exited procs leave the table past this (absent: they stay; the simulator runs without). */
  retention?: Retention;
  /** The heartbeats this process saw as a standby (src/control/liveness.ts). */
  seen?: SchedulerDeps['seen'];
  /** Stream leadership on a NATS cluster: the leader keeps the buckets' stream leaders off its own server. */
  leadership?: StreamLeadership;
  /** NATS servers this process saw absent from a control stream (watchReplicas): no stream leadership is handed where it may land on one. */
  replicas?: ReplicaWatch;
  /** Who leads JetStream's meta group, as this process last saw (followMetaLeader), so the leader does not ask again. */
  metaLeader?: () => string | undefined;
  /** Whether the lease is still held by this process's clock (LeaseOptions.onHeld); absent: until stopped. */
  leaseHeld?: () => boolean;
}

/**
 * What the elected leader runs: the scheduler actor, fed by NATS subscriptions (spawn, pull, evict,
 * proc events, realm requests) and by a watch on the nodes bucket. Returns a function that stops it
 * all when leadership is lost.
 *
 * The fence: once stopped, its table writes are refused (src/control/fence.ts), and the stop function
 * exists before anything is awaited, so a deposed leader whose watches are slow to open is stopped at
 * once rather than once they open.
 */
export async function startLeader(d: LeaderDeps, term: number): Promise<() => Promise<void>> {
  let active = true;
  const isActive = (): boolean => active;
  // Past the lease by the clock, requests are left unanswered: a process resumed after a pause (SIGSTOP)
  // reads the requests queued meanwhile before its lease's deadline message, and the chaos pause
  // scenario saw it accept spawns its successor had already run. Unanswered, the callers try again.
  // Not a fence on writes: a clock that jumps forward (skew, in the simulator) is held again at the
  // next renewal, and a scheduler whose writes failed meanwhile would be left behind its own table.
  const answering = (): boolean => active && (d.leaseHeld?.() ?? true);
  const sched: ActorRef<SchedulerMsg> = d.system.spawn(
    schedulerActor({
      table: new ProcTable(fencedKv(d.table.kv, isActive, term), d.table.live === undefined ? undefined : fencedKv(d.table.live, isActive, term)),
      ...nodeLink(d),
      ...(d.local === undefined ? {} : { localNode: d.local.node }),
      programs: d.programs,
      ...(d.deployed === undefined ? {} : { deployed: d.deployed }),
      term,
      realmsKv: fencedKv(d.realmsKv, isActive, term),
      namesKv: fencedKv(d.namesKv, isActive, term),
      nodesKv: d.nodesKv,
      ...journalsOf(d.bus),
      nodeTimeoutMs: d.nodeTimeoutMs,
      ...(d.seen === undefined ? {} : { seen: d.seen }),
      ...(d.mutations === undefined ? {} : { mutations: d.mutations }),
    }),
    { name: `scheduler-${term}`, mailbox: { capacity: SCHEDULER_MAILBOX_CAPACITY } },
  );
  const subs = serveRequests(d.bus, sched, answering, d.system.ports.clock);
  const watches = followState(d, sched, isActive);
  const history = d.retention === undefined ? undefined : startRetention(new ProcTable(fencedKv(d.table.kv, isActive, term), d.table.live), d.system.ports, d.retention, d.system.log);
  const leaders = d.leadership === undefined ? undefined : keepLeadersOff(d.leadership, d.system.ports, d.system.log, { ...(d.metaLeader === undefined ? {} : { metaLeader: d.metaLeader }), ...(d.replicas === undefined ? {} : { replicas: d.replicas }) });
  return async () => {
    active = false;
    history?.stop();
    leaders?.stop();
    for (const sub of subs) sub.unsubscribe();
    for (const w of watches) w.stop();
    await d.system.stop(sched);
  };
}

function journalsOf(bus: Bus): Pick<SchedulerDeps, 'journals'> {
  const journals = realmJournals(bus);
  return journals === undefined ? {} : { journals };
}

/**
 * How the scheduler reaches nodes. Orders and notes are not fenced: they complete a decision already
 * durable in the table (a dispatch CAS that landed, a create that landed), which a successor may not
 * know of yet; a node ignores a run it already has. What is fenced is deciding: the table writes.
 */
function nodeLink(d: LeaderDeps): Pick<SchedulerDeps, 'toNode' | 'tellNode'> {
  const toNode = async (node: string, req: NodeRequest): Promise<void> => {
    if (node === d.local?.node) return d.local.deliver(req);
    const ack = await call(d.bus, NODE.subject(node), NODE.ack, req, d.nodeRequestTimeoutMs);
    if (!ack.ok) throw ControlError.fromWire(ack.error);
  };
  const tellNode = (node: string, req: NodeRequest): void => {
    if (node === d.local?.node) return void d.local.deliver(req).catch(() => {});
    try {
      d.bus.publish(NODE_NOTE.subject(node), encode(req));
    } catch {
      // Closed or disconnected: the node falls back to reading the record (see RunOrder.pendingCreate).
    }
  };
  return { toNode, tellNode };
}

/** A spawn request as it comes off NATS, before the scheduler's mailbox (SIGMA_SPAWN_TRACE). */
function traceRequest(input: unknown): void {
  const { realm, idempotencyKey: key } = input as { realm?: unknown; idempotencyKey?: unknown };
  if (typeof key === 'string') traceSpawn('sched.nats-recv', keyedPid(typeof realm === 'string' ? realm : 'default', key));
}

/** What acknowledges an exit event (any reply does; this one says what it is). */
const EXIT_ACK = encode({ ok: true });

/** The scheduler's subjects: each request decoded by its subject's decoder; a malformed one is refused. */
function serveRequests(bus: Bus, sched: ActorRef<SchedulerMsg>, answering: () => boolean, clock: Clock): Subscription[] {
  const subs: Subscription[] = [];
  const serve = <Req>(rpc: Rpc<Req, unknown>, toMsg: (req: Req, respond: (v: unknown) => void) => SchedulerMsg): void => {
    const sub = bus.subscribe(rpc.subject);
    subs.push(sub);
    void (async () => {
      for await (const m of sub) {
        // Unanswered, as if no scheduler were there: the caller tries again, and finds the successor.
        if (!answering()) continue;
        const respond = (v: unknown): void => void m.respond(encode(v));
        const req = rpc.request(decodeJson(m.data));
        if (req === undefined) {
          respond({ ok: false, error: { type: 'bad-request', message: `malformed request on ${rpc.subject}` } });
          continue;
        }
        const sent = sched.tryTell(toMsg(req, respond));
        if (sent._tag === 'Left') respond({ ok: false, error: { type: 'no-scheduler', message: sent.left.message } });
      }
    })();
  };
  serve(SPAWN, (input, reply) => (traceRequest(input), { type: 'spawn', input, receivedAtMs: clock.nowMs(), reply }));
  serve(EVICT, (r, reply) => ({ type: 'evict', pid: r.pid, graceMs: r.graceMs ?? EVICT_GRACE_MS_DEFAULT, reply }));
  serve(REALM_CREATE, (r, reply) => ({ type: 'realm-create', name: r.name, ...(r.quota === undefined ? {} : { quota: r.quota }), reply }));
  serve(REALM_QUOTA, (r, reply) => ({ type: 'realm-quota', name: r.name, quota: r.quota ?? {}, reply }));
  serve(REALM_REMOVE, (r, reply) => ({ type: 'realm-remove', name: r.name, reply }));
  // Heartbeats on core NATS: liveness while the nodes bucket's stream or JetStream's meta group elects.
  const beats = bus.subscribe(NODE_BEAT.subject);
  subs.push(beats);
  void (async () => {
    for await (const m of beats) {
      const node = NODE_BEAT.message(decodeJson(m.data));
      if (node !== undefined) sched.tell({ type: 'node-up', node });
    }
  })();
  const events = bus.subscribe(PROC_EVENT.subject);
  subs.push(events);
  void (async () => {
    for await (const m of events) {
      const ev = PROC_EVENT.message(decodeJson(m.data));
      if (ev === undefined) continue;
      sched.tell({ type: 'proc-event', ev });
      // An exit is acknowledged (its node sends it again until one is); a start is not.
      if (ev.type === 'exited' && answering()) m.respond(EXIT_ACK);
    }
  })();
  return subs;
}

/**
 * Follows node heartbeats and realms; the scheduler reads its own snapshot on start (and on any
 * restart). Opened without holding up the stop function (a watch that opens after the stop is stopped
 * at once), and opened again while the leader is active if opening fails or the watch ends.
 */
function followState(d: LeaderDeps, sched: ActorRef<SchedulerMsg>, isActive: () => boolean): Set<{ stop(): void }> {
  const watches = new Set<{ stop(): void }>();
  const timers = d.system.ports.timers;
  /** `stallMs`: a watch that brings nothing for this long is stopped and opened again (see below). */
  const follow = async <T>(open: () => Promise<AsyncIterable<T> & { stop(): void }>, each: (e: T) => void | Promise<void>, stallMs?: number): Promise<void> => {
    while (isActive()) {
      try {
        const w = await open();
        watches.add(w);
        if (!isActive()) return w.stop();
        let quiet = stallMs === undefined ? undefined : timers.setTimeout(() => w.stop(), stallMs);
        for await (const e of w) {
          if (quiet !== undefined) {
            quiet.cancel();
            quiet = timers.setTimeout(() => w.stop(), stallMs!);
          }
          await each(e);
        }
        quiet?.cancel();
        watches.delete(w);
      } catch {
        // NATS away or the call timed out: try again below.
      }
      if (isActive()) await new Promise<void>((r) => timers.setTimeout(r, WATCH_REOPEN_MS));
    }
  };
  // Every node, this one included, writes its record every few heartbeats: a nodes watch silent for two
  // of those has stalled (seen on a replicated stream whose leader server died). Liveness rides the core
  // NATS heartbeats too; reopened, the watch replays the last records, which nodeUp does not count as new.
  void follow(
    () => d.nodesKv.watch({}),
    (e) => {
      const n = e.value === null ? undefined : decodeNodeRecord(e.value);
      if (n !== undefined) sched.tell({ type: 'node-up', node: n });
    },
    Math.max(d.nodeTimeoutMs / 2, 2 * d.nodeRecordEveryMs),
  ).catch(() => {});
  // From the latest record of each realm on: a realm the recovery's listing missed is known as soon
  // as this replays (and checkRealm looks one up at its first request before that).
  void follow(
    () => d.realmsKv.watch({ include: 'latest' }),
    (e) => sched.tell({ type: 'realm-seen', name: e.key, present: e.value !== null }),
  ).catch(() => {});
  return watches;
}
