import type { Context } from '../actors/index.js';
import { parseSpec } from '../proc/spec.js';
import type { ProcSpec, Status } from '../proc/types.js';
import { ControlError } from './errors.js';
import { BeQueues, LC_PENDING_MAX, Placements, QueueFullError } from './placement.js';
import type { Kv } from '../nats/types.js';
import type { ProcTable } from './proc-table.js';
import { DeposedError } from './fence.js';
import type { Mutations } from './mutations.js';
import { decodeNodeRecord, encode, type NodeRecord, type NodeRequest, type ProcEvent, type ProcRecord, type RealmRecord, type RunOrder, type SpawnReply, type WireError } from './protocol/index.js';

export interface SchedulerDeps {
  table: ProcTable;
  /** Sends a request to a node manager; resolves once the node has accepted it. */
  toNode(node: string, req: NodeRequest): Promise<void>;
  /** Fire-and-forget note to a node manager (`created`, `cancel`): nothing waits for an answer. */
  tellNode(node: string, req: NodeRequest): void;
  /** The node running in the scheduler's own process: its orders need no NATS hop, so BE procs try it first. */
  localNode?: string;
  /** Program name -> module path. */
  programs: Readonly<Record<string, string>>;
  /** Fencing token of this leadership (the lease's revision). Part of every pid, so pids never repeat. */
  term: number;
  realmsKv: Kv;
  namesKv: Kv;
  nodesKv: Kv;
  /**
   * A node not heard from (heartbeat) for this long is down and its procs are lost. The scheduler
   * judges by its own clock: in NATS 2.9 an entry expiring by bucket TTL produces no watch event.
   */
  nodeTimeoutMs: number;
  /** Simulator mutants (src/control/mutations.ts); none in production. */
  mutations?: Mutations;
}

type Ack = (r: { ok: true } | { ok: false; error: WireError }) => void;

export type SchedulerMsg =
  | { type: 'recovered'; records: ProcRecord[]; nodes: NodeRecord[]; realms: string[] }
  | { type: 'recover-failed'; error: unknown }
  | { type: 'spawn'; input: unknown; reply: (r: SpawnReply) => void }
  | { type: 'pull'; node: string; slots: number; reply: (orders: RunOrder[]) => void }
  | { type: 'evict'; pid: string; graceMs: number; reply: Ack }
  | { type: 'proc-event'; ev: ProcEvent }
  | { type: 'node-up'; node: NodeRecord }
  | { type: 'tick' }
  | { type: 'node-down'; id: string }
  | { type: 'realms'; names: string[] }
  | { type: 'realm-create'; name: string; reply: Ack }
  | { type: 'realm-remove'; name: string; reply: Ack }
  | { type: 'created'; record: ProcRecord; revision: number; reply: (r: SpawnReply) => void }
  | { type: 'create-failed'; record: ProcRecord; error: unknown; reply: (r: SpawnReply) => void }
  | { type: 'run-taken'; pid: string };

/** What a new scheduler recovers from: the proc table, live nodes and realms. */
async function snapshot(deps: SchedulerDeps): Promise<{ records: ProcRecord[]; nodes: NodeRecord[]; realms: string[] }> {
  const [records, nodeKeys, realms] = await Promise.all([deps.table.list(), deps.nodesKv.keys(), deps.realmsKv.keys()]);
  const nodes: NodeRecord[] = [];
  for (const k of nodeKeys) {
    const e = await deps.nodesKv.get(k);
    const n = e?.value == null ? undefined : decodeNodeRecord(e.value);
    if (n !== undefined) nodes.push(n);
  }
  return { records, nodes, realms };
}

/**
 * BE procs the scheduler places on its own node before spreading to the least loaded one. Its orders
 * skip NATS, so under light load a spawn takes one hop; under heavy load the leader's process would
 * be the bottleneck (scheduler and node manager share its one thread).
 */
export const LOCAL_FIRST_BE_MAX = 4;

