import { left, right, type Either } from 'fp-ts/lib/Either.js';
import type { Logger } from 'pino';
import { Pool } from '../../datapath/pool.js';
import { BusyPoll, DEFAULT_BUSY_POLL_US } from '../../datapath/busy-poll.js';
import { homePin, realBusyPollPorts } from '../../datapath/busy-poll-real.js';
import { mapFd, socketIo } from '../../native/index.js';
import type { Timers } from '../../ports/types.js';
import { SocketLink } from '../../datapath/frames.js';
import { HostDataPath } from './host-datapath.js';
import type { NameLookup } from '../../datapath/proc-data.js';
import type { ToHost } from '../protocol.js';

/** The host could not join the data path (the pool did not map, the inherited socket is not one). */
export class DataPathAttachError extends Error {
  readonly type = 'datapath-attach';
  constructor(detail: string, options?: { cause?: unknown }) {
    super(`cannot attach to the node's data path: ${detail}`, options);
    this.name = 'DataPathAttachError';
  }
}

/** Maps the inherited pool memfd and opens the inherited socket (fds from fork). Binding to the real world. */
export function attachDataPath(m: Extract<ToHost, { t: 'dp-attach' }>, o: { realm: string; timers: Timers; lookup: NameLookup; log: Logger }): Either<DataPathAttachError, HostDataPath> {
  let buffer: ArrayBuffer;
  try {
    buffer = mapFd(m.poolFd, m.poolBytes);
  } catch (e) {
    return left(new DataPathAttachError(`the pool (fd ${m.poolFd}, ${m.poolBytes} bytes) did not map: ${(e as Error).message}`, { cause: e }));
  }
  const pool = Pool.attach(buffer);
  if (pool._tag === 'Left') return left(new DataPathAttachError(pool.left.message, { cause: pool.left }));
  const windowUs = m.busyPollUs ?? DEFAULT_BUSY_POLL_US;
  const poll = new BusyPoll(windowUs, { ...realBusyPollPorts, ...homePin(m.homeCpu, o.log) });
  let link: SocketLink;
  try {
    link = SocketLink.overFd(m.socketFd, { poll, io: socketIo() });
  } catch (e) {
    return left(new DataPathAttachError(`fd ${m.socketFd} is not the data-path socket: ${(e as Error).message}`, { cause: e }));
  }
  return right(new HostDataPath({ node: m.node, realm: o.realm, hostEp: m.hostEp, pool: pool.right, link, timers: o.timers, lookup: o.lookup, log: o.log, crossNode: m.crossNode === true, poll }));
}
