import type { Retention } from '../control/retention.js';
import { ControlError } from '../control/errors.js';
import type { Logger } from 'pino';
import { createSystem, type ActorRef, type ActorSystem } from '../actors/index.js';
import { leaseActor } from '../control/lease.js';
import { startLeader } from '../control/leader.js';
import { followMetaLeader, watchReplicas } from '../control/leader-placement.js';
import type { Status } from '../proc/types.js';
import { Liveness } from '../control/liveness.js';
import { ProcTable } from '../control/proc-table.js';
import { BUCKET, DP_GONE, NODE, NODE_BEAT, NODE_NOTE, PROC_EVENT, decodeJson, encode, type DeployedProgram, type NodeIsolation, type NodeRequest, type ProcEvent, type ProcRecord, type WireError } from '../control/protocol/index.js';
import { natsTransport } from '../control/nats-transport.js';
import type { Mutations } from '../control/mutations.js';
import type { Bus, Kv, Subscription } from '../nats/types.js';
import type { Ports } from '../ports/types.js';
import type { DataPathPort } from './datapath/port.js';
import type { HostLauncher } from './host-process.js';
import { nodeManager, type NodeMsg, type ProgramFiles } from './manager/index.js';
import { followPeers } from './datapath/peers.js';
import { realTimers } from '../ports/real.js';
import { ROUTES_BUCKET, type NameRecord } from '../control/protocol/index.js';
import { hostNameLookup } from './name-lookup.js';
import { gatewayActor } from '../gateway/actor.js';
import type { GatewayLimits } from '../gateway/gateway.js';
import { GatewayMetrics } from '../gateway/metrics.js';

/** Timing of the control plane; the simulator may shorten or skew these per node. */
export interface NodeTiming {
  leaseTtlMs: number;
  leaseRenewMs: number;
  heartbeatMs: number;
  nodeTimeoutMs: number;
  nodeRequestTimeoutMs: number;
}

/** Bound on a `sigma call` through this node's data path. */
export const DATAPATH_CALL_TIMEOUT_MS_MAX = 60_000;

/** Hosts are pinged every fourth heartbeat (3 s), and killed after three pings unanswered: a hung host goes within ~9-12 s. */
export const HOST_PING_EVERY_BEATS = 4;

/** The nodes bucket gets every fourth heartbeat (liveness rides the core NATS ones): a new scheduler reads nodes from it. */
export const NODE_RECORD_EVERY_BEATS = 4;
export const HOST_PING_MISSES_MAX = 3;

/**
 * Every timer here wakes every node (and nats-server) while nothing happens, so the cadences are as slow
 * as the failure detection they serve allows: a node is down after three missed heartbeats; the lease
 * holder steps down one renewal before its TTL, so a renewal every 750 ms leaves it two tries. The
 * heartbeat, the renewal and the scheduler's tick share that period and are aligned (scheduleRepeat):
 * an idle node process and its nats-server wake once per period for all three, not once each.
 */
export const DEFAULT_TIMING: NodeTiming = { leaseTtlMs: 3_000, leaseRenewMs: 750, heartbeatMs: 750, nodeTimeoutMs: 3_000, nodeRequestTimeoutMs: 2_000 };

export interface NodeOptions {
  id: string;
  mcpu: number;
  memMb: number;
  beSlots: number;
  /** False: the node tells the scheduler to place nothing on it (src/config/cluster.ts, NodeConfig.procs). */
  procs?: boolean;
  programs: Record<string, string>;
  bus: Bus;
  launcher: HostLauncher;
  logger: Logger;
  appendLog: (pid: string, stream: 'stdout' | 'stderr', data: string) => void;
  /** Real ports by default; the simulator passes virtual ones. */
  ports?: Ports;
  timing?: NodeTiming;
  onFatal?: (error: unknown) => void;
  /** The data path this node owns (src/node/datapath/node-datapath.ts; the simulator's is src/sim/datapath.ts). */
  datapath?: DataPathPort;
  /**
   * Deployed programs (src/programs/): where the scheduler resolves a realm's program to a bundle and
   * where this node's hosts get it from (fetched on first use, cached by hash). Absent in the simulator.
   */
  deployed?: { store: { resolve(realm: string, name: string): Promise<DeployedProgram | undefined> }; cache: ProgramFiles };
  /** Whether this node's hosts are sandboxed (the heartbeat carries it to `sigma nodes`). */
  isolation?: NodeIsolation;
  /** HTTP ingress on this node (src/gateway/): where it listens and its bounds; none when unset. */
  gateway?: { port: number; host?: string; limits?: Partial<GatewayLimits>; onListening?: (port: number) => void };
  /** Deliberate bugs for the simulator's mutants; never set in production. */
  mutations?: Mutations;
  /** When this node leads: how long exited procs stay in the table (src/control/retention.ts). */
  retention?: Retention;
}

