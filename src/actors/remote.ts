import { left, right, type Either } from 'fp-ts/lib/Either.js';
import type { Timers } from '../ports/types.js';
import { RemoteDeliveryError } from './errors.js';
import type { ActorRef } from './types.js';

/**
 * The seam between actor systems. A system binds its address once and receives opaque frames; it
 * sends frames to other addresses. Delivery must keep per-sender FIFO order (NATS does per
 * connection). The in-memory network below, the simulator's network and the control plane's NATS
 * transport all implement this, so actor code never changes with the wire.
 */
export interface Transport {
  bind(address: string, onFrame: (frame: Uint8Array) => void): void;
  send(address: string, frame: Uint8Array): void;
  close(): Promise<void>;
}

/** Upper bound on one encoded frame; larger messages belong on the data path, not the control plane. */
export const FRAME_BYTES_MAX = 1 << 20;

const PATH_RE = /^actor:\/\/([A-Za-z0-9_.-]{1,128})((?:\/[^/]+)*)$/;

export function parsePath(path: string): { system: string; segments: string[] } | undefined {
  const m = PATH_RE.exec(path);
  if (m === null) return undefined;
  return { system: m[1]!, segments: m[2] === '' ? [] : m[2]!.slice(1).split('/') };
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/** JSON frames: {to, msg}; refs inside msg travel as {"$ref": path} (their toJSON). */
export function encodeActorFrame(to: string, msg: unknown): Uint8Array {
  const bytes = encoder.encode(JSON.stringify({ to, msg }));
  if (bytes.byteLength > FRAME_BYTES_MAX) {
    throw new RemoteDeliveryError(`a message to ${to} encodes to ${bytes.byteLength} bytes, over FRAME_BYTES_MAX (${FRAME_BYTES_MAX}); send large payloads over the data path`);
  }
  return bytes;
}

export function decodeActorFrame(frame: Uint8Array, resolve: (path: string) => ActorRef<unknown>): Either<RemoteDeliveryError, { to: string; msg: unknown }> {
  if (frame.byteLength > FRAME_BYTES_MAX) return left(new RemoteDeliveryError(`frame of ${frame.byteLength} bytes exceeds ${FRAME_BYTES_MAX}`));
  let parsed: unknown;
  try {
    parsed = JSON.parse(decoder.decode(frame), (_k, v: unknown) => {
      if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
        const ref = (v as { $ref?: unknown }).$ref;
        if (typeof ref === 'string' && Object.keys(v).length === 1) {
          if (parsePath(ref) === undefined) throw new RemoteDeliveryError(`malformed ref "${ref}"`);
          return resolve(ref);
        }
      }
      return v;
    });
  } catch (e) {
    return left(e instanceof RemoteDeliveryError ? e : new RemoteDeliveryError('frame is not valid JSON', { cause: e }));
  }
  if (parsed === null || typeof parsed !== 'object') return left(new RemoteDeliveryError('frame is not an object'));
  const { to, msg } = parsed as { to?: unknown; msg?: unknown };
  if (typeof to !== 'string' || parsePath(to) === undefined) return left(new RemoteDeliveryError('frame has no valid "to" path'));
  return right({ to, msg });
}

/**
 * Systems in one process talking through a simulated wire: every frame is delivered on a later
 * macrotask of the injected timers, in send order. Good for tests and single-process demos.
 */
export class InMemoryNetwork {
  readonly #handlers = new Map<string, (frame: Uint8Array) => void>();
  /** Frames sent to an address nobody bound. */
  undeliverable = 0;

  constructor(private readonly timers: Timers) {}

  transport(): Transport {
    let bound: string | undefined;
    return {
      bind: (address, onFrame) => {
        if (this.#handlers.has(address)) throw new RemoteDeliveryError(`address ${address} is already bound on this network`);
        bound = address;
        this.#handlers.set(address, onFrame);
      },
      send: (address, frame) => {
        this.timers.defer(() => {
          const h = this.#handlers.get(address);
          if (h === undefined) this.undeliverable++;
          else h(frame);
        });
      },
      close: async () => {
        if (bound !== undefined) this.#handlers.delete(bound);
      },
    };
  }
}
