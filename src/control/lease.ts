import type { Context } from '../actors/index.js';
import type { Kv } from '../nats/types.js';
import { encode, type LeaseRecord } from './protocol.js';

export interface LeaseOptions {
  kv: Kv;
  key: string;
  holder: string;
  /** The bucket's TTL: a lease not renewed within it lapses and a standby may take over. */
  ttlMs: number;
  /** How often the holder renews (and a standby retries); well under ttlMs. */
  renewEveryMs: number;
  /** Called with the term (the KV revision of the winning create: a fencing token). */
  onElected: (term: number) => void;
  onDeposed: (reason: string) => void;
}

type Msg = { type: 'tick' };

/**
 * Leader election on a JetStream KV key in a bucket with a TTL. A candidate creates the key (only one
 * create can succeed); the holder renews with update-if-revision-matches. The holder steps down by
 * its own clock once it has gone `ttlMs - renewEveryMs` without a successful renewal — before the
 * lease can lapse for everyone else — so two leaders never act at once as long as clocks run at
 * similar rates.
 */
export function leaseActor(o: LeaseOptions) {
  if (!(o.renewEveryMs > 0 && o.renewEveryMs * 2 < o.ttlMs)) throw new RangeError(`lease needs 0 < renewEveryMs < ttlMs / 2, got ${o.renewEveryMs} / ${o.ttlMs}`);
  return (ctx: Context<Msg>) => {
    let revision = 0;
    let term = 0;
    let lastRenewMs = 0;
    const clock = ctx.ports.clock;
    const depose = (reason: string): void => {
      revision = 0;
      term = 0;
      o.onDeposed(reason);
    };
    return {
      preStart: () => {
        ctx.self.tell({ type: 'tick' });
        ctx.scheduleRepeat(o.renewEveryMs, { type: 'tick' });
      },
      postStop: async () => {
        if (revision === 0) return;
        const rev = revision;
        depose('stopped');
        // Hand over at once instead of waiting for the TTL: a released marker (no holder) that a
        // candidate takes by CAS. (Delete-then-create of one key can hang with nats.js 3 on 2.9.)
        await o.kv.update(o.key, encode({ holder: '', term: 0 } satisfies LeaseRecord), rev).catch(() => {});
      },
      receive: async () => {
        if (revision !== 0) {
          try {
            const value: LeaseRecord = { holder: o.holder, term };
            revision = await o.kv.update(o.key, encode(value), revision);
            lastRenewMs = clock.nowMs();
          } catch (e) {
            const lost = (e as { type?: string }).type === 'wrong-revision';
            if (lost || clock.nowMs() - lastRenewMs >= o.ttlMs - o.renewEveryMs) depose(lost ? 'lease taken over' : `renewal failing: ${(e as Error).message}`);
          }
          return;
        }
        try {
          const mine = encode({ holder: o.holder, term: 0 } satisfies LeaseRecord);
          const cur = await o.kv.get(o.key);
          const released = cur?.value != null && (JSON.parse(new TextDecoder().decode(cur.value)) as LeaseRecord).holder === '';
          // Free (absent or lapsed) -> create; released by its last holder -> take it by CAS.
          const rev = cur === null ? await o.kv.create(o.key, mine) : released ? await o.kv.update(o.key, mine, cur.revision) : undefined;
          if (rev === undefined) return;
          revision = rev;
          term = rev;
          lastRenewMs = clock.nowMs();
          o.onElected(term);
        } catch {
          // Someone else holds it (or NATS is away): stay a standby and retry on the next tick.
        }
      },
    };
  };
}
