import test from 'ava';
import { InMemoryJournal, type ActorRef, type Context } from '../src/actors/index.js';
import { serveCall, type Handlers, type Rpc } from '../apps/common/app.js';
import { JournaledState, type StateCall, type StateView } from '../apps/common/sigma-state.js';
import { cartState } from '../apps/boutique/logic/cart.js';
import { hotelHandlers } from '../apps/hotel/logic/services.js';
import { reservationState } from '../apps/hotel/logic/reservation.js';
import type { EventSourced } from '../apps/common/state.js';
import { realSystem } from './helpers/actors.js';

const until = async (cond: () => boolean, ms = 3000): Promise<void> => {
  for (const end = Date.now() + ms; !cond(); ) {
    if (Date.now() > end) throw new Error('condition never became true');
    await new Promise((r) => setTimeout(r, 5));
  }
};

const noRpc: Rpc = () => Promise.reject(new Error('no rpc here'));

/** A journal whose appends wait until `open()` (a JetStream write in flight), or fail with `fail`. */
class GatedJournal extends InMemoryJournal {
  #gate: Promise<void> = Promise.resolve();
  #open: () => void = () => {};
  fail: Error | undefined;
  close(): void {
    this.#gate = new Promise((r) => (this.#open = r));
  }
  open(): void {
    this.#open();
  }
  override async append(id: string, events: readonly unknown[], expectedSeq: number): Promise<number> {
    await this.#gate;
    if (this.fail !== undefined) throw this.fail;
    return super.append(id, events, expectedSeq);
  }
}

const queriesOf = (def: EventSourced, view: StateView): Handlers => {
  const all = def.handlers(() => view.state, () => Promise.reject(new Error('a query persisted')));
  return Object.fromEntries((def.queries ?? []).map((q) => [q, all[q]!]));
};

test('apps state - queries only read: run against a persist that refuses, they answer', async (t) => {
  for (const [def, calls] of [
    [cartState, [['getCart', ['u1']]]],
    [reservationState, [['checkAvailability', ['', ['1', '2'], '2015-04-09', '2015-04-10', 1]]]],
  ] as const) {
    t.true((def.queries ?? []).length > 0);
    const q = queriesOf(def, { ready: true, state: def.initial() });
    for (const [m, a] of calls) t.true((await serveCall(q, m, [...a], noRpc)).ok, m);
  }
});

/** A service's state as its sigma deployment runs it, on a journal the test opens, closes and fails; recovered. */
async function journaled(id: string, def: EventSourced) {
  const system = realSystem();
  const journal = new GatedJournal();
  const view: StateView = { ready: false, state: undefined };
  const ref = system.spawn((c: Context<StateCall>) => new JournaledState(c, id, journal, def, noRpc, view), { name: 'state' });
  await ref.ask<number>((ready: ActorRef<number>) => ({ ready }), 1000);
  return { system, journal, view, ref };
}

test('apps state - a query is answered while a command waits for the journal, and sees the command once it is answered', async (t) => {
  const { system, journal, view, ref } = await journaled('hotel-reservation', reservationState);
  t.true(view.ready);
  const q = queriesOf(reservationState, view);
  const check = async (): Promise<unknown> => (await serveCall(q, 'checkAvailability', ['', ['1'], '2015-04-09', '2015-04-10', 200], noRpc)) as unknown;
  t.deepEqual(await check(), { ok: true, value: ['1'] });
  journal.close();
  const booked = ref.ask<unknown>((reply) => ({ m: 'makeReservation', a: ['c', ['1'], '2015-04-09', '2015-04-10', 1], reply }), 1000);
  // The write is in flight: the mailbox is busy, a query is not (it sees the state without the booking).
  t.deepEqual(await check(), { ok: true, value: ['1'] });
  journal.open();
  t.deepEqual(await booked, { ok: true, value: ['1'] });
  t.deepEqual(await check(), { ok: true, value: [] }); // 200 rooms and one taken: no room for 200 more
  await system.shutdown();
});

test('apps state - a journal failure makes the view not ready until the restarted actor has recovered', async (t) => {
  const { system, journal, view, ref } = await journaled('boutique-cart', cartState);
  journal.fail = new Error('journal away');
  const failed = await ref.ask<{ ok: boolean }>((reply) => ({ m: 'addItem', a: ['u1', { productId: 'p', quantity: 1 }], reply }), 1000);
  t.false(failed.ok);
  journal.fail = undefined;
  await until(() => view.ready); // the supervisor restarted it and it recovered from the journal
  t.deepEqual(await ref.ask<unknown>((reply) => ({ m: 'addItem', a: ['u1', { productId: 'p', quantity: 2 }], reply }), 1000), { ok: true, value: {} });
  t.deepEqual(await serveCall(queriesOf(cartState, view), 'getCart', ['u1'], noRpc), { ok: true, value: { userId: 'u1', items: [{ productId: 'p', quantity: 2 }] } });
  await system.shutdown();
});

test('hotel - profile reads the cache with one getMulti and fills the misses with one setMulti', async (t) => {
  const cache = hotelHandlers('cache');
  const profile = hotelHandlers('profile');
  const calls: string[] = [];
  const rpc: Rpc = async (service, method, args) => {
    calls.push(`${service}.${method}`);
    const r = await serveCall(cache, method, args, rpc);
    if (!r.ok) throw new Error(r.error);
    return r.value;
  };
  const first = (await profile['getProfiles']!([['1', '2', 'nope']], rpc)) as Array<{ id: string }>;
  t.deepEqual(first.map((p) => p.id), ['1', '2']);
  t.deepEqual(calls, ['cache.getMulti', 'cache.setMulti']);
  calls.length = 0;
  t.deepEqual(await profile['getProfiles']!([['1', '2']], rpc), first);
  t.deepEqual(calls, ['cache.getMulti']);
});
