import test from 'ava';
import type { ActorRef, ActorSystem, Context, Journal, JournalEntry, Snapshot } from '../src/actors/index.js';
import { KvJournal } from '../src/actors/kv-journal.js';
import { connectBus } from '../src/nats/real.js';
import { startNatsServer, type NatsServer } from '../src/nats/server.js';
import type { Bus, Kv } from '../src/nats/types.js';
import type { Rpc } from '../apps/common/app.js';
import { JournaledState, type Answer, type StateCall, type StateView } from '../apps/common/sigma-state.js';
import type { EventSourced } from '../apps/common/state.js';
import { cartState, type Carts } from '../apps/boutique/logic/cart.js';
import { reservationState, type Taken } from '../apps/hotel/logic/reservation.js';
import { realSystem } from './helpers/actors.js';

/**
 * Group commit on the real journal: a JournaledState (the apps' stateful services on sigma-ts) over a
 * KvJournal in JetStream, behind a gate that holds the first write in flight for as long as the test
 * likes. While it is held, the test knows the calls after it ran (a ready probe answers only after every
 * call before it in the mailbox ran) without any timing.
 */
class GatedJournal implements Journal {
  appends = 0;
  /** The next append rejects with this, writing nothing (the journal stopped). */
  failNext: Error | undefined;
  #gate: Promise<void> = Promise.resolve();
  #open: () => void = () => {};
  constructor(readonly inner: KvJournal) {}
  close(): void {
    this.#gate = new Promise((r) => (this.#open = r));
  }
  open(): void {
    this.#open();
  }
  async append(id: string, events: readonly unknown[], expectedSeq: number): Promise<number> {
    this.appends++;
    await this.#gate;
    const fail = this.failNext;
    this.failNext = undefined;
    if (fail !== undefined) throw fail;
    return this.inner.append(id, events, expectedSeq);
  }
  read(id: string, afterSeq: number): AsyncIterable<JournalEntry> {
    return this.inner.read(id, afterSeq);
  }
  saveSnapshot(id: string, s: Snapshot): Promise<void> {
    return this.inner.saveSnapshot(id, s);
  }
  loadSnapshot(id: string): Promise<Snapshot | undefined> {
    return this.inner.loadSnapshot(id);
  }
}

const noRpc: Rpc = () => Promise.reject(new Error('no rpc here'));
let server: NatsServer;
let bus: Bus;
let kv: Kv;

test.before(async () => {
  server = await startNatsServer();
  bus = await connectBus({ servers: [server.url], name: 'journal-group-test' });
  kv = await bus.kv('group_journal');
});
test.after.always(async () => {
  await bus?.close();
  await server?.stop();
});

interface Service {
  system: ActorSystem;
  journal: GatedJournal;
  view: StateView;
  ref: ActorRef<StateCall>;
  call(m: string, a: unknown[]): Promise<Answer>;
  /** Resolves once every call sent before it has run (not: been answered). */
  ran(): Promise<number>;
}

/** A journaled state as the apps' sigma deployment runs it, recovered from the journal. */
async function start(id: string, def: EventSourced): Promise<Service> {
  const system = realSystem();
  const journal = new GatedJournal(new KvJournal(kv, kv));
  const view: StateView = { ready: false, state: undefined };
  const ref = system.spawn((c: Context<StateCall>) => new JournaledState(c, id, journal, def, noRpc, view), { name: 'state' });
  const ran = (): Promise<number> => ref.ask<number>((ready) => ({ ready }), 5_000);
  await ran();
  return { system, journal, view, ref, ran, call: (m, a) => ref.ask<Answer>((reply) => ({ m, a, reply }), 5_000) };
}

/** Batches (keys) the journal holds for an id. */
const batchKeys = async (id: string): Promise<string[]> => (await kv.keys(`${id}.*`)).sort();

/** Sends the calls at once; counts the answers as they come. */
function sendAll(s: Service, calls: Array<[string, unknown[]]>): { answers: Promise<Answer[]>; answered: () => number } {
  let answered = 0;
  const answers = Promise.all(calls.map(([m, a]) => s.call(m, a).then((r) => (answered++, r))));
  return { answers, answered: () => answered };
}

