import test from 'ava';
import { createSystem, JournalConflictError, PersistentActor, type ActorRef, type Context, type Journal } from '../src/actors/index.js';
import { JOURNAL_BUCKET, KvJournal, SNAPSHOT_BUCKET } from '../src/actors/kv-journal.js';
import { connectBus } from '../src/nats/real.js';
import { startNatsServer, type NatsServer } from '../src/nats/server.js';
import type { Bus } from '../src/nats/types.js';
import { silent } from './helpers/actors.js';

type Cmd = { add: number } | { get: ActorRef<number> };

class Tally extends PersistentActor<Cmd, number, number> {
  readonly persistenceId = 'tally-1';
  protected override readonly snapshotEvery = 5;
  constructor(ctx: Context<Cmd>, protected readonly journal: Journal) {
    super(ctx);
  }
  initialState(): number {
    return 0;
  }
  onEvent(total: number, n: number): number {
    return total + n;
  }
  async receive(m: Cmd): Promise<void> {
    if ('add' in m) await this.persist(m.add);
    else m.get.tell(this.state);
  }
}

let server: NatsServer;
let bus: Bus;
let journal: KvJournal;

test.before(async () => {
  server = await startNatsServer();
  bus = await connectBus({ servers: [server.url], name: 'journal-test' });
  journal = new KvJournal(await bus.kv(JOURNAL_BUCKET), await bus.kv(SNAPSHOT_BUCKET));
});
test.after.always(async () => {
  await bus?.close();
  await server?.stop();
});

test.serial('journal - a persistent actor recovers its state from JetStream in a new system', async (t) => {
  for (let round = 0; round < 2; round++) {
    const sys = createSystem({ name: `j${round}`, logger: silent });
    const tally = sys.spawn((ctx: Context<Cmd>) => new Tally(ctx, journal));
    for (let i = 1; i <= 7; i++) tally.tell({ add: i });
    t.is(await tally.ask<number>((get) => ({ get }), 5_000), 28 * (round + 1));
    await sys.shutdown();
  }
  const snap = await journal.loadSnapshot('tally-1');
  t.is(snap?.seq, 10); // snapshots every 5 events: the last at 10 of 14
  const replayed = [];
  for await (const e of journal.read('tally-1', 10)) replayed.push(e.seq);
  t.deepEqual(replayed, [11, 12, 13, 14]);
});

test.serial('journal - a second writer under the same id is refused', async (t) => {
  await journal.append('dup', ['a'], 0);
  const e = await t.throwsAsync(journal.append('dup', ['b'], 0), { instanceOf: JournalConflictError });
  t.is(e?.actualSeq, 1);
  await t.throwsAsync(journal.append('bad id', ['x'], 0));
});
