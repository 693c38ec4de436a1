import test from 'ava';
import { createSystem } from '../src/actors/index.js';
import { DEFER_GRACE_MS, leaseActor } from '../src/control/lease.js';
import { virtualPorts } from '../src/ports/virtual.js';
import { SimNats } from '../src/sim/nats.js';

const TTL_MS = 3_000;
const RENEW_MS = 500;

/**
 * Two candidates on the simulated NATS under virtual time; returns each one's leadership intervals
 * (virtual ms) so a test can check that they never overlap.
 */
async function election(seed: number) {
  const ports = virtualPorts(seed);
  const nats = new SimNats(ports, { latencyMs: 1 });
  const terms = new Map<string, { from: number; to?: number; term: number }[]>();
  const candidate = async (id: string) => {
    const bus = nats.connect(id);
    const kv = await bus.kv('leader', { ttlMs: TTL_MS });
    const system = createSystem({ name: id, ports });
    const spans: { from: number; to?: number; term: number }[] = [];
    terms.set(id, spans);
    system.spawn(
      leaseActor({
        kv,
        key: 'scheduler',
        holder: id,
        ttlMs: TTL_MS,
        renewEveryMs: RENEW_MS,
        onElected: (term) => spans.push({ from: ports.time.nowMs(), term }),
        onDeposed: () => {
          const open = spans.at(-1);
          if (open !== undefined && open.to === undefined) open.to = ports.time.nowMs();
        },
      }),
      { name: 'lease' },
    );
    return system;
  };
  const a = await candidate('a');
  await ports.time.advance(100); // a wins alone
  const b = await candidate('b');
  return { ports, nats, terms, systems: [a, b] };
}

const overlaps = (x: { from: number; to?: number }[], y: { from: number; to?: number }[]): boolean =>
  x.some((p) => y.some((q) => p.from < (q.to ?? Infinity) && q.from < (p.to ?? Infinity)));

test('lease - a leader whose KV calls hang steps down by its own deadline, before a standby can win', async (t) => {
  const { ports, nats, terms } = await election(1);
  await ports.time.advance(2_000);
  t.is(terms.get('a')!.length, 1, 'a holds the lease');
  t.is(terms.get('b')!.length, 0);
  // a's JetStream calls now take far longer than the lease: its renewals neither fail nor succeed
  // for 10 s (longer than both the TTL and the KV call bound).
  nats.setFaults('a', { delayMs: 10_000 });
  await ports.time.advance(15_000);
  const [ta] = terms.get('a')!;
  const tb = terms.get('b')!;
  t.true(ta!.to !== undefined, 'a stepped down');
  t.true(tb.length >= 1, 'b took over');
  t.false(overlaps(terms.get('a')!, tb), JSON.stringify([...terms]));
  t.true(tb[0]!.term > ta!.term, 'the new term is higher');
});

test('lease - a healthy leader keeps its term; a partitioned one is replaced without overlap and may win again later', async (t) => {
  const { ports, nats, terms } = await election(2);
  await ports.time.advance(20_000);
  t.is(terms.get('a')!.length, 1);
  t.is(terms.get('a')![0]!.to, undefined, 'renewals keep a in office');
  t.is(terms.get('b')!.length, 0);
  nats.partition('a');
  await ports.time.advance(10_000);
  nats.partition('a', false);
  await ports.time.advance(10_000);
  t.true(terms.get('b')!.length >= 1);
  t.false(overlaps(terms.get('a')!, terms.get('b')!), JSON.stringify([...terms]));
});

/** Candidates on one simulated NATS, each with its own defer and hand-over switches. */
async function candidates(seed: number) {
  const ports = virtualPorts(seed);
  const nats = new SimNats(ports, { latencyMs: 1 });
  const elected = new Map<string, number[]>();
  const start = async (id: string, o: { defer?: (first: boolean) => boolean; handOver?: () => boolean } = {}) => {
    const kv = await nats.connect(id).kv('leader', { ttlMs: TTL_MS });
    const system = createSystem({ name: id, ports });
    elected.set(id, []);
    system.spawn(leaseActor({ kv, key: 'scheduler', holder: id, ttlMs: TTL_MS, renewEveryMs: RENEW_MS, ...o, onElected: () => elected.get(id)!.push(ports.time.nowMs()), onDeposed: () => {} }), { name: 'lease' });
    return system;
  };
  return { ports, elected, start };
}

test('lease - a deferring standby leaves a vacant lease to another, takes it alone after the grace; a holder told to hand over does', async (t) => {
  const { ports, elected, start } = await candidates(3);
  const a = await start('a', { defer: () => true });
  const b = await start('b');
  await ports.time.advance(5_000);
  t.is(elected.get('b')!.length, 1, 'the candidate that does not defer wins the first election');
  t.is(elected.get('a')!.length, 0);
  const releasedAtMs = ports.time.nowMs();
  const bStopped = b.shutdown(); // released at once (virtual time runs the release): a is alone
  await ports.time.advance(5_000);
  await bStopped;
  const [aWon] = elected.get('a')!;
  t.true(aWon !== undefined, 'alone, a deferring candidate still leads');
  t.true(aWon! - releasedAtMs >= DEFER_GRACE_MS, `after the grace: ${aWon! - releasedAtMs} ms`);
  const aStopped = a.shutdown();
  await ports.time.advance(100);
  await aStopped;

  // A holder is moved by handOver, not by defer: a leader that defers (lightly) keeps its lease.
  let move = false;
  const c = await start('c', { defer: () => true, handOver: () => move });
  await ports.time.advance(5_000);
  t.is(elected.get('c')!.length, 1);
  const d = await start('d');
  await ports.time.advance(5_000);
  t.is(elected.get('d')!.length, 0, 'c keeps the lease while handOver is false');
  move = true;
  await ports.time.advance(5_000);
  t.is(elected.get('d')!.length, 1, 'handed over to d');
  t.is(elected.get('c')!.length, 1, 'c, deferring, did not take it back');
  const stopped = Promise.all([c.shutdown(), d.shutdown()]);
  await ports.time.advance(100);
  await stopped;
});

test('lease - a candidate that defers only at the cluster\'s first election takes a lease released later at once', async (t) => {
  const { ports, elected, start } = await candidates(4);
  const a = await start('a', { defer: (first) => first });
  const b = await start('b');
  await ports.time.advance(5_000);
  t.is(elected.get('b')!.length, 1, 'the first election goes to the candidate that does not defer');
  const releasedAtMs = ports.time.nowMs();
  const bStopped = b.shutdown();
  await ports.time.advance(5_000);
  await bStopped;
  const [aWon] = elected.get('a')!;
  t.true(aWon !== undefined && aWon - releasedAtMs < DEFER_GRACE_MS, `a has seen the lease held: no grace (${aWon! - releasedAtMs} ms)`);
  const aStopped = a.shutdown();
  await ports.time.advance(100);
  await aStopped;
});
