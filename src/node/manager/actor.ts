import type { Context } from '../../actors/index.js';
import { encode, type NodeRecord, type RunOrder } from '../../control/protocol/index.js';
import type { ToNode } from '../../host/protocol.js';
import { closeLingering, dataPathCall, lingerEndpoint } from './datapath-glue.js';
import { hostFailed, hostGone, hostUp, place, realmRemoved } from './hosts.js';
import { answer, datapathStatus, heardFrom, pingHosts } from './pings.js';
import { CANCEL_GRACE_MS, dropUnstarted, exited, forceEvict, reportUnacknowledged, startEviction, started } from './procs.js';
import { cancel, checkAwaiting, created, markRunning, markRunningLater, recordExit, retryUnrecorded, taken } from './records.js';
import { traceSpawn } from '../../spawn-trace.js';
import { NodeState, type NodeManagerConfig, type NodeManagerDeps, type NodeMsg, type NodeOps } from './state.js';

/** The concerns' entry points for one another, bound to one state. */
function opsOf(s: NodeState): NodeOps {
  return {
    exited: (pid, status) => exited(s, pid, status),
    hostGone: (hostId, detail) => hostGone(s, hostId, detail),
    markRunning: (pid, p) => markRunning(s, pid, p),
    recordExit: (pid, p, status) => recordExit(s, pid, p, status),
    lingerEndpoint: (endpoint) => lingerEndpoint(s, endpoint),
    place: (order) => place(s, order),
  };
}

/** Every heartbeat: retried writes, records waited for, the node's record (with its BE slots), and now and then host pings. */
function heartbeat(s: NodeState): void {
  const { cfg, deps } = s;
  retryUnrecorded(s);
  checkAwaiting(s);
  reportUnacknowledged(s);
  const addr = deps.datapath?.peerAddress?.();
  const node: NodeRecord = { id: cfg.id, mcpu: cfg.mcpu, memMb: cfg.memMb, address: cfg.address, startedAtMs: s.startedAtMs, heartbeatSeq: s.heartbeatSeq++, beSlots: cfg.beSlots, ...(cfg.procs ? {} : { procs: false as const }), ...(addr === undefined ? {} : { datapath: addr }), ...(cfg.isolation === undefined ? {} : { isolation: cfg.isolation }) };
  deps.beat?.(node);
  const record = JSON.stringify({ ...node, heartbeatSeq: 0 });
  if (deps.beat === undefined || node.heartbeatSeq % cfg.recordEveryBeats === 0 || record !== s.recordWritten) {
    s.recordWritten = record;
    void deps.nodesKv.put(cfg.id, encode(node)).catch((e: unknown) => {
      s.recordWritten = '';
      s.log.warn({ err: e }, 'heartbeat failed');
    });
  }
  if (node.heartbeatSeq % cfg.hostPingEveryBeats === 0) pingHosts(s);
}

/**
 * A proc's host speaks for its own procs only: code in a host can call `process.send`, so a `started`,
 * `exited` or `log` naming a proc that runs elsewhere (another realm's, on another host) is dropped.
 */
function hostMessage(s: NodeState, hostId: string, msg: ToNode): void {
  heardFrom(s, hostId, msg.t === 'pong');
  if ((msg.t === 'started' || msg.t === 'exited' || msg.t === 'log') && s.procs.get(msg.pid)?.hostId !== hostId) {
    if (msg.t !== 'log') s.log.warn({ host: hostId, pid: msg.pid, t: msg.t }, 'a host spoke for a proc it does not run; ignored');
    return;
  }
  switch (msg.t) {
    case 'started':
      return started(s, msg.pid, msg.actorPath, msg.kind);
    case 'exited':
      return exited(s, msg.pid, msg.status);
    case 'log':
      return s.deps.appendLog(msg.pid, msg.stream, msg.data);
    case 'pong':
      return;
    case 'dp-stats':
      return s.dp?.noteHostStats(hostId, msg.stats);
    case 'ready':
      return;
  }
}

