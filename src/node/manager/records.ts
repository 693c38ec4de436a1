// Proc records in the table: starts and exits written once by CAS, held back until the record exists.
import { assert } from '../../assert.js';
import type { ProcRecord, RunOrder } from '../../control/protocol/index.js';
import type { Status } from '../../proc/types.js';
import type { NodeState, Proc } from './state.js';
import { reportExit } from './procs.js';

/**
 * Heartbeats a proc may wait for its record before the node reads it back itself (the `created`
 * note is core NATS, at most once), and reads that find no record before the node gives up on it:
 * past JS_TIMEOUT_MS_DEFAULT (5 s) the scheduler's create has failed, and then a `cancel` was sent.
 */
export const AWAIT_CREATE_HEARTBEATS = 2;
export const AWAIT_CREATE_READS_MAX = 10;

/**
 * CAS write of the proc's record: straight at the known revision, else read-modify-write. Resolves
 * false when the table has no record of the pid (nothing was written).
 */
async function write(s: NodeState, pid: string, p: Proc, change: (r: ProcRecord) => ProcRecord | undefined): Promise<boolean> {
  if (p.record !== undefined && p.revision !== undefined) {
    const next = change(p.record);
    if (next === undefined) return true;
    const rev = await s.deps.table.writeAt(next, p.revision);
    if (rev !== undefined) {
      p.record = next;
      p.revision = rev;
      return true;
    }
  }
  p.revision = undefined;
  let found = false;
  await s.deps.table.transition(pid, (r) => ((found = true), change(r)));
  return found;
}

export function markRunning(s: NodeState, pid: string, p: Proc): void {
  if (p.awaitingCreate === true) return void (p.runningHeld = true); // written once the record exists
  const actorPath = p.actorPath;
  void write(s, pid, p, (r) => (r.state === 'exited' ? undefined : { ...r, state: 'running', node: s.cfg.id, ...(actorPath === undefined ? {} : { actorPath }) })).catch((e: unknown) =>
    s.log.warn({ err: e, pid }, 'could not record start'),
  );
}

export function recordExit(s: NodeState, pid: string, p: Proc, status: Status): void {
  if (p.cancelled === true) {
    // Its spawn was refused, yet a create that timed out may still have landed: end such a record
    // rather than leave it starting. Only the one its own order made: another scheduler's create of
    // the same key may have won, for a run elsewhere (a CAS that writes nothing when none is ours).
    s.unrecorded.delete(pid);
    const ours = (r: ProcRecord): boolean => r.state !== 'exited' && r.node === s.cfg.id && r.term === knownTerm(p);
    void s.deps.table.transition(pid, (r) => (ours(r) ? { ...r, state: 'exited', status: { kind: 'error', message: 'its spawn failed: the record could not be written in time' } } : undefined)).catch(() => {});
    return;
  }
  s.unrecorded.set(pid, { p, status });
  if (p.awaitingCreate === true) {
    // Written when the record is known to exist: ask now rather than at a later heartbeat (its
    // `created` note may have overtaken the run order), so the table does not lag the exit event.
    const a = s.awaiting.get(pid);
    if (a !== undefined) readBack(s, pid, a);
    return;
  }
  write(s, pid, p, (r) => (r.state === 'exited' && s.cfg.exitTwice !== true ? undefined : { ...r, state: 'exited', node: s.cfg.id, status })).then(
    (found) => {
      s.unrecorded.delete(pid);
      // A proc runs only once its record is durable: a record gone by its exit was lost, and the spawn has no terminal status (chaos scheduler scenario).
      if (!found) s.log.warn({ pid, orderRevision: p.order.revision, term: knownTerm(p), node: s.cfg.id }, 'the exit of a proc that ran here found no record to write it to');
    },
    (e: unknown) => s.log.warn({ err: e, pid }, 'could not record an exit yet; will retry'),
  );
}

/** The record is durable at `revision`: write what was held back (the start, the exit). */
function recordKnown(s: NodeState, pid: string, p: Proc, revision: number, record?: ProcRecord): void {
  if (p.awaitingCreate !== true) return;
  s.awaiting.delete(pid);
  p.awaitingCreate = false;
  p.revision = revision;
  if (record !== undefined) p.record = record;
  if (p.startHeld === true && s.procs.get(pid) === p) {
    p.startHeld = false;
    s.ops.place(p.order);
  }
  if (p.runningHeld === true && s.procs.get(pid) === p) markRunning(s, pid, p);
  const u = s.unrecorded.get(pid);
  if (u !== undefined) recordExit(s, pid, u.p, u.status);
}

export function checkAwaiting(s: NodeState): void {
  for (const [pid, a] of [...s.awaiting]) if (++a.heartbeats >= AWAIT_CREATE_HEARTBEATS) readBack(s, pid, a);
}

