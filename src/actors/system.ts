import { pino, type Logger } from 'pino';
import { realPorts } from '../ports/real.js';
import type { Ports } from '../ports/types.js';
import { Cell, type AnyCell } from './cell.js';
import { RemoteDeliveryError, SystemStoppedError, InvalidOptionError } from './errors.js';
import { AskRef, LocalRef, RemoteRef, type RefHost } from './ref.js';
import { decodeActorFrame, encodeActorFrame, parsePath, type Transport } from './remote.js';
import { DEFAULT_STRATEGY, type SupervisorStrategy } from './supervision.js';
import type { ActorRef, Behavior, Factory, SpawnOptions, SystemEvent } from './types.js';

export interface SystemOptions {
  /** Unique within a cluster: it is the address remote refs use (actor://<name>/...). */
  name?: string;
  ports?: Ports;
  transport?: Transport;
  logger?: Logger;
  /** Strategy for top-level actors. Escalations that reach the root stop the top-level actor. */
  guardian?: SupervisorStrategy;
  /** Observes lifecycle events (failures, restarts, stops, dead letters), e.g. for a simulation trace. */
  onEvent?: (e: SystemEvent) => void;
  /** Messages one actor runs before the dispatcher moves to the next (fairness). */
  throughput?: number;
  /** Messages one dispatcher turn runs before yielding to I/O (macrotask). */
  turnBudget?: number;
  /**
   * What frames from other processes may reach: every actor (`all`, the default: services are called by
   * path), or only the replies to this system's own asks (`asks`: a node's actors are nobody's to call).
   */
  remoteInbound?: 'all' | 'asks';
}

export const DEFAULT_THROUGHPUT = 256;
export const DEFAULT_TURN_BUDGET = 65_536;
const SYSTEM_NAME_RE = /^[A-Za-z0-9_.-]{1,128}$/;

export interface SystemStats {
  actors: number;
  deadLetters: number;
  remoteErrors: number;
}

/**
 * An actor system: a root guardian, a dispatcher that runs ready actors in FIFO order, and the seam to
 * other systems (Transport). One per process in production; many per process in tests and simulations.
 */
export class ActorSystem implements RefHost {
  readonly name: string;
  readonly ports: Ports;
  /** Where this system's aligned repeats fall within a second: from its name, so processes spread and a replay repeats it. */
  readonly timerPhaseMs: number;
  readonly log: Logger;
  readonly timers: Ports['timers'];
  actorCount = 0;
  deadLetters = 0;
  remoteErrors = 0;
  readonly #root: AnyCell;
  readonly #guardian: SupervisorStrategy;
  readonly #onEvent: ((e: SystemEvent) => void) | undefined;
  readonly #transport: Transport | undefined;
  readonly #throughput: number;
  readonly #turnBudget: number;
  #queue: (AnyCell | undefined)[] = [];
  #head = 0;
  #pending = false;
  #askSeq = 0;
  #asks = new Map<string, AskRef<never>>();
  #shutdown: Promise<void> | undefined;
  readonly #asksOnly: boolean;

  constructor(options: SystemOptions = {}) {
    this.name = options.name ?? 'local';
    if (!SYSTEM_NAME_RE.test(this.name)) throw new InvalidOptionError('name', `system names use [A-Za-z0-9_.-], 1-128 chars; got "${this.name}"`);
    this.ports = options.ports ?? realPorts();
    this.timerPhaseMs = phaseOf(this.name);
    this.timers = this.ports.timers;
    this.log = options.logger ?? pino({ level: process.env['SIGMA_LOG'] ?? 'warn', name: this.name }, pino.destination(2));
    this.#guardian = options.guardian ?? DEFAULT_STRATEGY;
    this.#onEvent = options.onEvent;
    this.#throughput = options.throughput ?? DEFAULT_THROUGHPUT;
    this.#turnBudget = options.turnBudget ?? DEFAULT_TURN_BUDGET;
    this.#root = new Cell<never>(this, undefined, '', () => ({ receive: () => {} }) as Behavior<never>, {});
    this.#asksOnly = options.remoteInbound === 'asks';
    this.#transport = options.transport;
    this.#transport?.bind(this.name, (frame) => this.#receiveFrame(frame));
  }