/** Bounds on retrying a terminal status the table did not take (a lost or timed-out KV call). */
/** Attempts to delete each name of a removed realm (each bounded by the KV call's timeout). */
export const NAME_DELETE_ATTEMPTS_MAX = 5;
export const EXIT_WRITE_ATTEMPTS_MAX = 30;
export const EXIT_WRITE_RETRY_MS = 1_000;

/** Bound on messages held while the scheduler recovers its state after election. */
export const STASH_MAX = 100_000;

interface Queued {
  realm: string;
  record: ProcRecord;
}

/**
 * The leader's scheduler. Placement state changes synchronously in receive(); table writes and
 * node orders are launched and their results come back as messages, so a slow KV never stalls the
 * mailbox. On election it rebuilds reservations and queues from the proc table before serving.
 */
export function schedulerActor(deps: SchedulerDeps) {
  return (ctx: Context<SchedulerMsg>) => {
    const placements = new Placements({ overcommit: deps.mutations?.lcOvercommit === true });
    const be = new BeQueues<Queued>();
    const lcPending: ProcRecord[] = [];
    // BE slots each node offers (from its pulls) and BE procs this scheduler has running there: the
    // scheduler counts for itself, so a pull racing with run orders in flight cannot over-fill a node.
    const credits = new Map<string, number>();
    const beOn = new Map<string, number>();
    const live = new Map<string, ProcRecord>(); // accepted, not yet exited
    let realms = new Set<string>();
    let stash: SchedulerMsg[] | undefined = [];
    let seq = 0;
    const log = ctx.log;

    const order = (r: ProcRecord, revision?: number): RunOrder => ({
      pid: r.pid,
      spec: r.spec,
      modulePath: deps.programs[r.spec.program]!,
      ...(revision === undefined ? {} : { record: r, revision }),
    });

    // Records whose create is in flight, with a terminal status decided meanwhile (node down, order
    // refused): it is applied once the record exists, since a CAS on an absent record writes nothing.
    const creating = new Map<string, Status | undefined>();

    // Evictions sent while the proc's run order may still be on its way: a node that does not have
    // the proc yet answers unknown-proc, so the eviction goes again once the node has taken the order.
    const evictWanted = new Map<string, number>(); // pid -> grace ms

    /** The node has accepted a run order: send it an eviction asked for before that. */
    const runTaken = (pid: string): void => {
      const graceMs = evictWanted.get(pid);
      const rec = live.get(pid);
      if (graceMs !== undefined && rec?.node !== undefined) deps.toNode(rec.node, { op: 'evict', pid, graceMs }).catch((e: unknown) => log.warn({ err: e, pid }, 'could not re-send an eviction'));
    };

    /**
     * The fast path: a record placed at accept time has its order sent at once, in parallel with the
     * create, so the proc starts one table write earlier. The node writes nothing for it until the
     * `created` note (or a read) shows the record is durable; a failed create cancels it.
     */
    const send = (r: ProcRecord): void => {
      deps.toNode(r.node!, { op: 'run', order: { ...order(r), record: r, pendingCreate: true } }).then(
        () => ctx.self.tell({ type: 'run-taken', pid: r.pid }),
        (e: unknown) => finish(r.pid, { kind: 'lost', message: `node ${r.node} did not take the proc: ${(e as Error).message}` }),
      );
    };

    /** A node with a free BE slot and room, if the BE queues are empty (queued work goes first, fairly). */
    const beNodeNow = (spec: ProcSpec): string | undefined => {
      if (be.size > 0) return undefined;
      const fits = (node: string, slots: number): boolean => {
        const free = placements.free(node);
        return (beOn.get(node) ?? 0) < slots && free !== undefined && spec.mcpu <= free.mcpu && spec.memMb <= free.memMb;
      };
      // Light load: the scheduler's own node, whose orders skip NATS (the lowest start latency).
      const local = deps.localNode === undefined ? undefined : credits.get(deps.localNode);
      if (local !== undefined && (beOn.get(deps.localNode!) ?? 0) < LOCAL_FIRST_BE_MAX && fits(deps.localNode!, local)) return deps.localNode;
      // Past that, the least loaded node: one process (and core) per node shares the work.
      let best: string | undefined;
      for (const [node, slots] of credits) if (fits(node, slots) && (best === undefined || (beOn.get(node) ?? 0) < (beOn.get(best) ?? 0))) best = node;
      return best;
    };

    /** False once this incarnation stopped: KV calls still under way write nothing more. */
    let active = true;
    const dispatch = (r: ProcRecord, node: string): void => {
      const rec: ProcRecord = { ...r, state: 'starting', node };
      live.set(r.pid, rec);
      deps.table
        // Not once this scheduler is stopped (deposed): its read may come back after the lease lapsed,
        // and the record then stays queued for the next leader (found by the simulator, message-chaos).
        .transition(r.pid, (cur) => (active && cur.state === 'queued' ? { ...cur, state: 'starting', node } : undefined))
        .then((written) => (written === undefined ? undefined : deps.toNode(node, { op: 'run', order: order(rec) }).then(() => ctx.self.tell({ type: 'run-taken', pid: r.pid }))))
        .catch((e: unknown) => finish(r.pid, { kind: 'lost', message: `node ${node} did not take the proc: ${(e as Error).message}` }));
    };

    const finish = (pid: string, status: Status): void => {
      if (creating.has(pid)) creating.set(pid, status); // written once the record exists
      else recordExit(pid, status, 1);
      onExit(pid, status);
    };

    // The exit must reach the table even when a write is lost (found by the simulator: message-chaos
    // seed 22 left procs 'starting' forever after a dropped KV call). The write is write-once, so
    // retrying is safe; a scheduler that stops meanwhile leaves it to its successor's recovery.
    const recordExit = (pid: string, status: Status, attempt: number): void => {
      deps.table.exit(pid, status).catch((e: unknown) => {
        if (e instanceof DeposedError) return; // the successor's recovery finds the record and decides
        log.warn({ err: e, pid, attempt }, 'could not record an exit');
        if (attempt < EXIT_WRITE_ATTEMPTS_MAX) ctx.ports.timers.setTimeout(() => recordExit(pid, status, attempt + 1), EXIT_WRITE_RETRY_MS);
      });
    };

    const onExit = (pid: string, status: Status): void => {
      placements.release(pid);
      const rec = live.get(pid);
      live.delete(pid);
      evictWanted.delete(pid);
      if (rec !== undefined && !rec.spec.lc && rec.node !== undefined && beOn.has(rec.node)) beOn.set(rec.node, beOn.get(rec.node)! - 1);
      if (rec !== undefined && wantsRestart(rec, status)) respawn(rec);
      if (rec !== undefined && removing.has(rec.spec.realm)) realmGone(rec.spec.realm);
      // A parent's death does not take its children along unless their spec asks for it.
      for (const child of [...live.values()]) if (child.spec.parent === pid && child.spec.evictWithParent) evict(child.pid, 1_000, () => {});
      drain();
    };

    const wantsRestart = (r: ProcRecord, s: Status): boolean => {
      if (r.spec.restart === 'never' || s.kind === 'evicted' || !realms.has(r.spec.realm)) return false;
      if (r.spec.restart === 'on-failure' && s.kind === 'ok') return false;
      // Restart intensity: at most maxRestarts respawns within restartWithinMs, then it stays down.
      return recentRestarts(r).length < r.spec.maxRestarts;
    };

    const recentRestarts = (r: ProcRecord): number[] => {
      const horizon = ctx.ports.clock.nowMs() - r.spec.restartWithinMs;
      return (r.restartTimesMs ?? []).filter((t) => t > horizon);
    };

    const respawn = (r: ProcRecord): void => {
      const rec: ProcRecord = { ...newRecord(r.spec, r.restarts + 1), restartTimesMs: [...recentRestarts(r), ctx.ports.clock.nowMs()] };
      log.info({ old: r.pid, pid: rec.pid }, 'respawning service');
      accept(rec, () => {});
    };

    const newRecord = (spec: ProcSpec, restarts = 0): ProcRecord => ({
      pid: `${spec.realm}.${deps.term.toString(36)}-${(seq++).toString(36)}`,
      spec,
      state: 'queued',
      restarts,
      term: deps.term,
      createdAtMs: ctx.ports.clock.nowMs(),
    });

    /** Places (LC) or queues (BE) an accepted record, then writes it; the reply goes out once it is durable. */
    const accept = (rec: ProcRecord, reply: (r: SpawnReply) => void): void => {
      if (rec.spec.lc) {
        const p = placements.placeLc({ pid: rec.pid, mcpu: rec.spec.mcpu, memMb: rec.spec.memMb });
        if (p.kind === 'never-fits') return reply({ ok: false, error: new ControlError('never-fits', `no node could ever run this proc: ${p.reason}`).toWire() });
        if (p.kind === 'no-room-now' && lcPending.length >= LC_PENDING_MAX) return reply({ ok: false, error: new ControlError('queue-full', `${LC_PENDING_MAX} LC procs already wait for room`).toWire() });
        if (p.kind === 'placed') rec = { ...rec, state: 'starting', node: p.node };
        else lcPending.push(rec);
      } else {
        const node = beNodeNow(rec.spec);
        if (node !== undefined) {
          placements.assign({ pid: rec.pid, mcpu: rec.spec.mcpu, memMb: rec.spec.memMb }, node);
          beOn.set(node, (beOn.get(node) ?? 0) + 1);
          rec = { ...rec, state: 'starting', node };
        } else {
          try {
            be.push({ realm: rec.spec.realm, record: rec });
          } catch (e) {
            if (e instanceof QueueFullError) return reply({ ok: false, error: new ControlError('queue-full', e.message).toWire() });
            throw e;
          }
        }
      }
      live.set(rec.pid, rec);
      const created = rec;
      creating.set(created.pid, undefined);
      if (created.node !== undefined) send(created);
      deps.table.create(created).then(
        (revision) => ctx.self.tell({ type: 'created', record: created, revision, reply }),
        (e: unknown) => ctx.self.tell({ type: 'create-failed', record: created, error: e, reply }),
      );
    };

    /** Hands queued work to free room: pending LC procs first, then BE procs to nodes holding credits. */
    const drain = (): void => {
      for (let i = 0; i < lcPending.length; ) {
        const r = lcPending[i]!;
        const p = placements.placeLc({ pid: r.pid, mcpu: r.spec.mcpu, memMb: r.spec.memMb });
        if (p.kind !== 'placed') {
          i++;
          continue;
        }
        lcPending.splice(i, 1);
        dispatch(r, p.node);
      }
      for (const [node, slots] of credits) {
        while ((beOn.get(node) ?? 0) < slots) {
          const free = placements.free(node);
          const item = be.take((q) => free !== undefined && q.record.spec.mcpu <= free.mcpu && q.record.spec.memMb <= free.memMb);
          if (item === undefined) break;
          placements.assign({ pid: item.record.pid, mcpu: item.record.spec.mcpu, memMb: item.record.spec.memMb }, node);
          beOn.set(node, (beOn.get(node) ?? 0) + 1);
          dispatch(item.record, node);
        }
      }
    };

    const spawn = (input: unknown, reply: (r: SpawnReply) => void): void => {
      const parsed = parseSpec(input);
      if (parsed._tag === 'Left') return reply({ ok: false, error: { type: 'bad-spec', message: parsed.left.message, field: parsed.left.field } });
      const spec = parsed.right;
      if (!realms.has(spec.realm)) return reply({ ok: false, error: new ControlError('unknown-realm', `realm "${spec.realm}" does not exist; create it with \`sigma realm create ${spec.realm}\``, 'realm').toWire() });
      if (deps.programs[spec.program] === undefined) {
        return reply({ ok: false, error: new ControlError('unknown-program', `no program "${spec.program}"; known: ${Object.keys(deps.programs).sort().join(', ') || '(none)'}`, 'program').toWire() });
      }
      accept(newRecord(spec), reply);
    };

    const evict = (pid: string, graceMs: number, reply: Ack): void => {
      const rec = live.get(pid);
      if (rec === undefined) return reply({ ok: false, error: new ControlError('unknown-proc', `no running or queued proc ${pid}`).toWire() });
      const queued = be.remove((q) => q.record.pid === pid).length > 0 || removePending(pid);
      if (queued || rec.node === undefined) {
        finish(pid, { kind: 'evicted', message: 'evicted before it started' });
        return reply({ ok: true });
      }
      evictWanted.set(pid, graceMs);
      deps.toNode(rec.node, { op: 'evict', pid, graceMs }).then(
        () => reply({ ok: true }),
        (e: unknown) => reply({ ok: false, error: new ControlError('internal', `node ${rec.node} did not take the eviction: ${(e as Error).message}`).toWire() }),
      );
    };

    const removing = new Map<string, Ack[]>(); // realm -> callers waiting for its removal

    const realmCreate = (name: string, reply: Ack): void => {
      if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(name)) return reply({ ok: false, error: { type: 'bad-spec', message: `realm names match [a-z0-9][a-z0-9-]{0,62}, got "${name}"`, field: 'name' } });
      const rec: RealmRecord = { name, state: 'active', createdAtMs: ctx.ports.clock.nowMs() };
      deps.realmsKv.create(name, encode(rec)).then(
        () => {
          realms.add(name);
          reply({ ok: true });
        },
        () => reply({ ok: false, error: new ControlError('realm-exists', `realm "${name}" already exists`).toWire() }),
      );
    };

    /** Evicts every proc of the realm; once the last has exited, drops its names and its record. */
    const realmRemove = (name: string, reply: Ack): void => {
      if (!realms.has(name) && !removing.has(name)) return reply({ ok: false, error: new ControlError('unknown-realm', `realm "${name}" does not exist`).toWire() });
      realms.delete(name); // no new spawns from here on
      const waiting = removing.get(name) ?? [];
      waiting.push(reply);
      removing.set(name, waiting);
      for (const r of [...live.values()]) if (r.spec.realm === name) evict(r.pid, 1_000, () => {});
      realmGone(name);
    };

    // A realm is gone once none of its procs is live and none has its create in flight: such a
    // proc's terminal status (decided meanwhile, e.g. lost when its run order timed out) is written
    // only when the create answers (found by the simulator: realm-teardown-under-load seed 1152 removed
    // the realm while a dropped create reply left a record 'starting'). Pids start with `${realm}.`.
    const realmGone = (name: string): void => {
      const waiting = removing.get(name);
      if (waiting === undefined || [...live.values()].some((r) => r.spec.realm === name) || [...creating.keys()].some((pid) => pid.startsWith(`${name}.`))) return;
      removing.delete(name);
      void (async () => {
        for (const key of await deps.namesKv.keys()) {
          if (!key.startsWith(`${name}.`)) continue;
          // A lost delete leaves a removed realm's name behind (realm-teardown-under-load seed 3030).
          for (let attempt = 1; attempt <= NAME_DELETE_ATTEMPTS_MAX; attempt++) if (await deps.namesKv.delete(key).then(() => true, () => false)) break;
        }
        await deps.realmsKv.delete(name);
        // Nodes drop what they keep per realm (its idle hosts, its shared-memory pool). Best effort.
        for (const node of lastSeen.keys()) void deps.toNode(node, { op: 'realm-removed', realm: name }).catch(() => {});
      })().then(
        () => waiting.forEach((w) => w({ ok: true })),
        (e: unknown) => waiting.forEach((w) => w({ ok: false, error: new ControlError('internal', `realm ${name}: ${(e as Error).message}`).toWire() })),
      );
    };

    const removePending = (pid: string): boolean => {
      const i = lcPending.findIndex((r) => r.pid === pid);
      if (i >= 0) lcPending.splice(i, 1);
      return i >= 0;
    };

    const lastSeen = new Map<string, number>();
    const checkNodes = (): void => {
      const now = ctx.ports.clock.nowMs();
      for (const [id, at] of lastSeen) if (now - at > deps.nodeTimeoutMs) nodeDown(id);
    };

    const nodeDown = (id: string): void => {
      log.warn({ node: id }, 'node is down');
      lastSeen.delete(id);
      credits.delete(id);
      beOn.delete(id);
      for (const pid of placements.removeNode(id)) {
        // Mutant 'run-twice': a node that stopped heartbeating may still run its procs (cut off, not dead).
        const other = deps.mutations?.moveFromSilentNode === true ? [...lastSeen.keys()][0] : undefined;
        const rec = live.get(pid);
        if (other !== undefined && rec !== undefined) {
          placements.assign({ pid, mcpu: rec.spec.mcpu, memMb: rec.spec.memMb }, other);
          live.set(pid, { ...rec, node: other });
          deps.toNode(other, { op: 'run', order: order({ ...rec, node: other }) }).catch(() => {});
        } else finish(pid, { kind: 'lost', message: `node ${id} stopped heartbeating` });
      }
    };

    const recover = (m: Extract<SchedulerMsg, { type: 'recovered' }>): void => {
      realms = new Set(m.realms);
      for (const n of m.nodes) {
        placements.upsertNode({ id: n.id, mcpu: n.mcpu, memMb: n.memMb });
        lastSeen.set(n.id, ctx.ports.clock.nowMs()); // a grace period: stale ones time out from here
      }
      const alive = new Set(m.nodes.map((n) => n.id));
      for (const r of m.records) {
        if (r.state === 'exited') continue;
        live.set(r.pid, r);
        if (r.node !== undefined && alive.has(r.node)) {
          placements.assign({ pid: r.pid, mcpu: r.spec.mcpu, memMb: r.spec.memMb }, r.node);
          if (!r.spec.lc) beOn.set(r.node, (beOn.get(r.node) ?? 0) + 1);
          // The old leader may have died between recording the placement and sending the order; the
          // node ignores a run it already has, so sending again is safe. An order that does not get
          // through ends the proc lost, as in dispatch: nobody else would ever run it (found by the
          // simulator: message-chaos seed 704 left a proc 'starting' when the re-sent order was dropped).
          if (r.state === 'starting') deps.toNode(r.node, { op: 'run', order: order(r) }).catch((e: unknown) => finish(r.pid, { kind: 'lost', message: `node ${r.node} did not take the proc: ${(e as Error).message}` }));
        }
        else if (r.node !== undefined) finish(r.pid, { kind: 'lost', message: `node ${r.node} was gone when a new scheduler took over` });
        else if (r.spec.lc) lcPending.push(r);
        else be.push({ realm: r.spec.realm, record: r });
      }
      log.info({ term: deps.term, live: live.size, nodes: alive.size }, 'scheduler recovered');
    };

    const handle = (m: SchedulerMsg): void => {
      switch (m.type) {
        case 'spawn':
          return spawn(m.input, m.reply);
        case 'created': {
          m.reply({ ok: true, pid: m.record.pid });
          const decided = creating.get(m.record.pid);
          creating.delete(m.record.pid);
          // Even if the proc has exited meanwhile: its node holds the exit until it knows the revision.
          if (m.record.node !== undefined) deps.tellNode(m.record.node, { op: 'created', pid: m.record.pid, revision: m.revision });
          // onExit already ran when the status was decided; only the write was held back.
          if (decided !== undefined) recordExit(m.record.pid, decided, 1);
          if (removing.has(m.record.spec.realm)) realmGone(m.record.spec.realm);
          if (m.record.node === undefined) drain();
          return;
        }
        case 'create-failed':
          creating.delete(m.record.pid);
          if (m.record.node !== undefined) deps.tellNode(m.record.node, { op: 'cancel', pid: m.record.pid });
          if (live.has(m.record.pid) && m.record.node !== undefined && !m.record.spec.lc && beOn.has(m.record.node)) beOn.set(m.record.node, beOn.get(m.record.node)! - 1);
          live.delete(m.record.pid);
          placements.release(m.record.pid);
          be.remove((q) => q.record.pid === m.record.pid);
          removePending(m.record.pid);
          // The create may have landed even though its answer did not (a timed-out KV call): end that
          // record, or it stays 'queued'/'starting' forever with nobody to run it (found by the
          // simulator: realm-teardown-under-load seed 126). A no-op when there is no record.
          recordExit(m.record.pid, { kind: 'lost', message: 'the spawn was refused: its record could not be confirmed; it never ran' }, 1);
          evictWanted.delete(m.record.pid);
          if (removing.has(m.record.spec.realm)) realmGone(m.record.spec.realm);
          return m.reply({ ok: false, error: new ControlError('internal', `could not record the proc: ${(m.error as Error).message}`).toWire() });
        case 'pull':
          credits.set(m.node, m.slots);
          drain();
          return m.reply([]);
        case 'evict':
          return evict(m.pid, m.graceMs, m.reply);
        case 'run-taken':
          return runTaken(m.pid);
        case 'proc-event':
          if (m.ev.type === 'exited' && live.has(m.ev.pid)) onExit(m.ev.pid, m.ev.status);
          else if (m.ev.type === 'started') {
            const r = live.get(m.ev.pid);
            if (r !== undefined) live.set(m.ev.pid, { ...r, state: 'running' });
          }
          return;
        case 'node-up':
          lastSeen.set(m.node.id, ctx.ports.clock.nowMs());
          placements.upsertNode({ id: m.node.id, mcpu: m.node.mcpu, memMb: m.node.memMb });
          return drain();
        case 'tick':
          return checkNodes();
        case 'node-down':
          return nodeDown(m.id);
        case 'realms':
          realms = new Set(m.names.filter((n) => !removing.has(n)));
          return;
        case 'realm-create':
          return realmCreate(m.name, m.reply);
        case 'realm-remove':
          return realmRemove(m.name, m.reply);
        case 'recovered':
        case 'recover-failed':
          return;
      }
    };

    return {
      postStop: () => {
        active = false;
      },
      // Every incarnation (the first, and any after a supervisor restart) rebuilds its state from the
      // proc table and the buckets; requests wait in the stash until then.
      preStart: () => {
        ctx.scheduleRepeat(Math.max(10, deps.nodeTimeoutMs / 4), { type: 'tick' });
        snapshot(deps).then(
          (s) => ctx.self.tell({ type: 'recovered', ...s }),
          (e: unknown) => ctx.self.tell({ type: 'recover-failed', error: e }),
        );
      },
      receive: (m: SchedulerMsg) => {
        // Fail into the supervisor, which restarts this actor, which reads its state again.
        if (m.type === 'recover-failed') throw new Error(`scheduler could not read its state: ${(m.error as Error).message}`, { cause: m.error });
        if (stash !== undefined) {
          if (m.type !== 'recovered') {
            if (stash.length < STASH_MAX) stash.push(m);
            else if (m.type === 'spawn') m.reply({ ok: false, error: new ControlError('no-scheduler', 'the scheduler is still recovering; retry').toWire() });
            return;
          }
          recover(m);
          const held = stash;
          stash = undefined;
          for (const h of held) handle(h);
          drain();
          return;
        }
        handle(m);
      },
    };
  };
}
