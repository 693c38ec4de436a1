import {
  PeerGoneError,
  PeerUnreachableError,
  RemoteBackloggedError,
  RemoteBadBufferError,
  RemoteEndpointUnknownError,
  RemotePayloadTooLargeError,
  RemoteRefusedError,
  type RemoteSendError,
} from './remote-errors.js';
import { REFUSALS, type Refusal } from './remote-wire.js';

/** What a host needs to rebuild the channel's typed error (refusalError below). */
export interface WireRefusal {
  type: RemoteSendError['type'];
  node: string;
  endpoint: number;
  reason?: string;
  detail: string;
}

/**
 * The node-to-node channel's typed error, rebuilt in the host from what the node manager sent over IPC
 * (class instances do not cross it): the caller of a refused cross-node call gets the same class the
 * channel raised on the node, with the same `type`.
 */
export function refusalError(w: WireRefusal): RemoteSendError {
  switch (w.type) {
    case 'peer-gone':
      return new PeerGoneError(w.node);
    case 'peer-unreachable':
      return new PeerUnreachableError(w.node, 'not connected');
    case 'remote-endpoint-unknown':
      return new RemoteEndpointUnknownError(w.node, w.endpoint);
    case 'remote-refused': {
      const reason = (REFUSALS as readonly string[]).includes(w.reason ?? '') && w.reason !== 'unknown-endpoint' ? (w.reason as Exclude<Refusal, 'unknown-endpoint'>) : 'bad-src';
      return new RemoteRefusedError(w.node, w.endpoint, reason);
    }
    case 'remote-backlogged':
      return new RemoteBackloggedError(w.node, 'pendingPerPeerMax', 0);
    case 'remote-payload-too-large':
      return new RemotePayloadTooLargeError(0, 0);
    case 'remote-bad-buffer':
      return new RemoteBadBufferError(w.endpoint, w.detail);
  }
  return new PeerGoneError(w.node); // a type this host does not know: the safest reading
}

/** What the host accepts of a refusal sent by its node manager (it is JSON over IPC). */
export function isWireRefusal(v: unknown): v is WireRefusal {
  if (v === null || typeof v !== 'object') return false;
  const w = v as Record<string, unknown>;
  return typeof w['type'] === 'string' && typeof w['node'] === 'string' && typeof w['endpoint'] === 'number' && typeof w['detail'] === 'string';
}