export interface RunningNode {
  system: ActorSystem;
  stop(): Promise<void>;
}

/** What a node holds of NATS: its buckets and the proc table. */
interface NodeStores {
  nodesKv: Kv;
  leaderKv: Kv;
  realmsKv: Kv;
  namesKv: Kv;
  table: ProcTable;
}

/** A node record outlives a silent node by this long (the scheduler judges liveness by its own clock). */
export const NODES_BUCKET_TTL_MS = 60_000;

/**
 * Everything a node is, wired to its ports: one ActorSystem on NATS with the NodeManager, the
 * subscription for orders addressed to it, and a lease candidate that runs the scheduler while it
 * leads. `src/node/main.ts` runs this in a process of its own; the simulator runs many in one.
 */
export async function startNode(o: NodeOptions): Promise<RunningNode> {
  const timing = o.timing ?? DEFAULT_TIMING;
  const bus = o.bus;
  const [nodesKv, leaderKv, procsKv, realmsKv, namesKv, liveKv] = await Promise.all([
    bus.kv(BUCKET.nodes, { ttlMs: NODES_BUCKET_TTL_MS }),
    bus.kv(BUCKET.leader, { ttlMs: timing.leaseTtlMs }),
    bus.kv(BUCKET.procs),
    bus.kv(BUCKET.realms),
    bus.kv(BUCKET.names),
    bus.kv(BUCKET.live),
  ]);
  const stores: NodeStores = { nodesKv, leaderKv, realmsKv, namesKv, table: new ProcTable(procsKv, liveKv) };
  // Before this node takes any order: what the table still shows running here died with an earlier
  // incarnation of this node (found by the simulator: node-churn seed 2 left procs 'running' forever
  // when a node restarted faster than the scheduler's node timeout).
  const unreadable = (e: unknown): ProcRecord[] => {
    o.logger.warn({ err: e }, 'could not read the procs of an earlier incarnation');
    return [];
  };
  const earlier = o.mutations?.skipReconcile === true ? [] : await earlierProcs(stores.table, o.id).catch(unreadable);
  // A node's actors (its manager, the lease, the scheduler) are addressed by NATS subjects of their own,
  // never by actor frames: a frame from another process reaches only the replies to this node's asks.
  const system = createSystem({ name: o.id, logger: o.logger, transport: natsTransport(bus), remoteInbound: 'asks', ...(o.ports === undefined ? {} : { ports: o.ports }) });
  reportEarlier(o, timing, system, stores.table, earlier);
  const nm = spawnManager(o, timing, system, stores);
  const requests = serveNodeRequests(o, nm);
  const elections = campaign(o, timing, system, stores, requests.local);
  const dataPath = await followDataPath(o, timing, stores.nodesKv);
  if (o.gateway !== undefined) await spawnGateway(o, o.gateway, system, namesKv, realmsKv);
  return {
    system,
    async stop() {
      dataPath.stop();
      requests.stop();
      elections.stop();
      await system.shutdown();
    },
  };
}

