import { Actor } from './actor.js';
import { InvalidOptionError, JournalConflictError, JournalReadError } from './errors.js';
import type { MaybePromise } from './types.js';

export interface JournalEntry {
  seq: number;
  event: unknown;
}

export interface Snapshot {
  seq: number;
  state: unknown;
}

/**
 * Where event-sourced actors keep their history. Events and states must be JSON-serializable (the
 * JetStream journal stores them as JSON). `append` is a compare-and-set on the last sequence number,
 * so two writers under one persistence id cannot interleave silently. One append is one batch, stored
 * whole (PersistentActor's group commit puts many commands' events in one).
 */
export interface Journal {
  /** Appends after `expectedSeq`; resolves with the new last sequence, or rejects with JournalConflictError. */
  append(persistenceId: string, events: readonly unknown[], expectedSeq: number): Promise<number>;
  /** Events with seq > afterSeq, in order. `afterSeq` is 0 or a sequence `append` resolved with (a batch's end). */
  read(persistenceId: string, afterSeq: number): AsyncIterable<JournalEntry>;
  saveSnapshot(persistenceId: string, snapshot: Snapshot): Promise<void>;
  loadSnapshot(persistenceId: string): Promise<Snapshot | undefined>;
}

/** A journal in this process's memory. Values are deep-copied in and out, as if serialized. */
export class InMemoryJournal implements Journal {
  readonly #events = new Map<string, unknown[]>();
  /** Per id, the last sequence of each batch: reads must start at one of them (or 0), as with KvJournal. */
  readonly #batchEnds = new Map<string, Set<number>>();
  readonly #snapshots = new Map<string, Snapshot>();
  /** Events handed out by read(), to show that snapshots shorten recovery. */
  eventsRead = 0;
  /** Appends that stored events (batches), to show that group commit writes fewer than commands. */
  appends = 0;

  async append(persistenceId: string, events: readonly unknown[], expectedSeq: number): Promise<number> {
    const log = this.#events.get(persistenceId) ?? [];
    if (log.length !== expectedSeq) throw new JournalConflictError(persistenceId, expectedSeq, log.length);
    if (events.length === 0) return log.length;
    for (const e of events) log.push(structuredClone(e));
    this.#events.set(persistenceId, log);
    const ends = this.#batchEnds.get(persistenceId) ?? new Set([0]);
    this.#batchEnds.set(persistenceId, ends.add(log.length));
    this.appends++;
    return log.length;
  }

