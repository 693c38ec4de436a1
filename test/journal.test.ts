import test from 'ava';
import { createSystem, JournalConflictError, PersistentActor, type ActorRef, type Context, type Journal } from '../src/actors/index.js';
import { JOURNAL_BUCKET, KvJournal, SNAPSHOT_BUCKET } from '../src/actors/kv-journal.js';
import { ADMIN_USER, natsUsers, realmPassword, realmUser, withUser } from '../src/cluster/nats-users.js';
import { REALM_JOURNAL } from '../src/control/protocol/index.js';
import { realmJournals } from '../src/control/realm-journals.js';
import { PermissionError } from '../src/nats/errors.js';
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

test.serial('journal - one append is one key however many events; reads walk batch to batch; a writer behind meets the next batch', async (t) => {
  t.is(await journal.append('batches', ['a', 'b', 'c'], 0), 3);
  t.is(await journal.append('batches', ['d'], 3), 4);
  t.is(await journal.append('batches', ['e', 'f'], 4), 6);
  const kv = await bus.kv(JOURNAL_BUCKET);
  t.deepEqual((await kv.keys('batches.*')).sort(), ['batches.000000000001', 'batches.000000000004', 'batches.000000000005']);
  const read = async (after: number): Promise<unknown[]> => {
    const out = [];
    for await (const e of journal.read('batches', after)) out.push([e.seq, e.event]);
    return out;
  };
  t.deepEqual(await read(0), [[1, 'a'], [2, 'b'], [3, 'c'], [4, 'd'], [5, 'e'], [6, 'f']]);
  t.deepEqual(await read(4), [[5, 'e'], [6, 'f']]);
  t.deepEqual(await read(6), []);
  // Behind by one batch or by two: either way its next key is a batch's first, which is taken.
  for (const behind of [3, 0]) {
    const e = await t.throwsAsync(journal.append('batches', ['stale'], behind), { instanceOf: JournalConflictError });
    t.is(e?.actualSeq, 6, `a writer at ${behind} learns where the journal is`);
  }
  t.deepEqual(await read(0), [[1, 'a'], [2, 'b'], [3, 'c'], [4, 'd'], [5, 'e'], [6, 'f']], 'nothing written by the refused writers');
});

test.serial("journal - a realm's journal is made and removed with the realm, and its NATS user reaches that journal only", async (t) => {
  const creds = { admin: 'admin-pw', realms: 'realm-key', channel: 'x' };
  const guarded = await startNatsServer({ users: natsUsers(creds, ['a', 'b']) });
  const host = new URL(guarded.url).host;
  const admin = await connectBus({ servers: [withUser(`nats://${host}`, ADMIN_USER, creds.admin)], name: 'journal-admin' });
  const asRealm = (realm: string): Promise<Bus> => connectBus({ servers: [withUser(`nats://${host}`, realmUser(realm), realmPassword(creds.realms, realm))], name: `journal-${realm}`, inboxPrefix: REALM_JOURNAL.inboxPrefix(realm), jsTimeoutMs: 2_000 });
  const [a, b] = [await asRealm('a'), await asRealm('b')];
  try {
    const journals = realmJournals(admin)!;
    for (const r of ['a', 'b']) await journals.create(r);
    const journalOf = async (bus: Bus, realm: string): Promise<KvJournal> => {
      const kv = await bus.kv(REALM_JOURNAL.bucket(realm), { bind: true });
      return new KvJournal(kv, kv);
    };
    const own = await journalOf(a, 'a');
    // Two appends, two batches: a read starts at a batch's end (a snapshot's seq is one).
    t.is(await own.append('cart', ['x'], 0), 1);
    t.is(await own.append('cart', ['y'], 1), 2);
    await own.saveSnapshot('cart', { seq: 1, state: 'x' });
    t.deepEqual(await own.loadSnapshot('cart'), { seq: 1, state: 'x' });
    const read = [];
    for await (const e of own.read('cart', 1)) read.push(e);
    t.deepEqual(read, [{ seq: 2, event: 'y' }]);
    const theirs = await journalOf(b, 'a');
    const refused = { instanceOf: PermissionError };
    await t.throwsAsync(theirs.append('cart', ['forged'], 2), refused);
    await t.throwsAsync(theirs.loadSnapshot('cart'), refused);
    await t.throwsAsync((await b.kv(REALM_JOURNAL.bucket('a'), { bind: true })).delete('cart.000000000001'), refused);
    await t.throwsAsync(b.request(`$JS.API.CONSUMER.CREATE.${REALM_JOURNAL.stream('b')}`, new TextEncoder().encode('{}'), { timeoutMs: 2_000 }), refused);
    await t.throwsAsync(b.request('$JS.API.STREAM.CREATE.evil', new TextEncoder().encode('{"name":"evil","subjects":["evil.>"]}'), { timeoutMs: 2_000 }), refused);
    await journals.remove('a');
    await journals.remove('a'); // twice: removing is idempotent
    await t.throwsAsync(own.append('cart', ['z'], 2), { message: /stream|no responders|not found/i }, "a removed realm's journal is gone");
  } finally {
    for (const bus of [a, b, admin]) await bus.close();
    await guarded.stop();
  }
});
