import type { Context } from '../../actors/index.js';
import { assert } from '../../assert.js';
import { ControlError } from '../errors.js';
import { evict, removePending, runTaken } from './evict.js';
import { finish, onExit, recordExit } from './exits.js';
import { checkNodes, nodeDown, nodeUp } from './nodes.js';
import { accept, created, createExists, createFailed, dispatch, drain, spawn, spawnResolved } from './placing.js';
import { realmChecked, realmCreate, realmGone, realmRemove, realmSeen } from './realms.js';
import { realmQuota } from './quotas.js';
import { recover, snapshot } from './recovery.js';
import { SchedulerState, type SchedulerDeps, type SchedulerMsg, type SchedulerOps } from './state.js';

/** Bound on messages held while the scheduler recovers its state after election. */
export const STASH_MAX = 100_000;
/** The liveness check runs this often relative to the node timeout, and never more often than the floor. */
const TICKS_PER_NODE_TIMEOUT = 4;
const TICK_MS_MIN = 10;
/** Pause before reading the state again when a bucket had no stream leader or timed out (an election). */
export const RECOVER_RETRY_MS = 500;
const TRANSIENT = new Set(['no-responders', 'timeout', 'disconnected']);

/** The concerns' entry points for one another, bound to one state. */
function opsOf(s: SchedulerState): SchedulerOps {
  return {
    accept: (rec, reply) => accept(s, rec, reply),
    dispatch: (r, node) => dispatch(s, r, node),
    drain: () => drain(s),
    finish: (pid, status) => finish(s, pid, status),
    recordExit: (pid, status, attempt) => recordExit(s, pid, status, attempt),
    onExit: (pid, status) => onExit(s, pid, status),
    evict: (pid, graceMs, reply) => evict(s, pid, graceMs, reply),
    removePending: (pid) => removePending(s, pid),
    realmGone: (name) => realmGone(s, name),
  };
}

/** One message to the concern it belongs to. */
function route(s: SchedulerState, m: SchedulerMsg): void {
  switch (m.type) {
    case 'spawn':
      return spawn(s, m.input, m.receivedAtMs, m.reply);
    case 'spawn-resolved':
      return spawnResolved(s, m);
    case 'created':
      return created(s, m);
    case 'create-exists':
      return createExists(s, m);
    case 'create-failed':
      return createFailed(s, m);
    case 'evict':
      return evict(s, m.pid, m.graceMs, m.reply);
    case 'run-taken':
      return runTaken(s, m.pid);
    case 'proc-event':
      if (m.ev.type === 'exited' && s.live.has(m.ev.pid)) {
        // An end its node decided for another term's order (it gave up waiting for that record) is not this record's.
        if (m.ev.unrecorded === true && m.ev.term !== undefined && s.live.get(m.ev.pid)!.term !== m.ev.term) return;
        (m.ev.unrecorded === true ? finish : onExit)(s, m.ev.pid, m.ev.status);
      }
      else if (m.ev.type === 'started') {
        const r = s.live.get(m.ev.pid);
        if (r !== undefined) s.live.set(m.ev.pid, { ...r, state: 'running' });
      }
      return;
    case 'node-up':
      return nodeUp(s, m.node);
    case 'tick':
      return checkNodes(s);
    case 'node-down':
      return nodeDown(s, m.id);
    case 'realm-seen':
      return realmSeen(s, m.name, m.present);
    case 'realm-checked':
      return realmChecked(s, m);
    case 'realm-create':
      return realmCreate(s, m.name, m.quota, m.reply);
    case 'realm-quota':
      return realmQuota(s, m.name, m.quota, m.reply);
    case 'realm-remove':
      return realmRemove(s, m.name, m.reply);
    case 'recovered':
    case 'recover-failed':
      return;
  }
}

/**
 * The leader's scheduler: a router over its concerns (placing, exits, evictions, realms, nodes), which
 * share one SchedulerState. On election it rebuilds reservations and queues from the proc table before
 * serving; requests wait in a stash until then.
 */
export function schedulerActor(deps: SchedulerDeps) {
  return (ctx: Context<SchedulerMsg>) => {
    assert(deps.term > 0, `a scheduler's term is a lease revision, got ${deps.term}`);
    const s = new SchedulerState(deps, ctx);
    Object.assign(s.ops, opsOf(s));
    let stash: SchedulerMsg[] | undefined = [];
    const readState = (): void =>
      void snapshot(deps).then(
        (snap) => ctx.self.tell({ type: 'recovered', ...snap }),
        (e: unknown) => ctx.self.tell({ type: 'recover-failed', error: e }),
      );
    return {
      postStop: () => {
        s.active = false;
      },
      // Every incarnation (the first, and any after a supervisor restart) rebuilds its state from the
      // proc table and the buckets; requests wait in the stash until then.
      preStart: () => {
        ctx.scheduleRepeat(Math.max(TICK_MS_MIN, deps.nodeTimeoutMs / TICKS_PER_NODE_TIMEOUT), { type: 'tick' }, { aligned: true });
        readState();
      },
      receive: (m: SchedulerMsg) => {
        if (m.type === 'recover-failed') {
          // A bucket between stream leaders answers at once: restarted at once, the actor failed past its
          // supervisor's restart intensity within milliseconds and the lease holder was left with no
          // scheduler for good (simulator, js-server-crash seed 151). Such a read is tried again later.
          if (TRANSIENT.has((m.error as { type?: string }).type ?? '')) {
            s.log.warn({ err: m.error }, `could not read the scheduler's state yet; again in ${RECOVER_RETRY_MS} ms`);
            return void ctx.ports.timers.setTimeout(readState, RECOVER_RETRY_MS);
          }
          // Anything else fails into the supervisor, which restarts this actor, which reads its state again.
          throw new Error(`scheduler could not read its state: ${(m.error as Error).message}`, { cause: m.error });
        }
        if (stash === undefined) return route(s, m);
        if (m.type !== 'recovered') {
          if (stash.length < STASH_MAX) stash.push(m);
          else if (m.type === 'spawn') m.reply({ ok: false, error: new ControlError('no-scheduler', 'the scheduler is still recovering; retry').toWire() });
          return;
        }
        recover(s, m);
        const held = stash;
        stash = undefined;
        for (const h of held) route(s, h);
        drain(s);
      },
    };
  };
}
