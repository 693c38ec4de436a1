import type { Logger } from 'pino';
import type { Ports, TimerHandle } from '../ports/types.js';
import { isActorClass } from './actor.js';
import { ActorNameTakenError, EscalatedError, InvalidActorNameError, InvalidOptionError, RestartIntensityExceededError, SystemStoppedError, describe } from './errors.js';
import { Mailbox } from './mailbox.js';
import { ENQ_FULL, ENQ_OK, ENQ_STOPPED, LocalRef, type RefHost } from './ref.js';
import { DEFAULT_STRATEGY, RestartHistory, backoffDelayMs, type SupervisorStrategy } from './supervision.js';
import type { ActorRef, Behavior, Context, Factory, SpawnOptions, SystemEvent, Terminated } from './types.js';

/** What a cell needs of its actor system (ActorSystem, src/actors/system.ts, implements it). */
export interface CellSystem extends RefHost {
  readonly name: string;
  readonly ports: Ports;
  /** Offset of aligned repeats (ActorSystem.timerPhaseMs). */
  readonly timerPhaseMs: number;
  readonly log: Logger;
  actorCount: number;
  localCell(ref: ActorRef<never>): AnyCell | undefined;
  schedule(cell: AnyCell): void;
  refFor<M>(path: string): ActorRef<M>;
  deadLetter(path: string, msg: unknown): void;
  emit(e: SystemEvent): void;
  strategyFor(cell: AnyCell): SupervisorStrategy | undefined;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a cell of any message type, for trees and queues
export type AnyCell = Cell<any>;

// Lifecycle. Only RUNNING processes user messages; SUSPENDED waits for its supervisor or a restart.
const STARTING = 0;
const RUNNING = 1;
const SUSPENDED = 2;
const STOPPING = 3;
const STOPPED = 4;

export const CONCURRENCY_MAX = 1 << 16;
const NAME_RE = /^[A-Za-z0-9_.:-][A-Za-z0-9_.:$-]{0,127}$/;

interface ChildFailure {
  child: AnyCell;
  error: unknown;
  msg: unknown;
}

/**
 * The runtime of one actor: mailbox, behavior instance, children, watchers and lifecycle. It is also
 * the actor's Context. Single-threaded by construction: the system's dispatcher runs one cell at a time.
 */
export class Cell<M> implements Context<M> {
  readonly self: LocalRef<M>;
  readonly path: string;
  readonly mailbox: Mailbox<M>;
  /** Set while the cell sits in the dispatcher's run queue. */
  scheduled = false;
  #status = STARTING;
  #behavior: Behavior<M> | undefined;
  #concurrency = 1;
  #inFlight = 0;
  /** Bumped on restart and stop, so a late promise from a previous incarnation is ignored. */
  #incarnation = 0;
  #failures: ChildFailure[] | undefined;
  #children: Map<string, AnyCell> | undefined;
  #childSeq = 0;
  #watchers: Map<AnyCell, unknown> | undefined;
  #watching: Set<AnyCell> | undefined;
  #timers: Set<TimerHandle> | undefined;
  #terminated: Promise<void> | undefined;
  #resolveTerminated: (() => void) | undefined;
  // Restarts of this actor (one-for-one) and of its children as a group (one-for-all, rest-for-one);
  // allocated on first failure so that spawning stays cheap.
  #restarts: RestartHistory | undefined;
  #groupRestarts: RestartHistory | undefined;
  #log: Logger | undefined;

  constructor(
    readonly system: CellSystem,
    readonly parentCell: AnyCell | undefined,
    readonly name: string,
    private readonly factory: Factory<M>,
    private readonly options: SpawnOptions,
  ) {
    this.path = parentCell === undefined ? `actor://${system.name}` : `${parentCell.path}/${name}`;
    this.self = new LocalRef(this, this.path);
    this.mailbox = new Mailbox<M>(options.mailbox);
  }

  // ---- Context -------------------------------------------------------------------------------

  get parent(): ActorRef<unknown> | undefined {
    return this.parentCell?.self as ActorRef<unknown> | undefined;
  }

  get ports(): Ports {
    return this.system.ports;
  }

