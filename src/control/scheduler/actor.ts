import type { Context } from '../../actors/index.js';
import { assert } from '../../assert.js';
import { ControlError } from '../errors.js';
import { evictions } from './evict.js';
import { exits } from './exits.js';
import { nodes } from './nodes.js';
import { placing } from './placing.js';
import { realms } from './realms.js';
import { recover, snapshot } from './recovery.js';
import { SchedulerState, type SchedulerDeps, type SchedulerMsg, type SchedulerOps } from './state.js';

/** Bound on messages held while the scheduler recovers its state after election. */
export const STASH_MAX = 100_000;
/** The liveness check runs this often relative to the node timeout, and never more often than the floor. */
const TICKS_PER_NODE_TIMEOUT = 4;
const TICK_MS_MIN = 10;

/**
 * The leader's scheduler: a router over its concerns (placing, exits, evictions, realms, nodes), which
 * share one SchedulerState. On election it rebuilds reservations and queues from the proc table before
 * serving; requests wait in a stash until then.
 */
export function schedulerActor(deps: SchedulerDeps) {
  return (ctx: Context<SchedulerMsg>) => {
    assert(deps.term > 0, `a scheduler's term is a lease revision, got ${deps.term}`);
    const s = new SchedulerState(deps, ctx);
    // Each concern reaches the others through `ops`, filled in once all exist (no import cycles).
    const ops = {} as SchedulerOps;
    const place = placing(s, ops);
    const exit = exits(s, ops);
    const ev = evictions(s, ops);
    const realm = realms(s, ops);
    const node = nodes(s, ops);
    Object.assign(ops, { accept: place.accept, dispatch: place.dispatch, drain: place.drain, ...exit, evict: ev.evict, removePending: ev.removePending, realmGone: realm.realmGone } satisfies SchedulerOps);
    let stash: SchedulerMsg[] | undefined = [];

    const handle = (m: SchedulerMsg): void => {
      switch (m.type) {
        case 'spawn':
          return place.spawn(m.input, m.reply);
        case 'created':
          return place.created(m);
        case 'create-failed':
          return place.createFailed(m);
        case 'pull':
          return place.pull(m);
        case 'evict':
          return ev.evict(m.pid, m.graceMs, m.reply);
        case 'run-taken':
          return ev.runTaken(m.pid);
        case 'proc-event':
          if (m.ev.type === 'exited' && s.live.has(m.ev.pid)) exit.onExit(m.ev.pid, m.ev.status);
          else if (m.ev.type === 'started') {
            const r = s.live.get(m.ev.pid);
            if (r !== undefined) s.live.set(m.ev.pid, { ...r, state: 'running' });
          }
          return;
        case 'node-up':
          return node.nodeUp(m.node);
        case 'tick':
          return node.checkNodes();
        case 'node-down':
          return node.nodeDown(m.id);
        case 'realms':
          return realm.realmsChanged(m.names);
        case 'realm-create':
          return realm.realmCreate(m.name, m.reply);
        case 'realm-remove':
          return realm.realmRemove(m.name, m.reply);
        case 'recovered':
        case 'recover-failed':
          return;
      }
    };

    return {
      postStop: () => {
        s.active = false;
      },
      // Every incarnation (the first, and any after a supervisor restart) rebuilds its state from the
      // proc table and the buckets; requests wait in the stash until then.
      preStart: () => {
        ctx.scheduleRepeat(Math.max(TICK_MS_MIN, deps.nodeTimeoutMs / TICKS_PER_NODE_TIMEOUT), { type: 'tick' });
        snapshot(deps).then(
          (snap) => ctx.self.tell({ type: 'recovered', ...snap }),
          (e: unknown) => ctx.self.tell({ type: 'recover-failed', error: e }),
        );
      },
      receive: (m: SchedulerMsg) => {
        // Fail into the supervisor, which restarts this actor, which reads its state again.
        if (m.type === 'recover-failed') throw new Error(`scheduler could not read its state: ${(m.error as Error).message}`, { cause: m.error });
        if (stash === undefined) return handle(m);
        if (m.type !== 'recovered') {
          if (stash.length < STASH_MAX) stash.push(m);
          else if (m.type === 'spawn') m.reply({ ok: false, error: new ControlError('no-scheduler', 'the scheduler is still recovering; retry').toWire() });
          return;
        }
        recover(s, ops, m);
        const held = stash;
        stash = undefined;
        for (const h of held) handle(h);
        place.drain();
      },
    };
  };
}
