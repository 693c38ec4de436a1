import { AsyncLocalStorage } from 'node:async_hooks';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import type { Logger } from 'pino';
import { oneForOne, type ActorSystem, type Behavior, type Context } from '../actors/index.js';
import { describe } from '../actors/errors.js';
import { FunctionProc, ServiceProc, type ProcContext, type Status } from '../proc/types.js';
import type { CallOptions, DataHandler, DataMessage, DataPathApi, EndpointAddress, PoolBuffer, Target } from '../proc/data.js';
import type { HostDataPath } from './datapath/host-datapath.js';
import { noDataPath } from './datapath/none.js';
import type { ToNode } from './protocol.js';
import type { Journal } from '../actors/persistent.js';
import { noJournal } from '../proc/journal.js';
import { traceSpawn } from '../spawn-trace.js';

const requireProgram = createRequire(import.meta.url);

/**
 * Loads a program's module. `require()` of an ES module (Node >= 20.19) is synchronous: no file read
 * on the thread pool, no promise hops through the ESM loader — about 0.6 ms for a small module in an
 * idle host against 0.9-1.4 ms for import(), which is most of a cold start. Modules that require()
 * cannot take (top-level await) are imported. Both share the ESM loader's cache, so a program's
 * `FunctionProc` is the runner's.
 */
async function loadProgram(modulePath: string): Promise<{ default?: unknown }> {
  try {
    return requireProgram(modulePath) as { default?: unknown };
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code !== 'ERR_REQUIRE_ASYNC_MODULE' && code !== 'ERR_REQUIRE_ESM') throw e;
    return (await import(pathToFileURL(modulePath).href)) as { default?: unknown };
  }
}

/** Which proc the running code belongs to, so console output lands in that proc's log. */
export const currentProc = new AsyncLocalStorage<{ pid: string }>();

/** Bound on the JSON a function may return in its status; larger results belong on the data path. */
export const RESULT_BYTES_MAX = 256 * 1024;

class ExitedTwiceError extends Error {
  readonly type = 'exited-twice';
  constructor(pid: string) {
    super(`proc ${pid} called exited() twice; a proc exits once`);
    this.name = 'ExitedTwiceError';
  }
}

interface Running {
  ctx: ProcCtx;
  kind: 'function' | 'service';
  stop?: () => Promise<void>;
  endpoint?: number;
}

class ProcCtx implements ProcContext {
  evicted = false;
  #done = false;
  #startedSent = false;
  readonly #evict: Promise<void>;
  #resolveEvict!: () => void;

  constructor(
    readonly pid: string,
    readonly realm: string,
    readonly args: readonly unknown[],
    readonly log: Logger,
    private readonly runner: ProcRunner,
    private readonly kind: 'function' | 'service',
    private readonly data: DataPathApi,
    readonly journal: Journal,
  ) {
    this.#evict = new Promise((r) => (this.#resolveEvict = r));
  }

  // The data path (src/datapath/proc-data.ts), or a stand-in that rejects with DataPathUnavailableError.
  get endpoint(): EndpointAddress | undefined {
    return this.data.endpoint;
  }
  send(target: Target, payload: Uint8Array | string | PoolBuffer, options?: CallOptions): Promise<void> {
    return this.data.send(target, payload, options);
  }
  call(target: Target, payload: Uint8Array | string | PoolBuffer, options?: CallOptions): Promise<Uint8Array> {
    return this.data.call(target, payload, options);
  }
  callWith<R>(target: Target, payload: Uint8Array | string | PoolBuffer, read: (answer: Uint8Array) => R, options?: CallOptions): Promise<R> {
    return this.data.callWith(target, payload, read, options);
  }
  forward(next: Target, msg: DataMessage | PoolBuffer, options?: CallOptions): Promise<void> {
    return this.data.forward(next, msg, options);
  }
  alloc(lengthBytes: number): PoolBuffer {
    return this.data.alloc(lengthBytes);
  }
  serve(handler: DataHandler): void {
    const store = { pid: this.pid }; // one per proc, not one per message
    this.data.serve((m) => currentProc.run(store, handler, m));
  }

  get done(): boolean {
    return this.#done;
  }

  waitEvict(): Promise<void> {
    return this.#evict;
  }

  requestEvict(): void {
    this.evicted = true;
    this.#resolveEvict();
  }

