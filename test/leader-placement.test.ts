import test from 'ava';
import { pino } from 'pino';
import { keepLeadersOff, LEADERS_CHECK_MS, LEADERS_RECHECK_MS, STEPDOWN_BACKOFF_MAX_MS, watchReplicas } from '../src/control/leader-placement.js';
import type { StreamLeadership, StreamReplicas } from '../src/nats/types.js';
import { VirtualTime } from '../src/ports/virtual.js';

const silent = pino({ level: 'silent' });
const SERVERS = ['n1', 'n2', 'n3'] as const;

/**
 * One replicated stream as nats-server 2.9.10 runs it, for the leader placement: a stepdown hands
 * leadership to the first current peer (its API takes no preferred one), and each replica holds its own
 * records. A server killed and restarted comes back without the last writes it had taken (what the chaos
 * scheduler scenario measured: the killed server's replica of the proc table was 8 records short of its
 * peers over the same sequence range); reads go to the leader.
 */
class Stream {
  leader = 'n2';
  readonly down = new Set<string>();
  readonly records = new Map<string, Set<string>>(SERVERS.map((s) => [s, new Set<string>()]));
  stepdowns = 0;

  write(key: string): void {
    for (const s of SERVERS) if (!this.down.has(s)) this.records.get(s)!.add(key);
  }

  /** Killed: its replica keeps what it had but `lost`; it misses what is written while it is away. */
  kill(server: string, lost: readonly string[]): void {
    this.down.add(server);
    for (const k of lost) this.records.get(server)!.delete(k);
  }

  read(key: string): boolean {
    return this.records.get(this.leader)!.has(key);
  }

  leadership(own: string, meta: string): StreamLeadership {
    return {
      server: () => own,
      metaGroup: async () => ({ leader: meta, whole: this.down.size === 0 }),
      leaderOf: async () => (this.down.size === 0 ? this.leader : undefined),
      replicasOf: async (): Promise<StreamReplicas> => ({
        leader: this.leader,
        peers: SERVERS.filter((s) => s !== this.leader).map((s) => ({ name: s, healthy: !this.down.has(s), absent: this.down.has(s) })),
      }),
      stepDown: async () => {
        this.stepdowns++;
        this.leader = SERVERS.find((s) => s !== this.leader && !this.down.has(s))!;
      },
    };
  }
}

test('leader placement - no stepdown that may land on a server back from a crash; a stream it leads is moved off it', async (t) => {
  const time = new VirtualTime();
  const stream = new Stream();
  // The scheduler on n2 (as after a kill of the scheduler's machine m1 with its server n1), the meta leader n3.
  const lead = stream.leadership('n2', 'n3');
  const watch = watchReplicas(lead, { timers: time }, silent, { buckets: ['procs'] });
  // n1 was current, then killed: the last record written before the kill never reached its disk.
  await time.run({ untilMs: time.nowMs() + LEADERS_CHECK_MS });
  stream.write('before');
  stream.write('at-the-kill');
  stream.kill('n1', ['at-the-kill']);
  stream.write('during');
  await time.run({ untilMs: time.nowMs() + 2 * LEADERS_CHECK_MS });
  t.deepEqual([...watch.suspects()], ['n1'], 'n1 seen absent');
  const keeper = keepLeadersOff(lead, { timers: time, clock: time }, silent, { buckets: ['procs'], metaLeader: () => 'n3', replicas: watch });
  try {
    stream.down.delete('n1'); // back, current again, and short of a record its peers hold
    await time.run({ untilMs: time.nowMs() + 5 * LEADERS_CHECK_MS });
    t.is(stream.stepdowns, 0, "the proc table stays on the scheduler's server: a stepdown may pick n1");
    t.is(stream.leader, 'n2');
    t.true(stream.read('at-the-kill'), 'the record written at the kill is read');
    // NATS itself elects n1 (another server died meanwhile, say): moved off it onto a sound replica.
    stream.leader = 'n1';
    t.false(stream.read('at-the-kill'), 'under n1 the record is gone (what the chaos run saw)');
    await time.run({ untilMs: time.nowMs() + 2 * LEADERS_CHECK_MS });
    t.not(stream.leader, 'n1', 'moved off the server that was absent');
    t.true(stream.read('at-the-kill'));
  } finally {
    keeper.stop();
    watch.stop();
  }
});

