import test from 'ava';
import { InMemoryNetwork, InvalidOptionError, RemoteDeliveryError, FRAME_BYTES_MAX, stateful, type ActorRef } from '../src/actors/index.js';
import { realTimers } from '../src/ports/index.js';
import { eventually, realSystem } from './helpers/actors.js';

type Greet = { name: string; replyTo: ActorRef<string> };

function pair() {
  const net = new InMemoryNetwork(realTimers);
  const a = realSystem({ name: 'node-a', transport: net.transport() });
  const b = realSystem({ name: 'node-b', transport: net.transport() });
  return { net, a, b };
}

test('remote - tell and ask an actor in another system by path; replies cross back', async (t) => {
  const { a, b } = pair();
  b.spawn<Greet>(() => ({ receive: (m) => m.replyTo.tell(`hello ${m.name} from node-b`) }), { name: 'greeter' });
  const greeter = a.refFor<Greet>('actor://node-b/greeter');
  t.is(await greeter.ask<string>((replyTo) => ({ name: 'ann', replyTo }), 1000), 'hello ann from node-b');
  await Promise.all([a.shutdown(), b.shutdown()]);
});

test('remote - refs travel inside messages and keep per-sender order', async (t) => {
  const { a, b } = pair();
  const got: number[] = [];
  const collector = a.spawn<number>(() => ({ receive: (n) => void got.push(n) }), { name: 'collector' });
  b.spawn<{ upTo: number; to: ActorRef<number> }>(() => ({
    receive: (m) => {
      for (let i = 0; i < m.upTo; i++) m.to.tell(i);
    },
  }), { name: 'counter' });
  a.refFor<{ upTo: number; to: ActorRef<number> }>('actor://node-b/counter').tell({ upTo: 1000, to: collector });
  await eventually(() => got.length === 1000);
  t.deepEqual(got, Array.from({ length: 1000 }, (_, i) => i));
  await Promise.all([a.shutdown(), b.shutdown()]);
});

test('remote - watching a remote actor is refused plainly rather than reported dead', async (t) => {
  const { a, b } = pair();
  const far = a.refFor<string>('actor://node-b/anything');
  let refused: unknown;
  a.spawn<string>((ctx) => ({
    receive: () => {},
    preStart: () => {
      try {
        ctx.watch(far as never, 'gone');
      } catch (e) {
        refused = e;
      }
    },
  }));
  await eventually(() => refused !== undefined);
  t.true(refused instanceof InvalidOptionError);
  await Promise.all([a.shutdown(), b.shutdown()]);
});

test('remote - garbage frames, unknown paths and oversized messages fail cleanly', async (t) => {
  const net = new InMemoryNetwork(realTimers);
  const b = realSystem({ name: 'node-b', transport: net.transport() });
  const probe = net.transport();
  probe.bind('probe', () => {});
  const acc = b.spawn(stateful(0, (n: number, m: number) => n + m), { name: 'acc' });
  probe.send('node-b', new TextEncoder().encode('not json'));
  probe.send('node-b', new Uint8Array([0xff, 0xfe]));
  probe.send('node-b', new TextEncoder().encode(JSON.stringify({ to: 'nowhere', msg: 1 })));
  probe.send('node-b', new TextEncoder().encode(JSON.stringify({ to: 'actor://node-b/acc', msg: { $ref: 'bad path' } })));
  probe.send('node-b', new TextEncoder().encode(JSON.stringify({ to: 'actor://node-b/missing', msg: 1 })));
  await eventually(() => b.stats().remoteErrors === 4 && b.stats().deadLetters === 1);
  t.is(b.statusOf(acc), 'running');

  const a = realSystem({ name: 'node-a', transport: net.transport() });
  const far = a.refFor<string>('actor://node-b/acc');
  const huge = 'x'.repeat(FRAME_BYTES_MAX);
  t.throws(() => far.tell(huge), { instanceOf: RemoteDeliveryError });
  t.is(far.tryTell(huge)._tag, 'Left');
  await Promise.all([a.shutdown(), b.shutdown()]);
});
