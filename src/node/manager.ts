import type { Context } from '../actors/index.js';
import type { TimerHandle } from '../ports/types.js';
import { describe } from '../actors/errors.js';
import type { ProcTable } from '../control/proc-table.js';
import { encode, type NameRecord, type NodeRecord, type ProcEvent, type ProcRecord, type RunOrder, type WireError } from '../control/protocol.js';
import type { ToNode } from '../host/protocol.js';
import type { Kv } from '../nats/types.js';
import type { Status } from '../proc/types.js';
import type { HostHandle, HostLauncher } from './host-process.js';

export interface NodeManagerConfig {
  id: string;
  mcpu: number;
  memMb: number;
  /** Actor system address of this node process. */
  address: string;
  /** Best-effort procs this node runs at once. */
  beSlots: number;
  heartbeatMs: number;
  /** A host that misses this many pings in a row is killed and its procs end as crashed. */
  hostPingMissesMax: number;
  /** Simulator mutant only (src/control/mutations.ts): the exit write loses its write-once guard. */
  exitTwice?: boolean;
}

export interface NodeManagerDeps {
  launcher: HostLauncher;
  table: ProcTable;
  nodesKv: Kv;
  namesKv: Kv;
  publish(ev: ProcEvent): void;
  /** Offers the scheduler this node's best-effort slots (σOS's pull of BE work by nodes). */
  pull(slots: number): Promise<void>;
  appendLog(pid: string, stream: 'stdout' | 'stderr', data: string): void;
}

export type NodeMsg =
  | { type: 'run'; order: RunOrder; reply: (error?: WireError) => void }
  | { type: 'evict'; pid: string; graceMs: number; reply: (error?: WireError) => void }
  | { type: 'host-up'; key: string; handle: HostHandle }
  | { type: 'host-failed'; key: string; error: string }
  | { type: 'host-msg'; hostId: string; msg: ToNode }
  | { type: 'host-exit'; hostId: string; detail: string }
  | { type: 'force-evict'; pid: string }
  | { type: 'mark-running'; pid: string }
  | { type: 'tick' };

interface Host {
  handle: HostHandle;
  realm: string;
  procs: Set<string>;
  dedicatedTo?: string;
  /** A forced eviction left code running in it: take no new procs, retire once empty. */
  tainted: boolean;
  pingsMissed: number;
}

interface Proc {
  order: RunOrder;
  hostId?: string;
  evictTimer?: TimerHandle;
  kind?: 'function' | 'service';
  /** The record as last written and its revision, so our next write needs no read. */
  record?: ProcRecord;
  revision?: number;
  actorPath?: string;
}

/**
 * A function that exits within this delay never has its `running` state written: its exit is the
 * only table write it costs (most serverless functions are that short).
 */
export const RUNNING_WRITE_DELAY_MS = 20;

/**
 * One per node. Runs procs in per-realm proc hosts: a shared host per realm for ordinary procs and a
 * fresh host for each `dedicated` one. Reports starts and exits into the proc table (exactly once, by
 * CAS) and to the scheduler, heartbeats into the nodes bucket, and asks for best-effort work when it
 * has free slots.
 */
