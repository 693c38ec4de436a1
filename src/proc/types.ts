import type { Logger } from 'pino';
import { Actor } from '../actors/actor.js';
import type { Journal } from '../actors/persistent.js';
import type { Context } from '../actors/types.js';
import type { DataPathApi } from './data.js';

export type { CallOptions, DataHandler, DataMessage, DataPathApi, DataReply, EndpointAddress, PoolBuffer, Target } from './data.js';

/** How a proc ended. σOS's statuses plus `crashed` (its host died) and `lost` (its node died). */
export type ExitKind = 'ok' | 'error' | 'evicted' | 'crashed' | 'lost';

export interface Status {
  kind: ExitKind;
  message: string;
  /** The function's result (ok) or error details; JSON. */
  data?: unknown;
}

export type ProcKind = 'function' | 'service';
export type RestartPolicy = 'never' | 'on-failure' | 'always';

/** What a client asks for. Validated at spawn; a bad spec is a typed error, never a hung waiter. */
export interface ProcSpec {
  program: string;
  args: unknown[];
  realm: string;
  /** LC procs reserve mcpu/mem and are placed at once; BE procs queue per realm and fill spare capacity. */
  lc: boolean;
  mcpu: number;
  memMb: number;
  /** A fresh host process of its own instead of a shared, pre-warmed one. */
  dedicated: boolean;
  /** Services only: a name in the realm's registry (named). */
  name?: string;
  restart: RestartPolicy;
  /** Restart intensity for services: at most maxRestarts within withinMs. */
  maxRestarts: number;
  restartWithinMs: number;
  /** Parent pid; its death evicts this proc only when evictWithParent is set. */
  parent?: string;
  evictWithParent: boolean;
  /**
   * Realms whose procs may reach this proc's data-path endpoint (a service offered to other tenants):
   * they call it as `<realm>/<name>`, and every payload crossing realms is copied by the node between
   * the two realms' pools. Nothing else crosses: the kernel filter (or the hub) refuses the rest.
   */
  exports?: string[];
}

/** What a proc sees of the system from inside, the data path included (send, call, forward: see data.ts). */
export interface ProcContext extends DataPathApi {
  readonly pid: string;
  readonly realm: string;
  readonly args: readonly unknown[];
  readonly log: Logger;
  /**
   * The realm's durable journal (JetStream; src/actors/kv-journal.ts): give it to a PersistentActor so
   * that the proc's state survives its restart, here or on another node. The realm's procs share it:
   * persistence ids say whose events are whose, and two writers under one id are refused.
   */
  readonly journal: Journal;
  /** Resolves when the proc has been asked to leave (evicted). Cooperative procs finish and return. */
  waitEvict(): Promise<void>;
  readonly evicted: boolean;
  /** Services: tell the system the proc is up (functions are started when run() begins). */
  started(): void;
  /** End the proc now with this status (twice is an error). */
  exited(status: Status): void;
}

/**
 * A function proc: runs, returns a result, exits. The module's default export:
 *
 *   export default class Hello extends FunctionProc<[string], string> {
 *     async run([who], ctx) { return `hello ${who}`; }
 *   }
 */
export abstract class FunctionProc<A extends unknown[] = unknown[], R = unknown> {
  static readonly procKind: ProcKind = 'function';
  abstract run(args: A, ctx: ProcContext): R | Promise<R>;
}

/**
 * A service proc: an actor that stays up and serves messages until evicted. It counts as started once
 * preStart has settled (or earlier, if it calls `this.proc.started()`); clients reach it by the name in
 * its spec, through an ActorRef that works from any process. Eviction stops the actor (postStop runs).
 *
 *   export default class Kv extends ServiceProc<{ get: string; replyTo: ActorRef<string | null> }> {
 *     data = new Map<string, string>();
 *     receive(m) { m.replyTo.tell(this.data.get(m.get) ?? null); }
 *   }
 *
 * A service that defines `onData(msg: DataMessage): DataReply | Promise<DataReply>` serves the data
 * path: other procs reach it with ctx.send / ctx.call by its name, and what onData returns is the
 * answer to a call (`msg.bytes` is valid until the returned promise settles).
 */
export abstract class ServiceProc<M = unknown> extends Actor<M> {
  static readonly procKind: ProcKind = 'service';
  constructor(
    ctx: Context<M>,
    readonly proc: ProcContext,
  ) {
    super(ctx);
  }
}
