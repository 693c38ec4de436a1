import { ServiceProc, type DataMessage } from '../../src/proc/types.js';
import { handlersOf, serve, SERVICE_NAMES, type Handlers, type Rpc, type ServiceName } from './logic/services.js';

/** A call between boutique services on the data path: JSON `{ m, a }` in, `{ ok, value | error }` back. */
export const RPC_TIMEOUT_MS = 5_000;
const utf8 = new TextDecoder();

/** The proc's way to call the other services: by name in its realm, through shared memory. */
export function dataPathRpc(call: (target: string, payload: string, o: { timeoutMs: number }) => Promise<Uint8Array>): Rpc {
  return async (service, method, args) => {
    const r = JSON.parse(utf8.decode(await call(service, JSON.stringify({ m: method, a: args }), { timeoutMs: RPC_TIMEOUT_MS }))) as { ok: boolean; value?: unknown; error?: string };
    if (!r.ok) throw new Error(r.error ?? `${service}.${method} failed`);
    return r.value;
  };
}

/**
 * One Online Boutique service on sigma-ts (args: [service name]); spawn it with that name. Its
 * handlers are the plain modules of ./logic, the same the HTTP deployment runs.
 */
export default class BoutiqueService extends ServiceProc<never> {
  #handlers: Handlers | undefined;
  #rpc: Rpc | undefined;
  receive(): void {}
  async onData(msg: DataMessage): Promise<string> {
    const name = this.proc.args[0] as ServiceName;
    if (!SERVICE_NAMES.includes(name)) return JSON.stringify({ ok: false, error: `no boutique service ${String(name)}` });
    this.#handlers ??= handlersOf(name);
    this.#rpc ??= dataPathRpc((t, p, o) => this.proc.call(t, p, o));
    const req = JSON.parse(utf8.decode(msg.bytes)) as { m: string; a: unknown[] };
    return JSON.stringify(await serve(this.#handlers, req.m, req.a, this.#rpc));
  }
}
