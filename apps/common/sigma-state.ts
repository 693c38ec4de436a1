import { describe, JOURNAL_BATCH_EVENTS_MAX, PersistentActor, type ActorRef, type Context, type Journal } from '../../src/actors/index.js';
import { serveCall, type Handlers, type Rpc } from './app.js';
import type { EventSourced } from './state.js';

/** A snapshot after this many events: a restart replays at most this many, one key get each. */
export const STATE_SNAPSHOT_EVERY = 100;
/**
 * Events persisted and not yet stored past which the next call waits for the journal: one batch in
 * flight and one full batch behind it. Further calls then wait in the mailbox, which has its own bound.
 */
export const STATE_PENDING_EVENTS_MAX = 2 * JOURNAL_BATCH_EVENTS_MAX;

/**
 * What the service proc reads its queries from (EventSourced.queries): the state the actor has stored
 * (never events still on their way to the journal), shared in the one process. Not `ready` while the
 * actor recovers (at start, or after a journal failure restarted it): queries then go through the
 * mailbox and wait for the recovery.
 */
export interface StateView {
  ready: boolean;
  state: unknown;
}

export type Answer = Awaited<ReturnType<typeof serveCall>>;
/** A call to a handler, the ready probe (answered with the last stored sequence once recovered), or the actor's own note that a write failed. */
export type StateCall = { m: string; a: unknown[]; reply: ActorRef<Answer> } | { ready: ActorRef<number> } | { journalFailed: true };

/**
 * A stateful service's state as a PersistentActor in the realm's journal, with group commit: calls run
 * one at a time, but a call that has persisted does not hold the mailbox while its events are written —
 * the next call runs against the state with them applied, and the events of the calls that ran while a
 * write was in flight go in the next write (one JetStream message). Each answer goes out once the events
 * its call saw are stored. A journal failure (another writer, JetStream gone) answers every call still
 * waiting with its error and then fails the actor: its supervisor restarts it, and recovery reads what
 * the journal really holds.
 */
export class JournaledState extends PersistentActor<StateCall, unknown, unknown> {
  protected override readonly snapshotEvery = STATE_SNAPSHOT_EVERY;
  readonly #handlers: Handlers;
  #journalFailure: { error: unknown } | undefined;
  /** Set while a call runs, until it persists: the mailbox moves on then. */
  #onPersist: (() => void) | undefined;

  constructor(
    ctx: Context<StateCall>,
    readonly persistenceId: string,
    protected readonly journal: Journal,
    private readonly def: EventSourced,
    private readonly rpc: Rpc,
    private readonly view: StateView,
  ) {
    super(ctx);
    view.ready = false; // a restarted actor's state is the journal's once it has recovered, not before
    this.#handlers = def.handlers(() => this.state, (...events) => this.#persist(events));
  }

  override onRecovered(): void {
    this.#publish();
  }

  initialState(): unknown {
    return this.def.initial();
  }
  onEvent(state: unknown, event: unknown): unknown {
    return this.def.apply(state, event);
  }

  receive(m: StateCall): void | Promise<void> {
    if ('ready' in m) return m.ready.tell(this.lastSeq);
    const failure = this.#journalFailure;
    if (failure !== undefined) {
      // A call after the failure ran no check: it is answered, and the actor fails (once) with it.
      if ('reply' in m) m.reply.tell({ ok: false, error: describe(failure.error) });
      throw failure.error;
    }
    if ('reply' in m) return this.#call(m);
  }

  /** Runs a call until it has persisted or answered; its answer goes out once what it saw is stored. */
  async #call(m: { m: string; a: unknown[]; reply: ActorRef<Answer> }): Promise<void> {
    if (this.pendingEvents >= STATE_PENDING_EVENTS_MAX) await this.persisted().catch(() => {}); // a failure is #persist's to report
    const persisting = new Promise<void>((r) => (this.#onPersist = r));
    const answer = serveCall(this.#handlers, m.m, m.a, this.rpc);
    await Promise.race([answer, persisting]);
    this.#onPersist = undefined;
    // Everything this call read or persisted is persisted by now (calls run one at a time): an answer
    // that read pending events of earlier calls waits for them too, and fails if they were not stored.
    const seen = this.persisted().then(
      () => undefined,
      (e: unknown): Answer => ({ ok: false, error: describe(e) }),
    );
    // tryTell: an asker gone (timed out, stopped) is no failure of this actor, and a throw here would be unhandled.
    void Promise.all([answer, seen]).then(([a, failed]) => void m.reply.tryTell(failed ?? a));
  }

  #persist(events: unknown[]): Promise<void> {
    const onPersist = this.#onPersist;
    // A handler checks, then persists once as its last step; a second persist would run its check
    // against a state other calls have changed since.
    if (onPersist === undefined) return Promise.reject(new Error(`${this.persistenceId}: a handler persisted twice, or after its call ended; persist once, as the last step`));
    this.#onPersist = undefined;
    const stored = this.persist(...events);
    onPersist();
    return stored.then(
      () => this.#publish(),
      (e: unknown) => {
        this.#failed(e);
        throw e;
      },
    );
  }

  /** Once per failure: the view stops answering and the actor fails at its next message (this note, unless calls are ahead of it). */
  #failed(error: unknown): void {
    if (this.#journalFailure !== undefined) return;
    this.#journalFailure = { error };
    this.view.ready = false; // queries wait for the successor's recovery
    this.ctx.self.tryTell({ journalFailed: true }); // a full mailbox has a message to fail at already
  }

  #publish(): void {
    if (this.#journalFailure !== undefined) return;
    this.view.state = this.storedState;
    this.view.ready = true;
  }
}