function spawnManager(o: NodeOptions, timing: NodeTiming, system: ActorSystem, st: NodeStores): ActorRef<NodeMsg> {
  const bus = o.bus;
  return system.spawn(
    nodeManager(
      { id: o.id, mcpu: o.mcpu, memMb: o.memMb, address: o.id, beSlots: o.beSlots, procs: o.procs !== false, heartbeatMs: timing.heartbeatMs, hostPingEveryBeats: HOST_PING_EVERY_BEATS, recordEveryBeats: NODE_RECORD_EVERY_BEATS, hostPingMissesMax: HOST_PING_MISSES_MAX, ...(o.isolation === undefined ? {} : { isolation: o.isolation }), exitTwice: o.mutations?.exitTwice === true, forgetLingering: o.mutations?.forgetLingering === true, rerunRepeatedOrder: o.mutations?.rerunRepeatedOrder === true },
      {
        launcher: o.launcher,
        table: st.table,
        nodesKv: st.nodesKv,
        namesKv: st.namesKv,
        publish: (ev) => bus.publish(PROC_EVENT.subject, encode(ev)),
        beat: (node) => bus.publish(NODE_BEAT.subject, encode(node)),
        reportExit: (ev) => bus.request(PROC_EVENT.subject, encode(ev), { timeoutMs: timing.nodeRequestTimeoutMs }).then(() => undefined),
        appendLog: o.appendLog,
        ...(o.datapath === undefined ? {} : { datapath: o.datapath }),
        ...(o.deployed === undefined ? {} : { programs: o.deployed.cache }),
      },
    ),
    { name: 'node' },
  );
}

/**
 * Orders addressed to this node, from NATS or from this process's own scheduler (`local`: no NATS hop,
 * the one-hop spawn path), as messages to the node manager.
 */
function serveNodeRequests(o: NodeOptions, nm: ActorRef<NodeMsg>): { local: (req: NodeRequest) => Promise<void>; stop(): void } {
  const bus = o.bus;
  /** `reply` answers ok or with an error; `respond` answers with a value of the request's own shape. */
  const toMsg = (req: NodeRequest, reply: (error?: WireError) => void, respond: (value: unknown) => void): NodeMsg => {
    switch (req.op) {
      case 'run':
        return { type: 'run', order: req.order, reply };
      case 'evict':
        return { type: 'evict', pid: req.pid, graceMs: req.graceMs, reply };
      case 'created':
        return { type: 'created', pid: req.pid, revision: req.revision };
      case 'cancel':
        return { type: 'cancel', pid: req.pid, ...(req.term === undefined ? {} : { term: req.term }) };
      case 'realm-removed':
        return { type: 'realm-removed', realm: req.realm, reply };
      case 'datapath-call': {
        const timeoutMs = Math.min(Math.max(1, req.timeoutMs), DATAPATH_CALL_TIMEOUT_MS_MAX);
        return { type: 'datapath-call', realm: req.realm, target: req.target, payload: req.payload, timeoutMs, reply: respond };
      }
      case 'datapath-status':
        return { type: 'datapath-status', reply: (st) => respond(st === undefined ? { ok: false, error: { type: 'no-datapath', message: `node ${o.id} runs without a data path` } } : { ok: true, status: st }) };
    }
  };
  const orders = bus.subscribe(NODE.subject(o.id));
  const notes = bus.subscribe(NODE_NOTE.subject(o.id));
  const serve = async (sub: Subscription): Promise<void> => {
    for await (const m of sub) {
      const req = NODE.request(decodeJson(m.data));
      const reply = (error?: WireError) => void m.respond(encode(error === undefined ? { ok: true } : { ok: false, error }));
      if (req === undefined) reply({ type: 'bad-request', message: 'malformed node request' });
      else nm.tell(toMsg(req, reply, (value) => void m.respond(encode(value))));
    }
  };
  void serve(orders);
  void serve(notes);
  // Cloned, as a decode from the wire would, so the two actors never share a record object.
  const local = (req: NodeRequest): Promise<void> =>
    new Promise((resolve, reject) => {
      const msg = toMsg(structuredClone(req), (error) => (error === undefined ? resolve() : reject(ControlError.fromWire(error))), () => resolve());
      nm.tell(msg);
      if (msg.type === 'created' || msg.type === 'cancel') resolve();
    });
  return {
    local,
    stop() {
      orders.unsubscribe();
      notes.unsubscribe();
    },
  };
}

/**
 * The lease candidate: runs the scheduler while this node leads. Leadership changes are applied one
 * after another, so a scheduler that is still starting when leadership is lost is stopped before any
 * successor starts: never two schedulers in one node.
 */
