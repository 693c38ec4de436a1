/**
 * A test harness for procs, in-process and without a cluster (as Temporal's test environment runs
 * workflows): `import { runFunction, callService } from 'sigma-ts/testing'`. A function proc runs with
 * a context whose `ctx.call`/`ctx.send`/`ctx.forward` reach stand-in services given by name; a service
 * proc is constructed as the host would (an actor with its ProcContext) and its `onData` called.
 * Buffers are plain memory here; everything else behaves as in a host: a thrown error rejects, an
 * unknown target is an UnknownTargetError, `ctx.exited` twice is an error.
 */
import { pino, type Logger } from 'pino';
import { createSystem, InMemoryJournal, type ActorSystem, type Behavior, type Context, type Journal } from '../actors/index.js';
import { FunctionProc, ServiceProc, type ProcContext, type Status } from '../proc/types.js';
import { UnknownTargetError, type CallOptions, type DataHandler, type DataMessage, type DataReply, type EndpointAddress, type PoolBuffer, type Target } from '../proc/data.js';

/** A stand-in for a service `ctx.call` may reach: a data handler, or a ServiceProc class with onData. */
export type StandIn = DataHandler | ServiceClass;
export type ServiceClass = new (ctx: Context<never>, proc: ProcContext) => ServiceProc<never>;

export interface HarnessOptions {
  /** Services by name (as `ctx.call('name', ...)` names them; another realm's as `realm/name`). */
  services?: Record<string, StandIn>;
  realm?: string;
  pid?: string;
  /** Where `ctx.log` writes; default: nothing. */
  log?: Logger;
  /** The realm's journal (`ctx.journal`); default: a fresh one in memory. Pass one to test a restart. */
  journal?: Journal;
}

/** The proc ended through `ctx.exited` with a status other than ok. */
export class ProcExitedError extends Error {
  readonly type = 'proc-exited';
  constructor(readonly status: Status) {
    super(`the proc exited ${status.kind}: ${status.message}`);
    this.name = 'ProcExitedError';
  }
}

const utf8 = new TextEncoder();

function bytesOf(p: Uint8Array | string | PoolBuffer | DataMessage): Uint8Array {
  if (typeof p === 'string') return utf8.encode(p);
  if (p instanceof Uint8Array) return p.slice();
  return p.bytes.slice();
}

function buffer(bytes: Uint8Array): PoolBuffer {
  return { bytes, offset: 0, generation: 0, release() {} };
}

function message(bytes: Uint8Array, expectsReply: boolean): DataMessage {
  return { bytes, src: 0, expectsReply, retain: () => buffer(bytes) };
}

function replyBytes(r: DataReply): Uint8Array {
  return r === undefined ? new Uint8Array(0) : bytesOf(r);
}

/** The context of one proc under test, wired to the stand-ins. */
class HarnessContext implements ProcContext {
  readonly pid: string;
  readonly realm: string;
  readonly log: Logger;
  readonly journal: Journal;
  readonly endpoint: EndpointAddress | undefined = { endpoint: 1 };
  evicted = false;
  status: Status | undefined;
  /** What a handler forwarded answers its caller instead of its own reply. */
  forwarded: Promise<Uint8Array> | undefined;
  #handler: DataHandler | undefined;
  readonly #evict: Promise<void>;
  #resolveEvict!: () => void;

  constructor(
    readonly args: readonly unknown[],
    private readonly handlers: (name: string) => Promise<DataHandler>,
    o: HarnessOptions,
  ) {
    this.pid = o.pid ?? 'test.1-0';
    this.realm = o.realm ?? 'default';
    this.log = o.log ?? pino({ level: 'silent' });
    this.journal = o.journal ?? new InMemoryJournal();
    this.#evict = new Promise((r) => (this.#resolveEvict = r));
  }

