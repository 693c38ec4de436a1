import test from 'ava';
import { InMemoryJournal, JOURNAL_BATCH_BYTES_MAX, JournalConflictError, JournalReadError, PersistentActor, oneForOne, type ActorRef, type Context, type Journal, type SystemEvent } from '../src/actors/index.js';
import { virtualSystem } from './helpers/actors.js';

type Cmd = { type: 'deposit'; amount: number } | { type: 'withdraw'; amount: number; replyTo?: ActorRef<string> } | { type: 'balance'; replyTo: ActorRef<number> } | { type: 'crash' };
type Ev = { type: 'deposited'; amount: number } | { type: 'withdrawn'; amount: number };

class Account extends PersistentActor<Cmd, Ev, number> {
  readonly persistenceId: string;
  protected override readonly snapshotEvery: number;
  constructor(ctx: Context<Cmd>, protected readonly journal: Journal, id: string, snapshotEvery = 0) {
    super(ctx);
    this.persistenceId = id;
    this.snapshotEvery = snapshotEvery;
  }
  initialState(): number {
    return 0;
  }
  onEvent(balance: number, e: Ev): number {
    return e.type === 'deposited' ? balance + e.amount : balance - e.amount;
  }
  async receive(cmd: Cmd): Promise<void> {
    switch (cmd.type) {
      case 'deposit':
        await this.persist({ type: 'deposited', amount: cmd.amount });
        return;
      case 'withdraw':
        if (cmd.amount > this.state) {
          cmd.replyTo?.tell('insufficient funds');
          return;
        }
        await this.persist({ type: 'withdrawn', amount: cmd.amount });
        cmd.replyTo?.tell('ok');
        return;
      case 'balance':
        cmd.replyTo.tell(this.state);
        return;
      case 'crash':
        throw new Error('crash');
    }
  }
}

async function balance(ref: ActorRef<Cmd>, run: () => Promise<unknown>): Promise<number> {
  const p = ref.ask<number>((replyTo) => ({ type: 'balance', replyTo }), 1000);
  await run();
  return p;
}

test('persistence - state survives a supervisor restart by replaying the journal', async (t) => {
  const { system, ports } = virtualSystem();
  const journal = new InMemoryJournal();
  const acct = system.spawn((ctx: Context<Cmd>) => new Account(ctx, journal, 'acct-1'));
  for (let i = 1; i <= 10; i++) acct.tell({ type: 'deposit', amount: i });
  acct.tell({ type: 'withdraw', amount: 5 });
  acct.tell({ type: 'crash' });
  t.is(await balance(acct, () => ports.time.run()), 50);
  t.is(journal.eventsRead, 11); // the restart replayed every event
});

test('persistence - a new system recovers from the same journal, snapshots shorten replay', async (t) => {
  const journal = new InMemoryJournal();
  {
    const { system, ports } = virtualSystem();
    const acct = system.spawn((ctx: Context<Cmd>) => new Account(ctx, journal, 'acct-2', 10));
    for (let i = 0; i < 25; i++) acct.tell({ type: 'deposit', amount: 2 });
    t.is(await balance(acct, () => ports.time.run()), 50);
    await system.shutdown();
  }
  const { system, ports } = virtualSystem();
  const before = journal.eventsRead;
  const acct = system.spawn((ctx: Context<Cmd>) => new Account(ctx, journal, 'acct-2', 10));
  t.is(await balance(acct, () => ports.time.run()), 50);
  t.is(journal.eventsRead - before, 5); // snapshot at 20, replay 21..25
});

test('persistence - commands queued during recovery wait for it', async (t) => {
  const journal = new InMemoryJournal();
  await journal.append('acct-3', [{ type: 'deposited', amount: 100 }], 0);
  const { system, ports } = virtualSystem();
  const acct = system.spawn((ctx: Context<Cmd>) => new Account(ctx, journal, 'acct-3'));
  const reply = acct.ask<string>((replyTo) => ({ type: 'withdraw', amount: 60, replyTo }), 1000);
  await ports.time.run();
  t.is(await reply, 'ok');
  t.is(await balance(acct, () => ports.time.run()), 40);
});

test('persistence - two writers under one id: the second gets a JournalConflictError via its supervisor', async (t) => {
  const events: SystemEvent[] = [];
  const { system, ports } = virtualSystem(1, { onEvent: (e) => events.push(e), guardian: oneForOne({ decide: () => 'stop' }) });
  const journal = new InMemoryJournal();
  const a = system.spawn((ctx: Context<Cmd>) => new Account(ctx, journal, 'shared'), { name: 'a' });
  const b = system.spawn((ctx: Context<Cmd>) => new Account(ctx, journal, 'shared'), { name: 'b' });
  await ports.time.run();
  a.tell({ type: 'deposit', amount: 1 });
  await ports.time.run();
  b.tell({ type: 'deposit', amount: 1 });
  await ports.time.run();
  const failure = events.find((e) => e.type === 'failed' && e.path === b.path) as { error: unknown } | undefined;
  t.true(failure?.error instanceof JournalConflictError);
  t.is(system.statusOf(b), 'stopped');
  t.is(system.statusOf(a), 'running');
});

