import test from 'ava';
import { InMemoryJournal, JournalConflictError, PersistentActor, oneForOne, type ActorRef, type Context, type Journal, type SystemEvent } from '../src/actors/index.js';
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
