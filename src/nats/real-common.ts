import { JetStreamApiError, type JetStreamManager } from '@nats-io/jetstream';
import {
  ClosedConnectionError,
  DrainingConnectionError,
  InvalidArgumentError as NatsInvalidArgumentError,
  InvalidSubjectError,
  headers as natsHeaders,
  NoRespondersError as NatsNoRespondersError,
  PermissionViolationError,
  RequestError,
  TimeoutError as NatsTimeoutError,
  type MsgHdrs,
} from '@nats-io/transport-node';
import { ClosedError, DisconnectedError, InvalidArgumentError, NatsPortError, NoRespondersError, PermissionError, TimeoutError } from './errors.js';
import type { Headers } from './types.js';

// What the nats.js binding's core (real.ts) and its JetStream side (real-jetstream.ts) share.

/** Something the bus ends when it closes (a subscription, a watch, a consumer). */
export interface Tracked {
  /** A core subscription (nats.js drains those itself). */
  core: boolean;
  end(discard: boolean): void;
}

/** What the JetStream side needs of the bus: its manager, and to be ended with it. */
export interface JetStreamHost {
  jsm(): Promise<JetStreamManager>;
  track(o: Tracked): () => boolean;
}

/**
 * Races a KV call against its bound. nats.js 3 against nats-server 2.9 can leave a call pending forever
 * (seen: a create right after the key's delete); an actor awaiting it would stall, and a lease holder
 * would keep acting past its lease. Past the bound the call fails with TimeoutError.
 */
export function bounded<T>(p: Promise<T>, operation: string, timeoutMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(operation, timeoutMs)), timeoutMs);
  });
  return Promise.race([p, limit]).finally(() => clearTimeout(timer));
}

export function classify(e: unknown, operation: string, timeoutMs: number): unknown {
  if (e instanceof NatsPortError) return e;
  // nats.js wraps the telling error in `cause` (RequestError(cause: NoRespondersError) and the like).
  for (let c: unknown = e; c instanceof Error; c = c.cause) {
    if (c instanceof NatsNoRespondersError || c.name === 'JetStreamNotEnabled') return new NoRespondersError(operation, { cause: e });
    if (c instanceof PermissionViolationError) return new PermissionError(`${operation}: ${c.message}`, { cause: e });
    if (c instanceof NatsTimeoutError) return new TimeoutError(operation, timeoutMs, { cause: e });
    if (c instanceof ClosedConnectionError || c instanceof DrainingConnectionError) return new ClosedError(undefined, { cause: e });
    if (c instanceof InvalidSubjectError || c instanceof NatsInvalidArgumentError) return new InvalidArgumentError(`${operation}: ${c.message}`, { cause: e });
    if (c instanceof RequestError && /disconnected/.test(c.message)) return new DisconnectedError({ cause: e });
  }
  // A clustered JetStream between leaders (a server lost, a fresh cluster), or a server cut off from
  // its cluster's majority (test/nats-cluster-contract.test.ts), answers 503: like no responder,
  // nobody serves it now, it is worth trying again, and callers already do for that type.
  if (e instanceof JetStreamApiError && e.status === 503) return new NoRespondersError(`${operation} (JetStream has no leader for it yet: ${e.message})`, { cause: e });
  if (e instanceof JetStreamApiError && e.status === 400) return new InvalidArgumentError(`${operation}: the server refused it: ${e.message}`, { cause: e });
  return e;
}

export function toNatsHeaders(h: Headers | undefined): MsgHdrs | undefined {
  if (h === undefined) return undefined;
  const out = natsHeaders();
  for (const [k, v] of Object.entries(h)) out.set(k, v);
  return out;
}

export function fromNatsHeaders(h: MsgHdrs | undefined): Headers | undefined {
  if (h === undefined) return undefined;
  const out: Record<string, string> = {};
  for (const k of h.keys()) out[k] = h.get(k);
  return Object.keys(out).length === 0 ? undefined : out;
}

