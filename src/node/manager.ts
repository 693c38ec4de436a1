import type { Context } from '../actors/index.js';
import type { TimerHandle } from '../ports/types.js';
import { describe } from '../actors/errors.js';
import type { ProcTable } from '../control/proc-table.js';
import { decodeNameRecord, encode, type NameRecord, type NodeRecord, type ProcEvent, type ProcRecord, type RunOrder, type WireError } from '../control/protocol/index.js';
import type { ToNode } from '../host/protocol.js';
import type { Kv } from '../nats/types.js';
import type { Status } from '../proc/types.js';
import type { DataPathPort, DataPathStatus, HostWiring } from './dp-port.js';
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
  /** Simulator mutant only: each batch of lingering endpoints closed forgets its first one (never reclaimed). */
  forgetLingering?: boolean;
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
  /** The node's data path (pools, endpoints, BPF maps or hub); src/sim/datapath.ts in the simulator. */
  datapath?: DataPathPort;
}

export type NodeMsg =
  | { type: 'run'; order: RunOrder; reply: (error?: WireError) => void }
  | { type: 'evict'; pid: string; graceMs: number; reply: (error?: WireError) => void }
  | { type: 'host-up'; key: string; handle: HostHandle; wiring?: HostWiring }
  | { type: 'datapath-status'; reply: (s: DataPathStatus | undefined) => void }
  | { type: 'dp-close' }
  /** A call from the node process into the data path (`sigma call`; the gateway's path). */
  | { type: 'datapath-call'; realm: string; target: string; payload: string; timeoutMs: number; reply: (r: { ok: true; answer: string } | { ok: false; error: WireError }) => void }
  | { type: 'realm-removed'; realm: string; reply: (error?: WireError) => void }
  | { type: 'host-failed'; key: string; error: string }
  | { type: 'host-msg'; hostId: string; msg: ToNode }
  | { type: 'host-exit'; hostId: string; detail: string }
  | { type: 'force-evict'; pid: string }
  | { type: 'mark-running'; pid: string }
  | { type: 'created'; pid: string; revision: number }
  | { type: 'cancel'; pid: string }
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
  /** The order came before its record was durable (RunOrder.pendingCreate): write nothing yet. */
  awaitingCreate?: boolean;
  /** A `running` write held back until the record exists. */
  runningHeld?: boolean;
  /** Its record could not be created: the spawn was refused, so nothing is ever written for it. */
  cancelled?: boolean;
  /** Data-path endpoint, when its host has a data path. */
  endpoint?: number;
}

/**
 * A function that exits within this delay never has its `running` state written: its exit is the
 * only table write it costs (most serverless functions are that short).
 */
export const RUNNING_WRITE_DELAY_MS = 20;

/** Attempts (each a read and a CAS delete, each bounded by the KV call's timeout) to remove an exited proc's name. */
export const NAME_DELETE_ATTEMPTS_MAX = 5;

/** Grace a proc gets to stop when its spawn is cancelled (its record could not be created). */
export const CANCEL_GRACE_MS = 1_000;

/**
 * Heartbeats a proc may wait for its record before the node reads it back itself (the `created`
 * note is core NATS, at most once), and reads that find no record before the node gives up on it:
 * past JS_TIMEOUT_MS_DEFAULT (5 s) the scheduler's create has failed, and then a `cancel` was sent.
 */
export const AWAIT_CREATE_HEARTBEATS = 2;
export const AWAIT_CREATE_READS_MAX = 40;

/**
 * A proc's endpoint outlives it by this long: descriptors it wrote just before exiting are still in
 * its host's socket (the exit report travels on another channel and can overtake them), and they
 * should arrive rather than be dropped as coming from an unknown sender. Then it is unregistered and
 * everything it still holds is reclaimed. A dead host's endpoints go at once.
 */