  async *read(persistenceId: string, afterSeq: number): AsyncIterable<JournalEntry> {
    const log = this.#events.get(persistenceId) ?? [];
    if (afterSeq !== 0 && this.#batchEnds.get(persistenceId)?.has(afterSeq) !== true) throw new JournalReadError(persistenceId, afterSeq);
    for (let i = afterSeq; i < log.length; i++) {
      this.eventsRead++;
      yield { seq: i + 1, event: structuredClone(log[i]) };
    }
  }

  async saveSnapshot(persistenceId: string, snapshot: Snapshot): Promise<void> {
    this.#snapshots.set(persistenceId, structuredClone(snapshot));
  }

  async loadSnapshot(persistenceId: string): Promise<Snapshot | undefined> {
    const s = this.#snapshots.get(persistenceId);
    return s === undefined ? undefined : structuredClone(s);
  }
}

/**
 * Events in one journal append at most (whole commands: one command's events are never split). A batch
 * is one JetStream message, which the server bounds (1 MiB by default), so the bound is on the count.
 */
export const JOURNAL_BATCH_EVENTS_MAX = 256;
/**
 * Bytes of JSON in one append at most, well under nats-server's default 1 MiB message: commands whose
 * events were each storable alone must not fail for having been batched together.
 */
export const JOURNAL_BATCH_BYTES_MAX = 256 * 1024;

/** One command's events on their way to the journal, and its persist() waiting for them. */
interface PendingWrite {
  readonly events: readonly unknown[];
  /** Their JSON's size, for JOURNAL_BATCH_BYTES_MAX. */
  readonly bytes: number;
  readonly resolve: () => void;
  readonly reject: (e: unknown) => void;
}

/**
 * An event-sourced actor. Commands arrive in `receive`; state changes only by persisting events. On
 * start and on every restart the actor recovers: latest snapshot, then the events after it. Messages
 * that arrive meanwhile wait in the mailbox.
 *
 * Group commit: `persist` applies its events to `state` at once and queues them; one write is in flight
 * at a time, and the events queued meanwhile go in the next write, as one journal append. A `receive`
 * that awaits `persist` gets the simple behaviour (one command at a time, each stored before the next
 * starts). A `receive` that returns without awaiting it lets the next command run its checks against
 * `state` with the pending events applied — e.g. no overbooking — while the writes go out in batches;
 * it must then answer only once `persist` resolved (its events are stored) and let a failure fail the
 * actor (JournaledState in apps/common/sigma-state.ts does both). `storedState` is the state of the
 * stored events only, for readers that must not see what may yet be lost.
 *
 * A failed write fails every pending command (their persist promises reject) and every later persist:
 * no batch is written after a failed one, since its checks saw the failed events. The actor must then
 * fail (throw from receive); its supervisor restarts it and recovery reads what the journal holds.
 */
export abstract class PersistentActor<C, E, S> extends Actor<C> {
  abstract readonly persistenceId: string;
  protected abstract readonly journal: Journal;
  /** Save a snapshot after this many events (0: never). */
  protected readonly snapshotEvery: number = 0;
  /** Stored events and the pending ones applied: what commands check against. */
  #state: S | undefined;
  /**
   * Stored events only: a second copy, because onEvent may change a state in place. Costs the state's
   * memory twice and every event applied twice, rather than a copy of the state per batch.
   */
  #stored: S | undefined;
  #seq = 0;
  #sinceSnapshot = 0;
  /** Commands whose events wait for the next write. */
  #queued: PendingWrite[] = [];
  /** Events applied to #state and not yet stored (queued and in flight). */
  #pendingEvents = 0;
  /** Resolves when every event persisted so far is stored; rejects once a write failed. */
  #tail: Promise<void> = Promise.resolve();
  /** Whether the write loop runs; set and cleared by the loop itself (it may end before its first await). */
  #writing = false;
  /** The last write loop: stopping waits for it. */
  #written: Promise<void> = Promise.resolve();
  #failure: { error: unknown } | undefined;

  abstract initialState(): S;
  abstract onEvent(state: S, event: E): S;
  /** Called once recovery has finished, before the first command. */
  onRecovered?(): MaybePromise;

  /** The state commands check against: stored events and the pending ones (group commit). */
  protected get state(): S {
    return this.#state as S;
  }

  /** The state of the stored events only. */
  protected get storedState(): S {
    return this.#stored as S;
  }

  /** Sequence number of the last stored event. */
  get lastSeq(): number {
    return this.#seq;
  }

  /** Events persisted but not yet stored. */
  get pendingEvents(): number {
    return this.#pendingEvents;
  }

  async preStart(): Promise<void> {
    if (!Number.isInteger(this.snapshotEvery) || this.snapshotEvery < 0) {
      throw new InvalidOptionError('snapshotEvery', `must be a non-negative integer, got ${this.snapshotEvery}`);
    }
    const snap = await this.journal.loadSnapshot(this.persistenceId);
    let state = snap === undefined ? this.initialState() : (snap.state as S);
    let seq = snap?.seq ?? 0;
    for await (const entry of this.journal.read(this.persistenceId, seq)) {
      state = this.onEvent(state, entry.event as E);
      seq = entry.seq;
    }
    this.#stored = state;
    this.#state = structuredClone(state);
    this.#seq = seq;
    this.#sinceSnapshot = seq - (snap?.seq ?? 0);
    await this.onRecovered?.();
  }

  /**
   * Writes accepted before a stop or restart are finished first: the next incarnation recovers after
   * them. A subclass that has its own postStop calls this one.
   */
  async postStop(): Promise<void> {
    await this.#written;
  }

