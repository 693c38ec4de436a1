import { DataPathError } from './errors.js';
import type { Refusal } from './remote-wire.js';

/** Node-to-node channel errors: one class per failure, a `type` to switch on, a message saying what to do. */

/** No connection to that node now (never connected, or lost and not yet back). */
export class PeerUnreachableError extends DataPathError {
  readonly type = 'peer-unreachable';
  constructor(readonly node: string, detail: string) {
    super(`node ${node} is not reachable over the data-path channel (${detail}); retry once it is up, or re-resolve the endpoint`);
  }
}

/** The connection died with the send in flight: it may or may not have been delivered. */
export class PeerGoneError extends DataPathError {
  readonly type = 'peer-gone';
  constructor(readonly node: string) {
    super(`node ${node} went away with the message in flight; its buffer was freed — treat the call as failed and re-resolve the destination`);
  }
}

/** The payload is larger than the channel carries; it was not sent. */
export class RemotePayloadTooLargeError extends DataPathError {
  readonly type = 'remote-payload-too-large';
  constructor(readonly lengthBytes: number, readonly payloadBytesMax: number) {
    super(`a ${lengthBytes}-byte payload exceeds the node-to-node limit of ${payloadBytesMax} bytes; split it or raise payloadBytesMax on both nodes`);
  }
}

/** Too much is already queued towards that node (its socket or the receiver is not keeping up). */
export class RemoteBackloggedError extends DataPathError {
  readonly type = 'remote-backlogged';
  constructor(readonly node: string, readonly bound: string, readonly value: number) {
    super(`the channel to node ${node} is backlogged (${bound} = ${value} reached); back off and retry`);
  }
}

/** The destination node has no such endpoint. */
export class RemoteEndpointUnknownError extends DataPathError {
  readonly type = 'remote-endpoint-unknown';
  constructor(readonly node: string, readonly endpoint: number) {
    super(`node ${node} has no endpoint ${endpoint}; the proc exited or the name is stale — re-resolve it`);
  }
}

/** The destination node refused the message for another reason (its realm policy, pool, credits, queue). */
export class RemoteRefusedError extends DataPathError {
  readonly type = 'remote-refused';
  constructor(readonly node: string, readonly endpoint: number, readonly reason: Exclude<Refusal, 'unknown-endpoint'>) {
    super(`node ${node} refused the message to endpoint ${endpoint} (${reason}): ${HINTS[reason]}`);
  }
}

const HINTS: Record<Exclude<Refusal, 'unknown-endpoint'>, string> = {
  'cross-realm': 'the endpoint belongs to another realm and is not exported to the sender’s',
  'pool-exhausted': 'the destination realm’s pool is full on that node; back off (a gateway answers 503)',
  'credits-exhausted': 'the sender has more unconsumed messages at that endpoint than its credits allow',
  'dst-backlog': 'the destination endpoint is not reading',
  'too-large': 'the payload exceeds the receiving node’s limit',
  'bad-src': 'the sending endpoint id collides with one on the receiving node (endpoint ids must be cluster-unique)',
};

/** The descriptor does not name a live buffer of its sender in the sender realm's pool. */
export class RemoteBadBufferError extends DataPathError {
  readonly type = 'remote-bad-buffer';
  constructor(readonly endpoint: number, detail: string) {
    super(`endpoint ${endpoint}'s descriptor cannot be sent to another node: ${detail}`);
  }
}

export type RemoteSendError =
  | PeerUnreachableError
  | PeerGoneError
  | RemotePayloadTooLargeError
  | RemoteBackloggedError
  | RemoteEndpointUnknownError
  | RemoteRefusedError
  | RemoteBadBufferError;