export const ENDPOINT_LINGER_MS = 500;

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

    const dp = deps.datapath;
    // Endpoints of exited procs, oldest first, with the time each may go; closed in batches.
    const lingering: Array<{ endpoint: number; atMs: number }> = [];
    const lingerEndpoint = (endpoint: number): void => {
      if (dp === undefined) return;
      if (lingering.length === 0) ctx.scheduleOnce(ENDPOINT_LINGER_MS, { type: 'dp-close' });
      lingering.push({ endpoint, atMs: ctx.ports.clock.nowMs() + ENDPOINT_LINGER_MS });
    };
    const lookupName = async (key: string): Promise<NameRecord | undefined> => {
      const e = await deps.namesKv.get(key);
      return e?.value == null ? undefined : decodeNameRecord(e.value);
    };
    const dataPathCall = (m: Extract<NodeMsg, { type: 'datapath-call' }>): void => {
      const api = dp?.local(m.realm, lookupName);
      if (api === undefined) return m.reply({ ok: false, error: { type: 'datapath-unavailable', message: `node ${cfg.id} has no data path for realm ${m.realm} (no host of that realm runs here)` } });
      api.call(m.target, m.payload, { timeoutMs: m.timeoutMs }).then(
        (answer) => m.reply({ ok: true, answer: new TextDecoder().decode(answer) }),
        (e: unknown) => m.reply({ ok: false, error: { type: (e as { type?: string }).type ?? 'internal', message: describe(e) } }),
      );
    };
    const closeLingering = (): void => {
      const now = ctx.ports.clock.nowMs();
      let n = 0;
      while (n < lingering.length && lingering[n]!.atMs <= now) n++;
      const batch = lingering.splice(0, n).map((l) => l.endpoint);
      dp?.closeEndpoints(cfg.forgetLingering === true ? batch.slice(1) : batch);
      if (lingering.length > 0) ctx.scheduleOnce(Math.max(0, lingering[0]!.atMs - now), { type: 'dp-close' });
    };
    const startHost = (key: string, realm: string): void => {
      const hostId = `${cfg.id}-h${hostSeq++}`;
      // The realm's pool and the host's data-path connection exist before the fork: the pool fd is inherited.
      const wired = dp === undefined ? Promise.resolve(undefined) : prepareDataPath(dp, hostId, realm);
      wired
        .then((wiring) =>
          deps.launcher.start(hostId, realm, wiring === undefined ? {} : { fds: wiring.fds }).then(
            (handle) => ({ handle, wiring }),
            (e: unknown) => {
              if (wiring !== undefined) dp?.hostGone(hostId);
              throw e;
            },
          ),
        )
        .then(
          // A host that comes up after this node manager stopped has nobody to answer to: kill it.
          ({ handle, wiring }) => {
            if (ctx.self.tryTell({ type: 'host-up', key, handle, ...(wiring === undefined ? {} : { wiring }) })._tag === 'Left') handle.kill();
          },
          (e: unknown) => ctx.self.tell({ type: 'host-failed', key, error: describe(e) }),
        );
    };
    const prepareDataPath = (port: DataPathPort, hostId: string, realm: string): Promise<HostWiring | undefined> =>
      port.prepareHost(hostId, realm).catch((e: unknown) => {
        log.warn({ err: e, hostId }, 'data path: could not prepare the host; it runs without a data path');
        return undefined;
      });

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
      const p = procs.get(order.pid)!;
      p.hostId = hostId;
      const endpoint = dp?.openEndpoint(hostId, order.spec.exports);
      if (endpoint !== undefined) p.endpoint = endpoint;
      h.handle.send({ t: 'run', pid: order.pid, modulePath: order.modulePath, args: order.spec.args, realm: order.spec.realm, ...(endpoint === undefined ? {} : { endpoint }) });
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
      if (p.awaitingCreate === true) return void (p.runningHeld = true); // written once the record exists
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
      if (p.cancelled === true) {
        // Its spawn was refused, yet a create that timed out may still have landed: end such a
        // record (a CAS that writes nothing when the record is absent) rather than leave it starting.
        unrecorded.delete(pid);
        void deps.table.exit(pid, { kind: 'error', message: 'its spawn failed: the record could not be written in time' }).catch(() => {});
        return;
      }
      unrecorded.set(pid, { p, status });
      if (p.awaitingCreate === true) return; // written when the record is known to exist
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
      if (p.endpoint !== undefined) lingerEndpoint(p.endpoint);
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
      // A function that is still running after RUNNING_WRITE_DELAY_MS has its start written and
      // reported then; a shorter one costs neither (its exit says it all).
      if (kind === 'service') {
        markRunning(pid, p);
        deps.publish({ type: 'started', pid, node: cfg.id });
      } else ctx.scheduleOnce(RUNNING_WRITE_DELAY_MS, { type: 'mark-running', pid });
      const name = p.order.spec.name;
      if (name !== undefined && actorPath !== undefined) {
        const exports = p.order.spec.exports;
        const rec: NameRecord = { realm: p.order.spec.realm, name, pid, actorPath, ...(p.endpoint === undefined ? {} : { node: cfg.id, endpoint: p.endpoint }), ...(exports === undefined ? {} : { exports }) };
        void deps.namesKv.put(`${rec.realm}.${name}`, encode(rec)).catch((e: unknown) => log.warn({ err: e }, 'could not register name'));
      }
    };

    // A name outlives its proc if its removal is lost (found by the simulator: realm-teardown-under-load
    // seed 3030, a delete that timed out): re-read and try again, a bounded number of times.
    const unname = async (order: RunOrder, pid: string): Promise<void> => {
      const key = `${order.spec.realm}.${order.spec.name}`;
      for (let attempt = 1; attempt <= NAME_DELETE_ATTEMPTS_MAX; attempt++) {
        const cur = await deps.namesKv.get(key).catch(() => undefined);
        if (cur === null) return;
        if (cur !== undefined) {
          if (decodeNameRecord(cur.value)?.pid !== pid) return; // a successor owns it now
          if (await deps.namesKv.delete(key, cur.revision).then(() => true, () => false)) return;
        }
      }
      log.warn({ key, pid }, 'could not remove a name; it stays until its realm is removed or the name is taken again');
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
      dp?.hostGone(hostId);
    };

    // Procs started on the fast path whose record is not known to exist yet: pid -> heartbeats waited
    // and reads that found nothing. Cleared by the `created` note, a read that finds it, or `cancel`.
    const awaiting = new Map<string, { p: Proc; heartbeats: number; reads: number }>();

    /** The record is durable at `revision`: write what was held back (the start, the exit). */
    const recordKnown = (pid: string, p: Proc, revision: number, record?: ProcRecord): void => {
      if (p.awaitingCreate !== true) return;
      awaiting.delete(pid);
      p.awaitingCreate = false;
      p.revision = revision;
      if (record !== undefined) p.record = record;
      if (p.runningHeld === true && procs.get(pid) === p) markRunning(pid, p);
      const u = unrecorded.get(pid);
      if (u !== undefined) recordExit(pid, u.p, u.status);
    };

    const checkAwaiting = (): void => {
      for (const [pid, a] of [...awaiting]) {
        if (++a.heartbeats < AWAIT_CREATE_HEARTBEATS) continue;
        deps.table.get(pid).then(
          (cur) => {
            if (cur !== undefined) return recordKnown(pid, a.p, cur.revision, cur.record);
            if (++a.reads < AWAIT_CREATE_READS_MAX) return;
            log.warn({ pid }, 'the record of a started proc never appeared; its spawn failed');
            awaiting.delete(pid);
            // As if the scheduler's `cancel` (a core NATS note, at most once) had come: the proc stops
            // too, rather than run on unknown to the scheduler (a realm removal would never end it).
            ctx.self.tell({ type: 'cancel', pid });
          },
          (e: unknown) => log.warn({ err: e, pid }, 'could not read back a record; will retry'),
        );
      }
    };

    const heartbeat = (): void => {
      for (const [pid, u] of [...unrecorded]) if (u.p.awaitingCreate !== true) recordExit(pid, u.p, u.status);
      checkAwaiting();
      const dp = deps.datapath?.peerAddress?.();
      const rec: NodeRecord = { id: cfg.id, mcpu: cfg.mcpu, memMb: cfg.memMb, address: cfg.address, startedAtMs, heartbeatSeq: heartbeatSeq++, ...(dp === undefined ? {} : { datapath: dp }) };
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
            const p: Proc = { order: m.order, ...(m.order.record === undefined || m.order.revision === undefined ? {} : { record: m.order.record, revision: m.order.revision }) };
            if (m.order.pendingCreate === true) {
              // Started before its record is durable (the scheduler creates it meanwhile).
              p.awaitingCreate = true;
              if (m.order.record !== undefined) p.record = m.order.record;
              awaiting.set(m.order.pid, { p, heartbeats: 0, reads: 0 });
            }
            procs.set(m.order.pid, p);
            place(m.order);
          }
          return m.reply();
        case 'created': {
          const p = procs.get(m.pid) ?? unrecorded.get(m.pid)?.p;
          if (p !== undefined) recordKnown(m.pid, p, m.revision);
          return;
        }
        case 'cancel': {
          const p = procs.get(m.pid) ?? unrecorded.get(m.pid)?.p ?? awaiting.get(m.pid)?.p;
          if (p === undefined) return;
          p.cancelled = true;
          awaiting.delete(m.pid);
          const u = unrecorded.get(m.pid);
          if (u !== undefined) recordExit(m.pid, u.p, u.status);
          if (procs.get(m.pid) === p && p.evictTimer === undefined) {
            p.evictTimer = ctx.scheduleOnce(CANCEL_GRACE_MS, { type: 'force-evict', pid: m.pid });
            if (p.hostId !== undefined) hosts.get(p.hostId)?.handle.send({ t: 'evict', pid: m.pid });
          }
          return;
        }
        case 'mark-running': {
          const p = procs.get(m.pid);
          if (p === undefined) return;
          markRunning(m.pid, p);
          return deps.publish({ type: 'started', pid: m.pid, node: cfg.id });
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
          if (m.wiring !== undefined && !dp?.attachHost(m.wiring, hh)) dp?.hostGone(hh.hostId);
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
        case 'datapath-status':
          return m.reply(dp?.status());
        case 'dp-close':
          return closeLingering();
        case 'datapath-call':
          return dataPathCall(m);
        case 'realm-removed':
          // Its hosts go (the busy ones once empty, like a tainted host): the last one frees the realm's pool.
          if (shared.get(m.realm) !== undefined) shared.delete(m.realm);
          for (const h of hosts.values()) {
            if (h.realm !== m.realm) continue;
            h.tainted = true;
            if (h.procs.size === 0) h.handle.kill();
          }
          return m.reply();
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
        case 'dp-stats':
          return dp?.noteHostStats(hostId, msg.stats);
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
        dp?.close();
      },
      receive: handle,
    };
  };
}
