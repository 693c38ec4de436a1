import type { EventSourced } from './state.js';

/**
 * What an application under apps/ gives both deployments: its services' handlers (plain modules), and
 * a frontend that answers the original URLs. The wiring (sigma.ts, http-server.ts) is shared.
 */
export type Rpc = (service: string, method: string, args: unknown[]) => Promise<unknown>;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Handlers = Record<string, (args: any, rpc: Rpc) => unknown>;

/** The frontend's view of a request, whatever carried it (the gateway's envelope, or node:http). */
export interface FrontRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  /** application/x-www-form-urlencoded fields of the body. */
  form: Record<string, string>;
  cookies: Record<string, string>;
  referer?: string;
}

export interface FrontAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export interface App {
  name: string;
  /** Services other than the frontend, in start order (dependencies first). */
  services: readonly string[];
  /** A service's handlers; a stateful service's keep their state in memory here (see stateOf). */
  handlersOf(service: string): Handlers;
  /** A stateful service's events and handlers: on sigma-ts journaled, so the state survives a restart. */
  stateOf?(service: string): EventSourced | undefined;
  frontend(req: FrontRequest, rpc: Rpc): Promise<FrontAnswer>;
  /** The frontend's (method, path) routes. */
  routes: ReadonlyArray<[string, string]>;
}

/** One call against a service's handlers, as both wirings put it on the wire. */
export async function serveCall(handlers: Handlers, method: string, args: unknown[], rpc: Rpc): Promise<{ ok: true; value: unknown } | { ok: false; error: string }> {
  const h = handlers[method];
  if (h === undefined) return { ok: false, error: `no method ${method}` };
  try {
    return { ok: true, value: await h(args, rpc) };
  } catch (e) {
    return { ok: false, error: e instanceof Error ? e.message : String(e) };
  }
}

export const parseCookies = (header: string | undefined): Record<string, string> =>
  Object.fromEntries(
    (header ?? '').split(';').flatMap((p) => {
      const i = p.indexOf('=');
      return i < 0 ? [] : [[p.slice(0, i).trim(), decodeURIComponent(p.slice(i + 1).trim())]];
    }),
  );
export const parseForm = (body: string): Record<string, string> => Object.fromEntries(new URLSearchParams(body));