export function nodeManager(cfg: NodeManagerConfig, deps: NodeManagerDeps) {
  return (ctx: Context<NodeMsg>) => {
    const hosts = new Map<string, Host>();
    const shared = new Map<string, string>(); // realm -> host id of the shared host
    const starting = new Map<string, RunOrder[]>(); // host key -> orders waiting for it
    const procs = new Map<string, Proc>();
    let hostSeq = 0;
    let heartbeatSeq = 0;
    let pingSeq = 0;
    const startedAtMs = ctx.ports.clock.nowMs();
    const log = ctx.log;

    const startHost = (key: string, realm: string): void => {
      const hostId = `${cfg.id}-h${hostSeq++}`;
      deps.launcher.start(hostId, realm).then(
        // A host that comes up after this node manager stopped has nobody to answer to: kill it.
        (handle) => {
          if (ctx.self.tryTell({ type: 'host-up', key, handle })._tag === 'Left') handle.kill();
        },
        (e: unknown) => ctx.self.tell({ type: 'host-failed', key, error: describe(e) }),
      );
    };

    const place = (order: RunOrder): void => {
      const realm = order.spec.realm;
      const key = order.spec.dedicated ? `dedicated:${order.pid}` : `shared:${realm}`;
      const hostId = order.spec.dedicated ? undefined : shared.get(realm);
      if (hostId !== undefined) return runOn(hostId, order);
      const waiting = starting.get(key);
      if (waiting !== undefined) return void waiting.push(order);
      starting.set(key, [order]);
      startHost(key, realm);
    };

    const runOn = (hostId: string, order: RunOrder): void => {
      const h = hosts.get(hostId)!;
      h.procs.add(order.pid);
      procs.get(order.pid)!.hostId = hostId;
      h.handle.send({ t: 'run', pid: order.pid, modulePath: order.modulePath, args: order.spec.args, realm: order.spec.realm });
    };

    /** CAS write of the proc's record: straight at the known revision, else read-modify-write. */
    const write = async (pid: string, p: Proc, change: (r: ProcRecord) => ProcRecord | undefined): Promise<void> => {
      if (p.record !== undefined && p.revision !== undefined) {
        const next = change(p.record);
        if (next === undefined) return;
        const rev = await deps.table.writeAt(next, p.revision);
        if (rev !== undefined) {
          p.record = next;
          p.revision = rev;
          return;
        }
      }
      p.revision = undefined;
      await deps.table.transition(pid, change);
    };

    const markRunning = (pid: string, p: Proc): void => {
      const actorPath = p.actorPath;
      void write(pid, p, (r) => (r.state === 'exited' ? undefined : { ...r, state: 'running', node: cfg.id, ...(actorPath === undefined ? {} : { actorPath }) })).catch((e: unknown) =>
        log.warn({ err: e, pid }, 'could not record start'),
      );
    };

    // A terminal status must reach the proc table even if NATS is away when the proc ends: failed
    // writes are kept and retried on every heartbeat until they land (the write is a CAS, so a
    // status recorded meanwhile by someone else — lost, by the scheduler — is left alone).
    const unrecorded = new Map<string, { p: Proc; status: Status }>();
    const recordExit = (pid: string, p: Proc, status: Status): void => {
      unrecorded.set(pid, { p, status });
      write(pid, p, (r) => (r.state === 'exited' && cfg.exitTwice !== true ? undefined : { ...r, state: 'exited', node: cfg.id, status })).then(
        () => unrecorded.delete(pid),
        (e: unknown) => log.warn({ err: e, pid }, 'could not record an exit yet; will retry'),
      );
    };

    const exited = (pid: string, status: Status): void => {
      const p = procs.get(pid);
      if (p === undefined) return; // a duplicate report: the first one counted
      procs.delete(pid);
      p.evictTimer?.cancel();
      const h = p.hostId === undefined ? undefined : hosts.get(p.hostId);
      h?.procs.delete(pid);
      if (h !== undefined && (h.dedicatedTo === pid || (h.tainted && h.procs.size === 0))) h.handle.kill();
      recordExit(pid, p, status);
      if (cfg.exitTwice === true) recordExit(pid, p, status);
      deps.publish({ type: 'exited', pid, node: cfg.id, status });
      if (p.order.spec.name !== undefined) void unname(p.order, pid);
    };

    const started = (pid: string, actorPath: string | undefined, kind: 'function' | 'service'): void => {
      const p = procs.get(pid);
      if (p === undefined) return;
      p.kind = kind;
      if (actorPath !== undefined) p.actorPath = actorPath;
      if (kind === 'service') markRunning(pid, p);
      else ctx.scheduleOnce(RUNNING_WRITE_DELAY_MS, { type: 'mark-running', pid });
      deps.publish({ type: 'started', pid, node: cfg.id });
      const name = p.order.spec.name;
      if (name !== undefined && actorPath !== undefined) {
        const rec: NameRecord = { realm: p.order.spec.realm, name, pid, actorPath };
        void deps.namesKv.put(`${rec.realm}.${name}`, encode(rec)).catch((e: unknown) => log.warn({ err: e }, 'could not register name'));
      }
    };

    const unname = async (order: RunOrder, pid: string): Promise<void> => {
      const key = `${order.spec.realm}.${order.spec.name}`;
      const cur = await deps.namesKv.get(key).catch(() => null);
      if (cur?.value == null) return;
      const rec = JSON.parse(new TextDecoder().decode(cur.value)) as NameRecord;
      if (rec.pid === pid) await deps.namesKv.delete(key, cur.revision).catch(() => {}); // a successor may own it now
    };

    const hostGone = (hostId: string, detail: string): void => {
      const h = hosts.get(hostId);
      if (h === undefined) return;
      hosts.delete(hostId);
      if (shared.get(h.realm) === hostId) shared.delete(h.realm);
      for (const pid of [...h.procs]) {
        const evicting = procs.get(pid)?.evictTimer !== undefined;
        exited(pid, evicting ? { kind: 'evicted', message: 'evicted (host stopped)' } : { kind: 'crashed', message: `proc host ${hostId} died: ${detail}` });
      }
    };

    const heartbeat = (): void => {
      for (const [pid, u] of [...unrecorded]) recordExit(pid, u.p, u.status);
      const rec: NodeRecord = { id: cfg.id, mcpu: cfg.mcpu, memMb: cfg.memMb, address: cfg.address, startedAtMs, heartbeatSeq: heartbeatSeq++ };
      void deps.nodesKv.put(cfg.id, encode(rec)).catch((e: unknown) => log.warn({ err: e }, 'heartbeat failed'));
      for (const [id, h] of hosts) {
        if (h.pingsMissed >= cfg.hostPingMissesMax) {
          log.warn({ host: id }, 'proc host stopped answering; killing it');
          h.handle.kill();
          hostGone(id, `missed ${h.pingsMissed} heartbeats`);
          continue;
        }
        h.pingsMissed++;
        h.handle.send({ t: 'ping', seq: pingSeq++ });
      }
      // Offer our BE slots; the scheduler counts what it has placed here against them.
      void deps.pull(cfg.beSlots).catch(() => {});
    };

    const handle = (m: NodeMsg): void => {
      switch (m.type) {
        case 'run':
          if (!procs.has(m.order.pid)) {
            procs.set(m.order.pid, { order: m.order, ...(m.order.record === undefined ? {} : { record: m.order.record, revision: m.order.revision! }) });
            place(m.order);
          }
          return m.reply();
        case 'mark-running': {
          const p = procs.get(m.pid);
          if (p !== undefined) markRunning(m.pid, p);
          return;
        }
        case 'evict': {
          const p = procs.get(m.pid);
          if (p === undefined) return m.reply({ type: 'unknown-proc', message: `proc ${m.pid} is not running on ${cfg.id}` });
          if (p.evictTimer === undefined) {
            p.evictTimer = ctx.scheduleOnce(m.graceMs, { type: 'force-evict', pid: m.pid });
            if (p.hostId !== undefined) hosts.get(p.hostId)?.handle.send({ t: 'evict', pid: m.pid });
          }
          return m.reply();
        }
        case 'force-evict': {
          const p = procs.get(m.pid);
          if (p === undefined) return;
          const h = p.hostId === undefined ? undefined : hosts.get(p.hostId);
          if (h !== undefined && h.dedicatedTo === m.pid) return h.handle.kill(); // its exit reports 'evicted'
          if (h !== undefined) {
            // Shared host: the proc's code cannot be killed alone. Report it evicted, retire the host.
            h.tainted = true;
            if (shared.get(h.realm) === p.hostId) shared.delete(h.realm);
          }
          return exited(m.pid, { kind: 'evicted', message: 'evicted by force after the grace period' });
        }
        case 'host-up': {
          const { handle: hh } = m;
          const orders = starting.get(m.key) ?? [];
          starting.delete(m.key);
          const dedicated = m.key.startsWith('dedicated:') ? m.key.slice('dedicated:'.length) : undefined;
          hosts.set(hh.hostId, { handle: hh, realm: hh.realm, procs: new Set(), tainted: false, pingsMissed: 0, ...(dedicated === undefined ? {} : { dedicatedTo: dedicated }) });
          if (dedicated === undefined) shared.set(hh.realm, hh.hostId);
          hh.onMessage((msg) => ctx.self.tell({ type: 'host-msg', hostId: hh.hostId, msg }));
          hh.onExit((code, signal) => ctx.self.tell({ type: 'host-exit', hostId: hh.hostId, detail: `exit code ${code}, signal ${signal}` }));
          for (const o of orders) if (procs.has(o.pid)) runOn(hh.hostId, o);
          return;
        }
        case 'host-failed':
          for (const o of starting.get(m.key) ?? []) exited(o.pid, { kind: 'crashed', message: `could not start a proc host: ${m.error}` });
          starting.delete(m.key);
          return;
        case 'host-msg':
          return hostMessage(m.hostId, m.msg);
        case 'host-exit':
          return hostGone(m.hostId, m.detail);
        case 'tick':
          return heartbeat();
      }
    };

    const hostMessage = (hostId: string, msg: ToNode): void => {
      switch (msg.t) {
        case 'started':
          return started(msg.pid, msg.actorPath, msg.kind);
        case 'exited':
          return exited(msg.pid, msg.status);
        case 'log':
          return deps.appendLog(msg.pid, msg.stream, msg.data);
        case 'pong': {
          const h = hosts.get(hostId);
          if (h !== undefined) h.pingsMissed = 0;
          return;
        }
        case 'ready':
          return;
      }
    };

    return {
      preStart: () => {
        heartbeat();
        ctx.scheduleRepeat(cfg.heartbeatMs, { type: 'tick' });
      },
      postStop: () => {
        for (const h of hosts.values()) h.handle.kill();
      },
      receive: handle,
    };
  };
}
