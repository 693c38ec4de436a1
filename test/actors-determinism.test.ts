import test from 'ava';
import { oneForOne, type ActorRef, type Context, type SystemEvent } from '../src/actors/index.js';
import { virtualSystem } from './helpers/actors.js';

/**
 * A busy little world: workers that fail at random (drawn from the injected Random), supervised with
 * jittered backoff, pinged on timers and asked with timeouts. Its event trace must depend on the
 * seed alone.
 */
async function trace(seed: number): Promise<string[]> {
  const { system, ports, events } = virtualSystem(seed);
  const log: string[] = [];
  type W = { type: 'work'; n: number } | { type: 'ping'; replyTo: ActorRef<number> };
  const worker = (ctx: Context<W>) => {
    let done = 0;
    return {
      receive: async (m: W) => {
        if (m.type === 'ping') {
          if (ctx.ports.random.next() < 0.3) return; // sometimes stay silent: the ask times out
          m.replyTo.tell(done);
          return;
        }
        await new Promise<void>((r) => ctx.ports.timers.setTimeout(r, ctx.ports.random.int(20)));
        if (ctx.ports.random.next() < 0.2) throw new Error(`worker ${ctx.name} failed at ${m.n}`);
        done++;
      },
    };
  };
  const sup = system.spawn((ctx: Context<string>) => ({
    supervisor: oneForOne({ maxRestarts: 100, withinMs: 1000, backoff: { minMs: 5, maxMs: 200, jitter: 0.5 } }),
    receive: () => {},
    preStart: () => {
      for (let i = 0; i < 4; i++) ctx.spawn(worker, { name: `w${i}` });
    },
  }), { name: 'sup' });
  await ports.time.run();
  const workers = [0, 1, 2, 3].map((i) => system.refFor<W>(`${sup.path}/w${i}`));
  for (let round = 0; round < 40; round++) {
    const w = workers[ports.random.int(4)]!;
    w.tell({ type: 'work', n: round });
    w.ask<number>((replyTo) => ({ type: 'ping', replyTo }), 50).then(
      (n) => log.push(`${ports.time.nowMs()} ${w.path} done=${n}`),
      (e: Error) => log.push(`${ports.time.nowMs()} ${w.path} ${e.name}`),
    );
    await ports.time.advance(ports.random.int(30));
  }
  await ports.time.run();
  await system.shutdown();
  return [...log, ...events.map((e: SystemEvent) => `${e.type} ${e.path}`)];
}

test('determinism - the same seed gives the same trace; another seed another one', async (t) => {
  const a = await trace(42);
  const b = await trace(42);
  t.true(a.length > 50, `trace has only ${a.length} entries:\n${a.join("\n")}`);
  t.deepEqual(a, b);
  t.notDeepEqual(await trace(43), a);
});
