import type { Kv } from '../nats/types.js';

/** A write by a scheduler whose term has ended: refused before it reaches NATS. */
export class DeposedError extends Error {
  readonly type = 'deposed';
  constructor(readonly term: number) {
    super(`the scheduler of term ${term} was deposed; its writes are refused`);
    this.name = 'DeposedError';
  }
}

/**
 * A view of `kv` whose writes are refused once `active()` is false: reads pass. The scheduler's
 * code is full of continuations (a read that returns late, then a CAS) that would otherwise go on
 * writing after its lease ended — found by the simulator: message-chaos seed 437 issued a dispatch
 * 3 s after its leader stepped down, when a delayed read came back. NATS 2.9 has no conditional write
 * across keys, so the fence is at the writer: a write issued while the lease is live may still land
 * late, which the records' own CAS keeps from clashing with a successor's writes.
 */
export function fencedKv(kv: Kv, active: () => boolean, term: number): Kv {
  const guard = <A extends unknown[], R>(write: (...a: A) => Promise<R>) => (...a: A): Promise<R> => (active() ? write(...a) : Promise.reject(new DeposedError(term)));
  return {
    bucket: kv.bucket,
    create: guard((key: string, value: Uint8Array) => kv.create(key, value)),
    put: guard((key: string, value: Uint8Array) => kv.put(key, value)),
    update: guard((key: string, value: Uint8Array, rev: number) => kv.update(key, value, rev)),
    delete: guard((key: string, rev?: number) => kv.delete(key, rev)),
    purge: guard((key: string) => kv.purge(key)),
    get: (key) => kv.get(key),
    keys: (filter) => kv.keys(filter),
    watch: (options) => kv.watch(options),
  };
}
