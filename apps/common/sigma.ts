import type { ActorRef, Context } from '../../src/actors/index.js';
import { ServiceProc, type DataMessage, type ProcContext } from '../../src/proc/types.js';
import { JournaledState, type StateCall, type StateView } from './sigma-state.js';
import { httpAnswer, readRequest } from '../../src/gateway/envelope.js';
import { parseCookies, parseForm, serveCall, type App, type Handlers, type Rpc } from './app.js';

export const RPC_TIMEOUT_MS = 5_000;
/** How long a stateful service may take to recover its state from the journal before it fails to start. */
export const STATE_RECOVERY_MS = 20_000;
const utf8 = new TextDecoder();
const decode = (bytes: Uint8Array): string => utf8.decode(bytes);

/** Calls between an app's services on the data path: JSON `{ m, a }` in, `{ ok, value | error }` back. */
export function dataPathRpc(proc: Pick<ProcContext, 'callWith'>): Rpc {
  return async (service, method, args) => {
    // The answer is decoded where it lies in the pool (callWith), not copied out first.
    const r = JSON.parse(await proc.callWith(service, JSON.stringify({ m: method, a: args }), decode, { timeoutMs: RPC_TIMEOUT_MS })) as { ok: boolean; value?: unknown; error?: string };
    if (!r.ok) throw new Error(r.error ?? `${service}.${method} failed`);
    return r.value;
  };
}

/** The program of an app's services on sigma-ts: args [service name]; spawn it under that name. */
export function serviceProc(app: App): new (...a: never[]) => ServiceProc<never> {
  return class extends ServiceProc<never> {
    #handlers: Handlers | undefined;
    #rpc: Rpc | undefined;
    /** A stateful service's journaled state (sigma-state.ts): its calls go there. */
    #state: ActorRef<StateCall> | undefined;
    readonly #view: StateView = { ready: false, state: undefined };
    /** The stateful service's read-only handlers over #view (EventSourced.queries), by name. */
    #queries: Handlers = {};
    receive(): void {}
    async preStart(): Promise<void> {
      const name = String(this.proc.args[0]);
      const def = app.stateOf?.(name);
      if (def === undefined) return;
      const rpc = this.#rpcOf();
      const view = this.#view;
      const all = def.handlers(() => view.state, () => Promise.reject(new Error(`${app.name}-${name}: a query persisted events`)));
      this.#queries = Object.fromEntries((def.queries ?? []).map((q) => [q, all[q]!]));
      this.#state = this.ctx.spawn((c: Context<StateCall>) => new JournaledState(c, `${app.name}-${name}`, this.proc.journal, def, rpc, view), { name: 'state' });
      // Started once recovered: a caller after waitStart sees the state as the journal holds it.
      await this.#state.ask<number>((ready) => ({ ready }), STATE_RECOVERY_MS);
    }
    async onData(msg: DataMessage): Promise<string> {
      const name = String(this.proc.args[0]);
      if (!app.services.includes(name)) return JSON.stringify({ ok: false, error: `no ${app.name} service ${name}` });
      const req = JSON.parse(utf8.decode(msg.bytes)) as { m: string; a: unknown[] };
      if (this.#state !== undefined) {
        const query = this.#view.ready ? this.#queries[req.m] : undefined;
        if (query !== undefined) return JSON.stringify(await serveCall(this.#queries, req.m, req.a, this.#rpcOf()));
        return JSON.stringify(await this.#state.ask<unknown>((reply) => ({ m: req.m, a: req.a, reply }), RPC_TIMEOUT_MS));
      }
      this.#handlers ??= app.handlersOf(name);
      return JSON.stringify(await serveCall(this.#handlers, req.m, req.a, this.#rpcOf()));
    }
    #rpcOf(): Rpc {
      return (this.#rpc ??= dataPathRpc(this.proc));
    }
  } as never;
}

/** The program of an app's frontend on sigma-ts, behind gateway routes with the http envelope. */
export function frontendProc(app: App): new (...a: never[]) => ServiceProc<never> {
  return class extends ServiceProc<never> {
    receive(): void {}
    async onData(msg: DataMessage): Promise<Uint8Array> {
      const { head, body } = readRequest(msg.bytes);
      const form = head.headers['content-type']?.startsWith('application/x-www-form-urlencoded') === true ? parseForm(utf8.decode(body)) : {};
      const a = await app.frontend({ method: head.method, path: head.path, query: head.query, form, cookies: parseCookies(head.headers['cookie']), ...(head.headers['referer'] === undefined ? {} : { referer: head.headers['referer'] }) }, dataPathRpc(this.proc));
      return httpAnswer(a.status, a.body, a.headers);
    }
  } as never;
}
