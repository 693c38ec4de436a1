import { Actor, type Context } from '../actors/index.js';
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
  /**
   * Each win and renewal: the holder's lease is safe until this time on its clock (its own deadline).
   * A process stopped (SIGSTOP) past it and resumed may run work queued meanwhile before the deadline
   * message: its fence asks the clock, not only the message.
   */
  onHeld?: (untilMs: number) => void;
  /**
   * While true a standby had better not lead (its NATS server leads JetStream's meta group, which would
   * die with it): it takes a vacant lease only once it has been vacant for DEFER_GRACE_MS, so that a
   * better placed candidate gets it first, and a cluster of only such candidates still gets a leader.
   * Costs an election at most that grace, never a failover: it may be asked lightly. `first`: this
   * candidate has never seen the lease held (the cluster's first election, where a wait costs nothing).
   */
  defer?: (first: boolean) => boolean;
  /**
   * While true the holder hands the lease over (released; a standby takes it). A hand-over is a short
   * failover of its own, so this asks more than `defer`: a placement settled for a while.
   */
  handOver?: () => boolean;
}

/** How long a deferring standby leaves a vacant lease to the others (see LeaseOptions.defer). */
export const DEFER_GRACE_MS = 2_000;

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
  return (ctx: Context<Msg>) => new Lease(ctx, o);
}

class Lease extends Actor<Msg> {
  /** The revision we hold (0: a standby). */
  #revision = 0;
  #term = 0;
  /** Bumped on every change of role, so answers to older calls are recognised and ignored. */
  #epoch = 0;
  #inFlight = false;
  #deadline: TimerHandle | undefined;
  /** Whether this candidate has seen the lease held, by itself or another (see LeaseOptions.defer). */
  #seenHeld = false;
  /** When this standby first saw the lease vacant (absent or released), while it defers. */
  #vacantSinceMs: number | undefined;

  constructor(
    ctx: Context<Msg>,
    private readonly o: LeaseOptions,
  ) {
    super(ctx);
  }

  preStart(): void {
    this.ctx.self.tell({ type: 'tick' });
    this.ctx.scheduleRepeat(this.o.renewEveryMs, { type: 'tick' }, { aligned: true });
  }

  async postStop(): Promise<void> {
    if (this.#revision === 0) return;
    const rev = this.#revision;
    this.#depose('stopped');
    // Hand over at once instead of waiting for the TTL: a released marker (no holder) that a
    // candidate takes by CAS. (Delete-then-create of one key can hang with nats.js 3 on 2.9.)
    await this.o.kv.update(this.o.key, RELEASED, rev).catch(() => {});
  }

  receive(msg: Msg): void {
    switch (msg.type) {
      case 'tick':
        if (this.#inFlight) return;
        if (this.#revision !== 0 && this.o.handOver?.() === true) return this.#handOver();
        if (this.#revision === 0) this.#call(() => this.#acquire());
        else this.#call(() => this.o.kv.update(this.o.key, encode({ holder: this.o.holder, term: this.#term } satisfies LeaseRecord), this.#revision));
        return;
      case 'deadline':
        if (msg.epoch === this.#epoch && this.#revision !== 0) this.#depose('renewal overdue: the lease may lapse');
        return;
      case 'won':
        return this.#won(msg);
      case 'failed':
        if (msg.epoch !== this.#epoch) return;
        this.#inFlight = false;
        // A standby simply retries on the next tick; a holder keeps trying until its deadline,
        // unless the key was taken from it.
        if (this.#revision !== 0 && msg.lost) this.#depose('lease taken over');
        return;
    }
  }

  #won(msg: Extract<Msg, { type: 'won' }>): void {
    if (msg.epoch !== this.#epoch) return this.#release(msg.revision);
    this.#inFlight = false;
    const remainingMs = msg.sentAtMs + this.o.ttlMs - this.o.renewEveryMs - this.ctx.ports.clock.nowMs();
    if (remainingMs <= 0) {
      // Answered too late to count on: the lease may already have lapsed for the others.
      if (this.#revision !== 0) this.#depose('renewal answered too late');
      return this.#release(msg.revision);
    }
    const elected = this.#revision === 0;
    this.#revision = msg.revision;
    if (elected) this.#term = msg.revision;
    this.#deadline?.cancel();
    this.#deadline = this.ctx.scheduleOnce(remainingMs, { type: 'deadline', epoch: this.#epoch });
    this.o.onHeld?.(msg.sentAtMs + this.o.ttlMs - this.o.renewEveryMs);
    if (elected) this.o.onElected(this.#term);
  }

  /** Leaves the lease to a better placed candidate: released, so one takes it by CAS at its next tick. */
  #handOver(): void {
    const rev = this.#revision;
    this.#depose('handed over: this node\'s NATS server leads the JetStream meta group');
    this.#release(rev);
  }

  #release(rev: number): void {
    void this.o.kv.update(this.o.key, RELEASED, rev).catch(() => {});
  }

  #depose(reason: string): void {
    this.#revision = 0;
    this.#term = 0;
    this.#epoch++;
    this.#inFlight = false;
    this.#deadline?.cancel();
    this.o.onDeposed(reason);
  }

  /** Runs a KV call off the actor's turn; its answer comes back as a message of this epoch. */
  #call(write: () => Promise<number | undefined>): void {
    const mine = this.#epoch;
    const sentAtMs = this.ctx.ports.clock.nowMs();
    this.#inFlight = true;
    write().then(
      (rev) => this.ctx.self.tell(rev === undefined ? { type: 'failed', epoch: mine, lost: false, reason: 'held by another' } : { type: 'won', epoch: mine, revision: rev, sentAtMs }),
      (e: unknown) => this.ctx.self.tell({ type: 'failed', epoch: mine, lost: (e as { type?: string }).type === 'wrong-revision', reason: (e as Error).message }),
    );
  }

  /** A deferring standby takes a vacant lease only once it has been vacant for DEFER_GRACE_MS. */
  #mayTake(vacant: boolean): boolean {
    if (!vacant || this.o.defer?.(!this.#seenHeld) !== true) {
      this.#vacantSinceMs = undefined;
      return true;
    }
    const now = this.ctx.ports.clock.nowMs();
    this.#vacantSinceMs ??= now;
    return now - this.#vacantSinceMs >= DEFER_GRACE_MS;
  }

  async #acquire(): Promise<number | undefined> {
    const mine = encode({ holder: this.o.holder, term: 0 } satisfies LeaseRecord);
    const cur = await this.o.kv.get(this.o.key);
    const released = cur !== null && decodeLeaseRecord(cur.value)?.holder === '';
    if (cur !== null) this.#seenHeld = true; // held, or released by a holder
    if (!this.#mayTake(cur === null || released)) return undefined;
    // Free (absent or lapsed) -> create; released by its last holder -> take it by CAS.
    return cur === null ? this.o.kv.create(this.o.key, mine) : released ? this.o.kv.update(this.o.key, mine, cur.revision) : undefined;
  }
}
