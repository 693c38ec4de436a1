import type { Context } from '../actors/index.js';
import type { TimerHandle } from '../ports/types.js';
import type { Kv } from '../nats/types.js';
import { decodeLeaseRecord, encode, type LeaseRecord } from './protocol/index.js';

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

type Msg =
  | { type: 'tick' }
  /** The holder's own deadline: the lease may lapse for everyone else soon after this. */
  | { type: 'deadline'; epoch: number }
  /** A KV call made in `epoch` answered; `sentAtMs` is when it was sent. */
  | { type: 'won'; epoch: number; revision: number; sentAtMs: number }
  | { type: 'failed'; epoch: number; lost: boolean; reason: string };

const RELEASED = encode({ holder: '', term: 0 } satisfies LeaseRecord);

/**
 * Leader election on a JetStream KV key in a bucket with a TTL. A candidate creates the key (only one
 * create can succeed); the holder renews with update-if-revision-matches.
 *
 * The holder counts its lease from the moment a successful write was *sent* (the server wrote it no
 * earlier, so the key lives at least ttlMs from then) and steps down by its own timer at
 * `sent + ttlMs - renewEveryMs`, whatever its pending KV call is doing. KV calls never block the actor:
 * a renewal that hangs (nats.js can leave one pending for its whole timeout, longer than the lease)
 * cannot keep a deposed leader acting. Answers to calls of an earlier epoch are ignored, and a late
 * win is released at once, so a stale holder never blocks a successor for a whole TTL.
 */
export function leaseActor(o: LeaseOptions) {
  if (!(o.renewEveryMs > 0 && o.renewEveryMs * 2 < o.ttlMs)) throw new RangeError(`lease needs 0 < renewEveryMs < ttlMs / 2, got ${o.renewEveryMs} / ${o.ttlMs}`);
  return (ctx: Context<Msg>) => {
    const clock = ctx.ports.clock;
    /** The revision we hold (0: a standby). */
    let revision = 0;
    let term = 0;
    /** Bumped on every change of role, so answers to older calls are recognised and ignored. */
    let epoch = 0;
    let inFlight = false;
    let deadline: TimerHandle | undefined;

    const release = (rev: number): void => void o.kv.update(o.key, RELEASED, rev).catch(() => {});
    const depose = (reason: string): void => {
      revision = 0;
      term = 0;
      epoch++;
      inFlight = false;
      deadline?.cancel();
      o.onDeposed(reason);
    };
    /** Runs a KV call off the actor's turn; its answer comes back as a message of this epoch. */
    const call = (write: () => Promise<number | undefined>): void => {
      const mine = epoch;
      const sentAtMs = clock.nowMs();
      inFlight = true;
      write().then(
        (rev) => ctx.self.tell(rev === undefined ? { type: 'failed', epoch: mine, lost: false, reason: 'held by another' } : { type: 'won', epoch: mine, revision: rev, sentAtMs }),
        (e: unknown) => ctx.self.tell({ type: 'failed', epoch: mine, lost: (e as { type?: string }).type === 'wrong-revision', reason: (e as Error).message }),
      );
    };
    const acquire = async (): Promise<number | undefined> => {
      const mine = encode({ holder: o.holder, term: 0 } satisfies LeaseRecord);
      const cur = await o.kv.get(o.key);
      const released = cur !== null && decodeLeaseRecord(cur.value)?.holder === '';
      // Free (absent or lapsed) -> create; released by its last holder -> take it by CAS.
      return cur === null ? o.kv.create(o.key, mine) : released ? o.kv.update(o.key, mine, cur.revision) : undefined;
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
        await o.kv.update(o.key, RELEASED, rev).catch(() => {});
      },
      receive: (msg: Msg) => {
        switch (msg.type) {
          case 'tick':
            if (inFlight) return;
            if (revision === 0) call(acquire);
            else call(() => o.kv.update(o.key, encode({ holder: o.holder, term } satisfies LeaseRecord), revision));
            return;
          case 'deadline':
            if (msg.epoch === epoch && revision !== 0) depose('renewal overdue: the lease may lapse');
            return;
          case 'won': {
            if (msg.epoch !== epoch) return release(msg.revision);
            inFlight = false;
            const remainingMs = msg.sentAtMs + o.ttlMs - o.renewEveryMs - clock.nowMs();
            if (remainingMs <= 0) {
              // Answered too late to count on: the lease may already have lapsed for the others.
              const wasHolder = revision !== 0;
              if (wasHolder) depose('renewal answered too late');
              return release(msg.revision);
            }
            const elected = revision === 0;
            revision = msg.revision;
            if (elected) term = msg.revision;
            deadline?.cancel();
            deadline = ctx.scheduleOnce(remainingMs, { type: 'deadline', epoch });
            if (elected) o.onElected(term);
            return;
          }
          case 'failed':
            if (msg.epoch !== epoch) return;
            inFlight = false;
            // A standby simply retries on the next tick; a holder keeps trying until its deadline,
            // unless the key was taken from it.
            if (revision !== 0 && msg.lost) depose('lease taken over');
            return;
        }
      },
    };
  };
}