function campaign(o: NodeOptions, timing: NodeTiming, system: ActorSystem, st: NodeStores, local: (req: NodeRequest) => Promise<void>): { stop(): void } {
  let leaderChain: Promise<void> = Promise.resolve();
  let stopLeader: (() => Promise<void>) | undefined;
  let heldUntilMs = 0;
  // Every node follows the heartbeats, so that as a new scheduler it knows which nodes fell silent before its election.
  const seen = new Liveness(timing.nodeTimeoutMs);
  const beats = o.bus.subscribe(NODE_BEAT.subject);
  void (async () => {
    for await (const m of beats) {
      const n = NODE_BEAT.message(decodeJson(m.data));
      if (n !== undefined) seen.beat(n, system.ports.clock.nowMs());
    }
  })();
  // On a NATS cluster whose servers report who leads the meta group, a node on that server's machine leaves the lease to others.
  const lead = o.bus.leadership?.();
  const meta = lead === undefined ? undefined : followMetaLeader(lead, system.ports, o.logger);
  // Standbys too: a scheduler elected after a server's return must know it was away (leader-placement.ts).
  // Every control bucket where its own server may lead one (a standby defers the first election for
  // it), the proc table's alone on a machine without a server; not while holding the lease, when the
  // leader placement's looks note the same (keepLeadersOff).
  const buckets = lead?.server() === undefined ? [BUCKET.procs] : Object.values(BUCKET);
  const replicas = lead === undefined ? undefined : watchReplicas(lead, system.ports, o.logger, { buckets, skip: () => system.ports.clock.nowMs() < heldUntilMs });
  const leaderDeps = {
    // The stale-leader mutant skips the lease fence, this half of it too.
    leaseHeld: () => o.mutations?.staleLeader === true || system.ports.clock.nowMs() < heldUntilMs,
    bus: o.bus,
    system,
    table: st.table,
    local: { node: o.id, deliver: local },
    nodesKv: st.nodesKv,
    realmsKv: st.realmsKv,
    namesKv: st.namesKv,
    programs: o.programs,
    ...(o.deployed === undefined ? {} : { deployed: o.deployed.store }),
    nodeTimeoutMs: timing.nodeTimeoutMs,
    nodeRecordEveryMs: timing.heartbeatMs * NODE_RECORD_EVERY_BEATS,
    nodeRequestTimeoutMs: timing.nodeRequestTimeoutMs,
    seen: (nowMs: number) => seen.copy(nowMs),
    ...(o.mutations === undefined ? {} : { mutations: o.mutations }),
    ...(o.retention === undefined ? {} : { retention: o.retention }),
    ...(lead === undefined ? {} : { leadership: lead }),
    ...(meta === undefined ? {} : { metaLeader: meta.leader }),
    ...(replicas === undefined ? {} : { replicas }),
  };
  system.spawn(
    leaseActor({
      ...(meta === undefined ? {} : { defer: (first: boolean) => meta.ownLeads() || (first && replicas?.ownLeads() === true), handOver: () => meta.ownIsLeader() }),
      kv: st.leaderKv,
      key: 'scheduler',
      holder: o.id,
      ttlMs: timing.leaseTtlMs,
      renewEveryMs: timing.leaseRenewMs,
      onHeld: (untilMs) => (heldUntilMs = untilMs),
      onElected: (term) => {
        o.logger.info({ term }, 'elected scheduler leader');
        leaderChain = leaderChain.then(async () => {
          try {
            stopLeader = await startLeader(leaderDeps, term);
          } catch (e) {
            o.onFatal?.(e);
          }
        });
      },
      onDeposed: (reason) => {
        o.logger.warn({ reason }, 'no longer the scheduler leader');
        if (o.mutations?.staleLeader === true) return;
        leaderChain = leaderChain.then(async () => {
          await stopLeader?.();
          stopLeader = undefined;
        });
      },
    }),
    { name: 'lease' },
  );
  return {
    stop: () => {
      meta?.stop();
      replicas?.stop();
      beats.unsubscribe();
    },
  };
}

/** The gateway: a supervised actor of this node's system, with the node's data path and admin NATS user. */
async function spawnGateway(o: NodeOptions, g: NonNullable<NodeOptions['gateway']>, system: ActorSystem, namesKv: Kv, realmsKv: Kv): Promise<void> {
  const routesKv = await o.bus.kv(ROUTES_BUCKET);
  // Scoped to the route's realm as a host's lookups are (src/node/name-lookup.ts): another realm's private
  // names are "no such service", never "not exported", so a route learns nothing of them.
  const scoped = hostNameLookup(namesKv);
  const lookup = (realm: string) => (key: string): Promise<NameRecord | undefined> => scoped(realm, key);
  const metrics = new GatewayMetrics({ node: o.id, datapath: () => o.datapath?.status() });
  const deps = { node: o.id, port: g.port, datapath: o.datapath, lookup, routesKv, realmsKv, bus: o.bus, metrics, ...(g.host === undefined ? {} : { host: g.host }), ...(g.limits === undefined ? {} : { limits: g.limits }), ...(g.onListening === undefined ? {} : { onListening: g.onListening }) };
  system.spawn(gatewayActor(deps), { name: 'gateway' }); // supervised by the system's root: a crash restarts it
}