test.serial('journal group commit - concurrent calls share writes, each answered once stored; a restart recovers what the answers said', async (t) => {
  const id = 'gc-cart';
  const s = await start(id, cartState);
  const calls: Array<[string, unknown[]]> = [];
  for (let i = 0; i < 40; i++) calls.push(['addItem', [`u${i % 8}`, { productId: `p${i % 3}`, quantity: 1 + (i % 4) }]]);
  calls.push(['getCart', ['u0']]); // a read through the mailbox: it sees pending events, so it waits for them too
  s.journal.close();
  const { answers, answered } = sendAll(s, calls);
  t.is(await s.ran(), 0, 'every call ran while the first write was held: nothing is stored yet');
  t.is(answered(), 0, 'no call is answered before its events are stored');
  s.journal.open();
  const replies = await answers;
  t.true(replies.every((r) => r.ok));
  t.is(s.journal.appends, 2, 'the first call alone, then the 39 that ran while it was in flight');
  t.deepEqual(await batchKeys(id), [`${id}.000000000001`, `${id}.000000000002`]);
  const seen = replies.at(-1) as { ok: true; value: { items: unknown[] } };
  const stored = structuredClone(s.view.state) as Carts;
  await s.system.shutdown();

  const again = await start(id, cartState);
  t.is(await again.ran(), 40, 'one event per call, read back batch by batch');
  t.deepEqual(again.view.state, stored);
  t.deepEqual((await again.call('getCart', ['u0'])) as unknown, { ok: true, value: { userId: 'u0', items: seen.value.items } });
  // u0 got calls 0, 8, 16, 24 and 32: p0, p2, p1, p0, p2, one each.
  t.deepEqual(seen.value.items, [
    { productId: 'p0', quantity: 2 },
    { productId: 'p2', quantity: 2 },
    { productId: 'p1', quantity: 1 },
  ]);
  await again.system.shutdown();
});

test.serial('journal group commit - a check sees the pending bookings: capacity N, N+k concurrent bookings, exactly N accepted, also after recovery', async (t) => {
  const id = 'gc-reservation';
  const s = await start(id, reservationState);
  const night = ['2015-04-09', '2015-04-10'];
  // Hotel 1 has 200 rooms a night: of twelve bookings of 30 rooms, six fit.
  const book = (): [string, unknown[]] => ['makeReservation', ['c', ['1'], ...night, 30]];
  s.journal.close();
  const { answers } = sendAll(s, Array.from({ length: 12 }, book));
  await s.ran();
  s.journal.open();
  const replies = await answers;
  t.deepEqual(
    replies.map((r) => (r.ok ? (r.value as string[]).length : 'error')),
    [1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0],
  );
  t.is(s.journal.appends, 2);
  t.is((s.view.state as Taken)['1']?.['2015-04-09'], 180);
  await s.system.shutdown();

  const again = await start(id, reservationState);
  t.is((again.view.state as Taken)['1']?.['2015-04-09'], 180, 'recovered: six bookings, not twelve');
  t.deepEqual(await again.call('makeReservation', ['c', ['1'], ...night, 21]), { ok: true, value: [] }, '20 rooms left');
  t.deepEqual(await again.call('makeReservation', ['c', ['1'], ...night, 20]), { ok: true, value: ['1'] });
  await again.system.shutdown();
});

test.serial('journal group commit - a failed write fails every pending call and no later batch is written; the restarted state is the journal\'s', async (t) => {
  const id = 'gc-failure';
  const s = await start(id, cartState);
  t.true((await s.call('addItem', ['kept', { productId: 'p', quantity: 1 }])).ok);
  s.journal.close();
  s.journal.failNext = new Error('journal away');
  const { answers } = sendAll(
    s,
    Array.from({ length: 5 }, (_, i): [string, unknown[]] => ['addItem', [`lost${i}`, { productId: 'p', quantity: 1 }]]),
  );
  await s.ran();
  t.true(s.view.ready, 'still answering queries from the stored state while the write is in flight');
  t.deepEqual(Object.keys(s.view.state as Carts), ['u:kept'], 'queries never see pending events');
  s.journal.open();
  const replies = await answers;
  t.deepEqual(replies.map((r) => r.ok), [false, false, false, false, false], 'the write in flight and the four calls queued behind it');
  t.is(s.journal.appends, 2, 'the failed write was the last: the queued calls were not written after it');
  // The supervisor restarts the actor; a probe sent now runs after its recovery (the mailbox keeps it).
  t.is(await s.ran(), 1);
  t.true(s.view.ready);
  t.deepEqual(await batchKeys(id), [`${id}.000000000001`]);
  t.deepEqual(Object.keys(s.view.state as Carts), ['u:kept']);
  t.true((await s.call('addItem', ['after', { productId: 'p', quantity: 1 }])).ok);
  t.deepEqual(await batchKeys(id), [`${id}.000000000001`, `${id}.000000000002`]);
  await s.system.shutdown();
});