test('leader placement - with no server ever absent, the stream leader moves off the scheduler\'s and the meta leader\'s servers', async (t) => {
  const time = new VirtualTime();
  const stream = new Stream();
  const lead = stream.leadership('n2', 'n3');
  const watch = watchReplicas(lead, { timers: time }, silent, { buckets: ['procs'] });
  const keeper = keepLeadersOff(lead, { timers: time, clock: time }, silent, { buckets: ['procs'], metaLeader: () => 'n3', replicas: watch });
  try {
    await time.run({ untilMs: time.nowMs() + 3 * LEADERS_CHECK_MS });
    t.is(stream.leader, 'n1', 'on the third server');
    t.deepEqual([...watch.suspects()], []);
  } finally {
    keeper.stop();
    watch.stop();
  }
});

test('leader placement - a peer not heard from yet (a stream just made) is not taken for one that went away', async (t) => {
  const time = new VirtualTime();
  const stream = new Stream();
  stream.down.add('n1');
  const watch = watchReplicas(stream.leadership('n2', 'n3'), { timers: time }, silent, { buckets: ['procs'] });
  try {
    await time.run({ untilMs: time.nowMs() + 3 * LEADERS_CHECK_MS });
    t.deepEqual([...watch.suspects()], [], 'never seen healthy: not a server that came back');
    stream.down.delete('n1');
    await time.run({ untilMs: time.nowMs() + 2 * LEADERS_CHECK_MS });
    stream.down.add('n1');
    await time.run({ untilMs: time.nowMs() + 2 * LEADERS_CHECK_MS });
    t.deepEqual([...watch.suspects()], ['n1'], 'seen, then absent');
  } finally {
    watch.stop();
  }
});

test('leader placement - a stepdown that keeps landing on the other avoided server is asked less and less often', async (t) => {
  const time = new VirtualTime();
  const stream = new Stream();
  // The scheduler on n1, the meta leader on n2: this stream's stepdowns go n2 -> n1 -> n2 ... never n3.
  const lead = stream.leadership('n1', 'n2');
  const keeper = keepLeadersOff(lead, { timers: time, clock: time }, silent, { buckets: ['procs'], metaLeader: () => 'n2' });
  try {
    await time.run({ untilMs: time.nowMs() + 60_000 });
    t.true(stream.stepdowns >= 3, `it keeps trying: ${stream.stepdowns}`);
    t.true(stream.stepdowns <= 8, `not every look (${60_000 / LEADERS_RECHECK_MS} of them): ${stream.stepdowns} stepdowns in a minute`);
    await time.run({ untilMs: time.nowMs() + 10 * STEPDOWN_BACKOFF_MAX_MS });
    t.true(stream.stepdowns <= 8 + 10, `then at most one per ${STEPDOWN_BACKOFF_MAX_MS} ms: ${stream.stepdowns}`);
  } finally {
    keeper.stop();
  }
});

test('replica watch - skipped while told to (the lease holder looks itself), looking again after', async (t) => {
  const time = new VirtualTime();
  const stream = new Stream();
  const lead = stream.leadership('n2', 'n3');
  let looks = 0;
  const counted: StreamLeadership = { ...lead, replicasOf: (b) => (looks++, lead.replicasOf(b)) };
  let holding = true;
  const watch = watchReplicas(counted, { timers: time }, silent, { buckets: ['procs', 'nodes'], skip: () => holding });
  await time.run({ untilMs: time.nowMs() + 3 * LEADERS_CHECK_MS });
  t.is(looks, 0, 'no look while skipped');
  t.true(watch.ownLeads(), 'and none ended: unknown, so a standby would defer');
  holding = false;
  await time.run({ untilMs: time.nowMs() + LEADERS_CHECK_MS });
  t.true(looks >= 2, `both buckets looked at once it may (${looks})`);
  t.true(watch.ownLeads(), 'n2, its own server, leads the stream');
  watch.stop();
});
