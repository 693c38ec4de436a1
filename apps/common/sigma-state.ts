import { PersistentActor, type ActorRef, type Context, type Journal } from '../../src/actors/index.js';
import { serveCall, type Handlers, type Rpc } from './app.js';
import type { EventSourced } from './state.js';

/** A snapshot after this many events: a restart replays at most this many, one key get each. */
export const STATE_SNAPSHOT_EVERY = 100;

/**
 * What the service proc reads its queries from (EventSourced.queries): the state the actor has recovered
 * and applied, shared in the one process. Not `ready` while the actor recovers (at start, or after a
 * journal failure restarted it): queries then go through the mailbox and wait for the recovery.
 */
export interface StateView {
  ready: boolean;
  state: unknown;
}

export type StateCall = { m: string; a: unknown[]; reply: ActorRef<Awaited<ReturnType<typeof serveCall>>> } | { ready: ActorRef<number> };

/**
 * A stateful service's state as a PersistentActor in the realm's journal: its handlers run one call at a
 * time, each event stored before it is applied; on start (and restart) it recovers from the journal.
 * A journal failure (another writer, JetStream gone) is answered as the call's error and then fails the
 * actor: its supervisor restarts it, and recovery reads what the journal really holds.
 */
export class JournaledState extends PersistentActor<StateCall, unknown, unknown> {
  protected override readonly snapshotEvery = STATE_SNAPSHOT_EVERY;
  readonly #handlers: Handlers;
  #journalFailure: unknown;

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

  async receive(m: StateCall): Promise<void> {
    if ('ready' in m) return m.ready.tell(this.lastSeq);
    m.reply.tell(await serveCall(this.#handlers, m.m, m.a, this.rpc));
    const failure = this.#journalFailure;
    this.#journalFailure = undefined;
    if (failure !== undefined) throw failure;
  }

  async #persist(events: unknown[]): Promise<void> {
    try {
      await this.persist(...events);
      this.#publish();
    } catch (e) {
      this.view.ready = false; // this actor fails after the call: queries wait for its successor's recovery
      this.#journalFailure = e;
      throw e;
    }
  }

  #publish(): void {
    this.view.state = this.state;
    this.view.ready = this.#journalFailure === undefined;
  }
}
