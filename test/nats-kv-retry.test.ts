import test from 'ava';
import type { KV, KvEntry } from '@nats-io/kv';
import { GET_ATTEMPT_MS, RealKv } from '../src/nats/real-jetstream.js';

/**
 * The binding's retry rules, with nats.js's KV standing in: a request that is never answered cannot be
 * provoked on demand from a real server (a stream electing a leader after its server died swallowed
 * one in the chaos service scenario), so the stand-in's first call hangs.
 */
function hangingOnce(): { kv: KV; calls: () => number } {
  let calls = 0;
  const entry = { key: 'k', value: new TextEncoder().encode('v'), revision: 7, operation: 'PUT' } as unknown as KvEntry;
  const answer = <T>(v: T): Promise<T> => (++calls === 1 ? new Promise<T>(() => {}) : Promise.resolve(v));
  const kv = { get: () => answer(entry), put: () => answer(8) } as unknown as KV;
  return { kv, calls: () => calls };
}

test('real kv - a get with no answer is asked again within its timeout, and the second answer counts', async (t) => {
  const { kv, calls } = hangingOnce();
  const real = new RealKv(undefined as never, kv, 'b', GET_ATTEMPT_MS * 5);
  const got = await real.get('k');
  t.is(got?.revision, 7);
  t.is(calls(), 2, 'the hung request was made again');
});

test('real kv - a write with no answer is not made again: it may have landed (the caller re-reads)', async (t) => {
  const { kv, calls } = hangingOnce();
  const real = new RealKv(undefined as never, kv, 'b', 300);
  const e = await t.throwsAsync(real.put('k', new Uint8Array(1)));
  t.is((e as { type?: string }).type, 'timeout');
  t.is(calls(), 1);
});