  get log(): Logger {
    return (this.#log ??= this.system.log.child({ actor: this.path }));
  }

  get alive(): boolean {
    return this.#status < STOPPING;
  }

  get stopped(): boolean {
    return this.#status === STOPPED;
  }

  children(): ActorRef<never>[] {
    return this.#children === undefined ? [] : [...this.#children.values()].map((c) => c.self);
  }

  child<C>(name: string): ActorRef<C> | undefined {
    return this.#children?.get(name)?.self as ActorRef<C> | undefined;
  }

  childCell(name: string): AnyCell | undefined {
    return this.#children?.get(name);
  }

  spawn<C>(factory: Factory<C>, options: SpawnOptions = {}): ActorRef<C> {
    if (this.#status >= STOPPING) throw new SystemStoppedError(this.path);
    const name = options.name ?? `$${(this.#childSeq++).toString(36)}`;
    if (options.name !== undefined && !NAME_RE.test(name)) throw new InvalidActorNameError(name);
    const children = (this.#children ??= new Map());
    if (children.has(name)) throw new ActorNameTakenError(this.path, name);
    const child = new Cell<C>(this.system, this, name, factory, options);
    children.set(name, child as AnyCell);
    this.system.actorCount++;
    child.#start();
    return child.self;
  }

  stop(ref?: ActorRef<never>): Promise<void> {
    if (ref === undefined) return this.terminate();
    const cell = this.system.localCell(ref);
    if (cell === undefined || cell.parentCell !== (this)) {
      return Promise.reject(new InvalidOptionError('stop(ref)', `${ref.path} is not a child of ${this.path}; stop it through its parent`));
    }
    return cell.terminate();
  }

  watch(ref: ActorRef<never>, ...message: unknown[]): void {
    const msg = message.length > 0 ? message[0] : ({ type: 'terminated', ref } satisfies Terminated);
    if (!(ref instanceof LocalRef)) {
      // A remote actor's death is a fact about another process; the control plane learns it from
      // heartbeats (node and host liveness), not from this kernel.
      throw new InvalidOptionError('watch(ref)', `${ref.path} is not a local actor; remote death watch is not supported — watch the node or proc through the control plane`);
    }
    const target = this.system.localCell(ref);
    if (target === undefined || target.#status === STOPPED) {
      // Watching the dead (or an unknown path) delivers Terminated at once, as in Akka.
      this.mailbox.pushUnbounded(msg as M);
      this.system.schedule(this);
      return;
    }
    (target.#watchers ??= new Map()).set(this, msg);
    (this.#watching ??= new Set()).add(target);
  }

  unwatch(ref: ActorRef<never>): void {
    const target = this.system.localCell(ref);
    if (target === undefined) return;
    target.#watchers?.delete(this);
    this.#watching?.delete(target);
  }

  scheduleOnce(delayMs: number, msg: M): TimerHandle {
    return this.#arm(delayMs, () => this.self.tryTell(msg));
  }

  scheduleRepeat(intervalMs: number, msg: M, options: { aligned?: boolean } = {}): TimerHandle {
    if (!(intervalMs > 0)) throw new InvalidOptionError('intervalMs', `must be positive, got ${intervalMs}`);
    let cancelled = false;
    const delay = options.aligned === true ? this.#alignedDelays(intervalMs) : (): number => intervalMs;
    // A repeat is a chain of one-shots; a full mailbox skips a tick rather than queueing without bound.
    const tick = (): void => {
      if (cancelled) return;
      this.self.tryTell(msg);
      current = this.#arm(delay(), tick);
    };
    let current = this.#arm(delay(), tick);
    return {
      cancel: () => {
        cancelled = true;
        current.cancel();
      },
    };
  }

  refFor<C>(path: string): ActorRef<C> {
    return this.system.refFor<C>(path);
  }

  // ---- Messages ------------------------------------------------------------------------------

  /** Called by refs. Returns ENQ_* so the hot path allocates no error objects. */
  enqueue(msg: M): number {
    if (this.#status >= STOPPING) {
      this.system.deadLetter(this.path, msg);
      return ENQ_STOPPED;
    }
    if (!this.mailbox.push(msg)) return ENQ_FULL;
    if (!this.scheduled) this.system.schedule(this);
    return ENQ_OK;
  }

  /** Runs up to `budget` user messages (system work first). Returns how many ran. */
  process(budget: number): number {
    if (this.#failures !== undefined) this.#superviseAll();
    let n = 0;
    const box = this.mailbox;
    while (n < budget && this.#status === RUNNING && this.#inFlight < this.#concurrency && box.size > 0) {
      n++;
      this.#invoke(box.shift() as M);
    }
    return n;
  }

  hasWork(): boolean {
    return this.#failures !== undefined || (this.#status === RUNNING && this.#inFlight < this.#concurrency && this.mailbox.size > 0);
  }

  #invoke(msg: M): void {
    let r;
    try {
      r = this.#behavior!.receive(msg, this);
    } catch (e) {
      this.#fail(e, msg);
      return;
    }
    if (r != null && typeof (r as PromiseLike<void>).then === 'function') {
      this.#inFlight++;
      const inc = this.#incarnation;
      (r as PromiseLike<void>).then(
        () => this.#settled(inc),
        (e: unknown) => {
          if (inc === this.#incarnation) {
            this.#inFlight--;
            this.#fail(e, msg);
          }
        },
      );
    }
  }

  #settled(inc: number): void {
    if (inc !== this.#incarnation) return;
    this.#inFlight--;
    if (this.hasWork()) this.system.schedule(this);
  }

  // ---- Lifecycle -----------------------------------------------------------------------------

  #start(): void {
    const inc = this.#incarnation;
    this.#createBehavior();
    if (this.#behavior === undefined) return;
    this.#runHook(inc, (b) => b.preStart?.(this));
  }

  /** Instantiates the behavior; a throwing factory is a failure like any other. */
  #createBehavior(): void {
    try {
      const f = this.factory;
      const b = isActorClass(f) ? new (f as new (ctx: Context<M>) => Behavior<M>)(this) : (f as (ctx: Context<M>) => Behavior<M>)(this);
      const c = this.options.concurrency ?? b.concurrency ?? 1;
      if (!Number.isInteger(c) || c < 1 || c > CONCURRENCY_MAX) {
        throw new InvalidOptionError('concurrency', `must be an integer in [1, ${CONCURRENCY_MAX}], got ${c}`);
      }
      this.#behavior = b;
      this.#concurrency = c;
    } catch (e) {
      this.#behavior = undefined;
      this.#status = SUSPENDED;
      this.#fail(e, undefined);
    }
  }

  /** Runs a start hook; on success the cell runs, on failure its supervisor decides. */
  #runHook(inc: number, hook: (b: Behavior<M>) => void | PromiseLike<void>): void {
    let r;
    try {
      r = hook(this.#behavior!);
    } catch (e) {
      this.#fail(e, undefined);
      return;
    }
    if (r == null || typeof (r as PromiseLike<void>).then !== 'function') {
      this.#running();
      return;
    }
    this.#status = SUSPENDED; // async start: messages wait in the mailbox until the hook settles
    (r as PromiseLike<void>).then(
      () => inc === this.#incarnation && this.#running(),
      (e: unknown) => inc === this.#incarnation && this.#fail(e, undefined),
    );
  }

  #running(): void {
    if (this.#status >= STOPPING) return;
    this.#status = RUNNING;
    if (this.hasWork()) this.system.schedule(this);
  }

  /** A failure suspends the actor and hands the decision to its supervisor (the parent). */
  #fail(error: unknown, msg: unknown): void {
    if (this.#status >= STOPPING) return;
    this.#status = SUSPENDED;
    this.system.emit({ type: 'failed', path: this.path, error });
    const parent = this.parentCell;
    if (parent === undefined) {
      this.log.error({ err: error }, 'root guardian failed');
      return;
    }
    (parent.#failures ??= []).push({ child: this, error, msg });
    this.system.schedule(parent);
  }

  #superviseAll(): void {
    const failures = this.#failures!;
    this.#failures = undefined;
    for (const f of failures) this.#supervise(f);
  }

  #strategy(): SupervisorStrategy {
    return this.options.supervisor ?? this.#behavior?.supervisor ?? this.system.strategyFor(this) ?? DEFAULT_STRATEGY;
  }

  #supervise({ child, error, msg }: ChildFailure): void {
    if (child.#status >= STOPPING || child.parentCell !== (this)) return;
    const strategy = this.#strategy();
    let decision;
    try {
      decision = strategy.decide(error, child.name);
    } catch (e) {
      decision = 'escalate' as const;
      error = e;
    }
    if (decision === 'resume') return child.#resume();
    const affected = this.#affected(strategy, child);
    if (decision === 'stop') {
      for (const c of affected) void c.terminate();
      return;
    }
    if (decision === 'restart') {
      // Intensity as in OTP for group strategies (counted per supervisor), per child for one-for-one.
      const history = strategy.kind === 'one-for-one' ? (child.#restarts ??= new RestartHistory()) : (this.#groupRestarts ??= new RestartHistory());
      const attempt = history.record(this.system.ports.clock.nowMs(), strategy);
      if (attempt > 0) {
        const delayMs = backoffDelayMs(strategy.backoff, attempt, this.system.ports.random);
        for (const c of affected) void c.#restart(error, c === child ? msg : undefined, delayMs, attempt, child.path);
        return;
      }
      error = new RestartIntensityExceededError(child.path, strategy.maxRestarts, strategy.withinMs, error);
    } else {
      error = new EscalatedError(child.path, error);
    }
    // Escalation, as in OTP: the supervisor stops the children concerned, then fails itself.
    this.system.emit({ type: 'escalated', path: child.path, error });
    for (const c of affected) void c.terminate();
    if (this.parentCell === undefined) {
      this.log.error({ err: error }, `top-level actor ${child.path} stopped: ${describe(error)}`);
      return;
    }
    this.#fail(error, undefined);
  }

  #affected(strategy: SupervisorStrategy, child: AnyCell): AnyCell[] {
    if (strategy.kind === 'one-for-one' || this.#children === undefined) return [child];
    const all = [...this.#children.values()];
    return strategy.kind === 'one-for-all' ? all : all.slice(all.indexOf(child));
  }

  #resume(): void {
    if (this.#status !== SUSPENDED || this.#behavior === undefined) return;
    this.system.emit({ type: 'resumed', path: this.path });
    this.#running();
  }

  async #restart(error: unknown, msg: unknown, delayMs: number, attempt: number, cause: string): Promise<void> {
    if (this.#status >= STOPPING) return;
    this.#status = SUSPENDED;
    const inc = ++this.#incarnation;
    this.#inFlight = 0;
    this.#cancelTimers();
    const old = this.#behavior;
    try {
      if (old?.preRestart !== undefined) await old.preRestart(this, error, msg as M);
      else {
        await this.#stopChildren();
        await old?.postStop?.(this);
      }
    } catch (e) {
      this.log.warn({ err: e }, 'preRestart failed; restarting anyway');
    }
    if (delayMs > 0) await new Promise<void>((r) => this.system.ports.timers.setTimeout(r, delayMs));
    if (inc !== this.#incarnation || this.#status >= STOPPING) return;
    this.system.emit({ type: 'restarted', path: this.path, attempt, delayMs, cause });
    this.#createBehavior();
    if (this.#behavior === undefined) return;
    this.#runHook(inc, (b) => (b.postRestart !== undefined ? b.postRestart(this, error) : b.preStart?.(this)));
  }

  /** Stops children (reverse start order, one at a time), runs postStop, notifies watchers. Idempotent. */
  terminate(): Promise<void> {
    if (this.#terminated !== undefined) return this.#terminated;
    this.#terminated = new Promise<void>((r) => (this.#resolveTerminated = r));
    void this.#terminate();
    return this.#terminated;
  }

  async #terminate(): Promise<void> {
    const wasStarted = this.#behavior !== undefined;
    this.#status = STOPPING;
    this.#incarnation++;
    this.#cancelTimers();
    await this.#stopChildren();
    if (wasStarted) {
      try {
        await this.#behavior!.postStop?.(this);
      } catch (e) {
        this.log.warn({ err: e }, 'postStop failed');
      }
    }
    this.#finish();
  }

  async #stopChildren(): Promise<void> {
    if (this.#children === undefined) return;
    const order = [...this.#children.values()].reverse();
    for (const c of order) await c.terminate();
  }

  #finish(): void {
    this.#status = STOPPED;
    this.#failures = undefined;
    for (const m of this.mailbox.drain()) this.system.deadLetter(this.path, m);
    const parent = this.parentCell;
    if (parent !== undefined && parent.#children?.get(this.name) === (this)) {
      parent.#children.delete(this.name);
      this.system.actorCount--;
    }
    if (this.#watching !== undefined) for (const t of this.#watching) t.#watchers?.delete(this);
    if (this.#watchers !== undefined) {
      for (const [w, msg] of this.#watchers) {
        w.#watching?.delete(this);
        if (w.#status < STOPPING) {
          w.mailbox.pushUnbounded(msg as never);
          this.system.schedule(w);
        }
      }
      this.#watchers = undefined;
    }
    this.system.emit({ type: 'stopped', path: this.path });
    this.#resolveTerminated!();
  }

  /**
   * Delays to the multiples of `intervalMs` past the system's phase, each due time the one after the
   * last: a timer that fires a little early (ms-rounded loop time) must not tick again at once.
   */
  #alignedDelays(intervalMs: number): () => number {
    const clock = this.system.ports.clock;
    const phase = this.system.timerPhaseMs;
    let due = -Infinity;
    return () => {
      const now = clock.nowMs();
      due = Math.max(due + intervalMs, now - ((((now - phase) % intervalMs) + intervalMs) % intervalMs) + intervalMs);
      return due - now;
    };
  }

  #arm(delayMs: number, fn: () => void): TimerHandle {
    const timers = (this.#timers ??= new Set());
    const inner = this.system.ports.timers.setTimeout(() => {
      timers.delete(handle);
      fn();
    }, delayMs);
    const handle: TimerHandle = {
      cancel: () => {
        inner.cancel();
        timers.delete(handle);
      },
    };
    timers.add(handle);
    return handle;
  }

  #cancelTimers(): void {
    if (this.#timers === undefined) return;
    for (const t of [...this.#timers]) t.cancel();
  }

  /** For tests and stats: a cheap snapshot of this cell. */
  get status(): 'starting' | 'running' | 'suspended' | 'stopping' | 'stopped' {
    return (['starting', 'running', 'suspended', 'stopping', 'stopped'] as const)[this.#status]!;
  }

  childCells(): AnyCell[] {
    return this.#children === undefined ? [] : [...this.#children.values()];
  }
}