  /** Spawns a top-level actor. */
  spawn<M>(factory: Factory<M>, options?: SpawnOptions): ActorRef<M> {
    if (this.#shutdown !== undefined) throw new SystemStoppedError(this.name);
    return this.#root.spawn(factory, options);
  }

  /** Stops any local actor (and its subtree); resolves once it has terminated. */
  stop(ref: ActorRef<never>): Promise<void> {
    const cell = this.localCell(ref);
    return cell === undefined ? Promise.resolve() : cell.terminate();
  }

  /** Stops every top-level actor in reverse start order, each subtree fully before the next. */
  shutdown(): Promise<void> {
    this.#shutdown ??= (async () => {
      await this.#root.terminate();
      await this.#transport?.close();
    })();
    return this.#shutdown;
  }

  stats(): SystemStats {
    return { actors: this.actorCount, deadLetters: this.deadLetters, remoteErrors: this.remoteErrors };
  }

  /** Mailbox figures of a local actor (undefined for remote or unknown refs). */
  mailboxStats(ref: ActorRef<never>): { size: number; peak: number; dropped: number; rejected: number; capacity: number } | undefined {
    const m = this.localCell(ref)?.mailbox;
    return m && { size: m.size, peak: m.peak, dropped: m.dropped, rejected: m.rejected, capacity: m.capacity };
  }

  /** Lifecycle status of a local actor, 'stopped' when unknown. */
  statusOf(ref: ActorRef<never>): AnyCell['status'] {
    return this.localCell(ref)?.status ?? 'stopped';
  }

  /** Top-level actors, in start order. */
  topLevel(): ActorRef<never>[] {
    return this.#root.children();
  }

  /** The root cell, for tools that walk the tree (tests, simulations). */
  get root(): AnyCell {
    return this.#root;
  }

  refFor<M>(path: string): ActorRef<M> {
    const p = parsePath(path);
    if (p === undefined) throw new InvalidOptionError('path', `"${path}" is not an actor path (actor://<system>/<name>/...)`);
    if (p.system !== this.name) return new RemoteRef<M>(this, path);
    const cell = this.#lookup(p.segments);
    if (cell !== undefined) return cell.self as unknown as ActorRef<M>;
    const ask = this.#asks.get(path);
    if (ask !== undefined) return ask as unknown as ActorRef<M>;
    // An unknown local path still makes a ref: messages to it become dead letters.
    return new RemoteRef<M>(this, path);
  }

  localCell(ref: ActorRef<never>): AnyCell | undefined {
    if (ref instanceof LocalRef && ref.cell instanceof Cell && ref.cell.system === this) return ref.cell as AnyCell;
    return undefined;
  }

  // ---- Dispatcher ----------------------------------------------------------------------------

  schedule(cell: AnyCell): void {
    if (cell.scheduled) return;
    cell.scheduled = true;
    this.#queue.push(cell);
    if (!this.#pending) {
      this.#pending = true;
      queueMicrotask(this.#drain);
    }
  }

  // Runs ready actors in FIFO order, `throughput` messages each; after `turnBudget` messages it
  // yields a macrotask so that I/O and timers are not starved by a busy actor graph.
  #drain = (): void => {
    let budget = this.#turnBudget;
    const q = this.#queue;
    while (this.#head < q.length && budget > 0) {
      const cell = q[this.#head]!;
      q[this.#head++] = undefined;
      cell.scheduled = false;
      budget -= cell.process(this.#throughput) + 1;
      if (cell.hasWork()) this.schedule(cell);
    }
    if (this.#head === q.length) {
      q.length = 0;
      this.#head = 0;
      this.#pending = false;
      return;
    }
    this.#queue = q.slice(this.#head);
    this.#head = 0;
    this.timers.defer(this.#drain);
  };

  // ---- RefHost -------------------------------------------------------------------------------

  askPath(): string {
    return `actor://${this.name}/$ask/${(this.#askSeq++).toString(36)}`;
  }

  exposeAsk(ref: AskRef<never>): void {
    this.#asks.set(ref.path, ref);
  }

  forgetAsk(ref: AskRef<never>): void {
    this.#asks.delete(ref.path);
  }

  deadLetter(path: string, msg: unknown): void {
    this.deadLetters++;
    this.emit({ type: 'dead-letter', path, msg });
  }

  sendRemote(path: string, msg: unknown): void {
    const p = parsePath(path);
    if (p === undefined || this.#transport === undefined || p.system === this.name) {
      this.deadLetter(path, msg);
      return;
    }
    this.#transport.send(p.system, encodeActorFrame(path, msg));
  }

  emit(e: SystemEvent): void {
    if (this.#onEvent !== undefined) this.#onEvent(e);
  }

  strategyFor(cell: AnyCell): SupervisorStrategy | undefined {
    return cell === this.#root ? this.#guardian : undefined;
  }

  #lookup(segments: readonly string[]): AnyCell | undefined {
    let cell: AnyCell | undefined = this.#root;
    for (const s of segments) {
      cell = cell.childCell(s);
      if (cell === undefined) return undefined;
    }
    return cell;
  }

  #receiveFrame(frame: Uint8Array): void {
    const decoded = decodeActorFrame(frame, (path) => this.refFor(path));
    if (decoded._tag === 'Left') {
      this.remoteErrors++;
      this.log.warn({ err: decoded.left }, 'dropped an undecodable remote frame');
      return;
    }
    const { to, msg } = decoded.right;
    if (this.#asksOnly && !to.startsWith(`actor://${this.name}/$ask/`)) {
      this.remoteErrors++;
      this.log.warn({ to }, 'refused a remote frame: this system takes replies to its own asks only');
      return;
    }
    const target = this.refFor<unknown>(to);
    if (target instanceof RemoteRef) {
      this.deadLetter(to, msg);
      return;
    }
    const sent = target.tryTell(msg);
    if (sent._tag === 'Left') {
      this.remoteErrors++;
      this.log.warn({ err: new RemoteDeliveryError(`to ${to}`, { cause: sent.left }) }, 'remote message not delivered');
    }
  }
}

export function createSystem(options?: SystemOptions): ActorSystem {
  return new ActorSystem(options);
}

/** A name's place in a second (FNV-1a): distinct names, distinct phases, the same on every run. */
function phaseOf(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return (h >>> 0) % 1000;
}
