import test from 'ava';
import { Actor, type ActorRef, type Context } from '../src/actors/index.js';
import { assert, AssertionError } from '../src/assert.js';
import { realSystem } from './helpers/actors.js';

type Msg = { type: 'set'; n: number } | { type: 'get'; replyTo: ActorRef<number> };

const seen: unknown[] = [];

/** Keeps a count it relies on never being negative. */
class NonNegative extends Actor<Msg> {
  n = 1;
  receive(msg: Msg): void {
    if (msg.type === 'get') return msg.replyTo.tell(this.n);
    assert(msg.n >= 0, `a count is never negative, got ${msg.n}`);
    this.n = msg.n;
  }
  preRestart(_ctx: Context<Msg>, error: unknown): void {
    seen.push(error);
  }
}

test('assert - a broken invariant throws an AssertionError carrying its message', (t) => {
  t.notThrows(() => assert(true, 'fine'));
  const e = t.throws(() => assert(0, 'zero is falsy'), { instanceOf: AssertionError });
  t.is(e?.message, 'zero is falsy');
});

test('assert - a failed assertion crashes the actor and its supervisor restarts it with fresh state', async (t) => {
  const system = realSystem();
  const ref = system.spawn(NonNegative, { name: 'nn' }); // the root's default strategy restarts
  ref.tell({ type: 'set', n: 5 });
  t.is(await ref.ask<number>((replyTo) => ({ type: 'get', replyTo }), 1_000), 5);
  ref.tell({ type: 'set', n: -1 });
  t.is(await ref.ask<number>((replyTo) => ({ type: 'get', replyTo }), 1_000), 1, 'restarted: state back to its initial value');
  t.true(seen[0] instanceof AssertionError);
  await system.shutdown();
});