  started(): void {
    if (this.#startedSent || this.#done) return;
    this.#startedSent = true;
    this.runner.send({ t: 'started', pid: this.pid, kind: this.kind, ...(this.kind === 'service' ? { actorPath: this.runner.actorPath(this.pid) } : {}) });
  }

  exited(status: Status): void {
    if (this.#done) throw new ExitedTwiceError(this.pid);
    this.#done = true;
    this.runner.finished(this.pid, status);
  }
}

/**
 * Runs procs inside one host process: loads a program's module on first use (import() of a warm
 * host is the sub-millisecond cold start), runs function procs to completion and service procs as
 * actors under a supervisor that stops (never restarts) them — restart policy is the control
 * plane's business, so a failed service is reported and respawned, possibly elsewhere.
 */
export class ProcRunner {
  readonly #procs = new Map<string, Running>();
  readonly #failures = new Map<string, unknown>();
  readonly #supervisor;
  /** Set when the node manager attached this host to its data path. */
  datapath: HostDataPath | undefined;
  /** The realm's journal, set once the host is connected to NATS (src/host/main.ts). */
  journal: Journal = noJournal('this proc host has no NATS connection');

  constructor(
    private readonly system: ActorSystem,
    readonly send: (m: ToNode) => void,
    private readonly log: Logger,
  ) {
    this.#supervisor = system.spawn(() => ({ receive: () => {}, supervisor: oneForOne({ decide: () => 'stop' }) }), { name: 'procs' });
  }

  actorPath(pid: string): string {
    return `${this.#supervisor.path}/${pid}`;
  }

  /** Records why a service actor failed (from the system's event stream) for its exit status. */
  noteFailure(path: string, error: unknown): void {
    const prefix = `${this.#supervisor.path}/`;
    if (path.startsWith(prefix)) this.#failures.set(path.slice(prefix.length), error);
  }

  get running(): number {
    return this.#procs.size;
  }

  async run(pid: string, modulePath: string, args: unknown[], realm: string, endpoint?: number): Promise<void> {
    if (this.#procs.has(pid)) return; // duplicate delivery of the same run: idempotent
    // Opened before the import, so nothing addressed to it meanwhile is misrouted.
    const data = endpoint === undefined || this.datapath === undefined ? undefined : this.datapath.open(endpoint);
    const fail = (message: string): void => {
      if (endpoint !== undefined) this.datapath?.close(endpoint);
      this.send({ t: 'exited', pid, status: { kind: 'error', message } });
    };
    let Cls: unknown;
    try {
      const mod = await loadProgram(modulePath);
      traceSpawn('host.loaded', pid);
      Cls = mod.default;
    } catch (e) {
      return fail(`cannot load ${modulePath}: ${describe(e)}`);
    }
    const isFn = typeof Cls === 'function' && Cls.prototype instanceof FunctionProc;
    const isSvc = typeof Cls === 'function' && Cls.prototype instanceof ServiceProc;
    if (!isFn && !isSvc) return fail(`${modulePath} must default-export a class extending FunctionProc or ServiceProc`);
    const kind = isFn ? 'function' : 'service';
    const reason = this.datapath === undefined ? 'this proc host is not attached to a data path' : 'the node gave this proc no endpoint';
    const ctx = new ProcCtx(pid, realm, args, this.log.child({ pid }), this, kind, data ?? noDataPath(reason), this.journal);
    const entry: Running = { ctx, kind, ...(data === undefined ? {} : { endpoint: endpoint! }) };
    this.#procs.set(pid, entry);
    if (isFn) await currentProc.run({ pid }, () => this.#runFunction(ctx, Cls as new () => FunctionProc));
    else currentProc.run({ pid }, () => this.#runService(entry, Cls as new (c: Context<unknown>, p: ProcContext) => ServiceProc));
  }

  async #runFunction(ctx: ProcCtx, Cls: new () => FunctionProc): Promise<void> {
    ctx.started();
    try {
      const result = await new Cls().run(ctx.args as unknown[], ctx);
      if (ctx.done) return;
      ctx.exited(ctx.evicted ? { kind: 'evicted', message: 'evicted' } : okStatus(result));
    } catch (e) {
      if (!ctx.done) ctx.exited({ kind: 'error', message: describe(e) });
    }
  }

  #runService(entry: Running, Cls: new (c: Context<unknown>, p: ProcContext) => ServiceProc): void {
    const ctx = entry.ctx;
    const ref = this.system.root.childCell('procs')!.spawn(
      (actorCtx: Context<unknown>) => {
        const inst: Behavior<unknown> & { onData?: DataHandler } = new Cls(actorCtx, ctx);
        if (typeof inst.onData === 'function') ctx.serve((m) => inst.onData!(m));
        const preStart = inst.preStart?.bind(inst);
        // Started once its own preStart has settled (a service may also call started() earlier).
        inst.preStart = async (c: Context<unknown>) => {
          await currentProc.run({ pid: ctx.pid }, async () => preStart?.(c));
          ctx.started();
        };
        return inst;
      },
      { name: ctx.pid },
    );
    entry.stop = () => this.system.stop(ref);
    this.system.spawn<{ type: 'terminated' }>((w) => ({
      receive: () => {
        if (!ctx.done) {
          const failure = this.#failures.get(ctx.pid);
          this.#failures.delete(ctx.pid);
          ctx.exited(ctx.evicted ? { kind: 'evicted', message: 'evicted' } : { kind: 'error', message: failure === undefined ? 'service stopped' : describe(failure) });
        }
        void w.stop();
      },
      preStart: () => w.watch(ref),
    }));
  }

  /** Cooperative eviction: functions see waitEvict() resolve; services are stopped (postStop runs). */
  evict(pid: string): void {
    const p = this.#procs.get(pid);
    if (p === undefined) return;
    p.ctx.requestEvict();
    if (p.kind === 'service') void p.stop?.();
  }

  finished(pid: string, status: Status): void {
    const p = this.#procs.get(pid);
    this.#procs.delete(pid);
    const dp = this.datapath;
    if (p?.endpoint === undefined || dp === undefined) return this.send({ t: 'exited', pid, status });
    // What it sent must leave this process before the exit is reported (a dedicated host is killed then).
    if (dp.close(p.endpoint)) void dp.drained().then(() => this.send({ t: 'exited', pid, status }));
    else this.send({ t: 'exited', pid, status });
  }
}

function okStatus(result: unknown): Status {
  if (result === undefined) return { kind: 'ok', message: 'ok' };
  let json: string | undefined;
  try {
    json = JSON.stringify(result);
  } catch (e) {
    return { kind: 'error', message: `result is not JSON-serializable: ${describe(e)}` };
  }
  if (json !== undefined && json.length > RESULT_BYTES_MAX) return { kind: 'error', message: `result is ${json.length} bytes, over RESULT_BYTES_MAX (${RESULT_BYTES_MAX}); use the data path for large results` };
  return { kind: 'ok', message: 'ok', data: result };
}