test('persistence - a snapshot that cannot be saved fails no command: the events are stored, recovery replays them', async (t) => {
  const failed: SystemEvent[] = [];
  const { system, ports } = virtualSystem(1, { onEvent: (e) => void (e.type === 'failed' && failed.push(e)) });
  class NoSnapshots extends InMemoryJournal {
    refused = 0;
    override async saveSnapshot(): Promise<void> {
      this.refused++;
      throw new Error('snapshot over the server message size');
    }
  }
  const journal = new NoSnapshots();
  const acct = system.spawn((ctx: Context<Cmd>) => new Account(ctx, journal, 'acct-nosnap', 2));
  for (let i = 1; i <= 5; i++) acct.tell({ type: 'deposit', amount: i });
  t.is(await balance(acct, () => ports.time.run()), 15);
  t.is(journal.refused, 2, 'tried at 2 and 4 events, not at every event after');
  t.deepEqual(failed, [], 'no command failed');
  const again = system.spawn((ctx: Context<Cmd>) => new Account(ctx, journal, 'acct-nosnap', 2));
  t.is(await balance(again, () => ports.time.run()), 15, 'recovered from the events alone');
});

/** Books seats without awaiting the write: the next booking checks against the pending ones (group commit). */
class Seats extends PersistentActor<{ seats: number; replyTo: ActorRef<string> }, number, number> {
  readonly persistenceId = 'seats';
  constructor(ctx: Context<{ seats: number; replyTo: ActorRef<string> }>, protected readonly journal: Journal) {
    super(ctx);
  }
  initialState(): number {
    return 0;
  }
  onEvent(taken: number, n: number): number {
    return taken + n;
  }
  receive(m: { seats: number; replyTo: ActorRef<string> }): void {
    const [checked, stored] = [this.state, this.storedState];
    if (checked + m.seats > 5) return m.replyTo.tell('full');
    void this.persist(m.seats).then(
      () => m.replyTo.tell(`booked: checked ${checked} taken, ${stored} stored`),
      (e: unknown) => m.replyTo.tell(`failed: ${String(e)}`),
    );
  }
}

test('persistence - group commit: commands check the pending events, which go to the journal in one append', async (t) => {
  const { system, ports } = virtualSystem();
  const journal = new InMemoryJournal();
  const seats = system.spawn((ctx: Context<{ seats: number; replyTo: ActorRef<string> }>) => new Seats(ctx, journal));
  await ports.time.run();
  const replies = Array.from({ length: 7 }, () => seats.ask<string>((replyTo) => ({ seats: 1, replyTo }), 1000));
  await ports.time.run();
  t.deepEqual(await Promise.all(replies), [0, 1, 2, 3, 4].map((n) => `booked: checked ${n} taken, 0 stored`).concat(['full', 'full']));
  t.is(journal.appends, 2, 'the first booking alone, then the four booked while it was in flight');
  const read = async (after: number): Promise<number[]> => {
    const out = [];
    for await (const e of journal.read('seats', after)) out.push(e.seq);
    return out;
  };
  t.deepEqual(await read(1), [2, 3, 4, 5]);
  await t.throwsAsync(read(3), { instanceOf: JournalReadError }, 'a read starts at a batch end, not inside a batch');
  const again = system.spawn((ctx: Context<{ seats: number; replyTo: ActorRef<string> }>) => new Seats(ctx, journal));
  const more = again.ask<string>((replyTo) => ({ seats: 1, replyTo }), 1000);
  await ports.time.run();
  t.is(await more, 'full', 'recovered: five seats taken');
});

/** Persists one large event per command without awaiting it, as Seats does. */
class Blobs extends PersistentActor<{ kb: number; replyTo: ActorRef<string> }, string, number> {
  readonly persistenceId = 'blobs';
  constructor(ctx: Context<{ kb: number; replyTo: ActorRef<string> }>, protected readonly journal: Journal) {
    super(ctx);
  }
  initialState(): number {
    return 0;
  }
  onEvent(n: number): number {
    return n + 1;
  }
  receive(m: { kb: number; replyTo: ActorRef<string> }): void {
    void this.persist('x'.repeat(m.kb * 1024)).then(() => m.replyTo.tell('stored'));
  }
}

test('persistence - group commit: a batch stays under JOURNAL_BATCH_BYTES_MAX, so events storable alone are not refused for being batched', async (t) => {
  const { system, ports } = virtualSystem();
  const journal = new InMemoryJournal();
  const blobs = system.spawn((ctx: Context<{ kb: number; replyTo: ActorRef<string> }>) => new Blobs(ctx, journal));
  await ports.time.run();
  const kb = JOURNAL_BATCH_BYTES_MAX / 1024 / 2 - 1; // two fit in a batch, a third does not
  const replies = Array.from({ length: 7 }, () => blobs.ask<string>((replyTo) => ({ kb, replyTo }), 1000));
  await ports.time.run();
  t.deepEqual(await Promise.all(replies), Array(7).fill('stored'));
  t.is(journal.appends, 4, 'the first alone (nothing in flight), then the six queued behind it two at a time');
});