/**
 * Reads an ordered proc's record back: found here, the proc starts (and what was held back is
 * written); found on another node, or never found, the proc stops without having started.
 */
function readBack(s: NodeState, pid: string, a: { p: Proc; reads: number }): void {
  s.deps.table.get(pid).then(
    (cur) => {
      // Another scheduler's create of the same key (its predecessor's never landed) placed it elsewhere.
      if (cur !== undefined && (cur.record.node !== s.cfg.id || cur.record.state === 'exited')) return giveUp(s, pid, `its record names ${cur.record.state === 'exited' ? 'an exited proc' : `node ${cur.record.node}`}`);
      if (cur !== undefined) return recordKnown(s, pid, a.p, cur.revision, cur.record);
      if (++a.reads < AWAIT_CREATE_READS_MAX) return;
      giveUp(s, pid, 'its record never appeared');
      // A create still being retried may land later (the scheduler retries through a JetStream
      // election): told, the scheduler writes this end once it does, or ignores it if it never does.
      // Silent, the record stayed 'starting' with nobody to run it (found by the simulator:
      // js-server-crash seed 91, once heartbeats came every 750 ms).
      // Not remembered: another scheduler's create of the same key may still send this node an order to run.
      reportExit(s, pid, { kind: 'lost', message: `node ${s.cfg.id} never saw its record and did not run it` }, { unrecorded: true, term: a.p.order.record?.term });
    },
    (e: unknown) => s.log.warn({ err: e, pid }, 'could not read back a record; will retry'),
  );
}

/** As if the scheduler's `cancel` (a core NATS note, at most once) had come: the order is dropped. */
function giveUp(s: NodeState, pid: string, why: string): void {
  s.log.warn({ pid }, `an ordered proc is not this node's to run: ${why}; its spawn failed here`);
  s.awaiting.delete(pid);
  s.ctx.self.tell({ type: 'cancel', pid });
}

/** Exits whose write failed go again (each heartbeat), unless still waiting for their record. */
export function retryUnrecorded(s: NodeState): void {
  for (const [pid, u] of [...s.unrecorded]) if (u.p.awaitingCreate !== true) recordExit(s, pid, u.p, u.status);
}

/** A run order: a proc this node has not seen yet is taken; a repeated one is acknowledged only. */
export function taken(s: NodeState, order: RunOrder): Proc | undefined {
  if (s.cfg.rerunRepeatedOrder !== true) {
    if (s.procs.has(order.pid)) return undefined;
    const ended = s.ended.get(order.pid);
    // Ended here already: the scheduler that sent this may not have seen the exit (core NATS, at most once).
    if (ended !== undefined) return void reportExit(s, order.pid, ended);
  }
  const p: Proc = { order, ...(order.record === undefined || order.revision === undefined ? {} : { record: order.record, revision: order.revision }) };
  if (order.pendingCreate === true) {
    // Started before its record is durable (the scheduler creates it meanwhile).
    p.awaitingCreate = true;
    if (order.record !== undefined) p.record = order.record;
    s.awaiting.set(order.pid, { p, heartbeats: 0, reads: 0 });
  }
  s.procs.set(order.pid, p);
  return p;
}

export function created(s: NodeState, pid: string, revision: number): void {
  const p = s.procs.get(pid) ?? s.unrecorded.get(pid)?.p;
  if (p !== undefined) recordKnown(s, pid, p, revision);
}

/** The term of the proc's record: the durable one's once read back, else its order's. */
function knownTerm(p: Proc): number | undefined {
  return p.record?.term ?? p.order.record?.term;
}

/** The scheduler could not create the record: nothing is written for the proc, and it stops. */
export function cancel(s: NodeState, pid: string, term: number | undefined, stop: (p: Proc) => void): void {
  const p = s.procs.get(pid) ?? s.unrecorded.get(pid)?.p ?? s.awaiting.get(pid)?.p;
  if (p === undefined) return;
  // A keyed pid may come from two schedulers around a leader change: the cancel of one whose create
  // failed must not stop the run another's record names. The term is the durable record's when this
  // node read it back (its order may be the failed scheduler's, another's create having won): stopped
  // on that cancel, the proc ran once and its exit, not its own scheduler's, was never written (the
  // chaos partition scenario: records left 'starting' of procs that had run).
  const known = knownTerm(p);
  if (term !== undefined && known !== undefined && known !== term) return;
  p.cancelled = true;
  s.awaiting.delete(pid);
  const u = s.unrecorded.get(pid);
  if (u !== undefined) recordExit(s, pid, u.p, u.status);
  if (s.procs.get(pid) === p) stop(p);
}

export function markRunningLater(s: NodeState, pid: string): void {
  const p = s.procs.get(pid);
  if (p === undefined) return;
  assert(p.order.pid === pid, `proc ${pid} is filed under its own pid`);
  markRunning(s, pid, p);
  s.deps.publish({ type: 'started', pid, node: s.cfg.id });
}

