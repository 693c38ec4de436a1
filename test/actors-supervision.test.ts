import test from 'ava';
import {
  Actor,
  EscalatedError,
  RestartIntensityExceededError,
  oneForAll,
  oneForOne,
  restForOne,
  type ActorRef,
  type Context,
  type Decision,
  type SupervisorStrategy,
  type Terminated,
} from '../src/actors/index.js';
import { realSystem, virtualSystem } from './helpers/actors.js';

type Msg = { type: 'inc' } | { type: 'boom'; error?: string } | { type: 'reject' } | { type: 'get'; replyTo: ActorRef<number> };

/** Counts instances so a test can tell restarts (fresh instance, state reset) from resumes. */
let instances = 0;
const hookLog: string[] = [];

class Flaky extends Actor<Msg> {
  n = 0;
  readonly id = ++instances;
  receive(msg: Msg): void | Promise<void> {
    switch (msg.type) {
      case 'inc':
        this.n++;
        return;
      case 'boom':
        throw new Error(msg.error ?? 'boom');
      case 'reject':
        return Promise.reject(new Error('async boom'));
      case 'get':
        msg.replyTo.tell(this.n);
    }
  }
  preRestart(_ctx: Context<Msg>, error: unknown): void {
    hookLog.push(`preRestart ${this.ctx.name} ${(error as Error).message}`);
  }
  postRestart(_ctx: Context<Msg>, error: unknown): void {
    hookLog.push(`postRestart ${this.ctx.name} ${(error as Error).message}`);
  }
}

const get = (ref: ActorRef<Msg>) => ref.ask<number>((replyTo) => ({ type: 'get', replyTo }), 1000);

/** A supervisor whose children are named flaky actors, with the given strategy. */
function supervisor(strategy: SupervisorStrategy, names: string[]) {
  return (ctx: Context<string>) => ({
    supervisor: strategy,
    receive: () => {},
    preStart: () => {
      for (const n of names) ctx.spawn(Flaky, { name: n });
    },
  });
}

test.serial('supervision - one-for-one restart resets the failed child only and keeps its mailbox', async (t) => {
  const sys = realSystem();
  hookLog.length = 0;
  const sup = sys.spawn(supervisor(oneForOne(), ['a', 'b']), { name: 'sup' });
  const a = sys.refFor<Msg>(`${sup.path}/a`);
  const b = sys.refFor<Msg>(`${sup.path}/b`);
  a.tell({ type: 'inc' });
  b.tell({ type: 'inc' });
  a.tell({ type: 'boom' });
  a.tell({ type: 'inc' }); // queued behind the failure: survives the restart
  t.is(await get(a), 1);
  t.is(await get(b), 1);
  t.deepEqual(hookLog, ['preRestart a boom', 'postRestart a boom']);
  await sys.shutdown();
});

test.serial('supervision - resume keeps state and drops only the failing message', async (t) => {
  const sys = realSystem();
  const sup = sys.spawn(supervisor(oneForOne({ decide: () => 'resume' }), ['a']));
  const a = sys.refFor<Msg>(`${sup.path}/a`);
  const before = instances;
  a.tell({ type: 'inc' });
  a.tell({ type: 'boom' });
  a.tell({ type: 'inc' });
  t.is(await get(a), 2);
  t.is(instances, before); // no new instance
  await sys.shutdown();
});

test.serial('supervision - an async handler rejection goes to the supervisor like a throw', async (t) => {
  const sys = realSystem();
  const before = instances;
  const sup = sys.spawn(supervisor(oneForOne(), ['a']));
  const a = sys.refFor<Msg>(`${sup.path}/a`);
  a.tell({ type: 'inc' });
  a.tell({ type: 'reject' });
  t.is(await get(a), 0);
  t.is(instances, before + 2);
  await sys.shutdown();
});

test.serial('supervision - stop decision stops the child and its watcher hears of it', async (t) => {
  const { system, ports } = virtualSystem();
  const heard: string[] = [];
  const sup = system.spawn<Terminated>((ctx) => ({
    supervisor: oneForOne({ decide: () => 'stop' }),
    receive: (m) => {
      heard.push(m.ref.path);
    },
    preStart: () => {
      ctx.watch(ctx.spawn(Flaky, { name: 'a' }));
    },
  }));
  await ports.time.run();
  const a = system.refFor<Msg>(`${sup.path}/a`);
  a.tell({ type: 'boom' });
  await ports.time.run();
  t.is(system.statusOf(a), 'stopped');
  t.deepEqual(heard, [a.path]);
  t.is(system.statusOf(sup), 'running');
});