/** A deployed program's bundle is fetched into the realm's cache before the proc goes to a host. */
function runOrder(s: NodeState, order: RunOrder): void {
  const program = order.program;
  if (program === undefined) return placeOnceRecorded(s, order);
  const files = s.deps.programs;
  if (files === undefined) return s.ops.exited(order.pid, { kind: 'error', message: `node ${s.cfg.id} cannot run deployed programs` });
  traceSpawn('node.fetch-start', order.pid, program.hash);
  files.path(order.spec.realm, program.hash, program.chunk).then(
    (modulePath) => s.ctx.self.tell({ type: 'program-ready', pid: order.pid, modulePath }),
    (e: unknown) => s.ctx.self.tell({ type: 'program-ready', pid: order.pid, error: (e as Error).message }),
  );
}

function programReady(s: NodeState, m: Extract<NodeMsg, { type: 'program-ready' }>): void {
  traceSpawn('node.program-ready', m.pid);
  const p = s.procs.get(m.pid);
  if (p === undefined) return; // evicted or cancelled meanwhile
  if (m.modulePath === undefined) return s.ops.exited(m.pid, { kind: 'error', message: `could not fetch program ${p.order.spec.program} v${p.order.program?.version}: ${m.error}` });
  p.order = { ...p.order, modulePath: m.modulePath };
  placeOnceRecorded(s, p.order);
}

/** To a host now, or once its record is known to exist (see Proc.awaitingCreate). */
function placeOnceRecorded(s: NodeState, order: RunOrder): void {
  const p = s.procs.get(order.pid);
  if (p?.awaitingCreate === true) return void (p.startHeld = true);
  place(s, order);
}

/** One message to the concern it belongs to. */
function route(s: NodeState, m: NodeMsg): void {
  switch (m.type) {
    case 'run':
      traceSpawn('node.run-recv', m.order.pid);
      if (taken(s, m.order) !== undefined) runOrder(s, m.order);
      // A successor's order for a proc held here for its record: that record is durable, and names this node.
      else if (m.order.pendingCreate !== true && m.order.revision !== undefined) created(s, m.order.pid, m.order.revision);
      return m.reply();
    case 'program-ready':
      return programReady(s, m);
    case 'created':
      return created(s, m.pid, m.revision);
    case 'cancel':
      // Not started yet (held for its record, or waiting for a host): it ends at once, having never run.
      return cancel(s, m.pid, m.term, (p) => (p.hostId === undefined ? dropUnstarted(s, m.pid, p) : startEviction(s, m.pid, p, CANCEL_GRACE_MS)));
    case 'mark-running':
      return markRunningLater(s, m.pid);
    case 'evict': {
      const p = s.procs.get(m.pid);
      if (p === undefined) return m.reply({ type: 'unknown-proc', message: `proc ${m.pid} is not running on ${s.cfg.id}` });
      startEviction(s, m.pid, p, m.graceMs);
      return m.reply();
    }
    case 'force-evict':
      return forceEvict(s, m.pid);
    case 'host-up':
      return hostUp(s, m);
    case 'host-failed':
      return hostFailed(s, m.key, m.error);
    case 'host-msg':
      return hostMessage(s, m.hostId, m.msg);
    case 'host-exit':
      return hostGone(s, m.hostId, m.detail);
    case 'tick':
      return heartbeat(s);
    case 'datapath-status':
      return datapathStatus(s, m.reply);
    case 'status-deadline':
      return answer(s, m.waiter);
    case 'dp-close':
      return closeLingering(s);
    case 'datapath-call':
      return dataPathCall(s, m);
    case 'realm-removed':
      realmRemoved(s, m.realm);
      return m.reply();
  }
}

/**
 * One per node. Runs procs in per-realm proc hosts: a shared host per realm for ordinary procs and a
 * fresh host for each `dedicated` one. Reports starts and exits into the proc table (exactly once, by
 * CAS) and to the scheduler, heartbeats into the nodes bucket, and asks for best-effort work when it
 * has free slots. The actor routes; its concerns (hosts, records, procs, data path) share a NodeState.
 */
export function nodeManager(cfg: NodeManagerConfig, deps: NodeManagerDeps) {
  return (ctx: Context<NodeMsg>) => {
    const s = new NodeState(cfg, deps, ctx);
    Object.assign(s.ops, opsOf(s));
    return {
      preStart: () => {
        heartbeat(s);
        ctx.scheduleRepeat(cfg.heartbeatMs, { type: 'tick' }, { aligned: true });
      },
      postStop: () => {
        for (const h of s.hosts.values()) h.handle.kill();
        s.dp?.close();
      },
      receive: (m: NodeMsg) => route(s, m),
    };
  };
}