/** Data-path peers come and go with their heartbeats (core NATS and the nodes bucket); endpoints gone elsewhere are announced (a simulated node has no channel). */
async function followDataPath(o: NodeOptions, timing: NodeTiming, nodesKv: Kv): Promise<{ stop(): void }> {
  const cross = o.datapath?.cross;
  if (cross === undefined) return { stop() {} };
  const bus = o.bus;
  const peers = await followPeers({ self: o.id, nodesKv, cross, timers: o.ports?.timers ?? realTimers, nodeTimeoutMs: timing.nodeTimeoutMs, log: o.logger });
  const beats = bus.subscribe(NODE_BEAT.subject);
  void (async () => {
    for await (const m of beats) {
      const n = NODE_BEAT.message(decodeJson(m.data));
      if (n !== undefined) peers.heard(n);
    }
  })();
  const dpGone = bus.subscribe(DP_GONE.subject);
  cross.onLocalGone((endpoints) => bus.publish(DP_GONE.subject, encode({ node: o.id, endpoints })));
  void (async () => {
    for await (const m of dpGone) {
      const g = DP_GONE.message(decodeJson(m.data));
      if (g !== undefined && g.node !== o.id) cross.remoteGone(g.node, g.endpoints);
    }
  })();
  return {
    stop() {
      peers.stop();
      beats.unsubscribe();
      dpGone.unsubscribe();
    },
  };
}

/**
 * Marks lost every proc the table shows on `node` but not exited, and tells the scheduler. Runs before
 * the node subscribes to its orders, so nothing listed can be one this incarnation runs; the write is
 * the table's write-once CAS, so a status recorded meanwhile stays.
 */
/** The procs the table still shows running on this node: they died with an earlier incarnation of it. */
async function earlierProcs(table: ProcTable, node: string): Promise<ProcRecord[]> {
  return (await table.liveRecords()).filter((r) => r.node === node);
}

/** Reports of an earlier incarnation's procs sent before the table is written here instead. */
export const EARLIER_REPORTS_MAX = 30;

/**
 * Each proc of an earlier incarnation is reported lost to the scheduler, which writes its end and
 * applies its restart policy, sent again each heartbeat until a scheduler acknowledges it. Written here
 * first, its end would reach a recovering scheduler only as an exit of a proc it no longer has live,
 * and a `restart: always` service would stay dead (the chaos datapath scenario). Past
 * EARLIER_REPORTS_MAX unanswered reports, or if a scheduler answered but the table still shows it
 * running a heartbeat later, this node writes the end itself.
 */
function reportEarlier(o: NodeOptions, timing: NodeTiming, system: ActorSystem, table: ProcTable, earlier: readonly ProcRecord[]): void {
  const later = (ms: number, f: () => void): void => void system.ports.timers.setTimeout(f, ms);
  const writeEnd = (pid: string, status: Status): void => void table.exit(pid, status).catch((e: unknown) => o.logger.warn({ err: e, pid }, 'could not record the end of an earlier incarnation\'s proc'));
  for (const r of earlier) {
    const status: Status = { kind: 'lost', message: `node ${o.id} restarted; the proc died with its previous incarnation` };
    const ev: ProcEvent = { type: 'exited', pid: r.pid, node: o.id, status, unrecorded: true };
    const send = (attempt: number): void => {
      o.bus.request(PROC_EVENT.subject, encode(ev), { timeoutMs: timing.nodeRequestTimeoutMs }).then(
        () => later(timing.heartbeatMs, () => void table.get(r.pid).then((cur) => cur !== undefined && cur.record.state !== 'exited' && writeEnd(r.pid, status), () => {})),
        () => (attempt >= EARLIER_REPORTS_MAX ? writeEnd(r.pid, status) : later(timing.heartbeatMs, () => send(attempt + 1))),
      );
    };
    send(1);
  }
}
