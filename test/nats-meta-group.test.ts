import test from 'ava';
import { pino } from 'pino';
import { followMetaLeader, keepLeadersOff, LEADERS_CHECK_MS, META_SETTLE_MS, watchReplicas } from '../src/control/leader-placement.js';
import { realClock, realTimers } from '../src/ports/real.js';
import { connectBus } from '../src/nats/real.js';
import { heardWithin } from '../src/nats/real-leadership.js';
import type { MetaGroup, StreamLeadership } from '../src/nats/types.js';
import { VirtualTime } from '../src/ports/virtual.js';
import { startNatsCluster } from './helpers/nats-cluster.js';
import { waitFor } from './helpers/cluster.js';

const silent = pino({ level: 'silent' });

/** A leadership whose meta group the test sets; only metaGroup and server are asked. */
function fakeLeadership(own: string, group: () => MetaGroup | undefined): StreamLeadership {
  return {
    server: () => own,
    metaGroup: async () => group(),
    leaderOf: async () => undefined,
    replicasOf: async () => undefined,
    stepDown: async () => {},
  };
}

test('meta leader - a scheduler defers only once its server has led a whole meta group for META_SETTLE_MS', async (t) => {
  const time = new VirtualTime();
  let group: MetaGroup | undefined = { leader: 'n1', whole: false };
  const meta = followMetaLeader(fakeLeadership('n1', () => group), { timers: time, clock: time }, silent);
  try {
    await time.run({ untilMs: time.nowMs() + META_SETTLE_MS * 2 });
    t.false(meta.ownIsLeader(), 'a group with a peer down: no hand-over, however long');
    t.is(meta.leader(), 'n1');
    group = { leader: 'n1', whole: true };
    await time.run({ untilMs: time.nowMs() + META_SETTLE_MS / 2 });
    t.false(meta.ownIsLeader(), 'whole, but not for long enough');
    await time.run({ untilMs: time.nowMs() + META_SETTLE_MS });
    t.true(meta.ownIsLeader(), 'whole and led by its own server for long enough');
    group = { leader: 'n1', whole: false };
    await time.run({ untilMs: time.nowMs() + META_SETTLE_MS / 2 });
    t.false(meta.ownIsLeader(), 'a peer lost: the hand-over is off at once');
    group = { leader: 'n1', whole: true };
    await time.run({ untilMs: time.nowMs() + META_SETTLE_MS / 2 });
    t.false(meta.ownIsLeader(), 'the settling starts again once the peer is back');
    group = { leader: 'n2', whole: true };
    await time.run({ untilMs: time.nowMs() + META_SETTLE_MS * 2 });
    t.false(meta.ownIsLeader(), 'another server leads');
  } finally {
    meta.stop();
  }
});

test('heard within - an active of 0 is a peer never heard from (nats-server 2.9 leaves it at 0), not one heard just now', (t) => {
  const second = 1_000_000_000;
  t.true(heardWithin({ current: true, active: 200_000_000 }, second), 'heard 200 ms ago');
  t.false(heardWithin({ current: true, active: 0 }, second), 'never heard: a peer killed before the leader heard it stayed at 0');
  t.false(heardWithin({ current: true }, second), 'no figure: unknown');
  t.false(heardWithin({ current: true, active: 2 * second }, second), 'silent too long');
  t.false(heardWithin({ current: false, active: 1 }, second), 'behind');
  t.false(heardWithin({ current: true, offline: true, active: 1 }, second), 'offline');
});

test.serial('meta group - the leader server reports the group whole, and not whole while a peer is killed or cut off', async (t) => {
  t.timeout(120_000);
  const nats = await startNatsCluster();
  const buses = await Promise.all([0, 1, 2].map((i) => connectBus({ servers: [nats.url(i)], name: `meta-${i}`, replicas: 3, monitorUrl: nats.monitorUrl(i) })));
  try {
    const lead = buses.map((b) => b.leadership!()!);
    const whole = await waitFor(() => lead[0]!.metaGroup(), (g) => g !== undefined, 30_000);
    const leaderIndex = [0, 1, 2].find((i) => lead[i]!.server() === whole!.leader)!;
    t.true(leaderIndex !== undefined, `the meta leader ${whole!.leader} is one of the three`);
    const atLeader = lead[leaderIndex]!;
    t.true((await waitFor(() => atLeader.metaGroup(), (g) => g?.whole === true, 30_000))!.whole, 'three servers up: whole');
    const follower = [0, 1, 2].find((i) => i !== leaderIndex)!;
    t.false((await lead[follower]!.metaGroup())!.whole, "a follower's view lists no peers: never reported whole");
    const other = [0, 1, 2].find((i) => i !== leaderIndex && i !== follower)!;
    nats.kill(other);
    // A failure says what each server's /jsz said: that is how a CI failure here was traced to a meta
    // group of two (its third server not yet added) read as whole.
    const views = async (e: unknown): Promise<never> => {
      const jsz = await Promise.all([0, 1, 2].map((i) => fetch(`${nats.monitorUrl(i)}/jsz`).then((r) => r.json() as Promise<{ meta_cluster?: unknown }>).then((j) => JSON.stringify(j.meta_cluster), (err: unknown) => `unreachable (${String(err)})`)));
      throw new Error(`${(e as Error).message}; server ${other} killed or restarted; /jsz meta_cluster of each server: ${jsz.join(' | ')}`);
    };
    const down = await waitFor(() => atLeader.metaGroup(), (g) => g !== undefined && !g.whole, 30_000).catch(views);
    t.is(down!.leader, whole!.leader, 'still led by the same server: only a peer is gone');
    await nats.restart(other);
    t.true((await waitFor(() => atLeader.metaGroup(), (g) => g?.whole === true, 30_000).catch(views))!.whole, 'whole again once it is back');
    nats.partition(other, true);
    t.false((await waitFor(() => atLeader.metaGroup(), (g) => g !== undefined && !g.whole, 30_000))!.whole, 'a peer cut off: not whole');
    nats.partition(other, false);
  } finally {
    await Promise.all(buses.map((b) => b.close()));
    await nats.stop();
  }
});

