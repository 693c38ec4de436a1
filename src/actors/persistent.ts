import { Actor } from './actor.js';
import { InvalidOptionError, JournalConflictError } from './errors.js';
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
 * so two writers under one persistence id cannot interleave silently.
 */
export interface Journal {
  /** Appends after `expectedSeq`; resolves with the new last sequence, or rejects with JournalConflictError. */
  append(persistenceId: string, events: readonly unknown[], expectedSeq: number): Promise<number>;
  /** Events with seq > afterSeq, in order. */
  read(persistenceId: string, afterSeq: number): AsyncIterable<JournalEntry>;
  saveSnapshot(persistenceId: string, snapshot: Snapshot): Promise<void>;
  loadSnapshot(persistenceId: string): Promise<Snapshot | undefined>;
}

/** A journal in this process's memory. Values are deep-copied in and out, as if serialized. */
export class InMemoryJournal implements Journal {
  readonly #events = new Map<string, unknown[]>();
  readonly #snapshots = new Map<string, Snapshot>();
  /** Events handed out by read(), to show that snapshots shorten recovery. */
  eventsRead = 0;

  async append(persistenceId: string, events: readonly unknown[], expectedSeq: number): Promise<number> {
    const log = this.#events.get(persistenceId) ?? [];
    if (log.length !== expectedSeq) throw new JournalConflictError(persistenceId, expectedSeq, log.length);
    for (const e of events) log.push(structuredClone(e));
    this.#events.set(persistenceId, log);
    return log.length;
  }

  async *read(persistenceId: string, afterSeq: number): AsyncIterable<JournalEntry> {
    const log = this.#events.get(persistenceId) ?? [];
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
 * An event-sourced actor. Commands arrive in `receive`; state changes only by persisting events
 * (`await this.persist(...)`), which the journal stores before `onEvent` applies them. On start and on
 * every restart the actor recovers: latest snapshot, then the events after it. Messages that arrive
 * meanwhile wait in the mailbox.
 */
export abstract class PersistentActor<C, E, S> extends Actor<C> {
  abstract readonly persistenceId: string;
  protected abstract readonly journal: Journal;
  /** Save a snapshot after this many events (0: never). */
  protected readonly snapshotEvery: number = 0;
  #state: S | undefined;
  #seq = 0;
  #sinceSnapshot = 0;

  abstract initialState(): S;
  abstract onEvent(state: S, event: E): S;
  /** Called once recovery has finished, before the first command. */
  onRecovered?(): MaybePromise;

  protected get state(): S {
    return this.#state as S;
  }

  /** Sequence number of the last persisted event. */
  get lastSeq(): number {
    return this.#seq;
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
    this.#state = state;
    this.#seq = seq;
    this.#sinceSnapshot = seq - (snap?.seq ?? 0);
    await this.onRecovered?.();
  }

  /** Stores events, then applies them; resolves with the new state. */
  protected async persist(...events: E[]): Promise<S> {
    if (events.length === 0) return this.state;
    this.#seq = await this.journal.append(this.persistenceId, events, this.#seq);
    let state = this.state;
    for (const e of events) state = this.onEvent(state, e);
    this.#state = state;
    this.#sinceSnapshot += events.length;
    if (this.snapshotEvery > 0 && this.#sinceSnapshot >= this.snapshotEvery) {
      this.#sinceSnapshot = 0; // a failed snapshot is tried again snapshotEvery events later, not at every event
      // The events are stored: a snapshot only shortens recovery, so failing one (a state past the
      // server's message size, a journal that is briefly away) must not fail the command.
      await this.journal.saveSnapshot(this.persistenceId, { seq: this.#seq, state }).catch((e: unknown) => this.ctx.log.warn({ err: e, persistenceId: this.persistenceId, seq: this.#seq }, 'snapshot not saved; recovery replays more events'));
    }
    return state;
  }
}
