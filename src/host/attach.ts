import { left, right, type Either } from 'fp-ts/lib/Either.js';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { Pool } from '../datapath/pool.js';
import { BusyPoll, DEFAULT_BUSY_POLL_US, type BusyPollPorts } from '../datapath/busy-poll.js';
import { mapFd, schedYield } from '../native/index.js';
import type { Timers } from '../ports/types.js';
import { HostDataPath } from './datapath.js';
import type { NameLookup } from './proc-data.js';
import type { ToHost } from './protocol.js';

/** The host could not join the data path (no socket came with the message, the pool did not map). */
export class DataPathAttachError extends Error {
  readonly type = 'datapath-attach';
  constructor(detail: string, options?: { cause?: unknown }) {
    super(`cannot attach to the node's data path: ${detail}`, options);
    this.name = 'DataPathAttachError';
  }
}

/** Maps the inherited pool memfd and wraps the socket the node manager sent. Binding to the real world. */
export function attachDataPath(
  m: Extract<ToHost, { t: 'dp-attach' }>,
  socket: Socket | undefined,
  o: { realm: string; timers: Timers; lookup: NameLookup; log: Logger },
): Either<DataPathAttachError, HostDataPath> {
  if (socket === undefined || typeof socket.write !== 'function') return left(new DataPathAttachError('the attach message carried no socket'));
  let buffer: ArrayBuffer;
  try {
    buffer = mapFd(m.poolFd, m.poolBytes);
  } catch (e) {
    socket.destroy();
    return left(new DataPathAttachError(`the pool (fd ${m.poolFd}, ${m.poolBytes} bytes) did not map: ${(e as Error).message}`, { cause: e }));
  }
  const pool = Pool.attach(buffer);
  if (pool._tag === 'Left') {
    socket.destroy();
    return left(new DataPathAttachError(pool.left.message, { cause: pool.left }));
  }
  const windowUs = m.busyPollUs ?? DEFAULT_BUSY_POLL_US;
  const poll = new BusyPoll(windowUs, realBusyPollPorts);
  return right(new HostDataPath({ node: m.node, realm: o.realm, hostEp: m.hostEp, pool: pool.right, socket, timers: o.timers, lookup: o.lookup, log: o.log, crossNode: m.crossNode === true, poll }));
}

export const realBusyPollPorts: BusyPollPorts = {
  nowMs: () => performance.now(),
  immediate: (fn) => void setImmediate(fn),
  relax: schedYield,
};