  async #target(target: Target): Promise<DataHandler> {
    if (typeof target !== 'string') throw new UnknownTargetError(String(target.endpoint), 'the test harness reaches stand-ins by name only');
    return this.handlers(target);
  }

  async send(target: Target, payload: Uint8Array | string | PoolBuffer): Promise<void> {
    const h = await this.#target(target);
    await h(message(bytesOf(payload), false));
  }

  async call(target: Target, payload: Uint8Array | string | PoolBuffer, _options?: CallOptions): Promise<Uint8Array> {
    return replyBytes(await (await this.#target(target))(message(bytesOf(payload), true)));
  }

  async callWith<R>(target: Target, payload: Uint8Array | string | PoolBuffer, read: (answer: Uint8Array) => R): Promise<R> {
    return read(await this.call(target, payload));
  }

  async forward(next: Target, msg: DataMessage | PoolBuffer): Promise<void> {
    const h = await this.#target(next);
    this.forwarded = Promise.resolve(h(message(bytesOf(msg), true))).then(replyBytes);
  }

  alloc(lengthBytes: number): PoolBuffer {
    return buffer(new Uint8Array(lengthBytes));
  }

  serve(handler: DataHandler): void {
    this.#handler = handler;
  }

  get handler(): DataHandler | undefined {
    return this.#handler;
  }

  waitEvict(): Promise<void> {
    return this.#evict;
  }

  /** Asks the proc to leave, as `sigma evict` would. */
  evict(): void {
    this.evicted = true;
    this.#resolveEvict();
  }

  started(): void {}

  exited(status: Status): void {
    if (this.status !== undefined) throw new Error(`proc ${this.pid} called exited() twice; a proc exits once`);
    this.status = status;
  }
}

/** The stand-ins of `o.services`, service classes started on first use in `system`. */
function standIns(o: HarnessOptions, system: () => ActorSystem): (name: string) => Promise<DataHandler> {
  const started = new Map<string, Promise<DataHandler>>();
  return (name) => {
    if (!Object.hasOwn(o.services ?? {}, name)) return Promise.reject(new UnknownTargetError(name, `no service of that name (stand-ins: ${Object.keys(o.services ?? {}).join(', ') || 'none'})`));
    const s = o.services![name]!;
    if (!(s.prototype instanceof ServiceProc)) return Promise.resolve(s as DataHandler);
    let h = started.get(name);
    if (h === undefined) started.set(name, (h = startService(s as ServiceClass, { ...o, services: o.services ?? {} }, system()).then((svc) => svc.handler)));
    return h;
  };
}

async function startService(Cls: ServiceClass, o: HarnessOptions, system: ActorSystem): Promise<{ ctx: HarnessContext; handler: DataHandler }> {
  const ctx = new HarnessContext([], standIns(o, () => system), o);
  let inst: (Behavior<never> & { onData?: DataHandler }) | undefined;
  const ready = new Promise<void>((resolve, reject) => {
    system.spawn((actorCtx: Context<never>) => {
      try {
        inst = new Cls(actorCtx, ctx);
      } catch (e) {
        reject(e);
        throw e;
      }
      const preStart = inst.preStart?.bind(inst);
      inst.preStart = async (c) => {
        try {
          await preStart?.(c);
          resolve();
        } catch (e) {
          reject(e);
          throw e;
        }
      };
      return inst;
    });
  });
  await ready;
  const handler = ctx.handler ?? (typeof inst?.onData === 'function' ? (m: DataMessage) => inst!.onData!(m) : undefined);
  if (handler === undefined) throw new Error(`${Cls.name} serves no data path: give it an onData method`);
  return { ctx, handler };
}

/**
 * Runs a function proc to its end: resolves with what `run` returned, rejects with what it threw (or a
 * ProcExitedError when it ended itself with a status other than ok).
 */
export async function runFunction<A extends unknown[], R>(Cls: new () => FunctionProc<A, R>, args: A, o: HarnessOptions = {}): Promise<R> {
  if (!(Cls.prototype instanceof FunctionProc)) throw new TypeError(`${Cls.name} does not extend FunctionProc`);
  let system: ActorSystem | undefined;
  const sys = (): ActorSystem => (system ??= createSystem({ name: 'sigma-test', logger: pino({ level: 'silent' }) }));
  const ctx = new HarnessContext(args, standIns(o, sys), o);
  try {
    const result = await new Cls().run(args, ctx);
    if (ctx.status !== undefined && ctx.status.kind !== 'ok') throw new ProcExitedError(ctx.status);
    return result;
  } finally {
    await system?.shutdown();
  }
}

/** A service proc under test: call it on its data path as other procs would, then stop it. */
export interface ServiceUnderTest {
  call(payload: Uint8Array | string): Promise<Uint8Array>;
  /** The same, the answer decoded as UTF-8. */
  callText(payload: Uint8Array | string): Promise<string>;
  readonly ctx: ProcContext;
  stop(): Promise<void>;
}

/** Starts a service proc in-process (preStart runs); its own `ctx.call`s reach `o.services`. */
export async function serviceUnderTest(Cls: ServiceClass, o: HarnessOptions = {}): Promise<ServiceUnderTest> {
  if (!(Cls.prototype instanceof ServiceProc)) throw new TypeError(`${Cls.name} does not extend ServiceProc`);
  const system = createSystem({ name: 'sigma-test', logger: pino({ level: 'silent' }) });
  const { ctx, handler } = await startService(Cls, o, system).catch(async (e: unknown) => {
    await system.shutdown();
    throw e;
  });
  const call = async (payload: Uint8Array | string): Promise<Uint8Array> => {
    ctx.forwarded = undefined;
    const own = replyBytes(await handler(message(bytesOf(payload), true)));
    return ctx.forwarded ?? own;
  };
  return { call, callText: async (p) => new TextDecoder().decode(await call(p)), ctx, stop: () => system.shutdown() };
}

/** One call to a service proc: starts it, calls it, stops it. */
export async function callService(Cls: ServiceClass, payload: Uint8Array | string, o: HarnessOptions = {}): Promise<Uint8Array> {
  const svc = await serviceUnderTest(Cls, o);
  try {
    return await svc.call(payload);
  } finally {
    await svc.stop();
  }
}