test.serial('supervision - one-for-all restarts every sibling', async (t) => {
  const sys = realSystem();
  const sup = sys.spawn(supervisor(oneForAll(), ['a', 'b', 'c']));
  const [a, b, c] = ['a', 'b', 'c'].map((n) => sys.refFor<Msg>(`${sup.path}/${n}`)) as [ActorRef<Msg>, ActorRef<Msg>, ActorRef<Msg>];
  for (const r of [a, b, c]) r.tell({ type: 'inc' });
  await get(c);
  b.tell({ type: 'boom' });
  const bAfter = await get(b); // queued behind the failure, so answered by the fresh instance
  t.deepEqual([await get(a), bAfter, await get(c)], [0, 0, 0]);
  await sys.shutdown();
});

test.serial('supervision - rest-for-one restarts the failed child and those started after it', async (t) => {
  const sys = realSystem();
  const sup = sys.spawn(supervisor(restForOne(), ['a', 'b', 'c']));
  const [a, b, c] = ['a', 'b', 'c'].map((n) => sys.refFor<Msg>(`${sup.path}/${n}`)) as [ActorRef<Msg>, ActorRef<Msg>, ActorRef<Msg>];
  for (const r of [a, b, c]) r.tell({ type: 'inc' });
  await get(c);
  b.tell({ type: 'boom' });
  const bAfter = await get(b);
  t.deepEqual([await get(a), bAfter, await get(c)], [1, 0, 0]);
  await sys.shutdown();
});

test.serial('supervision - escalate fails the parent, whose supervisor restarts it with fresh children', async (t) => {
  const { system, ports, events } = virtualSystem();
  const top = system.spawn((ctx: Context<string>) => ({
    supervisor: oneForOne({ decide: () => 'restart' }),
    receive: () => {},
    preStart: () => {
      ctx.spawn(supervisor(oneForOne({ decide: () => 'escalate' }), ['leaf']), { name: 'mid' });
    },
  }), { name: 'top' });
  await ports.time.run();
  const leaf = system.refFor<Msg>(`${top.path}/mid/leaf`);
  leaf.tell({ type: 'inc' });
  leaf.tell({ type: 'boom' });
  await ports.time.run();
  const escalated = events.find((e) => e.type === 'failed' && e.path === `${top.path}/mid`);
  t.truthy(escalated);
  t.true((escalated as { error: unknown }).error instanceof EscalatedError);
  const fresh = system.refFor<Msg>(`${top.path}/mid/leaf`);
  t.is(system.statusOf(fresh), 'running');
  const n = fresh.ask<number>((replyTo) => ({ type: 'get', replyTo }), 100);
  await ports.time.run();
  t.is(await n, 0);
});

test.serial('supervision - restart intensity: more than maxRestarts within the window escalates', async (t) => {
  const { system, ports, events } = virtualSystem();
  const sup = system.spawn(supervisor(oneForOne({ maxRestarts: 3, withinMs: 1000 }), ['a']), { name: 'sup' });
  await ports.time.run();
  const a = system.refFor<Msg>(`${sup.path}/a`);
  for (let i = 0; i < 3; i++) {
    a.tell({ type: 'boom' });
    await ports.time.advance(10);
  }
  t.is(events.filter((e) => e.type === 'restarted').length, 3);
  t.is(system.statusOf(sup), 'running');
  a.tell({ type: 'boom' }); // the fourth within 1 s
  await ports.time.run();
  t.is(system.statusOf(a), 'stopped');
  const supFailure = events.find((e) => e.type === 'failed' && e.path === sup.path) as { error: unknown } | undefined;
  t.true(supFailure?.error instanceof RestartIntensityExceededError);
  // The root's default strategy restarts the supervisor, which starts a fresh child.
  t.is(system.statusOf(system.refFor(`${sup.path}/a`)), 'running');
});

