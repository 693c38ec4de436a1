import { PersistentActor, type ActorRef, type Context, type Journal } from '../../src/actors/index.js';
import { serveCall, type Handlers, type Rpc } from './app.js';
import type { EventSourced } from './state.js';

/** A snapshot after this many events: a restart replays at most this many, one key get each. */
export const STATE_SNAPSHOT_EVERY = 100;

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
  ) {
    super(ctx);
    this.#handlers = def.handlers(() => this.state, (...events) => this.#persist(events));
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
    } catch (e) {
      this.#journalFailure = e;
      throw e;
    }
  }
}