  /**
   * Applies the events to `state` now and stores them with the next write; resolves (with `state`, which
   * by then may hold later commands' events too) once they are stored. With no events, resolves once
   * everything persisted before is stored. Rejects if the write fails, or a write failed before.
   */
  protected persist(...events: E[]): Promise<S> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure.error);
    if (events.length === 0) return this.persisted().then(() => this.state);
    // The journal and the stored state get a copy (the handler's objects now belong to #state), made by
    // one JSON round trip, as the journal will store them, whose length bounds the batch.
    const json = JSON.stringify(events);
    const copies = JSON.parse(json) as unknown[];
    try {
      for (const e of events) this.#state = this.onEvent(this.#state as S, e);
    } catch (e) {
      // #state may be half changed: nothing more may be persisted from it. The write in flight was
      // checked before, so it goes on; what is queued behind it fails, as after a failed write.
      this.#failWrites(e, []);
      return Promise.reject(e);
    }
    const stored = new Promise<void>((resolve, reject) => this.#queued.push({ events: copies, bytes: Buffer.byteLength(json), resolve, reject }));
    stored.catch(() => {}); // the caller's promise below carries the failure; this one is only chained
    this.#pendingEvents += events.length;
    this.#tail = stored;
    if (!this.#writing) this.#written = this.#writeLoop();
    return stored.then(() => this.state);
  }

  /** Resolves once every event persisted so far is stored; rejects once a write failed. */
  protected persisted(): Promise<void> {
    return this.#failure !== undefined ? Promise.reject(this.#failure.error) : this.#tail;
  }

  /** One append at a time, each with every event queued when it starts (up to the batch bound). */
  async #writeLoop(): Promise<void> {
    this.#writing = true;
    try {
      while (this.#queued.length > 0 && this.#failure === undefined) {
        const batch = this.#nextBatch();
        const events = batch.flatMap((w) => w.events);
        try {
          this.#seq = await this.journal.append(this.persistenceId, events, this.#seq);
          for (const e of events) this.#stored = this.onEvent(this.#stored as S, e as E);
        } catch (e) {
          this.#failWrites(e, batch);
          return;
        }
        this.#pendingEvents -= events.length;
        this.#sinceSnapshot += events.length;
        for (const w of batch) w.resolve();
        await this.#maybeSnapshot();
      }
    } finally {
      this.#writing = false;
    }
  }

  #nextBatch(): PendingWrite[] {
    // The first command goes whole even past the bounds: its events are one command's.
    let [n, events, bytes] = [1, this.#queued[0]!.events.length, this.#queued[0]!.bytes];
    for (; n < this.#queued.length; n++) {
      const next = this.#queued[n]!;
      if (events + next.events.length > JOURNAL_BATCH_EVENTS_MAX || bytes + next.bytes > JOURNAL_BATCH_BYTES_MAX) break;
      events += next.events.length;
      bytes += next.bytes;
    }
    return this.#queued.splice(0, n);
  }

  /** The batch and everything queued behind it fail: their checks saw the events that were not stored. */
  #failWrites(error: unknown, batch: PendingWrite[]): void {
    this.#failure = { error };
    const failed = [...batch, ...this.#queued.splice(0)];
    for (const w of failed) w.reject(error);
  }

  async #maybeSnapshot(): Promise<void> {
    if (this.snapshotEvery === 0 || this.#sinceSnapshot < this.snapshotEvery) return;
    this.#sinceSnapshot = 0; // a failed snapshot is tried again snapshotEvery events later, not at every event
    // Awaited, so #stored stays as it is until the journal has taken it. The events are stored: a
    // snapshot only shortens recovery, so failing one (a state past the server's message size, a
    // journal that is briefly away) must not fail the command.
    const seq = this.#seq;
    await this.journal.saveSnapshot(this.persistenceId, { seq, state: this.#stored }).catch((e: unknown) => this.ctx.log.warn({ err: e, persistenceId: this.persistenceId, seq }, 'snapshot not saved; recovery replays more events'));
  }
}