test.serial('stream replicas - a replica killed -9 is seen absent, and its return makes the placement hold the stream where it is', async (t) => {
  t.timeout(180_000);
  const nats = await startNatsCluster();
  const buses = await Promise.all([0, 1, 2].map((i) => connectBus({ servers: [nats.url(i)], name: `replicas-${i}`, replicas: 3, monitorUrl: nats.monitorUrl(i) })));
  try {
    await buses[0]!.kv('held_test');
    const lead = buses.map((b) => b.leadership!()!);
    const leader = (await waitFor(() => lead[0]!.leaderOf('held_test'), (l) => l !== undefined, 30_000))!;
    const at = [0, 1, 2].find((i) => lead[i]!.server() === leader)!;
    const victim = [0, 1, 2].find((i) => i !== at)!;
    const watch = watchReplicas(lead[at]!, { timers: realTimers }, silent, { buckets: ['held_test'] });
    try {
      const victimName = lead[victim]!.server()!;
      await waitFor(async () => (await lead[at]!.replicasOf('held_test'))?.peers.every((p) => p.healthy), (ok) => ok === true, 30_000);
      await new Promise((r) => setTimeout(r, 2 * LEADERS_CHECK_MS)); // seen healthy by the watch
      t.deepEqual([...watch.suspects()], [], 'all three current: none taken for absent');
      nats.kill(victim);
      t.true(await waitFor(async () => watch.suspects().has(victimName), (s) => s, 60_000), `${victimName} seen absent once killed`);
      await nats.restart(victim);
      await waitFor(async () => (await lead[at]!.replicasOf('held_test'))?.peers.every((p) => p.healthy), (ok) => ok === true, 60_000);
      // The scheduler on the leader's server: without the hold the stream would go to a peer nats-server picks.
      const keeper = keepLeadersOff(lead[at]!, { timers: realTimers, clock: realClock }, silent, { buckets: ['held_test'], metaLeader: () => undefined, replicas: watch });
      try {
        await new Promise((r) => setTimeout(r, 3 * LEADERS_CHECK_MS));
        t.is(await lead[at]!.leaderOf('held_test'), leader, 'the stream stays on its leader: a stepdown may have picked the restarted server');
      } finally {
        keeper.stop();
      }
    } finally {
      watch.stop();
    }
  } finally {
    await Promise.all(buses.map((b) => b.close()));
    await nats.stop();
  }
});

test('meta leader - a standby defers while its server leads, and until its first look has ended', async (t) => {
  const time = new VirtualTime();
  let group: MetaGroup | undefined = { leader: 'n1', whole: false };
  let answer: (() => void) | undefined;
  let gate = new Promise<void>((r) => (answer = r));
  const lead = fakeLeadership('n1', () => group);
  const meta = followMetaLeader({ ...lead, metaGroup: async () => (await gate, group) }, { timers: time, clock: time }, silent);
  try {
    await time.run({ untilMs: time.nowMs() + 10 });
    t.true(meta.ownLeads(), 'no look has ended: unknown, so it defers (an election waits at most its grace)');
    answer!();
    await time.run({ untilMs: time.nowMs() + 10 });
    t.true(meta.ownLeads(), 'its server leads, whole or not');
    t.false(meta.ownIsLeader(), 'but no hand-over: the group is not whole');
    group = { leader: 'n2', whole: true };
    gate = Promise.resolve();
    await time.run({ untilMs: time.nowMs() + LEADERS_CHECK_MS * 2 });
    t.false(meta.ownLeads(), 'another server leads');
    group = undefined;
    await time.run({ untilMs: time.nowMs() + LEADERS_CHECK_MS * 2 });
    t.false(meta.ownLeads(), 'no meta leader known (electing, or no monitoring): nobody defers');
  } finally {
    meta.stop();
  }
});