test.serial('supervision - failures spread beyond the window do not escalate', async (t) => {
  const { system, ports, events } = virtualSystem();
  const sup = system.spawn(supervisor(oneForOne({ maxRestarts: 2, withinMs: 100 }), ['a']));
  await ports.time.run();
  const a = system.refFor<Msg>(`${sup.path}/a`);
  for (let i = 0; i < 6; i++) {
    a.tell({ type: 'boom' });
    await ports.time.advance(60); // at most two failures in any 100 ms window
  }
  t.is(events.filter((e) => e.type === 'restarted').length, 6);
  t.false(events.some((e) => e.type === 'escalated'));
});

test.serial('supervision - exponential backoff delays restarts on virtual time', async (t) => {
  const { system, ports, events } = virtualSystem();
  const strategy = oneForOne({ maxRestarts: 10, withinMs: 60_000, backoff: { minMs: 100, maxMs: 1000, factor: 2 } });
  const sup = system.spawn(supervisor(strategy, ['a']));
  await ports.time.run();
  const a = system.refFor<Msg>(`${sup.path}/a`);
  const delays: number[] = [];
  for (let i = 0; i < 6; i++) {
    const failedAt = ports.time.nowMs();
    a.tell({ type: 'boom' });
    await ports.time.run();
    delays.push(ports.time.nowMs() - failedAt);
  }
  t.deepEqual(delays, [100, 200, 400, 800, 1000, 1000]);
  t.deepEqual(events.filter((e) => e.type === 'restarted').map((e) => (e as { delayMs: number }).delayMs), delays);
});

test.serial('supervision - jittered backoff stays within its bounds and depends only on the seed', async (t) => {
  async function delaysFor(seed: number): Promise<number[]> {
    const { system, ports, events } = virtualSystem(seed);
    const strategy = oneForOne({ maxRestarts: 20, withinMs: 60_000, backoff: { minMs: 100, maxMs: 10_000, factor: 2, jitter: 0.5 } });
    const sup = system.spawn(supervisor(strategy, ['a']));
    await ports.time.run();
    const a = system.refFor<Msg>(`${sup.path}/a`);
    for (let i = 0; i < 5; i++) {
      a.tell({ type: 'boom' });
      await ports.time.run();
    }
    return events.filter((e) => e.type === 'restarted').map((e) => (e as { delayMs: number }).delayMs);
  }
  const d = await delaysFor(7);
  d.forEach((ms, i) => {
    const base = 100 * 2 ** i;
    t.true(ms >= base * 0.5 && ms <= base * 1.5, `restart ${i}: ${ms} ms outside [${base * 0.5}, ${base * 1.5}]`);
  });
  t.deepEqual(await delaysFor(7), d);
  t.notDeepEqual(await delaysFor(8), d);
});

test.serial('supervision - a decide function that throws escalates instead of crashing', async (t) => {
  const { system, ports, events } = virtualSystem();
  const decide = (): Decision => {
    throw new Error('bad decider');
  };
  const sup = system.spawn(supervisor(oneForOne({ decide }), ['a']));
  await ports.time.run();
  system.refFor<Msg>(`${sup.path}/a`).tell({ type: 'boom' });
  await ports.time.run();
  t.true(events.some((e) => e.type === 'escalated'));
  t.is(system.statusOf(sup), 'running'); // restarted by the root
});

test.serial('watch - custom message, watching the dead, and unwatch', async (t) => {
  const { system, ports } = virtualSystem();
  const got: string[] = [];
  const a = system.spawn(Flaky, { name: 'a' });
  const b = system.spawn(Flaky, { name: 'b' });
  const dead = system.spawn(Flaky, { name: 'dead' });
  await system.stop(dead);
  system.spawn<string>((ctx) => ({
    receive: (m) => {
      got.push(m);
    },
    preStart: () => {
      ctx.watch(a, 'a died');
      ctx.watch(b, 'b died');
      ctx.watch(dead, 'dead was already dead');
      ctx.unwatch(b);
    },
  }));
  await ports.time.run();
  await system.stop(a);
  await system.stop(b);
  await ports.time.run();
  t.deepEqual(got, ['dead was already dead', 'a died']);
});
